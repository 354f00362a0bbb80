//! Renders the store and the exporter's recorded figures into the Prometheus text format
//! (0.0.4) once per change, and keeps the page gzipped only (`gzip_pieces`): Prometheus
//! always asks for gzip, and the plain text is unpacked for the rare client that does not.
//! A scrape only clones an `Arc`: it never re-encodes and never reaches a pool. Every
//! family's name, type and HELP come from the contract (`metrics.rs`); the page reads no
//! budget and no plan.

pub mod gzip_pieces;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use prometheus::{Encoder, TextEncoder};

use crate::metrics::{MetricDef, MetricKind, exporter};
use crate::snapshot::{Snapshot, SourceStatus, Store};
use crate::telemetry::Telemetry;
use crate::text_format;
use gzip_pieces::{Piece, PieceWriter, Unpacking};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The page as served: one gzip member, and the length of its text.
#[derive(Debug)]
pub struct Rendered {
    pub gzip: Bytes,
    pub text_len: u64,
}

impl Rendered {
    /// The page's text, a chunk at a time.
    pub fn unpacking(&self) -> Unpacking {
        Unpacking::new(self.gzip.clone())
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
    /// Two sources finishing together must not interleave their renders; holds each source's
    /// rendered pool families.
    rendering: Mutex<Fragments>,
}

impl Exposition {
    pub fn new(store: Arc<Store>, telemetry: Telemetry) -> Self {
        let exposition = Exposition {
            store,
            telemetry,
            current: RwLock::new(Arc::new(Rendered {
                gzip: Bytes::new(),
                text_len: 0,
            })),
            rendering: Mutex::new(Fragments::new()),
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

    /// Renders anew. Called after every poll, whatever its outcome. Only a source whose
    /// snapshot changed since the last render is written (and compressed) again; the
    /// others' pieces are reused as they are.
    pub fn refresh(&self) {
        let mut cache = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
        let rendered = self.render(&mut cache);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rendered);
    }

    fn render(&self, cache: &mut Fragments) -> Rendered {
        let statuses = self.store.statuses();
        cache.retain(|source, _| statuses.iter().any(|s| &s.source == source));
        let mut writer = PieceWriter::default();
        for status in &statuses {
            let stale = cache.get(&status.source).is_none_or(|fragment| {
                !Arc::ptr_eq(&fragment.snapshot, &status.snapshot) || fragment.pool != status.pool
            });
            if stale {
                cache.insert(
                    status.source.clone(),
                    SourceFragment::render(status, &mut writer),
                );
            }
        }
        // Every family of the page, by name: pool families are the sources' cached pieces in
        // source order, the rest is written here (a few lines a source).
        let mut families: BTreeMap<&'static str, Family> = BTreeMap::new();
        for status in &statuses {
            if let Some(fragment) = cache.get(&status.source) {
                for (name, (def, piece)) in &fragment.families {
                    families
                        .entry(name)
                        .or_insert_with(|| Family::new(name, def.help, def.kind))
                        .cached
                        .push((status.source.clone(), piece.clone()));
                }
            }
            let base = [("pool", status.pool), ("source", status.source.as_str())];
            let mut gauge = |def: &'static MetricDef, value: f64| {
                let family = families
                    .entry(def.name)
                    .or_insert_with(|| Family::new(def.name, def.help, def.kind));
                text_format::sample(&mut family.lines, def.name, base, value);
            };
            gauge(&exporter::SOURCE_UP, if status.up { 1.0 } else { 0.0 });
            gauge(
                &exporter::SOURCE_SERIES,
                status.snapshot.series_count() as f64,
            );
            // 0 until the first success, so an alert on the age of this timestamp also fires
            // for a source that has never worked.
            let last_success = status.last_success.map_or(0.0, |at| {
                at.duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
            });
            gauge(&exporter::SOURCE_LAST_SUCCESS, last_success);
            if let Some(took) = status.last_duration {
                gauge(&exporter::SOURCE_POLL_DURATION, took.as_secs_f64());
            }
        }

        for (budget, figures) in self.telemetry.budget_figures() {
            let labels = [("budget", budget.as_str())];
            for (def, value) in [
                (&exporter::BUDGET_REMAINING, figures.remaining as f64),
                (&exporter::BUDGET_WAIT, figures.wait_seconds_total),
                (&exporter::RATE_LIMITED, figures.rate_limited_total as f64),
            ] {
                let family = families
                    .entry(def.name)
                    .or_insert_with(|| Family::new(def.name, def.help, def.kind));
                text_format::sample(&mut family.lines, def.name, labels, value);
            }
        }

        // The exporter's counters, through the prometheus crate's own encoder; the counters
        // of a source a reload removed leave the page with its series.
        let live: BTreeSet<&str> = statuses.iter().map(|s| s.source.as_str()).collect();
        let mut counters: Vec<(String, Vec<u8>)> = Vec::new();
        for mut family in self.telemetry.gather() {
            family.mut_metric().retain(|m| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == "source")
                    .is_none_or(|l| live.contains(l.value()))
            });
            if family.get_metric().is_empty() {
                continue;
            }
            let mut text = Vec::new();
            if TextEncoder::new()
                .encode(&[family.clone()], &mut text)
                .is_ok()
            {
                counters.push((family.name().to_string(), text));
            }
        }

        // Families in name order, each one block: its header, then every source's part. The
        // text written here between two cached pieces becomes a piece of its own.
        let mut page = PagePieces::new(writer);
        let mut counters = counters.into_iter().peekable();
        for (name, family) in &families {
            while let Some((_, text)) = counters.next_if(|(c, _)| c.as_str() < *name) {
                page.write(&text);
            }
            page.write(&family.header);
            for (source, piece) in &family.cached {
                page.cached(source, name, piece);
            }
            page.write(&family.lines);
        }
        for (_, text) in counters {
            page.write(&text);
        }
        let (rendered, placed) = page.join();
        // Each cached piece now points into the page instead of holding a copy of its
        // bytes: one copy of a large farm's compressed text in memory, not two.
        for ((source, name), range) in placed {
            if let Some((_, piece)) = cache
                .get_mut(&source)
                .and_then(|f| f.families.get_mut(name))
            {
                piece.deflate = rendered.gzip.slice(range);
            }
        }
        rendered
    }
}

/// The page as it is put together: pieces in order, text between them gathered into one.
/// Only pieces with text are kept, so each lands in the page in the order it was added.
struct PagePieces {
    writer: PieceWriter,
    pieces: Vec<Piece>,
    /// Which cached piece each of `pieces` is (None: written at this render).
    sources: Vec<Option<(String, &'static str)>>,
}

impl PagePieces {
    fn new(writer: PieceWriter) -> Self {
        PagePieces {
            writer,
            pieces: Vec::new(),
            sources: Vec::new(),
        }
    }

    fn write(&mut self, text: &[u8]) {
        self.writer.text().extend_from_slice(text);
        self.writer.written();
    }

    fn cached(&mut self, source: &str, family: &'static str, piece: &Piece) {
        if piece.is_empty() {
            return;
        }
        self.end_written();
        self.pieces.push(piece.clone());
        self.sources.push(Some((source.to_string(), family)));
    }

    fn end_written(&mut self) {
        if self.writer.has_text() {
            self.pieces.push(self.writer.finish());
            self.sources.push(None);
        }
    }

    /// The gzip page, and where each cached piece landed in it.
    #[allow(clippy::type_complexity)]
    fn join(
        mut self,
    ) -> (
        Rendered,
        Vec<((String, &'static str), std::ops::Range<usize>)>,
    ) {
        self.end_written();
        let joined = gzip_pieces::join(&self.pieces);
        let placed = self
            .sources
            .into_iter()
            .zip(joined.placed)
            .filter_map(|(source, range)| Some((source?, range)))
            .collect();
        let rendered = Rendered {
            gzip: joined.gzip,
            text_len: joined.text_len,
        };
        (rendered, placed)
    }
}

/// Each source's pool families as written at its last render, with the snapshot they came
/// from: while a source's snapshot is the same `Arc`, its pieces are reused.
type Fragments = BTreeMap<String, SourceFragment>;

#[derive(Debug)]
struct SourceFragment {
    /// Which render wrote this text (tests check that unchanged sources are not rewritten).
    #[cfg(test)]
    written: u64,
    snapshot: Arc<Snapshot>,
    pool: &'static str,
    families: BTreeMap<&'static str, (&'static MetricDef, Piece)>,
}

impl SourceFragment {
    fn render(status: &SourceStatus, writer: &mut PieceWriter) -> SourceFragment {
        #[cfg(test)]
        static WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let base = [("pool", status.pool), ("source", status.source.as_str())];
        let families = status
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
                (def.name, (def, writer.finish()))
            })
            .collect();
        SourceFragment {
            #[cfg(test)]
            written: WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            snapshot: status.snapshot.clone(),
            pool: status.pool,
            families,
        }
    }
}

/// One family of the page: its header, then the sources' cached pool pieces in source order,
/// or the lines written at this render (a family is one or the other).
struct Family {
    header: Vec<u8>,
    /// Each source's cached piece, with the source's name.
    cached: Vec<(String, Piece)>,
    lines: Vec<u8>,
}

impl Family {
    fn new(name: &str, help: &str, kind: MetricKind) -> Family {
        let mut header = Vec::new();
        text_format::family_header(&mut header, name, help, kind);
        Family {
            header,
            cached: Vec::new(),
            lines: Vec::new(),
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

    /// Which render last wrote each source's text.
    fn written(exposition: &Exposition) -> Vec<(String, u64)> {
        let cache = exposition.rendering.lock().unwrap();
        cache
            .iter()
            .map(|(source, f)| (source.clone(), f.written))
            .collect()
    }

    #[test]
    fn only_the_source_whose_snapshot_changed_is_written_again() {
        let store = Arc::new(Store::new([("ourpool", "a"), ("luxor", "b")]));
        let exposition = Exposition::new(store.clone(), Telemetry::new());
        for source in ["a", "b"] {
            store.record_success(source, snapshot("w1"), Duration::ZERO, SystemTime::now());
        }
        exposition.refresh();
        let before = written(&exposition);

        store.record_success("a", snapshot("w2"), Duration::ZERO, SystemTime::now());
        exposition.refresh();
        let after = written(&exposition);
        assert_ne!(after[0], before[0], "a changed: written again");
        assert_eq!(after[1], before[1], "b unchanged: its text reused");

        let page = String::from_utf8(exposition.current().text()).unwrap();
        assert!(page.contains(
            "mining_worker_up{pool=\"ourpool\",source=\"a\",account=\"acct\",worker=\"w2\"} 1"
        ));
        assert!(!page.contains("source=\"a\",account=\"acct\",worker=\"w1\""));
        assert!(page.contains(
            "mining_worker_up{pool=\"luxor\",source=\"b\",account=\"acct\",worker=\"w1\"} 1"
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
            &mut flate2::read::GzDecoder::new(&rendered.gzip[..]),
            &mut checked,
        )
        .unwrap();
        assert_eq!(checked, rendered.text());
        assert_eq!(checked.len() as u64, rendered.text_len);
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
                        MetricKind::Gauge => "gauge",
                        MetricKind::Counter => "counter",
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
