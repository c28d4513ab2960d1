//! One file per subcommand; each turns parsed flags into a call down the data path and an exit
//! code.

pub mod check;
pub mod diff;
pub mod post_render;
pub mod rules;

use crate::cli::{Cli, Command};
use crate::error::Error;

/// Runs a parsed command line; the result is the process exit code.
pub fn run(cli: Cli) -> Result<u8, Error> {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::PostRender(args) => post_render::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Diff(args) => diff::run(args),
    }
}
