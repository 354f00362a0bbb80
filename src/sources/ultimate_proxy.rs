//! Ultimate Proxy (a mining proxy): `/v1/overview`, every page of `/v1/workers`, and the
//! account's hashrate series `/v1/workers/hashrate?timeRange=1h`. All hashrates are H/s.
//! Reference: upstream-apis.md §2.

use std::time::Duration;

use serde::Deserialize;

use super::fields::{Num, num, unix_seconds};
use super::{KindDefaults, PollFuture, Source, count_workers, set_worker, worker_label};
use crate::client::{AuthStyle, Upstream};
use crate::config::{RateWindow, SourceConfig, Tier};
use crate::error::PollError;
use crate::metrics::*;
use crate::snapshot::Snapshot;

pub const DEFAULTS: KindDefaults = KindDefaults {
    pool: "ultimate_proxy",
    base_url: "https://api.ultimate-proxy.com",
    interval: Duration::from_secs(60),
    auth: AuthStyle::XApiKey,
    keys: &["account", "tier"],
    required: &[],
    min_requests_per_poll: |_| 3,
    requests: "overview + workers (1 per 100 workers) + hashrate series",
    limits,
};

/// The documented per-user limits: the same window is shared by every key of the user.
fn limits(tier: Tier) -> (Vec<RateWindow>, &'static str) {
    match tier {
        Tier::Vip => (
            vec![RateWindow::new(60, Duration::from_secs(60))],
            "Ultimate Proxy VIP tier, per account",
        ),
        Tier::NonVip => (
            vec![RateWindow::new(10, Duration::from_secs(60))],
            "Ultimate Proxy non-VIP tier, per account",
        ),
    }
}

/// The API's maximum page size (PROPOSED in the reference; the public client uses 100).
pub const PAGE_SIZE: u32 = 100;
/// 100,000 workers; a pagination that claims more is treated as broken data.
const MAX_PAGES: u32 = 1000;

#[derive(Debug, Deserialize)]
struct Overview {
    #[serde(default)]
    hashrate: Option<OverviewHashrate>,
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
struct WorkersPage {
    data: Vec<Worker>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    #[serde(default)]
    total_pages: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Worker {
    #[serde(rename = "_id", default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
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
    #[serde(default)]
    last_share_at: Option<String>,
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

impl UltimateProxy {
    pub fn new(config: &SourceConfig) -> Self {
        UltimateProxy {
            account: config.account.clone(),
        }
    }

    async fn fetch(&self, api: &Upstream) -> Result<Snapshot, PollError> {
        let overview: Overview = api.get_json("/v1/overview", "/v1/overview", &[]).await?;
        let mut workers = Vec::new();
        let limit = PAGE_SIZE.to_string();
        for page in 1..=MAX_PAGES {
            let page_number = page.to_string();
            let batch: WorkersPage = api
                .get_json(
                    "/v1/workers",
                    "/v1/workers",
                    &[("page", &page_number), ("limit", &limit)],
                )
                .await?;
            let received = batch.data.len();
            workers.extend(batch.data);
            let last = match batch.pagination.and_then(|p| p.total_pages) {
                Some(total) => page >= total,
                None => received < PAGE_SIZE as usize,
            };
            if last || received == 0 {
                let series: HashrateSeries = api
                    .get_json(
                        "/v1/workers/hashrate",
                        "/v1/workers/hashrate",
                        &[("timeRange", "1h")],
                    )
                    .await?;
                return Ok(to_snapshot(&self.account, &overview, &workers, &series));
            }
        }
        Err(PollError::decode(
            "/v1/workers",
            format!("pagination claims more than {MAX_PAGES} pages"),
        ))
    }
}

impl Source for UltimateProxy {
    fn poll<'a>(&'a self, api: &'a Upstream) -> PollFuture<'a> {
        Box::pin(self.fetch(api))
    }
}

fn to_snapshot(
    account: &str,
    overview: &Overview,
    workers: &[Worker],
    series: &HashrateSeries,
) -> Snapshot {
    let mut snap = Snapshot::new();
    for w in workers {
        let Some(name) = worker_label(&w.name, &w.id) else {
            continue;
        };
        let labels = [account, name];
        set_worker(
            &mut snap,
            labels,
            w.status.as_deref(),
            "online",
            num(w.hashrate),
        );
        for (window, value) in [("1h", w.hashrate_1h), ("24h", w.hashrate_24h)] {
            if let Some(h) = num(value) {
                snap.set(&WORKER_HASHRATE_AVERAGE, &[account, name, window], h);
            }
        }
        if let (Some(acc), Some(rej)) = (num(w.accepted_shares), num(w.rejected_shares)) {
            if acc + rej > 0.0 {
                snap.set(&WORKER_REJECTED, &labels, rej / (acc + rej));
            }
        }
        if let Some(t) = unix_seconds(w.last_share_at.as_deref()) {
            snap.set(&WORKER_LAST_SHARE, &labels, t);
        }
    }
    count_workers(&mut snap, [account]);

    if let Some(h) = &overview.hashrate {
        if let Some(current) = num(h.current) {
            snap.set(&ACCOUNT_HASHRATE, &[account], current);
        }
        if let Some(avg) = num(h.avg_24h) {
            snap.set(&ACCOUNT_HASHRATE_AVERAGE, &[account, "24h"], avg);
        }
        if let Some(avg) = num(h.avg_1h) {
            snap.set(&ACCOUNT_HASHRATE_AVERAGE, &[account, "1h"], avg);
        }
    }
    // The hashrate series is the finer measure of the last hour: it wins over the overview.
    if let Some(stats) = &series.stats {
        if let Some(avg) = num(stats.avg_hashrate) {
            snap.set(&ACCOUNT_HASHRATE_AVERAGE, &[account, "1h"], avg);
        }
        if let Some(peak) = num(stats.peak_hashrate) {
            snap.set(&ACCOUNT_HASHRATE_PEAK, &[account, "1h"], peak);
        }
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(json: &str) -> Worker {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn unknown_status_is_down_and_names_fall_back_to_ids() {
        let workers = vec![
            worker(r#"{"_id":"a1","name":"rig01","status":"online","hashrate":8070}"#),
            worker(r#"{"_id":"a2","name":"rig02","status":"rebooting","hashrate":"10"}"#),
            worker(r#"{"_id":"a3","name":"","status":"ONLINE","hashrate":null}"#),
            worker(r#"{"status":"online"}"#),
        ];
        let overview: Overview = serde_json::from_str("{}").unwrap();
        let series: HashrateSeries = serde_json::from_str(r#"{"stats":null}"#).unwrap();
        let s = to_snapshot("acct", &overview, &workers, &series);
        assert_eq!(s.get(&WORKER_UP, &["acct", "rig01"]), Some(1.0));
        assert_eq!(s.get(&WORKER_UP, &["acct", "rig02"]), Some(0.0));
        assert_eq!(s.get(&WORKER_UP, &["acct", "a3"]), Some(1.0));
        assert_eq!(s.get(&WORKER_HASHRATE, &["acct", "rig02"]), Some(10.0));
        assert_eq!(s.get(&WORKER_HASHRATE, &["acct", "a3"]), None);
        assert_eq!(s.get(&WORKERS, &["acct", "active"]), Some(2.0));
        assert_eq!(s.get(&WORKERS, &["acct", "inactive"]), Some(1.0));
        assert_eq!(s.get(&ACCOUNT_HASHRATE, &["acct"]), None);
    }

    #[test]
    fn series_stats_override_the_overview_average() {
        let overview: Overview =
            serde_json::from_str(r#"{"hashrate":{"current":5,"avg_1h":4,"avg_24h":3}}"#).unwrap();
        let series: HashrateSeries =
            serde_json::from_str(r#"{"stats":{"avg_hashrate":4.5,"peak_hashrate":6}}"#).unwrap();
        let s = to_snapshot("acct", &overview, &[], &series);
        assert_eq!(s.get(&ACCOUNT_HASHRATE, &["acct"]), Some(5.0));
        assert_eq!(s.get(&ACCOUNT_HASHRATE_AVERAGE, &["acct", "1h"]), Some(4.5));
        assert_eq!(
            s.get(&ACCOUNT_HASHRATE_AVERAGE, &["acct", "24h"]),
            Some(3.0)
        );
        assert_eq!(s.get(&ACCOUNT_HASHRATE_PEAK, &["acct", "1h"]), Some(6.0));
    }
}
