//! `ess-guard recover`: scale Synapse back after a migration that stopped half-way.
//!
//! The chart's syn2mas Job (a pre-upgrade hook) scales every Synapse StatefulSet to 0 and exits
//! before scaling back when its pod wait runs out, leaving Synapse down with the original
//! counts lost. The annotations ess-guard's post-renderer adds to the rendered StatefulSets do
//! not help then: Helm applies the manifests only after the pre-upgrade hooks succeed, so a
//! failed step 2 never brings them to the cluster. What the cluster does hold is Helm's own
//! record of the release, one Secret per revision:
//!
//! * the failed (or still pending) step-2 revision's manifest, post-rendered, with ess-guard's
//!   `ess-guard.element.io/restore-replicas` on each Synapse StatefulSet;
//! * the last deployed revision's manifest, with each StatefulSet's `spec.replicas` (absent
//!   means 1, the API server's default).
//!
//! The number to restore comes from, in this order: the annotation on the live StatefulSet
//! (a step 2 that did reach the apply phase), the annotation in the newest revision when that
//! revision failed, `spec.replicas` in the last deployed revision before it. Each line of
//! output names its source. When the newest revision is deployed (no upgrade failed) the
//! history is not used: nothing says Synapse should differ from what it is.
//!
//! Read-only unless `--apply`; each PATCH is conditioned on the resourceVersion it read, so a
//! concurrent change is refused rather than overwritten; a second run finds nothing to do.
//! Release Secrets are read for their manifests' StatefulSets only; no Secret data is printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::cli::RecoverArgs;
use crate::error::Error;
use crate::inject::RESTORE_REPLICAS;
use crate::kube_access::{KubeError, ReleaseRevision};
use crate::live;
use crate::manifest::{ParseMode, Stream};

/// The label every Synapse process StatefulSet of the chart carries.
const COMPONENT: (&str, &str) = ("app.kubernetes.io/component", "matrix-server");

/// Revision statuses that mean an upgrade did not finish.
const UNFINISHED: &[&str] = &[
    "failed",
    "pending-upgrade",
    "pending-install",
    "pending-rollback",
];

/// Replicas to restore and where the number came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    replicas: i32,
    source: String,
}

/// What Helm's history says about each Synapse StatefulSet.
#[derive(Debug, Default)]
struct FromHistory {
    wants: BTreeMap<String, Want>,
    /// Why the history gives nothing (shown when a StatefulSet has no other source).
    why_not: Option<String>,
}

pub fn run(args: RecoverArgs) -> Result<u8, Error> {
    let cluster = live::connect(&live::connect_options(&(&args.cluster).into()))?;
    let mut selector = format!("{}={}", COMPONENT.0, COMPONENT.1);
    if let Some(release) = &args.cluster.release {
        let _ = write!(
            selector,
            ",k8s.element.io/synapse-instance={release}-synapse"
        );
    }
    let list = cluster
        .list_statefulsets(&selector)
        .map_err(|e| Error::State(format!("cannot list Synapse StatefulSets: {e}")))?;
    // Live annotations mean ess-guard's step-2 render reached the cluster: it annotated every
    // Synapse process it rendered, so those are the whole record. Only without any is Helm's
    // history read (needs list secrets).
    let release = args.cluster.release.clone().or_else(|| {
        list.iter()
            .find_map(|s| s.labels.get("app.kubernetes.io/instance").cloned())
    });
    let live_record = list
        .iter()
        .any(|s| s.annotations.contains_key(RESTORE_REPLICAS));
    let history = if !live_record {
        match &release {
            Some(r) => {
                let revisions = cluster.release_history(r).map_err(|e| {
                    Error::State(format!(
                        "cannot read Helm's history of release {r} (list secrets): {e}"
                    ))
                })?;
                from_history(r, &revisions)?
            }
            None => FromHistory {
                why_not: Some("the release name is unknown (pass -r)".into()),
                ..FromHistory::default()
            },
        }
    } else {
        FromHistory::default()
    };

    let mut out = String::new();
    let mut todo = 0;
    let mut known = 0;
    for sts in &list {
        let want = match sts.annotations.get(RESTORE_REPLICAS) {
            Some(v) => Want {
                replicas: v.parse().map_err(|_| {
                    Error::Input(format!(
                        "StatefulSet {}: annotation {RESTORE_REPLICAS}={v:?} is not a number",
                        sts.name
                    ))
                })?,
                source: format!("{RESTORE_REPLICAS} on the live StatefulSet"),
            },
            None => match history.wants.get(&sts.name) {
                Some(w) => w.clone(),
                None if live_record => continue,
                None => {
                    let why = history.why_not.as_deref().unwrap_or(
                        "it is in no revision of Helm's history that says how many replicas it should have",
                    );
                    let _ = writeln!(out, "unknown  {}: {why}", sts.name);
                    continue;
                }
            },
        };
        known += 1;
        let have = sts.replicas.unwrap_or(1);
        if have == want.replicas {
            let _ = writeln!(
                out,
                "ok       {} has {have} replica(s) (from {})",
                sts.name, want.source
            );
            continue;
        }
        todo += 1;
        if !args.apply {
            let _ = writeln!(
                out,
                "would    scale {} from {have} to {} replica(s) (from {})",
                sts.name, want.replicas, want.source
            );
            continue;
        }
        let rv = sts.resource_version.clone().unwrap_or_default();
        match cluster.patch_statefulset_replicas(&sts.name, want.replicas, &rv, false) {
            Ok(_) => {
                let _ = writeln!(
                    out,
                    "scaled   {} from {have} to {} replica(s) (from {})",
                    sts.name, want.replicas, want.source
                );
            }
            Err(KubeError::Conflict { .. }) => {
                crate::output::write_stdout(out.as_bytes())?;
                return Err(Error::State(format!(
                    "StatefulSet {} changed while recovering (resourceVersion {rv} is stale); nothing was overwritten: run ess-guard recover again to see the current state",
                    sts.name
                )));
            }
            Err(e) => {
                crate::output::write_stdout(out.as_bytes())?;
                return Err(Error::State(format!(
                    "cannot scale StatefulSet {}: {e}",
                    sts.name
                )));
            }
        }
    }
    if list.is_empty() {
        let _ = writeln!(
            out,
            "no Synapse StatefulSet ({selector}) in this namespace: nothing to recover"
        );
    } else if known == 0 {
        let _ = writeln!(out, "nothing to recover: no StatefulSet carries {RESTORE_REPLICAS} and Helm's history shows no failed upgrade to recover from");
    } else if todo > 0 && !args.apply {
        let _ = writeln!(out, "dry run: pass --apply to scale {todo} StatefulSet(s)");
    } else if todo == 0 {
        let _ = writeln!(out, "nothing to do: Synapse has its replicas");
    }
    crate::output::write_stdout(out.as_bytes())?;
    Ok(0)
}

/// Reads the replicas to restore from Helm's revisions (newest first), when the newest one
/// is an upgrade that did not finish.
fn from_history(release: &str, revisions: &[ReleaseRevision]) -> Result<FromHistory, Error> {
    let Some(newest) = revisions.first() else {
        return Ok(FromHistory {
            why_not: Some(format!("release {release} has no Helm history here")),
            ..FromHistory::default()
        });
    };
    if !UNFINISHED.contains(&newest.status.as_str()) {
        return Ok(FromHistory {
            why_not: Some(format!(
                "the newest revision of release {release} ({}) is {}: no upgrade failed, so nothing says it should have other replicas",
                newest.version, newest.status
            )),
            ..FromHistory::default()
        });
    }
    let mut wants = BTreeMap::new();
    for (name, sts) in synapse_statefulsets(newest)? {
        if let Some(v) = sts.annotation {
            let replicas = v.parse().map_err(|_| {
                Error::Input(format!(
                    "Helm revision {} of {release}: StatefulSet {name}: {RESTORE_REPLICAS}={v:?} is not a number",
                    newest.version
                ))
            })?;
            wants.insert(
                name,
                Want {
                    replicas,
                    source: format!(
                        "{RESTORE_REPLICAS} in Helm revision {} ({})",
                        newest.version, newest.status
                    ),
                },
            );
        }
    }
    // The last deployed (or superseded) revision before it: what ran before the upgrade.
    if let Some(prev) = revisions[1..]
        .iter()
        .find(|r| matches!(r.status.as_str(), "deployed" | "superseded"))
    {
        for (name, sts) in synapse_statefulsets(prev)? {
            wants.entry(name).or_insert(Want {
                replicas: sts.replicas,
                source: format!(
                    "spec.replicas in Helm revision {} ({}), the last deployed before the failed revision {}",
                    prev.version, prev.status, newest.version
                ),
            });
        }
    }
    Ok(FromHistory {
        wants,
        why_not: None,
    })
}

/// A Synapse StatefulSet as one revision's manifest renders it.
struct Rendered {
    replicas: i32,
    annotation: Option<String>,
}

/// The Synapse StatefulSets of one revision's manifest, by name. The manifest holds Secrets
/// too: a parse error is reported without its text.
fn synapse_statefulsets(rev: &ReleaseRevision) -> Result<BTreeMap<String, Rendered>, Error> {
    let name = format!("Helm revision {}", rev.version);
    let stream = Stream::parse(
        &name,
        rev.manifest.clone().into_bytes(),
        ParseMode::Relevant,
    )
    .map_err(|_| {
        Error::Input(format!(
            "{name}: its manifest cannot be read as YAML; recover cannot use it"
        ))
    })?;
    let mut out = BTreeMap::new();
    for (_, r) in stream.resources() {
        if r.kind() != "StatefulSet" || r.label(COMPONENT.0) != Some(COMPONENT.1) {
            continue;
        }
        let replicas = match r.value.get("spec").and_then(|s| s.get("replicas")) {
            None | Some(Value::Null) => 1,
            Some(v) => v
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    Error::Input(format!(
                        "{name}: StatefulSet {}: spec.replicas is not a replica count",
                        r.name()
                    ))
                })?,
        };
        out.insert(
            r.name().to_string(),
            Rendered {
                replicas,
                annotation: r.annotation(RESTORE_REPLICAS).map(str::to_string),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(name: &str, replicas: Option<i32>, annotation: Option<&str>) -> String {
        let mut s = format!(
            "---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/component: matrix-server\n"
        );
        if let Some(a) = annotation {
            let _ = write!(s, "  annotations:\n    {RESTORE_REPLICAS}: \"{a}\"\n");
        }
        s.push_str("spec:\n  serviceName: x\n");
        if let Some(r) = replicas {
            let _ = writeln!(s, "  replicas: {r}");
        }
        s
    }

    fn rev(version: u32, status: &str, manifest: String) -> ReleaseRevision {
        ReleaseRevision {
            version,
            status: status.into(),
            manifest,
        }
    }

    #[test]
    fn failed_revision_annotation_first_then_last_deployed_replicas() {
        let secret =
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: c2VjcmV0\n";
        let revisions = [
            rev(
                4,
                "failed",
                format!(
                    "{secret}{}{}",
                    sts("ess-synapse-main", Some(2), Some("2")),
                    sts("ess-synapse-new", None, None)
                ),
            ),
            rev(
                3,
                "deployed",
                format!(
                    "{}{}",
                    sts("ess-synapse-main", Some(2), None),
                    sts("ess-synapse-old", None, None)
                ),
            ),
            rev(2, "superseded", sts("ess-synapse-older", Some(5), None)),
        ];
        let h = from_history("ess", &revisions).expect("reads");
        let main = &h.wants["ess-synapse-main"];
        assert_eq!(main.replicas, 2);
        assert!(
            main.source.contains("Helm revision 4 (failed)"),
            "{}",
            main.source
        );
        let old = &h.wants["ess-synapse-old"];
        assert_eq!(old.replicas, 1, "absent replicas is the API default");
        assert!(
            old.source.contains("revision 3 (deployed)"),
            "{}",
            old.source
        );
        assert!(
            !h.wants.contains_key("ess-synapse-new"),
            "no annotation and not deployed before"
        );
        assert!(
            !h.wants.contains_key("ess-synapse-older"),
            "only the last deployed revision counts"
        );
    }

    #[test]
    fn a_deployed_newest_revision_gives_nothing() {
        let revisions = [rev(
            2,
            "deployed",
            sts("ess-synapse-main", Some(1), Some("1")),
        )];
        let h = from_history("ess", &revisions).expect("reads");
        assert!(h.wants.is_empty());
        assert!(h.why_not.expect("why").contains("is deployed"));
        let h = from_history("ess", &[]).expect("reads");
        assert!(h.why_not.expect("why").contains("no Helm history"));
    }
}
