//! The metric contract in code: every family the exporter can emit, its type, HELP and labels.
//! Sources name these definitions instead of spelling metric names, so a typo cannot compile.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    Counter,
}

#[derive(Debug, PartialEq)]
pub struct MetricDef {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    /// Labels after `pool` and `source`, which the store adds to every pool series.
    pub labels: &'static [&'static str],
}

macro_rules! pool_metric {
    ($id:ident, $name:literal, $kind:ident, [$($label:literal),*], $help:literal) => {
        pub static $id: MetricDef = MetricDef {
            name: $name,
            help: concat!($help, " Cached from the pool's API at the last successful poll."),
            kind: MetricKind::$kind,
            labels: &[$($label),*],
        };
    };
}

pool_metric!(
    WORKER_HASHRATE,
    "mining_worker_hashrate_hashes_per_second",
    Gauge,
    ["account", "worker", "algorithm"],
    "Freshest hashrate the pool reports for the worker, in hashes per second of its `algorithm`."
);
pool_metric!(
    WORKER_HASHRATE_AVERAGE,
    "mining_worker_hashrate_average_hashes_per_second",
    Gauge,
    ["account", "worker", "algorithm", "window"],
    "Worker hashrate averaged by the pool over `window`, in hashes per second."
);
pool_metric!(
    WORKER_UP,
    "mining_worker_up",
    Gauge,
    ["account", "worker"],
    "1 if the pool counts the worker as active/online, else 0."
);
pool_metric!(
    WORKER_LAST_SHARE,
    "mining_worker_last_share_timestamp_seconds",
    Gauge,
    ["account", "worker"],
    "Unix time of the worker's last share."
);
pool_metric!(
    WORKER_EFFICIENCY,
    "mining_worker_efficiency_ratio",
    Gauge,
    ["account", "worker"],
    "Share efficiency of the worker, 0 to 1."
);
pool_metric!(
    WORKER_REJECTED,
    "mining_worker_rejected_ratio",
    Gauge,
    ["account", "worker"],
    "Rejected shares as a fraction of all shares, 0 to 1."
);
pool_metric!(
    WORKER_STALE,
    "mining_worker_stale_ratio",
    Gauge,
    ["account", "worker"],
    "Stale shares as a fraction of all shares, 0 to 1."
);
pool_metric!(
    WORKERS,
    "mining_workers",
    Gauge,
    ["account", "state"],
    "Number of workers the pool lists, by state (active, inactive)."
);
pool_metric!(
    ACCOUNT_HASHRATE,
    "mining_account_hashrate_hashes_per_second",
    Gauge,
    ["account", "algorithm"],
    "Freshest hashrate of the account's workers of one `algorithm`, in hashes per second; never summed across algorithms."
);
pool_metric!(
    ACCOUNT_HASHRATE_AVERAGE,
    "mining_account_hashrate_average_hashes_per_second",
    Gauge,
    ["account", "algorithm", "window"],
    "Account hashrate of one `algorithm` averaged by the pool over `window`, in hashes per second."
);
pool_metric!(
    ACCOUNT_HASHRATE_PEAK,
    "mining_account_hashrate_peak_hashes_per_second",
    Gauge,
    ["account", "algorithm", "window"],
    "Highest account hashrate of one `algorithm` the pool saw over `window`, in hashes per second."
);
pool_metric!(
    ACCOUNT_BALANCE,
    "mining_account_balance",
    Gauge,
    ["account", "currency"],
    "Unpaid balance of the account, in coins."
);
pool_metric!(
    ACCOUNT_REWARDS,
    "mining_account_rewards",
    Gauge,
    ["account", "currency", "window"],
    "Rewards credited over `window`, in coins."
);
pool_metric!(
    ACCOUNT_PAID_TOTAL,
    "mining_account_paid_total",
    Counter,
    ["account", "currency"],
    "Cumulative payouts of the account, in coins."
);
pool_metric!(
    ACCOUNT_UPTIME,
    "mining_account_uptime_ratio",
    Gauge,
    ["account"],
    "Uptime of the account as the pool measures it, 0 to 1."
);
pool_metric!(
    ACCOUNT_EFFICIENCY,
    "mining_account_efficiency_ratio",
    Gauge,
    ["account"],
    "Share efficiency of the account, 0 to 1."
);
pool_metric!(
    ACCOUNT_INFO,
    "mining_account_info",
    Gauge,
    ["account", "workspace"],
    "Always 1; names the workspace the account belongs to."
);

pool_metric!(
    HASHPRICE,
    "mining_hashprice",
    Gauge,
    ["currency"],
    "Real-time hashprice the pool reports: expected mining revenue per unit of hashrate, in coins of `currency` per PH/s per day (Luxor does not state the unit; this is the one its values fit)."
);

/// Every pool family, for whoever must know the whole contract (the dashboard checks).
pub static POOL_FAMILIES: &[&MetricDef] = &[
    &WORKER_HASHRATE,
    &WORKER_HASHRATE_AVERAGE,
    &WORKER_UP,
    &WORKER_LAST_SHARE,
    &WORKER_EFFICIENCY,
    &WORKER_REJECTED,
    &WORKER_STALE,
    &WORKERS,
    &ACCOUNT_HASHRATE,
    &ACCOUNT_HASHRATE_AVERAGE,
    &ACCOUNT_HASHRATE_PEAK,
    &ACCOUNT_BALANCE,
    &ACCOUNT_REWARDS,
    &ACCOUNT_PAID_TOTAL,
    &ACCOUNT_UPTIME,
    &ACCOUNT_EFFICIENCY,
    &ACCOUNT_INFO,
    &HASHPRICE,
];

/// Self-metric names, in one place so the renderer and the tests agree.
pub mod exporter {
    pub const BUILD_INFO: &str = "mining_exporter_build_info";
    pub const SOURCE_UP: &str = "mining_exporter_source_up";
    pub const SOURCE_LAST_SUCCESS: &str = "mining_exporter_source_last_success_timestamp_seconds";
    pub const SOURCE_POLL_DURATION: &str = "mining_exporter_source_poll_duration_seconds";
    pub const SOURCE_SERIES: &str = "mining_exporter_source_series";
    pub const UPSTREAM_REQUESTS: &str = "mining_exporter_upstream_requests_total";
    pub const POLL_ERRORS: &str = "mining_exporter_poll_errors_total";
    pub const BUDGET_REMAINING: &str = "mining_exporter_budget_remaining";
    pub const BUDGET_WAIT: &str = "mining_exporter_budget_wait_seconds_total";
    pub const RATE_LIMITED: &str = "mining_exporter_rate_limited_total";
    pub const ENDPOINT_ENABLED: &str = "mining_exporter_endpoint_enabled";
    pub const WORKERS_OMITTED: &str = "mining_exporter_workers_omitted";
    pub const ITEMS_SKIPPED: &str = "mining_exporter_items_skipped_total";
    pub const LABELS_TRUNCATED: &str = "mining_exporter_labels_truncated_total";
    pub const CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "mining_exporter_config_last_reload_successful";
    pub const CONFIG_LAST_RELOAD_SUCCESS_TIME: &str =
        "mining_exporter_config_last_reload_success_timestamp_seconds";
    pub const POLL_INTERVAL_PLANNED: &str = "mining_exporter_poll_interval_planned_seconds";
    pub const POLL_INTERVAL_ACHIEVED: &str = "mining_exporter_poll_interval_achieved_seconds";
    pub const POLL_COST: &str = "mining_exporter_poll_cost_requests";
    pub const BUDGET_PLANNED_USE: &str = "mining_exporter_budget_planned_use_ratio";

    /// Every self-metric family.
    pub const ALL: &[&str] = &[
        BUILD_INFO,
        SOURCE_UP,
        SOURCE_LAST_SUCCESS,
        SOURCE_POLL_DURATION,
        SOURCE_SERIES,
        UPSTREAM_REQUESTS,
        POLL_ERRORS,
        BUDGET_REMAINING,
        BUDGET_WAIT,
        RATE_LIMITED,
        ENDPOINT_ENABLED,
        WORKERS_OMITTED,
        ITEMS_SKIPPED,
        LABELS_TRUNCATED,
        CONFIG_LAST_RELOAD_SUCCESSFUL,
        CONFIG_LAST_RELOAD_SUCCESS_TIME,
        POLL_INTERVAL_PLANNED,
        POLL_INTERVAL_ACHIEVED,
        POLL_COST,
        BUDGET_PLANNED_USE,
    ];
}

/// The contract family named `name`, if there is one.
pub fn pool_family(name: &str) -> Option<&'static MetricDef> {
    POOL_FAMILIES.iter().copied().find(|def| def.name == name)
}

/// A family a generic source's config defines, kept for the life of the process like the
/// contract's. Checked at load (`sources::http_json::config`); the same definition asked for
/// again, as on every reload, is the one already kept.
pub fn defined_family(
    name: &str,
    help: &str,
    kind: MetricKind,
    labels: &[String],
) -> &'static MetricDef {
    use std::sync::Mutex;
    static DEFINED: Mutex<Vec<&'static MetricDef>> = Mutex::new(Vec::new());
    let mut defined = DEFINED.lock().unwrap_or_else(|e| e.into_inner());
    let same = |def: &&&'static MetricDef| {
        def.name == name
            && def.help == help
            && def.kind == kind
            && def
                .labels
                .iter()
                .copied()
                .eq(labels.iter().map(String::as_str))
    };
    if let Some(def) = defined.iter().find(same) {
        return def;
    }
    let labels: Vec<&'static str> = labels.iter().map(|l| crate::interned::intern(l)).collect();
    let def: &'static MetricDef = Box::leak(Box::new(MetricDef {
        name: crate::interned::intern(name),
        help: crate::interned::intern(help),
        kind,
        labels: Box::leak(labels.into_boxed_slice()),
    }));
    defined.push(def);
    def
}
