//! The two error families: a bad configuration stops the process, a failed poll stays local
//! to one source and becomes a log line plus a counter with a bounded `kind` label.

use std::time::Duration;

use thiserror::Error;

use crate::metrics::PollErrorKind;

/// A configuration problem. Fatal: `run` and `check` exit with code 2.
///
/// Every message names the file, the key and the fix, and never carries a secret's value.
#[derive(Debug, Error)]
#[error("{file}: {key}: {problem}\n  fix: {fix}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigError {
    pub fn new(
        file: impl Into<String>,
        key: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            file: file.into(),
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// Why one poll of one source failed. The poll's last good snapshot stays in place.
#[derive(Debug, Error)]
pub enum PollError {
    #[error("{endpoint}: authentication failed (HTTP {status}): {message}")]
    Auth {
        endpoint: &'static str,
        status: u16,
        message: String,
    },
    #[error("{endpoint}: HTTP {status}: {message}")]
    Status {
        endpoint: &'static str,
        status: u16,
        message: String,
    },
    #[error("{endpoint}: still rate limited (HTTP 429) after {attempts} attempts")]
    RateLimited {
        endpoint: &'static str,
        attempts: usize,
    },
    #[error("{endpoint}: no complete response within {timeout:?}")]
    Timeout {
        endpoint: &'static str,
        timeout: Duration,
    },
    #[error("{endpoint}: request failed: {detail}")]
    Transport {
        endpoint: &'static str,
        detail: String,
    },
    #[error("{endpoint}: unusable response: {detail}")]
    Decode {
        endpoint: &'static str,
        detail: String,
    },
    /// A signed API's clock and ours differ by more than it accepts: it would refuse (or
    /// already refused) every signature, and only the clock can be fixed.
    #[error(
        "{endpoint}: our clock is {skew_seconds} s off the API's (its Date header), more than the {max_seconds} s a signed request may be; fix this machine's clock (NTP)"
    )]
    ClockSkew {
        endpoint: &'static str,
        /// Ours minus theirs.
        skew_seconds: i64,
        max_seconds: u64,
    },
    /// A bug met input it did not expect; the poll was abandoned, the source goes on.
    #[error("the poll panicked: {message}")]
    Panic { message: String },
}

impl PollError {
    /// The bounded value of the `kind` label on `mining_exporter_poll_errors_total`.
    pub fn kind(&self) -> PollErrorKind {
        match self {
            PollError::Auth { .. } => PollErrorKind::Auth,
            PollError::Status { status: 404, .. } => PollErrorKind::NotFound,
            PollError::Status { .. } => PollErrorKind::Http,
            PollError::RateLimited { .. } => PollErrorKind::RateLimited,
            PollError::Timeout { .. } => PollErrorKind::Timeout,
            PollError::Transport { .. } => PollErrorKind::Transport,
            PollError::Decode { .. } => PollErrorKind::Decode,
            PollError::ClockSkew { .. } => PollErrorKind::ClockSkew,
            PollError::Panic { .. } => PollErrorKind::Panic,
        }
    }

    pub fn decode(endpoint: &'static str, detail: impl Into<String>) -> Self {
        PollError::Decode {
            endpoint,
            detail: detail.into(),
        }
    }
}

/// Why the exporter could not start or keep serving.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}\n  fix: {}", bind_fix(source))]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    #[error("cron scheduler: {0}")]
    Scheduler(String),
    #[error("state directory: {0}")]
    State(String),
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// The fix line of a failed bind, as every config error has one.
fn bind_fix(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another process holds this port (an exporter already running? `ss -ltnp` names it): stop it, or choose another with --web.listen-address or server.listen"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need privileges: use a port above 1024 (the default is 9898)"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "this machine has no such address: listen on 127.0.0.1, 0.0.0.0 or one of its own"
        }
        _ => "check the address in --web.listen-address or server.listen",
    }
}
