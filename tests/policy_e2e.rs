//! `ess-guard policy` applied to a real API server (kube-apiserver-lite runs the upstream
//! ValidatingAdmissionPolicy plugin: CEL, paramKind, paramRef by selector). Every refusal and
//! every allowed transition of issue 16 is one write through kubectl, and the test checks the
//! server's answer. Skipped without KUBE_APISERVER_LITE_BIN unless ESS_GUARD_REQUIRE_ALL=1.

#[path = "support/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use cluster::{ess_guard, LiteServer, MARKER_KEY as KEY};

const NAMESPACE_CONTROLLER: &str = "system:serviceaccount:kube-system:namespace-controller";

/// The marker ConfigMap of `release` in `ns` as the chart writes it; `None`: no key yet.
fn marker(release: &str, ns: &str, value: Option<&str>) -> String {
    cluster::marker_configmap(release, ns, value, true)
}

fn job(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  template:\n    spec:\n      \
         restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n        args: [\"true\"]\n"
    )
}

/// A server with namespaces `ess` and `other`, the policy generated with `policy_args` applied,
/// and proof that it is enforced (the plugin picks policies up asynchronously).
fn server_with_policy(policy_args: &[&str]) -> Option<LiteServer> {
    let server = LiteServer::start_with_ess(None)?;
    server.create_namespace("other");
    let mut args = vec!["policy"];
    args.extend_from_slice(policy_args);
    let run = ess_guard(&args, None, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    server.apply(&run.stdout);
    // Wait until a probe marker cannot be deleted (or, audit-only, until the warning shows).
    server.apply(&marker("probe", "ess", Some("legacy_auth")));
    let started = Instant::now();
    loop {
        let out = server.try_kubectl(
            &[
                "-n",
                "ess",
                "delete",
                "cm",
                "probe-markers",
                "--dry-run=server",
            ],
            None,
        );
        let said = String::from_utf8_lossy(&out.stderr).to_string();
        if said.contains("ess-guard") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "policy never enforced: {said}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(server)
}

fn set(server: &LiteServer, release: &str, value: &str) -> std::process::Output {
    server.try_set_marker(release, value)
}

fn assert_refused(out: &std::process::Output, what: &str, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: allowed, expected a refusal");
    assert!(
        stderr.contains("ValidatingAdmissionPolicy"),
        "{what}: {stderr}"
    );
    assert!(stderr.contains(needle), "{what}: {stderr}");
}

fn assert_allowed(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stored(server: &LiteServer, release: &str) -> String {
    server.jsonpath(
        "ess",
        "cm",
        &format!("{release}-markers"),
        &format!("{{.data.{KEY}}}"),
    )
}

/// Sets the marker of `release` to each value of `steps` in turn, starting from `from`; `None`
/// expects the server to allow the write, `Some(needle)` a refusal naming `needle` (the value
/// then stays; the step names say which transition failed).
fn walk(server: &LiteServer, release: &str, from: &str, steps: &[(&str, Option<&str>)]) {
    let mut current = from;
    for &(to, refusal) in steps {
        let out = set(server, release, to);
        let what = format!("{current} -> {to}");
        match refusal {
            None => {
                assert_allowed(&out, &what);
                current = to;
            }
            Some(needle) => assert_refused(&out, &what, needle),
        }
    }
}

#[test]
fn marker_moves_forward_only() {
    let Some(server) = server_with_policy(&[]) else {
        return;
    };
    // Fresh install: the chart's pre-hook creates the ConfigMap without the key, the post-hook
    // stores legacy_auth.
    server.apply(&marker("ess", "ess", None));
    walk(
        &server,
        "ess",
        "absent",
        &[("legacy_auth", None), ("legacy_auth", None)],
    );
    // The pre-hook rewrites the labels and keeps the key.
    assert_allowed(
        &server.try_kubectl(
            &[
                "-n",
                "ess",
                "label",
                "cm",
                "ess-markers",
                "app.kubernetes.io/version=0.8.1",
            ],
            None,
        ),
        "label refresh",
    );
    walk(
        &server,
        "ess",
        "legacy_auth",
        &[
            ("syn2mas_migrated", None),
            (
                "legacy_auth",
                Some("may not move backwards from syn2mas_migrated to legacy_auth"),
            ),
            ("syn2mas_migrated", None),
            ("delegated_auth", None),
            (
                "legacy_auth",
                Some("backwards from delegated_auth to legacy_auth"),
            ),
            (
                "syn2mas_migrated",
                Some("backwards from delegated_auth to syn2mas_migrated"),
            ),
            ("delegated_auth", None),
        ],
    );
    assert_eq!(stored(&server, "ess"), "delegated_auth");

    // legacy_auth straight to delegated_auth is a fresh MAS install's value; the chart's own
    // hook judges that transition, the policy only refuses going back.
    server.apply(&marker("fwd", "ess", Some("legacy_auth")));
    assert_allowed(
        &set(&server, "fwd", "delegated_auth"),
        "legacy_auth -> delegated_auth",
    );
    // Other keys of the marker ConfigMap are free.
    assert_allowed(
        &server.try_kubectl(
            &[
                "-n",
                "ess",
                "patch",
                "cm",
                "ess-markers",
                "--type=merge",
                "-p",
                r#"{"data":{"note":"x"}}"#,
            ],
            None,
        ),
        "another key",
    );
}

#[test]
fn marker_cannot_be_deleted_emptied_corrupted_or_unlabelled() {
    let Some(server) = server_with_policy(&[]) else {
        return;
    };
    server.apply(&marker("ess", "ess", Some("syn2mas_migrated")));
    assert_refused(
        &server.try_kubectl(&["-n", "ess", "delete", "cm", "ess-markers"], None),
        "DELETE",
        "deleting the ESS marker ConfigMap",
    );
    assert_refused(
        &server.try_kubectl(&["-n", "ess", "delete", "cm", "--all"], None),
        "delete --all",
        "deleting the ESS marker ConfigMap",
    );
    assert_refused(
        &server.try_kubectl(
            &[
                "-n",
                "ess",
                "patch",
                "cm",
                "ess-markers",
                "--type=json",
                "-p",
                &format!(r#"[{{"op":"remove","path":"/data/{KEY}"}}]"#),
            ],
            None,
        ),
        "remove the key",
        "removing MATRIX_STACK_MSC3861 (stored: syn2mas_migrated)",
    );
    assert_refused(
        &server.try_kubectl(
            &[
                "-n",
                "ess",
                "patch",
                "cm",
                "ess-markers",
                "--type=json",
                "-p",
                r#"[{"op":"remove","path":"/data"}]"#,
            ],
            None,
        ),
        "remove data",
        "removing MATRIX_STACK_MSC3861",
    );
    assert_refused(
        &set(&server, "ess", "delegated"),
        "unknown value",
        "value delegated is unknown to the chart",
    );
    assert_refused(
        &set(&server, "ess", "Delegated_Auth"),
        "unknown value (case)",
        "is unknown to the chart",
    );
    assert_refused(
        &server.try_kubectl(
            &[
                "-n",
                "ess",
                "label",
                "cm",
                "ess-markers",
                "app.kubernetes.io/managed-by-",
            ],
            None,
        ),
        "remove managed-by",
        "removing the label app.kubernetes.io/managed-by",
    );
    // `kubectl replace` with a ConfigMap that lost both the label and the key: refused.
    let bare =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ess-markers\n  namespace: ess\n";
    assert_refused(
        &server.try_kubectl(&["replace", "-f", "-"], Some(bare)),
        "replace without label and key",
        "ess-guard",
    );
    assert_eq!(stored(&server, "ess"), "syn2mas_migrated");

    // Ordinary ConfigMaps are not concerned.
    server.kubectl(
        &["-n", "ess", "create", "cm", "plain", "--from-literal=a=b"],
        None,
    );
    assert_allowed(
        &server.try_kubectl(&["-n", "ess", "delete", "cm", "plain"], None),
        "unrelated delete",
    );
}

#[test]
fn namespace_deletion_is_never_blocked() {
    let Some(server) = server_with_policy(&[]) else {
        return;
    };
    server.apply(&marker("ess", "ess", Some("delegated_auth")));
    // Impersonation works and other users stay refused (so the exemption below is real).
    assert_refused(
        &server.try_kubectl(
            &[
                "--as",
                "system:serviceaccount:kube-system:other",
                "-n",
                "ess",
                "delete",
                "cm",
                "ess-markers",
            ],
            None,
        ),
        "another service account",
        "deleting the ESS marker ConfigMap",
    );
    // The namespace controller deletes a terminating namespace's objects as itself.
    assert_allowed(
        &server.try_kubectl(
            &[
                "--as",
                NAMESPACE_CONTROLLER,
                "-n",
                "ess",
                "delete",
                "cm",
                "ess-markers",
            ],
            None,
        ),
        "namespace controller deletes the marker",
    );
    server.apply(&marker("ess", "ess", Some("delegated_auth")));
    assert_allowed(
        &server.try_kubectl(&["delete", "namespace", "ess", "--wait=false"], None),
        "delete namespace",
    );
    let out = server.try_kubectl(&["get", "namespace", "ess"], None);
    assert!(!out.status.success(), "namespace still there");
}

#[test]
fn syn2mas_job_is_refused_only_after_delegated_auth() {
    let Some(server) = server_with_policy(&[]) else {
        return;
    };
    let create = |name: &str| server.try_kubectl(&["create", "-f", "-"], Some(&job(name, "ess")));
    // No marker at all (fresh install): the parameter is missing, which allows.
    assert_allowed(&create("ess-syn2mas"), "no marker");
    server.kubectl(&["-n", "ess", "delete", "job", "ess-syn2mas"], None);
    for allowed in ["legacy_auth", "syn2mas_migrated"] {
        server.apply(&marker("ess", "ess", Some(allowed)));
        assert_allowed(&create("ess-syn2mas"), allowed);
        server.kubectl(&["-n", "ess", "delete", "job", "ess-syn2mas"], None);
    }
    assert_allowed(&set(&server, "ess", "delegated_auth"), "to delegated_auth");
    assert_refused(
        &create("ess-syn2mas"),
        "delegated_auth",
        "release ess has completed the migration",
    );
    // Another release in the same namespace is judged by its own marker.
    server.apply(&marker("b", "ess", Some("legacy_auth")));
    assert_allowed(&create("b-syn2mas"), "release b, legacy_auth");
    // Any other Job of the completed release is fine.
    assert_allowed(&create("ess-deployment-markers-pre"), "other job");
    // A marker in another namespace does not count.
    server.apply(&marker("c", "other", Some("delegated_auth")));
    assert_allowed(
        &create("c-syn2mas"),
        "marker of c lives in another namespace",
    );
}

#[test]
fn scoped_to_namespaces_and_releases() {
    let Some(server) = server_with_policy(&["-n", "ess", "-r", "ess", "-r", "probe"]) else {
        return;
    };
    server.apply(&marker("ess", "ess", Some("delegated_auth")));
    server.apply(&marker("b", "ess", Some("delegated_auth")));
    server.apply(&marker("ess", "other", Some("delegated_auth")));
    assert_refused(&set(&server, "ess", "legacy_auth"), "ess/ess", "backwards");
    assert_allowed(
        &set(&server, "b", "legacy_auth"),
        "release b is not guarded",
    );
    assert_allowed(
        &server.try_kubectl(&["-n", "other", "delete", "cm", "ess-markers"], None),
        "namespace other is not guarded",
    );
    let create = |name: &str| server.try_kubectl(&["create", "-f", "-"], Some(&job(name, "ess")));
    assert_refused(&create("ess-syn2mas"), "ess job", "completed the migration");
    assert_allowed(&create("b-syn2mas"), "release b job is not guarded");
}

#[test]
fn audit_only_warns_and_allows() {
    let Some(server) = server_with_policy(&["--audit-only"]) else {
        return;
    };
    server.apply(&marker("ess", "ess", Some("delegated_auth")));
    let out = set(&server, "ess", "legacy_auth");
    assert_allowed(&out, "audit-only");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning") && stderr.contains("backwards"),
        "{stderr}"
    );
    assert_eq!(stored(&server, "ess"), "legacy_auth");
}
