//! Bad configs: exit code 2 and one message naming the file, the key and the fix.

use std::process::Command;

use mining_exporter::config::{Config, SecretMode, Trigger};

use crate::common::*;

const SOURCE: &str =
    "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"p\"\ntoken_file = \"token\"\n";

const OURPOOL: &str =
    "[[sources]]\nkind = \"ourpool\"\nname = \"o\"\naccount = \"farm\"\ntoken_file = \"token\"\n";
const LUXOR: &str = "[[sources]]\nkind = \"luxor\"\nname = \"l\"\ntoken_file = \"token\"\n";

/// Runs `check` on `toml` (in a folder that holds a readable `token` file).
fn check(toml: &str) -> (i32, String, String) {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, toml).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `run` on `toml`, saved as `run.toml` in a folder without a token file; returns the
/// exit code and stderr. Only for configs `run` refuses: it would serve otherwise.
fn run(toml: &str) -> (i32, String) {
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("run.toml");
    std::fs::write(&file, toml).unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_bad_config_names_file_key_and_fix() {
    let cases: &[(&str, String, &str, &str)] = &[
        (
            "unknown key",
            format!("{SOURCE}tokn = \"x\"\n"),
            "`tokn`",
            "unknown field",
        ),
        (
            "inline token",
            format!("{SOURCE}token = \"inline-s3cret-value\"\n"),
            "sources[0].token",
            "never written inline",
        ),
        (
            "missing token",
            "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"p\"\n".into(),
            "sources[0].token_env",
            "no token",
        ),
        (
            "duplicate name",
            format!("{SOURCE}{SOURCE}"),
            "sources[1].name",
            "already used",
        ),
        (
            "bad duration",
            format!("{SOURCE}interval = \"fast\"\n"),
            "sources[0].interval",
            "not a duration",
        ),
        (
            "interval and schedule",
            format!("{SOURCE}interval = \"1m\"\nschedule = \"0 * * * * *\"\n"),
            "sources[0].schedule",
            "both",
        ),
        (
            "bad cron",
            format!("{SOURCE}schedule = \"every minute\"\n"),
            "sources[0].schedule",
            "cron",
        ),
        (
            "unknown kind",
            SOURCE.replace("ultimate_proxy", "nicehash"),
            "`kind`",
            "unknown variant",
        ),
        (
            "unknown tier",
            format!("{SOURCE}tier = \"gold\"\n"),
            "`tier`",
            "unknown variant",
        ),
        (
            "undefined budget",
            format!("{SOURCE}budget = \"shared\"\n"),
            "sources[0].budget",
            "no [budgets.shared]",
        ),
        (
            "bad window",
            format!("{SOURCE}budget = \"b\"\n[budgets.b]\nlimits = [\"10 per minute\"]\n"),
            "budgets.b.limits[0]",
            "COUNT/DURATION",
        ),
        (
            "a key of another kind",
            format!("{OURPOOL}tier = \"vip\"\n"),
            "sources[0].tier",
            "does not apply to ourpool",
        ),
        (
            "ourpool without account",
            OURPOOL.replace("account = \"farm\"\n", ""),
            "sources[0].account",
            "need `account`",
        ),
        (
            "luxor with an account",
            format!("{LUXOR}account = \"x\"\n"),
            "sources[0].account",
            "does not apply to luxor",
        ),
        (
            "unknown currency",
            format!("{LUXOR}currency = \"ETH\"\n"),
            "sources[0].currency",
            "not a currency",
        ),
        (
            "subaccounts and site",
            format!(
                "{LUXOR}subaccounts = [\"a\"]\nsite_id = \"b0a5fad8-4f1c-4e6a-9a8e-0c1d2e3f4a5b\"\n"
            ),
            "sources[0].site_id",
            "both",
        ),
        (
            "bad site id",
            format!("{LUXOR}site_id = \"main site\"\n"),
            "sources[0].site_id",
            "not a site id",
        ),
        (
            "subaccount twice",
            format!("{LUXOR}subaccounts = [\"a\", \"b\", \"a\"]\n"),
            "sources[0].subaccounts[2]",
            "twice",
        ),
        (
            "comma in a subaccount",
            format!("{LUXOR}subaccounts = [\"a,b\"]\n"),
            "sources[0].subaccounts[0]",
            "not a subaccount name",
        ),
        (
            "no sources",
            "[server]\nlisten = \"127.0.0.1:9898\"\n".into(),
            "sources",
            "no [[sources]]",
        ),
        (
            "bad listen",
            format!("[server]\nlisten = \"localhost\"\n{SOURCE}"),
            "server.listen",
            "IP address",
        ),
        ("syntax", "[[sources]\nkind = 1\n".into(), "line 1", ""),
    ];
    for (what, toml, key, problem) in cases {
        let (code, stdout, stderr) = check(toml);
        assert_eq!(code, 2, "{what}: exit code\n{stdout}{stderr}");
        assert!(
            stderr.contains("bad.toml"),
            "{what}: no file name in\n{stderr}"
        );
        assert!(stderr.contains(key), "{what}: no key {key:?} in\n{stderr}");
        assert!(
            stderr.contains(problem),
            "{what}: no {problem:?} in\n{stderr}"
        );
        assert!(stderr.contains("fix: "), "{what}: no fix in\n{stderr}");
        assert!(
            !stderr.contains("inline-s3cret-value"),
            "{what}: echoed the inline token"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{what}: one error"
        );
    }
}

#[test]
fn a_missing_env_token_is_a_warning_for_check_and_an_error_for_run() {
    let toml = "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"p\"\ntoken_env = \"MINING_EXPORTER_TEST_SURELY_UNSET\"\n";
    let (code, stdout, stderr) = check(toml);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("MINING_EXPORTER_TEST_SURELY_UNSET is not set"),
        "{stdout}"
    );

    let (code, stderr) = run(toml);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("run.toml")
            && stderr.contains("sources[0].token_env")
            && stderr.contains("fix: "),
        "{stderr}"
    );
}

#[test]
fn run_names_every_unreadable_token_at_once() {
    let (code, stderr) = run(&format!(
        "{}{}[[sources]]\nkind = \"luxor\"\nname = \"l\"\ntoken_file = \"missing-token\"\n",
        "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"a\"\ntoken_env = \"MINING_EXPORTER_TEST_UNSET_A\"\n",
        "[[sources]]\nkind = \"ourpool\"\nname = \"o\"\naccount = \"x\"\ntoken_env = \"MINING_EXPORTER_TEST_UNSET_B\"\n",
    ));
    assert_eq!(code, 2, "{stderr}");
    for named in [
        "sources[0].token_env",
        "MINING_EXPORTER_TEST_UNSET_A is not set",
        "sources[1].token_env",
        "MINING_EXPORTER_TEST_UNSET_B is not set",
        "sources[2].token_file",
        "missing-token",
        "3 tokens cannot be read",
        "fix: ",
    ] {
        assert!(stderr.contains(named), "{named} missing from:\n{stderr}");
    }
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
}

#[test]
fn the_example_config_is_valid_and_documents_every_key() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let config = Config::load(path.as_ref(), SecretMode::WarnIfMissing).unwrap();
    assert_eq!(config.sources.len(), 5);
    assert_eq!(
        config.sources[0].trigger,
        Trigger::Every(std::time::Duration::from_secs(60))
    );
    assert!(matches!(config.sources[1].trigger, Trigger::Cron(_)));
    assert_eq!(config.sources[1].budget, "proxy-account");

    let example = std::fs::read_to_string(path).unwrap();
    for key in [
        "listen",
        "kind",
        "name",
        "account",
        "base_url",
        "token_env",
        "token_file",
        "interval",
        "schedule",
        "tier",
        "budget",
        "timeout",
        "max_retries",
        "retry_backoff",
        "max_response_bytes",
        "currency",
        "subaccounts",
        "site_id",
        "limits",
    ] {
        assert!(
            example.contains(&format!("{key} =")),
            "config.example.toml does not show {key}"
        );
    }

    let out = Command::new(BIN)
        .args(["check", "--config", path])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A plan per budget: all three pools, the two OurPool accounts on one token together.
    for line in [
        "budget proxy-account [10/1m] (configured)",
        "proxy-main: polls every 1m",
        "budget auto:ourpool-main [100/1m, 1000/1h] (OurPool, per token)",
        "ourpool-backup: polls every 1m",
        "load: 360.0 of 1000 requests per 1h",
        "budget auto:luxor [5/5s]",
        "luxor: polls every 1m; at least 3 requests a poll",
    ] {
        assert!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
    assert_eq!(
        config.sources[3].budget, config.sources[2].budget,
        "same OurPool token, same budget"
    );
}

#[test]
fn sources_over_their_budget_are_stretched_in_the_plan() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    // Two sources on one token, non-VIP (10/min): 3 requests each every 20 s is 18/min.
    let toml = format!(
        "{SOURCE}interval = \"20s\"\n{}interval = \"20s\"\n",
        SOURCE.replace("name = \"p\"", "name = \"q\"")
    );
    let config = Config::parse(&toml, "x.toml", dir.path(), SecretMode::Require).unwrap();
    assert_eq!(
        config.sources[0].budget, config.sources[1].budget,
        "same token, same budget"
    );
    let plan = mining_exporter::plan::plan(&config);
    for source in &plan.sources {
        assert_eq!(
            source.trigger,
            Trigger::Every(std::time::Duration::from_secs(36))
        );
    }
    let report = mining_exporter::plan::report(&config, &plan);
    assert!(report.contains("stretched"), "{report}");
    assert!(
        report.contains("load: 10.0 of 10 requests per 1m"),
        "{report}"
    );
}
