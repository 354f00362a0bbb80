//! Renders the store, the budgets and the exporter's counters into the Prometheus text format
//! (0.0.4) once per change, and keeps the bytes, plain and gzipped. A scrape only clones an
//! `Arc`: it never re-encodes and never reaches a pool.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use crate::budget::Budgets;
use crate::metrics::{MetricKind, exporter};
use crate::snapshot::Store;
use crate::telemetry::Telemetry;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug)]
pub struct Rendered {
    pub text: Bytes,
    pub gzip: Bytes,
}

#[derive(Debug)]
pub struct Exposition {
    store: Arc<Store>,
    /// Replaced whole on a reload.
    budgets: RwLock<Budgets>,
    telemetry: Telemetry,
    current: RwLock<Arc<Rendered>>,
    /// Two sources finishing together must not interleave their renders.
    rendering: Mutex<()>,
}

impl Exposition {
    pub fn new(store: Arc<Store>, budgets: Budgets, telemetry: Telemetry) -> Self {
        let exposition = Exposition {
            store,
            budgets: RwLock::new(budgets),
            telemetry,
            current: RwLock::new(Arc::new(Rendered {
                text: Bytes::new(),
                gzip: Bytes::new(),
            })),
            rendering: Mutex::new(()),
        };
        exposition.refresh();
        exposition
    }

    /// The budgets after a reload; the next render shows them.
    pub fn set_budgets(&self, budgets: Budgets) {
        *self.budgets.write().unwrap_or_else(|e| e.into_inner()) = budgets;
    }

    /// The last rendering; what every scrape serves.
    pub fn current(&self) -> Arc<Rendered> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Renders anew. Called after every poll, whatever its outcome.
    pub fn refresh(&self) {
        let _one_at_a_time = self.rendering.lock().unwrap_or_else(|e| e.into_inner());
        let text = render(&self.families());
        let mut gz = GzEncoder::new(Vec::with_capacity(text.len() / 8), Compression::default());
        gz.write_all(&text).expect("writing to a Vec cannot fail");
        let gzip = gz.finish().expect("writing to a Vec cannot fail");
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Rendered {
            text: Bytes::from(text),
            gzip: Bytes::from(gzip),
        });
    }

    fn families(&self) -> Vec<MetricFamily> {
        let mut families: BTreeMap<&'static str, MetricFamily> = BTreeMap::new();
        let mut add = |name: &'static str, help: &str, kind: MetricKind, metric: Metric| {
            families
                .entry(name)
                .or_insert_with(|| family(name, help, kind))
                .mut_metric()
                .push(metric);
        };

        let statuses = self.store.statuses();
        for status in &statuses {
            let base = [("pool", status.pool), ("source", status.source.as_str())];
            for (def, samples) in status.snapshot.families() {
                for (values, value) in samples {
                    let labels = base.iter().copied().chain(
                        def.labels
                            .iter()
                            .copied()
                            .zip(values.iter().map(String::as_str)),
                    );
                    add(
                        def.name,
                        def.help,
                        def.kind,
                        metric(labels, def.kind, *value),
                    );
                }
            }
            let gauge = |value: f64| metric(base.iter().copied(), MetricKind::Gauge, value);
            add(
                exporter::SOURCE_UP,
                "1 if the last poll of the source succeeded, else 0 (its last good values stay exported).",
                MetricKind::Gauge,
                gauge(if status.up { 1.0 } else { 0.0 }),
            );
            add(
                exporter::SOURCE_SERIES,
                "Series the source contributes to this page.",
                MetricKind::Gauge,
                gauge(status.snapshot.series_count() as f64),
            );
            // 0 until the first success, so an alert on the age of this timestamp also fires
            // for a source that has never worked.
            let last_success = status.last_success.map_or(0.0, |at| {
                at.duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
            });
            add(
                exporter::SOURCE_LAST_SUCCESS,
                "Unix time at the end of the last successful poll, 0 until the first one; alert on its age to tell stale data from zero.",
                MetricKind::Gauge,
                gauge(last_success),
            );
            if let Some(took) = status.last_duration {
                add(
                    exporter::SOURCE_POLL_DURATION,
                    "Duration of the last poll in seconds, budget waits and retries included.",
                    MetricKind::Gauge,
                    gauge(took.as_secs_f64()),
                );
            }
        }

        let budgets = self
            .budgets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for budget in budgets.values() {
            let labels = || [("budget", budget.name())].into_iter();
            add(
                exporter::BUDGET_REMAINING,
                "Requests the budget allows right now in its tightest window, the pool's rate-limit headers included.",
                MetricKind::Gauge,
                metric(labels(), MetricKind::Gauge, budget.remaining() as f64),
            );
            add(
                exporter::BUDGET_WAIT,
                "Seconds requests spent waiting for the budget.",
                MetricKind::Counter,
                metric(labels(), MetricKind::Counter, budget.wait_seconds_total()),
            );
            add(
                exporter::RATE_LIMITED,
                "HTTP 429 answers the pools gave requests of this budget; should stay 0.",
                MetricKind::Counter,
                metric(
                    labels(),
                    MetricKind::Counter,
                    budget.rate_limited_total() as f64,
                ),
            );
        }

        let mut all: Vec<MetricFamily> = families.into_values().collect();
        // The counters of a source a reload removed leave the page with its series.
        let live: BTreeSet<&str> = statuses.iter().map(|s| s.source.as_str()).collect();
        for mut family in self.telemetry.registry.gather() {
            family.mut_metric().retain(|m| {
                m.get_label()
                    .iter()
                    .find(|l| l.name() == "source")
                    .is_none_or(|l| live.contains(l.value()))
            });
            all.push(family);
        }
        all.retain(|f| !f.get_metric().is_empty());
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }
}

fn family(name: &str, help: &str, kind: MetricKind) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(match kind {
        MetricKind::Gauge => MetricType::GAUGE,
        MetricKind::Counter => MetricType::COUNTER,
    });
    f
}

fn metric<'a>(
    labels: impl Iterator<Item = (&'a str, &'a str)>,
    kind: MetricKind,
    value: f64,
) -> Metric {
    let pairs = labels
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_string());
            pair.set_value(value.to_string());
            pair
        })
        .collect();
    let mut m = Metric::from_label(pairs);
    match kind {
        MetricKind::Gauge => {
            let mut g = Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
        MetricKind::Counter => {
            let mut c = Counter::default();
            c.set_value(value);
            m.set_counter(c);
        }
    }
    m
}

fn render(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(families, &mut out)
        .expect("families are built non-empty with valid names");
    out
}
