//! The decision: stored state + [`Facts`] → findings and a verdict. Every entry point calls
//! [`evaluate`]; nothing else decides.

use serde::Serialize;

use crate::facts::{Facts, Requested};
use crate::rules::{Finding, RuleId, Severity};
use crate::source::{Observed, ReadFrom};
use crate::state::{
    self, ChartProfile, ChartRule, Current, ManagedBy, MarkerReading, MarkerState, Refusal, Step,
    Transition,
};

/// The outcome for one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Rejected,
}

/// What the engine decided and why.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub current: Current,
    pub state_origin: String,
    /// What a live read read (context, server, namespace, ConfigMap), as data; `null` when the
    /// state did not come from a cluster.
    pub read_from: Option<ReadFrom>,
    /// The step the decision was made for (None when no marker applies, or when the reading
    /// stayed ambiguous).
    pub step: Option<Step>,
    /// Where the step came from: `render`, `values`, `--step`.
    pub step_origin: &'static str,
    /// The readings judged when the input fits several steps (Helm 3: step 2 and step 3).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub readings: Vec<Step>,
    /// Whose marker rules decided: the render's markers Job, or a named chart profile.
    pub chart_rules: String,
    /// This upgrade repeats step 2 on a chart that allows it (stored `syn2mas_migrated`): the
    /// syn2mas Job skips the migration, so nothing scales Synapse down.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repeats_stage2: bool,
    pub findings: Vec<Finding>,
    pub verdict: Verdict,
    /// The `--fail-on` the verdict was computed with, so every report format can tell which
    /// findings reject.
    pub fail_on: FailOn,
}

impl Evaluation {
    /// The marker the chart will write if the upgrade succeeds.
    pub fn target(&self) -> Option<MarkerState> {
        self.step.map(Step::target)
    }

    /// True when `finding` rejects the upgrade under this evaluation's `--fail-on`.
    pub fn rejects(&self, finding: &Finding) -> bool {
        self.fail_on.rejects(finding.severity)
    }

    /// Recomputes the verdict from the findings, after a later step (suppression) changed them.
    /// The ambiguous-step decision is already a finding, so the findings alone decide.
    pub fn recompute(&mut self, fail_on: FailOn) {
        self.fail_on = fail_on;
        self.verdict = verdict_of(&self.findings, fail_on);
    }
}

fn verdict_of(findings: &[Finding], fail_on: FailOn) -> Verdict {
    if findings.iter().any(|f| fail_on.rejects(f.severity)) {
        Verdict::Rejected
    } else {
        Verdict::Allowed
    }
}

/// An intent given by the user, settling what the render alone may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intent {
    pub step: Option<Step>,
    pub origin: &'static str,
}

/// Severity at which findings reject (`--fail-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    #[default]
    Error,
    Warning,
}

impl FailOn {
    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::Error => "error",
            FailOn::Warning => "warning",
        }
    }

    /// True when a finding of `severity` rejects the upgrade.
    pub fn rejects(self, severity: Severity) -> bool {
        match self {
            FailOn::Error => severity >= Severity::Error,
            FailOn::Warning => severity >= Severity::Warning,
        }
    }
}

/// Where the chart's marker rules come from for one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesFrom {
    /// The render's own markers pre-hook Job.
    Render(ChartRule),
    /// A profile: `known` is false when the chart version is not in the table (the strictest
    /// profile is then used and the report says so).
    Profile {
        profile: ChartProfile,
        why: String,
        known: bool,
    },
}

impl RulesFrom {
    /// The rules for `facts`: the render's markers Job when it shows one, else `--chart-profile`,
    /// else the chart version's profile, else the strictest profile.
    pub fn of(facts: &Facts) -> RulesFrom {
        if let Some(rule) = &facts.chart_rule {
            return RulesFrom::Render(rule.clone());
        }
        if let Some(profile) = facts.chart_profile {
            return RulesFrom::Profile {
                profile,
                why: "--chart-profile".into(),
                known: true,
            };
        }
        match &facts.chart_version {
            Some(v) => match ChartProfile::for_version(v) {
                Some(profile) => RulesFrom::Profile {
                    profile,
                    why: format!("chart matrix-stack-{v}"),
                    known: true,
                },
                None => RulesFrom::Profile {
                    profile: ChartProfile::STRICTEST,
                    why: format!("chart matrix-stack-{v} is not in the profile table"),
                    known: false,
                },
            },
            None => RulesFrom::Profile {
                profile: ChartProfile::STRICTEST,
                why: "the input shows no chart version".into(),
                known: false,
            },
        }
    }

    /// The chart's rule for `step`.
    pub fn rule(&self, step: Step) -> ChartRule {
        match self {
            RulesFrom::Render(rule) if rule.new == step.target() => rule.clone(),
            RulesFrom::Render(_) => ChartProfile::STRICTEST.rule(step),
            RulesFrom::Profile { profile, .. } => profile.rule(step),
        }
    }

    /// The profile whose table decides, for `plan`.
    pub fn profile(&self) -> ChartProfile {
        match self {
            RulesFrom::Render(rule)
                if rule.new == MarkerState::Syn2masMigrated
                    && rule.allows(Some(MarkerState::Syn2masMigrated.as_str())) =>
            {
                ChartProfile::RepeatableStage2
            }
            RulesFrom::Render(_) => ChartProfile::STRICTEST,
            RulesFrom::Profile { profile, .. } => *profile,
        }
    }

    /// For reports.
    pub fn describe(&self) -> String {
        match self {
            RulesFrom::Render(rule) => format!(
                "the render's markers Job ({} allowed from: {})",
                rule.new,
                rule.allowed_list()
            ),
            RulesFrom::Profile { profile, why, .. } => {
                format!("profile {profile} ({why}): {}", profile.describe())
            }
        }
    }
}

/// Findings about the stored marker itself, whatever the step: the label the chart's Job checks,
/// and a key the Job cannot handle (`binaryData`). `markers_job_runs`: whether this upgrade runs
/// the chart's markers Job (errors then, warnings otherwise). `markers get` shows these too, so
/// every command classifies one ConfigMap the same way.
pub fn marker_findings(observed: &Observed, markers_job_runs: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(MarkerReading::ConfigMap {
        name, managed_by, ..
    }) = &observed.reading
    else {
        return out;
    };
    let quiet = |f: Finding| {
        if markers_job_runs {
            f
        } else {
            f.severity(Severity::Warning)
        }
    };
    let later = if markers_job_runs {
        ""
    } else {
        " (this upgrade runs no markers Job, so it fails at the next upgrade that does)"
    };
    let label = match managed_by {
        ManagedBy::Chart => None,
        ManagedBy::Missing => Some("<unset>".to_string()),
        ManagedBy::Other(v) => Some(v.clone()),
    };
    if let Some(label) = label {
        out.push(quiet(
            Finding::new(
                RuleId::UnmanagedMarker,
                format!(
                    "ConfigMap {name} has {}={label}; the chart's marker Job will refuse it: \"configmap {name} is not managed by this matrix-tools-deployment-markers\"{later}",
                    state::MANAGED_BY_LABEL
                ),
            )
            .at(Some(format!("ConfigMap {name}")), None),
        ));
    }
    if observed.current == Current::BinaryOnly {
        out.push(quiet(
            Finding::new(
                RuleId::MarkerInBinaryData,
                format!(
                    "ConfigMap {name} holds {} in binaryData only; the chart's post-upgrade Job cannot write data.{} beside it and fails after the upgrade was applied{later}",
                    state::MARKER_KEY,
                    state::MARKER_KEY
                ),
            )
            .at(Some(format!("ConfigMap {name}")), None),
        ));
    }
    out
}

/// What `markers get` reports: the reading's findings, and for a value the chart never writes,
/// the same `unknown-marker-value` finding every other command gives.
pub fn classify(observed: &Observed) -> Vec<Finding> {
    let mut out = marker_findings(observed, true);
    if let Current::Unknown(v) = &observed.current {
        out.push(Finding::new(
            RuleId::UnknownMarkerValue,
            format!(
                "stored {} is {v:?}, not a value the chart writes; no allowed list of a known chart holds it, so the chart's markers Job refuses every upgrade",
                state::MARKER_KEY
            ),
        ));
    }
    out
}

/// Decides. `intent` (from `--step` or values) settles an ambiguous render; it must agree with a
/// render that is not ambiguous, otherwise the inputs contradict each other (bad input).
pub fn evaluate(
    observed: &Observed,
    facts: &Facts,
    intent: Option<Intent>,
    fail_on: FailOn,
) -> Result<Evaluation, String> {
    let current = observed.current.clone();
    let mut step_origin = match facts.origin {
        crate::facts::Origin::Render => "render",
        crate::facts::Origin::Values => "values",
        crate::facts::Origin::StepFlag => "--step",
    };
    let readings: Vec<Step> = match (
        &facts.requested,
        intent.and_then(|i| i.step.map(|s| (s, i.origin))),
    ) {
        (Requested::Step(s), Some((wanted, origin))) if *s != wanted => {
            return Err(format!(
                "the render asks for {} but {origin} says {}; render and intent disagree",
                s.describe(),
                wanted.describe()
            ))
        }
        (Requested::Step(s), _) => vec![*s],
        (Requested::Ambiguous(options), Some((wanted, origin))) => {
            if !options.contains(&wanted) {
                return Err(format!(
                    "the render can only be {} but {origin} says {}",
                    options
                        .iter()
                        .map(|s| s.describe())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    wanted.describe()
                ));
            }
            step_origin = origin;
            vec![wanted]
        }
        (Requested::Ambiguous(options), None) => {
            // A reading is a possibility, not a vote: a step listed twice is still one reading,
            // so "one reading the chart allows" is decided on distinct steps.
            let mut distinct: Vec<Step> = Vec::with_capacity(options.len());
            for s in options {
                if !distinct.contains(s) {
                    distinct.push(*s);
                }
            }
            distinct
        }
        (Requested::NoMarker, Some((wanted, origin))) => {
            return Err(format!(
                "the render has no Synapse (no marker applies) but {origin} says {}",
                wanted.describe()
            ))
        }
        (Requested::NoMarker, None) => Vec::new(),
    };

    let markers_job_runs = facts.synapse_enabled && facts.markers_enabled != Some(false);
    let rules = RulesFrom::of(facts);
    let mut findings: Vec<Finding> = Vec::new();
    // A missing release on the cluster read only matters when the render runs syn2mas (see
    // `wrong_cluster`): a fresh install without it is normal and must not warn.
    let runs_syn2mas = readings
        .iter()
        .any(|s| matches!(s, Step::DryRun | Step::Migrate));
    for note in observed.notes.iter().chain(&facts.notes) {
        if note.rule == RuleId::NoReleaseOnCluster && !runs_syn2mas {
            continue;
        }
        findings.push(
            Finding::new(note.rule, note.message.clone())
                .at(note.resource.clone(), note.source.clone()),
        );
    }
    findings.extend(marker_findings(observed, markers_job_runs));
    findings.extend(general_findings(&current, facts));
    if let RulesFrom::Profile {
        profile,
        why,
        known: false,
    } = &rules
    {
        // Only where the profiles disagree (today: step 2 from syn2mas_migrated) does the
        // choice change the verdict; elsewhere the report's rules line names the profile.
        let matters = current.known().is_some_and(|known| {
            readings.iter().any(|step| {
                ChartProfile::ALL.iter().any(|p| {
                    state::decide(known, *step, *p) != state::decide(known, *step, *profile)
                })
            })
        });
        if matters {
            findings.push(Finding::new(
                RuleId::UnknownChartVersion,
                format!("the chart's marker rules are not in this input and {why}: decided with the strictest profile, {profile}; choose another with --chart-profile"),
            ));
        }
    }
    let immutable = observed
        .reading
        .as_ref()
        .is_some_and(MarkerReading::immutable);
    let judge = |step: Step| {
        let mut reading = judge_reading(
            &current,
            step,
            facts,
            &rules.rule(step),
            matches!(rules, RulesFrom::Render(_)),
            markers_job_runs,
        );
        // The chart's post step writes the target; an immutable ConfigMap refuses any change.
        let target = step.target();
        if immutable && markers_job_runs && current.exact() != Some(target.as_str()) {
            reading.findings.insert(
                0,
                Finding::new(
                    RuleId::ImmutableMarker,
                    format!("the marker ConfigMap is immutable and {} changes {} from {current} to {target}: the chart's post-upgrade Job cannot write it and fails after the upgrade was applied", step.describe(), state::MARKER_KEY),
                ),
            );
        }
        reading
    };

    let mut repeats_stage2 = false;
    let several = readings.len() > 1;
    let step = match readings.as_slice() {
        [] => None,
        [one] => {
            let r = judge(*one);
            findings.extend(r.findings);
            repeats_stage2 = r.repeats_stage2;
            Some(*one)
        }
        several => {
            let per_reading: Vec<Reading> = several.iter().map(|s| judge(*s)).collect();
            combine_readings(&current, &per_reading, fail_on, &mut findings)
        }
    };

    let verdict = verdict_of(&findings, fail_on);
    Ok(Evaluation {
        current,
        state_origin: observed.origin.clone(),
        read_from: observed.read_from.clone(),
        step,
        step_origin,
        readings: if several { readings } else { Vec::new() },
        chart_rules: rules.describe(),
        repeats_stage2,
        findings,
        verdict,
        fail_on,
    })
}

/// One reading of the requested step, judged in full.
struct Reading {
    step: Step,
    findings: Vec<Finding>,
    /// The chart's own markers Job refuses this reading (it cannot get through the cluster).
    chart_refuses: bool,
    repeats_stage2: bool,
}

/// Helm 3 readings (step 2 and step 3 look the same). The decision, by stored marker:
///
/// - `absent`: the chart allows both readings (a fresh install of the chart's defaults is the
///   step-3 reading). The step-3 reading decides and is reported first; the step-2 reading's
///   rejecting findings are reported as warnings that name the reading.
/// - `syn2mas_migrated`/`delegated_auth`: a reading the chart's own markers Job refuses cannot
///   get through the cluster: it is dropped with the warning `unverified-step`. Every reading the
///   chart allows is judged in full (the step-3 reading, the normal upgrade from a settled
///   marker, reported first), and any of them rejecting rejects. When the chart refuses
///   every reading, every reading's findings are reported (rejected).
/// - otherwise (`legacy_auth`, an unreadable marker): when the readings agree, their findings are
///   reported once (step 2's first); when they do not, or the marker allows one and refuses the
///   other, `ambiguous-step`.
fn combine_readings(
    current: &Current,
    readings: &[Reading],
    fail_on: FailOn,
    findings: &mut Vec<Finding>,
) -> Option<Step> {
    let rejects = |fs: &[Finding]| fs.iter().any(|f| fail_on.rejects(f.severity));
    let push_unique = |out: &mut Vec<Finding>, f: Finding| {
        if !out
            .iter()
            .any(|g| g.rule == f.rule && g.message == f.message)
        {
            out.push(f);
        }
    };
    match current {
        Current::Known(MarkerState::Absent) => {
            let mut decided = None;
            for r in readings.iter().filter(|r| r.step == Step::Finalize) {
                for f in &r.findings {
                    push_unique(findings, f.clone());
                }
                decided = Some(r.step);
            }
            for r in readings.iter().filter(|r| r.step != Step::Finalize) {
                for f in &r.findings {
                    let f = if fail_on.rejects(f.severity) {
                        let mut w = f.clone().severity(Severity::Warning);
                        w.message = format!(
                            "if this render is {} (hooks are not visible; nothing stored, so the chart allows both readings): {}",
                            r.step.describe(),
                            f.message
                        );
                        w
                    } else {
                        f.clone()
                    };
                    push_unique(findings, f);
                }
            }
            decided.or_else(|| readings.first().map(|r| r.step))
        }
        Current::Known(MarkerState::Syn2masMigrated | MarkerState::DelegatedAuth) => {
            let mut kept: Vec<&Reading> = readings.iter().filter(|r| !r.chart_refuses).collect();
            // Step 3 is the normal upgrade from a settled marker: its findings come first.
            kept.sort_by_key(|r| r.step != Step::Finalize);
            if kept.is_empty() {
                // The chart refuses every reading: so does ess-guard, with every reason.
                for r in readings {
                    for f in &r.findings {
                        push_unique(findings, f.clone());
                    }
                }
                return None;
            }
            for r in &kept {
                for f in &r.findings {
                    let mut f = f.clone();
                    if kept.len() > 1 {
                        // Each reading judged in full: say which one a finding is about.
                        f.message = format!("as {}: {}", r.step.describe(), f.message);
                    }
                    push_unique(findings, f);
                }
            }
            if kept.len() < readings.len() {
                findings.push(unverified(current, &kept));
            }
            match kept.as_slice() {
                [one] => Some(one.step),
                _ => None,
            }
        }
        _ => {
            let verdicts: Vec<bool> = readings.iter().map(|r| rejects(&r.findings)).collect();
            let transitions: Vec<bool> = readings.iter().map(|r| r.chart_refuses).collect();
            if verdicts.iter().all(|v| *v == verdicts[0])
                && transitions.iter().all(|t| *t == transitions[0])
            {
                // Every reading gives the same verdict and the marker treats them alike: report
                // what they share, once. When the marker allows one reading and refuses another
                // (legacy_auth: step 2 yes, step 3 no), the step decides the outcome even if
                // both readings also fail a config rule, so that is ambiguous-step below.
                for r in readings {
                    for f in &r.findings {
                        push_unique(findings, f.clone());
                    }
                }
                None
            } else {
                let outcome = |fs: &[Finding]| {
                    let ids: Vec<&str> = fs
                        .iter()
                        .filter(|f| fail_on.rejects(f.severity))
                        .map(|f| f.rule.id())
                        .collect();
                    if ids.is_empty() {
                        "allowed".to_string()
                    } else {
                        format!("rejected: {}", ids.join(", "))
                    }
                };
                findings.push(Finding::new(
                    RuleId::AmbiguousStep,
                    format!(
                        "stored marker is {current}: this render is either {}, and hooks are not visible to tell them apart",
                        readings.iter().map(|r| format!("{} ({})", r.step.describe(), outcome(&r.findings))).collect::<Vec<_>>().join(" or "),
                    ),
                ));
                None
            }
        }
    }
}

fn unverified(current: &Current, kept: &[&Reading]) -> Finding {
    let read_as = match kept {
        [one] => format!("read this render as {}", one.step.describe()),
        _ => "judged every reading the chart allows".to_string(),
    };
    Finding::new(
        RuleId::UnverifiedStep,
        format!("stored marker is {current}: {read_as}; a leftover reading the chart's own marker hook refuses could not be ruled out because hooks are not visible"),
    )
}

/// Findings that hold whatever the step.
fn general_findings(current: &Current, facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    if facts.syn2mas_without_synapse {
        out.push(Finding::new(
            RuleId::Syn2masExternalSynapse,
            "syn2mas resources are rendered but the chart's Synapse is disabled: the syn2mas RoleBinding points at a ServiceAccount that is not rendered and no Job runs",
        ));
    }
    if facts.syn2mas_ignored_without_mas {
        out.push(Finding::new(
            RuleId::Syn2masWithoutMas,
            "matrixAuthenticationService.syn2mas.enabled=true is ignored because matrixAuthenticationService.enabled=false",
        ));
    }
    if facts.sso_login_worker && facts.mas_enabled {
        out.push(Finding::new(
            RuleId::SsoLoginWorkerWithMas,
            "synapse.workers.sso-login.enabled=true with MAS enabled",
        ));
    }
    let absent = *current == Current::Known(MarkerState::Absent);
    if facts.synapse_enabled && facts.markers_enabled == Some(false) {
        out.push(Finding::new(
            RuleId::MarkersDisabled,
            "no deployment-markers Job is rendered (deploymentMarkers.enabled=false)",
        ));
    } else if !facts.synapse_enabled
        && facts.mas_enabled
        && *current == Current::Known(MarkerState::LegacyAuth)
    {
        // The chart renders no marker without Synapse, so it cannot stop this: MAS takes over a
        // legacy_auth deployment and the users in Synapse's database never reach MAS.
        out.push(Finding::new(
            RuleId::MasRequiresSyn2mas,
            format!("stored marker is {current}; this render enables MAS with the chart's Synapse disabled, so no syn2mas runs and the users in Synapse's database never reach MAS (the chart renders no marker without Synapse and cannot stop it)"),
        ).fix("Keep synapse.enabled=true and migrate with syn2mas (steps 1-3), or pass --state absent if Synapse's users do not matter"));
    } else if !facts.synapse_enabled && !absent {
        out.push(
            Finding::new(
                RuleId::MarkersDisabled,
                format!("Synapse is disabled, so the chart renders no marker; the stored marker {current} is no longer checked"),
            )
            .fix("Keep synapse.enabled=true for a deployment that went through the migration"),
        );
    }
    out
}

/// Judges one reading of the requested step: the transition (the chart's rule and the
/// invariants), then the config checks.
fn judge_reading(
    current: &Current,
    step: Step,
    facts: &Facts,
    rule: &ChartRule,
    rule_from_render: bool,
    markers_job_runs: bool,
) -> Reading {
    let mut out = Vec::new();
    let mut chart_refuses = false;
    let mut repeats_stage2 = false;
    let chart_message = |cur: &str| {
        format!(
            "the chart's markers Job will refuse it: \"{} marker prevented transitioning to value {} from value {cur} because it is not in the allowed values : {}\"",
            state::MARKER_KEY,
            rule.new,
            rule.allowed_list()
        )
    };
    match current {
        Current::Known(known) => match state::decide_with(*known, step, rule) {
            Transition::Allowed => {}
            Transition::Stage2Repeated => {
                repeats_stage2 = true;
                out.push(Finding::new(
                    RuleId::Stage2Repeated,
                    format!("stored marker is {known}: {} again; this chart allows it (allowed from: {}) and its syn2mas Job skips the migration, so Synapse is not scaled down", step.describe(), rule.allowed_list()),
                ));
            }
            Transition::Refused {
                refusal,
                chart_allows,
            } => {
                chart_refuses = !chart_allows;
                let (rule_id, message) = match refusal {
                    Refusal::NoRollback => (
                        RuleId::NoRollback,
                        format!("stored marker is {known}; {} would set it back to legacy_auth: no rollback to legacy_auth", step.describe()),
                    ),
                    Refusal::Syn2masRerun => (
                        RuleId::Syn2masRerun,
                        format!("stored marker is {known}; syn2mas cannot run again once migrated"),
                    ),
                    Refusal::BlockedUntilSyn2masDisabled => (
                        RuleId::Syn2masStillEnabled,
                        format!("stored marker is {known}; upgrades are blocked in syn2mas_migrated until syn2mas is disabled ({})", chart_message(known.as_str())),
                    ),
                    Refusal::MasWithoutSyn2mas => (
                        RuleId::MasRequiresSyn2mas,
                        format!("stored marker is {known}; MAS cannot be set up on a Synapse-only stack without going through syn2mas"),
                    ),
                    Refusal::ChartRefuses => (
                        RuleId::ChartRefusesTransition,
                        format!("stored marker is {known}; {}", chart_message(known.as_str())),
                    ),
                };
                out.push(Finding::new(rule_id, message));
                if chart_allows && refusal.is_invariant() {
                    out.push(Finding::new(
                        RuleId::StricterThanChart,
                        format!("the chart's rule for {} allows {known} (allowed from: {}); ess-guard refuses it anyway ({rule_id})", step.describe(), rule.allowed_list()),
                    ));
                }
            }
        },
        Current::Unknown(value) => {
            let allowed = rule.allows(Some(value));
            chart_refuses = !allowed;
            let finding = if !markers_job_runs {
                Finding::new(
                    RuleId::UnknownMarkerValue,
                    format!("stored {} is {value:?}, not a value the chart writes; this upgrade runs no markers Job, so the chart does not check it now, but the next upgrade that does will be refused", state::MARKER_KEY),
                )
                .severity(Severity::Warning)
            } else if allowed && rule_from_render {
                Finding::new(
                    RuleId::UnknownMarkerValue,
                    format!("stored {} is {value:?}, which this ess-guard does not know; the render's own rule allows it (allowed from: {}), so ess-guard's invariants could not be checked", state::MARKER_KEY, rule.allowed_list()),
                )
                .severity(Severity::Warning)
            } else {
                Finding::new(
                    RuleId::UnknownMarkerValue,
                    format!(
                        "stored {} is {value:?} (compared exactly, as the chart does); {}",
                        state::MARKER_KEY,
                        chart_message(&format!("{value:?}"))
                    ),
                )
            };
            out.push(finding);
        }
        // The reading's own finding (marker_findings) covers it; the chart's pre step lets
        // any step through.
        Current::BinaryOnly => {}
    }
    out.extend(config_findings(current, step, facts));
    Reading {
        step,
        findings: out,
        chart_refuses,
        repeats_stage2,
    }
}

/// The config checks for one step.
fn config_findings(current: &Current, step: Step, facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let sso = facts.synapse_auth.sso_mechanisms();
    match step {
        Step::Migrate if !sso.is_empty() && facts.check_config_hook != Some(false) => {
            let assumed = if facts.check_config_hook.is_none() {
                " (assumed enabled, the chart's default: hooks are not visible in this input)"
            } else {
                ""
            };
            out.push(Finding::new(
                RuleId::SsoWithCheckConfig,
                format!(
                    "Synapse config has {} and the check-config hook is enabled{assumed}",
                    sso.join(", ")
                ),
            ));
        }
        Step::Finalize if !sso.is_empty() => {
            out.push(Finding::new(
                RuleId::SsoLeftInSynapse,
                format!("Synapse config still has {}", sso.join(", ")),
            ));
        }
        _ => {}
    }
    if let Some(mas) = &facts.mas_auth {
        let partial = if mas.partial {
            " (some MAS config could not be read)"
        } else {
            ""
        };
        let missing = format!(
            "MAS config has no passwords.schemes entry {{version: 1, algorithm: bcrypt}}{partial}"
        );
        match (step, current.known()) {
            _ if mas.bcrypt_v1 => {}
            (Step::DryRun | Step::Migrate, _) => {
                out.push(Finding::new(RuleId::MissingBcryptScheme, missing));
            }
            // Users migrated by syn2mas keep their Synapse bcrypt hashes until they log in
            // again: right after the migration that is everyone.
            (Step::Finalize, Some(MarkerState::Syn2masMigrated)) => {
                out.push(Finding::new(
                    RuleId::MissingBcryptScheme,
                    format!("{missing}; stored marker is syn2mas_migrated: the migrated users' password hashes are bcrypt until they log in again, so none of them could log in with a password"),
                ));
            }
            (Step::Finalize, Some(MarkerState::DelegatedAuth)) => {
                out.push(
                    Finding::new(
                        RuleId::MissingBcryptScheme,
                        format!("{missing}; users migrated by syn2mas who have not logged in since still have bcrypt hashes and could not log in with a password"),
                    )
                    .severity(Severity::Warning),
                );
            }
            _ => {}
        }
    }
    if matches!(step, Step::DryRun | Step::Migrate) {
        if let Some(mas) = &facts.mas_auth {
            for idp in &facts.synapse_auth.oidc_idps {
                if !mas.synapse_idp_ids.contains(idp) {
                    out.push(Finding::new(
                        RuleId::UnmappedOidcProvider,
                        format!("Synapse OIDC provider {idp:?} has no MAS upstream provider with synapse_idp_id: {idp}"),
                    ));
                }
            }
        }
        let unsupported = facts.synapse_auth.unmigratable_mechanisms();
        if !unsupported.is_empty() {
            out.push(Finding::new(
                RuleId::UnsupportedAuthProvider,
                format!(
                    "Synapse config has {}, which syn2mas cannot migrate",
                    unsupported.join(", ")
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{MasAuth, Origin};

    fn observed(state: MarkerState) -> Observed {
        Observed::stated(state, "test")
    }

    fn facts(requested: Requested) -> Facts {
        let mut f = Facts::new(Origin::Render);
        f.requested = requested;
        f.chart_version = Some("26.8.2-dev".into());
        f.mas_auth = Some(MasAuth {
            bcrypt_v1: true,
            ..Default::default()
        });
        f
    }

    fn rules(e: &Evaluation) -> Vec<&'static str> {
        e.findings.iter().map(|f| f.rule.id()).collect()
    }

    #[test]
    fn every_state_and_step() {
        for current in MarkerState::ALL {
            for step in Step::ALL {
                let e = judge(&observed(current), &facts(Requested::Step(step)));
                let allowed = state::decide(current, step, ChartProfile::OneUpgradeStage2).is_ok();
                assert_eq!(
                    e.verdict == Verdict::Allowed,
                    allowed,
                    "{current} → {step}: {:?}",
                    rules(&e)
                );
            }
        }
    }

    #[test]
    fn helm3_ambiguity() {
        let amb = Requested::Ambiguous(vec![Step::Migrate, Step::Finalize]);
        let e = judge(&observed(MarkerState::Absent), &facts(amb.clone()));
        assert_eq!(e.verdict, Verdict::Allowed);
        let e = judge(&observed(MarkerState::LegacyAuth), &facts(amb.clone()));
        assert_eq!(e.verdict, Verdict::Rejected);
        assert_eq!(rules(&e), vec!["ambiguous-step"]);
        let intent = Intent {
            step: Some(Step::Migrate),
            origin: "--step",
        };
        let e = evaluate(
            &observed(MarkerState::LegacyAuth),
            &facts(amb.clone()),
            Some(intent),
            FailOn::Error,
        )
        .expect("evaluates");
        assert_eq!(e.verdict, Verdict::Allowed);
        assert_eq!(e.step, Some(Step::Migrate));
        for current in [MarkerState::Syn2masMigrated, MarkerState::DelegatedAuth] {
            let e = judge(&observed(current), &facts(amb.clone()));
            assert_eq!(e.verdict, Verdict::Allowed);
            assert!(rules(&e).contains(&"unverified-step"));
        }
        // From legacy_auth the marker decides between the readings, even when both also fail a
        // config rule: still ambiguous-step.
        let mut no_bcrypt = facts(amb.clone());
        no_bcrypt.mas_auth = Some(MasAuth::default());
        let e = judge(&observed(MarkerState::LegacyAuth), &no_bcrypt);
        assert_eq!(rules(&e), vec!["ambiguous-step"]);
        let bad = Intent {
            step: Some(Step::Legacy),
            origin: "--step",
        };
        assert!(evaluate(
            &observed(MarkerState::Absent),
            &facts(amb),
            Some(bad),
            FailOn::Error
        )
        .is_err());
    }

    #[test]
    fn config_rules() {
        let mut f = facts(Requested::Step(Step::Migrate));
        f.synapse_auth.oidc_idps = vec!["oidc-keycloak".into()];
        let e = judge(&observed(MarkerState::LegacyAuth), &f);
        assert_eq!(
            rules(&e),
            vec!["sso-with-check-config", "unmapped-oidc-provider"]
        );
        f.check_config_hook = Some(false);
        f.mas_auth = Some(MasAuth {
            bcrypt_v1: true,
            synapse_idp_ids: ["oidc-keycloak".to_string()].into(),
            ..Default::default()
        });
        let e = judge(&observed(MarkerState::LegacyAuth), &f);
        assert_eq!(e.verdict, Verdict::Allowed, "{:?}", rules(&e));
        f.requested = Requested::Step(Step::Finalize);
        let e = judge(&observed(MarkerState::Syn2masMigrated), &f);
        assert_eq!(rules(&e), vec!["sso-left-in-synapse"]);
        let mut f = facts(Requested::Step(Step::DryRun));
        f.mas_auth = Some(MasAuth::default());
        f.synapse_auth.saml = true;
        let e = judge(&observed(MarkerState::LegacyAuth), &f);
        assert_eq!(
            rules(&e),
            vec!["missing-bcrypt-scheme", "unsupported-auth-provider"]
        );
    }

    #[test]
    fn fail_on_warning() {
        let mut f = facts(Requested::Step(Step::Legacy));
        f.markers_enabled = Some(false);
        let e = judge(&observed(MarkerState::LegacyAuth), &f);
        assert_eq!(e.verdict, Verdict::Allowed);
        let e = evaluate(
            &observed(MarkerState::LegacyAuth),
            &f,
            None,
            FailOn::Warning,
        )
        .expect("evaluates");
        assert_eq!(e.verdict, Verdict::Rejected);
    }

    fn read_cm(managed_by: ManagedBy, value: state::StoredValue) -> Observed {
        Observed::read(
            MarkerReading::ConfigMap {
                name: "ess-markers".into(),
                managed_by,
                value,
                immutable: false,
            },
            "test",
        )
    }

    /// The common call: no intent from outside the render, rejecting on errors.
    fn judge(observed: &Observed, facts: &Facts) -> Evaluation {
        evaluate(observed, facts, None, FailOn::Error).expect("evaluates")
    }

    fn ids(e: &Evaluation, severity: Severity) -> Vec<&'static str> {
        e.findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(|f| f.rule.id())
            .collect()
    }

    /// The chart refuses an unlabelled ConfigMap when its markers Job runs: an error. Where no
    /// markers Job runs nothing fails now: a warning.
    #[test]
    fn unmanaged_marker_is_an_error_where_the_markers_job_runs() {
        let observed = read_cm(
            ManagedBy::Other("Helm".into()),
            state::StoredValue::Data("legacy_auth".into()),
        );
        let f = facts(Requested::Step(Step::DryRun));
        let e = judge(&observed, &f);
        assert_eq!(ids(&e, Severity::Error), vec!["unmanaged-marker"]);
        let mut off = facts(Requested::Step(Step::DryRun));
        off.markers_enabled = Some(false);
        let e = judge(&observed, &off);
        assert_eq!(e.verdict, Verdict::Allowed);
        assert!(ids(&e, Severity::Warning).contains(&"unmanaged-marker"));
        // No ConfigMap at all: nothing to label.
        let none = Observed::read(MarkerReading::NoConfigMap, "test");
        let e = judge(&none, &f);
        assert_eq!(e.verdict, Verdict::Allowed, "{:?}", rules(&e));
    }

    /// Exact comparison with the chart's list; binaryData breaks the chart's post step.
    #[test]
    fn unknown_values_and_binary_data_are_refused() {
        for value in ["legacy_auth\n", "", "stage9"] {
            let observed = read_cm(ManagedBy::Chart, state::StoredValue::Data(value.into()));
            for step in Step::ALL {
                let e = judge(&observed, &facts(Requested::Step(step)));
                assert_eq!(rules(&e)[0], "unknown-marker-value", "{value:?} {step}");
                assert_eq!(e.verdict, Verdict::Rejected);
            }
        }
        // A newer chart whose own list holds the value: the chart allows it; a warning.
        let observed = read_cm(ManagedBy::Chart, state::StoredValue::Data("stage9".into()));
        let mut f = facts(Requested::Step(Step::Finalize));
        f.chart_rule = Some(ChartRule {
            new: MarkerState::DelegatedAuth,
            allowed: vec!["delegated_auth".into(), "stage9".into()],
        });
        let e = judge(&observed, &f);
        assert_eq!(e.verdict, Verdict::Allowed);
        assert_eq!(ids(&e, Severity::Warning), vec!["unknown-marker-value"]);
        let observed = read_cm(ManagedBy::Chart, state::StoredValue::BinaryOnly);
        let e = judge(&observed, &facts(Requested::Step(Step::Migrate)));
        assert_eq!(ids(&e, Severity::Error), vec!["marker-in-binary-data"]);
    }

    /// Issue 13: MAS with the chart's Synapse disabled from legacy_auth is mas-requires-syn2mas.
    #[test]
    fn mas_without_synapse_from_legacy_auth() {
        let mut f = facts(Requested::NoMarker);
        f.synapse_enabled = false;
        let e = judge(&observed(MarkerState::LegacyAuth), &f);
        assert_eq!(rules(&e), vec!["mas-requires-syn2mas"]);
        let e = judge(&observed(MarkerState::DelegatedAuth), &f);
        assert_eq!(rules(&e), vec!["markers-disabled"]);
        assert_eq!(e.verdict, Verdict::Allowed);
    }

    /// Issue 13: bcrypt v1 missing at step 3 is an error from syn2mas_migrated, a warning from
    /// delegated_auth, nothing from absent (a fresh MAS has no bcrypt hashes).
    #[test]
    fn bcrypt_at_step3() {
        let mut f = facts(Requested::Step(Step::Finalize));
        f.mas_auth = Some(MasAuth::default());
        let e = judge(&observed(MarkerState::Syn2masMigrated), &f);
        assert_eq!(ids(&e, Severity::Error), vec!["missing-bcrypt-scheme"]);
        let e = judge(&observed(MarkerState::DelegatedAuth), &f);
        assert_eq!(e.verdict, Verdict::Allowed);
        assert_eq!(ids(&e, Severity::Warning), vec!["missing-bcrypt-scheme"]);
        let e = judge(&observed(MarkerState::Absent), &f);
        assert!(e.findings.is_empty(), "{:?}", rules(&e));
    }

    /// The documented order of the Helm 3 readings (`combine_readings`): from absent the step-3
    /// reading decides and comes first, the step-2 reading's errors follow as warnings naming
    /// it; from syn2mas_migrated the step-3 reading is judged in full (bcrypt included) and the
    /// step-2 reading the chart refuses is `unverified-step`; from legacy_auth, agreeing readings
    /// list step 2's findings first.
    #[test]
    fn helm3_readings_order_is_a_decision() {
        assert_eq!(
            crate::facts::HELM3_READINGS,
            [Step::Migrate, Step::Finalize]
        );
        let amb = Requested::Ambiguous(crate::facts::HELM3_READINGS.to_vec());
        let mut f = facts(amb.clone());
        f.mas_auth = Some(MasAuth::default());
        f.synapse_auth.oidc_idps = vec!["oidc-keycloak".into()];
        // The chart defaults (no bcrypt) from absent: allowed, the step-2 reading's errors warn.
        let mut defaults = facts(amb.clone());
        defaults.mas_auth = Some(MasAuth::default());
        let e = judge(&observed(MarkerState::Absent), &defaults);
        assert_eq!(e.verdict, Verdict::Allowed);
        assert_eq!(ids(&e, Severity::Warning), vec!["missing-bcrypt-scheme"]);
        assert!(e.findings[0]
            .message
            .starts_with("if this render is step 2"));
        // With SSO left in Synapse: step 3's error first, then step 2's as warnings.
        let e = judge(&observed(MarkerState::Absent), &f);
        assert_eq!(
            rules(&e),
            vec![
                "sso-left-in-synapse",
                "sso-with-check-config",
                "missing-bcrypt-scheme",
                "unmapped-oidc-provider"
            ]
        );
        assert_eq!(ids(&e, Severity::Error), vec!["sso-left-in-synapse"]);
        // From syn2mas_migrated: step 3 judged in full, step 2 left to the chart's hook.
        let mut no_sso = facts(amb.clone());
        no_sso.mas_auth = Some(MasAuth::default());
        let e = judge(&observed(MarkerState::Syn2masMigrated), &no_sso);
        assert_eq!(rules(&e), vec!["missing-bcrypt-scheme", "unverified-step"]);
        assert_eq!(e.verdict, Verdict::Rejected);
        // ...and on a chart that allows step 2 again, both readings are judged.
        no_sso.chart_profile = Some(ChartProfile::RepeatableStage2);
        let e = judge(&observed(MarkerState::Syn2masMigrated), &no_sso);
        // Step 3, the normal upgrade from a settled marker, is reported first.
        assert_eq!(
            rules(&e),
            vec![
                "missing-bcrypt-scheme",
                "stage2-repeated",
                "missing-bcrypt-scheme"
            ]
        );
        assert!(e.findings[0].message.starts_with("as step 3"));
        assert!(e.findings[2].message.starts_with("as step 2"));
        assert_eq!(e.verdict, Verdict::Rejected);
        assert_eq!(e.step, None);
        assert_eq!(e.readings, crate::facts::HELM3_READINGS.to_vec());
    }

    /// Found by the property test: from a settled marker, when the chart refuses every reading,
    /// dropping them all as "the chart's hook stops it" would allow the upgrade.
    #[test]
    fn every_reading_refused_by_the_chart_is_rejected() {
        let f = facts(Requested::Ambiguous(vec![Step::Legacy, Step::DryRun]));
        let e = judge(&observed(MarkerState::Syn2masMigrated), &f);
        assert_eq!(e.verdict, Verdict::Rejected);
        assert_eq!(ids(&e, Severity::Error), vec!["no-rollback", "no-rollback"]);
    }

    /// Found by the property test in CI: `[step 3, step 0, step 3]` from `syn2mas_migrated` kept
    /// step 3 twice, so it looked like two readings the chart allows and no step was decided.
    /// Readings are distinct steps: this is step 3, decided as such.
    #[test]
    fn a_repeated_reading_counts_once() {
        let f = facts(Requested::Ambiguous(vec![
            Step::Finalize,
            Step::Legacy,
            Step::Finalize,
        ]));
        let e = judge(&observed(MarkerState::Syn2masMigrated), &f);
        assert_eq!(e.step, Some(Step::Finalize));
        assert_eq!(e.readings, vec![Step::Finalize, Step::Legacy]);
    }

    /// An immutable marker ConfigMap: the chart's post step cannot change the value.
    #[test]
    fn immutable_marker_refuses_a_change_only() {
        let observed = Observed::read(
            MarkerReading::ConfigMap {
                name: "ess-markers".into(),
                managed_by: ManagedBy::Chart,
                value: state::StoredValue::Data("legacy_auth".into()),
                immutable: true,
            },
            "test",
        );
        let e = judge(&observed, &facts(Requested::Step(Step::Migrate)));
        assert_eq!(ids(&e, Severity::Error), vec!["immutable-marker"]);
        // Step 1 writes legacy_auth again: no change, the chart's Job succeeds.
        let e = judge(&observed, &facts(Requested::Step(Step::DryRun)));
        assert_eq!(e.verdict, Verdict::Allowed, "{:?}", rules(&e));
    }
}
