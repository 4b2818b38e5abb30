//! The chaos suite: real processes (two `qbo-sync serve` replicas, the simulator as its own
//! process, PostgreSQL), faults injected at random points, and the invariants checked after.
//! `cargo test --test it chaos` runs the CI profile; `CHAOS_ROUNDS`, `CHAOS_CUSTOMERS` and
//! `CHAOS_SEED` select a longer one (see README, Testing).

mod checks;
mod env;
mod kill9;
mod names;
mod pg_restart;
mod pusher;
mod replica;
mod sigterm;
mod sim;
mod storms;

/// The `qbo-sync` binary the processes run: this build's, or `CHAOS_QBO_SYNC_BIN` (a copy,
/// so a long run is not disturbed by a rebuild).
fn binary() -> std::path::PathBuf {
    std::env::var_os("CHAOS_QBO_SYNC_BIN")
        .map_or_else(|| env!("CARGO_BIN_EXE_qbo-sync").into(), Into::into)
}
