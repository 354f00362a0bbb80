//! `mining-exporter backfill`: the pools' history written as OpenMetrics text under the
//! live series' names and labels, for `promtool tsdb create-blocks-from openmetrics` or
//! VictoriaMetrics' import. Live metrics never carry timestamps; history goes in as blocks.
//!
//! The parts, one file each:
//! - `history/`: per kind, what there is (`discover`), the requests (`tasks`), one fetch.
//! - `budget_share.rs`: the backfill's budgets, leaving a running exporter its plan's room.
//! - `live_edge.rs`: `--until-live`, where live data begins, so history ends before it.
//! - `progress_file.rs`: tasks done and their points, so a second run goes on from there.
//! - `openmetrics.rs`: the output's format; `promtool.rs`: `--blocks`.
//! - `progress.rs`: the bar or the progress lines; `calendar.rs`: the pools' days.

mod budget_share;
pub mod calendar;
pub mod history;
mod live_edge;
mod openmetrics;
mod progress;
pub mod progress_file;
mod promtool;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::budget::Budgets;
use crate::client::{Connection, Upstream};
use crate::clock::WallClock;
use crate::config::{Config, SourceConfig};
use crate::error::PollError;
use crate::state_file::{KeptBudget, Role, StateFile, kept_budgets};
use crate::telemetry::Telemetry;
pub use budget_share::Share;
use calendar::When;
use history::{History, Skipped, Span, Task};
use openmetrics::FamilySeries;
use progress::Progress;
use progress_file::{Done, Header, ProgressFile, Resumed};
pub use promtool::Blocks;

/// Prometheus keeps 15 days unless told otherwise.
const DEFAULT_RETENTION_DAYS: f64 = 15.0;
/// The scrape job the shipped Prometheus config names.
pub const DEFAULT_JOB: &str = "mining-exporter";

#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// History from here.
    pub from: When,
    /// History before here; required without `until_live`.
    pub to: Option<When>,
    /// Sources by name; empty: every source whose kind has history.
    pub sources: Vec<String>,
    pub out: PathBuf,
    pub blocks: Option<PathBuf>,
    pub promtool: Option<PathBuf>,
    /// A Prometheus base URL to end each source's history before its live data.
    pub until_live: Option<String>,
    /// The running exporter's state directory: its learned costs and pauses, and where the
    /// backfill's own sends are kept.
    pub state_dir: Option<PathBuf>,
    pub dry_run: bool,
    /// Per-worker history too.
    pub workers: bool,
    /// The target labels (job, instance, ...) where `--until-live` finds none.
    pub labels: Vec<(String, String)>,
    /// A progress bar (a terminal), else progress lines.
    pub bar: bool,
    pub clock: WallClock,
}

#[derive(Debug, Error)]
pub enum BackfillError {
    #[error("{0}")]
    Usage(String),
    #[error("source {source_name:?}: {error}")]
    Upstream {
        source_name: String,
        error: PollError,
    },
    #[error("{path}: {action}: {error}")]
    Io {
        path: String,
        action: &'static str,
        error: std::io::Error,
    },
    #[error("--until-live: {0}")]
    Prometheus(String),
    #[error("--blocks: {0}")]
    Promtool(String),
    #[error(
        "stopped with {done} of {total} tasks done; run the same command again to go on from there (kept in {progress})"
    )]
    Interrupted {
        done: usize,
        total: usize,
        progress: String,
    },
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> BackfillError {
    let path = path.display().to_string();
    move |error| BackfillError::Io {
        path,
        action,
        error,
    }
}

/// One source's part of the run.
#[derive(Debug, Clone)]
pub struct SourceReport {
    pub name: String,
    pub kind: &'static str,
    pub span: Span,
    pub tasks: Vec<Task>,
    /// Requests made this run (discovery included).
    pub requests: u64,
    /// Tasks an earlier run had done.
    pub resumed: usize,
    /// Requests the tasks not done yet should take.
    pub left: u64,
    pub points: u64,
    pub skipped: Skipped,
    pub budget: String,
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub sources: Vec<SourceReport>,
    pub shares: Vec<Share>,
    pub dry_run: bool,
    pub out: PathBuf,
    pub progress: PathBuf,
    pub series: usize,
    pub points: u64,
    /// Points more than one task brought for one time: the first was kept.
    pub overlapping: u64,
    pub from: i64,
    pub now: i64,
    pub elapsed: Duration,
    pub blocks: Option<Blocks>,
}

impl Summary {
    /// Days of retention the history needs to stay in Prometheus.
    pub fn retention_days(&self) -> u64 {
        let days = (self.now - self.from).max(0) as f64 / 86_400.0;
        days.ceil() as u64 + 1
    }

    /// Requests the tasks take, and those still to make.
    pub fn planned_requests(&self) -> u64 {
        self.sources
            .iter()
            .flat_map(|s| &s.tasks)
            .map(|t| u64::from(t.requests))
            .sum()
    }

    /// How long the tasks not yet done take at the budgets' shares, budgets in parallel.
    pub fn estimated(&self) -> Duration {
        let mut by_budget: BTreeMap<&str, u64> = BTreeMap::new();
        for s in &self.sources {
            *by_budget.entry(s.budget.as_str()).or_default() += s.left;
        }
        let seconds = by_budget
            .iter()
            .filter_map(|(budget, requests)| {
                let share = self.shares.iter().find(|s| s.budget == *budget)?;
                Some(*requests as f64 / share.rate().max(1e-9))
            })
            .fold(0.0, f64::max);
        Duration::from_secs_f64(seconds.min(1e9))
    }

    /// What `backfill` prints when it is done, or what `--dry-run` would fetch.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let iso = calendar::iso_seconds;
        for s in &self.sources {
            let _ = writeln!(
                out,
                "source {} ({}): {} .. {}",
                s.name,
                s.kind,
                iso(s.span.from),
                iso(s.span.until)
            );
            let mut groups: BTreeMap<(&str, i64), (usize, i64, i64, u64)> = BTreeMap::new();
            for t in &s.tasks {
                let g = groups
                    .entry((t.endpoint, t.tick))
                    .or_insert((0, i64::MAX, i64::MIN, 0));
                g.0 += 1;
                g.1 = g.1.min(t.from);
                g.2 = g.2.max(t.until);
                g.3 += u64::from(t.requests);
            }
            for ((endpoint, tick), (n, from, until, requests)) in groups {
                let _ = writeln!(
                    out,
                    "  {endpoint} every {}: {} .. {}, {n} tasks, {requests} requests",
                    humantime::format_duration(Duration::from_secs(tick.unsigned_abs())),
                    iso(from),
                    iso(until)
                );
            }
            if s.tasks.is_empty() {
                let _ = writeln!(out, "  nothing to fetch in that span");
            }
            if !self.dry_run {
                let skipped: Vec<String> = s
                    .skipped
                    .counts()
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(why, n)| format!("{why} {n}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "  {} requests made, {} tasks from an earlier run, {} points; skipped: {}",
                    s.requests,
                    s.resumed,
                    s.points,
                    if skipped.is_empty() {
                        "none".to_string()
                    } else {
                        skipped.join(", ")
                    }
                );
            }
        }
        for share in &self.shares {
            for w in &share.windows {
                let _ = writeln!(
                    out,
                    "budget {}: {}/{}, {} kept for the exporter's plan, {} for the backfill",
                    share.budget,
                    w.limit.count,
                    humantime::format_duration(w.limit.per),
                    w.reserve,
                    w.share
                );
            }
        }
        let estimate = Duration::from_secs(self.estimated().as_secs());
        let _ = writeln!(
            out,
            "{} requests in all; at the budgets' shares that takes about {}",
            self.planned_requests(),
            humantime::format_duration(estimate)
        );
        let range_days = (self.now - self.from) as f64 / 86_400.0;
        let _ = writeln!(
            out,
            "retention: the history needs --storage.tsdb.retention.time={}d or more (Prometheus counts it back from its newest block and deletes older blocks within minutes of loading)",
            self.retention_days()
        );
        if range_days > DEFAULT_RETENTION_DAYS {
            let _ = writeln!(
                out,
                "warning: the history reaches {range_days:.1} days back, past Prometheus' default retention of 15 days"
            );
        }
        if self.dry_run {
            let _ = writeln!(out, "dry run: nothing fetched, nothing written");
            return out;
        }
        let _ = writeln!(
            out,
            "wrote {}: {} series, {} points in {:.1} s{}; progress in {} (delete it to fetch again)",
            self.out.display(),
            self.series,
            self.points,
            self.elapsed.as_secs_f64(),
            if self.overlapping > 0 {
                format!(", {} overlapping points left out", self.overlapping)
            } else {
                String::new()
            },
            self.progress.display()
        );
        if let Some(blocks) = &self.blocks {
            let _ = writeln!(
                out,
                "blocks of up to {} in {}: {}",
                humantime::format_duration(blocks.duration),
                blocks.dir.display(),
                blocks.made.join(", ")
            );
            let _ = writeln!(
                out,
                "to load them: copy those folders into Prometheus' data directory (--storage.tsdb.path); it picks them up within a minute, no restart"
            );
        }
        out
    }
}

/// A source, the history its kind can fetch, and the client that fetches it.
struct Run {
    config: SourceConfig,
    history: Arc<dyn History>,
    upstream: Arc<Upstream>,
}

/// A source chosen for the backfill and the history its kind can fetch.
type Selected = Vec<(SourceConfig, Box<dyn History>)>;

/// The sources to backfill, each with its history, in config order.
fn select(config: &Config, named: &[String]) -> Result<Selected, BackfillError> {
    for name in named {
        if !config.sources.iter().any(|s| &s.name == name) {
            let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
            return Err(BackfillError::Usage(format!(
                "--source {name:?}: {} has no such source (it has {})",
                config.file,
                names.join(", ")
            )));
        }
    }
    let mut selected = Vec::new();
    for source in &config.sources {
        if !named.is_empty() && !named.contains(&source.name) {
            continue;
        }
        match history::of(source) {
            Ok(h) => selected.push((source.clone(), h)),
            Err(why) if named.is_empty() => warn!(source = %source.name, "{why}: left out"),
            Err(why) => {
                return Err(BackfillError::Usage(format!(
                    "--source {:?}: {why}",
                    source.name
                )));
            }
        }
    }
    if selected.is_empty() {
        return Err(BackfillError::Usage(format!(
            "{}: no source has history to backfill",
            config.file
        )));
    }
    Ok(selected)
}

/// Everything that decides the tasks and their points, as the progress file's key: the
/// times as written (a span back stays a span, so the same command resumes), and
/// `--until-live` without its credentials or query (the file holds no secret).
fn arguments(options: &BackfillOptions, selected: &Selected) -> String {
    let sources: Vec<String> = selected
        .iter()
        .map(|(s, _)| format!("{}={}@{}", s.name, s.kind(), s.base_url))
        .collect();
    format!(
        "from={} to={:?} until_live={:?} workers={} labels={:?} sources={}",
        options.from.key(),
        options.to.map(When::key),
        options
            .until_live
            .as_deref()
            .map(live_edge::without_credentials),
        options.workers,
        options.labels,
        sources.join(",")
    )
}

/// The target labels where Prometheus names none: the flags, or the shipped job and the
/// config's listen address.
fn default_targets(config: &Config, options: &BackfillOptions) -> Vec<(String, String)> {
    let mut labels = if options.labels.is_empty() {
        vec![
            ("instance".to_string(), config.listen.to_string()),
            ("job".to_string(), DEFAULT_JOB.to_string()),
        ]
    } else {
        options.labels.clone()
    };
    labels.sort();
    labels.dedup_by(|a, b| a.0 == b.0);
    labels
}

/// Each source's span and target labels: from the flags, and from Prometheus with
/// `--until-live`.
async fn spans(
    config: &Config,
    options: &BackfillOptions,
    selected: &Selected,
    now: i64,
    http: &reqwest::Client,
) -> Result<Header, BackfillError> {
    let mut spans = BTreeMap::new();
    let mut targets = BTreeMap::new();
    let from = options.from.at(now);
    for (source, _) in selected {
        let mut until = options.to.map_or(now, |t| t.at(now)).min(now);
        let mut labels = default_targets(config, options);
        if let Some(url) = &options.until_live {
            let edge = live_edge::find(http, url, &source.name, from, now as f64)
                .await
                .map_err(BackfillError::Prometheus)?;
            if let Some(edge) = edge {
                if edge.targets_found > 1 {
                    warn!(source = %source.name, targets = edge.targets_found, "Prometheus has the source from more than one target; the history takes the labels of the earliest");
                }
                // Strictly before the first live sample: t < first.
                until = until.min(edge.first.ceil() as i64);
                labels = edge.targets;
            }
        }
        spans.insert(source.name.clone(), Span { from, until, now });
        targets.insert(source.name.clone(), labels);
    }
    Ok(Header::new(arguments(options, selected), spans, targets))
}

/// The backfill's upstream for `source`, through its share of `budgets`.
fn upstream(
    source: &SourceConfig,
    budgets: &Budgets,
    telemetry: &Telemetry,
    http: &reqwest::Client,
    clock: WallClock,
) -> Result<Upstream, BackfillError> {
    let token = source.token.clone().ok_or_else(|| {
        BackfillError::Usage(format!(
            "source {:?}: the token from {} could not be read",
            source.name, source.token_origin
        ))
    })?;
    let budget_named = |name: &String| {
        budgets
            .get(name)
            .cloned()
            .ok_or_else(|| BackfillError::Usage(format!("no budget {name:?}")))
    };
    Ok(Upstream::new(
        http.clone(),
        Connection {
            base_url: source.base_url.clone(),
            auth: source.settings.auth(),
            token,
            budget: budget_named(&source.budget)?,
            host_budget: source.host_budget.as_ref().map(budget_named).transpose()?,
            settings: source.http.clone(),
            clock,
        },
        telemetry.source(source.pool(), &source.name, false),
    ))
}

/// Runs a backfill of `config`'s sources; `stop` ends it between requests, resumable.
pub async fn run(
    config: &Config,
    options: &BackfillOptions,
    stop: CancellationToken,
) -> Result<Summary, BackfillError> {
    let started = tokio::time::Instant::now();
    let selected = select(config, &options.sources)?;
    let now = i64::try_from(options.clock.unix_seconds()).unwrap_or(i64::MAX);
    if options.to.is_none() && options.until_live.is_none() {
        return Err(BackfillError::Usage(
            "give --to, or --until-live with the Prometheus that scrapes the exporter: history that runs into live data is merged with it, and the series becomes a sawtooth of both".to_string(),
        ));
    }
    if options.from.at(now) >= options.to.map_or(now, |t| t.at(now)).min(now) {
        return Err(BackfillError::Usage(
            "--from must be earlier than --to and than now".to_string(),
        ));
    }
    let progress_path = progress_file::path_for(&options.out);
    let fingerprint = arguments(options, &selected);
    let resumed = if options.dry_run {
        None
    } else {
        ProgressFile::resume(&progress_path, &fingerprint)
            .map_err(io_error(&progress_path, "cannot read the progress file"))?
    };
    let http = crate::client::http_client().map_err(|e| BackfillError::Usage(e.to_string()))?;
    let (mut file, header, resumed) = match resumed {
        Some((file, header, resumed)) => (Some(file), header, resumed),
        None => {
            let header = spans(config, options, &selected, now, &http).await?;
            let file = if options.dry_run {
                None
            } else {
                Some(
                    ProgressFile::start(&progress_path, &header)
                        .map_err(io_error(&progress_path, "cannot write the progress file"))?,
                )
            };
            (file, header, Resumed::default())
        }
    };

    // The plan the running exporter follows, on the costs it learned where it saved them;
    // the backfill's own sends go into the same state file.
    let state = options
        .state_dir
        .as_ref()
        .map(|dir| StateFile::in_dir(dir, options.clock, Role::Backfill));
    let state_error =
        |e: crate::state_file::StateError| BackfillError::Usage(format!("--state-dir: {e}"));
    let costs = match &state {
        Some(state) => state.costs().map_err(state_error)?,
        None => Default::default(),
    };
    let plan = crate::plan::plan(config, &costs);
    let used: BTreeSet<String> = selected
        .iter()
        .flat_map(|(s, _)| std::iter::once(s.budget.clone()).chain(s.host_budget.clone()))
        .collect();
    let (budgets, shares) =
        budget_share::shares(config, &plan, &used).map_err(BackfillError::Usage)?;
    let kept = kept_budgets(&config.sources, &budgets);
    if let Some(state) = &state {
        // What earlier backfills sent that still counts, and any pause a pool imposed.
        let restored = state.load(&kept).map_err(state_error)?;
        let at = tokio::time::Instant::now();
        for (name, log) in &restored.budgets {
            if let Some(budget) = budgets.get(name) {
                budget.restore(log, at);
            }
        }
    }
    let keeper = Arc::new(StateKeeper::new(state, kept));
    keeper.save().map_err(state_error)?;
    // Whatever happens next, the requests made are kept for the next run.
    let outcome = async {
        let telemetry = Telemetry::new();
        let mut runs = Vec::new();
        let mut reports = Vec::new();
        for (source, history) in selected {
            let api = upstream(&source, &budgets, &telemetry, &http, options.clock)?;
            let span = header.spans.get(&source.name).copied().unwrap_or(Span {
                from: options.from.at(now),
                until: options.from.at(now),
                now,
            });
            let discovery = match resumed.discovered.get(&source.name) {
                Some(d) => d.clone(),
                None => {
                    let d = history
                        .discover(&api, options.workers)
                        .await
                        .map_err(|error| BackfillError::Upstream {
                            source_name: source.name.clone(),
                            error,
                        })?;
                    if let Some(file) = &mut file {
                        file.discovered(&source.name, &d)
                            .map_err(io_error(&progress_path, "cannot write the progress file"))?;
                    }
                    d
                }
            };
            let tasks = history.tasks(&discovery, &span, options.workers);
            let (done, left): (Vec<&Task>, Vec<&Task>) = tasks.iter().partition(|t| {
                resumed
                    .done
                    .contains_key(&(source.name.clone(), t.id.clone()))
            });
            let (done, left) = (done.len(), left.iter().map(|t| u64::from(t.requests)).sum());
            reports.push(SourceReport {
                name: source.name.clone(),
                kind: source.kind(),
                span,
                requests: api.telemetry().requests_asked(),
                resumed: done,
                left,
                points: 0,
                skipped: Skipped::default(),
                budget: source.budget.clone(),
                tasks,
            });
            runs.push(Run {
                config: source,
                history: Arc::from(history),
                upstream: Arc::new(api),
            });
        }
        let mut summary = Summary {
            sources: reports,
            shares,
            dry_run: options.dry_run,
            out: options.out.clone(),
            progress: progress_path.clone(),
            series: 0,
            points: 0,
            overlapping: 0,
            from: header
                .spans
                .values()
                .map(|s| s.from)
                .min()
                .unwrap_or(options.from.at(now)),
            now,
            elapsed: Duration::ZERO,
            blocks: None,
        };
        if options.dry_run {
            return Ok(summary);
        }
        let Some(file) = file else {
            return Ok(summary);
        };

        let done = fetch_all(
            &runs,
            &mut summary,
            resumed,
            file,
            options.bar,
            stop,
            &keeper,
        )
        .await?;
        write_output(&runs, &header, &done, &mut summary, options)?;
        summary.elapsed = started.elapsed();
        Ok::<Summary, BackfillError>(summary)
    }
    .await;
    if let Err(e) = keeper.save() {
        warn!(error = %e, "cannot keep the backfill's requests in the state file; a backfill run again within the window may send them twice");
    }
    outcome
}

/// The backfill's own sends, kept in the state directory like the exporter's (at most once
/// a second while tasks are done, and at the end), so that a second backfill within the
/// window counts them and the running exporter sees them.
struct StateKeeper {
    state: Option<StateFile>,
    kept: Vec<KeptBudget>,
    last: Mutex<Option<std::time::Instant>>,
}

impl StateKeeper {
    fn new(state: Option<StateFile>, kept: Vec<KeptBudget>) -> Self {
        StateKeeper {
            state,
            kept,
            last: Mutex::new(None),
        }
    }

    fn save(&self) -> Result<(), crate::state_file::StateError> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        // The backfill learns no costs: the exporter's stay as they are.
        state.save(&self.kept, &BTreeMap::new()).map(|_| ())
    }

    /// `save`, unless the last was under a second ago.
    fn save_soon(&self) {
        let due = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        if due {
            if let Err(e) = self.save() {
                warn!(error = %e, "cannot keep the backfill's requests in the state file");
            }
        }
    }
}

type DoneTasks = BTreeMap<(String, String), Done>;

/// Runs every task not done yet, the sources side by side; each source stops at its first
/// failed task, and the run fails after the others finish (what was done is kept).
async fn fetch_all(
    runs: &[Run],
    summary: &mut Summary,
    resumed: Resumed,
    file: ProgressFile,
    bar: bool,
    stop: CancellationToken,
    keeper: &Arc<StateKeeper>,
) -> Result<DoneTasks, BackfillError> {
    let progress_path = file.path().to_path_buf();
    let left = summary.sources.iter().map(|s| s.left).sum();
    let progress = Arc::new(Progress::new(left, bar));
    let done = Arc::new(Mutex::new(resumed.done));
    let file = Arc::new(Mutex::new(file));
    let mut set = JoinSet::new();
    for (run, report) in runs.iter().zip(&summary.sources) {
        let tasks: Vec<Task> = report.tasks.clone();
        let (history, api, span) = (run.history.clone(), run.upstream.clone(), report.span);
        let path = progress_path.clone();
        let name = run.config.name.clone();
        let (done, file, progress, stop, keeper) = (
            done.clone(),
            file.clone(),
            progress.clone(),
            stop.clone(),
            keeper.clone(),
        );
        set.spawn(async move {
            for task in &tasks {
                let key = (name.clone(), task.id.clone());
                if done
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains_key(&key)
                {
                    continue;
                }
                let before = api.telemetry().requests_asked();
                let fetched = tokio::select! {
                    () = stop.cancelled() => return Ok(false),
                    f = history.fetch(&api, task, &span) => f,
                };
                let fetched = fetched.map_err(|error| BackfillError::Upstream {
                    source_name: name.clone(),
                    error,
                })?;
                let record = Done {
                    requests: api.telemetry().requests_asked() - before,
                    points: fetched
                        .series
                        .iter()
                        .flat_map(|(key, points)| {
                            points
                                .iter()
                                .map(|(t, v)| (key.family.to_string(), key.labels.clone(), *t, *v))
                        })
                        .collect(),
                    skipped: fetched.skipped,
                };
                file.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .done(&name, &task.id, &record)
                    .map_err(io_error(&path, "cannot write the progress file"))?;
                progress.advance(record.requests, record.points.len() as u64);
                keeper.save_soon();
                done.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, record);
            }
            Ok::<bool, BackfillError>(true)
        });
    }
    let mut failure = None;
    let mut stopped = false;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => stopped = true,
            Ok(Err(e)) => {
                warn!(error = %e, "backfill of a source failed; what it fetched is kept");
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(BackfillError::Usage(format!("a fetch panicked: {e}")));
            }
        }
    }
    progress.finish();
    let done = std::mem::take(&mut *done.lock().unwrap_or_else(|e| e.into_inner()));
    for (run, report) in runs.iter().zip(summary.sources.iter_mut()) {
        report.requests = run.upstream.telemetry().requests_asked();
    }
    let total: usize = summary.sources.iter().map(|s| s.tasks.len()).sum();
    if stopped {
        return Err(BackfillError::Interrupted {
            done: done.len(),
            total,
            progress: progress_path.display().to_string(),
        });
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(done)
}

/// Every task's points merged into families and written once, in the tasks' order (the
/// first value for a time wins), to a temporary file renamed over `--out`; then `--blocks`.
fn write_output(
    runs: &[Run],
    header: &Header,
    done: &DoneTasks,
    summary: &mut Summary,
    options: &BackfillOptions,
) -> Result<(), BackfillError> {
    let mut families: BTreeMap<&'static str, FamilySeries> = BTreeMap::new();
    for (run, report) in runs.iter().zip(summary.sources.iter_mut()) {
        let source = &run.config;
        let targets = header
            .targets
            .get(&source.name)
            .cloned()
            .unwrap_or_default();
        for task in &report.tasks {
            let Some(record) = done.get(&(source.name.clone(), task.id.clone())) else {
                continue;
            };
            report.skipped.add(&record.skipped);
            for (family, values, t, v) in &record.points {
                let Some(def) = openmetrics::family(family) else {
                    continue;
                };
                let mut labels = vec![
                    ("pool".to_string(), source.pool().to_string()),
                    ("source".to_string(), source.name.clone()),
                ];
                labels.extend(
                    def.labels
                        .iter()
                        .zip(values)
                        .map(|(k, v)| ((*k).to_string(), v.clone())),
                );
                labels.extend(targets.iter().cloned());
                let points = families
                    .entry(def.name)
                    .or_default()
                    .entry(labels)
                    .or_default();
                if points.contains_key(t) {
                    summary.overlapping += 1;
                } else {
                    points.insert(*t, *v);
                    report.points += 1;
                }
            }
        }
    }
    summary.series = families.values().map(|f| f.len()).sum();
    summary.points = summary.sources.iter().map(|s| s.points).sum();
    let out = &options.out;
    let mut temporary = out.as_os_str().to_os_string();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    {
        let file =
            std::fs::File::create(&temporary).map_err(io_error(&temporary, "cannot create"))?;
        let mut writer = std::io::BufWriter::new(file);
        openmetrics::write(&mut writer, &families).map_err(io_error(&temporary, "cannot write"))?;
        std::io::Write::flush(&mut writer).map_err(io_error(&temporary, "cannot write"))?;
    }
    std::fs::rename(&temporary, out)
        .map_err(io_error(out, "cannot rename the output into place"))?;
    if let Some(dir) = &options.blocks {
        let promtool = options
            .promtool
            .clone()
            .or_else(promtool::on_path)
            .ok_or_else(|| {
                BackfillError::Promtool(
                    "promtool is not on PATH: apt-get install -y prometheus, or name it with --promtool PATH".to_string(),
                )
            })?;
        let until = summary
            .sources
            .iter()
            .map(|s| s.span.until)
            .max()
            .unwrap_or(summary.now);
        let range = Duration::from_secs(u64::try_from(until - summary.from).unwrap_or(0));
        summary.blocks = Some(
            promtool::create_blocks(&promtool, out, dir, promtool::block_duration(range))
                .map_err(BackfillError::Promtool)?,
        );
    }
    Ok(())
}
