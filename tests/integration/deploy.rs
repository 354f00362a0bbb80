//! The deployment files point at things that exist: every host path docker-compose.yml
//! mounts, every file the Dockerfile copies, every repository file the systemd unit is
//! installed from; the configs they mount are valid and read their tokens where the
//! secrets are mounted; LICENSE is the license Cargo.toml names.

use std::path::Path;

use mining_exporter::config::{Config, SecretMode};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(file: &str) -> String {
    std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn every_path_the_compose_file_mounts_exists() {
    let compose = read("docker-compose.yml");
    let mut mounts = 0;
    for line in compose.lines() {
        let Some(mount) = line.trim().strip_prefix("- ./") else {
            continue;
        };
        let host = mount.split(':').next().unwrap();
        assert!(
            root().join(host).exists(),
            "docker-compose.yml mounts missing ./{host}"
        );
        mounts += 1;
    }
    assert!(mounts >= 7, "{mounts} mounts");
    assert!(compose.contains("build: ."));
    assert!(root().join("Dockerfile").exists());
    // The exporter's config reads the token where compose mounts the secret.
    assert!(compose.contains("secrets:\n      - up_api_key"));
    let config = Config::parse(
        &read("deploy/compose/config.toml"),
        "deploy/compose/config.toml",
        root(),
        SecretMode::WarnIfMissing,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    assert_eq!(
        config.sources[0].token_origin,
        "file /run/secrets/up_api_key"
    );
    assert_eq!(config.listen.to_string(), "0.0.0.0:9898");
}

#[test]
fn every_file_the_dockerfile_copies_exists() {
    let dockerfile = read("Dockerfile");
    let mut copied = 0;
    for line in dockerfile.lines() {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from=") {
            continue;
        }
        let words: Vec<&str> = args.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            assert!(
                root().join(source).exists(),
                "Dockerfile copies missing {source}"
            );
            copied += 1;
        }
    }
    assert_eq!(copied, 4, "{dockerfile}");
    assert!(dockerfile.contains("\nUSER 10001:10001\n"), "runs as root");
}

#[test]
fn the_systemd_unit_is_installed_from_files_that_exist_and_uses_them() {
    let unit = read("deploy/systemd/mining-exporter.service");
    let mut installed = 0;
    for line in unit.lines() {
        let Some(install) = line
            .trim_start_matches('#')
            .trim()
            .strip_prefix("install: ")
        else {
            continue;
        };
        let (from, to) = install.split_once(" -> ").unwrap();
        // The binary is a build output, named by Cargo.toml's package.
        if from != "target/release/mining-exporter" {
            assert!(
                root().join(from).exists(),
                "the unit is installed from missing {from}"
            );
        }
        installed += 1;
        let used = unit
            .lines()
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.contains(to));
        assert!(
            used || to.ends_with(".service"),
            "{to} is installed but unused"
        );
    }
    assert_eq!(installed, 3);
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "User=mining-exporter",
        "LoadCredential=up_api_key:",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(hardening), "unit lacks {hardening}");
    }
    // The config reads the token from the credential the unit loads.
    let config = Config::parse(
        &read("deploy/systemd/config.toml"),
        "deploy/systemd/config.toml",
        root(),
        SecretMode::WarnIfMissing,
        &mining_exporter::sources::KINDS,
    )
    .unwrap();
    assert_eq!(
        config.sources[0].token_origin,
        "file /run/credentials/mining-exporter.service/up_api_key"
    );
}

#[test]
fn the_license_file_is_the_one_cargo_toml_names() {
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("\nlicense = \"Apache-2.0\"\n"));
    let license = read("LICENSE");
    assert!(license.contains("Apache License"));
    assert!(license.contains("Version 2.0, January 2004"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
}
