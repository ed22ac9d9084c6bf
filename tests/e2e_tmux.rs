//! End to end, as a person would: the real binary in tmux (its own server socket, a fixed size),
//! keys sent with send-keys, the screen read with capture-pane until the expected text appears
//! (no fixed sleeps), and the terminal checked after quitting.

use std::path::{Path, PathBuf};
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

/// nfscope started in a tmux pane by a shell that, once nfscope exits, records its exit status
/// and the terminal's modes, then keeps the pane open so the screen can still be read.
struct Run {
    tmux: Tmux,
    dir: PathBuf,
}

impl Run {
    /// `launch` is the shell command that runs nfscope; `{bin}` stands for the binary.
    fn start(tag: &str, size: (u16, u16), launch: &str) -> Option<Run> {
        let tmux = Tmux::new(tag)?;
        let dir = std::env::temp_dir().join(format!("nfscope-e2e-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let launch = launch
            .replace("{bin}", env!("CARGO_BIN_EXE_nfscope"))
            .replace("{dir}", &dir.display().to_string());
        let script = format!(
            "{launch}; echo $? > {d}/code; stty -a > {d}/stty; touch {d}/done; sleep 30",
            d = dir.display()
        );
        let (w, h) = (size.0.to_string(), size.1.to_string());
        tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &w,
            "-y",
            &h,
            "sh",
            "-c",
            &script,
        ]);
        Some(Run { tmux, dir })
    }

    /// Wait for nfscope to exit and return its status.
    fn exit_status(&self) -> String {
        self.tmux.wait_file(&self.dir.join("done"));
        std::fs::read_to_string(self.dir.join("code"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The terminal is back: main screen, cursor shown, cooked mode with echo and signals.
    fn assert_terminal_restored(&self) {
        assert_eq!(
            self.tmux
                .cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
                .trim(),
            "0"
        );
        assert_eq!(
            self.tmux
                .cmd(&["display", "-p", "-t", "t", "#{cursor_flag}"])
                .trim(),
            "1"
        );
        let modes = std::fs::read_to_string(self.dir.join("stty")).expect("stty output");
        let words: Vec<&str> = modes.split_whitespace().collect();
        for m in ["icanon", "echo", "isig"] {
            assert!(
                words.contains(&m),
                "terminal mode {m:?} not restored: {modes}"
            );
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn demo_navigate_help_quit_and_terminal_restored() {
    let Some(run) = Run::start("nav", (100, 30), "{bin} --demo") else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("filter INPUT (IPv4)");
    // Walk down to the first rule that jumps to a user chain (marked with ›) and open it.
    // The rules pane is the last box on each line; its first word is the rule number.
    let num: usize = tmux
        .screen()
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
    assert_eq!(run.exit_status(), "0", "nfscope exits 0 on q");
    run.assert_terminal_restored();
}

#[test]
fn sigterm_and_too_small_terminal() {
    // The inner shell execs nfscope, so its pid is nfscope's.
    let launch = "sh -c 'echo $$ > {dir}/pid; exec {bin} --demo'";
    let Some(run) = Run::start("small", (50, 12), launch) else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("terminal too small");
    tmux.cmd(&["resize-window", "-t", "t", "-x", "90", "-y", "26"]);
    tmux.wait_for("filter INPUT (IPv4)");
    let pid = std::fs::read_to_string(run.dir.join("pid")).expect("pid");
    Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .expect("kill");
    assert_eq!(run.exit_status(), "0", "SIGTERM is a clean quit");
    run.assert_terminal_restored();
}
