//! Shared helpers for the integration tests: where the outside things are (the ESS renders, the
//! Helm binaries), and how to run the real `ess-guard` binary.
//!
//! Outside things are named by environment variables:
//!
//! | variable | what |
//! |---|---|
//! | `ESS_GUARD_SHARED` | the `shared/` folder (renders in `$ESS_GUARD_SHARED/ess-renders`) |
//! | `ESS_GUARD_HELM3` | a Helm 3 binary (v3.19.0 from `scripts/get-helm.sh`) |
//! | `ESS_GUARD_HELM4` | a Helm 4 binary (v4.1.4 from `scripts/get-helm.sh`) |
//!
//! A test that needs one that is unset prints `skipped: <why>` and passes, so `cargo test` passes
//! on a plain clone, unless `ESS_GUARD_REQUIRE_ALL=1` (set by `.ci/run`): then it fails, so
//! nothing is skipped silently in CI.
//!
//! Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Set to `1` to turn every skip into a failure.
pub const REQUIRE_ALL: &str = "ESS_GUARD_REQUIRE_ALL";

/// True when `ESS_GUARD_REQUIRE_ALL=1`.
pub fn require_all() -> bool {
    std::env::var(REQUIRE_ALL).is_ok_and(|v| v == "1")
}

/// The path in environment variable `var`, which names `what`. Unset or empty: `None` after
/// printing `skipped: …` (or a panic under `ESS_GUARD_REQUIRE_ALL=1`). Set to a path that does
/// not exist: always a panic, since that is a broken setup, not a missing optional tool.
pub fn require(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(value) => {
            let path = PathBuf::from(value);
            assert!(
                path.exists(),
                "{var}={} ({what}) does not exist",
                path.display()
            );
            Some(path)
        }
        None if require_all() => {
            panic!("{var} is not set ({what}) and {REQUIRE_ALL}=1 forbids skipping this test")
        }
        None => {
            println!("skipped: {var} is not set ({what})");
            None
        }
    }
}

/// The `shared/` folder; the renders are in `shared_dir()/ess-renders`.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = require(
        "ESS_GUARD_SHARED",
        "the shared/ folder holding ess-renders/",
    )?;
    assert!(
        dir.join("ess-renders").is_dir(),
        "ESS_GUARD_SHARED={} has no ess-renders/ folder",
        dir.display()
    );
    Some(dir)
}

/// The Helm 3 binary.
pub fn helm3() -> Option<PathBuf> {
    require(
        "ESS_GUARD_HELM3",
        "a Helm 3 binary, see scripts/get-helm.sh",
    )
}

/// The Helm 4 binary.
pub fn helm4() -> Option<PathBuf> {
    require(
        "ESS_GUARD_HELM4",
        "a Helm 4 binary, see scripts/get-helm.sh",
    )
}

/// The `ess-guard` binary Cargo built for these tests.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ess-guard"))
}

/// The repository root (for `fixtures/`, `examples/`, `docs/`).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `ess-guard` with `args` and `stdin` as standard input. The environment variables that
/// would change its behaviour behind the test's back are removed.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("ESS_GUARD_REPORT")
        .env_remove("ESS_GUARD_NO_TTY")
        .env_remove("HELM_NAMESPACE")
        .env_remove("HELM_KUBECONTEXT");
    run_with_stdin(&mut cmd, stdin)
}

/// Runs `cmd` with `stdin` fed from a thread (so a large input cannot deadlock against a full
/// stdout pipe) and returns its output.
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may exit without reading everything (bad input): a broken pipe is fine.
        let _ = pipe.write_all(&input);
    });
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for {cmd:?}: {e}"));
    writer.join().expect("stdin writer thread");
    output
}

/// The exit code, with a clear panic for a process killed by a signal.
pub fn code(output: &Output) -> i32 {
    output
        .status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}", output.status))
}

/// Lossy text of a byte buffer, for messages and text assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The parts of an ess-guard text report the tests assert on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReportSummary {
    /// The rule id on the first line of a rejection (`ess-guard: REJECTED: [id] …`).
    pub first_rule: Option<String>,
    /// Every `severity[id]` finding line, in order.
    pub findings: Vec<(String, String)>,
}

impl ReportSummary {
    /// The ids of findings with this severity.
    pub fn ids(&self, severity: &str) -> Vec<&str> {
        self.findings
            .iter()
            .filter(|(s, _)| s == severity)
            .map(|(_, id)| id.as_str())
            .collect()
    }
}

/// Reads the verdict line and the finding lines of a text report. Kept in one place so a change
/// of the report layout is one change here.
pub fn summarize(report: &str) -> ReportSummary {
    let mut summary = ReportSummary::default();
    for line in report.lines() {
        if let Some(rest) = line.strip_prefix("ess-guard: REJECTED: [") {
            if summary.first_rule.is_none() {
                summary.first_rule = rest.split(']').next().map(str::to_string);
            }
            continue;
        }
        let trimmed = line.trim_start();
        for severity in ["error", "warning", "note"] {
            if let Some(rest) = trimmed
                .strip_prefix(severity)
                .and_then(|r| r.strip_prefix('['))
            {
                if let Some((id, tail)) = rest.split_once(']') {
                    if tail.starts_with(':') {
                        summary
                            .findings
                            .push((severity.to_string(), id.to_string()));
                    }
                }
            }
        }
    }
    summary
}

/// Splits a multi-document YAML text on column-0 `---` lines (the separator line itself is
/// dropped), independently of ess-guard's own splitter. A leading empty piece (the stream starts
/// with `---`) is dropped, so Helm 3 and Helm 4 streams give the same pieces.
pub fn split_documents(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_separator = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        if is_separator {
            pieces.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    pieces.push(&text[start..]);
    if text.starts_with("---") && pieces.first().is_some_and(|p| p.is_empty()) {
        pieces.remove(0);
    }
    pieces
}

/// Parses one document into JSON, the way Kubernetes reads it (duplicate keys: last wins).
/// `Null` for an empty or comment-only document.
pub fn parse_document(text: &str) -> serde_json::Value {
    serde_yaml::from_str::<Option<serde_json::Value>>(text)
        .unwrap_or_else(|e| panic!("not valid YAML ({e}):\n{text}"))
        .unwrap_or(serde_json::Value::Null)
}

/// The documents of a stream that hold something (not empty or comment-only), parsed.
pub fn parse_stream(text: &str) -> Vec<serde_json::Value> {
    split_documents(text)
        .into_iter()
        .map(parse_document)
        .filter(|v| !v.is_null())
        .collect()
}

/// A temporary directory that is removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ess-guard-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// Proxy variables a CI environment may set; removed for Helm (and the ess-guard it runs).
pub const PROXY_ENV: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// A sandbox for running Helm: its own home, data, config, cache and plugin folders, `ess-guard`
/// on `PATH` (a symlink to the binary under test), and no cluster (`KUBECONFIG=/dev/null`; the
/// cluster tests set their own after [`HelmSandbox::helm`]). Every test that runs real Helm uses
/// it, so Helm never reads the developer's own Helm folders, plugins or proxy settings.
///
/// Helm 4 finds `postrenderer/v1` plugins in `$HELM_PLUGINS`; Helm 3 gets an empty plugin folder
/// of its own, because it refuses to load the v1 `plugin.yaml` and complains on every command
/// (`helm-postrenderer.md` §3.3).
pub struct HelmSandbox {
    pub dir: tempfile::TempDir,
}

impl HelmSandbox {
    pub fn new() -> HelmSandbox {
        let dir = temp_dir();
        for sub in [
            "bin",
            "home",
            "data/plugins",
            "config",
            "cache",
            "helm3-plugins",
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create sandbox folder");
        }
        std::os::unix::fs::symlink(bin(), dir.path().join("bin/ess-guard"))
            .expect("symlink ess-guard");
        HelmSandbox { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The Helm 4 plugin folder (`$HELM_DATA_HOME/plugins`, where `helm plugin install` writes).
    pub fn plugins(&self) -> PathBuf {
        self.path("data/plugins")
    }

    /// Makes the plugin in `source` (a folder with `plugin.yaml`) visible to Helm 4.
    pub fn link_plugin(&self, source: &Path) {
        let name = source.file_name().expect("plugin folder name");
        std::os::unix::fs::symlink(source, self.plugins().join(name)).expect("symlink plugin");
    }

    /// Makes the shipped plugin (`examples/helm-plugin`, what users install) visible to Helm 4,
    /// so `--post-renderer ess-guard` runs the binary under test from `PATH`.
    pub fn link_example_plugin(&self) {
        self.link_plugin(&repo_root().join("examples/helm-plugin"));
    }

    /// The `ess-guard` Helm 3 is given as `--post-renderer` (an absolute path).
    pub fn ess_guard_path(&self) -> String {
        self.path("bin/ess-guard")
            .to_str()
            .expect("UTF-8 sandbox path")
            .to_string()
    }

    /// Writes a plugin folder `name` holding `plugin_yaml`, visible to Helm 4.
    pub fn write_plugin(&self, name: &str, plugin_yaml: &str) {
        let dir = self.plugins().join(name);
        std::fs::create_dir_all(&dir).expect("create plugin folder");
        std::fs::write(dir.join("plugin.yaml"), plugin_yaml).expect("write plugin.yaml");
    }

    /// A Helm 4 command in the sandbox.
    pub fn helm4(&self, helm: &Path) -> Command {
        self.command(helm, &self.plugins())
    }

    /// A Helm 3 command in the sandbox.
    pub fn helm3(&self, helm: &Path) -> Command {
        self.command(helm, &self.path("helm3-plugins"))
    }

    /// A command for Helm `major` (3 or 4) in the sandbox.
    pub fn helm(&self, helm: &Path, major: u8) -> Command {
        match major {
            3 => self.helm3(helm),
            4 => self.helm4(helm),
            _ => panic!("no Helm {major}"),
        }
    }

    /// Any program (e.g. `ess-guard argocd`, which runs Helm itself) with the sandbox's Helm
    /// environment; no plugins.
    pub fn isolated(&self, program: &Path) -> Command {
        self.command(program, &self.path("helm3-plugins"))
    }

    fn command(&self, helm: &Path, plugins: &Path) -> Command {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.path("bin")];
        dirs.extend(std::env::split_paths(&path));
        let mut cmd = Command::new(helm);
        cmd.env("PATH", std::env::join_paths(dirs).expect("PATH"))
            .env("HELM_DATA_HOME", self.path("data"))
            .env("HELM_CONFIG_HOME", self.path("config"))
            .env("HELM_CACHE_HOME", self.path("cache"))
            .env("HELM_PLUGINS", plugins)
            .env("HOME", self.path("home"))
            .env("KUBECONFIG", "/dev/null")
            .env_remove("HELM_NAMESPACE")
            .env_remove("HELM_KUBECONTEXT")
            .env_remove("HELM_DRIVER")
            .env_remove("ESS_GUARD_REPORT")
            .env_remove("ESS_GUARD_NO_TTY")
            .stdin(Stdio::null());
        // ess-guard refuses proxies, and the test servers listen on 127.0.0.1.
        for proxy in PROXY_ENV {
            cmd.env_remove(proxy);
        }
        cmd
    }
}

/// Runs a command to completion and returns its output.
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}
