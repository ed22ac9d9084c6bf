//! The lint on the Rules screen: `!` before the number of a rule with a warning, and the
//! findings' sentences at the end of its details (`i`). The App is fed a hand-made snapshot.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{render, t0};
use nfscope::ruleset::{Family, parse};
use nfscope::source::{FamilyData, Origin, RulesetSnapshot};
use nfscope::tui::app::{App, Popup};
use nfscope::tui::event::Msg;
use nfscope::tui::theme::Theme;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::time::Duration;

const V4: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
[10:600] -A INPUT -s 10.0.0.0/25 -p tcp -m tcp --dport 22 -j ACCEPT\n\
[12:720] -A INPUT -s 10.0.0.128/25 -p tcp -m tcp --dport 22 -j ACCEPT\n\
[0:0] -A INPUT -s 10.0.0.0/24 -p tcp -m tcp --dport 22 -j DROP\n\
[3:180] -A INPUT -p udp -j DROP\nCOMMIT\n";

fn snapshot(generation: u64, counters: u64) -> RulesetSnapshot {
    let text = V4.replace("[10:600]", &format!("[{counters}:600]"));
    RulesetSnapshot {
        generation,
        origin: Origin::File {
            v4: Some("rules.v4".into()),
            v6: None,
        },
        taken_at: t0(),
        took: Duration::from_millis(1),
        v4: FamilyData::Loaded(parse(&text, Family::V4).unwrap()),
        v6: FamilyData::Absent,
        warnings: Vec::new(),
        nft_generation: None,
        native: Vec::new(),
        changed_by: None,
    }
}

fn key(app: &mut App, code: KeyCode) {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

#[test]
fn a_shadowed_rule_is_marked_and_explained() {
    let mut app = App::new("gw01".into(), Theme { color: false }, (100, 20), t0());
    app.update(Msg::Snapshot(Box::new(snapshot(1, 10))));
    // A new snapshot whose counters alone moved keeps the findings (computed once).
    app.update(Msg::Snapshot(Box::new(snapshot(2, 11))));
    let screen = render(&app);
    let marked: Vec<&str> = screen.lines().filter(|l| l.contains('!')).collect();
    assert_eq!(marked.len(), 1, "{screen}");
    assert!(
        marked[0].contains("!3") && marked[0].contains("DROP"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
    for _ in 0..2 {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Char('i'));
    assert!(matches!(app.popup, Some(Popup::Detail { .. })));
    let screen = render(&app);
    assert!(screen.contains("lint"), "{screen}");
    assert!(
        screen.contains("warning: never matches: rules 1, 2 together"),
        "{screen}"
    );
}

#[test]
fn a_big_rule_set_is_linted_on_a_thread_and_marked_when_done() {
    // 3,000 rules: past what is linted at once. The shadowed rule sits at the end.
    let mut text =
        String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for i in 0..3_000u32 {
        text += &format!(
            "[1:60] -A INPUT -s 10.{}.{}.1/32 -p tcp -m tcp --dport 22 -j ACCEPT\n",
            i / 250,
            i % 250
        );
    }
    text += "[0:0] -A INPUT -s 10.0.0.1/32 -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n";
    let mut snap = snapshot(1, 10);
    snap.v4 = FamilyData::Loaded(parse(&text, Family::V4).unwrap());
    let mut app = App::new("gw01".into(), Theme { color: false }, (100, 20), t0());
    app.update(Msg::Snapshot(Box::new(snap)));
    let key = nfscope::ruleset::rates::ChainKey {
        family: Family::V4,
        table: "filter".into(),
        chain: "INPUT".into(),
    };
    // The screen is not held up: the answer comes on a later tick.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !app.lint.warns(&key, 3_000) {
        assert!(
            std::time::Instant::now() < deadline,
            "the lint never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
        app.update(Msg::Tick(t0()));
    }
    assert!(!app.lint.warns(&key, 0));
}
