//! The keys only OurPool sources take: `account`, which its paths need.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::auth::{Auth, TokenPlacement};
use crate::config::{KindContext, KindSettings, RateWindow, same_settings};
use crate::error::ConfigError;

pub const KIND: &str = "ourpool";
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
    let account = super::super::account(cx, keys.account)?;
    Ok(Arc::new(OurPoolConfig { account }))
}

impl KindSettings for OurPoolConfig {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn default_base_url(&self) -> Option<&'static str> {
        Some("https://ourpool.io")
    }

    /// 3 requests a poll every 60 s is 180 an hour, well inside the 1000/h that binds first.
    fn default_interval(&self) -> Duration {
        Duration::from_secs(60)
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

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn same_as(&self, other: &dyn KindSettings) -> bool {
        same_settings(self, other)
    }
}
