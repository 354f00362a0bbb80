//! A simulated mining farm shared by the pool simulators: workers whose hashrates wander
//! around their nominal rate, drop offline now and then, and (when lively) leave and join.
//! Time moves in simulated seconds, caught up on each request.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::clock::WallClock;

/// One simulated second per step; a long pause between requests is not replayed in full.
const MAX_STEPS_PER_CATCH_UP: u64 = 600;
/// Per-minute totals kept for hashrate series.
const HISTORY_MINUTES: usize = 60;

#[derive(Debug, Clone)]
pub struct FarmWorker {
    /// Unique within the farm for its lifetime, for ids.
    pub serial: u32,
    pub name: String,
    /// What kind of machine it is (the algorithm on a proxy); chosen by the farm's profile.
    pub tag: &'static str,
    pub nominal: f64,
    pub hashrate: f64,
    pub avg_1h: f64,
    pub avg_24h: f64,
    pub offline_until: Option<Instant>,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
    pub last_share: SystemTime,
    pub connected_at: SystemTime,
}

impl FarmWorker {
    pub fn online(&self) -> bool {
        self.offline_until.is_none()
    }

    fn share_ratio(&self, n: u64) -> f64 {
        let all = self.accepted + self.rejected + self.stale;
        if all == 0 { 0.0 } else { n as f64 / all as f64 }
    }

    pub fn rejected_ratio(&self) -> f64 {
        self.share_ratio(self.rejected)
    }

    pub fn stale_ratio(&self) -> f64 {
        self.share_ratio(self.stale)
    }

    pub fn efficiency(&self) -> f64 {
        self.share_ratio(self.accepted)
    }
}

/// Picks a new worker's kind and nominal hashrate (H/s) from its serial.
pub type Profile = fn(&mut fastrand::Rng, u32) -> (&'static str, f64);

#[derive(Debug)]
pub struct Farm {
    rng: fastrand::Rng,
    pub workers: Vec<FarmWorker>,
    prefix: String,
    profile: Profile,
    /// Whether workers drop offline, leave and join by themselves.
    lively: bool,
    next_serial: u32,
    last_step: Instant,
    steps: u64,
    /// (unix seconds, hashrate by tag) once a simulated minute, newest last.
    history: VecDeque<(u64, BTreeMap<&'static str, f64>)>,
}

impl Farm {
    /// `count` workers named `<prefix>01`, `<prefix>02`, ...
    pub fn new(seed: u64, count: usize, prefix: &str, profile: Profile, lively: bool) -> Self {
        let mut farm = Farm {
            rng: fastrand::Rng::with_seed(seed),
            workers: Vec::with_capacity(count),
            prefix: prefix.to_string(),
            profile,
            lively,
            next_serial: 0,
            last_step: Instant::now(),
            steps: 0,
            history: VecDeque::new(),
        };
        for _ in 0..count {
            farm.join();
        }
        farm
    }

    fn join(&mut self) {
        let serial = self.next_serial;
        self.next_serial += 1;
        let (tag, nominal) = (self.profile)(&mut self.rng, serial);
        let now = WallClock::Tokio.now();
        let rng = &mut self.rng;
        self.workers.push(FarmWorker {
            serial,
            name: format!("{}{:02}", self.prefix, serial + 1),
            tag,
            nominal,
            hashrate: nominal,
            avg_1h: nominal * (0.98 + rng.f64() * 0.04),
            avg_24h: nominal * (0.97 + rng.f64() * 0.04),
            offline_until: None,
            accepted: 10_000 + rng.u64(..5_000),
            rejected: rng.u64(..20),
            stale: rng.u64(..10),
            last_share: now,
            connected_at: now - Duration::from_secs(3600 + rng.u64(..86_400)),
        });
    }

    /// Moves the farm forward to now, one simulated second at a time.
    pub fn advance(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_step).as_secs();
        if elapsed == 0 {
            return;
        }
        self.last_step += Duration::from_secs(elapsed);
        let wall = WallClock::Tokio.now();
        for _ in 0..elapsed.min(MAX_STEPS_PER_CATCH_UP) {
            self.step(now, wall);
        }
    }

    fn step(&mut self, now: Instant, wall: SystemTime) {
        self.steps += 1;
        if self.lively && !self.workers.is_empty() {
            // Now and then a worker drops out for 1-6 minutes, one at a time: long enough for
            // pools that call a worker inactive only after minutes without shares.
            if !self.workers.iter().any(|w| !w.online()) && self.rng.f64() < 1.0 / 120.0 {
                let i = self.rng.usize(..self.workers.len());
                self.workers[i].offline_until =
                    Some(now + Duration::from_secs(60 + self.rng.u64(..300)));
            }
            // About every five minutes one leaves for good and, on average, one joins.
            if self.workers.len() > 1 && self.rng.f64() < 1.0 / 300.0 {
                let i = self.rng.usize(..self.workers.len());
                self.workers.remove(i);
            }
        }
        if self.lively && self.rng.f64() < 1.0 / 300.0 {
            self.join();
        }
        for w in &mut self.workers {
            if w.offline_until.is_some_and(|t| t <= now) {
                w.offline_until = None;
                w.connected_at = wall;
            }
            if w.online() {
                // Mean-reverting walk: a few percent of noise around the nominal rate.
                let noise = (self.rng.f64() * 2.0 - 1.0) * 0.03 * w.nominal;
                w.hashrate = (w.hashrate + 0.2 * (w.nominal - w.hashrate) + noise).max(0.0);
                w.accepted += 1 + self.rng.u64(..3);
                if self.rng.f64() < 0.002 {
                    w.rejected += 1;
                }
                if self.rng.f64() < 0.001 {
                    w.stale += 1;
                }
                w.last_share = wall;
            } else {
                w.hashrate = 0.0;
            }
            w.avg_1h += (w.hashrate - w.avg_1h) / 3600.0;
            w.avg_24h += (w.hashrate - w.avg_24h) / 86_400.0;
        }
        if self.steps % 60 == 0 {
            let mut by_tag: BTreeMap<&'static str, f64> = BTreeMap::new();
            for w in &self.workers {
                *by_tag.entry(w.tag).or_default() += w.hashrate;
            }
            self.history.push_back((unix_now(), by_tag));
            while self.history.len() > HISTORY_MINUTES {
                self.history.pop_front();
            }
        }
    }

    pub fn total_hashrate(&self) -> f64 {
        self.hashrate_of(None)
    }

    /// The hashrate of the workers with `tag`, or of all of them.
    pub fn hashrate_of(&self, tag: Option<&str>) -> f64 {
        self.workers
            .iter()
            .filter(|w| tag.is_none_or(|t| t == w.tag))
            .map(|w| w.hashrate)
            .sum()
    }

    /// The per-minute history of `hashrate_of(tag)`, oldest first.
    pub fn history_of(&self, tag: Option<&str>) -> Vec<(u64, f64)> {
        self.history
            .iter()
            .map(|(t, by_tag)| {
                let h = by_tag
                    .iter()
                    .filter(|(k, _)| tag.is_none_or(|t| t == **k))
                    .map(|(_, h)| h)
                    .sum();
                (*t, h)
            })
            .collect()
    }

    pub fn online_count(&self) -> usize {
        self.workers.iter().filter(|w| w.online()).count()
    }

    pub fn names(&self) -> Vec<String> {
        self.workers.iter().map(|w| w.name.clone()).collect()
    }

    /// Removes a worker as if deleted in the pool's UI; true if it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.workers.len();
        self.workers.retain(|w| w.name != name);
        self.workers.len() < before
    }

    /// Takes a worker offline for `for_how_long`.
    pub fn take_offline(&mut self, name: &str, for_how_long: Duration) {
        for w in self.workers.iter_mut().filter(|w| w.name == name) {
            w.offline_until = Some(Instant::now() + for_how_long);
            w.hashrate = 0.0;
        }
    }
}

/// The simulators' Unix time: tokio's clock, so a paused test clock moves it.
pub fn unix_now() -> u64 {
    WallClock::Tokio.unix_seconds()
}

pub fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// ASIC-class SHA-256 machines, 90-140 TH/s, as BTC pools see them.
pub fn sha256_asic(rng: &mut fastrand::Rng, _serial: u32) -> (&'static str, f64) {
    ("sha256", (90.0 + rng.f64() * 50.0) * 1e12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_farm_keeps_its_workers_and_a_lively_one_changes() {
        let mut quiet = Farm::new(1, 5, "rig", sha256_asic, false);
        let mut lively = Farm::new(1, 5, "rig", sha256_asic, true);
        let start = Instant::now();
        for _ in 0..4000 {
            quiet.step(start, WallClock::Tokio.now());
            lively.step(start, WallClock::Tokio.now());
        }
        assert_eq!(quiet.names(), ["rig01", "rig02", "rig03", "rig04", "rig05"]);
        assert_ne!(lively.names(), quiet.names());
        assert!(quiet.workers.iter().all(|w| w.hashrate > 0.5 * w.nominal));
        assert_eq!(quiet.history_of(None).len(), HISTORY_MINUTES);
    }
}
