//! `promtool check metrics` on what the exporter serves.

use std::io::Write;
use std::process::{Command, Stdio};

use mining_exporter::Exporter;
use mining_exporter::demo::{DemoPools, demo_config};
use mining_exporter::scheduler::Outcome;

use crate::common::{sample, spawn_tool};

/// Runs `promtool check metrics` on `page` and returns what it printed (empty: no problem).
/// None when promtool is missing and the skip was asked for (see spawn_tool).
pub fn promtool_check(page: &str) -> Option<String> {
    let mut command = Command::new("promtool");
    command
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = spawn_tool(&mut command, "prometheus")?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() || !printed.is_empty(),
        "promtool failed silently"
    );
    Some(printed)
}

#[tokio::test]
async fn the_demo_page_passes_promtool() {
    let pools = DemoPools::start().await.unwrap();
    let exporter =
        Exporter::new(demo_config("127.0.0.1:0".parse().unwrap(), &pools).unwrap()).unwrap();
    for source in ["demo-proxy", "demo-ourpool", "demo-luxor"] {
        let outcome = exporter.poll_once(source).await.unwrap();
        assert!(
            matches!(outcome, Outcome::Success { .. }),
            "{source}: {outcome:?}"
        );
    }
    let page = String::from_utf8(exporter.exposition().current().text()).unwrap();
    // The page is worth checking only if it has the families the demo promises, from every pool.
    for family in [
        "mining_worker_hashrate_hashes_per_second",
        "mining_worker_up",
        "mining_account_hashrate_hashes_per_second",
        "mining_account_balance",
        "mining_account_paid_total",
        "mining_account_info",
        "mining_hashprice",
        "mining_exporter_source_up",
        "mining_exporter_budget_remaining",
    ] {
        assert!(page.contains(&format!("# TYPE {family} ")), "no {family}");
    }
    for pool in ["ultimate_proxy", "ourpool", "luxor"] {
        assert_eq!(
            sample(
                &page,
                "mining_exporter_source_up",
                &[&format!("pool=\"{pool}\"")]
            ),
            Some(1.0),
            "{pool} is not up"
        );
    }
    // Both Luxor subaccounts have a rig01, kept apart by the account label.
    for account in ["hq", "annex"] {
        let labels = [
            "pool=\"luxor\"",
            &format!("account=\"{account}\""),
            "worker=\"rig01\"",
        ];
        assert!(
            sample(&page, "mining_worker_up", &labels).is_some(),
            "no rig01 in {account}"
        );
    }
    if let Some(problems) = promtool_check(&page) {
        assert_eq!(problems, "", "promtool check metrics complained");
    }
}
