//! Sources: one file per pool API. A source turns the pool's JSON into a `Snapshot`; it
//! never touches reqwest, the registry or the clock. Everything else (budget, auth, retries,
//! timing, logging, the per-source health metrics) is the scheduler's and the client's job.
//!
//! Adding a pool: a file here with its `DEFAULTS`, its serde types and a `Source` impl; a
//! variant in `SourceKind`; an arm in `defaults()` and `build()`; a config block in
//! config.example.toml; a fixture and a test.

#[cfg(test)]
pub(crate) mod arbitrary;
pub mod fields;
pub mod luxor;
pub mod optional;
pub mod ourpool;
pub mod ultimate_proxy;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;

use crate::client::{AuthStyle, Upstream};
use crate::config::{RateWindow, SourceConfig, Tier};
use crate::error::PollError;
use crate::metrics::{WORKER_HASHRATE, WORKER_UP, WORKERS};
use crate::snapshot::Snapshot;

pub type PollFuture<'a> = Pin<Box<dyn Future<Output = Result<Snapshot, PollError>> + Send + 'a>>;

/// One pool API. `poll` makes every request one poll needs through `api` and returns the
/// complete picture; anything it does not return disappears from /metrics.
pub trait Source: Send + Sync {
    fn poll<'a>(&'a self, api: &'a Upstream) -> PollFuture<'a>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    UltimateProxy,
    Ourpool,
    Luxor,
}

/// What a pool's file declares about its API, used by config, plan and client.
#[derive(Debug)]
pub struct KindDefaults {
    /// The `pool` label and the `kind` in the config.
    pub pool: &'static str,
    pub base_url: &'static str,
    pub interval: Duration,
    pub auth: AuthStyle,
    /// The keys of those only some kinds take (account, tier, currency, subaccounts,
    /// site_id) that this kind accepts, and those it needs.
    pub keys: &'static [&'static str],
    pub required: &'static [&'static str],
    /// Requests one poll of this source costs at the least (one page of each list).
    pub min_requests_per_poll: fn(&SourceConfig) -> u32,
    /// What one poll requests, for `check` and the README.
    pub requests: &'static str,
    /// The vendor's published limits for a token, by tier where the pool has tiers.
    pub limits: fn(Tier) -> (Vec<RateWindow>, &'static str),
}

impl SourceKind {
    pub fn defaults(self) -> &'static KindDefaults {
        match self {
            SourceKind::UltimateProxy => &ultimate_proxy::DEFAULTS,
            SourceKind::Ourpool => &ourpool::DEFAULTS,
            SourceKind::Luxor => &luxor::DEFAULTS,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.defaults().pool
    }

    pub fn default_base_url(self) -> &'static str {
        self.defaults().base_url
    }

    pub fn default_interval(self) -> Duration {
        self.defaults().interval
    }

    pub fn default_limits(self, tier: Tier) -> Vec<RateWindow> {
        (self.defaults().limits)(tier).0
    }

    pub fn default_limits_origin(self, tier: Tier) -> String {
        (self.defaults().limits)(tier).1.to_string()
    }
}

/// A worker's label: its name, or its id where the pool sends no usable name.
pub(crate) fn worker_label<'a>(
    name: &'a Option<String>,
    id: &'a Option<String>,
) -> Option<&'a str> {
    [name, id]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .find(|n| !n.is_empty())
}

/// The `algorithm` label where a pool names none.
pub const UNKNOWN_ALGORITHM: &str = "unknown";

/// An algorithm as the pool names it, lower-case, so `RandomX` and `randomx` are one series;
/// `unknown` where it sends none.
pub(crate) fn algorithm_label(name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_lowercase(),
        None => UNKNOWN_ALGORITHM.to_string(),
    }
}

/// Sets what every pool says of a worker: `mining_worker_up`, which is 1 only when `status`
/// is the pool's word for alive (any case), so a missing or unknown status never shows a
/// dead worker as alive; and its freshest hashrate of `algorithm`, where there is one.
pub(crate) fn set_worker(
    snap: &mut Snapshot,
    [account, worker]: [&str; 2],
    algorithm: &str,
    status: Option<&str>,
    alive: &str,
    hashrate: Option<f64>,
) {
    let up = status.is_some_and(|s| s.trim().eq_ignore_ascii_case(alive));
    snap.set(&WORKER_UP, &[account, worker], if up { 1.0 } else { 0.0 });
    if let Some(h) = hashrate {
        snap.set(&WORKER_HASHRATE, &[account, worker, algorithm], h);
    }
}

/// Sets `mining_workers` per account from the `mining_worker_up` series already in `snap`, so
/// a worker the pool lists twice counts once. Every account in `accounts` gets both states,
/// at 0 when it has no workers.
pub(crate) fn count_workers<'a>(snap: &mut Snapshot, accounts: impl IntoIterator<Item = &'a str>) {
    let mut counts: BTreeMap<String, (u32, u32)> = accounts
        .into_iter()
        .map(|a| (a.to_string(), (0, 0)))
        .collect();
    for (labels, up) in snap.samples(&WORKER_UP).into_iter().flatten() {
        let Some(account) = labels.first() else {
            continue;
        };
        let count = counts.entry(account.to_string()).or_default();
        if *up > 0.0 {
            count.0 += 1;
        } else {
            count.1 += 1;
        }
    }
    for (account, (active, inactive)) in counts {
        snap.set(&WORKERS, &[&account, "active"], active.into());
        snap.set(&WORKERS, &[&account, "inactive"], inactive.into());
    }
}

pub fn build(config: &SourceConfig) -> Box<dyn Source> {
    match config.kind {
        SourceKind::UltimateProxy => Box::new(ultimate_proxy::UltimateProxy::new(config)),
        SourceKind::Ourpool => Box::new(ourpool::OurPool::new(config)),
        SourceKind::Luxor => Box::new(luxor::Luxor::new(config)),
    }
}
