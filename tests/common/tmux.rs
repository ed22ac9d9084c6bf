//! The real binary in tmux, for the end-to-end tests: a tmux server of its own (its own
//! socket, a fixed size), keys sent with send-keys, the screen read with capture-pane until the
//! expected text appears (no fixed sleeps), and the terminal checked after nfscope exits.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of our own, killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn new(tag: &str) -> Option<Tmux> {
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

    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    /// Wait until the screen shows `text`; panics with the screen after 15 s.
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?}"), |s| s.contains(text))
    }

    /// Wait until the screen no longer shows `text`.
    pub fn wait_gone(&self, text: &str) -> String {
        self.wait_until(&format!("{text:?} to go"), |s| !s.contains(text))
    }

    /// Wait until the screen passes `ok` (`what` names it in the failure); panics with the
    /// screen after 15 s. The screen returned is a settled one: a capture can land in the middle
    /// of a frame being written (the header new, the footer old), so once `ok` holds, captures
    /// 30 ms apart are taken until two agree (a few at most; the demo's counters move).
    pub fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if ok(&s) {
                let mut last = s;
                for _ in 0..10 {
                    std::thread::sleep(Duration::from_millis(30));
                    let next = self.screen();
                    if next == last {
                        break;
                    }
                    if !ok(&next) {
                        break;
                    }
                    last = next;
                }
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
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
pub struct Run {
    pub tmux: Tmux,
    pub dir: PathBuf,
}

impl Run {
    /// `launch` is the shell command that runs nfscope; `{bin}` stands for the binary.
    pub fn start(tag: &str, size: (u16, u16), launch: &str) -> Option<Run> {
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
    pub fn exit_status(&self) -> String {
        self.tmux.wait_file(&self.dir.join("done"));
        std::fs::read_to_string(self.dir.join("code"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The terminal is back: main screen, cursor shown, cooked mode with echo and signals.
    pub fn assert_terminal_restored(&self) {
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
