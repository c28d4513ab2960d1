//! Every real `matrix-stack` render and post-renderer capture in `$ESS_GUARD_SHARED/ess-renders`
//! against every stored marker, through `check` and `post-render`.
//!
//! The expected verdicts are written from the migration rules, not recorded from the binary:
//!
//! - transitions (the chart's marker table): Synapse-only and step 1 are allowed from
//!   absent|legacy_auth, else `no-rollback`; step 2 from absent|legacy_auth, else
//!   `syn2mas-still-enabled` (from syn2mas_migrated) or `syn2mas-rerun` (from delegated_auth);
//!   step 3 and MAS from the start from absent|syn2mas_migrated|delegated_auth, else
//!   `mas-requires-syn2mas` (from legacy_auth). A transition rule is reported before config rules;
//! - Helm 3 captures of step 2 and step 3 look the same (hooks are not passed to a Helm 3
//!   post-renderer): from legacy_auth the marker tells the two readings apart, so
//!   `ambiguous-step`; from syn2mas_migrated|delegated_auth a reading the chart's own marker hook
//!   refuses is dropped with the warning `unverified-step` and the others are judged in full; from
//!   absent the chart allows both readings: the step-3 reading decides and the step-2 reading's
//!   errors become warnings;
//! - config rules: `sso-with-check-config` (step 2, Synapse SSO, check-config hook on — assumed on
//!   when hooks are invisible), `sso-left-in-synapse` (step 3 with Synapse SSO),
//!   `missing-bcrypt-scheme` and `unsupported-auth-provider` (steps 1–2; `missing-bcrypt-scheme`
//!   also at step 3 from syn2mas_migrated, and as a warning from delegated_auth),
//!   `syn2mas-external-synapse` (syn2mas without the chart's Synapse, whatever the marker);
//! - warnings: `markers-disabled` (no markers Job while hooks are visible, or Synapse disabled
//!   with a marker stored), `duplicate-key`;
//! - MAS with the chart's Synapse disabled from legacy_auth: `mas-requires-syn2mas` (the chart
//!   renders no marker then and cannot stop it).
//!
//! For every allowed post-render the output is also checked: same documents, untouched ones byte
//! for byte, Synapse StatefulSets annotated and the syn2mas hook moved after check-config on
//! step 2 with visible hooks, Helm 4's filename annotations kept, and a second run changes
//! nothing. A rejected post-render writes nothing to stdout.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{code, summarize, text};

/// The stored markers, in the order of [`Case::expect`].
const STATES: [&str; 4] = [
    "absent",
    "legacy_auth",
    "syn2mas_migrated",
    "delegated_auth",
];

/// The folders of `ess-renders/` whose `*.yaml` files are the inputs.
const INPUT_DIRS: [&str; 6] = [
    "",
    "extra",
    "postrender-input/helm3",
    "postrender-input/helm4",
    "extra/postrender-input/helm3",
    "extra/postrender-input/helm4",
];

/// The verdict for one input and one stored marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exit 0, and exactly these warnings in the report.
    Allowed(&'static [&'static str]),
    /// Exit 1, and this rule id on the verdict line.
    Rejected(&'static str),
}

use Expect::{Allowed, Rejected};

const OK: Expect = Allowed(&[]);
const MARKERS_OFF: Expect = Allowed(&["markers-disabled"]);
const DUPLICATE: Expect = Allowed(&["duplicate-key"]);
const UNVERIFIED: Expect = Allowed(&["unverified-step"]);
const BCRYPT_WARN: Expect = Allowed(&["missing-bcrypt-scheme"]);
const ROLLBACK: Expect = Rejected("no-rollback");
const STILL_ENABLED: Expect = Rejected("syn2mas-still-enabled");
const RERUN: Expect = Rejected("syn2mas-rerun");
const NEEDS_SYN2MAS: Expect = Rejected("mas-requires-syn2mas");
const AMBIGUOUS: Expect = Rejected("ambiguous-step");
const SSO_CHECK_CONFIG: Expect = Rejected("sso-with-check-config");
const SSO_LEFT: Expect = Rejected("sso-left-in-synapse");
const NO_BCRYPT: Expect = Rejected("missing-bcrypt-scheme");
const UNSUPPORTED: Expect = Rejected("unsupported-auth-provider");
const EXTERNAL: Expect = Rejected("syn2mas-external-synapse");

/// The usual rows: what the chart's marker table alone says.
const LEGACY_OR_STEP1: [Expect; 4] = [OK, OK, ROLLBACK, ROLLBACK];
const STEP2: [Expect; 4] = [OK, OK, STILL_ENABLED, RERUN];
const STEP3: [Expect; 4] = [OK, NEEDS_SYN2MAS, OK, OK];
/// A Helm 3 capture of step 2 or step 3 without config findings.
const HELM3_STEP2_OR_3: [Expect; 4] = [OK, AMBIGUOUS, UNVERIFIED, UNVERIFIED];

/// One input file and its expected verdict per stored marker.
struct Case {
    /// Path below `ess-renders/`.
    path: &'static str,
    /// One per entry of [`STATES`].
    expect: [Expect; 4],
    /// The render is the migration (step 2): an allowed post-render with visible hooks must
    /// annotate the Synapse StatefulSets and harden the syn2mas hook.
    step2: bool,
}

const fn case(path: &'static str, expect: [Expect; 4]) -> Case {
    Case {
        path,
        expect,
        step2: false,
    }
}

const fn step2(path: &'static str, expect: [Expect; 4]) -> Case {
    Case {
        path,
        expect,
        step2: true,
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // `helm template` renders (hooks included).
    case("legacy.yaml", LEGACY_OR_STEP1),
    case("legacy-workers.yaml", LEGACY_OR_STEP1),
    case("legacy-oidc-synapse-additional.yaml", LEGACY_OR_STEP1), // SSO is fine while Synapse handles auth
    case("syn2mas-without-mas.yaml", LEGACY_OR_STEP1),            // the chart ignores syn2mas without MAS
    case("step1-syn2mas-dryrun.yaml", LEGACY_OR_STEP1),
    case("step1-workers.yaml", LEGACY_OR_STEP1),
    case("step1-oidc.yaml", LEGACY_OR_STEP1),                     // OIDC mapped in MAS, bcrypt present
    case("step1-ci-no-markers.yaml", [MARKERS_OFF, MARKERS_OFF, ROLLBACK, ROLLBACK]),
    step2("step2-syn2mas-migrate.yaml", STEP2),
    step2("step2-workers.yaml", STEP2),
    step2("step2-oidc-checkconfig-disabled.yaml", STEP2),         // the migration guide's workaround
    step2("step2-ci-no-markers.yaml", [MARKERS_OFF, MARKERS_OFF, STILL_ENABLED, RERUN]),
    step2("probe-syn2mas-annotations.yaml", [DUPLICATE, DUPLICATE, STILL_ENABLED, RERUN]),
    case("step2-oidc.yaml", [SSO_CHECK_CONFIG, SSO_CHECK_CONFIG, STILL_ENABLED, RERUN]),
    case("step3-delegated.yaml", STEP3),
    case("step3-workers.yaml", STEP3),
    case("step3-oidc.yaml", STEP3),                               // Synapse OIDC removed at step 3
    // The chart's defaults have no bcrypt v1 scheme: fine for a fresh install, not after syn2mas
    // (issue 13: an error from syn2mas_migrated, a warning from delegated_auth).
    case("fresh-mas.yaml", [OK, NEEDS_SYN2MAS, NO_BCRYPT, BCRYPT_WARN]),
    // MAS without the chart's Synapse on a legacy_auth deployment: the chart renders no marker
    // and cannot stop it; the users in Synapse's database never reach MAS (issue 13).
    case("mas-only-no-synapse.yaml", [OK, NEEDS_SYN2MAS, MARKERS_OFF, MARKERS_OFF]),
    case("syn2mas-external-synapse.yaml", [EXTERNAL, EXTERNAL, EXTERNAL, EXTERNAL]),
    case("extra/fresh-mas-no-markers.yaml", [MARKERS_OFF, NEEDS_SYN2MAS, NO_BCRYPT, Allowed(&["markers-disabled", "missing-bcrypt-scheme"])]),
    case("extra/legacy-syn2mas-no-mas.yaml", LEGACY_OR_STEP1),
    case("extra/step1-workers-no-markers.yaml", [MARKERS_OFF, MARKERS_OFF, ROLLBACK, ROLLBACK]),
    case("extra/step2-no-password-scheme.yaml", [NO_BCRYPT, NO_BCRYPT, STILL_ENABLED, RERUN]),
    case("extra/step2-saml.yaml", [UNSUPPORTED, UNSUPPORTED, STILL_ENABLED, RERUN]),
    step2("extra/step2-workers.yaml", STEP2),
    case("extra/step3-oidc-left.yaml", [SSO_LEFT, NEEDS_SYN2MAS, SSO_LEFT, SSO_LEFT]),
    // Helm 4 post-renderer input (hooks included, filename annotations).
    case("postrender-input/helm4/legacy.yaml", LEGACY_OR_STEP1),
    case("postrender-input/helm4/step1-syn2mas-dryrun.yaml", LEGACY_OR_STEP1),
    step2("postrender-input/helm4/step2-syn2mas-migrate.yaml", STEP2),
    step2("postrender-input/helm4/step2-workers.yaml", STEP2),
    case("postrender-input/helm4/step3-delegated.yaml", STEP3),
    case("extra/postrender-input/helm4/step1-workers-no-markers.yaml", [MARKERS_OFF, MARKERS_OFF, ROLLBACK, ROLLBACK]),
    case("extra/postrender-input/helm4/step2-no-password-scheme.yaml", [NO_BCRYPT, NO_BCRYPT, STILL_ENABLED, RERUN]),
    case("extra/postrender-input/helm4/step2-oidc.yaml", [SSO_CHECK_CONFIG, SSO_CHECK_CONFIG, STILL_ENABLED, RERUN]),
    step2("extra/postrender-input/helm4/step2-workers.yaml", STEP2),
    case("extra/postrender-input/helm4/step3-oidc-left.yaml", [SSO_LEFT, NEEDS_SYN2MAS, SSO_LEFT, SSO_LEFT]),
    // Helm 3 post-renderer input (no hooks: step 1 still shows in MAS's config, steps 2 and 3
    // look the same; the markers Job is invisible, so no markers-disabled warning).
    case("postrender-input/helm3/step1-syn2mas-dryrun.yaml", LEGACY_OR_STEP1),
    step2("postrender-input/helm3/step2-syn2mas-migrate.yaml", HELM3_STEP2_OR_3),
    case("extra/postrender-input/helm3/step1-workers-no-markers.yaml", LEGACY_OR_STEP1),
    step2("extra/postrender-input/helm3/step2-workers.yaml", HELM3_STEP2_OR_3),
    // From absent the chart allows both readings: the step-3 reading decides and the step-2
    // reading's missing bcrypt scheme is a warning (issue 13). From syn2mas_migrated the step-3
    // reading itself needs the scheme (an error); from delegated_auth a warning.
    step2("extra/postrender-input/helm3/step2-no-password-scheme.yaml", [BCRYPT_WARN, AMBIGUOUS, NO_BCRYPT, Allowed(&["missing-bcrypt-scheme", "unverified-step"])]),
    // Synapse OIDC with check-config assumed on: from absent the step-3 reading decides (the
    // OIDC block is left in Synapse) and step 2's reason is a warning; the same as step 3 from
    // syn2mas_migrated|delegated_auth.
    step2("extra/postrender-input/helm3/step2-oidc.yaml", [SSO_LEFT, AMBIGUOUS, SSO_LEFT, SSO_LEFT]),
    case("extra/postrender-input/helm3/step3-oidc-left.yaml", [SSO_LEFT, AMBIGUOUS, SSO_LEFT, SSO_LEFT]),
];

fn renders_dir(shared: &Path) -> PathBuf {
    shared.join("ess-renders")
}

/// Which Helm produced an input, from its folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Producer {
    Template,
    Helm3,
    Helm4,
}

fn producer(path: &str) -> Producer {
    if path.contains("postrender-input/helm3/") {
        Producer::Helm3
    } else if path.contains("postrender-input/helm4/") {
        Producer::Helm4
    } else {
        Producer::Template
    }
}

/// What one run showed.
struct Observed {
    code: i32,
    first_rule: Option<String>,
    warnings: Vec<String>,
    stdout: Vec<u8>,
    stderr: String,
}

fn check(file: &Path, state: &str) -> Observed {
    let file = file.to_str().expect("UTF-8 path");
    let out = support::run(&["check", "--state", state, file], b"");
    let report = text(&out.stdout);
    let summary = summarize(&report);
    Observed {
        code: code(&out),
        first_rule: summary.first_rule.clone(),
        warnings: summary
            .ids("warning")
            .into_iter()
            .map(str::to_string)
            .collect(),
        stdout: out.stdout,
        stderr: text(&out.stderr),
    }
}

fn post_render(input: &[u8], state: &str) -> Observed {
    let out = support::run(&["post-render", "--state", state, "--no-tty"], input);
    let stderr = text(&out.stderr);
    let summary = summarize(&stderr);
    Observed {
        code: code(&out),
        first_rule: summary.first_rule.clone(),
        warnings: summary
            .ids("warning")
            .into_iter()
            .map(str::to_string)
            .collect(),
        stdout: out.stdout,
        stderr,
    }
}

/// Compares a run with the expectation; the error names the input, state and command.
fn verdict_mismatch(what: &str, expect: Expect, got: &Observed) -> Option<String> {
    let ok = match expect {
        Allowed(warnings) => got.code == 0 && got.warnings == warnings,
        Rejected(rule) => got.code == 1 && got.first_rule.as_deref() == Some(rule),
    };
    (!ok).then(|| {
        format!(
            "{what}: expected {expect:?}, got exit {} first rule {:?} warnings {:?}\n  stderr: {}",
            got.code,
            got.first_rule,
            got.warnings,
            got.stderr.lines().next().unwrap_or("")
        )
    })
}

/// Runs `f` on every case, spread over all cores, and returns the failures in table order.
fn for_every_case(f: impl Fn(&Case) -> Vec<String> + Sync) -> Vec<String> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut results: Vec<(usize, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(case) = CASES.get(i) else { break done };
                        done.push((i, f(case)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread"))
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results
        .into_iter()
        .flat_map(|(_, failures)| failures)
        .collect()
}

fn assert_no_failures(failures: Vec<String>, runs: usize) {
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn table_covers_every_input() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let root = renders_dir(&shared);
    let mut on_disk = BTreeSet::new();
    for dir in INPUT_DIRS {
        let entries = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.join(dir).display()));
        for entry in entries {
            let name = entry
                .expect("directory entry")
                .file_name()
                .into_string()
                .expect("UTF-8 file name");
            if name.ends_with(".yaml") {
                on_disk.insert(if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                });
            }
        }
    }
    let in_table: BTreeSet<String> = CASES.iter().map(|c| c.path.to_string()).collect();
    assert_eq!(
        in_table.len(),
        CASES.len(),
        "a path is listed twice in CASES"
    );
    let missing: Vec<_> = on_disk.difference(&in_table).collect();
    let stale: Vec<_> = in_table.difference(&on_disk).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "inputs without an expectation: {missing:?}; expectations without an input: {stale:?}"
    );
}

#[test]
fn check_verdicts() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let root = renders_dir(&shared);
    let failures = for_every_case(|case| {
        let mut failures = Vec::new();
        for (state, expect) in STATES.iter().zip(case.expect) {
            let what = format!("check --state {state} {}", case.path);
            let got = check(&root.join(case.path), state);
            failures.extend(verdict_mismatch(&what, expect, &got));
            if got.stdout.is_empty() {
                failures.push(format!("{what}: no report on stdout"));
            }
        }
        failures
    });
    assert_no_failures(failures, CASES.len() * STATES.len());
}

#[test]
fn post_render_verdicts_and_output() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let root = renders_dir(&shared);
    let failures = for_every_case(|case| {
        let bytes = std::fs::read(root.join(case.path))
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", case.path));
        let input = Input::new(String::from_utf8(bytes).expect("renders are UTF-8"));
        let mut failures = Vec::new();
        for (state, expect) in STATES.iter().zip(case.expect) {
            let what = format!("post-render --state {state} < {}", case.path);
            let got = post_render(input.text.as_bytes(), state);
            failures.extend(verdict_mismatch(&what, expect, &got));
            if got.code != 0 {
                if !got.stdout.is_empty() {
                    failures.push(format!(
                        "{what}: exit {} but {} bytes on stdout (Helm would apply them)",
                        got.code,
                        got.stdout.len()
                    ));
                }
                continue;
            }
            let Ok(output) = String::from_utf8(got.stdout) else {
                failures.push(format!("{what}: stdout is not UTF-8"));
                continue;
            };
            let problems = output_problems(case, &input, &output)
                .into_iter()
                .chain(idempotence_problem(state, &output));
            failures.extend(problems.map(|p| format!("{what}: {p}")));
        }
        failures
    });
    assert_no_failures(failures, CASES.len() * STATES.len());
}

/// An input, split and parsed once for all four runs.
struct Input {
    text: String,
    /// The `---` pieces, as byte ranges of `text`.
    pieces: Vec<std::ops::Range<usize>>,
    values: Vec<Value>,
}

impl Input {
    fn new(text: String) -> Input {
        let base = text.as_ptr() as usize;
        let pieces: Vec<_> = support::split_documents(&text)
            .into_iter()
            .map(|p| {
                let start = p.as_ptr() as usize - base;
                start..start + p.len()
            })
            .collect();
        let values = pieces
            .iter()
            .map(|r| support::parse_document(&text[r.clone()]))
            .collect();
        Input {
            text,
            pieces,
            values,
        }
    }

    fn piece(&self, i: usize) -> &str {
        &self.text[self.pieces[i].clone()]
    }
}

/// A second run over the output, with the same marker, must be allowed and change nothing.
fn idempotence_problem(state: &str, output: &str) -> Option<String> {
    let again = post_render(output.as_bytes(), state);
    if again.code != 0 {
        return Some(format!(
            "a second run over the output exited {}: {}",
            again.code,
            again.stderr.trim()
        ));
    }
    (again.stdout != output.as_bytes())
        .then(|| "a second run over the output changed it (not idempotent)".to_string())
}

/// Everything that must hold for the output of an allowed post-render. Output pieces equal to
/// their input piece are not parsed again (they read the same); every other piece is.
fn output_problems(case: &Case, input: &Input, output: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let after = support::split_documents(output);
    if input.pieces.len() != after.len() {
        return vec![format!(
            "{} `---` pieces in, {} out",
            input.pieces.len(),
            after.len()
        )];
    }
    let values: Vec<Value> = after
        .iter()
        .enumerate()
        .map(|(i, new)| {
            if *new == input.piece(i) {
                input.values[i].clone()
            } else {
                support::parse_document(new)
            }
        })
        .collect();
    let documents = |vs: &[Value]| vs.iter().filter(|v| !v.is_null()).count();
    if documents(&input.values) != documents(&values) {
        problems.push(format!(
            "{} documents in, {} out",
            documents(&input.values),
            documents(&values)
        ));
    }
    let hardens = case.step2 && producer(case.path) != Producer::Helm3;
    for (i, (old, new)) in input.values.iter().zip(&values).enumerate() {
        let may_change = hardens && (is_synapse_statefulset(old) || is_job(old, "syn2mas"));
        if !may_change && input.piece(i) != after[i] {
            problems.push(format!(
                "document {} ({}) changed but should be byte-identical",
                i + 1,
                describe(old)
            ));
        }
        if producer(case.path) == Producer::Helm4 && filename(old) != filename(new) {
            problems.push(format!(
                "document {} ({}) lost or changed its Helm 4 filename annotation",
                i + 1,
                describe(old)
            ));
        }
    }
    if hardens {
        problems.extend(step2_problems(&values));
    }
    problems
}

/// Step 2 with hooks visible: every Synapse StatefulSet records its replicas, and the syn2mas
/// hook runs after Synapse's check-config hook and the markers pre-check.
fn step2_problems(values: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let sets: Vec<&Value> = values
        .iter()
        .filter(|v| is_synapse_statefulset(v))
        .collect();
    if sets.is_empty() {
        problems.push("step 2 but no Synapse StatefulSet in the output".to_string());
    }
    for set in sets {
        let replicas = set
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .to_string();
        let restore = annotation(set, "ess-guard.element.io/restore-replicas");
        if restore != Some(replicas.as_str()) {
            problems.push(format!(
                "{}: restore-replicas is {restore:?}, spec.replicas is {replicas}",
                describe(set)
            ));
        }
    }
    let weight_of = |name: &str| values.iter().find(|v| is_job(v, name)).map(hook_weight);
    match weight_of("syn2mas") {
        None => {
            problems.push("step 2 with hooks visible but no syn2mas Job in the output".to_string())
        }
        Some(syn2mas) => {
            for earlier in ["synapse-check-config", "deployment-markers-pre"] {
                if let Some(w) = weight_of(earlier).filter(|w| syn2mas <= *w) {
                    problems.push(format!(
                        "syn2mas hook weight {syn2mas} is not greater than {earlier}'s {w}"
                    ));
                }
            }
        }
    }
    problems
}

fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels")?.get(key)?.as_str()
}

fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")?.get(key)?.as_str()
}

fn filename(v: &Value) -> Option<&str> {
    annotation(v, "postrenderer.helm.sh/postrender-filename")
}

fn kind(v: &Value) -> &str {
    v.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// A Synapse process: kind StatefulSet, component matrix-server, name label `synapse-*`.
fn is_synapse_statefulset(v: &Value) -> bool {
    kind(v) == "StatefulSet"
        && label(v, "app.kubernetes.io/component") == Some("matrix-server")
        && label(v, "app.kubernetes.io/name").is_some_and(|n| n.starts_with("synapse-"))
}

fn is_job(v: &Value, name_label: &str) -> bool {
    kind(v) == "Job" && label(v, "app.kubernetes.io/name") == Some(name_label)
}

fn hook_weight(v: &Value) -> i64 {
    annotation(v, "helm.sh/hook-weight").map_or(0, |w| {
        w.trim()
            .parse()
            .unwrap_or_else(|_| panic!("hook weight {w:?}"))
    })
}

fn describe(v: &Value) -> String {
    let name = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{} {name}", kind(v))
}
