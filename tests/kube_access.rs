#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/fake_apiserver.rs"]
mod fake_apiserver;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cluster::LiteServer;
use ess_guard::kube_access::{Cluster, ConnectOptions, KubeError};
use fake_apiserver::{Behaviour, FakeApiServer, Fault, USER};
use serde_json::{json, Value};

const NS: &str = "ess";

fn opts(kubeconfig: &Path, timeout: Duration) -> ConnectOptions {
    ConnectOptions {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
        namespace: Some(NS.to_string()),
        timeout,
    }
}

fn connect(server: &FakeApiServer) -> Cluster {
    Cluster::connect(&opts(server.kubeconfig_path(), Duration::from_secs(5))).expect("connect")
}

fn markers_cm() -> Value {
    json!({
        "metadata": {
            "name": "ess-markers",
            "labels": {"app.kubernetes.io/managed-by": "matrix-tools-deployment-markers"}
        },
        "data": {"MATRIX_STACK_MSC3861": "legacy_auth"},
        "binaryData": {"blob": "AAEC"}
    })
}

fn sts(name: &str, replicas: i32, component: &str) -> Value {
    json!({
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/instance": "ess", "app.kubernetes.io/component": component},
            "annotations": {"a": "b"},
            "generation": 1
        },
        "spec": {"replicas": replicas, "serviceName": name}
    })
}

/// A release Secret exactly as Helm's secret driver writes it: JSON → gzip → base64 is
/// Helm's payload; the Secret's `data` is base64-encoded once more by Kubernetes.
fn helm_release_secret(release: &str, version: u32, status: &str, config: Value) -> Value {
    let rel = json!({
        "name": release,
        "namespace": NS,
        "version": version,
        "info": {"first_deployed": "2026-11-01T00:00:00Z", "status": status, "description": "Upgrade complete"},
        "chart": {
            "metadata": {"apiVersion": "v2", "name": "matrix-stack", "version": format!("26.8.{version}")},
            "templates": [],
            "values": {"synapse": {"enabled": true}}
        },
        "config": config,
        "manifest": "---\n# Source: x\n"
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(rel.to_string().as_bytes()).unwrap();
    let helm_payload = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
    let k8s_data = base64::engine::general_purpose::STANDARD.encode(helm_payload.as_bytes());
    json!({
        "metadata": {
            "name": format!("sh.helm.release.v1.{release}.v{version}"),
            "labels": {"name": release, "owner": "helm", "status": status, "version": version.to_string()}
        },
        "type": "helm.sh/release.v1",
        "data": {"release": k8s_data}
    })
}

fn assert_one_line(e: &KubeError) {
    let s = e.to_string();
    assert!(!s.contains('\n') && !s.contains('\r'), "multi-line: {s:?}");
}

// ---------------------------------------------------------------- fake server: happy paths

#[test]
fn get_configmap_reads_view_with_exactly_one_get() {
    let server = FakeApiServer::start(Behaviour::normal());
    server.put_configmap(NS, markers_cm());
    let cluster = connect(&server);
    assert_eq!(cluster.namespace(), NS);
    assert_eq!(cluster.server_url(), server.url());
    assert!(
        server.requests().is_empty(),
        "connect must not contact the server"
    );

    let cm = cluster.get_configmap("ess-markers").unwrap().unwrap();
    assert_eq!(cm.name, "ess-markers");
    assert_eq!(cm.namespace, NS);
    assert_eq!(cm.data["MATRIX_STACK_MSC3861"], "legacy_auth");
    assert_eq!(
        cm.labels["app.kubernetes.io/managed-by"],
        "matrix-tools-deployment-markers"
    );
    assert_eq!(cm.binary_data_keys, vec!["blob".to_string()]);
    assert!(cm.resource_version.is_some());

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(
        reqs[0].path,
        "/api/v1/namespaces/ess/configmaps/ess-markers"
    );
    assert_eq!(reqs[0].query, None);
    assert_eq!(
        reqs[0].header("authorization"),
        Some("Bearer fake-token"),
        "token from the kubeconfig"
    );
}

#[test]
fn get_configmap_404_is_none() {
    let server = FakeApiServer::start(Behaviour::normal());
    let cluster = connect(&server);
    assert_eq!(cluster.get_configmap("ess-markers").unwrap(), None);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn invalid_names_are_rejected_without_a_request() {
    let server = FakeApiServer::start(Behaviour::normal());
    let cluster = connect(&server);
    for bad in ["", "a/b", "../x", "x?y=1", "UPPER"] {
        assert!(matches!(
            cluster.get_configmap(bad),
            Err(KubeError::Other(_))
        ));
    }
    assert!(server.requests().is_empty());
}

#[test]
fn statefulset_exists_and_list() {
    let server = FakeApiServer::start(Behaviour::normal());
    server.put_statefulset(NS, sts("ess-synapse-main", 1, "synapse"));
    server.put_statefulset(NS, sts("ess-postgres", 1, "postgres"));
    server.put_statefulset("other", sts("elsewhere", 1, "synapse"));
    let cluster = connect(&server);
    assert!(cluster.statefulset_exists("ess-synapse-main").unwrap());
    assert!(!cluster.statefulset_exists("ess-nope").unwrap());

    let list = cluster
        .list_statefulsets("app.kubernetes.io/instance=ess,app.kubernetes.io/component=synapse")
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "ess-synapse-main");
    assert_eq!(list[0].replicas, Some(1));
    assert_eq!(list[0].annotations["a"], "b");
    let last = server.requests().pop().unwrap();
    assert_eq!(last.path, "/apis/apps/v1/namespaces/ess/statefulsets");
    assert_eq!(
        last.query_param("labelSelector").as_deref(),
        Some("app.kubernetes.io/instance=ess,app.kubernetes.io/component=synapse")
    );
    assert_eq!(cluster.list_statefulsets("").unwrap().len(), 2);
}

#[test]
fn patch_replicas_sends_merge_patch_with_precondition() {
    let server = FakeApiServer::start(Behaviour::normal());
    let stored = server.put_statefulset(NS, sts("ess-synapse-main", 1, "synapse"));
    let rv = stored["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let cluster = connect(&server);

    // dry run: answer shows the result, store unchanged
    let dry = cluster
        .patch_statefulset_replicas("ess-synapse-main", 0, &rv, true)
        .unwrap();
    assert_eq!(dry.replicas, Some(0));
    let req = server.requests().pop().unwrap();
    assert_eq!(req.method, "PATCH");
    assert_eq!(req.query_param("dryRun").as_deref(), Some("All"));
    assert_eq!(
        req.query_param("fieldManager").as_deref(),
        Some("ess-guard")
    );
    assert_eq!(
        req.header("content-type"),
        Some("application/merge-patch+json")
    );
    assert_eq!(
        req.body_json().unwrap(),
        json!({"metadata": {"resourceVersion": rv}, "spec": {"replicas": 0}})
    );
    assert_eq!(
        server.get_statefulset(NS, "ess-synapse-main").unwrap()["spec"]["replicas"],
        1
    );

    let done = cluster
        .patch_statefulset_replicas("ess-synapse-main", 0, &rv, false)
        .unwrap();
    assert_eq!(done.replicas, Some(0));
    assert_ne!(done.resource_version.as_deref(), Some(rv.as_str()));
    assert_eq!(server.requests().pop().unwrap().query_param("dryRun"), None);
    assert_eq!(
        server.get_statefulset(NS, "ess-synapse-main").unwrap()["spec"]["replicas"],
        0
    );

    // the old resourceVersion is now stale
    let err = cluster
        .patch_statefulset_replicas("ess-synapse-main", 1, &rv, false)
        .unwrap_err();
    assert!(
        matches!(&err, KubeError::Conflict { name } if name == "ess-synapse-main"),
        "{err:?}"
    );
    assert_one_line(&err);

    let err = cluster
        .patch_statefulset_replicas("ess-missing", 0, "1", false)
        .unwrap_err();
    assert!(matches!(err, KubeError::NotFound { .. }), "{err:?}");

    // no precondition, no request
    let n = server.requests().len();
    assert!(matches!(
        cluster.patch_statefulset_replicas("ess-synapse-main", 0, "", false),
        Err(KubeError::Other(_))
    ));
    assert_eq!(server.requests().len(), n);
}

// ---------------------------------------------------------------- fake server: Helm releases

#[test]
fn latest_release_decodes_helm_secret() {
    let server = FakeApiServer::start(Behaviour::normal());
    server.put_secret(
        NS,
        helm_release_secret("ess", 1, "superseded", json!({"a": 1})),
    );
    server.put_secret(
        NS,
        helm_release_secret(
            "ess",
            2,
            "deployed",
            json!({"matrixAuthenticationService": {"enabled": false}}),
        ),
    );
    server.put_secret(NS, helm_release_secret("ess", 3, "failed", json!({"b": 2})));
    server.put_secret(NS, helm_release_secret("ess2", 9, "deployed", json!({})));
    let cluster = connect(&server);

    let latest = cluster.latest_release("ess", false).unwrap().unwrap();
    assert_eq!(latest.name, "ess");
    assert_eq!(latest.version, 3);
    assert_eq!(latest.status, "failed");
    assert_eq!(latest.config, json!({"b": 2}));
    assert_eq!(latest.chart_name, "matrix-stack");
    assert_eq!(latest.chart_version, "26.8.3");
    let req = server.requests().pop().unwrap();
    assert_eq!(req.path, "/api/v1/namespaces/ess/secrets");
    assert_eq!(
        req.query_param("labelSelector").as_deref(),
        Some("owner=helm,name=ess")
    );

    let deployed = cluster.latest_release("ess", true).unwrap().unwrap();
    assert_eq!(deployed.version, 2);
    assert_eq!(deployed.status, "deployed");
    assert_eq!(
        deployed.config,
        json!({"matrixAuthenticationService": {"enabled": false}})
    );
    assert_eq!(
        server
            .requests()
            .pop()
            .unwrap()
            .query_param("labelSelector")
            .as_deref(),
        Some("owner=helm,name=ess,status=deployed")
    );

    assert_eq!(cluster.latest_release("other", false).unwrap(), None);
}

#[test]
fn release_without_config_and_uncompressed_payload() {
    let server = FakeApiServer::start(Behaviour::normal());
    // Helm omits "config" when no values were given; its decoder also accepts a
    // payload that is not gzipped.
    let rel = json!({"name": "ess", "version": 4, "info": {"status": "deployed"},
                     "chart": {"metadata": {"name": "matrix-stack", "version": "1.0.0"}}});
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64.encode(rel.to_string());
    server.put_secret(
        NS,
        json!({
            "metadata": {"name": "sh.helm.release.v1.ess.v4",
                         "labels": {"name": "ess", "owner": "helm", "status": "deployed", "version": "4"}},
            "type": "helm.sh/release.v1",
            "data": {"release": b64.encode(payload)}
        }),
    );
    let cluster = connect(&server);
    let r = cluster.latest_release("ess", true).unwrap().unwrap();
    assert_eq!(r.version, 4);
    assert_eq!(r.config, json!({}));
}

#[test]
fn malformed_release_secret_never_leaks_content() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let cases = [
        // data.release is not base64 at the Kubernetes level
        json!("SUPERSECRET!!not-base64"),
        // Helm payload is not base64
        json!(b64.encode("SUPERSECRET!!not-base64")),
        // Helm payload decodes, but is neither gzip nor JSON
        json!(b64.encode(b64.encode("SUPERSECRET: password=hunter2"))),
        // JSON with the wrong shape (version is a string)
        json!(b64.encode(
            b64.encode(r#"{"name":"ess","version":"SUPERSECRET","info":{"status":"deployed"}}"#)
        )),
    ];
    for data in cases {
        let server = FakeApiServer::start(Behaviour::normal());
        server.put_secret(
            NS,
            json!({
                "metadata": {"name": "sh.helm.release.v1.ess.v1",
                             "labels": {"name": "ess", "owner": "helm", "status": "deployed", "version": "1"}},
                "type": "helm.sh/release.v1",
                "data": {"release": data}
            }),
        );
        let cluster = connect(&server);
        let err = cluster.latest_release("ess", false).unwrap_err();
        assert!(matches!(err, KubeError::Malformed { .. }), "{err:?}");
        let text = format!("{err} {err:?}");
        assert!(!text.contains("SUPERSECRET"), "leaked: {text}");
        assert!(!text.contains("hunter2"), "leaked: {text}");
        assert_one_line(&err);
    }
}

// ---------------------------------------------------------------- fake server: faults

/// Runs `f` and checks it finishes within timeout + 1 s.
fn timed<T>(timeout: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(
        took < timeout + Duration::from_secs(1),
        "took {took:?} (timeout {timeout:?})"
    );
    out
}

#[test]
fn each_fault_maps_to_its_error() {
    let timeout = Duration::from_secs(1);
    let status_500 = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"etcdserver: request timed out","reason":"InternalError","code":500}"#;
    type Check = fn(&KubeError) -> bool;
    let cases: Vec<(Fault, Check)> = vec![
        (
            Fault::Status(500, status_500.into()),
            |e| matches!(e, KubeError::Server { code: 500, message } if message.contains("etcdserver")),
        ),
        (
            Fault::Status(502, "<html>\n<body>Bad Gateway</body>\n</html>".into()),
            |e| matches!(e, KubeError::Server { code: 502, message } if message.contains("Bad Gateway")),
        ),
        // A JSON body without "code": the HTTP status still decides.
        (Fault::Status(503, "{}".into()), |e| {
            matches!(e, KubeError::Server { code: 503, .. })
        }),
        (
            Fault::Status(400, r#"{"message":"bad"}"#.into()),
            |e| matches!(e, KubeError::Other(m) if m.contains("400")),
        ),
        (
            Fault::Status(200, r#"{"kind":"ConfigMap","metad"#.into()),
            |e| matches!(e, KubeError::Malformed { detail, .. } if detail.contains("truncated")),
        ),
        (Fault::Status(200, "<html>login</html>".into()), |e| {
            matches!(e, KubeError::Malformed { .. })
        }),
        (Fault::Status(401, String::new()), |e| {
            matches!(e, KubeError::Unauthorized { .. })
        }),
        (Fault::RetryAfter(7), |e| {
            matches!(
                e,
                KubeError::TooManyRequests {
                    retry_after: Some(7)
                }
            )
        }),
        (
            Fault::Hang,
            |e| matches!(e, KubeError::Timeout { after, .. } if *after == Duration::from_secs(1)),
        ),
        (Fault::TruncatedBody, |e| {
            matches!(e, KubeError::Malformed { .. })
        }),
        (Fault::Garbage, |e| matches!(e, KubeError::Malformed { .. })),
        (Fault::Close, |e| matches!(e, KubeError::Connect { .. })),
        (Fault::Forbidden, |e| {
            matches!(e, KubeError::Forbidden { verb, resource, name: Some(name), namespace, user_message }
                if verb == "get" && resource == "configmaps" && name == "ess-markers"
                    && namespace == NS && user_message.contains(USER))
        }),
    ];
    for (fault, check) in cases {
        let server = FakeApiServer::start(Behaviour::normal().fault(fault.clone()));
        server.put_configmap(NS, markers_cm());
        let cluster = Cluster::connect(&opts(server.kubeconfig_path(), timeout)).unwrap();
        let err = timed(timeout, || cluster.get_configmap("ess-markers"))
            .expect_err(&format!("{fault:?} must fail"));
        assert!(check(&err), "{fault:?} gave {err:?}");
        assert_one_line(&err);
        eprintln!("{fault:?}\n  -> {err}");
        assert_eq!(server.requests().len(), 1, "{fault:?}: no retries");
    }
}

#[test]
fn only_a_not_found_status_for_the_object_means_missing() {
    // What the API server answers for a missing object: absent, not an error.
    let not_found = |resource: &str, name: &str| {
        format!(
            r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{resource} \"{name}\" not found","reason":"NotFound","details":{{"name":"{name}","kind":"{resource}"}},"code":404}}"#
        )
    };
    let server = FakeApiServer::start(Behaviour::normal());
    server.put_configmap(NS, markers_cm());
    server.set_path_fault(
        "/api/v1/namespaces/ess/configmaps/ess-markers",
        Fault::Status(404, not_found("configmaps", "ess-markers")),
    );
    server.set_path_fault(
        "/apis/apps/v1/namespaces/ess/statefulsets/x",
        Fault::Status(404, not_found("statefulsets", "x")),
    );
    let cluster = connect(&server);
    assert_eq!(cluster.get_configmap("ess-markers").unwrap(), None);
    assert!(!cluster.statefulset_exists("x").unwrap());

    // Any other 404 (a proxy's page, a wrong server URL) must not read as "absent".
    for body in ["{}", "<html>404 page not found</html>", ""] {
        let server =
            FakeApiServer::start(Behaviour::normal().fault(Fault::Status(404, body.into())));
        server.put_configmap(NS, markers_cm());
        let cluster = connect(&server);
        let err = cluster.get_configmap("ess-markers").unwrap_err();
        assert!(
            matches!(&err, KubeError::Other(m) if m.contains("404")),
            "{body:?}: {err:?}"
        );
        assert_one_line(&err);
        assert!(cluster.statefulset_exists("x").is_err(), "{body:?}");
    }
}

#[test]
fn path_faults_and_other_calls() {
    let timeout = Duration::from_secs(1);
    let server = FakeApiServer::start(
        Behaviour::normal().path_fault("/apis/apps/v1/namespaces/ess/statefulsets", Fault::Hang),
    );
    server.put_configmap(NS, markers_cm());
    let cluster = Cluster::connect(&opts(server.kubeconfig_path(), timeout)).unwrap();
    assert!(cluster.get_configmap("ess-markers").unwrap().is_some());
    let err = timed(timeout, || cluster.list_statefulsets("a=b")).unwrap_err();
    assert!(matches!(err, KubeError::Timeout { .. }), "{err:?}");
    let err = timed(timeout, || {
        cluster.patch_statefulset_replicas("ess-synapse-main", 0, "5", false)
    })
    .unwrap_err();
    assert!(matches!(err, KubeError::Timeout { .. }), "{err:?}");

    server.clear_faults();
    server.set_path_fault("/api/v1/namespaces/ess/secrets", Fault::Forbidden);
    let err = cluster.latest_release("ess", false).unwrap_err();
    assert!(
        matches!(&err, KubeError::Forbidden { verb, resource, name: None, .. } if verb == "list" && resource == "secrets"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"list\""), "{err}");

    server.set_path_fault("/apis/apps", Fault::Forbidden);
    let err = cluster
        .patch_statefulset_replicas("ess-synapse-main", 0, "5", false)
        .unwrap_err();
    assert!(
        matches!(&err, KubeError::Forbidden { verb, user_message, .. }
            if verb == "patch" && user_message.contains("statefulsets.apps \"ess-synapse-main\" is forbidden")),
        "{err:?}"
    );
    eprintln!("{err}");
}

/// A 403 names the scope of the request that got it: the namespace a GET was in (audit reads
/// other namespaces than the client's), and no namespace for a LIST across all of them.
#[test]
fn forbidden_names_the_request_scope() {
    let server = FakeApiServer::start(Behaviour::normal());
    let cluster = connect(&server);
    server.set_path_fault("/api/v1/namespaces/other/configmaps", Fault::Forbidden);
    let err = cluster.get_configmap_in("other", "x-markers").unwrap_err();
    assert!(
        matches!(&err, KubeError::Forbidden { verb, namespace, .. } if verb == "get" && namespace == "other"),
        "{err:?}"
    );
    server.set_path_fault("/api/v1/configmaps", Fault::Forbidden);
    let err = cluster.list_configmaps("a=b", true).unwrap_err();
    assert!(
        matches!(&err, KubeError::Forbidden { verb, namespace, .. } if verb == "list" && namespace == "(all namespaces)"),
        "{err:?}"
    );
    let err = cluster.list_configmaps("a=b", false);
    assert!(
        err.is_ok(),
        "the client's own namespace is not forbidden: {err:?}"
    );
}

#[test]
fn token_required_gives_unauthorized() {
    let server = FakeApiServer::start(Behaviour::normal().require_token());
    server.put_configmap(NS, markers_cm());
    assert!(connect(&server)
        .get_configmap("ess-markers")
        .unwrap()
        .is_some());

    for (file, token) in [("wrong", Some("wrong-token")), ("none", None)] {
        let kc = server.write_kubeconfig_variant(file, &server.url(), token, None);
        let cluster = Cluster::connect(&opts(&kc, Duration::from_secs(2))).unwrap();
        let err = cluster.get_configmap("ess-markers").unwrap_err();
        assert!(matches!(err, KubeError::Unauthorized { .. }), "{err:?}");
        assert!(!err.to_string().contains("wrong-token"));
        eprintln!("{err}");
    }
}

#[test]
fn refused_connection_is_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = FakeApiServer::start(Behaviour::normal());
    let kc = server.write_kubeconfig_variant(
        "refused",
        &format!("http://127.0.0.1:{port}"),
        Some("t"),
        None,
    );
    let timeout = Duration::from_secs(2);
    let cluster = Cluster::connect(&opts(&kc, timeout)).unwrap();
    let err = timed(timeout, || cluster.get_configmap("x")).unwrap_err();
    assert!(matches!(err, KubeError::Connect { .. }), "{err:?}");
    eprintln!("{err}");
}

#[test]
fn tls_to_plain_http_server_is_tls_error() {
    let server = FakeApiServer::start(Behaviour::normal());
    let kc = server.write_kubeconfig_variant(
        "https",
        &format!("https://{}", server.addr()),
        Some("t"),
        None,
    );
    let timeout = Duration::from_secs(2);
    let cluster = Cluster::connect(&opts(&kc, timeout)).unwrap();
    let err = timed(timeout, || cluster.get_configmap("x")).unwrap_err();
    assert!(matches!(err, KubeError::Tls { .. }), "{err:?}");
    eprintln!("{err}");
}

#[test]
fn context_and_namespace_resolution() {
    let server = FakeApiServer::start(Behaviour::normal().context_namespace("from-context"));
    let mut o = opts(server.kubeconfig_path(), Duration::from_secs(2));
    o.namespace = None;
    if std::env::var_os("HELM_NAMESPACE").is_none() {
        assert_eq!(Cluster::connect(&o).unwrap().namespace(), "from-context");
    }
    o.context = Some("fake".into());
    assert!(Cluster::connect(&o).is_ok());
    o.context = Some("nope".into());
    let err = Cluster::connect(&o).unwrap_err();
    assert!(
        matches!(&err, KubeError::Config(m) if m.contains("nope")),
        "{err:?}"
    );
    assert_one_line(&err);
    o.context = None;
    o.kubeconfig = Some(PathBuf::from("/nonexistent/kubeconfig"));
    let err = Cluster::connect(&o).unwrap_err();
    assert!(matches!(err, KubeError::Config(_)), "{err:?}");
    eprintln!("{err}");
    o.kubeconfig = Some(server.kubeconfig_path().to_path_buf());
    o.namespace = Some("Not_Valid".into());
    assert!(matches!(Cluster::connect(&o), Err(KubeError::Config(_))));
}

// ---------------------------------------------------------------- real kube-apiserver-lite

const MARKERS_YAML: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: ess-markers
  namespace: ess
  labels:
    app.kubernetes.io/managed-by: matrix-tools-deployment-markers
data:
  MATRIX_STACK_MSC3861: legacy_auth
"#;

const STS_YAML: &str = r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: ess-synapse-main
  namespace: ess
  labels:
    app.kubernetes.io/instance: ess
    app.kubernetes.io/component: synapse
spec:
  replicas: 1
  serviceName: ess-synapse-main
  selector:
    matchLabels:
      app: synapse
  template:
    metadata:
      labels:
        app: synapse
    spec:
      containers:
      - name: synapse
        image: ghcr.io/element-hq/synapse:v1.159.0
"#;

fn real_cluster(kubeconfig: &Path, timeout: Duration) -> Cluster {
    Cluster::connect(&ConnectOptions {
        kubeconfig: Some(kubeconfig.to_path_buf()),
        context: None,
        namespace: None, // the restricted kubeconfig's context says "ess"
        timeout,
    })
    .expect("connect")
}

#[test]
fn real_server_markers_forbidden_and_down() {
    let Some(mut real) = LiteServer::start() else {
        return;
    };
    real.create_namespace("ess");
    real.apply(MARKERS_YAML);

    let timeout = Duration::from_secs(3);
    let cluster = real_cluster(&real.restricted_kubeconfig(), timeout);
    if std::env::var_os("HELM_NAMESPACE").is_none() {
        assert_eq!(cluster.namespace(), "ess");
    }
    assert!(cluster.server_url().starts_with("https://127.0.0.1:"));
    let cm = cluster.get_configmap("ess-markers").unwrap().unwrap();
    assert_eq!(cm.data["MATRIX_STACK_MSC3861"], "legacy_auth");
    assert_eq!(
        cm.labels["app.kubernetes.io/managed-by"],
        "matrix-tools-deployment-markers"
    );
    assert_eq!(cluster.get_configmap("absent").unwrap(), None);

    real.deny(&[
        "user=system:serviceaccount:ess:ess-guard,verb=get,resource=configmaps,namespace=ess",
    ]);
    // The server re-reads the rules file on change; allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = loop {
        match cluster.get_configmap("ess-markers") {
            Err(e) => break e,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(_) => panic!("deny rule never took effect"),
        }
    };
    assert!(
        matches!(&err, KubeError::Forbidden { verb, resource, user_message, .. }
            if verb == "get" && resource == "configmaps"
               && user_message.contains("system:serviceaccount:ess:ess-guard")),
        "{err:?}"
    );
    assert_one_line(&err);
    eprintln!("real 403: {err}");

    // Missing CA: the kubeconfig without certificate-authority-data must fail TLS.
    let text = std::fs::read_to_string(real.restricted_kubeconfig()).unwrap();
    let no_ca: String = text
        .lines()
        .filter(|l| !l.contains("certificate-authority-data"))
        .map(|l| format!("{l}\n"))
        .collect();
    let no_ca_path = real.scratch().join("kubeconfig-no-ca");
    std::fs::write(&no_ca_path, no_ca).unwrap();
    let err = real_cluster(&no_ca_path, timeout)
        .get_configmap("ess-markers")
        .unwrap_err();
    assert!(matches!(err, KubeError::Tls { .. }), "{err:?}");
    eprintln!("real TLS: {err}");

    // Wrong token.
    let bad_token = text.replace("ess-guard-token", "expired-token");
    let bad_token_path = real.scratch().join("kubeconfig-bad-token");
    std::fs::write(&bad_token_path, bad_token).unwrap();
    let err = real_cluster(&bad_token_path, timeout)
        .get_configmap("ess-markers")
        .unwrap_err();
    assert!(matches!(err, KubeError::Unauthorized { .. }), "{err:?}");

    real.stop();
    let err = timed(timeout, || cluster.get_configmap("ess-markers")).unwrap_err();
    assert!(matches!(err, KubeError::Connect { .. }), "{err:?}");
    eprintln!("real down: {err}");
}

#[test]
fn real_server_statefulset_patch_and_release() {
    let Some(real) = LiteServer::start() else {
        return;
    };
    real.create_namespace("ess");
    real.apply(STS_YAML);
    let release = helm_release_secret("ess", 2, "deployed", json!({"synapse": {"enabled": true}}));
    let secret_json = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": release["metadata"]["name"], "namespace": "ess",
                     "labels": release["metadata"]["labels"]},
        "type": "helm.sh/release.v1",
        "data": release["data"]
    });
    real.kubectl(&["apply", "-f", "-"], Some(&secret_json.to_string()));

    let cluster = real_cluster(&real.restricted_kubeconfig(), Duration::from_secs(5));
    assert!(cluster.statefulset_exists("ess-synapse-main").unwrap());
    assert!(!cluster.statefulset_exists("ess-nope").unwrap());
    let list = cluster
        .list_statefulsets("app.kubernetes.io/instance=ess")
        .unwrap();
    assert_eq!(list.len(), 1);
    let rv = list[0].resource_version.clone().unwrap();
    assert_eq!(list[0].replicas, Some(1));

    let dry = cluster
        .patch_statefulset_replicas("ess-synapse-main", 0, &rv, true)
        .unwrap();
    assert_eq!(dry.replicas, Some(0));
    assert_eq!(
        cluster.list_statefulsets("").unwrap()[0].replicas,
        Some(1),
        "dry run must not change the object"
    );

    // Admin bumps the object: our resourceVersion is now stale.
    real.kubectl(
        &[
            "-n",
            "ess",
            "annotate",
            "statefulset",
            "ess-synapse-main",
            "touched=yes",
        ],
        None,
    );
    let err = cluster
        .patch_statefulset_replicas("ess-synapse-main", 0, &rv, false)
        .unwrap_err();
    assert!(matches!(err, KubeError::Conflict { .. }), "{err:?}");
    eprintln!("real 409: {err}");

    let fresh = cluster.list_statefulsets("").unwrap().remove(0);
    let done = cluster
        .patch_statefulset_replicas(
            "ess-synapse-main",
            0,
            fresh.resource_version.as_deref().unwrap(),
            false,
        )
        .unwrap();
    assert_eq!(done.replicas, Some(0));

    let rel = cluster.latest_release("ess", true).unwrap().unwrap();
    assert_eq!(
        (rel.version, rel.status.as_str(), rel.chart_name.as_str()),
        (2, "deployed", "matrix-stack")
    );
    assert_eq!(rel.config, json!({"synapse": {"enabled": true}}));
}
