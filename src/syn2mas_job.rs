//! The chart's syn2mas hook Job: which shape the chart in front of ess-guard renders, where in
//! the pre-upgrade hooks it may run, and building it when a step-2 render lacks it.
//!
//! Layering: this module knows the Job and reads the stream; [`crate::inject`] decides when to
//! harden or build it and turns that into edits. Nothing here imports `inject`.
//!
//! Two shapes exist (`ess-renders/pr1584/README.md` §5.2):
//! - **26.8.x** (ess-helm 83c7981, `ess-chart.md` §2): copy `mas-cli` out of the syn2mas (debug)
//!   image, render the MAS and Synapse configs from the step-2 hook copies, run `syn2mas check`
//!   in the init container `syn2mas-check`, then matrix-tools `syn2mas`, which scales Synapse
//!   down, migrates and scales back;
//! - **with ess-helm #1584**: the same without `syn2mas-check` (matrix-tools runs the check and
//!   skips the migration when the marker already says `syn2mas_migrated`).
//!
//! A built Job takes every input from the render itself; when one is missing, or the chart's
//! shape is not known, the build fails with the list, so a half-formed Job, or one of the wrong
//! shape, is never injected. The chart's `db-wait` init containers are left out: the config
//! render and migration containers fail (and the hook with it) if the databases are
//! unreachable. The emptyDirs are `medium: Memory`, the chart's default for
//! `matrixTools.ephemeralStorages.renderedConfig` and `syn2mas.ephemeralStorages.tmpMasCli`
//! (values a render without the Job does not show).

use serde_json::{json, Value};

use crate::facts::Facts;
use crate::manifest::{Resource, Stream};
use crate::render::parse_marker_arg;
use crate::state::{ChartProfile, MarkerState};

/// Marks a syn2mas Job that ess-guard hardened (`"true"`) or built (`"injected"`).
pub const HARDENED: &str = "ess-guard.element.io/hardened";

/// The matrix-tools environment variable that bounds the pod wait of the scale-down: the number
/// of ~1 s retries before `syn2mas` gives up (`ess-chart.md` §3.1 step 3).
pub const SCALE_DOWN_RETRIES_ENV: &str = "SYN2MAS_SCALE_DOWN_MAX_RETRIES";

/// matrix-tools' own value when [`SCALE_DOWN_RETRIES_ENV`] is unset (or not an integer).
pub const MATRIX_TOOLS_DEFAULT_RETRIES: u32 = 60;

/// The hook weights the chart's own manifest tests allow for Jobs (upstream
/// `test_hook_weights_are_well_known`: -10 init-secrets and markers pre-check, 0 check-config and
/// the migration, 10 markers post-step; non-Job hooks one less). Whatever ess-guard writes stays
/// in this set.
pub const CHART_JOB_HOOK_WEIGHTS: [i64; 3] = [-10, 0, 10];

/// The pre-upgrade weight that runs the migration after every hook of weight `after` (Helm runs
/// hooks by weight, then kind, then name; at equal weight `<rel>-syn2mas` sorts before
/// `<rel>-synapse-check-config`, so equal is not enough): the smallest of
/// [`CHART_JOB_HOOK_WEIGHTS`] above `after`, or `after + 1` when none is (only when a user moved
/// check-config to 10 or beyond through `synapse.checkConfigHook.annotations`).
pub fn weight_after(after: i64) -> i64 {
    CHART_JOB_HOOK_WEIGHTS
        .iter()
        .copied()
        .find(|w| *w > after)
        .unwrap_or_else(|| after.saturating_add(1))
}

/// The shape of the syn2mas Job a chart version renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobShape {
    /// matrix-stack up to 26.8.x: `syn2mas-check` init container (MAS image).
    Chart26_8,
    /// With ess-helm #1584 (here: the overlay `26.8.2-dev-pr1584`): no `syn2mas-check`.
    Pr1584,
}

impl JobShape {
    pub fn as_str(self) -> &'static str {
        match self {
            JobShape::Chart26_8 => "matrix-stack <= 26.8.x (with syn2mas-check)",
            JobShape::Pr1584 => "matrix-stack with ess-helm #1584 (no syn2mas-check)",
        }
    }
}

/// The chart version from a `helm.sh/chart: matrix-stack-<version>` label.
fn chart_version(label: &str) -> Option<&str> {
    label.strip_prefix("matrix-stack-")
}

/// The shape a chart version renders, when the version is one ess-guard knows: read from the
/// one chart-version table ([`ChartProfile::for_version`]), since the Job's shape changed in the
/// same upstream change (#1584) as the marker rule.
fn shape_of_version(version: &str) -> Option<JobShape> {
    ChartProfile::for_version(version).map(|profile| match profile {
        ChartProfile::OneUpgradeStage2 => JobShape::Chart26_8,
        ChartProfile::RepeatableStage2 => JobShape::Pr1584,
    })
}

/// Which Job shape the chart in front of ess-guard renders, from the render itself: the
/// `helm.sh/chart` label of the release's resources and, for step 2, the markers pre-check's
/// allowed list (`…:syn2mas_migrated:legacy_auth` before #1584,
/// `…:syn2mas_migrated:legacy_auth;syn2mas_migrated` with it). Either alone decides; when they
/// disagree, or neither is known, the answer is the list of what is unknown, never a guess.
pub fn detect_shape(stream: &Stream) -> Result<JobShape, Vec<String>> {
    let mut labels: Vec<&str> = stream
        .resources()
        .filter_map(|(_, r)| r.label("helm.sh/chart"))
        .filter(|l| l.starts_with("matrix-stack-"))
        .collect();
    labels.sort_unstable();
    labels.dedup();
    let mut unknown = Vec::new();
    let by_label = match labels.as_slice() {
        [] => None,
        [one] => {
            let version = chart_version(one).unwrap_or(one);
            let shape = shape_of_version(version);
            if shape.is_none() {
                unknown.push(format!(
                    "the syn2mas Job shape of chart version {version} (known: <= 26.8.x, 26.8.2-dev-pr1584)"
                ));
            }
            shape
        }
        many => {
            unknown.push(format!(
                "which chart version this is: the render names several ({})",
                many.join(", ")
            ));
            None
        }
    };
    let by_markers = stream
        .resources()
        .map(|(_, r)| r)
        .find(|r| {
            r.kind() == "Job"
                && (r.label("app.kubernetes.io/name") == Some("deployment-markers-pre")
                    || r.name().ends_with("-deployment-markers-pre"))
        })
        .and_then(markers_arg)
        .and_then(|arg| parse_marker_arg(&arg).ok())
        .filter(|m| m.rule.new == MarkerState::Syn2masMigrated)
        .map(|m| {
            // The chart's own rule: #1584 lets step 2 follow syn2mas_migrated.
            if m.rule.allows(Some(MarkerState::Syn2masMigrated.as_str())) {
                JobShape::Pr1584
            } else {
                JobShape::Chart26_8
            }
        });
    match (by_label, by_markers) {
        (Some(a), Some(b)) if a != b => Err(vec![format!(
            "the syn2mas Job shape: the chart label says {} but the markers pre-check says {}",
            a.as_str(),
            b.as_str()
        )]),
        (Some(shape), _) | (None, Some(shape)) => Ok(shape),
        (None, None) => {
            if unknown.is_empty() {
                unknown.push(
                    "the chart version (no helm.sh/chart label and no step-2 markers pre-check)"
                        .to_string(),
                );
            }
            Err(unknown)
        }
    }
}

/// The value after `-markers` in a markers Job's container args.
fn markers_arg(job: &Resource) -> Option<String> {
    job.value
        .pointer("/spec/template/spec/containers")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("args").and_then(Value::as_array))
        .find_map(|args| {
            let i = args.iter().position(|a| a.as_str() == Some("-markers"))?;
            args.get(i + 1)?.as_str().map(str::to_string)
        })
}

/// The container of a syn2mas Job that runs the migration (matrix-tools `syn2mas`).
pub fn migrate_container(job: &Resource) -> Option<&Value> {
    let containers = job
        .value
        .pointer("/spec/template/spec/containers")?
        .as_array()?;
    let runs_syn2mas = |c: &&Value| {
        c.get("args")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            == Some("syn2mas")
            || c.get("name").and_then(Value::as_str) == Some("syn2mas-migrate")
    };
    containers
        .iter()
        .find(runs_syn2mas)
        .or_else(|| containers.first())
}

/// The value of environment variable `name` in `container` as rendered (the last entry wins, as
/// in Kubernetes), e.g. one the user set through `matrixAuthenticationService.syn2mas.extraEnv`.
pub fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container
        .get("env")?
        .as_array()?
        .iter()
        .rfind(|e| e.get("name").and_then(Value::as_str) == Some(name))?
        .get("value")?
        .as_str()
}

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

/// Builds the Job in the chart's `shape` at hook `weight`, or lists what the render lacks.
/// `scale_down_retries` sets [`SCALE_DOWN_RETRIES_ENV`] (unset: matrix-tools' default).
pub fn build(
    stream: &Stream,
    facts: &Facts,
    shape: JobShape,
    weight: i64,
    scale_down_retries: Option<u32>,
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
    let mut migrate_env = vec![
        json!({"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}),
    ];
    if let Some(retries) = scale_down_retries {
        migrate_env.push(json!({"name": SCALE_DOWN_RETRIES_ENV, "value": retries.to_string()}));
    }
    let with = |mut base: Vec<Value>, extra: &[Value]| {
        base.extend(extra.iter().cloned());
        Value::Array(base)
    };
    let mut init_containers = vec![
        json!({"name": "copy-mas-cli", "image": syn2mas_image, "command": ["sh", "-c", "cp -v /usr/local/bin/mas-cli /tmp-mas-cli/mas-cli"], "securityContext": security, "volumeMounts": [{"mountPath": "/tmp-mas-cli", "name": "tmp-mas-cli"}]}),
        json!({"name": "render-config-mas", "image": tools, "args": mas_args, "securityContext": security,
               "volumeMounts": with(vec![json!({"mountPath": "/config-templates", "name": "plain-mas-config", "readOnly": true})], &[secret_mounts.clone(), vec![conf_rw.clone()]].concat())}),
        json!({"name": "render-config-syn", "image": tools, "args": syn_args, "env": syn_env, "securityContext": security,
               "volumeMounts": with(vec![json!({"mountPath": "/config-templates", "name": "plain-syn-config", "readOnly": true})], &[secret_mounts.clone(), vec![conf_rw]].concat())}),
    ];
    // Before #1584 the chart runs MAS's own check first; with #1584 matrix-tools runs it (and
    // skips it with the migration when the marker already says syn2mas_migrated).
    if shape == JobShape::Chart26_8 {
        init_containers.push(json!({"name": "syn2mas-check", "image": syn2mas_image, "args": ["syn2mas", "check", "--config", "/conf/mas-config.yaml", "--synapse-config", "/conf/homeserver.yaml"], "securityContext": security,
               "volumeMounts": with(vec![json!({"mountPath": "/conf", "name": "rendered-config", "readOnly": true})], &secret_mounts)}));
    }
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
                    "initContainers": init_containers,
                    "containers": [
                        {"name": "syn2mas-migrate", "image": tools, "args": ["syn2mas", "--config", "/conf/mas-config.yaml", "--synapse-config", "/conf/homeserver.yaml"],
                         "env": migrate_env,
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

    use crate::manifest::ParseMode;

    /// A render of a ConfigMap labelled with `chart`, and a markers pre-check Job with `markers`.
    fn render(chart: Option<&str>, markers: Option<&str>) -> Stream {
        let mut text =
            String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ess-synapse\n");
        if let Some(chart) = chart {
            text.push_str(&format!("  labels:\n    helm.sh/chart: \"{chart}\"\n"));
        }
        if let Some(markers) = markers {
            text.push_str(&format!(
                "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: ess-deployment-markers-pre\n  labels:\n    app.kubernetes.io/name: deployment-markers-pre\nspec:\n  template:\n    spec:\n      containers:\n      - name: deployment-markers\n        args: [deployment-markers, -step, pre, -markers, \"{markers}\"]\n"
            ));
        }
        Stream::parse("test", text.into_bytes(), ParseMode::Full).expect("parses")
    }

    const OLD_STEP2: &str = "ess-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:legacy_auth";
    const NEW_STEP2: &str =
        "ess-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:legacy_auth;syn2mas_migrated";

    #[test]
    fn shape_from_the_chart_label() {
        for (version, shape) in [
            ("matrix-stack-26.8.2-dev", JobShape::Chart26_8),
            ("matrix-stack-26.8.1", JobShape::Chart26_8),
            ("matrix-stack-25.6.2", JobShape::Chart26_8),
            ("matrix-stack-26.8.2-dev-pr1584", JobShape::Pr1584),
        ] {
            assert_eq!(
                detect_shape(&render(Some(version), None)),
                Ok(shape),
                "{version}"
            );
        }
    }

    #[test]
    fn shape_from_the_markers_allowed_list() {
        assert_eq!(
            detect_shape(&render(None, Some(OLD_STEP2))),
            Ok(JobShape::Chart26_8)
        );
        assert_eq!(
            detect_shape(&render(None, Some(NEW_STEP2))),
            Ok(JobShape::Pr1584)
        );
        // A version the table does not know is settled by the chart's own marker semantics.
        assert_eq!(
            detect_shape(&render(Some("matrix-stack-27.1.0"), Some(NEW_STEP2))),
            Ok(JobShape::Pr1584)
        );
    }

    #[test]
    fn unknown_or_contradicting_chart_is_a_list_not_a_guess() {
        let unknown =
            detect_shape(&render(Some("matrix-stack-27.1.0"), None)).expect_err("unknown");
        assert!(unknown.iter().any(|u| u.contains("27.1.0")), "{unknown:?}");
        let nothing = detect_shape(&render(None, None)).expect_err("nothing known");
        assert!(
            nothing.iter().any(|u| u.contains("chart version")),
            "{nothing:?}"
        );
        let conflict = detect_shape(&render(Some("matrix-stack-26.8.2-dev"), Some(NEW_STEP2)))
            .expect_err("label and markers disagree");
        assert!(
            conflict.iter().any(|u| u.contains("markers pre-check")),
            "{conflict:?}"
        );
    }

    #[test]
    fn weights_stay_in_the_charts_set_and_after_what_must_run_first() {
        // check-config at 0 (and the markers pre-check at -10): 10.
        assert_eq!(weight_after(0), 10);
        // check-config disabled: after the markers pre-check at -10.
        assert_eq!(weight_after(-10), 0);
        assert_eq!(weight_after(-1), 0);
        // Nothing in the chart's set is late enough: the next weight, outside the set.
        assert_eq!(weight_after(10), 11);
        for after in [-11, -10, -1, 0, 5, 9] {
            assert!(
                CHART_JOB_HOOK_WEIGHTS.contains(&weight_after(after)),
                "{after}"
            );
            assert!(weight_after(after) > after);
        }
    }

    #[test]
    fn secret_volume_names_are_valid_and_stable() {
        let v = secret_volume("ess-synapse-hook");
        assert_eq!(v, secret_volume("ess-synapse-hook"));
        assert_eq!(v.len(), "secret-".len() + 12);
        assert_ne!(v, secret_volume("ess-generated"));
    }
}
