//! The Trace screen's state: the packet form, the last trace and where the cursor is in it.
//! Pure: the App runs the tracer synchronously on the rule set the Rules screen holds, and keeps
//! one prepared `Tracer` per family until the snapshot changes.

use crate::conntrack::{Entry, Status};
use crate::ruleset::{Family, Ruleset};
use crate::source::{Origin as SourceOrigin, RulesetSnapshot, local_addrs};
use crate::trace::fields::{self, Field, PacketFields};
use crate::trace::packet::proto_name;
use crate::trace::{
    Binding, CtState, Effect, LocalAddr, Packet, Step, StepKind, Trace, TraceOptions, Tracer, Tri,
};

/// The form's fields, in order, with their labels.
pub const FORM: [(Field, &str); 12] = [
    (Field::Proto, "proto"),
    (Field::Src, "src"),
    (Field::Dst, "dst"),
    (Field::Sport, "sport"),
    (Field::Dport, "dport"),
    (Field::TcpFlags, "tcp flags"),
    (Field::Icmp, "icmp type"),
    (Field::InIface, "in"),
    (Field::OutIface, "out"),
    (Field::Local, "local"),
    (Field::State, "state"),
    (Field::Mark, "mark"),
];

/// How the form names a field in its sentences.
pub fn field_name(f: Field) -> &'static str {
    FORM.iter()
        .find(|(g, _)| *g == f)
        .map_or("?", |(_, name)| name)
}

fn index_of(f: Field) -> usize {
    FORM.iter().position(|(g, _)| *g == f).unwrap_or(0)
}

/// Which half of the screen has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFocus {
    Form,
    Steps,
}

/// A finished trace and the packet it was for.
pub struct TraceResult {
    pub packet: Packet,
    pub trace: Trace,
    /// Which rule set it went through.
    pub basis: Basis,
}

/// Which rule set a trace goes through: the staged one while edits are staged (what the Rules
/// screen shows), or the kernel's (the source's) when asked, or when nothing is staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Kernel,
    Staged,
}

/// A conntrack entry's NAT bindings for its original direction, and that direction's tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryNat {
    pub proto: u8,
    pub orig: crate::conntrack::Tuple,
    pub dnat: Option<Binding>,
    pub snat: Option<Binding>,
}

impl EntryNat {
    /// Whether `p` is the entry's packet (the form not edited away from it).
    fn describes(&self, p: &Packet) -> bool {
        p.proto == self.proto
            && p.src == self.orig.src
            && p.dst == self.orig.dst
            && p.sport == self.orig.sport
            && p.dport == self.orig.dport
    }

    /// `DNAT to 10.0.0.10:80`, `SNAT to 192.0.2.1:61000`, for the form.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = self.dnat {
            parts.push(format!("DNAT to {b}"));
        }
        if let Some(b) = self.snat {
            parts.push(format!("SNAT to {b}"));
        }
        parts.join(", ")
    }
}

/// The staged rule sets, and the staging's version (it changes with every staged edit).
pub type StagedSets<'a> = Option<(&'a [Ruleset], u64)>;

/// One row of the steps list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRow {
    /// The step it shows (headings and effect lines name the step they belong to, if any).
    pub step: Option<usize>,
    pub depth: usize,
    pub kind: RowKind,
}

impl StepRow {
    /// The row of the step itself (not a heading or an effect line).
    pub fn is_step(&self) -> bool {
        matches!(self.kind, RowKind::Rule { .. } | RowKind::Note(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// A hook's name.
    Hook(String),
    /// A table and chain heading.
    Chain(String),
    /// A rule looked at: its number and the match.
    Rule { rule: usize, matched: String },
    /// What a matching rule's target did (NAT rewrites, marks, jumps, verdicts).
    Effect(String),
    /// A policy, a chain's end, a skipped table or the routing decision.
    Note(String),
}

pub struct TraceScreen {
    /// The text of every form field, in `FORM` order.
    pub values: Vec<String>,
    pub field: usize,
    pub focus: TraceFocus,
    /// The field at fault and why, after Enter.
    pub error: Option<(Field, String)>,
    /// A line about the last action (no SSH session, no entry selected...).
    pub message: Option<String>,
    pub result: Option<TraceResult>,
    /// The path shown.
    pub path: usize,
    /// The selected row of the steps list, and the first shown.
    pub cursor: usize,
    pub offset: usize,
    /// This machine's addresses as the loop read them (the kernel's); `None`: from the source
    /// (the demo gateway's for the demo, loopback only for files).
    pub locals: Option<Vec<LocalAddr>>,
    /// `SSH_CONNECTION`, as the loop read it.
    pub ssh: Option<String>,
    /// Trace the kernel's rule set even while edits are staged.
    pub kernel_only: bool,
    /// The NAT bindings of the conntrack entry the form was filled from (`t`), with the
    /// entry's original tuple: they apply while the form still describes that packet.
    pub nat: Option<EntryNat>,
    /// Columns the steps are scrolled sideways (`<` `>`), or whether they wrap (`w`).
    pub hscroll: usize,
    pub wrap: bool,
    /// Prepared tracers by family, with what they were built from: the snapshot generation,
    /// and the staging's version for a staged rule set.
    cache: Vec<((u64, Option<u64>), Family, Tracer)>,
}

impl Default for TraceScreen {
    fn default() -> Self {
        Self::new()
    }
}

impl TraceScreen {
    pub fn new() -> Self {
        let mut values = vec![String::new(); FORM.len()];
        values[index_of(Field::Proto)] = "tcp".into();
        values[index_of(Field::Local)] = "no".into();
        values[index_of(Field::State)] = "NEW".into();
        TraceScreen {
            values,
            field: 0,
            // The global keys work on entry: the form takes them only once edited (e, Enter, /).
            focus: TraceFocus::Steps,
            error: None,
            message: None,
            result: None,
            path: 0,
            cursor: 0,
            offset: 0,
            locals: None,
            kernel_only: false,
            nat: None,
            ssh: None,
            hscroll: 0,
            wrap: false,
            cache: Vec::new(),
        }
    }

    pub fn value(&self, f: Field) -> &str {
        &self.values[index_of(f)]
    }

    pub fn set(&mut self, f: Field, v: impl Into<String>) {
        self.values[index_of(f)] = v.into();
    }

    pub fn move_field(&mut self, delta: isize) {
        self.expand_field();
        let n = FORM.len() as isize;
        self.field = ((self.field as isize + delta).rem_euclid(n)) as usize;
    }

    /// The field being edited, if it takes one of a few fixed values.
    fn fixed(&self) -> Option<&'static [&'static str]> {
        choices(FORM.get(self.field)?.0)
    }

    /// A fixed-value field (proto, local, state): the next (`delta` 1) or previous value.
    /// Says so for a free-text field.
    pub fn cycle(&mut self, delta: isize) {
        let Some(options) = self.fixed() else {
            self.message = Some(format!(
                "{} is typed, not chosen: ←/→ and Space cycle proto, local and state",
                FORM.get(self.field).map_or("this field", |f| f.1)
            ));
            return;
        };
        self.expand_field();
        let cur = &self.values[self.field];
        let n = options.len() as isize;
        let at = options
            .iter()
            .position(|o| o.eq_ignore_ascii_case(cur.trim()))
            .map_or(if delta > 0 { -1 } else { 0 }, |i| i as isize);
        self.values[self.field] = options[(at + delta).rem_euclid(n) as usize].to_string();
        self.error = None;
        self.message = None;
    }

    /// Space: cycles a fixed-value field, types a space in the others.
    pub fn space(&mut self) {
        if self.fixed().is_some() {
            self.cycle(1);
        } else {
            self.type_char(' ');
        }
    }

    /// A unique prefix of a fixed value (`est`) becomes the value (ESTABLISHED), in place.
    pub fn expand_field(&mut self) {
        let Some(options) = self.fixed() else { return };
        if let Some(v) = expand(options, &self.values[self.field]) {
            self.values[self.field] = v.to_string();
        }
    }

    /// Every fixed-value field's unique prefix expanded (before a trace).
    fn expand_all(&mut self) {
        for (i, (f, _)) in FORM.iter().enumerate() {
            if let Some(options) = choices(*f)
                && let Some(v) = expand(options, &self.values[i])
            {
                self.values[i] = v.to_string();
            }
        }
    }

    pub fn type_char(&mut self, c: char) {
        // A fixed-value field showing a whole value: typing starts a new one (`est`).
        if let Some(options) = self.fixed()
            && options
                .iter()
                .any(|o| o.eq_ignore_ascii_case(self.values[self.field].trim()))
        {
            self.values[self.field].clear();
        }
        if let Some(v) = self.values.get_mut(self.field)
            && v.chars().count() < 64
        {
            v.push(c);
        }
        self.error = None;
    }

    pub fn delete_char(&mut self) {
        if let Some(v) = self.values.get_mut(self.field) {
            v.pop();
        }
        self.error = None;
    }

    /// The packet the form describes, or the field at fault and why.
    pub fn packet(&self) -> Result<Packet, (Field, String)> {
        fn opt<T>(
            s: &str,
            f: Field,
            p: impl Fn(&str) -> Result<T, String>,
        ) -> Result<Option<T>, (Field, String)> {
            let s = s.trim();
            if s.is_empty() {
                Ok(None)
            } else {
                p(s).map(Some).map_err(|e| (f, e))
            }
        }
        let need = |f: Field, what: &str| -> Result<String, (Field, String)> {
            let v = self.value(f).trim();
            if v.is_empty() {
                Err((f, format!("give {what}")))
            } else {
                Ok(v.to_string())
            }
        };
        let proto = fields::proto(&need(Field::Proto, "a protocol, e.g. tcp")?)
            .map_err(|e| (Field::Proto, e))?;
        let src =
            fields::addr(&need(Field::Src, "the source address")?).map_err(|e| (Field::Src, e))?;
        let dst = fields::addr(&need(Field::Dst, "the destination address")?)
            .map_err(|e| (Field::Dst, e))?;
        let local = match self
            .value(Field::Local)
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "no" | "n" => false,
            "yes" | "y" => true,
            other => {
                return Err((
                    Field::Local,
                    format!(
                        "{other:?}: write yes (sent by this machine) or no (arriving from the network)"
                    ),
                ));
            }
        };
        let state = match self.value(Field::State).trim() {
            "" => CtState::New,
            s => fields::state(s).map_err(|e| (Field::State, e))?,
        };
        PacketFields {
            proto,
            src,
            dst,
            sport: opt(self.value(Field::Sport), Field::Sport, fields::port)?,
            dport: opt(self.value(Field::Dport), Field::Dport, fields::port)?,
            tcp_flags: opt(
                self.value(Field::TcpFlags),
                Field::TcpFlags,
                fields::tcp_flags,
            )?,
            icmp_type: opt(self.value(Field::Icmp), Field::Icmp, |s| Ok(s.to_string()))?,
            in_iface: opt(self.value(Field::InIface), Field::InIface, fields::iface)?,
            out_iface: opt(self.value(Field::OutIface), Field::OutIface, fields::iface)?,
            local,
            state,
            mark: opt(self.value(Field::Mark), Field::Mark, fields::mark)?,
            ttl: None,
            length: None,
        }
        .packet(field_name)
    }

    /// This machine's addresses for a trace on `snap`.
    pub(crate) fn local_addrs(&self, snap: &RulesetSnapshot) -> Vec<LocalAddr> {
        match (&self.locals, &snap.origin) {
            (Some(l), _) => l.clone(),
            (None, SourceOrigin::Demo) => local_addrs::demo(),
            (None, _) => Vec::new(),
        }
    }

    /// Trace the form's packet through the staged rule sets when there are (unless
    /// `kernel_only`), else through `snap`. Errors land on the form.
    pub fn run(&mut self, snap: Option<&RulesetSnapshot>, staged: StagedSets) {
        self.message = None;
        self.expand_all();
        let packet = match self.packet() {
            Ok(p) => p,
            Err((f, e)) => {
                self.field = index_of(f);
                self.error = Some((f, e));
                self.focus = TraceFocus::Form;
                return;
            }
        };
        let mut packet = packet;
        if let Some(nat) = self.nat.as_ref().filter(|n| n.describes(&packet)) {
            packet.dnat = nat.dnat;
            packet.snat = nat.snat;
        }
        let family = packet.family();
        let Some(snap) = snap else {
            self.error = Some((Field::Src, "no rule set has been read yet".into()));
            return;
        };
        let staged_rs = staged
            .filter(|_| !self.kernel_only)
            .and_then(|(sets, v)| Some((sets.iter().find(|r| r.family == family)?, v)));
        let (basis, key, rs) = match staged_rs {
            Some((rs, v)) => (Basis::Staged, (snap.generation, Some(v)), Some(rs)),
            None => (
                Basis::Kernel,
                (snap.generation, None),
                snap.family(family).ruleset(),
            ),
        };
        let Some(rs) = rs else {
            self.field = index_of(Field::Src);
            self.error = Some((
                Field::Src,
                format!(
                    "the addresses are {} but no {} rule set is loaded",
                    family.label(),
                    family.label()
                ),
            ));
            self.focus = TraceFocus::Form;
            return;
        };
        self.cache.retain(|(k, _, _)| k.0 == snap.generation);
        if !self.cache.iter().any(|(k, f, _)| *f == family && *k == key) {
            // One tracer per family and basis: the older staged one goes.
            self.cache
                .retain(|(k, f, _)| *f != family || k.1.is_some() != key.1.is_some());
            // The native nftables chains the packet also meets: the kernel's, read now (a
            // commit never changes them, so a staged trace meets the same).
            let native = match snap.origin {
                crate::source::Origin::Kernel { backend } => {
                    match crate::source::native::tracer_native(backend, rs) {
                        Ok(n) => n,
                        Err(e) => {
                            self.message = Some(format!(
                                "native nftables chains could not be read, the trace leaves them out: {e}"
                            ));
                            Default::default()
                        }
                    }
                }
                _ => Default::default(),
            };
            self.cache
                .push((key, family, Tracer::with_native(rs, native)));
        }
        let opts = TraceOptions {
            local_addrs: self.local_addrs(snap),
            ..TraceOptions::default()
        };
        let Some((_, _, tracer)) = self
            .cache
            .iter()
            .find(|(k, f, _)| *f == family && *k == key)
        else {
            return;
        };
        let trace = tracer.trace(&packet, &opts);
        self.error = None;
        self.result = Some(TraceResult {
            packet,
            trace,
            basis,
        });
        self.focus = TraceFocus::Steps;
        self.path = 0;
        self.cursor_to_decider();
    }

    /// A native rule's text, from the tracer that walked it.
    pub fn native_text(&self, s: &crate::trace::Step) -> Option<&str> {
        let (t, h) = (s.nft_table.as_deref()?, s.handle?);
        self.cache
            .iter()
            .find(|(_, f, _)| *f == s.family)?
            .2
            .native()
            .rule_text(t, s.chain.as_deref()?, h)
    }

    /// How many tracers are prepared (tests: one per family and snapshot).
    pub fn prepared(&self) -> usize {
        self.cache.len()
    }

    /// Put the cursor on the row of the shown path's deciding step.
    fn cursor_to_decider(&mut self) {
        let rows = self.rows();
        let decider = self
            .result
            .as_ref()
            .and_then(|r| r.trace.paths.get(self.path))
            .and_then(|p| p.decided_by);
        self.cursor = decider
            .and_then(|d| rows.iter().position(|r| r.step == Some(d) && r.is_step()))
            .unwrap_or(0);
        self.offset = 0;
    }

    pub fn switch_path(&mut self, delta: isize) -> bool {
        let Some(r) = &self.result else {
            return false;
        };
        let n = r.trace.paths.len() as isize;
        if n < 2 {
            return false;
        }
        self.path = ((self.path as isize + delta).rem_euclid(n)) as usize;
        self.cursor_to_decider();
        true
    }

    pub fn move_cursor(&mut self, delta: isize, viewport: usize) {
        let n = self.rows().len();
        if n == 0 {
            return;
        }
        self.cursor = (self.cursor as isize + delta).clamp(0, n as isize - 1) as usize;
        super::app::keep_in_view(&mut self.cursor, &mut self.offset, n, viewport);
    }

    /// Keep the cursor in view, centred when it was out of it.
    pub fn scroll_into_view(&mut self, viewport: usize) {
        let n = self.rows().len();
        if self.cursor < self.offset || self.cursor >= self.offset + viewport {
            self.offset = self.cursor.saturating_sub(viewport / 2);
        }
        super::app::keep_in_view(&mut self.cursor, &mut self.offset, n, viewport);
    }

    /// The step under the cursor.
    pub fn selected_step(&self) -> Option<&Step> {
        let r = self.result.as_ref()?;
        let path = r.trace.paths.get(self.path)?;
        let i = self.rows().get(self.cursor)?.step?;
        path.steps.get(i)
    }

    /// Fill the form from a conntrack entry's original direction and trace it.
    pub fn fill_from_entry(&mut self, e: &Entry) {
        let t = &e.orig;
        let mut s = TraceScreen::new();
        s.set(Field::Proto, proto_name(e.proto.0));
        s.set(Field::Src, t.src.to_string());
        s.set(Field::Dst, t.dst.to_string());
        let ports = crate::trace::packet::has_ports(e.proto.0);
        if ports {
            s.set(
                Field::Sport,
                t.sport.map_or(String::new(), |p| p.to_string()),
            );
            s.set(
                Field::Dport,
                t.dport.map_or(String::new(), |p| p.to_string()),
            );
        }
        if let Some(i) = &t.icmp {
            s.set(Field::Icmp, format!("{}/{}", i.kind, i.code));
        }
        let state = if e.status.has(Status::SEEN_REPLY) {
            CtState::Established
        } else {
            CtState::New
        };
        s.set(Field::State, state.name());
        self.values = s.values;
        self.field = 0;
        let (dnat, snat) = Binding::of_entry(e);
        self.nat = (dnat.is_some() || snat.is_some()).then_some(EntryNat {
            proto: e.proto.0,
            orig: e.orig,
            dnat,
            snat,
        });
    }

    /// Fill the form with a packet of a reachability question (`r`, then Enter on a cell):
    /// from `src` to `dst`, its protocol, ports and state; a forwarded question's packet
    /// arrives from the network, an OUTPUT one is sent from here.
    pub fn fill_from_reach(
        &mut self,
        src: std::net::IpAddr,
        dst: std::net::IpAddr,
        q: &crate::trace::reach::ReachQuery,
    ) {
        let mut s = TraceScreen::new();
        s.set(Field::Proto, proto_name(q.proto));
        s.set(Field::Src, src.to_string());
        s.set(Field::Dst, dst.to_string());
        if crate::trace::packet::has_ports(q.proto) {
            s.set(
                Field::Sport,
                q.sport.map_or(String::new(), |p| p.to_string()),
            );
            s.set(
                Field::Dport,
                q.dport.map_or(String::new(), |p| p.to_string()),
            );
        }
        s.set(Field::State, q.state.name());
        if q.hook == crate::trace::Hook::Output {
            s.set(Field::Local, "yes");
        }
        self.values = s.values;
        self.field = 0;
        self.nat = None;
    }

    /// Fill the form from `SSH_CONNECTION` ("client_ip client_port server_ip server_port"): a
    /// packet of this session arriving from the client. Says why not when it cannot.
    pub fn fill_from_ssh(&mut self) -> bool {
        let Some(conn) = self.ssh.clone() else {
            self.message = Some("not in an SSH session: SSH_CONNECTION is not set".to_string());
            return false;
        };
        let parts: Vec<&str> = conn.split_whitespace().collect();
        let ok = parts.len() == 4
            && fields::addr(parts[0]).is_ok()
            && fields::addr(parts[2]).is_ok()
            && fields::port(parts[1]).is_ok()
            && fields::port(parts[3]).is_ok();
        if !ok {
            self.message = Some(format!(
                "SSH_CONNECTION is {conn:?}, not \"client_ip client_port server_ip server_port\""
            ));
            return false;
        }
        let mut s = TraceScreen::new();
        s.set(Field::Proto, "tcp");
        s.set(Field::Src, parts[0].trim_start_matches("::ffff:"));
        s.set(Field::Sport, parts[1]);
        s.set(Field::Dst, parts[2].trim_start_matches("::ffff:"));
        s.set(Field::Dport, parts[3]);
        s.set(Field::State, CtState::Established.name());
        self.values = s.values;
        self.field = 0;
        true
    }

    /// The rows of the shown path: hook and chain headings, rules, effects and notes, indented
    /// by call depth.
    pub fn rows(&self) -> Vec<StepRow> {
        let Some(r) = &self.result else {
            return Vec::new();
        };
        let Some(path) = r.trace.paths.get(self.path) else {
            return Vec::new();
        };
        step_rows(&path.steps)
    }
}

/// The values a fixed-value field cycles through (`None`: typed freely).
pub fn choices(f: Field) -> Option<&'static [&'static str]> {
    match f {
        Field::Proto => Some(&["tcp", "udp", "icmp", "ipv6-icmp", "sctp", "gre", "esp"]),
        Field::Local => Some(&["no", "yes"]),
        Field::State => Some(&["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED"]),
        _ => None,
    }
}

/// The one option that `typed` is a case-insensitive prefix of (an exact match first), if it
/// is unique. An empty text expands to nothing.
pub fn expand(options: &[&'static str], typed: &str) -> Option<&'static str> {
    let typed = typed.trim();
    if typed.is_empty() {
        return None;
    }
    if let Some(o) = options.iter().find(|o| o.eq_ignore_ascii_case(typed)) {
        return Some(o);
    }
    let lower = typed.to_ascii_lowercase();
    let mut hits = options
        .iter()
        .filter(|o| o.to_ascii_lowercase().starts_with(&lower));
    match (hits.next(), hits.next()) {
        (Some(o), None) => Some(o),
        _ => None,
    }
}

/// "yes", "no", or for an undecided match which way this path assumed: "?→yes", "?→no".
fn matched_text(kind: &StepKind) -> String {
    match kind {
        StepKind::Rule {
            matched: Tri::Yes, ..
        } => "yes".into(),
        StepKind::Rule {
            matched: Tri::No, ..
        } => "no".into(),
        StepKind::Rule {
            assumed: Some(a), ..
        } => format!("?→{}", if *a { "yes" } else { "no" }),
        _ => "?".into(),
    }
}

/// The rows for a path's steps.
pub fn step_rows(steps: &[Step]) -> Vec<StepRow> {
    let mut out = Vec::new();
    let mut hook = None;
    // The chains being walked in the current table, the built-in one first.
    let mut stack: Vec<(String, String)> = Vec::new();
    let mut entering: Option<String> = None;
    for (i, s) in steps.iter().enumerate() {
        if let StepKind::Routing { reason, .. } = &s.kind {
            out.push(StepRow {
                step: Some(i),
                depth: 0,
                kind: RowKind::Note(format!("routing: {reason}")),
            });
            hook = None;
            stack.clear();
            continue;
        }
        if hook != Some(s.hook) {
            out.push(StepRow {
                step: None,
                depth: 0,
                kind: RowKind::Hook(s.hook.name().to_string()),
            });
            hook = Some(s.hook);
            stack.clear();
        }
        if let StepKind::Skip { reason } = &s.kind {
            out.push(StepRow {
                step: Some(i),
                depth: 1,
                kind: RowKind::Note(reason.clone()),
            });
            continue;
        }
        let chain = s.chain.as_deref().unwrap_or("").to_string();
        let table = match (&s.nft_table, s.table) {
            (Some(n), _) => format!("{n} (nftables)"),
            (None, t) => t.map_or("", |t| t.name()).to_string(),
        };
        let here = (table.clone(), chain.clone());
        if stack.last() != Some(&here) {
            if let Some(pos) = stack.iter().position(|c| *c == here) {
                stack.truncate(pos + 1);
            } else {
                let same_table = stack.last().is_some_and(|c| c.0 == table);
                if !(same_table && entering.as_deref() == Some(chain.as_str())) {
                    stack.clear();
                }
                stack.push(here);
                out.push(StepRow {
                    step: Some(i),
                    depth: stack.len(),
                    kind: RowKind::Chain(format!("{table} {chain}")),
                });
            }
        }
        entering = None;
        let depth = stack.len() + 1;
        match &s.kind {
            StepKind::Rule { effect, .. } => {
                out.push(StepRow {
                    step: Some(i),
                    depth,
                    kind: RowKind::Rule {
                        rule: s.rule.unwrap_or(0),
                        matched: matched_text(&s.kind),
                    },
                });
                if let Some(e) = effect {
                    if let Effect::Jump { chain } | Effect::Goto { chain } = e.as_ref() {
                        entering = Some(chain.to_string());
                    }
                    out.push(StepRow {
                        step: Some(i),
                        depth,
                        kind: RowKind::Effect(e.to_string()),
                    });
                }
            }
            StepKind::Policy { verdict } => out.push(StepRow {
                step: Some(i),
                depth,
                kind: RowKind::Note(format!("policy {verdict}")),
            }),
            StepKind::ChainEnd => out.push(StepRow {
                step: Some(i),
                depth,
                kind: RowKind::Note(format!("end of {chain}: back to the rule after the jump")),
            }),
            StepKind::Routing { .. } | StepKind::Skip { .. } => {}
        }
    }
    out
}
