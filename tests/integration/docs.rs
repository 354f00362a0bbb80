//! The README as a front door and docs/ behind it: the README stays small, every docs file is
//! reachable from it, and every link in them, like every alert's runbook_url, lands on a
//! file and a heading that exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::dashboards::rule_values;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The README and every file under docs/.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of a Markdown text outside its fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// A heading's anchor as GitHub makes it: lower case, spaces to hyphens, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of a Markdown file: its headings' slugs, a repeated one with -1, -2, ...
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = slug(heading.trim_start_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// The targets of the inline links `[text](target)` in a Markdown text's prose, with inline
/// code spans left out.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        let mut outside = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                outside.push_str(part);
            } else {
                outside.push_str("code");
            }
        }
        let mut rest = outside.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

/// Where `target`, written in `from`, leads: a file that exists and, given an anchor, a
/// heading of it. The problem, if not.
fn resolve(from: &Path, target: &str) -> Result<(), String> {
    if target.starts_with("http://")
        || target.starts_with("https://")
        || target.starts_with("mailto:")
    {
        return Ok(());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let file = if path.is_empty() {
        from.to_path_buf()
    } else {
        from.parent().unwrap().join(path)
    };
    if !file.exists() {
        return Err(format!("{target}: no file {}", file.display()));
    }
    if let Some(anchor) = anchor {
        if file.extension().is_none_or(|e| e != "md") {
            return Err(format!(
                "{target}: an anchor into a file that is not Markdown"
            ));
        }
        if !anchors(&read(&file)).contains(anchor) {
            return Err(format!(
                "{target}: {} has no heading #{anchor}",
                file.display()
            ));
        }
    }
    Ok(())
}

#[test]
fn the_readme_is_a_front_door_of_at_most_12_kib() {
    let readme = read(&root().join("README.md"));
    assert!(
        readme.len() <= 12 * 1024,
        "README.md is {} bytes",
        readme.len()
    );
    for section in [
        "## Quick start",
        "## Running it for real",
        "## Alerts",
        "## Documentation",
    ] {
        assert!(
            readme.contains(&format!("\n{section}\n")),
            "README.md lacks {section}"
        );
    }
    // Install offers the Debian package first.
    let install = readme.split("## Running it for real").nth(1).unwrap();
    let deb = install.find("dpkg -i").unwrap();
    for other in ["cargo install", "docker"] {
        assert!(
            install.find(other).is_none_or(|at| at > deb),
            "{other} before the package"
        );
    }
    for command in ["check --config", "doctor --config", "run --config"] {
        assert!(
            readme.contains(command),
            "README.md does not show {command}"
        );
    }
}

#[test]
fn every_docs_file_is_linked_from_the_readme() {
    let readme = read(&root().join("README.md"));
    let linked: BTreeSet<String> = links(&readme).into_iter().collect();
    for file in documents().iter().skip(1) {
        let name = format!("docs/{}", file.file_name().unwrap().to_string_lossy());
        assert!(linked.contains(&name), "README.md does not link {name}");
    }
}

#[test]
fn every_link_in_the_readme_and_docs_lands_on_a_file_and_heading() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in documents() {
        for target in links(&read(&file)) {
            checked += 1;
            if let Err(problem) = resolve(&file, &target) {
                problems.push(format!("{}: {problem}", file.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(checked >= 30, "only {checked} links");
    // The checker itself: a missing file and a missing heading are both caught.
    let readme = root().join("README.md");
    assert!(resolve(&readme, "docs/nowhere.md").is_err());
    assert!(resolve(&readme, "docs/alerts.md#no-such-heading").is_err());
    assert!(resolve(&readme, "docs/alerts.md#mininghashratedrop").is_ok());
}

#[test]
fn every_runbook_url_lands_on_its_alert_s_runbook() {
    let alerts = read(&root().join("dashboards/prometheus/alerts.yml"));
    let urls = rule_values(&alerts, "runbook_url");
    let names = rule_values(&alerts, "alert");
    assert_eq!(urls.len(), names.len(), "{urls:?}");
    for (name, url) in names.iter().zip(&urls) {
        assert_eq!(url, &format!("docs/alerts.md#{}", name.to_lowercase()));
        resolve(&root().join("README.md"), url).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn headings_become_the_anchors_github_makes() {
    assert_eq!(slug(" MiningHashrateDrop"), "mininghashratedrop");
    assert_eq!(
        slug(" Ultimate Proxy (`kind = \"ultimate_proxy\"`)"),
        "ultimate-proxy-kind--ultimate_proxy"
    );
    assert_eq!(
        slug(" Restarts and the state directory"),
        "restarts-and-the-state-directory"
    );
    let twice = anchors("# A\n## A\n```\n# not a heading\n```\n");
    assert_eq!(twice, BTreeSet::from(["a".to_string(), "a-1".to_string()]));
}

/// What the docs say the code counts is what the code counts: every reason and kind a
/// counter takes, the backfill's skip reasons, when an optional endpoint is switched off, and
/// how the systemd unit keeps its state.
#[test]
fn every_documented_reason_kind_and_default_is_the_code_s() {
    let metrics = read(&root().join("docs/metrics.md"));
    let row = |family: &str| -> String {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("| `{family}`")))
            .unwrap_or_else(|| panic!("docs/metrics.md has no row for {family}"))
            .to_string()
    };
    let skipped = row("mining_exporter_items_skipped_total");
    let help = mining_exporter::metrics::exporter::ITEMS_SKIPPED.help;
    for reason in mining_exporter::snapshot::SKIP_REASONS {
        assert!(
            skipped.contains(&format!("`{reason}`")),
            "docs/metrics.md leaves out {reason}: {skipped}"
        );
        assert!(
            help.contains(&format!("{reason}:")),
            "the HELP leaves out {reason}: {help}"
        );
    }
    let errors = row("mining_exporter_poll_errors_total");
    for kind in mining_exporter::metrics::POLL_ERROR_KINDS {
        assert!(
            errors.contains(&format!("`{kind}`")),
            "docs/metrics.md leaves out {kind}"
        );
    }
    let backfill = read(&root().join("docs/backfill.md"));
    for (reason, _) in mining_exporter::backfill::history::Skipped::default().counts() {
        assert!(
            backfill.contains(&format!("`{reason}`")),
            "docs/backfill.md leaves out {reason}"
        );
    }
    let ordinal = ["first", "second", "third", "fourth", "fifth"]
        [mining_exporter::sources::optional::SWITCH_OFF_AFTER as usize - 1];
    let any_api = read(&root().join("docs/any-api.md"));
    assert!(
        any_api.contains(&format!("{ordinal} 404 in a row")),
        "docs/any-api.md says when an optional endpoint is switched off otherwise"
    );
    let unit = read(&root().join("deploy/systemd/mining-exporter.service"));
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(
        unit.contains("StateDirectory=") && !exec.contains("--state-dir"),
        "{exec}"
    );
    let budgets = read(&root().join("docs/budgets.md"));
    assert!(budgets.contains("systemd unit keeps a state directory (`StateDirectory=`"));
}
