//! The Debian package as an operator meets it: built by deploy/debian/build-deb.sh from the
//! test binary, installed with `dpkg -i`, its binary and `check` run on the installed
//! skeleton, every file and owner as the package says, and after `dpkg --purge` nothing
//! left: no file, no state directory, no user. Needs root and dpkg (the CI machine has both).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::common::BIN;

const PACKAGE: &str = "mining-exporter";

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn installed() -> bool {
    run("dpkg-query", &["-W", "-f=${Status}", PACKAGE])
        .1
        .contains("install ok installed")
}

fn id_of(kind: &str, name: &str) -> Option<u32> {
    let (found, line) = run("getent", &[kind, name]);
    if !found {
        return None;
    }
    line.split(':').nth(2).and_then(|id| id.trim().parse().ok())
}

/// Owner, group and mode of `path`.
fn owned(path: &str) -> (u32, u32, u32) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777)
}

/// Whether this machine can install a package; if not, the test fails with what is missing,
/// unless MINING_EXPORTER_SKIP_MISSING_TOOLS=1 asks for a skip (refused under CI=true).
fn can_install() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let dpkg = Command::new("dpkg-deb").arg("--version").output().is_ok();
    if root && dpkg {
        return true;
    }
    let why = if dpkg {
        "installing a package needs root"
    } else {
        "dpkg-deb is missing (a Debian machine has it)"
    };
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let opted_out = std::env::var("MINING_EXPORTER_SKIP_MISSING_TOOLS").is_ok_and(|v| v == "1");
    if in_ci || !opted_out {
        panic!(
            "the Debian package test cannot run: {why}; run the tests as root on Debian, or skip it with MINING_EXPORTER_SKIP_MISSING_TOOLS=1 (not under CI=true)"
        );
    }
    eprintln!("skipping the Debian package test: {why}");
    false
}

#[test]
fn the_package_installs_runs_checks_its_skeleton_and_purges_to_nothing() {
    if !can_install() {
        return;
    }
    assert!(
        !installed(),
        "{PACKAGE} is already installed on this machine: the test will not purge an operator's install"
    );
    let out = tempfile::TempDir::new().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/debian/build-deb.sh");
    let (built, printed) = run(script, &[BIN, out.path().to_str().unwrap()]);
    assert!(built, "{printed}");
    let deb = printed.trim().lines().last().unwrap().to_string();
    assert!(
        deb.ends_with(".deb") && Path::new(&deb).exists(),
        "{printed}"
    );

    let (ok, printed) = run("dpkg", &["-i", &deb]);
    // Purge whatever happens next, so a failed assertion leaves no install behind.
    struct Purge;
    impl Drop for Purge {
        fn drop(&mut self) {
            let _ = Command::new("dpkg").args(["--purge", PACKAGE]).output();
        }
    }
    let purge = Purge;
    assert!(ok, "dpkg -i failed: {printed}");
    assert!(installed());
    assert!(
        printed.contains("systemctl enable --now mining-exporter"),
        "{printed}"
    );

    let (ok, version) = run("/usr/bin/mining-exporter", &["--version"]);
    assert!(ok, "{version}");
    assert!(
        version.starts_with(&format!("mining-exporter {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    // The skeleton as installed passes check; its token is a credential the unit loads, so
    // check may only warn that it cannot read it here.
    let (ok, checked) = run(
        "/usr/bin/mining-exporter",
        &["check", "--config", "/etc/mining-exporter/config.toml"],
    );
    assert!(ok, "{checked}");
    assert!(checked.contains("proxy"), "{checked}");

    let uid = id_of("passwd", PACKAGE).expect("the system user was made");
    let gid = id_of("group", PACKAGE).expect("the system group was made");
    assert!(uid < 1000, "a system user has a system uid, not {uid}");
    let (_, shell) = run("getent", &["passwd", PACKAGE]);
    assert!(shell.trim_end().ends_with("/usr/sbin/nologin"), "{shell}");
    for (path, expected) in [
        ("/usr/bin/mining-exporter", (0, 0, 0o755)),
        ("/etc/mining-exporter", (0, 0, 0o755)),
        ("/etc/mining-exporter/config.toml", (0, 0, 0o644)),
        ("/lib/systemd/system/mining-exporter.service", (0, 0, 0o644)),
        ("/usr/share/doc/mining-exporter/copyright", (0, 0, 0o644)),
        (
            "/usr/share/doc/mining-exporter/config.example.toml",
            (0, 0, 0o644),
        ),
        ("/var/lib/mining-exporter", (uid, gid, 0o700)),
    ] {
        assert_eq!(owned(path), expected, "{path}: (uid, gid, mode)");
    }
    let unit = std::fs::read_to_string("/lib/systemd/system/mining-exporter.service").unwrap();
    assert!(
        unit.contains(
            "ExecStart=/usr/bin/mining-exporter run --config /etc/mining-exporter/config.toml"
        ),
        "{unit}"
    );
    assert!(
        unit.contains("StateDirectory=mining-exporter") && unit.contains("User=mining-exporter")
    );
    // Every file the package lists is there, and is what dpkg says it owns.
    let (_, listed) = run("dpkg", &["-L", PACKAGE]);
    let files: Vec<&str> = listed
        .lines()
        .filter(|l| l.contains("mining-exporter"))
        .collect();
    assert!(files.len() >= 8, "{listed}");
    for file in &files {
        assert!(Path::new(file).exists(), "{file} is listed but missing");
    }
    let (_, conffiles) = run("dpkg-query", &["-W", "-f=${Conffiles}", PACKAGE]);
    assert!(
        conffiles.contains("/etc/mining-exporter/config.toml"),
        "{conffiles}"
    );

    // An operator's token file and the exporter's state, then the purge.
    std::fs::write("/etc/mining-exporter/up_api_key", "up_k_operator\n").unwrap();
    std::fs::write("/var/lib/mining-exporter/mining-exporter-state.json", "{}").unwrap();
    drop(purge);
    assert!(!installed());
    for file in files
        .iter()
        .copied()
        .chain(["/var/lib/mining-exporter", "/etc/mining-exporter"])
    {
        assert!(!Path::new(file).exists(), "{file} is left after the purge");
    }
    assert_eq!(id_of("passwd", PACKAGE), None, "the user is left");
    assert_eq!(id_of("group", PACKAGE), None, "the group is left");
}
