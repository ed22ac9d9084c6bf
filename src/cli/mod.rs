//! The scriptable face: the command-line definition shared by the TUI and the subcommands.

pub mod conntrack;
pub mod rules;
pub mod trace;

use crate::source::{Backend, SourceConfig};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Inspect and edit Linux netfilter: iptables, ip6tables and conntrack.
///
/// Without a subcommand, opens the terminal UI.
#[derive(Debug, Parser)]
#[command(name = "nfscope", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the rule sets (like `iptables -L -n -v --line-numbers`, or as save text or JSON).
    Rules(rules::RulesArgs),
    /// Print the conntrack table (like `conntrack -L`, or JSON), follow its events, or delete
    /// entries matching a filter.
    Conntrack(conntrack::ConntrackArgs),
    /// Trace one packet through the rule set: every rule it meets, and the verdict.
    Trace(trace::TraceArgs),
}

/// Where rule sets come from. The kernel by default.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Use the bundled demo world (no root needed).
    #[arg(long, global = true, conflicts_with_all = ["file", "file6", "backend"])]
    pub demo: bool,
    /// Read an IPv4 rule set saved by iptables-save (no root needed).
    #[arg(long, global = true, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Read an IPv6 rule set saved by ip6tables-save (no root needed).
    #[arg(long, global = true, value_name = "PATH")]
    pub file6: Option<PathBuf>,
    /// Force the iptables backend (default: whatever `iptables-save` on this system is).
    #[arg(long, global = true, value_enum, conflicts_with_all = ["file", "file6"])]
    pub backend: Option<Backend>,
    /// Seconds between refreshes (0.1 to 3600).
    #[arg(long, global = true, default_value_t = 1.0, value_name = "SECS", value_parser = parse_interval)]
    pub interval: f64,
}

/// `--interval`: checked by clap, so that a bad value is a usage error (a sentence, status 2).
fn parse_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_finite() && (0.1..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err("--interval must be between 0.1 and 3600 seconds".into())
    }
}

impl SourceArgs {
    pub fn config(&self) -> color_eyre::Result<SourceConfig> {
        if !(self.interval.is_finite() && self.interval >= 0.1 && self.interval <= 3600.0) {
            color_eyre::eyre::bail!("--interval must be between 0.1 and 3600 seconds");
        }
        let interval = Duration::from_secs_f64(self.interval);
        Ok(if self.demo {
            SourceConfig::Demo { interval }
        } else if self.file.is_some() || self.file6.is_some() {
            SourceConfig::File {
                v4: self.file.clone(),
                v6: self.file6.clone(),
                interval,
            }
        } else {
            SourceConfig::Kernel {
                backend: self.backend,
                interval,
            }
        })
    }
}
