//! One `[[sources]]` block: which kind it is, which of its keys are shared and which the
//! kind's, and the shared ones read and checked. The kind reads its own through `kinds`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::auth::TokenPlacement;
use super::toml_errors::{deserialize_keys, error_on_key, line_of};
use super::{
    BudgetConfig, HttpSettings, KindContext, Loader, MIN_INTERVAL, RawShared, SHARED_SOURCE_KEYS,
    SourceConfig, SourceKinds, Trigger, source_key, valid_name,
};
use crate::error::ConfigError;

impl Loader<'_> {
    /// Which kind a block is, checked against the kinds there are.
    fn kind_of(
        &self,
        i: usize,
        block: &BTreeMap<String, toml::Spanned<toml::Value>>,
        lines: &BTreeMap<String, usize>,
        kinds: &dyn SourceKinds,
    ) -> Result<String, ConfigError> {
        let names = kinds.names();
        let listed = names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        match block.get("kind").map(|v| v.get_ref()) {
            Some(toml::Value::String(kind)) if names.contains(&kind.as_str()) => Ok(kind.clone()),
            Some(toml::Value::String(kind)) => Err(error_on_key(
                self.file,
                "kind",
                lines,
                format!("unknown variant `{kind}`, expected one of {listed}"),
            )),
            Some(_) => Err(error_on_key(
                self.file,
                "kind",
                lines,
                format!("the kind is not a string; expected one of {listed}"),
            )),
            None => Err(self.err(
                format!("sources[{i}]"),
                "missing field `kind`",
                "add the key; config.example.toml documents every key",
            )),
        }
    }

    pub(super) fn source(
        &mut self,
        i: usize,
        block: BTreeMap<String, toml::Spanned<toml::Value>>,
        budgets: &BTreeMap<String, BudgetConfig>,
        kinds: &dyn SourceKinds,
    ) -> Result<SourceConfig, ConfigError> {
        let lines: BTreeMap<String, usize> = block
            .iter()
            .map(|(key, value)| (key.clone(), line_of(self.text, value.span().start)))
            .collect();
        let kind = self.kind_of(i, &block, &lines, kinds)?;
        let own_keys = kinds.keys(&kind).unwrap_or_default();
        let name = block
            .get("name")
            .and_then(|v| v.get_ref().as_str())
            .unwrap_or_default()
            .to_string();
        let mut shared = toml::Table::new();
        let mut own = toml::Table::new();
        for (key, value) in block {
            let value = value.into_inner();
            if SHARED_SOURCE_KEYS.contains(&key.as_str()) {
                shared.insert(key, value);
            } else if own_keys.contains(&key.as_str()) {
                own.insert(key, value);
            } else if kinds
                .names()
                .into_iter()
                .any(|k| kinds.keys(k).unwrap_or_default().contains(&key.as_str()))
            {
                return Err(self.err(
                    source_key(i, &name, &key),
                    format!("`{key}` does not apply to {kind} sources"),
                    &format!(
                        "remove it; the keys only some kinds take are, for {kind}: {}",
                        describe_keys(own_keys)
                    ),
                ));
            } else {
                let expected: Vec<String> = SHARED_SOURCE_KEYS
                    .iter()
                    .chain(own_keys)
                    .map(|k| format!("`{k}`"))
                    .collect();
                return Err(error_on_key(
                    self.file,
                    &key,
                    &lines,
                    format!(
                        "unknown field `{key}`, expected one of {}",
                        expected.join(", ")
                    ),
                ));
            }
        }
        let raw: RawShared = deserialize_keys(self.file, self.text, &shared, &lines)?;

        let at = |key: &str| format!("sources[{i}].{key}");
        if !valid_name(&raw.name) {
            return Err(self.err(
                at("name"),
                format!("{:?} is not a valid source name", raw.name),
                "use letters, digits, '_', '-' and '.', up to 64 characters",
            ));
        }
        let mut cx = KindContext {
            loader: self,
            index: i,
            name: raw.name.clone(),
            keys: own,
            lines,
        };
        let settings = kinds.parse(&kind, &mut cx)?;
        let at = |key: &str| source_key(i, &raw.name, key);

        let base_url = match (raw.base_url.as_deref(), settings.defaults().base_url) {
            (Some(url), _) | (None, Some(url)) => url.trim_end_matches('/').to_string(),
            (None, None) => {
                return Err(self.err(
                    at("base_url"),
                    format!("{kind} sources need `base_url`"),
                    "write the API's root, e.g. \"https://api.example.com\"",
                ));
            }
        };
        match reqwest::Url::parse(&base_url) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.username().is_empty()
                    && url.password().is_none()
                    && url.query().is_none() =>
            {
                if url.scheme() == "http" && !is_loopback(&url) {
                    self.warnings.push(format!(
                        "{}: {}: {base_url} is plain http to another machine: the token travels in clear text; use https",
                        self.file,
                        at("base_url")
                    ));
                }
            }
            _ => {
                return Err(self.err(
                    at("base_url"),
                    "not an http(s) URL without credentials or query string",
                    "write the API's root, e.g. \"https://api.ultimate-proxy.com\"; the token goes in token_env or token_file",
                ));
            }
        }

        let (token, token_origin) = self.secret(
            &at,
            "token",
            raw.token_env.as_deref(),
            raw.token_file.as_ref(),
        )?;
        // A token a header cannot carry would fail every request as `transport`, forever.
        if let Some(token) = &token {
            let in_header = !matches!(settings.auth().token, TokenPlacement::Query(_));
            if in_header && reqwest::header::HeaderValue::from_str(token.expose()).is_err() {
                let key = if raw.token_env.is_some() {
                    "token_env"
                } else {
                    "token_file"
                };
                return Err(self.err(
                    at(key),
                    "the token holds characters an HTTP header cannot carry",
                    "copy the token again without control characters or line breaks inside it",
                ));
            }
        }

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
            (None, None) => Trigger::Every(settings.defaults().interval),
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
        if let Some(n) = raw.max_poll_bytes {
            if n < http.max_response_bytes {
                return Err(self.err(
                    at("max_poll_bytes"),
                    format!(
                        "{n} bytes is less than one answer may be (max_response_bytes = {})",
                        http.max_response_bytes
                    ),
                    "use at least max_response_bytes (the default is 256 MiB)",
                ));
            }
            http.max_poll_bytes = n;
        } else {
            http.max_poll_bytes = http.max_poll_bytes.max(http.max_response_bytes);
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

        if raw.max_workers == Some(0) {
            return Err(self.err(
                at("max_workers"),
                "0 workers is not a limit",
                "write at least 1, or worker_series = \"none\" for no per-worker series",
            ));
        }

        Ok(SourceConfig {
            name: raw.name,
            base_url,
            token,
            token_origin,
            trigger,
            // Filled in by assign_default_budgets when not configured.
            budget: raw.budget.unwrap_or_default(),
            host_budget: None,
            http,
            worker_series: raw.worker_series.unwrap_or_default(),
            max_workers: raw.max_workers,
            settings: settings.into(),
        })
    }
}

/// Whether `url` names this machine: a token sent there in plain http stays on it.
fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn describe_keys(keys: &[&str]) -> String {
    if keys.is_empty() {
        "none".to_string()
    } else {
        keys.join(", ")
    }
}

fn validate_cron(expr: &str) -> Result<(), String> {
    tokio_cron_scheduler::Job::new_async(expr, |_, _| Box::pin(async {}))
        .map(|_| ())
        .map_err(|_| format!("{expr:?} is not a valid cron expression"))
}
