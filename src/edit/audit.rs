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
