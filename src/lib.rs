//! nfscope: inspect and edit Linux netfilter (iptables, ip6tables, conntrack) from a terminal.
//!
//! Layers (arrows point down only): the faces `tui` and `cli` sit on the I/O edge `source`, which
//! sits on the pure domain (`ruleset`, `conntrack`, `trace`, `edit`'s pure half). See docs/architecture.md.

pub mod cli;
pub mod config;
pub mod conntrack;
pub mod edit;
pub mod format;
pub mod ruleset;
pub mod source;
pub mod time;
pub mod trace;
pub mod tui;
