//! The Flow screen, rendered: the traversal diagram over the demo rule set at a fixed clock,
//! compared with insta snapshots; moving between boxes, the other family, Enter landing the Rules
//! screen on the chain and Backspace coming back, and no size that panics. Native nftables base
//! chains stand among the iptables ones in priority order (issue 11, point 4).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{demo_app, render};
use nfscope::ruleset::Family;
use nfscope::ruleset::rates::NativeKey;
use nfscope::trace::{Hook, TableId};
use nfscope::tui::app::{App, Screen};
use nfscope::tui::event::Msg;
use nfscope::tui::flow::FlowBox;
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
    assert_eq!(
        app.flow_selected().expect("a box"),
        (Hook::Input, FlowBox::Iptables(TableId::Filter))
    );
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Up);
    assert_eq!(
        app.flow_selected().expect("a box"),
        (Hook::Forward, FlowBox::Iptables(TableId::Mangle))
    );
    // Across onto OUTPUT's mangle (its second row), then one down.
    key(&mut app, KeyCode::Char('l'));
    assert_eq!(
        app.flow_selected().expect("a box"),
        (Hook::Output, FlowBox::Iptables(TableId::Mangle))
    );
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(
        app.flow_selected().expect("a box"),
        (Hook::Output, FlowBox::Iptables(TableId::Nat))
    );
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
    assert_eq!(
        app.flow_selected().expect("a box"),
        (Hook::Forward, FlowBox::Iptables(TableId::Filter))
    );
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
    // Below filter INPUT: the demo's native inet fw input (priority 0 too), then security.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    assert_eq!(
        app.flow_selected().expect("a box"),
        (Hook::Input, FlowBox::Iptables(TableId::Security))
    );
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

fn native_key(family: &str, table: &str, chain: &str) -> NativeKey {
    NativeKey {
        family: family.into(),
        table: table.into(),
        chain: chain.into(),
    }
}

#[test]
fn native_chains_stand_among_the_iptables_ones_in_priority_order() {
    let mut app = flow_app(120, 40);
    let input: Vec<FlowBox> = nfscope::tui::flow::columns(&app, Family::V4)[1]
        .iter()
        .map(|e| e.chain.clone())
        .collect();
    assert_eq!(
        input,
        [
            FlowBox::Iptables(TableId::Mangle),
            FlowBox::Iptables(TableId::Filter),
            // Priority 0 like filter: after it, and the line below says so.
            FlowBox::Native(native_key("inet", "fw", "input")),
            FlowBox::Iptables(TableId::Security),
            FlowBox::Iptables(TableId::Nat),
        ]
    );
    key(&mut app, KeyCode::Down);
    assert_eq!(
        app.flow_selected().expect("a box"),
        (
            Hook::Input,
            FlowBox::Native(native_key("inet", "fw", "input"))
        )
    );
    let screen = render(&app);
    assert!(
        screen.contains("► inet fw input: nftables, read-only · policy drop · priority 0"),
        "{screen}"
    );
    assert!(
        screen.contains("priority 0, tied with filter INPUT"),
        "{screen}"
    );
    insta::assert_snapshot!("flow_native_selected_120x40", screen);
    // The dormant ip6 table filters nothing: not on the IPv6 diagram.
    key(&mut app, KeyCode::Char('f'));
    let v6 = nfscope::tui::flow::columns(&app, Family::V6);
    assert!(
        v6.iter()
            .flatten()
            .all(|e| e.chain != FlowBox::Native(native_key("ip6", "quarantine", "forward")))
    );
    assert!(
        v6[1]
            .iter()
            .any(|e| e.chain == FlowBox::Native(native_key("inet", "fw", "input")))
    );
}

#[test]
fn enter_on_a_native_box_opens_it_read_only() {
    let mut app = flow_app(80, 24);
    key(&mut app, KeyCode::Down);
    insta::assert_snapshot!("flow_native_selected_80x24", render(&app));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Rules);
    assert_eq!(app.rules.native, Some(native_key("inet", "fw", "input")));
    assert_eq!(app.rules.selected, None);
    let screen = render(&app);
    assert!(
        screen.contains("inet fw input (nftables) policy drop"),
        "{screen}"
    );
    assert!(
        screen.contains("native nftables: read-only in nfscope"),
        "{screen}"
    );
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.screen, Screen::Flow);
}

/// A snapshot of the demo with more native base chains: at every priority of INPUT, in ip and
/// ip6 tables, and on a hook the diagram has no column for.
fn crowded_app(w: u16, h: u16) -> App {
    use nfscope::source::native::{NativeChain, NativeTable};
    let mut world = nfscope::source::demo::DemoWorld::new().with_clock(common::screen::t0());
    let mut snap = world.snapshot();
    let base = |name: &str, hook: &str, priority: i32| NativeChain {
        name: name.into(),
        kind: Some("filter".into()),
        hook: Some(hook.into()),
        priority: Some(priority),
        policy: Some("accept".into()),
        rules: Vec::new(),
    };
    snap.native.push(NativeTable {
        family: "ip".into(),
        name: "early".into(),
        dormant: false,
        flags: Vec::new(),
        sets: Vec::new(),
        chains: vec![
            base("first", "input", -400),
            base("between", "input", -120),
            base("last", "input", 300),
            base("ingress", "ingress", -500),
        ],
    });
    snap.native.push(NativeTable {
        family: "ip6".into(),
        name: "v6only".into(),
        dormant: false,
        flags: Vec::new(),
        sets: Vec::new(),
        chains: vec![base("in6", "input", 10)],
    });
    let mut app = App::new(
        "gw01".into(),
        nfscope::tui::theme::Theme { color: false },
        (w, h),
        common::screen::t0(),
    );
    app.update(Msg::Snapshot(Box::new(snap)));
    key(&mut app, KeyCode::Char('4'));
    app
}

#[test]
fn every_base_chain_of_a_hook_in_priority_order() {
    let app = crowded_app(120, 40);
    let names: Vec<String> = nfscope::tui::flow::columns(&app, Family::V4)[1]
        .iter()
        .map(|e| format!("{} {}", e.name(Hook::Input), e.priority))
        .collect();
    assert_eq!(
        names,
        [
            "ip early first -400",
            "mangle INPUT -150",
            "ip early between -120",
            "filter INPUT 0",
            "inet fw input 0",
            "security INPUT 50",
            "nat INPUT 100",
            "ip early last 300",
        ]
    );
    // The ip6 table is IPv6's only.
    assert!(names.iter().all(|n| !n.contains("v6only")));
    let v6: Vec<String> = nfscope::tui::flow::columns(&app, Family::V6)[1]
        .iter()
        .map(|e| e.name(Hook::Input))
        .collect();
    assert!(v6.contains(&"ip6 v6only in6".to_string()), "{v6:?}");
    assert!(v6.iter().all(|n| !n.contains("early")), "{v6:?}");
}

#[test]
fn a_crowded_hook_leaves_out_what_is_not_loaded_then_scrolls() {
    let mut app = crowded_app(80, 24);
    let screen = render(&app);
    assert!(screen.contains("tables not loaded left out"), "{screen}");
    assert!(!screen.contains("not loaded │"), "{screen}");
    assert!(screen.contains("more"), "{screen}");
    insta::assert_snapshot!("flow_crowded_80x24", screen);
    // Down to the last box of INPUT: the column scrolls to keep it in view.
    for _ in 0..10 {
        key(&mut app, KeyCode::Down);
    }
    assert_eq!(
        app.flow_selected().expect("a box"),
        (
            Hook::Input,
            FlowBox::Native(native_key("ip", "early", "last"))
        )
    );
    let screen = render(&app);
    assert!(screen.contains("► ip early last:"), "{screen}");
    assert!(screen.contains("early last"), "{screen}");
    insta::assert_snapshot!("flow_crowded_scrolled_80x24", screen);
    let app = crowded_app(120, 40);
    insta::assert_snapshot!("flow_crowded_120x40", render(&app));
}

#[test]
fn a_click_selects_a_box_and_a_second_click_opens_it() {
    use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let mouse = |app: &mut App, kind, column, row| {
        app.update(Msg::Mouse(MouseEvent {
            kind,
            column,
            row,
            modifiers: KeyModifiers::NONE,
        }));
    };
    let click = MouseEventKind::Down(MouseButton::Left);
    let mut app = flow_app(120, 40);
    // Where the screen draws FORWARD's filter box and INPUT's native box.
    let screen = render(&app);
    let at = |needle: &str, nth: usize| -> (u16, u16) {
        screen
            .lines()
            .enumerate()
            .find_map(|(y, l)| {
                let l = l.trim_matches('"');
                let x = l.match_indices(needle).nth(nth)?.0;
                Some((l[..x].chars().count() as u16 + 2, y as u16 + 1))
            })
            .expect(needle)
    };
    let (x, y) = at("┌ filter ─", 0);
    mouse(&mut app, click, x, y);
    assert_eq!(app.screen, Screen::Flow);
    assert_eq!(
        app.flow_selected().expect("a box"),
        (Hook::Forward, FlowBox::Iptables(TableId::Filter))
    );
    let (x, y) = at("╔ inet fw input", 0);
    mouse(&mut app, click, x, y);
    assert_eq!(
        app.flow_selected().expect("a box"),
        (
            Hook::Input,
            FlowBox::Native(native_key("inet", "fw", "input"))
        )
    );
    // The wheel moves down the column; the gap between boxes selects nothing.
    mouse(&mut app, MouseEventKind::ScrollDown, x, y);
    assert_eq!(app.flow.row, 3);
    mouse(&mut app, click, x - 3, y);
    assert_eq!(app.flow.row, 3);
    // A second click on the selected box opens its chain.
    let (x, y) = at("┌ filter ─", 0);
    mouse(&mut app, click, x, y);
    mouse(&mut app, click, x, y);
    assert_eq!(app.screen, Screen::Rules);
    let sel = app.rules.selected.clone().expect("a chain selected");
    assert_eq!(
        (sel.table.as_str(), sel.chain.as_str()),
        ("filter", "FORWARD")
    );
}
