//! Suppressions: `ess-guard.element.io/skip-<rule-id>: "<reason>"` on the resource a finding
//! concerns silences that finding, the way `checkov.io/skipN` and
//! `ignore-check.kube-linter.io/<check>` do for their tools.
//!
//! The rules:
//! - only findings that name a resource can be suppressed, and only by an annotation on that
//!   resource;
//! - the reason is mandatory: an empty one suppresses nothing and is itself a finding
//!   (`suppression-without-reason`);
//! - transition rules can never be suppressed: the chart's own marker hook would refuse the same
//!   upgrade in the cluster. Trying is a finding (`unsuppressible-rule`); so is trying to suppress
//!   the two rules about suppression annotations;
//! - suppressed findings are reported apart and never count toward the verdict or exit code.
//!
//! Annotations are read from the resources ess-guard parses (see
//! [`crate::manifest::ParseMode::Relevant`]; every resource with `--full-parse`); findings only
//! ever name those.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{Evaluation, FailOn};
use crate::manifest::Stream;
use crate::rules::{Finding, RuleId};

/// The annotation prefix; the rule id follows it.
pub const SKIP_PREFIX: &str = "ess-guard.element.io/skip-";

/// A finding silenced by an annotation, with the annotation's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    #[serde(flatten)]
    pub finding: Finding,
    pub reason: String,
}

/// The suppression annotations of one render, by resource (`Kind namespace/name`) and rule.
#[derive(Debug, Clone, Default)]
pub struct Suppressions {
    /// Valid suppressions: resource → rule → reason.
    valid: BTreeMap<String, BTreeMap<RuleId, String>>,
    /// Findings about the annotations themselves (no reason, unsuppressible rule).
    problems: Vec<Finding>,
}

impl Suppressions {
    /// Reads every `skip-*` annotation of the stream. Unknown rule ids are ignored: they match no
    /// finding, so a typo can only leave a finding visible, never hide one.
    pub fn from_stream(stream: &Stream) -> Suppressions {
        let mut out = Suppressions::default();
        for (doc, r) in stream.resources() {
            // Every resource is visited (every Helm 4 document has an annotation), so nothing is
            // allocated until a skip annotation is found: on the 100 MB benchmark stream the
            // resource name formatted up front, and `pointer`'s parsing, were a visible part of
            // the serial time between reading and editing.
            let Some(annotations) = r
                .value
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.as_object())
            else {
                continue;
            };
            for (key, value) in annotations {
                let Some(rule) = key.strip_prefix(SKIP_PREFIX).and_then(RuleId::from_id) else {
                    continue;
                };
                let resource = r.id.to_string();
                let reason = value.as_str().map(str::trim).unwrap_or("");
                let at = |f: Finding| f.at(Some(resource.clone()), doc.source.clone());
                if !rule.suppressible() {
                    let what = if rule.info().transition {
                        "a transition rule"
                    } else {
                        "a rule about suppressions"
                    };
                    out.problems.push(at(Finding::new(
                        RuleId::UnsuppressibleRule,
                        format!("annotation {key} is ignored: {rule} is {what} and cannot be suppressed"),
                    )));
                } else if reason.is_empty() {
                    out.problems.push(at(Finding::new(
                        RuleId::SuppressionWithoutReason,
                        format!("annotation {key} has no reason and is ignored: {rule} findings on this resource stay reported"),
                    )));
                } else {
                    out.valid
                        .entry(resource.clone())
                        .or_default()
                        .insert(rule, reason.to_string());
                }
            }
        }
        out
    }

    /// The reason `finding` is suppressed, if it is.
    fn reason(&self, finding: &Finding) -> Option<&str> {
        if !finding.rule.suppressible() {
            return None;
        }
        self.valid
            .get(finding.resource.as_deref()?)?
            .get(&finding.rule)
            .map(String::as_str)
    }

    /// Moves the suppressed findings out of `findings` and returns them.
    pub fn filter(&self, findings: &mut Vec<Finding>) -> Vec<Suppressed> {
        let mut suppressed = Vec::new();
        let mut kept = Vec::with_capacity(findings.len());
        for f in findings.drain(..) {
            match self.reason(&f).map(str::to_string) {
                Some(reason) => suppressed.push(Suppressed { finding: f, reason }),
                None => kept.push(f),
            }
        }
        *findings = kept;
        suppressed
    }

    /// Applies the suppressions to an evaluation: adds the findings about the annotations,
    /// removes the suppressed findings and recomputes the verdict. Returns the suppressed ones.
    pub fn apply(&self, evaluation: &mut Evaluation, fail_on: FailOn) -> Vec<Suppressed> {
        let suppressed = self.filter(&mut evaluation.findings);
        evaluation.findings.extend(self.problems.iter().cloned());
        evaluation.recompute(fail_on);
        suppressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Verdict;
    use crate::manifest::ParseMode;
    use crate::state::MarkerState;

    fn stream(annotations: &str) -> Stream {
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ess-synapse\n  namespace: ess\n  annotations:\n{annotations}data: {{}}\n"
        );
        Stream::parse("t", text.into_bytes(), ParseMode::Relevant).expect("parses")
    }

    fn evaluation(findings: Vec<Finding>) -> Evaluation {
        let mut e = Evaluation {
            current: MarkerState::LegacyAuth.into(),
            state_origin: "test".into(),
            read_from: None,
            step: None,
            step_origin: "render",
            readings: Vec::new(),
            chart_rules: String::new(),
            repeats_stage2: false,
            findings,
            verdict: Verdict::Allowed,
            fail_on: FailOn::Error,
        };
        e.recompute(FailOn::Error);
        e
    }

    fn at_cfg(rule: RuleId) -> Finding {
        Finding::new(rule, "m").at(Some("ConfigMap ess/ess-synapse".into()), None)
    }

    #[test]
    fn reason_suppresses_and_verdict_is_recomputed() {
        let s = Suppressions::from_stream(&stream(
            "    ess-guard.element.io/skip-missing-bcrypt-scheme: \"hashes are argon2 only\"\n",
        ));
        let mut e = evaluation(vec![at_cfg(RuleId::MissingBcryptScheme)]);
        assert_eq!(e.verdict, Verdict::Rejected);
        let suppressed = s.apply(&mut e, FailOn::Error);
        assert_eq!(e.verdict, Verdict::Allowed);
        assert!(e.findings.is_empty());
        assert_eq!(suppressed[0].reason, "hashes are argon2 only");
    }

    #[test]
    fn other_resource_or_release_level_is_not_suppressed() {
        let s = Suppressions::from_stream(&stream(
            "    ess-guard.element.io/skip-missing-bcrypt-scheme: why\n",
        ));
        let mut e = evaluation(vec![
            Finding::new(RuleId::MissingBcryptScheme, "m"),
            Finding::new(RuleId::MissingBcryptScheme, "m")
                .at(Some("ConfigMap ess/other".into()), None),
        ]);
        assert!(s.apply(&mut e, FailOn::Error).is_empty());
        assert_eq!(e.findings.len(), 2);
    }

    #[test]
    fn empty_reason_is_a_finding_and_does_not_suppress() {
        let s = Suppressions::from_stream(&stream(
            "    ess-guard.element.io/skip-missing-bcrypt-scheme: \" \"\n",
        ));
        let mut e = evaluation(vec![at_cfg(RuleId::MissingBcryptScheme)]);
        assert!(s.apply(&mut e, FailOn::Error).is_empty());
        let rules: Vec<_> = e.findings.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            vec![
                RuleId::MissingBcryptScheme,
                RuleId::SuppressionWithoutReason
            ]
        );
        assert_eq!(e.verdict, Verdict::Rejected);
        assert_eq!(
            e.findings[1].resource.as_deref(),
            Some("ConfigMap ess/ess-synapse")
        );
    }

    #[test]
    fn transition_rules_cannot_be_suppressed() {
        let s = Suppressions::from_stream(&stream(
            "    ess-guard.element.io/skip-no-rollback: \"we know\"\n",
        ));
        let mut e = evaluation(vec![at_cfg(RuleId::NoRollback)]);
        assert!(s.apply(&mut e, FailOn::Error).is_empty());
        assert_eq!(e.verdict, Verdict::Rejected);
        let unsuppressible = e
            .findings
            .iter()
            .find(|f| f.rule == RuleId::UnsuppressibleRule)
            .expect("reported");
        assert!(
            unsuppressible.message.contains("cannot be suppressed"),
            "{}",
            unsuppressible.message
        );
    }

    #[test]
    fn suppressed_warning_does_not_reject_with_fail_on_warning() {
        let s = Suppressions::from_stream(&stream(
            "    ess-guard.element.io/skip-duplicate-key: \"known chart bug\"\n",
        ));
        let mut e = evaluation(vec![at_cfg(RuleId::DuplicateKey)]);
        e.recompute(FailOn::Warning);
        assert_eq!(e.verdict, Verdict::Rejected);
        s.apply(&mut e, FailOn::Warning);
        assert_eq!(e.verdict, Verdict::Allowed);
    }

    #[test]
    fn unknown_rule_ids_are_ignored() {
        let s = Suppressions::from_stream(&stream(
            "    ess-guard.element.io/skip-no-such-rule: \"\"\n",
        ));
        let mut e = evaluation(vec![]);
        s.apply(&mut e, FailOn::Error);
        assert!(e.findings.is_empty());
    }
}
