//! TOML -> typed, validated configuration: the parts every source shares (server, budgets,
//! secrets, schedules, HTTP settings). Each kind of source reads its own keys beside its code
//! in `sources/`, through `kind::KindContext`; nothing here names a kind.
//! Secrets come from the environment or a file, never from the TOML itself, and no error
//! message built here ever contains a secret's value.

pub mod auth;
mod budgets;
pub mod kind;
mod secrets;
mod shared_secrets;
mod source_block;
mod toml_errors;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::secret::Secret;
pub use kind::{KindContext, KindDefaults, KindSettings, Settings, SourceKinds};
pub use shared_secrets::shared_secrets;
use toml_errors::toml_error;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9898";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_RETRIES: usize = 3;
const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);
const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// About 300,000 workers' worth of pages: past any farm a poll serves well, far below what
/// 1000 pages at the response cap would be.
const DEFAULT_MAX_POLL_BYTES: usize = 256 * 1024 * 1024;
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The keys every kind of source takes; the rest of a block belongs to its kind.
pub const SHARED_SOURCE_KEYS: &[&str] = &[
    "kind",
    "name",
    "base_url",
    "token_env",
    "token_file",
    "interval",
    "schedule",
    "budget",
    "timeout",
    "max_retries",
    "retry_backoff",
    "max_response_bytes",
    "max_poll_bytes",
    "worker_series",
    "max_workers",
];

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
    pub name: String,
    pub base_url: String,
    /// `None` only when loaded with `SecretMode::WarnIfMissing` and the token is unreadable.
    pub token: Option<Secret>,
    /// Where the token comes from, safe to print: `env UP_API_KEY` or `file /run/secrets/up`.
    pub token_origin: String,
    pub trigger: Trigger,
    pub budget: String,
    /// The budget of the host `base_url` names, when `[hosts."<host>"]` gives one: every
    /// source calling that host shares it, whatever its token.
    pub host_budget: Option<String>,
    pub http: HttpSettings,
    /// Which per-worker series the source exports.
    pub worker_series: WorkerSeries,
    /// At most this many workers get series; the rest count only in the account totals.
    pub max_workers: Option<usize>,
    /// What the source's kind read from its own keys.
    pub settings: Settings,
}

impl SourceConfig {
    /// The `kind` in the config.
    pub fn kind(&self) -> &'static str {
        self.settings.defaults().kind
    }

    /// The `pool` label of the source's series.
    pub fn pool(&self) -> &'static str {
        self.settings.defaults().pool
    }

    /// The host `base_url` names, lower case.
    pub fn host(&self) -> Option<String> {
        reqwest::Url::parse(&self.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    }

    /// Whether `other` sends the same secret to the same host, whatever its kind or name:
    /// the API counts the two as one client, so they share one budget. Unreadable secrets
    /// (`check` without them) compare by where they would come from.
    pub fn same_token_as(&self, other: &SourceConfig) -> bool {
        self.reads_same_token(other) && self.host() == other.host()
    }

    /// Whether `other` reads the same token, whatever host it sends it to: the same value
    /// where both were read, the same origin (`env X`, `file /path`) where they were not, as
    /// when `check` runs without them.
    pub fn reads_same_token(&self, other: &SourceConfig) -> bool {
        match (&self.token, &other.token) {
            (Some(a), Some(b)) => a == b,
            _ => self.token_origin == other.token_origin,
        }
    }
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub max_retries: usize,
    pub retry_backoff: Duration,
    pub max_backoff: Duration,
    pub max_response_bytes: usize,
    /// What all the answers of one poll may add up to: a thousand pages at the response cap
    /// each would otherwise be gigabytes.
    pub max_poll_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_backoff: DEFAULT_RETRY_BACKOFF,
            max_backoff: MAX_RETRY_BACKOFF,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_poll_bytes: DEFAULT_MAX_POLL_BYTES,
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

/// The longest window a budget may have.
pub const MAX_WINDOW: Duration = Duration::from_secs(31 * 86_400);

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
        // No pool counts in windows under a second, and a window is a span the exporter
        // keeps sends for: a month is already more than any pool publishes.
        if per < Duration::from_secs(1) {
            return Err(format!(
                "{s:?}: a window must be at least one second long (write \"5/1s\" for 5 a second)"
            ));
        }
        if per > MAX_WINDOW {
            return Err(format!("{s:?}: a window may be at most 31 days long"));
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
    /// Each block as written, with where each value starts in the file: the shared keys and
    /// the kind's are told apart only once the kind is known.
    #[serde(default)]
    sources: Vec<BTreeMap<String, toml::Spanned<toml::Value>>>,
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

/// The keys of a source block that every kind takes (`SHARED_SOURCE_KEYS`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShared {
    #[allow(dead_code)]
    kind: String,
    name: String,
    base_url: Option<String>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    interval: Option<String>,
    schedule: Option<String>,
    budget: Option<String>,
    timeout: Option<String>,
    max_retries: Option<usize>,
    retry_backoff: Option<String>,
    max_response_bytes: Option<usize>,
    max_poll_bytes: Option<usize>,
    worker_series: Option<WorkerSeries>,
    max_workers: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    limits: Vec<String>,
    target_utilization: Option<f64>,
}

impl Config {
    /// Reads `path`; `kinds` reads each source's own keys.
    pub fn load(
        path: &Path,
        mode: SecretMode,
        kinds: &dyn SourceKinds,
    ) -> Result<Config, ConfigError> {
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
        Config::parse(&text, &file, base_dir, mode, kinds)
    }

    /// Parses `text` as if read from `file`; relative `token_file` paths resolve against `base_dir`.
    pub fn parse(
        text: &str,
        file: &str,
        base_dir: &Path,
        mode: SecretMode,
        kinds: &dyn SourceKinds,
    ) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        secrets::reject_inline_secrets(file, &table)?;
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        Loader {
            file,
            text,
            base_dir,
            mode,
            warnings: Vec::new(),
            unreadable: Vec::new(),
        }
        .validate(raw, kinds)
    }
}

/// How an error names `key` of the source block `index` named `name`:
/// `sources[2].currency (source "lux")`.
fn source_key(index: usize, name: &str, key: &str) -> String {
    format!("sources[{index}].{key} (source {name:?})")
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The state of one load: where errors point, and what it gathered on the way.
pub(crate) struct Loader<'a> {
    file: &'a str,
    text: &'a str,
    base_dir: &'a Path,
    mode: SecretMode,
    warnings: Vec<String>,
    /// (key, problem) of every secret that cannot be read, so `run` names them all at once.
    unreadable: Vec<(String, String)>,
}

impl Loader<'_> {
    fn err(&self, key: impl Into<String>, problem: impl Into<String>, fix: &str) -> ConfigError {
        ConfigError::new(self.file, key, problem, fix)
    }

    fn validate(mut self, raw: RawConfig, kinds: &dyn SourceKinds) -> Result<Config, ConfigError> {
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
        let hosts = self.host_budgets(&raw.hosts, target)?;

        if raw.sources.is_empty() {
            return Err(self.err(
                "sources",
                "no [[sources]] are configured",
                "add at least one [[sources]] block; config.example.toml shows one per pool",
            ));
        }
        let mut sources: Vec<SourceConfig> = Vec::with_capacity(raw.sources.len());
        for (i, block) in raw.sources.into_iter().enumerate() {
            let source = self.source(i, block, &budgets, kinds)?;
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
        self.refuse_unreadable_secrets()?;
        kinds
            .check_together(&sources)
            .map_err(|(i, problem, fix)| {
                let name = sources.get(i).map(|s| s.name.as_str()).unwrap_or_default();
                self.err(format!("sources[{i}] (source {name:?})"), problem, &fix)
            })?;
        self.assign_default_budgets(&mut sources, &mut budgets, target)?;
        for name in budgets.keys() {
            if !sources.iter().any(|s| &s.budget == name) {
                self.warnings.push(format!(
                    "{}: budgets.{name} is not used by any source",
                    self.file
                ));
            }
        }
        self.share_host_budgets(&mut sources, hosts, &mut budgets);
        Ok(Config {
            file: self.file.to_string(),
            listen,
            sources,
            budgets,
            warnings: self.warnings,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_windows_parse_and_print() {
        let w: RateWindow = "10/1m".parse().unwrap();
        assert_eq!(w, RateWindow::new(10, Duration::from_secs(60)));
        let short = "10/500ms".parse::<RateWindow>().unwrap_err();
        assert!(short.contains("at least one second"), "{short}");
        let long = "10/400d".parse::<RateWindow>().unwrap_err();
        assert!(long.contains("at most 31 days"), "{long}");
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
}
