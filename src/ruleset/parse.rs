//! Parser for the `iptables-save -c` / `iptables-restore` format.
//!
//! Accepts what the save tools print and what people write by hand for restore: `#` comments,
//! `*table`, `:CHAIN POLICY [pkts:bytes]`, `[pkts:bytes] -A CHAIN args`, `-I CHAIN [n] args`,
//! `-N CHAIN`, `-P CHAIN POLICY`, `COMMIT`; CRLF endings and trailing blanks. Every error names
//! its line and says what is wrong in a sentence.

use super::{Chain, Counters, Family, Rule, Ruleset, Table, builtin_chains};
use std::collections::HashMap;
use thiserror::Error;

/// A malformed line: where, and what is wrong with it. Shown with every quoted part cut to
/// [`QUOTE_MAX`] characters: a file that is not a rule set at all (a password file given by
/// mistake) is not printed back whole.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {}", bound_quotes(.message, QUOTE_MAX))]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

/// The most characters of a quoted piece of the input an error shows.
pub const QUOTE_MAX: usize = 48;

/// `msg` with each `"..."` part (as `{:?}` writes them, escapes and all) longer than `max`
/// characters cut to `max` and marked `…`.
pub fn bound_quotes(msg: &str, max: usize) -> String {
    let mut out = String::with_capacity(msg.len().min(256));
    let mut chars = msg.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' {
            continue;
        }
        // Inside a quoted part: copy up to `max` characters, skip the rest, keep the quote.
        let mut cut = false;
        let mut escaped = false;
        for (n, q) in chars.by_ref().enumerate() {
            if !escaped && q == '"' {
                break;
            }
            escaped = !escaped && q == '\\';
            if n < max {
                out.push(q);
            } else {
                cut = true;
            }
        }
        if cut {
            // Never leave half an escape behind.
            while out.ends_with('\\') {
                out.pop();
            }
            out.push('…');
        }
        out.push('"');
    }
    out
}

fn err<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// Parse `[pkts:bytes]`.
fn parse_counters(s: &str, line: usize) -> Result<Counters, ParseError> {
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| ParseError {
            line,
            message: format!("counters must look like [packets:bytes], found {s:?}"),
        })?;
    let (p, b) = inner.split_once(':').ok_or_else(|| ParseError {
        line,
        message: format!("counters must look like [packets:bytes], found {s:?}"),
    })?;
    let num = |v: &str, what: &str| {
        v.parse::<u64>().map_err(|_| ParseError {
            line,
            message: format!(
                "the {what} counter {v:?} is not a whole number between 0 and 18446744073709551615"
            ),
        })
    };
    Ok(Counters::new(num(p, "packet")?, num(b, "byte")?))
}

fn is_chain_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 28
        && !name.starts_with('-')
        && !name.contains(char::is_whitespace)
}

/// The table being read, with an index of its chains: kube-proxy tables have tens of thousands,
/// and a linear search per rule made parsing quadratic.
struct Open {
    table: Table,
    line: usize,
    index: HashMap<String, usize>,
    /// The chain the previous rule went to; consecutive rules almost always share it.
    last: Option<usize>,
}

impl Open {
    fn new(table: Table, line: usize) -> Self {
        Open {
            table,
            line,
            index: HashMap::new(),
            last: None,
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        match self.last {
            Some(i) if self.table.chains[i].name == name => Some(i),
            _ => self.index.get(name).copied(),
        }
    }

    fn push_chain(&mut self, chain: Chain) -> usize {
        let i = self.table.chains.len();
        self.index.insert(chain.name.clone(), i);
        self.table.chains.push(chain);
        i
    }

    fn chain_mut(&mut self, name: &str, line: usize) -> Result<&mut Chain, ParseError> {
        let i = match self.find(name) {
            Some(i) => i,
            None if builtin_chains(&self.table.name).contains(&name) => {
                // Built-in chains exist without being declared.
                self.push_chain(Chain {
                    name: name.to_string(),
                    policy: Some("ACCEPT".into()),
                    counters: Counters::default(),
                    rules: Vec::new(),
                })
            }
            None => {
                return err(
                    line,
                    format!(
                        "chain {name:?} is used before it is declared in table {:?} (add \":{name} - [0:0]\" after \"*{}\")",
                        self.table.name, self.table.name
                    ),
                );
            }
        };
        self.last = Some(i);
        Ok(&mut self.table.chains[i])
    }
}

/// Parse a whole save file of one family.
pub fn parse(text: &str, family: Family) -> Result<Ruleset, ParseError> {
    let mut p = Parser::new(family);
    for line in text.lines() {
        p.line(line)?;
    }
    p.finish()
}

/// A parser fed one line at a time, so that a tool's output can be parsed while the tool is
/// still printing it (see `source::kernel`). `parse` is this over the lines of a text.
pub struct Parser {
    rs: Ruleset,
    open: Option<Open>,
    pending_comments: Vec<String>,
    /// Lines seen so far (the number of the last one).
    n: usize,
    /// A rule line that ended inside a quote (a comment with a line break, as iptables-save
    /// prints it): its first line's number, the text so far, and how many lines it took.
    partial: Option<(usize, String, usize)>,
}

/// A rule line's arguments: what follows `[p:b] -A CHAIN` (or `-I CHAIN`); the chain name is
/// not quoted by iptables-save, so a quote in it opens nothing.
fn rule_args(line: &str) -> Option<&str> {
    let mut t = line.trim_start();
    if t.starts_with('[') {
        t = t[t.find(']')? + 1..].trim_start();
    }
    let rest = t.strip_prefix("-A ").or_else(|| t.strip_prefix("-I "))?;
    let rest = rest.trim_start();
    let chain_end = rest.find(char::is_whitespace)?;
    Some(&rest[chain_end..])
}

/// The most lines one rule may take (a comment holds at most 255 bytes in the kernel).
const MAX_JOINED: usize = 256;

impl Parser {
    pub fn new(family: Family) -> Self {
        Parser {
            rs: Ruleset::empty(family),
            open: None,
            pending_comments: Vec::new(),
            n: 0,
            partial: None,
        }
    }

    /// Read the next line (without its line break; a trailing `\r` is fine). After an error
    /// the parser is of no further use.
    pub fn line(&mut self, raw: &str) -> Result<(), ParseError> {
        self.n += 1;
        let n = self.n;
        if raw.contains('\0') {
            return err(n, super::NUL_IN_RULE);
        }
        if let Some((start, mut text, count)) = self.partial.take() {
            text.push('\n');
            text.push_str(raw);
            if super::words::ends_inside_quote(&text) && count < MAX_JOINED {
                self.partial = Some((start, text, count + 1));
                return Ok(());
            }
            return self.logical(start, &text);
        }
        if rule_args(raw).is_some_and(super::words::ends_inside_quote) {
            self.partial = Some((n, raw.trim_start().to_string(), 1));
            return Ok(());
        }
        self.logical(n, raw)
    }

    /// One logical line (a rule over several lines joined), numbered by its first line.
    fn logical(&mut self, n: usize, raw: &str) -> Result<(), ParseError> {
        let line = raw.trim_end();
        let line = line.trim_start();
        if line.is_empty() {
            return Ok(());
        }
        if line.starts_with('#') {
            match self.open.as_mut() {
                Some(o) => o.table.inner_comments.push(line.to_string()),
                None => self.pending_comments.push(line.to_string()),
            }
            return Ok(());
        }
        if let Some(name) = line.strip_prefix('*') {
            if let Some(o) = &self.open {
                return err(
                    n,
                    format!(
                        "table {:?} starts here, but table {:?} opened at line {} was never closed with COMMIT",
                        name, o.table.name, o.line
                    ),
                );
            }
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return err(n, format!("{line:?} does not name a table"));
            }
            if self.rs.table(name).is_some() {
                return err(n, format!("table {name:?} appears twice"));
            }
            let mut table = Table::new(name);
            table.leading_comments = std::mem::take(&mut self.pending_comments);
            self.open = Some(Open::new(table, n));
            return Ok(());
        }
        if line == "COMMIT" {
            return match self.open.take() {
                Some(mut o) => {
                    // Most user chains hold two or three rules but grew room for four.
                    for c in &mut o.table.chains {
                        c.rules.shrink_to_fit();
                    }
                    self.rs.tables.push(o.table);
                    Ok(())
                }
                None => err(
                    n,
                    "COMMIT without a table: a \"*table\" line must come first",
                ),
            };
        }
        let Some(o) = self.open.as_mut() else {
            return err(
                n,
                format!(
                    "{:?} stands outside any table: a \"*table\" line must come first",
                    truncate(line)
                ),
            );
        };
        if let Some(decl) = line.strip_prefix(':') {
            return parse_chain_decl(o, decl, n);
        }
        parse_command(o, line, n)
    }

    /// The end of the input: the rule set, or why it is incomplete.
    pub fn finish(mut self) -> Result<Ruleset, ParseError> {
        // A quote never closed: its line says so.
        if let Some((start, text, _)) = self.partial.take() {
            self.logical(start, &text)?;
        }
        if let Some(o) = self.open {
            return err(
                o.line,
                format!(
                    "table {:?} opened here is never closed with COMMIT (the file may be cut short)",
                    o.table.name
                ),
            );
        }
        self.rs.trailing_comments = self.pending_comments;
        Ok(self.rs)
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s.to_string()
    }
}

fn parse_chain_decl(o: &mut Open, decl: &str, n: usize) -> Result<(), ParseError> {
    let mut parts = decl.split_whitespace();
    let name = parts.next().unwrap_or("");
    if !is_chain_name_ok(name) {
        return err(n, format!("{:?} is not a valid chain name", name));
    }
    let policy = parts.next().ok_or_else(|| ParseError {
        line: n,
        message: format!("chain {name:?} needs a policy (ACCEPT, DROP) or \"-\" for a user chain"),
    })?;
    let counters = match parts.next() {
        Some(c) => parse_counters(c, n)?,
        None => Counters::default(),
    };
    if let Some(extra) = parts.next() {
        return err(
            n,
            format!("unexpected {extra:?} after the chain's counters"),
        );
    }
    if o.find(name).is_some() {
        return err(
            n,
            format!(
                "chain {name:?} is declared twice in table {:?}",
                o.table.name
            ),
        );
    }
    let builtin = builtin_chains(&o.table.name).contains(&name);
    let policy = match policy {
        "-" if !builtin => None,
        "-" => {
            return err(
                n,
                format!("built-in chain {name:?} needs a policy, not \"-\""),
            );
        }
        p if builtin => Some(p.to_string()),
        p => {
            // A policy on a chain nfscope does not know as built-in (an unknown table): keep it.
            if builtin_chains(&o.table.name).is_empty() {
                Some(p.to_string())
            } else {
                return err(
                    n,
                    format!(
                        "user chain {name:?} cannot have policy {p:?}: only built-in chains of table {:?} have one (use \"-\")",
                        o.table.name
                    ),
                );
            }
        }
    };
    o.push_chain(Chain {
        name: name.to_string(),
        policy,
        counters,
        rules: Vec::new(),
    });
    Ok(())
}

fn parse_command(o: &mut Open, line: &str, n: usize) -> Result<(), ParseError> {
    let mut rest = line;
    let mut counters = None;
    if rest.starts_with('[') {
        let end = rest.find(']').ok_or_else(|| ParseError {
            line: n,
            message: "counters opened with [ are never closed with ]".into(),
        })?;
        counters = Some(parse_counters(&rest[..=end], n)?);
        rest = rest[end + 1..].trim_start();
    }
    let (cmd, after) = split_word(rest);
    match cmd {
        "-A" | "--append" | "-I" | "--insert" => {
            let (chain, mut args) = split_word(after);
            if chain.is_empty() {
                return err(n, format!("{cmd} needs a chain name"));
            }
            let mut pos = None;
            if cmd == "-I" || cmd == "--insert" {
                let (maybe, after_num) = split_word(args);
                if let Ok(p) = maybe.parse::<usize>() {
                    if p == 0 {
                        return err(n, "rule positions start at 1");
                    }
                    pos = Some(p);
                    args = after_num;
                }
            }
            let rule = Rule::from_text(args, counters).map_err(|m| ParseError {
                line: n,
                message: m,
            })?;
            let ch = o.chain_mut(chain, n)?;
            match pos {
                None if cmd == "-A" || cmd == "--append" => ch.rules.push(rule),
                None => ch.rules.insert(0, rule),
                Some(p) if p <= ch.rules.len() + 1 => ch.rules.insert(p - 1, rule),
                Some(p) => {
                    return err(
                        n,
                        format!(
                            "cannot insert at position {p}: chain {chain:?} has only {} rules",
                            ch.rules.len()
                        ),
                    );
                }
            }
        }
        "-N" | "--new-chain" => {
            let (chain, extra) = split_word(after);
            if !is_chain_name_ok(chain) || !extra.is_empty() {
                return err(
                    n,
                    format!("-N needs one valid chain name, found {:?}", after),
                );
            }
            parse_chain_decl(o, &format!("{chain} - [0:0]"), n)?;
        }
        "-P" | "--policy" => {
            let (chain, rest) = split_word(after);
            let (policy, extra) = split_word(rest);
            if policy.is_empty() || !extra.is_empty() {
                return err(n, "-P needs a chain and a policy, e.g. \"-P INPUT DROP\"");
            }
            let ch = o.chain_mut(chain, n)?;
            if ch.policy.is_none() {
                return err(n, format!("user chain {chain:?} cannot have a policy"));
            }
            ch.policy = Some(policy.to_string());
        }
        "" => return err(n, "counters must be followed by a command such as -A"),
        other => {
            return err(
                n,
                format!(
                    "{:?} is not something nfscope can read here: expected \"*table\", \":CHAIN POLICY [p:b]\", \"-A CHAIN ...\", \"-I\", \"-N\", \"-P\" or COMMIT",
                    truncate(other)
                ),
            );
        }
    }
    Ok(())
}

/// The first blank-separated word and the rest (trimmed).
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_show_a_bounded_excerpt_of_the_input() {
        let secret = "root:$6$Zq8Xl1mN$averylongpasswordhashthatmustnotbeprintedwholeanywhere:19000:0:99999:7:::";
        let e = crate::ruleset::parse(&format!("{secret}\n"), crate::ruleset::Family::V4)
            .expect_err("not a rule set");
        let said = e.to_string();
        assert!(said.starts_with("line 1: "), "{said}");
        assert!(!said.contains("printedwholeanywhere"), "{said}");
        assert!(said.contains("root:$6$"), "{said}");
        assert_eq!(bound_quotes("a \"short\" b", 10), "a \"short\" b");
        assert_eq!(bound_quotes("\"abcdef\" x", 3), "\"abc…\" x");
        // An escape at the cut is not left half.
        assert_eq!(bound_quotes("\"ab\\u{1b}\"", 3), "\"ab…\"");
    }

    use super::*;

    const SAMPLE: &str = "# Generated by iptables-save v1.8.9 on Sun Nov 22 04:58:44 2026\r\n\
*filter  \r\n\
:INPUT DROP [10:600]\r\n\
:FORWARD ACCEPT [0:0]\r\n\
:OUTPUT ACCEPT [5000000000:9000000000000]\r\n\
:TCP - [0:0]\r\n\
[7:420] -A INPUT -p tcp -m tcp --dport 22 -m comment --comment \"ssh \\\"admin\\\"\" -j ACCEPT\r\n\
[0:0] -A INPUT -p tcp -j TCP\r\n\
-A TCP -j RETURN   \r\n\
COMMIT\r\n\
# Completed on Sun Nov 22 04:58:44 2026\r\n";

    #[test]
    fn parses_tables_chains_rules_and_counters() {
        let rs = parse(SAMPLE, Family::V4).unwrap();
        assert_eq!(rs.tables.len(), 1);
        let t = &rs.tables[0];
        assert_eq!(t.leading_comments.len(), 1);
        assert_eq!(rs.trailing_comments.len(), 1);
        assert_eq!(t.chains.len(), 4);
        assert_eq!(t.chains[0].policy.as_deref(), Some("DROP"));
        assert_eq!(t.chains[2].counters.packets, 5_000_000_000);
        assert_eq!(t.chains[3].policy, None);
        let r = &t.chains[0].rules[0];
        assert_eq!(r.counters, Some(Counters::new(7, 420)));
        assert_eq!(r.spec.comment(), Some("ssh \"admin\""));
        assert_eq!(
            r.text,
            "-p tcp -m tcp --dport 22 -m comment --comment \"ssh \\\"admin\\\"\" -j ACCEPT"
        );
        assert_eq!(t.chains[3].rules[0].counters, None);
    }

    #[test]
    fn insert_new_chain_and_policy_commands() {
        let rs = parse(
            "*filter\n-N T\n-P INPUT DROP\n-A INPUT -j T\n-I INPUT -j ACCEPT\n-I INPUT 2 -s 1.1.1.1\nCOMMIT\n",
            Family::V4,
        )
        .unwrap();
        let input = rs.table("filter").unwrap().chain("INPUT").unwrap();
        assert_eq!(input.policy.as_deref(), Some("DROP"));
        let texts: Vec<_> = input.rules.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["-j ACCEPT", "-s 1.1.1.1", "-j T"]);
    }

    fn line_of(text: &str) -> (usize, String) {
        let e = parse(text, Family::V4).unwrap_err();
        (e.line, e.to_string())
    }

    #[test]
    fn errors_name_the_line() {
        let (l, m) = line_of("*filter\n:INPUT ACCEPT [0:0]\n-A NOPE -j ACCEPT\nCOMMIT\n");
        assert_eq!(l, 3);
        assert!(m.contains("NOPE"), "{m}");
        let (l, m) = line_of("*filter\n:INPUT ACCEPT [0:0]\n");
        assert_eq!(l, 1);
        assert!(m.contains("never closed"), "{m}");
        let (l, _) = line_of("*filter\n:INPUT ACCEPT [x:0]\nCOMMIT\n");
        assert_eq!(l, 2);
        let (l, m) = line_of("*filter\n\n[1:2] -A INPUT -m comment --comment \"x\nCOMMIT\n");
        assert_eq!(l, 3);
        assert!(m.contains("quote"), "{m}");
        let (l, _) = line_of("-A INPUT -j ACCEPT\n");
        assert_eq!(l, 1);
        let (l, _) = line_of("*filter\n*nat\nCOMMIT\n");
        assert_eq!(l, 2);
        let (l, m) = line_of("*filter\n:INPUT ACCEPT [99999999999999999999:0]\nCOMMIT\n");
        assert_eq!(l, 2);
        assert!(m.contains("whole number"), "{m}");
        let (l, _) = line_of("*filter\n:FOO ACCEPT [0:0]\nCOMMIT\n");
        assert_eq!(l, 2);
        let (l, _) = line_of("*filter\n-D INPUT 1\nCOMMIT\n");
        assert_eq!(l, 2);
    }

    #[test]
    fn builtin_chains_need_no_declaration() {
        let rs = parse(
            "*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n",
            Family::V4,
        )
        .unwrap();
        let c = rs.table("nat").unwrap().chain("POSTROUTING").unwrap();
        assert_eq!(c.policy.as_deref(), Some("ACCEPT"));
    }
}
