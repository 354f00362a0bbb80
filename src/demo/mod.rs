//! `mining-exporter demo`: embedded simulators of the three pool APIs plus the exporter
//! polling them, so the whole thing can be seen working without a pool account or a token.

pub mod farm;
pub mod harness;
pub mod luxbio;
pub mod luxcore;
pub mod luxor;
pub mod ourpool;
pub mod ultimate_proxy;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::{
    BudgetConfig, Config, DEFAULT_TARGET_UTILIZATION, HttpSettings, KindSettings, SecretMode,
    SourceConfig, Trigger,
};
use crate::error::{ConfigError, StartError};
use crate::secret::Secret;
use crate::sources::http_json::HttpJsonConfig;
use crate::sources::luxor::LuxorConfig;
use crate::sources::ourpool::OurPoolConfig;
use crate::sources::ultimate_proxy::UltimateProxyConfig;
use crate::sources::ultimate_proxy::config::Tier;
use crate::{Exporter, bind};

pub use luxbio::{LuxbioOptions, LuxbioSimulator};
pub use luxcore::{LuxCoreOptions, LuxCoreSimulator};
pub use luxor::{LuxorOptions, LuxorSimulator};
pub use ourpool::{OurPoolOptions, OurPoolSimulator};
pub use ultimate_proxy::{Simulator, SimulatorOptions};

/// How often the demo polls Ultimate Proxy and Luxor: fast enough to watch, inside their
/// limits (3 requests every 5 s is 36 a minute of the proxy's 60, and 0.6/s of Luxor's 1/s).
pub const DEMO_INTERVAL: Duration = Duration::from_secs(5);
/// OurPool's 1000 requests an hour allow 3 requests every 10.8 s at the most.
pub const DEMO_OURPOOL_INTERVAL: Duration = Duration::from_secs(15);

/// How often the demo polls the generic sources' simulators: the payments gateway (two
/// sources on one key, 100/min) and the cursor-paginated pool (3 pages of 100 workers, 60/min).
pub const DEMO_HTTP_JSON_INTERVAL: Duration = Duration::from_secs(10);

/// The simulators the demo runs: one Ultimate Proxy account, one OurPool account, a Luxor
/// workspace with two subaccounts, and for the generic `http_json` source, a LuxCore-style
/// payments gateway and a Luxbio-style cursor-paginated pool.
pub struct DemoPools {
    pub ultimate_proxy: Simulator,
    pub ourpool: OurPoolSimulator,
    pub luxor: LuxorSimulator,
    pub luxcore: LuxCoreSimulator,
    pub luxbio: LuxbioSimulator,
}

impl DemoPools {
    pub async fn start() -> std::io::Result<DemoPools> {
        Ok(DemoPools {
            ultimate_proxy: Simulator::start(SimulatorOptions::default()).await?,
            ourpool: OurPoolSimulator::start(OurPoolOptions::default()).await?,
            luxor: LuxorSimulator::start(LuxorOptions::default()).await?,
            luxcore: LuxCoreSimulator::start(LuxCoreOptions::default()).await?,
            luxbio: LuxbioSimulator::start(LuxbioOptions::default()).await?,
        })
    }
}

/// One source pointed at a simulator, with the pool's default budget for its token.
pub fn demo_source(
    settings: Arc<dyn KindSettings>,
    name: &str,
    base_url: String,
    token: &str,
    interval: Duration,
) -> (SourceConfig, BudgetConfig) {
    let (limits, origin) = settings.default_limits();
    let budget = BudgetConfig {
        name: format!("auto:{name}"),
        limits,
        origin,
        target: DEFAULT_TARGET_UTILIZATION,
    };
    let source = SourceConfig {
        name: name.to_string(),
        base_url,
        token: Some(Secret::new(token)),
        token_origin: "the demo simulator".to_string(),
        trigger: Trigger::Every(interval),
        budget: budget.name.clone(),
        host_budget: None,
        http: HttpSettings::default(),
        worker_series: Default::default(),
        max_workers: None,
        settings,
    };
    (source, budget)
}

/// The settings the demo gives each built-in kind: the VIP tier, the simulators' accounts.
pub fn demo_proxy() -> Arc<dyn KindSettings> {
    UltimateProxyConfig::settings("demo", Tier::Vip)
}

pub fn demo_luxor() -> Arc<dyn KindSettings> {
    Arc::new(LuxorConfig::default())
}

/// A config of `sources`, as if read from a file.
pub fn config_of(listen: SocketAddr, sources: Vec<(SourceConfig, BudgetConfig)>) -> Config {
    let mut budgets = BTreeMap::new();
    let sources = sources
        .into_iter()
        .map(|(source, budget)| {
            budgets.insert(budget.name.clone(), budget);
            source
        })
        .collect();
    Config {
        file: "(demo)".to_string(),
        listen,
        sources,
        budgets,
        warnings: Vec::new(),
    }
}

/// The shipped example config: the demo and the tests run its `http_json` blocks as written.
pub const EXAMPLE_CONFIG: &str = include_str!("../../config.example.toml");

/// config.example.toml as shipped; tokens it cannot read are left unset.
pub fn example_config() -> Result<Config, ConfigError> {
    Config::parse(
        EXAMPLE_CONFIG,
        "config.example.toml",
        std::path::Path::new("."),
        SecretMode::WarnIfMissing,
        &crate::sources::KINDS,
    )
}

/// The source `name` of config.example.toml, pointed at `base_url` with `token` (and the
/// signing secret, for a signed one), with the budget the example gives it.
pub fn example_source(
    name: &str,
    base_url: String,
    token: &str,
    signing_secret: Option<&str>,
) -> Result<(SourceConfig, BudgetConfig), ConfigError> {
    pointed(&example_config()?, name, base_url, token, signing_secret)
}

/// `example_source` out of an example config already read.
fn pointed(
    config: &Config,
    name: &str,
    base_url: String,
    token: &str,
    signing_secret: Option<&str>,
) -> Result<(SourceConfig, BudgetConfig), ConfigError> {
    let missing = |what: &str| {
        ConfigError::new(
            "config.example.toml",
            format!("source {name:?}"),
            format!("no {what}"),
            "name a source of config.example.toml",
        )
    };
    let mut source = config
        .sources
        .iter()
        .find(|s| s.name == name)
        .cloned()
        .ok_or_else(|| missing("such source"))?;
    let budget = config
        .budgets
        .get(&source.budget)
        .cloned()
        .ok_or_else(|| missing("budget"))?;
    source.base_url = base_url;
    source.token = Some(Secret::new(token));
    source.token_origin = "the demo simulator".to_string();
    source.host_budget = None;
    if let (Some(secret), Some(settings)) = (
        signing_secret,
        source.settings.as_any().downcast_ref::<HttpJsonConfig>(),
    ) {
        let mut settings = settings.clone();
        if let Some(signing) = settings.auth.signing.as_mut() {
            signing.secret = Some(Secret::new(secret));
        }
        source.settings = Arc::new(settings);
    }
    Ok((source, budget))
}

/// The generic sources of the demo: config.example.toml's three `http_json` blocks against
/// the demo's LuxCore and Luxbio simulators.
pub fn demo_http_json_sources(
    pools: &DemoPools,
) -> Result<Vec<(SourceConfig, BudgetConfig)>, ConfigError> {
    let example = example_config()?;
    let secret = pools.luxcore.hmac_secret();
    let luxcore = |name| {
        pointed(
            &example,
            name,
            pools.luxcore.base_url(),
            &pools.luxcore.token,
            Some(&secret),
        )
    };
    let mut sources = vec![
        luxcore("luxcore-payouts")?,
        luxcore("luxcore-payouts-v2")?,
        pointed(
            &example,
            "luxbio-farm",
            pools.luxbio.base_url(),
            &pools.luxbio.token,
            None,
        )?,
    ];
    for (source, _) in &mut sources {
        source.trigger = Trigger::Every(DEMO_HTTP_JSON_INTERVAL);
    }
    Ok(sources)
}

/// The config the demo runs: a source per simulator. The Luxor source names no subaccount,
/// so it watches every one the workspace lists.
pub fn demo_config(listen: SocketAddr, pools: &DemoPools) -> Result<Config, ConfigError> {
    let ourpool = demo_source(
        OurPoolConfig::settings(&pools.ourpool.account()),
        "demo-ourpool",
        pools.ourpool.base_url(),
        &pools.ourpool.token,
        DEMO_OURPOOL_INTERVAL,
    );
    let mut sources = vec![
        demo_source(
            demo_proxy(),
            "demo-proxy",
            pools.ultimate_proxy.base_url(),
            &pools.ultimate_proxy.token,
            DEMO_INTERVAL,
        ),
        ourpool,
        demo_source(
            demo_luxor(),
            "demo-luxor",
            pools.luxor.base_url(),
            &pools.luxor.token,
            DEMO_INTERVAL,
        ),
    ];
    sources.extend(demo_http_json_sources(pools)?);
    Ok(config_of(listen, sources))
}

/// Starts the simulators and the exporter, prints where to look, serves until `shutdown`.
pub async fn run_demo(listen: SocketAddr, shutdown: CancellationToken) -> Result<(), StartError> {
    let pools = DemoPools::start()
        .await
        .map_err(|source| StartError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })?;
    let exporter = Exporter::new(demo_config(listen, &pools)?)?;
    let listener = bind(listen).await?;
    let address = listener.local_addr().map_err(StartError::Serve)?;
    let banner = format!(
        "mining-exporter demo: no pool account or token needed\n\
         \x20 Ultimate Proxy simulator: {} ({} workers, VIP limit 60 requests/min), polled every {}s\n\
         \x20 OurPool simulator: {} (account {:?}, {} workers, 100/min + 1000/h), polled every {}s\n\
         \x20 Luxor simulator: {} (workspace with subaccounts hq and annex), polled every {}s\n\
         \x20 LuxCore-style payments API simulator: {} (balances; v2 signed with HMAC), polled every {}s by two http_json sources\n\
         \x20 Luxbio-style API simulator: {} ({} workers, cursor pages of 100), polled every {}s by an http_json source\n\
         \x20 workers drop out, leave and join as the demo runs\n\
         \x20 metrics: http://{address}/metrics\n\
         \x20 landing page: http://{address}/   (Ctrl-C to stop)\n",
        pools.ultimate_proxy.base_url(),
        pools.ultimate_proxy.worker_names().len(),
        DEMO_INTERVAL.as_secs(),
        pools.ourpool.base_url(),
        pools.ourpool.account(),
        pools.ourpool.worker_names().len(),
        DEMO_OURPOOL_INTERVAL.as_secs(),
        pools.luxor.base_url(),
        DEMO_INTERVAL.as_secs(),
        pools.luxcore.base_url(),
        DEMO_HTTP_JSON_INTERVAL.as_secs(),
        pools.luxbio.base_url(),
        pools.luxbio.workers().len(),
        DEMO_HTTP_JSON_INTERVAL.as_secs(),
    );
    // A closed stdout (a pipe whose reader left) must not stop the demo.
    let _ = std::io::stdout().lock().write_all(banner.as_bytes());
    exporter.serve(listener, shutdown).await
}
