//! TOML errors that name the file, the line and the key, and never quote a value: the value
//! on that line could be a secret someone pasted where it does not belong.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::error::ConfigError;

/// Maps a TOML error to a ConfigError without quoting the offending line.
pub(super) fn toml_error(file: &str, text: &str, err: &toml::de::Error) -> ConfigError {
    let (key, line) = match err.span() {
        Some(span) => {
            let line_no = line_of(text, span.start);
            let line = text.lines().nth(line_no - 1).unwrap_or("");
            (key_on_line(line), line_no)
        }
        None => ("(document)".to_string(), 0),
    };
    error_at(file, key, line, err.message().trim().to_string())
}

fn error_at(file: &str, key: String, line: usize, message: String) -> ConfigError {
    let fix = if message.contains("unknown field") {
        "remove the key or correct its spelling; config.example.toml documents every key"
    } else if message.contains("missing field") {
        "add the key; config.example.toml documents every key"
    } else if message.contains("unknown variant") {
        "use one of the values listed above"
    } else {
        "correct the TOML at that line; config.example.toml shows the expected form"
    };
    let key = if line > 0 {
        format!("line {line}, {key}")
    } else {
        key
    };
    ConfigError::new(file, key, message, fix)
}

/// The 1-based line of byte `offset` in `text`.
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(0, |head| head.matches('\n').count())
        + 1
}

/// The key or table header on a line, never its value.
pub(super) fn key_on_line(line: &str) -> String {
    let trimmed = line.trim();
    if trimmed.starts_with('[') {
        return trimmed.split('#').next().unwrap_or("").trim().to_string();
    }
    match trimmed.split_once('=') {
        Some((key, _)) => format!("`{}`", key.trim().trim_matches('"')),
        None => "(this line)".to_string(),
    }
}

/// An error of `key` of a source block, on the line the key was written.
pub(super) fn error_on_key(
    file: &str,
    key: &str,
    lines: &BTreeMap<String, usize>,
    message: String,
) -> ConfigError {
    error_at(
        file,
        format!("`{key}`"),
        lines.get(key).copied().unwrap_or(0),
        message,
    )
}

/// Deserializes some keys of a source block as `T`. The keys were already parsed out of the
/// file, so serde's error would name no line: the keys are written out again, read from that
/// text, and the key the error points at is looked up in the file: a top-level key of the
/// block by `lines`, a key inside one of its tables by searching `file_text` below it.
pub(super) fn deserialize_keys<T: DeserializeOwned>(
    file: &str,
    file_text: &str,
    keys: &toml::Table,
    lines: &BTreeMap<String, usize>,
) -> Result<T, ConfigError> {
    let text = toml::to_string(keys).map_err(|e| {
        ConfigError::new(
            file,
            "(source)",
            format!("cannot read the block: {e}"),
            "correct the TOML; config.example.toml shows the expected form",
        )
    })?;
    toml::from_str(&text).map_err(|err| {
        let message = err.message().trim().to_string();
        let Some(start) = err.span().map(|s| s.start.min(text.len())) else {
            return error_at(file, "(source block)".to_string(), 0, message);
        };
        let upto = text.get(..start).unwrap_or_default();
        let error_line = text
            .lines()
            .nth(upto.matches('\n').count())
            .unwrap_or_default();
        // toml writes a table's plain keys first, then its tables under headers: the nearest
        // header above the error, if any, is the table the error is in.
        let header = upto
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['));
        let Some(header) = header else {
            if let Some(missing) = message.strip_prefix("missing field `") {
                // Nothing to point at but the block: its first line.
                let key = missing.split('`').next().unwrap_or_default();
                let first = lines.values().min().copied().unwrap_or(0);
                return error_at(file, format!("`{key}`"), first, message);
            }
            return match top_level_key(&key_on_line(error_line), lines) {
                Some(key) => error_on_key(file, &key, lines, message),
                None => error_at(file, "(source block)".to_string(), 0, message),
            };
        };
        let Some(table) = top_level_key(header, lines) else {
            return error_at(file, "(source block)".to_string(), 0, message);
        };
        let inner = quoted_field(&message)
            .unwrap_or_else(|| key_on_line(error_line).trim_matches('`').to_string());
        let from = lines.get(&table).copied().unwrap_or(1);
        let line = file_text
            .lines()
            .enumerate()
            .skip(from.saturating_sub(1))
            .find(|(_, l)| key_on_line(l) == format!("`{inner}`"))
            .map_or(from, |(n, _)| n + 1);
        error_at(file, format!("`{table}` … `{inner}`"), line, message)
    })
}

/// The field an "unknown field `x`" or "missing field `x`" message names.
fn quoted_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next().map(str::to_string)
}

/// `key` as one of the block's own keys: `` `tier` `` → `tier`, `[endpoints.query]` →
/// `endpoints`.
fn top_level_key(key: &str, lines: &BTreeMap<String, usize>) -> Option<String> {
    let bare = key.trim_matches(|c| matches!(c, '`' | '[' | ']'));
    let first = bare.split('.').next()?.trim_matches('"');
    lines.contains_key(first).then(|| first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_on_line_never_returns_the_value() {
        assert_eq!(key_on_line("  tokn = \"s3cr3t\""), "`tokn`");
        assert_eq!(key_on_line("[[sources]] # x"), "[[sources]]");
    }

    #[test]
    fn an_error_in_some_keys_names_the_key_and_its_line_in_the_file() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Keys {
            a: Option<u32>,
            b: Option<u32>,
        }
        let keys: toml::Table = toml::from_str("a = 1\nb = \"two\"").unwrap();
        let lines = BTreeMap::from([("a".to_string(), 7), ("b".to_string(), 9)]);
        let err = deserialize_keys::<Keys>("f.toml", "", &keys, &lines).unwrap_err();
        assert_eq!(err.key, "line 9, `b`");
    }
}
