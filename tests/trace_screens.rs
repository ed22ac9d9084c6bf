//! The Trace screen, rendered: the App with the demo rule set, a packet typed into the form key
//! by key, the trace run on Enter, drawn to ratatui's TestBackend with a fixed clock and compared
//! with insta snapshots. Plus the behaviour behind them: a conntrack entry filling the form, the
//! SSH session filling it, Enter on a step landing the Rules screen on that rule and Backspace
//! coming back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{demo_app, render, t0};
use nfscope::conntrack::{Entry, Proto, State, Status, TcpState, Tuple};
use nfscope::ruleset::Family;
use nfscope::source::ctfeed::{CtFeed, CtVia};
use nfscope::trace::fields::Field;
use nfscope::tui::app::{App, Screen};
use nfscope::tui::event::Msg;
use nfscope::tui::trace::{FORM, TraceFocus};
use nfscope::tui::view;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The demo rule set, as tests/screens.rs builds it, on the Trace screen.
fn trace_app(w: u16, h: u16) -> App {
    let mut app = demo_app(w, h);
    key(&mut app, KeyCode::Char('3'));
    assert_eq!(app.screen, Screen::Trace);
    app
}

fn key(app: &mut App, code: KeyCode) {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

/// Type `value` into a field of the form, replacing what was there, with the keys a user
/// presses.
fn set(app: &mut App, field: Field, value: &str) {
    if app.trace.focus != TraceFocus::Form {
        key(app, KeyCode::Char('e'));
    }
    let want = FORM
        .iter()
        .position(|(f, _)| *f == field)
        .expect("a form field");
    while app.trace.field != want {
        key(app, KeyCode::Tab);
    }
    for _ in 0..app.trace.values[want].chars().count() {
        key(app, KeyCode::Backspace);
    }
    for c in value.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn run(app: &mut App, fields: &[(Field, &str)]) {
    for (f, v) in fields {
        set(app, *f, v);
    }
    key(app, KeyCode::Enter);
}

/// Internet to the gateway's WAN port 2222, forwarded to the NAS: ACCEPT in FWD_IN.
const FORWARDED: &[(Field, &str)] = &[
    (Field::Src, "198.51.100.7"),
    (Field::Dst, "203.0.113.2"),
    (Field::Dport, "2222"),
    (Field::InIface, "wan0"),
    (Field::OutIface, "lan0"),
];

/// A private source on the WAN side: DROP.
const SPOOFED: &[(Field, &str)] = &[
    (Field::Src, "10.0.0.7"),
    (Field::Dst, "203.0.113.2"),
    (Field::Dport, "22"),
    (Field::InIface, "wan0"),
];

/// The output interface not given: the verdict hangs on it.
/// ssh to the gateway itself: the brute-force trap's `recent` lists are not known.
const OPEN: &[(Field, &str)] = &[
    (Field::Src, "198.51.100.7"),
    (Field::Dst, "203.0.113.2"),
    (Field::Dport, "22"),
    (Field::InIface, "wan0"),
];

fn verdict(app: &App) -> String {
    app.trace.result.as_ref().expect("a trace").trace.summary()
}

#[test]
fn empty_form_at_both_sizes() {
    for (w, h) in [(120, 40), (80, 24)] {
        let app = trace_app(w, h);
        // The global keys work on entry: the form has the focus only once edited.
        assert_eq!(app.trace.focus, TraceFocus::Steps);
        insta::assert_snapshot!(format!("empty_form_{w}x{h}"), render(&app));
    }
}

#[test]
fn a_forwarded_packet_is_accepted() {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = trace_app(w, h);
        run(&mut app, FORWARDED);
        assert_eq!(verdict(&app), "ACCEPT");
        let step = app
            .trace
            .selected_step()
            .expect("the cursor on the decider");
        assert_eq!(step.chain.as_deref(), Some("FWD_IN"));
        assert_eq!(step.rule, Some(1));
        insta::assert_snapshot!(format!("accept_{w}x{h}"), render(&app));
    }
}

#[test]
fn a_spoofed_source_is_dropped() {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = trace_app(w, h);
        run(&mut app, SPOOFED);
        assert_eq!(verdict(&app), "DROP");
        insta::assert_snapshot!(format!("drop_{w}x{h}"), render(&app));
    }
}

#[test]
fn an_open_verdict_names_its_unknowns_and_every_path_can_be_shown() {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = trace_app(w, h);
        run(&mut app, OPEN);
        assert!(verdict(&app).contains(" or "), "{}", verdict(&app));
        assert!(verdict(&app).contains("(unknown: "));
        let paths = app.trace.result.as_ref().unwrap().trace.paths.len();
        assert!(paths > 1);
        key(&mut app, KeyCode::Char(']'));
        assert_eq!(app.trace.path, 1);
        insta::assert_snapshot!(format!("unknown_path2_{w}x{h}"), render(&app));
        for _ in 0..paths {
            key(&mut app, KeyCode::Char('['));
        }
        assert_eq!(app.trace.path, 1);
    }
}

#[test]
fn a_bad_field_is_named_with_a_sentence_and_nothing_runs() {
    for (w, h) in [(120, 40), (80, 24)] {
        let mut app = trace_app(w, h);
        run(
            &mut app,
            &[(Field::Src, "198.51.100.7"), (Field::Dst, "gw01")],
        );
        assert!(app.trace.result.is_none());
        let (f, e) = app.trace.error.clone().expect("an error");
        assert_eq!(f, Field::Dst);
        assert!(e.contains("is not an IPv4 or IPv6 address"), "{e}");
        assert_eq!(app.trace.focus, TraceFocus::Form);
        insta::assert_snapshot!(format!("form_error_{w}x{h}"), render(&app));
    }
}

#[test]
fn fields_that_do_not_fit_together_are_refused() {
    let mut app = trace_app(120, 40);
    type Case<'a> = (&'a [(Field, &'a str)], Field, &'a str);
    let cases: &[Case] = &[
        (
            &[(Field::Src, "10.0.0.1"), (Field::Dst, "::1")],
            Field::Dst,
            "not of the same family",
        ),
        (
            &[
                (Field::Proto, "icmp"),
                (Field::Dst, "10.0.0.1"),
                (Field::Dport, "22"),
            ],
            Field::Dport,
            "sport and dport apply to tcp",
        ),
        (
            &[(Field::Proto, "tcp"), (Field::Dport, "nope")],
            Field::Dport,
            "is not a port",
        ),
        (
            &[(Field::Dport, ""), (Field::Local, "maybe")],
            Field::Local,
            "write yes",
        ),
        (
            &[(Field::Local, "yes"), (Field::InIface, "eth0")],
            Field::InIface,
            "arrives on none",
        ),
        (
            &[(Field::InIface, ""), (Field::State, "OLD")],
            Field::State,
            "not a conntrack state",
        ),
        (
            &[(Field::State, ""), (Field::Mark, "x")],
            Field::Mark,
            "not a mark",
        ),
        (
            &[(Field::Mark, ""), (Field::Src, "")],
            Field::Src,
            "give the source address",
        ),
    ];
    for (fields, field, says) in cases {
        run(&mut app, fields);
        let (f, e) = app.trace.error.clone().expect("an error");
        assert_eq!((f, e.contains(says)), (*field, true), "{e}");
        render(&app);
    }
}

#[test]
fn typing_anything_never_panics() {
    let mut app = trace_app(80, 24);
    for c in "tcp::/ÿ\u{1F600}0x-1 99999 ,".chars() {
        key(&mut app, KeyCode::Char(c));
        key(&mut app, KeyCode::Enter);
        key(&mut app, KeyCode::Char('e'));
        key(&mut app, KeyCode::Tab);
        render(&app);
    }
    for _ in 0..100 {
        key(&mut app, KeyCode::Char('9'));
    }
    key(&mut app, KeyCode::Enter);
    render(&app);
}

#[test]
fn the_tracer_is_prepared_once_per_snapshot() {
    let mut app = trace_app(120, 40);
    run(&mut app, FORWARDED);
    run(&mut app, SPOOFED);
    assert_eq!(app.trace.prepared(), 1);
    run(
        &mut app,
        &[
            (Field::Src, "2001:db8::7"),
            (Field::Dst, "2001:db8:ffff::2"),
        ],
    );
    assert_eq!(app.trace.prepared(), 2);
}

#[test]
fn enter_on_a_step_lands_on_its_rule_and_backspace_comes_back() {
    let mut app = trace_app(120, 40);
    run(&mut app, FORWARDED);
    let step = app.trace.selected_step().expect("a step").clone();
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Rules);
    let sel = app.rules.selected.clone().expect("a chain");
    assert_eq!(
        (sel.family, sel.table.as_str(), sel.chain.as_str()),
        (Family::V4, "filter", "FWD_IN")
    );
    let (idx, rule) = app.selected_rule().expect("a rule");
    assert_eq!(Some(idx + 1), step.rule);
    assert!(rule.text.contains("--dport 22"), "{}", rule.text);
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.screen, Screen::Trace);
    assert_eq!(
        app.rules.selected.as_ref().map(|k| k.chain.as_str()),
        Some("INPUT")
    );

    // A rule in the nat table, deeper in the path.
    key(&mut app, KeyCode::Home);
    while app
        .trace
        .selected_step()
        .is_none_or(|s| s.chain.as_deref() != Some("PORTFWD"))
    {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    let sel = app.rules.selected.clone().expect("a chain");
    assert_eq!((sel.table.as_str(), sel.chain.as_str()), ("nat", "PORTFWD"));
    // Into a chain and back out on the Rules screen, then back to the Trace screen.
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.screen, Screen::Trace);
}

fn ssh_entry(status: u32) -> Entry {
    let orig = Tuple {
        src: "198.51.100.9".parse().unwrap(),
        dst: "203.0.113.2".parse().unwrap(),
        sport: Some(50022),
        dport: Some(22),
        icmp: None,
    };
    let reply = Tuple {
        src: orig.dst,
        dst: orig.src,
        sport: orig.dport,
        dport: orig.sport,
        icmp: None,
    };
    let mut e = Entry::new(Family::V4, Proto::TCP, orig, reply);
    e.state = Some(State::Tcp(TcpState::Established));
    e.status = Status(status);
    e.timeout = 300;
    e
}

#[test]
fn t_on_a_conntrack_entry_fills_the_form_and_traces_it() {
    let mut app = trace_app(120, 40);
    // The form has the keys: Esc first, then 2 for the Conntrack screen.
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(app.screen, Screen::Conntrack);
    app.update(Msg::Conntrack(
        Box::new(CtFeed::Table {
            entries: vec![ssh_entry(Status::SEEN_REPLY | Status::ASSURED)],
            via: CtVia::Netlink,
            resync: false,
        }),
        t0(),
    ));
    key(&mut app, KeyCode::Char('t'));
    assert_eq!(app.screen, Screen::Trace);
    let tr = &app.trace;
    assert_eq!(tr.value(Field::Proto), "tcp");
    assert_eq!(tr.value(Field::Src), "198.51.100.9");
    assert_eq!(tr.value(Field::Sport), "50022");
    assert_eq!(tr.value(Field::Dst), "203.0.113.2");
    assert_eq!(tr.value(Field::Dport), "22");
    assert_eq!(tr.value(Field::State), "ESTABLISHED");
    assert!(tr.result.is_some());
    insta::assert_snapshot!("from_conntrack_120x40", render(&app));

    // A connection that has not seen a reply is still NEW.
    let mut app = trace_app(80, 24);
    // The form has the keys: Esc first, then 2 for the Conntrack screen.
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(app.screen, Screen::Conntrack);
    app.update(Msg::Conntrack(
        Box::new(CtFeed::Table {
            entries: vec![ssh_entry(0)],
            via: CtVia::Netlink,
            resync: false,
        }),
        t0(),
    ));
    key(&mut app, KeyCode::Char('t'));
    assert_eq!(app.trace.value(Field::State), "NEW");
}

#[test]
fn s_fills_the_form_from_the_ssh_session() {
    let mut app = trace_app(120, 40);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('s'));
    assert!(app.trace.result.is_none());
    assert!(
        render(&app).contains("not in an SSH session"),
        "{}",
        render(&app)
    );
    app.trace.ssh = Some("198.51.100.9 50022 203.0.113.2 22".into());
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.trace.value(Field::Src), "198.51.100.9");
    assert_eq!(app.trace.value(Field::Dport), "22");
    assert_eq!(app.trace.value(Field::State), "ESTABLISHED");
    assert!(app.trace.result.is_some());
    app.trace.ssh = Some("garbage".into());
    key(&mut app, KeyCode::Char('s'));
    assert!(render(&app).contains("SSH_CONNECTION is \"garbage\""));
}

#[test]
fn a_smaller_terminal_keeps_the_selected_step_in_view() {
    let mut app = trace_app(120, 40);
    run(&mut app, FORWARDED);
    key(&mut app, KeyCode::End);
    app.update(Msg::Resize(80, 24));
    let rows = view::trace_viewport_rows((80, 24));
    let tr = &app.trace;
    assert!(tr.cursor >= tr.offset && tr.cursor < tr.offset + rows);
    app.update(Msg::Resize(20, 5));
    render(&app);
}
