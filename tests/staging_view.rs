//! What the Rules screen says about staged work, checked against what is staged: deleted rules
//! stay visible struck through and marked `-`, the title counts every kind of staged operation,
//! unchanged rules of an edited chain keep the kernel's live counters and rates, and saved work
//! from an earlier run is never lost to a key (Esc puts the question off; discarding asks) and,
//! resumed on a kernel that moved, is re-applied by identity or said to be stale.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{ch, key, render, t0};
use nfscope::edit::ChainRef;
use nfscope::edit::stage::{Op, Staging};
use nfscope::ruleset::{Family, Rule, Ruleset};
use nfscope::source::demo::DemoWorld;
use nfscope::tui::app::{App, Popup};
use nfscope::tui::edit::{Ask, RowRef};
use nfscope::tui::event::{Cmd, Msg};
use nfscope::tui::theme::Theme;
use nfscope::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;
use ratatui::style::Modifier;
use std::time::Duration;

/// The demo app and its world, two snapshots in.
fn demo() -> (App, DemoWorld) {
    let mut world = DemoWorld::new().with_clock(t0());
    let mut app = App::new("gw01".into(), Theme { color: false }, (140, 40), t0());
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    world.advance(Duration::from_secs(1));
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    (app, world)
}

fn select(app: &mut App, n: usize) {
    key(app, KeyCode::Home);
    for _ in 1..n {
        key(app, KeyCode::Down);
    }
}

/// The screen's line holding `needle`, and the modifiers of its cells there.
fn styled_line(app: &App, needle: &str) -> (String, Modifier) {
    let (w, h) = app.size;
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("backend");
    term.draw(|f| view::draw(f, app)).expect("draw");
    let buf = term.backend().buffer().clone();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        if let Some(at) = line.find(needle) {
            let x = line[..at].chars().count() as u16;
            return (line, buf[(x, y)].modifier);
        }
    }
    panic!("{needle:?} is not on the screen:\n{}", render(app));
}

#[test]
fn a_staged_delete_stays_visible_struck_through_and_marked() {
    let (mut app, _) = demo();
    let third = app.chain().expect("INPUT").rules[2].text.clone();
    select(&mut app, 3);
    key(&mut app, KeyCode::Delete);
    ch(&mut app, 'y');
    assert!(
        app.rules.visible.contains(&RowRef::Deleted(2)),
        "{:?}",
        app.rules.visible
    );
    let (line, modifier) = styled_line(&app, "ctstate INVALID");
    assert!(third.contains("INVALID"));
    assert!(line.contains(" -3 "), "{line}");
    assert!(modifier.contains(Modifier::CROSSED_OUT), "{line}");
    // The rule after it is rule 3 of the staged chain, and unchanged.
    let (line, modifier) = styled_line(&app, "private source");
    assert!(line.contains("  3 "), "{line}");
    assert!(!modifier.contains(Modifier::CROSSED_OUT), "{line}");
    // Keys that act on a rule say why they do not act on a deleted one.
    select(&mut app, 3);
    assert_eq!(app.rules.visible[app.rules.cursor], RowRef::Deleted(2));
    ch(&mut app, 'e');
    let (msg, _) = app.edit.message.clone().expect("a message");
    assert!(msg.contains("staged for deletion"), "{msg}");
    // Undo brings it back as an ordinary row.
    ch(&mut app, 'u');
    assert!(
        !app.rules
            .visible
            .iter()
            .any(|r| matches!(r, RowRef::Deleted(_)))
    );
}

#[test]
fn a_flushed_chain_shows_every_rule_it_loses() {
    let (mut app, _) = demo();
    let n = app.chain().expect("INPUT").rules.len();
    ch(&mut app, 'F');
    ch(&mut app, 'y');
    assert_eq!(app.chain().expect("INPUT").rules.len(), 0);
    assert_eq!(app.rules.visible.len(), n);
    assert!(
        app.rules
            .visible
            .iter()
            .all(|r| matches!(r, RowRef::Deleted(_)))
    );
    let screen = render(&app);
    assert!(!screen.contains("No rules"), "{screen}");
    assert!(screen.contains("staged: flushed"), "{screen}");
}

#[test]
fn the_title_counts_every_kind_of_staged_operation() {
    let (mut app, _) = demo();
    select(&mut app, 3);
    key(&mut app, KeyCode::Delete);
    ch(&mut app, 'y');
    ch(&mut app, 'a');
    for c in "-j LOG".chars() {
        ch(&mut app, c);
    }
    key(&mut app, KeyCode::Enter);
    ch(&mut app, 'P');
    ch(&mut app, 'y');
    app.update(Msg::Resize(200, 40));
    let screen = render(&app);
    assert!(
        screen.contains("staged: 1 deleted, 1 added, policy ACCEPT"),
        "{screen}"
    );
}

#[test]
fn unchanged_rules_of_an_edited_chain_keep_live_counters_and_rates() {
    let (mut app, mut world) = demo();
    let first = app.chain().expect("INPUT").rules[0].packets();
    // Insert at the top: every kernel rule moves down one place in the staged chain.
    ch(&mut app, 'I');
    for c in "-s 192.0.2.1 -j DROP".chars() {
        ch(&mut app, c);
    }
    key(&mut app, KeyCode::Enter);
    world.advance(Duration::from_secs(1));
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    let key = app.rules.selected.clone().expect("INPUT");
    let rows = app.chain_rows(&key);
    let (live, stat) = app
        .live_row(&key, &rows, RowRef::Rule(1))
        .expect("the first kernel rule, now staged rule 2");
    assert!(live.packets() > first, "{} > {first}", live.packets());
    assert!(stat.and_then(|s| s.rate).is_some_and(|r| r > 0.0));
    // The screen shows the live figure (exact numbers on), not the one of the moment the
    // edit began.
    let now = live.packets();
    ch(&mut app, 'x');
    app.update(Msg::Resize(200, 40));
    let screen = render(&app);
    let row2 = screen
        .lines()
        .find(|l| l.contains("RELATED,ESTABLISHED"))
        .unwrap_or_else(|| panic!("rule 2:\n{screen}"));
    assert!(row2.contains(&format!(" {now} ")), "{now}: {row2}");
    assert!(!row2.contains(&format!(" {first} ")), "frozen: {row2}");
    // The new rule has none of its own.
    assert!(app.live_row(&key, &rows, RowRef::Rule(0)).is_none());
}

fn at_input() -> ChainRef {
    ChainRef::new(Family::V4, "filter", "INPUT")
}

/// A staging saved by an earlier run: the SSH rule of the demo's INPUT deleted.
fn saved(world: &DemoWorld) -> Staging {
    let base = world.rulesets();
    let mut s = Staging::new(base.clone());
    let pos = base[0]
        .table("filter")
        .and_then(|t| t.chain("INPUT"))
        .and_then(|c| c.rules.iter().position(|r| r.text.contains("IN_SSH")))
        .expect("the SSH rule");
    s.push(Op::Delete {
        at: at_input(),
        pos: pos + 1,
        id: None,
    })
    .expect("staged");
    s
}

fn move_kernel(world: &mut DemoWorld, f: impl FnOnce(&mut Vec<Rule>)) {
    let mut rs: Vec<Ruleset> = world.rulesets();
    let input = rs[0]
        .table_mut("filter")
        .and_then(|t| t.chains.iter_mut().find(|c| c.name == "INPUT"))
        .expect("INPUT");
    f(&mut input.rules);
    world.set_ruleset(rs[0].clone());
}

#[test]
fn esc_on_the_resume_question_puts_it_off_and_discarding_asks() {
    let (mut app, world) = demo();
    app.edit.persist = true;
    app.offer_resume(saved(&world), 1_789_999_000);
    assert!(matches!(app.popup, Some(Popup::Ask(_))));
    assert!(render(&app).contains("d discard them"));
    // Esc: the question goes, the saved work stays, nothing is written.
    let cmds = key(&mut app, KeyCode::Esc);
    assert!(cmds.is_empty(), "{cmds:?}");
    assert!(app.edit.resume.is_some());
    assert_eq!(app.popup, None);
    // It does not come back by itself with the next snapshot...
    let snap = {
        let mut w = DemoWorld::new().with_clock(t0());
        w.snapshot()
    };
    app.update(Msg::Snapshot(Box::new(snap)));
    assert_eq!(app.popup, None);
    // ...but before anything new is staged.
    ch(&mut app, 'a');
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::Resume { .. })
    ));
    assert!(app.edit.staging.is_none());
    // d asks; n goes back to the question; d and y discard, and the state file is cleared.
    ch(&mut app, 'd');
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::DiscardSaved { ops: 1 })
    ));
    ch(&mut app, 'n');
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::Resume { .. })
    ));
    ch(&mut app, 'd');
    let cmds = ch(&mut app, 'y');
    assert!(
        matches!(cmds.as_slice(), [Cmd::SaveState(None)]),
        "{cmds:?}"
    );
    assert!(app.edit.resume.is_none());
}

#[test]
fn a_resume_on_a_moved_kernel_reapplies_by_identity() {
    let (mut app, mut world) = demo();
    let saved = saved(&world);
    // fail2ban inserted at the top meanwhile.
    move_kernel(&mut world, |rules| {
        rules.insert(
            0,
            Rule::from_text("-s 192.0.2.66 -j DROP", None).expect("rule"),
        );
    });
    world.advance(Duration::from_secs(1));
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    app.offer_resume(saved, 1_789_999_000);
    assert!(render(&app).contains("moved since then"));
    ch(&mut app, 'y');
    let st = app.edit.active().expect("resumed");
    assert_eq!(
        st.base(),
        &world.rulesets()[..],
        "rebased on the kernel's rules now"
    );
    let input: Vec<&str> = app
        .chain()
        .expect("INPUT")
        .rules
        .iter()
        .map(|r| r.text.as_str())
        .collect();
    assert_eq!(input[0], "-s 192.0.2.66 -j DROP");
    assert!(!input.iter().any(|r| r.contains("IN_SSH")), "{input:#?}");
    assert!(app.edit.stale.is_none());
    assert!(!render(&app).contains("STALE"));
}

#[test]
fn a_resume_whose_rule_is_gone_says_the_view_is_stale() {
    let (mut app, mut world) = demo();
    let saved = saved(&world);
    // Someone else deleted the SSH rule already.
    move_kernel(&mut world, |rules| {
        rules.retain(|r| !r.text.contains("IN_SSH"))
    });
    world.advance(Duration::from_secs(1));
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    app.offer_resume(saved, 1_789_999_000);
    ch(&mut app, 'y');
    let why = app.edit.stale.clone().expect("stale");
    assert!(why.contains("is no longer in INPUT"), "{why}");
    let screen = render(&app);
    assert!(screen.contains("STALE"), "{screen}");
}
