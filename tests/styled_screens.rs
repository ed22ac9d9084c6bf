//! Tests that see colour: one snapshot per screen rendered with the colour theme, where every run
//! of cells with a style other than the default is written `{style}text{}` (foreground,
//! background, modifiers). The plain snapshots elsewhere check the words; these check that a
//! hit row is bold, a DROP red, a staged rule `+` in its colour and a deleted one struck through.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{ch, colour_app, key, t0};
use nfscope::source::ctdemo::CtDemo;
use nfscope::source::ctfeed::{CtFeed, CtVia};
use nfscope::tui::app::{App, Screen};
use nfscope::tui::event::Msg;
use nfscope::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Cell;
use ratatui::crossterm::event::KeyCode;
use ratatui::style::{Color, Modifier};
use std::fmt::Write as _;

fn style_of(c: &Cell) -> String {
    let mut parts = Vec::new();
    if c.fg != Color::Reset {
        parts.push(format!("fg={:?}", c.fg));
    }
    if c.bg != Color::Reset {
        parts.push(format!("bg={:?}", c.bg));
    }
    for (m, name) in [
        (Modifier::BOLD, "bold"),
        (Modifier::DIM, "dim"),
        (Modifier::ITALIC, "italic"),
        (Modifier::UNDERLINED, "underlined"),
        (Modifier::REVERSED, "reversed"),
        (Modifier::CROSSED_OUT, "crossed"),
    ] {
        if c.modifier.contains(m) {
            parts.push(name.to_string());
        }
    }
    parts.join(" ")
}

/// The screen as text with its styles: `{fg=Red bold}DROP{}`.
fn render_styled(app: &App) -> String {
    let (w, h) = app.size;
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("backend");
    term.draw(|f| view::draw(f, app)).expect("draw");
    let buf = term.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut cur = String::new();
        let mut line = String::new();
        for x in 0..w {
            let cell = &buf[(x, y)];
            let st = style_of(cell);
            if st != cur {
                if !cur.is_empty() {
                    line.push_str("{}");
                }
                if !st.is_empty() {
                    let _ = write!(line, "{{{st}}}");
                }
                cur = st;
            }
            line.push_str(cell.symbol());
        }
        if !cur.is_empty() {
            line.push_str("{}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn rules_screen_in_colour_with_hits_drops_and_staged_rows() {
    let mut app = colour_app(120, 30);
    // A rule deleted (the INVALID drop) and one added, so `-` and `+` rows show.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Delete);
    ch(&mut app, 'y');
    ch(&mut app, 'a');
    for c in "-p tcp --dport 8080 -j DROP".chars() {
        ch(&mut app, c);
    }
    key(&mut app, KeyCode::Enter);
    let s = render_styled(&app);
    assert!(s.contains("crossed"), "{s}");
    assert!(s.contains("bold"), "{s}");
    insta::assert_snapshot!("rules_colour", s);
}

#[test]
fn changes_screen_in_colour() {
    let mut app = colour_app(120, 30);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Delete);
    ch(&mut app, 'y');
    ch(&mut app, 'a');
    for c in "-j LOG".chars() {
        ch(&mut app, c);
    }
    key(&mut app, KeyCode::Enter);
    ch(&mut app, '5');
    assert_eq!(app.screen, Screen::Changes);
    insta::assert_snapshot!("changes_colour", render_styled(&app));
}

#[test]
fn conntrack_screen_in_colour() {
    let mut app = colour_app(120, 30);
    ch(&mut app, '2');
    let entries = CtDemo::new().with_clock(t0()).entries();
    app.update(Msg::Conntrack(
        Box::new(CtFeed::Table {
            entries,
            via: CtVia::Netlink,
            resync: false,
        }),
        t0(),
    ));
    insta::assert_snapshot!("conntrack_colour", render_styled(&app));
}

#[test]
fn trace_screen_in_colour() {
    let mut app = colour_app(120, 30);
    ch(&mut app, '3');
    assert_eq!(app.screen, Screen::Trace);
    insta::assert_snapshot!("trace_colour", render_styled(&app));
}

#[test]
fn flow_screen_in_colour() {
    let mut app = colour_app(120, 30);
    ch(&mut app, '4');
    assert_eq!(app.screen, Screen::Flow);
    insta::assert_snapshot!("flow_colour", render_styled(&app));
}
