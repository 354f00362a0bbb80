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

/// What a kind assumes where a block says nothing, and how it is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindDefaults {
    /// The `kind` in the config.
    pub kind: &'static str,
    /// The `pool` label of every series the source exports.
    pub pool: &'static str,
    /// The API's root when the block names none; `None` makes `base_url` required.
    pub base_url: Option<&'static str>,
    /// The poll interval when the block sets neither `interval` nor `schedule`.
    pub interval: Duration,
}

/// What one kind of source read from its block: its own settings, and what the shared parts
/// (plan, budgets, client, `check`) need to know of it. Comparing and downcasting come with
/// `SettingsEq`, which every `PartialEq` settings type has.
pub trait KindSettings: SettingsEq {
    fn defaults(&self) -> KindDefaults;
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
    /// The source's own TLS trust and client certificate, where it has them.
    fn tls(&self) -> Option<crate::client::SourceTls> {
        None
    }
    /// Requests one poll costs at the least (one page of each list), until polls tell.
    fn min_requests_per_poll(&self) -> u32;
    /// What one poll requests, for `check`.
    fn requests(&self) -> String;
}

/// Equality across kinds, so a reload can tell an unchanged source, and the downcast a kind
/// makes to read its own settings back.
pub trait SettingsEq: Any + fmt::Debug + Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn eq_settings(&self, other: &dyn Any) -> bool;
}

impl<T: Any + PartialEq + fmt::Debug + Send + Sync> SettingsEq for T {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn eq_settings(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}

/// A source's kind settings as `SourceConfig` holds them: compared through `same_as`, so
/// `SourceConfig` derives `PartialEq` and a field added to it cannot be left out of the
/// comparison a reload makes.
#[derive(Debug, Clone)]
pub struct Settings(pub Arc<dyn KindSettings>);

impl PartialEq for Settings {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_settings(other.0.as_any())
    }
}

impl std::ops::Deref for Settings {
    type Target = dyn KindSettings;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl From<Arc<dyn KindSettings>> for Settings {
    fn from(settings: Arc<dyn KindSettings>) -> Self {
        Settings(settings)
    }
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

    /// The bytes of a file the block names at `key` (relative to the config's folder).
    pub fn read_file(&self, key: &str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
        let full = self.loader.base_dir.join(path);
        std::fs::read(&full).map_err(|e| {
            self.err(
                key,
                format!("cannot read {}: {e}", full.display()),
                "give a readable file (a relative path is read from the config file's folder)",
            )
        })
    }

    /// A problem that does not stop `check` or `run`.
    pub fn warn(&mut self, key: &str, problem: &str) {
        let at = self.at(key);
        self.loader
            .warnings
            .push(format!("{}: {at}: {problem}", self.loader.file));
    }
}

/// The field names a struct's `Deserialize` asks for: what a kind's `Keys` parses, to test
/// against the key list it declares.
#[cfg(test)]
pub fn fields_parsed<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
    use serde::de::{self, Visitor};

    #[derive(Debug)]
    struct Asked(Vec<&'static str>);

    impl fmt::Display for Asked {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    impl std::error::Error for Asked {}

    impl de::Error for Asked {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Asked(Vec::new())
        }
    }

    /// Answers a struct's request with the names it asked for, as an error.
    struct Fields;

    impl<'de> de::Deserializer<'de> for Fields {
        type Error = Asked;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Asked> {
            Err(Asked(Vec::new()))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Asked> {
            Err(Asked(fields.to_vec()))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    match T::deserialize(Fields) {
        Ok(_) => Vec::new(),
        Err(Asked(mut fields)) => {
            fields.sort_unstable();
            fields
        }
    }
}

/// `keys`, sorted, for comparing with `fields_parsed`.
#[cfg(test)]
pub fn sorted(keys: &[&'static str]) -> Vec<&'static str> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys
}
