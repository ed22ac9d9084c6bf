//! Zeroing counters at once (`Z`), as `iptables -Z` does: counters are not configuration, so
//! there is no commit, backup or countdown; the audit log records it all the same.

use super::ChainRef;
use super::commit::Target;
use super::tools::Tools;
use crate::ruleset::Counters;

/// What to zero: a chain's counters (its rules' and its policy's), or one rule's (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroRequest {
    pub at: ChainRef,
    pub rule: Option<usize>,
}

impl ZeroRequest {
    /// `the counters of rule 3 of IPv4 filter INPUT`.
    pub fn describe(&self) -> String {
        match self.rule {
            Some(n) => format!("the counters of rule {n} of {}", self.at),
            None => format!("the counters of {}", self.at),
        }
    }

    /// The tool's arguments: `-t filter -Z INPUT [3]`.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec![
            "-t".to_string(),
            self.at.table.clone(),
            "-Z".to_string(),
            self.at.chain.clone(),
        ];
        if let Some(n) = self.rule {
            a.push(n.to_string());
        }
        a
    }
}

/// Zero them now. Ok: the sentence for the footer. The audit log is written first: a change
/// that could not be recorded is not made.
pub fn zero(target: &Target, req: &ZeroRequest) -> Result<String, String> {
    match target {
        Target::Kernel { tools, dir, .. } => zero_kernel(tools, dir, req),
        Target::Demo { world, .. } => {
            let mut w = world.lock().map_err(|_| "the demo world is gone".to_string())?;
            let mut sets = w.rulesets();
            let rs = sets
                .iter_mut()
                .find(|r| r.family == req.at.family)
                .ok_or_else(|| format!("no {} rule set", req.at.family.label()))?;
            let chain = rs
                .tables
                .iter_mut()
                .find(|t| t.name == req.at.table)
                .and_then(|t| t.chains.iter_mut().find(|c| c.name == req.at.chain))
                .ok_or_else(|| format!("{} is not in the rule set any more", req.at))?;
            match req.rule {
                Some(n) => {
                    let r = chain
                        .rules
                        .get_mut(n.wrapping_sub(1))
                        .ok_or_else(|| format!("{} has no rule {n} any more", req.at))?;
                    r.counters = Some(Counters::default());
                }
                None => {
                    chain.counters = Counters::default();
                    for r in &mut chain.rules {
                        r.counters = Some(Counters::default());
                    }
                }
            }
            let rs = rs.clone();
            w.set_ruleset(rs);
            Ok(format!("zeroed {} (the demo's)", req.describe()))
        }
        Target::File { .. } => Err(
            "a saved file's counters are not live: nothing to zero now (s on the question stages it into the file)"
                .into(),
        ),
    }
}

fn zero_kernel(tools: &Tools, dir: &std::path::Path, req: &ZeroRequest) -> Result<String, String> {
    let tool = tools.list_tool(req.at.family);
    let args = req.args();
    let line = format!("{tool} {}", args.join(" "));
    super::backup::ensure_dir(dir)
        .and_then(|()| super::audit::check_writable(dir))
        .map_err(|e| format!("the audit log cannot record it: {e}"))?;
    let out = crate::source::kernel::tool_command(&tool, None)
        .map_err(|e| e.to_string())?
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if !out.status.success() {
        let e = crate::source::kernel::failure(
            &tool,
            out.status,
            &String::from_utf8_lossy(&out.stderr),
        );
        let _ = super::audit::log(dir, "zero-failed", &format!("{line}\n{e}"));
        return Err(e.to_string());
    }
    let logged = super::audit::log(dir, "zero", &line);
    match logged {
        Ok(()) => Ok(format!("zeroed {} ({line})", req.describe())),
        Err(e) => Ok(format!(
            "zeroed {} ({line}), but the audit log could not record it: {e}",
            req.describe()
        )),
    }
}
