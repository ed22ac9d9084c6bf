//! The `nfscope` command: the command line and dispatch only.

use clap::{CommandFactory, FromArgMatches};
use nfscope::cli::{self, Cli, Command};
use std::io::IsTerminal;

/// A refresh of a large rule set allocates and frees millions of small strings; glibc's malloc
/// spent ~40% of a 100k-rule parse consolidating and unlinking chunks. The benchmarks use the
/// same allocator, so their figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> color_eyre::Result<()> {
    // Colours in reports only for a person at a terminal, not for a log file.
    let theme = if std::io::stderr().is_terminal() {
        color_eyre::config::Theme::dark()
    } else {
        color_eyre::config::Theme::new()
    };
    color_eyre::config::HookBuilder::default()
        .theme(theme)
        .install()?;
    let matches = Cli::command().get_matches();
    if let Some(("apply", sub)) = matches.subcommand() {
        for arg in ["interval", "demo"] {
            if sub.value_source(arg) == Some(clap::parser::ValueSource::CommandLine) {
                Cli::command()
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        format!("nfscope apply takes no --{arg}: it loads the files given once, into the kernel"),
                    )
                    .exit();
            }
        }
    }
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if !matches!(cli.command, Some(Command::Apply(_)))
        && let Some(msg) = cli.source.conflict()
    {
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit();
    }
    if cli.command.is_some() {
        // A subcommand piped into `head` ends quietly when the reader goes away, as Unix
        // tools do, instead of reporting a broken pipe.
        // SAFETY: setting a signal's disposition to the default before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    if let Some(path) = &cli.source.nft_file
        && !matches!(cli.command, Some(Command::Rules(_) | Command::Trace(_)))
    {
        eprintln!(
            "{}",
            nfscope::format::visible_lines(&format!(
                "nfscope: --nft-file {} is read by `nfscope rules` and `nfscope trace` only (native tables are read-only, and the UI does not load them from a file yet)",
                path.display()
            ))
        );
        std::process::exit(2);
    }
    // The flags given on the command line win over the config file.
    let flags = nfscope::config::Flags {
        interval: given(&matches, "interval").then_some(cli.source.interval),
        confirm_timeout: given(&matches, "confirm_timeout").then_some(cli.confirm_timeout),
        no_mouse: cli.no_mouse,
    };
    match &cli.command {
        None => {
            // The config file first: a wrong one is refused before anything starts.
            let settings = match nfscope::config::load(cli.config.as_deref(), &flags) {
                Ok(loaded) => loaded.settings,
                Err(e) => refuse(&e.0),
            };
            if let Err(e) = nfscope::tui::keymap::install(&settings.keys) {
                refuse(&e);
            }
            if let Some(color) = settings.theme.color() {
                nfscope::tui::theme::set_color(color);
            }
            cli.source.interval = settings.interval;
            let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
            let write_dir = settings.write_dir(home.as_deref()).map(|d| {
                if d.is_relative() {
                    std::env::current_dir().map_or(d.clone(), |cwd| cwd.join(&d))
                } else {
                    d
                }
            });
            let cfg = cli.source.config()?;
            if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
                eprintln!(
                    "{}",
                    nfscope::format::visible_lines(
                        "nfscope: the interactive UI needs a terminal; for a pipe or a file use `nfscope rules` (see `nfscope rules --help`)"
                    )
                );
                std::process::exit(1);
            }
            nfscope::tui::run(
                cfg,
                nfscope::tui::Options {
                    state_dir: cli.state_dir.clone(),
                    confirm_timeout: std::time::Duration::from_secs(settings.confirm_timeout),
                    mouse: settings.mouse,
                    write_dir,
                    ifaces: settings.ifaces.clone(),
                },
            )
        }
        Some(Command::Config(args)) => {
            std::process::exit(cli::config::run(args, cli.config.as_deref(), &flags))
        }
        Some(Command::Completions(args)) => std::process::exit(cli::completions::run(args)),
        Some(Command::Man) => std::process::exit(cli::man::run()),
        Some(Command::Rules(args)) => {
            let code = cli::rules::run(&cli.source, args)?;
            std::process::exit(code);
        }
        Some(Command::Conntrack(args)) => {
            let code = cli::conntrack::run(&cli.source, args)?;
            std::process::exit(code);
        }
        Some(Command::Trace(args)) => {
            let code = cli::trace::run(&cli.source, args)?;
            std::process::exit(code);
        }
        Some(Command::Reach(args)) => {
            let code = cli::reach::run(&cli.source, args)?;
            std::process::exit(code);
        }
        Some(Command::Lint(args)) => {
            let code = cli::lint::run(&cli.source, args)?;
            std::process::exit(code);
        }
        Some(Command::Apply(args)) => {
            std::process::exit(cli::apply::run(cli.state_dir.as_deref(), &cli.source, args))
        }
        Some(Command::Confirm) => {
            std::process::exit(cli::apply::run_confirm(cli.state_dir.as_deref()))
        }
        Some(Command::Rollback) => std::process::exit(cli::apply::run_rollback(
            cli.state_dir.as_deref(),
            &cli.source,
        )),
        Some(Command::Watchdog(args)) => {
            std::process::exit(cli::apply::run_watchdog(cli.state_dir.as_deref(), args))
        }
        Some(Command::NftDump(args)) => std::process::exit(nfscope::source::nft_file::dump_here(
            &args.path,
            args.host_netns,
        )),
    }
}

/// Whether the argument `id` was given on the command line (before or after a subcommand),
/// not defaulted.
fn given(matches: &clap::ArgMatches, id: &str) -> bool {
    let here = matches!(
        matches.try_get_raw(id),
        Ok(Some(_)) if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
    );
    here || matches.subcommand().is_some_and(|(_, sub)| given(sub, id))
}

/// A configuration nfscope refuses: the sentence, and status 2 (a usage error) before
/// anything starts.
fn refuse(msg: &str) -> ! {
    eprintln!(
        "{}",
        nfscope::format::visible_lines(&format!("nfscope: {msg}"))
    );
    std::process::exit(2)
}
