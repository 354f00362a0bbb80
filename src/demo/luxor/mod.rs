//! A Luxor API simulator on 127.0.0.1, for the demo, the tests and the benchmarks. It follows
//! docs.luxor.tech/mining/api/v2: the raw key in `authorization` (a `Bearer ` form is refused), token
//! buckets per key (5, refilled 1/s) and per workspace (10, refilled 2/s) answering 429 with
//! Retry-After, both error shapes (`{"error":{"code","message"}}` and the Fastify-style
//! `{"statusCode","error","message"}`), the currency list, and "subaccount_names or site_id"
//! on v2. Serves /v1/workspace (optionally 404), /v2/workspace, /v2/pool/subaccounts, and the
//! v1 and v2 summary and workers, paginated with `next_page_url`. Hashrates are H/s strings,
//! except the worker list's `hashrate`, a number.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::farm::{Farm, FarmWorker, iso, sha256_asic};
use super::harness::{Counted, Counters, Refused, Running, Shared, TokenBucket, Wallet, lock};
use crate::sources::luxor::config::CURRENCIES;

mod history;

/// Largest page the simulator serves (PROPOSED in the reference).
const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_PAGE_SIZE: usize = 10;
/// Active means shares in the last 3 complete minutes (DOC, reporting page).
const ACTIVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(180);
pub const SITE_ID: &str = "b0a5fad8-4f1c-4e6a-9a8e-0c1d2e3f4a5b";

#[derive(Debug, Clone)]
pub struct LuxorOptions {
    pub workspace: String,
    /// Subaccount names and their worker counts. Workers are named rig01, rig02, ... in each,
    /// so the same worker name lives in several subaccounts.
    pub subaccounts: Vec<(String, usize)>,
    pub token: String,
    pub seed: u64,
    /// Whether workers drop offline, leave and join by themselves.
    pub lively: bool,
    /// Whether `/v1/workspace` is served; when not, it answers 404.
    pub v1_workspace: bool,
    /// Per-key bucket: capacity and refill per second.
    pub key_bucket: (u32, f64),
    /// Whether the key may read the pool's data; a key without the permission gets 403.
    pub permitted: bool,
}

impl Default for LuxorOptions {
    fn default() -> Self {
        LuxorOptions {
            workspace: "Demo Mining Co".to_string(),
            subaccounts: vec![("hq".to_string(), 16), ("annex".to_string(), 8)],
            token: format!("lxk.demo{:016x}", fastrand::u64(..)),
            seed: fastrand::u64(..),
            lively: true,
            v1_workspace: true,
            key_bucket: (5, 1.0),
            permitted: true,
        }
    }
}

impl LuxorOptions {
    /// One subaccount, `main`, of `workers` steady workers, and no rate limit: the farm the
    /// benches measure.
    pub fn unlimited(workers: usize) -> Self {
        LuxorOptions {
            subaccounts: vec![("main".to_string(), workers)],
            key_bucket: (1_000_000, 1e6),
            lively: false,
            ..LuxorOptions::default()
        }
    }
}

#[derive(Debug)]
struct Subaccount {
    id: usize,
    name: String,
    farm: Farm,
    wallet: Wallet,
    /// What the history endpoints draw around: the farm's size and rate when it started.
    nominal: f64,
    worker_count: usize,
}

#[derive(Debug)]
pub struct LuxorSim {
    options: LuxorOptions,
    subaccounts: Vec<Subaccount>,
    key_bucket: TokenBucket,
    workspace_bucket: TokenBucket,
    counters: Counters,
}

impl Counted for LuxorSim {
    fn counters(&mut self) -> &mut Counters {
        &mut self.counters
    }
}

pub type LuxorSimulator = Running<LuxorSim>;

impl Running<LuxorSim> {
    pub async fn start(options: LuxorOptions) -> std::io::Result<LuxorSimulator> {
        let mut rng = fastrand::Rng::with_seed(options.seed);
        // Hashprice is the market's, the same for every subaccount of the workspace: each
        // earns it on its hashrate, so its rewards over a day match hashrate x hashprice.
        let hashprice = Wallet::new(&mut rng.clone()).hashprice;
        let subaccounts: Vec<Subaccount> = options
            .subaccounts
            .iter()
            .enumerate()
            .map(|(id, (name, workers))| {
                let farm = Farm::new(rng.u64(..), *workers, "rig", sha256_asic, options.lively);
                Subaccount {
                    id: id + 1,
                    name: name.clone(),
                    nominal: farm.workers.iter().map(|w| w.nominal).sum(),
                    worker_count: farm.workers.len(),
                    farm,
                    wallet: {
                        let mut wallet = Wallet::new(&mut rng);
                        wallet.hashprice = hashprice;
                        wallet
                    },
                }
            })
            .collect();
        let (capacity, refill) = options.key_bucket;
        let sim = LuxorSim {
            subaccounts,
            key_bucket: TokenBucket::new(capacity, refill),
            workspace_bucket: TokenBucket::new(capacity * 2, refill * 2.0),
            counters: Counters::default(),
            options,
        };
        let token = sim.options.token.clone();
        Running::spawn(sim, token, |state| {
            Router::new()
                .route("/v1/workspace", get(workspace_v1))
                .route("/v2/workspace", get(workspace_v2))
                .route("/v2/pool/subaccounts", get(subaccount_list))
                .route("/{version}/pool/summary/{currency}", get(summary_any))
                .route("/{version}/pool/workers/{currency}", get(workers_any))
                .route(
                    "/{version}/pool/hashrate-efficiency/{currency}",
                    get(history::hashrate_efficiency),
                )
                .route(
                    "/{version}/pool/active-workers/{currency}",
                    get(history::active_workers),
                )
                .route(
                    "/{version}/pool/workers-hashrate-efficiency/{currency}/{subaccount}",
                    get(history::workers_hashrate_efficiency),
                )
                .fallback(|| async { *not_found() })
                .with_state(state)
        })
        .await
    }

    /// What the history endpoints draw a subaccount's series around: the seed, its nominal
    /// hashrate (H/s) and its worker count. The series key is `luxor/<subaccount>`.
    pub fn history_basis(&self, subaccount: &str) -> Option<(u64, f64, usize)> {
        self.with(|s| {
            s.subaccounts
                .iter()
                .find(|a| a.name == subaccount)
                .map(|a| (s.options.seed, a.nominal, a.worker_count))
        })
    }

    /// Worker names of one subaccount.
    pub fn worker_names(&self, subaccount: &str) -> Vec<String> {
        self.with(|s| {
            s.subaccounts
                .iter()
                .filter(|a| a.name == subaccount)
                .flat_map(|a| a.farm.names())
                .collect()
        })
    }
}

/// The documented shape: `{"error":{"code","message"}}`.
fn error(status: StatusCode, code: &str, message: &str) -> Refused {
    Box::new(
        (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response(),
    )
}

/// The Fastify shape Luxor's own mock answers validation and auth failures with.
fn fastify_error(status: StatusCode, message: &str) -> Refused {
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut body = json!({"statusCode": status.as_u16(), "error": reason, "message": message});
    if status == StatusCode::BAD_REQUEST {
        body["code"] = json!("FST_ERR_VALIDATION");
    }
    Box::new((status, Json(body)).into_response())
}

fn not_found() -> Refused {
    error(StatusCode::NOT_FOUND, "not_found", "Not found")
}

/// Auth, both buckets and injected failures, shared by every route.
fn gate(sim: &mut LuxorSim, headers: &HeaderMap) -> Result<(), Refused> {
    sim.counters.received();
    let key = headers.get("authorization").and_then(|v| v.to_str().ok());
    if key != Some(sim.options.token.as_str()) {
        return Err(fastify_error(
            StatusCode::UNAUTHORIZED,
            "Invalid or missing API key",
        ));
    }
    if let Err(wait) = sim
        .key_bucket
        .take()
        .and_then(|()| sim.workspace_bucket.take())
    {
        sim.counters.rate_limited += 1;
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Rate limit exceeded",
        );
        let value = HeaderValue::from_str(&wait.to_string()).expect("digits are a valid header");
        response.headers_mut().insert("retry-after", value);
        return Err(response);
    }
    if !sim.options.permitted {
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not enough permissions for this resource",
        ));
    }
    if let Some(status) = sim.counters.injected() {
        return Err(error(
            status,
            "internal_error",
            status.canonical_reason().unwrap_or("Internal error"),
        ));
    }
    for account in &mut sim.subaccounts {
        account.farm.advance();
        let hashrate = account.farm.total_hashrate();
        account.wallet.accrue(hashrate);
    }
    Ok(())
}

fn answer(
    sim: &Shared<LuxorSim>,
    headers: &HeaderMap,
    body: impl FnOnce(&LuxorSim) -> Result<Value, Refused>,
) -> Response {
    let mut sim = lock(sim);
    if let Err(refused) = gate(&mut sim, headers) {
        return *refused;
    }
    match body(&sim) {
        Ok(value) => Json(value).into_response(),
        Err(refused) => *refused,
    }
}

#[derive(Debug, Deserialize, Default)]
struct ListQuery {
    subaccount_names: Option<String>,
    site_id: Option<String>,
    status: Option<String>,
    page_number: Option<usize>,
    page_size: Option<usize>,
    /// More query pairs a next page's address repeats (the history endpoints' dates).
    #[serde(skip)]
    extra: Vec<(&'static str, String)>,
}

impl ListQuery {
    /// The page as (number, size), or a 400 for nonsense.
    fn page(&self) -> Result<(usize, usize), Refused> {
        let number = self.page_number.unwrap_or(1);
        let size = self.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if number == 0 || size == 0 {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid parameters provided",
            ));
        }
        Ok((number, size.min(MAX_PAGE_SIZE)))
    }

    /// The path and query of another page of the same list, as `next_page_url` gives it.
    fn page_url(&self, path: &str, number: usize, size: usize) -> String {
        let mut url = reqwest::Url::parse("http://localhost/").expect("a valid constant URL");
        url.set_path(path);
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("page_number", &number.to_string());
            pairs.append_pair("page_size", &size.to_string());
            for (key, value) in [
                ("subaccount_names", &self.subaccount_names),
                ("site_id", &self.site_id),
                ("status", &self.status),
            ] {
                if let Some(v) = value {
                    pairs.append_pair(key, v);
                }
            }
            for (key, value) in &self.extra {
                pairs.append_pair(key, value);
            }
        }
        format!("{}?{}", url.path(), url.query().unwrap_or(""))
    }
}

/// One page of `items` with Luxor's pagination object.
fn paginate<T>(items: Vec<T>, q: &ListQuery, path: &str) -> Result<(Vec<T>, Value), Refused> {
    let (number, size) = q.page()?;
    let count = items.len();
    let page: Vec<T> = items
        .into_iter()
        .skip((number - 1) * size)
        .take(size)
        .collect();
    let next = (number * size < count).then(|| q.page_url(path, number + 1, size));
    let previous = (number > 1).then(|| q.page_url(path, number - 1, size));
    let pagination = json!({"page_number": number, "page_size": size, "item_count": count,
                            "previous_page_url": previous, "next_page_url": next});
    Ok((page, pagination))
}

fn check_currency(currency: &str) -> Result<(), Refused> {
    if CURRENCIES.contains(&currency) {
        Ok(())
    } else {
        Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid parameters provided",
        ))
    }
}

impl LuxorSim {
    /// The subaccounts a query selects. v2 needs a selection; v1 takes none as "all".
    fn select(&self, q: &ListQuery, v2: bool) -> Result<Vec<&Subaccount>, Refused> {
        match (&q.subaccount_names, &q.site_id) {
            (None, None) if v2 => Err(fastify_error(
                StatusCode::BAD_REQUEST,
                "querystring/subaccount_names/site_id Provide one or more subaccount names or a site id",
            )),
            (None, None) => Ok(self.subaccounts.iter().collect()),
            (_, Some(site)) if site != SITE_ID => {
                Err(error(StatusCode::NOT_FOUND, "not_found", "site not found"))
            }
            (Some(names), _) => names
                .split(',')
                .map(|name| {
                    self.subaccounts
                        .iter()
                        .find(|a| a.name == name.trim())
                        .ok_or_else(|| {
                            error(StatusCode::NOT_FOUND, "not_found", "subaccount not found")
                        })
                })
                .collect(),
            (None, Some(_)) => Ok(self.subaccounts.iter().collect()),
        }
    }

    fn subaccount_json(a: &Subaccount) -> Value {
        json!({"id": a.id, "name": a.name, "site_id": SITE_ID,
               "created_at": "2024-03-01T00:00:00Z", "url": format!("/v2/pool/subaccounts/{}", a.name)})
    }
}

async fn workspace_v1(State(sim): State<Shared<LuxorSim>>, headers: HeaderMap) -> Response {
    answer(&sim, &headers, |s| {
        if !s.options.v1_workspace {
            return Err(not_found());
        }
        let subaccounts: Vec<Value> = s
            .subaccounts
            .iter()
            .map(|a| json!({"id": a.id, "name": a.name, "created_at": "2024-03-01T00:00:00Z",
                            "url": format!("/v1/pool/groups/{SITE_ID}/subaccounts/{}", a.id), "pool_fee": 0}))
            .collect();
        Ok(json!({
            "id": "575370fd-0000-4000-8000-000000000001",
            "name": s.options.workspace,
            "groups": [{"id": SITE_ID, "name": "Main site", "type": "POOL",
                        "url": format!("/v1/workspace/groups/{SITE_ID}"),
                        "members": [], "subaccounts": subaccounts}],
        }))
    })
}

async fn workspace_v2(State(sim): State<Shared<LuxorSim>>, headers: HeaderMap) -> Response {
    answer(&sim, &headers, |s| {
        Ok(
            json!({"id": "575370fd-0000-4000-8000-000000000001", "name": s.options.workspace,
                  "products": ["POOL"], "sites": [{"id": SITE_ID, "name": "Main site"}]}),
        )
    })
}

async fn subaccount_list(
    State(sim): State<Shared<LuxorSim>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    answer(&sim, &headers, |s| {
        let selected = match &q.site_id {
            Some(_) => s.select(&q, true)?,
            None => s.subaccounts.iter().collect(),
        };
        let items = selected
            .into_iter()
            .map(LuxorSim::subaccount_json)
            .collect();
        let (page, pagination) = paginate(items, &q, "/v2/pool/subaccounts")?;
        Ok(json!({"subaccounts": page, "pagination": pagination}))
    })
}

fn summary(
    sim: Shared<LuxorSim>,
    headers: HeaderMap,
    currency: String,
    q: ListQuery,
    v2: bool,
) -> Response {
    answer(&sim, &headers, |s| {
        check_currency(&currency)?;
        let selected = s.select(&q, v2)?;
        let workers = || selected.iter().flat_map(|a| a.farm.workers.iter());
        let sum = |f: fn(&FarmWorker) -> f64| workers().map(f).sum::<f64>();
        let count = workers().count().max(1) as f64;
        let now = crate::clock::WallClock::Tokio.now();
        let day: f64 = selected
            .iter()
            .map(|a| {
                a.wallet
                    .per_day(a.farm.workers.iter().map(|w| w.avg_24h).sum())
            })
            .sum();
        let wallet_sum = |f: fn(&Wallet) -> f64| selected.iter().map(|a| f(&a.wallet)).sum::<f64>();
        let hashprice = selected.first().map_or(0.0006, |a| a.wallet.hashprice);
        let coin = currency.as_str();
        Ok(json!({
            "currency_type": currency,
            "subaccounts": selected.iter().map(|a| json!({"id": a.id, "name": a.name, "site_id": SITE_ID})).collect::<Vec<_>>(),
            "hashrate_5m": format!("{}", sum(|w| w.hashrate).round() as u64),
            "hashrate_1h": format!("{}", sum(|w| w.avg_1h).round() as u64),
            "hashrate_24h": format!("{}", sum(|w| w.avg_24h).round() as u64),
            "efficiency_5m": sum(FarmWorker::efficiency) / count,
            "uptime_24h": workers().filter(|w| w.online()).count() as f64 / count,
            "active_miners": workers().filter(|w| is_active(w, now)).count(),
            "revenue_24h": [{"currency_type": coin, "revenue_type": "MINING", "revenue": day}],
            "revenue_all_time": [{"currency_type": coin, "revenue_type": "MINING", "revenue": wallet_sum(|w| w.earned_total)}],
            "balance": [{"currency_type": coin, "revenue": wallet_sum(|w| w.balance)}],
            "hashprice": [{"currency_type": coin, "value": hashprice}],
        }))
    })
}

/// Which API version a path's first segment names: Some(false) for v1, Some(true) for v2.
fn is_v2(version: &str) -> Option<bool> {
    match version {
        "v1" => Some(false),
        "v2" => Some(true),
        _ => None,
    }
}

/// `/v1/pool/summary/{currency}` and `/v2/pool/summary/{currency}`.
async fn summary_any(
    State(sim): State<Shared<LuxorSim>>,
    headers: HeaderMap,
    Path((version, currency)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Response {
    match is_v2(&version) {
        Some(v2) => summary(sim, headers, currency, q, v2),
        None => *not_found(),
    }
}

fn is_active(w: &FarmWorker, now: std::time::SystemTime) -> bool {
    now.duration_since(w.last_share).unwrap_or_default() < ACTIVE_WITHIN
}

fn workers(
    sim: Shared<LuxorSim>,
    headers: HeaderMap,
    currency: String,
    q: ListQuery,
    v2: bool,
) -> Response {
    answer(&sim, &headers, |s| {
        check_currency(&currency)?;
        let selected = s.select(&q, v2)?;
        let now = crate::clock::WallClock::Tokio.now();
        let mut totals: BTreeMap<bool, usize> = BTreeMap::new();
        // Only the page's workers are rendered: a big farm is asked for page after page.
        let mut items = Vec::new();
        for account in &selected {
            for w in &account.farm.workers {
                let active = is_active(w, now);
                *totals.entry(active).or_default() += 1;
                let status = if active { "ACTIVE" } else { "INACTIVE" };
                if q.status.as_deref().is_none_or(|want| want == status) {
                    items.push((account, w, status));
                }
            }
        }
        let path = format!("/{}/pool/workers/{currency}", if v2 { "v2" } else { "v1" });
        let (page, pagination) = paginate(items, &q, &path)?;
        let page: Vec<Value> = page
            .into_iter()
            .map(|(account, w, status)| {
                json!({
                    "id": format!("{currency}-{}-{}", account.name, w.name),
                    "currency_type": currency,
                    "subaccount_name": account.name,
                    "name": w.name,
                    "firmware": "1.0.0",
                    "hashrate": w.hashrate.round(),
                    "efficiency": w.efficiency(),
                    "stale_shares": w.stale_ratio(),
                    "rejected_shares": w.rejected_ratio(),
                    "last_share_time": iso(w.last_share),
                    "status": status,
                })
            })
            .collect();
        Ok(json!({
            "currency_type": currency,
            "subaccounts": selected.iter().map(|a| json!({"id": a.id, "name": a.name})).collect::<Vec<_>>(),
            "total_active": totals.get(&true).copied().unwrap_or(0),
            "total_inactive": totals.get(&false).copied().unwrap_or(0),
            "workers": page,
            "pagination": pagination,
        }))
    })
}

/// `/v1/pool/workers/{currency}` and `/v2/pool/workers/{currency}`.
async fn workers_any(
    State(sim): State<Shared<LuxorSim>>,
    headers: HeaderMap,
    Path((version, currency)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Response {
    match is_v2(&version) {
        Some(v2) => workers(sim, headers, currency, q, v2),
        None => *not_found(),
    }
}
