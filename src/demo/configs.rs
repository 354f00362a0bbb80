//! The configs the demo, the tests and the benchmarks share: a source pointed at a
//! simulator, the shipped example's blocks pointed at one, and the demo's whole config.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{DEMO_HTTP_JSON_INTERVAL, DEMO_INTERVAL, DEMO_OURPOOL_INTERVAL, DemoPools};
use crate::config::{
    BudgetConfig, Config, DEFAULT_TARGET_UTILIZATION, HttpSettings, KindSettings, SecretMode,
    SourceConfig, Trigger,
};
use crate::error::ConfigError;
use crate::secret::Secret;
use crate::sources::http_json::HttpJsonConfig;
use crate::sources::luxor::LuxorConfig;
use crate::sources::ourpool::OurPoolConfig;
use crate::sources::ultimate_proxy::UltimateProxyConfig;
use crate::sources::ultimate_proxy::config::Tier;

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
        settings: settings.into(),
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
        source.settings = crate::config::Settings(Arc::new(settings));
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
