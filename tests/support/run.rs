//! Runs the real binary as a child and measures it: exit code or signal, stdout, stderr, wall
//! time and peak RSS (from `wait4`'s rusage, so the peak is exact even for a child that exits
//! between two polls). A child that runs past the hard limit is killed, so no test can hang.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A child that runs longer than this is killed (the tests assert much smaller bounds).
pub const HARD_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug)]
pub struct Run {
    /// The exit code, or None when a signal ended the child.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub wall: Duration,
    /// Peak resident set size in KiB.
    pub max_rss_kib: u64,
}

impl Run {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ess-guard")
}

fn reader(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = from.read_to_end(&mut out);
        out
    })
}

/// Runs `ess-guard args…` with `stdin` fed in (or /dev/null) and waits, measuring.
pub fn run(args: &[&str], stdin: Option<Vec<u8>>) -> Run {
    run_with(Command::new(bin()).args(args), stdin)
}

/// Runs `ess-guard post-render --state legacy_auth --no-tty --report FILE EXTRA…` on `input`:
/// post-render without a cluster, as the offline tests run it. Returns the run and the report
/// file's bytes (empty when none was written): an allowed post-render prints nothing on stderr,
/// so its findings are only in the report, and a test that must keep Secret data out of every
/// output needs both.
pub fn post_render_offline(extra: &[&str], input: Vec<u8>) -> (Run, Vec<u8>) {
    let dir = tempfile::Builder::new()
        .prefix("ess-guard-report-")
        .tempdir()
        .unwrap_or_else(|e| panic!("create a temporary directory: {e}"));
    let report = dir.path().join("report.txt");
    let report_arg = report.to_str().expect("UTF-8 temporary path");
    let mut args = vec![
        "post-render",
        "--state",
        "legacy_auth",
        "--no-tty",
        "--report",
        report_arg,
    ];
    args.extend_from_slice(extra);
    // No Helm around it: Helm's namespace and context variables must not count either.
    let run = run_with(
        Command::new(bin())
            .args(&args)
            .env_remove("HELM_NAMESPACE")
            .env_remove("HELM_KUBECONTEXT"),
        Some(input),
    );
    let report = std::fs::read(&report).unwrap_or_default();
    (run, report)
}

/// Runs a prepared command (stdio is set here).
pub fn run_with(cmd: &mut Command, stdin: Option<Vec<u8>>) -> Run {
    run_to(cmd, stdin, Stdio::piped())
}

/// Runs a prepared command with stdout going to `stdout` (captured only when piped).
// The child is reaped by `wait4` below, which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_to(cmd: &mut Command, stdin: Option<Vec<u8>>, stdout: Stdio) -> Run {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(stdout)
    .stderr(Stdio::piped())
    .env_remove("ESS_GUARD_REPORT")
    .env("ESS_GUARD_NO_TTY", "1");
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start ess-guard: {e}"));
    let writer = stdin.map(|bytes| {
        let mut pipe = child
            .stdin
            .take()
            .unwrap_or_else(|| panic!("no stdin pipe"));
        // A child that stops reading early closes the pipe: that is not the test's failure.
        std::thread::spawn(move || drop(pipe.write_all(&bytes)))
    });
    let out = child.stdout.take().map(reader);
    let err = reader(
        child
            .stderr
            .take()
            .unwrap_or_else(|| panic!("no stderr pipe")),
    );
    let (status, rusage) = wait4(child.id() as libc::pid_t, start);
    let wall = start.elapsed();
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out
        .map(|o| o.join().unwrap_or_default())
        .unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    // ru_maxrss is in KiB on Linux.
    Run {
        code,
        signal,
        stdout,
        stderr,
        wall,
        max_rss_kib: rusage.ru_maxrss as u64,
    }
}

/// Waits for `pid` with `wait4`, polling so that a hung child is killed at [`HARD_LIMIT`].
pub fn wait4(pid: libc::pid_t, start: Instant) -> (libc::c_int, libc::rusage) {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        // SAFETY: pid is our own child, not yet reaped; the pointers are valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut rusage) };
        if r == pid {
            return (status, rusage);
        }
        assert!(r == 0, "wait4 failed: {}", std::io::Error::last_os_error());
        if !killed && start.elapsed() > HARD_LIMIT {
            // SAFETY: sending a signal to our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
