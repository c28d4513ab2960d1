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
    /// Step 2 values kept after the migration on a chart that allows stage 2 only once: the
    /// chart blocks every upgrade until syn2mas is off.
    BlockedUntilSyn2masDisabled,
    /// MAS without syn2mas on a Synapse-only stack: users and their passwords would be lost.
    MasWithoutSyn2mas,
    /// The chart's allowed list refuses the stored value where no invariant does (a chart with
    /// rules ess-guard has no name for): the chart's markers Job will fail.
    ChartRefuses,
}

impl Refusal {
    /// True for the invariants that hold in every chart version (ess-guard refuses them even
    /// when a chart's allowed list does not).
    pub fn is_invariant(self) -> bool {
        matches!(
            self,
            Refusal::NoRollback | Refusal::Syn2masRerun | Refusal::MasWithoutSyn2mas
        )
    }
}

/// The chart's own rule for one upgrade: the `-markers` entry for [`MARKER_KEY`] of the markers
/// pre-hook Job, `<configmap>:<key>:<new>:<allowed;…>`. The pre step refuses the upgrade when the
/// key is present and its exact stored string is not in `allowed`; the post step writes `new`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChartRule {
    pub new: MarkerState,
    /// The allowed previous values, exactly as the chart renders them.
    pub allowed: Vec<String>,
}

impl ChartRule {
    /// What the chart's pre step does with `exact`, the string stored under the key (`None`: the
    /// ConfigMap or the key is missing, which the chart always allows). Compared exactly, as
    /// matrix-tools does: no trimming.
    pub fn allows(&self, exact: Option<&str>) -> bool {
        exact.is_none_or(|v| self.allowed.iter().any(|a| a == v))
    }

    /// The allowed list as the chart prints it in its refusal (`a, b`).
    pub fn allowed_list(&self) -> String {
        self.allowed.join(", ")
    }
}

/// How the chart decides, when the input hides the chart's own rules (Helm 3 hides hooks; values
/// have no render): a named profile chosen from the chart version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChartProfile {
    /// matrix-stack ≤ 26.8.x (ess-helm 83c7981): step 2 is allowed only from `legacy_auth`.
    OneUpgradeStage2,
    /// Charts with ess-helm #1584: step 2 is also allowed from `syn2mas_migrated` (the syn2mas
    /// Job then skips the migration).
    RepeatableStage2,
}

/// One row of the chart-version table: which charts get which profile.
#[derive(Debug, Clone, Copy)]
pub struct ProfileRow {
    pub charts: &'static str,
    pub profile: ChartProfile,
}

/// The one table of chart profiles, shown by `plan`, `rules`, `docs/rules.md` and the README.
/// A version it does not know gets [`ChartProfile::STRICTEST`], never the looser reading.
pub const PROFILE_TABLE: [ProfileRow; 2] = [
    ProfileRow {
        charts:
            "matrix-stack <= 26.8.x (incl. 26.8.2-dev), and any version this table does not know",
        profile: ChartProfile::OneUpgradeStage2,
    },
    ProfileRow {
        charts: "matrix-stack 26.8.2-dev-pr1584 (charts with ess-helm #1584)",
        profile: ChartProfile::RepeatableStage2,
    },
];

impl ChartProfile {
    pub const ALL: [ChartProfile; 2] = [
        ChartProfile::OneUpgradeStage2,
        ChartProfile::RepeatableStage2,
    ];
    /// The profile for a chart version nobody told ess-guard about: the stricter one.
    pub const STRICTEST: ChartProfile = ChartProfile::OneUpgradeStage2;

    /// The `--chart-profile` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChartProfile::OneUpgradeStage2 => "one-upgrade-stage2",
            ChartProfile::RepeatableStage2 => "repeatable-stage2",
        }
    }

    /// What the profile means, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            ChartProfile::OneUpgradeStage2 => {
                "step 2 only from legacy_auth; a second step-2 upgrade is refused by the chart"
            }
            ChartProfile::RepeatableStage2 => {
                "step 2 from legacy_auth or syn2mas_migrated; a repeated step 2 skips the migration"
            }
        }
    }

    /// The `-markers` rule the charts of this profile render for `step`.
    pub fn rule(self, step: Step) -> ChartRule {
        let allowed: &[&str] = match (self, step) {
            (_, Step::Legacy | Step::DryRun) => &["legacy_auth"],
            (ChartProfile::OneUpgradeStage2, Step::Migrate) => &["legacy_auth"],
            (ChartProfile::RepeatableStage2, Step::Migrate) => &["legacy_auth", "syn2mas_migrated"],
            (_, Step::Finalize) => &["delegated_auth", "syn2mas_migrated"],
        };
        ChartRule {
            new: step.target(),
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The profile of a chart version (the `helm.sh/chart: matrix-stack-<version>` label), or
    /// `None` when the table does not know it.
    pub fn for_version(version: &str) -> Option<ChartProfile> {
        if version == "26.8.2-dev-pr1584" {
            return Some(ChartProfile::RepeatableStage2);
        }
        // Only plain releases and `-dev` builds of a known line; any other suffix may carry
        // upstream changes the table does not know.
        let (core, suffix) = match version.split_once('-') {
            Some((core, suffix)) => (core, Some(suffix)),
            None => (version, None),
        };
        if suffix.is_some_and(|s| s != "dev") {
            return None;
        }
        let mut parts = core.split('.').map(str::parse::<u32>);
        let (Some(Ok(major)), Some(Ok(minor)), Some(Ok(_patch)), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        ((major, minor) <= (26, 8)).then_some(ChartProfile::OneUpgradeStage2)
    }
}

impl fmt::Display for ChartProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChartProfile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChartProfile::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown chart profile {s:?}: expected one-upgrade-stage2 or repeatable-stage2"
                )
            })
    }
}

/// The outcome of one transition under the chart's rule and the invariants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Allowed,
    /// `syn2mas_migrated` → step 2 again, on a chart whose rule allows it: the syn2mas Job skips
    /// the migration and Synapse is not scaled down.
    Stage2Repeated,
    /// Refused. `chart_allows` is true when only ess-guard's invariants refuse it (the chart's
    /// list would let it through): the stricter reading wins, and the report says so.
    Refused {
        refusal: Refusal,
        chart_allows: bool,
    },
}

/// The invariants that hold in every chart version (ess-chart.md §1.4, ess-helm #1583/#1584):
/// no way back to legacy_auth after the migration; syn2mas never again after delegated_auth;
/// MAS cannot appear on a Synapse-only stack without syn2mas.
fn invariant(current: MarkerState, step: Step) -> Option<Refusal> {
    use MarkerState::*;
    match (current, step) {
        (Syn2masMigrated | DelegatedAuth, Step::Legacy | Step::DryRun) => Some(Refusal::NoRollback),
        (DelegatedAuth, Step::Migrate) => Some(Refusal::Syn2masRerun),
        (LegacyAuth, Step::Finalize) => Some(Refusal::MasWithoutSyn2mas),
        _ => None,
    }
}

/// Decides whether `step` may be applied on top of the stored `current` marker, with the chart's
/// own rule for that step (from the render, or from a profile) and the invariants. The stricter
/// of the two wins. This is the one place that compares known marker values.
pub fn decide_with(current: MarkerState, step: Step, chart: &ChartRule) -> Transition {
    let exact = (current != MarkerState::Absent).then(|| current.as_str());
    let chart_allows = chart.allows(exact);
    if let Some(refusal) = invariant(current, step) {
        return Transition::Refused {
            refusal,
            chart_allows,
        };
    }
    match (chart_allows, current, step) {
        (false, MarkerState::Syn2masMigrated, Step::Migrate) => Transition::Refused {
            refusal: Refusal::BlockedUntilSyn2masDisabled,
            chart_allows,
        },
        (false, ..) => Transition::Refused {
            refusal: Refusal::ChartRefuses,
            chart_allows,
        },
        (true, MarkerState::Syn2masMigrated, Step::Migrate) => Transition::Stage2Repeated,
        (true, ..) => Transition::Allowed,
    }
}

/// [`decide_with`] under a profile, as `Ok` (allowed, repeats included) or the refusal.
pub fn decide(current: MarkerState, step: Step, profile: ChartProfile) -> Result<(), Refusal> {
    match decide_with(current, step, &profile.rule(step)) {
        Transition::Allowed | Transition::Stage2Repeated => Ok(()),
        Transition::Refused { refusal, .. } => Err(refusal),
    }
}

/// The steps that may follow `current` under `profile`, in migration order (for `plan`).
pub fn allowed_steps(current: MarkerState, profile: ChartProfile) -> Vec<Step> {
    Step::ALL
        .into_iter()
        .filter(|step| decide(current, *step, profile).is_ok())
        .collect()
}

/// The next step when the step the release's deployed revision ran is known too (`plan` and
/// `audit` read it from Helm's release record): the marker cannot tell "before step 1" from
/// "after step 1" (both `legacy_auth`), the deployed values can.
pub fn next_step_after(current: MarkerState, deployed: Option<Step>) -> Option<Step> {
    match (next_step(current), current, deployed) {
        (Some(Step::DryRun), MarkerState::LegacyAuth, Some(Step::DryRun)) => Some(Step::Migrate),
        (next, ..) => next,
    }
}

/// The step the seed's procedure takes next from `current`, if any.
pub fn next_step(current: MarkerState) -> Option<Step> {
    match current {
        MarkerState::Absent | MarkerState::LegacyAuth => Some(Step::DryRun),
        MarkerState::Syn2masMigrated => Some(Step::Finalize),
        MarkerState::DelegatedAuth => None,
    }
}

/// The marker ConfigMap's `app.kubernetes.io/managed-by` label, as the chart's Job checks it:
/// missing or different, and the Job refuses the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagedBy {
    Chart,
    Missing,
    Other(String),
}

/// What the ConfigMap holds under [`MARKER_KEY`], exactly as stored (never trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredValue {
    /// In neither `data` nor `binaryData`: the chart allows any step.
    Missing,
    /// `data[MARKER_KEY]`, byte for byte (may be `""`, `"legacy_auth\n"`, or a value only a newer
    /// chart writes).
    Data(String),
    /// Only in `binaryData`. The chart's pre step reads `data` only and lets any step through;
    /// its post step then writes `data[key]`, which the API server refuses (a key may not be in
    /// both), so the upgrade fails after everything was applied.
    BinaryOnly,
}

/// The marker ConfigMap as the chart's markers Job will find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerReading {
    /// No ConfigMap: the chart creates it; any step is allowed.
    NoConfigMap,
    ConfigMap {
        name: String,
        managed_by: ManagedBy,
        value: StoredValue,
        /// `immutable: true`: the chart's post step cannot write a new value.
        immutable: bool,
    },
}

/// The stored marker as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    Known(MarkerState),
    /// A string under the key that is not a value the chart writes (exact).
    Unknown(String),
    /// The key is only in `binaryData`.
    BinaryOnly,
}

impl Current {
    /// The known state, if any.
    pub fn known(&self) -> Option<MarkerState> {
        match self {
            Current::Known(s) => Some(*s),
            _ => None,
        }
    }

    /// The string the chart's pre step compares with its allowed list (`None`: no key in `data`,
    /// which the chart always allows).
    pub fn exact(&self) -> Option<&str> {
        match self {
            Current::Known(MarkerState::Absent) | Current::BinaryOnly => None,
            Current::Known(s) => Some(s.as_str()),
            Current::Unknown(s) => Some(s),
        }
    }
}

impl From<MarkerState> for Current {
    fn from(s: MarkerState) -> Current {
        Current::Known(s)
    }
}

impl fmt::Display for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Current::Known(s) => f.write_str(s.as_str()),
            Current::Unknown(v) => write!(f, "unknown value {v:?}"),
            Current::BinaryOnly => write!(f, "{MARKER_KEY} in binaryData only"),
        }
    }
}

impl serde::Serialize for Current {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl MarkerReading {
    /// The stored marker, classified. Nothing is trimmed: the chart compares exactly.
    pub fn current(&self) -> Current {
        match self {
            MarkerReading::NoConfigMap
            | MarkerReading::ConfigMap {
                value: StoredValue::Missing,
                ..
            } => Current::Known(MarkerState::Absent),
            MarkerReading::ConfigMap {
                value: StoredValue::BinaryOnly,
                ..
            } => Current::BinaryOnly,
            MarkerReading::ConfigMap {
                value: StoredValue::Data(v),
                ..
            } => match MarkerState::from_stored(v) {
                Ok(s) => Current::Known(s),
                Err(_) => Current::Unknown(v.clone()),
            },
        }
    }

    /// True when the ConfigMap is `immutable`.
    pub fn immutable(&self) -> bool {
        matches!(
            self,
            MarkerReading::ConfigMap {
                immutable: true,
                ..
            }
        )
    }

    /// The label, when there is a ConfigMap.
    pub fn managed_by(&self) -> Option<&ManagedBy> {
        match self {
            MarkerReading::NoConfigMap => None,
            MarkerReading::ConfigMap { managed_by, .. } => Some(managed_by),
        }
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
            assert_eq!(
                decide(current, step, ChartProfile::OneUpgradeStage2),
                expected,
                "{current} → {step}"
            );
        }
        // The #1584 profile differs in exactly one cell: step 2 again from syn2mas_migrated.
        for (current, step, expected) in table {
            let got = decide(current, step, ChartProfile::RepeatableStage2);
            if (current, step) == (Syn2masMigrated, Step::Migrate) {
                assert_eq!(got, Ok(()));
                assert_eq!(
                    decide_with(current, step, &ChartProfile::RepeatableStage2.rule(step)),
                    Transition::Stage2Repeated
                );
            } else {
                assert_eq!(got, expected, "{current} → {step}");
            }
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
                    decide(current, step, ChartProfile::OneUpgradeStage2).is_ok(),
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
        let p = ChartProfile::OneUpgradeStage2;
        assert_eq!(allowed_steps(Syn2masMigrated, p), vec![Step::Finalize]);
        assert_eq!(
            allowed_steps(Syn2masMigrated, ChartProfile::RepeatableStage2),
            vec![Step::Migrate, Step::Finalize]
        );
        assert_eq!(
            allowed_steps(LegacyAuth, p),
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

    /// A chart rule looser than the invariants: the invariant wins and says the chart allowed it;
    /// a chart rule stricter than them: the chart's refusal wins.
    #[test]
    fn stricter_of_chart_and_invariants_wins() {
        let loose = ChartRule {
            new: LegacyAuth,
            allowed: vec!["legacy_auth".into(), "delegated_auth".into()],
        };
        assert_eq!(
            decide_with(DelegatedAuth, Step::Legacy, &loose),
            Transition::Refused {
                refusal: Refusal::NoRollback,
                chart_allows: true
            }
        );
        let strict = ChartRule {
            new: DelegatedAuth,
            allowed: vec!["delegated_auth".into()],
        };
        assert_eq!(
            decide_with(Syn2masMigrated, Step::Finalize, &strict),
            Transition::Refused {
                refusal: Refusal::ChartRefuses,
                chart_allows: false
            }
        );
        assert_eq!(
            decide_with(Absent, Step::Finalize, &strict),
            Transition::Allowed
        );
    }

    /// The chart compares the stored string exactly: no trimming, "" is a value.
    #[test]
    fn chart_rule_compares_exactly() {
        let rule = ChartProfile::OneUpgradeStage2.rule(Step::Migrate);
        assert!(rule.allows(None));
        assert!(rule.allows(Some("legacy_auth")));
        assert!(!rule.allows(Some("legacy_auth\n")));
        assert!(!rule.allows(Some(" legacy_auth")));
        assert!(!rule.allows(Some("")));
    }

    #[test]
    fn reading_keeps_the_exact_string() {
        let cm = |value| MarkerReading::ConfigMap {
            name: "ess-markers".into(),
            managed_by: ManagedBy::Chart,
            value,
            immutable: false,
        };
        assert_eq!(MarkerReading::NoConfigMap.current(), Current::Known(Absent));
        assert_eq!(cm(StoredValue::Missing).current(), Current::Known(Absent));
        assert_eq!(cm(StoredValue::BinaryOnly).current(), Current::BinaryOnly);
        assert_eq!(
            cm(StoredValue::Data("legacy_auth\n".into())).current(),
            Current::Unknown("legacy_auth\n".into())
        );
        assert_eq!(
            cm(StoredValue::Data(String::new())).current(),
            Current::Unknown(String::new())
        );
        assert_eq!(
            cm(StoredValue::Data("delegated_auth".into())).current(),
            Current::Known(DelegatedAuth)
        );
        assert_eq!(Current::BinaryOnly.exact(), None);
        assert_eq!(Current::Unknown(String::new()).exact(), Some(""));
    }

    #[test]
    fn profiles_from_versions() {
        use ChartProfile::*;
        assert_eq!(
            ChartProfile::for_version("26.8.2-dev"),
            Some(OneUpgradeStage2)
        );
        assert_eq!(ChartProfile::for_version("26.8.1"), Some(OneUpgradeStage2));
        assert_eq!(ChartProfile::for_version("25.6.0"), Some(OneUpgradeStage2));
        assert_eq!(
            ChartProfile::for_version("26.8.2-dev-pr1584"),
            Some(RepeatableStage2)
        );
        assert_eq!(ChartProfile::for_version("26.9.0"), None);
        assert_eq!(ChartProfile::for_version("26.8.2-rc1"), None);
        assert_eq!(ChartProfile::for_version("garbage"), None);
        assert_eq!(ChartProfile::STRICTEST, OneUpgradeStage2);
        for p in ChartProfile::ALL {
            assert_eq!(p.as_str().parse::<ChartProfile>(), Ok(p));
        }
        // The profiles' lists are the charts' own (ess-renders/README.md, pr1584/README.md).
        assert_eq!(
            RepeatableStage2.rule(Step::Migrate).allowed,
            vec!["legacy_auth", "syn2mas_migrated"]
        );
        assert_eq!(
            OneUpgradeStage2.rule(Step::Finalize).allowed,
            vec!["delegated_auth", "syn2mas_migrated"]
        );
    }
}
