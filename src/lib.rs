//! mining-exporter: polls mining-pool APIs inside each token's rate budget and serves what it
//! learned to Prometheus. `Exporter` wires the pieces; `run` is the whole service.

pub mod budget;
pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod exposition;
pub mod interned;
pub mod logging;
pub mod metrics;
pub mod plan;
pub mod reload;
pub mod scheduler;
pub mod secret;
pub mod server;
pub mod signing;
pub mod snapshot;
pub mod sources;
pub mod state_file;
pub mod supervision;
pub mod telemetry;
pub mod text_format;
pub mod web;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::budget::{Budget, Budgets};
use crate::client::Upstream;
use crate::clock::WallClock;
use crate::config::{Config, SecretMode, SourceConfig, Trigger};
use crate::error::{ConfigError, StartError};
use crate::exposition::Exposition;
use crate::plan::Plan;
use crate::reload::{ReloadRequest, Reloads};
use crate::scheduler::{CostLearned, Outcome, Poller, Ticks, WorkerLimits};
use crate::server::AppState;
use crate::snapshot::Store;
use crate::sources::Source;
use crate::state_file::StateFile;
use crate::telemetry::Telemetry;
use crate::web::WebConfig;

/// How often the state file is brought up to date while requests go out.
const STATE_SAVE_EVERY: Duration = Duration::from_secs(1);

type BuildSource = Box<dyn Fn(&SourceConfig) -> Box<dyn Source> + Send + Sync>;

pub struct Exporter {
    config: Config,
    plan: Plan,
    store: Arc<Store>,
    exposition: Arc<Exposition>,
    telemetry: Telemetry,
    http: reqwest::Client,
    budgets: Budgets,
    build: BuildSource,
    /// By source name.
    pollers: BTreeMap<String, Arc<Poller>>,
    reload_tx: mpsc::Sender<ReloadRequest>,
    reload_rx: Option<mpsc::Receiver<ReloadRequest>>,
    /// The file a reload re-reads; None: reloads are refused.
    config_path: Option<PathBuf>,
    /// Whether `POST /-/reload` is served.
    lifecycle: bool,
    /// What pools' reset times are read against.
    clock: WallClock,
    /// What each source's polls cost, as learned (by source name).
    learned: BTreeMap<String, u32>,
    cost_tx: mpsc::UnboundedSender<CostLearned>,
    cost_rx: Option<mpsc::UnboundedReceiver<CostLearned>>,
    /// Where budgets and costs are kept across restarts (`--state-dir`).
    state: Option<StateFile>,
    /// The budgets' change count when the state file was last written.
    state_saved_at: Option<u64>,
    /// Budgets a reload left unused, kept for their longest window: a token removed and
    /// added back (or renamed) finds its sends again instead of a fresh window.
    retired: Vec<Retired>,
}

/// A budget no source uses any more, with the sources that last used it.
struct Retired {
    budget: Arc<Budget>,
    users: Vec<SourceConfig>,
    since: tokio::time::Instant,
}

/// A poller's task and what stops it.
struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// A cron source's job, removed from the scheduler with the source.
    job: Option<Job>,
}

impl Running {
    /// Stops the task and removes its cron job, so a removed source fires no more.
    async fn end(self, cron: &Option<JobScheduler>) {
        self.stop.cancel();
        let _ = self.task.await;
        if let (Some(job), Some(scheduler)) = (self.job, cron) {
            if let Err(e) = scheduler.remove(&job.guid()).await {
                warn!(error = %e, "cannot remove a stopped source's cron job");
            }
        }
    }
}

/// What a reload did, for its log line.
#[derive(Debug, Default)]
struct Reloaded {
    kept: usize,
    restarted: usize,
    added: usize,
    removed: usize,
    /// Cron jobs of the sources now running.
    cron_jobs: usize,
}

impl Exporter {
    /// Builds every part; nothing runs and nothing is requested until `serve`.
    pub fn new(config: Config) -> Result<Exporter, StartError> {
        Exporter::with_sources(config, sources::build)
    }

    /// Like `new`, with each source's poller built by `build` (tests use it to plant a
    /// source that misbehaves on purpose).
    pub fn with_sources(
        config: Config,
        build: impl Fn(&SourceConfig) -> Box<dyn Source> + Send + Sync + 'static,
    ) -> Result<Exporter, StartError> {
        let telemetry = Telemetry::new();
        let http = client::http_client().map_err(|e| StartError::HttpClient(e.to_string()))?;
        let budgets: Budgets = config
            .budgets
            .values()
            .map(|b| (b.name.clone(), Arc::new(Budget::new(b))))
            .collect();
        let store = Arc::new(Store::new(
            config.sources.iter().map(|s| (s.pool(), s.name.as_str())),
        ));
        let exposition = Arc::new(Exposition::new(
            store.clone(),
            budgets.clone(),
            telemetry.clone(),
        ));
        let (reload_tx, reload_rx) = mpsc::channel(4);
        let (cost_tx, cost_rx) = mpsc::unbounded_channel();
        let mut exporter = Exporter {
            config,
            // Made by build_pollers, once the pollers exist to take their intervals.
            plan: Plan::default(),
            store,
            exposition,
            telemetry,
            http,
            budgets,
            build: Box::new(build),
            pollers: BTreeMap::new(),
            reload_tx,
            reload_rx: Some(reload_rx),
            config_path: None,
            lifecycle: false,
            clock: WallClock::System,
            learned: BTreeMap::new(),
            cost_tx,
            cost_rx: Some(cost_rx),
            state: None,
            state_saved_at: None,
            retired: Vec::new(),
        };
        exporter.build_pollers()?;
        Ok(exporter)
    }

    fn build_pollers(&mut self) -> Result<(), StartError> {
        for source in self.config.sources.clone() {
            let poller = self.poller(&source, &self.budgets)?;
            self.pollers.insert(source.name.clone(), poller);
        }
        self.replan();
        Ok(())
    }

    /// Computes the plan from the config and the costs learned so far, and hands each
    /// source its interval.
    fn replan(&mut self) {
        self.plan = plan::plan(&self.config, &self.learned);
        for planned in &self.plan.sources {
            if let (Some(poller), Trigger::Every(every)) =
                (self.pollers.get(&planned.name), &planned.trigger)
            {
                poller.set_planned(*every);
            }
        }
        let pollers = &self.pollers;
        self.telemetry
            .show_plan(&self.plan, |name| pollers.get(name).map(|p| p.pool));
    }

    /// A source's cost changed: the plan follows, and one log line says what moved.
    fn cost_learned(&mut self, learned: CostLearned) {
        if !self.pollers.contains_key(&learned.source) {
            return;
        }
        let before = self.plan.clone();
        self.learned
            .insert(learned.source.clone(), learned.requests);
        self.replan();
        // The page shows the plan's gauges as of its last render.
        let exposition = self.exposition.clone();
        drop(tokio::task::spawn_blocking(move || exposition.refresh()));
        let moved: Vec<String> = self
            .plan
            .sources
            .iter()
            .filter_map(|now| {
                let was = before.source(&now.name)?;
                (was.interval != now.interval).then(|| {
                    format!(
                        "{} every {} (was {})",
                        now.name,
                        humantime::format_duration(now.interval),
                        humantime::format_duration(was.interval)
                    )
                })
            })
            .collect();
        let planned_cost = before.source(&learned.source).map(|p| p.cost);
        let was = match (learned.was, planned_cost) {
            (Some(was), _) => was.to_string(),
            (None, Some(assumed)) => format!("{assumed} assumed"),
            (None, None) => "unknown".to_string(),
        };
        let changed = if moved.is_empty() {
            "no interval".to_string()
        } else {
            moved.join(", ")
        };
        // A first poll that costs what was assumed changes nothing worth a line.
        if planned_cost == Some(learned.requests) {
            debug!(source = %learned.source, requests_per_poll = learned.requests, %was, %changed, "poll cost learned; plan recomputed");
        } else {
            info!(source = %learned.source, requests_per_poll = learned.requests, %was, %changed, "poll cost learned; plan recomputed");
        }
    }

    /// Keeps budgets and learned costs in `dir` across restarts. What a previous run left
    /// there is taken in now: its sends still count against the windows, its costs plan
    /// the first polls. The directory must be writable; the file is written once at once.
    pub fn with_state_dir(mut self, dir: &std::path::Path) -> Result<Self, StartError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StartError::State(format!("cannot create {}: {e}", dir.display())))?;
        let file = state_file::StateFile::in_dir(dir, self.clock);
        let restored = match file.load() {
            Ok(restored) => restored,
            Err(e @ state_file::StateError::Unreadable { .. }) => {
                warn!("{e}");
                Default::default()
            }
            Err(e) => return Err(StartError::State(e.to_string())),
        };
        let now = tokio::time::Instant::now();
        for (name, budget) in &self.budgets {
            match restored.budgets.get(name) {
                Some(log) => budget.restore(log, now),
                None => budget.assume_partly_used(now),
            }
        }
        for (name, cost) in restored.costs {
            if let Some(poller) = self.pollers.get(&name) {
                poller.knows_cost(cost);
                self.learned.insert(name, cost);
            }
        }
        self.replan();
        file.save(&self.budgets, &self.learned)
            .map_err(|e| StartError::State(e.to_string()))?;
        info!(file = %file.path().display(), budgets = restored.budgets.len(), "budgets restored from the state file");
        self.state = Some(file);
        Ok(self)
    }

    /// With no state file, budgets start as if the last run had sent at the planned pace
    /// right up to this start (see `Budget::assume_partly_used`).
    pub fn assuming_partly_used_budgets(self) -> Self {
        let now = tokio::time::Instant::now();
        for budget in self.budgets.values() {
            budget.assume_partly_used(now);
        }
        self
    }

    /// Writes the state file if a budget sent or paused since the last write.
    async fn save_state(&mut self) {
        let Some(file) = self.state.clone() else {
            return;
        };
        let changes: u64 = self.budgets.values().map(|b| b.changes()).sum();
        if self.state_saved_at == Some(changes) {
            return;
        }
        let budgets = self.budgets.clone();
        let costs = self.learned.clone();
        let saved = tokio::task::spawn_blocking(move || file.save(&budgets, &costs)).await;
        match saved {
            Ok(Ok(())) => self.state_saved_at = Some(changes),
            Ok(Err(e)) => {
                warn!(error = %e, "cannot write the state file; a restart now may send more than a window allows")
            }
            Err(_) => warn!("writing the state file panicked"),
        }
    }

    /// Reloads re-read `path` (the file the config came from).
    pub fn reload_from(mut self, path: PathBuf) -> Self {
        self.config_path = Some(path);
        self
    }

    /// Reads pools' reset times against `clock`; tests that pause tokio's clock use
    /// `WallClock::Tokio`, as the simulators do.
    pub fn with_wall_clock(mut self, clock: WallClock) -> Result<Self, StartError> {
        self.clock = clock;
        self.build_pollers()?;
        Ok(self)
    }

    /// Serves `POST /-/reload`.
    pub fn enable_lifecycle(mut self) -> Self {
        self.lifecycle = true;
        self
    }

    /// A handle to ask the serving exporter for reloads.
    pub fn reloads(&self) -> Reloads {
        Reloads(self.reload_tx.clone())
    }

    fn poller(&self, source: &SourceConfig, budgets: &Budgets) -> Result<Arc<Poller>, StartError> {
        let token = source.token.clone().ok_or_else(|| {
            ConfigError::new(
                &self.config.file,
                format!("source {:?}", source.name),
                format!("the token from {} could not be read", source.token_origin),
                "make the token readable before starting",
            )
        })?;
        let budget_named = |name: &String| {
            budgets.get(name).cloned().ok_or_else(|| {
                ConfigError::new(
                    &self.config.file,
                    format!("source {:?}", source.name),
                    format!("no budget {name:?}"),
                    "report this as a bug: the config names every budget it uses",
                )
            })
        };
        let budget = budget_named(&source.budget)?;
        let host_budget = source.host_budget.as_ref().map(budget_named).transpose()?;
        let upstream = Upstream {
            http: self.http.clone(),
            base_url: source.base_url.clone(),
            auth: source.settings.auth(),
            token,
            budget,
            host_budget,
            settings: source.http.clone(),
            telemetry: self.telemetry.clone(),
            pool: source.pool(),
            source: source.name.clone(),
            warned: Default::default(),
            clock: self.clock,
            requests_asked: Default::default(),
            poll_bytes: Default::default(),
        };
        Ok(Arc::new(
            Poller::new(
                source.name.clone(),
                (self.build)(source),
                upstream,
                WorkerLimits {
                    series: source.worker_series,
                    max: source.max_workers,
                },
                self.store.clone(),
                self.exposition.clone(),
            )
            .reporting_costs_to(self.cost_tx.clone()),
        ))
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn exposition(&self) -> &Arc<Exposition> {
        &self.exposition
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn router(&self) -> axum::Router {
        server::router(AppState {
            exposition: self.exposition.clone(),
            store: self.store.clone(),
            reloads: self.lifecycle.then(|| self.reloads()),
        })
    }

    /// One poll of the named source, outside the schedule; None if no such source.
    pub async fn poll_once(&self, source: &str) -> Option<Outcome> {
        let poller = self.pollers.get(source)?;
        Some(poller.poll_once().await)
    }

    /// Polls every source on its plan and serves HTTP on `listener` until `shutdown` fires;
    /// then stops polling, lets in-flight responses finish, and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), StartError> {
        self.serve_with(listener, &WebConfig::default(), shutdown)
            .await
    }

    /// Like `serve`, with TLS and basic auth as `web` says, and reloads as they are asked.
    pub async fn serve_with(
        mut self,
        listener: TcpListener,
        web: &WebConfig,
        shutdown: CancellationToken,
    ) -> Result<(), StartError> {
        let mut reloads = self.reload_rx.take().ok_or_else(|| {
            StartError::Scheduler("serve was already called on this exporter".into())
        })?;
        let mut costs = self.cost_rx.take().ok_or_else(|| {
            StartError::Scheduler("serve was already called on this exporter".into())
        })?;
        let mut save_state = tokio::time::interval(STATE_SAVE_EVERY);
        save_state.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cron: Option<JobScheduler> = None;
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        for poller in self.pollers.values() {
            let started = self.start(poller, &mut cron, &shutdown).await?;
            running.insert(poller.name.clone(), started);
        }
        self.telemetry.config_reloaded(SystemTime::now());
        let server = web::serve(self.router(), listener, web, shutdown.clone());
        tokio::pin!(server);
        let served = loop {
            tokio::select! {
                served = &mut server => break served,
                Some(ReloadRequest(respond)) = reloads.recv() => {
                    let outcome = self.reload(&mut running, &mut cron, &shutdown).await;
                    let _ = respond.send(outcome);
                }
                Some(learned) = costs.recv() => self.cost_learned(learned),
                _ = save_state.tick(), if self.state.is_some() => self.save_state().await,
            }
        };
        // The server stops on shutdown, or early on an I/O error: stop polling either way.
        shutdown.cancel();
        for stopped in running.into_values() {
            stopped.end(&cron).await;
        }
        self.save_state().await;
        if let Some(mut s) = cron {
            let _ = s.shutdown().await;
        }
        info!("stopped");
        served.map_err(StartError::Serve)
    }

    /// Starts a poller's task on its planned trigger.
    async fn start(
        &self,
        poller: &Arc<Poller>,
        cron: &mut Option<JobScheduler>,
        shutdown: &CancellationToken,
    ) -> Result<Running, StartError> {
        let scheduler_error = |e: JobSchedulerError| StartError::Scheduler(e.to_string());
        let trigger = self
            .plan
            .source(&poller.name)
            .map(|p| p.trigger.clone())
            .ok_or_else(|| StartError::Scheduler(format!("{} is not planned", poller.name)))?;
        let (ticks, job) = match &trigger {
            Trigger::Every(_) => (Ticks::planned(poller.planned()), None),
            Trigger::Cron(expr) => {
                if cron.is_none() {
                    let scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
                    scheduler.start().await.map_err(scheduler_error)?;
                    *cron = Some(scheduler);
                }
                let mean = self
                    .plan
                    .source(&poller.name)
                    .map_or(Duration::ZERO, |p| p.interval);
                match cron.as_ref() {
                    Some(scheduler) => {
                        let (ticks, job) = Ticks::cron(scheduler, expr, mean)
                            .await
                            .map_err(scheduler_error)?;
                        (ticks, Some(job))
                    }
                    None => return Err(StartError::Scheduler("no cron scheduler".into())),
                }
            }
        };
        let stop = shutdown.child_token();
        let task = tokio::spawn(poller.clone().run(ticks, stop.clone()));
        Ok(Running { stop, task, job })
    }

    /// Re-reads the config file and applies it: new sources start, removed ones stop and
    /// leave the page, unchanged ones keep running untouched, and every budget keeps its
    /// send log. A file that does not load changes nothing; its error is logged and returned.
    async fn reload(
        &mut self,
        running: &mut BTreeMap<String, Running>,
        cron: &mut Option<JobScheduler>,
        shutdown: &CancellationToken,
    ) -> Result<(), String> {
        let loaded = match &self.config_path {
            Some(path) => Config::load(path, SecretMode::Require, &crate::sources::KINDS)
                .map_err(|e| e.to_string()),
            None => Err("this exporter was not started from a config file".to_string()),
        };
        let outcome = match loaded {
            Ok(config) => self.apply(config, running, cron, shutdown).await,
            Err(message) => Err(message),
        };
        match &outcome {
            Ok(done) => {
                self.telemetry.config_reloaded(SystemTime::now());
                info!(
                    kept = done.kept,
                    restarted = done.restarted,
                    added = done.added,
                    removed = done.removed,
                    cron_jobs = done.cron_jobs,
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

    async fn apply(
        &mut self,
        config: Config,
        running: &mut BTreeMap<String, Running>,
        cron: &mut Option<JobScheduler>,
        shutdown: &CancellationToken,
    ) -> Result<Reloaded, String> {
        for warning in &config.warnings {
            warn!("{warning}");
        }
        // Budgets live on with their send logs: a reload never opens a burst. A budget is
        // found by its name, or else by the sources that used it: a token's default budget
        // is named after its first source, and removing or renaming that source renames it.
        // Failing those, by the token its sources send (where it comes from, and the host):
        // among the running budgets, then among those a recent reload left unused.
        let now = tokio::time::Instant::now();
        self.retired
            .retain(|r| now.saturating_duration_since(r.since) < r.budget.longest_window());
        let previous = |name: &str| -> Option<&Arc<Budget>> {
            let users = || config.sources.iter().filter(move |s| s.budget == name);
            let of_token = |old: &SourceConfig| users().any(|s| s.same_token_as(old));
            self.budgets
                .get(name)
                .or_else(|| {
                    users().find_map(|s| {
                        let old = self.config.sources.iter().find(|o| o.name == s.name)?;
                        self.budgets.get(&old.budget)
                    })
                })
                .or_else(|| {
                    let old = self.config.sources.iter().find(|o| of_token(o))?;
                    self.budgets.get(&old.budget)
                })
                .or_else(|| {
                    self.retired
                        .iter()
                        .rev()
                        .find(|r| r.users.iter().any(of_token))
                        .map(|r| &r.budget)
                })
        };
        let mut carried: Vec<Arc<Budget>> = Vec::new();
        let budgets: Budgets = config
            .budgets
            .iter()
            .map(|(name, wanted)| {
                let found = previous(name);
                carried.extend(found.cloned());
                let budget = match found {
                    Some(old)
                        if old.name() == name.as_str()
                            && old.windows() == wanted.limits.as_slice() =>
                    {
                        old.clone()
                    }
                    Some(old) => Arc::new(old.reconfigured(wanted)),
                    None => Arc::new(Budget::new(wanted)),
                };
                (name.clone(), budget)
            })
            .collect();
        // Build every new poller before stopping anything, so a failure changes nothing.
        let mut pollers = BTreeMap::new();
        let mut fresh = Vec::new();
        let mut done = Reloaded::default();
        for source in &config.sources {
            let same_budget = |name: &String| {
                self.budgets
                    .get(name)
                    .zip(budgets.get(name))
                    .is_some_and(|(old, new)| Arc::ptr_eq(old, new))
            };
            // The interval may change: the plan hands it to a running source.
            let unchanged = self.config.sources.iter().any(|old| old == source)
                && same_budget(&source.budget)
                && source.host_budget.as_ref().is_none_or(same_budget);
            match self.pollers.get(&source.name) {
                Some(poller) if unchanged => {
                    pollers.insert(source.name.clone(), poller.clone());
                    done.kept += 1;
                }
                existing => {
                    if existing.is_some() {
                        done.restarted += 1;
                    } else {
                        done.added += 1;
                    }
                    let poller = self.poller(source, &budgets).map_err(|e| e.to_string())?;
                    fresh.push(poller.clone());
                    pollers.insert(source.name.clone(), poller);
                }
            }
        }
        // From here on the new config is in force.
        let stale: Vec<String> = running
            .keys()
            .filter(|name| !pollers.contains_key(*name) || fresh.iter().any(|p| &p.name == *name))
            .cloned()
            .collect();
        done.removed = stale.iter().filter(|n| !pollers.contains_key(*n)).count();
        for name in stale {
            if let Some(stopped) = running.remove(&name) {
                stopped.end(cron).await;
            }
        }
        self.store
            .set_sources(config.sources.iter().map(|s| (s.pool(), s.name.as_str())));
        self.exposition.set_budgets(budgets.clone());
        // A retired budget a new one carries on is no longer retired.
        self.retired
            .retain(|r| !carried.iter().any(|c| Arc::ptr_eq(c, &r.budget)));
        for (name, budget) in &self.budgets {
            if !carried.iter().any(|c| Arc::ptr_eq(c, budget)) {
                let users = self
                    .config
                    .sources
                    .iter()
                    .filter(|s| &s.budget == name)
                    .cloned()
                    .collect();
                self.retired.push(Retired {
                    budget: budget.clone(),
                    users,
                    since: now,
                });
            }
        }
        // A cost learned by a source that runs on unchanged keeps planning it.
        self.learned
            .retain(|name, _| pollers.contains_key(name) && !fresh.iter().any(|p| &p.name == name));
        self.config = config;
        self.budgets = budgets;
        self.pollers = pollers;
        self.replan();
        for poller in &fresh {
            let started = self
                .start(poller, cron, shutdown)
                .await
                .map_err(|e| e.to_string())?;
            running.insert(poller.name.clone(), started);
        }
        done.cron_jobs = running.values().filter(|r| r.job.is_some()).count();
        Ok(done)
    }
}

pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// How `run` serves besides its config.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// The config file, re-read on SIGHUP and `POST /-/reload`.
    pub config_path: Option<PathBuf>,
    /// TLS and basic auth.
    pub web: WebConfig,
    /// Serve `POST /-/reload` (`--web.enable-lifecycle`).
    pub enable_lifecycle: bool,
    /// Keep budgets and learned costs here across restarts (`--state-dir`).
    pub state_dir: Option<PathBuf>,
}

/// The service: builds the exporter from a validated config and serves until `shutdown`,
/// reloading its config on SIGHUP (and `POST /-/reload` when enabled).
pub async fn run(
    config: Config,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    for warning in &config.warnings {
        warn!("{warning}");
    }
    let listen = config.listen;
    let mut exporter = Exporter::new(config)?;
    if let Some(path) = options.config_path {
        exporter = exporter.reload_from(path);
    }
    if options.enable_lifecycle {
        exporter = exporter.enable_lifecycle();
    }
    exporter = match &options.state_dir {
        Some(dir) => exporter.with_state_dir(dir)?,
        None => exporter.assuming_partly_used_budgets(),
    };
    #[cfg(unix)]
    tokio::spawn(reload::on_sighup(exporter.reloads(), shutdown.clone()));
    let listener = bind(listen).await?;
    info!(
        address = %listener.local_addr().map_err(StartError::Serve)?,
        sources = exporter.pollers.len(),
        tls = options.web.tls(),
        basic_auth = options.web.basic_auth(),
        lifecycle = options.enable_lifecycle,
        "serving /metrics"
    );
    exporter.serve_with(listener, &options.web, shutdown).await
}
