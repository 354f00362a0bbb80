//! Ultimate Proxy (a mining proxy): `/v1/overview`, every page of `/v1/workers`, and the
//! account's hashrate series `/v1/workers/hashrate?timeRange=1h`, once per algorithm. All
//! hashrates are H/s of their algorithm. The proxy serves several algorithms at once (CPUs at
//! kH/s of RandomX beside GPUs at MH/s of KawPow), so nothing is summed across algorithms: the
//! overview's totals are used only where the account mines one algorithm.
//! Reference: ultimate-proxy.com/api-docs; the fixtures in tests/fixtures/ultimate_proxy/.

pub mod config;

use std::collections::BTreeSet;

use serde::Deserialize;

use super::fields::{Items, Num, num, required, text, timestamp};
use super::shared::{UNKNOWN_ALGORITHM, algorithm_label, count_workers, set_worker, worker_label};
use super::{PollFuture, Source};
use crate::client::Upstream;
use crate::error::PollError;
use crate::metrics::*;
use crate::snapshot::{SKIP_UNNAMED, SKIP_UNREADABLE, Snapshot};
pub use config::UltimateProxyConfig;

/// The API's maximum page size (PROPOSED in the reference; the public client uses 100).
pub const PAGE_SIZE: u32 = 100;
/// At most this many pages (100,000 workers) a poll. A farm whose first page claims more is
/// refused at once, before a thousand requests are spent on a list that cannot be finished.
pub const MAX_PAGES: u32 = 1000;

pub(crate) const OVERVIEW: &str = "/v1/overview";
const WORKERS_LIST: &str = "/v1/workers";
const SERIES: &str = "/v1/workers/hashrate";
/// Algorithms whose hashrate series one poll asks for at most.
pub const MAX_ALGORITHMS: usize = 16;

#[derive(Debug, Deserialize)]
pub(crate) struct Overview {
    /// All algorithms summed: meaningful only for an account that mines one.
    #[serde(default)]
    hashrate: Option<OverviewHashrate>,
    #[serde(default)]
    pub(crate) by_algorithm: Option<Vec<AlgorithmHashrate>>,
}

#[derive(Debug, Deserialize)]
struct OverviewHashrate {
    #[serde(default)]
    current: Option<Num>,
    #[serde(default)]
    avg_1h: Option<Num>,
    #[serde(default)]
    avg_24h: Option<Num>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct AlgorithmHashrate {
    #[serde(default)]
    pub(crate) algorithm: Option<String>,
    #[serde(default)]
    hashrate: Option<Num>,
}

#[derive(Debug, Deserialize)]
struct WorkersPage {
    /// Required: a body without it is not a worker list. `null` reads as empty, and a
    /// worker that cannot be read is skipped and counted.
    #[serde(deserialize_with = "required")]
    data: Items<Worker>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    /// Numbers, not integers: a count out of range must be a clear error, not a serde one.
    #[serde(default)]
    total_pages: Option<Num>,
    #[serde(default)]
    total: Option<Num>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Worker {
    #[serde(rename = "_id", default, deserialize_with = "text")]
    pub(crate) id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub(crate) name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub(crate) algorithm: Option<String>,
    #[serde(default, deserialize_with = "text")]
    status: Option<String>,
    #[serde(default)]
    hashrate: Option<Num>,
    #[serde(default)]
    hashrate_1h: Option<Num>,
    #[serde(default)]
    hashrate_24h: Option<Num>,
    #[serde(default)]
    accepted_shares: Option<Num>,
    #[serde(default)]
    rejected_shares: Option<Num>,
    #[serde(default, deserialize_with = "timestamp")]
    last_share_at: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct HashrateSeries {
    #[serde(default)]
    stats: Option<SeriesStats>,
}

#[derive(Debug, Deserialize)]
struct SeriesStats {
    #[serde(default)]
    avg_hashrate: Option<Num>,
    #[serde(default)]
    peak_hashrate: Option<Num>,
}

pub struct UltimateProxy {
    account: String,
}

impl super::FromSettings for UltimateProxy {
    type Settings = UltimateProxyConfig;

    fn new(settings: &UltimateProxyConfig) -> Self {
        UltimateProxy {
            account: settings.account.clone(),
        }
    }
}

impl UltimateProxy {
    async fn fetch(&self, api: &Upstream) -> Result<Snapshot, PollError> {
        let overview: Overview = api.get_json(OVERVIEW, OVERVIEW, &[]).await?;
        let Items {
            read: workers,
            unreadable,
        } = every_worker(api, MAX_PAGES).await?;
        let algorithms = algorithms(&overview, &workers);
        // One series per named algorithm; an account whose algorithm nobody names gets the
        // unfiltered series, labelled unknown.
        let named: Vec<&str> = algorithms
            .iter()
            .map(String::as_str)
            .filter(|a| *a != UNKNOWN_ALGORITHM)
            .collect();
        // One series request per name: a pool sending hundreds of odd names would spend the
        // key's budget on one poll.
        if named.len() > MAX_ALGORITHMS {
            return Err(PollError::decode(
                SERIES,
                format!(
                    "the account's workers and overview name {} algorithms; one poll asks the series of at most {MAX_ALGORITHMS}",
                    named.len()
                ),
            ));
        }
        let asked: Vec<Option<&str>> = if named.is_empty() {
            vec![None]
        } else {
            named.into_iter().map(Some).collect()
        };
        let mut series = Vec::with_capacity(asked.len());
        for algorithm in asked {
            let mut query = vec![("timeRange", "1h")];
            query.extend(algorithm.map(|a| ("algorithm", a)));
            let answer: HashrateSeries = api.get_json(SERIES, SERIES, &query).await?;
            series.push((algorithm.unwrap_or(UNKNOWN_ALGORITHM).to_string(), answer));
        }
        let mut snapshot = to_snapshot(&self.account, &overview, &workers, &algorithms, &series);
        snapshot.note_skipped(SKIP_UNREADABLE, unreadable);
        Ok(snapshot)
    }
}

impl Source for UltimateProxy {
    fn poll<'a>(&'a self, api: &'a Upstream) -> PollFuture<'a> {
        Box::pin(self.fetch(api))
    }
}

/// Every page of the worker list, at most `max_pages` (a poll's `MAX_PAGES`). The number of
/// pages is read from the first page, so a farm over the cap costs one request, not a
/// thousand.
pub(crate) async fn every_worker(
    api: &Upstream,
    max_pages: u32,
) -> Result<Items<Worker>, PollError> {
    let limit = PAGE_SIZE.to_string();
    let mut workers = Items::default();
    let mut pages: Option<u32> = None;
    let mut page: u32 = 1;
    loop {
        let page_number = page.to_string();
        let batch: WorkersPage = api
            .get_json(
                WORKERS_LIST,
                WORKERS_LIST,
                &[("page", &page_number), ("limit", &limit)],
            )
            .await?;
        let received = batch.data.len();
        workers.append(batch.data);
        if let Some(claimed) = batch
            .pagination
            .as_ref()
            .map(|p| page_count(p, max_pages))
            .transpose()?
        {
            pages = claimed.or(pages);
        }
        let last = match pages {
            Some(total) => page >= total,
            None => received < PAGE_SIZE as usize,
        };
        if last || received == 0 {
            return Ok(workers);
        }
        if page >= max_pages {
            return Err(over_the_cap(
                format!("more than {max_pages} full pages"),
                max_pages,
            ));
        }
        page += 1;
    }
}

/// The number of pages the pagination claims (`total_pages`, else `total` over the page
/// size); an error when that is over the cap or not a count at all.
fn page_count(pagination: &Pagination, max_pages: u32) -> Result<Option<u32>, PollError> {
    let from_total = num(pagination.total).map(|t| (t / f64::from(PAGE_SIZE)).ceil());
    let Some(pages) = num(pagination.total_pages).or(from_total) else {
        return Ok(None);
    };
    if !pages.is_finite() || pages < 0.0 {
        return Err(PollError::decode(
            WORKERS_LIST,
            format!("pagination claims {pages} pages"),
        ));
    }
    if pages > f64::from(max_pages) {
        let workers = num(pagination.total)
            .map(|t| format!(" ({t} workers)"))
            .unwrap_or_default();
        return Err(over_the_cap(format!("{pages} pages{workers}"), max_pages));
    }
    // In 0..=max_pages after the checks above, so the cast only rounds a fraction up.
    Ok(Some(pages.ceil() as u32))
}

fn over_the_cap(claimed: String, max_pages: u32) -> PollError {
    PollError::decode(
        WORKERS_LIST,
        format!(
            "the pool lists {claimed} of workers; one poll reads at most {max_pages} pages ({} workers), so this poll stops before spending its budget on a list it cannot finish",
            u64::from(max_pages) * u64::from(PAGE_SIZE)
        ),
    )
}

/// The account's algorithms: those its workers name (`unknown` for a worker that names
/// none) and those the overview shows hashing. An algorithm the overview lists at zero with
/// no worker on it is idle: it costs no series request and does not make the account
/// multi-algorithm.
fn algorithms(overview: &Overview, workers: &[Worker]) -> BTreeSet<String> {
    let by_overview = overview
        .by_algorithm
        .iter()
        .flatten()
        .filter(|a| a.algorithm.as_deref().is_some_and(|n| !n.trim().is_empty()))
        .filter(|a| num(a.hashrate).is_some_and(|h| h > 0.0))
        .map(|a| algorithm_label(a.algorithm.as_deref()));
    let by_workers = workers
        .iter()
        .filter(|w| worker_label(&w.name, &w.id).is_some())
        .map(|w| algorithm_label(w.algorithm.as_deref()));
    by_overview.chain(by_workers).collect()
}

fn to_snapshot(
    account: &str,
    overview: &Overview,
    workers: &[Worker],
    algorithms: &BTreeSet<String>,
    series: &[(String, HashrateSeries)],
) -> Snapshot {
    let mut snap = Snapshot::new();
    for w in workers {
        let Some(name) = worker_label(&w.name, &w.id) else {
            snap.note_skipped(SKIP_UNNAMED, 1);
            continue;
        };
        let labels = [account, name];
        let algorithm = algorithm_label(w.algorithm.as_deref());
        if !set_worker(
            &mut snap,
            labels,
            &algorithm,
            w.status.as_deref(),
            "online",
            num(w.hashrate),
        ) {
            continue;
        }
        for (window, value) in [("1h", w.hashrate_1h), ("24h", w.hashrate_24h)] {
            if let Some(h) = num(value) {
                snap.set(
                    &WORKER_HASHRATE_AVERAGE,
                    &[account, name, &algorithm, window],
                    h,
                );
            }
        }
        if let (Some(acc), Some(rej)) = (num(w.accepted_shares), num(w.rejected_shares)) {
            if acc + rej > 0.0 {
                snap.set(&WORKER_REJECTED, &labels, rej / (acc + rej));
            }
        }
        if let Some(t) = w.last_share_at {
            snap.set(&WORKER_LAST_SHARE, &labels, t);
        }
    }
    count_workers(&mut snap, [account]);

    for entry in overview.by_algorithm.iter().flatten() {
        if let (Some(name), Some(h)) = (entry.algorithm.as_deref(), num(entry.hashrate)) {
            if !name.trim().is_empty() {
                snap.set(
                    &ACCOUNT_HASHRATE,
                    &[account, &algorithm_label(Some(name))],
                    h,
                );
            }
        }
    }
    // The overview's totals add up every algorithm: a number only where there is one.
    let only = match algorithms.len() {
        0 => Some(UNKNOWN_ALGORITHM),
        1 => algorithms.first().map(String::as_str),
        _ => None,
    };
    if let (Some(algorithm), Some(h)) = (only, &overview.hashrate) {
        if snap.samples(&ACCOUNT_HASHRATE).is_none() {
            if let Some(current) = num(h.current) {
                snap.set(&ACCOUNT_HASHRATE, &[account, algorithm], current);
            }
        }
        for (window, value) in [("1h", h.avg_1h), ("24h", h.avg_24h)] {
            if let Some(avg) = num(value) {
                snap.set(
                    &ACCOUNT_HASHRATE_AVERAGE,
                    &[account, algorithm, window],
                    avg,
                );
            }
        }
    }
    // The hashrate series is the finer measure of the last hour: it wins over the overview.
    for (algorithm, answer) in series {
        let Some(stats) = &answer.stats else {
            continue;
        };
        if let Some(avg) = num(stats.avg_hashrate) {
            snap.set(&ACCOUNT_HASHRATE_AVERAGE, &[account, algorithm, "1h"], avg);
        }
        if let Some(peak) = num(stats.peak_hashrate) {
            snap.set(&ACCOUNT_HASHRATE_PEAK, &[account, algorithm, "1h"], peak);
        }
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }

    fn snapshot(overview: &str, workers: &str, series: &[(&str, &str)]) -> Snapshot {
        let overview: Overview = parse(overview);
        let workers: Vec<Worker> = parse(workers);
        let algorithms = algorithms(&overview, &workers);
        let series: Vec<(String, HashrateSeries)> = series
            .iter()
            .map(|(a, json)| (a.to_string(), parse(json)))
            .collect();
        to_snapshot("acct", &overview, &workers, &algorithms, &series)
    }

    #[test]
    fn unknown_status_is_down_and_names_fall_back_to_ids() {
        let s = snapshot(
            "{}",
            r#"[{"_id":"a1","name":"rig01","algorithm":"randomx","status":"online","hashrate":8070},
                {"_id":"a2","name":"rig02","algorithm":"randomx","status":"rebooting","hashrate":"10"},
                {"_id":"a3","name":"","algorithm":"randomx","status":"ONLINE","hashrate":null},
                {"status":"online"}]"#,
            &[("randomx", r#"{"stats":null}"#)],
        );
        assert_eq!(s.get(&WORKER_UP, &["acct", "rig01"]), Some(1.0));
        assert_eq!(s.get(&WORKER_UP, &["acct", "rig02"]), Some(0.0));
        assert_eq!(s.get(&WORKER_UP, &["acct", "a3"]), Some(1.0));
        assert_eq!(
            s.get(&WORKER_HASHRATE, &["acct", "rig02", "randomx"]),
            Some(10.0)
        );
        assert_eq!(s.get(&WORKER_HASHRATE, &["acct", "a3", "randomx"]), None);
        assert_eq!(s.get(&WORKERS, &["acct", "active"]), Some(2.0));
        assert_eq!(s.get(&WORKERS, &["acct", "inactive"]), Some(1.0));
        assert!(s.samples(&ACCOUNT_HASHRATE).is_none());
    }

    #[test]
    fn one_algorithm_takes_the_overview_and_the_series_wins_the_hour() {
        let s = snapshot(
            r#"{"hashrate":{"current":5,"avg_1h":4,"avg_24h":3}}"#,
            r#"[{"name":"rig01","algorithm":"RandomX","hashrate":5}]"#,
            &[(
                "randomx",
                r#"{"stats":{"avg_hashrate":4.5,"peak_hashrate":6}}"#,
            )],
        );
        assert_eq!(s.get(&ACCOUNT_HASHRATE, &["acct", "randomx"]), Some(5.0));
        assert_eq!(
            s.get(&ACCOUNT_HASHRATE_AVERAGE, &["acct", "randomx", "1h"]),
            Some(4.5)
        );
        assert_eq!(
            s.get(&ACCOUNT_HASHRATE_AVERAGE, &["acct", "randomx", "24h"]),
            Some(3.0)
        );
        assert_eq!(
            s.get(&ACCOUNT_HASHRATE_PEAK, &["acct", "randomx", "1h"]),
            Some(6.0)
        );
    }

    #[test]
    fn hashrates_of_different_algorithms_are_never_added_up() {
        let s = snapshot(
            r#"{"hashrate":{"current":30008000,"avg_1h":3e7,"avg_24h":3e7},
                "by_algorithm":[{"algorithm":"randomx","hashrate":8000},
                                {"algorithm":"kawpow","hashrate":3e7}]}"#,
            r#"[{"name":"cpu1","algorithm":"randomx","hashrate":8000,"hashrate_1h":7900},
                {"name":"gpu1","algorithm":"kawpow","hashrate":3e7}]"#,
            &[
                ("kawpow", r#"{"stats":{"avg_hashrate":2.9e7}}"#),
                ("randomx", r#"{"stats":{"avg_hashrate":7950}}"#),
            ],
        );
        assert_eq!(s.get(&ACCOUNT_HASHRATE, &["acct", "randomx"]), Some(8000.0));
        assert_eq!(s.get(&ACCOUNT_HASHRATE, &["acct", "kawpow"]), Some(3e7));
        assert_eq!(s.samples(&ACCOUNT_HASHRATE).unwrap().len(), 2, "no sum");
        assert_eq!(
            s.get(&ACCOUNT_HASHRATE_AVERAGE, &["acct", "kawpow", "1h"]),
            Some(2.9e7)
        );
        assert_eq!(
            s.get(&ACCOUNT_HASHRATE_AVERAGE, &["acct", "randomx", "24h"]),
            None,
            "the overview's 24h average mixes both algorithms"
        );
        assert_eq!(
            s.get(&WORKER_HASHRATE_AVERAGE, &["acct", "cpu1", "randomx", "1h"]),
            Some(7900.0)
        );
    }

    #[test]
    fn an_idle_algorithm_of_the_overview_does_not_split_the_account() {
        let overview: Overview = parse(
            r#"{"hashrate":{"avg_24h":7000},
                "by_algorithm":[{"algorithm":"randomx","hashrate":8000},
                                {"algorithm":"kawpow","hashrate":0}]}"#,
        );
        let workers: Vec<Worker> = parse(r#"[{"name":"cpu1","algorithm":"randomx"}]"#);
        let algorithms = algorithms(&overview, &workers);
        assert_eq!(algorithms.iter().collect::<Vec<_>>(), ["randomx"]);
        let s = to_snapshot("acct", &overview, &workers, &algorithms, &[]);
        assert_eq!(s.get(&ACCOUNT_HASHRATE, &["acct", "kawpow"]), Some(0.0));
        assert_eq!(
            s.get(&ACCOUNT_HASHRATE_AVERAGE, &["acct", "randomx", "24h"]),
            Some(7000.0)
        );
    }

    #[test]
    fn the_page_count_is_checked_before_the_pages_are_fetched() {
        let count = |json: &str| page_count(&parse(json), MAX_PAGES);
        assert_eq!(count(r#"{"total_pages":3}"#).unwrap(), Some(3));
        assert_eq!(count(r#"{"total":250}"#).unwrap(), Some(3));
        assert_eq!(count(r#"{}"#).unwrap(), None);
        assert_eq!(count(r#"{"total_pages":1000}"#).unwrap(), Some(1000));
        let over = count(r#"{"total_pages":5000,"total":499950}"#).unwrap_err();
        assert!(
            over.to_string().contains("5000 pages (499950 workers)"),
            "{over}"
        );
        assert!(count(r#"{"total_pages":1e300}"#).is_err());
        assert!(count(r#"{"total_pages":-1}"#).is_err());
    }

    mod properties {
        use super::*;
        use crate::sources::arbitrary::{pool_json, pool_object, pool_page};
        use proptest::prelude::*;

        proptest! {
            /// Whatever the three endpoints answer, decoding fails cleanly or the mapping
            /// gives a snapshot whose workers are up (1) or not (0), never a panic.
            #[test]
            fn any_answer_decodes_or_fails_and_maps_without_panicking(
                overview in pool_object(),
                page in pool_page("data"),
                series in pool_json(),
            ) {
                let decoded = (
                    serde_json::from_value::<Overview>(overview),
                    serde_json::from_value::<WorkersPage>(page),
                    serde_json::from_value::<HashrateSeries>(series),
                );
                if let (Ok(overview), Ok(page), Ok(series)) = decoded {
                    if let Some(p) = &page.pagination {
                        let _ = page_count(p, MAX_PAGES);
                    }
                    let algorithms = algorithms(&overview, &page.data.read);
                    let series: Vec<(String, HashrateSeries)> = algorithms
                        .iter()
                        .map(|a| (a.clone(), HashrateSeries { stats: None }))
                        .chain([(UNKNOWN_ALGORITHM.to_string(), series)])
                        .collect();
                    let snap = to_snapshot("acct", &overview, &page.data.read, &algorithms, &series);
                    for (_, up) in snap.samples(&WORKER_UP).into_iter().flatten() {
                        prop_assert!(up == 0.0 || up == 1.0);
                    }
                }
            }
        }
    }
}
