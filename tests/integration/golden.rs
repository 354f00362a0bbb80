//! Golden triplets: tests/fixtures/<pool>/<case>/ holds config.toml (with {BASE_URL}), the
//! upstream JSON for each endpoint (an endpoint without its file answers 404), and
//! expected.prom, the pool series the exporter must produce. The generic source's cases,
//! tests/fixtures/http_json/<example>/<case>/, take their config from config.example.toml's
//! block as shipped. Regenerate after an intended change with:
//!     UPDATE_GOLDEN=1 cargo test --test integration golden

use std::path::{Path, PathBuf};

use httpmock::prelude::*;
use mining_exporter::Exporter;
use mining_exporter::config::{Config, SecretMode};
use mining_exporter::demo::{config_of, example_source};
use mining_exporter::scheduler::Outcome;

use crate::common::*;

/// One fixture file and the request it answers. A case without the file gets a 404 there.
struct Endpoint {
    path: &'static str,
    file: &'static str,
    /// Query parameters the request must carry.
    query: &'static [(&'static str, &'static str)],
    /// Query parameters it must not carry (a first page has no cursor).
    without: &'static [&'static str],
}

const fn endpoint(
    path: &'static str,
    file: &'static str,
    query: &'static [(&'static str, &'static str)],
) -> Endpoint {
    Endpoint {
        path,
        file,
        query,
        without: &[],
    }
}

/// How each pool's requests must carry the token.
enum Auth {
    Header(&'static str),
    Query(&'static str),
    Bearer,
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

/// config.example.toml's LuxCore-style gateway (v1, unsigned).
const LUXCORE: (Auth, &[Endpoint]) = (
    Auth::Header("x-api-key"),
    &[endpoint("/api/v1/balance/all", "balance_all.json", &[])],
);

/// config.example.toml's Luxbio-style API: pages of 100 by cursor.
const LUXBIO: (Auth, &[Endpoint]) = (
    Auth::Bearer,
    &[
        Endpoint {
            path: "/v1/workers",
            file: "workers_page1.json",
            query: &[("limit", "100")],
            without: &["cursor"],
        },
        endpoint(
            "/v1/workers",
            "workers_page2.json",
            &[("limit", "100"), ("cursor", "c2")],
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

/// The case's config.toml, with the mock server's address and the test token.
fn case_config(dir: &Path, base_url: &str, secrets: &Path) -> Config {
    let text = std::fs::read_to_string(dir.join("config.toml"))
        .unwrap()
        .replace("{BASE_URL}", base_url);
    Config::parse(
        &text,
        "config.toml",
        secrets,
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap()
}

/// config.example.toml's block `name`, pointed at the mock server.
fn example(name: &str, base_url: &str) -> Config {
    let mut source = example_source(name, base_url.to_string(), TOKEN, None).unwrap();
    source.0.name = "golden".to_string();
    config_of("127.0.0.1:0".parse().unwrap(), vec![source])
}

async fn run_case(dir: &Path, endpoints: &(Auth, &[Endpoint])) {
    let secrets = tempfile::TempDir::new().unwrap();
    std::fs::write(secrets.path().join("token"), TOKEN).unwrap();
    run_case_with(dir, endpoints, |base_url| {
        case_config(dir, base_url, secrets.path())
    })
    .await;
}

async fn run_case_with(
    dir: &Path,
    (auth, endpoints): &(Auth, &[Endpoint]),
    config: impl FnOnce(&str) -> Config,
) {
    let server = MockServer::start_async().await;
    for Endpoint {
        path,
        file,
        query,
        without,
    } in endpoints.iter()
    {
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
                    Auth::Bearer => when.header("authorization", format!("Bearer {TOKEN}")),
                };
                for (k, v) in query.iter() {
                    when = when.query_param(*k, *v);
                }
                for k in without.iter() {
                    when = when.query_param_missing(*k);
                }
                then.status(200)
                    .header("content-type", "application/json")
                    .body(body);
            })
            .await;
    }
    let exporter = Exporter::new(config(&server.base_url())).unwrap();
    // An optional endpoint a case leaves out (a 404) is known missing only after a few polls
    // in a row; until then it fails the poll.
    let mut outcome = exporter.poll_once("golden").await.unwrap();
    for _ in 1..mining_exporter::sources::optional::SWITCH_OFF_AFTER {
        if outcome != (Outcome::Failure { kind: "not_found" }) {
            break;
        }
        outcome = exporter.poll_once("golden").await.unwrap();
    }
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
    cases_where(pool, |p| p.join("config.toml").exists())
}

fn cases_where(pool: &str, is_case: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(pool);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| is_case(p))
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

#[tokio::test]
async fn http_json_luxcore_golden_cases() {
    for case in cases_where("http_json/luxcore", |p| p.is_dir()) {
        run_case_with(&case, &LUXCORE, |url| example("luxcore-payouts", url)).await;
    }
}

#[tokio::test]
async fn http_json_luxbio_golden_cases() {
    for case in cases_where("http_json/luxbio", |p| p.is_dir()) {
        run_case_with(&case, &LUXBIO, |url| example("luxbio-farm", url)).await;
    }
}
