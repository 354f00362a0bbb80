//! OurPool (ourpool.io, BTC): the documented `rewards-stats`, plus the account's miner
//! workers and miner stats, which the reference only proposes: a 404 from either switches it
//! off for the source and the rest keeps working. The watcher token travels as `?token=`.
//! Hashrates are H/s, amounts BTC; both arrive as numbers or numeric strings.
//! Reference: ourpool.io/api-documentation; the fixtures in tests/fixtures/ourpool/.

pub mod config;

use serde::Deserialize;

use super::fields::{Entries, Num, num, required, text, timestamp};
use super::optional::OptionalEndpoints;
use super::shared::{count_workers, set_worker};
use super::{PollFuture, Source};
use crate::client::{Upstream, escape_path_segment};
use crate::error::PollError;
use crate::metrics::*;
use crate::snapshot::{SKIP_DUPLICATE, SKIP_UNREADABLE, Snapshot};
pub use config::OurPoolConfig;

/// OurPool is a BTC pool; its paths say `btc`.
const CURRENCY: &str = "BTC";
/// Bitcoin's proof of work: every OurPool hashrate is SHA-256.
const ALGORITHM: &str = "sha256";

pub(crate) const REWARDS_STATS: &str = "/api/v1/accounts/{account}/btc/rewards-stats";
const MINER_WORKERS: &str = "/api/v1/accounts/{account}/btc/miner/workers";
const MINER_STATS: &str = "/api/v1/accounts/{account}/btc/miner/stats";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RewardsStats {
    #[serde(default)]
    pub(crate) total_paid: Option<Num>,
    #[serde(default)]
    balance: Option<Num>,
    #[serde(default)]
    rewards24h: Option<Num>,
    #[serde(default)]
    rewards7d: Option<Num>,
    #[serde(default)]
    rewards30d: Option<Num>,
}

#[derive(Debug, Deserialize)]
struct MinerWorkers {
    /// Keyed by worker name. Required: a body without it is not a worker list, and reading
    /// it as "no workers" would hide a broken answer. `null` reads as empty, and a worker
    /// that cannot be read is skipped and counted.
    #[serde(deserialize_with = "required")]
    workers: Entries<Worker>,
}

/// The hashrate averages OurPool sends for a worker and for the account.
#[derive(Debug, Deserialize)]
struct Hashrates {
    #[serde(default)]
    hashrate10m: Option<Num>,
    #[serde(default)]
    hashrate1h: Option<Num>,
    #[serde(default)]
    hashrate24h: Option<Num>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Worker {
    #[serde(flatten)]
    hashrates: Hashrates,
    #[serde(default, deserialize_with = "timestamp")]
    last_share_at: Option<f64>,
    #[serde(default, deserialize_with = "text")]
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MinerStats {
    #[serde(flatten)]
    hashrates: Hashrates,
    #[serde(default)]
    workers_online: Option<Num>,
    #[serde(default)]
    workers_offline: Option<Num>,
}

pub struct OurPool {
    account: String,
    /// `/api/v1/accounts/<escaped account>/btc`
    prefix: String,
    optional: OptionalEndpoints,
}

impl super::FromSettings for OurPool {
    type Settings = OurPoolConfig;

    fn new(settings: &OurPoolConfig) -> Self {
        OurPool {
            account: settings.account.clone(),
            prefix: format!(
                "/api/v1/accounts/{}/btc",
                escape_path_segment(&settings.account)
            ),
            optional: OptionalEndpoints::new(),
        }
    }
}

impl OurPool {
    async fn fetch(&self, api: &Upstream) -> Result<Snapshot, PollError> {
        let path = |tail: &str| format!("{}{tail}", self.prefix);
        let rewards: RewardsStats = api
            .get_json(REWARDS_STATS, &path("/rewards-stats"), &[])
            .await?;
        let workers: Option<MinerWorkers> = self
            .optional
            .get_json(api, MINER_WORKERS, &path("/miner/workers"), &[])
            .await?;
        let stats: Option<MinerStats> = self
            .optional
            .get_json(api, MINER_STATS, &path("/miner/stats"), &[])
            .await?;
        Ok(to_snapshot(
            &self.account,
            &rewards,
            workers.as_ref(),
            stats.as_ref(),
        ))
    }
}

impl Source for OurPool {
    fn poll<'a>(&'a self, api: &'a Upstream) -> PollFuture<'a> {
        Box::pin(self.fetch(api))
    }
}

fn to_snapshot(
    account: &str,
    rewards: &RewardsStats,
    workers: Option<&MinerWorkers>,
    stats: Option<&MinerStats>,
) -> Snapshot {
    let mut snap = Snapshot::new();
    let money = [account, CURRENCY];
    if let Some(balance) = num(rewards.balance) {
        snap.set(&ACCOUNT_BALANCE, &money, balance);
    }
    if let Some(paid) = num(rewards.total_paid) {
        snap.set(&ACCOUNT_PAID_TOTAL, &money, paid);
    }
    for (window, value) in [
        ("24h", rewards.rewards24h),
        ("7d", rewards.rewards7d),
        ("30d", rewards.rewards30d),
    ] {
        if let Some(v) = num(value) {
            snap.set(&ACCOUNT_REWARDS, &[account, CURRENCY, window], v);
        }
    }

    if let Some(list) = workers {
        snap.note_skipped(SKIP_UNREADABLE, list.workers.unreadable);
        snap.note_skipped(SKIP_DUPLICATE, list.workers.repeated);
        for (name, w) in &list.workers.read {
            let labels = [account, name.as_str()];
            // The freshest figure OurPool offers per worker: 10 minutes if sent, else 1 hour.
            let freshest = num(w.hashrates.hashrate10m).or(num(w.hashrates.hashrate1h));
            if !set_worker(
                &mut snap,
                labels,
                ALGORITHM,
                w.status.as_deref(),
                "online",
                freshest,
            ) {
                continue;
            }
            for (window, value) in [
                ("1h", w.hashrates.hashrate1h),
                ("24h", w.hashrates.hashrate24h),
            ] {
                if let Some(h) = num(value) {
                    snap.set(
                        &WORKER_HASHRATE_AVERAGE,
                        &[account, name, ALGORITHM, window],
                        h,
                    );
                }
            }
            if let Some(t) = w.last_share_at {
                snap.set(&WORKER_LAST_SHARE, &labels, t);
            }
        }
        count_workers(&mut snap, [account]);
    }

    if let Some(stats) = stats {
        if let Some(h) = num(stats.hashrates.hashrate10m) {
            snap.set(&ACCOUNT_HASHRATE, &[account, ALGORITHM], h);
        }
        for (window, value) in [
            ("1h", stats.hashrates.hashrate1h),
            ("24h", stats.hashrates.hashrate24h),
        ] {
            if let Some(h) = num(value) {
                snap.set(&ACCOUNT_HASHRATE_AVERAGE, &[account, ALGORITHM, window], h);
            }
        }
        // The worker list is the finer source; the stats' counts stand in when it is off.
        if workers.is_none() {
            for (state, value) in [
                ("active", stats.workers_online),
                ("inactive", stats.workers_offline),
            ] {
                if let Some(n) = num(value) {
                    snap.set(&WORKERS, &[account, state], n);
                }
            }
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

    #[test]
    fn workers_keyed_by_name_with_unknown_status_down() {
        let rewards: RewardsStats = parse(r#"{"totalPaid":"0.5","balance":0.001,"extra":1}"#);
        let workers: MinerWorkers = parse(
            r#"{"workers":{
                "rig01":{"hashrate1h":"110","hashrate24h":100,"status":"online"},
                "rig02":{"hashrate10m":null,"hashrate1h":null,"status":"sleeping"},
                "rig03":{}}}"#,
        );
        let s = to_snapshot("acct", &rewards, Some(&workers), None);
        assert_eq!(s.get(&ACCOUNT_PAID_TOTAL, &["acct", "BTC"]), Some(0.5));
        assert_eq!(s.get(&ACCOUNT_BALANCE, &["acct", "BTC"]), Some(0.001));
        assert_eq!(s.get(&ACCOUNT_REWARDS, &["acct", "BTC", "24h"]), None);
        assert_eq!(s.get(&WORKER_UP, &["acct", "rig01"]), Some(1.0));
        assert_eq!(
            s.get(&WORKER_HASHRATE, &["acct", "rig01", "sha256"]),
            Some(110.0)
        );
        assert_eq!(s.get(&WORKER_UP, &["acct", "rig02"]), Some(0.0));
        assert_eq!(s.get(&WORKER_HASHRATE, &["acct", "rig02", "sha256"]), None);
        assert_eq!(s.get(&WORKER_UP, &["acct", "rig03"]), Some(0.0));
        assert_eq!(s.get(&WORKERS, &["acct", "active"]), Some(1.0));
        assert_eq!(s.get(&WORKERS, &["acct", "inactive"]), Some(2.0));
    }

    #[test]
    fn stats_counts_stand_in_only_without_a_worker_list() {
        let rewards: RewardsStats = parse("{}");
        let stats: MinerStats =
            parse(r#"{"hashrate10m":"5","workersOnline":3,"workersOffline":"1"}"#);
        let s = to_snapshot("acct", &rewards, None, Some(&stats));
        assert_eq!(s.get(&ACCOUNT_HASHRATE, &["acct", "sha256"]), Some(5.0));
        assert_eq!(s.get(&WORKERS, &["acct", "active"]), Some(3.0));
        assert_eq!(s.get(&WORKERS, &["acct", "inactive"]), Some(1.0));
        let empty: MinerWorkers = parse(r#"{"workers":null}"#);
        let s = to_snapshot("acct", &rewards, Some(&empty), Some(&stats));
        assert_eq!(s.get(&WORKERS, &["acct", "active"]), Some(0.0));
    }

    #[test]
    fn a_body_without_workers_is_not_an_empty_list() {
        assert!(serde_json::from_str::<MinerWorkers>("{}").is_err());
        assert!(serde_json::from_str::<MinerWorkers>(r#"{"workers":[1]}"#).is_err());
    }

    mod properties {
        use super::*;
        use crate::sources::arbitrary::{pool_json, pool_object};
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_answer_decodes_or_fails_and_maps_without_panicking(
                rewards in pool_object(),
                workers in prop_oneof![
                    4 => proptest::collection::vec(("[a-z0-9 ]{0,6}", pool_object()), 0..6)
                        .prop_map(|w| serde_json::json!({"workers": w.into_iter().collect::<serde_json::Map<_, _>>()})),
                    1 => pool_json(),
                ],
                stats in pool_object(),
            ) {
                let rewards = serde_json::from_value::<RewardsStats>(rewards);
                let workers = serde_json::from_value::<MinerWorkers>(workers).ok();
                let stats = serde_json::from_value::<MinerStats>(stats).ok();
                if let Ok(rewards) = rewards {
                    let snap = to_snapshot("acct", &rewards, workers.as_ref(), stats.as_ref());
                    for (_, up) in snap.samples(&WORKER_UP).into_iter().flatten() {
                        prop_assert!(up == 0.0 || up == 1.0);
                    }
                }
            }
        }
    }
}
