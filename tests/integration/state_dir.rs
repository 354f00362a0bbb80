//! The state directory beside a running exporter: `doctor` and `poll` write their sends into
//! the file the exporter keeps writing, and none is lost; a one-source command keeps the
//! other sources' costs; a budget renamed by reordering its token's sources is found again;
//! the file is synced before it replaces the old one, and its directory after.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mining_exporter::clock::WallClock;
use mining_exporter::config::{Config, SourceConfig};
use mining_exporter::demo::{
    OurPoolOptions, OurPoolSimulator, UltimateProxyOptions, UltimateProxySimulator, config_of,
    demo_proxy, demo_source,
};
use mining_exporter::doctor::{self, DoctorOptions};
use mining_exporter::sources::ourpool::OurPoolConfig;
use mining_exporter::{BudgetsAtStart, Exporter, ExporterOptions};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::common::{BIN, run_tool};

const FILE: &str = "mining-exporter-state.json";

fn saved(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(FILE)).unwrap()).unwrap()
}

/// Every send the file holds from `since_ms` (Unix ms) on, over every budget and writer.
/// (A first start also writes the sends it assumes the last run made, dated before it.)
fn sends_in_file(dir: &Path, since_ms: u64) -> u64 {
    let saved = saved(dir);
    saved["budgets"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|b| b["writers"].as_object().unwrap().values())
        .flat_map(|w| w["sent"].as_array().unwrap().iter())
        .filter(|entry| entry[0].as_u64().unwrap() >= since_ms)
        .map(|entry| entry[1].as_u64().unwrap())
        .sum()
}

fn unix_ms() -> u64 {
    WallClock::System
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn exporter_on(config: Config, dir: &Path, clock: WallClock) -> Exporter {
    Exporter::with_options(
        config,
        ExporterOptions {
            clock,
            budgets_at_start: BudgetsAtStart::StateDir(dir.to_path_buf()),
            ..ExporterOptions::default()
        },
    )
    .unwrap()
}

/// Serves `exporter` for `runs_for`, then stops it as SIGTERM would.
async fn serve_for(exporter: Exporter, runs_for: Duration) {
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let serving = tokio::spawn(exporter.serve(listener, stop.clone()));
    tokio::time::sleep(runs_for).await;
    stop.cancel();
    serving.await.unwrap().unwrap();
}

/// A proxy account on a roomy key, and its config: one source polled every `every`.
async fn roomy_proxy(every: Duration) -> (UltimateProxySimulator, Config) {
    let proxy = UltimateProxySimulator::start(UltimateProxyOptions {
        limit_per_minute: 600,
        outages: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let (source, mut budget) =
        demo_source(demo_proxy(), "proxy", proxy.base_url(), &proxy.token, every);
    budget.limits = vec!["600/1m".parse().unwrap()];
    let config = config_of("127.0.0.1:0".parse().unwrap(), vec![(source, budget)]);
    (proxy, config)
}

/// `doctor` and `poll` beside a running exporter on one state directory: every request the
/// pool saw is in the file afterwards, whoever wrote it last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_and_poll_beside_a_running_exporter_lose_no_send() {
    let (proxy, config) = roomy_proxy(Duration::from_secs(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let started = unix_ms();
    let exporter = exporter_on(config.clone(), dir.path(), WallClock::System);
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let serving = tokio::spawn(exporter.serve(listener, stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    for _ in 0..2 {
        let options = DoctorOptions {
            sources: Vec::new(),
            state_dir: Some(dir.path().to_path_buf()),
        };
        let report = doctor::run(config.clone(), &options).await.unwrap();
        assert!(report.can_poll);
        let polled = doctor::poll_one(config.clone(), "proxy", Some(dir.path().to_path_buf()))
            .await
            .unwrap();
        assert!(polled.error.is_none());
        // The exporter writes its part at least once between them.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    stop.cancel();
    serving.await.unwrap().unwrap();
    let at_pool = proxy.requests().0;
    let in_file = sends_in_file(dir.path(), started);
    println!("beside a running exporter: {at_pool} requests at the pool, {in_file} in the file");
    assert!(
        at_pool > 12,
        "the exporter, two doctors and two polls: {at_pool}"
    );
    assert_eq!(in_file, at_pool, "{}", saved(dir.path()));
}

/// `poll --source X` learns X's cost alone: the other sources' stay in the file.
#[tokio::test(start_paused = true)]
async fn a_one_source_poll_keeps_the_other_sources_costs() {
    let (proxy, config) = roomy_proxy(Duration::from_secs(60)).await;
    let ourpool = OurPoolSimulator::start(OurPoolOptions {
        lively: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut config = config;
    let (source, budget): (SourceConfig, _) = demo_source(
        OurPoolConfig::settings(&ourpool.account()),
        "ourpool",
        ourpool.base_url(),
        &ourpool.token,
        Duration::from_secs(60),
    );
    config.sources.push(source);
    config.budgets.insert(budget.name.clone(), budget);
    let dir = tempfile::tempdir().unwrap();
    let exporter = exporter_on(config.clone(), dir.path(), WallClock::Tokio);
    serve_for(exporter, Duration::from_secs(90)).await;
    let costs = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = saved(dir)["costs"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    };
    assert_eq!(costs(dir.path()), ["ourpool", "proxy"]);
    drop(proxy);
    let polled = doctor::poll_one(config.clone(), "ourpool", Some(dir.path().to_path_buf()))
        .await
        .unwrap();
    assert!(polled.error.is_none());
    assert_eq!(
        costs(dir.path()),
        ["ourpool", "proxy"],
        "{}",
        saved(dir.path())
    );
    doctor::run(
        config,
        &DoctorOptions {
            sources: vec!["ourpool".into()],
            state_dir: Some(dir.path().to_path_buf()),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        costs(dir.path()),
        ["ourpool", "proxy"],
        "{}",
        saved(dir.path())
    );
}

/// Two sources on one key share `auto:<first>`: reordered, the budget is `auto:<other>`,
/// and a restart still finds its sends by the token.
#[tokio::test(start_paused = true)]
async fn reordering_a_token_s_sources_keeps_its_budget_across_a_restart() {
    let proxy = UltimateProxySimulator::start(UltimateProxyOptions {
        workers: 2_950,
        limit_per_minute: 10,
        outages: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let config = |names: [&str; 2]| {
        let sources = names
            .iter()
            .map(|name| {
                let (mut source, mut budget) = demo_source(
                    demo_proxy(),
                    name,
                    proxy.base_url(),
                    &proxy.token,
                    Duration::from_secs(60),
                );
                budget.name = format!("auto:{}", names[0]);
                budget.limits = vec!["10/1m".parse().unwrap()];
                source.budget = budget.name.clone();
                (source, budget)
            })
            .collect();
        config_of("127.0.0.1:0".parse().unwrap(), sources)
    };
    let dir = tempfile::tempdir().unwrap();
    let first = exporter_on(config(["a", "b"]), dir.path(), WallClock::Tokio);
    // Stopped in the middle of a poll of 33 requests that the 10-a-minute key spreads out.
    serve_for(first, Duration::from_secs(100)).await;
    let second = exporter_on(config(["b", "a"]), dir.path(), WallClock::Tokio);
    let left = second.budget("auto:b").unwrap().remaining();
    println!("reordered: auto:b has {left} of 10 left at the restart");
    assert_eq!(left, 0, "the window the first run filled is full");
}

/// The file is synced before it is renamed over the old one, and its directory after: a
/// crash leaves the old file or the new one, never an empty one.
#[test]
fn the_state_file_is_synced_before_its_rename_and_the_directory_after() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    // A source that cannot be reached still spends its budget's first request.
    std::fs::write(dir.path().join("token"), "up_k_strace0123456789").unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"proxy\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_file = \"token\"\ntier = \"vip\"\nmax_retries = 0\n",
    )
    .unwrap();
    let trace = dir.path().join("trace");
    let Some((_, printed)) = run_tool(
        Command::new("strace")
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=fsync,fdatasync,rename,renameat,renameat2,openat",
                "-o",
            ])
            .arg(&trace)
            .arg(BIN)
            .args(["poll", "--source", "proxy", "--config"])
            .arg(&config)
            .arg("--state-dir")
            .arg(&state),
        "strace",
    ) else {
        return;
    };
    let trace = std::fs::read_to_string(&trace).unwrap_or_else(|e| panic!("{e}: {printed}"));
    let lines: Vec<&str> = trace.lines().collect();
    // The descriptor each path was opened on, as the trace shows it.
    let fd_of = |path_part: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains("openat(") && l.contains(path_part))
            .filter_map(|l| l.rsplit("= ").next())
            .map(|fd| fd.trim().to_string())
            .collect()
    };
    let position = |predicate: &dyn Fn(&str) -> bool| lines.iter().position(|l| predicate(l));
    let partial_fds = fd_of(".partial");
    let rename = position(&|l| l.contains("rename") && l.contains(".partial") && l.contains(FILE))
        .unwrap_or_else(|| panic!("no rename of the partial file:\n{trace}"));
    let synced_before = lines[..rename].iter().any(|l| {
        (l.contains("fsync(") || l.contains("fdatasync("))
            && partial_fds
                .iter()
                .any(|fd| l.contains(&format!("sync({fd})")))
    });
    assert!(
        synced_before,
        "the partial file is not synced before its rename:\n{trace}"
    );
    let state_text = state.display().to_string();
    let dir_fds: Vec<String> = lines
        .iter()
        .filter(|l| l.contains("openat(") && l.contains(&format!("\"{state_text}\"")))
        .filter_map(|l| l.rsplit("= ").next())
        .map(|fd| fd.trim().to_string())
        .collect();
    let synced_after = lines[rename..].iter().any(|l| {
        l.contains("fsync(") && dir_fds.iter().any(|fd| l.contains(&format!("fsync({fd})")))
    });
    assert!(
        synced_after,
        "the directory is not synced after the rename:\n{trace}"
    );
}
