//! `ess-guard markers get`: the live marker as ess-guard sees it, to debug RBAC and context
//! selection. Read-only (one GET).

use std::fmt::Write as _;

use crate::cli::{MarkersAction, MarkersArgs, ValuesFormat};
use crate::error::Error;
use crate::live;
use crate::state::{MarkerState, MANAGED_BY_LABEL, MANAGED_BY_VALUE, MARKER_KEY};

pub fn run(args: MarkersArgs) -> Result<u8, Error> {
    let MarkersAction::Get { state, format } = args.action;
    let release = state.release.clone().ok_or_else(|| {
        Error::Usage("markers get needs --release NAME (the ConfigMap is <release>-markers)".into())
    })?;
    let name = format!("{release}-markers");
    let cluster = live::connect(&live::connect_options(&state))?;
    let cm = cluster
        .get_configmap(&name)
        .map_err(|e| live::state_error(&e))?;
    let value = cm.as_ref().and_then(|c| c.data.get(MARKER_KEY)).cloned();
    let parsed = match &value {
        Some(v) => v
            .parse::<MarkerState>()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| format!("invalid: {e}")),
        None => MarkerState::Absent.to_string(),
    };
    let out = match format {
        ValuesFormat::Json => {
            let json = serde_json::json!({
                "server": cluster.server_url(),
                "context": cluster.context(),
                "namespace": cluster.namespace(),
                "configmap": name,
                "exists": cm.is_some(),
                "value": value,
                "state": parsed,
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
            let _ = writeln!(out, "state:     {parsed}");
            if let Some(cm) = &cm {
                for (k, v) in &cm.labels {
                    let _ = writeln!(out, "label:     {k}={v}");
                }
                if cm.labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY_VALUE) {
                    let _ = writeln!(out, "warning:   {MANAGED_BY_LABEL} is not {MANAGED_BY_VALUE}; the chart's marker Job will refuse this ConfigMap");
                }
            }
            out
        }
    };
    crate::output::write_stdout(out.as_bytes())?;
    Ok(0)
}
