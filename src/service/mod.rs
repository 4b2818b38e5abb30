//! The use cases, each with its own error type. The gRPC handlers, the webhook handler and
//! the worker all call them; none of them calls another's handlers. `crate::error` turns
//! their errors into gRPC statuses at the gRPC edge; the worker turns them into job outcomes.

pub mod candidates;
pub mod connections;
pub mod customers;
pub mod decide;
pub mod gauges;
pub mod keys;
pub mod links;
pub mod preflight;
pub mod push;
pub mod reviews;
pub mod sync;
pub mod webhooks;
