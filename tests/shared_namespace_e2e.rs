//! The shared-namespace scale-down hazard against a real API server (kube-apiserver-lite): two
//! releases in one namespace, and the step-2 upgrade of one must be refused naming the other's
//! Synapse StatefulSets (the chart's syn2mas Job would stop them). Skipped without
//! KUBE_APISERVER_LITE_BIN unless ESS_GUARD_REQUIRE_ALL=1.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/scenarios.rs"]
mod scenarios;

use cluster::{deny_guard, ess_guard, synapse_statefulset, LiteServer, Run};
use scenarios::{path_str, render, render_path};

const SKIP: &str = "ess-guard.element.io/skip-shared-namespace-scale-down";

/// Namespace `ess` with release `ess` (legacy_auth, Synapse main) and release `other` (Synapse
/// main and a worker) side by side.
fn two_releases() -> Option<LiteServer> {
    let server = LiteServer::start_with_ess(Some("legacy_auth"))?;
    server.apply(&synapse_statefulset("ess", "main", 1, &[]));
    server.apply(&synapse_statefulset("other", "main", 1, &[]));
    server.apply(&synapse_statefulset("other", "pusher", 1, &[]));
    Some(server)
}

fn post_render(server: &LiteServer, step: &str, extra: &[&str]) -> Run {
    cluster::post_render(server.restricted_kubeconfig(), &render(step), extra, &[])
}

#[test]
fn step_2_is_refused_naming_the_other_releases_statefulsets() {
    let Some(server) = two_releases() else { return };
    let run = post_render(&server, "step2", &[]);
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
    let run = cluster::check_live(server.restricted_kubeconfig(), &render_path("step2"), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("error[shared-namespace-scale-down]")
            && run.stdout.contains("other-synapse-pusher"),
        "{}",
        run.stdout
    );

    // Step 3 runs no syn2mas Job: nothing to check. (From legacy_auth step 3 is refused by the
    // transition table; with the marker at syn2mas_migrated it is the normal upgrade.)
    server.set_marker("ess", "syn2mas_migrated");
    let run = post_render(&server, "step3", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("shared-namespace"), "{}", run.stderr);
}

#[test]
fn a_reason_on_the_other_statefulsets_allows_it_and_an_empty_one_does_not() {
    let Some(server) = two_releases() else { return };
    for process in ["main", "pusher"] {
        server.apply(&synapse_statefulset(
            "other",
            process,
            1,
            &[(SKIP, "other is a test copy; downtime agreed")],
        ));
    }
    let run = post_render(&server, "step2", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.is_empty());

    server.apply(&synapse_statefulset("other", "pusher", 1, &[(SKIP, "")]));
    let run = post_render(&server, "step2", &[]);
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
    server.deny(&[&deny_guard("list", "statefulsets")]);
    // An allowed post-render prints nothing on stderr; the report file shows the note.
    let report = server.scratch().join("report.txt");
    let run = post_render(&server, "step2", &["--report", &path_str(&report)]);
    assert_eq!(run.code, 0, "403 is a note, not a failure: {}", run.stderr);
    let text = std::fs::read_to_string(&report).expect("report written");
    assert!(text.contains("shared-namespace-unchecked"), "{text}");
    assert!(text.contains("403") || text.contains("refused"), "{text}");

    let path = path_str(&render_path("step2"));
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
