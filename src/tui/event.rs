//! What arrives at the UI loop (`Msg`) and the side effects `update` asks for (`Cmd`).

use crate::conntrack::Entry;
use crate::conntrack::filter::Filter;
use crate::source::RulesetSnapshot;
use crate::source::ctfeed::CtFeed;
use ratatui::crossterm::event::KeyEvent;
use std::time::SystemTime;

/// Anything arriving at the loop. Producers (input, sources, signals, the clock) own nothing of
/// the app's state; they only send these.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Resize(u16, u16),
    Snapshot(Box<RulesetSnapshot>),
    /// What the conntrack feed sent, and when it arrived (timeouts count down from then).
    Conntrack(Box<CtFeed>, SystemTime),
    /// The clock moved (for ages, countdowns and fades).
    Tick(SystemTime),
    /// SIGTERM, SIGHUP or the input stream ending.
    Quit,
}

/// A side effect that `update` asks the loop to carry out.
#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Quit,
    /// Ask the conntrack feed to delete this entry; the answer comes back as a `Msg`.
    CtDelete(Box<Entry>),
    /// Ask the conntrack feed to delete every entry matching the filter (all with `None`).
    CtDeleteMatching(Option<Filter>),
}
