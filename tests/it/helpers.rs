//! Shared test helpers.

pub use qbo_sync::pgcluster::fresh_database;
