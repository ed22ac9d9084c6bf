//! The Reach popup (`r` on the Rules screen): who can reach what through a chain for the
//! selected rule's protocol and port, as a matrix of address classes (✓ certain, ? possible,
//! · none). Enter traces the selected cell's packet, so the rules that decide it are one key
//! away. `trace::reach` does the work; this is the view's state.

use crate::ruleset::{Family, Rule, Ruleset};
use crate::trace::reach::{Reach, ReachQuery, reach};
use crate::trace::{CtState, Hook};

#[derive(Debug, Clone)]
pub struct ReachView {
    /// The (protocol, port) pairs the filter table's rules name, sorted: what `p`/`P` step
    /// through.
    pub ports: Vec<(u8, u16)>,
    pub family: Family,
    pub query: ReachQuery,
    pub result: Reach,
    /// Over the staged rule set, not the kernel's.
    pub staged: bool,
    /// The selected cell: source class (row), destination class (column).
    pub row: usize,
    pub col: usize,
    /// The rules changed while the popup was open and the question was answered again.
    pub changed: bool,
}

impl PartialEq for ReachView {
    fn eq(&self, o: &ReachView) -> bool {
        self.family == o.family
            && self.query.hook == o.query.hook
            && self.query.proto == o.query.proto
            && self.query.dport == o.query.dport
            && self.query.state == o.query.state
            && self.row == o.row
            && self.col == o.col
            && self.staged == o.staged
            && self.changed == o.changed
    }
}

/// The hook a filter chain is reached from: its own for a built-in chain; for a user chain
/// the first of FORWARD, INPUT and OUTPUT whose chain jumps or goes to it (through other user
/// chains too); INPUT when none does.
pub fn hook_of(rs: &Ruleset, table: &str, chain: &str) -> Hook {
    match chain {
        "INPUT" => return Hook::Input,
        "FORWARD" => return Hook::Forward,
        "OUTPUT" => return Hook::Output,
        _ => {}
    }
    let Some(t) = rs.table(table) else {
        return Hook::Input;
    };
    let reaches = |from: &str| {
        let mut seen: Vec<&str> = vec![from];
        let mut todo: Vec<&str> = vec![from];
        while let Some(c) = todo.pop() {
            for r in t.chain(c).map(|c| c.rules.as_slice()).unwrap_or(&[]) {
                let target = r.spec.target_name();
                if target == chain {
                    return true;
                }
                if t.chain(target).is_some() && !seen.contains(&target) {
                    seen.push(target);
                    todo.push(target);
                }
            }
        }
        false
    };
    [Hook::Forward, Hook::Input, Hook::Output]
        .into_iter()
        .find(|h| reaches(h.name()))
        .unwrap_or(Hook::Input)
}

/// The question a rule asks about: its protocol (tcp when it names none) and its first
/// destination port, at `hook`.
pub fn query_for(hook: Hook, rule: Option<&Rule>) -> ReachQuery {
    let spec = rule.map(|r| &r.spec);
    let proto = spec
        .and_then(|s| s.protocol.as_ref())
        .filter(|p| !p.negated)
        .and_then(|p| crate::trace::packet::parse_proto(&p.value))
        .filter(|p| *p != 0)
        .unwrap_or(6);
    let dport = spec.and_then(|s| {
        s.matches.iter().find_map(|m| {
            let o = m.option("--dport").or_else(|| m.option("--dports"))?;
            if o.negated {
                return None;
            }
            let first = o.values.first()?;
            let first = first.split([',', ':']).next()?;
            first.parse::<u16>().ok()
        })
    });
    ReachQuery {
        hook,
        proto,
        dport,
        sport: None,
        state: CtState::New,
        ifaces: Vec::new(),
        all_tables: false,
        nat: false,
    }
}

/// The destination ports a rule set's filter rules name, with their protocol: each value of a
/// `--dport`/`--dports` list, and each end of a range.
pub fn ports_named(rs: &Ruleset) -> Vec<(u8, u16)> {
    let mut out = std::collections::BTreeSet::new();
    for r in rs
        .table("filter")
        .into_iter()
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
    {
        let Some(proto) = r
            .spec
            .protocol
            .as_ref()
            .filter(|p| !p.negated)
            .and_then(|p| crate::trace::packet::parse_proto(&p.value))
        else {
            continue;
        };
        for m in &r.spec.matches {
            for name in [
                "--dport",
                "--dports",
                "--destination-port",
                "--destination-ports",
            ] {
                for v in m.option(name).into_iter().flat_map(|o| &o.values) {
                    for n in v.split([',', ':']).filter_map(|n| n.parse::<u16>().ok()) {
                        out.insert((proto, n));
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

impl ReachView {
    /// The next (`step` 1) or previous (-1) port the rules name, after the one asked now.
    pub fn step_port(&self, step: isize) -> Option<(u8, u16)> {
        if self.ports.is_empty() {
            return None;
        }
        let now = (self.query.proto, self.query.dport.unwrap_or(0));
        let n = self.ports.len() as isize;
        let i = match self.ports.binary_search(&now) {
            Ok(i) => i as isize + step,
            Err(i) if step > 0 => i as isize,
            Err(i) => i as isize - 1,
        };
        self.ports.get(i.rem_euclid(n) as usize).copied()
    }

    pub fn new(rs: &Ruleset, query: ReachQuery, staged: bool) -> ReachView {
        let result = reach(rs, &query);
        let mut v = ReachView {
            ports: ports_named(rs),
            family: rs.family,
            query,
            result,
            staged,
            row: 0,
            col: 0,
            changed: false,
        };
        v.settle();
        v
    }

    /// The same question again (another chain, family or rule set): the cell kept where it
    /// can be.
    pub fn ask(&mut self, rs: &Ruleset, query: ReachQuery, staged: bool) {
        self.result = reach(rs, &query);
        self.changed = false;
        self.ports = ports_named(rs);
        self.family = rs.family;
        self.query = query;
        self.staged = staged;
        self.settle();
    }

    fn settle(&mut self) {
        let n = self.result.classes.len().max(1);
        self.row = self.row.min(n - 1);
        self.col = self.col.min(n - 1);
    }

    pub fn move_by(&mut self, rows: isize, cols: isize) {
        let n = self.result.classes.len().max(1);
        self.row = self.row.saturating_add_signed(rows).min(n - 1);
        self.col = self.col.saturating_add_signed(cols).min(n - 1);
    }

    /// The next hook of INPUT, FORWARD, OUTPUT.
    pub fn next_hook(&self) -> Hook {
        match self.query.hook {
            Hook::Input => Hook::Forward,
            Hook::Forward => Hook::Output,
            _ => Hook::Input,
        }
    }

    /// The selected cell's answer: `None` no edge, `Some(certain)`.
    pub fn cell(&self) -> Option<bool> {
        self.result.edge(self.row, self.col)
    }

    /// An address of a class to trace from or to: the first of its ranges that is not the
    /// all-zeros address (which no packet carries), unless that is all the class holds.
    pub fn sample(&self, class: usize) -> Option<std::net::IpAddr> {
        let c = self.result.classes.get(class)?;
        let ranges = c.set.ranges();
        let n = ranges
            .iter()
            .find_map(|&(lo, hi)| match (lo, hi) {
                (0, 0) => None,
                (0, _) => Some(1),
                (lo, _) => Some(lo),
            })
            .or_else(|| ranges.first().map(|r| r.0))?;
        Some(crate::trace::ranges::addr(n, self.family == Family::V6))
    }

    /// An address of a class, one of `prefer` when the class holds one (this machine's, for
    /// the destination of an INPUT question or the source of an OUTPUT one).
    pub fn sample_in(&self, class: usize, prefer: &[std::net::IpAddr]) -> Option<std::net::IpAddr> {
        let c = self.result.classes.get(class)?;
        prefer
            .iter()
            .find(|a| c.set.contains(crate::trace::ranges::num(**a)))
            .copied()
            .or_else(|| self.sample(class))
    }

    /// What the popup says about the selected cell.
    pub fn describe(&self) -> String {
        let name = |i: usize| {
            self.result
                .classes
                .get(i)
                .map_or(String::new(), |c| c.name.clone())
        };
        let answer = match self.cell() {
            Some(true) => "certainly accepted",
            Some(false) => "possibly accepted (an undecidable match decides)",
            None => "certainly not accepted",
        };
        format!("{} → {}: {answer}", name(self.row), name(self.col))
    }

    /// The answer as `nfscope reach` prints it (y, W).
    pub fn text(&self) -> String {
        crate::cli::reach::render_text(&self.result, &self.query, &[])
    }
}
