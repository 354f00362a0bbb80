//! Reloading the config while serving: `POST /-/reload` (with the lifecycle API) and SIGHUP.
//! Sources added start polling, removed ones stop and leave the page, unchanged ones keep
//! running untouched, budgets keep their send logs, and a broken file changes nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use httpmock::prelude::*;
use mining_exporter::config::{Config, SecretMode};
use mining_exporter::{Exporter, ExporterOptions};
use tokio_util::sync::CancellationToken;

use crate::common::*;

/// Ultimate Proxy sources named `names`, polled hourly (so only a start polls), sharing the
/// budget `b` of `limits`.
fn sources(base_url: &str, names: &[&str], limits: &str) -> String {
    let mut text = String::new();
    for name in names {
        text.push_str(&format!(
            "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"{name}\"\naccount = \"{name}\"\nbase_url = \"{base_url}\"\ntoken_file = \"token\"\ninterval = \"1h\"\nbudget = \"b\"\ntier = \"vip\"\n"
        ));
    }
    text + &format!("[budgets.b]\nlimits = [\"{limits}\"]\n")
}

/// Waits (at most 10 s) until the page shows `needle`.
async fn wait_for(base: &str, needle: &str) -> String {
    for _ in 0..100 {
        let text = scrape(base).await;
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{needle} never showed on {base}/metrics");
}

async fn post_reload(base: &str) -> (u16, String) {
    let answer = http()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// An exporter loaded from `file`, reloading from it, with the lifecycle API, serving on a
/// loopback port until `shutdown`: its base URL and its task, once it is ready.
async fn serve_reloadable(
    file: &Path,
    shutdown: &CancellationToken,
) -> (
    String,
    tokio::task::JoinHandle<Result<(), mining_exporter::error::StartError>>,
) {
    let config = Config::load(file, SecretMode::Require, &mining_exporter::sources::KINDS).unwrap();
    let exporter = Exporter::with_options(
        config,
        ExporterOptions {
            config_path: Some(file.to_path_buf()),
            enable_lifecycle: true,
            ..ExporterOptions::default()
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(exporter.serve(listener, shutdown.clone()));
    wait_ready(&base).await;
    (base, serving)
}

#[tokio::test]
async fn a_reload_adds_removes_keeps_and_refuses_a_broken_file() {
    let server = MockServer::start_async().await;
    let mocks = mock_poll(&server, vec![worker("rig01", "online", 1000.0)]).await;
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let file = dir.path().join("config.toml");
    write(
        &file,
        &sources(&server.base_url(), &["keep", "drop"], "50/1h"),
    );

    let shutdown = CancellationToken::new();
    let (base, serving) = serve_reloadable(&file, &shutdown).await;
    let before = scrape(&base).await;
    assert!(before.contains("source=\"drop\""), "{before}");
    let overview = &mocks[0];
    assert_eq!(overview.calls_async().await, 2, "one poll per source");
    let remaining_before = sample(
        &before,
        "mining_exporter_budget_remaining",
        &["budget=\"b\""],
    )
    .unwrap();
    assert_eq!(remaining_before, 44.0, "{before}");
    let loaded_at = sample(
        &before,
        "mining_exporter_config_last_reload_success_timestamp_seconds",
        &[],
    )
    .unwrap();

    // keep stays as it was, drop goes, added comes.
    write(
        &file,
        &sources(&server.base_url(), &["keep", "added"], "50/1h"),
    );
    assert_eq!(
        post_reload(&base).await,
        (200, "configuration reloaded\n".into())
    );
    let after = wait_for(
        &base,
        "mining_exporter_source_up{pool=\"ultimate_proxy\",source=\"added\"} 1",
    )
    .await;
    assert!(
        !after.contains("source=\"drop\""),
        "drop's series, counters included, left:\n{after}"
    );
    assert_eq!(
        sample(
            &after,
            "mining_worker_up",
            &["source=\"keep\"", "worker=\"rig01\""]
        ),
        Some(1.0),
        "keep's series stayed"
    );
    assert_eq!(
        overview.calls_async().await,
        3,
        "only added polled: keep was not restarted"
    );
    assert_eq!(
        sample(
            &after,
            "mining_exporter_budget_remaining",
            &["budget=\"b\""]
        ),
        Some(41.0),
        "the budget kept its log: 9 of 50 used"
    );
    assert_eq!(
        sample(&after, "mining_exporter_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert!(
        sample(
            &after,
            "mining_exporter_config_last_reload_success_timestamp_seconds",
            &[]
        )
        .unwrap()
            >= loaded_at
    );

    // Tighter limits count what was already sent: no fresh window after a reload.
    write(
        &file,
        &sources(&server.base_url(), &["keep", "added"], "45/1h"),
    );
    assert_eq!(post_reload(&base).await.0, 200);
    let tighter = scrape(&base).await;
    let remaining = sample(
        &tighter,
        "mining_exporter_budget_remaining",
        &["budget=\"b\""],
    )
    .unwrap();
    assert!(
        remaining <= 36.0,
        "45 - 9 already sent, at most: {remaining}"
    );

    // A broken file: refused with check's message, the running config stays.
    write(
        &file,
        &format!(
            "{}tokn = 1\n",
            sources(&server.base_url(), &["keep"], "50/1h")
        ),
    );
    let expected = Config::load(&file, SecretMode::Require, &mining_exporter::sources::KINDS)
        .unwrap_err()
        .to_string();
    let (status, body) = post_reload(&base).await;
    assert_eq!((status, body.trim_end()), (500, expected.as_str()));
    let refused = scrape(&base).await;
    assert!(
        refused.contains("source=\"added\""),
        "the running config stays:\n{refused}"
    );
    assert_eq!(
        sample(
            &refused,
            "mining_exporter_config_last_reload_successful",
            &[]
        ),
        Some(0.0)
    );

    shutdown.cancel();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn sighup_reloads_the_binary_and_the_lifecycle_api_is_off_by_default() {
    let server = MockServer::start_async().await;
    mock_poll(&server, vec![worker("rig01", "online", 1000.0)]).await;
    let (dir, file, port) = served_config(&sources(&server.base_url(), &["first"], "50/1h"));
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    assert_eq!(post_reload(&base).await.0, 403);

    let config = std::fs::read_to_string(&file).unwrap().replace(
        "[budgets.b]",
        &sources(&server.base_url(), &["second"], "50/1h")
            .replace("[budgets.b]\nlimits = [\"50/1h\"]\n", "[budgets.b]"),
    );
    write(&file, &config);
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let after = wait_for(&base, "source=\"second\"} 1").await;
    assert!(after.contains("source=\"first\""), "{after}");
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    drop(dir);
}

#[tokio::test]
async fn a_default_budget_keeps_its_log_when_its_first_source_is_removed() {
    let server = MockServer::start_async().await;
    mock_poll(&server, vec![worker("rig01", "online", 1000.0)]).await;
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let file = dir.path().join("config.toml");
    // Two sources on one token and no named budget: they share `auto:first`.
    let sources = |names: &[&str]| -> String {
        names
            .iter()
            .map(|name| format!(
                "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"{name}\"\nbase_url = \"{}\"\ntoken_file = \"token\"\ninterval = \"1h\"\ntier = \"vip\"\n",
                server.base_url()
            ))
            .collect()
    };
    write(&file, &sources(&["first", "second"]));
    let shutdown = CancellationToken::new();
    let (base, serving) = serve_reloadable(&file, &shutdown).await;
    let before = scrape(&base).await;
    assert_eq!(
        sample(
            &before,
            "mining_exporter_budget_remaining",
            &["budget=\"auto:first\""]
        ),
        Some(54.0),
        "two polls of 3 of the VIP 60:\n{before}"
    );

    write(&file, &sources(&["second"]));
    assert_eq!(post_reload(&base).await.0, 200);
    let after = scrape(&base).await;
    assert_eq!(
        sample(
            &after,
            "mining_exporter_budget_remaining",
            &["budget=\"auto:second\""]
        ),
        Some(54.0),
        "the token's budget, renamed, still counts what was sent:\n{after}"
    );
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}

/// One Ultimate Proxy source per name on the token in `token`, no named budget, polled
/// hourly (so only a start polls).
fn token_sources(base_url: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!(
            "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"{name}\"\nbase_url = \"{base_url}\"\ntoken_file = \"token\"\ninterval = \"1h\"\ntier = \"non_vip\"\n"
        ))
        .collect()
}

#[tokio::test]
async fn renaming_a_tokens_only_source_keeps_its_budget() {
    let server = MockServer::start_async().await;
    mock_poll(&server, vec![worker("rig01", "online", 1000.0)]).await;
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let file = dir.path().join("config.toml");
    write(&file, &token_sources(&server.base_url(), &["proxy"]));
    let shutdown = CancellationToken::new();
    let (base, serving) = serve_reloadable(&file, &shutdown).await;
    let before = sample(
        &scrape(&base).await,
        "mining_exporter_budget_remaining",
        &["budget=\"auto:proxy\""],
    );
    assert_eq!(before, Some(7.0), "one poll of 3 of the non-VIP 10");

    // The rename's new poller polls at once: 3 more of the same 10, not of a fresh window.
    write(&file, &token_sources(&server.base_url(), &["proxy-main"]));
    assert_eq!(post_reload(&base).await.0, 200);
    let after = wait_for(
        &base,
        "mining_exporter_source_up{pool=\"ultimate_proxy\",source=\"proxy-main\"} 1",
    )
    .await;
    assert_eq!(
        sample(
            &after,
            "mining_exporter_budget_remaining",
            &["budget=\"auto:proxy-main\""]
        ),
        Some(4.0),
        "the renamed source's budget still counts the first poll:\n{after}"
    );
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_token_removed_and_added_back_finds_its_budget_again() {
    let server = MockServer::start_async().await;
    mock_poll(&server, vec![worker("rig01", "online", 1000.0)]).await;
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    std::fs::write(dir.path().join("other"), "up_k_OTHERKEY0123456789abcdef").unwrap();
    let file = dir.path().join("config.toml");
    write(&file, &token_sources(&server.base_url(), &["proxy"]));
    let shutdown = CancellationToken::new();
    let (base, serving) = serve_reloadable(&file, &shutdown).await;

    // Only another token's source for a while, then the first token's source again.
    write(
        &file,
        &token_sources(&server.base_url(), &["elsewhere"]).replace("\"token\"", "\"other\""),
    );
    assert_eq!(post_reload(&base).await.0, 200);
    write(&file, &token_sources(&server.base_url(), &["proxy"]));
    assert_eq!(post_reload(&base).await.0, 200);
    let after = wait_for(
        &base,
        "mining_exporter_source_up{pool=\"ultimate_proxy\",source=\"proxy\"} 1",
    )
    .await;
    assert_eq!(
        sample(
            &after,
            "mining_exporter_budget_remaining",
            &["budget=\"auto:proxy\""]
        ),
        Some(4.0),
        "two polls of 3 of the same 10:\n{after}"
    );
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_removed_cron_source_leaves_no_job_behind() {
    let server = MockServer::start_async().await;
    mock_poll(&server, vec![worker("rig01", "online", 1000.0)]).await;
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let file = dir.path().join("config.toml");
    let cron = token_sources(&server.base_url(), &["timed"])
        .replace("interval = \"1h\"", "schedule = \"0 0 * * * *\"");
    let plain = token_sources(&server.base_url(), &["plain"]);
    write(&file, &format!("{cron}{plain}"));
    let shutdown = CancellationToken::new();
    let (logs, _guard) = capture_logs();
    let (base, serving) = serve_reloadable(&file, &shutdown).await;
    // Reloading with the cron source keeps its one job; removing it removes the job.
    write(&file, &format!("{cron}{plain}\n"));
    assert_eq!(post_reload(&base).await.0, 200);
    write(&file, &plain);
    assert_eq!(post_reload(&base).await.0, 200);
    let logged = logs.text();
    let reloads: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("configuration reloaded"))
        .collect();
    assert_eq!(reloads.len(), 2, "{logged}");
    assert!(reloads[0].contains("cron_jobs=1"), "{}", reloads[0]);
    assert!(reloads[1].contains("cron_jobs=0"), "{}", reloads[1]);
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}
