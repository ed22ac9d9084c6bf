//! Native nftables tables on the screens (issue 11, points 3 and 4, and point 9's read-only
//! part), over the demo world's `inet fw` and dormant `ip6 quarantine` at a fixed clock: the
//! chain tree, a native chain's rules as nft prints them with counters and rates, the detail
//! popup, a jump followed and Backspace back, the filter, and every staging key refused with
//! nothing staged. Compared with insta snapshots at 80x24 and 120x40.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{ch, demo_app, key, render};
use nfscope::ruleset::rates::NativeKey;
use nfscope::tui::app::{App, Focus, Popup};
use nfscope::tui::event::Msg;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn native(chain: &str) -> NativeKey {
    NativeKey {
        family: "inet".into(),
        table: "fw".into(),
        chain: chain.into(),
    }
}

/// The demo app with `inet fw input` chosen in the tree, as a user does: the tree, to its
/// end (the dormant table's chain), two up, back to the rules.
fn on_native_input(w: u16, h: u16) -> App {
    let mut app = demo_app(w, h);
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::End);
    assert_eq!(
        app.rules.native.as_ref().map(|k| k.to_string()).as_deref(),
        Some("ip6 quarantine forward")
    );
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.rules.native, Some(native("input")));
    assert_eq!(app.rules.selected, None);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.rules.focus, Focus::Rules);
    app
}

#[test]
fn the_tree_lists_native_tables_after_the_iptables_ones() {
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = demo_app(w, h);
        key(&mut app, KeyCode::Left);
        key(&mut app, KeyCode::End);
        key(&mut app, KeyCode::Up);
        key(&mut app, KeyCode::Up);
        let screen = render(&app);
        for text in [
            "nftables (read-only)",
            "inet fw",
            "input       drop",
            "icmp_in     1 ref",
            "ip6 quarantine (dormant)",
        ] {
            assert!(
                screen.contains(text),
                "{text:?} missing at {w}x{h}:\n{screen}"
            );
        }
        insta::assert_snapshot!(format!("native_tree_{w}x{h}"), screen);
    }
}

#[test]
fn a_native_chain_shows_its_rules_as_nft_prints_them() {
    for (w, h) in [(80, 24), (120, 40)] {
        let app = on_native_input(w, h);
        let screen = render(&app);
        for text in [
            "inet fw input (nftables) policy drop",
            "ct state established,related counter accept",
            "ip saddr @blocklist counter drop",
            "jump icmp_in ›",
            "handle",
            "native nftables: read-only in nfscope",
        ] {
            assert!(
                screen.contains(text),
                "{text:?} missing at {w}x{h}:\n{screen}"
            );
        }
        // Rates from two snapshots a second apart, as for iptables rules; a rule without a
        // counter has none.
        let st = app.native_rates.chain(&native("input")).expect("rates");
        assert!(st.rules[1].rate.is_some_and(|r| r > 0.0), "{st:?}");
        assert!(st.rules[1].delta > 0);
        assert_eq!(st.rules[0].rate, None);
        // No staging key is offered in the footer.
        let footer = screen.lines().last().unwrap_or_default();
        assert!(!footer.contains("a add"), "{footer}");
        insta::assert_snapshot!(format!("native_chain_{w}x{h}"), screen);
    }
}

#[test]
fn the_detail_popup_of_a_native_rule() {
    for (w, h) in [(80, 24), (120, 40)] {
        let mut app = on_native_input(w, h);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Enter);
        assert!(matches!(app.popup, Some(Popup::Detail { .. })));
        let screen = render(&app);
        for text in [
            "Rule 2 (handle 5) of inet fw input",
            "input, priority 0",
            "ct state established,related counter accept",
            "Read-only",
        ] {
            assert!(
                screen.contains(text),
                "{text:?} missing at {w}x{h}:\n{screen}"
            );
        }
        insta::assert_snapshot!(format!("native_detail_{w}x{h}"), screen);
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.popup, None);
        // `i` opens it too; a rule without a counter says so.
        key(&mut app, KeyCode::Up);
        ch(&mut app, 'i');
        assert!(render(&app).contains("none: the rule has no `counter` statement"));
    }
}

#[test]
fn enter_follows_a_jump_and_backspace_comes_back() {
    let mut app = on_native_input(120, 40);
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.rules.native, Some(native("icmp_in")));
    assert_eq!(app.popup, None);
    let screen = render(&app);
    assert!(screen.contains("input › inet fw icmp_in"), "{screen}");
    assert!(screen.contains("icmp type echo-request"), "{screen}");
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.rules.native, Some(native("input")));
    assert_eq!(app.rules.cursor, 4, "back on the jump");
}

#[test]
fn the_filter_narrows_native_rules() {
    let mut app = on_native_input(120, 40);
    ch(&mut app, '/');
    for c in "counter drop".chars() {
        ch(&mut app, c);
    }
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.rules.visible.len(), 1);
    let screen = render(&app);
    assert!(screen.contains("@blocklist"), "{screen}");
    assert!(!screen.contains("iif \"lo\""), "{screen}");
}

#[test]
fn a_dormant_table_says_so() {
    let mut app = demo_app(120, 40);
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::End);
    let screen = render(&app);
    assert!(
        screen.contains("dormant: not hooked, filters nothing"),
        "{screen}"
    );
    assert!(screen.contains("No rules: every packet gets the policy, drop."));
}

#[test]
fn staging_keys_on_a_native_rule_refuse_and_stage_nothing() {
    let mut app = on_native_input(120, 40);
    key(&mut app, KeyCode::Down);
    let alt = |c| KeyEvent::new(c, KeyModifiers::ALT);
    let keys: Vec<KeyEvent> = ['a', 'I', 'e', '-', 'K', 'J', 'A', 'R', 'X', 'P', 'F', 'Z']
        .into_iter()
        .map(|c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
        .chain([
            KeyEvent::new(KeyCode::Delete, KeyModifiers::NONE),
            alt(KeyCode::Up),
            alt(KeyCode::Down),
        ])
        .collect();
    for k in keys {
        let cmds = app.update(Msg::Key(k));
        assert!(cmds.is_empty(), "{k:?} asked for {cmds:?}");
        assert_eq!(app.popup, None, "{k:?} opened a popup");
        assert!(app.edit.staging.is_none(), "{k:?} staged something");
        let (msg, error) = app.edit.message.clone().expect("a message");
        assert!(error, "{k:?}: {msg}");
        assert_eq!(
            msg, "inet fw input: native nftables, read-only in nfscope (use nft)",
            "{k:?}"
        );
        assert_eq!(app.rules.native, Some(native("input")), "{k:?}");
    }
    assert_eq!(app.edit.count(), 0);
    let screen = render(&app);
    assert!(
        screen.contains("inet fw input: native nftables, read-only in nfscope (use nft)"),
        "{screen}"
    );
    assert!(!screen.contains("staged"), "{screen}");
}

#[test]
fn the_header_says_native_chains_filter_on_the_same_hook() {
    let app = demo_app(120, 40);
    let warnings = &app.snapshot.as_ref().expect("a snapshot").warnings;
    assert_eq!(
        warnings,
        &["native nftables chains also filter on input: inet fw input (policy drop)"]
    );
    let screen = render(&app);
    assert!(
        screen
            .contains("⚠ native nftables chains also filter on input: inet fw input (policy drop)"),
        "{screen}"
    );
    assert!(screen.contains("nft 7 rules"), "{screen}");
    // Cut at 80 columns, and `!` shows it whole.
    let mut app = demo_app(80, 24);
    assert!(render(&app).contains("… (! whole)"));
    ch(&mut app, '!');
    let screen = render(&app);
    assert!(
        screen.contains("native nftables chains also filter on input: inet fw input"),
        "{screen}"
    );
}
