//! The config loader on input nobody planned for: any text, and TOML built from the real keys
//! with values of any type. Every outcome is a config or a `ConfigError` that names the file,
//! never a panic, and never an error that echoes a secret-looking value.

use mining_exporter::config::{Config, SecretMode};
use proptest::prelude::*;

use crate::common::SOURCE_KEYS;

/// The real keys, plus two that must be refused.
fn keys() -> Vec<&'static str> {
    SOURCE_KEYS
        .iter()
        .copied()
        .chain(["token", "tokn"])
        .collect()
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_0-9./:-]{0,12}".prop_map(|s| format!("{s:?}")),
        proptest::sample::select(vec![
            "\"ultimate_proxy\"",
            "\"ourpool\"",
            "\"luxor\"",
            "\"60s\"",
            "\"0s\"",
            "\"vip\"",
            "\"BTC\"",
            "\"* * * * * *\"",
            "\"10/1m\"",
            "\"http://127.0.0.1:1\"",
            "\"token\"",
        ])
        .prop_map(str::to_string),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        proptest::collection::vec("[a-z]{0,5}", 0..3).prop_map(|v| format!("{v:?}")),
        Just("{}".to_string()),
    ]
}

fn toml_config() -> impl Strategy<Value = String> {
    let source = proptest::collection::vec((proptest::sample::select(keys()), toml_value()), 0..9)
        .prop_map(|pairs| {
            let mut text = String::from("[[sources]]\n");
            let mut seen = std::collections::BTreeSet::new();
            for (k, v) in pairs {
                if seen.insert(k) {
                    text.push_str(&format!("{k} = {v}\n"));
                }
            }
            text
        });
    let server = prop_oneof![
        Just(String::new()),
        toml_value().prop_map(|v| format!("[server]\nlisten = {v}\n")),
    ];
    let budget = prop_oneof![
        Just(String::new()),
        toml_value().prop_map(|v| format!("[budgets.b]\nlimits = [{v}]\n")),
    ];
    (server, proptest::collection::vec(source, 0..3), budget)
        .prop_map(|(server, sources, budget)| format!("{server}{}{budget}", sources.concat()))
}

fn load(text: &str) {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("token"), "s3cr3t-VALUE").unwrap();
    for mode in [SecretMode::WarnIfMissing, SecretMode::Require] {
        if let Err(e) = Config::parse(
            text,
            "fuzz.toml",
            dir.path(),
            mode,
            &mining_exporter::sources::KINDS,
        ) {
            let shown = e.to_string();
            assert!(shown.starts_with("fuzz.toml: "), "{shown}");
            assert!(shown.contains("\n  fix: "), "{shown}");
            assert!(!shown.contains("s3cr3t-VALUE"), "{shown}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_is_a_config_or_an_error_naming_the_file(text in "\\PC{0,200}") {
        load(&text);
    }

    #[test]
    fn any_toml_of_the_real_keys_is_a_config_or_an_error_naming_the_file(text in toml_config()) {
        load(&text);
    }
}
