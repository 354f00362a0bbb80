//! The poll plan: which interval each source really runs at so that all sources sharing a
//! budget fit inside every one of its windows, and the report `check` prints.

use std::fmt::Write;
use std::time::Duration;

use crate::config::{Config, RateWindow, Trigger};

#[derive(Debug, Clone)]
pub struct PlannedSource {
    pub name: String,
    pub budget: String,
    pub asked: Trigger,
    /// What the scheduler runs: `asked`, stretched where the budget needs it.
    pub trigger: Trigger,
    pub min_requests_per_poll: u32,
}

#[derive(Debug, Clone)]
pub struct PlannedBudget {
    pub name: String,
    pub origin: String,
    pub limits: Vec<RateWindow>,
    pub sources: Vec<String>,
    /// Factor applied to the asked intervals (1.0: none).
    pub stretch: f64,
    /// Requests the interval sources need per window, after stretching, at one page per list.
    pub load: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub sources: Vec<PlannedSource>,
    pub budgets: Vec<PlannedBudget>,
}

impl Plan {
    pub fn source(&self, name: &str) -> Option<&PlannedSource> {
        self.sources.iter().find(|s| s.name == name)
    }
}

/// Stretches intervals so that, at the least cost of a poll, the sources of a budget fit
/// every window. Pagination can still cost more at run time; the budget then paces requests,
/// and a poll that costs more than a short window allows simply spans several windows.
pub fn plan(config: &Config) -> Plan {
    let mut sources: Vec<PlannedSource> = config
        .sources
        .iter()
        .map(|s| PlannedSource {
            name: s.name.clone(),
            budget: s.budget.clone(),
            asked: s.trigger.clone(),
            trigger: s.trigger.clone(),
            min_requests_per_poll: (s.kind.defaults().min_requests_per_poll)(s),
        })
        .collect();
    let mut budgets = Vec::new();
    for budget in config.budgets.values() {
        let members: Vec<usize> = (0..sources.len())
            .filter(|&i| sources[i].budget == budget.name)
            .collect();
        let demand = |w: &RateWindow, sources: &[PlannedSource]| -> f64 {
            members
                .iter()
                .filter_map(|&i| match sources[i].trigger {
                    Trigger::Every(every) => Some(
                        f64::from(sources[i].min_requests_per_poll) * w.per.as_secs_f64()
                            / every.as_secs_f64(),
                    ),
                    Trigger::Cron(_) => None,
                })
                .sum()
        };
        let stretch = budget
            .limits
            .iter()
            .map(|w| demand(w, &sources) / f64::from(w.count))
            .fold(1.0, f64::max);
        if stretch > 1.0 {
            for &i in &members {
                if let Trigger::Every(every) = sources[i].trigger {
                    let secs = (every.as_secs_f64() * stretch).ceil();
                    sources[i].trigger = Trigger::Every(Duration::from_secs(secs as u64));
                }
            }
        }
        budgets.push(PlannedBudget {
            name: budget.name.clone(),
            origin: budget.origin.clone(),
            limits: budget.limits.clone(),
            sources: members.iter().map(|&i| sources[i].name.clone()).collect(),
            stretch,
            load: budget.limits.iter().map(|w| demand(w, &sources)).collect(),
        });
    }
    Plan { sources, budgets }
}

fn describe(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Every(d) => format!("every {}", humantime::format_duration(*d)),
        Trigger::Cron(expr) => format!("on cron {expr:?}"),
    }
}

/// What `check` prints: sources, budgets and the plan. Never a token: only where it comes from.
pub fn report(config: &Config, plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config {}: OK", config.file);
    let _ = writeln!(out, "listen: {} (/metrics)", config.listen);
    let _ = writeln!(out, "\nsources:");
    for s in &config.sources {
        let _ = writeln!(
            out,
            "  {} ({}): {}, token from {}, budget {}",
            s.name,
            s.kind.as_str(),
            s.base_url,
            s.token_origin,
            s.budget
        );
    }
    let _ = writeln!(out, "\nbudgets and poll plan:");
    for b in &plan.budgets {
        let limits: Vec<String> = b.limits.iter().map(|w| w.to_string()).collect();
        let _ = writeln!(
            out,
            "  budget {} [{}] ({})",
            b.name,
            limits.join(", "),
            b.origin
        );
        for name in &b.sources {
            let Some(p) = plan.source(name) else { continue };
            let Some(s) = config.sources.iter().find(|s| &s.name == name) else {
                continue;
            };
            let stretched = if p.trigger == p.asked {
                String::new()
            } else {
                format!(
                    " (asked {}: stretched to fit the budget)",
                    describe(&p.asked)
                )
            };
            let _ = writeln!(
                out,
                "    {}: polls {}{}; at least {} requests a poll: {}",
                name,
                describe(&p.trigger),
                stretched,
                p.min_requests_per_poll,
                s.kind.defaults().requests
            );
        }
        for (w, load) in b.limits.iter().zip(&b.load) {
            let _ = writeln!(
                out,
                "    load: {load:.1} of {} requests per {} at one page per list",
                w.count,
                humantime::format_duration(w.per)
            );
        }
        if b.sources
            .iter()
            .any(|n| matches!(plan.source(n).map(|p| &p.trigger), Some(Trigger::Cron(_))))
        {
            let _ = writeln!(
                out,
                "    cron-scheduled sources are not stretched; the budget paces their requests"
            );
        }
    }
    if !config.warnings.is_empty() {
        let _ = writeln!(out, "\nwarnings:");
        for w in &config.warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
    out
}
