//! `--file` commits against the real tools, run by a thread inside a throwaway network
//! namespace: a rule naming a host that does not resolve is refused by `iptables-restore --test`
//! and the file is left byte for byte as it was (the tool's "host/network `x' not found" once
//! read as "the tools are not installed", and the file was written unchecked); a good rule is
//! written, and the file is replaced the way editors do it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::screen::t0;
use common::{NetNs, have_tools};
use nfscope::edit::ChainRef;
use nfscope::edit::commit::{self, Progress, Request, Step, Target};
use nfscope::edit::stage::{Op, Staging};
use nfscope::ruleset::{Family, parse};
use nfscope::source::{Backend, netns};
use std::path::{Path, PathBuf};

const FILE: &str = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n";

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nfscope-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A namespace, a directory of its own, and the rules file `FILE` in it; `None` (skipped)
/// without the tools.
fn file_case(tag: &str) -> Option<(NetNs, PathBuf, PathBuf)> {
    if !have_tools(Backend::Nft) {
        return None;
    }
    let ns = NetNs::for_test(tag)?;
    let dir = temp_dir(tag);
    let path = dir.join("rules.v4");
    std::fs::write(&path, FILE).expect("write");
    Some((ns, dir, path))
}

/// Commit `rule` appended to INPUT of the file at `path`, inside namespace `ns`; the reports.
fn commit_rule(ns: &str, path: &Path, state: &Path, rule: &str) -> Vec<Progress> {
    let base =
        vec![parse(&std::fs::read_to_string(path).expect("read"), Family::V4).expect("parse")];
    let mut s = Staging::new(base);
    s.push(Op::Append {
        at: ChainRef::new(Family::V4, "filter", "INPUT"),
        rule: rule.into(),
    })
    .expect("staged");
    let req = Request::staged(&s);
    let target = Target::File {
        v4: Some(path.to_path_buf()),
        v6: None,
        dir: state.to_path_buf(),
    };
    let _ = t0();
    netns::run_in(ns, move || {
        let mut reports = Vec::new();
        commit::run(&target, &req, &mut |p| reports.push(p));
        reports
    })
    .expect("a thread can enter the namespace")
}

#[test]
fn a_file_commit_with_a_host_name_that_does_not_resolve_is_refused() {
    let Some((ns, dir, path)) = file_case("filehost") else {
        return;
    };
    let reports = commit_rule(
        ns.name(),
        &path,
        &dir.join("state"),
        "-s nosuchhost.invalid -j DROP",
    );
    let failed = reports
        .iter()
        .find_map(|p| match p {
            Progress::Failed(step, why) => Some((*step, why.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("not refused: {reports:#?}"));
    assert_eq!(failed.0, Step::Validate, "{reports:#?}");
    assert!(failed.1.contains("nosuchhost.invalid"), "{}", failed.1);
    assert!(
        !reports.iter().any(|p| matches!(p, Progress::Finished(_))),
        "{reports:#?}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), FILE);

    // A rule that resolves is written.
    let reports = commit_rule(ns.name(), &path, &dir.join("state"), "-s 192.0.2.1 -j DROP");
    assert!(
        reports.iter().any(|p| matches!(p, Progress::Finished(_))),
        "{reports:#?}"
    );
    let after = std::fs::read_to_string(&path).expect("read");
    assert!(after.contains("-A INPUT -s 192.0.2.1"), "{after}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_commit_keeps_mode_owner_and_symlink() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    if !have_tools(Backend::Nft) {
        return;
    }
    let Some(ns) = NetNs::for_test("filemode") else {
        return;
    };
    let dir = temp_dir("filemode");
    let real_dir = dir.join("etc");
    std::fs::create_dir_all(&real_dir).expect("dir");
    let real = real_dir.join("rules.v4");
    std::fs::write(&real, FILE).expect("write");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    // Owned by someone else than the committer (nobody:nogroup), as a file under /etc of a
    // service account may be.
    std::os::unix::fs::chown(&real, Some(65534), Some(65534)).expect("chown");
    let link = dir.join("rules.link");
    symlink(&real, &link).expect("symlink");

    let reports = commit_rule(ns.name(), &link, &dir.join("state"), "-s 192.0.2.9 -j DROP");
    assert!(
        reports.iter().any(|p| matches!(p, Progress::Finished(_))),
        "{reports:#?}"
    );
    // The link is still a link, and its target holds the commit.
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink()
    );
    let text = std::fs::read_to_string(&real).expect("read");
    assert!(text.contains("-A INPUT -s 192.0.2.9"), "{text}");
    let meta = std::fs::metadata(&real).expect("meta");
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    // No temporary file is left beside it.
    let names: Vec<String> = std::fs::read_dir(&real_dir)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["rules.v4"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rollback to a backup taken when a table did not exist (a fresh machine: `iptables-save`
/// prints nothing) cannot remove the table: it empties it, and says so instead of "restored".
#[test]
fn a_rollback_says_which_tables_it_could_only_empty() {
    use nfscope::edit::guard;
    use nfscope::edit::tools::Tools;
    if !have_tools(Backend::Nft) {
        return;
    }
    let Some(ns) = NetNs::for_test("rollbackempty") else {
        return;
    };
    let dir = temp_dir("rollbackempty");
    let backup = dir.join("empty.v4.rules");
    std::fs::write(&backup, "").expect("an empty backup");
    ns.restore(
        Family::V4,
        Backend::Nft,
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -s 192.0.2.1/32 -j DROP\nCOMMIT\n",
    );
    let said = netns::run_in(ns.name(), move || {
        guard::restore_backups(
            &Tools {
                backend: Some(Backend::Nft),
            },
            &[(Family::V4, backup)],
        )
    })
    .expect("enter the namespace")
    .expect("restored");
    assert!(
        said.contains("table filter did not exist before the commit"),
        "{said}"
    );
    let now = ns.save(Family::V4, Backend::Nft);
    assert!(
        !now.contains("192.0.2.1") && now.contains(":INPUT ACCEPT"),
        "{now}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `--file` commit keeps the file's old content as a backup of its own kind: `nfscope
/// rollback` never loads it into the kernel (it once loaded a file's rules over the kernel's).
#[test]
fn a_file_commits_backup_is_never_the_kernels_latest() {
    let Some((ns, dir, path)) = file_case("filebackup") else {
        return;
    };
    let state = dir.join("state");
    let kernel = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o eth9 -j MASQUERADE\nCOMMIT\n";
    ns.restore(Family::V4, Backend::Nft, kernel);
    let reports = commit_rule(ns.name(), &path, &state, "-s 192.0.2.1 -j DROP");
    assert!(
        reports.iter().any(|p| matches!(p, Progress::Finished(_))),
        "{reports:#?}"
    );
    // The old file is kept, apart.
    let kept = std::fs::read_dir(state.join("file-backups"))
        .expect("file backups")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".v4.rules"))
        .count();
    assert_eq!(kept, 1);
    let st = state.clone();
    let latest = netns::run_in(ns.name(), move || nfscope::edit::backup::latest(&st))
        .expect("enter the namespace");
    assert!(latest.is_empty(), "{latest:?}");
    let run = ns
        .command(&[
            env!("CARGO_BIN_EXE_nfscope"),
            "--state-dir",
            state.to_str().expect("utf-8"),
            "rollback",
        ])
        .env("NFSCOPE_NO_SYSLOG", "1")
        .output()
        .expect("run nfscope rollback");
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("there is no backup to roll back to"),
        "{run:?}"
    );
    // The kernel's nat table is untouched.
    assert!(ns.save(Family::V4, Backend::Nft).contains("MASQUERADE"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rollback puts back only the chains the commit changed: what others (fail2ban, Docker)
/// changed in other chains and tables while the commit waited stays.
#[test]
fn a_rollback_puts_back_only_the_chains_the_commit_changed() {
    use nfscope::edit::guard;
    use nfscope::edit::tools::Tools;
    for backend in [Backend::Nft, Backend::Legacy] {
        if !have_tools(backend) {
            continue;
        }
        let Some(ns) = NetNs::for_test("undochains") else {
            return;
        };
        let before = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:F2B - [0:0]\n-A INPUT -j F2B\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n";
        ns.restore(Family::V4, backend, before);
        let backup = ns.save(Family::V4, backend);
        // The commit: INPUT drops everything but SSH, and a new chain.
        ns.iptables(Family::V4, backend, &["-N", "NEW"]);
        ns.iptables(Family::V4, backend, &["-A", "INPUT", "-j", "NEW"]);
        ns.iptables(Family::V4, backend, &["-P", "INPUT", "DROP"]);
        // Meanwhile fail2ban bans a host in its own chain, and Docker adds NAT.
        ns.iptables(
            Family::V4,
            backend,
            &["-A", "F2B", "-s", "192.0.2.66", "-j", "DROP"],
        );
        ns.iptables(Family::V4, backend, common::DOCKER_NAT_RULE);
        let touched = vec![
            ChainRef::new(Family::V4, "filter", "INPUT"),
            ChainRef::new(Family::V4, "filter", "NEW"),
        ];
        let loaded = vec![(Family::V4, PathBuf::from("backup.v4.rules"), Ok(backup))];
        let said = netns::run_in(ns.name(), move || {
            guard::undo_commit(
                &Tools {
                    backend: Some(backend),
                },
                &loaded,
                &touched,
            )
        })
        .expect("enter the namespace")
        .expect("rolled back");
        assert!(!said.contains("whole rule sets"), "{backend:?}: {said}");
        let now = ns.save(Family::V4, backend);
        assert!(now.contains(":INPUT ACCEPT"), "{backend:?}: {now}");
        assert!(!now.contains("NEW"), "{backend:?}: {now}");
        assert!(now.contains("-A INPUT -j F2B"), "{backend:?}: {now}");
        assert!(
            now.contains("-A F2B -s 192.0.2.66/32 -j DROP"),
            "{backend:?}: {now}"
        );
        assert!(now.contains("MASQUERADE"), "{backend:?}: {now}");
    }
}
