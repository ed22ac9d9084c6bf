//! The scriptable face: the command-line definition shared by the TUI and the subcommands.

pub mod apply;
pub mod completions;
pub mod config;
pub mod conntrack;
mod conntrack_stale;
pub mod lint;
pub mod man;
pub mod reach;
pub mod rules;
pub mod trace;
mod trace_live;

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
    /// Where backups, the pending commit and the audit log live (default: $NFSCOPE_STATE_DIR,
    /// else /var/lib/nfscope for root, else ~/.local/state/nfscope).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Seconds a commit in the UI waits for its confirmation before the watchdog rolls it
    /// back (wins over the config file's `confirm_timeout`).
    #[arg(long, value_name = "SECS", default_value_t = crate::config::DEFAULT_CONFIRM_TIMEOUT, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub confirm_timeout: u64,
    /// The UI's config file (default: $XDG_CONFIG_HOME/nfscope/config.toml, else
    /// ~/.config/nfscope/config.toml; see `nfscope config --print-default`).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// No mouse in the UI: clicks and the wheel are left to the terminal (to select text).
    #[arg(long, global = true)]
    pub no_mouse: bool,
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
    /// Who can reach what: the classes of addresses a chain treats alike, and which can reach
    /// which for a protocol and port (certain, or possible where a match cannot be decided).
    Reach(reach::ReachArgs),
    /// Find shadowed and redundant rules, unused chains, risky habits and ports open in one
    /// family only; exit status 1 when a finding of at least --severity exists.
    Lint(lint::LintArgs),
    /// Load whole rule sets from files, like iptables-apply, with a rollback that survives the
    /// terminal: unless confirmed in time, a watchdog restores the previous rule sets.
    Apply(apply::ApplyArgs),
    /// Confirm the pending commit: the change stays (run it from a new SSH connection).
    Confirm,
    /// Restore the latest backup of both families now, and disarm any pending watchdog.
    Rollback,
    /// The UI's settings in effect, the config file's path (--path), or a commented default
    /// file (--print-default).
    Config(config::ConfigArgs),
    /// Print a shell completion script (see docs/cli.md to install it).
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff): `nfscope man > nfscope.1; man -l nfscope.1`.
    Man,
    /// The rollback watchdog, started by `apply` and the UI (not for people).
    #[command(hide = true)]
    Watchdog(apply::WatchdogArgs),
    /// Load an nft file in the throwaway namespace `--nft-file` made and print what the
    /// kernel made of it (not for people).
    #[command(hide = true)]
    NftDump(NftDumpArgs),
}

#[derive(Debug, Clone, Args)]
pub struct NftDumpArgs {
    /// The network namespace nfscope was started in: the dump refuses to run there.
    #[arg(long)]
    pub host_netns: u64,
    pub path: PathBuf,
}

/// Where rule sets come from. The kernel by default.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Use the bundled demo world (no root needed; `apply` refuses it: it changes the kernel).
    #[arg(long, global = true, conflicts_with_all = ["file", "file6", "backend"])]
    pub demo: bool,
    /// An IPv4 rule set saved by iptables-save: read (no root needed), or for `apply` the one to
    /// load (the same as its FILE).
    #[arg(long, global = true, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// An IPv6 rule set saved by ip6tables-save: read (no root needed), or for `apply` the one
    /// to load.
    #[arg(long, global = true, value_name = "PATH")]
    pub file6: Option<PathBuf>,
    // `nfscope apply` takes --file6 with --backend; elsewhere they exclude each other, see
    // `SourceArgs::conflict`.
    /// Force the iptables backend (default: whatever `iptables-save` on this system is).
    #[arg(long, global = true, value_enum)]
    pub backend: Option<Backend>,
    /// A native nftables rule set in nft syntax (e.g. /etc/nftables.conf), for `rules` and
    /// `trace`: loaded with `nft -f` into a throwaway network namespace and read back, never into
    /// this machine's. The iptables rules then come from --file/--file6 (none without them).
    #[arg(long, global = true, value_name = "PATH", conflicts_with_all = ["demo", "backend"])]
    pub nft_file: Option<PathBuf>,
    /// Seconds between refreshes of the UI and `--watch` (0.1 to 3600; wins over the config
    /// file's `interval`; `apply` refuses it).
    #[arg(long, global = true, default_value_t = crate::config::DEFAULT_INTERVAL, value_name = "SECS", value_parser = parse_interval)]
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
    /// `--backend` with `--file`/`--file6`: they exclude each other when reading rule sets
    /// (a file has no backend), but `nfscope apply FILE --file6 FILE6 --backend nft` loads
    /// the files with those tools, so clap cannot be told. The usage error, as clap words it.
    pub fn conflict(&self) -> Option<String> {
        let file = if self.file.is_some() {
            "--file <PATH>"
        } else if self.file6.is_some() {
            "--file6 <PATH>"
        } else {
            return None;
        };
        self.backend
            .map(|_| format!("the argument '--backend <BACKEND>' cannot be used with '{file}'"))
    }

    pub fn config(&self) -> color_eyre::Result<SourceConfig> {
        if !(self.interval.is_finite() && self.interval >= 0.1 && self.interval <= 3600.0) {
            color_eyre::eyre::bail!("--interval must be between 0.1 and 3600 seconds");
        }
        let interval = Duration::from_secs_f64(self.interval);
        Ok(if self.demo {
            SourceConfig::Demo { interval }
        } else if self.file.is_some() || self.file6.is_some() || self.nft_file.is_some() {
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

/// The source's warnings on standard error, one line each, others' words shown visibly.
pub(crate) fn warn_all(warnings: &[String]) {
    for w in warnings {
        eprintln!(
            "{}",
            crate::format::visible_lines(&format!("nfscope: warning: {w}"))
        );
    }
}
