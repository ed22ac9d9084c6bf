//! Shared helpers for tests (and benches) that need a real kernel: a throwaway network namespace
//! that is always deleted, and the iptables tools run inside it. Nothing here ever touches the
//! machine's own network namespace: every tool runs as `ip netns exec NAME ...`.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of these helpers"
)]

pub mod ct;
pub mod screen;
pub mod tmux;

use nfscope::ruleset::Family;
use nfscope::source::Backend;
use nfscope::source::kernel::find_tool;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a run of a program left behind, for assertions that show all of it when they fail.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl From<Output> for Run {
    /// Standard output must be UTF-8 (it is what tests parse); standard error may be anything.
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The keys of a JSON object (a test fails on anything else).
pub fn keys(v: &serde_json::Value) -> std::collections::BTreeSet<&str> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// Every namespace made by these helpers starts with this.
const PREFIX: &str = "nfs-";

/// A network namespace of its own, with its loopback up, deleted on drop (panics included).
/// Names are unique per process and per call: `nfs-<test>-<pid>-<n>`.
pub struct NetNs {
    name: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static SWEEP: Once = Once::new();

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// Whether we run on CI, where a missing capability is a failure rather than a skip.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Skip the test (print why and return `None`), or fail it under CI=true.
pub fn skip<T>(why: &str) -> Option<T> {
    assert!(!on_ci(), "CI=true, so this cannot be skipped: {why}");
    eprintln!("skipped: {why}");
    None
}

fn ip() -> Command {
    Command::new(find_tool("ip").unwrap_or_else(|| "ip".into()))
}

/// Delete namespaces left behind by test processes that died without unwinding (SIGKILL, a
/// timeout): their names carry the pid, and the pid is gone.
fn sweep_stale() {
    let Ok(out) = ip().args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if !name.starts_with(PREFIX) {
            continue;
        }
        let mut parts = name.rsplit('-');
        let (_n, pid) = (parts.next(), parts.next());
        if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok())
            && pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = ip().args(["netns", "del", name]).status();
        }
    }
}

impl NetNs {
    /// A namespace for a test, or `None` (after saying the test is skipped) when this machine
    /// cannot make one: not root, or no network namespaces. Under CI=true that fails instead.
    pub fn for_test(test: &str) -> Option<NetNs> {
        match NetNs::create(test) {
            Ok(ns) => Some(ns),
            Err(why) => skip(&format!("needs root and network namespaces ({why})")),
        }
    }

    /// Make a namespace and bring its loopback up.
    pub fn create(test: &str) -> Result<NetNs, String> {
        if !is_root() {
            return Err("not running as root".into());
        }
        SWEEP.call_once(sweep_stale);
        let short: String = test
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{short}-{}-{n}", std::process::id());
        let out = ip()
            .args(["netns", "add", &name])
            .output()
            .map_err(|e| format!("cannot run `ip`: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`ip netns add {name}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // From here on the guard owns it: any failure below still deletes it.
        let ns = NetNs { name };
        let lo = ns.exec(&["ip", "link", "set", "lo", "up"]);
        if !lo.status.success() {
            return Err(format!(
                "cannot bring lo up: {}",
                String::from_utf8_lossy(&lo.stderr).trim()
            ));
        }
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command `ip netns exec NAME program args...`, the program looked up on this host.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = ip();
        c.args(["netns", "exec", &self.name]);
        if let Some((program, rest)) = args.split_first() {
            c.arg(find_tool(program).unwrap_or_else(|| program.into()));
            c.args(rest);
        }
        c
    }

    /// Run a program inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {}: {e}", self.name))
    }

    /// Run a program inside the namespace with `input` on its standard input.
    pub fn exec_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {}: {e}", self.name));
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_string();
        // Written from a thread: a large input must not deadlock against a full stdout pipe.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let out = child.wait_with_output().expect("the child runs");
        let _ = writer.join();
        out
    }

    /// Run a program inside the namespace; panic with its stderr unless it succeeds.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?} failed in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Load a rule set with `iptables-{nft,legacy}-restore -w -c` (or ip6tables-). `-w`: the
    /// legacy tools share one lock file across namespaces, and tests run in parallel.
    pub fn restore(&self, family: Family, backend: Backend, text: &str) {
        let tool = tool_name(family, backend, "restore");
        let out = self.exec_with_input(&[&tool, "-w", "-c"], text);
        assert!(
            out.status.success(),
            "{tool} -c failed in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// What `iptables-{nft,legacy}-save -c` (or ip6tables-) prints in the namespace.
    pub fn save(&self, family: Family, backend: Backend) -> String {
        self.exec_ok(&[&tool_name(family, backend, "save"), "-c"])
    }

    /// Run `iptables-{nft,legacy} -w` (or ip6tables-) with arguments.
    pub fn iptables(&self, family: Family, backend: Backend, args: &[&str]) -> String {
        let tool = tool_name(family, backend, "");
        let mut all = vec![tool.as_str(), "-w"];
        all.extend_from_slice(args);
        self.exec_ok(&all)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let ok = ip()
            .args(["netns", "del", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "warning: could not delete network namespace {} (ip netns del {0})",
                self.name
            );
        }
    }
}

/// A namespace for a test of native nftables tables, `script` loaded with `nft -f`; `None`
/// (skipped, failed on CI) without the nf_tables tools or nft.
pub fn nft_netns(tag: &str, script: &str) -> Option<NetNs> {
    if !have_tools(Backend::Nft) {
        return None;
    }
    if nfscope::source::kernel::find_tool("nft").is_none() {
        return skip("needs nft (apt-get install nftables)");
    }
    let ns = NetNs::for_test(tag)?;
    let out = ns.exec_with_input(&["nft", "-f", "-"], script);
    assert!(out.status.success(), "{out:?}");
    Some(ns)
}

/// The rule Docker adds to nat when it starts: what another program changes meanwhile.
pub const DOCKER_NAT_RULE: &[&str] = &[
    "-t",
    "nat",
    "-A",
    "POSTROUTING",
    "-s",
    "172.17.0.0/16",
    "-j",
    "MASQUERADE",
];

/// `iptables-nft-save`, `ip6tables-legacy-restore`, `iptables-nft` (empty `what`) ...
pub fn tool_name(family: Family, backend: Backend, what: &str) -> String {
    let b = match backend {
        Backend::Nft => "nft",
        Backend::Legacy => "legacy",
    };
    if what.is_empty() {
        format!("{}-{b}", family.tool_stem())
    } else {
        format!("{}-{b}-{what}", family.tool_stem())
    }
}

/// Whether the tools of a backend are installed; when not, the test is skipped (failed on CI).
pub fn have_tools(backend: Backend) -> bool {
    let missing: Vec<String> = Family::ALL
        .iter()
        .flat_map(|&f| ["save", "restore", ""].map(|w| tool_name(f, backend, w)))
        .filter(|t| find_tool(t).is_none())
        .collect();
    if missing.is_empty() {
        true
    } else {
        skip::<()>(&format!("needs {}", missing.join(", ")));
        false
    }
}

/// For the kernel benches: a namespace holding `synth::kube_proxy(rules)` (IPv4), loaded with
/// the backend's restore tool, the load's time printed. `None`, after printing why, when the
/// backend's tools are missing or no namespace can be made (a bench skips, on CI too).
pub fn kube_proxy_netns(bench: &str, backend: Backend, rules: usize) -> Option<NetNs> {
    let present = Family::ALL.iter().all(|&f| {
        ["save", "restore"]
            .iter()
            .all(|w| find_tool(&tool_name(f, backend, w)).is_some())
    });
    if !present {
        println!("{}: skipped (tools not installed)", backend.label());
        return None;
    }
    let ns = match NetNs::create(&format!("{bench}{}", backend.label())) {
        Ok(ns) => ns,
        Err(why) => {
            println!("skipped: needs root and network namespaces ({why})");
            return None;
        }
    };
    let text = nfscope::ruleset::synth::kube_proxy(rules);
    let start = std::time::Instant::now();
    ns.restore(Family::V4, backend, &text);
    println!(
        "{}: loaded {rules} rules in {:.0} ms",
        backend.label(),
        start.elapsed().as_secs_f64() * 1e3
    );
    Some(ns)
}

/// The lines of a save text that are not `#` comments, per table, in the order written; tables
/// are sorted by name (the nft backend lists tables in a fixed order, the legacy one most
/// recently loaded first).
pub fn tables_of(text: &str) -> Vec<(String, Vec<String>)> {
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            tables.push((name.to_string(), Vec::new()));
        }
        if let Some((_, lines)) = tables.last_mut() {
            lines.push(line.to_string());
        }
    }
    tables.sort_by(|a, b| a.0.cmp(&b.0));
    tables
}

/// Test address number `n` of a family, as the save tools print it (`10.0.0.n/32`, `fd00::n/128`).
pub fn host(family: Family, n: u8) -> String {
    match family {
        Family::V4 => format!("10.0.0.{n}/32"),
        Family::V6 => format!("fd00::{n}/128"),
    }
}

/// The ICMP protocol's name in a family's rules.
pub fn icmp(family: Family) -> &'static str {
    match family {
        Family::V4 => "icmp",
        Family::V6 => "ipv6-icmp",
    }
}
