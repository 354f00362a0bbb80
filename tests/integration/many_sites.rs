//! Many farms, one store, end to end with Debian's packages, every process on 127.0.0.1:
//! two sites (each an exporter over its own simulators, with the same source and account
//! names) scraped by the shipped agent configs with their own `site`, remote-writing to one
//! central VictoriaMetrics (vmalert running the rules) or one receiving Prometheus. The
//! central store holds both sites, the rules keep them apart, and every dashboard query
//! answers with one site chosen and with All. Then the uplink's failures: the receiver down
//! for 60 s loses nothing, and an agent restarted during an outage loses its backlog
//! (Prometheus agent) or nothing (vmagent with its disk queue).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mining_exporter::Exporter;
use mining_exporter::demo::{DemoPools, demo_config};
use serde_json::Value;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use crate::common::{
    KillOnDrop, free_port, get_json, http, query, query_at, sigterm, spawn_tool, start_prometheus,
    wait_for_data,
};
use crate::dashboards::{as_grafana_sends_it, dashboards, exprs, label_values_query, panels};

fn shipped(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dashboards")
        .join(file)
}

/// The shipped mixin with the drop alert's windows shortened, so a drop fires within a test:
/// its groups renamed, and only the two recording rules those windows name, so it runs
/// beside the shipped files without recording any series twice.
const FAST_DROP: &str = "{
  _config+:: { hashrateSmoothing: '10s', hashrateBaselineWindow: '1m',
               hashrateBaselineOffset: '40s', hashrateDropFor: '0s' },
  local windowed(rule) = std.length(std.findSubstr('_over_time_10s', rule.record)) > 0
    || std.length(std.findSubstr('_over_time_1m', rule.record)) > 0,
  prometheusRules+: { groups: std.filter(function(g) std.length(g.rules) > 0,
                                         [g { name: g.name + '.fast', rules: std.filter(windowed, g.rules) }
                                          for g in super.groups]) },
  prometheusAlerts+: { groups: [g { name: g.name + '.fast' } for g in super.groups] },
}";

/// The shipped rules and alerts (13 and 9) and the fast drop's (2 and 9).
const RULES: usize = 33;

/// A process started from a shipped file, killed when dropped.
struct Process {
    child: KillOnDrop,
    base: String,
}

impl Process {
    /// SIGTERM, then waits for the process to end (a Prometheus agent spends up to a
    /// minute trying to flush to a receiver that is down).
    async fn stop(&mut self) {
        sigterm(&self.child.0);
        let start = Instant::now();
        while self.child.0.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{} did not stop within 90 s",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Starts the command `build` makes for a free loopback port, its output discarded: the
/// process and its base URL. None when `package` is not installed (see `spawn_tool`).
fn spawn_on_port(package: &str, build: impl FnOnce(u16) -> Command) -> Option<Process> {
    spawn_at(free_port(), package, build)
}

/// Like `spawn_on_port`, on `port` (a store restarted where its agents write).
fn spawn_at(port: u16, package: &str, build: impl FnOnce(u16) -> Command) -> Option<Process> {
    let mut command = build(port);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let child = spawn_tool(&mut command, package)?;
    Some(Process {
        child: KillOnDrop(child),
        base: format!("http://127.0.0.1:{port}"),
    })
}

/// A shipped file with each `(from, to)` replaced (each `from` must occur once), written to
/// `to_file`.
fn shipped_with(file: &str, replacements: &[(&str, String)], to_file: &Path) {
    let text = std::fs::read_to_string(shipped(file)).unwrap();
    let text = replacements
        .iter()
        .fold(text, |text, (from, to)| replace_once(&text, from, to));
    std::fs::write(to_file, text).unwrap();
}

/// A script run by `sh` always starts; whether the program it runs exists is asked here.
fn require(program: &str) -> Option<()> {
    spawn_tool(
        Command::new(program)
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        "victoria-metrics",
    )?
    .wait()
    .ok()
    .map(|_| ())
}

/// The central VictoriaMetrics on `port`, through `dashboards/central/victoria-metrics.sh`.
/// The test reads back at once and at one-second resolution: no latency offset, no cache,
/// no dedup.
fn victoria_metrics(data: &Path, port: u16) -> Option<Process> {
    require("victoria-metrics")?;
    spawn_at(port, "victoria-metrics", |port| {
        let mut command = Command::new("sh");
        command
            .arg(shipped("central/victoria-metrics.sh"))
            .args([
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-dedup.minScrapeInterval=0s",
                "-loggerLevel=ERROR",
            ])
            .env("DATA_DIR", data)
            .env("LISTEN", format!("127.0.0.1:{port}"));
        command
    })
}

/// vmalert over `store` with the shipped rule files and `more`, through
/// `dashboards/central/vmalert.sh`, evaluating every second.
fn vmalert(store: &str, more: &[PathBuf]) -> Option<Process> {
    require("vmalert")?;
    spawn_on_port("victoria-metrics", |port| {
        let mut command = Command::new("sh");
        command
            .arg(shipped("central/vmalert.sh"))
            .args(["-evaluationInterval=1s", "-loggerLevel=ERROR"])
            .args(more.iter().map(|r| format!("-rule={}", r.display())))
            .env("RULES_DIR", shipped("prometheus"))
            .env("VICTORIA_METRICS", store)
            // No Alertmanager here: the test reads the alerts from vmalert's API.
            .env("ALERTMANAGER", format!("http://127.0.0.1:{}", free_port()))
            .env("LISTEN", format!("127.0.0.1:{port}"));
        command
    })
}

/// A central Prometheus receiving remote write, from `dashboards/central/prometheus-receiver.yml`
/// with the shipped rule files and `more`, evaluating every second.
fn receiving_prometheus(dir: &Path, more: &[PathBuf]) -> Option<Process> {
    let rules = [
        shipped("prometheus/rules.yml"),
        shipped("prometheus/alerts.yml"),
    ];
    let listed: String = rules
        .iter()
        .chain(more)
        .map(|r| format!("  - {}\n", r.display()))
        .collect();
    let file = dir.join("receiver.yml");
    shipped_with(
        "central/prometheus-receiver.yml",
        &[
            (
                "  - ../prometheus/rules.yml\n  - ../prometheus/alerts.yml\n",
                listed,
            ),
            ("evaluation_interval: 30s", "evaluation_interval: 1s".into()),
        ],
        &file,
    );
    let (child, base) = start_prometheus(
        &file,
        &dir.join("tsdb"),
        &[
            "--web.enable-remote-write-receiver",
            "--storage.tsdb.retention.time=395d",
        ],
    )?;
    Some(Process { child, base })
}

/// A site's Prometheus agent, from `dashboards/agent/prometheus-agent.yml` with the site's
/// name, target and central URL, scraping every second. Its WAL lives in `dir`.
fn prometheus_agent(dir: &Path, site: &str, target: &str, write_url: &str) -> Option<Process> {
    let file = dir.join("agent.yml");
    shipped_with(
        "agent/prometheus-agent.yml",
        &[
            ("site: farm-a", format!("site: {site}")),
            ("\"localhost:9898\"", format!("\"{target}\"")),
            ("http://central:8428/api/v1/write", write_url.into()),
            ("scrape_interval: 30s", "scrape_interval: 1s".into()),
        ],
        &file,
    );
    spawn_on_port("prometheus", |port| {
        let mut command = Command::new("prometheus");
        command
            .arg("--enable-feature=agent")
            // On SIGTERM it tries to send what it holds for this long (a minute by default)
            // before it stops; the backlog is lost either way.
            .arg("--storage.remote.flush-deadline=5s")
            .arg(format!("--config.file={}", file.display()))
            .arg(format!(
                "--storage.agent.path={}",
                dir.join("wal").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        command
    })
}

/// A site's vmagent through `dashboards/agent/vmagent.sh`, its scrape config the shipped
/// `vmagent-scrape.yml` with the site's target, every second; its disk queue in `dir`.
fn vmagent(dir: &Path, site: &str, target: &str, write_url: &str) -> Option<Process> {
    require("vmagent")?;
    let file = dir.join("scrape.yml");
    shipped_with(
        "agent/vmagent-scrape.yml",
        &[
            ("\"localhost:9898\"", format!("\"{target}\"")),
            ("scrape_interval: 30s", "scrape_interval: 1s".into()),
        ],
        &file,
    );
    spawn_on_port("victoria-metrics", |port| {
        let mut command = Command::new("sh");
        command
            .arg(shipped("agent/vmagent.sh"))
            .arg("-loggerLevel=ERROR")
            .env("SITE", site)
            .env("CENTRAL_WRITE_URL", write_url)
            .env("SCRAPE_CONFIG", &file)
            .env("QUEUE_DIR", dir.join("queue"))
            .env("LISTEN", format!("127.0.0.1:{port}"));
        command
    })
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} in {text}");
    text.replacen(from, to, 1)
}

/// One site: the demo's simulators, an exporter polling them, its listen address.
struct Site {
    pools: DemoPools,
    target: String,
    shutdown: CancellationToken,
}

impl Site {
    async fn start() -> Site {
        let pools = DemoPools::start().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let exporter = Exporter::new(demo_config(address, &pools).unwrap()).unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(exporter.serve(listener, shutdown.clone()));
        Site {
            pools,
            target: address.to_string(),
            shutdown,
        }
    }

    /// Takes every worker of the site's Ultimate Proxy account offline: its hashrate drops.
    fn lose_every_proxy_worker(&self) {
        for name in self.pools.ultimate_proxy.worker_names() {
            self.pools
                .ultimate_proxy
                .take_offline(&name, Duration::from_secs(600));
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Waits (at most 30 s) until VictoriaMetrics answers `/health`.
async fn healthy(base: &str) {
    let start = Instant::now();
    while !http()
        .get(format!("{base}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{base} not healthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn label<'a>(series: &'a Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or("")
}

fn number(series: &Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Both sites' exporters are up in the store, each with its own `site`, with the same
/// source names: the figures per site, printed for the record.
async fn both_sites_arrive(store: &str) {
    wait_for_data(
        store,
        "count by (site) (up{job=\"mining-exporter\"} == 1) == 1",
        Duration::from_secs(60),
    )
    .await;
    let start = Instant::now();
    loop {
        let per_site = query(store, "count by (site) (mining_exporter_source_up == 1)")
            .await
            .unwrap_or_default();
        let full: Vec<&str> = per_site
            .iter()
            .filter(|s| number(s) == 6.0)
            .map(|s| label(s, "site"))
            .collect();
        if full.contains(&"a") && full.contains(&"b") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{store}: both sites' six sources not up: {per_site:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The same source name at both sites, apart by `site` alone.
    let proxies = query(store, "mining_exporter_source_up{source=\"demo-proxy\"}")
        .await
        .unwrap();
    let mut sites: Vec<&str> = proxies.iter().map(|s| label(s, "site")).collect();
    sites.sort();
    assert_eq!(sites, ["a", "b"], "{proxies:?}");
}

/// What each site's agent scraped from its exporter (and so wrote) against the raw samples
/// of those series the store gives back, over the whole run up to a few seconds ago (so
/// nothing is still on its way): printed, and equal.
async fn written_and_read_back(store: &str) {
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - 5.0;
    for site in ["a", "b"] {
        let selector = format!("site=\"{site}\", job=\"mining-exporter\"");
        let written = query_at(
            store,
            &format!("sum(sum_over_time(scrape_samples_scraped{{{selector}}}[30m]))"),
            Some(until),
        )
        .await
        .unwrap()
        .first()
        .map(number)
        .unwrap_or(0.0);
        let raw = query_at(
            store,
            // Not the recorded series or the alerts, which keep the job label.
            &format!("{{{selector}, __name__!~\"up|scrape_.*|.*:.*|ALERTS.*\"}}[30m]"),
            Some(until),
        )
        .await
        .unwrap();
        // VictoriaMetrics gives back the staleness markers a vanished series ends with (a
        // lively demo farm loses workers); they are no scraped sample.
        let read = raw
            .iter()
            .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
            .filter(|v| v[1] != "NaN")
            .count();
        eprintln!(
            "{store}: site {site}: {} series; {written} samples written, {read} read back",
            raw.len()
        );
        assert!(raw.len() > 100, "site {site}: {} series", raw.len());
        assert_eq!(read as f64, written, "site {site}: written, read back");
    }
}

/// Every rule of a vmalert or Prometheus rules API answer.
async fn rules_of(base: &str) -> Vec<Value> {
    let body = get_json(base, "/api/v1/rules").await;
    body["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// Waits until the rules API lists `count` rules that have all evaluated without error.
async fn rules_healthy(base: &str, count: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let rules = rules_of(base).await;
        let healthy = rules.iter().all(|r| {
            r["lastError"].as_str().unwrap_or("").is_empty()
                && r["health"].as_str().is_none_or(|h| h == "ok")
        });
        if rules.len() == count && healthy {
            return rules;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{base}: rules not all healthy: {rules:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every recording rule of `rules.yml` has series for both sites in the store.
async fn recorded_for_both_sites(store: &str, rules: &[Value]) {
    for rule in rules.iter().filter(|r| r["type"] == "recording") {
        let name = rule["name"].as_str().unwrap();
        for site in ["a", "b"] {
            wait_for_data(
                store,
                &format!("{name}{{site=\"{site}\"}}"),
                Duration::from_secs(30),
            )
            .await;
        }
    }
}

/// Every panel and variable query of every dashboard returns data from the store, with one
/// site chosen and with All: the number of queries run.
async fn every_panel_answers(store: &str) -> usize {
    let mut ran = 0;
    for site in ["a", ".*"] {
        for (file, dashboard) in dashboards() {
            let mut queries: Vec<(String, String)> = Vec::new();
            for panel in panels(&dashboard) {
                for expr in exprs(panel) {
                    let title = panel["title"].as_str().unwrap_or("").to_string();
                    queries.push((title, as_grafana_sends_it(expr, site)));
                }
            }
            for variable in dashboard["templating"]["list"].as_array().unwrap() {
                if let Some(definition) = variable["definition"].as_str() {
                    let name = variable["name"].as_str().unwrap_or("");
                    queries.push((format!("${name}"), label_values_query(definition, site)));
                }
            }
            for (what, sent) in queries {
                let result = wait_for_data(store, &sent, Duration::from_secs(20)).await;
                // The site variable lists every site, whichever is chosen.
                if site == "a" && what != "$site" {
                    assert!(
                        result.iter().all(|s| ["a", ""].contains(&label(s, "site"))),
                        "{file}: {what}: site b in {sent}: {result:?}"
                    );
                }
                ran += 1;
            }
        }
    }
    ran
}

/// The alerts named `name` that are firing, from a vmalert or Prometheus alerts API.
async fn firing(base: &str, name: &str) -> Vec<Value> {
    let body = get_json(base, "/api/v1/alerts").await;
    body["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == name || a["name"] == name)
        .filter(|a| a["state"] == "firing")
        .cloned()
        .collect()
}

/// A drop at site a's proxy fires MiningHashrateDrop for site a's proxy, and never for site
/// b's proxy of the same name. (The demo's lively farms can dip in the short windows the
/// test runs with at other sources; only the proxy's accounts are watched.)
async fn a_drop_fires_for_its_site_only(site_a: &Site, store: &str, alerts_api: &str) {
    // The baseline, as it was 40 s back, needs its history first.
    wait_for_data(
        store,
        "pool_account_algorithm:mining_account_hashrate_hashes_per_second:median_over_time_1m\
         {site=\"a\", source=\"demo-proxy\"} offset 40s",
        Duration::from_secs(120),
    )
    .await;
    let proxy_drops = || async {
        firing(alerts_api, "MiningHashrateDrop")
            .await
            .into_iter()
            .filter(|a| a["labels"]["source"] == "demo-proxy")
            .collect::<Vec<_>>()
    };
    let before = proxy_drops().await;
    assert!(before.is_empty(), "a drop before any: {before:#?}");
    site_a.lose_every_proxy_worker();
    let start = Instant::now();
    let fired = loop {
        let fired = proxy_drops().await;
        if !fired.is_empty() {
            break fired;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{alerts_api}: no MiningHashrateDrop within 60 s of the drop"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!(
        "{alerts_api}: MiningHashrateDrop fired {:.0} s after the drop",
        start.elapsed().as_secs_f64()
    );
    // A while longer: site b's steady proxy never fires.
    for _ in 0..10 {
        let fired = proxy_drops().await;
        assert!(
            fired.iter().all(|a| a["labels"]["site"] == "a"),
            "{fired:#?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(
        fired.iter().all(|a| a["labels"]["site"] == "a"),
        "{fired:#?}"
    );
}

/// The rule files of FAST_DROP, rendered into `dir`.
fn fast_rules(dir: &Path) -> Option<[PathBuf; 2]> {
    let (status, printed) = crate::mixin::render(dir, FAST_DROP)?;
    assert!(status.success(), "{printed}");
    Some([
        dir.join("prometheus/rules.yml"),
        dir.join("prometheus/alerts.yml"),
    ])
}

#[tokio::test]
async fn two_sites_meet_in_victoria_metrics_and_the_rules_keep_them_apart() {
    let dir = TempDir::new().unwrap();
    let Some(store) = victoria_metrics(&dir.path().join("vm"), free_port()) else {
        return;
    };
    let Some(fast) = fast_rules(&dir.path().join("fast")) else {
        return;
    };
    let rules = vmalert(&store.base, &fast).unwrap();
    two_sites_through(dir.path(), Agent::Prometheus, &store.base, &rules.base).await;
}

/// Two sites behind `kind` agents writing to `store`, whose rules run at `rules_api`: both
/// arrive apart, every rule is healthy and recorded for both, every panel answers, and a
/// drop at one site fires for it alone.
async fn two_sites_through(dir: &Path, kind: Agent, store: &str, rules_api: &str) {
    let write_url = format!("{store}/api/v1/write");
    let sites = [Site::start().await, Site::start().await];
    let _agents: Vec<Process> = ["a", "b"]
        .iter()
        .zip(&sites)
        .map(|(name, site)| {
            let at = dir.join(name);
            std::fs::create_dir_all(&at).unwrap();
            start_agent(kind, &at, name, &site.target, &write_url)
        })
        .collect();

    both_sites_arrive(store).await;
    let healthy = rules_healthy(rules_api, RULES).await;
    recorded_for_both_sites(store, &healthy).await;
    let ran = every_panel_answers(store).await;
    eprintln!("{store} ({kind:?} agents): {ran} panel and variable queries answered");
    assert!(ran >= 80, "{ran}");
    a_drop_fires_for_its_site_only(&sites[0], store, rules_api).await;
    written_and_read_back(store).await;
}

#[tokio::test]
async fn two_sites_meet_in_a_receiving_prometheus_and_the_rules_keep_them_apart() {
    let dir = TempDir::new().unwrap();
    let Some(fast) = fast_rules(&dir.path().join("fast")) else {
        return;
    };
    let Some(store) = receiving_prometheus(dir.path(), &fast) else {
        return;
    };
    two_sites_through(dir.path(), Agent::VmAgent, &store.base, &store.base).await;
}

/// A target whose one counter grows by one at each scrape, so a sample lost on the way to
/// the store is a gap in its values: its address.
async fn counting_target(shutdown: CancellationToken) -> String {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let scrapes = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
            async move { format!("# TYPE test_scrapes_total counter\ntest_scrapes_total {n}\n") }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    });
    address
}

/// The counter's values in the store for `site`, oldest first (VictoriaMetrics' export API).
async fn counter_values(store: &str, site: &str) -> Vec<u64> {
    let text = http()
        .get(format!("{store}/api/v1/export"))
        .query(&[("match[]", format!("test_scrapes_total{{site=\"{site}\"}}"))])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut samples: Vec<(i64, u64)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let series: Value = serde_json::from_str(line).unwrap();
        let times = series["timestamps"].as_array().unwrap();
        let values = series["values"].as_array().unwrap();
        for (t, v) in times.iter().zip(values) {
            samples.push((t.as_i64().unwrap(), v.as_f64().unwrap() as u64));
        }
    }
    samples.sort();
    samples.into_iter().map(|(_, v)| v).collect()
}

/// Counter values between the first and the last stored that never arrived.
fn lost(values: &[u64]) -> u64 {
    let (Some(first), Some(last)) = (values.first(), values.last()) else {
        return 0;
    };
    let mut distinct = values.to_vec();
    distinct.dedup();
    (last - first + 1).saturating_sub(distinct.len() as u64)
}

#[derive(Clone, Copy, Debug)]
enum Agent {
    Prometheus,
    VmAgent,
}

fn start_agent(kind: Agent, dir: &Path, site: &str, target: &str, write_url: &str) -> Process {
    match kind {
        Agent::Prometheus => prometheus_agent(dir, site, target, write_url),
        Agent::VmAgent => vmagent(dir, site, target, write_url),
    }
    .unwrap()
}

/// The central store down for 60 s while `kind` scrapes the counter every second, the agent
/// restarted halfway through the outage when `restart`; then the store back up and the
/// backlog given time to arrive. The counter values lost, and the samples stored.
async fn outage(kind: Agent, restart: bool, site: &str) -> Option<(u64, usize)> {
    let dir = TempDir::new().unwrap();
    let port = free_port();
    let data = dir.path().join("vm");
    let mut store = victoria_metrics(&data, port)?;
    let write_url = format!("{}/api/v1/write", store.base);
    let shutdown = CancellationToken::new();
    let target = counting_target(shutdown.clone()).await;
    let mut agent = start_agent(kind, dir.path(), site, &target, &write_url);
    let selector = format!("test_scrapes_total{{site=\"{site}\"}}");
    wait_for_data(
        &store.base,
        &format!("{selector} > 20"),
        Duration::from_secs(60),
    )
    .await;

    store.stop().await;
    if restart {
        tokio::time::sleep(Duration::from_secs(25)).await;
        agent.stop().await;
        agent = start_agent(kind, dir.path(), site, &target, &write_url);
        tokio::time::sleep(Duration::from_secs(25)).await;
    } else {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let mut store = victoria_metrics(&data, port).unwrap();
    healthy(&store.base).await;
    // After the outage the agent catches up within its backoff (30 s at most) and a send.
    let start = Instant::now();
    let mut values = counter_values(&store.base, site).await;
    let mut settled = 0;
    while start.elapsed() < Duration::from_secs(90) && settled < 10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = counter_values(&store.base, site).await;
        // Settled once the backlog stopped filling in and new samples arrive.
        if lost(&now) == lost(&values) && now.len() > values.len() {
            settled += 1;
        } else {
            settled = 0;
        }
        values = now;
    }
    agent.stop().await;
    store.stop().await;
    shutdown.cancel();
    Some((lost(&values), values.len()))
}

#[tokio::test]
async fn an_outage_loses_nothing_and_a_restart_during_one_loses_only_the_prometheus_backlog() {
    let (plain, prometheus_restarted, vmagent_restarted) = tokio::join!(
        outage(Agent::Prometheus, false, "outage"),
        outage(Agent::Prometheus, true, "restart-prometheus"),
        outage(Agent::VmAgent, true, "restart-vmagent"),
    );
    let (Some(plain), Some(prometheus_restarted), Some(vmagent_restarted)) =
        (plain, prometheus_restarted, vmagent_restarted)
    else {
        return;
    };
    eprintln!(
        "receiver down 60 s, Prometheus agent: {} scrapes lost of {} stored; \
         agent restarted during the outage: Prometheus agent lost {} of {}, vmagent lost {} of {}",
        plain.0,
        plain.1,
        prometheus_restarted.0,
        prometheus_restarted.1,
        vmagent_restarted.0,
        vmagent_restarted.1
    );
    assert_eq!(plain.0, 0, "the outage left a gap");
    assert!(plain.1 > 80, "{plain:?}");
    // prometheus/prometheus#8809: a restarted agent does not send what its WAL held unsent.
    assert!(prometheus_restarted.0 >= 10, "{prometheus_restarted:?}");
    assert_eq!(vmagent_restarted.0, 0, "vmagent's disk queue lost samples");
    assert!(vmagent_restarted.1 > 80, "{vmagent_restarted:?}");
}
