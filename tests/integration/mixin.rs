//! The monitoring mixin (mixin/): the rule files and dashboards under dashboards/ are what
//! mixin/generate.sh renders from it, byte for byte, and its jsonnet is formatted.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::common::{files_under, run_tool};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Renders the mixin, plus `override` (jsonnet), into `out`: the generator's status and
/// what it printed. None when Debian's `jsonnet` is not installed (see spawn_tool).
pub fn render(out: &Path, override_: &str) -> Option<(ExitStatus, String)> {
    run_tool(Command::new("jsonnet").arg("--version"), "jsonnet")?;
    run_tool(
        Command::new("bash")
            .arg(root().join("mixin/generate.sh"))
            .arg(out)
            .arg(override_),
        "bash",
    )
}

#[test]
fn the_shipped_rules_and_dashboards_are_what_the_mixin_renders() {
    let out = tempfile::TempDir::new().unwrap();
    let Some((status, printed)) = render(out.path(), "{}") else {
        return;
    };
    assert!(status.success(), "{printed}");
    let rendered = files_under(out.path());
    assert_eq!(rendered.len(), 5, "{rendered:?}");
    for file in rendered {
        let fresh = std::fs::read_to_string(out.path().join(&file)).unwrap();
        let shipped =
            std::fs::read_to_string(root().join("dashboards").join(&file)).unwrap_or_default();
        assert!(
            fresh == shipped,
            "dashboards/{} differs from what the mixin renders: run mixin/generate.sh and commit",
            file.display()
        );
    }
}

#[test]
fn an_operators_site_labels_reach_every_rule_and_dashboard() {
    let out = tempfile::TempDir::new().unwrap();
    let Some((status, printed)) = render(
        out.path(),
        r#"{ _config+:: { siteLabels: ["region", "farm"], exporterSelector: 'job="mining"' } }"#,
    ) else {
        return;
    };
    assert!(status.success(), "{printed}");
    let alerts = std::fs::read_to_string(out.path().join("prometheus/alerts.yml")).unwrap();
    assert!(alerts.contains("up{job=\\\"mining\\\"} == 0"), "{alerts}");
    assert!(!alerts.contains("mining-exporter\\\""), "{alerts}");
    assert_eq!(
        alerts
            .matches("on (region, farm, instance, pool, source)")
            .count(),
        5,
        "{alerts}"
    );
    let rules = std::fs::read_to_string(out.path().join("prometheus/rules.yml")).unwrap();
    assert_eq!(rules.matches("by (region, farm, instance, ").count(), 9);
    // The hashprice is a site's: it meets the accounts of that site only.
    assert!(
        rules.contains(
            "* on (region, farm) group_left (currency) site_currency:mining_hashprice:max"
        ),
        "{rules}"
    );
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("grafana/farm-overview.json")).unwrap(),
    )
    .unwrap();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(
        variables,
        [
            "datasource",
            "region",
            "farm",
            "pool",
            "source",
            "account",
            "worker"
        ]
    );
    for panel in crate::dashboards::panels(&dashboard) {
        for expr in crate::dashboards::exprs(panel) {
            assert!(
                expr.contains(r#"region=~"$region", farm=~"$farm""#),
                "{}: {expr}",
                panel["title"]
            );
        }
    }
}

#[test]
fn the_mixin_passes_jsonnetfmt() {
    let dir = root().join("mixin");
    let mut sources: Vec<PathBuf> = files_under(&dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "libsonnet"))
        .collect();
    sources.sort();
    assert!(sources.len() >= 8, "{sources:?}");
    let Some((status, printed)) = run_tool(
        Command::new("jsonnetfmt")
            .arg("--test")
            .args(&sources)
            .current_dir(&dir),
        "jsonnet",
    ) else {
        return;
    };
    assert!(status.success(), "jsonnetfmt --test: {printed}");
}
