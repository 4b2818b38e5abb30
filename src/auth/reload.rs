//! The current set of callers, and the task that reloads it when the callers file changes.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use super::{Caller, Callers, CallersError};

/// The name every call takes under `--insecure-no-auth`.
pub const INSECURE_CALLER: &str = "insecure-no-auth";

/// Turns a bearer token into a caller: against the callers file, or, under
/// `--insecure-no-auth`, every call into the all-powerful [`INSECURE_CALLER`].
#[derive(Debug, Clone)]
pub struct Authenticator {
    mode: Mode,
}

#[derive(Debug, Clone)]
enum Mode {
    Callers(Arc<RwLock<Arc<Callers>>>),
    Insecure(Arc<Caller>),
}

impl Authenticator {
    /// Checks tokens against `callers` (until [`Self::replace`]).
    #[must_use]
    pub fn new(callers: Callers) -> Self {
        Self {
            mode: Mode::Callers(Arc::new(RwLock::new(Arc::new(callers)))),
        }
    }

    /// Lets every call in as [`INSECURE_CALLER`].
    #[must_use]
    pub fn insecure() -> Self {
        Self {
            mode: Mode::Insecure(Arc::new(Caller::all_powerful(INSECURE_CALLER))),
        }
    }

    /// The caller every call acts as when authentication is off.
    #[must_use]
    pub fn insecure_caller(&self) -> Option<Arc<Caller>> {
        match &self.mode {
            Mode::Insecure(caller) => Some(Arc::clone(caller)),
            Mode::Callers(_) => None,
        }
    }

    /// The caller `token` belongs to, if any.
    #[must_use]
    pub fn authenticate(&self, token: &str) -> Option<Arc<Caller>> {
        match &self.mode {
            Mode::Insecure(caller) => Some(Arc::clone(caller)),
            Mode::Callers(current) => {
                let callers = Arc::clone(&*current.read().unwrap_or_else(|e| e.into_inner()));
                callers.authenticate(token)
            }
        }
    }

    /// Puts a newly loaded set in place (ignored under `--insecure-no-auth`).
    pub fn replace(&self, callers: Callers) {
        if let Mode::Callers(current) = &self.mode {
            *current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(callers);
        }
    }
}

/// Reads and checks the callers file at start; the contents are what
/// [`watch_callers_file`] compares later reads with.
///
/// # Errors
/// [`CallersError`] when the file cannot be read or is not acceptable.
pub fn load_callers_file(path: &Path) -> Result<(Callers, Vec<u8>), CallersError> {
    let bytes = std::fs::read(path).map_err(|source| CallersError::Read {
        path: path.to_owned(),
        source,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| CallersError::Syntax {
        line: 0,
        message: "the file is not UTF-8".into(),
    })?;
    Ok((Callers::parse(text)?, bytes))
}

/// Reads the callers file every `interval` until `stop`; when its contents changed, a good
/// file replaces the callers and a broken one is logged at warn and ignored, so the last good
/// set stays in force. Comparing contents rather than modification times also catches an
/// edit made within the file system's time resolution.
pub async fn watch_callers_file(
    path: PathBuf,
    loaded: Vec<u8>,
    authenticator: Authenticator,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut last = Some(loaded);
    let mut unreadable = false;
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = stop.cancelled() => return,
        }
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(error) => {
                if !unreadable {
                    tracing::warn!(path = %path.display(), %error,
                        "cannot read the callers file; keeping the last good callers");
                }
                unreadable = true;
                continue;
            }
        };
        unreadable = false;
        if last.as_deref() == Some(bytes.as_slice()) {
            continue;
        }
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|_| "the callers file is not UTF-8".to_owned())
            .and_then(|text| Callers::parse(text).map_err(|e| e.to_string()));
        // A half-written file differs from the finished one, which the next tick reads again.
        last = Some(bytes);
        match parsed {
            Ok(callers) => {
                tracing::info!(path = %path.display(), callers = callers.len(), "callers file reloaded");
                authenticator.replace(callers);
            }
            Err(error) => tracing::warn!(path = %path.display(), %error,
                "callers file not reloaded; keeping the last good callers"),
        }
    }
}
