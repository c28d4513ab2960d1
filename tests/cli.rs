//! The command line as users and Helm meet it: bad input, the flags-only post-renderer call,
//! `--step`, `--report`, the generated rules document, and byte safety of YAML 1.1 scalars.
//!
//! The renders here are written inline, modelled on `fixtures/charts/mini-stack` output, so
//! these tests need nothing from outside (only the last part of the YAML 1.1 test needs Helm 4).

mod support;

use std::path::Path;

use support::{code, summarize, text};

// ---- inline renders ---------------------------------------------------------------------------

/// The deployment-markers pre-upgrade Job of a step-2 render: the chart's own statement of the
/// transition (`syn2mas_migrated`, allowed from `legacy_auth`).
const MARKERS_PRE_JOB: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: ess-deployment-markers-pre
  namespace: ess
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-weight": "-10"
  labels:
    app.kubernetes.io/managed-by: Helm
    app.kubernetes.io/part-of: matrix-stack
    app.kubernetes.io/component: matrix-tools
    app.kubernetes.io/name: deployment-markers-pre
    app.kubernetes.io/instance: ess-deployment-markers-pre
spec:
  backoffLimit: 6
  template:
    spec:
      serviceAccountName: ess-deployment-markers-pre
      restartPolicy: Never
      containers:
      - name: deployment-markers
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        env:
        - name: NAMESPACE
          value: ess
        args:
        - "deployment-markers"
        - "-step"
        - "pre"
        - "-markers"
        - "ess-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:legacy_auth"
"#;

/// The Synapse StatefulSet, carrying scalars that YAML 1.1 and YAML 1.2 readers (or a careless
/// re-serialiser) disagree on. Each line of [`TRICKY_LINES`] appears in it verbatim.
const SYNAPSE_STATEFULSET: &str = r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  labels:
    app.kubernetes.io/managed-by: Helm
    app.kubernetes.io/part-of: matrix-stack
    app.kubernetes.io/component: matrix-server
    app.kubernetes.io/name: synapse-main
    app.kubernetes.io/instance: ess-synapse-main
    app.kubernetes.io/version: "v1.159.0"
    k8s.element.io/synapse-instance: ess-synapse
  annotations:
    example.com/released: "2001-12-14"
    example.com/enabled: "on"
  name: ess-synapse-main
  namespace: ess
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/instance: ess-synapse-main
  serviceName: ess-synapse-main
  podManagementPolicy: Parallel
  template:
    metadata:
      labels:
        app.kubernetes.io/component: matrix-server
        app.kubernetes.io/name: synapse-main
        app.kubernetes.io/instance: ess-synapse-main
    spec:
      serviceAccountName: ess-synapse
      containers:
      - name: synapse
        image: "oci.element.io/synapse:v1.159.0"
        command:
        - "python3"
        - "-m"
        - synapse.app.homeserver
        env:
        - name: FLAG_YES
          value: "yes"
        - name: FLAG_ON
          value: "on"
        - name: FLAG_Y
          value: "y"
        - name: TILDE
          value: "~"
        - name: NOT_A_FLOAT
          value: "1e3"
        - name: A_DATE
          value: "2001-12-14"
        - name: HUGE
          value: 123456789012345678901234567890
      volumes:
      - configMap:
          defaultMode: 420
          name: ess-synapse
        name: plain-config
      - secret:
          secretName: ess-synapse
          defaultMode: 0440
        name: secret-556a943937aa
"#;

/// Lines of [`SYNAPSE_STATEFULSET`] that must survive post-render byte for byte.
const TRICKY_LINES: &[&str] = &[
    r#"    example.com/released: "2001-12-14""#,
    r#"    example.com/enabled: "on""#,
    r#"          value: "yes""#,
    r#"          value: "on""#,
    r#"          value: "y""#,
    r#"          value: "~""#,
    r#"          value: "1e3""#,
    r#"          value: "2001-12-14""#,
    "          value: 123456789012345678901234567890",
    "          defaultMode: 0440",
];

const MAS_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: ess-matrix-authentication-service
  namespace: ess
  labels:
    app.kubernetes.io/component: matrix-authentication
    app.kubernetes.io/name: matrix-authentication-service
    app.kubernetes.io/instance: ess-matrix-authentication-service
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/instance: ess-matrix-authentication-service
  template:
    spec:
      containers:
      - name: matrix-authentication-service
        image: "ghcr.io/element-hq/matrix-authentication-service:1.23.0"
"#;

/// MAS config as the chart renders it after the dry run (`synapse_modern`), with the bcrypt
/// scheme syn2mas needs.
const MAS_CONFIGMAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: ess-matrix-authentication-service
  namespace: ess
  labels:
    app.kubernetes.io/component: matrix-authentication
    app.kubernetes.io/name: matrix-authentication-service
    app.kubernetes.io/instance: ess-matrix-authentication-service
data:
  mas-config-overrides.yaml: |
    matrix:
      homeserver: "ess.localhost"
      endpoint: "http://ess-synapse.ess.svc.cluster.local.:8008"
      kind: synapse_modern
    passwords:
      schemes:
      - version: 1
        algorithm: bcrypt
      - version: 2
        algorithm: argon2id
"#;

/// The chart's syn2mas migration hook (step 2: pre-upgrade, weight 0).
const SYN2MAS_JOB: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  labels:
    app.kubernetes.io/component: matrix-authentication
    app.kubernetes.io/name: syn2mas
    app.kubernetes.io/instance: ess-syn2mas
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-weight": "0"
  name: ess-syn2mas
  namespace: ess
spec:
  backoffLimit: 0
  template:
    spec:
      serviceAccountName: ess-syn2mas
      restartPolicy: Never
      containers:
      - name: syn2mas-migrate
        args: ["syn2mas", "--config", "/conf/mas-config.yaml", "--synapse-config", "/conf/homeserver.yaml"]
        image: "ghcr.io/element-hq/ess-helm/matrix-tools:0.8.1"
        env:
        - name: NAMESPACE
          value: ess
"#;

const CHECK_CONFIG_JOB: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: ess-synapse-check-config
  namespace: ess
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-weight": "0"
  labels:
    app.kubernetes.io/component: matrix-server
    app.kubernetes.io/name: synapse-check-config
    app.kubernetes.io/instance: ess-synapse-check-config
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: check-config
        image: "oci.element.io/synapse:v1.159.0"
        args: ["-m", "synapse.config", "-c", "/conf/homeserver.yaml"]
"#;

/// Template path (below `mini-stack/templates/`) and body of every document of a step-2 render,
/// regular manifests first, hooks after, as `helm template` prints them.
const STEP2_DOCUMENTS: &[(&str, &str)] = &[
    (
        "matrix-authentication-service/configmap.yaml",
        MAS_CONFIGMAP,
    ),
    (
        "matrix-authentication-service/deployment.yaml",
        MAS_DEPLOYMENT,
    ),
    ("synapse/synapse_statefulset.yaml", SYNAPSE_STATEFULSET),
    ("deployment-markers/job.yaml", MARKERS_PRE_JOB),
    (
        "matrix-authentication-service/syn2mas_job.yaml",
        SYN2MAS_JOB,
    ),
    (
        "synapse/synapse_check_config_job_hook.yaml",
        CHECK_CONFIG_JOB,
    ),
];

fn is_hook(body: &str) -> bool {
    body.contains("\"helm.sh/hook\":")
}

/// `helm template` output of step 2: `---`, `# Source:`, hooks included.
fn step2_template() -> String {
    STEP2_DOCUMENTS
        .iter()
        .map(|(path, body)| format!("---\n# Source: mini-stack/templates/{path}\n{body}"))
        .collect()
}

/// What Helm 3 hands a post-renderer for step 2: the same, without the hooks. Steps 2 and 3
/// cannot be told apart in it.
fn step2_helm3() -> String {
    STEP2_DOCUMENTS
        .iter()
        .filter(|(_, body)| !is_hook(body))
        .map(|(path, body)| format!("---\n# Source: mini-stack/templates/{path}\n{body}"))
        .collect()
}

/// A Synapse-only render in Helm 3's shape, which no stored marker but a migrated one refuses.
fn legacy_helm3() -> String {
    format!("---\n# Source: mini-stack/templates/synapse/synapse_statefulset.yaml\n{SYNAPSE_STATEFULSET}")
}

fn post_render(args: &[&str], stdin: &str) -> std::process::Output {
    let mut all = vec!["post-render", "--no-tty"];
    all.extend_from_slice(args);
    support::run(&all, stdin.as_bytes())
}

/// The documents of `text` (pieces between column-0 `---` lines) that differ from `before`'s.
fn changed_pieces<'a>(before: &str, after: &'a str) -> Vec<&'a str> {
    let old = support::split_documents(before);
    let new = support::split_documents(after);
    assert_eq!(old.len(), new.len(), "document count changed:\n{after}");
    old.iter()
        .zip(&new)
        .filter(|(o, n)| o != n)
        .map(|(_, n)| *n)
        .collect()
}

/// `text` without the lines ess-guard adds (its own annotations).
fn without_guard_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|l| !l.contains("ess-guard.element.io/"))
        .collect()
}

// ---- bad input --------------------------------------------------------------------------------

/// One malformed input and what its one-line error must name.
struct BadInput {
    what: &'static str,
    bytes: Vec<u8>,
    /// Extra flags (the Service case needs `--full-parse`, see below).
    flags: &'static [&'static str],
    /// Substrings of the error line after the input name.
    names: &'static [&'static str],
}

fn cm(name: &str) -> String {
    format!("---\n# Source: c/templates/{name}.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
}

fn bad_inputs() -> Vec<BadInput> {
    let helm4_doc = |name: &str, rest: &str| {
        format!("apiVersion: v1\n{rest}metadata:\n  name: {name}\n  annotations:\n    postrenderer.helm.sh/postrender-filename: 'c/templates/{name}.yaml'\n")
    };
    vec![
        BadInput {
            // A ConfigMap the guard reads (Synapse's config): parsed on the fast path too.
            what: "invalid YAML",
            bytes: format!("{}---\n# Source: c/templates/broken.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [ess-synapse\n", cm("a")).into_bytes(),
            flags: &[],
            names: &["document 2 (c/templates/broken.yaml)", "invalid YAML"],
        },
        BadInput {
            // ess-guard skips parsing kinds it does not read unless --full-parse (see report).
            what: "invalid YAML in a Service",
            bytes: format!("{}---\n# Source: c/templates/svc.yaml\napiVersion: v1\nkind: Service\nmetadata:\n  name: [broken\n", cm("a")).into_bytes(),
            flags: &["--full-parse"],
            names: &["document 2 (c/templates/svc.yaml)", "invalid YAML"],
        },
        BadInput {
            what: "a sequence document",
            bytes: format!("{}{}---\n# Source: c/templates/list.yaml\n- a\n- b\n", cm("a"), cm("b")).into_bytes(),
            flags: &[],
            names: &["document 3 (c/templates/list.yaml)", "mapping"],
        },
        BadInput {
            what: "a scalar document",
            bytes: b"---\n# Source: c/templates/s.yaml\njust some text\n".to_vec(),
            flags: &[],
            names: &["document 1 (c/templates/s.yaml)", "mapping"],
        },
        BadInput {
            what: "a document without kind (Helm 4 shape)",
            bytes: format!("{}---\n{}", helm4_doc("a", "kind: ConfigMap\n"), helm4_doc("nokind", "")).into_bytes(),
            flags: &[],
            names: &["document 2 (c/templates/nokind.yaml)", "kind"],
        },
        BadInput {
            what: "invalid UTF-8",
            bytes: [cm("a").as_bytes(), b"data:\n  k: \xff\xfe\n"].concat(),
            flags: &[],
            names: &["line 8", "UTF-8"],
        },
        BadInput {
            what: "a NUL byte",
            bytes: [cm("a").as_bytes(), b"data:\n  k: a\0b\n"].concat(),
            flags: &[],
            names: &["line 8", "NUL"],
        },
        BadInput {
            what: "binary garbage",
            bytes: (0u8..=255).rev().cycle().take(4096).collect(),
            flags: &[],
            names: &["line 1"],
        },
        BadInput { what: "empty input", bytes: Vec::new(), flags: &[], names: &["empty"] },
        BadInput { what: "whitespace only", bytes: b"\n  \n\n".to_vec(), flags: &[], names: &["empty"] },
    ]
}

/// Exit 2, nothing on stdout, one line on stderr that names the input and `names`.
fn assert_bad_input(how: &str, input_name: &str, bad: &BadInput, out: &std::process::Output) {
    let stderr = text(&out.stderr);
    let context = format!("{how} with {}: stderr:\n{stderr}", bad.what);
    assert_eq!(code(out), 2, "{context}");
    assert!(
        out.stdout.is_empty(),
        "{context}\nstdout: {}",
        text(&out.stdout)
    );
    assert_eq!(stderr.lines().count(), 1, "{context}");
    assert!(
        stderr.contains(&format!("{input_name}: ")),
        "the error does not name {input_name}: {context}"
    );
    for name in bad.names {
        assert!(
            stderr.contains(name),
            "the error does not name {name:?}: {context}"
        );
    }
}

#[test]
fn bad_input_is_exit_2_with_one_line_naming_where() {
    let dir = support::temp_dir();
    for bad in bad_inputs() {
        let mut args = vec!["post-render", "--state", "absent", "--no-tty"];
        args.extend_from_slice(bad.flags);
        assert_bad_input(
            "post-render",
            "stdin",
            &bad,
            &support::run(&args, &bad.bytes),
        );

        let file = dir.path().join("input.yaml");
        std::fs::write(&file, &bad.bytes).expect("write input");
        let file = file.to_str().expect("UTF-8 path");
        let mut args = vec!["check", "--state", "absent", file];
        args.extend_from_slice(bad.flags);
        assert_bad_input("check", file, &bad, &support::run(&args, b""));
    }
}

#[test]
fn duplicate_kind_cannot_hide_a_synapse_statefulset() {
    // Kubernetes keeps the last `kind:`; ess-guard must not skip the document as a Service.
    let hidden = legacy_helm3().replacen("kind: StatefulSet\n", "kind: Service\n", 1)
        + "kind: StatefulSet\n";
    let out = post_render(&["--state", "delegated_auth"], &hidden);
    let summary = summarize(&text(&out.stderr));
    assert_eq!(code(&out), 1, "stderr: {}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert_eq!(
        summary.first_rule.as_deref(),
        Some("no-rollback"),
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(
        summary.ids("warning"),
        ["duplicate-key"],
        "stderr: {}",
        text(&out.stderr)
    );
}

// ---- the post-renderer call -------------------------------------------------------------------

#[test]
fn flags_only_invocation_is_post_render() {
    // Helm 3 runs the post-renderer with the --post-renderer-args only. (An allowed run with no
    // warnings writes no report, so this one needs no --no-tty.)
    let input = legacy_helm3();
    let out = support::run(&["--state=absent"], input.as_bytes());
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        input,
        "a Synapse-only render passes through unchanged"
    );

    let out = support::run(&["--state=delegated_auth", "--no-tty"], input.as_bytes());
    assert_eq!(code(&out), 1, "stderr: {}", text(&out.stderr));
    assert!(
        out.stdout.is_empty(),
        "a rejected post-render writes nothing"
    );
    assert_eq!(
        summarize(&text(&out.stderr)).first_rule.as_deref(),
        Some("no-rollback")
    );
}

/// `--expect-release` asks for a look at the cluster; with a stated marker there is no cluster
/// read, so the combination is refused as a usage error instead of skipping the check silently.
#[test]
fn expect_release_needs_a_cluster_read() {
    let input = step2_helm3();
    for stated in ["--state=legacy_auth", "--state-file=/dev/null"] {
        let out = post_render(&[stated, "--expect-release"], &input);
        assert_eq!(code(&out), 2, "{stated}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{stated}: nothing for Helm to apply");
        assert!(
            text(&out.stderr).contains("'--expect-release'"),
            "{stated}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn step_flag_settles_the_helm3_ambiguity() {
    let input = step2_helm3();
    let first_rule = |out: &std::process::Output| summarize(&text(&out.stderr)).first_rule;

    let out = post_render(&["--state", "legacy_auth"], &input);
    assert_eq!(
        (code(&out), first_rule(&out).as_deref()),
        (1, Some("ambiguous-step")),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());

    // As Helm 3 passes them: flags only, `--flag=value`.
    let out = support::run(
        &["--state=legacy_auth", "--step=migrate", "--no-tty"],
        input.as_bytes(),
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let output = text(&out.stdout);
    let changed = changed_pieces(&input, &output);
    assert_eq!(
        changed.len(),
        1,
        "only the Synapse StatefulSet changes:\n{output}"
    );
    assert!(
        changed[0].contains("    ess-guard.element.io/restore-replicas: \"2\"\n"),
        "{}",
        changed[0]
    );
    assert!(
        !output.contains("kind: Job"),
        "no hook may be added on Helm 3 input:\n{output}"
    );

    let out = post_render(&["--state", "legacy_auth", "--step", "finalize"], &input);
    assert_eq!(
        (code(&out), first_rule(&out).as_deref()),
        (1, Some("mas-requires-syn2mas")),
        "{}",
        text(&out.stderr)
    );

    // A step the render cannot be is a contradiction between the inputs: bad input.
    let out = post_render(&["--state", "legacy_auth", "--step", "dry-run"], &input);
    assert_eq!(code(&out), 2, "stderr: {}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn report_file_receives_the_verdict_on_rejection() {
    let dir = support::temp_dir();
    let report = dir.path().join("report.txt");
    let report_arg = format!("--report={}", report.display());
    let out = post_render(&["--state=delegated_auth", &report_arg], &step2_template());
    assert_eq!(code(&out), 1, "stderr: {}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&report).expect("the report file is written");
    assert_eq!(
        summarize(&written).first_rule.as_deref(),
        Some("syn2mas-rerun"),
        "report:\n{written}"
    );
    assert!(
        written.contains("marker:    delegated_auth"),
        "report:\n{written}"
    );
}

// ---- docs/rules.md ----------------------------------------------------------------------------

#[test]
fn rules_markdown_matches_docs() {
    let out = support::run(&["rules", "--format", "markdown"], b"");
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let path = support::repo_root().join("docs/rules.md");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        text(&out.stdout) == checked_in,
        "docs/rules.md is out of date; regenerate it with\n  cargo run -- rules -o markdown > docs/rules.md"
    );
}

// ---- YAML 1.1 scalars -------------------------------------------------------------------------

#[test]
fn yaml11_scalars_survive_post_render() {
    let input = step2_template();
    let out = post_render(&["--state", "legacy_auth"], &input);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let output = text(&out.stdout);
    let changed = changed_pieces(&input, &output);
    let synapse = changed
        .iter()
        .find(|d| d.contains("kind: StatefulSet"))
        .expect("the Synapse StatefulSet is annotated");
    for line in TRICKY_LINES {
        assert!(
            synapse.lines().any(|l| l == *line),
            "line {line:?} is not kept byte for byte:\n{synapse}"
        );
    }
    assert!(
        synapse.contains("    ess-guard.element.io/restore-replicas: \"2\"\n"),
        "{synapse}"
    );
    let original = format!(
        "# Source: mini-stack/templates/synapse/synapse_statefulset.yaml\n{SYNAPSE_STATEFULSET}"
    );
    assert_eq!(
        without_guard_lines(synapse),
        original,
        "only ess-guard's annotation lines may be added"
    );

    // Real Helm 4 must read the output as it reads the chart: run a chart made of these
    // documents through a pass-through plugin and through ess-guard, and compare.
    let Some(helm4) = support::helm4() else {
        return;
    };
    let sandbox = support::HelmSandbox::new();
    let chart = sandbox.path("yaml11");
    write_chart(&chart);
    sandbox.link_plugin(&support::repo_root().join("examples/helm-plugin"));
    sandbox.write_plugin(
        "passthrough",
        "apiVersion: v1\nname: passthrough\ntype: postrenderer/v1\nruntime: subprocess\nversion: 0.1.0\nruntimeConfig:\n  platformCommand:\n    - command: cat\n",
    );
    let template = |plugin: &str, extra: &[&str]| {
        let mut cmd = sandbox.helm4(&helm4);
        cmd.args(["template", "ess"])
            .arg(&chart)
            .args(["-n", "ess", "--post-renderer", plugin])
            .args(extra);
        let out = support::output(&mut cmd);
        assert_eq!(
            code(&out),
            0,
            "helm4 template with {plugin}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let plain = template("passthrough", &[]);
    let guarded = template(
        "ess-guard",
        &[
            "--post-renderer-args=--state=legacy_auth",
            "--post-renderer-args=--no-tty",
        ],
    );
    let plain_docs = support::split_documents(&plain);
    let guarded_docs = support::split_documents(&guarded);
    assert_eq!(
        plain_docs.len(),
        guarded_docs.len(),
        "Helm 4 output:\n{guarded}"
    );
    for (p, g) in plain_docs.iter().zip(&guarded_docs) {
        if p.contains("kind: StatefulSet") {
            assert!(
                g.contains("ess-guard.element.io/restore-replicas: \"2\""),
                "not annotated through Helm 4:\n{g}"
            );
            assert_eq!(
                without_guard_lines(g),
                *p,
                "Helm 4 reads the guarded StatefulSet differently"
            );
        } else if !p.contains("name: ess-syn2mas") {
            assert_eq!(g, p, "Helm 4 reads an untouched document differently");
        }
    }
}

/// A chart whose templates are the step-2 documents, verbatim (they hold no template actions).
fn write_chart(dir: &Path) {
    std::fs::create_dir_all(dir.join("templates")).expect("create chart");
    std::fs::write(
        dir.join("Chart.yaml"),
        "apiVersion: v2\nname: mini-stack\nversion: 0.1.0\n",
    )
    .expect("write Chart.yaml");
    for (path, body) in STEP2_DOCUMENTS {
        assert!(!body.contains("{{"), "{path} would be read as a template");
        let file = dir.join("templates").join(path.replace('/', "_"));
        std::fs::write(file, body).expect("write template");
    }
}

#[test]
fn output_flag_and_its_format_alias_print_the_same() {
    let step2 = support::repo_root().join("examples/renders/step2.yaml");
    let step3 = support::repo_root().join("examples/renders/step3.yaml");
    let (step2, step3) = (step2.display().to_string(), step3.display().to_string());
    let cases: [(&[&str], &str); 4] = [
        (&["check", "--state", "legacy_auth", &step2], "json"),
        (
            &["plan", "--state", "legacy_auth", "-r", "ess", "-n", "ess"],
            "json",
        ),
        (&["rules"], "markdown"),
        (&["diff", &step2, &step3], "summary"),
    ];
    for (command, value) in cases {
        let outputs: Vec<(i32, String)> = ["-o", "--output", "--format"]
            .iter()
            .map(|flag| {
                let mut args = command.to_vec();
                args.extend([*flag, value]);
                let out = support::run(&args, b"");
                (code(&out), text(&out.stdout))
            })
            .collect();
        assert!(!outputs[0].1.is_empty(), "{command:?}: no output");
        assert!(
            outputs.iter().all(|o| *o == outputs[0]),
            "{command:?}: -o, --output and --format differ"
        );
        if value == "json" {
            serde_json::from_str::<serde_json::Value>(&outputs[0].1)
                .unwrap_or_else(|e| panic!("{command:?} -o json is not JSON: {e}"));
        }
    }
}
