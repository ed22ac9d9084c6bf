//! The `nfscope` command: the command line and dispatch only.

use clap::Parser;
use nfscope::cli::{self, Cli, Command};

/// A refresh of a large rule set allocates and frees millions of small strings; glibc's malloc
/// spent ~40% of a 100k-rule parse consolidating and unlinking chunks. The benchmarks use the
/// same allocator, so their figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let cli = Cli::parse();
    match &cli.command {
        None => {
            let cfg = cli.source.config()?;
            nfscope::tui::run(cfg)
        }
        Some(Command::Rules(args)) => {
            let code = cli::rules::run(&cli.source, args)?;
            std::process::exit(code);
        }
    }
}
