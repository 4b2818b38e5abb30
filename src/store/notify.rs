//! Following a LISTEN/NOTIFY channel for as long as a task runs: subscribing again after any
//! failure, and telling the follower when announcements may have been missed.

use std::time::Duration;

use sqlx::{PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::StoreError;
use crate::error::error_chain;

/// What the follower of a channel hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice<'a> {
    /// Subscribed (again): whatever was announced before now was not heard.
    Subscribed,
    /// An announcement, with its payload.
    Payload(&'a str),
    /// The connection dropped and is being re-established: announcements may be lost.
    Gap,
}

/// Listens on `channel` until `stop`, handing every notice to `on`. A failed subscription is
/// retried every second (followers poll or forget meanwhile); `what` names the follower in
/// the debug logs.
pub async fn follow(
    pool: &PgPool,
    channel: &str,
    what: &str,
    stop: CancellationToken,
    mut on: impl FnMut(Notice<'_>),
) {
    loop {
        let subscribed = async {
            let mut listener = PgListener::connect_with(pool).await?;
            listener.listen(channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            result = subscribed => match result {
                Ok(listener) => listener,
                Err(e) => {
                    debug!(error = %error_chain(&StoreError::from(e)), listener = what, "cannot subscribe; retrying");
                    on(Notice::Gap);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = stop.cancelled() => return,
                    }
                }
            },
            () = stop.cancelled() => return,
        };
        on(Notice::Subscribed);
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(note)) => on(Notice::Payload(note.payload())),
                    Ok(None) => on(Notice::Gap),
                    Err(e) => {
                        debug!(error = %error_chain(&StoreError::from(e)), listener = what, "lost its connection");
                        break;
                    }
                },
                () = stop.cancelled() => return,
            }
        }
    }
}
