//! Command-line flags, defined in one place with their documentation. Parsed flags are plain
//! values the commands read; nothing here decides anything.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::formats::ReportFormat;
use crate::state::{ChartProfile, MarkerState, Step};

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
    /// List the rules (`-o markdown` writes docs/rules.md).
    Rules(RulesArgs),
    /// Print a shell completion script: `ess-guard completions bash > /etc/bash_completion.d/ess-guard`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), with every command's options: `ess-guard man > ess-guard.1`.
    Man,
    /// Compare two renders resource by resource.
    Diff(DiffArgs),
    /// Argo CD Config Management Plugin `generate`: helm template + guard; manifests on stdout
    /// only when allowed (see examples/argocd).
    ///
    /// Reads ARGOCD_APP_NAME (release), ARGOCD_APP_NAMESPACE (namespace), KUBE_VERSION and the
    /// plugin parameters chart, version, repo, values-files, release, namespace
    /// (ARGOCD_APP_PARAMETERS, else PARAM_*). Any refusal or error: non-zero exit and nothing
    /// on stdout (Argo CD would prune the application on an empty success).
    Argocd(ArgocdArgs),
    /// Lint Flux HelmRelease manifests for settings that defeat the migration guard
    /// (disableHooks, rollback remediation). Reports in every `check` format.
    Lint(LintArgs),
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

#[derive(Debug, Clone, Args)]
pub struct ArgocdArgs {
    /// The application's folder (Argo CD runs `generate` in it).
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// The Helm binary that renders the chart.
    #[arg(
        long,
        env = "ESS_GUARD_HELM",
        default_value = "helm",
        value_name = "PATH"
    )]
    pub helm: PathBuf,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub guard: GuardArgs,
    #[command(flatten)]
    pub fail_on: FailOnArgs,
}

#[derive(Debug, Clone, Args)]
#[command(
    mut_arg("format", |a| a.help("Output format (the same formats as `check`)")),
    mut_arg("fail_on", |a| a.help("Lowest severity that fails (exit 1)"))
)]
pub struct LintArgs {
    /// HelmRelease manifests: files, directories of YAML files, or `-` for stdin (the default).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,
    #[command(flatten)]
    pub output: Output<ReportFormat>,
    #[command(flatten)]
    pub fail_on: FailOnArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Table,
    Json,
    Prometheus,
}

impl OutputFormat for AuditFormat {
    const DEFAULT: &'static str = "table";
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
    #[command(flatten)]
    pub kubeconfig: KubeconfigArg,
    /// Seconds each API call may take.
    // Not ClusterArgs' timeout: an audit is not holding up a `helm upgrade`, and its LISTs of
    // every namespace are larger than one GET, so it waits longer (default 10, not 5).
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    #[command(flatten)]
    pub output: Output<AuditFormat>,
    #[command(flatten)]
    pub chart: ChartRefArg,
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
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// The release must already exist on the cluster read: when the marker is absent and no
    /// Helm release history is found there either, fail (exit 3) instead of warning. Catches
    /// ess-guard reading the wrong cluster (Helm passes a post-renderer no --kube-context).
    /// Only with a cluster read: a stated marker has no cluster to look for the release on.
    #[arg(long, conflicts_with_all = ["state", "state_file"])]
    pub expect_release: bool,
    #[command(flatten)]
    pub chart: ChartArgs,
}

/// Which release to read and how to reach its cluster: one definition for every command that
/// talks to the cluster about a release (through [`StateArgs`], and `markers get` and `recover`
/// directly).
#[derive(Debug, Clone, Default, Args)]
pub struct ClusterArgs {
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
    #[command(flatten)]
    pub kubeconfig: KubeconfigArg,
    /// Kubeconfig context.
    #[arg(long, env = "HELM_KUBECONTEXT", value_name = "NAME")]
    pub kube_context: Option<String>,
    /// Bound on every API request, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub timeout: u64,
}

/// `-n` of the commands that read no render (`markers get`, `recover`).
const NAMESPACE_WITHOUT_RENDER: &str =
    "Release namespace (else $HELM_NAMESPACE, then the kubeconfig context's)";

/// `--kubeconfig`, for the release commands ([`ClusterArgs`]) and `audit`.
#[derive(Debug, Clone, Default, Args)]
pub struct KubeconfigArg {
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// `-o/--output FORMAT`, with `--format` kept as an alias: one spelling (kubectl's, conftest's,
/// helm-diff's) for every command that prints in more than one format.
// Generic over the format choice. The default comes from `OutputFormat::DEFAULT` rather than
// clap's `default_value_t`, which keeps the default's name in a static that every instance of a
// generic struct would share.
#[derive(Debug, Clone, Args)]
pub struct Output<F: OutputFormat> {
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "format",
        value_name = "FORMAT",
        value_parser = clap::builder::EnumValueParser::<F>::new(),
        default_value = F::DEFAULT
    )]
    pub format: F,
}

/// A format choice of [`Output`].
pub trait OutputFormat: ValueEnum + Clone + Send + Sync + 'static {
    /// The name of the format used without `-o` (`each_output_default_is_the_formats_own`
    /// checks that it parses).
    const DEFAULT: &'static str;
}

/// `--fail-on`.
#[derive(Debug, Clone, Copy, Args)]
pub struct FailOnArgs {
    /// Lowest severity that rejects.
    #[arg(long, value_enum, default_value_t)]
    pub fail_on: FailOnArg,
}

/// `--chart`: the chart reference `plan` and `audit` print in their `helm upgrade` commands.
#[derive(Debug, Clone, Args)]
pub struct ChartRefArg {
    /// Chart reference used in the printed commands.
    #[arg(long, default_value = "oci://ghcr.io/element-hq/ess-helm/matrix-stack")]
    pub chart: String,
}

/// Which chart's marker rules decide when the input hides them (Helm 3 hides the markers Job;
/// values have no render). A render that shows the chart's markers Job is always decided by it.
#[derive(Debug, Clone, Default, Args)]
pub struct ChartArgs {
    /// The chart profile: one-upgrade-stage2 (matrix-stack <= 26.8.x) or repeatable-stage2
    /// (charts with ess-helm #1584). Default: from the chart version; an unknown version gets
    /// one-upgrade-stage2, the stricter.
    #[arg(long, value_name = "PROFILE", value_parser = parse_profile)]
    pub chart_profile: Option<ChartProfile>,
    /// The matrix-stack chart version (default: the render's helm.sh/chart label; for `values`,
    /// the release read with --reuse-values, else the built-in defaults' 26.8.2-dev).
    #[arg(long, value_name = "VERSION")]
    pub chart_version: Option<String>,
}

fn parse_profile(s: &str) -> Result<ChartProfile, String> {
    s.parse()
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

fn parse_step(s: &str) -> Result<Step, String> {
    s.parse()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum FailOnArg {
    #[default]
    Error,
    Warning,
}

/// `check` and `lint` choose among the report formats themselves: the names are the library's
/// ([`ReportFormat::name`]), so there is no second list of them here.
impl ValueEnum for ReportFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &ReportFormat::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

impl OutputFormat for ReportFormat {
    const DEFAULT: &'static str = "text";
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
    #[command(flatten)]
    pub output: Output<ReportFormat>,
    #[command(flatten)]
    pub fail_on: FailOnArgs,
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
    /// Set SYN2MAS_SCALE_DOWN_MAX_RETRIES on the syn2mas Job: how many ~1 s retries it waits for
    /// Synapse's pods to stop after the StatefulSets are down (matrix-tools' default: 60). A value
    /// set in matrixAuthenticationService.syn2mas.extraEnv is kept (and reported). The wait for
    /// the StatefulSets themselves has no cap in matrix-tools.
    #[arg(long, visible_alias = "scale-down-timeout", value_name = "N")]
    pub scale_down_retries: Option<u32>,
    /// Do not reorder or bound the chart's syn2mas hook (annotations are still added).
    #[arg(long)]
    pub no_harden: bool,
    /// Parse and validate every document, not only the kinds the guard reads (post-render's
    /// default skips the others for speed; `check` always parses everything).
    #[arg(long)]
    pub full_parse: bool,
}

// Flags → the library's plain request types (`crate::request`): the only place that knows both.

impl From<&GuardArgs> for crate::request::GuardRequest {
    fn from(a: &GuardArgs) -> Self {
        crate::request::GuardRequest {
            helm_version: a.helm_version,
            scale_down_retries: a.scale_down_retries,
            no_harden: a.no_harden,
            full_parse: a.full_parse,
        }
    }
}

impl From<&GuardArgs> for crate::inject::Options {
    fn from(args: &GuardArgs) -> Self {
        (&crate::request::GuardRequest::from(args)).into()
    }
}

impl From<&StateArgs> for crate::request::StateRequest {
    fn from(a: &StateArgs) -> Self {
        crate::request::StateRequest {
            state: a.state,
            state_file: a.state_file.clone(),
            live: a.live,
            expect_release: a.expect_release,
            chart: (&a.chart).into(),
            ..(&a.cluster).into()
        }
    }
}

/// `markers get` and `recover` only reach the cluster: the rest of the request is the default
/// (no stated marker, no chart override).
impl From<&ClusterArgs> for crate::request::StateRequest {
    fn from(a: &ClusterArgs) -> Self {
        crate::request::StateRequest {
            release: a.release.clone(),
            namespace: a.namespace.clone(),
            kubeconfig: a.kubeconfig.kubeconfig.clone(),
            kube_context: a.kube_context.clone(),
            timeout: a.timeout,
            ..Default::default()
        }
    }
}

impl From<&ChartArgs> for crate::request::ChartRequest {
    fn from(a: &ChartArgs) -> Self {
        crate::request::ChartRequest {
            chart_profile: a.chart_profile,
            chart_version: a.chart_version.clone(),
        }
    }
}

impl From<&ValueFlags> for crate::request::ValueSources {
    fn from(a: &ValueFlags) -> Self {
        crate::request::ValueSources {
            files: a.files.clone(),
            set: a.set.clone(),
            set_string: a.set_string.clone(),
            set_json: a.set_json.clone(),
            set_file: a.set_file.clone(),
            set_literal: a.set_literal.clone(),
        }
    }
}

impl From<&IntentArgs> for crate::request::IntentRequest {
    fn from(a: &IntentArgs) -> Self {
        crate::request::IntentRequest {
            step: a.step,
            values: (&a.values).into(),
        }
    }
}

impl From<FailOnArgs> for crate::engine::FailOn {
    fn from(f: FailOnArgs) -> Self {
        f.fail_on.into()
    }
}

impl From<FailOnArg> for crate::engine::FailOn {
    fn from(f: FailOnArg) -> Self {
        match f {
            FailOnArg::Error => crate::engine::FailOn::Error,
            FailOnArg::Warning => crate::engine::FailOn::Warning,
        }
    }
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
    // Boolish: ESS_GUARD_NO_TTY=1 (as tests/support/cluster.rs sets it) must work, not only
    // `true`; clap's default parser for a flag's env refuses `1` with exit 2.
    #[arg(long, env = "ESS_GUARD_NO_TTY", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_tty: bool,
    /// Also print a unified diff of what ess-guard changed (stderr, terminal, report); the
    /// manifests are still written to stdout.
    #[arg(long)]
    pub explain: bool,
    #[command(flatten)]
    pub fail_on: FailOnArgs,
}

#[derive(Debug, Clone, Args)]
#[command(mut_arg("format", |a| a.help("Output format of the merged values")))]
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
    #[command(flatten)]
    pub output: Output<ValuesFormat>,
    #[command(flatten)]
    pub fail_on: FailOnArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValuesFormat {
    Yaml,
    Json,
}

impl OutputFormat for ValuesFormat {
    const DEFAULT: &'static str = "yaml";
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub values: ValueFlags,
    #[command(flatten)]
    pub chart: ChartRefArg,
    #[command(flatten)]
    pub output: Output<ValuesFormat>,
}

#[derive(Debug, Clone, Args)]
pub struct MarkersArgs {
    #[command(subcommand)]
    pub action: MarkersAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MarkersAction {
    /// Print the live marker and its labels.
    #[command(
        mut_arg("release", |a| a.help("Helm release name (required: the ConfigMap is <release>-markers)")),
        mut_arg("namespace", |a| a.help(NAMESPACE_WITHOUT_RENDER))
    )]
    Get {
        #[command(flatten)]
        cluster: ClusterArgs,
        #[command(flatten)]
        output: Output<ValuesFormat>,
    },
}

#[derive(Debug, Clone, Args)]
#[command(
    mut_arg("release", |a| a.help("Helm release name (else the one the Synapse StatefulSets are labelled with)")),
    mut_arg("namespace", |a| a.help(NAMESPACE_WITHOUT_RENDER))
)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Patch the StatefulSets (default: only print what would be done).
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RulesArgs {
    #[command(flatten)]
    pub output: Output<RulesFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    Text,
    Markdown,
    Json,
}

impl OutputFormat for RulesFormat {
    const DEFAULT: &'static str = "text";
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

    /// The output format `args` parse to, by its variant name.
    fn format_of(args: &[&str]) -> String {
        let cli =
            Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?} does not parse: {e}"));
        match cli.command {
            Command::Check(a) => format!("{:?}", a.output.format),
            Command::Lint(a) => format!("{:?}", a.output.format),
            Command::Values(a) => format!("{:?}", a.output.format),
            Command::Plan(a) => format!("{:?}", a.output.format),
            Command::Markers(MarkersArgs {
                action: MarkersAction::Get { output, .. },
            }) => format!("{:?}", output.format),
            Command::Rules(a) => format!("{:?}", a.output.format),
            Command::Diff(a) => format!("{:?}", a.output.format),
            Command::Audit(a) => format!("{:?}", a.output.format),
            other => panic!("{other:?} has no output format"),
        }
    }

    /// One spelling for the output format in every command that has one: `-o`/`--output` as in
    /// kubectl, conftest and helm-diff, with `--format` kept as an alias.
    #[test]
    fn every_format_choice_takes_o_output_and_format() {
        for (command, value, expected) in [
            (&["check"][..], "json", "Json"),
            (&["lint"][..], "sarif", "Sarif"),
            (&["audit"][..], "prometheus", "Prometheus"),
            (&["values"][..], "json", "Json"),
            (&["plan"][..], "json", "Json"),
            (&["markers", "get"][..], "json", "Json"),
            (&["rules"][..], "markdown", "Markdown"),
            (&["diff", "a.yaml", "b.yaml"][..], "summary", "Summary"),
        ] {
            for flag in ["-o", "--output", "--format"] {
                let mut args = vec!["ess-guard"];
                args.extend_from_slice(command);
                args.extend([flag, value]);
                assert_eq!(format_of(&args), expected, "{args:?}");
            }
            let mut joined = vec!["ess-guard"];
            joined.extend_from_slice(command);
            let equals = format!("--output={value}");
            joined.push(&equals);
            assert_eq!(format_of(&joined), expected, "{joined:?}");
        }
    }

    /// Without `-o`, every command prints its first format (the one `--help` shows as default):
    /// `Output` takes the default from `OutputFormat::DEFAULT`, not from the enum.
    #[test]
    fn each_output_default_is_the_formats_own() {
        for (command, expected) in [
            (&["check"][..], "Text"),
            (&["lint"][..], "Text"),
            (&["values"][..], "Yaml"),
            (&["plan"][..], "Yaml"),
            (&["markers", "get"][..], "Yaml"),
            (&["rules"][..], "Text"),
            (&["audit"][..], "Table"),
            (&["diff", "a.yaml", "b.yaml"][..], "Unified"),
        ] {
            let mut args = vec!["ess-guard"];
            args.extend_from_slice(command);
            assert_eq!(format_of(&args), expected, "{args:?}");
        }
    }

    /// A flag that changes nothing is a lie in `--help`: the chart flags are offered only by the
    /// commands whose verdict reads them (through `ChartRequest`), and the stated-marker flags
    /// only by those that decide on a marker.
    #[test]
    fn chart_and_state_flags_only_where_they_change_the_decision() {
        fn commands_with(cmd: &clap::Command, id: &str, prefix: &str, out: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                let name = format!("{prefix}{}", sub.get_name());
                if sub.get_arguments().any(|a| a.get_id() == id) {
                    out.push(name.clone());
                }
                commands_with(sub, id, &format!("{name} "), out);
            }
        }
        let deciders = ["argocd", "check", "diff", "plan", "post-render", "values"];
        for id in [
            "chart_profile",
            "chart_version",
            "state",
            "state_file",
            "expect_release",
        ] {
            let mut found = Vec::new();
            commands_with(&Cli::command(), id, "", &mut found);
            found.sort();
            assert_eq!(found, deciders, "--{id}");
        }
        // The cluster flags are where every live reader needs them.
        let mut found = Vec::new();
        commands_with(&Cli::command(), "kube_context", "", &mut found);
        found.sort();
        let mut live = deciders.to_vec();
        live.extend(["markers get", "recover"]);
        live.sort();
        assert_eq!(found, live);
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

/// `ess-guard diff OLD NEW`, or `ess-guard diff --guard RENDER`.
#[derive(Debug, Clone, Args)]
#[command(after_long_help = crate::diff::AFTER_HELP)]
pub struct DiffArgs {
    /// The old render: a file, a directory of YAML files, or `-` for stdin. With --guard, the
    /// render to guard.
    #[arg(value_name = "OLD")]
    pub old: String,
    /// The new render, in the same forms (only one side can be `-`).
    #[arg(value_name = "NEW")]
    pub new: Option<String>,
    #[command(flatten)]
    pub output: Output<DiffOutputArg>,
    /// Lines of context around each change (unified output).
    #[arg(short = 'U', long = "context", value_name = "N", default_value_t = 3)]
    pub context: usize,
    /// Colour the unified and summary output; `auto` colours a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t)]
    pub color: ColorArg,
    /// Show Secret values (redacted by default: key names and sizes only).
    #[arg(long)]
    pub show_secrets: bool,
    /// Leave a path out of the comparison: '$.JSONPATH', 'labels:GLOB' or 'annotations:GLOB'
    /// (repeatable; see --help).
    #[arg(long = "ignore-path", value_name = "RULE", long_help = crate::diff::IGNORE_PATH_HELP)]
    pub ignore_paths: Vec<String>,
    /// Ignore the chart's hash labels (`labels:k8s.element.io/*-hash`, on resources and pod
    /// templates): they change whenever any input of a component does.
    #[arg(long)]
    pub ignore_hashes: bool,
    /// Compare Helm 4's `postrenderer.helm.sh/postrender-filename` annotation too (ignored by
    /// default: Helm adds it for the post-renderer and strips it afterwards).
    #[arg(long)]
    pub no_ignore_helm4_annotation: bool,
    /// Exit 1 when there are changes (after ignores), 0 when none, like `git diff --exit-code`.
    #[arg(long, visible_alias = "detailed-exitcode")]
    pub exit_code: bool,
    /// Compare RENDER with what `post-render` would output for it (same flags as `check`).
    #[arg(long, help_heading = "Guard mode")]
    pub guard: bool,
    #[command(flatten, next_help_heading = "Guard mode")]
    pub state: StateArgs,
    #[command(flatten, next_help_heading = "Guard mode")]
    pub intent: IntentArgs,
    #[command(flatten, next_help_heading = "Guard mode")]
    pub guard_args: GuardArgs,
    /// Lowest severity that rejects (guard mode).
    #[arg(long, value_enum, help_heading = "Guard mode")]
    pub fail_on: Option<FailOnArg>,
}

/// `diff --output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffOutputArg {
    Unified,
    Summary,
    Json,
}

impl OutputFormat for DiffOutputArg {
    const DEFAULT: &'static str = "unified";
}

/// `diff --color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorArg {
    #[default]
    Auto,
    Always,
    Never,
}

impl From<&DiffArgs> for crate::diff::DiffRequest {
    fn from(a: &DiffArgs) -> Self {
        use crate::diff::{ColorWhen, DiffOutput};
        crate::diff::DiffRequest {
            old: a.old.clone(),
            new: a.new.clone(),
            output: match a.output.format {
                DiffOutputArg::Unified => DiffOutput::Unified,
                DiffOutputArg::Summary => DiffOutput::Summary,
                DiffOutputArg::Json => DiffOutput::Json,
            },
            context: a.context,
            color: match a.color {
                ColorArg::Auto => ColorWhen::Auto,
                ColorArg::Always => ColorWhen::Always,
                ColorArg::Never => ColorWhen::Never,
            },
            show_secrets: a.show_secrets,
            ignore_paths: a.ignore_paths.clone(),
            ignore_hashes: a.ignore_hashes,
            no_ignore_helm4_annotation: a.no_ignore_helm4_annotation,
            exit_code: a.exit_code,
            guard: a.guard,
            state: (&a.state).into(),
            intent: (&a.intent).into(),
            guard_args: (&a.guard_args).into(),
            fail_on: a.fail_on.map(Into::into),
        }
    }
}
