//! A Luxbio-style API simulator on 127.0.0.1 (api.luxbio.net, as third-party guides describe it), for the generic
//! `http_json` source: `Authorization: Bearer <key>` (none or wrong: 401), cursor pagination
//! (`has_more` + `next_cursor`, the cursor passed back as `cursor`, `limit` up to 100), and a
//! per-key limit of 60 requests a minute (PROPOSED; over it, 429 with Retry-After). What it
//! serves is PROPOSED too, a small pool's workers: `GET /v1/workers`, each with its name,
//! `status` (`online`/`offline`), algorithm and hashrate in TH/s as a string.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::demo::farm::{Farm, FarmWorker, sha256_asic};
use crate::demo::harness::{
    Counted, Counters, FixedWindow, Refused, Running, Shared, lock, with_retry_after,
};

const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 100;

#[derive(Debug, Clone)]
pub struct LuxbioOptions {
    pub api_key: String,
    pub workers: usize,
    pub per_minute: u32,
    pub seed: u64,
    pub lively: bool,
}

impl Default for LuxbioOptions {
    fn default() -> Self {
        LuxbioOptions {
            api_key: format!("lxb_live_{:016x}", fastrand::u64(..)),
            workers: 240,
            per_minute: 60,
            seed: fastrand::u64(..),
            lively: true,
        }
    }
}

#[derive(Debug)]
pub struct LuxbioSim {
    options: LuxbioOptions,
    farm: Farm,
    minute: FixedWindow,
    counters: Counters,
}

impl Counted for LuxbioSim {
    fn counters(&mut self) -> &mut Counters {
        &mut self.counters
    }
}

pub type LuxbioSimulator = Running<LuxbioSim>;

impl Running<LuxbioSim> {
    pub async fn start(options: LuxbioOptions) -> std::io::Result<LuxbioSimulator> {
        let sim = LuxbioSim {
            farm: Farm::new(
                options.seed,
                options.workers,
                "bio-",
                sha256_asic,
                options.lively,
            ),
            minute: FixedWindow::new(options.per_minute, Duration::from_secs(60)),
            counters: Counters::default(),
            options,
        };
        let token = sim.options.api_key.clone();
        Running::spawn(sim, token, |state| {
            Router::new()
                .route("/v1/workers", get(workers))
                .fallback(|| async { *error(StatusCode::NOT_FOUND, "not_found", "Not found") })
                .with_state(state)
        })
        .await
    }

    /// Each worker's name and whether it is online, as the API would list them now.
    pub fn workers(&self) -> Vec<(String, bool)> {
        self.with(|s| {
            s.farm
                .workers
                .iter()
                .map(|w| (w.name.clone(), w.online()))
                .collect()
        })
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Refused {
    Box::new(
        (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<usize>,
}

/// What a worker draws at the wall: 21 to 29 J/TH by its model (its serial) at the rate it
/// hashes, plus its controller's idle draw, also while offline.
fn power_watts(w: &FarmWorker) -> f64 {
    const IDLE_WATTS: f64 = 15.0;
    let joules_per_terahash = 21.0 + f64::from(w.serial % 9);
    let hashing = if w.online() { w.hashrate / 1e12 } else { 0.0 };
    IDLE_WATTS + hashing * joules_per_terahash
}

/// An opaque cursor: where the next page starts, scrambled so that clients cannot make one up.
const CURSOR_MASK: u64 = 0x5bd1_9e37_a4c3_0f21;

fn cursor_at(offset: usize) -> String {
    format!("c_{:x}", offset as u64 ^ CURSOR_MASK)
}

fn offset_of(cursor: &str, len: usize) -> Option<usize> {
    let raw = u64::from_str_radix(cursor.strip_prefix("c_")?, 16).ok()?;
    usize::try_from(raw ^ CURSOR_MASK)
        .ok()
        .filter(|o| *o <= len)
}

impl LuxbioSim {
    fn gate(&mut self, headers: &HeaderMap) -> Result<(), Refused> {
        self.counters.received();
        let expected = format!("Bearer {}", self.options.api_key);
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Missing or invalid API key",
            ));
        }
        if let Err(wait) = self.minute.hit() {
            self.counters.rate_limited += 1;
            return Err(with_retry_after(
                error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Rate limit exceeded",
                ),
                wait,
            ));
        }
        if let Some(status) = self.counters.injected() {
            return Err(error(
                status,
                "internal",
                status.canonical_reason().unwrap_or("error"),
            ));
        }
        self.farm.advance();
        Ok(())
    }
}

async fn workers(
    State(sim): State<Shared<LuxbioSim>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let mut sim = lock(&sim);
    if let Err(refused) = sim.gate(&headers) {
        return *refused;
    }
    let all = &sim.farm.workers;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return *error(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "limit must be 1-100",
        );
    }
    let start = match q.cursor.as_deref() {
        None => 0,
        Some(c) => match offset_of(c, all.len()) {
            Some(o) => o,
            None => return *error(StatusCode::BAD_REQUEST, "invalid_cursor", "unknown cursor"),
        },
    };
    let end = (start + limit).min(all.len());
    let data: Vec<Value> = all
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|w| {
            json!({
                "id": format!("wk_{:06}", w.serial),
                "name": w.name,
                "status": if w.online() { "online" } else { "offline" },
                "algorithm": w.tag,
                "hashrate_ths": format!("{:.3}", w.hashrate / 1e12),
                "power_w": power_watts(w).round(),
            })
        })
        .collect();
    let has_more = end < all.len();
    Json(json!({
        "data": data,
        "has_more": has_more,
        "next_cursor": if has_more { Value::String(cursor_at(end)) } else { Value::Null },
    }))
    .into_response()
}
