//! One file per subcommand; each turns parsed flags into a call down the data path and an exit
//! code.

pub mod argocd;
pub mod check;
pub mod completions;
pub mod diff;
pub mod lint;
pub mod markers;
pub mod plan;
pub mod post_render;
pub mod recover;
pub mod rules;
pub mod values;

use crate::cli::{Cli, Command};
use crate::error::Error;

/// Runs a parsed command line; the result is the process exit code.
pub fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::PostRender(args) => post_render::run(args),
        Command::Values(args) => values::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Markers(args) => markers::run(args),
        Command::Recover(args) => recover::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man => completions::man(),
        Command::Diff(args) => diff::run(args),
        Command::Argocd(args) => argocd::run(args),
        Command::Lint(args) => lint::run(args),
    }
}
