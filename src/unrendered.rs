//! Post-renderer arguments that still hold a Go template.
//!
//! helmfile renders `helmDefaults.postRendererArgs` (`--release={{ .Release.Name }}`, …) only
//! since v1.5.1; older versions handed the text to Helm as it was, so ess-guard would look for
//! a release literally named `{{ .Release.Name }}`, or read the kubeconfig's default context
//! instead of `{{ .Release.KubeContext }}` — the wrong-cluster trap. Such an argument is refused
//! before anything is read: one line, exit 2, nothing on stdout.
//!
//! Values given with the `--set` family are exempt: chart values may hold templates on
//! purpose (the chart renders some of them with `tpl`), and they never select the cluster.

use crate::error::Error;

/// The `--set` flags whose values are chart values, not ess-guard settings.
const VALUE_FLAGS: [&str; 5] = [
    "--set",
    "--set-string",
    "--set-json",
    "--set-file",
    "--set-literal",
];

/// `Err` naming the first argument that still contains `{{`. `args` are the arguments after
/// the program name and the `post-render` subcommand.
pub fn refuse_unrendered(args: &[String]) -> Result<(), Error> {
    let mut previous_takes_value = false;
    for arg in args {
        let is_value_flag = |a: &str| {
            VALUE_FLAGS
                .iter()
                .any(|f| a == *f || a.strip_prefix(f).is_some_and(|r| r.starts_with('=')))
        };
        let exempt = previous_takes_value || is_value_flag(arg);
        previous_takes_value = VALUE_FLAGS.contains(&arg.as_str());
        if arg == "--kube-context=" {
            // helmfile renders {{ .Release.KubeContext }} from the release's own kubeContext
            // only (not helmDefaults.kubeContext): empty here would silently fall back to the
            // default context, the very trap the argument is there to close.
            return Err(Error::Usage(
                "post-renderer argument --kube-context= is empty: helmfile's {{ .Release.KubeContext }} is empty unless the release itself sets kubeContext (helmDefaults.kubeContext does not count); set kubeContext on the release, or drop the argument and rely on --expect-release".to_string(),
            ));
        }
        if !exempt && arg.contains("{{") {
            return Err(Error::Usage(format!(
                "post-renderer argument {arg:?} contains an unrendered template ({{{{ … }}}}): helmfile before v1.5.1 passes helmDefaults.postRendererArgs to Helm without rendering them, so ess-guard would read the wrong release or cluster; upgrade helmfile to v1.5.1 or later, or write the values literally (--release=ess --namespace=ess --kube-context=prod)"
            )));
        }
    }
    Ok(())
}

/// Whether `--no-tty` (or a truthy `ESS_GUARD_NO_TTY`) is among the raw arguments, for
/// reporting this refusal the way post-render would.
pub fn no_tty(args: &[String], env: Option<String>) -> bool {
    let truthy = |v: &str| !matches!(v.trim(), "" | "0" | "false" | "no" | "off" | "n");
    args.iter()
        .any(|a| a == "--no-tty" || a.strip_prefix("--no-tty=").is_some_and(truthy))
        || env.as_deref().is_some_and(truthy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_template_left_in_a_setting_is_refused() {
        let err = refuse_unrendered(&v(&["--release={{ .Release.Name }}", "--expect-release"]))
            .expect_err("refused");
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("\"--release={{ .Release.Name }}\""), "{text}");
        assert!(text.contains("v1.5.1"), "{text}");
        assert!(!text.contains('\n'));
        // Also as a separate value.
        assert!(refuse_unrendered(&v(&["--kube-context", "{{ .Release.KubeContext }}"])).is_err());
    }

    #[test]
    fn no_tty_follows_the_flag_and_the_environment() {
        assert!(no_tty(&v(&["--no-tty"]), None));
        assert!(no_tty(&v(&[]), Some("1".into())));
        assert!(!no_tty(&v(&[]), Some("0".into())));
        assert!(!no_tty(&v(&["--no-tty=false"]), None));
        assert!(!no_tty(&v(&["--release=ess"]), None));
    }

    #[test]
    fn an_empty_kube_context_is_refused() {
        let err =
            refuse_unrendered(&v(&["--release=ess", "--kube-context="])).expect_err("refused");
        assert!(err.to_string().contains("kubeContext"), "{err}");
    }

    #[test]
    fn rendered_arguments_and_chart_values_pass() {
        assert!(refuse_unrendered(&v(&["--release=ess", "--namespace=ess"])).is_ok());
        assert!(refuse_unrendered(&v(&["--set", "a.b={{ .Values.serverName }}"])).is_ok());
        assert!(refuse_unrendered(&v(&["--set-string=a={{ x }}", "--release=ess"])).is_ok());
        // `--settings` is not `--set`.
        assert!(refuse_unrendered(&v(&["--settings={{ x }}"])).is_err());
    }
}
