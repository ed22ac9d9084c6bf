//! A staged delete survives another tool changing the chain: the reproduction of the rebase that
//! deleted the wrong rule. "Delete the --dport 22 rule" is staged; meanwhile a rule is inserted
//! at the top of INPUT (as fail2ban does); the commit is refused, `r` rebases, and the commit
//! that follows deletes the --dport 22 rule and nothing else. Once in the demo world through the
//! keys of the TUI, and once against the real kernel (both backends, each in a throwaway network
//! namespace) through the staging, the plan and iptables-restore.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{ch, demo_app, key, render, t0};
use common::{NetNs, have_tools};
use nfscope::edit::apply::{apply_changes, canonical, read_now};
use nfscope::edit::plan::{conflicts, plan};
use nfscope::edit::stage::{Op, Staging};
use nfscope::edit::tools::Tools;
use nfscope::ruleset::{Family, Rule, Ruleset};
use nfscope::source::demo::{DemoWorld, SharedDemo};
use nfscope::source::{Backend, netns};
use nfscope::tui::app::{App, Popup, Screen};
use nfscope::tui::event::Cmd;
use ratatui::crossterm::event::KeyCode;
use std::sync::{Arc, Mutex};

fn run_commit(app: &mut App, world: &SharedDemo, cmds: Vec<Cmd>) {
    common::screen::run_demo_commit(app, world, cmds);
}

fn input_texts(rs: &[Ruleset]) -> Vec<String> {
    rs.iter()
        .find(|r| r.family == Family::V4)
        .and_then(|r| r.table("filter"))
        .and_then(|t| t.chain("INPUT"))
        .map(|c| c.rules.iter().map(|r| r.text.clone()).collect())
        .unwrap_or_default()
}

const SSH: &str = "-p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j IN_SSH";
const OTHER: &str = "-s 192.0.2.66/32 -j DROP";

#[test]
fn the_demo_rebase_deletes_the_rule_the_user_chose() {
    let world: SharedDemo = Arc::new(Mutex::new(DemoWorld::new().with_clock(t0())));
    let mut app = demo_app(120, 40);
    app.edit.origin = "demo".into();
    let before = input_texts(&world.lock().expect("world").rulesets());
    let pos = before
        .iter()
        .position(|r| r == SSH)
        .expect("the demo's SSH rule");
    // Select the SSH rule and delete it (the question answered yes).
    key(&mut app, KeyCode::Home);
    for _ in 0..pos {
        key(&mut app, KeyCode::Down);
    }
    assert_eq!(app.selected_rule().map(|(_, r)| r.text.as_str()), Some(SSH));
    key(&mut app, KeyCode::Delete);
    assert!(matches!(app.popup, Some(Popup::Ask(_))));
    ch(&mut app, 'y');

    // Another tool inserts at the top of INPUT meanwhile.
    {
        let mut w = world.lock().expect("world");
        let mut rs = w.rulesets();
        rs[0]
            .table_mut("filter")
            .and_then(|t| t.chains.iter_mut().find(|c| c.name == "INPUT"))
            .expect("INPUT")
            .rules
            .insert(0, Rule::from_text(OTHER, None).expect("rule"));
        w.set_ruleset(rs[0].clone());
    }
    ch(&mut app, 'C');
    ch(&mut app, 'c');
    let cmds = ch(&mut app, 'y');
    run_commit(&mut app, &world, cmds);
    let screen = render(&app);
    assert!(screen.contains("still apply"), "{screen}");
    ch(&mut app, 'r');
    assert_eq!(app.screen, Screen::Changes);
    // The diff deletes the SSH rule, and only it.
    let minus: Vec<&String> = app
        .edit
        .diff
        .iter()
        .flat_map(|(_, rows)| rows)
        .map(|r| &r.text)
        .filter(|t| t.starts_with('-') && !t.starts_with("---"))
        .collect();
    assert_eq!(minus.len(), 1, "{minus:#?}");
    assert!(minus[0].contains("--dport 22"), "{minus:#?}");

    // Commit again: the world holds the other tool's rule and every rule but the SSH one.
    let cmds = {
        ch(&mut app, 'c');
        ch(&mut app, 'y')
    };
    run_commit(&mut app, &world, cmds);
    assert_eq!(app.popup, Some(Popup::Countdown), "{}", render(&app));
    let after = input_texts(&world.lock().expect("world").rulesets());
    let mut want = before.clone();
    want.remove(pos);
    want.insert(0, OTHER.to_string());
    assert_eq!(after, want);
}

const FW: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
-A INPUT -p icmp -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n\
-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n";

fn kernel_rebase(backend: Backend) {
    if !have_tools(backend) {
        return;
    }
    let Some(ns) = NetNs::for_test(&format!("rebid{}", backend.label())) else {
        return;
    };
    ns.restore(Family::V4, backend, FW);
    let tools = Tools {
        backend: Some(backend),
    };
    let name = ns.name().to_string();
    // Stage "delete rule 4" on what the kernel holds, as the Rules screen's Del key does.
    let staging = netns::run_in(&name, move || -> Result<Staging, String> {
        let base = read_now(&tools, &[Family::V4]).map_err(|e| e.to_string())?;
        assert_eq!(input_texts(&base)[3], "-p tcp -m tcp --dport 22 -j ACCEPT");
        let mut s = Staging::new(base);
        s.push(Op::Delete {
            at: nfscope::edit::ChainRef::new(Family::V4, "filter", "INPUT"),
            pos: 4,
            id: None,
        })
        .map_err(|e| e.to_string())?;
        Ok(s)
    })
    .expect("a thread can enter the namespace")
    .expect("staged");

    // fail2ban's insert at the top.
    ns.iptables(
        Family::V4,
        backend,
        &["-I", "INPUT", "1", "-s", "192.0.2.66", "-j", "DROP"],
    );

    let after = netns::run_in(&name, move || -> Result<Vec<Ruleset>, String> {
        let now = read_now(&tools, &[Family::V4]).map_err(|e| e.to_string())?;
        // The commit refuses: the edited chain moved.
        let refused = conflicts(staging.base(), &now, &staging.edited(), &staging.renames());
        assert!(!refused.is_empty(), "the commit must see the move");
        // The rebase the TUI offers with `r`, then the commit it makes.
        let rebased = staging.rebase(now.clone()).map_err(|e| e.to_string())?;
        let staged = canonical(&tools, rebased.result()).map_err(|e| e.to_string())?;
        let changes = plan(
            &now,
            &staged,
            &rebased.edited(),
            &rebased.renames(),
            &rebased.zeroed(),
        );
        apply_changes(&tools, &changes).map_err(|e| e.to_string())?;
        read_now(&tools, &[Family::V4]).map_err(|e| e.to_string())
    })
    .expect("a thread can enter the namespace")
    .unwrap_or_else(|e| panic!("{backend:?}: {e}"));

    // The kernel holds the ICMP rule, the other tool's rule, and no --dport 22 rule.
    assert_eq!(
        input_texts(&after),
        [
            "-s 192.0.2.66/32 -j DROP",
            "-i lo -j ACCEPT",
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-p icmp -j ACCEPT",
            "-p tcp -m tcp --dport 80 -j ACCEPT",
        ],
        "{backend:?}"
    );
}

#[test]
fn the_kernel_keeps_the_icmp_rule_and_the_other_tools_rule_nft() {
    kernel_rebase(Backend::Nft);
}

#[test]
fn the_kernel_keeps_the_icmp_rule_and_the_other_tools_rule_legacy() {
    kernel_rebase(Backend::Legacy);
}
