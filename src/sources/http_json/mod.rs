//! A generic JSON API, read as its config says: each endpoint is fetched page by page (every
//! page through the budget, like any request), and each mapping turns what its JSONPaths
//! select into series of a contract family or of a family the config defines. Data that does
//! not fit the mapping fails the poll as `decode`, naming the endpoint, the metric and the
//! path; the last good snapshot stays.

pub mod config;
mod mapping;
mod pagination;
mod templates;
mod values;

use serde_json::Value;

use super::optional::OptionalEndpoints;
use super::shared::count_workers;
use super::{PollFuture, Source};
use crate::client::Upstream;
use crate::error::PollError;
use crate::metrics::{WORKER_UP, WORKERS};
use crate::snapshot::Snapshot;
pub use config::HttpJsonConfig;
use config::{Endpoint, Path};
use mapping::apply;

pub struct HttpJson {
    endpoints: Vec<Endpoint>,
    /// Whether `mining_workers` follows from `mining_worker_up`: the config maps the up
    /// series but not the counts.
    counts_workers: bool,
    /// What the endpoints marked `optional` have answered.
    optional: OptionalEndpoints,
}

impl super::FromSettings for HttpJson {
    type Settings = HttpJsonConfig;

    fn new(settings: &HttpJsonConfig) -> Self {
        let families = || {
            settings
                .endpoints
                .iter()
                .flat_map(|e| &e.metrics)
                .map(|m| m.family)
        };
        HttpJson {
            endpoints: settings.endpoints.clone(),
            counts_workers: families().any(|f| std::ptr::eq(f, &WORKER_UP))
                && !families().any(|f| std::ptr::eq(f, &WORKERS)),
            optional: OptionalEndpoints::new(),
        }
    }
}

impl HttpJson {
    async fn fetch(&self, api: &Upstream) -> Result<Snapshot, PollError> {
        let mut snap = Snapshot::new();
        for endpoint in &self.endpoints {
            let mut pages = pagination::Pages::new(endpoint, api)?;
            while let Some(answer) = pages.next(api, &self.optional).await? {
                // The list's length: the most items any mapping of the page read.
                let mut items = 0;
                if let Some(page) = &answer.document {
                    for mapping in &endpoint.metrics {
                        // The detail quotes what the API sent, which may echo the token.
                        let read = apply(mapping, page, &mut snap).map_err(|detail| {
                            PollError::decode(endpoint.name, api.pool_text(&detail))
                        })?;
                        items = items.max(read);
                    }
                }
                pages.read(&answer, items)?;
            }
        }
        if self.counts_workers {
            // Like the built-in pools: mining_workers follows from the workers' up series.
            count_workers(&mut snap, std::iter::empty());
        }
        Ok(snap)
    }
}

impl Source for HttpJson {
    fn poll<'a>(&'a self, api: &'a Upstream) -> PollFuture<'a> {
        Box::pin(self.fetch(api))
    }
}

/// The one value `path` selects in `item`: `None` for nothing or null, an error for many.
pub(crate) fn select<'v>(path: &Path, item: &'v Value) -> Result<Option<&'v Value>, String> {
    match path.path.query(item).at_most_one() {
        Ok(Some(Value::Null)) | Ok(None) => Ok(None),
        Ok(Some(v)) => Ok(Some(v)),
        Err(_) => Err(format!("{} selects more than one value", path.text)),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::demo::example_config;
    use crate::sources::arbitrary::{pool_json, pool_page};
    use proptest::prelude::*;

    /// The endpoints of examples/pools/'s blocks, read where the crate is (tests only).
    pub(super) fn pool_blocks() -> Vec<Endpoint> {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pools");
        let mut files: Vec<_> = std::fs::read_dir(folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        files
            .iter()
            .flat_map(|file| {
                let config = crate::config::Config::load(
                    file,
                    crate::config::SecretMode::WarnIfMissing,
                    &crate::sources::KINDS,
                )
                .unwrap();
                settings_of(&config)
            })
            .collect()
    }

    fn settings_of(config: &crate::config::Config) -> Vec<Endpoint> {
        config
            .sources
            .iter()
            .filter_map(|s| s.settings.as_any().downcast_ref::<HttpJsonConfig>())
            .flat_map(|settings| settings.endpoints.clone())
            .collect()
    }

    /// The mappings of config.example.toml's generic sources and of the pool blocks.
    fn shipped() -> Vec<Endpoint> {
        let mut endpoints = settings_of(&example_config().unwrap());
        endpoints.extend(pool_blocks());
        endpoints
    }

    proptest! {
        #[test]
        fn any_page_maps_or_fails_without_panicking_and_up_is_0_or_1(
            page in prop_oneof![
                pool_page("data"),
                pool_page("balances"),
                // The pool blocks read lists a level or two down.
                pool_page("workerDatas").prop_map(|p| serde_json::json!({"code": 0, "data": p})),
                pool_page("data").prop_map(|p| serde_json::json!({"err_no": 0, "data": p})),
                pool_page("workers").prop_map(|p| serde_json::json!({"btc": p})),
                pool_json(),
            ],
        ) {
            for endpoint in shipped() {
                let mut snap = Snapshot::new();
                for mapping in &endpoint.metrics {
                    let _ = apply(mapping, &page, &mut snap);
                }
                for (_, up) in snap.samples(&WORKER_UP).into_iter().flatten() {
                    prop_assert!(up == 0.0 || up == 1.0);
                }
                for (_, samples) in snap.families() {
                    for value in samples.values() {
                        prop_assert!(value.is_finite());
                    }
                }
            }
        }
    }
}
