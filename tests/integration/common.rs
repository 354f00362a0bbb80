//! Shared helpers: configs pointing at a mock server, the rendered page, sample lookup.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use httpmock::prelude::*;
use mining_exporter::Exporter;
use mining_exporter::config::{Config, SecretMode};
use mining_exporter::scheduler::Outcome;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const TOKEN: &str = "up_k_TESTSECRET0123456789abcdef";

/// An exporter with one Ultimate Proxy source at `base_url`. `extra` is appended to the
/// source block (e.g. `max_retries = 0`). The token sits in a file in the returned dir.
pub fn exporter(base_url: &str, extra: &str) -> (Exporter, TempDir) {
    let dir = TempDir::new().unwrap();
    let config = config(dir.path(), base_url, extra);
    (Exporter::new(config).expect("valid test config"), dir)
}

/// Like `exporter`, with `retry_backoff` instead of the tests' 10 ms.
pub fn exporter_with_backoff(base_url: &str, backoff: &str, extra: &str) -> (Exporter, TempDir) {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let text = config_text(base_url, extra).replace(
        "retry_backoff = \"10ms\"",
        &format!("retry_backoff = \"{backoff}\""),
    );
    let config = Config::parse(
        &text,
        "test.toml",
        dir.path(),
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .expect("valid test config");
    (Exporter::new(config).expect("valid test config"), dir)
}

pub fn config(dir: &Path, base_url: &str, extra: &str) -> Config {
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    let text = config_text(base_url, extra);
    Config::parse(
        &text,
        "test.toml",
        dir,
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .expect("valid test config")
}

pub fn config_text(base_url: &str, extra: &str) -> String {
    format!(
        r#"
[[sources]]
kind = "ultimate_proxy"
name = "proxy"
account = "acct"
base_url = "{base_url}"
token_file = "token"
tier = "vip"
retry_backoff = "10ms"
{extra}
"#
    )
}

/// Polls the test source once and fails the test unless the poll succeeded.
pub async fn poll_ok(exporter: &Exporter) {
    let outcome = exporter.poll_once("proxy").await.unwrap();
    assert!(matches!(outcome, Outcome::Success { .. }), "{outcome:?}");
}

/// Polls the test source once and fails the test unless the poll failed with `kind`.
pub async fn poll_fails(exporter: &Exporter, kind: &str) {
    let outcome = exporter.poll_once("proxy").await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Failure {
            kind: static_kind(kind)
        }
    );
}

fn static_kind(kind: &str) -> &'static str {
    mining_exporter::metrics::POLL_ERROR_KINDS
        .iter()
        .find(|k| **k == kind)
        .unwrap_or_else(|| panic!("{kind} is not a poll error kind"))
}

pub fn text(exporter: &Exporter) -> String {
    String::from_utf8(exporter.exposition().current().text()).unwrap()
}

/// The value of the first sample of `name` whose label text contains every one of `labels`.
pub fn sample(page: &str, name: &str, labels: &[&str]) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|s| l.contains(s)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub fn worker(name: &str, status: &str, hashrate: f64) -> Value {
    json!({"_id": format!("id-{name}"), "name": name, "algorithm": "randomx",
           "status": status, "hashrate": hashrate})
}

/// Mocks the three endpoints of one successful poll: overview, one page of workers, series.
pub async fn mock_poll(server: &MockServer, workers: Vec<Value>) -> Vec<httpmock::Mock<'_>> {
    let overview = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/overview")
                .header("x-api-key", TOKEN);
            then.status(200).json_body(
                json!({"hashrate": {"current": 1000.0, "avg_1h": 990.0, "avg_24h": 980.0}}),
            );
        })
        .await;
    let count = workers.len();
    let page = server
        .mock_async(move |when, then| {
            when.method(GET)
                .path("/v1/workers")
                .header("x-api-key", TOKEN);
            then.status(200).json_body(json!({
                "data": workers,
                "pagination": {"page": 1, "limit": 100, "total": count, "total_pages": 1}
            }));
        })
        .await;
    let series = mock_series(server).await;
    vec![overview, page, series]
}

pub async fn mock_series(server: &MockServer) -> httpmock::Mock<'_> {
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/v1/workers/hashrate")
                .query_param("timeRange", "1h")
                .header("x-api-key", TOKEN);
            then.status(200)
                .json_body(json!({"hours": 1, "granularity": 60, "data": [],
                                  "stats": {"avg_hashrate": 995.0, "peak_hashrate": 1100.0}}));
        })
        .await
}

pub const BIN: &str = env!("CARGO_BIN_EXE_mining-exporter");

/// A port that was free a moment ago, for child processes that must be told where to listen.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn http() -> reqwest::Client {
    mining_exporter::client::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Waits (at most 15 s) until `base/-/ready` answers 200.
pub async fn wait_ready(base: &str) {
    let client = http();
    for _ in 0..150 {
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{base} did not become ready within 15 s");
}

pub fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Log lines written while a test runs, for asserting on what the exporter said.
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures this thread's log lines (a `#[tokio::test]` runs its tasks on it) until the
/// guard is dropped.
pub fn capture_logs() -> (Captured, LogCapture) {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // tracing caches whether a log line is wanted once per line, process-wide. While only one
    // subscriber exists it asks the thread that first reaches the line, so a test without a
    // subscriber that logs first would silence that line here too (tokio-rs/tracing#3611).
    // A second, silent subscriber kept alive makes tracing ask all live ones instead.
    let anchor = tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .finish(),
    );
    let default = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    (
        logs,
        LogCapture {
            _default: default,
            _anchor: anchor,
        },
    )
}

/// Keeps a `capture_logs` capture going; dropping it ends the capture.
pub struct LogCapture {
    _default: tracing::subscriber::DefaultGuard,
    _anchor: tracing::Dispatch,
}

/// A config file in a new folder that also holds the `token` file (TOKEN), serving on a free
/// port: the folder (keep it alive), the file and the port.
pub fn served_config(sources: &str) -> (TempDir, std::path::PathBuf, u16) {
    let dir = TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let port = free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n{sources}"),
    )
    .unwrap();
    (dir, config, port)
}

/// Makes `server` refuse every request as a pool refuses a wrong key.
pub async fn refuse_every_request(server: &MockServer) {
    server
        .mock_async(|when, then| {
            when.any_request();
            then.status(401)
                .json_body(json!({"error": "Invalid API key"}));
        })
        .await;
}

/// Starts a command from a Debian package (`package`, for the message). A missing tool fails
/// the test with the apt command that installs it; `MINING_EXPORTER_SKIP_MISSING_TOOLS=1`
/// (named in the README, refused under CI=true) makes it a skip that prints why, and None.
pub fn spawn_tool(
    command: &mut std::process::Command,
    package: &str,
) -> Option<std::process::Child> {
    match command.spawn() {
        Ok(child) => Some(child),
        Err(e) => {
            let program = command.get_program().to_string_lossy().into_owned();
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
            let opted_out =
                std::env::var("MINING_EXPORTER_SKIP_MISSING_TOOLS").is_ok_and(|v| v == "1");
            if in_ci || !opted_out {
                panic!(
                    "{program} cannot run ({e}): install it with \
                     `apt-get install -y {package}`, or skip the tests that need it with \
                     MINING_EXPORTER_SKIP_MISSING_TOOLS=1 (not under CI=true)"
                );
            }
            eprintln!("skipping: {program} not found ({e}); apt-get install -y {package}");
            None
        }
    }
}

/// Runs a command from a Debian package to the end: its exit status and everything it
/// printed. None when it is not installed (see `spawn_tool`).
pub fn run_tool(
    command: &mut std::process::Command,
    package: &str,
) -> Option<(std::process::ExitStatus, String)> {
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = spawn_tool(command, package)?.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status, printed))
}

/// Every key a `[[sources]]` block takes.
pub const SOURCE_KEYS: &[&str] = &[
    "kind",
    "name",
    "account",
    "base_url",
    "token_env",
    "token_file",
    "interval",
    "schedule",
    "tier",
    "budget",
    "timeout",
    "max_retries",
    "retry_backoff",
    "max_response_bytes",
    "max_poll_bytes",
    "currency",
    "subaccounts",
    "site_id",
    "worker_series",
    "max_workers",
];

/// The text of `base/metrics`.
pub async fn scrape(base: &str) -> String {
    http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A child process killed (and reaped) when dropped, whatever the test's outcome.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Debian's `prometheus` on a free loopback port with `config`, its TSDB in `tsdb`,
/// and `extra` flags: the process (killed when dropped) and its base URL. None when it is
/// not installed (see `spawn_tool`).
pub fn start_prometheus(
    config: &Path,
    tsdb: &Path,
    extra: &[&str],
) -> Option<(KillOnDrop, String)> {
    let port = free_port();
    let child = spawn_tool(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .args(extra)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
        "prometheus",
    )?;
    Some((KillOnDrop(child), format!("http://127.0.0.1:{port}")))
}

/// A `/api/v1/query` answer's result, None while the store is not answering.
pub async fn query(base: &str, expr: &str) -> Option<Vec<Value>> {
    query_at(base, expr, None).await
}

/// `query` evaluated at `time` (Unix seconds) rather than now.
pub async fn query_at(base: &str, expr: &str, time: Option<f64>) -> Option<Vec<Value>> {
    let mut params = vec![("query", expr.to_string())];
    params.extend(time.map(|t| ("time", format!("{t:.3}"))));
    let response = http()
        .get(format!("{base}/api/v1/query"))
        .query(&params)
        .send()
        .await
        .ok()?;
    let body: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    assert_ne!(body["status"], "error", "{expr}: {body}");
    body["data"]["result"].as_array().cloned()
}

/// Waits (at most `limit`) until `expr` returns at least one series.
pub async fn wait_for_data(base: &str, expr: &str, limit: Duration) -> Vec<Value> {
    let start = Instant::now();
    loop {
        if let Some(result) = query(base, expr).await
            && !result.is_empty()
        {
            return result;
        }
        assert!(
            start.elapsed() < limit,
            "{base}: no data for {expr} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A JSON answer of `base` at `path`.
pub async fn get_json(base: &str, path: &str) -> Value {
    let bytes = http()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Every file under `dir`, relative to it, in order.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(at) = pending.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}
