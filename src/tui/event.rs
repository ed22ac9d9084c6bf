//! What arrives at the UI loop (`Msg`) and the side effects `update` asks for (`Cmd`).

use super::editor::Known;
use crate::conntrack::Entry;
use crate::conntrack::filter::Filter;
use crate::edit::commit::{Progress, Request};
use crate::edit::stage::Staging;
use crate::ruleset::Ruleset;
use crate::source::RulesetSnapshot;
use crate::source::ctfeed::CtFeed;
use ratatui::crossterm::event::{KeyEvent, MouseEvent};
use std::path::PathBuf;
use std::time::SystemTime;

/// Anything arriving at the loop. Producers (input, sources, signals, the clock) own nothing of
/// the app's state; they only send these.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// A click or the wheel (only with the mouse on: `--no-mouse` turns it off).
    Mouse(MouseEvent),
    Resize(u16, u16),
    Snapshot(Box<RulesetSnapshot>),
    /// What the conntrack feed sent, and when it arrived (timeouts count down from then).
    Conntrack(Box<CtFeed>, SystemTime),
    /// The clock moved (for ages, countdowns and fades).
    Tick(SystemTime),
    /// SIGTERM, SIGHUP or the input stream ending.
    Quit,
    /// The matches and targets the kernel knows, for the rule editor's completion.
    Known(Known),
    /// `iptables-restore --test` on the staged tables with the editor's rule: `Err` holds the
    /// tool's words. `id` names the request (a newer edit makes an older answer moot).
    Validated {
        id: u64,
        result: Result<(), String>,
    },
    /// A step of a commit, or the answer to a confirm, extend or rollback.
    Commit(Progress),
    /// Writing the state file failed: the sentence.
    StateError(String),
    /// A side effect's outcome for the footer (a view written to a file), and whether it is bad.
    Said(String, bool),
    /// The audit log's last records, read at the start and whenever the file changed (the
    /// messages popup shows them).
    Audit(crate::edit::audit::Tail),
    /// A stale-flow scan's answer (`Cmd::StaleScan`).
    Stale {
        found: Box<crate::trace::stale::Found>,
        after_commit: bool,
    },
}

/// A side effect that `update` asks the loop to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Quit,
    /// Ask the conntrack feed to delete this entry; the answer comes back as a `Msg`.
    CtDelete(Box<Entry>),
    /// Ask the conntrack feed to delete every entry matching the filter (all with `None`).
    CtDeleteMatching(Option<Filter>),
    /// Ask the conntrack feed to delete these entries (the stale ones).
    CtDeleteKeys(Vec<crate::conntrack::EntryKey>),
    /// Look for stale flows (trace::stale) in these entries against this rule set, on a
    /// worker; the answer comes back as `Msg::Stale`. `after_commit`: only to say how many.
    StaleScan {
        entries: Vec<Entry>,
        snap: Box<RulesetSnapshot>,
        after_commit: bool,
    },
    /// Run `iptables-restore --test` on these staged rule sets (a worker answers with
    /// `Msg::Validated`).
    Validate {
        id: u64,
        staged: Vec<Ruleset>,
    },
    /// Save the staged work to the state file (or clear it with `None`).
    SaveState(Option<Saved>),
    /// Start a commit on a worker; its steps come back as `Msg::Commit`.
    Commit(Box<Request>),
    /// The countdown: keep the change, give it more time (from this deadline), roll back now,
    /// or the deadline passed.
    KeepChange,
    Extend {
        deadline_ms: u64,
    },
    RollBack,
    Expired,
    /// Once a second in the countdown: was it confirmed or extended from elsewhere?
    CheckPending {
        deadline_ms: u64,
    },
    /// Zero counters now (`Z`, answered yes); a worker answers with `Msg::Said`.
    Zero(crate::edit::zero::ZeroRequest),
    /// Put this text on the terminal's clipboard (OSC 52, through SSH and tmux).
    Clipboard(String),
    /// Write a view to a file; the loop answers with `Msg::Said`, naming the file. `what` says
    /// what it is ("chain INPUT as save text").
    WriteFile {
        path: PathBuf,
        text: String,
        what: String,
    },
}

/// The staged work to save, and where it came from (`kernel`, `file:PATH`).
#[derive(Debug, Clone)]
pub struct Saved {
    pub staging: Staging,
    pub origin: String,
}

impl PartialEq for Saved {
    /// Two saves are the same when they would write the same file.
    fn eq(&self, other: &Self) -> bool {
        self.origin == other.origin
            && self.staging.ops() == other.staging.ops()
            && self.staging.base() == other.staging.base()
    }
}
