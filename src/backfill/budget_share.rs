//! How a backfill stays inside every pool limit beside a running exporter on the same
//! tokens. The two processes do not share a send log, so the backfill leaves the exporter
//! room for the most its plan can send in any window, and takes no more than the rest.
//!
//! A source polls at most once per planned interval (start to start; an overrun is followed
//! at once, never by a burst), so in any span `D` it starts at most `floor(D / interval) +
//! 1` polls of its cost. Summed over every source of the config on a budget, that is the
//! exporter's reserve; the backfill's window is the limit less the reserve. In any span `D`
//! the two together send at most the limit. The plan counts the costs the exporter learned
//! when `--state-dir` names its directory, and the backfill takes over any pause a pool
//! imposed there. The pool's rate headers tighten the backfill's budget as they do the
//! exporter's; where both see them, they also see each other.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::budget::{Budget, Budgets};
use crate::config::{BudgetConfig, Config, RateWindow};
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

/// The most the plan's sources on `budget` can send in any span of `per`.
fn reserve(plan: &Plan, budget: &str, per: Duration) -> u64 {
    plan.sources
        .iter()
        .filter(|s| s.budget == budget || s.host_budget.as_deref() == Some(budget))
        .map(|s| {
            let interval = s.interval.as_secs_f64().max(1.0);
            let polls = (per.as_secs_f64() / interval).floor() as u64 + 1;
            polls.saturating_mul(u64::from(s.cost))
        })
        .sum()
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
            let reserve = reserve(plan, name, limit.per);
            let share = u64::from(limit.count).saturating_sub(reserve);
            if share == 0 {
                return Err(format!(
                    "budget {name:?} allows {}/{}, and the exporter's plan may send {reserve} of them in one window: nothing is left for a backfill (give its sources a longer interval, or run the backfill with the exporter's sources on another token)",
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
