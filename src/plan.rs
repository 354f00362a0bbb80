//! The poll plan: the interval each source runs at, so that all the sources sharing a budget
//! (a token's, or a host's) stay inside `target` of its tightest window, and the report
//! `check` prints.
//!
//! A poll costs what the source learned from its last polls (pages included), or, before
//! its first poll, the least a poll of its kind can cost. Cron sources are counted at their
//! firing rate and are never moved. The rest of a budget is shared max-min fairly: every
//! source may send at the same request rate, a source that asks for less than its share
//! gets what it asks for, and what it leaves is split among the others. A cheap summary is
//! therefore never slowed down by a long worker list on the same key.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use crate::config::{Config, RateWindow, SourceConfig, Trigger};

/// No plan stretches a source past this; a budget that tight is shown as a warning.
pub const LONGEST_PLANNED_INTERVAL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedSource {
    pub name: String,
    pub budget: String,
    pub host_budget: Option<String>,
    pub asked: Trigger,
    /// What the scheduler runs: `asked`, stretched where a budget needs it.
    pub trigger: Trigger,
    /// The planned time between polls (for a cron source, the mean time between firings).
    pub interval: Duration,
    /// Requests a poll costs, as the plan counts it.
    pub cost: u32,
    /// Whether `cost` was learned from polls, or assumed from the kind.
    pub learned: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedBudget {
    pub name: String,
    pub origin: String,
    pub limits: Vec<RateWindow>,
    pub target: f64,
    pub sources: Vec<String>,
    /// Requests the plan sends per window, by window.
    pub load: Vec<f64>,
    /// Requests per window the asked intervals would send, by window.
    pub asked_load: Vec<f64>,
}

impl PlannedBudget {
    /// The planned share of the tightest window.
    pub fn use_ratio(&self) -> f64 {
        ratio(&self.limits, &self.load)
    }

    /// The share of the tightest window the asked intervals would need.
    pub fn asked_ratio(&self) -> f64 {
        ratio(&self.limits, &self.asked_load)
    }
}

fn ratio(limits: &[RateWindow], load: &[f64]) -> f64 {
    limits
        .iter()
        .zip(load)
        .map(|(w, l)| l / f64::from(w.count))
        .fold(0.0, f64::max)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub sources: Vec<PlannedSource>,
    pub budgets: Vec<PlannedBudget>,
}

impl Plan {
    pub fn source(&self, name: &str) -> Option<&PlannedSource> {
        self.sources.iter().find(|s| s.name == name)
    }
}

/// What a source asks for, in requests a second, and whether the plan may slow it down.
struct Demand {
    rate: f64,
    movable: bool,
}

/// The plan for `config` with the costs learned so far (by source name).
pub fn plan(config: &Config, learned: &BTreeMap<String, u32>) -> Plan {
    let costs: Vec<(u32, bool)> = config
        .sources
        .iter()
        .map(|s| match learned.get(&s.name) {
            Some(&cost) => (cost.max(1), true),
            None => (s.settings.min_requests_per_poll().max(1), false),
        })
        .collect();
    // Firings a second of each cron source, counted once: a busy expression takes a while.
    let firings: Vec<Option<f64>> = config
        .sources
        .iter()
        .map(|s| match &s.trigger {
            Trigger::Every(_) => None,
            Trigger::Cron(expr) => Some(cron_firings_per_second(expr)),
        })
        .collect();
    let demands: Vec<Demand> = config
        .sources
        .iter()
        .zip(&costs)
        .zip(&firings)
        .map(|((s, &(cost, _)), firing)| match (&s.trigger, firing) {
            (Trigger::Every(every), _) => Demand {
                rate: f64::from(cost) / every.as_secs_f64().max(1e-3),
                movable: true,
            },
            (Trigger::Cron(_), firing) => Demand {
                rate: f64::from(cost) * firing.unwrap_or(0.0),
                movable: false,
            },
        })
        .collect();
    let members = |budget: &str| -> Vec<usize> {
        (0..config.sources.len())
            .filter(|&i| uses(&config.sources[i], budget))
            .collect()
    };
    let constraints: Vec<(f64, Vec<usize>)> = config
        .budgets
        .values()
        .map(|b| (capacity(&b.limits, b.target), members(&b.name)))
        .collect();
    let rates = share_fairly(&demands, &constraints);

    let sources: Vec<PlannedSource> = config
        .sources
        .iter()
        .zip(&costs)
        .zip(&rates)
        .zip(&firings)
        .map(|(((s, &(cost, learned)), &rate), firing)| {
            let (trigger, interval) = match &s.trigger {
                Trigger::Every(asked) => {
                    // Whole seconds, rounded up; the tolerance keeps float noise in the
                    // shares (10.2 - 3.0) from adding a second.
                    let wanted = Duration::from_secs_f64(
                        (f64::from(cost) / rate.max(1e-9) - 1e-6)
                            .min(LONGEST_PLANNED_INTERVAL.as_secs_f64())
                            .ceil()
                            .max(1.0),
                    );
                    let every = wanted.max(*asked);
                    (Trigger::Every(every), every)
                }
                Trigger::Cron(_) => {
                    let per_second = firing.unwrap_or(0.0);
                    let mean = if per_second > 0.0 {
                        Duration::from_secs_f64(
                            (1.0 / per_second).min(LONGEST_PLANNED_INTERVAL.as_secs_f64()),
                        )
                    } else {
                        LONGEST_PLANNED_INTERVAL
                    };
                    (s.trigger.clone(), mean)
                }
            };
            PlannedSource {
                name: s.name.clone(),
                budget: s.budget.clone(),
                host_budget: s.host_budget.clone(),
                asked: s.trigger.clone(),
                trigger,
                interval,
                cost,
                learned,
            }
        })
        .collect();
    let budgets = config
        .budgets
        .values()
        .zip(&constraints)
        .map(|(b, (_, ids))| {
            let load = |per_second: &dyn Fn(usize) -> f64| -> Vec<f64> {
                b.limits
                    .iter()
                    .map(|w| ids.iter().map(|&i| per_second(i)).sum::<f64>() * w.per.as_secs_f64())
                    .collect()
            };
            PlannedBudget {
                name: b.name.clone(),
                origin: b.origin.clone(),
                limits: b.limits.clone(),
                target: b.target,
                sources: ids
                    .iter()
                    .map(|&i| config.sources[i].name.clone())
                    .collect(),
                load: load(&|i| {
                    f64::from(sources[i].cost) / sources[i].interval.as_secs_f64().max(1e-3)
                }),
                asked_load: load(&|i| demands[i].rate),
            }
        })
        .collect();
    Plan { sources, budgets }
}

fn uses(source: &SourceConfig, budget: &str) -> bool {
    source.budget == budget || source.host_budget.as_deref() == Some(budget)
}

/// Requests a second a budget's plan may use: `target` of its tightest window.
fn capacity(limits: &[RateWindow], target: f64) -> f64 {
    limits
        .iter()
        .map(|w| f64::from(w.count) / w.per.as_secs_f64())
        .fold(f64::INFINITY, f64::min)
        * target
}

/// Max-min fair rates (progressive filling): all movable sources rise together; a source
/// stops at what it asks for, and every source of a budget stops when that budget is full.
/// Cron sources are fixed at their rate first. Should they alone fill a budget, the movable
/// ones still get the share they would have as equals of the cron sources, so none starves.
fn share_fairly(demands: &[Demand], constraints: &[(f64, Vec<usize>)]) -> Vec<f64> {
    let mut rate: Vec<Option<f64>> = demands
        .iter()
        .map(|d| (!d.movable).then_some(d.rate))
        .collect();
    let room: Vec<f64> = constraints
        .iter()
        .map(|(capacity, ids)| {
            let fixed: f64 = ids.iter().filter_map(|&i| rate[i]).sum();
            let movable = ids.iter().filter(|&&i| rate[i].is_none()).count();
            let floor = capacity * movable as f64 / ids.len().max(1) as f64;
            (capacity - fixed).max(floor)
        })
        .collect();
    while rate.iter().any(Option::is_none) {
        let mut level = f64::INFINITY;
        for (i, d) in demands.iter().enumerate() {
            if rate[i].is_none() {
                level = level.min(d.rate);
            }
        }
        let budget_levels: Vec<Option<f64>> = constraints
            .iter()
            .zip(&room)
            .map(|((_, ids), room)| {
                let open = ids.iter().filter(|&&i| rate[i].is_none()).count();
                let given: f64 = ids
                    .iter()
                    .filter(|&&i| demands[i].movable)
                    .filter_map(|&i| rate[i])
                    .sum();
                (open > 0).then(|| ((room - given) / open as f64).max(0.0))
            })
            .collect();
        for l in budget_levels.iter().flatten() {
            level = level.min(*l);
        }
        for (i, d) in demands.iter().enumerate() {
            if rate[i].is_none() && d.rate <= level {
                rate[i] = Some(d.rate);
            }
        }
        for ((_, ids), l) in constraints.iter().zip(&budget_levels) {
            if l.is_some_and(|l| l <= level) {
                for &i in ids {
                    rate[i].get_or_insert(level);
                }
            }
        }
    }
    rate.into_iter().map(|r| r.unwrap_or(0.0)).collect()
}

/// The firings of a six-field cron expression over the coming week (at most its first
/// 20,000), in UTC.
fn firings_in_a_week(expr: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
    const MOST_FIRINGS_COUNTED: usize = 20_000;
    let parsed = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr);
    let Ok(cron) = parsed else {
        return Vec::new();
    };
    let start = chrono::Utc::now();
    cron.iter_after(start)
        .take_while(|at| (*at - start).num_seconds() <= WEEK_SECONDS)
        .take(MOST_FIRINGS_COUNTED)
        .collect()
}

const WEEK_SECONDS: i64 = 7 * 86_400;

/// How often a six-field cron expression fires: the mean rate between its firings over the
/// coming week (or its first 20,000 firings).
pub fn cron_firings_per_second(expr: &str) -> f64 {
    let firings = firings_in_a_week(expr);
    match (firings.first(), firings.last()) {
        (Some(first), Some(last)) if firings.len() > 1 => {
            let span = (*last - *first).num_milliseconds() as f64 / 1000.0;
            (firings.len() - 1) as f64 / span.max(1e-3)
        }
        (Some(_), _) => 1.0 / WEEK_SECONDS as f64,
        _ => 0.0,
    }
}

/// The most times a cron expression fires inside any span of `per` over the coming week:
/// its burst, which its mean rate hides (three firings a minute apart, once a day, average
/// one every eight hours).
pub fn cron_most_firings_within(expr: &str, per: Duration) -> u64 {
    let per = chrono::Duration::milliseconds(i64::try_from(per.as_millis()).unwrap_or(i64::MAX));
    u64::try_from(most_in_any_span(&firings_in_a_week(expr), per)).unwrap_or(u64::MAX)
}

/// The most of `times` (in order) that lie inside any span of `span`: a sliding window.
pub fn most_in_any_span<T, D>(times: &[T], span: D) -> usize
where
    T: Copy + std::ops::Sub<Output = D>,
    D: PartialOrd,
{
    let mut first = 0;
    let mut most = 0;
    for (last, at) in times.iter().enumerate() {
        while times.get(first).is_some_and(|f| *at - *f >= span) {
            first += 1;
        }
        most = most.max(last + 1 - first);
    }
    most
}

fn describe(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Every(d) => format!("every {}", humantime::format_duration(*d)),
        Trigger::Cron(expr) => format!("on cron {expr:?}"),
    }
}

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// What `check` prints: sources, budgets and the plan. Never a token: only where it comes from.
pub fn report(config: &Config, plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "config {}: OK", config.file);
    let _ = writeln!(out, "listen: {} (/metrics)", config.listen);
    let _ = writeln!(out, "\nsources:");
    for s in &config.sources {
        let host = s
            .host_budget
            .as_ref()
            .map(|h| format!(", host budget {h}"))
            .unwrap_or_default();
        let signed = s
            .settings
            .auth()
            .signing
            .map(|signing| format!(", signed with the secret from {}", signing.secret_origin))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} ({}): {}, token from {}{signed}, budget {}{host}",
            s.name,
            s.kind(),
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
            "  budget {} [{}] ({}), plan fills up to {} of it",
            b.name,
            limits.join(", "),
            b.origin,
            percent(b.target)
        );
        for name in &b.sources {
            let Some(p) = plan.source(name) else { continue };
            let Some(s) = config.sources.iter().find(|s| &s.name == name) else {
                continue;
            };
            let cost = if p.learned {
                format!("{} requests a poll (learned from its last polls)", p.cost)
            } else {
                format!(
                    "{} requests a poll (assumed until it polls: {})",
                    p.cost,
                    s.settings.requests()
                )
            };
            let planned = match (&p.asked, &p.trigger) {
                (Trigger::Cron(_), _) => format!(
                    "{}, fires every {} on average, not moved",
                    describe(&p.asked),
                    humantime::format_duration(p.interval)
                ),
                (asked, planned) if asked == planned => {
                    format!("asked {}, planned the same", describe(asked))
                }
                (asked, planned) => format!(
                    "asked {}, planned {} (stretched to fit)",
                    describe(asked),
                    describe(planned)
                ),
            };
            let _ = writeln!(out, "    {name}: {cost}; {planned}");
        }
        for ((w, load), asked) in b.limits.iter().zip(&b.load).zip(&b.asked_load) {
            let _ = writeln!(
                out,
                "    use: {load:.1} of {} requests per {} planned ({}); the asked intervals would need {asked:.1} ({})",
                w.count,
                humantime::format_duration(w.per),
                percent(load / f64::from(w.count)),
                percent(asked / f64::from(w.count)),
            );
        }
        if b.asked_ratio() > b.target && b.use_ratio() > b.target * 1.001 {
            let _ = writeln!(
                out,
                "    warning: cron-scheduled sources alone need more than {} of this budget; the budget paces their requests",
                percent(b.target)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretMode;

    fn config(text: &str) -> Config {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::write(dir.path().join("t"), "not-a-real-key-0\n").unwrap();
        Config::parse(
            text,
            "t.toml",
            dir.path(),
            SecretMode::Require,
            &crate::sources::KINDS,
        )
        .unwrap()
    }

    fn every(plan: &Plan, name: &str) -> u64 {
        match plan.source(name).unwrap().trigger {
            Trigger::Every(d) => d.as_secs(),
            Trigger::Cron(_) => panic!("{name} is a cron source"),
        }
    }

    const TWO_ON_ONE_KEY: &str = r#"
        [[sources]]
        kind = "ultimate_proxy"
        name = "summary"
        token_file = "t"
        interval = "60s"
        [[sources]]
        kind = "ultimate_proxy"
        name = "workers"
        token_file = "t"
        interval = "60s"
    "#;

    #[test]
    fn asked_intervals_that_fit_are_kept() {
        let c = config(TWO_ON_ONE_KEY);
        let p = plan(&c, &BTreeMap::new());
        // 3 + 3 requests a minute of 10 at 85 %: fits.
        assert_eq!(every(&p, "summary"), 60);
        assert_eq!(every(&p, "workers"), 60);
        assert!(!p.source("workers").unwrap().learned);
        assert!((p.budgets[0].use_ratio() - 0.6).abs() < 1e-9);
    }

    #[test]
    fn a_long_worker_list_does_not_slow_the_cheap_summary() {
        let c = config(TWO_ON_ONE_KEY);
        let learned = BTreeMap::from([("workers".to_string(), 33)]);
        let p = plan(&c, &learned);
        // 8.5 a minute to share: the summary keeps its 3, the list gets the other 5.5.
        assert_eq!(every(&p, "summary"), 60);
        assert_eq!(every(&p, "workers"), 360);
        let used = p.budgets[0].use_ratio();
        assert!(used <= 0.85 + 1e-9 && used > 0.84, "{used}");
        assert!(p.source("workers").unwrap().learned);
    }

    #[test]
    fn sources_that_all_want_more_than_their_share_split_it_evenly() {
        let c = config(TWO_ON_ONE_KEY);
        let learned = BTreeMap::from([("summary".to_string(), 20), ("workers".to_string(), 40)]);
        let p = plan(&c, &learned);
        // 4.25 requests a minute each.
        assert_eq!(
            every(&p, "summary"),
            (20.0_f64 / (4.25 / 60.0)).ceil() as u64
        );
        assert_eq!(
            every(&p, "workers"),
            (40.0_f64 / (4.25 / 60.0)).ceil() as u64
        );
    }

    #[test]
    fn cron_sources_count_at_their_firing_rate_and_are_not_moved() {
        let c = config(&format!(
            "{TWO_ON_ONE_KEY}
            [[sources]]
            kind = \"ultimate_proxy\"
            name = \"nightly\"
            token_file = \"t\"
            schedule = \"*/20 * * * * *\"
            "
        ));
        let p = plan(&c, &BTreeMap::new());
        let nightly = p.source("nightly").unwrap();
        assert_eq!(nightly.trigger, nightly.asked);
        assert_eq!(nightly.interval, Duration::from_secs(20));
        // The cron source alone sends 9 a minute, more than the 8.5 planned. The two others
        // still get the share they would have as its equals (2/3 of 8.5 between them), and
        // are stretched alike.
        assert!(every(&p, "summary") > 60);
        assert_eq!(every(&p, "summary"), every(&p, "workers"));
        let load = p.budgets[0].load[0];
        assert!(load > 9.0, "the cron source's 9 requests count: {load}");
    }

    #[test]
    fn a_host_budget_binds_sources_with_different_keys() {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::write(dir.path().join("a"), "not-a-real-key-a\n").unwrap();
        std::fs::write(dir.path().join("b"), "not-a-real-key-b\n").unwrap();
        let c = Config::parse(
            r#"
            [[sources]]
            kind = "ultimate_proxy"
            name = "a"
            token_file = "a"
            tier = "vip"
            interval = "10s"
            [[sources]]
            kind = "ultimate_proxy"
            name = "b"
            token_file = "b"
            tier = "vip"
            interval = "10s"
            [hosts."api.ultimate-proxy.com"]
            limits = ["20/1m"]
            target_utilization = 0.9
            "#,
            "t.toml",
            dir.path(),
            SecretMode::Require,
            &crate::sources::KINDS,
        )
        .unwrap();
        let p = plan(&c, &BTreeMap::new());
        // Each key allows 60 a minute, but the host 18 planned: 9 each, 3 requests a poll.
        assert_eq!(every(&p, "a"), 20);
        assert_eq!(every(&p, "b"), 20);
        let host = p
            .budgets
            .iter()
            .find(|b| b.name.starts_with("host:"))
            .unwrap();
        assert_eq!(host.sources, ["a", "b"]);
        assert!((host.use_ratio() - 0.9).abs() < 1e-9);
    }

    #[test]
    fn cron_rates_come_from_the_expression() {
        assert!((cron_firings_per_second("0 * * * * *") - 1.0 / 60.0).abs() < 1e-6);
        assert!((cron_firings_per_second("0 0 3 * * *") - 1.0 / 86_400.0).abs() < 1e-7);
        assert_eq!(cron_firings_per_second("not cron"), 0.0);
    }
}
