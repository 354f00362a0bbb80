//! Lenient field types shared by the pools' serde models. Pools send numbers as JSON numbers
//! or as numeric strings, and null where a value is missing; both decode here.

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::value::RawValue;
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
    let text = timestamp?.trim();
    if let Ok(number) = text.parse::<f64>() {
        return epoch(number);
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(parsed.timestamp() as f64 + f64::from(parsed.timestamp_subsec_millis()) / 1000.0)
}

/// Above this an epoch number is in milliseconds: as seconds it would be past the year 5000.
const EPOCH_MILLIS_FROM: f64 = 1e11;

/// Unix seconds of an epoch number in seconds or milliseconds; None for a negative or
/// non-finite one.
fn epoch(number: f64) -> Option<f64> {
    if !number.is_finite() || number < 0.0 {
        return None;
    }
    Some(if number >= EPOCH_MILLIS_FROM {
        number / 1000.0
    } else {
        number
    })
}

/// A timestamp as pools send it: RFC 3339 text, or epoch seconds or milliseconds as a number
/// or a numeric string. An unreadable one is absent, not an error: a time is one series of a
/// worker, never worth the worker.
pub fn timestamp<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
        Other(de::IgnoredAny),
    }
    Ok(match Option::<Raw>::deserialize(deserializer)? {
        Some(Raw::Number(n)) => epoch(n),
        Some(Raw::Text(t)) => unix_seconds(Some(&t)),
        Some(Raw::Other(_)) | None => None,
    })
}

/// Text a pool may send as a string, a number or a boolean (a worker named 1001): all read
/// as text.
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct TextVisitor;
    impl<'de> Visitor<'de> for TextVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string, a number or a boolean")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(TextVisitor)
        }
    }
    deserializer.deserialize_option(TextVisitor)
}

/// An item as `T` if it is an object that reads as one. Only an object: serde would read a
/// list's elements into a struct's fields in order, which no pool means. The item arrives as
/// its raw text, so a good one is read once, not built as a JSON tree first.
fn entry<T: DeserializeOwned>(raw: &RawValue) -> Option<T> {
    raw.get()
        .starts_with('{')
        .then(|| serde_json::from_str(raw.get()).ok())
        .flatten()
}

/// A list of items of which any one may be unreadable: those are skipped and counted, so one
/// odd worker never fails the poll of the rest. `null` is an empty list.
#[derive(Debug, Clone, PartialEq)]
pub struct Items<T> {
    pub read: Vec<T>,
    pub unreadable: usize,
}

impl<T> Default for Items<T> {
    fn default() -> Self {
        Items {
            read: Vec::new(),
            unreadable: 0,
        }
    }
}

impl<T> Items<T> {
    /// How many items the answer held, read or not.
    pub fn len(&self) -> usize {
        self.read.len() + self.unreadable
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds the items of another page.
    pub fn append(&mut self, page: Items<T>) {
        self.read.extend(page.read);
        self.unreadable += page.unreadable;
    }
}

/// A field that must be present (`null` may stand for empty): serde lets a missing field of a
/// type that reads `null` pass as `null`, unless it is read through a function like this.
pub fn required<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    T::deserialize(d)
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Items<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut items = Items::default();
        let raw = Option::<Vec<Box<RawValue>>>::deserialize(deserializer)?;
        for value in raw.unwrap_or_default() {
            match entry(&value) {
                Some(item) => items.read.push(item),
                None => items.unreadable += 1,
            }
        }
        Ok(items)
    }
}

/// Like `Items`, for a map keyed by name (OurPool's workers). A name the object gives twice
/// keeps its first entry, and the repeats are counted (a JSON object may repeat a key, and a
/// map that kept the last would flip a worker silently).
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<T> {
    pub read: std::collections::BTreeMap<String, T>,
    pub unreadable: usize,
    pub repeated: usize,
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries {
            read: Default::default(),
            unreadable: 0,
            repeated: 0,
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of entries, or null")
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries::default())
            }

            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries::default())
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_map(self)
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Entries::default();
                while let Some((name, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    if entries.read.contains_key(&name) {
                        entries.repeated += 1;
                        continue;
                    }
                    match entry(&value) {
                        Some(item) => {
                            entries.read.insert(name, item);
                        }
                        None => entries.unreadable += 1,
                    }
                }
                Ok(entries)
            }
        }
        deserializer.deserialize_option(EntriesVisitor(std::marker::PhantomData))
    }
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
    fn odd_items_are_skipped_and_counted_and_odd_fields_read_leniently() {
        #[derive(Deserialize, Debug, PartialEq)]
        struct Worker {
            #[serde(default, deserialize_with = "text")]
            name: Option<String>,
            #[serde(default, deserialize_with = "timestamp")]
            at: Option<f64>,
            #[serde(default)]
            rate: Option<Num>,
        }
        let items: Items<Worker> = serde_json::from_str(
            r#"[{"name":1001,"at":1800000000},{"name":"b","at":"2027-01-15T08:00:00Z"},
                {"name":"c","at":1800000000000},{"name":"d","rate":{"x":1}},"junk",
                {"name":true,"at":"soon"},{"name":null}]"#,
        )
        .unwrap();
        assert_eq!(items.unreadable, 2);
        let names: Vec<Option<&str>> = items.read.iter().map(|w| w.name.as_deref()).collect();
        assert_eq!(
            names,
            [Some("1001"), Some("b"), Some("c"), Some("true"), None]
        );
        let times: Vec<Option<f64>> = items.read.iter().map(|w| w.at).collect();
        assert_eq!(times, [Some(1.8e9), Some(1.8e9), Some(1.8e9), None, None]);
        let none: Items<Worker> = serde_json::from_str("null").unwrap();
        assert_eq!(none, Items::default());
        assert!(serde_json::from_str::<Items<Worker>>("{}").is_err());
        let map: Entries<Worker> = serde_json::from_str(r#"{"a":{"rate":1},"b":[1]}"#).unwrap();
        assert_eq!((map.read.len(), map.unreadable), (1, 1));
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
