//! `ess-guard plan`: where the deployment is, what may come next, and the exact command for the
//! next step of the migration guide, with the preconditions still missing.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cli::{PlanArgs, ValuesFormat};
use crate::engine::{self, FailOn, Intent, RulesFrom};
use crate::error::Error;
use crate::facts::{Facts, Origin};
use crate::guard;
use crate::rules::Finding;
use crate::source::{MarkerTarget, ReadFrom};
use crate::state::{self, ChartProfile, Current, MarkerState, Step, PROFILE_TABLE};

#[derive(Debug, Serialize)]
struct Plan {
    state: Current,
    state_origin: String,
    /// What a live read read, as data (`null` with --state/--state-file).
    read_from: Option<ReadFrom>,
    /// The chart profile `allowed_next` follows, and why.
    chart_rules: String,
    chart_profiles: Vec<ProfileLine>,
    /// How the state was learnt, when it was not simply read (e.g. `legacy-inferred`: no
    /// marker stored but Synapse runs; `unmanaged-marker`).
    warnings: Vec<PlanWarning>,
    position: &'static str,
    allowed_next: Vec<Step>,
    next_step: Option<Step>,
    command: Option<String>,
    preconditions: Vec<String>,
    missing: Vec<Finding>,
}

#[derive(Debug, Serialize)]
struct ProfileLine {
    profile: ChartProfile,
    charts: &'static str,
    meaning: &'static str,
}

#[derive(Debug, Serialize)]
struct PlanWarning {
    rule: &'static str,
    message: String,
}

/// Where a release with this marker is in the migration (also `audit`'s column).
pub fn position(current: &Current) -> &'static str {
    let state = match current {
        Current::Known(s) => *s,
        Current::Unknown(_) => return "the stored marker is not a value the chart writes: the chart's markers Job refuses every upgrade until it is restored",
        Current::BinaryOnly => return "the marker is in binaryData: the chart's post-upgrade Job fails every upgrade until it is moved to data",
    };
    match state {
        MarkerState::Absent => "no marker stored: a fresh install, or a deployment from before markers (chart < 25.6.0)",
        MarkerState::LegacyAuth => "Synapse handles logins (before the migration, or after the step-1 dry run)",
        MarkerState::Syn2masMigrated => "syn2mas has migrated the users (after step 2): step 3 must disable syn2mas",
        MarkerState::DelegatedAuth => "MAS handles logins: the migration is complete",
    }
}

/// The `helm upgrade` line for a step, with ess-guard as post-renderer.
pub fn command(
    step: Step,
    release: &str,
    namespace: &str,
    chart: &str,
    facts: Option<&Facts>,
) -> String {
    let sets: Vec<&str> = match step {
        Step::Legacy => vec!["matrixAuthenticationService.enabled=false"],
        Step::DryRun => vec![
            "matrixAuthenticationService.enabled=true",
            "matrixAuthenticationService.syn2mas.enabled=true",
            "matrixAuthenticationService.syn2mas.dryRun=true",
        ],
        Step::Migrate => {
            let mut s = vec![
                "matrixAuthenticationService.syn2mas.enabled=true",
                "matrixAuthenticationService.syn2mas.dryRun=false",
            ];
            if facts.is_some_and(|f| !f.synapse_auth.sso_mechanisms().is_empty()) {
                s.push("synapse.checkConfigHook.enabled=false");
            }
            s
        }
        Step::Finalize => vec!["matrixAuthenticationService.syn2mas.enabled=false"],
    };
    let mut line = format!("helm upgrade {release} {chart} --namespace {namespace} --reuse-values");
    for s in sets {
        let _ = write!(line, " \\\n  --set {s}");
    }
    let _ = write!(
        line,
        " \\\n  --post-renderer ess-guard --post-renderer-args=--release={release} --post-renderer-args=--namespace={namespace} --post-renderer-args=--step={}",
        step.as_str()
    );
    line
}

fn preconditions(step: Step) -> Vec<String> {
    match step {
        Step::DryRun => vec![
            "Set matrixAuthenticationService.ingress.host and keep the bcrypt v1 password scheme in matrixAuthenticationService.additional (ess-guard values --fix adds it)".into(),
            "Read the syn2mas Job's log after the upgrade: it lists what the real migration would refuse".into(),
        ],
        Step::Migrate => vec![
            "Back up the Synapse database first: the migration is one-way".into(),
            "Synapse is scaled to 0 during the migration; plan the downtime".into(),
        ],
        Step::Finalize => vec![
            "Remove every SSO/OIDC/SAML/CAS/JWT and password-provider entry from synapse.additional (MAS now handles them)".into(),
        ],
        Step::Legacy => Vec::new(),
    }
}

pub fn run(args: PlanArgs) -> Result<u8, Error> {
    let values = crate::request::ValueSources::from(&args.values);
    let facts = if values.is_empty() {
        None
    } else {
        let user = crate::values::user_values(&values, None)?;
        let mut f = crate::values::facts_from_values(&user, &crate::values::chart_defaults())?;
        f.chart_version = Some(crate::values::CHART_DEFAULTS_VERSION.to_string());
        guard::apply_chart_args(&(&args.state.chart).into(), &mut f);
        Some(f)
    };
    // The profile: --chart-profile, else --chart-version's, else the built-in defaults' chart.
    let mut chart_facts = Facts::new(Origin::Values);
    chart_facts.chart_version = Some(crate::values::CHART_DEFAULTS_VERSION.to_string());
    guard::apply_chart_args(&(&args.state.chart).into(), &mut chart_facts);
    let rules = RulesFrom::of(&chart_facts);
    let profile = rules.profile();
    let source = guard::state_source(&(&args.state).into(), true)?;
    let release = args.state.cluster.release.clone();
    let target = MarkerTarget {
        configmap: release.as_ref().map(|r| format!("{r}-markers")),
        namespace: args.state.cluster.namespace.clone(),
        release: release.clone(),
    };
    let observed = source.observe(&target)?;
    let known = observed.current.known();
    // The deployed revision's step is asked for only where it can change the answer (a stored
    // legacy_auth: before or after step 1).
    let next = known.and_then(|k| {
        let deployed = (k == MarkerState::LegacyAuth)
            .then(|| deployed_step(&args))
            .flatten();
        state::next_step_after(k, deployed)
    });
    let release_name = release.unwrap_or_else(|| "RELEASE".to_string());
    // As the live source resolves it (`-n`, then $HELM_NAMESPACE), for the printed command.
    let namespace = args
        .state
        .cluster
        .namespace
        .clone()
        .or_else(|| {
            std::env::var("HELM_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty())
        })
        .unwrap_or_else(|| "NAMESPACE".to_string());
    let mut missing = Vec::new();
    if let (Some(step), Some(f)) = (next, &facts) {
        // The same engine as every other command, asked about the next step.
        let mut for_next = f.clone();
        for_next.origin = Origin::Values;
        for_next.requested = crate::facts::Requested::Step(step);
        let e = engine::evaluate(
            &observed,
            &for_next,
            Some(Intent {
                step: Some(step),
                origin: "plan",
            }),
            FailOn::Error,
        )
        .map_err(Error::Input)?;
        missing = e.findings;
    }
    // `no-release-on-cluster` speaks of a render that runs syn2mas; plan has none, and its
    // state_origin already names the cluster read.
    let mut warnings: Vec<PlanWarning> = observed
        .notes
        .iter()
        .filter(|n| n.rule != crate::rules::RuleId::NoReleaseOnCluster)
        .map(|n| PlanWarning {
            rule: n.rule.id(),
            message: n.message.clone(),
        })
        .collect();
    // The same classification of the ConfigMap as every other command gives.
    warnings.extend(
        engine::classify(&observed)
            .into_iter()
            .map(|f| PlanWarning {
                rule: f.rule.id(),
                message: f.message,
            }),
    );
    let plan = Plan {
        state: observed.current.clone(),
        state_origin: observed.origin.clone(),
        read_from: observed.read_from.clone(),
        chart_rules: rules.describe(),
        chart_profiles: PROFILE_TABLE
            .iter()
            .map(|row| ProfileLine {
                profile: row.profile,
                charts: row.charts,
                meaning: row.profile.describe(),
            })
            .collect(),
        warnings,
        position: position(&observed.current),
        allowed_next: known
            .map(|k| state::allowed_steps(k, profile))
            .unwrap_or_default(),
        next_step: next,
        command: next.map(|s| {
            command(
                s,
                &release_name,
                &namespace,
                &args.chart.chart,
                facts.as_ref(),
            )
        }),
        preconditions: next.map(preconditions).unwrap_or_default(),
        missing,
    };
    let out = match args.output.format {
        ValuesFormat::Json => {
            serde_json::to_string_pretty(&plan).map_err(|e| Error::Output(e.to_string()))? + "\n"
        }
        ValuesFormat::Yaml => text(&plan),
    };
    crate::output::write_stdout(out.as_bytes())?;
    Ok(0)
}

fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "marker:   {} (from {})", plan.state, plan.state_origin);
    for w in &plan.warnings {
        let _ = writeln!(out, "warning[{}]: {}", w.rule, w.message);
    }
    let _ = writeln!(out, "position: {}", plan.position);
    let allowed: Vec<&str> = plan.allowed_next.iter().map(|s| s.as_str()).collect();
    let _ = writeln!(out, "allowed:  {}", allowed.join(", "));
    let _ = writeln!(out, "rules:    {}", plan.chart_rules);
    match (plan.next_step, &plan.command) {
        (Some(step), Some(cmd)) => {
            let _ = writeln!(out, "next:     {}\n\n{cmd}\n", step.describe());
            for p in &plan.preconditions {
                let _ = writeln!(out, "  - {p}");
            }
        }
        _ => {
            let _ = writeln!(out, "next:     nothing: the migration is complete");
        }
    }
    let _ = writeln!(
        out,
        "\nchart profiles (--chart-profile; a version not listed gets {}):",
        ChartProfile::STRICTEST
    );
    for p in &plan.chart_profiles {
        let _ = writeln!(
            out,
            "  {:<20} {}: {}",
            p.profile.as_str(),
            p.charts,
            p.meaning
        );
    }
    if !plan.missing.is_empty() {
        let _ = writeln!(
            out,
            "\nstill missing for the next step (from the values given):"
        );
        for f in &plan.missing {
            let _ = writeln!(
                out,
                "  {}[{}]: {}\n    fix: {}",
                f.severity, f.rule, f.message, f.remediation
            );
        }
    }
    out
}

/// The step the release's deployed revision was rendered with (step 1 done means the next step
/// is the migration). Only with the live marker and a release name; an unreadable release
/// (e.g. no `list secrets`) gives `None`, which keeps step 1, always safe to repeat.
fn deployed_step(args: &PlanArgs) -> Option<Step> {
    let (Some(release), true) = (
        &args.state.cluster.release,
        args.state.state.is_none() && args.state.state_file.is_none(),
    ) else {
        return None;
    };
    let cluster =
        crate::live::connect(&crate::live::connect_options(&(&args.state).into())).ok()?;
    let deployed = cluster.latest_release(release, true).ok()??;
    match crate::values::facts_from_values(&deployed.config, &crate::values::chart_defaults())
        .ok()?
        .requested
    {
        crate::facts::Requested::Step(step) => Some(step),
        _ => None,
    }
}
