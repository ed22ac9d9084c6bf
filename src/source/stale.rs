//! The stale-flow analysis (trace::stale) prepared from what a source read: the rule set of
//! each family loaded, the kernel's native nftables chains beside it, and this machine's
//! addresses. Shared by `nfscope conntrack --stale` and the Conntrack screen.

use super::{FamilyData, Origin, RulesetSnapshot, local_addrs, native};
use crate::conntrack::Entry;
use crate::ruleset::Family;
use crate::trace::LocalAddr;
use crate::trace::nft::Native;
use crate::trace::stale::{Found, Stale};

/// This machine's addresses as the source knows them: the kernel's (read now), the demo
/// gateway's, none for a file. A failure to read them is a warning.
pub fn local_addresses(origin: &Origin) -> (Vec<LocalAddr>, Option<String>) {
    match origin {
        Origin::Demo => (local_addrs::demo(), None),
        Origin::File { .. } => (Vec::new(), None),
        Origin::Kernel { .. } => match local_addrs::read() {
            Ok(a) => (a, None),
            Err(e) => (
                Vec::new(),
                Some(format!(
                    "this machine's addresses could not be read ({e}): only loopback counts as local"
                )),
            ),
        },
    }
}

/// The analysis over `snap`'s rule sets (and, on the kernel, its native chains), with
/// `locals` as this machine's addresses; warnings say what was left out.
pub fn prepare(snap: &RulesetSnapshot, locals: Vec<LocalAddr>) -> (Stale, Vec<String>) {
    let mut warnings = Vec::new();
    let mut sets = Vec::new();
    for f in Family::ALL {
        let FamilyData::Loaded(rs) = snap.family(f) else {
            continue;
        };
        let native = match snap.origin {
            Origin::Kernel { backend } => match native::tracer_native(backend, rs) {
                Ok(n) => n,
                Err(e) => {
                    warnings.push(format!(
                        "{}: native nftables tables could not be read, the analysis leaves them out: {e}",
                        f.label()
                    ));
                    Native::default()
                }
            },
            _ => Native::default(),
        };
        sets.push((rs.clone(), native));
    }
    (Stale::new(sets, locals), warnings)
}

/// The whole analysis of a table against `snap`, for a worker thread: this machine's addresses
/// and the native chains are read here.
pub fn scan(snap: &RulesetSnapshot, entries: &[Entry]) -> Found {
    let (locals, w) = local_addresses(&snap.origin);
    let (mut stale, mut warnings) = prepare(snap, locals);
    warnings.extend(w);
    Found::of(&mut stale, entries, warnings)
}
