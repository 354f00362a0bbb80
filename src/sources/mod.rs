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
pub mod shared;
pub mod ultimate_proxy;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::client::Upstream;
use crate::config::{KindContext, KindSettings, SourceConfig, SourceKinds};
use crate::error::{ConfigError, PollError};
use crate::snapshot::Snapshot;
pub use shared::UNKNOWN_ALGORITHM;

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

/// A source made from its kind's settings: what lets one generic row build every kind.
pub trait FromSettings: Source + Sized + 'static {
    type Settings: KindSettings;
    fn new(settings: &Self::Settings) -> Self;
}

/// The row of the kind whose source is `S`.
const fn row<S: FromSettings>(
    name: &'static str,
    keys: &'static [&'static str],
    parse: fn(&mut KindContext<'_, '_>) -> Result<Arc<dyn KindSettings>, ConfigError>,
) -> Kind {
    Kind {
        name,
        keys,
        parse,
        build: build_as::<S>,
    }
}

/// `S` built from `config`'s settings, where they are `S`'s kind's.
fn build_as<S: FromSettings>(config: &SourceConfig) -> Option<Box<dyn Source>> {
    let settings = config.settings.as_any().downcast_ref::<S::Settings>()?;
    Some(Box::new(S::new(settings)))
}

/// Every kind, in the order error messages list them.
const KIND_TABLE: [Kind; 4] = [
    row::<ultimate_proxy::UltimateProxy>(
        ultimate_proxy::config::KIND,
        ultimate_proxy::config::KEYS,
        ultimate_proxy::config::parse,
    ),
    row::<ourpool::OurPool>(
        ourpool::config::KIND,
        ourpool::config::KEYS,
        ourpool::config::parse,
    ),
    row::<luxor::Luxor>(
        luxor::config::KIND,
        luxor::config::KEYS,
        luxor::config::parse,
    ),
    row::<http_json::HttpJson>(
        http_json::config::KIND,
        http_json::config::KEYS,
        http_json::config::parse,
    ),
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
