//! The shipped Prometheus rules: `promtool check rules` clean, and every alert's fire and
//! stay-silent cases in dashboards/prometheus/tests/ pass `promtool test rules`.

use std::path::Path;
use std::process::Command;

use crate::common::run_tool;

fn prometheus_dir() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dashboards/prometheus"
    ))
}

#[test]
fn the_rule_files_pass_promtool_check_rules() {
    let dir = prometheus_dir();
    let Some((status, printed)) = run_tool(
        Command::new("promtool")
            .args(["check", "rules", "rules.yml", "alerts.yml"])
            .current_dir(dir),
        "prometheus",
    ) else {
        return;
    };
    assert!(status.success(), "{printed}");
    assert_eq!(printed.matches("SUCCESS").count(), 2, "{printed}");
}

#[test]
fn every_alert_fires_and_stays_silent_as_its_promtool_tests_say() {
    let tests = prometheus_dir().join("tests");
    let Some((status, printed)) = run_tool(
        Command::new("promtool")
            .args(["test", "rules", "alerts_test.yml"])
            .current_dir(&tests),
        "prometheus",
    ) else {
        return;
    };
    assert!(status.success(), "{printed}");
    // Every alert of alerts.yml has a test that names it.
    let alerts = std::fs::read_to_string(prometheus_dir().join("alerts.yml")).unwrap();
    let cases = std::fs::read_to_string(tests.join("alerts_test.yml")).unwrap();
    let names: Vec<&str> = alerts
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(names.len(), 7, "{names:?}");
    for name in names {
        let fires = format!("alertname: {name}\n        exp_alerts:\n          - exp_labels:");
        let silent = format!("alertname: {name}\n        exp_alerts: []");
        assert!(cases.contains(&fires), "no case where {name} fires");
        assert!(cases.contains(&silent), "no case where {name} stays silent");
    }
}

#[test]
fn the_example_prometheus_config_loads_both_rule_files() {
    let Some((status, printed)) = run_tool(
        Command::new("promtool")
            .args(["check", "config", "prometheus.yml"])
            .current_dir(prometheus_dir().join("..")),
        "prometheus",
    ) else {
        return;
    };
    assert!(status.success(), "{printed}");
    assert!(printed.contains("2 rule files found"), "{printed}");
}

#[test]
fn the_example_alertmanager_config_passes_amtool() {
    let file = prometheus_dir().join("../alertmanager/alertmanager.yml");
    let Some((status, printed)) = run_tool(
        Command::new("amtool").arg("check-config").arg(&file),
        "prometheus-alertmanager",
    ) else {
        return;
    };
    assert!(status.success(), "{printed}");
    assert!(printed.contains("2 receivers"), "{printed}");
}

#[test]
fn the_readme_shows_the_shipped_configs_and_a_runbook_for_every_alert() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for file in [
        "dashboards/prometheus.yml",
        "dashboards/alertmanager/alertmanager.yml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            readme.contains(&text),
            "README.md does not show {file} as shipped"
        );
    }
    let alerts = std::fs::read_to_string(prometheus_dir().join("alerts.yml")).unwrap();
    for line in alerts.lines() {
        if let Some(name) = line.trim().strip_prefix("- alert: ") {
            assert!(
                readme.contains(&format!("\n#### {name}\n")),
                "README.md has no runbook for {name}"
            );
            let anchor = format!("runbook_url: README.md#{}", name.to_lowercase());
            assert!(alerts.contains(&anchor), "{name}: no {anchor}");
        }
    }
}
