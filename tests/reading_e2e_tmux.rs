//! Reading, finding and copying at 80x24 and 120x40, as a user does it in tmux: a 200-character
//! rule read whole (scrolled, wrapped, in save form), a chain found by a fuzzy name among 50, a
//! search hit in another table, `y` putting the rule's save line on the clipboard with OSC 52
//! (tmux's `set-clipboard on` turns it into a paste buffer), mouse clicks and the wheel, `q` on
//! entering the Trace screen, and `Z` zeroing a chain's counters in a throwaway namespace with
//! no countdown.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;
use common::tmux::{Run, Tmux};
use common::{NetNs, have_tools};
use nfscope::ruleset::Family;
use nfscope::source::Backend;
use std::time::{Duration, Instant};

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

/// The words of the long rule's comment: its end is far past any column at 80 or 120.
const WORDS: &str = "abuse report 2026-11 from the upstream provider about scanning of tcp port 8443 \
from this network block, blocked until the customer confirms the compromised host was cleaned \
and reinstalled ENDMARK";

fn long_rule() -> String {
    format!("-p tcp -m tcp --dport 8443 -m comment --comment \"{WORDS}\" -j DROP")
}

/// A v4 save file in a directory of its own; nfscope reads it with --file.
struct File {
    dir: std::path::PathBuf,
}

impl File {
    fn new(tag: &str, text: &str) -> File {
        let dir = std::env::temp_dir().join(format!("nfscope-read-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("v4.rules"), text).expect("file");
        File { dir }
    }

    /// nfscope on this file, its state (staged work) kept beside it.
    fn launch(&self) -> String {
        format!(
            "env NFSCOPE_STATE_DIR={d}/state {{bin}} --file {d}/v4.rules",
            d = self.dir.display()
        )
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn filter_with(rules: &[String]) -> String {
    let mut s =
        String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for r in rules {
        s.push_str(&format!("[5:300] -A INPUT {r}\n"));
    }
    s.push_str("COMMIT\n");
    s
}

fn sized(name: &str, size: (u16, u16)) -> String {
    format!("{name}{}x{}", size.0, size.1)
}

/// Wait for tmux's newest paste buffer to be `want` (set by an OSC 52 sequence).
fn wait_buffer(tmux: &Tmux, want: &str) {
    let start = Instant::now();
    loop {
        let got = tmux.cmd(&["show-buffer"]);
        if got == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the clipboard holds {got:?}, not {want:?}\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An SGR mouse report (1-based column and row), as a terminal sends it, in hex for
/// `send-keys -H`.
fn mouse(tmux: &Tmux, button: u8, col: u16, row: u16, press: bool) {
    let seq = format!(
        "\x1b[<{button};{col};{row}{}",
        if press { 'M' } else { 'm' }
    );
    let hex: Vec<String> = seq.bytes().map(|b| format!("{b:02x}")).collect();
    let mut args = vec!["send-keys", "-t", "t", "-H"];
    args.extend(hex.iter().map(String::as_str));
    tmux.cmd(&args);
}

fn click(tmux: &Tmux, col: u16, row: u16) {
    mouse(tmux, 0, col, row, true);
    mouse(tmux, 0, col, row, false);
}

#[test]
fn a_long_rule_is_read_whole_scrolled_wrapped_and_in_save_form() {
    for size in SIZES {
        let file = File::new(&sized("long", size), &filter_with(&[long_rule()]));
        let Some(run) = Run::start(&sized("long", size), size, &file.launch()) else {
            return;
        };
        let tmux = &run.tmux;
        let first = tmux.wait_for("filter INPUT");
        assert!(!first.contains("ENDMARK"), "{first}");
        // Scrolled sideways until its end shows.
        let mut screen = first;
        for _ in 0..20 {
            if screen.contains("ENDMARK") {
                break;
            }
            tmux.keys(&[">"]);
            screen = tmux.wait_for("« +");
        }
        assert!(screen.contains("ENDMARK"), "{screen}");
        // Wrapped: every word of it on screen at once.
        tmux.keys(&["w"]);
        let wrapped = tmux.wait_gone("« +");
        for w in WORDS.split_whitespace() {
            assert!(
                wrapped.contains(w),
                "{w:?} missing when wrapped:\n{wrapped}"
            );
        }
        // Save form: the -A line, from its start.
        tmux.keys(&["w", "S"]);
        let saved = tmux.wait_for("-A INPUT -p tcp -m tcp --dport 8443");
        assert!(
            !saved.contains("destination"),
            "no columns in save form:\n{saved}"
        );
        tmux.keys(&["q"]);
        assert_eq!(run.exit_status(), "0");
    }
}

#[test]
fn a_chain_is_found_by_a_fuzzy_name_among_fifty() {
    for size in SIZES {
        let mut text = String::from(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n",
        );
        let names: Vec<String> = (0..49)
            .map(|i| {
                format!(
                    "KUBE-SVC-{:016X}",
                    0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i + 1)
                )
            })
            .chain(["KUBE-FW-WEBSHOP".to_string()])
            .collect();
        for n in &names {
            text.push_str(&format!(":{n} - [0:0]\n"));
        }
        for n in &names {
            text.push_str(&format!("-A {n} -j RETURN\n"));
        }
        text.push_str("COMMIT\n");
        let file = File::new(&sized("jump", size), &text);
        let Some(run) = Run::start(&sized("jump", size), size, &file.launch()) else {
            return;
        };
        let tmux = &run.tmux;
        tmux.wait_for("filter INPUT");
        tmux.keys(&[":"]);
        tmux.wait_for("Jump to a chain");
        tmux.keys(&["-l", "fwweb"]);
        let ranked = tmux.wait_for("1 of 53 chains");
        assert!(ranked.contains("IPv4 filter KUBE-FW-WEBSHOP"), "{ranked}");
        tmux.keys(&["Enter"]);
        tmux.wait_for("filter KUBE-FW-WEBSHOP (IPv4)");
        // Ctrl-p too; Esc leaves the chain shown as it was.
        tmux.keys(&["C-p"]);
        tmux.wait_for("Jump to a chain");
        tmux.keys(&["Escape"]);
        tmux.wait_gone("Jump to a chain");
        assert!(tmux.screen().contains("filter KUBE-FW-WEBSHOP (IPv4)"));
        tmux.keys(&["q"]);
        assert_eq!(run.exit_status(), "0");
    }
}

#[test]
fn a_search_finds_a_hit_in_another_table() {
    for size in SIZES {
        let mut text = filter_with(&["-p tcp -m tcp --dport 22 -j ACCEPT".to_string()]);
        text.push_str(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
             -A PREROUTING -p tcp -m tcp --dport 2222 -m comment --comment \"needle-in-nat\" -j DNAT --to-destination 10.0.0.10:22\n\
             COMMIT\n",
        );
        let file = File::new(&sized("search", size), &text);
        let Some(run) = Run::start(&sized("search", size), size, &file.launch()) else {
            return;
        };
        let tmux = &run.tmux;
        tmux.wait_for("filter INPUT");
        tmux.keys(&["/"]);
        tmux.keys(&["-l", "needle"]);
        tmux.keys(&["Enter"]);
        tmux.wait_for("No rule matches the filter");
        tmux.keys(&["n"]);
        let hit = tmux.wait_for("nat PREROUTING (IPv4)");
        assert!(hit.contains("1 hit here"), "{hit}");
        // The whole line, in save form: the match is the comment.
        tmux.keys(&["S"]);
        tmux.wait_for("needle-in-nat");
        tmux.keys(&["q"]);
        assert_eq!(run.exit_status(), "0");
    }
}

#[test]
fn y_puts_the_rule_save_line_on_the_clipboard_with_osc52() {
    for size in SIZES {
        let rules = [long_rule(), "-i lo -j ACCEPT".to_string()];
        let file = File::new(&sized("yank", size), &filter_with(&rules));
        let Some(run) = Run::start(&sized("yank", size), size, &file.launch()) else {
            return;
        };
        let tmux = &run.tmux;
        tmux.cmd(&["set-option", "-g", "set-clipboard", "on"]);
        tmux.wait_for("filter INPUT");
        tmux.keys(&["y"]);
        wait_buffer(tmux, &format!("-A INPUT {}", long_rule()));
        tmux.wait_for("copied: -A INPUT");
        tmux.keys(&["j", "y"]);
        wait_buffer(tmux, "-A INPUT -i lo -j ACCEPT");
        tmux.keys(&["q"]);
        assert_eq!(run.exit_status(), "0");
    }
}

#[test]
fn the_mouse_selects_rows_and_tabs_and_the_wheel_scrolls() {
    for size in SIZES {
        let rules: Vec<String> = (1..=60)
            .map(|i| {
                format!(
                    "-p tcp -m tcp --dport {} -m comment --comment \"rule-{i:02}\" -j ACCEPT",
                    1000 + i
                )
            })
            .collect();
        let file = File::new(&sized("mouse", size), &filter_with(&rules));
        let Some(run) = Run::start(&sized("mouse", size), size, &file.launch()) else {
            return;
        };
        let tmux = &run.tmux;
        tmux.cmd(&["set-option", "-g", "set-clipboard", "on"]);
        let screen = tmux.wait_for("filter INPUT");
        // The row of rule 3 (screen rows are 1-based for the terminal).
        let row = screen
            .lines()
            .position(|l| l.contains("dpt:1003"))
            .expect("rule 3 on screen") as u16
            + 1;
        click(tmux, size.0 - 10, row);
        tmux.keys(&["y"]);
        wait_buffer(
            tmux,
            "-A INPUT -p tcp -m tcp --dport 1003 -m comment --comment \"rule-03\" -j ACCEPT",
        );
        // The wheel moves the selection down three rules a notch, and the list follows.
        for _ in 0..20 {
            mouse(tmux, 65, size.0 - 10, row, true);
        }
        let scrolled = tmux.wait_gone("dpt:1001 ");
        assert!(scrolled.contains("dpt:1060"), "{scrolled}");
        // A click on the fifth tab opens the Changes screen.
        let tabs = scrolled.lines().nth(1).expect("tabs");
        let col = tabs.find(" 5 ").expect("tab 5") as u16 + 2;
        click(tmux, col, 2);
        tmux.wait_for("Nothing is staged");
        tmux.keys(&["q"]);
        assert_eq!(run.exit_status(), "0");
    }
}

#[test]
fn q_on_entering_the_trace_screen_quits() {
    for size in SIZES {
        let Some(run) = Run::start(&sized("traceq", size), size, "{bin} --demo") else {
            return;
        };
        let tmux = &run.tmux;
        tmux.wait_for("filter INPUT");
        tmux.keys(&["3"]);
        tmux.wait_for("e edit");
        tmux.keys(&["q"]);
        assert_eq!(run.exit_status(), "0", "{}", tmux.screen());
        run.assert_terminal_restored();
    }
}

#[test]
fn z_zeroes_a_chain_at_once_without_a_countdown() {
    if !have_tools(Backend::Nft) {
        return;
    }
    for size in SIZES {
        let Some(ns) = NetNs::for_test(&sized("zero", size)) else {
            return;
        };
        ns.restore(
            Family::V4,
            Backend::Nft,
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n",
        );
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1"]);
        let count = || -> u64 {
            let out = ns.iptables(Family::V4, Backend::Nft, &["-L", "INPUT", "-v", "-x", "-n"]);
            out.lines()
                .find(|l| l.contains("ACCEPT") && l.contains(" lo "))
                .and_then(|l| l.split_whitespace().next()?.parse().ok())
                .expect("the lo rule's packets")
        };
        assert!(count() >= 3, "traffic counted before");
        let launch = format!(
            "env NFSCOPE_NO_SYSLOG=1 NFSCOPE_STATE_DIR={{dir}}/state ip netns exec {} {{bin}} --backend nft",
            ns.name()
        );
        let Some(run) = Run::start(&sized("zero", size), size, &launch) else {
            return;
        };
        let tmux = &run.tmux;
        tmux.wait_for("filter INPUT");
        // The chain (the tree has the focus), not one rule.
        tmux.keys(&["h", "Z"]);
        let asked = tmux.wait_for("Zero the counters?");
        assert!(asked.contains("IPv4 filter/INPUT now?"), "{asked}");
        tmux.keys(&["y"]);
        let said = tmux.wait_for("zeroed the counters");
        assert!(
            !said.contains("Confirm") && !said.contains("roll back"),
            "{said}"
        );
        assert_eq!(count(), 0, "the kernel's counters are zero");
        let audit = std::fs::read_to_string(run.dir.join("state/audit.log")).expect("audit log");
        assert!(
            audit.contains("\"action\":\"zero\"") && audit.contains("-t filter -Z INPUT"),
            "{audit}"
        );
        tmux.keys(&["q"]);
        assert_eq!(run.exit_status(), "0");
    }
}
