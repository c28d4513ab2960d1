//! `ess-guard audit`: connects to each requested context, audits it (see [`crate::audit`]) and
//! prints every cluster's result; one cluster's failure never hides another's.

use std::time::Duration;

use crate::audit::{self, ClusterAudit};
use crate::cli::{AuditArgs, AuditFormat};
use crate::error::Error;
use crate::kube_access::{self, Cluster, ConnectOptions};

pub fn run(args: AuditArgs) -> Result<u8, Error> {
    let contexts: Vec<Option<String>> = if args.all_contexts {
        let names = kube_access::context_names(args.kubeconfig.kubeconfig.as_deref())
            .map_err(|e| Error::State(format!("cannot list the kubeconfig's contexts: {e}")))?;
        if names.is_empty() {
            return Err(Error::Usage(
                "--all-contexts: the kubeconfig has no contexts".to_string(),
            ));
        }
        names.into_iter().map(Some).collect()
    } else if args.contexts.is_empty() {
        vec![None]
    } else {
        args.contexts.iter().cloned().map(Some).collect()
    };
    let clusters: Vec<ClusterAudit> = contexts
        .into_iter()
        .map(|context| audit_one(&args, context))
        .collect();
    let out = match args.output.format {
        AuditFormat::Table => audit::table(&clusters),
        AuditFormat::Json => audit::json(&clusters).map_err(Error::Output)?,
        AuditFormat::Prometheus => audit::prometheus(&clusters),
    };
    crate::output::write_stdout(out.as_bytes())?;
    // Failures are in the report; say so on stderr too, one line per cluster.
    for c in &clusters {
        if let Some(e) = &c.error {
            crate::output::error_line(&format!(
                "context {}: not audited: {e}",
                c.context.as_deref().unwrap_or("(current)")
            ));
        }
    }
    Ok(audit::exit_code(&clusters))
}

fn audit_one(args: &AuditArgs, context: Option<String>) -> ClusterAudit {
    let opts = ConnectOptions {
        kubeconfig: args.kubeconfig.kubeconfig.clone(),
        context: context.clone(),
        namespace: args.namespace.clone(),
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let mut result = ClusterAudit {
        context,
        server: None,
        scope: if args.all_namespaces {
            "all namespaces".to_string()
        } else {
            args.namespace.clone().unwrap_or_default()
        },
        api_calls: 0,
        error: None,
        releases: Vec::new(),
    };
    let cluster = match Cluster::connect(&opts) {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(e.to_string());
            return result;
        }
    };
    // Report the context actually used (the kubeconfig's current one when none was asked for),
    // so each row says which cluster it describes.
    result.context = Some(cluster.context().to_string());
    result.server = Some(cluster.server_url());
    if !args.all_namespaces {
        result.scope = format!("namespace {}", cluster.namespace());
    }
    match audit::audit_cluster(&cluster, args.all_namespaces, &args.chart.chart) {
        Ok(releases) => result.releases = releases,
        Err(e) => result.error = Some(e.to_string()),
    }
    result.api_calls = cluster.api_calls();
    result
}
