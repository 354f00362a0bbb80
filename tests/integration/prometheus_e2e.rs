//! End to end with a real Prometheus (Debian's `prometheus` package): it scrapes the exporter
//! polling the demo's simulators (the three pools and the two http_json APIs), loads rules.yml and alerts.yml, and answers, through its
//! HTTP API, every query the shipped files make: the target is up, every rule evaluates
//! without error, every recording rule produces series, and every dashboard panel and
//! variable query returns data.

use std::time::Duration;

use mining_exporter::Exporter;
use mining_exporter::demo::{DemoPools, demo_config};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::common::{KillOnDrop, get_json, query, start_prometheus, wait_for_data};
use crate::dashboards::{
    as_grafana_sends_it, dashboards, dashboards_dir, exprs, label_values_query, panels,
};

/// A Prometheus server that is killed when dropped, whatever the test's outcome.
struct Prometheus {
    _process: KillOnDrop,
    base: String,
    _data: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on loopback scraping `target` every second with the shipped rules.
    /// None when it is not installed (see spawn_tool).
    fn start(target: &str) -> Option<Prometheus> {
        let data = tempfile::TempDir::new().unwrap();
        let rules = dashboards_dir().join("prometheus");
        let config = data.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n  - {}\n\
                 scrape_configs:\n  - job_name: mining-exporter\n    static_configs:\n      - targets: ['{target}']\n        labels: {{site: demo}}\n",
                rules.join("rules.yml").display(),
                rules.join("alerts.yml").display(),
            ),
        )
        .unwrap();
        let (process, base) = start_prometheus(&config, &data.path().join("tsdb"), &[])?;
        Some(Prometheus {
            _process: process,
            base,
            _data: data,
        })
    }
}

#[tokio::test]
async fn prometheus_scrapes_evaluates_every_rule_and_answers_every_panel() {
    let pools = DemoPools::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let exporter =
        Exporter::new(demo_config(listener.local_addr().unwrap(), &pools).unwrap()).unwrap();
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(exporter.serve(listener, shutdown.clone()));
    let Some(prometheus) = Prometheus::start(&target) else {
        shutdown.cancel();
        return;
    };

    wait_for_data(
        &prometheus.base,
        "up{job=\"mining-exporter\"} == 1",
        Duration::from_secs(30),
    )
    .await;
    // Every source polled and scraped, and rates with two samples in their window.
    wait_for_data(
        &prometheus.base,
        "count(mining_exporter_source_up == 1) == 6",
        Duration::from_secs(30),
    )
    .await;
    wait_for_data(
        &prometheus.base,
        "rate(mining_exporter_upstream_requests_total[15s]) > 0",
        Duration::from_secs(30),
    )
    .await;

    // Every rule, recording and alerting, evaluates without error.
    let recorded: Vec<String> = {
        let answer = get_json(&prometheus.base, "/api/v1/rules").await;
        assert_eq!(answer["status"], "success", "{answer}");
        let groups = &answer["data"]["groups"];
        let rules: Vec<Value> = groups
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        assert_eq!(rules.len(), 22, "rules loaded: {rules:#?}");
        for rule in &rules {
            assert_eq!(rule["health"], "ok", "{rule:#}");
        }
        rules
            .iter()
            .filter(|r| r["type"] == "recording")
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    for name in &recorded {
        wait_for_data(&prometheus.base, name, Duration::from_secs(20)).await;
    }

    // Every dashboard panel query and variable query returns data.
    let mut panel_queries = 0;
    let mut variable_queries = 0;
    for (file, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            for expr in exprs(panel) {
                let sent = as_grafana_sends_it(expr, ".*");
                let result = query(&prometheus.base, &sent).await.unwrap();
                assert!(
                    !result.is_empty(),
                    "{file}: {}: no data for {sent}",
                    panel["title"]
                );
                panel_queries += 1;
            }
        }
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            if let Some(definition) = variable["definition"].as_str() {
                let sent = label_values_query(definition, ".*");
                let result = query(&prometheus.base, &sent).await.unwrap();
                assert!(
                    !result.is_empty(),
                    "{file}: ${}: no values from {sent}",
                    variable["name"]
                );
                variable_queries += 1;
            }
        }
    }
    eprintln!(
        "prometheus e2e: {} rules healthy, {} recording rules with series, {panel_queries} panel queries and {variable_queries} variable queries with data",
        22,
        recorded.len()
    );
    assert!(panel_queries >= 30, "{panel_queries}");

    // The demo's revenue, as the Revenue row shows it: what each account should earn a day
    // at the hashprice, what it was credited in 24 h, their ratio, and the power figures.
    for (what, expr) in [
        (
            "expected per day",
            "pool_account_currency:mining_revenue_expected_per_day:hashprice",
        ),
        ("realised in 24 h", "mining_account_rewards{window=\"24h\"}"),
        (
            "realised / expected",
            "pool_account_currency:mining_account_rewards_24h:ratio_to_expected",
        ),
        (
            "J/TH",
            "site_account:mining_efficiency_joules_per_terahash:ratio",
        ),
        (
            "power cost per day",
            "site_account:mining_power_cost_per_day:price",
        ),
    ] {
        let result = query(&prometheus.base, expr).await.unwrap();
        assert!(!result.is_empty(), "{what}: no data for {expr}");
        for series in &result {
            let m = &series["metric"];
            let value: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
            assert!(value.is_finite() && value > 0.0, "{what}: {series}");
            if what == "realised / expected" {
                // The simulators credit what their hashrate earns at their hashprice.
                assert!((0.5..2.0).contains(&value), "{what}: {series}");
            }
            if what == "J/TH" {
                // The demo's ASICs draw 21 to 29 J/TH, and idle controllers a little more.
                assert!((20.0..40.0).contains(&value), "{what}: {series}");
            }
            eprintln!(
                "demo revenue: {what}: {} {} {}: {value}",
                m["pool"].as_str().unwrap_or("-"),
                m["account"].as_str().unwrap_or("-"),
                m["currency"].as_str().unwrap_or("")
            );
        }
    }

    shutdown.cancel();
    serving.await.unwrap().unwrap();
}
