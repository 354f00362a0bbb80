//! The keys only Ultimate Proxy sources take: `account` and `tier`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::auth::{Auth, TokenPlacement};
use crate::config::{KindContext, KindDefaults, KindSettings, RateWindow};
use crate::error::ConfigError;

pub const KIND: &str = "ultimate_proxy";

pub const DEFAULTS: KindDefaults = KindDefaults {
    kind: KIND,
    pool: KIND,
    base_url: Some("https://api.ultimate-proxy.com"),
    interval: Duration::from_secs(60),
};
pub const KEYS: &[&str] = &["account", "tier"];

/// The key's tier: the proxy's limits are per user, and depend on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Vip,
    #[default]
    NonVip,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Vip => "vip",
            Tier::NonVip => "non_vip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UltimateProxyConfig {
    /// The `account` label: the API names no account, so the config does (the source's name
    /// by default).
    pub account: String,
    pub tier: Tier,
}

impl UltimateProxyConfig {
    pub fn settings(account: &str, tier: Tier) -> Arc<dyn KindSettings> {
        Arc::new(UltimateProxyConfig {
            account: account.to_string(),
            tier,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    account: Option<String>,
    tier: Option<Tier>,
}

pub fn parse(cx: &mut KindContext<'_, '_>) -> Result<Arc<dyn KindSettings>, ConfigError> {
    let keys: Keys = cx.deserialize()?;
    let account = crate::sources::shared::account(cx, keys.account)?;
    Ok(Arc::new(UltimateProxyConfig {
        account,
        tier: keys.tier.unwrap_or_default(),
    }))
}

impl KindSettings for UltimateProxyConfig {
    fn defaults(&self) -> KindDefaults {
        DEFAULTS
    }

    fn auth(&self) -> Auth {
        Auth::token_in(TokenPlacement::Header("x-api-key".to_string()))
    }

    /// The documented per-user limits: the same window is shared by every key of the user.
    fn default_limits(&self) -> (Vec<RateWindow>, String) {
        match self.tier {
            Tier::Vip => (
                vec![RateWindow::new(60, Duration::from_secs(60))],
                "Ultimate Proxy VIP tier, per account".to_string(),
            ),
            Tier::NonVip => (
                vec![RateWindow::new(10, Duration::from_secs(60))],
                "Ultimate Proxy non-VIP tier, per account".to_string(),
            ),
        }
    }

    fn shared_with_token(&self) -> Option<(&'static str, String)> {
        Some(("tier", self.tier.as_str().to_string()))
    }

    fn min_requests_per_poll(&self) -> u32 {
        3
    }

    fn requests(&self) -> String {
        "overview + workers (1 per 100 workers) + hashrate series (1 per algorithm)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declared_keys_are_the_keys_parsed() {
        use crate::config::kind::{fields_parsed, sorted};
        assert_eq!(fields_parsed::<Keys>(), sorted(KEYS));
    }
}
