//! `ess-guard markers get`: the live marker as ess-guard sees it, to debug RBAC and context
//! selection. Read-only (one GET).

use std::fmt::Write as _;

use crate::cli::{MarkersAction, MarkersArgs, ValuesFormat};
use crate::engine;
use crate::error::Error;
use crate::live;
use crate::source::{ConfigMapFacts, Observed};
use crate::state::{MarkerReading, MARKER_KEY};

pub fn run(args: MarkersArgs) -> Result<u8, Error> {
    let MarkersAction::Get { cluster, output } = args.action;
    let release = cluster.release.clone().ok_or_else(|| {
        Error::Usage("markers get needs --release NAME (the ConfigMap is <release>-markers)".into())
    })?;
    let name = format!("{release}-markers");
    let cluster = live::connect(&live::connect_options(&(&cluster).into()))?;
    let cm = cluster
        .get_configmap(&name)
        .map_err(|e| live::state_error(&e))?;
    // The one reader, and the engine's classification: the same verdict and rule ids as
    // post-render, check, values and plan give for this ConfigMap.
    let reading = match &cm {
        Some(cm) => ConfigMapFacts::from(cm).into_reading(),
        None => MarkerReading::NoConfigMap,
    };
    let observed = Observed::read_live(reading, cluster.read_from(&name));
    let value = cm.as_ref().and_then(|c| c.data.get(MARKER_KEY)).cloned();
    let findings = engine::classify(&observed);
    let out = match output.format {
        ValuesFormat::Json => {
            let json = serde_json::json!({
                "server": cluster.server_url(),
                "context": cluster.context(),
                "namespace": cluster.namespace(),
                "configmap": name,
                "exists": cm.is_some(),
                "immutable": cm.as_ref().is_some_and(|c| c.immutable),
                "value": value,
                "state": observed.current,
                "findings": findings,
                "labels": cm.as_ref().map(|c| c.labels.clone()),
                "resourceVersion": cm.as_ref().and_then(|c| c.resource_version.clone()),
            });
            serde_json::to_string_pretty(&json).map_err(|e| Error::Output(e.to_string()))? + "\n"
        }
        ValuesFormat::Yaml => {
            let mut out = String::new();
            let _ = writeln!(out, "server:    {}", cluster.server_url());
            let _ = writeln!(out, "context:   {}", cluster.context());
            let _ = writeln!(
                out,
                "configmap: {}/{name} ({})",
                cluster.namespace(),
                if cm.is_some() { "exists" } else { "not found" }
            );
            let _ = writeln!(out, "state:     {}", observed.current);
            if let Some(cm) = &cm {
                for (k, v) in &cm.labels {
                    let _ = writeln!(out, "label:     {k}={v}");
                }
            }
            for f in &findings {
                let _ = writeln!(out, "{}[{}]: {}", f.severity, f.rule, f.message);
                let _ = writeln!(out, "    fix: {}", f.remediation);
            }
            out
        }
    };
    crate::output::write_stdout(out.as_bytes())?;
    Ok(0)
}
