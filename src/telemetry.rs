//! The exporter's own metrics, registered from their definitions in `metrics.rs` and recorded
//! as events: callers say what happened (`request_answered`, `poll_failed`,
//! `endpoint_enabled`, ...) and never spell a metric or its labels. `SourceTelemetry` is one
//! source's handle, shared by its poller, its client and its optional endpoints; an event
//! that deserves a log line writes it here too, beside its counter.
//!
//! Figures the exporter owns (the plan, the budgets) are recorded here by their owners, so
//! the page reads recorded values and never reaches a budget or the plan.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{Gauge, IntGauge, IntGaugeVec, Opts, Registry};
use tracing::{debug, info, warn};

use crate::budget::BudgetFigures;
use crate::error::PollError;
use crate::metrics::{MetricDef, PollErrorKind, exporter};

#[derive(Debug, Clone)]
pub struct Telemetry {
    /// The families that are one series for the process: build_info, the reload gauges,
    /// process_*.
    registry: Registry,
    reload_successful: IntGauge,
    reload_success_time: Gauge,
    /// Each source's figures, by (pool, source): its part of the page is written again only
    /// when they change, so one source's poll costs the page that source's lines alone.
    sources: Arc<Mutex<SourcesCounted>>,
    /// By budget name, as their budgets last recorded them, with the plan's use of each.
    budgets: Arc<Mutex<BTreeMap<String, BudgetShown>>>,
}

/// Each source's counters, by source and pool: found by a source's name without making a key.
type SourcesCounted = BTreeMap<String, BTreeMap<&'static str, Arc<SourceCounters>>>;

/// One source's self-metrics: the counters and gauges the page shows beside its series.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFigures {
    /// `upstream_requests_total` by (endpoint, code).
    pub requests: BTreeMap<(String, String), u64>,
    /// `poll_errors_total`, in the order of `PollErrorKind::ALL`.
    pub poll_errors: Vec<u64>,
    /// `endpoint_enabled` of the optional endpoints that answered or were switched off.
    pub endpoints: BTreeMap<String, bool>,
    /// `workers_omitted`, for a source with `max_workers`.
    pub workers_omitted: Option<u64>,
    /// `items_skipped_total`, in the order of `snapshot::SKIP_REASONS`.
    pub items_skipped: Vec<u64>,
    pub labels_truncated: u64,
    pub interval_planned: Option<f64>,
    pub interval_achieved: Option<f64>,
    pub poll_cost: Option<u64>,
}

/// A source's figures, and a count that grows with every change to them.
#[derive(Debug)]
pub struct SourceCounters {
    version: AtomicU64,
    figures: Mutex<SourceFigures>,
}

impl SourceCounters {
    fn new(counts_omitted: bool) -> Self {
        SourceCounters {
            version: AtomicU64::new(0),
            figures: Mutex::new(SourceFigures {
                requests: BTreeMap::new(),
                poll_errors: vec![0; PollErrorKind::ALL.len()],
                endpoints: BTreeMap::new(),
                workers_omitted: counts_omitted.then_some(0),
                items_skipped: vec![0; crate::snapshot::SKIP_REASONS.len()],
                labels_truncated: 0,
                interval_planned: None,
                interval_achieved: None,
                poll_cost: None,
            }),
        }
    }

    /// Changes the figures; the page sees a new version.
    fn change(&self, f: impl FnOnce(&mut SourceFigures)) {
        f(&mut self.figures.lock().unwrap_or_else(|e| e.into_inner()));
        self.version.fetch_add(1, Ordering::Release);
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The figures as of now, and the version they are.
    pub fn figures(&self) -> (u64, SourceFigures) {
        let figures = self.figures.lock().unwrap_or_else(|e| e.into_inner());
        (self.version(), figures.clone())
    }
}

/// What the page shows of one budget.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetShown {
    pub figures: BudgetFigures,
    /// The plan's share of the budget's tightest window, once planned.
    pub planned_use: Option<f64>,
}

fn opts(def: &MetricDef) -> Opts {
    Opts::new(def.name, def.help)
}

/// The definitions are constants: a failure here is a bug the first test run shows.
fn defined<T>(made: prometheus::Result<T>) -> T {
    made.expect("a valid metric definition")
}

impl Telemetry {
    pub fn new() -> Self {
        let registry = Registry::new();
        let build_info = defined(IntGaugeVec::new(
            opts(&exporter::BUILD_INFO),
            exporter::BUILD_INFO.labels,
        ));
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                env!("MINING_EXPORTER_REVISION"),
                env!("MINING_EXPORTER_RUST_VERSION"),
            ])
            .set(1);
        let telemetry = Telemetry {
            reload_successful: defined(IntGauge::with_opts(opts(
                &exporter::CONFIG_LAST_RELOAD_SUCCESSFUL,
            ))),
            reload_success_time: defined(Gauge::with_opts(opts(
                &exporter::CONFIG_LAST_RELOAD_SUCCESS_TIME,
            ))),
            sources: Default::default(),
            budgets: Default::default(),
            registry,
        };
        let collectors: [Box<dyn Collector>; 3] = [
            Box::new(build_info),
            Box::new(telemetry.reload_successful.clone()),
            Box::new(telemetry.reload_success_time.clone()),
        ];
        for collector in collectors {
            defined(telemetry.registry.register(collector));
        }
        // process_* as every Prometheus client exports them: resident and virtual memory,
        // CPU seconds, start time, open and maximum file descriptors (Linux only).
        #[cfg(target_os = "linux")]
        defined(telemetry.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        )));
        telemetry
    }

    /// The families of the process (build_info, the reload gauges, process_*) as of now.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, SourcesCounted> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The handle of one source, its counters started at 0 so that `rate()` and `increase()`
    /// work from the first event on. A source asked for again (a reload restarting it)
    /// counts on into the same figures.
    pub fn source(
        &self,
        pool: &'static str,
        source: &str,
        counts_omitted: bool,
    ) -> SourceTelemetry {
        let counters = self
            .sources()
            .entry(source.to_string())
            .or_default()
            .entry(pool)
            .or_insert_with(|| Arc::new(SourceCounters::new(counts_omitted)))
            .clone();
        if counts_omitted {
            counters.change(|f| {
                f.workers_omitted.get_or_insert(0);
            });
        }
        SourceTelemetry {
            telemetry: self.clone(),
            counters,
            pool,
            source: source.to_string(),
            requests_asked: Arc::new(AtomicU64::new(0)),
            warned: Default::default(),
            last_failure: Default::default(),
        }
    }

    /// The figures of each of `sources` (pool, name), where it ever had a handle: the page
    /// asks for a shard's at once, under one lock.
    pub fn counters_of<'a>(
        &self,
        sources: impl IntoIterator<Item = (&'static str, &'a str)>,
    ) -> Vec<Option<Arc<SourceCounters>>> {
        let counted = self.sources();
        sources
            .into_iter()
            .map(|(pool, name)| {
                counted
                    .get(name)
                    .and_then(|by_pool| by_pool.get(pool))
                    .cloned()
            })
            .collect()
    }

    /// After a reload: the figures of sources no longer configured are forgotten.
    pub fn sources_in_force<'a>(&self, sources: impl IntoIterator<Item = (&'static str, &'a str)>) {
        let live: BTreeSet<(&'static str, &str)> = sources.into_iter().collect();
        let mut counted = self.sources();
        counted.retain(|name, by_pool| {
            by_pool.retain(|pool, _| live.contains(&(*pool, name.as_str())));
            !by_pool.is_empty()
        });
    }

    /// The plan in force: each source's interval and cost as (pool, source, interval, cost),
    /// each budget's planned use as (budget, share). What the last plan showed is cleared.
    pub fn planned<'a>(
        &self,
        sources: impl IntoIterator<Item = (&'static str, &'a str, Duration, u32)>,
        budgets: impl IntoIterator<Item = (&'a str, f64)>,
    ) {
        let planned: BTreeMap<(&'static str, &str), (Duration, u32)> = sources
            .into_iter()
            .map(|(pool, source, interval, cost)| ((pool, source), (interval, cost)))
            .collect();
        let counted = self.sources();
        let each = counted
            .iter()
            .flat_map(|(name, by_pool)| by_pool.iter().map(move |(pool, c)| (name, pool, c)));
        for (name, pool, counters) in each {
            let plan = planned.get(&(*pool, name.as_str())).copied();
            let wanted = plan.map(|(interval, _)| interval.as_secs_f64());
            let cost = plan.map(|(_, cost)| u64::from(cost));
            let shown = {
                let f = counters.figures.lock().unwrap_or_else(|e| e.into_inner());
                (f.interval_planned, f.poll_cost)
            };
            // A replan that moved nothing of a source leaves its part of the page alone.
            if shown != (wanted, cost) {
                counters.change(|f| {
                    f.interval_planned = wanted;
                    f.poll_cost = cost;
                });
            }
        }
        let shares: BTreeMap<&str, f64> = budgets.into_iter().collect();
        for (name, shown) in self.budgets().iter_mut() {
            shown.planned_use = shares.get(name.as_str()).copied();
        }
        for (name, share) in shares {
            self.budgets()
                .entry(name.to_string())
                .or_default()
                .planned_use = Some(share);
        }
    }

    fn budgets(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BudgetShown>> {
        self.budgets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A budget's figures as of now. Called after every request: a known budget is updated
    /// in place, without allocating its name again.
    pub fn budget(&self, name: &str, figures: BudgetFigures) {
        let mut budgets = self.budgets();
        match budgets.get_mut(name) {
            Some(shown) => shown.figures = figures,
            None => {
                budgets.insert(
                    name.to_string(),
                    BudgetShown {
                        figures,
                        planned_use: None,
                    },
                );
            }
        }
    }

    /// After a reload: only these budgets are shown.
    pub fn budgets_in_force<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let names: BTreeSet<&str> = names.into_iter().collect();
        self.budgets()
            .retain(|name, _| names.contains(name.as_str()));
    }

    /// Every budget's last recorded figures, in name order.
    pub fn budget_figures(&self) -> Vec<(String, BudgetShown)> {
        self.budgets()
            .iter()
            .map(|(name, shown)| (name.clone(), *shown))
            .collect()
    }

    /// A config was loaded and is in force, at `at`.
    pub fn config_reloaded(&self, at: std::time::SystemTime) {
        self.reload_successful.set(1);
        let secs = at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        self.reload_success_time.set(secs);
    }

    /// A reload was refused; the running config stays.
    pub fn config_reload_failed(&self) {
        self.reload_successful.set(0);
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

/// One source's events. Cheap to clone; every clone counts into the same figures.
#[derive(Debug, Clone)]
pub struct SourceTelemetry {
    telemetry: Telemetry,
    counters: Arc<SourceCounters>,
    pub pool: &'static str,
    pub source: String,
    /// Requests asked for, retries not counted: what a poll costs is the difference over it.
    requests_asked: Arc<AtomicU64>,
    /// What this source has already warned about, so a pool that keeps sending the same odd
    /// thing is logged once, not on every poll.
    warned: Arc<WarnedOnce>,
    /// The last failure logged at warn level, so a repeated failure is logged once.
    last_failure: Arc<Mutex<Option<String>>>,
}

impl SourceTelemetry {
    /// A request is about to be asked for (its retries are not counted again).
    pub fn request_asked(&self) {
        self.requests_asked.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests asked for since the source started.
    pub fn requests_asked(&self) -> u64 {
        self.requests_asked.load(Ordering::Relaxed)
    }

    /// One attempt ended, with the HTTP status or `timeout`, `transport` or `decode`.
    pub fn request_answered(&self, endpoint: &str, code: &str) {
        self.counters.change(|f| {
            match f
                .requests
                .get_mut(&(endpoint.to_string(), code.to_string()))
            {
                Some(n) => *n += 1,
                None => {
                    f.requests
                        .insert((endpoint.to_string(), code.to_string()), 1);
                }
            }
        });
    }

    /// A poll succeeded with `series` series; after a failure, one line says so.
    pub fn poll_succeeded(&self, series: usize, took: Duration) {
        if self.last_failure().take().is_some() {
            info!(source = %self.source, pool = self.pool, series, "source recovered");
        } else {
            debug!(source = %self.source, pool = self.pool, series, ?took, "poll succeeded");
        }
    }

    /// A poll failed: counted by kind, and logged at warn once per distinct failure (again
    /// at debug), saying what the page serves meanwhile: `has_data`, the last good data.
    pub fn poll_failed(&self, error: &PollError, has_data: bool) {
        let kind = error.kind().label();
        let at = PollErrorKind::ALL.iter().position(|k| *k == error.kind());
        self.counters.change(|f| {
            if let Some(n) = at.and_then(|i| f.poll_errors.get_mut(i)) {
                *n += 1;
            }
        });
        let message = error.to_string();
        let mut last_failure = self.last_failure();
        if last_failure.as_deref() == Some(message.as_str()) {
            debug!(source = %self.source, pool = self.pool, kind, error = %message, "poll failed again");
        } else {
            if has_data {
                warn!(source = %self.source, pool = self.pool, kind, error = %message, "poll failed; keeping the last good data");
            } else {
                warn!(source = %self.source, pool = self.pool, kind, error = %message, "poll failed; no successful poll yet, so no pool data is served for this source");
            }
            *last_failure = Some(message);
        }
    }

    fn last_failure(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.last_failure.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An optional endpoint answered; `was_off`: after it had been switched off.
    pub fn endpoint_served(&self, endpoint: &'static str, was_off: bool) {
        self.set_endpoint_enabled(endpoint, true);
        if was_off {
            info!(source = %self.source, pool = self.pool, endpoint, "the pool serves this endpoint again: switched back on");
        }
    }

    /// An optional endpoint the pool never served is switched off, and asked again every
    /// `retry_in`.
    pub fn endpoint_switched_off(&self, endpoint: &'static str, reason: &str, retry_in: Duration) {
        self.set_endpoint_enabled(endpoint, false);
        warn!(
            source = %self.source,
            pool = self.pool,
            endpoint,
            reason,
            ?retry_in,
            "the pool does not serve this endpoint (HTTP 404 on 3 polls in a row, never answered since start): switched off for this source and asked again every hour; the rest of the source keeps working"
        );
    }

    fn set_endpoint_enabled(&self, endpoint: &str, enabled: bool) {
        self.counters.change(|f| {
            f.endpoints.insert(endpoint.to_string(), enabled);
        });
    }

    /// The mean seconds between the last polls' starts.
    pub fn interval_achieved(&self, mean_seconds: f64) {
        self.counters
            .change(|f| f.interval_achieved = Some(mean_seconds));
    }

    /// Workers past `max_workers` at this poll: counted, and the first time, one warning.
    pub fn workers_omitted(&self, max_workers: usize, omitted: usize) {
        self.counters.change(|f| {
            f.workers_omitted = Some(u64::try_from(omitted).unwrap_or(u64::MAX));
        });
        if omitted > 0 && self.warned.first("max_workers") {
            warn!(source = %self.source, pool = self.pool, max_workers, omitted, "more workers than max_workers: the rest have no series of their own and count only in the account totals (logged once)");
        }
    }

    /// Items of a good answer left out for `reason`: counted, and once per reason, one
    /// warning.
    pub fn items_skipped(&self, reason: &'static str, skipped: usize) {
        let at = crate::snapshot::SKIP_REASONS
            .iter()
            .position(|r| *r == reason);
        self.counters.change(|f| {
            if let Some(n) = at.and_then(|i| f.items_skipped.get_mut(i)) {
                *n = n.saturating_add(u64::try_from(skipped).unwrap_or(u64::MAX));
            }
        });
        if reason == crate::snapshot::SKIP_DUPLICATE {
            if self.warned.first("duplicate_items") {
                warn!(source = %self.source, pool = self.pool, skipped, "the answer gave one label set more than once; the first value is kept and the rest skipped (counted in mining_exporter_items_skipped_total{{reason=\"duplicate\"}}, logged once)");
            }
        } else if self.warned.first("skipped_items") {
            warn!(source = %self.source, pool = self.pool, reason, skipped, "an item of the pool's answer could not be read and was skipped; the rest of the poll is kept (counted in mining_exporter_items_skipped_total by reason, logged once)");
        }
    }

    /// Label values cut to `max_bytes`: counted, and once, one warning.
    pub fn labels_truncated(&self, truncated: usize, max_bytes: usize) {
        self.counters.change(|f| {
            f.labels_truncated = f
                .labels_truncated
                .saturating_add(u64::try_from(truncated).unwrap_or(u64::MAX));
        });
        if self.warned.first("truncated_labels") {
            warn!(source = %self.source, pool = self.pool, truncated, max_bytes, "a label value from the pool is longer than the cap and was cut (counted in mining_exporter_labels_truncated_total, logged once)");
        }
    }

    /// True the first time `what` is seen: for warnings the client gives once.
    pub fn first(&self, what: &'static str) -> bool {
        self.warned.first(what)
    }

    /// A budget this source sends through, as of now.
    pub fn budget(&self, name: &str, figures: BudgetFigures) {
        self.telemetry.budget(name, figures);
    }
}

/// Names of things already logged at warn level.
#[derive(Debug, Default)]
struct WarnedOnce(Mutex<BTreeSet<&'static str>>);

impl WarnedOnce {
    fn first(&self, what: &'static str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(what)
    }
}
