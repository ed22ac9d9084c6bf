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
