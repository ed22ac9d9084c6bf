//! The conventions around the command line: the config file (`--config`, `nfscope config`),
//! key overrides, `--no-mouse`, shell completions and the man page (docs/cli.md). The real
//! binary; the UI's parts in tmux. No root needed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::Run;
use common::tmux::Run as TmuxRun;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_nfscope");

/// nfscope with a config home of its own (so the machine's file is never read), no terminal.
fn nfscope(xdg: &Path, args: &[&str]) -> Run {
    Command::new(BIN)
        .args(args)
        .env("XDG_CONFIG_HOME", xdg)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run nfscope")
        .into()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `nfscope config`'s output without its comments, as a TOML table.
fn settings(out: &str) -> toml::Table {
    toml::from_str(out).unwrap_or_else(|e| panic!("not TOML ({e}):\n{out}"))
}

#[test]
fn the_printed_default_reads_back_as_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let printed = nfscope(dir.path(), &["config", "--print-default"]);
    assert_eq!(printed.code, 0, "{printed:?}");
    // Every setting is there, with a comment line above it.
    let lines: Vec<&str> = printed.stdout.lines().collect();
    for key in [
        "interval",
        "theme",
        "mouse",
        "write_dir",
        "confirm_timeout",
        "ifaces",
    ] {
        let i = lines
            .iter()
            .position(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in\n{}", printed.stdout));
        assert!(lines[i - 1].starts_with("# "), "{key} has no comment");
    }
    assert!(printed.stdout.contains("\n[keys]\n"));
    assert!(printed.stdout.contains("# quit = [\"q\", \"ctrl-c\"]"));

    // No file: the defaults. The printed file: the same values.
    let defaults = nfscope(dir.path(), &["config"]);
    assert_eq!(defaults.code, 0, "{defaults:?}");
    assert!(defaults.stdout.contains("not there: the defaults"));
    let file = write(dir.path(), "default.toml", &printed.stdout);
    let read = nfscope(dir.path(), &["config", "--config", file.to_str().unwrap()]);
    assert_eq!(read.code, 0, "{read:?}");
    assert!(read.stdout.contains("# the config file"), "{}", read.stdout);
    assert_eq!(settings(&read.stdout), settings(&defaults.stdout));
    assert_eq!(settings(&printed.stdout), settings(&defaults.stdout));
}

#[test]
fn the_path_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = nfscope(dir.path(), &["config", "--path"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        dir.path().join("nfscope/config.toml").display().to_string()
    );
    let out = nfscope(dir.path(), &["--config", "/etc/x.toml", "config", "--path"]);
    assert_eq!(out.stdout.trim(), "/etc/x.toml");
}

#[test]
fn the_command_line_wins_over_the_file_which_wins_over_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("nfscope")).unwrap();
    write(
        dir.path(),
        "nfscope/config.toml",
        "interval = 2.5\nmouse = false\ntheme = \"mono\"\nconfirm_timeout = 90\nifaces = [\"lan0=10.0.0.0/24\", \"wan0=!10.0.0.0/24\"]\n[keys]\njump_chain = [\":\", \"f2\"]\n",
    );
    let out = nfscope(dir.path(), &["config"]);
    assert_eq!(out.code, 0, "{out:?}");
    let s = settings(&out.stdout);
    assert_eq!(s["interval"].as_float(), Some(2.5));
    assert_eq!(s["mouse"].as_bool(), Some(false));
    assert_eq!(s["theme"].as_str(), Some("mono"));
    assert_eq!(s["confirm_timeout"].as_integer(), Some(90));
    let ifaces: Vec<&str> = s["ifaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(ifaces, ["lan0=10.0.0.0/24", "wan0=!10.0.0.0/24"]);
    assert_eq!(
        s["keys"]["jump_chain"].as_array().unwrap().len(),
        2,
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("interval = 2.5  # the config file"));

    let out = nfscope(
        dir.path(),
        &["--interval", "4", "--confirm-timeout", "10", "config"],
    );
    let s = settings(&out.stdout);
    assert_eq!(s["interval"].as_float(), Some(4.0));
    assert_eq!(s["confirm_timeout"].as_integer(), Some(10));
    assert!(out.stdout.contains("interval = 4.0  # the command line"));
    // A flag after the subcommand counts the same.
    let out = nfscope(dir.path(), &["config", "--interval", "0.5"]);
    assert_eq!(settings(&out.stdout)["interval"].as_float(), Some(0.5));
}

/// Refused before anything starts: status 2, a sentence naming the file and its line.
fn refused(dir: &Path, text: &str, words: &[&str]) {
    let file = write(dir, "bad.toml", text);
    for args in [
        vec!["--demo", "--config", file.to_str().unwrap()],
        vec!["config", "--config", file.to_str().unwrap()],
    ] {
        let out = nfscope(dir, &args);
        assert_eq!(out.code, 2, "{text:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("nfscope: the config file {}", file.display())),
            "{out:?}"
        );
        assert_eq!(out.stderr.lines().count(), 1, "one sentence: {out:?}");
        for w in words {
            assert!(out.stderr.contains(w), "{w:?} missing: {out:?}");
        }
    }
}

#[test]
fn a_bad_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    refused(
        d,
        "mouse = true\n\ninterval = \"fast\"\n",
        &["line 3", "expected f64"],
    );
    refused(
        d,
        "# a comment\ninterval = 0.01\n",
        &["line 2", "between 0.1 and 3600"],
    );
    refused(d, "mouse = [true\n", &["line 1"]);
    refused(
        d,
        "theme = \"dark\"\n",
        &["line 1", "auto", "color", "mono"],
    );
    // An unknown setting, an unknown action, a bad key, a key bound twice.
    refused(
        d,
        "mouse = true\nmice = false\n",
        &["line 2", "unknown field `mice`"],
    );
    refused(
        d,
        "[keys]\n\njump = [\"J\"]\n",
        &["line 3", "no action \"jump\"", "jump_chain"],
    );
    refused(
        d,
        "[keys]\nhelp = [\"?\", \"hyper-h\"]\n",
        &["line 2", "\"hyper-h\" is not a key"],
    );
    refused(
        d,
        "[keys]\nup = [\"up\", \"j\"]\n",
        &["line 2", "j would be bound to both up and down"],
    );
    refused(
        d,
        "[keys]\nquit = [\"x\"]\n",
        &["line 2", "quit", "exact_numbers", "Rules screen"],
    );
    refused(d, "[keys]\nhelp = [\"ctrl-c\"]\n", &["always quits"]);
    refused(
        d,
        "mouse = true\nifaces = [\"lan0=10.0.0.0/24\",\n  \"wan0\"]\n",
        &["line 3", "ifaces", "NAME=CIDR"],
    );
}

#[test]
fn a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    // The default one is fine and silent; one named with --config is an error.
    let out = nfscope(dir.path(), &["config"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    let out = nfscope(dir.path(), &["--demo", "--config", "/nonexistent/c.toml"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("the config file /nonexistent/c.toml given with --config does not exist"),
        "{out:?}"
    );
    // Without a terminal, a good file gets as far as the terminal check.
    let out = nfscope(dir.path(), &["--demo"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("needs a terminal"), "{out:?}");
}

#[test]
fn completions_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = nfscope(dir.path(), &["completions", shell]);
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        for sub in [
            "rules",
            "conntrack",
            "trace",
            "apply",
            "config",
            "completions",
        ] {
            assert!(out.stdout.contains(sub), "{shell} lacks {sub}");
        }
        assert!(out.stdout.contains("no-mouse"), "{shell} lacks --no-mouse");
        // The subcommands that are not for people are not offered.
        assert!(!out.stdout.contains("nft-dump"), "{shell} offers nft-dump");
    }
    let out = nfscope(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn the_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = nfscope(dir.path(), &["man"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with(".TH nfscope 1"),
        "{}",
        &out.stdout[..200]
    );
    for w in [
        ".SH NAME",
        ".SH SYNOPSIS",
        "\\-\\-config",
        "\\-\\-no\\-mouse",
        "conntrack",
    ] {
        assert!(out.stdout.contains(w), "the man page lacks {w:?}");
    }
}

/// The UI in tmux with `config` as its config file (`env` before the command).
fn ui(tag: &str, env: &str, config: &str, flags: &str) -> Option<(TmuxRun, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "config.toml", config);
    let launch = format!(
        "{env} XDG_CONFIG_HOME={} {{bin}} --demo --config {} {flags}",
        dir.path().display(),
        file.display()
    );
    let run = TmuxRun::start(tag, (100, 30), &launch)?;
    run.tmux.wait_for("filter INPUT (IPv4)");
    Some((run, dir))
}

fn mouse_on(run: &TmuxRun) -> bool {
    run.tmux
        .cmd(&["display", "-p", "-t", "t", "#{mouse_any_flag}"])
        .trim()
        == "1"
}

fn coloured(run: &TmuxRun) -> bool {
    run.tmux
        .cmd(&["capture-pane", "-e", "-p", "-t", "t"])
        .contains("\u{1b}[38;5;")
}

#[test]
fn a_key_override_takes_effect() {
    // And theme = "color" wins over NO_COLOR, and the mouse is on by default.
    let config = "theme = \"color\"\n[keys]\nquit = [\"x\"]\nexact_numbers = [\"#\"]\n";
    let Some((run, _dir)) = ui("keys", "NO_COLOR=1", config, "") else {
        return;
    };
    let tmux = &run.tmux;
    assert!(coloured(&run), "theme = \"color\" shows colours");
    assert!(mouse_on(&run), "the mouse is on by default");
    tmux.keys(&["?"]);
    let help = tmux.wait_for("this help");
    let quit = help
        .lines()
        .find(|l| l.contains(" quit ") || l.trim_end_matches('│').trim_end().ends_with(" quit"))
        .unwrap_or_else(|| panic!("no quit in the help:\n{help}"));
    assert!(
        quit.contains("│  x  "),
        "the help shows x for quit: {quit:?}"
    );
    tmux.keys(&["Escape"]);
    tmux.wait_gone("this help");
    // q is no longer quit: the screen stays. x quits.
    tmux.keys(&["q"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!run.dir.join("done").exists(), "q still quit");
    tmux.keys(&["x"]);
    assert_eq!(run.exit_status(), "0", "x quits");
    run.assert_terminal_restored();
}

#[test]
fn no_mouse_starts_fine() {
    let Some((run, _dir)) = ui("nomouse", "", "", "--no-mouse") else {
        return;
    };
    assert!(
        !mouse_on(&run),
        "--no-mouse leaves the mouse to the terminal"
    );
    run.tmux.keys(&["q"]);
    assert_eq!(run.exit_status(), "0");
    run.assert_terminal_restored();
}

#[test]
fn mouse_off_and_mono_from_the_file() {
    let Some((run, _dir)) = ui("mono", "", "mouse = false\ntheme = \"mono\"\n", "") else {
        return;
    };
    assert!(!mouse_on(&run), "mouse = false");
    assert!(!coloured(&run), "theme = \"mono\" shows no colour");
    run.tmux.keys(&["q"]);
    assert_eq!(run.exit_status(), "0");
}
