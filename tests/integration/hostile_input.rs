//! Pool input that once stopped a source: absurd rate-limit headers, a source that panics,
//! a worker list larger than the page cap. Each must fail at most one poll, be counted, and
//! leave the source polling.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use httpmock::prelude::*;
use mining_exporter::Exporter;
use mining_exporter::client::Upstream;
use mining_exporter::metrics::WORKER_UP;
use mining_exporter::snapshot::Snapshot;
use mining_exporter::sources::{PollFuture, Source};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// Every endpoint of one poll answers 200 with `headers`, the way a confused pool might.
async fn mock_poll_with_headers(server: &MockServer, headers: &[(&str, &str)]) {
    let endpoints = [
        (
            "/v1/overview",
            json!({"hashrate": {"current": 1000.0}, "by_algorithm": [{"algorithm": "randomx", "hashrate": 1000.0}]}),
        ),
        (
            "/v1/workers",
            json!({"data": [worker("rig01", "online", 1000.0)],
                   "pagination": {"page": 1, "limit": 100, "total": 1, "total_pages": 1}}),
        ),
        (
            "/v1/workers/hashrate",
            json!({"stats": {"avg_hashrate": 990.0, "peak_hashrate": 1100.0}}),
        ),
    ];
    for (path, body) in endpoints {
        server
            .mock_async(|when, then| {
                when.method(GET).path(path);
                let mut then = then.status(200);
                for (name, value) in headers {
                    then = then.header(*name, *value);
                }
                then.json_body(body);
            })
            .await;
    }
}

#[tokio::test]
async fn absurd_rate_limit_resets_are_clamped_not_fatal() {
    for reset in ["100000000000000000000", "-5", "soon", "NaN", "inf", "1e308"] {
        let server = MockServer::start_async().await;
        let headers = [
            ("x-ratelimit-remaining", "7"),
            ("x-ratelimit-reset", reset),
            ("retry-after", reset),
        ];
        mock_poll_with_headers(&server, &headers).await;
        let (exporter, _dir) = exporter(&server.base_url(), "");
        poll_ok(&exporter).await;
        let page = text(&exporter);
        assert_eq!(
            sample(&page, "mining_exporter_source_up", &["source=\"proxy\""]),
            Some(1.0),
            "reset {reset:?}:\n{page}"
        );
    }
}

/// A source with a bug: every other poll panics, the others succeed with one series.
struct PanicsEveryOtherPoll {
    polls: AtomicUsize,
}

impl Source for PanicsEveryOtherPoll {
    fn poll<'a>(&'a self, _api: &'a Upstream) -> PollFuture<'a> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::task::yield_now().await;
            if n % 2 == 0 {
                let workers: Vec<u32> = Vec::new();
                // An index out of bounds, as a parser bug would hit it.
                let _ = workers[n];
            }
            let mut snap = Snapshot::new();
            snap.set(&WORKER_UP, &["acct", "rig01"], 1.0);
            Ok(snap)
        })
    }
}

#[tokio::test]
async fn a_panicking_poll_is_counted_logged_once_and_the_source_keeps_polling() {
    let (logs, _logging) = capture_logs();

    let dir = tempfile::TempDir::new().unwrap();
    let config = config(
        dir.path(),
        "http://127.0.0.1:1",
        "interval = \"1s\"\nbudget = \"roomy\"\n[budgets.roomy]\nlimits = [\"1000/1s\"]",
    );
    let exporter = Exporter::with_sources(config, |_| {
        Box::new(PanicsEveryOtherPoll {
            polls: AtomicUsize::new(0),
        })
    })
    .unwrap();
    let exposition = exporter.exposition().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(exporter.serve(listener, shutdown.clone()));
    // Polls at about 0, 1, 2 and 3 s: two of them panic.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    shutdown.cancel();
    serving.await.unwrap().unwrap();

    let page = String::from_utf8(exposition.current().text.to_vec()).unwrap();
    let panics = sample(
        &page,
        "mining_exporter_poll_errors_total",
        &["source=\"proxy\"", "kind=\"panic\""],
    )
    .unwrap_or_default();
    assert!(panics >= 2.0, "{page}");
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"rig01\""]),
        Some(1.0),
        "the polls between the panics succeeded:\n{page}"
    );
    let logs = logs.text();
    let logged: Vec<&str> = logs.lines().filter(|l| l.contains("panicked")).collect();
    // One line per panic: not the panic hook's raw print plus ours.
    assert_eq!(logged.len() as f64, panics, "{logs}");
    assert!(logged[0].contains("source=proxy"), "{}", logged[0]);
    assert!(logged[0].contains("index out of bounds"), "{}", logged[0]);
    assert!(logged[0].contains("kind=\"panic\"") || logged[0].contains("kind=panic"));
}

#[tokio::test]
async fn a_farm_over_the_page_cap_is_one_clear_error_after_one_page() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/overview");
            then.status(200)
                .json_body(json!({"hashrate": {"current": 1.0}}));
        })
        .await;
    let pages = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/workers");
            let data: Vec<_> = (0..100)
                .map(|i| worker(&format!("rig{i:03}"), "online", 1.0))
                .collect();
            then.status(200).json_body(json!({
                "data": data,
                "pagination": {"page": 1, "limit": 100, "total": 250_000, "total_pages": 2500}
            }));
        })
        .await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    let outcome = exporter.poll_once("proxy").await.unwrap();
    assert_eq!(
        outcome,
        mining_exporter::scheduler::Outcome::Failure { kind: "decode" }
    );
    assert_eq!(pages.calls_async().await, 1, "no page after the first");
    let status = exporter.store().statuses();
    assert!(!status[0].up);
}
