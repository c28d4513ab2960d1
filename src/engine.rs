//! The decision: stored state + [`Facts`] → findings and a verdict. Every entry point calls
//! [`evaluate`]; nothing else decides.

use serde::Serialize;

use crate::facts::{Facts, Requested};
use crate::rules::{Finding, RuleId, Severity};
use crate::source::Observed;
use crate::state::{self, MarkerState, Refusal, Step};

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
    pub current: MarkerState,
    pub state_origin: String,
    /// The step the decision was made for (None when no marker applies, or when the reading
    /// stayed ambiguous).
    pub step: Option<Step>,
    /// Where the step came from: `render`, `values`, `--step`.
    pub step_origin: &'static str,
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

/// Decides. `intent` (from `--step` or values) settles an ambiguous render; it must agree with a
/// render that is not ambiguous, otherwise the inputs contradict each other (bad input).
pub fn evaluate(
    observed: &Observed,
    facts: &Facts,
    intent: Option<Intent>,
    fail_on: FailOn,
) -> Result<Evaluation, String> {
    let current = observed.state;
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
        (Requested::Ambiguous(options), None) => options.clone(),
        (Requested::NoMarker, Some((wanted, origin))) => {
            return Err(format!(
                "the render has no Synapse (no marker applies) but {origin} says {}",
                wanted.describe()
            ))
        }
        (Requested::NoMarker, None) => Vec::new(),
    };

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
    findings.extend(general_findings(current, facts));

    let step = match readings.as_slice() {
        [] => None,
        [one] => {
            findings.extend(step_findings(current, *one, facts));
            Some(*one)
        }
        several => {
            let per_reading: Vec<(Step, Vec<Finding>)> = several
                .iter()
                .map(|s| (*s, step_findings(current, *s, facts)))
                .collect();
            let rejects = |fs: &[Finding]| fs.iter().any(|f| fail_on.rejects(f.severity));
            let verdicts: Vec<bool> = per_reading.iter().map(|(_, fs)| rejects(fs)).collect();
            let finalize = per_reading.iter().find(|(s, _)| *s == Step::Finalize);
            let settled_state = matches!(
                current,
                MarkerState::Syn2masMigrated | MarkerState::DelegatedAuth
            );
            if let (true, Some((s, fs))) = (settled_state, finalize) {
                // From syn2mas_migrated or delegated_auth, step 3 is the normal upgrade and the
                // chart's own marker hook stops a leftover step 2: judge the step-3 reading.
                findings.extend(fs.iter().cloned());
                findings.push(unverified(current));
                Some(*s)
            } else if verdicts.iter().all(|v| *v == verdicts[0])
                && several.iter().all(|s| {
                    state::decide(current, *s).is_ok() == state::decide(current, several[0]).is_ok()
                })
            {
                // Every reading gives the same verdict and the marker allows them alike: report
                // what they share, once. When the marker allows one reading and refuses another
                // (legacy_auth: step 2 yes, step 3 no), the step decides the outcome even if
                // both readings also fail a config rule, so that is ambiguous-step below.
                let mut shared: Vec<Finding> = Vec::new();
                for (_, fs) in &per_reading {
                    for f in fs {
                        if !shared
                            .iter()
                            .any(|g| g.rule == f.rule && g.message == f.message)
                        {
                            shared.push(f.clone());
                        }
                    }
                }
                findings.extend(shared);
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
                        per_reading.iter().map(|(s, fs)| format!("{} ({})", s.describe(), outcome(fs))).collect::<Vec<_>>().join(" or "),
                    ),
                ));
                None
            }
        }
    };

    let verdict = verdict_of(&findings, fail_on);
    Ok(Evaluation {
        current,
        state_origin: observed.origin.clone(),
        step,
        step_origin,
        findings,
        verdict,
        fail_on,
    })
}

fn unverified(current: MarkerState) -> Finding {
    Finding::new(
        RuleId::UnverifiedStep,
        format!("stored marker is {current}: read this render as step 3; a leftover step 2 could not be ruled out because hooks are not visible"),
    )
}

/// Findings that hold whatever the step.
fn general_findings(current: MarkerState, facts: &Facts) -> Vec<Finding> {
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
    if facts.synapse_enabled && facts.markers_enabled == Some(false) {
        out.push(Finding::new(
            RuleId::MarkersDisabled,
            "no deployment-markers Job is rendered (deploymentMarkers.enabled=false)",
        ));
    } else if !facts.synapse_enabled && current != MarkerState::Absent {
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

/// Findings for one reading of the requested step: the transition, then the config checks.
fn step_findings(current: MarkerState, step: Step, facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Err(refusal) = state::decide(current, step) {
        let (rule, message) = match refusal {
            Refusal::NoRollback => (
                RuleId::NoRollback,
                format!("stored marker is {current}; {} would set it back to legacy_auth: no rollback to legacy_auth", step.describe()),
            ),
            Refusal::Syn2masRerun => (
                RuleId::Syn2masRerun,
                format!("stored marker is {current}; syn2mas cannot run again once migrated"),
            ),
            Refusal::BlockedUntilSyn2masDisabled => (
                RuleId::Syn2masStillEnabled,
                format!("stored marker is {current}; upgrades are blocked in syn2mas_migrated until syn2mas is disabled"),
            ),
            Refusal::MasWithoutSyn2mas => (
                RuleId::MasRequiresSyn2mas,
                format!("stored marker is {current}; MAS cannot be set up on a Synapse-only stack without going through syn2mas"),
            ),
        };
        out.push(Finding::new(rule, message));
    }
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
    if matches!(step, Step::DryRun | Step::Migrate) {
        if let Some(mas) = &facts.mas_auth {
            if !mas.bcrypt_v1 {
                let partial = if mas.partial {
                    " (some MAS config could not be read)"
                } else {
                    ""
                };
                out.push(Finding::new(
                    RuleId::MissingBcryptScheme,
                    format!("MAS config has no passwords.schemes entry {{version: 1, algorithm: bcrypt}}{partial}"),
                ));
            }
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
        Observed {
            state,
            origin: "test".into(),
            notes: vec![],
        }
    }

    fn facts(requested: Requested) -> Facts {
        let mut f = Facts::new(Origin::Render);
        f.requested = requested;
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
                let e = evaluate(
                    &observed(current),
                    &facts(Requested::Step(step)),
                    None,
                    FailOn::Error,
                )
                .expect("evaluates");
                let allowed = state::decide(current, step).is_ok();
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
        let e = evaluate(
            &observed(MarkerState::Absent),
            &facts(amb.clone()),
            None,
            FailOn::Error,
        )
        .expect("evaluates");
        assert_eq!(e.verdict, Verdict::Allowed);
        let e = evaluate(
            &observed(MarkerState::LegacyAuth),
            &facts(amb.clone()),
            None,
            FailOn::Error,
        )
        .expect("evaluates");
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
            let e = evaluate(&observed(current), &facts(amb.clone()), None, FailOn::Error)
                .expect("evaluates");
            assert_eq!(e.verdict, Verdict::Allowed);
            assert!(rules(&e).contains(&"unverified-step"));
        }
        // From legacy_auth the marker decides between the readings, even when both also fail a
        // config rule: still ambiguous-step.
        let mut no_bcrypt = facts(amb.clone());
        no_bcrypt.mas_auth = Some(MasAuth::default());
        let e = evaluate(
            &observed(MarkerState::LegacyAuth),
            &no_bcrypt,
            None,
            FailOn::Error,
        )
        .expect("evaluates");
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
        let e = evaluate(&observed(MarkerState::LegacyAuth), &f, None, FailOn::Error)
            .expect("evaluates");
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
        let e = evaluate(&observed(MarkerState::LegacyAuth), &f, None, FailOn::Error)
            .expect("evaluates");
        assert_eq!(e.verdict, Verdict::Allowed, "{:?}", rules(&e));
        f.requested = Requested::Step(Step::Finalize);
        let e = evaluate(
            &observed(MarkerState::Syn2masMigrated),
            &f,
            None,
            FailOn::Error,
        )
        .expect("evaluates");
        assert_eq!(rules(&e), vec!["sso-left-in-synapse"]);
        let mut f = facts(Requested::Step(Step::DryRun));
        f.mas_auth = Some(MasAuth::default());
        f.synapse_auth.saml = true;
        let e = evaluate(&observed(MarkerState::LegacyAuth), &f, None, FailOn::Error)
            .expect("evaluates");
        assert_eq!(
            rules(&e),
            vec!["missing-bcrypt-scheme", "unsupported-auth-provider"]
        );
    }

    #[test]
    fn fail_on_warning() {
        let mut f = facts(Requested::Step(Step::Legacy));
        f.markers_enabled = Some(false);
        let e = evaluate(&observed(MarkerState::LegacyAuth), &f, None, FailOn::Error)
            .expect("evaluates");
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
}
