//! Planning a commit (pure): which edited chains moved in the kernel since the base
//! (`conflicts`), the minimal `iptables-restore --noflush` script per table that turns the kernel
//! into the staged result while touching only the edited chains (`plan`), the input for
//! `restore --test` (`test_input`), and the check after the commit (`verify`).
//!
//! How a table's script is ordered, and why (see docs/edit.md, "Plan and apply"):
//!
//! 1. `-Z` for zeroed chains, first, so that what follows sets the counters it means to;
//! 2. `-N` for new chains (never a `:CHAIN` declaration: with `--noflush` it flushes an
//!    existing chain);
//! 3. per edited chain, the rules that go, by position from the bottom (or `-F` when the chain
//!    ends up empty), so the positions above stay valid;
//! 4. `-F` then `-X` for deleted chains, once no rule refers to them any more;
//! 5. per edited chain, the rules that come, by position ascending (a rule that only moved is
//!    re-inserted with `-c PKTS BYTES`); rules that stay are never touched and keep counting;
//! 6. `-P` for policies;
//! 7. `-E` for renames, last of all: after `-E` in a transaction the nf_tables tools (1.8.9)
//!    still know the chain by its old name only and the legacy tools by its new name only, so
//!    nothing may name a renamed chain after its `-E`. Rules inserted before it therefore name
//!    renamed chains by their old names, and the kernel renames those references with the chain.

use super::{ChainRef, TableChange};
use crate::ruleset::{Chain, Counters, Family, Ruleset, Table, builtin_chains, save, table_rank};
use similar::{Algorithm, DiffTag, capture_diff_slices};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Write;

/// An edited chain that changed in the kernel since the base was read: the commit is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The chain, by its name in the staged result.
    pub chain: ChainRef,
    /// Its lines in the base (`:NAME POLICY`, then `-A NAME ...`), without counters; empty when
    /// the chain did not exist.
    pub base: Vec<String>,
    /// Its lines in the kernel now, the same way.
    pub now: Vec<String>,
}

impl Conflict {
    /// One sentence for the user.
    pub fn describe(&self) -> String {
        let what = match (self.base.is_empty(), self.now.is_empty()) {
            (false, true) => "was deleted".to_string(),
            (true, false) => "was created".to_string(),
            _ => format!(
                "changed ({} rules when it was read, {} now)",
                self.base.len().saturating_sub(1),
                self.now.len().saturating_sub(1)
            ),
        };
        format!(
            "{} {what} in the kernel since the changes were staged, by another program or person; \
             the commit is refused so as not to undo their change: re-read the rule set and stage again (or rebase)",
            self.chain
        )
    }
}

/// The chains of one table by name, with the kernel's view of built-in chains: one that is not
/// listed exists all the same, empty, with policy ACCEPT. An index because kube-proxy tables
/// hold tens of thousands of chains, and a search per chain made planning quadratic (22 s for
/// 18,000 chains).
struct TableIndex<'a> {
    name: &'a str,
    chains: HashMap<&'a str, &'a Chain>,
}

impl<'a> TableIndex<'a> {
    fn new(name: &'a str, table: Option<&'a Table>) -> Self {
        TableIndex {
            name,
            chains: table
                .map(|t| t.chains.iter().map(|c| (c.name.as_str(), c)).collect())
                .unwrap_or_default(),
        }
    }

    /// Whether the table lists the chain (built-in chains included only when listed).
    fn lists(&self, chain: &str) -> bool {
        self.chains.contains_key(chain)
    }

    fn get(&self, chain: &str) -> Option<Cow<'a, Chain>> {
        if let Some(c) = self.chains.get(chain) {
            return Some(Cow::Borrowed(*c));
        }
        builtin_chains(self.name)
            .contains(&chain)
            .then(|| Cow::Owned(empty_chain(chain, Some("ACCEPT"))))
    }
}

fn empty_chain(name: &str, policy: Option<&str>) -> Chain {
    Chain {
        name: name.to_string(),
        policy: policy.map(str::to_string),
        counters: Counters::default(),
        rules: Vec::new(),
    }
}

/// The tables of some rule sets by family and name.
struct Index<'a>(HashMap<(Family, &'a str), TableIndex<'a>>);

impl<'a> Index<'a> {
    fn of(rs: &'a [Ruleset]) -> Self {
        Index(
            rs.iter()
                .flat_map(|r| {
                    r.tables.iter().map(move |t| {
                        (
                            (r.family, t.name.as_str()),
                            TableIndex::new(&t.name, Some(t)),
                        )
                    })
                })
                .collect(),
        )
    }

    /// A chain's lines (see `chain_lines`).
    fn lines(&self, at: &ChainRef, chain: &str) -> Vec<String> {
        let c = match self.0.get(&(at.family, at.table.as_str())) {
            Some(t) => t.get(chain),
            None => TableIndex::new(&at.table, None).get(chain),
        };
        chain_lines(c.as_deref())
    }
}

/// A chain's lines without counters: `:NAME POLICY`, then one `-A NAME ...` per rule. Empty
/// when the chain does not exist. What "the same chain" means to a commit.
pub fn chain_lines(chain: Option<&Chain>) -> Vec<String> {
    let Some(c) = chain else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(c.rules.len() + 1);
    out.push(format!(
        ":{} {}",
        c.name,
        c.policy.as_deref().unwrap_or("-")
    ));
    out.extend(
        c.rules
            .iter()
            .map(|r| save::rule_line(&c.name, r, save::CounterMode::Without)),
    );
    out
}

/// The base name of a chain known by its result name.
fn old_name<'a>(renames: &'a [(ChainRef, String)], at: &'a ChainRef) -> &'a str {
    renames
        .iter()
        .find(|(from, to)| from.family == at.family && from.table == at.table && *to == at.chain)
        .map_or(at.chain.as_str(), |(from, _)| from.chain.as_str())
}

/// Chains the user edited that changed in the kernel since the base (their rules, order,
/// policy or existence; counters do not count). A renamed chain is compared under its base
/// name, and its new name must still be free.
pub fn conflicts(
    base: &[Ruleset],
    now: &[Ruleset],
    edited: &BTreeSet<ChainRef>,
    renames: &[(ChainRef, String)],
) -> Vec<Conflict> {
    let (base, now) = (Index::of(base), Index::of(now));
    let mut out = Vec::new();
    for at in edited {
        let src = old_name(renames, at);
        let mut names = vec![src];
        if src != at.chain {
            names.push(&at.chain);
        }
        for name in names {
            let (b, n) = (base.lines(at, name), now.lines(at, name));
            if b != n {
                out.push(Conflict {
                    chain: at.clone(),
                    base: b,
                    now: n,
                });
                break;
            }
        }
    }
    out
}

/// Every table of a family in either rule set, in the order packets meet them.
fn table_names<'a>(a: Option<&'a Ruleset>, b: Option<&'a Ruleset>) -> Vec<&'a str> {
    let mut names: Vec<&str> = a
        .into_iter()
        .chain(b)
        .flat_map(|r| r.tables.iter().map(|t| t.name.as_str()))
        .collect();
    names.sort_by_key(|n| (table_rank(n), *n));
    names.dedup();
    names
}

fn chain_names<'a>(a: Option<&'a Table>, b: Option<&'a Table>) -> BTreeSet<&'a str> {
    a.into_iter()
        .chain(b)
        .flat_map(|t| t.chains.iter().map(|c| c.name.as_str()))
        .collect()
}

/// Every (family, table) of either side, IPv4 first, tables in packet order, with the table on
/// each side.
fn table_pairs<'a>(
    a: &'a [Ruleset],
    b: &'a [Ruleset],
) -> Vec<(Family, &'a str, Option<&'a Table>, Option<&'a Table>)> {
    let mut out = Vec::new();
    for family in Family::ALL {
        let (x, y) = (
            a.iter().find(|r| r.family == family),
            b.iter().find(|r| r.family == family),
        );
        for table in table_names(x, y) {
            out.push((
                family,
                table,
                x.and_then(|r| r.table(table)),
                y.and_then(|r| r.table(table)),
            ));
        }
    }
    out
}

/// Chains whose rules (text and order), policy or existence differ between two rule sets;
/// counters are ignored. What `nfscope apply FILE` edits (a file knows nothing of renames: a
/// renamed chain is one deleted and one new).
pub fn changed_chains(base: &[Ruleset], staged: &[Ruleset]) -> BTreeSet<ChainRef> {
    let mut out = BTreeSet::new();
    for (family, table, bt, st) in table_pairs(base, staged) {
        let (bi, si) = (TableIndex::new(table, bt), TableIndex::new(table, st));
        for name in chain_names(bt, st) {
            let x = chain_lines(bi.get(name).as_deref());
            let y = chain_lines(si.get(name).as_deref());
            if x != y {
                out.insert(ChainRef::new(family, table, name));
            }
        }
    }
    out
}

/// The byte ranges of the words of a rule text, and whether each is plain (no quote, no
/// backslash): only plain words can be options or chain names that `retarget` rewrites.
fn word_spans(text: &str) -> Vec<(usize, usize, bool)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut plain = true;
        let mut quote: Option<u8> = None;
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == b'\\' => i += 1,
                Some(_) => {}
                None if c.is_ascii_whitespace() => break,
                None if c == b'"' || c == b'\'' => {
                    plain = false;
                    quote = Some(c);
                }
                None if c == b'\\' => {
                    plain = false;
                    i += 1;
                }
                None => {}
            }
            i += 1;
        }
        out.push((start, i.min(b.len()), plain));
    }
    out
}

/// The rule text with the chain it jumps or goes to renamed by `map`.
fn retarget<'a>(text: &'a str, map: &HashMap<&str, &str>) -> Cow<'a, str> {
    if map.is_empty() {
        return Cow::Borrowed(text);
    }
    let spans = word_spans(text);
    let mut out: Option<String> = None;
    let mut shift: isize = 0;
    for pair in spans.windows(2) {
        let ((a0, a1, ap), (b0, b1, bp)) = (pair[0], pair[1]);
        if !(ap && bp && matches!(&text[a0..a1], "-j" | "--jump" | "-g" | "--goto")) {
            continue;
        }
        if let Some(to) = map.get(&text[b0..b1]) {
            let s = out.get_or_insert_with(|| text.to_string());
            let (from, upto) = (b0 as isize + shift, b1 as isize + shift);
            s.replace_range(from as usize..upto as usize, to);
            shift += to.len() as isize - (b1 - b0) as isize;
        }
    }
    out.map_or(Cow::Borrowed(text), Cow::Owned)
}

/// One table's renames, both ways.
struct Names<'a> {
    /// (old, new) in the order given.
    pairs: Vec<(&'a str, &'a str)>,
    old_to_new: HashMap<&'a str, &'a str>,
    new_to_old: HashMap<&'a str, &'a str>,
}

impl<'a> Names<'a> {
    fn new(pairs: Vec<(&'a str, &'a str)>) -> Self {
        Names {
            old_to_new: pairs.iter().copied().collect(),
            new_to_old: pairs.iter().map(|&(a, b)| (b, a)).collect(),
            pairs,
        }
    }
}

/// A script being written: its lines and the chains it touches.
struct Script {
    lines: String,
    chains: BTreeSet<String>,
}

impl Script {
    fn cmd(&mut self, chain: &str, line: std::fmt::Arguments) {
        let _ = self.lines.write_fmt(line);
        self.lines.push('\n');
        self.chains.insert(chain.to_string());
    }
}

/// Above this many pairs of rules (old × new), an exact diff may take minutes (Myers is
/// O((N+M)·D): reversing a 20,000-rule chain took 100 s), so a chain that large is compared by
/// `by_unique_text` instead.
const EXACT_DIFF_LIMIT: usize = 1 << 22;

/// The positions of `old` that are not in the common part, and those of `new`: exact (a
/// longest common subsequence) for chains up to `EXACT_DIFF_LIMIT`, and above it exact as long
/// as no two rules of a chain share a text (nearly always; otherwise still a common
/// subsequence, perhaps not the longest, so a few more rules than needed are re-inserted).
fn not_in_common(old: &[&str], new: &[&str]) -> (Vec<usize>, Vec<usize>) {
    let mut gone = Vec::new();
    let mut come = Vec::new();
    if old.len().saturating_mul(new.len()) <= EXACT_DIFF_LIMIT {
        for op in capture_diff_slices(Algorithm::Myers, old, new) {
            let (tag, o, n) = op.as_tag_tuple();
            if tag != DiffTag::Equal {
                gone.extend(o);
                come.extend(n);
            }
        }
        return (gone, come);
    }
    let (keep_old, keep_new) = by_unique_text(old, new);
    gone.extend((0..old.len()).filter(|&i| !keep_old[i]));
    come.extend((0..new.len()).filter(|&j| !keep_new[j]));
    (gone, come)
}

/// A common subsequence in O(n log n): the k-th rule with a given text in `new` pairs with the
/// k-th one in `old`, and the longest increasing run of paired positions is kept. When texts
/// are unique this is a longest common subsequence. Returns which positions are kept.
fn by_unique_text(old: &[&str], new: &[&str]) -> (Vec<bool>, Vec<bool>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut at: HashMap<(&str, usize), usize> = HashMap::with_capacity(old.len());
    for (i, t) in old.iter().enumerate() {
        let k = seen.entry(t).or_default();
        at.insert((t, *k), i);
        *k += 1;
    }
    seen.clear();
    // (position in new, paired position in old)
    let pairs: Vec<(usize, usize)> = new
        .iter()
        .enumerate()
        .filter_map(|(j, t)| {
            let k = seen.entry(t).or_default();
            *k += 1;
            at.get(&(*t, *k - 1)).map(|&i| (j, i))
        })
        .collect();
    // Longest increasing subsequence of the old positions (patience sorting with back links).
    let mut tails: Vec<usize> = Vec::new(); // index into pairs of the smallest tail per length
    let mut back: Vec<Option<usize>> = vec![None; pairs.len()];
    for (p, &(_, i)) in pairs.iter().enumerate() {
        let len = tails.partition_point(|&q| pairs[q].1 < i);
        back[p] = len.checked_sub(1).map(|l| tails[l]);
        if len == tails.len() {
            tails.push(p);
        } else {
            tails[len] = p;
        }
    }
    let (mut keep_old, mut keep_new) = (vec![false; old.len()], vec![false; new.len()]);
    let mut cur = tails.last().copied();
    while let Some(p) = cur {
        let (j, i) = pairs[p];
        keep_new[j] = true;
        keep_old[i] = true;
        cur = back[p];
    }
    (keep_old, keep_new)
}

/// How the rules of one chain change: the positions (0-based, in `from`) that go, and the
/// positions (0-based, in `to`) that come, each with the counters to give it.
fn rule_edits(
    from: &Chain,
    to: &Chain,
    names: &Names,
    zeroed: bool,
) -> (Vec<usize>, Vec<(usize, Option<Counters>)>) {
    // The kernel's rules as they will read once the renames are done.
    let old: Vec<Cow<str>> = from
        .rules
        .iter()
        .map(|r| retarget(&r.text, &names.old_to_new))
        .collect();
    let new: Vec<&str> = to.rules.iter().map(|r| r.text.as_str()).collect();
    let old_refs: Vec<&str> = old.iter().map(|c| c.as_ref()).collect();
    let (gone, come) = not_in_common(&old_refs, &new);
    // A rule that goes and comes back with the same text only moved: it keeps its counters.
    let mut moved: HashMap<&str, VecDeque<Option<Counters>>> = HashMap::new();
    for &i in &gone {
        moved
            .entry(old_refs[i])
            .or_default()
            .push_back(from.rules[i].counters);
    }
    let come = come
        .into_iter()
        .map(|j| {
            let paired = moved.get_mut(new[j]).and_then(VecDeque::pop_front);
            let counters = if zeroed {
                None
            } else {
                paired.unwrap_or(to.rules[j].counters)
            };
            (j, counters.filter(|c| *c != Counters::default()))
        })
        .collect();
    (gone, come)
}

/// The chain of `from` that chain `n` of the target continues: its old name when renamed, the
/// same name when it exists and is not renamed away, `None` for a new chain.
fn source_of<'n, 'a: 'n>(from: &TableIndex, names: &Names<'a>, n: &'n str) -> Option<&'n str> {
    let exists = |c: &str| from.get(c).is_some();
    match names.new_to_old.get(n) {
        Some(old) => exists(old).then_some(*old),
        None => (exists(n) && !names.old_to_new.contains_key(n)).then_some(n),
    }
}

/// The `--noflush` script that turns table `from` into table `to` for the chains in `edited`
/// (names in `to`), with `renames` (old, new) and `zeroed` (names in `to`). `None` when nothing
/// changes.
fn table_script(
    name: &str,
    from: Option<&Table>,
    to: Option<&Table>,
    edited: &BTreeSet<&str>,
    names: &Names,
    zeroed: &BTreeSet<&str>,
) -> Option<(String, Vec<String>)> {
    let builtin = builtin_chains(name);
    let (fidx, tidx) = (TableIndex::new(name, from), TableIndex::new(name, to));
    // The target's chains, and the built-in chains it does not list (they stay, empty).
    let mut to_chains: Vec<Cow<Chain>> =
        to.map_or_else(Vec::new, |t| t.chains.iter().map(Cow::Borrowed).collect());
    for b in builtin {
        if !tidx.lists(b) && fidx.lists(b) {
            to_chains.extend(tidx.get(b));
        }
    }
    let is_edited = |n: &str| edited.contains(n);
    let sources: BTreeSet<&str> = to_chains
        .iter()
        .filter_map(|c| source_of(&fidx, names, &c.name))
        .collect();
    let deleted: Vec<&Chain> = from
        .map_or(&[][..], |t| &t.chains[..])
        .iter()
        .filter(|c| {
            is_edited(&c.name)
                && !builtin.contains(&c.name.as_str())
                && !names.old_to_new.contains_key(c.name.as_str())
                && !sources.contains(c.name.as_str())
        })
        .collect();

    let mut s = Script {
        lines: String::new(),
        chains: BTreeSet::new(),
    };
    // 1. Zero first: what follows sets the counters it means to.
    for c in &to_chains {
        if zeroed.contains(c.name.as_str())
            && let Some(src) = source_of(&fidx, names, &c.name)
        {
            s.cmd(&c.name, format_args!("-Z {src}"));
        }
    }
    // 2. New chains.
    for c in &to_chains {
        if is_edited(&c.name)
            && source_of(&fidx, names, &c.name).is_none()
            && !builtin.contains(&c.name.as_str())
        {
            s.cmd(&c.name, format_args!("-N {}", c.name));
        }
    }
    // 3. Rules that go, bottom up; a chain that ends up empty is flushed.
    let mut inserts = Vec::new();
    for c in &to_chains {
        if !is_edited(&c.name) {
            continue;
        }
        let empty = empty_chain(&c.name, None);
        let src_name = source_of(&fidx, names, &c.name);
        let src = src_name.and_then(|n| fidx.get(n));
        let from_chain = src.as_deref().unwrap_or(&empty);
        let (gone, come) = rule_edits(from_chain, c, names, zeroed.contains(c.name.as_str()));
        // The kernel's name for the chain until the renames at the end.
        let kname = src_name.unwrap_or(&c.name);
        if c.rules.is_empty() && !from_chain.rules.is_empty() {
            s.cmd(&c.name, format_args!("-F {kname}"));
        } else {
            for &i in gone.iter().rev() {
                s.cmd(&c.name, format_args!("-D {kname} {}", i + 1));
            }
        }
        let kept = from_chain.rules.len() - gone.len();
        inserts.push((c, kname, come, kept));
    }
    // 4. Deleted chains, now that nothing refers to them.
    for c in &deleted {
        if !c.rules.is_empty() {
            s.cmd(&c.name, format_args!("-F {}", c.name));
        }
    }
    for c in &deleted {
        s.cmd(&c.name, format_args!("-X {}", c.name));
    }
    // 5. Rules that come, top down; they name renamed chains by their old names.
    for (c, kname, come, mut len) in inserts {
        for (j, counters) in come {
            let text = retarget(&c.rules[j].text, &names.new_to_old);
            let cnt = match counters {
                Some(k) if c.rules[j].spec.inline_counters.is_none() => {
                    format!(" -c {} {}", k.packets, k.bytes)
                }
                _ => String::new(),
            };
            let sep = if text.is_empty() { "" } else { " " };
            if j == len {
                s.cmd(&c.name, format_args!("-A {kname}{cnt}{sep}{text}"));
            } else {
                s.cmd(
                    &c.name,
                    format_args!("-I {kname} {}{cnt}{sep}{text}", j + 1),
                );
            }
            len += 1;
        }
    }
    // 6. Policies.
    for c in &to_chains {
        if !is_edited(&c.name) {
            continue;
        }
        let (Some(policy), Some(src)) = (c.policy.as_deref(), source_of(&fidx, names, &c.name))
        else {
            continue;
        };
        let was = fidx.get(src).and_then(|k| k.policy.clone());
        if was.as_deref() != Some(policy) {
            s.cmd(&c.name, format_args!("-P {src} {policy}"));
        }
    }
    // 7. Renames, last; one whose new name another rename frees goes after it.
    let mut pending: Vec<(&str, &str)> = names
        .pairs
        .iter()
        .copied()
        .filter(|(old, new)| fidx.lists(old) && tidx.lists(new))
        .collect();
    while !pending.is_empty() {
        let free = pending
            .iter()
            .position(|(_, new)| !pending.iter().any(|(old, _)| old == new))
            .unwrap_or(0);
        let (old, new) = pending.remove(free);
        s.cmd(new, format_args!("-E {old} {new}"));
    }
    if s.lines.is_empty() {
        return None;
    }
    Some((
        format!("*{name}\n{}COMMIT\n", s.lines),
        s.chains.into_iter().collect(),
    ))
}

/// The minimal `--noflush` scripts, one per table that changes (IPv4 first, tables in the
/// order packets meet them), each with its undo. See the module's documentation for the order
/// inside a script. `now` is the kernel as re-read (equal to the base on the edited chains, or
/// `conflicts` said otherwise); `edited` and `zeroed` name chains as in `staged`, `renames`
/// gives (chain in `now`, new name).
pub fn plan(
    now: &[Ruleset],
    staged: &[Ruleset],
    edited: &BTreeSet<ChainRef>,
    renames: &[(ChainRef, String)],
    zeroed: &BTreeSet<ChainRef>,
) -> Vec<TableChange> {
    let mut out = Vec::new();
    for (family, table, nt, st) in table_pairs(now, staged) {
        let here = |c: &&ChainRef| c.family == family && c.table == table;
        let pairs: Vec<(&str, &str)> = renames
            .iter()
            .filter(|(c, _)| here(&c))
            .map(|(c, to)| (c.chain.as_str(), to.as_str()))
            .collect();
        let fwd = Names::new(pairs.clone());
        let back = Names::new(pairs.iter().map(|&(a, b)| (b, a)).collect());
        let ed: BTreeSet<&str> = edited
            .iter()
            .filter(here)
            .map(|c| c.chain.as_str())
            .collect();
        let ed_back: BTreeSet<&str> = ed
            .iter()
            .map(|c| fwd.new_to_old.get(c).copied().unwrap_or(c))
            .collect();
        let zero: BTreeSet<&str> = zeroed
            .iter()
            .filter(here)
            .map(|c| c.chain.as_str())
            .collect();
        let Some((script, chains)) = table_script(table, nt, st, &ed, &fwd, &zero) else {
            continue;
        };
        let undo = table_script(table, st, nt, &ed_back, &back, &BTreeSet::new())
            .map_or_else(|| format!("*{table}\nCOMMIT\n"), |(u, _)| u);
        out.push(TableChange {
            family,
            table: table.to_string(),
            chains,
            script,
            undo,
        });
    }
    out
}

/// The staged rule set of a family whole, without counters or comments: the input for
/// `restore --test`. `None` when there is none for that family.
pub fn test_input(staged: &[Ruleset], f: Family) -> Option<String> {
    staged.iter().find(|r| r.family == f).map(|rs| {
        save::write(
            rs,
            save::SaveOptions {
                counters: save::CounterMode::Without,
                comments: false,
            },
        )
    })
}

/// After the commit: do the edited chains in the kernel hold exactly the staged rules and
/// policy (counters aside)? Each difference as a sentence.
pub fn verify(
    after: &[Ruleset],
    staged: &[Ruleset],
    edited: &BTreeSet<ChainRef>,
) -> Result<(), Vec<String>> {
    let (after, staged) = (Index::of(after), Index::of(staged));
    let mut problems = Vec::new();
    for at in edited {
        let (a, s) = (after.lines(at, &at.chain), staged.lines(at, &at.chain));
        if a == s {
            continue;
        }
        problems.push(match (a.is_empty(), s.is_empty()) {
            (true, _) => format!("{at} should exist after the commit but is missing"),
            (_, true) => format!("{at} should be gone after the commit but is still there"),
            _ => {
                let i = a.iter().zip(&s).take_while(|(x, y)| x == y).count();
                let (ka, ks) = (a.get(i), s.get(i));
                let show = |l: Option<&String>| l.map_or("nothing".to_string(), |l| format!("{l:?}"));
                if i == 0 {
                    format!("{at} has policy line {} where {} was staged", show(ka), show(ks))
                } else {
                    format!(
                        "{at} differs from what was staged at rule {i}: the kernel has {}, the staged result {}",
                        show(ka),
                        show(ks)
                    )
                }
            }
        });
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::{Rule, parse};
    use proptest::prelude::*;

    fn rs(text: &str) -> Vec<Ruleset> {
        vec![parse(text, Family::V4).expect("test input parses")]
    }

    fn at(chain: &str) -> ChainRef {
        ChainRef::new(Family::V4, "filter", chain)
    }

    fn set(chains: &[&str]) -> BTreeSet<ChainRef> {
        chains.iter().map(|c| at(c)).collect()
    }

    /// Run a `--noflush` script on a model table, the way both backends agree on: a renamed
    /// chain may not be named again, by either name, after its `-E` (nf_tables knows only the
    /// old name, legacy only the new one).
    fn run(table: &mut Table, script: &str) -> Result<(), String> {
        let mut renamed: BTreeSet<String> = BTreeSet::new();
        let mut lines = script.lines();
        if lines.next() != Some(&format!("*{}", table.name)) {
            return Err("no table line".into());
        }
        for line in lines {
            if line == "COMMIT" {
                return Ok(());
            }
            let (cmd, rest) = line.split_once(' ').ok_or("no command")?;
            let (chain, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            let touches = |n: &str| renamed.contains(n);
            let target = Rule::from_text(rest, None)
                .ok()
                .and_then(|r| r.spec.target.map(|t| t.name.to_string()));
            if touches(chain) || target.as_deref().is_some_and(touches) {
                return Err(format!("{line:?} names a chain renamed earlier"));
            }
            let idx = table.chain_index(chain);
            let builtin = builtin_chains(&table.name).contains(&chain);
            if idx.is_none() && builtin {
                table.chains.push(Chain {
                    name: chain.into(),
                    policy: Some("ACCEPT".into()),
                    counters: Counters::default(),
                    rules: Vec::new(),
                });
            }
            let idx = table.chain_index(chain);
            let need = || idx.ok_or(format!("{line:?}: no chain {chain}"));
            let rule_at = |rest: &str| -> Result<(usize, Rule), String> {
                let (pos, rest) = match rest.split_once(' ') {
                    Some((p, r)) if p.parse::<usize>().is_ok() => (p.parse().unwrap(), r),
                    _ => (0, rest),
                };
                let rule = Rule::from_text(rest, None)?;
                if let Some(t) = &rule.spec.target
                    && !crate::ruleset::is_standard_target(&t.name)
                    && t.name.chars().any(|c| c.is_ascii_lowercase())
                    && table.chain(&t.name).is_none()
                {
                    return Err(format!("{line:?}: no chain {}", t.name));
                }
                Ok((pos, rule))
            };
            match cmd {
                "-N" => {
                    if idx.is_some() {
                        return Err(format!("{line:?}: exists"));
                    }
                    table.chains.push(Chain {
                        name: chain.into(),
                        policy: None,
                        counters: Counters::default(),
                        rules: Vec::new(),
                    });
                }
                "-A" | "-I" => {
                    let i = need()?;
                    let (pos, mut rule) = rule_at(rest)?;
                    rule.counters = rule.spec.inline_counters;
                    let rules = &mut table.chains[i].rules;
                    let pos = if cmd == "-A" { rules.len() + 1 } else { pos };
                    if pos == 0 || pos > rules.len() + 1 {
                        return Err(format!("{line:?}: index too big"));
                    }
                    // The model keeps rule texts without the inline counters.
                    let text = rule.text.split(" -c ").next().unwrap_or("").to_string();
                    let text = match rule.spec.inline_counters {
                        Some(c) => rule
                            .text
                            .replacen(&format!("-c {} {}", c.packets, c.bytes), "", 1)
                            .trim()
                            .to_string(),
                        None => text,
                    };
                    let text =
                        if rule.text.starts_with("-c ") || rule.spec.inline_counters.is_some() {
                            text
                        } else {
                            rule.text.clone()
                        };
                    rule.text = text.clone();
                    rule.spec = Rule::from_text(&text, None)?.spec;
                    rules.insert(pos - 1, rule);
                }
                "-D" => {
                    let i = need()?;
                    let pos: usize = rest.parse().map_err(|_| format!("{line:?}: position"))?;
                    let rules = &mut table.chains[i].rules;
                    if pos == 0 || pos > rules.len() {
                        return Err(format!("{line:?}: no such rule"));
                    }
                    rules.remove(pos - 1);
                }
                "-F" => table.chains[need()?].rules.clear(),
                "-Z" => {
                    let c = &mut table.chains[need()?];
                    c.counters = Counters::default();
                    for r in &mut c.rules {
                        r.counters = Some(Counters::default());
                    }
                }
                "-X" => {
                    let i = need()?;
                    if builtin || !table.chains[i].rules.is_empty() || table.references(chain) > 0 {
                        return Err(format!("{line:?}: busy"));
                    }
                    table.chains.remove(i);
                }
                "-P" => {
                    let i = need()?;
                    if !builtin {
                        return Err(format!("{line:?}: not built in"));
                    }
                    table.chains[i].policy = Some(rest.to_string());
                }
                "-E" => {
                    let i = need()?;
                    if table.chain(rest).is_some() {
                        return Err(format!("{line:?}: exists"));
                    }
                    table.chains[i].name = rest.to_string();
                    let map = HashMap::from([(chain, rest)]);
                    for c in &mut table.chains {
                        for r in &mut c.rules {
                            let t = retarget(&r.text, &map).into_owned();
                            if t != r.text {
                                *r = Rule {
                                    counters: r.counters,
                                    ..Rule::from_text(&t, None)?
                                };
                            }
                        }
                    }
                    renamed.insert(chain.to_string());
                    renamed.insert(rest.to_string());
                }
                other => return Err(format!("unknown command {other}")),
            }
        }
        Err("no COMMIT".into())
    }

    /// The chains of a table, sorted, without counters.
    fn shape(t: Option<&Table>) -> Vec<Vec<String>> {
        let mut v: Vec<Vec<String>> = t
            .map(|t| t.chains.iter().map(|c| chain_lines(Some(c))).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Apply the plan (and then its undo) to the model, and check both land where they should.
    fn check_round_trip(
        now: &[Ruleset],
        staged: &[Ruleset],
        edited: &BTreeSet<ChainRef>,
        renames: &[(ChainRef, String)],
        zeroed: &BTreeSet<ChainRef>,
    ) -> Vec<TableChange> {
        let changes = plan(now, staged, edited, renames, zeroed);
        let mut model = now[0].clone();
        for ch in &changes {
            let t = model.table_mut(&ch.table).expect("table in the model");
            run(t, &ch.script).unwrap_or_else(|e| panic!("{e}\n{}", ch.script));
        }
        for t in table_names(Some(&staged[0]), Some(&model)) {
            assert_eq!(
                shape(model.table(t)),
                shape(staged[0].table(t)),
                "{changes:#?}"
            );
        }
        for ch in changes.iter().rev() {
            let t = model.table_mut(&ch.table).expect("table in the model");
            run(t, &ch.undo).unwrap_or_else(|e| panic!("undo: {e}\n{}", ch.undo));
        }
        for t in table_names(Some(&now[0]), Some(&model)) {
            assert_eq!(shape(model.table(t)), shape(now[0].table(t)), "undo");
        }
        changes
    }

    /// The plan from `now` to `staged` (nothing zeroed), checked on the model both ways; the
    /// first table's script.
    fn script_for(now: &str, staged: &str, edited: &[&str], renames: &[(&str, &str)]) -> String {
        let renames: Vec<(ChainRef, String)> = renames
            .iter()
            .map(|(a, b)| (at(a), b.to_string()))
            .collect();
        let changes = check_round_trip(
            &rs(now),
            &rs(staged),
            &set(edited),
            &renames,
            &BTreeSet::new(),
        );
        changes
            .first()
            .map(|c| c.script.clone())
            .unwrap_or_default()
    }

    const BASE: &str = "*filter\n:INPUT ACCEPT [9:900]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:T - [0:0]\n:U - [0:0]\n:Z - [0:0]\n\
[1:10] -A INPUT -s 10.0.0.1/32 -j ACCEPT\n[2:20] -A INPUT -s 10.0.0.2/32 -j ACCEPT\n[3:30] -A INPUT -s 10.0.0.3/32 -j T\n\
[4:40] -A INPUT -s 10.0.0.4/32 -j U\n[5:50] -A INPUT -s 10.0.0.5/32 -j DROP\n[6:60] -A FORWARD -j DROP\n[7:70] -A FORWARD -j ACCEPT\n\
[8:80] -A T -j RETURN\n[9:90] -A U -j RETURN\n[10:100] -A Z -j RETURN\n[11:110] -A OUTPUT -j ACCEPT\nCOMMIT\n";

    /// Every kind of operation: insert at 1, move (rule 5 to 2), replace (rule 2, now 4), delete (the
    /// jump to U), append a jump to a new chain, rename T to T2 (references follow), delete U,
    /// policy DROP, flush FORWARD, zero Z.
    const STAGED: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:NEW - [0:0]\n:T2 - [0:0]\n:Z - [0:0]\n\
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n[5:50] -A INPUT -s 10.0.0.5/32 -j DROP\n[1:10] -A INPUT -s 10.0.0.1/32 -j ACCEPT\n-A INPUT -s 10.0.0.9/32 -j ACCEPT\n\
[3:30] -A INPUT -s 10.0.0.3/32 -j T2\n-A INPUT -j NEW\n-A NEW -j LOG\n[8:80] -A T2 -j RETURN\n[10:100] -A Z -j RETURN\n[11:110] -A OUTPUT -j ACCEPT\nCOMMIT\n";

    fn every_op() -> (Vec<Ruleset>, Vec<Ruleset>, Vec<(ChainRef, String)>) {
        (rs(BASE), rs(STAGED), vec![(at("T"), "T2".into())])
    }

    #[test]
    fn every_kind_of_op_is_planned_in_a_safe_order() {
        let (base, staged, renames) = every_op();
        let edited = set(&["INPUT", "FORWARD", "NEW", "T2", "U", "Z"]);
        let changes = check_round_trip(&base, &staged, &edited, &renames, &set(&["Z"]));
        assert_eq!(changes.len(), 1);
        let ch = &changes[0];
        assert_eq!(
            ch.script,
            "*filter\n-Z Z\n-N NEW\n-D INPUT 5\n-D INPUT 4\n-D INPUT 2\n-F FORWARD\n-F U\n-X U\n\
-I INPUT 1 -p tcp -m tcp --dport 22 -j ACCEPT\n-I INPUT 2 -c 5 50 -s 10.0.0.5/32 -j DROP\n\
-I INPUT 4 -s 10.0.0.9/32 -j ACCEPT\n-A INPUT -j NEW\n-A NEW -j LOG\n-P INPUT DROP\n-E T T2\nCOMMIT\n"
        );
        assert_eq!(ch.chains, ["FORWARD", "INPUT", "NEW", "T2", "U", "Z"]);
        // OUTPUT was not edited: never named.
        assert!(!ch.script.contains("OUTPUT") && !ch.undo.contains("OUTPUT"));
        // The undo brings back the deleted rules and chains with their counters.
        assert!(ch.undo.contains("-N U\n"), "{}", ch.undo);
        assert!(ch.undo.contains("-c 9 90 -j RETURN"), "{}", ch.undo);
        assert!(
            ch.undo.contains("-c 4 40 -s 10.0.0.4/32 -j U"),
            "{}",
            ch.undo
        );
        assert!(
            ch.undo.ends_with("-P INPUT ACCEPT\n-E T2 T\nCOMMIT\n"),
            "{}",
            ch.undo
        );
    }

    #[test]
    fn rules_that_stay_are_never_named() {
        let (base, staged, renames) = every_op();
        let edited = set(&["INPUT", "FORWARD", "NEW", "T2", "U", "Z"]);
        let ch = &plan(&base, &staged, &edited, &renames, &BTreeSet::new())[0];
        for kept in ["10.0.0.1/32", "10.0.0.3/32", "-A T", "-A Z"] {
            assert!(!ch.script.contains(kept), "{kept} in\n{}", ch.script);
        }
    }

    #[test]
    fn chains_not_edited_are_left_alone_even_when_they_differ() {
        // The kernel gained a rule in OUTPUT meanwhile (another program): not in `edited`.
        let now = rs(&BASE.replace(
            "[11:110] -A OUTPUT -j ACCEPT\n",
            "[11:110] -A OUTPUT -j ACCEPT\n-A OUTPUT -j DROP\n",
        ));
        let staged = rs(&BASE.replace(":INPUT ACCEPT", ":INPUT DROP"));
        let changes = plan(&now, &staged, &set(&["INPUT"]), &[], &BTreeSet::new());
        assert_eq!(changes[0].script, "*filter\n-P INPUT DROP\nCOMMIT\n");
        assert_eq!(changes[0].undo, "*filter\n-P INPUT ACCEPT\nCOMMIT\n");
    }

    #[test]
    fn nothing_to_do_plans_nothing() {
        let base = rs(BASE);
        assert!(plan(&base, &base, &set(&["INPUT", "T"]), &[], &BTreeSet::new()).is_empty());
        // A reference renamed along with its chain is no change for the referring chain.
        let only_rename = BASE
            .replace(":T -", ":T2 -")
            .replace("-j T\n", "-j T2\n")
            .replace("-A T ", "-A T2 ");
        assert_eq!(
            script_for(BASE, &only_rename, &["INPUT", "T2"], &[("T", "T2")]),
            "*filter\n-E T T2\nCOMMIT\n"
        );
    }

    /// (The legacy tools take this in one transaction; the nf_tables tools of iptables 1.8.9
    /// refuse it, "File exists", and change nothing: see docs/edit.md.)
    #[test]
    fn renames_that_free_a_name_go_first() {
        let base = "*filter\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -j B\nCOMMIT\n";
        let staged = "*filter\n:B - [0:0]\n:C - [0:0]\n-A INPUT -j B\n-A B -j C\nCOMMIT\n";
        assert_eq!(
            script_for(base, staged, &["B", "C"], &[("A", "B"), ("B", "C")]),
            "*filter\n-E B C\n-E A B\nCOMMIT\n"
        );
    }

    #[test]
    fn edits_in_a_renamed_chain_use_its_old_name() {
        let base = "*filter\n:T - [0:0]\n[1:1] -A INPUT -j T\n[2:2] -A T -j RETURN\nCOMMIT\n";
        let staged = "*filter\n:T2 - [0:0]\n[1:1] -A INPUT -j T2\n-A INPUT -s 1.1.1.1/32 -j T2\n-A T2 -j DROP\n[2:2] -A T2 -j RETURN\nCOMMIT\n";
        assert_eq!(
            script_for(base, staged, &["INPUT", "T2"], &[("T", "T2")]),
            "*filter\n-I T 1 -j DROP\n-A INPUT -s 1.1.1.1/32 -j T\n-E T T2\nCOMMIT\n"
        );
    }

    #[test]
    fn new_tables_and_unlisted_builtin_chains_need_no_declaration() {
        let base = rs("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
        let staged = rs(
            "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n",
        );
        let edited = [ChainRef::new(Family::V4, "nat", "POSTROUTING")].into();
        let changes = plan(&base, &staged, &edited, &[], &BTreeSet::new());
        assert_eq!(changes[0].table, "nat");
        assert_eq!(
            changes[0].script,
            "*nat\n-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n"
        );
        assert_eq!(changes[0].undo, "*nat\n-F POSTROUTING\nCOMMIT\n");
    }

    #[test]
    fn tables_come_in_family_then_packet_order() {
        let t = |n: &str| format!("*{n}\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
        let base = [t("raw"), t("nat"), t("filter")].concat();
        let staged = base.replace(":OUTPUT ACCEPT", ":OUTPUT DROP");
        let mut now = rs(&base);
        now.push(parse(&base, Family::V6).unwrap());
        let mut st = rs(&staged);
        st.push(
            parse(
                &staged.replace("*nat\n:OUTPUT DROP", "*nat\n:OUTPUT ACCEPT"),
                Family::V6,
            )
            .unwrap(),
        );
        let edited: BTreeSet<ChainRef> = Family::ALL
            .iter()
            .flat_map(|&f| ["raw", "nat", "filter"].map(|t| ChainRef::new(f, t, "OUTPUT")))
            .collect();
        let order: Vec<(Family, String)> = plan(&now, &st, &edited, &[], &BTreeSet::new())
            .into_iter()
            .map(|c| (c.family, c.table))
            .collect();
        let v = |f, t: &str| (f, t.to_string());
        assert_eq!(
            order,
            [
                v(Family::V4, "raw"),
                v(Family::V4, "nat"),
                v(Family::V4, "filter"),
                v(Family::V6, "raw"),
                v(Family::V6, "filter")
            ]
        );
    }

    #[test]
    fn conflicts_name_edited_chains_that_moved_only() {
        let base = rs(BASE);
        let now = rs(&BASE
            .replace(
                "[11:110] -A OUTPUT -j ACCEPT\n",
                "-A OUTPUT -j DROP\n[11:110] -A OUTPUT -j ACCEPT\n",
            )
            .replace("[1:10] -A INPUT", "[100:1000] -A INPUT"));
        // Counters moved in INPUT (ignored); OUTPUT gained a rule.
        assert!(conflicts(&base, &now, &set(&["INPUT", "T"]), &[]).is_empty());
        let c = conflicts(&base, &now, &set(&["INPUT", "OUTPUT"]), &[]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].chain, at("OUTPUT"));
        assert_eq!(c[0].base, [":OUTPUT ACCEPT", "-A OUTPUT -j ACCEPT"]);
        let msg = c[0].describe();
        assert!(
            msg.contains("IPv4 filter/OUTPUT changed") && msg.contains("refused"),
            "{msg}"
        );
        // A renamed chain is compared under its old name; its new name must still be free.
        let renames = [(at("T"), "T2".to_string())];
        let now = rs(&BASE.replace("[8:80] -A T -j RETURN", "-A T -j DROP"));
        assert_eq!(conflicts(&base, &now, &set(&["T2"]), &renames).len(), 1);
        let now = rs(&BASE.replace(":Z - [0:0]", ":Z - [0:0]\n:T2 - [0:0]"));
        let c = conflicts(&base, &now, &set(&["T2"]), &renames);
        assert!(
            c[0].describe().contains("was created"),
            "{}",
            c[0].describe()
        );
        // A chain created by someone else under the name of a new chain.
        assert_eq!(conflicts(&base, &now, &set(&["T2"]), &[]).len(), 1);
    }

    #[test]
    fn changed_chains_ignore_counters() {
        let base = rs(BASE);
        let (_, staged, _) = every_op();
        assert_eq!(
            changed_chains(&base, &staged),
            set(&["FORWARD", "INPUT", "NEW", "T", "T2", "U"])
        );
        let recount = rs(&BASE
            .replace("[1:10]", "[7:7]")
            .replace(":INPUT ACCEPT [9:900]", ":INPUT ACCEPT [0:0]"));
        assert!(changed_chains(&base, &recount).is_empty());
    }

    #[test]
    fn verify_says_what_differs() {
        let (base, staged, _) = every_op();
        let edited = set(&["INPUT", "NEW", "U"]);
        assert_eq!(verify(&staged, &staged, &edited), Ok(()));
        let problems = verify(&base, &staged, &edited).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].contains("IPv4 filter/INPUT") && problems[0].contains("policy"),
            "{problems:?}"
        );
        assert!(problems[1].contains("NEW should exist"), "{problems:?}");
        assert!(problems[2].contains("U should be gone"), "{problems:?}");
        let one_off = rs(&STAGED.replace("-A INPUT -j NEW", "-A INPUT -j LOG"));
        let p = verify(&one_off, &staged, &set(&["INPUT"])).unwrap_err();
        assert!(
            p[0].contains("at rule 6") && p[0].contains("-j LOG"),
            "{p:?}"
        );
    }

    #[test]
    fn retarget_renames_the_target_word_only() {
        let map = HashMap::from([("T", "LONGER"), ("X", "Y")]);
        assert_eq!(
            retarget("-s 1.2.3.4/32 -j T", &map),
            "-s 1.2.3.4/32 -j LONGER"
        );
        assert_eq!(retarget("-g T", &map), "-g LONGER");
        assert_eq!(
            retarget("-m comment --comment \"-j T\" --jump X", &map),
            "-m comment --comment \"-j T\" --jump Y"
        );
        assert_eq!(retarget("-j TT", &map), "-j TT");
        assert_eq!(retarget("-j \"T\"", &map), "-j \"T\"");
    }

    #[test]
    fn test_input_is_the_whole_family_without_counters() {
        let base = rs(BASE);
        let text = test_input(&base, Family::V4).unwrap();
        assert!(text.starts_with("*filter\n:INPUT ACCEPT [0:0]\n"), "{text}");
        assert!(text.contains("\n-A INPUT -s 10.0.0.1/32 -j ACCEPT\n"));
        assert!(test_input(&base, Family::V6).is_none());
    }

    const POOL: [&str; 6] = [
        "-s 10.0.0.1/32 -j ACCEPT",
        "-s 10.0.0.2/32 -j DROP",
        "-p tcp -j ACCEPT",
        "-j A",
        "-j RETURN",
        "-m comment --comment \"a b\" -j ACCEPT",
    ];

    const POOL_BIG: [&str; 12] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];

    fn chain_text(name: &str, picks: &[usize], counted: bool) -> String {
        picks
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let c = if counted {
                    format!("[{}:{}] ", i + 1, i + 100)
                } else {
                    String::new()
                };
                format!("{c}-A {name} {}\n", POOL[p % POOL.len()])
            })
            .collect()
    }

    #[test]
    fn large_chains_are_compared_fast_and_exactly_when_texts_are_unique() {
        let rule = |i: usize| {
            format!(
                "-s 10.{}.{}.{}/32 -j ACCEPT",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            )
        };
        let n = 20_000;
        let old: Vec<String> = (0..n).map(rule).collect();
        // Reversed, every other rule replaced: the worst case for an exact diff.
        let new: Vec<String> = (0..n)
            .rev()
            .map(|i| {
                if i % 2 == 0 {
                    rule(i)
                } else {
                    format!("-s 11.0.0.{i} -j DROP")
                }
            })
            .collect();
        let (o, m): (Vec<&str>, Vec<&str>) = (
            old.iter().map(String::as_str).collect(),
            new.iter().map(String::as_str).collect(),
        );
        let t = std::time::Instant::now();
        let (gone, come) = not_in_common(&o, &m);
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
        // One rule can stay in a reversed chain.
        assert_eq!((gone.len(), come.len()), (n - 1, n - 1));
    }

    /// A kube-proxy rule set (about 7,000 chains): one rule gone from every chain that has two
    /// or more. Planning was quadratic in the number of chains (22 s for 18,000).
    #[test]
    fn planning_is_not_quadratic_in_chains() {
        let base = parse(&crate::ruleset::synth::kube_proxy(20_000), Family::V4).unwrap();
        let mut staged = base.clone();
        let mut cut = 0;
        for c in staged.tables.iter_mut().flat_map(|t| &mut t.chains) {
            if c.rules.len() > 1 {
                c.rules.remove(0);
                cut += 1;
            }
        }
        let (b, s) = (vec![base], vec![staged]);
        let t = std::time::Instant::now();
        let edited = changed_chains(&b, &s);
        assert!(conflicts(&b, &b, &edited, &[]).is_empty());
        let changes = plan(&b, &s, &edited, &[], &BTreeSet::new());
        assert_eq!(verify(&s, &s, &edited), Ok(()));
        assert!(t.elapsed().as_secs() < 10, "{:?}", t.elapsed());
        assert_eq!(edited.len(), cut);
        let deletes = changes
            .iter()
            .flat_map(|c| c.script.lines())
            .filter(|l| l.starts_with("-D "))
            .count();
        assert_eq!(deletes, cut);
    }

    proptest! {
        /// Above the exact limit the comparison is still a common subsequence, and the longest
        /// one when texts are unique.
        #[test]
        fn unique_text_pairing_is_a_longest_common_subsequence(
            old in proptest::collection::vec(0usize..12, 0..16),
            new in proptest::collection::vec(0usize..12, 0..16),
        ) {
            let text = |v: &[usize]| v.iter().map(|i| POOL_BIG[*i]).collect::<Vec<&str>>();
            let (o, n) = (text(&old), text(&new));
            let (ko, kn) = by_unique_text(&o, &n);
            let kept_o: Vec<&str> = o.iter().zip(&ko).filter(|(_, k)| **k).map(|(t, _)| *t).collect();
            let kept_n: Vec<&str> = n.iter().zip(&kn).filter(|(_, k)| **k).map(|(t, _)| *t).collect();
            prop_assert_eq!(&kept_o, &kept_n);
            let unique = |v: &[usize]| v.iter().collect::<BTreeSet<_>>().len() == v.len();
            if unique(&old) && unique(&new) {
                let (gone, _) = not_in_common(&o, &n);
                prop_assert_eq!(kept_o.len(), o.len() - gone.len());
            }
        }

        /// Any text a user may type: `retarget` never panics, changes nothing without a jump
        /// to a renamed chain, and renames a plain `-j NAME` wherever it stands.
        #[test]
        fn retarget_takes_any_text(pre in "[ -~\u{a0}-\u{2fff}\\\\\"']{0,24}", post in "[ -~]{0,12}") {
            let map = HashMap::from([("T", "NEW")]);
            let text = format!("{pre} -j T {post}");
            let _ = retarget(&pre, &map);
            let out = retarget(&text, &map);
            if !pre.contains(['"', '\'', '\\']) {
                prop_assert!(out.contains("-j NEW"), "{} -> {}", text, out);
            }
            let none = HashMap::new();
            let same = retarget(&pre, &none);
            prop_assert_eq!(same.as_ref(), pre.as_str());
        }

        /// Any edit of two chains (one of them maybe renamed, or emptied): the plan turns the
        /// kernel into the staged result, never touches a rule that stays (its counters are
        /// what they were), and its undo turns it back.
        #[test]
        fn plans_reach_the_staged_result(
            a in proptest::collection::vec(0usize..6, 0..8),
            b in proptest::collection::vec(0usize..6, 0..8),
            x in proptest::collection::vec(0usize..6, 0..8),
            y in proptest::collection::vec(0usize..6, 0..8),
            rename in any::<bool>(),
            zero in any::<bool>(),
        ) {
            let b_name = if rename { "B2" } else { "B" };
            let base = format!(
                "*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n{}{}-A INPUT -j B\nCOMMIT\n",
                chain_text("INPUT", &a, true),
                chain_text("B", &b, true)
            );
            let staged = format!(
                "*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:{b_name} - [0:0]\n{}{}-A INPUT -j {b_name}\nCOMMIT\n",
                chain_text("INPUT", &x, false),
                chain_text(b_name, &y, false)
            );
            let (base, staged) = (rs(&base), rs(&staged));
            let renames: Vec<(ChainRef, String)> = if rename { vec![(at("B"), "B2".into())] } else { vec![] };
            let zeroed = if zero { set(&[b_name]) } else { BTreeSet::new() };
            let changes = check_round_trip(&base, &staged, &set(&["INPUT", b_name]), &renames, &zeroed);
            // Rules that stay, and rules that moved, keep their counters: per text, as many
            // counted rules as the text has in both.
            let mut model = base[0].clone();
            for ch in &changes {
                run(model.table_mut("filter").unwrap(), &ch.script).unwrap();
            }
            let counted = model.table("filter").unwrap().chain("INPUT").unwrap()
                .rules.iter().filter(|r| r.counters.is_some_and(|c| c.packets > 0)).count();
            let both: usize = (0..POOL.len())
                .map(|p| a.iter().filter(|&&i| i == p).count().min(x.iter().filter(|&&i| i == p).count()))
                .sum();
            prop_assert_eq!(counted, both);
            let lcs = |o: &[usize], n: &[usize]| {
                capture_diff_slices(Algorithm::Myers, o, n)
                    .iter()
                    .filter(|op| op.tag() == DiffTag::Equal)
                    .map(|op| op.old_range().len())
                    .sum::<usize>()
            };
            let input_kept = lcs(&a, &x);
            let ins = changes.iter().flat_map(|c| c.script.lines())
                .filter(|l| l.starts_with("-I INPUT") || l.starts_with("-A INPUT")).count();
            prop_assert_eq!(ins, x.len() - input_kept);
        }
    }
}
