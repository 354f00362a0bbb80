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

use crate::common::{KillOnDrop, http, start_prometheus};
use crate::dashboards::{dashboards, dashboards_dir, exprs, panels};

/// A Prometheus server that is killed when dropped, whatever the test's outcome.
struct Prometheus {
    _process: KillOnDrop,
    base: String,
    _data: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus on loopback scraping `target` every second with the shipped rules.
    /// None when it is not installed (a failure under CI=true).
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

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let response = http()
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .ok()?;
        let body: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
        (body["status"] == "success").then(|| body["data"].clone())
    }

    /// The result of an instant query; panics on a query Prometheus refuses.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let response = http()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", expr)])
            .send()
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["status"], "success", "{expr}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits (at most `limit`) until `check` holds on a query's answer.
    async fn wait_for(&self, what: &str, limit: Duration, check: impl AsyncCheck) {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if check.holds(self).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!("Prometheus: {what} not seen within {limit:?}");
    }
}

trait AsyncCheck {
    async fn holds(&self, prometheus: &Prometheus) -> bool;
}

/// Holds once the instant query returns at least one series.
struct HasData<'a>(&'a str);

impl AsyncCheck for HasData<'_> {
    async fn holds(&self, prometheus: &Prometheus) -> bool {
        match prometheus.get("/api/v1/query", &[("query", self.0)]).await {
            Some(data) => data["result"].as_array().is_some_and(|r| !r.is_empty()),
            None => false,
        }
    }
}

/// A panel's query as Grafana would send it with every variable at All.
fn as_grafana_sends_it(expr: &str) -> String {
    expr.replace("$__rate_interval", "15s")
        .replace("$site", ".*")
        .replace("$pool", ".*")
        .replace("$source", ".*")
        .replace("$account", ".*")
        .replace("$worker", ".*")
}

/// `label_values(selector, label)` as a PromQL query for the same label values.
fn label_values_query(definition: &str) -> String {
    let inner = definition
        .strip_prefix("label_values(")
        .and_then(|d| d.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a label_values query: {definition}"));
    let (selector, label) = inner.rsplit_once(',').unwrap();
    as_grafana_sends_it(&format!(
        "group by ({}) ({})",
        label.trim(),
        selector.trim()
    ))
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

    prometheus
        .wait_for(
            "the exporter target up",
            Duration::from_secs(30),
            HasData("up{job=\"mining-exporter\"} == 1"),
        )
        .await;
    // Every source polled and scraped, and rates with two samples in their window.
    prometheus
        .wait_for(
            "all six sources up (three pools, three http_json)",
            Duration::from_secs(30),
            HasData("count(mining_exporter_source_up == 1) == 6"),
        )
        .await;
    prometheus
        .wait_for(
            "rates over 15s",
            Duration::from_secs(30),
            HasData("rate(mining_exporter_upstream_requests_total[15s]) > 0"),
        )
        .await;

    // Every rule, recording and alerting, evaluates without error.
    let recorded: Vec<String> = {
        let groups = prometheus.get("/api/v1/rules", &[]).await.unwrap()["groups"].clone();
        let rules: Vec<Value> = groups
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        assert_eq!(rules.len(), 14, "rules loaded: {rules:#?}");
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
        prometheus
            .wait_for(name, Duration::from_secs(20), HasData(name))
            .await;
    }

    // Every dashboard panel query and variable query returns data.
    let mut panel_queries = 0;
    let mut variable_queries = 0;
    for (file, dashboard) in dashboards() {
        for panel in panels(&dashboard) {
            for expr in exprs(panel) {
                let sent = as_grafana_sends_it(expr);
                let result = prometheus.query(&sent).await;
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
                let sent = label_values_query(definition);
                let result = prometheus.query(&sent).await;
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
        14,
        recorded.len()
    );
    assert!(panel_queries >= 30, "{panel_queries}");

    shutdown.cancel();
    serving.await.unwrap().unwrap();
}
