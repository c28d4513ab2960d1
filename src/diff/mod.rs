//! Diffs: a plain unified diff of two texts (for `post-render --explain` and
//! `check --show-changes`), and `ess-guard diff`, which compares two renders resource by
//! resource.
//!
//! The `diff` data path: read each side with the shared manifest reader ([`load`]) → match
//! resources by identity (group, kind, namespace, name; never by position) → remove ignored
//! paths from both sides ([`ignore`]) → compare structurally ([`compare`]) → print ([`format`]),
//! with Secret values redacted ([`secret`]) in every format.

pub mod compare;
pub mod format;
pub mod ignore;
pub mod load;
pub mod path;
pub mod render;
pub mod secret;

use similar::TextDiff;

use crate::engine::FailOn;
use crate::error::{Error, EXIT_REJECTED};
use crate::manifest::{Hook, ResourceId};
use crate::request::{GuardRequest, IntentRequest, StateRequest};

use compare::Delta;
use ignore::IgnoreRule;
use load::{Located, Side};

/// A unified diff of `old` and `new` with `context` lines around each change.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str, context: usize) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(context)
        .header(old_name, new_name)
        .to_string()
}

pub const IGNORE_PATH_HELP: &str = "\
Leave a path out of the comparison (repeatable). Two forms:

$.JSONPATH
    An RFC 9535 JSONPath, run on every resource; every node it selects is
    removed. Quote it for the shell, e.g.
      '$.metadata.labels[\"k8s.element.io/synapse-config-hash\"]'
      '$.spec.template.spec.containers[*].image'
      '$.data[\"user-password-scheme.yml\"]'

labels:GLOB, annotations:GLOB
    Label (annotation) keys matching GLOB, removed from every metadata.labels
    (metadata.annotations) map of a resource: its own and those of its pod, job
    and volume-claim templates. `*` matches any run of characters (`/` too), `?`
    one character, e.g. 'labels:k8s.element.io/*-hash', 'annotations:checksum/*'

Removed paths are taken out of both sides before comparing: a resource that
differs only there is unchanged and does not count toward --exit-code. A map
left empty by a removal is removed too.";

pub const AFTER_HELP: &str = "\
Output (--output):
  unified  per changed resource: a header line, then a unified diff of a normalised YAML
           rendering (map keys sorted, block scalars for multi-line strings, strings that
           could be read as another type double-quoted); hunk headers name the path
  summary  one line per resource: `+ Kind ns/name`, `- Kind ns/name`,
           `~ Kind ns/name (3 paths)`, hooks tagged `[hook pre-upgrade w=0]`
  json     an array of {resource: {apiVersion, kind, namespace, name},
           change: added|removed|changed, hook?: {phases, weight}, previousHook?,
           paths: [JSON pointers], old: {pointer: value}, new: {pointer: value}}
           (a pointer absent from old/new is absent on that side)

Secrets: values of data and stringData (and the last-applied-configuration annotation) are
never shown in any format: only key names and sizes (decoded bytes for data), as
`(redacted, N bytes)` in text and {\"redacted\": true, \"bytes\": N} in JSON. A value that
changed but kept its size is marked `changed`. --show-secrets shows them.

Exit status: 0, or with --exit-code 0 for no changes and 1 for changes; 2 for bad input or
usage. With --guard, 1 also when the guard rejects the render (the report goes to stderr).

Examples:
  ess-guard diff legacy.yaml step1.yaml
  helm template ess ... | ess-guard diff --ignore-hashes --output summary deployed.yaml -
  ess-guard diff --exit-code --ignore-path 'labels:app.kubernetes.io/version' old/ new/
  ess-guard diff --guard --state legacy_auth step2.yaml";

/// `ess-guard diff OLD NEW`, or `ess-guard diff --guard RENDER`, as plain data (`cli::DiffArgs`
/// holds the flags and their help).
#[derive(Debug, Clone, Default)]
pub struct DiffRequest {
    /// The old render (with `guard`, the render to guard): a file, a directory or `-`.
    pub old: String,
    pub new: Option<String>,
    pub output: DiffOutput,
    /// Lines of context around each change (unified output).
    pub context: usize,
    pub color: ColorWhen,
    pub show_secrets: bool,
    /// `--ignore-path` rules, parsed by [`DiffRequest::rules`].
    pub ignore_paths: Vec<String>,
    pub ignore_hashes: bool,
    pub no_ignore_helm4_annotation: bool,
    /// Exit 1 when there are changes, like `git diff --exit-code`.
    pub exit_code: bool,
    /// Compare the render with what post-render would output for it.
    pub guard: bool,
    pub state: StateRequest,
    pub intent: IntentRequest,
    pub guard_args: GuardRequest,
    pub fail_on: Option<FailOn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiffOutput {
    #[default]
    Unified,
    Summary,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorWhen {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether to colour: `always`/`never` as said; `auto` on a terminal, unless `NO_COLOR` is
    /// set to something non-empty (no-color.org) or the terminal is `dumb`.
    pub fn enabled(self, is_terminal: bool, no_color: Option<&str>, term: Option<&str>) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                is_terminal && no_color.is_none_or(str::is_empty) && term != Some("dumb")
            }
        }
    }
}

/// How a resource differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        }
    }
    pub fn sign(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Changed => '~',
        }
    }
}

/// One added, removed or changed resource, with ignored paths already removed.
#[derive(Debug, Clone)]
pub struct ResourceDiff {
    pub change: ChangeKind,
    pub old: Option<Located>,
    pub new: Option<Located>,
    /// The changed paths (empty for added and removed resources).
    pub deltas: Vec<Delta>,
}

impl ResourceDiff {
    /// The resource as the new side has it (the old side for a removal).
    pub fn id(&self) -> &ResourceId {
        match (&self.new, &self.old) {
            (Some(l), _) | (None, Some(l)) => &l.resource.id,
            (None, None) => unreachable!("a ResourceDiff always has a side"),
        }
    }
    pub fn hook(&self) -> Option<&Hook> {
        self.new
            .as_ref()
            .or(self.old.as_ref())
            .and_then(|l| l.resource.hook.as_ref())
    }
    pub fn old_hook(&self) -> Option<&Hook> {
        self.old.as_ref().and_then(|l| l.resource.hook.as_ref())
    }
    pub fn is_secret(&self) -> bool {
        secret::is_secret(self.id())
    }
}

/// The result of comparing two sides.
#[derive(Debug, Default)]
pub struct Comparison {
    /// In output order: kind, namespace, name, group.
    pub diffs: Vec<ResourceDiff>,
    pub unchanged: usize,
    /// Resources that differ only in ignored paths (counted in `unchanged` too).
    pub ignored_only: usize,
}

impl Comparison {
    pub fn has_changes(&self) -> bool {
        !self.diffs.is_empty()
    }
}

/// Matches the resources of both sides by identity and compares them after removing `rules`.
pub fn compare(old: Side, new: Side, rules: &[IgnoreRule]) -> Comparison {
    let mut old = old.entries;
    let mut new = new.entries;
    let mut keys: Vec<load::Key> = old.keys().chain(new.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let strip = |located: &mut Located| {
        for rule in rules {
            rule.apply(&mut located.resource.value);
        }
    };
    let mut out = Comparison::default();
    for key in keys {
        match (old.remove(&key), new.remove(&key)) {
            (Some(mut o), Some(mut n)) => {
                let identical = o.resource.value == n.resource.value;
                strip(&mut o);
                strip(&mut n);
                let deltas = compare::deltas(&o.resource.value, &n.resource.value);
                if deltas.is_empty() {
                    out.unchanged += 1;
                    out.ignored_only += usize::from(!identical);
                } else {
                    out.diffs.push(ResourceDiff {
                        change: ChangeKind::Changed,
                        old: Some(o),
                        new: Some(n),
                        deltas,
                    });
                }
            }
            (Some(mut o), None) => {
                strip(&mut o);
                out.diffs.push(ResourceDiff {
                    change: ChangeKind::Removed,
                    old: Some(o),
                    new: None,
                    deltas: Vec::new(),
                });
            }
            (None, Some(mut n)) => {
                strip(&mut n);
                out.diffs.push(ResourceDiff {
                    change: ChangeKind::Added,
                    old: None,
                    new: Some(n),
                    deltas: Vec::new(),
                });
            }
            (None, None) => {}
        }
    }
    out
}

/// What to print and the exit code.
#[derive(Debug)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: u8,
}

impl DiffRequest {
    /// The ignore rules: built-in ones first, then `--ignore-path`, each parsed once.
    pub fn rules(&self) -> Result<Vec<IgnoreRule>, Error> {
        let mut texts: Vec<&str> = Vec::new();
        if !self.no_ignore_helm4_annotation {
            texts.push(ignore::HELM4_ANNOTATION);
        }
        if self.ignore_hashes {
            texts.push(ignore::HASH_LABELS);
        }
        texts.extend(self.ignore_paths.iter().map(String::as_str));
        texts
            .into_iter()
            .map(|t| IgnoreRule::parse(t).map_err(Error::Usage))
            .collect()
    }

    /// The first guard-mode flag given without `--guard`, if any.
    fn stray_guard_flag(&self) -> Option<&'static str> {
        let s = &self.state;
        let g = &self.guard_args;
        [
            (s.state.is_some(), "--state"),
            (s.state_file.is_some(), "--state-file"),
            (s.live, "--live"),
            (s.release.is_some(), "--release"),
            (s.kubeconfig.is_some(), "--kubeconfig"),
            (self.intent.step.is_some(), "--step"),
            (!self.intent.values.is_empty(), "--values/--set"),
            (g.helm_version.is_some(), "--helm-version"),
            (g.no_harden, "--no-harden"),
            (g.full_parse, "--full-parse"),
            (self.fail_on.is_some(), "--fail-on"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// Runs `ess-guard diff`; `color` is decided by the caller (it depends on the terminal).
pub fn run(args: &DiffRequest, color: bool) -> Result<Outcome, Error> {
    let rules = args.rules()?;
    let (comparison, mut stderr) = if args.guard {
        if args.new.is_some() {
            return Err(Error::Usage(
                "diff --guard takes one render (it is compared with the guard's output)".into(),
            ));
        }
        let render = &args.old;
        match guarded_sides(args, render)? {
            GuardRun::Sides(old, new, report) => (compare(old, new, &rules), report),
            GuardRun::Rejected(report) => {
                return Ok(Outcome {
                    stdout: String::new(),
                    stderr: report,
                    exit_code: EXIT_REJECTED,
                })
            }
        }
    } else {
        if let Some(flag) = args.stray_guard_flag() {
            return Err(Error::Usage(format!("{flag} only applies with --guard")));
        }
        let (old, Some(new)) = (&args.old, &args.new) else {
            return Err(Error::Usage(
                "diff takes two renders, OLD and NEW (or one with --guard)".into(),
            ));
        };
        if old == "-" && new == "-" {
            return Err(Error::Usage("only one side can be `-` (stdin)".into()));
        }
        // The sides are independent; parsing dominates, so read them in parallel.
        let (old, new) = std::thread::scope(|scope| {
            let old = scope.spawn(|| Side::read(old));
            let new = Side::read(new);
            (old.join(), new)
        });
        let old =
            old.map_err(|_| Error::Output("internal error: reading OLD panicked".into()))??;
        (compare(old, new?, &rules), String::new())
    };
    let stdout = match args.output {
        DiffOutput::Unified => format::unified(&comparison, args.context, args.show_secrets, color),
        DiffOutput::Summary => format::summary(&comparison, color),
        DiffOutput::Json => format::json(&comparison, args.show_secrets),
    };
    if comparison.ignored_only > 0 {
        let n = comparison.ignored_only;
        stderr.push_str(&format!(
            "ess-guard: note: {n} resource{} differ{} only in ignored paths\n",
            if n == 1 { "" } else { "s" },
            if n == 1 { "s" } else { "" }
        ));
    }
    let exit_code = u8::from(args.exit_code && comparison.has_changes());
    Ok(Outcome {
        stdout,
        stderr,
        exit_code,
    })
}

enum GuardRun {
    Sides(Side, Side, String),
    Rejected(String),
}

/// Guards `render` as `check` does and returns it and the post-render output as the two sides,
/// with the guard's report when it has something to say (warnings or worse).
fn guarded_sides(args: &DiffRequest, render: &str) -> Result<GuardRun, Error> {
    let bytes = crate::input::read(render)?;
    let source = crate::guard::state_source(&args.state, false)?;
    let intent = crate::guard::intent(&args.intent)?;
    let fail_on = args.fail_on.unwrap_or_default();
    let guarded = crate::guard::run(
        render,
        bytes,
        source.as_ref(),
        &args.state,
        intent,
        &args.guard_args,
        fail_on,
    )?;
    let report = crate::report::text(std::slice::from_ref(&guarded.report));
    let Some(output) = guarded.output else {
        return Ok(GuardRun::Rejected(report));
    };
    let noteworthy = guarded
        .report
        .evaluation
        .findings
        .iter()
        .any(|f| f.severity >= crate::rules::Severity::Warning);
    let output = output.to_string(&guarded.stream);
    let old = Side::from_text(render, guarded.stream.input)?;
    let new = Side::from_text(&format!("{render} (ess-guard)"), output)?;
    Ok(GuardRun::Sides(
        old,
        new,
        if noteworthy { report } else { String::new() },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_choice() {
        assert!(ColorWhen::Auto.enabled(true, None, Some("xterm")));
        assert!(ColorWhen::Auto.enabled(true, Some(""), None));
        assert!(!ColorWhen::Auto.enabled(true, Some("1"), None));
        assert!(!ColorWhen::Auto.enabled(false, None, None));
        assert!(!ColorWhen::Auto.enabled(true, None, Some("dumb")));
        assert!(ColorWhen::Always.enabled(false, Some("1"), None));
        assert!(!ColorWhen::Never.enabled(true, None, None));
    }

    fn side(text: &str) -> Side {
        Side::from_text("t", text.to_string()).expect("parses")
    }

    #[test]
    fn matches_by_identity_not_position() {
        let a = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: '1'}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n";
        let b = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: '2'}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n";
        let c = compare(side(a), side(b), &[]);
        let got: Vec<(ChangeKind, &str)> = c
            .diffs
            .iter()
            .map(|d| (d.change, d.id().name.as_str()))
            .collect();
        assert_eq!(got, [(ChangeKind::Changed, "a"), (ChangeKind::Added, "b")]);
        assert_eq!(c.unchanged, 1);
    }

    #[test]
    fn api_version_bump_is_a_change() {
        let a = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n";
        let b = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n";
        let c = compare(side(a), side(b), &[]);
        assert_eq!(c.diffs.len(), 1);
        assert_eq!(c.diffs[0].change, ChangeKind::Changed);
        assert_eq!(path::pointer(&c.diffs[0].deltas[0].segs), "/apiVersion");
    }

    #[test]
    fn ignored_only_differences_are_unchanged() {
        let a = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {k8s.element.io/x-hash: '1'}}\n";
        let b = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {k8s.element.io/x-hash: '2'}}\n";
        let rules = [IgnoreRule::parse(ignore::HASH_LABELS).expect("parses")];
        let c = compare(side(a), side(b), &rules);
        assert!(!c.has_changes());
        assert_eq!(c.ignored_only, 1);
    }

    #[test]
    fn duplicates_are_bad_input() {
        let a = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n";
        let err = Side::from_text("t", a.to_string()).expect_err("duplicate");
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("appears twice"), "{err}");
    }
}
