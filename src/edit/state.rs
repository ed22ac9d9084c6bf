//! Staged work saved to a state file as it changes, so that a dropped session loses nothing, and
//! what the kernel changed since, for the "resume?" question at the next start. The file holds
//! the base as save text and the operations; replaying them rebuilds the staging.

use super::ChainRef;
use super::stage::{Op, Staging};
use crate::ruleset::save::{SaveOptions, write};
use crate::ruleset::{Chain, Family, Ruleset, parse};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The format of the state file; a file of another version is refused, not misread.
pub const VERSION: u32 = 1;

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedStaging {
    pub version: u32,
    /// The base save text of each family, with counters.
    pub base: Vec<(Family, String)>,
    pub ops: Vec<Op>,
    /// When it was saved, in seconds since 1970.
    pub saved_at: u64,
    /// `kernel`, or `file:PATH` when editing a file.
    pub origin: String,
}

impl SavedStaging {
    pub fn from_staging(s: &Staging, origin: &str) -> Self {
        SavedStaging {
            version: VERSION,
            base: s
                .base()
                .iter()
                .map(|rs| (rs.family, write(rs, SaveOptions::default())))
                .collect(),
            ops: s.ops().to_vec(),
            saved_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            origin: origin.to_string(),
        }
    }

    /// The saved base, read back.
    pub fn base_rulesets(&self) -> Result<Vec<Ruleset>, String> {
        self.base
            .iter()
            .map(|(family, text)| {
                parse(text, *family).map_err(|e| {
                    format!(
                        "the saved {} rule set cannot be read back: {e}",
                        family.label()
                    )
                })
            })
            .collect()
    }

    /// The staging again: the saved base with the saved operations replayed.
    pub fn to_staging(&self) -> Result<Staging, String> {
        if self.version != VERSION {
            return Err(version_message(self.version));
        }
        let mut s = Staging::new(self.base_rulesets()?);
        for (i, op) in self.ops.iter().enumerate() {
            s.push(op.clone()).map_err(|e| {
                format!(
                    "saved operation {} ({}) cannot be staged again: {e}",
                    i + 1,
                    op.describe()
                )
            })?;
        }
        Ok(s)
    }
}

/// What the start of the UI does with the state file.
#[derive(Debug)]
pub enum Resume {
    /// Nothing saved (or nothing staged in it).
    Nothing,
    /// Staged work saved for this rule set: offer it back (the staging, and when it was saved).
    Offer(Box<Staging>, u64),
    /// Something to say (in a sentence) instead; the second part says whether it is an error.
    Say(String, bool),
}

/// Read the state file at `path` for the rule set `origin` (`kernel:netINODE`, `file:...`):
/// work saved for another rule set (another file, another network namespace's kernel) is never
/// offered here, and never overwritten either: it is moved aside, and the sentence says where.
pub fn take_saved(path: &Path, origin: &str) -> Resume {
    let saved = match load(path) {
        Ok(Some(s)) => s,
        Ok(None) => return Resume::Nothing,
        Err(e) => return Resume::Say(e.to_string(), true),
    };
    if saved.origin != origin {
        let aside = path.with_file_name(format!("staging.{}.json", saved.saved_at));
        return match fs::rename(path, &aside) {
            Ok(()) => Resume::Say(
                format!(
                    "staged work saved for another rule set ({}) was kept in {}: start nfscope on that rule set to use it (rename it to staging.json there)",
                    saved.origin,
                    aside.display()
                ),
                false,
            ),
            Err(e) => Resume::Say(
                format!(
                    "staged work saved for another rule set ({}) is in {}, and could not be moved aside ({e}): staging here would overwrite it",
                    saved.origin,
                    path.display()
                ),
                true,
            ),
        };
    }
    match saved.to_staging() {
        Ok(st) if !st.is_empty() => Resume::Offer(Box::new(st), saved.saved_at),
        Ok(_) => Resume::Nothing,
        Err(e) => Resume::Say(
            format!("the saved staged changes cannot be read: {e}"),
            true,
        ),
    }
}

fn version_message(found: u32) -> String {
    format!(
        "the saved staging was written in format {found}, and this nfscope reads format {VERSION}"
    )
}

fn same_rules(a: &Chain, b: &Chain) -> bool {
    a.policy == b.policy
        && a.rules.len() == b.rules.len()
        && a.rules.iter().zip(&b.rules).all(|(x, y)| x.text == y.text)
}

/// What moved in the kernel since the saved base, for the "resume?" question: the chains whose
/// rules or policy differ (counters ignored), or that exist on one side only, in the order they
/// appear (IPv4 first).
pub fn moved(saved_base: &[Ruleset], now: &[Ruleset]) -> Vec<ChainRef> {
    let mut out: Vec<ChainRef> = Vec::new();
    let mut seen: HashSet<ChainRef> = HashSet::new();
    for family in Family::ALL {
        let then = saved_base.iter().find(|r| r.family == family);
        let now = now.iter().find(|r| r.family == family);
        let sides = [(then, now), (now, then)];
        for (one, other) in sides {
            for table in one.iter().flat_map(|rs| &rs.tables) {
                // Indexed: kube-proxy tables hold thousands of chains.
                let other_chains: HashMap<&str, &Chain> = other
                    .and_then(|rs| rs.table(&table.name))
                    .map(|t| t.chains.iter().map(|c| (c.name.as_str(), c)).collect())
                    .unwrap_or_default();
                for chain in &table.chains {
                    let same = other_chains
                        .get(chain.name.as_str())
                        .is_some_and(|c| same_rules(chain, c));
                    let at = ChainRef::new(family, &table.name, &chain.name);
                    if !same && seen.insert(at.clone()) {
                        out.push(at);
                    }
                }
            }
        }
    }
    out
}

fn invalid(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the saved staging in {} cannot be used: {why}; remove the file to start afresh",
            path.display()
        ),
    )
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "staging".into(), |n| n.to_string_lossy().into_owned());
    // Unique per process and per call, so that two saves never share a temporary file.
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

/// Write the state file atomically (a temporary file beside it, then a rename), readable by
/// its owner only: it holds the whole rule set.
pub fn save(path: &Path, s: &SavedStaging) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(s).map_err(io::Error::other)?;
    let tmp = temp_path(path);
    // A leftover from a crash is removed first, so that create_new never follows a link.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The umask can only take bits away, but be explicit.
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
        f.write_all(&json)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the rename itself durable; a file system that cannot is no reason to fail.
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Read the state file: None when there is none; a file that is corrupt or of another format
/// is an error that says so (never a guess).
pub fn load(path: &Path) -> io::Result<Option<SavedStaging>> {
    let bytes = match crate::source::bounded::read_state(path, crate::source::bounded::RULES_LIMIT)
    {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(path, &format!("it is not valid JSON ({e})")))?;
    match value.get("version").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            let v = u32::try_from(v).unwrap_or(u32::MAX);
            return Err(invalid(path, &version_message(v)));
        }
        None => return Err(invalid(path, "it has no format version")),
    }
    let saved: SavedStaging = serde_json::from_value(value)
        .map_err(|e| invalid(path, &format!("it is not a saved staging ({e})")))?;
    Ok(Some(saved))
}

/// Remove the state file (after a commit or a discard); no file is fine.
pub fn clear(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn work_saved_for_another_rule_set_is_set_aside_not_offered() {
        let dir = crate::edit::backup::test_dir("resume-origin");
        crate::edit::backup::ensure_dir(&dir).unwrap();
        let path = dir.join("staging.json");
        assert!(matches!(take_saved(&path, "kernel:net1"), Resume::Nothing));
        save(
            &path,
            &SavedStaging::from_staging(&staging(), "kernel:net1"),
        )
        .unwrap();
        assert!(matches!(
            take_saved(&path, "kernel:net1"),
            Resume::Offer(..)
        ));
        // Another network namespace's kernel: kept aside, said, never offered.
        match take_saved(&path, "kernel:net2") {
            Resume::Say(said, false) => assert!(said.contains("kernel:net1"), "{said}"),
            other => panic!("{other:?}"),
        }
        assert!(!path.exists());
        let aside: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("staging."))
            .collect();
        assert_eq!(aside.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    use super::*;

    const V4: &str = "# Generated by iptables-save\n*filter\n:INPUT DROP [3:300]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:T - [0:0]\n[1:60] -A INPUT -i lo -j ACCEPT\n[2:80] -A INPUT -j T\n-A T -m comment --comment \"a \\\"b\\\"\" -j RETURN\nCOMMIT\n";
    const V6: &str =
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";

    /// A directory of its own under the system's temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let p = std::env::temp_dir().join(format!(
                "nfscope-state-{}-{}-{nanos}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn staging() -> Staging {
        let mut s = Staging::new(vec![
            parse(V4, Family::V4).unwrap(),
            parse(V6, Family::V6).unwrap(),
        ]);
        let at = |c: &str| ChainRef::new(Family::V4, "filter", c);
        s.push(Op::Insert {
            above: None,
            at: at("INPUT"),
            pos: 1,
            rule: "-p tcp --dport 22 -m comment --comment 'ssh in' -j ACCEPT".into(),
        })
        .unwrap();
        s.push(Op::RenameChain {
            at: at("T"),
            to: "T2".into(),
        })
        .unwrap();
        s.push(Op::Zero { at: at("INPUT") }).unwrap();
        s
    }

    #[test]
    fn a_resumed_delete_finds_its_rule_by_identity() {
        let base = parse(V4, Family::V4).unwrap();
        let mut s = Staging::new(vec![base]);
        let at = ChainRef::new(Family::V4, "filter", "INPUT");
        let second = s.result()[0]
            .table("filter")
            .unwrap()
            .chain("INPUT")
            .unwrap()
            .rules[1]
            .text
            .clone();
        s.push(Op::Delete {
            at: at.clone(),
            pos: 2,
            id: None,
        })
        .unwrap();
        let json = serde_json::to_string(&SavedStaging::from_staging(&s, "kernel")).unwrap();
        // The identity is in the file, not only the position.
        assert!(
            json.contains(&serde_json::to_string(&second).unwrap()[1..]),
            "{json}"
        );
        let back: SavedStaging = serde_json::from_str(&json).unwrap();
        let again = back.to_staging().unwrap();
        // The kernel moved: a rule at the top. The resume's rebase deletes the same rule.
        let moved = V4.replacen("-A INPUT", "-A INPUT -s 192.0.2.66/32 -j DROP\n-A INPUT", 1);
        let now = vec![parse(&moved, Family::V4).unwrap()];
        let r = again.rebase(now).unwrap();
        let input = &r.result()[0]
            .table("filter")
            .unwrap()
            .chain("INPUT")
            .unwrap()
            .rules;
        assert!(!input.iter().any(|x| x.text == second), "{input:#?}");
        assert_eq!(input[0].text, "-s 192.0.2.66/32 -j DROP");
        // A file from before identities (position only) is resolved on its own saved base.
        let mut legacy: serde_json::Value = serde_json::from_str(&json).unwrap();
        legacy["ops"][0].as_object_mut().unwrap().remove("id");
        let back: SavedStaging = serde_json::from_value(legacy).unwrap();
        assert_eq!(back.to_staging().unwrap().ops(), s.ops());
    }

    #[test]
    fn save_load_round_trip_with_mode_0600() {
        let dir = TempDir::new();
        let path = dir.0.join("staging.json");
        assert_eq!(load(&path).unwrap(), None);
        let s = staging();
        let saved = SavedStaging::from_staging(&s, "kernel");
        assert_eq!(saved.version, VERSION);
        assert!(saved.saved_at > 0);
        save(&path, &saved).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Saved again over the old one; no temporary file is left.
        save(&path, &saved).unwrap();
        let names: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["staging.json"]);
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back, saved);
        let again = back.to_staging().unwrap();
        assert_eq!(again.base(), s.base());
        assert_eq!(again.result(), s.result());
        assert_eq!(again.ops(), s.ops());
        assert_eq!(again.renames(), s.renames());
        assert_eq!(again.zeroed(), s.zeroed());
        clear(&path).unwrap();
        assert!(!path.exists());
        clear(&path).unwrap();
    }

    #[test]
    fn corrupt_or_foreign_files_are_errors_that_say_so() {
        let dir = TempDir::new();
        let path = dir.0.join("staging.json");
        let good =
            serde_json::to_string(&SavedStaging::from_staging(&staging(), "kernel")).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{\"version\": 1, \"base\": [".to_vec(), "not valid JSON"),
            (vec![0xff, 0xfe, 0x00], "not valid JSON"),
            (b"".to_vec(), "not valid JSON"),
            (b"[1, 2]".to_vec(), "no format version"),
            (
                good.replacen("\"version\":1", "\"version\":99", 1)
                    .into_bytes(),
                "format 99",
            ),
            (
                good.replacen("\"version\":1", "\"version\":1e99", 1)
                    .into_bytes(),
                "no format version",
            ),
            (
                good.replacen("\"op\":\"insert\"", "\"op\":\"explode\"", 1)
                    .into_bytes(),
                "not a saved staging",
            ),
        ];
        for (bytes, expect) in cases {
            fs::write(&path, &bytes).unwrap();
            let e = load(&path).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            let m = e.to_string();
            assert!(m.contains(expect), "{m}");
            assert!(
                m.contains("staging.json") && m.contains("remove the file"),
                "{m}"
            );
        }
    }

    #[test]
    fn to_staging_refuses_what_does_not_apply() {
        let mut saved = SavedStaging::from_staging(&staging(), "file:/etc/iptables/rules.v4");
        let mut bad = saved.clone();
        bad.base[0].1 = "*filter\n-A NOPE -j ACCEPT\nCOMMIT\n".into();
        let e = bad.to_staging().unwrap_err();
        assert!(e.contains("IPv4") && e.contains("NOPE"), "{e}");
        saved.ops.push(Op::Delete {
            id: None,
            at: ChainRef::new(Family::V6, "filter", "INPUT"),
            pos: 3,
        });
        let e = saved.to_staging().unwrap_err();
        assert!(e.starts_with("saved operation 4 "), "{e}");
        saved.version = 0;
        assert!(saved.to_staging().unwrap_err().contains("format 0"));
    }

    #[test]
    fn moved_names_chains_whose_rules_or_policy_changed() {
        let then = vec![
            parse(V4, Family::V4).unwrap(),
            parse(V6, Family::V6).unwrap(),
        ];
        assert!(moved(&then, &then).is_empty());
        // Counters alone are no move.
        let counted = V4
            .replace("[1:60]", "[100:6000]")
            .replace("[3:300]", "[9:9]");
        let now = vec![
            parse(&counted, Family::V4).unwrap(),
            parse(V6, Family::V6).unwrap(),
        ];
        assert!(moved(&then, &now).is_empty());
        let changed = V4
            .replace(":INPUT DROP", ":INPUT ACCEPT")
            .replace(":T - [0:0]\n", ":T - [0:0]\n:F2B - [0:0]\n");
        let v6 = V6.replace("COMMIT", "-A FORWARD -j DROP\nCOMMIT");
        let now = vec![
            parse(&changed, Family::V4).unwrap(),
            parse(&v6, Family::V6).unwrap(),
        ];
        assert_eq!(
            moved(&then, &now),
            [
                ChainRef::new(Family::V4, "filter", "INPUT"),
                ChainRef::new(Family::V4, "filter", "F2B"),
                ChainRef::new(Family::V6, "filter", "FORWARD"),
            ]
        );
        // A family gone is every chain of it.
        assert_eq!(moved(&then, &then[..1]).len(), 3);
    }
}
