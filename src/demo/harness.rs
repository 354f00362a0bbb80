//! What every pool simulator shares: the loopback HTTP server that stops when its handle is
//! dropped, request counters and injected failures, and the fixed rate windows two of the
//! three pools document.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use tokio_util::sync::CancellationToken;

use super::farm::unix_now;

pub type Shared<S> = Arc<Mutex<S>>;

pub fn lock<S>(state: &Shared<S>) -> std::sync::MutexGuard<'_, S> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a simulator counts, and the failures it was told to answer next.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: u64,
    pub rate_limited: u64,
    pub fail_next: VecDeque<u16>,
}

impl Counters {
    /// Counts a request.
    pub fn received(&mut self) {
        self.requests += 1;
    }

    /// The next injected failure, if one is queued.
    pub fn injected(&mut self) -> Option<axum::http::StatusCode> {
        let status = self.fail_next.pop_front()?;
        Some(
            axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        )
    }
}

pub trait Counted {
    fn counters(&mut self) -> &mut Counters;
}

/// A running simulator on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct Running<S> {
    pub addr: SocketAddr,
    /// The one key, token or watcher token it accepts.
    pub token: String,
    state: Shared<S>,
    stop: CancellationToken,
}

impl<S: Send + 'static> Running<S> {
    /// Serves `routes(state)` on a free loopback port.
    pub(crate) async fn spawn(
        state: S,
        token: String,
        routes: impl FnOnce(Shared<S>) -> Router,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(state));
        let app = routes(state.clone());
        let stop = CancellationToken::new();
        let until = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(until)
                .await;
        });
        Ok(Running {
            addr,
            token,
            state,
            stop,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut lock(&self.state))
    }
}

impl<S: Counted + Send + 'static> Running<S> {
    /// Requests received, and how many of them got a 429.
    pub fn requests(&self) -> (u64, u64) {
        self.with(|s| {
            let c = s.counters();
            (c.requests, c.rate_limited)
        })
    }

    /// The next requests (after auth and rate limits) answer these statuses, in order.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.with(|s| s.counters().fail_next.extend(statuses))
    }
}

impl<S> Drop for Running<S> {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// At most `limit` requests per fixed window of `length`, counted from the window's first
/// request, as Ultimate Proxy and OurPool describe theirs.
#[derive(Debug)]
pub struct FixedWindow {
    pub limit: u32,
    length: Duration,
    started: Instant,
    started_unix: u64,
    count: u32,
}

impl FixedWindow {
    pub fn new(limit: u32, length: Duration) -> Self {
        FixedWindow {
            limit,
            length,
            started: Instant::now(),
            started_unix: unix_now(),
            count: 0,
        }
    }

    /// Counts a request. Ok(remaining) if it fits, else Err(seconds until the window resets).
    pub fn hit(&mut self) -> Result<u32, u64> {
        if self.started.elapsed() >= self.length {
            self.started = Instant::now();
            self.started_unix = unix_now();
            self.count = 0;
        }
        self.count += 1;
        if self.count > self.limit {
            Err(self.reset_unix().saturating_sub(unix_now()).max(1))
        } else {
            Ok(self.limit - self.count)
        }
    }

    /// Unix time at which the current window ends.
    pub fn reset_unix(&self) -> u64 {
        self.started_unix + self.length.as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_window_refuses_past_its_limit() {
        let mut w = FixedWindow::new(2, Duration::from_secs(60));
        assert_eq!(w.hit(), Ok(1));
        assert_eq!(w.hit(), Ok(0));
        let wait = w.hit().unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
    }
}
