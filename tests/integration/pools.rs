//! OurPool and Luxor against httpmock and their simulators: what is asked, how often, and what
//! happens when an endpoint is missing or the token is refused. Several sources of one kind.

use httpmock::prelude::*;
use mining_exporter::Exporter;
use mining_exporter::config::{Config, SecretMode};
use mining_exporter::demo::{LuxorOptions, LuxorSimulator, OurPoolOptions, OurPoolSimulator};
use mining_exporter::scheduler::Outcome;
use serde_json::json;
use tempfile::TempDir;

use crate::common::*;

/// An exporter of `toml`; every `token_file = "NAME"` it names holds `NAME`'s value from
/// `tokens`, or TOKEN.
fn exporter_of(toml: &str, tokens: &[(&str, &str)]) -> (Exporter, TempDir) {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    for (file, token) in tokens {
        std::fs::write(dir.path().join(file), token).unwrap();
    }
    let config = Config::parse(
        toml,
        "pools.toml",
        dir.path(),
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    (Exporter::new(config).unwrap(), dir)
}

fn ourpool_toml(base_url: &str) -> String {
    format!(
        "[[sources]]\nkind = \"ourpool\"\nname = \"op\"\naccount = \"farm\"\nbase_url = \"{base_url}\"\ntoken_file = \"token\"\nretry_backoff = \"10ms\"\n"
    )
}

/// A Luxor simulator with `options` (its token: TOKEN) and a source "lx" watching it.
async fn luxor_source(options: LuxorOptions) -> (LuxorSimulator, Exporter, TempDir) {
    let simulator = LuxorSimulator::start(options).await.unwrap();
    let toml = format!(
        "[[sources]]\nkind = \"luxor\"\nname = \"lx\"\nbase_url = \"{}\"\ntoken_file = \"token\"\n",
        simulator.base_url()
    );
    let (exporter, dir) = exporter_of(&toml, &[]);
    (simulator, exporter, dir)
}

/// `mining_exporter_endpoint_enabled` of OurPool's worker list on source `op`.
fn workers_endpoint_enabled(page: &str) -> Option<f64> {
    sample(
        page,
        "mining_exporter_endpoint_enabled",
        &[
            "source=\"op\"",
            "endpoint=\"/api/v1/accounts/{account}/btc/miner/workers\"",
        ],
    )
}

/// OurPool's rewards-stats and miner/stats for the account `farm`.
async fn mock_rewards_and_stats(server: &MockServer) {
    server
        .mock_async(|when, then| {
            when.path("/api/v1/accounts/farm/btc/rewards-stats");
            then.status(200).json_body(json!({"balance": "0.001"}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/api/v1/accounts/farm/btc/miner/stats");
            then.status(200).json_body(json!({"hashrate10m": "2e14"}));
        })
        .await;
}

async fn poll(exporter: &Exporter, source: &str) -> Outcome {
    exporter.poll_once(source).await.unwrap()
}

#[tokio::test]
async fn ourpool_switches_off_an_endpoint_that_answers_404_and_keeps_the_rest() {
    let server = MockServer::start_async().await;
    let rewards = server
        .mock_async(|when, then| {
            when.path("/api/v1/accounts/farm/btc/rewards-stats")
                .query_param("token", TOKEN);
            then.status(200)
                .json_body(json!({"totalPaid": "0.5", "balance": "0.001"}));
        })
        .await;
    let workers = server
        .mock_async(|when, then| {
            when.path("/api/v1/accounts/farm/btc/miner/workers");
            then.status(404)
                .json_body(json!({"code": "not_found", "message": "not found"}));
        })
        .await;
    let stats = server
        .mock_async(|when, then| {
            when.path("/api/v1/accounts/farm/btc/miner/stats")
                .query_param("token", TOKEN);
            then.status(200)
                .json_body(json!({"hashrate10m": "2e14", "workersOnline": 2, "workersOffline": 1}));
        })
        .await;
    let (exporter, _dir) = exporter_of(&ourpool_toml(&server.base_url()), &[]);
    // One 404 may be a pool's hiccup just after start: only the third poll in a row that
    // finds the endpoint missing switches it off; the two before fail as not_found.
    for _ in 0..2 {
        assert_eq!(
            poll(&exporter, "op").await,
            Outcome::Failure { kind: "not_found" }
        );
        assert_eq!(workers_endpoint_enabled(&text(&exporter)), None);
    }
    for _ in 0..2 {
        assert!(matches!(
            poll(&exporter, "op").await,
            Outcome::Success { .. }
        ));
    }
    assert_eq!(rewards.calls_async().await, 4);
    assert_eq!(
        workers.calls_async().await,
        3,
        "not asked again once switched off"
    );
    // The stats come after the worker list: the two failed polls stopped before them.
    assert_eq!(stats.calls_async().await, 2);
    let page = text(&exporter);
    assert_eq!(
        sample(
            &page,
            "mining_account_paid_total",
            &["source=\"op\"", "currency=\"BTC\""]
        ),
        Some(0.5)
    );
    assert_eq!(
        sample(&page, "mining_workers", &["state=\"active\""]),
        Some(2.0),
        "the stats' counts stand in for the missing list"
    );
    assert_eq!(workers_endpoint_enabled(&page), Some(0.0), "{page}");
    assert_eq!(
        sample(
            &page,
            "mining_exporter_source_up",
            &["pool=\"ourpool\"", "source=\"op\""]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_404_just_after_start_does_not_blind_the_farm() {
    let server = MockServer::start_async().await;
    mock_rewards_and_stats(&server).await;
    let first = server
        .mock_async(|when, then| {
            when.path("/api/v1/accounts/farm/btc/miner/workers");
            then.status(404)
                .json_body(json!({"code": "not_found", "message": "warming up"}));
        })
        .await;
    let (exporter, _dir) = exporter_of(&ourpool_toml(&server.base_url()), &[]);
    let _ = poll(&exporter, "op").await;
    first.delete_async().await;
    server
        .mock_async(|when, then| {
            when.path("/api/v1/accounts/farm/btc/miner/workers");
            then.status(200).json_body(json!({"workers": {
                "rig01": {"hashrate10m": 1e14, "status": "online"}}}));
        })
        .await;
    assert!(matches!(
        poll(&exporter, "op").await,
        Outcome::Success { .. }
    ));
    let page = text(&exporter);
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"rig01\""]),
        Some(1.0),
        "the worker list is read on the next poll, not switched off for an hour:\n{page}"
    );
}

#[tokio::test]
async fn a_transient_404_from_an_endpoint_that_worked_fails_one_poll_and_deletes_nothing() {
    let server = MockServer::start_async().await;
    mock_rewards_and_stats(&server).await;
    let answers = |status: u16| {
        let server = &server;
        async move {
            server
                .mock_async(move |when, then| {
                    when.path("/api/v1/accounts/farm/btc/miner/workers");
                    if status == 200 {
                        then.status(200).json_body(json!({"workers": {
                            "rig01": {"hashrate10m": 1e14, "status": "online"}}}));
                    } else {
                        then.status(status)
                            .json_body(json!({"code": "not_found", "message": "hiccup"}));
                    }
                })
                .await
        }
    };
    let (exporter, _dir) = exporter_of(&ourpool_toml(&server.base_url()), &[]);
    let works = answers(200).await;
    assert!(matches!(
        poll(&exporter, "op").await,
        Outcome::Success { .. }
    ));
    works.delete_async().await;

    let hiccup = answers(404).await;
    assert_eq!(
        poll(&exporter, "op").await,
        Outcome::Failure { kind: "not_found" }
    );
    let page = text(&exporter);
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"rig01\""]),
        Some(1.0),
        "the last good worker series stay:\n{page}"
    );
    assert_eq!(
        sample(&page, "mining_exporter_source_up", &["source=\"op\""]),
        Some(0.0)
    );
    hiccup.delete_async().await;

    let back = answers(200).await;
    assert!(matches!(
        poll(&exporter, "op").await,
        Outcome::Success { .. }
    ));
    assert_eq!(back.calls_async().await, 1, "asked again after the hiccup");
    let page = text(&exporter);
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"rig01\""]),
        Some(1.0)
    );
    assert_eq!(workers_endpoint_enabled(&page), Some(1.0), "{page}");
}

#[tokio::test]
async fn ourpool_refused_token_is_an_auth_failure_without_retries() {
    let server = MockServer::start_async().await;
    let refused = server
        .mock_async(|when, then| {
            when.path("/api/v1/accounts/farm/btc/rewards-stats");
            then.status(401).json_body(
                json!({"code": "auth.unauthorized", "message": "Unauthorized",
                "redirect": "/api/oauth/authorize?state=516acf17-a209-4c65-b423-61c30d2294a0"}),
            );
        })
        .await;
    let (exporter, _dir) = exporter_of(&ourpool_toml(&server.base_url()), &[]);
    for _ in 0..2 {
        assert_eq!(
            poll(&exporter, "op").await,
            Outcome::Failure { kind: "auth" }
        );
    }
    assert_eq!(
        refused.calls_async().await,
        2,
        "one request a poll, no retry"
    );
    let page = text(&exporter);
    assert_eq!(
        sample(&page, "mining_exporter_source_up", &["source=\"op\""]),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &page,
            "mining_exporter_poll_errors_total",
            &["source=\"op\"", "kind=\"auth\""]
        ),
        Some(2.0)
    );
    assert!(!page.contains(TOKEN));
}

#[tokio::test]
async fn luxor_reads_the_workspace_slowly_and_follows_every_page() {
    let (simulator, exporter, _dir) = luxor_source(LuxorOptions {
        subaccounts: vec![("hq".into(), 1500), ("annex".into(), 3)],
        token: TOKEN.into(),
        lively: false,
        key_bucket: (100, 100.0),
        ..LuxorOptions::default()
    })
    .await;
    assert!(matches!(
        poll(&exporter, "lx").await,
        Outcome::Success { .. }
    ));
    // Workspace, two summaries, two pages of 1000 workers.
    assert_eq!(simulator.requests(), (5, 0));
    assert!(matches!(
        poll(&exporter, "lx").await,
        Outcome::Success { .. }
    ));
    assert_eq!(
        simulator.requests(),
        (9, 0),
        "the workspace is not read again"
    );
    let page = text(&exporter);
    let workers = |account: &str| {
        page.lines()
            .filter(|l| l.starts_with("mining_worker_up{") && l.contains(account))
            .count()
    };
    assert_eq!(workers("account=\"hq\""), 1500);
    assert_eq!(workers("account=\"annex\""), 3);
    assert_eq!(
        sample(
            &page,
            "mining_account_info",
            &["account=\"annex\"", "workspace=\"Demo Mining Co\""]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn luxor_without_v1_lists_subaccounts_through_v2() {
    let (_simulator, exporter, _dir) = luxor_source(LuxorOptions {
        token: TOKEN.into(),
        v1_workspace: false,
        key_bucket: (100, 100.0),
        ..LuxorOptions::default()
    })
    .await;
    for _ in 0..2 {
        assert!(matches!(
            poll(&exporter, "lx").await,
            Outcome::Success { .. }
        ));
    }
    let page = text(&exporter);
    for account in ["hq", "annex"] {
        assert_eq!(
            sample(
                &page,
                "mining_account_info",
                &[
                    &format!("account=\"{account}\""),
                    "workspace=\"Demo Mining Co\""
                ]
            ),
            Some(1.0)
        );
    }
    assert_eq!(
        sample(
            &page,
            "mining_exporter_upstream_requests_total",
            &["endpoint=\"/v1/workspace\"", "code=\"404\""]
        ),
        Some(1.0),
        "v1 is asked once, then switched off"
    );
}

#[tokio::test]
async fn several_sources_of_one_kind_keep_their_own_labels_health_and_budgets() {
    let ourpool = |account: &str, token: &str| {
        OurPoolSimulator::start(OurPoolOptions {
            account: account.into(),
            token: token.into(),
            ..OurPoolOptions::default()
        })
    };
    let luxor = |workspace: &str, token: &str| {
        LuxorSimulator::start(LuxorOptions {
            workspace: workspace.into(),
            token: token.into(),
            ..LuxorOptions::default()
        })
    };
    let op_a = ourpool("farm-a", "op_token_a").await.unwrap();
    let op_b = ourpool("farm-b", "op_token_b").await.unwrap();
    let lx_a = luxor("Demo Mining Co", "lx_key_a").await.unwrap();
    let lx_b = luxor("Second Co", "lx_key_b").await.unwrap();
    let mut toml = String::new();
    for (name, account, base, file) in [
        ("op-a", "farm-a", op_a.base_url(), "op_a"),
        ("op-b", "farm-b", op_b.base_url(), "op_b"),
    ] {
        toml += &format!(
            "[[sources]]\nkind = \"ourpool\"\nname = \"{name}\"\naccount = \"{account}\"\nbase_url = \"{base}\"\ntoken_file = \"{file}\"\n"
        );
    }
    for (name, base, file) in [
        ("lx-a", lx_a.base_url(), "lx_a"),
        ("lx-b", lx_b.base_url(), "lx_b"),
    ] {
        toml += &format!(
            "[[sources]]\nkind = \"luxor\"\nname = \"{name}\"\nbase_url = \"{base}\"\ntoken_file = \"{file}\"\nsubaccounts = [\"hq\"]\n"
        );
    }
    let (exporter, _dir) = exporter_of(
        &toml,
        &[
            ("op_a", "op_token_a"),
            ("op_b", "wrong-token"),
            ("lx_a", "lx_key_a"),
            ("lx_b", "lx_key_b"),
        ],
    );
    assert!(matches!(
        poll(&exporter, "op-a").await,
        Outcome::Success { .. }
    ));
    assert_eq!(
        poll(&exporter, "op-b").await,
        Outcome::Failure { kind: "auth" }
    );
    assert!(matches!(
        poll(&exporter, "lx-a").await,
        Outcome::Success { .. }
    ));
    assert!(matches!(
        poll(&exporter, "lx-b").await,
        Outcome::Success { .. }
    ));

    let page = text(&exporter);
    let up = |source: &str| {
        sample(
            &page,
            "mining_exporter_source_up",
            &[&format!("source=\"{source}\"")],
        )
    };
    assert_eq!(up("op-a"), Some(1.0));
    assert_eq!(
        up("op-b"),
        Some(0.0),
        "one refused token fails only its source"
    );
    assert_eq!(up("lx-a"), Some(1.0));
    assert_eq!(up("lx-b"), Some(1.0));
    for budget in ["auto:op-a", "auto:op-b", "auto:lx-a", "auto:lx-b"] {
        assert!(
            page.contains(&format!(
                "mining_exporter_budget_remaining{{budget=\"{budget}\"}}"
            )),
            "no budget {budget}"
        );
    }
    assert_eq!(
        sample(
            &page,
            "mining_account_info",
            &["source=\"lx-b\"", "workspace=\"Second Co\""]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &page,
            "mining_worker_up",
            &["source=\"lx-a\"", "account=\"hq\""]
        )
        .is_some()
    );
}

/// A worker the answer lists twice, offline and then online, keeps its first entry in every
/// kind, is counted as a duplicate each poll and warned about once: never a silent flip.
#[tokio::test]
async fn a_worker_listed_twice_is_counted_and_never_flips_to_up() {
    let (logs, _guard) = capture_logs();
    // Ultimate Proxy: a list with the same name twice.
    let proxy = MockServer::start_async().await;
    mock_poll(
        &proxy,
        vec![
            worker("rig1", "offline", 0.0),
            worker("rig1", "online", 9.0),
        ],
    )
    .await;
    let (up_exporter, _up_dir) = exporter(&proxy.base_url(), "");
    // OurPool: an object with the same key twice.
    let ourpool = MockServer::start_async().await;
    mock_rewards_and_stats(&ourpool).await;
    ourpool
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/v1/accounts/farm/btc/miner/workers");
            then.status(200)
                .header("content-type", "application/json")
                .body(
                    r#"{"workers": {"rig1": {"status": "offline", "hashrate1h": "0"},
                                "rig1": {"status": "online", "hashrate1h": "9"}}}"#,
                );
        })
        .await;
    let (op_exporter, _op_dir) = exporter_of(&ourpool_toml(&ourpool.base_url()), &[]);
    for (exporter, source) in [(&up_exporter, "proxy"), (&op_exporter, "op")] {
        for polls in 1..=2 {
            let outcome = exporter.poll_once(source).await.unwrap();
            assert!(matches!(outcome, Outcome::Success { .. }), "{outcome:?}");
            let page = text(exporter);
            assert_eq!(
                sample(&page, "mining_worker_up", &["worker=\"rig1\""]),
                Some(0.0),
                "{source}: the first entry stays\n{page}"
            );
            assert_eq!(
                sample(
                    &page,
                    "mining_exporter_items_skipped_total",
                    &[&format!("source=\"{source}\""), "reason=\"duplicate\""]
                ),
                Some(f64::from(polls)),
                "{source}"
            );
        }
    }
    let warned = logs.text().matches("more than once").count();
    assert_eq!(warned, 2, "once a source:\n{}", logs.text());
}
