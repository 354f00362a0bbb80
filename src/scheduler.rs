//! One task per source. The wrapper here owns what every source shares: one poll at a time,
//! jitter, the planned interval or cron trigger, timing, what a poll costs, the outcome in
//! the store, the error counter and the log line, so a source's failure stays contained to
//! that source.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;

use crate::client::Upstream;
use crate::config::WorkerSeries;
use crate::error::PollError;
use crate::exposition::Exposition;
use crate::snapshot::{Snapshot, Store};
use crate::sources::Source;
use crate::supervision::catch_panic;
use crate::telemetry::SourceTelemetry;

/// Which per-worker series a source keeps (`worker_series`, `max_workers`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerLimits {
    pub series: WorkerSeries,
    pub max: Option<usize>,
}

/// How one poll ended, for callers that drive polls themselves (tests, benchmarks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success { series: usize },
    Failure { kind: &'static str },
}

/// A source's poll cost changed: the plan is recomputed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostLearned {
    pub source: String,
    pub requests: u32,
    pub was: Option<u32>,
}

/// Polls whose cost the learned cost is the largest of.
const COSTS_REMEMBERED: usize = 4;
/// Poll starts the achieved interval is the mean over (one more than the intervals).
const STARTS_REMEMBERED: usize = 9;

pub struct Poller {
    pub name: String,
    source: Box<dyn Source>,
    upstream: Upstream,
    /// The source's events, shared with its client and optional endpoints.
    telemetry: SourceTelemetry,
    store: Arc<Store>,
    exposition: Arc<Exposition>,
    limits: WorkerLimits,
    in_flight: tokio::sync::Mutex<()>,
    /// The interval the plan gives this source; the task follows changes at once.
    planned: watch::Sender<Duration>,
    costs: Mutex<Costs>,
    starts: Mutex<VecDeque<Instant>>,
}

/// What this source's last polls cost, and what it last told the plan.
#[derive(Debug, Default)]
struct Costs {
    recent: VecDeque<u32>,
    reported: Option<u32>,
}

impl Costs {
    /// Records a poll's cost; returns the cost the plan should use if it changed. A rise is
    /// reported at once (an extra page must be planned for); a fall only past 10 %, so a
    /// cost that wobbles by a request (an hourly retry of a switched-off endpoint) does
    /// not replan twice an hour.
    fn record(&mut self, requests: u32) -> Option<(u32, Option<u32>)> {
        self.recent.push_back(requests);
        while self.recent.len() > COSTS_REMEMBERED {
            self.recent.pop_front();
        }
        let learned = self.recent.iter().copied().max()?;
        let was = self.reported;
        let changed = match was {
            None => true,
            Some(old) => learned > old || f64::from(learned) < f64::from(old) * 0.9,
        };
        changed.then(|| {
            self.reported = Some(learned);
            (learned, was)
        })
    }
}

impl Poller {
    /// From now on this source's requests are written down in the returned log.
    pub fn record_requests(&self) -> crate::client::RequestLog {
        self.upstream.record_requests()
    }

    pub fn new(
        name: String,
        source: Box<dyn Source>,
        upstream: Upstream,
        limits: WorkerLimits,
        store: Arc<Store>,
        exposition: Arc<Exposition>,
    ) -> Self {
        let telemetry = upstream.telemetry().clone();
        Poller {
            name,
            source,
            upstream,
            telemetry,
            limits,
            store,
            exposition,
            in_flight: tokio::sync::Mutex::new(()),
            planned: watch::Sender::new(Duration::from_secs(60)),
            costs: Mutex::new(Costs::default()),
            starts: Mutex::new(VecDeque::new()),
        }
    }

    /// The `pool` label of the source's series.
    pub fn pool(&self) -> &'static str {
        self.telemetry.pool
    }

    /// Starts from a cost learned by a previous run: it is reported again only when polls
    /// show a change.
    pub fn knows_cost(&self, requests: u32) {
        lock(&self.costs).reported = Some(requests);
    }

    /// Sets the interval the plan gives this source, and its gauge.
    pub fn set_planned(&self, every: Duration) {
        self.planned.send_if_modified(|current| {
            let changed = *current != every;
            *current = every;
            changed
        });
    }

    pub fn planned(&self) -> watch::Receiver<Duration> {
        self.planned.subscribe()
    }

    /// Counts this poll's start; the achieved-interval gauge is the mean over the last ones.
    fn note_start(&self, at: Instant) {
        let mut starts = lock(&self.starts);
        starts.push_back(at);
        while starts.len() > STARTS_REMEMBERED {
            starts.pop_front();
        }
        if let (Some(first), Some(last), Some(gaps)) = (
            starts.front(),
            starts.back(),
            starts.len().checked_sub(1).filter(|g| *g > 0),
        ) {
            let mean = (*last - *first).as_secs_f64() / gaps as f64;
            self.telemetry.interval_achieved(mean);
        }
    }

    /// Learns from a poll's cost; what the plan must be told when it changed.
    fn learn_cost(&self, requests: u64) -> Option<CostLearned> {
        let requests = u32::try_from(requests).unwrap_or(u32::MAX);
        let (requests, was) = lock(&self.costs).record(requests)?;
        Some(CostLearned {
            source: self.name.clone(),
            requests,
            was,
        })
    }

    /// Runs one poll and records it: the store, the error counter, the log, a new rendering.
    pub async fn poll_once(&self) -> Outcome {
        self.poll().await.0
    }

    /// `poll_once`, with the cost the plan must now count if it changed.
    async fn poll(&self) -> (Outcome, Option<CostLearned>) {
        let _one_at_a_time = self.in_flight.lock().await;
        let started = Instant::now();
        self.note_start(started);
        let asked_before = self.telemetry.requests_asked();
        self.upstream.poll_begins();
        let result = match catch_panic(self.source.poll(&self.upstream)).await {
            Ok(result) => result,
            Err(message) => Err(PollError::Panic {
                message: self.upstream.scrub(&message),
            }),
        };
        let took = started.elapsed();
        // A failed poll spent its requests too (a list past max_pages spends every page on
        // every poll): the plan prices what polls ask for, however they end.
        let asked = self.telemetry.requests_asked();
        let learned = self.learn_cost(asked.saturating_sub(asked_before));
        let outcome = self.record(result, took);
        // The page with this poll in it, rendered off the threads that answer scrapes, and
        // shared with the polls that finish meanwhile (see `Exposition::refreshed`).
        self.exposition.refreshed().await;
        (outcome, learned)
    }

    /// Puts the outcome in the store, the error counter and the log (once per distinct failure).
    fn record(&self, result: Result<Snapshot, PollError>, took: Duration) -> Outcome {
        match result {
            Ok(mut snapshot) => {
                self.count_left_out(&snapshot);
                self.limit_workers(&mut snapshot);
                let series = snapshot.series_count();
                self.store
                    .record_success(&self.name, snapshot, took, SystemTime::now());
                self.telemetry.poll_succeeded(series, took);
                Outcome::Success { series }
            }
            Err(error) => {
                let last = crate::snapshot::LastError {
                    kind: error.kind().label(),
                    message: error.to_string(),
                };
                self.store.record_failure(&self.name, took, last);
                self.telemetry
                    .poll_failed(&error, self.store.has_succeeded(&self.name));
                Outcome::Failure {
                    kind: error.kind().label(),
                }
            }
        }
    }

    /// Counts what the answer held that the page does not show as sent: items that could
    /// not be read, label values cut to the cap.
    fn count_left_out(&self, snapshot: &Snapshot) {
        let telemetry = &self.telemetry;
        for (reason, skipped) in snapshot.skipped() {
            telemetry.items_skipped(reason, skipped);
        }
        let truncated = snapshot.truncated_labels();
        if truncated > 0 {
            telemetry.labels_truncated(truncated, crate::snapshot::MAX_LABEL_BYTES);
        }
    }

    /// Cuts the snapshot to the per-worker series the config asks for; the workers left out
    /// are counted.
    fn limit_workers(&self, snapshot: &mut Snapshot) {
        let omitted = snapshot.limit_workers(self.limits.series, self.limits.max);
        if let Some(max) = self.limits.max {
            self.telemetry.workers_omitted(max, omitted);
        }
    }

    /// Polls on every tick until shutdown, one poll at a time, telling `costs` (where the
    /// plan is kept) when what a poll costs changed.
    pub async fn run(
        self: Arc<Self>,
        mut ticks: Ticks,
        shutdown: CancellationToken,
        costs: mpsc::UnboundedSender<CostLearned>,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.next() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                (_, learned) = self.poll() => {
                    if let Some(learned) = learned {
                        // The receiver is gone only while the exporter shuts down.
                        let _ = costs.send(learned);
                    }
                }
            }
        }
    }
}

/// The first poll of an interval source waits a random delay up to this (and up to half
/// its interval), so sources started together do not poll in lockstep.
const MOST_FIRST_POLL_JITTER: Duration = Duration::from_secs(5);

/// What wakes a poller: the planned interval, or the firings of a cron job.
pub enum Ticks {
    Planned {
        planned: watch::Receiver<Duration>,
        next: Instant,
        last: Option<Instant>,
    },
    Cron {
        firings: Arc<Notify>,
        /// The poll at start stands for the firings until then (half the mean gap after
        /// it): the plan counts a cron source at its firing rate, so a start next to a
        /// firing adds no poll to it, and one far from the next firing does not delay it.
        skip_until: Option<Instant>,
        /// The mean time between firings.
        mean: Duration,
    },
}

impl Ticks {
    /// Ticks at the planned interval from the start of one poll to the start of the next,
    /// following a new plan at once. The first tick comes after a short random delay. A poll
    /// that overruns its interval is followed by the next one at once, never by a burst.
    pub fn planned(planned: watch::Receiver<Duration>) -> Self {
        let every = *planned.borrow();
        let jitter = (every / 2)
            .min(MOST_FIRST_POLL_JITTER)
            .mul_f64(fastrand::f64());
        Ticks::Planned {
            planned,
            next: Instant::now() + jitter,
            last: None,
        }
    }

    /// A first tick at once (so /-/ready does not wait for the first cron time), then one per
    /// firing of `expr` on `scheduler`, except the firings within half of `mean` (the mean
    /// time between firings) after that first tick, which it stands for: a nightly job
    /// started in the morning still polls that night. Firings that arrive during a
    /// poll collapse into one. The job is returned so that it can be removed with the source.
    pub async fn cron(
        scheduler: &JobScheduler,
        expr: &str,
        mean: Duration,
    ) -> Result<(Self, Job), JobSchedulerError> {
        let firings = Arc::new(Notify::new());
        firings.notify_one();
        let notify = firings.clone();
        let job = Job::new_async(expr, move |_, _| {
            let notify = notify.clone();
            Box::pin(async move { notify.notify_one() })
        })?;
        scheduler.add(job.clone()).await?;
        let ticks = Ticks::Cron {
            firings,
            skip_until: None,
            mean,
        };
        Ok((ticks, job))
    }

    async fn next(&mut self) {
        match self {
            Ticks::Planned {
                planned,
                next,
                last,
            } => {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(*next) => break,
                        changed = planned.changed() => {
                            if changed.is_err() {
                                tokio::time::sleep_until(*next).await;
                                break;
                            }
                            if let Some(last) = last {
                                *next = *last + *planned.borrow_and_update();
                            }
                        }
                    }
                }
                let now = Instant::now();
                *last = Some(now);
                *next = now + *planned.borrow();
            }
            Ticks::Cron {
                firings,
                skip_until,
                mean,
            } => loop {
                firings.notified().await;
                let now = Instant::now();
                match skip_until {
                    Some(until) if now < *until => continue,
                    Some(_) => break,
                    None => {
                        // The first tick, at start.
                        *skip_until = Some(now + *mean / 2);
                        break;
                    }
                }
            },
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cost_rises_at_once_and_falls_only_past_a_tenth() {
        let mut costs = Costs::default();
        assert_eq!(costs.record(3), Some((3, None)));
        assert_eq!(costs.record(3), None);
        assert_eq!(costs.record(33), Some((33, Some(3))));
        // A page less is within a tenth: no new plan. The 33 is still remembered anyway.
        assert_eq!(costs.record(32), None);
        for _ in 0..COSTS_REMEMBERED - 1 {
            assert_eq!(costs.record(32), None);
        }
        // Half the list gone, for as many polls as are remembered: the plan follows.
        for _ in 0..COSTS_REMEMBERED - 1 {
            assert_eq!(costs.record(16), None);
        }
        assert_eq!(costs.record(16), Some((16, Some(33))));
    }

    /// Cron ticks of a mean gap of 60 s, past their start poll.
    async fn started_cron(firings: &Arc<Notify>) -> Ticks {
        let mut ticks = Ticks::Cron {
            firings: firings.clone(),
            skip_until: None,
            mean: Duration::from_secs(60),
        };
        firings.notify_one();
        ticks.next().await;
        ticks
    }

    #[tokio::test(start_paused = true)]
    async fn the_start_poll_of_a_cron_source_stands_for_the_firings_within_half_its_mean_gap() {
        let firings = Arc::new(Notify::new());
        let mut ticks = started_cron(&firings).await;
        // A firing 10 s after the start poll is the one the start poll stood for.
        tokio::time::advance(Duration::from_secs(10)).await;
        firings.notify_one();
        assert!(
            tokio::time::timeout(Duration::from_secs(1), ticks.next())
                .await
                .is_err(),
            "a firing 10 s after the start poll polled again"
        );
        // The next one polls.
        tokio::time::advance(Duration::from_secs(60)).await;
        firings.notify_one();
        assert!(
            tokio::time::timeout(Duration::from_secs(1), ticks.next())
                .await
                .is_ok()
        );

        // A start far from the next firing (40 s of a 60 s gap) does not delay it.
        let mut ticks = started_cron(&firings).await;
        tokio::time::advance(Duration::from_secs(40)).await;
        firings.notify_one();
        assert!(
            tokio::time::timeout(Duration::from_secs(1), ticks.next())
                .await
                .is_ok(),
            "the first firing 40 s after the start poll was skipped"
        );
    }
}
