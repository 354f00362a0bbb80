//! Luxor's history endpoints (docs.luxor.tech/mining/api/v2): hashrate and efficiency and
//! active workers of the selected subaccounts, and the per-worker series keyed by worker
//! name. `start_date` and `end_date` (`YYYY-MM-DD`, the end not after today) and
//! `tick_size` are required; `5m` ticks reach back to the last complete week, `1h` to the
//! last complete month, `1d` to `HISTORY_DAYS`. Only complete ticks are served, oldest
//! first, paginated like the lists. Values come from `demo::history`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ListQuery, LuxorSim, Subaccount, answer, check_currency, error, is_v2, not_found};
use crate::demo::farm::unix_now;
use crate::demo::harness::{Refused, Shared};
use crate::demo::history;

#[derive(Debug, Deserialize, Default)]
pub(super) struct HistoryQuery {
    subaccount_names: Option<String>,
    site_id: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    tick_size: Option<String>,
    worker_names: Option<String>,
    page_number: Option<usize>,
    page_size: Option<usize>,
}

impl HistoryQuery {
    fn list(&self) -> ListQuery {
        let mut extra: Vec<(&'static str, String)> = Vec::new();
        for (key, value) in [
            ("start_date", &self.start_date),
            ("end_date", &self.end_date),
            ("tick_size", &self.tick_size),
            ("worker_names", &self.worker_names),
        ] {
            if let Some(v) = value {
                extra.push((key, v.clone()));
            }
        }
        ListQuery {
            subaccount_names: self.subaccount_names.clone(),
            site_id: self.site_id.clone(),
            status: None,
            page_number: self.page_number,
            page_size: self.page_size,
            extra,
        }
    }
}

fn invalid(message: &str) -> Refused {
    error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// The ticks a query asks for: `[start, end)` in Unix seconds and the tick length, checked
/// the way the API checks them, and held to what the pool still keeps at that tick.
fn span(q: &HistoryQuery, ticks: &[&str], now: i64) -> Result<(i64, i64, i64), Refused> {
    let date = |d: &Option<String>, name: &str| {
        d.as_deref()
            .and_then(history::parse_date)
            .ok_or_else(|| invalid(&format!("{name} must be a date YYYY-MM-DD")))
    };
    let start = date(&q.start_date, "start_date")?;
    let end = date(&q.end_date, "end_date")?;
    if end > history::day_start(now) {
        return Err(invalid("end_date cannot be in the future"));
    }
    if start > end {
        return Err(invalid("start_date must not be after end_date"));
    }
    let tick = q.tick_size.as_deref().unwrap_or_default();
    if !ticks.contains(&tick) {
        return Err(invalid(&format!(
            "tick_size must be one of {}",
            ticks.join(", ")
        )));
    }
    let (seconds, kept_from) = match tick {
        "5m" => (300, history::last_complete_week(now)),
        "1h" => (3600, history::last_complete_month(now)),
        _ => (
            86_400,
            history::day_start(now) - history::HISTORY_DAYS * 86_400,
        ),
    };
    Ok((start.max(kept_from), history::next_day(end), seconds))
}

fn selected<'a>(sim: &'a LuxorSim, q: &HistoryQuery) -> Result<Vec<&'a Subaccount>, Refused> {
    sim.select(&q.list(), true)
}

fn key(a: &Subaccount) -> String {
    format!("luxor/{}", a.name)
}

/// A subaccount series endpoint: every tick the query asks for, as `point` draws it for
/// the selected subaccounts, paginated, in Luxor's envelope with the list under `field`.
/// `/v1/...` is served too where `v1` says so.
fn series(
    sim: &Shared<LuxorSim>,
    headers: &HeaderMap,
    (version, currency): (String, String),
    q: &HistoryQuery,
    (field, v1): (&'static str, bool),
    point: impl Fn(u64, &[&Subaccount], i64) -> Value,
) -> Response {
    match is_v2(&version) {
        Some(true) => {}
        Some(false) if v1 => {}
        _ => return *not_found(),
    }
    answer(sim, headers, |s| {
        check_currency(&currency)?;
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        let (from, until, tick) = span(q, &["5m", "1h", "1d"], now)?;
        let accounts = selected(s, q)?;
        let points: Vec<Value> = history::ticks(from, until, tick, now)
            .map(|t| point(s.options.seed, &accounts, t))
            .collect();
        let path = format!("/v2/pool/{}/{currency}", field.replace('_', "-"));
        let (page, pagination) = super::paginate(points, &q.list(), &path)?;
        Ok(json!({
            "currency_type": currency,
            "subaccounts": accounts.iter().map(|a| json!({"id": a.id, "name": a.name})).collect::<Vec<_>>(),
            "start_date": q.start_date, "end_date": q.end_date, "tick_size": q.tick_size,
            field: page,
            "pagination": pagination,
        }))
    })
}

/// `/v1/pool/hashrate-efficiency/{currency}` and `/v2/...`.
pub(super) async fn hashrate_efficiency(
    State(sim): State<Shared<LuxorSim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    series(
        &sim,
        &headers,
        path,
        &q,
        ("hashrate_efficiency", true),
        |seed, accounts, t| {
            let hashrate: f64 = accounts
                .iter()
                .map(|a| history::hashrate(seed, &key(a), a.nominal, t))
                .sum();
            let efficiency = accounts
                .first()
                .map(|a| history::efficiency(seed, &key(a), t))
                .unwrap_or(0.0);
            json!({"date_time": history::iso_seconds(t), "hashrate": format!("{hashrate}"),
               "efficiency": efficiency})
        },
    )
}

/// `/v2/pool/active-workers/{currency}`.
pub(super) async fn active_workers(
    State(sim): State<Shared<LuxorSim>>,
    headers: HeaderMap,
    Path(path): Path<(String, String)>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    series(
        &sim,
        &headers,
        path,
        &q,
        ("active_workers", false),
        |seed, accounts, t| {
            let active: usize = accounts
                .iter()
                .map(|a| history::active_workers(seed, &key(a), a.worker_count, t))
                .sum();
            json!({"date_time": history::iso_seconds(t), "active_workers": active})
        },
    )
}

/// `/v2/pool/workers-hashrate-efficiency/{currency}/{subaccount}`: paginated by worker.
pub(super) async fn workers_hashrate_efficiency(
    State(sim): State<Shared<LuxorSim>>,
    headers: HeaderMap,
    Path((version, currency, subaccount)): Path<(String, String, String)>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    if is_v2(&version) != Some(true) {
        return *not_found();
    }
    answer(&sim, &headers, |s| {
        check_currency(&currency)?;
        let now = i64::try_from(unix_now()).unwrap_or(i64::MAX);
        let (from, until, tick) = span(&q, &["1h", "1d"], now)?;
        let account = s
            .subaccounts
            .iter()
            .find(|a| a.name == subaccount)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "not_found", "subaccount not found"))?;
        let wanted: Option<Vec<&str>> = q
            .worker_names
            .as_deref()
            .map(|names| names.split(',').map(str::trim).collect());
        let workers: Vec<(String, f64)> = account
            .farm
            .workers
            .iter()
            .filter(|w| wanted.as_ref().is_none_or(|n| n.contains(&w.name.as_str())))
            .map(|w| (w.name.clone(), w.nominal))
            .collect();
        let path = format!("/v2/pool/workers-hashrate-efficiency/{currency}/{subaccount}");
        let (page, pagination) = super::paginate(workers, &q.list(), &path)?;
        let seed = s.options.seed;
        let mut by_worker = serde_json::Map::new();
        for (name, nominal) in page {
            let series_key = format!("luxor/{}/{name}", account.name);
            let points: Vec<Value> = history::ticks(from, until, tick, now)
                .map(|t| {
                    json!({"date_time": history::iso_seconds(t),
                           "hashrate": format!("{}", history::hashrate(seed, &series_key, nominal, t)),
                           "efficiency": history::efficiency(seed, &series_key, t),
                           "est_revenue": 0.0})
                })
                .collect();
            by_worker.insert(name, Value::Array(points));
        }
        Ok(json!({
            "currency_type": currency,
            "start_date": q.start_date, "end_date": q.end_date, "tick_size": q.tick_size,
            "hashrate_efficiency_revenue": by_worker,
            "pagination": pagination,
        }))
    })
}
