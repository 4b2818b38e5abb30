//! qbo-sync: keeps Digit customers linked to QuickBooks Online customers.
//!
//! The binary in `main.rs` is a thin shell over this library so that tests, benchmarks and the
//! CLI reach the same code.

pub mod app;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod ctl;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod http;
pub mod matching;
pub mod pgcluster;
#[cfg(test)]
mod props;
pub mod proto;
pub mod quickbooks;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod worker;
