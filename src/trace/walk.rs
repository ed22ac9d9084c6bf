//! The walk: a packet through the hooks and tables in the kernel's order, rule by rule, with an
//! explicit stack of chain frames (no recursion, so no rule set can overflow the stack). A walk
//! is a `State` that can be cloned at any rule; an unknown match clones it, the clone assuming
//! the rule did not match, and both go on to their own verdicts.
//!
//! ```text
//!  from the network                                 from a local process
//!  PREROUTING raw ─ conntrack ─ mangle ─ nat         routing (loopback or out)
//!        │                                           OUTPUT raw ─ conntrack ─ mangle ─ nat ─ filter ─ security
//!     routing ── local ──► INPUT mangle ─ filter ─ security ─ nat ──► process
//!        │                                                 │
//!     forward ─► FORWARD mangle ─ filter ─ security ─► POSTROUTING mangle ─ nat ─► out
//!                                                          └─ to a local address: back in on lo
//!                                                             (PREROUTING, INPUT; nat already done)
//! ```

use super::compile::{Action, Cond, ConnMarkOp, NatTo, PChain, PTable, Policy, Prepared};
use super::eval::{AddrVal, Bits, Ct, Env, IfVal, Pkt, PortVal, eval};
use super::nft::{self, NVerdict, Native};
use super::packet::{
    CtState, LocalAddr, Origin, Packet, PktType, family_of, has_ports, icmp_proto, is_icmp_error,
};
use super::{
    Assumption, Change, Effect, Fork, Headers, Hook, Path, Route, Step, StepKind, TableId, Trace,
    Tri, Verdict,
};
use crate::ruleset::{Family, Ruleset};
use compact_str::CompactString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// A rule set prepared for tracing. Build it once per rule set; `trace` is then cheap.
pub struct Tracer {
    prep: Prepared,
    native: Arc<Native>,
    /// The native chains' names and policies, in `native`'s order, for the walk's frames.
    native_table: PTable,
    /// What each hook calls, in the kernel's order.
    plan: [Vec<Slot>; 5],
}

/// One base chain at a hook: an iptables table's built-in chain, or a native one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Ipt(TableId),
    Native(u32),
}

fn ipt_priority(t: TableId, hook: Hook) -> i32 {
    t.priority(hook)
}

/// The base chains of every hook in the order the kernel calls them: by priority, and at
/// equal priority the one registered later first (nf_tables: the later table, then the later
/// chain; legacy x_tables count as registered before any nf_tables chain).
fn plan(native: &Native) -> [Vec<Slot>; 5] {
    Hook::ALL.map(|hook| {
        let mut v: Vec<(i32, (u64, u64), Slot)> = hook
            .tables()
            .iter()
            .map(|&t| {
                let order = native.ipt_order.get(&(t, hook)).copied().unwrap_or((0, 0));
                (ipt_priority(t, hook), order, Slot::Ipt(t))
            })
            .collect();
        for &c in &native.bases[hook.index()] {
            if let Some(b) = native.chains[c as usize].base {
                v.push((b.priority, b.order, Slot::Native(c)));
            }
        }
        v.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        v.into_iter().map(|(_, _, s)| s).collect()
    })
}

/// What a trace needs to know besides the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceOptions {
    /// This machine's addresses: the routing decision (local or forwarded), addrtype LOCAL,
    /// MASQUERADE and REDIRECT. Loopback (127.0.0.0/8, ::1) is always local.
    pub local_addrs: Vec<LocalAddr>,
    /// How many paths to follow at most; further forks are counted, not followed.
    pub max_paths: usize,
    /// How many rules all paths together may look at before the walk is called off: without a
    /// loop, chains that call each other over and over can still multiply the work (and the
    /// steps kept) beyond any use.
    pub max_steps: usize,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            local_addrs: Vec::new(),
            max_paths: 64,
            max_steps: 1_000_000,
        }
    }
}

impl Tracer {
    pub fn new(rs: &Ruleset) -> Tracer {
        Tracer::with_native(rs, Native::default())
    }

    /// The iptables rule set `rs` and the native nftables chains beside it, walked together in
    /// the kernel's order at every hook.
    pub fn with_native(rs: &Ruleset, native: Native) -> Tracer {
        let native_table = PTable {
            chains: native
                .chains
                .iter()
                .map(|c| PChain {
                    name: c.name.clone(),
                    policy: c
                        .base
                        .map(|b| if b.drop { Policy::Drop } else { Policy::Accept }),
                    rules: Vec::new(),
                })
                .collect(),
            base: [None; 5],
        };
        Tracer {
            prep: Prepared::new(rs),
            plan: plan(&native),
            native: Arc::new(native),
            native_table,
        }
    }

    /// The native chains this tracer walks besides the iptables ones.
    pub fn native(&self) -> &Native {
        &self.native
    }

    pub fn family(&self) -> Family {
        self.prep.family
    }

    /// Every path the packet can take, each with its steps and verdict.
    pub fn trace(&self, packet: &Packet, opts: &TraceOptions) -> Trace {
        let family = self.prep.family;
        let mut forks = Forks {
            pending: Vec::new(),
            done: Vec::new(),
            next_id: 1,
            unexplored: 0,
            max_paths: opts.max_paths.max(1),
            steps_left: opts.max_steps,
            max_steps: opts.max_steps,
        };
        let locals: Vec<LocalAddr> = opts
            .local_addrs
            .iter()
            .filter(|l| family_of(l.addr) == family)
            .cloned()
            .collect();
        let env = Env {
            family,
            locals: &locals,
        };
        let start = State::new(packet, &env);
        if let Some(why) = mismatch(packet, family) {
            forks.done.push(start.finish(Verdict::Error, None, why));
        } else {
            forks.pending.push(start);
        }
        while let Some(s) = forks.pending.pop() {
            let path = Walk {
                prep: &self.prep,
                tracer: self,
                env: &env,
                forks: &mut forks,
            }
            .run(s);
            forks.done.push(path);
        }
        let mut paths = forks.done;
        paths.sort_by_key(|p| p.id);
        Trace {
            family,
            paths,
            unexplored: forks.unexplored,
            max_paths: forks.max_paths,
        }
    }
}

fn mismatch(p: &Packet, family: Family) -> Option<String> {
    if family_of(p.src) != family_of(p.dst) {
        return Some(format!(
            "the source {} and the destination {} are not of the same family",
            p.src, p.dst
        ));
    }
    if p.family() != family {
        return Some(format!(
            "an {} packet cannot be traced through an {} rule set",
            p.family().label(),
            family.label()
        ));
    }
    None
}

struct Forks {
    pending: Vec<State>,
    done: Vec<Path>,
    next_id: usize,
    unexplored: usize,
    max_paths: usize,
    /// Rules all paths together may still look at.
    steps_left: usize,
    max_steps: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    /// At this hook, before the table at this index of `Hook::tables`.
    Hook(Hook, u8),
    Route,
    /// After nat OUTPUT: route a locally sent packet again, then on to this table of OUTPUT.
    /// A stage of its own, so that a fork there resumes at the decision.
    Reroute(u8),
}

/// One chain being walked: the rule to look at next; `mark` is where this frame's chains
/// start in `State::active`.
#[derive(Debug, Clone, Copy)]
struct Frame {
    chain: u32,
    next: u32,
    mark: u32,
}

#[derive(Debug, Clone)]
struct State {
    id: usize,
    fork: Option<Fork>,
    pkt: Pkt,
    origin: Origin,
    given_out: Option<CompactString>,
    /// Where a locally sent packet is routed (Out or Loopback).
    local_route: Route,
    stage: Stage,
    /// The chains being walked in the current table; empty between tables.
    frames: Vec<Frame>,
    /// Every chain entered and not yet left, gotos included: entering one again is a loop.
    active: Vec<u32>,
    /// The way to go at the next unknown decision (set on the clone of a fork).
    forced: Option<bool>,
    steps: Vec<Step>,
    /// At which hook nat chains were last entered in this pass, and whether one of them
    /// translated the connection (then later ones at that hook are not called).
    nat_here: Option<(Hook, bool)>,
    /// The steps that ended each table's traversal with ACCEPT (rule, NAT or policy).
    exits: Vec<usize>,
    /// What this path assumed about stable conditions: the same words answer the same.
    memo: Vec<(String, bool)>,
    assumptions: Vec<Assumption>,
}

impl State {
    fn new(p: &Packet, env: &Env) -> State {
        let ports = |v: Option<u16>| match v {
            _ if !has_ports(p.proto) => PortVal::None,
            Some(n) => PortVal::Known(n),
            None => PortVal::Range(0, 65535),
        };
        let icmp = (p.proto == icmp_proto(env.family))
            .then_some(p.icmp)
            .flatten();
        let ctmark = match (p.ctmark, p.state) {
            (Some(m), _) => Bits::known(m),
            (None, CtState::New) => Bits::known(0),
            (None, _) => Bits::UNKNOWN,
        };
        let pkttype = p.pkttype.or(match p.origin {
            Origin::Network => Some(derive_pkttype(p.dst, env)),
            Origin::Local => None,
        });
        let in_if = match (p.origin, &p.in_iface) {
            (Origin::Local, _) => IfVal::None,
            (Origin::Network, Some(i)) => IfVal::Known(i.into()),
            (Origin::Network, None) => IfVal::Unknown,
        };
        State {
            id: 0,
            fork: None,
            pkt: Pkt {
                proto: p.proto,
                src: AddrVal::Known(p.src),
                dst: AddrVal::Known(p.dst),
                sport: ports(p.sport),
                dport: ports(p.dport),
                tcp_flags: p.effective_tcp_flags(),
                icmp,
                in_if,
                out_if: IfVal::None,
                mark: Bits::known(p.mark),
                ctmark,
                ct: Ct {
                    state: p.state,
                    attached: false,
                    notrack: false,
                    dnat: false,
                    snat: false,
                    confirmed: false,
                    orig: None,
                    nat_dst_done: false,
                    nat_src_done: false,
                },
                length: p.length,
                ttl: p.ttl,
                mac: p.mac,
                fragment: p.fragment,
                pkttype,
                looped: false,
                dnat_to: p.dnat,
                snat_to: p.snat,
            },
            origin: p.origin,
            given_out: p.out_iface.as_deref().map(CompactString::from),
            local_route: Route::Out,
            stage: Stage::Start,
            frames: Vec::new(),
            active: Vec::new(),
            forced: None,
            steps: Vec::new(),
            nat_here: None,
            exits: Vec::new(),
            memo: Vec::new(),
            assumptions: Vec::new(),
        }
    }

    fn finish(self, verdict: Verdict, decided_by: Option<usize>, note: String) -> Path {
        let p = &self.pkt;
        // The packet's state, not the raw table's view of it (no connection yet).
        let state = if p.ct.notrack {
            CtState::Untracked
        } else {
            p.ct.state
        };
        Path {
            id: self.id,
            fork: self.fork,
            steps: self.steps,
            verdict,
            decided_by,
            note,
            assumptions: self.assumptions,
            headers: Headers {
                src: p.src.text(),
                dst: p.dst.text(),
                sport: p.sport.text(),
                dport: p.dport.text(),
                mark: p.mark.text(),
                state: state.name().to_string(),
            },
        }
    }

    fn push(&mut self, family: Family, hook: Hook, kind: StepKind) -> usize {
        self.steps.push(Step {
            family,
            hook,
            table: None,
            nft_table: None,
            chain: None,
            rule: None,
            handle: None,
            kind,
        });
        self.steps.len() - 1
    }
}

fn derive_pkttype(dst: IpAddr, env: &Env) -> PktType {
    if dst.is_multicast() {
        PktType::Multicast
    } else if env.is_broadcast(dst) {
        PktType::Broadcast
    } else {
        PktType::Unicast
    }
}

/// Whether an address is delivered locally: one of this machine's, loopback, a broadcast, or
/// multicast.
fn delivered_locally(a: &AddrVal, env: &Env) -> Tri {
    let local = |a: IpAddr| env.is_local(a) || env.is_broadcast(a) || a.is_multicast();
    match a {
        AddrVal::Known(a) => Tri::from_bool(local(*a)),
        AddrVal::Range(x, y) if x == y => Tri::from_bool(local(*x)),
        AddrVal::Range(..) => Tri::Unknown,
        AddrVal::Local(_) => Tri::Yes,
    }
}

struct Walk<'a, 'e> {
    prep: &'a Prepared,
    tracer: &'a Tracer,
    env: &'a Env<'e>,
    forks: &'a mut Forks,
}

/// What the walk does after a step: go on, or end the path.
enum Flow {
    Next,
    End(Verdict, Option<usize>, String),
}

/// Where in the rule set a step happens: the hook, the base chain (its index in the hook's
/// plan), and its table: an iptables one (`t`), or the native chains (`native`).
#[derive(Clone, Copy)]
struct At<'t> {
    hook: Hook,
    ti: u8,
    t: Option<TableId>,
    table: &'t PTable,
    /// The base chain this traversal started from.
    base: Option<u32>,
    native: Option<&'t Native>,
    /// A nat chain (iptables' nat table or a native chain of type nat).
    nat: bool,
}

impl At<'_> {
    /// Label a step with this place's table.
    fn label(&self, step: &mut Step, chain: u32) {
        step.table = self.t;
        if let Some(n) = self.native {
            step.nft_table = n.chains.get(chain as usize).map(|c| c.table.clone());
        }
    }
}

impl Walk<'_, '_> {
    fn family(&self) -> Family {
        self.prep.family
    }

    fn run(&mut self, mut s: State) -> Path {
        loop {
            let flow = match s.stage {
                Stage::Start => {
                    self.start(&mut s);
                    Flow::Next
                }
                Stage::Route => self.route(&mut s),
                Stage::Reroute(ti) => {
                    self.route_local(&mut s, true);
                    s.stage = Stage::Hook(Hook::Output, ti);
                    Flow::Next
                }
                Stage::Hook(hook, ti) => self.hook(&mut s, hook, ti),
            };
            if let Flow::End(verdict, by, note) = flow {
                return s.finish(verdict, by, note);
            }
        }
    }

    /// Split the walk: the clone will take `false` at the decision about to be made. Returns
    /// whether it did (the path bound may forbid it).
    fn fork(&mut self, s: &State) -> bool {
        let f = &mut *self.forks;
        if f.done.len() + f.pending.len() + 1 >= f.max_paths {
            f.unexplored += 1;
            return false;
        }
        let mut alt = s.clone();
        alt.forced = Some(false);
        alt.id = f.next_id;
        alt.fork = Some(Fork {
            parent: s.id,
            step: s.steps.len(),
        });
        f.next_id += 1;
        f.pending.push(alt);
        true
    }

    /// Decide an unknown: the forced way on a fork's clone, else `true` (after forking).
    fn decide(&mut self, s: &mut State) -> bool {
        match s.forced.take() {
            Some(b) => b,
            None => {
                self.fork(s);
                true
            }
        }
    }

    fn start(&mut self, s: &mut State) {
        match s.origin {
            Origin::Network => s.stage = Stage::Hook(Hook::Prerouting, 0),
            Origin::Local => {
                self.route_local(s, false);
                s.stage = Stage::Hook(Hook::Output, 0);
            }
        }
    }

    /// Whether the destination is delivered locally; when that cannot be told (a NAT range
    /// partly local), the walk forks.
    fn dst_local(&mut self, s: &mut State) -> bool {
        match delivered_locally(&s.pkt.dst, self.env) {
            Tri::Unknown => {
                let b = self.decide(s);
                s.assumptions.push(Assumption {
                    step: s.steps.len(),
                    condition: format!("{} is a local address", s.pkt.dst.text()),
                    matched: b,
                });
                b
            }
            t => t == Tri::Yes,
        }
    }

    /// The routing of a locally sent packet (before OUTPUT, and again after a DNAT in nat
    /// OUTPUT): to a local address over lo, else out.
    fn route_local(&mut self, s: &mut State, again: bool) {
        let dst = s.pkt.dst.text();
        let (route, reason) = if self.dst_local(s) {
            s.pkt.out_if = IfVal::Known("lo".into());
            (
                Route::Loopback,
                format!("{dst} is a local address: out on lo, then back in"),
            )
        } else {
            let how = leave_by_given(s, self.env);
            (Route::Out, format!("{dst} is not a local address: {how}"))
        };
        if again && route == s.local_route {
            return;
        }
        s.local_route = route;
        let reason = if again {
            format!("rerouted after NAT: {reason}")
        } else {
            reason
        };
        s.push(
            self.family(),
            Hook::Output,
            StepKind::Routing { route, reason },
        );
    }

    /// The routing decision after PREROUTING.
    fn route(&mut self, s: &mut State) -> Flow {
        let dst = s.pkt.dst.text();
        let (route, reason, next) = if self.dst_local(s) {
            s.pkt.out_if = IfVal::None;
            let reason = format!("{dst} is delivered locally");
            (Route::Local, reason, Hook::Input)
        } else {
            let how = leave_by_given(s, self.env);
            let reason = format!("{dst} is not a local address: forwarded, {how}");
            (Route::Forward, reason, Hook::Forward)
        };
        s.push(
            self.family(),
            Hook::Prerouting,
            StepKind::Routing { route, reason },
        );
        s.stage = Stage::Hook(next, 0);
        Flow::Next
    }

    /// After the last table of a hook.
    fn after_hook(&mut self, s: &mut State, hook: Hook) -> Flow {
        match hook {
            Hook::Prerouting if s.pkt.looped => s.stage = Stage::Hook(Hook::Input, 0),
            Hook::Prerouting => s.stage = Stage::Route,
            Hook::Input => {
                let by = accept_decider(s);
                return Flow::End(Verdict::Accept, by, "delivered to a local process".into());
            }
            Hook::Forward | Hook::Output => s.stage = Stage::Hook(Hook::Postrouting, 0),
            Hook::Postrouting => {
                if s.origin == Origin::Local && s.local_route == Route::Loopback && !s.pkt.looped {
                    let p = &mut s.pkt;
                    p.looped = true;
                    p.in_if = IfVal::Known("lo".into());
                    p.out_if = IfVal::None;
                    p.ct.confirmed = true;
                    if p.pkttype.is_none()
                        && let AddrVal::Known(a) = p.dst
                    {
                        p.pkttype = Some(derive_pkttype(a, self.env));
                    }
                    s.push(
                        self.family(),
                        Hook::Postrouting,
                        StepKind::Routing {
                            route: Route::Loopback,
                            reason: "back in on lo".into(),
                        },
                    );
                    s.stage = Stage::Hook(Hook::Prerouting, 0);
                } else {
                    let by = accept_decider(s);
                    let out = s.pkt.out_if.text().unwrap_or_else(|| "?".into());
                    let note = if out == "?" {
                        "sent out".to_string()
                    } else {
                        format!("sent out on {out}")
                    };
                    return Flow::End(Verdict::Accept, by, note);
                }
            }
        }
        Flow::Next
    }

    /// A packet of an existing connection with a NAT binding is rewritten from it where the nat
    /// table would run (destination at PREROUTING and OUTPUT, source at POSTROUTING and INPUT),
    /// as the kernel's conntrack does, and the nat table is not traversed. True when it did.
    fn apply_binding(&mut self, s: &mut State, hook: Hook) -> bool {
        let (state, has_ct) = s.pkt.ct.view();
        if !has_ct || state == CtState::New {
            return false;
        }
        let dst = matches!(hook, Hook::Prerouting | Hook::Output);
        let (binding, done) = if dst {
            (s.pkt.dnat_to, s.pkt.ct.nat_dst_done)
        } else {
            (s.pkt.snat_to, s.pkt.ct.nat_src_done)
        };
        let Some(b) = binding.filter(|_| !done) else {
            return false;
        };
        let changes = rewrite(
            &mut s.pkt,
            dst,
            AddrVal::Known(b.addr),
            b.port.map(|p| (p, p)),
        );
        if dst {
            s.pkt.ct.dnat = true;
            s.pkt.ct.nat_dst_done = true;
        } else {
            s.pkt.ct.snat = true;
            s.pkt.ct.nat_src_done = true;
        }
        let what = changes
            .iter()
            .map(|c| format!("{} {} → {}", c.field, c.from, c.to))
            .collect::<Vec<_>>()
            .join(", ");
        let reason = format!(
            "nat is not traversed (the packet is {}): the connection's {} binding rewrites it: {}",
            state.name(),
            if dst { "DNAT" } else { "SNAT" },
            if what.is_empty() {
                "no change".into()
            } else {
                what
            }
        );
        let i = s.push(self.family(), hook, StepKind::Skip { reason });
        s.steps[i].table = Some(TableId::Nat);
        true
    }

    /// Why the nat table is not traversed here, if it is not.
    fn nat_skip(&self, s: &State, hook: Hook) -> Option<String> {
        let (state, has_ct) = s.pkt.ct.view();
        if !has_ct {
            return Some(format!(
                "nat is not traversed: the packet is {state}, so there is no connection to translate"
            ));
        }
        if state == CtState::Established {
            return Some(
                "nat is not traversed: only a connection's first packet is; an ESTABLISHED one is translated as its connection was".into(),
            );
        }
        if state == CtState::Related
            && let Some((t, _)) = s.pkt.icmp
            && is_icmp_error(self.family() == Family::V6, t)
        {
            return Some(
                "nat is not traversed: an ICMP error is translated with the connection it belongs to".into(),
            );
        }
        let dst_manip = matches!(hook, Hook::Prerouting | Hook::Output);
        if (dst_manip && s.pkt.ct.nat_dst_done) || (!dst_manip && s.pkt.ct.nat_src_done) {
            return Some(
                "nat is not traversed: this connection's NAT was decided when it was sent".into(),
            );
        }
        None
    }

    fn hook(&mut self, s: &mut State, hook: Hook, ti: u8) -> Flow {
        let prep = self.prep;
        let Some(&slot) = self.tracer.plan[hook.index()].get(ti as usize) else {
            return self.after_hook(s, hook);
        };
        let t = match slot {
            Slot::Ipt(t) => t,
            Slot::Native(c) => return self.native_hook(s, hook, ti, c),
        };
        let next = Stage::Hook(hook, ti + 1);
        let Some(table) = prep.tables[t.index()].as_ref() else {
            // Not in the rule set: nothing to walk (conntrack still runs after raw), but a
            // connection's NAT binding still applies where nat would.
            attach_after_raw(s, hook, ipt_priority(t, hook));
            s.stage = if t == TableId::Nat && self.apply_binding(s, hook) && hook == Hook::Output {
                Stage::Reroute(ti + 1)
            } else {
                next
            };
            return Flow::Next;
        };
        let at = At {
            hook,
            ti,
            t: Some(t),
            table,
            base: table.base[hook.index()],
            native: None,
            nat: t == TableId::Nat,
        };
        if !s.frames.is_empty() {
            return self.step(s, at);
        }
        if t == TableId::Nat && self.apply_binding(s, hook) {
            // A rewritten destination of a locally sent packet is routed again.
            s.stage = if hook == Hook::Output {
                Stage::Reroute(ti + 1)
            } else {
                next
            };
            return Flow::Next;
        }
        attach_after_raw(s, hook, ipt_priority(t, hook));
        let Some(base) = table.base[hook.index()] else {
            s.stage = next;
            return Flow::Next;
        };
        if t == TableId::Nat
            && let Some(reason) = self.nat_gate(s, hook)
        {
            let i = s.push(self.family(), hook, StepKind::Skip { reason });
            s.steps[i].table = Some(t);
            s.stage = next;
            return Flow::Next;
        }
        enter(s, base)
    }

    /// A native base chain at this hook: enter it, or go on walking it.
    fn native_hook(&mut self, s: &mut State, hook: Hook, ti: u8, base: u32) -> Flow {
        let native = &*self.tracer.native;
        let Some(b) = native.chains[base as usize].base else {
            s.stage = Stage::Hook(hook, ti + 1);
            return Flow::Next;
        };
        let at = At {
            hook,
            ti,
            t: None,
            table: &self.tracer.native_table,
            base: Some(base),
            native: Some(native),
            nat: b.nat,
        };
        if !s.frames.is_empty() {
            return self.step(s, at);
        }
        attach_after_raw(s, hook, b.priority);
        if b.nat
            && let Some(reason) = self.nat_gate(s, hook)
        {
            let i = s.push(self.family(), hook, StepKind::Skip { reason });
            at.label(&mut s.steps[i], base);
            s.steps[i].chain = Some(native.chains[base as usize].name.clone());
            s.stage = Stage::Hook(hook, ti + 1);
            return Flow::Next;
        }
        enter(s, base)
    }

    /// Whether nat chains are called here, and why not when they are not. Every nat chain at a
    /// hook (iptables' and native ones) is called in priority order until one translates the
    /// connection; only a connection's first packet meets them.
    fn nat_gate(&self, s: &mut State, hook: Hook) -> Option<String> {
        match s.nat_here {
            Some((h, true)) if h == hook => {
                return Some(
                    "nat is not traversed: an earlier nat chain at this hook translated the connection already"
                        .into(),
                );
            }
            Some((h, false)) if h == hook => return None,
            _ => {}
        }
        if let Some(reason) = self.nat_skip(s, hook) {
            return Some(reason);
        }
        match hook {
            Hook::Prerouting | Hook::Output => s.pkt.ct.nat_dst_done = true,
            _ => s.pkt.ct.nat_src_done = true,
        }
        s.nat_here = Some((hook, false));
        None
    }

    /// Look at the next rule of the current chain (or its end).
    fn step(&mut self, s: &mut State, at: At) -> Flow {
        let Some(&f) = s.frames.last() else {
            return Flow::Next;
        };
        let chain = &at.table.chains[f.chain as usize];
        let count = match at.native {
            Some(n) => n.chains[f.chain as usize].rules.len(),
            None => chain.rules.len(),
        };
        if f.next as usize >= count {
            return self.chain_end(s, at);
        }
        if self.forks.steps_left == 0 {
            return Flow::End(
                Verdict::Error,
                None,
                format!(
                    "the walk was stopped after looking at {} rules",
                    self.forks.max_steps
                ),
            );
        }
        self.forks.steps_left -= 1;
        let num = f.next as usize + 1;
        if let Some(n) = at.native {
            return self.native_step(s, at, n, f);
        }
        let rule = &chain.rules[f.next as usize];
        let mut tri = Tri::Yes;
        let mut unknown: Vec<&Cond> = Vec::new();
        for c in &rule.conds {
            match eval(c, &s.pkt, self.env) {
                Tri::Yes => {}
                Tri::No => {
                    tri = Tri::No;
                    break;
                }
                Tri::Unknown => unknown.push(c),
            }
        }
        let mut assumed = None;
        let mut descs: Vec<String> = Vec::new();
        if tri == Tri::Yes && !unknown.is_empty() {
            tri = Tri::Unknown;
            descs = unknown.iter().map(|c| c.describe()).collect();
            let items: Vec<Memo> = unknown
                .iter()
                .zip(&descs)
                .map(|(c, d)| {
                    let (key, flip) = memo_key(c, d);
                    Memo {
                        key,
                        flip,
                        stable: c.is_stable(),
                    }
                })
                .collect();
            let (b, one) = self.assume(s, &items, &descs);
            if b {
                for (c, d) in unknown.iter().zip(&descs) {
                    remember(s, c, d, true);
                }
            } else if let Some(i) = one {
                remember(s, unknown[i], &descs[i], false);
            }
            assumed = Some(b);
        }
        let matched = tri == Tri::Yes || assumed == Some(true);
        self.push_rule(s, at, f.chain, num, None, tri, assumed, descs);
        if !matched {
            return Flow::Next;
        }
        let i = s.steps.len() - 1;
        self.apply(s, at, &rule.action, i)
    }

    /// Record the rule just looked at (and move past it).
    #[allow(clippy::too_many_arguments)]
    fn push_rule(
        &mut self,
        s: &mut State,
        at: At,
        chain: u32,
        num: usize,
        handle: Option<u64>,
        tri: Tri,
        assumed: Option<bool>,
        descs: Vec<String>,
    ) {
        if let Some(top) = s.frames.last_mut() {
            top.next += 1;
        }
        let mut step = Step {
            family: self.family(),
            hook: at.hook,
            table: None,
            nft_table: None,
            chain: Some(at.table.chains[chain as usize].name.clone()),
            rule: Some(num),
            handle,
            kind: StepKind::Rule {
                matched: tri,
                assumed,
                unknown: descs,
                effect: None,
            },
        };
        at.label(&mut step, chain);
        s.steps.push(step);
    }

    /// A native rule: run on the expressions the kernel holds; forks on what it cannot decide.
    fn native_step(&mut self, s: &mut State, at: At, n: &Native, f: Frame) -> Flow {
        let rule = &n.chains[f.chain as usize].rules[f.next as usize];
        let cx = nft::Ctx {
            native: n,
            env: self.env,
            origin: s.origin,
        };
        let run = nft::run(&cx, f.chain, rule, &s.pkt);
        let mut assumed = None;
        let mut descs: Vec<String> = Vec::new();
        if run.tri == Tri::Unknown {
            descs = run.unknown.iter().map(|u| u.desc.clone()).collect();
            let items: Vec<Memo> = run
                .unknown
                .iter()
                .map(|u| Memo {
                    key: u.desc.clone(),
                    flip: false,
                    stable: u.stable,
                })
                .collect();
            let (b, one) = self.assume(s, &items, &descs);
            let learnt: Vec<usize> = match (b, one) {
                (true, _) => (0..items.len()).collect(),
                (false, Some(i)) => vec![i],
                (false, None) => Vec::new(),
            };
            for i in learnt {
                let m = &items[i];
                if m.stable && !s.memo.iter().any(|(k, _)| *k == m.key) {
                    s.memo.push((m.key.clone(), b));
                }
            }
            assumed = Some(b);
        }
        let matched = run.tri == Tri::Yes || assumed == Some(true);
        let num = f.next as usize + 1;
        self.push_rule(
            s,
            at,
            f.chain,
            num,
            Some(rule.handle),
            run.tri,
            assumed,
            descs,
        );
        if !matched {
            return Flow::Next;
        }
        let i = s.steps.len() - 1;
        // What the rule changed on the way to its verdict.
        let mut changes = Vec::new();
        if let Some(m) = run.mark {
            changes.extend(mark_change("mark", s.pkt.mark, m));
            s.pkt.mark = m;
        }
        if let Some(m) = run.ctmark {
            changes.extend(mark_change("ctmark", s.pkt.ctmark, m));
            s.pkt.ctmark = m;
        }
        if run.notrack && !s.pkt.ct.attached && !s.pkt.ct.notrack {
            s.pkt.ct.notrack = true;
            changes.push(Change {
                field: "state",
                from: s.pkt.ct.state.name().into(),
                to: CtState::Untracked.name().into(),
            });
        }
        let action = match run.verdict {
            Some(NVerdict::Accept) => Action::Accept,
            Some(NVerdict::Drop) => Action::Drop,
            Some(NVerdict::Reject) => Action::Reject,
            Some(NVerdict::Queue) => Action::Queue,
            Some(NVerdict::Return) => Action::Return,
            Some(NVerdict::Jump(c)) => Action::Jump(c),
            Some(NVerdict::Goto(c)) => Action::Goto(c),
            Some(NVerdict::Nat { dnat, addr, ports }) => {
                let addr = match addr {
                    Some(AddrVal::Known(a)) => Some((a, a)),
                    Some(AddrVal::Range(a, b)) => Some((a, b)),
                    _ => None,
                };
                let to = NatTo { addr, ports };
                if dnat {
                    Action::Dnat(to)
                } else {
                    Action::Snat(to)
                }
            }
            Some(NVerdict::Masquerade(p)) => Action::Masquerade(p),
            Some(NVerdict::Redirect(p)) => Action::Redirect(p),
            Some(NVerdict::Unknown(why)) => Action::Unmodelled(why.into()),
            None => {
                let mut did = run.did.clone();
                if !changes.is_empty() {
                    set_effect(
                        s,
                        i,
                        Effect::Set {
                            target: "set".into(),
                            changes,
                        },
                    );
                    return Flow::Next;
                }
                did.dedup();
                if did.is_empty() {
                    Action::None
                } else {
                    Action::Continue(did.join(", ").into())
                }
            }
        };
        self.apply(s, at, &action, i)
    }

    /// Decide a rule whose only undecided conditions are `items` (described by `descs`): from
    /// what this path already assumed where it can, else by forking. The caller remembers.
    /// Returns the answer, and the one condition it was a fork on when there was just one
    /// (a `false` then says that condition is false).
    fn assume(&mut self, s: &mut State, items: &[Memo], descs: &[String]) -> (bool, Option<usize>) {
        let mut open: Vec<usize> = Vec::new();
        for (i, m) in items.iter().enumerate() {
            if !m.stable {
                open.push(i);
                continue;
            }
            match s.memo.iter().find(|(k, _)| *k == m.key) {
                Some((_, b)) if *b != m.flip => {}
                Some(_) => return (false, None),
                None => open.push(i),
            }
        }
        if open.is_empty() {
            return (true, None);
        }
        let b = self.decide(s);
        s.assumptions.push(Assumption {
            step: s.steps.len(),
            condition: open
                .iter()
                .map(|&i| descs[i].as_str())
                .collect::<Vec<_>>()
                .join(" "),
            matched: b,
        });
        (b, if open.len() == 1 { Some(open[0]) } else { None })
    }

    fn chain_end(&mut self, s: &mut State, at: At) -> Flow {
        let Some(f) = s.frames.last().copied() else {
            return Flow::Next;
        };
        let chain = &at.table.chains[f.chain as usize];
        if chain.policy.is_none() {
            let i = s.push(self.family(), at.hook, StepKind::ChainEnd);
            at.label(&mut s.steps[i], f.chain);
            s.steps[i].chain = Some(chain.name.clone());
        }
        self.pop(s, at)
    }

    /// Leave the current chain (its end, or RETURN); out of the base chain, the policy applies.
    fn pop(&mut self, s: &mut State, at: At) -> Flow {
        if let Some(f) = s.frames.pop() {
            s.active.truncate(f.mark as usize);
        }
        if !s.frames.is_empty() {
            return Flow::Next;
        }
        let Some(base) = at.base else {
            return self.exit_table(s, at, None);
        };
        let chain = &at.table.chains[base as usize];
        let policy = chain.policy.unwrap_or(Policy::Accept);
        let verdict = match policy {
            Policy::Accept => Verdict::Accept,
            Policy::Drop => Verdict::Drop,
            Policy::Queue => Verdict::Queue,
            Policy::Other => Verdict::Unknown,
        };
        let i = s.push(self.family(), at.hook, StepKind::Policy { verdict });
        at.label(&mut s.steps[i], base);
        s.steps[i].chain = Some(chain.name.clone());
        let t = match (&s.steps[i].nft_table, at.t) {
            (Some(n), _) => n.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => String::new(),
        };
        match policy {
            Policy::Accept => self.exit_table(s, at, Some(i)),
            Policy::Drop | Policy::Queue => {
                let note = format!("{verdict} by the policy of {t} {}", chain.name);
                Flow::End(verdict, Some(i), note)
            }
            Policy::Other => {
                let note = format!(
                    "the policy of {t} {} is one nfscope does not know",
                    chain.name
                );
                Flow::End(Verdict::Unknown, Some(i), note)
            }
        }
    }

    /// This table is done with the packet (ACCEPT, a NAT target, or an ACCEPT policy).
    fn exit_table(&mut self, s: &mut State, at: At, by: Option<usize>) -> Flow {
        if let Some(i) = by {
            s.exits.push(i);
        }
        s.frames.clear();
        s.active.clear();
        s.stage = if at.hook == Hook::Output && at.nat {
            Stage::Reroute(at.ti + 1)
        } else {
            Stage::Hook(at.hook, at.ti + 1)
        };
        Flow::Next
    }

    fn jump(&mut self, s: &mut State, at: At, c: u32, goto: bool, i: usize) -> Flow {
        let chains = &at.table.chains;
        let name = chains[c as usize].name.clone();
        if s.active.contains(&c) {
            let path: Vec<&str> = s
                .active
                .iter()
                .map(|&i| &*chains[i as usize].name)
                .chain([&*name])
                .collect();
            let note = format!(
                "loop: {} (the kernel refuses a rule set whose chains loop)",
                path.join(" → ")
            );
            set_effect(s, i, Effect::Loop { chain: name });
            return Flow::End(Verdict::Error, Some(i), note);
        }
        if goto {
            if let Some(top) = s.frames.last_mut() {
                top.chain = c;
                top.next = 0;
            }
            set_effect(s, i, Effect::Goto { chain: name });
        } else {
            s.frames.push(Frame {
                chain: c,
                next: 0,
                mark: s.active.len() as u32,
            });
            set_effect(s, i, Effect::Jump { chain: name });
        }
        s.active.push(c);
        Flow::Next
    }

    /// What a matching rule's target does; `i` is the rule's step.
    fn apply(&mut self, s: &mut State, at: At, action: &Action, i: usize) -> Flow {
        let hook = at.hook;
        match action {
            Action::None => Flow::Next,
            Action::Accept => {
                set_effect(
                    s,
                    i,
                    Effect::Verdict {
                        verdict: Verdict::Accept,
                    },
                );
                self.exit_table(s, at, Some(i))
            }
            Action::Drop | Action::Reject | Action::Queue => {
                let v = match action {
                    Action::Drop => Verdict::Drop,
                    Action::Reject => Verdict::Reject,
                    _ => Verdict::Queue,
                };
                set_effect(s, i, Effect::Verdict { verdict: v });
                let place = s.steps[i].place();
                Flow::End(v, Some(i), format!("{v} by {place}"))
            }
            Action::Return => {
                set_effect(s, i, Effect::Return);
                self.pop(s, at)
            }
            Action::Jump(c) => self.jump(s, at, *c, false, i),
            Action::Goto(c) => self.jump(s, at, *c, true, i),
            Action::Dnat(to) => {
                let changes = nat_to(&mut s.pkt, to, true);
                self.nat_done(s, at, i, "DNAT", changes)
            }
            Action::Snat(to) => {
                let changes = nat_to(&mut s.pkt, to, false);
                self.nat_done(s, at, i, "SNAT", changes)
            }
            Action::Masquerade(ports) => {
                let addr = self.iface_addr(s.pkt.out_if.known());
                let changes = rewrite(&mut s.pkt, false, addr, *ports);
                self.nat_done(s, at, i, "MASQUERADE", changes)
            }
            Action::Redirect(ports) => {
                let addr = if hook == Hook::Output {
                    AddrVal::Known(match self.family() {
                        Family::V4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
                        Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    })
                } else {
                    self.iface_addr(s.pkt.in_if.known())
                };
                let changes = rewrite(&mut s.pkt, true, addr, *ports);
                self.nat_done(s, at, i, "REDIRECT", changes)
            }
            Action::Netmap(net) => {
                let dst = matches!(hook, Hook::Prerouting | Hook::Output);
                let v = if dst { &s.pkt.dst } else { &s.pkt.src };
                let mapped = match v {
                    AddrVal::Known(a) => AddrVal::Known(netmap(*a, net)),
                    _ => AddrVal::Range(net.network(), net.broadcast()),
                };
                let changes = rewrite(&mut s.pkt, dst, mapped, None);
                self.nat_done(s, at, i, "NETMAP", changes)
            }
            Action::Mark(name, op) => {
                let before = s.pkt.mark;
                s.pkt.mark = match op {
                    Some(op) => before.apply(op.clear, op.xor),
                    None => Bits::UNKNOWN,
                };
                let changes = mark_change("mark", before, s.pkt.mark);
                set_effect(
                    s,
                    i,
                    Effect::Set {
                        target: name.to_string(),
                        changes,
                    },
                );
                Flow::Next
            }
            Action::ConnMark(op) => {
                let (mark, ctmark) = (s.pkt.mark, s.pkt.ctmark);
                // Without a connection there is no connection mark: the kernel does nothing.
                if s.pkt.ct.view().1 {
                    match *op {
                        ConnMarkOp::Set(m) => s.pkt.ctmark = ctmark.apply(m.clear, m.xor),
                        ConnMarkOp::Save { nfmask, ctmask } => {
                            s.pkt.ctmark = ctmark.and_const(!ctmask).xor(mark.and_const(nfmask))
                        }
                        ConnMarkOp::Restore { nfmask, ctmask } => {
                            s.pkt.mark = mark.and_const(!nfmask).xor(ctmark.and_const(ctmask))
                        }
                    }
                }
                let mut changes = mark_change("mark", mark, s.pkt.mark);
                changes.extend(mark_change("ctmark", ctmark, s.pkt.ctmark));
                set_effect(
                    s,
                    i,
                    Effect::Set {
                        target: "CONNMARK".into(),
                        changes,
                    },
                );
                Flow::Next
            }
            Action::NoTrack(name) => {
                let mut changes = Vec::new();
                // Only before conntrack has seen the packet (in raw); later it does nothing.
                if !s.pkt.ct.attached && !s.pkt.ct.notrack {
                    s.pkt.ct.notrack = true;
                    changes.push(Change {
                        field: "state",
                        from: s.pkt.ct.state.name().into(),
                        to: CtState::Untracked.name().into(),
                    });
                }
                set_effect(
                    s,
                    i,
                    Effect::Set {
                        target: name.to_string(),
                        changes,
                    },
                );
                Flow::Next
            }
            Action::Continue(name) => {
                if matches!(name.as_str(), "TTL" | "HL") {
                    // The new value is not followed: later ttl/hl matches are unknown.
                    s.pkt.ttl = None;
                }
                set_effect(
                    s,
                    i,
                    Effect::Continue {
                        target: name.to_string(),
                    },
                );
                Flow::Next
            }
            Action::Unmodelled(name) => {
                set_effect(
                    s,
                    i,
                    Effect::Unmodelled {
                        target: name.to_string(),
                    },
                );
                let place = s.steps[i].place();
                let note = format!(
                    "the target {name} of {place} is not modelled (or its options could not be read)"
                );
                Flow::End(Verdict::Unknown, Some(i), note)
            }
        }
    }

    /// A NAT target rewrote the packet: record it, and end this nat chain as ACCEPT would.
    fn nat_done(
        &mut self,
        s: &mut State,
        at: At,
        i: usize,
        target: &str,
        changes: Vec<Change>,
    ) -> Flow {
        for c in &changes {
            match c.field {
                "dst" | "dport" => s.pkt.ct.dnat = true,
                _ => s.pkt.ct.snat = true,
            }
        }
        // The connection is translated: no later nat chain at this hook is called.
        s.nat_here = Some((at.hook, true));
        set_effect(
            s,
            i,
            Effect::Nat {
                target: target.into(),
                changes,
            },
        );
        self.exit_table(s, at, Some(i))
    }

    /// The address MASQUERADE or REDIRECT picks: the interface's first address when known.
    fn iface_addr(&self, iface: Option<&str>) -> AddrVal {
        if let Some(i) = iface
            && let Some(l) = self
                .env
                .locals
                .iter()
                .find(|l| l.iface.as_deref() == Some(i))
        {
            return AddrVal::Known(l.addr);
        }
        AddrVal::Local(iface.map(CompactString::from))
    }
}

/// Out on the interface the user gave; else on the interface whose network (one of this
/// machine's addresses with its prefix) holds the destination; else on one not known. Says which.
fn leave_by_given(s: &mut State, env: &Env) -> String {
    let connected = match &s.pkt.dst {
        AddrVal::Known(a) => env.connected(*a),
        _ => None,
    };
    match (&s.given_out, connected) {
        (Some(i), _) => {
            s.pkt.out_if = IfVal::Known(i.clone());
            format!("out on {i}")
        }
        (None, Some((iface, net))) => {
            s.pkt.out_if = IfVal::Known(iface.into());
            format!("out on {iface}, whose network {net} holds it")
        }
        (None, None) => {
            s.pkt.out_if = IfVal::Unknown;
            "out on an interface not given (--out)".into()
        }
    }
}

/// Conntrack runs at priority -200 in PREROUTING and OUTPUT (after raw, before mangle): from
/// the first base chain of a higher priority on, the state is what conntrack decided.
fn attach_after_raw(s: &mut State, hook: Hook, priority: i32) {
    if priority > -200 && matches!(hook, Hook::Prerouting | Hook::Output) && !s.pkt.ct.attached {
        attach(&mut s.pkt);
    }
}

fn attach(p: &mut Pkt) {
    p.ct.attached = true;
    if p.ct.view().1 {
        p.ct.orig = Some((p.src.clone(), p.dst.clone(), p.sport, p.dport));
    }
}

/// Start walking a base chain.
fn enter(s: &mut State, base: u32) -> Flow {
    s.frames.push(Frame {
        chain: base,
        next: 0,
        mark: 0,
    });
    s.active.clear();
    s.active.push(base);
    Flow::Next
}

fn set_effect(s: &mut State, at: usize, e: Effect) {
    if let Some(Step {
        kind: StepKind::Rule { effect, .. },
        ..
    }) = s.steps.get_mut(at)
    {
        *effect = Some(Box::new(e));
    }
}

/// An undecided condition as the path's memory knows it: its key, whether the remembered
/// answer is flipped for it, and whether it answers the same every time (not a rate limit).
struct Memo {
    key: String,
    flip: bool,
    stable: bool,
}

/// The key a condition is remembered under, and whether the remembered answer must be flipped
/// (`! -i eth0` and `-i eth0` are one question).
fn memo_key(c: &Cond, desc: &str) -> (String, bool) {
    match c {
        Cond::Iface { neg: true, .. } => (desc.trim_start_matches("! ").to_string(), true),
        _ => (desc.to_string(), false),
    }
}

fn remember(s: &mut State, c: &Cond, desc: &str, value: bool) {
    if !c.is_stable() {
        return;
    }
    if value
        && let Cond::Iface {
            neg: false,
            out,
            name,
            wildcard: false,
        } = c
    {
        // Assuming `-i eth0` matched means the packet arrived on eth0.
        let v = IfVal::Known(name.clone());
        if *out {
            s.pkt.out_if = v;
        } else {
            s.pkt.in_if = v;
        }
        return;
    }
    let (key, flip) = memo_key(c, desc);
    if !s.memo.iter().any(|(k, _)| *k == key) {
        s.memo.push((key, value != flip));
    }
}

fn nat_to(p: &mut Pkt, to: &NatTo, dst: bool) -> Vec<Change> {
    let addr = match to.addr {
        Some((a, b)) if a == b => AddrVal::Known(a),
        Some((a, b)) => AddrVal::Range(a, b),
        None if dst => p.dst.clone(),
        None => p.src.clone(),
    };
    rewrite(p, dst, addr, to.ports)
}

/// Set the destination (or source) address and, for protocols with ports, the port range.
fn rewrite(p: &mut Pkt, dst: bool, addr: AddrVal, ports: Option<(u16, u16)>) -> Vec<Change> {
    let mut changes = Vec::new();
    let (a, port, an, pn) = if dst {
        (&mut p.dst, &mut p.dport, "dst", "dport")
    } else {
        (&mut p.src, &mut p.sport, "src", "sport")
    };
    if *a != addr {
        changes.push(Change {
            field: an,
            from: a.text(),
            to: addr.text(),
        });
        *a = addr;
    }
    if let (Some((lo, hi)), true) = (ports, *port != PortVal::None) {
        let new = if lo == hi {
            PortVal::Known(lo)
        } else {
            PortVal::Range(lo, hi)
        };
        if *port != new {
            changes.push(Change {
                field: pn,
                from: port.text().unwrap_or_default(),
                to: new.text().unwrap_or_default(),
            });
            *port = new;
        }
    }
    changes
}

fn mark_change(field: &'static str, before: Bits, after: Bits) -> Vec<Change> {
    if before == after {
        return Vec::new();
    }
    vec![Change {
        field,
        from: before.text(),
        to: after.text(),
    }]
}

fn netmap(a: IpAddr, net: &ipnet::IpNet) -> IpAddr {
    match (a, net.network(), net.hostmask()) {
        (IpAddr::V4(a), IpAddr::V4(n), IpAddr::V4(h)) => {
            IpAddr::V4((u32::from(n) | (u32::from(a) & u32::from(h))).into())
        }
        (IpAddr::V6(a), IpAddr::V6(n), IpAddr::V6(h)) => {
            IpAddr::V6((u128::from(n) | (u128::from(a) & u128::from(h))).into())
        }
        (a, ..) => a,
    }
}

/// Which step to name as the decider of an ACCEPT: the last exit from the filter table (where
/// people filter); else the last rule that ended a table other than nat; else the last exit.
fn accept_decider(s: &State) -> Option<usize> {
    let table = |i: usize| s.steps.get(i).and_then(|st| st.table);
    let is_rule = |i: usize| s.steps.get(i).is_some_and(|st| st.rule.is_some());
    // A native chain's exit that is not a NAT counts as a filter's.
    let native_filter = |i: usize| {
        s.steps.get(i).is_some_and(|st| {
            st.nft_table.is_some()
                && !matches!(&st.kind, StepKind::Rule { effect: Some(e), .. } if matches!(**e, Effect::Nat { .. }))
        })
    };
    s.exits
        .iter()
        .rev()
        .copied()
        .find(|&i| table(i) == Some(TableId::Filter) || native_filter(i))
        .or_else(|| {
            s.exits
                .iter()
                .rev()
                .copied()
                .find(|&i| is_rule(i) && table(i) != Some(TableId::Nat))
        })
        .or_else(|| s.exits.last().copied())
}
