//! The Conntrack screen, rendered: the App fed with conntrack feed messages (a deterministic
//! demo table, or hand-built entries with an IPv6 and a DNAT one), drawn to ratatui's
//! TestBackend with a fixed clock, and compared with insta snapshots. Plus the behaviour behind
//! them: sorting by every column, the cursor following its entry, filters, deletions.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use nfscope::conntrack::decode::CpuStats;
use nfscope::conntrack::filter::Filter;
use nfscope::conntrack::log::Seen;
use nfscope::conntrack::table::{SortKey, compare_sorted};
use nfscope::conntrack::{
    CtEvent, CtEventKind, Entry, EntryKey, Icmp, Proto, State, Status, TcpState, Tuple,
};
use nfscope::ruleset::Family;
use nfscope::source::ctdemo::CtDemo;
use nfscope::source::ctfeed::{CtFeed, CtFigures, CtVia};
use nfscope::tui::app::{App, InputMode, Popup, Screen};
use nfscope::tui::conntrack::{Confirm, SORT_ORDER};
use nfscope::tui::event::{Cmd, Msg};
use nfscope::tui::theme::Theme;
use nfscope::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Modifier;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

fn at(ms: u64) -> SystemTime {
    t0() + Duration::from_millis(ms)
}

fn ns(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn figures(count: u32, acct: bool) -> CtFigures {
    CtFigures {
        count,
        max: Some(4096),
        cpu: Some(CpuStats {
            insert_failed: 0,
            drop: 0,
            early_drop: 2,
            error: 0,
            search_restart: 17,
            clash_resolve: 1,
            ..CpuStats::default()
        }),
        acct: Some(acct),
        timestamps: Some(true),
    }
}

fn feed(app: &mut App, f: CtFeed, when: SystemTime) {
    app.update(Msg::Conntrack(Box::new(f), when));
}

/// An app on the Conntrack screen holding `entries`, read at t0.
fn ct_app(w: u16, h: u16, entries: Vec<Entry>, figs: CtFigures) -> App {
    // Snapshots show times in UTC, wherever they run.
    nfscope::time::use_utc();
    let mut app = App::new("gw01".into(), Theme { color: false }, (w, h), t0());
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(app.screen, Screen::Conntrack);
    feed(
        &mut app,
        CtFeed::Table {
            entries,
            via: CtVia::Netlink,
            resync: false,
        },
        t0(),
    );
    feed(&mut app, CtFeed::Figures(figs), t0());
    app
}

fn demo_entries() -> Vec<Entry> {
    CtDemo::new().with_clock(t0()).entries()
}

fn demo_app(w: u16, h: u16) -> App {
    let es = demo_entries();
    let n = es.len() as u32;
    ct_app(w, h, es, figures(n, true))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

fn tuple(src: &str, sport: u16, dst: &str, dport: u16) -> Tuple {
    Tuple {
        src: ip(src),
        dst: ip(dst),
        sport: Some(sport),
        dport: Some(dport),
        icmp: None,
    }
}

fn tcp(orig: Tuple, reply: Tuple, state: TcpState, id: u32) -> Entry {
    let family = if orig.src.is_ipv6() {
        Family::V6
    } else {
        Family::V4
    };
    let mut e = Entry::new(family, Proto::TCP, orig, reply);
    e.state = Some(State::Tcp(state));
    e.status = Status(Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED);
    e.timeout = 431_990;
    e.id = id;
    e.use_count = Some(1);
    counted(&mut e, [1200, 96_000, 2400, 3_400_000], 754);
    e
}

/// Packets and bytes (original, then reply) and a start `ago` seconds before t0.
fn counted(e: &mut Entry, [op, ob, rp, rb]: [u64; 4], ago: u64) {
    e.orig_packets = Some(op);
    e.orig_bytes = Some(ob);
    e.reply_packets = Some(rp);
    e.reply_bytes = Some(rb);
    e.start_ns = Some(ns(t0()) - ago * 1_000_000_000);
}

/// A small table with one of each kind: masqueraded, port-forwarded (DNAT), IPv6, unreplied
/// UDP, ICMP, a zone and a mark, a helper with labels.
fn hand() -> Vec<Entry> {
    let mut v = Vec::new();
    let mut masq = tcp(
        tuple("10.0.0.5", 40000, "93.184.216.34", 443),
        tuple("93.184.216.34", 443, "203.0.113.2", 61000),
        TcpState::Established,
        101,
    );
    masq.status.0 |= Status::SRC_NAT;
    v.push(masq);
    let mut dnat = tcp(
        tuple("198.51.100.7", 52000, "203.0.113.2", 2222),
        tuple("10.0.0.10", 22, "198.51.100.7", 52000),
        TcpState::Established,
        102,
    );
    dnat.status.0 |= Status::DST_NAT;
    dnat.mark = 0x10;
    v.push(dnat);
    let mut v6 = tcp(
        tuple("2001:db8:0:10::105", 51000, "2606:4700:4700::1111", 443),
        tuple("2606:4700:4700::1111", 443, "2001:db8:0:10::105", 51000),
        TcpState::TimeWait,
        103,
    );
    v6.timeout = 87;
    v.push(v6);
    let mut dns = Entry::new(
        Family::V4,
        Proto::UDP,
        tuple("10.0.0.7", 53000, "10.0.0.1", 53),
        tuple("10.0.0.1", 53, "10.0.0.7", 53000),
    );
    dns.status = Status(Status::CONFIRMED);
    dns.timeout = 29;
    dns.id = 104;
    counted(&mut dns, [1, 72, 0, 0], 1);
    v.push(dns);
    let icmp = |kind: u8, src: &str, dst: &str| Tuple {
        src: ip(src),
        dst: ip(dst),
        sport: None,
        dport: None,
        icmp: Some(Icmp {
            kind,
            code: 0,
            id: 7,
        }),
    };
    let mut ping = Entry::new(
        Family::V4,
        Proto::ICMP,
        icmp(8, "10.0.0.8", "1.1.1.1"),
        icmp(0, "1.1.1.1", "203.0.113.2"),
    );
    ping.status = Status(Status::CONFIRMED | Status::SEEN_REPLY | Status::SRC_NAT);
    ping.timeout = 25;
    ping.id = 105;
    counted(&mut ping, [5, 420, 5, 420], 5);
    v.push(ping);
    let mut syn = tcp(
        tuple("10.0.0.9", 41000, "192.0.2.1", 25),
        tuple("192.0.2.1", 25, "10.0.0.9", 41000),
        TcpState::SynSent,
        106,
    );
    syn.status = Status(Status::CONFIRMED);
    syn.timeout = 118;
    syn.zone = 3;
    syn.reply_packets = Some(0);
    syn.reply_bytes = Some(0);
    v.push(syn);
    let mut ftp = tcp(
        tuple("10.0.0.11", 42000, "192.0.2.21", 21),
        tuple("192.0.2.21", 21, "10.0.0.11", 42000),
        TcpState::Established,
        107,
    );
    ftp.with_extra(|x| {
        x.helper = Some("ftp".into());
        x.labels = Some(vec![0b0000_0101]);
        x.secctx = Some("system_u:object_r:unlabeled_t:s0".into());
    });
    v.push(ftp);
    v
}

fn render(app: &App) -> String {
    let (w, h) = app.size;
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    term.draw(|f| view::draw(f, app)).expect("draw");
    term.backend().to_string()
}

fn buffer(app: &App) -> ratatui::buffer::Buffer {
    let (w, h) = app.size;
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    term.draw(|f| view::draw(f, app)).expect("draw");
    term.backend().buffer().clone()
}

fn key(app: &mut App, code: KeyCode) -> Vec<Cmd> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn chars(app: &mut App, s: &str) {
    for c in s.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn select(app: &mut App, k: &EntryKey) {
    key(app, KeyCode::Home);
    let i = app
        .ct
        .keys()
        .iter()
        .position(|x| x == k)
        .expect("the entry is listed");
    for _ in 0..i {
        key(app, KeyCode::Down);
    }
    assert_eq!(app.ct.selected_key(), Some(*k));
}

/// The style of the first cell of `needle` on screen.
fn style_at(app: &App, needle: &str) -> ratatui::style::Style {
    style_in_row(app, needle, needle)
}

/// The style of the first cell of `cell` on the line holding `row`.
fn style_in_row(app: &App, row: &str, cell: &str) -> ratatui::style::Style {
    let screen = render(app);
    let (y, l) = screen
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(row))
        .expect("on screen");
    // Lines are quoted: the first character is the quote.
    let x = l[..l.find(cell).expect("x")].chars().count() - 1;
    buffer(app)[(x as u16, y as u16)].style()
}

/// The screen's line holding `needle`.
fn line_with<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(needle))
}

#[test]
fn list_120x40() {
    let app = demo_app(120, 40);
    let screen = render(&app);
    assert!(screen.contains("2 Conntrack"));
    assert!(screen.contains("newest first"));
    assert!(screen.contains("SNAT"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn list_80x24() {
    let app = demo_app(80, 24);
    let screen = render(&app);
    for l in screen.lines() {
        assert_eq!(l.chars().count(), 82, "every line fits: {l}");
    }
    insta::assert_snapshot!(screen);
}

#[test]
fn hand_built_list_with_ipv6_and_dnat_at_both_sizes() {
    for (w, h) in [(120, 40), (80, 24)] {
        let app = ct_app(w, h, hand(), figures(7, true));
        let screen = render(&app);
        let dnat = line_with(&screen, "203.0.113.2:2222").expect("the DNAT entry");
        assert!(dnat.contains("DNAT 10."), "{dnat}");
        assert!(
            screen.contains(":105]:51000"),
            "the host end of the IPv6 address: {screen}"
        );
        insta::assert_snapshot!(format!("hand_{w}x{h}"), screen);
    }
}

#[test]
fn group_by_view_and_enter_filters_to_a_group() {
    let mut app = demo_app(120, 40);
    key(&mut app, KeyCode::Char('v'));
    let screen = render(&app);
    assert!(screen.contains("by state"), "{screen}");
    insta::assert_snapshot!(screen);
    let counts: Vec<usize> = app.ct.groups.iter().map(|g| g.count).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "top groups first");
    // No entry is selected in a group view: d says so instead of asking.
    key(&mut app, KeyCode::Char('d'));
    assert_eq!(app.popup, None);
    assert!(render(&app).contains("this is a group view"));
    // protocol, then source address: the top talker.
    key(&mut app, KeyCode::Char('v'));
    key(&mut app, KeyCode::Char('v'));
    let top = app.ct.groups[0].clone();
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.ct.group, None, "back to the list");
    let f = app.ct.filter.as_ref().expect("a filter");
    assert_eq!(f.source(), format!("src={}", top.label));
    assert_eq!(app.ct.shown(), top.count);
    // Destination ports, within that filter: both terms stay.
    for _ in 0..4 {
        key(&mut app, KeyCode::Char('v'));
    }
    let port = app.ct.groups[0].clone();
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.ct.shown(), port.count);
    assert!(
        app.ct
            .filter
            .as_ref()
            .is_some_and(|f| f.source().starts_with("src=") && f.source().contains("dport=")),
    );
}

#[test]
fn detail_popup() {
    let mut app = ct_app(120, 40, hand(), figures(7, true));
    select(&mut app, &hand()[1].key());
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.popup, Some(Popup::CtDetail));
    let screen = render(&app);
    for want in [
        "DNAT: sent to 203.0.113.2:2222, answered by 10.0.0.10:22",
        "SEEN_REPLY ASSURED CONFIRMED DST_NAT",
        "0x10 (16)",
        "2026-09-21",
        "ipv4     2 tcp",
    ] {
        assert!(screen.contains(want), "{want:?} missing:\n{screen}");
    }
    insta::assert_snapshot!(screen);
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, None);
    // The helper, labels and security context of another entry.
    select(&mut app, &hand()[6].key());
    key(&mut app, KeyCode::Char('i'));
    let screen = render(&app);
    assert!(
        screen.contains("ftp") && screen.contains("bits 0 2"),
        "{screen}"
    );
    assert!(screen.contains("system_u:object_r:unlabeled_t:s0"));
}

#[test]
fn the_detail_stays_on_its_entry_when_it_is_destroyed() {
    let mut app = ct_app(120, 40, hand(), figures(7, true));
    let dnat = hand()[1].clone();
    select(&mut app, &dnat.key());
    key(&mut app, KeyCode::Enter);
    feed(
        &mut app,
        CtFeed::Events(vec![CtEvent::destroy(dnat)]),
        at(1000),
    );
    app.update(Msg::Tick(at(4000)));
    let screen = render(&app);
    assert!(screen.contains("This entry was destroyed"), "{screen}");
    assert!(screen.contains("198.51.100.7:52000"));
}

#[test]
fn filter_error_underlines_and_keeps_the_filter_before() {
    let mut app = demo_app(120, 40);
    key(&mut app, KeyCode::Char('/'));
    chars(&mut app, "proto=udp");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, InputMode::Normal);
    let udp = app.ct.shown();
    assert!(udp > 0 && udp < app.ct.table.len());
    key(&mut app, KeyCode::Char('/'));
    assert_eq!(app.ct.input, "proto=udp", "the filter comes back to edit");
    chars(&mut app, " stat=NEW");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, InputMode::Filter, "a bad filter is not taken");
    assert_eq!(
        app.ct.filter.as_ref().map(|f| f.source().to_string()),
        Some("proto=udp".to_string())
    );
    assert_eq!(app.ct.shown(), udp);
    let screen = render(&app);
    let caret = line_with(&screen, "^^^^").expect("the bad part is underlined");
    let input = line_with(&screen, "filter: proto=udp stat=NEW").expect("the input");
    assert_eq!(
        caret.find('^').map(|i| caret[..i].chars().count()),
        input.find("stat").map(|i| input[..i].chars().count()),
        "the carets sit under the bad part"
    );
    assert!(caret.contains("did you mean \"state\""));
    insta::assert_snapshot!(screen);
    // Esc clears, everything shows again.
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.mode, InputMode::Normal);
    assert!(app.ct.filter.is_none());
    assert_eq!(app.ct.shown(), app.ct.table.len());
}

#[test]
fn near_full_gauge_warns() {
    let es = demo_entries();
    let app = ct_app(120, 40, es, figures(3900, true));
    let screen = render(&app);
    assert!(screen.contains("3900/4096 95%"), "{screen}");
    assert!(screen.contains("drops new connections"));
    insta::assert_snapshot!(screen);
    let es = demo_entries();
    let app = ct_app(120, 40, es, figures(3280, true));
    let screen = render(&app);
    assert!(screen.contains("80% full: a full table drops new connections"));
    let es = demo_entries();
    let app = ct_app(120, 40, es, figures(1000, true));
    assert!(!render(&app).contains("drops new connections"));
}

#[test]
fn delete_asks_first_and_says_the_outcome() {
    let mut app = ct_app(120, 40, hand(), figures(7, true));
    let dnat = hand()[1].clone();
    select(&mut app, &dnat.key());
    assert!(key(&mut app, KeyCode::Char('d')).is_empty());
    assert!(matches!(app.popup, Some(Popup::Confirm(_))));
    let screen = render(&app);
    assert!(screen.contains("Delete this conntrack entry?"));
    assert!(
        screen.contains("tcp ESTABLISHED 198.51.100.7:52000 → 203.0.113.2:2222  DNAT 10.0.0.10:22")
    );
    insta::assert_snapshot!(screen);
    // Other keys do nothing while the question is open; n cancels.
    assert!(key(&mut app, KeyCode::Char('D')).is_empty());
    assert!(matches!(app.popup, Some(Popup::Confirm(_))));
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    assert_eq!(app.popup, None);
    // y sends the request; the feed's answer shows in the footer.
    key(&mut app, KeyCode::Char('d'));
    let cmds = key(&mut app, KeyCode::Char('y'));
    assert_eq!(cmds, vec![Cmd::CtDelete(Box::new(dnat.clone()))]);
    feed(
        &mut app,
        CtFeed::Events(vec![CtEvent::destroy(dnat)]),
        at(1000),
    );
    feed(&mut app, CtFeed::Deleted { count: 1 }, at(1000));
    assert!(render(&app).contains("deleted 1 entry"));
    // A refusal shows too.
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Char('d'));
    key(&mut app, KeyCode::Enter);
    feed(
        &mut app,
        CtFeed::Error("deleting needs CAP_NET_ADMIN".into()),
        at(2000),
    );
    assert!(render(&app).contains("not deleted: deleting needs CAP_NET_ADMIN"));
}

#[test]
fn delete_matching_says_how_many() {
    let mut app = demo_app(120, 40);
    let total = app.ct.table.len();
    key(&mut app, KeyCode::Char('D'));
    assert_eq!(
        app.popup,
        Some(Popup::Confirm(Box::new(Confirm::Matching {
            filter: None,
            count: total
        })))
    );
    assert!(render(&app).contains(&format!("Delete ALL {total} entries?")));
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('/'));
    chars(&mut app, "proto=tcp dport=22");
    key(&mut app, KeyCode::Enter);
    let n = app.ct.shown();
    assert!(n > 0);
    key(&mut app, KeyCode::Char('D'));
    let screen = render(&app);
    assert!(
        screen.contains(&format!(
            "Delete {n} entries matching 'proto=tcp dport=22'?"
        )),
        "{screen}"
    );
    let cmds = key(&mut app, KeyCode::Char('y'));
    assert_eq!(
        cmds,
        vec![Cmd::CtDeleteMatching(Some(
            Filter::parse("proto=tcp dport=22").expect("parses")
        ))]
    );
}

#[test]
fn destroyed_rows_fade_then_go() {
    let mut app = ct_app(120, 40, hand(), figures(7, true));
    let dns = hand()[3].clone();
    feed(
        &mut app,
        CtFeed::Events(vec![CtEvent::destroy(dns.clone())]),
        at(1000),
    );
    assert_eq!(app.ct.table.len(), 6);
    let screen = render(&app);
    let row = line_with(&screen, "10.0.0.7:53000").expect("still shown");
    assert!(row.contains("gone"), "{row}");
    // Struck out and dim.
    let style = style_at(&app, "10.0.0.7:53000");
    assert!(
        style.add_modifier.contains(Modifier::CROSSED_OUT),
        "{style:?}"
    );
    insta::assert_snapshot!(screen);
    assert!(app.next_deadline().is_some(), "the loop wakes to let it go");
    app.update(Msg::Tick(at(3100)));
    assert!(line_with(&render(&app), "10.0.0.7:53000").is_none());
    assert_eq!(app.ct.len(), 6);
}

#[test]
fn new_rows_stand_out_and_state_changes_flash() {
    let mut app = ct_app(120, 40, hand(), figures(7, true));
    let row_style = style_at;
    assert!(
        !row_style(&app, "10.0.0.5:40000")
            .add_modifier
            .contains(Modifier::BOLD),
        "the first read is not new"
    );
    let mut fresh = hand()[0].clone();
    fresh.id = 200;
    fresh.orig.sport = Some(40001);
    fresh.reply.dport = Some(61001);
    let mut closing = hand()[2].clone();
    closing.state = Some(State::Tcp(TcpState::Close));
    feed(
        &mut app,
        CtFeed::Events(vec![CtEvent::new(fresh), CtEvent::update(closing)]),
        at(1000),
    );
    assert!(
        row_style(&app, "10.0.0.5:40001")
            .add_modifier
            .contains(Modifier::BOLD)
    );
    let screen = render(&app);
    let l = line_with(&screen, "::105]:51000").expect("the v6 row");
    assert!(l.contains("CLOSE "), "{l}");
    let st = style_in_row(&app, "::105]:51000", "CLOSE");
    assert!(
        st.add_modifier.contains(Modifier::REVERSED),
        "{st:?} {screen}"
    );
    // Two seconds on, both are plain again.
    app.update(Msg::Tick(at(3500)));
    assert!(
        !row_style(&app, "10.0.0.5:40001")
            .add_modifier
            .contains(Modifier::BOLD)
    );
    assert!(
        !style_in_row(&app, "::105]:51000", "CLOSE")
            .add_modifier
            .contains(Modifier::REVERSED)
    );
}

#[test]
fn accounting_off_hint() {
    let mut es = hand();
    for e in &mut es {
        e.orig_packets = None;
        e.orig_bytes = None;
        e.reply_packets = None;
        e.reply_bytes = None;
    }
    let app = ct_app(120, 40, es, figures(7, false));
    let screen = render(&app);
    assert!(screen.contains("sysctl -w net.netfilter.nf_conntrack_acct=1"));
    assert!(!screen.contains("→bytes"));
    insta::assert_snapshot!(screen);
}

#[test]
fn timeouts_count_down_between_events() {
    let mut app = ct_app(120, 40, hand(), figures(7, true));
    let dns = |app: &App| {
        line_with(&render(app), "10.0.0.7:53000")
            .expect("row")
            .to_string()
    };
    assert!(dns(&app).contains(" 29s "), "{}", dns(&app));
    app.update(Msg::Tick(at(10_000)));
    assert!(dns(&app).contains(" 19s "), "{}", dns(&app));
    assert!(
        !app.step(Msg::Tick(at(10_400))).redraw,
        "no redraw within the same second"
    );
    assert!(
        app.step(Msg::Tick(at(11_000))).redraw,
        "the countdown moved"
    );
}

#[test]
fn sorting_by_each_column_and_reversing() {
    let mut app = ct_app(120, 40, demo_entries(), figures(420, true));
    let check = |app: &App| {
        let (key, rev) = (app.ct.sort, app.ct.reverse);
        let t = &app.ct.table;
        let rows: Vec<_> = app
            .ct
            .keys()
            .iter()
            .map(|k| t.get(t.position(k).expect("live")).expect("row").clone())
            .collect();
        assert_eq!(rows.len(), t.len());
        for w in rows.windows(2) {
            assert!(
                compare_sorted(&w[0], &w[1], key, rev).is_lt(),
                "{key:?} reverse={rev}"
            );
        }
        rows.first().map(|r| r.entry.key())
    };
    let mut seen = Vec::new();
    for _ in 0..SORT_ORDER.len() {
        key(&mut app, KeyCode::Char('s'));
        seen.push(app.ct.sort);
        let first = check(&app);
        key(&mut app, KeyCode::Char('r'));
        let first_rev = check(&app);
        if !matches!(app.ct.sort, SortKey::Zone | SortKey::Mark) {
            assert_ne!(
                first, first_rev,
                "{:?} reversed starts elsewhere",
                app.ct.sort
            );
        }
        key(&mut app, KeyCode::Char('r'));
        // The sorted column is marked in the header.
        let screen = render(&app);
        assert!(
            screen.contains('▲') || screen.contains('▼') || app.ct.sort == SortKey::Arrival,
            "{:?}",
            app.ct.sort
        );
    }
    let mut all = seen.clone();
    all.sort_by_key(|k| SORT_ORDER.iter().position(|o| o == k));
    all.dedup();
    assert_eq!(all.len(), SORT_ORDER.len(), "s visits every column");
    key(&mut app, KeyCode::Char('S'));
    assert_eq!(app.ct.sort, SORT_ORDER[SORT_ORDER.len() - 2]);
}

/// New connections (newest first: above the cursor) and the death of the entry just above it.
fn batch_above(app: &App) -> (Vec<CtEvent>, usize) {
    let mut world = CtDemo::new().with_clock(t0());
    let mut events: Vec<CtEvent> = world
        .step(Duration::from_secs(3))
        .into_iter()
        .filter(|e| e.kind == nfscope::conntrack::CtEventKind::New)
        .collect();
    let n_new = events.len();
    assert!(n_new >= 3, "{n_new}");
    let above = app.ct.keys()[app.ct.cursor - 1];
    let victim = app
        .ct
        .table
        .get(app.ct.table.position(&above).expect("live"))
        .expect("row")
        .entry
        .clone();
    events.push(CtEvent::destroy(victim));
    (events, n_new)
}

#[test]
fn the_cursor_follows_its_entry_across_an_event_batch() {
    let mut app = ct_app(120, 40, demo_entries(), figures(420, true));
    // Scrolled down the list: the entry keeps its line on the screen.
    key(&mut app, KeyCode::PageDown);
    key(&mut app, KeyCode::PageDown);
    assert!(app.ct.offset > 0);
    let chosen = app.ct.selected_key().expect("selected");
    let before = app.ct.cursor;
    let line = before - app.ct.offset;
    let (events, n_new) = batch_above(&app);
    feed(&mut app, CtFeed::Events(events), at(1000));
    assert_eq!(app.ct.selected_key(), Some(chosen), "the same entry");
    assert_eq!(app.ct.keys()[app.ct.cursor], chosen);
    assert_eq!(
        app.ct.cursor,
        before + n_new,
        "the destroyed one still fades above it"
    );
    assert_eq!(
        app.ct.cursor - app.ct.offset,
        line,
        "on the same line of the screen"
    );
    app.update(Msg::Tick(at(3500)));
    assert_eq!(app.ct.selected_key(), Some(chosen));
    assert_eq!(app.ct.cursor, before + n_new - 1);
    assert_eq!(app.ct.cursor - app.ct.offset, line);
    // Sorting again keeps it selected too.
    key(&mut app, KeyCode::Char('s'));
    assert_eq!(app.ct.selected_key(), Some(chosen));
}

#[test]
fn at_the_top_new_entries_show_and_the_cursor_still_follows() {
    let mut app = ct_app(120, 40, demo_entries(), figures(420, true));
    for _ in 0..5 {
        key(&mut app, KeyCode::Down);
    }
    let chosen = app.ct.selected_key().expect("selected");
    let before = app.ct.cursor;
    let (events, n_new) = batch_above(&app);
    feed(&mut app, CtFeed::Events(events), at(1000));
    assert_eq!(app.ct.selected_key(), Some(chosen));
    assert_eq!(app.ct.cursor, before + n_new);
    assert_eq!(app.ct.offset, 0, "the newest entries are in view");
}

#[test]
fn file_sources_say_there_is_no_conntrack() {
    let mut app = App::new("gw01".into(), Theme { color: false }, (100, 24), t0());
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Conntrack);
    feed(
        &mut app,
        CtFeed::Error(
            "no conntrack with --file: the table comes from the kernel (run without --file)".into(),
        ),
        t0(),
    );
    let screen = render(&app);
    assert!(screen.contains("no conntrack with --file"), "{screen}");
    key(&mut app, KeyCode::Char('d'));
    assert_eq!(app.popup, None);
    assert!(render(&app).contains("no conntrack table to delete from"));
    // The event log says the same, not that the table is being read.
    key(&mut app, KeyCode::Char('E'));
    let screen = render(&app);
    assert!(screen.contains("✗ no conntrack with --file"), "{screen}");
    assert!(!screen.contains("Reading the conntrack table"), "{screen}");
    key(&mut app, KeyCode::Char('E'));
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.screen, Screen::Trace);
}

#[test]
fn no_size_panics() {
    let mut app = demo_app(80, 24);
    for popup_key in [None, Some('i'), Some('d'), Some('v'), Some('/')] {
        if let Some(c) = popup_key {
            key(&mut app, KeyCode::Char(c));
        }
        if popup_key == Some('/') {
            chars(&mut app, "prot=x");
            key(&mut app, KeyCode::Enter);
        }
        for w in (0..=200).step_by(11) {
            for h in (0..=60).step_by(4) {
                app.update(Msg::Resize(w, h));
                let mut term = Terminal::new(TestBackend::new(w, h)).expect("backend");
                term.draw(|f| view::draw(f, &app)).expect("draw");
            }
        }
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Esc);
        app.update(Msg::Resize(80, 24));
    }
}

#[test]
fn the_rules_screen_is_untouched_by_the_feed() {
    let mut app = App::new("gw01".into(), Theme { color: false }, (100, 24), t0());
    let u = app.step(Msg::Conntrack(
        Box::new(CtFeed::Table {
            entries: demo_entries(),
            via: CtVia::Demo,
            resync: false,
        }),
        t0(),
    ));
    assert!(!u.redraw, "no redraw of the Rules screen for conntrack");
    key(&mut app, KeyCode::Char('2'));
    assert_eq!(
        app.ct.len(),
        app.ct.table.len(),
        "the view is built on arrival"
    );
}

/// Newest first with the cursor on the top row: the list follows new entries as `tail -f` does
/// (the cursor stays on the top row, on the newest); one row down, it keeps its entry.
#[test]
fn on_the_top_row_the_cursor_follows_the_newest_entry() {
    let mut app = ct_app(120, 40, demo_entries(), figures(420, true));
    assert!(app.ct.newest_first(), "the default order");
    key(&mut app, KeyCode::Home);
    assert_eq!(app.ct.cursor, 0);
    let events = new_entries();
    assert!(!events.is_empty());
    feed(&mut app, CtFeed::Events(events), at(1000));
    app.update(Msg::Tick(at(1400)));
    assert_eq!(app.ct.cursor, 0, "still on the top row");
    assert_eq!(
        app.ct.selected_key(),
        Some(app.ct.keys()[0]),
        "on the newest entry"
    );
    // In another order the cursor keeps its entry.
    let mut app = ct_app(120, 40, demo_entries(), figures(420, true));
    key(&mut app, KeyCode::Char('s'));
    assert!(!app.ct.newest_first());
    key(&mut app, KeyCode::Home);
    let chosen = app.ct.selected_key().expect("selected");
    feed(&mut app, CtFeed::Events(new_entries()), at(1000));
    app.update(Msg::Tick(at(1400)));
    assert_eq!(app.ct.selected_key(), Some(chosen));
}

/// A few new connections of the demo world.
fn new_entries() -> Vec<CtEvent> {
    CtDemo::new()
        .with_clock(t0())
        .step(Duration::from_secs(3))
        .into_iter()
        .filter(|e| e.kind == nfscope::conntrack::CtEventKind::New)
        .collect()
}

/// The accounting hint shows exactly while `nf_conntrack_acct` is off.
#[test]
fn the_accounting_hint_follows_the_sysctl() {
    let mut app = ct_app(120, 40, demo_entries(), figures(420, true));
    assert!(!render(&app).contains("nf_conntrack_acct=1"));
    feed(&mut app, CtFeed::Figures(figures(420, false)), at(1000));
    app.update(Msg::Tick(at(1400)));
    assert!(render(&app).contains("nf_conntrack_acct=1"));
    feed(&mut app, CtFeed::Figures(figures(420, true)), at(2000));
    app.update(Msg::Tick(at(2400)));
    assert!(!render(&app).contains("nf_conntrack_acct=1"));
}

/// The hand-built table, then what happened to it: a new connection, a state change and a
/// destroy announced by the kernel, then a re-read that finds one entry gone and one new
/// without an event (`~`). On the Conntrack screen, with the log open.
fn log_app(w: u16, h: u16) -> App {
    let mut app = ct_app(w, h, hand(), figures(7, true));
    let table = hand();
    let mut fresh = tcp(
        tuple(
            "2001:db8:0:10::7",
            52344,
            "2001:db8:85a3::8a2e:370:7334",
            443,
        ),
        tuple(
            "2001:db8:85a3::8a2e:370:7334",
            443,
            "2001:db8:0:10::7",
            52344,
        ),
        TcpState::SynSent,
        201,
    );
    fresh.status = Status(Status::CONFIRMED);
    let mut up = table[5].clone();
    up.state = Some(State::Tcp(TcpState::Established));
    up.status.0 |= Status::SEEN_REPLY;
    feed(
        &mut app,
        CtFeed::Events(vec![
            CtEvent::new(fresh.clone()),
            CtEvent::update(up.clone()),
        ]),
        at(1_250),
    );
    feed(
        &mut app,
        CtFeed::Events(vec![CtEvent::destroy(table[3].clone())]),
        at(2_480),
    );
    // The re-read: the ping is gone without a word, a new UDP flow came without one.
    let mut reread: Vec<Entry> = table
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(i, e)| if i == 5 { up.clone() } else { e.clone() })
        .collect();
    reread.push(fresh);
    let mut quiet = Entry::new(
        Family::V4,
        Proto::UDP,
        tuple("10.0.0.12", 40400, "192.0.2.53", 53),
        tuple("192.0.2.53", 53, "203.0.113.2", 40400),
    );
    quiet.status = Status(Status::CONFIRMED | Status::SEEN_REPLY | Status::SRC_NAT);
    quiet.timeout = 30;
    quiet.id = 301;
    reread.push(quiet);
    feed(
        &mut app,
        CtFeed::Table {
            entries: reread,
            via: CtVia::Netlink,
            resync: true,
        },
        at(5_007),
    );
    app.update(Msg::Tick(at(5_100)));
    key(&mut app, KeyCode::Char('E'));
    app
}

/// The screen's list rows (inside the box, below the column header).
fn list_rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .skip_while(|l| !l.contains("│time ") && !l.contains("│prot "))
        .skip(1)
        .take_while(|l| l.contains('│'))
        .map(|l| l.trim_matches('"').trim_matches('│').trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn event_log_at_both_sizes() {
    for (w, h) in [(80, 24), (120, 40)] {
        let app = log_app(w, h);
        assert!(app.ct.log.open);
        let screen = render(&app);
        for l in screen.lines() {
            assert_eq!(l.chars().count(), usize::from(w) + 2, "fits: {l}");
        }
        assert!(screen.contains("5 kept of at most 10000"), "{screen}");
        assert!(screen.contains("0 dropped from the front"), "{screen}");
        assert!(screen.contains("From the kernel's events (netlink)."));
        // Newest first: the re-read's findings, then the kernel's destroy, update and new.
        let rows = list_rows(&screen);
        let kinds: Vec<&str> = rows
            .iter()
            .map(|r| r.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["DESTROY~", "NEW~", "DESTROY", "UPDATE", "NEW"],
            "{screen}"
        );
        assert!(rows[0].starts_with("14:13:25.007 "), "{}", rows[0]);
        assert!(
            rows[4].contains(":7334]:443"),
            "the host end kept: {}",
            rows[4]
        );
        insta::assert_snapshot!(format!("event_log_{w}x{h}"), screen);
    }
}

#[test]
fn event_log_keys_filter_copy_write_and_back() {
    let mut app = log_app(120, 40);
    // Back to the table and in again; from another screen E opens it.
    key(&mut app, KeyCode::Esc);
    assert!(!app.ct.log.open);
    assert!(render(&app).contains("│prot "));
    key(&mut app, KeyCode::Char('E'));
    assert!(app.ct.log.open);
    key(&mut app, KeyCode::Char('E'));
    assert!(!app.ct.log.open);
    key(&mut app, KeyCode::Char('1'));
    assert_eq!(app.screen, Screen::Rules);
    key(&mut app, KeyCode::Char('E'));
    assert_eq!(app.screen, Screen::Conntrack);
    assert!(app.ct.log.open);

    // The cursor stays on its event as more come.
    key(&mut app, KeyCode::Char('j'));
    let chosen = app.ct.log.selected().unwrap().seq;
    feed(
        &mut app,
        CtFeed::Events(vec![CtEvent::destroy(hand()[6].clone())]),
        at(6_000),
    );
    assert_eq!(app.ct.log.selected().unwrap().seq, chosen);
    assert_eq!(app.ct.log.cursor, 2);
    key(&mut app, KeyCode::Char('g'));
    assert_eq!(app.ct.log.cursor, 0);

    // The table's keys say where they work.
    key(&mut app, KeyCode::Char('d'));
    assert!(render(&app).contains("that key acts on the table: E or Esc goes back to it"));

    // The same filter language, on the log alone.
    key(&mut app, KeyCode::Char('/'));
    assert_eq!(app.mode, InputMode::Filter);
    chars(&mut app, "proto=udp");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, InputMode::Normal);
    assert_eq!(app.ct.log.len(), 2);
    assert!(app.ct.filter.is_none(), "the table's filter is its own");
    let screen = render(&app);
    assert!(screen.contains("filter proto=udp (2 of 6)"), "{screen}");
    assert!(list_rows(&screen).iter().all(|r| r.contains(" udp ")));

    // y: the event's line, as conntrack -E tags it, with how it was learnt.
    let cmds = key(&mut app, KeyCode::Char('y'));
    let [Cmd::Clipboard(text)] = cmds.as_slice() else {
        panic!("{cmds:?}");
    };
    assert!(
        text.starts_with(
            "14:13:25.007 [NEW] udp      17 30 src=10.0.0.12 dst=192.0.2.53 sport=40400 dport=53"
        ),
        "{text}"
    );
    assert!(text.ends_with("(found by re-reading the table)"), "{text}");
    assert!(render(&app).contains("copied: 14:13:25.007 [NEW]"));

    // W: the filtered log as JSON lines, oldest first.
    let cmds = key(&mut app, KeyCode::Char('W'));
    let [Cmd::WriteFile { path, text, what }] = cmds.as_slice() else {
        panic!("{cmds:?}");
    };
    assert!(path.to_string_lossy().ends_with(".jsonl"), "{path:?}");
    assert!(
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("nfscope-conntrack-events-")
    );
    assert_eq!(
        what,
        "2 conntrack events matching 'proto=udp' as JSON lines"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["event"], "destroy");
    assert_eq!(lines[0]["seen"], "event");
    assert_eq!(lines[0]["time"], "2026-09-21T14:13:22.480Z");
    assert_eq!(lines[0]["entry"], serde_json::to_value(&hand()[3]).unwrap());
    assert_eq!(lines[1]["seen"], "reread");
    // What the loop answers shows in the footer.
    app.update(Msg::Said(
        format!("wrote {what} to {}", path.display()),
        false,
    ));
    assert!(render(&app).contains("wrote 2 conntrack events"));

    // Enter on an event opens its entry's details; a destroyed one says since when, and Esc
    // gives the log back.
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(app.ct.log.selected().unwrap().seen, Seen::Event);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.popup, Some(Popup::CtDetail));
    let screen = render(&app);
    assert!(screen.contains("This entry was destroyed"), "{screen}");
    assert!(screen.contains("10.0.0."), "{screen}");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.popup, None);
    assert!(app.ct.log.open);
    // A filter that passes nothing: nothing to open, said.
    key(&mut app, KeyCode::Char('/'));
    for _ in "proto=udp".chars() {
        key(&mut app, KeyCode::Backspace);
    }
    chars(&mut app, "proto=sctp");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.popup, None);
    let screen = render(&app);
    assert!(screen.contains("no event here to open"), "{screen}");
}

#[test]
fn the_event_log_is_bounded_and_says_what_it_dropped() {
    let mut app = ct_app(120, 40, demo_entries(), figures(351, true));
    let es = demo_entries();
    // A storm: 25,000 state changes.
    for batch in 0..25u64 {
        let events: Vec<CtEvent> = (0..1_000)
            .map(|i| {
                let mut e = es[i % es.len()].clone();
                e.timeout = (batch * 1000 + i as u64) as u32;
                CtEvent::update(e)
            })
            .collect();
        feed(&mut app, CtFeed::Events(events), at(1_000 + batch * 150));
    }
    let log = &app.ct.log.log;
    assert_eq!(log.len(), 10_000);
    assert_eq!(log.dropped(), 15_000);
    let bytes = log.heap_bytes();
    eprintln!("the event log holds {} events in {bytes} bytes", log.len());
    assert!(bytes < 3 << 20, "{bytes}");
    key(&mut app, KeyCode::Char('E'));
    let screen = render(&app);
    assert!(screen.contains("10000 kept of at most 10000"), "{screen}");
    assert!(screen.contains("15000 dropped from the front"), "{screen}");
    assert_eq!(list_rows(&screen).len(), app.ct.viewport);
}

#[test]
fn without_events_the_log_compares_reads_of_proc() {
    nfscope::time::use_utc();
    let mut app = App::new("gw01".into(), Theme { color: false }, (80, 24), t0());
    key(&mut app, KeyCode::Char('2'));
    let read = |entries: Vec<Entry>| CtFeed::Table {
        entries,
        via: CtVia::Proc,
        resync: false,
    };
    // /proc has no ids: entries are known by their tuples.
    let table: Vec<Entry> = hand()
        .into_iter()
        .map(|mut e| {
            e.id = 0;
            e
        })
        .collect();
    feed(&mut app, read(table.clone()), t0());
    assert!(
        app.ct.log.log.is_empty(),
        "the first read is where the log starts"
    );
    let mut next = table.clone();
    next.remove(3);
    next[4].state = Some(State::Tcp(TcpState::Established));
    next[4].status.0 |= Status::SEEN_REPLY;
    let mut fresh = table[0].clone();
    fresh.orig.sport = Some(40_001);
    next.push(fresh.clone());
    feed(&mut app, read(next.clone()), at(1_000));
    // The same read again says nothing new.
    feed(&mut app, read(next), at(2_000));
    let seen: Vec<(CtEventKind, Seen, EntryKey)> = app
        .ct
        .log
        .log
        .iter()
        .map(|l| (l.kind, l.seen, l.entry.key()))
        .collect();
    assert_eq!(
        seen,
        [
            (CtEventKind::Update, Seen::Reread, table[5].key()),
            (CtEventKind::New, Seen::Reread, fresh.key()),
            (CtEventKind::Destroy, Seen::Reread, table[3].key()),
        ]
    );
    key(&mut app, KeyCode::Char('E'));
    let screen = render(&app);
    assert!(
        screen.contains("/proc/net/nf_conntrack has no events: ~ marks the changes found by"),
        "{screen}"
    );
    assert!(screen.contains("UPDATE~"), "{screen}");
}

#[test]
fn copy_and_write_the_table() {
    let mut app = demo_app(120, 40);
    key(&mut app, KeyCode::Char('/'));
    chars(&mut app, "proto=udp");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('s'));
    let shown = app.ct.keys();
    assert!(shown.len() > 5);
    let entry = |app: &App, k: &EntryKey| {
        let p = app.ct.table.position(k).unwrap();
        app.ct.table.get(p).unwrap().entry.clone()
    };
    // y: the selected entry as conntrack -L prints it.
    let cmds = key(&mut app, KeyCode::Char('y'));
    let want = nfscope::conntrack::format::line(
        &entry(&app, &app.ct.selected_key().unwrap()),
        nfscope::conntrack::format::Layout::Plain,
    );
    assert_eq!(cmds, vec![Cmd::Clipboard(want.clone())]);
    assert!(want.starts_with("udp      17 "), "{want}");
    let screen = render(&app);
    let footer = screen.lines().last().unwrap();
    assert!(footer.contains("copied: udp      17"), "{footer}");
    // W: the entries shown, in the list's order, as `nfscope conntrack --format json` writes them.
    let cmds = key(&mut app, KeyCode::Char('W'));
    let [Cmd::WriteFile { path, text, what }] = cmds.as_slice() else {
        panic!("{cmds:?}");
    };
    assert!(
        path.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("nfscope-conntrack-2026")
    );
    assert_eq!(
        what,
        &format!(
            "{} conntrack entries matching 'proto=udp' as JSON lines",
            shown.len()
        )
    );
    let written: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expected: Vec<serde_json::Value> = shown
        .iter()
        .map(|k| serde_json::to_value(entry(&app, k)).unwrap())
        .collect();
    assert_eq!(written, expected);
    app.update(Msg::Said(
        format!("wrote {what} to {}", path.display()),
        false,
    ));
    let screen = render(&app);
    let footer = screen.lines().last().unwrap();
    assert!(
        footer.contains("wrote ") && footer.contains(".jsonl"),
        "{footer}"
    );
}

/// The list's columns (names and widths), and where its header row's titles start: the
/// left-aligned ones, up to the first that is right-aligned (the timeout), sort arrows aside.
fn columns(app: &App) -> (Vec<(&'static str, u16)>, Vec<usize>) {
    let screen = render(app);
    let header = screen
        .lines()
        .find(|l| l.contains("│prot"))
        .expect("the list's header");
    let chars: Vec<char> = header.chars().collect();
    let starts = (2..chars.len())
        .filter(|&i| chars[i] != ' ' && (chars[i - 1] == ' ' || chars[i - 1] == '│'))
        .take(7)
        .collect();
    (view::conntrack::list_columns(app), starts)
}

#[test]
fn columns_change_only_with_the_width() {
    for (w, h) in [(80, 24), (120, 40), (200, 50)] {
        let mut app = demo_app(w, h);
        let first = columns(&app);
        let width: u16 = first.0.iter().map(|(_, cw)| cw + 1).sum();
        assert!(width < w, "{w}x{h}: {first:?}");
        // Every sort order, both ways.
        for _ in 0..SORT_ORDER.len() {
            key(&mut app, KeyCode::Char('s'));
            assert_eq!(columns(&app), first, "{w}x{h}, {:?}", app.ct.sort);
            key(&mut app, KeyCode::Char('r'));
            assert_eq!(columns(&app), first, "{w}x{h}, reversed");
        }
        // Through a group view and back, and filtered to a few entries.
        key(&mut app, KeyCode::Char('v'));
        key(&mut app, KeyCode::Backspace);
        assert_eq!(columns(&app), first);
        key(&mut app, KeyCode::Char('/'));
        chars(&mut app, "proto=icmp");
        key(&mut app, KeyCode::Enter);
        assert_eq!(columns(&app), first);
        // Other entries altogether: the hand-built table, IPv6 and NAT among them.
        let other = ct_app(w, h, hand(), figures(7, true));
        assert_eq!(columns(&other), first, "{w}x{h}: other data");
    }
    let narrow = columns(&demo_app(80, 24));
    let wide = columns(&demo_app(120, 40));
    assert_ne!(narrow, wide, "the width decides");
}

#[test]
fn addresses_are_shortened_between_whole_groups() {
    let mut v6 = tcp(
        tuple(
            "2001:db8:85a3:1:2:8a2e:370:7334",
            51000,
            "2606:4700:4700::1111",
            443,
        ),
        tuple(
            "2606:4700:4700::1111",
            443,
            "2001:db8:85a3:1:2:8a2e:370:7334",
            51000,
        ),
        TcpState::Established,
        401,
    );
    v6.timeout = 100;
    let mut v4 = tcp(
        tuple("192.168.100.200", 65000, "198.51.100.222", 8443),
        tuple("198.51.100.222", 8443, "192.168.100.200", 65000),
        TcpState::Established,
        402,
    );
    v4.timeout = 100;
    for (w, h) in [(80, 24), (120, 40)] {
        let app = ct_app(w, h, vec![v6.clone(), v4.clone()], figures(2, true));
        let screen = render(&app);
        let rows = list_rows(&screen);
        let six = rows
            .iter()
            .find(|r| r.contains(":7334]:51000"))
            .expect("v6");
        assert!(six.contains('…'), "{six}");
        let four = rows.iter().find(|r| r.contains(":65000")).expect("v4");
        // Every group shown is whole: the address's own prefix, `…`, its last group.
        for r in [six, four] {
            for word in r.split_whitespace().filter(|x| x.contains('…')) {
                let (head, tail) = word.split_once('…').unwrap();
                let whole = [
                    "[2001:db8:85a3:1:2:8a2e:370:7334]:51000",
                    "192.168.100.200:65000",
                    "[2606:4700:4700::1111]:443",
                    "198.51.100.222:8443",
                ]
                .into_iter()
                .find(|a| a.starts_with(head) && a.ends_with(tail))
                .unwrap_or_else(|| panic!("{word} is no address's start and end"));
                assert!(
                    head.is_empty() || head == "[" || head.ends_with([':', '.']),
                    "{word} of {whole}"
                );
                assert!(tail.starts_with([':', '.']), "{word} of {whole}");
            }
        }
        insta::assert_snapshot!(format!("elided_addresses_{w}x{h}"), screen);
    }
}

#[test]
fn the_flags_legend_is_in_the_details_and_the_help() {
    let mut app = ct_app(120, 40, hand(), figures(7, true));
    select(&mut app, &hand()[3].key());
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::End);
    let screen = render(&app);
    for want in [
        "f column   U (UNREPLIED)",
        "Conntrack flags (the f column",
        "A ASSURED",
        "U UNREPLIED",
        "X DYING",
    ] {
        assert!(screen.contains(want), "{want:?}:\n{screen}");
    }
    insta::assert_snapshot!(screen);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('?'));
    key(&mut app, KeyCode::End);
    let help = render(&app);
    assert!(help.contains("Conntrack flags (the f column"), "{help}");
    assert!(help.contains("A ASSURED"), "{help}");
}

#[test]
fn the_messages_popup_reads_the_audit_log_back() {
    use nfscope::edit::audit::{Record, Tail};
    let mut app = ct_app(100, 30, hand(), figures(7, true));
    let rec = |time: &str, action: &str, detail: &str| Record {
        time: time.into(),
        action: action.into(),
        user: "root (sudo from alice)".into(),
        ssh_client: Some("192.0.2.7 52311".into()),
        pid: 4242,
        detail: detail.into(),
    };
    let tail = Tail {
        path: "/var/lib/nfscope/audit.log".into(),
        records: Ok(vec![
            rec(
                "2026-09-21T14:00:03.120Z",
                "commit",
                "--- filter INPUT\n+-A INPUT -p tcp --dport 22 -j ACCEPT",
            ),
            rec("2026-09-21T14:00:21.500Z", "confirm", "kept"),
        ]),
    };
    let redraw = app.step(Msg::Audit(tail.clone()));
    assert!(!redraw.redraw, "nothing shows it yet");
    key(&mut app, KeyCode::Char('!'));
    assert!(app.step(Msg::Audit(tail)).redraw, "the popup shows it");
    let screen = render(&app);
    assert!(
        screen.contains("The audit log (/var/lib/nfscope/audit.log): the last 2, newest first"),
        "{screen}"
    );
    let confirm = screen.find("confirm by root").expect("the confirmation");
    let commit = screen.find("commit by root").expect("the commit");
    assert!(confirm < commit, "newest first");
    assert!(
        screen.contains("52311: --- filter INPUT (+1 lines in audit.log)"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
    app.update(Msg::Audit(Tail {
        path: "/var/lib/nfscope/audit.log".into(),
        records: Err("Permission denied (os error 13)".into()),
    }));
    assert!(render(&app).contains("✗ cannot read it: Permission denied (os error 13)"));
    app.update(Msg::Audit(Tail {
        path: "/var/lib/nfscope/audit.log".into(),
        records: Ok(Vec::new()),
    }));
    assert!(render(&app).contains("No record yet"));
}

#[test]
fn the_mouse_selects_and_scrolls_in_the_event_log_and_the_list() {
    use ratatui::crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    let mouse = |kind, row| {
        Msg::Mouse(MouseEvent {
            kind,
            column: 20,
            row,
            modifiers: KeyModifiers::NONE,
        })
    };
    let mut app = log_app(120, 40);
    let screen = render(&app);
    let header = screen
        .lines()
        .position(|l| l.contains("│time "))
        .expect("the log's column header") as u16;
    // A click on the third event selects it, in the log (not in the table behind it).
    let table_cursor = app.ct.cursor;
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), header + 3));
    assert_eq!(app.ct.log.cursor, 2);
    assert_eq!(app.ct.cursor, table_cursor);
    // The wheel moves the log's selection too.
    app.update(mouse(MouseEventKind::ScrollUp, header + 3));
    assert_eq!(app.ct.log.cursor, 0);
    // A click under the last event, or on the header, selects nothing new.
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), header));
    assert_eq!(app.ct.log.cursor, 0);
    // Back in the list, a click selects the entry there.
    key(&mut app, KeyCode::Esc);
    let header = render(&app)
        .lines()
        .position(|l| l.contains("│prot "))
        .expect("the list's column header") as u16;
    app.update(mouse(MouseEventKind::Down(MouseButton::Left), header + 2));
    assert_eq!(app.ct.cursor, 1);
}
