//! `ess-guard lint` on Flux HelmRelease manifests, through the real binary: the examples under
//! examples/flux (the safe one passes, the unsafe one fails with both rule ids in every report
//! format), and bad input (exit 2, nothing on stdout).

mod support;

use std::path::PathBuf;

fn example(name: &str) -> String {
    let p: PathBuf = support::repo_root().join("examples/flux").join(name);
    p.to_str().expect("UTF-8").to_string()
}

fn lint(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut all = vec!["lint"];
    all.extend_from_slice(args);
    let out = support::run(&all, stdin);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const RULES: [&str; 2] = [
    "helmrelease-disable-hooks",
    "helmrelease-rollback-remediation",
];

#[test]
fn the_safe_example_passes() {
    let (code, stdout, stderr) = lint(&[&example("helmrelease.yaml")], b"");
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("ess-guard lint: ok:"), "{stdout}");
    assert!(!stdout.contains("helmrelease-"), "{stdout}");
}

#[test]
fn the_unsafe_example_fails_in_every_format() {
    let unsafe_hr = example("helmrelease-unsafe.yaml");
    let (code, stdout, _) = lint(&[&unsafe_hr], b"");
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(
            "error[helmrelease-disable-hooks]: HelmRelease ess/ess: spec.install.disableHooks"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("spec.upgrade.disableHooks"), "{stdout}");
    assert!(
        stdout.contains("warning[helmrelease-rollback-remediation]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("retries is 3 with strategy rollback (the default)"),
        "{stdout}"
    );
    for format in ["json", "sarif", "junit", "github", "gitlab"] {
        let (code, stdout, stderr) = lint(&["-o", format, &unsafe_hr], b"");
        assert_eq!(code, 1, "{format}: {stderr}");
        for rule in RULES {
            assert!(stdout.contains(rule), "{format} lacks {rule}: {stdout}");
        }
    }
    // JSON is machine-readable with the rule ids listed.
    let (_, stdout, _) = lint(&["--format", "json", &unsafe_hr], b"");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(v["verdict"], "rejected");
    assert_eq!(v["inputs"][0]["rules"], serde_json::json!(RULES));
    // The rollback finding alone is a warning: it fails only with --fail-on warning.
    let only_rollback = b"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: ess, namespace: ess}\nspec:\n  chart: {spec: {chart: matrix-stack}}\n  upgrade: {remediation: {retries: 2}}\n";
    let (code, stdout, _) = lint(&["-"], only_rollback);
    assert_eq!(code, 0, "{stdout}");
    let (code, _, _) = lint(&["--fail-on", "warning", "-"], only_rollback);
    assert_eq!(code, 1);
}

#[test]
fn bad_input_is_exit_2_with_nothing_on_stdout() {
    let (code, stdout, stderr) = lint(&["-"], b"kind: HelmRelease\nspec: [\n");
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("document 1: invalid YAML"), "{stderr}");
    let (code, stdout, stderr) = lint(&["-"], b"apiVersion: v1\nkind: ConfigMap\n");
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("no HelmRelease"), "{stderr}");
}

#[test]
fn the_ci_workflow_runs_lint_and_check() {
    let text = std::fs::read_to_string(example("ci-workflow.yaml")).expect("workflow");
    let doc: serde_json::Value = serde_yaml::from_str(&text).expect("workflow is YAML");
    let steps = doc["jobs"]["check"]["steps"].as_array().expect("steps");
    let runs: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    assert!(
        runs.iter().any(|r| r.contains("ess-guard lint")),
        "{runs:?}"
    );
    assert!(
        runs.iter()
            .any(|r| r.contains("ess-guard check render.yaml --live")),
        "{runs:?}"
    );
}
