//! The Prometheus text format (0.0.4), written straight into a byte buffer: family headers
//! and sample lines, with label values and HELP escaped as the format requires. Values are
//! written with Rust's shortest round-trip `Display`, as the prometheus crate writes them.

use std::io::Write;

use crate::metrics::MetricKind;

/// `# HELP` and `# TYPE` lines of a family.
pub fn family_header(out: &mut Vec<u8>, name: &str, help: &str, kind: MetricKind) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    escape_into(out, help, false);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(match kind {
        MetricKind::Gauge => b" gauge\n",
        MetricKind::Counter => b" counter\n",
    });
}

/// One sample line: `name{label="value",...} value`.
pub fn sample<'a>(
    out: &mut Vec<u8>,
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    value: f64,
) {
    sample_body(out, name, labels, value);
    out.push(b'\n');
}

/// One sample line with its timestamp, as OpenMetrics writes it (seconds): only history
/// carries one (`backfill`); live samples never do.
pub fn sample_at<'a>(
    out: &mut Vec<u8>,
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    value: f64,
    timestamp: i64,
) {
    sample_body(out, name, labels, value);
    // Writing to a Vec cannot fail.
    let _ = writeln!(out, " {timestamp}");
}

fn sample_body<'a>(
    out: &mut Vec<u8>,
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    value: f64,
) {
    out.extend_from_slice(name.as_bytes());
    let mut separator = b'{';
    for (label, label_value) in labels {
        out.push(separator);
        out.extend_from_slice(label.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_into(out, label_value, true);
        out.push(b'"');
        separator = b',';
    }
    if separator == b',' {
        out.push(b'}');
    }
    out.push(b' ');
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{value}");
}

/// `\` and newline escaped (and `"` in label values), everything else as it is: also the
/// escaping of OpenMetrics text and of PromQL's double-quoted strings.
pub fn escape_into(out: &mut Vec<u8>, text: &str, quote: bool) {
    for byte in text.bytes() {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if quote => out.extend_from_slice(b"\\\""),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_the_prometheus_crate_writes() {
        let mut out = Vec::new();
        family_header(&mut out, "m", "a \\ b\nc \"d\"", MetricKind::Counter);
        sample(&mut out, "m", [("a", "x\"y\\z\nw"), ("b", "ü")], 8070.0);
        sample(&mut out, "m", [], 0.0009711094925952901);
        sample(&mut out, "m", [("c", "")], 1e21);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# HELP m a \\\\ b\\nc \"d\"\n# TYPE m counter\n\
             m{a=\"x\\\"y\\\\z\\nw\",b=\"ü\"} 8070\n\
             m 0.0009711094925952901\n\
             m{c=\"\"} 1000000000000000000000\n"
        );
    }

    /// The same family through this writer and through the prometheus crate's encoder.
    #[test]
    fn matches_the_prometheus_crate_byte_for_byte() {
        use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};
        use prometheus::{Encoder, TextEncoder};
        let samples: &[(&[(&str, &str)], f64)] = &[
            (&[("pool", "p"), ("worker", "rig \"01\"\\\n")], 8070.0),
            (&[("pool", "p"), ("worker", "")], -0.5),
            (&[("pool", "p"), ("worker", "w")], 1.7e9 + 0.25),
            (&[("pool", "p"), ("worker", "w2")], 123456789012345680000.0),
            (&[("pool", "p"), ("worker", "w3")], 1e-7),
        ];
        let mut ours = Vec::new();
        family_header(&mut ours, "x_total", "help \\ me\nnow", MetricKind::Gauge);
        let mut family = MetricFamily::default();
        family.set_name("x_total".into());
        family.set_help("help \\ me\nnow".into());
        family.set_field_type(MetricType::GAUGE);
        for (labels, value) in samples {
            sample(&mut ours, "x_total", labels.iter().copied(), *value);
            let pairs = labels
                .iter()
                .map(|(n, v)| {
                    let mut pair = LabelPair::default();
                    pair.set_name(n.to_string());
                    pair.set_value(v.to_string());
                    pair
                })
                .collect();
            let mut metric = Metric::from_label(pairs);
            let mut gauge = Gauge::default();
            gauge.set_value(*value);
            metric.set_gauge(gauge);
            family.mut_metric().push(metric);
        }
        let mut theirs = Vec::new();
        TextEncoder::new().encode(&[family], &mut theirs).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs).unwrap()
        );
    }
}
