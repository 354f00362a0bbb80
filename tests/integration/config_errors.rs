//! Bad configs: exit code 2 and one message naming the file, the key and the fix.

use std::process::Command;

use mining_exporter::config::{Config, SecretMode, Trigger};

use crate::common::*;

const SOURCE: &str =
    "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"p\"\ntoken_file = \"token\"\n";

const OURPOOL: &str =
    "[[sources]]\nkind = \"ourpool\"\nname = \"o\"\naccount = \"farm\"\ntoken_file = \"token\"\n";
const LUXOR: &str = "[[sources]]\nkind = \"luxor\"\nname = \"l\"\ntoken_file = \"token\"\n";
/// A generic source up to its first mapping, whose keys each case appends.
const HTTP_JSON: &str = "[[sources]]\nkind = \"http_json\"\nname = \"h\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_file = \"token\"\n[[sources.endpoints]]\npath = \"/x\"\n[[sources.endpoints.metrics]]\n";
/// A new family's name, type and help, for the cases about its value.
const NEW_FAMILY: &str = "name = \"mining_x_ratio\"\ntype = \"gauge\"\nhelp = \"x\"\n";

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
    // The file as the user named it, whatever the temporary folder was.
    let named = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes).replace(&file.display().to_string(), "bad.toml")
    };
    (
        out.status.code().unwrap_or(-1),
        named(&out.stdout),
        named(&out.stderr),
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
fn every_bad_config_gives_its_exact_error_naming_file_key_and_fix() {
    // Each broken config and the exact error `check` prints for it (the file as named).
    let cases: &[(&str, String, &str)] = &[
        (
            "target utilization out of range",
            format!("target_utilization = 1.5\n{SOURCE}"),
            r#"error: bad.toml: target_utilization: 1.5 is not a share between 0.1 and 1
  fix: write the share of each budget the poll plan may fill, e.g. 0.85; the rest is room for retries
"#,
        ),
        (
            "host with a scheme",
            format!("{SOURCE}[hosts.\"https://api.ultimate-proxy.com\"]\nlimits = [\"60/1m\"]\n"),
            r#"error: bad.toml: hosts."https://api.ultimate-proxy.com": "https://api.ultimate-proxy.com" is not a host name or address
  fix: write the host alone, as base_url names it: no scheme, port or path, e.g. [hosts."api.example.com"]
"#,
        ),
        (
            "budget target utilization out of range",
            format!(
                "{SOURCE}budget = \"b\"\n[budgets.b]\nlimits = [\"10/1m\"]\ntarget_utilization = 0\n"
            ),
            r#"error: bad.toml: budgets.b.target_utilization: 0 is not a share between 0.1 and 1
  fix: write the share of each budget the poll plan may fill, e.g. 0.85; the rest is room for retries
"#,
        ),
        (
            "unknown key",
            format!("{SOURCE}tokn = \"x\"\n"),
            r#"error: bad.toml: line 5, `tokn`: unknown field `tokn`, expected one of `kind`, `name`, `base_url`, `token_env`, `token_file`, `interval`, `schedule`, `budget`, `timeout`, `max_retries`, `retry_backoff`, `max_response_bytes`, `max_poll_bytes`, `worker_series`, `max_workers`, `account`, `tier`
  fix: remove the key or correct its spelling; config.example.toml documents every key
"#,
        ),
        (
            "inline token",
            format!("{SOURCE}token = \"inline-s3cret-value\"\n"),
            r#"error: bad.toml: sources[0].token: a token is never written inline in the config file
  fix: remove the key; put the token in an environment variable and set token_env = "VAR_NAME", or in a file readable only by the exporter and set token_file = "/path/to/file"
"#,
        ),
        (
            "missing token",
            "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"p\"\n".into(),
            r#"error: bad.toml: sources[0].token_env (source "p"): no token configured
  fix: set token_env = "VAR_NAME" (an environment variable holding the token) or token_file = "/path/to/file"
"#,
        ),
        (
            "duplicate name",
            format!("{SOURCE}{SOURCE}"),
            r#"error: bad.toml: sources[1].name: the name "p" is already used by sources[0]
  fix: give every source a unique name: it becomes the `source` label
"#,
        ),
        (
            "bad duration",
            format!("{SOURCE}interval = \"fast\"\n"),
            r#"error: bad.toml: sources[0].interval (source "p"): "fast" is not a duration (expected number at 0)
  fix: write a duration like "60s", "5m" or "1h 30m"
"#,
        ),
        (
            "interval and schedule",
            format!("{SOURCE}interval = \"1m\"\nschedule = \"0 * * * * *\"\n"),
            r#"error: bad.toml: sources[0].schedule (source "p"): both interval and schedule are set
  fix: keep one: interval = "60s" polls at a fixed pace, schedule = "0 * * * * *" on a cron schedule
"#,
        ),
        (
            "bad cron",
            format!("{SOURCE}schedule = \"every minute\"\n"),
            r#"error: bad.toml: sources[0].schedule (source "p"): "every minute" is not a valid cron expression
  fix: write six fields with seconds first, e.g. "0 */5 * * * *" for every five minutes
"#,
        ),
        (
            "unknown kind",
            SOURCE.replace("ultimate_proxy", "nicehash"),
            r#"error: bad.toml: line 2, `kind`: unknown variant `nicehash`, expected one of `ultimate_proxy`, `ourpool`, `luxor`, `http_json`
  fix: use one of the values listed above
"#,
        ),
        (
            "unknown tier",
            format!("{SOURCE}tier = \"gold\"\n"),
            r#"error: bad.toml: line 5, `tier`: unknown variant `gold`, expected `vip` or `non_vip`
  fix: use one of the values listed above
"#,
        ),
        (
            "undefined budget",
            format!("{SOURCE}budget = \"shared\"\n"),
            r#"error: bad.toml: sources[0].budget (source "p"): no [budgets.shared] is defined
  fix: define it, e.g. [budgets.NAME] limits = ["10/1m"], or remove `budget` to use the pool's default
"#,
        ),
        (
            "bad window",
            format!("{SOURCE}budget = \"b\"\n[budgets.b]\nlimits = [\"10 per minute\"]\n"),
            r#"error: bad.toml: budgets.b.limits[0]: "10 per minute" is not COUNT/DURATION
  fix: write each window as "COUNT/DURATION", e.g. "10/1m" or "1000/1h"
"#,
        ),
        (
            "a key of another kind",
            format!("{OURPOOL}tier = \"vip\"\n"),
            r#"error: bad.toml: sources[0].tier (source "o"): `tier` does not apply to ourpool sources
  fix: remove it; the keys only some kinds take are, for ourpool: account
"#,
        ),
        (
            "ourpool without account",
            OURPOOL.replace("account = \"farm\"\n", ""),
            r#"error: bad.toml: sources[0].account (source "o"): ourpool sources need `account`
  fix: add it; config.example.toml shows a block for every pool
"#,
        ),
        (
            "luxor with an account",
            format!("{LUXOR}account = \"x\"\n"),
            r#"error: bad.toml: sources[0].account (source "l"): `account` does not apply to luxor sources
  fix: remove it; the keys only some kinds take are, for luxor: currency, subaccounts, site_id
"#,
        ),
        (
            "unknown currency",
            format!("{LUXOR}currency = \"ETH\"\n"),
            r#"error: bad.toml: sources[0].currency (source "l"): "ETH" is not a currency the pool's summary and workers take
  fix: use one of BTC, LTC_DOGE, SC, ZEC, ZEN
"#,
        ),
        (
            "subaccounts and site",
            format!(
                "{LUXOR}subaccounts = [\"a\"]\nsite_id = \"b0a5fad8-4f1c-4e6a-9a8e-0c1d2e3f4a5b\"\n"
            ),
            r#"error: bad.toml: sources[0].site_id (source "l"): both subaccounts and site_id are set
  fix: keep one: subaccounts names them, site_id watches every subaccount of a site
"#,
        ),
        (
            "bad site id",
            format!("{LUXOR}site_id = \"main site\"\n"),
            r#"error: bad.toml: sources[0].site_id (source "l"): not a site id
  fix: copy the site's UUID from the pool's UI, e.g. "b0a5fad8-4f1c-4e6a-9a8e-0c1d2e3f4a5b"
"#,
        ),
        (
            "subaccount twice",
            format!("{LUXOR}subaccounts = [\"a\", \"b\", \"a\"]\n"),
            r#"error: bad.toml: sources[0].subaccounts[2] (source "l"): "a" is listed twice
  fix: list each subaccount once
"#,
        ),
        (
            "comma in a subaccount",
            format!("{LUXOR}subaccounts = [\"a,b\"]\n"),
            r#"error: bad.toml: sources[0].subaccounts[0] (source "l"): "a,b" is not a subaccount name
  fix: write each name as the pool shows it, without commas
"#,
        ),
        (
            "zero max_workers",
            format!("{SOURCE}max_workers = 0\n"),
            r#"error: bad.toml: sources[0].max_workers (source "p"): 0 workers is not a limit
  fix: write at least 1, or worker_series = "none" for no per-worker series
"#,
        ),
        (
            "unknown worker_series",
            format!("{SOURCE}worker_series = \"some\"\n"),
            r#"error: bad.toml: line 5, `worker_series`: unknown variant `some`, expected one of `all`, `essential`, `none`
  fix: use one of the values listed above
"#,
        ),
        (
            "an unknown key in a mapping, on its own line",
            format!("{HTTP_JSON}{NEW_FAMILY}valu = \"$.a\"\n"),
            r#"error: bad.toml: line 12, `endpoints` … `valu`: unknown field `valu`, expected one of `name`, `type`, `help`, `unit`, `items`, `value`, `format`, `scale`, `values`, `default`, `units`, `unit_from`, `thousands_separator`, `decimal_separator`, `optional`, `labels`
  fix: remove the key or correct its spelling; config.example.toml documents every key
"#,
        ),
        (
            "a JSONPath that does not parse",
            format!("{HTTP_JSON}{NEW_FAMILY}value = \"$.a[\"\n"),
            r#"error: bad.toml: sources[0].endpoints[0].metrics[0].value (source "h"): "$.a[" is not a JSONPath: at position 3, parser error
  fix: write an RFC 9535 JSONPath from the document's root, e.g. "$.data[*]" or "$.balance_amount"
"#,
        ),
        (
            "a contract family with other labels",
            format!("{HTTP_JSON}name = \"mining_worker_up\"\nvalue = \"$.a\"\nlabels = {{ worker = \"$.w\" }}\n"),
            r#"error: bad.toml: sources[0].endpoints[0].metrics[0].labels (source "h"): mining_worker_up has the labels account, worker, and the mapping gives worker
  fix: give exactly the family's labels (pool and source are added)
"#,
        ),
        (
            "a name that is neither the contract's nor mining_",
            format!("{HTTP_JSON}name = \"payout\"\nvalue = \"$.a\"\n"),
            r#"error: bad.toml: sources[0].endpoints[0].metrics[0].name (source "h"): "payout" is neither a family of the contract nor a new mining_ name
  fix: name it mining_<what>[_<unit>][_total] in lower case, e.g. mining_payout_balance; or use a family of the contract (docs/metrics.md)
"#,
        ),
        (
            "a counter without _total",
            format!("{HTTP_JSON}name = \"mining_paid\"\ntype = \"counter\"\nhelp = \"x\"\nvalue = \"$.a\"\n"),
            r#"error: bad.toml: sources[0].endpoints[0].metrics[0].name (source "h"): mining_paid is a counter, and a counter's name ends in _total
  fix: rename it mining_paid_total
"#,
        ),
        (
            "a unit that is not a base unit",
            format!("{HTTP_JSON}name = \"mining_latency_milliseconds\"\ntype = \"gauge\"\nhelp = \"x\"\nvalue = \"$.a\"\n"),
            r#"error: bad.toml: sources[0].endpoints[0].metrics[0].name (source "h"): mining_latency_milliseconds is in milliseconds, not a base unit
  fix: name it in seconds and convert with `scale`
"#,
        ),
        (
            "a new family without help",
            format!("{HTTP_JSON}name = \"mining_x_ratio\"\ntype = \"gauge\"\nunit = \"ratio\"\nvalue = \"$.a\"\n"),
            r#"error: bad.toml: sources[0].endpoints[0].metrics[0].help (source "h"): mining_x_ratio is a new family and needs a help text of one line
  fix: add help = "what the value is, and its unit" (up to 300 characters)
"#,
        ),
        (
            "a credential in a plain header",
            HTTP_JSON.replace("[[sources.endpoints]]", "headers = { \"X-Auth-Token\" = \"abc\" }\n[[sources.endpoints]]") + NEW_FAMILY + "value = \"$.a\"\n",
            r#"error: bad.toml: sources[0].headers.X-Auth-Token (source "h"): a header that carries a credential is never written in the config file
  fix: send the key with token_env/token_file and auth = "header" (auth_header names the header), or sign with [sources.signing]
"#,
        ),
        (
            "an inline signing secret",
            HTTP_JSON.replace("[[sources.endpoints]]", "[sources.signing]\nsecret = \"inline-s3cret-value\"\n[[sources.endpoints]]") + NEW_FAMILY + "value = \"$.a\"\n",
            r#"error: bad.toml: sources[0].signing.secret: a secret is never written inline in the config file
  fix: remove the key; put the secret in an environment variable and set signing.secret_env = "VAR_NAME", or in a file readable only by the exporter and set signing.secret_file = "/path/to/file"
"#,
        ),
        (
            "a generic source without base_url",
            HTTP_JSON.replace("base_url = \"http://127.0.0.1:1\"\n", "") + NEW_FAMILY + "value = \"$.a\"\n",
            r#"error: bad.toml: sources[0].base_url (source "h"): http_json sources need `base_url`
  fix: write the API's root, e.g. "https://api.example.com"
"#,
        ),
        (
            "a key of a pagination it does not apply to",
            format!("{HTTP_JSON}{NEW_FAMILY}value = \"$.a\"\n").replace("path = \"/x\"\n", "path = \"/x\"\n[sources.endpoints.pagination]\ntype = \"cursor\"\nfirst_page = 0\n"),
            r#"error: bad.toml: sources[0].endpoints[0].pagination.first_page (source "h"): `first_page` does not apply to "cursor" pagination
  fix: remove it; "cursor" pagination takes: param, size_param, size, has_more, next_cursor
"#,
        ),
        (
            "a label that reads a parent the items do not have",
            format!("{HTTP_JSON}name = \"mining_worker_up\"\nitems = \"$.a[*]\"\nvalue = \"$.up\"\nlabels = {{ account = \"{{parent:key}}\", worker = \"w\" }}\n"),
            r#"error: bad.toml: sources[0].endpoints[0].metrics[0].labels.account (source "h"): {parent:key} reads 1 level(s) above the item, and `items` has 1: give `items` as a list, one path per level, e.g. items = ["$.sites.*", "$.workers.*"]
  fix: give fixed text, a JSONPath of the item ("$.name"), or a template such as "{root:$.site}/{$.rack}" or "{key}"
"#,
        ),
        (
            "a clock field with a bad format",
            format!("{HTTP_JSON}{NEW_FAMILY}value = \"$.a\"\n").replace("path = \"/x\"\n", "path = \"/x\"\nquery = { start = \"{yesterday:%Q}\" }\n"),
            r#"error: bad.toml: sources[0].endpoints[0].query.start (source "h"): {yesterday:%Q}: "%Q" is not a strftime format
  fix: write the value, or a clock field such as "{yesterday}" or "{now-1h:%s}"
"#,
        ),
        (
            "a rate limit listed as an answer",
            format!("{HTTP_JSON}{NEW_FAMILY}value = \"$.a\"\n").replace("path = \"/x\"\n", "path = \"/x\"\nvalid_status_codes = [200, 429]\n"),
            r#"error: bad.toml: sources[0].endpoints[0].valid_status_codes (source "h"): 429 cannot be an answer with data
  fix: list 2xx, 4xx or 5xx statuses other than 401, 403 and 429 (those keep their meaning: a refused token, a rate limit); redirects are never followed
"#,
        ),
        (
            "certificate verification turned off",
            HTTP_JSON.replace("[[sources.endpoints]]", "[sources.tls]\ninsecure_skip_verify = true\n[[sources.endpoints]]") + NEW_FAMILY + "value = \"$.a\"\n",
            r#"error: bad.toml: sources[0].tls.insecure_skip_verify (source "h"): certificate verification cannot be turned off: a token sent to an unverified server can be read by whoever answers
  fix: give the CA that signed the API's certificate: tls.ca_file = "/etc/mining-exporter/api-ca.pem"
"#,
        ),
        (
            "a body on a GET",
            format!("{HTTP_JSON}{NEW_FAMILY}value = \"$.a\"\n").replace("path = \"/x\"\n", "path = \"/x\"\nbody = { a = 1 }\n"),
            r#"error: bad.toml: sources[0].endpoints[0].body (source "h"): a body goes with method = "POST"
  fix: add method = "POST", or remove `body`
"#,
        ),
        (
            "a label regex that does not compile",
            format!("{HTTP_JSON}name = \"mining_worker_up\"\nitems = \"$.a[*]\"\nvalue = \"$.up\"\nlabels = {{ account = \"a\", worker = {{ from = \"$.n\", replace = [{{ regex = \"(\", with = \"\" }}] }} }}\n"),
            r#"error: bad.toml: sources[0].endpoints[0].metrics[0].labels.worker.replace[0].regex (source "h"): "(" is not a regular expression
  fix: write a Rust regex (docs.rs/regex), e.g. replace = [{ regex = "^farm\\.", with = "" }]
"#,
        ),
        (
            "a unit named with no units to read it",
            format!("{HTTP_JSON}{NEW_FAMILY}value = \"$.a\"\nunit_from = \"$.unit\"\n"),
            r#"error: bad.toml: sources[0].endpoints[0].metrics[0].unit_from (source "h"): `unit_from` names a unit, and no `units` says what each is worth
  fix: add units = { "TH/s" = 1e12, "PH/s" = 1e15 }
"#,
        ),
        (
            "a block without a name",
            "[[sources]]\nkind = \"luxor\"\ntoken_file = \"token\"\n".into(),
            r#"error: bad.toml: line 2, `name`: missing field `name`
  fix: add the key; config.example.toml documents every key
"#,
        ),
        (
            "no sources",
            "[server]\nlisten = \"127.0.0.1:9898\"\n".into(),
            r#"error: bad.toml: sources: no [[sources]] are configured
  fix: add at least one [[sources]] block; config.example.toml shows one per pool
"#,
        ),
        (
            "bad listen",
            format!("[server]\nlisten = \"localhost\"\n{SOURCE}"),
            r#"error: bad.toml: server.listen: "localhost" is not an IP address with a port
  fix: write it like "127.0.0.1:9898" or "0.0.0.0:9898"
"#,
        ),
        (
            "window under a second",
            format!("{SOURCE}budget = \"b\"\n[budgets.b]\nlimits = [\"10/500ms\"]\n"),
            r#"error: bad.toml: budgets.b.limits[0]: "10/500ms": a window must be at least one second long (write "5/1s" for 5 a second)
  fix: write each window as "COUNT/DURATION", e.g. "10/1m" or "1000/1h"
"#,
        ),
        (
            "one token, two kinds, two limits",
            format!("{LUXOR}subaccounts = [\"a\"]\nbase_url = \"http://127.0.0.1:1\"\n{HTTP_JSON}name = \"mining_worker_up\"\nvalue = \"$.up\"\nlabels = {{ account = \"a\", worker = \"w\" }}\n").replace(
                "token_file = \"token\"\n[[sources.endpoints]]",
                "token_file = \"token\"\nlimits = [\"10/1m\"]\n[[sources.endpoints]]",
            ),
            r#"error: bad.toml: sources[1].limits (source "h"): sources "l" and "h" use the same token with different limits (5/5s and 10/1m), but the API counts their requests together
  fix: give them the same limits, or one [budgets.NAME] that both name with `budget`
"#,
        ),
        (
            "a token pasted into token_env",
            "[[sources]]\nkind = \"ultimate_proxy\"\nname = \"p\"\ntoken_env = \"inline-s3cret-value\"\n".into(),
            r#"error: bad.toml: sources[0].token_env (source "p"): not the name of an environment variable (letters, digits and '_', not starting with a digit); the value is not shown, in case it is a token
  fix: set token_env to the variable's name, e.g. token_env = "UP_API_KEY", and put the token in that variable
"#,
        ),
        (
            "syntax",
            "[[sources]\nkind = 1\n".into(),
            r#"error: bad.toml: line 1, [[sources]: unclosed array table, expected `]`
  fix: correct the TOML at that line; config.example.toml shows the expected form
"#,
        ),
    ];
    assert!(cases.len() >= 15);
    for (what, toml, expected) in cases {
        let (code, stdout, stderr) = check(toml);
        assert_eq!(code, 2, "{what}: exit code\n{stdout}{stderr}");
        assert_eq!(stderr, *expected, "{what}");
        assert!(
            !stderr.contains("inline-s3cret-value"),
            "{what}: echoed the inline token"
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
    let config = Config::load(
        path.as_ref(),
        SecretMode::WarnIfMissing,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    assert_eq!(config.sources.len(), 8);
    assert_eq!(
        config.sources[0].trigger,
        Trigger::Every(std::time::Duration::from_secs(60))
    );
    assert!(matches!(config.sources[1].trigger, Trigger::Cron(_)));
    assert_eq!(config.sources[1].budget, "proxy-account");

    let example = std::fs::read_to_string(path).unwrap();
    let keys =
        ["listen"]
            .iter()
            .chain(SOURCE_KEYS)
            .chain(&["limits", "target_utilization", "[hosts."]);
    for key in keys {
        assert!(
            example.contains(&format!("{key} =")) || key.starts_with('['),
            "config.example.toml does not show {key}"
        );
        assert!(
            example.contains(key),
            "config.example.toml does not show {key}"
        );
    }

    // The generic source's keys, its tables' included: each shown or described.
    for key in [
        "pool =",
        "auth =",
        "auth_header =",
        "auth_param",
        "headers =",
        "limits =",
        "[sources.signing]",
        "secret_env =",
        "secret_file",
        "max_clock_skew =",
        "[[sources.endpoints]]",
        "path =",
        "query =",
        "max_pages =",
        "[sources.endpoints.pagination]",
        "type =",
        "param =",
        "first_page",
        "size_param =",
        "size =",
        "total_pages",
        "has_more =",
        "next_cursor =",
        "next_url",
        "[[sources.endpoints.metrics]]",
        "help =",
        "unit",
        "items =",
        "value =",
        "scale =",
        "values =",
        "default =",
        "optional = true",
        "labels =",
        "scheme =",
        "timestamp_param",
        "signature_param",
        "[sources.tls]",
        "ca_file =",
        "cert_file =",
        "key_file =",
        "method = \"POST\"",
        "body =",
        "valid_status_codes =",
        "error = { path =",
        "{yesterday}",
        "\"offset\"",
        "first_offset",
        "total_items",
        "\"link_header\"",
        "{root:",
        "{parent:",
        "{key}",
        "from =",
        "trim =",
        "replace =",
        "case =",
        "format =",
        "\"rfc3339\"",
        "\"epoch_ms\"",
        "units =",
        "unit_from",
        "thousands_separator",
        "decimal_separator",
        "value = 1",
        "examples/pools/",
    ] {
        assert!(
            example.contains(key),
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
        "budget proxy-account [10/1m] (configured), plan fills up to 85% of it",
        "proxy-main: 3 requests a poll (assumed until it polls: overview + workers",
        "proxy-backup: 3 requests a poll (assumed until it polls: overview + workers (1 per 100 workers) + hashrate series (1 per algorithm)); on cron \"30 */2 * * * *\", fires every 2m on average, not moved",
        // The cron source counts: 3 a minute plus 3 every two minutes.
        "use: 4.5 of 10 requests per 1m planned (45%)",
        "budget auto:ourpool-main [100/1m, 1000/1h] (OurPool, per token)",
        "ourpool-backup: 3 requests a poll (assumed until it polls: rewards-stats + miner workers + miner stats); asked every 1m, planned the same",
        "use: 360.0 of 1000 requests per 1h planned (36%)",
        "budget auto:luxor [5/5s]",
        "budget host:api.ultimate-proxy.com [100/1m] (configured), plan fills up to 85% of it",
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
    let config = Config::parse(
        &toml,
        "x.toml",
        dir.path(),
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    assert_eq!(
        config.sources[0].budget, config.sources[1].budget,
        "same token, same budget"
    );
    let plan = mining_exporter::plan::plan(&config, &Default::default());
    // 85 % of 10 a minute, shared evenly: 4.25 each, so 3 requests every 43 s (42.4 rounded up).
    for source in &plan.sources {
        assert_eq!(
            source.trigger,
            Trigger::Every(std::time::Duration::from_secs(43))
        );
    }
    let report = mining_exporter::plan::report(&config, &plan);
    assert!(
        report.contains("asked every 20s, planned every 43s (stretched to fit)"),
        "{report}"
    );
    assert!(
        report.contains("use: 8.4 of 10 requests per 1m planned (84%); the asked intervals would need 18.0 (180%)"),
        "{report}"
    );
}

#[cfg(unix)]
#[test]
fn a_token_file_others_can_read_is_a_warning_and_a_private_one_is_not() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::TempDir::new().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let load = || {
        Config::parse(
            SOURCE,
            "perm.toml",
            dir.path(),
            SecretMode::Require,
            &mining_exporter::sources::KINDS,
        )
        .unwrap()
        .warnings
    };
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(mode)).unwrap();
        let warnings = load();
        assert_eq!(warnings.len(), 1, "{mode:o}: {warnings:?}");
        assert!(
            warnings[0]
                .starts_with("perm.toml: sources[0].token_file (source \"p\"): the token file ")
                && warnings[0].contains(&format!("readable by group or others (mode {mode:o})"))
                && warnings[0].contains("chmod 600"),
            "{}",
            warnings[0]
        );
        assert!(!warnings[0].contains(TOKEN));
    }
    for mode in [0o600, 0o400] {
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(mode)).unwrap();
        assert!(load().is_empty(), "{mode:o}");
    }
}

#[test]
fn sources_on_one_token_share_one_budget_whatever_their_kind() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let text = format!(
        "{LUXOR}subaccounts = [\"a\"]\nbase_url = \"http://127.0.0.1:1\"\n{HTTP_JSON}name = \"mining_worker_up\"\nvalue = \"$.up\"\nlabels = {{ account = \"a\", worker = \"w\" }}\n"
    );
    let config = Config::parse(
        &text,
        "t.toml",
        dir.path(),
        SecretMode::Require,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    let budgets: Vec<&str> = config.sources.iter().map(|s| s.budget.as_str()).collect();
    assert_eq!(budgets, ["auto:l", "auto:l"], "one key, one budget");
    assert_eq!(config.budgets.len(), 1);
    // The generic block gave no limits: the Luxor key's are the budget's.
    assert_eq!(config.budgets["auto:l"].limits[0].to_string(), "5/5s");
}

#[test]
fn a_token_no_header_can_carry_is_refused_at_load_and_plain_http_is_warned_about() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), "up_k_bad\u{1}token\n").unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, SOURCE).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("sources[0].token_file (source \"p\"): the token holds characters an HTTP header cannot carry"),
        "{stderr}"
    );
    assert!(!stderr.contains("bad\u{1}token"), "{stderr}");

    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    for (base_url, warned) in [
        ("http://pool.example.com", true),
        ("http://127.0.0.1:8080", false),
        ("http://localhost:8080", false),
        ("https://pool.example.com", false),
    ] {
        std::fs::write(&file, format!("{SOURCE}base_url = \"{base_url}\"\n")).unwrap();
        let out = Command::new(BIN)
            .args(["check", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{printed}");
        assert_eq!(
            printed.contains("the token travels in clear text"),
            warned,
            "{base_url}: {printed}"
        );
    }
}
