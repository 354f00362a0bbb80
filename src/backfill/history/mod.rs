//! What each kind of source can fetch of the past, with one skeleton per kind: `discover`
//! lists what there is (subaccounts, algorithms, workers), `tasks` cuts the span into
//! requests that each fit one page where the API allows, and `fetch` runs one task. A task
//! is the unit the progress file records, so an interrupted backfill redoes at most the
//! tasks in flight. Every point passes through `Collector`, which skips what the pool's
//! history gets wrong and counts it.

mod luxor;
mod ourpool;
mod ultimate_proxy;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::client::Upstream;
use crate::config::SourceConfig;
use crate::error::PollError;
use crate::metrics::MetricDef;

pub type HistoryFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PollError>> + Send + 'a>>;

/// Pages one task may read: tasks are cut to fit one page, so more means a broken cursor.
pub const MAX_TASK_PAGES: u32 = 100;

/// The time a backfill covers for one source, in Unix seconds: points at `from <= t <
/// until`, out of what the pool has finished by `now`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub from: i64,
    pub until: i64,
    pub now: i64,
}

/// What discovery found: the names the tasks are made from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    /// Subaccounts (Luxor) or algorithms (Ultimate Proxy).
    pub names: Vec<String>,
    /// Workers whose series are fetched one by one: (id, name, algorithm).
    pub workers: Vec<(String, String, String)>,
}

/// One request's worth of history, or one walk of pages where the API gives no ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Stable for the same arguments: what the progress file knows the task by.
    pub id: String,
    /// The endpoint, as the dry run names it.
    pub endpoint: &'static str,
    /// Who it is about: a subaccount, an algorithm, a worker.
    pub subject: String,
    /// A second subject where one is needed (the worker's algorithm, Luxor's page size).
    pub detail: String,
    pub from: i64,
    pub until: i64,
    /// Seconds between the points it brings.
    pub tick: i64,
    /// Requests it should take.
    pub requests: u32,
}

/// Points skipped because the pool's history disagreed with itself, by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// A second value for a time the series already has.
    pub repeated: u64,
    /// Earlier than the point before it in the same answer.
    pub out_of_order: u64,
    /// Not on the series' tick.
    pub off_tick: u64,
    /// A time or value that is not one.
    pub unreadable: u64,
    /// Totals that the pool's own figures contradict (a cumulative total below zero).
    pub inconsistent: u64,
    /// Ticks absent between two that came (not skipped: nothing came to skip).
    pub missing: u64,
    /// Ticks the pool no longer serves at the task's tick: the task ran after the API's
    /// range (which ends at the request) had moved past them. Where a coarser range still
    /// has the time its point is written instead; the finer ticks are counted here.
    #[serde(default)]
    pub expired: u64,
}

impl Skipped {
    pub fn add(&mut self, other: &Skipped) {
        self.repeated += other.repeated;
        self.out_of_order += other.out_of_order;
        self.off_tick += other.off_tick;
        self.unreadable += other.unreadable;
        self.inconsistent += other.inconsistent;
        self.missing += other.missing;
        self.expired += other.expired;
    }

    /// The reasons with a count, for the summary.
    pub fn counts(&self) -> [(&'static str, u64); 7] {
        [
            ("repeated", self.repeated),
            ("out_of_order", self.out_of_order),
            ("off_tick", self.off_tick),
            ("unreadable", self.unreadable),
            ("inconsistent", self.inconsistent),
            ("missing", self.missing),
            ("expired", self.expired),
        ]
    }
}

/// A series of the metric contract: its family and the values of its labels after `pool`
/// and `source`, in the family's order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub family: &'static str,
    pub labels: Vec<String>,
}

/// Why `Collector` left a point out.
enum Refused {
    Unreadable,
    OffTick,
    Repeated,
    OutOfOrder,
    /// Outside what the task asked for: not the pool's fault, not counted.
    OutOfRange,
}

impl SeriesKey {
    fn new(family: &'static MetricDef, labels: &[&str]) -> Self {
        SeriesKey {
            family: family.name,
            labels: labels.iter().map(|l| (*l).to_string()).collect(),
        }
    }
}

/// What one task brought.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// Each series' points by time, one value a time.
    pub series: BTreeMap<SeriesKey, BTreeMap<i64, f64>>,
    pub skipped: Skipped,
}

/// Takes a task's points in the order the answers give them and keeps only the good ones:
/// inside the task's range, on its tick, finite, and later than the series' last point in
/// the same answer. The first value for a time wins.
pub struct Collector<'a> {
    task: &'a Task,
    now: i64,
    fetched: Fetched,
    /// The last time each series took in the answer being read.
    last: BTreeMap<SeriesKey, i64>,
    /// Series of records (not of figures beside them): where missing ticks are counted.
    primary: BTreeSet<SeriesKey>,
}

impl<'a> Collector<'a> {
    pub fn new(task: &'a Task, now: i64) -> Self {
        Collector {
            task,
            now,
            fetched: Fetched::default(),
            last: BTreeMap::new(),
            primary: BTreeSet::new(),
        }
    }

    /// The next answer (page) begins: order is checked within one answer only.
    pub fn next_answer(&mut self) {
        self.last.clear();
    }

    /// A value the pool sent that could not be read as a time or a number.
    pub fn unreadable(&mut self) {
        self.fetched.skipped.unreadable += 1;
    }

    /// A second record of one the task already has (a transaction id seen before).
    pub fn repeated(&mut self) {
        self.fetched.skipped.repeated += 1;
    }

    /// A total the pool's other figures contradict.
    pub fn inconsistent(&mut self) {
        self.fetched.skipped.inconsistent += 1;
    }

    /// One point of `family` with `labels` at `t` (Unix seconds, maybe fractional).
    pub fn point(&mut self, family: &'static MetricDef, labels: &[&str], t: f64, value: f64) {
        let key = SeriesKey::new(family, labels);
        if !self.primary.contains(&key) {
            self.primary.insert(key.clone());
        }
        if let Err(reason) = self.take(key, t, value) {
            let s = &mut self.fetched.skipped;
            match reason {
                Refused::Unreadable => s.unreadable += 1,
                Refused::OffTick => s.off_tick += 1,
                Refused::Repeated => s.repeated += 1,
                Refused::OutOfOrder => s.out_of_order += 1,
                Refused::OutOfRange => {}
            }
        }
    }

    /// A second figure of a record `point` already took (an efficiency beside a
    /// hashrate): kept by the same rules, but a record skipped is counted once.
    pub fn beside(&mut self, family: &'static MetricDef, labels: &[&str], t: f64, value: f64) {
        let _ = self.take(SeriesKey::new(family, labels), t, value);
    }

    fn take(&mut self, key: SeriesKey, t: f64, value: f64) -> Result<(), Refused> {
        if !t.is_finite() || !value.is_finite() {
            return Err(Refused::Unreadable);
        }
        if t.fract() != 0.0 {
            return Err(Refused::OffTick);
        }
        // Whole, checked above; the range keeps the cast exact.
        if !(0.0..4e12).contains(&t) {
            return Err(Refused::Unreadable);
        }
        let t = t as i64;
        let task = self.task;
        if t < task.from || t >= task.until || t + task.tick > self.now {
            return Err(Refused::OutOfRange);
        }
        if t.rem_euclid(task.tick) != 0 {
            return Err(Refused::OffTick);
        }
        let points = self.fetched.series.entry(key.clone()).or_default();
        if points.contains_key(&t) {
            return Err(Refused::Repeated);
        }
        if self.last.get(&key).is_some_and(|last| t < *last) {
            return Err(Refused::OutOfOrder);
        }
        self.last.insert(key, t);
        points.insert(t, value);
        Ok(())
    }

    /// The points kept, with the ticks missing inside each series counted.
    pub fn finish(mut self) -> Fetched {
        let tick = self.task.tick;
        for (key, points) in &self.fetched.series {
            if !self.primary.contains(key) {
                continue;
            }
            let times: BTreeSet<i64> = points.keys().copied().collect();
            if let (Some(first), Some(last)) = (times.first(), times.last()) {
                let expected = (last - first) / tick + 1;
                let got = i64::try_from(times.len()).unwrap_or(i64::MAX);
                self.fetched.skipped.missing += u64::try_from(expected - got).unwrap_or(0);
            }
        }
        self.fetched
    }
}

/// The history a kind of source can fetch.
pub trait History: Send + Sync {
    /// Lists what the tasks are made of; a kind that needs nothing asks nothing.
    fn discover<'a>(&'a self, api: &'a Upstream, workers: bool) -> HistoryFuture<'a, Discovery>;
    /// The tasks for `span`: the same list every time for the same inputs.
    fn tasks(&self, discovery: &Discovery, span: &Span, workers: bool) -> Vec<Task>;
    /// Runs one task.
    fn fetch<'a>(
        &'a self,
        api: &'a Upstream,
        task: &'a Task,
        span: &'a Span,
    ) -> HistoryFuture<'a, Fetched>;
}

/// The history of `source`'s kind, or why it has none.
pub fn of(source: &SourceConfig) -> Result<Box<dyn History>, String> {
    let any = source.settings.as_any();
    if let Some(settings) = any.downcast_ref::<crate::sources::luxor::LuxorConfig>() {
        return Ok(Box::new(luxor::LuxorHistory::new(settings)));
    }
    if let Some(settings) =
        any.downcast_ref::<crate::sources::ultimate_proxy::config::UltimateProxyConfig>()
    {
        return Ok(Box::new(ultimate_proxy::UltimateProxyHistory::new(
            settings,
        )));
    }
    if let Some(settings) = any.downcast_ref::<crate::sources::ourpool::config::OurPoolConfig>() {
        return Ok(Box::new(ourpool::OurPoolHistory::new(settings)));
    }
    Err(format!(
        "a {} source has no history endpoints the backfill knows",
        source.kind()
    ))
}

/// Cuts `[from, until)` into pieces of at most `days` whole UTC days, aligned to midnight.
pub fn by_days(from: i64, until: i64, days: i64) -> Vec<(i64, i64)> {
    let step = days.max(1) * 86_400;
    let mut pieces = Vec::new();
    let mut start = from;
    while start < until {
        let end = (start.div_euclid(86_400) * 86_400 + step).min(until);
        pieces.push((start, end));
        start = end;
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ACCOUNT_HASHRATE;

    fn task() -> Task {
        Task {
            id: "t".into(),
            endpoint: "e",
            subject: "s".into(),
            detail: String::new(),
            from: 300,
            until: 3000,
            tick: 300,
            requests: 1,
        }
    }

    #[test]
    fn the_collector_keeps_good_points_and_counts_the_rest() {
        let task = task();
        let mut c = Collector::new(&task, 10_000);
        let labels = ["a", "sha256"];
        c.point(&ACCOUNT_HASHRATE, &labels, 300.0, 1.0);
        c.point(&ACCOUNT_HASHRATE, &labels, 900.0, 3.0);
        c.point(&ACCOUNT_HASHRATE, &labels, 600.0, 2.0); // earlier than 900 in one answer
        c.point(&ACCOUNT_HASHRATE, &labels, 900.0, 9.0); // a second value for 900
        c.point(&ACCOUNT_HASHRATE, &labels, 1000.0, 4.0); // off the 5-minute tick
        c.point(&ACCOUNT_HASHRATE, &labels, 1200.5, 4.0); // not a whole second
        c.point(&ACCOUNT_HASHRATE, &labels, f64::NAN, 4.0);
        c.point(&ACCOUNT_HASHRATE, &labels, 0.0, 4.0); // before the task: not asked for
        c.next_answer();
        c.point(&ACCOUNT_HASHRATE, &labels, 1500.0, 5.0);
        let got = c.finish();
        let key = SeriesKey {
            family: ACCOUNT_HASHRATE.name,
            labels: vec!["a".into(), "sha256".into()],
        };
        let points: Vec<(i64, f64)> = got.series[&key].iter().map(|(t, v)| (*t, *v)).collect();
        assert_eq!(points, [(300, 1.0), (900, 3.0), (1500, 5.0)]);
        let s = got.skipped;
        assert_eq!(
            (s.out_of_order, s.repeated, s.off_tick, s.unreadable),
            (1, 1, 2, 1)
        );
        assert_eq!(s.missing, 2, "300..1500 has 5 ticks, 3 came");
    }

    #[test]
    fn days_are_cut_at_midnight() {
        let pieces = by_days(3600, 5 * 86_400, 2);
        assert_eq!(
            pieces,
            [
                (3600, 2 * 86_400),
                (2 * 86_400, 4 * 86_400),
                (4 * 86_400, 5 * 86_400)
            ]
        );
    }
}
