//! The rule catalogue: every finding ess-guard can report, defined once with its stable id,
//! severity, explanation and fix. Reports in every format, `docs/rules.md` and suppressions are
//! all derived from this list.

use std::fmt;

use serde::Serialize;

/// How bad a finding is. Errors reject the upgrade; warnings are reported and let it through
/// (unless `--fail-on warning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rule's static description.
#[derive(Debug, Clone, Copy)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    /// One line: what the rule detects.
    pub summary: &'static str,
    /// Why it matters for the migration.
    pub why: &'static str,
    /// What to do, usually the exact `--set` to change.
    pub fix: &'static str,
    /// A transition rule: it encodes the chart's marker table and cannot be suppressed.
    pub transition: bool,
    /// A short, realistic example of what triggers the rule (for `docs/rules.md`).
    pub example: &'static str,
}

macro_rules! rules {
    ($( $variant:ident => { id: $id:literal, severity: $sev:ident, transition: $tr:literal,
        summary: $summary:literal, why: $why:literal, fix: $fix:literal, example: $example:literal $(,)? } ),* $(,)?) => {
        /// Stable rule identifiers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RuleId { $($variant),* }

        impl RuleId {
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),*];
            pub fn info(self) -> RuleInfo {
                match self {
                    $(RuleId::$variant => RuleInfo {
                        id: $id, severity: Severity::$sev, summary: $summary, why: $why, fix: $fix, transition: $tr, example: $example,
                    }),*
                }
            }
        }
    };
}

rules! {
    NoRollback => { id: "no-rollback", severity: Error, transition: true,
        summary: "The upgrade would take a migrated deployment back to legacy_auth.",
        why: "syn2mas is one-way: once users live in MAS, Synapse-only or dry-run values would cut every session off and the chart's marker Job refuses it anyway, after retries.",
        fix: "Keep MAS enabled with syn2mas disabled: --set matrixAuthenticationService.enabled=true --set matrixAuthenticationService.syn2mas.enabled=false",
        example: "Stored marker delegated_auth, and the upgrade sets matrixAuthenticationService.enabled=false: the render's markers Job asks for legacy_auth." },
    Syn2masRerun => { id: "syn2mas-rerun", severity: Error, transition: true,
        summary: "syn2mas is enabled although the migration already completed (delegated_auth).",
        why: "syn2mas cannot run again once migrated: MAS refuses a non-empty database and the chart's marker Job rejects the transition.",
        fix: "--set matrixAuthenticationService.syn2mas.enabled=false",
        example: "Stored marker delegated_auth, and the values still carry the step-2 flags (matrixAuthenticationService.syn2mas.enabled=true, dryRun=false)." },
    Syn2masStillEnabled => { id: "syn2mas-still-enabled", severity: Error, transition: true,
        summary: "The deployment is syn2mas_migrated and syn2mas is still enabled.",
        why: "Upgrades are blocked in syn2mas_migrated until syn2mas is disabled (step 3 of the migration).",
        fix: "Run step 3: --set matrixAuthenticationService.syn2mas.enabled=false",
        example: "Stored marker syn2mas_migrated after step 2, and the next upgrade reuses the step-2 values unchanged." },
    MasRequiresSyn2mas => { id: "mas-requires-syn2mas", severity: Error, transition: true,
        summary: "MAS would take over logins on a legacy_auth deployment without running syn2mas.",
        why: "MAS cannot be set up on a Synapse-only stack without going through syn2mas: existing users, passwords and SSO links would not exist in MAS.",
        fix: "Start with step 1: --set matrixAuthenticationService.enabled=true --set matrixAuthenticationService.syn2mas.enabled=true --set matrixAuthenticationService.syn2mas.dryRun=true",
        example: "Stored marker legacy_auth, and the upgrade enables MAS directly (matrixAuthenticationService.enabled=true) without syn2mas." },
    AmbiguousStep => { id: "ambiguous-step", severity: Error, transition: true,
        summary: "The input cannot tell step 2 (migrate) from step 3 (finalize), and the stored marker makes the difference irreversible.",
        why: "Helm 3 hides hooks from post-renderers, and without hooks the chart's step 2 and step 3 renders are identical; from legacy_auth one is the irreversible migration and the other is forbidden.",
        fix: "Tell ess-guard the intent: --post-renderer-args=--step=migrate (or finalize), or pass the same -f/--set values through --post-renderer-args, or use Helm 4",
        example: "Helm 3 `helm upgrade --post-renderer ess-guard` with MAS on and no syn2mas Job visible, while the stored marker is legacy_auth." },
    UnverifiedStep => { id: "unverified-step", severity: Warning, transition: false,
        summary: "The input does not show whether syn2mas is still enabled; it was read as step 3.",
        why: "From syn2mas_migrated or delegated_auth step 3 is the normal upgrade, and a leftover step 2 is also stopped by the chart's own marker hook, but ess-guard could not check it.",
        fix: "Pass the values (--post-renderer-args=-f=values.yaml) or --step=finalize, or use Helm 4, to verify",
        example: "Helm 3 upgrade of a syn2mas_migrated deployment with MAS on: the render alone cannot show whether syn2mas is still enabled." },
    Syn2masExternalSynapse => { id: "syn2mas-external-synapse", severity: Error, transition: false,
        summary: "syn2mas is enabled while synapse.enabled=false.",
        why: "The chart then renders the syn2mas Role and RoleBinding for a ServiceAccount that does not exist and no syn2mas Job: nothing is migrated.",
        fix: "syn2mas needs the chart's Synapse: --set synapse.enabled=true, or --set matrixAuthenticationService.syn2mas.enabled=false",
        example: "synapse.enabled=false (Synapse runs outside the chart) with matrixAuthenticationService.syn2mas.enabled=true: only the syn2mas Role and RoleBinding are rendered." },
    Syn2masWithoutMas => { id: "syn2mas-without-mas", severity: Warning, transition: false,
        summary: "syn2mas is enabled while MAS is disabled; the chart silently ignores it.",
        why: "The render stays Synapse-only (legacy_auth); an operator who believes the migration ran would be wrong.",
        fix: "--set matrixAuthenticationService.enabled=true to migrate, or --set matrixAuthenticationService.syn2mas.enabled=false",
        example: "-f values.yaml with matrixAuthenticationService.syn2mas.enabled=true but matrixAuthenticationService.enabled=false." },
    MarkersDisabled => { id: "markers-disabled", severity: Warning, transition: false,
        summary: "No deployment-markers Job is rendered: the cluster will not protect this migration.",
        why: "With deploymentMarkers.enabled=false (or Synapse disabled) the chart writes no marker, so a wrong step later is not caught in the cluster.",
        fix: "--set deploymentMarkers.enabled=true",
        example: "--set deploymentMarkers.enabled=false on a Synapse deployment that is part-way through the migration." },
    SsoWithCheckConfig => { id: "sso-with-check-config", severity: Error, transition: false,
        summary: "Step 2 with SSO or password providers in Synapse's config while the Synapse check-config hook is enabled.",
        why: "The chart runs the irreversible syn2mas Job before Synapse's config check; that check then fails (\"SSO cannot be enabled when OAuth delegation is enabled\") and the upgrade fails after the migration.",
        fix: "--set synapse.checkConfigHook.enabled=false for step 2 (as the migration guide says), and remove the SSO config from synapse.additional at step 3",
        example: "Step 2 (syn2mas.dryRun=false) with an oidc_providers entry in synapse.additional and synapse.checkConfigHook.enabled left at its default (true)." },
    SsoLeftInSynapse => { id: "sso-left-in-synapse", severity: Error, transition: false,
        summary: "MAS handles auth but Synapse's config still has SSO or password providers.",
        why: "Synapse refuses to start with OIDC/SAML/CAS/JWT or password providers when auth is delegated to MAS.",
        fix: "Remove the SSO/password-provider entries from synapse.additional (configure them as MAS upstream providers instead)",
        example: "Step 3 (syn2mas disabled, MAS on) while synapse.additional still holds the Keycloak oidc_providers entry used before the migration." },
    MissingBcryptScheme => { id: "missing-bcrypt-scheme", severity: Error, transition: false,
        summary: "MAS has no version-1 bcrypt password scheme for syn2mas.",
        why: "syn2mas imports Synapse's bcrypt hashes as password scheme version 1; its check fails without it and users could not log in with their passwords.",
        fix: "Add to matrixAuthenticationService.additional a config with passwords.schemes: [{version: 1, algorithm: bcrypt}, {version: 2, algorithm: argon2id}]",
        example: "Step 1 with matrixAuthenticationService.additional setting passwords.schemes: [{version: 1, algorithm: argon2id}] only." },
    UnsupportedAuthProvider => { id: "unsupported-auth-provider", severity: Error, transition: false,
        summary: "Synapse uses SAML, CAS, JWT or password providers, which syn2mas cannot migrate.",
        why: "Migrating with SAML IdPs is not supported; syn2mas's own check refuses CAS, JWT and custom password providers, so the Job fails at run time.",
        fix: "Move these users to an OIDC provider (or an intermediary such as Dex) before migrating, and remove the entries from synapse.additional",
        example: "Step 1 while synapse.additional configures saml2_config (or an ldap_auth_provider module)." },
    UnmappedOidcProvider => { id: "unmapped-oidc-provider", severity: Error, transition: false,
        summary: "A Synapse OIDC provider has no MAS upstream provider with the matching synapse_idp_id.",
        why: "Users linked to that provider would not be migrated; syn2mas's check refuses it.",
        fix: "Add a MAS upstream_oauth2.providers entry with synapse_idp_id: oidc-<idp_id> to matrixAuthenticationService.additional",
        example: "Synapse has oidc_providers: [{idp_id: keycloak}] but no MAS upstream_oauth2 provider has synapse_idp_id: oidc-keycloak." },
    SsoLoginWorkerWithMas => { id: "sso-login-worker-with-mas", severity: Error, transition: false,
        summary: "synapse.workers.sso-login is enabled together with MAS.",
        why: "The chart refuses to render it (since 26.5.0); MAS handles SSO.",
        fix: "--set synapse.workers.sso-login.enabled=false",
        example: "--set synapse.workers.sso-login.enabled=true together with matrixAuthenticationService.enabled=true." },
    DuplicateKey => { id: "duplicate-key", severity: Warning, transition: false,
        summary: "A document has a duplicate mapping key; the last value wins.",
        why: "Kubernetes keeps the last value and drops the first silently (the chart renders one when syn2mas.annotations is set); Helm 4 reads the first for its own bookkeeping.",
        fix: "Unset the value that produces the duplicate (for the syn2mas Job: matrixAuthenticationService.syn2mas.annotations)",
        example: "matrixAuthenticationService.syn2mas.annotations set: the chart renders the syn2mas Job with two `annotations:` keys." },
    UnmanagedMarker => { id: "unmanaged-marker", severity: Error, transition: true,
        summary: "The marker ConfigMap lacks app.kubernetes.io/managed-by=matrix-tools-deployment-markers (a warning when this upgrade runs no markers Job).",
        why: "The chart's marker Job refuses such a ConfigMap (\"configmap <ns>/<name> is not managed by this matrix-tools-deployment-markers\"): the pre-upgrade hook fails after its retries, with lower-weight hooks already run. Where no markers Job runs (Synapse or deploymentMarkers disabled) nothing fails now, but the next upgrade with markers will.",
        fix: "Check the ConfigMap is the chart's; relabel it with kubectl label cm <release>-markers app.kubernetes.io/managed-by=matrix-tools-deployment-markers --overwrite",
        example: "The <release>-markers ConfigMap was recreated by hand (kubectl create configmap) and lost its managed-by label." },
    UnknownMarkerValue => { id: "unknown-marker-value", severity: Error, transition: true,
        summary: "The stored marker is a string the chart's allowed list for this step does not hold (compared exactly: \"legacy_auth\\n\", \"\" and unknown values included).",
        why: "The chart's markers pre-hook compares the stored string exactly with its allowed list and fails the upgrade when it is not there. Where the chart's rules are hidden (Helm 3, values) the profile's lists are the chart's, so an unknown value fails closed. A warning only when the render's own list allows the value (a newer chart: ess-guard's invariants cannot judge it) or no markers Job runs.",
        fix: "Restore the value the chart wrote, e.g. kubectl patch cm <release>-markers --type merge -p '{\"data\":{\"MATRIX_STACK_MSC3861\":\"legacy_auth\"}}' (check which state the release is really in first: ess-guard plan)",
        example: "The marker was edited by hand and now holds \"legacy_auth\\n\" (a trailing newline from kubectl create configmap --from-file)." },
    MarkerInBinaryData => { id: "marker-in-binary-data", severity: Error, transition: true,
        summary: "MATRIX_STACK_MSC3861 is stored in the ConfigMap's binaryData (a warning when this upgrade runs no markers Job).",
        why: "The chart's pre step reads data only and lets any step through; its post step then writes data.MATRIX_STACK_MSC3861, which the API server refuses (a key may not be in data and binaryData), so the upgrade fails after everything, syn2mas included, was applied.",
        fix: "Move the value to data: kubectl edit cm <release>-markers (delete binaryData.MATRIX_STACK_MSC3861, set data.MATRIX_STACK_MSC3861 to the state the release is in)",
        example: "The marker ConfigMap was restored from a backup tool that writes every key as binaryData." },
    ImmutableMarker => { id: "immutable-marker", severity: Error, transition: true,
        summary: "The marker ConfigMap is immutable and this upgrade changes the marker.",
        why: "The chart's post-upgrade markers Job writes the new value; the API server refuses any change to an immutable ConfigMap's data, so the Job fails after the upgrade, syn2mas included, was applied, and the marker keeps the old value.",
        fix: "Recreate the ConfigMap without immutable: true (same name, labels and value): kubectl get cm <release>-markers -o yaml > m.yaml, remove immutable, kubectl replace --force -f m.yaml",
        example: "The <release>-markers ConfigMap was marked immutable: true by a policy tool, and the next upgrade is step 2 (legacy_auth -> syn2mas_migrated)." },
    ChartRefusesTransition => { id: "chart-refuses-transition", severity: Error, transition: true,
        summary: "The chart's own allowed list (its markers Job) refuses the stored marker for this step, where no ess-guard invariant does.",
        why: "The chart's markers pre-hook would fail the upgrade in the cluster, after its retries; ess-guard stops it first, with the chart's own message.",
        fix: "Use the step the chart allows from the stored marker (ess-guard plan shows it), or a chart version whose rules allow this one",
        example: "A chart whose step-3 entry is …:delegated_auth:delegated_auth, upgraded from syn2mas_migrated." },
    StricterThanChart => { id: "stricter-than-chart", severity: Note, transition: false,
        summary: "The chart's allowed list lets this transition through, but an invariant that holds in every chart version refuses it; the stricter reading wins.",
        why: "No way back to legacy_auth after the migration, no syn2mas after delegated_auth, no MAS on a Synapse-only stack without syn2mas: a chart list that allows one of these would lose users.",
        fix: "Nothing to change in ess-guard; fix the transition as the other finding says",
        example: "A chart whose step-1 entry allows delegated_auth, upgraded from delegated_auth." },
    Stage2Repeated => { id: "stage2-repeated", severity: Note, transition: false,
        summary: "Step 2 again on a syn2mas_migrated deployment, on a chart that allows it (ess-helm #1584): the syn2mas Job skips the migration.",
        why: "Charts with #1584 let an operator stay in stage 2 over several upgrades; matrix-tools sees the marker and does not migrate again, so ess-guard adds no scale-down annotations.",
        fix: "Nothing to do; disable syn2mas (step 3) when you are ready",
        example: "Stored marker syn2mas_migrated, chart 26.8.2-dev-pr1584, and the step-2 values reused for a config change." },
    UnknownChartVersion => { id: "unknown-chart-version", severity: Warning, transition: false,
        summary: "The chart's marker rules are hidden and its version is not in the profile table: the strictest profile decides.",
        why: "Helm 3 hides the markers Job and values have no render, so ess-guard uses the rules of the chart version; for a version it does not know it never takes the looser reading.",
        fix: "Pass --chart-profile one-upgrade-stage2|repeatable-stage2 (see `ess-guard rules`), or --chart-version, or use Helm 4 so the chart's own rules are read",
        example: "Helm 3 upgrade to matrix-stack 26.10.0, which this ess-guard does not know." },
    LegacyInferred => { id: "legacy-inferred", severity: Warning, transition: false,
        summary: "No marker is stored, but the release already runs Synapse without MAS: treated as legacy_auth.",
        why: "The chart treats a missing marker as \"allow anything\", which would let a Synapse-only stack jump to MAS without syn2mas.",
        fix: "Follow the migration from step 1; if this really is a fresh install, pass --state absent",
        example: "A Synapse-only release installed before the chart had deployment markers: the cluster has no <release>-markers ConfigMap yet." },
    MarkerEvidenceUnchecked => { id: "marker-evidence-unchecked", severity: Warning, transition: false,
        summary: "No marker is stored and ess-guard could not check whether the release already runs Synapse.",
        why: "A missing marker lets any step through in the chart; ess-guard looks for a running Synapse to treat the release as legacy_auth, but lacked the permission or the answer.",
        fix: "Grant get on statefulsets and list on secrets in the release namespace, or pass --state explicitly",
        example: "post-render with a CI ServiceAccount that may read ConfigMaps but not StatefulSets, on a release without a <release>-markers ConfigMap." },
    Syn2masJobIncomplete => { id: "syn2mas-job-incomplete", severity: Error, transition: false,
        summary: "A step-2 render has no syn2mas Job and lacks what ess-guard needs to build one.",
        why: "Without the Job the marker would say syn2mas_migrated while nothing was migrated; a half-formed Job could fail after scaling Synapse down.",
        fix: "Render the chart with matrixAuthenticationService.syn2mas.enabled=true and synapse.enabled=true, and without filters that drop its hook resources",
        example: "Helm 4 step-2 upgrade through a kustomize filter that drops the chart's syn2mas ServiceAccount and Job." },
    Syn2masHookReordered => { id: "syn2mas-hook-reordered", severity: Note, transition: false,
        summary: "ess-guard moved the syn2mas hook after Synapse's check-config hook (hook weight 10, within the chart's -10/0/10) and made sure it never retries.",
        why: "The chart runs the irreversible migration before checking Synapse's new config (both at weight 0, and ess-syn2mas sorts first); ess-guard runs the check first. The report states how the scale-down wait is bounded: the pod wait by SYN2MAS_SCALE_DOWN_MAX_RETRIES (matrix-tools' default 60, or --scale-down-retries), the StatefulSet wait not at all.",
        fix: "Nothing to do; pass --no-harden to keep the chart's order",
        example: "Helm 4 step-2 upgrade: the chart's syn2mas Job moves from weight 0 to 10, after ess-synapse-check-config (0) and the markers pre-check (-10)." },
    Syn2masUserEnvKept => { id: "syn2mas-user-env-kept", severity: Note, transition: false,
        summary: "The syn2mas Job already sets SYN2MAS_SCALE_DOWN_MAX_RETRIES (from syn2mas.extraEnv); ess-guard keeps that value instead of the one it was asked to set.",
        why: "ess-guard never silently overwrites a value the user chose in the chart values; the report says which value the migration will run with.",
        fix: "Change matrixAuthenticationService.syn2mas.extraEnv, or drop --scale-down-retries",
        example: "Helm 4 step-2 upgrade with syn2mas.extraEnv SYN2MAS_SCALE_DOWN_MAX_RETRIES=120 and --scale-down-retries 300: the Job keeps 120." },
    SuppressionWithoutReason => { id: "suppression-without-reason", severity: Warning, transition: false,
        summary: "A suppression annotation gives no reason; it is ignored.",
        why: "A suppression hides a finding from every report and from the exit code; without a reason nobody can later tell whether it still holds.",
        fix: "Give the reason as the annotation value: ess-guard.element.io/skip-<rule-id>: \"<why this finding does not apply>\"",
        example: "metadata.annotations: {ess-guard.element.io/skip-markers-disabled: \"\"} on the Synapse StatefulSet." },
    UnsuppressibleRule => { id: "unsuppressible-rule", severity: Warning, transition: false,
        summary: "A suppression annotation names a rule that cannot be suppressed (a transition rule); it is ignored.",
        why: "Transition rules encode the chart's marker table: the chart's own hook would refuse the same upgrade in the cluster, after the irreversible steps may have run. The rules about suppression annotations cannot be suppressed either.",
        fix: "Remove the annotation and fix the cause (see the rule's own fix)",
        example: "metadata.annotations: {ess-guard.element.io/skip-no-rollback: \"we know\"} on the deployment-markers Job." },
    Helm3NoHooks => { id: "helm3-no-hooks", severity: Note, transition: false,
        summary: "Helm 3 input: ess-guard added only the scale-down annotations; the chart's own hook runs the migration.",
        why: "Helm 3 hides hooks from post-renderers and applies any hook a post-renderer adds as an ordinary resource, so ess-guard never adds hooks there.",
        fix: "Nothing to do; use Helm 4 to have the syn2mas hook hardened",
        example: "Helm 3 step-2 upgrade: ess-guard annotates the Synapse StatefulSets and leaves the chart's own syn2mas hook as it is." },
    NoReleaseOnCluster => { id: "no-release-on-cluster", severity: Warning, transition: false,
        summary: "No marker and no Helm release history on the cluster ess-guard read, yet the render runs syn2mas: ess-guard may be reading the wrong cluster.",
        why: "Helm passes a post-renderer neither its --kube-context nor its namespace; if ess-guard reads another cluster (the default context), the marker is missing there, the state reads as absent and every step is allowed.",
        fix: "Point ess-guard at the release's cluster (--post-renderer-args=--kube-context=<ctx>, --kubeconfig, --namespace); add --expect-release to make this an error. A fresh release that imports an existing Synapse database may really need syn2mas: then ignore it",
        example: "helmfile deploys to context prod with --kube-context prod, but ess-guard reads the kubeconfig's current context (a test cluster) and finds no ess-markers and no sh.helm.release.v1.ess.* Secrets there." },
    HelmReleaseDisableHooks => { id: "helmrelease-disable-hooks", severity: Error, transition: false,
        summary: "A Flux HelmRelease sets spec.install.disableHooks or spec.upgrade.disableHooks: the chart's marker guard and syn2mas never run.",
        why: "The chart checks and writes the marker in hook Jobs, and syn2mas is a hook: with hooks disabled nothing guards the one-way migration and the marker is never written.",
        fix: "Remove disableHooks (or set it to false) under spec.install and spec.upgrade",
        example: "spec.upgrade.disableHooks: true on the matrix-stack HelmRelease, copied from a chart whose hooks were slow." },
    HelmReleaseRollbackRemediation => { id: "helmrelease-rollback-remediation", severity: Warning, transition: false,
        summary: "A Flux HelmRelease retries failed upgrades with the rollback strategy: after step 2 a failed upgrade rolls back to legacy manifests.",
        why: "With spec.upgrade.remediation.retries > 0 the default strategy is rollback; Helm's rollback runs no pre-upgrade hook, so the chart's marker check is skipped and a migrated deployment goes back to Synapse-only logins.",
        fix: "Set spec.upgrade.remediation.retries: 0 while migrating (strategy: uninstall would delete the release instead) and fix a failed upgrade forward with the next step's values",
        example: "spec.upgrade.remediation: {retries: 3} on the matrix-stack HelmRelease during the MAS migration." },
}

impl RuleId {
    pub fn id(self) -> &'static str {
        self.info().id
    }
    pub fn from_id(id: &str) -> Option<RuleId> {
        RuleId::ALL.iter().copied().find(|r| r.id() == id)
    }
    /// Whether a `skip-<rule-id>` annotation can silence this rule: not transition rules (the
    /// chart's own hook enforces them anyway), and not the rules about suppression annotations.
    pub fn suppressible(self) -> bool {
        let about_suppressions = matches!(
            self,
            RuleId::SuppressionWithoutReason | RuleId::UnsuppressibleRule
        );
        !self.info().transition && !about_suppressions
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One reported problem: a rule, a message with the facts, and what it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(rename = "rule", serialize_with = "ser_rule")]
    pub rule: RuleId,
    pub severity: Severity,
    pub message: String,
    pub remediation: String,
    /// The resource concerned (`Kind namespace/name`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The template path, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

fn ser_rule<S: serde::Serializer>(rule: &RuleId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(rule.id())
}

impl Finding {
    /// A finding with the rule's own severity and fix.
    pub fn new(rule: RuleId, message: impl Into<String>) -> Finding {
        let info = rule.info();
        Finding {
            rule,
            severity: info.severity,
            message: message.into(),
            remediation: info.fix.to_string(),
            resource: None,
            source: None,
        }
    }
    pub fn at(mut self, resource: Option<String>, source: Option<String>) -> Finding {
        self.resource = resource;
        self.source = source;
        self
    }
    /// A finding at another severity than the rule's, where the rule says when (e.g. a warning
    /// where no markers Job runs).
    pub fn severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }
    pub fn fix(mut self, remediation: impl Into<String>) -> Finding {
        self.remediation = remediation.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_kebab_case_and_documented() {
        let mut seen = HashSet::new();
        for rule in RuleId::ALL {
            let info = rule.info();
            assert!(seen.insert(info.id), "duplicate id {}", info.id);
            assert!(
                info.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                info.id
            );
            assert!(
                !info.summary.is_empty()
                    && !info.why.is_empty()
                    && !info.fix.is_empty()
                    && !info.example.is_empty()
            );
            assert_eq!(RuleId::from_id(info.id), Some(*rule));
        }
    }
}
