//! Cooperative, bounded shutdown: a signal cancels the soft token (stop taking work, drain),
//! and after the grace period the hard token (stop now).

use std::time::Duration;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Shared by everything that must stop when the process does.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled first: stop accepting work and finish what is in flight.
    pub soft: CancellationToken,
    /// Cancelled after the grace period: abandon what is still running.
    pub hard: CancellationToken,
    /// Tracks background tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
}

impl Shutdown {
    /// A fresh, untriggered shutdown.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts shutting down: cancels `soft` now and `hard` after `grace`.
    pub fn trigger(&self, grace: Duration) {
        if self.soft.is_cancelled() {
            return;
        }
        self.soft.cancel();
        let hard = self.hard.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            hard.cancel();
        });
    }
}

/// Resolves on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
pub async fn signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
