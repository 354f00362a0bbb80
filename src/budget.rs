//! Rate budgets. A budget holds one or more windows "N per D", all enforced as sliding
//! windows: at most N requests leave in any span of D. That also keeps every fixed window a
//! pool counts within N. A GCRA limiter (governor) with burst N lets a full burst plus the
//! refill through inside one fixed pool window, which is how a client earns a 429 or a ban, so
//! the budget keeps a log of send times instead. The pool's own rate-limit headers and 429s
//! tighten it further: they are the truth about a budget that other clients may share.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{BudgetConfig, RateWindow};

/// Longest pause a pool's headers may impose; a larger value is treated as this.
const MAX_UPSTREAM_PAUSE: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct Budget {
    name: String,
    windows: Vec<RateWindow>,
    state: Mutex<State>,
    wait_nanos: AtomicU64,
    rate_limited: AtomicU64,
}

#[derive(Debug, Default, Clone)]
struct State {
    /// Send times, oldest first; only the last `max count` entries can matter.
    sent: VecDeque<Instant>,
    /// Set by a 429's Retry-After: nothing is sent before it.
    paused_until: Option<Instant>,
    /// What the pool last said about its own window (X-RateLimit-Remaining/Reset).
    upstream: Option<UpstreamWindow>,
}

#[derive(Debug, Clone, Copy)]
struct UpstreamWindow {
    remaining: u32,
    resets_at: Instant,
}

impl Budget {
    pub fn new(config: &BudgetConfig) -> Self {
        Budget {
            name: config.name.clone(),
            windows: config.limits.clone(),
            state: Mutex::new(State::default()),
            wait_nanos: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// The same budget with the limits of `config`, after a reload: its send log, pauses and
    /// what the pool last said carry over, so new limits apply to requests already sent and a
    /// reload never opens a burst.
    pub fn reconfigured(&self, config: &BudgetConfig) -> Budget {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Budget {
            name: config.name.clone(),
            windows: config.limits.clone(),
            state: Mutex::new(state.clone()),
            wait_nanos: AtomicU64::new(self.wait_nanos.load(Ordering::Relaxed)),
            rate_limited: AtomicU64::new(self.rate_limited.load(Ordering::Relaxed)),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn windows(&self) -> &[RateWindow] {
        &self.windows
    }

    /// The longest window: no wait a pool asks for is taken longer than this.
    pub fn longest_window(&self) -> Duration {
        self.windows
            .iter()
            .map(|w| w.per)
            .max()
            .unwrap_or(MAX_UPSTREAM_PAUSE)
            .min(MAX_UPSTREAM_PAUSE)
    }

    /// Waits until one more request fits every window, then records it as sent.
    pub async fn acquire(&self) {
        let started = Instant::now();
        loop {
            let next = self.try_take(Instant::now());
            match next {
                None => break,
                Some(at) => tokio::time::sleep_until(at).await,
            }
        }
        let waited = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        self.wait_nanos.fetch_add(waited, Ordering::Relaxed);
    }

    /// Takes a slot and returns None, or returns the earliest instant worth trying again.
    fn try_take(&self, now: Instant) -> Option<Instant> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut earliest: Option<Instant> = None;
        let mut later = |at: Instant| {
            if at > now {
                earliest = Some(earliest.map_or(at, |e: Instant| e.max(at)));
            }
        };
        if let Some(until) = state.paused_until {
            later(until);
        }
        if let Some(up) = state.upstream {
            if now >= up.resets_at {
                state.upstream = None;
            } else if up.remaining == 0 {
                later(up.resets_at);
            }
        }
        let len = state.sent.len();
        for w in &self.windows {
            let count = w.count as usize;
            if len >= count {
                later(state.sent[len - count] + w.per);
            }
        }
        if earliest.is_some() {
            return earliest;
        }
        state.paused_until = None;
        state.sent.push_back(now);
        let keep = self
            .windows
            .iter()
            .map(|w| w.count as usize)
            .max()
            .unwrap_or(1);
        while state.sent.len() > keep {
            state.sent.pop_front();
        }
        if let Some(up) = state.upstream.as_mut() {
            up.remaining = up.remaining.saturating_sub(1);
        }
        None
    }

    /// Records what the pool says is left of its window. Both values are needed: a count
    /// without a reset time cannot tell when the window opens again.
    pub fn observe_upstream(&self, remaining: Option<u32>, reset_in: Option<Duration>) {
        let (Some(remaining), Some(reset_in)) = (remaining, reset_in) else {
            return;
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.upstream = Some(UpstreamWindow {
            remaining,
            resets_at: Instant::now() + reset_in.min(MAX_UPSTREAM_PAUSE),
        });
    }

    /// Called on a 429: counts it and, when the pool said how long, holds every request back.
    pub fn note_rate_limited(&self, pause: Option<Duration>) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
        if let Some(pause) = pause {
            let until = Instant::now() + pause.min(MAX_UPSTREAM_PAUSE);
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        }
    }

    /// Requests that could be sent right now in the tightest window (pool's headers included).
    pub fn remaining(&self) -> u64 {
        let now = Instant::now();
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut left = self
            .windows
            .iter()
            .map(|w| {
                let used = state
                    .sent
                    .iter()
                    .rev()
                    .take_while(|t| **t + w.per > now)
                    .count();
                (w.count as u64).saturating_sub(used as u64)
            })
            .min()
            .unwrap_or(0);
        if let Some(up) = state.upstream.filter(|u| now < u.resets_at) {
            left = left.min(up.remaining as u64);
        }
        if state.paused_until.is_some_and(|p| p > now) {
            left = 0;
        }
        left
    }

    pub fn wait_seconds_total(&self) -> f64 {
        self.wait_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    pub fn rate_limited_total(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }
}

/// Every budget the configuration uses, by name.
pub type Budgets = BTreeMap<String, std::sync::Arc<Budget>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limits: &[&str]) -> Budget {
        Budget::new(&BudgetConfig {
            name: "test".into(),
            limits: limits.iter().map(|l| l.parse().unwrap()).collect(),
            origin: "test".into(),
        })
    }

    /// The largest number of sends inside any span of `per`.
    fn max_in_any_window(times: &[Instant], per: Duration) -> usize {
        times
            .iter()
            .map(|start| {
                times
                    .iter()
                    .filter(|t| **t >= *start && **t < *start + per)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn never_bursts_past_any_window() {
        let b = budget(&["10/1m", "15/1h"]);
        let mut times = Vec::new();
        for _ in 0..25 {
            b.acquire().await;
            times.push(Instant::now());
        }
        assert_eq!(max_in_any_window(&times, Duration::from_secs(60)), 10);
        assert_eq!(max_in_any_window(&times, Duration::from_secs(3600)), 15);
        // The 16th request had to wait for the hour window, not just the minute one.
        assert!(times[15] - times[0] >= Duration::from_secs(3600));
        assert!(b.wait_seconds_total() >= 3600.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_window_is_usable_at_once() {
        let b = budget(&["5/1m"]);
        let start = Instant::now();
        for _ in 0..5 {
            b.acquire().await;
        }
        assert_eq!(Instant::now(), start);
        assert_eq!(b.remaining(), 0);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(b.remaining(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn upstream_headers_tighten_the_budget() {
        let b = budget(&["60/1m"]);
        b.observe_upstream(Some(1), Some(Duration::from_secs(30)));
        assert_eq!(b.remaining(), 1);
        let start = Instant::now();
        b.acquire().await;
        b.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_pause_holds_every_request_back() {
        let b = budget(&["60/1m"]);
        b.note_rate_limited(Some(Duration::from_secs(7)));
        assert_eq!(b.rate_limited_total(), 1);
        assert_eq!(b.remaining(), 0);
        let start = Instant::now();
        b.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn new_limits_count_the_requests_already_sent() {
        let b = budget(&["10/1m"]);
        for _ in 0..4 {
            b.acquire().await;
        }
        let tighter = b.reconfigured(&BudgetConfig {
            name: "test".into(),
            limits: vec!["5/1m".parse().unwrap()],
            origin: "test".into(),
        });
        assert_eq!(tighter.remaining(), 1, "4 of the new 5 are already used");
        let start = Instant::now();
        tighter.acquire().await;
        tighter.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_count_without_reset_time_is_ignored() {
        let b = budget(&["3/1m"]);
        b.observe_upstream(Some(0), None);
        assert_eq!(b.remaining(), 3);
    }
}
