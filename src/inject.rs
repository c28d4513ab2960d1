//! The act step of post-render: what ess-guard changes in an allowed step-2 render.
//!
//! Only the migration (step 2, `legacy_auth → syn2mas_migrated`) is changed, and only in two
//! ways:
//! - every Synapse StatefulSet of the release records the replicas to restore and that syn2mas
//!   scales it to 0, so `ess-guard recover` can undo a migration that stopped half-way (the
//!   chart's Job exits before scaling back when its pod wait runs out);
//! - when hooks are visible (Helm 4, `helm template`), the chart's syn2mas hook Job is hardened:
//!   it runs after Synapse's check-config hook and after the markers pre-check (weight 10, one of
//!   the chart's own -10/0/10), and never retries. Its scale-down pod wait keeps matrix-tools'
//!   bound (60 retries) or the user's `syn2mas.extraEnv` value unless `--scale-down-retries`
//!   asks for another; the StatefulSet wait before it has no cap in matrix-tools, and the report
//!   says so. A step-2 render without the Job gets one built in the shape of the chart version
//!   in front of ess-guard (see [`crate::syn2mas_job`]), or is refused with what is unknown.
//!
//! Layering: this module uses [`crate::syn2mas_job`] (what the Job looks like) and never the
//! other way round; it takes plain [`Options`], not command-line types.
//!
//! Helm 3 applies any hook a post-renderer adds as an ordinary resource, at install time, so on
//! Helm 3 input nothing but the annotations is added.

use std::ops::Range;

use serde_json::Value;

use crate::engine::Evaluation;
use crate::facts::Facts;
use crate::manifest::edit::{self, Edit, Edited};
use crate::manifest::{Body, ParseMode, Resource, Stream};
use crate::render::is_synapse_process;
use crate::rules::{Finding, RuleId};
use crate::state::Step;
use crate::syn2mas_job;

pub use crate::syn2mas_job::HARDENED;

/// The annotation prefix ess-guard owns.
pub const ANNOTATION_PREFIX: &str = "ess-guard.element.io";
/// Replicas to restore after the migration (the rendered `spec.replicas`).
pub const RESTORE_REPLICAS: &str = "ess-guard.element.io/restore-replicas";
/// Marks a StatefulSet that the syn2mas Job scales to 0.
pub const SCALED_DOWN_BY: &str = "ess-guard.element.io/scaled-down-by";

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

/// What the post-renderer is asked to do to the syn2mas hook; plain values, so the act step
/// never sees the command line (`cli` turns `GuardArgs` into this).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Leave the chart's syn2mas hook as it is (the annotations are still added).
    pub no_harden: bool,
    /// Set `SYN2MAS_SCALE_DOWN_MAX_RETRIES` to this (unset: matrix-tools' default of 60 stands,
    /// or the value the user set in `syn2mas.extraEnv`).
    pub scale_down_retries: Option<u32>,
}

/// How the migration's scale-down pod wait is bounded, for reports.
fn pod_wait(retries: &str, source: &str) -> String {
    format!("scale-down pod wait: {retries} retries of ~1 s ({source}); the StatefulSet wait before it has no cap in matrix-tools")
}

/// Works out the changes for an allowed render.
pub fn plan(
    stream: &Stream,
    facts: &Facts,
    evaluation: &Evaluation,
    options: &Options,
) -> Result<Plan, String> {
    let mut plan = Plan::default();
    if evaluation.step != Some(Step::Migrate) {
        return Ok(plan);
    }
    let mut syn2mas_job: Option<(usize, &Resource)> = None;
    // The highest weight of the pre-upgrade hooks the migration must follow: Synapse's
    // check-config and the markers pre-check.
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
        // The scale-down annotations, for `ess-guard recover`.
        // A repeated step 2 (a chart with ess-helm #1584, stored syn2mas_migrated): the syn2mas
        // Job skips the migration and never scales Synapse down, so nothing to restore.
        if is_synapse_process(resource) && !evaluation.repeats_stage2 {
            let replicas = resource
                .value
                .get("spec")
                .and_then(|s| s.get("replicas"))
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
            let pre_hook = resource.hook.as_ref().filter(|h| {
                h.phases
                    .iter()
                    .any(|p| p == "pre-upgrade" || p == "pre-install")
            });
            match name_label {
                Some("syn2mas") => syn2mas_job = Some((doc.index, resource)),
                Some("synapse-check-config") | Some("deployment-markers-pre") => {
                    if let Some(h) = pre_hook {
                        after_weight = after_weight.max(h.weight);
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
    if options.no_harden {
        return Ok(plan);
    }
    match syn2mas_job {
        Some((index, job)) => harden(&mut plan, index, job, after_weight, options),
        None => inject_job(&mut plan, stream, facts, after_weight, options),
    }
    Ok(plan)
}

/// Hardens the chart's own syn2mas Job (either shape): pre-upgrade phase, a weight from the
/// chart's set that runs it after check-config and the markers pre-check, `backoffLimit: 0`,
/// and `SYN2MAS_SCALE_DOWN_MAX_RETRIES` only when asked and the user has not set it. Each edit
/// is dropped where the chart already does it, so on a chart that does it all nothing changes.
fn harden(plan: &mut Plan, index: usize, job: &Resource, after_weight: i64, options: &Options) {
    let current = job.hook.as_ref().map(|h| h.weight).unwrap_or(0);
    let weight = if current > after_weight {
        current
    } else {
        syn2mas_job::weight_after(after_weight)
    };
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
    let container = syn2mas_job::migrate_container(job);
    let rendered = container
        .and_then(|c| syn2mas_job::env_value(c, syn2mas_job::SCALE_DOWN_RETRIES_ENV))
        .map(str::to_string);
    let container_name = container
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str);
    let mut notes = Vec::new();
    let wait = match (options.scale_down_retries, &rendered, container_name) {
        // A value in the render comes from the user (`syn2mas.extraEnv`; the chart never sets
        // it) or from an earlier ess-guard pass: it is kept, and a different request is reported.
        (Some(asked), Some(value), _) if *value != asked.to_string() => {
            notes.push(format!(
                "{} is already \"{value}\" in the Job (set through matrixAuthenticationService.syn2mas.extraEnv, or by an earlier ess-guard run) and is kept; --scale-down-retries {asked} was not applied",
                syn2mas_job::SCALE_DOWN_RETRIES_ENV
            ));
            pod_wait(value, "set in the values, kept")
        }
        (_, Some(value), _) => pod_wait(value, "set in the values"),
        (Some(asked), None, Some(name)) => {
            edits.push(Edit::ContainerEnv {
                container: name.to_string(),
                name: syn2mas_job::SCALE_DOWN_RETRIES_ENV.into(),
                value: asked.to_string(),
            });
            pod_wait(&asked.to_string(), "--scale-down-retries")
        }
        _ => pod_wait(
            &syn2mas_job::MATRIX_TOOLS_DEFAULT_RETRIES.to_string(),
            "matrix-tools' default",
        ),
    };
    for note in notes {
        plan.findings.push(
            Finding::new(RuleId::Syn2masUserEnvKept, note).at(Some(job.id.to_string()), None),
        );
    }
    let mut edits = effective(job, edits);
    if edits.is_empty() {
        return;
    }
    edits.push(Edit::Annotation {
        key: HARDENED.into(),
        value: "true".into(),
    });
    let edits = effective(job, edits);
    let order = if weight == current {
        format!("hook weight {weight} (already after check-config and the markers pre-check)")
    } else {
        format!("hook weight {current} → {weight} (after check-config and the markers pre-check)")
    };
    let retries = match job
        .value
        .pointer("/spec/backoffLimit")
        .and_then(Value::as_i64)
    {
        Some(0) => "backoffLimit 0 (as the chart sets it)".to_string(),
        Some(n) => format!("backoffLimit {n} → 0"),
        None => "backoffLimit 0 (Kubernetes' default is 6)".to_string(),
    };
    plan.changes.push(PlannedChange {
        resource: job.id.to_string(),
        description: format!("hardened: {order}, {retries}; {wait}"),
    });
    plan.findings.push(
        Finding::new(RuleId::Syn2masHookReordered, format!("{order}; {wait}"))
            .at(Some(job.id.to_string()), None),
    );
    plan.edits.push((index, edits));
}

/// Builds the syn2mas Job a step-2 render lacks, in the shape of the chart version in front of
/// ess-guard, or records why it cannot (`syn2mas-job-incomplete`, with the list).
fn inject_job(
    plan: &mut Plan,
    stream: &Stream,
    facts: &Facts,
    after_weight: i64,
    options: &Options,
) {
    // At least 0: the built Job mounts the chart's hook ConfigMaps and Secrets and runs as the
    // syn2mas ServiceAccount, which the chart creates at weight -1.
    let weight = syn2mas_job::weight_after(after_weight.max(-1));
    // Building the Job reads images and names from every document, so it needs the whole
    // model: in the fast mode (skeletons, unparsed documents) parse the stream again in full.
    // This path is rare (a step-2 render without the chart's syn2mas Job) and keeps both parse
    // modes building the same Job.
    let full_stream;
    let stream = if stream
        .docs
        .iter()
        .any(|d| d.skeleton.is_some() || matches!(d.body, Body::Opaque { .. }))
    {
        match Stream::parse(
            &stream.name,
            stream.input.as_bytes().to_vec(),
            ParseMode::Full,
        ) {
            Ok(mut full) => {
                full.format = stream.format;
                full_stream = full;
                &full_stream
            }
            Err(_) => stream,
        }
    } else {
        stream
    };
    let built = syn2mas_job::detect_shape(stream).and_then(|shape| {
        syn2mas_job::build(stream, facts, shape, weight, options.scale_down_retries)
            .map(|job| (shape, job))
    });
    match built {
        Ok((shape, job)) => {
            plan.changes.push(PlannedChange {
                resource: job.resource.clone(),
                description: format!(
                    "injected: syn2mas pre-upgrade hook Job at weight {weight}, shape of {}",
                    shape.as_str()
                ),
            });
            plan.added.push(job.text);
        }
        Err(missing) => plan.findings.push(Finding::new(
            RuleId::Syn2masJobIncomplete,
            format!(
                "this step-2 render has no syn2mas Job and ess-guard cannot build one: missing {}",
                missing.join(", ")
            ),
        )),
    }
}

/// The edited text of every document the plan changes, in stream order. Every edit is verified
/// (see [`edit::apply`]).
fn edited_documents<'s>(
    stream: &'s Stream,
    plan: &Plan,
) -> Result<Vec<(&'s crate::manifest::Document, Edited)>, String> {
    // The edits sorted by document index (stable: for a repeated index the first entry wins, as
    // a first-match lookup would) and walked in step with the documents. Measured effect: a
    // lookup through `plan.edits` per document was quadratic — 20 k documents × 8 k edited
    // StatefulSets on the 100 MB benchmark stream — and this is linear (BENCHMARKS.md).
    let mut by_index: Vec<(usize, &Vec<Edit>)> = plan.edits.iter().map(|(i, e)| (*i, e)).collect();
    by_index.sort_by_key(|(i, _)| *i);
    let mut pending = by_index.iter().peekable();
    let mut work = Vec::with_capacity(plan.edits.len());
    for doc in &stream.docs {
        while pending.next_if(|(i, _)| *i < doc.index).is_some() {}
        if let Some((_, doc_edits)) = pending.next_if(|(i, _)| *i == doc.index) {
            work.push((doc, *doc_edits));
        }
    }
    // Documents are edited independently: on large renders, in parallel (same results, same
    // first error; see `manifest::par_map`).
    let out = crate::manifest::par_map(
        work,
        |(doc, _)| doc.chunk.body.len(),
        |_, (doc, doc_edits)| {
            let resource = doc
                .resources()
                .first()
                .ok_or_else(|| format!("{}: nothing to edit", doc.label()))?;
            let text = stream.body_text(doc);
            let edited = match &doc.skeleton {
                Some(metadata) => {
                    edit::apply_skeleton(text, metadata.clone(), &resource.value, doc_edits)
                }
                None => edit::apply(text, &resource.value, doc_edits).map(|edited| Edited {
                    range: 0..text.len(),
                    text: edited,
                }),
            }
            .map_err(|e| format!("{}: {e}", doc.label()))?;
            Ok::<_, String>((doc, edited))
        },
    )?;
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

/// What post-render hands back: the input with the changed bytes of every edited document
/// replaced, and the added documents appended behind their own `---`. It is kept as edits over
/// the input, not as a copy of it, and written straight from the input buffer
/// ([`Rendered::write_to`]).
///
/// Measured effect (100 MB benchmark stream): the output used to be assembled as a second
/// ~100 MB `String` before being written, which made peak RSS ~3.4× the input; writing from the
/// input removes that copy (BENCHMARKS.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Byte ranges of the input and their replacement, in input order, not overlapping.
    replaced: Vec<(Range<usize>, String)>,
    /// Documents to append, without separator.
    added: Vec<String>,
}

impl Rendered {
    /// Calls `f` with every piece of the output, in order.
    fn pieces<E>(&self, input: &str, mut f: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        let mut at = 0;
        let mut last: Option<u8> = None;
        let mut piece = |p: &str, last: &mut Option<u8>| {
            if let Some(&b) = p.as_bytes().last() {
                *last = Some(b);
            }
            f(p)
        };
        for (range, text) in &self.replaced {
            piece(&input[at..range.start], &mut last)?;
            piece(text, &mut last)?;
            at = range.end;
        }
        piece(&input[at..], &mut last)?;
        for added in &self.added {
            if last.is_some_and(|b| b != b'\n') {
                piece("\n", &mut last)?;
            }
            piece("---\n", &mut last)?;
            piece(added, &mut last)?;
            if !added.ends_with('\n') {
                piece("\n", &mut last)?;
            }
        }
        Ok(())
    }

    /// Writes the output for `stream` (the stream the plan was made for).
    pub fn write_to(&self, stream: &Stream, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        self.pieces(&stream.input, |p| w.write_all(p.as_bytes()))
    }

    /// The output as one string.
    pub fn to_string(&self, stream: &Stream) -> String {
        let mut out = String::with_capacity(self.len(stream));
        let _ = self.pieces(&stream.input, |p| {
            out.push_str(p);
            Ok::<(), ()>(())
        });
        out
    }

    /// The output's length in bytes.
    pub fn len(&self, stream: &Stream) -> usize {
        let mut n = 0;
        let _ = self.pieces(&stream.input, |p| {
            n += p.len();
            Ok::<(), ()>(())
        });
        n
    }

    /// True when the output holds nothing but white space (`str::trim` would leave nothing).
    pub fn is_blank(&self, stream: &Stream) -> bool {
        self.pieces(&stream.input, |p| {
            if p.trim().is_empty() {
                Ok(())
            } else {
                Err(())
            }
        })
        .is_ok()
    }
}

/// The output: untouched documents byte for byte, edited ones with their edits, added ones at
/// the end behind their own `---`.
pub fn render(stream: &Stream, plan: &Plan) -> Result<Rendered, String> {
    let replaced = edited_documents(stream, plan)?
        .into_iter()
        .map(|(doc, edited)| {
            let start = doc.chunk.body.start;
            (
                start + edited.range.start..start + edited.range.end,
                edited.text,
            )
        })
        .collect();
    Ok(Rendered {
        replaced,
        added: plan.added.clone(),
    })
}

/// [`render`] as one string.
pub fn apply(stream: &Stream, plan: &Plan) -> Result<String, String> {
    Ok(render(stream, plan)?.to_string(stream))
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
            &text.apply_to(stream.body_text(doc)),
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
