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
use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use tracing::{debug, info, warn};

use crate::budget::BudgetFigures;
use crate::error::PollError;
use crate::metrics::{MetricDef, PollErrorKind, exporter};

#[derive(Debug, Clone)]
pub struct Telemetry {
    registry: Registry,
    upstream_requests: IntCounterVec,
    poll_errors: IntCounterVec,
    endpoint_enabled: IntGaugeVec,
    workers_omitted: IntGaugeVec,
    items_skipped: IntCounterVec,
    labels_truncated: IntCounterVec,
    interval_planned: GaugeVec,
    interval_achieved: GaugeVec,
    poll_cost: IntGaugeVec,
    budget_planned_use: GaugeVec,
    reload_successful: IntGauge,
    reload_success_time: Gauge,
    /// By budget name, as their budgets last recorded them.
    budgets: Arc<Mutex<BTreeMap<String, BudgetFigures>>>,
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
        let counters = |def: &MetricDef| defined(IntCounterVec::new(opts(def), def.labels));
        let int_gauges = |def: &MetricDef| defined(IntGaugeVec::new(opts(def), def.labels));
        let gauges = |def: &MetricDef| defined(GaugeVec::new(opts(def), def.labels));
        let telemetry = Telemetry {
            upstream_requests: counters(&exporter::UPSTREAM_REQUESTS),
            poll_errors: counters(&exporter::POLL_ERRORS),
            endpoint_enabled: int_gauges(&exporter::ENDPOINT_ENABLED),
            workers_omitted: int_gauges(&exporter::WORKERS_OMITTED),
            items_skipped: counters(&exporter::ITEMS_SKIPPED),
            labels_truncated: counters(&exporter::LABELS_TRUNCATED),
            interval_planned: gauges(&exporter::POLL_INTERVAL_PLANNED),
            interval_achieved: gauges(&exporter::POLL_INTERVAL_ACHIEVED),
            poll_cost: int_gauges(&exporter::POLL_COST),
            budget_planned_use: gauges(&exporter::BUDGET_PLANNED_USE),
            reload_successful: defined(IntGauge::with_opts(opts(
                &exporter::CONFIG_LAST_RELOAD_SUCCESSFUL,
            ))),
            reload_success_time: defined(Gauge::with_opts(opts(
                &exporter::CONFIG_LAST_RELOAD_SUCCESS_TIME,
            ))),
            budgets: Default::default(),
            registry,
        };
        let collectors: [Box<dyn Collector>; 13] = [
            Box::new(build_info),
            Box::new(telemetry.upstream_requests.clone()),
            Box::new(telemetry.poll_errors.clone()),
            Box::new(telemetry.endpoint_enabled.clone()),
            Box::new(telemetry.workers_omitted.clone()),
            Box::new(telemetry.items_skipped.clone()),
            Box::new(telemetry.labels_truncated.clone()),
            Box::new(telemetry.interval_planned.clone()),
            Box::new(telemetry.interval_achieved.clone()),
            Box::new(telemetry.poll_cost.clone()),
            Box::new(telemetry.budget_planned_use.clone()),
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

    /// Every registered family's current samples, for the page.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }

    /// The handle of one source, its counters started at 0 so that `rate()` and `increase()`
    /// work from the first event on.
    pub fn source(
        &self,
        pool: &'static str,
        source: &str,
        counts_omitted: bool,
    ) -> SourceTelemetry {
        for kind in PollErrorKind::ALL {
            self.poll_errors
                .with_label_values(&[pool, source, kind.label()]);
        }
        for reason in crate::snapshot::SKIP_REASONS {
            self.items_skipped
                .with_label_values(&[pool, source, reason]);
        }
        self.labels_truncated.with_label_values(&[pool, source]);
        if counts_omitted {
            self.workers_omitted
                .with_label_values(&[pool, source])
                .set(0);
        }
        SourceTelemetry {
            telemetry: self.clone(),
            pool,
            source: source.to_string(),
            requests_asked: Arc::new(AtomicU64::new(0)),
            warned: Default::default(),
            last_failure: Default::default(),
        }
    }

    /// The plan in force: each source's interval and cost as (pool, source, interval, cost),
    /// each budget's planned use as (budget, share). What the last plan showed is cleared.
    pub fn planned<'a>(
        &self,
        sources: impl IntoIterator<Item = (&'static str, &'a str, Duration, u32)>,
        budgets: impl IntoIterator<Item = (&'a str, f64)>,
    ) {
        self.interval_planned.reset();
        self.poll_cost.reset();
        self.budget_planned_use.reset();
        for (pool, source, interval, cost) in sources {
            self.interval_planned
                .with_label_values(&[pool, source])
                .set(interval.as_secs_f64());
            self.poll_cost
                .with_label_values(&[pool, source])
                .set(i64::from(cost));
        }
        for (budget, share) in budgets {
            self.budget_planned_use
                .with_label_values(&[budget])
                .set(share);
        }
    }

    /// A budget's figures as of now. Called after every request: a known budget is updated
    /// in place, without allocating its name again.
    pub fn budget(&self, name: &str, figures: BudgetFigures) {
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        match budgets.get_mut(name) {
            Some(shown) => *shown = figures,
            None => {
                budgets.insert(name.to_string(), figures);
            }
        }
    }

    /// After a reload: only these budgets are shown.
    pub fn budgets_in_force<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let names: BTreeSet<&str> = names.into_iter().collect();
        self.budgets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, _| names.contains(name.as_str()));
    }

    /// Every budget's last recorded figures, in name order.
    pub fn budget_figures(&self) -> Vec<(String, BudgetFigures)> {
        self.budgets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(name, figures)| (name.clone(), *figures))
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
        self.telemetry
            .upstream_requests
            .with_label_values(&[self.pool, &self.source, endpoint, code])
            .inc();
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
        self.telemetry
            .poll_errors
            .with_label_values(&[self.pool, &self.source, kind])
            .inc();
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
        self.telemetry
            .endpoint_enabled
            .with_label_values(&[self.pool, &self.source, endpoint])
            .set(i64::from(enabled));
    }

    /// The mean seconds between the last polls' starts.
    pub fn interval_achieved(&self, mean_seconds: f64) {
        self.telemetry
            .interval_achieved
            .with_label_values(&[self.pool, &self.source])
            .set(mean_seconds);
    }

    /// Workers past `max_workers` at this poll: counted, and the first time, one warning.
    pub fn workers_omitted(&self, max_workers: usize, omitted: usize) {
        self.telemetry
            .workers_omitted
            .with_label_values(&[self.pool, &self.source])
            .set(i64::try_from(omitted).unwrap_or(i64::MAX));
        if omitted > 0 && self.warned.first("max_workers") {
            warn!(source = %self.source, pool = self.pool, max_workers, omitted, "more workers than max_workers: the rest have no series of their own and count only in the account totals (logged once)");
        }
    }

    /// Items of a good answer left out for `reason`: counted, and once per reason, one
    /// warning.
    pub fn items_skipped(&self, reason: &'static str, skipped: usize) {
        self.telemetry
            .items_skipped
            .with_label_values(&[self.pool, &self.source, reason])
            .inc_by(u64::try_from(skipped).unwrap_or(u64::MAX));
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
        self.telemetry
            .labels_truncated
            .with_label_values(&[self.pool, &self.source])
            .inc_by(u64::try_from(truncated).unwrap_or(u64::MAX));
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
