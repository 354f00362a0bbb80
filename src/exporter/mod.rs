//! The service object: one `Exporter` holds the config in force, its budgets, one poller per
//! source, the store and the page. Its parts have a file each:
//!
//! - `mod.rs` (here): construction from one `ExporterOptions` value, and the serve loop.
//! - `pollers.rs`: a source's poller wired to its budgets, and its task started on its trigger.
//! - `costs.rs`: the plan kept up to date with what polls cost, and the state file that
//!   carries budgets and costs across restarts.
//! - `reload_diff.rs`: what a reload changes, decided from the two configs alone.
//! - `reload.rs`: a reload carried out, as its diff says.
//! - `reload_requests.rs`: how SIGHUP and `POST /-/reload` ask for one.

mod costs;
mod pollers;
mod reload;
pub mod reload_diff;
pub mod reload_requests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_cron_scheduler::JobScheduler;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::budget::{Budget, Budgets};
use crate::clock::WallClock;
use crate::config::{Config, SourceConfig};
use crate::error::StartError;
use crate::exposition::Exposition;
use crate::plan::Plan;
use crate::scheduler::{CostLearned, Outcome, Poller};
use crate::server::{self, AppState};
use crate::snapshot::Store;
use crate::sources::Source;
use crate::state_file::Role;
use crate::telemetry::Telemetry;
use crate::web::{self, WebConfig};
use costs::Costs;
use pollers::Running;
use reload::Retired;
use reload_requests::{ReloadRequest, Reloads};

/// How often the state file is brought up to date while requests go out.
const STATE_SAVE_EVERY: Duration = Duration::from_secs(1);

/// Builds the source a poller drives, from its config.
pub type BuildSource = Box<dyn Fn(&SourceConfig) -> Box<dyn Source> + Send + Sync>;

/// What budgets know of the requests sent before this start.
#[derive(Debug, Clone, Default)]
pub enum BudgetsAtStart {
    /// Nothing: every window starts empty (tests that count requests from zero).
    #[default]
    Empty,
    /// As if the last run had sent at the planned pace right up to this start (see
    /// `Budget::assume_partly_used`): what `run` does without a state directory.
    AssumedPartlyUsed,
    /// What a previous run left in this directory's state file; kept there from now on.
    StateDir(PathBuf),
}

impl BudgetsAtStart {
    /// How a process that sends for real starts its budgets: from `state_dir` where there is
    /// one, else as if used at the planned pace.
    pub fn kept_in(state_dir: Option<PathBuf>) -> Self {
        match state_dir {
            Some(dir) => BudgetsAtStart::StateDir(dir),
            None => BudgetsAtStart::AssumedPartlyUsed,
        }
    }
}

/// Everything about an exporter besides its config, given at once so that no order of
/// setting them matters.
pub struct ExporterOptions {
    /// The file a reload re-reads; `None`: reloads are refused.
    pub config_path: Option<PathBuf>,
    /// Serve `POST /-/reload` (`--web.enable-lifecycle`).
    pub enable_lifecycle: bool,
    pub budgets_at_start: BudgetsAtStart,
    /// What pools' reset times are read against; tests that pause tokio's clock use
    /// `WallClock::Tokio`, as the simulators do.
    pub clock: WallClock,
    /// Each source's poller's source; tests plant one that misbehaves on purpose.
    pub build_source: BuildSource,
    /// What kind of process writes the state file (`run`, `doctor`, `poll`).
    pub state_role: Role,
}

impl Default for ExporterOptions {
    fn default() -> Self {
        ExporterOptions {
            config_path: None,
            enable_lifecycle: false,
            budgets_at_start: BudgetsAtStart::Empty,
            clock: WallClock::System,
            build_source: Box::new(crate::sources::build),
            state_role: Role::Run,
        }
    }
}

pub struct Exporter {
    config: Config,
    plan: Plan,
    store: Arc<Store>,
    exposition: Arc<Exposition>,
    telemetry: Telemetry,
    http: reqwest::Client,
    budgets: Budgets,
    /// By source name.
    pollers: BTreeMap<String, Arc<Poller>>,
    options: ExporterOptions,
    costs: Costs,
    /// Budgets a reload left unused, kept for their longest window: a token removed and
    /// added back (or renamed) finds its sends again instead of a fresh window.
    retired: Vec<Retired>,
}

/// What only a serving exporter has: the running tasks and the channels into its loop.
struct Serving {
    running: BTreeMap<String, Running>,
    /// Made when the first cron source starts.
    cron: Option<JobScheduler>,
    shutdown: CancellationToken,
    costs: mpsc::UnboundedSender<CostLearned>,
}

impl Exporter {
    /// An exporter with the default options: no reloads, budgets starting empty.
    pub fn new(config: Config) -> Result<Exporter, StartError> {
        Exporter::with_options(config, ExporterOptions::default())
    }

    /// Builds every part; nothing runs and nothing is requested until `serve`.
    pub fn with_options(config: Config, options: ExporterOptions) -> Result<Exporter, StartError> {
        let telemetry = Telemetry::new();
        let http =
            crate::client::http_client().map_err(|e| StartError::HttpClient(e.to_string()))?;
        let budgets: Budgets = config
            .budgets
            .values()
            .map(|b| (b.name.clone(), Arc::new(Budget::new(b))))
            .collect();
        let store = Arc::new(Store::new(
            config.sources.iter().map(|s| (s.pool(), s.name.as_str())),
        ));
        let exposition = Arc::new(Exposition::new(store.clone(), telemetry.clone()));
        let mut exporter = Exporter {
            config,
            // Made by replan, once the pollers exist to take their intervals.
            plan: Plan::default(),
            store,
            exposition,
            telemetry,
            http,
            budgets,
            pollers: BTreeMap::new(),
            options,
            costs: Costs::default(),
            retired: Vec::new(),
        };
        for source in exporter.config.sources.clone() {
            let poller = exporter.poller(&source, &exporter.budgets)?;
            exporter.pollers.insert(source.name.clone(), poller);
        }
        exporter.take_in_what_came_before()?;
        exporter.replan();
        exporter.costs.save_once()?;
        exporter.show_budgets();
        exporter.exposition.refresh();
        Ok(exporter)
    }

    /// Every budget in force, as it stands now, is what the page shows of budgets.
    fn show_budgets(&self) {
        self.telemetry
            .budgets_in_force(self.budgets.keys().map(String::as_str));
        for (name, budget) in &self.budgets {
            self.telemetry.budget(name, budget.figures());
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The budget in force of this name.
    pub fn budget(&self, name: &str) -> Option<&Arc<Budget>> {
        self.budgets.get(name)
    }

    /// From now on the named source's requests are written down in the returned log; `None`
    /// if no such source.
    pub fn record_requests(&self, source: &str) -> Option<crate::client::RequestLog> {
        Some(self.pollers.get(source)?.record_requests())
    }

    /// Writes what the budgets sent to the state directory, if there is one: requests made
    /// outside `serve` (`doctor`, `poll`) count at the next start too.
    pub async fn keep_state(&mut self) {
        self.costs.save().await;
    }

    pub fn exposition(&self) -> &Arc<Exposition> {
        &self.exposition
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The HTTP face without the reload endpoint, which only a serving exporter answers.
    pub fn router(&self) -> axum::Router {
        self.router_with(None)
    }

    fn router_with(&self, reloads: Option<Reloads>) -> axum::Router {
        server::router(AppState {
            exposition: self.exposition.clone(),
            store: self.store.clone(),
            reloads,
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

    /// Like `serve`, with TLS and basic auth as `web` says, and reloads as they are asked:
    /// on SIGHUP when started from a file, and on `POST /-/reload` with the lifecycle API.
    pub async fn serve_with(
        mut self,
        listener: TcpListener,
        web: &WebConfig,
        shutdown: CancellationToken,
    ) -> Result<(), StartError> {
        let (reload_tx, mut reloads) = mpsc::channel::<ReloadRequest>(4);
        let (costs_tx, mut costs) = mpsc::unbounded_channel();
        let mut serving = Serving {
            running: BTreeMap::new(),
            cron: None,
            shutdown: shutdown.clone(),
            costs: costs_tx,
        };
        for poller in self.pollers.values() {
            let started = self.start(poller, &mut serving).await?;
            serving.running.insert(poller.name.clone(), started);
        }
        #[cfg(unix)]
        if self.options.config_path.is_some() {
            tokio::spawn(reload_requests::on_sighup(
                Reloads(reload_tx.clone()),
                shutdown.clone(),
            ));
        }
        let lifecycle = self
            .options
            .enable_lifecycle
            .then(|| Reloads(reload_tx.clone()));
        self.telemetry.config_reloaded(SystemTime::now());
        let server = web::serve(self.router_with(lifecycle), listener, web, shutdown.clone());
        tokio::pin!(server);
        let mut save_state = tokio::time::interval(STATE_SAVE_EVERY);
        save_state.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let served = loop {
            tokio::select! {
                served = &mut server => break served,
                Some(ReloadRequest(respond)) = reloads.recv() => {
                    let outcome = self.reload(&mut serving).await;
                    let _ = respond.send(outcome);
                }
                Some(learned) = costs.recv() => {
                    // Every cost learned meanwhile, planned for at once.
                    let mut all = vec![learned];
                    while let Ok(more) = costs.try_recv() {
                        all.push(more);
                    }
                    self.costs_learned(all);
                }
                _ = save_state.tick(), if self.costs.keeps_state() => {
                    self.costs.save().await;
                }
            }
        };
        // The server stops on shutdown, or early on an I/O error: stop polling either way.
        shutdown.cancel();
        for stopped in serving.running.into_values() {
            stopped.end(&serving.cron).await;
        }
        self.costs.save().await;
        if let Some(mut cron) = serving.cron {
            let _ = cron.shutdown().await;
        }
        info!("stopped");
        served.map_err(StartError::Serve)
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
    /// Listen here instead of `server.listen` (`--web.listen-address`).
    pub listen: Option<std::net::SocketAddr>,
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
    let listen = options.listen.unwrap_or(config.listen);
    let sources = config.sources.len();
    if options.state_dir.is_none() {
        warn!(
            "no state directory: each budget starts as if the last run had sent at the planned pace up to now, so mining_exporter_budget_remaining starts low and a restart may still spend part of a pool's window twice; keep budgets across restarts with --state-dir DIR (under systemd, StateDirectory= sets it)"
        );
    }
    let exporter = Exporter::with_options(
        config,
        ExporterOptions {
            config_path: options.config_path,
            enable_lifecycle: options.enable_lifecycle,
            budgets_at_start: BudgetsAtStart::kept_in(options.state_dir),
            ..ExporterOptions::default()
        },
    )?;
    let listener = bind(listen).await?;
    info!(
        address = %listener.local_addr().map_err(StartError::Serve)?,
        sources,
        tls = options.web.tls(),
        basic_auth = options.web.basic_auth(),
        lifecycle = options.enable_lifecycle,
        "serving /metrics"
    );
    exporter.serve_with(listener, &options.web, shutdown).await
}
