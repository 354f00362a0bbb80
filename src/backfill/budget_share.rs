//! How a backfill stays inside every pool limit beside a running exporter on the same
//! tokens. The backfill leaves the exporter room for the most its plan can send in any
//! window, and takes no more than the rest.
//!
//! An interval source polls at most once per planned interval (start to start; an overrun
//! is followed at once, never by a burst), so in any span `D` it starts at most
//! `floor(D / interval) + 1` polls; a cron source starts at most as many as its expression
//! fires inside any span `D` over the coming week (its burst, not its mean). Each poll may
//! cost its learned cost and `max_retries` retries on top. Summed over every source of the
//! config on a budget, that is the exporter's reserve; a source whose cost the exporter
//! never saved (no state directory, or a source not polled yet) may cost anything, so its
//! budget's reserve is at least the share the plan fills (`target_utilization` of each
//! window). The backfill's window is the limit less the reserve: in any span `D` the two
//! together send at most the limit.
//!
//! With a state directory the plan counts the costs the exporter learned, the backfill takes
//! over any pause a pool imposed there, and its own sends are kept there beside the
//! exporter's: a second backfill within the window counts the first's. The pool's rate
//! headers tighten the backfill's budget as they do the exporter's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::budget::{Budget, Budgets};
use crate::config::{BudgetConfig, Config, RateWindow, Trigger};
use crate::plan::Plan;

/// One window of a budget: the limit, the exporter's reserve and the backfill's share.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowShare {
    pub limit: RateWindow,
    pub reserve: u64,
    pub share: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub budget: String,
    pub windows: Vec<WindowShare>,
}

impl Share {
    /// Requests a second the backfill may send through this budget in the long run.
    pub fn rate(&self) -> f64 {
        self.windows
            .iter()
            .map(|w| f64::from(w.share) / w.limit.per.as_secs_f64())
            .fold(f64::INFINITY, f64::min)
    }
}

/// The most the plan's sources on `budget` can send in any span of `per`, retries included.
fn reserve(config: &Config, plan: &Plan, budget: &str, limit: &RateWindow) -> u64 {
    // The plan lists the config's sources in the config's order.
    let on_budget = plan
        .sources
        .iter()
        .zip(&config.sources)
        .filter(|(planned, source)| planned.name == source.name)
        .filter(|(s, _)| s.budget == budget || s.host_budget.as_deref() == Some(budget));
    let mut reserve: u64 = 0;
    let mut unknown_cost = false;
    for (planned, source) in on_budget {
        let polls = match &planned.trigger {
            Trigger::Cron(expr) => crate::plan::cron_most_firings_within(expr, limit.per),
            Trigger::Every(_) => {
                let interval = planned.interval.as_secs_f64().max(1.0);
                (limit.per.as_secs_f64() / interval).floor() as u64 + 1
            }
        };
        let retries = retries_within(
            source.http.max_retries,
            source.http.retry_backoff,
            limit.per,
        );
        let per_poll = u64::from(planned.cost).saturating_add(retries);
        reserve = reserve.saturating_add(polls.saturating_mul(per_poll));
        unknown_cost |= !planned.learned;
    }
    if unknown_cost {
        // Rounded down, as a start without state assumes the plan's pace.
        let target = config.budgets.get(budget).map_or(1.0, |b| b.target);
        let filled = (f64::from(limit.count) * target * (1.0 + 1e-12)).floor() as u64;
        reserve = reserve.max(filled);
    }
    // The exporter's own budget never lets more than the limit out in one window.
    reserve.min(u64::from(limit.count))
}

/// The retries of one failing request that fit inside a span of `per`: retry k waits at
/// least `backoff x (2^k - 1)` after the first attempt (exponential, doubling; jitter only
/// adds), and there are at most `max_retries`.
fn retries_within(max_retries: usize, backoff: Duration, per: Duration) -> u64 {
    let mut fit = 0u64;
    for k in 1..=u32::try_from(max_retries).unwrap_or(u32::MAX).min(32) {
        let waited = backoff.saturating_mul(2u32.saturating_pow(k).saturating_sub(1));
        if waited >= per {
            break;
        }
        fit += 1;
    }
    fit
}

/// The backfill's budgets for the budgets in `used`, each window cut to what the plan
/// leaves; or, for a budget the plan fills, which one and how to make room.
pub fn shares(
    config: &Config,
    plan: &Plan,
    used: &BTreeSet<String>,
) -> Result<(Budgets, Vec<Share>), String> {
    let mut budgets: Budgets = BTreeMap::new();
    let mut shares = Vec::new();
    for name in used {
        let Some(limits) = config.budgets.get(name).map(|b| b.limits.clone()) else {
            return Err(format!("no budget {name:?} in the config"));
        };
        let mut windows = Vec::with_capacity(limits.len());
        for limit in limits {
            let reserve = reserve(config, plan, name, &limit);
            let share = u64::from(limit.count).saturating_sub(reserve);
            if share == 0 {
                return Err(format!(
                    "budget {name:?} allows {}/{}, and the exporter's plan may send {reserve} of them in one window: nothing is left for a backfill (give its sources a longer interval or fewer max_retries, or run the backfill with the exporter's sources on another token)",
                    limit.count,
                    humantime::format_duration(limit.per)
                ));
            }
            windows.push(WindowShare {
                limit,
                reserve,
                share: u32::try_from(share).unwrap_or(u32::MAX),
            });
        }
        let budget = Budget::new(&BudgetConfig {
            name: name.clone(),
            limits: windows
                .iter()
                .map(|w| RateWindow::new(w.share, w.limit.per))
                .collect(),
            origin: "backfill share".to_string(),
            target: 1.0,
        });
        budgets.insert(name.clone(), Arc::new(budget));
        shares.push(Share {
            budget: name.clone(),
            windows,
        });
    }
    Ok((budgets, shares))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretMode;
    use std::collections::BTreeMap;

    /// One Ultimate Proxy key of 10/1m and its source, with `more` TOML of the source.
    fn config(more: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(dir.path().join("token"), "up_k_test").unwrap();
        std::fs::write(
            &path,
            format!(
                "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"proxy\"\ntoken_file = \"token\"\ntier = \"non_vip\"\n{more}\n"
            ),
        )
        .unwrap();
        Config::load(&path, SecretMode::Require, &crate::sources::KINDS).unwrap()
    }

    fn reserved(config: &Config, learned: &[(&str, u32)]) -> u64 {
        let learned: BTreeMap<String, u32> =
            learned.iter().map(|(n, c)| (n.to_string(), *c)).collect();
        let plan = crate::plan::plan(config, &learned);
        let used = BTreeSet::from(["auto:proxy".to_string()]);
        match shares(config, &plan, &used) {
            Ok((_, shares)) => shares[0].windows[0].reserve,
            Err(_) => u64::MAX,
        }
    }

    #[test]
    fn each_poll_in_the_window_keeps_room_for_its_retries() {
        let every_2m = config("interval = \"2m\"\nmax_retries = 2");
        // One poll in any minute: its 4 requests and 2 retries.
        assert_eq!(reserved(&every_2m, &[("proxy", 4)]), 6);
        let no_retries = config("interval = \"2m\"\nmax_retries = 0");
        assert_eq!(reserved(&no_retries, &[("proxy", 4)]), 4);
    }

    #[test]
    fn a_cron_source_keeps_room_for_its_burst_not_its_mean() {
        // Three firings ten seconds apart, once an hour: a mean of one every 20 minutes, and
        // all three inside one minute.
        let cron = config("schedule = \"0,10,20 0 * * * *\"\nmax_retries = 0");
        assert_eq!(reserved(&cron, &[("proxy", 3)]), 9);
    }

    #[test]
    fn only_the_retries_that_fit_in_the_window_are_kept() {
        // 1 s, then 2 s more, then 4 s more: two retries inside five seconds, three in a minute.
        let second = Duration::from_secs(1);
        assert_eq!(retries_within(3, second, Duration::from_secs(5)), 2);
        assert_eq!(retries_within(3, second, Duration::from_secs(60)), 3);
        assert_eq!(retries_within(0, second, Duration::from_secs(60)), 0);
        assert_eq!(
            retries_within(10, Duration::ZERO, Duration::from_secs(1)),
            10
        );
    }

    #[test]
    fn a_cost_never_learned_keeps_the_share_the_plan_may_fill() {
        let every_2m = config("interval = \"2m\"\nmax_retries = 0");
        // The kind's least (3) would reserve 3 of 10; a poll of unknown cost may take the
        // plan's whole 85 %.
        assert_eq!(reserved(&every_2m, &[]), 8);
        assert_eq!(reserved(&every_2m, &[("proxy", 3)]), 3);
    }
}
