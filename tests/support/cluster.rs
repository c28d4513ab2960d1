//! A real Kubernetes API server (kube-apiserver-lite, see
//! `shared/tools/kube-apiserver-lite/README.md`) for end-to-end tests, plus the environment
//! conventions every outside-tool test follows.
//!
//! * [`LiteServer::start`] runs the tool's `start.sh` in a fresh temporary state directory; the
//!   server listens on a free port of 127.0.0.1 and is empty except for the default namespaces.
//!   `Drop` runs `stop.sh` (SIGTERM to the recorded PID only) and removes the directory.
//! * Two kubeconfigs: [`LiteServer::admin_kubeconfig`] (user `admin`, group `system:masters`)
//!   and [`LiteServer::restricted_kubeconfig`] (`system:serviceaccount:ess:ess-guard`, context
//!   namespace `ess`).
//! * Authorization is a deny list: [`LiteServer::deny`] / [`LiteServer::allow`] rewrite the
//!   state directory's `deny-rules` file, which the server re-reads on the next request.
//! * [`LiteServer::kubectl`] runs `/usr/bin/kubectl` as admin.
//!
//! Environment: `KUBE_APISERVER_LITE_BIN` names the server binary. When a variable a test needs
//! is unset, [`require_env`] prints `skipped: <why>` and the test returns, unless
//! `ESS_GUARD_REQUIRE_ALL=1`, which makes it a failure (CI must not hide a broken tool).
//! The tool's scripts are found under `$ESS_GUARD_SHARED/tools/kube-apiserver-lite`, else
//! `<repo>/../shared/tools/kube-apiserver-lite` (as `scripts/build-apiserver.sh` does).
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The value of `var`, or `None` after printing `skipped: <why>` (a panic when
/// `ESS_GUARD_REQUIRE_ALL=1`).
pub fn require_env(var: &str, why: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let msg = format!("{var} is unset: {why}");
            if std::env::var("ESS_GUARD_REQUIRE_ALL").as_deref() == Ok("1") {
                panic!("ESS_GUARD_REQUIRE_ALL=1 but {msg}");
            }
            eprintln!("skipped: {msg}");
            None
        }
    }
}

/// Where `start.sh` and `stop.sh` live.
pub fn tools_dir() -> PathBuf {
    let shared = std::env::var_os("ESS_GUARD_SHARED")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    shared.join("tools/kube-apiserver-lite")
}

/// One running kube-apiserver-lite. Stopped (and its state directory removed) on drop.
pub struct LiteServer {
    dir: tempfile::TempDir,
    tools: PathBuf,
    deny_rules: std::sync::Mutex<Vec<String>>,
    stopped: bool,
}

impl LiteServer {
    /// Starts a fresh server, or returns `None` (skipped) when `KUBE_APISERVER_LITE_BIN` is
    /// unset. Panics with start.sh's output when it cannot start.
    pub fn start() -> Option<LiteServer> {
        let bin = require_env(
            "KUBE_APISERVER_LITE_BIN",
            "no real API server (build it with scripts/build-apiserver.sh, or run scripts/e2e.sh)",
        )?;
        let tools = tools_dir();
        assert!(
            tools.join("start.sh").is_file(),
            "{} not found (set ESS_GUARD_SHARED to the shared folder)",
            tools.join("start.sh").display()
        );
        let dir = tempfile::Builder::new()
            .prefix("ess-guard-apiserver-")
            .tempdir()
            .expect("create a state directory");
        let out = Command::new(tools.join("start.sh"))
            .arg(dir.path().join("state"))
            .arg("--bin")
            .arg(&bin)
            .stdin(Stdio::null())
            .output()
            .expect("run start.sh");
        let server = LiteServer {
            dir,
            tools,
            deny_rules: std::sync::Mutex::new(Vec::new()),
            stopped: false,
        };
        assert!(
            out.status.success(),
            "start.sh failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        Some(server)
    }

    /// The state directory (kubeconfigs, deny-rules, server.log).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A scratch directory that is removed with the server.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Kubeconfig of user `admin` (group `system:masters`), context namespace `default`.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.state_dir().join("kubeconfig")
    }

    /// Kubeconfig of `system:serviceaccount:ess:ess-guard`, context namespace `ess`.
    pub fn restricted_kubeconfig(&self) -> PathBuf {
        self.state_dir().join("kubeconfig-ess-guard")
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        let port = std::fs::read_to_string(self.state_dir().join("port")).expect("read port");
        format!("https://127.0.0.1:{}", port.trim())
    }

    /// Runs kubectl as admin; `stdin` is piped in when given.
    pub fn try_kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new("/usr/bin/kubectl")
            .arg("--kubeconfig")
            .arg(self.admin_kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run /usr/bin/kubectl");
        let mut pipe = child.stdin.take().expect("stdin pipe");
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes())
                .expect("write kubectl stdin");
        }
        drop(pipe);
        child.wait_with_output().expect("wait for kubectl")
    }

    /// Runs kubectl as admin and returns its stdout; panics when it fails.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.try_kubectl(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` as admin.
    pub fn apply(&self, manifest: &str) {
        self.kubectl(&["apply", "-f", "-"], Some(manifest));
    }

    /// Adds deny rules (`user=U,verb=V,resource=R,namespace=N,name=X`).
    pub fn deny(&self, rules: &[&str]) {
        let mut current = self.lock_rules();
        current.extend(rules.iter().map(|r| r.to_string()));
        self.write_rules(&current);
    }

    /// Removes deny rules added with [`LiteServer::deny`].
    pub fn allow(&self, rules: &[&str]) {
        let mut current = self.lock_rules();
        current.retain(|r| !rules.contains(&r.as_str()));
        self.write_rules(&current);
    }

    /// Removes every deny rule.
    pub fn allow_all(&self) {
        let mut current = self.lock_rules();
        current.clear();
        self.write_rules(&current);
    }

    fn lock_rules(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.deny_rules.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the whole file at once (temp file + rename): the server re-reads it on the next
    /// request when its size or mtime changed, and a half-written file would deny everything.
    fn write_rules(&self, rules: &[String]) {
        let path = self.state_dir().join("deny-rules");
        let tmp = self.state_dir().join("deny-rules.tmp");
        let mut text = String::from("# written by tests/support/cluster.rs\n");
        for r in rules {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(&tmp, text).expect("write deny-rules");
        std::fs::rename(&tmp, &path).expect("replace deny-rules");
    }

    /// Stops the server now (`stop.sh`); later calls and `Drop` do nothing more.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let out = Command::new(self.tools.join("stop.sh"))
            .arg(self.state_dir())
            .stdin(Stdio::null())
            .output();
        if let Ok(out) = out {
            if !out.status.success() {
                eprintln!("stop.sh failed: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }
}

impl Drop for LiteServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What one run of the ess-guard binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: std::time::Duration,
}

impl Run {
    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// Longest a single ess-guard run may take before the test kills it and fails.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Variables of the caller's environment that would change what ess-guard reads or where it
/// connects; removed for every run. (The test servers listen on 127.0.0.1: a proxy setting
/// from CI must not route to them, and ess-guard refuses proxies.)
pub const SCRUBBED_ENV: &[&str] = &[
    "KUBECONFIG",
    "HELM_NAMESPACE",
    "HELM_KUBECONTEXT",
    "ESS_GUARD_REPORT",
    "ESS_GUARD_NO_TTY",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Runs the real ess-guard binary with `args`, `stdin` (empty when `None`) and extra `env`.
/// [`SCRUBBED_ENV`] is removed so that only what the test passes counts; the report never goes
/// to /dev/tty.
pub fn ess_guard(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ess-guard"));
    cmd.args(args);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.env("ESS_GUARD_NO_TTY", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_limit(cmd, stdin.unwrap_or_default())
}

/// Runs `cmd` with `stdin`, capturing stdout and stderr; kills it and panics after
/// [`RUN_LIMIT`].
pub fn run_with_limit(mut cmd: Command, stdin: &[u8]) -> Run {
    let started = std::time::Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let input = stdin.to_vec();
    let mut pipe = child.stdin.take().expect("stdin pipe");
    // A child that exits without reading stdin closes the pipe: ignore that write error.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let mut out_pipe = child.stdout.take().expect("stdout pipe");
    let mut err_pipe = child.stderr.take().expect("stderr pipe");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out_pipe, &mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err_pipe, &mut buf);
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {RUN_LIMIT:?}; killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let _ = writer.join();
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed,
    }
}

/// A Helm release Secret exactly as Helm's secret storage driver writes it: the release as
/// JSON, gzip-compressed, base64-encoded (Helm's payload), stored under `data.release`, which
/// Kubernetes base64-encodes once more; labels owner=helm, name, status, version; type
/// `helm.sh/release.v1`; name `sh.helm.release.v1.<release>.v<version>`. Returned in wire
/// (JSON) form, usable with the fake's `put_secret` and with `kubectl apply`.
pub fn helm_release_secret(
    release: &str,
    namespace: &str,
    version: u32,
    status: &str,
    config: serde_json::Value,
) -> serde_json::Value {
    use base64::Engine as _;
    let rel = serde_json::json!({
        "name": release,
        "namespace": namespace,
        "version": version,
        "info": {
            "first_deployed": "2026-10-01T10:00:00Z",
            "last_deployed": "2026-11-01T10:00:00Z",
            "deleted": "",
            "description": "Upgrade complete",
            "status": status
        },
        "chart": {
            "metadata": {"apiVersion": "v2", "name": "matrix-stack", "version": "26.8.2"},
            "templates": [],
            "values": {"synapse": {"enabled": true}, "matrixAuthenticationService": {"enabled": true}}
        },
        "config": config,
        "manifest": "---\n# Source: matrix-stack/templates/synapse/synapse_statefulset.yaml\n",
        "hooks": []
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(rel.to_string().as_bytes())
        .expect("gzip the release");
    let gzipped = gz.finish().expect("finish gzip");
    let b64 = base64::engine::general_purpose::STANDARD;
    let helm_payload = b64.encode(gzipped);
    let k8s_data = b64.encode(helm_payload.as_bytes());
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": format!("sh.helm.release.v1.{release}.v{version}"),
            "namespace": namespace,
            "labels": {
                "name": release,
                "owner": "helm",
                "status": status,
                "version": version.to_string()
            }
        },
        "type": "helm.sh/release.v1",
        "data": {"release": k8s_data}
    })
}
