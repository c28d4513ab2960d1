//! Where results go. stdout is what Helm applies, so it is written whole and only after every
//! check passed (post-render writes large renders from the input buffer in 1 MiB writes, see
//! `inject::Rendered`); a failed write (closed pipe, full disk) is an error, never a silent
//! truncation. Reports go to stderr, and for Helm 4 (which discards a plugin's stderr) also to
//! the controlling terminal and an optional report file.

use std::io::Write;
use std::path::Path;

use crate::error::Error;

/// Writes `bytes` to stdout in one buffered write and flushes.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    lock.write_all(bytes)
        .and_then(|()| lock.flush())
        .map_err(|e| Error::Output(format!("cannot write to stdout: {e}")))
}

/// Writes one error line to stderr. Unlike `eprintln!`, a closed stderr (EPIPE) is ignored:
/// there is no one left to tell, and panicking would turn the exit code into 101.
pub fn error_line(message: &str) {
    let _ = std::io::stderr().write_all(format!("ess-guard: error: {message}\n").as_bytes());
}

/// Writes a report to stderr, and to `/dev/tty` and `report_file` when asked.
pub fn report(text: &str, tty: bool, report_file: Option<&Path>) -> Result<(), Error> {
    let _ = std::io::stderr().write_all(text.as_bytes());
    if tty {
        // Helm 4 swallows a plugin's stderr; the terminal is the one channel left to the user.
        if let Ok(mut t) = std::fs::OpenOptions::new().write(true).open("/dev/tty") {
            let _ = t.write_all(text.as_bytes());
        }
    }
    if let Some(path) = report_file {
        std::fs::write(path, text).map_err(|e| {
            Error::Output(format!("cannot write report file {}: {e}", path.display()))
        })?;
    }
    Ok(())
}
