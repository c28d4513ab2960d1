//! `ess-guard argocd` as Argo CD's Config Management Plugin `generate` command: Argo's build
//! environment (ARGOCD_APP_NAME, ARGOCD_APP_NAMESPACE, KUBE_VERSION, ARGOCD_APP_PARAMETERS or
//! PARAM_*), the command line of examples/argocd/plugin.yaml, real Helm (`helm template` of the
//! mini chart) and a real API server read as the restricted user (the sidecar's token).
//!
//! The contract with Argo: manifests on stdout only when allowed; any refusal, error or cluster
//! trouble is a non-zero exit with NOTHING on stdout (an empty success would prune the app);
//! never an `argocd.argoproj.io/hook` annotation.
//!
//! Needs KUBE_APISERVER_LITE_BIN and ESS_GUARD_HELM3 (Argo CD ships Helm 3; one case also runs
//! with ESS_GUARD_HELM4); without them a test prints `skipped: …` and passes, unless
//! ESS_GUARD_REQUIRE_ALL=1.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/scenarios.rs"]
mod scenarios;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use cluster::{deny_guard, run_with_limit, LiteServer, Run};
use scenarios::RESTORE;
use support::HelmSandbox;

const ARGO_HOOK: &str = "argocd.argoproj.io/hook";

fn repo() -> &'static Path {
    support::repo_root()
}

fn chart() -> String {
    repo()
        .join("fixtures/charts/mini-stack")
        .to_str()
        .expect("UTF-8")
        .to_string()
}

/// The generate command of examples/argocd/plugin.yaml.
fn plugin_command() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("examples/argocd/plugin.yaml"))
        .expect("read plugin.yaml");
    let doc: serde_json::Value = serde_yaml::from_str(&text).expect("plugin.yaml is YAML");
    assert_eq!(doc["kind"], "ConfigManagementPlugin");
    let cmd: Vec<String> = doc["spec"]["generate"]["command"]
        .as_array()
        .expect("spec.generate.command")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    assert_eq!(cmd[0], "ess-guard", "runs ess-guard directly, no shell");
    assert!(
        !cmd.iter().any(|a| a == "-c" || a.ends_with("sh")),
        "no shell string building: {cmd:?}"
    );
    cmd
}

struct App {
    server: LiteServer,
    /// The app's folder in the "repository" (Argo runs generate in it).
    dir: PathBuf,
    /// Helm's folders for the `helm template` ess-guard runs.
    sandbox: HelmSandbox,
}

fn app() -> Option<App> {
    let server = LiteServer::start_with_ess(Some("legacy_auth"))?;
    let dir = server.scratch().join("repo/ess");
    std::fs::create_dir_all(&dir).expect("app dir");
    for name in ["step2", "step3"] {
        std::fs::copy(
            repo()
                .join("fixtures/charts/values")
                .join(format!("{name}.yaml")),
            dir.join(format!("{name}.yaml")),
        )
        .expect("copy values");
    }
    Some(App {
        server,
        dir,
        sandbox: HelmSandbox::new(),
    })
}

impl App {
    /// Runs the plugin's generate command as Argo's cmp-server does: in the app folder, with
    /// Argo's environment plus `env`, the sidecar's credentials as --kubeconfig.
    fn generate(&self, helm: &Path, env: &[(&str, &str)]) -> Run {
        let cmd_line = plugin_command();
        let mut cmd = self.sandbox.isolated(support::bin());
        cmd.args(&cmd_line[1..])
            .arg("--kubeconfig")
            .arg(self.server.restricted_kubeconfig())
            .current_dir(&self.dir);
        cmd.env("ARGOCD_APP_NAME", "ess")
            .env("ARGOCD_APP_NAMESPACE", "ess")
            .env("ARGOCD_APP_REVISION", "0123456789abcdef")
            .env("KUBE_VERSION", "1.33")
            .env("ESS_GUARD_HELM", helm);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_with_limit(cmd, b"")
    }
}

fn params(values: &str) -> String {
    format!(
        r#"[{{"name":"chart","string":"{}"}},{{"name":"values-files","array":["{values}"]}}]"#,
        chart()
    )
}

/// The fail-closed contract: non-zero, nothing on stdout.
#[track_caller]
fn assert_refused(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, code, "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "", "nothing for Argo to apply");
    assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
}

#[test]
fn generate_guards_helm_template_with_the_live_marker() {
    let Some(helm) = support::helm3() else {
        return;
    };
    let Some(app) = app() else { return };

    // Step 2 on legacy_auth: allowed; the manifests (hooks included, as Argo maps them to its
    // own PreSync hooks) with the scale-down annotations, and no Argo hook annotation.
    let run = app.generate(&helm, &[("ARGOCD_APP_PARAMETERS", &params("step2.yaml"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(RESTORE), "{}", run.stdout);
    assert!(
        run.stdout.contains("helm.sh/hook"),
        "hooks kept for Argo to map"
    );
    assert!(!run.stdout.contains(ARGO_HOOK));

    // The same with PARAM_* variables instead of the JSON.
    let chart = chart();
    let run = app.generate(
        &helm,
        &[
            ("PARAM_CHART", &chart),
            ("PARAM_VALUES_FILES_0", "step2.yaml"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(RESTORE));

    // Step 3 on legacy_auth: refused, exit 1, nothing on stdout, the rule on stderr.
    let run = app.generate(&helm, &[("ARGOCD_APP_PARAMETERS", &params("step3.yaml"))]);
    assert_refused(&run, 1, "[mas-requires-syn2mas]");
    assert!(run
        .stderr
        .contains("(context kube-apiserver-lite-ess-guard)"));

    // A values file outside the app folder, and a broken chart: bad input, exit 2.
    let run = app.generate(
        &helm,
        &[("ARGOCD_APP_PARAMETERS", &params("../../etc.yaml"))],
    );
    assert_refused(&run, 2, "inside the app folder");
    let run = app.generate(
        &helm,
        &[
            ("PARAM_CHART", "/nonexistent/chart"),
            ("PARAM_VALUES_FILES_0", "step2.yaml"),
        ],
    );
    assert_refused(&run, 2, "helm template /nonexistent/chart failed");

    // The sidecar's identity may not read the marker (403): fails closed, exit 3.
    app.server.deny(&[&deny_guard("get", "configmaps")]);
    let run = app.generate(&helm, &[("ARGOCD_APP_PARAMETERS", &params("step2.yaml"))]);
    assert_refused(&run, 3, "403");
    app.server.allow_all();

    // No marker, and no sign of the release on this cluster: --expect-release (in the plugin's
    // command) makes it an error instead of "absent allows everything".
    app.server
        .kubectl(&["-n", "ess", "delete", "configmap", "ess-markers"], None);
    let run = app.generate(&helm, &[("ARGOCD_APP_PARAMETERS", &params("step3.yaml"))]);
    assert_refused(&run, 3, "--expect-release");
    // The API server down: exit 3, nothing on stdout.
    let mut app = app;
    app.server.stop();
    let run = app.generate(&helm, &[("ARGOCD_APP_PARAMETERS", &params("step2.yaml"))]);
    assert_refused(&run, 3, "cannot reach the Kubernetes API server");
}

#[test]
fn generate_with_helm4_and_no_argo_environment() {
    let Some(helm) = support::helm4() else {
        return;
    };
    let Some(app) = app() else { return };
    let run = app.generate(&helm, &[("ARGOCD_APP_PARAMETERS", &params("step2.yaml"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(RESTORE));
    assert!(!run.stdout.contains(ARGO_HOOK));

    // Outside Argo (no ARGOCD_APP_NAME): a usage error, nothing on stdout.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ess-guard"));
    cmd.args(["argocd", "--state", "legacy_auth"])
        .current_dir(&app.dir)
        .env_remove("ARGOCD_APP_NAME")
        .env_remove("ARGOCD_APP_PARAMETERS");
    let run = run_with_limit(cmd, b"");
    assert_refused(&run, 2, "ARGOCD_APP_NAME");
}
