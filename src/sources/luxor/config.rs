//! The keys only Luxor sources take: the `currency` polled, and which subaccounts to watch
//! (`subaccounts` by name, or every one of a `site_id`, or by default every one listed).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::auth::{Auth, TokenPlacement};
use crate::config::{KindContext, KindDefaults, KindSettings, RateWindow};
use crate::error::ConfigError;

pub const KIND: &str = "luxor";

pub const DEFAULTS: KindDefaults = KindDefaults {
    kind: KIND,
    pool: KIND,
    base_url: Some("https://app.luxor.tech/api"),
    interval: Duration::from_secs(60),
};
pub const KEYS: &[&str] = &["currency", "subaccounts", "site_id"];

/// The coins Luxor's summary and workers endpoints take (docs.luxor.tech/mining/api/v2, the `currency_type` path parameter).
pub const CURRENCIES: &[&str] = &["BTC", "LTC_DOGE", "SC", "ZEC", "ZEN"];
pub const DEFAULT_CURRENCY: &str = "BTC";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuxorConfig {
    /// The coin whose summary and workers are polled.
    pub currency: String,
    /// The subaccounts to watch; empty with no `site_id` means every one listed.
    pub subaccounts: Vec<String>,
    /// Watch the subaccounts of this site instead of naming them.
    pub site_id: Option<String>,
}

impl Default for LuxorConfig {
    fn default() -> Self {
        LuxorConfig {
            currency: DEFAULT_CURRENCY.to_string(),
            subaccounts: Vec::new(),
            site_id: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    currency: Option<String>,
    subaccounts: Option<Vec<String>>,
    site_id: Option<String>,
}

/// A UUID's shape: 32 hex digits, dashes allowed.
fn valid_site_id(id: &str) -> bool {
    id.chars().filter(|c| c.is_ascii_hexdigit()).count() == 32
        && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

pub fn parse(cx: &mut KindContext<'_, '_>) -> Result<Arc<dyn KindSettings>, ConfigError> {
    let keys: Keys = cx.deserialize()?;
    let currency = match keys.currency {
        None => DEFAULT_CURRENCY.to_string(),
        Some(c) if CURRENCIES.contains(&c.as_str()) => c,
        Some(c) => {
            return Err(cx.err(
                "currency",
                format!("{c:?} is not a currency the pool's summary and workers take"),
                &format!("use one of {}", CURRENCIES.join(", ")),
            ));
        }
    };
    if keys.subaccounts.is_some() && keys.site_id.is_some() {
        return Err(cx.err(
            "site_id",
            "both subaccounts and site_id are set",
            "keep one: subaccounts names them, site_id watches every subaccount of a site",
        ));
    }
    if keys.site_id.as_deref().is_some_and(|s| !valid_site_id(s)) {
        return Err(cx.err(
            "site_id",
            "not a site id",
            "copy the site's UUID from the pool's UI, e.g. \"b0a5fad8-4f1c-4e6a-9a8e-0c1d2e3f4a5b\"",
        ));
    }
    if keys.subaccounts.as_ref().is_some_and(Vec::is_empty) {
        return Err(cx.err(
            "subaccounts",
            "the list is empty",
            "name at least one subaccount, or remove the key to watch every subaccount the workspace lists",
        ));
    }
    let names = keys.subaccounts.unwrap_or_default();
    for (n, name) in names.iter().enumerate() {
        // The API takes the names comma-joined in one query parameter.
        if name.trim().is_empty() || name.contains(',') || name.chars().any(char::is_control) {
            return Err(cx.err(
                &format!("subaccounts[{n}]"),
                format!("{name:?} is not a subaccount name"),
                "write each name as the pool shows it, without commas",
            ));
        }
        if names.iter().take(n).any(|earlier| earlier == name) {
            return Err(cx.err(
                &format!("subaccounts[{n}]"),
                format!("{name:?} is listed twice"),
                "list each subaccount once",
            ));
        }
    }
    Ok(Arc::new(LuxorConfig {
        currency,
        subaccounts: names,
        site_id: keys.site_id,
    }))
}

impl KindSettings for LuxorConfig {
    fn defaults(&self) -> KindDefaults {
        DEFAULTS
    }

    fn auth(&self) -> Auth {
        Auth::token_in(TokenPlacement::Header("authorization".to_string()))
    }

    /// Luxor documents a token bucket per key (and one per workspace) without sizes. 5 in
    /// any 5 s keeps a key at the 1 request/s the vendor's own collector uses, with no burst
    /// beyond the smallest bucket the reference proposes.
    fn default_limits(&self) -> (Vec<RateWindow>, String) {
        (
            vec![RateWindow::new(5, Duration::from_secs(5))],
            "Luxor, per key: 1 request/s".to_string(),
        )
    }

    fn min_requests_per_poll(&self) -> u32 {
        u32::try_from(self.subaccounts.len().max(1))
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    fn requests(&self) -> String {
        "summary per subaccount + workers (1 per 1000 workers) + workspace every ~10 min"
            .to_string()
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
