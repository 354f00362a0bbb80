//! The exporter's own counters, kept in a prometheus Registry. Per-source state and budgets
//! are read at render time instead (see exposition.rs), because they are snapshots, not events.

use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::plan::Plan;

use crate::metrics::exporter;

#[derive(Debug, Clone)]
pub struct Telemetry {
    pub registry: Registry,
    /// pool, source, endpoint, code
    pub upstream_requests: IntCounterVec,
    /// pool, source, kind
    pub poll_errors: IntCounterVec,
    /// pool, source, endpoint: optional endpoints, 0 while switched off
    pub endpoint_enabled: IntGaugeVec,
    /// pool, source: workers beyond `max_workers`, counted only in the account totals
    pub workers_omitted: IntGaugeVec,
    /// pool, source, reason: items of good answers left out (`SKIP_REASONS`)
    pub items_skipped: IntCounterVec,
    /// pool, source: label values cut to the length cap
    pub labels_truncated: IntCounterVec,
    /// pool, source: seconds the plan puts between polls
    pub interval_planned: GaugeVec,
    /// pool, source: mean seconds between the starts of the last polls
    pub interval_achieved: GaugeVec,
    /// pool, source: requests a poll costs, as the plan counts it
    pub poll_cost: IntGaugeVec,
    /// budget: the share of the tightest window the plan uses
    pub budget_planned_use: GaugeVec,
    reload_successful: IntGauge,
    reload_success_time: Gauge,
}

impl Telemetry {
    pub fn new() -> Self {
        let registry = Registry::new();
        let build_info = IntGaugeVec::new(
            Opts::new(
                exporter::BUILD_INFO,
                "Always 1; the version label names the running mining-exporter.",
            ),
            &["version"],
        )
        .expect("valid metric definition");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                exporter::UPSTREAM_REQUESTS,
                "Requests sent to pool APIs; code is the HTTP status, or timeout, transport or decode.",
            ),
            &["pool", "source", "endpoint", "code"],
        )
        .expect("valid metric definition");
        let poll_errors = IntCounterVec::new(
            Opts::new(
                exporter::POLL_ERRORS,
                "Failed polls by kind (auth, not_found, http, rate_limited, timeout, transport, decode, panic).",
            ),
            &["pool", "source", "kind"],
        )
        .expect("valid metric definition");
        let endpoint_enabled = IntGaugeVec::new(
            Opts::new(
                exporter::ENDPOINT_ENABLED,
                "1 if the optional endpoint is polled, 0 while it is switched off because the pool never served it (HTTP 404); asked again every hour.",
            ),
            &["pool", "source", "endpoint"],
        )
        .expect("valid metric definition");
        let workers_omitted = IntGaugeVec::new(
            Opts::new(
                exporter::WORKERS_OMITTED,
                "Workers beyond the source's max_workers at its last good poll: no series of their own, counted only in the account totals.",
            ),
            &["pool", "source"],
        )
        .expect("valid metric definition");
        let items_skipped = IntCounterVec::new(
            Opts::new(
                exporter::ITEMS_SKIPPED,
                "Items of otherwise good answers left out of the page, by reason (unreadable: an item none of whose readings fits, such as a worker whose hashrate is an object; unnamed: a worker with neither name nor id); the rest of the poll is kept.",
            ),
            &["pool", "source", "reason"],
        )
        .expect("valid metric definition");
        let labels_truncated = IntCounterVec::new(
            Opts::new(
                exporter::LABELS_TRUNCATED,
                "Label values from the pool cut to the length cap (their end replaced by a marker), summed over polls.",
            ),
            &["pool", "source"],
        )
        .expect("valid metric definition");
        let interval_planned = GaugeVec::new(
            Opts::new(
                exporter::POLL_INTERVAL_PLANNED,
                "Seconds the poll plan puts between this source's polls: the asked interval, stretched to fit its budgets (for a cron source, the mean time between firings).",
            ),
            &["pool", "source"],
        )
        .expect("valid metric definition");
        let interval_achieved = GaugeVec::new(
            Opts::new(
                exporter::POLL_INTERVAL_ACHIEVED,
                "Mean seconds between the starts of this source's last polls (up to 8 intervals).",
            ),
            &["pool", "source"],
        )
        .expect("valid metric definition");
        let poll_cost = IntGaugeVec::new(
            Opts::new(
                exporter::POLL_COST,
                "Requests one poll of this source costs as the plan counts it: learned from its last polls, failed ones too (pages included, retries not), or the least its kind can cost before it has polled.",
            ),
            &["pool", "source"],
        )
        .expect("valid metric definition");
        let budget_planned_use = GaugeVec::new(
            Opts::new(
                exporter::BUDGET_PLANNED_USE,
                "Share of the budget's tightest window the poll plan uses (the plan aims at the budget's target_utilization).",
            ),
            &["budget"],
        )
        .expect("valid metric definition");
        let reload_successful = IntGauge::new(
            exporter::CONFIG_LAST_RELOAD_SUCCESSFUL,
            "1 if the last configuration reload succeeded (or none was asked since start), 0 if it was refused.",
        )
        .expect("valid metric definition");
        let reload_success_time = Gauge::new(
            exporter::CONFIG_LAST_RELOAD_SUCCESS_TIME,
            "Unix time of the last successful configuration load: the start, or the last reload that took.",
        )
        .expect("valid metric definition");
        for collector in [
            Box::new(build_info) as Box<dyn prometheus::core::Collector>,
            Box::new(upstream_requests.clone()),
            Box::new(poll_errors.clone()),
            Box::new(endpoint_enabled.clone()),
            Box::new(workers_omitted.clone()),
            Box::new(items_skipped.clone()),
            Box::new(labels_truncated.clone()),
            Box::new(interval_planned.clone()),
            Box::new(interval_achieved.clone()),
            Box::new(poll_cost.clone()),
            Box::new(budget_planned_use.clone()),
            Box::new(reload_successful.clone()),
            Box::new(reload_success_time.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric registered once");
        }
        Telemetry {
            registry,
            upstream_requests,
            poll_errors,
            endpoint_enabled,
            workers_omitted,
            items_skipped,
            labels_truncated,
            interval_planned,
            interval_achieved,
            poll_cost,
            budget_planned_use,
            reload_successful,
            reload_success_time,
        }
    }

    /// Shows `plan`: each source's planned interval and cost, each budget's planned use.
    /// `pools` gives each source's pool label, by source name.
    pub fn show_plan(&self, plan: &Plan, pool_of: impl Fn(&str) -> Option<&'static str>) {
        self.interval_planned.reset();
        self.poll_cost.reset();
        self.budget_planned_use.reset();
        for s in &plan.sources {
            let Some(pool) = pool_of(&s.name) else {
                continue;
            };
            self.interval_planned
                .with_label_values(&[pool, &s.name])
                .set(s.interval.as_secs_f64());
            self.poll_cost
                .with_label_values(&[pool, &s.name])
                .set(i64::from(s.cost));
        }
        for b in &plan.budgets {
            self.budget_planned_use
                .with_label_values(&[&b.name])
                .set(b.use_ratio());
        }
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
