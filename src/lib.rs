//! mining-exporter: polls mining-pool APIs inside each token's rate budget and serves what it
//! learned to Prometheus. `Exporter` wires the pieces; `run` is the whole service.

pub mod budget;
pub mod client;
pub mod config;
pub mod demo;
pub mod error;
pub mod exposition;
pub mod logging;
pub mod metrics;
pub mod plan;
pub mod scheduler;
pub mod secret;
pub mod server;
pub mod snapshot;
pub mod sources;
pub mod supervision;
pub mod telemetry;
pub mod web;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_cron_scheduler::{JobScheduler, JobSchedulerError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::budget::{Budget, Budgets};
use crate::client::Upstream;
use crate::config::{Config, Trigger};
use crate::error::{ConfigError, StartError};
use crate::exposition::Exposition;
use crate::plan::Plan;
use crate::scheduler::{Outcome, Poller, Ticks};
use crate::server::AppState;
use crate::snapshot::Store;
use crate::telemetry::Telemetry;
use crate::web::WebConfig;

pub struct Exporter {
    plan: Plan,
    store: Arc<Store>,
    exposition: Arc<Exposition>,
    pollers: Vec<Arc<Poller>>,
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
        build: impl Fn(&config::SourceConfig) -> Box<dyn sources::Source>,
    ) -> Result<Exporter, StartError> {
        let plan = plan::plan(&config);
        let telemetry = Telemetry::new();
        let http = client::http_client().map_err(|e| StartError::HttpClient(e.to_string()))?;
        let budgets: Budgets = config
            .budgets
            .values()
            .map(|b| (b.name.clone(), Arc::new(Budget::new(b))))
            .collect();
        let store = Arc::new(Store::new(
            config
                .sources
                .iter()
                .map(|s| (s.kind.as_str(), s.name.as_str())),
        ));
        let exposition = Arc::new(Exposition::new(
            store.clone(),
            budgets.clone(),
            telemetry.clone(),
        ));
        let mut pollers = Vec::with_capacity(config.sources.len());
        for (index, source) in config.sources.iter().enumerate() {
            let token = source.token.clone().ok_or_else(|| {
                ConfigError::new(
                    &config.file,
                    format!("sources[{index}] (source {:?})", source.name),
                    format!("the token from {} could not be read", source.token_origin),
                    "make the token readable before starting",
                )
            })?;
            let upstream = Upstream {
                http: http.clone(),
                base_url: source.base_url.clone(),
                auth: source.kind.defaults().auth,
                token,
                budget: budgets[&source.budget].clone(),
                settings: source.http.clone(),
                telemetry: telemetry.clone(),
                pool: source.kind.as_str(),
                source: source.name.clone(),
                warned: Default::default(),
            };
            pollers.push(Arc::new(Poller::new(
                index,
                source.name.clone(),
                build(source),
                upstream,
                store.clone(),
                exposition.clone(),
            )));
        }
        Ok(Exporter {
            plan,
            store,
            exposition,
            pollers,
        })
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
        })
    }

    /// One poll of the named source, outside the schedule; None if no such source.
    pub async fn poll_once(&self, source: &str) -> Option<Outcome> {
        let poller = self.pollers.iter().find(|p| p.name == source)?;
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

    /// Like `serve`, with TLS and basic auth as `web` says.
    pub async fn serve_with(
        self,
        listener: TcpListener,
        web: &WebConfig,
        shutdown: CancellationToken,
    ) -> Result<(), StartError> {
        let scheduler_error = |e: JobSchedulerError| StartError::Scheduler(e.to_string());
        let mut tasks = tokio::task::JoinSet::new();
        let mut cron: Option<JobScheduler> = None;
        for poller in &self.pollers {
            let planned = self
                .plan
                .source(&poller.name)
                .expect("every source is planned");
            let ticks = match &planned.trigger {
                Trigger::Every(every) => Ticks::every(*every),
                Trigger::Cron(expr) => {
                    if cron.is_none() {
                        cron = Some(JobScheduler::new().await.map_err(scheduler_error)?);
                    }
                    let scheduler = cron.as_ref().expect("created above");
                    Ticks::cron(scheduler, expr)
                        .await
                        .map_err(scheduler_error)?
                }
            };
            tasks.spawn(poller.clone().run(ticks, shutdown.clone()));
        }
        if let Some(s) = &cron {
            s.start().await.map_err(scheduler_error)?;
        }
        let served = web::serve(self.router(), listener, web, shutdown.clone()).await;
        // The server can only stop early on an I/O error; make sure polling stops too.
        shutdown.cancel();
        while tasks.join_next().await.is_some() {}
        if let Some(mut s) = cron {
            let _ = s.shutdown().await;
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

/// The service: builds the exporter from a validated config and serves until `shutdown`,
/// with TLS and basic auth as `web` says.
pub async fn run(
    config: Config,
    web: WebConfig,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    for warning in &config.warnings {
        warn!("{warning}");
    }
    let listen = config.listen;
    let exporter = Exporter::new(config)?;
    let listener = bind(listen).await?;
    info!(
        address = %listener.local_addr().map_err(StartError::Serve)?,
        sources = exporter.pollers.len(),
        tls = web.tls(),
        basic_auth = web.basic_auth(),
        "serving /metrics"
    );
    exporter.serve_with(listener, &web, shutdown).await
}
