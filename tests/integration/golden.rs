//! Golden triplets: tests/fixtures/<pool>/<case>/ holds config.toml (with {BASE_URL}), the
//! upstream JSON for each endpoint (an endpoint without its file answers 404), and
//! expected.prom, the pool series the exporter must produce. Regenerate after an intended
//! change with:
//!     UPDATE_GOLDEN=1 cargo test --test integration golden

use std::path::{Path, PathBuf};

use httpmock::prelude::*;
use mining_exporter::Exporter;
use mining_exporter::config::{Config, SecretMode};
use mining_exporter::scheduler::Outcome;

use crate::common::*;

/// One fixture file and the request it answers. A case without the file gets a 404 there.
struct Endpoint {
    path: &'static str,
    file: &'static str,
    /// Query parameters the request must carry.
    query: &'static [(&'static str, &'static str)],
}

const fn endpoint(
    path: &'static str,
    file: &'static str,
    query: &'static [(&'static str, &'static str)],
) -> Endpoint {
    Endpoint { path, file, query }
}

/// How each pool's requests must carry the token.
enum Auth {
    Header(&'static str),
    Query(&'static str),
}

const ULTIMATE_PROXY: (Auth, &[Endpoint]) = (
    Auth::Header("x-api-key"),
    &[
        endpoint("/v1/overview", "overview.json", &[]),
        endpoint("/v1/workers", "workers_page1.json", &[("page", "1")]),
        endpoint("/v1/workers", "workers_page2.json", &[("page", "2")]),
        // One series per algorithm; a case with no named algorithm asks without a filter.
        endpoint(
            "/v1/workers/hashrate",
            "hashrate_randomx.json",
            &[("timeRange", "1h"), ("algorithm", "randomx")],
        ),
        endpoint(
            "/v1/workers/hashrate",
            "hashrate_kawpow.json",
            &[("timeRange", "1h"), ("algorithm", "kawpow")],
        ),
        endpoint(
            "/v1/workers/hashrate",
            "hashrate.json",
            &[("timeRange", "1h")],
        ),
    ],
);

/// The OurPool cases watch the account "farm".
const OURPOOL: (Auth, &[Endpoint]) = (
    Auth::Query("token"),
    &[
        endpoint(
            "/api/v1/accounts/farm/btc/rewards-stats",
            "rewards_stats.json",
            &[],
        ),
        endpoint(
            "/api/v1/accounts/farm/btc/miner/workers",
            "workers.json",
            &[],
        ),
        endpoint("/api/v1/accounts/farm/btc/miner/stats", "stats.json", &[]),
    ],
);

/// The Luxor cases' workspaces list the subaccounts "alpha" and "beta" (or only "alpha").
const LUXOR: (Auth, &[Endpoint]) = (
    Auth::Header("authorization"),
    &[
        endpoint("/v1/workspace", "workspace.json", &[]),
        endpoint("/v2/workspace", "workspace_v2.json", &[]),
        endpoint("/v2/pool/subaccounts", "subaccounts.json", &[]),
        endpoint(
            "/v2/pool/summary/BTC",
            "summary_alpha.json",
            &[("subaccount_names", "alpha")],
        ),
        endpoint(
            "/v2/pool/summary/BTC",
            "summary_beta.json",
            &[("subaccount_names", "beta")],
        ),
        endpoint(
            "/v2/pool/workers/BTC",
            "workers_page1.json",
            &[("page_number", "1"), ("page_size", "1000")],
        ),
        endpoint(
            "/v2/pool/workers/BTC",
            "workers_page2.json",
            &[("page_number", "2"), ("page_size", "1000")],
        ),
    ],
);

/// Pool series and their HELP/TYPE lines; self-metrics carry times and durations.
fn pool_lines(page: &str) -> String {
    page.lines()
        .filter(|l| {
            let name = l
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ");
            name.starts_with("mining_") && !name.starts_with("mining_exporter_")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

async fn run_case(dir: &Path, (auth, endpoints): &(Auth, &[Endpoint])) {
    let server = MockServer::start_async().await;
    for Endpoint { path, file, query } in endpoints.iter() {
        let fixture = dir.join(file);
        if !fixture.exists() {
            continue;
        }
        let body = std::fs::read_to_string(&fixture).unwrap();
        server
            .mock_async(|when, then| {
                let mut when = when.method(GET).path(*path);
                when = match auth {
                    Auth::Header(name) => when.header(*name, TOKEN),
                    Auth::Query(name) => when.query_param(*name, TOKEN),
                };
                for (k, v) in query.iter() {
                    when = when.query_param(*k, *v);
                }
                then.status(200)
                    .header("content-type", "application/json")
                    .body(body);
            })
            .await;
    }
    let secrets = tempfile::TempDir::new().unwrap();
    std::fs::write(secrets.path().join("token"), TOKEN).unwrap();
    let text = std::fs::read_to_string(dir.join("config.toml"))
        .unwrap()
        .replace("{BASE_URL}", &server.base_url());
    let config = Config::parse(
        &text,
        "config.toml",
        secrets.path(),
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    let exporter = Exporter::new(config).unwrap();
    let outcome = exporter.poll_once("golden").await.unwrap();
    assert!(
        matches!(outcome, Outcome::Success { .. }),
        "{}: {outcome:?}",
        dir.display()
    );
    let actual = pool_lines(std::str::from_utf8(&exporter.exposition().current().text).unwrap());

    let expected_file = dir.join("expected.prom");
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&expected_file, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_file).unwrap_or_else(|_| {
        panic!(
            "{} missing: run with UPDATE_GOLDEN=1",
            expected_file.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{}: exposition differs from expected.prom",
        dir.display()
    );
}

fn cases(pool: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(pool);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.toml").exists())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {}", root.display());
    cases
}

#[tokio::test]
async fn ultimate_proxy_golden_cases() {
    for case in cases("ultimate_proxy") {
        run_case(&case, &ULTIMATE_PROXY).await;
    }
}

#[tokio::test]
async fn ourpool_golden_cases() {
    for case in cases("ourpool") {
        run_case(&case, &OURPOOL).await;
    }
}

#[tokio::test]
async fn luxor_golden_cases() {
    for case in cases("luxor") {
        run_case(&case, &LUXOR).await;
    }
}
