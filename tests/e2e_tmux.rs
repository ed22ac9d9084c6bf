//! End to end, as a person would: the real binary in tmux (its own server socket, a fixed size),
//! keys sent with send-keys, the screen read with capture-pane until the expected text appears
//! (no fixed sleeps), and the terminal checked after quitting.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of our own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(tag: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tmux is missing on CI: .ci/run must install it"
            );
            eprintln!("skipped: tmux is not installed");
            return None;
        }
        Some(Tmux {
            socket: format!("nfscope-e2e-{tag}-{}", std::process::id()),
        })
    }

    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    /// Wait until the screen shows `text`; panics with the screen after 15 s.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if s.contains(text) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {text:?}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_file(&self, path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "nfscope did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn demo_navigate_help_quit_and_terminal_restored() {
    let Some(tmux) = Tmux::new("nav") else { return };
    let dir = std::env::temp_dir().join(format!("nfscope-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let done = dir.join("done");
    let stty = dir.join("stty");
    let bin = env!("CARGO_BIN_EXE_nfscope");
    // After nfscope exits, record the terminal modes, then leave the pane open for inspection.
    let script = format!(
        "{bin} --demo; echo $? > {d}.code; stty -a > {s}; touch {d}; sleep 30",
        d = done.display(),
        s = stty.display()
    );
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "100",
        "-y",
        "30",
        "sh",
        "-c",
        &script,
    ]);

    tmux.wait_for("filter INPUT (IPv4)");
    // Walk down to the first rule that jumps to a user chain (marked with ›) and open it.
    let screen = tmux.screen();
    // The rules pane is the last box on each line; its first word is the rule number.
    let num: usize = screen
        .lines()
        .filter(|l| l.contains(" › "))
        .find_map(|l| {
            let pane = l.rsplit("││").next()?.trim_start_matches('│');
            pane.split_whitespace().next()?.parse().ok()
        })
        .expect("the demo INPUT chain shows a jump");
    for _ in 1..num {
        tmux.keys(&["Down"]);
    }
    tmux.keys(&["Enter"]);
    let opened = tmux.wait_for("INPUT › filter ");
    assert!(
        !opened.contains("Rule "),
        "Enter on a jump opens the chain, not the details"
    );

    tmux.keys(&["BSpace"]);
    tmux.wait_for("┌ filter INPUT (IPv4)");

    tmux.keys(&["?"]);
    tmux.wait_for("Help");
    tmux.wait_for("this help");
    tmux.keys(&["Escape"]);

    tmux.keys(&["q"]);
    tmux.wait_file(&done);

    let code = std::fs::read_to_string(dir.join("done.code")).unwrap_or_default();
    assert_eq!(code.trim(), "0", "nfscope exits 0 on q");
    // The terminal is back: main screen, cursor shown, cooked mode with echo.
    assert_eq!(
        tmux.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim(),
        "0"
    );
    assert_eq!(
        tmux.cmd(&["display", "-p", "-t", "t", "#{cursor_flag}"])
            .trim(),
        "1"
    );
    let modes = std::fs::read_to_string(&stty).expect("stty output");
    let words: Vec<&str> = modes.split_whitespace().collect();
    for m in ["icanon", "echo", "isig"] {
        assert!(
            words.contains(&m),
            "terminal mode {m:?} not restored: {modes}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_and_too_small_terminal() {
    let Some(tmux) = Tmux::new("small") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("nfscope-e2e-small-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let done = dir.join("done");
    let stty = dir.join("stty");
    let bin = env!("CARGO_BIN_EXE_nfscope");
    let script = format!(
        "sh -c 'echo $$ > {d}.pid; exec {bin} --demo'; stty -a > {s}; touch {d}; sleep 30",
        d = done.display(),
        s = stty.display()
    );
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "50",
        "-y",
        "12",
        "sh",
        "-c",
        &script,
    ]);
    tmux.wait_for("terminal too small");
    tmux.cmd(&["resize-window", "-t", "t", "-x", "90", "-y", "26"]);
    tmux.wait_for("filter INPUT (IPv4)");
    let pid = std::fs::read_to_string(dir.join("done.pid")).expect("pid");
    Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .expect("kill");
    tmux.wait_file(&done);
    assert_eq!(
        tmux.cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
            .trim(),
        "0"
    );
    let modes = std::fs::read_to_string(&stty).expect("stty output");
    let words: Vec<&str> = modes.split_whitespace().collect();
    assert!(
        words.contains(&"icanon") && words.contains(&"echo"),
        "{modes}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
