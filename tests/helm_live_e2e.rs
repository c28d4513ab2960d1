//! ess-guard as Helm's post-renderer, reading the marker from a real API server
//! (kube-apiserver-lite) as the restricted user: Helm 4 through a `postrenderer/v1` plugin that
//! runs `ess-guard` from PATH, Helm 3 through the executable path. `helm template` renders the
//! mini chart (fixtures/charts/mini-stack) offline (KUBECONFIG=/dev/null for Helm itself);
//! only ess-guard talks to the API server, through `--post-renderer-args=--kubeconfig=…`.
//!
//! Needs KUBE_APISERVER_LITE_BIN, ESS_GUARD_HELM3 and ESS_GUARD_HELM4 (scripts/e2e.sh sets
//! them); without one, a test prints `skipped: …` and passes, unless ESS_GUARD_REQUIRE_ALL=1.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/scenarios.rs"]
mod scenarios;
mod support;

use std::path::{Path, PathBuf};

use cluster::{deny_guard, run_with_limit, LiteServer, Run};
use scenarios::RESTORE;
use support::HelmSandbox;

fn values(name: &str) -> String {
    support::repo_root()
        .join("fixtures/charts/values")
        .join(format!("{name}.yaml"))
        .to_str()
        .expect("UTF-8 path")
        .to_string()
}

/// A real API server with the marker `legacy_auth`, and Helm's side of the set-up: a
/// [`HelmSandbox`] with the shipped Helm 4 plugin linked.
struct Setup {
    server: LiteServer,
    helm: PathBuf,
    sandbox: HelmSandbox,
}

impl Setup {
    fn new(helm: Option<PathBuf>) -> Option<Setup> {
        let helm = helm?;
        let server = LiteServer::start_with_ess(Some("legacy_auth"))?;
        let sandbox = HelmSandbox::new();
        sandbox.link_example_plugin();
        Some(Setup {
            server,
            helm,
            sandbox,
        })
    }

    /// `helm template ess mini-stack -n ess -f <values> --post-renderer <pr>` with the
    /// restricted kubeconfig, `--no-tty` and `--report=<report>` passed to ess-guard. Helm 4
    /// when the post-renderer is the plugin name `ess-guard`, else Helm 3.
    fn template(
        &self,
        post_renderer: &str,
        values_name: &str,
        extra: &[&str],
        report: &Path,
    ) -> Run {
        let kubeconfig = self.server.restricted_kubeconfig();
        // Helm itself stays offline (the sandbox's KUBECONFIG=/dev/null); only ess-guard reads
        // the cluster.
        let mut cmd = self
            .sandbox
            .helm(&self.helm, if post_renderer == "ess-guard" { 4 } else { 3 });
        cmd.args(["template", "ess"])
            .arg(support::repo_root().join("fixtures/charts/mini-stack"))
            .args(["--namespace", "ess", "-f", &values(values_name)])
            .args(["--post-renderer", post_renderer])
            .arg("--post-renderer-args=--release=ess")
            .arg("--post-renderer-args=--namespace=ess")
            .arg(format!(
                "--post-renderer-args=--kubeconfig={}",
                kubeconfig.display()
            ))
            .arg("--post-renderer-args=--no-tty")
            .arg(format!(
                "--post-renderer-args=--report={}",
                report.display()
            ))
            .args(extra);
        run_with_limit(cmd, b"")
    }

    fn report(&self, name: &str) -> PathBuf {
        self.server.scratch().join(name)
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn helm4_plugin_reads_the_live_marker() {
    let Some(s) = Setup::new(support::helm4()) else {
        return;
    };
    let origin = format!(
        "marker:    legacy_auth (from ConfigMap ess/ess-markers at {} (context kube-apiserver-lite-ess-guard))",
        s.server.url()
    );

    // Step 2 on legacy_auth: allowed, Synapse annotated, the syn2mas hook hardened.
    let report = s.report("step2.txt");
    let run = s.template("ess-guard", "step2", &[], &report);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(RESTORE), "{}", run.stdout);
    // The hook Job itself is hardened (Helm 4 shows hooks to the post-renderer, before the
    // Synapse StatefulSets: the edit must not be lost to document order).
    // (Its hook weight moves to 10; SYN2MAS_SCALE_DOWN_MAX_RETRIES is only set on request.)
    assert!(
        run.stdout
            .contains("ess-guard.element.io/hardened: \"true\""),
        "{}",
        run.stdout
    );
    let text = read(&report);
    assert!(text.starts_with("ess-guard: allowed:"), "{text}");
    assert!(text.contains("(helm4)"), "{text}");
    assert!(text.contains(&origin), "{text}");

    // Step 3 on legacy_auth: Helm fails; Helm 4 drops the plugin's stderr, the report has why.
    let report = s.report("step3.txt");
    let run = s.template("ess-guard", "step3", &[], &report);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.stdout, "", "nothing rendered");
    assert!(
        run.stderr
            .contains("plugin \"ess-guard\" exited with error"),
        "{}",
        run.stderr
    );
    let text = read(&report);
    assert!(
        text.starts_with("ess-guard: REJECTED: [mas-requires-syn2mas]"),
        "{text}"
    );
    assert!(text.contains(&origin), "{text}");

    // The marker unreadable (403): fails closed, the cause in the report.
    s.server.deny(&[&deny_guard("get", "configmaps")]);
    let report = s.report("forbidden.txt");
    let run = s.template("ess-guard", "step2", &[], &report);
    assert_ne!(run.code, 0);
    assert_eq!(run.stdout, "");
    let text = read(&report);
    assert!(text.contains("403 Forbidden"), "{text}");
    assert!(text.contains("pass --state"), "{text}");
}

#[test]
fn helm3_executable_reads_the_live_marker() {
    let Some(s) = Setup::new(support::helm3()) else {
        return;
    };
    let bin = s.sandbox.ess_guard_path();

    // Step 2 with the intent given: allowed.
    let report = s.report("step2.txt");
    let run = s.template(
        &bin,
        "step2",
        &["--post-renderer-args=--step=migrate"],
        &report,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(RESTORE), "{}", run.stdout);
    assert!(read(&report).contains("(helm3)"));

    // Helm 3 hides hooks, but the values are on Helm's command line (ess-guard's parent):
    // step 2 is known without --step.
    let report = s.report("cmdline.txt");
    let run = s.template(&bin, "step2", &[], &report);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(RESTORE), "{}", run.stdout);
    assert!(
        read(&report).contains("(from Helm's command line)"),
        "{}",
        read(&report)
    );

    // Values Helm reads from stdin are not on its command line: step 2 and step 3 look the
    // same, refused, and the report says why the command line did not settle it.
    let run = s.template(&bin, "step2", &["-f", "-"], &s.report("ambiguous.txt"));
    assert_ne!(run.code, 0);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("[ambiguous-step]"), "{}", run.stderr);
    assert!(
        run.stderr.contains("the values come from stdin (-f -)"),
        "{}",
        run.stderr
    );

    // Step 3 on legacy_auth, with the same values passed through: Helm's error names the rule.
    let values_arg = format!("--post-renderer-args=--values={}", values("step3"));
    let run = s.template(&bin, "step3", &[&values_arg], &s.report("step3.txt"));
    assert_ne!(run.code, 0);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("mas-requires-syn2mas"),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .contains("marker:    legacy_auth (from ConfigMap ess/ess-markers"));
    // …and with --step=finalize.
    let run = s.template(
        &bin,
        "step3",
        &["--post-renderer-args=--step=finalize"],
        &s.report("finalize.txt"),
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("mas-requires-syn2mas"),
        "{}",
        run.stderr
    );

    // The API server down: Helm fails, naming the cause and the escape hatch.
    let mut s = s;
    s.server.stop();
    let run = s.template(
        &bin,
        "step2",
        &["--post-renderer-args=--step=migrate"],
        &s.report("down.txt"),
    );
    assert_ne!(run.code, 0);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("cannot reach the Kubernetes API server"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("pass --state"), "{}", run.stderr);
}
