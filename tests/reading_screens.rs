//! Snapshots of issue 12's views, on the demo world at 80x24 and 120x40: long rules scrolled,
//! wrapped and in save form; the jump popup; the questions before zeroing counters, flipping a
//! policy and quitting the demo with staged work; the Trace screen giving the path the width;
//! the diff wrapped. And what the keys do to the App (y, W, n, Esc on the jump popup).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;
use common::screen::{ch, demo_app, key, render, typed};
use nfscope::tui::event::Cmd;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

#[test]
fn long_rules_scrolled_wrapped_and_in_save_form() {
    for (w, h) in SIZES {
        let mut app = demo_app(w, h);
        ch(&mut app, '>');
        insta::assert_snapshot!(format!("scrolled_{w}x{h}"), render(&app));
        ch(&mut app, 'w');
        insta::assert_snapshot!(format!("wrapped_{w}x{h}"), render(&app));
        ch(&mut app, 'w');
        ch(&mut app, 'S');
        insta::assert_snapshot!(format!("save_form_{w}x{h}"), render(&app));
    }
}

#[test]
fn columns_stay_put_between_chains() {
    // The header row of the rules table is the same for every chain at one width.
    for (w, h) in SIZES {
        let mut app = demo_app(w, h);
        let header = |app: &nfscope::tui::app::App| {
            render(app)
                .lines()
                .find(|l| l.contains(" num "))
                .map(|l| l.split('│').nth(2).unwrap_or("").to_string())
        };
        // The tree has the focus (at 80 columns it then takes width: the width is the same
        // for every chain after).
        ch(&mut app, 'h');
        let first = header(&app);
        assert!(first.is_some());
        for _ in 0..12 {
            ch(&mut app, 'j');
            let now = header(&app);
            if now.is_some() {
                assert_eq!(now, first, "columns moved at {w}x{h}");
            }
        }
    }
}

#[test]
fn the_jump_popup_ranks_chains_and_esc_leaves_all_as_it_was() {
    for (w, h) in SIZES {
        let mut app = demo_app(w, h);
        let before = app.rules.selected.clone();
        ch(&mut app, ':');
        typed(&mut app, "v6fwd");
        insta::assert_snapshot!(format!("jump_{w}x{h}"), render(&app));
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.popup, None);
        assert_eq!(app.rules.selected, before);
        // Ctrl-p opens it too; Enter opens the best match.
        app.update(nfscope::tui::event::Msg::Key(KeyEvent::new(
            KeyCode::Char('p'),
            KeyModifiers::CONTROL,
        )));
        typed(&mut app, "natpostr");
        key(&mut app, KeyCode::Enter);
        let k = app.rules.selected.clone().expect("a chain");
        assert_eq!((k.table.as_str(), k.chain.as_str()), ("nat", "POSTROUTING"));
    }
}

#[test]
fn questions_before_zero_policy_and_quitting_the_demo() {
    for (w, h) in SIZES {
        let mut app = demo_app(w, h);
        ch(&mut app, 'Z');
        insta::assert_snapshot!(format!("zero_question_{w}x{h}"), render(&app));
        key(&mut app, KeyCode::Esc);
        ch(&mut app, 'P');
        insta::assert_snapshot!(format!("policy_question_{w}x{h}"), render(&app));
        ch(&mut app, 'y');
        assert_eq!(app.edit.count(), 1);
        let cmds = ch(&mut app, 'q');
        assert!(cmds.is_empty(), "the demo asks before losing staged work");
        insta::assert_snapshot!(format!("quit_question_{w}x{h}"), render(&app));
        assert_eq!(ch(&mut app, 'y'), vec![Cmd::Quit]);
    }
}

#[test]
fn zero_now_asks_the_loop_and_s_stages_instead() {
    let mut app = demo_app(120, 40);
    ch(&mut app, 'h');
    ch(&mut app, 'Z');
    let cmds = ch(&mut app, 'y');
    assert!(
        matches!(&cmds[..], [Cmd::Zero(r)] if r.rule.is_none() && r.at.chain == "INPUT"),
        "{cmds:?}"
    );
    assert_eq!(app.edit.count(), 0, "nothing staged");
    ch(&mut app, 'l');
    ch(&mut app, 'Z');
    ch(&mut app, 's');
    assert_eq!(app.edit.count(), 1, "staged instead");
}

#[test]
fn y_copies_and_w_writes_what_the_screen_shows() {
    let mut app = demo_app(120, 40);
    let cmds = ch(&mut app, 'y');
    match &cmds[..] {
        [Cmd::Clipboard(t)] => assert!(t.starts_with("-A INPUT "), "{t}"),
        other => panic!("{other:?}"),
    }
    let cmds = ch(&mut app, 'W');
    match &cmds[..] {
        [Cmd::WriteFile { text, path, .. }] => {
            assert!(text.starts_with("*filter\n:INPUT DROP"), "{text}");
            assert!(text.ends_with("COMMIT\n"));
            assert!(
                path.to_string_lossy()
                    .contains("nfscope-IPv4-filter-INPUT-")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_search_survives_a_chain_change_and_n_walks_the_chains() {
    let mut app = demo_app(120, 40);
    ch(&mut app, '/');
    typed(&mut app, "dpt:22");
    key(&mut app, KeyCode::Enter);
    let mut seen = Vec::new();
    for _ in 0..8 {
        ch(&mut app, 'n');
        let k = app.rules.selected.clone().expect("chain");
        seen.push(format!("{} {} {}", k.family.label(), k.table, k.chain));
        assert_eq!(app.rules.filter, "dpt:22", "the search stays");
    }
    assert!(
        seen.iter().any(|c| c.starts_with("IPv6")),
        "n reaches the other family: {seen:?}"
    );
}

#[test]
fn the_trace_screen_gives_the_path_the_width_at_80_columns() {
    let mut app = demo_app(80, 24);
    ch(&mut app, '3');
    assert!(app.popup.is_none());
    ch(&mut app, 'e');
    for (tabs, text) in [
        (1, "198.51.100.7"),
        (1, "203.0.113.2"),
        (2, "22"),
        (3, "wan0"),
    ] {
        for _ in 0..tabs {
            key(&mut app, KeyCode::Tab);
        }
        typed(&mut app, text);
    }
    // state: a unique prefix is enough.
    for _ in 0..3 {
        key(&mut app, KeyCode::Tab);
    }
    key(&mut app, KeyCode::Right);
    assert_eq!(app.trace.values[10], "ESTABLISHED");
    typed(&mut app, "ne");
    key(&mut app, KeyCode::Enter);
    insta::assert_snapshot!("trace_steps_80x24", render(&app));
    ch(&mut app, 'w');
    insta::assert_snapshot!("trace_wrapped_80x24", render(&app));
    // e brings the form back, Esc gives the width to the path again.
    ch(&mut app, 'e');
    assert!(render(&app).contains("Packet"));
    key(&mut app, KeyCode::Esc);
    assert!(!render(&app).contains("Packet"));
}

#[test]
fn the_diff_scrolls_and_wraps() {
    for (w, h) in SIZES {
        let mut app = demo_app(w, h);
        ch(&mut app, 'P');
        ch(&mut app, 'y');
        ch(&mut app, '5');
        ch(&mut app, 'w');
        insta::assert_snapshot!(format!("diff_wrapped_{w}x{h}"), render(&app));
    }
}

#[test]
fn long_addresses_are_cut_between_groups_with_the_prefix_kept() {
    // ip6 filter FWD_IN's destinations are `2001:db8:10::10/128`, wider than the column at 80.
    let mut app = demo_app(80, 24);
    ch(&mut app, ':');
    typed(&mut app, "ip6 filter FWD_IN");
    key(&mut app, KeyCode::Enter);
    let k = app.rules.selected.clone().expect("a chain");
    assert_eq!(k.chain, "FWD_IN");
    let screen = render(&app);
    assert!(screen.contains("2001:…::10/128"), "{screen}");
    assert!(!screen.contains("2001:db8:10::1…"), "{screen}");
    // Wrapped, the address is whole.
    ch(&mut app, 'w');
    let screen = render(&app);
    assert!(screen.contains("2001:db8:10::10/"), "{screen}");
}
