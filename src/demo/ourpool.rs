//! An OurPool API simulator on 127.0.0.1, for the demo, the tests and the benchmarks. It
//! follows ourpool.io/api-documentation: the watcher token as `?token=` (none: 401 with a `redirect`;
//! a wrong one: 403), two fixed windows per token (100/min and 1000/h; over either: 429 with
//! Retry-After), `{"code","message"}` error bodies, and the account-mode endpoints the
//! reference proposes: rewards-stats, miner/workers (keyed by name) and miner/stats, with
//! BTC amounts and H/s hashrates as strings. Also the account's transactions (PROPOSED:
//! newest first, `limit` up to 100 and a 1-based `page`): a mining reward credited and a
//! payout sent every day for `PAYOUT_DAYS` before the simulator started (from
//! `demo::history`), then the wallet's own payouts.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::farm::{Farm, FarmWorker, iso, sha256_asic, unix_now};
use super::harness::{Counted, Counters, FixedWindow, Refused, Running, Shared, Wallet, lock};
use super::history;

/// The reference proposes "offline" after 10 minutes without shares.
const OFFLINE_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct OurPoolOptions {
    pub account: String,
    pub workers: usize,
    pub token: String,
    pub per_minute: u32,
    pub per_hour: u32,
    pub seed: u64,
    /// Whether workers drop offline, leave and join by themselves.
    pub lively: bool,
    /// Whether miner/workers and miner/stats are served (they are PROPOSED, not documented);
    /// when not, they answer 404.
    pub miner_endpoints: bool,
}

impl Default for OurPoolOptions {
    fn default() -> Self {
        OurPoolOptions {
            account: "demo-farm".to_string(),
            workers: 12,
            token: format!("op_watch_demo{:016x}", fastrand::u64(..)),
            per_minute: 100,
            per_hour: 1000,
            seed: fastrand::u64(..),
            lively: true,
            miner_endpoints: true,
        }
    }
}

impl OurPoolOptions {
    /// `workers` quiet workers and no rate limit: the farm the benches measure.
    pub fn unlimited(workers: usize) -> Self {
        OurPoolOptions {
            workers,
            per_minute: u32::MAX,
            per_hour: u32::MAX,
            lively: false,
            ..OurPoolOptions::default()
        }
    }
}

#[derive(Debug)]
pub struct OurPoolSim {
    options: OurPoolOptions,
    farm: Farm,
    wallet: Wallet,
    minute: FixedWindow,
    hour: FixedWindow,
    counters: Counters,
    /// Unix seconds: the daily transactions before this are history, the rest the wallet's.
    started: i64,
}

/// The largest transactions page (PROPOSED).
const MAX_TRANSACTIONS_LIMIT: usize = 100;
const PAYOUT_TYPE: &str = "TX_TYPE_SCHEDULED_USER_MINING_REWARDS_WITHDRAWAL";
const REWARD_TYPE: &str = "TX_TYPE_MINING_REWARD";

impl Counted for OurPoolSim {
    fn counters(&mut self) -> &mut Counters {
        &mut self.counters
    }
}

pub type OurPoolSimulator = Running<OurPoolSim>;

impl Running<OurPoolSim> {
    pub async fn start(options: OurPoolOptions) -> std::io::Result<OurPoolSimulator> {
        let mut rng = fastrand::Rng::with_seed(options.seed);
        let sim = OurPoolSim {
            farm: Farm::new(
                options.seed,
                options.workers,
                "s19-",
                sha256_asic,
                options.lively,
            ),
            wallet: Wallet::new(&mut rng),
            minute: FixedWindow::new(options.per_minute, Duration::from_secs(60)),
            hour: FixedWindow::new(options.per_hour, Duration::from_secs(3600)),
            counters: Counters::default(),
            started: i64::try_from(unix_now()).unwrap_or(i64::MAX),
            options,
        };
        let token = sim.options.token.clone();
        Running::spawn(sim, token, |state| {
            Router::new()
                .route(
                    "/api/v1/accounts/{account}/btc/rewards-stats",
                    get(rewards_stats),
                )
                .route(
                    "/api/v1/accounts/{account}/btc/miner/workers",
                    get(miner_workers),
                )
                .route(
                    "/api/v1/accounts/{account}/btc/miner/stats",
                    get(miner_stats),
                )
                .route("/api/v1/accounts/{account}/transactions", get(transactions))
                .fallback(|| async { *not_found() })
                .with_state(state)
        })
        .await
    }

    pub fn account(&self) -> String {
        self.with(|s| s.options.account.clone())
    }

    pub fn worker_names(&self) -> Vec<String> {
        self.with(|s| s.farm.names())
    }

    /// Every payout the transactions list holds, oldest first: (Unix seconds, BTC).
    pub fn payouts(&self) -> Vec<(i64, f64)> {
        self.with(|s| {
            let mut all: Vec<(i64, f64)> = s
                .transactions()
                .into_iter()
                .filter(|t| t.kind == PAYOUT_TYPE)
                .map(|t| (t.at, t.amount))
                .collect();
            all.reverse();
            all
        })
    }

    /// What `totalPaid` says now.
    pub fn total_paid(&self) -> f64 {
        self.with(|s| s.wallet.paid)
    }
}

struct Transaction {
    at: i64,
    kind: &'static str,
    amount: f64,
}

impl OurPoolSim {
    /// Every transaction, newest first.
    fn transactions(&self) -> Vec<Transaction> {
        let key = format!("ourpool/{}", self.options.account);
        let first_day = history::day_start(self.started) - history::PAYOUT_DAYS * 86_400;
        let mut all: Vec<Transaction> = (0..=history::PAYOUT_DAYS)
            .map(|d| first_day + d * 86_400)
            .flat_map(|day| {
                let amount = history::payout(self.options.seed, &key, day);
                [
                    Transaction {
                        at: day + history::REWARD_AT,
                        kind: REWARD_TYPE,
                        amount,
                    },
                    Transaction {
                        at: day + history::PAYOUT_AT,
                        kind: PAYOUT_TYPE,
                        amount,
                    },
                ]
            })
            .filter(|t| t.at < self.started)
            .collect();
        all.extend(self.wallet.payouts.iter().map(|(at, amount)| Transaction {
            at: i64::try_from(*at).unwrap_or(i64::MAX),
            kind: PAYOUT_TYPE,
            amount: *amount,
        }));
        all.sort_by_key(|t| std::cmp::Reverse(t.at));
        all
    }
}

/// `{"code": ..., "message": ...}`, OurPool's error shape.
fn error(status: StatusCode, code: &str, message: &str) -> Refused {
    Box::new((status, Json(json!({"code": code, "message": message}))).into_response())
}

fn not_found() -> Refused {
    error(StatusCode::NOT_FOUND, "not_found", "not found")
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Auth, both windows, the account and injected failures, shared by every route.
fn gate(sim: &mut OurPoolSim, account: &str, token: Option<&str>) -> Result<(), Refused> {
    sim.counters.received();
    let Some(token) = token else {
        let state = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            fastrand::u32(..),
            fastrand::u64(..1 << 48)
        );
        let body = json!({"code": "auth.unauthorized", "message": "Unauthorized",
                          "redirect": format!("/api/oauth/authorize?state={state}")});
        return Err(Box::new(
            (StatusCode::UNAUTHORIZED, Json(body)).into_response(),
        ));
    };
    if token != sim.options.token {
        return Err(error(
            StatusCode::FORBIDDEN,
            "auth.unexpected_error",
            "permission check failed",
        ));
    }
    // Both windows count every request; the one that is full answers.
    let (minute, hour) = (sim.minute.hit(), sim.hour.hit());
    if let Err(wait) = minute.and(hour) {
        sim.counters.rate_limited += 1;
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit.exceeded",
            "Too many requests",
        );
        let value = HeaderValue::from_str(&wait.to_string()).expect("digits are a valid header");
        response.headers_mut().insert("retry-after", value);
        return Err(response);
    }
    if account != sim.options.account {
        return Err(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "account not found",
        ));
    }
    if let Some(status) = sim.counters.injected() {
        return Err(error(
            status,
            "internal",
            status.canonical_reason().unwrap_or("internal error"),
        ));
    }
    sim.farm.advance();
    let hashrate = sim.farm.total_hashrate();
    sim.wallet.accrue(hashrate);
    Ok(())
}

fn answer(
    sim: &Shared<OurPoolSim>,
    account: &str,
    q: &TokenQuery,
    miner_endpoint: bool,
    body: impl FnOnce(&OurPoolSim) -> Value,
) -> Response {
    let mut sim = lock(sim);
    if let Err(refused) = gate(&mut sim, account, q.token.as_deref()) {
        return *refused;
    }
    if miner_endpoint && !sim.options.miner_endpoints {
        return *not_found();
    }
    Json(body(&sim)).into_response()
}

fn counts_online(w: &FarmWorker, now: std::time::SystemTime) -> bool {
    now.duration_since(w.last_share).unwrap_or_default() < OFFLINE_AFTER
}

fn btc(amount: f64) -> String {
    format!("{amount:.8}")
}

fn hashes(h: f64) -> String {
    format!("{}", h.round() as u64)
}

async fn rewards_stats(
    State(sim): State<Shared<OurPoolSim>>,
    Path(account): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    answer(&sim, &account, &q, false, |s| {
        let day = s
            .wallet
            .per_day(s.farm.workers.iter().map(|w| w.avg_24h).sum());
        let now = crate::clock::WallClock::Tokio.now();
        json!({
            "coin": "btc",
            "totalPaid": btc(s.wallet.paid),
            "balance": btc(s.wallet.balance),
            "rewards24h": btc(day),
            "rewards7d": btc(day * 7.0),
            "rewards30d": btc(day * 30.0),
            "totalRewards": btc(s.wallet.earned_total),
            "lastPayoutAt": iso(now - Duration::from_secs(3 * 3600)),
            "updatedAt": iso(now),
        })
    })
}

#[derive(Debug, Deserialize)]
struct TransactionsQuery {
    token: Option<String>,
    limit: Option<usize>,
    page: Option<usize>,
}

async fn transactions(
    State(sim): State<Shared<OurPoolSim>>,
    Path(account): Path<String>,
    Query(q): Query<TransactionsQuery>,
) -> Response {
    let token = TokenQuery {
        token: q.token.clone(),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_TRANSACTIONS_LIMIT);
    let page = q.page.unwrap_or(1).max(1);
    answer(&sim, &account, &token, false, |s| {
        let all = s.transactions();
        let total = all.len();
        let items: Vec<Value> = all
            .iter()
            .skip((page - 1) * limit)
            .take(limit)
            .map(|t| {
                json!({"id": format!("tx-{}-{}", t.at, t.kind.len()),
                       "createdAt": history::iso_seconds(t.at), "type": t.kind,
                       "value": btc(t.amount), "currency": "btc", "txid": null})
            })
            .collect();
        json!({
            "transactions": items,
            "pagination": {"page": page, "limit": limit, "total": total,
                           "total_pages": total.div_ceil(limit).max(1)},
        })
    })
}

async fn miner_workers(
    State(sim): State<Shared<OurPoolSim>>,
    Path(account): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    answer(&sim, &account, &q, true, |s| {
        let now = crate::clock::WallClock::Tokio.now();
        let workers: Map<String, Value> = s
            .farm
            .workers
            .iter()
            .map(|w| {
                let status = if counts_online(w, now) {
                    "online"
                } else {
                    "offline"
                };
                (
                    w.name.clone(),
                    json!({
                        "hashrate1h": hashes(w.avg_1h),
                        "hashrate24h": hashes(w.avg_24h),
                        "lastShareAt": iso(w.last_share),
                        "status": status,
                    }),
                )
            })
            .collect();
        json!({ "workers": workers })
    })
}

async fn miner_stats(
    State(sim): State<Shared<OurPoolSim>>,
    Path(account): Path<String>,
    Query(q): Query<TokenQuery>,
) -> Response {
    answer(&sim, &account, &q, true, |s| {
        let workers = &s.farm.workers;
        let now = crate::clock::WallClock::Tokio.now();
        let online = workers.iter().filter(|w| counts_online(w, now)).count();
        json!({
            "hashrate10m": hashes(s.farm.total_hashrate()),
            "hashrate1h": hashes(workers.iter().map(|w| w.avg_1h).sum()),
            "hashrate24h": hashes(workers.iter().map(|w| w.avg_24h).sum()),
            "workersOnline": online,
            "workersOffline": workers.len() - online,
        })
    })
}
