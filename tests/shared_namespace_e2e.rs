//! The shared-namespace scale-down hazard against a real API server (kube-apiserver-lite): two
//! releases in one namespace, and the step-2 upgrade of one must be refused naming the other's
//! Synapse StatefulSets (the chart's syn2mas Job would stop them). Skipped without
//! KUBE_APISERVER_LITE_BIN unless ESS_GUARD_REQUIRE_ALL=1.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/scenarios.rs"]
mod scenarios;

use cluster::{ess_guard, LiteServer, Run};
use scenarios::{path_str, render};

const SKIP: &str = "ess-guard.element.io/skip-shared-namespace-scale-down";

fn synapse_sts(release: &str, process: &str, annotations: &str) -> String {
    let name = format!("{release}-synapse-{process}");
    format!(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {name}\n  namespace: ess\n  labels:\n    \
         app.kubernetes.io/component: matrix-server\n    app.kubernetes.io/instance: {name}\n    \
         k8s.element.io/synapse-instance: {release}-synapse\n  annotations: {{{annotations}}}\nspec:\n  replicas: 1\n  \
         serviceName: {name}\n  selector:\n    matchLabels:\n      app.kubernetes.io/instance: {name}\n  \
         template:\n    metadata:\n      labels:\n        app.kubernetes.io/instance: {name}\n    spec:\n      \
         containers:\n      - name: synapse\n        image: ghcr.io/element-hq/synapse:v1.159.0\n"
    )
}

/// Namespace `ess` with release `ess` (legacy_auth, Synapse main) and release `other` (Synapse
/// main and a worker) side by side.
fn two_releases() -> Option<LiteServer> {
    let server = LiteServer::start()?;
    server.kubectl(&["create", "namespace", "ess"], None);
    server.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ess-markers\n  namespace: ess\n  labels:\n    \
         app.kubernetes.io/managed-by: matrix-tools-deployment-markers\ndata:\n  MATRIX_STACK_MSC3861: legacy_auth\n",
    );
    server.apply(&synapse_sts("ess", "main", ""));
    server.apply(&synapse_sts("other", "main", ""));
    server.apply(&synapse_sts("other", "pusher", ""));
    Some(server)
}

fn post_render(server: &LiteServer, step: &str) -> Run {
    let kubeconfig = path_str(&server.restricted_kubeconfig());
    ess_guard(
        &[
            "post-render",
            "-r",
            "ess",
            "-n",
            "ess",
            "--no-tty",
            "--kubeconfig",
            &kubeconfig,
        ],
        Some(&render(step)),
        &[],
    )
}

#[test]
fn step_2_is_refused_naming_the_other_releases_statefulsets() {
    let Some(server) = two_releases() else { return };
    let run = post_render(&server, "step2");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing for Helm when refused");
    assert!(
        run.stderr.contains("shared-namespace-scale-down"),
        "{}",
        run.stderr
    );
    for other in ["other-synapse-main", "other-synapse-pusher"] {
        assert!(
            run.stderr.contains(&format!("StatefulSet {other}")),
            "{other}: {}",
            run.stderr
        );
    }
    assert!(
        !run.stderr.contains("StatefulSet ess-synapse-main ("),
        "own Synapse is expected: {}",
        run.stderr
    );

    // `check --live` takes the same decide step.
    let kubeconfig = path_str(&server.restricted_kubeconfig());
    let path = path_str(&scenarios::render_path("step2"));
    let run = ess_guard(
        &[
            "check",
            "--live",
            "-r",
            "ess",
            "-n",
            "ess",
            "--kubeconfig",
            &kubeconfig,
            &path,
        ],
        None,
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("error[shared-namespace-scale-down]")
            && run.stdout.contains("other-synapse-pusher"),
        "{}",
        run.stdout
    );

    // Step 3 runs no syn2mas Job: nothing to check. (From legacy_auth step 3 is refused by the
    // transition table; with the marker at syn2mas_migrated it is the normal upgrade.)
    server.kubectl(
        &[
            "-n",
            "ess",
            "patch",
            "configmap",
            "ess-markers",
            "--type=merge",
            "-p",
            r#"{"data":{"MATRIX_STACK_MSC3861":"syn2mas_migrated"}}"#,
        ],
        None,
    );
    let run = post_render(&server, "step3");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("shared-namespace"), "{}", run.stderr);
}

#[test]
fn a_reason_on_the_other_statefulsets_allows_it_and_an_empty_one_does_not() {
    let Some(server) = two_releases() else { return };
    for process in ["main", "pusher"] {
        server.apply(&synapse_sts(
            "other",
            process,
            &format!("{SKIP}: \"other is a test copy; downtime agreed\""),
        ));
    }
    let run = post_render(&server, "step2");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.is_empty());

    server.apply(&synapse_sts("other", "pusher", &format!("{SKIP}: \"\"")));
    let run = post_render(&server, "step2");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("other-synapse-pusher"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("suppression-without-reason"),
        "{}",
        run.stderr
    );
}

#[test]
fn forbidden_list_is_a_note_and_offline_says_unchecked() {
    let Some(server) = two_releases() else { return };
    server.deny(&[
        "user=system:serviceaccount:ess:ess-guard,verb=list,resource=statefulsets,namespace=ess",
    ]);
    // An allowed post-render prints nothing on stderr; the report file shows the note.
    let report = server.scratch().join("report.txt");
    let kubeconfig = path_str(&server.restricted_kubeconfig());
    let run = ess_guard(
        &[
            "post-render",
            "-r",
            "ess",
            "-n",
            "ess",
            "--no-tty",
            "--kubeconfig",
            &kubeconfig,
            "--report",
            &path_str(&report),
        ],
        Some(&render("step2")),
        &[],
    );
    assert_eq!(run.code, 0, "403 is a note, not a failure: {}", run.stderr);
    let text = std::fs::read_to_string(&report).expect("report written");
    assert!(text.contains("shared-namespace-unchecked"), "{text}");
    assert!(text.contains("403") || text.contains("refused"), "{text}");

    let path = path_str(&scenarios::render_path("step2"));
    let run = ess_guard(
        &[
            "check",
            "--state",
            "legacy_auth",
            "-r",
            "ess",
            "-n",
            "ess",
            &path,
        ],
        None,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("shared-namespace-unchecked"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("offline"), "{}", run.stdout);
}
