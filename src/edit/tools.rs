//! Running the restore and save tools for edit mode, by argv (never a shell), in this process's
//! network namespace. The tools are the system's own (`iptables-restore`, `ip6tables-restore`,
//! or their -nft/-legacy variants for a forced backend).

use crate::ruleset::{self, Family, Ruleset};
use crate::source::kernel::{run_save_in, save_tool, tool_command};
use crate::source::{Backend, SourceError};
use std::io::Write;
use std::process::Stdio;

/// Which tools to run: the system default (`None`) or a forced backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tools {
    pub backend: Option<Backend>,
}

impl Tools {
    /// `iptables-restore`, `ip6tables-nft-restore`, ...
    pub fn restore_tool(&self, family: Family) -> String {
        save_tool(family, self.backend).replacen("-save", "-restore", 1)
    }

    /// `iptables-save`, `ip6tables-legacy-save`, ...
    pub fn save_tool(&self, family: Family) -> String {
        save_tool(family, self.backend)
    }

    /// Run the restore tool with `args`, feeding it `input`. A failure carries the tool's own
    /// message (which names the line it stopped at).
    pub fn restore(&self, family: Family, args: &[&str], input: &str) -> Result<(), SourceError> {
        let tool = self.restore_tool(family);
        let mut child = tool_command(&tool, None)?
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_failed(&tool, &e))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A tool that stops reading early reports why on stderr; the write error is noise.
            let _ = stdin.write_all(&crate::ruleset::lossless::encode(input));
        }
        let out = child
            .wait_with_output()
            .map_err(|e| spawn_failed(&tool, &e))?;
        if out.status.success() {
            return Ok(());
        }
        Err(exit_failed(tool, out.status, &out.stderr))
    }

    /// `iptables-save -c` (or ip6tables) as text.
    pub fn save_text(&self, family: Family) -> Result<String, SourceError> {
        run_save_in(&self.save_tool(family), None)
    }

    /// `iptables-save -c -t TABLE` for each of `tables`, one after the other: on nf_tables a
    /// table alone saves in a fraction of the whole set's time (0.39 s against 3.2 s at 50,000
    /// rules, docs/performance.md), and a commit needs back only the tables it changed.
    pub fn save_tables_text(&self, family: Family, tables: &[&str]) -> Result<String, SourceError> {
        let tool = self.save_tool(family);
        let mut text = String::new();
        for table in tables {
            let out = tool_command(&tool, None)?
                .args(["-c", "-t", table])
                .stdin(Stdio::null())
                .output()
                .map_err(|e| spawn_failed(&tool, &e))?;
            if !out.status.success() {
                return Err(exit_failed(tool, out.status, &out.stderr));
            }
            text.push_str(&crate::ruleset::lossless::decode(&out.stdout));
        }
        Ok(text)
    }

    /// A rule set holding only those tables, their rules and policies; counters are not to be
    /// relied on (none are read on nf_tables). On nf_tables, `list_tables_text`: at 50,000
    /// rules in nat, `iptables-nft-save -c -t filter` takes ~285 ms for filter's 257 rules and
    /// `iptables-nft -t filter -S` ~15 ms (docs/performance.md). Elsewhere `save_tables_text`
    /// (legacy saves a table in milliseconds, and `-S` would wait for the xtables lock).
    pub fn read_tables(&self, family: Family, tables: &[&str]) -> Result<Ruleset, SourceError> {
        let (tool, text) = if self.is_nft() {
            (
                self.list_tool(family),
                self.list_tables_text(family, tables)?,
            )
        } else {
            (
                self.save_tool(family),
                self.save_tables_text(family, tables)?,
            )
        };
        ruleset::parse(&text, family).map_err(|e| SourceError::Parse {
            what: tool,
            message: e.to_string(),
        })
    }

    /// `iptables`, `ip6tables-nft`, ...: the tool that lists rules (`-S`).
    pub fn list_tool(&self, family: Family) -> String {
        save_tool(family, self.backend).replacen("-save", "", 1)
    }

    /// Whether the tools are iptables-nft's: forced, or the system's as its `iptables-save
    /// --version` says (asked once a process). Unknown counts as not.
    pub fn is_nft(&self) -> bool {
        static SYSTEM: std::sync::OnceLock<Option<Backend>> = std::sync::OnceLock::new();
        let backend = self
            .backend
            .or_else(|| *SYSTEM.get_or_init(|| crate::source::kernel::detect_backend().ok()));
        backend == Some(Backend::Nft)
    }

    /// `iptables -t TABLE -S` for each of `tables`, one after the other, written in the save
    /// format without counters: `-P CHAIN POLICY` becomes `:CHAIN POLICY [0:0]`, `-N CHAIN`
    /// `:CHAIN - [0:0]`, and the `-A` lines are the save tool's own (the same code prints
    /// both). Anything else in the listing is refused rather than guessed at.
    pub fn list_tables_text(&self, family: Family, tables: &[&str]) -> Result<String, SourceError> {
        let tool = self.list_tool(family);
        let mut text = String::new();
        for table in tables {
            let out = tool_command(&tool, None)?
                .args(["-t", table, "-S"])
                .stdin(Stdio::null())
                .output()
                .map_err(|e| spawn_failed(&tool, &e))?;
            if !out.status.success() {
                return Err(exit_failed(tool, out.status, &out.stderr));
            }
            let listed = crate::ruleset::lossless::decode(&out.stdout);
            text.push_str(&listed_as_saved(table, &listed).map_err(|message| {
                SourceError::Parse {
                    what: format!("{tool} -t {table} -S"),
                    message,
                }
            })?);
        }
        Ok(text)
    }

    /// `iptables-save -c` parsed.
    pub fn read(&self, family: Family) -> Result<Ruleset, SourceError> {
        let tool = self.save_tool(family);
        let text = self.save_text(family)?;
        ruleset::parse(&text, family).map_err(|e| SourceError::Parse {
            what: tool,
            message: e.to_string(),
        })
    }
}

/// One table's `iptables -S` listing in the save format, without counters. The listing names
/// every chain (`-P`, `-N`) before the first rule; from that rule on, lines are the save
/// format's own and pass as they are (a quoted comment may hold a line break), for the
/// parser to judge.
fn listed_as_saved(table: &str, listed: &str) -> Result<String, String> {
    let mut decls = String::new();
    let mut rules = String::new();
    for line in listed.lines() {
        if !rules.is_empty() || line.starts_with("-A ") {
            rules.push_str(line);
            rules.push('\n');
        } else if let Some(rest) = line.strip_prefix("-P ") {
            let (chain, policy) = rest
                .split_once(' ')
                .ok_or_else(|| format!("a policy line without a policy: {line:?}"))?;
            decls.push_str(&format!(":{chain} {policy} [0:0]\n"));
        } else if let Some(chain) = line.strip_prefix("-N ") {
            decls.push_str(&format!(":{chain} - [0:0]\n"));
        } else if !line.trim().is_empty() {
            return Err(format!("a line the listing should not hold: {line:?}"));
        }
    }
    Ok(format!("*{table}\n{decls}{rules}COMMIT\n"))
}

/// A tool that could not be started or waited for.
fn spawn_failed(tool: &str, e: &std::io::Error) -> SourceError {
    SourceError::ToolFailed {
        tool: tool.to_string(),
        status: "-".into(),
        stderr: e.to_string(),
    }
}

/// A tool that ran and failed: its own words, or that it needs root (decided by whether this
/// process has CAP_NET_ADMIN, not by what the tool printed).
fn exit_failed(tool: String, status: std::process::ExitStatus, stderr: &[u8]) -> SourceError {
    crate::source::kernel::failure(&tool, status, &String::from_utf8_lossy(stderr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_reads_as_the_save_format_without_counters() {
        let listed = "-P INPUT DROP\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N KUBE-SVC-X\n-N a-b\n\
-A INPUT -m comment --comment \"two\nlines\" -j KUBE-SVC-X\n-N not a chain here\n-A KUBE-SVC-X -j RETURN\n";
        let saved = listed_as_saved("filter", listed).unwrap();
        assert_eq!(
            saved,
            "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-SVC-X - [0:0]\n:a-b - [0:0]\n\
-A INPUT -m comment --comment \"two\nlines\" -j KUBE-SVC-X\n-N not a chain here\n-A KUBE-SVC-X -j RETURN\nCOMMIT\n"
        );
        assert_eq!(
            listed_as_saved("nat", "").unwrap(),
            "*nat\nCOMMIT\n",
            "a table without chains"
        );
        assert!(listed_as_saved("filter", "-P INPUT\n").is_err());
        assert!(listed_as_saved("filter", "# Warning: something\n-P INPUT DROP\n").is_err());
    }
}
