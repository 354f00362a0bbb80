//! The keys of a generic JSON source: how it authenticates, its endpoints, how each pages,
//! and what each metric is read from. Everything a mapping could get wrong is refused here,
//! at load: a JSONPath that does not parse, a family the contract does not have with the
//! wrong labels, a new family whose name, type, help or unit does not fit the conventions.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json_path::JsonPath;

use crate::config::auth::{Auth, DEFAULT_MAX_CLOCK_SKEW, Signing, TokenPlacement};
use crate::config::{KindContext, KindSettings, RateWindow, SourceConfig, same_settings};
use crate::error::ConfigError;
use crate::interned::intern;
use crate::metrics::{self, MetricDef, MetricKind};

pub const KIND: &str = "http_json";
pub const KEYS: &[&str] = &[
    "pool",
    "auth",
    "auth_header",
    "auth_param",
    "headers",
    "limits",
    "signing",
    "endpoints",
];

/// The limits assumed for a token when the block gives neither `limits` nor `budget`: low,
/// because a pool that bans is worse than a source polled slowly.
const ASSUMED_LIMIT: RateWindow = RateWindow::new(10, Duration::from_secs(60));
const DEFAULT_MAX_PAGES: u32 = 100;
const MAX_MAX_PAGES: u32 = 10_000;
/// Units a new family's name may end with: Prometheus's base units, and hashrate.
const BASE_UNITS: &[&str] = &[
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
const SCALED_UNITS: &[(&str, &str)] = &[
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
/// Header names that carry credentials: those go in token_env/token_file or `signing`.
const CREDENTIAL_HEADER_WORDS: &[&str] = &[
    "authorization",
    "cookie",
    "token",
    "secret",
    "key",
    "password",
    "signature",
];

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
    pub endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// The `endpoint` label and how errors name it.
    pub name: &'static str,
    pub path: String,
    pub query: Vec<(String, String)>,
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
}

#[derive(Debug, Clone, PartialEq)]
pub enum Pagination {
    None,
    /// `param` = first, first + 1, ...; ends at `total_pages` or at a page with no items.
    Page {
        param: String,
        first: u64,
        size: Option<(String, u32)>,
        total_pages: Option<Path>,
    },
    /// `param` = the last page's `next_cursor` while its `has_more` is true.
    Cursor {
        param: String,
        size: Option<(String, u32)>,
        has_more: Path,
        next_cursor: Path,
    },
    /// The address the last page's `next_url` gives, on the API's own origin.
    NextUrl {
        next_url: Path,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub family: &'static MetricDef,
    /// Where the list of items is; without it the page itself is the one item.
    pub items: Option<Path>,
    pub value: Path,
    pub scale: f64,
    /// Words to numbers (`online` = 1); a word not listed takes `default`, or fails the poll.
    pub values: Option<BTreeMap<String, f64>>,
    pub default: Option<f64>,
    /// An item without the value is skipped instead of failing the poll.
    pub optional: bool,
    /// In the family's label order.
    pub labels: Vec<Label>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Path(Path),
    Fixed(String),
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
    endpoints: Option<Vec<RawEndpoint>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    max_clock_skew: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    name: Option<String>,
    path: String,
    #[serde(default)]
    query: BTreeMap<String, String>,
    pagination: Option<RawPagination>,
    max_pages: Option<u32>,
    error: Option<RawErrorField>,
    #[serde(default)]
    metrics: Vec<RawMapping>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawErrorField {
    Flag(bool),
    Path(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPagination {
    #[serde(rename = "type")]
    kind: String,
    param: Option<String>,
    first_page: Option<u64>,
    size_param: Option<String>,
    size: Option<u32>,
    total_pages: Option<String>,
    has_more: Option<String>,
    next_cursor: Option<String>,
    next_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    help: Option<String>,
    unit: Option<String>,
    items: Option<String>,
    value: String,
    scale: Option<f64>,
    values: Option<BTreeMap<String, f64>>,
    default: Option<f64>,
    optional: Option<bool>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
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
        endpoints,
    }))
}

fn auth(cx: &mut KindContext<'_, '_>, keys: &Keys) -> Result<Auth, ConfigError> {
    let style = keys.auth.as_deref().unwrap_or("header");
    let token = match style {
        "header" => {
            let name = keys.auth_header.as_deref().unwrap_or("X-API-Key");
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(cx.err(
                    "auth_header",
                    format!("{name:?} is not a header name"),
                    "write the header the API reads the key from, e.g. \"X-API-Key\"",
                ));
            }
            TokenPlacement::Header(name.to_string())
        }
        "bearer" => TokenPlacement::Bearer,
        "query" => {
            let param = keys.auth_param.as_deref().unwrap_or("api_key");
            if param.is_empty()
                || !param
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(cx.err(
                    "auth_param",
                    format!("{param:?} is not a query parameter name"),
                    "write the parameter the API reads the key from, e.g. \"api_key\"",
                ));
            }
            TokenPlacement::Query(param.to_string())
        }
        other => {
            return Err(cx.err(
                "auth",
                format!("{other:?} is not a way to send the token"),
                "use \"header\" (auth_header names it, X-API-Key by default), \"bearer\" or \"query\" (auth_param names it)",
            ));
        }
    };
    for (key, applies) in [
        ("auth_header", style == "header"),
        ("auth_param", style == "query"),
    ] {
        if cx.has(key) && !applies {
            return Err(cx.err(
                key,
                format!("`{key}` does not apply to auth = {style:?}"),
                "remove it, or set the `auth` it belongs to",
            ));
        }
    }
    let mut headers = Vec::new();
    for (name, value) in keys.headers.iter().flatten() {
        let lower = name.to_ascii_lowercase();
        if CREDENTIAL_HEADER_WORDS.iter().any(|w| lower.contains(w)) {
            return Err(cx.err(
                &format!("headers.{name}"),
                "a header that carries a credential is never written in the config file",
                "send the key with token_env/token_file and auth = \"header\" (auth_header names the header), or sign with [sources.signing]",
            ));
        }
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(value).is_err()
        {
            return Err(cx.err(
                &format!("headers.{name}"),
                "not a header name and value",
                "write headers = { \"X-Merchant-Id\" = \"123\" }",
            ));
        }
        headers.push((name.clone(), value.clone()));
    }
    let signing = match &keys.signing {
        None => None,
        Some(raw) => {
            let (secret, secret_origin) = cx.secret(
                "signing.secret",
                raw.secret_env.as_deref(),
                raw.secret_file.as_ref(),
            )?;
            let max_clock_skew = match &raw.max_clock_skew {
                Some(text) => {
                    cx.duration("signing.max_clock_skew", text, Duration::from_secs(1))?
                }
                None => DEFAULT_MAX_CLOCK_SKEW,
            };
            Some(Signing {
                secret,
                secret_origin,
                max_clock_skew,
            })
        }
    };
    Ok(Auth {
        token,
        headers,
        signing,
    })
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
    };
    Ok(Endpoint {
        name: intern(&name),
        path: raw.path,
        query: raw.query.into_iter().collect(),
        pagination,
        max_pages,
        error,
        metrics,
    })
}

fn pagination(
    cx: &KindContext<'_, '_>,
    at: &str,
    raw: RawPagination,
    metrics: &[Mapping],
) -> Result<Pagination, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let path =
        |k: &str, text: &Option<String>, default: Option<&str>| -> Result<Path, ConfigError> {
            match text.as_deref().or(default) {
                Some(text) => json_path(cx, &key(k), text),
                None => Err(cx.err(
                    &key(k),
                    format!("{} pagination needs `{k}`", raw.kind),
                    "give the JSONPath of it in each page, e.g. \"$.next\"",
                )),
            }
        };
    let size = match (&raw.size_param, raw.size) {
        (Some(param), Some(size)) if size > 0 => Some((param.clone(), size)),
        (None, None) => None,
        _ => {
            return Err(cx.err(
                &key("size"),
                "size_param and size go together, and size is above 0",
                "write both, e.g. size_param = \"limit\" and size = 100, or neither",
            ));
        }
    };
    let allowed: &[&str] = match raw.kind.as_str() {
        "none" => &[],
        "page" => &["param", "first_page", "size_param", "size", "total_pages"],
        "cursor" => &["param", "size_param", "size", "has_more", "next_cursor"],
        "next_url" => &["next_url"],
        other => {
            return Err(cx.err(
                &key("type"),
                format!("{other:?} is not a kind of pagination"),
                "use \"none\", \"page\" (page numbers), \"cursor\" (has_more + next_cursor) or \"next_url\"",
            ));
        }
    };
    let set = [
        ("param", raw.param.is_some()),
        ("first_page", raw.first_page.is_some()),
        ("size_param", raw.size_param.is_some()),
        ("size", raw.size.is_some()),
        ("total_pages", raw.total_pages.is_some()),
        ("has_more", raw.has_more.is_some()),
        ("next_cursor", raw.next_cursor.is_some()),
        ("next_url", raw.next_url.is_some()),
    ];
    if let Some((k, _)) = set.iter().find(|(k, on)| *on && !allowed.contains(k)) {
        return Err(cx.err(
            &key(k),
            format!("`{k}` does not apply to {:?} pagination", raw.kind),
            &format!(
                "remove it; {:?} pagination takes: {}",
                raw.kind,
                if allowed.is_empty() {
                    "nothing".to_string()
                } else {
                    allowed.join(", ")
                }
            ),
        ));
    }
    let param = |default: &str| raw.param.clone().unwrap_or_else(|| default.to_string());
    Ok(match raw.kind.as_str() {
        "none" => Pagination::None,
        "page" => {
            let total_pages = raw
                .total_pages
                .as_deref()
                .map(|t| json_path(cx, &key("total_pages"), t))
                .transpose()?;
            if total_pages.is_none() && metrics.iter().all(|m| m.items.is_none()) {
                return Err(cx.err(
                    &key("total_pages"),
                    "page pagination ends at total_pages or at a page with no items, and this endpoint has neither",
                    "give total_pages = \"$.<where the page count is>\", or `items` to a metric",
                ));
            }
            Pagination::Page {
                param: param("page"),
                first: raw.first_page.unwrap_or(1),
                size,
                total_pages,
            }
        }
        "cursor" => Pagination::Cursor {
            param: param("cursor"),
            size,
            has_more: path("has_more", &raw.has_more, Some("$.has_more"))?,
            next_cursor: path("next_cursor", &raw.next_cursor, Some("$.next_cursor"))?,
        },
        _ => Pagination::NextUrl {
            next_url: path("next_url", &raw.next_url, None)?,
        },
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

fn mapping(cx: &KindContext<'_, '_>, at: &str, raw: RawMapping) -> Result<Mapping, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let label_names: Vec<String> = raw.labels.keys().cloned().collect();
    let family = match metrics::pool_family(&raw.name) {
        Some(def) => {
            for (k, set) in [
                ("type", raw.kind.is_some()),
                ("help", raw.help.is_some()),
                ("unit", raw.unit.is_some()),
            ] {
                if set {
                    return Err(cx.err(
                        &key(k),
                        format!(
                            "{} is a family of the metric contract, whose {k} is fixed",
                            def.name
                        ),
                        "remove it; `type`, `help` and `unit` define new families only",
                    ));
                }
            }
            let mut wanted: Vec<&str> = def.labels.to_vec();
            wanted.sort_unstable();
            if wanted != label_names.iter().map(String::as_str).collect::<Vec<_>>() {
                return Err(cx.err(
                    &key("labels"),
                    format!(
                        "{} has the labels {}, and the mapping gives {}",
                        def.name,
                        def.labels.join(", "),
                        if label_names.is_empty() {
                            "none".to_string()
                        } else {
                            label_names.join(", ")
                        }
                    ),
                    "give exactly the family's labels (pool and source are added)",
                ));
            }
            def
        }
        None => new_family(cx, at, &raw, &label_names)?,
    };
    let mut labels = Vec::with_capacity(family.labels.len());
    for name in family.labels {
        let text = raw
            .labels
            .get(*name)
            .map(String::as_str)
            .unwrap_or_default();
        labels.push(if text.starts_with('$') {
            Label::Path(json_path(cx, &key(&format!("labels.{name}")), text)?)
        } else if !text.is_empty() && !text.chars().any(char::is_control) {
            Label::Fixed(text.to_string())
        } else {
            return Err(cx.err(
                &key(&format!("labels.{name}")),
                "an empty label value",
                "give a JSONPath (starting with $) or the value itself",
            ));
        });
    }
    let scale = raw.scale.unwrap_or(1.0);
    if !scale.is_finite() || scale == 0.0 {
        return Err(cx.err(
            &key("scale"),
            format!("{scale} is not a usable factor"),
            "write the factor to base units, e.g. 0.01 for cents, 1e12 for TH/s",
        ));
    }
    if raw.default.is_some() && raw.values.is_none() {
        return Err(cx.err(
            &key("default"),
            "`default` is the number of a word `values` does not list, and there is no `values`",
            "add values = { online = 1, offline = 0 }, or remove `default`",
        ));
    }
    if let Some((word, n)) = raw.values.iter().flatten().find(|(_, n)| !n.is_finite()) {
        return Err(cx.err(
            &key(&format!("values.{word}")),
            format!("{n} is not a number a metric can carry"),
            "map each word to a finite number",
        ));
    }
    Ok(Mapping {
        family,
        items: raw
            .items
            .as_deref()
            .map(|t| json_path(cx, &key("items"), t))
            .transpose()?,
        value: json_path(cx, &key("value"), &raw.value)?,
        scale,
        values: raw.values,
        default: raw.default,
        optional: raw.optional.unwrap_or(false),
        labels,
    })
}

/// A family the contract does not have: a `mining_` name in base units, of a declared type,
/// with help and its own labels.
fn new_family(
    cx: &KindContext<'_, '_>,
    at: &str,
    raw: &RawMapping,
    labels: &[String],
) -> Result<&'static MetricDef, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let name = raw.name.as_str();
    let fix_name = "name it mining_<what>[_<unit>][_total] in lower case, e.g. mining_payout_balance; or use a family of the contract (README, Metrics)";
    if !name.starts_with("mining_")
        || name.starts_with("mining_exporter_")
        || name.len() > 100
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(cx.err(
            &key("name"),
            format!("{name:?} is neither a family of the contract nor a new mining_ name"),
            fix_name,
        ));
    }
    let kind = match raw.kind.as_deref() {
        Some("gauge") => MetricKind::Gauge,
        Some("counter") => MetricKind::Counter,
        Some(other) => {
            return Err(cx.err(
                &key("type"),
                format!("{other:?} is not a metric type"),
                "use \"gauge\" (a value that goes up and down) or \"counter\" (a total that only grows)",
            ));
        }
        None => {
            return Err(cx.err(
                &key("type"),
                format!("{name} is a new family and has no type"),
                "add type = \"gauge\" or \"counter\"",
            ));
        }
    };
    match (kind, name.ends_with("_total")) {
        (MetricKind::Counter, false) => {
            return Err(cx.err(
                &key("name"),
                format!("{name} is a counter, and a counter's name ends in _total"),
                &format!("rename it {name}_total"),
            ));
        }
        (MetricKind::Gauge, true) => {
            return Err(cx.err(
                &key("name"),
                format!("{name} is a gauge, and _total is for counters"),
                "drop _total, or make it type = \"counter\"",
            ));
        }
        _ => {}
    }
    let stem = name.strip_suffix("_total").unwrap_or(name);
    if let Some((suffix, base)) = SCALED_UNITS.iter().find(|(s, _)| stem.ends_with(s)) {
        return Err(cx.err(
            &key("name"),
            format!(
                "{name} is in {}, not a base unit",
                suffix.trim_start_matches('_')
            ),
            &format!("name it in {base} and convert with `scale`"),
        ));
    }
    if let Some(unit) = &raw.unit {
        if !BASE_UNITS.contains(&unit.as_str()) {
            return Err(cx.err(
                &key("unit"),
                format!("{unit:?} is not a base unit"),
                &format!(
                    "use one of {} (convert with `scale`), or no unit",
                    BASE_UNITS.join(", ")
                ),
            ));
        }
        if !stem.ends_with(&format!("_{unit}")) {
            return Err(cx.err(
                &key("name"),
                format!("{name} does not end with its unit, _{unit}"),
                &format!(
                    "rename it to end in _{unit}{}",
                    if kind == MetricKind::Counter {
                        "_total"
                    } else {
                        ""
                    }
                ),
            ));
        }
    }
    let help = raw.help.as_deref().unwrap_or_default().trim();
    if help.is_empty() || help.len() > 300 || help.chars().any(char::is_control) {
        return Err(cx.err(
            &key("help"),
            format!("{name} is a new family and needs a help text of one line"),
            "add help = \"what the value is, and its unit\" (up to 300 characters)",
        ));
    }
    for label in labels {
        let valid = label
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
        if label.is_empty()
            || !valid
            || label.starts_with("__")
            || label == "pool"
            || label == "source"
        {
            return Err(cx.err(
                &key(&format!("labels.{label}")),
                format!("{label:?} cannot be a label name here"),
                "use letters, digits and '_' (not first a digit, not __); pool and source are added to every series",
            ));
        }
    }
    let help = format!("{help} Read from the API at the last successful poll.");
    Ok(metrics::defined_family(name, &help, kind, labels))
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
    fn kind(&self) -> &'static str {
        KIND
    }

    fn pool(&self) -> &'static str {
        self.pool
    }

    fn default_base_url(&self) -> Option<&'static str> {
        None
    }

    fn default_interval(&self) -> Duration {
        Duration::from_secs(60)
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

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same_as(&self, other: &dyn KindSettings) -> bool {
        same_settings(self, other)
    }
}
