//! `mining-exporter demo`: embedded pool simulators plus the exporter polling them, so the
//! whole thing can be seen working without a pool account or a token.

pub mod farm;
pub mod harness;
pub mod ultimate_proxy;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{BudgetConfig, Config, HttpSettings, SourceConfig, Tier, Trigger};
use crate::error::StartError;
use crate::secret::Secret;
use crate::sources::SourceKind;
use crate::{Exporter, bind};

pub use ultimate_proxy::{Simulator, SimulatorOptions};

/// How often the demo polls: fast enough to watch, well inside the simulator's VIP limit
/// (3 requests every 5 s is 36 a minute, of 60).
pub const DEMO_INTERVAL: Duration = Duration::from_secs(5);

/// The config the demo runs: one Ultimate Proxy source pointed at `simulator`.
pub fn demo_config(listen: SocketAddr, simulator: &Simulator) -> Config {
    let kind = SourceKind::UltimateProxy;
    let budget = "auto:demo-proxy".to_string();
    let mut budgets = BTreeMap::new();
    budgets.insert(
        budget.clone(),
        BudgetConfig {
            name: budget.clone(),
            limits: kind.default_limits(Tier::Vip),
            origin: kind.default_limits_origin(Tier::Vip),
        },
    );
    Config {
        file: "(demo)".to_string(),
        listen,
        sources: vec![SourceConfig {
            kind,
            name: "demo-proxy".to_string(),
            account: "demo".to_string(),
            base_url: simulator.base_url(),
            token: Some(Secret::new(simulator.token.clone())),
            token_origin: "the demo simulator".to_string(),
            trigger: Trigger::Every(DEMO_INTERVAL),
            tier: Tier::Vip,
            budget,
            http: HttpSettings::default(),
            currency: "BTC".into(),
            subaccounts: Vec::new(),
            site_id: None,
        }],
        budgets,
        warnings: Vec::new(),
    }
}

/// Starts the simulator and the exporter, prints where to look, serves until `shutdown`.
pub async fn run_demo(listen: SocketAddr, shutdown: CancellationToken) -> Result<(), StartError> {
    let simulator = Simulator::start(SimulatorOptions::default())
        .await
        .map_err(|source| StartError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
    let exporter = Exporter::new(demo_config(listen, &simulator))?;
    let listener = bind(listen).await?;
    let address = listener.local_addr().map_err(StartError::Serve)?;
    let banner = format!(
        "mining-exporter demo: no pool account or token needed\n\
         \x20 Ultimate Proxy simulator: {} ({} workers, VIP limit 60 requests/min)\n\
         \x20 polling it every {}s; metrics: http://{address}/metrics\n\
         \x20 landing page: http://{address}/   (Ctrl-C to stop)\n",
        simulator.base_url(),
        simulator.worker_names().len(),
        DEMO_INTERVAL.as_secs()
    );
    // A closed stdout (a pipe whose reader left) must not stop the demo.
    let _ = std::io::stdout().lock().write_all(banner.as_bytes());
    exporter.serve(listener, shutdown).await
}
