//! The Conntrack screen end to end: `nfscope --demo` in tmux, as a person would use it:
//! switch to the screen, sort, filter, delete an entry, group, quit; then check the terminal
//! was restored; and the event log in a throwaway network namespace, on the kernel's own
//! conntrack: a connection's NEW and DESTROY. Skipped (saying why) where tmux, root or the
//! conntrack tool is missing, unless CI=true.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::tmux::Run;

/// The list's rows on screen: the lines inside the list box below its column header.
fn rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .skip_while(|l| !l.starts_with("│prot"))
        .skip(1)
        .take_while(|l| l.starts_with('│'))
        .map(|l| l.trim_matches('│').trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

fn proto_number(word: &str) -> u8 {
    match word {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "icmpv6" => 58,
        other => panic!("unexpected protocol {other:?}"),
    }
}

fn protos(screen: &str) -> Vec<u8> {
    rows(screen)
        .iter()
        .filter_map(|r| r.split_whitespace().next().map(proto_number))
        .collect()
}

#[test]
fn conntrack_screen_sort_filter_delete_group_quit() {
    let Some(run) = Run::start("ct", (120, 40), "{bin} --demo") else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("filter INPUT (IPv4)");
    tmux.keys(&["2"]);
    let first = tmux.wait_for("newest first");
    assert!(first.contains("2 Conntrack"));
    assert!(rows(&first).len() > 20, "{first}");

    // Sort by protocol: icmp (1), then tcp (6), then udp (17); reversed, udp first. The
    // selection stays on its entry, wherever it sorts to: Home goes to the top.
    tmux.keys(&["s"]);
    tmux.wait_for("sorted by protocol ▲");
    tmux.keys(&["Home"]);
    let sorted = tmux.wait_until("icmp at the top", |s| protos(s).first() == Some(&1));
    let p = protos(&sorted);
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]),
        "ascending: {p:?}\n{sorted}"
    );
    tmux.keys(&["r"]);
    tmux.wait_for("sorted by protocol ▼");
    tmux.keys(&["Home"]);
    let reversed = tmux.wait_until("udp at the top", |s| protos(s).first() == Some(&17));
    let p = protos(&reversed);
    assert!(
        p.windows(2).all(|w| w[0] >= w[1]),
        "descending: {p:?}\n{reversed}"
    );

    // Filter to UDP.
    tmux.keys(&["/"]);
    tmux.wait_for("filter: ");
    tmux.keys(&["-l", "proto=udp"]);
    tmux.keys(&["Enter"]);
    let udp = tmux.wait_for("filter proto=udp (");
    let p = protos(&udp);
    assert!(
        !p.is_empty() && p.iter().all(|&x| x == 17),
        "only udp: {p:?}\n{udp}"
    );

    // Delete the selected (first) entry: the question names it, the answer says so, and it
    // goes (after fading for two seconds).
    tmux.keys(&["d"]);
    let asked = tmux.wait_for("Delete this conntrack entry?");
    let named = asked
        .lines()
        .skip_while(|l| !l.contains("Delete this conntrack entry?"))
        .nth(1)
        .expect("the entry's line");
    // "udp ESTABLISHED 10.0.0.51:33003 → 10.0.0.1:53", inside the popup's border.
    let source = named
        .split(" → ")
        .next()
        .and_then(|l| l.split_whitespace().last())
        .expect("the entry's source")
        .to_string();
    assert!(source.contains(':'), "{named}");
    assert!(
        rows(&asked).iter().any(|r| r.contains(&source)),
        "{source} is listed"
    );
    tmux.keys(&["y"]);
    tmux.wait_for("deleted 1 entry");
    tmux.wait_until(&format!("{source} to go from the list"), |s| {
        !rows(s).iter().any(|r| r.contains(&source))
    });

    // Clear the filter, then group by state.
    tmux.keys(&["Escape"]);
    tmux.wait_gone("filter proto=udp");
    tmux.keys(&["v"]);
    let grouped = tmux.wait_for("by state");
    assert!(grouped.contains("ESTABLISHED"), "{grouped}");
    assert!(grouped.contains("entries"));

    tmux.keys(&["q"]);
    assert_eq!(run.exit_status(), "0", "nfscope exits 0 on q");
    run.assert_terminal_restored();
}

#[test]
fn conntrack_screen_at_80x24_stays_readable() {
    let Some(run) = Run::start("ct80", (80, 24), "{bin} --demo") else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("filter INPUT");
    tmux.keys(&["Tab"]);
    let screen = tmux.wait_for("newest first");
    let listed = rows(&screen);
    assert!(listed.len() >= 10, "{screen}");
    for r in &listed {
        let words: Vec<&str> = r.split_whitespace().collect();
        assert!(words.len() >= 4, "a row with its columns: {r:?}");
        proto_number(words[0]);
    }
    tmux.keys(&["?"]);
    tmux.wait_for("Conntrack screen");
    tmux.keys(&["Escape"]);
    tmux.wait_gone("Conntrack screen");
    tmux.keys(&["q"]);
    assert_eq!(run.exit_status(), "0");
    run.assert_terminal_restored();
}

/// The event log's rows on screen: the lines inside its box below the column header.
fn log_rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .skip_while(|l| !l.starts_with("│time"))
        .skip(1)
        .take_while(|l| l.starts_with('│'))
        .map(|l| l.trim_matches('│').trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// nfscope in a throwaway namespace, on the kernel's conntrack: a connection made there shows
/// NEW in the event log, `conntrack -D` there shows its DESTROY, and `W` writes the log.
fn event_log_shows_new_and_destroy(tag: &str, size: (u16, u16), port: u16) {
    let Some(ns) = common::ct::tracked_ns(tag) else {
        return;
    };
    // In the run's directory: `W` writes there.
    let launch = format!(
        "cd {{dir}} && env -u SSH_CONNECTION TZ=UTC NFSCOPE_STATE_DIR={{dir}}/state ip netns exec {} {{bin}} --backend nft --interval 0.5",
        ns.name()
    );
    let Some(run) = Run::start(tag, size, &launch) else {
        return;
    };
    let tmux = &run.tmux;
    tmux.wait_for("1 Rules");
    // E from the Rules screen: the Conntrack screen's event log.
    tmux.keys(&["E"]);
    tmux.wait_for("From the kernel's events (netlink).");
    tmux.wait_for("No event yet");

    let to = format!("127.0.0.1:{port}");
    let held = common::ct::tcp_connection(&ns, port);
    let with_port = |s: &str, kind: &str| {
        log_rows(s)
            .iter()
            .any(|r| r.split_whitespace().nth(1) == Some(kind) && r.contains(&to))
    };
    let new = tmux.wait_until("NEW for the connection", |s| with_port(s, "NEW"));
    assert!(
        new.contains("kept of at most 10000"),
        "the log says its size:\n{new}"
    );

    // Deleted in the namespace: the kernel announces its end.
    let out = ns.exec(&["conntrack", "-D", "-p", "tcp", "--dport", &port.to_string()]);
    assert!(
        out.status.success(),
        "conntrack -D: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gone = tmux.wait_until("DESTROY for the connection", |s| with_port(s, "DESTROY"));
    // Newest first: the destroy above the new.
    let rows = log_rows(&gone);
    let at = |kind: &str| {
        rows.iter()
            .position(|r| r.split_whitespace().nth(1) == Some(kind) && r.contains(&to))
            .unwrap()
    };
    assert!(at("DESTROY") < at("NEW"), "{gone}");

    // The log filtered to the connection, then written as JSON lines.
    tmux.keys(&["/"]);
    tmux.wait_for("filter: ");
    tmux.keys(&["-l", &format!("dport={port}")]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&format!("filter dport={port} ("));
    tmux.keys(&["W"]);
    tmux.wait_for("wrote ");
    let written = std::fs::read_dir(&run.dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("nfscope-conntrack-events-"))
        .expect("the written log");
    let text = std::fs::read_to_string(&written).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"new"), "{text}");
    assert_eq!(kinds.last(), Some(&"destroy"), "{text}");
    assert!(
        events
            .iter()
            .all(|e| e["entry"]["orig"]["dport"] == port && e["seen"] == "event"),
        "{text}"
    );

    tmux.keys(&["q"]);
    assert_eq!(run.exit_status(), "0");
    run.assert_terminal_restored();
    drop(held);
}

#[test]
fn the_event_log_shows_a_connection_come_and_go_at_80x24() {
    event_log_shows_new_and_destroy("ctlog80", (80, 24), 5681);
}

#[test]
fn the_event_log_shows_a_connection_come_and_go_at_120x40() {
    event_log_shows_new_and_destroy("ctlog120", (120, 40), 5682);
}
