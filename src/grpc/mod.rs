//! gRPC handlers: proto → domain (failing as INVALID_ARGUMENT) → one call → proto.
//! No SQL and no HTTP here.

pub mod auth;
pub mod codec;
pub mod connection;
pub mod convert;
pub mod customer_sync;
pub mod middleware;
pub mod requests;
pub mod validate;
