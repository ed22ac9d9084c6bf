//! The configuration file of the terminal UI: `$XDG_CONFIG_HOME/nfscope/config.toml` (else
//! `~/.config/nfscope/config.toml`, or `--config PATH`). The UI's refresh interval, theme,
//! mouse, where `W` writes, the commit's confirmation timeout, and key overrides.
//!
//! A flag given on the command line wins over the file, which wins over the defaults. A file
//! that is wrong is refused whole, with its path and line; the subcommands other than
//! `nfscope config` never read it, so a script does not depend on someone's preferences.
//! `parse` is pure; `load` reads the file.

use crate::trace::reach::IfaceMap;
use crate::tui::keymap::{self, Action, Key, Scope};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The default refresh interval, in seconds (`--interval`'s default too).
pub const DEFAULT_INTERVAL: f64 = 1.0;
/// The default confirmation timeout of a commit, in seconds (`--confirm-timeout`'s too).
pub const DEFAULT_CONFIRM_TIMEOUT: u64 = 30;

/// Colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// Colour unless NO_COLOR is set.
    #[default]
    Auto,
    /// Colour even with NO_COLOR.
    #[serde(alias = "colour")]
    Color,
    /// Bold, dim, reverse and underline only.
    Mono,
}

impl Theme {
    pub fn name(self) -> &'static str {
        match self {
            Theme::Auto => "auto",
            Theme::Color => "color",
            Theme::Mono => "mono",
        }
    }

    /// Colour on or off, when the theme decides it (`auto` leaves it to NO_COLOR).
    pub fn color(self) -> Option<bool> {
        match self {
            Theme::Auto => None,
            Theme::Color => Some(true),
            Theme::Mono => Some(false),
        }
    }
}

/// The settings in effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Seconds between refreshes (0.1 to 3600).
    pub interval: f64,
    pub theme: Theme,
    pub mouse: bool,
    /// Where `W` writes, as written (`.`: the directory nfscope started in).
    pub write_dir: PathBuf,
    /// Seconds (1 to 86400).
    pub confirm_timeout: u64,
    /// Each overridden action with the keys that replace its keys.
    pub keys: Vec<(Action, Vec<Key>)>,
    /// Which source addresses arrive on each interface, for the Reach popup (as
    /// `nfscope reach --iface`).
    pub ifaces: Vec<IfaceMap>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interval: DEFAULT_INTERVAL,
            theme: Theme::Auto,
            mouse: true,
            write_dir: PathBuf::from("."),
            confirm_timeout: DEFAULT_CONFIRM_TIMEOUT,
            keys: Vec::new(),
            ifaces: Vec::new(),
        }
    }
}

impl Settings {
    /// The directory `W` writes to: `None` for the current one, `~` expanded with `home`.
    pub fn write_dir(&self, home: Option<&Path>) -> Option<PathBuf> {
        expand(&self.write_dir, home)
    }
}

fn expand(dir: &Path, home: Option<&Path>) -> Option<PathBuf> {
    if dir.as_os_str().is_empty() || dir == Path::new(".") {
        return None;
    }
    if let (Ok(rest), Some(home)) = (dir.strip_prefix("~"), home) {
        return Some(home.join(rest));
    }
    Some(dir.to_path_buf())
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    #[default]
    Default,
    File,
    CommandLine,
}

impl Origin {
    fn comment(self) -> &'static str {
        match self {
            Origin::Default => "default",
            Origin::File => "the config file",
            Origin::CommandLine => "the command line",
        }
    }
}

/// Where each setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Origins {
    pub interval: Origin,
    pub theme: Origin,
    pub mouse: Origin,
    pub write_dir: Origin,
    pub confirm_timeout: Origin,
    pub ifaces: Origin,
}

/// The flags given on the command line that the file's settings give way to.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub interval: Option<f64>,
    pub confirm_timeout: Option<u64>,
    pub no_mouse: bool,
}

/// A configuration file nfscope refuses: the whole sentence, naming the file (and the line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The file as written: every setting optional, nothing else allowed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    interval: Option<toml::Spanned<f64>>,
    theme: Option<toml::Spanned<Theme>>,
    mouse: Option<bool>,
    write_dir: Option<toml::Spanned<PathBuf>>,
    confirm_timeout: Option<toml::Spanned<i64>>,
    ifaces: Option<Vec<toml::Spanned<String>>>,
    #[serde(default)]
    keys: BTreeMap<String, toml::Spanned<Vec<toml::Spanned<String>>>>,
}

/// The line (from 1) of a byte offset in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Read a configuration file's text; `file` names it in the messages, `home` expands `~` in
/// `write_dir`, whose directory must exist. Returns the settings and what the file set.
pub fn parse(text: &str, file: &Path, home: Option<&Path>) -> Result<(Settings, Origins), Error> {
    let at = |offset: usize, msg: &str| {
        Error(format!(
            "the config file {}, line {}: {}",
            file.display(),
            line_of(text, offset),
            msg.trim_end()
        ))
    };
    let raw: Raw = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => at(span.start, e.message()),
        None => Error(format!(
            "the config file {}: {}",
            file.display(),
            e.message().trim_end()
        )),
    })?;
    let mut s = Settings::default();
    let mut o = Origins::default();
    if let Some(v) = raw.interval {
        let secs = *v.get_ref();
        if !(secs.is_finite() && (0.1..=3600.0).contains(&secs)) {
            return Err(at(
                v.span().start,
                &format!("interval must be between 0.1 and 3600 seconds, not {secs}"),
            ));
        }
        s.interval = secs;
        o.interval = Origin::File;
    }
    if let Some(v) = raw.theme {
        s.theme = *v.get_ref();
        o.theme = Origin::File;
    }
    if let Some(v) = raw.mouse {
        s.mouse = v;
        o.mouse = Origin::File;
    }
    if let Some(v) = raw.write_dir {
        let dir = v.get_ref().clone();
        if let Some(full) = expand(&dir, home)
            && !full.is_dir()
        {
            return Err(at(
                v.span().start,
                &format!("write_dir {} is not a directory", full.display()),
            ));
        }
        s.write_dir = dir;
        o.write_dir = Origin::File;
    }
    if let Some(v) = raw.confirm_timeout {
        let secs = *v.get_ref();
        s.confirm_timeout = u64::try_from(secs)
            .ok()
            .filter(|n| (1..=86_400).contains(n))
            .ok_or_else(|| {
                at(
                    v.span().start,
                    &format!("confirm_timeout must be between 1 and 86400 seconds, not {secs}"),
                )
            })?;
        o.confirm_timeout = Origin::File;
    }
    if let Some(list) = raw.ifaces {
        for spec in list {
            let m = IfaceMap::parse(spec.get_ref())
                .map_err(|e| at(spec.span().start, &format!("ifaces: {e}")))?;
            s.ifaces.push(m);
        }
        o.ifaces = Origin::File;
    }
    let mut lines: Vec<(Action, usize)> = Vec::new();
    for (name, keys) in &raw.keys {
        let start = keys.span().start;
        let action = keymap::action_named(name).map_err(|e| at(start, &format!("[keys] {e}")))?;
        let mut parsed = Vec::new();
        for spec in keys.get_ref() {
            let key = keymap::parse_key(spec.get_ref())
                .map_err(|e| at(spec.span().start, &format!("[keys] {name}: {e}")))?;
            parsed.push(key);
        }
        lines.push((action, start));
        s.keys.push((action, parsed));
    }
    if let Err(e) = keymap::overridden(&s.keys) {
        let start = lines
            .iter()
            .find(|(a, _)| *a == e.action)
            .map_or(0, |(_, l)| *l);
        return Err(at(start, &format!("[keys] {}", e.message)));
    }
    Ok((s, o))
}

/// The default file's path: `$XDG_CONFIG_HOME/nfscope/config.toml` (an absolute
/// XDG_CONFIG_HOME only, as the XDG spec says), else `$HOME/.config/nfscope/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    path_in(
        std::env::var_os("XDG_CONFIG_HOME"),
        std::env::var_os("HOME"),
    )
}

fn path_in(xdg: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let base = xdg
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            home.map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".config"))
        })?;
    Some(base.join("nfscope").join("config.toml"))
}

/// The settings in effect, and where they came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file looked for (`None`: no `--config`, and neither XDG_CONFIG_HOME nor HOME).
    pub path: Option<PathBuf>,
    /// Whether it was there (a missing default file means the defaults).
    pub found: bool,
    pub settings: Settings,
    pub origins: Origins,
}

/// Read the configuration file (`explicit`: `--config`, which must exist; else the default
/// one, which may be missing), then let the command line's flags win.
pub fn load(explicit: Option<&Path>, flags: &Flags) -> Result<Loaded, Error> {
    let path = explicit.map(Path::to_path_buf).or_else(default_path);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let (mut settings, mut origins, mut found) = (Settings::default(), Origins::default(), false);
    if let Some(p) = &path {
        match std::fs::read_to_string(p) {
            Ok(text) => {
                (settings, origins) = parse(&text, p, home.as_deref())?;
                found = true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error(format!(
                    "the config file {} given with --config does not exist",
                    p.display()
                )));
            }
            Err(e) => {
                return Err(Error(format!(
                    "cannot read the config file {}: {e}",
                    p.display()
                )));
            }
        }
    }
    if let Some(secs) = flags.interval {
        settings.interval = secs;
        origins.interval = Origin::CommandLine;
    }
    if let Some(secs) = flags.confirm_timeout {
        settings.confirm_timeout = secs;
        origins.confirm_timeout = Origin::CommandLine;
    }
    if flags.no_mouse {
        settings.mouse = false;
        origins.mouse = Origin::CommandLine;
    }
    Ok(Loaded {
        path,
        found,
        settings,
        origins,
    })
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn key_list(keys: &[Key]) -> String {
    let specs: Vec<String> = keys.iter().map(|k| quote(&keymap::key_spec(k))).collect();
    format!("[{}]", specs.join(", "))
}

/// `nfscope config --print-default`: a commented file holding every default, and every action
/// with its keys (commented out), that reads back as the defaults.
pub fn print_default() -> String {
    let d = Settings::default();
    let mut out = String::new();
    out.push_str(
        "# nfscope's configuration file, read by the terminal UI (the subcommands do not read it):\n\
         # $XDG_CONFIG_HOME/nfscope/config.toml, else ~/.config/nfscope/config.toml, or --config PATH.\n\
         # Every value below is the default. A flag given on the command line wins over this file.\n\n",
    );
    let _ = writeln!(
        out,
        "# Seconds between refreshes, 0.1 to 3600 (--interval).\ninterval = {:?}\n",
        d.interval
    );
    let _ = writeln!(
        out,
        "# \"auto\" (colour unless NO_COLOR is set), \"color\" (even with NO_COLOR), or \"mono\" (bold, dim, reverse only).\ntheme = {}\n",
        quote(d.theme.name())
    );
    let _ = writeln!(
        out,
        "# Clicks select rows, tree entries and tabs, and the wheel scrolls (--no-mouse turns it off).\nmouse = {}\n",
        d.mouse
    );
    let _ = writeln!(
        out,
        "# Where W writes what the screen shows: \".\" is the directory nfscope started in, ~/ your home.\nwrite_dir = {}\n",
        quote(&d.write_dir.to_string_lossy())
    );
    let _ = writeln!(
        out,
        "# Seconds a commit waits for its confirmation before the watchdog rolls it back, 1 to 86400 (--confirm-timeout).\nconfirm_timeout = {}\n",
        d.confirm_timeout
    );
    let _ = writeln!(
        out,
        "# Which source addresses arrive on each interface, for the Reach popup (r on the Rules screen),\n\
         # as `nfscope reach --iface`: \"NAME=CIDR,...\", or \"NAME=!CIDR,...\" for every address but those.\n\
         # Without it only lo is known, and other -i/-o matches make answers possible. For example:\n\
         #   ifaces = [\"lan0=10.0.0.0/24,2001:db8:10::/64\", \"wan0=!10.0.0.0/24,2001:db8:10::/64\"]\n\
         ifaces = []\n"
    );
    out.push_str(
        "# Keys: an action = the keys that replace its keys, on every screen that binds it ([] unbinds it).\n\
         # A key is one character (\"x\", \"G\", \":\"), \"ctrl-x\", \"alt-x\", or a name: enter, esc, tab,\n\
         # backtab, backspace, up, down, left, right, pgup, pgdn, home, end, del, space, f1 to f12.\n\
         # A key bound twice on one screen, or on a screen and everywhere, is refused. Ctrl-C always quits.\n\
         # For example:\n\
         #   quit = [\"q\", \"Q\"]\n\
         #   jump_chain = [\":\", \"ctrl-p\", \"f2\"]\n\
         # Every action, with its keys now (where the help first lists it):\n\
         [keys]\n",
    );
    // Each action as a screen (or every screen) binds it, rather than as a popup does.
    let screens = [
        Scope::Global,
        Scope::Rules,
        Scope::Conntrack,
        Scope::Trace,
        Scope::Flow,
        Scope::Changes,
    ];
    for name in keymap::action_names() {
        let of = |b: &&keymap::Binding| b.action.name() == name;
        if let Some(b) = (keymap::KEYMAP.iter().filter(of))
            .find(|b| screens.contains(&b.scope))
            .or_else(|| keymap::KEYMAP.iter().find(of))
        {
            let _ = writeln!(out, "# {name} = {}  # {}", key_list(b.keys), b.help);
        }
    }
    out
}

impl Loaded {
    /// `nfscope config`: the settings in effect, as a config file, each with where it came
    /// from.
    pub fn render(&self) -> String {
        let s = &self.settings;
        let o = &self.origins;
        let mut out = String::from("# The terminal UI's settings in effect.\n");
        match (&self.path, self.found) {
            (Some(p), true) => {
                let _ = writeln!(out, "# The config file: {}", p.display());
            }
            (Some(p), false) => {
                let _ = writeln!(
                    out,
                    "# The config file: {} (not there: the defaults)",
                    p.display()
                );
            }
            (None, _) => out.push_str(
                "# No config file: neither XDG_CONFIG_HOME nor HOME is set (the defaults)\n",
            ),
        }
        let _ = writeln!(
            out,
            "interval = {:?}  # {}",
            s.interval,
            o.interval.comment()
        );
        let colour = match s.theme.color() {
            Some(_) => String::new(),
            None if crate::tui::theme::Theme::from_env().color => {
                ", colour: NO_COLOR is not set".into()
            }
            None => ", no colour: NO_COLOR is set".into(),
        };
        let _ = writeln!(
            out,
            "theme = {}  # {}{colour}",
            quote(s.theme.name()),
            o.theme.comment()
        );
        let _ = writeln!(out, "mouse = {}  # {}", s.mouse, o.mouse.comment());
        let _ = writeln!(
            out,
            "write_dir = {}  # {}",
            quote(&s.write_dir.to_string_lossy()),
            o.write_dir.comment()
        );
        let _ = writeln!(
            out,
            "confirm_timeout = {}  # {}",
            s.confirm_timeout,
            o.confirm_timeout.comment()
        );
        let ifaces: Vec<String> = s.ifaces.iter().map(|m| quote(&m.spec())).collect();
        let _ = writeln!(
            out,
            "ifaces = [{}]  # {}",
            ifaces.join(", "),
            o.ifaces.comment()
        );
        out.push_str("\n[keys]\n");
        if s.keys.is_empty() {
            out.push_str(
                "# None changed (`nfscope config --print-default` lists every action and its keys).\n",
            );
        }
        for (action, keys) in &s.keys {
            let _ = writeln!(out, "{} = {}", action.name(), key_list(keys));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Settings {
        parse(text, Path::new("/c.toml"), None).unwrap().0
    }

    fn parse_err(text: &str) -> String {
        parse(text, Path::new("/c.toml"), None).unwrap_err().0
    }

    #[test]
    fn the_printed_default_reads_back_as_the_defaults() {
        let text = print_default();
        assert_eq!(parse_ok(&text), Settings::default());
        // Every action is listed, and uncommenting any line of it is accepted as it is.
        for name in keymap::action_names() {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("# {name} = ")))
                .unwrap();
            let uncommented = format!("[keys]\n{}", &line[2..]);
            parse_ok(&uncommented);
        }
    }

    #[test]
    fn settings_and_keys() {
        let s = parse_ok(
            "interval = 2.5\ntheme = \"mono\"\nmouse = false\nconfirm_timeout = 90\n\
             [keys]\nquit = [\"x\", \"ctrl-q\"]\nexact_numbers = [\"#\"]\n",
        );
        assert_eq!(s.interval, 2.5);
        assert_eq!(s.theme, Theme::Mono);
        assert!(!s.mouse);
        assert_eq!(s.confirm_timeout, 90);
        assert_eq!(s.keys.len(), 2);
        assert!(s.keys.contains(&(
            Action::Quit,
            vec![
                keymap::parse_key("x").unwrap(),
                keymap::parse_key("ctrl-q").unwrap()
            ]
        )));
        assert_eq!(parse_ok("interval = 2\n").interval, 2.0);
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_line() {
        let e = parse_err("mouse = true\n\ninterval = \"fast\"\n");
        assert!(e.starts_with("the config file /c.toml, line 3: "), "{e}");
        let cases: &[(&str, &[&str])] = &[
            (
                "mouse = true\ncolour = 1\n",
                &["line 2", "unknown field `colour`"],
            ),
            ("interval = 0.01\n", &["line 1", "between 0.1 and 3600"]),
            ("confirm_timeout = 0\n", &["line 1", "between 1 and 86400"]),
            ("theme = \"dark\"\n", &["line 1", "mono"]),
            ("mouse = [\n", &["line "]),
            (
                "\n[keys]\nqiut = [\"x\"]\n",
                &["line 3", "did you mean quit"],
            ),
            (
                "[keys]\nhelp = [\"h\",\n  \"hyper-h\"]\n",
                &["line 3", "\"hyper-h\" is not a key"],
            ),
            ("[keys]\nup = [\"j\"]\n", &["line 2", "up and down"]),
            (
                "write_dir = \"/nonexistent/nfscope\"\n",
                &["line 1", "not a directory"],
            ),
        ];
        for (text, words) in cases {
            let e = parse_err(text);
            for w in *words {
                assert!(e.contains(w), "{text:?}: {w:?} not in {e}");
            }
        }
    }

    #[test]
    fn write_dir_is_expanded() {
        let home = Path::new("/home/u");
        let mut s = Settings::default();
        assert_eq!(s.write_dir(Some(home)), None);
        s.write_dir = PathBuf::from("~/dumps");
        assert_eq!(
            s.write_dir(Some(home)),
            Some(PathBuf::from("/home/u/dumps"))
        );
        s.write_dir = PathBuf::from("/var/tmp");
        assert_eq!(s.write_dir(Some(home)), Some(PathBuf::from("/var/tmp")));
    }

    #[test]
    fn the_default_path() {
        let p = |x: Option<&str>, h: Option<&str>| path_in(x.map(Into::into), h.map(Into::into));
        assert_eq!(
            p(Some("/x"), Some("/h")),
            Some(PathBuf::from("/x/nfscope/config.toml"))
        );
        assert_eq!(
            p(Some("rel"), Some("/h")),
            Some(PathBuf::from("/h/.config/nfscope/config.toml"))
        );
        assert_eq!(
            p(None, Some("/h")),
            Some(PathBuf::from("/h/.config/nfscope/config.toml"))
        );
        assert_eq!(p(None, None), None);
    }
}
