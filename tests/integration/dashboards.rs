//! The checks of Grafana's dashboard linter, as tests over every dashboard JSON in
//! dashboards/grafana/ (the linter itself is not installable here), plus ours: every metric
//! a dashboard names is in the metric contract or a recording rule, hash rates use Grafana's
//! self-scaling `Hs` unit, and no file holds a private value.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mining_exporter::metrics::{POOL_FAMILIES, exporter};
use serde_json::Value;

const DATASOURCE: &str = "${datasource}";

pub fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Every dashboard file, parsed, with its file name.
pub fn dashboards() -> Vec<(String, Value)> {
    let dir = dashboards_dir().join("grafana");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let json: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), json)
        })
        .collect()
}

/// Every panel, nested rows included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every query expression of a panel.
pub fn exprs(panel: &Value) -> Vec<&str> {
    panel["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["expr"].as_str())
        .collect()
}

/// A panel's query as Grafana would send it with `site` chosen (`.*` for All) and every
/// other variable at All.
pub fn as_grafana_sends_it(expr: &str, site: &str) -> String {
    expr.replace("$__rate_interval", "15s")
        .replace("$site", site)
        .replace("$pool", ".*")
        .replace("$source", ".*")
        .replace("$account", ".*")
        .replace("$worker", ".*")
}

/// `label_values(selector, label)` as a PromQL query for the same label values, sent as
/// `as_grafana_sends_it` sends a panel's.
pub fn label_values_query(definition: &str, site: &str) -> String {
    let inner = definition
        .strip_prefix("label_values(")
        .and_then(|d| d.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a label_values query: {definition}"));
    let (selector, label) = inner.rsplit_once(',').unwrap();
    as_grafana_sends_it(
        &format!("group by ({}) ({})", label.trim(), selector.trim()),
        site,
    )
}

/// The values of `key` in a generated rule file (`record`, `alert`), unquoted: one per rule.
pub fn rule_values(yaml: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}: ");
    yaml.lines()
        .map(|l| l.trim().trim_start_matches("- "))
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim_matches('"').to_string())
        .collect()
}

/// Names the recording rules define.
fn recorded() -> BTreeSet<String> {
    let rules = std::fs::read_to_string(dashboards_dir().join("prometheus/rules.yml")).unwrap();
    rule_values(&rules, "record").into_iter().collect()
}

/// Metric names in a PromQL expression: our prefix, or a recorded `level:metric:ops` name.
fn metric_names(expr: &str) -> Vec<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with("mining_") || w.contains(":mining_"))
        .collect()
}

/// The units a panel uses: its default and every override's.
fn units(panel: &Value) -> Vec<&str> {
    let mut units: Vec<&str> = panel["fieldConfig"]["defaults"]["unit"]
        .as_str()
        .into_iter()
        .collect();
    for o in panel["fieldConfig"]["overrides"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for p in o["properties"].as_array().into_iter().flatten() {
            if p["id"] == "unit" {
                units.extend(p["value"].as_str());
            }
        }
    }
    units
}

#[test]
fn every_dashboard_is_schema_39_with_a_stable_uid_and_editable() {
    let mut uids = BTreeSet::new();
    for (file, d) in dashboards() {
        assert_eq!(d["schemaVersion"], 39, "{file}");
        assert_eq!(d["editable"], true, "{file}");
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(
            !uid.is_empty() && uid.len() <= 40 && uid.starts_with("mining-"),
            "{file}: uid {uid:?}"
        );
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} used twice");
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "{file}");
        let ids: Vec<&Value> = panels(&d).iter().map(|p| &p["id"]).collect();
        let unique: BTreeSet<String> = ids.iter().map(|i| i.to_string()).collect();
        assert_eq!(unique.len(), ids.len(), "{file}: panel ids repeat");
    }
    assert_eq!(
        uids.into_iter().collect::<Vec<_>>(),
        [
            "mining-exporter-health",
            "mining-farm-overview",
            "mining-worker"
        ]
    );
}

#[test]
fn one_datasource_variable_used_by_every_panel_and_target() {
    for (file, d) in dashboards() {
        let vars = d["templating"]["list"].as_array().unwrap();
        let datasources: Vec<&Value> = vars.iter().filter(|v| v["type"] == "datasource").collect();
        assert_eq!(datasources.len(), 1, "{file}");
        assert_eq!(datasources[0]["name"], "datasource", "{file}");
        assert_eq!(datasources[0]["query"], "prometheus", "{file}");
        let uses_it = |v: &Value| v["uid"] == DATASOURCE && v["type"] == "prometheus";
        for v in vars.iter().filter(|v| v["type"] == "query") {
            assert!(uses_it(&v["datasource"]), "{file}: variable {}", v["name"]);
        }
        for p in panels(&d) {
            if p["type"] == "row" {
                continue;
            }
            assert!(uses_it(&p["datasource"]), "{file}: panel {}", p["title"]);
            let targets = p["targets"].as_array().unwrap();
            assert!(
                !targets.is_empty(),
                "{file}: panel {} queries nothing",
                p["title"]
            );
            for t in targets {
                assert!(
                    uses_it(&t["datasource"]),
                    "{file}: a target of {}",
                    p["title"]
                );
            }
        }
    }
}

#[test]
fn site_pool_source_account_worker_variables_are_multi_all_and_refresh_with_time() {
    for (file, d) in dashboards() {
        let vars = d["templating"]["list"].as_array().unwrap();
        let names: Vec<&str> = vars
            .iter()
            .filter(|v| v["type"] == "query")
            .filter_map(|v| v["name"].as_str())
            .collect();
        let wanted: &[&str] = if file == "exporter-health.json" {
            &["site", "pool", "source"]
        } else {
            &["site", "pool", "source", "account", "worker"]
        };
        assert_eq!(names, wanted, "{file}");
        for v in vars.iter().filter(|v| v["type"] == "query") {
            let name = &v["name"];
            assert_eq!(v["multi"], true, "{file}: {name}");
            assert_eq!(v["includeAll"], true, "{file}: {name}");
            assert_eq!(v["allValue"], ".*", "{file}: {name}");
            // 2: refresh on time range change.
            assert_eq!(v["refresh"], 2, "{file}: {name}");
        }
    }
}

#[test]
fn rates_use_rate_interval_and_counters_are_only_read_through_rate() {
    for (file, d) in dashboards() {
        for p in panels(&d) {
            for expr in exprs(p) {
                let at = format!("{file}: {}: {expr}", p["title"]);
                // Every range selector in a panel is the rate interval.
                for range in expr.split('[').skip(1) {
                    let inside = range.split(']').next().unwrap();
                    assert_eq!(inside, "$__rate_interval", "{at}");
                }
                for (i, _) in expr.match_indices("_total") {
                    let before = &expr[..i];
                    let name_start = before
                        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                        .map_or(0, |s| s + 1);
                    let call = before[..name_start].trim_end();
                    assert!(
                        call.ends_with("rate(") || call.ends_with("increase("),
                        "{at}: a _total read outside rate/increase"
                    );
                }
            }
        }
    }
}

#[test]
fn every_panel_has_the_unit_its_values_are_in() {
    for (file, d) in dashboards() {
        // A row holds panels, not values.
        for p in panels(&d).into_iter().filter(|p| p["type"] != "row") {
            let title = &p["title"];
            let units = units(p);
            assert!(
                p["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .is_some_and(|u| !u.is_empty()),
                "{file}: panel {title} has no unit"
            );
            assert!(
                units
                    .iter()
                    .all(|u| !u.starts_with("suffix:") && !u.starts_with("prefix:")),
                "{file}: panel {title}: custom unit {units:?}"
            );
            let all = exprs(p).join("\n");
            assert!(
                !all.contains("1e12") && !all.contains("1e15") && !all.contains("/ 1000"),
                "{file}: panel {title} scales by hand: {all}"
            );
            let needs = |cond: bool, unit: &str| {
                if cond {
                    assert!(
                        units.contains(&unit),
                        "{file}: panel {title} needs {unit}, has {units:?}"
                    );
                }
            };
            needs(all.contains("hashes_per_second"), "Hs");
            needs(all.contains("_ratio"), "percentunit");
            needs(
                all.contains("_timestamp_seconds") || all.contains("_duration_seconds"),
                "s",
            );
            needs(all.contains("currency=\"BTC\""), "currencyBTC");
        }
    }
}

#[test]
fn every_metric_a_dashboard_names_is_in_the_contract_or_recorded() {
    let recorded = recorded();
    let mut known: BTreeSet<String> = POOL_FAMILIES.iter().map(|d| d.name.to_string()).collect();
    known.extend(exporter::ALL.iter().map(|def| def.name.to_string()));
    known.extend(recorded.iter().cloned());
    let mut used_recorded = BTreeSet::new();
    for (file, d) in dashboards() {
        let vars = d["templating"]["list"].as_array().unwrap();
        let queries = vars.iter().filter_map(|v| v["definition"].as_str());
        let panel_exprs = panels(&d).into_iter().flat_map(exprs);
        for expr in queries.chain(panel_exprs) {
            for name in metric_names(expr) {
                assert!(
                    known.contains(name),
                    "{file}: {name} is in no contract: {expr}"
                );
                if recorded.contains(name) {
                    used_recorded.insert(name.to_string());
                }
            }
        }
    }
    assert!(
        used_recorded.len() >= 3,
        "dashboards read few recording rules: {used_recorded:?}"
    );
}

#[test]
fn no_file_beside_the_dashboards_holds_a_private_value() {
    let files: Vec<PathBuf> = crate::common::files_under(&dashboards_dir())
        .into_iter()
        .map(|file| dashboards_dir().join(file))
        .collect();
    assert!(files.len() >= 8, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let at = file.display();
        assert!(!text.contains(crate::common::TOKEN), "{at}");
        // Only generic hosts: the compose service names, the central store's placeholder
        // and loopback.
        for (i, _) in text.match_indices("://") {
            let host: String = text[i + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            assert!(
                [
                    "prometheus",
                    "localhost",
                    "127.0.0.1",
                    "alertmanager",
                    "grafana",
                    "exporter",
                    "central"
                ]
                .contains(&host.as_str()),
                "{at}: host {host}"
            );
        }
        // Nothing shaped like an API key: a long run of letters mixed with digits.
        let key_like = text.split(|c: char| !c.is_ascii_alphanumeric()).find(|w| {
            w.len() >= 20
                && w.chars().any(|c| c.is_ascii_digit())
                && w.chars().any(|c| c.is_ascii_alphabetic())
        });
        assert_eq!(key_like, None, "{at}: a token-like string");
    }
}
