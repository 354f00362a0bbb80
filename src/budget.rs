//! Rate budgets. A budget holds one or more windows "N per D", all enforced as sliding
//! windows: at most N requests leave in any span of D. That also keeps every fixed window a
//! pool counts within N. A GCRA limiter (governor) with burst N lets a full burst plus the
//! refill through inside one fixed pool window, which is how a client earns a 429 or a ban, so
//! the budget keeps a log of send times instead. The pool's own rate-limit headers and 429s
//! tighten it further: they are the truth about a budget that other clients may share.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{BudgetConfig, RateWindow};

/// Longest pause a pool's `Retry-After` may impose beyond the budget's longest window.
pub const MAX_UPSTREAM_PAUSE: Duration = Duration::from_secs(3600);

/// How finely the send log keeps each window: sends closer together than a bucket's width
/// (a window / this) may share one entry, dated at the newest of them. A group is only as
/// wide as the shortest window that still counts it allows: while a send can matter to a
/// one-second window its group is a millisecond wide, and once only the day window counts it
/// the group may grow to the day's bucket, 84 s. Dating a group by its newest send makes
/// every one of them count for as long as the newest does, so grouping can only hold
/// requests back, never let one more through, and it holds each window back by at most one
/// of its own buckets; "10000000/1h" or "1000000000/1m" costs a few thousand entries, not
/// millions.
pub const SEND_LOG_BUCKETS: usize = 1024;

/// The log is gathered into its groups again once it holds this many entries per window;
/// gathered, it holds at most about half as many.
pub const SEND_LOG_ENTRIES_PER_WINDOW: usize = 4 * SEND_LOG_BUCKETS;

/// What the page shows of a budget, recorded by those who send through it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetFigures {
    /// Requests allowed right now in the tightest window.
    pub remaining: u64,
    pub wait_seconds_total: f64,
    pub rate_limited_total: u64,
}

#[derive(Debug)]
pub struct Budget {
    name: String,
    windows: Vec<RateWindow>,
    /// The share of the windows the poll plan fills.
    target: f64,
    state: Mutex<State>,
    wait_nanos: AtomicU64,
    rate_limited: AtomicU64,
    /// Bumped on every send and pause, so the state file is written only after a change.
    changes: AtomicU64,
}

#[derive(Debug, Default, Clone)]
struct State {
    /// Sends, oldest first, grouped (see `SEND_LOG_BUCKETS`); kept for the longest window.
    /// Every send known: this process's and those other processes' state told of.
    sent: VecDeque<Sent>,
    /// This process's own sends alone, kept the same way: what it writes to the state file
    /// as its part, beside the other writers' parts (which it never writes as its own).
    own: VecDeque<Sent>,
    /// How many sends this process has made through this budget, ever.
    own_total: u64,
    /// Set by a 429's Retry-After: nothing is sent before it.
    paused_until: Option<Instant>,
    /// What the pool last said about its own window (X-RateLimit-Remaining/Reset).
    upstream: Option<UpstreamWindow>,
}

/// `count` sends, all counted as made at `at`; `opened` is when the group's first was made.
#[derive(Debug, Clone, Copy)]
struct Sent {
    opened: Instant,
    at: Instant,
    count: u64,
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
            target: config.target,
            state: Mutex::new(State::default()),
            wait_nanos: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            changes: AtomicU64::new(0),
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
            target: config.target,
            state: Mutex::new(state.clone()),
            wait_nanos: AtomicU64::new(self.wait_nanos.load(Ordering::Relaxed)),
            rate_limited: AtomicU64::new(self.rate_limited.load(Ordering::Relaxed)),
            changes: AtomicU64::new(self.changes.load(Ordering::Relaxed)),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn windows(&self) -> &[RateWindow] {
        &self.windows
    }

    /// The longest window: sends are kept this long, and no reset a pool announces is
    /// taken as further away than this.
    pub fn longest_window(&self) -> Duration {
        self.windows
            .iter()
            .map(|w| w.per)
            .max()
            .unwrap_or(MAX_UPSTREAM_PAUSE)
    }

    /// The longest pause a pool's wait may impose: a block may outlast a short window.
    pub fn longest_pause(&self) -> Duration {
        self.longest_window().max(MAX_UPSTREAM_PAUSE)
    }

    /// How wide a group of sends the newest of which is `age` old may be: a bucket of the
    /// shortest window that still counts it.
    fn group_width(&self, age: Duration) -> Duration {
        let per = self
            .windows
            .iter()
            .map(|w| w.per)
            .filter(|per| *per > age)
            .min()
            .unwrap_or_else(|| self.longest_window());
        per / SEND_LOG_BUCKETS as u32
    }

    /// Waits until one more request fits every window, then records it as sent.
    pub async fn acquire(&self) {
        acquire_all(&[self]).await
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The earliest instant a request fits every window and pause, or None if one fits now.
    fn next_free(&self, state: &mut State, now: Instant) -> Option<Instant> {
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
        for w in &self.windows {
            // The window is full while `count` sends lie inside it: it opens when the
            // count-th newest leaves.
            let mut seen = 0u64;
            for sent in state.sent.iter().rev() {
                if sent.at + w.per <= now {
                    break;
                }
                seen = seen.saturating_add(sent.count);
                if seen >= u64::from(w.count) {
                    later(sent.at + w.per);
                    break;
                }
            }
        }
        earliest
    }

    fn record(&self, state: &mut State, now: Instant) {
        state.paused_until = None;
        self.add_sends(&mut state.sent, now, 1);
        self.add_sends(&mut state.own, now, 1);
        state.own_total = state.own_total.saturating_add(1);
        self.forget_old(state, now);
        if let Some(up) = state.upstream.as_mut() {
            up.remaining = up.remaining.saturating_sub(1);
        }
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `count` sends made at `at`, which is no older than the newest entry of `log`;
    /// regroups the log when it has grown past its size.
    fn add_sends(&self, log: &mut VecDeque<Sent>, at: Instant, count: u64) {
        let width = self.group_width(Duration::ZERO);
        match log.back_mut() {
            Some(last) if at >= last.at && at < last.opened + width => {
                last.at = at;
                last.count = last.count.saturating_add(count);
            }
            _ => log.push_back(Sent {
                opened: at,
                at,
                count,
            }),
        }
        let most = SEND_LOG_ENTRIES_PER_WINDOW.saturating_mul(self.windows.len().max(1));
        if log.len() > most {
            self.regroup(log, at);
        }
    }

    /// Gathers neighbouring entries into groups as wide as their age allows: a group whose
    /// newest send only longer windows still count may span a bucket of the shortest of them.
    fn regroup(&self, log: &mut VecDeque<Sent>, now: Instant) {
        let mut grouped: VecDeque<Sent> = VecDeque::with_capacity(log.len() / 2 + 1);
        for sent in log.drain(..) {
            let width = self.group_width(now.saturating_duration_since(sent.at));
            match grouped.back_mut() {
                Some(group) if sent.at <= group.opened + width => {
                    group.at = sent.at;
                    group.count = group.count.saturating_add(sent.count);
                }
                _ => grouped.push_back(sent),
            }
        }
        *log = grouped;
    }

    /// Drops the sends no window counts any more.
    fn forget_old(&self, state: &mut State, now: Instant) {
        let longest = self.longest_window();
        for log in [&mut state.sent, &mut state.own] {
            while log.front().is_some_and(|s| s.at + longest <= now) {
                log.pop_front();
            }
        }
    }

    /// Records what the pool says is left of its window. Both values are needed: a count
    /// without a reset time cannot tell when the window opens again.
    pub fn observe_upstream(&self, remaining: Option<u32>, reset_in: Option<Duration>) {
        let (Some(remaining), Some(reset_in)) = (remaining, reset_in) else {
            return;
        };
        let longest = self.longest_window();
        let mut state = self.lock();
        state.upstream = Some(UpstreamWindow {
            remaining,
            resets_at: Instant::now() + reset_in.min(longest),
        });
    }

    /// Counts a 429 the pool returned.
    pub fn note_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Holds every request back for `pause` (at most `longest_pause`): the pool said to wait.
    pub fn pause(&self, pause: Duration) {
        if pause.is_zero() {
            return;
        }
        let until = Instant::now() + pause.min(self.longest_pause());
        let mut state = self.lock();
        state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests that could be sent right now in the tightest window (pool's headers included).
    pub fn remaining(&self) -> u64 {
        let now = Instant::now();
        let state = self.lock();
        let mut left = self
            .windows
            .iter()
            .map(|w| {
                let used: u64 = state
                    .sent
                    .iter()
                    .rev()
                    .take_while(|s| s.at + w.per > now)
                    .map(|s| s.count)
                    .sum();
                u64::from(w.count).saturating_sub(used)
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

    /// What the page shows of this budget, as of now.
    pub fn figures(&self) -> BudgetFigures {
        BudgetFigures {
            remaining: self.remaining(),
            wait_seconds_total: self.wait_seconds_total(),
            rate_limited_total: self.rate_limited_total(),
        }
    }

    pub fn target(&self) -> f64 {
        self.target
    }

    /// Grows with every send and pause; unchanged means nothing new to save.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    /// What a restart needs to go on where this budget stood: how long ago each send that
    /// can still matter left, and how long a pool-imposed pause still runs.
    pub fn send_log(&self, now: Instant) -> SendLog {
        let state = self.lock();
        self.log_of(&state.sent, state.paused_until, now)
    }

    /// This process's own sends that still count, and the pause in force: its part of the
    /// state file. Sends taken in from other processes are theirs to write.
    pub fn own_log(&self, now: Instant) -> SendLog {
        let state = self.lock();
        self.log_of(&state.own, state.paused_until, now)
    }

    /// How many requests this process has sent through this budget, ever.
    pub fn own_total(&self) -> u64 {
        self.lock().own_total
    }

    fn log_of(&self, log: &VecDeque<Sent>, paused: Option<Instant>, now: Instant) -> SendLog {
        let longest = self.longest_window();
        SendLog {
            sent: log
                .iter()
                .map(|s| (now.saturating_duration_since(s.at), s.count))
                .filter(|(ago, _)| *ago < longest)
                .collect(),
            paused_for: paused
                .map(|p| p.saturating_duration_since(now))
                .filter(|d| !d.is_zero()),
        }
    }

    /// Takes in sends and a pause another run or process made, as if this budget had made
    /// them: they count against every window (but are not this process's to write).
    pub fn restore(&self, log: &SendLog, now: Instant) {
        self.take_in(log, now, false);
    }

    /// `restore`, where `own` also makes the sends this process's to write.
    fn take_in(&self, log: &SendLog, now: Instant, own: bool) {
        let longest = self.longest_window();
        let sent: Vec<(Instant, u64)> = log
            .sent
            .iter()
            .filter(|(ago, count)| *ago < longest && *count > 0)
            .filter_map(|(ago, count)| Some((now.checked_sub(*ago)?, *count)))
            .collect();
        let mut state = self.lock();
        if !sent.is_empty() {
            let merged = |log: &VecDeque<Sent>| {
                let mut all: Vec<(Instant, u64)> = sent.clone();
                all.extend(log.iter().map(|s| (s.at, s.count)));
                all.sort_by_key(|(at, _)| *at);
                let mut out = VecDeque::new();
                for (at, count) in all {
                    self.add_sends(&mut out, at, count);
                }
                out
            };
            state.sent = merged(&state.sent);
            if own {
                state.own = merged(&state.own);
                let count: u64 = sent.iter().map(|(_, n)| n).sum();
                state.own_total = state.own_total.saturating_add(count);
            }
            self.forget_old(&mut state, now);
        }
        if let Some(pause) = log.paused_for {
            let until = now + pause.min(self.longest_pause());
            state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        }
    }

    /// With no record of the previous run, assume it sent at the planned pace up to now:
    /// sends spread evenly over the longest window at `target` of the tightest rate. A
    /// restart then starts with the headroom a steady run leaves, not with full windows.
    pub fn assume_partly_used(&self, now: Instant) {
        let Some(rate) = self
            .windows
            .iter()
            .map(|w| f64::from(w.count) / w.per.as_secs_f64())
            .min_by(f64::total_cmp)
        else {
            return;
        };
        let longest = self.longest_window();
        // A hair above the product, so that 0.85 x 1000 is 850 and not 849.99999...
        let sends = (rate * self.target * longest.as_secs_f64() * (1.0 + 1e-12)).floor();
        if !(1.0..=u64::MAX as f64).contains(&sends) {
            return;
        }
        // In range, checked above: the cast is exact up to the fraction floor() dropped.
        let sends = sends as u64;
        // Send i (0 = the newest) left (i + 1/2) gaps ago; a group of them is dated at its
        // newest, so no more than one entry per bucket is made whatever the count.
        let groups = sends.min(SEND_LOG_BUCKETS as u64);
        let log = SendLog {
            sent: (0..groups)
                .map(|g| {
                    let first = g * sends / groups;
                    let next = (g + 1) * sends / groups;
                    let ago = longest.mul_f64((first as f64 + 0.5) / sends as f64);
                    (ago, next - first)
                })
                .collect(),
            paused_for: None,
        };
        // This process's to write: a restart soon after still finds them in the state file.
        self.take_in(&log, now, true);
    }
}

/// A budget's sends that still count, relative to a moment: what a state file keeps. Each
/// entry is how long ago, and how many sends were made then.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SendLog {
    pub sent: Vec<(Duration, u64)>,
    pub paused_for: Option<Duration>,
}

/// Waits until one more request fits every window of every budget given (a source's own and
/// its host's), then records it in all of them at once: a slot is never held in one budget
/// while waiting for another. The time waited is counted by the budget that held it back.
pub async fn acquire_all(budgets: &[&Budget]) {
    // One lock order for every caller, so two sources sharing a host cannot deadlock.
    let mut budgets: Vec<&Budget> = budgets.to_vec();
    budgets.sort_by(|a, b| a.name.cmp(&b.name));
    budgets.dedup_by(|a, b| std::ptr::eq(*a, *b));
    loop {
        let now = Instant::now();
        let Some((at, holding)) = take_or_wait(&budgets, now) else {
            return;
        };
        tokio::time::sleep_until(at).await;
        if let Some(budget) = budgets.get(holding) {
            let waited = at.saturating_duration_since(now).as_nanos();
            budget
                .wait_nanos
                .fetch_add(u64::try_from(waited).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
    }
}

/// Records a send in every budget if all have room now; else when to try again, and which
/// budget is the one to wait for.
fn take_or_wait(budgets: &[&Budget], now: Instant) -> Option<(Instant, usize)> {
    let mut states: Vec<MutexGuard<'_, State>> = budgets.iter().map(|b| b.lock()).collect();
    let mut wait: Option<(Instant, usize)> = None;
    for (i, (budget, state)) in budgets.iter().zip(states.iter_mut()).enumerate() {
        if let Some(at) = budget.next_free(state, now) {
            if wait.is_none_or(|(w, _)| at > w) {
                wait = Some((at, i));
            }
        }
    }
    if wait.is_none() {
        for (budget, state) in budgets.iter().zip(states.iter_mut()) {
            budget.record(state, now);
        }
    }
    wait
}

/// Every budget the configuration uses, by name.
pub type Budgets = BTreeMap<String, std::sync::Arc<Budget>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, limits: &[&str]) -> BudgetConfig {
        BudgetConfig {
            name: name.into(),
            limits: limits.iter().map(|l| l.parse().unwrap()).collect(),
            origin: "test".into(),
            target: 0.85,
        }
    }

    fn budget(limits: &[&str]) -> Budget {
        Budget::new(&config("test", limits))
    }

    /// The largest number of sends (in order) inside any span of `per`.
    fn max_in_any_window(times: &[Instant], per: Duration) -> usize {
        crate::plan::most_in_any_span(times, per)
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
        b.note_rate_limited();
        b.pause(Duration::from_secs(7));
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
        let tighter = b.reconfigured(&config("test", &["5/1m"]));
        assert_eq!(tighter.remaining(), 1, "4 of the new 5 are already used");
        let start = Instant::now();
        tighter.acquire().await;
        tighter.acquire().await;
        assert!(Instant::now() - start >= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waits_for_every_budget_it_counts_against_holding_no_slot_meanwhile() {
        let key = budget(&["5/1m"]);
        let host = Budget::new(&config("host:pool.example", &["2/1m"]));
        let start = Instant::now();
        acquire_all(&[&key, &host]).await;
        acquire_all(&[&key, &host]).await;
        assert_eq!((key.remaining(), host.remaining()), (3, 0));
        let both = [&key, &host];
        let third = acquire_all(&both);
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(Duration::from_secs(30), &mut third)
                .await
                .is_err()
        );
        assert_eq!(
            key.remaining(),
            3,
            "no slot of the key is held while the host is full"
        );
        third.await;
        assert_eq!(Instant::now() - start, Duration::from_secs(60));
        assert!(host.wait_seconds_total() >= 60.0 && key.wait_seconds_total() == 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_with_no_record_starts_as_if_used_at_its_target_pace() {
        let b = budget(&["10/1m"]);
        b.assume_partly_used(Instant::now());
        // 8 of 10 (85 %, rounded down) spread over the last minute: 2 free now, and one
        // more each time an assumed send leaves the window.
        assert_eq!(b.remaining(), 2);
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(b.remaining(), 3);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(b.remaining(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_count_without_reset_time_is_ignored() {
        let b = budget(&["3/1m"]);
        b.observe_upstream(Some(0), None);
        assert_eq!(b.remaining(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_day_window_keeps_its_sends_for_the_day() {
        let b = budget(&["1000/1d"]);
        for _ in 0..10 {
            b.acquire().await;
        }
        tokio::time::advance(Duration::from_secs(5 * 3600)).await;
        assert_eq!(b.remaining(), 990);
        let log = b.send_log(Instant::now());
        let kept: u64 = log.sent.iter().map(|(_, n)| *n).sum();
        assert_eq!(
            kept, 10,
            "sends five hours old still count in a day: {log:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_day_window_with_no_record_is_assumed_used_over_the_day() {
        let b = budget(&["1000/1d"]);
        b.assume_partly_used(Instant::now());
        assert_eq!(b.remaining(), 150);
        // Two hours free a twelfth of the 850 assumed, not all of them.
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        let left = b.remaining();
        assert!((200..=230).contains(&left), "{left}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_reset_hours_away_is_honoured_up_to_the_longest_window() {
        let b = budget(&["1000/1d"]);
        b.observe_upstream(Some(0), Some(Duration::from_secs(5 * 3600)));
        tokio::time::advance(Duration::from_secs(2 * 3600)).await;
        assert_eq!(b.remaining(), 0, "the pool's window resets in five hours");
        tokio::time::advance(Duration::from_secs(3 * 3600)).await;
        assert_eq!(b.remaining(), 1000);
        assert_eq!(b.longest_window(), Duration::from_secs(86_400));
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_count_keeps_the_assumed_use_and_the_state_small() {
        for limits in [["10000000/1h"], ["1000000000/1m"]] {
            let b = budget(&limits);
            b.assume_partly_used(Instant::now());
            let log = b.send_log(Instant::now());
            assert!(
                log.sent.len() <= 2 * SEND_LOG_BUCKETS,
                "{limits:?}: {} entries",
                log.sent.len()
            );
            let assumed: u64 = log.sent.iter().map(|(_, n)| *n).sum();
            let count = u64::from(b.windows()[0].count);
            assert_eq!(assumed, (count as f64 * 0.85).floor() as u64, "{limits:?}");
            assert_eq!(b.remaining(), count - assumed, "{limits:?}");
            for _ in 0..5000 {
                b.acquire().await;
            }
            assert!(b.send_log(Instant::now()).sent.len() <= 2 * SEND_LOG_BUCKETS + 1);
        }
    }

    /// Grouping holds back only what the windows would, give or take one bucket of the
    /// shortest window: a day window beside a one-second one must not slow the second's
    /// ten a second to one.
    #[tokio::test(start_paused = true)]
    async fn a_short_window_beside_a_day_window_runs_at_its_own_pace() {
        let b = budget(&["10/1s", "10000/1d"]);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..100 {
            b.acquire().await;
            times.push(Instant::now());
        }
        let took = Instant::now() - start;
        println!("100 requests under 10/1s beside 10000/1d: {took:?}");
        let bucket = Duration::from_secs(1) / SEND_LOG_BUCKETS as u32;
        assert!(
            took <= Duration::from_secs(9) + 10 * bucket,
            "100 requests at 10 a second took {took:?}"
        );
        assert!(max_in_any_window(&times, Duration::from_secs(1)) <= 10);
        assert_eq!(b.remaining(), 0, "the last ten just left");
        tokio::time::advance(Duration::from_secs(1) + bucket).await;
        assert_eq!(
            b.remaining(),
            10,
            "a second later the short window is free again"
        );
    }

    /// However many sends and windows, the log stays a few buckets a window long, and what
    /// it keeps still holds the day window to its count.
    #[tokio::test(start_paused = true)]
    async fn many_sends_under_a_short_and_a_day_window_keep_the_log_small() {
        let b = budget(&["1000/1s", "15000/1d"]);
        let mut times = Vec::new();
        for _ in 0..20_000u64 {
            b.acquire().await;
            times.push(Instant::now());
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        // A millisecond apart, 15,000 sends a day would be 15,000 entries.
        let entries = b.send_log(Instant::now()).sent.len();
        assert!(
            entries <= 2 * SEND_LOG_ENTRIES_PER_WINDOW,
            "{entries} entries for two windows"
        );
        assert!(max_in_any_window(&times, Duration::from_secs(86_400)) <= 15_000);
        assert!(max_in_any_window(&times, Duration::from_secs(1)) <= 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn sends_grouped_in_one_entry_never_let_more_through_than_the_window() {
        let b = budget(&["100/10s"]);
        let mut times = Vec::new();
        for i in 0..400u64 {
            b.acquire().await;
            times.push(Instant::now());
            tokio::time::advance(Duration::from_millis(i % 7)).await;
        }
        assert!(max_in_any_window(&times, Duration::from_secs(10)) <= 100);
        // And restored from its own log, it still counts every send.
        let restored = budget(&["100/10s"]);
        restored.restore(&b.send_log(Instant::now()), Instant::now());
        assert_eq!(restored.remaining(), b.remaining());
    }
}
