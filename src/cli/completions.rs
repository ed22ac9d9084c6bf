//! `nfscope completions SHELL`: a completion script generated from the command line's
//! definition, so it never drifts from it.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The command line as people see it: clap_complete offers hidden subcommands too, and the
/// watchdog and nft-dump are not for people.
fn visible() -> clap::Command {
    let full = super::Cli::command();
    let mut cmd = clap::Command::new("nfscope")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default());
    for arg in full.get_arguments() {
        cmd = cmd.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    cmd
}

pub fn run(args: &CompletionsArgs) -> i32 {
    clap_complete::generate(
        args.shell,
        &mut visible(),
        "nfscope",
        &mut std::io::stdout(),
    );
    0
}
