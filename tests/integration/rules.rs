//! The shipped Prometheus rules: `promtool check rules` clean, every alert's fire and
//! stay-silent cases in dashboards/prometheus/tests/ pass `promtool test rules`, and so do
//! the two-site cases, which fail on rules that drop the site label.

use std::path::Path;
use std::process::Command;

use crate::common::run_tool;
use crate::dashboards::rule_values;

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
    let names = rule_values(&alerts, "alert");
    assert_eq!(names.len(), 9, "{names:?}");
    for name in names {
        let fires = format!("alertname: {name}\n        exp_alerts:\n          - exp_labels:");
        let silent = format!("alertname: {name}\n        exp_alerts: []");
        assert!(cases.contains(&fires), "no case where {name} fires");
        assert!(cases.contains(&silent), "no case where {name} stays silent");
    }
}

#[test]
fn two_sites_with_the_same_names_keep_their_alerts_apart() {
    let Some((status, printed)) = run_tool(
        Command::new("promtool")
            .args(["test", "rules", "sites_test.yml"])
            .current_dir(prometheus_dir().join("tests")),
        "prometheus",
    ) else {
        return;
    };
    assert!(status.success(), "{printed}");
}

/// The shipped promtool cases of `cases` (a file of dashboards/prometheus/tests/) run against
/// the rules.yml and alerts.yml in `rules_dir` (a mutated copy): promtool's status and output.
fn shipped_cases_against(
    rules_dir: &Path,
    cases: &str,
) -> Option<(std::process::ExitStatus, String)> {
    let tests = rules_dir.join("tests");
    std::fs::create_dir_all(&tests).unwrap();
    std::fs::copy(
        prometheus_dir().join("tests").join(cases),
        tests.join(cases),
    )
    .unwrap();
    run_tool(
        Command::new("promtool")
            .args(["test", "rules", cases])
            .current_dir(&tests),
        "prometheus",
    )
}

#[test]
fn the_two_site_cases_fail_on_rules_that_keep_no_site_label() {
    // The same mixin with no site or target labels: its `on (pool, source)` matches meet
    // two sites' series and its sums add them up, so the two-site cases must fail.
    let out = tempfile::TempDir::new().unwrap();
    let Some(rendered) = crate::mixin::render(
        out.path(),
        "{ _config+:: { siteLabels: [], targetLabels: [] } }",
    ) else {
        return;
    };
    assert!(rendered.0.success(), "{}", rendered.1);
    let (status, printed) =
        shipped_cases_against(&out.path().join("prometheus"), "sites_test.yml").unwrap();
    assert!(!status.success(), "{printed}");
    for case in [
        "a drop at site a fires for site a only",
        "a worker down at site a fires there only",
    ] {
        assert!(printed.contains(case), "{case} did not fail: {printed}");
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
fn the_alerts_doc_shows_the_shipped_configs_and_a_runbook_for_every_alert() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/alerts.md")).unwrap();
    for file in [
        "dashboards/prometheus.yml",
        "dashboards/alertmanager/alertmanager.yml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(
            doc.contains(&text),
            "docs/alerts.md does not show {file} as shipped"
        );
    }
    let alerts = std::fs::read_to_string(prometheus_dir().join("alerts.yml")).unwrap();
    let table = std::fs::read_to_string(root.join("README.md")).unwrap();
    for name in rule_values(&alerts, "alert") {
        assert!(
            doc.contains(&format!("\n### {name}\n")),
            "docs/alerts.md has no runbook for {name}"
        );
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "docs/alerts.md's table lacks {name}"
        );
        assert!(
            table.contains(&format!(
                "[`{name}`](docs/alerts.md#{})",
                name.to_lowercase()
            )),
            "README.md's alert table lacks {name}"
        );
    }
}

#[test]
fn the_site_agent_and_the_central_receiver_configs_pass_promtool() {
    let dashboards = prometheus_dir().join("..");
    let Some((status, printed)) = run_tool(
        Command::new("promtool")
            .args(["check", "config", "--agent", "agent/prometheus-agent.yml"])
            .current_dir(&dashboards),
        "prometheus",
    ) else {
        return;
    };
    assert!(status.success(), "{printed}");
    let (status, printed) = run_tool(
        Command::new("promtool")
            .args(["check", "config", "central/prometheus-receiver.yml"])
            .current_dir(&dashboards),
        "prometheus",
    )
    .unwrap();
    assert!(status.success(), "{printed}");
    assert!(printed.contains("2 rule files found"), "{printed}");
}

#[test]
fn vmalert_accepts_the_shipped_rule_files() {
    let Some((status, printed)) = run_tool(
        Command::new("vmalert")
            .args([
                "-dryRun",
                "-rule=rules.yml",
                "-rule=alerts.yml",
                "-loggerLevel=ERROR",
            ])
            .current_dir(prometheus_dir()),
        "victoria-metrics",
    ) else {
        return;
    };
    assert!(status.success(), "{printed}");
    // A file it cannot parse fails the same run: the check can fail.
    let broken = tempfile::TempDir::new().unwrap();
    let file = broken.path().join("broken.yml");
    std::fs::write(
        &file,
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: 'up{'\n",
    )
    .unwrap();
    let (status, printed) = run_tool(
        Command::new("vmalert")
            .arg("-dryRun")
            .arg(format!("-rule={}", file.display()))
            .arg("-loggerLevel=ERROR"),
        "victoria-metrics",
    )
    .unwrap();
    assert!(!status.success(), "{printed}");
}

/// The shipped Alertmanager config's inhibition stays within a site: site a's stale source
/// holds back site a's drop alert, never site b's of the same pool and source names.
#[tokio::test]
async fn a_stale_source_inhibits_its_own_sites_alerts_only() {
    use crate::common::{KillOnDrop, free_port, http, spawn_tool};
    let data = tempfile::TempDir::new().unwrap();
    let port = free_port();
    let Some(child) = spawn_tool(
        Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                prometheus_dir()
                    .join("../alertmanager/alertmanager.yml")
                    .display()
            ))
            .arg(format!("--storage.path={}", data.path().display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
        "prometheus-alertmanager",
    ) else {
        return;
    };
    let _alertmanager = KillOnDrop(child);
    let base = format!("http://127.0.0.1:{port}/api/v2");
    let alert = |name: &str, site: &str| {
        serde_json::json!({
            "labels": {
                "alertname": name, "site": site, "instance": "exporter:9898",
                "pool": "ultimate_proxy", "source": "proxy", "account": "main",
                "severity": "critical",
            },
        })
    };
    let alerts = serde_json::json!([
        alert("MiningSourceStale", "a"),
        alert("MiningHashrateDrop", "a"),
        alert("MiningHashrateDrop", "b"),
    ]);
    let start = std::time::Instant::now();
    let inhibited = loop {
        let _ = http()
            .post(format!("{base}/alerts"))
            .header("content-type", "application/json")
            .body(alerts.to_string())
            .send()
            .await;
        let listed: Option<serde_json::Value> = match http()
            .get(format!("{base}/alerts"))
            .query(&[("filter", "alertname=\"MiningHashrateDrop\"")])
            .send()
            .await
        {
            Ok(response) => serde_json::from_slice(&response.bytes().await.unwrap()).ok(),
            Err(_) => None,
        };
        let by_site: Vec<(String, bool)> = listed
            .as_ref()
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
            .map(|a| {
                let site = a["labels"]["site"].as_str().unwrap_or("").to_string();
                let held = a["status"]["inhibitedBy"]
                    .as_array()
                    .is_some_and(|by| !by.is_empty());
                (site, held)
            })
            .collect();
        if by_site.iter().any(|(_, held)| *held) || start.elapsed().as_secs() > 20 {
            break by_site;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let mut inhibited = inhibited;
    inhibited.sort();
    assert_eq!(
        inhibited,
        [("a".to_string(), true), ("b".to_string(), false)],
        "site a's drop held back by its stale source, site b's not"
    );
}

#[test]
fn the_quiet_hashprice_case_fails_on_a_ratio_against_the_hashprice_of_the_moment() {
    // The revenue ratio read against the expected revenue of now rather than its mean over
    // the same day: a hashprice rise alone would then fire MiningRevenueBelowExpected.
    let out = tempfile::TempDir::new().unwrap();
    let rules = std::fs::read_to_string(prometheus_dir().join("rules.yml")).unwrap();
    let averaged =
        "(avg_over_time(pool_account_currency:mining_revenue_expected_per_day:hashprice[1d]))";
    assert_eq!(rules.matches(averaged).count(), 1, "{rules}");
    let naive = rules.replace(
        averaged,
        "(pool_account_currency:mining_revenue_expected_per_day:hashprice)",
    );
    std::fs::write(out.path().join("rules.yml"), naive).unwrap();
    std::fs::copy(
        prometheus_dir().join("alerts.yml"),
        out.path().join("alerts.yml"),
    )
    .unwrap();
    let Some((status, printed)) = shipped_cases_against(out.path(), "alerts_test.yml") else {
        return;
    };
    assert!(!status.success(), "{printed}");
    assert!(
        printed.contains("a hashprice rise alone stays silent"),
        "{printed}"
    );
}
