//! The keys only OurPool sources take: `account`, which its paths need.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::auth::{Auth, TokenPlacement};
use crate::config::{KindContext, KindDefaults, KindSettings, RateWindow};
use crate::error::ConfigError;

pub const KIND: &str = "ourpool";

pub const DEFAULTS: KindDefaults = KindDefaults {
    kind: KIND,
    pool: KIND,
    base_url: Some("https://ourpool.io"),
    interval: Duration::from_secs(60),
};
pub const KEYS: &[&str] = &["account"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OurPoolConfig {
    /// The account name in every path, and the `account` label.
    pub account: String,
}

impl OurPoolConfig {
    pub fn settings(account: &str) -> Arc<dyn KindSettings> {
        Arc::new(OurPoolConfig {
            account: account.to_string(),
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    account: Option<String>,
}

pub fn parse(cx: &mut KindContext<'_, '_>) -> Result<Arc<dyn KindSettings>, ConfigError> {
    let keys: Keys = cx.deserialize()?;
    if keys.account.is_none() {
        return Err(cx.err(
            "account",
            "ourpool sources need `account`",
            "add it; config.example.toml shows a block for every pool",
        ));
    }
    let account = crate::sources::shared::account(cx, keys.account)?;
    Ok(Arc::new(OurPoolConfig { account }))
}

impl KindSettings for OurPoolConfig {
    fn defaults(&self) -> KindDefaults {
        DEFAULTS
    }

    fn auth(&self) -> Auth {
        Auth::token_in(TokenPlacement::Query("token".to_string()))
    }

    /// The documented limits, per watcher token; whichever window fills first binds.
    fn default_limits(&self) -> (Vec<RateWindow>, String) {
        (
            vec![
                RateWindow::new(100, Duration::from_secs(60)),
                RateWindow::new(1000, Duration::from_secs(3600)),
            ],
            "OurPool, per token".to_string(),
        )
    }

    fn min_requests_per_poll(&self) -> u32 {
        3
    }

    fn requests(&self) -> String {
        "rewards-stats + miner workers + miner stats".to_string()
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
