//! A LuxCore-style payments API simulator on 127.0.0.1 (docs.lux-core.io/guides/balance), for the
//! generic `http_json` source: the merchant's balances, `GET /api/v1/balance` (one currency
//! and balance type) and `/api/v1/balance/all`, with amounts in minor units sent as strings.
//! v1 takes `X-API-Key`; the same routes under `/api/v2` also want an HMAC-SHA256 signature
//! (`X-Merchant-Id`, `X-Timestamp`, `X-Nonce`, `X-Signature-Version: v1`, `X-Signature`),
//! refuse a timestamp more than 300 s off their clock, and never take a nonce twice in that
//! window. 100 requests a minute per key; over it, 429 with Retry-After.
//!
//! Error bodies are PROPOSED (the docs show none): `{"success":false,"error":{"code","message"}}`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::demo::farm::unix_now;
use crate::demo::harness::{
    Counted, Counters, FixedWindow, Refused, Running, Shared, lock, with_retry_after,
};
use crate::signing;

/// The window a signed request's timestamp must fall in, and a nonce is remembered for.
const REPLAY_WINDOW: u64 = 300;
const BALANCE_TYPES: &[&str] = &["main", "deposit", "withdrawal", "commission", "frozen"];

#[derive(Debug, Clone)]
pub struct LuxCoreOptions {
    pub api_key: String,
    pub hmac_secret: String,
    pub merchant_id: u64,
    /// Currencies the merchant holds.
    pub currencies: Vec<String>,
    pub per_minute: u32,
    /// Seconds this API's clock is ahead of the machine's (negative: behind): its `Date`
    /// header and the window it checks timestamps against.
    pub clock_offset: i64,
    /// Whether the key has the `balance.read` scope.
    pub balance_scope: bool,
}

impl Default for LuxCoreOptions {
    fn default() -> Self {
        LuxCoreOptions {
            api_key: format!("qp_test_sk_{:016x}", fastrand::u64(..)),
            hmac_secret: format!("hmac_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            merchant_id: 4821,
            currencies: vec!["ARS".to_string(), "MXN".to_string()],
            per_minute: 100,
            clock_offset: 0,
            balance_scope: true,
        }
    }
}

#[derive(Debug)]
pub struct LuxCoreSim {
    options: LuxCoreOptions,
    /// (currency, balance type) -> minor units.
    balances: BTreeMap<(String, String), i64>,
    minute: FixedWindow,
    nonces: VecDeque<(u64, String)>,
    counters: Counters,
    /// Signed requests refused for a bad or stale signature or a reused nonce.
    pub refused_signatures: u64,
    last_tick: u64,
}

impl Counted for LuxCoreSim {
    fn counters(&mut self) -> &mut Counters {
        &mut self.counters
    }
}

pub type LuxCoreSimulator = Running<LuxCoreSim>;

impl Running<LuxCoreSim> {
    pub async fn start(options: LuxCoreOptions) -> std::io::Result<LuxCoreSimulator> {
        let mut rng = fastrand::Rng::with_seed(options.merchant_id);
        let mut balances = BTreeMap::new();
        for currency in &options.currencies {
            for kind in BALANCE_TYPES {
                balances.insert(
                    (currency.clone(), kind.to_string()),
                    rng.i64(50_000..5_000_000),
                );
            }
        }
        let sim = LuxCoreSim {
            balances,
            minute: FixedWindow::new(options.per_minute, Duration::from_secs(60)),
            nonces: VecDeque::new(),
            counters: Counters::default(),
            refused_signatures: 0,
            last_tick: unix_now(),
            options,
        };
        let token = sim.options.api_key.clone();
        Running::spawn(sim, token, |state| {
            Router::new()
                .route("/api/v1/balance", get(balance))
                .route("/api/v1/balance/all", get(balance_all))
                .route("/api/v2/balance", get(balance))
                .route("/api/v2/balance/all", get(balance_all))
                .fallback(|| async { *error(StatusCode::NOT_FOUND, "not_found", "Not found") })
                .with_state(state)
        })
        .await
    }

    pub fn hmac_secret(&self) -> String {
        self.with(|s| s.options.hmac_secret.clone())
    }

    pub fn merchant_id(&self) -> u64 {
        self.with(|s| s.options.merchant_id)
    }

    pub fn refused_signatures(&self) -> u64 {
        self.with(|s| s.refused_signatures)
    }

    /// The balance in minor units, as the API holds it.
    pub fn balance(&self, currency: &str, balance_type: &str) -> Option<i64> {
        self.with(|s| {
            s.balances
                .get(&(currency.to_string(), balance_type.to_string()))
                .copied()
        })
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Refused {
    Box::new(
        (
            status,
            Json(json!({"success": false, "error": {"code": code, "message": message}})),
        )
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
struct BalanceQuery {
    currency: Option<String>,
    balance_type: Option<String>,
}

impl LuxCoreSim {
    fn now(&self) -> u64 {
        unix_now().saturating_add_signed(self.options.clock_offset)
    }

    /// Deposits arrive and withdrawals leave, a little every simulated minute.
    fn tick(&mut self) {
        let now = unix_now();
        let minutes = now.saturating_sub(self.last_tick) / 60;
        if minutes == 0 {
            return;
        }
        self.last_tick += minutes * 60;
        for ((_, kind), amount) in self.balances.iter_mut() {
            let step = i64::try_from(minutes.min(10_000)).unwrap_or(0) * 1_250;
            *amount = match kind.as_str() {
                "withdrawal" | "frozen" => (*amount - step / 2).max(0),
                _ => *amount + step,
            };
        }
    }

    /// Key, scope, limits, signature (v2) and injected failures, for every route.
    fn gate(&mut self, uri: &Uri, headers: &HeaderMap) -> Result<(), Refused> {
        self.counters.received();
        let key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        if key != Some(self.options.api_key.as_str()) {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Invalid or missing API key",
            ));
        }
        if !self.options.balance_scope {
            return Err(error(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "API key lacks the balance.read scope",
            ));
        }
        if let Err(wait) = self.minute.hit() {
            self.counters.rate_limited += 1;
            return Err(with_retry_after(
                error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Too many requests",
                ),
                wait,
            ));
        }
        if uri.path().starts_with("/api/v2/") {
            self.check_signature(uri, headers)?;
        }
        if let Some(status) = self.counters.injected() {
            return Err(error(
                status,
                "internal",
                status.canonical_reason().unwrap_or("error"),
            ));
        }
        self.tick();
        Ok(())
    }

    fn check_signature(&mut self, uri: &Uri, headers: &HeaderMap) -> Result<(), Refused> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let refuse = |sim: &mut LuxCoreSim, message: &str| {
            sim.refused_signatures += 1;
            error(StatusCode::UNAUTHORIZED, "invalid_signature", message)
        };
        if header("x-merchant-id") != Some(self.options.merchant_id.to_string().as_str()) {
            return Err(refuse(self, "X-Merchant-Id missing or wrong"));
        }
        if header(signing::VERSION) != Some(signing::VERSION_V1) {
            return Err(refuse(self, "X-Signature-Version must be v1"));
        }
        let Some(timestamp) = header(signing::TIMESTAMP).and_then(|t| t.parse::<u64>().ok()) else {
            return Err(refuse(self, "X-Timestamp missing"));
        };
        let now = self.now();
        if timestamp.abs_diff(now) > REPLAY_WINDOW {
            return Err(refuse(self, "X-Timestamp outside the 300-second window"));
        }
        let nonce = header(signing::NONCE).unwrap_or_default().to_string();
        if !(8..=128).contains(&nonce.len()) {
            return Err(refuse(self, "X-Nonce must be 8-128 characters"));
        }
        while self
            .nonces
            .front()
            .is_some_and(|(at, _)| at + REPLAY_WINDOW < now)
        {
            self.nonces.pop_front();
        }
        if self.nonces.iter().any(|(_, n)| *n == nonce) {
            return Err(refuse(self, "X-Nonce already used"));
        }
        let path_with_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let canonical = signing::canonical(timestamp, &nonce, "GET", path_with_query, b"");
        let signature = header(signing::SIGNATURE).unwrap_or_default();
        if !signing::verify(self.options.hmac_secret.as_bytes(), &canonical, signature) {
            return Err(refuse(self, "signature mismatch"));
        }
        self.nonces.push_back((now, nonce));
        Ok(())
    }

    fn entry(&self, currency: &str, kind: &str) -> Option<Value> {
        let amount = *self
            .balances
            .get(&(currency.to_string(), kind.to_string()))?;
        let frozen = if kind == "main" {
            self.balances
                .get(&(currency.to_string(), "frozen".to_string()))
                .copied()
                .unwrap_or(0)
                .min(amount)
        } else {
            0
        };
        Some(json!({
            "currency": currency,
            "balance_type": kind,
            "balance_amount": amount.to_string(),
            "available_amount": (amount - frozen).to_string(),
            "frozen_amount": frozen.to_string(),
        }))
    }
}

/// The response with this API's `Date`, which the signing client compares with its clock.
fn dated(sim: &LuxCoreSim, mut response: Response) -> Response {
    let date =
        chrono::DateTime::<chrono::Utc>::from_timestamp(i64::try_from(sim.now()).unwrap_or(0), 0)
            .map(|d| d.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    if let Some(value) = date.and_then(|d| HeaderValue::from_str(&d).ok()) {
        response.headers_mut().insert("date", value);
    }
    response
}

async fn balance(
    State(sim): State<Shared<LuxCoreSim>>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<BalanceQuery>,
) -> Response {
    let mut sim = lock(&sim);
    let response = match sim.gate(&uri, &headers) {
        Err(refused) => *refused,
        Ok(()) => {
            let currency = q.currency.as_deref().unwrap_or("MXN");
            let kind = q.balance_type.as_deref().unwrap_or("main");
            match sim.entry(currency, kind) {
                None => *error(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    "unknown currency or balance_type",
                ),
                Some(mut entry) => {
                    if let Some(object) = entry.as_object_mut() {
                        object.insert("success".into(), json!(true));
                        object.insert("merchant_id".into(), json!(sim.options.merchant_id));
                        let amount = sim
                            .balances
                            .get(&(currency.to_string(), kind.to_string()))
                            .copied()
                            .unwrap_or(0);
                        object.insert("new_balance".into(), json!(amount));
                    }
                    Json(entry).into_response()
                }
            }
        }
    };
    dated(&sim, response)
}

async fn balance_all(
    State(sim): State<Shared<LuxCoreSim>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let mut sim = lock(&sim);
    let response = match sim.gate(&uri, &headers) {
        Err(refused) => *refused,
        Ok(()) => {
            let balances: Vec<Value> = sim
                .options
                .currencies
                .iter()
                .flat_map(|c| BALANCE_TYPES.iter().filter_map(|k| sim.entry(c, k)))
                .collect();
            Json(json!({
                "success": true,
                "merchant_id": sim.options.merchant_id,
                "total_balances": balances.len(),
                "balances": balances,
            }))
            .into_response()
        }
    };
    dated(&sim, response)
}
