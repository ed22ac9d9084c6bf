//! `--nft-file`: a native rule set in nft syntax, loaded with `nft -f` into a throwaway network
//! namespace (with a user namespace, so no root is needed) and read back over netlink. Never
//! into this machine's rule set: the tests check that nf_tables' generation here did not move,
//! and that the loader refuses to run in the namespace nfscope was started in.
//!
//! Needs nft and unshare (skipped otherwise, failed under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod common;

use common::skip;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FW: &str = "table inet fw {
  set allowed { type ipv4_addr; elements = { 192.0.2.7 } }
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    tcp dport 22 accept
    ip saddr @allowed tcp dport 80 accept
  }
}
";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nfscope")
}

fn ready() -> bool {
    for tool in ["nft", "unshare"] {
        if nfscope::source::kernel::find_tool(tool).is_none() {
            skip::<()>(&format!("needs {tool}"));
            return false;
        }
    }
    true
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("nfscope-nftfile-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// nf_tables' generation in this process's own namespace (read only), when it has nf_tables.
fn host_generation() -> Option<u32> {
    nfscope::source::nft_netlink::generation().ok()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn rules_list_the_file_in_text_and_json_and_nothing_lands_here() {
    if !ready() {
        return;
    }
    let d = Dir::new("rules");
    let f = d.file("fw.nft", FW);
    let before = host_generation();
    let out = run(&["rules", "--nft-file", path(&f)]);
    assert!(out.status.success(), "{out:?}");
    let t = text(&out);
    assert!(t.contains("native nftables table inet fw"), "{t}");
    assert!(
        t.contains("Chain input (type filter hook input priority 0, policy drop)"),
        "{t}"
    );
    assert!(t.contains("ip saddr @allowed tcp dport 80 accept"), "{t}");
    assert!(
        t.contains("Set allowed (ipv4_addr): 1 element\n  192.0.2.7"),
        "{t}"
    );
    let out = run(&["rules", "--nft-file", path(&f), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let table = &v["native"][0];
    assert_eq!(table["family"], "inet");
    assert_eq!(table["name"], "fw");
    assert_eq!(table["chains"][0]["policy"], "drop");
    assert_eq!(table["chains"][0]["rules"].as_array().unwrap().len(), 3);
    assert_eq!(table["sets"][0]["name"], "allowed");
    assert_eq!(table["sets"][0]["key"], "ipv4_addr");
    assert_eq!(table["sets"][0]["elements"][0], "192.0.2.7");
    assert_eq!(host_generation(), before, "this machine's rule set moved");
}

#[test]
fn trace_walks_the_file_policy_drop_and_ssh_accept() {
    if !ready() {
        return;
    }
    let d = Dir::new("trace");
    let f = d.file("fw.nft", FW);
    let trace = |src: &str, port: &str| {
        let out = run(&[
            "trace",
            "--nft-file",
            path(&f),
            "-p",
            "tcp",
            "-s",
            src,
            "-d",
            "192.0.2.1",
            "--dport",
            port,
            "--in",
            "eth0",
            "--local-addr",
            "192.0.2.1/24%eth0",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = trace("198.51.100.9", "80");
    assert_eq!(v["verdict"], "DROP");
    let p = &v["paths"][0];
    let by = &p["steps"][p["decided_by"].as_u64().unwrap() as usize];
    assert_eq!(by["kind"], "policy");
    assert_eq!(by["nft_table"], "inet fw");
    assert_eq!(by["chain"], "input");
    assert_eq!(trace("198.51.100.9", "22")["verdict"], "ACCEPT");
    // The set's element lets 192.0.2.7 in on 80, decided by the rule that looks it up.
    let v = trace("192.0.2.7", "80");
    assert_eq!(v["verdict"], "ACCEPT");
    let p = &v["paths"][0];
    let by = &p["steps"][p["decided_by"].as_u64().unwrap() as usize];
    assert_eq!(by["text"], "ip saddr @allowed tcp dport 80 accept");
}

#[test]
fn a_file_nft_refuses_is_named_with_its_line() {
    if !ready() {
        return;
    }
    let d = Dir::new("bad");
    let f = d.file(
        "bad.nft",
        "table inet x {\n  chain y {\n    tcp dport 22 acept\n  }\n}\n",
    );
    let out = run(&["rules", "--nft-file", path(&f)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nft -f refused it"), "{err}");
    assert!(err.contains("bad.nft:3:"), "{err}");
    let out = run(&["rules", "--nft-file", "/nonexistent/nfscope.nft"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nft-file /nonexistent/nfscope.nft"));
}

#[test]
fn the_loader_refuses_this_machines_namespace() {
    if !ready() {
        return;
    }
    let d = Dir::new("refuse");
    let f = d.file("fw.nft", FW);
    let before = host_generation();
    let here = nfscope::source::nft_file::netns_inode()
        .unwrap()
        .to_string();
    let out = run(&["nft-dump", "--host-netns", &here, path(&f)]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a throwaway network namespace"));
    assert_eq!(host_generation(), before, "this machine's rule set moved");
}

#[test]
fn other_commands_say_they_do_not_read_it() {
    let out = run(&["--nft-file", "/etc/nftables.conf", "conntrack"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("read by `nfscope rules` and `nfscope trace` only")
    );
}

#[test]
fn without_root_it_loads_in_a_user_namespace() {
    if !ready() {
        return;
    }
    let Some(setpriv) = nfscope::source::kernel::find_tool("setpriv") else {
        skip::<()>("needs setpriv");
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip::<()>("needs root to become another user");
        return;
    }
    // As nobody: the binary and the file must be readable by it.
    let d = std::env::temp_dir().join(format!("nfscope-nftfile-user-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let guard = Dir(d.clone());
    let exe = d.join("nfscope");
    std::fs::copy(bin(), &exe).unwrap();
    let f = guard.file("fw.nft", FW);
    for p in [&d, &exe, &f] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args(["rules", "--nft-file", path(&f)])
        .output()
        .unwrap();
    if out.status.code() == Some(1)
        && String::from_utf8_lossy(&out.stderr).contains("could not be made")
    {
        // This kernel forbids unprivileged user namespaces: the sentence says what to do.
        assert!(String::from_utf8_lossy(&out.stderr).contains("run as root"));
        return;
    }
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out).contains("native nftables table inet fw"));
}
