//! `ess-guard argocd`: the `generate` command of an Argo CD Config Management Plugin (v2
//! sidecar). Argo CD renders Helm charts with `helm template` and has no post-renderer, so the
//! plugin renders instead: request from Argo's environment ([`crate::argocd`]) → `helm
//! template` (an argument vector, no shell) → the same guard as `post-render` → manifests on
//! stdout only when allowed.
//!
//! Fails closed: any refusal, error or cluster trouble exits non-zero with NOTHING on stdout.
//! An empty successful output would make Argo CD prune every resource of the application.
//! Nothing is added that Argo reads as its own hook (`argocd.argoproj.io/hook`): with one such
//! annotation in the output, Argo would ignore every Helm hook of the chart, the marker Jobs
//! and syn2mas included.

use std::process::{Command, Stdio};

use crate::cli::ArgocdArgs;
use crate::error::{Error, EXIT_REJECTED};
use crate::guard;
use crate::report;

/// The annotation that would switch Argo CD's Helm hook mapping off.
pub const ARGO_HOOK: &str = "argocd.argoproj.io/hook";

pub fn run(mut args: ArgocdArgs) -> Result<u8, Error> {
    let env_keys: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .collect();
    let request = crate::argocd::Request::from_env(
        &|k| std::env::var(k).ok(),
        &env_keys,
        &args.dir,
        args.state.cluster.release.as_deref(),
        args.state.cluster.namespace.as_deref(),
    )?;
    // The live read looks for this release's marker in this namespace.
    args.state.cluster.release = Some(request.release.clone());
    args.state.cluster.namespace = Some(request.namespace.clone());

    let rendered = helm_template(&args.helm, &request, &args.dir)?;
    let name = format!("helm template {}", request.chart);
    let source = guard::state_source(&(&args.state).into(), true)?;
    let guarded = guard::run(
        &name,
        rendered,
        source.as_ref(),
        &(&args.state).into(),
        None,
        &(&args.guard).into(),
        args.fail_on.into(),
    )?;
    let text = report::text(std::slice::from_ref(&guarded.report));
    let Some(output) = guarded.output else {
        crate::output::report(&text, false, None)?;
        return Ok(EXIT_REJECTED);
    };
    if output.is_blank(&guarded.stream) {
        return Err(Error::Input(format!(
            "{name}: the render has no Kubernetes object; refusing to hand Argo CD an empty output (it would prune every resource of the application)"
        )));
    }
    let bytes = output.to_string(&guarded.stream);
    if bytes.contains(ARGO_HOOK) && !guarded.stream.input.contains(ARGO_HOOK) {
        // Defence in depth: never hand Argo an annotation that disables the chart's hooks.
        return Err(Error::Output(format!(
            "internal error: the guarded output gained an {ARGO_HOOK} annotation; refusing it"
        )));
    }
    if guarded
        .report
        .evaluation
        .findings
        .iter()
        .any(|f| f.severity >= crate::rules::Severity::Warning)
    {
        crate::output::report(&text, false, None)?;
    }
    crate::output::write_stdout(bytes.as_bytes())?;
    Ok(0)
}

/// Runs `helm template` and returns its stdout. Helm's own failure is bad input (exit 2), with
/// the last line of Helm's stderr (Helm puts the reason there).
fn helm_template(
    helm: &std::path::Path,
    request: &crate::argocd::Request,
    dir: &std::path::Path,
) -> Result<Vec<u8>, Error> {
    let out = Command::new(helm)
        .args(request.helm_args())
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::Usage(format!(
                "cannot run {} ({e}); put Helm on PATH in the plugin's sidecar or set ESS_GUARD_HELM",
                helm.display()
            ))
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no error output");
        let reason: String = reason.chars().take(400).collect();
        return Err(Error::Input(format!(
            "helm template {} failed ({}): {reason}",
            request.chart, out.status
        )));
    }
    Ok(out.stdout)
}
