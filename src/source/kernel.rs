//! The kernel source: runs `iptables-save -c` and `ip6tables-save -c` (or their -nft/-legacy
//! variants) by argv, never through a shell, and parses what they print. Detects the backend the
//! system tools use and warns when the other backend holds rules too.

use super::{Backend, FamilyData, Origin, RulesetSnapshot, SourceError};
use crate::ruleset::{self, Family};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

/// Directories searched after $PATH: non-root users often lack the sbin folders in theirs.
const EXTRA_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"];

/// Find an executable by name on $PATH or in the sbin folders.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The save tool's name for a family and backend (`None`: the system default, `iptables-save`).
pub fn save_tool(family: Family, backend: Option<Backend>) -> String {
    let stem = family.tool_stem();
    match backend {
        None => format!("{stem}-save"),
        Some(Backend::Nft) => format!("{stem}-nft-save"),
        Some(Backend::Legacy) => format!("{stem}-legacy-save"),
    }
}

/// What a `--version` line says about the backend: "(nf_tables)" or "(legacy)"; the legacy tools
/// of older releases print no suffix at all.
pub fn backend_from_version(out: &str) -> Backend {
    if out.contains("nf_tables") {
        Backend::Nft
    } else {
        Backend::Legacy
    }
}

/// The command that runs `tool` (looked up on this host) in this process's network namespace,
/// or, with `netns`, in the named one through `ip netns exec NAME` (still argv, no shell).
pub fn tool_command(tool: &str, netns: Option<&str>) -> Result<Command, SourceError> {
    let path = find_tool(tool).ok_or_else(|| SourceError::ToolMissing { tool: tool.into() })?;
    Ok(match netns {
        None => Command::new(path),
        Some(ns) => {
            let ip = find_tool("ip").ok_or_else(|| SourceError::ToolFailed {
                tool: tool.into(),
                status: "-".into(),
                stderr: format!(
                    "`ip` (iproute2) was not found, and it is needed to enter network namespace {ns:?}"
                ),
            })?;
            let mut c = Command::new(ip);
            c.args(["netns", "exec", ns]).arg(path);
            c
        }
    })
}

fn spawn_failed(tool: &str, e: &std::io::Error) -> SourceError {
    SourceError::ToolFailed {
        tool: tool.into(),
        status: "-".into(),
        stderr: e.to_string(),
    }
}

/// Ask the system's `iptables-save` which backend it is.
pub fn detect_backend() -> Result<Backend, SourceError> {
    detect_backend_in(None)
}

/// `detect_backend`, with the tool run inside a network namespace when one is given.
pub fn detect_backend_in(netns: Option<&str>) -> Result<Backend, SourceError> {
    detect_backend_with(Family::V4, netns)
}

/// The backend as the family's own save tool says (`ip6tables-save --version` for IPv6), so
/// that reading one family runs none of the other's tools.
pub fn detect_backend_with(family: Family, netns: Option<&str>) -> Result<Backend, SourceError> {
    let out = run_tool(&save_tool(family, None), "--version", netns)?;
    Ok(backend_from_version(&String::from_utf8_lossy(&out)))
}

/// Run `tool arg` (in `netns` when given) and return its standard output, or why it failed.
fn run_tool(tool: &str, arg: &str, netns: Option<&str>) -> Result<Vec<u8>, SourceError> {
    let out = tool_command(tool, netns)?
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_failed(tool, &e))?;
    if !out.status.success() {
        return Err(tool_error(
            tool,
            out.status,
            &String::from_utf8_lossy(&out.stderr),
        ));
    }
    Ok(out.stdout)
}

/// Turn a failed run into a sentence: the first line of what the tool said.
fn tool_error(tool: &str, status: ExitStatus, stderr: &str) -> SourceError {
    match failure(tool, status, stderr) {
        SourceError::ToolFailed {
            tool,
            status,
            stderr,
        } => SourceError::ToolFailed {
            tool,
            status,
            stderr: first_line(&stderr),
        },
        e => e,
    }
}

/// A tool that ran and failed, classified by a fact rather than by its words: without
/// CAP_NET_ADMIN (not root, or the capability dropped) the tools cannot reach netfilter, and
/// that is a permission problem whatever they printed; otherwise the failure is the tool's, with
/// all it said (trimmed).
pub(crate) fn failure(tool: &str, status: ExitStatus, stderr: &str) -> SourceError {
    if !super::has_net_admin() {
        return SourceError::PermissionDenied { tool: tool.into() };
    }
    SourceError::ToolFailed {
        tool: tool.into(),
        status: status
            .code()
            .map_or_else(|| "signal".into(), |c| c.to_string()),
        stderr: stderr.trim().to_string(),
    }
}

/// Run a save tool and return its standard output.
pub fn run_save(tool: &str) -> Result<String, SourceError> {
    run_save_in(tool, None)
}

/// `run_save`, inside a network namespace when one is given.
pub fn run_save_in(tool: &str, netns: Option<&str>) -> Result<String, SourceError> {
    // Bytes that are not UTF-8 (a comment's `\xff`) are kept, not refused (ruleset::lossless).
    Ok(ruleset::lossless::decode_owned(run_tool(
        tool, "-c", netns,
    )?))
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// One family as a save tool printed it.
#[derive(Debug)]
pub struct Saved {
    pub ruleset: ruleset::Ruleset,
    /// The tool said legacy tables exist too. iptables-nft 1.8.9 says so on stderr (older
    /// releases on stdout, as a `#` line); both are looked at.
    pub legacy_tables_hint: bool,
}

const LEGACY_HINT: &str = "iptables-legacy tables present";

/// Run a save tool (`-c`) and parse what it prints while it prints it. On a large rule set the
/// tool writes for a while (100+ ms for 50k rules); parsing each chunk as it arrives, on the
/// other core, hides most of the parse behind the tool. A failed run wins over a parse error
/// of its partial output.
pub fn save_and_parse(
    tool: &str,
    family: Family,
    netns: Option<&str>,
) -> Result<Saved, SourceError> {
    let mut child = tool_command(tool, netns)?
        .arg("-c")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_failed(tool, &e))?;
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(spawn_failed(
            tool,
            &std::io::Error::other("no pipe to the tool"),
        ));
    };
    // stderr is read on its own so that a chatty tool can never block on a full pipe.
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    // stdout is drained by a thread into a channel so the tool never waits for the parser.
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let out_reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });

    let mut feed = Feeder::new(family);
    for chunk in rx {
        feed.chunk(&chunk);
    }
    let _ = out_reader.join();
    let err_bytes = err_reader.join().unwrap_or_default();
    let status = child.wait().map_err(|e| spawn_failed(tool, &e))?;
    let stderr_text = String::from_utf8_lossy(&err_bytes);
    if !status.success() {
        return Err(tool_error(tool, status, &stderr_text));
    }
    let (result, hint) = feed.finish();
    let ruleset = result.map_err(|e| SourceError::Parse {
        what: format!("{tool} output"),
        message: e.to_string(),
    })?;
    Ok(Saved {
        ruleset,
        legacy_tables_hint: hint || stderr_text.contains(LEGACY_HINT),
    })
}

/// Cuts a byte stream into lines for the parser; keeps the first error and ignores the rest.
struct Feeder {
    parser: ruleset::Parser,
    /// The start of a line whose end has not arrived yet.
    carry: Vec<u8>,
    error: Option<ruleset::ParseError>,
    hint: bool,
}

impl Feeder {
    fn new(family: Family) -> Self {
        Feeder {
            parser: ruleset::Parser::new(family),
            carry: Vec::new(),
            error: None,
            hint: false,
        }
    }

    fn chunk(&mut self, chunk: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let Some(last) = chunk.iter().rposition(|&b| b == b'\n') else {
            self.carry.extend_from_slice(chunk);
            return;
        };
        let (whole, rest) = chunk.split_at(last + 1);
        if self.carry.is_empty() {
            self.lines(whole);
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(whole);
            self.lines(&joined);
        }
        self.carry.extend_from_slice(rest);
    }

    fn lines(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        let text = ruleset::lossless::decode(bytes);
        for line in text.lines() {
            if line.starts_with('#') && line.contains(LEGACY_HINT) {
                self.hint = true;
            }
            if let Err(e) = self.parser.line(line) {
                self.error = Some(e);
                return;
            }
        }
    }

    fn finish(mut self) -> (Result<ruleset::Ruleset, ruleset::ParseError>, bool) {
        if !self.carry.is_empty() {
            let last = std::mem::take(&mut self.carry);
            self.lines(&last);
        }
        let result = match self.error {
            Some(e) => Err(e),
            None => self.parser.finish(),
        };
        (result, self.hint)
    }
}

/// Reads both families from the kernel, keeping what it learnt between polls.
pub struct KernelReader {
    forced: Option<Backend>,
    /// The families read (both, unless the CLI asked for one).
    families: Vec<Family>,
    backend: Option<Backend>,
    netns: Option<String>,
    polls: u64,
    other_backend_warning: Option<String>,
    /// Whether the last poll's tools said legacy tables exist.
    legacy_hint: bool,
    /// iptables-nft: what the save tools printed at an nf_tables generation; while the
    /// generation stays, a refresh reads only the counters, over netlink.
    cache: Option<NftCache>,
    /// The last refresh read only the counters (the generation had not moved).
    counters_only: bool,
    /// Native nftables base chains filtering on the hooks of the iptables rules, in a sentence.
    native_warning: Option<String>,
    /// The native nftables tables as last read, with their counters.
    native: Vec<super::native::NativeTable>,
    /// Their rules' texts, as `nft -a -s list table` printed them at an nf_tables generation:
    /// taken again only when the generation moves.
    native_texts: Option<NativeTexts>,
    /// Legacy backend: nf_tables' generation at the last look at native tables.
    native_generation: Option<u32>,
    /// nf_tables' change events, to name who changed the rules (opened at the first read).
    monitor: Option<super::nft_netlink::Monitor>,
    changed_by: Option<String>,
}

/// The rules' texts of the native tables at one nf_tables generation, or why `nft` could not
/// print them.
struct NativeTexts {
    /// `None` when the rule set changed while nft printed them: they are listed again.
    generation: Option<u32>,
    texts: std::collections::HashMap<(String, String, String, u64), String>,
    error: Option<String>,
}

/// The families as read at one nf_tables generation.
struct NftCache {
    generation: u32,
    v4: FamilyData,
    v6: FamilyData,
}

/// How often (in polls) to look at the other backend; it costs a process per family.
const OTHER_BACKEND_EVERY: u64 = 10;

impl KernelReader {
    pub fn new(forced: Option<Backend>) -> Self {
        KernelReader {
            forced,
            families: Family::ALL.to_vec(),
            backend: forced,
            netns: None,
            polls: 0,
            other_backend_warning: None,
            legacy_hint: false,
            cache: None,
            counters_only: false,
            native_warning: None,
            native: Vec::new(),
            native_texts: None,
            native_generation: None,
            monitor: None,
            changed_by: None,
        }
    }

    /// nf_tables read over netlink in the namespace read, when it can be had.
    fn nft_read(&self) -> Option<super::nft_netlink::NftRuleset> {
        match &self.netns {
            Some(n) => super::netns::run_in(n, super::nft_netlink::read_with_sets)
                .ok()?
                .ok(),
            None => super::nft_netlink::read_with_sets().ok(),
        }
    }

    /// The native tables of `nft`, given the iptables rule sets read beside it (on nf_tables,
    /// the tables its save tools printed are iptables'; on legacy every nf_tables table is
    /// native): their structure and counters from `nft`, their rules' texts from `nft -a -s
    /// list table` when the generation moved since they were last listed; and the warning.
    fn read_native(
        &mut self,
        nft: &super::nft_netlink::NftRuleset,
        v4: &FamilyData,
        v6: &FamilyData,
        backend: Backend,
    ) {
        let rulesets: Vec<&ruleset::Ruleset> =
            [v4, v6].iter().filter_map(|d| d.ruleset()).collect();
        let iptables: std::collections::BTreeSet<(Family, String)> = if backend == Backend::Nft {
            rulesets
                .iter()
                .flat_map(|rs| rs.tables.iter().map(|t| (rs.family, t.name.clone())))
                .collect()
        } else {
            Default::default()
        };
        let bare = super::native::native_tables_with(nft, &Default::default(), &iptables);
        if bare.is_empty() {
            self.native_texts = None;
        } else if self
            .native_texts
            .as_ref()
            .is_none_or(|t| t.generation != Some(nft.generation))
        {
            let tables: Vec<(&str, &str)> = bare
                .iter()
                .map(|t| (t.family.as_str(), t.name.as_str()))
                .collect();
            let (texts, error) = match list_native(&tables, self.netns.as_deref()) {
                Ok(listing) => (super::native::rule_texts(&listing), None),
                Err(e) => (Default::default(), Some(e)),
            };
            // Kept only when nothing changed while nft printed them.
            let generation = Some(nft.generation).filter(|g| self.nft_generation() == Some(*g));
            self.native_texts = Some(NativeTexts {
                generation,
                texts,
                error,
            });
        }
        self.native = match &self.native_texts {
            Some(t) => super::native::native_tables_with(nft, &t.texts, &iptables),
            None => bare,
        };
        self.native_warning = super::native::warning(&self.native, &rulesets);
    }

    /// Who last changed nf_tables, from the change events since the last read (subscribed at
    /// the first read: changes before it are not known). nfscope's own commits count too: the
    /// process named is the tool that committed (`iptables-nft-re`).
    fn note_changes(&mut self) {
        if self.monitor.is_none() {
            self.monitor = match &self.netns {
                Some(n) => super::netns::run_in(n, super::nft_netlink::Monitor::open)
                    .ok()
                    .and_then(Result::ok),
                None => super::nft_netlink::Monitor::open().ok(),
            };
            return;
        }
        let Some(m) = self.monitor.as_mut() else {
            return;
        };
        let changes = m.changes();
        // The clock time alone: the header has little room.
        let when = crate::time::local_time(crate::time::unix_ms(SystemTime::now()));
        let when = when.split(' ').next().unwrap_or_default().to_string();
        if let Some(e) = changes.events.last() {
            let who = match &e.process {
                Some(p) => crate::format::visible(p).into_owned(),
                None => "a program".into(),
            };
            self.changed_by = Some(format!("changed by {who} at {when}"));
        } else if changes.lost {
            self.changed_by = Some(format!("changed at {when}"));
        }
    }

    /// nf_tables read again for the native tables' counters: their chains' rules only.
    fn native_counters(&self) -> Option<super::nft_netlink::NftRuleset> {
        let tables: std::collections::BTreeSet<(String, String)> = self
            .native
            .iter()
            .map(|t| (t.family.clone(), t.name.clone()))
            .collect();
        let read = move || {
            super::nft_netlink::read_of(&|c, _| {
                tables.contains(&(
                    super::nft_netlink::family_name(c.family).to_string(),
                    c.table.clone(),
                ))
            })
        };
        match &self.netns {
            Some(n) => super::netns::run_in(n, read).ok()?.ok(),
            None => read().ok(),
        }
    }

    /// Whether the last refresh read only the counters, over netlink, because nf_tables'
    /// generation had not moved since the save tools last ran.
    pub fn last_read_counters_only(&self) -> bool {
        self.counters_only
    }

    /// nf_tables' generation in the namespace read, when it can be had.
    fn nft_generation(&self) -> Option<u32> {
        match &self.netns {
            Some(n) => super::netns::run_in(n, super::nft_netlink::generation)
                .ok()?
                .ok(),
            None => super::nft_netlink::generation().ok(),
        }
    }

    /// The cached families with the counters as they are now (read over netlink at the same
    /// generation, `nft_netlink::read_counters_into`); `None` when they cannot be had or do not
    /// line up.
    fn counters_now(&self, cache: &NftCache) -> Option<(FamilyData, FamilyData)> {
        let sets: Vec<ruleset::Ruleset> = [&cache.v4, &cache.v6]
            .into_iter()
            .filter_map(|d| d.ruleset().cloned())
            .collect();
        let g = cache.generation;
        let read = move |mut sets: Vec<ruleset::Ruleset>| {
            let ok = super::nft_netlink::read_counters_into(&mut sets, g).unwrap_or(false);
            (ok, sets)
        };
        let (lined_up, sets) = match &self.netns {
            Some(n) => super::netns::run_in(n, move || read(sets)).ok()?,
            None => read(sets),
        };
        if !lined_up {
            return None;
        }
        let mut fresh = sets.into_iter();
        let mut take = |d: &FamilyData| match d {
            FamilyData::Loaded(_) => fresh.next().map(FamilyData::Loaded),
            other => Some(other.clone()),
        };
        Some((take(&cache.v4)?, take(&cache.v6)?))
    }

    /// Read the rules of a named network namespace (`ip netns add NAME`) instead of this
    /// process's own: every tool then runs as `ip netns exec NAME tool ...`.
    pub fn in_netns(mut self, name: impl Into<String>) -> Self {
        self.netns = Some(name.into());
        self
    }

    /// Read only these families: the other family's tools never run.
    pub fn families(mut self, families: &[Family]) -> Self {
        self.families = families.to_vec();
        self
    }

    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    fn backend(&mut self) -> Backend {
        if let Some(b) = self.backend {
            return b;
        }
        let family = self.families.first().copied().unwrap_or(Family::V4);
        let b = detect_backend_with(family, self.netns.as_deref()).unwrap_or(Backend::Nft);
        self.backend = Some(b);
        b
    }

    /// One family's save text as the tool printed it, unparsed (for `rules --format save` of a
    /// whole family: the text is what iptables-restore wants, and parsing and writing it back
    /// would give the same bytes), and the warnings a read would give.
    pub fn save_text(&mut self, family: Family) -> (Result<String, SourceError>, Vec<String>) {
        let backend = self.backend();
        let text = run_save_in(&save_tool(family, self.forced), self.netns.as_deref());
        let mut warnings: Vec<String> =
            other_backend_warning(backend, self.netns.as_deref(), &[family])
                .into_iter()
                .collect();
        // A fast search first: the text of 50,000 rules is 10 MB, and the line is rare.
        if let Ok(t) = &text
            && t.contains("incompatible")
        {
            warnings.extend(incompatible_warnings(
                family,
                &crate::ruleset::incompatible_tables_in(t.lines()),
            ));
        }
        (text, warnings)
    }

    /// Read both families now.
    pub fn read(&mut self, generation: u64) -> RulesetSnapshot {
        let backend = self.backend();
        let start = Instant::now();
        self.note_changes();
        // iptables-nft: while nf_tables' generation stays, the rules are what the save tools
        // printed last; only the counters moved, and they are read over netlink.
        let nft_gen = if backend == Backend::Nft {
            self.nft_generation()
        } else {
            None
        };
        if let (Some(g), Some(cache)) = (nft_gen, &self.cache)
            && cache.generation == g
            && let Some((v4, v6)) = self.counters_now(cache)
        {
            // Native tables' counters: their chains alone, when there are any (their texts
            // and the warning stay the whole read's: at the same generation, the same tables).
            if !self.native.is_empty()
                && let Some(nft) = self.native_counters()
            {
                // The sets are not read again: at the same generation they are the same.
                let sets: Vec<_> = self.native.iter().map(|t| t.sets.clone()).collect();
                self.read_native(&nft, &v4, &v6, backend);
                for (t, s) in self.native.iter_mut().zip(sets) {
                    t.sets = s;
                }
            }
            // The save tools are not run, so their hint that legacy tables exist is not heard:
            // look at the legacy tables' names in procfs instead, as iptables-nft itself does.
            let hint = !no_legacy_tables(self.netns.as_deref());
            if hint && !self.legacy_hint {
                self.polls = 0;
            }
            self.legacy_hint = hint;
            let warnings = self.warnings(backend, hint, &v4, &v6);
            self.counters_only = true;
            return RulesetSnapshot {
                generation,
                origin: Origin::Kernel { backend },
                taken_at: SystemTime::now(),
                took: start.elapsed(),
                v4,
                v6,
                warnings,
                nft_generation: Some(g),
                native: self.native.clone(),
                changed_by: self.changed_by.clone(),
            };
        }
        self.counters_only = false;
        let forced = self.forced;
        let netns = self.netns.clone();
        let mut hint = false;
        let wanted = self.families.clone();
        let mut read_family = |family: Family| -> FamilyData {
            if !wanted.contains(&family) {
                return FamilyData::Absent;
            }
            match save_and_parse(&save_tool(family, forced), family, netns.as_deref()) {
                Ok(saved) => {
                    hint |= saved.legacy_tables_hint;
                    FamilyData::Loaded(saved.ruleset)
                }
                Err(e) => FamilyData::Failed(e),
            }
        };
        let v4 = read_family(Family::V4);
        let v6 = read_family(Family::V6);
        let took = start.elapsed();
        // Kept for the refreshes that follow, if nothing changed while the tools ran.
        let failed = |d: &FamilyData| matches!(d, FamilyData::Failed(_));
        self.cache = match (nft_gen, self.nft_generation()) {
            (Some(a), Some(b)) if a == b && !failed(&v4) && !failed(&v6) => Some(NftCache {
                generation: a,
                v4: v4.clone(),
                v6: v6.clone(),
            }),
            _ => None,
        };
        let new_hint = hint && !self.legacy_hint;
        self.legacy_hint = hint;
        if new_hint {
            self.polls = 0;
        }
        // Native tables: at every whole read on nf_tables (the rule set changed). On legacy,
        // where nf_tables may hold native tables all the same, when nf_tables is loaded: read
        // whenever its generation moved, and at every refresh while native tables are there
        // (their counters move).
        let nft = match backend {
            Backend::Nft => self.nft_read(),
            Backend::Legacy if nf_tables_loaded() => {
                let g = self.nft_generation();
                if g.is_some() && (g != self.native_generation || !self.native.is_empty()) {
                    self.native_generation = g;
                    self.nft_read()
                } else {
                    None
                }
            }
            Backend::Legacy => {
                self.native.clear();
                self.native_warning = None;
                None
            }
        };
        // A read that failed (the rule set kept changing) keeps the tables shown last, so that
        // a native chain on screen does not vanish for a refresh.
        if let Some(nft) = nft {
            self.read_native(&nft, &v4, &v6, backend);
        }
        let warnings = self.warnings(backend, hint, &v4, &v6);
        RulesetSnapshot {
            generation,
            origin: Origin::Kernel { backend },
            taken_at: SystemTime::now(),
            took,
            v4,
            v6,
            warnings,
            nft_generation: self.cache.as_ref().map(|c| c.generation),
            native: self.native.clone(),
            changed_by: self.changed_by.clone(),
        }
    }

    /// The warnings of a refresh: the other backend (looked at now and then, and at once when
    /// the tools start hinting), and tables the save tool left out.
    fn warnings(
        &mut self,
        backend: Backend,
        hint: bool,
        v4: &FamilyData,
        v6: &FamilyData,
    ) -> Vec<String> {
        if self.polls % OTHER_BACKEND_EVERY == 0 {
            self.other_backend_warning =
                other_backend_warning(backend, self.netns.as_deref(), &self.families);
        }
        self.polls += 1;
        let mut warnings: Vec<String> = self.native_warning.iter().cloned().collect();
        if let Some(e) = self.native_texts.as_ref().and_then(|t| t.error.as_ref()) {
            warnings.push(format!(
                "native nftables rules are shown without their text: {e}"
            ));
        }
        match &self.other_backend_warning {
            Some(w) => warnings.push(w.clone()),
            // The tool says legacy tables exist, but we cannot look inside them ourselves.
            None if hint
                && backend == Backend::Nft
                && find_tool(&save_tool(Family::V4, Some(Backend::Legacy))).is_none() =>
            {
                warnings.push(legacy_present_warning())
            }
            None => {}
        }
        for (family, data) in [(Family::V4, v4), (Family::V6, v6)] {
            if let FamilyData::Loaded(rs) = data {
                warnings.extend(incompatible_warnings(family, &rs.incompatible_tables()));
            }
        }
        warnings
    }
}

/// What `nft -a -s list table FAMILY NAME` prints for each of `tables` (stateless: the
/// counters come over netlink with every refresh, so the texts do not go stale), one run per
/// table: `nft list ruleset` would print the iptables-nft tables too, which may be huge.
fn list_native(tables: &[(&str, &str)], netns: Option<&str>) -> Result<String, String> {
    let mut listing = String::new();
    for (family, name) in tables {
        let mut cmd = tool_command("nft", netns).map_err(|e| match e {
            SourceError::ToolMissing { .. } => {
                "`nft` is not installed (apt-get install nftables)".to_string()
            }
            e => e.to_string(),
        })?;
        let out = cmd
            .args(["-a", "-s", "list", "table", family, name])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run nft: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "nft list table {family} {name} failed: {}",
                first_line(&String::from_utf8_lossy(&out.stderr))
            ));
        }
        listing.push_str(&ruleset::lossless::decode_owned(out.stdout));
    }
    Ok(listing)
}

/// Whether nf_tables is loaded as a module (on the legacy backend, nfscope never makes the
/// kernel load it: a netlink request would). A kernel without loadable modules (no
/// /proc/modules) cannot be made to load anything: nf_tables is built in or absent, and asking
/// is harmless. Where it cannot be known, it is taken as not.
fn nf_tables_loaded() -> bool {
    match std::fs::read_to_string("/proc/modules") {
        Ok(m) => m.lines().any(|l| l.starts_with("nf_tables ")),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// One warning per table the save tool left out as incompatible: its rules filter packets
/// all the same, and nfscope will not commit over it.
pub fn incompatible_warnings(family: Family, tables: &[String]) -> Vec<String> {
    let nft_family = match family {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    };
    tables
        .iter()
        .map(|t| {
            format!(
                "{} table {t} holds rules iptables cannot show (the save tool calls it incompatible): they filter packets but are not shown here, and nfscope will not commit to {} while it is so; see `nft list table {nft_family} {t}`",
                family.label(),
                family.label()
            )
        })
        .collect()
}

fn legacy_present_warning() -> String {
    "legacy iptables tables are present too: their rules still filter packets (see `iptables-legacy-save`)".to_string()
}

/// Whether the kernel has no legacy tables at all in the namespace, from
/// /proc/net/ip{,6}_tables_names (a missing file: the module is not even loaded). `false` when
/// unsure, and the tools are asked.
fn no_legacy_tables(netns: Option<&str>) -> bool {
    const FILES: [&str; 2] = ["/proc/net/ip_tables_names", "/proc/net/ip6_tables_names"];
    match netns {
        None => FILES.iter().all(|f| match std::fs::read_to_string(f) {
            Ok(s) => s.trim().is_empty(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }),
        // /proc/net shows the namespace of the process reading it, so read it from inside.
        Some(_) => {
            let Ok(mut cmd) = tool_command("cat", netns) else {
                return false;
            };
            let Ok(out) = cmd.args(FILES).stdin(Stdio::null()).output() else {
                return false;
            };
            let err = String::from_utf8_lossy(&out.stderr);
            out.stdout.iter().all(u8::is_ascii_whitespace)
                && err.lines().all(|l| l.contains("No such file"))
        }
    }
}

/// Whether the backend we do not show holds any rule (or a non-ACCEPT policy), as a warning.
fn other_backend_warning(
    shown: Backend,
    netns: Option<&str>,
    families: &[Family],
) -> Option<String> {
    let other = match shown {
        Backend::Nft => Backend::Legacy,
        Backend::Legacy => Backend::Nft,
    };
    // The legacy tables of the network namespace are listed in procfs; none means nothing to run.
    if other == Backend::Legacy && no_legacy_tables(netns) {
        return None;
    }
    let mut holders = Vec::new();
    for &family in families {
        let tool = save_tool(family, Some(other));
        if find_tool(&tool).is_none() {
            continue;
        }
        if let Ok(text) = run_save_in(&tool, netns)
            && let Ok(rs) = ruleset::parse(&text, family)
            && holds_rules(&rs)
        {
            holders.push(family.label());
        }
    }
    if holders.is_empty() {
        None
    } else {
        Some(format!(
            "the {} backend also holds {} rules: they still filter packets but are not shown (run with --backend {})",
            other.label(),
            holders.join(" and "),
            match other {
                Backend::Nft => "nft",
                Backend::Legacy => "legacy",
            }
        ))
    }
}

/// A rule set that does something: any rule, or a built-in chain whose policy is not ACCEPT.
pub fn holds_rules(rs: &ruleset::Ruleset) -> bool {
    rs.tables
        .iter()
        .flat_map(|t| &t.chains)
        .any(|c| !c.rules.is_empty() || c.policy.as_deref().is_some_and(|p| p != "ACCEPT"))
}

/// Time one full refresh of both families (used by benchmarks): running the tools and
/// parsing, not dropping the snapshot afterwards.
pub fn time_refresh(reader: &mut KernelReader) -> Duration {
    let start = Instant::now();
    let snap = reader.read(0);
    let took = start.elapsed();
    drop(snap);
    took
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names() {
        assert_eq!(save_tool(Family::V4, None), "iptables-save");
        assert_eq!(
            save_tool(Family::V6, Some(Backend::Nft)),
            "ip6tables-nft-save"
        );
        assert_eq!(
            save_tool(Family::V4, Some(Backend::Legacy)),
            "iptables-legacy-save"
        );
    }

    #[test]
    fn version_lines() {
        assert_eq!(
            backend_from_version("iptables-save v1.8.9 (nf_tables)"),
            Backend::Nft
        );
        assert_eq!(
            backend_from_version("iptables-save v1.8.9 (legacy)"),
            Backend::Legacy
        );
        assert_eq!(
            backend_from_version("iptables-save v1.6.1"),
            Backend::Legacy
        );
    }

    #[test]
    fn missing_tool_says_what_to_install() {
        let e = run_save("nfscope-no-such-tool-save").unwrap_err();
        assert!(
            e.to_string().contains("install the iptables package"),
            "{e}"
        );
    }

    #[test]
    fn missing_tool_in_a_namespace_says_what_to_install() {
        let e =
            save_and_parse("nfscope-no-such-tool-save", Family::V4, Some("nowhere")).unwrap_err();
        assert!(matches!(e, SourceError::ToolMissing { .. }), "{e}");
    }

    /// Feed `text` cut every `step` bytes, as a pipe may deliver it.
    fn fed(text: &str, step: usize) -> (Result<ruleset::Ruleset, String>, bool) {
        let mut f = Feeder::new(Family::V4);
        for chunk in text.as_bytes().chunks(step) {
            f.chunk(chunk);
        }
        let (r, hint) = f.finish();
        let r = r.map_err(|e| e.to_string());
        (r, hint)
    }

    #[test]
    fn chunked_feeding_parses_like_the_whole_text() {
        let text = format!(
            "{}# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\r\n*raw\r\n:OUTPUT ACCEPT [1:2]\r\n-A OUTPUT -m comment --comment \"é ü\" -j ACCEPT\r\nCOMMIT",
            ruleset::synth::kube_proxy(300)
        );
        let whole = ruleset::parse(&text, Family::V4).unwrap();
        for step in [1, 2, 3, 7, 64, 4096, text.len()] {
            let (r, hint) = fed(&text, step);
            assert_eq!(r.unwrap(), whole, "step {step}");
            assert!(hint);
        }
        let (r, hint) = fed(&ruleset::synth::kube_proxy(30), 5);
        assert!(r.is_ok() && !hint);
    }

    #[test]
    fn chunked_feeding_reports_the_first_error_with_its_line() {
        let text = "*filter\n:INPUT ACCEPT [0:0]\n-A NOPE -j ACCEPT\n-A ALSO_NOPE\nCOMMIT\n";
        let (r, _) = fed(text, 5);
        let e = r.unwrap_err();
        assert!(e.starts_with("line 3:") && e.contains("NOPE"), "{e}");
        // A byte that is not UTF-8 is kept, not refused.
        let mut f = Feeder::new(Family::V4);
        f.chunk(b"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \xff\nCOMMIT\n");
        let rs = f.finish().0.expect("read");
        let text = &rs.tables[0].chains[0].rules[0].text;
        assert_eq!(
            &*ruleset::lossless::encode(text),
            b"-m comment --comment \xff"
        );
        let (r, _) = fed("*filter\n:INPUT ACCEPT [0:0]\n", 4);
        assert!(r.unwrap_err().contains("never closed"));
    }
}
