//! The help popup reaches its last line at every size from 60x15 up (its lines wrap on narrow
//! terminals, and the wrapped rows are what must fit), by End or by paging down, and Up works at
//! once from there.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{demo_app, key, render};
use nfscope::tui::app::Popup;
use ratatui::crossterm::event::KeyCode;

const LAST: &str = "conntrack-filter.md";

#[test]
fn the_last_help_line_can_be_reached_at_every_size() {
    for w in (60..=200).step_by(10) {
        for h in (15..=60).step_by(5) {
            let mut app = demo_app(w, h);
            key(&mut app, KeyCode::Char('?'));
            assert!(matches!(app.popup, Some(Popup::Help { .. })));
            key(&mut app, KeyCode::End);
            let screen = render(&app);
            assert!(
                screen.contains(LAST),
                "{w}x{h}: End does not reach the end:\n{screen}"
            );
            // One Up moves off the end at once (the scroll stays within what can be shown).
            key(&mut app, KeyCode::Up);
            let Some(Popup::Help { scroll }) = app.popup else {
                panic!("help closed");
            };
            let up = scroll;
            key(&mut app, KeyCode::End);
            let Some(Popup::Help { scroll }) = app.popup else {
                panic!("help closed");
            };
            assert_eq!(up.0 + 1, scroll.0, "{w}x{h}");
            // Paging down gets there too.
            key(&mut app, KeyCode::Home);
            let mut last = None;
            while last != Some(app.popup.clone()) {
                last = Some(app.popup.clone());
                key(&mut app, KeyCode::PageDown);
            }
            assert!(render(&app).contains(LAST), "{w}x{h}: paging down");
        }
    }
}
