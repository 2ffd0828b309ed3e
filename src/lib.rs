//! rawscan: a fast, trustworthy port scanner.
//!
//! Data flows one way: `cli` → `config` → `app`, which picks a backend
//! (`net`) and runs the `engine` driver. The driver feeds the `scan` state
//! machine (sole owner of the plan's order, the probe table, per-host
//! timing, the UDP pacer and the `control`ler) with replies and the time,
//! and moves its probes to the backend's threads. Replies are parsed in
//! `wire` and believed in `validate`; results go to `output`.

pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod discovery;
pub mod echo;
pub mod engine;
pub mod net;
pub mod output;
pub mod permute;
pub mod plan;
pub mod privs;
pub mod probe;
pub mod probes;
pub mod resume;
pub mod safefile;
pub mod scan;
pub mod services;
pub mod targets;
#[cfg(test)]
pub(crate) mod testutil;
pub mod validate;
pub mod version;
pub mod wire;
