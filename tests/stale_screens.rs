//! The Conntrack screen's stale-flow view (`X`), rendered: the demo world's rule sets and
//! conntrack table, the scan the App asks for run here as the worker would run it, the list
//! showing only the stale entries with "stale: N of M" in its title, the deciding rule in an
//! entry's details, `D` asking before deleting them; and after a commit, the footer counting
//! them. insta snapshots at 80x24 and 120x40.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{ch, demo_app, key, render, t0};
use nfscope::conntrack::Entry;
use nfscope::source::ctdemo::CtDemo;
use nfscope::source::ctfeed::{CtFeed, CtVia};
use nfscope::tui::app::{App, Popup, Screen};
use nfscope::tui::conntrack::Confirm;
use nfscope::tui::event::{Cmd, Msg};
use ratatui::crossterm::event::KeyCode;

/// The demo's IPv4 rules after a change that refuses new HTTPS connections through the
/// gateway (ESTABLISHED is still accepted first, so the live ones carry on: stale).
fn https_refused() -> nfscope::ruleset::Ruleset {
    let anchor = "-A FORWARD -m conntrack --ctstate INVALID -j DROP\n";
    let text = nfscope::source::demo::DEMO_V4.replacen(
        anchor,
        &format!(
            "{anchor}-A FORWARD -p tcp -m tcp --dport 443 -j REJECT --reject-with tcp-reset\n"
        ),
        1,
    );
    assert_ne!(text, nfscope::source::demo::DEMO_V4, "the rule went in");
    nfscope::ruleset::parse(&text, nfscope::ruleset::Family::V4).unwrap()
}

/// The demo world on the Conntrack screen, its table read at t0, after the rules changed so
/// that new HTTPS connections through the gateway are refused.
fn ct_app(w: u16, h: u16) -> App {
    let mut app = demo_app(w, h);
    let mut snap = app.snapshot.clone().unwrap();
    snap.v4 = nfscope::source::FamilyData::Loaded(https_refused());
    snap.generation += 1;
    app.update(Msg::Snapshot(Box::new(snap)));
    ch(&mut app, '2');
    assert_eq!(app.screen, Screen::Conntrack);
    let entries: Vec<Entry> = CtDemo::new().with_clock(t0()).entries();
    app.update(Msg::Conntrack(
        Box::new(CtFeed::Table {
            entries,
            via: CtVia::Netlink,
            resync: false,
        }),
        t0(),
    ));
    app
}

/// Carry out a stale scan the App asked for, as the worker does, and hand back the answer.
fn run_scan(app: &mut App, cmds: Vec<Cmd>) {
    let mut ran = 0;
    for c in cmds {
        if let Cmd::StaleScan {
            entries,
            snap,
            after_commit,
        } = c
        {
            let found = nfscope::source::stale::scan(&snap, &entries);
            app.update(Msg::Stale {
                found: Box::new(found),
                after_commit,
            });
            ran += 1;
        }
    }
    assert_eq!(ran, 1, "one scan asked for");
}

fn stale_app(w: u16, h: u16) -> App {
    let mut app = ct_app(w, h);
    let cmds = ch(&mut app, 'X');
    assert!(app.ct.stale_running);
    run_scan(&mut app, cmds);
    assert!(!app.ct.stale_running);
    app
}

#[test]
fn x_lists_only_the_stale_entries_80x24() {
    let app = stale_app(80, 24);
    let n = app.ct.stale.as_ref().unwrap().found.stale.len();
    assert!(n > 0, "the demo world has stale entries");
    assert_eq!(app.ct.shown(), n);
    insta::assert_snapshot!(render(&app));
}

#[test]
fn x_lists_only_the_stale_entries_120x40() {
    let app = stale_app(120, 40);
    let text = render(&app);
    let label = app.ct.stale_label().unwrap();
    assert!(text.contains("(would now be refused)"), "{text}");
    assert!(label.starts_with("stale: "), "{label}");
    insta::assert_snapshot!(text);
}

#[test]
fn the_details_name_the_rule_and_x_again_shows_all() {
    let mut app = stale_app(120, 40);
    key(&mut app, KeyCode::Enter);
    assert!(matches!(app.popup, Some(Popup::CtDetail)));
    let text = render(&app);
    assert!(
        text.contains("Stale: the rules would now reject its first packet: filter FORWARD rule 3"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    key(&mut app, KeyCode::Esc);
    let total = app.ct.table.len();
    assert!(ch(&mut app, 'X').is_empty(), "no scan to show them all");
    assert!(app.ct.stale.is_none());
    assert_eq!(app.ct.shown(), total);
}

#[test]
fn d_asks_before_deleting_the_stale_ones_and_esc_is_no() {
    let mut app = stale_app(80, 24);
    let n = app.ct.shown();
    ch(&mut app, 'D');
    let Some(Popup::Confirm(q)) = &app.popup else {
        panic!("a question: {:?}", app.popup);
    };
    assert!(matches!(&**q, Confirm::Stale { keys } if keys.len() == n));
    let text = render(&app);
    assert!(
        text.contains(&format!("Delete {n} stale connections?")),
        "{text}"
    );
    insta::assert_snapshot!(text);
    assert!(
        key(&mut app, KeyCode::Esc).is_empty(),
        "Esc deletes nothing"
    );
    assert!(app.popup.is_none());
    ch(&mut app, 'D');
    let cmds = ch(&mut app, 'y');
    assert!(
        matches!(&cmds[..], [Cmd::CtDeleteKeys(keys)] if keys.len() == n),
        "{cmds:?}"
    );
}

#[test]
fn after_a_commit_the_footer_counts_them() {
    let mut app = ct_app(120, 40);
    app.stale_check = true;
    let snap = app.snapshot.clone().unwrap();
    let cmds = app.update(Msg::Snapshot(Box::new(snap.clone())));
    assert!(
        matches!(
            &cmds[..],
            [Cmd::StaleScan {
                after_commit: true,
                ..
            }]
        ),
        "{cmds:?}"
    );
    run_scan(&mut app, cmds);
    let (said, bad) = app.edit.message.clone().unwrap();
    assert!(!bad);
    assert!(
        said.ends_with(
            "live connections would not be accepted anew: X on the Conntrack screen lists them"
        ),
        "{said}"
    );
    assert!(app.ct.stale.is_none(), "the list is left as it was");
    // Only once per commit.
    assert!(app.update(Msg::Snapshot(Box::new(snap))).is_empty());
}

#[test]
fn a_connection_that_ends_fades_in_the_stale_view_only_if_it_was_stale() {
    let mut app = stale_app(120, 40);
    let found = app.ct.stale.as_ref().unwrap().found.stale.clone();
    let entries: Vec<Entry> = CtDemo::new().with_clock(t0()).entries();
    let fine = entries
        .iter()
        .find(|e| !found.contains_key(&e.key()))
        .expect("an entry that is not stale")
        .clone();
    let stale = entries
        .iter()
        .find(|e| found.contains_key(&e.key()))
        .expect("a stale entry")
        .clone();
    let at = t0() + std::time::Duration::from_millis(500);
    for e in [fine, stale.clone()] {
        app.update(Msg::Conntrack(
            Box::new(CtFeed::Events(vec![nfscope::conntrack::CtEvent::destroy(
                e,
            )])),
            at,
        ));
    }
    // Every row shown is a stale entry, the one that just ended among them (fading).
    let keys = app.ct.keys();
    assert!(keys.iter().all(|k| found.contains_key(k)), "{keys:?}");
    assert!(keys.contains(&stale.key()));
}
