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
use mining_exporter::state_file::StateFile;
use mining_exporter::web::WebConfig;
use tokio_util::sync::CancellationToken;

/// Polls mining-pool APIs inside each token's rate budget and serves the results to Prometheus.
#[derive(Debug, Parser)]
#[command(version, about)]
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
        #[arg(long, short)]
        config: PathBuf,
        /// TLS and basic auth for the HTTP endpoints, in the web configuration format of
        /// Prometheus' exporters (tls_server_config, basic_auth_users).
        #[arg(long = "web.config.file")]
        web_config: Option<PathBuf>,
        /// Serve POST /-/reload, which re-reads the config as SIGHUP does.
        #[arg(long = "web.enable-lifecycle")]
        enable_lifecycle: bool,
        /// Keep each budget's recent requests and each source's learned poll cost in this
        /// directory, so a restart neither exceeds a window nor re-learns the plan. Without
        /// it a budget starts as if the last run had used it at the planned pace.
        #[arg(long = "state-dir")]
        state_dir: Option<PathBuf>,
    },
    /// Validate the config and print its sources, budgets and poll plan.
    Check {
        #[arg(long, short)]
        config: PathBuf,
        /// Plan with the poll costs the running exporter learned and saved here.
        #[arg(long = "state-dir")]
        state_dir: Option<PathBuf>,
    },
    /// Run simulated pools plus the exporter: no account or token needed.
    Demo {
        #[arg(long, default_value = "127.0.0.1:9898")]
        listen: SocketAddr,
    },
}

/// Exit code for a configuration the exporter refuses.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    mining_exporter::allocator::tune();
    let cli = Cli::parse();
    mining_exporter::logging::init(cli.log_level, cli.log_format);

    match cli.command {
        Command::Check { config, state_dir } => check(&config, state_dir.as_deref()),
        Command::Run {
            config: path,
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
                        state_dir,
                    };
                    serve(|shutdown| mining_exporter::run(config, options, shutdown))
                }
                Err(e) => exit_code(Err(e.into())),
            }
        }
        Command::Demo { listen } => {
            serve(move |shutdown| mining_exporter::demo::run_demo(listen, shutdown))
        }
    }
}

fn check(path: &std::path::Path, state_dir: Option<&std::path::Path>) -> ExitCode {
    let learned = match state_dir {
        Some(dir) => match StateFile::in_dir(dir, WallClock::System).load() {
            Ok(restored) => restored.costs,
            Err(e) => {
                eprintln!("warning: {e}");
                Default::default()
            }
        },
        None => Default::default(),
    };
    let result = Config::load(
        path,
        SecretMode::WarnIfMissing,
        &mining_exporter::sources::KINDS,
    )
    .map(|config| {
        let plan = mining_exporter::plan::plan(&config, &learned);
        mining_exporter::plan::report(&config, &plan)
    });
    exit_code(
        result
            .map(|report| print!("{report}"))
            .map_err(StartError::from),
    )
}

fn serve<F, Fut>(start: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), StartError>>,
{
    let outcome = tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
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
