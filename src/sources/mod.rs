//! Sources: one folder per pool API. A source turns the pool's JSON into a `Snapshot`; it
//! never touches reqwest, the registry or the clock. Everything else (budget, auth, retries,
//! timing, logging, the per-source health metrics) is the scheduler's and the client's job.
//!
//! Each folder holds the source (`mod.rs`) and the keys only its kind takes (`config.rs`:
//! its `KindSettings`, read and checked there). Adding a pool: a folder like the others; its
//! row in `KIND_TABLE` below; a config block in config.example.toml; a fixture and a test.

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

/// One kind of source: its name in the config, the keys only it takes, how it reads them,
/// and how its source is built from what it read (`None` for another kind's settings).
struct Kind {
    name: &'static str,
    keys: &'static [&'static str],
    parse: fn(&mut KindContext<'_, '_>) -> Result<Arc<dyn KindSettings>, ConfigError>,
    build: fn(&SourceConfig) -> Option<Box<dyn Source>>,
}

/// The settings of `config` as `T`, where they are `T`'s.
fn settings_of<T: 'static>(config: &SourceConfig) -> Option<&T> {
    config.settings.as_any().downcast_ref::<T>()
}

/// Every kind, in the order error messages list them.
const KIND_TABLE: [Kind; 4] = [
    Kind {
        name: ultimate_proxy::config::KIND,
        keys: ultimate_proxy::config::KEYS,
        parse: ultimate_proxy::config::parse,
        build: |c| {
            settings_of(c)
                .map(|s| Box::new(ultimate_proxy::UltimateProxy::new(s)) as Box<dyn Source>)
        },
    },
    Kind {
        name: ourpool::config::KIND,
        keys: ourpool::config::KEYS,
        parse: ourpool::config::parse,
        build: |c| settings_of(c).map(|s| Box::new(ourpool::OurPool::new(s)) as Box<dyn Source>),
    },
    Kind {
        name: luxor::config::KIND,
        keys: luxor::config::KEYS,
        parse: luxor::config::parse,
        build: |c| settings_of(c).map(|s| Box::new(luxor::Luxor::new(c, s)) as Box<dyn Source>),
    },
    Kind {
        name: http_json::config::KIND,
        keys: http_json::config::KEYS,
        parse: http_json::config::parse,
        build: |c| settings_of(c).map(|s| Box::new(http_json::HttpJson::new(s)) as Box<dyn Source>),
    },
];

fn kind_named(name: &str) -> Option<&'static Kind> {
    KIND_TABLE.iter().find(|k| k.name == name)
}

/// Every kind, for `Config::load`.
pub struct Kinds;

/// What `Config::load` is given to read each source's own keys.
pub static KINDS: Kinds = Kinds;

impl SourceKinds for Kinds {
    fn names(&self) -> Vec<&'static str> {
        KIND_TABLE.iter().map(|k| k.name).collect()
    }

    fn keys(&self, kind: &str) -> Option<&'static [&'static str]> {
        kind_named(kind).map(|k| k.keys)
    }

    fn parse(
        &self,
        kind: &str,
        cx: &mut KindContext<'_, '_>,
    ) -> Result<Arc<dyn KindSettings>, ConfigError> {
        match kind_named(kind) {
            Some(k) => (k.parse)(cx),
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
    KIND_TABLE
        .iter()
        .find_map(|k| (k.build)(config))
        .unwrap_or_else(|| Box::new(Unbuildable(config.kind())))
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
