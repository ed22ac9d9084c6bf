//! The fallback where ctnetlink is refused or missing: the text of `/proc/net/nf_conntrack`
//! (or the older `/proc/net/ip_conntrack`), parsed by [`crate::conntrack::procfs`]. It is read
//! through `/proc/thread-self/net`, so a thread that entered a network namespace reads that
//! namespace's table (`/proc/net` follows the process's main thread).

use super::conntrack_netlink::{self, CtError};
use crate::conntrack::{Entry, procfs};
use crate::ruleset::Family;
use std::io::ErrorKind;

/// Where the table's text may be, most specific first.
pub const PATHS: [&str; 3] = [
    "/proc/thread-self/net/nf_conntrack",
    "/proc/net/nf_conntrack",
    "/proc/net/ip_conntrack",
];

/// Read and parse the first of [`PATHS`] that exists.
pub fn read(family: Option<Family>) -> Result<Vec<Entry>, CtError> {
    for path in PATHS {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                return Err(CtError::PermissionDenied);
            }
            Err(e) => {
                return Err(CtError::Proc {
                    path: path.into(),
                    message: e.to_string(),
                });
            }
        };
        let (mut entries, errors) = procfs::parse_proc(&text);
        if let Some(e) = errors.first() {
            return Err(CtError::Proc {
                path: path.into(),
                message: e.to_string(),
            });
        }
        if let Some(f) = family {
            entries.retain(|e| e.family == f);
        }
        return Ok(entries);
    }
    Err(CtError::Proc {
        path: PATHS[1].into(),
        message: "it does not exist (the kernel has no conntrack, or no procfs view of it)".into(),
    })
}

/// Which way a table was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Netlink,
    Proc,
}

/// The table over netlink, or from /proc where netlink fails; when both fail, netlink's error
/// (the more telling one) is returned.
pub fn dump_any(family: Option<Family>) -> Result<(Vec<Entry>, Via), CtError> {
    match conntrack_netlink::dump(family) {
        Ok(v) => Ok((v, Via::Netlink)),
        Err(net) => read(family).map(|v| (v, Via::Proc)).map_err(|_| net),
    }
}
