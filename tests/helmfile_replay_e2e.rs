//! helmfile, replayed: no helmfile binary is available, so these tests run the exact Helm
//! command line helmfile builds for a release (helmfile's `pkg/state/helmx.go` and
//! `pkg/helmexec/exec.go`: `upgrade --install NAME CHART --namespace NS --values FILE
//! --post-renderer ess-guard`, one `--post-renderer-args=VALUE` per entry of
//! `postRendererArgs`, and `--kube-context CTX`), with real Helm 3 and Helm 4 against real API
//! servers. The post-renderer arguments are read from `examples/helmfile/helmfile.yaml`, so the
//! example is what is tested. The one addition to helmfile's line is `--dry-run=server`: Helm
//! reads the release from the server and runs the post-renderer, but applies nothing.
//!
//! Two servers: "prod" holds the marker (`legacy_auth`), "staging" nothing; the kubeconfig's
//! current context is staging, and helmfile gives Helm `--kube-context prod`.
//!
//! Needs KUBE_APISERVER_LITE_BIN, ESS_GUARD_HELM3 and ESS_GUARD_HELM4; without one a test prints
//! `skipped: …` and passes, unless ESS_GUARD_REQUIRE_ALL=1.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::path::{Path, PathBuf};

use cluster::{ess_guard, run_with_limit, Identity, ProdAndStaging, Run};
use support::HelmSandbox;

fn repo() -> &'static Path {
    support::repo_root()
}

fn values(name: &str) -> String {
    let p = repo()
        .join("fixtures/charts/values")
        .join(format!("{name}.yaml"));
    p.to_str().expect("UTF-8").to_string()
}

/// `helmDefaults.postRendererArgs` and `postRenderer` of the example helmfile.yaml.
fn example_post_renderer() -> (String, Vec<String>) {
    let text = std::fs::read_to_string(repo().join("examples/helmfile/helmfile.yaml"))
        .expect("read examples/helmfile/helmfile.yaml");
    let doc: serde_json::Value = serde_yaml::from_str(&text).expect("helmfile.yaml is YAML");
    let defaults = &doc["helmDefaults"];
    let renderer = defaults["postRenderer"]
        .as_str()
        .expect("helmDefaults.postRenderer")
        .to_string();
    let args = defaults["postRendererArgs"]
        .as_array()
        .expect("helmDefaults.postRendererArgs")
        .iter()
        .map(|a| a.as_str().expect("string arg").to_string())
        .collect();
    let release = &doc["releases"][0];
    assert_eq!(
        release["kubeContext"], "prod",
        "the example sets the release's context"
    );
    (renderer, args)
}

/// What helmfile >= 1.5.1 makes of the templates, for release ess/ess in context `context`.
fn rendered(args: &[String], context: &str) -> Vec<String> {
    args.iter()
        .map(|a| {
            a.replace("{{ .Release.Name }}", "ess")
                .replace("{{ .Release.Namespace }}", "ess")
                .replace("{{ .Release.KubeContext }}", context)
        })
        .collect()
}

struct Setup {
    /// The operator's kubeconfig names both clusters as admin, current context staging.
    clusters: ProdAndStaging,
    helm: PathBuf,
    helm4: bool,
    /// Helm 4 finds the example plugin here, as `helm plugin install examples/helm-plugin`
    /// links it.
    sandbox: HelmSandbox,
}

impl Setup {
    fn new(major: u8) -> Option<Setup> {
        let helm = if major == 4 {
            support::helm4()
        } else {
            support::helm3()
        }?;
        let clusters = ProdAndStaging::start(Identity::Admin)?;
        let sandbox = HelmSandbox::new();
        sandbox.link_example_plugin();
        Some(Setup {
            clusters,
            helm4: major == 4,
            helm,
            sandbox,
        })
    }

    /// helmfile's `helm upgrade --install` line for release ess/ess, `--dry-run=server` added.
    fn helmfile_upgrade(&self, renderer: &str, pr_args: &[String], values_name: &str) -> Run {
        let mut cmd = self
            .sandbox
            .helm(&self.helm, if self.helm4 { 4 } else { 3 });
        let prod = &self.clusters.prod;
        cmd.args(["upgrade", "--install", "ess"])
            .arg(repo().join("fixtures/charts/mini-stack"))
            .args(["--namespace", "ess", "--values", &values(values_name)])
            .args(["--post-renderer", renderer]);
        for a in pr_args {
            cmd.arg(format!("--post-renderer-args={a}"));
        }
        cmd.args(["--kube-context", "prod", "--dry-run=server"]);
        // helmfile runs in the folder of helmfile.yaml: the report lands there.
        cmd.current_dir(prod.scratch())
            .env("KUBECONFIG", &self.clusters.kubeconfig)
            .env("ESS_GUARD_NO_TTY", "1");
        run_with_limit(cmd, b"")
    }

    fn report(&self) -> String {
        let path = self.clusters.prod.scratch().join("ess-guard-ess.txt");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::remove_file(&path);
        text
    }
}

fn replay(major: u8) {
    let Some(s) = Setup::new(major) else {
        return;
    };
    let (renderer, template_args) = example_post_renderer();
    let args = rendered(&template_args, "prod");
    let prod_origin = format!(
        "from ConfigMap ess/ess-markers at {} (context prod)",
        s.clusters.prod.url()
    );

    // Allowed: Helm 4 sees hooks, so step 2 is unambiguous; under Helm 3 the legacy values.
    let allowed = if s.helm4 { "step2" } else { "legacy" };
    let run = s.helmfile_upgrade(&renderer, &args, allowed);
    assert_eq!(run.code, 0, "{allowed}: {}", run.stderr);
    assert!(run.stdout.contains("MANIFEST:"), "{}", run.stdout);
    let report = s.report();
    assert!(report.starts_with("ess-guard: allowed:"), "{report}");
    assert!(report.contains(&prod_origin), "{report}");

    // Rejected: step 3 on legacy_auth; Helm stops, the report says why.
    let run = s.helmfile_upgrade(&renderer, &args, "step3");
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("MANIFEST:"), "{}", run.stdout);
    let report = s.report();
    assert!(report.starts_with("ess-guard: REJECTED:"), "{report}");
    assert!(report.contains(&prod_origin), "{report}");

    // The trap: the same entries without --kube-context. Helm deploys to prod, ess-guard reads
    // the current context (staging); --expect-release fails it (exit 3, nothing rendered).
    let without_context: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with("--kube-context"))
        .cloned()
        .collect();
    let run = s.helmfile_upgrade(&renderer, &without_context, allowed);
    assert_ne!(run.code, 0, "{}", run.stdout);
    let report = s.report();
    assert!(report.contains("--expect-release"), "{report}");
    assert!(report.contains(&s.clusters.staging.url()), "{report}");
    assert!(report.contains("wrong cluster"), "{report}");

    // helmfile < 1.5.1: the templates arrive unrendered. Refused before anything is read.
    let run = s.helmfile_upgrade(&renderer, &template_args, allowed);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("MANIFEST:"));
    if !s.helm4 {
        // Helm 3 shows the post-renderer's stderr (Helm 4 discards it).
        assert!(run.stderr.contains("unrendered template"), "{}", run.stderr);
    }
    // The same arguments given to ess-guard directly: exit 2, one line, nothing on stdout.
    let direct: Vec<&str> = template_args.iter().map(String::as_str).collect();
    let run = ess_guard(&direct, Some(b"kind: ConfigMap\n"), &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("helmfile before v1.5.1"),
        "{}",
        run.stderr
    );
}

#[test]
fn helmfile_command_line_with_helm4_plugin() {
    replay(4);
}

#[test]
fn helmfile_command_line_with_helm3_binary() {
    replay(3);
}
