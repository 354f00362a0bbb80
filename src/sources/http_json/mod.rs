//! A generic JSON API, read as its config says: each endpoint is fetched page by page (every
//! page through the budget, like any request), and each mapping turns what its JSONPaths
//! select into series of a contract family or of a family the config defines. Data that does
//! not fit the mapping fails the poll as `decode`, naming the endpoint, the metric and the
//! path; the last good snapshot stays.

pub mod config;
mod pagination;

use serde_json::Value;

use super::shared::count_workers;
use super::{PollFuture, Source};
use crate::client::Upstream;
use crate::error::PollError;
use crate::metrics::{WORKER_UP, WORKERS};
use crate::snapshot::Snapshot;
pub use config::HttpJsonConfig;
use config::{Endpoint, Label, Mapping, Path};

pub struct HttpJson {
    endpoints: Vec<Endpoint>,
    /// Whether `mining_workers` follows from `mining_worker_up`: the config maps the up
    /// series but not the counts.
    counts_workers: bool,
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
        }
    }
}

impl HttpJson {
    async fn fetch(&self, api: &Upstream) -> Result<Snapshot, PollError> {
        let mut snap = Snapshot::new();
        for endpoint in &self.endpoints {
            let mut pages = pagination::Pages::new(endpoint, api)?;
            while let Some(page) = pages.next(api).await? {
                let mut items = 0;
                for mapping in &endpoint.metrics {
                    // The detail quotes what the API sent, which may echo the token.
                    items += apply(mapping, &page, &mut snap).map_err(|detail| {
                        PollError::decode(endpoint.name, api.pool_text(&detail))
                    })?;
                }
                pages.read(&page, items)?;
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

/// Sets `mapping`'s series from one page; returns how many items `items` selected (0
/// without `items`), so page-number pagination can tell an empty page.
fn apply(mapping: &Mapping, page: &Value, snap: &mut Snapshot) -> Result<usize, String> {
    let name = mapping.family.name;
    let items: Vec<&Value> = match &mapping.items {
        Some(path) => path.path.query(page).all(),
        None => vec![page],
    };
    for (n, item) in items.iter().enumerate() {
        let at = || match &mapping.items {
            Some(path) => format!("{name}: item {n} of {}", path.text),
            None => name.to_string(),
        };
        let Some(raw) = select(&mapping.value, item).map_err(|e| format!("{}: {e}", at()))? else {
            if mapping.optional {
                continue;
            }
            return Err(format!(
                "{}: {} selects no value (set optional = true where an item may lack it)",
                at(),
                mapping.value.text
            ));
        };
        let value =
            number(mapping, raw).map_err(|e| format!("{}: {}: {e}", at(), mapping.value.text))?;
        let mut labels = Vec::with_capacity(mapping.labels.len());
        for (label, source) in mapping.family.labels.iter().zip(&mapping.labels) {
            labels.push(match source {
                Label::Fixed(text) => text.clone(),
                Label::Path(path) => {
                    match select(path, item).map_err(|e| format!("{}: {e}", at()))? {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        Some(Value::Bool(b)) => b.to_string(),
                        Some(_) => {
                            return Err(format!(
                                "{}: label {label}: {} is not a string, number or boolean",
                                at(),
                                path.text
                            ));
                        }
                        None => {
                            return Err(format!(
                                "{}: label {label}: {} selects nothing",
                                at(),
                                path.text
                            ));
                        }
                    }
                }
            });
        }
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        snap.set(mapping.family, &labels, value);
    }
    Ok(if mapping.items.is_some() {
        items.len()
    } else {
        0
    })
}

/// The one value `path` selects in `item`: `None` for nothing or null, an error for many.
pub(crate) fn select<'v>(path: &Path, item: &'v Value) -> Result<Option<&'v Value>, String> {
    match path.path.query(item).at_most_one() {
        Ok(Some(Value::Null)) | Ok(None) => Ok(None),
        Ok(Some(v)) => Ok(Some(v)),
        Err(_) => Err(format!("{} selects more than one value", path.text)),
    }
}

/// A JSON value as the mapping's number: numbers as they are, numeric strings read, words
/// through `values`, booleans as 1 and 0; then scaled.
fn number(mapping: &Mapping, raw: &Value) -> Result<f64, String> {
    let word = match raw {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if mapping.values.is_some() => Some(n.to_string()),
        _ => None,
    };
    let value = match (&mapping.values, word) {
        (Some(values), Some(word)) => match values
            .get(&word)
            .or_else(|| {
                values
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&word))
                    .map(|(_, v)| v)
            })
            .or(mapping.default.as_ref())
        {
            Some(v) => *v,
            None => {
                let mut known: Vec<&str> = values.keys().map(String::as_str).collect();
                known.truncate(10);
                return Err(format!(
                    "{:?} is none of the words mapped ({}), and there is no default",
                    shorten(&word),
                    known.join(", ")
                ));
            }
        },
        (_, _) => match raw {
            Value::Number(n) => n.as_f64().ok_or("a number out of range")?,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{:?} is not a number", shorten(s)))?,
            _ => return Err("an object or list where a number belongs".to_string()),
        },
    };
    // 1789876 * 0.01 is 17898.760000000002; / 100 is 17898.76, as an operator expects.
    let inverse = 1.0 / mapping.scale;
    let scaled = if mapping.scale.abs() < 1.0 && (inverse - inverse.round()).abs() < 1e-9 {
        value / inverse.round()
    } else {
        value * mapping.scale
    };
    if scaled.is_finite() {
        Ok(scaled)
    } else {
        Err(format!(
            "{value} scaled by {} is not a finite number",
            mapping.scale
        ))
    }
}

/// Pool text quoted in an error, cut short.
fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::example_config;
    use crate::sources::arbitrary::{pool_json, pool_page};
    use proptest::prelude::*;

    /// The mappings of config.example.toml's generic sources.
    fn shipped() -> Vec<Endpoint> {
        example_config()
            .unwrap()
            .sources
            .iter()
            .filter_map(|s| s.settings.as_any().downcast_ref::<HttpJsonConfig>())
            .flat_map(|settings| settings.endpoints.clone())
            .collect()
    }

    proptest! {
        #[test]
        fn any_page_maps_or_fails_without_panicking_and_up_is_0_or_1(
            page in prop_oneof![pool_page("data"), pool_page("balances"), pool_json()],
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
