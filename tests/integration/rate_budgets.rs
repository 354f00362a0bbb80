//! Rate budgets over a long run, in virtual time: tokio's clock is paused and jumps ahead
//! whenever every task waits, so a simulated day takes a couple of minutes. The simulators
//! count their windows on the same clock and answer 429 as the pools document.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mining_exporter::clock::WallClock;
use mining_exporter::config::{BudgetConfig, Config, SourceConfig};
use mining_exporter::demo::{
    LuxorOptions, LuxorSimulator, OurPoolOptions, OurPoolSimulator, UltimateProxyOptions,
    UltimateProxySimulator, config_of, demo_luxor, demo_proxy, demo_source,
};
use mining_exporter::exposition::Exposition;
use mining_exporter::sources::ourpool::OurPoolConfig;
use mining_exporter::{BudgetsAtStart, Exporter, ExporterOptions};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::common::sample;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Ultimate Proxy non-VIP: 10 requests a minute per account.
fn non_vip(
    sim: &UltimateProxySimulator,
    name: &str,
    every: Duration,
) -> (SourceConfig, BudgetConfig) {
    let (mut source, mut budget) =
        demo_source(demo_proxy(), name, sim.base_url(), &sim.token, every);
    budget.name = "proxy-key".into();
    budget.limits = vec!["10/1m".parse().unwrap()];
    source.budget = budget.name.clone();
    (source, budget)
}

/// A steady non-VIP Ultimate Proxy account of `workers`, noting when each request arrives.
async fn proxy_of(workers: usize) -> UltimateProxySimulator {
    let sim = UltimateProxySimulator::start(UltimateProxyOptions {
        workers,
        limit_per_minute: 10,
        outages: false,
        ..Default::default()
    })
    .await
    .unwrap();
    sim.record_request_times();
    sim
}

/// A farm of 2,950 workers: 30 pages of 100, so a poll costs 33 requests (the overview,
/// the pages, one hashrate series for each of its two algorithms).
async fn long_list_proxy() -> UltimateProxySimulator {
    proxy_of(2_950).await
}

/// The exporter as `run` builds it, on the simulators' clock, serving until `stop`.
fn start(
    exporter: Exporter,
    stop: &CancellationToken,
) -> (Arc<Exposition>, tokio::task::JoinHandle<()>) {
    let exposition = exporter.exposition().clone();
    let stop = stop.clone();
    let task = tokio::spawn(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        exporter.serve(listener, stop).await.unwrap();
    });
    (exposition, task)
}

fn exporter(config: Config) -> Exporter {
    exporter_starting(config, BudgetsAtStart::Empty)
}

fn exporter_starting(config: Config, budgets_at_start: BudgetsAtStart) -> Exporter {
    Exporter::with_options(
        config,
        ExporterOptions {
            clock: WallClock::Tokio,
            budgets_at_start,
            ..ExporterOptions::default()
        },
    )
    .unwrap()
}

fn page(exposition: &Exposition) -> String {
    String::from_utf8(exposition.current().text()).unwrap()
}

fn gauge(page: &str, name: &str, source: &str) -> f64 {
    sample(page, name, &[&format!("source=\"{source}\"")])
        .unwrap_or_else(|| panic!("no {name} for {source} in\n{page}"))
}

/// The most requests inside any span of `per`.
pub(crate) fn busiest(times: &[Instant], per: Duration) -> usize {
    mining_exporter::plan::most_in_any_span(times, per)
}

#[tokio::test(start_paused = true)]
async fn a_simulated_day_keeps_every_window_and_the_planned_pace() {
    let proxy = long_list_proxy().await;
    let ourpool = OurPoolSimulator::start(OurPoolOptions {
        lively: false,
        ..Default::default()
    })
    .await
    .unwrap();
    ourpool.record_request_times();
    let luxor = LuxorSimulator::start(LuxorOptions {
        lively: false,
        ..Default::default()
    })
    .await
    .unwrap();
    // Two sources on one Ultimate Proxy key asking for 33 + 16.5 requests a minute of the 10
    // it grants; OurPool and Luxor asking for less than theirs.
    let (ourpool_source, ourpool_budget) = demo_source(
        OurPoolConfig::settings(&ourpool.account()),
        "ourpool",
        ourpool.base_url(),
        &ourpool.token,
        MINUTE,
    );
    let config = config_of(
        "127.0.0.1:0".parse().unwrap(),
        vec![
            non_vip(&proxy, "proxy-fast", MINUTE),
            non_vip(&proxy, "proxy-slow", 2 * MINUTE),
            (ourpool_source, ourpool_budget),
            demo_source(
                demo_luxor(),
                "luxor",
                luxor.base_url(),
                &luxor.token,
                MINUTE,
            ),
        ],
    );
    let names = ["proxy-fast", "proxy-slow", "ourpool", "luxor"];
    let stop = CancellationToken::new();
    let started = Instant::now();
    let (exposition, task) = start(exporter(config), &stop);

    // Every hour, each source's achieved interval (the mean of its last 8) against its plan.
    let mut worst: BTreeMap<&str, f64> = BTreeMap::new();
    let mut planned: BTreeMap<&str, f64> = BTreeMap::new();
    for hour in 1..=24 {
        tokio::time::sleep(HOUR).await;
        let page = page(&exposition);
        for name in names {
            let plan = gauge(&page, "mining_exporter_poll_interval_planned_seconds", name);
            let achieved = gauge(
                &page,
                "mining_exporter_poll_interval_achieved_seconds",
                name,
            );
            // The first hour learns the cost of the long list and replans once.
            if hour >= 2 {
                let off = (achieved - plan).abs() / plan;
                assert!(
                    off <= 0.10,
                    "hour {hour}: {name} planned every {plan} s, achieved {achieved} s"
                );
                let w = worst.entry(name).or_default();
                *w = w.max(off);
            }
            planned.insert(name, plan);
        }
    }
    stop.cancel();
    task.await.unwrap();
    let page = page(&exposition);

    let (proxy_requests, proxy_429) = proxy.requests();
    let (ourpool_requests, ourpool_429) = ourpool.requests();
    let (luxor_requests, luxor_429) = luxor.requests();
    assert_eq!(
        (proxy_429, ourpool_429, luxor_429),
        (0, 0, 0),
        "no 429 all day"
    );
    let proxy_times = proxy.request_times();
    assert!(busiest(&proxy_times, MINUTE) <= 10);
    let ourpool_times = ourpool.request_times();
    assert!(busiest(&ourpool_times, MINUTE) <= 100);
    assert!(busiest(&ourpool_times, HOUR) <= 1000);

    // The Ultimate Proxy key is oversubscribed: the plan must use it up to its target.
    let learned_hours = proxy_times.iter().filter(|t| **t - started >= HOUR).count();
    let target = 0.85 * 10.0 * 60.0 * 23.0;
    let utilisation = learned_hours as f64 / target;
    assert!(
        utilisation >= 0.80,
        "{learned_hours} requests in hours 2-24 is {utilisation:.3} of the target {target}"
    );
    // Counting from hour 2 takes in the tail of a poll started in hour 1.
    assert!(utilisation <= 1.02, "{utilisation}");
    // The cost was learned: 33 requests a poll, shared evenly between the two sources.
    for name in ["proxy-fast", "proxy-slow"] {
        assert_eq!(
            gauge(&page, "mining_exporter_poll_cost_requests", name),
            33.0
        );
        assert_eq!(planned[name], planned["proxy-fast"], "an even split");
    }
    // What asks for less than it is granted keeps its interval.
    assert_eq!(planned["ourpool"], 60.0);
    assert_eq!(planned["luxor"], 60.0);

    println!(
        "simulated day: proxy {proxy_requests} requests (0 refused), {:.1} % of its target in hours 2-24; \
         ourpool {ourpool_requests}, luxor {luxor_requests}; busiest proxy minute {}, busiest ourpool hour {}",
        utilisation * 100.0,
        busiest(&proxy_times, MINUTE),
        busiest(&ourpool_times, HOUR),
    );
    for name in names {
        println!(
            "  {name}: planned every {} s, achieved {} s at the end, worst hourly deviation {:.1} %, cost {}",
            planned[name],
            gauge(
                &page,
                "mining_exporter_poll_interval_achieved_seconds",
                name
            ),
            worst[name] * 100.0,
            gauge(&page, "mining_exporter_poll_cost_requests", name),
        );
    }
    assert_eq!(
        sample(
            &page,
            "mining_exporter_budget_planned_use_ratio",
            &["proxy-key"]
        )
        .map(|r| (r * 100.0).round()),
        Some(85.0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_holds_every_request_back_until_then_and_the_source_recovers() {
    let proxy = proxy_of(20).await;
    let config = config_of(
        "127.0.0.1:0".parse().unwrap(),
        vec![non_vip(&proxy, "proxy", MINUTE)],
    );
    let stop = CancellationToken::new();
    let (exposition, task) = start(exporter(config), &stop);
    tokio::time::sleep(5 * MINUTE + Duration::from_secs(30)).await;
    let up = |page: &str| sample(page, "mining_exporter_source_up", &["source=\"proxy\""]);
    assert_eq!(up(&page(&exposition)), Some(1.0));

    // The pool blocks the key for five minutes and says so in Retry-After.
    let (before, _) = proxy.requests();
    let blocked_at = Instant::now();
    let block = 5 * MINUTE;
    proxy.refuse_for(block);
    tokio::time::sleep(block - Duration::from_secs(1)).await;
    let (during, refused) = proxy.requests();
    assert_eq!(
        (during - before, refused),
        (1, 1),
        "one request met the block; the exporter sent nothing more until it ended"
    );
    let blocked = page(&exposition);
    assert_eq!(up(&blocked), Some(0.0));
    assert_eq!(
        sample(
            &blocked,
            "mining_exporter_rate_limited_total",
            &["proxy-key"]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &blocked,
            "mining_exporter_poll_errors_total",
            &["source=\"proxy\"", "kind=\"rate_limited\""]
        ),
        Some(1.0)
    );

    tokio::time::sleep(2 * MINUTE).await;
    stop.cancel();
    task.await.unwrap();
    let recovered = page(&exposition);
    assert_eq!(up(&recovered), Some(1.0), "{recovered}");
    let times = proxy.request_times();
    // The first request after the block started was refused; the one after it is the retry.
    let resumed = times
        .iter()
        .filter(|t| **t >= blocked_at)
        .nth(1)
        .copied()
        .unwrap();
    assert!(
        resumed >= blocked_at + block,
        "nothing is sent before the block ends"
    );
    assert!(
        resumed < blocked_at + block + MINUTE,
        "the next poll goes out as soon as it ends"
    );
    assert_eq!(proxy.requests().1, 1, "no second 429");
    assert!(busiest(&times, MINUTE) <= 10);
}

/// Runs an exporter for 150 s (in the middle of its first poll of 33 requests, which the
/// 10-a-minute key spreads over three minutes), stops it and starts another at once, which
/// runs ten minutes. Both keep their state in one directory when `state` says so. Returns
/// when the pool saw each request, and how many it refused.
async fn restart_mid_window(state: bool) -> (Vec<Instant>, u64) {
    let proxy = long_list_proxy().await;
    let dir = tempfile::TempDir::new().unwrap();
    let build = || {
        let config = config_of(
            "127.0.0.1:0".parse().unwrap(),
            vec![non_vip(&proxy, "proxy", MINUTE)],
        );
        let budgets_at_start = if state {
            BudgetsAtStart::StateDir(dir.path().to_path_buf())
        } else {
            BudgetsAtStart::Empty
        };
        exporter_starting(config, budgets_at_start)
    };
    for runs_for in [Duration::from_secs(150), 10 * MINUTE] {
        let stop = CancellationToken::new();
        let (_, task) = start(build(), &stop);
        tokio::time::sleep(runs_for).await;
        stop.cancel();
        task.await.unwrap();
    }
    (proxy.request_times(), proxy.requests().1)
}

#[tokio::test(start_paused = true)]
async fn a_restart_mid_window_exceeds_no_window() {
    let (times, refused) = restart_mid_window(true).await;
    println!(
        "restart with --state-dir: {} requests, busiest minute {}, {refused} refused",
        times.len(),
        busiest(&times, MINUTE)
    );
    assert_eq!(refused, 0);
    assert_eq!(
        busiest(&times, MINUTE),
        10,
        "the key is used, and never past its limit"
    );
    assert!(times.len() > 60, "both runs polled: {}", times.len());

    // The same restart without the state file: the second run starts with an empty budget
    // and sends on top of the window the first run had just used. (The simulator's
    // X-RateLimit-Remaining then stops it after one request too many; a pool without such
    // headers would take a whole window's burst.)
    let (times, refused) = restart_mid_window(false).await;
    println!(
        "restart without: {} requests, busiest minute {}, {refused} refused",
        times.len(),
        busiest(&times, MINUTE)
    );
    assert!(
        busiest(&times, MINUTE) > 10,
        "without the state file the restart should have exceeded the window: busiest minute {}, {refused} refused",
        busiest(&times, MINUTE)
    );
}
