//! Errors that end a command, and the exit code each maps to.
//!
//! Exit codes are part of the interface (Helm and CI scripts read them):
//! 0 allowed, 1 rejected, 2 bad input or usage, 3 the marker state could not be learnt,
//! 4 output could not be written or an internal check failed.

use crate::manifest::InputError;

/// The exit code of a rejected upgrade (findings at or above `--fail-on`).
pub const EXIT_REJECTED: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong flags or files that cannot be opened.
    #[error("{0}")]
    Usage(String),
    /// Input that is not a valid render, values file or state file.
    #[error("{0}")]
    Input(String),
    /// The stored marker could not be learnt (cluster trouble); fails closed.
    #[error("{0}")]
    State(String),
    /// Writing the result failed, or an edit did not verify.
    #[error("{0}")]
    Output(String),
    /// Already reported on every channel; only the exit code is left to give.
    #[error("exit status {0}")]
    Reported(u8),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Input(_) => 2,
            Error::State(_) => 3,
            Error::Output(_) => 4,
            Error::Reported(code) => *code,
        }
    }
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(e.to_string())
    }
}
