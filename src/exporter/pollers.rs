//! A source's poller, wired to its token, its budgets and the page; and its task, started on
//! the trigger the plan gives it.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::{Exporter, Serving};
use crate::budget::Budgets;
use crate::client::{Connection, Upstream};
use crate::config::{SourceConfig, Trigger};
use crate::error::{ConfigError, StartError};
use crate::scheduler::{Poller, Ticks, WorkerLimits};

/// A poller's task and what stops it.
pub(super) struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// A cron source's job, removed from the scheduler with the source.
    job: Option<Job>,
}

impl Running {
    /// Stops the task and removes its cron job, so a removed source fires no more.
    pub(super) async fn end(self, cron: &Option<JobScheduler>) {
        self.stop.cancel();
        let _ = self.task.await;
        if let (Some(job), Some(scheduler)) = (self.job, cron) {
            if let Err(e) = scheduler.remove(&job.guid()).await {
                warn!(error = %e, "cannot remove a stopped source's cron job");
            }
        }
    }

    pub(super) fn is_cron(&self) -> bool {
        self.job.is_some()
    }
}

impl Exporter {
    /// The poller of `source`, sending through the budgets of `budgets` it names.
    pub(super) fn poller(
        &self,
        source: &SourceConfig,
        budgets: &Budgets,
    ) -> Result<Arc<Poller>, StartError> {
        let problem = |problem: String, fix: &str| {
            ConfigError::new(
                &self.config.file,
                format!("source {:?}", source.name),
                problem,
                fix,
            )
        };
        let token = source.token.clone().ok_or_else(|| {
            problem(
                format!("the token from {} could not be read", source.token_origin),
                "make the token readable before starting",
            )
        })?;
        let budget_named = |name: &String| {
            budgets.get(name).cloned().ok_or_else(|| {
                problem(
                    format!("no budget {name:?}"),
                    "report this as a bug: the config names every budget it uses",
                )
            })
        };
        let budget = budget_named(&source.budget)?;
        let host_budget = source.host_budget.as_ref().map(budget_named).transpose()?;
        let http = match source.settings.tls() {
            Some(tls) => crate::client::http_client_with(&tls).map_err(|e| {
                problem(
                    format!("the source's TLS settings do not make a client: {e}"),
                    "check the files [sources.tls] names",
                )
            })?,
            None => self.http.clone(),
        };
        let upstream = Upstream::new(
            http,
            Connection {
                base_url: source.base_url.clone(),
                auth: source.settings.auth(),
                token,
                budget,
                host_budget,
                settings: source.http.clone(),
                clock: self.options.clock,
            },
            self.telemetry
                .source(source.pool(), &source.name, source.max_workers.is_some()),
        );
        Ok(Arc::new(Poller::new(
            source.name.clone(),
            (self.options.build_source)(source),
            upstream,
            WorkerLimits {
                series: source.worker_series,
                max: source.max_workers,
            },
            self.store.clone(),
            self.exposition.clone(),
        )))
    }

    /// Starts a poller's task on its planned trigger.
    pub(super) async fn start(
        &self,
        poller: &Arc<Poller>,
        serving: &mut Serving,
    ) -> Result<Running, StartError> {
        let scheduler_error = |e: JobSchedulerError| StartError::Scheduler(e.to_string());
        let planned = self
            .plan
            .source(&poller.name)
            .ok_or_else(|| StartError::Scheduler(format!("{} is not planned", poller.name)))?;
        let (ticks, job) = match &planned.trigger {
            Trigger::Every(_) => (Ticks::planned(poller.planned()), None),
            Trigger::Cron(expr) => {
                let scheduler = match &mut serving.cron {
                    Some(scheduler) => scheduler,
                    none => {
                        let scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
                        scheduler.start().await.map_err(scheduler_error)?;
                        none.insert(scheduler)
                    }
                };
                let (ticks, job) = Ticks::cron(scheduler, expr, planned.interval)
                    .await
                    .map_err(scheduler_error)?;
                (ticks, Some(job))
            }
        };
        let stop = serving.shutdown.child_token();
        let task = tokio::spawn(
            poller
                .clone()
                .run(ticks, stop.clone(), serving.costs.clone()),
        );
        Ok(Running { stop, task, job })
    }
}
