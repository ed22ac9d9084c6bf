//! The Trace screen traces what the Rules screen shows: the staged rule set while edits are
//! staged (the title says so; K traces the kernel's instead), and Enter on a step opens that
//! very rule, a staged one or a kernel rule the staging deletes. Before, the trace went through
//! the kernel's rules while the Rules screen showed the staged ones, and Enter opened the staged
//! chain at the kernel's index: another rule.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{ch, demo_app, key, render, typed};
use nfscope::trace::fields::Field;
use nfscope::tui::app::{App, Screen};
use nfscope::tui::edit::RowRef;
use nfscope::tui::event::Msg;
use nfscope::tui::trace::{Basis, FORM, TraceFocus};
use ratatui::crossterm::event::KeyCode;

fn set(app: &mut App, field: Field, value: &str) {
    if app.trace.focus != TraceFocus::Form {
        ch(app, 'e');
    }
    let want = FORM.iter().position(|(f, _)| *f == field).expect("field");
    while app.trace.field != want {
        key(app, KeyCode::Tab);
    }
    for _ in 0..app.trace.values[want].chars().count() {
        key(app, KeyCode::Backspace);
    }
    typed(app, value);
}

/// ssh from the internet to the gateway's WAN address.
fn trace_ssh(app: &mut App) {
    ch(app, '3');
    assert_eq!(app.screen, Screen::Trace);
    for (f, v) in [
        (Field::Src, "198.51.100.7"),
        (Field::Dst, "203.0.113.2"),
        (Field::Dport, "22"),
        (Field::InIface, "wan0"),
    ] {
        set(app, f, v);
    }
    key(app, KeyCode::Enter);
}

fn decider_text(app: &App) -> String {
    let res = app.trace.result.as_ref().expect("a trace");
    let step = res.trace.paths[0].decider().expect("a deciding step");
    format!("{:?} {:?} {:?}", step.chain, step.rule, res.trace.summary())
}

#[test]
fn the_trace_follows_the_staged_rules_and_k_traces_the_kernels() {
    let mut app = demo_app(140, 40);
    // Stage a DROP of the SSH client at the top of INPUT.
    ch(&mut app, 'I');
    typed(&mut app, "-s 198.51.100.7 -j DROP");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.edit.count(), 1);
    trace_ssh(&mut app);
    let res = app.trace.result.as_ref().expect("a trace");
    assert_eq!(res.basis, Basis::Staged);
    let d = decider_text(&app);
    assert!(d.contains("Some(\"INPUT\") Some(1)"), "{d}");
    assert!(res.trace.summary().contains("DROP"), "{d}");
    let screen = render(&app);
    assert!(screen.contains("STAGED rules"), "{screen}");

    // Enter on the deciding step opens the staged rule, not the kernel's rule 1.
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Rules);
    let (_, rule) = app.selected_rule().expect("a rule");
    assert_eq!(rule.text, "-s 198.51.100.7 -j DROP");

    // K: the kernel's rules, which do not drop it at rule 1.
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.screen, Screen::Trace);
    ch(&mut app, 'K');
    let res = app.trace.result.as_ref().expect("a trace");
    assert_eq!(res.basis, Basis::Kernel);
    assert!(!decider_text(&app).contains("Some(\"INPUT\") Some(1) "));
    assert!(render(&app).contains("kernel's rules ("));
    // And back.
    ch(&mut app, 'K');
    assert_eq!(
        app.trace.result.as_ref().map(|r| r.basis),
        Some(Basis::Staged)
    );
}

#[test]
fn a_new_staged_edit_retraces() {
    let mut app = demo_app(140, 40);
    trace_ssh(&mut app);
    let before = decider_text(&app);
    ch(&mut app, '1');
    ch(&mut app, 'I');
    typed(&mut app, "-s 198.51.100.7 -j DROP");
    key(&mut app, KeyCode::Enter);
    let after = decider_text(&app);
    assert_ne!(before, after);
    assert!(after.contains("Some(\"INPUT\") Some(1)"), "{after}");
}

#[test]
fn enter_on_a_kernel_step_opens_its_row_even_when_staged_for_deletion() {
    let mut app = demo_app(140, 40);
    // Trace the kernel's rules, find the rule that decides, and stage its deletion.
    trace_ssh(&mut app);
    let step = app.trace.result.as_ref().expect("trace").trace.paths[0]
        .decider()
        .expect("decider")
        .clone();
    let chain = step.chain.clone().expect("a chain");
    let idx = step.rule_index().expect("a rule");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Rules);
    let text = app.selected_rule().expect("rule").1.text.clone();
    key(&mut app, KeyCode::Delete);
    ch(&mut app, 'y');
    assert_eq!(app.edit.count(), 1);
    // Back to the Trace screen, tracing the kernel's rules (K).
    ch(&mut app, '3');
    assert_eq!(app.trace.focus, TraceFocus::Steps);
    ch(&mut app, 'K');
    assert_eq!(app.screen, Screen::Trace);
    assert_eq!(
        app.trace.result.as_ref().map(|r| r.basis),
        Some(Basis::Kernel)
    );
    // The cursor on the same deciding step; Enter lands on its (struck-through) row.
    let rows = app.trace.rows();
    let at = rows
        .iter()
        .position(|r| {
            r.is_step()
                && r.step.and_then(|s| {
                    app.trace.result.as_ref()?.trace.paths[0]
                        .steps
                        .get(s)
                        .map(|st| {
                            st.chain.as_deref() == Some(&chain[..]) && st.rule_index() == Some(idx)
                        })
                }) == Some(true)
        })
        .expect("the step");
    key(&mut app, KeyCode::Home);
    for _ in 0..at {
        key(&mut app, KeyCode::Down);
    }
    assert_eq!(app.trace.cursor, at);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Rules);
    assert_eq!(app.rules.visible[app.rules.cursor], RowRef::Deleted(idx));
    let key_ = app.rules.selected.clone().expect("chain");
    let row_rule = app
        .row_rule(&key_, app.rules.visible[app.rules.cursor])
        .expect("the rule");
    assert_eq!(row_rule.text, text);
}

/// `t` on a DNAT'd connection (the reproduction, on the demo gateway): the established
/// packet is rewritten from the entry's binding before routing and forwarded to 10.0.0.10,
/// not "delivered to a local process" by INPUT.
#[test]
fn t_on_a_dnat_connection_traces_it_forwarded() {
    use nfscope::conntrack::{Entry, Proto, State, Status, TcpState, Tuple};
    use nfscope::ruleset::Family;
    use nfscope::source::ctfeed::{CtFeed, CtVia};
    use nfscope::trace::Hook;
    let mut app = demo_app(140, 40);
    let orig = Tuple {
        src: "198.51.100.7".parse().expect("addr"),
        dst: "203.0.113.2".parse().expect("addr"),
        sport: Some(55636),
        dport: Some(8080),
        icmp: None,
    };
    let reply = Tuple {
        src: "10.0.0.10".parse().expect("addr"),
        dst: orig.src,
        sport: Some(80),
        dport: orig.sport,
        icmp: None,
    };
    let mut e = Entry::new(Family::V4, Proto::TCP, orig, reply);
    e.state = Some(State::Tcp(TcpState::Established));
    e.status = Status(Status::SEEN_REPLY | Status::ASSURED | Status::CONFIRMED);
    e.timeout = 300;
    ch(&mut app, '2');
    app.update(Msg::Conntrack(
        Box::new(CtFeed::Table {
            entries: vec![e],
            via: CtVia::Netlink,
            resync: false,
        }),
        common::screen::t0(),
    ));
    ch(&mut app, 't');
    assert_eq!(app.screen, Screen::Trace);
    let res = app.trace.result.as_ref().expect("a trace");
    let path = &res.trace.paths[0];
    let hooks: Vec<Hook> = path.steps.iter().map(|s| s.hook).collect();
    assert!(hooks.contains(&Hook::Forward), "{:#?}", path.steps);
    assert!(!hooks.contains(&Hook::Input), "{:#?}", path.steps);
    assert_eq!(path.headers.dst, "10.0.0.10");
    let screen = render(&app);
    assert!(screen.contains("DNAT to 10.0.0.10:80"), "{screen}");
    // Edited away from the entry's packet, the binding no longer applies.
    set(&mut app, Field::Dport, "8081");
    key(&mut app, KeyCode::Enter);
    let res = app.trace.result.as_ref().expect("a trace");
    assert_ne!(res.trace.paths[0].headers.dst, "10.0.0.10");
}
