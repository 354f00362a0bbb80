//! What the client does on the wire: auth, pagination, retries, limits, budgets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use httpmock::prelude::*;
use mining_exporter::scheduler::Outcome;
use serde_json::json;

use crate::common::*;

/// The first `n` requests to the mock answer with it; later ones fall through to the next mock.
fn first(n: usize) -> impl Fn(&HttpMockRequest) -> bool + Send + Sync + 'static {
    let seen = Arc::new(AtomicUsize::new(0));
    move |_| seen.fetch_add(1, Ordering::SeqCst) < n
}

#[tokio::test]
async fn sends_the_api_key_and_fetches_every_page() {
    let server = MockServer::start_async().await;
    let mut pages = Vec::new();
    for page in 1..=3 {
        let from = (page - 1) * 100;
        let data: Vec<_> = (from..(from + 100).min(250))
            .map(|i| worker(&format!("rig{i:03}"), "online", 1000.0 + i as f64))
            .collect();
        pages.push(
            server
                .mock_async(move |when, then| {
                    when.method(GET)
                        .path("/v1/workers")
                        .header("x-api-key", TOKEN)
                        .query_param("page", page.to_string())
                        .query_param("limit", "100");
                    then.status(200).json_body(json!({
                        "data": data,
                        "pagination": {"page": page, "limit": 100, "total": 250, "total_pages": 3}
                    }));
                })
                .await,
        );
    }
    let overview = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/overview")
                .header("x-api-key", TOKEN);
            then.status(200)
                .json_body(json!({"hashrate": {"current": 5.0}}));
        })
        .await;
    mock_series(&server).await;

    let (exporter, _dir) = exporter(&server.base_url(), "");
    poll_ok(&exporter).await;
    for page in &pages {
        assert_eq!(page.calls_async().await, 1);
    }
    assert_eq!(overview.calls_async().await, 1);
    let page = text(&exporter);
    assert_eq!(
        sample(&page, "mining_workers", &["state=\"active\""]),
        Some(250.0)
    );
    assert_eq!(
        sample(
            &page,
            "mining_worker_hashrate_hashes_per_second",
            &["worker=\"rig249\""]
        ),
        Some(1249.0)
    );
    assert_eq!(
        sample(
            &page,
            "mining_exporter_upstream_requests_total",
            &["endpoint=\"/v1/workers\"", "code=\"200\""]
        ),
        Some(3.0)
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_the_poll_succeeds() {
    let server = MockServer::start_async().await;
    let limited = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/overview").is_true(first(1));
            then.status(429)
                .header("retry-after", "1")
                .json_body(json!({"error": "Rate limit exceeded"}));
        })
        .await;
    mock_poll(&server, vec![worker("rig1", "online", 10.0)]).await;

    let (exporter, _dir) = exporter(&server.base_url(), "");
    let started = Instant::now();
    poll_ok(&exporter).await;
    // The backoff is 10 ms here: only Retry-After explains a wait of a second.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(limited.calls_async().await, 1);
    let page = text(&exporter);
    assert_eq!(
        sample(
            &page,
            "mining_exporter_upstream_requests_total",
            &["code=\"429\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, "mining_exporter_rate_limited_total", &[]),
        Some(1.0)
    );
    assert_eq!(sample(&page, "mining_exporter_source_up", &[]), Some(1.0));
}

#[tokio::test]
async fn a_500_is_retried() {
    let server = MockServer::start_async().await;
    let failing = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/workers").is_true(first(2));
            then.status(500)
                .json_body(json!({"error": "Internal server error"}));
        })
        .await;
    mock_poll(&server, vec![worker("rig1", "online", 10.0)]).await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    poll_ok(&exporter).await;
    assert_eq!(failing.calls_async().await, 2);
    let page = text(&exporter);
    assert_eq!(
        sample(
            &page,
            "mining_exporter_upstream_requests_total",
            &["code=\"500\""]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    for (status, kind) in [
        (401, "auth"),
        (403, "auth"),
        (404, "not_found"),
        (400, "http"),
    ] {
        let server = MockServer::start_async().await;
        let refused = server
            .mock_async(|when, then| {
                when.method(GET).path("/v1/overview");
                then.status(status).json_body(json!({"error": "nope"}));
            })
            .await;
        let (exporter, _dir) = exporter(&server.base_url(), "");
        let outcome = exporter.poll_once("proxy").await.unwrap();
        assert_eq!(outcome, Outcome::Failure { kind }, "HTTP {status}");
        assert_eq!(refused.calls_async().await, 1, "HTTP {status} was retried");
        let page = text(&exporter);
        assert_eq!(sample(&page, "mining_exporter_source_up", &[]), Some(0.0));
        assert_eq!(
            sample(
                &page,
                "mining_exporter_poll_errors_total",
                &[&format!("kind=\"{kind}\"")]
            ),
            Some(1.0)
        );
    }
}

#[tokio::test]
async fn a_slow_pool_times_out_after_the_retries() {
    let server = MockServer::start_async().await;
    let slow = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/overview");
            then.status(200)
                .delay(Duration::from_millis(800))
                .json_body(json!({}));
        })
        .await;
    let (exporter, _dir) = exporter(&server.base_url(), "timeout = \"100ms\"\nmax_retries = 1");
    let outcome = exporter.poll_once("proxy").await.unwrap();
    assert_eq!(outcome, Outcome::Failure { kind: "timeout" });
    assert_eq!(slow.calls_async().await, 2);
    let page = text(&exporter);
    assert_eq!(
        sample(
            &page,
            "mining_exporter_upstream_requests_total",
            &["code=\"timeout\""]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn an_oversized_body_or_a_200_error_body_is_a_decode_failure() {
    let server = MockServer::start_async().await;
    let huge = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/overview");
            then.status(200)
                .body(format!("{{\"pad\":\"{}\"}}", "x".repeat(4096)));
        })
        .await;
    let (exporter, _dir) = exporter(&server.base_url(), "max_response_bytes = 1024");
    poll_fails(&exporter, "decode").await;
    assert_eq!(huge.calls_async().await, 1);
    huge.delete_async().await;

    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/overview");
            then.status(200)
                .json_body(json!({"error": "Rate limit exceeded"}));
        })
        .await;
    poll_fails(&exporter, "decode").await;
    let page = text(&exporter);
    assert_eq!(
        sample(
            &page,
            "mining_exporter_upstream_requests_total",
            &["code=\"decode\""]
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn every_page_waits_for_the_budget() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/overview");
            then.status(200).json_body(json!({}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/workers");
            then.status(200).json_body(json!({
                "data": [worker("rig1", "online", 1.0)],
                "pagination": {"page": 1, "limit": 100, "total": 500, "total_pages": 5}
            }));
        })
        .await;
    mock_series(&server).await;
    let extra = "budget = \"tight\"\n[budgets.tight]\nlimits = [\"3/1s\"]";
    let (exporter, _dir) = exporter(&server.base_url(), extra);
    let started = Instant::now();
    poll_ok(&exporter).await;
    // 7 requests (overview, 5 pages, series) at 3 per second: the 7th leaves after 2 s.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let page = text(&exporter);
    let waited = sample(
        &page,
        "mining_exporter_budget_wait_seconds_total",
        &["budget=\"tight\""],
    )
    .unwrap();
    assert!(waited >= 1.5, "waited {waited}");
}

#[tokio::test]
async fn rate_limit_headers_hold_the_next_request_until_the_reset() {
    let server = MockServer::start_async().await;
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2;
    server
        .mock_async(move |when, then| {
            when.method(GET).path("/v1/overview");
            then.status(200)
                .header("x-ratelimit-limit", "60")
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", reset.to_string())
                .json_body(json!({}));
        })
        .await;
    let workers = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/workers");
            then.status(200)
                .json_body(json!({"data": [], "pagination": {"total_pages": 1}}));
        })
        .await;
    mock_series(&server).await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    let started = Instant::now();
    poll_ok(&exporter).await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(workers.calls_async().await, 1);
}

#[tokio::test]
async fn a_429_whose_reset_is_already_past_still_waits_the_backoff() {
    let server = MockServer::start_async().await;
    let past = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let limited = server
        .mock_async(move |when, then| {
            when.method(GET).path("/v1/overview").is_true(first(2));
            then.status(429)
                .header("x-ratelimit-remaining", "0")
                .header("x-ratelimit-reset", past.to_string())
                .json_body(json!({"error": "Rate limit exceeded"}));
        })
        .await;
    mock_poll(&server, vec![worker("rig1", "online", 10.0)]).await;
    let (exporter, _dir) = exporter_with_backoff(&server.base_url(), "300ms", "max_retries = 3");
    let started = Instant::now();
    poll_ok(&exporter).await;
    assert_eq!(limited.calls_async().await, 2);
    // Two retries after 300 ms and 600 ms of backoff at the least, not at once.
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_429_without_headers_and_a_503_with_retry_after_pause_the_budget() {
    for (status, headers) in [(429, vec![]), (503, vec![("retry-after", "30")])] {
        let server = MockServer::start_async().await;
        server
            .mock_async(move |when, then| {
                when.method(GET).path("/v1/overview");
                let mut then = then.status(status);
                for (name, value) in &headers {
                    then = then.header(*name, *value);
                }
                then.json_body(json!({"error": "slow down"}));
            })
            .await;
        let (exporter, _dir) = exporter_with_backoff(&server.base_url(), "20s", "max_retries = 0");
        let outcome = exporter.poll_once("proxy").await.unwrap();
        assert!(matches!(outcome, Outcome::Failure { .. }), "{outcome:?}");
        assert_eq!(
            sample(
                &text(&exporter),
                "mining_exporter_budget_remaining",
                &["budget=\"auto:proxy\""]
            ),
            Some(0.0),
            "a {status} holds the budget's next requests back"
        );
    }
}
