//! Edit mode: staging changes on a base snapshot (`stage`, pure), the difference they make
//! (`diff`, pure), the minimal atomic change that commits them (`plan`, pure), the lockout check
//! for the current SSH session (`lockout`, pure, on the tracer), and the I/O edge: running the
//! restore tools (`tools`, `apply`), backups, the commit-confirmed watchdog (`guard`) and the
//! audit log.

pub mod apply;
pub mod audit;
pub mod backup;
pub mod commit;
pub mod diff;
pub mod guard;
pub mod lockout;
pub mod plan;
pub mod stage;
pub mod state;
pub mod tools;
pub mod zero;

use crate::ruleset::Family;
use serde::{Deserialize, Serialize};

/// One chain of one table of one family: what an edit touches.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChainRef {
    pub family: Family,
    pub table: String,
    pub chain: String,
}

impl ChainRef {
    pub fn new(family: Family, table: &str, chain: &str) -> Self {
        ChainRef {
            family,
            table: table.to_string(),
            chain: chain.to_string(),
        }
    }
}

impl std::fmt::Display for ChainRef {
    /// `IPv4 filter/INPUT`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.family.label(), self.table, self.chain)
    }
}

/// One table's part of a commit: an `iptables-restore --noflush` script (from `*table` to
/// `COMMIT`) that turns the kernel's table into the staged one, touching only the edited chains,
/// and the script that turns it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChange {
    pub family: Family,
    pub table: String,
    /// The chains the script changes, for messages.
    pub chains: Vec<String>,
    /// Input for `iptables-restore --noflush` (counters given inline where kept).
    pub script: String,
    /// The reverse: input for `iptables-restore --noflush` that restores what was there.
    pub undo: String,
}
