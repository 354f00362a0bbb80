//! What a reload changes, decided from the running config, the new one and the budgets a
//! recent reload left unused; nothing here touches a running part. `reload.rs` carries the
//! diff out.
//!
//! Budgets live on with their send logs, so a reload never opens a burst. A new budget
//! carries on the running budget of its name; else the one its sources used (a token's
//! default budget is named after its first source, so removing or renaming that source
//! renames it); else the one of the token its sources send (the same secret to the same
//! host), among the running budgets, then among those a recent reload left unused.

use std::collections::BTreeMap;

use crate::config::{BudgetConfig, Config, SourceConfig};

/// A budget no source uses any more, with the sources that last used it.
#[derive(Debug, Clone)]
pub struct RetiredBudget {
    pub config: BudgetConfig,
    pub users: Vec<SourceConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceChange {
    /// Unchanged, on unchanged budgets: its poller runs on untouched (the plan may hand it
    /// a new interval).
    Keep,
    /// Changed: its poller stops and a new one starts.
    Restart,
    Add,
}

/// Where a new budget's send log comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetOrigin {
    /// The running budget of this (old) name.
    Running(String),
    /// The retired budget at this index of the list the diff was given.
    Retired(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetChange {
    /// An earlier budget carried on: as it is when its name and windows are the same,
    /// else `reconfigured` with its log.
    Carry {
        from: BudgetOrigin,
        reconfigure: bool,
    },
    /// No earlier budget sent this token's requests: a fresh window.
    New,
}

impl BudgetChange {
    /// The running budget of `name`, untouched.
    fn is_kept(&self, name: &str) -> bool {
        matches!(self, BudgetChange::Carry { from: BudgetOrigin::Running(old), reconfigure: false } if old == name)
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadDiff {
    /// Every source of the new config.
    pub sources: BTreeMap<String, SourceChange>,
    /// Sources of the running config that the new one does not have.
    pub removed: Vec<String>,
    /// Every budget of the new config.
    pub budgets: BTreeMap<String, BudgetChange>,
    /// Running budgets no new budget carries on: kept aside for their longest window.
    pub retire: Vec<String>,
    /// Retired budgets a new one carries on, by index: no longer retired.
    pub unretire: Vec<usize>,
}

impl ReloadDiff {
    pub fn new(old: &Config, new: &Config, retired: &[&RetiredBudget]) -> ReloadDiff {
        let budgets: BTreeMap<String, BudgetChange> = new
            .budgets
            .iter()
            .map(|(name, wanted)| {
                let change = match previous_budget(old, new, retired, name) {
                    Some(from) => {
                        let was = match &from {
                            BudgetOrigin::Running(old_name) => old.budgets.get(old_name),
                            BudgetOrigin::Retired(i) => retired.get(*i).map(|r| &r.config),
                        };
                        let same =
                            was.is_some_and(|was| was.name == *name && was.limits == wanted.limits);
                        BudgetChange::Carry {
                            from,
                            reconfigure: !same,
                        }
                    }
                    None => BudgetChange::New,
                };
                (name.clone(), change)
            })
            .collect();
        let kept = |name: &String| budgets.get(name).is_some_and(|c| c.is_kept(name));
        let sources = new
            .sources
            .iter()
            .map(|source| {
                let unchanged = old.sources.iter().any(|o| o == source)
                    && kept(&source.budget)
                    && source.host_budget.as_ref().is_none_or(kept);
                let existed = old.sources.iter().any(|o| o.name == source.name);
                let change = match (existed, unchanged) {
                    (true, true) => SourceChange::Keep,
                    (true, false) => SourceChange::Restart,
                    (false, _) => SourceChange::Add,
                };
                (source.name.clone(), change)
            })
            .collect();
        let removed = old
            .sources
            .iter()
            .filter(|o| !new.sources.iter().any(|s| s.name == o.name))
            .map(|o| o.name.clone())
            .collect();
        let carried = |origin: &BudgetOrigin| {
            budgets
                .values()
                .any(|c| matches!(c, BudgetChange::Carry { from, .. } if from == origin))
        };
        let retire = old
            .budgets
            .keys()
            .filter(|name| !carried(&BudgetOrigin::Running((*name).clone())))
            .cloned()
            .collect();
        let unretire = (0..retired.len())
            .filter(|i| carried(&BudgetOrigin::Retired(*i)))
            .collect();
        ReloadDiff {
            sources,
            removed,
            budgets,
            retire,
            unretire,
        }
    }

    pub fn count(&self, change: SourceChange) -> usize {
        self.sources.values().filter(|c| **c == change).count()
    }
}

/// The earlier budget the new budget `name` carries on, if any.
fn previous_budget(
    old: &Config,
    new: &Config,
    retired: &[&RetiredBudget],
    name: &str,
) -> Option<BudgetOrigin> {
    let users = || new.sources.iter().filter(move |s| s.budget == name);
    let of_token = |earlier: &SourceConfig| users().any(|s| s.same_token_as(earlier));
    let running = |old_name: &String| {
        old.budgets
            .contains_key(old_name)
            .then(|| BudgetOrigin::Running(old_name.clone()))
    };
    running(&name.to_string())
        .or_else(|| {
            users().find_map(|s| {
                let earlier = old.sources.iter().find(|o| o.name == s.name)?;
                running(&earlier.budget)
            })
        })
        .or_else(|| {
            let earlier = old.sources.iter().find(|o| of_token(o))?;
            running(&earlier.budget)
        })
        .or_else(|| {
            retired
                .iter()
                .enumerate()
                .rev()
                .find(|(_, r)| r.users.iter().any(of_token))
                .map(|(i, _)| BudgetOrigin::Retired(i))
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::SecretMode;

    /// Ultimate Proxy sources as (name, account, token variable, budget or ""), and named
    /// budgets as (name, limits).
    fn config(sources: &[(&str, &str, &str, &str)], budgets: &[(&str, &str)]) -> Config {
        let mut text = String::new();
        for (name, account, token, budget) in sources {
            text.push_str(&format!(
                "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"{name}\"\naccount = \"{account}\"\ntoken_env = \"{token}\"\ntier = \"vip\"\n"
            ));
            if !budget.is_empty() {
                text.push_str(&format!("budget = \"{budget}\"\n"));
            }
        }
        for (name, limits) in budgets {
            text.push_str(&format!("[budgets.{name}]\nlimits = [\"{limits}\"]\n"));
        }
        Config::parse(
            &text,
            "test.toml",
            Path::new("."),
            SecretMode::WarnIfMissing,
            &crate::sources::KINDS,
        )
        .unwrap()
    }

    fn carry(from: &str, reconfigure: bool) -> BudgetChange {
        BudgetChange::Carry {
            from: BudgetOrigin::Running(from.into()),
            reconfigure,
        }
    }

    use SourceChange::{Add, Keep, Restart};

    #[test]
    fn a_reload_is_planned_from_the_two_configs() {
        // Token variables no test environment sets: the tokens compare by where they
        // would come from.
        let (a, b) = ("RELOAD_DIFF_TOKEN_A_UNSET", "RELOAD_DIFF_TOKEN_B_UNSET");
        struct Case {
            what: &'static str,
            old: Config,
            new: Config,
            sources: Vec<(&'static str, SourceChange)>,
            removed: Vec<&'static str>,
            budgets: Vec<(&'static str, BudgetChange)>,
            retire: Vec<&'static str>,
        }
        let cases = [
            Case {
                what: "nothing changed: everything kept",
                old: config(&[("p", "x", a, "b")], &[("b", "10/1m")]),
                new: config(&[("p", "x", a, "b")], &[("b", "10/1m")]),
                sources: vec![("p", Keep)],
                removed: vec![],
                budgets: vec![("b", carry("b", false))],
                retire: vec![],
            },
            Case {
                what: "a source's own setting changed: it restarts on the same budget",
                old: config(&[("p", "x", a, "b")], &[("b", "10/1m")]),
                new: config(&[("p", "y", a, "b")], &[("b", "10/1m")]),
                sources: vec![("p", Restart)],
                removed: vec![],
                budgets: vec![("b", carry("b", false))],
                retire: vec![],
            },
            Case {
                what: "a budget's limits changed: it is reconfigured and its users restart",
                old: config(&[("p", "x", a, "b")], &[("b", "10/1m")]),
                new: config(&[("p", "x", a, "b")], &[("b", "20/1m")]),
                sources: vec![("p", Restart)],
                removed: vec![],
                budgets: vec![("b", carry("b", true))],
                retire: vec![],
            },
            Case {
                what: "a source added on a new token: a fresh budget",
                old: config(&[("p", "x", a, "")], &[]),
                new: config(&[("p", "x", a, ""), ("q", "y", b, "")], &[]),
                sources: vec![("p", Keep), ("q", Add)],
                removed: vec![],
                budgets: vec![
                    ("auto:p", carry("auto:p", false)),
                    ("auto:q", BudgetChange::New),
                ],
                retire: vec![],
            },
            Case {
                what: "the source a token's budget is named after renamed: the budget carries on",
                old: config(&[("proxy", "x", a, "")], &[]),
                new: config(&[("proxy-main", "x", a, "")], &[]),
                sources: vec![("proxy-main", Add)],
                removed: vec!["proxy"],
                budgets: vec![("auto:proxy-main", carry("auto:proxy", true))],
                retire: vec![],
            },
            Case {
                what: "a token removed: its budget is retired",
                old: config(&[("p", "x", a, ""), ("q", "y", b, "")], &[]),
                new: config(&[("p", "x", a, "")], &[]),
                sources: vec![("p", Keep)],
                removed: vec!["q"],
                budgets: vec![("auto:p", carry("auto:p", false))],
                retire: vec!["auto:q"],
            },
            Case {
                what: "a source moved to a named budget: the old one carries on under the new name",
                old: config(&[("p", "x", a, "")], &[]),
                new: config(&[("p", "x", a, "shared")], &[("shared", "60/1m")]),
                sources: vec![("p", Restart)],
                removed: vec![],
                budgets: vec![("shared", carry("auto:p", true))],
                retire: vec![],
            },
        ];
        for case in cases {
            let diff = ReloadDiff::new(&case.old, &case.new, &[]);
            let want = ReloadDiff {
                sources: case
                    .sources
                    .into_iter()
                    .map(|(n, c)| (n.to_string(), c))
                    .collect(),
                removed: case.removed.into_iter().map(String::from).collect(),
                budgets: case
                    .budgets
                    .into_iter()
                    .map(|(n, c)| (n.to_string(), c))
                    .collect(),
                retire: case.retire.into_iter().map(String::from).collect(),
                unretire: vec![],
            };
            assert_eq!(diff, want, "{}", case.what);
        }
    }

    #[test]
    fn a_token_added_back_finds_its_retired_budget() {
        let a = "RELOAD_DIFF_TOKEN_A_UNSET";
        let b = "RELOAD_DIFF_TOKEN_B_UNSET";
        let gone = config(&[("q", "y", b, "")], &[]);
        let retired = [
            RetiredBudget {
                config: gone.budgets["auto:q"].clone(),
                users: gone.sources.clone(),
            },
            RetiredBudget {
                config: gone.budgets["auto:q"].clone(),
                users: config(&[("other", "y", a, "")], &[]).sources,
            },
        ];
        let old = config(&[("p", "x", a, "")], &[]);
        let new = config(&[("p", "x", a, ""), ("q2", "y", b, "")], &[]);
        let diff = ReloadDiff::new(&old, &new, &retired.iter().collect::<Vec<_>>());
        assert_eq!(
            diff.budgets["auto:q2"],
            BudgetChange::Carry {
                from: BudgetOrigin::Retired(0),
                reconfigure: true
            }
        );
        assert_eq!(diff.unretire, vec![0]);
        assert_eq!(diff.sources["q2"], Add);

        // The same name and limits as when it was retired: carried on as it is.
        let back = config(&[("p", "x", a, ""), ("q", "y", b, "")], &[]);
        let diff = ReloadDiff::new(&old, &back, &retired.iter().collect::<Vec<_>>());
        assert_eq!(
            diff.budgets["auto:q"],
            BudgetChange::Carry {
                from: BudgetOrigin::Retired(0),
                reconfigure: false
            }
        );
    }
}
