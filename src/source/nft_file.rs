//! Offline native rule sets: `--nft-file FILE` (nft syntax, e.g. /etc/nftables.conf). nfscope
//! has no nft-syntax parser of its own: the file is loaded with `nft -f` into a throwaway
//! network namespace (with a user namespace of its own, so no root is needed where the system
//! allows unprivileged user namespaces), and read back through the same netlink code as the
//! kernel's tables.
//!
//! The namespaces are made by `unshare --user --map-root-user --net`, which runs
//! `nfscope nft-dump` inside them (a hidden subcommand). The dump refuses to load anything when
//! it finds itself in the network namespace nfscope was started in: a file is never loaded into
//! this machine's rule set. The namespaces end with the dump.

use super::kernel::find_tool;
use super::nft_netlink::{self, NftRuleset};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::{Command, Stdio};

/// What the dump hands back: the rule set as read over netlink, and `nft -a list ruleset`'s
/// text for each rule's words.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NftDump {
    pub nft: NftRuleset,
    pub listing: String,
}

/// The dump's exit statuses: nft refused the file; it loaded but could not be read back;
/// the dump is not in a namespace of its own.
const REFUSED: i32 = 3;
const UNREADABLE: i32 = 4;
const NOT_THROWAWAY: i32 = 5;

/// What a tool said, bounded: the first 20 lines, 2,000 characters at most.
fn clip(s: &str) -> String {
    let mut out: String = s.trim().lines().take(20).collect::<Vec<_>>().join("\n");
    if out.chars().count() > 2000 {
        out = out.chars().take(2000).collect::<String>() + "…";
    }
    out
}

/// The inode of a process's network namespace (`/proc/self/ns/net` → `net:[4026531833]`).
pub fn netns_inode() -> Option<u64> {
    let link = std::fs::read_link("/proc/self/ns/net").ok()?;
    let s = link.to_string_lossy();
    s.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

/// Load `path` in a throwaway network namespace and read it back. `Err` is a sentence: what
/// to install, or what nft said about the file (with its line numbers).
pub fn load(path: &Path) -> Result<NftDump, String> {
    let shown = path.display();
    let abs = std::fs::canonicalize(path).map_err(|e| format!("--nft-file {shown}: {e}"))?;
    if find_tool("nft").is_none() {
        return Err(format!(
            "--nft-file {shown}: `nft` is needed to load it (apt-get install nftables)"
        ));
    }
    let unshare = find_tool("unshare").ok_or_else(|| {
        format!("--nft-file {shown}: `unshare` is needed to load it in a throwaway namespace (apt-get install util-linux)")
    })?;
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find nfscope's own binary: {e}"))?;
    let host =
        netns_inode().ok_or("cannot read this process's network namespace (/proc/self/ns/net)")?;
    let out = Command::new(unshare)
        .args(["--user", "--map-root-user", "--net", "--"])
        .arg(exe)
        .args(["nft-dump", "--host-netns", &host.to_string()])
        .arg(&abs)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("--nft-file {shown}: cannot run unshare: {e}"))?;
    if !out.status.success() {
        let err = clip(&String::from_utf8_lossy(&out.stderr));
        // Decided by who failed (the dump's own statuses), not by the words printed.
        return Err(match out.status.code() {
            Some(REFUSED) => format!("--nft-file {shown}: {err}"),
            Some(UNREADABLE) => format!("--nft-file {shown}: loaded, but {err}"),
            _ => format!(
                "--nft-file {shown}: a throwaway network namespace could not be made ({err}); run as root, or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
            ),
        });
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("--nft-file {shown}: the namespace's answer could not be read: {e}"))
}

/// The hidden `nfscope nft-dump`: inside the namespaces `load` made, load `path` and print the
/// dump as JSON. Returns the exit status; says why on standard error.
pub fn dump_here(path: &Path, host_netns: u64) -> i32 {
    match netns_inode() {
        Some(here) if here != host_netns => {}
        _ => {
            eprintln!(
                "nfscope nft-dump: refusing to load {}: this is not a throwaway network namespace",
                path.display()
            );
            return NOT_THROWAWAY;
        }
    }
    let nft = find_tool("nft").unwrap_or_else(|| "nft".into());
    let out = Command::new(&nft)
        .arg("-f")
        .arg(path)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            eprintln!(
                "nft -f refused it:\n{}",
                String::from_utf8_lossy(&o.stderr).trim_end()
            );
            return REFUSED;
        }
        Err(e) => {
            eprintln!("cannot run nft: {e}");
            return REFUSED;
        }
    }
    let nft = match nft_netlink::read_full() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("reading it back over netlink failed: {e}");
            return UNREADABLE;
        }
    };
    let listing = match super::native::listing(None) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return UNREADABLE;
        }
    };
    match serde_json::to_string(&NftDump { nft, listing }) {
        Ok(s) => {
            println!("{s}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            UNREADABLE
        }
    }
}
