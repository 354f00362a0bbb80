//! Luxor's history (docs.luxor.tech/mining/api/v2): `hashrate-efficiency` and
//! `active-workers` per subaccount, and with `--workers` the per-worker
//! `workers-hashrate-efficiency`. Each tick reaches back only so far: `5m` to the last
//! complete week, `1h` to the last complete month, `1d` to the start. So the span is cut
//! where the depths fall and each part asked at the finest tick that reaches it; each part
//! in runs of whole days that fit one page of 1000 points.

use serde::Deserialize;

use super::{
    Collector, Discovery, Fetched, History, HistoryFuture, MAX_TASK_PAGES, Span, Task, by_days,
};
use crate::backfill::calendar::{date_of, day_start, last_complete_month, last_complete_week};
use crate::client::Upstream;
use crate::error::PollError;
use crate::metrics::{
    ACCOUNT_EFFICIENCY, ACCOUNT_HASHRATE, WORKER_EFFICIENCY, WORKER_HASHRATE, WORKERS,
};
use crate::sources::fields::{Items, Num, num, unix_seconds};
use crate::sources::luxor::{LuxorConfig, Pagination, algorithm_of, subaccount_list};

const HASHRATE: &str = "/v2/pool/hashrate-efficiency/{currency}";
const ACTIVE: &str = "/v2/pool/active-workers/{currency}";
const PER_WORKER: &str = "/v2/pool/workers-hashrate-efficiency/{currency}/{subaccount}";
/// Points a page holds: the page size asked.
const PAGE_POINTS: i64 = 1000;
/// Per-worker answers carry every point of every worker on the page: this many points a
/// page at most, so a page stays well under the response cap.
const WORKER_PAGE_POINTS: i64 = 5000;

pub struct LuxorHistory {
    currency: String,
    configured: Vec<String>,
    site_id: Option<String>,
}

impl LuxorHistory {
    pub fn new(settings: &LuxorConfig) -> Self {
        LuxorHistory {
            currency: settings.currency.clone(),
            configured: settings.subaccounts.clone(),
            site_id: settings.site_id.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Point {
    #[serde(default)]
    date_time: Option<String>,
    #[serde(default)]
    hashrate: Option<Num>,
    #[serde(default)]
    efficiency: Option<Num>,
    #[serde(default)]
    active_workers: Option<Num>,
}

#[derive(Debug, Deserialize)]
struct SeriesPage {
    #[serde(default)]
    hashrate_efficiency: Items<Point>,
    #[serde(default)]
    active_workers: Items<Point>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct WorkersPage {
    #[serde(default)]
    hashrate_efficiency_revenue: std::collections::BTreeMap<String, Items<Point>>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

/// The finest tick that reaches each part of `[from, until)` (see the module comment).
fn parts(span: &Span, finest: &[(i64, i64)]) -> Vec<(i64, i64, i64)> {
    let mut parts = Vec::new();
    let mut until = span.until;
    for (tick, reaches_back_to) in finest {
        let from = span.from.max(*reaches_back_to);
        if from < until {
            parts.push((from, until, *tick));
            until = from;
        }
    }
    parts.reverse();
    parts
}

fn depths(now: i64) -> [(i64, i64); 3] {
    [
        (300, last_complete_week(now)),
        (3600, last_complete_month(now)),
        (86_400, i64::MIN),
    ]
}

impl LuxorHistory {
    async fn subaccounts(&self, api: &Upstream) -> Result<Vec<String>, PollError> {
        if !self.configured.is_empty() {
            return Ok(self.configured.clone());
        }
        subaccount_list(api, self.site_id.as_deref(), MAX_TASK_PAGES).await
    }

    /// Every page of one task, each handed to `read` as it comes.
    async fn pages<T, F>(
        &self,
        api: &Upstream,
        task: &Task,
        path: &str,
        extra: &[(&str, &str)],
        mut read: F,
    ) -> Result<(), PollError>
    where
        T: serde::de::DeserializeOwned + Send + 'static,
        F: FnMut(T) -> Option<Pagination>,
    {
        let start = date_of(task.from);
        let end = date_of(task.until - 1);
        let tick = match task.tick {
            300 => "5m",
            3600 => "1h",
            _ => "1d",
        };
        for page in 1..=MAX_TASK_PAGES {
            let number = page.to_string();
            let mut query = vec![
                ("start_date", start.as_str()),
                ("end_date", end.as_str()),
                ("tick_size", tick),
                ("page_number", number.as_str()),
                ("page_size", task.detail.as_str()),
            ];
            query.extend_from_slice(extra);
            let answer: T = api.get_json(task.endpoint, path, &query).await?;
            if read(answer).and_then(|p| p.next_page_url).is_none() {
                return Ok(());
            }
        }
        Err(PollError::decode(
            task.endpoint,
            format!("the history goes on past {MAX_TASK_PAGES} pages for one task"),
        ))
    }

    async fn fetch_task(
        &self,
        api: &Upstream,
        task: &Task,
        span: &Span,
    ) -> Result<Fetched, PollError> {
        let currency = self.currency.as_str();
        let algorithm = algorithm_of(currency);
        let account = task.subject.as_str();
        let mut collect = Collector::new(task, span.now);
        let point_time = |p: &Point| unix_seconds(p.date_time.as_deref());
        match task.endpoint {
            HASHRATE | ACTIVE => {
                let path = if task.endpoint == HASHRATE {
                    format!("/v2/pool/hashrate-efficiency/{currency}")
                } else {
                    format!("/v2/pool/active-workers/{currency}")
                };
                self.pages(
                    api,
                    task,
                    &path,
                    &[("subaccount_names", account)],
                    |page: SeriesPage| {
                        collect.next_answer();
                        collect_unreadable(&mut collect, &page.hashrate_efficiency);
                        collect_unreadable(&mut collect, &page.active_workers);
                        for p in page.hashrate_efficiency.read {
                            let Some(t) = point_time(&p) else {
                                collect.unreadable();
                                continue;
                            };
                            match num(p.hashrate) {
                                Some(h) => {
                                    collect.point(&ACCOUNT_HASHRATE, &[account, algorithm], t, h)
                                }
                                None => collect.unreadable(),
                            }
                            if let Some(e) = num(p.efficiency) {
                                collect.beside(&ACCOUNT_EFFICIENCY, &[account], t, e);
                            }
                        }
                        for p in page.active_workers.read {
                            match (point_time(&p), num(p.active_workers)) {
                                (Some(t), Some(n)) => {
                                    collect.point(&WORKERS, &[account, "active"], t, n)
                                }
                                _ => collect.unreadable(),
                            }
                        }
                        page.pagination
                    },
                )
                .await?;
            }
            _ => {
                let path = format!(
                    "/v2/pool/workers-hashrate-efficiency/{currency}/{}",
                    crate::client::escape_path_segment(account)
                );
                self.pages(api, task, &path, &[], |page: WorkersPage| {
                    collect.next_answer();
                    for (worker, points) in &page.hashrate_efficiency_revenue {
                        collect_unreadable(&mut collect, points);
                        for p in &points.read {
                            let Some(t) = point_time(p) else {
                                collect.unreadable();
                                continue;
                            };
                            match num(p.hashrate) {
                                Some(h) => collect.point(
                                    &WORKER_HASHRATE,
                                    &[account, worker, algorithm],
                                    t,
                                    h,
                                ),
                                None => collect.unreadable(),
                            }
                            if let Some(e) = num(p.efficiency) {
                                collect.beside(&WORKER_EFFICIENCY, &[account, worker], t, e);
                            }
                        }
                    }
                    page.pagination
                })
                .await?;
            }
        }
        Ok(collect.finish())
    }
}

/// Items the list could not read at all count as unreadable points.
fn collect_unreadable<T>(collect: &mut Collector<'_>, items: &Items<T>) {
    for _ in 0..items.unreadable {
        collect.unreadable();
    }
}

impl History for LuxorHistory {
    fn discover<'a>(&'a self, api: &'a Upstream, _workers: bool) -> HistoryFuture<'a, Discovery> {
        Box::pin(async move {
            Ok(Discovery {
                names: self.subaccounts(api).await?,
                workers: Vec::new(),
            })
        })
    }

    fn tasks(&self, discovery: &Discovery, span: &Span, workers: bool) -> Vec<Task> {
        // An end date after today is an error: nothing later than today's midnight is
        // asked for by date, and today's ticks come with today's date.
        let span = Span {
            until: span.until.min(day_start(span.now) + 86_400),
            ..*span
        };
        let mut tasks = Vec::new();
        for account in &discovery.names {
            for (from, until, tick) in parts(&span, &depths(span.now)) {
                let days = (PAGE_POINTS * tick / 86_400).max(1);
                for (a, b) in by_days(from, until, days) {
                    for endpoint in [HASHRATE, ACTIVE] {
                        tasks.push(Task {
                            id: format!("{endpoint}|{account}|{a}|{b}|{tick}"),
                            endpoint,
                            subject: account.clone(),
                            detail: PAGE_POINTS.to_string(),
                            from: a,
                            until: b,
                            tick,
                            requests: 1,
                        });
                    }
                }
            }
            if workers {
                // No 5-minute ticks per worker: hourly as far as they reach, then daily.
                let finest = [(3600, last_complete_month(span.now)), (86_400, i64::MIN)];
                for (from, until, tick) in parts(&span, &finest) {
                    let days = if tick == 3600 { 7 } else { 365 };
                    for (a, b) in by_days(from, until, days) {
                        let ticks = ((b - a) / tick).max(1);
                        let page_size = (WORKER_PAGE_POINTS / ticks).clamp(1, 1000);
                        tasks.push(Task {
                            id: format!("{PER_WORKER}|{account}|{a}|{b}|{tick}"),
                            endpoint: PER_WORKER,
                            subject: account.clone(),
                            detail: page_size.to_string(),
                            from: a,
                            until: b,
                            tick,
                            requests: 1,
                        });
                    }
                }
            }
        }
        tasks
    }

    fn fetch<'a>(
        &'a self,
        api: &'a Upstream,
        task: &'a Task,
        span: &'a Span,
    ) -> HistoryFuture<'a, Fetched> {
        Box::pin(self.fetch_task(api, task, span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backfill::calendar::parse_date;

    #[test]
    fn each_part_of_a_month_is_asked_at_the_finest_tick_that_reaches_it() {
        // Thursday 2026-12-03 12:00: 5m from Monday 2026-11-23, 1h from 2026-11-01.
        let now = parse_date("2026-12-03").unwrap() + 12 * 3600;
        let from = parse_date("2026-10-15").unwrap();
        let span = Span {
            from,
            until: now,
            now,
        };
        let got = parts(&span, &depths(now));
        let week = parse_date("2026-11-23").unwrap();
        let month = parse_date("2026-11-01").unwrap();
        assert_eq!(
            got,
            [(from, month, 86_400), (month, week, 3600), (week, now, 300)]
        );
        let history = LuxorHistory {
            currency: "BTC".into(),
            configured: vec!["hq".into()],
            site_id: None,
        };
        let discovery = Discovery {
            names: vec!["hq".into()],
            workers: vec![],
        };
        let tasks = history.tasks(&discovery, &span, false);
        // 1d: one task; 1h: 22 days in one; 5m: 10.5 days in runs of 3: 4 runs; two
        // endpoints each.
        assert_eq!(tasks.len(), 2 * (1 + 1 + 4), "{tasks:#?}");
        assert!(tasks.iter().all(|t| t.until - t.from <= 41 * 86_400));
        let with_workers = history.tasks(&discovery, &span, true);
        // Per worker: hourly from 2026-11-01 in weeks (5), daily before (1).
        assert_eq!(with_workers.len(), tasks.len() + 5 + 1);
    }
}
