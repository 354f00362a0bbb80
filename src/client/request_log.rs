//! Every request of a source written down as it went, for `doctor` and `poll`: which
//! endpoint, how it ended, what the pool's rate-limit headers and `Date` said. Nothing here
//! holds the token: the address is the redacted one logs show, the message the scrubbed one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// At most this many requests are kept; a poll past it (a runaway pagination) is cut off
/// by its own limits long before, and the log says how many it dropped.
pub const MAX_RECORDS: usize = 10_000;

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// An HTTP status came back (any status: 200, 401, 429, ...).
    Answered,
    /// An answer came, but its `Date` is further from our clock than a signed request may
    /// be: whatever its status says, the clock is what to fix.
    ClockSkew,
    /// The name did not resolve.
    Dns,
    /// The TCP connection was refused or reset before an answer.
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// No complete answer within the source's timeout.
    Timeout,
    /// Any other transport failure.
    Transport,
}

impl Ending {
    /// Names the failure from reqwest's error chain: it has no typed DNS or TLS error.
    pub(super) fn of_transport(detail: &str) -> Ending {
        let detail = detail.to_ascii_lowercase();
        if detail.contains("dns error") || detail.contains("failed to lookup address") {
            Ending::Dns
        } else if detail.contains("certificate")
            || detail.contains("tls")
            || detail.contains("handshake")
            || detail.contains("invalidcontenttype")
            || detail.contains("corrupt message")
        {
            Ending::Tls
        } else if detail.contains("connection refused") || detail.contains("connection reset") {
            Ending::Connect
        } else {
            Ending::Transport
        }
    }
}

/// What the pool's headers said about its own limits.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RateSeen {
    /// `X-RateLimit-Limit`.
    pub limit: Option<u32>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// Seconds until `X-RateLimit-Reset` (capped at the budget's longest window).
    pub reset_in_seconds: Option<f64>,
    /// `Retry-After`, in seconds.
    pub retry_after_seconds: Option<f64>,
}

impl RateSeen {
    pub fn is_empty(&self) -> bool {
        *self == RateSeen::default()
    }
}

/// One request (one attempt: a retry is a request of its own).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestRecord {
    /// The endpoint's template, as the metrics and errors name it.
    pub endpoint: &'static str,
    pub method: String,
    /// The address with its token parameters hidden.
    pub url: String,
    pub ending: Ending,
    pub status: Option<u16>,
    /// The pool's error text or the transport's, scrubbed; none for an accepted answer.
    pub message: Option<String>,
    pub rate: RateSeen,
    /// Our clock minus the answer's `Date`, in seconds.
    pub clock_skew_seconds: Option<i64>,
    pub bytes: usize,
    #[serde(serialize_with = "as_seconds")]
    pub took: Duration,
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// What `attempt` learns of a request while it is sent, completed into a record after.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub status: Option<u16>,
    pub rate: RateSeen,
    pub clock_skew_seconds: Option<i64>,
    pub bytes: usize,
}

/// A source's requests since the log was made, shared with the source's client.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Logged>>);

#[derive(Debug, Default)]
struct Logged {
    records: Vec<RequestRecord>,
    dropped: usize,
}

impl RequestLog {
    pub(super) fn push(&self, record: RequestRecord) {
        let mut logged = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if logged.records.len() < MAX_RECORDS {
            logged.records.push(record);
        } else {
            logged.dropped += 1;
        }
    }

    /// The requests so far, oldest first, and how many past `MAX_RECORDS` were not kept.
    pub fn take(&self) -> (Vec<RequestRecord>, usize) {
        let mut logged = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = std::mem::take(&mut logged.dropped);
        (std::mem::take(&mut logged.records), dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> RequestRecord {
        RequestRecord {
            endpoint: "/v1/workers",
            method: "GET".into(),
            url: "http://127.0.0.1/v1/workers".into(),
            ending: Ending::Answered,
            status: Some(200),
            message: None,
            rate: RateSeen::default(),
            clock_skew_seconds: None,
            bytes: 2,
            took: Duration::from_millis(3),
        }
    }

    #[test]
    fn the_log_keeps_at_most_its_cap_and_counts_the_rest() {
        let log = RequestLog::default();
        for _ in 0..MAX_RECORDS + 3 {
            log.push(record());
        }
        let (kept, dropped) = log.take();
        assert_eq!((kept.len(), dropped), (MAX_RECORDS, 3));
        assert_eq!(log.take().0.len(), 0);
    }

    #[test]
    fn transport_failures_are_named_by_their_cause() {
        let cases = [
            (
                "error sending request: dns error: failed to lookup address information",
                Ending::Dns,
            ),
            (
                "client error (Connect): invalid peer certificate: UnknownIssuer",
                Ending::Tls,
            ),
            (
                "received corrupt message of type InvalidContentType",
                Ending::Tls,
            ),
            (
                "tcp connect error: Connection refused (os error 111)",
                Ending::Connect,
            ),
            (
                "connection closed before message completed",
                Ending::Transport,
            ),
        ];
        for (detail, ending) in cases {
            assert_eq!(Ending::of_transport(detail), ending, "{detail}");
        }
    }
}
