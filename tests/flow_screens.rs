//! The Flow screen, rendered: the traversal diagram over the demo rule set at a fixed clock,
//! compared with insta snapshots; moving between boxes, the other family, Enter landing the Rules
//! screen on the chain and Backspace coming back, and no size that panics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{demo_app, render};
use nfscope::ruleset::Family;
use nfscope::trace::{Hook, TableId};
use nfscope::tui::app::{App, Screen};
use nfscope::tui::event::Msg;
use nfscope::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn key(app: &mut App, code: KeyCode) {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn flow_app(w: u16, h: u16) -> App {
    let mut app = demo_app(w, h);
    key(&mut app, KeyCode::Char('4'));
    assert_eq!(app.screen, Screen::Flow);
    app
}

#[test]
fn the_diagram_at_both_sizes() {
    for (w, h) in [(120, 40), (80, 24)] {
        let app = flow_app(w, h);
        let screen = render(&app);
        for hook in Hook::ALL {
            assert!(screen.contains(hook.name()), "{hook} missing:\n{screen}");
        }
        insta::assert_snapshot!(format!("flow_{w}x{h}"), screen);
    }
}

#[test]
fn moving_between_boxes_and_the_other_family() {
    let mut app = flow_app(120, 40);
    assert_eq!(app.flow.selected(), (Hook::Input, TableId::Filter));
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.flow.selected(), (Hook::Forward, TableId::Mangle));
    // Across onto OUTPUT's mangle (its second row), then one down.
    key(&mut app, KeyCode::Char('l'));
    assert_eq!(app.flow.selected(), (Hook::Output, TableId::Mangle));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.flow.selected(), (Hook::Output, TableId::Nat));
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.flow.family, Family::V6);
    let screen = render(&app);
    assert!(screen.contains("IPv6 the ways through netfilter"));
    insta::assert_snapshot!("flow_v6_output_nat", screen);
}

#[test]
fn enter_opens_the_chain_and_backspace_comes_back() {
    let mut app = flow_app(120, 40);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.flow.selected(), (Hook::Forward, TableId::Filter));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Rules);
    let sel = app.rules.selected.clone().expect("a chain selected");
    assert_eq!(
        (sel.family, sel.table.as_str(), sel.chain.as_str()),
        (Family::V4, "filter", "FORWARD")
    );
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.screen, Screen::Flow);
}

#[test]
fn a_table_that_is_not_loaded_says_so() {
    let mut app = flow_app(120, 40);
    key(&mut app, KeyCode::Down);
    assert_eq!(app.flow.selected(), (Hook::Input, TableId::Security));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Flow);
    let msg = app.flow.message.clone().expect("a message");
    assert!(msg.contains("security table is not loaded"), "{msg}");
    assert!(render(&app).contains("security table is not loaded"));
}

#[test]
fn help_lists_the_flow_keys() {
    let mut app = flow_app(120, 250);
    key(&mut app, KeyCode::Char('?'));
    let screen = render(&app);
    assert!(screen.contains("Flow screen"));
    assert!(screen.contains("open the chain on the Rules screen"));
}

#[test]
fn no_size_panics() {
    let mut app = flow_app(80, 24);
    for w in (0..=200).step_by(7) {
        for h in (0..=60).step_by(3) {
            app.update(Msg::Resize(w, h));
            let mut term = Terminal::new(TestBackend::new(w, h)).expect("backend");
            term.draw(|f| view::draw(f, &app)).expect("draw");
        }
    }
}
