//! What each metric of a generic source is read from (`[[sources.endpoints.metrics]]`): a
//! family of the contract with its labels, or a new family that follows the naming rules.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::super::templates::{self, LabelText};
use super::{Path, by_form, json_path};
use crate::config::KindContext;
use crate::error::ConfigError;
use crate::metrics::{self, MetricDef, MetricKind};

#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub family: &'static MetricDef,
    /// Where the items are, one path per level, each read in the items of the level above;
    /// empty: the page itself is the one item.
    pub items: Vec<Path>,
    pub value: ValueSource,
    pub reading: Reading,
    /// An item without the value is skipped instead of failing the poll.
    pub optional: bool,
    /// In the family's label order.
    pub labels: Vec<LabelRule>,
}

/// Where an item's number comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSource {
    Path(Path),
    /// `value = 1`: the same number for every item (json_exporter's static value).
    Fixed(f64),
}

impl ValueSource {
    pub fn text(&self) -> String {
        match self {
            ValueSource::Path(path) => path.text.clone(),
            ValueSource::Fixed(n) => n.to_string(),
        }
    }
}

/// How the JSON value becomes a number.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub format: Format,
    pub scale: f64,
    /// Words to numbers (`online` = 1); a word not listed takes `default`, or fails the poll.
    pub values: Option<BTreeMap<String, f64>>,
    pub default: Option<f64>,
    /// Unit words to factors (`"TH/s" = 1e12`): the value ends in one, or `unit_from` names it.
    pub units: Option<BTreeMap<String, f64>>,
    pub unit_from: Option<LabelText>,
    pub thousands_separator: Option<char>,
    pub decimal_separator: Option<char>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Numbers, numeric strings, booleans (and "true"/"false" in any case).
    Number,
    /// An RFC 3339 time, as Unix seconds.
    Rfc3339,
    /// Unix milliseconds, as seconds.
    EpochMilliseconds,
}

/// One label: where its value comes from, then what is done to it.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRule {
    pub text: LabelText,
    pub trim: bool,
    pub case: Option<Case>,
    pub replace: Vec<Replace>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Lower,
    Upper,
}

/// `regex` replaced by `with` (`$1` for a group), everywhere in the value.
#[derive(Debug, Clone)]
pub struct Replace {
    pub regex: regex::Regex,
    pub with: String,
}

impl PartialEq for Replace {
    fn eq(&self, other: &Self) -> bool {
        self.regex.as_str() == other.regex.as_str() && self.with == other.with
    }
}

/// Levels of `items` a mapping may have.
const MAX_LEVELS: usize = templates::MAX_PARENT + 1;
/// A regex is compiled at load; one this large is not a label rule.
const MAX_REGEX_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMapping {
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    help: Option<String>,
    unit: Option<String>,
    items: Option<OneOrMore>,
    value: RawValue,
    format: Option<String>,
    scale: Option<f64>,
    values: Option<BTreeMap<String, f64>>,
    default: Option<f64>,
    units: Option<BTreeMap<String, f64>>,
    unit_from: Option<String>,
    thousands_separator: Option<String>,
    decimal_separator: Option<String>,
    optional: Option<bool>,
    #[serde(default)]
    labels: BTreeMap<String, RawLabel>,
}

enum OneOrMore {
    One(String),
    More(Vec<String>),
}

enum RawValue {
    Path(String),
    Fixed(f64),
}

enum RawLabel {
    Text(String),
    Rule(RawLabelRule),
}

impl<'de> Deserialize<'de> for OneOrMore {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        by_form(d, |value| match value {
            toml::Value::String(s) => Ok(OneOrMore::One(s)),
            list @ toml::Value::Array(_) => list
                .try_into()
                .map(OneOrMore::More)
                .map_err(|e| e.to_string()),
            _ => Err("`items` is a JSONPath, or a list of them (one per level)".into()),
        })
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        by_form(d, |value| match value {
            toml::Value::String(s) => Ok(RawValue::Path(s)),
            toml::Value::Integer(n) => Ok(RawValue::Fixed(n as f64)),
            toml::Value::Float(f) => Ok(RawValue::Fixed(f)),
            _ => Err(
                "`value` is a JSONPath (\"$.hashrate\"), or a number every item gets (value = 1)"
                    .into(),
            ),
        })
    }
}

impl<'de> Deserialize<'de> for RawLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        by_form(d, |value| {
            match value {
            toml::Value::String(s) => Ok(RawLabel::Text(s)),
            rule @ toml::Value::Table(_) => rule.try_into().map(RawLabel::Rule).map_err(|e| e.to_string()),
            _ => Err("a label is a text (fixed, \"$.path\" or a template), or a table { from = \"...\", trim = true, case = \"lower\", replace = [...] }".into()),
        }
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabelRule {
    from: String,
    trim: Option<bool>,
    case: Option<String>,
    #[serde(default)]
    replace: Vec<RawReplace>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplace {
    regex: String,
    #[serde(default)]
    with: String,
}

pub(super) fn mapping(
    cx: &KindContext<'_, '_>,
    at: &str,
    raw: RawMapping,
) -> Result<Mapping, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let label_names: Vec<String> = raw.labels.keys().cloned().collect();
    let family = match metrics::pool_family(&raw.name) {
        Some(def) => {
            for (k, set) in [
                ("type", raw.kind.is_some()),
                ("help", raw.help.is_some()),
                ("unit", raw.unit.is_some()),
            ] {
                if set {
                    return Err(cx.err(
                        &key(k),
                        format!(
                            "{} is a family of the metric contract, whose {k} is fixed",
                            def.name
                        ),
                        "remove it; `type`, `help` and `unit` define new families only",
                    ));
                }
            }
            let mut wanted: Vec<&str> = def.labels.to_vec();
            wanted.sort_unstable();
            if wanted != label_names.iter().map(String::as_str).collect::<Vec<_>>() {
                return Err(cx.err(
                    &key("labels"),
                    format!(
                        "{} has the labels {}, and the mapping gives {}",
                        def.name,
                        def.labels.join(", "),
                        if label_names.is_empty() {
                            "none".to_string()
                        } else {
                            label_names.join(", ")
                        }
                    ),
                    "give exactly the family's labels (pool and source are added)",
                ));
            }
            def
        }
        None => new_family(cx, at, &raw, &label_names)?,
    };
    let items = match &raw.items {
        None => Vec::new(),
        Some(OneOrMore::One(text)) => vec![text.clone()],
        Some(OneOrMore::More(list)) => list.clone(),
    };
    if raw.items.is_some() && !(1..=MAX_LEVELS).contains(&items.len()) {
        return Err(cx.err(
            &key("items"),
            format!("{} levels of items", items.len()),
            &format!(
                "give 1 to {MAX_LEVELS} paths, each read in the items of the one before, e.g. items = [\"$.sites[*]\", \"$.workers.*\"]"
            ),
        ));
    }
    let items = items
        .iter()
        .enumerate()
        .map(|(i, text)| json_path(cx, &key(&format!("items[{i}]")), text))
        .collect::<Result<Vec<_>, _>>()?;
    let levels = items.len();
    let mut labels = Vec::with_capacity(family.labels.len());
    for name in family.labels {
        let label_key = key(&format!("labels.{name}"));
        let Some(raw_label) = raw.labels.get(*name) else {
            continue;
        };
        labels.push(label_rule(cx, &label_key, raw_label, levels)?);
    }
    let value = match &raw.value {
        RawValue::Path(text) => ValueSource::Path(json_path(cx, &key("value"), text)?),
        RawValue::Fixed(n) if n.is_finite() => ValueSource::Fixed(*n),
        RawValue::Fixed(n) => {
            return Err(cx.err(
                &key("value"),
                format!("{n} is not a number a metric can carry"),
                "give a JSONPath, or a finite number every item gets",
            ));
        }
    };
    Ok(Mapping {
        family,
        items,
        value,
        reading: reading(cx, at, &raw, levels)?,
        optional: raw.optional.unwrap_or(false),
        labels,
    })
}

fn label_rule(
    cx: &KindContext<'_, '_>,
    key: &str,
    raw: &RawLabel,
    levels: usize,
) -> Result<LabelRule, ConfigError> {
    let (from, rule) = match raw {
        RawLabel::Text(text) => (text, None),
        RawLabel::Rule(rule) => (&rule.from, Some(rule)),
    };
    let text_key = if rule.is_some() {
        format!("{key}.from")
    } else {
        key.to_string()
    };
    if from.chars().any(char::is_control) {
        return Err(cx.err(
            &text_key,
            "a control character in a label value",
            "write the value on one line",
        ));
    }
    let text = LabelText::parse(from, levels).map_err(|problem| {
        cx.err(
            &text_key,
            problem,
            "give fixed text, a JSONPath of the item (\"$.name\"), or a template such as \"{root:$.site}/{$.rack}\" or \"{key}\"",
        )
    })?;
    let Some(rule) = rule else {
        return Ok(LabelRule {
            text,
            trim: false,
            case: None,
            replace: Vec::new(),
        });
    };
    let case = match rule.case.as_deref() {
        None => None,
        Some("lower") => Some(Case::Lower),
        Some("upper") => Some(Case::Upper),
        Some(other) => {
            return Err(cx.err(
                &format!("{key}.case"),
                format!("{other:?} is not a case"),
                "use \"lower\" or \"upper\"",
            ));
        }
    };
    let mut replace = Vec::with_capacity(rule.replace.len());
    for (i, r) in rule.replace.iter().enumerate() {
        let regex = regex::RegexBuilder::new(&r.regex)
            .size_limit(MAX_REGEX_BYTES * 16)
            .build()
            .ok()
            .filter(|_| r.regex.len() <= MAX_REGEX_BYTES)
            .ok_or_else(|| {
                cx.err(
                    &format!("{key}.replace[{i}].regex"),
                    format!("{:?} is not a regular expression", r.regex),
                    "write a Rust regex (docs.rs/regex), e.g. replace = [{ regex = \"^farm\\\\.\", with = \"\" }]",
                )
            })?;
        replace.push(Replace {
            regex,
            with: r.with.clone(),
        });
    }
    Ok(LabelRule {
        text,
        trim: rule.trim.unwrap_or(false),
        case,
        replace,
    })
}

fn reading(
    cx: &KindContext<'_, '_>,
    at: &str,
    raw: &RawMapping,
    levels: usize,
) -> Result<Reading, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let scale = raw.scale.unwrap_or(1.0);
    if !scale.is_finite() || scale == 0.0 {
        return Err(cx.err(
            &key("scale"),
            format!("{scale} is not a usable factor"),
            "write the factor to base units, e.g. 0.01 for cents, 1e12 for TH/s",
        ));
    }
    if raw.default.is_some() && raw.values.is_none() {
        return Err(cx.err(
            &key("default"),
            "`default` is the number of a word `values` does not list, and there is no `values`",
            "add values = { online = 1, offline = 0 }, or remove `default`",
        ));
    }
    for (what, map) in [("values", &raw.values), ("units", &raw.units)] {
        if let Some((word, n)) = map.iter().flatten().find(|(_, n)| !n.is_finite()) {
            return Err(cx.err(
                &key(&format!("{what}.{word}")),
                format!("{n} is not a number a metric can carry"),
                "map each word to a finite number",
            ));
        }
    }
    let format = match raw.format.as_deref() {
        None | Some("number") => Format::Number,
        Some("rfc3339") => Format::Rfc3339,
        Some("epoch_ms") => Format::EpochMilliseconds,
        Some(other) => {
            return Err(cx.err(
                &key("format"),
                format!("{other:?} is not a value format"),
                "use \"number\" (the default), \"rfc3339\" (a time, as Unix seconds) or \"epoch_ms\" (Unix milliseconds, as seconds)",
            ));
        }
    };
    let unit_from = raw
        .unit_from
        .as_deref()
        .map(|text| {
            LabelText::parse(text, levels).map_err(|problem| {
                cx.err(
                    &key("unit_from"),
                    problem,
                    "give where the unit is, e.g. unit_from = \"$.hashrate_unit\" or \"{root:$.unit}\"",
                )
            })
        })
        .transpose()?;
    if unit_from.is_some() && raw.units.is_none() {
        return Err(cx.err(
            &key("unit_from"),
            "`unit_from` names a unit, and no `units` says what each is worth",
            "add units = { \"TH/s\" = 1e12, \"PH/s\" = 1e15 }",
        ));
    }
    let separator = |k: &str, text: &Option<String>| -> Result<Option<char>, ConfigError> {
        let Some(text) = text else {
            return Ok(None);
        };
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_ascii_digit() && c != '-' && c != '+' => Ok(Some(c)),
            _ => Err(cx.err(
                &key(k),
                format!("{text:?} is not one separator character"),
                "write one character that is not a digit or sign, e.g. \",\" or \" \"",
            )),
        }
    };
    let thousands_separator = separator("thousands_separator", &raw.thousands_separator)?;
    let decimal_separator = separator("decimal_separator", &raw.decimal_separator)?;
    if thousands_separator.is_some() && thousands_separator == decimal_separator {
        return Err(cx.err(
            &key("decimal_separator"),
            "the same character separates thousands and decimals",
            "give them different characters, e.g. thousands_separator = \".\" and decimal_separator = \",\"",
        ));
    }
    if format != Format::Number && (raw.units.is_some() || raw.values.is_some()) {
        return Err(cx.err(
            &key("format"),
            "a time format takes no `units` or `values`",
            "remove them, or the format",
        ));
    }
    Ok(Reading {
        format,
        scale,
        values: raw.values.clone(),
        default: raw.default,
        units: raw.units.clone(),
        unit_from,
        thousands_separator,
        decimal_separator,
    })
}

/// A family the contract does not have: a `mining_` name in base units, of a declared type,
/// with help and its own labels.
fn new_family(
    cx: &KindContext<'_, '_>,
    at: &str,
    raw: &RawMapping,
    labels: &[String],
) -> Result<&'static MetricDef, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let name = raw.name.as_str();
    if !metrics::valid_family_name(name) || name.starts_with(metrics::EXPORTER_PREFIX) {
        return Err(cx.err(
            &key("name"),
            format!("{name:?} is neither a family of the contract nor a new mining_ name"),
            metrics::NAME_FIX,
        ));
    }
    let kind = match raw.kind.as_deref() {
        Some("gauge") => MetricKind::Gauge,
        Some("counter") => MetricKind::Counter,
        Some(other) => {
            return Err(cx.err(
                &key("type"),
                format!("{other:?} is not a metric type"),
                "use \"gauge\" (a value that goes up and down) or \"counter\" (a total that only grows)",
            ));
        }
        None => {
            return Err(cx.err(
                &key("type"),
                format!("{name} is a new family and has no type"),
                "add type = \"gauge\" or \"counter\"",
            ));
        }
    };
    if let Err(broken) = metrics::check_family_name(name, kind, raw.unit.as_deref()) {
        return Err(cx.err(&key(broken.key), broken.problem, &broken.fix));
    }
    let help = raw.help.as_deref().unwrap_or_default().trim();
    if help.is_empty() || help.len() > 300 || help.chars().any(char::is_control) {
        return Err(cx.err(
            &key("help"),
            format!("{name} is a new family and needs a help text of one line"),
            "add help = \"what the value is, and its unit\" (up to 300 characters)",
        ));
    }
    for label in labels {
        if !metrics::valid_label_name(label) || label == "pool" || label == "source" {
            return Err(cx.err(
                &key(&format!("labels.{label}")),
                format!("{label:?} cannot be a label name here"),
                "use letters, digits and '_' (not first a digit, not __); pool and source are added to every series",
            ));
        }
    }
    let stop = if help.ends_with(['.', '!', '?']) {
        ""
    } else {
        "."
    };
    let help = format!("{help}{stop} Read from the API at the last successful poll.");
    Ok(metrics::defined_family(name, &help, kind, labels))
}
