//! The generic `http_json` source: the shipped examples against their simulators (signing,
//! clock skew, cursor pages through the budget), the other paginations and auth styles
//! against httpmock, and data that does not fit its mapping.

use httpmock::prelude::*;
use mining_exporter::Exporter;
use mining_exporter::config::{Config, SecretMode};
use mining_exporter::demo::{
    LuxCoreOptions, LuxCoreSimulator, LuxbioOptions, LuxbioSimulator, config_of, example_source,
};
use mining_exporter::scheduler::Outcome;
use serde_json::json;
use tempfile::TempDir;

use crate::common::*;

fn exporter_of(
    sources: Vec<(
        mining_exporter::config::SourceConfig,
        mining_exporter::config::BudgetConfig,
    )>,
) -> Exporter {
    Exporter::new(config_of("127.0.0.1:0".parse().unwrap(), sources)).unwrap()
}

/// An exporter with one generic source named `h` at `base_url`: `block` holds its keys after
/// the shared ones (auth, endpoints, mappings).
pub(crate) fn generic(base_url: &str, block: &str) -> (Exporter, TempDir) {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let text = format!(
        "[[sources]]\nkind = \"http_json\"\nname = \"h\"\npool = \"generic\"\nbase_url = \"{base_url}\"\ntoken_file = \"token\"\nretry_backoff = \"10ms\"\n{block}"
    );
    let config = Config::parse(
        &text,
        "h.toml",
        dir.path(),
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    (Exporter::new(config).unwrap(), dir)
}

/// config.example.toml's signed gateway block against `sim`, with its signing secret.
fn signed(sim: &LuxCoreSimulator) -> Exporter {
    let secret = sim.hmac_secret();
    let source = example_source(
        "luxcore-payouts-v2",
        sim.base_url(),
        &sim.token,
        Some(&secret),
    );
    exporter_of(vec![source.unwrap()])
}

pub(crate) async fn poll(exporter: &Exporter, name: &str) -> Outcome {
    exporter.poll_once(name).await.unwrap()
}

#[tokio::test]
async fn signed_requests_pass_the_gateway_s_check_and_a_wrong_secret_is_refused() {
    let sim = LuxCoreSimulator::start(LuxCoreOptions::default())
        .await
        .unwrap();
    let exporter = signed(&sim);
    // Every poll signs with a fresh nonce: the gateway refuses one it saw in the last 300 s.
    for _ in 0..3 {
        assert!(matches!(
            poll(&exporter, "luxcore-payouts-v2").await,
            Outcome::Success { .. }
        ));
    }
    assert_eq!(sim.refused_signatures(), 0);
    let page = text(&exporter);
    let frozen = sample(&page, "mining_payout_frozen_balance", &["currency=\"MXN\""]).unwrap();
    let held = sim
        .balance("MXN", "frozen")
        .unwrap()
        .min(sim.balance("MXN", "main").unwrap());
    assert!(
        (frozen - held as f64 / 100.0).abs() < 1e-9,
        "{frozen} vs {held}"
    );

    let wrong = example_source(
        "luxcore-payouts-v2",
        sim.base_url(),
        &sim.token,
        Some("not-the-secret"),
    )
    .unwrap();
    let (logs, _guard) = capture_logs();
    let refused = exporter_of(vec![wrong]);
    assert_eq!(
        poll(&refused, "luxcore-payouts-v2").await,
        Outcome::Failure { kind: "auth" }
    );
    assert_eq!(sim.refused_signatures(), 1);
    let logged = logs.text();
    assert!(logged.contains("signature mismatch"), "{logged}");
    assert!(
        !logged.contains("not-the-secret") && !logged.contains(&sim.token),
        "{logged}"
    );
}

#[tokio::test]
async fn a_clock_further_off_than_the_replay_window_fails_as_clock_skew_after_one_request() {
    let sim = LuxCoreSimulator::start(LuxCoreOptions {
        clock_offset: 900,
        ..LuxCoreOptions::default()
    })
    .await
    .unwrap();
    let exporter = signed(&sim);
    let (logs, _guard) = capture_logs();
    assert_eq!(
        poll(&exporter, "luxcore-payouts-v2").await,
        Outcome::Failure { kind: "clock_skew" }
    );
    // Retrying cannot help: only the clock can be fixed.
    assert_eq!(sim.requests().0, 1);
    let logged = logs.text();
    assert!(
        logged.contains("our clock is -900 s off the API's"),
        "{logged}"
    );
    let page = text(&exporter);
    assert_eq!(
        sample(
            &page,
            "mining_exporter_poll_errors_total",
            &["kind=\"clock_skew\""]
        ),
        Some(1.0)
    );

    // Within the window, the same source signs and reads.
    let near = LuxCoreSimulator::start(LuxCoreOptions {
        clock_offset: 120,
        ..LuxCoreOptions::default()
    })
    .await
    .unwrap();
    let exporter = signed(&near);
    assert!(matches!(
        poll(&exporter, "luxcore-payouts-v2").await,
        Outcome::Success { .. }
    ));
}

#[tokio::test]
async fn every_cursor_page_is_a_request_in_the_budget_and_every_worker_is_read() {
    let sim = LuxbioSimulator::start(LuxbioOptions {
        workers: 250,
        lively: false,
        ..LuxbioOptions::default()
    })
    .await
    .unwrap();
    let source = example_source("luxbio-farm", sim.base_url(), &sim.token, None).unwrap();
    let exporter = exporter_of(vec![source]);
    assert!(matches!(
        poll(&exporter, "luxbio-farm").await,
        Outcome::Success { .. }
    ));
    assert_eq!(sim.requests(), (3, 0), "250 workers at 100 a page");
    let page = text(&exporter);
    let workers = sim.workers();
    let up = workers.iter().filter(|(_, online)| *online).count() as f64;
    assert_eq!(
        sample(&page, "mining_workers", &["state=\"active\""]),
        Some(up)
    );
    assert_eq!(
        sample(&page, "mining_workers", &["state=\"inactive\""]),
        Some(workers.len() as f64 - up)
    );
    for (name, online) in workers.iter().step_by(37) {
        assert_eq!(
            sample(&page, "mining_worker_up", &[&format!("worker=\"{name}\"")]),
            Some(if *online { 1.0 } else { 0.0 }),
            "{name}"
        );
    }
    // The example's 60/1m budget, less the three pages.
    assert_eq!(
        sample(
            &page,
            "mining_exporter_budget_remaining",
            &["budget=\"auto:luxbio-farm\""]
        ),
        Some(57.0)
    );
}

const MAPPING: &str = r#"
[[sources.endpoints.metrics]]
name = "mining_worker_up"
items = "$.items[*]"
value = "$.up"
labels = { account = "a", worker = "$.name" }
"#;

#[tokio::test]
async fn page_numbers_stop_at_total_pages_or_at_an_empty_page() {
    let server = MockServer::start_async().await;
    let mut pages = Vec::new();
    for n in 1..=3 {
        pages.push(
            server
                .mock_async(|when, then| {
                    when.path("/list").query_param("p", n.to_string()).query_param("per", "2");
                    then.status(200).json_body(json!({
                        "items": if n < 3 { json!([{"name": format!("w{n}a"), "up": true}, {"name": format!("w{n}b"), "up": 0}]) } else { json!([]) },
                        "pages": 2,
                    }));
                })
                .await,
        );
    }
    let endpoint = |extra: &str| {
        format!(
            "[[sources.endpoints]]\npath = \"/list\"\n[sources.endpoints.pagination]\ntype = \"page\"\nparam = \"p\"\nsize_param = \"per\"\nsize = 2\n{extra}{MAPPING}"
        )
    };
    let (by_count, _dir) = generic(&server.base_url(), &endpoint("total_pages = \"$.pages\"\n"));
    assert!(matches!(
        poll(&by_count, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(
        (
            pages[0].calls_async().await,
            pages[1].calls_async().await,
            pages[2].calls_async().await
        ),
        (1, 1, 0)
    );
    let (until_empty, _dir) = generic(&server.base_url(), &endpoint(""));
    assert!(matches!(
        poll(&until_empty, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(
        pages[2].calls_async().await,
        1,
        "the empty page ends the walk"
    );
    let page = text(&until_empty);
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"w2a\""]),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, "mining_worker_up", &["worker=\"w2b\""]),
        Some(0.0)
    );
    assert_eq!(
        sample(&page, "mining_workers", &["state=\"active\""]),
        Some(2.0)
    );
}

#[tokio::test]
async fn next_urls_are_followed_on_the_api_s_origin_only() {
    let server = MockServer::start_async().await;
    let elsewhere = MockServer::start_async().await;
    let stray = elsewhere
        .mock_async(|when, then| {
            when.any_request();
            then.status(200).json_body(json!({"items": []}));
        })
        .await;
    let first = server
        .mock_async(|when, then| {
            when.path("/list")
                .query_param_missing("after")
                .header("authorization", format!("Bearer {TOKEN}"));
            then.status(200)
                .json_body(json!({"items": [{"name": "w1", "up": 1}], "next": "/list?after=w1"}));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.path("/list")
                .query_param("after", "w1")
                .header("authorization", format!("Bearer {TOKEN}"));
            then.status(200)
                .json_body(json!({"items": [{"name": "w2", "up": 1}], "next": null}));
        })
        .await;
    let block = format!(
        "auth = \"bearer\"\n[[sources.endpoints]]\npath = \"/list\"\n[sources.endpoints.pagination]\ntype = \"next_url\"\nnext_url = \"$.next\"\n{MAPPING}"
    );
    let (exporter, _dir) = generic(&server.base_url(), &block);
    assert!(matches!(
        poll(&exporter, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(
        (first.calls_async().await, second.calls_async().await),
        (1, 1)
    );
    assert_eq!(
        sample(&text(&exporter), "mining_worker_up", &["worker=\"w2\""]),
        Some(1.0)
    );

    // A next page on another host would carry the token there: the poll fails instead.
    second.delete_async().await;
    server
        .mock_async(|when, then| {
            when.path("/list").query_param("after", "w1");
            then.status(200)
                .json_body(json!({"items": [], "next": format!("{}/steal", elsewhere.base_url())}));
        })
        .await;
    let (logs, _guard) = capture_logs();
    assert_eq!(
        poll(&exporter, "h").await,
        Outcome::Failure { kind: "decode" }
    );
    assert_eq!(stray.calls_async().await, 0);
    assert!(
        logs.text().contains("points away from base_url's origin"),
        "{}",
        logs.text()
    );
    // The last good snapshot stays.
    assert_eq!(
        sample(&text(&exporter), "mining_worker_up", &["worker=\"w2\""]),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_token_in_a_query_parameter_of_any_name_is_sent_and_never_shown() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.path("/stats").query_param("access", TOKEN);
            then.status(500)
                .json_body(json!({"error": format!("upstream failed for /stats?access={TOKEN}")}));
        })
        .await;
    let block = format!(
        "auth = \"query\"\nauth_param = \"access\"\nmax_retries = 1\n[[sources.endpoints]]\npath = \"/stats\"\n{}",
        MAPPING.replace("items = \"$.items[*]\"\n", "")
    );
    let (logs, _guard) = capture_logs();
    let (exporter, _dir) = generic(&server.base_url(), &block);
    assert_eq!(
        poll(&exporter, "h").await,
        Outcome::Failure { kind: "http" }
    );
    assert_eq!(mock.calls_async().await, 2);
    let logged = logs.text();
    assert!(logged.contains("upstream failed"), "{logged}");
    assert!(!logged.contains(TOKEN), "{logged}");
    assert!(!text(&exporter).contains(TOKEN));
}

#[tokio::test]
async fn data_that_does_not_fit_the_mapping_fails_that_poll_as_decode_and_keeps_the_last_good_values()
 {
    let server = MockServer::start_async().await;
    let block = r#"
[[sources.endpoints]]
name = "balance"
path = "/balance"
[[sources.endpoints.metrics]]
name = "mining_payout_balance"
type = "gauge"
help = "Balance."
value = "$.amount"
scale = 0.01
labels = { currency = "$.currency" }
"#;
    let (exporter, _dir) = generic(&server.base_url(), block);
    let mut good = server
        .mock_async(|when, then| {
            when.path("/balance");
            then.status(200)
                .json_body(json!({"amount": "1234", "currency": "ARS"}));
        })
        .await;
    assert!(matches!(
        poll(&exporter, "h").await,
        Outcome::Success { .. }
    ));
    good.delete_async().await;
    let hostile = [
        (
            json!({"amount": "lots", "currency": "ARS"}),
            "\"lots\" is not a number",
        ),
        (
            json!({"amount": {"v": 1}, "currency": "ARS"}),
            "an object or list where a number belongs",
        ),
        (json!({"currency": "ARS"}), "$.amount selects no value"),
        // An API that echoes the token where a number belongs: quoted, but scrubbed.
        (
            json!({"amount": TOKEN, "currency": "ARS"}),
            "\"[REDACTED]\" is not a number",
        ),
        (
            json!({"amount": 1, "currency": ["ARS"]}),
            "label currency: $.currency is not a string",
        ),
        (
            json!({"amount": 1}),
            "label currency: $.currency selects nothing",
        ),
        (json!([1, 2, 3]), "$.amount selects no value"),
    ];
    for (n, (body, why)) in hostile.iter().enumerate() {
        let (logs, _guard) = capture_logs();
        let bad = server
            .mock_async(|when, then| {
                when.path("/balance");
                then.status(200).json_body(body.clone());
            })
            .await;
        assert_eq!(
            poll(&exporter, "h").await,
            Outcome::Failure { kind: "decode" },
            "{body}"
        );
        let logged = logs.text();
        assert!(logged.contains(why), "{body}: {logged}");
        assert!(!logged.contains(TOKEN), "{logged}");
        assert!(
            logged.contains("balance") && logged.contains("mining_payout_balance"),
            "{logged}"
        );
        let page = text(&exporter);
        assert_eq!(
            sample(&page, "mining_payout_balance", &["currency=\"ARS\""]),
            Some(12.34)
        );
        assert_eq!(
            sample(
                &page,
                "mining_exporter_poll_errors_total",
                &["kind=\"decode\""]
            ),
            Some((n + 1) as f64)
        );
        bad.delete_async().await;
    }
    good = server
        .mock_async(|when, then| {
            when.path("/balance");
            then.status(200)
                .json_body(json!({"amount": 99, "currency": "ARS"}));
        })
        .await;
    assert!(matches!(
        poll(&exporter, "h").await,
        Outcome::Success { .. }
    ));
    assert_eq!(
        sample(
            &text(&exporter),
            "mining_payout_balance",
            &["currency=\"ARS\""]
        ),
        Some(0.99)
    );
    good.delete_async().await;
}

#[test]
fn a_generic_source_without_limits_or_budget_is_warned_about_and_a_signing_secret_never_shows() {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    std::fs::write(dir.path().join("hmac"), "hmac-s3cret-value").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::Permissions::from_mode(0o640);
        std::fs::set_permissions(dir.path().join("hmac"), mode).unwrap();
    }
    let block = |extra: &str| {
        format!(
            "[[sources]]\nkind = \"http_json\"\nname = \"h\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_file = \"token\"\n{extra}[sources.signing]\nsecret_file = \"hmac\"\n[[sources.endpoints]]\npath = \"/x\"\n{}",
            MAPPING.replace("items = \"$.items[*]\"\n", "")
        )
    };
    let parse = |text: &str| {
        Config::parse(
            text,
            "w.toml",
            dir.path(),
            SecretMode::Require,
            &mining_exporter::sources::KINDS,
        )
        .unwrap()
    };
    let assumed = parse(&block(""));
    assert!(
        assumed.warnings.iter().any(|w| w
            .contains("w.toml: sources[0].limits (source \"h\"): neither `limits` nor `budget`")),
        "{:?}",
        assumed.warnings
    );
    assert_eq!(
        assumed.budgets["auto:h"].limits,
        vec!["10/1m".parse().unwrap()]
    );
    let given = parse(&block("limits = [\"30/1m\", \"500/1h\"]\n"));
    assert!(
        given.warnings.iter().all(|w| !w.contains("limits")),
        "{:?}",
        given.warnings
    );
    #[cfg(unix)]
    assert!(
        given
            .warnings
            .iter()
            .any(|w| w.contains("signing.secret_file (source \"h\"): the signing.secret file")),
        "{:?}",
        given.warnings
    );
    assert_eq!(given.budgets["auto:h"].limits.len(), 2);
    let shown = format!("{given:?}");
    assert!(shown.contains("file "), "the secret's origin is shown");
    assert!(
        !shown.contains("hmac-s3cret-value") && !shown.contains(TOKEN),
        "{shown}"
    );
}

#[test]
fn the_same_generic_blocks_read_twice_are_equal_so_a_reload_keeps_them_and_check_names_the_signing_secret()
 {
    let read = || mining_exporter::demo::example_config().unwrap();
    let (first, second) = (read(), read());
    let generic: Vec<_> = first
        .sources
        .iter()
        .filter(|s| s.kind() == "http_json")
        .collect();
    assert_eq!(generic.len(), 3);
    for source in generic {
        let again = second
            .sources
            .iter()
            .find(|s| s.name == source.name)
            .unwrap();
        assert_eq!(source, again, "{}", source.name);
    }
    // One changed mapping is a changed source.
    let changed = Config::parse(
        &mining_exporter::demo::EXAMPLE_CONFIG.replace("scale = 1e12", "scale = 1e9"),
        "config.example.toml",
        std::path::Path::new("."),
        SecretMode::WarnIfMissing,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    let farm = |c: &Config| {
        c.sources
            .iter()
            .find(|s| s.name == "luxbio-farm")
            .cloned()
            .unwrap()
    };
    assert_ne!(farm(&first), farm(&changed));

    let report = mining_exporter::plan::report(
        &first,
        &mining_exporter::plan::plan(&first, &Default::default()),
    );
    assert!(
        report.contains("luxcore-payouts-v2 (http_json): https://api.lux-core.io, token from env LUXCORE_API_KEY, signed with the secret from env LUXCORE_HMAC_SECRET"),
        "{report}"
    );
}

#[tokio::test]
async fn the_shipped_gateway_block_reads_every_balance_of_the_simulator_in_units() {
    let sim = LuxCoreSimulator::start(LuxCoreOptions::default())
        .await
        .unwrap();
    let source = example_source("luxcore-payouts", sim.base_url(), &sim.token, None).unwrap();
    let exporter = exporter_of(vec![source]);
    assert!(matches!(
        poll(&exporter, "luxcore-payouts").await,
        Outcome::Success { .. }
    ));
    let page = text(&exporter);
    let mut seen = 0;
    for currency in ["ARS", "MXN"] {
        for kind in ["main", "deposit", "withdrawal", "commission", "frozen"] {
            let labels = [
                format!("currency=\"{currency}\""),
                format!("balance_type=\"{kind}\""),
            ];
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            let minor = sim.balance(currency, kind).unwrap();
            assert_eq!(
                sample(&page, "mining_payout_balance", &labels),
                Some(minor as f64 / 100.0),
                "{currency} {kind}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 10);
    // v1 takes the key alone: nothing was signed, nothing refused.
    assert_eq!(sim.requests(), (1, 0));
    assert_eq!(sim.refused_signatures(), 0);
}

#[tokio::test]
async fn a_poll_that_fails_past_max_pages_is_priced_at_the_pages_it_asked_for() {
    let server = MockServer::start_async().await;
    let pages = server
        .mock_async(|when, then| {
            when.path("/list");
            then.status(200)
                .json_body(json!({"items": [{"name": "w", "up": 1}], "pages": 50}));
        })
        .await;
    let (exporter, _dir) = generic(
        &server.base_url(),
        &format!(
            "interval = \"1h\"\nlimits = [\"100/1m\"]\n[[sources.endpoints]]\npath = \"/list\"\nmax_pages = 3\n[sources.endpoints.pagination]\ntype = \"page\"\nparam = \"p\"\ntotal_pages = \"$.pages\"\n{MAPPING}"
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(exporter.serve(listener, shutdown.clone()));
    let mut cost = None;
    for _ in 0..100 {
        let page = scrape(&base).await;
        cost = sample(
            &page,
            "mining_exporter_poll_cost_requests",
            &["source=\"h\""],
        );
        if pages.calls_async().await == 3 && cost == Some(3.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(pages.calls_async().await, 3, "three pages, then max_pages");
    assert_eq!(
        cost,
        Some(3.0),
        "the failed poll's three pages are its cost"
    );
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_endpoint_says_where_its_error_lives_or_that_it_has_none() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/flagged");
            then.status(200)
                .json_body(json!({"error": "stale", "items": [{"name": "w", "up": 1}]}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/nested");
            then.status(200).json_body(
                json!({"status": {"error": "maintenance"}, "items": [{"name": "w", "up": 1}]}),
            );
        })
        .await;
    let endpoint = |path: &str, error: &str| {
        format!("max_retries = 0\n[[sources.endpoints]]\npath = \"{path}\"\n{error}{MAPPING}")
    };
    // `error = false`: this API's `error` field is data, not a failure.
    let (none, _dir) = generic(&server.base_url(), &endpoint("/flagged", "error = false\n"));
    assert!(matches!(poll(&none, "h").await, Outcome::Success { .. }));
    // `error = "$.status.error"`: a non-empty string there fails the poll.
    let (nested, _dir) = generic(
        &server.base_url(),
        &endpoint("/nested", "error = \"$.status.error\"\n"),
    );
    assert_eq!(
        poll(&nested, "h").await,
        Outcome::Failure { kind: "decode" }
    );
    // By default only the top-level `error` counts: the nested one is data.
    let (default, _dir) = generic(&server.base_url(), &endpoint("/nested", ""));
    assert!(matches!(poll(&default, "h").await, Outcome::Success { .. }));
}

#[tokio::test]
async fn next_links_resolve_against_the_page_just_fetched_and_never_carry_the_token_twice() {
    let server = MockServer::start_async().await;
    let first = server
        .mock_async(|when, then| {
            when.path("/v2/list").query_param_missing("after");
            then.status(200)
                .json_body(json!({"items": [{"name": "w1", "up": 1}], "next": "?after=w1"}));
        })
        .await;
    let second = server
        .mock_async(|when, then| {
            when.path("/v2/list").query_param("after", "w1");
            then.status(200).json_body(json!({
                "items": [{"name": "w2", "up": 1}],
                "next": format!("list?after=w2&api_key={TOKEN}")
            }));
        })
        .await;
    let third = server
        .mock_async(|when, then| {
            when.path("/v2/list")
                .query_param("after", "w2")
                .is_true(|req: &HttpMockRequest| {
                    req.query_params()
                        .iter()
                        .filter(|(k, _)| k == "api_key")
                        .count()
                        == 1
                });
            then.status(200)
                .json_body(json!({"items": [{"name": "w3", "up": 1}], "next": null}));
        })
        .await;
    let block = format!(
        "auth = \"query\"\nmax_retries = 0\n[[sources.endpoints]]\npath = \"/v2/list\"\n[sources.endpoints.pagination]\ntype = \"next_url\"\nnext_url = \"$.next\"\n{MAPPING}"
    );
    let (exporter, _dir) = generic(&server.base_url(), &block);
    let outcome = poll(&exporter, "h").await;
    assert_eq!(
        (
            first.calls_async().await,
            second.calls_async().await,
            third.calls_async().await
        ),
        (1, 1, 1),
        "{outcome:?}"
    );
    assert!(matches!(outcome, Outcome::Success { .. }), "{outcome:?}");
    assert_eq!(
        sample(&text(&exporter), "mining_worker_up", &["worker=\"w3\""]),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_signing_secret_the_api_echoes_is_scrubbed_like_the_token() {
    const SIGNING_SECRET: &str = "hmac+S1GNING/secret=0123456789";
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.path("/stats");
            then.status(500).json_body(json!({
                "error": format!("bad signature, expected key {SIGNING_SECRET} ({})", SIGNING_SECRET.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D"))
            }));
        })
        .await;
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    std::fs::write(dir.path().join("signing"), SIGNING_SECRET).unwrap();
    let text = format!(
        "[[sources]]\nkind = \"http_json\"\nname = \"h\"\nbase_url = \"{}\"\ntoken_file = \"token\"\nmax_retries = 0\n[sources.signing]\nsecret_file = \"signing\"\n[[sources.endpoints]]\npath = \"/stats\"\n{}",
        server.base_url(),
        MAPPING.replace("items = \"$.items[*]\"\n", "")
    );
    let config = Config::parse(
        &text,
        "h.toml",
        dir.path(),
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    let (logs, _guard) = capture_logs();
    let exporter = Exporter::new(config).unwrap();
    assert_eq!(
        poll(&exporter, "h").await,
        Outcome::Failure { kind: "http" }
    );
    let logged = logs.text();
    assert!(logged.contains("bad signature"), "{logged}");
    assert!(!logged.contains(SIGNING_SECRET), "{logged}");
    assert!(!logged.contains("S1GNING"), "{logged}");
}
