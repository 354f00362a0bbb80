//! The exporter's own counters, kept in a prometheus Registry. Per-source state and budgets
//! are read at render time instead (see exposition.rs), because they are snapshots, not events.

use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

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
            reload_successful,
            reload_success_time,
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
