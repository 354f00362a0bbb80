//! What every kind of source shares: the `account` key, and how a worker, its algorithm
//! and the worker counts reach the snapshot.

use std::collections::BTreeMap;

use crate::config::KindContext;
use crate::error::ConfigError;
use crate::metrics::{WORKER_HASHRATE, WORKER_UP, WORKERS};
use crate::snapshot::{SKIP_DUPLICATE, Snapshot};

/// The `account` label of kinds that take one: as configured, or the source's name.
pub fn account(cx: &KindContext<'_, '_>, account: Option<String>) -> Result<String, ConfigError> {
    let account = account.unwrap_or_else(|| cx.name().to_string());
    if account.trim().is_empty() || account.chars().any(char::is_control) {
        return Err(cx.err(
            "account",
            "the account is empty or holds control characters",
            "write the account name as the pool shows it",
        ));
    }
    Ok(account)
}

/// A worker's label: its name, or its id where the pool sends no usable name.
pub fn worker_label<'a>(name: &'a Option<String>, id: &'a Option<String>) -> Option<&'a str> {
    [name, id]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .find(|n| !n.is_empty())
}

/// The `algorithm` label where a pool names none.
pub const UNKNOWN_ALGORITHM: &str = "unknown";

/// An algorithm as the pool names it, lower-case, so `RandomX` and `randomx` are one series;
/// `unknown` where it sends none.
pub fn algorithm_label(name: Option<&str>) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_lowercase(),
        None => UNKNOWN_ALGORITHM.to_string(),
    }
}

/// Sets what every pool says of a worker: `mining_worker_up`, which is 1 only when `status`
/// is the pool's word for alive (any case), so a missing or unknown status never shows a
/// dead worker as alive; and its freshest hashrate of `algorithm`, where there is one. A
/// worker the answer already gave keeps its first entry, as `http_json` keeps a repeated
/// label set: the repeat is counted as a `duplicate` (and warned of once), and false tells
/// the caller to set nothing more of it, so a rig listed offline and then online never
/// flips to up.
#[must_use]
pub fn set_worker(
    snap: &mut Snapshot,
    [account, worker]: [&str; 2],
    algorithm: &str,
    status: Option<&str>,
    alive: &str,
    hashrate: Option<f64>,
) -> bool {
    let up = status.is_some_and(|s| s.trim().eq_ignore_ascii_case(alive));
    if !snap.set_first(&WORKER_UP, &[account, worker], if up { 1.0 } else { 0.0 }) {
        snap.note_skipped(SKIP_DUPLICATE, 1);
        return false;
    }
    if let Some(h) = hashrate {
        snap.set(&WORKER_HASHRATE, &[account, worker, algorithm], h);
    }
    true
}

/// Sets `mining_workers` per account from the `mining_worker_up` series already in `snap`, so
/// a worker the pool lists twice counts once. Every account in `accounts` gets both states,
/// at 0 when it has no workers.
pub fn count_workers<'a>(snap: &mut Snapshot, accounts: impl IntoIterator<Item = &'a str>) {
    let mut counts: BTreeMap<String, (u32, u32)> = accounts
        .into_iter()
        .map(|a| (a.to_string(), (0, 0)))
        .collect();
    for (labels, up) in snap.samples(&WORKER_UP).into_iter().flatten() {
        let Some(account) = labels.first() else {
            continue;
        };
        let count = counts.entry(account.to_string()).or_default();
        if up > 0.0 {
            count.0 += 1;
        } else {
            count.1 += 1;
        }
    }
    for (account, (active, inactive)) in counts {
        snap.set(&WORKERS, &[&account, "active"], active.into());
        snap.set(&WORKERS, &[&account, "inactive"], inactive.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_listed_twice_keeps_its_first_entry_and_is_counted() {
        let mut snap = Snapshot::new();
        assert!(set_worker(
            &mut snap,
            ["a", "rig"],
            "sha256",
            Some("offline"),
            "online",
            Some(0.0)
        ));
        assert!(!set_worker(
            &mut snap,
            ["a", "rig"],
            "sha256",
            Some("online"),
            "online",
            Some(9e13)
        ));
        assert_eq!(
            snap.get(&WORKER_UP, &["a", "rig"]),
            Some(0.0),
            "never a silent flip to up"
        );
        assert_eq!(
            snap.get(&WORKER_HASHRATE, &["a", "rig", "sha256"]),
            Some(0.0)
        );
        let skipped: Vec<(&str, usize)> = snap.skipped().collect();
        assert_eq!(skipped, [(SKIP_DUPLICATE, 1)]);
    }
}
