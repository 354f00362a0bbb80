//! The backfill's output: OpenMetrics text as `promtool tsdb create-blocks-from openmetrics`
//! and VictoriaMetrics' `/api/v1/import/prometheus` read it. Its rules are the traps the
//! importers leave unreported: timestamps in seconds (milliseconds are taken silently and
//! land in the year 58,000), each series strictly increasing in time with one value a time,
//! one family at a time, `\n` line ends, and `# EOF` last. A counter's family is named
//! without `_total` and its samples with it, so the stored series keeps `_total`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::metrics::{MetricDef, MetricKind, POOL_FAMILIES};
use crate::text_format;

/// Every series of one family: its label pairs (in order) and its points by time.
pub type FamilySeries = BTreeMap<Vec<(String, String)>, BTreeMap<i64, f64>>;

/// The contract's definition of a pool family named `name`.
pub fn family(name: &str) -> Option<&'static MetricDef> {
    POOL_FAMILIES.iter().copied().find(|f| f.name == name)
}

/// Writes `families` (by name) and `# EOF`. Points that are not finite are left out.
pub fn write(
    out: &mut impl Write,
    families: &BTreeMap<&'static str, FamilySeries>,
) -> io::Result<()> {
    let mut buffer = Vec::with_capacity(64 * 1024);
    for (name, series) in families {
        let Some(def) = family(name) else { continue };
        let (family_name, kind) = match def.kind {
            MetricKind::Counter => (name.strip_suffix("_total").unwrap_or(name), "counter"),
            MetricKind::Gauge => (*name, "gauge"),
        };
        buffer.clear();
        buffer.extend_from_slice(format!("# HELP {family_name} ").as_bytes());
        // OpenMetrics escapes `"` in HELP too.
        text_format::escape_into(&mut buffer, def.help, true);
        buffer.extend_from_slice(format!("\n# TYPE {family_name} {kind}\n").as_bytes());
        out.write_all(&buffer)?;
        for (labels, points) in series {
            buffer.clear();
            let pairs = || labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
            for (t, v) in points.iter().filter(|(_, v)| v.is_finite()) {
                text_format::sample_at(&mut buffer, name, pairs(), *v, *t);
            }
            out.write_all(&buffer)?;
        }
    }
    out.write_all(b"# EOF\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_come_whole_with_seconds_and_counters_keep_total() {
        let mut families: BTreeMap<&'static str, FamilySeries> = BTreeMap::new();
        let labels = |account: &str| {
            vec![
                ("pool".to_string(), "ourpool".to_string()),
                ("source".to_string(), "op".to_string()),
                ("account".to_string(), account.to_string()),
                ("currency".to_string(), "BTC".to_string()),
            ]
        };
        let paid = families.entry("mining_account_paid_total").or_default();
        paid.insert(labels("a\"b"), BTreeMap::from([(7200, 0.5), (3600, 0.25)]));
        paid.insert(labels("c"), BTreeMap::from([(3600, f64::NAN), (7200, 1.0)]));
        let mut text = Vec::new();
        write(&mut text, &families).unwrap();
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("# HELP mining_account_paid "),
            "{text}"
        );
        assert_eq!(lines[1], "# TYPE mining_account_paid counter");
        assert_eq!(
            lines[2],
            r#"mining_account_paid_total{pool="ourpool",source="op",account="a\"b",currency="BTC"} 0.25 3600"#
        );
        assert!(lines[3].ends_with("} 0.5 7200"));
        assert!(lines[4].ends_with("} 1 7200"), "NaN left out: {text}");
        assert_eq!(lines.last(), Some(&"# EOF"));
        assert!(text.ends_with("# EOF\n") && !text.contains('\r'));
    }
}
