//! `--web.config.file`: TLS and basic auth on the HTTP face, in the web configuration format
//! of Prometheus' own exporters (exporter-toolkit):
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # PEM; relative paths are relative to this file
//!   key_file: server.key
//!   client_ca_file: ca.crt         # optional: verify client certificates against it
//!   client_auth_type: RequireAndVerifyClientCert
//!   min_version: TLS12             # and max_version, cipher_suites, curve_preferences,
//!                                  # prefer_server_cipher_suites
//! http_server_config:
//!   http2: true
//!   headers: {Strict-Transport-Security: max-age=31536000}
//! basic_auth_users:
//!   prometheus: $2y$10$...          # bcrypt hashes only
//! ```
//!
//! Basic auth guards every endpoint but `/-/healthy`, which stays open for liveness probes
//! that hold no credentials. TLS is rustls with ring, like the client. Plain and TLS serving
//! share one server (axum-server) with the same `ServeLimits`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::ConfigError;

mod basic_auth;
mod serving;
mod tls;

use basic_auth::bcrypt_cost;
pub use basic_auth::{Users, require_basic_auth};
pub use serving::{ServeLimits, serve};
use tls::server_tls;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
}

/// exporter-toolkit's `tls_server_config`: every key it documents is read, so a file shared
/// with other exporters loads; the few rustls cannot honour are refused, saying why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: String,
    key_file: String,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Option<Vec<String>>,
    #[serde(default)]
    curve_preferences: Option<Vec<String>>,
    #[serde(default)]
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    http2: Option<bool>,
}

/// The response headers exporter-toolkit lets a web config set; others are refused there
/// too, since they would change what the exporter's own answers mean.
const SETTABLE_HEADERS: &[&str] = &[
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

/// Who may read the pages, and how the connection is secured.
#[derive(Clone)]
pub struct WebConfig {
    tls: Option<Arc<rustls::ServerConfig>>,
    users: Option<Arc<Users>>,
    limits: ServeLimits,
    /// `http_server_config.headers`, added to every answer.
    headers: Arc<Vec<(axum::http::HeaderName, axum::http::HeaderValue)>>,
    /// `http_server_config.http2` (default true, as exporter-toolkit's).
    http2: bool,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.as_ref().map(|u| u.count()))
            .field("limits", &self.limits)
            .field("headers", &self.headers.len())
            .field("http2", &self.http2)
            .finish()
    }
}

impl WebConfig {
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    pub fn basic_auth(&self) -> bool {
        self.users.is_some()
    }

    /// The same, with other serving limits (tests shorten them).
    pub fn with_limits(mut self, limits: ServeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Reads and checks the file; every error names the file, the key and the fix.
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        let file = path.display().to_string();
        let err =
            |key: &str, problem: String, fix: &str| ConfigError::new(&file, key, problem, fix);
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(
                "(file)",
                format!("cannot read the web config file: {e}"),
                "pass the path of a readable YAML file with --web.config.file",
            )
        })?;
        let raw: RawWebConfig = serde_norway::from_str(&text).map_err(|e| {
            err(
                "(yaml)",
                e.to_string(),
                "the file takes tls_server_config (cert_file, key_file, client_ca_file, client_auth_type, min_version, max_version, cipher_suites, curve_preferences, prefer_server_cipher_suites), http_server_config (headers, http2) and basic_auth_users",
            )
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &str| -> PathBuf { base.join(p) };

        let http = raw.http_server_config.unwrap_or(RawHttp {
            headers: None,
            http2: None,
        });
        let http2 = http.http2.unwrap_or(true);
        let mut headers = Vec::new();
        for (name, value) in http.headers.unwrap_or_default() {
            let key = format!("http_server_config.headers.{name}");
            let Some(known) = SETTABLE_HEADERS
                .iter()
                .find(|h| h.eq_ignore_ascii_case(&name))
            else {
                return Err(err(
                    &key,
                    format!("{name} is not one of the headers a web config may set"),
                    &format!("set only {}", SETTABLE_HEADERS.join(", ")),
                ));
            };
            let value = axum::http::HeaderValue::from_str(&value).map_err(|_| {
                err(
                    &key,
                    "not a header value".into(),
                    "write the value in printable ASCII",
                )
            })?;
            let name = axum::http::HeaderName::from_bytes(known.as_bytes())
                .map_err(|_| err(&key, "not a header name".into(), "report this as a bug"))?;
            headers.push((name, value));
        }

        let tls = match raw.tls_server_config {
            None => None,
            Some(tls) => Some(Arc::new(server_tls(&tls, resolve, &err, http2)?)),
        };
        let users = match raw.basic_auth_users {
            None => None,
            Some(users) if users.is_empty() => None,
            Some(users) => {
                let mut costs = std::collections::BTreeSet::new();
                for (user, hash) in &users {
                    let key = format!("basic_auth_users.{user}");
                    if user.is_empty() || user.contains(':') {
                        return Err(err(
                            &key,
                            "a user name must be non-empty and hold no ':'".into(),
                            "rename the user",
                        ));
                    }
                    costs.insert(bcrypt_cost(hash).ok_or_else(|| {
                        err(
                            &key,
                            "not a bcrypt hash".into(),
                            "store a bcrypt hash of the password (e.g. htpasswd -nbBC 10 \"\" PASSWORD | tr -d ':\\n'), never the password itself",
                        )
                    })?);
                }
                if costs.len() > 1 {
                    tracing::warn!(
                        file = %file,
                        costs = ?costs,
                        "basic_auth_users: the hashes have different bcrypt costs, so the time a check takes tells the cheaper users apart; hash every password at one cost"
                    );
                }
                let users = Users::new(users).map_err(|e| {
                    err(
                        "basic_auth_users",
                        e.to_string(),
                        "use hashes of cost 4 to 31",
                    )
                })?;
                Some(Arc::new(users))
            }
        };
        Ok(WebConfig {
            tls,
            users,
            limits: ServeLimits::default(),
            headers: Arc::new(headers),
            http2,
        })
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            tls: None,
            users: None,
            limits: ServeLimits::default(),
            headers: Arc::default(),
            http2: true,
        }
    }
}
