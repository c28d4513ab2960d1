//! `ess-guard policy`: ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1, CEL) that
//! guard the migration marker inside the cluster, for deployments that do not go through
//! ess-guard (Flux, `kubectl apply`, a colleague's laptop).
//!
//! Two policies, each with its binding:
//! * `ess-guard-marker`: UPDATE/DELETE of a marker ConfigMap. Refuses deleting it (a missing
//!   marker makes the chart allow every transition), removing the key, storing an unknown
//!   value, moving it backwards (`syn2mas_migrated`/`delegated_auth` → `legacy_auth`,
//!   `delegated_auth` → `syn2mas_migrated`), and removing the managed-by label (which would
//!   take the ConfigMap out of this policy's object selector and make the chart refuse it).
//! * `ess-guard-syn2mas-job`: CREATE of a release's `<release>-syn2mas` Job while that
//!   release's marker is `delegated_auth`. The marker ConfigMaps are the policy's parameters
//!   (selected by label in the Job's namespace); the expression only judges the parameter named
//!   `<release>-markers`, and a missing parameter allows (a fresh install).
//!
//! Neither may block namespace deletion: the namespace controller deletes through the API as
//! [`NAMESPACE_CONTROLLER`], and a refused delete would leave the namespace stuck terminating,
//! so a match condition exempts that user. docs/policy.md explains every expression and what
//! the policies cannot see.
//!
//! The objects are built as ordered JSON and printed as YAML; the same options always give the
//! same bytes.

use serde_json::{json, Value};

use crate::names::is_dns_label;
use crate::state::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, MARKER_KEY};

/// The user the namespace controller deletes a terminating namespace's objects as.
pub const NAMESPACE_CONTROLLER: &str = "system:serviceaccount:kube-system:namespace-controller";
/// Name of the policy (and binding) guarding the marker ConfigMap.
pub const MARKER_POLICY: &str = "ess-guard-marker";
/// Name of the policy (and binding) guarding the syn2mas Job.
pub const JOB_POLICY: &str = "ess-guard-syn2mas-job";

/// What to generate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyOptions {
    /// Only these namespaces (empty: every namespace).
    pub namespaces: Vec<String>,
    /// Only these releases (empty: every release).
    pub releases: Vec<String>,
    /// Warn and audit instead of denying.
    pub audit_only: bool,
}

/// A CEL string literal (double-quoted, so the YAML stays readable; names and label values
/// never hold quotes, but escape anyway).
fn cel_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn cel_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| cel_str(s)).collect();
    format!("[{}]", quoted.join(", "))
}

fn validation_actions(opts: &PolicyOptions) -> Value {
    if opts.audit_only {
        json!(["Warn", "Audit"])
    } else {
        json!(["Deny"])
    }
}

fn namespace_selector(opts: &PolicyOptions) -> Value {
    if opts.namespaces.is_empty() {
        json!({})
    } else {
        json!({"matchExpressions": [{
            "key": "kubernetes.io/metadata.name",
            "operator": "In",
            "values": opts.namespaces,
        }]})
    }
}

fn labels() -> Value {
    json!({"app.kubernetes.io/managed-by": "ess-guard", "app.kubernetes.io/part-of": "matrix-stack"})
}

/// The marker ConfigMap policy.
fn marker_policy(opts: &PolicyOptions) -> Value {
    let key = cel_str(MARKER_KEY);
    let mut rule = json!({
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["UPDATE", "DELETE"],
        "resources": ["configmaps"],
    });
    if !opts.releases.is_empty() {
        let names: Vec<String> = opts
            .releases
            .iter()
            .map(|r| format!("{r}-markers"))
            .collect();
        rule["resourceNames"] = json!(names);
    }
    let not_delete = "request.operation == \"DELETE\"";
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": MARKER_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [rule],
                "objectSelector": {"matchLabels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
            },
            "matchConditions": [{
                "name": "not-namespace-deletion",
                "expression": format!("request.userInfo.username != {}", cel_str(NAMESPACE_CONTROLLER)),
            }],
            "variables": [
                {"name": "rank", "expression": "{\"legacy_auth\": 0, \"syn2mas_migrated\": 1, \"delegated_auth\": 2}"},
                {"name": "oldValue", "expression": format!("has(oldObject.data) && {key} in oldObject.data ? oldObject.data[{key}] : \"\"")},
                {"name": "newValue", "expression": format!("{not_delete} || !has(object.data) || !({key} in object.data) ? \"\" : object.data[{key}]")},
            ],
            "validations": [
                {
                    "expression": "request.operation != \"DELETE\"",
                    "message": "deleting the ESS marker ConfigMap resets the chart's migration guard (a missing marker allows every transition); ess-guard's admission policy refuses it",
                    "reason": "Forbidden",
                },
                {
                    "expression": format!("{not_delete} || variables.oldValue == \"\" || variables.newValue != \"\""),
                    "messageExpression": format!("\"removing \" + {key} + \" (stored: \" + variables.oldValue + \") resets the chart's migration guard; ess-guard's admission policy refuses it\""),
                    "reason": "Forbidden",
                },
                {
                    "expression": format!("{not_delete} || variables.newValue == \"\" || variables.newValue in variables.rank"),
                    "messageExpression": format!("{key} + \" value \" + variables.newValue + \" is unknown to the chart (known: legacy_auth, syn2mas_migrated, delegated_auth); ess-guard's admission policy refuses it\""),
                    "reason": "Invalid",
                },
                {
                    "expression": format!("{not_delete} || !(variables.oldValue in variables.rank) || !(variables.newValue in variables.rank) || variables.rank[variables.newValue] >= variables.rank[variables.oldValue]"),
                    "messageExpression": format!("{key} + \" may not move backwards from \" + variables.oldValue + \" to \" + variables.newValue + \": the Synapse to MAS migration is one-way; ess-guard's admission policy refuses it\""),
                    "reason": "Forbidden",
                },
                {
                    "expression": format!("{not_delete} || (has(object.metadata.labels) && {label} in object.metadata.labels && object.metadata.labels[{label}] == {value})",
                        label = cel_str(MANAGED_BY_LABEL), value = cel_str(MANAGED_BY_VALUE)),
                    "message": format!("removing the label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} from the marker ConfigMap makes the chart's marker Job refuse it and takes it out of ess-guard's admission policy; ess-guard's admission policy refuses it"),
                    "reason": "Forbidden",
                },
            ],
        },
    })
}

fn marker_binding(opts: &PolicyOptions) -> Value {
    binding(MARKER_POLICY, None, opts)
}

/// A binding of `policy` (named like it), with the options' actions and namespaces; `param_ref`
/// for a policy that reads a parameter. The two bindings differ only there, so they are built
/// by one function and cannot drift apart on scope or actions.
fn binding(policy: &str, param_ref: Option<Value>, opts: &PolicyOptions) -> Value {
    let mut spec = serde_json::Map::new();
    spec.insert("policyName".into(), json!(policy));
    if let Some(param_ref) = param_ref {
        spec.insert("paramRef".into(), param_ref);
    }
    spec.insert("validationActions".into(), validation_actions(opts));
    spec.insert(
        "matchResources".into(),
        json!({"namespaceSelector": namespace_selector(opts)}),
    );
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy, "labels": labels()},
        "spec": spec,
    })
}

/// The syn2mas Job policy.
fn job_policy(opts: &PolicyOptions) -> Value {
    let key = cel_str(MARKER_KEY);
    let which_jobs = if opts.releases.is_empty() {
        "object.metadata.name.endsWith('-syn2mas')".to_string()
    } else {
        let names: Vec<String> = opts
            .releases
            .iter()
            .map(|r| format!("{r}-syn2mas"))
            .collect();
        format!("object.metadata.name in {}", cel_list(&names))
    };
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": JOB_POLICY, "labels": labels()},
        "spec": {
            "failurePolicy": "Fail",
            "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": ["batch"],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["jobs"],
                }],
            },
            "matchConditions": [{
                "name": "syn2mas-job",
                "expression": which_jobs,
            }],
            "variables": [
                {"name": "release", "expression": "object.metadata.name.substring(0, size(object.metadata.name) - size(\"-syn2mas\"))"},
                {"name": "ownMarker", "expression": "params != null && params.metadata.name == variables.release + \"-markers\""},
                {"name": "stored", "expression": format!("variables.ownMarker && has(params.data) && {key} in params.data ? params.data[{key}] : \"\"")},
            ],
            "validations": [{
                "expression": "variables.stored != \"delegated_auth\"",
                "messageExpression": "\"release \" + variables.release + \" has completed the migration (marker delegated_auth in ConfigMap \" + params.metadata.name + \"): running syn2mas again would re-import Synapse users into a live MAS; ess-guard's admission policy refuses Job \" + object.metadata.name",
                "reason": "Forbidden",
            }],
        },
    })
}

fn job_binding(opts: &PolicyOptions) -> Value {
    let param_ref = json!({
        "selector": {"matchLabels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
        "parameterNotFoundAction": "Allow",
    });
    binding(JOB_POLICY, Some(param_ref), opts)
}

/// Checks the options: names must be DNS labels (they end up in selectors and CEL).
pub fn validate(opts: &PolicyOptions) -> Result<(), String> {
    for ns in &opts.namespaces {
        if !is_dns_label(ns) {
            return Err(format!("--namespace {ns:?} is not a valid namespace name"));
        }
    }
    for r in &opts.releases {
        // `<release>-syn2mas` must itself be a valid name.
        if !is_dns_label(r) || r.len() > 53 {
            return Err(format!("--release {r:?} is not a valid Helm release name"));
        }
    }
    Ok(())
}

/// The four objects, in apply order (each policy before its binding).
pub fn objects(opts: &PolicyOptions) -> Vec<Value> {
    vec![
        marker_policy(opts),
        marker_binding(opts),
        job_policy(opts),
        job_binding(opts),
    ]
}

/// The objects as one YAML stream for `kubectl apply -f -`.
pub fn yaml(opts: &PolicyOptions) -> Result<String, String> {
    let mut out = String::from(
        "# Generated by `ess-guard policy`: admission policies guarding the ESS migration marker.\n# See docs/policy.md for what each expression does and what the policies cannot see.\n",
    );
    for obj in objects(opts) {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&obj).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_stable_and_parses_back() {
        let opts = PolicyOptions {
            namespaces: vec!["ess".into()],
            releases: vec!["ess".into()],
            audit_only: false,
        };
        let a = yaml(&opts).expect("yaml");
        assert_eq!(a, yaml(&opts).expect("yaml"));
        let docs: Vec<Value> = a
            .split("\n---\n")
            .skip(1)
            .map(|d| serde_yaml::from_str(d).expect("parses"))
            .collect();
        assert_eq!(docs.len(), 4);
        assert_eq!(docs, objects(&opts));
    }

    #[test]
    fn options_shape_the_objects() {
        let all = objects(&PolicyOptions::default());
        assert_eq!(all[1]["spec"]["validationActions"], json!(["Deny"]));
        assert_eq!(
            all[1]["spec"]["matchResources"]["namespaceSelector"],
            json!({})
        );
        assert!(all[0]["spec"]["matchConstraints"]["resourceRules"][0]
            .get("resourceNames")
            .is_none());
        let some = objects(&PolicyOptions {
            namespaces: vec!["a".into(), "b".into()],
            releases: vec!["x".into()],
            audit_only: true,
        });
        assert_eq!(
            some[3]["spec"]["validationActions"],
            json!(["Warn", "Audit"])
        );
        assert_eq!(
            some[1]["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"],
            json!(["a", "b"])
        );
        assert_eq!(
            some[0]["spec"]["matchConstraints"]["resourceRules"][0]["resourceNames"],
            json!(["x-markers"])
        );
        assert_eq!(
            some[2]["spec"]["matchConditions"][0]["expression"],
            json!(r#"object.metadata.name in ["x-syn2mas"]"#)
        );
    }

    #[test]
    fn the_example_is_the_default_output() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/policy/ess-guard-policy.yaml");
        let example = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            example,
            yaml(&PolicyOptions::default()).expect("yaml"),
            "regenerate it: cargo run -- policy > examples/policy/ess-guard-policy.yaml"
        );
    }

    #[test]
    fn bad_names_are_refused() {
        let bad = PolicyOptions {
            releases: vec!["x' || true || '".into()],
            ..PolicyOptions::default()
        };
        assert!(validate(&bad).is_err());
        let bad = PolicyOptions {
            namespaces: vec!["Ess".into()],
            ..PolicyOptions::default()
        };
        assert!(validate(&bad).is_err());
    }
}
