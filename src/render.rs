//! Reading [`Facts`] from a rendered manifest stream.
//!
//! The most reliable witness is the chart's own pre-upgrade markers Job: its `-markers` argument
//! names the ConfigMap and the exact transition the chart will ask for. When hooks are invisible
//! (Helm 3) or markers are disabled, the step is inferred from the resources: the MAS Deployment,
//! MAS's `matrix.kind` (`synapse_read_only` only in the dry run), the syn2mas Job and its hook
//! phase.

use base64::Engine;
use serde_json::Value;

use crate::facts::{merge_config_layer, Facts, InputNote, MasAuth, Origin, Requested, SynapseAuth};
use crate::manifest::{Document, Resource, Stream};
use crate::rules::{Finding, RuleId};
use crate::state::{ChartRule, MarkerState, Step, MARKER_KEY};

const NAME_LABEL: &str = "app.kubernetes.io/name";
const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// A parsed `-markers` argument entry: `<configmap>:<key>:<new>:<allowed;…>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerArg {
    pub configmap: String,
    pub key: String,
    pub new: String,
    pub allowed: Vec<String>,
}

/// The `MATRIX_STACK_MSC3861` entry of a `-markers` value, with the chart's rule in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msc3861Marker {
    pub configmap: String,
    pub rule: ChartRule,
}

/// Parses every entry of one `-markers` value (comma separated) and returns the
/// `MATRIX_STACK_MSC3861` one. Any malformed entry is bad input: the chart never renders one, so
/// something between the chart and ess-guard is broken, and guessing what the Job will do would
/// defeat the guard. The chart's tool needs at least four `:` fields and ignores any more; here
/// exactly four are required, so a value with a stray `:` is refused rather than cut.
pub fn parse_marker_arg(arg: &str) -> Result<Msc3861Marker, String> {
    let mut found: Option<Msc3861Marker> = None;
    for entry in arg.split(',') {
        let fields: Vec<&str> = entry.split(':').collect();
        if fields.len() != 4 {
            return Err(format!(
                "`-markers {entry}` has {} fields; expected <configmap>:<key>:<new value>:<allowed values separated by ;>",
                fields.len()
            ));
        }
        let parsed = MarkerArg {
            configmap: fields[0].to_string(),
            key: fields[1].to_string(),
            new: fields[2].to_string(),
            allowed: fields[3].split(';').map(str::to_string).collect(),
        };
        if parsed.configmap.is_empty() || parsed.key.is_empty() || parsed.new.is_empty() {
            return Err(format!(
                "`-markers` entry {entry:?} has an empty ConfigMap name, key or new value"
            ));
        }
        if parsed.allowed.iter().any(String::is_empty) {
            return Err(format!(
                "`-markers` entry {entry:?} has an empty allowed value"
            ));
        }
        if parsed.key != MARKER_KEY {
            continue;
        }
        if found.is_some() {
            return Err(format!(
                "`-markers {arg}` has more than one {MARKER_KEY} entry"
            ));
        }
        let new = MarkerState::from_stored(&parsed.new)
            .map_err(|e| format!("`-markers` entry {entry:?}: {e}"))?;
        found = Some(Msc3861Marker {
            configmap: parsed.configmap,
            rule: ChartRule {
                new,
                allowed: parsed.allowed,
            },
        });
    }
    found.ok_or_else(|| format!("`-markers {arg}` names no {MARKER_KEY} marker"))
}

/// The chart version from the `helm.sh/chart: matrix-stack-<version>` labels. Two different
/// versions in one render is bad input (a mixed stream cannot be one chart's upgrade).
fn chart_version(stream: &Stream) -> Result<Option<String>, String> {
    let mut version: Option<&str> = None;
    for (doc, r) in stream.resources() {
        let Some(v) = r
            .label("helm.sh/chart")
            .and_then(|c| c.strip_prefix("matrix-stack-"))
        else {
            continue;
        };
        match version {
            Some(seen) if seen != v => {
                return Err(format!(
                    "{}: label helm.sh/chart=matrix-stack-{v}, but other resources say matrix-stack-{seen}",
                    doc.label()
                ))
            }
            _ => version = Some(v),
        }
    }
    Ok(version.map(str::to_string))
}

/// Which resources of the render play which role.
struct Parts<'a> {
    markers_pre: Option<(&'a Document, &'a Resource)>,
    synapse_sts: Vec<&'a Resource>,
    mas_deployment: Option<&'a Resource>,
    syn2mas_job: Option<&'a Resource>,
    syn2mas_rbac: bool,
    check_config_job: bool,
    synapse_config: Vec<&'a Resource>,
    mas_config: Vec<&'a Resource>,
}

fn classify(stream: &Stream) -> Parts<'_> {
    let mut parts = Parts {
        markers_pre: None,
        synapse_sts: Vec::new(),
        mas_deployment: None,
        syn2mas_job: None,
        syn2mas_rbac: false,
        check_config_job: false,
        synapse_config: Vec::new(),
        mas_config: Vec::new(),
    };
    for (doc, r) in stream.resources() {
        let name_label = r.label(NAME_LABEL).unwrap_or("");
        match r.kind() {
            "Job"
                if name_label == "deployment-markers-pre"
                    || r.name().ends_with("-deployment-markers-pre") =>
            {
                parts.markers_pre = Some((doc, r));
            }
            "Job" if name_label == "syn2mas" => parts.syn2mas_job = Some(r),
            "Job" if name_label == "synapse-check-config" => parts.check_config_job = true,
            "Role" | "RoleBinding" if name_label == "syn2mas" => parts.syn2mas_rbac = true,
            "StatefulSet" if is_synapse_process(r) => parts.synapse_sts.push(r),
            "Deployment" if name_label == "matrix-authentication-service" => {
                parts.mas_deployment = Some(r)
            }
            "ConfigMap" | "Secret"
                if r.hook.is_none()
                    && name_label == "synapse"
                    && r.label(COMPONENT_LABEL) == Some("matrix-server") =>
            {
                parts.synapse_config.push(r)
            }
            "ConfigMap" | "Secret"
                if r.hook.is_none() && name_label == "matrix-authentication-service" =>
            {
                parts.mas_config.push(r)
            }
            _ => {}
        }
    }
    parts
}

/// A Synapse process StatefulSet: component `matrix-server` and name label `synapse-<process>`.
pub fn is_synapse_process(r: &Resource) -> bool {
    r.kind() == "StatefulSet"
        && r.label(COMPONENT_LABEL) == Some("matrix-server")
        && r.label(NAME_LABEL)
            .is_some_and(|n| n.starts_with("synapse-"))
}

/// The args of the first container of a pod template.
fn container_args(r: &Resource) -> Vec<&str> {
    r.value
        .pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Reads the facts of a render. Errors are bad input (exit 2).
pub fn facts_from_stream(stream: &Stream) -> Result<Facts, String> {
    let parts = classify(stream);
    let mut facts = Facts::new(Origin::Render);
    let hooks_visible = stream.hooks_visible();

    // Release and namespace from what the chart names after the release.
    if let Some((_, job)) = parts.markers_pre {
        facts.release = job
            .name()
            .strip_suffix("-deployment-markers-pre")
            .map(str::to_string);
        facts.namespace = job.id.namespace.clone();
    }
    for sts in &parts.synapse_sts {
        if facts.release.is_none() {
            facts.release = sts
                .label("k8s.element.io/synapse-instance")
                .and_then(|i| i.strip_suffix("-synapse"))
                .map(str::to_string);
        }
        if facts.namespace.is_none() {
            facts.namespace = sts.id.namespace.clone();
        }
        let replicas = sts
            .value
            .get("spec")
            .and_then(|s| s.get("replicas"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        facts
            .synapse_statefulsets
            .push((sts.name().to_string(), replicas));
    }

    facts.synapse_enabled = !parts.synapse_sts.is_empty();
    facts.mas_enabled = parts.mas_deployment.is_some();
    facts.syn2mas_without_synapse =
        !facts.synapse_enabled && (parts.syn2mas_rbac || parts.syn2mas_job.is_some());
    if hooks_visible {
        facts.check_config_hook = Some(parts.check_config_job);
        facts.markers_enabled = Some(parts.markers_pre.is_some());
    }

    let mas_config = layered_config(
        &parts.mas_config,
        &["mas-config-underrides.yaml"],
        &["mas-config-overrides.yaml"],
    );
    let synapse_config = layered_config(&parts.synapse_config, &SYNAPSE_UNDER, &SYNAPSE_OVER);
    if facts.mas_enabled {
        let mut mas = MasAuth::from_config(&mas_config.0);
        mas.partial = mas_config.1;
        facts.mas_auth = Some(mas);
    }
    facts.synapse_auth = SynapseAuth::from_config(&synapse_config.0);
    facts.synapse_auth.partial = synapse_config.1;

    let syn2mas_phase_pre = parts
        .syn2mas_job
        .and_then(|j| j.hook.as_ref())
        .map(|h| h.is_pre_upgrade() || h.phases.iter().any(|p| p == "pre-install"));
    let dry_run_kind = facts
        .mas_auth
        .as_ref()
        .and_then(|m| m.matrix_kind.as_deref())
        == Some("synapse_read_only");

    // The syn2mas switch as far as the render shows it.
    facts.syn2mas = match (parts.syn2mas_job.is_some(), syn2mas_phase_pre) {
        (true, Some(true)) => Some(false),
        (true, _) => Some(true),
        (false, _) if dry_run_kind => Some(true),
        (false, _) if parts.syn2mas_rbac => Some(false),
        _ => None,
    };

    facts.requested = if let Some((doc, job)) = parts.markers_pre {
        let args = container_args(job);
        let value = args
            .iter()
            .position(|a| *a == "-markers")
            .and_then(|i| args.get(i + 1))
            .ok_or_else(|| {
                format!(
                    "{}: Job {} has no `-markers` argument",
                    doc.label(),
                    job.name()
                )
            })?;
        let marker = parse_marker_arg(value)
            .map_err(|e| format!("{}: Job {}: {e}", doc.label(), job.name()))?;
        facts.markers_configmap = Some(marker.configmap.clone());
        let new = marker.rule.new;
        facts.chart_rule = Some(marker.rule);
        Requested::Step(match new {
            MarkerState::LegacyAuth if facts.mas_enabled => Step::DryRun,
            MarkerState::LegacyAuth | MarkerState::Absent => Step::Legacy,
            MarkerState::Syn2masMigrated => Step::Migrate,
            MarkerState::DelegatedAuth => Step::Finalize,
        })
    } else if !facts.synapse_enabled {
        Requested::NoMarker
    } else if !facts.mas_enabled {
        Requested::Step(Step::Legacy)
    } else if parts.syn2mas_job.is_some() {
        Requested::Step(if syn2mas_phase_pre == Some(true) {
            Step::Migrate
        } else {
            Step::DryRun
        })
    } else if dry_run_kind {
        Requested::Step(Step::DryRun)
    } else if hooks_visible {
        Requested::Step(Step::Finalize)
    } else {
        Requested::Ambiguous(crate::facts::HELM3_READINGS.to_vec())
    };
    facts.chart_version = chart_version(stream)?;

    for doc in &stream.docs {
        for key in &doc.duplicate_keys {
            facts.notes.push(InputNote {
                rule: RuleId::DuplicateKey,
                message: format!(
                    "{}: mapping key `{key}` appears more than once; the last value is used",
                    doc.label()
                ),
                resource: doc.resources().first().map(|r| r.id.to_string()),
                source: doc.source.clone(),
            });
        }
    }
    Ok(facts)
}

/// Merges the config layers of ConfigMaps (named keys) and Secrets (`user-*` keys) in the order
/// the chart's render-config init containers use: underrides, user additions (sorted), overrides.
/// Returns the merged config and whether some layer could not be read.
fn layered_config(resources: &[&Resource], under: &[&str], over: &[&str]) -> (Value, bool) {
    let (layers, mut partial) = config_layers(resources, under, over);
    let mut merged = Value::Object(Default::default());
    for layer in layers {
        match layer.value {
            Some(layer @ Value::Object(_)) => merge_config_layer(&mut merged, layer),
            Some(Value::Null) => {}
            _ => partial = true,
        }
    }
    (merged, partial)
}

/// One config layer: which resource holds it, and its parsed value (None when unreadable).
struct Layer {
    rank: u8,
    key: String,
    /// Index into the `resources` slice given to [`config_layers`].
    holder: usize,
    value: Option<Value>,
}

/// The config layers of `resources`, sorted in merge order. The flag is true when some Secret
/// entry could not be decoded.
fn config_layers(resources: &[&Resource], under: &[&str], over: &[&str]) -> (Vec<Layer>, bool) {
    let mut layers: Vec<Layer> = Vec::new();
    let mut partial = false;
    for (holder, r) in resources.iter().enumerate() {
        let secret = r.kind() == "Secret";
        let mut entries: Vec<(String, String)> = r
            .data()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(string_data) = r.value.get("stringData").and_then(Value::as_object) {
            for (k, v) in string_data {
                if let Some(v) = v.as_str() {
                    entries.push((
                        k.clone(),
                        base64::engine::general_purpose::STANDARD.encode(v),
                    ));
                }
            }
        }
        for (key, value) in entries {
            let rank = if under.contains(&key.as_str()) {
                0
            } else if secret && key.starts_with("user-") {
                1
            } else if let Some(pos) = over.iter().position(|o| *o == key) {
                2 + pos as u8
            } else {
                continue;
            };
            let text = if secret {
                // Secret data is base64. Decode it only to read config; it is never printed.
                match base64::engine::general_purpose::STANDARD
                    .decode(value.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                {
                    Some(text) => text,
                    None => {
                        partial = true;
                        continue;
                    }
                }
            } else {
                value
            };
            let value = crate::manifest::yaml::parse_embedded(&text).ok();
            layers.push(Layer {
                rank,
                key,
                holder,
                value,
            });
        }
    }
    layers.sort_by(|a, b| (a.rank, &a.key).cmp(&(b.rank, &b.key)));
    (layers, partial)
}

/// The resource a finding concerns, for findings the engine made from facts. Suppression
/// annotations are read from this resource, and reports point at it.
///
/// - SSO rules: the Synapse config ConfigMap or Secret whose layer holds the entry;
/// - `missing-bcrypt-scheme`: the MAS config ConfigMap;
/// - `syn2mas-external-synapse`: the syn2mas Role;
/// - transition rules and the other marker rules (the chart's allowed list, the profile, a
///   repeated step 2): the deployment-markers pre Job;
/// - `markers-disabled`: the main Synapse StatefulSet, which the missing markers leave unguarded;
/// - `sso-login-worker-with-mas`: the sso-login StatefulSet.
///
/// Findings that already name a resource, and rules that concern the release as a whole (or
/// whose resource is not in the render), are left alone.
pub fn locate(stream: &Stream, findings: &mut [Finding]) {
    // A finding that names its resource but not the template gets the template.
    for finding in findings.iter_mut().filter(|f| f.source.is_none()) {
        if let Some(resource) = &finding.resource {
            finding.source = stream
                .resources()
                .find(|(_, r)| r.id.to_string() == *resource)
                .and_then(|(d, _)| d.source.clone());
        }
    }
    if findings.iter().all(|f| f.resource.is_some()) {
        return;
    }
    let parts = classify(stream);
    let doc_of = |r: &Resource| {
        stream
            .resources()
            .find(|(_, x)| std::ptr::eq(*x, r))
            .map(|(d, _)| d)
    };
    let synapse_layers = config_layers(&parts.synapse_config, &SYNAPSE_UNDER, &SYNAPSE_OVER).0;
    let synapse_holder = |wanted: fn(&SynapseAuth) -> bool| -> Option<&Resource> {
        synapse_layers
            .iter()
            .find(|l| {
                l.value
                    .as_ref()
                    .is_some_and(|v| wanted(&SynapseAuth::from_config(v)))
            })
            .map(|l| parts.synapse_config[l.holder])
            .or_else(|| parts.synapse_config.first().copied())
    };
    let find = |kind: &str, name_label: &str| {
        stream
            .resources()
            .map(|(_, r)| r)
            .find(|r| r.kind() == kind && r.label(NAME_LABEL) == Some(name_label))
    };
    for finding in findings.iter_mut().filter(|f| f.resource.is_none()) {
        let at: Option<&Resource> = match finding.rule {
            RuleId::SsoWithCheckConfig | RuleId::SsoLeftInSynapse => {
                synapse_holder(|a| !a.sso_mechanisms().is_empty())
            }
            RuleId::UnsupportedAuthProvider => {
                synapse_holder(|a| a.saml || a.cas || a.jwt || !a.password_providers.is_empty())
            }
            RuleId::UnmappedOidcProvider => synapse_holder(|a| !a.oidc_idps.is_empty()),
            RuleId::MissingBcryptScheme => parts
                .mas_config
                .iter()
                .find(|r| r.kind() == "ConfigMap")
                .or(parts.mas_config.first())
                .copied(),
            RuleId::Syn2masExternalSynapse => find("Role", "syn2mas")
                .or_else(|| find("RoleBinding", "syn2mas"))
                .or(parts.syn2mas_job),
            RuleId::NoRollback
            | RuleId::Syn2masRerun
            | RuleId::Syn2masStillEnabled
            | RuleId::MasRequiresSyn2mas
            | RuleId::UnknownMarkerValue
            | RuleId::ImmutableMarker
            | RuleId::ChartRefusesTransition
            | RuleId::StricterThanChart
            | RuleId::Stage2Repeated
            | RuleId::UnknownChartVersion
            | RuleId::AmbiguousStep
            | RuleId::UnverifiedStep
            | RuleId::LegacyInferred
            | RuleId::MarkerEvidenceUnchecked => parts.markers_pre.map(|(_, job)| job),
            RuleId::MarkersDisabled => parts
                .synapse_sts
                .iter()
                .find(|r| r.label(NAME_LABEL) == Some("synapse-main"))
                .or(parts.synapse_sts.first())
                .copied(),
            RuleId::SsoLoginWorkerWithMas => find("StatefulSet", "synapse-sso-login"),
            _ => None,
        };
        if let Some(r) = at {
            finding.resource = Some(r.id.to_string());
            finding.source = doc_of(r).and_then(|d| d.source.clone());
        }
    }
}

const SYNAPSE_UNDER: [&str; 1] = ["01-homeserver-underrides.yaml"];
const SYNAPSE_OVER: [&str; 2] = ["04-homeserver-overrides.yaml", "05-main.yaml"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_args() {
        let m = parse_marker_arg("ess-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:legacy_auth")
            .expect("parses");
        assert_eq!(m.configmap, "ess-markers");
        assert_eq!(m.rule.new, MarkerState::Syn2masMigrated);
        assert_eq!(m.rule.allowed, vec!["legacy_auth"]);
        let m = parse_marker_arg(
            "ess-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:legacy_auth;syn2mas_migrated",
        )
        .expect("parses the #1584 form");
        assert_eq!(m.rule.allowed, vec!["legacy_auth", "syn2mas_migrated"]);
        // Every entry is parsed, not only ours; other keys are checked and then ignored.
        let m = parse_marker_arg(
            "ess-other:SOME_KEY:b:a,ess-markers:MATRIX_STACK_MSC3861:delegated_auth:delegated_auth;syn2mas_migrated",
        )
        .expect("parses");
        assert_eq!(m.rule.allowed, vec!["delegated_auth", "syn2mas_migrated"]);
        for bad in [
            "",
            "ess-markers:MATRIX_STACK_MSC3861:legacy_auth",
            "ess-markers:MATRIX_STACK_MSC3861:stage9:legacy_auth",
            "ess-markers:MATRIX_STACK_MSC3861:legacy_auth:legacy_auth:extra",
            "ess-markers:MATRIX_STACK_MSC3861:legacy_auth:",
            "ess-markers:MATRIX_STACK_MSC3861:legacy_auth:legacy_auth;",
            ":MATRIX_STACK_MSC3861:legacy_auth:legacy_auth",
            "ess-other:SOME_KEY:b,ess-markers:MATRIX_STACK_MSC3861:legacy_auth:legacy_auth",
            "ess-markers:MATRIX_STACK_MSC3861:legacy_auth:legacy_auth,ess-markers:MATRIX_STACK_MSC3861:legacy_auth:legacy_auth",
            "ess-other:SOME_KEY:b:a",
        ] {
            assert!(parse_marker_arg(bad).is_err(), "{bad:?}");
        }
    }
}
