//! `mining-exporter poll --source NAME`: one poll of one source, as a running exporter makes
//! it (retries included), kept for showing: the page it makes and each request it sent.

use std::path::PathBuf;

use crate::client::RequestRecord;
use crate::config::Config;
use crate::error::StartError;
use crate::exporter::{BudgetsAtStart, Exporter, ExporterOptions};
use crate::scheduler::Outcome;
use crate::snapshot::LastError;

/// What one poll did and made.
#[derive(Debug)]
pub struct SinglePoll {
    /// The page with this source alone, as `/metrics` would serve it.
    pub page: Vec<u8>,
    /// Every request, oldest first, with the token hidden.
    pub requests: Vec<RequestRecord>,
    /// Why the poll failed; `None` when it succeeded.
    pub error: Option<LastError>,
}

impl SinglePoll {
    /// One line per request, as `poll` writes them on stderr:
    /// `GET <address> -> HTTP 200, 5321 bytes, 0.012 s[: the pool's or transport's words]`.
    pub fn request_lines(&self) -> String {
        let mut out = String::new();
        for r in &self.requests {
            let ending = match r.status {
                Some(status) => format!("HTTP {status}"),
                None => format!("{:?}", r.ending).to_lowercase(),
            };
            let message = r.message.as_deref().map(|m| format!(": {m}"));
            out.push_str(&format!(
                "{} {} -> {ending}, {} bytes, {:.3} s{}\n",
                r.method,
                r.url,
                r.bytes,
                r.took.as_secs_f64(),
                message.unwrap_or_default()
            ));
        }
        out
    }
}

/// Polls `source` of `config` once, spending from the budgets kept in `state_dir` (a running
/// exporter's) or, without one, from budgets taken as used at their planned pace.
pub async fn poll_one(
    config: Config,
    source: &str,
    state_dir: Option<PathBuf>,
) -> Result<SinglePoll, StartError> {
    let config = super::only(config, &[source.to_string()])?;
    let mut exporter = Exporter::with_options(
        config,
        ExporterOptions {
            state_role: crate::state_file::Role::Poll,
            budgets_at_start: BudgetsAtStart::kept_in(state_dir),
            ..ExporterOptions::default()
        },
    )?;
    let log = exporter.record_requests(source);
    let outcome = exporter.poll_once(source).await;
    exporter.keep_state().await;
    let requests = log.map(|l| l.take().0).unwrap_or_default();
    let error = match outcome {
        Some(Outcome::Success { .. }) => None,
        _ => Some(
            exporter
                .store()
                .statuses()
                .into_iter()
                .find_map(|s| s.last_error)
                .unwrap_or(LastError {
                    kind: "unknown",
                    message: "the poll did not run".to_string(),
                }),
        ),
    };
    Ok(SinglePoll {
        page: exporter.exposition().current().text(),
        requests,
        error,
    })
}
