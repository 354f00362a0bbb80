//! How far a backfill is: a bar on a terminal (requests, points, time left), a log line
//! every few seconds elsewhere (a pipe, or `--log.format json`).

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;
use tracing::info;

/// Time between progress lines when there is no bar.
const LINE_EVERY: Duration = Duration::from_secs(5);

pub enum Progress {
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
}

pub struct Lines {
    total: u64,
    requests: u64,
    points: u64,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// A bar when `bar`, else log lines; `total` requests expected.
    pub fn new(total: u64, bar: bool) -> Progress {
        if bar {
            let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} requests, {msg} points, {eta} left",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            pb.set_style(style);
            pb.set_message("0");
            Progress::Bar(pb)
        } else {
            Progress::Lines(Mutex::new(Lines {
                total,
                requests: 0,
                points: 0,
                started: Instant::now(),
                last: None,
            }))
        }
    }

    /// A task is done, or was done by an earlier run.
    pub fn advance(&self, requests: u64, points: u64) {
        match self {
            Progress::Bar(pb) => {
                pb.inc(requests);
                let total_points = pb.message().parse::<u64>().unwrap_or(0) + points;
                pb.set_message(total_points.to_string());
            }
            Progress::Lines(lines) => {
                let mut l = lines.lock().unwrap_or_else(|e| e.into_inner());
                l.requests += requests;
                l.points += points;
                let now = Instant::now();
                if l.last.is_none_or(|t| now.duration_since(t) >= LINE_EVERY) {
                    l.last = Some(now);
                    let elapsed = now.duration_since(l.started).as_secs_f64();
                    let left = if l.requests == 0 {
                        None
                    } else {
                        let rate = l.requests as f64 / elapsed.max(1e-3);
                        Some((l.total.saturating_sub(l.requests) as f64 / rate).round())
                    };
                    info!(
                        requests = l.requests,
                        of = l.total,
                        points = l.points,
                        seconds_left = left,
                        "backfill progress"
                    );
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(pb) = self {
            pb.finish_and_clear();
        }
    }
}
