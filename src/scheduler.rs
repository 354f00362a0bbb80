//! One task per source. The wrapper here owns what every source shares: one poll at a time,
//! jitter, the interval or cron trigger, timing, the outcome in the store, the error counter
//! and the log line, so a source's failure stays contained to that source.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;
use tokio::time::MissedTickBehavior;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::client::Upstream;
use crate::config::WorkerSeries;
use crate::error::{POLL_ERROR_KINDS, PollError};
use crate::exposition::Exposition;
use crate::snapshot::{Snapshot, Store};
use crate::sources::Source;
use crate::supervision::catch_panic;

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

pub struct Poller {
    pub pool: &'static str,
    pub name: String,
    source: Box<dyn Source>,
    upstream: Upstream,
    store: Arc<Store>,
    exposition: Arc<Exposition>,
    limits: WorkerLimits,
    in_flight: tokio::sync::Mutex<()>,
    /// The last failure logged at warn level, so a repeated failure is logged once.
    last_failure: Mutex<Option<String>>,
}

impl Poller {
    pub fn new(
        name: String,
        source: Box<dyn Source>,
        upstream: Upstream,
        limits: WorkerLimits,
        store: Arc<Store>,
        exposition: Arc<Exposition>,
    ) -> Self {
        let pool = upstream.pool;
        // Every kind starts at 0, so rate() and increase() work from the first failure on.
        for kind in POLL_ERROR_KINDS {
            upstream
                .telemetry
                .poll_errors
                .with_label_values(&[pool, &name, kind]);
        }
        if limits.max.is_some() {
            upstream
                .telemetry
                .workers_omitted
                .with_label_values(&[pool, &name])
                .set(0);
        }
        Poller {
            pool,
            name,
            source,
            upstream,
            limits,
            store,
            exposition,
            in_flight: tokio::sync::Mutex::new(()),
            last_failure: Mutex::new(None),
        }
    }

    /// Runs one poll and records it: the store, the error counter, the log, a new rendering.
    pub async fn poll_once(&self) -> Outcome {
        let _one_at_a_time = self.in_flight.lock().await;
        let started = Instant::now();
        let result = match catch_panic(self.source.poll(&self.upstream)).await {
            Ok(result) => result,
            Err(message) => Err(PollError::Panic {
                message: self.upstream.token.scrub(&message),
            }),
        };
        let took = started.elapsed();
        let outcome = self.record(result, took);
        // Rendering 10,000 workers takes tens of milliseconds (see benches/): keep it off the
        // threads that answer scrapes.
        let exposition = self.exposition.clone();
        if tokio::task::spawn_blocking(move || exposition.refresh())
            .await
            .is_err()
        {
            warn!(source = %self.name, "rendering /metrics panicked; serving the previous page");
        }
        outcome
    }

    /// Puts the outcome in the store, the error counter and the log (once per distinct failure).
    fn record(&self, result: Result<Snapshot, PollError>, took: Duration) -> Outcome {
        let mut last_failure = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(mut snapshot) => {
                self.limit_workers(&mut snapshot);
                let series = snapshot.series_count();
                self.store
                    .record_success(&self.name, snapshot, took, SystemTime::now());
                if last_failure.take().is_some() {
                    info!(source = %self.name, pool = self.pool, series, "source recovered");
                } else {
                    debug!(source = %self.name, pool = self.pool, series, ?took, "poll succeeded");
                }
                Outcome::Success { series }
            }
            Err(error) => {
                let kind = error.kind();
                self.upstream
                    .telemetry
                    .poll_errors
                    .with_label_values(&[self.pool, &self.name, kind])
                    .inc();
                self.store.record_failure(&self.name, took);
                let message = error.to_string();
                if last_failure.as_deref() == Some(message.as_str()) {
                    debug!(source = %self.name, pool = self.pool, kind, error = %message, "poll failed again");
                } else {
                    // Say what is being served: old data, or none at all.
                    if self.store.has_succeeded(&self.name) {
                        warn!(source = %self.name, pool = self.pool, kind, error = %message, "poll failed; keeping the last good data");
                    } else {
                        warn!(source = %self.name, pool = self.pool, kind, error = %message, "poll failed; no successful poll yet, so no pool data is served for this source");
                    }
                    *last_failure = Some(message);
                }
                Outcome::Failure { kind }
            }
        }
    }

    /// Cuts the snapshot to the per-worker series the config asks for; the number of workers
    /// left out is a metric and, the first time, one warning.
    fn limit_workers(&self, snapshot: &mut Snapshot) {
        let omitted = snapshot.limit_workers(self.limits.series, self.limits.max);
        if let Some(max) = self.limits.max {
            self.upstream
                .telemetry
                .workers_omitted
                .with_label_values(&[self.pool, &self.name])
                .set(i64::try_from(omitted).unwrap_or(i64::MAX));
            if omitted > 0 && self.upstream.warned.first("max_workers") {
                warn!(source = %self.name, pool = self.pool, max_workers = max, omitted, "more workers than max_workers: the rest have no series of their own and count only in the account totals (logged once)");
            }
        }
    }

    /// Polls on every tick until shutdown, one poll at a time.
    pub async fn run(self: Arc<Self>, mut ticks: Ticks, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticks.next() => {}
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.poll_once() => {}
            }
        }
    }
}

/// What wakes a poller: a fixed interval, or the firings of a cron job.
pub enum Ticks {
    Every(tokio::time::Interval),
    Cron(Arc<Notify>),
}

impl Ticks {
    /// The first tick comes after a short random delay so that sources sharing a budget do not
    /// start in lockstep; a poll that overruns delays the next tick instead of bunching them.
    pub fn every(every: Duration) -> Self {
        let jitter = every
            .min(Duration::from_secs(10))
            .mul_f64(fastrand::f64() * 0.1);
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + jitter, every);
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ticks::Every(interval)
    }

    /// A first tick at once (so /-/ready does not wait for the first cron time), then one per
    /// firing of `expr` on `scheduler`. Firings that arrive during a poll collapse into one.
    pub async fn cron(scheduler: &JobScheduler, expr: &str) -> Result<Self, JobSchedulerError> {
        let ticks = Arc::new(Notify::new());
        ticks.notify_one();
        let notify = ticks.clone();
        let job = Job::new_async(expr, move |_, _| {
            let notify = notify.clone();
            Box::pin(async move { notify.notify_one() })
        })?;
        scheduler.add(job).await?;
        Ok(Ticks::Cron(ticks))
    }

    async fn next(&mut self) {
        match self {
            Ticks::Every(interval) => {
                interval.tick().await;
            }
            Ticks::Cron(notify) => notify.notified().await,
        }
    }
}
