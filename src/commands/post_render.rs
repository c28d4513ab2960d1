//! `ess-guard post-render`: the Helm post-renderer. Reads the render on stdin and writes it back
//! to stdout only when the upgrade is allowed. When rejected, stdout stays empty (Helm would
//! apply whatever it got) and the verdict goes to stderr (shown by Helm 3), the terminal and
//! `--report` (Helm 4 discards a plugin's stderr).

use std::io::{Read, Write};

use crate::cli::PostRenderArgs;
use crate::error::{Error, EXIT_REJECTED};
use crate::guard;
use crate::report;

pub fn run(args: PostRenderArgs) -> Result<u8, Error> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Input(format!("cannot read stdin: {e}")))?;
    // Helm 3 runs this process as its child: its command line tells the step (Helm 3 hides
    // the hooks that would) and whether an empty render could replace a release.
    let helm_cmd = crate::helm_cmdline::HelmCommand::from_parent();
    if crate::helm_cmdline::is_empty_render(&bytes) {
        if let Ok(what) = crate::helm_cmdline::empty_render_is_harmless(&helm_cmd) {
            return empty_render(&bytes, what, &args);
        }
        // Otherwise guard::run refuses it, as it always did.
    }
    let mut cmdline_note = None;
    let outcome = (|| {
        let mut intent = guard::intent(&(&args.intent).into())?;
        if intent.is_none() && std::env::var_os("HELM_PLUGIN_DIR").is_some() {
            // Helm 4 runs post-renderers as plugins (and sets this) and shows them the hooks:
            // the render itself says the step, so the command line is not needed.
            cmdline_note = Some("Helm 4 shows the hooks; the render says the step".to_string());
        } else if intent.is_none() {
            match helm_cmd
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|c| c.intent(&(&args.state).into()))
            {
                Ok(i) => intent = Some(i),
                Err(why) => cmdline_note = Some(why),
            }
        }
        let source = guard::state_source(&(&args.state).into(), true)?;
        guard::run(
            "stdin",
            bytes,
            source.as_ref(),
            &(&args.state).into(),
            intent,
            &(&args.guard).into(),
            args.fail_on.into(),
        )
    })();
    let guarded = match outcome {
        Ok(g) => g,
        Err(e) => {
            // The same channels as a rejection, so Helm 4 users see why it failed.
            let text = format!("ess-guard: error: {e}\n");
            crate::output::report(&text, !args.no_tty, args.report.as_deref())?;
            return Err(Error::Reported(e.exit_code()));
        }
    };
    let mut text = report::text(std::slice::from_ref(&guarded.report));
    if let Some(why) = &cmdline_note {
        let step_unsettled = guarded
            .report
            .evaluation
            .findings
            .iter()
            .any(|f| matches!(f.rule.id(), "ambiguous-step" | "unverified-step"));
        if step_unsettled {
            text.push_str(&format!(
                "  note:      the step was not read from Helm's command line: {why}; pass --post-renderer-args=--step=<step> (or --values) to settle it\n"
            ));
        }
    }
    let Some(output) = guarded.output else {
        crate::output::report(&text, !args.no_tty, args.report.as_deref())?;
        return Ok(EXIT_REJECTED);
    };
    // --explain adds the diff of what ess-guard changed to the report; the manifests still go to
    // stdout, because under Helm an empty output would be applied as an empty release.
    if args.explain {
        text.push_str(
            &crate::inject::explain(&guarded.stream, &guarded.plan, 3).map_err(Error::Output)?,
        );
    }
    let noteworthy = args.explain
        || guarded
            .report
            .evaluation
            .findings
            .iter()
            .any(|f| f.severity >= crate::rules::Severity::Warning);
    crate::output::report(
        if noteworthy { &text } else { "" },
        noteworthy && !args.no_tty,
        None,
    )?;
    if let Some(path) = &args.report {
        std::fs::write(path, &text).map_err(|e| {
            Error::Output(format!("cannot write report file {}: {e}", path.display()))
        })?;
    }
    // Helm 4 refuses empty output; a render of only comments is valid, so keep at least one line.
    if output.is_blank(&guarded.stream) {
        crate::output::write_stdout(b"# ess-guard: empty render\n")?;
    } else {
        // Written from the input buffer, not from a copy (see `inject::Rendered`).
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        output
            .write_to(&guarded.stream, &mut w)
            .and_then(|()| w.flush())
            .map_err(|e| Error::Output(format!("cannot write to stdout: {e}")))?;
    }
    // The process ends here: leave the model of the render to the OS instead of freeing its
    // allocations one by one (~8 % of the CPU time on a 10 MB render, most of it glibc
    // consolidating freed chunks; see BENCHMARKS.md).
    std::mem::forget(guarded.stream);
    std::mem::forget(guarded.plan);
    std::mem::forget(output);
    Ok(0)
}

/// An input without any Kubernetes object, under a Helm command that cannot replace a release
/// (`helm install`, `helm template`): harmless (the chart renders nothing for some values
/// sets), so it is handed back. Under `helm upgrade`, or when the command line cannot be read,
/// `guard::run` refuses it as before: Helm 3 would apply it and delete every resource.
fn empty_render(bytes: &[u8], what: &str, args: &PostRenderArgs) -> Result<u8, Error> {
    let text = format!("ess-guard: allowed: empty render under {what} (no release to replace)\n");
    if let Some(path) = &args.report {
        std::fs::write(path, &text).map_err(|e| {
            Error::Output(format!("cannot write report file {}: {e}", path.display()))
        })?;
    }
    // Helm 4 refuses empty output: hand back the comments, or one of our own.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        crate::output::write_stdout(b"# ess-guard: empty render\n")
    } else {
        crate::output::write_stdout(bytes)
    }?;
    Ok(0)
}
