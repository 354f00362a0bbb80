//! The keys of a generic JSON source: how it authenticates, its endpoints, how each pages,
//! and what each metric is read from. Everything a mapping could get wrong is refused here,
//! at load: a JSONPath that does not parse, a family the contract does not have with the
//! wrong labels, a new family whose name, type, help or unit does not fit the conventions.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json_path::JsonPath;

use crate::config::auth::Auth;
use crate::config::{KindContext, KindDefaults, KindSettings, RateWindow, SourceConfig};
use crate::error::ConfigError;
use crate::interned::intern;
use crate::metrics::MetricDef;

mod auth;
mod mappings;
mod pagination;
mod requests;

use super::templates::ClockText;
use auth::{RawSigning, auth};
pub use mappings::{Case, Format, LabelRule, Mapping, Reading, Replace, ValueSource};
use mappings::{RawMapping, mapping};
pub use pagination::Pagination;
use pagination::{RawPagination, pagination};
pub use requests::{Body, Tls};
use requests::{RawTls, body, statuses, tls};

pub const KIND: &str = "http_json";
pub const KEYS: &[&str] = &[
    "pool",
    "auth",
    "auth_header",
    "auth_param",
    "headers",
    "limits",
    "signing",
    "tls",
    "endpoints",
];

/// The limits assumed for a token when the block gives neither `limits` nor `budget`: low,
/// because a pool that bans is worse than a source polled slowly.
const ASSUMED_LIMIT: RateWindow = RateWindow::new(10, Duration::from_secs(60));
const DEFAULT_MAX_PAGES: u32 = 100;
const MAX_MAX_PAGES: u32 = 10_000;
/// A JSONPath (RFC 9535) with the text it was written as, for errors and equality.
#[derive(Debug, Clone)]
pub struct Path {
    pub text: String,
    pub path: JsonPath,
}

impl PartialEq for Path {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpJsonConfig {
    pub pool: &'static str,
    pub auth: Auth,
    pub limits: Vec<RateWindow>,
    pub limits_configured: bool,
    pub tls: Option<crate::client::SourceTls>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The `endpoint` label and how errors name it.
    pub name: &'static str,
    pub path: String,
    /// Values may read the clock (`{yesterday}`), filled in at each request.
    pub query: Vec<(String, ClockText)>,
    pub method: reqwest::Method,
    /// A POST's JSON body, its strings clock templates like the query's.
    pub body: Option<Body>,
    /// Headers of this endpoint only, beside the source's.
    pub headers: Vec<(String, String)>,
    /// The statuses that are answers (`valid_status_codes`); empty: any 2xx.
    pub statuses: Vec<u16>,
    /// A 404 from an endpoint that never answered switches it off, as the pools' optional
    /// endpoints are.
    pub optional: bool,
    pub pagination: Pagination,
    pub max_pages: u32,
    /// Where a 200 answer of this endpoint says it failed.
    pub error: ErrorField,
    pub metrics: Vec<Mapping>,
}

/// The `error` key of an endpoint.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ErrorField {
    /// Unset: a top-level `error` of an object, as the pools send it.
    #[default]
    TopLevel,
    /// `error = false`: the answers carry no error field; `error` is data if present.
    Off,
    /// `error = "$.path"`: a non-empty string or an object there fails the poll.
    At(Path),
    /// `error = { path = "$.code", ok = [0], message = "$.msg" }`: any value at `path` other
    /// than those in `ok` fails the poll, with the text at `message`. A missing code is fine.
    Code {
        path: Path,
        ok: Vec<serde_json::Value>,
        message: Option<Path>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    pool: Option<String>,
    auth: Option<String>,
    auth_header: Option<String>,
    auth_param: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    limits: Option<Vec<String>>,
    signing: Option<RawSigning>,
    tls: Option<RawTls>,
    endpoints: Option<Vec<RawEndpoint>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    name: Option<String>,
    path: String,
    #[serde(default)]
    query: BTreeMap<String, String>,
    method: Option<String>,
    body: Option<toml::Value>,
    headers: Option<BTreeMap<String, String>>,
    valid_status_codes: Option<Vec<u16>>,
    optional: Option<bool>,
    pagination: Option<RawPagination>,
    max_pages: Option<u32>,
    error: Option<RawErrorField>,
    #[serde(default)]
    metrics: Vec<RawMapping>,
}

enum RawErrorField {
    Flag(bool),
    Path(String),
    Code(RawErrorCode),
}

impl<'de> Deserialize<'de> for RawErrorField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        by_form(d, |value| {
            match value {
            toml::Value::Boolean(b) => Ok(RawErrorField::Flag(b)),
            toml::Value::String(s) => Ok(RawErrorField::Path(s)),
            code @ toml::Value::Table(_) => code.try_into().map(RawErrorField::Code).map_err(|e| e.to_string()),
            _ => Err("`error` is false, a JSONPath (\"$.error\"), or { path = \"$.code\", ok = [0], message = \"$.msg\" }".into()),
        }
        })
    }
}

/// A key that takes several forms, read by hand: serde's `untagged` says only that "data did
/// not match any variant", where `read`'s error names the forms the key takes.
pub(super) fn by_form<'de, D: serde::Deserializer<'de>, T>(
    d: D,
    read: impl FnOnce(toml::Value) -> Result<T, String>,
) -> Result<T, D::Error> {
    read(toml::Value::deserialize(d)?).map_err(serde::de::Error::custom)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrorCode {
    path: String,
    ok: Vec<serde_json::Value>,
    message: Option<String>,
}

pub fn parse(cx: &mut KindContext<'_, '_>) -> Result<Arc<dyn KindSettings>, ConfigError> {
    let keys: Keys = cx.deserialize()?;
    let pool = match keys.pool.clone() {
        None => KIND.to_string(),
        Some(p) if label_value_ok(&p) => p,
        Some(_) => {
            return Err(cx.err(
                "pool",
                "not a usable `pool` label",
                "name the API in lower case, e.g. \"luxcore\": letters, digits and '_', up to 64",
            ));
        }
    };
    let auth = auth(cx, &keys)?;
    let tls = keys.tls.as_ref().map(|raw| tls(cx, raw)).transpose()?;
    if keys.limits.is_none() && !cx.block_sets("budget") {
        cx.warn(
            "limits",
            "neither `limits` nor `budget`: the exporter assumes 10 requests a minute; give the API's own limits",
        );
    }
    let (limits, limits_configured) = match &keys.limits {
        None => (vec![ASSUMED_LIMIT], false),
        Some(list) if list.is_empty() => {
            return Err(cx.err(
                "limits",
                "no limits given",
                "give the API's windows per token, e.g. limits = [\"100/1m\"], or remove the key",
            ));
        }
        Some(list) => {
            let mut windows = Vec::with_capacity(list.len());
            for (i, text) in list.iter().enumerate() {
                windows.push(text.parse::<RateWindow>().map_err(|problem| {
                    cx.err(
                        &format!("limits[{i}]"),
                        problem,
                        "write each window as \"COUNT/DURATION\", e.g. \"100/1m\"",
                    )
                })?);
            }
            (windows, true)
        }
    };
    let raw_endpoints = keys.endpoints.unwrap_or_default();
    if raw_endpoints.is_empty() {
        return Err(cx.err(
            "endpoints",
            "http_json sources need at least one endpoint",
            "add [[sources.endpoints]] with a path and its [[sources.endpoints.metrics]]; config.example.toml shows two APIs",
        ));
    }
    let mut endpoints = Vec::with_capacity(raw_endpoints.len());
    for (e, raw) in raw_endpoints.into_iter().enumerate() {
        let endpoint = endpoint(cx, &format!("endpoints[{e}]"), raw)?;
        if endpoints.iter().any(|x: &Endpoint| x.name == endpoint.name) {
            return Err(cx.err(
                &format!("endpoints[{e}].name"),
                format!("two endpoints are named {:?}", endpoint.name),
                "give each endpoint its own `name`: it is the `endpoint` label",
            ));
        }
        endpoints.push(endpoint);
    }
    Ok(Arc::new(HttpJsonConfig {
        pool: intern(&pool),
        auth,
        limits,
        limits_configured,
        tls,
        endpoints,
    }))
}

fn endpoint(cx: &KindContext<'_, '_>, at: &str, raw: RawEndpoint) -> Result<Endpoint, ConfigError> {
    if !raw.path.starts_with('/') || raw.path.contains(['?', '#']) {
        return Err(cx.err(
            &format!("{at}.path"),
            format!("{:?} is not a path", raw.path),
            "write the path from the API's root, starting with '/'; parameters go in `query`",
        ));
    }
    let name = raw.name.unwrap_or_else(|| raw.path.clone());
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(cx.err(
            &format!("{at}.name"),
            "not a usable `endpoint` label",
            "name the endpoint in a few plain characters, e.g. \"balance\"",
        ));
    }
    if raw.metrics.is_empty() {
        return Err(cx.err(
            &format!("{at}.metrics"),
            "the endpoint maps no metric",
            "add [[sources.endpoints.metrics]] with a name and a value JSONPath",
        ));
    }
    let metrics = raw
        .metrics
        .into_iter()
        .enumerate()
        .map(|(m, raw)| mapping(cx, &format!("{at}.metrics[{m}]"), raw))
        .collect::<Result<Vec<_>, _>>()?;
    let max_pages = raw.max_pages.unwrap_or(DEFAULT_MAX_PAGES);
    if !(1..=MAX_MAX_PAGES).contains(&max_pages) {
        return Err(cx.err(
            &format!("{at}.max_pages"),
            format!("{max_pages} pages is not a usable cap"),
            &format!("use 1 to {MAX_MAX_PAGES} (the default is {DEFAULT_MAX_PAGES})"),
        ));
    }
    let pagination = match raw.pagination {
        None => Pagination::None,
        Some(p) => pagination(cx, &format!("{at}.pagination"), p, &metrics)?,
    };
    let error = match raw.error {
        None | Some(RawErrorField::Flag(true)) => ErrorField::TopLevel,
        Some(RawErrorField::Flag(false)) => ErrorField::Off,
        Some(RawErrorField::Path(text)) => {
            ErrorField::At(json_path(cx, &format!("{at}.error"), &text)?)
        }
        Some(RawErrorField::Code(code)) => {
            if code.ok.is_empty() {
                return Err(cx.err(
                    &format!("{at}.error.ok"),
                    "no value says the answer is fine",
                    "list the code of a good answer, e.g. ok = [0]",
                ));
            }
            ErrorField::Code {
                path: json_path(cx, &format!("{at}.error.path"), &code.path)?,
                ok: code.ok,
                message: code
                    .message
                    .as_deref()
                    .map(|t| json_path(cx, &format!("{at}.error.message"), t))
                    .transpose()?,
            }
        }
    };
    let method = match raw.method.as_deref() {
        None | Some("GET") => reqwest::Method::GET,
        Some("POST") => reqwest::Method::POST,
        Some(other) => {
            return Err(cx.err(
                &format!("{at}.method"),
                format!("{other:?} is not a method the exporter reads with"),
                "use \"GET\" (the default) or \"POST\" (with a JSON `body`)",
            ));
        }
    };
    let body = match raw.body {
        None => None,
        Some(_) if method != reqwest::Method::POST => {
            return Err(cx.err(
                &format!("{at}.body"),
                "a body goes with method = \"POST\"",
                "add method = \"POST\", or remove `body`",
            ));
        }
        Some(value) => Some(body(cx, &format!("{at}.body"), value)?),
    };
    let mut query = Vec::with_capacity(raw.query.len());
    for (k, v) in raw.query {
        let text = ClockText::parse(&v).map_err(|problem| {
            cx.err(
                &format!("{at}.query.{k}"),
                problem,
                "write the value, or a clock field such as \"{yesterday}\" or \"{now-1h:%s}\"",
            )
        })?;
        query.push((k, text));
    }
    let headers = auth::plain_headers(cx, &format!("{at}.headers"), raw.headers.as_ref())?;
    let statuses = statuses(
        cx,
        &format!("{at}.valid_status_codes"),
        raw.valid_status_codes.as_deref(),
    )?;
    Ok(Endpoint {
        name: intern(&name),
        path: raw.path,
        query,
        method,
        body,
        headers,
        statuses,
        optional: raw.optional.unwrap_or(false),
        pagination,
        max_pages,
        error,
        metrics,
    })
}

fn json_path(cx: &KindContext<'_, '_>, key: &str, text: &str) -> Result<Path, ConfigError> {
    JsonPath::parse(text)
        .map(|path| Path {
            text: text.to_string(),
            path,
        })
        .map_err(|e| {
            cx.err(
                key,
                format!("{text:?} is not a JSONPath: {e}"),
                "write an RFC 9535 JSONPath from the document's root, e.g. \"$.data[*]\" or \"$.balance_amount\"",
            )
        })
}

/// A `pool` label: lower-case letters, digits and '_'.
fn label_value_ok(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// New families defined by more than one block must be defined alike: one name, one type,
/// help and label set in the exposition.
pub fn check_families(sources: &[SourceConfig]) -> Result<(), (usize, String)> {
    let mut seen: BTreeMap<&'static str, (&'static MetricDef, usize)> = BTreeMap::new();
    for (i, source) in sources.iter().enumerate() {
        let Some(settings) = source.settings.as_any().downcast_ref::<HttpJsonConfig>() else {
            continue;
        };
        for mapping in settings.endpoints.iter().flat_map(|e| &e.metrics) {
            let def = mapping.family;
            match seen.get(def.name) {
                Some((other, first)) if !std::ptr::eq(*other, def) => {
                    return Err((
                        i,
                        format!(
                            "{} is defined here with another type, help or labels than in sources[{first}]",
                            def.name
                        ),
                    ));
                }
                _ => {
                    seen.insert(def.name, (def, i));
                }
            }
        }
    }
    Ok(())
}

impl KindSettings for HttpJsonConfig {
    fn defaults(&self) -> KindDefaults {
        KindDefaults {
            kind: KIND,
            pool: self.pool,
            base_url: None,
            interval: Duration::from_secs(60),
        }
    }

    fn auth(&self) -> Auth {
        self.auth.clone()
    }

    fn default_limits(&self) -> (Vec<RateWindow>, String) {
        let origin = if self.limits_configured {
            "the source's `limits`"
        } else {
            "assumed for a generic API (10/1m); set `limits` to the API's own"
        };
        (self.limits.clone(), origin.to_string())
    }

    fn limits_assumed(&self) -> bool {
        !self.limits_configured
    }

    fn tls(&self) -> Option<crate::client::SourceTls> {
        self.tls.clone()
    }

    fn min_requests_per_poll(&self) -> u32 {
        u32::try_from(self.endpoints.len()).unwrap_or(u32::MAX)
    }

    fn requests(&self) -> String {
        let names: Vec<String> = self
            .endpoints
            .iter()
            .map(|e| match e.pagination {
                Pagination::None => e.name.to_string(),
                _ => format!("{} (every page)", e.name),
            })
            .collect();
        names.join(" + ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_keys_are_the_keys_parsed() {
        use crate::config::kind::{fields_parsed, sorted};
        assert_eq!(fields_parsed::<Keys>(), sorted(KEYS));
    }
}
