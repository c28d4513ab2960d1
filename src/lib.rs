//! ess-guard: guards Element Server Suite (matrix-stack) upgrades through the one-way
//! Synapse → Matrix Authentication Service migration, before Helm applies anything.
//!
//! The data path is the same for every entry point: read ([`manifest`], [`values`]) → model
//! ([`facts`], [`render`]) → decide ([`engine`], which alone calls the marker state machine in
//! [`state`]) → act ([`inject`]) → report ([`report`], [`formats`]).

pub mod cli;
pub mod commands;
pub mod diff;
pub mod emit;
pub mod engine;
pub mod error;
pub mod facts;
pub mod formats;
pub mod guard;
pub mod helm_cmdline;
pub mod inject;
pub mod input;
pub mod kube_access;
pub mod live;
pub mod manifest;
pub mod output;
pub mod parallel;
pub mod render;
pub mod report;
pub mod rules;
pub mod source;
pub mod state;
pub mod suppress;
pub mod syn2mas_job;
pub mod values;

use std::io::IsTerminal;

use clap::Parser;

/// Parses the process arguments and runs; returns the exit code. `main` only prints errors.
pub fn main_with_args(args: Vec<String>) -> u8 {
    let args = cli::normalise_args(args, std::io::stdin().is_terminal());
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(error::Error::Reported(code)) => code,
        Err(e) => {
            crate::output::error_line(&e.to_string());
            e.exit_code()
        }
    }
}
