//! The structured view of one rule's words: basic matches (-p -s -d -i -o -f), each `-m module`
//! with its options, and the target (`-j`) or goto (`-g`) with its options. The view never loses
//! anything: words it does not understand are kept in `extra`, and the exact text stays in `Rule`.

use super::Counters;
use super::words::{Word, WordRef};
use serde::Serialize;

/// The words inside a rule's structured view. Nearly all are short (`--dport`, `tcp`, `22`):
/// kept inline, they cost no allocation, which makes a 100k-rule parse a good deal faster.
pub type Text = compact_str::CompactString;

/// A value that may be negated with `!`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Negatable {
    pub negated: bool,
    pub value: Text,
}

impl Negatable {
    /// `value` or `!value`, as `iptables -L` shows it.
    pub fn display(&self) -> String {
        if self.negated {
            format!("!{}", self.value)
        } else {
            self.value.to_string()
        }
    }
}

/// The `-f` match: with `negated`, `! -f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Fragment {
    pub negated: bool,
}

/// One `--option [values...]` of a match or a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptionArg {
    /// The option as written, e.g. `--dport`.
    pub name: Text,
    pub negated: bool,
    pub values: Vec<Text>,
}

/// One `-m module` and its options. Options given after `-p tcp` without `-m tcp` belong to an
/// implicit match of that protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XMatch {
    pub name: Text,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub implicit: bool,
    pub options: Vec<OptionArg>,
}

impl OptionArg {
    /// The option as iptables-save writes it: `! --dport 22`, values quoted where needed.
    pub fn to_args(&self) -> String {
        let mut s = String::new();
        if self.negated {
            s.push_str("! ");
        }
        s.push_str(&self.name);
        for v in &self.values {
            s.push(' ');
            s.push_str(&super::words::quote(v));
        }
        s
    }
}

impl XMatch {
    pub fn option(&self, name: &str) -> Option<&OptionArg> {
        self.options.iter().find(|o| o.name == name)
    }

    /// The match as iptables-save writes it: `-m NAME` (left out for a protocol's implicit
    /// match) and its options.
    pub fn to_args(&self) -> String {
        let mut parts: Vec<String> = Vec::with_capacity(self.options.len() + 1);
        if !self.implicit {
            parts.push(format!("-m {}", self.name));
        }
        parts.extend(self.options.iter().map(OptionArg::to_args));
        parts.join(" ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// `-j`: jump, and come back on RETURN.
    Jump,
    /// `-g`: go to, and RETURN goes to the caller's caller.
    Goto,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub kind: TargetKind,
    pub name: Text,
    pub options: Vec<OptionArg>,
}

/// What a rule's words mean.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleSpec {
    pub protocol: Option<Negatable>,
    pub source: Option<Negatable>,
    pub destination: Option<Negatable>,
    pub in_interface: Option<Negatable>,
    pub out_interface: Option<Negatable>,
    /// `-f` (second and further fragments) or `! -f` (unfragmented packets and first fragments).
    pub fragment: Option<Fragment>,
    pub matches: Vec<XMatch>,
    pub target: Option<Target>,
    /// Words nfscope does not place anywhere else, in order. Kept, shown, written back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
    /// Counters given inline with `-c PKTS BYTES`.
    #[serde(skip)]
    pub inline_counters: Option<Counters>,
}

/// Where `--options` currently go.
enum Ctx {
    None,
    Match(usize),
    Target,
}

fn is_option(w: &WordRef) -> bool {
    !w.quoted && w.text.len() > 1 && w.text.starts_with('-')
}

fn is_bang(w: &WordRef) -> bool {
    !w.quoted && w.text == "!"
}

fn is_word(w: &WordRef, one_of: &[&str]) -> bool {
    !w.quoted && one_of.contains(&&*w.text)
}

const MATCH_WORDS: [&str; 2] = ["-m", "--match"];
const SECTION_WORDS: [&str; 6] = ["-m", "--match", "-j", "--jump", "-g", "--goto"];

/// How many `--options` follow, up to the next `-m`, `-j` or `-g`: the capacity to give a
/// match's or target's option list. Exact vectors keep a 100k-rule set a third smaller.
fn options_ahead(words: &[WordRef]) -> usize {
    words
        .iter()
        .take_while(|w| !is_word(w, &SECTION_WORDS))
        .filter(|w| !w.quoted && w.text.starts_with("--"))
        .count()
}

impl RuleSpec {
    /// Interpret a rule's words. Never fails: what is not understood goes to `extra`.
    pub fn from_words(words: &[Word]) -> RuleSpec {
        let refs: Vec<WordRef> = words.iter().map(WordRef::from).collect();
        Self::from_word_refs(&refs)
    }

    /// `from_words` over borrowed words (what the parser uses: it saves a copy of every word).
    pub fn from_word_refs(words: &[WordRef]) -> RuleSpec {
        let mut spec = RuleSpec {
            matches: Vec::with_capacity(words.iter().filter(|w| is_word(w, &MATCH_WORDS)).count()),
            ..RuleSpec::default()
        };
        let mut ctx = Ctx::None;
        let mut neg = false;
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            i += 1;
            if is_bang(w) {
                neg = true;
                continue;
            }
            let t: &str = &w.text;
            let basic: Option<fn(&mut RuleSpec) -> &mut Option<Negatable>> = match t {
                "-p" | "--protocol" => Some(|s| &mut s.protocol),
                "-s" | "--source" | "--src" => Some(|s| &mut s.source),
                "-d" | "--destination" | "--dst" => Some(|s| &mut s.destination),
                "-i" | "--in-interface" => Some(|s| &mut s.in_interface),
                "-o" | "--out-interface" => Some(|s| &mut s.out_interface),
                _ => None,
            };
            if let Some(field) = basic.filter(|_| !w.quoted) {
                // Old style puts the `!` after the option: `-s ! 10.0.0.1`.
                if words.get(i).is_some_and(is_bang) {
                    neg = true;
                    i += 1;
                }
                match words.get(i) {
                    Some(v) => {
                        *field(&mut spec) = Some(Negatable {
                            negated: neg,
                            value: Text::from(&*v.text),
                        });
                        i += 1;
                    }
                    None => spec.extra.push(w.text.to_string()),
                }
                neg = false;
                continue;
            }
            if w.quoted {
                spec.extra.push(w.text.to_string());
                neg = false;
                continue;
            }
            match t {
                "-f" | "--fragment" => {
                    spec.fragment = Some(Fragment { negated: neg });
                }
                "-m" | "--match" => match words.get(i) {
                    Some(name) => {
                        i += 1;
                        spec.matches.push(XMatch {
                            name: Text::from(&*name.text),
                            implicit: false,
                            options: Vec::with_capacity(options_ahead(&words[i..])),
                        });
                        ctx = Ctx::Match(spec.matches.len() - 1);
                    }
                    None => spec.extra.push(t.to_string()),
                },
                "-j" | "--jump" | "-g" | "--goto" => match words.get(i) {
                    Some(name) => {
                        i += 1;
                        let kind = if t == "-j" || t == "--jump" {
                            TargetKind::Jump
                        } else {
                            TargetKind::Goto
                        };
                        spec.target = Some(Target {
                            kind,
                            name: Text::from(&*name.text),
                            options: Vec::with_capacity(options_ahead(&words[i..])),
                        });
                        ctx = Ctx::Target;
                    }
                    None => spec.extra.push(t.to_string()),
                },
                "-c" | "--set-counters" => {
                    let p = words.get(i).and_then(|w| w.text.parse::<u64>().ok());
                    let b = words.get(i + 1).and_then(|w| w.text.parse::<u64>().ok());
                    match (p, b) {
                        (Some(p), Some(b)) => {
                            spec.inline_counters = Some(Counters::new(p, b));
                            i += 2;
                        }
                        _ => spec.extra.push(t.to_string()),
                    }
                }
                _ if t.starts_with("--") => {
                    let mut opt = OptionArg {
                        name: Text::from(t),
                        negated: neg,
                        values: Vec::new(),
                    };
                    if words.get(i).is_some_and(is_bang) {
                        opt.negated = true;
                        i += 1;
                    }
                    let n = words[i..]
                        .iter()
                        .take_while(|v| !is_option(v) && !is_bang(v))
                        .count();
                    opt.values = words[i..i + n]
                        .iter()
                        .map(|v| Text::from(&*v.text))
                        .collect();
                    i += n;
                    spec.push_option(&mut ctx, opt);
                }
                _ => spec
                    .extra
                    .push(if neg { format!("! {t}") } else { t.to_string() }),
            }
            neg = false;
        }
        spec
    }

    fn push_option(&mut self, ctx: &mut Ctx, opt: OptionArg) {
        match ctx {
            Ctx::Match(m) => self.matches[*m].options.push(opt),
            Ctx::Target => {
                if let Some(t) = self.target.as_mut() {
                    t.options.push(opt)
                }
            }
            Ctx::None => {
                // `-p tcp --dport 22` without `-m tcp`: the protocol's implicit match.
                let proto = self
                    .protocol
                    .as_ref()
                    .filter(|p| !p.negated)
                    .map(|p| p.value.to_ascii_lowercase());
                match proto {
                    Some(name) => {
                        self.matches.push(XMatch {
                            name,
                            implicit: true,
                            options: vec![opt],
                        });
                        *ctx = Ctx::Match(self.matches.len() - 1);
                    }
                    None => {
                        self.extra.push(opt.name.to_string());
                        self.extra.extend(opt.values.iter().map(|v| v.to_string()));
                    }
                }
            }
        }
    }

    pub fn find_match(&self, name: &str) -> Option<&XMatch> {
        self.matches.iter().find(|m| m.name == name)
    }

    /// The comment given with `-m comment --comment`, if any.
    pub fn comment(&self) -> Option<&str> {
        self.find_match("comment")
            .and_then(|m| m.option("--comment"))
            .and_then(|o| o.values.first())
            .map(Text::as_str)
    }

    /// The target's name, or "" for a rule with no target (it only counts).
    pub fn target_name(&self) -> &str {
        self.target.as_ref().map_or("", |t| t.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::words::split;

    fn spec(s: &str) -> RuleSpec {
        RuleSpec::from_words(&split(s).unwrap())
    }

    #[test]
    fn basic_matches_and_negations() {
        let s = spec("! -s 10.0.0.0/8 -d 1.2.3.4/32 -i eth+ ! -o lo -p tcp ! -f -j DROP");
        assert_eq!(s.source.as_ref().unwrap().display(), "!10.0.0.0/8");
        assert_eq!(s.destination.as_ref().unwrap().display(), "1.2.3.4/32");
        assert_eq!(s.in_interface.as_ref().unwrap().display(), "eth+");
        assert_eq!(s.out_interface.as_ref().unwrap().display(), "!lo");
        assert_eq!(s.fragment, Some(Fragment { negated: true }));
        assert_eq!(s.target_name(), "DROP");
    }

    #[test]
    fn old_style_negation_after_option() {
        let s = spec("-s ! 10.0.0.1 -p tcp --dport ! 22");
        assert!(s.source.unwrap().negated);
        let m = &s.matches[0];
        assert!(m.implicit);
        assert!(m.options[0].negated);
        assert_eq!(m.options[0].values, ["22"]);
    }

    #[test]
    fn modules_options_and_target_options() {
        let s = spec(
            r#"-p tcp -m tcp --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN -m comment --comment "--odd one" -m conntrack ! --ctstate NEW -j LOG --log-prefix "-> x" --log-level 4"#,
        );
        assert_eq!(s.matches.len(), 3);
        assert_eq!(s.matches[0].options[1].values, ["FIN,SYN,RST,ACK", "SYN"]);
        assert_eq!(s.comment(), Some("--odd one"));
        assert!(s.matches[2].options[0].negated);
        let t = s.target.unwrap();
        assert_eq!(t.options[0].values, ["-> x"]);
        assert_eq!(t.options[1].values, ["4"]);
    }

    #[test]
    fn goto_and_flag_options() {
        let s = spec("-m recent --set --name SCAN --rsource -g TRAP");
        assert_eq!(s.matches[0].options.len(), 3);
        assert!(s.matches[0].options[0].values.is_empty());
        let t = s.target.unwrap();
        assert_eq!(t.kind, TargetKind::Goto);
        assert_eq!(t.name, "TRAP");
    }

    #[test]
    fn unknown_words_are_kept() {
        let s = spec("-4 weird --orphan 1");
        assert_eq!(s.extra, ["-4", "weird", "--orphan", "1"]);
        let s = spec("-j");
        assert_eq!(s.extra, ["-j"]);
    }

    #[test]
    fn inline_counters() {
        let s = spec("-c 10 20 -j ACCEPT");
        assert_eq!(s.inline_counters, Some(Counters::new(10, 20)));
    }
}
