//! The binary as a user runs it: `demo`, and cron-scheduled polling in `serve`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use httpmock::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::common::*;

#[tokio::test]
async fn demo_prints_its_url_and_serves_worker_metrics() {
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let url = lines
        .by_ref()
        .find_map(|line| {
            line.split_whitespace()
                .find(|w| w.starts_with("http://") && w.ends_with("/metrics"))
                .map(str::to_string)
        })
        .expect("demo printed no /metrics URL");
    // Keep reading so the demo never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let base = url.trim_end_matches("/metrics").to_string();
    wait_ready(&base).await;
    let page = http().get(&url).send().await.unwrap().text().await.unwrap();
    sigterm(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "demo exited with {status:?}");

    assert_eq!(
        sample(
            &page,
            "mining_exporter_source_up",
            &["source=\"demo-proxy\""]
        ),
        Some(1.0)
    );
    let proxy = "source=\"demo-proxy\"";
    let active = sample(&page, "mining_workers", &[proxy, "state=\"active\""]).unwrap();
    let inactive = sample(&page, "mining_workers", &[proxy, "state=\"inactive\""]).unwrap();
    // The lively farm starts with 20 and, every few minutes, loses or gains one; a slow start
    // may see that. Whatever the count, mining_workers counts every worker the page lists.
    let listed = page
        .lines()
        .filter(|l| l.starts_with("mining_worker_up{") && l.contains(proxy))
        .count();
    assert_eq!(active + inactive, listed as f64, "{page}");
    assert!((18..=22).contains(&listed), "{listed} workers");
    let rig = sample(
        &page,
        "mining_worker_hashrate_hashes_per_second",
        &["worker=\"rig01\""],
    )
    .unwrap();
    assert!(rig > 1000.0, "rig01 at {rig} H/s");
    assert!(sample(&page, "mining_account_hashrate_hashes_per_second", &[]).unwrap() > 0.0);
    if let Some(problems) = crate::promtool::promtool_check(&page) {
        assert_eq!(
            problems, "",
            "promtool check metrics complained about the demo's /metrics"
        );
    }
}

#[tokio::test]
async fn a_cron_schedule_drives_polls() {
    let server = MockServer::start_async().await;
    let mocks = mock_poll(&server, vec![worker("rig1", "online", 1.0)]).await;
    let (exporter, _dir) = exporter(&server.base_url(), "schedule = \"* * * * * *\"");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(exporter.serve(listener, shutdown.clone()));
    // One poll at start (it stands for the firing in its first second), then one a second:
    // at least three within 4.5 s.
    tokio::time::sleep(Duration::from_millis(4500)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("serve stops after shutdown")
        .unwrap()
        .unwrap();
    let polls = mocks[0].calls_async().await;
    assert!((3..=5).contains(&polls), "{polls} polls in 4.5 s");
}

/// Runs `run` on a source whose pool refuses the token, with `args` and `env`, until the
/// first poll is done; returns stderr.
async fn logs_of_run(args: &[&str], env: &[(&str, &str)]) -> String {
    let server = MockServer::start_async().await;
    refuse_every_request(&server).await;
    let (_dir, config, port) = served_config(&config_text(&server.base_url(), ""));
    let mut command = Command::new(BIN);
    command
        .args(["run", "--config"])
        .arg(&config)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env_remove("STATE_DIRECTORY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command.spawn().unwrap();
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[tokio::test]
async fn logs_are_logfmt_or_json_at_the_asked_level_and_never_coloured_into_a_pipe() {
    let logfmt = logs_of_run(&[], &[]).await;
    assert!(
        !logfmt.contains('\x1b'),
        "colour codes in a pipe:\n{logfmt}"
    );
    assert!(
        logfmt
            .lines()
            .any(|l| l.contains("level=warn") && l.contains("authentication failed")),
        "{logfmt}"
    );
    assert!(logfmt.lines().all(|l| l.starts_with("ts=")), "{logfmt}");
    assert!(logfmt.contains("level=info"), "{logfmt}");

    let json = logs_of_run(&["--log.format", "json"], &[]).await;
    for line in json.lines() {
        let parsed: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(parsed["level"].is_string(), "{line}");
    }
    assert!(json.contains("authentication failed"), "{json}");

    let quiet = logs_of_run(&["--log.level", "warn"], &[]).await;
    assert!(!quiet.contains("level=info"), "{quiet}");
    assert!(quiet.contains("level=warn"), "{quiet}");

    // RUST_LOG keeps working, and wins over the flag.
    let debug = logs_of_run(&["--log.level", "warn"], &[("RUST_LOG", "debug")]).await;
    assert!(debug.contains("level=debug"), "{debug}");
}

#[tokio::test]
async fn run_keeps_budgets_and_costs_in_the_state_dir_and_check_plans_with_them() {
    let server = MockServer::start_async().await;
    mock_poll(&server, vec![worker("rig1", "online", 1.0)]).await;
    let (dir, config, port) = served_config(&format!(
        "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"proxy\"\nbase_url = \"{}\"\ntoken_file = \"token\"\n",
        server.base_url()
    ));
    let state = dir.path().join("state");
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .arg("--state-dir")
            .arg(&state)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let page = scrape(&base).await;
    sigterm(&child.0);
    assert!(child.0.wait().unwrap().success());

    // One poll: the overview, one page, one hashrate series.
    assert_eq!(
        sample(
            &page,
            "mining_exporter_poll_cost_requests",
            &["source=\"proxy\""]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &page,
            "mining_exporter_poll_interval_planned_seconds",
            &["source=\"proxy\""]
        ),
        Some(60.0)
    );
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state.join("mining-exporter-state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(saved["costs"]["proxy"]["requests"], 3);
    // Each writer's part; each entry: when, and how many sends were made then.
    let sent: u64 = saved["budgets"]["auto:proxy"]["writers"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|part| part["sent"].as_array().unwrap().iter())
        .map(|entry| entry[1].as_u64().unwrap())
        .sum();
    // The three requests sent (and the sends a first start assumes, while in the window).
    assert!(sent >= 3, "{saved}");
    assert!(!saved.to_string().contains(TOKEN));

    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("proxy: 3 requests a poll (learned from its last polls); asked every 1m, planned the same"),
        "{stdout}"
    );
}

/// examples/pools/: each file is one block that `check` accepts as shipped once its secrets
/// are in the environment, planned on the vendor's limits its comments state, and naming
/// its doc page. A file added there is covered without a change here.
#[test]
fn every_shipped_pool_block_passes_check_on_its_own_limits() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pools");
    let mut files: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("# Docs: https://"),
            "{}: names no doc page",
            file.display()
        );
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let block = doc["sources"].as_array().unwrap()[0].as_table().unwrap();
        let name = block["name"].as_str().unwrap();
        let limits: Vec<&str> = block["limits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let mut command = Command::new(BIN);
        command.args(["check", "--config"]).arg(&file);
        command.env(
            block["token_env"].as_str().unwrap(),
            "shipped-block-test-key",
        );
        if let Some(signing) = block.get("signing") {
            command.env(
                signing["secret_env"].as_str().unwrap(),
                "shipped-block-test-secret",
            );
        }
        let out = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stdout}{stderr}", file.display());
        let planned = format!(
            "budget auto:{name} [{}] (the source's `limits`)",
            limits.join(", ")
        );
        assert!(
            stdout.contains(&planned),
            "{}: no {planned:?} in\n{stdout}",
            file.display()
        );
        assert!(
            !stdout.contains("warnings:"),
            "{}: {stdout}",
            file.display()
        );
        assert!(
            !stdout.contains("shipped-block-test"),
            "{}: a secret shown",
            file.display()
        );
    }
}

/// `check` given one config per exporter warns where two read the same token (two files
/// with one value, or one variable that is not set here), never printing it, and stays
/// quiet about a token read once.
#[test]
fn check_of_several_configs_warns_where_two_read_the_same_token() {
    let dir = tempfile::TempDir::new().unwrap();
    let block = |name: &str, secret: &str| {
        format!(
            "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"{name}\"\n\
             base_url = \"https://api.ultimate-proxy.com\"\n{secret}\n"
        )
    };
    let write = |file: &str, text: String| {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        path
    };
    write("north.token", format!("{TOKEN}\n"));
    write("south.token", format!("{TOKEN}\n"));
    write("east.token", "up_k_ANOTHERSECRET\n".to_string());
    let north = write(
        "north.toml",
        block("north", "token_file = \"north.token\"")
            + &block("spare", "token_env = \"SHARED_UNSET_TOKEN\""),
    );
    let south = write("south.toml", block("south", "token_file = \"south.token\""));
    let east = write(
        "east.toml",
        block("east", "token_file = \"east.token\"")
            + &block("again", "token_env = \"SHARED_UNSET_TOKEN\""),
    );
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&north)
        .arg("--config")
        .arg(&south)
        .arg("--config")
        .arg(&east)
        .env_remove("SHARED_UNSET_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    // Each file's own report, under its name.
    for file in [&north, &south, &east] {
        assert!(
            stdout.contains(&format!("== {}", file.display())),
            "{stdout}"
        );
    }
    let shared: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("read the same token"))
        .collect();
    assert_eq!(shared.len(), 2, "{stderr}");
    assert!(
        shared[0].contains("source \"north\"") && shared[0].contains("source \"south\""),
        "{stderr}"
    );
    assert!(
        shared[1].contains("source \"spare\"") && shared[1].contains("source \"again\""),
        "{stderr}"
    );
    assert!(!stderr.contains("source \"east\""), "{stderr}");
    assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));
}

#[tokio::test]
async fn run_takes_its_state_dir_from_systemd_and_warns_once_when_it_has_none() {
    let none = logs_of_run(&[], &[]).await;
    let warned: Vec<&str> = none
        .lines()
        .filter(|l| l.contains("no state directory"))
        .collect();
    assert_eq!(warned.len(), 1, "{none}");
    assert!(
        warned[0].contains("--state-dir") && warned[0].contains("StateDirectory="),
        "{none}"
    );

    let dir = tempfile::TempDir::new().unwrap();
    let first = dir.path().join("first");
    // systemd lists several directories with colons: the first is ours.
    let listed = format!(
        "{}:{}",
        first.display(),
        dir.path().join("second").display()
    );
    let systemd = logs_of_run(&[], &[("STATE_DIRECTORY", &listed)]).await;
    assert!(!systemd.contains("no state directory"), "{systemd}");
    assert!(
        first.join("mining-exporter-state.json").exists(),
        "{systemd}"
    );
    assert!(!dir.path().join("second").exists());
}

#[tokio::test]
async fn the_listen_flag_overrides_the_config_and_a_taken_port_says_how_to_fix_it() {
    let server = MockServer::start_async().await;
    mock_poll(&server, vec![worker("rig1", "online", 1.0)]).await;
    let (_dir, config, config_port) = served_config(&config_text(&server.base_url(), ""));
    let port = free_port();
    let child = KillOnDrop(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    assert!(std::net::TcpStream::connect(("127.0.0.1", config_port)).is_err());

    // The port the first one holds, asked of a second.
    let taken = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    drop(child);
    assert_eq!(taken.status.code(), Some(1));
    let err = String::from_utf8(taken.stderr).unwrap();
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && err.contains("\n  fix: another process holds this port"),
        "{err}"
    );
}

#[test]
fn check_reads_a_web_config_without_binding_its_port() {
    let (dir, config, _) = served_config(&config_text("http://127.0.0.1:9", ""));
    let web = dir.path().join("web.yml");
    // bcrypt of "secret", cost 4.
    let hash = bcrypt::hash("secret", 4).unwrap();
    let check_with = |text: &str| {
        std::fs::write(&web, text).unwrap();
        Command::new(BIN)
            .args(["check", "--config"])
            .arg(&config)
            .arg("--web.config.file")
            .arg(&web)
            .output()
            .unwrap()
    };
    let good = check_with(&format!("basic_auth_users:\n  prom: {hash}\n"));
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{good:?}");
    assert!(stdout.contains("TLS off, basic auth on"), "{stdout}");

    let bad = check_with("basic_auth_users:\n  prom: not-a-hash\n");
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("web.yml") && err.contains("fix:"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_prints_one_source_s_exposition_on_stdout_and_its_requests_on_stderr() {
    let server = MockServer::start_async().await;
    mock_poll(&server, vec![worker("rig1", "online", 7.0)]).await;
    let (_dir, config, _) = served_config(&config_text(&server.base_url(), ""));
    let out = Command::new(BIN)
        .args(["poll", "--source", "proxy", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        sample(&stdout, "mining_worker_up", &["worker=\"rig1\""]),
        Some(1.0),
        "{stdout}"
    );
    let requests: Vec<&str> = stderr.lines().filter(|l| l.starts_with("GET ")).collect();
    assert_eq!(requests.len(), 3, "{stderr}");
    assert!(
        requests[0].contains(&format!("{}/v1/overview -> HTTP 200", server.base_url())),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));

    server.reset_async().await;
    refuse_every_request(&server).await;
    let failed = Command::new(BIN)
        .args(["poll", "--source", "proxy", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8(failed.stderr).unwrap();
    assert!(
        stderr.contains("-> HTTP 401") && stderr.contains("the poll failed (auth)"),
        "{stderr}"
    );
}
