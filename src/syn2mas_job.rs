//! Building the syn2mas hook Job when a step-2 render lacks it.
//!
//! The Job has the chart's shape (`ess-chart.md` §2): copy `mas-cli` out of the syn2mas (debug)
//! image, render the MAS and Synapse configs from the step-2 hook copies, run `syn2mas check`,
//! then run matrix-tools `syn2mas`, which scales Synapse down, migrates and scales back. Every
//! input comes from the render itself; when one is missing the build fails with the list, so a
//! half-formed Job is never injected. The chart's `db-wait` init containers are left out: the
//! check container fails (and the hook with it) if the databases are unreachable.

use serde_json::{json, Value};

use crate::facts::Facts;
use crate::inject::HARDENED;
use crate::manifest::{Resource, Stream};

/// A Job ready to append.
pub struct BuiltJob {
    pub resource: String,
    pub text: String,
}

fn images(r: &Resource) -> Vec<&str> {
    [
        "/spec/template/spec/containers",
        "/spec/template/spec/initContainers",
    ]
    .iter()
    .filter_map(|p| r.value.pointer(p).and_then(Value::as_array))
    .flatten()
    .filter_map(|c| c.get("image").and_then(Value::as_str))
    .collect()
}

fn find<'a>(stream: &'a Stream, kind: &str, name: &str) -> Option<&'a Resource> {
    stream
        .resources()
        .map(|(_, r)| r)
        .find(|r| r.kind() == kind && r.name() == name)
}

/// The volume name the chart uses for a Secret: `secret-` and 12 hex digits of a hash of the
/// name. Any stable, valid name works; ess-guard uses FNV-1a to avoid a hashing dependency.
fn secret_volume(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("secret-{:012x}", h & 0xffff_ffff_ffff)
}

/// Builds the Job, or lists what the render lacks.
pub fn build(
    stream: &Stream,
    facts: &Facts,
    weight: i64,
    scale_down_timeout: u32,
) -> Result<BuiltJob, Vec<String>> {
    let mut missing = Vec::new();
    let release = facts.release.clone();
    if release.is_none() {
        missing
            .push("the release name (no markers Job or Synapse StatefulSet names it)".to_string());
    }
    let rel = release.unwrap_or_default();
    let all_images: Vec<&str> = stream.resources().flat_map(|(_, r)| images(r)).collect();
    let tools = all_images
        .iter()
        .find(|i| i.contains("/matrix-tools:") || i.contains("/matrix-tools@"))
        .map(|s| s.to_string());
    if tools.is_none() {
        missing.push("a matrix-tools image (from the markers or init-secrets Job)".to_string());
    }
    let mas_image = stream
        .resources()
        .map(|(_, r)| r)
        .find(|r| {
            r.kind() == "Deployment"
                && r.label("app.kubernetes.io/name") == Some("matrix-authentication-service")
        })
        .and_then(|r| images(r).first().map(|s| s.to_string()));
    if mas_image.is_none() {
        missing.push("the MAS Deployment image".to_string());
    }
    // mas-cli is copied with `sh`, which only the -debug MAS image has.
    let syn2mas_image = mas_image.map(|i| {
        if i.ends_with("-debug") || i.contains('@') {
            i
        } else {
            format!("{i}-debug")
        }
    });
    let needed = [
        ("ServiceAccount", format!("{rel}-syn2mas")),
        ("Role", format!("{rel}-syn2mas")),
        ("ConfigMap", format!("{rel}-synapse-hook")),
        ("Secret", format!("{rel}-synapse-hook")),
        (
            "ConfigMap",
            format!("{rel}-matrix-authentication-service-pre"),
        ),
        ("Secret", format!("{rel}-matrix-authentication-service-pre")),
    ];
    for (kind, name) in &needed {
        if find(stream, kind, name).is_none() {
            missing.push(format!("{kind} {name}"));
        }
    }
    if !missing.is_empty() {
        return Err(missing);
    }
    let (Some(tools), Some(syn2mas_image)) = (tools, syn2mas_image) else {
        return Err(vec!["images".to_string()]);
    };
    let user_keys = |secret: &str| -> Vec<String> {
        let mut keys: Vec<String> = find(stream, "Secret", secret)
            .map(|s| {
                s.data()
                    .map(|(k, _)| k.to_string())
                    .filter(|k| k.starts_with("user-"))
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        keys
    };
    let mas_secret = format!("{rel}-matrix-authentication-service-pre");
    let syn_secret = format!("{rel}-synapse-hook");
    let generated = format!("{rel}-generated");
    let has_generated = stream
        .resources()
        .any(|(_, r)| r.kind() == "Job" && r.name() == format!("{rel}-init-secrets"));
    let mut secrets = vec![mas_secret.clone(), syn_secret.clone()];
    if has_generated {
        secrets.insert(0, generated.clone());
    }
    let mount = |name: &str| json!({"mountPath": format!("/secrets/{name}"), "name": secret_volume(name), "readOnly": true});
    let secret_mounts: Vec<Value> = secrets.iter().map(|s| mount(s)).collect();

    let mut mas_args = vec![
        "render-config".to_string(),
        "-output".into(),
        "/conf/mas-config.yaml".into(),
        "/config-templates/mas-config-underrides.yaml".into(),
    ];
    mas_args.extend(
        user_keys(&mas_secret)
            .into_iter()
            .map(|k| format!("/secrets/{mas_secret}/{k}")),
    );
    mas_args.push("/config-templates/mas-config-overrides.yaml".into());
    let mut syn_args = vec![
        "render-config".to_string(),
        "-output".into(),
        "/conf/homeserver.yaml".into(),
        "/config-templates/01-homeserver-underrides.yaml".into(),
    ];
    if has_generated {
        syn_args.push(format!("/secrets/{generated}/SYNAPSE_EXTRA"));
    }
    syn_args.extend(
        user_keys(&syn_secret)
            .into_iter()
            .map(|k| format!("/secrets/{syn_secret}/{k}")),
    );
    syn_args.push("/config-templates/04-homeserver-overrides.yaml".into());
    syn_args.push("/config-templates/05-main.yaml".into());

    let security = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "privileged": false, "readOnlyRootFilesystem": true});
    let conf_rw = json!({"mountPath": "/conf", "name": "rendered-config", "readOnly": false});
    let mut syn_env = vec![json!({"name": "APPLICATION_NAME", "value": "{{ hostname }}"})];
    if has_generated {
        syn_env.push(json!({"name": "SYNAPSE_POSTGRES_PASSWORD", "value": format!("{{{{ readfile \"/secrets/{generated}/POSTGRES_SYNAPSE_PASSWORD\" | quote }}}}")}));
    }
    let with = |mut base: Vec<Value>, extra: &[Value]| {
        base.extend(extra.iter().cloned());
        Value::Array(base)
    };
    let labels = json!({
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/part-of": "matrix-stack",
        "app.kubernetes.io/component": "matrix-authentication",
        "app.kubernetes.io/name": "syn2mas",
        "app.kubernetes.io/instance": format!("{rel}-syn2mas"),
    });
    let mut metadata = json!({
        "name": format!("{rel}-syn2mas"),
        "labels": labels,
        "annotations": {
            "helm.sh/hook": "pre-install,pre-upgrade",
            "helm.sh/hook-weight": weight.to_string(),
            HARDENED: "injected",
        },
    });
    if let (Some(ns), Some(m)) = (&facts.namespace, metadata.as_object_mut()) {
        m.insert("namespace".into(), Value::String(ns.clone()));
    }
    let mut volumes = vec![
        json!({"name": "plain-syn-config", "configMap": {"name": syn_secret}}),
        json!({"name": "plain-mas-config", "configMap": {"name": mas_secret}}),
    ];
    volumes.extend(
        secrets
            .iter()
            .map(|s| json!({"name": secret_volume(s), "secret": {"secretName": s}})),
    );
    volumes.push(json!({"name": "rendered-config", "emptyDir": {"medium": "Memory"}}));
    volumes.push(json!({"name": "tmp-mas-cli", "emptyDir": {"medium": "Memory"}}));
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": true,
                    "serviceAccountName": format!("{rel}-syn2mas"),
                    "restartPolicy": "Never",
                    "securityContext": {"fsGroup": 10005, "runAsGroup": 10005, "runAsNonRoot": true, "runAsUser": 10005, "seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": [
                        {"name": "copy-mas-cli", "image": syn2mas_image, "command": ["sh", "-c", "cp -v /usr/local/bin/mas-cli /tmp-mas-cli/mas-cli"], "securityContext": security, "volumeMounts": [{"mountPath": "/tmp-mas-cli", "name": "tmp-mas-cli"}]},
                        {"name": "render-config-mas", "image": tools, "args": mas_args, "securityContext": security,
                         "volumeMounts": with(vec![json!({"mountPath": "/config-templates", "name": "plain-mas-config", "readOnly": true})], &[secret_mounts.clone(), vec![conf_rw.clone()]].concat())},
                        {"name": "render-config-syn", "image": tools, "args": syn_args, "env": syn_env, "securityContext": security,
                         "volumeMounts": with(vec![json!({"mountPath": "/config-templates", "name": "plain-syn-config", "readOnly": true})], &[secret_mounts.clone(), vec![conf_rw]].concat())},
                        {"name": "syn2mas-check", "image": syn2mas_image, "args": ["syn2mas", "check", "--config", "/conf/mas-config.yaml", "--synapse-config", "/conf/homeserver.yaml"], "securityContext": security,
                         "volumeMounts": with(vec![json!({"mountPath": "/conf", "name": "rendered-config", "readOnly": true})], &secret_mounts)},
                    ],
                    "containers": [
                        {"name": "syn2mas-migrate", "image": tools, "args": ["syn2mas", "--config", "/conf/mas-config.yaml", "--synapse-config", "/conf/homeserver.yaml"],
                         "env": [{"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}, {"name": "SYN2MAS_SCALE_DOWN_MAX_RETRIES", "value": scale_down_timeout.to_string()}],
                         "securityContext": security,
                         "volumeMounts": with(vec![json!({"mountPath": "/conf", "name": "rendered-config", "readOnly": true}), json!({"mountPath": "/tmp-mas-cli", "name": "tmp-mas-cli", "readOnly": true})], &secret_mounts)},
                    ],
                    "volumes": volumes,
                },
            },
        },
    });
    Ok(BuiltJob {
        resource: format!("Job {rel}-syn2mas"),
        text: crate::emit::to_yaml(&job),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_volume_names_are_valid_and_stable() {
        let v = secret_volume("ess-synapse-hook");
        assert_eq!(v, secret_volume("ess-synapse-hook"));
        assert_eq!(v.len(), "secret-".len() + 12);
        assert_ne!(v, secret_volume("ess-generated"));
    }
}
