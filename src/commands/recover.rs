//! `ess-guard recover`: scale Synapse back after a migration that stopped half-way.
//!
//! The chart's syn2mas Job exits before scaling back when its pod wait runs out, leaving
//! Synapse at 0 replicas with the original counts lost. ess-guard's post-renderer recorded them
//! in `ess-guard.element.io/restore-replicas`; this command reads them and patches
//! `spec.replicas` back, each PATCH conditioned on the resourceVersion it read, so a concurrent
//! change is refused rather than overwritten. Without `--apply` it only prints the plan.

use std::fmt::Write as _;

use crate::cli::RecoverArgs;
use crate::error::Error;
use crate::inject::RESTORE_REPLICAS;
use crate::kube_access::KubeError;
use crate::live;

pub fn run(args: RecoverArgs) -> Result<u8, Error> {
    let cluster = live::connect(&live::connect_options(&args.state))?;
    let mut selector = "app.kubernetes.io/component=matrix-server".to_string();
    if let Some(release) = &args.state.release {
        let _ = write!(
            selector,
            ",k8s.element.io/synapse-instance={release}-synapse"
        );
    }
    let list = cluster
        .list_statefulsets(&selector)
        .map_err(|e| Error::State(format!("cannot list Synapse StatefulSets: {e}")))?;
    let mut out = String::new();
    let mut todo = 0;
    for sts in &list {
        let Some(want) = sts.annotations.get(RESTORE_REPLICAS) else {
            continue;
        };
        let want: i32 = want.parse().map_err(|_| {
            Error::Input(format!(
                "StatefulSet {}: annotation {RESTORE_REPLICAS}={want:?} is not a number",
                sts.name
            ))
        })?;
        let have = sts.replicas.unwrap_or(1);
        if have == want {
            let _ = writeln!(out, "ok       {} has {have} replica(s)", sts.name);
            continue;
        }
        todo += 1;
        if !args.apply {
            let _ = writeln!(
                out,
                "would    scale {} from {have} to {want} replica(s)",
                sts.name
            );
            continue;
        }
        let rv = sts.resource_version.clone().unwrap_or_default();
        match cluster.patch_statefulset_replicas(&sts.name, want, &rv, false) {
            Ok(_) => {
                let _ = writeln!(
                    out,
                    "scaled   {} from {have} to {want} replica(s)",
                    sts.name
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
    if list
        .iter()
        .all(|s| !s.annotations.contains_key(RESTORE_REPLICAS))
    {
        let _ = writeln!(out, "no Synapse StatefulSet carries {RESTORE_REPLICAS}: nothing to recover (was the step-2 upgrade run through ess-guard?)");
    } else if todo > 0 && !args.apply {
        let _ = writeln!(out, "dry run: pass --apply to scale {todo} StatefulSet(s)");
    }
    crate::output::write_stdout(out.as_bytes())?;
    Ok(0)
}
