//! The QBO simulator driven over real HTTP with reqwest, one behaviour per test. The tests live
//! in `tests/simulator/`, one file per area.

#[path = "simulator/cdc_batch.rs"]
mod cdc_batch;
#[path = "simulator/customers.rs"]
mod customers;
#[path = "simulator/env.rs"]
mod env;
#[path = "simulator/faults.rs"]
mod faults;
#[path = "simulator/oauth.rs"]
mod oauth;
#[path = "simulator/queries.rs"]
mod queries;
