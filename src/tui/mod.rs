//! The terminal face: the loop that owns the App and the terminal. Producers (input, the rule-set
//! source, the conntrack feed, signals) send messages down one channel; each turn drains them,
//! updates the App, carries out the effects it asked for, and draws only if something visible
//! changed.

pub mod app;
pub mod clipboard;
pub mod conntrack;
pub mod edit;
pub mod editor;
pub mod event;
pub mod flow;
pub mod jump;
pub mod keymap;
pub mod reach;
pub mod scroll;
pub mod theme;
pub mod trace;
pub mod view;

use crate::edit::commit::{self, Target};
use crate::edit::tools::Tools;
use crate::edit::{backup, state};
use crate::source::ctfeed::{self, CtHandle, CtOrigin, CtRequest};
use crate::source::{self, SourceConfig};
use app::App;
use color_eyre::eyre::WrapErr;
use event::Saved;
use event::{Cmd, Msg};
use ratatui::crossterm::event::{self as ct, Event};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Restores the terminal when dropped, whatever way the loop is left (mouse reporting off
/// first, when it was turned on).
struct RestoreGuard {
    mouse: bool,
}

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        if self.mouse {
            let _ = execute!(std::io::stdout(), ct::DisableMouseCapture);
        }
        ratatui::restore();
    }
}

/// This machine's name, for the header.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Time until the next whole second, when the age shown in the header may change.
fn until_next_second(now: SystemTime) -> Duration {
    let sub = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_nanos(1_000_000_000 - u64::from(sub)).max(Duration::from_millis(5))
}

/// Where the conntrack table comes from, given where the rule sets do: files have none.
fn ct_origin(cfg: &SourceConfig) -> CtOrigin {
    match cfg {
        SourceConfig::Kernel { .. } => CtOrigin::Auto,
        SourceConfig::File { .. } => CtOrigin::Off,
        SourceConfig::Demo { .. } => CtOrigin::Demo,
    }
}

/// How long to wait for the next message: until the next whole second (ages and countdowns),
/// or sooner when the App has something due.
fn wait_time(app: &App, now: SystemTime) -> Duration {
    let second = until_next_second(now);
    match app.next_deadline() {
        Some(d) => d
            .duration_since(now)
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(5))
            .min(second),
        None => second,
    }
}

/// What the UI needs beyond the source: where edit mode keeps its state, and how long a commit
/// waits for its confirmation.
#[derive(Debug, Clone)]
pub struct Options {
    pub state_dir: Option<PathBuf>,
    pub confirm_timeout: Duration,
    /// Clicks and the wheel (`--no-mouse`, or `mouse = false` in the config file, turn it off).
    pub mouse: bool,
    /// Where `W` writes the view (the current directory unless the config file says).
    pub write_dir: Option<PathBuf>,
    /// Which sources arrive on each interface, for the Reach popup (the config's `ifaces`).
    pub ifaces: Vec<crate::trace::reach::IfaceMap>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            state_dir: None,
            confirm_timeout: Duration::from_secs(30),
            mouse: true,
            write_dir: None,
            ifaces: Vec::new(),
        }
    }
}

/// The workers of edit mode: validation and commits each on a thread of their own (one at a
/// time is all the UI asks for), and one thread that writes the state file, latest first.
struct Workers {
    tx: mpsc::Sender<Msg>,
    target: Target,
    saver: Option<mpsc::Sender<Option<Saved>>>,
}

impl Workers {
    fn spawn(&self, name: &str, job: impl FnOnce(&Target) -> Msg + Send + 'static) {
        let tx = self.tx.clone();
        let target = self.target.clone();
        let _ = std::thread::Builder::new()
            .name(format!("nfscope-{name}"))
            .spawn(move || {
                let _ = tx.send(job(&target));
            });
    }
}

/// The state file's writer: saves arrive on every change; only the latest of a burst is written.
fn spawn_saver(path: PathBuf, tx: mpsc::Sender<Msg>) -> Option<mpsc::Sender<Option<Saved>>> {
    let (stx, srx) = mpsc::channel::<Option<Saved>>();
    std::thread::Builder::new()
        .name("nfscope-state".into())
        .spawn(move || {
            while let Ok(mut next) = srx.recv() {
                while let Ok(later) = srx.try_recv() {
                    next = later;
                }
                let result = match &next {
                    Some(s) => {
                        let saved = state::SavedStaging::from_staging(&s.staging, &s.origin);
                        // Not written into a directory that is not sound (the check's sentence).
                        path.parent()
                            .map_or(Ok(()), backup::ensure_dir)
                            .and_then(|()| state::save(&path, &saved))
                    }
                    None => state::clear(&path),
                };
                if let Err(e) = result {
                    let msg = format!("cannot save the staged changes to {}: {e}", path.display());
                    if tx.send(Msg::StateError(msg)).is_err() {
                        return;
                    }
                }
            }
        })
        .ok()?;
    Some(stx)
}

/// How many of the audit log's records the messages popup shows.
const AUDIT_SHOWN: usize = 20;

/// nfscope's audit log read back for the messages popup (`!`), so that `update` stays pure:
/// read at the start, then again whenever the file changed (every commit, apply, confirm and
/// rollback, this process's or another's, the watchdog's too), which a look at its size and
/// time every two seconds tells.
fn spawn_audit_reader(dir: PathBuf, tx: mpsc::Sender<Msg>) {
    let _ = std::thread::Builder::new()
        .name("nfscope-audit".into())
        .spawn(move || {
            let mut seen = None;
            loop {
                let now = crate::edit::audit::stamp(&dir);
                if seen != Some(now) {
                    let tail = crate::edit::audit::tail(&dir, AUDIT_SHOWN);
                    if tx.send(Msg::Audit(tail)).is_err() {
                        return;
                    }
                    seen = Some(now);
                }
                std::thread::sleep(Duration::from_secs(2));
            }
        });
}

/// Carry out what `update` asked for (quitting is the loop's own business).
fn run_cmds(cmds: Vec<Cmd>, ct: &CtHandle, w: &Workers) {
    for c in cmds {
        match c {
            Cmd::Quit => {}
            Cmd::Zero(req) => w.spawn("zero", move |t| match crate::edit::zero::zero(t, &req) {
                Ok(said) => Msg::Said(said, false),
                Err(e) => Msg::Said(format!("not zeroed: {e}"), true),
            }),
            Cmd::Clipboard(text) => {
                use std::io::Write;
                let mut out = std::io::stdout();
                let _ = out.write_all(clipboard::osc52(&text).as_bytes());
                let _ = out.flush();
            }
            Cmd::WriteFile { path, text, what } => {
                let said = match write_new(&path, &text) {
                    Ok(()) => (format!("wrote {what} to {}", path.display()), false),
                    Err(e) => (
                        format!("cannot write {what} to {}: {e}", path.display()),
                        true,
                    ),
                };
                let _ = w.tx.send(Msg::Said(said.0, said.1));
            }
            Cmd::CtDelete(e) => ct.request(CtRequest::Delete(e)),
            Cmd::CtDeleteMatching(f) => ct.request(CtRequest::DeleteMatching(f)),
            Cmd::CtDeleteKeys(keys) => ct.request(CtRequest::DeleteKeys(keys)),
            Cmd::StaleScan {
                entries,
                snap,
                after_commit,
            } => w.spawn("stale", move |_| Msg::Stale {
                found: Box::new(crate::source::stale::scan(&snap, &entries)),
                after_commit,
            }),
            Cmd::Validate { id, staged } => w.spawn("validate", move |t| Msg::Validated {
                id,
                result: commit::validate(t, &staged),
            }),
            Cmd::SaveState(s) => {
                if let Some(saver) = &w.saver {
                    let _ = saver.send(s);
                }
            }
            Cmd::Commit(req) => {
                let tx = w.tx.clone();
                let target = w.target.clone();
                let _ = std::thread::Builder::new()
                    .name("nfscope-commit".into())
                    .spawn(move || {
                        commit::run(&target, &req, &mut |p| {
                            let _ = tx.send(Msg::Commit(p));
                        });
                    });
            }
            Cmd::KeepChange => w.spawn("confirm", |t| Msg::Commit(commit::confirm(t))),
            Cmd::Extend { deadline_ms } => w.spawn("extend", move |t| {
                Msg::Commit(commit::extend(t, edit::EXTEND_BY, deadline_ms))
            }),
            Cmd::RollBack => w.spawn("rollback", |t| Msg::Commit(commit::rollback(t))),
            Cmd::Expired => w.spawn("expired", |t| Msg::Commit(commit::expired(t))),
            Cmd::CheckPending { deadline_ms } => {
                let tx = w.tx.clone();
                let target = w.target.clone();
                let _ = std::thread::Builder::new()
                    .name("nfscope-pending".into())
                    .spawn(move || {
                        if let Some(p) = commit::check(&target, deadline_ms) {
                            let _ = tx.send(Msg::Commit(p));
                        }
                    });
            }
        }
    }
}

/// Write a new file (never over an existing one: `W` twice in a second gets a new name from
/// the App, and a file someone else put there is not ours to replace).
fn write_new(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The matches and targets this kernel knows, from /proc (both families merged).
fn kernel_known() -> editor::Known {
    let read = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter_map(|n| std::fs::read_to_string(format!("/proc/net/{n}")).ok())
            .collect()
    };
    let known = editor::Known::from_proc(
        &read(&["ip_tables_matches", "ip6_tables_matches"]),
        &read(&["ip_tables_targets", "ip6_tables_targets"]),
    );
    if known.matches.is_empty() && known.targets.is_empty() {
        editor::Known::fixed()
    } else {
        known
    }
}

/// Where staged work applies, as saved in the state file.
fn origin_label(cfg: &SourceConfig) -> String {
    match cfg {
        // Staged work belongs to the kernel of one network namespace.
        SourceConfig::Kernel { .. } => format!("kernel:{}", backup::netns_tag()),
        SourceConfig::File { v4, v6, .. } => {
            let p =
                |p: &Option<PathBuf>| p.as_ref().map_or("-".into(), |p| p.display().to_string());
            format!("file:{},{}", p(v4), p(v6))
        }
        SourceConfig::Demo { .. } => "demo".into(),
    }
}

/// Run the interactive UI until the user quits.
pub fn run(cfg: SourceConfig, opts: Options) -> color_eyre::Result<()> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let dir = backup::state_dir(opts.state_dir.as_deref());
    let edit_origin = origin_label(&cfg);
    let demo_world: source::demo::SharedDemo = Default::default();
    let target = match &cfg {
        SourceConfig::Kernel { backend, .. } => Target::Kernel {
            tools: Tools { backend: *backend },
            dir: dir.clone(),
            timeout: Some(opts.confirm_timeout),
            armed: Default::default(),
            committed: Default::default(),
        },
        SourceConfig::File { v4, v6, .. } => Target::File {
            v4: v4.clone(),
            v6: v6.clone(),
            dir: dir.clone(),
        },
        SourceConfig::Demo { .. } => Target::Demo {
            world: demo_world.clone(),
            before: Default::default(),
            timeout: opts.confirm_timeout,
        },
    };
    let demo = matches!(cfg, SourceConfig::Demo { .. });
    let known = match cfg {
        SourceConfig::Kernel { .. } => kernel_known(),
        _ => editor::Known::fixed(),
    };
    // The demo keeps nothing: a saved staging would greet every later demo with a question.
    let state_path = (!demo).then(|| dir.join("staging.json"));
    // Saved work in a directory that is not sound is neither offered nor trusted.
    let saved = state_path
        .as_deref()
        .map(|p| match backup::check_dir(&dir) {
            Ok(()) => state::take_saved(p, &edit_origin),
            Err(e) => state::Resume::Say(
                format!("staged work is neither saved nor resumed: {e}"),
                true,
            ),
        });

    let origin = ct_origin(&cfg);
    // The Trace screen's inputs from this process's world, read here so that update stays pure.
    let kernel_locals = match cfg {
        SourceConfig::Kernel { .. } => Some(source::local_addrs::read().unwrap_or_default()),
        _ => None,
    };
    let interval = cfg.interval();
    let stx = tx.clone();
    let sink: source::Sink = Box::new(move |snap| stx.send(Msg::Snapshot(Box::new(snap))).is_ok());
    if demo {
        source::spawn_demo(interval, demo_world, sink)
    } else {
        source::spawn(cfg, sink)
    }
    .wrap_err("cannot start the rule-set source thread")?;
    // The demo writes no audit log.
    if !demo {
        spawn_audit_reader(dir.clone(), tx.clone());
    }
    let workers = Workers {
        tx: tx.clone(),
        target,
        saver: state_path.clone().and_then(|p| spawn_saver(p, tx.clone())),
    };

    // The loop holds the feed's handle, not the App: screen tests need no thread.
    let ctx = tx.clone();
    let ct = ctfeed::spawn(
        origin,
        interval,
        Box::new(move |feed| {
            ctx.send(Msg::Conntrack(Box::new(feed), SystemTime::now()))
                .is_ok()
        }),
    )
    .wrap_err("cannot start the conntrack feed thread")?;

    let sig_tx = tx.clone();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .wrap_err("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("nfscope-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = sig_tx.send(Msg::Quit);
            }
        })?;

    let mut terminal =
        ratatui::try_init().wrap_err("cannot set up the terminal (is this a terminal?)")?;
    let _guard = RestoreGuard { mouse: opts.mouse };
    if opts.mouse {
        execute!(std::io::stdout(), ct::EnableMouseCapture)
            .wrap_err("cannot turn on mouse reporting (run with --no-mouse)")?;
    }

    let itx = tx;
    std::thread::Builder::new()
        .name("nfscope-input".into())
        .spawn(move || {
            loop {
                let msg = match ct::read() {
                    Ok(Event::Key(k)) => Msg::Key(k),
                    Ok(Event::Mouse(m)) => Msg::Mouse(m),
                    Ok(Event::Resize(w, h)) => Msg::Resize(w, h),
                    Ok(_) => continue,
                    Err(_) => Msg::Quit,
                };
                let quit = matches!(msg, Msg::Quit);
                if itx.send(msg).is_err() || quit {
                    return;
                }
            }
        })?;

    let size = terminal.size()?;
    let mut app = App::new(
        hostname(),
        theme::Theme::from_env(),
        (size.width, size.height),
        SystemTime::now(),
    );
    app.trace.locals = kernel_locals;
    app.trace.ssh = std::env::var("SSH_CONNECTION").ok();
    app.reach_ifaces = opts.ifaces.clone();
    app.write_dir = opts
        .write_dir
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    app.edit.known = known;
    app.edit.validate = !demo;
    app.edit.persist = !demo;
    app.edit.origin = edit_origin.clone();
    match saved {
        Some(state::Resume::Offer(st, saved_at)) => app.offer_resume(*st, saved_at),
        Some(state::Resume::Say(said, bad)) => app.edit.message = Some((said, bad)),
        Some(state::Resume::Nothing) | None => {}
    }
    // How the last commit ended, said once at the next start (unless a question is up).
    if let Target::Kernel { dir, .. } = &workers.target
        && app.edit.message.is_none()
        && let Some(o) = crate::edit::guard::untold_outcome(dir)
    {
        let bad = o.ended != crate::edit::guard::Ended::Confirmed;
        app.edit.message = Some((crate::format::capitalized(&o.sentence()), bad));
    }
    let mut stdout = std::io::stdout();
    // The first frame, then one whenever a message changed what is shown.
    let mut redraw = true;
    loop {
        if redraw {
            let _ = execute!(stdout, BeginSynchronizedUpdate);
            terminal.draw(|f| view::draw(f, &app))?;
            let _ = execute!(stdout, EndSynchronizedUpdate);
            redraw = false;
        }
        let first = match rx.recv_timeout(wait_time(&app, SystemTime::now())) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => Msg::Tick(SystemTime::now()),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut cmds = Vec::new();
        let mut feed = |m: Msg| {
            let u = app.step(m);
            redraw |= u.redraw;
            cmds.extend(u.cmds);
        };
        feed(first);
        // Drain what else is queued so a burst costs one frame.
        while let Ok(m) = rx.try_recv() {
            feed(m);
        }
        // A busy feed may never let the wait time out: let the clock move all the same.
        feed(Msg::Tick(SystemTime::now()));
        if cmds.contains(&Cmd::Quit) || app.quit {
            break;
        }
        run_cmds(cmds, &ct, &workers);
    }
    // Quit during a countdown: the terminal first, then what happens next and how to keep it.
    let mut note = match &workers.target {
        Target::Kernel { dir, .. } if app.edit.countdown.is_some() => {
            crate::edit::guard::status(dir).map(|p| quit_note(&p, opts.state_dir.as_deref()))
        }
        _ => None,
    };
    // Staged work: written now, not left to the saver thread, so that what the note says holds.
    if let (Some(path), Some(st), true) = (&state_path, app.edit.active(), app.edit.persist) {
        let saved = state::SavedStaging::from_staging(st, &app.edit.origin);
        let n = st.ops().len();
        let said = match path
            .parent()
            .map_or(Ok(()), backup::ensure_dir)
            .and_then(|()| state::save(path, &saved))
        {
            Ok(()) => kept_note(n, path),
            Err(e) => format!(
                "nfscope: your {n} staged change(s) could not be saved to {}: {e}",
                path.display()
            ),
        };
        note = Some(note.map_or(said.clone(), |n| format!("{n}\n{said}")));
    }
    drop(terminal);
    drop(_guard);
    if let Some(note) = note {
        eprintln!("{note}");
    }
    Ok(())
}

/// What a user who quit with staged work must know: it is kept, and where.
fn kept_note(n: usize, path: &std::path::Path) -> String {
    let what = if n == 1 {
        "your staged change is".to_string()
    } else {
        format!("your {n} staged changes are")
    };
    format!(
        "nfscope: {what} kept (not committed) in {}; start nfscope again to resume or discard them.",
        path.display()
    )
}

/// What a user who quit during the countdown must know: the change stays only if confirmed.
fn quit_note(p: &crate::edit::guard::Pending, state_dir: Option<&std::path::Path>) -> String {
    let flag = state_dir.map_or_else(String::new, |d| format!(" --state-dir {}", d.display()));
    let sudo = if rustix::process::geteuid().is_root() {
        ""
    } else {
        "sudo "
    };
    let pid = p
        .watchdog_pid
        .map_or_else(String::new, |pid| format!(" (pid {pid})"));
    format!(
        "nfscope: your commit is not confirmed: the watchdog{pid} rolls it back at {}.\nTo keep it, run `{sudo}nfscope confirm{flag}` before then; `{sudo}nfscope rollback{flag}` undoes it now.",
        p.deadline_text()
    )
}
