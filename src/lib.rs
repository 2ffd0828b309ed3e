//! rawscan: a fast, trustworthy port scanner.
//!
//! Data flows one way: `cli` → `config` → `engine` (which alone owns the
//! probe `table`) ↔ `net` threads, and results → `output`.

pub mod app;
pub mod cli;
pub mod config;
pub mod engine;
pub mod net;
pub mod output;
pub mod pacing;
pub mod permute;
pub mod plan;
pub mod probe;
pub mod rate;
pub mod resume;
pub mod services;
pub mod table;
pub mod targets;
pub mod validate;
pub mod version;
pub mod wire;
