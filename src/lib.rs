//! ess-guard: guards Element Server Suite (matrix-stack) upgrades through the one-way
//! Synapse → Matrix Authentication Service migration, before Helm applies anything.
//!
//! The data path is the same for every entry point: read ([`manifest`], [`values`]) → model
//! ([`facts`], [`render`]) → decide ([`engine`], which alone calls the marker state machine in
//! [`state`]) → act ([`inject`]) → report ([`report`], [`formats`]).

pub mod argocd;
pub mod audit;
pub mod cli;
pub mod commands;
pub mod diff;
pub mod emit;
pub mod engine;
pub mod error;
pub mod facts;
pub mod flux;
pub mod formats;
pub mod guard;
pub mod helm_cmdline;
pub mod inject;
pub mod input;
pub mod kube_access;
pub mod live;
pub mod manifest;
pub mod names;
pub mod output;
pub mod parallel;
pub mod policy;
pub mod render;
pub mod report;
pub mod request;
pub mod rules;
pub mod shared_namespace;
pub mod source;
pub mod state;
pub mod suppress;
pub mod syn2mas_job;
pub mod unrendered;
pub mod values;
pub mod wrong_cluster;

use std::io::IsTerminal;

use clap::Parser;

/// Parses the process arguments and runs; returns the exit code. `main` only prints errors.
pub fn main_with_args(args: Vec<String>) -> u8 {
    let args = cli::normalise_args(args, std::io::stdin().is_terminal());
    if args.get(1).map(String::as_str) == Some("post-render") {
        if let Err(e) = unrendered::refuse_unrendered(&args[2..]) {
            // Before parsing, so --report may itself be unrendered: stderr (Helm 3 shows it)
            // and the terminal (Helm 4 discards a plugin's stderr), as post-render does.
            let tty = !unrendered::no_tty(&args[2..], std::env::var("ESS_GUARD_NO_TTY").ok());
            let _ = crate::output::report(&format!("ess-guard: error: {e}\n"), tty, None);
            return e.exit_code();
        }
    }
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
