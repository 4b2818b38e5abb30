//! The QuickBooks Online Accounting API client.
//!
//! * [`QboClient`] makes every call: `minorversion` on each, limits shared by all replicas
//!   ([`limiter`]), retries by the rules in `client.rs`, faults parsed into [`QboError`].
//! * [`auth::TokenManager`] exchanges codes and refreshes tokens under a per-connection lock.
//! * The serde shapes stay private in `model.rs`; callers see the plain types of [`types`].
//!
//! How limits, retries, auth and idempotency work is written up in `docs/quickbooks-client.md`.

pub mod auth;
mod batch;
mod client;
mod customers;
mod error;
mod gate;
pub mod limiter;
mod lookup;
mod model;
mod pager;
pub mod query;
pub mod settings;
pub mod types;

pub use batch::BatchCreate;
pub use client::QboClient;
pub use error::QboError;
pub use limiter::{CallKind, Lane};
pub use lookup::{SimilarCustomers, name_key};
pub use pager::CustomerPager;
pub use types::{
    CreateOutcome, CustomerChanges, CustomerPage, CustomerPatch, NameHolder, NameHolderKind,
    NewCustomer, QboCustomer, RequestId,
};
