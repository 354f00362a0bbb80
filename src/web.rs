//! `--web.config.file`: TLS and basic auth on the HTTP face, in the web configuration format
//! of Prometheus' own exporters (exporter-toolkit):
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # PEM; relative paths are relative to this file
//!   key_file: server.key
//!   client_ca_file: ca.crt         # optional: verify client certificates against it
//!   client_auth_type: RequireAndVerifyClientCert
//! basic_auth_users:
//!   prometheus: $2y$10$...          # bcrypt hashes only
//! ```
//!
//! Basic auth guards every endpoint but `/-/healthy`, which stays open for liveness probes
//! that hold no credentials. TLS is rustls with ring, like the client.

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
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: String,
    key_file: String,
    #[serde(default)]
    client_ca_file: Option<String>,
    #[serde(default)]
    client_auth_type: Option<String>,
}

/// Who may read the pages, and how the connection is secured.
#[derive(Clone, Default)]
pub struct WebConfig {
    tls: Option<Arc<rustls::ServerConfig>>,
    users: Option<Arc<Users>>,
    limits: ServeLimits,
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
            .finish()
    }
}

/// User names to bcrypt hashes, and a hash of the same cost that an unknown user is checked
/// against, so that the time taken does not tell which users exist.
struct Users {
    hashes: BTreeMap<String, String>,
    decoy: String,
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
                "the file takes tls_server_config (cert_file, key_file, client_ca_file, client_auth_type) and basic_auth_users",
            )
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &str| -> PathBuf { base.join(p) };

        let tls = match raw.tls_server_config {
            None => None,
            Some(tls) => Some(Arc::new(server_tls(&tls, resolve, &err)?)),
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
                let decoy = bcrypt::hash(
                    "mining-exporter decoy",
                    cost.unwrap_or(bcrypt::DEFAULT_COST),
                )
                .map_err(|e| {
                    err(
                        "basic_auth_users",
                        e.to_string(),
                        "use hashes of cost 4 to 31",
                    )
                })?;
                Some(Arc::new(Users {
                    hashes: users,
                    decoy,
                }))
            }
        };
        Ok(WebConfig {
            tls,
            users,
            limits: ServeLimits::default(),
        })
    }
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
) -> Result<rustls::ServerConfig, ConfigError> {
    let pem_fix = "point it at a readable PEM file";
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err("tls_server_config", e.to_string(), "report this as a bug"))?;

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
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
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

async fn require_basic_auth(
    State(users): State<Arc<Users>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() == OPEN_PATH {
        return next.run(request).await;
    }
    let allowed = match credentials(&request) {
        None => false,
        // bcrypt takes milliseconds of CPU on purpose: off the async threads.
        Some((user, password)) => tokio::task::spawn_blocking(move || {
            let known = users.hashes.get(&user);
            let hash = known.unwrap_or(&users.decoy);
            bcrypt::verify(password, hash).unwrap_or(false) && known.is_some()
        })
        .await
        .unwrap_or(false),
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
}
