//! Edit mode without a terminal or a kernel: the App driven with keys (pure `update` tests for
//! every staging key), its screens rendered to TestBackend with a fixed clock and compared with
//! insta snapshots (the editor with an error, the Changes screen and its diff, the lockout
//! warning, the countdown), and the commit run for real against the demo world in memory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::{demo_app, render, t0};
use nfscope::edit::commit::{self, Target};
use nfscope::edit::stage::Op;
use nfscope::source::demo::{DemoWorld, SharedDemo};
use nfscope::tui::app::{App, Popup, Screen};
use nfscope::tui::edit::{Ask, unix_ms};
use nfscope::tui::event::{Cmd, Msg};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn key(app: &mut App, code: KeyCode) -> Vec<Cmd> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ch(app: &mut App, c: char) -> Vec<Cmd> {
    key(app, KeyCode::Char(c))
}

fn ctrl(app: &mut App, c: char) -> Vec<Cmd> {
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char(c),
        KeyModifiers::CONTROL,
    )))
}

fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        ch(app, c);
    }
}

/// The staged operations without the rule identities staging fills in (tested in
/// edit::stage and tests/rebase_identity.rs).
fn ops(app: &App) -> Vec<Op> {
    app.edit
        .staging
        .as_ref()
        .map(|s| s.ops().iter().cloned().map(plain).collect())
        .unwrap_or_default()
}

fn plain(op: Op) -> Op {
    match op {
        Op::Insert { at, pos, rule, .. } => Op::Insert {
            at,
            pos,
            rule,
            above: None,
        },
        Op::Replace { at, pos, rule, .. } => Op::Replace {
            at,
            pos,
            rule,
            id: None,
        },
        Op::Delete { at, pos, .. } => Op::Delete { at, pos, id: None },
        Op::Move { at, from, to, .. } => Op::Move {
            at,
            from,
            to,
            id: None,
            above: None,
        },
        op => op,
    }
}

/// The demo's filter INPUT chain, as the Rules screen starts.
fn at_input(app: &App) -> nfscope::edit::ChainRef {
    let k = app.rules.selected.clone().expect("a chain is selected");
    assert_eq!((k.table.as_str(), k.chain.as_str()), ("filter", "INPUT"));
    nfscope::edit::ChainRef::new(k.family, &k.table, &k.chain)
}

/// Append `rule` to filter INPUT through the editor.
fn append(app: &mut App, rule: &str) -> Vec<Cmd> {
    ch(app, 'a');
    assert!(matches!(app.popup, Some(Popup::Editor(_))));
    typed(app, rule);
    key(app, KeyCode::Enter)
}

#[test]
fn append_insert_edit_delete_move_stage_operations() {
    let mut app = demo_app(120, 40);
    let at = at_input(&app);
    let n = app.chain().expect("chain").rules.len();

    append(&mut app, "-p tcp --dport 8080 -j ACCEPT");
    assert_eq!(app.popup, None);
    assert_eq!(
        ops(&app),
        vec![Op::Append {
            at: at.clone(),
            rule: "-p tcp --dport 8080 -j ACCEPT".into()
        }]
    );
    assert_eq!(app.chain().expect("chain").rules.len(), n + 1);
    assert_eq!(
        app.selected_rule().map(|(i, _)| i),
        Some(n),
        "the cursor follows the new rule"
    );

    // I inserts above the selected rule (the first).
    key(&mut app, KeyCode::Home);
    ch(&mut app, 'I');
    typed(&mut app, "-s 192.0.2.1 -j DROP");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        ops(&app)[1],
        Op::Insert {
            above: None,
            at: at.clone(),
            pos: 1,
            rule: "-s 192.0.2.1 -j DROP".into()
        }
    );

    // e opens the selected rule's text; the edit replaces it.
    ch(&mut app, 'e');
    let ed = app.editor().expect("editor");
    assert_eq!(ed.text(), "-s 192.0.2.1 -j DROP", "prefilled for replace");
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    typed(&mut app, "REJECT");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        ops(&app)[2],
        Op::Replace {
            id: None,
            at: at.clone(),
            pos: 1,
            rule: "-s 192.0.2.1 -j REJECT".into()
        }
    );

    // J moves it down, K back up (Alt-Down / Alt-Up too).
    ch(&mut app, 'J');
    assert_eq!(
        ops(&app)[3],
        Op::Move {
            id: None,
            above: None,
            at: at.clone(),
            from: 1,
            to: 2
        }
    );
    assert_eq!(app.selected_rule().map(|(i, _)| i), Some(1));
    app.update(Msg::Key(KeyEvent::new(KeyCode::Up, KeyModifiers::ALT)));
    assert_eq!(
        ops(&app)[4],
        Op::Move {
            id: None,
            above: None,
            at: at.clone(),
            from: 2,
            to: 1
        }
    );
    ch(&mut app, 'K');
    assert_eq!(ops(&app).len(), 5, "the first rule cannot move up");
    assert!(
        app.edit
            .message
            .as_ref()
            .is_some_and(|(m, e)| *e && m.contains("first"))
    );

    // Delete asks first; n leaves everything as it was, y stages it.
    key(&mut app, KeyCode::Delete);
    assert!(matches!(app.popup, Some(Popup::Ask(_))));
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::DeleteRule { pos: 1, .. })
    ));
    ch(&mut app, 'n');
    assert_eq!(ops(&app).len(), 5);
    ch(&mut app, '-');
    ch(&mut app, 'y');
    assert_eq!(
        ops(&app)[5],
        Op::Delete {
            id: None,
            at: at.clone(),
            pos: 1
        }
    );

    // u undoes, Ctrl-r redoes.
    ch(&mut app, 'u');
    assert_eq!(ops(&app).len(), 5);
    ctrl(&mut app, 'r');
    assert_eq!(ops(&app).len(), 6);
    assert_eq!(app.edit.count(), 6);
    assert!(render(&app).contains("6 staged changes"));
}

#[test]
fn chain_keys_stage_chain_operations() {
    let mut app = demo_app(120, 40);
    let at = at_input(&app);
    // P flips INPUT's policy (the demo's is DROP), after asking.
    ch(&mut app, 'P');
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::Policy { .. })
    ));
    assert!(ops(&app).is_empty(), "nothing staged before the answer");
    ch(&mut app, 'y');
    assert_eq!(
        ops(&app),
        vec![Op::SetPolicy {
            at: at.clone(),
            policy: "ACCEPT".into()
        }]
    );
    // Z asks, and s stages the zeroing with the other changes; F flushes after asking.
    ch(&mut app, 'h');
    ch(&mut app, 'Z');
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::Zero(_))
    ));
    ch(&mut app, 's');
    ch(&mut app, 'l');
    ch(&mut app, 'F');
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::Flush { .. })
    ));
    key(&mut app, KeyCode::Enter);
    assert_eq!(ops(&app)[1], Op::Zero { at: at.clone() });
    assert_eq!(ops(&app)[2], Op::Flush { at: at.clone() });
    assert!(app.chain().expect("chain").rules.is_empty());

    // A makes a chain and selects it; R renames it; X deletes it.
    ch(&mut app, 'A');
    typed(&mut app, "WEB");
    key(&mut app, KeyCode::Enter);
    let web = nfscope::edit::ChainRef::new(at.family, "filter", "WEB");
    assert_eq!(ops(&app)[3], Op::NewChain { at: web.clone() });
    assert_eq!(
        app.rules.selected.as_ref().map(|k| k.chain.as_str()),
        Some("WEB")
    );
    ch(&mut app, 'R');
    assert_eq!(app.editor().map(|e| e.text()), Some("WEB".into()));
    for _ in 0..3 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "HTTP");
    key(&mut app, KeyCode::Enter);
    assert_eq!(
        ops(&app)[4],
        Op::RenameChain {
            at: web,
            to: "HTTP".into()
        }
    );
    assert_eq!(
        app.rules.selected.as_ref().map(|k| k.chain.as_str()),
        Some("HTTP")
    );
    ch(&mut app, 'X');
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::DeleteChain { refs, .. }) if refs.is_empty()
    ));
    ch(&mut app, 'y');
    assert!(matches!(ops(&app)[5], Op::DeleteChain { .. }));

    // A built-in chain cannot be renamed or deleted; a user chain has no policy.
    let before = ops(&app).len();
    ch(&mut app, 'R');
    ch(&mut app, 'X');
    assert_eq!(ops(&app).len(), before);
    assert_eq!(app.popup, None);
}

#[test]
fn deleting_a_referenced_chain_offers_to_remove_the_references() {
    let mut app = demo_app(120, 40);
    // IN_SSH is the target of a rule in INPUT.
    while app
        .rules
        .selected
        .as_ref()
        .is_some_and(|k| k.chain != "IN_SSH")
    {
        key(&mut app, KeyCode::Left);
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Right);
    }
    ch(&mut app, 'X');
    // The question names the rule that jumps to it.
    let ssh = "-A INPUT -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -j IN_SSH";
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::DeleteChain { refs, .. }) if refs == &[ssh.to_string()]
    ));
    let screen = render(&app);
    assert!(screen.contains("it is deleted too"), "{screen}");
    assert!(screen.contains(ssh), "{screen}");
    ch(&mut app, 'y');
    assert!(matches!(
        ops(&app)[0],
        Op::DeleteChain {
            remove_references: true,
            ..
        }
    ));
}

#[test]
fn the_editor_checks_as_you_type_and_stages_nothing_on_an_error() {
    let mut app = demo_app(120, 40);
    ch(&mut app, 'a');
    typed(&mut app, "-p tcp --dport 22 -m comment --comment \"ssh");
    let screen = render(&app);
    assert!(
        screen.contains("quote is opened but never closed"),
        "{screen}"
    );
    insta::assert_snapshot!("editor_open_quote", screen);
    key(&mut app, KeyCode::Enter);
    assert!(
        matches!(app.popup, Some(Popup::Editor(_))),
        "Enter does not save it"
    );
    assert!(app.edit.staging.is_none());
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, None);
    assert!(app.edit.staging.is_none(), "Esc stages nothing");
}

#[test]
fn iptables_restore_test_refusal_shows_under_the_editor() {
    let mut app = demo_app(120, 40);
    app.edit.validate = true;
    let cmds = append(&mut app, "-p tcp -m nosuchmatch --foo -j ACCEPT");
    let Some(Cmd::Validate { id, staged }) = cmds.first() else {
        panic!("save asks for iptables-restore --test: {cmds:?}");
    };
    assert_eq!(staged.len(), 1, "the edited family only");
    assert!(
        app.edit.staging.as_ref().is_none_or(|s| s.is_empty()),
        "nothing staged while the tool checks"
    );
    assert!(render(&app).contains("checking the staged table"));
    app.update(Msg::Validated {
        id: *id,
        result: Err("iptables-restore --test: Couldn't load match `nosuchmatch':No such file or directory (line 21: -A INPUT -p tcp -m nosuchmatch --foo -j ACCEPT)".into()),
    });
    let screen = render(&app);
    assert!(screen.contains("not staged"), "{screen}");
    insta::assert_snapshot!("editor_refused_by_restore_test", screen);
    assert!(app.edit.staging.as_ref().is_none_or(|s| s.is_empty()));
    // Fixed and saved again: the tool agrees, the rule is staged.
    for _ in 0.."nosuchmatch --foo -j ACCEPT".len() {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "tcp --dport 22 -j ACCEPT");
    let cmds = key(&mut app, KeyCode::Enter);
    let Some(Cmd::Validate { id, .. }) = cmds.first() else {
        panic!("{cmds:?}");
    };
    app.update(Msg::Validated {
        id: *id,
        result: Ok(()),
    });
    assert_eq!(app.edit.count(), 1);
    assert_eq!(app.popup, None);
}

#[test]
fn tab_completes_in_the_editor() {
    let mut app = demo_app(120, 40);
    ch(&mut app, 'a');
    typed(&mut app, "-p tcp -j IN_");
    key(&mut app, KeyCode::Tab);
    assert_eq!(
        app.editor().map(|e| e.text()),
        Some("-p tcp -j IN_SSH ".into())
    );
}

#[test]
fn changes_screen_lists_ops_and_the_diff_and_unstages() {
    let mut app = demo_app(120, 40);
    append(&mut app, "-p tcp --dport 8080 -j ACCEPT");
    ch(&mut app, 'P');
    ch(&mut app, 'y');
    ch(&mut app, 'C');
    assert_eq!(app.screen, Screen::Changes);
    let screen = render(&app);
    assert!(
        screen.contains("+-A INPUT -p tcp --dport 8080 -j ACCEPT"),
        "{screen}"
    );
    assert!(screen.contains("-:INPUT DROP [0:0]"), "{screen}");
    assert!(screen.contains("+:INPUT ACCEPT [0:0]"), "{screen}");
    insta::assert_snapshot!("changes_screen", screen);
    insta::assert_snapshot!("changes_screen_80x24", {
        app.update(Msg::Resize(80, 24));
        render(&app)
    });
    app.update(Msg::Resize(120, 40));
    // A click selects an operation; the wheel over them moves through them.
    {
        use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
        let screen = render(&app);
        let row = |n: &str| {
            screen
                .lines()
                .position(|l| l.contains(&format!(" {n} IPv4 filter/INPUT")))
                .expect("the operation's row") as u16
        };
        let mouse = |app: &mut App, kind, row| {
            app.update(Msg::Mouse(MouseEvent {
                kind,
                column: 10,
                row,
                modifiers: KeyModifiers::NONE,
            }));
        };
        let (first, second) = (row("1"), row("2"));
        mouse(&mut app, MouseEventKind::Down(MouseButton::Left), second);
        assert_eq!(app.edit.cursor, 1);
        mouse(&mut app, MouseEventKind::ScrollUp, second);
        assert_eq!(app.edit.cursor, 0);
        mouse(&mut app, MouseEventKind::Down(MouseButton::Left), first);
        assert_eq!(app.edit.cursor, 0);
    }
    // Tab cycles through it too.
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Rules);
    ch(&mut app, '5');
    // d unstages the selected (first) operation.
    ch(&mut app, 'd');
    assert_eq!(app.edit.count(), 1);
    // D discards all after asking.
    ch(&mut app, 'D');
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::Discard { ops: 1 })
    ));
    ch(&mut app, 'y');
    assert_eq!(app.edit.count(), 0);
    assert!(render(&app).contains("Nothing is staged"));
}

#[test]
fn unstaging_an_op_that_later_ops_need_is_refused() {
    let mut app = demo_app(120, 40);
    ch(&mut app, 'A');
    typed(&mut app, "WEB");
    key(&mut app, KeyCode::Enter);
    append(&mut app, "-j ACCEPT");
    ch(&mut app, '5');
    ch(&mut app, 'd');
    assert_eq!(app.edit.count(), 2, "the append needs the chain");
    let (m, err) = app.edit.message.clone().expect("a message");
    assert!(err, "{m}");
}

#[test]
fn staged_work_is_saved_on_every_change_when_persisting() {
    let mut app = demo_app(120, 40);
    app.edit.persist = true;
    let cmds = append(&mut app, "-j ACCEPT");
    assert!(
        matches!(cmds.as_slice(), [Cmd::SaveState(Some(s))] if s.staging.ops().len() == 1),
        "{cmds:?}"
    );
    let cmds = ch(&mut app, 'u');
    assert_eq!(cmds, vec![Cmd::SaveState(None)], "nothing left: cleared");
}

#[test]
fn a_saved_staging_is_offered_and_says_what_moved() {
    let mut world = DemoWorld::new().with_clock(t0());
    let mut st = nfscope::edit::stage::Staging::new(world.rulesets());
    let at = nfscope::edit::ChainRef::new(nfscope::ruleset::Family::V4, "filter", "INPUT");
    st.push(Op::Append {
        at: at.clone(),
        rule: "-j ACCEPT".into(),
    })
    .expect("stages");
    // The kernel moved meanwhile: a rule was added to filter INPUT.
    let mut now = world.rulesets();
    let r = nfscope::ruleset::Rule::from_text("-s 198.51.100.9 -j DROP", None).expect("rule");
    now[0]
        .table_mut("filter")
        .and_then(|t| t.chains.iter_mut().find(|c| c.name == "INPUT"))
        .expect("INPUT")
        .rules
        .insert(0, r);
    world.set_ruleset(now[0].clone());

    let mut app = App::new(
        "gw01".into(),
        nfscope::tui::theme::Theme { color: false },
        (100, 30),
        t0(),
    );
    app.offer_resume(st, 1_790_000_000);
    assert_eq!(app.popup, None, "asked once a snapshot is there");
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    assert!(matches!(app.popup, Some(Popup::Ask(_))));
    let screen = render(&app);
    assert!(screen.contains("Resume the staged change"), "{screen}");
    assert!(screen.contains("2026-09-21"), "{screen}");
    assert!(screen.contains("IPv4 filter/INPUT"), "{screen}");
    ch(&mut app, 'y');
    assert_eq!(app.edit.count(), 1);
}

/// Run a commit against the demo world, as the loop's worker would, feeding its reports back;
/// the countdown's deadline is fixed so that screens are stable.
fn run_commit(app: &mut App, world: &SharedDemo, cmds: Vec<Cmd>) -> Target {
    common::screen::run_demo_commit(app, world, cmds)
}

fn shared_world() -> SharedDemo {
    Arc::new(Mutex::new(DemoWorld::new().with_clock(t0())))
}

/// The demo with one rule appended to INPUT and committed: the countdown is up.
fn demo_countdown() -> (App, SharedDemo, commit::Target) {
    let world = shared_world();
    let mut app = demo_app(120, 40);
    app.edit.origin = "demo".into();
    append(&mut app, "-p tcp --dport 8080 -j ACCEPT");
    ch(&mut app, 'C');
    ch(&mut app, 'c');
    assert!(matches!(
        app.popup.as_ref().and_then(Popup::question),
        Some(Ask::Commit { ops: 1, .. })
    ));
    let cmds = ch(&mut app, 'y');
    assert!(matches!(cmds.as_slice(), [Cmd::Commit(_)]), "{cmds:?}");
    let target = run_commit(&mut app, &world, cmds);
    assert_eq!(app.popup, Some(Popup::Countdown));
    (app, world, target)
}

#[test]
fn commit_in_the_demo_shows_the_checklist_and_countdown_then_confirms() {
    let (mut app, world, target) = demo_countdown();
    let screen = render(&app);
    assert!(screen.contains("Rolling back in 30 s"), "{screen}");
    assert!(screen.contains("✓ verify"), "{screen}");
    insta::assert_snapshot!("countdown", screen);

    // The countdown redraws once a second, not more.
    let soon = app.now + Duration::from_millis(400);
    assert!(!app.step(Msg::Tick(soon)).redraw);
    let later = app.now + Duration::from_millis(700);
    assert!(app.step(Msg::Tick(later)).redraw);
    assert!(render(&app).contains("Rolling back in 29 s"));

    // + asks for 30 s more; y confirms.
    let cmds = ch(&mut app, '+');
    assert!(matches!(cmds.as_slice(), [Cmd::Extend { .. }]));
    app.update(Msg::Commit(commit::extend(
        &target,
        Duration::from_secs(30),
        unix_ms(t0()) + 31_000,
    )));
    assert!(render(&app).contains("Rolling back in 59 s"));
    let cmds = ch(&mut app, 'y');
    assert_eq!(cmds, vec![Cmd::KeepChange]);
    app.update(Msg::Commit(commit::confirm(&target)));
    assert_eq!(app.edit.count(), 0, "committed: nothing staged any more");
    assert!(render(&app).contains("committed and confirmed"));
    // The world holds the rule.
    let rs = world.lock().expect("world").rulesets();
    let input = rs[0]
        .table("filter")
        .and_then(|t| t.chain("INPUT"))
        .expect("INPUT");
    assert!(
        input
            .rules
            .iter()
            .any(|r| r.text == "-p tcp --dport 8080 -j ACCEPT")
    );
}

#[test]
fn an_unconfirmed_demo_commit_rolls_back_at_the_deadline() {
    let world = shared_world();
    let before = world.lock().expect("world").rulesets();
    let mut app = demo_app(100, 30);
    ch(&mut app, 'P');
    ch(&mut app, 'y');
    ch(&mut app, 'C');
    ch(&mut app, 'c');
    let cmds = ch(&mut app, 'y');
    let target = run_commit(&mut app, &world, cmds);
    let cmds = app.update(Msg::Tick(t0() + Duration::from_secs(32)));
    assert_eq!(cmds, vec![Cmd::Expired]);
    assert!(
        app.update(Msg::Tick(t0() + Duration::from_secs(33)))
            .is_empty(),
        "once"
    );
    app.update(Msg::Commit(commit::expired(&target)));
    assert_eq!(app.popup, Some(Popup::Commit));
    assert!(render(&app).contains("still staged"));
    assert_eq!(app.edit.count(), 1, "the changes are still staged");
    let after = world.lock().expect("world").rulesets();
    let policy = |rs: &[nfscope::ruleset::Ruleset]| {
        rs[0]
            .table("filter")
            .and_then(|t| t.chain("INPUT"))
            .and_then(|c| c.policy.clone())
    };
    assert_eq!(policy(&after), policy(&before));
}

#[test]
fn the_lockout_warning_needs_the_word_typed() {
    let world = shared_world();
    let mut app = demo_app(120, 40);
    // An SSH session from the internet to the demo gateway's WAN address.
    app.trace.ssh = Some("198.51.100.7 51000 203.0.113.2 22".into());
    // A DROP of port 22 at the top of INPUT.
    ch(&mut app, 'I');
    typed(&mut app, "-p tcp --dport 22 -j DROP");
    key(&mut app, KeyCode::Enter);
    ch(&mut app, 'C');
    ch(&mut app, 'c');
    let cmds = ch(&mut app, 'y');
    run_commit(&mut app, &world, cmds);
    assert!(
        matches!(app.popup, Some(Popup::Editor(_))),
        "asks for the word"
    );
    let screen = render(&app);
    assert!(screen.contains("would cut you off"), "{screen}");
    assert!(screen.contains("-p tcp --dport 22 -j DROP"), "{screen}");
    insta::assert_snapshot!("lockout_warning", screen);
    // Anything but the word is refused.
    typed(&mut app, "yes");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    let screen = render(&app);
    assert!(
        matches!(app.popup, Some(Popup::Editor(_))),
        "still asks: {screen}"
    );
    assert!(screen.contains("that is not the word lockout"), "{screen}");
    for _ in 0..3 {
        key(&mut app, KeyCode::Backspace);
    }
    typed(&mut app, "lockout");
    let cmds = key(&mut app, KeyCode::Enter);
    let Some(Cmd::Commit(req)) = cmds.first() else {
        panic!("{cmds:?}");
    };
    assert!(req.lockout_confirmed);
    run_commit(&mut app, &world, cmds);
    assert_eq!(app.popup, Some(Popup::Countdown));
}

#[test]
fn a_conflict_refuses_and_offers_a_rebase() {
    let world = shared_world();
    let mut app = demo_app(120, 40);
    append(&mut app, "-j ACCEPT");
    // Someone else adds a rule to INPUT meanwhile.
    {
        let mut w = world.lock().expect("world");
        let mut rs = w.rulesets();
        let rule =
            nfscope::ruleset::Rule::from_text("-s 203.0.113.99 -j DROP", None).expect("rule");
        rs[0]
            .table_mut("filter")
            .and_then(|t| t.chains.iter_mut().find(|c| c.name == "INPUT"))
            .expect("INPUT")
            .rules
            .insert(0, rule);
        w.set_ruleset(rs[0].clone());
    }
    ch(&mut app, 'C');
    ch(&mut app, 'c');
    let cmds = ch(&mut app, 'y');
    run_commit(&mut app, &world, cmds);
    assert_eq!(app.popup, Some(Popup::Commit));
    let screen = render(&app);
    assert!(screen.contains("-s 203.0.113.99"), "{screen}");
    assert!(screen.contains("r rebase"), "{screen}");
    insta::assert_snapshot!("conflict", screen);
    ch(&mut app, 'r');
    assert_eq!(app.popup, None);
    assert_eq!(app.screen, Screen::Changes);
    let base = app.edit.staging.as_ref().expect("staging").base().to_vec();
    assert!(
        base[0]
            .table("filter")
            .and_then(|t| t.chain("INPUT"))
            .is_some_and(|c| c.rules[0].text == "-s 203.0.113.99 -j DROP"),
        "the new base is the kernel's"
    );
}

#[test]
fn no_size_panics_in_edit_popups() {
    let mut app = demo_app(120, 40);
    ch(&mut app, 'a');
    typed(&mut app, "-j \"x");
    for w in (1..=131).step_by(13) {
        for h in (1..=46).step_by(5) {
            app.update(Msg::Resize(w, h));
            render(&app);
        }
    }
}

#[test]
fn a_commit_to_a_file_writes_it_after_a_backup_copy() {
    let dir = std::env::temp_dir().join(format!("nfscope-edit-file-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("rules.v4");
    let old = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n";
    std::fs::write(&path, old).expect("write");
    let mut app = App::new(
        "gw01".into(),
        nfscope::tui::theme::Theme { color: false },
        (120, 40),
        t0(),
    );
    app.edit.origin = format!("file:{}", path.display());
    app.update(Msg::Snapshot(Box::new(nfscope::source::file::read(
        Some(&path),
        None,
        1,
    ))));
    append(&mut app, "-p tcp --dport 22 -j ACCEPT");
    ch(&mut app, 'C');
    ch(&mut app, 'c');
    let cmds = ch(&mut app, 'y');
    let target = Target::File {
        v4: Some(path.clone()),
        v6: None,
        dir: dir.join("state"),
    };
    for c in cmds {
        if let Cmd::Commit(req) = c {
            commit::run(&target, &req, &mut |p| {
                app.update(Msg::Commit(p));
            });
        }
    }
    let screen = render(&app);
    assert!(screen.contains("committed: written"), "{screen}");
    assert_eq!(app.edit.count(), 0);
    let new = std::fs::read_to_string(&path).expect("read");
    assert!(
        new.contains("-A INPUT -p tcp --dport 22 -j ACCEPT"),
        "{new}"
    );
    assert!(new.contains("-A INPUT -i lo -j ACCEPT"), "{new}");
    // Kept apart from the kernel's backups, which a rollback loads.
    let backups: Vec<String> = std::fs::read_dir(dir.join("state").join("file-backups"))
        .expect("file backups")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".v4.rules"))
        .map(|e| std::fs::read_to_string(e.path()).expect("backup"))
        .collect();
    assert_eq!(backups, vec![old.to_string()], "the old file, copied first");
    let _ = std::fs::remove_dir_all(&dir);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 24,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..Default::default()
    })]
    /// Any keys in any order (edit keys, answers, editor typing, Tab, Enter, Esc, undo; not q)
    /// never panic update or draw, whatever the terminal size.
    #[test]
    fn random_keys_never_panic(
        keys in proptest::collection::vec(
            proptest::sample::select(vec![
                'a', 'I', 'e', '-', 'K', 'J', 'N', 'R', 'X', 'P', 'F', 'Z', 'u', 'y', 'n',
                'd', 'D', 'c', 'r', '5', '1', 'j', 'k', 'h', 'l', 'x', '+', ' ', '"', 'A',
                '\t', '\n', '\u{1b}', '\u{7f}', '\u{8}', '?',
            ]),
            0..80,
        ),
        size in (20u16..140, 5u16..50),
    ) {
        let mut app = demo_app(size.0, size.1);
        for c in keys {
            let code = match c {
                '\t' => KeyCode::Tab,
                '\n' => KeyCode::Enter,
                '\u{1b}' => KeyCode::Esc,
                '\u{7f}' => KeyCode::Delete,
                '\u{8}' => KeyCode::Backspace,
                c => KeyCode::Char(c),
            };
            let cmds = key(&mut app, code);
            // The workers' answers, as the loop would bring them.
            for cmd in cmds {
                if let Cmd::Validate { id, .. } = cmd {
                    app.update(Msg::Validated { id, result: Ok(()) });
                }
            }
        }
        render(&app);
    }
}

#[test]
fn enter_on_an_operation_shows_its_rule_and_backspace_returns() {
    let mut app = demo_app(120, 40);
    // Select rule 3, insert above it: the operation is "insert at 3".
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    ch(&mut app, 'I');
    typed(&mut app, "-s 192.0.2.9 -j DROP");
    key(&mut app, KeyCode::Enter);
    // Look at another chain, then review.
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Up);
    key(&mut app, KeyCode::Right);
    ch(&mut app, '5');
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Rules);
    assert_eq!(
        app.selected_rule().map(|(i, r)| (i, r.text.clone())),
        Some((2, "-s 192.0.2.9 -j DROP".to_string()))
    );
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.screen, Screen::Changes);
}

#[test]
fn the_countdown_ticks_even_when_other_messages_move_the_clock() {
    let world = shared_world();
    let mut app = demo_app(100, 30);
    ch(&mut app, 'P');
    ch(&mut app, 'y');
    ch(&mut app, 'C');
    ch(&mut app, 'c');
    let cmds = ch(&mut app, 'y');
    run_commit(&mut app, &world, cmds);
    // A snapshot moves the clock past the next second before the tick comes.
    let mut w = DemoWorld::new().with_clock(app.now + Duration::from_millis(1200));
    app.update(Msg::Snapshot(Box::new(w.snapshot())));
    let cmds = app.update(Msg::Tick(app.now + Duration::from_millis(10)));
    assert!(
        matches!(cmds.as_slice(), [Cmd::CheckPending { .. }]),
        "the once-a-second check still goes out: {cmds:?}"
    );
    assert!(render(&app).contains("Rolling back in 29 s"));
}

#[test]
fn a_failed_rollback_at_the_deadline_is_said_in_red_not_as_a_rollback() {
    let (mut app, _, _) = demo_countdown();
    // What commit::expired reports when the watchdog's restore failed.
    let said = commit::rollback_failed_text("the backup x.v4.rules is damaged: line 2");
    app.update(Msg::Commit(commit::Progress::RollbackFailed(said)));
    assert_eq!(app.popup, Some(Popup::Commit));
    assert_eq!(app.edit.countdown, None);
    let screen = render(&app);
    assert!(screen.contains("The rollback FAILED"), "{screen}");
    assert!(screen.contains("nfscope rollback"), "{screen}");
    assert!(!screen.contains("restored the rule sets"), "{screen}");
    // The staged change is kept, to be fixed and committed again.
    assert!(app.edit.staging.is_some());
}
