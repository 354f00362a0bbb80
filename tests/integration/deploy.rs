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
    let copied = dockerfile_copies();
    for source in &copied {
        assert!(
            root().join(source).exists(),
            "Dockerfile copies missing {source}"
        );
    }
    assert_eq!(copied.len(), 6, "{copied:?}");
    assert!(
        read("Dockerfile").contains("\nUSER 10001:10001\n"),
        "runs as root"
    );
}

/// The paths the Dockerfile's build stage copies into its context (`COPY SRC... DEST`).
fn dockerfile_copies() -> Vec<String> {
    let dockerfile = read("Dockerfile");
    let mut copied = Vec::new();
    for line in dockerfile.lines() {
        let Some(args) = line.strip_prefix("COPY ") else {
            continue;
        };
        if args.starts_with("--from=") {
            continue;
        }
        let words: Vec<&str> = args.split_whitespace().collect();
        if let Some((_, sources)) = words.split_last() {
            copied.extend(sources.iter().map(|s| s.trim_end_matches('/').to_string()));
        }
    }
    copied
}

/// Every file the crate reads while it builds: the manifest and lock file, a build script,
/// every target Cargo.toml declares, and every file an `include_str!`/`include_bytes!` in
/// the sources names (resolved against the file that names it).
fn files_the_build_reads() -> Vec<String> {
    let mut needed = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
    if root().join("build.rs").exists() {
        needed.push("build.rs".to_string());
    }
    let manifest: toml::Table = read("Cargo.toml").parse().unwrap();
    if let Some(build) = manifest
        .get("package")
        .and_then(|p| p.get("build"))
        .and_then(|b| b.as_str())
    {
        needed.push(build.to_string());
    }
    for (table, folder) in [
        ("bench", "benches"),
        ("test", "tests"),
        ("bin", "src/bin"),
        ("example", "examples"),
    ] {
        for target in manifest
            .get(table)
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            let path = match target.get("path").and_then(|p| p.as_str()) {
                Some(path) => path.to_string(),
                None => format!("{folder}/{}.rs", target["name"].as_str().unwrap()),
            };
            needed.push(path);
        }
    }
    let mut stack = vec![root().join("src"), root().join("benches")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for macro_name in ["include_str!(\"", "include_bytes!(\""] {
                for (at, _) in text.match_indices(macro_name) {
                    let rest = &text[at + macro_name.len()..];
                    let included = &rest[..rest.find('"').unwrap()];
                    let file = path.parent().unwrap().join(included);
                    let file = std::fs::canonicalize(&file)
                        .unwrap_or_else(|e| panic!("{}: {included}: {e}", path.display()));
                    let relative = file
                        .strip_prefix(std::fs::canonicalize(root()).unwrap())
                        .unwrap_or_else(|_| panic!("{included} lies outside the crate"));
                    needed.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
    }
    needed
}

/// The image's build context, reproduced without Docker: every file the build reads lies
/// under a path the Dockerfile copies, so `docker build` cannot fail on a missing file.
#[test]
fn the_image_build_context_holds_every_file_the_crate_reads() {
    let copied = dockerfile_copies();
    let needed = files_the_build_reads();
    assert!(
        needed.iter().any(|f| f == "config.example.toml"),
        "the demo includes the example config: {needed:?}"
    );
    let missing: Vec<&String> = needed
        .iter()
        .filter(|file| {
            !copied
                .iter()
                .any(|c| *file == c || file.starts_with(&format!("{c}/")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "the Dockerfile does not copy {missing:?} (it copies {copied:?})"
    );
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
        if from != "target/dist/mining-exporter" {
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

/// `cargo build --release` (the README's first command) stays quick: whole-program LTO in one
/// codegen unit is the `dist` profile's, and what ships (the image, the Debian package, the
/// unit's manual install) is built with it.
#[test]
fn what_ships_is_built_with_the_dist_profile_and_release_stays_quick() {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let profiles = manifest["profile"].as_table().unwrap();
    let release = profiles.get("release").and_then(|p| p.as_table());
    assert!(
        release.is_none_or(|r| r.get("lto").is_none() && r.get("codegen-units").is_none()),
        "the release profile is slow to build again: {release:?}"
    );
    let dist = profiles["dist"].as_table().unwrap();
    assert_eq!(dist["inherits"].as_str(), Some("release"));
    assert_eq!(dist["lto"].as_str(), Some("fat"));
    assert_eq!(dist["codegen-units"].as_integer(), Some(1));
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("cargo build --profile dist --locked"));
    assert!(dockerfile.contains("/src/target/dist/mining-exporter"));
    let package = read("deploy/debian/build-deb.sh");
    assert!(package.contains("$root/target/dist/mining-exporter"));
    assert!(read("README.md").contains("cargo run --release -- demo"));
    assert!(
        read("README.md")
            .contains("cargo build --profile dist --locked && deploy/debian/build-deb.sh")
    );
}
