//! The state directory, and the backups of the kernel's rule sets taken before every change.
//!
//! A backup is one family's `iptables-save -c` text in a file of its own, mode 0600, named by
//! the time it was taken: `20261204T195725.123456789Z.v4.rules`. The files of one backup set
//! (both families, taken together) share the time. The last [`KEEP`] of each family are kept.

use crate::ruleset::Family;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// How many backups of each family are kept.
pub const KEEP: usize = 20;

/// The state directory: `flag` (`--state-dir`), else `$NFSCOPE_STATE_DIR`, else
/// `/var/lib/nfscope` for root, else `$XDG_STATE_HOME/nfscope` or `~/.local/state/nfscope`.
pub fn state_dir(flag: Option<&Path>) -> PathBuf {
    let dir = chosen_state_dir(flag);
    // Absolute: the watchdog runs in `/`, and the pending file names backups by path.
    std::path::absolute(&dir).unwrap_or(dir)
}

/// root's state directory when neither `--state-dir` nor `NFSCOPE_STATE_DIR` says otherwise.
pub const ROOT_STATE_DIR: &str = "/var/lib/nfscope";

fn chosen_state_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(p) = env("NFSCOPE_STATE_DIR") {
        return p.into();
    }
    if rustix::process::geteuid().is_root() {
        return ROOT_STATE_DIR.into();
    }
    if let Some(p) = env("XDG_STATE_HOME").map(PathBuf::from)
        && p.is_absolute()
    {
        return p.join("nfscope");
    }
    match env("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/nfscope"),
        None => ROOT_STATE_DIR.into(),
    }
}

/// Create the state directory (mode 0700) if it is missing, and check that nobody else can
/// write to it: the watchdog, often root, restores whatever its pending file names.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create the state directory {}: {e}", dir.display()),
            )
        })?;
    let meta = fs::metadata(dir)?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me || meta.permissions().mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the state directory {0} can be written by another user: make it yours and private (chmod 700 {0}), or choose another with --state-dir",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Write `text` to a new file `path`, mode 0600, failing if it exists.
pub fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Replace `path` with `text` atomically (a temporary file in the same directory, then a
/// rename), mode 0600: a reader sees the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    write_private(&tmp, text)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Replace a user's file (a `--file` commit) the way editors do: through a symlink to the file
/// it points to (the link stays a link), with the file's own mode and owner, written to a
/// temporary file of a unique name in the same directory, fsynced, renamed over the file, and
/// the directory fsynced, so that after a crash the file is the old one or the new one, whole.
pub fn replace_file(path: &Path, text: &str) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let target = fs::canonicalize(path)?;
    let meta = fs::metadata(&target)?;
    let dir = target
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the file has no directory"))?;
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("rules");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".nfscope")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    let file = tmp.as_file();
    file.set_permissions(meta.permissions())?;
    // Keep the owner: root can give the file back to whoever had it.
    if let Err(e) = std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()))
        && (meta.uid(), meta.gid()) != (file.metadata()?.uid(), file.metadata()?.gid())
    {
        return Err(io::Error::new(
            e.kind(),
            format!(
                "cannot give the new file the owner of the old one ({}:{}): {e}",
                meta.uid(),
                meta.gid()
            ),
        ));
    }
    file.sync_all()?;
    tmp.persist(&target).map_err(|e| e.error)?;
    fs::File::open(dir)?.sync_all()
}

fn family_tag(f: Family) -> &'static str {
    match f {
        Family::V4 => "v4",
        Family::V6 => "v6",
    }
}

/// `20261204T195725.123456789Z`: sorts as it should, and names a time a person can read (UTC).
pub fn stamp(t: SystemTime) -> String {
    crate::time::utc_stamp(t)
}

/// One backup file's name cut into its time stamp and family.
fn parse_name(name: &str) -> Option<(&str, Family)> {
    let stem = name.strip_suffix(".rules")?;
    let (stamp, tag) = stem.rsplit_once('.')?;
    let family = match tag {
        "v4" => Family::V4,
        "v6" => Family::V6,
        _ => return None,
    };
    (stamp.len() > 16 && stamp.ends_with('Z')).then_some((stamp, family))
}

/// Every backup in `dir`: (stamp, family, path), oldest first.
fn list(dir: &Path) -> Vec<(String, Family, PathBuf)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Family, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (stamp, family) = parse_name(&name)?;
            Some((stamp.to_string(), family, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Back up one family's save text; see [`backup_set`].
pub fn backup(dir: &Path, family: Family, save_text: &str) -> io::Result<PathBuf> {
    let mut set = backup_set(dir, &[(family, save_text.to_string())])?;
    set.pop()
        .map(|(_, p)| p)
        .ok_or_else(|| io::Error::other("no backup was written"))
}

/// Back up the save texts of one moment (one per family) as one set: files 0600 sharing one
/// time stamp. Older backups beyond the last [`KEEP`] of each family are removed.
pub fn backup_set(dir: &Path, texts: &[(Family, String)]) -> io::Result<Vec<(Family, PathBuf)>> {
    ensure_dir(dir)?;
    let mut stamp_now = stamp(SystemTime::now());
    // Two sets within the same nanosecond, or a clock that went back: never reuse a name, and
    // keep the newest set last in order.
    if let Some((last, _, _)) = list(dir).last()
        && *last >= stamp_now
    {
        stamp_now = format!("{last}1");
    }
    let mut out = Vec::new();
    for (family, text) in texts {
        let path = dir.join(format!("{stamp_now}.{}.rules", family_tag(*family)));
        write_private(&path, text).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot write the backup {}: {e}", path.display()),
            )
        })?;
        out.push((*family, path));
    }
    prune(dir);
    Ok(out)
}

/// Remove all but the last [`KEEP`] backups of each family.
fn prune(dir: &Path) {
    for family in Family::ALL {
        let mine: Vec<PathBuf> = list(dir)
            .into_iter()
            .filter(|(_, f, _)| *f == family)
            .map(|(_, _, p)| p)
            .collect();
        for p in mine.iter().take(mine.len().saturating_sub(KEEP)) {
            let _ = fs::remove_file(p);
        }
    }
}

/// The newest backup set: its file of each family, IPv4 first. Empty when there is none.
pub fn latest(dir: &Path) -> Vec<(Family, PathBuf)> {
    let all = list(dir);
    let Some((newest, _, _)) = all.last().cloned() else {
        return Vec::new();
    };
    let mut set: Vec<(Family, PathBuf)> = all
        .into_iter()
        .filter(|(s, _, _)| *s == newest)
        .map(|(_, f, p)| (f, p))
        .collect();
    set.sort_by_key(|(f, _)| *f != Family::V4);
    set
}

/// A fresh path under the temp dir for a unit test of the state directory (not created).
#[cfg(test)]
pub(crate) fn test_dir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "nfscope-state-{tag}-{}-{}",
        std::process::id(),
        stamp(SystemTime::now())
    ));
    let _ = fs::remove_dir_all(&p);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        test_dir(tag)
    }

    #[test]
    fn stamps_are_utc_and_sort() {
        use std::time::{Duration, UNIX_EPOCH};
        let t = |s| stamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(t(1_796_413_045), "20261204T193725.000000000Z");
        assert!(t(951_782_400).starts_with("20000229T"));
        assert!(t(9) < t(10));
    }

    #[test]
    fn sets_are_private_pruned_and_the_latest_is_found() {
        let dir = temp("sets");
        assert!(latest(&dir).is_empty());
        for i in 0..(KEEP + 5) {
            let texts = [
                (Family::V4, format!("# v4 {i}\n")),
                (Family::V6, format!("# v6 {i}\n")),
            ];
            backup_set(&dir, &texts).unwrap();
        }
        let one = backup(&dir, Family::V6, "# only v6\n").unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let all = list(&dir);
        for (_, _, p) in &all {
            let mode = fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let count = |f| all.iter().filter(|(_, g, _)| *g == f).count();
        assert_eq!((count(Family::V4), count(Family::V6)), (KEEP, KEEP));
        assert_eq!(latest(&dir), vec![(Family::V6, one)]);
        backup_set(
            &dir,
            &[(Family::V6, "b6".into()), (Family::V4, "b4".into())],
        )
        .unwrap();
        let l = latest(&dir);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].0, Family::V4);
        assert_eq!(fs::read_to_string(&l[0].1).unwrap(), "b4");
        assert_eq!(fs::read_to_string(&l[1].1).unwrap(), "b6");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_shared_directory_is_refused() {
        let dir = temp("shared");
        ensure_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let e = ensure_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("chmod 700"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_writes_replace() {
        let dir = temp("atomic");
        ensure_dir(&dir).unwrap();
        let p = dir.join("pending.json");
        write_atomic(&p, "one").unwrap();
        write_atomic(&p, "two").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn flag_wins_over_the_environment() {
        assert_eq!(state_dir(Some(Path::new("/x/y"))), PathBuf::from("/x/y"));
    }
}
