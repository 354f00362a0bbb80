//! mining-exporter: polls mining-pool APIs inside each token's rate budget and serves what it
//! learned to Prometheus.
//!
//! Layout, from the file to the page:
//!
//! - `config/`: the TOML read and checked (the parts every source shares); each kind reads
//!   its own keys in `sources/<kind>/config.rs`.
//! - `plan.rs`: each source's interval, fitted to its budgets; `budget.rs`: the send log a
//!   request waits in; `state_file.rs`: budgets and costs kept across restarts.
//! - `exporter/`: the service object: wiring, the serve loop, reloads, learned costs.
//! - `scheduler.rs`: one poller per source, the wrapper that times, counts and contains a
//!   poll; `supervision.rs` catches a panicking one.
//! - `client/`: the one way a source reaches its API (budgets, retries, rate headers,
//!   redaction); `sources/`: one folder per kind, a `Source` that turns answers into a
//!   `Snapshot`.
//! - `snapshot.rs`: the store of every source's last good snapshot; `metrics.rs`: the
//!   metric contract; `telemetry.rs`: the exporter's own metrics, recorded as events;
//!   `exposition/` and `text_format.rs`: the page, kept as gzip joined from each source's
//!   compressed pieces; `server.rs` and `web/`: HTTP; `allocator.rs`: glibc set for a
//!   process that frees a large page after every poll.
//! - `doctor/`: `mining-exporter doctor`, one careful poll per source read back as findings,
//!   and `poll`, one poll of one source shown as it went.
//! - `demo/`: the simulators of every API and the configs the demo, tests and benches share.

pub mod allocator;
pub mod backfill;
pub mod budget;
pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod exporter;
pub mod exposition;
pub mod interned;
pub mod logging;
pub mod metrics;
pub mod plan;
pub mod scheduler;
pub mod secret;
pub mod server;
pub mod signing;
pub mod snapshot;
pub mod sources;
pub mod state_file;
pub mod supervision;
pub mod telemetry;
pub mod text_format;
pub mod web;

pub use exporter::{BudgetsAtStart, Exporter, ExporterOptions, RunOptions, bind, run};
