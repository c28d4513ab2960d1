//! Releases at every stage of the migration, as Kubernetes objects for `kubectl create -f -`:
//! marker ConfigMaps (as the chart's marker Job writes them), Helm release Secrets (as Helm's
//! secret driver writes them: base64(gzip(JSON)) under `data.release`, labels owner/name/status/
//! version) and Synapse StatefulSets (the chart's labels). Used by `tests/audit_e2e.rs` and, for
//! the 1 000-release benchmark, by `examples/audit_fixtures.rs` (`scripts/bench-audit.sh`).
//!
//! Every Helm record's values carry [`CANARY`] inside Synapse's additional config: the audit
//! decodes these Secrets and must never print it.
#![allow(dead_code)]

use std::io::Write as _;

use base64::Engine as _;
use serde_json::{json, Value};

/// A value that stands for secret data inside the Helm records.
pub const CANARY: &str = "CANARY-helm-values-secret-7f3a";

/// One release of the stages fixture: the objects it is made of and what `audit` must say
/// about it. One row per release, so the fixture and the expectations cannot drift apart.
pub struct Expected {
    pub namespace: &'static str,
    pub release: &'static str,
    /// The stage of the deployed Helm record's values (see `values`).
    pub values: &'static str,
    /// The marker ConfigMap: stored value and whether it carries the markers Job's managed-by
    /// label; `None`: no ConfigMap.
    pub stored: Option<(&'static str, bool)>,
    /// The Synapse main StatefulSet: replicas and the restore-replicas annotation.
    pub synapse: (i32, Option<i32>),
    /// The marker `audit` reports.
    pub marker: &'static str,
    /// `plan`'s next step id (`dry-run`, `migrate`, `finalize`), if any.
    pub next: Option<&'static str>,
    pub rules: &'static [&'static str],
}

/// The stages fixture: each release's objects and the expected marker/next step/rule ids.
pub const STAGES: &[Expected] = &[
    Expected {
        namespace: "aud-legacy",
        release: "legacy",
        values: "legacy",
        stored: Some(("legacy_auth", true)),
        synapse: (1, None),
        marker: "legacy_auth",
        next: Some("dry-run"),
        rules: &[],
    },
    Expected {
        namespace: "aud-dryrun",
        release: "dryrun",
        values: "dryrun",
        stored: Some(("legacy_auth", true)),
        synapse: (1, None),
        marker: "legacy_auth",
        // Step 1 is deployed (its values are in the release record): the migration is next.
        next: Some("migrate"),
        rules: &[],
    },
    Expected {
        namespace: "aud-migrated",
        release: "migrated",
        values: "migrate",
        stored: Some(("syn2mas_migrated", true)),
        synapse: (1, None),
        marker: "syn2mas_migrated",
        next: Some("finalize"),
        rules: &[],
    },
    Expected {
        namespace: "aud-done",
        release: "done",
        values: "done",
        stored: Some(("delegated_auth", true)),
        synapse: (1, None),
        marker: "delegated_auth",
        next: None,
        rules: &[],
    },
    Expected {
        namespace: "aud-stuck",
        release: "stuck",
        values: "migrate",
        stored: Some(("legacy_auth", true)),
        synapse: (0, Some(2)),
        marker: "legacy_auth",
        next: Some("dry-run"),
        rules: &["stuck-migration"],
    },
    Expected {
        namespace: "aud-unknown",
        release: "unknown",
        values: "done",
        stored: Some(("delegated", true)),
        synapse: (1, None),
        marker: "unknown",
        next: None,
        rules: &["unknown-marker-value"],
    },
    Expected {
        namespace: "aud-unlabelled",
        release: "unlabelled",
        values: "migrate",
        stored: Some(("syn2mas_migrated", false)),
        synapse: (1, None),
        marker: "syn2mas_migrated",
        next: Some("finalize"),
        rules: &["unmanaged-marker"],
    },
    Expected {
        namespace: "aud-nomarker",
        release: "nomarker",
        values: "done",
        stored: None,
        synapse: (1, None),
        marker: "absent",
        next: Some("dry-run"),
        rules: &["markers-disabled"],
    },
    Expected {
        namespace: "aud-premarkers",
        release: "premarkers",
        values: "legacy",
        stored: None,
        synapse: (1, None),
        marker: "legacy_auth",
        next: Some("dry-run"),
        rules: &["legacy-inferred"],
    },
    Expected {
        namespace: "aud-shared",
        release: "left",
        values: "legacy",
        stored: Some(("legacy_auth", true)),
        synapse: (1, None),
        marker: "legacy_auth",
        next: Some("dry-run"),
        rules: &["shared-namespace-scale-down"],
    },
    Expected {
        namespace: "aud-shared",
        release: "right",
        values: "done",
        stored: Some(("delegated_auth", true)),
        synapse: (1, None),
        marker: "delegated_auth",
        next: None,
        rules: &[],
    },
];

/// Namespaces the stages fixture needs (create them first).
pub fn stage_namespaces() -> Vec<&'static str> {
    let mut ns: Vec<&str> = STAGES.iter().map(|e| e.namespace).collect();
    ns.dedup();
    ns
}

fn marker(ns: &str, release: &str, value: &str, labelled: bool) -> Value {
    let managed_by = if labelled {
        "matrix-tools-deployment-markers"
    } else {
        "Helm"
    };
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{release}-markers"), "namespace": ns, "labels": {
            "app.kubernetes.io/managed-by": managed_by,
            "app.kubernetes.io/part-of": "matrix-stack",
            "app.kubernetes.io/component": "matrix-tools",
            "app.kubernetes.io/name": "deployment-markers",
            "app.kubernetes.io/instance": format!("{release}-deployment-markers"),
        }},
        "data": {"MATRIX_STACK_MSC3861": value},
    })
}

fn synapse(ns: &str, release: &str, replicas: i32, restore: Option<i32>) -> Value {
    let name = format!("{release}-synapse-main");
    let mut annotations =
        json!({"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": ns});
    if let Some(n) = restore {
        annotations["ess-guard.element.io/restore-replicas"] = json!(n.to_string());
        annotations["ess-guard.element.io/scaled-down-by"] = json!("syn2mas");
    }
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations, "labels": {
            "app.kubernetes.io/component": "matrix-server",
            "app.kubernetes.io/name": "synapse-main",
            "app.kubernetes.io/instance": name,
            "k8s.element.io/synapse-instance": format!("{release}-synapse"),
        }},
        "spec": {
            "replicas": replicas, "serviceName": name,
            "selector": {"matchLabels": {"app.kubernetes.io/instance": name}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/instance": name}},
                "spec": {"containers": [{"name": "synapse", "image": "ghcr.io/element-hq/synapse:v1.159.0"}]}},
        },
    })
}

/// Values for a stage: `legacy` (MAS off), `dryrun`, `migrate`, `done` (syn2mas off).
fn values(stage: &str) -> Value {
    let mas = match stage {
        "legacy" => json!({"enabled": false}),
        "dryrun" => json!({"enabled": true, "syn2mas": {"enabled": true, "dryRun": true}}),
        "migrate" => json!({"enabled": true, "syn2mas": {"enabled": true, "dryRun": false}}),
        _ => json!({"enabled": true, "syn2mas": {"enabled": false}}),
    };
    json!({
        "matrixAuthenticationService": mas,
        "synapse": {"additional": {"canary.yaml": {"config": format!("macaroon_secret_key: {CANARY}")}}},
    })
}

/// A Helm release Secret (see the module doc).
pub fn helm_secret(
    ns: &str,
    release: &str,
    version: u32,
    status: &str,
    chart: &str,
    chart_version: &str,
    config: Value,
) -> Value {
    helm_secret_with_manifest(
        ns,
        release,
        version,
        status,
        chart,
        chart_version,
        config,
        "---\n",
    )
}

/// [`helm_secret`] storing `manifest` as the release's rendered manifest, as Helm does (its
/// size drives the cost of decoding a record).
#[allow(clippy::too_many_arguments)]
pub fn helm_secret_with_manifest(
    ns: &str,
    release: &str,
    version: u32,
    status: &str,
    chart: &str,
    chart_version: &str,
    config: Value,
    manifest: &str,
) -> Value {
    let rel = json!({
        "name": release, "namespace": ns, "version": version,
        "info": {"status": status, "description": "Upgrade complete"},
        "chart": {"metadata": {"apiVersion": "v2", "name": chart, "version": chart_version}, "templates": []},
        "config": config,
        "manifest": manifest,
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(rel.to_string().as_bytes()).expect("gzip");
    let b64 = base64::engine::general_purpose::STANDARD;
    let helm_payload = b64.encode(gz.finish().expect("gzip"));
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
        "metadata": {"name": format!("sh.helm.release.v1.{release}.v{version}"), "namespace": ns,
            "labels": {"owner": "helm", "name": release, "status": status, "version": version.to_string()}},
        "data": {"release": b64.encode(helm_payload.as_bytes())},
    })
}

/// The objects as a stream of JSON documents, one per line (kubectl reads a JSON stream;
/// its validation does not know the `List` kind on this server).
fn list(items: Vec<Value>) -> String {
    let docs: Vec<String> = items.iter().map(Value::to_string).collect();
    docs.join("\n")
}

/// Namespaces as a stream.
pub fn namespaces(names: &[String]) -> String {
    list(
        names
            .iter()
            .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}))
            .collect(),
    )
}

/// The stages fixture (see [`STAGES`]) as one stream.
pub fn stages() -> String {
    let c = "matrix-stack";
    let v = "26.8.2";
    let mut items = Vec::new();
    for e in STAGES {
        let (ns, r) = (e.namespace, e.release);
        items.push(helm_secret(ns, r, 2, "deployed", c, v, values(e.values)));
        if let Some((value, labelled)) = e.stored {
            items.push(marker(ns, r, value, labelled));
        }
        let (replicas, restore) = e.synapse;
        items.push(synapse(ns, r, replicas, restore));
    }
    // Older revisions (superseded, other values and chart) and another chart's release: ignored.
    items.push(helm_secret(
        "aud-legacy",
        "legacy",
        1,
        "superseded",
        c,
        "25.1.0",
        values("done"),
    ));
    items.push(helm_secret(
        "aud-legacy",
        "grafana",
        1,
        "deployed",
        "grafana",
        "9.0.0",
        json!({"adminPassword": CANARY}),
    ));
    list(items)
}

/// Releases `from..to` for the benchmark, one namespace each (`bench-0000` …), every one at a
/// different stage in turn, all in order (no problem): the namespaces first, then the objects.
/// Ranges let a benchmark grow one fleet step by step.
/// `manifest` is stored in every Helm record (e.g. a real render, for realistic sizes).
pub fn fleet(from: usize, to: usize, manifest: &str) -> (String, String) {
    let names: Vec<String> = (from..to).map(|i| format!("bench-{i:04}")).collect();
    let mut items = Vec::new();
    for (i, ns) in (from..to).zip(&names) {
        let r = format!("ess{i}");
        let (stage, value) = [
            ("legacy", "legacy_auth"),
            ("dryrun", "legacy_auth"),
            ("migrate", "syn2mas_migrated"),
            ("done", "delegated_auth"),
        ][i % 4];
        items.push(helm_secret_with_manifest(
            ns,
            &r,
            1,
            "superseded",
            "matrix-stack",
            "26.8.1",
            values(stage),
            manifest,
        ));
        items.push(helm_secret_with_manifest(
            ns,
            &r,
            2,
            "deployed",
            "matrix-stack",
            "26.8.2",
            values(stage),
            manifest,
        ));
        items.push(marker(ns, &r, value, true));
        items.push(synapse(ns, &r, 1, None));
    }
    (namespaces(&names), list(items))
}
