//! The act step of post-render: what ess-guard changes in an allowed step-2 render.
//!
//! Only the migration (step 2, `legacy_auth → syn2mas_migrated`) is changed, and only in two
//! ways:
//! - every Synapse StatefulSet of the release records the replicas to restore and that syn2mas
//!   scales it to 0, so `ess-guard recover` can undo a migration that stopped half-way (the
//!   chart's Job exits before scaling back when its pod wait runs out);
//! - when hooks are visible (Helm 4, `helm template`), the chart's syn2mas hook Job is hardened:
//!   it runs after Synapse's check-config hook and after the markers pre-check, never retries, and
//!   its scale-down wait is bounded. A step-2 render without the Job gets one built from the
//!   render (see [`crate::syn2mas_job`]).
//!
//! Helm 3 applies any hook a post-renderer adds as an ordinary resource, at install time, so on
//! Helm 3 input nothing but the annotations is added.

use serde_json::Value;

use crate::cli::GuardArgs;
use crate::engine::Evaluation;
use crate::facts::Facts;
use crate::manifest::edit::{self, Edit};
use crate::manifest::{Body, Resource, Stream};
use crate::render::is_synapse_process;
use crate::rules::{Finding, RuleId};
use crate::state::Step;

/// The annotation prefix ess-guard owns.
pub const ANNOTATION_PREFIX: &str = "ess-guard.element.io";
/// Replicas to restore after the migration (the rendered `spec.replicas`).
pub const RESTORE_REPLICAS: &str = "ess-guard.element.io/restore-replicas";
/// Marks a StatefulSet that the syn2mas Job scales to 0.
pub const SCALED_DOWN_BY: &str = "ess-guard.element.io/scaled-down-by";
/// Marks a syn2mas Job that ess-guard hardened or built.
pub const HARDENED: &str = "ess-guard.element.io/hardened";

/// One change, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    pub resource: String,
    pub description: String,
}

/// Everything post-render will change.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Edits per document index.
    pub edits: Vec<(usize, Vec<Edit>)>,
    /// Documents to append (text without separator).
    pub added: Vec<String>,
    pub changes: Vec<PlannedChange>,
    pub findings: Vec<Finding>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty() && self.added.is_empty()
    }
}

/// Keeps only the edits that change the model, so running twice changes nothing.
fn effective(resource: &Resource, edits: Vec<Edit>) -> Vec<Edit> {
    edits
        .into_iter()
        .filter(|e| match e {
            Edit::Annotation { key, value } => resource.annotation(key) != Some(value.as_str()),
            Edit::Field { path, value } => {
                let pointer = format!("/{}", path.join("/"));
                resource.value.pointer(&pointer) != Some(value)
            }
            Edit::ContainerEnv {
                container,
                name,
                value,
            } => {
                let env = resource
                    .value
                    .pointer("/spec/template/spec/containers")
                    .and_then(Value::as_array)
                    .and_then(|cs| {
                        cs.iter()
                            .rfind(|c| c.get("name").and_then(Value::as_str) == Some(container))
                    })
                    .and_then(|c| c.get("env"))
                    .and_then(Value::as_array);
                let current = env
                    .and_then(|env| {
                        env.iter()
                            .rfind(|e| e.get("name").and_then(Value::as_str) == Some(name))
                    })
                    .and_then(|e| e.get("value"))
                    .and_then(Value::as_str);
                current != Some(value.as_str())
            }
        })
        .collect()
}

/// The container of the chart's syn2mas Job that runs the migration.
fn migrate_container(job: &Resource) -> Option<String> {
    let containers = job
        .value
        .pointer("/spec/template/spec/containers")?
        .as_array()?;
    let runs_syn2mas = |c: &Value| {
        c.get("args")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            == Some("syn2mas")
            || c.get("name").and_then(Value::as_str) == Some("syn2mas-migrate")
    };
    containers
        .iter()
        .find(|c| runs_syn2mas(c))
        .or_else(|| containers.first())?
        .get("name")?
        .as_str()
        .map(str::to_string)
}

/// Works out the changes for an allowed render.
pub fn plan(
    stream: &Stream,
    facts: &Facts,
    evaluation: &Evaluation,
    guard: &GuardArgs,
) -> Result<Plan, String> {
    let mut plan = Plan::default();
    if evaluation.step != Some(Step::Migrate) {
        return Ok(plan);
    }
    let mut syn2mas_job: Option<(usize, &Resource)> = None;
    let mut after_weight: i64 = i64::MIN;
    for doc in &stream.docs {
        let resource = match &doc.body {
            Body::Resource(r) => r,
            Body::List(items) => {
                if let Some(sts) = items.iter().find(|r| is_synapse_process(r)) {
                    return Err(format!(
                        "{}: the Synapse StatefulSet {} is inside a kind: List, which ess-guard cannot annotate without re-serialising it; render the chart without List wrapping",
                        doc.label(),
                        sts.name()
                    ));
                }
                continue;
            }
            _ => continue,
        };
        if is_synapse_process(resource) {
            let replicas = resource
                .value
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let edits = effective(
                resource,
                vec![
                    Edit::Annotation {
                        key: RESTORE_REPLICAS.into(),
                        value: replicas.to_string(),
                    },
                    Edit::Annotation {
                        key: SCALED_DOWN_BY.into(),
                        value: "syn2mas".into(),
                    },
                ],
            );
            if !edits.is_empty() {
                plan.changes.push(PlannedChange {
                    resource: resource.id.to_string(),
                    description: format!("annotated: restore {replicas} replica(s) after syn2mas"),
                });
                plan.edits.push((doc.index, edits));
            }
        }
        if resource.kind() == "Job" {
            let name_label = resource.label("app.kubernetes.io/name");
            let weight = resource.hook.as_ref().map(|h| h.weight);
            match name_label {
                Some("syn2mas") => syn2mas_job = Some((doc.index, resource)),
                Some("synapse-check-config") | Some("deployment-markers-pre") => {
                    if let Some(w) = weight {
                        after_weight = after_weight.max(w);
                    }
                }
                _ => {}
            }
        }
    }

    if !stream.hooks_visible() {
        plan.findings.push(Finding::new(
            RuleId::Helm3NoHooks,
            "hooks are not visible in this input: only the Synapse StatefulSets were annotated; the chart's own syn2mas hook runs the migration",
        ));
        return Ok(plan);
    }
    if guard.no_harden {
        return Ok(plan);
    }
    match syn2mas_job {
        Some((index, job)) => {
            let current = job.hook.as_ref().map(|h| h.weight).unwrap_or(0);
            let weight = current.max(after_weight.saturating_add(1));
            let mut edits = vec![
                Edit::Annotation {
                    key: "helm.sh/hook".into(),
                    value: "pre-install,pre-upgrade".into(),
                },
                Edit::Annotation {
                    key: "helm.sh/hook-weight".into(),
                    value: weight.to_string(),
                },
                Edit::Field {
                    path: vec!["spec".into(), "backoffLimit".into()],
                    value: Value::from(0),
                },
            ];
            if let Some(container) = migrate_container(job) {
                edits.push(Edit::ContainerEnv {
                    container,
                    name: "SYN2MAS_SCALE_DOWN_MAX_RETRIES".into(),
                    value: guard.scale_down_timeout.to_string(),
                });
            }
            let mut edits = effective(job, edits);
            if !edits.is_empty() {
                edits.push(Edit::Annotation {
                    key: HARDENED.into(),
                    value: "true".into(),
                });
                let edits = effective(job, edits);
                plan.changes.push(PlannedChange {
                    resource: job.id.to_string(),
                    description: format!(
                        "hardened: hook weight {weight} (after check-config and the markers pre-check), backoffLimit 0, SYN2MAS_SCALE_DOWN_MAX_RETRIES={}",
                        guard.scale_down_timeout
                    ),
                });
                plan.findings.push(Finding::new(
                    RuleId::Syn2masHookReordered,
                    format!("syn2mas hook weight {current} → {weight}; scale-down wait bounded to {} s", guard.scale_down_timeout),
                ).at(Some(job.id.to_string()), None));
                plan.edits.push((index, edits));
            }
        }
        None => {
            let weight = after_weight.saturating_add(1).max(0);
            match crate::syn2mas_job::build(stream, facts, weight, guard.scale_down_timeout) {
                Ok(job) => {
                    plan.changes.push(PlannedChange {
                        resource: job.resource.clone(),
                        description: format!("injected: syn2mas pre-upgrade hook Job at weight {weight}"),
                    });
                    plan.added.push(job.text);
                }
                Err(missing) => plan.findings.push(Finding::new(
                    RuleId::Syn2masJobIncomplete,
                    format!("this step-2 render has no syn2mas Job and ess-guard cannot build one: missing {}", missing.join(", ")),
                )),
            }
        }
    }
    Ok(plan)
}

/// The edited text of every document the plan changes, in stream order. Every edit is verified
/// (see [`edit::apply`]).
fn edited_documents<'s>(
    stream: &'s Stream,
    plan: &Plan,
) -> Result<Vec<(&'s crate::manifest::Document, String)>, String> {
    let mut out = Vec::with_capacity(plan.edits.len());
    for doc in &stream.docs {
        let Some((_, doc_edits)) = plan.edits.iter().find(|(i, _)| *i == doc.index) else {
            continue;
        };
        let resource = doc
            .resources()
            .first()
            .ok_or_else(|| format!("{}: nothing to edit", doc.label()))?;
        let edited = edit::apply(stream.body_text(doc), &resource.value, doc_edits)
            .map_err(|e| format!("{}: {e}", doc.label()))?;
        out.push((doc, edited));
    }
    // `plan.edits` is not in document order (the syn2mas Job's edit is planned last, and Helm 4
    // puts that Job before the StatefulSets), hence the lookup by index; an edit that found no
    // document is a bug, never a silent no-op.
    if out.len() != plan.edits.len() {
        return Err(format!(
            "{} planned edit(s) matched no document",
            plan.edits.len() - out.len()
        ));
    }
    Ok(out)
}

/// Writes the output: untouched documents byte for byte, edited ones with their edits, added ones
/// at the end behind their own `---`.
pub fn apply(stream: &Stream, plan: &Plan) -> Result<String, String> {
    let mut out = String::with_capacity(stream.input.len() + 1024 * (plan.added.len() + 1));
    let edited = edited_documents(stream, plan)?;
    let mut edited = edited.iter().peekable();
    for doc in &stream.docs {
        match edited.peek() {
            Some((d, text)) if d.index == doc.index => {
                out.push_str(&stream.input[doc.chunk.separator.clone()]);
                out.push_str(text);
                edited.next();
            }
            _ => out.push_str(stream.raw(doc)),
        }
    }
    for added in &plan.added {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("---\n");
        out.push_str(added);
        if !added.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// A unified diff of what post-render changes, one document at a time. Only changed and added
/// documents appear, so no context line can come from a Secret; ess-guard never edits Secrets,
/// and would not show one if it did.
pub fn explain(stream: &Stream, plan: &Plan, context: usize) -> Result<String, String> {
    let mut out = String::new();
    for (doc, text) in edited_documents(stream, plan)? {
        let name = doc
            .resources()
            .first()
            .map(|r| r.id.to_string())
            .unwrap_or_else(|| doc.label());
        if doc.resources().iter().any(|r| r.kind() == "Secret") {
            out.push_str(&format!("~ {name}: changed (Secret content not shown)\n"));
            continue;
        }
        out.push_str(&crate::diff::unified(
            stream.body_text(doc),
            &text,
            &format!("a/{name}"),
            &format!("b/{name}"),
            context,
        ));
    }
    for added in &plan.added {
        out.push_str(&crate::diff::unified(
            "",
            added,
            "/dev/null",
            "b/(added by ess-guard)",
            context,
        ));
    }
    Ok(out)
}
