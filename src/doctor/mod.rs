//! `mining-exporter doctor`: one poll of each selected source, made the careful way (no
//! retries, inside its budget, on the running exporter's budget state when given its state
//! directory), with every request written down and read back as findings a person can act
//! on: the pool not reached (DNS, TLS, timeout), the key refused, a scope missing, the pool's
//! own limit tighter than the budget, a signed API's clock apart from ours.
//!
//! - `mod.rs` (here): running the polls and gathering what they showed.
//! - `findings.rs`: what the requests of one endpoint say, as findings.
//! - `report.rs`: the report as text.
//! - `single_poll.rs`: `mining-exporter poll`, one poll of one source shown as it went.

mod findings;
mod report;
mod single_poll;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::client::{RateSeen, RequestRecord};
use crate::config::{Config, RateWindow, Trigger};
use crate::error::StartError;
use crate::exporter::{BudgetsAtStart, Exporter, ExporterOptions};
use crate::metrics::WORKER_UP;
use crate::scheduler::Outcome;
pub use findings::{Finding, Level};
pub use single_poll::{SinglePoll, poll_one};

/// What `doctor` is asked to do besides its config.
#[derive(Debug, Default, Clone)]
pub struct DoctorOptions {
    /// Only these sources; empty: every source.
    pub sources: Vec<String>,
    /// The running exporter's `--state-dir`: the doctor spends from the same windows.
    pub state_dir: Option<PathBuf>,
}

/// Everything the doctor found, per source in config order.
#[derive(Debug, Serialize)]
pub struct Report {
    /// True when every selected source can poll.
    pub can_poll: bool,
    /// Whether the budgets were the running exporter's (`--state-dir`) or assumed.
    pub budgets_from_state_dir: bool,
    pub sources: Vec<SourceReport>,
}

#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub name: String,
    pub pool: &'static str,
    pub base_url: String,
    /// Where the token comes from (`env UP_API_KEY`, `file ...`): never the token.
    pub token_origin: String,
    pub can_poll: bool,
    /// The poll's error, when it failed: its `kind` label and message.
    pub error_kind: Option<&'static str>,
    pub error: Option<String>,
    pub endpoints: Vec<EndpointReport>,
    /// Workers in the answer (`mining_worker_up` series), when the poll succeeded.
    pub workers: Option<usize>,
    pub series: Option<usize>,
    /// Requests this poll made; what the plan now counts per poll.
    pub requests_per_poll: u32,
    pub interval_seconds: f64,
    /// `requests_per_poll` at the planned interval.
    pub requests_per_hour: f64,
    pub budget: BudgetReport,
    /// A signed source's clock difference (ours minus the API's `Date`), in seconds.
    pub clock_skew_seconds: Option<i64>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct BudgetReport {
    pub name: String,
    /// As `check` writes them: `60/1m`.
    pub limits: Vec<String>,
    /// Requests it allows now, the pool's headers included.
    pub remaining_after: u64,
}

#[derive(Debug, Serialize)]
pub struct EndpointReport {
    pub endpoint: &'static str,
    /// Requests made to it (pages, each page one).
    pub requests: usize,
    /// Whether any of them got an HTTP answer.
    pub reached: bool,
    /// The last request's statuses, in order.
    pub statuses: Vec<u16>,
    /// `accepted`, `refused` (401, or a 403 that is not a scope), `missing_scope`, or
    /// `unknown` (no answer).
    pub auth: &'static str,
    /// The last rate-limit headers the pool sent on this endpoint.
    pub rate: RateSeen,
}

/// Runs the doctor over `config`. Fails only where the exporter itself could not be built
/// (the state directory unusable); a source that cannot poll is a finding.
pub async fn run(config: Config, options: &DoctorOptions) -> Result<Report, StartError> {
    let config = careful(config, &options.sources)?;
    let mut exporter = Exporter::with_options(
        config,
        ExporterOptions {
            state_role: crate::state_file::Role::Doctor,
            budgets_at_start: BudgetsAtStart::kept_in(options.state_dir.clone()),
            ..ExporterOptions::default()
        },
    )?;
    let names: Vec<String> = exporter
        .config()
        .sources
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let mut polled = Vec::new();
    // One source at a time: two sources on one token would otherwise meet in its window.
    for name in names {
        let Some(log) = exporter.record_requests(&name) else {
            continue;
        };
        let outcome = exporter.poll_once(&name).await;
        let (records, _dropped) = log.take();
        polled.push((name, outcome, records));
    }
    exporter.keep_state().await;
    let mut learned = BTreeMap::new();
    for (name, _, records) in &polled {
        learned.insert(name.clone(), count(records.len()));
    }
    let plan = crate::plan::plan(exporter.config(), &learned);
    let statuses = exporter.store().statuses();
    let mut sources = Vec::new();
    for (name, outcome, records) in polled {
        let Some(source) = exporter.config().sources.iter().find(|s| s.name == name) else {
            continue;
        };
        let status = statuses.iter().find(|s| s.source == name);
        let succeeded = matches!(outcome, Some(Outcome::Success { .. }));
        let (error_kind, error) = match status.and_then(|s| s.last_error.clone()) {
            Some(e) if !succeeded => (Some(e.kind), Some(e.message)),
            _ => (None, None),
        };
        let budget = exporter.budget(&source.budget);
        let windows: Vec<RateWindow> = budget.map(|b| b.windows().to_vec()).unwrap_or_default();
        let interval = plan
            .source(&name)
            .map(|p| p.interval)
            .unwrap_or_default()
            .as_secs_f64();
        let requests_per_poll = count(records.len());
        let max_skew = source
            .settings
            .auth()
            .signing
            .map(|signing| signing.max_clock_skew);
        let clock_skew_seconds =
            max_skew.and_then(|_| records.iter().rev().find_map(|r| r.clock_skew_seconds));
        let endpoints = endpoints(&records);
        let mut findings = Vec::new();
        for endpoint in &endpoints {
            let of_it: Vec<&RequestRecord> = records
                .iter()
                .filter(|r| r.endpoint == endpoint.endpoint)
                .collect();
            findings.extend(findings::of_endpoint(
                source.pool(),
                &of_it,
                &source.base_url,
            ));
        }
        findings.extend(findings::of_rate(&records, &source.budget, &windows));
        if let (Some(max), Some(skew)) = (max_skew, clock_skew_seconds) {
            findings.extend(findings::of_clock(skew, max));
        }
        // The poll's own error, unless a finding above already named what to fix.
        if !succeeded && !findings.iter().any(|f| f.level == Level::Error) {
            findings.push(findings::poll_failed(error.as_deref(), records.is_empty()));
        }
        if let Trigger::Every(asked) = &source.trigger {
            if interval > asked.as_secs_f64() + 0.5 {
                findings.push(Finding::info(format!(
                    "the plan polls every {} where {} was asked: the budget allows no more at {} requests a poll",
                    show_seconds(interval),
                    show_seconds(asked.as_secs_f64()),
                    requests_per_poll
                )));
            }
        }
        let snapshot = status.filter(|_| succeeded).map(|s| s.snapshot.clone());
        sources.push(SourceReport {
            name: name.clone(),
            pool: source.pool(),
            base_url: source.base_url.clone(),
            token_origin: source.token_origin.clone(),
            can_poll: succeeded,
            error_kind,
            error,
            workers: snapshot
                .as_ref()
                .map(|s| s.samples(&WORKER_UP).map_or(0, |w| w.len())),
            series: snapshot.as_ref().map(|s| s.series_count()),
            requests_per_poll,
            interval_seconds: interval,
            requests_per_hour: if interval > 0.0 {
                f64::from(requests_per_poll) * 3600.0 / interval
            } else {
                0.0
            },
            budget: BudgetReport {
                name: source.budget.clone(),
                limits: windows.iter().map(show_window).collect(),
                remaining_after: budget.map_or(0, |b| b.remaining()),
            },
            clock_skew_seconds,
            endpoints,
            findings,
        });
    }
    Ok(Report {
        can_poll: sources.iter().all(|s| s.can_poll),
        budgets_from_state_dir: options.state_dir.is_some(),
        sources,
    })
}

/// The config as the doctor polls it: the selected sources only, each without retries (a
/// retry into a pool's limit is what the doctor must never cost).
fn careful(config: Config, selected: &[String]) -> Result<Config, StartError> {
    let mut config = only(config, selected)?;
    for source in &mut config.sources {
        source.http.max_retries = 0;
    }
    Ok(config)
}

/// `config` with the named sources alone (all of them when none is named); a name no source
/// has is refused as `--source`, with the names there are.
pub fn only(mut config: Config, selected: &[String]) -> Result<Config, StartError> {
    for name in selected {
        if !config.sources.iter().any(|s| &s.name == name) {
            let known: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
            return Err(crate::error::ConfigError::new(
                &config.file,
                "--source",
                format!("no source is named {name:?}"),
                format!("use one of {}", known.join(", ")),
            )
            .into());
        }
    }
    if !selected.is_empty() {
        config.sources.retain(|s| selected.contains(&s.name));
    }
    Ok(config)
}

/// Each endpoint the requests went to, in the order first asked.
fn endpoints(records: &[RequestRecord]) -> Vec<EndpointReport> {
    let mut out: Vec<EndpointReport> = Vec::new();
    for record in records {
        let i = match out.iter().position(|e| e.endpoint == record.endpoint) {
            Some(i) => i,
            None => {
                out.push(EndpointReport {
                    endpoint: record.endpoint,
                    requests: 0,
                    reached: false,
                    statuses: Vec::new(),
                    auth: "unknown",
                    rate: RateSeen::default(),
                });
                out.len() - 1
            }
        };
        let Some(endpoint) = out.get_mut(i) else {
            continue;
        };
        endpoint.requests += 1;
        if let Some(status) = record.status {
            endpoint.reached = true;
            if endpoint.statuses.len() < findings::MAX_STATUSES_SHOWN {
                endpoint.statuses.push(status);
            }
            endpoint.auth = if record.ending == crate::client::Ending::ClockSkew {
                "unknown"
            } else {
                findings::auth_of(status, record.message.as_deref())
            };
        }
        if !record.rate.is_empty() {
            endpoint.rate = record.rate.clone();
        }
    }
    out
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `60/1m`, as limits are written in the config.
pub(crate) fn show_window(w: &RateWindow) -> String {
    format!("{}/{}", w.count, humantime::format_duration(w.per))
}

pub(crate) fn show_seconds(seconds: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs_f64(seconds.max(0.0).round()))
        .to_string()
}

impl Report {
    pub fn text(&self) -> String {
        report::text(self)
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
