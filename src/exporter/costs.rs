//! The plan kept up to date with what polls cost, and the state file that carries budgets and
//! learned costs across restarts (`--state-dir`).

use std::collections::BTreeMap;

use tracing::{debug, info, warn};

use super::{BudgetsAtStart, Exporter};
use crate::config::Trigger;
use crate::error::StartError;
use crate::plan;
use crate::scheduler::CostLearned;
use crate::state_file::{KeptBudget, StateError, StateFile, kept_budgets};

/// What each source's polls cost, as learned, and where that is kept.
#[derive(Debug, Default)]
pub(super) struct Costs {
    /// By source name.
    pub(super) learned: BTreeMap<String, u32>,
    state: Option<StateFile>,
    /// The budgets in force (and those a reload retired), as the state file keeps them.
    kept: Vec<KeptBudget>,
    /// What the last write saw: the budgets' change count and the file's modification
    /// time. Unchanged, there is nothing to write and no other writer's sends to take in.
    saved_at: Option<(u64, Option<std::time::SystemTime>)>,
}

impl Costs {
    pub(super) fn keeps_state(&self) -> bool {
        self.state.is_some()
    }

    /// The budgets to keep in the state file from now on.
    pub(super) fn keep(&mut self, kept: Vec<KeptBudget>) {
        self.kept = kept;
    }

    fn modified(file: &StateFile) -> Option<std::time::SystemTime> {
        std::fs::metadata(file.path())
            .and_then(|m| m.modified())
            .ok()
    }

    /// Writes the state file at once: a start that finds none leaves one.
    pub(super) fn save_once(&mut self) -> Result<(), StartError> {
        let Some(file) = &self.state else {
            return Ok(());
        };
        file.save(&self.kept, &self.learned)
            .map_err(|e| StartError::State(e.to_string()))?;
        let changes = self.kept.iter().map(|k| k.budget.changes()).sum();
        self.saved_at = Some((changes, Costs::modified(file)));
        Ok(())
    }

    /// Writes this process's part of the state file if a budget sent or paused since the
    /// last write, or another process wrote the file (whose new sends are then taken in).
    pub(super) async fn save(&mut self) {
        let Some(file) = self.state.clone() else {
            return;
        };
        let changes: u64 = self.kept.iter().map(|k| k.budget.changes()).sum();
        if self.saved_at == Some((changes, Costs::modified(&file))) {
            return;
        }
        let kept = self.kept.clone();
        let costs = self.learned.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let outcome = file.save(&kept, &costs);
            (outcome, Costs::modified(&file))
        })
        .await;
        match saved {
            Ok((Ok(outcome), modified)) => {
                if let Some(why) = outcome.replaced {
                    warn!("{why}");
                }
                if outcome.taken_in > 0 {
                    debug!(
                        requests = outcome.taken_in,
                        "requests another process sent on these budgets taken in from the state file"
                    );
                }
                self.saved_at = Some((changes, modified));
            }
            Ok((Err(e), _)) => {
                warn!(error = %e, "cannot write the state file; a restart now may send more than a window allows")
            }
            Err(_) => warn!("writing the state file panicked"),
        }
    }
}

impl Exporter {
    /// Starts the budgets from what the options say came before. From a state file: its
    /// sends still count against the windows and its costs plan the first polls.
    pub(super) fn take_in_what_came_before(&mut self) -> Result<(), StartError> {
        let now = tokio::time::Instant::now();
        let dir = match &self.options.budgets_at_start {
            BudgetsAtStart::Empty => return Ok(()),
            BudgetsAtStart::AssumedPartlyUsed => {
                for budget in self.budgets.values() {
                    budget.assume_partly_used(now);
                }
                return Ok(());
            }
            BudgetsAtStart::StateDir(dir) => dir.clone(),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| StartError::State(format!("cannot create {}: {e}", dir.display())))?;
        let file = StateFile::in_dir(&dir, self.options.clock, self.options.state_role);
        self.keep_budgets_in_state();
        let restored = match file.load(&self.costs.kept) {
            Ok(restored) => restored,
            Err(e @ StateError::Unreadable { .. }) => {
                warn!("{e}");
                Default::default()
            }
            Err(e) => return Err(StartError::State(e.to_string())),
        };
        for (name, budget) in &self.budgets {
            match restored.budgets.get(name) {
                Some(log) => budget.restore(log, now),
                None => budget.assume_partly_used(now),
            }
        }
        for (name, cost) in restored.costs {
            if let Some(poller) = self.pollers.get(&name) {
                poller.knows_cost(cost);
                self.costs.learned.insert(name, cost);
            }
        }
        info!(file = %file.path().display(), budgets = restored.budgets.len(), "budgets restored from the state file");
        self.costs.state = Some(file);
        Ok(())
    }

    /// Tells the state file which budgets are in force, with their tokens: after the start
    /// and after every reload (a budget a reload retired stays kept for its window).
    pub(super) fn keep_budgets_in_state(&mut self) {
        let mut kept = kept_budgets(&self.config.sources, &self.budgets);
        for retired in &self.retired {
            if !self.budgets.contains_key(retired.name()) {
                kept.extend(retired.kept());
            }
        }
        self.costs.keep(kept);
    }

    /// Computes the plan from the config and the costs learned so far, and hands each
    /// source its interval.
    pub(super) fn replan(&mut self) {
        self.plan = plan::plan(&self.config, &self.costs.learned);
        for planned in &self.plan.sources {
            if let (Some(poller), Trigger::Every(every)) =
                (self.pollers.get(&planned.name), &planned.trigger)
            {
                poller.set_planned(*every);
            }
        }
        let pollers = &self.pollers;
        self.telemetry.planned(
            self.plan.sources.iter().filter_map(|s| {
                let poller = pollers.get(&s.name)?;
                Some((poller.pool(), s.name.as_str(), s.interval, s.cost))
            }),
            self.plan
                .budgets
                .iter()
                .map(|b| (b.name.as_str(), b.use_ratio())),
        );
    }

    /// Sources' costs changed: the plan follows once for all of them, and one log line a
    /// source says what moved. (A thousand sources' first polls learn a thousand costs in a
    /// minute; they share the replans and renders that come in the meantime.)
    pub(super) fn costs_learned(&mut self, learned: Vec<CostLearned>) {
        let learned: Vec<CostLearned> = learned
            .into_iter()
            .filter(|l| self.pollers.contains_key(&l.source))
            .collect();
        if learned.is_empty() {
            return;
        }
        let before = self.plan.clone();
        for l in &learned {
            self.costs.learned.insert(l.source.clone(), l.requests);
        }
        self.replan();
        // The page shows the plan's gauges as of its next render.
        let exposition = self.exposition.clone();
        tokio::spawn(async move { exposition.refreshed().await });
        let moved: Vec<String> = self
            .plan
            .sources
            .iter()
            .filter_map(|now| {
                let was = before.source(&now.name)?;
                (was.interval != now.interval).then(|| {
                    format!(
                        "{} every {} (was {})",
                        now.name,
                        humantime::format_duration(now.interval),
                        humantime::format_duration(was.interval)
                    )
                })
            })
            .collect();
        let changed = if moved.is_empty() {
            "no interval".to_string()
        } else if moved.len() > 10 {
            format!(
                "{} sources' intervals, e.g. {}",
                moved.len(),
                moved[..3].join(", ")
            )
        } else {
            moved.join(", ")
        };
        for l in &learned {
            let planned_cost = before.source(&l.source).map(|p| p.cost);
            let was = match (l.was, planned_cost) {
                (Some(was), _) => was.to_string(),
                (None, Some(assumed)) => format!("{assumed} assumed"),
                (None, None) => "unknown".to_string(),
            };
            // A first poll that costs what was assumed changes nothing worth a line.
            if planned_cost == Some(l.requests) {
                debug!(source = %l.source, requests_per_poll = l.requests, %was, %changed, "poll cost learned; plan recomputed");
            } else {
                info!(source = %l.source, requests_per_poll = l.requests, %was, %changed, "poll cost learned; plan recomputed");
            }
        }
    }
}
