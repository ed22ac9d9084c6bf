//! The kernel source: runs `iptables-save -c` and `ip6tables-save -c` (or their -nft/-legacy
//! variants) by argv, never through a shell, and parses what they print. Detects the backend the
//! system tools use and warns when the other backend holds rules too.

use super::{Backend, FamilyData, Origin, RulesetSnapshot, SourceError};
use crate::ruleset::{self, Family};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// Ask the system's `iptables-save` which backend it is.
pub fn detect_backend() -> Result<Backend, SourceError> {
    let tool = "iptables-save";
    let path = find_tool(tool).ok_or_else(|| SourceError::ToolMissing { tool: tool.into() })?;
    let out = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SourceError::ToolFailed {
            tool: tool.into(),
            status: "-".into(),
            stderr: e.to_string(),
        })?;
    Ok(backend_from_version(&String::from_utf8_lossy(&out.stdout)))
}

/// Run a save tool and return its standard output.
pub fn run_save(tool: &str) -> Result<String, SourceError> {
    let path = find_tool(tool).ok_or_else(|| SourceError::ToolMissing { tool: tool.into() })?;
    let out = Command::new(&path)
        .arg("-c")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SourceError::ToolFailed {
            tool: tool.into(),
            status: "-".into(),
            stderr: e.to_string(),
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !out.status.success() {
        let lower = stderr.to_ascii_lowercase();
        if lower.contains("permission denied")
            || lower.contains("must be root")
            || lower.contains("operation not permitted")
        {
            return Err(SourceError::PermissionDenied { tool: tool.into() });
        }
        return Err(SourceError::ToolFailed {
            tool: tool.into(),
            status: out
                .status
                .code()
                .map_or_else(|| "signal".into(), |c| c.to_string()),
            stderr: first_line(&stderr),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| SourceError::Parse {
        what: tool.into(),
        message: "the output is not valid UTF-8".into(),
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// Reads both families from the kernel, keeping what it learnt between polls.
pub struct KernelReader {
    forced: Option<Backend>,
    backend: Option<Backend>,
    polls: u64,
    other_backend_warning: Option<String>,
}

/// How often (in polls) to look at the other backend; it costs a process per family.
const OTHER_BACKEND_EVERY: u64 = 10;

impl KernelReader {
    pub fn new(forced: Option<Backend>) -> Self {
        KernelReader {
            forced,
            backend: forced,
            polls: 0,
            other_backend_warning: None,
        }
    }

    fn backend(&mut self) -> Backend {
        if let Some(b) = self.backend {
            return b;
        }
        let b = detect_backend().unwrap_or(Backend::Nft);
        self.backend = Some(b);
        b
    }

    /// Read both families now.
    pub fn read(&mut self, generation: u64) -> RulesetSnapshot {
        let backend = self.backend();
        let start = Instant::now();
        let mut warnings = Vec::new();
        let tool_backend = self.forced;
        let mut read_family = |family: Family| -> FamilyData {
            let tool = save_tool(family, tool_backend);
            match run_save(&tool) {
                Ok(text) => {
                    if text.contains("iptables-legacy tables present") && backend == Backend::Nft {
                        warnings.push(legacy_present_warning());
                    }
                    match ruleset::parse(&text, family) {
                        Ok(rs) => FamilyData::Loaded(rs),
                        Err(e) => FamilyData::Failed(SourceError::Parse {
                            what: format!("{tool} output"),
                            message: e.to_string(),
                        }),
                    }
                }
                Err(e) => FamilyData::Failed(e),
            }
        };
        let v4 = read_family(Family::V4);
        let v6 = read_family(Family::V6);
        let took = start.elapsed();
        if self.polls % OTHER_BACKEND_EVERY == 0 {
            self.other_backend_warning = other_backend_warning(backend);
        }
        self.polls += 1;
        warnings.extend(self.other_backend_warning.clone());
        warnings.dedup();
        RulesetSnapshot {
            generation,
            origin: Origin::Kernel { backend },
            taken_at: SystemTime::now(),
            took,
            v4,
            v6,
            warnings,
        }
    }
}

fn legacy_present_warning() -> String {
    "legacy iptables tables are present too: their rules still filter packets (see `iptables-legacy-save`)".to_string()
}

/// Whether the backend we do not show holds any rule (or a non-ACCEPT policy), as a warning.
fn other_backend_warning(shown: Backend) -> Option<String> {
    let other = match shown {
        Backend::Nft => Backend::Legacy,
        Backend::Legacy => Backend::Nft,
    };
    // The legacy tables of this network namespace are listed here; none means nothing to run.
    if other == Backend::Legacy
        && std::fs::read_to_string("/proc/net/ip_tables_names").is_ok_and(|s| s.trim().is_empty())
        && std::fs::read_to_string("/proc/net/ip6_tables_names").is_ok_and(|s| s.trim().is_empty())
    {
        return None;
    }
    let mut holders = Vec::new();
    for family in Family::ALL {
        let tool = save_tool(family, Some(other));
        if find_tool(&tool).is_none() {
            continue;
        }
        if let Ok(text) = run_save(&tool)
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

/// Time one full refresh of both families (used by benchmarks).
pub fn time_refresh(reader: &mut KernelReader) -> Duration {
    let start = Instant::now();
    let _ = reader.read(0);
    start.elapsed()
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
}
