//! The HTTP face: `/metrics`, `/-/healthy`, `/-/ready` and a landing page.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::exporter::reload_requests::Reloads;
use crate::exposition::{self, Exposition};
use crate::snapshot::Store;

#[derive(Debug, Clone)]
pub struct AppState {
    pub exposition: Arc<Exposition>,
    pub store: Arc<Store>,
    /// Set when `--web.enable-lifecycle` serves `POST /-/reload`.
    pub reloads: Option<Reloads>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload))
        .route("/", get(landing))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let rendered = state.exposition.current();
    if accepts_gzip(&headers) {
        // The page's own pieces, a few large chunks at a time: no copy of a large page.
        let chunks = rendered.gzip_chunks();
        let body = Body::from_stream(futures_util::stream::iter(
            chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
        ));
        (
            [
                (CONTENT_TYPE, exposition::CONTENT_TYPE.to_string()),
                (CONTENT_ENCODING, "gzip".to_string()),
                (VARY, "Accept-Encoding".to_string()),
                (CONTENT_LENGTH, rendered.gzip_len().to_string()),
            ],
            body,
        )
            .into_response()
    } else {
        // The page is kept gzipped only; the rare plain client gets it unpacked as it is sent.
        let body = Body::from_stream(futures_util::stream::iter(rendered.unpacking()));
        (
            [
                (CONTENT_TYPE, exposition::CONTENT_TYPE.to_string()),
                (VARY, "Accept-Encoding".to_string()),
                (CONTENT_LENGTH, rendered.text_len().to_string()),
            ],
            body,
        )
            .into_response()
    }
}

/// True when Accept-Encoding lists gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Re-reads the config file, as SIGHUP does, and says how it went; 403 unless the lifecycle
/// API is enabled, as in Prometheus.
async fn reload(State(state): State<AppState>) -> (StatusCode, String) {
    match state.reloads {
        None => (
            StatusCode::FORBIDDEN,
            "the lifecycle API is not enabled: start with --web.enable-lifecycle, or send SIGHUP\n"
                .to_string(),
        ),
        Some(reloads) => match reloads.request().await {
            Ok(()) => (StatusCode::OK, "configuration reloaded\n".to_string()),
            Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n")),
        },
    }
}

async fn healthy() -> &'static str {
    "OK\n"
}

/// Ready once every source has finished its first poll, successful or not: from then on
/// /metrics says what there is to say, including which sources are down. Each line after the
/// first names a source that is down and why, so a probe's log shows the cause.
async fn ready(State(state): State<AppState>) -> (StatusCode, String) {
    let statuses = state.store.statuses();
    let waiting: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.polled)
        .map(|s| s.source.as_str())
        .collect();
    let mut body = if waiting.is_empty() {
        "ready\n".to_string()
    } else {
        format!("waiting for the first poll of: {}\n", waiting.join(", "))
    };
    for status in &statuses {
        if let Some(error) = &status.last_error {
            body.push_str(&format!(
                "source {} down ({}): {}\n",
                status.source,
                error.kind,
                one_line(&error.message)
            ));
        }
    }
    let code = if waiting.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

/// A message on one line: a pool's text may hold line breaks.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text made safe inside HTML: an error message carries what a pool sent.
fn html_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn landing(State(state): State<AppState>) -> Html<String> {
    let rows: String = state
        .store
        .statuses()
        .iter()
        .map(|s| {
            let status = match (s.polled, s.up, s.last_success.is_some()) {
                (false, _, _) => "waiting for first poll",
                (true, true, _) => "up",
                (true, false, true) => "down (serving last good data)",
                (true, false, false) => "down (no successful poll yet: no pool data to serve)",
            };
            let last_error = s
                .last_error
                .as_ref()
                .map(|e| format!("{}: {}", e.kind, html_escaped(&one_line(&e.message))))
                .unwrap_or_default();
            // Pool kinds are constants and source names are restricted to [A-Za-z0-9_.-].
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.source,
                s.pool,
                status,
                s.snapshot.series_count(),
                last_error
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mining-exporter</title></head>\
         <body><h1>mining-exporter {}</h1>\
         <p><a href=\"/metrics\">/metrics</a> · <a href=\"/-/healthy\">/-/healthy</a> · \
         <a href=\"/-/ready\">/-/ready</a></p>\
         <table><tr><th>source</th><th>pool</th><th>status</th><th>series</th><th>last error</th></tr>{rows}</table>\
         </body></html>\n",
        env!("CARGO_PKG_VERSION")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, value.parse().unwrap());
        h
    }

    #[test]
    fn a_pool_s_text_cannot_write_html_or_break_a_line() {
        assert_eq!(
            html_escaped("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(one_line("bad\r\nkey:  here"), "bad key: here");
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&with("gzip")));
        assert!(accepts_gzip(&with("deflate, gzip;q=0.8")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
