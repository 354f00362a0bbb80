//! Pool input that once stopped a source: absurd rate-limit headers, a source that panics,
//! a worker list larger than the page cap. Each must fail at most one poll, be counted, and
//! leave the source polling.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use httpmock::prelude::*;
use mining_exporter::client::Upstream;
use mining_exporter::metrics::WORKER_UP;
use mining_exporter::snapshot::Snapshot;
use mining_exporter::sources::{PollFuture, Source};
use mining_exporter::{Exporter, ExporterOptions};
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
    let exporter = Exporter::with_options(
        config,
        ExporterOptions {
            build_source: Box::new(|_| {
                Box::new(PanicsEveryOtherPoll {
                    polls: AtomicUsize::new(0),
                })
            }),
            ..ExporterOptions::default()
        },
    )
    .unwrap();
    let exposition = exporter.exposition().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(exporter.serve(listener, shutdown.clone()));
    // Polls at about 0, 1, 2 and 3 s: two of them panic.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    shutdown.cancel();
    serving.await.unwrap().unwrap();

    let page = String::from_utf8(exposition.current().text()).unwrap();
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
    mock_overview(&server).await;
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

#[tokio::test]
async fn one_odd_worker_is_read_leniently_or_skipped_and_counted_never_freezing_the_source() {
    let server = MockServer::start_async().await;
    mock_workers(
        &server,
        json!([
            // A number as a name, and the last share in epoch seconds.
            {"_id": "a1", "name": 1001, "algorithm": "randomx", "status": "online",
             "hashrate": 1000.0, "last_share_at": 1_800_000_000},
            // RFC 3339, as documented.
            {"_id": "a2", "name": "rig02", "algorithm": "randomx", "status": "online",
             "hashrate": 1000.0, "last_share_at": "2027-01-15T08:00:00Z"},
            // A hashrate no reading can make a number of.
            {"_id": "a3", "name": "rig03", "algorithm": "randomx", "status": "online",
             "hashrate": {"value": "fast"}},
            "not a worker at all",
            // Neither name nor id: nothing to label its series with.
            {"algorithm": "randomx", "status": "online", "hashrate": 1000.0},
        ]),
    )
    .await;
    let (logs, _guard) = capture_logs();
    let (exporter, _dir) = exporter(&server.base_url(), "");
    for _ in 0..2 {
        poll_ok(&exporter).await;
    }
    let page = text(&exporter);
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"1001\""]),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "mining_worker_last_share_timestamp_seconds",
            &["worker=\"1001\""]
        ),
        Some(1_800_000_000.0)
    );
    // 2027-01-15T08:00:00Z is 1800000000 too: both forms read as the same instant.
    assert_eq!(
        sample(
            &page,
            "mining_worker_last_share_timestamp_seconds",
            &["worker=\"rig02\""]
        ),
        Some(1_800_000_000.0)
    );
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"rig03\""]),
        None
    );
    assert_eq!(
        sample(
            &page,
            "mining_exporter_items_skipped_total",
            &["source=\"proxy\"", "reason=\"unreadable\""]
        ),
        Some(4.0),
        "two unreadable items on each of two polls"
    );
    assert_eq!(
        sample(
            &page,
            "mining_exporter_items_skipped_total",
            &["source=\"proxy\"", "reason=\"unnamed\""]
        ),
        Some(2.0),
        "one unnamed worker on each of two polls"
    );
    let warned = logs
        .text()
        .lines()
        .filter(|l| l.contains("could not be read and was skipped"))
        .count();
    assert_eq!(warned, 1, "warned once:\n{}", logs.text());

    // A list sent as null is an empty list, not a broken poll.
    let server = MockServer::start_async().await;
    mock_workers(&server, serde_json::Value::Null).await;
    let (empty, _empty_dir) = crate::common::exporter(&server.base_url(), "");
    poll_ok(&empty).await;
    let page = text(&empty);
    assert_eq!(
        sample(
            &page,
            "mining_exporter_items_skipped_total",
            &["source=\"proxy\"", "reason=\"unreadable\""]
        ),
        Some(0.0),
        "the counter is there at 0 before anything is skipped:\n{page}"
    );
}

/// Ultimate Proxy's overview, with a hashrate of 1 H/s.
async fn mock_overview(server: &MockServer) {
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/overview");
            then.status(200)
                .json_body(json!({"hashrate": {"current": 1.0}}));
        })
        .await;
}

/// The overview and one page of `workers` (a list, or null) answer; the series endpoint is
/// returned, to count its calls.
async fn mock_workers(server: &MockServer, workers: serde_json::Value) -> httpmock::Mock<'_> {
    mock_overview(server).await;
    let count = workers.as_array().map_or(0, Vec::len);
    server
        .mock_async(move |when, then| {
            when.method(GET).path("/v1/workers");
            then.status(200).json_body(json!({
                "data": workers,
                "pagination": {"page": 1, "limit": 100, "total": count, "total_pages": 1}
            }));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/workers/hashrate");
            then.status(200)
                .json_body(json!({"stats": {"avg_hashrate": 1.0}}));
        })
        .await
}

#[tokio::test]
async fn five_hundred_odd_algorithm_names_cost_no_request_past_the_cap() {
    let server = MockServer::start_async().await;
    let workers: Vec<_> = (0..500)
        .map(|i| json!({"name": format!("rig{i}"), "algorithm": format!("algo-{i}"), "status": "online", "hashrate": 1.0}))
        .collect();
    let series = mock_workers(&server, json!(workers)).await;
    let (logs, _guard) = capture_logs();
    let (exporter, _dir) = exporter(&server.base_url(), "");
    poll_fails(&exporter, "decode").await;
    assert_eq!(
        series.calls_async().await,
        0,
        "no series asked for 500 names"
    );
    assert!(logs.text().contains("500 algorithms"), "{}", logs.text());
}

#[tokio::test]
async fn a_label_of_any_length_is_cut_with_a_marker_and_counted() {
    let server = MockServer::start_async().await;
    let long = "w".repeat(100_000);
    mock_workers(
        &server,
        json!([{"name": long, "algorithm": "randomx", "status": "online", "hashrate": 5.0}]),
    )
    .await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    poll_ok(&exporter).await;
    let page = text(&exporter);
    let line = page
        .lines()
        .find(|l| l.starts_with("mining_worker_up{"))
        .unwrap();
    let worker = line
        .split("worker=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(worker.len() <= 256, "{} bytes", worker.len());
    assert!(
        worker.ends_with('…') && worker.starts_with("www"),
        "{worker}"
    );
    assert_eq!(
        sample(
            &page,
            "mining_exporter_labels_truncated_total",
            &["source=\"proxy\""]
        ),
        Some(1.0)
    );
    assert!(
        page.len() < 20_000,
        "the page repeats no 100 kB label: {} bytes",
        page.len()
    );
}

#[tokio::test]
async fn a_poll_reads_no_more_bytes_in_all_than_its_budget() {
    let server = MockServer::start_async().await;
    mock_overview(&server).await;
    let filler = "x".repeat(3000);
    let pages = server
        .mock_async(move |when, then| {
            when.method(GET).path("/v1/workers");
            then.status(200).json_body(json!({
                "data": [{"name": "rig", "algorithm": "randomx", "note": filler}],
                "pagination": {"total_pages": 50}
            }));
        })
        .await;
    let (exporter, _dir) = exporter(
        &server.base_url(),
        "max_response_bytes = 4096\nmax_poll_bytes = 10000",
    );
    poll_fails(&exporter, "decode").await;
    // Three pages of about 3 kB fit in 10,000 bytes; reading the fourth passes the budget
    // and ends the poll, so no fifth of the 50 is asked.
    assert_eq!(pages.calls_async().await, 4);
}

#[tokio::test]
async fn luxor_splits_a_long_list_of_names_into_requests_of_bounded_length() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v2/pool/summary/BTC");
            then.status(200).json_body(json!({"hashrate_5m": "1"}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/workspace");
            then.status(200).json_body(json!({"name": "ws"}));
        })
        .await;
    let longest = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = longest.clone();
    let workers = server
        .mock_async(move |when, then| {
            when.method(GET)
                .path("/v2/pool/workers/BTC")
                .is_true(move |req: &HttpMockRequest| {
                    let names = req
                        .query_params()
                        .into_iter()
                        .find(|(k, _)| k == "subaccount_names")
                        .map(|(_, v)| v.len())
                        .unwrap_or(0);
                    seen.fetch_max(names, Ordering::SeqCst);
                    true
                });
            then.status(200)
                .json_body(json!({"workers": [], "pagination": {"next_page_url": null}}));
        })
        .await;
    let names: Vec<String> = (0..150)
        .map(|i| format!("\"subaccount-name-{i:03}\""))
        .collect();
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let toml = format!(
        "[[sources]]\nkind = \"luxor\"\nname = \"lx\"\nbase_url = \"{}\"\ntoken_file = \"token\"\nsubaccounts = [{}]\nbudget = \"big\"\n[budgets.big]\nlimits = [\"10000/1s\"]\n",
        server.base_url(),
        names.join(",")
    );
    let config = mining_exporter::config::Config::parse(
        &toml,
        "l.toml",
        dir.path(),
        mining_exporter::config::SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    let exporter = Exporter::new(config).unwrap();
    let outcome = exporter.poll_once("lx").await.unwrap();
    assert!(
        matches!(outcome, mining_exporter::scheduler::Outcome::Success { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        workers.calls_async().await,
        2,
        "3,149 characters of names in two requests"
    );
    assert!(longest.load(Ordering::SeqCst) <= 2000);
}
