//! What a large farm costs: rendering the page once per poll and serving one scrape at 1,000
//! and 10,000 workers; and, for each pool, the requests and time of one full poll of its
//! simulator (every page) at 1, 100 and 10,000 workers.
//!
//!     cargo bench --bench exposition
//!
//! Numbers are printed, not asserted: they belong in the README, not in a timed test.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, to_bytes};
use axum::http::Request;
use mining_exporter::Exporter;
use mining_exporter::budget::Budgets;
use mining_exporter::config::RateWindow;
use mining_exporter::demo::{
    DEMO_INTERVAL, LuxorOptions, LuxorSimulator, OurPoolOptions, OurPoolSimulator, Simulator,
    SimulatorOptions, config_of, demo_source,
};
use mining_exporter::exposition::Exposition;
use mining_exporter::metrics::*;
use mining_exporter::scheduler::Outcome;
use mining_exporter::snapshot::{Snapshot, Store};
use mining_exporter::sources::SourceKind;
use mining_exporter::telemetry::Telemetry;
use tower::ServiceExt;

fn synthetic(workers: usize) -> Snapshot {
    let mut s = Snapshot::new();
    for i in 0..workers {
        let name = format!("rig{i:05}");
        let labels = ["farm", name.as_str()];
        s.set(&WORKER_UP, &labels, 1.0);
        s.set(
            &WORKER_HASHRATE,
            &["farm", &name, "randomx"],
            8000.0 + i as f64,
        );
        for (window, h) in [("1h", 7990.0), ("24h", 7980.0)] {
            s.set(
                &WORKER_HASHRATE_AVERAGE,
                &["farm", &name, "randomx", window],
                h,
            );
        }
        s.set(&WORKER_REJECTED, &labels, 0.001);
        s.set(&WORKER_LAST_SHARE, &labels, 1.7e9 + i as f64);
    }
    s
}

fn mean(total: Duration, n: u32) -> String {
    let each = total / n;
    if each >= Duration::from_millis(1) {
        format!("{:.2} ms", each.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} µs", each.as_secs_f64() * 1e6)
    }
}

fn rss_mib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or("n/a".into(), |kib| format!("{:.1} MiB", kib / 1024.0))
}

async fn bench(workers: usize) {
    println!("{workers} workers");

    let store = Arc::new(Store::new([("ultimate_proxy", "bench")]));
    store.record_success(
        "bench",
        synthetic(workers),
        Duration::ZERO,
        SystemTime::now(),
    );
    let exposition = Arc::new(Exposition::new(
        store.clone(),
        Budgets::new(),
        Telemetry::new(),
    ));
    let renders = 20;
    // After this source's poll: a new snapshot, so its text is written again.
    let snapshot = synthetic(workers);
    let mut spent = Duration::ZERO;
    for _ in 0..renders {
        store.record_success("bench", snapshot.clone(), Duration::ZERO, SystemTime::now());
        let started = Instant::now();
        exposition.refresh();
        spent += started.elapsed();
    }
    let rendered = exposition.current();
    println!(
        "  render + gzip after its poll: {} ({} KiB text, {} KiB gzip)",
        mean(spent, renders),
        rendered.text.len() / 1024,
        rendered.gzip.len() / 1024
    );
    // After another source's poll: this source's text is reused as it is.
    let started = Instant::now();
    for _ in 0..renders {
        exposition.refresh();
    }
    println!(
        "  render + gzip after another source's poll: {}",
        mean(started.elapsed(), renders)
    );

    let router = mining_exporter::server::router(mining_exporter::server::AppState {
        exposition: exposition.clone(),
        store,
        reloads: None,
    });
    let scrapes = 2000;
    let started = Instant::now();
    for _ in 0..scrapes {
        let request = Request::get("/metrics")
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        to_bytes(response.into_body(), usize::MAX).await.unwrap();
    }
    println!(
        "  one gzip scrape (router, no network): {}",
        mean(started.elapsed(), scrapes)
    );

    println!("  process RSS after: {}", rss_mib());
}

/// One pool's simulator with `workers` workers and no rate limit, and a source polling it.
async fn pool_under_test(pool: SourceKind, workers: usize) -> (Exporter, Box<dyn Fn() -> u64>) {
    let unlimited = vec![RateWindow::new(1_000_000, Duration::from_secs(1))];
    let (mut source, mut budget, requests): (_, _, Box<dyn Fn() -> u64>) = match pool {
        SourceKind::UltimateProxy => {
            let sim = Simulator::start(SimulatorOptions {
                workers,
                limit_per_minute: u32::MAX,
                outages: false,
                ..SimulatorOptions::default()
            })
            .await
            .unwrap();
            let (source, budget) =
                demo_source(pool, "bench", sim.base_url(), &sim.token, DEMO_INTERVAL);
            (source, budget, Box::new(move || sim.requests().0))
        }
        SourceKind::Ourpool => {
            let sim = OurPoolSimulator::start(OurPoolOptions {
                workers,
                per_minute: u32::MAX,
                per_hour: u32::MAX,
                lively: false,
                ..OurPoolOptions::default()
            })
            .await
            .unwrap();
            let (mut source, budget) =
                demo_source(pool, "bench", sim.base_url(), &sim.token, DEMO_INTERVAL);
            source.account = sim.account();
            (source, budget, Box::new(move || sim.requests().0))
        }
        SourceKind::Luxor => {
            let sim = LuxorSimulator::start(LuxorOptions {
                subaccounts: vec![("main".to_string(), workers)],
                key_bucket: (1_000_000, 1e6),
                lively: false,
                ..LuxorOptions::default()
            })
            .await
            .unwrap();
            let (source, budget) =
                demo_source(pool, "bench", sim.base_url(), &sim.token, DEMO_INTERVAL);
            (source, budget, Box::new(move || sim.requests().0))
        }
    };
    budget.limits = unlimited;
    source.budget = budget.name.clone();
    let config = config_of("127.0.0.1:0".parse().unwrap(), vec![(source, budget)]);
    (Exporter::new(config).unwrap(), requests)
}

/// Requests and time one poll of each pool costs, over loopback against its simulator.
async fn poll_costs() {
    println!("full poll over loopback (requests, decode, snapshot, render)");
    for pool in [
        SourceKind::UltimateProxy,
        SourceKind::Ourpool,
        SourceKind::Luxor,
    ] {
        for workers in [1, 100, 10_000] {
            let (exporter, requests) = pool_under_test(pool, workers).await;
            // The first poll also reads what is polled slowly (Luxor's workspace).
            let outcome = exporter.poll_once("bench").await.unwrap();
            assert!(matches!(outcome, Outcome::Success { .. }), "{outcome:?}");
            let first = requests();
            let polls = 3;
            let started = Instant::now();
            for _ in 0..polls {
                let outcome = exporter.poll_once("bench").await.unwrap();
                assert!(matches!(outcome, Outcome::Success { .. }), "{outcome:?}");
            }
            let took = started.elapsed();
            println!(
                "  {:<15} {workers:>6} workers: {} requests a poll (first poll {first}), {} a poll, RSS {}",
                pool.as_str(),
                (requests() - first) / u64::from(polls),
                mean(took, polls),
                rss_mib()
            );
        }
    }
}

/// What each `worker_series` setting costs at 10,000 workers of the synthetic farm.
fn worker_series_costs() {
    use mining_exporter::config::WorkerSeries;
    let workers = 10_000;
    println!("worker_series at {workers} workers (pool series only)");
    for series in [WorkerSeries::All, WorkerSeries::Essential, WorkerSeries::None] {
        let mut snapshot = synthetic(workers);
        snapshot.limit_workers(series, None);
        let count = snapshot.series_count();
        let store = Arc::new(Store::new([("ultimate_proxy", "bench")]));
        store.record_success("bench", snapshot, Duration::ZERO, SystemTime::now());
        let exposition = Exposition::new(store, Budgets::new(), Telemetry::new());
        exposition.refresh();
        let page = exposition.current();
        println!(
            "  {series:?}: {count} series, {} KiB text, {} KiB gzip, {} bytes a worker",
            page.text.len() / 1024,
            page.gzip.len() / 1024,
            page.text.len() / workers
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for workers in [1_000, 10_000] {
            bench(workers).await;
        }
        worker_series_costs();
        poll_costs().await;
    });
}
