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
//! * What the e2e tests put on a server, built once here: [`LiteServer::start_with_ess`] (namespace
//!   `ess`, optionally the marker), [`marker_configmap`] / [`ess_markers`] (as the chart's
//!   markers Job labels it), [`synapse_statefulset`], [`helm_release_secret`], [`deny_guard`]
//!   rules for the restricted user, and [`ProdAndStaging`] / [`two_cluster_kubeconfig`] for the
//!   wrong-cluster trap.
//! * How they run ess-guard against it: [`ess_guard`] with the caller's environment scrubbed,
//!   [`guard_with`] adding `--kubeconfig`, and the release-`ess` shorthands [`post_render`],
//!   [`check_live`] and [`for_release`] (also used against the in-process fake server).
//!   Helm itself runs in `support::HelmSandbox` (tests/support/mod.rs).
//!
//! Environment: `KUBE_APISERVER_LITE_BIN` names the server binary. When a variable a test needs
//! is unset, [`require_env`] prints `skipped: <why>` and the test returns, unless
//! `ESS_GUARD_REQUIRE_ALL=1`, which makes it a failure (CI must not hide a broken tool).
//! The tool's scripts are found under `$ESS_GUARD_SHARED/tools/kube-apiserver-lite`: the one
//! setting that names the shared folder (`.ci/run` sets it; a plain clone has none and skips).
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

/// Where `start.sh` and `stop.sh` live: `$ESS_GUARD_SHARED/tools/kube-apiserver-lite`, or
/// `None` (skipped, or a failure under `ESS_GUARD_REQUIRE_ALL=1`) when the shared folder is not
/// named. No guess at `../shared`: one setting says where it is, and CI sets it.
pub fn tools_dir() -> Option<PathBuf> {
    let shared = require_env(
        "ESS_GUARD_SHARED",
        "the shared folder holds kube-apiserver-lite's start.sh",
    )?;
    Some(PathBuf::from(shared).join("tools/kube-apiserver-lite"))
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
        let tools = tools_dir()?;
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

    /// Starts a fresh server with namespace `ess` and, with `marker`, release `ess`'s marker
    /// ConfigMap at that value ([`ess_markers`]): where most e2e tests begin. `None` when
    /// skipped.
    pub fn start_with_ess(marker: Option<&str>) -> Option<LiteServer> {
        let server = LiteServer::start()?;
        server.create_namespace("ess");
        if let Some(value) = marker {
            server.apply(&ess_markers(value));
        }
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

    /// Creates namespace `name` as admin.
    pub fn create_namespace(&self, name: &str) {
        self.kubectl(&["create", "namespace", name], None);
    }

    /// `kubectl -n NS get KIND NAME -o jsonpath=PATH` as admin: one field of one object.
    pub fn jsonpath(&self, ns: &str, kind: &str, name: &str, path: &str) -> String {
        self.kubectl(
            &[
                "-n",
                ns,
                "get",
                kind,
                name,
                "-o",
                &format!("jsonpath={path}"),
            ],
            None,
        )
    }

    /// Merge-patches the marker key of ConfigMap `<release>-markers` in namespace `ess` to
    /// `value`, as the chart's marker Job does; the server's answer is returned (the policy
    /// tests expect refusals).
    pub fn try_set_marker(&self, release: &str, value: &str) -> Output {
        self.try_kubectl(
            &[
                "-n",
                "ess",
                "patch",
                "configmap",
                &format!("{release}-markers"),
                "--type=merge",
                "-p",
                &serde_json::json!({"data": {MARKER_KEY: value}}).to_string(),
            ],
            None,
        )
    }

    /// [`LiteServer::try_set_marker`], which must succeed.
    pub fn set_marker(&self, release: &str, value: &str) {
        let out = self.try_set_marker(release, value);
        assert!(
            out.status.success(),
            "patching {release}-markers to {value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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

/// The marker key the chart stores in ConfigMap `<release>-markers`.
pub const MARKER_KEY: &str = "MATRIX_STACK_MSC3861";

/// The restricted identity of [`LiteServer::restricted_kubeconfig`]; deny rules name it.
pub const GUARD_USER: &str = "system:serviceaccount:ess:ess-guard";

/// A deny rule taking `verb` (`*` for all) on `resource` in namespace `ess` from
/// [`GUARD_USER`], for [`LiteServer::deny`].
pub fn deny_guard(verb: &str, resource: &str) -> String {
    format!("user={GUARD_USER},verb={verb},resource={resource},namespace=ess")
}

/// The marker ConfigMap `<release>-markers` in `ns` with the labels the chart's
/// deployment-markers Job gives it, holding `value` (written into the YAML as is, so a test can
/// store a quoted or odd value) or no data at all (`None`: what the chart's pre-install hook
/// creates). `managed: false` puts `managed-by: Helm` instead of the markers Job's label, which
/// the chart's Job refuses to take over. One builder, so every e2e test stores the marker the
/// same way the chart does.
pub fn marker_configmap(release: &str, ns: &str, value: Option<&str>, managed: bool) -> String {
    let managed_by = if managed {
        "matrix-tools-deployment-markers"
    } else {
        "Helm"
    };
    let data = value
        .map(|v| format!("data:\n  {MARKER_KEY}: {v}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {release}-markers\n  namespace: {ns}\n  labels:\n    \
         app.kubernetes.io/managed-by: {managed_by}\n    app.kubernetes.io/part-of: matrix-stack\n    \
         app.kubernetes.io/instance: {release}-deployment-markers\n{data}"
    )
}

/// The marker ConfigMap of release `ess` in namespace `ess`, managed by the chart, at `value`:
/// the starting point of most e2e tests.
pub fn ess_markers(value: &str) -> String {
    marker_configmap("ess", "ess", Some(value), true)
}

/// A Synapse StatefulSet `<release>-synapse-<process>` in namespace `ess` with the chart's
/// labels (ess-guard finds Synapse by `app.kubernetes.io/component: matrix-server` and
/// `k8s.element.io/synapse-instance`), `replicas` and `annotations` (values are quoted).
pub fn synapse_statefulset(
    release: &str,
    process: &str,
    replicas: i32,
    annotations: &[(&str, &str)],
) -> String {
    let name = format!("{release}-synapse-{process}");
    let annotations: String = if annotations.is_empty() {
        " {}".to_string()
    } else {
        annotations
            .iter()
            .map(|(k, v)| format!("\n    {k}: {}", serde_json::Value::from(*v)))
            .collect()
    };
    format!(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {name}\n  namespace: ess\n  labels:\n    \
         app.kubernetes.io/component: matrix-server\n    app.kubernetes.io/instance: {name}\n    \
         k8s.element.io/synapse-instance: {release}-synapse\n  annotations:{annotations}\nspec:\n  \
         replicas: {replicas}\n  serviceName: {name}\n  podManagementPolicy: Parallel\n  selector:\n    \
         matchLabels:\n      app.kubernetes.io/instance: {name}\n  template:\n    metadata:\n      labels:\n        \
         app.kubernetes.io/instance: {name}\n    spec:\n      containers:\n      - name: synapse\n        \
         image: ghcr.io/element-hq/synapse:v1.159.0\n"
    )
}

/// Which of a server's two kubeconfigs.
#[derive(Clone, Copy, Debug)]
pub enum Identity {
    /// [`LiteServer::admin_kubeconfig`]: what Helm and kubectl run as.
    Admin,
    /// [`LiteServer::restricted_kubeconfig`]: what ess-guard runs as.
    Restricted,
}

impl Identity {
    fn kubeconfig(self, server: &LiteServer) -> PathBuf {
        match self {
            Identity::Admin => server.admin_kubeconfig(),
            Identity::Restricted => server.restricted_kubeconfig(),
        }
    }

    fn user(self) -> &'static str {
        match self {
            Identity::Admin => "admin",
            Identity::Restricted => "ess-guard",
        }
    }
}

/// The value of `key: value` on the first line of a kubeconfig `text` that has it.
fn kubeconfig_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("{key} not in kubeconfig:\n{text}"))
        .trim()
        .to_string()
}

/// Writes `path`: ONE kubeconfig naming two servers as contexts `prod` and `staging` (as `who`
/// on each, with that kubeconfig's namespace), current context `staging`. That is the
/// operator's kubeconfig in the wrong-cluster trap: Helm is told `--kube-context prod`, and
/// whatever is not told reads staging. (The servers share their static tokens, so one user
/// serves both.)
pub fn two_cluster_kubeconfig(
    prod: &LiteServer,
    staging: &LiteServer,
    who: Identity,
    path: &Path,
) -> PathBuf {
    let read = |s: &LiteServer| {
        std::fs::read_to_string(who.kubeconfig(s)).expect("read the server's kubeconfig")
    };
    let (p, s) = (read(prod), read(staging));
    let user = who.user();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n\
         - name: prod\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
         - name: staging\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n\
         users:\n- name: {user}\n  user:\n    token: {}\n\
         contexts:\n\
         - name: prod\n  context:\n    cluster: prod\n    user: {user}\n    namespace: {}\n\
         - name: staging\n  context:\n    cluster: staging\n    user: {user}\n    namespace: {}\n\
         current-context: staging\n",
        kubeconfig_field(&p, "server"),
        kubeconfig_field(&p, "certificate-authority-data"),
        kubeconfig_field(&s, "server"),
        kubeconfig_field(&s, "certificate-authority-data"),
        kubeconfig_field(&p, "token"),
        kubeconfig_field(&p, "namespace"),
        kubeconfig_field(&s, "namespace"),
    );
    std::fs::write(path, text).expect("write the two-cluster kubeconfig");
    path.to_path_buf()
}

/// The wrong-cluster set-up: server "prod" holds release `ess` (namespace `ess`, marker
/// `legacy_auth`), server "staging" only the namespace (a typical shared test cluster), and
/// [`two_cluster_kubeconfig`] names both with staging current.
pub struct ProdAndStaging {
    pub prod: LiteServer,
    pub staging: LiteServer,
    pub kubeconfig: PathBuf,
}

impl ProdAndStaging {
    /// Starts both servers; the kubeconfig (in prod's scratch folder) is for `who`. `None` when
    /// skipped.
    pub fn start(who: Identity) -> Option<ProdAndStaging> {
        let prod = LiteServer::start_with_ess(Some("legacy_auth"))?;
        let staging = LiteServer::start_with_ess(None)?;
        let path = prod.scratch().join("kubeconfig-two-clusters");
        let kubeconfig = two_cluster_kubeconfig(&prod, &staging, who, &path);
        Some(ProdAndStaging {
            prod,
            staging,
            kubeconfig,
        })
    }
}

/// `ess-guard ARGS… --kubeconfig KUBECONFIG` (see [`ess_guard`]): every e2e run of the binary
/// against a server names its kubeconfig explicitly.
pub fn guard_with(
    kubeconfig: impl AsRef<Path>,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> Run {
    let kubeconfig = kubeconfig.as_ref().to_str().expect("UTF-8 kubeconfig path");
    let mut all = args.to_vec();
    all.extend(["--kubeconfig", kubeconfig]);
    ess_guard(&all, stdin, env)
}

/// `ess-guard post-render -r ess -n ess --no-tty EXTRA… --kubeconfig KUBECONFIG` on `render`:
/// what Helm runs for release ess/ess.
pub fn post_render(
    kubeconfig: impl AsRef<Path>,
    render: &[u8],
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut args = vec!["post-render", "-r", "ess", "-n", "ess", "--no-tty"];
    args.extend_from_slice(extra);
    guard_with(kubeconfig, &args, Some(render), env)
}

/// `ess-guard COMMAND… -r ess -n ess EXTRA… --kubeconfig KUBECONFIG` (e.g. `plan`, `markers
/// get`, `recover`): a command about release ess/ess that reads no render.
pub fn for_release(kubeconfig: impl AsRef<Path>, command: &[&str], extra: &[&str]) -> Run {
    let args = [command, &["-r", "ess", "-n", "ess"], extra].concat();
    guard_with(kubeconfig, &args, None, &[])
}

/// `ess-guard check --live -r ess -n ess EXTRA… RENDER --kubeconfig KUBECONFIG`.
pub fn check_live(kubeconfig: impl AsRef<Path>, render: &Path, extra: &[&str]) -> Run {
    let render = render.to_str().expect("UTF-8 render path");
    let mut args = vec!["check", "--live", "-r", "ess", "-n", "ess"];
    args.extend_from_slice(extra);
    args.push(render);
    guard_with(kubeconfig, &args, None, &[])
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
