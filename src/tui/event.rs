//! What arrives at the UI loop (`Msg`) and the side effects `update` asks for (`Cmd`).

use crate::source::RulesetSnapshot;
use ratatui::crossterm::event::KeyEvent;
use std::time::SystemTime;

/// Anything arriving at the loop. Producers (input, sources, signals, the clock) own nothing of
/// the app's state; they only send these.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Resize(u16, u16),
    Snapshot(Box<RulesetSnapshot>),
    /// The clock moved (for ages and countdowns).
    Tick(SystemTime),
    /// SIGTERM, SIGHUP or the input stream ending.
    Quit,
}

/// A side effect that `update` asks the loop to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    Quit,
}
