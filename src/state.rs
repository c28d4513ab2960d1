//! The marker state machine: the one place that decides which migration step may follow which
//! stored marker.
//!
//! The chart stores the migration state in ConfigMap `<release>-markers`, key
//! `MATRIX_STACK_MSC3861`, and checks it in a pre-upgrade hook Job. This module holds the same rules
//! so that every entry point (post-renderer, values preprocessor, `check`, `plan`) can apply them
//! *before* Helm touches the cluster. Nothing else in the crate compares marker values.

use std::fmt;
use std::str::FromStr;

/// The ConfigMap key the chart's deployment-markers Job reads and writes.
pub const MARKER_KEY: &str = "MATRIX_STACK_MSC3861";

/// The label the chart's marker tool sets on the ConfigMap and checks before trusting it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on a marker ConfigMap written by the chart.
pub const MANAGED_BY_VALUE: &str = "matrix-tools-deployment-markers";

/// What the cluster says about the release, as stored in the marker ConfigMap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MarkerState {
    /// No ConfigMap, or no key: a fresh install, or a deployment from before markers existed.
    Absent,
    /// Synapse handles logins (also during the syn2mas dry run).
    LegacyAuth,
    /// syn2mas has run; the next upgrade must disable it.
    Syn2masMigrated,
    /// MAS handles logins.
    DelegatedAuth,
}

impl MarkerState {
    /// Every state, in the order the migration goes through them.
    pub const ALL: [MarkerState; 4] = [
        MarkerState::Absent,
        MarkerState::LegacyAuth,
        MarkerState::Syn2masMigrated,
        MarkerState::DelegatedAuth,
    ];

    /// The value as stored in the ConfigMap (`absent` for [`MarkerState::Absent`]).
    pub fn as_str(self) -> &'static str {
        match self {
            MarkerState::Absent => "absent",
            MarkerState::LegacyAuth => "legacy_auth",
            MarkerState::Syn2masMigrated => "syn2mas_migrated",
            MarkerState::DelegatedAuth => "delegated_auth",
        }
    }

    /// Parses a value read from the marker ConfigMap. `absent` is not a stored value, so it is
    /// refused here: an unknown value must fail closed, never be mistaken for "no marker".
    pub fn from_stored(value: &str) -> Result<MarkerState, UnknownMarker> {
        match value {
            "legacy_auth" => Ok(MarkerState::LegacyAuth),
            "syn2mas_migrated" => Ok(MarkerState::Syn2masMigrated),
            "delegated_auth" => Ok(MarkerState::DelegatedAuth),
            other => Err(UnknownMarker(other.to_string())),
        }
    }
}

impl serde::Serialize for MarkerState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for MarkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MarkerState {
    type Err = UnknownMarker;
    /// Parses a state given by the user (`--state`), where `absent` is allowed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "absent" {
            Ok(MarkerState::Absent)
        } else {
            MarkerState::from_stored(s)
        }
    }
}

/// A marker value ess-guard does not know. Newer charts may add states (ess-helm PR #1584);
/// guessing what they mean would defeat the guard, so callers fail closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {MARKER_KEY} marker value {0:?} (known: legacy_auth, syn2mas_migrated, delegated_auth); this ess-guard may be older than the chart")]
pub struct UnknownMarker(pub String);

/// A migration step as the operator asks for it with one `helm upgrade`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// Synapse only, no MAS.
    Legacy,
    /// Step 1: MAS deployed, syn2mas in dry-run mode. The marker stays `legacy_auth`.
    DryRun,
    /// Step 2: syn2mas migrates for real. The marker becomes `syn2mas_migrated`.
    Migrate,
    /// Step 3 (syn2mas disabled) or MAS from the start. The marker becomes `delegated_auth`.
    Finalize,
}

impl Step {
    /// Every step, in migration order.
    pub const ALL: [Step; 4] = [Step::Legacy, Step::DryRun, Step::Migrate, Step::Finalize];

    /// The marker value the chart writes after this step succeeds.
    pub fn target(self) -> MarkerState {
        match self {
            Step::Legacy | Step::DryRun => MarkerState::LegacyAuth,
            Step::Migrate => MarkerState::Syn2masMigrated,
            Step::Finalize => MarkerState::DelegatedAuth,
        }
    }

    /// The `--step` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Legacy => "legacy",
            Step::DryRun => "dry-run",
            Step::Migrate => "migrate",
            Step::Finalize => "finalize",
        }
    }

    /// A phrase for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Step::Legacy => "Synapse only (legacy auth)",
            Step::DryRun => "step 1: MAS with a syn2mas dry run",
            Step::Migrate => "step 2: syn2mas migration",
            Step::Finalize => "step 3: MAS handles auth, syn2mas disabled",
        }
    }

    /// The step from the four chart switches, exactly as the chart's truth table computes the
    /// marker (`ess-chart.md` §1.3). `None` when Synapse is disabled: the chart then renders no
    /// marker at all, so there is no transition to check.
    pub fn from_switches(synapse: bool, mas: bool, syn2mas: bool, dry_run: bool) -> Option<Step> {
        match (synapse, mas, syn2mas, dry_run) {
            (false, ..) => None,
            (true, false, ..) => Some(Step::Legacy),
            (true, true, true, true) => Some(Step::DryRun),
            (true, true, true, false) => Some(Step::Migrate),
            (true, true, false, _) => Some(Step::Finalize),
        }
    }
}

impl serde::Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Step {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Step::ALL
            .into_iter()
            .find(|step| step.as_str() == s)
            .ok_or_else(|| {
                format!("unknown step {s:?}: expected legacy, dry-run, migrate or finalize")
            })
    }
}

/// Why a step may not follow the stored marker. Each reason is a rule of its own, with the seed's
/// wording, so reports and docs can name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Back to `legacy_auth` (Synapse only, or a dry run) after the migration ran.
    NoRollback,
    /// syn2mas asked for again after the marker reached `delegated_auth`.
    Syn2masRerun,
    /// Step 2 values kept after the migration: the chart blocks every upgrade until syn2mas is off.
    BlockedUntilSyn2masDisabled,
    /// MAS without syn2mas on a Synapse-only stack: users and their passwords would be lost.
    MasWithoutSyn2mas,
}

/// Decides whether `step` may be applied on top of the stored `current` marker.
///
/// This is the chart's transition table (`ess-chart.md` §1.4) and nothing more: config checks live
/// in the rules, so a transition verdict never depends on anything but these two values.
pub fn decide(current: MarkerState, step: Step) -> Result<(), Refusal> {
    use MarkerState::*;
    match (current, step) {
        (Absent, _) => Ok(()),
        (LegacyAuth, Step::Legacy | Step::DryRun | Step::Migrate) => Ok(()),
        (LegacyAuth, Step::Finalize) => Err(Refusal::MasWithoutSyn2mas),
        (Syn2masMigrated | DelegatedAuth, Step::Legacy | Step::DryRun) => Err(Refusal::NoRollback),
        (Syn2masMigrated, Step::Migrate) => Err(Refusal::BlockedUntilSyn2masDisabled),
        (DelegatedAuth, Step::Migrate) => Err(Refusal::Syn2masRerun),
        (Syn2masMigrated | DelegatedAuth, Step::Finalize) => Ok(()),
    }
}

/// The steps that may follow `current`, in migration order (for `plan`).
pub fn allowed_steps(current: MarkerState) -> Vec<Step> {
    Step::ALL
        .into_iter()
        .filter(|step| decide(current, *step).is_ok())
        .collect()
}

/// The step the seed's procedure takes next from `current`, if any.
pub fn next_step(current: MarkerState) -> Option<Step> {
    match current {
        MarkerState::Absent | MarkerState::LegacyAuth => Some(Step::DryRun),
        MarkerState::Syn2masMigrated => Some(Step::Finalize),
        MarkerState::DelegatedAuth => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MarkerState::*;

    /// The whole table, written out from the chart's reference rather than derived from `decide`.
    #[test]
    fn full_transition_table() {
        let table: [(MarkerState, Step, Result<(), Refusal>); 16] = [
            (Absent, Step::Legacy, Ok(())),
            (Absent, Step::DryRun, Ok(())),
            (Absent, Step::Migrate, Ok(())),
            (Absent, Step::Finalize, Ok(())),
            (LegacyAuth, Step::Legacy, Ok(())),
            (LegacyAuth, Step::DryRun, Ok(())),
            (LegacyAuth, Step::Migrate, Ok(())),
            (LegacyAuth, Step::Finalize, Err(Refusal::MasWithoutSyn2mas)),
            (Syn2masMigrated, Step::Legacy, Err(Refusal::NoRollback)),
            (Syn2masMigrated, Step::DryRun, Err(Refusal::NoRollback)),
            (
                Syn2masMigrated,
                Step::Migrate,
                Err(Refusal::BlockedUntilSyn2masDisabled),
            ),
            (Syn2masMigrated, Step::Finalize, Ok(())),
            (DelegatedAuth, Step::Legacy, Err(Refusal::NoRollback)),
            (DelegatedAuth, Step::DryRun, Err(Refusal::NoRollback)),
            (DelegatedAuth, Step::Migrate, Err(Refusal::Syn2masRerun)),
            (DelegatedAuth, Step::Finalize, Ok(())),
        ];
        for (current, step, expected) in table {
            assert_eq!(decide(current, step), expected, "{current} → {step}");
        }
    }

    /// The chart's own allowed-previous lists (the last field of `-markers`) agree with `decide`
    /// for every stored value (absent is always allowed by the chart).
    #[test]
    fn agrees_with_chart_allowed_lists() {
        let chart: [(Step, &[MarkerState]); 4] = [
            (Step::Legacy, &[LegacyAuth]),
            (Step::DryRun, &[LegacyAuth]),
            (Step::Migrate, &[LegacyAuth]),
            (Step::Finalize, &[DelegatedAuth, Syn2masMigrated]),
        ];
        for (step, allowed) in chart {
            for current in [LegacyAuth, Syn2masMigrated, DelegatedAuth] {
                assert_eq!(
                    decide(current, step).is_ok(),
                    allowed.contains(&current),
                    "{current} → {step}"
                );
            }
        }
    }

    #[test]
    fn truth_table_of_switches() {
        assert_eq!(Step::from_switches(false, true, true, false), None);
        assert_eq!(
            Step::from_switches(true, false, true, false),
            Some(Step::Legacy)
        );
        assert_eq!(
            Step::from_switches(true, true, true, true),
            Some(Step::DryRun)
        );
        assert_eq!(
            Step::from_switches(true, true, true, false),
            Some(Step::Migrate)
        );
        assert_eq!(
            Step::from_switches(true, true, false, true),
            Some(Step::Finalize)
        );
        assert_eq!(
            Step::from_switches(true, true, false, false),
            Some(Step::Finalize)
        );
    }

    #[test]
    fn unknown_marker_fails_closed() {
        assert!(MarkerState::from_stored("absent").is_err());
        assert!(MarkerState::from_stored("stage2").is_err());
        assert_eq!("absent".parse::<MarkerState>(), Ok(Absent));
        assert_eq!("delegated_auth".parse::<MarkerState>(), Ok(DelegatedAuth));
    }

    #[test]
    fn plan_helpers() {
        assert_eq!(allowed_steps(Syn2masMigrated), vec![Step::Finalize]);
        assert_eq!(
            allowed_steps(LegacyAuth),
            vec![Step::Legacy, Step::DryRun, Step::Migrate]
        );
        assert_eq!(next_step(LegacyAuth), Some(Step::DryRun));
        assert_eq!(next_step(DelegatedAuth), None);
    }

    #[test]
    fn step_targets() {
        assert_eq!(Step::DryRun.target(), LegacyAuth);
        assert_eq!(Step::Migrate.target(), Syn2masMigrated);
        assert_eq!(Step::Finalize.target(), DelegatedAuth);
        for step in Step::ALL {
            assert_eq!(step.as_str().parse::<Step>(), Ok(step));
        }
    }
}
