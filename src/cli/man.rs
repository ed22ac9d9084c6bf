//! `nfscope man`: the manual page in roff, generated from the command line's definition.

use clap::CommandFactory;
use std::io::Write;

pub fn run() -> i32 {
    let man = clap_mangen::Man::new(super::Cli::command());
    let mut page: Vec<u8> = Vec::new();
    if let Err(e) = man.render(&mut page) {
        eprintln!("nfscope: cannot render the manual page: {e}");
        return 1;
    }
    // clap_mangen defines its strings before the title; the title comes first in a man page
    // (whatis, mandb and people look there), and the definitions work as well after it.
    let text = String::from_utf8_lossy(&page);
    let (defs, rest) = text.split_at(text.find("\n.TH ").map_or(0, |i| i + 1));
    let (title, rest) = rest.split_at(rest.find('\n').map_or(rest.len(), |i| i + 1));
    let page = format!("{title}{defs}{rest}");
    let mut out = std::io::stdout().lock();
    match out.write_all(page.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nfscope: cannot write to standard output: {e}");
            1
        }
    }
}
