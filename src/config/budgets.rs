//! Budgets: the configured `[budgets.NAME]` and `[hosts."HOST"]` tables, the per-token
//! defaults for sources that name none, and the host budget each source shares.

use std::collections::BTreeMap;

use super::{BudgetConfig, Loader, RateWindow, RawBudget, SourceConfig, source_key, valid_name};
use crate::error::ConfigError;

/// A DNS name or an IP address, as a URL's host: no scheme, port, path or credentials.
pub(super) fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'))
        && !host.contains("://")
        && reqwest::Url::parse(&format!("http://{host}/"))
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|h| h == host.to_ascii_lowercase())
}

impl Loader<'_> {
    pub(super) fn target_utilization(&self, key: &str, value: f64) -> Result<f64, ConfigError> {
        if (0.1..=1.0).contains(&value) {
            Ok(value)
        } else {
            Err(self.err(
                key,
                format!("{value} is not a share between 0.1 and 1"),
                "write the share of each budget the poll plan may fill, e.g. 0.85; the rest is room for retries",
            ))
        }
    }

    /// A `[budgets.NAME]` or `[hosts."HOST"]` table; `key` is how the error names it.
    pub(super) fn configured_budget(
        &self,
        key: &str,
        name: &str,
        raw: &RawBudget,
        default_target: f64,
    ) -> Result<BudgetConfig, ConfigError> {
        if key.starts_with("budgets.") && !valid_name(name) {
            return Err(self.err(
                key,
                "a budget name may use letters, digits, '_', '-' and '.', up to 64 characters",
                "rename the budget and every `budget =` that names it",
            ));
        }
        if raw.limits.is_empty() {
            return Err(self.err(
                format!("{key}.limits"),
                "no limits given",
                "give one or more windows, e.g. limits = [\"100/1m\", \"1000/1h\"]",
            ));
        }
        let limits = raw
            .limits
            .iter()
            .enumerate()
            .map(|(i, l)| {
                l.parse::<RateWindow>().map_err(|problem| {
                    self.err(
                        format!("{key}.limits[{i}]"),
                        problem,
                        "write each window as \"COUNT/DURATION\", e.g. \"10/1m\" or \"1000/1h\"",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let target = match raw.target_utilization {
            Some(t) => self.target_utilization(&format!("{key}.target_utilization"), t)?,
            None => default_target,
        };
        Ok(BudgetConfig {
            name: name.to_string(),
            limits,
            origin: "configured".to_string(),
            target,
        })
    }

    /// `[hosts."HOST"]` tables, keyed by the lower-cased host.
    pub(super) fn host_budgets(
        &self,
        hosts: &BTreeMap<String, RawBudget>,
        target: f64,
    ) -> Result<BTreeMap<String, BudgetConfig>, ConfigError> {
        let mut out = BTreeMap::new();
        for (host, budget) in hosts {
            let key = format!("hosts.{host:?}");
            if !valid_host(host) {
                return Err(self.err(
                    key,
                    format!("{host:?} is not a host name or address"),
                    "write the host alone, as base_url names it: no scheme, port or path, e.g. [hosts.\"api.example.com\"]",
                ));
            }
            let name = format!("host:{}", host.to_ascii_lowercase());
            out.insert(
                host.to_ascii_lowercase(),
                self.configured_budget(&key, &name, budget, target)?,
            );
        }
        Ok(out)
    }

    /// Gives each source the budget of its `base_url`'s host, where `[hosts]` has one, and
    /// keeps only the host budgets some source uses.
    pub(super) fn share_host_budgets(
        &mut self,
        sources: &mut [SourceConfig],
        hosts: BTreeMap<String, BudgetConfig>,
        budgets: &mut BTreeMap<String, BudgetConfig>,
    ) {
        for source in sources.iter_mut() {
            let host = reqwest::Url::parse(&source.base_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
            if let Some(budget) = host.and_then(|h| hosts.get(&h)) {
                source.host_budget = Some(budget.name.clone());
            }
        }
        for (host, budget) in hosts {
            if sources
                .iter()
                .any(|s| s.host_budget.as_ref() == Some(&budget.name))
            {
                budgets.insert(budget.name.clone(), budget);
            } else {
                self.warnings.push(format!(
                    "{}: hosts.{host:?} is not the host of any source's base_url",
                    self.file
                ));
            }
        }
    }

    /// Sources that resolve to the same token share one budget, because pools count requests
    /// per token or per account, not per config block.
    pub(super) fn assign_default_budgets(
        &self,
        sources: &mut [SourceConfig],
        budgets: &mut BTreeMap<String, BudgetConfig>,
        target: f64,
    ) -> Result<(), ConfigError> {
        for i in 0..sources.len() {
            let this = &sources[i];
            let peers: Vec<&SourceConfig> =
                sources.iter().filter(|s| this.same_token_as(s)).collect();
            let named: Vec<&str> = peers
                .iter()
                .map(|s| s.budget.as_str())
                .filter(|b| !b.is_empty())
                .collect();
            if let Some(other) = named.iter().find(|b| Some(*b) != named.first()) {
                return Err(self.err(
                    source_key(i, &this.name, "budget"),
                    format!(
                        "sources with the same token name different budgets ({:?} and {:?}), but the pool counts their requests together",
                        named.first().copied().unwrap_or_default(),
                        other
                    ),
                    "give every source that uses this token the same `budget`",
                ));
            }
            let shared = this.settings.shared_with_token();
            if let Some((key, theirs)) = peers
                .iter()
                .filter(|s| s.kind() == this.kind())
                .filter_map(|s| s.settings.shared_with_token())
                .find(|s| Some(s) != shared.as_ref())
            {
                let ours = shared.map(|(_, v)| v).unwrap_or_default();
                return Err(self.err(
                    source_key(i, &this.name, key),
                    format!(
                        "sources with the same token disagree on the {key} ({ours} and {theirs})"
                    ),
                    &format!("set the same {key} on every source that uses this token"),
                ));
            }
            if !this.budget.is_empty() {
                continue;
            }
            // The limits of the token's default budget: those its kinds give, where they
            // are not merely assumed (a generic block without `limits`); they must agree.
            let stated: Vec<&SourceConfig> = peers
                .iter()
                .copied()
                .filter(|s| !s.settings.limits_assumed())
                .collect();
            let limits_of = |s: &SourceConfig| s.settings.default_limits().0;
            // Peers are in the file's order: the first that disagrees with the first is named.
            if let (true, Some(first)) = (named.is_empty(), stated.first()) {
                if let Some(second) = stated.iter().find(|s| limits_of(s) != limits_of(first)) {
                    let at = sources
                        .iter()
                        .position(|s| std::ptr::eq(s, *second))
                        .unwrap_or(i);
                    let show = |s: &SourceConfig| {
                        let windows: Vec<String> =
                            limits_of(s).iter().map(ToString::to_string).collect();
                        windows.join(", ")
                    };
                    return Err(self.err(
                        source_key(at, &second.name, "limits"),
                        format!(
                            "sources {:?} and {:?} use the same token with different limits ({} and {}), but the API counts their requests together",
                            first.name,
                            second.name,
                            show(first),
                            show(second)
                        ),
                        "give them the same limits, or one [budgets.NAME] that both name with `budget`",
                    ));
                }
            }
            let budget = match named.first() {
                Some(name) => name.to_string(),
                None => {
                    let first = peers.first().copied().unwrap_or(this);
                    let name = format!("auto:{}", first.name);
                    let (limits, origin) = stated
                        .first()
                        .copied()
                        .unwrap_or(first)
                        .settings
                        .default_limits();
                    budgets.entry(name.clone()).or_insert_with(|| BudgetConfig {
                        name: name.clone(),
                        limits,
                        origin,
                        target,
                    });
                    name
                }
            };
            sources[i].budget = budget;
        }
        Ok(())
    }
}
