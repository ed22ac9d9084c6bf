//! Screen tests' world: the App fed with the demo rule set at a fixed clock, rendered to
//! ratatui's TestBackend.

use nfscope::source::demo::DemoWorld;
use nfscope::tui::app::App;
use nfscope::tui::event::Msg;
use nfscope::tui::theme::Theme;
use nfscope::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::{Duration, SystemTime};

pub fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

/// An app that has seen two demo snapshots one second apart, so rates and hits exist.
pub fn demo_app(w: u16, h: u16) -> App {
    // Snapshots show times in UTC, wherever they run.
    nfscope::time::use_utc();
    let mut world = DemoWorld::new().with_clock(t0());
    let mut app = App::new("gw01".into(), Theme { color: false }, (w, h), t0());
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    world.advance(Duration::from_secs(1));
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    app
}

pub fn render(app: &App) -> String {
    let (w, h) = app.size;
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    term.draw(|f| view::draw(f, app)).expect("draw");
    term.backend().to_string()
}

/// A key press (no modifiers), and what `update` asked for.
pub fn key(
    app: &mut App,
    code: ratatui::crossterm::event::KeyCode,
) -> Vec<nfscope::tui::event::Cmd> {
    use ratatui::crossterm::event::{KeyEvent, KeyModifiers};
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

/// A character key.
pub fn ch(app: &mut App, c: char) -> Vec<nfscope::tui::event::Cmd> {
    key(app, ratatui::crossterm::event::KeyCode::Char(c))
}

/// Characters typed one by one.
pub fn typed(app: &mut App, s: &str) {
    for c in s.chars() {
        ch(app, c);
    }
}

/// The demo world in colour, two snapshots in (rates and hit rows exist).
pub fn colour_app(w: u16, h: u16) -> App {
    let mut world = DemoWorld::new().with_clock(t0());
    let mut app = App::new("gw01".into(), Theme { color: true }, (w, h), t0());
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    world.advance(Duration::from_secs(1));
    app.update(Msg::Snapshot(Box::new(world.snapshot())));
    app
}

/// Run the commits `cmds` asks for against the demo world, feeding the App each report (the
/// countdown 30 s from the App's clock); the target, for the countdown's actions.
pub fn run_demo_commit(
    app: &mut App,
    world: &nfscope::source::demo::SharedDemo,
    cmds: Vec<nfscope::tui::event::Cmd>,
) -> nfscope::edit::commit::Target {
    use nfscope::edit::commit::{self, Progress, Target};
    let target = Target::Demo {
        world: world.clone(),
        before: std::sync::Arc::default(),
        timeout: Duration::from_secs(30),
    };
    for c in cmds {
        if let nfscope::tui::event::Cmd::Commit(req) = c {
            let mut reports = Vec::new();
            commit::run(&target, &req, &mut |p| reports.push(p));
            for p in reports {
                let p = match p {
                    Progress::Armed { .. } => Progress::Armed {
                        deadline_ms: nfscope::tui::edit::unix_ms(app.now) + 30_000,
                    },
                    p => p,
                };
                app.update(Msg::Commit(p));
            }
        }
    }
    target
}
