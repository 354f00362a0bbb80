//! An Ultimate Proxy API simulator on 127.0.0.1, for the demo, the tests and the benchmarks.
//! It follows upstream-apis.md §2: X-API-Key or Bearer auth, `{"error": "..."}` bodies, a
//! fixed 60-second window per user with X-RateLimit-* headers on every answer and
//! Retry-After on a 429, paginated workers (limit at most 100), overview and hashrate series.
//! Workers' hashrates wander around their nominal rate; now and then one goes offline.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WINDOW: Duration = Duration::from_secs(60);
const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 20;
/// One simulated second per step; a long pause between requests is not replayed in full.
const MAX_STEPS_PER_REQUEST: u64 = 600;

#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    pub workers: usize,
    /// Requests per minute per user: 60 (VIP) or 10 (non-VIP).
    pub limit_per_minute: u32,
    pub token: String,
    pub seed: u64,
    /// Whether workers drop offline now and then by themselves.
    pub outages: bool,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            workers: 20,
            limit_per_minute: 60,
            token: format!("up_k_demo{:016x}", fastrand::u64(..)),
            seed: fastrand::u64(..),
            outages: true,
        }
    }
}

#[derive(Debug)]
struct SimWorker {
    id: String,
    name: String,
    algorithm: &'static str,
    nominal: f64,
    hashrate: f64,
    avg_1h: f64,
    avg_24h: f64,
    offline_until: Option<Instant>,
    accepted: u64,
    rejected: u64,
    last_share: SystemTime,
    connected_at: SystemTime,
}

#[derive(Debug)]
struct Sim {
    options: SimulatorOptions,
    rng: fastrand::Rng,
    workers: Vec<SimWorker>,
    last_step: Instant,
    /// Per-minute account totals, newest last, for the hashrate series.
    history: VecDeque<(u64, f64)>,
    steps: u64,
    window_start: Instant,
    window_started_unix: u64,
    window_count: u32,
    requests: u64,
    rate_limited: u64,
    fail_next: Vec<u16>,
}

impl Sim {
    fn new(options: SimulatorOptions) -> Self {
        let mut rng = fastrand::Rng::with_seed(options.seed);
        let now = SystemTime::now();
        let workers = (0..options.workers)
            .map(|i| {
                // Mostly RandomX CPUs (kH/s), a few KawPow GPUs (MH/s), as a proxy would see.
                let (algorithm, nominal) = if i % 5 == 4 {
                    ("kawpow", 25e6 + rng.f64() * 20e6)
                } else {
                    ("randomx", 6e3 + rng.f64() * 10e3)
                };
                SimWorker {
                    id: format!("65b2f0c1e4b0a1b2c3d4{i:04x}"),
                    name: format!("rig{:02}", i + 1),
                    algorithm,
                    nominal,
                    hashrate: nominal,
                    avg_1h: nominal * (0.98 + rng.f64() * 0.04),
                    avg_24h: nominal * (0.97 + rng.f64() * 0.04),
                    offline_until: None,
                    accepted: 10_000 + rng.u64(..5_000),
                    rejected: rng.u64(..20),
                    last_share: now,
                    connected_at: now - Duration::from_secs(3600 + rng.u64(..86_400)),
                }
            })
            .collect();
        Sim {
            options,
            rng,
            workers,
            last_step: Instant::now(),
            history: VecDeque::new(),
            steps: 0,
            window_start: Instant::now(),
            window_started_unix: unix_now(),
            window_count: 0,
            requests: 0,
            rate_limited: 0,
            fail_next: Vec::new(),
        }
    }

    /// Moves the farm forward to now, one simulated second at a time.
    fn advance(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_step).as_secs();
        if elapsed == 0 {
            return;
        }
        self.last_step += Duration::from_secs(elapsed);
        let wall = SystemTime::now();
        for _ in 0..elapsed.min(MAX_STEPS_PER_REQUEST) {
            self.step(now, wall);
        }
    }

    fn step(&mut self, now: Instant, wall: SystemTime) {
        self.steps += 1;
        let any_offline = self.workers.iter().any(|w| w.offline_until.is_some());
        if self.options.outages
            && !any_offline
            && !self.workers.is_empty()
            && self.rng.f64() < 1.0 / 60.0
        {
            let i = self.rng.usize(..self.workers.len());
            self.workers[i].offline_until =
                Some(now + Duration::from_secs(30 + self.rng.u64(..60)));
        }
        for w in &mut self.workers {
            if w.offline_until.is_some_and(|t| t <= now) {
                w.offline_until = None;
                w.connected_at = wall;
            }
            if w.offline_until.is_some() {
                w.hashrate = 0.0;
            } else {
                // Mean-reverting walk: a few percent of noise around the nominal rate.
                let noise = (self.rng.f64() * 2.0 - 1.0) * 0.03 * w.nominal;
                w.hashrate = (w.hashrate + 0.2 * (w.nominal - w.hashrate) + noise).max(0.0);
                w.accepted += 1 + self.rng.u64(..3);
                if self.rng.f64() < 0.002 {
                    w.rejected += 1;
                }
                w.last_share = wall;
            }
            w.avg_1h += (w.hashrate - w.avg_1h) / 3600.0;
            w.avg_24h += (w.hashrate - w.avg_24h) / 86_400.0;
        }
        if self.steps % 60 == 0 {
            let total = self.total_hashrate();
            self.history.push_back((unix_now(), total));
            while self.history.len() > 60 {
                self.history.pop_front();
            }
        }
    }

    fn total_hashrate(&self) -> f64 {
        self.workers.iter().map(|w| w.hashrate).sum()
    }

    fn worker_json(w: &SimWorker) -> Value {
        json!({
            "_id": w.id,
            "name": w.name,
            "algorithm": w.algorithm,
            "status": if w.offline_until.is_some() { "offline" } else { "online" },
            "hashrate": w.hashrate.round() as u64,
            "profile_id": format!("profile-{}", w.algorithm),
            "profile_name": w.algorithm.to_uppercase(),
            "hashrate_1h": w.avg_1h.round() as u64,
            "hashrate_24h": w.avg_24h.round() as u64,
            "accepted_shares": w.accepted,
            "rejected_shares": w.rejected,
            "last_share_at": iso(w.last_share),
            "connected_at": iso(w.connected_at),
            "pool_id": format!("pool-{}", w.algorithm),
        })
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

type Shared = Arc<Mutex<Sim>>;

/// A running simulator; stops when dropped.
#[derive(Debug)]
pub struct Simulator {
    pub addr: SocketAddr,
    pub token: String,
    sim: Shared,
    stop: CancellationToken,
}

impl Simulator {
    pub async fn start(options: SimulatorOptions) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let token = options.token.clone();
        let sim: Shared = Arc::new(Mutex::new(Sim::new(options)));
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/v1/overview", get(overview))
            .route("/v1/workers", get(workers))
            .route("/v1/workers/hashrate", get(hashrate))
            .route("/v1/workers/{id}", get(worker))
            .with_state(sim.clone());
        let until = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(until)
                .await;
        });
        Ok(Simulator {
            addr,
            token,
            sim,
            stop,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Sim) -> R) -> R {
        f(&mut self.sim.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn worker_names(&self) -> Vec<String> {
        self.with(|s| s.workers.iter().map(|w| w.name.clone()).collect())
    }

    /// Removes a worker as if deleted in the proxy's UI; true if it existed.
    pub fn remove_worker(&self, name: &str) -> bool {
        self.with(|s| {
            let before = s.workers.len();
            s.workers.retain(|w| w.name != name);
            s.workers.len() < before
        })
    }

    /// Takes a worker offline for `for_how_long`.
    pub fn take_offline(&self, name: &str, for_how_long: Duration) {
        self.with(|s| {
            for w in s.workers.iter_mut().filter(|w| w.name == name) {
                w.offline_until = Some(Instant::now() + for_how_long);
                w.hashrate = 0.0;
            }
        })
    }

    /// The next requests (after auth and rate limit) answer these statuses, in order.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.with(|s| s.fail_next.extend_from_slice(statuses))
    }

    /// Requests received, and how many of them got a 429.
    pub fn requests(&self) -> (u64, u64) {
        self.with(|s| (s.requests, s.rate_limited))
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// An answer in the API's error shape `{"error": "..."}`, with the rate-limit headers when
/// the request got that far.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: &'static str,
    headers: Option<Box<HeaderMap>>,
}

fn error(status: StatusCode, message: &'static str) -> ApiError {
    ApiError {
        status,
        message,
        headers: None,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = (self.status, Json(json!({ "error": self.message })));
        match self.headers {
            Some(headers) => (*headers, body).into_response(),
            None => body.into_response(),
        }
    }
}

/// Auth, the per-user window and injected failures, shared by every route. On success returns
/// the rate-limit headers the answer carries.
fn gate(sim: &mut Sim, headers: &HeaderMap) -> Result<HeaderMap, ApiError> {
    sim.requests += 1;
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_string)
        });
    if key.as_deref() != Some(sim.options.token.as_str()) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Invalid or missing API key",
        ));
    }
    let now = Instant::now();
    if now.duration_since(sim.window_start) >= WINDOW {
        sim.window_start = now;
        sim.window_started_unix = unix_now();
        sim.window_count = 0;
    }
    sim.window_count += 1;
    let limit = sim.options.limit_per_minute;
    let reset = sim.window_started_unix + WINDOW.as_secs();
    let mut rate = HeaderMap::new();
    let header = |v: String| HeaderValue::from_str(&v).expect("digits are a valid header");
    rate.insert("x-ratelimit-limit", header(limit.to_string()));
    rate.insert(
        "x-ratelimit-remaining",
        header(limit.saturating_sub(sim.window_count).to_string()),
    );
    rate.insert("x-ratelimit-reset", header(reset.to_string()));
    if sim.window_count > limit {
        sim.rate_limited += 1;
        let wait = reset.saturating_sub(unix_now()).max(1);
        rate.insert("retry-after", header(wait.to_string()));
        return Err(ApiError {
            headers: Some(Box::new(rate)),
            ..error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
        });
    }
    if !sim.fail_next.is_empty() {
        let status = sim.fail_next.remove(0);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = status.canonical_reason().unwrap_or("Internal server error");
        return Err(ApiError {
            headers: Some(Box::new(rate)),
            ..error(status, message)
        });
    }
    sim.advance();
    Ok(rate)
}

fn answer(
    sim: &Shared,
    headers: &HeaderMap,
    body: impl FnOnce(&Sim) -> Result<Value, ApiError>,
) -> Response {
    let mut sim = sim.lock().unwrap_or_else(|e| e.into_inner());
    match gate(&mut sim, headers) {
        Err(rejected) => rejected.into_response(),
        Ok(rate) => match body(&sim) {
            Ok(value) => (rate, Json(value)).into_response(),
            Err(e) => (rate, e).into_response(),
        },
    }
}

async fn overview(State(sim): State<Shared>, headers: HeaderMap) -> Response {
    answer(&sim, &headers, |s| {
        let online = s
            .workers
            .iter()
            .filter(|w| w.offline_until.is_none())
            .count();
        let mut by_algorithm: Vec<Value> = Vec::new();
        for algorithm in ["randomx", "kawpow"] {
            let of = || s.workers.iter().filter(move |w| w.algorithm == algorithm);
            by_algorithm.push(json!({
                "algorithm": algorithm,
                "workers_online": of().filter(|w| w.offline_until.is_none()).count(),
                "hashrate": of().map(|w| w.hashrate).sum::<f64>(),
            }));
        }
        Ok(json!({
            "workers": {"total": s.workers.len(), "online": online, "offline": s.workers.len() - online},
            "pools": {"total": 2, "active": 2},
            "profiles": {"total": 2},
            "hashrate": {
                "current": s.total_hashrate(),
                "avg_1h": s.workers.iter().map(|w| w.avg_1h).sum::<f64>(),
                "avg_24h": s.workers.iter().map(|w| w.avg_24h).sum::<f64>(),
            },
            "by_algorithm": by_algorithm,
            "shares": {
                "accepted_24h": s.workers.iter().map(|w| w.accepted).sum::<u64>(),
                "rejected_24h": s.workers.iter().map(|w| w.rejected).sum::<u64>(),
            },
            "is_vip": s.options.limit_per_minute >= 60,
        }))
    })
}

#[derive(Debug, Deserialize)]
struct WorkersQuery {
    page: Option<usize>,
    limit: Option<usize>,
    algorithm: Option<String>,
    status: Option<String>,
}

async fn workers(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<WorkersQuery>,
) -> Response {
    answer(&sim, &headers, |s| {
        let page = q.page.unwrap_or(1);
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if page == 0 || limit == 0 {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "page and limit must be at least 1",
            ));
        }
        let limit = limit.min(MAX_LIMIT);
        let matching: Vec<&SimWorker> = s
            .workers
            .iter()
            .filter(|w| q.algorithm.as_deref().is_none_or(|a| a == w.algorithm))
            .filter(|w| {
                q.status
                    .as_deref()
                    .is_none_or(|st| (st == "online") == w.offline_until.is_none())
            })
            .collect();
        let total = matching.len();
        let data: Vec<Value> = matching
            .into_iter()
            .skip((page - 1) * limit)
            .take(limit)
            .map(Sim::worker_json)
            .collect();
        Ok(json!({
            "data": data,
            "pagination": {"page": page, "limit": limit, "total": total, "total_pages": total.div_ceil(limit).max(1)},
        }))
    })
}

#[derive(Debug, Deserialize)]
struct SeriesQuery {
    #[serde(rename = "timeRange")]
    time_range: Option<String>,
}

async fn hashrate(
    State(sim): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<SeriesQuery>,
) -> Response {
    answer(&sim, &headers, |s| {
        let (hours, granularity) = match q.time_range.as_deref().unwrap_or("24h") {
            "1h" => (1, 60),
            "6h" => (6, 300),
            "24h" => (24, 900),
            "7d" => (168, 3600),
            "30d" => (720, 14400),
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "timeRange must be one of 1h, 6h, 24h, 7d, 30d",
                ));
            }
        };
        let data: Vec<Value> = s
            .history
            .iter()
            .map(|(t, h)| json!({"timestamp": t, "hashrate": h}))
            .collect();
        let current = s.total_hashrate();
        let (avg, peak) = if s.history.is_empty() {
            (s.workers.iter().map(|w| w.avg_1h).sum::<f64>(), current)
        } else {
            let values = s.history.iter().map(|(_, h)| *h);
            let n = s.history.len() as f64;
            (
                values.clone().sum::<f64>() / n,
                values.fold(current, f64::max),
            )
        };
        Ok(json!({
            "hours": hours,
            "granularity": granularity,
            "data": data,
            "stats": {"avg_hashrate": avg, "peak_hashrate": peak},
        }))
    })
}

async fn worker(State(sim): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    answer(&sim, &headers, |s| {
        s.workers
            .iter()
            .find(|w| w.id == id)
            .map(Sim::worker_json)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "Worker not found"))
    })
}
