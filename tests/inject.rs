//! Step-2 injection: when a render that asks for the migration lacks the chart's syn2mas Job,
//! post-render builds one from the render, or refuses with the list of what is missing.

#[path = "support/run.rs"]
mod runner;
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

// ---- The real chart: 26.8.2-dev and the pr1584 overlay (via ESS_GUARD_SHARED) ----

/// The step-2 inputs of both chart versions that show hooks: Helm 4 post-renderer captures and
/// `helm template` renders. `(path under ess-renders/, chart version)`.
const REAL_STEP2: &[(&str, &str)] = &[
    (
        "postrender-input/helm4/step2-syn2mas-migrate.yaml",
        "26.8.2-dev",
    ),
    ("postrender-input/helm4/step2-workers.yaml", "26.8.2-dev"),
    ("step2-syn2mas-migrate.yaml", "26.8.2-dev"),
    ("step2-workers.yaml", "26.8.2-dev"),
    (
        "pr1584/postrender-input/helm4/step2-syn2mas-migrate.yaml",
        "26.8.2-dev-pr1584",
    ),
    (
        "pr1584/postrender-input/helm4/step2-workers.yaml",
        "26.8.2-dev-pr1584",
    ),
    ("pr1584/step2-syn2mas-migrate.yaml", "26.8.2-dev-pr1584"),
    ("pr1584/step2-workers.yaml", "26.8.2-dev-pr1584"),
];

fn read_shared(shared: &std::path::Path, rel: &str) -> String {
    let path = shared.join("ess-renders").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn hook_weight(v: &serde_json::Value) -> i64 {
    v["metadata"]["annotations"]["helm.sh/hook-weight"]
        .as_str()
        .map_or(0, |w| w.parse().unwrap_or_else(|_| panic!("weight {w:?}")))
}

fn is_job(v: &serde_json::Value, name_label: &str) -> bool {
    v["kind"] == "Job" && v["metadata"]["labels"]["app.kubernetes.io/name"] == name_label
}

fn job<'a>(docs: &'a [serde_json::Value], name_label: &str) -> Option<&'a serde_json::Value> {
    docs.iter().find(|v| is_job(v, name_label))
}

/// The chart's own convention for hook weights (its manifest test
/// `test_hook_weights_are_well_known`): a Job's weight is -10, 0 or 10, any other hook's one less.
fn assert_chart_weight_convention(docs: &[serde_json::Value], context: &str) {
    for v in docs {
        if v["metadata"]["annotations"]["helm.sh/hook"].is_null() {
            continue;
        }
        let adjusted = hook_weight(v) + i64::from(v["kind"] != "Job");
        assert!(
            [-10, 0, 10].contains(&adjusted),
            "{context}: {} {} has hook weight {}, outside the chart's set",
            v["kind"],
            v["metadata"]["name"],
            hook_weight(v)
        );
    }
}

/// The env entries named `name` of the syn2mas Job's migration container.
fn migrate_env<'a>(syn2mas: &'a serde_json::Value, name: &str) -> Vec<&'a serde_json::Value> {
    let containers = syn2mas["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    let main = containers
        .iter()
        .find(|c| c["name"] == "syn2mas-migrate")
        .expect("the syn2mas-migrate container");
    main["env"]
        .as_array()
        .map(|env| env.iter().filter(|e| e["name"] == name).collect())
        .unwrap_or_default()
}

/// The values of every `SYN2MAS_SCALE_DOWN_MAX_RETRIES` entry of the syn2mas Job's migration
/// container in a post-rendered `stdout` (exactly one is expected, whoever set it).
fn retries_values(stdout: &str) -> Vec<serde_json::Value> {
    let docs = support::parse_stream(stdout);
    let syn2mas = job(&docs, "syn2mas").expect("the syn2mas Job");
    migrate_env(syn2mas, "SYN2MAS_SCALE_DOWN_MAX_RETRIES")
        .into_iter()
        .map(|e| e["value"].clone())
        .collect()
}

/// Runs post-render on a `legacy_auth` release; returns the exit code, stdout, and stderr
/// followed by the report (`--report`: an allowed run writes nothing to stderr).
fn post_render(args: &[&str], input: &str) -> (i32, String, String) {
    let (run, report) = runner::post_render_offline(args, input.as_bytes().to_vec());
    let code = run
        .code
        .unwrap_or_else(|| panic!("killed by signal {:?}", run.signal));
    (
        code,
        run.stdout_text(),
        format!("{}{}", run.stderr_text(), text(&report)),
    )
}

#[test]
fn real_step2_jobs_are_hardened_within_the_charts_weights() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    for (rel, version) in REAL_STEP2 {
        let input = read_shared(&shared, rel);
        let before = support::parse_stream(&input);
        let chart_job = job(&before, "syn2mas").expect("the chart renders the syn2mas Job");
        assert!(
            chart_job["metadata"]["labels"]["helm.sh/chart"]
                .as_str()
                .is_some_and(|l| l == format!("matrix-stack-{version}")),
            "{rel}: chart version {version}"
        );
        let (code, stdout, stderr) = post_render(&[], &input);
        assert_eq!(code, 0, "{rel}: {stderr}");
        let docs = support::parse_stream(&stdout);
        let syn2mas = job(&docs, "syn2mas").expect("syn2mas Job kept");
        let annotations = &syn2mas["metadata"]["annotations"];
        assert_eq!(
            annotations["helm.sh/hook"], "pre-install,pre-upgrade",
            "{rel}"
        );
        assert_eq!(hook_weight(syn2mas), 10, "{rel}");
        assert_eq!(
            annotations["ess-guard.element.io/hardened"], "true",
            "{rel}"
        );
        for first in ["synapse-check-config", "deployment-markers-pre"] {
            let earlier = job(&docs, first).expect("the chart renders it");
            assert!(
                hook_weight(syn2mas) > hook_weight(earlier),
                "{rel}: the migration runs after {first}"
            );
        }
        assert_eq!(syn2mas["spec"]["backoffLimit"], 0, "{rel}: no retries");
        assert!(
            migrate_env(syn2mas, "SYN2MAS_SCALE_DOWN_MAX_RETRIES").is_empty(),
            "{rel}: matrix-tools' own bound (60) is not raised behind the user's back"
        );
        // Only the hook annotations changed on the Job: the chart's shape is kept.
        let mut expected = chart_job.clone();
        expected["metadata"]["annotations"]["helm.sh/hook-weight"] = "10".into();
        expected["metadata"]["annotations"]["ess-guard.element.io/hardened"] = "true".into();
        assert_eq!(syn2mas, &expected, "{rel}: nothing else in the Job changed");
        assert_chart_weight_convention(&docs, rel);
        assert!(
            stderr.contains("the StatefulSet wait before it has no cap"),
            "{rel}: the report says what is and is not bounded: {stderr}"
        );
        // Idempotent.
        let (again, twice, _) = post_render(&[], &stdout);
        assert_eq!(again, 0, "{rel}");
        assert_eq!(twice, stdout, "{rel}: a second pass changes nothing");
    }
}

#[test]
fn a_job_already_ordered_by_the_chart_is_left_alone() {
    // check-config disabled (the docs' OIDC workaround): the chart's weight 0 already runs after
    // the markers pre-check (-10), with backoffLimit 0: nothing to harden.
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let input = read_shared(&shared, "step2-oidc-checkconfig-disabled.yaml");
    let (code, stdout, stderr) = post_render(&[], &input);
    assert_eq!(code, 0, "{stderr}");
    let before = support::parse_stream(&input);
    let after = support::parse_stream(&stdout);
    assert!(job(&before, "synapse-check-config").is_none());
    assert_eq!(job(&after, "syn2mas"), job(&before, "syn2mas"), "unchanged");
    assert!(!stderr.contains("syn2mas-hook-reordered"), "{stderr}");
}

/// `input` with `SYN2MAS_SCALE_DOWN_MAX_RETRIES=<value>` in the syn2mas-migrate container's env,
/// where the chart puts `syn2mas.extraEnv` (beside `NAMESPACE`, sorted by name).
fn with_user_retries(input: &str, value: &str) -> String {
    let anchor = "      containers:\n      - name: syn2mas-migrate\n";
    let start = input.find(anchor).expect("the syn2mas-migrate container");
    let env = "        - name: NAMESPACE\n          value: ess\n";
    let at = start + input[start..].find(env).expect("its env") + env.len();
    format!(
        "{}        - name: SYN2MAS_SCALE_DOWN_MAX_RETRIES\n          value: \"{value}\"\n{}",
        &input[..at],
        &input[at..]
    )
}

#[test]
fn scale_down_retries_are_set_on_request_and_a_users_value_is_kept() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    for rel in [
        "postrender-input/helm4/step2-syn2mas-migrate.yaml",
        "pr1584/postrender-input/helm4/step2-syn2mas-migrate.yaml",
    ] {
        let input = read_shared(&shared, rel);
        // Asked for, not set by the user: set.
        let (code, stdout, stderr) = post_render(&["--scale-down-retries", "120"], &input);
        assert_eq!(code, 0, "{rel}: {stderr}");
        assert_eq!(retries_values(&stdout), ["120"], "{rel}");
        assert!(stderr.contains("120 retries of ~1 s"), "{rel}: {stderr}");
        let (_, twice, _) = post_render(&["--scale-down-retries", "120"], &stdout);
        assert_eq!(twice, stdout, "{rel}: idempotent");

        // Set by the user in syn2mas.extraEnv: kept, and the report says so.
        let user = with_user_retries(&input, "90");
        let (code, stdout, stderr) = post_render(&["--scale-down-retries", "120"], &user);
        assert_eq!(code, 0, "{rel}: {stderr}");
        assert_eq!(
            retries_values(&stdout),
            ["90"],
            "{rel}: one entry, the user's value stands"
        );
        assert!(
            stderr.contains("note[syn2mas-user-env-kept]") && stderr.contains("\"90\""),
            "{rel}: {stderr}"
        );
        // Not asked for: the user's value is reported as the bound, without a note.
        let (code, _, stderr) = post_render(&[], &user);
        assert_eq!(code, 0, "{rel}");
        assert!(
            stderr.contains("90 retries of ~1 s (set in the values)"),
            "{rel}: {stderr}"
        );
        assert!(!stderr.contains("syn2mas-user-env-kept"), "{rel}: {stderr}");
    }
}

#[test]
fn a_users_extra_env_rendered_by_real_helm_is_kept() {
    let (Some(shared), Some(helm)) = (support::shared_dir(), support::helm4()) else {
        return;
    };
    let sandbox = support::HelmSandbox::new();
    let renders = shared.join("ess-renders");
    for chart in [
        shared.join("ess-chart/matrix-stack-26.8.2-dev.tgz"),
        renders.join("pr1584/chart/matrix-stack-26.8.2-dev-pr1584.tgz"),
    ] {
        let out = support::output(
            sandbox
                .helm4(&helm)
                .args(["template", "ess"])
                .arg(&chart)
                .args(["--namespace", "ess", "-f"])
                .arg(renders.join("values/step2-syn2mas-migrate.yaml"))
                .args([
                    "--set",
                    "matrixAuthenticationService.syn2mas.extraEnv[0].name=SYN2MAS_SCALE_DOWN_MAX_RETRIES",
                    "--set-string",
                    "matrixAuthenticationService.syn2mas.extraEnv[0].value=90",
                ]),
        );
        assert!(out.status.success(), "helm template: {}", text(&out.stderr));
        let render = text(&out.stdout);
        let (code, stdout, stderr) = post_render(&["--scale-down-retries", "300"], &render);
        assert_eq!(code, 0, "{}: {stderr}", chart.display());
        assert_eq!(
            retries_values(&stdout),
            ["90"],
            "{}: one entry, the user's value",
            chart.display()
        );
        assert!(stderr.contains("syn2mas-user-env-kept"), "{stderr}");
    }
}

/// The names of a Job's init containers, without the chart's `db-wait-*` (which a built Job
/// leaves out, see `syn2mas_job`).
fn init_names(job: &serde_json::Value) -> Vec<String> {
    job["spec"]["template"]["spec"]["initContainers"]
        .as_array()
        .expect("init containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .filter(|n| !n.starts_with("db-wait-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_built_job_has_the_shape_of_the_chart_in_front_of_it() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    for (rel, check) in [
        ("postrender-input/helm4/step2-syn2mas-migrate.yaml", true),
        (
            "pr1584/postrender-input/helm4/step2-syn2mas-migrate.yaml",
            false,
        ),
        ("pr1584/step2-syn2mas-migrate.yaml", false),
    ] {
        let input = read_shared(&shared, rel);
        let chart_job = job(&support::parse_stream(&input), "syn2mas")
            .expect("the chart's Job")
            .clone();
        let render = without(&input, |d| is(d, "Job", "ess-syn2mas"));
        let (code, stdout, stderr) = post_render(&[], &render);
        assert_eq!(code, 0, "{rel}: {stderr}");
        let docs = support::parse_stream(&stdout);
        let built = job(&docs, "syn2mas").expect("a Job was built");
        assert_eq!(
            built["metadata"]["annotations"]["ess-guard.element.io/hardened"],
            "injected"
        );
        assert_eq!(
            built["metadata"]["annotations"]["helm.sh/hook"],
            "pre-install,pre-upgrade"
        );
        assert_eq!(hook_weight(built), 10, "{rel}: after check-config");
        assert_eq!(built["spec"]["backoffLimit"], 0);
        assert_eq!(
            init_names(built),
            init_names(&chart_job),
            "{rel}: the init containers of the chart version's own Job"
        );
        assert_eq!(
            init_names(built).iter().any(|n| n == "syn2mas-check"),
            check,
            "{rel}"
        );
        let main = |j: &serde_json::Value| j["spec"]["template"]["spec"]["containers"][0].clone();
        assert_eq!(main(built)["image"], main(&chart_job)["image"], "{rel}");
        assert_eq!(main(built)["args"], main(&chart_job)["args"], "{rel}");
        assert_chart_weight_convention(&docs, rel);
        let shape = if check {
            "(with syn2mas-check)"
        } else {
            "#1584 (no syn2mas-check)"
        };
        assert!(
            stderr.contains(shape),
            "{rel}: the report names the shape: {stderr}"
        );
    }
}

#[test]
fn a_render_whose_chart_version_contradicts_its_markers_gets_no_job() {
    // The 26.8.2-dev label with the #1584 allowed list: which Job to build is unknown, so the
    // upgrade is refused with what is unknown, never given an old-shaped Job.
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let input = read_shared(
        &shared,
        "pr1584/postrender-input/helm4/step2-syn2mas-migrate.yaml",
    )
    .replace("matrix-stack-26.8.2-dev-pr1584", "matrix-stack-26.8.2-dev");
    let render = without(&input, |d| is(d, "Job", "ess-syn2mas"));
    let (code, stdout, stderr) = post_render(&[], &render);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "nothing for Helm to apply");
    assert!(
        stderr.starts_with("ess-guard: REJECTED: [syn2mas-job-incomplete]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the chart label says") && stderr.contains("markers pre-check says"),
        "{stderr}"
    );
}
