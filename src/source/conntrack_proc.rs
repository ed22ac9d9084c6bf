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

/// The text of the first of [`PATHS`] that exists, and its path.
fn read_text() -> Result<(&'static str, String), CtError> {
    for path in PATHS {
        match std::fs::read_to_string(path) {
            Ok(t) => return Ok((path, t)),
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
        }
    }
    Err(CtError::Proc {
        path: PATHS[1].into(),
        message: "it does not exist (the kernel has no conntrack, or no procfs view of it)".into(),
    })
}

/// Read and parse the first of [`PATHS`] that exists; a line that is not an entry fails the
/// whole read (tests compare the table exactly).
pub fn read(family: Option<Family>) -> Result<Vec<Entry>, CtError> {
    let (path, text) = read_text()?;
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
    Ok(entries)
}

/// As [`read`], but a line that is not an entry costs that line only: every good entry is
/// returned, with a sentence naming the bad lines (the first of them in full) when there are
/// any. One odd line from a newer kernel must not blank the table at 3 a.m.
pub fn read_lenient(family: Option<Family>) -> Result<(Vec<Entry>, Option<String>), CtError> {
    let (path, text) = read_text()?;
    Ok(parse_lenient(path, &text, family))
}

/// [`read_lenient`]'s parse of `text`, read from `path`.
fn parse_lenient(path: &str, text: &str, family: Option<Family>) -> (Vec<Entry>, Option<String>) {
    let (mut entries, errors) = procfs::parse_proc(text);
    let bad = errors.first().map(|first| match errors.len() {
        1 => format!("{path}: skipped {first}"),
        n => format!("{path}: skipped {n} lines that are not entries; the first, {first}"),
    });
    if let Some(f) = family {
        entries.retain(|e| e.family == f);
    }
    (entries, bad)
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

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "ipv4     2 udp      17 29 src=10.0.0.5 dst=10.0.0.1 sport=5000 dport=53 \
        [UNREPLIED] src=10.0.0.1 dst=10.0.0.5 sport=53 dport=5000 mark=0 zone=0 use=2";

    #[test]
    fn a_bad_line_costs_that_line_only() {
        let text = format!("{GOOD}\nipv4 2 tcp 6 what\n{GOOD}\n");
        let (entries, bad) = parse_lenient("/proc/net/nf_conntrack", &text, None);
        assert_eq!(entries.len(), 2);
        let bad = bad.expect("the bad line is named");
        assert!(
            bad.starts_with("/proc/net/nf_conntrack: skipped line 2: "),
            "{bad}"
        );
        let text = format!("x\n{GOOD}\ny\n");
        let (entries, bad) = parse_lenient("p", &text, Some(Family::V6));
        assert!(entries.is_empty(), "IPv4 only, filtered out");
        assert!(
            bad.unwrap()
                .contains("skipped 2 lines that are not entries; the first, line 1")
        );
        assert_eq!(parse_lenient("p", GOOD, None).1, None);
    }
}
