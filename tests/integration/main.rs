//! Integration tests: one binary, so the crate links once. Network tests talk only to
//! httpmock servers and the embedded simulators on 127.0.0.1.

mod backfill;
mod cli;
mod client_behaviour;
mod common;
mod config_errors;
mod config_properties;
mod dashboards;
mod debian_package;
mod deploy;
mod docs;
mod doctor;
mod escaping;
mod golden;
mod hostile_input;
mod http_json;
mod http_json_shapes;
mod many_sites;
mod mixin;
mod pools;
mod prometheus_e2e;
mod promtool;
mod rate_budgets;
mod reload;
mod rules;
mod secrets;
mod server;
mod serving_limits;
mod simulator;
mod snapshots;
mod state_dir;
mod web;
