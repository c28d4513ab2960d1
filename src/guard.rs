//! The one data path every render-based command follows: read → model → decide → act → report.
//!
//! `check` and `post-render` differ only in what they do with the result (print a report, or
//! write manifests), so both call [`run`].

use crate::engine::{self, Evaluation, FailOn, Intent, Verdict};
use crate::error::Error;
use crate::facts::Facts;
use crate::inject;
use crate::manifest::{Body, Format, ParseMode, Stream};
use crate::render;
use crate::report::{Change, InputReport};
use crate::request::{ChartRequest, GuardRequest, IntentRequest, StateRequest};
use crate::source::{FixedState, MarkerTarget, Observed, StateFile, StateSource};
use crate::suppress::Suppressions;

/// The result of guarding one render.
pub struct Guarded {
    pub stream: Stream,
    pub facts: Facts,
    pub report: InputReport,
    /// The bytes to hand back to Helm; `None` when rejected.
    pub output: Option<inject::Rendered>,
    /// What post-render changed, for `--explain` / `--show-changes` (empty when rejected).
    pub plan: inject::Plan,
}

impl Guarded {
    /// A rejected render: nothing to hand back to Helm, nothing planned.
    fn rejected(stream: Stream, facts: Facts, report: InputReport) -> Guarded {
        Guarded {
            stream,
            facts,
            report,
            output: None,
            plan: inject::Plan::default(),
        }
    }
}

/// Chooses the state source from the flags. `default_live` is true for the commands that read
/// the cluster when no state is given (post-render, plan).
pub fn state_source(
    args: &StateRequest,
    default_live: bool,
) -> Result<Box<dyn StateSource>, Error> {
    if let Some(state) = args.state {
        return Ok(Box::new(FixedState(state)));
    }
    if let Some(path) = &args.state_file {
        return Ok(Box::new(StateFile(path.clone())));
    }
    if args.live || default_live {
        return Ok(Box::new(crate::live::LiveState::from_args(args)));
    }
    Err(Error::Usage(
        "no marker state given: pass --state <absent|legacy_auth|syn2mas_migrated|delegated_auth>, --state-file <configmap.yaml> or --live".to_string(),
    ))
}

/// The marker to look up, from the flags first and the render second.
pub fn target(args: &StateRequest, facts: &Facts) -> MarkerTarget {
    let release = args.release.clone().or_else(|| facts.release.clone());
    let configmap = match (&args.release, &facts.markers_configmap) {
        (Some(r), _) => Some(format!("{r}-markers")),
        (None, Some(cm)) => Some(cm.clone()),
        (None, None) => release.as_ref().map(|r| format!("{r}-markers")),
    };
    MarkerTarget {
        configmap,
        namespace: args.namespace.clone().or_else(|| facts.namespace.clone()),
        release,
    }
}

/// `--chart-profile` and `--chart-version` over what the input shows.
pub fn apply_chart_args(args: &ChartRequest, facts: &mut Facts) {
    if args.chart_profile.is_some() {
        facts.chart_profile = args.chart_profile;
    }
    if let Some(v) = &args.chart_version {
        facts.chart_version = Some(v.clone());
    }
}

/// The user's intent: `--step`, else the step the value flags describe.
pub fn intent(args: &IntentRequest) -> Result<Option<Intent>, Error> {
    if let Some(step) = args.step {
        return Ok(Some(Intent {
            step: Some(step),
            origin: "--step",
        }));
    }
    if args.values.is_empty() {
        return Ok(None);
    }
    let values = crate::values::user_values(&args.values, None)?;
    let facts = crate::values::facts_from_values(&values, &crate::values::chart_defaults())?;
    Ok(Some(Intent {
        step: match facts.requested {
            crate::facts::Requested::Step(s) => Some(s),
            _ => None,
        },
        origin: "values",
    }))
}

/// Guards one render held in `bytes`, named `name` in messages.
pub fn run(
    name: &str,
    bytes: Vec<u8>,
    source: &dyn StateSource,
    state_args: &StateRequest,
    intent: Option<Intent>,
    guard: &GuardRequest,
    fail_on: FailOn,
) -> Result<Guarded, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::Input(format!(
            "{name}: input is empty; refusing to hand Helm an empty release (Helm 3 would apply it and delete every resource)"
        )));
    }
    // read → model
    let mode = if guard.full_parse {
        ParseMode::Full
    } else {
        ParseMode::Relevant
    };
    let mut stream = Stream::parse(name, bytes, mode)?;
    if stream.docs.iter().all(|d| matches!(d.body, Body::Empty)) {
        // Separators and comments only: to Helm this is the same empty release.
        return Err(Error::Input(format!(
            "{name}: input has {} document(s) but no Kubernetes object; refusing to hand Helm an empty release (Helm 3 would apply it and delete every resource)",
            stream.docs.len()
        )));
    }
    match guard.helm_version {
        Some(3) => stream.format = Format::Helm3,
        Some(4) => stream.format = Format::Helm4,
        _ => {}
    }
    let mut facts =
        render::facts_from_stream(&stream).map_err(|e| Error::Input(format!("{name}: {e}")))?;
    apply_chart_args(&state_args.chart, &mut facts);
    // decide
    let marker_target = target(state_args, &facts);
    let observed: Observed = source.observe(&marker_target)?;
    let mut evaluation: Evaluation = engine::evaluate(&observed, &facts, intent, fail_on)
        .map_err(|e| Error::Input(format!("{name}: {e}")))?;
    // Step 2 stops every matrix-server StatefulSet in the namespace, other releases' too.
    let mut live_suppressed = Vec::new();
    if crate::shared_namespace::may_migrate(evaluation.step, &facts.requested) {
        let (found, suppressed) =
            crate::shared_namespace::check(source.is_live(), state_args, &marker_target)?;
        evaluation.findings.extend(found);
        live_suppressed = suppressed;
    }
    // Point findings at their resources, then let annotations there suppress them; the verdict
    // is recomputed from what is left.
    render::locate(&stream, &mut evaluation.findings);
    let suppressions = Suppressions::from_stream(&stream);
    let mut suppressed = suppressions.apply(&mut evaluation, fail_on);
    suppressed.extend(live_suppressed);
    let mut report = InputReport::new(name, stream.format.as_str(), evaluation);
    report.suppressed = suppressed;
    if report.evaluation.verdict == Verdict::Rejected {
        return Ok(Guarded::rejected(stream, facts, report));
    }
    // act
    let plan = inject::plan(&stream, &facts, &report.evaluation, &guard.into())
        .map_err(|e| Error::Input(format!("{name}: {e}")))?;
    let mut plan_findings = plan.findings.clone();
    render::locate(&stream, &mut plan_findings);
    report
        .suppressed
        .extend(suppressions.filter(&mut plan_findings));
    report.evaluation.findings.extend(plan_findings);
    report.evaluation.recompute(fail_on);
    report.refresh_rules();
    if report.evaluation.verdict == Verdict::Rejected {
        // Acting found what deciding could not (e.g. a syn2mas Job that cannot be built).
        return Ok(Guarded::rejected(stream, facts, report));
    }
    report.changes = plan
        .changes
        .iter()
        .map(|c| Change {
            resource: c.resource.clone(),
            description: c.description.clone(),
        })
        .collect();
    let output =
        inject::render(&stream, &plan).map_err(|e| Error::Output(format!("{name}: {e}")))?;
    Ok(Guarded {
        stream,
        facts,
        report,
        output: Some(output),
        plan,
    })
}
