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
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ConfigError;

/// The path that answers without credentials.
const OPEN_PATH: &str = "/-/healthy";

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

/// What no client can stretch: how long a connection may take to send its request's
/// headers (a half-sent request otherwise holds a connection, and shutdown, forever), how
/// many connections are open at once (each is a file descriptor), and how long shutdown
/// waits for requests in flight before it closes what is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.as_ref().map(|u| u.hashes.len()))
            .field("limits", &self.limits)
            .field("headers", &self.headers.len())
            .field("http2", &self.http2)
            .finish()
    }
}

/// User names to bcrypt hashes, and a hash of the same cost that an unknown user is checked
/// against, so that the time taken does not tell which users exist.
pub struct Users {
    hashes: BTreeMap<String, String>,
    decoy: String,
    /// SHA-256 of "user:password" for each pair bcrypt has verified: Prometheus sends the
    /// same credentials every scrape, and a bcrypt check costs milliseconds of CPU on the
    /// blocking pool the polls use too (exporter-toolkit caches the same way). Unknown users
    /// and wrong passwords are never cached: they always pay the full check.
    verified: std::sync::Mutex<std::collections::BTreeSet<[u8; 32]>>,
    bcrypt_checks: std::sync::atomic::AtomicU64,
}

/// Verified credentials kept at most; past it the cache starts over.
const MOST_VERIFIED: usize = 64;

impl Users {
    /// `hashes` by user, with a decoy of `cost` for unknown users.
    pub fn new(hashes: BTreeMap<String, String>, cost: u32) -> Result<Users, bcrypt::BcryptError> {
        Ok(Users {
            hashes,
            decoy: bcrypt::hash("mining-exporter decoy", cost)?,
            verified: Default::default(),
            bcrypt_checks: Default::default(),
        })
    }

    /// How many bcrypt checks requests have cost so far.
    pub fn bcrypt_checks(&self) -> u64 {
        self.bcrypt_checks
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn key(user: &str, password: &str) -> [u8; 32] {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(user.as_bytes());
        context.update(b":");
        context.update(password.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(context.finish().as_ref());
        key
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `user` with `password` may read; bcrypt only for credentials not seen yet.
    pub fn allows(&self, user: &str, password: &str) -> bool {
        let key = Users::key(user, password);
        if self.verified().contains(&key) {
            return true;
        }
        self.bcrypt_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let known = self.hashes.get(user);
        let hash = known.unwrap_or(&self.decoy);
        let allowed = bcrypt::verify(password, hash).unwrap_or(false) && known.is_some();
        if allowed {
            let mut verified = self.verified();
            if verified.len() >= MOST_VERIFIED {
                verified.clear();
            }
            verified.insert(key);
        }
        allowed
    }

    /// Whether the credentials were verified before, without checking them.
    fn seen(&self, user: &str, password: &str) -> bool {
        self.verified().contains(&Users::key(user, password))
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
                let mut cost = None;
                for (user, hash) in &users {
                    let key = format!("basic_auth_users.{user}");
                    if user.is_empty() || user.contains(':') {
                        return Err(err(
                            &key,
                            "a user name must be non-empty and hold no ':'".into(),
                            "rename the user",
                        ));
                    }
                    cost = Some(bcrypt_cost(hash).ok_or_else(|| {
                        err(
                            &key,
                            "not a bcrypt hash".into(),
                            "store a bcrypt hash of the password (e.g. htpasswd -nbBC 10 \"\" PASSWORD | tr -d ':\\n'), never the password itself",
                        )
                    })?);
                }
                let users =
                    Users::new(users, cost.unwrap_or(bcrypt::DEFAULT_COST)).map_err(|e| {
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

/// A `min_version`/`max_version` value.
fn tls_version(
    key: &str,
    value: &str,
    err: &dyn Fn(&str, String, &str) -> ConfigError,
) -> Result<&'static rustls::SupportedProtocolVersion, ConfigError> {
    match value {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(err(
            key,
            format!(
                "{value}: rustls speaks TLS 1.2 and 1.3 only, and this exporter will not serve older ones"
            ),
            "use TLS12 or TLS13",
        )),
        other => Err(err(
            key,
            format!("{other:?} is not a TLS version"),
            "use TLS12 or TLS13",
        )),
    }
}

/// The ring provider cut to the configured cipher suites (TLS 1.2's; TLS 1.3's are kept, as
/// exporter-toolkit keeps them) and key-exchange groups, in the configured order.
fn tls_provider(
    tls: &RawTls,
    err: &dyn Fn(&str, String, &str) -> ConfigError,
) -> Result<rustls::crypto::CryptoProvider, ConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(wanted) = &tls.cipher_suites {
        let all = provider.cipher_suites.clone();
        let mut suites: Vec<rustls::SupportedCipherSuite> = Vec::new();
        for (i, name) in wanted.iter().enumerate() {
            // Go names the ChaCha20 suites without their hash.
            let full = if name.ends_with("CHACHA20_POLY1305") {
                format!("{name}_SHA256")
            } else {
                name.clone()
            };
            let suite = all
                .iter()
                .find(|s| s.suite().as_str() == Some(full.as_str()) && s.version() == &rustls::version::TLS12)
                .ok_or_else(|| {
                    err(
                        &format!("tls_server_config.cipher_suites[{i}]"),
                        format!("rustls does not offer {name} (it has no CBC, RSA key exchange or TLS 1.3 names here)"),
                        "use ECDHE suites with AES-GCM or ChaCha20-Poly1305, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                    )
                })?;
            suites.push(*suite);
        }
        suites.extend(
            all.iter()
                .filter(|s| s.version() == &rustls::version::TLS13),
        );
        provider.cipher_suites = suites;
    }
    if let Some(wanted) = &tls.curve_preferences {
        let all = provider.kx_groups.clone();
        let mut groups = Vec::new();
        for (i, name) in wanted.iter().enumerate() {
            let group = match name.as_str() {
                "X25519" => Some(rustls::NamedGroup::X25519),
                "CurveP256" => Some(rustls::NamedGroup::secp256r1),
                "CurveP384" => Some(rustls::NamedGroup::secp384r1),
                _ => None,
            }
            .and_then(|g| all.iter().find(|k| k.name() == g))
            .ok_or_else(|| {
                err(
                    &format!("tls_server_config.curve_preferences[{i}]"),
                    format!("rustls with ring does not offer {name}"),
                    "use X25519, CurveP256 or CurveP384",
                )
            })?;
            groups.push(*group);
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

/// The cost of a `$2a$`/`$2b$`/`$2x$`/`$2y$` bcrypt hash, or None if it is not one.
fn bcrypt_cost(hash: &str) -> Option<u32> {
    let rest = ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .find_map(|p| hash.strip_prefix(p))?;
    let (cost, tail) = rest.split_once('$')?;
    (tail.len() == 53 && cost.len() == 2)
        .then(|| cost.parse().ok())
        .flatten()
        .filter(|c| (4..=31).contains(c))
}

fn server_tls(
    tls: &RawTls,
    resolve: impl Fn(&str) -> PathBuf,
    err: &dyn Fn(&str, String, &str) -> ConfigError,
    http2: bool,
) -> Result<rustls::ServerConfig, ConfigError> {
    let pem_fix = "point it at a readable PEM file";
    if tls.client_allowed_sans.is_some() {
        return Err(err(
            "tls_server_config.client_allowed_sans",
            "matching client certificates by subject alternative name cannot be honoured here: rustls verifies the chain, not the names".into(),
            "remove it, and give the clients certificates from a CA of their own in client_ca_file",
        ));
    }
    let min = tls
        .min_version
        .as_deref()
        .map(|v| tls_version("tls_server_config.min_version", v, err))
        .transpose()?
        .unwrap_or(&rustls::version::TLS12);
    let max = tls
        .max_version
        .as_deref()
        .map(|v| tls_version("tls_server_config.max_version", v, err))
        .transpose()?
        .unwrap_or(&rustls::version::TLS13);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| {
                let rank = |v: &rustls::SupportedProtocolVersion| u16::from(v.version);
                rank(v) >= rank(min) && rank(v) <= rank(max)
            })
            .collect();
    if versions.is_empty() {
        return Err(err(
            "tls_server_config.max_version",
            "below min_version: no TLS version is left to serve".into(),
            "set max_version to min_version or later",
        ));
    }
    let cert_path = resolve(&tls.cert_file);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            err(
                "tls_server_config.cert_file",
                format!("cannot read certificates from {}: {e}", cert_path.display()),
                pem_fix,
            )
        })?;
    if certs.is_empty() {
        return Err(err(
            "tls_server_config.cert_file",
            format!("{} holds no certificate", cert_path.display()),
            pem_fix,
        ));
    }
    let key_path = resolve(&tls.key_file);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        err(
            "tls_server_config.key_file",
            format!("cannot read a private key from {}: {e}", key_path.display()),
            pem_fix,
        )
    })?;
    let provider = Arc::new(tls_provider(tls, err)?);
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| {
            err(
                "tls_server_config.cipher_suites",
                e.to_string(),
                "keep at least one suite of each TLS version served",
            )
        })?;

    let auth_type = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let verify = match auth_type {
        "NoClientCert" => None,
        "VerifyClientCertIfGiven" => Some(true),
        "RequireAndVerifyClientCert" => Some(false),
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(err(
                "tls_server_config.client_auth_type",
                format!(
                    "{auth_type} accepts client certificates without verifying them, which this exporter does not offer"
                ),
                "use VerifyClientCertIfGiven or RequireAndVerifyClientCert with a client_ca_file",
            ));
        }
        other => {
            return Err(err(
                "tls_server_config.client_auth_type",
                format!("{other:?} is not a client auth type"),
                "use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert",
            ));
        }
    };
    let builder = match (verify, &tls.client_ca_file) {
        (None, _) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(err(
                "tls_server_config.client_ca_file",
                format!("{auth_type} needs the CA that signs client certificates"),
                "set client_ca_file to a PEM file of that CA",
            ));
        }
        (Some(optional), Some(ca)) => {
            let ca_path = resolve(ca);
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(&ca_path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    err(
                        "tls_server_config.client_ca_file",
                        format!("cannot read certificates from {}: {e}", ca_path.display()),
                        pem_fix,
                    )
                })?;
            for ca in cas {
                roots
                    .add(ca)
                    .map_err(|e| err("tls_server_config.client_ca_file", e.to_string(), pem_fix))?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| err("tls_server_config.client_ca_file", e.to_string(), pem_fix))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        err(
            "tls_server_config.key_file",
            format!("the key does not fit the certificate: {e}"),
            "use the key the certificate was issued for",
        )
    })?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(false);
    Ok(config)
}

/// The user and password of an `Authorization: Basic` header.
fn credentials(request: &Request) -> Option<(String, String)> {
    let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (user, password) = String::from_utf8(decoded)
        .ok()?
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))?;
    Some((user, password))
}

pub async fn require_basic_auth(
    State(users): State<Arc<Users>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == OPEN_PATH {
        return next.run(request).await;
    }
    let allowed = match credentials(&request) {
        None => false,
        Some((user, password)) if users.seen(&user, &password) => true,
        // bcrypt takes milliseconds of CPU on purpose: off the async threads.
        Some((user, password)) => {
            tokio::task::spawn_blocking(move || users.allows(&user, &password))
                .await
                .unwrap_or(false)
        }
    };
    if allowed {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Basic realm=\"mining-exporter\"")],
            "Unauthorized\n",
        )
            .into_response()
    }
}

/// Serves `router` on `listener` (with TLS and basic auth as `web` says) until `shutdown`.
/// Plain and TLS alike, within `ServeLimits`: a connection that has not sent its headers in
/// time is closed, one over the cap is closed at once, and after `shutdown` requests in
/// flight get the grace period, then every connection is closed, whatever clients do.
pub async fn serve(
    router: axum::Router,
    listener: TcpListener,
    web: &WebConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = match &web.users {
        Some(users) => router.layer(axum::middleware::from_fn_with_state(
            users.clone(),
            require_basic_auth,
        )),
        None => router,
    };
    let router = if web.headers.is_empty() {
        router
    } else {
        let headers = web.headers.clone();
        router.layer(axum::middleware::map_response(
            move |mut response: Response| {
                let headers = headers.clone();
                async move {
                    for (name, value) in headers.iter() {
                        response.headers_mut().insert(name.clone(), value.clone());
                    }
                    response
                }
            },
        ))
    };
    let limits = web.limits;
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        stopping.graceful_shutdown(Some(limits.shutdown_grace));
    });
    let mut server =
        axum_server::from_tcp(listener.into_std()?)?.first_request_timeout(limits.header_timeout);
    server
        .http_builder()
        .http1()
        .header_read_timeout(limits.header_timeout);
    if !web.http2 {
        server = server.http1_only();
    }
    let capped = CappedAcceptor(Arc::new(tokio::sync::Semaphore::new(
        limits.max_connections,
    )));
    let app = router.into_make_service();
    match &web.tls {
        None => server.acceptor(capped).handle(handle).serve(app).await,
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_config(tls.clone());
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .handshake_timeout(limits.header_timeout)
                .acceptor(capped);
            server.acceptor(acceptor).handle(handle).serve(app).await
        }
    }
}

/// Takes a connection only while fewer than the cap are open; one over it is closed at
/// once, so a flood of idle clients costs no more file descriptors than the cap.
#[derive(Clone)]
struct CappedAcceptor(Arc<tokio::sync::Semaphore>);

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for CappedAcceptor {
    type Stream = Counted<tokio::net::TcpStream>;
    type Service = S;
    type Future = std::future::Ready<std::io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        std::future::ready(match self.0.clone().try_acquire_owned() {
            Ok(slot) => Ok((
                Counted {
                    stream,
                    _slot: slot,
                },
                service,
            )),
            Err(_) => Err(std::io::Error::other("too many open connections")),
        })
    }
}

/// A connection holding one of the cap's slots until it closes.
struct Counted<S> {
    stream: S,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_hashes_are_recognised_by_shape() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        assert_eq!(bcrypt_cost(&hash), Some(4));
        assert_eq!(
            bcrypt_cost("$2y$10$abcdefghijklmnopqrstuv0123456789ABCDEFGHIJKLMNOPQRSTU"),
            Some(10)
        );
        assert_eq!(bcrypt_cost("secret"), None);
        assert_eq!(
            bcrypt_cost("$2y$99$abcdefghijklmnopqrstuv0123456789ABCDEFGHIJKLMNOPQRSTU"),
            None
        );
        assert_eq!(bcrypt_cost("$1$salt$hash"), None);
    }

    #[tokio::test]
    async fn verified_credentials_cost_one_bcrypt_check_and_wrong_ones_every_time() {
        use axum::body::Body;
        use tower::ServiceExt;
        let hashes =
            BTreeMap::from([("prometheus".to_string(), bcrypt::hash("right", 4).unwrap())]);
        let users = Arc::new(Users::new(hashes, 4).unwrap());
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                users.clone(),
                require_basic_auth,
            ));
        let ask = |user: &str, password: &str| {
            let value =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let request = Request::builder()
                .uri("/metrics")
                .header(AUTHORIZATION, format!("Basic {value}"))
                .body(Body::empty())
                .unwrap();
            let app = app.clone();
            async move { app.oneshot(request).await.unwrap().status() }
        };
        for _ in 0..5 {
            assert_eq!(ask("prometheus", "right").await, StatusCode::OK);
        }
        assert_eq!(users.bcrypt_checks(), 1, "one check, then the cache");
        for _ in 0..3 {
            assert_eq!(ask("prometheus", "wrong").await, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(ask("nobody", "right").await, StatusCode::UNAUTHORIZED);
        assert_eq!(ask("nobody", "right").await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            users.bcrypt_checks(),
            6,
            "every refused attempt pays in full"
        );
        assert_eq!(ask("prometheus", "right").await, StatusCode::OK);
        assert_eq!(users.bcrypt_checks(), 6);
    }
}
