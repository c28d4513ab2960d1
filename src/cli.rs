//! Command-line flags, defined in one place with their documentation. Parsed flags are plain
//! values the commands read; nothing here decides anything.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::state::{MarkerState, Step};

/// Guards Element Server Suite (matrix-stack) upgrades through the one-way Synapse → MAS
/// migration, before Helm applies anything.
///
/// Called with flags only (as Helm 3 does with --post-renderer-args), ess-guard acts as the
/// post-renderer.
#[derive(Debug, Parser)]
#[command(
    name = "ess-guard",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check rendered manifests against the stored marker and print a report.
    ///
    /// Inputs are checked in parallel; reports keep the order of the inputs. Exit code: 0 all
    /// allowed, 1 some input rejected; an input that cannot be checked (2 bad input, 3 marker
    /// state unknown) wins over both, after the other inputs' reports are printed (errors go to
    /// stderr). Findings are suppressed with an annotation on the resource they name,
    /// `ess-guard.element.io/skip-<rule-id>: "<reason>"` (reason required; transition rules
    /// cannot be suppressed); suppressed findings never change the exit code.
    Check(CheckArgs),
    /// Helm post-renderer: read manifests on stdin, write them to stdout only when allowed.
    PostRender(PostRenderArgs),
    /// Merge Helm values like Helm does, check them, and print them for `helm upgrade -f`.
    Values(ValuesArgs),
    /// Show where a deployment is in the migration and the exact next `helm upgrade`.
    Plan(PlanArgs),
    /// Read the live marker ConfigMap.
    Markers(MarkersArgs),
    /// Scale Synapse back to the replicas recorded before a failed migration.
    Recover(RecoverArgs),
    /// List the rules (`--format markdown` writes docs/rules.md).
    Rules(RulesArgs),
    /// Print a shell completion script: `ess-guard completions bash > /etc/bash_completion.d/ess-guard`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), with every command's options: `ess-guard man > ess-guard.1`.
    Man,
    /// Compare two renders resource by resource.
    Diff(crate::diff::DiffArgs),
    /// Print ValidatingAdmissionPolicies that guard the marker in the cluster (`| kubectl apply -f -`).
    ///
    /// They refuse deleting a marker ConfigMap, removing its key or its managed-by label,
    /// storing an unknown value or moving it backwards, and creating a release's syn2mas Job
    /// while its marker is delegated_auth. Namespace deletion is never blocked. See
    /// docs/policy.md.
    Policy(PolicyArgs),
    /// Every ESS release of one or more clusters: marker, stage, next command and problems.
    ///
    /// One LIST each of the marker ConfigMaps, the deployed Helm release Secrets and the
    /// matrix-server StatefulSets per cluster. Exit code: 0 no error-level problem, 1 a release
    /// has one, 3 a cluster could not be audited (the others are still reported).
    Audit(AuditArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum AuditFormat {
    #[default]
    Table,
    Json,
    Prometheus,
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// This namespace (default: the context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Kubeconfig context to audit (repeatable; default: the current context).
    #[arg(long = "context", value_name = "CONTEXT")]
    pub contexts: Vec<String>,
    /// Audit every context of the kubeconfig.
    #[arg(long, conflicts_with = "contexts")]
    pub all_contexts: bool,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Seconds each API call may take.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    #[arg(long, value_enum, default_value_t)]
    pub format: AuditFormat,
    /// Chart reference used in the printed commands (as for `plan`).
    #[arg(long, default_value = "oci://ghcr.io/element-hq/ess-helm/matrix-stack")]
    pub chart: String,
}

#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Only guard these namespaces (repeatable; default: every namespace).
    #[arg(short = 'n', long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
    /// Only guard these releases (repeatable; default: every release).
    #[arg(short = 'r', long = "release", value_name = "RELEASE")]
    pub releases: Vec<String>,
    /// Warn and audit instead of refusing (validationActions [Warn, Audit]).
    #[arg(long)]
    pub audit_only: bool,
}

/// Where the stored marker comes from.
#[derive(Debug, Clone, Default, Args)]
pub struct StateArgs {
    /// The stored marker, stated explicitly (skips the cluster): absent, legacy_auth,
    /// syn2mas_migrated or delegated_auth.
    #[arg(long, value_name = "STATE", conflicts_with = "state_file")]
    pub state: Option<MarkerState>,
    /// The marker ConfigMap as `kubectl get cm <release>-markers -o yaml` prints it.
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,
    /// Read the marker from the cluster (the default for post-render and plan).
    #[arg(long, conflicts_with_all = ["state", "state_file"])]
    pub live: bool,
    /// Helm release name (else taken from the render's markers Job).
    #[arg(short = 'r', long, value_name = "NAME")]
    pub release: Option<String>,
    /// Release namespace (else the namespace the render names, then $HELM_NAMESPACE, then the
    /// kubeconfig context's).
    // Not `env = "HELM_NAMESPACE"`: Helm passes no namespace to a post-renderer, so the render's
    // namespace is what Helm really used and must beat a HELM_NAMESPACE left in the environment
    // (kube_access reads it after the render).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Kubeconfig file (else $KUBECONFIG, ~/.kube/config, in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, env = "HELM_KUBECONTEXT", value_name = "NAME")]
    pub kube_context: Option<String>,
    /// Bound on every API request, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub timeout: u64,
}

/// Values and intent, to settle what a render alone cannot show (Helm 3).
#[derive(Debug, Clone, Default, Args)]
pub struct IntentArgs {
    /// The migration step this upgrade is meant to be.
    #[arg(long, value_name = "STEP", value_parser = parse_step)]
    pub step: Option<Step>,
    #[command(flatten)]
    pub values: ValueFlags,
}

/// Helm's value flags, with Helm's meaning.
#[derive(Debug, Clone, Default, Args)]
pub struct ValueFlags {
    /// Values file (repeatable; `-` is stdin).
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub files: Vec<String>,
    /// --set k=v (Helm's strvals syntax; repeatable).
    #[arg(long = "set", value_name = "K=V")]
    pub set: Vec<String>,
    /// --set-string k=v.
    #[arg(long = "set-string", value_name = "K=V")]
    pub set_string: Vec<String>,
    /// --set-json k=json.
    #[arg(long = "set-json", value_name = "K=JSON")]
    pub set_json: Vec<String>,
    /// --set-file k=path.
    #[arg(long = "set-file", value_name = "K=PATH")]
    pub set_file: Vec<String>,
    /// --set-literal k=v.
    #[arg(long = "set-literal", value_name = "K=V")]
    pub set_literal: Vec<String>,
}

impl ValueFlags {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.set.is_empty()
            && self.set_string.is_empty()
            && self.set_json.is_empty()
            && self.set_file.is_empty()
            && self.set_literal.is_empty()
    }
}

fn parse_step(s: &str) -> Result<Step, String> {
    s.parse()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum FailOnArg {
    #[default]
    Error,
    Warning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum CheckFormat {
    #[default]
    Text,
    Json,
    Sarif,
    Junit,
    Github,
    Gitlab,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Renders to check: files, directories of YAML files, or `-` for stdin (the default).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub state: StateArgs,
    /// A YAML map of input path → stored marker, for checking many renders at once.
    #[arg(long, value_name = "FILE")]
    pub state_map: Option<PathBuf>,
    #[command(flatten)]
    pub intent: IntentArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: CheckFormat,
    /// Lowest severity that rejects.
    #[arg(long, value_enum, default_value_t)]
    pub fail_on: FailOnArg,
    /// Also print the unified diff of what post-render would change.
    #[arg(long)]
    pub show_changes: bool,
    #[command(flatten)]
    pub guard: GuardArgs,
}

/// What the post-renderer changes, shared by `check --show-changes` and `post-render`.
#[derive(Debug, Clone, Args)]
pub struct GuardArgs {
    /// Treat the input as Helm 3 or Helm 4 post-renderer input (default: detect).
    #[arg(long, value_name = "3|4", value_parser = clap::value_parser!(u8).range(3..=4))]
    pub helm_version: Option<u8>,
    /// Seconds the syn2mas Job waits for Synapse pods to stop (SYN2MAS_SCALE_DOWN_MAX_RETRIES).
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub scale_down_timeout: u32,
    /// Do not reorder or bound the chart's syn2mas hook (annotations are still added).
    #[arg(long)]
    pub no_harden: bool,
    /// Parse and validate every document, not only the kinds the guard reads (post-render's
    /// default skips the others for speed; `check` always parses everything).
    #[arg(long)]
    pub full_parse: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PostRenderArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub intent: IntentArgs,
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Also write the report here (Helm 4 discards a plugin's stderr).
    #[arg(long, env = "ESS_GUARD_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Do not write the report to /dev/tty.
    #[arg(long, env = "ESS_GUARD_NO_TTY")]
    pub no_tty: bool,
    /// Also print a unified diff of what ess-guard changed (stderr, terminal, report); the
    /// manifests are still written to stdout.
    #[arg(long)]
    pub explain: bool,
    #[arg(long, value_enum, default_value_t)]
    pub fail_on: FailOnArg,
}

#[derive(Debug, Clone, Args)]
pub struct ValuesArgs {
    #[command(flatten)]
    pub values: ValueFlags,
    #[command(flatten)]
    pub state: StateArgs,
    /// Merge over the values of the last deployed release (read from the cluster).
    #[arg(long)]
    pub reuse_values: bool,
    /// Offline stand-in for --reuse-values: the previous release's values.
    #[arg(long, value_name = "FILE")]
    pub previous_values: Option<PathBuf>,
    /// The chart's values.yaml, for defaults (default: the matrix-stack defaults built in).
    #[arg(long, value_name = "FILE")]
    pub chart_defaults: Option<PathBuf>,
    /// Add what the migration requires and can be added safely (the password schemes).
    #[arg(long)]
    pub fix: bool,
    /// Output format of the merged values.
    #[arg(long, value_enum, default_value_t)]
    pub format: ValuesFormat,
    #[arg(long, value_enum, default_value_t)]
    pub fail_on: FailOnArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ValuesFormat {
    #[default]
    Yaml,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub values: ValueFlags,
    /// Chart reference used in the printed command.
    #[arg(long, default_value = "oci://ghcr.io/element-hq/ess-helm/matrix-stack")]
    pub chart: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: ValuesFormat,
}

#[derive(Debug, Clone, Args)]
pub struct MarkersArgs {
    #[command(subcommand)]
    pub action: MarkersAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MarkersAction {
    /// Print the live marker and its labels.
    Get {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long, value_enum, default_value_t)]
        format: ValuesFormat,
    },
}

#[derive(Debug, Clone, Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Patch the StatefulSets (default: only print what would be done).
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: RulesFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum RulesFormat {
    #[default]
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Helm 3 runs a post-renderer with `--post-renderer-args` only, so a first argument that is a
/// flag (or no argument at all, with stdin not a terminal) means post-render.
pub fn normalise_args(mut args: Vec<String>, stdin_is_terminal: bool) -> Vec<String> {
    let first = args.get(1).map(String::as_str);
    let is_meta = matches!(first, Some("-h" | "--help" | "-V" | "--version" | "help"));
    let post_render = match first {
        None => !stdin_is_terminal,
        Some(arg) => arg.starts_with('-') && !is_meta,
    };
    if post_render {
        args.insert(1.min(args.len()), "post-render".to_string());
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_only_means_post_render() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            normalise_args(v(&["g", "--state=absent"]), false),
            v(&["g", "post-render", "--state=absent"])
        );
        assert_eq!(normalise_args(v(&["g"]), false), v(&["g", "post-render"]));
        assert_eq!(normalise_args(v(&["g"]), true), v(&["g"]));
        assert_eq!(
            normalise_args(v(&["g", "--help"]), false),
            v(&["g", "--help"])
        );
        assert_eq!(
            normalise_args(v(&["g", "check"]), false),
            v(&["g", "check"])
        );
    }
}
