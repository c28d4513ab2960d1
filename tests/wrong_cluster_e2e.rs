//! The wrong-cluster trap, end to end with two real API servers (kube-apiserver-lite).
//!
//! "prod" holds the release (its Helm history, and a `legacy_auth` marker); "staging" has
//! neither. One kubeconfig names both, with `staging` as its current context — the kubeconfig
//! an operator has when Helm (or helmfile) is given `--kube-context prod` but ess-guard is not.
//! ess-guard must say which cluster it read, warn when a syn2mas render finds no release there,
//! and fail (exit 3, nothing on stdout) with `--expect-release`.
//!
//! Needs KUBE_APISERVER_LITE_BIN; without it every test prints `skipped: …` and passes, unless
//! ESS_GUARD_REQUIRE_ALL=1.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/scenarios.rs"]
mod scenarios;

use cluster::{deny_guard, helm_release_secret, Identity, ProdAndStaging, Run};
use scenarios::{render, render_path};
use serde_json::json;

/// Prod and staging, the kubeconfig as the restricted user; prod also holds the release's Helm
/// history (Synapse without MAS).
fn clusters() -> Option<ProdAndStaging> {
    let c = ProdAndStaging::start(Identity::Restricted)?;
    let secret = helm_release_secret(
        "ess",
        "ess",
        3,
        "deployed",
        json!({"synapse": {"enabled": true}, "matrixAuthenticationService": {"enabled": false}}),
    );
    c.prod.apply(&secret.to_string());
    Some(c)
}

/// `ess-guard post-render -r ess -n ess --kubeconfig <two clusters> <extra>` on an example
/// render.
fn post_render(c: &ProdAndStaging, render_name: &str, extra: &[&str]) -> Run {
    cluster::post_render(&c.kubeconfig, &render(render_name), extra, &[])
}

#[test]
fn the_default_context_on_another_cluster_warns_and_expect_release_fails() {
    let Some(c) = clusters() else { return };
    let staging = format!("{} (context staging)", c.staging.url());

    // Step 2 (runs syn2mas) read from staging: absent there, so allowed, but with a warning
    // naming the cluster that was read and how to point ess-guard elsewhere.
    let run = post_render(&c, "step2", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.is_empty(), "manifests handed back");
    assert!(
        run.stderr.contains("warning[no-release-on-cluster]"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&staging), "{}", run.stderr);
    assert!(run.stderr.contains("--kube-context"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("from ConfigMap ess/ess-markers at {staging}")),
        "{}",
        run.stderr
    );

    // The same with --expect-release: exit 3, nothing on stdout, one line naming staging.
    let run = post_render(&c, "step2", &["--expect-release"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("--expect-release"), "{}", run.stderr);
    assert!(run.stderr.contains(&staging), "{}", run.stderr);
    assert!(run.stderr.contains("wrong cluster"), "{}", run.stderr);

    // Step 3 (no syn2mas) from staging: a fresh MAS install looks normal, so no warning —
    // which is exactly why the snippets pass --expect-release: it catches this one too.
    let run = post_render(&c, "step3", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("no-release-on-cluster"),
        "{}",
        run.stderr
    );
    let run = post_render(&c, "step3", &["--expect-release"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "");

    // Pointed at prod, the stored legacy_auth marker decides: step 3 is refused there.
    let run = post_render(&c, "step3", &["--kube-context", "prod", "--expect-release"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains(&format!(
            "from ConfigMap ess/ess-markers at {} (context prod)",
            c.prod.url()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("[mas-requires-syn2mas]"),
        "{}",
        run.stderr
    );

    // HELM_KUBECONTEXT (what Helm exports to plugins) selects the context too.
    let run = cluster::post_render(
        &c.kubeconfig,
        &render("step2"),
        &["--expect-release", "--step=migrate"],
        &[("HELM_KUBECONTEXT", "prod")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("no-release-on-cluster"),
        "{}",
        run.stderr
    );

    // The JSON report of `check --live` carries the same origin.
    let run = cluster::check_live(&c.kubeconfig, &render_path("step2"), &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    assert_eq!(
        v["inputs"][0]["state_origin"],
        json!(format!("ConfigMap ess/ess-markers at {staging}"))
    );
    // …and the same as data, for a pipeline to check which cluster was read.
    assert_eq!(
        v["inputs"][0]["read_from"],
        json!({"context": "staging", "server": c.staging.url(),
               "namespace": "ess", "configmap": "ess-markers"})
    );
    assert!(v["inputs"][0]["rules"]
        .as_array()
        .expect("rules")
        .contains(&json!("no-release-on-cluster")));
}

#[test]
fn an_absent_marker_with_release_history_is_the_right_cluster() {
    let Some(c) = clusters() else { return };
    // The release predates the markers: no ConfigMap, but its Helm history is on prod.
    c.prod
        .kubectl(&["-n", "ess", "delete", "configmap", "ess-markers"], None);
    let run = post_render(&c, "step2", &["--kube-context", "prod", "--expect-release"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("no-release-on-cluster"),
        "{}",
        run.stderr
    );
    // The history says Synapse without MAS: legacy_auth is inferred (step 2 stays allowed).
    assert!(run.stderr.contains("legacy-inferred"), "{}", run.stderr);

    // Listing release Secrets forbidden: --expect-release cannot be verified, so it fails
    // closed naming the verb; without it, the existing warning and `absent`.
    c.prod.deny(&[&deny_guard("list", "secrets")]);
    let run = post_render(&c, "step2", &["--kube-context", "prod", "--expect-release"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("could not be checked"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("403"), "{}", run.stderr);
    let run = post_render(&c, "step2", &["--kube-context", "prod"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("marker-evidence-unchecked"),
        "{}",
        run.stderr
    );
}
