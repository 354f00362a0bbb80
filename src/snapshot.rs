//! What one successful poll produced, and the store that holds each source's latest state.
//! A successful poll swaps the source's whole snapshot, so a worker the pool stopped listing
//! disappears at once; a failed poll leaves the last good snapshot where it is.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::config::WorkerSeries;
use crate::metrics::{MetricDef, WORKER_HASHRATE, WORKER_UP};

/// One series' label values (after `pool` and `source`), each a string the snapshot holds
/// once: a worker's name is shared by all of its series.
pub type Labels = Box<[Arc<str>]>;

/// Label values to sample value.
pub type Samples = BTreeMap<Labels, f64>;

#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    families: BTreeMap<&'static str, (&'static MetricDef, Samples)>,
    /// Every label value once: a farm's page has six or more series a worker, all naming the
    /// same account and worker.
    strings: HashSet<Arc<str>>,
    /// Items of the answer that were left out, by reason (`SKIP_REASONS`).
    skipped: BTreeMap<&'static str, usize>,
    /// Distinct label values cut to `MAX_LABEL_BYTES`.
    truncated: usize,
}

/// An item no lenient reading fits (see `sources::fields::Items`).
pub const SKIP_UNREADABLE: &str = "unreadable";
/// A worker with neither name nor id: nothing to label its series with.
pub const SKIP_UNNAMED: &str = "unnamed";
/// Why an item of a good answer was left out: the `reason` label of
/// `mining_exporter_items_skipped_total`, every one starting at 0.
pub const SKIP_REASONS: &[&str] = &[SKIP_UNREADABLE, SKIP_UNNAMED];

/// The longest label value a pool may put on the page, in bytes. A worker name is a few
/// dozen; a pool that sends megabytes in one would otherwise repeat them in every series.
pub const MAX_LABEL_BYTES: usize = 256;
/// What ends a label value cut to the cap, so a reader sees it was cut.
pub const TRUNCATION_MARKER: &str = "…";

/// `value`, cut on a character boundary to `MAX_LABEL_BYTES` with the marker, if longer.
fn capped(value: &str) -> Option<String> {
    if value.len() <= MAX_LABEL_BYTES {
        return None;
    }
    let mut end = MAX_LABEL_BYTES - TRUNCATION_MARKER.len();
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!(
        "{}{TRUNCATION_MARKER}",
        value.get(..end).unwrap_or_default()
    ))
}

impl Snapshot {
    /// Counts `n` more items left out for `reason`, one of `SKIP_REASONS`.
    pub fn note_skipped(&mut self, reason: &'static str, n: usize) {
        if n > 0 {
            let count = self.skipped.entry(reason).or_default();
            *count = count.saturating_add(n);
        }
    }

    /// Items the answer held that were left out, by reason.
    pub fn skipped(&self) -> impl Iterator<Item = (&'static str, usize)> + '_ {
        self.skipped.iter().map(|(reason, n)| (*reason, *n))
    }

    /// Distinct label values that were longer than `MAX_LABEL_BYTES` and were cut.
    pub fn truncated_labels(&self) -> usize {
        self.truncated
    }

    pub fn new() -> Self {
        Snapshot::default()
    }

    /// Sets one series. A non-finite value is dropped: Prometheus would store it, but no pool
    /// means NaN or infinity, and a missing series reads better on a dashboard. A label set
    /// that is already present is overwritten, so duplicates upstream never break the page.
    pub fn set(&mut self, def: &'static MetricDef, labels: &[&str], value: f64) {
        assert_eq!(
            labels.len(),
            def.labels.len(),
            "{} takes labels {:?}",
            def.name,
            def.labels
        );
        if !value.is_finite() {
            return;
        }
        let key: Labels = labels.iter().map(|l| self.intern(l)).collect();
        let (_, samples) = self
            .families
            .entry(def.name)
            .or_insert_with(|| (def, Samples::new()));
        samples.insert(key, value);
    }

    fn intern(&mut self, value: &str) -> Arc<str> {
        let cut = capped(value);
        let value = cut.as_deref().unwrap_or(value);
        if let Some(known) = self.strings.get(value) {
            return known.clone();
        }
        if cut.is_some() {
            self.truncated += 1;
        }
        let new: Arc<str> = Arc::from(value);
        self.strings.insert(new.clone());
        new
    }

    pub fn get(&self, def: &MetricDef, labels: &[&str]) -> Option<f64> {
        let (_, samples) = self.families.get(def.name)?;
        let key: Labels = labels.iter().map(|l| Arc::from(*l)).collect();
        samples.get(&key).copied()
    }

    /// The samples of one family, if it has any.
    pub fn samples(&self, def: &MetricDef) -> Option<&Samples> {
        self.families.get(def.name).map(|(_, samples)| samples)
    }

    /// Keeps the per-worker series `series` asks for, of at most `max` workers (the first by
    /// account and name, so the same ones stay from poll to poll), and returns how many
    /// workers were left out. Account families, worker counts included, are not touched:
    /// they were computed from every worker.
    pub fn limit_workers(&mut self, series: WorkerSeries, max: Option<usize>) -> usize {
        let is_worker_family = |def: &MetricDef| def.labels.starts_with(&["account", "worker"]);
        let workers: BTreeSet<(Arc<str>, Arc<str>)> = self
            .families
            .values()
            .filter(|(def, _)| is_worker_family(def))
            .flat_map(|(_, samples)| samples.keys())
            .filter_map(|labels| Some((labels.first()?.clone(), labels.get(1)?.clone())))
            .collect();
        let kept: BTreeSet<&(Arc<str>, Arc<str>)> =
            workers.iter().take(max.unwrap_or(usize::MAX)).collect();
        let omitted = workers.len() - kept.len();
        self.families.retain(|_, (def, samples)| {
            if !is_worker_family(def) {
                return true;
            }
            let wanted = match series {
                WorkerSeries::All => true,
                WorkerSeries::Essential => {
                    def.name == WORKER_HASHRATE.name || def.name == WORKER_UP.name
                }
                WorkerSeries::None => false,
            };
            if wanted && omitted > 0 {
                samples.retain(|labels, _| match (labels.first(), labels.get(1)) {
                    (Some(account), Some(worker)) => {
                        kept.contains(&(account.clone(), worker.clone()))
                    }
                    _ => false,
                });
            }
            wanted && !samples.is_empty()
        });
        omitted
    }

    pub fn series_count(&self) -> usize {
        self.families.values().map(|(_, s)| s.len()).sum()
    }

    pub fn families(&self) -> impl Iterator<Item = (&'static MetricDef, &Samples)> {
        self.families.values().map(|(def, samples)| (*def, samples))
    }
}

/// The state of one source as the exposition shows it.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    pub pool: &'static str,
    pub source: String,
    pub snapshot: Arc<Snapshot>,
    pub up: bool,
    pub polled: bool,
    pub last_success: Option<SystemTime>,
    pub last_duration: Option<Duration>,
}

#[derive(Debug, Default)]
pub struct Store {
    sources: RwLock<Vec<SourceStatus>>,
}

impl Store {
    /// One entry per source, in configuration order, found by the source's name.
    pub fn new<'a>(sources: impl IntoIterator<Item = (&'static str, &'a str)>) -> Self {
        let store = Store::default();
        store.set_sources(sources);
        store
    }

    /// The sources after a reload, in their new order: a source still there (same name and
    /// pool) keeps its state and its last good snapshot; a new one starts empty; one no
    /// longer configured is dropped, and its series leave the page at the next render.
    pub fn set_sources<'a>(&self, sources: impl IntoIterator<Item = (&'static str, &'a str)>) {
        let mut current = self.sources.write().unwrap_or_else(|e| e.into_inner());
        let mut kept: Vec<SourceStatus> = Vec::new();
        for (pool, name) in sources {
            let old = current
                .iter()
                .position(|s| s.source == name && s.pool == pool)
                .map(|i| current.swap_remove(i));
            kept.push(old.unwrap_or_else(|| SourceStatus {
                pool,
                source: name.to_string(),
                snapshot: Arc::new(Snapshot::new()),
                up: false,
                polled: false,
                last_success: None,
                last_duration: None,
            }));
        }
        *current = kept;
    }

    /// Changes the named source's state; a source no longer configured is left alone (a poll
    /// that finishes after a reload removed its source must not bring it back).
    fn update(&self, source: &str, f: impl FnOnce(&mut SourceStatus)) {
        let mut sources = self.sources.write().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = sources.iter_mut().find(|s| s.source == source) {
            f(status);
        }
    }

    pub fn record_success(&self, source: &str, snapshot: Snapshot, took: Duration, at: SystemTime) {
        let snapshot = Arc::new(snapshot);
        self.update(source, |s| {
            s.snapshot = snapshot;
            s.up = true;
            s.polled = true;
            s.last_success = Some(at);
            s.last_duration = Some(took);
        });
    }

    pub fn record_failure(&self, source: &str, took: Duration) {
        self.update(source, |s| {
            s.up = false;
            s.polled = true;
            s.last_duration = Some(took);
        });
    }

    /// Every source's state as of now. The lock is held only to clone the `Arc`s, so a render
    /// that runs for tens of milliseconds over the copy never holds back a finishing poll,
    /// whose write would otherwise wait on an async worker thread.
    pub fn statuses(&self) -> Vec<SourceStatus> {
        self.sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the named source has had a successful poll since it was configured.
    pub fn has_succeeded(&self, source: &str) -> bool {
        self.sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|s| s.source == source && s.last_success.is_some())
    }

    /// Names of the sources that have not finished a first poll, successful or not.
    pub fn not_yet_polled(&self) -> Vec<String> {
        self.statuses()
            .iter()
            .filter(|s| !s.polled)
            .map(|s| s.source.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ACCOUNT_HASHRATE, WORKER_LAST_SHARE, WORKERS};

    fn farm(workers: usize) -> Snapshot {
        let mut s = Snapshot::new();
        for i in 0..workers {
            let name = format!("rig{i:02}");
            s.set(&WORKER_UP, &["acct", &name], 1.0);
            s.set(&WORKER_HASHRATE, &["acct", &name, "sha256"], 100.0);
            s.set(&WORKER_LAST_SHARE, &["acct", &name], 1.7e9);
        }
        s.set(&WORKERS, &["acct", "active"], workers as f64);
        s.set(
            &ACCOUNT_HASHRATE,
            &["acct", "sha256"],
            100.0 * workers as f64,
        );
        s
    }

    #[test]
    fn worker_series_and_max_workers_cut_only_worker_series() {
        let mut all = farm(5);
        assert_eq!(all.limit_workers(WorkerSeries::All, None), 0);
        assert_eq!(all.series_count(), 5 * 3 + 2);

        let mut essential = farm(5);
        assert_eq!(essential.limit_workers(WorkerSeries::Essential, None), 0);
        assert_eq!(essential.series_count(), 5 * 2 + 2);
        assert!(essential.samples(&WORKER_LAST_SHARE).is_none());

        let mut none = farm(5);
        assert_eq!(none.limit_workers(WorkerSeries::None, None), 0);
        assert_eq!(none.series_count(), 2);
        assert_eq!(none.get(&WORKERS, &["acct", "active"]), Some(5.0));

        let mut capped = farm(5);
        assert_eq!(capped.limit_workers(WorkerSeries::All, Some(2)), 3);
        assert_eq!(capped.series_count(), 2 * 3 + 2);
        assert_eq!(capped.get(&WORKER_UP, &["acct", "rig00"]), Some(1.0));
        assert_eq!(capped.get(&WORKER_UP, &["acct", "rig02"]), None);
        assert_eq!(
            capped.get(&WORKERS, &["acct", "active"]),
            Some(5.0),
            "totals count all"
        );
    }

    #[test]
    fn duplicates_overwrite_and_non_finite_values_are_dropped() {
        let mut s = Snapshot::new();
        s.set(&WORKER_HASHRATE, &["a", "w1", "sha256"], 1.0);
        s.set(&WORKER_HASHRATE, &["a", "w1", "sha256"], 2.0);
        s.set(&WORKER_HASHRATE, &["a", "w2", "sha256"], f64::NAN);
        s.set(&WORKER_UP, &["a", "w1"], 1.0);
        assert_eq!(s.series_count(), 2);
        assert_eq!(s.get(&WORKER_HASHRATE, &["a", "w1", "sha256"]), Some(2.0));
        assert_eq!(s.get(&WORKER_HASHRATE, &["a", "w2", "sha256"]), None);
    }

    #[test]
    fn a_failure_keeps_the_last_good_snapshot() {
        let store = Store::new([("ultimate_proxy", "p")]);
        let mut s = Snapshot::new();
        s.set(&WORKER_UP, &["a", "w1"], 1.0);
        store.record_success("p", s, Duration::from_millis(5), SystemTime::now());
        store.record_failure("p", Duration::from_millis(7));
        let status = &store.statuses()[0];
        assert!(!status.up);
        assert_eq!(status.snapshot.series_count(), 1);
        assert_eq!(status.last_duration, Some(Duration::from_millis(7)));
        assert!(store.not_yet_polled().is_empty());
    }

    #[test]
    fn a_render_in_progress_never_holds_back_a_finishing_poll() {
        let store = Arc::new(Store::new([("ultimate_proxy", "p")]));
        // What a render works from, kept for as long as a render of 10,000 workers runs.
        let rendering = store.statuses();
        let (done, finished) = std::sync::mpsc::channel();
        let writer = store.clone();
        std::thread::spawn(move || {
            writer.record_success("p", Snapshot::new(), Duration::ZERO, SystemTime::now());
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("the finishing poll waited for the render");
        assert!(
            !rendering[0].up,
            "the render keeps the state it started from"
        );
        assert!(store.statuses()[0].up);
    }

    #[test]
    fn a_reload_keeps_what_stays_adds_what_is_new_and_drops_what_went() {
        let store = Store::new([("ultimate_proxy", "a"), ("ourpool", "b")]);
        let mut s = Snapshot::new();
        s.set(&WORKER_UP, &["acct", "w1"], 1.0);
        store.record_success("a", s, Duration::ZERO, SystemTime::now());
        store.record_success("b", Snapshot::new(), Duration::ZERO, SystemTime::now());
        store.set_sources([("luxor", "c"), ("ultimate_proxy", "a"), ("luxor", "b")]);
        let now = store.statuses();
        let names: Vec<(&str, &str)> = now.iter().map(|s| (s.pool, s.source.as_str())).collect();
        assert_eq!(
            names,
            [("luxor", "c"), ("ultimate_proxy", "a"), ("luxor", "b")]
        );
        assert_eq!(now[1].snapshot.series_count(), 1, "a kept its series");
        assert!(now[1].up);
        assert!(!now[2].polled, "b changed pool: a new source");
        assert!(!now[0].polled);
        // A late poll of a removed source does not bring it back.
        store.set_sources([("ultimate_proxy", "a")]);
        store.record_success("c", Snapshot::new(), Duration::ZERO, SystemTime::now());
        assert_eq!(store.statuses().len(), 1);
    }
}
