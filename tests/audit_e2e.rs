//! `ess-guard audit` against a real API server (kube-apiserver-lite) holding releases at every
//! stage of the migration (tests/support/audit_fixtures.rs, the same generator
//! scripts/bench-audit.sh uses): the state, the next command (the text `plan` prints) and the
//! problems of each release, in every format; several contexts, one of them unreachable.
//! Skipped without KUBE_APISERVER_LITE_BIN unless ESS_GUARD_REQUIRE_ALL=1.

#[path = "support/audit_fixtures.rs"]
mod audit_fixtures;
#[path = "support/cluster.rs"]
mod cluster;

use audit_fixtures::{stage_namespaces, stages, CANARY, STAGES};
use cluster::{ess_guard, LiteServer, Run};
use serde_json::Value;

fn server_with_stages() -> Option<LiteServer> {
    let server = LiteServer::start()?;
    let ns: Vec<String> = stage_namespaces().iter().map(|s| s.to_string()).collect();
    server.kubectl(
        &["create", "-f", "-"],
        Some(&audit_fixtures::namespaces(&ns)),
    );
    server.kubectl(&["create", "-f", "-"], Some(&stages()));
    Some(server)
}

fn kubeconfig(server: &LiteServer) -> String {
    server
        .admin_kubeconfig()
        .to_str()
        .expect("utf-8")
        .to_string()
}

/// The admin kubeconfig's `current-context`, as the server's start script wrote it.
fn current_context(server: &LiteServer) -> String {
    let text = std::fs::read_to_string(server.admin_kubeconfig()).expect("admin kubeconfig");
    text.lines()
        .find_map(|l| l.strip_prefix("current-context:"))
        .map(|c| c.trim().trim_matches('"').to_string())
        .expect("the admin kubeconfig names its current-context")
}

fn audit(server: &LiteServer, extra: &[&str]) -> Run {
    let kc = kubeconfig(server);
    let mut args = vec!["audit", "--kubeconfig", kc.as_str()];
    args.extend_from_slice(extra);
    ess_guard(&args, None, &[])
}

fn no_secret(run: &Run) {
    assert!(
        !run.stdout.contains(CANARY) && !run.stderr.contains(CANARY),
        "Helm values leaked"
    );
}

#[test]
fn every_stage_in_every_format() {
    let Some(server) = server_with_stages() else {
        return;
    };

    let run = audit(&server, &["-A", "--format", "json"]);
    no_secret(&run);
    assert_eq!(run.code, 1, "error-level problems exist: {}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(doc["exit_code"], 1);
    let cluster = &doc["clusters"][0];
    assert!(cluster.get("error").is_none(), "{cluster}");
    // 3 LISTs + one GET per release that runs Synapse without a labelled marker
    // (unlabelled, nomarker, premarkers).
    assert_eq!(cluster["api_calls"], 6, "{cluster}");
    let releases = cluster["releases"].as_array().expect("releases");
    assert_eq!(
        releases.len(),
        STAGES.len(),
        "grafana and the superseded revision are not releases here"
    );
    for want in STAGES {
        let got = releases
            .iter()
            .find(|r| r["release"] == want.release && r["namespace"] == want.namespace)
            .unwrap_or_else(|| panic!("{} missing", want.release));
        let what = want.release;
        assert_eq!(got["marker"], want.marker, "{what}");
        assert_eq!(got["next_step"].as_str(), want.next, "{what}");
        let rules: Vec<&str> = got["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .filter_map(|p| p["rule"].as_str())
            .collect();
        assert_eq!(rules, want.rules, "{what}");
        assert_eq!(
            got["chart_version"], "26.8.2",
            "{what}: the deployed revision's chart"
        );
        // The next command is exactly what `plan` prints for that release.
        if let Some(cmd) = got["next_command"].as_str() {
            let plan = ess_guard(
                &[
                    "plan",
                    "-r",
                    what,
                    "-n",
                    want.namespace,
                    "--kubeconfig",
                    &kubeconfig(&server),
                    "--format",
                    "json",
                ],
                None,
                &[],
            );
            let plan: Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
            assert_eq!(plan["command"].as_str(), Some(cmd), "{what}");
        } else {
            assert!(want.next.is_none(), "{what}");
        }
    }
    let find = |name: &str| releases.iter().find(|r| r["release"] == name).expect(name);
    let left = find("left")["problems"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(left.contains("right-synapse-main"), "{left}");
    let stuck = &find("stuck")["problems"][0];
    assert_eq!(stuck["severity"], "error");
    assert!(stuck["remediation"]
        .as_str()
        .unwrap_or_default()
        .contains("ess-guard recover -r stuck -n aud-stuck"));

    let run = audit(&server, &["-A"]);
    no_secret(&run);
    assert_eq!(run.code, 1);
    let header = run.stdout.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("CONTEXT") && header.contains("MARKER"),
        "{header}"
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("aud-stuck") && l.contains("error[stuck-migration]")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("helm upgrade migrated oci://ghcr.io/element-hq/ess-helm/matrix-stack --namespace aud-migrated"), "{}", run.stdout);

    // Each row names the context actually used: the kubeconfig's current one, not "(current)".
    let context = current_context(&server);
    let run = audit(&server, &["-A", "--format", "prometheus"]);
    no_secret(&run);
    assert_eq!(run.code, 1);
    for want in STAGES {
        for state in [
            "absent",
            "legacy_auth",
            "syn2mas_migrated",
            "delegated_auth",
            "unknown",
        ] {
            let line = format!(
                "ess_guard_release_marker_state{{context=\"{context}\",namespace=\"{}\",release=\"{}\",state=\"{state}\"}} {}",
                want.namespace,
                want.release,
                u8::from(state == want.marker)
            );
            assert!(
                run.stdout.lines().any(|l| l == line),
                "{line}\n{}",
                run.stdout
            );
        }
    }
    assert!(run.stdout.contains(&format!(
        "ess_guard_audit_cluster_up{{context=\"{context}\"}} 1"
    )));
}

#[test]
fn one_namespace_and_exit_codes() {
    let Some(server) = server_with_stages() else {
        return;
    };
    let run = audit(&server, &["-n", "aud-done", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let releases = doc["clusters"][0]["releases"].as_array().expect("releases");
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0]["release"], "done");
    assert_eq!(doc["clusters"][0]["scope"], "namespace aud-done");

    // Least privilege: list only (every get refused). The three LISTs suffice; the releases
    // without a labelled marker say that an unlabelled one was not looked for.
    server.deny(&["user=system:serviceaccount:ess:ess-guard,verb=get"]);
    let kc = server
        .restricted_kubeconfig()
        .to_str()
        .expect("utf-8")
        .to_string();
    let run = ess_guard(
        &["audit", "-A", "--format", "json", "--kubeconfig", &kc],
        None,
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let releases = doc["clusters"][0]["releases"].as_array().expect("releases");
    assert_eq!(releases.len(), STAGES.len());
    let unchecked: Vec<&str> = releases
        .iter()
        .filter(|r| {
            r["problems"]
                .as_array()
                .is_some_and(|p| p.iter().any(|f| f["rule"] == "marker-evidence-unchecked"))
        })
        .filter_map(|r| r["release"].as_str())
        .collect();
    assert_eq!(unchecked, ["nomarker", "premarkers", "unlabelled"]);

    // Without list on secrets the cluster cannot be audited: exit 3, said on stderr too.
    server.deny(&["user=admin,verb=list,resource=secrets"]);
    let run = audit(&server, &["-A", "--format", "json"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("not allowed to list secrets"),
        "{}",
        run.stderr
    );
}

/// Two real clusters and a dead one in one kubeconfig: each is reported, the dead one's
/// failure does not hide the others, and the exit code says a cluster was not audited.
#[test]
fn several_contexts() {
    let Some(a) = server_with_stages() else {
        return;
    };
    let Some(b) = LiteServer::start() else { return };
    b.kubectl(&["create", "namespace", "ess"], None);
    let secret = audit_fixtures::helm_secret(
        "ess",
        "ess",
        1,
        "deployed",
        "matrix-stack",
        "26.8.2",
        serde_json::json!({}),
    );
    b.kubectl(&["create", "-f", "-"], Some(&secret.to_string()));
    // Give b's kubeconfig distinct names so that the merged kubeconfig keeps both.
    let b_text = std::fs::read_to_string(b.admin_kubeconfig())
        .expect("read")
        .replace("kube-apiserver-lite", "second")
        .replace("name: admin\n", "name: admin2\n")
        .replace("user: admin\n", "user: admin2\n");
    let b_path = b.scratch().join("kubeconfig-b");
    std::fs::write(&b_path, b_text).expect("write");
    let dead = b.scratch().join("kubeconfig-dead");
    std::fs::write(
        &dead,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster: {server: \"https://127.0.0.1:1\"}\n\
         users:\n- name: dead\n  user: {token: x}\ncontexts:\n- name: dead\n  context: {cluster: dead, user: dead}\ncurrent-context: dead\n",
    )
    .expect("write");
    let merged = format!("{}:{}:{}", kubeconfig(&a), b_path.display(), dead.display());

    let run = ess_guard(
        &[
            "audit",
            "--all-contexts",
            "-A",
            "--format",
            "json",
            "--timeout",
            "3",
        ],
        None,
        &[("KUBECONFIG", &merged)],
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let clusters = doc["clusters"].as_array().expect("clusters");
    let contexts: Vec<&str> = clusters
        .iter()
        .filter_map(|c| c["context"].as_str())
        .collect();
    assert_eq!(
        contexts,
        ["kube-apiserver-lite-admin", "second-admin", "dead"]
    );
    assert_eq!(
        clusters[0]["releases"].as_array().map(Vec::len),
        Some(STAGES.len())
    );
    assert_eq!(clusters[1]["releases"][0]["release"], "ess");
    assert!(
        clusters[2]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1:1"),
        "{}",
        clusters[2]
    );
    assert!(
        run.stderr.contains("context dead: not audited"),
        "{}",
        run.stderr
    );

    // The same with --context, twice.
    let run = ess_guard(
        &[
            "audit",
            "--context",
            "second-admin",
            "--context",
            "dead",
            "-A",
            "--format",
            "prometheus",
            "--timeout",
            "3",
        ],
        None,
        &[("KUBECONFIG", &merged)],
    );
    assert_eq!(run.code, 3);
    assert!(
        run.stdout
            .contains("ess_guard_audit_cluster_up{context=\"second-admin\"} 1"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("ess_guard_audit_cluster_up{context=\"dead\"} 0"),
        "{}",
        run.stdout
    );
}
