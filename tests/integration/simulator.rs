//! The simulators keep the documented contracts the other tests and the demo rely on: each
//! pool's auth, rate limits, error bodies and pagination.

use mining_exporter::demo::{
    LuxorOptions, LuxorSimulator, OurPoolOptions, OurPoolSimulator, UltimateProxyOptions,
    UltimateProxySimulator,
};
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn auth_window_headers_and_pagination_follow_the_reference() {
    let simulator = UltimateProxySimulator::start(UltimateProxyOptions {
        workers: 150,
        limit_per_minute: 4,
        token: TOKEN.to_string(),
        ..UltimateProxyOptions::default()
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

async fn get(url: String, auth: Option<(&str, &str)>) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = http().get(url);
    if let Some((name, value)) = auth {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    (status, headers, body)
}

#[tokio::test]
async fn ourpool_simulator_answers_auth_limits_and_errors_as_documented() {
    let sim = OurPoolSimulator::start(OurPoolOptions {
        account: "farm".into(),
        token: TOKEN.into(),
        per_minute: 3,
        miner_endpoints: false,
        ..OurPoolOptions::default()
    })
    .await
    .unwrap();
    let url = |path: &str, token: Option<&str>| {
        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        format!("{}/api/v1/accounts/{path}{query}", sim.base_url())
    };

    let (status, _, body) = get(url("farm/btc/rewards-stats", None), None).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "auth.unauthorized");
    assert!(
        body["redirect"]
            .as_str()
            .unwrap()
            .starts_with("/api/oauth/authorize?state=")
    );
    let (status, _, body) = get(url("farm/btc/rewards-stats", Some("wrong")), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("auth.unexpected_error"))
    );

    let (status, _, body) = get(url("farm/btc/rewards-stats", Some(TOKEN)), None).await;
    assert_eq!(status, 200);
    assert!(
        body["totalPaid"].as_str().unwrap().parse::<f64>().unwrap() > 0.0,
        "{body}"
    );
    let (status, _, body) = get(url("farm/btc/miner/workers", Some(TOKEN)), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "switched off"
    );
    let (status, _, body) = get(url("other/btc/rewards-stats", Some(TOKEN)), None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (404, Some("account not found"))
    );

    let (status, headers, body) = get(url("farm/btc/rewards-stats", Some(TOKEN)), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("rate_limit.exceeded"))
    );
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    // Refused tokens count too: 2 + 3 inside the window, the sixth refused.
    assert_eq!(sim.requests(), (6, 1));
}

#[tokio::test]
async fn luxor_simulator_answers_auth_limits_errors_and_pages_as_documented() {
    let sim = LuxorSimulator::start(LuxorOptions {
        subaccounts: vec![("a".into(), 3), ("b".into(), 2)],
        token: TOKEN.into(),
        lively: false,
        key_bucket: (6, 0.01),
        ..LuxorOptions::default()
    })
    .await
    .unwrap();
    let url = |path: &str| format!("{}{path}", sim.base_url());
    let key = Some(("authorization", TOKEN));

    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = get(url("/v1/workspace"), Some(("authorization", &bearer))).await;
    assert_eq!(
        (status, body["statusCode"].as_u64()),
        (401, Some(401)),
        "{body}"
    );
    let (status, _, body) = get(url("/v2/pool/workers/BTC"), key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("FST_ERR_VALIDATION"))
    );
    let (status, _, body) = get(url("/v2/pool/summary/ETH?subaccount_names=a"), key).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );

    let (status, _, page1) = get(
        url("/v2/pool/workers/BTC?subaccount_names=a,b&page_size=4"),
        key,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page1["workers"].as_array().unwrap().len(), 4);
    assert_eq!(page1["workers"][3]["subaccount_name"], "b");
    let next = page1["pagination"]["next_page_url"].as_str().unwrap();
    assert!(
        next.starts_with("/v2/pool/workers/BTC?page_number=2&page_size=4"),
        "{next}"
    );
    let (_, _, page2) = get(url(next), key).await;
    assert_eq!(page2["workers"].as_array().unwrap().len(), 1);
    assert!(page2["pagination"]["next_page_url"].is_null());
    let (_, _, summary) = get(url("/v2/pool/summary/BTC?subaccount_names=a"), key).await;
    assert!(
        summary["hashrate_5m"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 1e14,
        "{summary}"
    );

    // Five requests got past auth; the bucket holds six.
    let (status, _, _) = get(url("/v1/workspace"), key).await;
    assert_eq!(status, 200);
    let (status, headers, body) = get(url("/v1/workspace"), key).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert!(headers.contains_key("retry-after"));
    assert_eq!(sim.requests(), (8, 1));
}
