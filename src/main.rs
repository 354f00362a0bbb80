//! The command line: parse, set up logging, hand over to the library, map the exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mining_exporter::RunOptions;
use mining_exporter::clock::WallClock;
use mining_exporter::config::{Config, SecretMode};
use mining_exporter::error::StartError;
use mining_exporter::logging::{LogFormat, LogLevel};
use mining_exporter::state_file::{Role, StateFile};
use mining_exporter::web::WebConfig;
use tokio_util::sync::CancellationToken;

/// `--version`: the version, the git revision and the compiler it was built with.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("MINING_EXPORTER_REVISION"),
    ", rustc ",
    env!("MINING_EXPORTER_RUST_VERSION"),
    ")"
);

/// Polls mining-pool APIs inside each token's rate budget and serves the results to Prometheus.
#[derive(Debug, Parser)]
#[command(version = LONG_VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Only log messages of this severity or above (RUST_LOG, when set, wins).
    #[arg(long = "log.level", global = true, value_enum, default_value_t = LogLevel::Info)]
    log_level: LogLevel,
    /// Log line format on stderr.
    #[arg(long = "log.format", global = true, value_enum, default_value_t = LogFormat::Logfmt)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Poll the configured sources and serve /metrics.
    Run {
        /// The config file (TOML; config.example.toml documents every key).
        #[arg(long, short)]
        config: PathBuf,
        /// Listen here (IP:PORT) instead of the config's server.listen.
        #[arg(long = "web.listen-address")]
        listen: Option<SocketAddr>,
        /// TLS and basic auth for the HTTP endpoints, in the web configuration format of
        /// Prometheus' exporters (tls_server_config, basic_auth_users).
        #[arg(long = "web.config.file")]
        web_config: Option<PathBuf>,
        /// Serve POST /-/reload, which re-reads the config as SIGHUP does.
        #[arg(long = "web.enable-lifecycle")]
        enable_lifecycle: bool,
        /// Keep each budget's recent requests and each source's learned poll cost in this
        /// directory, so a restart neither exceeds a window nor re-learns the plan. Default:
        /// $STATE_DIRECTORY, which systemd's StateDirectory= sets. Without either, a budget
        /// starts as if the last run had used it at the planned pace.
        #[arg(long = "state-dir")]
        state_dir: Option<PathBuf>,
    },
    /// Validate the config and print its sources, budgets and poll plan. Given several
    /// (--config a.toml --config b.toml, one per exporter), check each and warn where two
    /// read the same token.
    Check {
        /// A config file to check (repeat for several).
        #[arg(long, short, required = true)]
        config: Vec<PathBuf>,
        /// Plan with the poll costs the running exporter learned and saved here.
        #[arg(long = "state-dir")]
        state_dir: Option<PathBuf>,
        /// Also check this web config (TLS, basic auth) without binding a port.
        #[arg(long = "web.config.file")]
        web_config: Option<PathBuf>,
    },
    /// Ask each source's API once, inside its budget, and say per endpoint what came back:
    /// reached or not, status, auth and scopes, the pool's rate limits against the
    /// budget, workers and pages, the poll's cost and the plan. Exit 1 if a source
    /// cannot poll.
    Doctor(DoctorArgs),
    /// One poll of one source: its exposition on stdout, its requests on stderr.
    Poll {
        /// The config file.
        #[arg(long, short)]
        config: PathBuf,
        /// The source to poll (its `name`).
        #[arg(long)]
        source: String,
        /// Spend from the running exporter's budgets kept here (default $STATE_DIRECTORY).
        #[arg(long = "state-dir")]
        state_dir: Option<PathBuf>,
    },
    /// Write the pools' history as OpenMetrics text under the live series' names, for
    /// promtool's blocks or VictoriaMetrics' import.
    Backfill(BackfillArgs),
    /// Run simulated pools plus the exporter: no account or token needed.
    Demo {
        /// Where the demo's exporter listens.
        #[arg(long, default_value = "127.0.0.1:9898")]
        listen: SocketAddr,
    },
}

#[derive(Debug, clap::Args)]
struct DoctorArgs {
    /// The config file.
    #[arg(long, short)]
    config: PathBuf,
    /// Only this source (repeat for more); default every source.
    #[arg(long = "source")]
    sources: Vec<String>,
    /// Spend from the running exporter's budgets kept here (default $STATE_DIRECTORY), so
    /// the doctor's requests count in the same windows.
    #[arg(long = "state-dir")]
    state_dir: Option<PathBuf>,
    /// text for people, json for scripts.
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    format: DoctorFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum DoctorFormat {
    Text,
    Json,
}

/// `--state-dir`, or where systemd's StateDirectory= put one (the first, if it lists several).
fn state_dir_or_systemd(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| {
        let listed = std::env::var_os("STATE_DIRECTORY")?;
        let first = listed.to_str()?.split(':').next()?.to_string();
        (!first.is_empty()).then(|| PathBuf::from(first))
    })
}

#[derive(Debug, clap::Args)]
struct BackfillArgs {
    /// The config file.
    #[arg(long, short)]
    config: PathBuf,
    /// History from here: a date (2026-11-01, midnight UTC), an RFC 3339 time, or a span
    /// back from now (30d).
    #[arg(long)]
    from: String,
    /// History before here (same forms). Required without --until-live: history that runs
    /// into live data is merged with it.
    #[arg(long)]
    to: Option<String>,
    /// Only this source (repeat for more); default every source with history.
    #[arg(long = "source")]
    sources: Vec<String>,
    /// The OpenMetrics file to write; `<FILE>.progress` beside it makes a rerun resume.
    #[arg(long)]
    out: PathBuf,
    /// Also turn the output into TSDB blocks in this directory with promtool.
    #[arg(long)]
    blocks: Option<PathBuf>,
    /// promtool to run for --blocks (default: the one on PATH).
    #[arg(long)]
    promtool: Option<PathBuf>,
    /// End each source's history before its first sample in this Prometheus (base URL),
    /// and take the live series' job and instance from it.
    #[arg(long = "until-live")]
    until_live: Option<String>,
    /// The running exporter's state directory (default $STATE_DIRECTORY): plan its reserve
    /// on the costs it learned, take over a pool's pause, and keep the backfill's own
    /// requests there, so a second run within the window counts them.
    #[arg(long = "state-dir")]
    state_dir: Option<PathBuf>,
    /// Print the ranges, ticks, requests and time the budgets make that take; fetch only
    /// what lists them (subaccounts, algorithms, workers).
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Per-worker history too: a request per worker or page of workers.
    #[arg(long)]
    workers: bool,
    /// A target label for the history, NAME=VALUE (repeat); default job="mining-exporter"
    /// and instance=<server.listen>. --until-live takes them from the live series.
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: give NAME=VALUE"))?;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid || name.starts_with("__") || name == "pool" || name == "source" {
        return Err(format!(
            "{name:?} is not a target label name this backfill may set"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Exit code for a backfill stopped by Ctrl-C or SIGTERM (resumable).
const EXIT_INTERRUPTED: u8 = 130;

fn backfill(args: BackfillArgs, log_format: LogFormat) -> ExitCode {
    use mining_exporter::backfill::{self, BackfillError, BackfillOptions, calendar};
    use std::io::IsTerminal;
    let times = calendar::parse_when(&args.from).and_then(|from| {
        let to = args.to.as_deref().map(calendar::parse_when).transpose()?;
        Ok((from, to))
    });
    let (from, to) = match times {
        Ok(times) => times,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let config = match load(&args.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let options = BackfillOptions {
        from,
        to,
        sources: args.sources,
        out: args.out,
        blocks: args.blocks,
        promtool: args.promtool,
        until_live: args.until_live,
        state_dir: state_dir_or_systemd(args.state_dir),
        dry_run: args.dry_run,
        workers: args.workers,
        labels: args.labels,
        bar: std::io::stderr().is_terminal() && log_format != LogFormat::Json,
        clock: WallClock::System,
    };
    let outcome = runtime().map(|runtime| {
        runtime.block_on(async {
            let stop = CancellationToken::new();
            tokio::spawn(cancel_on_signal(stop.clone()));
            backfill::run(&config, &options, stop).await
        })
    });
    match outcome {
        Ok(Ok(summary)) => {
            print!("{}", summary.report());
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(match e {
                BackfillError::Usage(_) => EXIT_CONFIG,
                BackfillError::Interrupted { .. } => EXIT_INTERRUPTED,
                _ => 1,
            })
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit code for a configuration the exporter refuses.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    mining_exporter::allocator::tune();
    let cli = Cli::parse();
    mining_exporter::logging::init(cli.log_level, cli.log_format);

    match cli.command {
        Command::Check {
            config,
            state_dir,
            web_config,
        } => check(&config, state_dir.as_deref(), web_config.as_deref()),
        Command::Doctor(args) => doctor(args),
        Command::Poll {
            config,
            source,
            state_dir,
        } => poll(&config, &source, state_dir_or_systemd(state_dir)),
        Command::Run {
            config: path,
            listen,
            web_config,
            enable_lifecycle,
            state_dir,
        } => {
            let web = match web_config {
                Some(path) => WebConfig::load(&path),
                None => Ok(WebConfig::default()),
            };
            match web.and_then(|web| {
                Ok((
                    Config::load(&path, SecretMode::Require, &mining_exporter::sources::KINDS)?,
                    web,
                ))
            }) {
                Ok((config, web)) => {
                    let options = RunOptions {
                        config_path: Some(path),
                        web,
                        enable_lifecycle,
                        state_dir: state_dir_or_systemd(state_dir),
                        listen,
                    };
                    serve(|shutdown| mining_exporter::run(config, options, shutdown))
                }
                Err(e) => exit_code(Err(e.into())),
            }
        }
        Command::Backfill(args) => backfill(args, cli.log_format),
        Command::Demo { listen } => {
            serve(move |shutdown| mining_exporter::demo::run_demo(listen, shutdown))
        }
    }
}

/// The config at `path` with every token read, or the exit code of its error (printed).
fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path, SecretMode::Require, &mining_exporter::sources::KINDS)
        .map_err(|e| exit_code(Err(e.into())))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().context("cannot start the async runtime")
}

/// Runs `future` to its end on a new runtime; an error is printed once and becomes the exit
/// code.
fn block_on<T>(
    future: impl std::future::Future<Output = Result<T, StartError>>,
) -> Result<T, ExitCode> {
    match runtime() {
        Ok(runtime) => runtime.block_on(future).map_err(|e| exit_code(Err(e))),
        Err(e) => {
            eprintln!("error: {e:#}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn doctor(args: DoctorArgs) -> ExitCode {
    use mining_exporter::doctor::{self, DoctorOptions};
    let config = match load(&args.config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let options = DoctorOptions {
        sources: args.sources,
        state_dir: state_dir_or_systemd(args.state_dir),
    };
    let report = match block_on(doctor::run(config, &options)) {
        Ok(report) => report,
        Err(code) => return code,
    };
    match args.format {
        DoctorFormat::Text => print!("{}", report.text()),
        DoctorFormat::Json => println!("{}", report.json()),
    }
    if report.can_poll {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn poll(path: &std::path::Path, source: &str, state_dir: Option<PathBuf>) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let polled = match block_on(mining_exporter::doctor::poll_one(config, source, state_dir)) {
        Ok(polled) => polled,
        Err(code) => return code,
    };
    eprint!("{}", polled.request_lines());
    use std::io::Write;
    let _ = std::io::stdout().write_all(&polled.page);
    match polled.error {
        None => ExitCode::SUCCESS,
        Some(error) => {
            eprintln!("error: the poll failed ({}): {}", error.kind, error.message);
            ExitCode::FAILURE
        }
    }
}

fn check(
    paths: &[PathBuf],
    state_dir: Option<&std::path::Path>,
    web_config: Option<&std::path::Path>,
) -> ExitCode {
    let learned = match state_dir {
        Some(dir) => match StateFile::in_dir(dir, WallClock::System, Role::Run).costs() {
            Ok(costs) => costs,
            Err(e) => {
                eprintln!("warning: {e}");
                Default::default()
            }
        },
        None => Default::default(),
    };
    let mut loaded = Vec::new();
    let mut failed = None;
    for path in paths {
        if paths.len() > 1 {
            println!("== {}", path.display());
        }
        match Config::load(
            path,
            SecretMode::WarnIfMissing,
            &mining_exporter::sources::KINDS,
        ) {
            Ok(config) => {
                let plan = mining_exporter::plan::plan(&config, &learned);
                print!("{}", mining_exporter::plan::report(&config, &plan));
                loaded.push(config);
            }
            Err(e) => {
                let code = exit_code(Err(StartError::from(e)));
                failed.get_or_insert(code);
            }
        }
    }
    for warning in mining_exporter::config::shared_secrets(&loaded) {
        eprintln!("warning: {warning}");
    }
    if let Some(path) = web_config {
        match WebConfig::load(path) {
            Ok(web) => println!(
                "web config {}: TLS {}, basic auth {}",
                path.display(),
                if web.tls() { "on" } else { "off" },
                if web.basic_auth() { "on" } else { "off" }
            ),
            Err(e) => {
                let code = exit_code(Err(StartError::from(e)));
                failed.get_or_insert(code);
            }
        }
    }
    failed.unwrap_or(ExitCode::SUCCESS)
}

fn serve<F, Fut>(start: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), StartError>>,
{
    let outcome = runtime().and_then(|runtime| {
        runtime.block_on(async {
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            Ok(start(shutdown).await)
        })
    });
    match outcome {
        Ok(result) => exit_code(result),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the error once and maps it: 2 for a refused configuration, 1 for anything else.
fn exit_code(result: Result<(), StartError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                StartError::Config(_) => ExitCode::from(EXIT_CONFIG),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

/// SIGTERM or Ctrl-C: stop polling, let in-flight scrapes finish, exit 0.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
    shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every flag of every command says what it does in `--help`.
    #[test]
    fn every_flag_has_help() {
        let cli = Cli::command();
        cli.clone().debug_assert();
        let mut missing = Vec::new();
        let mut commands = vec![cli];
        while let Some(command) = commands.pop() {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{} --{}", command.get_name(), arg.get_id()));
                }
            }
            commands.extend(command.get_subcommands().cloned());
        }
        assert!(missing.is_empty(), "flags without help: {missing:?}");
    }

    /// Every flag of every command is documented, and every flag the docs' tables give a
    /// command exists: the docs cannot drift from the command line unseen.
    #[test]
    fn every_flag_is_in_the_docs_and_every_documented_flag_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let docs: String = ["docs/operations.md", "docs/backfill.md", "docs/budgets.md"]
            .iter()
            .map(|f| std::fs::read_to_string(root.join(f)).unwrap())
            .collect();
        let cli = Cli::command();
        let mut flags = std::collections::BTreeSet::new();
        let mut commands = vec![cli];
        while let Some(command) = commands.pop() {
            for arg in command.get_arguments() {
                if let Some(long) = arg.get_long() {
                    flags.insert(long.to_string());
                }
            }
            commands.extend(command.get_subcommands().cloned());
        }
        for flag in &flags {
            if matches!(flag.as_str(), "help" | "version") {
                continue;
            }
            assert!(
                docs.contains(&format!("--{flag}")),
                "--{flag} is in no docs file"
            );
        }
        // The flags in the docs' tables (rows that start with a flag) are the command's.
        for line in docs.lines().filter(|l| l.starts_with("| `-")) {
            for part in line.split('`').skip(1).step_by(2) {
                for word in part.split([',', ' ']) {
                    if let Some(flag) = word.strip_prefix("--") {
                        assert!(flags.contains(flag), "the docs give --{flag}: {line}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_state_dir_defaults_to_systemd_s_first() {
        // SAFETY: this is the only test of this binary reading or writing STATE_DIRECTORY.
        unsafe { std::env::set_var("STATE_DIRECTORY", "/var/lib/a:/var/lib/b") };
        assert_eq!(
            state_dir_or_systemd(None),
            Some(PathBuf::from("/var/lib/a"))
        );
        assert_eq!(
            state_dir_or_systemd(Some(PathBuf::from("/x"))),
            Some(PathBuf::from("/x"))
        );
        unsafe { std::env::remove_var("STATE_DIRECTORY") };
        assert_eq!(state_dir_or_systemd(None), None);
    }
}
