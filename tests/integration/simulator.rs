//! The Ultimate Proxy simulator keeps the documented contract the other tests rely on:
//! auth by X-API-Key or Bearer, a per-user window with X-RateLimit-* headers, 429 with
//! Retry-After, pagination capped at 100.

use mining_exporter::demo::{Simulator, SimulatorOptions};

use crate::common::*;

#[tokio::test]
async fn auth_window_headers_and_pagination_follow_the_reference() {
    let simulator = Simulator::start(SimulatorOptions {
        workers: 150,
        limit_per_minute: 4,
        token: TOKEN.to_string(),
        ..SimulatorOptions::default()
    })
    .await
    .unwrap();
    let client = http();
    let url = |path: &str| format!("{}{path}", simulator.base_url());

    let anonymous = client.get(url("/v1/overview")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value =
        serde_json::from_slice(&anonymous.bytes().await.unwrap()).unwrap();
    assert!(body["error"].is_string(), "{body}");

    let page = client
        .get(url("/v1/workers?page=2&limit=500"))
        .header("x-api-key", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-ratelimit-limit"], "4");
    assert_eq!(page.headers()["x-ratelimit-remaining"], "3");
    let reset: u64 = page.headers()["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset > 1_700_000_000, "reset is a Unix timestamp: {reset}");
    let body: serde_json::Value = serde_json::from_slice(&page.bytes().await.unwrap()).unwrap();
    assert_eq!(
        body["data"].as_array().unwrap().len(),
        50,
        "page 2 of 150 at the cap of 100"
    );
    assert_eq!(body["pagination"]["total_pages"], 2);

    for _ in 0..3 {
        let ok = client
            .get(url("/v1/workers/hashrate?timeRange=1h"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }
    let limited = client
        .get(url("/v1/overview"))
        .header("x-api-key", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // The unauthenticated request counted too; only the fifth authenticated one was refused.
    assert_eq!(simulator.requests(), (6, 1));
}
