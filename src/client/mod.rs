//! The one place that does HTTP. Every request goes: budget -> auth -> timeout -> retry ->
//! status mapping -> size cap -> decode, and is counted in
//! `mining_exporter_upstream_requests_total`. Sources only see `Upstream::get_json`.
//!
//! No URL reaches an error: errors name the endpoint template. URLs appear only in debug logs,
//! and only after `redact_url`, because OurPool carries its token in the query string.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderName, HeaderValue, USER_AGENT};
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::budget::{Budget, acquire_all};
use crate::clock::WallClock;
use crate::config::HttpSettings;
use crate::config::auth::{Auth, Signing, SigningScheme, TokenPlacement};
use crate::error::PollError;
use crate::secret::Secret;
use crate::signing;
use crate::telemetry::SourceTelemetry;

mod decode;
mod link_header;
mod rate_headers;
mod redaction;
mod request_log;
mod tls;

pub use decode::{Answer, ErrorProbe, error_in, error_message};
use decode::{FromBody, Json};
use rate_headers::{clock_skew, rate_headers};
pub use redaction::redact_url;
use redaction::shorten;
use request_log::Seen;
pub use request_log::{Ending, RateSeen, RequestLog, RequestRecord};
pub use tls::{SourceTls, http_client_with};

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

/// Everything a source needs to talk to its pool. A source sees only `get_json`,
/// `get_json_at`, `url`, `base_url` and `pool_text`: it never touches reqwest, a budget or
/// the token.
#[derive(Debug)]
pub struct Upstream {
    http: reqwest::Client,
    conn: Connection,
    telemetry: SourceTelemetry,
    /// Bytes of answers read since the poll began (the poller resets it): the whole poll's
    /// reading is bounded by `conn.settings.max_poll_bytes`.
    poll_bytes: AtomicUsize,
    /// Where each request is written down, once `record_requests` asked for it.
    log: std::sync::OnceLock<RequestLog>,
}

/// What an `Upstream` sends with and through: the exporter fills it in from a source's
/// config and the budgets it names; `clock` is what `X-RateLimit-Reset` and `Retry-After`
/// dates are read against.
#[derive(Debug)]
pub struct Connection {
    pub base_url: String,
    pub auth: Auth,
    pub token: Secret,
    pub budget: Arc<Budget>,
    pub host_budget: Option<Arc<Budget>>,
    pub settings: HttpSettings,
    pub clock: WallClock,
}

/// How a generic source shapes one request; the built-in pools' requests are plain GETs
/// (`Call::get`).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: &'a reqwest::Method,
    /// A JSON body, sent with `Content-Type: application/json` (and signed with the rest).
    pub body: Option<&'a [u8]>,
    /// Headers of this endpoint, beside the source's own.
    pub headers: &'a [(String, String)],
    /// The statuses that are answers; empty: any 2xx.
    pub statuses: &'a [u16],
    pub probe: ErrorProbe,
}

impl Call<'static> {
    pub fn get(probe: ErrorProbe) -> Self {
        Call {
            method: &reqwest::Method::GET,
            body: None,
            headers: &[],
            statuses: &[],
            probe,
        }
    }
}

impl Call<'_> {
    fn accepts(&self, status: StatusCode) -> bool {
        if self.statuses.is_empty() {
            status.is_success()
        } else {
            self.statuses.contains(&status.as_u16())
        }
    }
}

/// What one attempt read: the status, the `Link: <...>; rel="next"` target, and the body.
#[derive(Debug)]
pub(crate) struct Read {
    pub status: StatusCode,
    pub next_link: Option<String>,
    pub body: Vec<u8>,
}

/// One attempt's failure, before retries are decided.
#[derive(Debug)]
enum Failure {
    Status {
        status: StatusCode,
        message: String,
        /// How long the pool asked us to wait (Retry-After, or X-RateLimit-Reset on a 429).
        server_delay: Option<Duration>,
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

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
                    || status.is_server_error()
            }
            Failure::Timeout | Failure::Transport(_) => true,
            Failure::Decode(_) | Failure::ClockSkew { .. } => false,
        }
    }

    fn server_delay(&self) -> Option<Duration> {
        match self {
            Failure::Status { server_delay, .. } => *server_delay,
            _ => None,
        }
    }

    /// The `code` label of the attempt's count: the HTTP status where one came.
    fn code(&self) -> &str {
        match self {
            Failure::Status { status, .. } | Failure::ClockSkew { status, .. } => status.as_str(),
            Failure::Timeout => "timeout",
            Failure::Transport(_) => "transport",
            Failure::Decode(_) => "decode",
        }
    }
}

impl Upstream {
    pub fn new(http: reqwest::Client, conn: Connection, telemetry: SourceTelemetry) -> Self {
        Upstream {
            http,
            conn,
            telemetry,
            poll_bytes: AtomicUsize::new(0),
            log: std::sync::OnceLock::new(),
        }
    }

    /// From now on every request of this source is written down in the returned log.
    pub fn record_requests(&self) -> RequestLog {
        self.log.get_or_init(RequestLog::default).clone()
    }

    /// The time the source's requests are made at (what clock templates read).
    pub fn now(&self) -> std::time::SystemTime {
        self.conn.clock.now()
    }

    /// The API's root, as configured.
    pub fn base_url(&self) -> &str {
        &self.conn.base_url
    }

    /// The source's events, which its optional endpoints record too.
    pub fn telemetry(&self) -> &SourceTelemetry {
        &self.telemetry
    }

    /// A poll begins: what it may read starts again from nothing.
    pub(crate) fn poll_begins(&self) {
        self.poll_bytes.store(0, Ordering::Relaxed);
    }

    /// Shows the budgets this request went through as they stand after it.
    fn record_budgets(&self) {
        for budget in std::iter::once(&self.conn.budget).chain(&self.conn.host_budget) {
            self.telemetry.budget(budget.name(), budget.figures());
        }
    }

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
        url: reqwest::Url,
        probe: ErrorProbe,
    ) -> Result<T, PollError> {
        let Json(value) = self.request(endpoint, url, &Call::get(probe)).await?;
        Ok(value)
    }

    /// `url` asked as `call` says, read as an `Answer`: an empty body or a 204 is no
    /// document, and the next page's `Link` comes with it.
    pub async fn call(
        &self,
        endpoint: &'static str,
        url: reqwest::Url,
        call: &Call<'_>,
    ) -> Result<Answer, PollError> {
        self.request(endpoint, url, call).await
    }

    async fn request<T: FromBody>(
        &self,
        endpoint: &'static str,
        mut url: reqwest::Url,
        call: &Call<'_>,
    ) -> Result<T, PollError> {
        if let TokenPlacement::Query(param) = &self.conn.auth.token {
            // A next link the API gave may carry the token already: sent once, not twice.
            let others: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != param.as_str())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(others)
                .append_pair(param, self.conn.token.expose());
        }
        self.telemetry.request_asked();
        let attempts = AtomicUsize::new(0);
        let max_backoff = self.conn.settings.max_backoff;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.conn.settings.retry_backoff)
            .with_max_delay(max_backoff)
            .with_factor(2.0)
            .with_max_times(self.conn.settings.max_retries)
            .with_jitter();
        let result = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt::<T>(endpoint, &url, call).await
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(Failure::retryable)
        // The pool's own word stretches our backoff, never shortens it (a reset already
        // past is a wait of 0); a wait longer than our cap ends this poll instead, and the
        // budget keeps the next requests back until then.
        .adjust(
            move |e: &Failure, backoff| match (backoff, e.server_delay()) {
                (None, _) => None,
                (Some(_), Some(server)) if server > max_backoff => None,
                (Some(ours), Some(server)) => Some(server.max(ours)),
                (Some(ours), None) => Some(ours),
            },
        )
        .notify(|e: &Failure, wait| {
            debug!(
                source = %self.telemetry.source,
                endpoint,
                url = %self.shown(&url),
                ?wait,
                failure = ?e,
                "retrying request"
            );
        })
        .await;
        result.map_err(|e| self.poll_error(endpoint, e, attempts.load(Ordering::Relaxed)))
    }

    /// `base_url` + `path` + `query`, as the request for them goes out (before the token).
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<reqwest::Url, PollError> {
        let mut url =
            reqwest::Url::parse(&format!("{}{}", self.conn.base_url, path)).map_err(|e| {
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

    async fn attempt<T: FromBody>(
        &self,
        endpoint: &'static str,
        url: &reqwest::Url,
        call: &Call<'_>,
    ) -> Result<T, Failure> {
        match &self.conn.host_budget {
            Some(host) => acquire_all(&[&self.conn.budget, host]).await,
            None => self.conn.budget.acquire().await,
        }
        // Each attempt signs afresh: the API refuses an old timestamp.
        let signed_url;
        let url = match &self.conn.auth.signing {
            Some(
                signing @ Signing {
                    scheme: SigningScheme::Query { .. },
                    ..
                },
            ) => {
                signed_url = self
                    .signed_query(signing, url, call.body.unwrap_or_default())
                    .map_err(|problem| Failure::Transport(problem.to_string()))?;
                &signed_url
            }
            _ => url,
        };
        let mut request = self
            .http
            .request(call.method.clone(), url.clone())
            .timeout(self.conn.settings.timeout)
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("mining-exporter/", env!("CARGO_PKG_VERSION")),
            );
        match auth_header(&self.conn.auth.token, &self.conn.token) {
            Ok(Some((name, value))) => request = request.header(name, value),
            Ok(None) => {}
            Err(problem) => return Err(Failure::Transport(problem.to_string())),
        }
        for (name, value) in self.conn.auth.headers.iter().chain(call.headers) {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        if let Some(
            signing @ Signing {
                scheme: SigningScheme::Headers,
                ..
            },
        ) = &self.conn.auth.signing
        {
            request = self
                .sign(
                    request,
                    signing,
                    call.method,
                    url,
                    call.body.unwrap_or_default(),
                )
                .map_err(|problem| Failure::Transport(problem.to_string()))?;
        }
        debug!(source = %self.telemetry.source, url = %self.shown(url), method = %call.method, "request");
        let probe = call.probe;
        let started = tokio::time::Instant::now();
        let mut seen = Seen::default();
        let outcome = match self.send(request, call, &mut seen).await {
            Ok(read) => {
                let status = read.status;
                decode::off_async_threads(read.body.len(), move || T::from_body(read, probe))
                    .await
                    .map(|value| (status, value))
                    .map_err(|detail| Failure::Decode(self.pool_text(&detail)))
            }
            Err(e) => Err(e),
        };
        // Each request is counted once, by how it ended.
        let code = match &outcome {
            Ok((status, _)) => status.as_str(),
            Err(failure) => failure.code(),
        };
        self.telemetry.request_answered(endpoint, code);
        self.record_budgets();
        if let Some(log) = self.log.get() {
            log.push(self.record_of(endpoint, call, url, seen, &outcome, started.elapsed()));
        }
        outcome.map(|(_, value)| value)
    }

    fn record_of<T>(
        &self,
        endpoint: &'static str,
        call: &Call<'_>,
        url: &reqwest::Url,
        seen: Seen,
        outcome: &Result<(StatusCode, T), Failure>,
        took: Duration,
    ) -> RequestRecord {
        let (ending, message) = match outcome {
            Ok(_) => (Ending::Answered, None),
            Err(Failure::Timeout) => (Ending::Timeout, None),
            Err(Failure::Transport(detail)) if seen.status.is_none() => {
                (Ending::of_transport(detail), Some(detail.clone()))
            }
            Err(
                Failure::Status { message, .. }
                | Failure::Transport(message)
                | Failure::Decode(message),
            ) => (Ending::Answered, Some(message.clone())),
            Err(Failure::ClockSkew { skew, .. }) => (
                Ending::ClockSkew,
                Some(format!(
                    "our clock is {skew} s off the API's Date, more than a signed request may be"
                )),
            ),
        };
        RequestRecord {
            endpoint,
            method: call.method.to_string(),
            url: self.shown(url),
            ending,
            status: seen.status,
            message,
            rate: seen.rate,
            clock_skew_seconds: seen.clock_skew_seconds,
            bytes: seen.bytes,
            took,
        }
    }

    /// Sends and reads the body (capped). A status the call does not take as an answer
    /// (by default, any but 2xx) becomes a Failure::Status.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        call: &Call<'_>,
        seen: &mut Seen,
    ) -> Result<Read, Failure> {
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Transport(self.pool_text(&error_chain(&e.without_url())))
            }
        };
        let mut response = request.send().await.map_err(transport)?;
        let status = response.status();
        let rate = rate_headers(
            response.headers(),
            self.conn.clock.now(),
            self.conn.budget.longest_window(),
        );
        self.warn_once_about(&rate.clamped);
        seen.status = Some(status.as_u16());
        seen.rate = RateSeen {
            limit: rate.limit,
            remaining: rate.remaining,
            reset_in_seconds: rate.reset_in.map(|d| d.as_secs_f64()),
            retry_after_seconds: rate.retry_after.map(|d| d.as_secs_f64()),
        };
        seen.clock_skew_seconds = clock_skew(response.headers(), self.conn.clock.now());
        self.conn
            .budget
            .observe_upstream(rate.remaining, rate.reset_in);
        let accepted = call.accepts(status);
        let next_link = link_header::next(response.headers());
        let limited = status == StatusCode::TOO_MANY_REQUESTS;
        let server_delay = if limited {
            self.conn.budget.note_rate_limited();
            if let Some(host) = &self.conn.host_budget {
                host.note_rate_limited();
            }
            rate.retry_after.or(rate.reset_in)
        } else {
            rate.retry_after
        };
        if !accepted && (limited || server_delay.is_some()) {
            // A "wait" answer holds back every request on the budgets this one used (a pool
            // that bans by address, every source calling it), never for less than our own
            // backoff: a reset already past or a 429 without headers still means "not now".
            let pause = server_delay
                .unwrap_or_default()
                .max(self.conn.settings.retry_backoff);
            self.conn.budget.pause(pause);
            if let Some(host) = &self.conn.host_budget {
                host.pause(pause);
            }
        }

        // After the rate headers: a skewed answer still tells the budget what it knows.
        if let Some(signing) = &self.conn.auth.signing {
            let skew = seen.clock_skew_seconds;
            if let Some(skew) = skew.filter(|s| s.unsigned_abs() > signing.max_clock_skew.as_secs())
            {
                return Err(Failure::ClockSkew { status, skew });
            }
        }
        let limit = self.conn.settings.max_response_bytes;
        if accepted && response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large(limit));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                if !accepted {
                    // The start of an error body is enough to say what went wrong.
                    break;
                }
                return Err(too_large(limit));
            }
            let read = self.poll_bytes.fetch_add(chunk.len(), Ordering::Relaxed) + chunk.len();
            if read > self.conn.settings.max_poll_bytes {
                return Err(Failure::Decode(format!(
                    "this poll's answers add up to more than max_poll_bytes = {} bytes",
                    self.conn.settings.max_poll_bytes
                )));
            }
            body.extend_from_slice(&chunk);
        }
        seen.bytes = body.len();
        if accepted {
            Ok(Read {
                status,
                next_link,
                body,
            })
        } else {
            Err(Failure::Status {
                status,
                message: self.pool_text(&error_message(&body)),
                server_delay,
            })
        }
    }

    /// Text that came from the pool, made fit for errors and logs: the token and the signing
    /// secret scrubbed out in every form, then cut to length.
    pub fn pool_text(&self, text: &str) -> String {
        shorten(&self.scrub(text))
    }

    /// `text` without the token or the signing secret, raw or percent-encoded.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let text = self.conn.token.scrub(text);
        match self
            .conn
            .auth
            .signing
            .as_ref()
            .and_then(|s| s.secret.as_ref())
        {
            Some(secret) => secret.scrub(&text),
            None => text,
        }
    }

    fn warn_once_about(&self, clamped: &[&'static str]) {
        for header in clamped {
            if self.telemetry.first(header) {
                warn!(
                    source = %self.telemetry.source,
                    pool = self.telemetry.pool,
                    header,
                    cap = ?self.conn.budget.longest_window(),
                    "the pool sent an unusable wait (not a number or date, negative, a reset further than the budget's longest window, or a Retry-After past both the longest window and an hour); waiting that long instead (logged once)"
                );
            }
        }
    }

    fn poll_error(&self, endpoint: &'static str, failure: Failure, attempts: usize) -> PollError {
        match failure {
            Failure::Status {
                status, message, ..
            } => match status.as_u16() {
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
                timeout: self.conn.settings.timeout,
            },
            Failure::Transport(detail) => PollError::Transport { endpoint, detail },
            Failure::Decode(detail) => PollError::Decode { endpoint, detail },
            Failure::ClockSkew { skew, .. } => PollError::ClockSkew {
                endpoint,
                skew_seconds: skew,
                max_seconds: self
                    .conn
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

    /// Adds the HMAC signature headers for `method` of `url` with `body`.
    fn sign(
        &self,
        request: reqwest::RequestBuilder,
        signing: &Signing,
        method: &reqwest::Method,
        url: &reqwest::Url,
        body: &[u8],
    ) -> Result<reqwest::RequestBuilder, &'static str> {
        let secret = signing
            .secret
            .as_ref()
            .ok_or("the signing secret could not be read")?;
        let timestamp = self.conn.clock.unix_seconds();
        let nonce = signing::nonce();
        let path_with_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        };
        let canonical =
            signing::canonical(timestamp, &nonce, method.as_str(), &path_with_query, body);
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

impl Upstream {
    /// `url` with the query scheme's timestamp and signature appended.
    fn signed_query(
        &self,
        signing: &Signing,
        url: &reqwest::Url,
        body: &[u8],
    ) -> Result<reqwest::Url, &'static str> {
        let SigningScheme::Query {
            timestamp_param,
            signature_param,
        } = &signing.scheme
        else {
            return Ok(url.clone());
        };
        let secret = signing
            .secret
            .as_ref()
            .ok_or("the signing secret could not be read")?;
        let millis = self
            .conn
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let mut url = url.clone();
        url.query_pairs_mut()
            .append_pair(timestamp_param, &millis.to_string());
        let mut signed = url.query().unwrap_or_default().as_bytes().to_vec();
        signed.extend_from_slice(body);
        let signature = signing::hex_hmac(secret.expose().as_bytes(), &signed);
        url.query_pairs_mut()
            .append_pair(signature_param, &signature);
        Ok(url)
    }
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

fn too_large(limit: usize) -> Failure {
    Failure::Decode(format!("response body larger than {limit} bytes"))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
