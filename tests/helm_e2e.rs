//! ess-guard as a post-renderer of the real Helm binaries (`ESS_GUARD_HELM3`, `ESS_GUARD_HELM4`),
//! on the `fixtures/charts/mini-stack` chart. No cluster: `helm template`, and Helm 4's
//! `install --dry-run=client`, which needs none.
//!
//! - Helm 4 runs ess-guard through the plugin in `examples/helm-plugin` (installed with
//!   `helm plugin install`, ess-guard on `PATH`). It passes hooks to the post-renderer and takes
//!   hooks back from it, so step 2 comes out hardened. It hides a plugin's stderr, so reasons are
//!   read from `--report`.
//! - Helm 3 runs the ess-guard executable by path. It hides hooks from the post-renderer, so a
//!   step-2 render is ambiguous from legacy_auth until `--step` is given, and ess-guard must not
//!   add hook documents. It shows the post-renderer's stderr in its error.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use support::{code, text, HelmSandbox};

const RESTORE_REPLICAS: &str = "ess-guard.element.io/restore-replicas";
const HARDENED: &str = "ess-guard.element.io/hardened";

fn chart() -> PathBuf {
    support::repo_root().join("fixtures/charts/mini-stack")
}

fn values(name: &str) -> PathBuf {
    support::repo_root()
        .join("fixtures/charts/values")
        .join(format!("{name}.yaml"))
}

/// A sandbox with the example plugin installed the way a user installs it.
fn helm4_sandbox(helm4: &Path) -> HelmSandbox {
    let sandbox = HelmSandbox::new();
    let plugin = support::repo_root().join("examples/helm-plugin");
    let out = support::output(
        sandbox
            .helm4(helm4)
            .args(["plugin", "install"])
            .arg(&plugin),
    );
    assert_eq!(
        code(&out),
        0,
        "helm4 plugin install: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = support::output(sandbox.helm4(helm4).args(["plugin", "list"]));
    assert!(
        text(&out.stdout).contains("ess-guard"),
        "plugin list: {}",
        text(&out.stdout)
    );
    sandbox
}

/// `helm <command> ess mini-stack -n ess -f <values>` plus `extra` arguments.
fn helm(
    mut cmd: std::process::Command,
    command: &[&str],
    values_name: &str,
    extra: &[String],
) -> Output {
    cmd.args(command)
        .arg("ess")
        .arg(chart())
        .args(["-n", "ess", "-f"])
        .arg(values(values_name))
        .args(extra);
    support::output(&mut cmd)
}

/// `--post-renderer-args=<arg>` for each arg, `--no-tty` first.
fn post_renderer_args(args: &[&str]) -> Vec<String> {
    std::iter::once("--no-tty")
        .chain(args.iter().copied())
        .map(|a| format!("--post-renderer-args={a}"))
        .collect()
}

fn with_plugin(args: &[&str]) -> Vec<String> {
    let mut all = vec!["--post-renderer".to_string(), "ess-guard".to_string()];
    all.extend(post_renderer_args(args));
    all
}

fn with_executable(args: &[&str]) -> Vec<String> {
    let mut all = vec![
        "--post-renderer".to_string(),
        support::bin().display().to_string(),
    ];
    all.extend(post_renderer_args(args));
    all
}

fn documents(stream: &str) -> Vec<Value> {
    support::parse_stream(stream)
}

fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")?.get(key)?.as_str()
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")?.get(key)?.as_str()
}

fn is_kind(v: &Value, kind: &str) -> bool {
    v.get("kind").and_then(Value::as_str) == Some(kind)
}

fn job<'a>(docs: &'a [Value], name_label: &str) -> Option<(usize, &'a Value)> {
    docs.iter()
        .enumerate()
        .find(|(_, v)| is_kind(v, "Job") && label(v, "app.kubernetes.io/name") == Some(name_label))
}

fn weight(v: &Value) -> i64 {
    annotation(v, "helm.sh/hook-weight")
        .map_or(0, |w| w.parse().unwrap_or_else(|_| panic!("weight {w:?}")))
}

fn synapse_statefulsets(docs: &[Value]) -> Vec<&Value> {
    docs.iter()
        .filter(|v| {
            is_kind(v, "StatefulSet")
                && label(v, "app.kubernetes.io/component") == Some("matrix-server")
                && label(v, "app.kubernetes.io/name").is_some_and(|n| n.starts_with("synapse-"))
        })
        .collect()
}

/// Every Synapse StatefulSet records the replicas to restore.
fn assert_annotated(docs: &[Value], context: &str) {
    let sets = synapse_statefulsets(docs);
    assert!(!sets.is_empty(), "{context}: no Synapse StatefulSet");
    for set in sets {
        let replicas = set
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .expect("spec.replicas")
            .to_string();
        assert_eq!(
            annotation(set, RESTORE_REPLICAS),
            Some(replicas.as_str()),
            "{context}: {set}"
        );
    }
}

/// The hardened syn2mas hook runs after Synapse's check-config hook.
fn assert_hardened_after_check_config(hooks: &[Value], context: &str) {
    let (_, syn2mas) = job(hooks, "syn2mas")
        .unwrap_or_else(|| panic!("{context}: no syn2mas Job among the hooks"));
    let (_, check) = job(hooks, "synapse-check-config")
        .unwrap_or_else(|| panic!("{context}: no check-config Job"));
    assert_eq!(
        annotation(syn2mas, "helm.sh/hook"),
        Some("pre-install,pre-upgrade"),
        "{context}"
    );
    assert!(
        annotation(syn2mas, HARDENED).is_some(),
        "{context}: syn2mas Job not marked hardened"
    );
    assert!(
        weight(syn2mas) > weight(check),
        "{context}: syn2mas weight {} <= check-config {}",
        weight(syn2mas),
        weight(check)
    );
}

#[test]
fn helm4_template_step2_is_allowed_and_hardened() {
    let Some(helm4) = support::helm4() else {
        return;
    };
    let sandbox = helm4_sandbox(&helm4);
    let out = helm(
        sandbox.helm4(&helm4),
        &["template"],
        "step2",
        &with_plugin(&["--state=legacy_auth"]),
    );
    assert_eq!(code(&out), 0, "helm4 template: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(RESTORE_REPLICAS),
        "no restore-replicas annotation in:\n{stdout}"
    );
    let docs = documents(&stdout);
    assert_annotated(&docs, "helm4 template");
    // `helm template` prints the hooks after the manifests.
    let first_hook = docs
        .iter()
        .position(|v| annotation(v, "helm.sh/hook").is_some())
        .expect("hooks are printed");
    assert!(
        docs[first_hook..]
            .iter()
            .all(|v| annotation(v, "helm.sh/hook").is_some()),
        "hooks are not last"
    );
    assert_hardened_after_check_config(&docs[first_hook..], "helm4 template");
}

#[test]
fn helm4_install_dry_run_lists_the_hardened_hook() {
    let Some(helm4) = support::helm4() else {
        return;
    };
    let sandbox = helm4_sandbox(&helm4);
    let extra = [
        vec!["--dry-run=client".to_string()],
        with_plugin(&["--state=legacy_auth"]),
    ]
    .concat();
    let out = helm(sandbox.helm4(&helm4), &["install"], "step2", &extra);
    assert_eq!(
        code(&out),
        0,
        "helm4 install --dry-run=client: {}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let (_, rest) = stdout
        .split_once("\nHOOKS:\n")
        .unwrap_or_else(|| panic!("no HOOKS: section in:\n{stdout}"));
    let (hooks, manifest) = rest
        .split_once("\nMANIFEST:\n")
        .unwrap_or_else(|| panic!("no MANIFEST: section in:\n{stdout}"));
    let hooks = documents(hooks);
    assert_hardened_after_check_config(&hooks, "helm4 install --dry-run=client HOOKS");
    let manifest = documents(manifest);
    assert!(
        job(&manifest, "syn2mas").is_none(),
        "the syn2mas Job must not be a regular manifest"
    );
    assert_annotated(&manifest, "helm4 install --dry-run=client MANIFEST");
}

#[test]
fn helm4_forbidden_step_fails_and_reports_why() {
    let Some(helm4) = support::helm4() else {
        return;
    };
    let sandbox = helm4_sandbox(&helm4);
    let report = sandbox.path("report.txt");
    let report_arg = format!("--report={}", report.display());
    let out = helm(
        sandbox.helm4(&helm4),
        &["template"],
        "step3",
        &with_plugin(&["--state=legacy_auth", &report_arg]),
    );
    assert_ne!(code(&out), 0, "helm4 must fail: {}", text(&out.stdout));
    assert!(
        out.stdout.is_empty(),
        "nothing may be rendered: {}",
        text(&out.stdout)
    );
    let written = std::fs::read_to_string(&report).expect("the report file is written");
    assert!(
        written.contains("mas-requires-syn2mas"),
        "report:\n{written}"
    );
}

#[test]
fn helm3_step2_is_ambiguous_until_step_is_given() {
    let Some(helm3) = support::helm3() else {
        return;
    };
    let sandbox = HelmSandbox::new();

    // Helm 3 hides the hooks, but ess-guard reads the values from Helm's own command line
    // (its parent): step 2 is known without --step.
    let out = helm(
        sandbox.helm3(&helm3),
        &["template"],
        "step2",
        &with_executable(&["--state=legacy_auth"]),
    );
    assert_eq!(
        code(&out),
        0,
        "helm3 template, step from the command line: {}",
        text(&out.stderr)
    );
    assert_annotated(
        &documents(&text(&out.stdout)),
        "helm3 template, step from the command line",
    );

    let out = helm(
        sandbox.helm3(&helm3),
        &["template"],
        "step2",
        &with_executable(&["--state=legacy_auth", "--step=migrate"]),
    );
    assert_eq!(
        code(&out),
        0,
        "helm3 template --step=migrate: {}",
        text(&out.stderr)
    );
    let guarded = documents(&text(&out.stdout));
    assert_annotated(&guarded, "helm3 template --step=migrate");

    let plain = helm(sandbox.helm3(&helm3), &["template"], "step2", &[]);
    assert_eq!(code(&plain), 0, "helm3 template: {}", text(&plain.stderr));
    let plain = documents(&text(&plain.stdout));
    let jobs = |docs: &[Value]| docs.iter().filter(|v| is_kind(v, "Job")).count();
    assert_eq!(
        jobs(&guarded),
        jobs(&plain),
        "ess-guard must not add a Job on Helm 3 (it would not be a hook)"
    );
    assert_eq!(
        guarded.len(),
        plain.len(),
        "ess-guard must not add or drop documents on Helm 3"
    );
}

#[test]
fn helm3_forbidden_step_shows_the_rule_in_the_error() {
    let Some(helm3) = support::helm3() else {
        return;
    };
    let sandbox = HelmSandbox::new();
    let cases: &[(&str, &[&str], &str)] = &[
        // The values on Helm's command line say step 3: no ambiguity left.
        ("step3", &["--state=legacy_auth"], "mas-requires-syn2mas"),
        (
            "step3",
            &["--state=legacy_auth", "--step=finalize"],
            "mas-requires-syn2mas",
        ),
        ("legacy", &["--state=delegated_auth"], "no-rollback"),
        ("step1", &["--state=syn2mas_migrated"], "no-rollback"),
    ];
    for (values_name, args, rule) in cases {
        let out = helm(
            sandbox.helm3(&helm3),
            &["template"],
            values_name,
            &with_executable(args),
        );
        let stderr = text(&out.stderr);
        assert_ne!(
            code(&out),
            0,
            "helm3 {values_name} {args:?} must fail: {}",
            text(&out.stdout)
        );
        assert!(
            stderr.contains(&format!("[{rule}]")),
            "helm3 {values_name} {args:?}: error does not name {rule}:\n{stderr}"
        );
    }
}
