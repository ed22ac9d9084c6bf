//! Reading the files users and other processes hand nfscope (`--file`, the state directory's
//! files, backups) without trusting what they are: never more than a bound (`/dev/zero` given
//! as a rule file once grew nfscope to 800 MB), and never blocking on a FIFO or a device (a FIFO
//! named `staging.json` once hung the TUI at start). Only regular files are read.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The most a rule set file or a backup may hold: far beyond 100,000 rules.
pub const RULES_LIMIT: u64 = 256 << 20;

/// The most a small state file (`pending.json`, `outcome.json`) may hold.
pub const SMALL_LIMIT: u64 = 1 << 20;

/// The bytes of the regular file `path`, at most `limit` of them: an error, in a sentence
/// naming the file, for anything else (a FIFO, a device, a directory, a file too big).
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    read_with(path, limit, 0)
}

/// `read`, for a file of the state directory (a pending commit, a backup, saved work): a
/// symbolic link in its place is refused, not followed (`O_NOFOLLOW`).
pub fn read_state(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    read_with(path, limit, libc::O_NOFOLLOW).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is a symbolic link: nfscope does not follow links in its state directory",
                    path.display()
                ),
            )
        } else {
            e
        }
    })
}

/// `read_state`, as text (`ruleset::lossless`).
pub fn read_state_text(path: &Path, limit: u64) -> io::Result<String> {
    Ok(crate::ruleset::lossless::decode_owned(read_state(
        path, limit,
    )?))
}

fn read_with(path: &Path, limit: u64, flags: i32) -> io::Result<Vec<u8>> {
    // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | flags)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        let what = if meta.file_type().is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, a socket or a device)"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {what}: nfscope reads only regular files",
                path.display()
            ),
        ));
    }
    if meta.len() > limit {
        return Err(too_big(path, limit));
    }
    let mut out = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow while it is read: the bound holds all the same.
    f.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if u64::try_from(out.len()).unwrap_or(u64::MAX) > limit {
        return Err(too_big(path, limit));
    }
    Ok(out)
}

fn too_big(path: &Path, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} is larger than the {} MiB nfscope reads",
            path.display(),
            limit >> 20
        ),
    )
}

/// `read`, as text: bytes that are not UTF-8 are kept as they are (`ruleset::lossless`).
pub fn read_text(path: &Path, limit: u64) -> io::Result<String> {
    Ok(crate::ruleset::lossless::decode_owned(read(path, limit)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_big_files_are_refused_at_once() {
        let dir = std::env::temp_dir().join(format!("nfscope-bounded-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let e = read(&fifo, RULES_LIMIT).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = read(Path::new("/dev/zero"), RULES_LIMIT)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let big = dir.join("big");
        std::fs::write(&big, vec![b'#'; 2048]).unwrap();
        let e = read(&big, 1024).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        assert_eq!(read(&big, 4096).unwrap().len(), 2048);
        std::fs::write(&big, b"ok\n\xff\n").unwrap();
        let text = read_text(&big, 4096).unwrap();
        assert_eq!(&*crate::ruleset::lossless::encode(&text), b"ok\n\xff\n");
        // In the state directory, a link is refused, not followed.
        let link = dir.join("pending.json");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert!(read(&link, 4096).is_ok());
        let e = read_state(&link, 4096).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
