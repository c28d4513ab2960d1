//! `ess-guard completions <shell>` and `ess-guard man`: generated from the clap definitions in
//! [`crate::cli`], so they cannot drift from the real flags.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::Error;

pub fn completions(args: CompletionsArgs) -> Result<u8, Error> {
    crate::output::write_stdout(&completion_script(args.shell))?;
    Ok(0)
}

pub fn man() -> Result<u8, Error> {
    let page = man_page().map_err(|e| Error::Output(format!("cannot render the man page: {e}")))?;
    crate::output::write_stdout(page.as_bytes())?;
    Ok(0)
}

/// The completion script for `shell`.
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "ess-guard", &mut out);
    out
}

/// One man page for the whole tool: the top-level page, then a section per command with its
/// synopsis, description and options (as subsections), so `man ess-guard` documents every flag.
pub fn man_page() -> Result<String, std::io::Error> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let page = clap_mangen::Man::new(sub.clone());
        let mut section = Vec::new();
        page.render_synopsis_section(&mut section)?;
        page.render_description_section(&mut section)?;
        page.render_options_section(&mut section)?;
        let name = sub
            .get_bin_name()
            .unwrap_or_else(|| sub.get_name())
            .to_uppercase();
        out.extend_from_slice(format!(".SH \"{name}\"\n").as_bytes());
        let section = String::from_utf8_lossy(&section).replace("\n.SH ", "\n.SS ");
        out.extend_from_slice(
            section
                .strip_prefix(".SH ")
                .map(|rest| format!(".SS {rest}"))
                .unwrap_or(section)
                .as_bytes(),
        );
    }
    Ok(title_first(&String::from_utf8_lossy(&out)))
}

/// roff puts its `.ie`/`.el` string definitions (the apostrophe string `Aq`) before `.TH`; moving
/// them just after the title makes the page start with `.TH`, as `man`, `mandb` and lintian
/// expect. The definitions still come before any text that uses them.
fn title_first(page: &str) -> String {
    let (mut preamble, rest): (Vec<&str>, Vec<&str>) = page
        .lines()
        .partition(|l| l.starts_with(".ie ") || l.starts_with(".el "));
    // Every rendered section repeats the definitions; once is enough.
    let mut seen = std::collections::HashSet::new();
    preamble.retain(|l| seen.insert(*l));
    let mut out = String::with_capacity(page.len());
    let mut lines = rest.into_iter();
    if let Some(title) = lines.next() {
        out.push_str(title);
        out.push('\n');
    }
    for line in preamble.into_iter().chain(lines) {
        out.push_str(line);
        out.push('\n');
    }
    out
}
