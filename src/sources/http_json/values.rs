//! A JSON value read as a mapping's number: plain numbers, numbers in strings (with the
//! separators and units the mapping names), booleans, words through `values`, and times.
//! Whatever the API sent, the result is a finite number or an error that quotes it, cut short.

use chrono::DateTime;
use serde_json::Value;

use super::config::{Format, Reading};

/// `raw` as `reading` says; `unit` is the unit `unit_from` found beside it, if it names one.
pub(super) fn number(reading: &Reading, raw: &Value, unit: Option<&str>) -> Result<f64, String> {
    let value = match reading.format {
        Format::Rfc3339 => match raw {
            Value::String(s) => {
                let at = DateTime::parse_from_rfc3339(s.trim())
                    .map_err(|_| format!("{:?} is not an RFC 3339 time", shorten(s)))?;
                at.timestamp() as f64 + f64::from(at.timestamp_subsec_nanos()) / 1e9
            }
            _ => return Err("an RFC 3339 time is a string".to_string()),
        },
        Format::EpochMilliseconds => plain(reading, raw)? / 1000.0,
        Format::Number => match &reading.values {
            Some(values) => word(values, reading.default, raw)?,
            None => with_unit(reading, raw, unit)?,
        },
    };
    scaled(value, reading.scale)
}

/// 1789876 * 0.01 is 17898.760000000002; / 100 is 17898.76, as an operator expects.
fn scaled(value: f64, scale: f64) -> Result<f64, String> {
    let inverse = 1.0 / scale;
    let scaled = if scale.abs() < 1.0 && (inverse - inverse.round()).abs() < 1e-9 {
        value / inverse.round()
    } else {
        value * scale
    };
    if scaled.is_finite() {
        Ok(scaled)
    } else {
        Err(format!("{value} scaled by {scale} is not a finite number"))
    }
}

/// A word (or a number, or a boolean) through `values`: exactly, then in any case, then
/// as the number a key spells (`1.0` finds `"1"`); else `default`.
fn word(
    values: &std::collections::BTreeMap<String, f64>,
    default: Option<f64>,
    raw: &Value,
) -> Result<f64, String> {
    let text = match raw {
        Value::String(s) => s.trim().to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => return Err("an object or list where a word belongs".to_string()),
    };
    let as_number = match raw {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    };
    values
        .get(&text)
        .or_else(|| {
            values
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&text))
                .map(|(_, v)| v)
        })
        .or_else(|| {
            let n = as_number?;
            values
                .iter()
                .find(|(k, _)| k.trim().parse::<f64>().ok() == Some(n))
                .map(|(_, v)| v)
        })
        .copied()
        .or(default)
        .ok_or_else(|| {
            let known: Vec<&str> = values.keys().map(String::as_str).take(10).collect();
            format!(
                "{:?} is none of the words mapped ({}), and there is no default",
                shorten(&text),
                known.join(", ")
            )
        })
}

/// A number that may carry a unit: in its own text ("12.5 TH/s"), or beside it (`unit`).
fn with_unit(reading: &Reading, raw: &Value, unit: Option<&str>) -> Result<f64, String> {
    let Some(units) = &reading.units else {
        return plain(reading, raw);
    };
    let factor = |name: &str| {
        units
            .get(name)
            .or_else(|| {
                units
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .copied()
    };
    let known = || {
        units
            .keys()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(unit) = unit {
        let unit = unit.trim();
        let f = factor(unit)
            .ok_or_else(|| format!("the unit {:?} is none of {}", shorten(unit), known()))?;
        return Ok(plain(reading, raw)? * f);
    }
    match raw {
        Value::String(s) => {
            let text = s.trim();
            // The longest unit that ends the text: "PH/s" before "H/s".
            let mut names: Vec<&String> = units.keys().filter(|k| !k.is_empty()).collect();
            names.sort_by_key(|k| std::cmp::Reverse(k.len()));
            let found = names.into_iter().find_map(|name| {
                let cut = text.len().checked_sub(name.len())?;
                let (number, end) = (text.get(..cut)?, text.get(cut..)?);
                end.eq_ignore_ascii_case(name)
                    .then(|| (number.trim_end(), factor(name)))
            });
            match found {
                Some((number, Some(f))) => Ok(plain_text(reading, number)? * f),
                _ => match factor("") {
                    Some(f) => Ok(plain_text(reading, text)? * f),
                    None => Err(format!(
                        "{:?} ends in none of the units {} (add \"\" = 1 for a number without one)",
                        shorten(text),
                        known()
                    )),
                },
            }
        }
        Value::Number(_) => match factor("") {
            Some(f) => Ok(plain(reading, raw)? * f),
            None => Err(format!(
                "a number without a unit, and `units` has none for that ({}); add \"\" = <factor>",
                known()
            )),
        },
        _ => plain(reading, raw),
    }
}

/// A number as it is, a numeric string, or a boolean (also "true"/"false" in any case).
fn plain(reading: &Reading, raw: &Value) -> Result<f64, String> {
    match raw {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| "a number out of range".to_string()),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        Value::String(s) => plain_text(reading, s),
        _ => Err("an object or list where a number belongs".to_string()),
    }
}

fn plain_text(reading: &Reading, text: &str) -> Result<f64, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        return Ok(1.0);
    }
    if text.eq_ignore_ascii_case("false") {
        return Ok(0.0);
    }
    let mut number: String = match reading.thousands_separator {
        Some(sep) => text.chars().filter(|c| *c != sep).collect(),
        None => text.to_string(),
    };
    if let Some(sep) = reading.decimal_separator {
        number = number.replace(sep, ".");
    }
    // Only digits, a sign, a point and an exponent: Rust would also read "inf" and "NaN".
    let numeric = number
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    match number.parse::<f64>() {
        Ok(n) if numeric && n.is_finite() => Ok(n),
        _ => Err(format!("{:?} is not a number", shorten(text))),
    }
}

/// Pool text quoted in an error, cut short.
fn shorten(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reading() -> Reading {
        Reading {
            format: Format::Number,
            scale: 1.0,
            values: None,
            default: None,
            units: None,
            unit_from: None,
            thousands_separator: None,
            decimal_separator: None,
        }
    }

    #[test]
    fn times_become_unix_seconds() {
        let rfc = Reading {
            format: Format::Rfc3339,
            ..reading()
        };
        assert_eq!(
            number(&rfc, &json!("2018-06-19T10:02:19.5Z"), None).unwrap(),
            1_529_402_539.5
        );
        assert_eq!(
            number(&rfc, &json!("2018-06-19T12:02:19+02:00"), None).unwrap(),
            1_529_402_539.0
        );
        assert!(number(&rfc, &json!("yesterday"), None).is_err());
        assert!(number(&rfc, &json!(1529402539), None).is_err());
        let ms = Reading {
            format: Format::EpochMilliseconds,
            ..reading()
        };
        assert_eq!(
            number(&ms, &json!(1587712919000u64), None).unwrap(),
            1_587_712_919.0
        );
        assert_eq!(
            number(&ms, &json!("1587712919500"), None).unwrap(),
            1_587_712_919.5
        );
    }

    #[test]
    fn booleans_words_and_numbers_match_in_any_spelling() {
        for (raw, want) in [
            (json!("TRUE"), 1.0),
            (json!("False"), 0.0),
            (json!(true), 1.0),
        ] {
            assert_eq!(number(&reading(), &raw, None).unwrap(), want, "{raw}");
        }
        let words = Reading {
            values: Some(
                [
                    ("1".to_string(), 1.0),
                    ("ACTIVE".to_string(), 1.0),
                    ("2".to_string(), 0.0),
                ]
                .into(),
            ),
            ..reading()
        };
        assert_eq!(number(&words, &json!(1.0), None).unwrap(), 1.0);
        assert_eq!(number(&words, &json!(2), None).unwrap(), 0.0);
        assert_eq!(number(&words, &json!("2.0"), None).unwrap(), 0.0);
        assert_eq!(number(&words, &json!("active"), None).unwrap(), 1.0);
        assert!(number(&words, &json!(3), None).is_err());
        assert!(number(&reading(), &json!("inf"), None).is_err());
        assert!(number(&reading(), &json!("NaN"), None).is_err());
    }

    #[test]
    fn units_and_separators_are_read_where_a_rule_says() {
        let units = Reading {
            units: Some(
                [
                    ("TH/s".to_string(), 1e12),
                    ("PH/s".to_string(), 1e15),
                    ("H/s".to_string(), 1.0),
                ]
                .into(),
            ),
            thousands_separator: Some(','),
            ..reading()
        };
        assert_eq!(number(&units, &json!("12.5 TH/s"), None).unwrap(), 12.5e12);
        assert_eq!(number(&units, &json!("1,250ph/s"), None).unwrap(), 1.25e18);
        assert_eq!(number(&units, &json!("7 H/s"), None).unwrap(), 7.0);
        assert_eq!(
            number(&units, &json!("16.41"), Some("TH/s")).unwrap(),
            16.41e12
        );
        assert_eq!(number(&units, &json!(2), Some("ph/s")).unwrap(), 2e15);
        assert!(
            number(&units, &json!("12.5"), None).is_err(),
            "no unit, no \"\""
        );
        assert!(number(&units, &json!("12.5 EH/s"), None).is_err());
        assert!(number(&units, &json!("1"), Some("ZH/s")).is_err());
        let european = Reading {
            thousands_separator: Some('.'),
            decimal_separator: Some(','),
            ..reading()
        };
        assert_eq!(number(&european, &json!("1.234,5"), None).unwrap(), 1234.5);
        let scaled = Reading {
            scale: 0.01,
            ..reading()
        };
        assert_eq!(number(&scaled, &json!("1789876"), None).unwrap(), 17898.76);
    }
}
