//! The doctor's report as a person reads it: per source, its endpoints one line each, then
//! the figures and the findings, errors first.

use std::fmt::Write;

use super::{Level, Report, SourceReport, show_seconds};

pub fn text(report: &Report) -> String {
    let mut out = String::new();
    if !report.budgets_from_state_dir {
        let _ = writeln!(
            out,
            "budgets: no --state-dir, so each is taken as a running exporter would have used it at its planned pace; give the running exporter's to spend from its windows"
        );
    }
    for source in &report.sources {
        write_source(&mut out, source);
    }
    let failing: Vec<&str> = report
        .sources
        .iter()
        .filter(|s| !s.can_poll)
        .map(|s| s.name.as_str())
        .collect();
    if failing.is_empty() {
        let _ = writeln!(out, "every source can poll");
    } else {
        let _ = writeln!(out, "cannot poll: {}", failing.join(", "));
    }
    out
}

fn write_source(out: &mut String, s: &SourceReport) {
    let verdict = if s.can_poll {
        "can poll"
    } else {
        "CANNOT POLL"
    };
    let _ = writeln!(out, "source {} ({}): {verdict}", s.name, s.pool);
    let _ = writeln!(out, "  api {}, token from {}", s.base_url, s.token_origin);
    for e in &s.endpoints {
        let statuses: Vec<String> = e.statuses.iter().map(u16::to_string).collect();
        let mut line = format!(
            "  {} {}: {}, HTTP {}, auth {}",
            e.endpoint,
            if e.requests == 1 {
                "1 request".to_string()
            } else {
                format!("{} requests", e.requests)
            },
            if e.reached { "reached" } else { "not reached" },
            if statuses.is_empty() {
                "-".to_string()
            } else {
                statuses.join(" ")
            },
            e.auth
        );
        if let Some(limit) = e.rate.limit {
            let _ = write!(line, ", pool limit {limit}");
        }
        if let Some(remaining) = e.rate.remaining {
            let _ = write!(line, ", {remaining} left");
        }
        if let Some(reset) = e.rate.reset_in_seconds {
            let _ = write!(line, ", resets in {}", show_seconds(reset));
        }
        let _ = writeln!(out, "{line}");
    }
    if let (Some(workers), Some(series)) = (s.workers, s.series) {
        let _ = writeln!(out, "  {workers} workers, {series} series");
    }
    let _ = writeln!(
        out,
        "  {} a poll, every {} on the plan: {:.0} an hour; budget {} ({}), {} left now",
        if s.requests_per_poll == 1 {
            "1 request".to_string()
        } else {
            format!("{} requests", s.requests_per_poll)
        },
        show_seconds(s.interval_seconds),
        s.requests_per_hour,
        s.budget.name,
        s.budget.limits.join(", "),
        s.budget.remaining_after
    );
    if let Some(skew) = s.clock_skew_seconds {
        let _ = writeln!(out, "  clock skew against the API: {skew} s");
    }
    for level in [Level::Error, Level::Warning, Level::Info] {
        for f in s.findings.iter().filter(|f| f.level == level) {
            let tag = match level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Info => "note",
            };
            let _ = writeln!(out, "  {tag}: {}", f.text);
        }
    }
}
