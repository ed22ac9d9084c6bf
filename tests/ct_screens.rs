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
use nfscope::conntrack::table::{SortKey, compare_sorted};
use nfscope::conntrack::{CtEvent, Entry, EntryKey, Icmp, Proto, State, Status, TcpState, Tuple};
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
    let l = line_with(&screen, "10::105]:51000").expect("the v6 row");
    assert!(l.contains("CLOSE "), "{l}");
    let st = style_in_row(&app, "10::105]:51000", "CLOSE");
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
        !style_in_row(&app, "10::105]:51000", "CLOSE")
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
