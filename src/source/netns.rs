//! Entering a named network namespace (`ip netns add NAME`) on the calling thread only. Sockets
//! stay bound to the namespace they were created in, so a netlink socket opened after `enter`
//! keeps talking to that namespace's kernel state from any thread. Used by the tests (which must
//! never touch the host's conntrack table) and, later, by `--netns`.

use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

/// Where `ip netns` keeps its namespaces; a name with a `/` is taken as a path.
fn path_of(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        PathBuf::from("/var/run/netns").join(name)
    }
}

/// Move the calling thread (only it) into the named network namespace.
pub fn enter(name: &str) -> io::Result<()> {
    let path = path_of(name);
    let file = std::fs::File::open(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot open network namespace {}: {e}", path.display()),
        )
    })?;
    // setns(2) for this thread only.
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| {
        let e = io::Error::from(e);
        io::Error::new(
            e.kind(),
            format!("cannot enter network namespace {name}: {e}"),
        )
    })
}

/// Run `f` on a fresh thread that has entered the namespace first, and return its result. The
/// caller's thread never changes namespace.
pub fn run_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let name = name.to_string();
    std::thread::Builder::new()
        .name("nfscope-netns".into())
        .spawn(move || {
            enter(&name)?;
            Ok(f())
        })?
        .join()
        .map_err(|_| io::Error::other("the thread inside the network namespace panicked"))?
}
