//! The router, driven with `oneshot`: content type, gzip, readiness, landing page, and the
//! promise that a scrape costs no upstream request and no re-rendering.

use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use httpmock::prelude::*;
use tower::ServiceExt;

use crate::common::*;

async fn get(
    router: axum::Router,
    path: &str,
    gzip: bool,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut request = Request::get(path);
    if gzip {
        request = request.header("accept-encoding", "gzip");
    }
    let response = router
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn metrics_are_served_plain_and_gzipped_from_one_rendering() {
    let server = MockServer::start_async().await;
    let mocks = mock_poll(&server, vec![worker("rig1", "online", 7.0)]).await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    exporter.poll_once("proxy").await.unwrap();

    let (status, headers, plain) = get(exporter.router(), "/metrics", false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(headers.get("content-encoding").is_none());
    assert!(String::from_utf8_lossy(&plain).contains("mining_worker_up{"));
    // The plain page is unpacked as it is sent; its length is known all the same.
    assert_eq!(headers["content-length"], plain.len().to_string());

    let (status, headers, zipped) = get(exporter.router(), "/metrics", true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-encoding"], "gzip");
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain);

    // Scrapes reuse the rendering and never reach the pool.
    let before = exporter.exposition().current();
    for _ in 0..5 {
        get(exporter.router(), "/metrics", false).await;
    }
    assert!(Arc::ptr_eq(&before, &exporter.exposition().current()));
    for mock in &mocks {
        assert_eq!(mock.calls_async().await, 1);
    }
}

#[tokio::test]
async fn ready_only_after_every_source_has_polled_once() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.any_request();
            then.status(503).body("maintenance");
        })
        .await;
    let (exporter, _dir) = exporter(&server.base_url(), "max_retries = 0");
    let (status, _, body) = get(exporter.router(), "/-/ready", false).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(String::from_utf8_lossy(&body).contains("proxy"));

    // A failed first poll still makes the exporter ready: /metrics can say the source is down.
    exporter.poll_once("proxy").await.unwrap();
    let (status, _, _) = get(exporter.router(), "/-/ready", false).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = get(exporter.router(), "/-/healthy", false).await;
    assert_eq!((status, body), (StatusCode::OK, b"OK\n".to_vec()));
    let (status, _, body) = get(exporter.router(), "/", false).await;
    let body = String::from_utf8(body).unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("href=\"/metrics\"") && body.contains("proxy") && body.contains("down"));
}

#[tokio::test]
async fn a_source_that_never_worked_says_so_and_its_last_success_is_0() {
    let (logs, _logging) = capture_logs();
    let server = MockServer::start_async().await;
    refuse_every_request(&server).await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    poll_fails(&exporter, "auth").await;

    let page = text(&exporter);
    assert_eq!(
        sample(
            &page,
            "mining_exporter_source_last_success_timestamp_seconds",
            &["source=\"proxy\""]
        ),
        Some(0.0),
        "{page}"
    );
    let (_, _, landing) = get(exporter.router(), "/", false).await;
    let landing = String::from_utf8(landing).unwrap();
    assert!(!landing.contains("last good data"), "{landing}");
    assert!(landing.contains("no successful poll yet"), "{landing}");
    let logs = logs.text();
    assert!(!logs.contains("last good data"), "{logs}");
    assert!(logs.contains("no successful poll yet"), "{logs}");
}

#[tokio::test]
async fn ready_and_the_landing_page_name_a_down_source_s_error_with_the_pool_s_text_escaped() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.any_request();
            then.status(401)
                .json_body(serde_json::json!({"error": "<b>key</b> revoked\nby admin"}));
        })
        .await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    poll_fails(&exporter, "auth").await;

    let (status, _, body) = get(exporter.router(), "/-/ready", false).await;
    let body = String::from_utf8(body).unwrap();
    assert_eq!(status, StatusCode::OK);
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some("ready"));
    assert_eq!(
        lines.next(),
        Some(
            "source proxy down (auth): /v1/overview: authentication failed (HTTP 401): <b>key</b> revoked by admin"
        ),
        "{body}"
    );
    let (_, _, landing) = get(exporter.router(), "/", false).await;
    let landing = String::from_utf8(landing).unwrap();
    assert!(
        landing.contains("auth: /v1/overview: authentication failed (HTTP 401): &lt;b&gt;key&lt;/b&gt; revoked by admin"),
        "{landing}"
    );
    assert!(!landing.contains("<b>key"), "{landing}");
    assert!(!body.contains(TOKEN) && !landing.contains(TOKEN));

    // A good poll clears it.
    server.reset_async().await;
    mock_poll(&server, vec![worker("rig1", "online", 1.0)]).await;
    poll_ok(&exporter).await;
    let (_, _, body) = get(exporter.router(), "/-/ready", false).await;
    assert_eq!(body, b"ready\n");
}

#[tokio::test]
async fn the_page_has_process_metrics_and_build_info_names_revision_and_compiler() {
    let server = MockServer::start_async().await;
    mock_poll(&server, vec![worker("rig1", "online", 1.0)]).await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    poll_ok(&exporter).await;
    let page = text(&exporter);
    for name in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
    ] {
        let value = sample(&page, name, &[]).unwrap_or_else(|| panic!("no {name} in\n{page}"));
        assert!(
            value > 0.0 || name == "process_cpu_seconds_total",
            "{name} = {value}"
        );
    }
    let start = sample(&page, "process_start_time_seconds", &[]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(start <= now && start > now - 3600.0, "started at {start}");
    let info = page
        .lines()
        .find(|l| l.starts_with("mining_exporter_build_info{"))
        .unwrap();
    let rust = info.split("rustversion=\"").nth(1).unwrap();
    assert!(rust.starts_with("1."), "{info}");
    assert!(
        info.contains("revision=\"") && !info.contains("revision=\"\""),
        "{info}"
    );
    assert!(
        info.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
}
