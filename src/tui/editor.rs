//! The one-line editors of edit mode: a rule in iptables syntax (what follows `-A CHAIN`), a
//! chain name, or the word that confirms a commit the lockout check warned about. Built on
//! ratatui-textarea; checked as the user types with nfscope's own parser, and completed with
//! Tab from the chains of the table and the matches and targets the kernel knows. Pure: the
//! lists of known modules come in from the loop.

use crate::ruleset::{Rule, words};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Modifier, Style};
use ratatui_textarea::{CursorMove, Input, Key, TextArea};

/// What the editor is for, and what saving it stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// A rule appended at the chain's end.
    Append,
    /// A rule inserted at `pos` (1-based), above the rule that was selected.
    Insert { pos: usize },
    /// The rule at `pos` (1-based) replaced.
    Replace { pos: usize },
    /// The name of a new user chain.
    NewChain,
    /// A new name for the selected chain.
    RenameChain,
    /// The word a user must type to commit a change the lockout check warned about.
    Lockout,
}

impl Purpose {
    pub fn is_rule(&self) -> bool {
        matches!(
            self,
            Purpose::Append | Purpose::Insert { .. } | Purpose::Replace { .. }
        )
    }
}

/// The word that confirms a commit despite the lockout warning.
pub const LOCKOUT_WORD: &str = "lockout";

/// Matches and targets the kernel knows, for completion (from `/proc/net/ip*_tables_*`, or a
/// fixed list for the demo and files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub matches: Vec<String>,
    pub targets: Vec<String>,
}

/// The verdicts every table knows; `/proc` does not list them.
const VERDICTS: [&str; 4] = ["ACCEPT", "DROP", "RETURN", "QUEUE"];

impl Known {
    /// The modules a stock kernel loads for common firewalls: what the demo offers.
    pub fn fixed() -> Known {
        let m = [
            "addrtype",
            "comment",
            "conntrack",
            "connlimit",
            "hashlimit",
            "icmp",
            "icmp6",
            "iprange",
            "limit",
            "mac",
            "mark",
            "multiport",
            "owner",
            "physdev",
            "pkttype",
            "recent",
            "set",
            "state",
            "tcp",
            "udp",
        ];
        let t = [
            "CONNMARK",
            "CT",
            "DNAT",
            "LOG",
            "MARK",
            "MASQUERADE",
            "NFLOG",
            "NFQUEUE",
            "NOTRACK",
            "REDIRECT",
            "REJECT",
            "SNAT",
            "TCPMSS",
        ];
        Known {
            matches: m.iter().map(|s| s.to_string()).collect(),
            targets: t.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Read from the texts of `/proc/net/ip_tables_matches`, `_targets` and the ip6 files (one
    /// name per line, repeated per revision); names are merged, sorted, without duplicates.
    pub fn from_proc(matches: &[String], targets: &[String]) -> Known {
        let names = |texts: &[String]| {
            let mut v: Vec<String> = texts
                .iter()
                .flat_map(|t| t.lines())
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            v.sort();
            v.dedup();
            v
        };
        Known {
            matches: names(matches),
            targets: names(targets),
        }
    }
}

/// The editor's state (owned by its popup, `Popup::Editor`).
#[derive(Debug, Clone)]
pub struct Editor {
    pub purpose: Purpose,
    /// `IPv4 filter/INPUT` and what saving does, for the title.
    pub title: String,
    pub area: TextArea<'static>,
    /// What the parser says is wrong with the text as it is (a sentence), if anything.
    pub problem: Option<String>,
    /// A remark that does not stop saving (e.g. a target nfscope does not know).
    pub note: Option<String>,
    /// `iptables-restore --test` refused the staged table with this text: the tool's words.
    pub refused: Option<String>,
    /// The validation request in flight, if any (its id).
    pub checking: Option<u64>,
    /// Candidates of the last Tab that did not decide.
    pub candidates: Vec<String>,
    /// Chains of the table being edited (completion after `-j`/`-g`, and the checks).
    pub chains: Vec<String>,
}

/// Options that take a value: a rule that ends in one is missing it.
const TAKES_VALUE: [&str; 20] = [
    "-p",
    "--protocol",
    "-s",
    "--source",
    "--src",
    "-d",
    "--destination",
    "--dst",
    "-i",
    "--in-interface",
    "-o",
    "--out-interface",
    "-m",
    "--match",
    "-j",
    "--jump",
    "-g",
    "--goto",
    "--dport",
    "--sport",
];

/// Two editors are the same when they show the same: the text area by its text and cursor.
impl PartialEq for Editor {
    fn eq(&self, o: &Editor) -> bool {
        self.purpose == o.purpose
            && self.title == o.title
            && self.area.lines() == o.area.lines()
            && self.area.cursor() == o.area.cursor()
            && self.problem == o.problem
            && self.note == o.note
            && self.refused == o.refused
            && self.checking == o.checking
            && self.candidates == o.candidates
            && self.chains == o.chains
    }
}

impl Eq for Editor {}

impl Editor {
    pub fn new(purpose: Purpose, title: String, text: &str, chains: Vec<String>) -> Editor {
        let mut area = TextArea::new(vec![text.to_string()]);
        area.set_cursor_line_style(Style::new());
        area.set_cursor_style(Style::new().add_modifier(Modifier::REVERSED));
        area.move_cursor(CursorMove::End);
        let mut e = Editor {
            purpose,
            title,
            area,
            problem: None,
            note: None,
            refused: None,
            checking: None,
            candidates: Vec::new(),
            chains,
        };
        e.check();
        e
    }

    /// The text as typed (one line).
    pub fn text(&self) -> String {
        self.area.lines().first().cloned().unwrap_or_default()
    }

    /// Feed a key that is not Enter, Esc or Tab. Returns whether the text changed.
    pub fn key(&mut self, ev: KeyEvent) -> bool {
        // One line: a pasted or typed newline (or another control character) never splits it.
        let newline = match ev.code {
            KeyCode::Enter => true,
            KeyCode::Char(c) => c.is_control() || c == 'm' && ctrl(&ev),
            _ => false,
        };
        if newline {
            return false;
        }
        let input = to_input(ev);
        let changed = self.area.input(input);
        if changed {
            self.candidates.clear();
            self.refused = None;
            self.check();
        }
        changed
    }

    /// Check the text as it is now, setting `problem` and `note`.
    pub fn check(&mut self) {
        let text = self.text();
        self.problem = None;
        self.note = None;
        match &self.purpose {
            Purpose::NewChain | Purpose::RenameChain => {
                self.problem = chain_name_problem(text.trim());
            }
            Purpose::Lockout => {
                let t = text.trim();
                if t.is_empty() {
                    self.note = Some(format!(
                        "the commit goes on only once you type {LOCKOUT_WORD}"
                    ));
                } else if t != LOCKOUT_WORD {
                    self.problem = Some(format!("that is not the word {LOCKOUT_WORD}"));
                }
            }
            _ => {
                let (problem, note) = rule_problem(&text, &self.chains);
                self.problem = problem;
                self.note = note;
            }
        }
    }

    /// Tab: complete the word before the cursor after `-j`/`-g` (targets and chains) or `-m`
    /// (matches). One candidate: completed with a space after it; several: their common part,
    /// and the list shown.
    pub fn complete(&mut self, known: &Known) -> bool {
        let text = self.text();
        let col = self.area.cursor().1;
        let before: String = text.chars().take(col).collect();
        let (prev, prefix) = last_two_words(&before);
        let pool: Vec<String> = match prev.as_deref() {
            Some("-j" | "--jump" | "-g" | "--goto") => {
                let mut v: Vec<String> = VERDICTS.iter().map(|s| s.to_string()).collect();
                v.extend(known.targets.iter().cloned());
                v.extend(self.chains.iter().cloned());
                v
            }
            Some("-m" | "--match") => known.matches.clone(),
            _ => {
                self.candidates.clear();
                return false;
            }
        };
        let mut hits: Vec<String> = pool
            .into_iter()
            .filter(|c| c.starts_with(prefix.as_str()))
            .collect();
        hits.sort();
        hits.dedup();
        match hits.len() {
            0 => {
                self.candidates.clear();
                false
            }
            1 => {
                let rest = &hits[0][prefix.len()..];
                // One space after the word: none added when one is there already (Tab on a
                // completed word, or in the middle of the text), the cursor then steps over it.
                let spaced = text.chars().nth(col).is_some_and(char::is_whitespace);
                if spaced {
                    self.area.insert_str(rest);
                    self.area.move_cursor(ratatui_textarea::CursorMove::Forward);
                } else {
                    self.area.insert_str(format!("{rest} "));
                }
                self.candidates.clear();
                self.check();
                true
            }
            _ => {
                let common = common_prefix(&hits);
                let grew = common.len() > prefix.len();
                if grew {
                    self.area.insert_str(&common[prefix.len()..]);
                    self.check();
                }
                self.candidates = hits;
                grew
            }
        }
    }
}

fn ctrl(ev: &KeyEvent) -> bool {
    ev.modifiers.contains(KeyModifiers::CONTROL)
}

/// A crossterm key as the text area's input.
fn to_input(ev: KeyEvent) -> Input {
    let key = match ev.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Delete => Key::Delete,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::F(n) => Key::F(n),
        _ => Key::Null,
    };
    Input {
        key,
        ctrl: ctrl(&ev),
        alt: ev.modifiers.contains(KeyModifiers::ALT),
        shift: ev.modifiers.contains(KeyModifiers::SHIFT),
    }
}

/// The word before the last one (if any) and the last, possibly empty, word of `before`.
fn last_two_words(before: &str) -> (Option<String>, String) {
    let ends_blank = before.is_empty() || before.ends_with(char::is_whitespace);
    let words: Vec<&str> = before.split_whitespace().collect();
    if ends_blank {
        (words.last().map(|s| s.to_string()), String::new())
    } else {
        let n = words.len();
        let prev = n.checked_sub(2).map(|i| words[i].to_string());
        (prev, words.last().map_or(String::new(), |s| s.to_string()))
    }
}

fn common_prefix(items: &[String]) -> String {
    let Some(first) = items.first() else {
        return String::new();
    };
    let mut n = first.len();
    for s in &items[1..] {
        n = n.min(
            first
                .char_indices()
                .zip(s.chars())
                .take_while(|((_, a), b)| a == b)
                .map(|((i, a), _)| i + a.len_utf8())
                .last()
                .unwrap_or(0),
        );
    }
    first[..n].to_string()
}

/// What is wrong with a chain name for iptables (`-N`), if anything.
pub fn chain_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("type the chain's name".into());
    }
    // The kernel's limit is in bytes (XT_EXTENSION_MAXNAMELEN less the NUL).
    if name.len() > 28 {
        return Some(format!(
            "a chain name has at most 28 bytes; this one has {}",
            name.len()
        ));
    }
    if name.starts_with('-') || name.starts_with('!') {
        return Some("a chain name cannot start with - or !".into());
    }
    if name.chars().any(char::is_whitespace) {
        return Some("a chain name cannot contain blanks".into());
    }
    if crate::ruleset::is_standard_target(name) {
        return Some(format!("{name} is a verdict, not a chain name"));
    }
    None
}

/// What stops a rule text from being staged (a sentence), and a remark that does not.
pub fn rule_problem(text: &str, chains: &[String]) -> (Option<String>, Option<String>) {
    let toks = match words::split(text) {
        Ok(t) => t,
        Err(e) => return (Some(e), None),
    };
    if let Some(last) = toks.last()
        && !last.quoted
        && TAKES_VALUE.contains(&last.text.as_str())
    {
        return (Some(format!("{} needs a value after it", last.text)), None);
    }
    for pair in toks.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if !a.quoted
            && TAKES_VALUE.contains(&a.text.as_str())
            && !b.quoted
            && b.text.starts_with('-')
            && b.text.len() > 1
        {
            return (
                Some(format!(
                    "{} needs a value, but {} follows it",
                    a.text, b.text
                )),
                None,
            );
        }
    }
    // Short options are iptables' own; long ones belong to the modules, which the tool checks.
    const SHORT: [&str; 12] = [
        "-p", "-s", "-d", "-i", "-o", "-j", "-g", "-m", "-f", "-c", "-4", "-6",
    ];
    for (i, w) in toks.iter().enumerate() {
        let t = w.text.as_str();
        let after_long = i > 0 && toks[i - 1].text.starts_with("--");
        if !w.quoted
            && !after_long
            && t.starts_with('-')
            && !t.starts_with("--")
            && t.chars().nth(1).is_some_and(|c| c.is_ascii_alphabetic())
            && !SHORT.contains(&t)
        {
            return (
                Some(format!(
                    "{t} is not an iptables option (a target goes after -j)"
                )),
                None,
            );
        }
    }
    let rule = match Rule::from_text(text, None) {
        Ok(r) => r,
        Err(e) => return (Some(e), None),
    };
    let note = if toks.is_empty() {
        Some("an empty rule matches every packet and only counts it".into())
    } else if rule.spec.target.is_none() {
        Some("no -j: the rule only counts the packets it matches".into())
    } else if let Some(t) = &rule.spec.target {
        let name = t.name.as_str();
        let known = crate::ruleset::is_standard_target(name)
            || chains.iter().any(|c| c == name)
            || name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if known {
            None
        } else {
            Some(format!(
                "{name} is not a chain of this table: iptables-restore checks it on save"
            ))
        }
    } else {
        None
    };
    (None, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed(text: &str) -> Editor {
        Editor::new(
            Purpose::Append,
            String::new(),
            text,
            vec!["INPUT".into(), "IN_SSH".into()],
        )
    }

    fn press(e: &mut Editor, c: KeyCode) {
        e.key(KeyEvent::new(c, KeyModifiers::NONE));
    }

    #[test]
    fn an_open_quote_and_a_missing_value_are_sentences() {
        assert!(
            ed("-m comment --comment \"ssh")
                .problem
                .is_some_and(|p| p.contains("quote"))
        );
        assert_eq!(
            ed("-p tcp -j").problem.as_deref(),
            Some("-j needs a value after it")
        );
        assert!(
            ed("-s -j ACCEPT")
                .problem
                .is_some_and(|p| p.contains("-s needs a value"))
        );
        assert_eq!(ed("-p tcp --dport 22 -j ACCEPT").problem, None);
        assert!(
            ed("-m conntrack --ctstate INVALID -REJECT")
                .problem
                .is_some_and(|p| p.contains("-REJECT is not an iptables option"))
        );
        assert_eq!(ed("! -s 10.0.0.0/8 -f -j DROP").problem, None);
    }

    #[test]
    fn typing_rechecks() {
        let mut e = ed("-j");
        assert!(e.problem.is_some());
        for c in " DROP".chars() {
            press(&mut e, KeyCode::Char(c));
        }
        assert_eq!(e.text(), "-j DROP");
        assert_eq!(e.problem, None);
        press(&mut e, KeyCode::Enter);
        assert_eq!(e.area.lines().len(), 1, "one line only");
    }

    #[test]
    fn tab_completes_targets_chains_and_matches() {
        let known = Known::fixed();
        let mut e = ed("-p tcp -j IN_");
        assert!(e.complete(&known));
        assert_eq!(e.text(), "-p tcp -j IN_SSH ");
        let mut e = ed("-m conn");
        e.complete(&known);
        assert_eq!(e.text(), "-m conn", "two candidates share only conn");
        assert_eq!(e.candidates, vec!["connlimit", "conntrack"]);
        let mut e = ed("-m mult");
        e.complete(&known);
        assert_eq!(e.text(), "-m multiport ");
        let mut e = ed("-p tc");
        assert!(!e.complete(&known), "no completion outside -j/-g/-m");
    }

    #[test]
    fn completion_in_the_middle_leaves_one_space() {
        let known = Known::fixed();
        let mut e = ed("-p tcp -j IN_ -m comment");
        e.area
            .move_cursor(ratatui_textarea::CursorMove::Jump(0, 13));
        assert!(e.complete(&known));
        assert_eq!(e.text(), "-p tcp -j IN_SSH -m comment");
        // The cursor stepped over the space, onto the next word.
        assert_eq!(e.area.cursor(), (0, 17));
    }

    #[test]
    fn proc_lists_are_merged() {
        let k = Known::from_proc(
            &["tcp\nudp\ntcp\n".into(), "icmp6\n".into()],
            &["LOG\nREJECT\n".into()],
        );
        assert_eq!(k.matches, vec!["icmp6", "tcp", "udp"]);
        assert_eq!(k.targets, vec!["LOG", "REJECT"]);
    }

    proptest::proptest! {
        /// Whatever is typed or pasted, the checks and the completion answer without panicking,
        /// and the text stays one line.
        #[test]
        fn any_text_is_checked_and_completed(
            text in "(\\PC|[\"'\\\\ -]){0,40}",
            keys in proptest::collection::vec(proptest::char::any(), 0..12),
        ) {
            let known = Known::fixed();
            for purpose in [Purpose::Append, Purpose::NewChain, Purpose::Lockout] {
                let mut e = Editor::new(purpose, String::new(), &text, vec!["IN_SSH".into()]);
                for c in &keys {
                    e.key(KeyEvent::new(KeyCode::Char(*c), KeyModifiers::NONE));
                    e.complete(&known);
                }
                e.key(KeyEvent::new(KeyCode::Home, KeyModifiers::NONE));
                e.complete(&known);
                proptest::prop_assert_eq!(e.area.lines().len(), 1);
            }
        }
    }

    #[test]
    fn every_rule_of_the_demo_passes_the_checks() {
        for rs in crate::source::demo::DemoWorld::new().rulesets() {
            for t in &rs.tables {
                let chains: Vec<String> = t.chains.iter().map(|c| c.name.clone()).collect();
                for r in t.chains.iter().flat_map(|c| &c.rules) {
                    assert_eq!(rule_problem(&r.text, &chains).0, None, "{}", r.text);
                }
            }
        }
    }

    #[test]
    fn chain_names() {
        assert_eq!(chain_name_problem("WEB"), None);
        assert!(chain_name_problem("ACCEPT").is_some());
        assert!(chain_name_problem("a b").is_some());
        assert!(chain_name_problem(&"x".repeat(29)).is_some());
    }
}
