//! `nfscope config`: the UI's settings in effect, the config file's path, or a commented
//! default file (src/config.rs reads it).

use crate::config::{self, Flags};
use clap::Args;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Print a commented config file holding every default and every action's keys.
    #[arg(long, conflicts_with = "path")]
    pub print_default: bool,
    /// Print the path of the config file the UI reads (--config, else the XDG one), whether
    /// it is there or not.
    #[arg(long)]
    pub path: bool,
}

fn fail(msg: &str, code: i32) -> i32 {
    eprintln!(
        "{}",
        crate::format::visible_lines(&format!("nfscope: {msg}"))
    );
    code
}

fn print(text: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => fail(&format!("cannot write to standard output: {e}"), 1),
    }
}

/// Returns the exit status: 0, 1 when there is no path to print, 2 for a config file nfscope
/// refuses.
pub fn run(args: &ConfigArgs, explicit: Option<&Path>, flags: &Flags) -> i32 {
    if args.print_default {
        return print(&config::print_default());
    }
    if args.path {
        return match explicit
            .map(Path::to_path_buf)
            .or_else(config::default_path)
        {
            Some(p) => print(&format!("{}\n", p.display())),
            None => fail(
                "no config file: neither XDG_CONFIG_HOME nor HOME is set (give one with --config)",
                1,
            ),
        };
    }
    match config::load(explicit, flags) {
        Ok(loaded) => print(&loaded.render()),
        Err(e) => fail(&e.0, 2),
    }
}
