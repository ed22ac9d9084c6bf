//! The `nfscope` command: the command line and dispatch only.

use clap::Parser;
use nfscope::cli::{self, Cli, Command};

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
