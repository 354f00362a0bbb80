//! A reload carried out: the file re-read, its diff taken (`reload_diff.rs`), and the diff
//! applied: new sources start, removed ones stop and leave the page, unchanged ones keep
//! running untouched, and every budget keeps its send log. A file that does not load, or a
//! source that cannot be built, changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tracing::{error, info, warn};

use super::reload_diff::{BudgetChange, BudgetOrigin, ReloadDiff, RetiredBudget, SourceChange};
use super::{Exporter, Serving};
use crate::budget::{Budget, Budgets};
use crate::config::{Config, SecretMode};

/// A budget no source uses any more, kept for its longest window.
pub(super) struct Retired {
    about: RetiredBudget,
    budget: Arc<Budget>,
    since: tokio::time::Instant,
}

impl Retired {
    pub(super) fn name(&self) -> &str {
        &self.about.config.name
    }

    /// The budget as the state file keeps it, with the token of the sources it served.
    pub(super) fn kept(&self) -> Vec<crate::state_file::KeptBudget> {
        let budgets = Budgets::from([(self.name().to_string(), self.budget.clone())]);
        crate::state_file::kept_budgets(&self.about.users, &budgets)
    }
}

impl Exporter {
    /// Re-reads the config file and applies it. Its outcome is logged here and returned
    /// to the one who asked.
    pub(super) async fn reload(&mut self, serving: &mut Serving) -> Result<(), String> {
        let loaded = match &self.options.config_path {
            Some(path) => Config::load(path, SecretMode::Require, &crate::sources::KINDS)
                .map_err(|e| e.to_string()),
            None => Err("this exporter was not started from a config file".to_string()),
        };
        let outcome = match loaded {
            Ok(config) => self.apply(config, serving).await,
            Err(message) => Err(message),
        };
        match &outcome {
            Ok(diff) => {
                self.telemetry.config_reloaded(SystemTime::now());
                info!(
                    kept = diff.count(SourceChange::Keep),
                    restarted = diff.count(SourceChange::Restart),
                    added = diff.count(SourceChange::Add),
                    removed = diff.removed.len(),
                    cron_jobs = serving.running.values().filter(|r| r.is_cron()).count(),
                    "configuration reloaded"
                );
            }
            Err(message) => {
                self.telemetry.config_reload_failed();
                error!(error = %message, "configuration reload refused; the running configuration stays");
            }
        }
        // The page shows the outcome (and, after a reload that took, the new set of sources).
        let exposition = self.exposition.clone();
        let _ = tokio::task::spawn_blocking(move || exposition.refresh()).await;
        outcome.map(|_| ())
    }

    async fn apply(&mut self, config: Config, serving: &mut Serving) -> Result<ReloadDiff, String> {
        for warning in &config.warnings {
            warn!("{warning}");
        }
        let now = tokio::time::Instant::now();
        self.retired
            .retain(|r| now.saturating_duration_since(r.since) < r.budget.longest_window());
        let retired: Vec<&RetiredBudget> = self.retired.iter().map(|r| &r.about).collect();
        let diff = ReloadDiff::new(&self.config, &config, &retired);

        let bug = |what: String| format!("report this as a bug: a reload lost {what}");
        let mut budgets = Budgets::new();
        for (name, change) in &diff.budgets {
            let wanted = config
                .budgets
                .get(name)
                .ok_or_else(|| bug(format!("budget {name:?}")))?;
            let budget = match change {
                BudgetChange::New => Arc::new(Budget::new(wanted)),
                BudgetChange::Carry { from, reconfigure } => {
                    let earlier = match from {
                        BudgetOrigin::Running(old) => self.budgets.get(old),
                        BudgetOrigin::Retired(i) => self.retired.get(*i).map(|r| &r.budget),
                    }
                    .ok_or_else(|| bug(format!("the budget {name:?} carries on")))?;
                    if *reconfigure {
                        Arc::new(earlier.reconfigured(wanted))
                    } else {
                        earlier.clone()
                    }
                }
            };
            budgets.insert(name.clone(), budget);
        }

        // Build every new poller before stopping anything, so a failure changes nothing.
        let mut pollers = BTreeMap::new();
        let mut fresh = Vec::new();
        for source in &config.sources {
            match (
                diff.sources.get(&source.name),
                self.pollers.get(&source.name),
            ) {
                (Some(SourceChange::Keep), Some(poller)) => {
                    pollers.insert(source.name.clone(), poller.clone());
                }
                _ => {
                    let poller = self.poller(source, &budgets).map_err(|e| e.to_string())?;
                    fresh.push(poller.clone());
                    pollers.insert(source.name.clone(), poller);
                }
            }
        }

        // From here on the new config is in force.
        let stale: Vec<String> = serving
            .running
            .keys()
            .filter(|name| !pollers.contains_key(*name) || fresh.iter().any(|p| &p.name == *name))
            .cloned()
            .collect();
        for name in stale {
            if let Some(stopped) = serving.running.remove(&name) {
                stopped.end(&serving.cron).await;
            }
        }
        self.store
            .set_sources(config.sources.iter().map(|s| (s.pool(), s.name.as_str())));
        self.telemetry
            .sources_in_force(config.sources.iter().map(|s| (s.pool(), s.name.as_str())));
        // A retired budget a new one carries on is no longer retired.
        self.retired = std::mem::take(&mut self.retired)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !diff.unretire.contains(i))
            .map(|(_, r)| r)
            .collect();
        for name in &diff.retire {
            if let (Some(budget), Some(wanted)) =
                (self.budgets.get(name), self.config.budgets.get(name))
            {
                let users = self
                    .config
                    .sources
                    .iter()
                    .filter(|s| &s.budget == name)
                    .cloned()
                    .collect();
                self.retired.push(Retired {
                    about: RetiredBudget {
                        config: wanted.clone(),
                        users,
                    },
                    budget: budget.clone(),
                    since: now,
                });
            }
        }
        // A cost learned by a source that runs on unchanged keeps planning it.
        self.costs
            .learned
            .retain(|name, _| diff.sources.get(name) == Some(&SourceChange::Keep));
        self.config = config;
        self.budgets = budgets;
        self.pollers = pollers;
        self.keep_budgets_in_state();
        self.show_budgets();
        self.replan();
        for poller in &fresh {
            let started = self
                .start(poller, serving)
                .await
                .map_err(|e| e.to_string())?;
            serving.running.insert(poller.name.clone(), started);
        }
        Ok(diff)
    }
}
