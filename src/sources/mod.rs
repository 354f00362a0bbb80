//! Sources: one folder per pool API. A source turns the pool's JSON into a `Snapshot`; it
//! never touches reqwest, the registry or the clock. Everything else (budget, auth, retries,
//! timing, logging, the per-source health metrics) is the scheduler's and the client's job.
//!
//! Each folder holds the source (`mod.rs`) and the keys only its kind takes (`config.rs`:
//! its `KindSettings`, read and checked there). Adding a pool: a folder like the others; a
//! variant in `SourceKind` and its arms below; a config block in config.example.toml; a
//! fixture and a test.

#[cfg(test)]
pub(crate) mod arbitrary;
pub mod fields;
pub mod http_json;
pub mod luxor;
pub mod optional;
pub mod ourpool;
pub mod ultimate_proxy;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::client::Upstream;
use crate::config::{KindContext, KindSettings, SourceConfig, SourceKinds};
use crate::error::{ConfigError, PollError};
use crate::metrics::{WORKER_HASHRATE, WORKER_UP, WORKERS};
use crate::snapshot::Snapshot;

pub type PollFuture<'a> = Pin<Box<dyn Future<Output = Result<Snapshot, PollError>> + Send + 'a>>;

/// One pool API. `poll` makes every request one poll needs through `api` and returns the
/// complete picture; anything it does not return disappears from /metrics.
pub trait Source: Send + Sync {
    fn poll<'a>(&'a self, api: &'a Upstream) -> PollFuture<'a>;
}

/// The kinds of source there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    UltimateProxy,
    Ourpool,
    Luxor,
    HttpJson,
}

impl SourceKind {
    pub const ALL: [SourceKind; 4] = [
        SourceKind::UltimateProxy,
        SourceKind::Ourpool,
        SourceKind::Luxor,
        SourceKind::HttpJson,
    ];

    /// The `kind` in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::UltimateProxy => ultimate_proxy::config::KIND,
            SourceKind::Ourpool => ourpool::config::KIND,
            SourceKind::Luxor => luxor::config::KIND,
            SourceKind::HttpJson => http_json::config::KIND,
        }
    }

    fn named(kind: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The keys only this kind takes.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            SourceKind::UltimateProxy => ultimate_proxy::config::KEYS,
            SourceKind::Ourpool => ourpool::config::KEYS,
            SourceKind::Luxor => luxor::config::KEYS,
            SourceKind::HttpJson => http_json::config::KEYS,
        }
    }

    fn parse(self, cx: &mut KindContext<'_, '_>) -> Result<Arc<dyn KindSettings>, ConfigError> {
        match self {
            SourceKind::UltimateProxy => ultimate_proxy::config::parse(cx),
            SourceKind::Ourpool => ourpool::config::parse(cx),
            SourceKind::Luxor => luxor::config::parse(cx),
            SourceKind::HttpJson => http_json::config::parse(cx),
        }
    }
}

/// Every kind, for `Config::load`.
pub struct Kinds;

/// What `Config::load` is given to read each source's own keys.
pub static KINDS: Kinds = Kinds;

impl SourceKinds for Kinds {
    fn names(&self) -> Vec<&'static str> {
        SourceKind::ALL.iter().map(|k| k.as_str()).collect()
    }

    fn keys(&self, kind: &str) -> Option<&'static [&'static str]> {
        SourceKind::named(kind).map(SourceKind::keys)
    }

    fn parse(
        &self,
        kind: &str,
        cx: &mut KindContext<'_, '_>,
    ) -> Result<Arc<dyn KindSettings>, ConfigError> {
        match SourceKind::named(kind) {
            Some(k) => k.parse(cx),
            None => Err(cx.err(
                "kind",
                format!("{kind:?} is not a kind of source"),
                &format!("use one of {}", self.names().join(", ")),
            )),
        }
    }

    fn check_together(&self, sources: &[SourceConfig]) -> Result<(), (usize, String, String)> {
        http_json::config::check_families(sources).map_err(|(i, problem)| {
            (
                i,
                problem,
                "define each new family once, alike, or give them different names".to_string(),
            )
        })
    }
}

/// The `account` label of kinds that take one: as configured, or the source's name.
pub(crate) fn account(
    cx: &KindContext<'_, '_>,
    account: Option<String>,
) -> Result<String, ConfigError> {
    let account = account.unwrap_or_else(|| cx.name().to_string());
    if account.trim().is_empty() || account.chars().any(char::is_control) {
        return Err(cx.err(
            "account",
            "the account is empty or holds control characters",
            "write the account name as the pool shows it",
        ));
    }
    Ok(account)
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

/// The source `config` describes.
pub fn build(config: &SourceConfig) -> Box<dyn Source> {
    let settings = config.settings.as_any();
    if let Some(s) = settings.downcast_ref::<ultimate_proxy::UltimateProxyConfig>() {
        Box::new(ultimate_proxy::UltimateProxy::new(s))
    } else if let Some(s) = settings.downcast_ref::<ourpool::OurPoolConfig>() {
        Box::new(ourpool::OurPool::new(s))
    } else if let Some(s) = settings.downcast_ref::<luxor::LuxorConfig>() {
        Box::new(luxor::Luxor::new(config, s))
    } else if let Some(s) = settings.downcast_ref::<http_json::HttpJsonConfig>() {
        Box::new(http_json::HttpJson::new(s))
    } else {
        Box::new(Unbuildable(config.kind()))
    }
}

/// Settings no kind here reads: only a library user's own `SourceKinds` can make them, and
/// each poll says so instead of the process stopping.
struct Unbuildable(&'static str);

impl Source for Unbuildable {
    fn poll<'a>(&'a self, _: &'a Upstream) -> PollFuture<'a> {
        let kind = self.0;
        Box::pin(async move {
            Err(PollError::decode(
                "(config)",
                format!("no source of kind {kind:?} is built into this exporter"),
            ))
        })
    }
}
