//! The Rules filter matches what the screen shows as well as the save text: `dpt:22` (as
//! `iptables -L` prints it) finds the same rules as `--dport 22` (as the save format writes it),
//! and the matched words are marked on the row.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{colour_app, demo_app, key};
use nfscope::tui::app::App;
use nfscope::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use ratatui::style::Color;

fn filter(app: &mut App, words: &str) -> Vec<String> {
    key(app, KeyCode::Char('/'));
    for c in words.chars() {
        key(app, KeyCode::Char(c));
    }
    key(app, KeyCode::Enter);
    let k = app.rules.selected.clone().expect("a chain");
    app.rules
        .visible
        .iter()
        .filter_map(|r| app.row_rule(&k, *r).map(|r| r.text.clone()))
        .collect()
}

fn clear(app: &mut App) {
    key(app, KeyCode::Char('/'));
    key(app, KeyCode::Esc);
}

#[test]
fn the_filter_matches_the_screen_words_and_the_save_words() {
    let mut app = demo_app(140, 40);
    let by_screen = filter(&mut app, "dpt:22");
    clear(&mut app);
    let by_save = filter(&mut app, "--dport 22");
    assert!(!by_screen.is_empty());
    assert_eq!(by_screen, by_save);
    assert!(
        by_screen.iter().all(|r| r.contains("--dport 22")),
        "{by_screen:#?}"
    );
    clear(&mut app);
    // What only the screen says: a target column word and an address as listed.
    let any = filter(&mut app, "0.0.0.0/0");
    assert!(!any.is_empty());

    // The match is marked on the row (in colour: the cursor's row is reversed without).
    let mut app = colour_app(140, 40);
    filter(&mut app, "dpt:22");
    let (w, h) = app.size;
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("backend");
    term.draw(|f| view::draw(f, &app)).expect("draw");
    let buf = term.backend().buffer().clone();
    let mut marked = 0;
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        if let Some(at) = line.find("dpt:22").filter(|_| !line.contains("filter \"")) {
            let x = line[..at].chars().count() as u16;
            assert_eq!(buf[(x, y)].bg, Color::Yellow, "not marked: {line}");
            assert_eq!(buf[(x + 5, y)].bg, Color::Yellow, "not marked: {line}");
            assert_ne!(buf[(x - 1, y)].bg, Color::Yellow, "{line}");
            assert_ne!(buf[(x + 6, y)].bg, Color::Yellow, "{line}");
            marked += 1;
        }
    }
    assert!(marked > 0);
}
