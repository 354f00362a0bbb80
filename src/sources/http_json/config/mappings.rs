//! What each metric of a generic source is read from (`[[sources.endpoints.metrics]]`): a
//! family of the contract with its labels, or a new family that follows the naming rules.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Path, json_path};
use crate::config::KindContext;
use crate::error::ConfigError;
use crate::metrics::{self, MetricDef, MetricKind};

#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub family: &'static MetricDef,
    /// Where the list of items is; without it the page itself is the one item.
    pub items: Option<Path>,
    pub value: Path,
    pub scale: f64,
    /// Words to numbers (`online` = 1); a word not listed takes `default`, or fails the poll.
    pub values: Option<BTreeMap<String, f64>>,
    pub default: Option<f64>,
    /// An item without the value is skipped instead of failing the poll.
    pub optional: bool,
    /// In the family's label order.
    pub labels: Vec<Label>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Path(Path),
    Fixed(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMapping {
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    help: Option<String>,
    unit: Option<String>,
    items: Option<String>,
    value: String,
    scale: Option<f64>,
    values: Option<BTreeMap<String, f64>>,
    default: Option<f64>,
    optional: Option<bool>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
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
    let mut labels = Vec::with_capacity(family.labels.len());
    for name in family.labels {
        let text = raw
            .labels
            .get(*name)
            .map(String::as_str)
            .unwrap_or_default();
        labels.push(if text.starts_with('$') {
            Label::Path(json_path(cx, &key(&format!("labels.{name}")), text)?)
        } else if !text.is_empty() && !text.chars().any(char::is_control) {
            Label::Fixed(text.to_string())
        } else {
            return Err(cx.err(
                &key(&format!("labels.{name}")),
                "an empty label value",
                "give a JSONPath (starting with $) or the value itself",
            ));
        });
    }
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
    if let Some((word, n)) = raw.values.iter().flatten().find(|(_, n)| !n.is_finite()) {
        return Err(cx.err(
            &key(&format!("values.{word}")),
            format!("{n} is not a number a metric can carry"),
            "map each word to a finite number",
        ));
    }
    Ok(Mapping {
        family,
        items: raw
            .items
            .as_deref()
            .map(|t| json_path(cx, &key("items"), t))
            .transpose()?,
        value: json_path(cx, &key("value"), &raw.value)?,
        scale,
        values: raw.values,
        default: raw.default,
        optional: raw.optional.unwrap_or(false),
        labels,
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
    let help = format!("{help} Read from the API at the last successful poll.");
    Ok(metrics::defined_family(name, &help, kind, labels))
}
