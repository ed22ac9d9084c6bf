//! The one keymap table: it drives dispatch, the footer hints and the help overlay, so that help
//! never drifts from what the keys do.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::sync::OnceLock;

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    NextScreen,
    PrevScreen,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    FocusLeft,
    FocusRight,
    /// Open the chain a rule jumps to, or the rule's details.
    Enter,
    Back,
    Details,
    Filter,
    ClearFilter,
    ExactNumbers,
    ClosePopup,
    ShowRules,
    ShowConntrack,
    /// Sort by the next / previous column, or reverse the order.
    SortNext,
    SortPrev,
    SortReverse,
    /// Cycle the group-by view: none, state, protocol, source, destination port.
    GroupBy,
    /// Delete the selected conntrack entry, or all that match the filter (both ask first).
    Delete,
    DeleteMatching,
    /// Every message said so far, whole.
    ShowMessages,
    /// Answers to a confirmation.
    Confirm,
    Cancel,
    /// On the resume question: discard the saved changes of an earlier run (asks again).
    DiscardSaved,
    ShowTrace,
    /// Trace a packet of the selected conntrack entry.
    TraceEntry,
    /// The Trace screen's form: next / previous field, run the trace, leave or enter the form.
    NextField,
    PrevField,
    RunTrace,
    LeaveForm,
    EditForm,
    /// Fill the form from the current SSH session.
    SshFill,
    /// Trace the kernel's rule set instead of the staged one, and back.
    TraceKernel,
    /// Show the next / previous path of a forked trace.
    NextPath,
    PrevPath,
    ShowFlow,
    /// The Flow screen: show the other address family.
    OtherFamily,
    /// Edit mode, on the Rules screen: stage a rule appended, inserted above the selected one,
    /// or replacing it; delete it (asks first); move it up or down.
    AddRule,
    InsertRule,
    EditRule,
    DeleteRule,
    MoveRuleUp,
    MoveRuleDown,
    /// Stage a new chain, a rename, a chain's deletion, a policy flip, a flush (asks first),
    /// zeroed counters.
    NewChain,
    RenameChain,
    DeleteChain,
    TogglePolicy,
    FlushChain,
    ZeroCounters,
    Undo,
    Redo,
    ShowChanges,
    /// The Changes screen: unstage the selected operation, discard them all (asks first),
    /// commit.
    Unstage,
    DiscardAll,
    Commit,
    /// In an editor: save (stage), cancel, complete the word.
    Save,
    CancelEdit,
    Complete,
    /// The commit's checklist: stage the same operations on the kernel's new rule set.
    Rebase,
    /// The countdown: keep the change, give it 30 s more, roll back now.
    KeepChange,
    Extend,
    RollBack,
    /// Copy what is selected (a rule's save line, an entry, a trace, a diff) to the terminal's
    /// clipboard with OSC 52.
    Yank,
    /// Write what the screen shows to a file (save text, JSON lines, a trace's text).
    WriteView,
    /// The conntrack event log: the last new, update and destroy events.
    EventLog,
    /// Who can reach what through the chain, for the selected rule's protocol and port.
    Reach,
    /// In the Reach popup: ask about the next hook's chain (INPUT, FORWARD, OUTPUT).
    ReachChain,
    /// In the Reach popup: walk the nat table first (a port forward answers at its public
    /// address), or not.
    ReachNat,
    /// In the Reach popup: the next / previous port the rules name.
    ReachNextPort,
    ReachPrevPort,
    /// The Conntrack screen: only the stale entries (the rules would not accept them anew).
    StaleFlows,
    /// Jump to a chain by a fuzzy name.
    JumpChain,
    /// The next / previous rule matching the search, in any chain.
    SearchNext,
    SearchPrev,
    /// Scroll long lines left / right, or wrap them.
    ScrollLeft,
    ScrollRight,
    ToggleWrap,
    /// The chain as `-A CHAIN ...` lines, full width.
    SaveForm,
    /// On the zero-counters question: stage the zeroing with the other changes instead.
    StageInstead,
    /// A fixed-value field of the Trace form: the next / previous value.
    CycleNext,
    CyclePrev,
}

impl Action {
    /// The action's name in the config file's `[keys]` table: stable snake_case, whatever the
    /// variant is called in the code.
    pub fn name(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::NextScreen => "next_screen",
            Action::PrevScreen => "prev_screen",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page_up",
            Action::PageDown => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::FocusLeft => "focus_left",
            Action::FocusRight => "focus_right",
            Action::Enter => "enter",
            Action::Back => "back",
            Action::Details => "details",
            Action::Filter => "filter",
            Action::ClearFilter => "clear_filter",
            Action::ExactNumbers => "exact_numbers",
            Action::ClosePopup => "close_popup",
            Action::ShowRules => "show_rules",
            Action::ShowConntrack => "show_conntrack",
            Action::SortNext => "sort_next",
            Action::SortPrev => "sort_prev",
            Action::SortReverse => "sort_reverse",
            Action::GroupBy => "group_by",
            Action::Delete => "delete",
            Action::DeleteMatching => "delete_matching",
            Action::ShowMessages => "show_messages",
            Action::Confirm => "confirm",
            Action::Cancel => "cancel",
            Action::DiscardSaved => "discard_saved",
            Action::ShowTrace => "show_trace",
            Action::TraceEntry => "trace_entry",
            Action::NextField => "next_field",
            Action::PrevField => "prev_field",
            Action::RunTrace => "run_trace",
            Action::LeaveForm => "leave_form",
            Action::EditForm => "edit_form",
            Action::SshFill => "ssh_fill",
            Action::TraceKernel => "trace_kernel",
            Action::NextPath => "next_path",
            Action::PrevPath => "prev_path",
            Action::ShowFlow => "show_flow",
            Action::OtherFamily => "other_family",
            Action::AddRule => "add_rule",
            Action::InsertRule => "insert_rule",
            Action::EditRule => "edit_rule",
            Action::DeleteRule => "delete_rule",
            Action::MoveRuleUp => "move_rule_up",
            Action::MoveRuleDown => "move_rule_down",
            Action::NewChain => "new_chain",
            Action::RenameChain => "rename_chain",
            Action::DeleteChain => "delete_chain",
            Action::TogglePolicy => "toggle_policy",
            Action::FlushChain => "flush_chain",
            Action::ZeroCounters => "zero_counters",
            Action::Undo => "undo",
            Action::Redo => "redo",
            Action::ShowChanges => "show_changes",
            Action::Unstage => "unstage",
            Action::DiscardAll => "discard_all",
            Action::Commit => "commit",
            Action::Save => "save",
            Action::CancelEdit => "cancel_edit",
            Action::Complete => "complete",
            Action::Rebase => "rebase",
            Action::KeepChange => "keep_change",
            Action::Extend => "extend",
            Action::RollBack => "roll_back",
            Action::Yank => "yank",
            Action::WriteView => "write_view",
            Action::EventLog => "event_log",
            Action::Reach => "reach",
            Action::ReachChain => "reach_chain",
            Action::ReachNat => "reach_nat",
            Action::ReachNextPort => "reach_next_port",
            Action::ReachPrevPort => "reach_prev_port",
            Action::StaleFlows => "stale_flows",
            Action::JumpChain => "jump_chain",
            Action::SearchNext => "search_next",
            Action::SearchPrev => "search_prev",
            Action::ScrollLeft => "scroll_left",
            Action::ScrollRight => "scroll_right",
            Action::ToggleWrap => "toggle_wrap",
            Action::SaveForm => "save_form",
            Action::StageInstead => "stage_instead",
            Action::CycleNext => "cycle_next",
            Action::CyclePrev => "cycle_prev",
        }
    }
}

/// Where a key binding applies. Popups see keys first, then the screen, then global keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Rules,
    Conntrack,
    /// The Trace screen's steps list.
    Trace,
    /// The Trace screen's form while it has the focus: other keys type into the field.
    TraceForm,
    /// The Flow screen's diagram.
    Flow,
    Popup,
    /// A question waiting for yes or no: nothing else gets through.
    Confirm,
    /// The Changes screen: staged operations and their diff.
    Changes,
    /// A one-line editor (a rule, a chain name): other keys type.
    Editor,
    /// The commit's checklist while it runs or after it stopped.
    Commit,
    /// The countdown after a commit: nothing else gets through.
    Countdown,
    /// The jump-to-chain popup: other keys type the name.
    Jump,
    /// The Reach popup's matrix.
    Reach,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "Everywhere",
            Scope::Rules => "Rules screen",
            Scope::Conntrack => "Conntrack screen",
            Scope::Trace => "Trace screen",
            Scope::TraceForm => "Trace screen, typing in the form",
            Scope::Flow => "Flow screen",
            Scope::Popup => "Popups",
            Scope::Confirm => "Confirmations",
            Scope::Changes => "Changes screen",
            Scope::Editor => "Rule and chain editor (other keys type)",
            Scope::Commit => "Commit checklist",
            Scope::Countdown => "Countdown after a commit",
            Scope::Jump => "Jump to a chain (: or Ctrl-p; other keys type its name)",
            Scope::Reach => "Reach: who can reach what (r on the Rules screen)",
        }
    }
}

/// A key as written in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

const fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
        alt: false,
    }
}

const fn code(code: KeyCode) -> Key {
    Key {
        code,
        ctrl: false,
        alt: false,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
        alt: false,
    }
}

const fn alt(code: KeyCode) -> Key {
    Key {
        code,
        ctrl: false,
        alt: true,
    }
}

/// One row of the keymap.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub scope: Scope,
    pub keys: &'static [Key],
    pub action: Action,
    pub help: &'static str,
    /// Shown in the footer's short list of hints.
    pub hint: Option<&'static str>,
}

/// Every key nfscope knows, in the order the help shows them.
pub const KEYMAP: &[Binding] = &[
    Binding {
        scope: Scope::Popup,
        keys: &[code(KeyCode::Esc), k('q'), code(KeyCode::Enter)],
        action: Action::ClosePopup,
        help: "close the popup",
        hint: Some("close"),
    },
    Binding {
        scope: Scope::Popup,
        keys: &[code(KeyCode::Up), k('k')],
        action: Action::Up,
        help: "scroll up",
        hint: None,
    },
    Binding {
        scope: Scope::Popup,
        keys: &[code(KeyCode::Down), k('j')],
        action: Action::Down,
        help: "scroll down",
        hint: None,
    },
    Binding {
        scope: Scope::Popup,
        keys: &[code(KeyCode::PageUp)],
        action: Action::PageUp,
        help: "scroll a page up",
        hint: None,
    },
    Binding {
        scope: Scope::Popup,
        keys: &[code(KeyCode::PageDown), k(' ')],
        action: Action::PageDown,
        help: "scroll a page down",
        hint: None,
    },
    Binding {
        scope: Scope::Popup,
        keys: &[code(KeyCode::Home), k('g')],
        action: Action::Top,
        help: "scroll to the top",
        hint: None,
    },
    Binding {
        scope: Scope::Popup,
        keys: &[code(KeyCode::End), k('G')],
        action: Action::Bottom,
        help: "scroll to the end",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::Up), k('k')],
        action: Action::Up,
        help: "move up",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::Down), k('j')],
        action: Action::Down,
        help: "move down",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::PageUp)],
        action: Action::PageUp,
        help: "a page up",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::PageDown)],
        action: Action::PageDown,
        help: "a page down",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::Home), k('g')],
        action: Action::Top,
        help: "first row",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::End), k('G')],
        action: Action::Bottom,
        help: "last row",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::Left), k('h')],
        action: Action::FocusLeft,
        help: "focus the chain tree",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::Right), k('l')],
        action: Action::FocusRight,
        help: "focus the rules",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::Enter)],
        action: Action::Enter,
        help: "open the chain a rule jumps to, else the rule's details",
        hint: Some("open"),
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::Backspace)],
        action: Action::Back,
        help: "back to the chain you came from",
        hint: Some("back"),
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('i')],
        action: Action::Details,
        help: "details of the selected rule",
        hint: Some("details"),
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('/')],
        action: Action::Filter,
        help: "filter the rules by text",
        hint: Some("filter"),
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::Esc)],
        action: Action::ClearFilter,
        help: "clear the filter",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('x')],
        action: Action::ExactNumbers,
        help: "exact numbers / human units",
        hint: Some("exact"),
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('a')],
        action: Action::AddRule,
        help: "stage a new rule at the end of the chain",
        hint: Some("add"),
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('I')],
        action: Action::InsertRule,
        help: "stage a new rule above the selected one",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('e')],
        action: Action::EditRule,
        help: "edit the selected rule (staged as a replacement)",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[code(KeyCode::Delete), k('-')],
        action: Action::DeleteRule,
        help: "stage the selected rule's deletion (asks first)",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('K'), alt(KeyCode::Up)],
        action: Action::MoveRuleUp,
        help: "move the selected rule up one place",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('J'), alt(KeyCode::Down)],
        action: Action::MoveRuleDown,
        help: "move the selected rule down one place",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('A')],
        action: Action::NewChain,
        help: "stage a new user chain in this table",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('R')],
        action: Action::RenameChain,
        help: "rename the selected user chain (its references too)",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('X')],
        action: Action::DeleteChain,
        help: "delete the selected user chain (offers to remove references)",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('P')],
        action: Action::TogglePolicy,
        help: "flip a built-in chain's policy between ACCEPT and DROP",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('F')],
        action: Action::FlushChain,
        help: "flush the chain: delete all its rules (asks first)",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('Z')],
        action: Action::ZeroCounters,
        help: "zero the counters now (asks; s stages instead)",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('u')],
        action: Action::Undo,
        help: "undo the last staged change",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[ctrl('r')],
        action: Action::Redo,
        help: "redo what undo took back",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('n')],
        action: Action::SearchNext,
        help: "next rule the filter matches, in any chain",
        hint: Some("next hit"),
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('N')],
        action: Action::SearchPrev,
        help: "previous rule matching the filter, in any chain",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('<')],
        action: Action::ScrollLeft,
        help: "scroll long rules left",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('>')],
        action: Action::ScrollRight,
        help: "scroll long rules right (or w wraps them)",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('w')],
        action: Action::ToggleWrap,
        help: "wrap long rules over several rows, and back",
        hint: Some("wrap"),
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('S')],
        action: Action::SaveForm,
        help: "the chain in save form (-A CHAIN ... lines), and back",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('y')],
        action: Action::Yank,
        help: "copy the selected rule's save line (OSC 52 clipboard)",
        hint: Some("copy"),
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[code(KeyCode::Up), k('k')],
        action: Action::Up,
        help: "move up",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[code(KeyCode::Down), k('j')],
        action: Action::Down,
        help: "move down",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[code(KeyCode::PageUp)],
        action: Action::PageUp,
        help: "a page up",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[code(KeyCode::PageDown)],
        action: Action::PageDown,
        help: "a page down",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[code(KeyCode::Home), k('g')],
        action: Action::Top,
        help: "first row",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[code(KeyCode::End), k('G')],
        action: Action::Bottom,
        help: "last row",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[code(KeyCode::Enter)],
        action: Action::Enter,
        help: "details of the entry; in a group view, list the group's entries",
        hint: Some("open"),
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('i')],
        action: Action::Details,
        help: "every attribute of the selected entry",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[code(KeyCode::Backspace)],
        action: Action::Back,
        help: "from a group view back to the entries",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('/')],
        action: Action::Filter,
        help: "filter, e.g. proto=tcp state=TIME_WAIT dport=22 !assured",
        hint: Some("filter"),
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[code(KeyCode::Esc)],
        action: Action::ClearFilter,
        help: "clear the filter",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('s'), k('>')],
        action: Action::SortNext,
        help: "sort by the next column",
        hint: Some("sort"),
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('S'), k('<')],
        action: Action::SortPrev,
        help: "sort by the previous column",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('r')],
        action: Action::SortReverse,
        help: "reverse the order",
        hint: Some("reverse"),
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('v')],
        action: Action::GroupBy,
        help: "group by: none → state → protocol → source → destination port",
        hint: Some("group"),
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('d')],
        action: Action::Delete,
        help: "delete the selected entry (asks first)",
        hint: Some("delete"),
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('D')],
        action: Action::DeleteMatching,
        help: "delete every entry the filter shows (asks first, says how many)",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('X')],
        action: Action::StaleFlows,
        help: "stale flows: entries the rules would refuse anew (again: all)",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('x')],
        action: Action::ExactNumbers,
        help: "exact numbers / human units",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('t')],
        action: Action::TraceEntry,
        help: "trace a packet of the selected entry (Trace screen)",
        hint: None,
    },
    Binding {
        scope: Scope::Conntrack,
        keys: &[k('y')],
        action: Action::Yank,
        help: "copy the selected entry (conntrack -L form) to the clipboard",
        hint: None,
    },
    Binding {
        scope: Scope::TraceForm,
        keys: &[code(KeyCode::Tab), code(KeyCode::Down)],
        action: Action::NextField,
        help: "next field",
        hint: Some("next field"),
    },
    Binding {
        scope: Scope::TraceForm,
        keys: &[code(KeyCode::BackTab), code(KeyCode::Up)],
        action: Action::PrevField,
        help: "previous field",
        hint: None,
    },
    Binding {
        scope: Scope::TraceForm,
        keys: &[code(KeyCode::Enter)],
        action: Action::RunTrace,
        help: "trace the packet",
        hint: Some("trace"),
    },
    Binding {
        scope: Scope::TraceForm,
        keys: &[code(KeyCode::Backspace)],
        action: Action::Back,
        help: "delete the last character",
        hint: None,
    },
    Binding {
        scope: Scope::TraceForm,
        keys: &[code(KeyCode::Esc)],
        action: Action::LeaveForm,
        help: "leave the form (q, ?, Tab, 1-4 work again)",
        hint: Some("leave form"),
    },
    Binding {
        scope: Scope::TraceForm,
        keys: &[code(KeyCode::Right)],
        action: Action::CycleNext,
        help: "proto, local, state: next value (Space too; est = ESTABLISHED)",
        hint: None,
    },
    Binding {
        scope: Scope::TraceForm,
        keys: &[code(KeyCode::Left)],
        action: Action::CyclePrev,
        help: "proto, local, state: the previous value",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[code(KeyCode::Up), k('k')],
        action: Action::Up,
        help: "previous step",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[code(KeyCode::Down), k('j')],
        action: Action::Down,
        help: "next step",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[code(KeyCode::PageUp)],
        action: Action::PageUp,
        help: "a page up",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[code(KeyCode::PageDown)],
        action: Action::PageDown,
        help: "a page down",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[code(KeyCode::Home), k('g')],
        action: Action::Top,
        help: "first step",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[code(KeyCode::End), k('G')],
        action: Action::Bottom,
        help: "last step",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[code(KeyCode::Enter)],
        action: Action::Enter,
        help: "show the step's rule on the Rules screen (Bksp: back)",
        hint: Some("open rule"),
    },
    Binding {
        scope: Scope::Trace,
        keys: &[k('e'), k('/')],
        action: Action::EditForm,
        help: "edit the packet in the form",
        hint: Some("edit"),
    },
    Binding {
        scope: Scope::Trace,
        keys: &[k('s')],
        action: Action::SshFill,
        help: "trace this SSH session's packets (SSH_CONNECTION)",
        hint: Some("ssh"),
    },
    Binding {
        scope: Scope::Trace,
        keys: &[k('K')],
        action: Action::TraceKernel,
        help: "trace the kernel's rules, not the staged ones (and back)",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[k(']'), code(KeyCode::Right)],
        action: Action::NextPath,
        help: "next path of a forked trace",
        hint: Some("path"),
    },
    Binding {
        scope: Scope::Trace,
        keys: &[k('['), code(KeyCode::Left)],
        action: Action::PrevPath,
        help: "previous path of a forked trace",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[k('<')],
        action: Action::ScrollLeft,
        help: "scroll long steps left",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[k('>')],
        action: Action::ScrollRight,
        help: "scroll long steps right",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[k('w')],
        action: Action::ToggleWrap,
        help: "wrap long steps over several rows, and back",
        hint: None,
    },
    Binding {
        scope: Scope::Trace,
        keys: &[k('y')],
        action: Action::Yank,
        help: "copy the trace as text to the clipboard",
        hint: None,
    },
    Binding {
        scope: Scope::Confirm,
        keys: &[k('y'), code(KeyCode::Enter)],
        action: Action::Confirm,
        help: "yes, do it",
        hint: Some("yes"),
    },
    Binding {
        scope: Scope::Confirm,
        keys: &[k('n'), code(KeyCode::Esc), k('q')],
        action: Action::Cancel,
        help: "no, leave everything as it is (on the resume question: later)",
        hint: Some("no"),
    },
    Binding {
        scope: Scope::Confirm,
        keys: &[k('d')],
        action: Action::DiscardSaved,
        help: "on the resume question: discard the saved changes (asks again)",
        hint: None,
    },
    Binding {
        scope: Scope::Confirm,
        keys: &[k('s')],
        action: Action::StageInstead,
        help: "zero-counters question: stage it instead",
        hint: None,
    },
    Binding {
        scope: Scope::Changes,
        keys: &[code(KeyCode::Up), k('k')],
        action: Action::Up,
        help: "previous operation",
        hint: None,
    },
    Binding {
        scope: Scope::Changes,
        keys: &[code(KeyCode::Down), k('j')],
        action: Action::Down,
        help: "next operation",
        hint: None,
    },
    Binding {
        scope: Scope::Changes,
        keys: &[code(KeyCode::PageUp)],
        action: Action::PageUp,
        help: "scroll the diff up",
        hint: None,
    },
    Binding {
        scope: Scope::Changes,
        keys: &[code(KeyCode::PageDown), k(' ')],
        action: Action::PageDown,
        help: "scroll the diff down",
        hint: None,
    },
    Binding {
        scope: Scope::Changes,
        keys: &[code(KeyCode::Enter)],
        action: Action::Enter,
        help: "open the operation's chain on the Rules screen (Bksp: back)",
        hint: Some("show"),
    },
    Binding {
        scope: Scope::Changes,
        keys: &[code(KeyCode::Delete), k('d')],
        action: Action::Unstage,
        help: "unstage the selected operation",
        hint: Some("unstage"),
    },
    Binding {
        scope: Scope::Changes,
        keys: &[k('D')],
        action: Action::DiscardAll,
        help: "discard every staged change (asks first)",
        hint: Some("discard"),
    },
    Binding {
        scope: Scope::Changes,
        keys: &[k('c')],
        action: Action::Commit,
        help: "commit: validate, check, back up, apply, then confirm",
        hint: Some("commit"),
    },
    Binding {
        scope: Scope::Changes,
        keys: &[k('u')],
        action: Action::Undo,
        help: "undo the last staged change",
        hint: Some("undo"),
    },
    Binding {
        scope: Scope::Changes,
        keys: &[ctrl('r')],
        action: Action::Redo,
        help: "redo what undo took back",
        hint: None,
    },
    Binding {
        scope: Scope::Changes,
        keys: &[k('<')],
        action: Action::ScrollLeft,
        help: "scroll the diff left",
        hint: None,
    },
    Binding {
        scope: Scope::Changes,
        keys: &[k('>')],
        action: Action::ScrollRight,
        help: "scroll the diff right",
        hint: None,
    },
    Binding {
        scope: Scope::Changes,
        keys: &[k('w')],
        action: Action::ToggleWrap,
        help: "wrap the diff's long lines, and back",
        hint: None,
    },
    Binding {
        scope: Scope::Changes,
        keys: &[k('y')],
        action: Action::Yank,
        help: "copy the diff to the clipboard",
        hint: None,
    },
    Binding {
        scope: Scope::Editor,
        keys: &[code(KeyCode::Enter)],
        action: Action::Save,
        help: "save: check with iptables-restore --test, then stage",
        hint: Some("save"),
    },
    Binding {
        scope: Scope::Editor,
        keys: &[code(KeyCode::Esc)],
        action: Action::CancelEdit,
        help: "cancel, staging nothing",
        hint: Some("cancel"),
    },
    Binding {
        scope: Scope::Editor,
        keys: &[code(KeyCode::Tab)],
        action: Action::Complete,
        help: "complete a chain, target (after -j/-g) or match (after -m)",
        hint: Some("complete"),
    },
    Binding {
        scope: Scope::Commit,
        keys: &[code(KeyCode::Esc), k('q')],
        action: Action::ClosePopup,
        help: "close the checklist (a running step finishes first)",
        hint: Some("close"),
    },
    Binding {
        scope: Scope::Commit,
        keys: &[k('r')],
        action: Action::Rebase,
        help: "stage the same changes on the kernel's new rule set",
        hint: None,
    },
    Binding {
        scope: Scope::Commit,
        keys: &[code(KeyCode::Up), k('k')],
        action: Action::Up,
        help: "scroll up",
        hint: None,
    },
    Binding {
        scope: Scope::Commit,
        keys: &[code(KeyCode::Down), k('j')],
        action: Action::Down,
        help: "scroll down",
        hint: None,
    },
    Binding {
        scope: Scope::Countdown,
        keys: &[k('y'), code(KeyCode::Enter)],
        action: Action::KeepChange,
        help: "keep the change (confirm it)",
        hint: Some("keep"),
    },
    Binding {
        scope: Scope::Countdown,
        keys: &[k('+')],
        action: Action::Extend,
        help: "30 seconds more before the rollback",
        hint: Some("30 s more"),
    },
    Binding {
        scope: Scope::Countdown,
        keys: &[k('n')],
        action: Action::RollBack,
        help: "roll back now",
        hint: Some("roll back"),
    },
    Binding {
        scope: Scope::Jump,
        keys: &[code(KeyCode::Enter)],
        action: Action::Enter,
        help: "open the chain",
        hint: Some("open"),
    },
    Binding {
        scope: Scope::Jump,
        keys: &[code(KeyCode::Esc)],
        action: Action::CancelEdit,
        help: "close, staying where you were",
        hint: Some("cancel"),
    },
    Binding {
        scope: Scope::Jump,
        keys: &[code(KeyCode::Tab), code(KeyCode::Down)],
        action: Action::NextField,
        help: "the chain below",
        hint: None,
    },
    Binding {
        scope: Scope::Jump,
        keys: &[code(KeyCode::BackTab), code(KeyCode::Up)],
        action: Action::PrevField,
        help: "the chain above",
        hint: None,
    },
    Binding {
        scope: Scope::Jump,
        keys: &[code(KeyCode::Backspace)],
        action: Action::Back,
        help: "delete the last character",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[code(KeyCode::Tab)],
        action: Action::NextScreen,
        help: "next screen",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[code(KeyCode::BackTab)],
        action: Action::PrevScreen,
        help: "previous screen",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[k('?')],
        action: Action::Help,
        help: "this help",
        hint: Some("help"),
    },
    Binding {
        scope: Scope::Global,
        keys: &[k('!')],
        action: Action::ShowMessages,
        help: "every message so far, whole (a footer may cut one)",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[k(':'), ctrl('p')],
        action: Action::JumpChain,
        help: "jump to a chain by a fuzzy name (iptables and native)",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[k('W')],
        action: Action::WriteView,
        help: "write what the screen shows to a file (the footer says where)",
        hint: None,
    },
    Binding {
        scope: Scope::Rules,
        keys: &[k('r')],
        action: Action::Reach,
        help: "who can reach what: the matrix for this rule's protocol and port",
        hint: None,
    },
    Binding {
        scope: Scope::Reach,
        keys: &[code(KeyCode::Left), k('h')],
        action: Action::FocusLeft,
        help: "the destination class to the left",
        hint: None,
    },
    Binding {
        scope: Scope::Reach,
        keys: &[code(KeyCode::Right), k('l')],
        action: Action::FocusRight,
        help: "the destination class to the right",
        hint: None,
    },
    Binding {
        scope: Scope::Reach,
        keys: &[code(KeyCode::Enter), k('t')],
        action: Action::Enter,
        help: "trace the selected cell's packet (the rules that decide it)",
        hint: Some("trace"),
    },
    Binding {
        scope: Scope::Reach,
        keys: &[k('c')],
        action: Action::ReachChain,
        help: "ask about the next chain: INPUT, FORWARD, OUTPUT",
        hint: Some("chain"),
    },
    Binding {
        scope: Scope::Reach,
        keys: &[k('p')],
        action: Action::ReachNextPort,
        help: "ask about the next port the rules name",
        hint: Some("port"),
    },
    Binding {
        scope: Scope::Reach,
        keys: &[k('P')],
        action: Action::ReachPrevPort,
        help: "ask about the previous port the rules name",
        hint: None,
    },
    Binding {
        scope: Scope::Reach,
        keys: &[k('n')],
        action: Action::ReachNat,
        help: "nat table first or not (port forwards at their public address)",
        hint: Some("nat"),
    },
    Binding {
        scope: Scope::Reach,
        keys: &[k('f')],
        action: Action::OtherFamily,
        help: "the other family",
        hint: Some("family"),
    },
    Binding {
        scope: Scope::Reach,
        keys: &[k('y')],
        action: Action::Yank,
        help: "copy the answer as text (as nfscope reach prints it)",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[k('E')],
        action: Action::EventLog,
        help: "the conntrack event log: the last new, update and destroy events",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[k('q'), ctrl('c')],
        action: Action::Quit,
        help: "quit",
        hint: Some("quit"),
    },
    Binding {
        scope: Scope::Global,
        keys: &[k('1')],
        action: Action::ShowRules,
        help: "the Rules screen",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[k('2')],
        action: Action::ShowConntrack,
        help: "the Conntrack screen",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[k('3')],
        action: Action::ShowTrace,
        help: "the Trace screen",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[k('4')],
        action: Action::ShowFlow,
        help: "the Flow screen: the traversal diagram",
        hint: None,
    },
    Binding {
        scope: Scope::Global,
        keys: &[k('5'), k('C')],
        action: Action::ShowChanges,
        help: "the Changes screen: staged changes and their diff",
        hint: None,
    },
    Binding {
        scope: Scope::Flow,
        keys: &[code(KeyCode::Left), k('h')],
        action: Action::FocusLeft,
        help: "the hook to the left",
        hint: None,
    },
    Binding {
        scope: Scope::Flow,
        keys: &[code(KeyCode::Right), k('l')],
        action: Action::FocusRight,
        help: "the hook to the right",
        hint: None,
    },
    Binding {
        scope: Scope::Flow,
        keys: &[code(KeyCode::Up), k('k')],
        action: Action::Up,
        help: "the table above",
        hint: None,
    },
    Binding {
        scope: Scope::Flow,
        keys: &[code(KeyCode::Down), k('j')],
        action: Action::Down,
        help: "the table below",
        hint: None,
    },
    Binding {
        scope: Scope::Flow,
        keys: &[code(KeyCode::Enter)],
        action: Action::Enter,
        help: "open the chain on the Rules screen (Backspace there comes back)",
        hint: Some("open chain"),
    },
    Binding {
        scope: Scope::Flow,
        keys: &[k('f')],
        action: Action::OtherFamily,
        help: "show the other family (IPv4, IPv6)",
        hint: Some("IPv4/IPv6"),
    },
];

/// The table in effect: `KEYMAP` with the config file's `[keys]` overrides, once `install`ed
/// at start-up; `KEYMAP` itself until then (and in tests).
static INSTALLED: OnceLock<Vec<Binding>> = OnceLock::new();

/// The keymap in effect: dispatch, the footer hints and the help all read this.
pub fn bindings() -> &'static [Binding] {
    INSTALLED.get().map_or(KEYMAP, Vec::as_slice)
}

/// Make `overrides` (from the config file's `[keys]`) the keymap in effect, once, before the UI
/// starts. The same checks as `overridden`.
pub fn install(overrides: &[(Action, Vec<Key>)]) -> Result<(), String> {
    if overrides.is_empty() {
        return Ok(());
    }
    let table = overridden(overrides).map_err(|e| e.message)?;
    INSTALLED
        .set(table)
        .map_err(|_| "the keymap was installed twice".to_string())
}

/// Why a set of key overrides was refused, and the override to blame (for the config file's
/// line number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideError {
    pub action: Action,
    pub message: String,
}

/// The screens' scopes: each is looked at before `Global`, so a key bound on one of them hides
/// the global key everywhere on that screen.
const SCREENS: &[Scope] = &[
    Scope::Rules,
    Scope::Conntrack,
    Scope::Trace,
    Scope::Flow,
    Scope::Changes,
];

/// `KEYMAP` with each overridden action's keys replaced by the given ones, in every scope
/// where the action is bound (an empty list unbinds it). Refused: Ctrl-C for anything but
/// quit (it always quits), and a key an override makes ambiguous: bound twice in one scope,
/// or bound on a screen and globally (the screen's would hide the global one there). The
/// override key lists are leaked: this runs once at start-up.
pub fn overridden(overrides: &[(Action, Vec<Key>)]) -> Result<Vec<Binding>, OverrideError> {
    let mut table = KEYMAP.to_vec();
    for (action, keys) in overrides {
        let action = *action;
        if !KEYMAP.iter().any(|b| b.action == action) {
            return Err(OverrideError {
                action,
                message: format!("{} has no keys to replace", action.name()),
            });
        }
        let mut uniq: Vec<Key> = Vec::with_capacity(keys.len());
        for key in keys {
            if *key == ctrl('c') && action != Action::Quit {
                return Err(OverrideError {
                    action,
                    message: format!(
                        "ctrl-c cannot be bound to {}: it always quits",
                        action.name()
                    ),
                });
            }
            if !uniq.contains(key) {
                uniq.push(*key);
            }
        }
        let keys: &'static [Key] = Box::leak(uniq.into_boxed_slice());
        for b in table.iter_mut().filter(|b| b.action == action) {
            b.keys = keys;
        }
    }
    let changed = |b: &Binding| overrides.iter().any(|(a, _)| *a == b.action);
    for (i, a) in table.iter().enumerate() {
        for b in &table[i + 1..] {
            if !(changed(a) || changed(b)) || a.action == b.action {
                continue;
            }
            let shadow = (a.scope == Scope::Global && SCREENS.contains(&b.scope))
                || (b.scope == Scope::Global && SCREENS.contains(&a.scope));
            if a.scope != b.scope && !shadow {
                continue;
            }
            let Some(key) = a.keys.iter().find(|k| b.keys.contains(k)) else {
                continue;
            };
            let blame = if changed(a) { a.action } else { b.action };
            let message = if a.scope == b.scope {
                format!(
                    "{} would be bound to both {} and {} ({}): give one of them another key",
                    key_spec(key),
                    a.action.name(),
                    b.action.name(),
                    a.scope.title()
                )
            } else {
                let (global, screen) = if a.scope == Scope::Global {
                    (a, b)
                } else {
                    (b, a)
                };
                format!(
                    "{} would be both {} (everywhere) and {} ({}, which sees it first): give one of them another key",
                    key_spec(key),
                    global.action.name(),
                    screen.action.name(),
                    screen.scope.title()
                )
            };
            return Err(OverrideError {
                action: blame,
                message,
            });
        }
    }
    Ok(table)
}

/// The action called `name` in the config file, among those the keymap binds.
pub fn action_named(name: &str) -> Result<Action, String> {
    let names = action_names();
    if let Some(a) = KEYMAP.iter().map(|b| b.action).find(|a| a.name() == name) {
        return Ok(a);
    }
    // Names holding what was typed (or held in it) first, else the few within a typo or two.
    let holds = |n: &str| n.contains(name) || (name.len() >= 3 && name.contains(n));
    let mut close: Vec<(usize, &str)> = if names.iter().any(|n| holds(n)) {
        names
            .iter()
            .filter(|n| holds(n))
            .map(|n| (n.len(), *n))
            .collect()
    } else {
        names
            .iter()
            .map(|n| (distance(name, n), *n))
            .filter(|(d, _)| *d <= (name.chars().count() / 3).max(2))
            .collect()
    };
    close.sort();
    let close: Vec<&str> = close.into_iter().take(4).map(|(_, n)| n).collect();
    Err(if close.is_empty() {
        format!("there is no action {name:?} (`nfscope config --print-default` lists them all)")
    } else {
        format!(
            "there is no action {name:?}; did you mean {}? (`nfscope config --print-default` lists them all)",
            close.join(", ")
        )
    })
}

/// Every action the keymap binds, by name, in the table's order.
pub fn action_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for b in KEYMAP {
        if !names.contains(&b.action.name()) {
            names.push(b.action.name());
        }
    }
    names
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The named keys of the config file's key syntax (lower case), with their codes.
const KEY_NAMES: &[(&str, KeyCode)] = &[
    ("enter", KeyCode::Enter),
    ("return", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("escape", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("shift-tab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("bksp", KeyCode::Backspace),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("pgup", KeyCode::PageUp),
    ("pageup", KeyCode::PageUp),
    ("pgdn", KeyCode::PageDown),
    ("pagedown", KeyCode::PageDown),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("del", KeyCode::Delete),
    ("delete", KeyCode::Delete),
    ("ins", KeyCode::Insert),
    ("insert", KeyCode::Insert),
    ("space", KeyCode::Char(' ')),
];

/// A key as the config file writes it: one character (`x`, `G`, `:`), `ctrl-x`, `alt-x`
/// (`ctrl-alt-x` too), or a name (`enter`, `esc`, `tab`, `backtab`, `backspace`, `up`,
/// `down`, `left`, `right`, `pgup`, `pgdn`, `home`, `end`, `del`, `ins`, `space`, `f1` to
/// `f12`), modifiers and names in any case.
pub fn parse_key(spec: &str) -> Result<Key, String> {
    let bad = || {
        format!(
            "{spec:?} is not a key: write one character (\"x\", \"G\", \":\"), ctrl-x, alt-x, or a name \
             (enter, esc, tab, backtab, backspace, up, down, left, right, pgup, pgdn, home, end, del, space, f1 to f12)"
        )
    };
    let (mut ctrl, mut alt) = (false, false);
    let mut rest = spec;
    loop {
        // The prefixes are ASCII: a lower-cased copy has the same byte offsets.
        let lower = rest.to_ascii_lowercase();
        if !ctrl && lower.starts_with("ctrl-") && rest.len() > 5 {
            ctrl = true;
            rest = &rest[5..];
        } else if !alt && lower.starts_with("alt-") && rest.len() > 4 {
            alt = true;
            rest = &rest[4..];
        } else {
            break;
        }
    }
    let mut chars = rest.chars();
    let code = match (chars.next(), chars.next()) {
        (Some(c), None) if !c.is_control() => {
            // Terminals send Ctrl with a letter as the lower-case letter.
            KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c })
        }
        (Some(_), Some(_)) => {
            let lower = rest.to_ascii_lowercase();
            if let Some((_, code)) = KEY_NAMES.iter().find(|(n, _)| *n == lower) {
                *code
            } else if let Some(n) = lower
                .strip_prefix('f')
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| (1..=12).contains(n))
            {
                KeyCode::F(n)
            } else {
                return Err(bad());
            }
        }
        _ => return Err(bad()),
    };
    Ok(Key { code, ctrl, alt })
}

/// How the config file writes `key` (what `parse_key` reads back).
pub fn key_spec(key: &Key) -> String {
    let base = match key.code {
        KeyCode::Char(' ') => "space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("f{n}"),
        code => KEY_NAMES.iter().find(|(_, c)| *c == code).map_or_else(
            || format!("{code:?}").to_lowercase(),
            |(n, _)| n.to_string(),
        ),
    };
    format!(
        "{}{}{base}",
        if key.ctrl { "ctrl-" } else { "" },
        if key.alt { "alt-" } else { "" }
    )
}

fn key_matches(key: &Key, ev: &KeyEvent) -> bool {
    let is_ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    if key.ctrl != is_ctrl || key.alt != ev.modifiers.contains(KeyModifiers::ALT) {
        return false;
    }
    match (key.code, ev.code) {
        // Terminals report shifted letters with or without SHIFT; compare the character.
        (KeyCode::Char(a), KeyCode::Char(b)) => a == b,
        (a, b) => a == b,
    }
}

/// Resolve a key press, looking at the scopes in the order given (first match wins).
pub fn resolve(ev: &KeyEvent, scopes: &[Scope]) -> Option<Action> {
    resolve_in(bindings(), ev, scopes)
}

/// `resolve` in the given table.
fn resolve_in(table: &[Binding], ev: &KeyEvent, scopes: &[Scope]) -> Option<Action> {
    // Ctrl-C always quits, whatever has the focus.
    if ev.modifiers.contains(KeyModifiers::CONTROL) && ev.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    scopes.iter().find_map(|scope| {
        table
            .iter()
            .filter(|b| b.scope == *scope)
            .find(|b| b.keys.iter().any(|key| key_matches(key, ev)))
            .map(|b| b.action)
    })
}

/// How a key is written in help and hints.
pub fn key_label(key: &Key) -> String {
    let base = match key.code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "S-Tab".into(),
        KeyCode::Backspace => "Bksp".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        KeyCode::Delete => "Del".into(),
        KeyCode::Insert => "Ins".into(),
        KeyCode::F(n) => format!("F{n}"),
        other => format!("{other:?}"),
    };
    format!(
        "{}{}{base}",
        if key.ctrl { "Ctrl-" } else { "" },
        if key.alt { "Alt-" } else { "" }
    )
}

/// The hints a narrow footer keeps before any other: what the screen is for (commit on the
/// Changes screen, answering a question, the countdown), help and quit.
pub const PRIMARY: &[&str] = &[
    "commit",
    "yes",
    "no",
    "keep",
    "roll back",
    "save",
    "cancel",
    "help",
    "quit",
];

/// The footer hints of edit mode's staging keys, left out where nothing can be staged (a
/// native nftables chain, read-only).
pub const STAGING_HINTS: &[&str] = &["add"];

/// The footer's hints for the given scopes: `(keys, what)` pairs. An action the config file
/// unbound (`[]`) has none.
pub fn hints(scopes: &[Scope]) -> Vec<(String, &'static str)> {
    bindings()
        .iter()
        .filter(|b| scopes.contains(&b.scope))
        .filter_map(|b| Some((key_label(b.keys.first()?), b.hint?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn popups_see_keys_first() {
        let q = press(KeyCode::Char('q'));
        assert_eq!(
            resolve(&q, &[Scope::Popup, Scope::Global]),
            Some(Action::ClosePopup)
        );
        assert_eq!(
            resolve(&q, &[Scope::Rules, Scope::Global]),
            Some(Action::Quit)
        );
    }

    #[test]
    fn ctrl_c_always_quits() {
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(resolve(&c, &[Scope::Popup]), Some(Action::Quit));
        assert_eq!(
            resolve(&press(KeyCode::Char('c')), &[Scope::Rules, Scope::Global]),
            None
        );
    }

    #[test]
    fn shifted_letters() {
        let g = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(resolve(&g, &[Scope::Rules]), Some(Action::Bottom));
    }

    #[test]
    fn a_confirmation_lets_only_its_answers_through() {
        let scopes = [Scope::Confirm];
        assert_eq!(
            resolve(&press(KeyCode::Char('y')), &scopes),
            Some(Action::Confirm)
        );
        assert_eq!(resolve(&press(KeyCode::Esc), &scopes), Some(Action::Cancel));
        assert_eq!(resolve(&press(KeyCode::Char('x')), &scopes), None);
        // d is only the resume question's "discard them" (it asks again); other questions
        // stay open on it.
        assert_eq!(
            resolve(&press(KeyCode::Char('d')), &scopes),
            Some(Action::DiscardSaved)
        );
        let d = KeyEvent::new(KeyCode::Char('D'), KeyModifiers::SHIFT);
        assert_eq!(
            resolve(&d, &[Scope::Conntrack, Scope::Global]),
            Some(Action::DeleteMatching)
        );
    }

    #[test]
    fn no_key_is_bound_twice_in_one_scope() {
        for (i, a) in KEYMAP.iter().enumerate() {
            for b in &KEYMAP[i + 1..] {
                if a.scope == b.scope {
                    for ka in a.keys {
                        assert!(
                            !b.keys.contains(ka),
                            "{:?} bound twice in {:?}",
                            ka,
                            a.scope
                        );
                    }
                }
            }
        }
    }

    fn ov(name: &str, keys: &[&str]) -> (Action, Vec<Key>) {
        (
            action_named(name).unwrap(),
            keys.iter().map(|k| parse_key(k).unwrap()).collect(),
        )
    }

    #[test]
    fn action_names_are_the_variants_in_snake_case_and_unique() {
        let names = action_names();
        for b in KEYMAP {
            let debug = format!("{:?}", b.action);
            let mut snake = String::new();
            for (i, c) in debug.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            assert_eq!(b.action.name(), snake);
            assert_eq!(action_named(&snake), Ok(b.action));
        }
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }

    #[test]
    fn unknown_actions_suggest_close_names() {
        let err = action_named("qiut").unwrap_err();
        assert!(err.contains("did you mean quit"), "{err}");
        let err = action_named("jump").unwrap_err();
        assert!(err.contains("jump_chain"), "{err}");
        assert!(action_named("zzzzzzzzzzzz").is_err());
    }

    #[test]
    fn key_specs() {
        assert_eq!(parse_key("x"), Ok(k('x')));
        assert_eq!(parse_key("G"), Ok(k('G')));
        assert_eq!(parse_key("-"), Ok(k('-')));
        assert_eq!(parse_key(":"), Ok(k(':')));
        assert_eq!(parse_key("ctrl-p"), Ok(ctrl('p')));
        assert_eq!(parse_key("Ctrl-P"), Ok(ctrl('p')));
        assert_eq!(parse_key("alt-up"), Ok(alt(KeyCode::Up)));
        assert_eq!(parse_key("ALT-x"), Ok(alt(KeyCode::Char('x'))));
        assert_eq!(
            parse_key("ctrl-alt-x"),
            Ok(Key {
                code: KeyCode::Char('x'),
                ctrl: true,
                alt: true
            })
        );
        assert_eq!(parse_key("Enter"), Ok(code(KeyCode::Enter)));
        assert_eq!(parse_key("space"), Ok(k(' ')));
        assert_eq!(parse_key("pgdn"), Ok(code(KeyCode::PageDown)));
        assert_eq!(parse_key("backtab"), Ok(code(KeyCode::BackTab)));
        assert_eq!(parse_key("F12"), Ok(code(KeyCode::F(12))));
        for bad in [
            "",
            "f13",
            "f0",
            "ctrl-",
            "ctrl-enterx",
            "xy",
            "\t",
            "\u{7}",
            "hyper-x",
        ] {
            let err = parse_key(bad).unwrap_err();
            assert!(err.contains("is not a key"), "{bad:?}: {err}");
        }
        // What the help shows, and what the config file writes, read back the same.
        for b in KEYMAP {
            for key in b.keys {
                assert_eq!(parse_key(&key_spec(key)), Ok(*key), "{key:?}");
            }
        }
        assert_eq!(key_label(&code(KeyCode::F(5))), "F5");
    }

    #[test]
    fn an_override_replaces_the_keys_in_every_scope() {
        let table = overridden(&[ov("quit", &["x"]), ov("exact_numbers", &["#"])]).unwrap();
        let x = press(KeyCode::Char('x'));
        let q = press(KeyCode::Char('q'));
        let hash = press(KeyCode::Char('#'));
        let rules = [Scope::Rules, Scope::Global];
        assert_eq!(resolve_in(&table, &x, &rules), Some(Action::Quit));
        assert_eq!(resolve_in(&table, &q, &rules), None);
        assert_eq!(
            resolve_in(&table, &hash, &rules),
            Some(Action::ExactNumbers)
        );
        let ct = [Scope::Conntrack, Scope::Global];
        assert_eq!(resolve_in(&table, &hash, &ct), Some(Action::ExactNumbers));
        // Popups keep their own q, and Ctrl-C still quits.
        assert_eq!(
            resolve_in(&table, &q, &[Scope::Popup, Scope::Global]),
            Some(Action::ClosePopup)
        );
        let c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(resolve_in(&table, &c, &rules), Some(Action::Quit));
        // The rest of the table is untouched, in its order.
        assert_eq!(table.len(), KEYMAP.len());
        for (a, b) in table.iter().zip(KEYMAP) {
            assert_eq!((a.scope, a.action, a.help), (b.scope, b.action, b.help));
            if ![Action::Quit, Action::ExactNumbers].contains(&a.action) {
                assert_eq!(a.keys, b.keys);
            }
        }
    }

    #[test]
    fn an_override_that_makes_a_key_ambiguous_is_refused() {
        // j is already "down" on the Rules screen.
        let err = overridden(&[ov("up", &["up", "j"])]).unwrap_err();
        assert_eq!(err.action, Action::Up);
        assert!(
            err.message.contains("up") && err.message.contains("down"),
            "{}",
            err.message
        );
        // x is exact_numbers on the Rules screen, which is looked at before the global quit.
        let err = overridden(&[ov("quit", &["x"])]).unwrap_err();
        assert_eq!(err.action, Action::Quit);
        assert!(
            err.message.contains("quit") && err.message.contains("exact_numbers"),
            "{}",
            err.message
        );
        // Swapping two keys is fine.
        overridden(&[ov("undo", &["U"]), ov("insert_rule", &["u"])]).unwrap();
        overridden(&[ov("up", &["j"]), ov("down", &["k"])]).unwrap();
        let err = overridden(&[ov("help", &["ctrl-c"])]).unwrap_err();
        assert!(err.message.contains("always quits"), "{}", err.message);
        overridden(&[ov("quit", &["q", "ctrl-c", "ctrl-q"])]).unwrap();
    }

    #[test]
    fn an_empty_list_unbinds() {
        let table = overridden(&[ov("help", &[])]).unwrap();
        let help = press(KeyCode::Char('?'));
        assert_eq!(resolve_in(&table, &help, &[Scope::Global]), None);
    }

    #[test]
    fn no_screen_key_hides_a_global_key() {
        for g in KEYMAP.iter().filter(|b| b.scope == Scope::Global) {
            for s in KEYMAP.iter().filter(|b| SCREENS.contains(&b.scope)) {
                for key in g.keys {
                    assert!(
                        !s.keys.contains(key),
                        "{key:?} is {:?} everywhere and {:?} on {:?}",
                        g.action,
                        s.action,
                        s.scope
                    );
                }
            }
        }
    }

    #[test]
    fn without_overrides_the_table_is_keymap() {
        assert!(install(&[]).is_ok());
        assert_eq!(bindings().len(), KEYMAP.len());
    }
}
