//! Lenient field types shared by the pools' serde models. Pools send numbers as JSON numbers
//! or as numeric strings, and null where a value is missing; both decode here.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// A number that may arrive as a JSON number or a numeric string ("1035827914295214").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumVisitor;
        impl Visitor<'_> for NumVisitor {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a numeric string")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Num, E> {
                v.trim()
                    .parse::<f64>()
                    .map(Num)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        deserializer.deserialize_any(NumVisitor)
    }
}

/// `Option<Num>` as a plain f64 option, for terse mapping code.
pub fn num(value: Option<Num>) -> Option<f64> {
    value.map(|n| n.0)
}

/// Unix seconds of an RFC 3339 / ISO-8601 timestamp; None when absent or unreadable.
pub fn unix_seconds(timestamp: Option<&str>) -> Option<f64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(timestamp?.trim()).ok()?;
    Some(parsed.timestamp() as f64 + f64::from(parsed.timestamp_subsec_millis()) / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        #[serde(default)]
        v: Option<Num>,
    }

    fn parse(json: &str) -> Result<Option<f64>, serde_json::Error> {
        serde_json::from_str::<Holder>(json).map(|h| num(h.v))
    }

    #[test]
    fn numbers_strings_nulls_and_absence() {
        assert_eq!(parse(r#"{"v":8070}"#).unwrap(), Some(8070.0));
        assert_eq!(parse(r#"{"v":-1.5}"#).unwrap(), Some(-1.5));
        assert_eq!(
            parse(r#"{"v":"1035827914295214"}"#).unwrap(),
            Some(1035827914295214.0)
        );
        assert_eq!(parse(r#"{"v":null}"#).unwrap(), None);
        assert_eq!(parse(r#"{}"#).unwrap(), None);
        assert!(parse(r#"{"v":"fast"}"#).is_err());
        assert!(parse(r#"{"v":[1]}"#).is_err());
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            unix_seconds(Some("2025-01-20T12:00:00Z")),
            Some(1737374400.0)
        );
        assert_eq!(
            unix_seconds(Some("2025-01-20T13:00:00+01:00")),
            Some(1737374400.0)
        );
        assert_eq!(unix_seconds(Some("yesterday")), None);
        assert_eq!(unix_seconds(None), None);
    }
}
