//! Stamps the build with what `mining_exporter_build_info` and `--version` report: the git
//! revision (when built from a checkout) and the compiler's version.

use std::process::Command;

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    // A packaged source tree has no .git: MINING_EXPORTER_REVISION may say it instead.
    let revision = std::env::var("MINING_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| output_of("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rust_version = output_of(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=MINING_EXPORTER_REVISION={revision}");
    println!("cargo:rustc-env=MINING_EXPORTER_RUST_VERSION={rust_version}");
    println!("cargo:rerun-if-env-changed=MINING_EXPORTER_REVISION");
    if let Some(git_dir) = output_of("git", &["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/refs/heads");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
