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
    /// A pool family's labels after `pool` and `source`, which the store adds to every pool
    /// series; every label of one of the exporter's own (`exporter::ALL`).
    pub labels: &'static [&'static str],
}

/// One definition of the contract.
macro_rules! metric {
    ($id:ident, $name:literal, $kind:ident, [$($label:literal),*], $help:expr) => {
        pub static $id: MetricDef = MetricDef {
            name: $name,
            help: $help,
            kind: MetricKind::$kind,
            labels: &[$($label),*],
        };
    };
}

/// A pool family: its HELP says where its values come from.
macro_rules! pool_metric {
    ($id:ident, $name:literal, $kind:ident, [$($label:literal),*], $help:literal) => {
        metric!(
            $id,
            $name,
            $kind,
            [$($label),*],
            concat!($help, " Cached from the pool's API at the last successful poll.")
        );
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

pool_metric!(
    ACCOUNT_POWER,
    "mining_account_power_watts",
    Gauge,
    ["account"],
    "Electrical power the account's machines draw, in watts (a PDU's or a site meter's API, through an http_json block); the revenue rules divide it by the account's hashrate for J/TH."
);
pool_metric!(
    WORKER_POWER,
    "mining_worker_power_watts",
    Gauge,
    ["account", "worker"],
    "Electrical power one worker draws, in watts (the miner's own API or its PDU outlet, through an http_json block); summed per account where no account figure is given."
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
    &ACCOUNT_POWER,
    &WORKER_POWER,
];

/// The process collector's families (the prometheus crate's, Linux only), on the page beside
/// the exporter's own: named here so the contract lists every family the page can carry.
/// Their HELP and type are the crate's, as in every Prometheus client.
pub static PROCESS_FAMILIES: &[&str] = &[
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_virtual_memory_bytes",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_threads",
];

/// The values of the `kind` label on `mining_exporter_poll_errors_total`, listed once: the
/// enum `PollError::kind` answers with, the list the counters start from, and the HELP.
macro_rules! poll_error_kinds {
    ($first:ident = $first_label:literal $(, $variant:ident = $label:literal)* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum PollErrorKind {
            $first,
            $($variant),*
        }

        impl PollErrorKind {
            pub const ALL: &[PollErrorKind] = &[PollErrorKind::$first, $(PollErrorKind::$variant),*];

            pub fn label(self) -> &'static str {
                match self {
                    PollErrorKind::$first => $first_label,
                    $(PollErrorKind::$variant => $label),*
                }
            }
        }

        /// Every value `PollErrorKind::label` can return.
        pub const POLL_ERROR_KINDS: &[&str] = &[$first_label, $($label),*];

        const POLL_ERRORS_HELP: &str =
            concat!("Failed polls by kind (", $first_label, $(", ", $label,)* ").");
    };
}

poll_error_kinds!(
    Auth = "auth",
    NotFound = "not_found",
    Http = "http",
    RateLimited = "rate_limited",
    Timeout = "timeout",
    Transport = "transport",
    Decode = "decode",
    ClockSkew = "clock_skew",
    Panic = "panic",
);

/// The exporter's own families. Their `labels` are every label they carry: the store adds
/// none to these.
pub mod exporter {
    use super::{MetricDef, MetricKind};

    metric!(
        BUILD_INFO,
        "mining_exporter_build_info",
        Gauge,
        ["version", "revision", "rustversion"],
        "Always 1; the labels name the running mining-exporter's version, git revision and Rust compiler."
    );
    metric!(
        SOURCE_UP,
        "mining_exporter_source_up",
        Gauge,
        ["pool", "source"],
        "1 if the last poll of the source succeeded, else 0 (its last good values stay exported)."
    );
    metric!(
        SOURCE_LAST_SUCCESS,
        "mining_exporter_source_last_success_timestamp_seconds",
        Gauge,
        ["pool", "source"],
        "Unix time at the end of the last successful poll, 0 until the first one; alert on its age to tell stale data from zero."
    );
    metric!(
        SOURCE_POLL_DURATION,
        "mining_exporter_source_poll_duration_seconds",
        Gauge,
        ["pool", "source"],
        "Duration of the last poll in seconds, budget waits and retries included."
    );
    metric!(
        SOURCE_SERIES,
        "mining_exporter_source_series",
        Gauge,
        ["pool", "source"],
        "Series the source contributes to this page."
    );
    metric!(
        UPSTREAM_REQUESTS,
        "mining_exporter_upstream_requests_total",
        Counter,
        ["pool", "source", "endpoint", "code"],
        "Requests sent to pool APIs; code is the HTTP status, or timeout, transport or decode."
    );
    metric!(
        POLL_ERRORS,
        "mining_exporter_poll_errors_total",
        Counter,
        ["pool", "source", "kind"],
        super::POLL_ERRORS_HELP
    );
    metric!(
        BUDGET_REMAINING,
        "mining_exporter_budget_remaining",
        Gauge,
        ["budget"],
        "Requests the budget allows in its tightest window, the pool's rate-limit headers included, as of the last request sent through it (or the start, or the last reload). Started without a state directory, it counts the requests a last run is assumed to have sent at the planned pace, so it reads low until they age out."
    );
    metric!(
        BUDGET_WAIT,
        "mining_exporter_budget_wait_seconds_total",
        Counter,
        ["budget"],
        "Seconds requests spent waiting for the budget."
    );
    metric!(
        RATE_LIMITED,
        "mining_exporter_rate_limited_total",
        Counter,
        ["budget"],
        "HTTP 429 answers the pools gave requests of this budget; should stay 0."
    );
    metric!(
        ENDPOINT_ENABLED,
        "mining_exporter_endpoint_enabled",
        Gauge,
        ["pool", "source", "endpoint"],
        "1 if the optional endpoint is polled, 0 while it is switched off because the pool never served it (HTTP 404); asked again every hour."
    );
    metric!(
        WORKERS_OMITTED,
        "mining_exporter_workers_omitted",
        Gauge,
        ["pool", "source"],
        "Workers beyond the source's max_workers at its last good poll: no series of their own, counted only in the account totals."
    );
    metric!(
        ITEMS_SKIPPED,
        "mining_exporter_items_skipped_total",
        Counter,
        ["pool", "source", "reason"],
        "Items of otherwise good answers left out of the page, by reason (unreadable: an item none of whose readings fits, such as a worker whose hashrate is an object; unnamed: a worker with neither name nor id; duplicate: a worker or label set the answer gave before, whose first entry is kept); the rest of the poll is kept."
    );
    metric!(
        LABELS_TRUNCATED,
        "mining_exporter_labels_truncated_total",
        Counter,
        ["pool", "source"],
        "Label values from the pool cut to the length cap (their end replaced by a marker), summed over polls."
    );
    metric!(
        CONFIG_LAST_RELOAD_SUCCESSFUL,
        "mining_exporter_config_last_reload_successful",
        Gauge,
        [],
        "1 if the last configuration reload succeeded (or none was asked since start), 0 if it was refused."
    );
    metric!(
        CONFIG_LAST_RELOAD_SUCCESS_TIME,
        "mining_exporter_config_last_reload_success_timestamp_seconds",
        Gauge,
        [],
        "Unix time of the last successful configuration load: the start, or the last reload that took."
    );
    metric!(
        POLL_INTERVAL_PLANNED,
        "mining_exporter_poll_interval_planned_seconds",
        Gauge,
        ["pool", "source"],
        "Seconds the poll plan puts between this source's polls: the asked interval, stretched to fit its budgets (for a cron source, the mean time between firings)."
    );
    metric!(
        POLL_INTERVAL_ACHIEVED,
        "mining_exporter_poll_interval_achieved_seconds",
        Gauge,
        ["pool", "source"],
        "Mean seconds between the starts of this source's last polls (up to 8 intervals)."
    );
    metric!(
        POLL_COST,
        "mining_exporter_poll_cost_requests",
        Gauge,
        ["pool", "source"],
        "Requests one poll of this source costs as the plan counts it: learned from its last polls, failed ones too (pages included, retries not), or the least its kind can cost before it has polled."
    );
    metric!(
        BUDGET_PLANNED_USE,
        "mining_exporter_budget_planned_use_ratio",
        Gauge,
        ["budget"],
        "Share of the budget's tightest window the poll plan uses (the plan aims at the budget's target_utilization)."
    );

    /// Every self-metric family.
    pub static ALL: &[&MetricDef] = &[
        &BUILD_INFO,
        &SOURCE_UP,
        &SOURCE_LAST_SUCCESS,
        &SOURCE_POLL_DURATION,
        &SOURCE_SERIES,
        &UPSTREAM_REQUESTS,
        &POLL_ERRORS,
        &BUDGET_REMAINING,
        &BUDGET_WAIT,
        &RATE_LIMITED,
        &ENDPOINT_ENABLED,
        &WORKERS_OMITTED,
        &ITEMS_SKIPPED,
        &LABELS_TRUNCATED,
        &CONFIG_LAST_RELOAD_SUCCESSFUL,
        &CONFIG_LAST_RELOAD_SUCCESS_TIME,
        &POLL_INTERVAL_PLANNED,
        &POLL_INTERVAL_ACHIEVED,
        &POLL_COST,
        &BUDGET_PLANNED_USE,
    ];
}

/// The prefix of the exporter's own families; no config may define one.
pub const EXPORTER_PREFIX: &str = "mining_exporter_";

/// How to name a family the rules accept.
pub const NAME_FIX: &str = "name it mining_<what>[_<unit>][_total] in lower case, e.g. mining_payout_balance; or use a family of the contract (docs/metrics.md)";

/// Units a new family's name may end with: Prometheus's base units, and hashrate.
pub const BASE_UNITS: &[&str] = &[
    "seconds",
    "bytes",
    "ratio",
    "hashes_per_second",
    "joules",
    "watts",
    "celsius",
    "volts",
    "amperes",
    "hertz",
];
/// Suffixes of units that are not base units, and what to use instead.
pub const SCALED_UNITS: &[(&str, &str)] = &[
    ("_milliseconds", "seconds"),
    ("_microseconds", "seconds"),
    ("_minutes", "seconds"),
    ("_hours", "seconds"),
    ("_days", "seconds"),
    ("_kilobytes", "bytes"),
    ("_megabytes", "bytes"),
    ("_gigabytes", "bytes"),
    ("_percent", "ratio"),
    ("_kilohashes_per_second", "hashes_per_second"),
    ("_megahashes_per_second", "hashes_per_second"),
    ("_gigahashes_per_second", "hashes_per_second"),
    ("_terahashes_per_second", "hashes_per_second"),
    ("_petahashes_per_second", "hashes_per_second"),
    ("_kilowatts", "watts"),
];

/// The naming rules every family follows, the contract's as well as those a config defines:
/// `mining_`, lower-case letters, digits and '_', up to 100 characters.
pub fn valid_family_name(name: &str) -> bool {
    name.starts_with("mining_")
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// What a family's definition breaks of the naming rules: the key it is about, the
/// problem and the fix.
#[derive(Debug, PartialEq, Eq)]
pub struct NamingProblem {
    pub key: &'static str,
    pub problem: String,
    pub fix: String,
}

/// The naming rules past the name's characters: a counter ends in `_total` and only a
/// counter does; a unit is a base unit, and the name (before `_total`) ends with it.
pub fn check_family_name(
    name: &str,
    kind: MetricKind,
    unit: Option<&str>,
) -> Result<(), NamingProblem> {
    let problem = |key, problem: String, fix: String| Err(NamingProblem { key, problem, fix });
    match (kind, name.ends_with("_total")) {
        (MetricKind::Counter, false) => {
            return problem(
                "name",
                format!("{name} is a counter, and a counter's name ends in _total"),
                format!("rename it {name}_total"),
            );
        }
        (MetricKind::Gauge, true) => {
            return problem(
                "name",
                format!("{name} is a gauge, and _total is for counters"),
                "drop _total, or make it type = \"counter\"".to_string(),
            );
        }
        _ => {}
    }
    let stem = name.strip_suffix("_total").unwrap_or(name);
    if let Some((suffix, base)) = SCALED_UNITS.iter().find(|(s, _)| stem.ends_with(s)) {
        return problem(
            "name",
            format!(
                "{name} is in {}, not a base unit",
                suffix.trim_start_matches('_')
            ),
            format!("name it in {base} and convert with `scale`"),
        );
    }
    if let Some(unit) = unit {
        if !BASE_UNITS.contains(&unit) {
            return problem(
                "unit",
                format!("{unit:?} is not a base unit"),
                format!(
                    "use one of {} (convert with `scale`), or no unit",
                    BASE_UNITS.join(", ")
                ),
            );
        }
        if !stem.ends_with(&format!("_{unit}")) {
            return problem(
                "name",
                format!("{name} does not end with its unit, _{unit}"),
                format!(
                    "rename it to end in _{unit}{}",
                    if kind == MetricKind::Counter {
                        "_total"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
    Ok(())
}

/// A label name: letters, digits and '_', not first a digit, not starting `__`.
pub fn valid_label_name(label: &str) -> bool {
    let valid = label
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
    !label.is_empty() && valid && !label.starts_with("__")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_family_follows_the_naming_rules() {
        for def in POOL_FAMILIES.iter().chain(exporter::ALL) {
            assert!(valid_family_name(def.name), "{}", def.name);
            assert_eq!(check_family_name(def.name, def.kind, None), Ok(()));
            for label in def.labels {
                assert!(valid_label_name(label), "{}: {label}", def.name);
            }
            assert!(
                !def.help.trim().is_empty() && !def.help.chars().any(char::is_control),
                "{}: one line of help",
                def.name
            );
        }
        for def in POOL_FAMILIES {
            assert!(!def.name.starts_with(EXPORTER_PREFIX), "{}", def.name);
            for reserved in ["pool", "source"] {
                assert!(
                    !def.labels.contains(&reserved),
                    "{}: the store adds {reserved}",
                    def.name
                );
            }
        }
        for def in exporter::ALL {
            assert!(def.name.starts_with(EXPORTER_PREFIX), "{}", def.name);
        }
    }

    #[test]
    fn the_rules_refuse_what_they_say() {
        assert!(!valid_family_name("Mining_x"));
        assert!(!valid_family_name("other_x"));
        assert_eq!(
            check_family_name("mining_paid", MetricKind::Counter, None).map_err(|p| p.key),
            Err("name")
        );
        assert_eq!(
            check_family_name("mining_uptime_hours", MetricKind::Gauge, None).map_err(|p| p.key),
            Err("name")
        );
        assert_eq!(
            check_family_name("mining_power_watts", MetricKind::Gauge, Some("kilowatts"))
                .map_err(|p| p.key),
            Err("unit")
        );
        assert!(!valid_label_name("__name"));
        assert!(!valid_label_name("1st"));
    }

    #[test]
    fn the_poll_error_kinds_are_listed_once_and_the_help_names_them_all() {
        let labels: Vec<&str> = PollErrorKind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels, POLL_ERROR_KINDS);
        assert!(labels.contains(&"clock_skew"));
        for kind in POLL_ERROR_KINDS {
            assert!(
                exporter::POLL_ERRORS.help.contains(kind),
                "the HELP lacks {kind}: {}",
                exporter::POLL_ERRORS.help
            );
        }
    }
}
