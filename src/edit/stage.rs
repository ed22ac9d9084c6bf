//! Staging: edits kept as a list of operations on a base snapshot (what the kernel or a file held
//! when editing began), with the result of applying them kept up to date, undo and redo, and the
//! facts the commit needs (which chains were edited, renamed, zeroed). Pure: no I/O.
//!
//! Every operation is checked against the result so far before anything changes, so a refused
//! operation leaves the staging exactly as it was. Chains are followed through renames by an
//! identity (the base chain they came from, or "new"), so that `edited`, `renames` and `zeroed`
//! speak of the same chain whatever it is called now.

use super::ChainRef;
use crate::ruleset::{
    Chain, Counters, Family, Rule, Ruleset, Table, builtin_chains, is_standard_target, table_rank,
    words,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use thiserror::Error;

/// Which rule of a chain an operation acts on: its save text (the words after `-A CHAIN`) and
/// which of the rules with that text it is. Positions shift when anything above a rule changes
/// (another tool inserting at the top, an earlier operation unstaged); the identity does not, so
/// a replay on a new base finds the same rule, or refuses by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleId {
    /// The rule's text, as the chain held it when the operation was staged.
    pub text: String,
    /// Which of the rules with that text (0 is the first from the top).
    pub nth: usize,
    /// How many rules of the chain had that text then: when the chain holds another number of
    /// them, which one was meant cannot be told, and the operation is refused.
    pub of: usize,
}

/// Where an inserted (or moved) rule goes: above a rule of the chain, or at its end.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    Above(RuleId),
    End,
}

/// One staged edit, in the terms of the iptables commands it stands for.
///
/// Positions (`pos`, `from`, `to`) are derived: they say where the rule is in the result when the
/// operation was last applied, for display. The truth is the identity (`id`, `above`), filled in
/// when the operation is staged (an operation built with `None` is resolved by its position
/// then) and used on every replay: undo, unstage, rebase and resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `-A`: `rule` is the text after `-A CHAIN`.
    Append { at: ChainRef, rule: String },
    /// `-I CHAIN POS`: `pos` is 1-based; one past the last rule appends. `above`: the rule the
    /// new one goes above, or the end.
    Insert {
        at: ChainRef,
        pos: usize,
        rule: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above: Option<Anchor>,
    },
    /// `-R CHAIN POS`: `id` is the rule replaced.
    Replace {
        at: ChainRef,
        pos: usize,
        rule: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RuleId>,
    },
    /// `-D CHAIN POS`: `id` is the rule deleted.
    Delete {
        at: ChainRef,
        pos: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RuleId>,
    },
    /// The rule at `from` (`id`) ends up at position `to` (both 1-based), above the rule
    /// `above` of the chain without it (or at the end); it keeps its counters.
    Move {
        at: ChainRef,
        from: usize,
        to: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<RuleId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above: Option<Anchor>,
    },
    /// `-N`.
    NewChain { at: ChainRef },
    /// `-E`: rules that jump or go to the chain are renamed too.
    RenameChain { at: ChainRef, to: String },
    /// `-F` and `-X`; refused while other chains refer to it unless `remove_references`, which
    /// deletes those rules in the same change.
    DeleteChain {
        at: ChainRef,
        remove_references: bool,
    },
    /// `-P`: ACCEPT or DROP, built-in chains only.
    SetPolicy { at: ChainRef, policy: String },
    /// `-F`.
    Flush { at: ChainRef },
    /// `-Z`: the counters of the chain's rules and of its policy.
    Zero { at: ChainRef },
}

impl Op {
    /// The chain the operation acts on.
    pub fn at(&self) -> &ChainRef {
        match self {
            Op::Append { at, .. }
            | Op::Insert { at, .. }
            | Op::Replace { at, .. }
            | Op::Delete { at, .. }
            | Op::Move { at, .. }
            | Op::NewChain { at }
            | Op::RenameChain { at, .. }
            | Op::DeleteChain { at, .. }
            | Op::SetPolicy { at, .. }
            | Op::Flush { at }
            | Op::Zero { at } => at,
        }
    }

    /// One line for the Changes list, e.g.
    /// `IPv4 filter/INPUT: insert at 1: -p tcp --dport 22 -j ACCEPT`.
    pub fn describe(&self) -> String {
        let what = match self {
            Op::Append { rule, .. } => format!("append: {rule}"),
            Op::Insert { pos, rule, .. } => format!("insert at {pos}: {rule}"),
            Op::Replace { pos, rule, .. } => format!("replace rule {pos} with: {rule}"),
            Op::Delete {
                pos, id: Some(id), ..
            } => format!("delete rule {pos}: {}", id.text),
            Op::Delete { pos, .. } => format!("delete rule {pos}"),
            Op::Move {
                from,
                to,
                id: Some(id),
                ..
            } => format!("move rule {from} to position {to}: {}", id.text),
            Op::Move { from, to, .. } => format!("move rule {from} to position {to}"),
            Op::NewChain { .. } => "new chain".to_string(),
            Op::RenameChain { to, .. } => format!("rename to {to}"),
            Op::DeleteChain {
                remove_references: false,
                ..
            } => "delete chain".to_string(),
            Op::DeleteChain {
                remove_references: true,
                ..
            } => "delete chain and the rules that jump to it".to_string(),
            Op::SetPolicy { policy, .. } => format!("policy {policy}"),
            Op::Flush { .. } => "flush (delete every rule)".to_string(),
            Op::Zero { .. } => "zero counters".to_string(),
        };
        // A control character would break the one-line list; show it escaped.
        let line = format!("{}: {what}", self.at());
        if line.chars().any(char::is_control) {
            line.escape_debug().to_string()
        } else {
            line
        }
    }
}

fn rules(n: &usize) -> String {
    match n {
        1 => "1 rule".to_string(),
        n => format!("{n} rules"),
    }
}

/// Why an operation cannot be staged, in a sentence that names the chain and position.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StageError {
    #[error(
        "{} has no table {table:?}, and nfscope only creates the tables iptables knows (raw, mangle, nat, filter, security)",
        .family.label()
    )]
    NoTable { family: Family, table: String },
    #[error("{0}: there is no such chain")]
    NoChain(ChainRef),
    #[error("{0}: a chain of that name already exists")]
    ChainExists(ChainRef),
    #[error("{at}: {name:?} cannot be a chain name: {why}")]
    BadChainName {
        at: ChainRef,
        name: String,
        why: String,
    },
    #[error("{at}: there is no rule {pos} to {action}: the chain has {}", rules(.len))]
    NoRule {
        at: ChainRef,
        pos: usize,
        len: usize,
        action: &'static str,
    },
    #[error(
        "{at}: cannot insert at position {pos}: the chain has {}, so the position must be 1 to {}",
        rules(.len), .len + 1
    )]
    InsertPosition {
        at: ChainRef,
        pos: usize,
        len: usize,
    },
    #[error("{at}: the rule cannot be read: {message}")]
    BadRule { at: ChainRef, message: String },
    #[error("{0} is a user chain, and only built-in chains have a policy")]
    PolicyOnUserChain(ChainRef),
    #[error("{at}: the policy must be ACCEPT or DROP, not {policy:?}")]
    BadPolicy { at: ChainRef, policy: String },
    #[error("{at} is a built-in chain and cannot be {action}")]
    Builtin { at: ChainRef, action: &'static str },
    #[error(
        "{at} is still the target of {} (in {chains}): delete those rules first, or delete the chain together with them",
        rules(.count)
    )]
    Referenced {
        at: ChainRef,
        count: usize,
        chains: String,
    },
    /// The rule an operation was staged on is not in the chain any more (another tool deleted
    /// or changed it). `what` says whose rule: "the rule you deleted".
    #[error("{at}: {what}, `-A {} {text}`, is no longer in {}", .at.chain, .at.chain)]
    RuleGone {
        at: ChainRef,
        what: &'static str,
        text: String,
    },
    /// The chain holds another number of rules with that text than when the operation was
    /// staged, so which one was meant cannot be told.
    #[error(
        "{at}: {what}, `-A {} {text}`, is in {} {now} times now and was there {then} times: nfscope cannot tell which one you meant",
        .at.chain, .at.chain
    )]
    RuleAmbiguous {
        at: ChainRef,
        what: &'static str,
        text: String,
        then: usize,
        now: usize,
    },
    #[error("there is no staged operation {number}: there are {count}")]
    NoSuchOp { number: usize, count: usize },
    #[error("operation {number} ({what}) no longer applies: {cause}")]
    NoLongerApplies {
        number: usize,
        what: String,
        cause: Box<StageError>,
    },
}

/// Which chain a chain of the result is: the base chain of that name, or one created by an
/// operation (numbered in creation order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Ident {
    Base(String),
    New(usize),
}

/// A chain's identity within its family and table.
type Key = (Family, String, Ident);

/// The base with some operations applied, and what is needed to follow chains through renames.
#[derive(Debug, Clone)]
struct Applied {
    result: Vec<Ruleset>,
    /// Chains of the result whose identity is not "the base chain of the same name". A chain of
    /// the result that is not here is that base chain (or a built-in chain created on use).
    idents: BTreeMap<ChainRef, Ident>,
    /// Every chain an operation changed (its rules, policy, name or existence).
    touched: BTreeSet<Key>,
    zeroed: BTreeSet<Key>,
    next_new: usize,
}

/// What `materialize` created for an operation, to take back when it fails.
#[derive(Default)]
struct Created {
    ruleset: bool,
    table: bool,
    chain: Option<usize>,
}

fn new_builtin(name: &str) -> Chain {
    Chain {
        name: name.to_string(),
        policy: Some("ACCEPT".to_string()),
        counters: Counters::default(),
        rules: Vec::new(),
    }
}

fn builtin_rank(table: &str, chain: &str) -> Option<usize> {
    builtin_chains(table).iter().position(|c| *c == chain)
}

/// Why `name` cannot name a user chain of `table`, if it cannot.
fn chain_name_problem(table: &str, name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if name.len() > 28 {
        return Some("it is longer than 28 bytes, the kernel's limit".into());
    }
    if name.starts_with('-') || name.starts_with('!') {
        return Some("it starts with - or !, which iptables reads as an option".into());
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\'))
    {
        return Some("it holds a blank, a quote, a backslash or a control character".into());
    }
    if is_standard_target(name) {
        return Some("it is a standard target".into());
    }
    if builtin_rank(table, name).is_some() {
        return Some(format!("it is a built-in chain of table {table}"));
    }
    None
}

/// The rule a staged text stands for, with no counters.
fn staged_rule(at: &ChainRef, text: &str) -> Result<Rule, StageError> {
    let bad = |message: String| StageError::BadRule {
        at: at.clone(),
        message,
    };
    if let Some(c) = text.chars().find(|&c| c.is_control() && c != '\t') {
        return Err(bad(format!(
            "it holds the control character {:?}, which cannot stand in a rule",
            c
        )));
    }
    let mut rule = Rule::from_text(text, None).map_err(bad)?;
    if rule.spec.inline_counters.is_some() {
        return Err(bad(
            "counters (-c) cannot be staged: nfscope keeps the counters of the rules it does not change".into(),
        ));
    }
    rule.counters = None;
    Ok(rule)
}

/// The byte ranges of a rule text's words, cut as `words::split` cuts them.
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                start.get_or_insert(i);
            }
            '"' | '\'' if quote.is_none() => {
                quote = Some(c);
                start.get_or_insert(i);
            }
            c if Some(c) == quote => quote = None,
            c if quote.is_none() && c.is_whitespace() => {
                if let Some(s) = start.take() {
                    spans.push((s, i));
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// A rule text whose target `old` is renamed to `new`, everything else kept as written. None when
/// the rule does not target `old`.
fn rename_target(rule: &Rule, old: &str, new: &str) -> Option<String> {
    if rule.spec.target.as_ref().is_none_or(|t| t.name != old) {
        return None;
    }
    let text = &rule.text;
    let words = words::split(text).ok()?;
    let spans = word_spans(text);
    if spans.len() != words.len() {
        return None;
    }
    let is_jump =
        |w: &words::Word| !w.quoted && matches!(w.text.as_str(), "-j" | "--jump" | "-g" | "--goto");
    // The target is the last `-j`/`-g` the spec took; try candidates from the end.
    (1..words.len())
        .rev()
        .filter(|&i| words[i].text == old && is_jump(&words[i - 1]))
        .find_map(|i| {
            let (s, e) = spans[i];
            let candidate = format!("{}{}{}", &text[..s], words::quote(new), &text[e..]);
            let renamed = Rule::from_text(&candidate, None).ok()?;
            let target = renamed.spec.target?;
            (target.name == new).then_some(candidate)
        })
}

/// The rule with its target renamed, counters kept.
fn renamed_rule(rule: &Rule, old: &str, new: &str) -> Option<Rule> {
    let text = rename_target(rule, old, new)?;
    let mut r = Rule::from_text(&text, rule.counters).ok()?;
    r.counters = rule.counters;
    Some(r)
}

fn check_pos(
    at: &ChainRef,
    chain: &Chain,
    pos: usize,
    action: &'static str,
) -> Result<usize, StageError> {
    if pos == 0 || pos > chain.rules.len() {
        return Err(StageError::NoRule {
            at: at.clone(),
            pos,
            len: chain.rules.len(),
            action,
        });
    }
    Ok(pos - 1)
}

/// The identity of rule `i` of `chain`.
fn rule_id(chain: &Chain, i: usize) -> RuleId {
    let text = &chain.rules[i].text;
    let nth = chain.rules[..i].iter().filter(|r| r.text == *text).count();
    let of = nth + chain.rules[i..].iter().filter(|r| r.text == *text).count();
    RuleId {
        text: text.clone(),
        nth,
        of,
    }
}

/// What goes above index `i` of `chain`: the rule there, or the end.
fn anchor_at(chain: &Chain, i: usize) -> Anchor {
    if i < chain.rules.len() {
        Anchor::Above(rule_id(chain, i))
    } else {
        Anchor::End
    }
}

/// Where rule `id` is in `chain` (0-based), or why it cannot be found.
fn find_rule(
    at: &ChainRef,
    chain: &Chain,
    id: &RuleId,
    what: &'static str,
) -> Result<usize, StageError> {
    let found: Vec<usize> = chain
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.text == id.text)
        .map(|(i, _)| i)
        .collect();
    let gone = || StageError::RuleGone {
        at: at.clone(),
        what,
        text: id.text.clone(),
    };
    if found.is_empty() {
        return Err(gone());
    }
    if found.len() != id.of {
        return Err(StageError::RuleAmbiguous {
            at: at.clone(),
            what,
            text: id.text.clone(),
            then: id.of,
            now: found.len(),
        });
    }
    found.get(id.nth).copied().ok_or_else(gone)
}

/// The index an anchor stands for: above its rule, or the end.
fn find_anchor(
    at: &ChainRef,
    chain: &Chain,
    anchor: &Anchor,
    what: &'static str,
) -> Result<usize, StageError> {
    match anchor {
        Anchor::End => Ok(chain.rules.len()),
        Anchor::Above(id) => find_rule(at, chain, id, what),
    }
}

/// The rule an operation acts on: by identity when it has one, else by position (and the
/// identity is taken from there).
fn locate(
    at: &ChainRef,
    chain: &Chain,
    id: Option<&RuleId>,
    pos: usize,
    action: &'static str,
    what: &'static str,
) -> Result<(usize, RuleId), StageError> {
    match id {
        Some(id) => Ok((find_rule(at, chain, id, what)?, id.clone())),
        None => {
            let i = check_pos(at, chain, pos, action)?;
            Ok((i, rule_id(chain, i)))
        }
    }
}

impl Applied {
    fn new(base: Vec<Ruleset>) -> Self {
        Applied {
            result: base,
            idents: BTreeMap::new(),
            touched: BTreeSet::new(),
            zeroed: BTreeSet::new(),
            next_new: 0,
        }
    }

    fn ident_of(&self, at: &ChainRef) -> Ident {
        self.idents
            .get(at)
            .cloned()
            .unwrap_or_else(|| Ident::Base(at.chain.clone()))
    }

    /// Make the ruleset, table and built-in chain the operation names when they are missing but
    /// known, as iptables does on first use. Returns their indices and what was created.
    fn materialize(&mut self, op: &Op) -> Result<(usize, usize, Created), StageError> {
        let at = op.at();
        let mut created = Created::default();
        let known = !builtin_chains(&at.table).is_empty();
        let no_table = || StageError::NoTable {
            family: at.family,
            table: at.table.clone(),
        };
        let ri = match self.result.iter().position(|r| r.family == at.family) {
            Some(i) => i,
            None if known => {
                let i = self
                    .result
                    .iter()
                    .position(|r| r.family > at.family)
                    .unwrap_or(self.result.len());
                self.result.insert(i, Ruleset::empty(at.family));
                created.ruleset = true;
                i
            }
            None => return Err(no_table()),
        };
        let tables = &mut self.result[ri].tables;
        let ti = match tables.iter().position(|t| t.name == at.table) {
            Some(i) => i,
            None if known => {
                let rank = table_rank(&at.table);
                let i = tables
                    .iter()
                    .position(|t| table_rank(&t.name) > rank)
                    .unwrap_or(tables.len());
                let mut t = Table::new(&at.table);
                t.chains = builtin_chains(&at.table)
                    .iter()
                    .map(|c| new_builtin(c))
                    .collect();
                tables.insert(i, t);
                created.table = true;
                i
            }
            // Only a known table creates its ruleset, so nothing was created yet.
            None => return Err(no_table()),
        };
        let table = &mut self.result[ri].tables[ti];
        if let Some(rank) = builtin_rank(&at.table, &at.chain)
            && table.chain(&at.chain).is_none()
        {
            let ci = table
                .chains
                .iter()
                .position(|c| builtin_rank(&at.table, &c.name).is_none_or(|r| r > rank))
                .unwrap_or(table.chains.len());
            table.chains.insert(ci, new_builtin(&at.chain));
            created.chain = Some(ci);
        }
        Ok((ri, ti, created))
    }

    fn unmaterialize(&mut self, created: &Created, ri: usize, ti: usize) {
        if created.ruleset {
            self.result.remove(ri);
        } else if created.table {
            self.result[ri].tables.remove(ti);
        } else if let Some(ci) = created.chain {
            self.result[ri].tables[ti].chains.remove(ci);
        }
    }

    /// Apply one operation; on error nothing has changed. Returns the operation resolved: its
    /// rule identities filled in and its positions where the rules are now.
    fn apply(&mut self, op: &Op) -> Result<Op, StageError> {
        let (ri, ti, created) = self.materialize(op)?;
        let r = self.apply_in(op, ri, ti);
        if r.is_err() {
            self.unmaterialize(&created, ri, ti);
            return r;
        }
        // Chains made on first use exist in the result only: they are edited too.
        let at = op.at();
        let made: Vec<String> = if created.table {
            builtin_chains(&at.table)
                .iter()
                .map(|c| c.to_string())
                .collect()
        } else {
            created
                .chain
                .map(|_| at.chain.clone())
                .into_iter()
                .collect()
        };
        for chain in made {
            self.touched
                .insert((at.family, at.table.clone(), Ident::Base(chain)));
        }
        r
    }

    /// Apply `op` to table `ti` of ruleset `ri`: every check comes before any change.
    fn apply_in(&mut self, op: &Op, ri: usize, ti: usize) -> Result<Op, StageError> {
        let at = op.at();
        let ident = self.ident_of(at);
        let key = |ident: Ident| (at.family, at.table.clone(), ident);
        let table = &mut self.result[ri].tables[ti];
        let no_chain = || StageError::NoChain(at.clone());
        if let Op::NewChain { .. } = op {
            if let Some(why) = chain_name_problem(&at.table, &at.chain) {
                return Err(StageError::BadChainName {
                    at: at.clone(),
                    name: at.chain.clone(),
                    why,
                });
            }
            if table.chain(&at.chain).is_some() {
                return Err(StageError::ChainExists(at.clone()));
            }
            table.chains.push(Chain {
                name: at.chain.clone(),
                policy: None,
                counters: Counters::default(),
                rules: Vec::new(),
            });
            let new = Ident::New(self.next_new);
            self.next_new += 1;
            self.idents.insert(at.clone(), new.clone());
            self.touched.insert(key(new));
            return Ok(op.clone());
        }
        let ci = table.chain_index(&at.chain).ok_or_else(no_chain)?;
        let mut resolved = op.clone();
        match op {
            Op::Append { rule, .. } => {
                let rule = staged_rule(at, rule)?;
                table.chains[ci].rules.push(rule);
            }
            Op::Insert {
                pos, rule, above, ..
            } => {
                let new = staged_rule(at, rule)?;
                let chain = &mut table.chains[ci];
                let len = chain.rules.len();
                let i = match above {
                    Some(a) => find_anchor(at, chain, a, "the rule your new rule goes above")?,
                    None if *pos == 0 || *pos > len + 1 => {
                        return Err(StageError::InsertPosition {
                            at: at.clone(),
                            pos: *pos,
                            len,
                        });
                    }
                    None => pos - 1,
                };
                let anchor = anchor_at(chain, i);
                chain.rules.insert(i, new);
                resolved = Op::Insert {
                    at: at.clone(),
                    pos: i + 1,
                    rule: rule.clone(),
                    above: Some(anchor),
                };
            }
            Op::Replace { pos, rule, id, .. } => {
                let (i, id) = locate(
                    at,
                    &table.chains[ci],
                    id.as_ref(),
                    *pos,
                    "replace",
                    "the rule you replaced",
                )?;
                let new = staged_rule(at, rule)?;
                table.chains[ci].rules[i] = new;
                resolved = Op::Replace {
                    at: at.clone(),
                    pos: i + 1,
                    rule: rule.clone(),
                    id: Some(id),
                };
            }
            Op::Delete { pos, id, .. } => {
                let (i, id) = locate(
                    at,
                    &table.chains[ci],
                    id.as_ref(),
                    *pos,
                    "delete",
                    "the rule you deleted",
                )?;
                table.chains[ci].rules.remove(i);
                resolved = Op::Delete {
                    at: at.clone(),
                    pos: i + 1,
                    id: Some(id),
                };
            }
            Op::Move {
                from,
                to,
                id,
                above,
                ..
            } => {
                let chain = &mut table.chains[ci];
                let (f, id) = locate(at, chain, id.as_ref(), *from, "move", "the rule you moved")?;
                // Where it goes is found in the chain without it.
                let mut without = chain.clone();
                let rule = without.rules.remove(f);
                let t = match above {
                    Some(a) => find_anchor(at, &without, a, "the rule your moved rule goes above")?,
                    None => check_pos(at, chain, *to, "move into the place of")?,
                };
                let anchor = anchor_at(&without, t);
                without.rules.insert(t, rule);
                chain.rules = without.rules;
                resolved = Op::Move {
                    at: at.clone(),
                    from: f + 1,
                    to: t + 1,
                    id: Some(id),
                    above: Some(anchor),
                };
            }
            Op::NewChain { .. } => {}
            Op::RenameChain { to, .. } => {
                if table.chains[ci].is_builtin() {
                    return Err(StageError::Builtin {
                        at: at.clone(),
                        action: "renamed",
                    });
                }
                if let Some(why) = chain_name_problem(&at.table, to) {
                    return Err(StageError::BadChainName {
                        at: at.clone(),
                        name: to.clone(),
                        why,
                    });
                }
                if table.chain(to).is_some() {
                    return Err(StageError::ChainExists(ChainRef::new(
                        at.family, &at.table, to,
                    )));
                }
                // Every reference, renamed, before anything changes.
                let mut renamed = Vec::new();
                for (c, chain) in table.chains.iter().enumerate() {
                    for (r, rule) in chain.rules.iter().enumerate() {
                        if rule
                            .spec
                            .target
                            .as_ref()
                            .is_some_and(|t| t.name == at.chain)
                        {
                            let new = renamed_rule(rule, &at.chain, to).ok_or_else(|| {
                                StageError::BadRule {
                                    at: ChainRef::new(at.family, &at.table, &chain.name),
                                    message: format!(
                                        "the jump to {} in rule {} cannot be renamed to {to}",
                                        at.chain,
                                        r + 1
                                    ),
                                }
                            })?;
                            renamed.push((c, r, new));
                        }
                    }
                }
                for (c, r, new) in renamed {
                    table.chains[c].rules[r] = new;
                }
                table.chains[ci].name = to.clone();
                self.idents.remove(at);
                let to_ref = ChainRef::new(at.family, &at.table, to);
                if ident != Ident::Base(to.clone()) {
                    self.idents.insert(to_ref, ident.clone());
                }
            }
            Op::DeleteChain {
                remove_references, ..
            } => {
                if table.chains[ci].is_builtin() {
                    return Err(StageError::Builtin {
                        at: at.clone(),
                        action: "deleted",
                    });
                }
                let refs = |c: &Chain| {
                    c.rules
                        .iter()
                        .filter(|r| r.spec.target.as_ref().is_some_and(|t| t.name == at.chain))
                        .count()
                };
                let referring: Vec<(usize, usize)> = table
                    .chains
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != ci)
                    .map(|(i, c)| (i, refs(c)))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                if !referring.is_empty() && !remove_references {
                    let names: Vec<&str> = referring
                        .iter()
                        .take(3)
                        .map(|(i, _)| table.chains[*i].name.as_str())
                        .collect();
                    let mut chains = names.join(", ");
                    if referring.len() > names.len() {
                        chains += &format!(" and {} more chains", referring.len() - names.len());
                    }
                    return Err(StageError::Referenced {
                        at: at.clone(),
                        count: referring.iter().map(|(_, n)| n).sum(),
                        chains,
                    });
                }
                for (i, _) in &referring {
                    let chain = &mut table.chains[*i];
                    chain
                        .rules
                        .retain(|r| r.spec.target.as_ref().is_none_or(|t| t.name != at.chain));
                    let name = ChainRef::new(at.family, &at.table, &chain.name);
                    let id = self
                        .idents
                        .get(&name)
                        .cloned()
                        .unwrap_or_else(|| Ident::Base(name.chain.clone()));
                    self.touched.insert(key(id));
                }
                table.chains.remove(ci);
                self.idents.remove(at);
                self.zeroed.remove(&key(ident.clone()));
            }
            Op::SetPolicy { policy, .. } => {
                let chain = &mut table.chains[ci];
                if !chain.is_builtin() {
                    return Err(StageError::PolicyOnUserChain(at.clone()));
                }
                if policy != "ACCEPT" && policy != "DROP" {
                    return Err(StageError::BadPolicy {
                        at: at.clone(),
                        policy: policy.clone(),
                    });
                }
                chain.policy = Some(policy.clone());
            }
            Op::Flush { .. } => table.chains[ci].rules.clear(),
            Op::Zero { .. } => {
                let chain = &mut table.chains[ci];
                chain.counters = Counters::default();
                // A rule whose text carries its counters (`-c P B`, hand-written files only)
                // keeps them: its text is what would be written back.
                for r in &mut chain.rules {
                    if r.counters.is_some() && r.spec.inline_counters.is_none() {
                        r.counters = Some(Counters::default());
                    }
                }
                self.zeroed.insert(key(ident.clone()));
                // Zeroing changes no rule: the chain is edited only through `zeroed`.
                return Ok(resolved);
            }
        }
        self.touched.insert(key(ident));
        Ok(resolved)
    }
}

fn find(sets: &[Ruleset], f: Family) -> Option<&Ruleset> {
    sets.iter().find(|r| r.family == f)
}

/// Apply `ops` to `base` in order, each finding its rules by identity; the error says which
/// operation (0-based) failed. Returns the operations resolved on this base.
fn replay(base: &[Ruleset], ops: &[Op]) -> Result<(Applied, Vec<Op>), (usize, StageError)> {
    let mut a = Applied::new(base.to_vec());
    let mut resolved = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        resolved.push(a.apply(op).map_err(|e| (i, e))?);
    }
    Ok((a, resolved))
}

fn no_longer_applies(number: usize, op: &Op, cause: StageError) -> StageError {
    StageError::NoLongerApplies {
        number,
        what: op.describe(),
        cause: Box::new(cause),
    }
}

/// Chains of one side by table and name, indexed on first use: kube-proxy tables hold
/// thousands of chains, and a linear search per chain made `edited()` quadratic.
struct Lookup<'a> {
    sets: &'a [Ruleset],
    tables: HashMap<(Family, &'a str), HashMap<&'a str, &'a Chain>>,
}

impl<'a> Lookup<'a> {
    fn new(sets: &'a [Ruleset]) -> Self {
        Lookup {
            sets,
            tables: HashMap::new(),
        }
    }

    fn chain(&mut self, family: Family, table: &str, name: &str) -> Option<&'a Chain> {
        let t = find(self.sets, family)?.table(table)?;
        self.tables
            .entry((family, t.name.as_str()))
            .or_insert_with(|| t.chains.iter().map(|c| (c.name.as_str(), c)).collect())
            .get(name)
            .copied()
    }
}

/// Where the chains of the base went in the result, for `edited()` and `zeroed()`.
struct Finder<'a> {
    base: Lookup<'a>,
    result: Lookup<'a>,
    /// Identity → name in the result, for chains renamed or created.
    moved: HashMap<(Family, &'a str, &'a Ident), &'a str>,
    /// Names in the result that belong to another identity than the base chain of that name.
    taken: HashSet<(Family, &'a str, &'a str)>,
    /// Base name → result name, per table.
    renames: HashMap<(Family, &'a str), HashMap<&'a str, &'a str>>,
}

impl<'a> Finder<'a> {
    fn new(base: &'a [Ruleset], state: &'a Applied) -> Self {
        let mut renames: HashMap<(Family, &str), HashMap<&str, &str>> = HashMap::new();
        for (k, v) in &state.idents {
            if let Ident::Base(b) = v {
                renames
                    .entry((k.family, k.table.as_str()))
                    .or_default()
                    .insert(b.as_str(), k.chain.as_str());
            }
        }
        Finder {
            base: Lookup::new(base),
            result: Lookup::new(&state.result),
            moved: state
                .idents
                .iter()
                .map(|(k, v)| ((k.family, k.table.as_str(), v), k.chain.as_str()))
                .collect(),
            taken: state
                .idents
                .keys()
                .map(|k| (k.family, k.table.as_str(), k.chain.as_str()))
                .collect(),
            renames,
        }
    }

    /// The name a chain has in the result, if it is still there.
    fn current_name(
        &mut self,
        family: Family,
        table: &'a str,
        ident: &'a Ident,
    ) -> Option<&'a str> {
        if let Some(name) = self.moved.get(&(family, table, ident)) {
            return Some(name);
        }
        let Ident::Base(name) = ident else {
            return None;
        };
        let free = !self.taken.contains(&(family, table, name.as_str()));
        (free && self.result.chain(family, table, name).is_some()).then_some(name.as_str())
    }

    /// Whether result chain `name` holds other rules or another policy than base chain `base`
    /// (counters ignored; jumps to renamed chains count as unchanged).
    fn differs(&mut self, family: Family, table: &'a str, base: &str, name: &str) -> bool {
        let (Some(b), Some(r)) = (
            self.base.chain(family, table, base),
            self.result.chain(family, table, name),
        ) else {
            return true;
        };
        if b.policy != r.policy || b.rules.len() != r.rules.len() {
            return true;
        }
        let renames = self.renames.get(&(family, table));
        b.rules.iter().zip(&r.rules).any(|(br, rr)| {
            let old = br.spec.target_name();
            let renamed = renames
                .and_then(|m| m.get(old))
                .filter(|new| **new != old)
                .and_then(|new| rename_target(br, old, new));
            renamed.as_deref().unwrap_or(&br.text) != rr.text
        })
    }
}

/// Staged edits on a base snapshot.
#[derive(Debug, Clone)]
pub struct Staging {
    base: Vec<Ruleset>,
    /// The nf_tables generation at which the base was read, when known (`base_generation`).
    base_generation: Option<u32>,
    ops: Vec<Op>,
    redo: Vec<Op>,
    state: Applied,
}

impl Staging {
    /// Staging on `base`, one Ruleset per family present.
    pub fn new(base: Vec<Ruleset>) -> Staging {
        Staging {
            state: Applied::new(base.clone()),
            base,
            base_generation: None,
            ops: Vec::new(),
            redo: Vec::new(),
        }
    }

    /// The same staging, its base known to be the kernel's rules at nf_tables generation
    /// `generation` (`RulesetSnapshot::nft_generation`). A commit that finds the kernel still
    /// there needs not read it again (edit::commit).
    pub fn read_at(mut self, generation: Option<u32>) -> Staging {
        self.base_generation = generation;
        self
    }

    /// The nf_tables generation at which the base was read, when known. A rebase forgets it.
    pub fn base_generation(&self) -> Option<u32> {
        self.base_generation
    }

    pub fn base(&self) -> &[Ruleset] {
        &self.base
    }

    /// The base with every staged operation applied. A family or table that an operation
    /// created (iptables creates a known table on first use) is here but not in the base.
    pub fn result(&self) -> &[Ruleset] {
        &self.state.result
    }

    pub fn result_for(&self, f: Family) -> Option<&Ruleset> {
        find(&self.state.result, f)
    }

    pub fn base_for(&self, f: Family) -> Option<&Ruleset> {
        find(&self.base, f)
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Stage `op`, checked against the result so far. On error nothing changes. Clears redo.
    pub fn push(&mut self, op: Op) -> Result<(), StageError> {
        let op = self.state.apply(&op)?;
        self.ops.push(op);
        self.redo.clear();
        Ok(())
    }

    /// Take back the last operation; it can be redone.
    pub fn undo(&mut self) -> Option<Op> {
        let op = self.ops.pop()?;
        match replay(&self.base, &self.ops) {
            Ok((state, ops)) => {
                self.state = state;
                self.ops = ops;
                self.redo.push(op.clone());
                Some(op)
            }
            Err(_) => {
                // Cannot happen (the same operations applied before), but never lose one.
                self.ops.push(op);
                None
            }
        }
    }

    /// Stage again the last operation undone, if any.
    pub fn redo(&mut self) -> Result<Option<Op>, StageError> {
        let Some(op) = self.redo.last().cloned() else {
            return Ok(None);
        };
        let op = self
            .state
            .apply(&op)
            .map_err(|e| no_longer_applies(self.ops.len() + 1, &op, e))?;
        self.redo.pop();
        self.ops.push(op.clone());
        Ok(Some(op))
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Drop operation `index` (0-based) and replay the rest. When a later operation no longer
    /// applies without it, nothing changes and the error says which one (numbered from 1).
    pub fn unstage(&mut self, index: usize) -> Result<(), StageError> {
        if index >= self.ops.len() {
            return Err(StageError::NoSuchOp {
                number: index + 1,
                count: self.ops.len(),
            });
        }
        let mut rest = self.ops.clone();
        rest.remove(index);
        let (state, rest) = replay(&self.base, &rest).map_err(|(i, e)| {
            let number = if i >= index { i + 2 } else { i + 1 };
            no_longer_applies(number, &rest[i], e)
        })?;
        self.state = state;
        self.ops = rest;
        self.redo.clear();
        Ok(())
    }

    /// Drop every operation (and what could be redone).
    pub fn discard(&mut self) {
        self.ops.clear();
        self.redo.clear();
        self.state = Applied::new(self.base.clone());
    }

    /// Chains whose rules, policy or existence differ between base and result, plus chains
    /// zeroed, keyed by their name in the RESULT (a renamed chain appears under its new name;
    /// see renames()). A deleted chain appears under its base name.
    pub fn edited(&self) -> BTreeSet<ChainRef> {
        let mut find = Finder::new(&self.base, &self.state);
        let mut out = BTreeSet::new();
        for (family, table, ident) in &self.state.touched {
            let (f, t) = (*family, table.as_str());
            match (find.current_name(f, t, ident), ident) {
                (Some(name), Ident::New(_)) => {
                    out.insert(ChainRef::new(f, t, name));
                }
                (Some(name), Ident::Base(b)) => {
                    if b != name || find.differs(f, t, b, name) {
                        out.insert(ChainRef::new(f, t, name));
                    }
                }
                (None, Ident::Base(b)) => {
                    if find.base.chain(f, t, b).is_some() {
                        out.insert(ChainRef::new(f, t, b));
                    }
                }
                (None, Ident::New(_)) => {}
            }
        }
        out.extend(self.zeroed_with(&mut find));
        out
    }

    /// (base chain, new name) for every base chain that has another name in the result.
    pub fn renames(&self) -> Vec<(ChainRef, String)> {
        self.state
            .idents
            .iter()
            .filter_map(|(k, v)| match v {
                Ident::Base(b) if *b != k.chain => {
                    Some((ChainRef::new(k.family, &k.table, b), k.chain.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Chains whose counters are to be zeroed, by their name in the result.
    pub fn zeroed(&self) -> BTreeSet<ChainRef> {
        self.zeroed_with(&mut Finder::new(&self.base, &self.state))
    }

    fn zeroed_with<'a>(&'a self, find: &mut Finder<'a>) -> BTreeSet<ChainRef> {
        self.state
            .zeroed
            .iter()
            .filter_map(|(family, table, ident)| {
                let name = find.current_name(*family, table, ident)?;
                Some(ChainRef::new(*family, table, name))
            })
            .collect()
    }

    /// The same operations on a new base (after the kernel moved), each finding the rule it
    /// was staged on by identity, never by position: a delete deletes the rule the user chose
    /// wherever it is now. Error if any operation's rule is gone or ambiguous, or it no longer
    /// applies for another reason, naming it. On success every operation found its rule, and
    /// their positions are where those rules are on the new base.
    pub fn rebase(&self, base: Vec<Ruleset>) -> Result<Staging, StageError> {
        let (state, ops) =
            replay(&base, &self.ops).map_err(|(i, e)| no_longer_applies(i + 1, &self.ops[i], e))?;
        Ok(Staging {
            base,
            base_generation: None,
            ops,
            redo: Vec::new(),
            state,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::parse;
    use crate::ruleset::save::{CounterMode, SaveOptions, write};

    const BASE4: &str = "*filter\n:INPUT DROP [5:500]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:T - [0:0]\n:U - [0:0]\n[1:10] -A INPUT -i lo -j ACCEPT\n[2:20] -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n[3:30] -A INPUT -p tcp -j T\n[4:40] -A T -s 10.0.0.0/8 -g U\n[5:50] -A U -j RETURN\nCOMMIT\n";
    const BASE6: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n[7:70] -A INPUT -p ipv6-icmp -j ACCEPT\nCOMMIT\n";

    fn base() -> Vec<Ruleset> {
        vec![
            parse(BASE4, Family::V4).unwrap(),
            parse(BASE6, Family::V6).unwrap(),
        ]
    }

    fn c4(chain: &str) -> ChainRef {
        ChainRef::new(Family::V4, "filter", chain)
    }

    fn texts(s: &Staging, f: Family, table: &str, chain: &str) -> Vec<String> {
        s.result_for(f)
            .and_then(|r| r.table(table))
            .and_then(|t| t.chain(chain))
            .map(|c| c.rules.iter().map(|r| r.text.clone()).collect())
            .unwrap_or_default()
    }

    fn input(s: &Staging) -> Vec<String> {
        texts(s, Family::V4, "filter", "INPUT")
    }

    fn staged(ops: Vec<Op>) -> Staging {
        let mut s = Staging::new(base());
        for op in ops {
            s.push(op).unwrap();
        }
        s
    }

    fn set(refs: &[ChainRef]) -> BTreeSet<ChainRef> {
        refs.iter().cloned().collect()
    }

    #[test]
    fn append_insert_replace_delete_move() {
        let at = c4("INPUT");
        let mut s = Staging::new(base());
        s.push(Op::Append {
            at: at.clone(),
            rule: "-j LOG".into(),
        })
        .unwrap();
        assert_eq!(input(&s).last().unwrap(), "-j LOG");
        s.push(Op::Insert {
            above: None,
            at: at.clone(),
            pos: 1,
            rule: " -s 1.2.3.4 -j DROP ".into(),
        })
        .unwrap();
        assert_eq!(input(&s)[0], "-s 1.2.3.4 -j DROP");
        // One past the end appends, as `iptables -I`.
        s.push(Op::Insert {
            above: None,
            at: at.clone(),
            pos: 6,
            rule: "-j RETURN".into(),
        })
        .unwrap();
        assert_eq!(input(&s).len(), 6);
        s.push(Op::Replace {
            id: None,
            at: at.clone(),
            pos: 2,
            rule: "-i lo -m comment --comment \"loop back\" -j ACCEPT".into(),
        })
        .unwrap();
        s.push(Op::Delete {
            id: None,
            at: at.clone(),
            pos: 6,
        })
        .unwrap();
        s.push(Op::Move {
            id: None,
            above: None,
            at: at.clone(),
            from: 3,
            to: 1,
        })
        .unwrap();
        assert_eq!(
            input(&s),
            [
                "-p tcp -m tcp --dport 22 -j ACCEPT",
                "-s 1.2.3.4 -j DROP",
                "-i lo -m comment --comment \"loop back\" -j ACCEPT",
                "-p tcp -j T",
                "-j LOG",
            ]
        );
        let chain = s.result_for(Family::V4).unwrap().tables[0]
            .chain("INPUT")
            .unwrap();
        // Staged rules carry no counters; a moved rule keeps its own.
        assert_eq!(chain.rules[0].counters, Some(Counters::new(2, 20)));
        assert_eq!(chain.rules[1].counters, None);
        assert_eq!(chain.rules[2].counters, None);
        assert_eq!(chain.rules[3].counters, Some(Counters::new(3, 30)));
        assert_eq!(s.ops().len(), 6);
        assert_eq!(s.edited(), set(&[at]));
        // The base is untouched.
        assert_eq!(s.base(), &base()[..]);
        // Moving down: the rule ends up at `to`.
        let mut s = Staging::new(base());
        s.push(Op::Move {
            id: None,
            above: None,
            at: c4("INPUT"),
            from: 1,
            to: 3,
        })
        .unwrap();
        assert_eq!(input(&s)[2], "-i lo -j ACCEPT");
    }

    #[test]
    fn chains_policy_flush_and_zero() {
        let mut s = staged(vec![
            Op::NewChain { at: c4("NEW") },
            Op::Append {
                at: c4("NEW"),
                rule: "-j ACCEPT".into(),
            },
            Op::SetPolicy {
                at: c4("FORWARD"),
                policy: "DROP".into(),
            },
            Op::Flush { at: c4("U") },
            Op::Zero { at: c4("INPUT") },
        ]);
        let t = s.result_for(Family::V4).unwrap().table("filter").unwrap();
        assert_eq!(t.chain("NEW").unwrap().policy, None);
        assert_eq!(t.chain("FORWARD").unwrap().policy.as_deref(), Some("DROP"));
        assert!(t.chain("U").unwrap().rules.is_empty());
        let input = t.chain("INPUT").unwrap();
        assert_eq!(input.counters, Counters::default());
        assert!(
            input
                .rules
                .iter()
                .all(|r| r.counters == Some(Counters::default()))
        );
        assert_eq!(s.zeroed(), set(&[c4("INPUT")]));
        assert_eq!(
            s.edited(),
            set(&[c4("NEW"), c4("FORWARD"), c4("U"), c4("INPUT")])
        );
        // A policy set to what it was is no edit.
        s.push(Op::SetPolicy {
            at: c4("FORWARD"),
            policy: "ACCEPT".into(),
        })
        .unwrap();
        assert!(!s.edited().contains(&c4("FORWARD")));
        // The IPv6 side is its own.
        let at6 = ChainRef::new(Family::V6, "filter", "INPUT");
        s.push(Op::Flush { at: at6.clone() }).unwrap();
        assert!(s.edited().contains(&at6));
        assert!(texts(&s, Family::V6, "filter", "INPUT").is_empty());
        assert_eq!(texts(&s, Family::V4, "filter", "T").len(), 1);
    }

    #[test]
    fn zero_leaves_counters_written_in_the_text() {
        let text = "*filter\n:INPUT ACCEPT [1:1]\n[2:2] -A INPUT -j ACCEPT\n-A INPUT -c 3 4 -j DROP\nCOMMIT\n";
        let mut s = Staging::new(vec![parse(text, Family::V4).unwrap()]);
        s.push(Op::Zero { at: c4("INPUT") }).unwrap();
        let rs = &s.result()[0];
        let rules = &rs.tables[0].chains[0].rules;
        assert_eq!(rules[0].counters, Some(Counters::default()));
        assert_eq!(rules[1].counters, Some(Counters::new(3, 4)));
        let written = write(rs, SaveOptions::default());
        assert_eq!(&parse(&written, Family::V4).unwrap(), rs);
    }

    #[test]
    fn rename_renames_the_references() {
        let mut s = staged(vec![Op::RenameChain {
            at: c4("U"),
            to: "UU".into(),
        }]);
        assert_eq!(
            texts(&s, Family::V4, "filter", "T"),
            ["-s 10.0.0.0/8 -g UU"]
        );
        assert_eq!(texts(&s, Family::V4, "filter", "UU"), ["-j RETURN"]);
        assert_eq!(s.renames(), [(c4("U"), "UU".to_string())]);
        // The chain that only jumps to it is not edited: -E renames references itself.
        assert_eq!(s.edited(), set(&[c4("UU")]));
        // Twice: net of both.
        s.push(Op::RenameChain {
            at: c4("UU"),
            to: "V".into(),
        })
        .unwrap();
        assert_eq!(s.renames(), [(c4("U"), "V".to_string())]);
        assert_eq!(s.edited(), set(&[c4("V")]));
        // Back to its name: no rename, no edit.
        s.push(Op::RenameChain {
            at: c4("V"),
            to: "U".into(),
        })
        .unwrap();
        assert!(s.renames().is_empty());
        assert!(s.edited().is_empty());
        assert_eq!(s.result(), s.base());
    }

    #[test]
    fn rename_swap_and_zero_follow_the_chain() {
        let s = staged(vec![
            Op::Zero { at: c4("T") },
            Op::RenameChain {
                at: c4("T"),
                to: "TMP".into(),
            },
            Op::RenameChain {
                at: c4("U"),
                to: "T".into(),
            },
            Op::RenameChain {
                at: c4("TMP"),
                to: "U".into(),
            },
        ]);
        let mut r = s.renames();
        r.sort();
        assert_eq!(r, [(c4("T"), "U".to_string()), (c4("U"), "T".to_string())]);
        assert_eq!(s.zeroed(), set(&[c4("U")]));
        // INPUT jumped to T, which is now called U.
        assert_eq!(input(&s)[2], "-p tcp -j U");
        assert_eq!(texts(&s, Family::V4, "filter", "U"), ["-s 10.0.0.0/8 -g T"]);
        assert_eq!(s.edited(), set(&[c4("T"), c4("U")]));
    }

    #[test]
    fn rename_keeps_the_rest_of_the_text() {
        let text = "*filter\n:INPUT ACCEPT [0:0]\n:T - [0:0]\n-A INPUT -m comment --comment \"-j T\"  -j T --x\n-A INPUT -j \"T\"\nCOMMIT\n";
        let mut s = Staging::new(vec![parse(text, Family::V4).unwrap()]);
        s.push(Op::RenameChain {
            at: c4("T"),
            to: "NEW".into(),
        })
        .unwrap();
        assert_eq!(
            input(&s),
            ["-m comment --comment \"-j T\"  -j NEW --x", "-j NEW"]
        );
        assert!(s.edited().iter().all(|c| c.chain == "NEW"));
    }

    #[test]
    fn delete_chain_refused_when_referenced() {
        let mut s = Staging::new(base());
        let err = s
            .push(Op::DeleteChain {
                at: c4("T"),
                remove_references: false,
            })
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("IPv4 filter/T") && msg.contains("1 rule"),
            "{msg}"
        );
        assert!(msg.contains("INPUT"), "{msg}");
        assert!(s.is_empty());
        assert_eq!(s.result(), s.base());
        // U is a target of T only; deleting T first frees U.
        s.push(Op::DeleteChain {
            at: c4("T"),
            remove_references: true,
        })
        .unwrap();
        assert_eq!(
            input(&s),
            ["-i lo -j ACCEPT", "-p tcp -m tcp --dport 22 -j ACCEPT"]
        );
        assert_eq!(s.edited(), set(&[c4("T"), c4("INPUT")]));
        s.push(Op::DeleteChain {
            at: c4("U"),
            remove_references: false,
        })
        .unwrap();
        let t = s.result_for(Family::V4).unwrap().table("filter").unwrap();
        assert!(t.chain("T").is_none() && t.chain("U").is_none());
        assert_eq!(s.edited(), set(&[c4("T"), c4("U"), c4("INPUT")]));
        // A chain that jumps to itself only is not held back by that.
        let mut s = Staging::new(base());
        s.push(Op::Append {
            at: c4("U"),
            rule: "-j U".into(),
        })
        .unwrap();
        s.push(Op::Flush { at: c4("T") }).unwrap();
        s.push(Op::DeleteChain {
            at: c4("U"),
            remove_references: false,
        })
        .unwrap();
    }

    #[test]
    fn new_chain_then_deleted_is_no_edit() {
        let s = staged(vec![
            Op::NewChain { at: c4("X") },
            Op::Zero { at: c4("X") },
            Op::DeleteChain {
                at: c4("X"),
                remove_references: false,
            },
        ]);
        assert!(s.edited().is_empty());
        assert!(s.zeroed().is_empty());
        assert_eq!(s.result(), s.base());
        // A base chain deleted and made again is a new chain under the old name.
        let s = staged(vec![
            Op::Flush { at: c4("T") },
            Op::DeleteChain {
                at: c4("U"),
                remove_references: false,
            },
            Op::NewChain { at: c4("U") },
            Op::RenameChain {
                at: c4("U"),
                to: "W".into(),
            },
        ]);
        assert!(s.renames().is_empty());
        assert_eq!(s.edited(), set(&[c4("T"), c4("U"), c4("W")]));
    }

    fn err_of(op: Op) -> String {
        let mut s = Staging::new(base());
        let e = s.push(op).unwrap_err().to_string();
        assert!(s.is_empty());
        assert_eq!(s.result(), s.base(), "a refused op changed the result");
        e
    }

    #[test]
    fn errors_are_sentences_naming_chain_and_position() {
        let at = c4("INPUT");
        let e = err_of(Op::Delete {
            id: None,
            at: at.clone(),
            pos: 4,
        });
        assert_eq!(
            e,
            "IPv4 filter/INPUT: there is no rule 4 to delete: the chain has 3 rules"
        );
        let e = err_of(Op::Insert {
            above: None,
            at: at.clone(),
            pos: 5,
            rule: "-j ACCEPT".into(),
        });
        assert!(e.contains("position 5") && e.contains("1 to 4"), "{e}");
        let e = err_of(Op::Insert {
            above: None,
            at: at.clone(),
            pos: 0,
            rule: "-j ACCEPT".into(),
        });
        assert!(e.contains("position 0"), "{e}");
        let e = err_of(Op::Replace {
            id: None,
            at: c4("U"),
            pos: 2,
            rule: "-j ACCEPT".into(),
        });
        assert!(
            e.contains("IPv4 filter/U") && e.contains("has 1 rule"),
            "{e}"
        );
        let e = err_of(Op::Move {
            id: None,
            above: None,
            at: at.clone(),
            from: 1,
            to: 9,
        });
        assert!(e.contains("rule 9"), "{e}");
        let e = err_of(Op::Append {
            at: at.clone(),
            rule: "-m comment --comment \"open".into(),
        });
        assert!(e.contains("INPUT") && e.contains("never closed"), "{e}");
        let e = err_of(Op::Append {
            at: at.clone(),
            rule: "-j ACCEPT\n-A INPUT -j DROP".into(),
        });
        assert!(e.contains("control character"), "{e}");
        let e = err_of(Op::Append {
            at: at.clone(),
            rule: "-c 1 2 -j ACCEPT".into(),
        });
        assert!(e.contains("counters"), "{e}");
        let e = err_of(Op::Append {
            at: c4("NOPE"),
            rule: "-j ACCEPT".into(),
        });
        assert_eq!(e, "IPv4 filter/NOPE: there is no such chain");
        let e = err_of(Op::NewChain { at: c4("T") });
        assert_eq!(e, "IPv4 filter/T: a chain of that name already exists");
        let e = err_of(Op::NewChain { at: c4("INPUT") });
        assert!(e.contains("exists") || e.contains("built-in"), "{e}");
        for bad in ["", "-x", "a b", "ACCEPT", "0123456789012345678901234567890"] {
            let e = err_of(Op::NewChain { at: c4(bad) });
            assert!(e.contains("cannot be a chain name"), "{bad:?}: {e}");
        }
        let e = err_of(Op::SetPolicy {
            at: c4("T"),
            policy: "DROP".into(),
        });
        assert!(e.contains("user chain"), "{e}");
        let e = err_of(Op::SetPolicy {
            at: at.clone(),
            policy: "REJECT".into(),
        });
        assert!(e.contains("ACCEPT or DROP"), "{e}");
        let e = err_of(Op::DeleteChain {
            at: at.clone(),
            remove_references: true,
        });
        assert_eq!(
            e,
            "IPv4 filter/INPUT is a built-in chain and cannot be deleted"
        );
        let e = err_of(Op::RenameChain {
            at: at.clone(),
            to: "X".into(),
        });
        assert!(e.contains("renamed"), "{e}");
        let e = err_of(Op::RenameChain {
            at: c4("T"),
            to: "U".into(),
        });
        assert!(e.contains("filter/U") && e.contains("exists"), "{e}");
        let e = err_of(Op::Flush {
            at: ChainRef::new(Family::V4, "bogus", "X"),
        });
        assert!(e.contains("no table \"bogus\""), "{e}");
    }

    #[test]
    fn known_tables_and_families_are_created_on_use() {
        let mut s = Staging::new(vec![parse(BASE4, Family::V4).unwrap()]);
        let nat6 = ChainRef::new(Family::V6, "nat", "POSTROUTING");
        s.push(Op::Append {
            at: nat6.clone(),
            rule: "-o wan0 -j MASQUERADE".into(),
        })
        .unwrap();
        let r6 = s.result_for(Family::V6).unwrap();
        let nat = r6.table("nat").unwrap();
        assert_eq!(nat.chains.len(), 4);
        assert_eq!(nat.chain("POSTROUTING").unwrap().rules.len(), 1);
        assert!(s.base_for(Family::V6).is_none());
        // The whole table is new, so every chain of it is edited.
        let nat_chains: Vec<ChainRef> = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]
            .iter()
            .map(|c| ChainRef::new(Family::V6, "nat", c))
            .collect();
        assert_eq!(s.edited(), set(&nat_chains));
        assert!(s.edited().contains(&nat6));
        // A built-in chain missing from a table (a hand-written file) is made on use, and edited.
        let text = "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n";
        let mut s = Staging::new(vec![parse(text, Family::V4).unwrap()]);
        s.push(Op::SetPolicy {
            at: c4("OUTPUT"),
            policy: "DROP".into(),
        })
        .unwrap();
        let names: Vec<_> = s.result()[0].tables[0]
            .chains
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["INPUT", "OUTPUT"]);
        assert_eq!(s.edited(), set(&[c4("OUTPUT")]));
        // A refused op on a table that would be created leaves nothing behind.
        let mut s = Staging::new(vec![parse(BASE4, Family::V4).unwrap()]);
        assert!(
            s.push(Op::Delete {
                id: None,
                at: ChainRef::new(Family::V4, "mangle", "INPUT"),
                pos: 1
            })
            .is_err()
        );
        assert_eq!(s.result(), s.base());
        // Mangle goes before filter, as the save tools print them.
        s.push(Op::Flush {
            at: ChainRef::new(Family::V4, "mangle", "INPUT"),
        })
        .unwrap();
        let names: Vec<_> = s.result()[0]
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["mangle", "filter"]);
    }

    #[test]
    fn undo_redo() {
        let mut s = Staging::new(base());
        assert_eq!(s.undo(), None);
        assert_eq!(s.redo(), Ok(None));
        let a = Op::Delete {
            id: None,
            at: c4("INPUT"),
            pos: 1,
        };
        let b = Op::RenameChain {
            at: c4("T"),
            to: "T2".into(),
        };
        s.push(a).unwrap();
        s.push(b.clone()).unwrap();
        // Staged, the delete knows its rule by identity.
        let a = s.ops()[0].clone();
        assert_eq!(
            a,
            Op::Delete {
                at: c4("INPUT"),
                pos: 1,
                id: Some(RuleId {
                    text: "-i lo -j ACCEPT".into(),
                    nth: 0,
                    of: 1
                }),
            }
        );
        let after = s.result().to_vec();
        assert_eq!(s.undo(), Some(b.clone()));
        assert!(s.renames().is_empty());
        assert!(s.can_redo());
        assert_eq!(s.undo(), Some(a.clone()));
        assert_eq!(s.result(), s.base());
        assert!(s.edited().is_empty());
        assert_eq!(s.redo(), Ok(Some(a.clone())));
        assert_eq!(s.redo(), Ok(Some(b.clone())));
        assert!(!s.can_redo());
        assert_eq!(s.result(), &after[..]);
        assert_eq!(s.ops(), [a.clone(), b]);
        // A new op clears what could be redone.
        s.undo();
        s.push(Op::Flush { at: c4("U") }).unwrap();
        assert!(!s.can_redo());
        s.discard();
        assert!(s.is_empty() && !s.can_redo());
        assert_eq!(s.result(), s.base());
    }

    #[test]
    fn unstage_replays_the_rest_or_refuses() {
        let mut s = staged(vec![
            Op::NewChain { at: c4("X") },
            Op::Append {
                at: c4("INPUT"),
                rule: "-j LOG".into(),
            },
            Op::Append {
                at: c4("X"),
                rule: "-j ACCEPT".into(),
            },
        ]);
        let before = s.result().to_vec();
        let e = s.unstage(0).unwrap_err().to_string();
        assert_eq!(
            e,
            "operation 3 (IPv4 filter/X: append: -j ACCEPT) no longer applies: IPv4 filter/X: there is no such chain"
        );
        assert_eq!(s.ops().len(), 3);
        assert_eq!(s.result(), &before[..]);
        assert!(
            s.unstage(3)
                .unwrap_err()
                .to_string()
                .contains("no staged operation 4")
        );
        s.unstage(1).unwrap();
        assert_eq!(s.ops().len(), 2);
        assert_eq!(input(&s).len(), 3);
        assert_eq!(texts(&s, Family::V4, "filter", "X"), ["-j ACCEPT"]);
    }

    #[test]
    fn rebase_reapplies_or_names_what_no_longer_applies() {
        let s = staged(vec![
            Op::Delete {
                id: None,
                at: c4("INPUT"),
                pos: 3,
            },
            Op::Flush { at: c4("U") },
        ]);
        // The kernel moved: a rule was added to FORWARD.
        let moved = BASE4.replace("COMMIT", "-A FORWARD -j DROP\nCOMMIT");
        let now = vec![parse(&moved, Family::V4).unwrap()];
        let r = s.rebase(now.clone()).unwrap();
        assert_eq!(r.base(), &now[..]);
        assert_eq!(r.ops(), s.ops());
        assert_eq!(texts(&r, Family::V4, "filter", "FORWARD"), ["-j DROP"]);
        assert_eq!(r.edited(), s.edited());
        // INPUT lost a rule: position 3 is gone.
        let shorter = BASE4.replace("[3:30] -A INPUT -p tcp -j T\n", "");
        let e = s
            .rebase(vec![parse(&shorter, Family::V4).unwrap()])
            .unwrap_err();
        assert!(e.to_string().starts_with("operation 1 "), "{e}");
    }

    /// The reproduction of the rebase that deleted the wrong rule: another tool inserted at the
    /// top of INPUT while "delete rule 4" was staged.
    const FW: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p icmp -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n";

    fn fw(extra_top: &str) -> Vec<Ruleset> {
        let text = FW.replacen("-A INPUT -i lo", &format!("{extra_top}-A INPUT -i lo"), 1);
        vec![parse(&text, Family::V4).unwrap()]
    }

    #[test]
    fn rebase_finds_each_rule_by_identity_not_position() {
        let at = c4("INPUT");
        let mut s = Staging::new(fw(""));
        s.push(Op::Delete {
            at: at.clone(),
            pos: 4,
            id: None,
        })
        .unwrap();
        let now = fw("-A INPUT -s 192.0.2.66/32 -j DROP\n");
        let r = s.rebase(now).unwrap();
        assert_eq!(
            input(&r),
            [
                "-s 192.0.2.66/32 -j DROP",
                "-i lo -j ACCEPT",
                "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-p icmp -j ACCEPT",
                "-p tcp -m tcp --dport 80 -j ACCEPT",
            ]
        );
        // The operation now says where its rule is.
        assert_eq!(
            r.ops()[0].describe(),
            "IPv4 filter/INPUT: delete rule 5: -p tcp -m tcp --dport 22 -j ACCEPT"
        );

        // Replace, move and insert-above follow their rules too.
        let mut s = Staging::new(fw(""));
        for op in [
            Op::Replace {
                at: at.clone(),
                pos: 3,
                rule: "-p icmp --icmp-type 8 -j ACCEPT".into(),
                id: None,
            },
            Op::Move {
                at: at.clone(),
                from: 5,
                to: 1,
                id: None,
                above: None,
            },
            Op::Insert {
                at: at.clone(),
                pos: 5,
                rule: "-p tcp --dport 443 -j ACCEPT".into(),
                above: None,
            },
        ] {
            s.push(op).unwrap();
        }
        let before = input(&s);
        let r = s.rebase(fw("-A INPUT -s 192.0.2.66/32 -j DROP\n")).unwrap();
        // The rebased result is the old one with the other tool's rule where it put it.
        let mut want = before.clone();
        // The moved rule went above the first rule (lo), so the new top rule stays above it.
        want.insert(0, "-s 192.0.2.66/32 -j DROP".into());
        assert_eq!(input(&r), want);
    }

    #[test]
    fn rebase_refuses_by_name_when_the_rule_is_gone_or_ambiguous() {
        let at = c4("INPUT");
        let s = staged_on(
            fw(""),
            vec![Op::Delete {
                at: at.clone(),
                pos: 4,
                id: None,
            }],
        );
        let gone = FW.replace("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n", "");
        let e = s
            .rebase(vec![parse(&gone, Family::V4).unwrap()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "operation 1 (IPv4 filter/INPUT: delete rule 4: -p tcp -m tcp --dport 22 -j ACCEPT) no longer applies: IPv4 filter/INPUT: the rule you deleted, `-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT`, is no longer in INPUT"
        );
        // A second copy of the rule appeared: which one was meant cannot be told.
        let twice = fw("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n");
        let e = s.rebase(twice).unwrap_err().to_string();
        assert!(
            e.contains("is in INPUT 2 times now and was there 1 times"),
            "{e}"
        );
        // An insert above a rule that is gone is refused too, never put elsewhere.
        let s = staged_on(
            fw(""),
            vec![Op::Insert {
                at,
                pos: 4,
                rule: "-p tcp --dport 2222 -j ACCEPT".into(),
                above: None,
            }],
        );
        let e = s
            .rebase(vec![parse(&gone, Family::V4).unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("the rule your new rule goes above"), "{e}");
    }

    #[test]
    fn unstage_keeps_later_operations_on_their_rules() {
        let at = c4("INPUT");
        let mut s = staged_on(
            fw(""),
            vec![
                Op::Insert {
                    at: at.clone(),
                    pos: 1,
                    rule: "-j LOG".into(),
                    above: None,
                },
                // Rule 5 after the insert: the --dport 22 rule.
                Op::Delete {
                    at: at.clone(),
                    pos: 5,
                    id: None,
                },
            ],
        );
        s.unstage(0).unwrap();
        assert!(!input(&s).iter().any(|r| r.contains("dport 22")));
        assert!(input(&s).iter().any(|r| r.contains("dport 80")));
        assert_eq!(input(&s).len(), 4);
    }

    fn staged_on(base: Vec<Ruleset>, ops: Vec<Op>) -> Staging {
        let mut s = Staging::new(base);
        for op in ops {
            s.push(op).unwrap();
        }
        s
    }

    #[test]
    fn result_writes_and_reads_back() {
        let s = staged(vec![
            Op::Insert {
                above: None,
                at: c4("INPUT"),
                pos: 1,
                rule: "-m comment --comment 'a b' -j DROP".into(),
            },
            Op::NewChain { at: c4("LOGDROP") },
            Op::Zero { at: c4("T") },
        ]);
        for rs in s.result() {
            let text = write(rs, SaveOptions::default());
            assert_eq!(&parse(&text, rs.family).unwrap(), rs, "{text}");
        }
        let bare = write(
            &s.result()[0],
            SaveOptions {
                counters: CounterMode::Without,
                comments: false,
            },
        );
        assert!(bare.contains(":LOGDROP - [0:0]"), "{bare}");
    }

    proptest::proptest! {
        /// The spans that a rename rewrites are the words `words::split` reads, one for one.
        #[test]
        fn word_spans_cut_where_split_does(s in "[a-c\\- \t\"'\\\\é]{0,24}") {
            if let Ok(words) = words::split(&s) {
                let spans = word_spans(&s);
                proptest::prop_assert_eq!(spans.len(), words.len());
                for ((a, b), w) in spans.iter().zip(&words) {
                    let one = words::split(&s[*a..*b]).unwrap_or_default();
                    proptest::prop_assert_eq!(one, vec![w.clone()]);
                }
            }
        }
    }

    #[test]
    fn describe_and_serde() {
        let op = Op::Insert {
            above: None,
            at: c4("INPUT"),
            pos: 1,
            rule: "-p tcp --dport 22 -j ACCEPT".into(),
        };
        assert_eq!(
            op.describe(),
            "IPv4 filter/INPUT: insert at 1: -p tcp --dport 22 -j ACCEPT"
        );
        let json = serde_json::to_string(&op).unwrap();
        assert!(json.contains("\"op\":\"insert\""), "{json}");
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op);
        let odd = Op::Append {
            at: c4("INPUT"),
            rule: "a\nb".into(),
        };
        assert!(!odd.describe().contains('\n'));
        let all = [
            Op::Delete {
                id: None,
                at: c4("T"),
                pos: 2,
            },
            Op::Move {
                id: None,
                above: None,
                at: c4("T"),
                from: 1,
                to: 2,
            },
            Op::DeleteChain {
                at: c4("T"),
                remove_references: true,
            },
            Op::Zero { at: c4("T") },
        ];
        for op in all {
            assert!(op.describe().starts_with("IPv4 filter/T: "));
        }
    }
}
