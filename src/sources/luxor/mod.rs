//! Luxor (pool): the v2 summary of each watched subaccount and every page of the v2 workers
//! list, plus, about every ten minutes, the workspace (`/v1/workspace`, or `/v2/workspace`
//! and `/v2/pool/subaccounts` where v1 is not served), which names the workspace and lists
//! the subaccounts to watch when the config names none. Raw `authorization: <key>` header.
//! Hashrates are H/s in strings or numbers; ratios 0-1; amounts in coins.
//! Reference: docs.luxor.tech/mining/api/v2; the fixtures in tests/fixtures/luxor/.

pub mod config;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::fields::{Items, Num, num, required, text, timestamp};
use super::optional::OptionalEndpoints;
use super::shared::{UNKNOWN_ALGORITHM, count_workers, set_worker, worker_label};
use super::{PollFuture, Source};
use crate::client::Upstream;
use crate::error::PollError;
use crate::metrics::*;
use crate::snapshot::{SKIP_UNNAMED, SKIP_UNREADABLE, Snapshot};
pub use config::LuxorConfig;

/// No maximum is documented; Luxor's collector uses 100, other clients 1000.
pub const PAGE_SIZE: u32 = 1000;
/// 1,000,000 workers; a pagination that claims more is treated as broken data.
const MAX_PAGES: u32 = 1000;
/// How often the workspace and its subaccounts are read again.
const WORKSPACE_EVERY: Duration = Duration::from_secs(600);

const WORKSPACE_V1: &str = "/v1/workspace";
const WORKSPACE_V2: &str = "/v2/workspace";
const SUBACCOUNTS: &str = "/v2/pool/subaccounts";
const SUMMARY: &str = "/v2/pool/summary/{currency}";
const WORKERS_LIST: &str = "/v2/pool/workers/{currency}";

#[derive(Debug, Deserialize)]
pub(crate) struct Pagination {
    #[serde(default)]
    pub(crate) next_page_url: Option<String>,
}

/// A paginated answer: its items and where the next page is.
trait Page: DeserializeOwned + Send + 'static {
    type Item;
    fn into_parts(self) -> (Items<Self::Item>, Option<Pagination>);
}

#[derive(Debug, Deserialize)]
struct WorkspaceV1 {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    groups: Option<Vec<Group>>,
}

#[derive(Debug, Deserialize)]
struct Group {
    #[serde(default)]
    subaccounts: Option<Vec<Named>>,
}

#[derive(Debug, Deserialize)]
struct Named {
    #[serde(default, deserialize_with = "text")]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SubaccountsPage {
    #[serde(default)]
    subaccounts: Items<Named>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

impl Page for SubaccountsPage {
    type Item = Named;
    fn into_parts(self) -> (Items<Named>, Option<Pagination>) {
        (self.subaccounts, self.pagination)
    }
}

#[derive(Debug, Deserialize)]
struct Summary {
    #[serde(default)]
    hashrate_5m: Option<Num>,
    #[serde(default)]
    hashrate_1h: Option<Num>,
    #[serde(default)]
    hashrate_24h: Option<Num>,
    #[serde(default)]
    efficiency_5m: Option<Num>,
    #[serde(default)]
    uptime_24h: Option<Num>,
    #[serde(default)]
    active_miners: Option<Num>,
    #[serde(default)]
    revenue_24h: Option<Vec<Revenue>>,
    #[serde(default)]
    revenue_all_time: Option<Vec<Revenue>>,
    #[serde(default)]
    balance: Option<Vec<Revenue>>,
    #[serde(default)]
    hashprice: Option<Vec<Hashprice>>,
}

/// Revenue entries, and balance entries, which carry their amount in `revenue` too.
#[derive(Debug, Deserialize)]
struct Revenue {
    #[serde(default)]
    currency_type: Option<String>,
    #[serde(default)]
    revenue_type: Option<String>,
    #[serde(default)]
    revenue: Option<Num>,
}

#[derive(Debug, Deserialize)]
struct Hashprice {
    #[serde(default)]
    currency_type: Option<String>,
    #[serde(default)]
    value: Option<Num>,
}

#[derive(Debug, Deserialize)]
struct WorkersPage {
    /// Required; `null` reads as empty, and a worker that cannot be read is skipped.
    #[serde(deserialize_with = "required")]
    workers: Items<Worker>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

impl Page for WorkersPage {
    type Item = Worker;
    fn into_parts(self) -> (Items<Worker>, Option<Pagination>) {
        (self.workers, self.pagination)
    }
}

#[derive(Debug, Deserialize)]
struct Worker {
    #[serde(default, deserialize_with = "text")]
    id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    subaccount_name: Option<String>,
    #[serde(default)]
    hashrate: Option<Num>,
    #[serde(default)]
    efficiency: Option<Num>,
    #[serde(default)]
    stale_shares: Option<Num>,
    #[serde(default)]
    rejected_shares: Option<Num>,
    #[serde(default, deserialize_with = "timestamp")]
    last_share_time: Option<f64>,
    #[serde(default, deserialize_with = "text")]
    status: Option<String>,
}

/// What the source watches, from the config and the workspace.
#[derive(Debug, Clone, Default, PartialEq)]
struct Watch {
    /// None where the pool did not say (neither workspace endpoint served).
    workspace: Option<String>,
    subaccounts: Vec<String>,
}

/// The watch list and when it was read: it is read again once `WORKSPACE_EVERY` has passed,
/// whatever the source's interval or schedule.
#[derive(Debug, Default)]
struct WatchCache {
    read: Option<(Arc<Watch>, Instant)>,
}

impl WatchCache {
    /// The cached list while it is younger than `WORKSPACE_EVERY`.
    fn fresh(&self, now: Instant) -> Option<Arc<Watch>> {
        let (watch, at) = self.read.as_ref()?;
        (now.saturating_duration_since(*at) < WORKSPACE_EVERY).then(|| watch.clone())
    }
}

pub struct Luxor {
    currency: String,
    configured: Vec<String>,
    site_id: Option<String>,
    optional: OptionalEndpoints,
    cache: Mutex<WatchCache>,
}

impl super::FromSettings for Luxor {
    type Settings = LuxorConfig;

    fn new(settings: &LuxorConfig) -> Self {
        Luxor {
            currency: settings.currency.clone(),
            configured: settings.subaccounts.clone(),
            site_id: settings.site_id.clone(),
            optional: OptionalEndpoints::new(),
            cache: Mutex::new(WatchCache::default()),
        }
    }
}

impl Luxor {
    async fn fetch(&self, api: &Upstream) -> Result<Snapshot, PollError> {
        let watch = self.watch(api).await?;
        let currency = self.currency.as_str();
        let mut summaries = Vec::with_capacity(watch.subaccounts.len());
        for name in &watch.subaccounts {
            let summary: Summary = api
                .get_json(
                    SUMMARY,
                    &format!("/v2/pool/summary/{currency}"),
                    &[("subaccount_names", name)],
                )
                .await?;
            summaries.push((name.as_str(), summary));
        }
        // v2 answers 400 without a selection; with nothing to watch there is nothing to ask.
        // Names go in groups whose joined query stays short enough for any server.
        let selectors: Vec<(&str, String)> = match &self.site_id {
            Some(site) => vec![("site_id", site.clone())],
            None => name_groups(&watch.subaccounts, MAX_NAMES_QUERY)
                .into_iter()
                .map(|names| ("subaccount_names", names))
                .collect(),
        };
        let mut workers = Items::default();
        for (key, value) in &selectors {
            let group = every_page::<WorkersPage>(
                api,
                WORKERS_LIST,
                &format!("/v2/pool/workers/{currency}"),
                &[(key, value)],
                MAX_PAGES,
            )
            .await?;
            workers.append(group);
        }
        let mut snapshot = to_snapshot(currency, &watch, &summaries, &workers.read);
        snapshot.note_skipped(SKIP_UNREADABLE, workers.unreadable);
        Ok(snapshot)
    }

    /// The cached watch list, re-read from the workspace once it is `WORKSPACE_EVERY` old. A
    /// failed read fails the poll and is tried again on the next one.
    async fn watch(&self, api: &Upstream) -> Result<Arc<Watch>, PollError> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fresh(Instant::now());
        if let Some(watch) = cached {
            return Ok(watch);
        }
        let watch = Arc::new(self.read_workspace(api).await?);
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).read =
            Some((watch.clone(), Instant::now()));
        Ok(watch)
    }

    async fn read_workspace(&self, api: &Upstream) -> Result<Watch, PollError> {
        let v1: Option<WorkspaceV1> = self
            .optional
            .get_json_or_other_way(api, WORKSPACE_V1, "/v1/workspace", &[])
            .await?;
        let workspace = match &v1 {
            Some(w) => w.name.clone(),
            None => {
                #[derive(Deserialize)]
                struct WorkspaceV2 {
                    #[serde(default)]
                    name: Option<String>,
                }
                self.optional
                    .get_json::<WorkspaceV2>(api, WORKSPACE_V2, "/v2/workspace", &[])
                    .await?
                    .and_then(|w| w.name)
            }
        };
        let subaccounts = if !self.configured.is_empty() {
            self.configured.clone()
        } else if let (None, Some(v1)) = (&self.site_id, v1) {
            listed(
                v1.groups
                    .unwrap_or_default()
                    .into_iter()
                    .flat_map(|g| g.subaccounts.unwrap_or_default())
                    .collect(),
            )
        } else {
            subaccount_list(api, self.site_id.as_deref(), MAX_PAGES).await?
        };
        // One summary request per subaccount: a workspace of thousands would spend the
        // key's budget on one poll.
        if subaccounts.len() > MAX_SUBACCOUNTS {
            return Err(PollError::decode(
                SUBACCOUNTS,
                format!(
                    "the workspace lists {} subaccounts; one poll reads at most {MAX_SUBACCOUNTS} summaries (name the ones to watch in `subaccounts`)",
                    subaccounts.len()
                ),
            ));
        }
        Ok(Watch {
            workspace,
            subaccounts,
        })
    }
}

impl Source for Luxor {
    fn poll<'a>(&'a self, api: &'a Upstream) -> PollFuture<'a> {
        Box::pin(self.fetch(api))
    }
}

/// Subaccount names, sorted, without blanks or repeats.
fn listed(named: Vec<Named>) -> Vec<String> {
    let mut names: Vec<String> = named
        .into_iter()
        .filter_map(|n| n.name)
        .filter(|n| !n.trim().is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The v2 list of subaccounts (of `site_id` where given), read in at most `max_pages`.
pub(crate) async fn subaccount_list(
    api: &Upstream,
    site_id: Option<&str>,
    max_pages: u32,
) -> Result<Vec<String>, PollError> {
    let site: Vec<(&str, &str)> = site_id.map(|site| ("site_id", site)).into_iter().collect();
    let named =
        every_page::<SubaccountsPage>(api, SUBACCOUNTS, "/v2/pool/subaccounts", &site, max_pages)
            .await?;
    Ok(listed(named.read))
}

/// Every item of a paginated list, following `next_page_url` until it is null. Only the page
/// number is taken from that URL: the request itself is built here, so a URL that points
/// elsewhere can never receive the key.
async fn every_page<P: Page>(
    api: &Upstream,
    endpoint: &'static str,
    path: &str,
    query: &[(&str, &str)],
    max_pages: u32,
) -> Result<Items<P::Item>, PollError> {
    let mut items = Items::default();
    let page_size = PAGE_SIZE.to_string();
    let mut page = 1;
    loop {
        let number = page.to_string();
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.extend([("page_number", number.as_str()), ("page_size", &page_size)]);
        let (batch, pagination) = api.get_json::<P>(endpoint, path, &q).await?.into_parts();
        let received = batch.len();
        items.append(batch);
        match next_page(pagination.as_ref(), page).map_err(|e| PollError::decode(endpoint, e))? {
            Some(next) if received > 0 => {
                if next > max_pages {
                    return Err(PollError::decode(
                        endpoint,
                        format!("pagination claims more than {max_pages} pages"),
                    ));
                }
                page = next;
            }
            _ => return Ok(items),
        }
    }
}

/// The longest `subaccount_names` value one request carries: URLs past about 8 KiB are
/// refused by common servers and proxies, and a workspace of hundreds of names would pass it.
const MAX_NAMES_QUERY: usize = 2000;

/// Subaccounts one source watches at most: each costs a summary request per poll.
pub const MAX_SUBACCOUNTS: usize = 200;

/// `names` joined with commas, in groups no longer than `most` characters each (a name
/// longer than that alone is a group of its own).
fn name_groups(names: &[String], most: usize) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for name in names {
        match groups.last_mut() {
            Some(group) if group.len() + 1 + name.len() <= most => {
                group.push(',');
                group.push_str(name);
            }
            _ => groups.push(name.clone()),
        }
    }
    groups
}

/// The page `next_page_url` points at; None when it is null, missing or empty.
fn next_page(pagination: Option<&Pagination>, current: u32) -> Result<Option<u32>, String> {
    let Some(url) = pagination
        .and_then(|p| p.next_page_url.as_deref())
        .map(str::trim)
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    let base = reqwest::Url::parse("http://localhost/").expect("a valid constant URL");
    let next = base
        .join(url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "page_number")
                .and_then(|(_, v)| v.parse::<u32>().ok())
        })
        .unwrap_or(current + 1);
    if next <= current {
        return Err(format!(
            "next_page_url goes back to page {next} from page {current}"
        ));
    }
    Ok(Some(next))
}

/// The proof of work behind each coin Luxor's summary and workers endpoints take, as the
/// `algorithm` label: a Luxor source's hashrates are all of its currency's algorithm.
pub fn algorithm_of(currency: &str) -> &'static str {
    match currency.to_ascii_uppercase().as_str() {
        "BTC" => "sha256",
        "LTC_DOGE" => "scrypt",
        "SC" => "blake2b",
        "ZEC" | "ZEN" => "equihash",
        _ => UNKNOWN_ALGORITHM,
    }
}

/// Whether an entry is in `currency`; an entry that names none is taken as the path's.
fn is_currency(entry: Option<&str>, currency: &str) -> bool {
    entry.is_none_or(|c| c.eq_ignore_ascii_case(currency))
}

/// The entry for `currency`, preferring mining revenue where entries say their type.
fn amount(entries: Option<&Vec<Revenue>>, currency: &str) -> Option<f64> {
    let matching = |e: &&Revenue| is_currency(e.currency_type.as_deref(), currency);
    let entries = entries?;
    entries
        .iter()
        .filter(matching)
        .find(|e| {
            e.revenue_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("MINING"))
        })
        .or_else(|| entries.iter().find(matching))
        .and_then(|e| num(e.revenue))
}

fn to_snapshot(
    currency: &str,
    watch: &Watch,
    summaries: &[(&str, Summary)],
    workers: &[Worker],
) -> Snapshot {
    let mut snap = Snapshot::new();
    let algorithm = algorithm_of(currency);
    let workspace = watch.workspace.as_deref().unwrap_or("");
    for account in &watch.subaccounts {
        snap.set(&ACCOUNT_INFO, &[account, workspace], 1.0);
    }

    let only_account = match watch.subaccounts.as_slice() {
        [one] => one.as_str(),
        _ => "unknown",
    };
    for w in workers {
        let Some(name) = worker_label(&w.name, &w.id) else {
            snap.note_skipped(SKIP_UNNAMED, 1);
            continue;
        };
        let account = w
            .subaccount_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(only_account);
        let labels = [account, name];
        // ACTIVE means shares in the last 3 complete minutes.
        if !set_worker(
            &mut snap,
            labels,
            algorithm,
            w.status.as_deref(),
            "ACTIVE",
            num(w.hashrate),
        ) {
            continue;
        }
        if let Some(e) = num(w.efficiency) {
            snap.set(&WORKER_EFFICIENCY, &labels, e);
        }
        if let Some(r) = num(w.rejected_shares) {
            snap.set(&WORKER_REJECTED, &labels, r);
        }
        if let Some(s) = num(w.stale_shares) {
            snap.set(&WORKER_STALE, &labels, s);
        }
        if let Some(t) = w.last_share_time {
            snap.set(&WORKER_LAST_SHARE, &labels, t);
        }
    }

    for (account, s) in summaries {
        let account = *account;
        if let Some(h) = num(s.hashrate_5m) {
            snap.set(&ACCOUNT_HASHRATE, &[account, algorithm], h);
        }
        for (window, value) in [("1h", s.hashrate_1h), ("24h", s.hashrate_24h)] {
            if let Some(h) = num(value) {
                snap.set(&ACCOUNT_HASHRATE_AVERAGE, &[account, algorithm, window], h);
            }
        }
        if let Some(e) = num(s.efficiency_5m) {
            snap.set(&ACCOUNT_EFFICIENCY, &[account], e);
        }
        if let Some(u) = num(s.uptime_24h) {
            snap.set(&ACCOUNT_UPTIME, &[account], u);
        }
        if let Some(b) = amount(s.balance.as_ref(), currency) {
            snap.set(&ACCOUNT_BALANCE, &[account, currency], b);
        }
        for (window, entries) in [("24h", &s.revenue_24h), ("all_time", &s.revenue_all_time)] {
            if let Some(r) = amount(entries.as_ref(), currency) {
                snap.set(&ACCOUNT_REWARDS, &[account, currency, window], r);
            }
        }
        // The pool's hashprice is the same for every subaccount: one series per currency.
        if let Some(price) = s.hashprice.as_ref().and_then(|entries| {
            entries
                .iter()
                .find(|e| is_currency(e.currency_type.as_deref(), currency))
                .and_then(|e| num(e.value))
        }) {
            snap.set(&HASHPRICE, &[currency], price);
        }
    }
    count_workers(&mut snap, watch.subaccounts.iter().map(String::as_str));
    // The pool's own count of active miners (last complete 5 minutes) wins over the list's.
    for (account, s) in summaries {
        if let Some(n) = num(s.active_miners) {
            snap.set(&WORKERS, &[account, "active"], n);
        }
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }

    fn watch(subaccounts: &[&str]) -> Watch {
        Watch {
            workspace: Some("ws".into()),
            subaccounts: subaccounts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_workspace_is_read_again_once_ten_minutes_have_passed_whatever_the_schedule() {
        let read_at = Instant::now();
        let mut cache = WatchCache::default();
        assert!(cache.fresh(read_at).is_none(), "nothing read yet");
        cache.read = Some((Arc::new(watch(&["a"])), read_at));
        let second = Duration::from_secs(1);
        assert!(cache.fresh(read_at + WORKSPACE_EVERY - second).is_some());
        assert!(
            cache.fresh(read_at + WORKSPACE_EVERY).is_none(),
            "ten minutes old"
        );
    }

    #[test]
    fn one_worker_name_in_two_subaccounts_stays_two_workers() {
        let page: WorkersPage = parse(
            r#"{"workers":[
              {"name":"rig01","subaccount_name":"a","hashrate":"100","status":"ACTIVE"},
              {"name":"rig01","subaccount_name":"b","hashrate":200.5,"status":"INACTIVE"},
              {"name":"rig01","subaccount_name":"b","hashrate":201,"status":"INACTIVE"},
              {"name":"rig02","subaccount_name":"b","hashrate":null,"status":"UNSPECIFIED"}]}"#,
        );
        let s = to_snapshot("BTC", &watch(&["a", "b"]), &[], &page.workers.read);
        assert_eq!(s.get(&WORKER_UP, &["a", "rig01"]), Some(1.0));
        assert_eq!(s.get(&WORKER_UP, &["b", "rig01"]), Some(0.0));
        assert_eq!(
            s.get(&WORKER_HASHRATE, &["a", "rig01", "sha256"]),
            Some(100.0)
        );
        // Listed twice in one subaccount: the first entry stays, the repeat is counted.
        assert_eq!(
            s.get(&WORKER_HASHRATE, &["b", "rig01", "sha256"]),
            Some(200.5)
        );
        assert_eq!(
            s.skipped().collect::<Vec<_>>(),
            [(crate::snapshot::SKIP_DUPLICATE, 1)]
        );
        assert_eq!(s.get(&WORKER_UP, &["b", "rig02"]), Some(0.0));
        assert_eq!(s.get(&WORKERS, &["a", "active"]), Some(1.0));
        assert_eq!(s.get(&WORKERS, &["b", "inactive"]), Some(2.0), "rig01 once");
        assert_eq!(s.get(&ACCOUNT_INFO, &["b", "ws"]), Some(1.0));
    }

    #[test]
    fn summary_picks_the_currency_and_mining_entries() {
        let summary: Summary = parse(
            r#"{"hashrate_5m":"800","hashrate_24h":780,"efficiency_5m":0.99,"uptime_24h":null,
                "active_miners":8,
                "revenue_24h":[{"currency_type":"LTC","revenue_type":"MINING","revenue":9},
                               {"currency_type":"BTC","revenue_type":"FEE","revenue":7},
                               {"currency_type":"BTC","revenue_type":"MINING","revenue":0.01}],
                "balance":[{"currency_type":"BTC","revenue":"0.5"}],
                "hashprice":[{"currency_type":"BTC","value":0.00059}]}"#,
        );
        let s = to_snapshot("BTC", &watch(&["a"]), &[("a", summary)], &[]);
        assert_eq!(s.get(&ACCOUNT_HASHRATE, &["a", "sha256"]), Some(800.0));
        assert_eq!(
            s.get(&ACCOUNT_HASHRATE_AVERAGE, &["a", "sha256", "24h"]),
            Some(780.0)
        );
        assert_eq!(s.get(&ACCOUNT_UPTIME, &["a"]), None);
        assert_eq!(s.get(&ACCOUNT_REWARDS, &["a", "BTC", "24h"]), Some(0.01));
        assert_eq!(s.get(&ACCOUNT_BALANCE, &["a", "BTC"]), Some(0.5));
        assert_eq!(s.get(&HASHPRICE, &["BTC"]), Some(0.00059));
        assert_eq!(s.get(&WORKERS, &["a", "active"]), Some(8.0));
        assert_eq!(s.get(&WORKERS, &["a", "inactive"]), Some(0.0));
    }

    #[test]
    fn hashrates_carry_the_currency_s_algorithm() {
        let summary: Summary = parse(r#"{"hashrate_5m":"800"}"#);
        let s = to_snapshot("LTC_DOGE", &watch(&["a"]), &[("a", summary)], &[]);
        assert_eq!(s.get(&ACCOUNT_HASHRATE, &["a", "scrypt"]), Some(800.0));
        assert_eq!(algorithm_of("ZEC"), "equihash");
        assert_eq!(algorithm_of("BTC"), "sha256");
    }

    #[test]
    fn next_page_url_is_followed_by_its_page_number_only() {
        let p = |url: Option<&str>| Pagination {
            next_page_url: url.map(str::to_string),
        };
        let at = |url: Option<&str>, current| next_page(Some(&p(url)), current);
        assert_eq!(at(None, 1), Ok(None));
        assert_eq!(at(Some(""), 1), Ok(None));
        assert_eq!(
            at(Some("/v2/pool/workers/BTC?page_number=2&page_size=10"), 1),
            Ok(Some(2))
        );
        assert_eq!(
            at(Some("https://elsewhere.example/x?page_number=3"), 2),
            Ok(Some(3))
        );
        assert_eq!(at(Some("string"), 4), Ok(Some(5)));
        assert!(at(Some("/v2/pool/workers/BTC?page_number=1"), 1).is_err());
        assert_eq!(next_page(None, 1), Ok(None));
    }

    mod properties {
        use super::*;
        use crate::sources::arbitrary::{pool_json, pool_object, pool_page};
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_answer_decodes_or_fails_and_maps_without_panicking(
                workspace in pool_json(),
                subaccounts in pool_page("subaccounts"),
                summary in pool_object(),
                page in pool_page("workers"),
                current in 1u32..2000,
            ) {
                let _ = serde_json::from_value::<WorkspaceV1>(workspace);
                if let Ok(listed) = serde_json::from_value::<SubaccountsPage>(subaccounts) {
                    let (_, pagination) = listed.into_parts();
                    let _ = next_page(pagination.as_ref(), current);
                }
                let summary = serde_json::from_value::<Summary>(summary);
                let page = serde_json::from_value::<WorkersPage>(page);
                if let (Ok(summary), Ok(page)) = (summary, page) {
                    let _ = next_page(page.pagination.as_ref(), current);
                    let snap = to_snapshot("BTC", &watch(&["a", "b"]), &[("a", summary)], &page.workers.read);
                    for (_, up) in snap.samples(&WORKER_UP).into_iter().flatten() {
                        prop_assert!(up == 0.0 || up == 1.0);
                    }
                }
            }
        }
    }
}
