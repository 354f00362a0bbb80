//! Renders the store and the exporter's recorded figures into the Prometheus text format
//! (0.0.4) once per change, and keeps the page gzipped only (`gzip_pieces`): Prometheus
//! always asks for gzip, and the plain text is unpacked for the rare client that does not.
//! A scrape only clones an `Arc`: it never re-encodes and never reaches a pool. Every
//! family's name, type and HELP come from the contract (`metrics.rs`); the page reads no
//! budget and no plan.
//!
//! A poll costs the page its own source only: each source's pool families and its own
//! self-metrics are compressed pieces kept until that source's snapshot, state or figures
//! change, each budget's lines likewise; a render joins the pieces (a reference count and a
//! CRC multiplication each) around the few lines of the process. Polls that finish while a
//! render runs share the next one (`refreshed`), so a thousand polls a minute cost a few
//! renders a second, and no poll waits for more than about one.

pub mod gzip_pieces;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use prometheus::{Encoder, TextEncoder};

use crate::metrics::{MetricDef, PollErrorKind, exporter};
use crate::snapshot::{SKIP_REASONS, Snapshot, SourceStatus, Store};
use crate::telemetry::{BudgetShown, SourceCounters, SourceFigures, Telemetry};
use crate::text_format;
use gzip_pieces::{Joined, Piece, PieceWriter, Unpacking};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Back-to-back renders are at least this far apart: the polls that finish meanwhile share
/// the next render.
const RENDER_GAP: Duration = Duration::from_millis(200);

/// The page as served: one gzip member in pieces, and the length of its text.
#[derive(Debug, Default)]
pub struct Rendered {
    joined: Joined,
}

impl Rendered {
    /// The length of the page's text.
    pub fn text_len(&self) -> u64 {
        self.joined.text_len
    }

    /// The length of the gzip member.
    pub fn gzip_len(&self) -> usize {
        self.joined.gzip_len
    }

    /// The gzip member, in the chunks a response body sends.
    pub fn gzip_chunks(&self) -> Vec<Bytes> {
        self.joined.chunks().collect()
    }

    /// The gzip member in one piece (a copy: tests and benches).
    pub fn gzip(&self) -> Bytes {
        self.joined.to_bytes()
    }

    /// The page's text, a chunk at a time.
    pub fn unpacking(&self) -> Unpacking {
        Unpacking::new(self.joined.segments.clone())
    }

    /// The page's text, whole.
    pub fn text(&self) -> Vec<u8> {
        self.unpacking().all()
    }
}

#[derive(Debug)]
pub struct Exposition {
    store: Arc<Store>,
    telemetry: Telemetry,
    current: RwLock<Arc<Rendered>>,
    /// Two renders must not interleave; holds what the last one wrote, to reuse.
    rendering: Mutex<Fragments>,
    /// Renders asked for with `refreshed`, and the ask the last published render covered.
    asked: AtomicU64,
    done: tokio::sync::watch::Sender<u64>,
    /// Whether a `refreshed` caller is rendering for everyone now.
    renderer: AtomicBool,
    last_render: Mutex<Option<tokio::time::Instant>>,
}

impl Exposition {
    pub fn new(store: Arc<Store>, telemetry: Telemetry) -> Self {
        let exposition = Exposition {
            store,
            telemetry,
            current: RwLock::new(Arc::new(Rendered::default())),
            rendering: Mutex::new(Fragments::default()),
            asked: AtomicU64::new(0),
            done: tokio::sync::watch::Sender::new(0),
            renderer: AtomicBool::new(false),
            last_render: Mutex::new(None),
        };
        exposition.refresh();
        exposition
    }

    /// The last rendering; what every scrape serves.
    pub fn current(&self) -> Arc<Rendered> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Renders anew, now, on this thread. Only what changed since the last render is
    /// written (and compressed) again.
    pub fn refresh(&self) {
        let mut cache = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
        let rendered = self.render(&mut cache);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rendered);
    }

    /// Returns once a render that began after this call is served. Callers at once share one
    /// render: one of them renders (on the blocking pool, at most every `RENDER_GAP` when
    /// renders follow each other), the others wait for it.
    pub async fn refreshed(self: &Arc<Self>) {
        let ticket = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = self.done.subscribe();
        loop {
            if *done.borrow_and_update() >= ticket {
                return;
            }
            if self
                .renderer
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                let _renderer = Renderer(self);
                let last = *self.last_render.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(wait) = last.and_then(|at| RENDER_GAP.checked_sub(at.elapsed())) {
                    tokio::time::sleep(wait).await;
                }
                let covers = self.asked.load(Ordering::SeqCst);
                let me = self.clone();
                if tokio::task::spawn_blocking(move || me.refresh())
                    .await
                    .is_err()
                {
                    tracing::warn!("rendering /metrics panicked; serving the previous page");
                }
                *self.last_render.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(tokio::time::Instant::now());
                self.done.send_modify(|d| *d = (*d).max(covers));
                continue;
            }
            // Another caller renders: its render (or its giving up) wakes this one.
            if done.changed().await.is_err() {
                return;
            }
        }
    }

    fn render(&self, cache: &mut Fragments) -> Rendered {
        let statuses = self.store.statuses();
        let big: BTreeSet<&str> = statuses
            .iter()
            .filter(|s| s.snapshot.series_count() >= BIG_SOURCE_SERIES)
            .map(|s| s.source.as_str())
            .collect();
        cache.big.retain(|source, _| big.contains(source.as_str()));
        cache
            .shards
            .truncate(statuses.len().div_ceil(SHARD_SOURCES));
        let mut writer = PieceWriter::default();
        // Every family of the page by name, each a list of pieces.
        let mut families: BTreeMap<&'static str, FamilyParts> = BTreeMap::new();
        let add = |families: &mut BTreeMap<&'static str, FamilyParts>,
                   (def, piece): &(&'static MetricDef, Piece)| {
            families
                .entry(def.name)
                .or_insert_with(|| FamilyParts::new(def))
                .pieces
                .push(piece.clone());
        };
        for (i, members) in statuses.chunks(SHARD_SOURCES).enumerate() {
            let counters = self
                .telemetry
                .counters_of(members.iter().map(|s| (s.pool, s.source.as_str())));
            // A large farm's series are a piece of their own, kept while its snapshot is.
            for status in members.iter().filter(|s| big.contains(s.source.as_str())) {
                let fragment = match cache.big.get_mut(&status.source) {
                    Some(fragment) => fragment,
                    None => cache
                        .big
                        .entry(status.source.clone())
                        .or_insert_with(|| BigSource::new(status)),
                };
                fragment.bring_up_to_date(status, &mut writer);
                for part in &fragment.pieces {
                    add(&mut families, part);
                }
            }
            // Compared member by member: the names are cloned only for a shard written again.
            let now = members
                .iter()
                .zip(&counters)
                .map(|(s, c)| ShardMember::of(s, c.as_deref(), big.contains(s.source.as_str())));
            let unchanged = cache.shards.get(i).is_some_and(|shard| {
                shard.key.len() == members.len()
                    && shard
                        .key
                        .iter()
                        .zip(now.clone())
                        .all(|(kept, now)| kept.as_member() == now)
            });
            if !unchanged {
                let key = now.map(|m| m.to_owned()).collect();
                let shard = Shard::render(members, &counters, key, &mut writer);
                match cache.shards.get_mut(i) {
                    Some(slot) => *slot = shard,
                    None => cache.shards.push(shard),
                }
            }
            if let Some(shard) = cache.shards.get(i) {
                for part in &shard.pieces {
                    add(&mut families, part);
                }
            }
        }

        let budgets = self.telemetry.budget_figures();
        let names: BTreeSet<&str> = budgets.iter().map(|(n, _)| n.as_str()).collect();
        cache
            .budgets
            .retain(|name, _| names.contains(name.as_str()));
        for (name, shown) in &budgets {
            let fragment = cache.budgets.entry(name.clone()).or_default();
            if fragment.shown != Some(*shown) {
                *fragment = BudgetFragment::render(name, shown, &mut writer);
            }
            for part in &fragment.pieces {
                add(&mut families, part);
            }
        }

        // The families of the process (build_info, the reload gauges, process_*), through
        // the prometheus crate's own encoder: a few lines, written at every render.
        let mut process: Vec<(String, Vec<u8>)> = Vec::new();
        for family in self.telemetry.gather() {
            let mut text = Vec::new();
            if TextEncoder::new()
                .encode(std::slice::from_ref(&family), &mut text)
                .is_ok()
            {
                process.push((family.name().to_string(), text));
            }
        }

        // Families in name order, each one block: its header, then every part of it.
        let mut pieces: Vec<Piece> = Vec::new();
        let mut process = process.into_iter().peekable();
        for (name, family) in &families {
            while let Some((_, text)) = process.next_if(|(p, _)| p.as_str() < *name) {
                writer.text().extend_from_slice(&text);
                writer.written();
                pieces.push(writer.finish());
            }
            let header = cache
                .headers
                .entry(*name)
                .or_insert_with(|| family.header(&mut writer));
            pieces.push(header.clone());
            pieces.extend(family.pieces.iter().cloned());
        }
        for (_, text) in process {
            writer.text().extend_from_slice(&text);
            writer.written();
            pieces.push(writer.finish());
        }
        Rendered {
            joined: gzip_pieces::join(&pieces),
        }
    }
}

/// The one renderer of `refreshed`: when it is done (or dropped half way, its caller
/// cancelled), the others are woken to find their render done or to take over.
struct Renderer<'a>(&'a Exposition);

impl Drop for Renderer<'_> {
    fn drop(&mut self) {
        self.0.renderer.store(false, Ordering::SeqCst);
        self.0.done.send_modify(|_| {});
    }
}

/// Sources are written in shards of this many, in config order: the lines of sources with
/// a few series each compress well together (one source's alone barely does), and a poll
/// rewrites its shard's lines, never more.
const SHARD_SOURCES: usize = 32;
/// A source with this many series or more has its series kept as pieces of its own, written
/// only when its snapshot changes: a large farm is not rewritten when a neighbour polls.
const BIG_SOURCE_SERIES: usize = 512;

/// What the last render wrote, by shard, large source and budget, and each family's header.
#[derive(Debug, Default)]
struct Fragments {
    shards: Vec<Shard>,
    big: BTreeMap<String, BigSource>,
    budgets: BTreeMap<String, BudgetFragment>,
    headers: BTreeMap<&'static str, Piece>,
}

/// What a shard's lines were written from, per member: a change of any of it writes the
/// shard again. Kept with the shard as `ShardMember<String>`, compared as `ShardMember<&str>`.
#[derive(Debug, Clone, PartialEq)]
struct ShardMember<S = String> {
    source: S,
    pool: &'static str,
    version: u64,
    figures: u64,
    big: bool,
}

impl<'a> ShardMember<&'a str> {
    fn of(status: &'a SourceStatus, counters: Option<&SourceCounters>, big: bool) -> Self {
        ShardMember {
            source: &status.source,
            pool: status.pool,
            version: status.version,
            figures: counters.map_or(0, SourceCounters::version),
            big,
        }
    }

    fn to_owned(&self) -> ShardMember {
        ShardMember {
            source: self.source.to_string(),
            pool: self.pool,
            version: self.version,
            figures: self.figures,
            big: self.big,
        }
    }
}

impl ShardMember {
    fn as_member(&self) -> ShardMember<&str> {
        ShardMember {
            source: &self.source,
            pool: self.pool,
            version: self.version,
            figures: self.figures,
            big: self.big,
        }
    }
}

/// Up to `SHARD_SOURCES` sources' self-metrics, and the series of those of them that are not
/// large, one piece a family.
#[derive(Debug)]
struct Shard {
    /// Which render wrote it (tests check that untouched shards are not rewritten).
    #[cfg(test)]
    written: u64,
    key: Vec<ShardMember>,
    pieces: Vec<(&'static MetricDef, Piece)>,
}

impl Shard {
    fn render(
        members: &[SourceStatus],
        counters: &[Option<Arc<SourceCounters>>],
        key: Vec<ShardMember>,
        writer: &mut PieceWriter,
    ) -> Shard {
        let figures: Vec<Option<SourceFigures>> = counters
            .iter()
            .map(|c| c.as_ref().map(|c| c.figures().1))
            .collect();
        // Each family's lines over the members, in member order.
        let mut lines: BTreeMap<&'static str, (&'static MetricDef, Vec<u8>)> = BTreeMap::new();
        for ((status, figures), member) in members.iter().zip(&figures).zip(&key) {
            if !member.big {
                write_pool_lines(status, &mut lines);
            }
            write_self_lines(status, figures.as_ref(), &mut lines);
        }
        let pieces = lines
            .into_values()
            .filter(|(_, text)| !text.is_empty())
            .map(|(def, text)| {
                for chunk in text.chunks(64 * 1024) {
                    writer.text().extend_from_slice(chunk);
                    writer.written();
                }
                (def, writer.finish())
            })
            .collect();
        Shard {
            #[cfg(test)]
            written: WRITTEN.fetch_add(1, Ordering::Relaxed),
            key,
            pieces,
        }
    }
}

/// Where a family's lines gather while a shard is written.
type FamilyLines = BTreeMap<&'static str, (&'static MetricDef, Vec<u8>)>;

fn lines_of<'a>(lines: &'a mut FamilyLines, def: &'static MetricDef) -> &'a mut Vec<u8> {
    &mut lines.entry(def.name).or_insert_with(|| (def, Vec::new())).1
}

/// A source's pool families' lines.
fn write_pool_lines(status: &SourceStatus, lines: &mut FamilyLines) {
    let base = [("pool", status.pool), ("source", status.source.as_str())];
    for (def, samples) in status.snapshot.families() {
        let out = lines_of(lines, def);
        for (values, value) in samples {
            let labels = base
                .iter()
                .copied()
                .chain(def.labels.iter().copied().zip(values));
            text_format::sample(out, def.name, labels, value);
        }
    }
}

/// One family's parts at this render.
struct FamilyParts {
    def: &'static MetricDef,
    pieces: Vec<Piece>,
}

impl FamilyParts {
    fn new(def: &'static MetricDef) -> Self {
        FamilyParts {
            def,
            pieces: Vec::new(),
        }
    }

    fn header(&self, writer: &mut PieceWriter) -> Piece {
        text_format::family_header(writer.text(), self.def.name, self.def.help, self.def.kind);
        writer.written();
        writer.finish()
    }
}

/// A large source's series, one piece a family, as of its snapshot.
#[derive(Debug)]
struct BigSource {
    /// Which render wrote it (tests check that an unchanged source is not rewritten).
    #[cfg(test)]
    written: u64,
    pool: &'static str,
    snapshot: Arc<Snapshot>,
    pieces: Vec<(&'static MetricDef, Piece)>,
}

#[cfg(test)]
static WRITTEN: AtomicU64 = AtomicU64::new(0);

impl BigSource {
    fn new(status: &SourceStatus) -> Self {
        BigSource {
            #[cfg(test)]
            written: u64::MAX,
            pool: status.pool,
            // Never the status's own: the first render writes it.
            snapshot: Arc::new(Snapshot::new()),
            pieces: Vec::new(),
        }
    }

    fn bring_up_to_date(&mut self, status: &SourceStatus, writer: &mut PieceWriter) {
        if self.pool == status.pool && Arc::ptr_eq(&self.snapshot, &status.snapshot) {
            return;
        }
        self.pool = status.pool;
        self.snapshot = status.snapshot.clone();
        let base = [("pool", status.pool), ("source", status.source.as_str())];
        self.pieces = status
            .snapshot
            .families()
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(def, samples)| {
                for (values, value) in samples {
                    let labels = base
                        .iter()
                        .copied()
                        .chain(def.labels.iter().copied().zip(values));
                    text_format::sample(writer.text(), def.name, labels, value);
                    writer.written();
                }
                (def, writer.finish())
            })
            .collect();
        #[cfg(test)]
        {
            self.written = WRITTEN.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A source's self-metrics: its state from the store, its counters and gauges from its
/// figures.
fn write_self_lines(
    status: &SourceStatus,
    figures: Option<&SourceFigures>,
    lines: &mut FamilyLines,
) {
    let (pool, source) = (status.pool, status.source.as_str());
    let mut family =
        |def: &'static MetricDef, samples: &mut dyn Iterator<Item = (Vec<(&str, &str)>, f64)>| {
            let out = lines_of(lines, def);
            for (extra, value) in samples {
                let labels = [("pool", pool), ("source", source)]
                    .into_iter()
                    .chain(extra.iter().copied());
                text_format::sample(out, def.name, labels, value);
            }
        };
    let one = |value: f64| std::iter::once((Vec::new(), value));
    family(
        &exporter::SOURCE_UP,
        &mut one(if status.up { 1.0 } else { 0.0 }),
    );
    family(
        &exporter::SOURCE_SERIES,
        &mut one(status.snapshot.series_count() as f64),
    );
    // 0 until the first success, so an alert on the age of this timestamp also fires for a
    // source that has never worked.
    let last_success = status.last_success.map_or(0.0, |at| {
        at.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    });
    family(&exporter::SOURCE_LAST_SUCCESS, &mut one(last_success));
    if let Some(took) = status.last_duration {
        family(
            &exporter::SOURCE_POLL_DURATION,
            &mut one(took.as_secs_f64()),
        );
    }
    let Some(f) = figures else {
        return;
    };
    family(
        &exporter::UPSTREAM_REQUESTS,
        &mut f.requests.iter().map(|((endpoint, code), n)| {
            (
                vec![("endpoint", endpoint.as_str()), ("code", code.as_str())],
                *n as f64,
            )
        }),
    );
    family(
        &exporter::POLL_ERRORS,
        &mut PollErrorKind::ALL
            .iter()
            .zip(&f.poll_errors)
            .map(|(kind, n)| (vec![("kind", kind.label())], *n as f64)),
    );
    family(
        &exporter::ENDPOINT_ENABLED,
        &mut f.endpoints.iter().map(|(endpoint, on)| {
            (
                vec![("endpoint", endpoint.as_str())],
                if *on { 1.0 } else { 0.0 },
            )
        }),
    );
    family(
        &exporter::WORKERS_OMITTED,
        &mut f
            .workers_omitted
            .into_iter()
            .map(|n| (Vec::new(), n as f64)),
    );
    family(
        &exporter::ITEMS_SKIPPED,
        &mut SKIP_REASONS
            .iter()
            .zip(&f.items_skipped)
            .map(|(reason, n)| (vec![("reason", *reason)], *n as f64)),
    );
    family(
        &exporter::LABELS_TRUNCATED,
        &mut one(f.labels_truncated as f64),
    );
    family(
        &exporter::POLL_INTERVAL_PLANNED,
        &mut f.interval_planned.into_iter().map(|v| (Vec::new(), v)),
    );
    family(
        &exporter::POLL_INTERVAL_ACHIEVED,
        &mut f.interval_achieved.into_iter().map(|v| (Vec::new(), v)),
    );
    family(
        &exporter::POLL_COST,
        &mut f.poll_cost.into_iter().map(|v| (Vec::new(), v as f64)),
    );
}

/// A budget's lines as last written, and the figures they show.
#[derive(Debug, Default)]
struct BudgetFragment {
    shown: Option<BudgetShown>,
    pieces: Vec<(&'static MetricDef, Piece)>,
}

impl BudgetFragment {
    fn render(name: &str, shown: &BudgetShown, writer: &mut PieceWriter) -> Self {
        let labels = [("budget", name)];
        let mut pieces = Vec::new();
        let figures = &shown.figures;
        let mut values = vec![
            (&exporter::BUDGET_REMAINING, figures.remaining as f64),
            (&exporter::BUDGET_WAIT, figures.wait_seconds_total),
            (&exporter::RATE_LIMITED, figures.rate_limited_total as f64),
        ];
        if let Some(share) = shown.planned_use {
            values.push((&exporter::BUDGET_PLANNED_USE, share));
        }
        for (def, value) in values {
            text_format::sample(writer.text(), def.name, labels, value);
            writer.written();
            pieces.push((def, writer.finish()));
        }
        BudgetFragment {
            shown: Some(*shown),
            pieces,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::metrics::WORKER_UP;

    fn snapshot(worker: &str) -> Snapshot {
        let mut s = Snapshot::new();
        s.set(&WORKER_UP, &["acct", worker], 1.0);
        s
    }

    /// Which render last wrote each large source's series.
    fn written(exposition: &Exposition) -> Vec<(String, u64)> {
        let cache = exposition.rendering.lock().unwrap();
        cache
            .big
            .iter()
            .map(|(source, f)| (source.clone(), f.written))
            .collect()
    }

    /// Which render last wrote each shard.
    fn shards_written(exposition: &Exposition) -> Vec<u64> {
        let cache = exposition.rendering.lock().unwrap();
        cache.shards.iter().map(|s| s.written).collect()
    }

    fn farm(prefix: &str, workers: usize) -> Snapshot {
        let mut s = Snapshot::new();
        for i in 0..workers {
            s.set(&WORKER_UP, &["acct", &format!("{prefix}{i:04}")], 1.0);
        }
        s
    }

    #[test]
    fn only_the_large_source_whose_snapshot_changed_is_written_again() {
        let store = Arc::new(Store::new([("ourpool", "a"), ("luxor", "b")]));
        let exposition = Exposition::new(store.clone(), Telemetry::new());
        for source in ["a", "b"] {
            store.record_success(source, farm("w", 600), Duration::ZERO, SystemTime::now());
        }
        exposition.refresh();
        let before = written(&exposition);

        store.record_success("a", farm("v", 600), Duration::ZERO, SystemTime::now());
        exposition.refresh();
        let after = written(&exposition);
        assert_ne!(after[0], before[0], "a changed: written again");
        assert_eq!(after[1], before[1], "b unchanged: its text reused");

        let page = String::from_utf8(exposition.current().text()).unwrap();
        assert!(page.contains(
            "mining_worker_up{pool=\"ourpool\",source=\"a\",account=\"acct\",worker=\"v0001\"} 1"
        ));
        assert!(!page.contains("source=\"a\",account=\"acct\",worker=\"w0001\""));
        assert!(page.contains(
            "mining_worker_up{pool=\"luxor\",source=\"b\",account=\"acct\",worker=\"w0001\"} 1"
        ));
        assert_eq!(
            page.matches("# TYPE mining_worker_up gauge").count(),
            1,
            "one block per family"
        );

        // A source a reload removed leaves the page and the cache.
        store.set_sources([("luxor", "b")]);
        exposition.refresh();
        assert_eq!(written(&exposition).len(), 1);
        let page = String::from_utf8(exposition.current().text()).unwrap();
        assert!(!page.contains("source=\"a\""), "{page}");
    }

    /// Many small sources: a poll rewrites its own shard of them, and no other.
    #[test]
    fn a_small_source_s_poll_rewrites_its_shard_alone() {
        let names: Vec<String> = (0..3 * SHARD_SOURCES).map(|i| format!("s{i:03}")).collect();
        let store = Arc::new(Store::new(names.iter().map(|n| ("ourpool", n.as_str()))));
        let telemetry = Telemetry::new();
        let handles: Vec<_> = names
            .iter()
            .map(|n| telemetry.source("ourpool", n, false))
            .collect();
        let exposition = Exposition::new(store.clone(), telemetry);
        for name in &names {
            store.record_success(name, snapshot("rig"), Duration::ZERO, SystemTime::now());
        }
        exposition.refresh();
        let before = shards_written(&exposition);
        assert_eq!(before.len(), 3);
        let middle = SHARD_SOURCES + 5;
        store.record_success(
            &names[middle],
            snapshot("rig2"),
            Duration::ZERO,
            SystemTime::now(),
        );
        exposition.refresh();
        let after = shards_written(&exposition);
        assert_eq!(
            (after[0], after[2]),
            (before[0], before[2]),
            "the others reused"
        );
        assert_ne!(after[1], before[1], "its own shard written again");
        // A counter of one source is its shard's too.
        handles[1].request_answered("/x", "200");
        exposition.refresh();
        let again = shards_written(&exposition);
        assert_ne!(again[0], after[0]);
        assert_eq!((again[1], again[2]), (after[1], after[2]));
        let page = String::from_utf8(exposition.current().text()).unwrap();
        assert!(page.contains(&format!(
            "mining_worker_up{{pool=\"ourpool\",source=\"{}\",account=\"acct\",worker=\"rig2\"}} 1",
            names[middle]
        )));
        assert_eq!(
            page.matches("mining_exporter_source_up{").count(),
            names.len(),
            "every source once"
        );
    }

    #[test]
    fn a_page_of_many_pieces_unpacks_whole_after_either_source_polls() {
        use crate::metrics::WORKER_HASHRATE;
        let farm = |prefix: &str, hashrate: f64| {
            let mut s = Snapshot::new();
            // Past the writer's chunk, so every family is compressed in several steps.
            for i in (0..3_000).rev() {
                let worker = format!("{prefix}{i:05}");
                s.set(&WORKER_UP, &["acct", &worker], 1.0);
                s.set(&WORKER_HASHRATE, &["acct", &worker, "sha256"], hashrate);
            }
            s
        };
        let store = Arc::new(Store::new([("ourpool", "a"), ("luxor", "b")]));
        let exposition = Exposition::new(store.clone(), Telemetry::new());
        store.record_success("a", farm("x", 1.0), Duration::ZERO, SystemTime::now());
        exposition.refresh();
        store.record_success("b", farm("y", 2.0), Duration::ZERO, SystemTime::now());
        exposition.refresh();
        store.record_success("a", farm("z", 3.0), Duration::ZERO, SystemTime::now());
        exposition.refresh();

        let rendered = exposition.current();
        let mut checked = Vec::new();
        // flate2's decoder checks the trailer's CRC and length.
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&rendered.gzip()[..]),
            &mut checked,
        )
        .unwrap();
        assert_eq!(checked, rendered.text());
        assert_eq!(checked.len() as u64, rendered.text_len());
        let page = String::from_utf8(checked).unwrap();
        let hashrate: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("mining_worker_hashrate_hashes_per_second{"))
            .collect();
        assert_eq!(hashrate.len(), 6_000);
        // Source order within the family (a, then b), each in worker order.
        let expected: Vec<String> = [("ourpool", "a", "z", 3), ("luxor", "b", "y", 2)]
            .iter()
            .flat_map(|(pool, source, prefix, value)| {
                (0..3_000).map(move |i| {
                    format!(
                        "mining_worker_hashrate_hashes_per_second{{pool=\"{pool}\",source=\"{source}\",account=\"acct\",worker=\"{prefix}{i:05}\",algorithm=\"sha256\"}} {value}"
                    )
                })
            })
            .collect();
        assert_eq!(hashrate, expected);
        assert!(!page.contains("worker=\"x"), "a's old workers are gone");
    }

    #[test]
    fn every_family_on_the_page_is_the_contract_s_with_its_type_and_help() {
        let store = Arc::new(Store::new([("ourpool", "a")]));
        let telemetry = Telemetry::new();
        let exposition = Exposition::new(store.clone(), telemetry.clone());
        // One of every event, so that every family has a sample.
        let source = telemetry.source("ourpool", "a", true);
        source.request_answered("/x", "200");
        source.poll_failed(&crate::error::PollError::decode("/x", "not JSON"), false);
        source.endpoint_served("/y", false);
        source.interval_achieved(60.0);
        telemetry.planned([("ourpool", "a", Duration::from_secs(60), 3)], [("b", 0.5)]);
        telemetry.budget("b", Default::default());
        telemetry.config_reloaded(SystemTime::now());
        store.record_success("a", snapshot("w1"), Duration::ZERO, SystemTime::now());
        exposition.refresh();
        let page = String::from_utf8(exposition.current().text()).unwrap();

        let defs: Vec<&MetricDef> = crate::metrics::POOL_FAMILIES
            .iter()
            .chain(exporter::ALL)
            .copied()
            .collect();
        let mut headers = 0;
        for line in page.lines().filter(|l| l.starts_with("# ")) {
            let mut words = line.splitn(4, ' ');
            let (what, name, rest) = (words.nth(1), words.next(), words.next());
            if name.is_some_and(|n| crate::metrics::PROCESS_FAMILIES.contains(&n)) {
                continue;
            }
            let def = defs
                .iter()
                .find(|d| Some(d.name) == name)
                .unwrap_or_else(|| panic!("{line}: not in the contract"));
            match what {
                Some("HELP") => {
                    let mut escaped = Vec::new();
                    text_format::family_header(&mut escaped, def.name, def.help, def.kind);
                    let escaped = String::from_utf8(escaped).unwrap();
                    assert!(escaped.starts_with(&format!("{line}\n")), "{line}");
                    headers += 1;
                }
                Some("TYPE") => {
                    let kind = match def.kind {
                        crate::metrics::MetricKind::Gauge => "gauge",
                        crate::metrics::MetricKind::Counter => "counter",
                    };
                    assert_eq!(rest, Some(kind), "{line}");
                }
                _ => panic!("{line}"),
            }
        }
        for def in exporter::ALL {
            assert!(
                page.contains(&format!("# TYPE {} ", def.name)),
                "{} is in the contract but not on the page",
                def.name
            );
        }
        assert_eq!(
            headers,
            exporter::ALL.len() + 1,
            "the exporter's families and mining_worker_up"
        );
    }
}
