//! Text others wrote (a rule's comment, an interface name) holding terminal controls: ESC
//! sequences (`\e[8m` hides what follows, `\e[2J` clears the screen), BEL, the C1 CSI (U+009B),
//! bidirectional overrides (U+202E) and zero-width characters. No face may pass them to the
//! terminal raw: the text listing, the trace and the TUI show them as escapes (`\e`, `\x07`,
//! `\x9b`, `\u{202e}`); JSON keeps the exact string; the save format keeps the exact bytes to
//! a pipe. The TUI is read back from the very bytes it wrote (tmux pipe-pane) at 80x24 and
//! 120x40.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::tmux::Run;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");

/// The comment: each control in it would do something to a terminal.
const COMMENT: &str = "C\u{1b}[8mHIDDEN\u{7}\u{9b}2J\u{202e}lave\u{200b}z";

fn rules() -> String {
    format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"{COMMENT}\" -j ACCEPT\n-A INPUT -i eth\u{202e}0 -j DROP\nCOMMIT\n"
    )
}

/// What must never reach a terminal from the data.
fn dangerous(s: &str) -> Option<char> {
    s.chars()
        .find(|c| matches!(c, '\u{7}' | '\u{9b}' | '\u{202e}' | '\u{200b}'))
}

fn file(tag: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("nfscope-hostile-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("rules.v4");
    std::fs::write(&p, rules()).unwrap();
    let s = p.display().to_string();
    (dir, s)
}

#[test]
fn the_cli_shows_controls_as_escapes_and_keeps_the_bytes_where_they_are_data() {
    let (dir, p) = file("cli");
    let run = |args: &[&str]| Command::new(BIN).args(args).output().expect("run nfscope");

    let text = run(&["rules", "--file", &p]);
    assert!(text.status.success(), "{text:?}");
    let out = String::from_utf8(text.stdout).unwrap();
    assert_eq!(dangerous(&out), None, "{out}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(
        out.contains("C\\e[8mHIDDEN\\x07\\x9b2J\\u{202e}lave\\u{200b}z"),
        "{out}"
    );
    assert!(out.contains("eth\\u{202e}0"), "{out}");

    let json = run(&["rules", "--file", &p, "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    let rule = &doc["families"][0]["tables"][0]["chains"][0]["rules"][0];
    assert!(
        rule["text"].as_str().is_some_and(|t| t.contains(COMMENT)),
        "{rule}"
    );

    // To a pipe, the save format is the exact bytes.
    let save = run(&["rules", "--file", &p, "--format", "save"]);
    assert!(save.status.success(), "{save:?}");
    let saved = String::from_utf8(save.stdout).unwrap();
    assert!(saved.contains(COMMENT), "{saved:?}");

    let trace = run(&[
        "trace",
        "--file",
        &p,
        "--chain",
        "INPUT",
        "--proto",
        "tcp",
        "--src",
        "192.0.2.1",
        "--dst",
        "192.0.2.2",
        "--dport",
        "22",
    ]);
    let out = String::from_utf8(trace.stdout).unwrap();
    assert_eq!(dangerous(&out), None, "{out}");
    assert!(!out.contains('\u{1b}'), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_tui_writes_no_control_from_the_data_at_80x24_and_120x40() {
    for (w, h) in [(80u16, 24u16), (120, 40)] {
        let (dir, p) = file(&format!("tui{w}"));
        let raw = dir.join("raw");
        let launch = format!("sleep 0.5; {{bin}} --file {p}");
        let Some(run) = Run::start(&format!("hostile{w}"), (w, h), &launch) else {
            return;
        };
        run.tmux.cmd(&[
            "pipe-pane",
            "-t",
            "t",
            "-o",
            &format!("cat > {}", raw.display()),
        ]);
        run.tmux.wait_for("INPUT");
        // The rule shows, its controls as escapes.
        let screen = run.tmux.wait_for("\\e[8m");
        assert_eq!(dangerous(&screen), None, "{w}x{h}:\n{screen}");
        // A second rule's details show the interface name whole.
        run.tmux.keys(&["j", "i"]);
        let detail = run.tmux.wait_for("-A INPUT -i eth\\u{202e}0 -j DROP");
        assert_eq!(dangerous(&detail), None, "{w}x{h}:\n{detail}");
        run.tmux.keys(&["Escape"]);
        run.tmux.wait_gone("save line");
        run.tmux.keys(&["q"]);
        assert_eq!(run.exit_status(), "0", "{}", run.tmux.screen());
        run.assert_terminal_restored();
        // The very bytes nfscope wrote to the terminal.
        let deadline = Instant::now() + Duration::from_secs(5);
        let bytes = loop {
            let b = std::fs::read(&raw).unwrap_or_default();
            if !b.is_empty() || Instant::now() > deadline {
                break b;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let written = String::from_utf8_lossy(&bytes);
        assert!(!written.is_empty(), "nothing captured");
        assert_eq!(dangerous(&written), None, "{w}x{h}");
        // nfscope's own styles are SGR sequences; the data's conceal (`\e[8m`) never is sent.
        assert!(!written.contains("\u{1b}[8m"), "{w}x{h}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
