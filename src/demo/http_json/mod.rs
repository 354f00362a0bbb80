//! Simulators of APIs no built-in kind reads, which the generic `http_json` source polls in
//! the demo and the tests: a LuxCore-style payments gateway and a Luxbio-style pool.

pub mod luxbio;
pub mod luxcore;

pub use luxbio::{LuxbioOptions, LuxbioSimulator};
pub use luxcore::{LuxCoreOptions, LuxCoreSimulator};
