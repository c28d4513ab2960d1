//! End to end against a real Kubernetes API server (kube-apiserver-lite: upstream
//! k8s.io/apiserver + etcd, real TLS, bearer tokens, 403s and resourceVersions), through the
//! real `ess-guard` binary. Objects are created with kubectl as `admin`; ess-guard runs as the
//! restricted user `system:serviceaccount:ess:ess-guard` (kubeconfig-ess-guard, context
//! namespace `ess`), whose rights are cut down with deny rules.
//!
//! Needs KUBE_APISERVER_LITE_BIN (scripts/e2e.sh sets it); without it every test prints
//! `skipped: …` and passes, unless ESS_GUARD_REQUIRE_ALL=1.
//!
//! The fake-server twin of these scenarios, with request recording and fault injection, is
//! tests/live_fake.rs. The recover conflict (a StatefulSet changed between ess-guard's list
//! and its patch) cannot be provoked deterministically here without a test-only hook in the
//! binary, so it is tested on the fake only (`recover_refuses_a_statefulset_changed_after_listing`);
//! the real server's 409 on a stale resourceVersion is checked in tests/kube_access.rs.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/scenarios.rs"]
mod scenarios;

use std::time::Duration;

use cluster::{
    deny_guard, helm_release_secret, marker_configmap, synapse_statefulset, LiteServer, Run,
    GUARD_USER as USER,
};
use scenarios::{expected, render, render_path, RENDERS, RESTORE, REUSE_VALUES, STATES};
use serde_json::{json, Value};

/// A fresh server with namespace `ess`; `None` when skipped.
fn server() -> Option<LiteServer> {
    LiteServer::start_with_ess(None)
}

/// Stores the marker for `state` (`absent`: deletes the ConfigMap).
fn set_state(server: &LiteServer, state: &str) {
    if state == "absent" {
        server.kubectl(
            &[
                "-n",
                "ess",
                "delete",
                "configmap",
                "ess-markers",
                "--ignore-not-found",
            ],
            None,
        );
    } else {
        server.apply(&marker_configmap("ess", "ess", Some(state), true));
    }
}

/// Synapse StatefulSet `ess-synapse-<process>` with `replicas`; `restore`: scaled down by an
/// earlier post-render, which recorded that many replicas.
fn synapse(process: &str, replicas: i32, restore: Option<u32>) -> String {
    let restore = restore.map(|n| n.to_string());
    let annotations = match &restore {
        Some(n) => vec![
            (RESTORE, n.as_str()),
            ("ess-guard.element.io/scaled-down-by", "syn2mas"),
        ],
        None => vec![],
    };
    synapse_statefulset("ess", process, replicas, &annotations)
}

fn sts_replicas(server: &LiteServer, name: &str) -> String {
    server.jsonpath("ess", "statefulset", name, "{.spec.replicas}")
}

/// ess-guard as the restricted user.
fn guard(server: &LiteServer, args: &[&str], stdin: Option<&[u8]>) -> Run {
    cluster::guard_with(server.restricted_kubeconfig(), args, stdin, &[])
}

/// `ess-guard COMMAND… -r ess -n ess EXTRA…` as the restricted user.
fn release_cmd(server: &LiteServer, command: &[&str], extra: &[&str]) -> Run {
    cluster::for_release(server.restricted_kubeconfig(), command, extra)
}

fn post_render(server: &LiteServer, render_name: &str, extra: &[&str]) -> Run {
    cluster::post_render(
        server.restricted_kubeconfig(),
        &render(render_name),
        extra,
        &[],
    )
}

fn check_live(server: &LiteServer, render_name: &str) -> Run {
    cluster::check_live(
        server.restricted_kubeconfig(),
        &render_path(render_name),
        &[],
    )
}

#[track_caller]
fn assert_verdict(run: &Run, want: Option<&str>, what: &str) {
    match want {
        None => assert_eq!(run.code, 0, "{what}: {}{}", run.stdout, run.stderr),
        Some(rule) => {
            assert_eq!(run.code, 1, "{what}: {}{}", run.stdout, run.stderr);
            let report = if run.stdout.starts_with("ess-guard: ") {
                &run.stdout
            } else {
                &run.stderr
            };
            assert!(
                report.starts_with(&format!("ess-guard: REJECTED: [{rule}]")),
                "{what}: {report}"
            );
        }
    }
}

/// Exit 3, nothing on stdout, one stderr line with the cause and the escape hatch.
#[track_caller]
fn assert_state_failure(run: &Run, cause: &str) {
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(cause), "{cause:?} not in {}", lines[0]);
    assert!(
        lines[0].contains("pass --state <absent|legacy_auth|syn2mas_migrated|delegated_auth>"),
        "{}",
        lines[0]
    );
}

// ------------------------------------------------------------------------- stored states

#[test]
fn every_stored_state_through_post_render_and_check() {
    let Some(server) = server() else { return };
    let origin = format!(
        " (from ConfigMap ess/ess-markers at {} (context kube-apiserver-lite-ess-guard))",
        server.url()
    );
    for state in STATES {
        set_state(&server, state);
        for name in RENDERS {
            let want = expected(state, name);
            let what = format!("{state} + {name}");

            let run = post_render(&server, name, &[]);
            assert_verdict(&run, want, &what);
            if want.is_none() {
                assert!(run.stdout.contains("kind: StatefulSet"), "{what}");
                assert_eq!(
                    run.stdout.contains(RESTORE),
                    name == "step2",
                    "{what}: only step 2 records replicas"
                );
            } else {
                assert_eq!(run.stdout, "", "{what}");
            }

            let run = check_live(&server, name);
            assert_verdict(&run, want, &what);
            assert!(
                run.stdout.contains(&format!("marker:    {state}{origin}")),
                "{what}: {}",
                run.stdout
            );
        }

        // Namespace from the render (post-render without -n) and from the restricted
        // kubeconfig's context (markers get without -n).
        let run = guard(
            &server,
            &["post-render", "-r", "ess", "--no-tty"],
            Some(&render("step3")),
        );
        assert_verdict(&run, expected(state, "step3"), state);
        let run = guard(
            &server,
            &["markers", "get", "-r", "ess", "--format", "json"],
            None,
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let v: Value = serde_json::from_str(&run.stdout).expect("JSON");
        assert_eq!(v["namespace"], "ess");
        assert_eq!(v["context"], "kube-apiserver-lite-ess-guard");
        assert_eq!(v["state"], state);
        assert_eq!(v["exists"], state != "absent");
    }
}

/// The chart's markers Job refuses a ConfigMap without its managed-by label, so ess-guard
/// refuses first, with that rule on the verdict line (issue 17; it used to warn and allow).
#[test]
fn unmanaged_marker_is_refused() {
    let Some(server) = server() else { return };
    server.apply(&marker_configmap("ess", "ess", Some("legacy_auth"), false));
    for render in ["step2", "step3"] {
        let run = post_render(&server, render, &[]);
        assert_verdict(&run, Some("unmanaged-marker"), render);
        assert_eq!(run.stdout, "");
    }
    let run = check_live(&server, "step1");
    assert_verdict(&run, Some("unmanaged-marker"), "check step1");
}

/// A stored value the chart's allowed lists do not hold is refused (exit 1), compared exactly
/// as the chart does: an unknown string, and `legacy_auth` with a trailing newline, which the
/// old reader trimmed into an allowed step 2.
#[test]
fn unknown_or_untrimmed_marker_value_is_refused() {
    let Some(server) = server() else { return };
    for (yaml_value, shown) in [
        ("stage9_migrated", "\"stage9_migrated\""),
        ("\"legacy_auth\\n\"", "\"legacy_auth\\n\""),
    ] {
        server.apply(&marker_configmap("ess", "ess", Some(yaml_value), true));
        let run = post_render(&server, "step2", &[]);
        assert_verdict(&run, Some("unknown-marker-value"), shown);
        assert!(run.stderr.contains(shown), "{}", run.stderr);
        assert_eq!(run.stdout, "");
        let run = check_live(&server, "step1");
        assert_verdict(&run, Some("unknown-marker-value"), shown);
    }
}

// ---------------------------------------------------------------- absent: inferred legacy

#[test]
fn absent_marker_with_evidence_of_synapse() {
    let Some(server) = server() else { return };
    // Nothing at all: absent allows step 3.
    assert_eq!(post_render(&server, "step3", &[]).code, 0);

    // A release whose stored values turn MAS off: legacy_auth inferred.
    let release = helm_release_secret(
        "ess",
        "ess",
        5,
        "deployed",
        json!({"matrixAuthenticationService": {"enabled": false}}),
    );
    server.apply(&release.to_string());
    let run = post_render(&server, "step3", &[]);
    assert_verdict(&run, Some("mas-requires-syn2mas"), "release evidence");
    assert!(
        run.stderr.contains("warning[legacy-inferred]"),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .contains("Helm release ess v5 runs Synapse without MAS"));
    server.kubectl(
        &["-n", "ess", "delete", "secret", "sh.helm.release.v1.ess.v5"],
        None,
    );

    // Synapse's main StatefulSet: legacy_auth inferred.
    server.apply(&synapse("main", 1, None));
    let run = post_render(&server, "step3", &[]);
    assert_verdict(&run, Some("mas-requires-syn2mas"), "sts evidence");
    assert!(
        run.stderr.contains("StatefulSet ess-synapse-main exists"),
        "{}",
        run.stderr
    );
    let run = check_live(&server, "step2");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains("marker:    legacy_auth"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("warning[legacy-inferred]"));

    // The evidence reads forbidden: a warning, and the marker stays absent.
    server.deny(&[
        &deny_guard("list", "secrets"),
        &deny_guard("get", "statefulsets"),
    ]);
    let run = post_render(&server, "step3", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning[marker-evidence-unchecked]"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(USER), "{}", run.stderr);
    assert!(!run.stderr.contains("legacy-inferred"));
}

// ------------------------------------------------------------------------------ failures

#[test]
fn forbidden_and_stopped_server_exit_3() {
    let Some(mut server) = server() else { return };
    set_state(&server, "legacy_auth");
    let rule = deny_guard("get", "configmaps");
    server.deny(&[&rule]);
    let cause = format!(
        "not allowed to get configmaps \"ess-markers\" in namespace \"ess\" (403 Forbidden: configmaps \"ess-markers\" is forbidden: User \"{USER}\" cannot get resource \"configmaps\""
    );
    assert_state_failure(&post_render(&server, "step2", &[]), &cause);
    assert_state_failure(&check_live(&server, "step3"), &cause);
    assert_state_failure(&release_cmd(&server, &["plan"], &[]), &cause);
    assert_state_failure(&release_cmd(&server, &["markers", "get"], &[]), &cause);
    // The escape hatch works without the cluster.
    let run = guard(
        &server,
        &["post-render", "--state", "legacy_auth", "--no-tty"],
        Some(&render("step3")),
    );
    assert_verdict(&run, Some("mas-requires-syn2mas"), "--state");
    server.allow(&[&rule]);
    assert_eq!(post_render(&server, "step2", &[]).code, 0);

    // A wrong token: 401.
    let text = std::fs::read_to_string(server.restricted_kubeconfig()).expect("kubeconfig");
    let bad = server.scratch().join("kubeconfig-bad-token");
    std::fs::write(&bad, text.replace("ess-guard-token", "expired-token")).expect("write");
    let run = cluster::post_render(&bad, &render("step2"), &[], &[]);
    assert_state_failure(&run, "401 Unauthorized");

    // The kubeconfig without its CA: TLS fails.
    let no_ca: String = text
        .lines()
        .filter(|l| !l.contains("certificate-authority-data"))
        .map(|l| format!("{l}\n"))
        .collect();
    let no_ca_path = server.scratch().join("kubeconfig-no-ca");
    std::fs::write(&no_ca_path, no_ca).expect("write");
    let run = cluster::post_render(&no_ca_path, &render("step2"), &[], &[]);
    assert_state_failure(&run, "TLS connection to the Kubernetes API server");

    server.stop();
    let run = post_render(&server, "step2", &["--timeout", "2"]);
    assert_state_failure(&run, "cannot reach the Kubernetes API server");
    assert!(run.elapsed < Duration::from_secs(15), "{:?}", run.elapsed);
    assert_state_failure(
        &release_cmd(&server, &["plan"], &["--timeout", "2"]),
        "cannot reach the Kubernetes API server",
    );
}

// ------------------------------------------------------------------------- least privilege

/// Deny rules that leave the restricted user only `verbs_left` on `resource` in `ess`.
fn deny_all_but(resource: &str, verbs_left: &[&str]) -> Vec<String> {
    [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ]
    .into_iter()
    .filter(|v| !verbs_left.contains(v))
    .map(|v| deny_guard(v, resource))
    .collect()
}

fn deny_owned(server: &LiteServer, rules: &[String]) {
    let refs: Vec<&str> = rules.iter().map(String::as_str).collect();
    server.deny(&refs);
}

#[test]
fn least_privilege_post_render_needs_only_get_configmaps() {
    let Some(server) = server() else { return };
    set_state(&server, "legacy_auth");
    server.apply(&synapse("main", 1, None));
    let mut rules = deny_all_but("configmaps", &["get"]);
    rules.push(deny_guard("*", "secrets"));
    rules.push(deny_guard("*", "statefulsets"));
    deny_owned(&server, &rules);
    // The rules are in force: listing ConfigMaps is refused to the restricted user.
    let out = std::process::Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(server.restricted_kubeconfig())
        .args(["-n", "ess", "get", "configmaps"])
        .output()
        .expect("kubectl");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Forbidden"));

    let run = post_render(&server, "step3", &[]);
    assert_verdict(&run, Some("mas-requires-syn2mas"), "least privilege");
    let run = post_render(&server, "step2", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(RESTORE));
    assert_eq!(check_live(&server, "step1").code, 0);
    assert_eq!(release_cmd(&server, &["plan"], &[]).code, 0);
    assert_eq!(release_cmd(&server, &["markers", "get"], &[]).code, 0);

    // What needs more: recover (list, patch statefulsets), --reuse-values (list secrets).
    let run = release_cmd(&server, &["recover"], &[]);
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("not allowed to list statefulsets"),
        "{}",
        run.stderr
    );
    let run = guard(
        &server,
        &[&REUSE_VALUES[..], &["--state", "legacy_auth"]].concat(),
        None,
    );
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("not allowed to list secrets"),
        "{}",
        run.stderr
    );
}

#[test]
fn least_privilege_recover_and_reuse_values() {
    let Some(server) = server() else { return };
    server.apply(&synapse("main", 0, Some(2)));
    let release = helm_release_secret(
        "ess",
        "ess",
        2,
        "deployed",
        json!({"matrixAuthenticationService": {"enabled": false}}),
    );
    server.apply(&release.to_string());
    // recover: list + patch on statefulsets; values --reuse-values: list on secrets.
    let mut rules = deny_all_but("statefulsets", &["list", "patch"]);
    rules.extend(deny_all_but("secrets", &["list"]));
    rules.push(deny_guard("*", "configmaps"));
    deny_owned(&server, &rules);

    let run = release_cmd(&server, &["recover"], &["--apply"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sts_replicas(&server, "ess-synapse-main"), "2");
    let run = guard(
        &server,
        &[&REUSE_VALUES[..], &["--state", "legacy_auth"]].concat(),
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
}

// ------------------------------------------------------------------------------ recover

#[test]
fn recover_real_statefulsets() {
    let Some(server) = server() else { return };
    server.apply(&synapse("main", 0, Some(2)));
    server.apply(&synapse("event-persist", 0, Some(1)));
    server.apply(&synapse("pusher", 0, None));
    let generation =
        |name: &str| server.jsonpath("ess", "statefulset", name, "{.metadata.generation}");
    let gen_before = generation("ess-synapse-main");

    let run = release_cmd(&server, &["recover"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "would    scale ess-synapse-event-persist from 0 to 1 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n\
         would    scale ess-synapse-main from 0 to 2 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n\
         dry run: pass --apply to scale 2 StatefulSet(s)\n"
    );
    assert_eq!(sts_replicas(&server, "ess-synapse-main"), "0");
    assert_eq!(
        generation("ess-synapse-main"),
        gen_before,
        "dry run wrote nothing"
    );

    // A denied patch: exit 3, nothing changed.
    let deny_patch = deny_guard("patch", "statefulsets");
    server.deny(&[&deny_patch]);
    let run = release_cmd(&server, &["recover"], &["--apply"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("not allowed to patch statefulsets"),
        "{}",
        run.stderr
    );
    assert_eq!(sts_replicas(&server, "ess-synapse-event-persist"), "0");
    server.allow(&[&deny_patch]);

    let run = release_cmd(&server, &["recover"], &["--apply"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "scaled   ess-synapse-event-persist from 0 to 1 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n\
         scaled   ess-synapse-main from 0 to 2 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n"
    );
    assert_eq!(sts_replicas(&server, "ess-synapse-main"), "2");
    assert_eq!(sts_replicas(&server, "ess-synapse-event-persist"), "1");
    assert_eq!(sts_replicas(&server, "ess-synapse-pusher"), "0");
    let managers = server.kubectl(
        &[
            "-n",
            "ess",
            "get",
            "statefulset",
            "ess-synapse-main",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ],
        None,
    );
    assert!(managers.contains("ess-guard"), "field manager: {managers}");

    let run = release_cmd(&server, &["recover"], &["--apply"]);
    assert_eq!(run.code, 0);
    assert!(run
        .stdout
        .contains("ok       ess-synapse-main has 2 replica(s)"));
}

// ------------------------------------------------------------------ values --reuse-values

#[test]
fn values_reuse_values_from_a_release_secret_made_by_kubectl() {
    let Some(server) = server() else { return };
    let config = json!({
        "serverName": "ess.localhost",
        "synapse": {"ingress": {"host": "synapse.ess.localhost"}},
        "matrixAuthenticationService": {
            "enabled": true,
            "ingress": {"host": "mas.ess.localhost"},
            "additional": {"password-scheme.yml": {"config":
                "passwords:\n  schemes:\n    - version: 1\n      algorithm: bcrypt\n    - version: 2\n      algorithm: argon2id\n"}},
            "syn2mas": {"enabled": true, "dryRun": true}
        }
    });
    server.apply(&helm_release_secret("ess", "ess", 3, "deployed", config.clone()).to_string());
    server.apply(&helm_release_secret("ess", "ess", 2, "superseded", json!({})).to_string());
    set_state(&server, "legacy_auth");

    let run = guard(
        &server,
        &[
            &REUSE_VALUES[..],
            &[
                "--live",
                "--set",
                "matrixAuthenticationService.syn2mas.dryRun=false",
                "--format",
                "json",
            ],
        ]
        .concat(),
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let merged: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let mut want = config;
    want["matrixAuthenticationService"]["syn2mas"]["dryRun"] = json!(false);
    assert_eq!(merged, want);
    for line in [
        "marker:    legacy_auth (from ConfigMap ess/ess-markers",
        "requested: step 2: syn2mas migration",
        "value:     matrixAuthenticationService.syn2mas.dryRun = false (from the flags)",
        "value:     matrixAuthenticationService.syn2mas.enabled = true (from release ess v3)",
        "value:     synapse.enabled = true (from the chart default)",
    ] {
        assert!(
            run.stderr.contains(line),
            "missing {line:?}:\n{}",
            run.stderr
        );
    }

    let run = guard(
        &server,
        &[
            &REUSE_VALUES[..],
            &[
                "--live",
                "--set",
                "matrixAuthenticationService.syn2mas.enabled=false",
            ],
        ]
        .concat(),
        None,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(run
        .stderr
        .starts_with("ess-guard: REJECTED: [mas-requires-syn2mas]"));
}
