//! `backfill`: a month of the simulators' history written as OpenMetrics, built into blocks
//! by a real promtool and read back by a real Prometheus exactly at the simulators'
//! timestamps; `--until-live` against that Prometheus scraping the live exporter; resuming
//! an interrupted run; and the budgets beside a running exporter on a 10-a-minute key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use mining_exporter::backfill::calendar::When;
use mining_exporter::backfill::{self, BackfillError, BackfillOptions, Summary, calendar};
use mining_exporter::budget::Budget;
use mining_exporter::client::{Connection, Upstream};
use mining_exporter::clock::WallClock;
use mining_exporter::config::{BudgetConfig, Config, SourceConfig};
use mining_exporter::demo::history;
use mining_exporter::demo::{
    LuxorOptions, LuxorSimulator, OurPoolOptions, OurPoolSimulator, UltimateProxyOptions,
    UltimateProxySimulator, config_of, demo_luxor, demo_proxy, demo_source,
};
use mining_exporter::sources::ourpool::OurPoolConfig;
use mining_exporter::telemetry::Telemetry;
use mining_exporter::{BudgetsAtStart, Exporter, ExporterOptions};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::common::{KillOnDrop, http, run_tool, start_prometheus};
use crate::rate_budgets::busiest;

const DAY: i64 = 86_400;
const MINUTE: Duration = Duration::from_secs(60);

struct Farm {
    luxor: LuxorSimulator,
    proxy: UltimateProxySimulator,
    ourpool: OurPoolSimulator,
}

/// Steady simulators with room for a fast backfill.
async fn farm() -> Farm {
    Farm {
        luxor: LuxorSimulator::start(LuxorOptions {
            lively: false,
            key_bucket: (1000, 1000.0),
            ..Default::default()
        })
        .await
        .unwrap(),
        proxy: UltimateProxySimulator::start(UltimateProxyOptions {
            limit_per_minute: 6000,
            outages: false,
            ..Default::default()
        })
        .await
        .unwrap(),
        ourpool: OurPoolSimulator::start(OurPoolOptions {
            lively: false,
            per_minute: 100_000,
            per_hour: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap(),
    }
}

fn fast(mut pair: (SourceConfig, BudgetConfig)) -> (SourceConfig, BudgetConfig) {
    pair.1.limits = vec!["6000/1m".parse().unwrap()];
    pair
}

fn farm_config(farm: &Farm, listen: std::net::SocketAddr) -> Config {
    let mut config = farm_config_every(farm, listen, Duration::from_secs(2));
    for budget in config.budgets.values_mut() {
        budget.limits = vec!["6000/1m".parse().unwrap()];
    }
    config
}

/// The farm's three sources polled every `every`, at the vendors' default limits.
fn farm_config_every(farm: &Farm, listen: std::net::SocketAddr, every: Duration) -> Config {
    config_of(
        listen,
        vec![
            demo_source(
                demo_luxor(),
                "luxor",
                farm.luxor.base_url(),
                &farm.luxor.token,
                every,
            ),
            demo_source(
                demo_proxy(),
                "proxy",
                farm.proxy.base_url(),
                &farm.proxy.token,
                every,
            ),
            demo_source(
                OurPoolConfig::settings(&farm.ourpool.account()),
                "ourpool",
                farm.ourpool.base_url(),
                &farm.ourpool.token,
                every,
            ),
        ],
    )
}

fn options(out: &Path, from: i64, to: Option<i64>) -> BackfillOptions {
    BackfillOptions {
        from: When::At(from),
        to: to.map(When::At),
        sources: Vec::new(),
        out: out.to_path_buf(),
        blocks: None,
        promtool: None,
        until_live: None,
        state_dir: None,
        dry_run: false,
        workers: false,
        labels: Vec::new(),
        bar: false,
        clock: WallClock::System,
    }
}

fn now() -> i64 {
    i64::try_from(WallClock::System.unix_seconds()).unwrap()
}

/// Every sample line of an OpenMetrics file: (series text, time, value).
fn samples(text: &str) -> Vec<(String, i64, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, rest) = l.rsplit_once("} ").unwrap();
            let (value, t) = rest.split_once(' ').unwrap();
            (
                format!("{series}}}"),
                t.parse().unwrap(),
                value.parse().unwrap(),
            )
        })
        .collect()
}

/// Checks the format's rules on `text`: seconds, each series strictly increasing, one
/// family at a time, `# EOF` last, no CRLF.
fn assert_well_formed(text: &str) {
    assert!(text.ends_with("# EOF\n"), "ends with # EOF");
    assert!(!text.contains('\r'));
    let mut families_seen: Vec<String> = Vec::new();
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let family = rest.split(' ').next().unwrap().to_string();
            assert!(!families_seen.contains(&family), "{family} twice");
            families_seen.push(family);
        }
    }
    for (series, t, _) in samples(text) {
        assert!(
            (1_000_000_000..10_000_000_000).contains(&t),
            "{t} is seconds"
        );
        if let Some(previous) = last.insert(series.clone(), t) {
            assert!(t > previous, "{series}: {t} after {previous}");
        }
    }
}

/// A Prometheus on loopback over `data`, scraping `target` (if any) every second.
struct Prometheus {
    _process: KillOnDrop,
    base: String,
}

impl Prometheus {
    fn start(data: &Path, target: Option<&str>) -> Option<Prometheus> {
        let config = data.join("prometheus.yml");
        let scrape = target.map_or(String::new(), |t| {
            format!(
                "scrape_configs:\n  - job_name: mining-exporter\n    static_configs:\n      - targets: ['{t}']\n"
            )
        });
        std::fs::write(&config, format!("global:\n  scrape_interval: 1s\n{scrape}")).unwrap();
        let (process, base) = start_prometheus(
            &config,
            &data.join("tsdb"),
            &["--storage.tsdb.retention.time=400d"],
        )?;
        Some(Prometheus {
            _process: process,
            base,
        })
    }

    async fn query(&self, expr: &str, at: Option<i64>) -> Option<Vec<Value>> {
        let mut query = vec![("query", expr.to_string())];
        if let Some(t) = at {
            query.push(("time", t.to_string()));
        }
        let response = http()
            .get(format!("{}/api/v1/query", self.base))
            .query(&query)
            .send()
            .await
            .ok()?;
        let body: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
        (body["status"] == "success").then(|| body["data"]["result"].as_array().cloned())?
    }

    /// Waits up to 30 s for `expr` to return something.
    async fn wait_for(&self, expr: &str) -> Vec<Value> {
        for _ in 0..60 {
            if let Some(result) = self.query(expr, None).await {
                if !result.is_empty() {
                    return result;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("Prometheus never answered {expr}");
    }

    /// The one value of `expr` at `t`.
    async fn value_at(&self, expr: &str, t: i64) -> f64 {
        let result = self.query(expr, Some(t)).await.unwrap();
        assert_eq!(result.len(), 1, "{expr} at {t}: {result:?}");
        result[0]["value"][1].as_str().unwrap().parse().unwrap()
    }
}

/// Copies every block folder in `blocks` into Prometheus' `tsdb` folder under `data`.
fn load_blocks(blocks: &Path, data: &Path) {
    let tsdb = data.join("tsdb");
    std::fs::create_dir_all(&tsdb).unwrap();
    for block in std::fs::read_dir(blocks).unwrap() {
        let block = block.unwrap().path();
        let target = tsdb.join(block.file_name().unwrap());
        std::fs::create_dir_all(&target).unwrap();
        for file in walk(&block) {
            let to = target.join(file.strip_prefix(&block).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&file, &to).unwrap();
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// promtool on PATH, or None after saying so (see spawn_tool).
fn promtool() -> Option<PathBuf> {
    run_tool(Command::new("promtool").arg("--version"), "prometheus")?;
    Some(PathBuf::from("promtool"))
}

/// The last complete 5-minute, hourly and daily ticks of each part of a month.
fn probe_times(now: i64) -> [i64; 3] {
    let five = (now / 300 - 12) * 300;
    let hour = calendar::last_complete_week(now) - 5 * 3600;
    let day = calendar::last_complete_month(now) - 3 * DAY;
    [five, hour, day]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_history_reads_back_exactly_and_ends_before_live_data() {
    let Some(promtool) = promtool() else { return };
    let farm = farm().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen = listener.local_addr().unwrap();
    let config = farm_config(&farm, listen);
    let dir = tempfile::tempdir().unwrap();
    let start = now();
    let from = (calendar::day_start(start) - 40 * DAY)
        .min(calendar::last_complete_month(start) - 10 * DAY);

    // A month and more from the simulators, into blocks.
    let out = dir.path().join("history.om");
    let mut first = options(&out, from, Some(start));
    first.blocks = Some(dir.path().join("blocks"));
    first.promtool = Some(promtool.clone());
    let summary = backfill::run(&config, &first, CancellationToken::new())
        .await
        .unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_well_formed(&text);
    for s in &summary.sources {
        let bad: u64 = s.skipped.counts().iter().map(|(_, n)| n).sum();
        assert_eq!(bad, 0, "{}: {:?}", s.name, s.skipped);
        assert!(s.points > 0, "{} brought nothing", s.name);
    }
    let blocks = summary.blocks.clone().unwrap();
    assert!(!blocks.made.is_empty());
    assert!(
        !blocks.output.to_lowercase().contains("warn") && !blocks.output.contains("level=error"),
        "promtool: {}",
        blocks.output
    );
    assert!(text.contains("# TYPE mining_account_paid counter\n"));
    assert!(text.contains("\nmining_account_paid_total{"));

    // A Prometheus on those blocks, queried at the simulators' timestamps.
    let data = tempfile::tempdir().unwrap();
    load_blocks(&blocks.dir, data.path());
    let Some(prometheus) = Prometheus::start(data.path(), None) else {
        return;
    };
    prometheus
        .wait_for("count(count_over_time(mining_workers[100d]))")
        .await;
    let (seed, nominal, workers) = farm.luxor.history_basis("hq").unwrap();
    let series = |name: &str, source: &str, extra: &str| {
        format!(
            "{name}{{source=\"{source}\",job=\"mining-exporter\",instance=\"{listen}\"{extra}}}"
        )
    };
    for t in probe_times(start) {
        let hashrate = series(
            "mining_account_hashrate_hashes_per_second",
            "luxor",
            ",account=\"hq\",algorithm=\"sha256\"",
        );
        assert_eq!(
            prometheus.value_at(&hashrate, t).await,
            history::hashrate(seed, "luxor/hq", nominal, t),
            "luxor hashrate at {t}"
        );
        let efficiency = series(
            "mining_account_efficiency_ratio",
            "luxor",
            ",account=\"hq\"",
        );
        assert_eq!(
            prometheus.value_at(&efficiency, t).await,
            history::efficiency(seed, "luxor/hq", t)
        );
        let active = series(
            "mining_workers",
            "luxor",
            ",account=\"hq\",state=\"active\"",
        );
        assert_eq!(
            prometheus.value_at(&active, t).await,
            history::active_workers(seed, "luxor/hq", workers, t) as f64
        );
    }
    let (seed, nominal) = farm.proxy.history_basis();
    let t = (start - 20 * DAY) / 14_400 * 14_400;
    let randomx = series(
        "mining_account_hashrate_hashes_per_second",
        "proxy",
        ",account=\"demo\",algorithm=\"randomx\"",
    );
    assert_eq!(
        prometheus.value_at(&randomx, t).await,
        history::hashrate(seed, "up/randomx", nominal["randomx"], t)
    );
    // Paid at an hour: all ever paid, less what was paid after it.
    let t = (start - 10 * DAY) / 3600 * 3600;
    let after: f64 = farm
        .ourpool
        .payouts()
        .iter()
        .filter(|(at, _)| *at > t)
        .map(|(_, v)| v)
        .sum();
    let paid = series("mining_account_paid_total", "ourpool", "");
    let got = prometheus.value_at(&paid, t).await;
    // totalPaid travels with eight decimals.
    let want = farm.ourpool.total_paid() - after;
    assert!((got - want).abs() < 1e-8, "paid at {t}: {got}, not {want}");
    drop(prometheus);

    // Live: the exporter polls, this Prometheus scrapes it, and a second backfill asks it
    // where live data begins.
    let exporter = Exporter::new(config.clone()).unwrap();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(exporter.serve(listener, shutdown.clone()));
    let prometheus = Prometheus::start(data.path(), Some(&listen.to_string())).unwrap();
    for source in ["luxor", "proxy", "ourpool"] {
        prometheus
            .wait_for(&format!(
                "mining_exporter_source_up{{source=\"{source}\"}} == 1"
            ))
            .await;
    }
    let out2 = dir.path().join("until-live.om");
    let mut second = options(&out2, from, None);
    second.until_live = Some(prometheus.base.clone());
    second.blocks = Some(dir.path().join("blocks2"));
    second.promtool = Some(promtool);
    let summary: Summary = backfill::run(&config, &second, CancellationToken::new())
        .await
        .unwrap();
    shutdown.cancel();
    serving.await.unwrap().unwrap();
    let text = std::fs::read_to_string(&out2).unwrap();
    assert_well_formed(&text);
    let mut first_live: BTreeMap<String, f64> = BTreeMap::new();
    for source in ["luxor", "proxy", "ourpool"] {
        let result = prometheus
            .query(
                &format!(
                    "min_over_time(timestamp(mining_exporter_source_up{{source=\"{source}\"}})[1h:1s])"
                ),
                None,
            )
            .await
            .unwrap();
        let edge: f64 = result[0]["value"][1].as_str().unwrap().parse().unwrap();
        first_live.insert(source.to_string(), edge);
        let span = summary
            .sources
            .iter()
            .find(|s| s.name == source)
            .unwrap()
            .span;
        assert!(
            (span.until as f64) <= edge.ceil(),
            "{source}: {span:?} vs {edge}"
        );
    }
    for (series_text, t, _) in samples(&text) {
        let source = series_text
            .split("source=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!((t as f64) < first_live[source], "{series_text} at {t}");
    }

    // Loaded beside the live data: no series has a history point after a live one.
    drop(prometheus);
    load_blocks(&dir.path().join("blocks2"), data.path());
    let prometheus = Prometheus::start(data.path(), None).unwrap();
    let history_times: BTreeMap<String, BTreeSet<i64>> =
        samples(&text)
            .into_iter()
            .fold(BTreeMap::new(), |mut m, (s, t, _)| {
                m.entry(s).or_default().insert(t);
                m
            });
    prometheus
        .wait_for("count(count_over_time(mining_workers[100d]))")
        .await;
    let mut met = 0;
    for name in [
        "mining_account_hashrate_hashes_per_second",
        "mining_workers",
        "mining_account_paid_total",
    ] {
        let result = prometheus.wait_for(&format!("{name}[3h]")).await;
        for series in result {
            let m = series["metric"].as_object().unwrap();
            let mut labels: Vec<String> = m
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            labels.sort();
            let times: Vec<f64> = series["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v[0].as_f64().unwrap())
                .collect();
            let history: Vec<f64> = history_times
                .iter()
                .find(|(s, _)| {
                    let mut l: Vec<String> = s
                        .trim_start_matches(name)
                        .trim_matches(|c| c == '{' || c == '}')
                        .split("\",")
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap();
                            format!("{k}=\"{}\"", v.trim_matches('"'))
                        })
                        .collect();
                    l.sort();
                    s.starts_with(&format!("{name}{{")) && l == labels
                })
                .map(|(_, ts)| ts.iter().map(|t| *t as f64).collect())
                .unwrap_or_default();
            let live: Vec<f64> = times
                .iter()
                .copied()
                .filter(|t| !history.contains(t))
                .collect();
            if let (Some(last_history), Some(first_live)) = (
                times
                    .iter()
                    .copied()
                    .filter(|t| history.contains(t))
                    .reduce(f64::max),
                live.iter().copied().reduce(f64::min),
            ) {
                met += 1;
                assert!(last_history < first_live, "{name} {labels:?}: a sawtooth");
            }
        }
    }
    assert!(met > 0, "history and live data met in no series");
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_backfill_goes_on_and_writes_every_point_once() {
    let luxor = LuxorSimulator::start(LuxorOptions {
        lively: false,
        ..Default::default()
    })
    .await
    .unwrap();
    // No retries: a Luxor poll of 3 requests and its retries would fill the 5/5s window, and
    // leave a backfill beside it nothing.
    let (mut source, budget) = demo_source(
        demo_luxor(),
        "luxor",
        luxor.base_url(),
        &luxor.token,
        MINUTE,
    );
    source.http.max_retries = 0;
    let config = config_of("127.0.0.1:9898".parse().unwrap(), vec![(source, budget)]);
    let dir = tempfile::tempdir().unwrap();
    let start = i64::try_from(WallClock::Tokio.unix_seconds()).unwrap();
    // History up to today's midnight: every tick before it is complete whenever a run asks.
    // Up to now instead, the 5-minute tick that completes while the runs go on would be in
    // one file and not the other, as the busy machine's time passes between them.
    let (from, to) = (
        calendar::day_start(start) - 30 * DAY,
        calendar::day_start(start),
    );
    let with_clock = |out: &Path| BackfillOptions {
        clock: WallClock::Tokio,
        ..options(out, from, Some(to))
    };

    // Uninterrupted, for comparison.
    let whole = dir.path().join("whole.om");
    let full = backfill::run(&config, &with_clock(&whole), CancellationToken::new())
        .await
        .unwrap();
    let full_requests: u64 = full.sources.iter().map(|s| s.requests).sum();

    // Stopped once the pool has answered six more requests.
    let out = dir.path().join("resumed.om");
    let stop = CancellationToken::new();
    let (seen, _) = luxor.requests();
    let watcher = {
        let stop = stop.clone();
        let luxor_requests = move || luxor.requests().0;
        tokio::spawn(async move {
            while luxor_requests() < seen + 6 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            stop.cancel();
            luxor_requests
        })
    };
    let stopped = backfill::run(&config, &with_clock(&out), stop).await;
    let Err(BackfillError::Interrupted { done, total, .. }) = stopped else {
        panic!("not interrupted: {stopped:?}");
    };
    assert!(done >= 4 && done < total, "{done} of {total}");
    assert!(!out.exists(), "nothing is written until every task is done");
    let requests = watcher.await.unwrap();
    let after_stop = requests();

    let resumed = backfill::run(&config, &with_clock(&out), CancellationToken::new())
        .await
        .unwrap();
    let second_requests = requests() - after_stop;
    assert_eq!(resumed.sources[0].resumed, done);
    assert!(
        second_requests < full_requests,
        "{second_requests} of {full_requests}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert_well_formed(&text);
    let whole_text = std::fs::read_to_string(&whole).unwrap();
    assert!(
        text == whole_text,
        "resumed and whole differ: {}",
        first_difference(&text, &whole_text)
    );
    let points = samples(&text);
    let unique: BTreeSet<(String, i64)> = points.iter().map(|(s, t, _)| (s.clone(), *t)).collect();
    assert_eq!(unique.len(), points.len(), "every point once");

    // Done: a third run fetches nothing and writes the same file.
    let before = requests();
    backfill::run(&config, &with_clock(&out), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(requests(), before);
    let again = std::fs::read_to_string(&out).unwrap();
    assert!(
        text == again,
        "the third run wrote another file: {}",
        first_difference(&text, &again)
    );
}

/// The first line where two files part, for a failure message that fits on a screen.
fn first_difference(a: &str, b: &str) -> String {
    let lines = a.lines().zip(b.lines()).enumerate();
    match lines.into_iter().find(|(_, (x, y))| x != y) {
        Some((i, (x, y))) => format!("line {}: {x:?} / {y:?}", i + 1),
        None => format!("{} lines / {} lines", a.lines().count(), b.lines().count()),
    }
}

/// An Ultimate Proxy account of 20 workers on a key of 10 a minute that notes when each
/// request arrives, and a config polling it every `every` with `retries`.
async fn proxy_on_a_10_a_minute_key(
    every: Duration,
    retries: usize,
) -> (UltimateProxySimulator, Config) {
    let proxy = UltimateProxySimulator::start(UltimateProxyOptions {
        workers: 20,
        limit_per_minute: 10,
        outages: false,
        ..Default::default()
    })
    .await
    .unwrap();
    proxy.record_request_times();
    let (mut source, mut budget) =
        demo_source(demo_proxy(), "proxy", proxy.base_url(), &proxy.token, every);
    budget.name = "proxy-key".into();
    budget.limits = vec!["10/1m".parse().unwrap()];
    source.budget = budget.name.clone();
    source.http.max_retries = retries;
    let config = config_of("127.0.0.1:0".parse().unwrap(), vec![(source, budget)]);
    (proxy, config)
}

#[tokio::test(start_paused = true)]
async fn beside_a_running_exporter_one_10_a_minute_key_sees_no_429() {
    let (proxy, config) = proxy_on_a_10_a_minute_key(2 * MINUTE, 1).await;
    let state = tempfile::tempdir().unwrap();

    let exporter = Exporter::with_options(
        config.clone(),
        ExporterOptions {
            clock: WallClock::Tokio,
            budgets_at_start: BudgetsAtStart::StateDir(state.path().to_path_buf()),
            ..ExporterOptions::default()
        },
    )
    .unwrap();
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let serving = tokio::spawn(exporter.serve(listener, stop.clone()));
    tokio::time::sleep(Duration::from_secs(90)).await;

    let dir = tempfile::tempdir().unwrap();
    let start = i64::try_from(WallClock::Tokio.unix_seconds()).unwrap();
    let mut options = options(&dir.path().join("proxy.om"), start - 30 * DAY, Some(start));
    options.clock = WallClock::Tokio;
    options.state_dir = Some(state.path().to_path_buf());
    options.workers = true;
    let summary = backfill::run(&config, &options, CancellationToken::new())
        .await
        .unwrap();
    let share = &summary.shares[0].windows[0];
    assert_eq!(
        (share.reserve, share.share),
        (5, 5),
        "one poll of 4 (overview, one page, two algorithms) and its retry in any minute kept for the exporter"
    );
    let made: u64 = summary.sources.iter().map(|s| s.requests).sum();
    assert!(made > 60, "20 workers' series and the account's: {made}");
    tokio::time::sleep(Duration::from_secs(120)).await;
    stop.cancel();
    serving.await.unwrap().unwrap();

    let (_, rate_limited) = proxy.requests();
    assert_eq!(rate_limited, 0, "no 429");
    let most = busiest(&proxy.request_times(), MINUTE);
    assert!(most <= 10, "{most} requests in one minute");
}

#[tokio::test]
async fn without_to_or_until_live_the_backfill_refuses_and_a_dry_run_writes_nothing() {
    let farm = farm().await;
    let config = farm_config(&farm, "127.0.0.1:9898".parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.om");
    let refused = backfill::run(
        &config,
        &options(&out, now() - DAY, None),
        CancellationToken::new(),
    )
    .await;
    let Err(BackfillError::Usage(message)) = refused else {
        panic!("{refused:?}")
    };
    assert!(
        message.contains("--until-live") && message.contains("sawtooth"),
        "{message}"
    );

    let mut dry = options(&out, now() - 30 * DAY, Some(now()));
    dry.dry_run = true;
    let (before, _) = farm.luxor.requests();
    let summary = backfill::run(&config, &dry, CancellationToken::new())
        .await
        .unwrap();
    let report = summary.report();
    assert!(
        report.contains("/v2/pool/hashrate-efficiency/{currency} every 5m"),
        "{report}"
    );
    assert!(report.contains("/v1/workers/hashrate every 4h"), "{report}");
    assert!(report.contains("requests in all; at the budgets' shares that takes about"));
    assert!(
        report.contains("warning: the history reaches 30.0 days back"),
        "{report}"
    );
    assert!(report.contains("dry run: nothing fetched"));
    // Only the subaccount list was asked for.
    assert_eq!(farm.luxor.requests().0, before + 1);
    assert!(!out.exists() && !dir.path().join("x.om.progress").exists());
}

/// A Luxor whose subaccount `a` has the history `points` (one page, or endless pages).
async fn luxor_mock(points: Value, endless: bool) -> httpmock::MockServer {
    use httpmock::prelude::*;
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v2/pool/subaccounts");
            then.status(200)
                .json_body(serde_json::json!({"subaccounts": [{"name": "a"}], "pagination": {"next_page_url": null}}));
        })
        .await;
    let next = if endless {
        serde_json::json!("/next")
    } else {
        Value::Null
    };
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v2/pool/hashrate-efficiency/BTC");
            then.status(200).json_body(serde_json::json!({
                "hashrate_efficiency": points, "pagination": {"next_page_url": next}}));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/v2/pool/active-workers/BTC");
            then.status(200).json_body(
                serde_json::json!({"active_workers": [], "pagination": {"next_page_url": null}}),
            );
        })
        .await;
    server
}

fn mock_config(server: &httpmock::MockServer) -> Config {
    config_of(
        "127.0.0.1:9898".parse().unwrap(),
        vec![fast(demo_source(
            demo_luxor(),
            "luxor",
            server.base_url(),
            "lxk.test",
            MINUTE,
        ))],
    )
}

#[tokio::test]
async fn history_that_disagrees_with_itself_is_skipped_and_counted_never_written() {
    let day = calendar::day_start(now()) - DAY;
    let at = |seconds: i64| calendar::iso_seconds(day + seconds);
    let points = serde_json::json!([
        {"date_time": at(0), "hashrate": "100", "efficiency": 0.99},
        {"date_time": at(600), "hashrate": "300", "efficiency": 0.99},
        {"date_time": at(300), "hashrate": "200", "efficiency": 0.99},
        {"date_time": at(600), "hashrate": "999", "efficiency": 0.99},
        {"date_time": at(1000), "hashrate": "400", "efficiency": 0.99},
        {"date_time": at(1200), "hashrate": "many", "efficiency": 0.99},
        {"date_time": "yesterday", "hashrate": "500"},
        {"date_time": at(1500), "hashrate": 500, "efficiency": 0.99},
    ]);
    let server = luxor_mock(points, false).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.om");
    let summary = backfill::run(
        &mock_config(&server),
        &options(&out, day, Some(day + DAY)),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let s = &summary.sources[0].skipped;
    assert_eq!(
        (s.repeated, s.out_of_order, s.off_tick, s.unreadable),
        (1, 1, 1, 2),
        "{s:?}"
    );
    assert_eq!(s.missing, 3, "0, 600 and 1500 came of six ticks");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_well_formed(&text);
    let hashrates: Vec<(i64, f64)> = samples(&text)
        .into_iter()
        .filter(|(series, _, _)| series.starts_with("mining_account_hashrate"))
        .map(|(_, t, v)| (t - day, v))
        .collect();
    assert_eq!(hashrates, [(0, 100.0), (600, 300.0), (1500, 500.0)]);
    assert!(
        summary
            .report()
            .contains("repeated 1, out_of_order 1, off_tick 1, unreadable 2")
    );
}

#[tokio::test]
async fn a_history_that_pages_forever_stops_at_the_page_cap() {
    let server = luxor_mock(serde_json::json!([]), true).await;
    let day = calendar::day_start(now()) - DAY;
    let dir = tempfile::tempdir().unwrap();
    let failed = backfill::run(
        &mock_config(&server),
        &options(&dir.path().join("p.om"), day, Some(day + DAY)),
        CancellationToken::new(),
    )
    .await;
    let Err(BackfillError::Upstream { error, .. }) = failed else {
        panic!("{failed:?}")
    };
    assert!(error.to_string().contains("past 100 pages"), "{error}");
}

/// The figures in the README and the closing note: a month of the demo farm's three pools
/// at the vendors' own limits (Luxor 5/5s, Ultimate Proxy VIP 60/1m, OurPool 100/1m and
/// 1000/1h), beside an exporter polling every minute. It takes about a minute of real time,
/// most of it Luxor's share, so it runs on request:
/// `cargo test --test integration -- --ignored --nocapture backfill::a_month_of_the_demo_farm`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute of real time at the vendors' limits; run by hand for the README's figures"]
async fn a_month_of_the_demo_farm_at_the_vendors_limits() {
    let Some(promtool) = promtool() else { return };
    let farm = Farm {
        luxor: LuxorSimulator::start(LuxorOptions::default())
            .await
            .unwrap(),
        proxy: UltimateProxySimulator::start(UltimateProxyOptions::default())
            .await
            .unwrap(),
        ourpool: OurPoolSimulator::start(OurPoolOptions::default())
            .await
            .unwrap(),
    };
    let mut config = farm_config_every(&farm, "127.0.0.1:9898".parse().unwrap(), MINUTE);
    // Without retries: with them, a Luxor poll (3 requests and two retries) would fill its
    // 5-in-5-s window and leave the backfill nothing.
    for source in &mut config.sources {
        source.http.max_retries = 0;
    }
    let dir = tempfile::tempdir().unwrap();
    let start = now();
    let mut month = options(&dir.path().join("demo.om"), start - 30 * DAY, Some(start));
    month.blocks = Some(dir.path().join("blocks"));
    month.promtool = Some(promtool);
    let summary = backfill::run(&config, &month, CancellationToken::new())
        .await
        .unwrap();
    println!("{}", summary.report());
    println!("promtool:\n{}", summary.blocks.as_ref().unwrap().output);
    let bytes = std::fs::metadata(dir.path().join("demo.om")).unwrap().len();
    let blocks_bytes: u64 = walk(&dir.path().join("blocks"))
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    println!("output {bytes} bytes, blocks {blocks_bytes} bytes");
    for (name, sim) in [
        ("luxor", farm.luxor.requests()),
        ("proxy", farm.proxy.requests()),
        ("ourpool", farm.ourpool.requests()),
    ] {
        println!("{name}: {} requests, {} answered 429", sim.0, sim.1);
        assert_eq!(sim.1, 0, "{name}: no 429");
    }
    let data = tempfile::tempdir().unwrap();
    load_blocks(&dir.path().join("blocks"), data.path());
    let prometheus = Prometheus::start(data.path(), None).unwrap();
    let started = std::time::Instant::now();
    let count = prometheus
        .wait_for("count(count_over_time({__name__=~\"mining_.+\"}[31d]))")
        .await;
    let samples = prometheus
        .query("sum(count_over_time({__name__=~\"mining_.+\"}[31d]))", None)
        .await
        .unwrap();
    println!(
        "Prometheus: ready and answering in {:.1} s; {} series, {} samples",
        started.elapsed().as_secs_f64(),
        count[0]["value"][1],
        samples[0]["value"][1],
    );
}

/// The Ultimate Proxy source of `sim` read by its history directly, on a budget of its own.
fn proxy_history_reader(
    sim: &UltimateProxySimulator,
) -> (Box<dyn backfill::history::History>, Upstream) {
    let (source, budget) = fast(demo_source(
        demo_proxy(),
        "proxy",
        sim.base_url(),
        &sim.token,
        MINUTE,
    ));
    let history = backfill::history::of(&source).unwrap();
    let api = Upstream::new(
        mining_exporter::client::http_client().unwrap(),
        Connection {
            base_url: source.base_url.clone(),
            auth: source.settings.auth(),
            token: source.token.clone().unwrap(),
            budget: Arc::new(Budget::new(&budget)),
            host_budget: None,
            settings: source.http.clone(),
            clock: WallClock::Tokio,
        },
        Telemetry::new().source(source.pool(), &source.name, false),
    );
    (history, api)
}

/// The ticks a task plans: on its tick, inside its range, complete by the span's now.
fn planned_ticks(task: &backfill::history::Task, span: &backfill::history::Span) -> u64 {
    let first = task.from.div_euclid(task.tick) * task.tick
        + if task.from.rem_euclid(task.tick) == 0 {
            0
        } else {
            task.tick
        };
    (0..)
        .map(|k| first + k * task.tick)
        .take_while(|t| *t < task.until && *t + task.tick <= span.now)
        .count() as u64
}

/// Ultimate Proxy's `timeRange` ends at the request: a task run hours after the plan cut the
/// span finds its first hours gone from its range. Every tick it planned is fetched (from a
/// coarser range where one still has it) or counted, never silently lost.
#[tokio::test(start_paused = true)]
async fn an_ultimate_proxy_task_run_late_fetches_or_counts_every_point() {
    let proxy = UltimateProxySimulator::start(UltimateProxyOptions {
        limit_per_minute: 6000,
        outages: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let (history, api) = proxy_history_reader(&proxy);
    let discovery = history.discover(&api, false).await.unwrap();
    let now = i64::try_from(WallClock::Tokio.unix_seconds()).unwrap();
    let span = backfill::history::Span {
        from: now - 30 * DAY,
        until: now,
        now,
    };
    let tasks = history.tasks(&discovery, &span, false);
    // The plan is made now; the tasks run six hours later (a slow share, a resumed run).
    tokio::time::advance(Duration::from_secs(6 * 3600)).await;
    let (mut points, mut expired, mut planned) = (0, 0, 0);
    for task in &tasks {
        let fetched = history.fetch(&api, task, &span).await.unwrap();
        let got: u64 = fetched.series.values().map(|p| p.len() as u64).sum();
        let want = planned_ticks(task, &span);
        assert_eq!(
            got + fetched.skipped.expired + fetched.skipped.missing,
            want,
            "{}: {got} points, {:?}, of {want} ticks",
            task.id,
            fetched.skipped
        );
        points += got;
        expired += fetched.skipped.expired;
        planned += want;
    }
    assert!(
        expired > 0,
        "six hours late, the day range lost its first hours"
    );
    assert!(points > planned / 2, "{points} of {planned}");
    println!("six hours late: {points} of {planned} points fetched, {expired} counted as expired");
}

/// An OurPool whose transactions come without a page count: `pages` of payouts, 100 a page
/// but the last (or the first page again and again, `ignores_page`).
async fn ourpool_without_page_count(
    payouts: &[(i64, f64)],
    total_paid: f64,
    ignores_page: bool,
) -> httpmock::MockServer {
    use httpmock::prelude::*;
    let server = MockServer::start_async().await;
    let tx = |(i, (at, value)): (usize, &(i64, f64))| {
        serde_json::json!({"id": format!("tx-{i}"), "createdAt": calendar::iso_seconds(*at),
            "type": "TX_TYPE_SCHEDULED_USER_MINING_REWARDS_WITHDRAWAL", "value": format!("{value:.8}")})
    };
    let all: Vec<Value> = payouts.iter().enumerate().map(tx).collect();
    let pages: Vec<Vec<Value>> = all.chunks(100).map(<[Value]>::to_vec).collect();
    for page in 1..=pages.len() + 1 {
        let items = if ignores_page {
            pages.first().cloned().unwrap_or_default()
        } else {
            pages.get(page - 1).cloned().unwrap_or_default()
        };
        server
            .mock_async(|when, then| {
                when.method(GET)
                    .path("/api/v1/accounts/farm/transactions")
                    .query_param("page", page.to_string());
                then.status(200)
                    .json_body(serde_json::json!({ "transactions": items }));
            })
            .await;
    }
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/api/v1/accounts/farm/btc/rewards-stats");
            then.status(200)
                .json_body(serde_json::json!({"totalPaid": format!("{total_paid:.8}")}));
        })
        .await;
    server
}

fn ourpool_mock_config(server: &httpmock::MockServer) -> Config {
    config_of(
        "127.0.0.1:9898".parse().unwrap(),
        vec![fast(demo_source(
            OurPoolConfig::settings("farm"),
            "ourpool",
            server.base_url(),
            "op-token",
            MINUTE,
        ))],
    )
}

/// Transactions without a page count are read page by page to the short one: the counter
/// counted back from totalPaid is right at every hour, not flat past the first page.
#[tokio::test]
async fn ourpool_history_without_a_page_count_reads_every_page_or_says_it_cannot() {
    let end = calendar::day_start(now());
    // 250 payouts, newest first, one an hour, of 0.001 BTC each.
    let payouts: Vec<(i64, f64)> = (0..250).map(|i| (end - 1800 - i * 3600, 0.001)).collect();
    let total_paid = 1.0;
    let server = ourpool_without_page_count(&payouts, total_paid, false).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paid.om");
    let from = end - 300 * 3600;
    backfill::run(
        &ourpool_mock_config(&server),
        &options(&out, from, Some(end)),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let paid: BTreeMap<i64, f64> = samples(&text)
        .into_iter()
        .filter(|(series, _, _)| series.starts_with("mining_account_paid_total"))
        .map(|(_, t, v)| (t, v))
        .collect();
    for (t, v) in &paid {
        let after: f64 = payouts
            .iter()
            .filter(|(at, _)| at > t)
            .map(|(_, v)| v)
            .sum();
        assert!(
            (v - (total_paid - after)).abs() < 1e-9,
            "at {t}: {v}, not {}",
            total_paid - after
        );
    }
    let first = paid.values().next().copied().unwrap();
    assert!((first - 0.75).abs() < 1e-9, "before every payout: {first}");

    // An API that sends its first page whatever page is asked: said, not drawn wrong.
    let server = ourpool_without_page_count(&payouts, total_paid, true).await;
    let failed = backfill::run(
        &ourpool_mock_config(&server),
        &options(&dir.path().join("again.om"), from, Some(end)),
        CancellationToken::new(),
    )
    .await;
    let Err(BackfillError::Upstream { error, .. }) = failed else {
        panic!("{failed:?}")
    };
    assert!(error.to_string().contains("does not page"), "{error}");
}

/// A config file for the binary: the proxy simulator's account, its token in a file.
fn proxy_config_file(dir: &Path, sim: &UltimateProxySimulator) -> PathBuf {
    std::fs::write(dir.join("token"), &sim.token).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"proxy\"\naccount = \"demo\"\nbase_url = \"{}\"\ntoken_file = \"token\"\ntier = \"vip\"\n",
            sim.base_url()
        ),
    )
    .unwrap();
    path
}

/// Runs the binary with `args`, `env` set (and STATE_DIRECTORY unset unless given).
async fn backfill_command(
    args: Vec<std::ffi::OsString>,
    env: Vec<(&'static str, PathBuf)>,
) -> String {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(crate::common::BIN);
        command
            .arg("backfill")
            .args(&args)
            .env_remove("STATE_DIRECTORY");
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    })
    .await
    .unwrap()
}

/// A proxy simulator, its config file in `dir`, and the binary's arguments for a backfill of
/// it from `30d` to today's midnight into `dir/h.om`, with `more` after them.
async fn proxy_backfill_args(
    dir: &Path,
    more: &[&str],
) -> (UltimateProxySimulator, Vec<std::ffi::OsString>) {
    let proxy = UltimateProxySimulator::start(UltimateProxyOptions {
        outages: false,
        ..Default::default()
    })
    .await
    .unwrap();
    let config = proxy_config_file(dir, &proxy);
    let to = calendar::date_of(calendar::day_start(now()));
    let mut args: Vec<std::ffi::OsString> = vec![
        "--config".into(),
        config.into(),
        "--from".into(),
        "30d".into(),
        "--to".into(),
        to.into(),
        "--out".into(),
        dir.join("h.om").into(),
    ];
    args.extend(more.iter().map(Into::into));
    (proxy, args)
}

/// The headline `--from 30d` run again resumes: the span back from now stays a span in the
/// progress file's key, and the second run fetches nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_from_resumes_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let (proxy, args) = proxy_backfill_args(dir.path(), &[]).await;
    let first = backfill_command(args.clone(), Vec::new()).await;
    let asked = proxy.requests().0;
    assert!(first.contains(" 0 tasks from an earlier run"), "{first}");
    // A second later "30d" is another second: the key must not be.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = backfill_command(args, Vec::new()).await;
    assert_eq!(
        proxy.requests().0,
        asked,
        "the rerun asked again:\n{second}"
    );
    assert!(
        second.contains("  0 requests made, 6 tasks from an earlier run"),
        "{second}"
    );
}

/// `backfill` takes the exporter's state directory from $STATE_DIRECTORY, as `doctor` and
/// `poll` do; without any state it leaves the exporter the share its plan may fill, not the
/// least its polls can cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reserve_comes_from_state_directory_costs_else_the_plan_s_share() {
    let dir = tempfile::tempdir().unwrap();
    let (_proxy, args) = proxy_backfill_args(dir.path(), &["--dry-run"]).await;
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(
        state.join("mining-exporter-state.json"),
        format!(
            "{{\"version\":2,\"budgets\":{{}},\"costs\":{{\"proxy\":{{\"requests\":4,\"unix_ms\":{}}}}}}}",
            now() * 1000
        ),
    )
    .unwrap();
    let args = || args.clone();
    // Polled every minute at 4 requests with 3 retries each: two polls in any minute.
    let with_state = backfill_command(args(), vec![("STATE_DIRECTORY", state.clone())]).await;
    assert!(
        with_state.contains(
            "budget auto:proxy: 60/1m, 14 kept for the exporter's plan, 46 for the backfill"
        ),
        "{with_state}"
    );
    let without = backfill_command(args(), Vec::new()).await;
    assert!(
        without.contains(
            "budget auto:proxy: 60/1m, 51 kept for the exporter's plan, 9 for the backfill"
        ),
        "{without}"
    );
}

/// A second backfill within the window counts the first's requests: both keep them in the
/// state directory, so the two together stay inside the backfill's share.
#[tokio::test(start_paused = true)]
async fn a_second_backfill_within_the_window_counts_the_first_s_requests() {
    let (proxy, config) = proxy_on_a_10_a_minute_key(10 * MINUTE, 0).await;
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = i64::try_from(WallClock::Tokio.unix_seconds()).unwrap();
    let run = |out: &str| {
        let mut o = options(&dir.path().join(out), start - 30 * DAY, Some(start));
        o.clock = WallClock::Tokio;
        o.state_dir = Some(state.path().to_path_buf());
        o
    };
    let first = backfill::run(&config, &run("first.om"), CancellationToken::new())
        .await
        .unwrap();
    let share = first.shares[0].windows[0].share;
    let second = backfill::run(&config, &run("second.om"), CancellationToken::new())
        .await
        .unwrap();
    let made: u64 = [&first, &second]
        .iter()
        .flat_map(|s| &s.sources)
        .map(|s| s.requests)
        .sum();
    let most = busiest(&proxy.request_times(), MINUTE);
    println!("two backfills: {made} requests, at most {most} in a minute, share {share}");
    assert!(made >= 14, "{made}");
    assert!(
        most <= share as usize,
        "{most} requests in one minute, where the backfill's share is {share}"
    );
}

/// `--until-live` with a password: the progress file holds neither it nor anything another
/// user may read, and the state file is the owner's alone too.
#[cfg(unix)]
#[tokio::test]
async fn the_progress_and_state_files_hold_no_secret_and_are_the_owner_s_alone() {
    use httpmock::prelude::*;
    use std::os::unix::fs::PermissionsExt;
    let prometheus = MockServer::start_async().await;
    prometheus
        .mock_async(|when, then| {
            when.method(GET).path("/api/v1/query");
            then.status(200).json_body(
                serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": []}}),
            );
        })
        .await;
    let farm = farm().await;
    let config = farm_config(&farm, "127.0.0.1:9898".parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.om");
    let mut live = options(&out, now() - 2 * DAY, None);
    live.until_live = Some(
        prometheus
            .base_url()
            .replace("http://", "http://prometheus:pr0m-s3cret-password@"),
    );
    live.sources = vec!["proxy".into()];
    live.state_dir = Some(state.path().to_path_buf());
    backfill::run(&config, &live, CancellationToken::new())
        .await
        .unwrap();
    let progress = dir.path().join("h.om.progress");
    let text = std::fs::read_to_string(&progress).unwrap();
    assert!(!text.contains("pr0m-s3cret-password"), "{text}");
    assert!(text.contains(&prometheus.base_url().replace("http://", "")));
    for file in [progress, state.path().join("mining-exporter-state.json")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&farm.proxy.token), "{}", file.display());
    }
}
