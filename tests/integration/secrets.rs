//! The token never reaches logs, errors, /metrics or `check` output, even when the pool
//! echoes it back or carries it in the query string.

use std::process::{Command, Stdio};
use std::sync::Arc;

use httpmock::prelude::*;
use mining_exporter::budget::Budget;
use mining_exporter::client::{Connection, Upstream, http_client};
use mining_exporter::config::auth::{Auth, TokenPlacement};
use mining_exporter::config::{BudgetConfig, Config, HttpSettings, SecretMode};
use mining_exporter::secret::Secret;
use mining_exporter::telemetry::Telemetry;
use serde_json::json;

use crate::common::*;

/// What `check` printed, and what `run` logged and served before SIGTERM.
struct Observed {
    check: String,
    logs: String,
    metrics: String,
}

/// Runs `check` and then `run` (at trace level) on a config of `sources`, whose token file
/// `token` holds TOKEN; scrapes /metrics after `settle`; stops with SIGTERM, which must exit 0.
async fn check_then_run(sources: &str, settle: std::time::Duration) -> Observed {
    let (_dir, config, port) = served_config(sources);

    let check = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let check_out = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{check_out}");

    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    tokio::time::sleep(settle).await;
    let metrics = scrape(&base).await;
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    let logs =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?} after SIGTERM:\n{logs}",
        out.status
    );
    Observed {
        check: check_out,
        logs,
        metrics,
    }
}

#[tokio::test]
async fn run_and_check_never_print_the_token_and_sigterm_exits_0() {
    let server = MockServer::start_async().await;
    // A pool that echoes the key back in its error body.
    server
        .mock_async(|when, then| {
            when.any_request();
            then.status(401)
                .json_body(json!({"error": format!("Invalid API key {TOKEN}")}));
        })
        .await;
    let seen = check_then_run(
        &config_text(&server.base_url(), ""),
        std::time::Duration::ZERO,
    )
    .await;
    assert!(seen.check.contains("token from file"), "{}", seen.check);
    assert!(
        !seen.check.contains(TOKEN),
        "check printed the token:\n{}",
        seen.check
    );
    assert!(
        seen.metrics
            .contains("mining_exporter_source_up{pool=\"ultimate_proxy\",source=\"proxy\"} 0"),
        "{}",
        seen.metrics
    );
    assert!(!seen.metrics.contains(TOKEN));
    // The failure is in the log, with the echoed key scrubbed out of it.
    let logs = &seen.logs;
    assert!(logs.contains("authentication failed"), "{logs}");
    assert!(logs.contains("Invalid API key [REDACTED]"), "{logs}");
    assert!(!logs.contains(TOKEN), "the log leaked the token:\n{logs}");
}

#[tokio::test]
async fn ourpool_query_token_stays_out_of_logs_metrics_and_check_and_auth_is_logged_once() {
    let server = MockServer::start_async().await;
    // The pool refuses the token and echoes the URL, token and all.
    let refused = server
        .mock_async(|when, then| {
            when.path("/api/v1/accounts/farm/btc/rewards-stats")
                .query_param("token", TOKEN);
            then.status(403)
                .json_body(json!({"code": "auth.unexpected_error",
                "message": format!("permission check failed for ?token={TOKEN}")}));
        })
        .await;
    let sources = format!(
        "[[sources]]\nkind = \"ourpool\"\nname = \"op\"\naccount = \"farm\"\nbase_url = \"{}\"\ntoken_file = \"token\"\ninterval = \"1s\"\nbudget = \"test\"\n[budgets.test]\nlimits = [\"100/1s\"]\n",
        server.base_url()
    );
    let seen = check_then_run(&sources, std::time::Duration::from_millis(2500)).await;
    let polls = refused.calls_async().await;
    assert!(polls >= 2, "only {polls} polls");
    assert!(seen.check.contains("op (ourpool)"), "{}", seen.check);
    for (what, text) in [
        ("check", &seen.check),
        ("logs", &seen.logs),
        ("metrics", &seen.metrics),
    ] {
        assert!(!text.contains(TOKEN), "{what} leaked the token:\n{text}");
    }
    // Trace logs show each request's URL, with the token redacted.
    assert!(seen.logs.contains("token=%5BREDACTED%5D"), "{}", seen.logs);
    let warnings: Vec<&str> = seen
        .logs
        .lines()
        .filter(|l| l.contains("level=warn") && l.contains("authentication failed"))
        .collect();
    assert_eq!(warnings.len(), 1, "{polls} polls, logged {warnings:#?}");
    assert!(
        warnings[0].contains("permission check failed"),
        "{}",
        warnings[0]
    );
    let counted = sample(
        &seen.metrics,
        "mining_exporter_poll_errors_total",
        &["source=\"op\"", "kind=\"auth\""],
    );
    assert!(counted.is_some_and(|n| n >= 2.0), "{}", seen.metrics);
}

#[tokio::test]
async fn a_token_in_the_query_string_stays_out_of_errors() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.path("/api/v1/x").query_param("token", TOKEN);
            then.status(403)
                .json_body(json!({"code": "auth.unexpected_error", "message": format!("permission check failed for /api/v1/x?token={TOKEN}")}));
        })
        .await;
    let upstream = upstream_with(
        server.base_url(),
        TokenPlacement::Query("token".into()),
        TOKEN,
    );
    let error = upstream
        .get_json::<serde_json::Value>("/api/v1/x", "/api/v1/x", &[])
        .await
        .unwrap_err();
    assert_eq!(mock.calls_async().await, 1);
    let shown = format!("{error} {error:?}");
    assert_eq!(error.kind().label(), "auth");
    assert!(shown.contains("permission check failed"), "{shown}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(!format!("{upstream:?}").contains(TOKEN));
}

#[test]
fn debug_output_of_a_config_hides_the_token() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = crate::common::config(dir.path(), "http://127.0.0.1:1", "");
    assert!(config.sources[0].token.is_some());
    assert!(!format!("{config:?}").contains(TOKEN));
    let reloaded = Config::parse(
        &config_text("http://127.0.0.1:1", ""),
        "x.toml",
        dir.path(),
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    assert_eq!(reloaded.sources[0].token.as_ref().unwrap().expose(), TOKEN);
}

/// An Upstream that sends once, without retries.
fn upstream_with(base_url: String, token_in: TokenPlacement, token: &str) -> Upstream {
    Upstream::new(
        http_client().unwrap(),
        Connection {
            base_url,
            auth: Auth::token_in(token_in),
            token: Secret::new(token),
            budget: Arc::new(Budget::new(&BudgetConfig {
                name: "b".into(),
                limits: vec!["10/1s".parse().unwrap()],
                origin: "test".into(),
                target: 0.85,
            })),
            host_budget: None,
            settings: HttpSettings {
                max_retries: 0,
                ..HttpSettings::default()
            },
            clock: Default::default(),
        },
        Telemetry::new().source("test", "s", false),
    )
}

#[tokio::test]
async fn an_echoed_token_is_scrubbed_before_the_message_is_cut_and_in_encoded_form() {
    let token = "tok+en/with=chars_0123456789";
    let encoded = "tok%2Ben%2Fwith%3Dchars_0123456789";
    let server = MockServer::start_async().await;
    // The echo starts just before the 200-character cut, so a cut made first keeps the
    // token's first characters.
    let padding = "x".repeat(190);
    server
        .mock_async(|when, then| {
            when.path("/cut");
            then.status(500)
                .json_body(json!({"error": format!("{padding} {token}")}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/encoded");
            then.status(403)
                .json_body(json!({"error": format!("bad key in /encoded?token={encoded}")}));
        })
        .await;
    let upstream = upstream_with(server.base_url(), TokenPlacement::Bearer, token);
    for path in ["/cut", "/encoded"] {
        let error = upstream
            .get_json::<serde_json::Value>("/x", path, &[])
            .await
            .unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(&token[..6]), "{path}: {shown}");
        assert!(!shown.contains(&encoded[..8]), "{path}: {shown}");
    }
}

/// A token pasted into `token_env` that happens to be a valid variable name is still never
/// printed: not by `check`'s warning, nor by `run`'s refusal, nor where the origin is shown.
#[test]
fn a_pasted_token_that_is_a_valid_variable_name_is_never_printed() {
    let pasted = "up_k_3f9c0a1b2c3d4e5f60718293a4";
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"proxy\"\ntoken_env = \"{pasted}\"\ntier = \"vip\"\n"
        ),
    )
    .unwrap();
    for command in ["check", "run"] {
        let out = Command::new(BIN)
            .args([command, "--config"])
            .arg(&config)
            .env_remove(pasted)
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !printed.contains(pasted),
            "{command} printed it:\n{printed}"
        );
        assert!(
            printed.contains("looks like a token"),
            "{command} says what it found:\n{printed}"
        );
    }
}
