//! Asking a running exporter to re-read its config file: SIGHUP, or `POST /-/reload` when
//! `--web.enable-lifecycle` is given. Requests queue on a channel that the serving loop
//! answers one at a time, so two reloads never interleave.

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// One request, answered with the outcome: Ok, or the message `check` would print.
#[derive(Debug)]
pub struct ReloadRequest(pub(crate) oneshot::Sender<Result<(), String>>);

/// A handle to ask for reloads; cheap to clone.
#[derive(Debug, Clone)]
pub struct Reloads(pub(crate) mpsc::Sender<ReloadRequest>);

impl Reloads {
    /// Asks for a reload and waits for its outcome.
    pub async fn request(&self) -> Result<(), String> {
        let stopping = || "the exporter is stopping".to_string();
        let (respond, outcome) = oneshot::channel();
        self.0
            .send(ReloadRequest(respond))
            .await
            .map_err(|_| stopping())?;
        outcome.await.map_err(|_| stopping())?
    }
}

/// Reloads on every SIGHUP until `shutdown`. The outcome is logged where the reload runs.
#[cfg(unix)]
pub async fn on_sighup(reloads: Reloads, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload with POST /-/reload instead");
        return;
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            received = hangups.recv() => {
                if received.is_none() {
                    return;
                }
                let _ = reloads.request().await;
            }
        }
    }
}
