//! An Ultimate Proxy API simulator on 127.0.0.1, for the demo, the tests and the benchmarks.
//! It follows ultimate-proxy.com/api-docs: X-API-Key or Bearer auth, `{"error": "..."}` bodies, a
//! fixed 60-second window per user with X-RateLimit-* headers on every answer and
//! Retry-After on a 429, paginated workers (limit at most 100), overview and hashrate series.
//! Workers' hashrates wander around their nominal rate; now and then one goes offline.
//! Series longer than an hour, and each worker's, come from `demo::history`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::farm::{Farm, FarmWorker, iso, unix_now};
use super::harness::{Counted, Counters, FixedWindow, Running, Shared, lock};
use super::history;

const WINDOW: Duration = Duration::from_secs(60);
const MAX_LIMIT: usize = 100;
const DEFAULT_LIMIT: usize = 20;

#[derive(Debug, Clone)]
pub struct UltimateProxyOptions {
    pub workers: usize,
    /// Requests per minute per user: 60 (VIP) or 10 (non-VIP).
    pub limit_per_minute: u32,
    pub token: String,
    pub seed: u64,
    /// Whether workers drop offline, leave and join by themselves.
    pub outages: bool,
    /// The key's scopes; a route needing another answers 403. A "dashboard-only" key has
    /// just `dashboard:read`.
    pub scopes: Vec<&'static str>,
}

/// Every scope the exporter's requests need.
pub const READ_SCOPES: [&str; 2] = ["dashboard:read", "workers:read"];

impl Default for UltimateProxyOptions {
    fn default() -> Self {
        UltimateProxyOptions {
            workers: 20,
            limit_per_minute: 60,
            token: format!("up_k_demo{:016x}", fastrand::u64(..)),
            seed: fastrand::u64(..),
            outages: true,
            scopes: READ_SCOPES.to_vec(),
        }
    }
}

impl UltimateProxyOptions {
    /// `workers` steady workers and no rate limit: the farm the benches measure.
    pub fn unlimited(workers: usize) -> Self {
        UltimateProxyOptions {
            workers,
            limit_per_minute: u32::MAX,
            outages: false,
            ..UltimateProxyOptions::default()
        }
    }
}

/// Mostly RandomX CPUs (kH/s), a few KawPow GPUs (MH/s), as a proxy would see them.
fn proxy_rig(rng: &mut fastrand::Rng, serial: u32) -> (&'static str, f64) {
    if serial % 5 == 4 {
        ("kawpow", 25e6 + rng.f64() * 20e6)
    } else {
        ("randomx", 6e3 + rng.f64() * 10e3)
    }
}

#[derive(Debug)]
pub struct UltimateProxySim {
    options: UltimateProxyOptions,
    farm: Farm,
    /// What the long series draw around: each algorithm's nominal rate at the start.
    nominal: BTreeMap<&'static str, f64>,
    window: FixedWindow,
    counters: Counters,
}

impl Counted for UltimateProxySim {
    fn counters(&mut self) -> &mut Counters {
        &mut self.counters
    }
}

/// A MongoDB-style id, as the proxy's API shows them.
fn worker_id(w: &FarmWorker) -> String {
    format!("65b2f0c1e4b0a1b2c3d4{:04x}", w.serial)
}

impl UltimateProxySim {
    fn worker_json(w: &FarmWorker) -> Value {
        json!({
            "_id": worker_id(w),
            "name": w.name,
            "algorithm": w.tag,
            "status": if w.online() { "online" } else { "offline" },
            "hashrate": w.hashrate.round() as u64,
            "profile_id": format!("profile-{}", w.tag),
            "profile_name": w.tag.to_uppercase(),
            "hashrate_1h": w.avg_1h.round() as u64,
            "hashrate_24h": w.avg_24h.round() as u64,
            "accepted_shares": w.accepted,
            "rejected_shares": w.rejected,
            "last_share_at": iso(w.last_share),
            "connected_at": iso(w.connected_at),
            "pool_id": format!("pool-{}", w.tag),
        })
    }
}

/// A running Ultimate Proxy simulator; stops when dropped.
pub type UltimateProxySimulator = Running<UltimateProxySim>;

impl Running<UltimateProxySim> {
    pub async fn start(options: UltimateProxyOptions) -> std::io::Result<UltimateProxySimulator> {
        let token = options.token.clone();
        let farm = Farm::new(
            options.seed,
            options.workers,
            "rig",
            proxy_rig,
            options.outages,
        );
        let mut nominal: BTreeMap<&'static str, f64> = BTreeMap::new();
        for w in &farm.workers {
            *nominal.entry(w.tag).or_default() += w.nominal;
        }
        let sim = UltimateProxySim {
            farm,
            nominal,
            window: FixedWindow::new(options.limit_per_minute, WINDOW),
            counters: Counters::default(),
            options,
        };
        Running::spawn(sim, token, |state| {
            Router::new()
                .route("/v1/overview", get(overview))
                .route("/v1/workers", get(workers))
                .route("/v1/workers/hashrate", get(hashrate))
                .route("/v1/workers/{id}", get(worker))
                .route("/v1/workers/{id}/hashrate", get(worker_hashrate))
                .with_state(state)
        })
        .await
    }

    pub fn worker_names(&self) -> Vec<String> {
        self.with(|s| s.farm.names())
    }

    /// What the long series (`timeRange` past `1h`) draw around: the seed, and each
    /// algorithm's nominal hashrate. An algorithm's series key is `up/<algorithm>`.
    pub fn history_basis(&self) -> (u64, BTreeMap<&'static str, f64>) {
        self.with(|s| (s.options.seed, s.nominal.clone()))
    }

    /// Removes a worker as if deleted in the proxy's UI; true if it existed.
    pub fn remove_worker(&self, name: &str) -> bool {
        self.with(|s| s.farm.remove(name))
    }

    /// Takes a worker offline for `for_how_long`.
    pub fn take_offline(&self, name: &str, for_how_long: Duration) {
        self.with(|s| s.farm.take_offline(name, for_how_long))
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
fn gate(sim: &mut UltimateProxySim, headers: &HeaderMap) -> Result<HeaderMap, ApiError> {
    sim.counters.received();
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
    let header = |v: String| HeaderValue::from_str(&v).expect("digits are a valid header");
    if let Some(wait) = sim.counters.refusing() {
        let mut blocked = HeaderMap::new();
        blocked.insert("retry-after", header(wait.to_string()));
        return Err(ApiError {
            headers: Some(Box::new(blocked)),
            ..error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
        });
    }
    let hit = sim.window.hit();
    let limit = sim.window.limit;
    let mut rate = HeaderMap::new();
    rate.insert("x-ratelimit-limit", header(limit.to_string()));
    rate.insert(
        "x-ratelimit-remaining",
        header(hit.unwrap_or(0).to_string()),
    );
    rate.insert(
        "x-ratelimit-reset",
        header(sim.window.reset_unix().to_string()),
    );
    if let Err(wait) = hit {
        sim.counters.rate_limited += 1;
        rate.insert("retry-after", header(wait.to_string()));
        return Err(ApiError {
            headers: Some(Box::new(rate)),
            ..error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
        });
    }
    if let Some(status) = sim.counters.injected() {
        let message = status.canonical_reason().unwrap_or("Internal server error");
        return Err(ApiError {
            headers: Some(Box::new(rate)),
            ..error(status, message)
        });
    }
    sim.farm.advance();
    Ok(rate)
}

fn answer(
    sim: &Shared<UltimateProxySim>,
    headers: &HeaderMap,
    scope: &str,
    body: impl FnOnce(&UltimateProxySim) -> Result<Value, ApiError>,
) -> Response {
    let mut sim = lock(sim);
    match gate(&mut sim, headers) {
        Err(rejected) => rejected.into_response(),
        // Counted in the window like any answer (the docs: every response carries the headers).
        Ok(rate) if !sim.options.scopes.contains(&scope) => (
            rate,
            error(StatusCode::FORBIDDEN, "API key lacks a required scope"),
        )
            .into_response(),
        Ok(rate) => match body(&sim) {
            Ok(value) => (rate, Json(value)).into_response(),
            Err(e) => (rate, e).into_response(),
        },
    }
}

async fn overview(State(sim): State<Shared<UltimateProxySim>>, headers: HeaderMap) -> Response {
    answer(&sim, &headers, "dashboard:read", |s| {
        let workers = &s.farm.workers;
        let online = s.farm.online_count();
        let mut by_algorithm: Vec<Value> = Vec::new();
        for algorithm in ["randomx", "kawpow"] {
            let of = || workers.iter().filter(move |w| w.tag == algorithm);
            by_algorithm.push(json!({
                "algorithm": algorithm,
                "workers_online": of().filter(|w| w.online()).count(),
                "hashrate": of().map(|w| w.hashrate).sum::<f64>(),
            }));
        }
        Ok(json!({
            "workers": {"total": workers.len(), "online": online, "offline": workers.len() - online},
            "pools": {"total": 2, "active": 2},
            "profiles": {"total": 2},
            "hashrate": {
                "current": s.farm.total_hashrate(),
                "avg_1h": workers.iter().map(|w| w.avg_1h).sum::<f64>(),
                "avg_24h": workers.iter().map(|w| w.avg_24h).sum::<f64>(),
            },
            "by_algorithm": by_algorithm,
            "shares": {
                "accepted_24h": workers.iter().map(|w| w.accepted).sum::<u64>(),
                "rejected_24h": workers.iter().map(|w| w.rejected).sum::<u64>(),
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
    State(sim): State<Shared<UltimateProxySim>>,
    headers: HeaderMap,
    Query(q): Query<WorkersQuery>,
) -> Response {
    answer(&sim, &headers, "workers:read", |s| {
        let page = q.page.unwrap_or(1);
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if page == 0 || limit == 0 {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "page and limit must be at least 1",
            ));
        }
        let limit = limit.min(MAX_LIMIT);
        let matching: Vec<&FarmWorker> = s
            .farm
            .workers
            .iter()
            .filter(|w| q.algorithm.as_deref().is_none_or(|a| a == w.tag))
            .filter(|w| {
                q.status
                    .as_deref()
                    .is_none_or(|st| (st == "online") == w.online())
            })
            .collect();
        let total = matching.len();
        let data: Vec<Value> = matching
            .into_iter()
            .skip((page - 1) * limit)
            .take(limit)
            .map(UltimateProxySim::worker_json)
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
    algorithm: Option<String>,
}

/// The window and bucket of a `timeRange` (PROPOSED in the reference).
fn range_of(time_range: Option<&str>) -> Result<(i64, i64), ApiError> {
    match time_range.unwrap_or("24h") {
        "1h" => Ok((1, 60)),
        "6h" => Ok((6, 300)),
        "24h" => Ok((24, 900)),
        "7d" => Ok((168, 3600)),
        "30d" => Ok((720, 14400)),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "timeRange must be one of 1h, 6h, 24h, 7d, 30d",
        )),
    }
}

/// A series longer than the last hour: the complete buckets of the window, from
/// `demo::history`, with their average and peak.
fn long_series(seed: u64, key: &str, nominal: f64, hours: i64, granularity: i64) -> Value {
    let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
    let points: Vec<(i64, f64)> = history::ticks(now - hours * 3600, now, granularity, now)
        .map(|t| (t, history::hashrate(seed, key, nominal, t)))
        .collect();
    let n = points.len().max(1) as f64;
    let avg = points.iter().map(|(_, h)| h).sum::<f64>() / n;
    let peak = points.iter().map(|(_, h)| *h).fold(0.0, f64::max);
    json!({
        "hours": hours,
        "granularity": granularity,
        "data": points.iter().map(|(t, h)| json!({"timestamp": t, "hashrate": h})).collect::<Vec<_>>(),
        "stats": {"avg_hashrate": avg, "peak_hashrate": peak},
    })
}

async fn hashrate(
    State(sim): State<Shared<UltimateProxySim>>,
    headers: HeaderMap,
    Query(q): Query<SeriesQuery>,
) -> Response {
    answer(&sim, &headers, "workers:read", |s| {
        let (hours, granularity) = range_of(q.time_range.as_deref())?;
        let tag = q.algorithm.as_deref();
        if hours > 1 {
            let nominal = s
                .nominal
                .iter()
                .filter(|(k, _)| tag.is_none_or(|t| t == **k))
                .map(|(_, n)| n)
                .sum();
            let key = format!("up/{}", tag.unwrap_or("all"));
            return Ok(long_series(
                s.options.seed,
                &key,
                nominal,
                hours,
                granularity,
            ));
        }
        let history = s.farm.history_of(tag);
        let data: Vec<Value> = history
            .iter()
            .map(|(t, h)| json!({"timestamp": t, "hashrate": h}))
            .collect();
        let current = s.farm.hashrate_of(tag);
        let (avg, peak) = if history.is_empty() {
            (
                s.farm
                    .workers
                    .iter()
                    .filter(|w| tag.is_none_or(|t| t == w.tag))
                    .map(|w| w.avg_1h)
                    .sum::<f64>(),
                current,
            )
        } else {
            let values = history.iter().map(|(_, h)| *h);
            let n = history.len() as f64;
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

/// `/v1/workers/{id}/hashrate`: one worker's series, keyed `up/worker/<id>`.
async fn worker_hashrate(
    State(sim): State<Shared<UltimateProxySim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<SeriesQuery>,
) -> Response {
    answer(&sim, &headers, "workers:read", |s| {
        let (hours, granularity) = range_of(q.time_range.as_deref())?;
        let w = s
            .farm
            .workers
            .iter()
            .find(|w| worker_id(w) == id)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "Worker not found"))?;
        let mut series = long_series(
            s.options.seed,
            &format!("up/worker/{id}"),
            w.nominal,
            hours,
            granularity,
        );
        series["worker_id"] = json!(id);
        Ok(series)
    })
}

async fn worker(
    State(sim): State<Shared<UltimateProxySim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    answer(&sim, &headers, "workers:read", |s| {
        s.farm
            .workers
            .iter()
            .find(|w| worker_id(w) == id)
            .map(UltimateProxySim::worker_json)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "Worker not found"))
    })
}
