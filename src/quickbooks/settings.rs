//! Building a [`QboConfig`] outside the command line (tests, benchmarks, the dev command).

use clap::Parser;

use crate::config::QboConfig;

#[derive(Parser)]
struct Defaults {
    #[command(flatten)]
    qbo: QboConfig,
}

/// The QBO configuration with every documented default, ignoring the environment's
/// `QBO_SYNC_*` variables only in the sense that they still apply: callers override fields.
#[must_use]
pub fn default_qbo_config() -> QboConfig {
    Defaults::parse_from(["qbo-sync"]).qbo
}
