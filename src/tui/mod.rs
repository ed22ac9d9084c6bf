//! The terminal face: the loop that owns the App and the terminal. Producers (input, the rule-set
//! source, the conntrack feed, signals) send messages down one channel; each turn drains them,
//! updates the App, carries out the effects it asked for, and draws only if something visible
//! changed.

pub mod app;
pub mod conntrack;
pub mod event;
pub mod flow;
pub mod keymap;
pub mod theme;
pub mod trace;
pub mod view;

use crate::source::ctfeed::{self, CtHandle, CtOrigin, CtRequest};
use crate::source::{self, SourceConfig};
use app::App;
use color_eyre::eyre::WrapErr;
use event::{Cmd, Msg};
use ratatui::crossterm::event::{self as ct, Event};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Restores the terminal when dropped, whatever way the loop is left.
struct RestoreGuard;

impl Drop for RestoreGuard {
    fn drop(&mut self) {
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

/// Carry out what `update` asked for (quitting is the loop's own business).
fn run_cmds(cmds: &[Cmd], ct: &CtHandle) {
    for c in cmds {
        match c {
            Cmd::Quit => {}
            Cmd::CtDelete(e) => ct.request(CtRequest::Delete(e.clone())),
            Cmd::CtDeleteMatching(f) => ct.request(CtRequest::DeleteMatching(f.clone())),
        }
    }
}

/// Run the interactive UI until the user quits.
pub fn run(cfg: SourceConfig) -> color_eyre::Result<()> {
    let (tx, rx) = mpsc::channel::<Msg>();

    let origin = ct_origin(&cfg);
    // The Trace screen's inputs from this process's world, read here so that update stays pure.
    let kernel_locals = match cfg {
        SourceConfig::Kernel { .. } => Some(source::local_addrs::read().unwrap_or_default()),
        _ => None,
    };
    let interval = cfg.interval();
    let stx = tx.clone();
    source::spawn(
        cfg,
        Box::new(move |snap| stx.send(Msg::Snapshot(Box::new(snap))).is_ok()),
    )
    .wrap_err("cannot start the rule-set source thread")?;

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
    let _guard = RestoreGuard;

    let itx = tx;
    std::thread::Builder::new()
        .name("nfscope-input".into())
        .spawn(move || {
            loop {
                let msg = match ct::read() {
                    Ok(Event::Key(k)) => Msg::Key(k),
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
    let mut stdout = std::io::stdout();
    loop {
        if app.dirty {
            let _ = execute!(stdout, BeginSynchronizedUpdate);
            terminal.draw(|f| view::draw(f, &app))?;
            let _ = execute!(stdout, EndSynchronizedUpdate);
            app.dirty = false;
        }
        let first = match rx.recv_timeout(wait_time(&app, SystemTime::now())) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => Msg::Tick(SystemTime::now()),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut cmds = app.update(first);
        // Drain what else is queued so a burst costs one frame.
        while let Ok(m) = rx.try_recv() {
            cmds.extend(app.update(m));
        }
        // A busy feed may never let the wait time out: let the clock move all the same.
        cmds.extend(app.update(Msg::Tick(SystemTime::now())));
        if cmds.contains(&Cmd::Quit) || app.quit {
            break;
        }
        run_cmds(&cmds, &ct);
    }
    Ok(())
}
