//! The seam between the shared config and the kinds of source. The config module reads what
//! every source has (name, token, schedule, budget, HTTP settings); each kind, in its own
//! folder under `sources/`, reads and validates the keys only it takes, through a
//! `KindContext`, and answers with its `KindSettings`. The config module never names a kind:
//! the kinds are handed to `Config::load` as a `SourceKinds`.

use std::any::Any;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::auth::Auth;
use super::toml_errors::deserialize_keys;
use super::{Loader, RateWindow, SourceConfig, source_key};
use crate::error::ConfigError;
use crate::secret::Secret;

/// What one kind of source read from its block: its own settings, and what the shared parts
/// (plan, budgets, client, `check`) need to know of it.
pub trait KindSettings: fmt::Debug + Send + Sync + 'static {
    /// The `kind` in the config.
    fn kind(&self) -> &'static str;
    /// The `pool` label of every series the source exports.
    fn pool(&self) -> &'static str {
        self.kind()
    }
    /// The API's root when the block names none; `None` makes `base_url` required.
    fn default_base_url(&self) -> Option<&'static str>;
    /// The poll interval when the block sets neither `interval` nor `schedule`.
    fn default_interval(&self) -> Duration;
    /// How the token travels.
    fn auth(&self) -> Auth;
    /// The limits of a token when no `budget` is named, and where they come from.
    fn default_limits(&self) -> (Vec<RateWindow>, String);
    /// Whether `default_limits` is only an assumption (a generic API whose block gives
    /// none): a peer on the same token that knows its limits decides the budget.
    fn limits_assumed(&self) -> bool {
        false
    }
    /// A setting every source sharing a token must agree on, as (key, value): the pool
    /// counts their requests together, so they cannot disagree on the budget's size.
    fn shared_with_token(&self) -> Option<(&'static str, String)> {
        None
    }
    /// Requests one poll costs at the least (one page of each list), until polls tell.
    fn min_requests_per_poll(&self) -> u32;
    /// What one poll requests, for `check`.
    fn requests(&self) -> String;
    fn as_any(&self) -> &dyn Any;
    /// Equality across kinds, so a reload can tell an unchanged source.
    fn same_as(&self, other: &dyn KindSettings) -> bool;
}

/// `same_as` for any kind whose settings compare with `==`.
pub fn same_settings<T: KindSettings + PartialEq>(this: &T, other: &dyn KindSettings) -> bool {
    other.as_any().downcast_ref::<T>() == Some(this)
}

/// Every kind of source the exporter knows: given to `Config::load`, so that the config
/// module reads the shared keys and leaves the rest to the kind.
pub trait SourceKinds: Sync {
    /// Every kind's name, as error messages list them.
    fn names(&self) -> Vec<&'static str>;
    /// The keys only `kind` takes (beside the shared ones), or `None` for an unknown kind.
    fn keys(&self, kind: &str) -> Option<&'static [&'static str]>;
    /// Reads `kind`'s own keys.
    fn parse(
        &self,
        kind: &str,
        cx: &mut KindContext<'_, '_>,
    ) -> Result<Arc<dyn KindSettings>, ConfigError>;
    /// What only all the sources together can get wrong, as (index of the source, problem,
    /// fix).
    fn check_together(&self, _sources: &[SourceConfig]) -> Result<(), (usize, String, String)> {
        Ok(())
    }
}

/// What a kind gets to read its keys: the keys themselves, and the shared means to report a
/// precise error, read a secret or a duration.
pub struct KindContext<'l, 'a> {
    pub(super) loader: &'l mut Loader<'a>,
    pub(super) index: usize,
    pub(super) name: String,
    pub(super) keys: toml::Table,
    /// The line each key of the block starts on, for errors serde reports.
    pub(super) lines: std::collections::BTreeMap<String, usize>,
}

impl KindContext<'_, '_> {
    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How an error names `key` of this block: `sources[2].currency (source "lux")`.
    pub fn at(&self, key: &str) -> String {
        source_key(self.index, &self.name, key)
    }

    pub fn err(&self, key: &str, problem: impl Into<String>, fix: &str) -> ConfigError {
        ConfigError::new(self.loader.file, self.at(key), problem, fix)
    }

    /// Whether the block sets `key`, one of the kind's own.
    pub fn has(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// Whether the block sets `key`, shared or the kind's.
    pub fn block_sets(&self, key: &str) -> bool {
        self.lines.contains_key(key)
    }

    /// The kind's keys as `T` (a `deny_unknown_fields` struct of `Option`s); a type error
    /// names the key and its line, never the value.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        deserialize_keys(self.loader.file, self.loader.text, &self.keys, &self.lines)
    }

    /// A duration of at least `min`.
    pub fn duration(&self, key: &str, value: &str, min: Duration) -> Result<Duration, ConfigError> {
        self.loader.duration(&self.at(key), value, min)
    }

    /// A secret from `<prefix>_env` or `<prefix>_file`, read like the token; the second
    /// value says where it came from, safe to print. `None` where `check` could not read it.
    pub fn secret(
        &mut self,
        prefix: &str,
        env: Option<&str>,
        file: Option<&PathBuf>,
    ) -> Result<(Option<Secret>, String), ConfigError> {
        let (index, name) = (self.index, self.name.as_str());
        let at = |key: &str| source_key(index, name, key);
        self.loader.secret(&at, prefix, env, file)
    }

    /// A problem that does not stop `check` or `run`.
    pub fn warn(&mut self, key: &str, problem: &str) {
        let at = self.at(key);
        self.loader
            .warnings
            .push(format!("{}: {at}: {problem}", self.loader.file));
    }
}
