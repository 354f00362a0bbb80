//! Ultimate Proxy's history: the account's hashrate series per algorithm
//! (`/v1/workers/hashrate?timeRange=`), and with `--workers` each worker's
//! (`/v1/workers/{id}/hashrate`). A `timeRange` always ends now, with a bucket that grows
//! with it (24h: 15 min, 7d: 1 h, 30d: 4 h), so the span is cut into the last day, the
//! week before it and the rest of the month, each read from the range that covers it
//! most finely. Nothing reaches back past 30 days.

use serde::Deserialize;

use super::{Collector, Discovery, Fetched, History, HistoryFuture, MAX_TASK_PAGES, Span, Task};
use crate::client::{Upstream, escape_path_segment};
use crate::error::PollError;
use crate::metrics::{ACCOUNT_HASHRATE, WORKER_HASHRATE};
use crate::sources::UNKNOWN_ALGORITHM;
use crate::sources::fields::{Items, Num, num};
use crate::sources::shared::{algorithm_label, worker_label};
use crate::sources::ultimate_proxy::config::UltimateProxyConfig;
use crate::sources::ultimate_proxy::{MAX_ALGORITHMS, OVERVIEW, Overview, every_worker};

/// The worker list's endpoint, as errors name it.
const WORKERS_LIST: &str = "/v1/workers";

const SERIES: &str = "/v1/workers/hashrate";
const WORKER_SERIES: &str = "/v1/workers/{id}/hashrate";
/// Workers whose series `--workers` reads, at three requests each.
pub const MAX_WORKERS: usize = 10_000;

/// Each `timeRange` and its bucket, finest first: (name, seconds back, bucket).
const RANGES: [(&str, i64, i64); 3] = [
    ("24h", 86_400, 900),
    ("7d", 7 * 86_400, 3600),
    ("30d", 30 * 86_400, 14_400),
];

pub struct UltimateProxyHistory {
    account: String,
}

impl UltimateProxyHistory {
    pub fn new(settings: &UltimateProxyConfig) -> Self {
        UltimateProxyHistory {
            account: settings.account.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Series {
    #[serde(default)]
    data: Items<Bucket>,
}

#[derive(Debug, Deserialize)]
struct Bucket {
    #[serde(default)]
    timestamp: Option<Num>,
    #[serde(default)]
    hashrate: Option<Num>,
}

/// Each range's slice of the span: the last day from `24h`, the six days before from
/// `7d`, the rest from `30d`; (range, from, until, bucket).
fn slices(span: &Span) -> Vec<(&'static str, i64, i64, i64)> {
    let mut slices = Vec::new();
    let mut until = span.until;
    for (range, back, bucket) in RANGES {
        let from = span.from.max(span.now - back);
        if from < until {
            slices.push((range, from, until, bucket));
            until = from;
        }
    }
    slices.reverse();
    slices
}

impl UltimateProxyHistory {
    async fn discover_all(&self, api: &Upstream, workers: bool) -> Result<Discovery, PollError> {
        let overview: Overview = api.get_json(OVERVIEW, OVERVIEW, &[]).await?;
        let mut names: Vec<String> = overview
            .by_algorithm
            .unwrap_or_default()
            .into_iter()
            .map(|a| algorithm_label(a.algorithm.as_deref()))
            .collect();
        let mut listed = Vec::new();
        if workers {
            for w in every_worker(api, MAX_TASK_PAGES).await?.read {
                let Some(name) = worker_label(&w.name, &w.id).map(str::to_string) else {
                    continue;
                };
                // The series is asked for by id.
                let Some(id) = w.id else { continue };
                let algorithm = algorithm_label(w.algorithm.as_deref());
                names.push(algorithm.clone());
                listed.push((id, name, algorithm));
            }
            if listed.len() > MAX_WORKERS {
                return Err(PollError::decode(
                    WORKERS_LIST,
                    format!(
                        "the account lists {} workers; the backfill reads the series of at most {MAX_WORKERS}",
                        listed.len()
                    ),
                ));
            }
        }
        names.sort();
        names.dedup();
        names.retain(|n| n != UNKNOWN_ALGORITHM);
        if names.len() > MAX_ALGORITHMS {
            return Err(PollError::decode(
                OVERVIEW,
                format!(
                    "the account names {} algorithms; the backfill reads at most {MAX_ALGORITHMS}",
                    names.len()
                ),
            ));
        }
        listed.sort();
        Ok(Discovery {
            names,
            workers: listed,
        })
    }

    /// One task: its slice from its range, and, where the task runs after its range has
    /// moved on (a `timeRange` ends at the request, not where the plan cut the span), the
    /// part the range no longer reaches from the coarser ranges that still do. A tick the
    /// task planned that no range brings at its tick is counted as expired.
    async fn fetch_task(
        &self,
        api: &Upstream,
        task: &Task,
        span: &Span,
    ) -> Result<Fetched, PollError> {
        let fine = RANGES
            .iter()
            .position(|(_, _, bucket)| *bucket == task.tick)
            .unwrap_or(RANGES.len() - 1);
        let asked_at = api
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        // Where range `i` starts when asked now.
        let reaches = |i: usize| {
            RANGES
                .get(i)
                .map_or(i64::MAX, |(_, back, _)| asked_at.saturating_sub(*back))
        };
        let first_tick = |from: i64, tick: i64| {
            from.div_euclid(tick) * tick + if from.rem_euclid(tick) == 0 { 0 } else { tick }
        };
        let fine_from = task.from.max(reaches(fine));
        let mut fetched = Fetched::default();
        if first_tick(fine_from, task.tick) < task.until {
            fetched = self
                .read_range(api, task, span, fine, fine_from, task.until)
                .await?;
        }
        // The task's ticks the range no longer reaches at its tick.
        let gone_until = fine_from.min(task.until);
        if first_tick(task.from, task.tick) < gone_until {
            let mut until = gone_until;
            for coarser in fine + 1..RANGES.len() {
                let Some((_, _, bucket)) = RANGES.get(coarser) else {
                    break;
                };
                let from = task.from.max(reaches(coarser));
                if first_tick(from, *bucket) < until {
                    let part = self
                        .read_range(api, task, span, coarser, from, until)
                        .await?;
                    merge_into(&mut fetched, part);
                }
                until = until.min(from);
                if until <= task.from {
                    break;
                }
            }
            let planned: Vec<i64> = (0..)
                .map(|k| first_tick(task.from, task.tick) + k * task.tick)
                .take_while(|t| *t < gone_until && *t + task.tick <= span.now)
                .collect();
            let brought = fetched
                .series
                .values()
                .map(|points| planned.iter().filter(|t| points.contains_key(t)).count())
                .max()
                .unwrap_or(0);
            let expired = planned.len().saturating_sub(brought);
            fetched.skipped.expired += u64::try_from(expired).unwrap_or(u64::MAX);
        }
        Ok(fetched)
    }

    /// The task's points in `[from, until)` from range `i`, at its bucket.
    async fn read_range(
        &self,
        api: &Upstream,
        task: &Task,
        span: &Span,
        i: usize,
        from: i64,
        until: i64,
    ) -> Result<Fetched, PollError> {
        let Some((range, _, bucket)) = RANGES.get(i).copied() else {
            return Ok(Fetched::default());
        };
        let part = Task {
            from,
            until,
            tick: bucket,
            ..task.clone()
        };
        let mut collect = Collector::new(&part, span.now);
        let account = self.account.as_str();
        let series: Series = if task.endpoint == WORKER_SERIES {
            let path = format!(
                "/v1/workers/{}/hashrate",
                escape_path_segment(&task.subject)
            );
            api.get_json(WORKER_SERIES, &path, &[("timeRange", range)])
                .await?
        } else {
            let mut query = vec![("timeRange", range)];
            if task.subject != UNKNOWN_ALGORITHM {
                query.push(("algorithm", task.subject.as_str()));
            }
            api.get_json(SERIES, SERIES, &query).await?
        };
        for _ in 0..series.data.unreadable {
            collect.unreadable();
        }
        // A worker task's detail is "name|algorithm".
        let (worker, algorithm) = task
            .detail
            .split_once('|')
            .unwrap_or(("", task.subject.as_str()));
        for b in series.data.read {
            let (Some(t), Some(h)) = (num(b.timestamp), num(b.hashrate)) else {
                collect.unreadable();
                continue;
            };
            // Epoch milliseconds would put the point in the year 58,000.
            let t = if t >= 1e11 { t / 1000.0 } else { t };
            if task.endpoint == WORKER_SERIES {
                collect.point(&WORKER_HASHRATE, &[account, worker, algorithm], t, h);
            } else {
                collect.point(&ACCOUNT_HASHRATE, &[account, algorithm], t, h);
            }
        }
        Ok(collect.finish())
    }
}

/// `part`'s points added to `into` where it has none at their time, and its counts.
fn merge_into(into: &mut Fetched, part: Fetched) {
    for (key, points) in part.series {
        let series = into.series.entry(key).or_default();
        for (t, v) in points {
            series.entry(t).or_insert(v);
        }
    }
    into.skipped.add(&part.skipped);
}

impl History for UltimateProxyHistory {
    fn discover<'a>(&'a self, api: &'a Upstream, workers: bool) -> HistoryFuture<'a, Discovery> {
        Box::pin(self.discover_all(api, workers))
    }

    fn tasks(&self, discovery: &Discovery, span: &Span, workers: bool) -> Vec<Task> {
        let algorithms: Vec<String> = if discovery.names.is_empty() {
            vec![UNKNOWN_ALGORITHM.to_string()]
        } else {
            discovery.names.clone()
        };
        let mut tasks = Vec::new();
        for (range, from, until, bucket) in slices(span) {
            for algorithm in &algorithms {
                tasks.push(Task {
                    id: format!("{SERIES}|{algorithm}|{range}|{from}|{until}"),
                    endpoint: SERIES,
                    subject: algorithm.clone(),
                    detail: format!("|{algorithm}"),
                    from,
                    until,
                    tick: bucket,
                    requests: 1,
                });
            }
            if workers {
                for (id, name, algorithm) in &discovery.workers {
                    tasks.push(Task {
                        id: format!("{WORKER_SERIES}|{id}|{range}|{from}|{until}"),
                        endpoint: WORKER_SERIES,
                        subject: id.clone(),
                        detail: format!("{name}|{algorithm}"),
                        from,
                        until,
                        tick: bucket,
                        requests: 1,
                    });
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

    #[test]
    fn a_month_is_read_from_the_range_that_covers_each_part_most_finely() {
        let now = 100 * 86_400;
        let span = Span {
            from: now - 40 * 86_400,
            until: now - 3600,
            now,
        };
        assert_eq!(
            slices(&span),
            [
                ("30d", now - 30 * 86_400, now - 7 * 86_400, 14_400),
                ("7d", now - 7 * 86_400, now - 86_400, 3600),
                ("24h", now - 86_400, now - 3600, 900),
            ]
        );
        let short = Span {
            from: now - 3 * 86_400,
            until: now - 2 * 86_400,
            now,
        };
        assert_eq!(
            slices(&short),
            [("7d", now - 3 * 86_400, now - 2 * 86_400, 3600)]
        );
    }
}
