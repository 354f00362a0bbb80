//! What survives a restart with a state directory, and what processes beside each other on
//! one token tell each other: each budget's sends that still count and any pause a pool
//! imposed, and each source's learned poll cost. Times are stored as Unix milliseconds
//! (rounded up: a send is never written earlier than it was made), so a restart goes on
//! where the last run stood: the windows it had filled stay filled, and the plan starts from
//! the real costs.
//!
//! Several processes write it: the running exporter (at most once a second while requests
//! go out, and at shutdown), and `doctor`, `poll` and `backfill` beside it. Each writes only
//! its own part of a budget (a section under its writer id, with its role) and keeps every
//! other part it finds, so no process's sends are lost whoever writes last; reading the
//! file, each takes in the sends other writers made since it last looked. A write holds the
//! directory's lock file, reads, merges, and replaces the file whole: a temporary file,
//! fsync, rename, fsync of the directory, so a crash leaves the old file or the new one.
//!
//! A budget is found by its token where it has one of its own (the same secret sent to the
//! same host, as a salted fingerprint: never the secret), else by its name, so reordering or
//! renaming the sources of a shared token (which renames its `auto:` budget) loses nothing.
//! The files are the exporter's user's alone (0600).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::time::Instant;

use crate::budget::{Budget, Budgets, SendLog};
use crate::clock::WallClock;
use crate::config::SourceConfig;
use crate::secret::Secret;

const FILE_NAME: &str = "mining-exporter-state.json";
const LOCK_NAME: &str = "mining-exporter-state.lock";
const VERSION: u32 = 2;
/// Parts a budget keeps at most; past it the oldest parts of one role are merged into one.
pub const MAX_WRITERS: usize = 64;
/// A learned cost no writer has renewed for this long is dropped.
const COST_KEPT: Duration = Duration::from_secs(30 * 86_400);
/// The most a state file is read: a big farm's is a few MiB.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

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

/// Who wrote a part of the file: what kind of process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Run,
    Doctor,
    Poll,
    Backfill,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Run => "run",
            Role::Doctor => "doctor",
            Role::Poll => "poll",
            Role::Backfill => "backfill",
        }
    }

    /// Whose sends a process of this role counts in its budgets. A backfill's budgets are
    /// its share, the limit less the exporter's reserve: the exporter's own sends are in the
    /// reserve already, so it counts only other backfills'. Everyone else counts everyone.
    fn counts(self, writer: Role) -> bool {
        self != Role::Backfill || writer == Role::Backfill
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    version: u32,
    /// Hex; what the token fingerprints are keyed with, made when the file is first written.
    #[serde(default)]
    salt: String,
    #[serde(default)]
    budgets: BTreeMap<String, SavedBudget>,
    #[serde(default)]
    costs: BTreeMap<String, SavedCost>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedBudget {
    /// The fingerprint of the budget's token (secret and host), for a budget of one token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// The budget's longest window: how long its sends are kept.
    keep_ms: u64,
    /// Each writer's part, by writer id.
    #[serde(default)]
    writers: BTreeMap<String, Section>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    role: Role,
    /// Each entry: when (Unix ms), and how many sends were made then.
    #[serde(default)]
    sent: Vec<(u64, u64)>,
    /// The writer's sends through this budget, ever: what lets a reader take in only the
    /// sends it has not seen yet.
    #[serde(default)]
    total: u64,
    #[serde(default)]
    paused_until_unix_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedCost {
    requests: u32,
    unix_ms: u64,
}

/// What the first version wrote: one log per budget, costs as plain numbers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedV1 {
    budgets: BTreeMap<String, SavedBudgetV1>,
    costs: BTreeMap<String, u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedBudgetV1 {
    #[serde(default)]
    sent: Vec<(u64, u64)>,
    #[serde(default)]
    sent_unix_ms: Vec<u64>,
    paused_until_unix_ms: Option<u64>,
}

/// The token a budget counts, as far as the state file needs it: the same secret to the same
/// host is the same budget whatever it is named.
#[derive(Debug, Clone)]
pub struct TokenIdentity {
    host: String,
    secret: Secret,
}

/// A budget as the state file keeps it: its name in the config, the budget, and its token
/// where it has one of its own.
#[derive(Debug, Clone)]
pub struct KeptBudget {
    pub name: String,
    pub budget: Arc<Budget>,
    pub token: Option<TokenIdentity>,
}

/// Every budget of `budgets`, with the token of each `auto:` budget (the budget of one
/// secret sent to one host) where `sources` read it. A named budget may cover several
/// tokens, a host budget every token to its host: they are found by name.
pub fn kept_budgets(sources: &[SourceConfig], budgets: &Budgets) -> Vec<KeptBudget> {
    let mut tokens: BTreeMap<&str, TokenIdentity> = BTreeMap::new();
    for source in sources {
        if !source.budget.starts_with("auto:") || tokens.contains_key(source.budget.as_str()) {
            continue;
        }
        if let (Some(secret), Some(host)) = (&source.token, source.host()) {
            tokens.insert(
                &source.budget,
                TokenIdentity {
                    host,
                    secret: secret.clone(),
                },
            );
        }
    }
    budgets
        .iter()
        .map(|(name, budget)| KeptBudget {
            name: name.clone(),
            budget: budget.clone(),
            token: tokens.get(name.as_str()).cloned(),
        })
        .collect()
}

/// What the file held for this process's budgets when it started.
#[derive(Debug, Default, PartialEq)]
pub struct Restored {
    /// By this process's budget name: the sends it counts and any pause in force.
    pub budgets: BTreeMap<String, SendLog>,
    pub costs: BTreeMap<String, u32>,
}

/// What a write found and did beside writing this process's part.
#[derive(Debug, Default)]
pub struct SaveOutcome {
    /// Sends other writers made since this process last looked, now counted in its budgets.
    pub taken_in: u64,
    /// Why the file found there was not read (it is replaced).
    pub replaced: Option<String>,
}

/// One process's handle on a state directory.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
    lock: PathBuf,
    clock: WallClock,
    writer: Arc<Writer>,
}

#[derive(Debug)]
struct Writer {
    id: String,
    role: Role,
    /// Each other writer's total last taken in, by (budget name here, writer id).
    seen: Mutex<BTreeMap<(String, String), u64>>,
}

/// Writers made in this process: two exporters of one test process are two writers.
static WRITERS_MADE: AtomicU64 = AtomicU64::new(0);

impl StateFile {
    /// The state file in `dir`, written as a process of `role`.
    pub fn in_dir(dir: &Path, clock: WallClock, role: Role) -> Self {
        let started = clock
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let n = WRITERS_MADE.fetch_add(1, Ordering::Relaxed);
        StateFile {
            path: dir.join(FILE_NAME),
            lock: dir.join(LOCK_NAME),
            clock,
            writer: Arc::new(Writer {
                id: format!("{}-{}-{started}-{n}", role.as_str(), std::process::id()),
                role,
                seen: Mutex::new(BTreeMap::new()),
            }),
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

    fn io(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> StateError + '_ {
        move |source| StateError::Io {
            path: self.path.display().to_string(),
            action,
            source,
        }
    }

    /// Holds the directory's lock file until dropped: one writer reads and replaces the file
    /// at a time.
    fn locked(&self) -> Result<File, StateError> {
        let file = private_file()
            .read(true)
            .write(true)
            .truncate(false)
            .open(&self.lock)
            .map_err(self.io("cannot open the state file's lock"))?;
        owned_like_its_directory(&self.lock);
        lock_exclusive(&file).map_err(self.io("cannot lock the state file"))?;
        Ok(file)
    }

    /// The file as it stands; none yet is an empty one.
    fn read(&self) -> Result<Saved, StateError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::default()),
            Err(e) => return Err(self.io("cannot read the state file")(e)),
        };
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(self.io("cannot read the state file"))?;
        let unreadable = |detail: String| StateError::Unreadable {
            path: self.path.display().to_string(),
            detail,
        };
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(unreadable(format!("over {MAX_FILE_BYTES} bytes")));
        }
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version =
            serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
        match version.version {
            VERSION => serde_json::from_str(&text).map_err(|e| unreadable(e.to_string())),
            1 => {
                #[derive(Deserialize)]
                struct V1 {
                    #[serde(flatten)]
                    saved: SavedV1,
                    #[allow(dead_code)]
                    version: u32,
                }
                let v1: V1 = serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
                Ok(self.upgraded(v1.saved))
            }
            other => Err(unreadable(format!("version {other}"))),
        }
    }

    /// A first version's file, as if one earlier run had written it.
    fn upgraded(&self, v1: SavedV1) -> Saved {
        let now = ms_up(self.now());
        Saved {
            version: VERSION,
            salt: String::new(),
            budgets: v1
                .budgets
                .into_iter()
                .map(|(name, b)| {
                    let sent: Vec<(u64, u64)> = b
                        .sent
                        .into_iter()
                        .chain(b.sent_unix_ms.into_iter().map(|at| (at, 1)))
                        .collect();
                    let total = sent.iter().map(|(_, n)| *n).sum();
                    let section = Section {
                        role: Role::Run,
                        sent,
                        total,
                        paused_until_unix_ms: b.paused_until_unix_ms,
                    };
                    let budget = SavedBudget {
                        token: None,
                        // The first version kept sends for the longest window alone; the
                        // longest a window may be stands in for it until a writer knows it.
                        keep_ms: u64::try_from(crate::config::MAX_WINDOW.as_millis())
                            .unwrap_or(u64::MAX),
                        writers: BTreeMap::from([("v1".to_string(), section)]),
                    };
                    (name, budget)
                })
                .collect(),
            costs: v1
                .costs
                .into_iter()
                .map(|(name, requests)| {
                    (
                        name,
                        SavedCost {
                            requests,
                            unix_ms: now,
                        },
                    )
                })
                .collect(),
        }
    }

    /// The learned costs alone (`check`, `backfill`), read without the lock: a reader that
    /// writes nothing leaves nothing behind in the directory (the file is replaced whole, so
    /// it is never read half-written).
    pub fn costs(&self) -> Result<BTreeMap<String, u32>, StateError> {
        Ok(self
            .read()?
            .costs
            .into_iter()
            .map(|(name, cost)| (name, cost.requests))
            .collect())
    }

    /// What the file holds for `budgets` (the sends this process's role counts, any pause)
    /// and the learned costs. The sends read now are not taken in again later.
    pub fn load(&self, budgets: &[KeptBudget]) -> Result<Restored, StateError> {
        let _lock = self.locked()?;
        let saved = self.read()?;
        let now = self.now();
        let mut seen = self.writer.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut restored = Restored::default();
        for (kept, names) in budgets.iter().zip(matched_entries(&saved, budgets)) {
            let mut log = SendLog::default();
            for entry in names.iter().filter_map(|n| saved.budgets.get(n)) {
                for (writer, section) in &entry.writers {
                    if let Some(pause) = section.pause(now) {
                        log.paused_for = Some(log.paused_for.map_or(pause, |p| p.max(pause)));
                    }
                    if !self.writer.role.counts(section.role) {
                        continue;
                    }
                    log.sent.extend(section.sends_ago(now));
                    seen.insert((kept.name.clone(), writer.clone()), section.total);
                }
            }
            if !log.sent.is_empty() || log.paused_for.is_some() {
                restored.budgets.insert(kept.name.clone(), log);
            }
        }
        restored.costs = saved
            .costs
            .into_iter()
            .map(|(name, cost)| (name, cost.requests))
            .collect();
        Ok(restored)
    }

    /// Writes this process's part of `budgets` and its learned `costs` into the file,
    /// keeping every other writer's part, and takes into `budgets` the sends other writers
    /// made since it last looked.
    pub fn save(
        &self,
        budgets: &[KeptBudget],
        costs: &BTreeMap<String, u32>,
    ) -> Result<SaveOutcome, StateError> {
        let _lock = self.locked()?;
        let mut outcome = SaveOutcome::default();
        let mut saved = match self.read() {
            Ok(saved) => saved,
            Err(e @ StateError::Unreadable { .. }) => {
                outcome.replaced = Some(e.to_string());
                Saved::default()
            }
            Err(e) => return Err(e),
        };
        saved.version = VERSION;
        if saved.salt.is_empty() {
            saved.salt = new_salt();
        }
        let wall = self.now();
        let now_ms = ms_up(wall);
        let instant = Instant::now();
        let me = self.writer.id.as_str();
        for entry in saved.budgets.values_mut() {
            entry.writers.remove(me);
            let keep = entry.keep_ms;
            entry
                .writers
                .retain(|_, section| section.prune(now_ms, keep));
        }
        let mut seen = self.writer.seen.lock().unwrap_or_else(|e| e.into_inner());
        let matched = matched_entries(&saved, budgets);
        for (kept, names) in budgets.iter().zip(matched) {
            let fingerprint = kept.token.as_ref().map(|t| fingerprint(&saved.salt, t));
            // Every part found for this budget, under whatever name, comes under its name now.
            let mut writers: BTreeMap<String, Section> = BTreeMap::new();
            for name in names {
                if let Some(entry) = saved.budgets.remove(&name) {
                    for (writer, section) in entry.writers {
                        match writers.get_mut(&writer) {
                            Some(same) => same.absorb(section),
                            None => {
                                writers.insert(writer, section);
                            }
                        }
                    }
                }
            }
            let mut taken = SendLog::default();
            for (writer, section) in &writers {
                if let Some(pause) = section.pause(wall) {
                    taken.paused_for = Some(taken.paused_for.map_or(pause, |p| p.max(pause)));
                }
                if !self.writer.role.counts(section.role) {
                    continue;
                }
                let key = (kept.name.clone(), writer.clone());
                let before = seen.get(&key).copied().unwrap_or(0);
                let new = section.total.saturating_sub(before);
                if new > 0 {
                    taken.sent.extend(section.newest(new, wall));
                    outcome.taken_in = outcome.taken_in.saturating_add(new);
                }
                seen.insert(key, section.total);
            }
            if !taken.sent.is_empty() || taken.paused_for.is_some() {
                kept.budget.restore(&taken, instant);
            }
            let own = kept.budget.own_log(instant);
            let total = kept.budget.own_total();
            if total > 0 || own.paused_for.is_some() {
                writers.insert(
                    me.to_string(),
                    Section {
                        role: self.writer.role,
                        sent: own
                            .sent
                            .iter()
                            .map(|(ago, count)| (ms_up(wall.saturating_sub(*ago)), *count))
                            .collect(),
                        total,
                        paused_until_unix_ms: own.paused_for.map(|p| ms_up(wall + p)),
                    },
                );
            }
            bound_writers(&mut writers, me);
            if writers.is_empty() {
                continue;
            }
            // Another token's budget of this name (the name now stands for this token): kept
            // beside it under a name of its own, for the other token's sake.
            if let Some(other) = saved.budgets.remove(&kept.name) {
                let aside = format!("{}#{}", kept.name, other.token.as_deref().unwrap_or("-"));
                saved.budgets.insert(aside, other);
            }
            let window =
                u64::try_from(kept.budget.longest_window().as_millis()).unwrap_or(u64::MAX);
            saved.budgets.insert(
                kept.name.clone(),
                SavedBudget {
                    token: fingerprint,
                    keep_ms: window,
                    writers,
                },
            );
        }
        saved.budgets.retain(|_, entry| !entry.writers.is_empty());
        for (name, requests) in costs {
            saved.costs.insert(
                name.clone(),
                SavedCost {
                    requests: *requests,
                    unix_ms: now_ms,
                },
            );
        }
        let oldest = now_ms.saturating_sub(ms_up(COST_KEPT));
        saved.costs.retain(|_, cost| cost.unix_ms >= oldest);
        let text = serde_json::to_vec(&saved).unwrap_or_default();
        self.replace(&text)?;
        Ok(outcome)
    }

    /// Replaces the file with `text`: written to a partial file of this process, synced,
    /// renamed over the file, and the directory synced, so that after a crash the file is the
    /// old one or the new one, whole.
    fn replace(&self, text: &[u8]) -> Result<(), StateError> {
        let partial = self
            .path
            .with_extension(format!("json.{}.partial", std::process::id()));
        let mut file = private_file()
            .write(true)
            .truncate(true)
            .open(&partial)
            .map_err(self.io("cannot write the state file"))?;
        file.write_all(text)
            .and_then(|()| file.sync_all())
            .map_err(self.io("cannot write the state file"))?;
        drop(file);
        owned_like_its_directory(&partial);
        std::fs::rename(&partial, &self.path).map_err(self.io("cannot replace the state file"))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(self.io("cannot sync the state directory"))?;
        }
        Ok(())
    }
}

/// `doctor` or `poll` run as root beside the service write into the service user's state
/// directory: the files they make are given to the directory's owner, or the service could
/// no longer read its own state.
fn owned_like_its_directory(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let Some(dir) = path.parent().and_then(|d| std::fs::metadata(d).ok()) else {
            return;
        };
        if dir.uid() != 0 {
            let _ = std::os::unix::fs::chown(path, Some(dir.uid()), Some(dir.gid()));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Waits for the lock on `file` (released when it is closed). `File::lock` is newer than
/// this crate's minimum Rust.
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: the descriptor is open for as long as `file` lives.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(());
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

/// Options for a file only its owner may read or write: a state or progress file.
pub fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// For each of `kept`, the names of the entries of `saved` that are its budget: its token's
/// where it has one (and, for a file written before tokens were kept, its name's without a
/// token), else its name's. An entry goes to one budget at most. Indexed, so a file of ten
/// thousand budgets costs ten thousand lookups, not a hundred million comparisons.
fn matched_entries(saved: &Saved, kept: &[KeptBudget]) -> Vec<Vec<String>> {
    let mut by_token: HashMap<&str, Vec<&String>> = HashMap::new();
    for (name, entry) in &saved.budgets {
        if let Some(token) = &entry.token {
            by_token.entry(token.as_str()).or_default().push(name);
        }
    }
    let mut claimed: HashSet<&String> = HashSet::new();
    kept.iter()
        .map(|k| {
            let ours = k
                .token
                .as_ref()
                .filter(|_| !saved.salt.is_empty())
                .map(|t| fingerprint(&saved.salt, t));
            let mut names = Vec::new();
            if let Some(ours) = &ours {
                for name in by_token.get(ours.as_str()).into_iter().flatten() {
                    if claimed.insert(name) {
                        names.push((*name).clone());
                    }
                }
            }
            if let Some((name, entry)) = saved.budgets.get_key_value(&k.name) {
                if (entry.token.is_none() || ours.is_none()) && claimed.insert(name) {
                    names.push(name.clone());
                }
            }
            names
        })
        .collect()
}

impl Section {
    /// Drops the sends past the budget's windows; false when nothing of it is left.
    fn prune(&mut self, now_ms: u64, keep_ms: u64) -> bool {
        self.sent
            .retain(|(at, _)| at.saturating_add(keep_ms) > now_ms);
        self.paused_until_unix_ms = self.paused_until_unix_ms.filter(|until| *until > now_ms);
        !self.sent.is_empty() || self.paused_until_unix_ms.is_some()
    }

    fn pause(&self, now: Duration) -> Option<Duration> {
        let until = Duration::from_millis(self.paused_until_unix_ms?);
        Some(until.saturating_sub(now)).filter(|d| !d.is_zero())
    }

    fn sends_ago(&self, now: Duration) -> impl Iterator<Item = (Duration, u64)> + '_ {
        self.sent
            .iter()
            .map(move |(at, count)| (now.saturating_sub(Duration::from_millis(*at)), *count))
    }

    /// The newest `count` sends, as (how long ago, how many).
    fn newest(&self, mut count: u64, now: Duration) -> Vec<(Duration, u64)> {
        let mut out = Vec::new();
        for (at, n) in self.sent.iter().rev() {
            if count == 0 {
                break;
            }
            let take = (*n).min(count);
            count -= take;
            out.push((now.saturating_sub(Duration::from_millis(*at)), take));
        }
        out
    }

    /// Takes another part of the same writer in (found under two names of one budget).
    fn absorb(&mut self, other: Section) {
        self.sent.extend(other.sent);
        self.sent.sort_unstable();
        self.total = self.total.saturating_add(other.total);
        self.paused_until_unix_ms = self.paused_until_unix_ms.max(other.paused_until_unix_ms);
    }
}

/// Keeps at most `MAX_WRITERS` parts: the parts of other writers whose newest send is
/// oldest are merged, one role at a time, into an `earlier-<role>` part, so none of their
/// sends is lost (a reader may count the merged ones once more: more held back, never less).
fn bound_writers(writers: &mut BTreeMap<String, Section>, me: &str) {
    while writers.len() > MAX_WRITERS {
        let newest = |s: &Section| s.sent.last().map_or(0, |(at, _)| *at);
        let Some(oldest) = writers
            .iter()
            .filter(|(id, _)| id.as_str() != me && !id.starts_with("earlier-"))
            .min_by_key(|(_, s)| newest(s))
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        let Some(section) = writers.remove(&oldest) else {
            return;
        };
        let into = format!("earlier-{}", section.role.as_str());
        match writers.get_mut(&into) {
            Some(earlier) => earlier.absorb(section),
            None => {
                writers.insert(into, section);
            }
        }
    }
}

/// Milliseconds, rounded up.
fn ms_up(d: Duration) -> u64 {
    let whole = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    u64::try_from(whole).unwrap_or(u64::MAX)
}

fn new_salt() -> String {
    let mut salt = [0u8; 16];
    // A salt that failed to be random is still a salt: the fingerprint only has to differ
    // between tokens, and the secret never reaches the file either way.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt);
    hex(&salt)
}

/// Which token a budget counts, without the token: HMAC-SHA256 under the file's salt of the
/// host and the secret, cut to 128 bits.
fn fingerprint(salt: &str, token: &TokenIdentity) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt.as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(b"mining-exporter budget\0");
    context.update(token.host.as_bytes());
    context.update(b"\0");
    context.update(token.secret.expose().as_bytes());
    let tag = context.sign();
    hex(tag.as_ref().get(..16).unwrap_or_default())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BudgetConfig;

    fn budget(limits: &str) -> Arc<Budget> {
        Arc::new(Budget::new(&BudgetConfig {
            name: "key".into(),
            limits: vec![limits.parse().unwrap()],
            origin: "test".into(),
            target: 0.85,
        }))
    }

    fn kept(name: &str, budget: &Arc<Budget>, token: Option<&str>) -> KeptBudget {
        KeptBudget {
            name: name.to_string(),
            budget: budget.clone(),
            token: token.map(|t| TokenIdentity {
                host: "pool.example".into(),
                secret: Secret::new(t),
            }),
        }
    }

    fn file(dir: &Path, role: Role) -> StateFile {
        StateFile::in_dir(dir, WallClock::Tokio, role)
    }

    #[tokio::test(start_paused = true)]
    async fn a_saved_budget_comes_back_with_its_sends_and_pause() {
        let dir = tempfile::TempDir::new().unwrap();
        let before_file = file(dir.path(), Role::Run);
        assert_eq!(
            before_file.load(&[]).unwrap(),
            Restored::default(),
            "no file yet"
        );

        let before = budget("5/1m");
        for _ in 0..4 {
            before.acquire().await;
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        before.pause(Duration::from_secs(30));
        before_file
            .save(
                &[kept("key", &before, None)],
                &BTreeMap::from([("proxy".to_string(), 33)]),
            )
            .unwrap();

        tokio::time::advance(Duration::from_secs(5)).await;
        let after = budget("5/1m");
        let restored = file(dir.path(), Role::Run)
            .load(&[kept("key", &after, None)])
            .unwrap();
        assert_eq!(restored.costs["proxy"], 33);
        after.restore(&restored.budgets["key"], Instant::now());
        // The pause has 25 s to run (and up to a millisecond: the file rounds up). When it
        // ends, the sends made 20 s and 30 s after the first still count: 3 of the 5 are
        // free, not all 5.
        assert_eq!(after.remaining(), 0);
        tokio::time::advance(Duration::from_millis(25_001)).await;
        assert_eq!(after.remaining(), 3);
    }

    /// Times in the file are whole milliseconds: a send is written no earlier than it was
    /// made, so a restarted budget never lets the next request out before the window
    /// really has room (the pool counts to the millisecond, or finer).
    #[tokio::test(start_paused = true)]
    async fn a_restored_send_counts_until_its_window_has_really_passed() {
        let dir = tempfile::TempDir::new().unwrap();
        for offset_us in (0..2000).step_by(130) {
            tokio::time::advance(Duration::from_micros(offset_us)).await;
            let before = budget("1/1m");
            before.acquire().await;
            let sent = Instant::now();
            tokio::time::advance(Duration::from_micros(700)).await;
            file(dir.path(), Role::Run)
                .save(&[kept("key", &before, None)], &BTreeMap::new())
                .unwrap();
            tokio::time::advance(Duration::from_micros(offset_us % 900)).await;
            let after = budget("1/1m");
            let restored = file(dir.path(), Role::Run)
                .load(&[kept("key", &after, None)])
                .unwrap();
            after.restore(&restored.budgets["key"], Instant::now());
            tokio::time::advance(
                (sent + Duration::from_secs(60) - Duration::from_micros(1)) - Instant::now(),
            )
            .await;
            assert_eq!(
                after.remaining(),
                0,
                "offset {offset_us} us: the restored send left its window early"
            );
            tokio::time::advance(Duration::from_secs(61)).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_the_first_version_wrote_is_still_read() {
        let dir = tempfile::TempDir::new().unwrap();
        let state = file(dir.path(), Role::Run);
        let now = WallClock::Tokio
            .now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        std::fs::write(
            state.path(),
            format!(
                "{{\"version\":1,\"budgets\":{{\"key\":{{\"sent\":[[{},2]],\"sent_unix_ms\":[{},{}],\"paused_until_unix_ms\":null}}}},\"costs\":{{\"proxy\":7}}}}",
                now - 500,
                now - 1000,
                now - 2000
            ),
        )
        .unwrap();
        let after = budget("5/1m");
        let restored = state.load(&[kept("key", &after, Some("t"))]).unwrap();
        after.restore(&restored.budgets["key"], Instant::now());
        assert_eq!(after.remaining(), 1);
        assert_eq!(restored.costs["proxy"], 7);
    }

    #[test]
    fn a_file_of_another_kind_is_refused_with_its_path() {
        let dir = tempfile::TempDir::new().unwrap();
        let state = StateFile::in_dir(dir.path(), WallClock::System, Role::Run);
        std::fs::write(
            state.path(),
            "{\"version\": 99, \"budgets\": {}, \"costs\": {}}",
        )
        .unwrap();
        let e = state.load(&[]).unwrap_err().to_string();
        assert!(e.contains(FILE_NAME) && e.contains("version 99"), "{e}");
    }

    /// Two processes on one budget: whoever writes last, the file holds both's sends, and
    /// each takes in the other's.
    #[tokio::test(start_paused = true)]
    async fn two_writers_keep_each_other_s_sends_and_take_them_in() {
        let dir = tempfile::TempDir::new().unwrap();
        let (run, doctor) = (file(dir.path(), Role::Run), file(dir.path(), Role::Doctor));
        let (exporter, beside) = (budget("100/1m"), budget("100/1m"));
        run.load(&[kept("auto:a", &exporter, Some("t"))]).unwrap();
        doctor.load(&[kept("auto:a", &beside, Some("t"))]).unwrap();
        for _ in 0..9 {
            exporter.acquire().await;
        }
        run.save(&[kept("auto:a", &exporter, Some("t"))], &BTreeMap::new())
            .unwrap();
        for _ in 0..6 {
            beside.acquire().await;
        }
        let saved = doctor
            .save(&[kept("auto:a", &beside, Some("t"))], &BTreeMap::new())
            .unwrap();
        assert_eq!(saved.taken_in, 9, "the doctor counts the exporter's nine");
        assert_eq!(beside.remaining(), 100 - 15);
        for _ in 0..2 {
            exporter.acquire().await;
        }
        let saved = run
            .save(&[kept("auto:a", &exporter, Some("t"))], &BTreeMap::new())
            .unwrap();
        assert_eq!(saved.taken_in, 6, "the exporter takes in the doctor's six");
        assert_eq!(exporter.remaining(), 100 - 17);
        // A third process finds all seventeen.
        let later = budget("100/1m");
        let restored = file(dir.path(), Role::Run)
            .load(&[kept("auto:a", &later, Some("t"))])
            .unwrap();
        let sends: u64 = restored.budgets["auto:a"].sent.iter().map(|(_, n)| n).sum();
        assert_eq!(sends, 17);
    }

    /// `poll --source X` knows one source's cost: the others' stay in the file.
    #[tokio::test(start_paused = true)]
    async fn a_writer_that_learned_one_cost_keeps_the_others() {
        let dir = tempfile::TempDir::new().unwrap();
        file(dir.path(), Role::Run)
            .save(
                &[],
                &BTreeMap::from([("a".to_string(), 3), ("b".to_string(), 33)]),
            )
            .unwrap();
        file(dir.path(), Role::Poll)
            .save(&[], &BTreeMap::from([("a".to_string(), 4)]))
            .unwrap();
        let costs = file(dir.path(), Role::Run).costs().unwrap();
        assert_eq!(
            costs,
            BTreeMap::from([("a".to_string(), 4), ("b".to_string(), 33)])
        );
    }

    /// A budget renamed (its sources reordered: `auto:a` becomes `auto:b`) is found by its
    /// token; another token's budget of the old name is not.
    #[tokio::test(start_paused = true)]
    async fn a_renamed_budget_is_found_by_its_token() {
        let dir = tempfile::TempDir::new().unwrap();
        let before = budget("10/1m");
        for _ in 0..10 {
            before.acquire().await;
        }
        file(dir.path(), Role::Run)
            .save(&[kept("auto:a", &before, Some("t"))], &BTreeMap::new())
            .unwrap();
        let renamed = budget("10/1m");
        let other = budget("10/1m");
        let restored = file(dir.path(), Role::Run)
            .load(&[
                kept("auto:b", &renamed, Some("t")),
                kept("auto:a", &other, Some("another token")),
            ])
            .unwrap();
        renamed.restore(&restored.budgets["auto:b"], Instant::now());
        assert_eq!(renamed.remaining(), 0, "found under its new name");
        assert!(!restored.budgets.contains_key("auto:a"), "{restored:?}");
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(!text.contains("\"t\""), "no token in the file: {text}");
    }

    /// A backfill's budgets count other backfills' sends, not the exporter's (its share
    /// already leaves the exporter's room); everyone counts a backfill's.
    #[tokio::test(start_paused = true)]
    async fn a_backfill_counts_backfills_and_the_exporter_counts_everyone() {
        let dir = tempfile::TempDir::new().unwrap();
        let exporter = budget("100/1m");
        let first_backfill = budget("100/1m");
        for _ in 0..8 {
            exporter.acquire().await;
        }
        for _ in 0..3 {
            first_backfill.acquire().await;
        }
        file(dir.path(), Role::Run)
            .save(&[kept("k", &exporter, None)], &BTreeMap::new())
            .unwrap();
        file(dir.path(), Role::Backfill)
            .save(&[kept("k", &first_backfill, None)], &BTreeMap::new())
            .unwrap();
        let count = |role: Role| -> u64 {
            let b = budget("100/1m");
            let restored = file(dir.path(), role).load(&[kept("k", &b, None)]).unwrap();
            restored.budgets["k"].sent.iter().map(|(_, n)| n).sum()
        };
        assert_eq!(count(Role::Backfill), 3);
        assert_eq!(count(Role::Run), 11);
    }

    /// Every doctor run is a writer of its own: past `MAX_WRITERS` the oldest parts merge,
    /// and not one send is lost.
    #[tokio::test(start_paused = true)]
    async fn many_writers_merge_and_lose_no_send() {
        let dir = tempfile::TempDir::new().unwrap();
        for _ in 0..(MAX_WRITERS + 10) {
            let b = budget("1000/1h");
            b.acquire().await;
            b.acquire().await;
            file(dir.path(), Role::Doctor)
                .save(&[kept("k", &b, None)], &BTreeMap::new())
                .unwrap();
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let saved: Saved =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap())
                .unwrap();
        assert!(saved.budgets["k"].writers.len() <= MAX_WRITERS);
        let b = budget("1000/1h");
        let restored = file(dir.path(), Role::Run)
            .load(&[kept("k", &b, None)])
            .unwrap();
        let sends: u64 = restored.budgets["k"].sent.iter().map(|(_, n)| n).sum();
        assert_eq!(sends, 2 * (MAX_WRITERS as u64 + 10));
    }

    #[cfg(unix)]
    #[tokio::test(start_paused = true)]
    async fn the_file_is_the_owner_s_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::TempDir::new().unwrap();
        let b = budget("10/1m");
        b.acquire().await;
        file(dir.path(), Role::Run)
            .save(&[kept("k", &b, Some("t"))], &BTreeMap::new())
            .unwrap();
        for name in [FILE_NAME, LOCK_NAME] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
}
