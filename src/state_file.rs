//! What survives a restart with `--state-dir`: each budget's sends that still count and any
//! pause a pool imposed, and each source's learned poll cost. Times are stored as Unix
//! milliseconds, so a restart (or a crash and a restart) goes on where the last run stood:
//! the windows it had filled stay filled, and the plan starts from the real costs.
//!
//! It is written at most once a second while requests go out, and at shutdown; a crash
//! loses at most the last second of sends. Written whole to a temporary file and renamed,
//! so a reader never sees half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::time::Instant;

use crate::budget::{Budgets, SendLog};
use crate::clock::WallClock;

const FILE_NAME: &str = "mining-exporter-state.json";
const VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum StateError {
    #[error("{path}: {action}: {source}")]
    Io {
        path: String,
        action: &'static str,
        source: std::io::Error,
    },
    #[error(
        "{path}: not a state file this version wrote ({detail}); it is ignored and will be replaced"
    )]
    Unreadable { path: String, detail: String },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    version: u32,
    budgets: BTreeMap<String, SavedBudget>,
    costs: BTreeMap<String, u32>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedBudget {
    /// Each entry: when (Unix ms), and how many sends were made then.
    #[serde(default)]
    sent: Vec<(u64, u64)>,
    /// One entry per send, as earlier builds wrote it; read, never written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sent_unix_ms: Vec<u64>,
    paused_until_unix_ms: Option<u64>,
}

/// What a previous run left.
#[derive(Debug, Default, PartialEq)]
pub struct Restored {
    pub budgets: BTreeMap<String, SendLog>,
    pub costs: BTreeMap<String, u32>,
}

#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
    clock: WallClock,
}

impl StateFile {
    pub fn in_dir(dir: &Path, clock: WallClock) -> Self {
        StateFile {
            path: dir.join(FILE_NAME),
            clock,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Now, since the Unix epoch, to the clock's precision.
    fn now(&self) -> Duration {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }

    /// What the last run saved; empty when there is no file yet.
    pub fn load(&self) -> Result<Restored, StateError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Restored::default()),
            Err(source) => {
                return Err(StateError::Io {
                    path: self.path.display().to_string(),
                    action: "cannot read the state file",
                    source,
                });
            }
        };
        let unreadable = |detail: String| StateError::Unreadable {
            path: self.path.display().to_string(),
            detail,
        };
        let saved: Saved = serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
        if saved.version != VERSION {
            return Err(unreadable(format!("version {}", saved.version)));
        }
        let now = self.now();
        let ago = |at: u64| now.saturating_sub(Duration::from_millis(at));
        let budgets = saved
            .budgets
            .into_iter()
            .map(|(name, b)| {
                let log = SendLog {
                    sent: b
                        .sent
                        .into_iter()
                        .map(|(at, count)| (ago(at), count))
                        .chain(b.sent_unix_ms.into_iter().map(|at| (ago(at), 1)))
                        .collect(),
                    paused_for: b
                        .paused_until_unix_ms
                        .map(|until| Duration::from_millis(until).saturating_sub(now))
                        .filter(|d| !d.is_zero()),
                };
                (name, log)
            })
            .collect();
        Ok(Restored {
            budgets,
            costs: saved.costs,
        })
    }

    /// Writes the budgets' logs and the learned costs, replacing the previous file.
    pub fn save(&self, budgets: &Budgets, costs: &BTreeMap<String, u32>) -> Result<(), StateError> {
        let now = Instant::now();
        let wall = self.now();
        // Rounded up to the millisecond: a send is never written earlier than it was made,
        // nor a pause shorter than it runs.
        let ms = |d: Duration| {
            let whole = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
            u64::try_from(whole).unwrap_or(u64::MAX)
        };
        let saved = Saved {
            version: VERSION,
            budgets: budgets
                .iter()
                .map(|(name, budget)| {
                    let log = budget.send_log(now);
                    let saved = SavedBudget {
                        sent: log
                            .sent
                            .iter()
                            .map(|(ago, count)| (ms(wall.saturating_sub(*ago)), *count))
                            .collect(),
                        sent_unix_ms: Vec::new(),
                        paused_until_unix_ms: log.paused_for.map(|p| ms(wall.saturating_add(p))),
                    };
                    (name.clone(), saved)
                })
                .collect(),
            costs: costs.clone(),
        };
        let io = |action: &'static str| {
            let path = self.path.display().to_string();
            move |source| StateError::Io {
                path,
                action,
                source,
            }
        };
        let text = serde_json::to_vec(&saved).unwrap_or_default();
        // One partial file per process: `doctor` or `poll` may write beside a running
        // exporter, and two writers of one partial file could rename each other's half.
        let partial = self
            .path
            .with_extension(format!("json.{}.partial", std::process::id()));
        std::fs::write(&partial, text).map_err(io("cannot write the state file"))?;
        std::fs::rename(&partial, &self.path).map_err(io("cannot replace the state file"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;
    use crate::config::BudgetConfig;
    use std::sync::Arc;

    fn budgets(limits: &str) -> Budgets {
        let config = BudgetConfig {
            name: "key".into(),
            limits: vec![limits.parse().unwrap()],
            origin: "test".into(),
            target: 0.85,
        };
        Budgets::from([("key".to_string(), Arc::new(Budget::new(&config)))])
    }

    #[tokio::test(start_paused = true)]
    async fn a_saved_budget_comes_back_with_its_sends_and_pause() {
        let dir = tempfile::TempDir::new().unwrap();
        let file = StateFile::in_dir(dir.path(), WallClock::Tokio);
        assert_eq!(file.load().unwrap(), Restored::default(), "no file yet");

        let before = budgets("5/1m");
        for _ in 0..4 {
            before["key"].acquire().await;
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        before["key"].pause(Duration::from_secs(30));
        file.save(&before, &BTreeMap::from([("proxy".to_string(), 33)]))
            .unwrap();

        tokio::time::advance(Duration::from_secs(5)).await;
        let restored = file.load().unwrap();
        assert_eq!(restored.costs["proxy"], 33);
        let after = budgets("5/1m");
        after["key"].restore(&restored.budgets["key"], Instant::now());
        // The pause has 25 s to run (and up to a millisecond: the file rounds up). When it
        // ends, the sends made 20 s and 30 s after the first still count: 3 of the 5 are
        // free, not all 5.
        assert_eq!(after["key"].remaining(), 0);
        tokio::time::advance(Duration::from_millis(25_001)).await;
        assert_eq!(after["key"].remaining(), 3);
    }

    /// Times in the file are whole milliseconds: a send is written no earlier than it was
    /// made, so a restarted budget never lets the next request out before the window
    /// really has room (the pool counts to the millisecond, or finer).
    #[tokio::test(start_paused = true)]
    async fn a_restored_send_counts_until_its_window_has_really_passed() {
        let dir = tempfile::TempDir::new().unwrap();
        let file = StateFile::in_dir(dir.path(), WallClock::Tokio);
        for offset_us in (0..2000).step_by(130) {
            tokio::time::advance(Duration::from_micros(offset_us)).await;
            let before = budgets("1/1m");
            before["key"].acquire().await;
            let sent = Instant::now();
            tokio::time::advance(Duration::from_micros(700)).await;
            file.save(&before, &BTreeMap::new()).unwrap();
            tokio::time::advance(Duration::from_micros(offset_us % 900)).await;
            let after = budgets("1/1m");
            after["key"].restore(&file.load().unwrap().budgets["key"], Instant::now());
            tokio::time::advance(
                (sent + Duration::from_secs(60) - Duration::from_micros(1)) - Instant::now(),
            )
            .await;
            assert_eq!(
                after["key"].remaining(),
                0,
                "offset {offset_us} us: the restored send left its window early"
            );
            tokio::time::advance(Duration::from_secs(61)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_an_earlier_build_wrote_one_entry_per_send_is_still_read() {
        let dir = tempfile::TempDir::new().unwrap();
        let file = StateFile::in_dir(dir.path(), WallClock::Tokio);
        let now = WallClock::Tokio
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        std::fs::write(
            file.path(),
            format!(
                "{{\"version\":1,\"budgets\":{{\"key\":{{\"sent_unix_ms\":[{},{}],\"paused_until_unix_ms\":null}}}},\"costs\":{{}}}}",
                now - 1000,
                now - 2000
            ),
        )
        .unwrap();
        let restored = file.load().unwrap();
        let after = budgets("5/1m");
        after["key"].restore(&restored.budgets["key"], Instant::now());
        assert_eq!(after["key"].remaining(), 3);
    }

    #[test]
    fn a_file_of_another_kind_is_refused_with_its_path() {
        let dir = tempfile::TempDir::new().unwrap();
        let file = StateFile::in_dir(dir.path(), WallClock::System);
        std::fs::write(
            file.path(),
            "{\"version\": 99, \"budgets\": {}, \"costs\": {}}",
        )
        .unwrap();
        let e = file.load().unwrap_err().to_string();
        assert!(e.contains(FILE_NAME) && e.contains("version 99"), "{e}");
    }
}
