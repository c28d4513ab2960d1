//! The chart's own marker rules (issue 13 items 1-3, 5): read from the markers Job when the
//! render shows it, from a named profile when it hides it, through the real binary on the real
//! renders in `$ESS_GUARD_SHARED/ess-renders` (the 26.8.2-dev chart and the pr1584 overlay).
//!
//! Expected verdicts are written from the charts' `-markers` lists (ess-renders/README.md,
//! pr1584/README.md), not recorded from the binary.

mod support;

use std::path::PathBuf;

use support::{code, summarize, text};

const RESTORE: &str = "ess-guard.element.io/restore-replicas";

fn renders() -> Option<PathBuf> {
    Some(support::shared_dir()?.join("ess-renders"))
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn post_render(input: &str, args: &[&str]) -> Outcome {
    let mut all = vec!["post-render", "--no-tty"];
    all.extend_from_slice(args);
    let out = support::run(&all, input.as_bytes());
    Outcome {
        code: code(&out),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

/// `check` on stdin: the report (always printed) is on stdout.
fn check(input: &str, args: &[&str]) -> Outcome {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    all.push("-");
    let out = support::run(&all, input.as_bytes());
    Outcome {
        code: code(&out),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

fn notes(report: &str) -> Vec<String> {
    summarize(report)
        .ids("note")
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn warnings(report: &str) -> Vec<String> {
    summarize(report)
        .ids("warning")
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// pr1584 allows step 2 from syn2mas_migrated (`…:syn2mas_migrated:legacy_auth;syn2mas_migrated`):
/// allowed with the note `stage2-repeated`, and no scale-down annotations (the syn2mas Job skips
/// the migration). The 26.8.2-dev chart refuses the same (`syn2mas-still-enabled`).
#[test]
fn stage2_repeated_on_a_chart_that_allows_it() {
    let Some(dir) = renders() else { return };
    for (path, state) in [
        ("pr1584/step2-syn2mas-migrate.yaml", "syn2mas_migrated"),
        ("pr1584/step2-workers.yaml", "syn2mas_migrated"),
        (
            "pr1584/postrender-input/helm4/step2-syn2mas-migrate.yaml",
            "syn2mas_migrated",
        ),
    ] {
        let input = read(&dir.join(path));
        let report = check(&input, &["--state", state]);
        assert_eq!(report.code, 0, "{path}: {}", report.stdout);
        assert!(
            notes(&report.stdout).contains(&"stage2-repeated".to_string()),
            "{path}: {}",
            report.stdout
        );
        let run = post_render(&input, &["--state", state]);
        assert_eq!(run.code, 0, "{path}: {}", run.stderr);
        assert!(
            !run.stdout.contains(RESTORE),
            "{path}: a repeated step 2 must not be annotated for a scale-down"
        );
        assert!(!run.stdout.is_empty());
        // From legacy_auth it is the real migration: annotated as before.
        let run = post_render(&input, &["--state", "legacy_auth"]);
        assert_eq!(run.code, 0, "{path}: {}", run.stderr);
        assert!(run.stdout.contains(RESTORE), "{path}");
        let report = check(&input, &["--state", "legacy_auth"]);
        assert!(!notes(&report.stdout).contains(&"stage2-repeated".to_string()));
    }
    // From delegated_auth syn2mas may never run again, whatever the chart.
    let input = read(&dir.join("pr1584/step2-syn2mas-migrate.yaml"));
    let run = post_render(&input, &["--state", "delegated_auth"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        summarize(&run.stderr).first_rule.as_deref(),
        Some("syn2mas-rerun")
    );
    // The old chart: stage 2 once only.
    let input = read(&dir.join("step2-syn2mas-migrate.yaml"));
    let run = post_render(&input, &["--state", "syn2mas_migrated"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        summarize(&run.stderr).first_rule.as_deref(),
        Some("syn2mas-still-enabled")
    );
    assert!(run.stdout.is_empty());
}

/// Helm 3 hides the markers Job: the profile of the `helm.sh/chart` version decides, the report
/// names it, `--chart-profile` overrides it, and a version the table does not know gets the
/// stricter profile with `unknown-chart-version`.
#[test]
fn helm3_profiles_from_the_chart_version() {
    let Some(dir) = renders() else { return };
    let pr1584 = read(&dir.join("pr1584/postrender-input/helm3/step2-syn2mas-migrate.yaml"));
    // repeatable-stage2 (26.8.2-dev-pr1584): both readings are allowed from syn2mas_migrated.
    let report = check(&pr1584, &["--state", "syn2mas_migrated"]);
    assert_eq!(report.code, 0, "{}", report.stdout);
    assert!(
        report
            .stdout
            .contains("profile repeatable-stage2 (chart matrix-stack-26.8.2-dev-pr1584)"),
        "{}",
        report.stdout
    );
    assert!(warnings(&report.stdout).is_empty(), "{}", report.stdout);
    let run = post_render(&pr1584, &["--state", "syn2mas_migrated"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains(RESTORE));
    // --chart-profile one-upgrade-stage2: the step-2 reading is one the chart refuses.
    let run = post_render(
        &pr1584,
        &[
            "--state",
            "syn2mas_migrated",
            "--chart-profile",
            "one-upgrade-stage2",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run
        .stderr
        .contains("profile one-upgrade-stage2 (--chart-profile)"));
    assert_eq!(warnings(&run.stderr), ["unverified-step"], "{}", run.stderr);
    // --step migrate settles it: on one-upgrade-stage2 that is refused, on the real chart allowed.
    let run = post_render(
        &pr1584,
        &[
            "--state",
            "syn2mas_migrated",
            "--step",
            "migrate",
            "--chart-profile",
            "one-upgrade-stage2",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = post_render(
        &pr1584,
        &["--state", "syn2mas_migrated", "--step", "migrate"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.contains(RESTORE));
    let report = check(
        &pr1584,
        &["--state", "syn2mas_migrated", "--step", "migrate"],
    );
    assert!(
        notes(&report.stdout).contains(&"stage2-repeated".to_string()),
        "{}",
        report.stdout
    );

    // An unknown version never gets the looser reading.
    let unknown = pr1584.replace("matrix-stack-26.8.2-dev-pr1584", "matrix-stack-27.1.0");
    let run = post_render(
        &unknown,
        &["--state", "syn2mas_migrated", "--step", "migrate"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        summarize(&run.stderr).first_rule.as_deref(),
        Some("syn2mas-still-enabled")
    );
    assert!(
        warnings(&run.stderr).contains(&"unknown-chart-version".to_string()),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--chart-profile"), "{}", run.stderr);
    // ...unless the operator chooses it.
    let run = post_render(
        &unknown,
        &[
            "--state",
            "syn2mas_migrated",
            "--step",
            "migrate",
            "--chart-profile",
            "repeatable-stage2",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!warnings(&run.stderr).contains(&"unknown-chart-version".to_string()));
    // Where the profiles agree the version does not matter: no warning.
    let run = post_render(&unknown, &["--state", "legacy_auth", "--step", "migrate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!warnings(&run.stderr).contains(&"unknown-chart-version".to_string()));
}

/// The render's own list decides with the invariants, and the stricter wins: a chart list that
/// allows a way back to legacy_auth is still refused (`no-rollback` + `stricter-than-chart`);
/// a chart list stricter than ess-guard's table refuses with the chart's own message.
#[test]
fn render_rules_and_invariants_the_stricter_wins() {
    let Some(dir) = renders() else { return };
    let step1 = read(&dir.join("step1-syn2mas-dryrun.yaml"));
    let entry = "ess-markers:MATRIX_STACK_MSC3861:legacy_auth:legacy_auth";
    assert!(step1.contains(entry));
    let loose = step1.replace(entry, &format!("{entry};delegated_auth"));
    let run = post_render(&loose, &["--state", "delegated_auth"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        summarize(&run.stderr).first_rule.as_deref(),
        Some("no-rollback")
    );
    assert!(notes(&run.stderr).contains(&"stricter-than-chart".to_string()));

    let step3 = read(&dir.join("step3-delegated.yaml"));
    let entry = "ess-markers:MATRIX_STACK_MSC3861:delegated_auth:delegated_auth;syn2mas_migrated";
    assert!(step3.contains(entry));
    let strict = step3.replace(
        entry,
        "ess-markers:MATRIX_STACK_MSC3861:delegated_auth:delegated_auth",
    );
    let run = post_render(&strict, &["--state", "syn2mas_migrated"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        summarize(&run.stderr).first_rule.as_deref(),
        Some("chart-refuses-transition")
    );
    assert!(run.stderr.contains(
        "marker prevented transitioning to value delegated_auth from value syn2mas_migrated"
    ));
    // The same render from delegated_auth is what the chart allows.
    assert_eq!(post_render(&strict, &["--state", "delegated_auth"]).code, 0);
}

/// A malformed `-markers` entry is bad input (exit 2, one line, nothing on stdout), never a guess.
#[test]
fn malformed_markers_entries_are_bad_input() {
    let Some(dir) = renders() else { return };
    let step2 = read(&dir.join("step2-syn2mas-migrate.yaml"));
    let entry = "ess-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:legacy_auth";
    assert!(step2.contains(entry));
    for bad in [
        "ess-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:legacy_auth:x",
        "ess-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:legacy_auth,junk",
        "ess-markers:MATRIX_STACK_MSC3861:syn2mas_migrated:",
        "ess-markers:MATRIX_STACK_MSC3861:stage9:legacy_auth",
    ] {
        let run = post_render(&step2.replace(entry, bad), &["--state", "legacy_auth"]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{bad}");
        assert_eq!(run.stderr.lines().count(), 1, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("-markers"), "{bad}: {}", run.stderr);
    }
}

/// `rules` and `plan` show the profile table.
#[test]
fn rules_and_plan_show_the_profile_table() {
    let out = support::run(&["rules"], b"");
    let rules = text(&out.stdout);
    for p in [
        "one-upgrade-stage2",
        "repeatable-stage2",
        "26.8.2-dev-pr1584",
    ] {
        assert!(rules.contains(p), "{p}: {rules}");
    }
    let out = support::run(
        &[
            "plan",
            "--state",
            "syn2mas_migrated",
            "--chart-profile",
            "repeatable-stage2",
        ],
        b"",
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(plan.contains("allowed:  migrate, finalize"), "{plan}");
    assert!(
        plan.contains("profile repeatable-stage2 (--chart-profile)"),
        "{plan}"
    );
    let out = support::run(&["plan", "--state", "syn2mas_migrated"], b"");
    let plan = text(&out.stdout);
    assert!(plan.contains("allowed:  finalize"), "{plan}");
    assert!(
        plan.contains("repeatable-stage2"),
        "the table lists every profile: {plan}"
    );
}

/// `values` decides with the profile of the chart version: the built-in defaults' 26.8.2-dev,
/// `--chart-version`, or `--chart-profile`; an unknown version gets the stricter profile.
#[test]
fn values_follow_the_chart_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let values = dir.path().join("step2.yaml");
    std::fs::write(
        &values,
        "matrixAuthenticationService:\n  syn2mas:\n    enabled: true\n    dryRun: false\n  additional:\n    pw:\n      config: |\n        passwords:\n          schemes:\n            - {version: 1, algorithm: bcrypt}\n            - {version: 2, algorithm: argon2id}\n",
    )
    .expect("write values");
    let values = values.to_str().expect("UTF-8 path");
    let run = |extra: &[&str]| {
        let mut args = vec!["values", "-f", values, "--state", "syn2mas_migrated"];
        args.extend_from_slice(extra);
        let out = support::run(&args, b"");
        Outcome {
            code: code(&out),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        }
    };
    let default = run(&[]);
    assert_eq!(default.code, 1, "{}", default.stderr);
    assert_eq!(
        summarize(&default.stderr).first_rule.as_deref(),
        Some("syn2mas-still-enabled")
    );
    assert!(default.stderr.contains("chart matrix-stack-26.8.2-dev)"));
    assert!(default.stdout.is_empty());
    for extra in [
        &["--chart-version", "26.8.2-dev-pr1584"][..],
        &["--chart-profile", "repeatable-stage2"][..],
    ] {
        let allowed = run(extra);
        assert_eq!(allowed.code, 0, "{extra:?}: {}", allowed.stderr);
        assert!(notes(&allowed.stderr).contains(&"stage2-repeated".to_string()));
        assert!(!allowed.stdout.is_empty());
    }
    let unknown = run(&["--chart-version", "27.0.0"]);
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert!(warnings(&unknown.stderr).contains(&"unknown-chart-version".to_string()));
}
