//! `mining-exporter doctor` against the simulators' failure modes: a wrong key, a
//! dashboard-only key, a key without permission, a scope missing, a pool tighter than its
//! budget, a skewed clock, TLS spoken to a plain port; its JSON parsed, its exit code read,
//! and the token never in what it prints.

use std::process::Command;
use std::time::Duration;

use mining_exporter::config::{Config, Trigger};
use mining_exporter::demo::{
    self, LuxCoreOptions, LuxCoreSimulator, LuxorOptions, LuxorSimulator, UltimateProxyOptions,
    UltimateProxySimulator,
};
use mining_exporter::doctor::{self, DoctorOptions};
use serde_json::Value;

use crate::common::*;

fn listen() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The doctor's JSON report of `config`, parsed, as a script reads it.
async fn diagnosed(config: Config) -> Value {
    let report = doctor::run(config, &DoctorOptions::default())
        .await
        .unwrap();
    serde_json::from_str(&report.json()).unwrap()
}

fn proxy_config(sim: &UltimateProxySimulator, token: &str) -> Config {
    demo::config_of(
        listen(),
        vec![demo::demo_source(
            demo::demo_proxy(),
            "proxy",
            sim.base_url(),
            token,
            Duration::from_secs(60),
        )],
    )
}

fn source(report: &Value) -> &Value {
    &report["sources"][0]
}

fn endpoint<'a>(report: &'a Value, name: &str) -> &'a Value {
    source(report)["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == name)
        .unwrap_or_else(|| panic!("no endpoint {name} in {report:#}"))
}

fn findings(report: &Value, level: &str) -> Vec<String> {
    source(report)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == level)
        .map(|f| f["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_healthy_source_can_poll_and_its_workers_cost_and_plan_are_shown() {
    let sim = UltimateProxySimulator::start(UltimateProxyOptions {
        outages: false,
        ..UltimateProxyOptions::default()
    })
    .await
    .unwrap();
    let report = diagnosed(proxy_config(&sim, &sim.token)).await;
    assert_eq!(report["can_poll"], true, "{report:#}");
    let s = source(&report);
    assert_eq!(s["workers"], 20);
    assert_eq!(s["requests_per_poll"], sim.requests().0);
    assert!(s["interval_seconds"].as_f64().unwrap() >= 60.0);
    let overview = endpoint(&report, "/v1/overview");
    assert_eq!(overview["statuses"], serde_json::json!([200]));
    assert_eq!(overview["auth"], "accepted");
    assert_eq!(overview["rate"]["limit"], 60);
    assert!(findings(&report, "error").is_empty(), "{report:#}");
    assert!(findings(&report, "warning").is_empty(), "{report:#}");
}

#[tokio::test]
async fn a_wrong_key_is_refused_by_name_and_neither_key_is_printed() {
    let sim = UltimateProxySimulator::start(UltimateProxyOptions::default())
        .await
        .unwrap();
    let wrong = "up_k_wrongwrongwrong0001";
    let report = doctor::run(proxy_config(&sim, wrong), &DoctorOptions::default())
        .await
        .unwrap();
    let (text, json) = (report.text(), report.json());
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["can_poll"], false);
    let overview = endpoint(&report, "/v1/overview");
    assert_eq!(overview["statuses"], serde_json::json!([401]));
    assert_eq!(overview["auth"], "refused");
    let errors = findings(&report, "error").join("\n");
    assert!(errors.contains("refused the key (HTTP 401"), "{errors}");
    // No retry: one request, and the poll stopped at the first refusal.
    assert_eq!(sim.requests().0, 1);
    for printed in [&text, &json] {
        assert!(
            !printed.contains(wrong) && !printed.contains(&sim.token),
            "{printed}"
        );
    }
    assert!(text.contains("CANNOT POLL"), "{text}");
}

#[tokio::test]
async fn a_dashboard_only_key_is_told_the_scope_it_lacks() {
    let sim = UltimateProxySimulator::start(UltimateProxyOptions {
        scopes: vec!["dashboard:read"],
        ..UltimateProxyOptions::default()
    })
    .await
    .unwrap();
    let report = diagnosed(proxy_config(&sim, &sim.token)).await;
    assert_eq!(report["can_poll"], false);
    assert_eq!(endpoint(&report, "/v1/overview")["auth"], "accepted");
    let workers = endpoint(&report, "/v1/workers");
    assert_eq!(workers["auth"], "missing_scope");
    assert_eq!(workers["statuses"], serde_json::json!([403]));
    let errors = findings(&report, "error").join("\n");
    assert!(errors.contains("lacks the workers:read scope"), "{errors}");
}

#[tokio::test]
async fn a_luxor_key_without_permission_is_named_as_such() {
    let sim = LuxorSimulator::start(LuxorOptions {
        permitted: false,
        ..LuxorOptions::default()
    })
    .await
    .unwrap();
    let config = demo::config_of(
        listen(),
        vec![demo::demo_source(
            demo::demo_luxor(),
            "luxor",
            sim.base_url(),
            &sim.token,
            Duration::from_secs(60),
        )],
    );
    let report = diagnosed(config).await;
    assert_eq!(report["can_poll"], false);
    let errors = findings(&report, "error").join("\n");
    assert!(
        errors.contains("not enough permissions (HTTP 403"),
        "{errors}"
    );
    let first = &source(&report)["endpoints"][0];
    assert_eq!(first["auth"], "missing_scope", "{report:#}");
}

#[tokio::test]
async fn a_pool_tighter_than_the_budget_is_a_warning_with_the_limit_to_set() {
    // A non-VIP account (10 a minute) configured as VIP (60 a minute).
    let sim = UltimateProxySimulator::start(UltimateProxyOptions {
        limit_per_minute: 10,
        ..UltimateProxyOptions::default()
    })
    .await
    .unwrap();
    let report = diagnosed(proxy_config(&sim, &sim.token)).await;
    assert_eq!(report["can_poll"], true, "{report:#}");
    assert_eq!(endpoint(&report, "/v1/overview")["rate"]["limit"], 10);
    let warnings = findings(&report, "warning").join("\n");
    assert!(
        warnings.contains("allows 60/1m but the pool's X-RateLimit-Limit is 10")
            && warnings.contains("limits = [\"10/1m\"]"),
        "{warnings}"
    );
}

/// LuxCore's v2 block of config.example.toml, signed, against `sim`.
fn luxcore_config(sim: &LuxCoreSimulator) -> Config {
    let secret = sim.hmac_secret();
    let (mut source, budget) = demo::example_source(
        "luxcore-payouts-v2",
        sim.base_url(),
        &sim.token,
        Some(&secret),
    )
    .unwrap();
    source.trigger = Trigger::Every(Duration::from_secs(60));
    demo::config_of(listen(), vec![(source, budget)])
}

#[tokio::test]
async fn a_skewed_clock_is_measured_warned_of_and_past_the_window_fatal() {
    let near = LuxCoreSimulator::start(LuxCoreOptions {
        clock_offset: 200,
        ..LuxCoreOptions::default()
    })
    .await
    .unwrap();
    let report = diagnosed(luxcore_config(&near)).await;
    assert_eq!(report["can_poll"], true, "{report:#}");
    let skew = source(&report)["clock_skew_seconds"].as_i64().unwrap();
    assert!((-201..=-199).contains(&skew), "{skew}");
    let warnings = findings(&report, "warning").join("\n");
    assert!(warnings.contains("s behind the API's"), "{warnings}");

    let far = LuxCoreSimulator::start(LuxCoreOptions {
        clock_offset: 900,
        ..LuxCoreOptions::default()
    })
    .await
    .unwrap();
    let report = diagnosed(luxcore_config(&far)).await;
    assert_eq!(report["can_poll"], false);
    assert_eq!(source(&report)["error_kind"], "clock_skew");
    let errors = findings(&report, "error").join("\n");
    assert!(errors.contains("every signature is refused"), "{errors}");
    // The API's 401 is about the signature's time, not the key: no finding blames the key.
    assert!(!errors.contains("refused the key"), "{errors}");
    assert_eq!(source(&report)["endpoints"][0]["auth"], "unknown");
}

#[tokio::test]
async fn a_missing_balance_read_scope_is_named_from_the_api_s_words() {
    let sim = LuxCoreSimulator::start(LuxCoreOptions {
        balance_scope: false,
        ..LuxCoreOptions::default()
    })
    .await
    .unwrap();
    let report = diagnosed(luxcore_config(&sim)).await;
    assert_eq!(report["can_poll"], false);
    let errors = findings(&report, "error").join("\n");
    assert!(errors.contains("balance.read"), "{errors}");
    let first = &source(&report)["endpoints"][0];
    assert_eq!(first["auth"], "missing_scope", "{report:#}");
}

#[tokio::test]
async fn tls_spoken_to_a_plain_port_is_named_as_tls_and_not_reached() {
    let sim = UltimateProxySimulator::start(UltimateProxyOptions::default())
        .await
        .unwrap();
    let https = sim.base_url().replace("http://", "https://");
    let config = demo::config_of(
        listen(),
        vec![demo::demo_source(
            demo::demo_proxy(),
            "proxy",
            https,
            &sim.token,
            Duration::from_secs(60),
        )],
    );
    let report = diagnosed(config).await;
    assert_eq!(report["can_poll"], false);
    let overview = endpoint(&report, "/v1/overview");
    assert_eq!(overview["reached"], false);
    let errors = findings(&report, "error").join("\n");
    assert!(errors.contains("the TLS handshake"), "{errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_prints_json_exits_by_whether_every_source_can_poll_and_keeps_state() {
    let sim = UltimateProxySimulator::start(UltimateProxyOptions::default())
        .await
        .unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, config_text(&sim.base_url(), "")).unwrap();
    // The test's body blocks one runtime thread on the child; the simulator answers on the other.
    let run = |token: &str, args: &[&str]| {
        std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
        Command::new(BIN)
            .arg("doctor")
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let state_dir = dir.path().join("state");
    let state_arg = state_dir.to_str().unwrap();
    let good = run(
        &sim.token,
        &[
            "--format",
            "json",
            "--source",
            "proxy",
            "--state-dir",
            state_arg,
        ],
    );
    let stdout = String::from_utf8(good.stdout).unwrap();
    assert_eq!(good.status.code(), Some(0), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["sources"][0]["name"], "proxy");
    assert!(!stdout.contains(&sim.token));
    // The doctor's requests are in the state file a running exporter starts from.
    let state = std::fs::read_to_string(state_dir.join("mining-exporter-state.json")).unwrap();
    assert!(state.contains("\"sent\":[["), "{state}");

    let bad = run("up_k_notthekey000", &[]);
    let text = String::from_utf8(bad.stdout).unwrap();
    assert_eq!(bad.status.code(), Some(1), "{text}");
    assert!(
        text.contains("source proxy (ultimate_proxy): CANNOT POLL"),
        "{text}"
    );
    assert!(!text.contains("up_k_notthekey000"), "{text}");

    let unknown = Command::new(BIN)
        .args(["doctor", "--source", "nope", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    let err = String::from_utf8(unknown.stderr).unwrap();
    assert!(
        err.contains("no source is named \"nope\"") && err.contains("fix: use one of proxy"),
        "{err}"
    );
}

#[tokio::test]
async fn a_timeout_and_a_closed_port_are_named_as_such() {
    use httpmock::prelude::*;
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.any_request();
            then.status(200).delay(Duration::from_secs(3)).body("{}");
        })
        .await;
    let dir = tempfile::TempDir::new().unwrap();
    let slow = config(dir.path(), &server.base_url(), "timeout = \"300ms\"");
    let report = diagnosed(slow).await;
    assert_eq!(report["can_poll"], false);
    assert_eq!(endpoint(&report, "/v1/overview")["reached"], false);
    let errors = findings(&report, "error").join("\n");
    assert!(
        errors.contains("no complete answer within the source's timeout"),
        "{errors}"
    );

    let closed = format!("http://127.0.0.1:{}", free_port());
    let report = diagnosed(config(dir.path(), &closed, "")).await;
    let errors = findings(&report, "error").join("\n");
    assert!(
        errors.contains("the connection to") && errors.contains("was refused"),
        "{errors}"
    );
}
