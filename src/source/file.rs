//! The file source: rule sets saved by `iptables-save` (`--file` for IPv4, `--file6` for IPv6).
//! Needs no root. The files are read again when they change on disk.

use super::{FamilyData, Origin, RulesetSnapshot, SourceError};
use crate::ruleset::{self, Family};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Read one family's file.
pub fn read_family(path: &Path, family: Family) -> FamilyData {
    match super::bounded::read_text(path, super::bounded::RULES_LIMIT) {
        Ok(text) => match ruleset::parse(&text, family) {
            Ok(_) if let Some((n, why)) = other_family_line(&text, family) => {
                let (flag, other) = match family {
                    Family::V4 => ("--file6", "IPv6"),
                    Family::V6 => ("--file", "IPv4"),
                };
                FamilyData::Failed(SourceError::Parse {
                    what: path.display().to_string(),
                    message: format!(
                        "line {n} is an {other} rule ({why}): this is an {other} rule set, give it with {flag}"
                    ),
                })
            }
            Ok(rs) => FamilyData::Loaded(rs),
            Err(e) => FamilyData::Failed(SourceError::Parse {
                what: path.display().to_string(),
                message: e.to_string(),
            }),
        },
        Err(e) => FamilyData::Failed(SourceError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// The first rule line of `text` that belongs to the other family (an address or ICMP of the
/// other family), and why: an IPv6 file given as the IPv4 one is refused with a hint rather than
/// shown as if iptables could load it.
pub fn other_family_line(text: &str, family: Family) -> Option<(usize, String)> {
    for (i, line) in text.lines().enumerate() {
        let body = match line.trim_start().strip_prefix('[') {
            Some(rest) => rest.split_once(']').map_or("", |(_, b)| b).trim_start(),
            None => line.trim_start(),
        };
        if !(body.starts_with("-A ") || body.starts_with("-I ")) {
            continue;
        }
        let Ok(words) = ruleset::words::split(body) else {
            continue;
        };
        for pair in words.windows(2) {
            let (opt, val) = (pair[0].text.as_str(), pair[1].text.as_str());
            let addr = val.split('/').next().unwrap_or(val);
            let why = match (family, opt) {
                (_, "-s" | "--source" | "-d" | "--destination") => {
                    let first = addr.split(',').next().unwrap_or(addr);
                    match (family, first.parse::<std::net::IpAddr>()) {
                        (Family::V4, Ok(std::net::IpAddr::V6(_))) => Some(format!("{opt} {val}")),
                        (Family::V6, Ok(std::net::IpAddr::V4(_))) => Some(format!("{opt} {val}")),
                        _ => None,
                    }
                }
                (Family::V4, "-p" | "--protocol")
                    if matches!(val, "ipv6-icmp" | "icmpv6" | "58") =>
                {
                    Some(format!("{opt} {val}"))
                }
                _ => None,
            };
            if let Some(why) = why {
                return Some((i + 1, why));
            }
        }
    }
    None
}

/// Read both files (either may be absent) into one snapshot.
pub fn read(v4: Option<&Path>, v6: Option<&Path>, generation: u64) -> RulesetSnapshot {
    let start = Instant::now();
    let load = |p: Option<&Path>, f| p.map_or(FamilyData::Absent, |p| read_family(p, f));
    let v4d = load(v4, Family::V4);
    let v6d = load(v6, Family::V6);
    RulesetSnapshot {
        generation,
        origin: Origin::File {
            v4: v4.map(|p| p.display().to_string()),
            v6: v6.map(|p| p.display().to_string()),
        },
        taken_at: SystemTime::now(),
        took: start.elapsed(),
        warnings: [(Family::V4, &v4d), (Family::V6, &v6d)]
            .into_iter()
            .filter_map(|(f, d)| d.ruleset().map(|rs| (f, rs.incompatible_tables())))
            .flat_map(|(f, t)| super::kernel::incompatible_warnings(f, &t))
            .collect(),
        v4: v4d,
        v6: v6d,
        nft_generation: None,
        // Files hold iptables rule sets only.
        native: Vec::new(),
        changed_by: None,
    }
}

/// Re-reads the files when their size or modification time changes.
pub struct Watcher {
    v4: Option<PathBuf>,
    v6: Option<PathBuf>,
    seen: Option<Vec<Option<(SystemTime, u64)>>>,
}

impl Watcher {
    pub fn new(v4: Option<PathBuf>, v6: Option<PathBuf>) -> Self {
        Watcher { v4, v6, seen: None }
    }

    fn stamp(&self) -> Vec<Option<(SystemTime, u64)>> {
        [&self.v4, &self.v6]
            .iter()
            .map(|p| {
                p.as_ref()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
            })
            .collect()
    }

    /// A new snapshot on the first call and whenever a file changed; `None` otherwise.
    pub fn poll(&mut self, generation: u64) -> Option<RulesetSnapshot> {
        let stamp = self.stamp();
        if self.seen.as_ref() == Some(&stamp) {
            return None;
        }
        self.seen = Some(stamp);
        Some(read(self.v4.as_deref(), self.v6.as_deref(), generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_a_sentence_not_a_panic() {
        let s = read(Some(Path::new("/nonexistent/nfscope.rules")), None, 1);
        let e = s.v4.error().unwrap().to_string();
        assert!(e.contains("cannot read /nonexistent/nfscope.rules"), "{e}");
        assert_eq!(s.v6, FamilyData::Absent);
    }

    #[test]
    fn watcher_rereads_only_on_change() {
        let dir = std::env::temp_dir().join(format!("nfscope-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("v4.rules");
        std::fs::write(&p, "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n").unwrap();
        let mut w = Watcher::new(Some(p.clone()), None);
        assert!(w.poll(1).is_some());
        assert!(w.poll(2).is_none());
        std::fs::write(
            &p,
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n",
        )
        .unwrap();
        let s = w.poll(3).unwrap();
        assert_eq!(s.v4.ruleset().unwrap().rule_count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
