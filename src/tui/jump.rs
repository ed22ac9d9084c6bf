//! Jumping to a chain by a fuzzy name (`:` or Ctrl-p, as in k9s and lazygit): every chain of
//! both families and every native nftables chain, ranked by nucleo's matcher as the name is
//! typed.

use super::app::ChainSel;
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};

/// The jump popup's state.
#[derive(Debug, Clone, PartialEq)]
pub struct Jump {
    pub query: String,
    /// Every chain, with the name the popup shows and matches (`IPv4 filter INPUT`,
    /// `inet fw input (nft)`), in the tree's order.
    pub chains: Vec<(ChainSel, String)>,
    /// Indices into `chains` that match the query, best first, with the matched characters.
    pub matches: Vec<(usize, Vec<u32>)>,
    pub cursor: usize,
}

/// How a chain is named in the popup.
pub fn label(sel: &ChainSel) -> String {
    match sel {
        ChainSel::Iptables(k) => format!("{} {} {}", k.family.label(), k.table, k.chain),
        ChainSel::Native(k) => format!("{} {} {} (nft)", k.family, k.table, k.chain),
    }
}

impl Jump {
    pub fn new(chains: Vec<ChainSel>) -> Jump {
        let chains: Vec<(ChainSel, String)> = chains
            .into_iter()
            .map(|c| {
                let l = label(&c);
                (c, l)
            })
            .collect();
        let mut j = Jump {
            query: String::new(),
            chains,
            matches: Vec::new(),
            cursor: 0,
        };
        j.rank();
        j
    }

    /// Rank the chains against the query: all of them, in the tree's order, while it is empty;
    /// else those that match, best first (ties keep the tree's order).
    pub fn rank(&mut self) {
        self.cursor = 0;
        if self.query.trim().is_empty() {
            self.matches = (0..self.chains.len()).map(|i| (i, Vec::new())).collect();
            return;
        }
        let pattern = Pattern::parse(&self.query, CaseMatching::Ignore, Normalization::Smart);
        let mut matcher = Matcher::new(Config::DEFAULT);
        let mut buf = Vec::new();
        let mut scored: Vec<(usize, u32, Vec<u32>)> = self
            .chains
            .iter()
            .enumerate()
            .filter_map(|(i, (_, l))| {
                let mut idx = Vec::new();
                let score = pattern.indices(Utf32Str::new(l, &mut buf), &mut matcher, &mut idx)?;
                idx.sort_unstable();
                idx.dedup();
                Some((i, score, idx))
            })
            .collect();
        scored.sort_by_key(|(i, s, _)| (std::cmp::Reverse(*s), *i));
        self.matches = scored.into_iter().map(|(i, _, idx)| (i, idx)).collect();
    }

    pub fn type_char(&mut self, c: char) {
        if self.query.chars().count() < 80 {
            self.query.push(c);
            self.rank();
        }
    }

    pub fn delete_char(&mut self) {
        self.query.pop();
        self.rank();
    }

    pub fn move_cursor(&mut self, delta: isize) {
        let n = self.matches.len() as isize;
        if n > 0 {
            self.cursor = (self.cursor as isize + delta).clamp(0, n - 1) as usize;
        }
    }

    /// The chain under the cursor.
    pub fn chosen(&self) -> Option<&ChainSel> {
        let (i, _) = self.matches.get(self.cursor)?;
        self.chains.get(*i).map(|(c, _)| c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::Family;
    use crate::ruleset::rates::ChainKey;

    fn chain(f: Family, t: &str, c: &str) -> ChainSel {
        ChainSel::Iptables(ChainKey {
            family: f,
            table: t.into(),
            chain: c.into(),
        })
    }

    #[test]
    fn a_fuzzy_name_finds_the_chain() {
        let mut j = Jump::new(vec![
            chain(Family::V4, "filter", "INPUT"),
            chain(Family::V4, "nat", "KUBE-SERVICES"),
            chain(Family::V4, "nat", "KUBE-SVC-ABCDEF"),
            chain(Family::V6, "filter", "INPUT"),
        ]);
        assert_eq!(j.matches.len(), 4, "all chains while nothing is typed");
        for c in "kubsvc".chars() {
            j.type_char(c);
        }
        assert_eq!(
            j.chosen(),
            Some(&chain(Family::V4, "nat", "KUBE-SVC-ABCDEF"))
        );
        j.query = "6 input".into();
        j.rank();
        assert_eq!(j.chosen(), Some(&chain(Family::V6, "filter", "INPUT")));
        j.query = "zzzz".into();
        j.rank();
        assert!(j.matches.is_empty() && j.chosen().is_none());
    }
}
