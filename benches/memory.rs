//! Memory of the exporter in its own process, against the simulators over loopback, beside a
//! Python `prometheus_client` exporter serving the same farm (README, Performance).
//!
//! ```sh
//! cargo bench --bench memory              # the table: 1k, 10k and 100k workers, ~8 minutes
//! cargo bench --bench memory -- --quick   # 1k workers, a few polls: seconds (.ci/run)
//! cargo bench --bench memory -- --soak    # 3 pools x 10k workers, 100 polls, 100 reloads
//! cargo bench --bench memory -- --sizes=10000,100000 --every-series-only
//! ```
//!
//! RSS is the process' VmRSS after the given poll, peak its VmHWM over the run. Another build
//! is measured the same way with `MINING_EXPORTER_BENCH_BIN=/path/to/mining-exporter`. The
//! Python peer runs from a virtual environment under `target/`, made on first use; where
//! Python or `prometheus_client` is missing its row says so and the rest goes on.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mining_exporter::demo::{
    LuxorOptions, LuxorSimulator, OurPoolOptions, OurPoolSimulator, UltimateProxyOptions,
    UltimateProxySimulator,
};

/// A field of `/proc/PID/FILE`, which the kernel writes in kB, in MiB.
fn proc_mib(pid: u32, file: &str, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// VmRSS and VmHWM of a process, in MiB.
fn process_mib(pid: u32) -> (f64, f64) {
    (
        proc_mib(pid, "status", "VmRSS:"),
        proc_mib(pid, "status", "VmHWM:"),
    )
}

/// Of a process' RSS now: anonymous memory (heap, stacks) and mapped files (the binary and
/// its libraries), in MiB.
fn rss_parts(pid: u32) -> (f64, f64) {
    let anonymous = proc_mib(pid, "smaps_rollup", "Anonymous:");
    (anonymous, proc_mib(pid, "smaps_rollup", "Rss:") - anonymous)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process the bench started, killed when dropped.
struct Measured {
    child: Child,
    port: u16,
    /// Where its `/metrics` says a poll finished: one sample a line, changing once a poll.
    poll_marker: &'static str,
    http: reqwest::Client,
}

impl Drop for Measured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Measured {
    /// `/metrics` as Prometheus asks for it (gzip), unpacked; empty while it does not answer.
    async fn scrape(&self) -> String {
        let Ok(answer) = self
            .http
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .header("accept-encoding", "gzip")
            .send()
            .await
        else {
            return String::new();
        };
        let gzipped = answer
            .headers()
            .get("content-encoding")
            .is_some_and(|v| v == "gzip");
        let body = answer.bytes().await.unwrap_or_default();
        let mut text = String::new();
        if gzipped {
            let _ = flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text);
        } else {
            text = String::from_utf8_lossy(&body).into_owned();
        }
        text
    }

    /// The marker lines of a page: they change together when every source has polled again.
    fn marks(page: &str, marker: &str) -> Vec<String> {
        page.lines()
            .filter(|l| l.starts_with(marker))
            .map(str::to_string)
            .collect()
    }

    /// Waits for `polls` more polls of every source (at most `limit`), calling `at_poll` with
    /// the poll's number and RSS after each.
    async fn watch_polls(&self, polls: u32, limit: Duration, mut at_poll: impl FnMut(u32, f64)) {
        let started = Instant::now();
        // The markers as of the poll counted last: a poll is counted when every one moved.
        let mut base: Vec<String> = Vec::new();
        let mut done = 0;
        while done < polls && started.elapsed() < limit {
            let marks = Self::marks(&self.scrape().await, self.poll_marker);
            if base.is_empty() {
                base = marks;
            } else if marks.len() == base.len() && base.iter().zip(&marks).all(|(a, b)| a != b) {
                done += 1;
                at_poll(done, process_mib(self.child.id()).0);
                base = marks;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_ready(&self, path: &str) -> bool {
        for _ in 0..1_200 {
            let ready = self
                .http
                .get(format!("http://127.0.0.1:{}{path}", self.port))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Series {
    All,
    Essential,
}

impl Series {
    fn as_str(self) -> &'static str {
        match self {
            Series::All => "all",
            Series::Essential => "essential",
        }
    }
}

/// What one run of a process showed.
struct Reading {
    after_first: f64,
    /// RSS after the second poll, the third, and so on.
    after: Vec<f64>,
    peak: f64,
    /// At the end: anonymous memory and mapped files.
    parts: (f64, f64),
}

impl Reading {
    /// RSS after the given poll, counting the first as 1.
    fn after(&self, poll: usize) -> f64 {
        self.after
            .get(poll.wrapping_sub(2))
            .copied()
            .unwrap_or(f64::NAN)
    }

    fn last(&self) -> f64 {
        self.after.last().copied().unwrap_or(f64::NAN)
    }
}

fn exporter_binary() -> String {
    std::env::var("MINING_EXPORTER_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_mining-exporter").to_string())
}

/// The exporter's process, started on `config` in `dir`, once its first poll is done.
async fn start_exporter(dir: &Path, config: String, port: u16) -> Measured {
    std::fs::write(dir.join("config.toml"), config).unwrap();
    let child = Command::new(exporter_binary())
        .args(["--log.level", "error", "run", "--config"])
        .arg(dir.join("config.toml"))
        .spawn()
        .unwrap();
    let measured = Measured {
        child,
        port,
        poll_marker: "mining_exporter_source_last_success_timestamp_seconds{",
        http: reqwest::Client::new(),
    };
    assert!(
        measured.wait_ready("/-/ready").await,
        "the exporter never became ready"
    );
    measured
}

fn bench_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mining-exporter-memory-{what}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn unlimited_ourpool(workers: usize) -> OurPoolSimulator {
    OurPoolSimulator::start(OurPoolOptions::unlimited(workers))
        .await
        .unwrap()
}

fn ourpool_block(sim: &OurPoolSimulator, name: &str, interval: u64, series: Series) -> String {
    format!(
        "[[sources]]\nkind = \"ourpool\"\nname = \"{name}\"\naccount = \"{}\"\nbase_url = \"{}\"\ntoken_file = \"{name}.token\"\ninterval = \"{interval}s\"\nbudget = \"unlimited\"\nworker_series = \"{}\"\n",
        sim.account(),
        sim.base_url(),
        series.as_str()
    )
}

fn config_head(port: u16) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[budgets.unlimited]\nlimits = [\"1000000/1s\"]\n"
    )
}

/// One OurPool source of `workers` in the exporter's process, for `polls` polls.
async fn exporter_run(workers: usize, series: Series, polls: u32, interval: u64) -> Reading {
    let sim = unlimited_ourpool(workers).await;
    let dir = bench_dir("exporter");
    std::fs::write(dir.join("bench.token"), &sim.token).unwrap();
    let port = free_port();
    let config = config_head(port) + &ourpool_block(&sim, "bench", interval, series);
    let exporter = start_exporter(&dir, config, port).await;
    let after_first = process_mib(exporter.child.id()).0;
    let mut after = Vec::new();
    let limit = Duration::from_secs(interval * u64::from(polls) * 4 + 120);
    exporter
        .watch_polls(polls, limit, |_, rss| after.push(rss))
        .await;
    let peak = process_mib(exporter.child.id()).1;
    let parts = rss_parts(exporter.child.id());
    assert_eq!(after.len(), polls as usize, "the exporter stopped polling");
    drop(exporter);
    let _ = std::fs::remove_dir_all(&dir);
    Reading {
        after_first,
        after,
        peak,
        parts,
    }
}

/// A virtual environment with `prometheus_client`, made once under `target/`; None (and
/// why) where Python or the package cannot be had.
fn peer_python() -> Result<PathBuf, String> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-peer-venv");
    let python = venv.join("bin/python");
    let has_client = |python: &Path| {
        Command::new(python)
            .args(["-c", "import prometheus_client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if python.exists() && has_client(&python) {
        return Ok(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| format!("python3 is missing ({e})"))?;
    if !made.success() {
        return Err("python3 -m venv failed".to_string());
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "prometheus_client"])
        .status()
        .map_err(|e| format!("pip is missing ({e})"))?;
    if !installed.success() || !has_client(&python) {
        return Err("pip could not install prometheus_client".to_string());
    }
    Ok(python)
}

/// The same farm through the Python peer (two series a worker), for `polls` polls.
async fn peer_run(
    python: &Path,
    workers: usize,
    polls: u32,
    interval: u64,
) -> Result<Reading, String> {
    let sim = unlimited_ourpool(workers).await;
    let port = free_port();
    let url = format!(
        "{}/api/v1/accounts/{}/btc/miner/workers?token={}",
        sim.base_url(),
        sim.account(),
        sim.token
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer/ourpool_peer.py");
    let child = Command::new(python)
        .arg(script)
        .args([url, port.to_string(), interval.to_string()])
        .spawn()
        .map_err(|e| format!("the peer did not start: {e}"))?;
    let peer = Measured {
        child,
        port,
        poll_marker: "peer_polls_total ",
        http: reqwest::Client::new(),
    };
    if !peer.wait_ready("/metrics").await {
        return Err("the peer never answered".to_string());
    }
    // Its first poll is done once its page lists a worker.
    let started = Instant::now();
    while !peer.scrape().await.contains("ourpool_worker_up{") {
        if started.elapsed() > Duration::from_secs(120) {
            return Err("the peer never finished a poll".to_string());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after_first = process_mib(peer.child.id()).0;
    let mut after = Vec::new();
    let limit = Duration::from_secs(interval * u64::from(polls) * 4 + 120);
    peer.watch_polls(polls, limit, |_, rss| after.push(rss))
        .await;
    let peak = process_mib(peer.child.id()).1;
    Ok(Reading {
        after_first,
        after,
        peak,
        parts: rss_parts(peer.child.id()),
    })
}

/// MiB to one decimal; a dash where the run had no such poll (the quick mode's short runs).
fn mib(value: f64) -> String {
    if value.is_nan() {
        "-".to_string()
    } else {
        format!("{value:.1}")
    }
}

fn row(what: &str, workers: usize, reading: &Reading) {
    println!(
        "{what:<32} {workers:>7} workers: RSS {:>6} MiB after the first poll, {:>6} after the 10th, {:>6} after the last ({}), peak {:>6}; at the end {} anonymous, {} files",
        mib(reading.after_first),
        mib(reading.after(10)),
        mib(reading.last()),
        reading.after.len() + 1,
        mib(reading.peak),
        mib(reading.parts.0),
        mib(reading.parts.1)
    );
}

/// The table: every size with every series and with the essential two, and the peer (unless
/// `every_series_only`).
async fn table(sizes: &[usize], polls: u32, interval: u64, every_series_only: bool) {
    if every_series_only {
        for &workers in sizes {
            let all = exporter_run(workers, Series::All, polls, interval).await;
            row("exporter, every series", workers, &all);
        }
        return;
    }
    let python = peer_python();
    if let Err(why) = &python {
        // In CI the peer's row is part of what the run proves.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the Python peer is needed under CI=true: {why}"
        );
        println!("Python peer skipped: {why}");
    }
    for &workers in sizes {
        let all = exporter_run(workers, Series::All, polls, interval).await;
        row("exporter, every series", workers, &all);
        let essential = exporter_run(workers, Series::Essential, polls, interval).await;
        row("exporter, essential series", workers, &essential);
        if let Ok(python) = &python {
            match peer_run(python, workers, polls, interval).await {
                Ok(peer) => {
                    row("python prometheus_client peer", workers, &peer);
                    println!(
                        "{:<32} {workers:>7} workers: essential / peer = {:.2} (steady), {:.2} (peak)",
                        "",
                        essential.last() / peer.last(),
                        essential.peak / peer.peak
                    );
                }
                Err(why) => {
                    assert!(
                        std::env::var("CI").as_deref() != Ok("true"),
                        "the Python peer failed under CI=true: {why}"
                    );
                    println!("Python peer, {workers} workers: {why}");
                }
            }
        }
    }
}

/// Three pools of 10,000 workers each, polled every 10 s: RSS every 10 polls, then 100
/// reloads (SIGHUP) of the unchanged config with RSS every 10.
async fn soak(workers: usize, polls: u32, interval: u64, reloads: u32) {
    let proxy = UltimateProxySimulator::start(UltimateProxyOptions::unlimited(workers))
        .await
        .unwrap();
    let ourpool = unlimited_ourpool(workers).await;
    let luxor = LuxorSimulator::start(LuxorOptions::unlimited(workers))
        .await
        .unwrap();
    let dir = bench_dir("soak");
    for (name, token) in [
        ("proxy", &proxy.token),
        ("ourpool", &ourpool.token),
        ("luxor", &luxor.token),
    ] {
        std::fs::write(dir.join(format!("{name}.token")), token).unwrap();
    }
    let port = free_port();
    let config = format!(
        "{}{}[[sources]]\nkind = \"ultimate_proxy\"\nname = \"proxy\"\nbase_url = \"{}\"\ntoken_file = \"proxy.token\"\ninterval = \"{interval}s\"\nbudget = \"unlimited\"\n[[sources]]\nkind = \"luxor\"\nname = \"luxor\"\nbase_url = \"{}\"\ntoken_file = \"luxor.token\"\ninterval = \"{interval}s\"\nbudget = \"unlimited\"\nsubaccounts = [\"main\"]\n",
        config_head(port),
        ourpool_block(&ourpool, "ourpool", interval, Series::All),
        proxy.base_url(),
        luxor.base_url(),
    );
    let exporter = start_exporter(&dir, config, port).await;
    println!(
        "soak: 3 sources x {workers} workers, every {interval} s; RSS {:.1} MiB after the first poll",
        process_mib(exporter.child.id()).0
    );
    let limit = Duration::from_secs(interval * u64::from(polls) * 3 + 300);
    let mut by_ten = Vec::new();
    exporter
        .watch_polls(polls, limit, |poll, rss| {
            // Counting the first poll (before the watch) as 1.
            if (poll + 1) % 10 == 0 {
                println!("  after poll {:>3}: RSS {rss:.1} MiB", poll + 1);
                by_ten.push(rss);
            }
        })
        .await;
    let pid = exporter.child.id();
    let before_reloads = process_mib(pid).0;
    for reload in 1..=reloads {
        let _ = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if reload % 10 == 0 {
            println!(
                "  after reload {reload:>3}: RSS {:.1} MiB",
                process_mib(pid).0
            );
        }
    }
    let page = exporter.scrape().await;
    let reloaded = page
        .lines()
        .find(|l| l.starts_with("mining_exporter_config_last_reload_successful"))
        .unwrap_or("(no reload status on the page)");
    let (after_reloads, peak) = process_mib(pid);
    let (first, last) = (
        by_ten.first().copied().unwrap_or(f64::NAN),
        by_ten.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "soak: poll 10 -> {}: {:+.1} % ; {reloads} reloads: {before_reloads:.1} -> {after_reloads:.1} MiB ({:+.1} %); peak {peak:.1} MiB; {reloaded}",
        by_ten.len() * 10,
        100.0 * (last - first) / first,
        100.0 * (after_reloads - before_reloads) / before_reloads
    );
    drop(exporter);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    mining_exporter::client::install_crypto_provider();
    let args: Vec<String> = std::env::args().collect();
    let mode = |flag: &str| args.iter().any(|a| a == flag);
    // --sizes=1000,10000 measures only those farms; --every-series-only skips the essential
    // rows and the peer (for comparing builds or allocator settings quickly).
    let sizes: Vec<usize> = args
        .iter()
        .find_map(|a| a.strip_prefix("--sizes="))
        .map(|list| list.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let every_series_only = mode("--every-series-only");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        if mode("--quick") {
            // Small and short, so .ci/run proves the harness and the peer still work.
            table(&[1_000], 3, 1, false).await;
            soak(500, 19, 1, 10).await;
        } else if mode("--soak") {
            soak(10_000, 99, 10, 100).await;
        } else {
            table(&sizes, 11, 3, every_series_only).await;
        }
    });
}
