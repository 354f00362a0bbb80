//! `--until-live`: where each source's live data begins in a Prometheus, so that history
//! ends before it. A backfilled block over samples Prometheus already has is merged without
//! a word, and the series turns into a sawtooth of both.
//!
//! The first live sample of a source is that of `mining_exporter_source_up{source=...}`,
//! which only the running exporter writes (a backfill never does). A subquery at one-minute
//! steps finds the minute; the raw samples of the two minutes up to it give the second.
//! The same series names the target labels (`job`, `instance`, ...) that Prometheus gave
//! the live series, which the history must carry to be the same series.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Biggest answer read from Prometheus.
const MAX_ANSWER: usize = 4 << 20;

/// Where a source's live data begins.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEdge {
    /// Unix seconds of the first live sample.
    pub first: f64,
    /// The live series' labels besides `pool` and `source`.
    pub targets: Vec<(String, String)>,
    /// How many scrape targets carry the source (more than one: the first is used).
    pub targets_found: usize,
}

#[derive(Debug, Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(default)]
    result: Vec<Series>,
}

#[derive(Debug, Deserialize)]
struct Series {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Option<Vec<(f64, String)>>,
}

/// `url` without the user and password a Prometheus behind basic auth may be given with,
/// or a query that may carry a token: what messages and the progress file show of it.
pub(super) fn without_credentials(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(the --until-live URL)".to_string(),
    }
}

/// Label values go into PromQL inside double quotes.
fn quoted(value: &str) -> String {
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(b'"');
    crate::text_format::escape_into(&mut out, value, true);
    out.push(b'"');
    String::from_utf8_lossy(&out).into_owned()
}

async fn query(
    http: &reqwest::Client,
    base: &str,
    promql: &str,
    at: f64,
) -> Result<Vec<Series>, String> {
    let url = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let shown = without_credentials(&url);
    let response = http
        .get(&url)
        .query(&[("query", promql), ("time", &format!("{at:.3}"))])
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| format!("{shown}: {}", e.without_url()))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("{shown}: {}", e.without_url()))?;
    if body.len() > MAX_ANSWER {
        return Err(format!(
            "{shown}: an answer of more than {MAX_ANSWER} bytes"
        ));
    }
    let answer: Answer = serde_json::from_slice(&body)
        .map_err(|e| format!("{shown}: HTTP {status}, not a Prometheus answer: {e}"))?;
    if answer.status != "success" {
        return Err(format!(
            "{shown}: {}",
            answer.error.unwrap_or_else(|| format!("HTTP {status}"))
        ));
    }
    Ok(answer.data.map(|d| d.result).unwrap_or_default())
}

/// The live edge of `source` in the Prometheus at `base`, looking back from `now` to
/// `from`; `None` when it has no live sample of the source in that time.
pub async fn find(
    http: &reqwest::Client,
    base: &str,
    source: &str,
    from: i64,
    now: f64,
) -> Result<Option<LiveEdge>, String> {
    let selector = format!("mining_exporter_source_up{{source={}}}", quoted(source));
    let back = (now - from as f64).ceil().max(60.0) as u64;
    let coarse = query(
        http,
        base,
        &format!("min_over_time(timestamp({selector})[{back}s:1m])"),
        now,
    )
    .await?;
    let mut found: Vec<(f64, BTreeMap<String, String>)> = coarse
        .into_iter()
        .filter_map(|s| {
            let t: f64 = s.value?.1.parse().ok()?;
            t.is_finite().then_some((t, s.metric))
        })
        .collect();
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let targets_found = found.len();
    let Some((minute, metric)) = found.into_iter().next() else {
        return Ok(None);
    };
    // The first sample is within a minute before the one the step saw.
    let mut matcher = String::new();
    for (k, v) in &metric {
        matcher.push(',');
        matcher.push_str(k);
        matcher.push('=');
        matcher.push_str(&quoted(v));
    }
    let exact = query(
        http,
        base,
        &format!(
            "mining_exporter_source_up{{source={}{matcher}}}[2m]",
            quoted(source)
        ),
        minute,
    )
    .await?;
    let first = exact
        .iter()
        .flat_map(|s| s.values.iter().flatten().map(|(t, _)| *t))
        .fold(minute, f64::min);
    let targets = metric
        .into_iter()
        .filter(|(k, _)| k != "pool" && k != "source" && k != "__name__")
        .collect();
    Ok(Some(LiveEdge {
        first,
        targets,
        targets_found,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let shown = without_credentials("http://admin:s3cret@prom:9090/api/v1/query");
        assert_eq!(shown, "http://prom:9090/api/v1/query");
    }

    #[test]
    fn label_values_are_quoted_for_promql() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
