//! Footers at 80 columns keep the keys that matter most on the screen (`c commit` on the
//! Changes screen), a message too long for the width is cut with a pointer to `!`, and `!` shows
//! every message whole.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{demo_app, key, render, typed};
use nfscope::tui::app::{App, Popup, Screen};
use ratatui::crossterm::event::KeyCode;

fn footer(app: &App) -> String {
    render(app).lines().last().unwrap_or("").to_string()
}

#[test]
fn the_changes_footer_keeps_commit_at_80_columns() {
    let mut app = demo_app(80, 24);
    key(&mut app, KeyCode::Char('a'));
    typed(
        &mut app,
        "-p tcp --dport 8080 -m comment --comment \"a long comment so that the staged message is long\" -j ACCEPT",
    );
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('5'));
    assert_eq!(app.screen, Screen::Changes);
    let f = footer(&app);
    assert!(f.contains("c commit"), "{f}");
    assert!(
        f.contains("! whole"),
        "the long message is cut and says so: {f}"
    );
    // ! shows it whole.
    key(&mut app, KeyCode::Char('!'));
    assert!(matches!(app.popup, Some(Popup::Messages { .. })));
    let screen = render(&app);
    assert!(screen.contains("Messages"), "{screen}");
    assert!(
        screen.contains("a long comment so that the staged message"),
        "{screen}"
    );
}

#[test]
fn every_screen_footer_fits_and_keeps_help_and_quit() {
    for (w, h) in [(80, 24), (60, 15), (120, 40)] {
        let mut app = demo_app(w, h);
        for screen in ['1', '5'] {
            key(&mut app, KeyCode::Char(screen));
            let f = footer(&app);
            assert!(
                f.contains("? help") && f.contains("q quit"),
                "{w}x{h} {screen}: {f}"
            );
        }
    }
}
