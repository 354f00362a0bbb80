//! `--blocks DIR`: the output turned into TSDB blocks by `promtool tsdb
//! create-blocks-from openmetrics`, with a block length that suits the range.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// promtool ignores anything shorter.
const SHORTEST_BLOCK: Duration = Duration::from_secs(2 * 3600);
/// Prometheus compacts no block past 31 days.
const LONGEST_BLOCK: Duration = Duration::from_secs(31 * 86_400);

/// A tenth of the range in whole hours, from 2 h to 31 days: Prometheus' own compactor
/// stops at a tenth of the retention, and retention deletes whole blocks, so a longer
/// block would outlive its oldest samples by more than a tenth of the range.
pub fn block_duration(range: Duration) -> Duration {
    let tenth = range.as_secs().div_ceil(10);
    let hours = tenth.div_ceil(3600).max(1);
    Duration::from_secs(hours * 3600).clamp(SHORTEST_BLOCK, LONGEST_BLOCK)
}

/// What promtool made.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocks {
    pub dir: PathBuf,
    /// The new block folders' names (ULIDs).
    pub made: Vec<String>,
    /// promtool's output, for the user to read.
    pub output: String,
    pub duration: Duration,
}

fn folders(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs `promtool` on `input`, writing blocks into `dir`.
pub fn create_blocks(
    promtool: &Path,
    input: &Path,
    dir: &Path,
    duration: Duration,
) -> Result<Blocks, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let before = folders(dir);
    let hours = duration.as_secs() / 3600;
    let output = std::process::Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(format!("--max-block-duration={hours}h"))
        .arg(input)
        .arg(dir)
        .output()
        .map_err(|e| {
            format!(
                "cannot run {}: {e} (install Debian's prometheus package, or name it with --promtool PATH)",
                promtool.display()
            )
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        return Err(format!("{} failed: {}", promtool.display(), text.trim()));
    }
    let made = folders(dir)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    Ok(Blocks {
        dir: dir.to_path_buf(),
        made,
        output: text,
        duration,
    })
}

/// promtool on PATH, if there is one.
pub fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("promtool"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_a_tenth_of_the_range_within_promtools_and_prometheus_bounds() {
        let day = Duration::from_secs(86_400);
        assert_eq!(block_duration(day / 2), SHORTEST_BLOCK);
        assert_eq!(
            block_duration(day),
            Duration::from_secs(3 * 3600),
            "2.4 h, up to 3"
        );
        assert_eq!(block_duration(30 * day), Duration::from_secs(72 * 3600));
        assert_eq!(block_duration(1000 * day), LONGEST_BLOCK);
    }
}
