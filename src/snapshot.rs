//! What one successful poll produced, and the store that holds each source's latest state.
//! A successful poll swaps the source's whole snapshot, so a worker the pool stopped listing
//! disappears at once; a failed poll leaves the last good snapshot where it is.
//!
//! A snapshot is compact because a farm's is large (six series a worker, 100,000 workers):
//! every label value is held once in one text, each series is its label values' numbers and
//! its value in a family's arrays, and the lookup tables that keep duplicates out while the
//! snapshot is built are dropped when it is sealed (sorted, as the page lists series).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use hashbrown::HashTable;

use crate::config::WorkerSeries;
use crate::metrics::{MetricDef, WORKER_HASHRATE, WORKER_UP};

#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    families: BTreeMap<&'static str, Family>,
    strings: Strings,
    /// Whether every family is in label order, with no lookup table left.
    sealed: bool,
    /// Items of the answer that were left out, by reason (`SKIP_REASONS`).
    skipped: BTreeMap<&'static str, usize>,
    /// Distinct label values cut to `MAX_LABEL_BYTES`.
    truncated: usize,
}

/// Every label value of a snapshot once, numbered in the order first seen.
#[derive(Debug, Default, Clone)]
struct Strings {
    text: String,
    /// Where each value ends in `text`; each starts where the one before ends.
    ends: Vec<usize>,
    /// Value numbers by their text, while the snapshot is built.
    index: HashTable<u32>,
    hasher: RandomState,
}

impl Strings {
    fn get(&self, id: u32) -> &str {
        value_in((&self.text, &self.ends), id)
    }

    /// The number of `value`, added if new; None past u32::MAX values. Only while the
    /// snapshot is built: a sealed one has no table.
    fn intern(&mut self, value: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(value);
        if let Some(&id) = self.index.find(hash, |&id| self.get(id) == value) {
            return Some(id);
        }
        let id = u32::try_from(self.ends.len()).ok()?;
        self.text.push_str(value);
        self.ends.push(self.text.len());
        let Strings {
            text,
            ends,
            index,
            hasher,
        } = self;
        let value_of = |id: u32| value_in((text.as_str(), ends.as_slice()), id);
        index.insert_unique(hash, id, |&id| hasher.hash_one(value_of(id)));
        Some(id)
    }

    fn rebuild_index(&mut self) {
        let mut index = HashTable::with_capacity(self.ends.len());
        for id in (0..self.ends.len()).filter_map(|i| u32::try_from(i).ok()) {
            let hash = self.hasher.hash_one(self.get(id));
            index.insert_unique(hash, id, |&id| self.hasher.hash_one(self.get(id)));
        }
        self.index = index;
    }

    /// Each value's place in byte order, by number: rows compare by these.
    fn ranks(&self) -> Vec<u32> {
        let count = u32::try_from(self.ends.len()).unwrap_or(u32::MAX);
        let mut by_text: Vec<u32> = (0..count).collect();
        by_text.sort_unstable_by(|&a, &b| self.get(a).cmp(self.get(b)));
        let mut ranks = vec![0; by_text.len()];
        for (rank, id) in (0..count).zip(by_text) {
            if let Some(slot) = ranks.get_mut(id as usize) {
                *slot = rank;
            }
        }
        ranks
    }

    fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.index = HashTable::new();
    }
}

/// `Strings::get` on borrowed parts, for the table's hasher while the table is borrowed.
fn value_in<'a>((text, ends): (&'a str, &[usize]), id: u32) -> &'a str {
    let id = id as usize;
    let end = ends.get(id).copied().unwrap_or_default();
    let start = id
        .checked_sub(1)
        .and_then(|b| ends.get(b).copied())
        .unwrap_or_default();
    text.get(start..end).unwrap_or_default()
}

/// One family's series: `arity` label value numbers a row, and the row's value.
#[derive(Debug, Clone)]
struct Family {
    def: &'static MetricDef,
    labels: Vec<u32>,
    values: Vec<f64>,
    /// Row numbers by their labels, while the snapshot is built.
    rows: HashTable<u32>,
}

impl Family {
    fn arity(&self) -> usize {
        self.def.labels.len()
    }

    fn row(&self, row: usize) -> &[u32] {
        let arity = self.arity();
        self.labels
            .get(row * arity..(row + 1) * arity)
            .unwrap_or_default()
    }

    fn rebuild_index(&mut self, hasher: &RandomState) {
        let mut rows = HashTable::with_capacity(self.values.len());
        for row in (0..self.values.len()).filter_map(|r| u32::try_from(r).ok()) {
            let hash = hasher.hash_one(self.row(row as usize));
            rows.insert_unique(hash, row, |&r| hasher.hash_one(self.row(r as usize)));
        }
        self.rows = rows;
    }

    /// Keeps the rows `keep` says yes to, in their order.
    fn retain(&mut self, mut keep: impl FnMut(&[u32]) -> bool) {
        let arity = self.arity();
        let mut kept = 0;
        for row in 0..self.values.len() {
            if keep(self.row(row)) {
                self.labels
                    .copy_within(row * arity..(row + 1) * arity, kept * arity);
                self.values.swap(kept, row);
                kept += 1;
            }
        }
        self.labels.truncate(kept * arity);
        self.values.truncate(kept);
    }

    /// Rows in label order (by `ranks`), arrays cut to size, lookup table dropped.
    fn seal(&mut self, ranks: &[u32]) {
        let arity = self.arity();
        let rank = |id: &u32| ranks.get(*id as usize).copied().unwrap_or(u32::MAX);
        let mut order: Vec<usize> = (0..self.values.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            self.row(a)
                .iter()
                .map(rank)
                .cmp(self.row(b).iter().map(rank))
        });
        let mut labels = Vec::with_capacity(order.len() * arity);
        let mut values = Vec::with_capacity(order.len());
        for row in order {
            labels.extend_from_slice(self.row(row));
            values.push(self.values.get(row).copied().unwrap_or_default());
        }
        self.labels = labels;
        self.values = values;
        self.rows = HashTable::new();
    }
}

/// The series of one family, in label order once the snapshot is sealed.
#[derive(Debug, Clone, Copy)]
pub struct Samples<'a> {
    family: &'a Family,
    strings: &'a Strings,
}

impl<'a> Samples<'a> {
    pub fn len(&self) -> usize {
        self.family.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.family.values.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (LabelValues<'a>, f64)> + 'a {
        let (family, strings) = (self.family, self.strings);
        family.values.iter().enumerate().map(move |(row, value)| {
            let values = LabelValues {
                ids: family.row(row).iter(),
                strings,
            };
            (values, *value)
        })
    }

    pub fn values(&self) -> impl Iterator<Item = f64> + 'a {
        self.family.values.iter().copied()
    }
}

impl<'a> IntoIterator for Samples<'a> {
    type Item = (LabelValues<'a>, f64);
    type IntoIter = Box<dyn Iterator<Item = (LabelValues<'a>, f64)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// One series' label values (after `pool` and `source`), in the family's label order.
#[derive(Debug, Clone)]
pub struct LabelValues<'a> {
    ids: std::slice::Iter<'a, u32>,
    strings: &'a Strings,
}

impl<'a> LabelValues<'a> {
    pub fn first(&self) -> Option<&'a str> {
        self.clone().next()
    }
}

impl<'a> Iterator for LabelValues<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let id = self.ids.next()?;
        Some(self.strings.get(*id))
    }
}

/// An item no lenient reading fits (see `sources::fields::Items`).
pub const SKIP_UNREADABLE: &str = "unreadable";
/// A worker with neither name nor id: nothing to label its series with.
pub const SKIP_UNNAMED: &str = "unnamed";
/// A label set the answer gave before in the same poll (a generic source keeps the first).
pub const SKIP_DUPLICATE: &str = "duplicate";
/// Why an item of a good answer was left out: the `reason` label of
/// `mining_exporter_items_skipped_total`, every one starting at 0.
pub const SKIP_REASONS: &[&str] = &[SKIP_UNREADABLE, SKIP_UNNAMED, SKIP_DUPLICATE];

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
        self.put(def, labels, value, true);
    }

    /// Sets one series unless its label set is already present: returns false, and keeps
    /// the first value, for a duplicate.
    pub fn set_first(&mut self, def: &'static MetricDef, labels: &[&str], value: f64) -> bool {
        self.put(def, labels, value, false)
    }

    /// Returns false only where the label set was present.
    fn put(
        &mut self,
        def: &'static MetricDef,
        labels: &[&str],
        value: f64,
        overwrite: bool,
    ) -> bool {
        assert_eq!(
            labels.len(),
            def.labels.len(),
            "{} takes labels {:?}",
            def.name,
            def.labels
        );
        if !value.is_finite() {
            return true;
        }
        if self.sealed {
            self.unseal();
        }
        let mut key = Vec::with_capacity(labels.len());
        for label in labels {
            let Some(id) = self.intern(label) else {
                return true;
            };
            key.push(id);
        }
        let hasher = &self.strings.hasher;
        let family = self.families.entry(def.name).or_insert_with(|| Family {
            def,
            labels: Vec::new(),
            values: Vec::new(),
            rows: HashTable::new(),
        });
        let hash = hasher.hash_one(key.as_slice());
        let Family {
            labels,
            values,
            rows,
            ..
        } = family;
        let arity = key.len();
        let row_of = |r: u32| {
            let r = r as usize;
            labels.get(r * arity..(r + 1) * arity).unwrap_or_default()
        };
        if let Some(&row) = rows.find(hash, |&r| row_of(r) == key.as_slice()) {
            if overwrite {
                if let Some(slot) = values.get_mut(row as usize) {
                    *slot = value;
                }
            }
            return false;
        }
        let Ok(row) = u32::try_from(values.len()) else {
            return true;
        };
        rows.insert_unique(hash, row, |&r| hasher.hash_one(row_of(r)));
        labels.extend_from_slice(&key);
        values.push(value);
        true
    }

    fn intern(&mut self, value: &str) -> Option<u32> {
        let cut = capped(value);
        let value = cut.as_deref().unwrap_or(value);
        let known = self.strings.ends.len();
        let id = self.strings.intern(value)?;
        if cut.is_some() && self.strings.ends.len() > known {
            self.truncated += 1;
        }
        Some(id)
    }

    /// Sorts every family into label order, cuts the arrays to size and drops the lookup
    /// tables: what a snapshot is from the store on. Setting a series afterwards rebuilds
    /// the tables.
    pub fn seal(&mut self) {
        if self.sealed {
            return;
        }
        let ranks = self.strings.ranks();
        for family in self.families.values_mut() {
            family.seal(&ranks);
        }
        self.strings.shrink();
        self.sealed = true;
    }

    fn unseal(&mut self) {
        self.strings.rebuild_index();
        for family in self.families.values_mut() {
            family.rebuild_index(&self.strings.hasher);
        }
        self.sealed = false;
    }

    pub fn get(&self, def: &MetricDef, labels: &[&str]) -> Option<f64> {
        let samples = self.samples(def)?;
        samples
            .iter()
            .find(|(values, _)| values.clone().eq(labels.iter().copied()))
            .map(|(_, value)| value)
    }

    /// The samples of one family, if it has any.
    pub fn samples(&self, def: &MetricDef) -> Option<Samples<'_>> {
        self.families.get(def.name).map(|family| Samples {
            family,
            strings: &self.strings,
        })
    }

    /// Keeps the per-worker series `series` asks for, of at most `max` workers (the first by
    /// account and name, so the same ones stay from poll to poll), and returns how many
    /// workers were left out. Account families, worker counts included, are not touched:
    /// they were computed from every worker. Seals the snapshot.
    pub fn limit_workers(&mut self, series: WorkerSeries, max: Option<usize>) -> usize {
        self.seal();
        let is_worker_family = |def: &MetricDef| def.labels.starts_with(&["account", "worker"]);
        let strings = &self.strings;
        let mut workers: Vec<(u32, u32)> = self
            .families
            .values()
            .filter(|family| is_worker_family(family.def))
            .flat_map(|family| (0..family.values.len()).map(move |r| family.row(r)))
            .filter_map(|row| Some((*row.first()?, *row.get(1)?)))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        workers.sort_unstable_by(|a, b| by_text(strings, *a, *b));
        let total = workers.len();
        workers.truncate(max.unwrap_or(usize::MAX));
        let omitted = total - workers.len();
        let kept: HashSet<(u32, u32)> = workers.into_iter().collect();
        self.families.retain(|_, family| {
            if !is_worker_family(family.def) {
                return true;
            }
            let wanted = match series {
                WorkerSeries::All => true,
                WorkerSeries::Essential => {
                    family.def.name == WORKER_HASHRATE.name || family.def.name == WORKER_UP.name
                }
                WorkerSeries::None => false,
            };
            if wanted && omitted > 0 {
                family.retain(|row| match (row.first(), row.get(1)) {
                    (Some(account), Some(worker)) => kept.contains(&(*account, *worker)),
                    _ => false,
                });
                family.labels.shrink_to_fit();
                family.values.shrink_to_fit();
            }
            wanted && !family.values.is_empty()
        });
        omitted
    }

    pub fn series_count(&self) -> usize {
        self.families.values().map(|f| f.values.len()).sum()
    }

    pub fn families(&self) -> impl Iterator<Item = (&'static MetricDef, Samples<'_>)> {
        self.families.values().map(|family| {
            (
                family.def,
                Samples {
                    family,
                    strings: &self.strings,
                },
            )
        })
    }
}

/// (account, worker) pairs in the order of their texts.
fn by_text(strings: &Strings, a: (u32, u32), b: (u32, u32)) -> Ordering {
    strings
        .get(a.0)
        .cmp(strings.get(b.0))
        .then_with(|| strings.get(a.1).cmp(strings.get(b.1)))
}

/// The state of one source as the exposition shows it.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    pub pool: &'static str,
    pub source: String,
    pub snapshot: Arc<Snapshot>,
    /// Grows with every change of this state: the page writes a source's own lines again
    /// only when it moved.
    pub version: u64,
    pub up: bool,
    pub polled: bool,
    pub last_success: Option<SystemTime>,
    pub last_duration: Option<Duration>,
    /// Why the last poll failed, while it is the last: its `kind` label and its message
    /// (scrubbed of secrets, naming endpoint templates, never URLs).
    pub last_error: Option<LastError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    pub kind: &'static str,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Store {
    sources: RwLock<Sources>,
}

/// The sources in configuration order, and where each one is by name.
#[derive(Debug, Default)]
struct Sources {
    list: Vec<SourceStatus>,
    by_name: std::collections::HashMap<String, usize>,
    /// What the next change of a source's state is numbered.
    next_version: u64,
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
        let mut old: std::collections::HashMap<(String, &'static str), SourceStatus> =
            std::mem::take(&mut current.list)
                .into_iter()
                .map(|s| ((s.source.clone(), s.pool), s))
                .collect();
        for (pool, name) in sources {
            current.next_version += 1;
            let version = current.next_version;
            kept.push(
                old.remove(&(name.to_string(), pool))
                    .unwrap_or_else(|| SourceStatus {
                        pool,
                        source: name.to_string(),
                        snapshot: Arc::new(Snapshot::new()),
                        version,
                        up: false,
                        polled: false,
                        last_success: None,
                        last_duration: None,
                        last_error: None,
                    }),
            );
        }
        current.by_name = kept
            .iter()
            .enumerate()
            .map(|(i, s)| (s.source.clone(), i))
            .collect();
        current.list = kept;
    }

    /// Changes the named source's state; a source no longer configured is left alone (a poll
    /// that finishes after a reload removed its source must not bring it back).
    fn update(&self, source: &str, f: impl FnOnce(&mut SourceStatus)) {
        let mut sources = self.sources.write().unwrap_or_else(|e| e.into_inner());
        sources.next_version += 1;
        let version = sources.next_version;
        let Some(&i) = sources.by_name.get(source) else {
            return;
        };
        if let Some(status) = sources.list.get_mut(i) {
            f(status);
            status.version = version;
        }
    }

    pub fn record_success(
        &self,
        source: &str,
        mut snapshot: Snapshot,
        took: Duration,
        at: SystemTime,
    ) {
        snapshot.seal();
        let snapshot = Arc::new(snapshot);
        self.update(source, |s| {
            s.snapshot = snapshot;
            s.up = true;
            s.polled = true;
            s.last_success = Some(at);
            s.last_duration = Some(took);
            s.last_error = None;
        });
    }

    pub fn record_failure(&self, source: &str, took: Duration, error: LastError) {
        self.update(source, |s| {
            s.up = false;
            s.polled = true;
            s.last_duration = Some(took);
            s.last_error = Some(error);
        });
    }

    /// Every source's state as of now. The lock is held only to clone the `Arc`s, so a render
    /// that runs for tens of milliseconds over the copy never holds back a finishing poll,
    /// whose write would otherwise wait on an async worker thread.
    pub fn statuses(&self) -> Vec<SourceStatus> {
        self.sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .list
            .clone()
    }

    /// Whether the named source has had a successful poll since it was configured.
    pub fn has_succeeded(&self, source: &str) -> bool {
        let sources = self.sources.read().unwrap_or_else(|e| e.into_inner());
        sources
            .by_name
            .get(source)
            .and_then(|i| sources.list.get(*i))
            .is_some_and(|s| s.last_success.is_some())
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
    fn a_sealed_snapshot_lists_series_as_a_tree_of_their_label_values_would() {
        // The order and overwrite rule of the old BTreeMap of label slices, the page's order.
        let mut rng = fastrand::Rng::with_seed(19);
        let words = ["a", "ab", "b", "a\u{e9}", "", "Z", "rig10", "rig9", "rig1"];
        let mut expected: BTreeMap<Vec<String>, f64> = BTreeMap::new();
        let mut s = Snapshot::new();
        for round in 0..2 {
            for _ in 0..400 {
                let labels: Vec<&str> = (0..3).map(|_| words[rng.usize(..words.len())]).collect();
                let value = rng.f64();
                s.set(&WORKER_HASHRATE, &labels, value);
                expected.insert(labels.iter().map(|l| l.to_string()).collect(), value);
            }
            // Sealed, then set again in the second round: the tables come back.
            s.seal();
            let got: Vec<(Vec<String>, f64)> = s
                .samples(&WORKER_HASHRATE)
                .unwrap()
                .iter()
                .map(|(labels, value)| (labels.map(str::to_string).collect(), value))
                .collect();
            let want: Vec<(Vec<String>, f64)> = expected.clone().into_iter().collect();
            assert_eq!(got, want, "round {round}");
        }
        assert_eq!(s.series_count(), expected.len());
    }

    #[test]
    fn a_failure_keeps_the_last_good_snapshot() {
        let store = Store::new([("ultimate_proxy", "p")]);
        let mut s = Snapshot::new();
        s.set(&WORKER_UP, &["a", "w1"], 1.0);
        store.record_success("p", s, Duration::from_millis(5), SystemTime::now());
        let error = LastError {
            kind: "auth",
            message: "/v1/workers: authentication failed".to_string(),
        };
        store.record_failure("p", Duration::from_millis(7), error.clone());
        let status = &store.statuses()[0];
        assert!(!status.up);
        assert_eq!(status.last_error.as_ref(), Some(&error));
        assert_eq!(status.snapshot.series_count(), 1);
        assert_eq!(status.last_duration, Some(Duration::from_millis(7)));
        assert!(status.polled);
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
