//! Step-2 injection: when a render that asks for the migration lacks the chart's syn2mas Job,
//! post-render builds one from the render, or refuses with the list of what is missing.

mod support;

use support::{code, run, split_documents, text};

/// The example step-2 render (mini-stack, Helm template shape with hooks).
fn step2() -> String {
    let path = support::repo_root().join("examples/renders/step2.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The render without the documents for which `drop` is true.
fn without(render: &str, drop: impl Fn(&str) -> bool) -> String {
    let docs = split_documents(render);
    let kept: Vec<&str> = docs.iter().copied().filter(|d| !drop(d)).collect();
    assert!(kept.len() < docs.len(), "the filter removed nothing");
    kept.iter().map(|d| format!("---\n{d}")).collect()
}

fn is(doc: &str, kind: &str, name: &str) -> bool {
    doc.contains(&format!("\nkind: {kind}\n")) && doc.contains(&format!("  name: {name}\n"))
}

fn parse(doc: &str) -> serde_json::Value {
    let body: String = doc
        .lines()
        .skip_while(|l| l.starts_with("---"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_yaml::from_str(&body)
        .unwrap_or_else(|e| panic!("output document does not parse: {e}\n{doc}"))
}

#[test]
fn missing_syn2mas_job_is_built_from_the_render() {
    let render = without(&step2(), |d| is(d, "Job", "ess-syn2mas"));
    let out = run(
        &["post-render", "--state", "legacy_auth", "--no-tty"],
        render.as_bytes(),
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let docs = split_documents(&stdout);
    assert_eq!(
        docs.len(),
        split_documents(&render).len() + 1,
        "exactly one document added"
    );
    let job = parse(docs.last().expect("an added document"));
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["metadata"]["name"], "ess-syn2mas");
    let annotations = &job["metadata"]["annotations"];
    assert_eq!(annotations["helm.sh/hook"], "pre-install,pre-upgrade");
    let weight: i64 = annotations["helm.sh/hook-weight"]
        .as_str()
        .and_then(|w| w.parse().ok())
        .expect("weight");
    assert_eq!(
        weight, 10,
        "runs after the check-config hook (weight 0), with a weight from the chart's set"
    );
    assert_eq!(job["spec"]["backoffLimit"], 0);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "ess-syn2mas");
    let main = &pod["containers"][0];
    assert_eq!(
        main["image"], "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1",
        "matrix-tools image from the render"
    );
    assert_eq!(main["args"][0], "syn2mas");
    assert!(
        !main["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e["name"] == "SYN2MAS_SCALE_DOWN_MAX_RETRIES"),
        "matrix-tools' own pod-wait bound (60) stands unless asked"
    );
    let images: Vec<&str> = pod["initContainers"]
        .as_array()
        .expect("init containers")
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect();
    assert!(
        images.contains(&"ghcr.io/element-hq/matrix-authentication-service:1.23.0-debug"),
        "mas-cli is copied from the -debug MAS image: {images:?}"
    );
    let volumes = serde_json::to_string(&pod["volumes"]).expect("json");
    for hook_copy in ["ess-synapse-hook", "ess-matrix-authentication-service-pre"] {
        assert!(
            volumes.contains(hook_copy),
            "mounts the step-2 hook copy {hook_copy}: {volumes}"
        );
    }

    // Running post-render over its own output changes nothing.
    let again = run(
        &["post-render", "--state", "legacy_auth", "--no-tty"],
        stdout.as_bytes(),
    );
    assert_eq!(code(&again), 0, "stderr: {}", text(&again.stderr));
    assert_eq!(text(&again.stdout), stdout, "idempotent");
}

#[test]
fn unbuildable_job_is_refused_with_the_list() {
    let render = without(&step2(), |d| {
        is(d, "Job", "ess-syn2mas")
            || is(d, "Secret", "ess-synapse-hook")
            || is(d, "Role", "ess-syn2mas")
    });
    let out = run(
        &["post-render", "--state", "legacy_auth", "--no-tty"],
        render.as_bytes(),
    );
    assert_eq!(code(&out), 1, "rejected");
    assert!(out.stdout.is_empty(), "nothing for Helm to apply");
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("ess-guard: REJECTED: [syn2mas-job-incomplete]"),
        "{stderr}"
    );
    for missing in ["Secret ess-synapse-hook", "Role ess-syn2mas"] {
        assert!(stderr.contains(missing), "names {missing}: {stderr}");
    }
}

#[test]
fn helm3_input_never_gets_a_hook_added() {
    // Helm 3 shape: no hooks. Even for a step-2 reading settled by --step, no document is added.
    let render = without(&step2(), |d| {
        d.contains("\"helm.sh/hook\"") || d.contains("helm.sh/hook:")
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("report.txt");
    let report_arg = report.display().to_string();
    let args = [
        "post-render",
        "--state",
        "legacy_auth",
        "--no-tty",
        "--helm-version",
        "3",
        "--step",
        "migrate",
        "--report",
        &report_arg,
    ];
    let out = run(&args, render.as_bytes());
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        split_documents(&stdout).len(),
        split_documents(&render).len(),
        "no document added"
    );
    assert!(!stdout.contains("ess-guard.element.io/hardened"));
    assert!(stdout.contains("ess-guard.element.io/restore-replicas: \"1\""));
    let report = std::fs::read_to_string(&report).expect("report written");
    assert!(
        report.contains("helm3-no-hooks"),
        "says the chart's hook runs the migration: {report}"
    );
}

#[test]
fn explain_shows_only_what_changed() {
    let out = run(
        &[
            "post-render",
            "--state",
            "legacy_auth",
            "--no-tty",
            "--explain",
        ],
        step2().as_bytes(),
    );
    assert_eq!(code(&out), 0);
    assert!(
        !out.stdout.is_empty(),
        "--explain still writes the manifests"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("+++ b/StatefulSet ess/ess-synapse-main"),
        "{stderr}"
    );
    assert!(
        stderr.contains("-    \"helm.sh/hook-weight\": \"0\""),
        "{stderr}"
    );
    assert!(
        !stderr.contains("kind: Secret"),
        "no Secret text in the explanation"
    );
}
