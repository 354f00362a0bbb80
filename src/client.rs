//! The one place that does HTTP. Every request goes: budget -> auth -> timeout -> retry ->
//! status mapping -> size cap -> decode, and is counted in
//! `mining_exporter_upstream_requests_total`. Sources only see `Upstream::get_json`.
//!
//! No URL reaches an error: errors name the endpoint template. URLs appear only in debug logs,
//! and only after `redact_url`, because OurPool carries its token in the query string.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::budget::{Budget, MAX_UPSTREAM_PAUSE, acquire_all};
use crate::clock::WallClock;
use crate::config::HttpSettings;
use crate::config::auth::{Auth, Signing, TokenPlacement};
use crate::error::PollError;
use crate::secret::{REDACTED, Secret};
use crate::signing;
use crate::telemetry::Telemetry;

/// Query parameters whose values are hidden whenever a URL is logged.
const SENSITIVE_QUERY_KEYS: &[&str] = &[
    "token",
    "api_key",
    "apikey",
    "key",
    "access_token",
    "secret",
    "password",
];
/// Longest upstream error message kept in our errors and logs.
const MAX_MESSAGE_CHARS: usize = 200;

/// reqwest is built without a default TLS crypto provider; ring is ours. Must run before any
/// reqwest client is built; later calls find it installed, which is fine.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the shared reqwest client: one connection pool for every source.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        // A redirect would carry X-API-Key to wherever it points; pools have no reason to send one.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .build()
}

/// Everything a source needs to talk to its pool.
#[derive(Debug)]
pub struct Upstream {
    pub http: reqwest::Client,
    pub base_url: String,
    pub auth: Auth,
    pub token: Secret,
    pub budget: Arc<Budget>,
    /// The budget of `base_url`'s host, shared with every source that calls it.
    pub host_budget: Option<Arc<Budget>>,
    pub settings: HttpSettings,
    pub telemetry: Telemetry,
    pub pool: &'static str,
    pub source: String,
    /// What this source has already warned about (odd headers, workers over max_workers).
    pub warned: WarnedOnce,
    /// Reads `X-RateLimit-Reset` and `Retry-After` dates against this.
    pub clock: WallClock,
    /// Requests asked for by `get_json`, retries not counted: what a poll costs is the
    /// difference over the poll.
    pub requests_asked: AtomicU64,
    /// Bytes of answers read since the poll began (the poller resets it): the whole poll's
    /// reading is bounded by `settings.max_poll_bytes`.
    pub poll_bytes: AtomicUsize,
}

/// Names of things already logged at warn level, so a pool that keeps sending the same odd
/// header is logged once, not on every request.
#[derive(Debug, Default)]
pub struct WarnedOnce(Mutex<BTreeSet<&'static str>>);

impl WarnedOnce {
    /// True the first time `what` is seen.
    pub fn first(&self, what: &'static str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(what)
    }
}

/// One attempt's failure, before retries are decided.
#[derive(Debug)]
enum Failure {
    Status {
        status: StatusCode,
        message: String,
    },
    Timeout,
    Transport(String),
    Decode(String),
    /// The response's `Date` is this many seconds behind our clock (negative: ahead).
    ClockSkew {
        status: StatusCode,
        skew: i64,
    },
}

#[derive(Debug)]
struct AttemptError {
    failure: Failure,
    /// How long the pool asked us to wait (Retry-After, or X-RateLimit-Reset on a 429).
    server_delay: Option<Duration>,
}

impl AttemptError {
    fn retryable(&self) -> bool {
        match &self.failure {
            Failure::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || status.is_server_error()
            }
            Failure::Timeout | Failure::Transport(_) => true,
            Failure::Decode(_) | Failure::ClockSkew { .. } => false,
        }
    }
}

impl Upstream {
    /// GET `path` with `query`, decoded as `T`. `endpoint` is the label and error name: a
    /// fixed path template, never the URL.
    pub async fn get_json<T: DeserializeOwned + Send + 'static>(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, PollError> {
        let url = self.url(path, query)?;
        self.get_json_at(endpoint, url).await
    }

    /// GET `url` (a next page's address the API gave), decoded as `T`; the token is added
    /// where it travels in the query. The caller checks that `url` is the API's.
    pub async fn get_json_at<T: DeserializeOwned + Send + 'static>(
        &self,
        endpoint: &'static str,
        url: reqwest::Url,
    ) -> Result<T, PollError> {
        self.get_json_at_with(endpoint, url, ErrorProbe::TopLevel)
            .await
    }

    /// Like `get_json_at`, with the API's own way of saying a 200 failed.
    pub async fn get_json_at_with<T: DeserializeOwned + Send + 'static>(
        &self,
        endpoint: &'static str,
        mut url: reqwest::Url,
        probe: ErrorProbe,
    ) -> Result<T, PollError> {
        if let TokenPlacement::Query(param) = &self.auth.token {
            // A next link the API gave may carry the token already: sent once, not twice.
            let others: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != param.as_str())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(others)
                .append_pair(param, self.token.expose());
        }
        self.requests_asked.fetch_add(1, Ordering::Relaxed);
        let attempts = AtomicUsize::new(0);
        let max_backoff = self.settings.max_backoff;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.settings.retry_backoff)
            .with_max_delay(max_backoff)
            .with_factor(2.0)
            .with_max_times(self.settings.max_retries)
            .with_jitter();
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt::<T>(endpoint, &url, probe).await
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(AttemptError::retryable)
        // The pool's own word stretches our backoff, never shortens it (a reset already
        // past is a wait of 0); a wait longer than our cap ends this poll instead, and the
        // budget keeps the next requests back until then.
        .adjust(
            move |e: &AttemptError, backoff| match (backoff, e.server_delay) {
                (None, _) => None,
                (Some(_), Some(server)) if server > max_backoff => None,
                (Some(ours), Some(server)) => Some(server.max(ours)),
                (Some(ours), None) => Some(ours),
            },
        )
        .notify(|e: &AttemptError, wait| {
            debug!(
                source = %self.source,
                endpoint,
                url = %self.shown(&url),
                ?wait,
                failure = ?e.failure,
                "retrying request"
            );
        })
        .await;
        result.map_err(|e| self.poll_error(endpoint, e, attempts.load(Ordering::Relaxed)))
    }

    /// `base_url` + `path` + `query`, as the request for them goes out (before the token).
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Url, PollError> {
        let mut url = reqwest::Url::parse(&format!("{}{}", self.base_url, path)).map_err(|e| {
            PollError::decode("(url)", format!("cannot build a URL from base_url: {e}"))
        })?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    async fn attempt<T: DeserializeOwned + Send + 'static>(
        &self,
        endpoint: &'static str,
        url: &reqwest::Url,
        probe: ErrorProbe,
    ) -> Result<T, AttemptError> {
        match &self.host_budget {
            Some(host) => acquire_all(&[&self.budget, host]).await,
            None => self.budget.acquire().await,
        }
        let mut request = self
            .http
            .get(url.clone())
            .timeout(self.settings.timeout)
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("mining-exporter/", env!("CARGO_PKG_VERSION")),
            );
        match auth_header(&self.auth.token, &self.token) {
            Ok(Some((name, value))) => request = request.header(name, value),
            Ok(None) => {}
            Err(problem) => {
                return Err(AttemptError {
                    failure: Failure::Transport(problem.to_string()),
                    server_delay: None,
                });
            }
        }
        for (name, value) in &self.auth.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(signing) = &self.auth.signing {
            request = self
                .sign(request, signing, url)
                .map_err(|problem| AttemptError {
                    failure: Failure::Transport(problem.to_string()),
                    server_delay: None,
                })?;
        }
        debug!(source = %self.source, url = %self.shown(url), "GET");
        let outcome = match self.send(request).await {
            Ok((status, body)) => decode_off_async_threads::<T>(body, probe)
                .await
                .map(|value| (status, value))
                .map_err(|detail| AttemptError {
                    failure: Failure::Decode(self.pool_text(&detail)),
                    server_delay: None,
                }),
            Err(e) => Err(e),
        };
        // Each request is counted once, by how it ended.
        let code = match &outcome {
            Ok((status, _)) => status.as_str(),
            Err(AttemptError {
                failure: Failure::Status { status, .. },
                ..
            }) => status.as_str(),
            Err(AttemptError {
                failure: Failure::Timeout,
                ..
            }) => "timeout",
            Err(AttemptError {
                failure: Failure::Transport(_),
                ..
            }) => "transport",
            Err(AttemptError {
                failure: Failure::Decode(_),
                ..
            }) => "decode",
            Err(AttemptError {
                failure: Failure::ClockSkew { status, .. },
                ..
            }) => status.as_str(),
        };
        self.telemetry
            .upstream_requests
            .with_label_values(&[self.pool, &self.source, endpoint, code])
            .inc();
        outcome.map(|(_, value)| value)
    }

    /// Sends and reads the body (capped). A non-2xx status becomes a Failure::Status.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), AttemptError> {
        let transport = |e: reqwest::Error| AttemptError {
            failure: if e.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Transport(self.pool_text(&error_chain(&e.without_url())))
            },
            server_delay: None,
        };
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let rate = rate_headers(
            response.headers(),
            self.clock.now(),
            self.budget.longest_window(),
        );
        self.warn_once_about(&rate.clamped);
        self.budget.observe_upstream(rate.remaining, rate.reset_in);
        let limited = status == StatusCode::TOO_MANY_REQUESTS;
        let server_delay = if limited {
            self.budget.note_rate_limited();
            if let Some(host) = &self.host_budget {
                host.note_rate_limited();
            }
            rate.retry_after.or(rate.reset_in)
        } else {
            rate.retry_after
        };
        if !status.is_success() && (limited || server_delay.is_some()) {
            // A "wait" answer holds back every request on the budgets this one used (a pool
            // that bans by address, every source calling it), never for less than our own
            // backoff: a reset already past or a 429 without headers still means "not now".
            let pause = server_delay
                .unwrap_or_default()
                .max(self.settings.retry_backoff);
            self.budget.pause(pause);
            if let Some(host) = &self.host_budget {
                host.pause(pause);
            }
        }

        // After the rate headers: a skewed answer still tells the budget what it knows.
        if let Some(signing) = &self.auth.signing {
            let skew = clock_skew(response.headers(), self.clock.now());
            if let Some(skew) = skew.filter(|s| s.unsigned_abs() > signing.max_clock_skew.as_secs())
            {
                return Err(AttemptError {
                    failure: Failure::ClockSkew { status, skew },
                    server_delay: None,
                });
            }
        }
        let limit = self.settings.max_response_bytes;
        if status.is_success() && response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large(limit));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                if !status.is_success() {
                    // The start of an error body is enough to say what went wrong.
                    break;
                }
                return Err(too_large(limit));
            }
            let read = self.poll_bytes.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len();
            if read > self.settings.max_poll_bytes {
                return Err(AttemptError {
                    failure: Failure::Decode(format!(
                        "this poll's answers add up to more than max_poll_bytes = {} bytes",
                        self.settings.max_poll_bytes
                    )),
                    server_delay: None,
                });
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            Ok((status, body))
        } else {
            Err(AttemptError {
                failure: Failure::Status {
                    status,
                    message: self.pool_text(&error_message(&body)),
                },
                server_delay,
            })
        }
    }

    /// Text that came from the pool, made fit for errors and logs: the token and the signing
    /// secret scrubbed out in every form, then cut to length.
    pub(crate) fn pool_text(&self, text: &str) -> String {
        shorten(&self.scrub(text))
    }

    /// `text` without the token or the signing secret, raw or percent-encoded.
    pub fn scrub(&self, text: &str) -> String {
        let text = self.token.scrub(text);
        match self.auth.signing.as_ref().and_then(|s| s.secret.as_ref()) {
            Some(secret) => secret.scrub(&text),
            None => text,
        }
    }

    fn warn_once_about(&self, clamped: &[&'static str]) {
        for header in clamped {
            if self.warned.first(header) {
                warn!(
                    source = %self.source,
                    pool = self.pool,
                    header,
                    cap = ?self.budget.longest_window(),
                    "the pool sent an unusable wait (not a number or date, negative, a reset further than the budget's longest window, or a Retry-After past both the longest window and an hour); waiting that long instead (logged once)"
                );
            }
        }
    }

    fn poll_error(&self, endpoint: &'static str, e: AttemptError, attempts: usize) -> PollError {
        match e.failure {
            Failure::Status { status, message } => match status.as_u16() {
                401 | 403 => PollError::Auth {
                    endpoint,
                    status: status.as_u16(),
                    message,
                },
                429 => PollError::RateLimited { endpoint, attempts },
                other => PollError::Status {
                    endpoint,
                    status: other,
                    message,
                },
            },
            Failure::Timeout => PollError::Timeout {
                endpoint,
                timeout: self.settings.timeout,
            },
            Failure::Transport(detail) => PollError::Transport { endpoint, detail },
            Failure::Decode(detail) => PollError::Decode { endpoint, detail },
            Failure::ClockSkew { skew, .. } => PollError::ClockSkew {
                endpoint,
                skew_seconds: skew,
                max_seconds: self
                    .auth
                    .signing
                    .as_ref()
                    .map_or(0, |s| s.max_clock_skew.as_secs()),
            },
        }
    }

    /// `url` as logs may show it: known token parameters hidden, and the token scrubbed
    /// wherever else a configured query parameter put it.
    fn shown(&self, url: &reqwest::Url) -> String {
        self.scrub(&redact_url(url))
    }

    /// Adds the HMAC signature headers for a GET of `url` with no body.
    fn sign(
        &self,
        request: reqwest::RequestBuilder,
        signing: &Signing,
        url: &reqwest::Url,
    ) -> Result<reqwest::RequestBuilder, &'static str> {
        let secret = signing
            .secret
            .as_ref()
            .ok_or("the signing secret could not be read")?;
        let timestamp = self.clock.unix_seconds();
        let nonce = signing::nonce();
        let path_with_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let canonical = signing::canonical(timestamp, &nonce, "GET", &path_with_query, b"");
        let mut signature =
            HeaderValue::from_str(&signing::signature(secret.expose().as_bytes(), &canonical))
                .map_err(|_| "the signature is not a header value")?;
        signature.set_sensitive(true);
        Ok(request
            .header(signing::TIMESTAMP, timestamp)
            .header(signing::NONCE, nonce)
            .header(signing::VERSION, signing::VERSION_V1)
            .header(signing::SIGNATURE, signature))
    }
}

/// Our clock minus the response's `Date`, in whole seconds; `None` without a usable Date.
fn clock_skew(headers: &HeaderMap, now: SystemTime) -> Option<i64> {
    let date = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let theirs = chrono::DateTime::parse_from_rfc2822(date).ok()?.timestamp();
    let ours = i64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    Some(ours.saturating_sub(theirs))
}

/// The header that carries the token, marked sensitive so that no debug output of a request
/// (ours, reqwest's or hyper's) prints it, and HTTP/2 never puts it in a compression table.
fn auth_header(
    placement: &TokenPlacement,
    token: &Secret,
) -> Result<Option<(HeaderName, HeaderValue)>, &'static str> {
    let (name, value) = match placement {
        TokenPlacement::Header(name) => (
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| "the configured auth header is not a header name")?,
            token.expose().to_string(),
        ),
        TokenPlacement::Bearer => (AUTHORIZATION, format!("Bearer {}", token.expose())),
        TokenPlacement::Query(_) => return Ok(None),
    };
    // The error names no part of the value: it is the token.
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| "the token holds characters an HTTP header cannot carry")?;
    value.set_sensitive(true);
    Ok(Some((name, value)))
}

fn too_large(limit: usize) -> AttemptError {
    AttemptError {
        failure: Failure::Decode(format!("response body larger than {limit} bytes")),
        server_delay: None,
    }
}

/// Bodies up to this size decode where they arrived; larger ones (a page of a thousand
/// workers is about 300 KiB, OurPool's whole list of 10,000 about 2 MiB) decode on the
/// blocking pool, so the async threads keep answering scrapes meanwhile.
const DECODE_INLINE_MAX: usize = 64 * 1024;

async fn decode_off_async_threads<T: DeserializeOwned + Send + 'static>(
    body: Vec<u8>,
    probe: ErrorProbe,
) -> Result<T, String> {
    if body.len() <= DECODE_INLINE_MAX {
        return decode(&body, probe);
    }
    tokio::task::spawn_blocking(move || decode(&body, probe))
        .await
        .unwrap_or_else(|_| Err("decoding the body panicked".to_string()))
}

/// Where a 2xx answer says that it failed after all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorProbe {
    /// A top-level `error` of an object, as the pools send it (see `error_in`).
    #[default]
    TopLevel,
    /// Nowhere the client looks: the API has no such field, or the source reads its own.
    Off,
}

/// The failure a 2xx answer's error field holds: a non-empty string, or an object. `null`,
/// `false`, `0` and `""` say "no error", as APIs that always send the field do.
pub fn error_in(field: &serde_json::Value) -> Option<String> {
    match field {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        serde_json::Value::Object(fields) => Some(
            fields
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| field.to_string()),
        ),
        _ => None,
    }
}

/// Decodes a 2xx body. A 200 whose object carries an error is a failure, not empty data.
fn decode<T: DeserializeOwned>(body: &[u8], probe: ErrorProbe) -> Result<T, String> {
    #[derive(serde::Deserialize)]
    struct TopLevelError {
        #[serde(default)]
        error: Option<serde_json::Value>,
    }
    // Only an object has named fields: serde would read a one-element list's element as
    // the struct's first field.
    let object = body.trim_ascii_start().first() == Some(&b'{');
    if probe == ErrorProbe::TopLevel && object {
        if let Ok(TopLevelError { error: Some(e) }) = serde_json::from_slice(body) {
            if error_in(&e).is_some() {
                return Err(format!(
                    "the pool answered 200 with an error: {}",
                    error_message(body)
                ));
            }
        }
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}

/// The readable part of an error body, in any of the shapes the pools use:
/// `{"error":"..."}`, `{"error":{"message":"..."}}`, `{"message":"..."}`, or plain text.
pub fn error_message(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => {
            let pick = |v: &serde_json::Value| v.as_str().map(str::to_string);
            json.pointer("/error/message")
                .and_then(pick)
                .or_else(|| json.get("message").and_then(pick))
                .or_else(|| json.get("error").and_then(pick))
                .or_else(|| json.pointer("/error/code").and_then(pick))
                .or_else(|| json.get("code").and_then(pick))
                .unwrap_or_else(|| "(no message)".to_string())
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.trim().is_empty() {
        "(empty body)".to_string()
    } else {
        clean.trim().to_string()
    }
}

/// At most `MAX_MESSAGE_CHARS` of `text`. Cut only after scrubbing: a token echoed across the
/// cut would otherwise leave its first characters behind.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// What the pool's rate-limit headers say, after checking: every wait is finite, a reset at
/// most `cap` (the budget's longest window) away and a Retry-After at most an hour, whatever
/// the pool sent.
#[derive(Debug, Default, PartialEq)]
struct RateHeaders {
    remaining: Option<u32>,
    /// Time until `X-RateLimit-Reset`.
    reset_in: Option<Duration>,
    /// `Retry-After`.
    retry_after: Option<Duration>,
    /// Headers whose value was unusable (not a number or date, negative, or too far away)
    /// and was read as `cap` (or, for a Retry-After over an hour, an hour) instead.
    clamped: Vec<&'static str>,
}

/// Reads `X-RateLimit-Remaining`, `X-RateLimit-Reset` and `Retry-After` with checked
/// conversions only: a pool's header can never panic the client. A reset is never further
/// than `cap`: the pool's window cannot be longer than ours. A Retry-After is the pool's
/// explicit order (a block may last longer than any window) and is kept up to an hour.
///
/// The reset is a Unix timestamp per Ultimate Proxy's docs. A small number is read as seconds
/// from now (what other APIs send under that name), a very large one as Unix milliseconds.
fn rate_headers(headers: &HeaderMap, now: SystemTime, cap: Duration) -> RateHeaders {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("").trim());
    let mut read = RateHeaders::default();
    let mut wait = |name: &'static str, value: Result<Duration, ()>, longest: Duration| match value
    {
        Ok(d) if d <= longest => Some(d),
        Ok(_) => {
            read.clamped.push(name);
            Some(longest)
        }
        Err(()) => {
            read.clamped.push(name);
            Some(cap)
        }
    };
    read.reset_in = text("x-ratelimit-reset").and_then(|v| {
        let delay = v
            .parse::<f64>()
            .map_err(|_| ())
            .and_then(|reset| until_reset(reset, now));
        wait("X-RateLimit-Reset", delay, cap)
    });
    read.retry_after = text(RETRY_AFTER.as_str()).and_then(|v| {
        wait(
            "Retry-After",
            retry_after_value(v, now),
            MAX_UPSTREAM_PAUSE.max(cap),
        )
    });
    read.remaining = text("x-ratelimit-remaining")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        // In range after the clamp, so the cast is exact up to the fraction it drops.
        .map(|v| v.clamp(0.0, f64::from(u32::MAX)) as u32);
    read
}

/// Above this a reset is in Unix milliseconds: as seconds it would be past the year 5000.
const RESET_MILLIS_FROM: f64 = 1e11;
/// Below this a reset is seconds from now: as a timestamp it would be before 2001.
const RESET_TIMESTAMP_FROM: f64 = 1e9;

/// The wait until a reset given as delta seconds, Unix seconds or Unix milliseconds.
fn until_reset(reset: f64, now: SystemTime) -> Result<Duration, ()> {
    if !reset.is_finite() || reset < 0.0 {
        return Err(());
    }
    if reset < RESET_TIMESTAMP_FROM {
        return Duration::try_from_secs_f64(reset).map_err(|_| ());
    }
    let at = if reset >= RESET_MILLIS_FROM {
        reset / 1000.0
    } else {
        reset
    };
    let now = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    // A reset already past means the window is open again.
    Duration::try_from_secs_f64((at - now).max(0.0)).map_err(|_| ())
}

/// `Retry-After` as delta-seconds or an HTTP date (one already past means now).
fn retry_after_value(value: &str, now: SystemTime) -> Result<Duration, ()> {
    if let Ok(secs) = value.parse::<f64>() {
        return if secs.is_finite() && secs >= 0.0 {
            Duration::try_from_secs_f64(secs).map_err(|_| ())
        } else {
            Err(())
        };
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).map_err(|_| ())?;
    let at = SystemTime::from(at.with_timezone(&chrono::Utc));
    Ok(at.duration_since(now).unwrap_or_default())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// `segment` percent-encoded for use as one path segment, so that an account name holding
/// '/', '?' or '#' cannot change which endpoint is asked.
pub fn escape_path_segment(segment: &str) -> String {
    let mut url = reqwest::Url::parse("http://localhost/").expect("a valid constant URL");
    url.path_segments_mut()
        .expect("an http URL has path segments")
        .pop_if_empty()
        .push(segment);
    url.path()[1..].to_string()
}

/// The URL with the values of credential-like query parameters replaced.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let hide = SENSITIVE_QUERY_KEYS
                    .iter()
                    .any(|s| k.eq_ignore_ascii_case(s));
                (
                    k.into_owned(),
                    if hide {
                        REDACTED.to_string()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_the_query() {
        let url = reqwest::Url::parse("https://ourpool.io/api/v1/x?limit=5&token=abc123").unwrap();
        let shown = redact_url(&url);
        assert!(!shown.contains("abc123"), "{shown}");
        assert!(shown.contains("limit=5"));
    }

    #[test]
    fn auth_headers_are_sensitive() {
        let token = Secret::new("k3y");
        let header = |name: &str| TokenPlacement::Header(name.to_string());
        for (style, name, value) in [
            (header("X-API-Key"), "x-api-key", "k3y"),
            (TokenPlacement::Bearer, "authorization", "Bearer k3y"),
            (header("authorization"), "authorization", "k3y"),
        ] {
            let (n, v) = auth_header(&style, &token).unwrap().unwrap();
            assert_eq!((n.as_str(), v.to_str().unwrap()), (name, value));
            assert!(v.is_sensitive(), "{style:?}");
            assert!(!format!("{v:?}").contains("k3y"));
        }
        assert!(
            auth_header(&TokenPlacement::Query("token".into()), &token)
                .unwrap()
                .is_none()
        );
        assert!(auth_header(&header("x-api-key"), &Secret::new("a\nb")).is_err());
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(escape_path_segment("farm-1"), "farm-1");
        assert_eq!(escape_path_segment("a/b?c#d e"), "a%2Fb%3Fc%23d%20e");
    }

    #[test]
    fn reads_every_error_body_shape() {
        assert_eq!(
            error_message(br#"{"error":"Worker not found"}"#),
            "Worker not found"
        );
        assert_eq!(
            error_message(
                br#"{"error":{"code":"invalid_request","message":"Invalid parameters"}}"#
            ),
            "Invalid parameters"
        );
        assert_eq!(
            error_message(br#"{"statusCode":401,"error":"Unauthorized","message":"Invalid or missing API key"}"#),
            "Invalid or missing API key"
        );
        assert_eq!(
            error_message(br#"{"code":"auth.unexpected_error"}"#),
            "auth.unexpected_error"
        );
        assert_eq!(error_message(b"Bad Gateway\n"), "Bad Gateway");
        assert_eq!(error_message(b""), "(empty body)");
    }

    #[tokio::test]
    async fn large_bodies_decode_on_the_blocking_pool_with_the_same_outcome() {
        let big: Vec<u32> = (0..50_000).collect();
        let body = serde_json::to_vec(&big).unwrap();
        assert!(body.len() > DECODE_INLINE_MAX);
        let decoded: Vec<u32> = decode_off_async_threads(body.clone(), ErrorProbe::TopLevel)
            .await
            .unwrap();
        assert_eq!(decoded, big);
        let small: Vec<u32> = decode_off_async_threads(b"[1,2]".to_vec(), ErrorProbe::TopLevel)
            .await
            .unwrap();
        assert_eq!(small, [1, 2]);
        let cut = body[..body.len() - 1].to_vec();
        let broken = decode_off_async_threads::<Vec<u32>>(cut, ErrorProbe::TopLevel)
            .await
            .unwrap_err();
        assert!(broken.starts_with("invalid JSON"), "{broken}");
    }

    #[test]
    fn a_200_with_an_error_field_is_not_data() {
        #[derive(serde::Deserialize, Debug)]
        struct Any {}
        assert!(
            decode::<Any>(br#"{"error":"Rate limit exceeded"}"#, ErrorProbe::TopLevel).is_err()
        );
        assert!(decode::<Any>(br#"{"error":null,"x":1}"#, ErrorProbe::TopLevel).is_ok());
        assert!(decode::<Any>(br#"{"x":"#, ErrorProbe::TopLevel).is_err());
        assert!(decode::<Any>(br#"{"error":{"code":"denied"}}"#, ErrorProbe::TopLevel).is_err());
    }

    #[test]
    fn only_a_named_error_in_an_object_fails_a_200() {
        // A one-element list is data, whatever the element is.
        for list in [
            &b"[false]"[..],
            b"[0]",
            b"[\"\"]",
            b"[\"down\"]",
            b"[{\"error\":\"x\"}]",
        ] {
            let read = decode::<serde_json::Value>(list, ErrorProbe::TopLevel);
            assert!(read.is_ok(), "{}: {read:?}", String::from_utf8_lossy(list));
        }
        // A flag or code saying "no error" is not an error.
        for none in [
            &br#"{"error":false,"x":1}"#[..],
            br#"{"error":0}"#,
            br#"{"error":""}"#,
        ] {
            let read = decode::<serde_json::Value>(none, ErrorProbe::TopLevel);
            assert!(read.is_ok(), "{}: {read:?}", String::from_utf8_lossy(none));
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.parse().unwrap());
        }
        h
    }

    const CAP: Duration = Duration::from_secs(60);

    #[test]
    fn reset_header_accepts_deltas_seconds_and_milliseconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let read = |reset: &str| {
            rate_headers(
                &headers(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", reset)]),
                now,
                CAP,
            )
        };
        let delta = read("30");
        assert_eq!(delta.remaining, Some(3));
        assert_eq!(delta.reset_in, Some(Duration::from_secs(30)));
        assert!(delta.clamped.is_empty());
        assert_eq!(read("1800000020").reset_in, Some(Duration::from_secs(20)));
        assert_eq!(
            read("1800000020500").reset_in,
            Some(Duration::from_millis(20_500))
        );
        // A reset already past: the window is open.
        assert_eq!(read("1799999000").reset_in, Some(Duration::ZERO));
        assert!(read("1799999000").clamped.is_empty());
    }

    #[test]
    fn unusable_waits_are_clamped_to_the_longest_window() {
        let now = SystemTime::now();
        for bad in ["100000000000000000000", "1e308", "-5", "NaN", "inf", "soon"] {
            let read = rate_headers(
                &headers(&[("x-ratelimit-reset", bad), ("retry-after", bad)]),
                now,
                CAP,
            );
            assert_eq!(read.reset_in, Some(CAP), "{bad}");
            assert_eq!(read.retry_after, Some(CAP), "{bad}");
            assert_eq!(read.clamped, ["X-RateLimit-Reset", "Retry-After"], "{bad}");
        }
        // A reset past the window is wrong; a block longer than the window is not.
        let read = |value: &str| {
            rate_headers(
                &headers(&[("x-ratelimit-reset", value), ("retry-after", value)]),
                now,
                CAP,
            )
        };
        let long = read("300");
        assert_eq!(long.reset_in, Some(CAP));
        assert_eq!(long.retry_after, Some(Duration::from_secs(300)));
        assert_eq!(long.clamped, ["X-RateLimit-Reset"]);
        let too_long = read("7200");
        assert_eq!(too_long.retry_after, Some(MAX_UPSTREAM_PAUSE));
        assert_eq!(too_long.clamped, ["X-RateLimit-Reset", "Retry-After"]);
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let read = |value: &str| rate_headers(&headers(&[("retry-after", value)]), now, CAP);
        assert_eq!(read("7").retry_after, Some(Duration::from_secs(7)));
        let in_ten = chrono::DateTime::<chrono::Utc>::from(now + Duration::from_secs(10));
        assert_eq!(
            read(&in_ten.to_rfc2822()).retry_after,
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            read("Wed, 21 Oct 2015 07:28:00 GMT").retry_after,
            Some(Duration::ZERO)
        );
        assert_eq!(read("7").reset_in, None);
    }

    #[test]
    fn remaining_is_read_with_checked_conversions() {
        let read = |value: &str| {
            rate_headers(
                &headers(&[("x-ratelimit-remaining", value)]),
                SystemTime::now(),
                CAP,
            )
            .remaining
        };
        assert_eq!(read("5"), Some(5));
        assert_eq!(read("-3"), Some(0));
        assert_eq!(read("1e30"), Some(u32::MAX));
        assert_eq!(read("NaN"), None);
        assert_eq!(read("many"), None);
    }

    mod properties {
        use super::*;
        use crate::sources::arbitrary::pool_bytes;
        use proptest::prelude::*;

        proptest! {
            /// Any body: decoded or refused, and its readable part scrubbed and cut on a
            /// character boundary, never a panic.
            #[test]
            fn any_body_decodes_or_fails_and_its_message_is_cut_safely(
                body in pool_bytes(),
                token in "\\PC{0,16}",
            ) {
                let _ = decode::<serde_json::Value>(&body, ErrorProbe::TopLevel);
                let secret = Secret::new(token);
                let shown = shorten(&secret.scrub(&error_message(&body)));
                prop_assert!(shown.chars().count() <= MAX_MESSAGE_CHARS + 3);
            }

            /// Any header values: every wait is finite; a reset at most the window, a
            /// Retry-After at most an hour.
            #[test]
            fn any_rate_limit_headers_give_bounded_waits(
                remaining in "\\PC{0,24}",
                reset in prop_oneof!["\\PC{0,24}", any::<f64>().prop_map(|f| f.to_string())],
                retry in prop_oneof!["\\PC{0,32}", any::<i64>().prop_map(|n| n.to_string())],
            ) {
                let mut h = HeaderMap::new();
                for (name, value) in [
                    ("x-ratelimit-remaining", remaining),
                    ("x-ratelimit-reset", reset),
                    ("retry-after", retry),
                ] {
                    if let Ok(value) = value.parse() {
                        h.insert(name, value);
                    }
                }
                let read = rate_headers(&h, SystemTime::now(), CAP);
                prop_assert!(read.reset_in.is_none_or(|wait| wait <= CAP));
                prop_assert!(read.retry_after.is_none_or(|wait| wait <= MAX_UPSTREAM_PAUSE));
            }
        }
    }
}
