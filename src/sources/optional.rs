//! Endpoints a pool may not serve. OurPool documents only rewards-stats; its other account
//! paths, and Luxor's v1 workspace, are observed or proposed in the reference.
//!
//! Only an endpoint that has never answered 200 since start is switched off, and only by
//! `SWITCH_OFF_AFTER` polls in a row that got a 404 from it: that is a pool that does not
//! serve it, and the rest of the source keeps working without it. One 404 just after start
//! may be the pool's hiccup; switched off at once, every worker series would leave while the
//! source looked fresh. Until then a 404 fails the poll and the last good series stay. A
//! switched-off endpoint is asked again every hour, so one the vendor adds later comes back
//! without a restart.
//! A 404 from an endpoint that has worked is a hiccup, not an answer: it fails that poll
//! (kind `not_found`) and the last good series stay, instead of a farm vanishing for the life
//! of the process. `mining_exporter_endpoint_enabled` shows which endpoints are off.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::debug;

use crate::client::Upstream;
use crate::error::PollError;

/// How long a switched-off endpoint stays off before it is asked again.
pub const RETRY_SWITCHED_OFF_EVERY: Duration = Duration::from_secs(3600);
/// Polls in a row that must find a never-answered endpoint missing before it is switched off.
pub const SWITCH_OFF_AFTER: u32 = 3;

/// What the source has learned of one optional endpoint.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Learned {
    /// Answered 200 at least once since start.
    answered: bool,
    /// Switched off until then.
    off_until: Option<Instant>,
    /// 404s in a row before it was switched off.
    missing: u32,
}

/// What a 404 means for an endpoint, given what it did before.
#[derive(Debug, PartialEq)]
enum After404 {
    /// It has worked, or has not been missing long enough: fail this poll, keep the endpoint.
    FailPoll,
    /// Never answered: switched off now.
    SwitchedOff,
    /// Asked again after an hour off, and still not served.
    StillOff,
}

impl Learned {
    fn should_ask(&self, now: Instant) -> bool {
        self.off_until.is_none_or(|until| now >= until)
    }

    fn on_404(&mut self, now: Instant) -> After404 {
        if self.answered {
            return After404::FailPoll;
        }
        self.missing = self.missing.saturating_add(1);
        if self.missing < SWITCH_OFF_AFTER {
            return After404::FailPoll;
        }
        let first = self.off_until.is_none();
        self.off_until = Some(now + RETRY_SWITCHED_OFF_EVERY);
        if first {
            After404::SwitchedOff
        } else {
            After404::StillOff
        }
    }

    /// Returns whether the endpoint was switched off until this answer.
    fn on_success(&mut self) -> bool {
        self.answered = true;
        self.missing = 0;
        self.off_until.take().is_some()
    }
}

#[derive(Debug, Default)]
pub struct OptionalEndpoints {
    learned: Mutex<BTreeMap<&'static str, Learned>>,
}

impl OptionalEndpoints {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, endpoint: &'static str, f: impl FnOnce(&mut Learned) -> R) -> R {
        let mut learned = self.learned.lock().unwrap_or_else(|e| e.into_inner());
        f(learned.entry(endpoint).or_default())
    }

    /// Like `Upstream::get_json`, but `Ok(None)` when the endpoint is switched off, or answers
    /// the `SWITCH_OFF_AFTER`th 404 in a row without ever having answered 200 (which switches
    /// it off). Any other 404, and every other failure, fails the poll as usual.
    pub async fn get_json<T: DeserializeOwned + Send + 'static>(
        &self,
        api: &Upstream,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, PollError> {
        self.ask_get(api, endpoint, path, query, false).await
    }

    /// Like `get_json`, for an endpoint the source can do without this poll (it has another
    /// way to the same data): a 404 before the switch-off is `Ok(None)` too, so the source
    /// takes its other way instead of failing the poll.
    pub async fn get_json_or_other_way<T: DeserializeOwned + Send + 'static>(
        &self,
        api: &Upstream,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, PollError> {
        self.ask_get(api, endpoint, path, query, true).await
    }

    async fn ask_get<T: DeserializeOwned + Send + 'static>(
        &self,
        api: &Upstream,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
        other_way: bool,
    ) -> Result<Option<T>, PollError> {
        self.asked(
            api,
            endpoint,
            api.get_json(endpoint, path, query),
            other_way,
        )
        .await
    }

    /// `request` (to `endpoint`) made unless the endpoint is switched off, and its 404
    /// learned from as `get_json`'s are.
    pub async fn ask<T>(
        &self,
        api: &Upstream,
        endpoint: &'static str,
        request: impl std::future::Future<Output = Result<T, PollError>>,
    ) -> Result<Option<T>, PollError> {
        self.asked(api, endpoint, request, false).await
    }

    async fn asked<T>(
        &self,
        api: &Upstream,
        endpoint: &'static str,
        request: impl std::future::Future<Output = Result<T, PollError>>,
        other_way: bool,
    ) -> Result<Option<T>, PollError> {
        if !self.with(endpoint, |l| l.should_ask(Instant::now())) {
            return Ok(None);
        }
        let telemetry = api.telemetry();
        match request.await {
            Ok(value) => {
                let was_off = self.with(endpoint, Learned::on_success);
                telemetry.endpoint_served(endpoint, was_off);
                Ok(Some(value))
            }
            Err(PollError::Status {
                status: 404,
                message,
                endpoint,
            }) => match self.with(endpoint, |l| l.on_404(Instant::now())) {
                After404::FailPoll if other_way && !self.with(endpoint, |l| l.answered) => {
                    debug!(source = %telemetry.source, endpoint, "HTTP 404 from an endpoint not yet known to be missing; taking the other way this poll");
                    Ok(None)
                }
                After404::FailPoll => Err(PollError::Status {
                    status: 404,
                    message,
                    endpoint,
                }),
                After404::SwitchedOff => {
                    telemetry.endpoint_switched_off(endpoint, &message, RETRY_SWITCHED_OFF_EVERY);
                    Ok(None)
                }
                After404::StillOff => {
                    debug!(source = %telemetry.source, endpoint, "still not served (HTTP 404)");
                    Ok(None)
                }
            },
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_endpoint_that_never_answered_is_switched_off_and_it_is_asked_hourly() {
        let start = Instant::now();
        let mut never = Learned::default();
        assert!(never.should_ask(start));
        for _ in 1..SWITCH_OFF_AFTER {
            assert_eq!(never.on_404(start), After404::FailPoll, "not yet");
            assert!(never.should_ask(start));
        }
        assert_eq!(never.on_404(start), After404::SwitchedOff);
        assert!(!never.should_ask(start + Duration::from_secs(3599)));
        let hour = start + RETRY_SWITCHED_OFF_EVERY;
        assert!(never.should_ask(hour));
        assert_eq!(never.on_404(hour), After404::StillOff);
        assert!(!never.should_ask(hour + Duration::from_secs(60)));
        assert!(never.should_ask(hour + RETRY_SWITCHED_OFF_EVERY));
        assert!(never.on_success(), "was off");
        assert!(never.should_ask(hour + Duration::from_secs(1)));
        assert_eq!(never.on_404(hour), After404::FailPoll, "it has worked now");

        let mut worked = Learned::default();
        assert!(!worked.on_success());
        assert_eq!(worked.on_404(start), After404::FailPoll);
        assert!(worked.should_ask(start));
    }
}
