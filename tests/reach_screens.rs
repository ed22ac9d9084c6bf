//! The Reach popup (`r` on the Rules screen) on the demo world at 80x24 and 120x40: the matrix
//! for the selected rule's protocol and port, moving between cells, another chain and family,
//! Enter tracing the cell's packet, y copying the answer, Esc leaving all as it was.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;
use common::screen::{ch, demo_app, key, render};
use nfscope::ruleset::Family;
use nfscope::trace::Hook;
use nfscope::tui::app::{App, Popup, Screen};
use nfscope::tui::event::Cmd;
use ratatui::crossterm::event::KeyCode;

fn reach_view(app: &App) -> &nfscope::tui::reach::ReachView {
    match &app.popup {
        Some(Popup::Reach(v)) => v,
        other => panic!("the Reach popup, not {other:?}"),
    }
}

/// The demo's filter INPUT, on its SSH rule (rule 8: `-p tcp --dport 22 ... -j IN_SSH`).
fn on_ssh_rule(w: u16, h: u16) -> App {
    let mut app = demo_app(w, h);
    for _ in 0..7 {
        ch(&mut app, 'j');
    }
    let (i, _) = app.selected_rule().expect("a rule");
    assert_eq!(i, 7);
    app
}

#[test]
fn the_matrix_for_the_selected_rule_at_both_sizes() {
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = on_ssh_rule(w, h);
        ch(&mut app, 'r');
        let v = reach_view(&app);
        assert_eq!(v.query.hook, Hook::Input);
        assert_eq!((v.query.proto, v.query.dport), (6, Some(22)));
        let screen = render(&app);
        assert!(
            screen.contains("Reach · IPv4 filter INPUT · tcp dport 22 · NEW"),
            "{screen}"
        );
        assert!(screen.contains("127.0.0.0/8"), "{screen}");
        insta::assert_snapshot!(format!("reach_{w}x{h}"), screen);
    }
}

#[test]
fn keys_move_ask_again_trace_copy_and_close() {
    let mut app = on_ssh_rule(120, 40);
    let before = app.rules.selected.clone();
    ch(&mut app, 'r');
    // Loopback reaches everything (the -i lo accept); the rest depends on rate limits.
    let v = reach_view(&app);
    let lo = v.result.class_of("127.0.0.1".parse().unwrap()).unwrap();
    let other = v.result.class_of("198.51.100.7".parse().unwrap()).unwrap();
    assert_eq!(v.result.edge(lo, other), Some(true));
    assert_eq!(v.result.edge(other, other), Some(false));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Right);
    let v = reach_view(&app);
    assert_eq!((v.row, v.col), (1, 1));
    assert!(render(&app).contains("b → b: certainly accepted"));
    // c: the next chain, FORWARD; f: the other family.
    ch(&mut app, 'c');
    assert_eq!(reach_view(&app).query.hook, Hook::Forward);
    assert!(render(&app).contains("Reach · IPv4 filter FORWARD · tcp dport 22"));
    ch(&mut app, 'f');
    assert_eq!(reach_view(&app).family, Family::V6);
    assert!(render(&app).contains("Reach · IPv6 filter FORWARD"));
    ch(&mut app, 'f');
    ch(&mut app, 'c');
    ch(&mut app, 'c');
    assert_eq!(reach_view(&app).query.hook, Hook::Input);
    // y: the answer as `nfscope reach` prints it.
    let cmds = ch(&mut app, 'y');
    let [Cmd::Clipboard(text)] = cmds.as_slice() else {
        panic!("{cmds:?}");
    };
    assert!(
        text.starts_with("Reachability: IPv4 filter INPUT, tcp dport 22"),
        "{text}"
    );
    assert!(matches!(app.popup, Some(Popup::Reach(_))));
    // Esc: back where we were.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, None);
    assert_eq!(app.rules.selected, before);
    // Enter on a cell: its packet traced, to one of this machine's addresses for INPUT.
    ch(&mut app, 'r');
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.popup, None);
    assert_eq!(app.screen, Screen::Trace);
    let screen = render(&app);
    assert!(screen.contains("dport      22"), "{screen}");
    assert!(screen.contains("delivered locally"), "{screen}");
}

#[test]
fn a_native_chain_says_reach_is_for_iptables() {
    let mut app = demo_app(120, 40);
    ch(&mut app, ':');
    for c in "inet fw input".chars() {
        ch(&mut app, c);
    }
    key(&mut app, KeyCode::Enter);
    ch(&mut app, 'r');
    assert_eq!(app.popup, None);
    assert!(render(&app).contains("reach answers for the iptables rule sets"));
}

#[test]
fn a_user_chain_is_asked_about_at_the_hook_that_reaches_it() {
    let mut app = demo_app(120, 40);
    ch(&mut app, ':');
    for c in "ip6 filter FWD_IN".chars() {
        ch(&mut app, c);
    }
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.rules.selected.as_ref().unwrap().chain, "FWD_IN");
    // FWD_IN's first rule: SSH to one LAN host, reached from FORWARD (a goto).
    ch(&mut app, 'r');
    let v = reach_view(&app);
    assert_eq!(v.query.hook, Hook::Forward);
    assert_eq!(v.query.dport, Some(22));
    let host = v
        .result
        .class_of("2001:db8:10::10".parse().unwrap())
        .unwrap();
    let outside = v
        .result
        .class_of("2001:db8:ffff::9".parse().unwrap())
        .unwrap();
    // Possible: FORWARD goes to FWD_IN for `-i wan0 -o lan0 --ctstate NEW` and interfaces are
    // not mapped in the UI; no other host is reached at all.
    assert_eq!(v.result.edge(outside, host), Some(false), "{}", v.text());
    let other = v
        .result
        .class_of("2001:db8:10::99".parse().unwrap())
        .unwrap();
    assert_eq!(v.result.edge(outside, other), None, "{}", v.text());
    // A class's sample is never the unspecified address.
    for i in 0..v.result.classes.len() {
        let a = v.sample(i).unwrap();
        assert!(
            !a.is_unspecified() || v.result.classes[i].ranges == ["::"],
            "{a}"
        );
    }
}

#[test]
fn n_walks_the_nat_table_first() {
    let mut app = on_ssh_rule(120, 40);
    ch(&mut app, 'r');
    assert!(!reach_view(&app).query.nat);
    ch(&mut app, 'n');
    let v = reach_view(&app);
    assert!(v.query.nat);
    assert_eq!(v.result.walked, ["nat PREROUTING", "filter INPUT"]);
    let screen = render(&app);
    assert!(
        screen.contains("Reach · IPv4 filter INPUT · tcp dport 22 · NEW · after nat"),
        "{screen}"
    );
    ch(&mut app, 'n');
    assert!(!reach_view(&app).query.nat);
}

#[test]
fn the_config_files_interfaces_decide_interface_matches() {
    use nfscope::trace::reach::IfaceMap;
    let mut app = on_ssh_rule(120, 40);
    ch(&mut app, 'r');
    let unmapped = reach_view(&app).result.hinges.clone();
    assert!(
        unmapped.iter().any(|h| h.text.contains("-i wan0")),
        "{unmapped:?}"
    );
    key(&mut app, KeyCode::Esc);
    app.reach_ifaces = vec![
        IfaceMap::parse("lan0=10.0.0.0/24").unwrap(),
        IfaceMap::parse("wan0=!10.0.0.0/24,127.0.0.0/8").unwrap(),
    ];
    ch(&mut app, 'r');
    let v = reach_view(&app);
    assert_eq!(v.query.ifaces.len(), 2);
    assert!(
        !v.result.hinges.iter().any(|h| h.text.contains("-i wan0")),
        "{:?}",
        v.result.hinges
    );
}

#[test]
fn p_steps_through_the_ports_the_rules_name() {
    let mut app = on_ssh_rule(120, 40);
    ch(&mut app, 'r');
    let ports = reach_view(&app).ports.clone();
    assert!(
        ports.contains(&(6, 22)) && ports.contains(&(17, 123)),
        "{ports:?}"
    );
    let at = ports.iter().position(|p| *p == (6, 22)).unwrap();
    ch(&mut app, 'p');
    let (proto, port) = ports[(at + 1) % ports.len()];
    let v = reach_view(&app);
    assert_eq!((v.query.proto, v.query.dport), (proto, Some(port)));
    ch(&mut app, 'P');
    let v = reach_view(&app);
    assert_eq!((v.query.proto, v.query.dport), (6, Some(22)));
    // Round from the first to the last.
    for _ in 0..=at {
        ch(&mut app, 'P');
    }
    let v = reach_view(&app);
    assert_eq!(
        (v.query.proto, v.query.dport.unwrap()),
        *ports.last().unwrap()
    );
}

#[test]
fn rules_changed_by_another_tool_are_answered_again_and_said() {
    let mut app = on_ssh_rule(120, 40);
    ch(&mut app, 'r');
    let lo = reach_view(&app)
        .result
        .class_of("127.0.0.1".parse().unwrap())
        .unwrap();
    let other = reach_view(&app)
        .result
        .class_of("198.51.100.7".parse().unwrap())
        .unwrap();
    assert_eq!(reach_view(&app).result.edge(other, lo), Some(false));
    // Counters alone moving: nothing asked again.
    let snap = app.snapshot.clone().unwrap();
    app.update(nfscope::tui::event::Msg::Snapshot(Box::new(snap.clone())));
    assert!(!reach_view(&app).changed);
    // Someone inserts an SSH accept at the top of INPUT.
    let text = nfscope::source::demo::DEMO_V4.replacen(
        "-A INPUT ",
        "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n[0:0] -A INPUT ",
        1,
    );
    let mut snap = snap;
    snap.v4 =
        nfscope::source::FamilyData::Loaded(nfscope::ruleset::parse(&text, Family::V4).unwrap());
    snap.generation += 1;
    app.update(nfscope::tui::event::Msg::Snapshot(Box::new(snap)));
    let v = reach_view(&app);
    assert!(v.changed);
    assert_eq!(v.result.classes.len(), 1, "{}", v.text());
    assert_eq!(v.result.edge(0, 0), Some(true));
    assert!(render(&app).contains("the rules changed: answered again"));
    // The next question is the user's own again.
    ch(&mut app, 'c');
    assert!(!reach_view(&app).changed);
}
