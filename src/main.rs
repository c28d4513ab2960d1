//! The `ess-guard` binary: everything lives in the library; this only hands over the arguments
//! and turns the result into the exit code.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(ess_guard::main_with_args(std::env::args().collect()))
}
