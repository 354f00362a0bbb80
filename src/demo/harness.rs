//! What every pool simulator shares: the loopback HTTP server that stops when its handle is
//! dropped, request counters and injected failures, and the fixed rate windows two of the
//! three pools document.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use axum::Router;
use tokio_util::sync::CancellationToken;

use super::farm::unix_now;

pub type Shared<S> = Arc<Mutex<S>>;

/// A refused request's answer; boxed so that results carrying it stay small.
pub type Refused = Box<axum::response::Response>;

pub fn lock<S>(state: &Shared<S>) -> std::sync::MutexGuard<'_, S> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a simulator counts, and the failures it was told to answer next.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: u64,
    pub rate_limited: u64,
    pub fail_next: VecDeque<u16>,
    /// When each request arrived, once `record_request_times` was called (tests that check
    /// every window a pool could count).
    pub times: Option<Vec<Instant>>,
    /// Until then, every authenticated request is refused with 429 and Retry-After.
    pub refusing_until: Option<Instant>,
}

impl Counters {
    /// Counts a request.
    pub fn received(&mut self) {
        self.requests += 1;
        if let Some(times) = self.times.as_mut() {
            times.push(Instant::now());
        }
    }

    /// While a refusal set by `refuse_for` runs: the whole seconds left of it, counted as a
    /// 429. The caller answers 429 with that Retry-After.
    pub fn refusing(&mut self) -> Option<u64> {
        let left = self
            .refusing_until?
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())?;
        self.rate_limited += 1;
        Some(left.as_secs_f64().ceil() as u64)
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

/// `response` (a 429) telling the client to come back in `wait` seconds.
pub fn with_retry_after(mut response: Refused, wait: u64) -> Refused {
    if let Ok(value) = axum::http::HeaderValue::from_str(&wait.to_string()) {
        response.headers_mut().insert("retry-after", value);
    }
    response
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

    /// Keeps the arrival time of every request from now on (see `request_times`).
    pub fn record_request_times(&self) {
        self.with(|s| s.counters().times = Some(Vec::new()))
    }

    /// When each request arrived since `record_request_times`, oldest first.
    pub fn request_times(&self) -> Vec<Instant> {
        self.with(|s| s.counters().times.clone().unwrap_or_default())
    }

    /// Refuses every request for `how_long` with 429 and Retry-After, as a pool that has
    /// blocked a caller does (simulators that support it check it in their gate).
    pub fn refuse_for(&self, how_long: Duration) {
        self.with(|s| s.counters().refusing_until = Some(Instant::now() + how_long))
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

/// A token bucket, as Luxor describes its limiter: `capacity` requests at once, refilled at
/// `per_second`.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(capacity: u32, per_second: f64) -> Self {
        TokenBucket {
            capacity: f64::from(capacity),
            per_second,
            tokens: f64::from(capacity),
            last: Instant::now(),
        }
    }

    /// Takes a token, or Err(whole seconds until one is back).
    pub fn take(&mut self) -> Result<(), u64> {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// A mining account's money: earned from hashrate at a hashprice, paid out past a threshold.
#[derive(Debug)]
pub struct Wallet {
    pub balance: f64,
    pub paid: f64,
    pub earned_total: f64,
    /// Coins per PH/s per day.
    pub hashprice: f64,
    /// Payouts made while running, oldest first: (Unix seconds, coins); the newest
    /// `PAYOUTS_KEPT`.
    pub payouts: std::collections::VecDeque<(u64, f64)>,
    last: Instant,
}

/// How many payouts a wallet remembers.
const PAYOUTS_KEPT: usize = 1000;

/// Payouts happen once the balance reaches this many coins.
const PAYOUT_THRESHOLD: f64 = 0.005;

impl Wallet {
    pub fn new(rng: &mut fastrand::Rng) -> Self {
        let paid = 0.2 + rng.f64();
        let balance = rng.f64() * PAYOUT_THRESHOLD;
        Wallet {
            balance,
            paid,
            earned_total: paid + balance,
            hashprice: 0.00055 + rng.f64() * 0.0001,
            payouts: std::collections::VecDeque::new(),
            last: Instant::now(),
        }
    }

    /// Coins a day at `hashrate` H/s.
    pub fn per_day(&self, hashrate: f64) -> f64 {
        hashrate / 1e15 * self.hashprice
    }

    /// Credits what `hashrate` earned since the last call; pays out past the threshold.
    pub fn accrue(&mut self, hashrate: f64) {
        let now = Instant::now();
        let days = now.duration_since(self.last).as_secs_f64() / 86_400.0;
        self.last = now;
        let earned = self.per_day(hashrate) * days;
        self.balance += earned;
        self.earned_total += earned;
        if self.balance >= PAYOUT_THRESHOLD {
            self.paid += self.balance;
            self.payouts
                .push_back((super::farm::unix_now(), self.balance));
            if self.payouts.len() > PAYOUTS_KEPT {
                self.payouts.pop_front();
            }
            self.balance = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_bucket_allows_its_burst_then_waits() {
        let mut b = TokenBucket::new(2, 1.0);
        assert_eq!(b.take(), Ok(()));
        assert_eq!(b.take(), Ok(()));
        assert_eq!(b.take(), Err(1));
    }

    #[test]
    fn a_fixed_window_refuses_past_its_limit() {
        let mut w = FixedWindow::new(2, Duration::from_secs(60));
        assert_eq!(w.hit(), Ok(1));
        assert_eq!(w.hit(), Ok(0));
        let wait = w.hit().unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
    }
}
