//! The audit log: every commit, apply, confirm and rollback, one JSON object a line, in
//! `DIR/audit.log` (mode 0600), and a one-line summary to the system log (LOG_AUTHPRIV, notice)
//! when `/dev/log` exists. `NFSCOPE_NO_SYSLOG=1` leaves the system log alone (for tests).

use super::backup;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::Path;
use std::time::SystemTime;

/// One record of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `2026-12-04T19:57:25.123Z`
    pub time: String,
    /// `commit`, `apply`, `confirm`, `rollback`, or what went wrong (`rollback-failed`).
    pub action: String,
    /// The user name (`root`), with the sudo user when there is one: `root (sudo from alice)`.
    pub user: String,
    /// `SSH_CONNECTION`'s client address and port, `192.0.2.7 52311`; absent when not over SSH.
    pub ssh_client: Option<String>,
    pub pid: u32,
    /// What changed (a diff), or why.
    pub detail: String,
}

/// The time now as `2026-12-04T19:57:25.123Z`.
pub fn iso_now() -> String {
    crate::time::utc_iso(SystemTime::now())
}

/// The user running this process, by name.
pub fn user() -> String {
    let uid = rustix::process::getuid().as_raw();
    let name = user_name(uid).unwrap_or_else(|| format!("uid {uid}"));
    match std::env::var("SUDO_USER") {
        Ok(s) if !s.is_empty() && s != name => format!("{name} (sudo from {s})"),
        _ => name,
    }
}

fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwuid_r writes into `pwd` and `buf`
    // (whose length it is told) and sets `result` to `pwd` on success, or to null.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// `SSH_CONNECTION` (`client port server port`) cut to the client: `192.0.2.7 52311`.
pub fn ssh_client() -> Option<String> {
    let v = std::env::var("SSH_CONNECTION").ok()?;
    let mut w = v.split_whitespace();
    match (w.next(), w.next()) {
        (Some(a), Some(p)) => Some(format!("{a} {p}")),
        (Some(a), None) => Some(a.to_string()),
        _ => None,
    }
}

/// A record for `action` by this process, now.
pub fn record(action: &str, detail: &str) -> Record {
    Record {
        time: iso_now(),
        action: action.to_string(),
        user: user(),
        ssh_client: ssh_client(),
        pid: std::process::id(),
        detail: detail.to_string(),
    }
}

/// When `audit.log` grows past this, it becomes `audit.log.1` (the one before that goes) and a
/// new one starts.
pub const ROTATE_AT: u64 = 4 << 20;

/// Whether the audit log can be written, checked before the kernel is touched: a commit that
/// could not be recorded is not made.
pub fn check_writable(dir: &Path) -> io::Result<()> {
    let sd = backup::StateDir::open(dir)?;
    open_log(&sd)?.sync_all()
}

fn open_log(sd: &backup::StateDir) -> io::Result<std::fs::File> {
    sd.open_append("audit.log").map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot write the audit log {}: {e}",
                sd.path().join("audit.log").display()
            ),
        )
    })
}

/// Append a record to `DIR/audit.log` and tell the system log. The file is what counts: its
/// error is returned; the system log is best effort.
pub fn log(dir: &Path, action: &str, detail: &str) -> io::Result<()> {
    backup::ensure_dir(dir)?;
    log_at(&backup::StateDir::open(dir)?, action, detail)
}

/// `log`, in a state directory opened already.
pub fn log_at(sd: &backup::StateDir, action: &str, detail: &str) -> io::Result<()> {
    let rec = record(action, detail);
    to_syslog(&rec);
    let mut line = serde_json::to_string(&rec).map_err(io::Error::other)?;
    line.push('\n');
    if sd.size("audit.log").is_some_and(|n| n >= ROTATE_AT) {
        let _ = sd.rename("audit.log", "audit.log.1");
    }
    let mut f = open_log(sd)?;
    // One write of one line: appends from several processes do not interleave.
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// Every record of `DIR/audit.log`, oldest first (lines that do not parse are skipped).
pub fn read(dir: &Path) -> Vec<Record> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The last `n` records of the audit log, oldest first: from `DIR/audit.log`, and from
/// `audit.log.1` (the log before its last rotation) when that one holds fewer. Only the ends
/// of the files are read (a few kilobytes for a few records, whatever the log's size); lines
/// that do not parse are skipped. No log yet is no record, not an error.
pub fn read_last(dir: &Path, n: usize) -> io::Result<Vec<Record>> {
    let mut out = last_records(&dir.join("audit.log"), n)?;
    if out.len() < n {
        let mut older = last_records(&dir.join("audit.log.1"), n - out.len())?;
        older.append(&mut out);
        out = older;
    }
    Ok(out)
}

/// The last `n` records of one file (none when it does not exist).
fn last_records(path: &Path, n: usize) -> io::Result<Vec<Record>> {
    use std::io::{Read, Seek, SeekFrom};
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    // Read backwards in growing chunks until the tail holds `n` whole lines (and the end of
    // the one before, so that the first is known to be whole), or the file's start.
    let mut from = len;
    let mut tail: Vec<u8> = Vec::new();
    let mut chunk: u64 = 16 << 10;
    loop {
        let start = from.saturating_sub(chunk);
        let mut buf = vec![0u8; usize::try_from(from - start).map_err(io::Error::other)?];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf)?;
        buf.extend_from_slice(&tail);
        tail = buf;
        from = start;
        let newlines = tail.iter().filter(|&&b| b == b'\n').count();
        if from == 0 || newlines > n {
            break;
        }
        chunk = chunk.saturating_mul(2);
    }
    let text = String::from_utf8_lossy(&tail);
    let mut lines: Vec<&str> = text.lines().collect();
    if from > 0 && !lines.is_empty() {
        // Cut in the middle: not a record.
        lines.remove(0);
    }
    let mut records: Vec<Record> = lines
        .iter()
        .rev()
        .filter_map(|l| serde_json::from_str(l).ok())
        .take(n)
        .collect();
    records.reverse();
    Ok(records)
}

/// The audit log's last records as read for a screen: the file, and its records (oldest
/// first) or why they could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tail {
    pub path: std::path::PathBuf,
    pub records: Result<Vec<Record>, String>,
}

/// [`read_last`] for a screen.
pub fn tail(dir: &Path, n: usize) -> Tail {
    Tail {
        path: dir.join("audit.log"),
        records: read_last(dir, n).map_err(|e| e.to_string()),
    }
}

/// The log's size and time of change, to tell when it changed (`None`: no log).
pub fn stamp(dir: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(dir.join("audit.log")).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// The system log's line for a record: who, from where, and the size of the detail.
pub fn summary(rec: &Record) -> String {
    let from = rec
        .ssh_client
        .as_deref()
        .map_or_else(String::new, |c| format!(" from {c}"));
    let first = rec.detail.lines().next().unwrap_or("");
    let more = rec.detail.lines().count().saturating_sub(1);
    let tail = if more > 0 {
        format!(" (+{more} lines in audit.log)")
    } else {
        String::new()
    };
    format!("{} by {}{from}: {first}{tail}", rec.action, rec.user)
}

pub fn to_syslog(rec: &Record) {
    if std::env::var_os("NFSCOPE_NO_SYSLOG").is_some_and(|v| v == "1")
        || !Path::new("/dev/log").exists()
    {
        return;
    }
    let msg: String = summary(rec).chars().filter(|&c| c != '\0').collect();
    let Ok(msg) = std::ffi::CString::new(msg) else {
        return;
    };
    // SAFETY: the ident is a 'static C string (openlog keeps the pointer); the format is a
    // literal "%s" with one C string argument, so the message is never read as a format.
    unsafe {
        libc::openlog(c"nfscope".as_ptr(), libc::LOG_PID, libc::LOG_AUTHPRIV);
        libc::syslog(
            libc::LOG_AUTHPRIV | libc::LOG_NOTICE,
            c"%s".as_ptr(),
            msg.as_ptr(),
        );
        libc::closelog();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_and_an_unwritable_one_is_found_before() {
        let dir = backup::test_dir("audit-rotate");
        backup::ensure_dir(&dir).unwrap();
        let big = "x".repeat(usize::try_from(ROTATE_AT).unwrap());
        std::fs::write(dir.join("audit.log"), &big).unwrap();
        check_writable(&dir).unwrap();
        log(&dir, "apply", "after the rotation").unwrap();
        assert_eq!(read(&dir).len(), 1);
        assert_eq!(
            std::fs::metadata(dir.join("audit.log.1")).unwrap().len(),
            ROTATE_AT
        );
        std::fs::remove_file(dir.join("audit.log")).unwrap();
        std::fs::create_dir(dir.join("audit.log")).unwrap();
        assert!(check_writable(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn records_are_appended_privately_and_read_back() {
        let dir = backup::test_dir("audit");
        log(&dir, "apply", "--- before\n+++ after\n+-A INPUT -j ACCEPT").unwrap();
        log(&dir, "confirm", "").unwrap();
        let recs = read(&dir);
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].action, "apply");
        assert!(recs[0].detail.contains("+-A INPUT"));
        assert_eq!(recs[1].action, "confirm");
        assert!(recs[0].time.ends_with('Z') && recs[0].time.contains('T'));
        assert!(!recs[0].user.is_empty());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("audit.log"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_last_records_are_read_from_the_end_across_a_rotation() {
        let dir = backup::test_dir("audit-last");
        assert!(read_last(&dir, 5).unwrap().is_empty(), "no log: no record");
        backup::ensure_dir(&dir).unwrap();
        // An old log, rotated away, and a current one with a line that does not parse and
        // records bigger than the first chunk.
        let rec = |action: &str, detail: String| {
            let mut r = record(action, "");
            r.detail = detail;
            serde_json::to_string(&r).unwrap() + "\n"
        };
        let old: String = (0..3).map(|i| rec("commit", format!("old {i}"))).collect();
        std::fs::write(dir.join("audit.log.1"), old).unwrap();
        let mut now = String::from("not json\n");
        for i in 0..40 {
            now.push_str(&rec("apply", format!("{i} {}", "x".repeat(2_000))));
        }
        std::fs::write(dir.join("audit.log"), &now).unwrap();
        let last = read_last(&dir, 3).unwrap();
        let firsts: Vec<&str> = last
            .iter()
            .map(|r| r.detail.split(' ').next().unwrap())
            .collect();
        assert_eq!(firsts, ["37", "38", "39"]);
        let all = read_last(&dir, 50).unwrap();
        assert_eq!(
            all.len(),
            43,
            "the rotated log fills up, the bad line skipped"
        );
        assert_eq!(all[0].detail, "old 0");
        assert!(all[42].detail.starts_with("39 "));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_summary_is_one_line() {
        let rec = Record {
            time: iso_now(),
            action: "rollback".into(),
            user: "root".into(),
            ssh_client: Some("192.0.2.7 52311".into()),
            pid: 1,
            detail: "no confirmation\nline two\nline three".into(),
        };
        assert_eq!(
            summary(&rec),
            "rollback by root from 192.0.2.7 52311: no confirmation (+2 lines in audit.log)"
        );
    }
}
