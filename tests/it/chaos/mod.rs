//! The chaos suite: real processes (two `qbo-sync serve` replicas, the simulator as its own
//! process, PostgreSQL), faults injected at random points, and the invariants checked after.
//! `cargo test --test it chaos` runs the CI profile; `CHAOS_ROUNDS`, `CHAOS_CUSTOMERS` and
//! `CHAOS_SEED` select a longer one (see README, Testing).

mod checks;
mod env;
mod kill9;
mod names;
mod pusher;
mod replica;
mod sim;
