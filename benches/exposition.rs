//! What a large farm costs, at 1,000, 10,000 and 100,000 workers: rendering the page after a
//! poll, the bytes a render and a scrape allocate, `/metrics` latency (p50, p99; plain and
//! gzip; 1 and 8 concurrent scrapers over loopback), the bench process' RSS; what each
//! `worker_series` setting costs; for each pool, the requests and time of one full poll of
//! its simulator (every page); and the CPU an idle exporter uses between polls.
//!
//!     cargo bench --bench exposition
//!
//! Numbers are printed, not asserted: they belong in the README, not in a timed test. The
//! exporter's memory in its own process is `benches/memory.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, to_bytes};
use axum::http::Request;
use mining_exporter::Exporter;
use mining_exporter::config::RateWindow;
use mining_exporter::demo::{
    DEMO_INTERVAL, LuxbioOptions, LuxbioSimulator, LuxorOptions, LuxorSimulator, OurPoolOptions,
    OurPoolSimulator, UltimateProxyOptions, UltimateProxySimulator, config_of, demo_luxor,
    demo_proxy, demo_source, example_source,
};
use mining_exporter::exposition::Exposition;
use mining_exporter::metrics::*;
use mining_exporter::scheduler::Outcome;
use mining_exporter::snapshot::{Snapshot, Store};
use mining_exporter::sources::http_json::HttpJsonConfig;
use mining_exporter::sources::ourpool::OurPoolConfig;
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

/// Counts the bytes every allocation of this process asks for.
struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated while `f` runs (this thread and any other, so run it alone).
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATED.load(Ordering::Relaxed);
    let value = f();
    (value, ALLOCATED.load(Ordering::Relaxed) - before)
}

fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes / 1024)
}

/// A line of /proc/self/status in MiB (VmRSS: now; VmHWM: the peak).
fn status_mib(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or("n/a".into(), |kib| format!("{:.1} MiB", kib / 1024.0))
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
    let exposition = Arc::new(Exposition::new(store.clone(), Telemetry::new()));
    let renders = if workers >= 100_000 { 3 } else { 20 };
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
        rendered.text_len() as usize / 1024,
        rendered.gzip_len() / 1024
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
        store: store.clone(),
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
    store.record_success("bench", snapshot.clone(), Duration::ZERO, SystemTime::now());
    let ((), render_bytes) = allocated_by(|| exposition.refresh());
    let request = || {
        Request::get("/metrics")
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .unwrap()
    };
    let mut scrape_bytes = 0;
    for _ in 0..10 {
        let before = ALLOCATED.load(Ordering::Relaxed);
        let response = router.clone().oneshot(request()).await.unwrap();
        to_bytes(response.into_body(), usize::MAX).await.unwrap();
        scrape_bytes = ALLOCATED.load(Ordering::Relaxed) - before;
    }
    println!(
        "  allocated: {} a render after its poll, {} bytes a gzip scrape",
        kib(render_bytes),
        scrape_bytes
    );
    scrape_latency(router).await;
    println!(
        "  RSS: {} now, {} peak so far",
        status_mib("VmRSS:"),
        status_mib("VmHWM:")
    );
}

/// `/metrics` over loopback: p50 and p99 of `n` requests by each of `scrapers` clients.
async fn scrape_latency(router: axum::Router) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    for gzip in [false, true] {
        for scrapers in [1, 8] {
            let n = 200 / scrapers;
            let mut tasks = Vec::new();
            for _ in 0..scrapers {
                let url = url.clone();
                tasks.push(tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut took = Vec::with_capacity(n);
                    for _ in 0..n {
                        let mut request = client.get(&url);
                        if gzip {
                            request = request.header("accept-encoding", "gzip");
                        }
                        let started = Instant::now();
                        // Read and dropped a chunk at a time, as a scraper does: the time is
                        // the server's and the wire's, not this client's collecting.
                        let mut response = request.send().await.unwrap();
                        let mut received = 0;
                        while let Some(chunk) = response.chunk().await.unwrap() {
                            received += chunk.len();
                        }
                        took.push(started.elapsed());
                        assert!(received > 0);
                    }
                    took
                }));
            }
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.unwrap());
            }
            all.sort();
            let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
            println!(
                "  /metrics {} with {scrapers} scraper(s): p50 {:?}, p99 {:?}",
                if gzip { "gzip " } else { "plain" },
                at(0.5),
                at(0.99)
            );
        }
    }
    server.abort();
}

/// The pools with a simulator of their own.
#[derive(Clone, Copy)]
enum Pool {
    UltimateProxy,
    Ourpool,
    Luxor,
    /// config.example.toml's `luxbio-farm` block: the generic source, cursor pages of 100.
    HttpJsonLuxbio,
}

impl Pool {
    fn as_str(self) -> &'static str {
        match self {
            Pool::UltimateProxy => "ultimate_proxy",
            Pool::Ourpool => "ourpool",
            Pool::Luxor => "luxor",
            Pool::HttpJsonLuxbio => "http_json luxbio",
        }
    }
}

/// One pool's simulator with `workers` workers and no rate limit, and a source polling it.
async fn pool_under_test(
    pool: Pool,
    workers: usize,
    interval: Duration,
) -> (Exporter, Box<dyn Fn() -> u64>) {
    let unlimited = vec![RateWindow::new(1_000_000, Duration::from_secs(1))];
    let (mut source, mut budget, requests): (_, _, Box<dyn Fn() -> u64>) = match pool {
        Pool::UltimateProxy => {
            let sim = UltimateProxySimulator::start(UltimateProxyOptions::unlimited(workers))
                .await
                .unwrap();
            let (source, budget) =
                demo_source(demo_proxy(), "bench", sim.base_url(), &sim.token, interval);
            (source, budget, Box::new(move || sim.requests().0))
        }
        Pool::Ourpool => {
            let sim = unlimited_ourpool(workers).await;
            let settings = OurPoolConfig::settings(&sim.account());
            let (source, budget) =
                demo_source(settings, "bench", sim.base_url(), &sim.token, interval);
            (source, budget, Box::new(move || sim.requests().0))
        }
        Pool::Luxor => {
            let sim = LuxorSimulator::start(LuxorOptions::unlimited(workers))
                .await
                .unwrap();
            let (source, budget) =
                demo_source(demo_luxor(), "bench", sim.base_url(), &sim.token, interval);
            (source, budget, Box::new(move || sim.requests().0))
        }
        Pool::HttpJsonLuxbio => {
            let sim = LuxbioSimulator::start(LuxbioOptions {
                workers,
                per_minute: u32::MAX,
                lively: false,
                ..LuxbioOptions::default()
            })
            .await
            .unwrap();
            let (mut source, budget) =
                example_source("luxbio-farm", sim.base_url(), &sim.token, None).unwrap();
            source.name = "bench".to_string();
            // 100,000 workers are 1,000 pages, past the example's cap of 50.
            let mut settings = source
                .settings
                .as_any()
                .downcast_ref::<HttpJsonConfig>()
                .unwrap()
                .clone();
            for endpoint in &mut settings.endpoints {
                endpoint.max_pages = 2_000;
            }
            source.settings = mining_exporter::config::Settings(Arc::new(settings));
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
        Pool::UltimateProxy,
        Pool::Ourpool,
        Pool::Luxor,
        Pool::HttpJsonLuxbio,
    ] {
        for workers in [1, 100, 10_000, 100_000] {
            let (exporter, requests) = pool_under_test(pool, workers, DEMO_INTERVAL).await;
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
    for series in [
        WorkerSeries::All,
        WorkerSeries::Essential,
        WorkerSeries::None,
    ] {
        let mut snapshot = synthetic(workers);
        snapshot.limit_workers(series, None);
        let count = snapshot.series_count();
        let store = Arc::new(Store::new([("ultimate_proxy", "bench")]));
        store.record_success("bench", snapshot, Duration::ZERO, SystemTime::now());
        let exposition = Exposition::new(store, Telemetry::new());
        exposition.refresh();
        let page = exposition.current();
        println!(
            "  {series:?}: {count} series, {} KiB text, {} KiB gzip, {} bytes a worker",
            page.text_len() as usize / 1024,
            page.gzip_len() / 1024,
            page.text_len() as usize / workers
        );
    }
}

/// CPU seconds this process has used (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// An exporter with one 10,000-worker source polled every minute: the CPU it uses between
/// polls, the simulator's share included.
async fn idle_cpu() {
    let (exporter, _) = pool_under_test(Pool::Ourpool, 10_000, Duration::from_secs(60)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(exporter.serve(listener, shutdown.clone()));
    // Let the first poll finish, then watch a quiet stretch.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let window = Duration::from_secs(10);
    let before = cpu_seconds();
    tokio::time::sleep(window).await;
    let used = cpu_seconds() - before;
    println!(
        "idle between polls (10,000 workers, polled every minute): {:.3} % of a core",
        100.0 * used / window.as_secs_f64()
    );
    shutdown.cancel();
    let _ = serving.await;
}

/// An OurPool simulator with `workers` quiet workers and no rate limit.
async fn unlimited_ourpool(workers: usize) -> OurPoolSimulator {
    OurPoolSimulator::start(OurPoolOptions::unlimited(workers))
        .await
        .unwrap()
}

fn main() {
    // The allocator as the binary sets it, so that the timings are the binary's.
    mining_exporter::allocator::tune();
    mining_exporter::client::install_crypto_provider();
    // `cargo bench --bench exposition -- many-sources` runs that part alone.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        if only.iter().any(|a| a == "many-sources") {
            many_sources().await;
            return;
        }
        for workers in [1_000, 10_000, 100_000] {
            bench(workers).await;
        }
        worker_series_costs();
        poll_costs().await;
        idle_cpu().await;
        basic_auth_costs().await;
        many_sources().await;
    });
}

/// A source with one worker that answers at once, noting when each poll started: the
/// exporter's own cost of a poll, with no pool behind it.
struct OneWorker {
    index: usize,
    starts: Arc<std::sync::Mutex<Vec<(usize, Instant)>>>,
}

impl mining_exporter::sources::Source for OneWorker {
    fn poll<'a>(
        &'a self,
        _: &'a mining_exporter::client::Upstream,
    ) -> mining_exporter::sources::PollFuture<'a> {
        self.starts
            .lock()
            .unwrap()
            .push((self.index, Instant::now()));
        let mut s = Snapshot::new();
        s.set(&WORKER_UP, &["farm", "rig"], 1.0);
        s.set(
            &WORKER_HASHRATE,
            &["farm", "rig", "sha256"],
            1e14 + self.index as f64,
        );
        Box::pin(async move { Ok(s) })
    }
}

/// Many sources of one worker each: what one source's poll costs the page (the store and
/// the render it triggers) at 1,000 and 10,000 sources, and whether every poll of a real
/// exporter runs on time at 1,000 sources every 10 s and 10,000 every minute.
async fn many_sources() {
    for sources in [1_000usize, 10_000] {
        let names: Vec<String> = (0..sources).map(|i| format!("s{i:05}")).collect();
        let store = Arc::new(Store::new(names.iter().map(|n| ("ourpool", n.as_str()))));
        let telemetry = Telemetry::new();
        let handles: Vec<_> = names
            .iter()
            .map(|n| telemetry.source("ourpool", n, false))
            .collect();
        let one_worker = |i: usize| {
            let mut s = Snapshot::new();
            s.set(&WORKER_UP, &["farm", "rig"], 1.0);
            s.set(
                &WORKER_HASHRATE,
                &["farm", "rig", "sha256"],
                1e14 + i as f64,
            );
            s
        };
        for (i, name) in names.iter().enumerate() {
            store.record_success(name, one_worker(i), Duration::ZERO, SystemTime::now());
            handles[i].request_answered("/api/v1/accounts/{account}/btc/rewards-stats", "200");
        }
        let exposition = Exposition::new(store.clone(), telemetry.clone());
        exposition.refresh();
        let polls = if sources >= 10_000 { 20 } else { 100 };
        let started = Instant::now();
        for k in 0..polls {
            let i = (k * 7919) % sources;
            handles[i].request_answered("/api/v1/accounts/{account}/btc/rewards-stats", "200");
            store.record_success(
                &names[i],
                one_worker(i + k),
                Duration::ZERO,
                SystemTime::now(),
            );
            handles[i].poll_succeeded(2, Duration::ZERO);
            exposition.refresh();
        }
        let page = exposition.current();
        println!(
            "{sources} sources of one worker: a poll to the page costs {} ({} KiB text, {} KiB gzip)",
            mean(started.elapsed(), polls as u32),
            page.text_len() / 1024,
            page.gzip_len() / 1024
        );
    }
    for (sources, every, runs_for) in [
        (1_000usize, Duration::from_secs(10), Duration::from_secs(45)),
        (10_000, Duration::from_secs(60), Duration::from_secs(200)),
    ] {
        on_time(sources, every, runs_for).await;
    }
}

/// An exporter of `sources` one-worker sources polled `every`, run for `runs_for`: how far
/// each poll started from its planned time after the one before.
async fn on_time(sources: usize, every: Duration, runs_for: Duration) {
    let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut pairs = Vec::new();
    for i in 0..sources {
        let (mut source, mut budget) = demo_source(
            OurPoolConfig::settings("farm"),
            &format!("s{i:05}"),
            "http://127.0.0.1:1".to_string(),
            "bench-token",
            every,
        );
        budget.name = "all".into();
        budget.limits = vec![RateWindow::new(1_000_000_000, Duration::from_secs(60))];
        source.budget = budget.name.clone();
        pairs.push((source, budget));
    }
    let config = config_of("127.0.0.1:0".parse().unwrap(), pairs);
    let index: std::collections::BTreeMap<String, usize> = config
        .sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.clone(), i))
        .collect();
    let recorded = starts.clone();
    let exporter = Exporter::with_options(
        config,
        mining_exporter::ExporterOptions {
            build_source: Box::new(move |source| {
                Box::new(OneWorker {
                    index: index.get(&source.name).copied().unwrap_or(0),
                    starts: recorded.clone(),
                })
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let cpu_before = cpu_seconds();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(exporter.serve(listener, shutdown.clone()));
    tokio::time::sleep(runs_for).await;
    shutdown.cancel();
    let _ = serving.await;
    let cpu = cpu_seconds() - cpu_before;
    let mut by_source: Vec<Vec<Instant>> = vec![Vec::new(); sources];
    for (i, at) in starts.lock().unwrap().iter() {
        by_source[*i].push(*at);
    }
    let mut late: Vec<f64> = by_source
        .iter()
        .flat_map(|times| {
            times
                .windows(2)
                .map(|w| (w[1] - w[0]).as_secs_f64() - every.as_secs_f64())
        })
        .collect();
    late.sort_by(f64::total_cmp);
    let polls: usize = by_source.iter().map(Vec::len).sum();
    let quantile = |q: f64| {
        late.get(((late.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{sources} sources every {}: {polls} polls in {}; a poll after the one before, late by p50 {:.3} s, p99 {:.3} s, worst {:.3} s; {:.1} s CPU ({:.0} % of a core)",
        humantime::format_duration(every),
        humantime::format_duration(runs_for),
        quantile(0.5),
        quantile(0.99),
        late.last().copied().unwrap_or(0.0),
        cpu,
        100.0 * cpu / runs_for.as_secs_f64()
    );
}

/// A scrape behind basic auth: with credentials verified before (cached), and with a wrong
/// password (a full bcrypt check at the default cost of 10, every time).
async fn basic_auth_costs() {
    use base64::Engine;
    use mining_exporter::web::{Users, require_basic_auth};
    let hash = bcrypt::hash("right", bcrypt::DEFAULT_COST).unwrap();
    let users = Arc::new(
        Users::new(std::collections::BTreeMap::from([(
            "prometheus".to_string(),
            hash,
        )]))
        .unwrap(),
    );
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(|| async { "ok" }))
        .layer(axum::middleware::from_fn_with_state(
            users.clone(),
            require_basic_auth,
        ));
    let ask = |password: &str| {
        let value =
            base64::engine::general_purpose::STANDARD.encode(format!("prometheus:{password}"));
        Request::builder()
            .uri("/metrics")
            .header("authorization", format!("Basic {value}"))
            .body(Body::empty())
            .unwrap()
    };
    let first = Instant::now();
    app.clone().oneshot(ask("right")).await.unwrap();
    let first = first.elapsed();
    let n = 2_000u32;
    let started = Instant::now();
    for _ in 0..n {
        app.clone().oneshot(ask("right")).await.unwrap();
    }
    let cached = started.elapsed();
    let wrong_n = 5u32;
    let started = Instant::now();
    for _ in 0..wrong_n {
        app.clone().oneshot(ask("wrong")).await.unwrap();
    }
    let wrong = started.elapsed();
    println!(
        "basic auth (bcrypt cost {}): first scrape {}, cached {} a scrape ({n}), wrong password {} a try ({wrong_n}); bcrypt checks {}",
        bcrypt::DEFAULT_COST,
        mean(first, 1),
        mean(cached, n),
        mean(wrong, wrong_n),
        users.bcrypt_checks()
    );
}
