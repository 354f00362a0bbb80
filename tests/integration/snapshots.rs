//! Snapshot semantics: bad data keeps the last good series; a vanished worker vanishes.

use std::time::Duration;

use httpmock::prelude::*;
use mining_exporter::Exporter;
use mining_exporter::demo::{UltimateProxyOptions, UltimateProxySimulator};
use mining_exporter::scheduler::Outcome;

use crate::common::*;

#[tokio::test]
async fn malformed_json_keeps_the_last_good_series() {
    let server = MockServer::start_async().await;
    let mocks = mock_poll(&server, vec![worker("rig1", "online", 42.0)]).await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    poll_ok(&exporter).await;

    mocks[1].delete_async().await;
    let truncated = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/workers");
            then.status(200)
                .body(r#"{"data": [{"name": "rig1", "hashrate": 4"#);
        })
        .await;
    poll_fails(&exporter, "decode").await;
    let page = text(&exporter);
    assert_eq!(
        sample(
            &page,
            "mining_worker_hashrate_hashes_per_second",
            &["worker=\"rig1\""]
        ),
        Some(42.0)
    );
    assert_eq!(sample(&page, "mining_exporter_source_up", &[]), Some(0.0));
    assert_eq!(
        sample(
            &page,
            "mining_exporter_poll_errors_total",
            &["kind=\"decode\""]
        ),
        Some(1.0)
    );

    // Wrong types are bad data too: `data` must be a list.
    truncated.delete_async().await;
    let wrong = server
        .mock_async(|when, then| {
            when.method(GET).path("/v1/workers");
            then.status(200).body(r#"{"data": {"rig1": 1}}"#);
        })
        .await;
    poll_fails(&exporter, "decode").await;
    assert_eq!(
        sample(&text(&exporter), "mining_worker_up", &["worker=\"rig1\""]),
        Some(1.0)
    );

    wrong.delete_async().await;
    mock_poll(&server, vec![worker("rig1", "online", 43.0)]).await;
    poll_ok(&exporter).await;
    let page = text(&exporter);
    assert_eq!(
        sample(
            &page,
            "mining_worker_hashrate_hashes_per_second",
            &["worker=\"rig1\""]
        ),
        Some(43.0)
    );
    assert_eq!(sample(&page, "mining_exporter_source_up", &[]), Some(1.0));
}

async fn simulated(workers: usize) -> (UltimateProxySimulator, Exporter, tempfile::TempDir) {
    let simulator = UltimateProxySimulator::start(UltimateProxyOptions {
        workers,
        token: TOKEN.to_string(),
        outages: false,
        ..UltimateProxyOptions::default()
    })
    .await
    .unwrap();
    let (exporter, dir) = exporter(&simulator.base_url(), "");
    (simulator, exporter, dir)
}

#[tokio::test]
async fn a_worker_the_pool_no_longer_lists_vanishes_at_once() {
    let (simulator, exporter, _dir) = simulated(5).await;
    assert_eq!(
        exporter.poll_once("proxy").await.unwrap(),
        // Per worker: up, hashrate, 1h and 24h averages, rejected ratio, last share; then two
        // worker counts, and for each algorithm (four RandomX CPUs, one KawPow GPU) the
        // account's hashrate, 1h average and 1h peak.
        Outcome::Success {
            series: 5 * 6 + 2 + 2 * 3
        }
    );
    assert!(text(&exporter).contains("worker=\"rig03\""));

    assert!(simulator.remove_worker("rig03"));
    poll_ok(&exporter).await;
    let page = text(&exporter);
    assert!(
        !page.contains("worker=\"rig03\""),
        "rig03 still exported:\n{page}"
    );
    assert!(page.contains("worker=\"rig02\""));
    assert_eq!(
        sample(&page, "mining_workers", &["state=\"active\""]),
        Some(4.0)
    );
}

#[tokio::test]
async fn an_offline_worker_is_down_not_alive() {
    let (simulator, exporter, _dir) = simulated(3).await;
    simulator.take_offline("rig02", Duration::from_secs(600));
    poll_ok(&exporter).await;
    let page = text(&exporter);
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"rig02\""]),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &page,
            "mining_worker_hashrate_hashes_per_second",
            &["worker=\"rig02\""]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"rig01\""]),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, "mining_workers", &["state=\"inactive\""]),
        Some(1.0)
    );
}

#[tokio::test]
async fn max_workers_and_essential_series_cut_per_worker_series_not_the_totals() {
    let (logs, _logging) = capture_logs();
    let simulator = UltimateProxySimulator::start(UltimateProxyOptions {
        workers: 20,
        token: TOKEN.to_string(),
        outages: false,
        ..UltimateProxyOptions::default()
    })
    .await
    .unwrap();
    let (exporter, _dir) = exporter(
        &simulator.base_url(),
        "worker_series = \"essential\"\nmax_workers = 5",
    );
    for _ in 0..2 {
        poll_ok(&exporter).await;
    }
    let page = text(&exporter);
    let workers_with_series: std::collections::BTreeSet<&str> = page
        .lines()
        .filter(|l| l.starts_with("mining_worker_"))
        .filter_map(|l| l.split("worker=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        workers_with_series.into_iter().collect::<Vec<_>>(),
        ["rig01", "rig02", "rig03", "rig04", "rig05"]
    );
    assert!(
        !page.contains("mining_worker_last_share_timestamp_seconds{"),
        "not essential"
    );
    assert!(!page.contains("mining_worker_hashrate_average_hashes_per_second{"));
    let active = sample(&page, "mining_workers", &["state=\"active\""]).unwrap();
    let inactive = sample(&page, "mining_workers", &["state=\"inactive\""]).unwrap();
    assert_eq!(active + inactive, 20.0, "the totals count every worker");
    assert_eq!(
        sample(
            &page,
            "mining_exporter_workers_omitted",
            &["source=\"proxy\""]
        ),
        Some(15.0)
    );
    let warned = logs.text().matches("more workers than max_workers").count();
    assert_eq!(warned, 1, "{}", logs.text());
}
