//! Golden triplets: tests/fixtures/<pool>/<case>/ holds config.toml (with {BASE_URL}), the
//! upstream JSON for each endpoint (an endpoint without its file answers 404), and
//! expected.prom, the pool series the exporter must produce. The generic source's cases,
//! tests/fixtures/http_json/<example>/<case>/, take their config from config.example.toml's
//! block as shipped. Each pool's folder says in requests.toml which request each file
//! answers and how the token travels. Regenerate after an intended change with:
//!     UPDATE_GOLDEN=1 cargo test --test integration golden

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use httpmock::prelude::*;
use mining_exporter::Exporter;
use mining_exporter::config::{Config, SecretMode};
use mining_exporter::demo::{config_of, example_source};
use mining_exporter::scheduler::Outcome;
use serde::Deserialize;

use crate::common::*;

/// A fixture folder's `requests.toml`: how its requests carry the token, which file answers
/// which request, and for a generic source, the example block its cases run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Requests {
    /// config.example.toml's block the cases run; without it each case has a config.toml.
    example: Option<String>,
    /// A file of examples/pools/ whose block the cases run, as shipped but for its address
    /// and where its secrets are read from.
    block: Option<String>,
    auth: Auth,
    requests: Vec<Endpoint>,
}

/// One fixture file and the request it answers. A case without the file gets a 404 there.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Endpoint {
    path: String,
    file: String,
    /// Query parameters the request must carry.
    #[serde(default)]
    query: BTreeMap<String, String>,
    /// Query parameters it must not carry (a first page has no cursor).
    #[serde(default)]
    without: Vec<String>,
}

/// How the requests must carry the token.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Auth {
    Header(String),
    Query(String),
    Bearer(bool),
}

/// Pool series and their HELP/TYPE lines; self-metrics carry times and durations.
fn pool_lines(page: &str) -> String {
    page.lines()
        .filter(|l| {
            let name = l
                .trim_start_matches("# HELP ")
                .trim_start_matches("# TYPE ");
            name.starts_with("mining_") && !name.starts_with("mining_exporter_")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The case's config.toml, with the mock server's address and the test token.
fn case_config(dir: &Path, base_url: &str, secrets: &Path) -> Config {
    let text = std::fs::read_to_string(dir.join("config.toml"))
        .unwrap()
        .replace("{BASE_URL}", base_url);
    Config::parse(
        &text,
        "config.toml",
        secrets,
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap()
}

/// The block of examples/pools/`file` pointed at `base_url`, named "golden", its token and
/// signing secret read from files in `secrets` instead of the environment.
fn shipped_block(file: &str, base_url: &str, secrets: &Path) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let mut doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let sources = doc
        .get_mut("sources")
        .and_then(|s| s.as_array_mut())
        .unwrap();
    assert_eq!(sources.len(), 1, "{file}: one block");
    let block = sources[0].as_table_mut().unwrap();
    std::fs::write(secrets.join("token"), TOKEN).unwrap();
    std::fs::write(secrets.join("secret"), "golden-signing-secret").unwrap();
    block.insert("name".into(), "golden".into());
    block.insert("base_url".into(), base_url.into());
    assert!(
        block.remove("token_env").is_some(),
        "{file}: the token comes from the environment"
    );
    block.insert("token_file".into(), "token".into());
    if let Some(signing) = block.get_mut("signing").and_then(|s| s.as_table_mut()) {
        assert!(
            signing.remove("secret_env").is_some(),
            "{file}: the secret comes from the environment"
        );
        signing.insert(
            "secret_file".into(),
            secrets.join("secret").display().to_string().into(),
        );
    }
    Config::parse(
        &toml::to_string(&doc).unwrap(),
        file,
        secrets,
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap()
}

/// config.example.toml's block `name`, pointed at the mock server.
fn example(name: &str, base_url: &str) -> Config {
    let mut source = example_source(name, base_url.to_string(), TOKEN, None).unwrap();
    source.0.name = "golden".to_string();
    config_of("127.0.0.1:0".parse().unwrap(), vec![source])
}

/// Every case of the fixture folder `folder`, as its `requests.toml` says.
async fn run_folder(folder: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder);
    let text = std::fs::read_to_string(root.join("requests.toml")).unwrap();
    let requests: Requests =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}/requests.toml: {e}", root.display()));
    match (&requests.example, &requests.block) {
        (Some(block), _) => {
            for case in cases_where(&root, |p| p.is_dir()) {
                run_case_with(&case, &requests, |url| example(block, url)).await;
            }
        }
        (None, Some(file)) => {
            let secrets = tempfile::TempDir::new().unwrap();
            for case in cases_where(&root, |p| p.is_dir()) {
                run_case_with(&case, &requests, |url| {
                    shipped_block(file, url, secrets.path())
                })
                .await;
            }
        }
        (None, None) => {
            for case in cases_where(&root, |p| p.join("config.toml").exists()) {
                let secrets = tempfile::TempDir::new().unwrap();
                std::fs::write(secrets.path().join("token"), TOKEN).unwrap();
                run_case_with(&case, &requests, |base_url| {
                    case_config(&case, base_url, secrets.path())
                })
                .await;
            }
        }
    }
}

async fn run_case_with(dir: &Path, requests: &Requests, config: impl FnOnce(&str) -> Config) {
    let server = MockServer::start_async().await;
    for Endpoint {
        path,
        file,
        query,
        without,
    } in &requests.requests
    {
        let fixture = dir.join(file);
        if !fixture.exists() {
            continue;
        }
        let body = std::fs::read_to_string(&fixture).unwrap();
        server
            .mock_async(|when, then| {
                let mut when = when.method(GET).path(path);
                when = match &requests.auth {
                    Auth::Header(name) => when.header(name, TOKEN),
                    Auth::Query(name) => when.query_param(name, TOKEN),
                    Auth::Bearer(on) => {
                        assert!(
                            *on,
                            "{}: write bearer = true, or another auth",
                            dir.display()
                        );
                        when.header("authorization", format!("Bearer {TOKEN}"))
                    }
                };
                for (k, v) in query {
                    when = when.query_param(k, v);
                }
                for k in without {
                    when = when.query_param_missing(k);
                }
                then.status(200)
                    .header("content-type", "application/json")
                    .body(body);
            })
            .await;
    }
    let exporter = Exporter::new(config(&server.base_url())).unwrap();
    // An optional endpoint a case leaves out (a 404) is known missing only after a few polls
    // in a row; until then it fails the poll.
    let mut outcome = exporter.poll_once("golden").await.unwrap();
    for _ in 1..mining_exporter::sources::optional::SWITCH_OFF_AFTER {
        if outcome != (Outcome::Failure { kind: "not_found" }) {
            break;
        }
        outcome = exporter.poll_once("golden").await.unwrap();
    }
    assert!(
        matches!(outcome, Outcome::Success { .. }),
        "{}: {outcome:?}",
        dir.display()
    );
    let actual = pool_lines(std::str::from_utf8(&exporter.exposition().current().text()).unwrap());

    let expected_file = dir.join("expected.prom");
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&expected_file, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&expected_file).unwrap_or_else(|_| {
        panic!(
            "{} missing: run with UPDATE_GOLDEN=1",
            expected_file.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{}: exposition differs from expected.prom",
        dir.display()
    );
}

fn cases_where(root: &Path, is_case: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| is_case(p))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {}", root.display());
    cases
}

#[tokio::test]
async fn ultimate_proxy_golden_cases() {
    run_folder("ultimate_proxy").await;
}

#[tokio::test]
async fn ourpool_golden_cases() {
    run_folder("ourpool").await;
}

#[tokio::test]
async fn luxor_golden_cases() {
    run_folder("luxor").await;
}

#[tokio::test]
async fn http_json_luxcore_golden_cases() {
    run_folder("http_json/luxcore").await;
}

#[tokio::test]
async fn http_json_luxbio_golden_cases() {
    run_folder("http_json/luxbio").await;
}

#[tokio::test]
async fn http_json_shape_golden_cases() {
    run_folder("http_json/shapes").await;
}

#[tokio::test]
async fn json_exporter_s_good_case_gives_the_values_and_labels_of_its_good_txt() {
    run_folder("http_json/json_exporter").await;
    let case =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http_json/json_exporter/good");
    let ours = std::fs::read_to_string(case.join("expected.prom")).unwrap();
    let theirs = std::fs::read_to_string(case.join("reference.txt")).unwrap();
    let ours: Vec<Sample> = samples(&ours)
        .into_iter()
        .map(|(name, labels, value)| {
            let name = name.strip_prefix("mining_").unwrap_or(&name).to_string();
            let labels = labels
                .into_iter()
                .filter(|(k, _)| k != "pool" && k != "source")
                .collect();
            (name, labels, value)
        })
        .collect();
    let theirs = samples(&theirs);
    assert_eq!(theirs.len(), 7, "the reference has seven samples");
    assert_eq!(ours, theirs);
}

/// (family, sorted label pairs, value) of an exposition's samples, in order.
type Sample = (String, Vec<(String, String)>, f64);

fn samples(text: &str) -> Vec<Sample> {
    let mut out: Vec<Sample> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
            let mut pairs: Vec<(String, String)> = labels
                .trim_end_matches('}')
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            pairs.sort();
            (name.to_string(), pairs, value.parse().unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

#[tokio::test]
async fn cloverpool_block_golden_cases() {
    run_folder("http_json/pools/cloverpool").await;
}

#[tokio::test]
async fn binance_pool_block_golden_cases() {
    run_folder("http_json/pools/binance").await;
}

#[tokio::test]
async fn braiins_pool_block_golden_cases() {
    run_folder("http_json/pools/braiins").await;
}

/// Every folder with a `requests.toml` is one of the runs above: a folder added without a
/// run here would silently go untested.
#[test]
fn every_fixture_folder_with_requests_is_run() {
    let runs = [
        "ultimate_proxy",
        "ourpool",
        "luxor",
        "http_json/luxcore",
        "http_json/luxbio",
        "http_json/shapes",
        "http_json/json_exporter",
        "http_json/pools/cloverpool",
        "http_json/pools/binance",
        "http_json/pools/braiins",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut found: Vec<String> = crate::common::files_under(&root)
        .into_iter()
        .filter(|file| file.file_name().is_some_and(|n| n == "requests.toml"))
        .filter_map(|file| {
            file.parent()
                .map(|folder| folder.to_string_lossy().replace('\\', "/"))
        })
        .collect();
    found.sort();
    let mut runs = runs.map(String::from).to_vec();
    runs.sort();
    assert_eq!(found, runs);
}
