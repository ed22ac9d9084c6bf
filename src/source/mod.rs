//! Where rule sets come from: the kernel (through the system's iptables-save tools), saved files,
//! or the bundled demo. Each source runs on its own thread and hands whole snapshots to a sink
//! (the UI's channel); one refresh is in flight at a time.

pub mod bounded;
pub mod conntrack_netlink;
pub mod conntrack_proc;
pub mod ctdemo;
pub mod ctfeed;
pub mod demo;
pub mod file;
pub mod kernel;
pub mod local_addrs;
pub mod native;
pub mod netns;
pub(crate) mod nfnl;
pub mod nft_expr;
pub mod nft_file;
pub mod nft_netlink;
pub mod nft_trace;
pub mod stale;

use crate::ruleset::{Family, Ruleset};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use thiserror::Error;

/// Which iptables backend the system tools talk to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// iptables-nft: the rules live in nf_tables.
    Nft,
    /// iptables-legacy: the rules live in the old x_tables.
    Legacy,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Nft => "nf_tables",
            Backend::Legacy => "legacy",
        }
    }
}

/// What to read rule sets from, as chosen on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    /// The running kernel, through `iptables-save -c` and `ip6tables-save -c`.
    Kernel {
        /// `None`: whatever `iptables-save` on the PATH is.
        backend: Option<Backend>,
        interval: Duration,
    },
    /// Saved files; either may be absent.
    File {
        v4: Option<PathBuf>,
        v6: Option<PathBuf>,
        interval: Duration,
    },
    /// The bundled demo world, counters advancing by themselves.
    Demo { interval: Duration },
}

impl SourceConfig {
    pub fn interval(&self) -> Duration {
        match self {
            SourceConfig::Kernel { interval, .. }
            | SourceConfig::File { interval, .. }
            | SourceConfig::Demo { interval } => *interval,
        }
    }
}

/// A failure to get a rule set, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SourceError {
    #[error(
        "{tool} was not found: install the iptables package (e.g. `apt-get install iptables`), or try `nfscope --demo`"
    )]
    ToolMissing { tool: String },
    #[error(
        "{tool} needs root (CAP_NET_ADMIN) to read the rule set: run nfscope as root (sudo), or try `nfscope --demo` or `--file PATH`"
    )]
    PermissionDenied { tool: String },
    #[error("{tool} failed (exit {status}): {stderr}")]
    ToolFailed {
        tool: String,
        status: String,
        stderr: String,
    },
    #[error("{what}: {message}")]
    Parse { what: String, message: String },
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
}

/// Whether this process holds CAP_NET_ADMIN in its effective set,
/// which the iptables tools, conntrack and netlink need (this thread's: capabilities are per
/// thread, `/proc/thread-self`). Unreadable: assume it does, and let the
/// tool's own failure speak.
pub fn has_net_admin() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_none_or(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// One family's result within a snapshot. `Absent` means the source has nothing for that family
/// (e.g. `--file` without `--file6`), which is not an error.
#[derive(Debug, Clone, PartialEq)]
pub enum FamilyData {
    Loaded(Ruleset),
    Absent,
    Failed(SourceError),
}

impl FamilyData {
    pub fn ruleset(&self) -> Option<&Ruleset> {
        match self {
            FamilyData::Loaded(r) => Some(r),
            _ => None,
        }
    }

    pub fn error(&self) -> Option<&SourceError> {
        match self {
            FamilyData::Failed(e) => Some(e),
            _ => None,
        }
    }
}

/// Where a snapshot came from, for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Kernel {
        backend: Backend,
    },
    File {
        v4: Option<String>,
        v6: Option<String>,
    },
    Demo,
}

impl Origin {
    pub fn describe(&self) -> String {
        match self {
            Origin::Kernel { backend } => format!("kernel · {}", backend.label()),
            Origin::File { v4, v6 } => {
                let names: Vec<&str> = [v4, v6].into_iter().flatten().map(String::as_str).collect();
                if names.is_empty() {
                    "file · no iptables rule set".to_string()
                } else {
                    format!("file · {}", names.join(", "))
                }
            }
            Origin::Demo => "demo".to_string(),
        }
    }
}

/// Both families as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct RulesetSnapshot {
    /// Increases by one with every snapshot a source sends.
    pub generation: u64,
    pub origin: Origin,
    /// When the refresh finished.
    pub taken_at: SystemTime,
    /// How long the refresh took.
    pub took: Duration,
    pub v4: FamilyData,
    pub v6: FamilyData,
    /// Things the user must know that are not errors, e.g. rules in the other backend.
    pub warnings: Vec<String>,
    /// iptables-nft: the nf_tables generation at which the save tools printed these rules
    /// (the counters may be later); while the kernel is still at it, they are the kernel's
    /// rules, and a commit need not read them again. `None` elsewhere, or when unsure.
    pub nft_generation: Option<u32>,
    /// The native nftables tables (read-only), with their counters as of this refresh: from
    /// the kernel, a small one in the demo, none from files.
    pub native: Vec<native::NativeTable>,
    /// The last change another program committed to nf_tables while nfscope watched: who
    /// and when (`changed by nft at 18:40:01`), from the kernel's change events.
    pub changed_by: Option<String>,
}

impl RulesetSnapshot {
    pub fn family(&self, f: Family) -> &FamilyData {
        match f {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// Every family error, labelled.
    pub fn errors(&self) -> Vec<String> {
        Family::ALL
            .iter()
            .filter_map(|&f| {
                self.family(f)
                    .error()
                    .map(|e| format!("{}: {e}", f.label()))
            })
            .collect()
    }
}

/// Where a source delivers snapshots. Returns `false` once nobody listens; the source then stops.
pub type Sink = Box<dyn FnMut(RulesetSnapshot) -> bool + Send>;

/// Read both families once (for the CLI, and the first frame).
pub fn load_once(cfg: &SourceConfig) -> RulesetSnapshot {
    load_once_of(cfg, &Family::ALL)
}

/// Read these families once: from the kernel, only their tools run (`rules -4` runs no
/// ip6tables tool); the others are `Absent`.
pub fn load_once_of(cfg: &SourceConfig, families: &[Family]) -> RulesetSnapshot {
    match cfg {
        SourceConfig::Kernel { backend, .. } => kernel::KernelReader::new(*backend)
            .families(families)
            .read(1),
        SourceConfig::File { v4, v6, .. } => file::read(v4.as_deref(), v6.as_deref(), 1),
        SourceConfig::Demo { .. } => demo::DemoWorld::new().snapshot(),
    }
}

/// Start the source's thread: it sends a snapshot now and then one every interval until the sink
/// says stop. The next poll starts only after the previous one finished.
pub fn spawn(cfg: SourceConfig, sink: Sink) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("nfscope-rules".into())
        .spawn(move || run(cfg, sink))
}

/// Start the demo source on a world shared with edit mode (whose commits change it).
pub fn spawn_demo(
    interval: Duration,
    world: demo::SharedDemo,
    mut sink: Sink,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("nfscope-rules".into())
        .spawn(move || {
            poll_loop(interval, &mut sink, |_| {
                let mut w = world.lock().ok()?;
                w.advance(interval);
                Some(w.snapshot())
            })
        })
}

fn run(cfg: SourceConfig, mut sink: Sink) {
    let interval = cfg.interval();
    match cfg {
        SourceConfig::Kernel { backend, .. } => {
            let mut reader = kernel::KernelReader::new(backend);
            poll_loop(interval, &mut sink, |g| Some(reader.read(g)));
        }
        SourceConfig::File { v4, v6, .. } => {
            let mut watcher = file::Watcher::new(v4, v6);
            poll_loop(interval, &mut sink, |g| watcher.poll(g));
        }
        SourceConfig::Demo { .. } => {
            let mut world = demo::DemoWorld::new();
            poll_loop(interval, &mut sink, |_| {
                world.advance(interval);
                Some(world.snapshot())
            });
        }
    }
}

/// How long to wait after a read that took `spent`, to start the next one `interval` after the
/// last began. A slow read never overlaps the next, and the pause is at least twice what the read
/// took: on a huge rule set (iptables-nft-save needs seconds for 50,000 rules) nfscope keeps the
/// tools busy a third of the time at most instead of a whole core.
pub fn pause_after(interval: Duration, spent: Duration) -> Duration {
    interval
        .saturating_sub(spent)
        .max(spent.saturating_mul(2))
        .max(Duration::from_millis(50))
}

/// Call `read` on the schedule of `pause_after` and pass what it returns on. `None` means
/// nothing changed.
fn poll_loop(
    interval: Duration,
    sink: &mut Sink,
    mut read: impl FnMut(u64) -> Option<RulesetSnapshot>,
) {
    let mut generation = 1u64;
    loop {
        let start = std::time::Instant::now();
        if let Some(snap) = read(generation) {
            generation += 1;
            if !sink(snap) {
                return;
            }
        }
        std::thread::sleep(pause_after(interval, start.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_keep_their_interval_but_back_off_when_reads_are_slow() {
        let ms = Duration::from_millis;
        assert_eq!(pause_after(ms(1000), ms(30)), ms(970));
        assert_eq!(pause_after(ms(1000), ms(400)), ms(800));
        assert_eq!(pause_after(ms(1000), ms(3400)), ms(6800));
        assert_eq!(pause_after(ms(100), ms(99)), ms(198));
        assert_eq!(pause_after(ms(100), ms(0)), ms(100));
    }
}
