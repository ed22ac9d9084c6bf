//! The state directory, and the backups of the kernel's rule sets taken before every change.
//!
//! A backup is one family's `iptables-save -c` text in a file of its own, mode 0600, named
//! `00000042-20261204T195725.123456789Z.net4026531840.v4.rules`: a sequence number (one more
//! than the last, so names are unique and ordered whatever the clock does), the time it was
//! taken (UTC, for people), the network namespace whose kernel it was read from, the family.
//! The files of one backup set (both families, taken together) share the number. Each file is
//! written under a temporary name, fsynced, renamed without replacing anything, and read back.
//! The last [`KEEP`] of each family are kept.
//!
//! Backups of a `--file` commit (the file's old content) are another kind, in `file-backups/`
//! with their own numbers and pruning: `nfscope rollback` and the watchdog never see them.

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

/// Create the state directory (mode 0700) if it is missing, and check it (`check_dir`): the
/// watchdog, often root, restores whatever its pending file names.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    // The path is checked before anything is created in it, and again after.
    check_path(dir, false)?;
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
    check_path(dir, true)
}

/// Check an existing state directory before anything in it is trusted (`confirm`, `rollback`,
/// the watchdog, the UI's saved work). A directory that does not exist passes (it holds
/// nothing), as long as its path is sound.
pub fn check_dir(dir: &Path) -> io::Result<()> {
    check_path(dir, dir.exists())
}

fn refuse(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, msg)
}

/// The state directory's path is sound when no one but its user (and root) can change what it
/// leads to: every directory on the way is owned by root or the user and writable by no one
/// else, unless it is sticky (as /tmp is: others cannot rename what is not theirs); for root,
/// no component is a symbolic link at all (a link in a world-writable directory can be
/// swapped for another by its owner). With `exists`, the directory itself must be the user's
/// and private (not writable by group or others).
fn check_path(dir: &Path, exists: bool) -> io::Result<()> {
    let me = rustix::process::geteuid();
    let abs = std::path::absolute(dir)?;
    let mut cur = PathBuf::from("/");
    // The directory `cur` is in is sticky and others may write to it.
    let mut sticky_parent = false;
    let comps: Vec<std::path::Component> = abs.components().collect();
    for (i, comp) in comps.iter().enumerate() {
        match comp {
            std::path::Component::RootDir | std::path::Component::CurDir => {
                if i > 0 {
                    continue;
                }
            }
            std::path::Component::Normal(n) => cur.push(n),
            _ => {
                return Err(refuse(format!(
                    "the state directory {} has `..` in its path: give it plainly",
                    dir.display()
                )));
            }
        }
        let meta = match fs::symlink_metadata(&cur) {
            Ok(m) => m,
            // The rest is made by nfscope, under a directory checked already.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let last = i + 1 == comps.len();
        if meta.file_type().is_symlink() {
            if me.is_root() {
                let real = fs::canonicalize(&abs).map_or_else(
                    |_| String::new(),
                    |r| format!(" (it leads to {})", r.display()),
                );
                return Err(refuse(format!(
                    "{} in the state directory's path is a symbolic link{real}: as root, give a path without links, so that no one can swap one under it",
                    cur.display()
                )));
            }
            if meta.uid() != me.as_raw() && meta.uid() != 0 {
                return Err(refuse(format!(
                    "{} in the state directory's path is a symbolic link of another user's",
                    cur.display()
                )));
            }
            // Someone else's sticky directory may hold it, but then it must be ours.
            let target = fs::canonicalize(&cur)?;
            let rest: PathBuf = comps[i + 1..].iter().collect();
            return check_path(&target.join(rest), exists);
        }
        if !meta.is_dir() {
            return Err(refuse(format!(
                "{} in the state directory's path is not a directory",
                cur.display()
            )));
        }
        let owner_ok = meta.uid() == me.as_raw() || meta.uid() == 0;
        if !owner_ok || (sticky_parent && meta.uid() != me.as_raw() && meta.uid() != 0) {
            return Err(refuse(format!(
                "{} in the state directory's path belongs to another user (uid {}), who could swap what lies under it: choose another with --state-dir",
                cur.display(),
                meta.uid()
            )));
        }
        let mode = meta.permissions().mode();
        let others_write = mode & 0o022 != 0;
        if last {
            if exists && (meta.uid() != me.as_raw() || others_write) {
                return Err(refuse(format!(
                    "the state directory {0} can be written by another user: make it yours and private (chmod 700 {0}), or choose another with --state-dir",
                    dir.display()
                )));
            }
        } else if others_write && mode & 0o1000 == 0 {
            return Err(refuse(format!(
                "{} in the state directory's path can be written by others and is not sticky, so what lies under it could be swapped: choose another with --state-dir",
                cur.display()
            )));
        }
        sticky_parent = others_write && mode & 0o1000 != 0;
    }
    Ok(())
}

/// The state directory opened once, after `check_dir`: every file in it is then reached
/// relative to this handle (`openat`, `O_NOFOLLOW`), so that what a path leads to can no longer
/// change under the process that holds it (the watchdog holds one for its life).
#[derive(Debug)]
pub struct StateDir {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl StateDir {
    /// Check `dir` and open it; `NotFound` when it does not exist.
    pub fn open(dir: &Path) -> io::Result<StateDir> {
        check_dir(dir)?;
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::open(
            dir,
            OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(StateDir {
            fd,
            path: dir.to_path_buf(),
        })
    }

    /// `open`, `None` when the directory does not exist (it then holds nothing).
    pub fn open_existing(dir: &Path) -> io::Result<Option<StateDir>> {
        match StateDir::open(dir) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_at(&self, name: &str, flags: rustix::fs::OFlags) -> io::Result<fs::File> {
        use rustix::fs::{Mode, OFlags};
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| {
            if e == rustix::io::Errno::LOOP {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{} is a symbolic link: nfscope does not follow links in its state directory",
                        self.path.join(name).display()
                    ),
                )
            } else {
                io::Error::from(e)
            }
        })?;
        Ok(fs::File::from(fd))
    }

    /// The regular file `name`, at most `limit` bytes, as text (`ruleset::lossless`).
    pub fn read_text(&self, name: &str, limit: u64) -> io::Result<String> {
        use std::io::Read;
        let f = self.open_at(
            name,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK,
        )?;
        let meta = f.metadata()?;
        if !meta.is_file() || meta.len() > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is not a regular file of at most {limit} bytes",
                    self.path.join(name).display()
                ),
            ));
        }
        let mut bytes = Vec::new();
        f.take(limit).read_to_end(&mut bytes)?;
        Ok(crate::ruleset::lossless::decode(&bytes).into_owned())
    }

    /// Replace `name` with `text` atomically: a new temporary file (`O_EXCL`), fsynced, then
    /// renamed over it, all relative to the handle.
    pub fn write_atomic(&self, name: &str, text: &str) -> io::Result<()> {
        use rustix::fs::OFlags;
        let tmp = format!(".{name}.{}.tmp", std::process::id());
        let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), rustix::fs::AtFlags::empty());
        let mut f = self.open_at(&tmp, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL)?;
        f.write_all(&crate::ruleset::lossless::encode(text))?;
        f.sync_all()?;
        rustix::fs::renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(|e| {
            let _ = rustix::fs::unlinkat(&self.fd, tmp.as_str(), rustix::fs::AtFlags::empty());
            io::Error::from(e)
        })
    }

    /// Remove `name`; one that is not there is fine.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        match rustix::fs::unlinkat(&self.fd, name, rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `name` exists (a link counts, and is not followed).
    pub fn exists(&self, name: &str) -> io::Result<bool> {
        match rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// `name` opened for writing, created (0600) when missing: the lock file.
    pub fn open_lock(&self, name: &str) -> io::Result<fs::File> {
        self.open_at(
            name,
            rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CREATE,
        )
    }

    /// `name` opened for appending, created (0600) when missing: the audit log.
    pub fn open_append(&self, name: &str) -> io::Result<fs::File> {
        use rustix::fs::OFlags;
        self.open_at(name, OFlags::WRONLY | OFlags::CREATE | OFlags::APPEND)
    }

    /// Rename `from` to `to` in the directory (rotation of the audit log).
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to).map_err(io::Error::from)
    }

    /// The size of `name`, if it is there.
    pub fn size(&self, name: &str) -> Option<u64> {
        rustix::fs::statat(&self.fd, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .and_then(|st| u64::try_from(st.st_size).ok())
    }
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
    tmp.write_all(&crate::ruleset::lossless::encode(text))?;
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

/// What a backup set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The kernel's rule sets, read from this network namespace: what a rollback loads.
    Kernel,
    /// A file's old content, before a `--file` commit replaced it: kept, never loaded.
    File,
}

/// Where backups of `kind` live.
pub fn kind_dir(dir: &Path, kind: Kind) -> PathBuf {
    match kind {
        Kind::Kernel => dir.to_path_buf(),
        Kind::File => dir.join("file-backups"),
    }
}

/// This thread's network namespace as a name part: `net4026531840` (from
/// `/proc/thread-self/ns/net`, `net:[4026531840]`), `net-unknown` when it cannot be read.
pub fn netns_tag() -> String {
    fs::read_link("/proc/thread-self/ns/net")
        .ok()
        .and_then(|l| {
            let l = l.to_string_lossy().into_owned();
            let inode = l.strip_prefix("net:[")?.strip_suffix(']')?.to_string();
            inode
                .chars()
                .all(|c| c.is_ascii_digit())
                .then(|| format!("net{inode}"))
        })
        .unwrap_or_else(|| "net-unknown".into())
}

/// One backup file, as its name says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Listed {
    seq: u64,
    stamp: String,
    /// The network namespace (`net…`), `file` for a file's backup; empty for a name of the
    /// older form (`STAMP.v4.rules`), whose namespace is unknown.
    tag: String,
    family: Family,
    path: PathBuf,
}

/// A backup file's name cut into its parts: `SEQ-STAMP.TAG.FAMILY.rules`, or the older
/// `STAMP.FAMILY.rules` (sequence 0, no tag).
fn parse_name(name: &str) -> Option<(u64, String, String, Family)> {
    let stem = name.strip_suffix(".rules")?;
    let (rest, fam) = stem.rsplit_once('.')?;
    let family = match fam {
        "v4" => Family::V4,
        "v6" => Family::V6,
        _ => return None,
    };
    let valid_stamp = |s: &str| s.len() > 16 && s.ends_with('Z') && s.contains('T');
    if let Some((seq, tail)) = rest.split_once('-')
        && let Ok(seq) = seq.parse::<u64>()
        && let Some((stamp, tag)) = tail.rsplit_once('.')
        && valid_stamp(stamp)
        && !tag.is_empty()
    {
        return Some((seq, stamp.to_string(), tag.to_string(), family));
    }
    valid_stamp(rest).then(|| (0, rest.to_string(), String::new(), family))
}

/// Every backup in `dir` (one kind's directory), oldest first.
fn list(dir: &Path) -> Vec<Listed> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Listed> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (seq, stamp, tag, family) = parse_name(&name)?;
            Some(Listed {
                seq,
                stamp,
                tag,
                family,
                path: e.path(),
            })
        })
        .collect();
    out.sort();
    out
}

/// Back up one family's save text of the kernel; see [`backup_set`].
pub fn backup(dir: &Path, family: Family, save_text: &str) -> io::Result<PathBuf> {
    let mut set = backup_set(dir, Kind::Kernel, &[(family, save_text.to_string())])?;
    set.pop()
        .map(|(_, p)| p)
        .ok_or_else(|| io::Error::other("no backup was written"))
}

/// Write `text` as the new file `path` (mode 0600) whole or not at all: a temporary file in the
/// same directory, fsynced, renamed to `path` only if nothing has that name (`AlreadyExists`
/// otherwise), then read back and compared.
fn write_new_whole(path: &Path, text: &str) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no directory"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".backup.")
        .suffix(".tmp")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    // The very bytes the tool printed (ruleset::lossless).
    let bytes = crate::ruleset::lossless::encode(text);
    tmp.write_all(&bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    let back = fs::read(path)?;
    if back != *bytes {
        let _ = fs::remove_file(path);
        return Err(io::Error::other(format!(
            "{} does not read back as it was written ({} bytes of {})",
            path.display(),
            back.len(),
            bytes.len()
        )));
    }
    Ok(())
}

/// Back up the save texts of one moment (one per family) as one set of `kind`: files 0600
/// sharing one sequence number, each written whole (a full disk leaves no half backup) and
/// read back. Older backups beyond the last [`KEEP`] of each family (of that kind) are removed.
pub fn backup_set(
    dir: &Path,
    kind: Kind,
    texts: &[(Family, String)],
) -> io::Result<Vec<(Family, PathBuf)>> {
    ensure_dir(dir)?;
    let kdir = kind_dir(dir, kind);
    if kind != Kind::Kernel {
        ensure_dir(&kdir)?;
    }
    let tag = match kind {
        Kind::Kernel => netns_tag(),
        Kind::File => "file".to_string(),
    };
    let when = stamp(SystemTime::now());
    let mut seq = list(&kdir).last().map_or(0, |l| l.seq) + 1;
    // Another nfscope may take the same number at the same moment: the next one, then.
    'set: for _ in 0..100 {
        let mut out = Vec::new();
        for (family, text) in texts {
            let path = kdir.join(format!(
                "{seq:08}-{when}.{tag}.{}.rules",
                family_tag(*family)
            ));
            match write_new_whole(&path, text) {
                Ok(()) => out.push((*family, path)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    for (_, p) in &out {
                        let _ = fs::remove_file(p);
                    }
                    seq += 1;
                    continue 'set;
                }
                Err(e) => {
                    for (_, p) in &out {
                        let _ = fs::remove_file(p);
                    }
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot write the backup {}: {e}", path.display()),
                    ));
                }
            }
        }
        fs::File::open(&kdir)?.sync_all()?;
        prune(&kdir);
        return Ok(out);
    }
    Err(io::Error::other(format!(
        "cannot find a free backup name in {}",
        kdir.display()
    )))
}

/// Remove all but the last [`KEEP`] backups of each family.
fn prune(dir: &Path) {
    for family in Family::ALL {
        let mine: Vec<PathBuf> = list(dir)
            .into_iter()
            .filter(|l| l.family == family)
            .map(|l| l.path)
            .collect();
        for p in mine.iter().take(mine.len().saturating_sub(KEEP)) {
            let _ = fs::remove_file(p);
        }
    }
}

/// The newest backup set of this network namespace's kernel: its file of each family, IPv4
/// first. Empty when there is none (file backups, other namespaces' backups and backups of
/// the older unnamed form never count).
pub fn latest(dir: &Path) -> Vec<(Family, PathBuf)> {
    let here = netns_tag();
    let all: Vec<Listed> = list(dir).into_iter().filter(|l| l.tag == here).collect();
    let Some(newest) = all.last().map(|l| (l.seq, l.stamp.clone())) else {
        return Vec::new();
    };
    let mut set: Vec<(Family, PathBuf)> = all
        .into_iter()
        .filter(|l| (l.seq, l.stamp.clone()) == newest)
        .map(|l| (l.family, l.path))
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
            backup_set(&dir, Kind::Kernel, &texts).unwrap();
        }
        let one = backup(&dir, Family::V6, "# only v6\n").unwrap();
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let all = list(&dir);
        for l in &all {
            let mode = fs::metadata(&l.path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", l.path.display());
        }
        let count = |f| all.iter().filter(|l| l.family == f).count();
        assert_eq!((count(Family::V4), count(Family::V6)), (KEEP, KEEP));
        assert_eq!(latest(&dir), vec![(Family::V6, one)]);
        backup_set(
            &dir,
            Kind::Kernel,
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
    fn names_are_unique_and_ordered_whatever_the_clock_says() {
        let dir = temp("clock");
        ensure_dir(&dir).unwrap();
        // A backup from "the future" (a clock that was an hour ahead, then stepped back).
        let ahead = dir.join(format!(
            "00000005-29991231T000000.000000000Z.{}.v4.rules",
            netns_tag()
        ));
        fs::write(&ahead, "ahead").unwrap();
        let set = backup_set(&dir, Kind::Kernel, &[(Family::V4, "now".into())]).unwrap();
        assert!(
            set[0]
                .1
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("00000006-")
        );
        assert_eq!(latest(&dir), set, "the newest is the one written last");
        // The same moment again: another name, never an error.
        let again = backup_set(&dir, Kind::Kernel, &[(Family::V4, "again".into())]).unwrap();
        assert_ne!(again, set);
        assert_eq!(latest(&dir), again);
        // A name taken meanwhile by someone else is skipped.
        let next = dir.join(format!(
            "00000008-20000101T000000.000000000Z.{}.v4.rules",
            netns_tag()
        ));
        fs::write(&next, "theirs").unwrap();
        let third = backup_set(&dir, Kind::Kernel, &[(Family::V4, "third".into())]).unwrap();
        assert_eq!(fs::read_to_string(&next).unwrap(), "theirs");
        assert!(
            third[0]
                .1
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("00000009-")
        );
        // No temporary file is left.
        assert!(
            fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_backups_and_other_namespaces_never_count_as_the_kernels() {
        let dir = temp("kinds");
        ensure_dir(&dir).unwrap();
        let f = backup_set(&dir, Kind::File, &[(Family::V4, "file".into())]).unwrap();
        assert!(f[0].1.starts_with(dir.join("file-backups")));
        assert!(latest(&dir).is_empty());
        fs::write(
            dir.join("00000001-20261204T000000.000000000Z.net1.v4.rules"),
            "elsewhere",
        )
        .unwrap();
        fs::write(dir.join("20261204T000000.000000000Z.v4.rules"), "old form").unwrap();
        assert!(latest(&dir).is_empty());
        let k = backup_set(&dir, Kind::Kernel, &[(Family::V4, "here".into())]).unwrap();
        assert_eq!(latest(&dir), k);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_path_others_could_change_is_refused() {
        let base = temp("paths");
        fs::create_dir_all(&base).unwrap();
        fs::set_permissions(&base, fs::Permissions::from_mode(0o755)).unwrap();
        // In a sticky world-writable directory, our own directory is fine...
        let sticky = base.join("sticky");
        fs::create_dir(&sticky).unwrap();
        fs::set_permissions(&sticky, fs::Permissions::from_mode(0o1777)).unwrap();
        ensure_dir(&sticky.join("mine")).unwrap();
        // ...another user's is not (when we are root, who can give it away).
        if rustix::process::geteuid().is_root() {
            let theirs = sticky.join("theirs");
            fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            let e = check_dir(&theirs.join("state")).unwrap_err().to_string();
            assert!(e.contains("belongs to another user"), "{e}");
            let link = sticky.join("link");
            std::os::unix::fs::symlink(sticky.join("mine"), &link).unwrap();
            let e = ensure_dir(&link).unwrap_err().to_string();
            assert!(e.contains("symbolic link"), "{e}");
        }
        // A world-writable directory that is not sticky: nothing under it.
        let open = base.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let e = ensure_dir(&open.join("state")).unwrap_err().to_string();
        assert!(e.contains("not sticky"), "{e}");
        assert!(!open.join("state").exists(), "refused before it was made");
        let e = check_dir(Path::new("/tmp/../tmp/x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(".."), "{e}");
        fs::remove_dir_all(&base).unwrap();
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
