//! What the requests of one source say, as findings: each names what is wrong and the fix.

use std::time::Duration;

use serde::Serialize;

use crate::client::{Ending, RequestRecord};
use crate::config::RateWindow;

/// At most this many statuses are listed per endpoint (a poll of a thousand pages has a
/// thousand 200s).
pub const MAX_STATUSES_SHOWN: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The source cannot poll until it is fixed.
    Error,
    /// It polls, but something will cost it (a ban, a refused signature) later.
    Warning,
    Info,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    pub text: String,
}

impl Finding {
    pub fn error(text: String) -> Self {
        Finding {
            level: Level::Error,
            text,
        }
    }

    pub fn warning(text: String) -> Self {
        Finding {
            level: Level::Warning,
            text,
        }
    }

    pub fn info(text: String) -> Self {
        Finding {
            level: Level::Info,
            text,
        }
    }
}

/// `accepted`, `refused` or `missing_scope`, by the status and the pool's words.
pub fn auth_of(status: u16, message: Option<&str>) -> &'static str {
    match status {
        401 => "refused",
        403 if message.is_some_and(names_a_permission) => "missing_scope",
        403 => "refused",
        _ => "accepted",
    }
}

/// Whether a 403's text is about what the key may do rather than whether it is valid.
fn names_a_permission(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["scope", "permission", "not permitted", "forbidden"]
        .iter()
        .any(|w| message.contains(w))
        && !message.contains("permission check failed")
}

/// The scope an Ultimate Proxy endpoint needs (its docs list them per area).
fn ultimate_proxy_scope(endpoint: &str) -> &'static str {
    if endpoint.starts_with("/v1/workers") {
        "workers:read"
    } else {
        "dashboard:read"
    }
}

/// The requests of one endpoint, read for what went wrong.
pub fn of_endpoint(pool: &str, records: &[&RequestRecord], base_url: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(last) = records.last() else {
        return out;
    };
    let endpoint = last.endpoint;
    let detail = last.message.as_deref().unwrap_or("");
    match (last.ending.clone(), last.status) {
        // The clock finding says it: the status of a refused signature is not about the key.
        (Ending::ClockSkew, _) => {}
        (Ending::Dns, _) => out.push(Finding::error(format!(
            "{endpoint}: not reached: the name in base_url {base_url} does not resolve (DNS): check the host name and this machine's resolver"
        ))),
        (Ending::Tls, _) => out.push(Finding::error(format!(
            "{endpoint}: not reached: the TLS handshake with {base_url} failed ({detail}): check the scheme and port, or give the CA that signed it in [sources.tls] ca_file"
        ))),
        (Ending::Timeout, _) => out.push(Finding::error(format!(
            "{endpoint}: not reached: no complete answer within the source's timeout: check that {base_url} is reachable from here (firewall, proxy), or raise timeout"
        ))),
        (Ending::Connect, _) => out.push(Finding::error(format!(
            "{endpoint}: not reached: the connection to {base_url} was refused: check the host and port"
        ))),
        (Ending::Transport, None) => out.push(Finding::error(format!(
            "{endpoint}: not reached: {detail}"
        ))),
        (_, Some(401)) => out.push(Finding::error(format!(
            "{endpoint}: the pool refused the key (HTTP 401: {detail}): the token is wrong or revoked; put the right one where token_file or token_env says"
        ))),
        (_, Some(403)) => out.push(Finding::error(forbidden(pool, endpoint, detail))),
        (_, Some(429)) => out.push(Finding::warning(format!(
            "{endpoint}: the pool answered 429 (rate limited): another client is spending this account's window, or the budget is looser than the pool; the doctor did not retry"
        ))),
        (_, Some(status)) if status >= 400 => out.push(Finding::error(format!(
            "{endpoint}: HTTP {status}: {detail}"
        ))),
        (_, Some(_)) if !detail.is_empty() => out.push(Finding::error(format!(
            "{endpoint}: answered, but the answer is unusable: {detail}"
        ))),
        _ => {}
    }
    out
}

/// A 403 explained the way the pool means it.
fn forbidden(pool: &str, endpoint: &str, detail: &str) -> String {
    match pool {
        "ultimate_proxy" => {
            let scope = ultimate_proxy_scope(endpoint);
            format!(
                "{endpoint}: the key lacks the {scope} scope (HTTP 403: {detail}); a dashboard-only key has dashboard:read alone: give the key dashboard:read and workers:read under Settings → API Keys"
            )
        }
        "luxor" => format!(
            "{endpoint}: the key has not enough permissions (HTTP 403: {detail}): make a key in the Workspace that holds these subaccounts, with read access to them"
        ),
        "ourpool" => format!(
            "{endpoint}: the token is invalid or not permitted for this account (HTTP 403: {detail}): use a watcher token of the account in the config"
        ),
        _ => format!(
            "{endpoint}: the API refuses this key here (HTTP 403: {detail}): give the key the permission or scope the message names"
        ),
    }
}

/// The pool's own `X-RateLimit-Limit` against the budget: a budget window that allows more
/// than the pool does is a ban waiting to happen. Read as the pool's limit per the budget's
/// window: the header does not say its window, and a budget mirrors the pool's.
pub fn of_rate(records: &[RequestRecord], budget: &str, windows: &[RateWindow]) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(limit) = records.iter().rev().find_map(|r| r.rate.limit) else {
        return out;
    };
    let looser: Vec<&RateWindow> = windows.iter().filter(|w| w.count > limit).collect();
    if looser.is_empty() {
        out.push(Finding::info(format!(
            "the pool's X-RateLimit-Limit is {limit}; budget {budget} ({}) stays within it",
            windows
                .iter()
                .map(super::show_window)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    } else {
        for w in looser {
            out.push(Finding::warning(format!(
                "budget {budget} allows {} but the pool's X-RateLimit-Limit is {limit}: the budget is looser than the pool and polls will be refused; set [budgets.{budget}] limits = [\"{limit}/{}\"]",
                super::show_window(w),
                humantime::format_duration(w.per)
            )));
        }
    }
    out
}

/// A signed API's clock against ours.
pub fn of_clock(skew: i64, max: Duration) -> Vec<Finding> {
    let max_s = max.as_secs();
    let off = skew.unsigned_abs();
    let way = if skew > 0 { "ahead of" } else { "behind" };
    let text = if skew == 0 {
        format!(
            "this machine's clock agrees with the API's (its Date header) to the second; a signed request may be {max_s} s off"
        )
    } else {
        format!(
            "this machine's clock is {off} s {way} the API's (its Date header); a signed request may be {max_s} s off"
        )
    };
    if off > max_s {
        vec![Finding::error(format!(
            "{text}: every signature is refused until the clock is fixed (NTP)"
        ))]
    } else if off * 2 > max_s {
        vec![Finding::warning(format!(
            "{text}: over half of it; fix the clock (NTP) before it drifts further"
        ))]
    } else {
        vec![Finding::info(text)]
    }
}

/// The poll as a whole failed: what its error said, when no endpoint finding did.
pub fn poll_failed(error: Option<&str>, no_request: bool) -> Finding {
    let error = error.unwrap_or("unknown error");
    if no_request {
        Finding::error(format!("the poll failed before any request: {error}"))
    } else {
        Finding::error(format!("the poll failed: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::RateSeen;

    fn answered(status: u16, message: Option<&str>, limit: Option<u32>) -> RequestRecord {
        RequestRecord {
            endpoint: "/v1/workers",
            method: "GET".into(),
            url: "http://127.0.0.1/v1/workers".into(),
            ending: Ending::Answered,
            status: Some(status),
            message: message.map(str::to_string),
            rate: RateSeen {
                limit,
                ..RateSeen::default()
            },
            clock_skew_seconds: None,
            bytes: 0,
            took: Duration::ZERO,
        }
    }

    #[test]
    fn a_403_is_a_scope_only_when_the_pool_says_so() {
        assert_eq!(
            auth_of(403, Some("API key lacks a required scope")),
            "missing_scope"
        );
        assert_eq!(auth_of(403, Some("permission check failed")), "refused");
        assert_eq!(auth_of(401, Some("Invalid or missing API key")), "refused");
        assert_eq!(auth_of(200, None), "accepted");
    }

    #[test]
    fn an_ultimate_proxy_403_names_the_scope_of_its_endpoint() {
        let r = answered(403, Some("API key lacks a required scope"), None);
        let found = of_endpoint("ultimate_proxy", &[&r], "http://x");
        assert_eq!(found.len(), 1);
        assert!(found[0].text.contains("workers:read scope"), "{found:?}");
        assert_eq!(found[0].level, Level::Error);
    }

    #[test]
    fn a_budget_looser_than_the_pool_s_limit_is_a_warning() {
        let windows = [RateWindow::new(60, Duration::from_secs(60))];
        let tight = of_rate(&[answered(200, None, Some(10))], "up", &windows);
        assert_eq!(tight.len(), 1);
        assert_eq!(tight[0].level, Level::Warning);
        assert!(tight[0].text.contains("\"10/1m\""), "{tight:?}");
        let fine = of_rate(&[answered(200, None, Some(60))], "up", &windows);
        assert_eq!(fine[0].level, Level::Info);
        assert!(of_rate(&[answered(200, None, None)], "up", &windows).is_empty());
    }

    #[test]
    fn clock_skew_is_graded_against_what_the_api_accepts() {
        let max = Duration::from_secs(300);
        assert_eq!(of_clock(400, max)[0].level, Level::Error);
        assert_eq!(of_clock(-200, max)[0].level, Level::Warning);
        assert_eq!(of_clock(3, max)[0].level, Level::Info);
        assert!(of_clock(-200, max)[0].text.contains("behind"));
    }
}
