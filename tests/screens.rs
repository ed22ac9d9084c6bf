//! Screen tests: the App fed with messages, rendered to ratatui's TestBackend with a fixed clock,
//! and compared with insta snapshots. No terminal, no kernel: the demo world and hand-made
//! snapshots stand in for the sources.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{demo_app, render, t0};
use nfscope::ruleset::Family;
use nfscope::source::demo::DemoWorld;
use nfscope::source::{FamilyData, Origin, RulesetSnapshot, SourceError};
use nfscope::tui::app::{App, Focus, Popup};
use nfscope::tui::event::{Cmd, Msg};
use nfscope::tui::theme::Theme;
use nfscope::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::Duration;

fn key(app: &mut App, code: KeyCode) -> Vec<Cmd> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn chars(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

#[test]
fn rules_screen_80x24() {
    insta::assert_snapshot!(render(&demo_app(80, 24)));
}

#[test]
fn rules_screen_120x40() {
    insta::assert_snapshot!(render(&demo_app(120, 40)));
}

#[test]
fn tree_focus_at_80_columns_shows_the_tree() {
    let mut app = demo_app(80, 24);
    key(&mut app, KeyCode::Left);
    assert_eq!(app.rules.focus, Focus::Tree);
    insta::assert_snapshot!(render(&app));
}

#[test]
fn help_overlay() {
    let mut app = demo_app(120, 40);
    key(&mut app, KeyCode::Char('?'));
    assert_eq!(
        app.popup,
        Some(Popup::Help {
            scroll: nfscope::tui::scroll::Scroll::TOP
        })
    );
    let screen = render(&app);
    // Help is generated from the keymap: every binding's text is there (on a screen tall
    // enough to show it all; every screen's keys make it scroll at 40 lines).
    app.update(Msg::Resize(120, 250));
    let all = render(&app);
    for b in nfscope::tui::keymap::KEYMAP {
        assert!(all.contains(b.help), "help lacks {:?}", b.help);
    }
    app.update(Msg::Resize(120, 40));
    insta::assert_snapshot!(screen);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, None);
}

#[test]
fn detail_popup() {
    let mut app = demo_app(120, 40);
    // Rule 4 of filter INPUT: a DROP with a comment, not a jump, so Enter opens the details.
    for _ in 0..3 {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        app.popup,
        Some(Popup::Detail {
            scroll: nfscope::tui::scroll::Scroll::TOP
        })
    );
    let screen = render(&app);
    assert!(screen.contains("save line"));
    insta::assert_snapshot!(screen);
}

#[test]
fn source_error_is_shown_in_place() {
    let mut app = App::new("gw01".into(), Theme { color: false }, (100, 24), t0());
    let denied = SourceError::PermissionDenied {
        tool: "iptables-save".into(),
    };
    let denied6 = SourceError::PermissionDenied {
        tool: "ip6tables-save".into(),
    };
    app.update(Msg::Snapshot(Box::new(RulesetSnapshot {
        generation: 1,
        origin: Origin::Kernel {
            backend: nfscope::source::Backend::Nft,
        },
        taken_at: t0(),
        took: Duration::from_millis(12),
        v4: FamilyData::Failed(denied),
        v6: FamilyData::Failed(denied6),
        warnings: vec!["the legacy backend also holds IPv4 rules: they still filter packets but are not shown (run with --backend legacy)".into()],
        nft_generation: None,
        native: Vec::new(),
        changed_by: None,
    })));
    let screen = render(&app);
    assert!(screen.contains("needs root"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn too_small_says_so_and_no_size_panics() {
    let app = demo_app(40, 10);
    assert!(render(&app).contains("terminal too small"));
    let mut app = demo_app(80, 24);
    key(&mut app, KeyCode::Char('?'));
    for w in (0..=160).step_by(7) {
        for h in (0..=50).step_by(3) {
            app.update(Msg::Resize(w, h));
            let mut term = Terminal::new(TestBackend::new(w, h)).expect("backend");
            term.draw(|f| view::draw(f, &app)).expect("draw");
        }
    }
}

#[test]
fn enter_opens_a_user_chain_and_backspace_returns() {
    let mut app = demo_app(120, 40);
    let start = app.rules.selected.clone().expect("a chain is selected");
    assert_eq!(
        (start.table.as_str(), start.chain.as_str()),
        ("filter", "INPUT")
    );
    // Find the first rule of INPUT that jumps to a user chain.
    let chain = app.chain().expect("chain").clone();
    let idx = chain
        .rules
        .iter()
        .position(|r| app.jump_target(r).is_some())
        .expect("the demo INPUT chain jumps somewhere");
    let target = chain.rules[idx].spec.target_name().to_string();
    for _ in 0..idx {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        app.rules.selected.as_ref().map(|k| k.chain.as_str()),
        Some(target.as_str())
    );
    assert_eq!(app.popup, None);
    let screen = render(&app);
    assert!(
        screen.contains(&format!("INPUT › filter {target}")),
        "{screen}"
    );
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.rules.selected, Some(start));
    assert_eq!(
        app.rules.cursor, idx,
        "the cursor is back on the rule we left from"
    );
}

#[test]
fn filter_narrows_rules_and_esc_clears() {
    let mut app = demo_app(120, 40);
    let all = app.rules.visible.len();
    key(&mut app, KeyCode::Char('/'));
    chars(&mut app, "reject");
    assert!(app.rules.visible.len() < all && !app.rules.visible.is_empty());
    let screen = render(&app);
    assert!(screen.contains("filter: reject"), "{screen}");
    insta::assert_snapshot!(screen);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.rules.filter, "reject");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.rules.visible.len(), all);
}

#[test]
fn exact_numbers_toggle() {
    let mut app = demo_app(120, 40);
    let human = render(&app);
    key(&mut app, KeyCode::Char('x'));
    let exact = render(&app);
    assert!(human.contains("13M"), "{human}");
    assert!(!exact.contains("13M"));
    assert!(exact.contains("exact numbers"));
}

#[test]
fn quit_keys() {
    let mut app = demo_app(80, 24);
    assert_eq!(key(&mut app, KeyCode::Char('q')), vec![Cmd::Quit]);
    let mut app = demo_app(80, 24);
    key(&mut app, KeyCode::Char('/'));
    let cmds = app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('c'),
        KeyModifiers::CONTROL,
    )));
    assert_eq!(
        cmds,
        vec![Cmd::Quit],
        "Ctrl-C quits even while typing a filter"
    );
}

#[test]
fn redraw_only_on_change() {
    let mut app = demo_app(80, 24);
    // The last snapshot was taken at t0 + 1 s; a second later its age label changes...
    let u = app.step(Msg::Tick(t0() + Duration::from_millis(2400)));
    assert!(u.redraw, "1 s later the age label changed");
    // ...but not again within the same second.
    let u = app.step(Msg::Tick(t0() + Duration::from_millis(2600)));
    assert!(!u.redraw, "no redraw while the age label stays the same");
    // An unbound key changes nothing.
    let press = |c| Msg::Key(KeyEvent::new(c, KeyModifiers::NONE));
    assert!(!app.step(press(KeyCode::Char('Q'))).redraw);
    assert!(app.step(press(KeyCode::Down)).redraw);
}

#[test]
fn selection_survives_a_new_snapshot_and_scrolls() {
    let mut world = DemoWorld::new().with_clock(t0());
    let mut app = App::new("gw01".into(), Theme { color: false }, (80, 16), t0());
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    key(&mut app, KeyCode::End);
    let last = app.rules.visible.len() - 1;
    assert_eq!(app.rules.cursor, last);
    assert!(app.rules.offset > 0 || last < view::rules_viewport_rows((80, 16)));
    world.advance(Duration::from_secs(1));
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    assert_eq!(app.rules.cursor, last);
    let k = app.rules.selected.clone().expect("selected");
    assert_eq!(k.family, Family::V4);
}
