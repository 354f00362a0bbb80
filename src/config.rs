//! TOML -> typed, validated configuration. Secrets come from the environment or a file, never
//! from the TOML itself, and no error message built here ever contains a secret's value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::secret::Secret;
use crate::sources::SourceKind;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9898";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_RETRIES: usize = 3;
const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The coins Luxor's summary and workers endpoints take (upstream-apis.md §1.4).
pub const CURRENCIES: &[&str] = &["BTC", "LTC_DOGE", "SC", "ZEC", "ZEN"];
pub const DEFAULT_CURRENCY: &str = "BTC";
/// Keys that would hold a secret inline; refused before anything else so no message echoes them.
const INLINE_SECRET_KEYS: &[&str] = &["token", "api_key", "apikey", "key", "secret", "password"];

/// How `load` treats a token it cannot read: `run` needs every token, `check` reports the gap
/// as a warning so that a config can be validated on a machine that does not hold the secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMode {
    Require,
    WarnIfMissing,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file the config came from, as the user named it: every error starts with it.
    pub file: String,
    pub listen: SocketAddr,
    pub sources: Vec<SourceConfig>,
    /// Every budget a source uses: the configured ones, the per-token defaults and the
    /// per-host ones (named `host:<host>`).
    pub budgets: BTreeMap<String, BudgetConfig>,
    /// Problems that do not stop `check` (a token this machine cannot read, an unused budget).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    pub kind: SourceKind,
    pub name: String,
    /// Value of the `account` label where the API itself names no account.
    pub account: String,
    pub base_url: String,
    /// `None` only when loaded with `SecretMode::WarnIfMissing` and the token is unreadable.
    pub token: Option<Secret>,
    /// Where the token comes from, safe to print: `env UP_API_KEY` or `file /run/secrets/up`.
    pub token_origin: String,
    pub trigger: Trigger,
    pub tier: Tier,
    pub budget: String,
    /// The budget of the host `base_url` names, when `[hosts."<host>"]` gives one: every
    /// source calling that host shares it, whatever its token.
    pub host_budget: Option<String>,
    pub http: HttpSettings,
    /// Luxor: the coin whose summary and workers are polled (`BTC` by default).
    pub currency: String,
    /// Luxor: the subaccounts to watch; empty with no `site_id` means every one listed.
    pub subaccounts: Vec<String>,
    /// Luxor: watch the subaccounts of this site instead of naming them.
    pub site_id: Option<String>,
    /// Which per-worker series the source exports.
    pub worker_series: WorkerSeries,
    /// At most this many workers get series; the rest count only in the account totals.
    pub max_workers: Option<usize>,
}

/// The per-worker series a source exports. A farm of 100,000 workers at six or more series
/// each is more than one scrape should carry; account totals are exported whatever this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerSeries {
    /// Every worker family the pool fills.
    #[default]
    All,
    /// The freshest hashrate and up/down only.
    Essential,
    /// No per-worker series.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Every(Duration),
    /// A six-field cron expression (with seconds), run by tokio-cron-scheduler.
    Cron(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Vip,
    NonVip,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Vip => "vip",
            Tier::NonVip => "non_vip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub max_retries: usize,
    pub retry_backoff: Duration,
    pub max_backoff: Duration,
    pub max_response_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            max_backoff: MAX_RETRY_BACKOFF,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    pub name: String,
    pub limits: Vec<RateWindow>,
    /// Where the limits come from, for `check`: "configured" or the vendor default used.
    pub origin: String,
    /// The share of the limits the poll plan fills; the rest is room for retries and for
    /// polls that cost more than the last ones did.
    pub target: f64,
}

/// The share of each budget the plan fills unless the config says otherwise.
pub const DEFAULT_TARGET_UTILIZATION: f64 = 0.85;

/// "COUNT/DURATION": at most `count` requests in any span of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub count: u32,
    pub per: Duration,
}

impl RateWindow {
    pub const fn new(count: u32, per: Duration) -> Self {
        RateWindow { count, per }
    }
}

impl fmt::Display for RateWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, humantime::format_duration(self.per))
    }
}

impl FromStr for RateWindow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (count, per) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not COUNT/DURATION"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: the count {count:?} is not a whole number"))?;
        let per = humantime::parse_duration(per.trim())
            .map_err(|e| format!("{s:?}: the duration {per:?} is not valid ({e})"))?;
        if count == 0 || per.is_zero() {
            return Err(format!("{s:?}: count and duration must both be above zero"));
        }
        Ok(RateWindow { count, per })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    target_utilization: Option<f64>,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    sources: Vec<RawSource>,
    #[serde(default)]
    budgets: BTreeMap<String, RawBudget>,
    #[serde(default)]
    hosts: BTreeMap<String, RawBudget>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: SourceKind,
    name: String,
    account: Option<String>,
    base_url: Option<String>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    interval: Option<String>,
    schedule: Option<String>,
    tier: Option<Tier>,
    budget: Option<String>,
    timeout: Option<String>,
    max_retries: Option<usize>,
    retry_backoff: Option<String>,
    max_response_bytes: Option<usize>,
    currency: Option<String>,
    subaccounts: Option<Vec<String>>,
    site_id: Option<String>,
    worker_series: Option<WorkerSeries>,
    max_workers: Option<usize>,
}

impl RawSource {
    /// The keys that only some kinds take, and whether this block sets them.
    fn kind_specific_keys(&self) -> [(&'static str, bool); 5] {
        [
            ("account", self.account.is_some()),
            ("tier", self.tier.is_some()),
            ("currency", self.currency.is_some()),
            ("subaccounts", self.subaccounts.is_some()),
            ("site_id", self.site_id.is_some()),
        ]
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    limits: Vec<String>,
    target_utilization: Option<f64>,
}

impl Config {
    pub fn load(path: &Path, mode: SecretMode) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                &file,
                "(file)",
                format!("cannot read the config file: {e}"),
                "pass the path of a readable TOML file with --config",
            )
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, &file, base_dir, mode)
    }

    /// Parses `text` as if read from `file`; relative `token_file` paths resolve against `base_dir`.
    pub fn parse(
        text: &str,
        file: &str,
        base_dir: &Path,
        mode: SecretMode,
    ) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        reject_inline_secrets(file, &table)?;
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        Validator {
            file,
            base_dir,
            mode,
            warnings: Vec::new(),
            unreadable: Vec::new(),
        }
        .validate(raw)
    }
}

fn reject_inline_secrets(file: &str, table: &toml::Table) -> Result<(), ConfigError> {
    let Some(toml::Value::Array(sources)) = table.get("sources") else {
        return Ok(());
    };
    for (i, source) in sources.iter().enumerate() {
        let Some(source) = source.as_table() else {
            continue;
        };
        if let Some(key) = INLINE_SECRET_KEYS.iter().find(|k| source.contains_key(**k)) {
            return Err(ConfigError::new(
                file,
                format!("sources[{i}].{key}"),
                "a token is never written inline in the config file",
                "remove the key; put the token in an environment variable and set \
                 token_env = \"VAR_NAME\", or in a file readable only by the exporter and set \
                 token_file = \"/path/to/file\"",
            ));
        }
    }
    Ok(())
}

/// Maps a TOML error to a ConfigError without quoting the offending line: the line could hold
/// a value we must not print.
fn toml_error(file: &str, text: &str, err: &toml::de::Error) -> ConfigError {
    let (key, line) = match err.span() {
        Some(span) => {
            let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("");
            (key_on_line(line), line_no)
        }
        None => ("(document)".to_string(), 0),
    };
    let message = err.message().trim().to_string();
    let fix = if message.contains("unknown field") {
        "remove the key or correct its spelling; config.example.toml documents every key"
    } else if message.contains("missing field") {
        "add the key; config.example.toml documents every key"
    } else if message.contains("unknown variant") {
        "use one of the values listed above"
    } else {
        "correct the TOML at that line; config.example.toml shows the expected form"
    };
    let key = if line > 0 {
        format!("line {line}, {key}")
    } else {
        key
    };
    ConfigError::new(file, key, message, fix)
}

/// The key or table header on a line, never its value.
fn key_on_line(line: &str) -> String {
    let trimmed = line.trim();
    if trimmed.starts_with('[') {
        return trimmed.split('#').next().unwrap_or("").trim().to_string();
    }
    match trimmed.split_once('=') {
        Some((key, _)) => format!("`{}`", key.trim()),
        None => "(this line)".to_string(),
    }
}

fn describe_keys(keys: &[&str]) -> String {
    if keys.is_empty() {
        "none".to_string()
    } else {
        keys.join(", ")
    }
}

/// A UUID's shape: 32 hex digits, dashes allowed.
fn valid_site_id(id: &str) -> bool {
    id.chars().filter(|c| c.is_ascii_hexdigit()).count() == 32
        && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// A DNS name or an IP address, as a URL's host: no scheme, port, path or credentials.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
        && !host.contains("://")
        && reqwest::Url::parse(&format!("http://{host}/"))
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|h| h == host.to_ascii_lowercase())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

struct Validator<'a> {
    file: &'a str,
    base_dir: &'a Path,
    mode: SecretMode,
    warnings: Vec<String>,
    /// (key, problem) of every token that cannot be read, so `run` names them all at once.
    unreadable: Vec<(String, String)>,
}

impl Validator<'_> {
    fn err(&self, key: impl Into<String>, problem: impl Into<String>, fix: &str) -> ConfigError {
        ConfigError::new(self.file, key, problem, fix)
    }

    fn validate(mut self, raw: RawConfig) -> Result<Config, ConfigError> {
        let listen = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen.parse().map_err(|_| {
            self.err(
                "server.listen",
                format!("{listen:?} is not an IP address with a port"),
                "write it like \"127.0.0.1:9898\" or \"0.0.0.0:9898\"",
            )
        })?;

        let target = match raw.target_utilization {
            Some(t) => self.target_utilization("target_utilization", t)?,
            None => DEFAULT_TARGET_UTILIZATION,
        };
        let mut budgets = BTreeMap::new();
        for (name, budget) in &raw.budgets {
            budgets.insert(
                name.clone(),
                self.configured_budget(&format!("budgets.{name}"), name, budget, target)?,
            );
        }
        let mut hosts = BTreeMap::new();
        for (host, budget) in &raw.hosts {
            let key = format!("hosts.{host:?}");
            if !valid_host(host) {
                return Err(self.err(
                    key,
                    format!("{host:?} is not a host name or address"),
                    "write the host alone, as base_url names it: no scheme, port or path, e.g. [hosts.\"api.example.com\"]",
                ));
            }
            let name = format!("host:{}", host.to_ascii_lowercase());
            hosts.insert(
                host.to_ascii_lowercase(),
                self.configured_budget(&key, &name, budget, target)?,
            );
        }

        if raw.sources.is_empty() {
            return Err(self.err(
                "sources",
                "no [[sources]] are configured",
                "add at least one [[sources]] block; config.example.toml shows one per pool",
            ));
        }
        let mut sources: Vec<SourceConfig> = Vec::with_capacity(raw.sources.len());
        for (i, raw_source) in raw.sources.into_iter().enumerate() {
            let source = self.source(i, raw_source, &budgets)?;
            if let Some(first) = sources.iter().position(|s| s.name == source.name) {
                return Err(self.err(
                    format!("sources[{i}].name"),
                    format!(
                        "the name {:?} is already used by sources[{first}]",
                        source.name
                    ),
                    "give every source a unique name: it becomes the `source` label",
                ));
            }
            sources.push(source);
        }
        self.refuse_unreadable_tokens()?;
        self.assign_default_budgets(&mut sources, &mut budgets, target)?;
        for name in budgets.keys() {
            if !sources.iter().any(|s| &s.budget == name) {
                self.warnings.push(format!(
                    "{}: budgets.{name} is not used by any source",
                    self.file
                ));
            }
        }
        for source in &mut sources {
            let host = reqwest::Url::parse(&source.base_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
            if let Some(budget) = host.and_then(|h| hosts.get(&h)) {
                source.host_budget = Some(budget.name.clone());
            }
        }
        for (host, budget) in hosts {
            if sources
                .iter()
                .any(|s| s.host_budget.as_ref() == Some(&budget.name))
            {
                budgets.insert(budget.name.clone(), budget);
            } else {
                self.warnings.push(format!(
                    "{}: hosts.{host:?} is not the host of any source's base_url",
                    self.file
                ));
            }
        }
        Ok(Config {
            file: self.file.to_string(),
            listen,
            sources,
            budgets,
            warnings: self.warnings,
        })
    }

    fn target_utilization(&self, key: &str, value: f64) -> Result<f64, ConfigError> {
        if (0.1..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(self.err(
                key,
                format!("{value} is not a share between 0.1 and 1"),
                "write the share of each budget the poll plan may fill, e.g. 0.85; the rest is room for retries",
            ))
        }
    }

    /// A `[budgets.NAME]` or `[hosts."HOST"]` table; `key` is how the error names it.
    fn configured_budget(
        &self,
        key: &str,
        name: &str,
        raw: &RawBudget,
        default_target: f64,
    ) -> Result<BudgetConfig, ConfigError> {
        if key.starts_with("budgets.") && !valid_name(name) {
            return Err(self.err(
                key,
                "a budget name may use letters, digits, '_', '-' and '.', up to 64 characters",
                "rename the budget and every `budget =` that names it",
            ));
        }
        if raw.limits.is_empty() {
            return Err(self.err(
                format!("{key}.limits"),
                "no limits given",
                "give one or more windows, e.g. limits = [\"100/1m\", \"1000/1h\"]",
            ));
        }
        let limits = raw
            .limits
            .iter()
            .enumerate()
            .map(|(i, l)| {
                l.parse::<RateWindow>().map_err(|problem| {
                    self.err(
                        format!("{key}.limits[{i}]"),
                        problem,
                        "write each window as \"COUNT/DURATION\", e.g. \"10/1m\" or \"1000/1h\"",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let target = match raw.target_utilization {
            Some(t) => self.target_utilization(&format!("{key}.target_utilization"), t)?,
            None => default_target,
        };
        Ok(BudgetConfig {
            name: name.to_string(),
            limits,
            origin: "configured".to_string(),
            target,
        })
    }

    fn duration(&self, key: &str, value: &str, min: Duration) -> Result<Duration, ConfigError> {
        let parsed = humantime::parse_duration(value).map_err(|e| {
            self.err(
                key,
                format!("{value:?} is not a duration ({e})"),
                "write a duration like \"60s\", \"5m\" or \"1h 30m\"",
            )
        })?;
        if parsed < min {
            return Err(self.err(
                key,
                format!(
                    "{value:?} is shorter than the minimum of {}",
                    humantime::format_duration(min)
                ),
                "use a longer duration",
            ));
        }
        Ok(parsed)
    }

    fn source(
        &mut self,
        i: usize,
        raw: RawSource,
        budgets: &BTreeMap<String, BudgetConfig>,
    ) -> Result<SourceConfig, ConfigError> {
        let at = |key: &str| format!("sources[{i}].{key}");
        if !valid_name(&raw.name) {
            return Err(self.err(
                at("name"),
                format!("{:?} is not a valid source name", raw.name),
                "use letters, digits, '_', '-' and '.', up to 64 characters",
            ));
        }
        let at = |key: &str| format!("sources[{i}].{key} (source {:?})", raw.name);
        let kind = raw.kind;
        let defaults = kind.defaults();
        for (key, set) in raw.kind_specific_keys() {
            if set && !defaults.keys.contains(&key) {
                return Err(self.err(
                    at(key),
                    format!("`{key}` does not apply to {} sources", defaults.pool),
                    &format!(
                        "remove it; the keys only some kinds take are, for {}: {}",
                        defaults.pool,
                        describe_keys(defaults.keys)
                    ),
                ));
            }
        }
        for key in defaults.required {
            if !raw.kind_specific_keys().contains(&(key, true)) {
                return Err(self.err(
                    at(key),
                    format!("{} sources need `{key}`", defaults.pool),
                    "add it; config.example.toml shows a block for every pool",
                ));
            }
        }
        let currency = self.currency(&at, raw.currency.as_deref())?;
        let subaccounts = self.subaccounts(&at, &raw)?;

        let base_url = raw
            .base_url
            .as_deref()
            .unwrap_or(kind.default_base_url())
            .trim_end_matches('/')
            .to_string();
        match reqwest::Url::parse(&base_url) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.username().is_empty()
                    && url.password().is_none()
                    && url.query().is_none() => {}
            _ => {
                return Err(self.err(
                    at("base_url"),
                    "not an http(s) URL without credentials or query string",
                    "write the API's root, e.g. \"https://api.ultimate-proxy.com\"; the token goes in token_env or token_file",
                ));
            }
        }

        let (token, token_origin) = self.token(&at, &raw)?;

        let trigger = match (&raw.interval, &raw.schedule) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    at("schedule"),
                    "both interval and schedule are set",
                    "keep one: interval = \"60s\" polls at a fixed pace, schedule = \"0 * * * * *\" on a cron schedule",
                ));
            }
            (Some(interval), None) => {
                Trigger::Every(self.duration(&at("interval"), interval, MIN_INTERVAL)?)
            }
            (None, Some(expr)) => {
                validate_cron(expr).map_err(|problem| {
                    self.err(
                        at("schedule"),
                        problem,
                        "write six fields with seconds first, e.g. \"0 */5 * * * *\" for every five minutes",
                    )
                })?;
                Trigger::Cron(expr.clone())
            }
            (None, None) => Trigger::Every(kind.default_interval()),
        };

        let mut http = HttpSettings::default();
        if let Some(t) = &raw.timeout {
            http.timeout = self.duration(&at("timeout"), t, Duration::from_millis(1))?;
        }
        if let Some(b) = &raw.retry_backoff {
            http.retry_backoff =
                self.duration(&at("retry_backoff"), b, Duration::from_millis(1))?;
        }
        if let Some(n) = raw.max_retries {
            if n > 10 {
                return Err(self.err(
                    at("max_retries"),
                    format!("{n} retries would hammer a pool that is already failing"),
                    "use 10 or fewer (the default is 3)",
                ));
            }
            http.max_retries = n;
        }
        if let Some(n) = raw.max_response_bytes {
            if n < 1024 {
                return Err(self.err(
                    at("max_response_bytes"),
                    format!("{n} bytes is too small for any API response"),
                    "use at least 1024 (the default is 16 MiB)",
                ));
            }
            http.max_response_bytes = n;
        }

        if let Some(budget) = &raw.budget {
            if !budgets.contains_key(budget) {
                return Err(self.err(
                    at("budget"),
                    format!("no [budgets.{budget}] is defined"),
                    "define it, e.g. [budgets.NAME] limits = [\"10/1m\"], or remove `budget` to use the pool's default",
                ));
            }
        }
        let account = raw.account.clone().unwrap_or_else(|| raw.name.clone());
        if account.trim().is_empty() || account.chars().any(char::is_control) {
            return Err(self.err(
                at("account"),
                "the account is empty or holds control characters",
                "write the account name as the pool shows it",
            ));
        }

        if raw.max_workers == Some(0) {
            return Err(self.err(
                at("max_workers"),
                "0 workers is not a limit",
                "write at least 1, or worker_series = \"none\" for no per-worker series",
            ));
        }

        Ok(SourceConfig {
            kind,
            name: raw.name,
            account,
            base_url,
            token,
            token_origin,
            trigger,
            tier: raw.tier.unwrap_or(Tier::NonVip),
            // Filled in by assign_default_budgets when not configured.
            budget: raw.budget.unwrap_or_default(),
            host_budget: None,
            http,
            currency,
            subaccounts,
            site_id: raw.site_id,
            worker_series: raw.worker_series.unwrap_or_default(),
            max_workers: raw.max_workers,
        })
    }

    fn currency(
        &self,
        at: &dyn Fn(&str) -> String,
        currency: Option<&str>,
    ) -> Result<String, ConfigError> {
        let Some(currency) = currency else {
            return Ok(DEFAULT_CURRENCY.to_string());
        };
        if !CURRENCIES.contains(&currency) {
            return Err(self.err(
                at("currency"),
                format!("{currency:?} is not a currency the pool's summary and workers take"),
                &format!("use one of {}", CURRENCIES.join(", ")),
            ));
        }
        Ok(currency.to_string())
    }

    /// `subaccounts` and `site_id` select what a Luxor source watches: one or the other.
    fn subaccounts(
        &self,
        at: &dyn Fn(&str) -> String,
        raw: &RawSource,
    ) -> Result<Vec<String>, ConfigError> {
        if raw.subaccounts.is_some() && raw.site_id.is_some() {
            return Err(self.err(
                at("site_id"),
                "both subaccounts and site_id are set",
                "keep one: subaccounts names them, site_id watches every subaccount of a site",
            ));
        }
        if raw.site_id.as_deref().is_some_and(|s| !valid_site_id(s)) {
            return Err(self.err(
                at("site_id"),
                "not a site id",
                "copy the site's UUID from the pool's UI, e.g. \"b0a5fad8-4f1c-4e6a-9a8e-0c1d2e3f4a5b\"",
            ));
        }
        let names = raw.subaccounts.clone().unwrap_or_default();
        if raw.subaccounts.is_some() && names.is_empty() {
            return Err(self.err(
                at("subaccounts"),
                "the list is empty",
                "name at least one subaccount, or remove the key to watch every subaccount the workspace lists",
            ));
        }
        for (n, name) in names.iter().enumerate() {
            // The API takes the names comma-joined in one query parameter.
            if name.trim().is_empty() || name.contains(',') || name.chars().any(char::is_control) {
                return Err(self.err(
                    at(&format!("subaccounts[{n}]")),
                    format!("{name:?} is not a subaccount name"),
                    "write each name as the pool shows it, without commas",
                ));
            }
            if names[..n].contains(name) {
                return Err(self.err(
                    at(&format!("subaccounts[{n}]")),
                    format!("{name:?} is listed twice"),
                    "list each subaccount once",
                ));
            }
        }
        Ok(names)
    }

    fn token(
        &mut self,
        at: &dyn Fn(&str) -> String,
        raw: &RawSource,
    ) -> Result<(Option<Secret>, String), ConfigError> {
        let (value, origin, key) = match (&raw.token_env, &raw.token_file) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    at("token_file"),
                    "both token_env and token_file are set",
                    "keep one of them",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    at("token_env"),
                    "no token configured",
                    "set token_env = \"VAR_NAME\" (an environment variable holding the token) or token_file = \"/path/to/file\"",
                ));
            }
            (Some(var), None) => {
                let value = match std::env::var(var) {
                    Ok(v) => Ok(v),
                    Err(std::env::VarError::NotPresent) => {
                        Err(format!("the environment variable {var} is not set"))
                    }
                    Err(std::env::VarError::NotUnicode(_)) => {
                        Err(format!("the environment variable {var} is not valid UTF-8"))
                    }
                };
                (value, format!("env {var}"), at("token_env"))
            }
            (None, Some(path)) => {
                let full = self.base_dir.join(path);
                let value = std::fs::read_to_string(&full)
                    .map_err(|e| format!("cannot read the token file {}: {e}", full.display()));
                if value.is_ok() {
                    self.warn_if_shared(&at("token_file"), &full);
                }
                (value, format!("file {}", full.display()), at("token_file"))
            }
        };
        let value = value.and_then(|v| {
            let v = v.trim().to_string();
            if v.is_empty() {
                Err(format!("the token from {origin} is empty"))
            } else {
                Ok(v)
            }
        });
        match value {
            Ok(v) => Ok((Some(Secret::new(v)), origin)),
            Err(problem) => {
                match self.mode {
                    // Refused once every source is read, with every unreadable token named.
                    SecretMode::Require => self.unreadable.push((key, problem)),
                    SecretMode::WarnIfMissing => self.warnings.push(format!(
                        "{}: {key}: {problem}; `run` will refuse to start until it is readable",
                        self.file
                    )),
                }
                Ok((None, origin))
            }
        }
    }

    /// A token file that group or others may read is a secret every local user can see.
    #[cfg(unix)]
    fn warn_if_shared(&mut self, key: &str, path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(mode) = std::fs::metadata(path).map(|m| m.permissions().mode()) else {
            return;
        };
        if mode & 0o077 != 0 {
            self.warnings.push(format!(
                "{}: {key}: the token file {} is readable by group or others (mode {:o}); make it readable by the exporter's user only: chmod 600 {}",
                self.file,
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }

    #[cfg(not(unix))]
    fn warn_if_shared(&mut self, _key: &str, _path: &Path) {}

    /// One error naming every token that cannot be read, so an operator fixes them in one go
    /// instead of one restart per secret.
    fn refuse_unreadable_tokens(&self) -> Result<(), ConfigError> {
        let fix = "export the variable (or create the file) before starting, or point the key at where the token is";
        match self.unreadable.as_slice() {
            [] => Ok(()),
            [(key, problem)] => Err(self.err(key.clone(), problem.clone(), fix)),
            all => {
                let keys: Vec<&str> = all.iter().map(|(key, _)| key.as_str()).collect();
                let problems: String = all
                    .iter()
                    .map(|(key, problem)| format!("\n    {key}: {problem}"))
                    .collect();
                Err(self.err(
                    keys.join(", "),
                    format!("{} tokens cannot be read:{problems}", all.len()),
                    fix,
                ))
            }
        }
    }

    /// Sources that resolve to the same token share one budget, because pools count requests
    /// per token or per account, not per config block.
    fn assign_default_budgets(
        &self,
        sources: &mut [SourceConfig],
        budgets: &mut BTreeMap<String, BudgetConfig>,
        target: f64,
    ) -> Result<(), ConfigError> {
        for i in 0..sources.len() {
            let same_token = |other: &SourceConfig| {
                other.kind == sources[i].kind
                    && match (&other.token, &sources[i].token) {
                        (Some(a), Some(b)) => a == b,
                        _ => other.token_origin == sources[i].token_origin,
                    }
            };
            let peers: Vec<usize> = (0..sources.len())
                .filter(|&j| same_token(&sources[j]))
                .collect();
            let named: Vec<&str> = peers
                .iter()
                .map(|&j| sources[j].budget.as_str())
                .filter(|b| !b.is_empty())
                .collect();
            if let Some(other) = named.iter().find(|b| **b != named[0]) {
                return Err(self.err(
                    format!("sources[{i}].budget (source {:?})", sources[i].name),
                    format!(
                        "sources with the same token name different budgets ({:?} and {:?}), but the pool counts their requests together",
                        named[0], other
                    ),
                    "give every source that uses this token the same `budget`",
                ));
            }
            if let Some(&tier) = peers
                .iter()
                .map(|&j| &sources[j].tier)
                .find(|t| **t != sources[i].tier)
            {
                return Err(self.err(
                    format!("sources[{i}].tier (source {:?})", sources[i].name),
                    format!(
                        "sources with the same token disagree on the tier ({} and {})",
                        sources[i].tier.as_str(),
                        tier.as_str()
                    ),
                    "set the same tier on every source that uses this token",
                ));
            }
            if !sources[i].budget.is_empty() {
                continue;
            }
            let budget = match named.first() {
                Some(name) => name.to_string(),
                None => {
                    let first = &sources[peers[0]];
                    let name = format!("auto:{}", first.name);
                    budgets.entry(name.clone()).or_insert_with(|| BudgetConfig {
                        name: name.clone(),
                        limits: first.kind.default_limits(first.tier),
                        origin: first.kind.default_limits_origin(first.tier),
                        target,
                    });
                    name
                }
            };
            sources[i].budget = budget;
        }
        Ok(())
    }
}

fn validate_cron(expr: &str) -> Result<(), String> {
    tokio_cron_scheduler::Job::new_async(expr, |_, _| Box::pin(async {}))
        .map(|_| ())
        .map_err(|_| format!("{expr:?} is not a valid cron expression"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_windows_parse_and_print() {
        let w: RateWindow = "10/1m".parse().unwrap();
        assert_eq!(w, RateWindow::new(10, Duration::from_secs(60)));
        assert_eq!(w.to_string(), "10/1m");
        assert!("0/1m".parse::<RateWindow>().is_err());
        assert!("10".parse::<RateWindow>().is_err());
        assert!("ten/1m".parse::<RateWindow>().is_err());
        assert!("10/soon".parse::<RateWindow>().is_err());
    }

    #[test]
    fn names_are_restricted_to_label_friendly_characters() {
        assert!(valid_name("proxy-main.eu_1"));
        assert!(!valid_name(""));
        assert!(!valid_name("-leading"));
        assert!(!valid_name("has space"));
        assert!(!valid_name(&"x".repeat(65)));
    }

    #[test]
    fn key_on_line_never_returns_the_value() {
        assert_eq!(key_on_line("  tokn = \"s3cr3t\""), "`tokn`");
        assert_eq!(key_on_line("[[sources]] # x"), "[[sources]]");
    }
}
