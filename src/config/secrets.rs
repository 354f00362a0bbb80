//! Reading secrets: from an environment variable or a file, never from the TOML itself, and
//! no message built here ever holds a secret's value.

use std::path::{Path, PathBuf};

use super::{Loader, SecretMode};
use crate::error::ConfigError;
use crate::secret::Secret;

/// Keys that would hold a secret inline; refused before anything else so no message echoes them.
pub(super) const INLINE_SECRET_KEYS: &[&str] =
    &["token", "api_key", "apikey", "key", "secret", "password"];

/// Refuses a secret written inline in a source block or in any table inside it.
pub(super) fn reject_inline_secrets(file: &str, table: &toml::Table) -> Result<(), ConfigError> {
    let Some(toml::Value::Array(sources)) = table.get("sources") else {
        return Ok(());
    };
    for (i, source) in sources.iter().enumerate() {
        let Some(source) = source.as_table() else {
            continue;
        };
        let nested = source
            .iter()
            .filter_map(|(name, value)| value.as_table().map(|t| (format!("{name}."), t)));
        for (prefix, table) in std::iter::once((String::new(), source)).chain(nested) {
            if let Some(key) = INLINE_SECRET_KEYS.iter().find(|k| table.contains_key(**k)) {
                let (what, setting) = if prefix.is_empty() {
                    ("token", "token".to_string())
                } else {
                    ("secret", format!("{prefix}secret"))
                };
                return Err(ConfigError::new(
                    file,
                    format!("sources[{i}].{prefix}{key}"),
                    format!("a {what} is never written inline in the config file"),
                    format!(
                        "remove the key; put the {what} in an environment variable and set \
                         {setting}_env = \"VAR_NAME\", or in a file readable only by the \
                         exporter and set {setting}_file = \"/path/to/file\""
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether a valid variable name looks like a token pasted where its name belongs: a long
/// run of mixed letters and digits between underscores (`up_k_3f9c0a...`, 16 or more with 3
/// of each), or a vendor's token prefix. Names people give variables (`UP_API_KEY`,
/// `OURPOOL_TOKEN_2024`, `KEY_SHA256HMAC`) have neither.
fn looks_like_a_secret(name: &str) -> bool {
    const TOKEN_PREFIXES: &[&str] = &["up_k_", "qp_prod_sk_", "qp_test_sk_", "lxk_"];
    let lower = name.to_ascii_lowercase();
    if TOKEN_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return true;
    }
    name.split('_').any(|part| {
        let digits = part.chars().filter(char::is_ascii_digit).count();
        let letters = part.chars().filter(char::is_ascii_alphabetic).count();
        part.len() >= 16 && digits >= 3 && letters >= 3
    })
}

/// A POSIX environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_variable_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Loader<'_> {
    /// A secret from `<prefix>_env` or `<prefix>_file`; `at` names a key of the block. With
    /// `SecretMode::Require` an unreadable one is collected and refused once every source is
    /// read; otherwise it is a warning and the secret is `None`.
    pub(super) fn secret(
        &mut self,
        at: &dyn Fn(&str) -> String,
        prefix: &str,
        env: Option<&str>,
        file: Option<&PathBuf>,
    ) -> Result<(Option<Secret>, String), ConfigError> {
        let (env_key, file_key) = (format!("{prefix}_env"), format!("{prefix}_file"));
        let (value, origin, key) = match (env, file) {
            (Some(_), Some(_)) => {
                return Err(self.err(
                    at(&file_key),
                    format!("both {env_key} and {file_key} are set"),
                    "keep one of them",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    at(&env_key),
                    format!("no {prefix} configured"),
                    &format!(
                        "set {env_key} = \"VAR_NAME\" (an environment variable holding the {prefix}) or {file_key} = \"/path/to/file\""
                    ),
                ));
            }
            (Some(var), None) => {
                if !is_variable_name(var) {
                    // A token pasted here is not a name: say so without repeating it.
                    return Err(self.err(
                        at(&env_key),
                        "not the name of an environment variable (letters, digits and '_', not starting with a digit); the value is not shown, in case it is a token",
                        &format!(
                            "set {env_key} to the variable's name, e.g. {env_key} = \"UP_API_KEY\", and put the {prefix} in that variable"
                        ),
                    ));
                }
                // A name that looks like a token is never repeated: what was found is said
                // instead, in every message and wherever the token's origin is shown.
                let shown = if looks_like_a_secret(var) {
                    format!(
                        "named in {env_key} (not shown: it looks like a token, a long run of letters and digits, not a variable's name; if it is one, put it in a variable and name that)"
                    )
                } else {
                    var.to_string()
                };
                let value = match std::env::var(var) {
                    Ok(v) => Ok(v),
                    Err(std::env::VarError::NotPresent) => {
                        Err(format!("the environment variable {shown} is not set"))
                    }
                    Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                        "the environment variable {shown} is not valid UTF-8"
                    )),
                };
                let origin = if looks_like_a_secret(var) {
                    format!("env (a name that looks like a token, not shown; see {env_key})")
                } else {
                    format!("env {var}")
                };
                (value, origin, at(&env_key))
            }
            (None, Some(path)) => {
                let full = self.base_dir.join(path);
                let value = std::fs::read_to_string(&full)
                    .map_err(|e| format!("cannot read the {prefix} file {}: {e}", full.display()));
                if value.is_ok() {
                    self.warn_if_shared(&at(&file_key), prefix, &full);
                }
                (value, format!("file {}", full.display()), at(&file_key))
            }
        };
        let value = value.and_then(|v| {
            let v = v.trim().to_string();
            if v.is_empty() {
                Err(format!("the {prefix} from {origin} is empty"))
            } else {
                Ok(v)
            }
        });
        match value {
            Ok(v) => Ok((Some(Secret::new(v)), origin)),
            Err(problem) => {
                match self.mode {
                    SecretMode::Require => self.unreadable.push((key, problem)),
                    SecretMode::WarnIfMissing => self.warnings.push(format!(
                        "{}: {key}: {problem}; `run` will refuse to start until it is readable",
                        self.file
                    )),
                }
                Ok((None, origin))
            }
        }
    }

    /// A secret file that group or others may read is a secret every local user can see.
    #[cfg(unix)]
    fn warn_if_shared(&mut self, key: &str, prefix: &str, path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(mode) = std::fs::metadata(path).map(|m| m.permissions().mode()) else {
            return;
        };
        if mode & 0o077 != 0 {
            self.warnings.push(format!(
                "{}: {key}: the {prefix} file {} is readable by group or others (mode {:o}); make it readable by the exporter's user only: chmod 600 {}",
                self.file,
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }

    #[cfg(not(unix))]
    fn warn_if_shared(&mut self, _key: &str, _prefix: &str, _path: &Path) {}

    /// One error naming every secret that cannot be read, so an operator fixes them in one go
    /// instead of one restart per secret.
    pub(super) fn refuse_unreadable_secrets(&self) -> Result<(), ConfigError> {
        let fix = "export the variable (or create the file) before starting, or point the key at where the token is";
        match self.unreadable.as_slice() {
            [] => Ok(()),
            [(key, problem)] => Err(self.err(key.clone(), problem.clone(), fix)),
            all => {
                let keys: Vec<&str> = all.iter().map(|(key, _)| key.as_str()).collect();
                let problems: String = all
                    .iter()
                    .map(|(key, problem)| format!("\n    {key}: {problem}"))
                    .collect();
                Err(self.err(
                    keys.join(", "),
                    format!("{} tokens cannot be read:{problems}", all.len()),
                    fix,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_a_secret;

    #[test]
    fn tokens_look_like_tokens_and_names_like_names() {
        for token in [
            // A vendor's prefix alone says token; a long mixed run says it anywhere.
            "up_k_x",
            "ak_3f9c0a1b2c3d4e5f60718293a4",
            "AKIAIOSFODNN7EXAMPLE1234",
            "lxk_0123456789abcdef",
            "qp_prod_sk_abcdef",
            "farm_a1b2c3d4e5f6g7h8i9",
        ] {
            assert!(looks_like_a_secret(token), "{token}");
        }
        for name in [
            "UP_API_KEY",
            "OURPOOL_TOKEN_2024",
            "API_KEY_SHA256HMAC",
            "LUXOR_KEY_FARM1",
            "my_pool_token_2",
            "BRAIINS_POOL_AUTH_TOKEN",
        ] {
            assert!(!looks_like_a_secret(name), "{name}");
        }
    }
}
