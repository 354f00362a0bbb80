//! Worker names are pool input: quotes, backslashes, newlines and non-ASCII must come out as
//! valid exposition lines.

use httpmock::prelude::*;

use crate::common::*;
use crate::promtool::promtool_check;

#[tokio::test]
async fn tricky_worker_names_are_escaped() {
    let server = MockServer::start_async().await;
    let names = [
        "rig \"quoted\"",
        "back\\slash",
        "new\nline",
        "ünï-Ωrig 矿机",
    ];
    mock_poll(
        &server,
        names.iter().map(|n| worker(n, "online", 1.0)).collect(),
    )
    .await;
    let (exporter, _dir) = exporter(&server.base_url(), "");
    exporter.poll_once("proxy").await.unwrap();
    let page = text(&exporter);
    for escaped in [
        r#"worker="rig \"quoted\"""#,
        r#"worker="back\\slash""#,
        r#"worker="new\nline""#,
        r#"worker="ünï-Ωrig 矿机""#,
    ] {
        let line = format!(
            "mining_worker_up{{pool=\"ultimate_proxy\",source=\"proxy\",account=\"acct\",{escaped}}} 1"
        );
        assert!(
            page.lines().any(|l| l == line),
            "missing line {line}\n{page}"
        );
    }
    // Every sample is one line: the raw newline never reaches the page.
    assert!(
        page.lines()
            .all(|l| l.starts_with('#') || l.starts_with("mining_") || l.starts_with("process_")),
        "{page}"
    );
    if let Some(problems) = promtool_check(&page) {
        assert_eq!(problems, "", "promtool check metrics complained");
    }
}
