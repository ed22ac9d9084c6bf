//! One Conntrack screen frame at a busy gateway's scale: a table of 250,000 synthetic entries
//! (`conntrack::synth`), then, each round, a sort by another column plus the filter
//! `proto=tcp state=ESTABLISHED` and one frame drawn at 200x50 into ratatui's TestBackend
//! through the real view code. That is what a keypress that changes the sort or the filter
//! costs; the budget is 50 ms. Also timed: a frame alone (the view cached, as on a timeout
//! tick), the per-state and per-protocol counts (at most once a second), and a batch of
//! 10,000 update events applied with the view recomputed (an event storm, at most every
//! 300 ms). Prints the minimum and the median of each.
//!
//! `cargo bench --bench ct_frame [-- ENTRIES [ROUNDS]]`; without `--bench` only a small
//! smoke run.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::conntrack::decode::CpuStats;
use nfscope::conntrack::filter::Filter;
use nfscope::conntrack::table::SortKey;
use nfscope::conntrack::{CtEvent, synth};
use nfscope::source::ctfeed::{CtFeed, CtFigures, CtVia};
use nfscope::tui::app::{App, Screen};
use nfscope::tui::event::Msg;
use nfscope::tui::theme::Theme;
use nfscope::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

/// The binary's allocator (src/main.rs), so the figures are the binary's.
mod support;

use support::stats;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const W: u16 = 200;
const H: u16 = 50;

fn main() {
    let (full, n, rounds) = support::scale("ct_frame", (250_000, 10), (10_000, 2));

    let now = SystemTime::UNIX_EPOCH + Duration::from_nanos(synth::NOW_NS);
    let entries = synth::entries(n);
    let mut app = App::new("gw01".into(), Theme { color: true }, (W, H), now);
    app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('2'),
        KeyModifiers::NONE,
    )));
    assert_eq!(app.screen, Screen::Conntrack);
    let dump = Box::new(CtFeed::Table {
        entries: entries.clone(),
        via: CtVia::Netlink,
        resync: false,
    });
    let t = Instant::now();
    app.update(Msg::Conntrack(dump, now));
    println!(
        "the first dump of {n} entries in, the view sorted and counted: {:.1} ms (memory touched for the first time)",
        t.elapsed().as_secs_f64() * 1e3
    );
    app.update(Msg::Conntrack(
        Box::new(CtFeed::Figures(CtFigures {
            count: n as u32,
            max: Some(262_144),
            cpu: Some(CpuStats::default()),
            acct: Some(true),
            timestamps: Some(true),
        })),
        now,
    ));
    let mut term = Terminal::new(TestBackend::new(W, H)).expect("test backend");
    let expr = "proto=tcp state=ESTABLISHED";
    let filter = Filter::parse(expr).expect("the bench filter parses");
    let keys = [
        SortKey::Bytes,
        SortKey::Src,
        SortKey::Timeout,
        SortKey::State,
        SortKey::Dport,
    ];

    // Sort + filter + one frame: a keypress that changes the view.
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let key = keys[round % keys.len()];
        let t = Instant::now();
        app.ct
            .set_view(key, round % 2 == 0, Some(filter.clone()), now);
        term.draw(|f| view::draw(f, black_box(&app))).expect("draw");
        times.push(t.elapsed());
    }
    let shown = app.ct.shown();
    let (min, med) = stats(times);
    println!(
        "sort + filter {expr:?} + draw one {W}x{H} frame, {n} entries ({shown} shown): min {min:.1} ms, median {med:.1} ms"
    );
    if full {
        println!(
            "target: under 50 ms: {}",
            if med <= 50.0 { "met" } else { "MISSED" }
        );
    }

    // The same without a filter: all of them sorted.
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let key = keys[round % keys.len()];
        let t = Instant::now();
        app.ct.set_view(key, round % 2 == 0, None, now);
        term.draw(|f| view::draw(f, black_box(&app))).expect("draw");
        times.push(t.elapsed());
    }
    let (min, med) = stats(times);
    println!("sort all {n} (no filter) + draw one frame: min {min:.1} ms, median {med:.1} ms");
    app.ct
        .set_view(SortKey::Bytes, true, Some(filter.clone()), now);

    // A frame alone, the view cached (the once-a-second countdown redraw).
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        term.draw(|f| view::draw(f, black_box(&app))).expect("draw");
        times.push(t.elapsed());
    }
    let (min, med) = stats(times);
    println!("draw one frame from the cached view: min {min:.2} ms, median {med:.2} ms");

    // The summary strip's counts.
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(app.ct.table.summary());
        times.push(t.elapsed());
    }
    let (min, med) = stats(times);
    println!("count per state and protocol: min {min:.1} ms, median {med:.1} ms");

    // A resync (after lost events, or each /proc poll): the whole table again.
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds.min(5) {
        let dump = Box::new(CtFeed::Table {
            entries: entries.clone(),
            via: CtVia::Netlink,
            resync: true,
        });
        let at = now + Duration::from_millis(100 * round as u64);
        let t = Instant::now();
        app.update(Msg::Conntrack(dump, at));
        times.push(t.elapsed());
    }
    let (min, med) = stats(times);
    println!(
        "a resync: {n} entries replace the table, the view sorted, filtered and counted: min {min:.1} ms, median {med:.1} ms"
    );

    // An event storm's batch: 10,000 updates applied, the view sorted and filtered again.
    let batch = 10_000.min(n);
    let mut times = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let events: Vec<CtEvent> = entries
            .iter()
            .skip(round * 7)
            .step_by((n / batch).max(1))
            .take(batch)
            .map(|e| {
                let mut e = e.clone();
                e.timeout = e.timeout.wrapping_add(1 + round as u32);
                CtEvent::update(e)
            })
            .collect();
        // Each batch comes more than a flush interval after the last, so it applies at once.
        let at = now + Duration::from_secs(2 * (round as u64 + 1));
        let t = Instant::now();
        app.update(Msg::Conntrack(Box::new(CtFeed::Events(events)), at));
        times.push(t.elapsed());
    }
    let (min, med) = stats(times);
    println!(
        "apply a batch of {batch} update events, sort and filter again (and count, once a second): min {min:.1} ms, median {med:.1} ms"
    );
}
