//! The live marker source end to end, through the real `ess-guard` binary, against the
//! in-process fake API server (`tests/support/fake_apiserver.rs`): every stored state, every
//! way the API can fail, the evidence read for an absent marker, and the commands that read
//! the cluster (post-render, check --live, markers get, plan, recover, values --reuse-values).
//!
//! The same scenarios against a real API server are in `tests/live_e2e.rs`.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;
#[path = "support/scenarios.rs"]
mod scenarios;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster::{ess_guard, for_release, helm_release_secret, Run};
use fake_apiserver::{Behaviour, FakeApiServer, Fault, RecordedRequest};
use scenarios::{expected, path_str, render, render_path, RENDERS, RESTORE, REUSE_VALUES, STATES};
use serde_json::{json, Value};

const MARKERS_PATH: &str = "/api/v1/namespaces/ess/configmaps/ess-markers";
const SECRETS_PATH: &str = "/api/v1/namespaces/ess/secrets";
const STS_PATH: &str = "/apis/apps/v1/namespaces/ess/statefulsets";

fn markers_cm(value: Option<&str>) -> Value {
    let mut cm = json!({
        "metadata": {
            "name": "ess-markers",
            "labels": {
                "app.kubernetes.io/managed-by": "matrix-tools-deployment-markers",
                "app.kubernetes.io/part-of": "matrix-stack",
                "app.kubernetes.io/instance": "ess-deployment-markers"
            }
        }
    });
    if let Some(v) = value {
        cm["data"] = json!({ "MATRIX_STACK_MSC3861": v });
    }
    cm
}

/// A fake holding the marker for `state` (`absent`: no ConfigMap at all).
fn fake_with_state(state: &str) -> FakeApiServer {
    let server = FakeApiServer::start(Behaviour::normal().require_token());
    if state != "absent" {
        server.put_configmap("ess", markers_cm(Some(state)));
    }
    server
}

fn kc(server: &FakeApiServer) -> String {
    path_str(server.kubeconfig_path())
}

fn post_render(kubeconfig: &str, render_name: &str, extra: &[&str]) -> Run {
    cluster::post_render(kubeconfig, &render(render_name), extra, &[])
}

fn check_live(kubeconfig: &str, render_name: &str, extra: &[&str]) -> Run {
    cluster::check_live(kubeconfig, &render_path(render_name), extra)
}

fn describe(reqs: &[RecordedRequest]) -> Vec<String> {
    reqs.iter()
        .map(|r| match &r.query {
            Some(q) => format!("{} {}?{}", r.method, r.path, q.trim_start_matches('&')),
            None => format!("{} {}", r.method, r.path),
        })
        .collect()
}

/// The step-2 shared-namespace check's one LIST of matrix-server StatefulSets.
fn is_scale_down_list(r: &RecordedRequest) -> bool {
    r.method == "GET"
        && r.path == STS_PATH
        && r.query_param("labelSelector").as_deref()
            == Some("app.kubernetes.io/component=matrix-server")
}

/// The requests, without a final step-2 shared-namespace LIST (its own test is
/// `step_2_lists_matrix_server_statefulsets_once`).
fn requests_before_scale_down_list(server: &FakeApiServer) -> Vec<RecordedRequest> {
    let mut reqs = server.requests();
    if reqs.last().is_some_and(is_scale_down_list) {
        reqs.pop();
    }
    reqs
}

/// Exactly one request: the GET of the marker ConfigMap (plus, at step 2, the one LIST of the
/// shared-namespace check).
fn assert_one_marker_get(server: &FakeApiServer) {
    let reqs = requests_before_scale_down_list(server);
    assert_eq!(
        describe(&reqs),
        vec![format!("GET {MARKERS_PATH}")],
        "expected exactly one GET of the marker"
    );
}

/// `plan`'s reads: the marker; at `legacy_auth` also the deployed release record (list
/// secrets), which tells "after step 1" (next: the migration) from "before step 1".
fn assert_plan_reads(server: &FakeApiServer, state: &str) {
    if state != "legacy_auth" {
        return assert_one_marker_get(server);
    }
    assert_eq!(
        describe(&server.requests()),
        vec![
            format!("GET {MARKERS_PATH}"),
            "GET /api/v1/namespaces/ess/secrets?labelSelector=owner%3Dhelm%2Cname%3Dess%2Cstatus%3Ddeployed".to_string(),
        ],
        "expected the marker GET, then the deployed release record"
    );
}

/// Reads only; the marker GET first and once. Returns the requests.
fn assert_reads_only(server: &FakeApiServer) -> Vec<RecordedRequest> {
    let reqs = requests_before_scale_down_list(server);
    assert!(
        reqs.iter().all(|r| r.method == "GET"),
        "writes sent: {:?}",
        describe(&reqs)
    );
    assert_eq!(
        reqs.iter().filter(|r| r.path == MARKERS_PATH).count(),
        1,
        "{:?}",
        describe(&reqs)
    );
    assert_eq!(reqs[0].path, MARKERS_PATH, "{:?}", describe(&reqs));
    reqs
}

/// The evidence reads of an absent marker when listing Secrets is forbidden: the deployed
/// release records (403), then Synapse's main StatefulSet.
fn assert_absent_evidence_reads_without_secrets(server: &FakeApiServer) {
    let reqs = assert_reads_only(server);
    let described = describe(&reqs);
    assert_eq!(described.len(), 3, "{described:?}");
    assert_eq!(reqs[1].path, SECRETS_PATH, "{described:?}");
    assert_eq!(reqs[2].path, format!("{STS_PATH}/ess-synapse-main"));
}

/// The evidence reads of an absent marker: the deployed release records, then (none deployed)
/// any release record at all (the wrong-cluster check), then Synapse's main StatefulSet, all
/// reads.
fn assert_absent_evidence_reads(server: &FakeApiServer) {
    let reqs = assert_reads_only(server);
    let described = describe(&reqs);
    assert_eq!(described.len(), 4, "{described:?}");
    assert_eq!(reqs[1].path, SECRETS_PATH, "{described:?}");
    assert_eq!(
        reqs[1].query_param("labelSelector").as_deref(),
        Some("owner=helm,name=ess,status=deployed")
    );
    assert_eq!(reqs[2].path, SECRETS_PATH, "{described:?}");
    assert_eq!(
        reqs[2].query_param("labelSelector").as_deref(),
        Some("owner=helm,name=ess")
    );
    assert_eq!(reqs[3].path, format!("{STS_PATH}/ess-synapse-main"));
}

/// A fail-closed state error: exit 3, nothing on stdout (Helm would apply it), one line on
/// stderr naming the cause and the --state escape hatch.
#[track_caller]
fn assert_state_failure(run: &Run, cause: &str) {
    assert_eq!(run.code, 3, "exit code; stderr: {}", run.stderr);
    assert_eq!(run.stdout, "", "stdout must stay empty");
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "one line on stderr, got {lines:?}");
    assert!(lines[0].starts_with("ess-guard: error: "), "{:?}", lines[0]);
    assert!(
        lines[0].contains(cause),
        "stderr does not name the cause {cause:?}: {}",
        lines[0]
    );
    assert!(
        lines[0].contains("pass --state <absent|legacy_auth|syn2mas_migrated|delegated_auth>"),
        "stderr does not name the --state escape hatch: {}",
        lines[0]
    );
}

// ------------------------------------------------------------------------- stored states

#[test]
fn post_render_and_check_for_every_stored_state() {
    for state in STATES {
        let server = fake_with_state(state);
        let kubeconfig = kc(&server);
        for name in RENDERS {
            let want = expected(state, name);
            let what = format!("{state} + {name}");

            server.clear_requests();
            let run = post_render(&kubeconfig, name, &[]);
            match want {
                None => {
                    assert_eq!(run.code, 0, "{what}: {}", run.stderr);
                    assert!(run.stdout.contains("kind: StatefulSet"), "{what}");
                    if name == "step2" {
                        // The migration step records the replicas for `recover`.
                        assert!(run.stdout.contains(RESTORE), "{what}");
                    } else {
                        assert_eq!(run.stdout.as_bytes(), render(name), "{what}: unchanged");
                    }
                }
                Some(rule) => {
                    assert_eq!(run.code, 1, "{what}: {}", run.stderr);
                    assert_eq!(run.stdout, "", "{what}: nothing for Helm to apply");
                    let first = run.stderr.lines().next().unwrap_or_default();
                    assert!(
                        first.starts_with(&format!("ess-guard: REJECTED: [{rule}]")),
                        "{what}: {first}"
                    );
                }
            }
            if state == "absent" {
                assert_absent_evidence_reads(&server);
            } else {
                assert_one_marker_get(&server);
            }

            server.clear_requests();
            let run = check_live(&kubeconfig, name, &[]);
            assert_eq!(
                run.code,
                if want.is_some() { 1 } else { 0 },
                "{what}: check: {}",
                run.stdout
            );
            let origin = format!(
                "marker:    {state} (from ConfigMap ess/ess-markers at {} (context fake))",
                server.url()
            );
            assert!(run.stdout.contains(&origin), "{what}: {}", run.stdout);
            match want {
                None => assert!(run.stdout.starts_with("ess-guard: allowed:"), "{what}"),
                Some(rule) => assert!(
                    run.stdout
                        .starts_with(&format!("ess-guard: REJECTED: [{rule}]")),
                    "{what}: {}",
                    run.stdout
                ),
            }
            if state == "absent" {
                assert_absent_evidence_reads(&server);
            } else {
                assert_one_marker_get(&server);
            }
        }
    }
}

/// The JSON reports of `check` and `plan` name what was read as data (issue 15: context, API
/// server URL, namespace, ConfigMap), the same as the text's origin, with nothing of the
/// kubeconfig's credentials; an offline state names no cluster.
#[test]
fn json_reports_name_what_was_read() {
    for state in ["legacy_auth", "absent"] {
        let server = fake_with_state(state);
        let kubeconfig = kc(&server);
        let want = json!({"context": "fake", "server": server.url(),
                          "namespace": "ess", "configmap": "ess-markers"});

        let run = check_live(&kubeconfig, "step1", &["-o", "json"]);
        assert!(run.code <= 1, "{state}: {}", run.stderr);
        let v: Value = serde_json::from_str(&run.stdout).expect("check JSON");
        let input = &v["inputs"][0];
        assert_eq!(input["read_from"], want, "{state}");
        assert_eq!(
            input["state_origin"],
            json!(format!(
                "ConfigMap ess/ess-markers at {} (context fake)",
                server.url()
            )),
            "{state}"
        );
        assert!(!run.stdout.contains(fake_apiserver::TOKEN), "{state}");

        let run = ess_guard(
            &[
                "plan",
                "--kubeconfig",
                &kubeconfig,
                "-r",
                "ess",
                "-n",
                "ess",
                "-o",
                "json",
            ],
            None,
            &[],
        );
        assert_eq!(run.code, 0, "{state}: {}", run.stderr);
        let v: Value = serde_json::from_str(&run.stdout).expect("plan JSON");
        assert_eq!(v["read_from"], want, "{state}");
        assert!(!run.stdout.contains(fake_apiserver::TOKEN), "{state}");
    }

    // The namespace is the one really read (here -n, over the render's `ess` and the
    // context's `ctx`).
    let server = FakeApiServer::start(Behaviour::normal().context_namespace("ctx"));
    server.put_configmap("other", markers_cm(Some("legacy_auth")));
    let step1 = path_str(&render_path("step1"));
    let kubeconfig = kc(&server);
    let run = ess_guard(
        &[
            "check",
            "--live",
            "--kubeconfig",
            &kubeconfig,
            "-r",
            "ess",
            "-n",
            "other",
            "-o",
            "json",
            &step1,
        ],
        None,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).expect("check JSON");
    assert_eq!(v["inputs"][0]["read_from"]["namespace"], "other");
    assert_eq!(
        server.requests()[0].path,
        "/api/v1/namespaces/other/configmaps/ess-markers"
    );

    // Stated offline: no cluster was read.
    let run = ess_guard(
        &[
            "check",
            "--state",
            "legacy_auth",
            "-o",
            "json",
            &path_str(&render_path("step1")),
        ],
        None,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).expect("check JSON");
    assert_eq!(v["inputs"][0]["read_from"], Value::Null);
}

#[test]
fn request_is_the_plain_get_of_the_marker() {
    let server = fake_with_state("legacy_auth");
    let run = post_render(&kc(&server), "step1", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].query, None, "no watch, no resourceVersion tricks");
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Bearer {}", fake_apiserver::TOKEN).as_str())
    );
    assert!(reqs[0].body.is_empty());
}

// ------------------------------------------------------------------------------- failures

/// A kubeconfig for a port nothing listens on.
fn refused_kubeconfig(server: &FakeApiServer) -> PathBuf {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    server.write_kubeconfig_variant(
        "refused",
        &format!("http://127.0.0.1:{port}"),
        Some(fake_apiserver::TOKEN),
        None,
    )
}

struct FailureCase {
    name: &'static str,
    /// The fault; `None`: the marker ConfigMap below is what fails.
    fault: Option<Fault>,
    /// The marker ConfigMap to store (wire JSON).
    marker: Option<Value>,
    /// Which kubeconfig: "normal", "refused", "tls", "bad-token".
    kubeconfig: &'static str,
    cause: &'static str,
    /// Whether `markers get` fails too (it shows bad values instead of failing).
    markers_get_fails: bool,
}

fn failure_cases() -> Vec<FailureCase> {
    let status = |code: u16, reason: &str, message: &str| {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code})
        .to_string()
    };
    let legacy = Some(markers_cm(Some("legacy_auth")));
    let case = |name, fault, kubeconfig, cause| FailureCase {
        name,
        fault,
        marker: legacy.clone(),
        kubeconfig,
        cause,
        markers_get_fails: true,
    };
    vec![
        case(
            "refused connection",
            None,
            "refused",
            "cannot reach the Kubernetes API server",
        ),
        case(
            "TLS mismatch",
            None,
            "tls",
            "TLS connection to the Kubernetes API server",
        ),
        case("401", None, "bad-token", "401 Unauthorized"),
        case(
            "403",
            Some(Fault::Forbidden),
            "normal",
            "not allowed to get configmaps \"ess-markers\" in namespace \"ess\" (403 Forbidden",
        ),
        case(
            "404 that is not the object's NotFound",
            Some(Fault::Status(
                404,
                "<html><body>404 page not found</body></html>".into(),
            )),
            "normal",
            "answered 404 to get configmaps \"ess-markers\" without Kubernetes' NotFound status",
        ),
        case(
            "404 for an API that is not served",
            Some(Fault::Status(
                404,
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            )),
            "normal",
            "the server could not find the requested resource",
        ),
        case(
            "409",
            Some(Fault::Status(
                409,
                status(409, "Conflict", "etcd says conflict"),
            )),
            "normal",
            "HTTP 409: etcd says conflict",
        ),
        case(
            "429 with Retry-After",
            Some(Fault::RetryAfter(7)),
            "normal",
            "429 Too Many Requests); wait 7 s (Retry-After)",
        ),
        case(
            "500",
            Some(Fault::Status(
                500,
                status(500, "InternalError", "etcdserver: leader changed"),
            )),
            "normal",
            "HTTP 500: etcdserver: leader changed",
        ),
        case(
            "hang",
            Some(Fault::Hang),
            "normal",
            "did not answer within 1 s",
        ),
        case(
            "truncated body",
            Some(Fault::TruncatedBody),
            "normal",
            "malformed response for ConfigMap \"ess-markers\"",
        ),
        case(
            "not HTTP",
            Some(Fault::Garbage),
            "normal",
            "malformed response for ConfigMap \"ess-markers\"",
        ),
    ]
}

#[test]
fn every_failure_exits_3_with_one_line_and_empty_stdout() {
    for case in failure_cases() {
        let server = FakeApiServer::start(Behaviour::normal().require_token());
        if let Some(cm) = &case.marker {
            server.put_configmap("ess", cm.clone());
        }
        let kubeconfig = match case.kubeconfig {
            "normal" => server.kubeconfig_path().to_path_buf(),
            "refused" => refused_kubeconfig(&server),
            "tls" => server.write_kubeconfig_variant(
                "tls",
                &server.url().replace("http://", "https://"),
                Some(fake_apiserver::TOKEN),
                None,
            ),
            "bad-token" => {
                server.write_kubeconfig_variant("bad-token", &server.url(), Some("expired"), None)
            }
            other => unreachable!("{other}"),
        };
        let kubeconfig = path_str(&kubeconfig);
        if let Some(fault) = &case.fault {
            server.set_fault(Some(fault.clone()));
        }
        let name = case.name;

        let timeout = ["--timeout", "1"];
        let run = post_render(&kubeconfig, "step2", &timeout);
        eprintln!("{name}: post-render: {}", run.stderr.trim_end());
        assert_state_failure(&run, case.cause);
        assert!(
            run.elapsed < Duration::from_secs(15),
            "{name}: took {:?}",
            run.elapsed
        );
        assert!(
            server.requests().iter().all(|r| r.method == "GET"),
            "{name}: no writes"
        );
        assert!(
            server.requests().len() <= 1,
            "{name}: no retries: {:?}",
            describe(&server.requests())
        );

        let run = check_live(&kubeconfig, "step3", &timeout);
        assert_state_failure(&run, case.cause);

        let run = for_release(&kubeconfig, &["plan"], &["--timeout", "1"]);
        assert_state_failure(&run, case.cause);

        if case.markers_get_fails {
            let run = for_release(&kubeconfig, &["markers", "get"], &["--timeout", "1"]);
            assert_state_failure(&run, case.cause);
        }
    }
}

#[test]
fn hang_is_bounded_by_timeout() {
    let server = FakeApiServer::start(Behaviour::normal().fault(Fault::Hang));
    let run = post_render(&kc(&server), "step2", &["--timeout", "1"]);
    assert_state_failure(&run, "did not answer within 1 s");
    assert!(
        run.elapsed >= Duration::from_millis(900) && run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn post_render_failure_also_goes_to_the_report_file() {
    // Helm 4 discards a plugin's stderr: the cause must reach --report too.
    let server = FakeApiServer::start(Behaviour::normal().fault(Fault::Forbidden));
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.txt");
    let report_arg = format!("--report={}", path_str(&report));
    let run = post_render(&kc(&server), "step3", &[&report_arg]);
    assert_state_failure(&run, "403 Forbidden");
    let text = std::fs::read_to_string(&report).expect("report written");
    assert_eq!(text.trim_end(), run.stderr.trim_end());
}

// ------------------------------------------------------------------- marker anomalies

/// A marker ConfigMap the chart's markers Job will refuse is refused first (issue 17), through
/// the one reader, with one rule id per case in post-render, check and markers get: exit 1
/// (a verdict, not a cluster error), nothing on stdout.
#[test]
fn marker_anomalies_are_refused_like_the_chart_refuses_them() {
    let unmanaged = {
        let mut cm = markers_cm(Some("legacy_auth"));
        cm["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "Helm"});
        cm
    };
    let unlabelled = {
        let mut cm = markers_cm(Some("legacy_auth"));
        cm["metadata"]["labels"] = json!({});
        cm
    };
    let binary = {
        let mut cm = markers_cm(None);
        cm["binaryData"] = json!({"MATRIX_STACK_MSC3861": "bGVnYWN5X2F1dGg="});
        cm
    };
    let cases: [(&str, Value, &str, &str); 5] = [
        (
            "managed-by Helm",
            unmanaged,
            "unmanaged-marker",
            "app.kubernetes.io/managed-by=Helm",
        ),
        (
            "no labels",
            unlabelled,
            "unmanaged-marker",
            "app.kubernetes.io/managed-by=<unset>",
        ),
        (
            "binaryData only",
            binary,
            "marker-in-binary-data",
            "binaryData",
        ),
        (
            "unknown value",
            markers_cm(Some("stage9_migrated")),
            "unknown-marker-value",
            "\"stage9_migrated\"",
        ),
        (
            "trailing newline",
            markers_cm(Some("legacy_auth\n")),
            "unknown-marker-value",
            "\"legacy_auth\\n\"",
        ),
    ];
    for (name, cm, rule, detail) in cases {
        let server = FakeApiServer::start(Behaviour::normal());
        server.put_configmap("ess", cm);
        let kubeconfig = kc(&server);
        for render_name in ["step1", "step2"] {
            let run = post_render(&kubeconfig, render_name, &[]);
            assert_eq!(run.code, 1, "{name} {render_name}: {}", run.stderr);
            assert_eq!(run.stdout, "", "{name} {render_name}");
            assert!(
                run.stderr
                    .starts_with(&format!("ess-guard: REJECTED: [{rule}]")),
                "{name} {render_name}: {}",
                run.stderr
            );
            assert!(run.stderr.contains(detail), "{name}: {}", run.stderr);
            let run = check_live(&kubeconfig, render_name, &[]);
            assert_eq!(run.code, 1, "{name} {render_name}: {}", run.stdout);
            assert!(
                run.stdout.contains(&format!("error[{rule}]")),
                "{name} {render_name}: {}",
                run.stdout
            );
        }
        // markers get classifies the same ConfigMap with the same rule.
        let run = for_release(&kubeconfig, &["markers", "get"], &["--format", "json"]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let v: Value = serde_json::from_str(&run.stdout).expect("JSON");
        let rules: Vec<&str> = v["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter_map(|f| f["rule"].as_str())
            .collect();
        assert_eq!(rules, [rule], "{name}: {v}");
    }
}

/// An immutable marker ConfigMap: the chart's post-upgrade Job cannot write a new value, so an
/// upgrade that changes the marker is refused; one that keeps it is not.
#[test]
fn immutable_marker_refuses_a_change() {
    let server = FakeApiServer::start(Behaviour::normal());
    let mut cm = markers_cm(Some("legacy_auth"));
    cm["immutable"] = json!(true);
    server.put_configmap("ess", cm);
    let kubeconfig = kc(&server);
    let run = post_render(&kubeconfig, "step2", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("ess-guard: REJECTED: [immutable-marker]"),
        "{}",
        run.stderr
    );
    let run = check_live(&kubeconfig, "step1", &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn configmap_without_the_key_is_absent() {
    let server = FakeApiServer::start(Behaviour::normal());
    server.put_configmap("ess", markers_cm(None));
    let run = check_live(&kc(&server), "step3", &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run
        .stdout
        .contains("marker:    absent (from ConfigMap ess/ess-markers"));
    // The ConfigMap exists: no evidence reads.
    assert_one_marker_get(&server);
}

// ----------------------------------------------------------- absent: evidence of Synapse

fn synapse_sts(name: &str, replicas: i32, restore: Option<&str>) -> Value {
    let mut sts = json!({
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/component": "matrix-server",
                "app.kubernetes.io/instance": name,
                "k8s.element.io/synapse-instance": "ess-synapse"
            },
            "generation": 3
        },
        "spec": {"replicas": replicas, "serviceName": name}
    });
    if let Some(r) = restore {
        sts["metadata"]["annotations"] = json!({
            RESTORE: r,
            "ess-guard.element.io/scaled-down-by": "syn2mas"
        });
    }
    sts
}

#[test]
fn absent_with_synapse_statefulset_is_legacy_inferred() {
    let server = FakeApiServer::start(Behaviour::normal());
    server.put_statefulset("ess", synapse_sts("ess-synapse-main", 1, None));
    let kubeconfig = kc(&server);

    let run = post_render(&kubeconfig, "step3", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("ess-guard: REJECTED: [mas-requires-syn2mas]"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("warning[legacy-inferred]"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("StatefulSet ess-synapse-main exists"));
    assert!(run
        .stderr
        .contains("marker:    legacy_auth (from ConfigMap ess/ess-markers"));
    assert_absent_evidence_reads(&server);

    // Step 2 is what a legacy release may do: allowed, with the warning.
    server.clear_requests();
    let run = post_render(&kubeconfig, "step2", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning[legacy-inferred]"),
        "{}",
        run.stderr
    );
    assert_absent_evidence_reads(&server);

    // plan says the state was inferred, not read.
    let plan = |format: &str| for_release(&kubeconfig, &["plan"], &["--format", format]);
    let run = plan("yaml");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "\nwarning[legacy-inferred]: no marker stored, but StatefulSet ess-synapse-main exists: treated as legacy_auth\n"
        ),
        "{}",
        run.stdout
    );
    let v: Value = serde_json::from_str(&plan("json").stdout).expect("JSON");
    assert_eq!(v["state"], "legacy_auth");
    assert_eq!(v["warnings"][0]["rule"], "legacy-inferred");
    assert_eq!(v["next_step"], "dry-run");

    server.clear_requests();
    let run = check_live(&kubeconfig, "step3", &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("warning[legacy-inferred]"),
        "{}",
        run.stdout
    );
    assert_absent_evidence_reads(&server);
}

#[test]
fn absent_with_a_deployed_release_without_mas_is_legacy_inferred() {
    let server = FakeApiServer::start(Behaviour::normal());
    let config = json!({
        "serverName": "ess.localhost",
        "synapse": {"ingress": {"host": "synapse.ess.localhost"}},
        "matrixAuthenticationService": {"enabled": false}
    });
    server.put_secret(
        "ess",
        helm_release_secret("ess", "ess", 4, "deployed", config),
    );
    // An older, superseded record must not be the one read.
    server.put_secret(
        "ess",
        helm_release_secret("ess", "ess", 3, "superseded", json!({})),
    );
    let run = post_render(&kc(&server), "step3", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning[legacy-inferred]"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("Helm release ess v4 runs Synapse without MAS"),
        "{}",
        run.stderr
    );
    // The release settled it: no StatefulSet read.
    let reqs = assert_reads_only(&server);
    assert_eq!(describe(&reqs).len(), 2, "{:?}", describe(&reqs));
    assert_eq!(reqs[1].path, SECRETS_PATH);
}

#[test]
fn absent_with_a_release_that_runs_mas_stays_absent() {
    let server = FakeApiServer::start(Behaviour::normal());
    let config =
        json!({"matrixAuthenticationService": {"enabled": true, "syn2mas": {"enabled": false}}});
    server.put_secret(
        "ess",
        helm_release_secret("ess", "ess", 2, "deployed", config),
    );
    let run = post_render(&kc(&server), "step3", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("legacy-inferred"), "{}", run.stderr);
    assert_reads_only(&server);
}

#[test]
fn absent_with_the_evidence_reads_forbidden_warns_and_stays_absent() {
    let server = FakeApiServer::start(
        Behaviour::normal()
            .path_fault(SECRETS_PATH, Fault::Forbidden)
            .path_fault(STS_PATH, Fault::Forbidden),
    );
    let run = post_render(&kc(&server), "step3", &[]);
    assert_eq!(run.code, 0, "absent allows step 3: {}", run.stderr);
    assert!(!run.stdout.is_empty());
    assert!(
        run.stderr.contains("warning[marker-evidence-unchecked]"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("403 Forbidden"), "{}", run.stderr);
    assert!(run.stderr.contains("kept absent"), "{}", run.stderr);
    assert!(!run.stderr.contains("legacy-inferred"));
    assert_absent_evidence_reads_without_secrets(&server);

    // Forbidden to list Secrets but allowed to see the StatefulSet: still inferred.
    let server =
        FakeApiServer::start(Behaviour::normal().path_fault(SECRETS_PATH, Fault::Forbidden));
    server.put_statefulset("ess", synapse_sts("ess-synapse-main", 1, None));
    let run = post_render(&kc(&server), "step3", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("warning[legacy-inferred]"));
    assert!(run.stderr.contains("warning[marker-evidence-unchecked]"));
}

// --------------------------------------------------------- which ConfigMap, which namespace

#[test]
fn configmap_name_comes_from_the_render_without_release() {
    let server = fake_with_state("legacy_auth");
    let run = ess_guard(
        &["post-render", "--kubeconfig", &kc(&server), "--no-tty"],
        Some(&render("step3")),
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("[mas-requires-syn2mas]"));
    // Namespace and ConfigMap both from the render's markers Job (the kubeconfig has no
    // namespace, so kube would otherwise use "default").
    assert_one_marker_get(&server);
}

#[test]
fn namespace_precedence_flag_then_render_then_environment_then_context() {
    let server = FakeApiServer::start(Behaviour::normal().context_namespace("ctx"));
    server.put_configmap("ess", markers_cm(Some("legacy_auth")));
    let kubeconfig = kc(&server);
    let paths = |s: &FakeApiServer| -> Vec<String> {
        s.requests().iter().map(|r| r.path.clone()).collect()
    };

    // A HELM_NAMESPACE left in the shell must not beat the namespace the render names.
    let run = ess_guard(
        &[
            "post-render",
            "--kubeconfig",
            &kubeconfig,
            "-r",
            "ess",
            "--no-tty",
        ],
        Some(&render("step3")),
        &[("HELM_NAMESPACE", "other")],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(paths(&server), vec![MARKERS_PATH.to_string()]);

    // An explicit -n beats the render.
    server.clear_requests();
    let run = ess_guard(
        &[
            "post-render",
            "--kubeconfig",
            &kubeconfig,
            "-r",
            "ess",
            "-n",
            "other",
            "--no-tty",
        ],
        Some(&render("step1")),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        paths(&server)[0],
        "/api/v1/namespaces/other/configmaps/ess-markers"
    );

    // Without a render: -n, then HELM_NAMESPACE, then the context's namespace.
    let markers_get = |env: &[(&str, &str)], extra: &[&str]| {
        server.clear_requests();
        let mut args = vec![
            "markers",
            "get",
            "--kubeconfig",
            kubeconfig.as_str(),
            "-r",
            "ess",
        ];
        args.extend_from_slice(extra);
        let run = ess_guard(&args, None, env);
        assert_eq!(run.code, 0, "{}", run.stderr);
        paths(&server)[0].clone()
    };
    assert_eq!(
        markers_get(&[], &[]),
        "/api/v1/namespaces/ctx/configmaps/ess-markers"
    );
    assert_eq!(markers_get(&[("HELM_NAMESPACE", "ess")], &[]), MARKERS_PATH);
    assert_eq!(
        markers_get(&[("HELM_NAMESPACE", "ess")], &["-n", "third"]),
        "/api/v1/namespaces/third/configmaps/ess-markers"
    );
}

#[test]
fn helm3_capture_without_hooks_finds_release_and_namespace() {
    // Helm 3 hides hooks (no markers Job): the release comes from the Synapse StatefulSet's
    // k8s.element.io/synapse-instance label, the namespace from its metadata.
    let Some(shared) = cluster::require_env(
        "ESS_GUARD_SHARED",
        "the real chart's Helm 3 post-renderer capture lives in ess-renders/",
    ) else {
        return;
    };
    let capture =
        Path::new(&shared).join("ess-renders/postrender-input/helm3/step2-syn2mas-migrate.yaml");
    let input = std::fs::read(&capture).expect("read capture");
    let server = fake_with_state("legacy_auth");
    let kubeconfig = kc(&server);

    let run = ess_guard(
        &["--kubeconfig", &kubeconfig, "--no-tty"],
        Some(&input),
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("[ambiguous-step]"), "{}", run.stderr);
    assert_one_marker_get(&server);

    server.clear_requests();
    let run = ess_guard(
        &["--kubeconfig", &kubeconfig, "--no-tty", "--step=migrate"],
        Some(&input),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(RESTORE));
    assert_one_marker_get(&server);

    // Helm 4 capture (hooks visible): the syn2mas hook Job, which Helm 4 puts before the
    // Synapse StatefulSets, is hardened as the report says.
    let capture =
        Path::new(&shared).join("ess-renders/postrender-input/helm4/step2-syn2mas-migrate.yaml");
    server.clear_requests();
    let run = ess_guard(
        &["--kubeconfig", &kubeconfig, "--no-tty"],
        Some(&std::fs::read(&capture).expect("read capture")),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(RESTORE));
    assert!(
        run.stdout
            .contains("ess-guard.element.io/hardened: \"true\""),
        "the Job edit was lost"
    );
    assert_one_marker_get(&server);

    // Helm 4 capture (hooks visible) of step 2 with workers, after the migration: rejected.
    let capture = Path::new(&shared).join("ess-renders/postrender-input/helm4/step2-workers.yaml");
    let server = fake_with_state("syn2mas_migrated");
    let run = ess_guard(
        &["--kubeconfig", &kc(&server), "--no-tty"],
        Some(&std::fs::read(&capture).expect("read capture")),
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_one_marker_get(&server);
}

// ------------------------------------------------------------------------- markers get

#[test]
fn markers_get_text_and_json() {
    let server = fake_with_state("syn2mas_migrated");
    let kubeconfig = kc(&server);
    let run = for_release(&kubeconfig, &["markers", "get"], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let want = format!(
        "server:    {}\ncontext:   fake\nconfigmap: ess/ess-markers (exists)\nstate:     syn2mas_migrated\n\
         label:     app.kubernetes.io/instance=ess-deployment-markers\n\
         label:     app.kubernetes.io/managed-by=matrix-tools-deployment-markers\n\
         label:     app.kubernetes.io/part-of=matrix-stack\n",
        server.url()
    );
    assert_eq!(run.stdout, want);
    assert_eq!(run.stderr, "");
    assert_one_marker_get(&server);

    server.clear_requests();
    let run = for_release(&kubeconfig, &["markers", "get"], &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(v["server"], json!(server.url()));
    assert_eq!(v["context"], json!("fake"));
    assert_eq!(v["namespace"], "ess");
    assert_eq!(v["configmap"], "ess-markers");
    assert_eq!(v["exists"], true);
    assert_eq!(v["value"], "syn2mas_migrated");
    assert_eq!(v["state"], "syn2mas_migrated");
    assert_eq!(
        v["labels"]["app.kubernetes.io/managed-by"],
        "matrix-tools-deployment-markers"
    );
    assert!(v["resourceVersion"].is_string());
    assert_one_marker_get(&server);
}

#[test]
fn markers_get_absent_unmanaged_and_invalid() {
    let server = FakeApiServer::start(Behaviour::normal());
    let kubeconfig = kc(&server);
    let get = |format: &str| for_release(&kubeconfig, &["markers", "get"], &["--format", format]);
    let run = get("yaml");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run
        .stdout
        .contains("configmap: ess/ess-markers (not found)\nstate:     absent\n"));
    let v: Value = serde_json::from_str(&get("json").stdout).expect("JSON");
    assert_eq!(
        (v["exists"].clone(), v["state"].clone(), v["value"].clone()),
        (json!(false), json!("absent"), Value::Null)
    );
    // markers get reads the marker only: no evidence lookups.
    assert!(server
        .requests()
        .iter()
        .all(|r| r.path == MARKERS_PATH && r.method == "GET"));

    let mut cm = markers_cm(Some("delegated_auth"));
    cm["metadata"]["labels"] = json!({});
    server.put_configmap("ess", cm);
    let run = get("yaml");
    assert!(
        run.stdout.contains("state:     delegated_auth\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("error[unmanaged-marker]: ConfigMap ess-markers has app.kubernetes.io/managed-by=<unset>"),
        "{}",
        run.stdout
    );

    server.put_configmap("ess", markers_cm(Some("stage9")));
    let run = get("json");
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(v["value"], "stage9");
    assert_eq!(v["state"], "unknown value \"stage9\"", "{v}");
    assert_eq!(v["findings"][0]["rule"], "unknown-marker-value", "{v}");

    let run = ess_guard(
        &["markers", "get", "--kubeconfig", &kubeconfig, "-n", "ess"],
        None,
        &[],
    );
    assert_eq!(run.code, 2, "markers get needs --release");
    assert_eq!(run.stdout, "");
}

// --------------------------------------------------------------------------------- plan

/// (state, next step, allowed steps, the `--set`s of the next command)
type PlanRow = (
    &'static str,
    Option<&'static str>,
    &'static [&'static str],
    &'static [&'static str],
);

#[test]
fn plan_for_every_stored_state() {
    // (state, next step, allowed, --set lines of the next command)
    let table: [PlanRow; 4] = [
        (
            "absent",
            Some("dry-run"),
            &["legacy", "dry-run", "migrate", "finalize"],
            &[
                "matrixAuthenticationService.enabled=true",
                "matrixAuthenticationService.syn2mas.enabled=true",
                "matrixAuthenticationService.syn2mas.dryRun=true",
            ],
        ),
        (
            "legacy_auth",
            Some("dry-run"),
            &["legacy", "dry-run", "migrate"],
            &[
                "matrixAuthenticationService.enabled=true",
                "matrixAuthenticationService.syn2mas.enabled=true",
                "matrixAuthenticationService.syn2mas.dryRun=true",
            ],
        ),
        (
            "syn2mas_migrated",
            Some("finalize"),
            &["finalize"],
            &["matrixAuthenticationService.syn2mas.enabled=false"],
        ),
        ("delegated_auth", None, &["finalize"], &[]),
    ];
    for (state, next, allowed, sets) in table {
        let server = fake_with_state(state);
        let kubeconfig = kc(&server);
        let run = for_release(&kubeconfig, &["plan"], &[]);
        assert_eq!(run.code, 0, "{state}: {}", run.stderr);
        let out = &run.stdout;
        assert!(
            out.starts_with(&format!(
                "marker:   {state} (from ConfigMap ess/ess-markers at {} (context fake))\n",
                server.url()
            )),
            "{state}: {out}"
        );
        assert!(
            out.contains(&format!("\nallowed:  {}\n", allowed.join(", "))),
            "{state}: {out}"
        );
        match next {
            Some(step) => {
                assert!(out.contains("helm upgrade ess oci://ghcr.io/element-hq/ess-helm/matrix-stack --namespace ess --reuse-values"), "{state}: {out}");
                assert!(out.contains("--post-renderer ess-guard --post-renderer-args=--release=ess --post-renderer-args=--namespace=ess"), "{state}: {out}");
                assert!(
                    out.contains(&format!("--post-renderer-args=--step={step}")),
                    "{state}: {out}"
                );
                for set in sets {
                    assert!(
                        out.contains(&format!("--set {set} ")),
                        "{state}: {set}: {out}"
                    );
                }
                let n_sets = out.matches("--set ").count();
                assert_eq!(n_sets, sets.len(), "{state}: {out}");
            }
            None => {
                assert!(
                    out.contains("next:     nothing: the migration is complete"),
                    "{out}"
                );
                assert!(!out.contains("helm upgrade"), "{out}");
            }
        }
        if state == "absent" {
            assert_absent_evidence_reads(&server);
        } else {
            assert_plan_reads(&server, state);
        }

        server.clear_requests();
        let run = for_release(&kubeconfig, &["plan"], &["--format", "json"]);
        assert_eq!(run.code, 0, "{state}: {}", run.stderr);
        let v: Value = serde_json::from_str(&run.stdout).expect("plan JSON");
        assert_eq!(v["state"], state);
        assert_eq!(v["warnings"], json!([]));
        assert_eq!(v["allowed_next"], json!(allowed));
        assert_eq!(v["next_step"], json!(next));
        assert!(v["state_origin"]
            .as_str()
            .is_some_and(|o| o.starts_with("ConfigMap ess/ess-markers at http://127.0.0.1:")));
        match next {
            Some(step) => {
                let cmd = v["command"].as_str().expect("command");
                assert!(cmd.contains("--post-renderer ess-guard"), "{cmd}");
                assert!(
                    cmd.contains(&format!("--post-renderer-args=--step={step}")),
                    "{cmd}"
                );
                for set in sets {
                    assert!(cmd.contains(&format!("--set {set}")), "{cmd}");
                }
                assert!(v["preconditions"].as_array().is_some_and(|p| !p.is_empty()));
            }
            None => assert_eq!(v["command"], Value::Null),
        }
    }
}

#[test]
fn plan_with_values_lists_what_is_missing_and_sso_switch() {
    let server = fake_with_state("legacy_auth");
    let run = for_release(
        kc(&server),
        &["plan"],
        &[
            "--set",
            "matrixAuthenticationService.enabled=true",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(v["next_step"], "dry-run");
    assert!(
        v["missing"].as_array().is_some_and(|m| !m.is_empty()),
        "the bare values lack the ingress host / password scheme: {v}"
    );
    assert_plan_reads(&server, "legacy_auth");
}

// ------------------------------------------------------------------------------ recover

fn recover_fake() -> FakeApiServer {
    let server = FakeApiServer::start(Behaviour::normal());
    server.put_statefulset("ess", synapse_sts("ess-synapse-main", 0, Some("2")));
    server.put_statefulset(
        "ess",
        synapse_sts("ess-synapse-event-persist", 0, Some("1")),
    );
    // Not annotated (not scaled by the migration): left alone.
    server.put_statefulset("ess", synapse_sts("ess-synapse-pusher", 0, None));
    // Another release's Synapse in the same namespace: not selected.
    let mut other = synapse_sts("other-synapse-main", 0, Some("3"));
    other["metadata"]["labels"]["k8s.element.io/synapse-instance"] = json!("other-synapse");
    server.put_statefulset("ess", other);
    server
}

fn replicas(server: &FakeApiServer, name: &str) -> i64 {
    server.get_statefulset("ess", name).expect("sts")["spec"]["replicas"]
        .as_i64()
        .expect("replicas")
}

fn recover(server: &FakeApiServer, apply: bool) -> Run {
    let kubeconfig = kc(server);
    let mut args = vec![
        "recover",
        "--kubeconfig",
        kubeconfig.as_str(),
        "-r",
        "ess",
        "-n",
        "ess",
    ];
    if apply {
        args.push("--apply");
    }
    ess_guard(&args, None, &[])
}

#[test]
fn recover_dry_run_then_apply() {
    let server = recover_fake();

    let run = recover(&server, false);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "would    scale ess-synapse-event-persist from 0 to 1 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n\
         would    scale ess-synapse-main from 0 to 2 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n\
         dry run: pass --apply to scale 2 StatefulSet(s)\n"
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "{:?}", describe(&reqs));
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", STS_PATH)
    );
    assert_eq!(
        reqs[0].query_param("labelSelector").as_deref(),
        Some(
            "app.kubernetes.io/component=matrix-server,k8s.element.io/synapse-instance=ess-synapse"
        )
    );
    assert_eq!(
        replicas(&server, "ess-synapse-main"),
        0,
        "dry run changes nothing"
    );

    server.clear_requests();
    let rv_main = server
        .get_statefulset("ess", "ess-synapse-main")
        .expect("sts")["metadata"]["resourceVersion"]
        .clone();
    let run = recover(&server, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "scaled   ess-synapse-event-persist from 0 to 1 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n\
         scaled   ess-synapse-main from 0 to 2 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n"
    );
    let reqs = server.requests();
    assert_eq!(
        describe(&reqs),
        vec![
            format!("GET {STS_PATH}?labelSelector=app.kubernetes.io%2Fcomponent%3Dmatrix-server%2Ck8s.element.io%2Fsynapse-instance%3Dess-synapse"),
            format!("PATCH {STS_PATH}/ess-synapse-event-persist?fieldManager=ess-guard"),
            format!("PATCH {STS_PATH}/ess-synapse-main?fieldManager=ess-guard"),
        ]
    );
    let patch = &reqs[2];
    assert_eq!(
        patch.header("content-type"),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        patch.body_json(),
        Some(json!({"metadata": {"resourceVersion": rv_main}, "spec": {"replicas": 2}})),
        "the PATCH carries the resourceVersion it read as precondition"
    );
    assert_eq!(replicas(&server, "ess-synapse-main"), 2);
    assert_eq!(replicas(&server, "ess-synapse-event-persist"), 1);
    assert_eq!(replicas(&server, "ess-synapse-pusher"), 0);
    assert_eq!(replicas(&server, "other-synapse-main"), 0);

    // Again: nothing left to do, no PATCH.
    server.clear_requests();
    let run = recover(&server, true);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "ok       ess-synapse-event-persist has 1 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n\
         ok       ess-synapse-main has 2 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n\
         nothing to do: Synapse has its replicas\n"
    );
    assert!(server.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn recover_refuses_a_statefulset_changed_after_listing() {
    let server = recover_fake();
    // Someone scales ess-synapse-main to 3 right after ess-guard listed the StatefulSets.
    server.change_after(
        "GET",
        STS_PATH,
        &format!("{STS_PATH}/ess-synapse-main"),
        json!({"spec": {"replicas": 3}}),
    );
    let run = recover(&server, true);
    assert_eq!(run.code, 3, "{}", run.stderr);
    // What was done before the conflict is reported on stdout.
    assert_eq!(
        run.stdout,
        "scaled   ess-synapse-event-persist from 0 to 1 replica(s) (from ess-guard.element.io/restore-replicas on the live StatefulSet)\n"
    );
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("StatefulSet ess-synapse-main changed while recovering")
            && lines[0].contains("nothing was overwritten"),
        "{}",
        lines[0]
    );
    assert_eq!(
        replicas(&server, "ess-synapse-main"),
        3,
        "the concurrent change stays"
    );
    let patches: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2, "one PATCH each, no retry");

    // Run again: it sees the current state (3 ≠ 2) and proposes to restore it.
    let run = recover(&server, false);
    assert_eq!(run.code, 0);
    assert!(run
        .stdout
        .contains("would    scale ess-synapse-main from 3 to 2 replica(s)"));
}

#[test]
fn recover_without_annotations_and_failures() {
    let server = FakeApiServer::start(Behaviour::normal());
    server.put_statefulset("ess", synapse_sts("ess-synapse-main", 1, None));
    let run = recover(&server, true);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("nothing to recover"), "{}", run.stdout);
    assert!(server.requests().iter().all(|r| r.method == "GET"));

    // PATCH forbidden: exit 3, the StatefulSet untouched.
    let server = recover_fake();
    server.set_path_fault(&format!("{STS_PATH}/"), Fault::Forbidden);
    let run = recover(&server, true);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr.contains("not allowed to patch statefulsets"),
        "{}",
        run.stderr
    );
    assert_eq!(replicas(&server, "ess-synapse-main"), 0);

    // LIST forbidden.
    let server = recover_fake();
    server.set_fault(Some(Fault::Forbidden));
    let run = recover(&server, false);
    assert_eq!(run.code, 3);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains("not allowed to list statefulsets"),
        "{}",
        run.stderr
    );
}

// ------------------------------------------------------------------ values --reuse-values

/// Step-1 values as a user would have deployed them.
fn step1_config() -> Value {
    json!({
        "serverName": "ess.localhost",
        "synapse": {"ingress": {"host": "synapse.ess.localhost"}},
        "matrixAuthenticationService": {
            "enabled": true,
            "ingress": {"host": "mas.ess.localhost"},
            "additional": {"password-scheme.yml": {"config":
                "passwords:\n  schemes:\n    - version: 1\n      algorithm: bcrypt\n    - version: 2\n      algorithm: argon2id\n"}},
            "syn2mas": {"enabled": true, "dryRun": true}
        }
    })
}

/// `ess-guard values --reuse-values` for release `ess` in namespace `ess`, plus `extra`.
fn reuse_values(kubeconfig: &str, extra: &[&str]) -> Run {
    let args = [&REUSE_VALUES[..], &["--kubeconfig", kubeconfig], extra].concat();
    ess_guard(&args, None, &[])
}

#[test]
fn values_reuse_values_merges_flags_over_the_deployed_release() {
    let server = FakeApiServer::start(Behaviour::normal());
    server.put_secret(
        "ess",
        helm_release_secret("ess", "ess", 3, "deployed", step1_config()),
    );
    server.put_secret(
        "ess",
        helm_release_secret("ess", "ess", 2, "superseded", json!({})),
    );
    // A failed newer upgrade is not what --reuse-values reuses.
    server.put_secret(
        "ess",
        helm_release_secret(
            "ess",
            "ess",
            4,
            "failed",
            json!({"matrixAuthenticationService": {"enabled": false}}),
        ),
    );
    let kubeconfig = kc(&server);

    let run = reuse_values(
        &kubeconfig,
        &[
            "--state",
            "legacy_auth",
            "--set",
            "matrixAuthenticationService.syn2mas.dryRun=false",
            "--format",
            "json",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The release's chart version chooses the profile (issue 13).
    assert!(
        run.stderr
            .contains("profile one-upgrade-stage2 (chart matrix-stack-26.8.2)"),
        "{}",
        run.stderr
    );
    let merged: Value = serde_json::from_str(&run.stdout).expect("merged values JSON");
    let mut want = step1_config();
    want["matrixAuthenticationService"]["syn2mas"]["dryRun"] = json!(false);
    assert_eq!(
        merged, want,
        "the flag over the stored config, nothing else"
    );

    assert!(
        run.stderr.contains("requested: step 2: syn2mas migration"),
        "{}",
        run.stderr
    );
    for line in [
        "value:     matrixAuthenticationService.syn2mas.dryRun = false (from the flags)",
        "value:     matrixAuthenticationService.syn2mas.enabled = true (from release ess v3)",
        "value:     matrixAuthenticationService.enabled = true (from release ess v3)",
        "value:     synapse.enabled = true (from the chart default)",
    ] {
        assert!(
            run.stderr.contains(line),
            "missing {line:?} in:\n{}",
            run.stderr
        );
    }
    // --state given: only the release records are read (one LIST), no marker GET, no write.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "{:?}", describe(&reqs));
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", SECRETS_PATH)
    );
    assert_eq!(
        reqs[0].query_param("labelSelector").as_deref(),
        Some("owner=helm,name=ess,status=deployed")
    );

    // Step 3 straight from legacy_auth: rejected before Helm renders anything.
    let run = reuse_values(
        &kubeconfig,
        &[
            "--state",
            "legacy_auth",
            "--set",
            "matrixAuthenticationService.syn2mas.enabled=false",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .starts_with("ess-guard: REJECTED: [mas-requires-syn2mas]"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(
        "value:     matrixAuthenticationService.syn2mas.enabled = false (from the flags)"
    ));

    // With the marker read live too.
    server.put_configmap("ess", markers_cm(Some("syn2mas_migrated")));
    server.clear_requests();
    let run = reuse_values(
        &kubeconfig,
        &[
            "--live",
            "--set",
            "matrixAuthenticationService.syn2mas.enabled=false",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run
        .stderr
        .contains("marker:    syn2mas_migrated (from ConfigMap ess/ess-markers"));
    assert!(server.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn values_reuse_values_failures() {
    // No deployed release: a first install must not use --reuse-values.
    let server = FakeApiServer::start(Behaviour::normal());
    let kubeconfig = kc(&server);
    let run = reuse_values(&kubeconfig, &["--state", "absent"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("no deployed release ess in namespace ess"),
        "{}",
        run.stderr
    );

    // Listing Secrets forbidden.
    server.set_fault(Some(Fault::Forbidden));
    let run = reuse_values(&kubeconfig, &["--state", "absent"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr_lines().len(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("not allowed to list secrets"),
        "{}",
        run.stderr
    );
}

/// Step 2 adds exactly one read: the LIST of matrix-server StatefulSets in the release
/// namespace (the chart's syn2mas Job scales all of them down); other steps add none.
#[test]
fn step_2_lists_matrix_server_statefulsets_once() {
    let server = fake_with_state("legacy_auth");
    let kubeconfig = kc(&server);
    let run = post_render(&kubeconfig, "step2", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{:?}", describe(&reqs));
    assert_eq!(reqs[0].path, MARKERS_PATH);
    assert!(is_scale_down_list(&reqs[1]), "{:?}", describe(&reqs));

    server.clear_requests();
    let run = post_render(&kubeconfig, "step1", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        describe(&server.requests()),
        vec![format!("GET {MARKERS_PATH}")]
    );
}
