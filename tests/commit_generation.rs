//! A commit on nf_tables that finds the kernel at the generation its base was read at skips the
//! whole re-read (issue 11): the base is the kernel's rule set, its counters are read over
//! netlink, and the checklist says so. When another tool changed anything meanwhile the
//! generation moved, and the commit reads the kernel whole as before: a change in an edited
//! chain is still a conflict, one elsewhere is in the backup. Each case runs its commit on a
//! thread inside a throwaway network namespace (`netns::run_in`), never on this machine's
//! rule set. Needs root (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::{NetNs, have_tools};
use nfscope::edit::commit::{self, Progress, Request, Step, Target};
use nfscope::edit::stage::{Op, Staging};
use nfscope::edit::tools::Tools;
use nfscope::edit::{ChainRef, backup};
use nfscope::ruleset::{Family, Ruleset};
use nfscope::source::kernel::KernelReader;
use nfscope::source::{Backend, RulesetSnapshot, netns};
use std::path::PathBuf;

const BASE4: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:T - [0:0]\n\
[5:50] -A INPUT -s 10.0.0.1/32 -j ACCEPT\n-A INPUT -i lo -p icmp -j T\n-A OUTPUT -o lo -p icmp -j ACCEPT\n\
-A T -j RETURN\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE\nCOMMIT\n";
const BASE6: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
-A INPUT -s fd00::1/128 -j ACCEPT\nCOMMIT\n";

/// The rule every case stages, at the end of filter INPUT.
const RULE: &str = "-s 192.0.2.1/32 -p tcp -m tcp --dport 22 -j ACCEPT";

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nfscope-gen-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    backup::ensure_dir(&dir).expect("a state directory");
    dir
}

fn setup(tag: &str, backend: Backend) -> Option<NetNs> {
    if !have_tools(backend) {
        return None;
    }
    let ns = NetNs::for_test(tag)?;
    ns.restore(Family::V4, backend, BASE4);
    ns.restore(Family::V6, backend, BASE6);
    Some(ns)
}

/// One commit of `RULE` appended to filter INPUT, staged on the namespace's rule sets as the
/// TUI's source reads them, run in the namespace without a watchdog (`apply --no-confirm`)
/// after `meanwhile` ran; what it reported and the backups it wrote (this namespace's).
struct Case {
    ns: NetNs,
    snap: RulesetSnapshot,
    reports: Vec<Progress>,
    backups: Vec<(Family, String)>,
    dir: PathBuf,
}

impl Case {
    fn run(
        tag: &str,
        backend: Backend,
        meanwhile: impl FnOnce(&NetNs),
        adjust: impl FnOnce(&NetNs, &mut Request),
    ) -> Option<Case> {
        let ns = setup(tag, backend)?;
        let snap = netns::run_in(ns.name(), move || KernelReader::new(Some(backend)).read(1))
            .expect("enter the namespace");
        let base: Vec<Ruleset> = Family::ALL
            .iter()
            .filter_map(|&f| snap.family(f).ruleset().cloned())
            .collect();
        let mut st = Staging::new(base).read_at(snap.nft_generation);
        st.push(Op::Append {
            at: ChainRef::new(Family::V4, "filter", "INPUT"),
            rule: RULE.into(),
        })
        .expect("staged");
        let mut req = Request::staged(&st);
        adjust(&ns, &mut req);
        meanwhile(&ns);
        let dir = temp_dir(tag);
        let target = Target::Kernel {
            tools: Tools {
                backend: Some(backend),
            },
            dir: dir.clone(),
            timeout: None,
            armed: Default::default(),
            committed: Default::default(),
        };
        let state = dir.clone();
        let (reports, backups) = netns::run_in(ns.name(), move || {
            let mut reports = Vec::new();
            commit::run(&target, &req, &mut |p| reports.push(p));
            let backups = backup::latest(&state)
                .into_iter()
                .map(|(f, p)| (f, std::fs::read_to_string(p).expect("the backup reads")))
                .collect();
            (reports, backups)
        })
        .expect("enter the namespace");
        Some(Case {
            ns,
            snap,
            reports,
            backups,
            dir,
        })
    }

    fn done(&self, step: Step) -> &str {
        self.reports
            .iter()
            .find_map(|p| match p {
                Progress::Done(s, d) if *s == step => Some(d.as_str()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {step:?}: {:#?}", self.reports))
    }

    fn backup(&self, family: Family) -> &str {
        self.backups
            .iter()
            .find(|(f, _)| *f == family)
            .map(|(_, t)| t.as_str())
            .unwrap_or_else(|| panic!("no backup of {family:?}: {:#?}", self.reports))
    }

    fn kernel_v4(&self, backend: Backend) -> String {
        self.ns.save(Family::V4, backend)
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The lines of a save text that are neither comments nor counters.
fn rules_of(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let l = l
                .strip_prefix('[')
                .map_or(l, |r| r.split_once("] ").map_or(l, |(_, rest)| rest));
            match l.strip_prefix(':') {
                Some(decl) => decl.rsplit_once(' ').map_or(l, |(d, _)| d).to_string(),
                None => l.to_string(),
            }
        })
        .collect()
}

/// The line of the counted ICMP rule, counters included.
fn counted(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.ends_with("-A INPUT -i lo -p icmp -j T"))
        .map(str::to_string)
}

#[test]
fn an_unchanged_generation_skips_the_re_read_and_commits() {
    let backend = Backend::Nft;
    let kernel_then = std::cell::RefCell::new(Vec::new());
    // Counters move after the base was read, and the generation does not.
    let ping = |ns: &NetNs| {
        let out = ns.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "127.0.0.1"]);
        assert!(out.status.success(), "{out:?}");
        *kernel_then.borrow_mut() = Family::ALL.map(|f| ns.save(f, backend)).to_vec();
    };
    let Some(case) = Case::run("genskip", backend, ping, |_, _| {}) else {
        return;
    };
    let g = case
        .snap
        .nft_generation
        .expect("an nf_tables read knows its generation");
    let said = case.done(Step::Concurrency);
    assert!(
        said.contains(&format!(
            "re-read skipped: nf_tables unchanged since generation {g}"
        )),
        "{said}"
    );
    let said = case.done(Step::Backup);
    assert!(
        said.contains(&format!("as read at nf_tables generation {g}")),
        "{said}"
    );
    assert!(
        case.reports
            .iter()
            .any(|p| matches!(p, Progress::Finished(_))),
        "{:#?}",
        case.reports
    );
    // Committed: the kernel holds the rule at the end of INPUT.
    let after = case.kernel_v4(backend);
    assert!(
        after.contains(&format!("-A INPUT {RULE}\n")),
        "not committed:\n{after}"
    );
    // The backup is both families whole, as the save tools print them, with the counters as
    // they were at the commit, not at the base's read.
    let then = kernel_then.borrow();
    assert_eq!(case.backups.len(), 2, "{:?}", case.backups);
    for (f, was) in Family::ALL.iter().zip(then.iter()) {
        let text = case.backup(*f);
        assert_eq!(rules_of(text), rules_of(was), "{f:?}:\n{text}");
    }
    let v4 = case.backup(Family::V4);
    assert!(
        v4.contains("[5:50] -A INPUT -s 10.0.0.1/32 -j ACCEPT"),
        "{v4}"
    );
    let base = case.snap.v4.ruleset().expect("IPv4 read");
    assert!(
        counted(&nfscope::ruleset::save::write(base, Default::default()))
            .is_some_and(|l| l.starts_with("[0:0]")),
        "the base was read before the pings"
    );
    assert_eq!(counted(v4), counted(&then[0]), "counters as of the commit");
    assert!(!counted(v4).expect("the rule").starts_with("[0:0]"), "{v4}");
}

#[test]
fn a_moved_generation_reads_again_and_still_finds_the_conflict() {
    let backend = Backend::Nft;
    // Another tool inserts into the chain the staging edits.
    let insert = |ns: &NetNs| {
        ns.iptables(
            Family::V4,
            backend,
            &["-I", "INPUT", "-s", "10.0.0.7", "-j", "DROP"],
        );
    };
    let Some(case) = Case::run("genconflict", backend, insert, |_, _| {}) else {
        return;
    };
    let lines = case
        .reports
        .iter()
        .find_map(|p| match p {
            Progress::Conflicts { lines, .. } => Some(lines.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no conflict: {:#?}", case.reports));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("+ -A INPUT -s 10.0.0.7/32 -j DROP")),
        "{lines:?}"
    );
    assert!(
        !case
            .reports
            .iter()
            .any(|p| matches!(p, Progress::Done(Step::Concurrency, _))),
        "{:#?}",
        case.reports
    );
    assert!(
        case.backups.is_empty(),
        "nothing is backed up before the check"
    );
    let after = case.kernel_v4(backend);
    assert!(!after.contains("192.0.2.1"), "committed:\n{after}");
}

#[test]
fn a_moved_generation_elsewhere_reads_again_and_backs_up_what_the_kernel_holds() {
    let backend = Backend::Nft;
    // Docker adds its rule to nat: no chain the staging edits, but the generation moves.
    let docker = |ns: &NetNs| {
        ns.iptables(Family::V4, backend, common::DOCKER_NAT_RULE);
    };
    let Some(case) = Case::run("genmoved", backend, docker, |_, _| {}) else {
        return;
    };
    let g = case.snap.nft_generation.expect("a generation");
    let said = case.done(Step::Concurrency);
    assert!(
        said.contains(&format!(
            "read again: nf_tables moved since your rule set was read, from generation {g} to"
        )),
        "{said}"
    );
    assert!(!said.contains("skipped"), "{said}");
    let said = case.done(Step::Backup);
    assert!(!said.contains("generation"), "{said}");
    let v4 = case.backup(Family::V4);
    assert!(
        v4.contains("-A POSTROUTING -s 172.17.0.0/16 -j MASQUERADE"),
        "the backup is the kernel's rule set as read now:\n{v4}"
    );
    let after = case.kernel_v4(backend);
    assert!(after.contains(&format!("-A INPUT {RULE}\n")), "{after}");
    assert!(after.contains("172.17.0.0/16"), "{after}");
}

#[test]
fn legacy_reads_whole_whatever_the_request_says() {
    let backend = Backend::Legacy;
    // Even a generation that is nf_tables' own says nothing of legacy tables.
    let nft_generation = |ns: &NetNs, req: &mut Request| {
        assert_eq!(
            req.base_generation, None,
            "legacy has no nf_tables generation"
        );
        let g = netns::run_in(ns.name(), nfscope::source::nft_netlink::generation);
        req.base_generation = Some(g.ok().and_then(Result::ok).unwrap_or(1));
    };
    let docker = |ns: &NetNs| {
        ns.iptables(Family::V4, backend, common::DOCKER_NAT_RULE);
    };
    let Some(case) = Case::run("genlegacy", backend, docker, nft_generation) else {
        return;
    };
    assert_eq!(case.snap.nft_generation, None);
    let said = case.done(Step::Concurrency);
    assert!(!said.contains("skipped"), "{said}");
    let v4 = case.backup(Family::V4);
    assert!(v4.contains("172.17.0.0/16"), "{v4}");
}
