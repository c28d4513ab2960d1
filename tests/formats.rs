//! Golden tests of every `check --format` on a fixed input (`fixtures/formats/`), plus the
//! properties the goldens cannot show: SARIF validates against the official SARIF 2.1.0 schema,
//! JUnit XML parses and its counts add up, `--fail-on warning` shows in every format, and no
//! format prints Secret data.
//!
//! `ESS_GUARD_UPDATE_GOLDEN=1 cargo test --test formats` rewrites `tests/golden/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quick_xml::events::Event;
use serde_json::Value;

const INPUTS: [&str; 2] = [
    "fixtures/formats/step2-rejected.yaml",
    "fixtures/formats/step2-allowed.yaml",
];
const FORMATS: [(&str, &str); 6] = [
    ("text", "txt"),
    ("json", "json"),
    ("sarif", "sarif"),
    ("junit", "xml"),
    ("github", "txt"),
    ("gitlab", "json"),
];
/// The Synapse OIDC client secret in the fixture (in a Secret, base64-encoded).
const SECRET: &str = "FIXTURE-CLIENT-SECRET-never-printed";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs ess-guard from the crate root, so inputs are named by relative paths.
fn ess_guard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ess-guard"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ess-guard: {e}"))
}

fn check(format: &str, inputs: &[&str], extra: &[&str]) -> (String, i32) {
    let mut args = vec!["check", "--state", "legacy_auth", "--format", format];
    args.extend_from_slice(extra);
    args.extend_from_slice(inputs);
    let out = ess_guard(&args);
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("stdout is not UTF-8: {e}")),
        out.status.code().unwrap_or(-1),
    )
}

/// The output with what may change without a behaviour change (the crate version) masked.
fn normalise(text: &str) -> String {
    text.replace(
        &format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION")),
        "\"version\": \"<version>\"",
    )
}

/// Parses a report as JSON; output that is not JSON fails the test (it must never read as empty).
fn json(text: &str, what: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} is not JSON ({e}):\n{text}"))
}

/// The array at `value`; anything else fails the test rather than becoming an empty list.
fn array<'a>(value: &'a Value, what: &str) -> &'a Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{what} is not a JSON array: {value}"))
}

fn golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    let actual = normalise(actual);
    if std::env::var_os("ESS_GUARD_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, &actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .header("golden", "actual")
            .to_string();
        panic!("{} differs from the output (ESS_GUARD_UPDATE_GOLDEN=1 cargo test --test formats rewrites it):\n{diff}", path.display());
    }
}

#[test]
fn goldens() {
    for (format, ext) in FORMATS {
        let (out, code) = check(format, &INPUTS, &[]);
        assert_eq!(code, 1, "{format}: one input is rejected");
        assert!(
            !out.contains(&*root().to_string_lossy()),
            "{format}: absolute path in output"
        );
        golden(&format!("check.{format}.{ext}"), &out);
    }
}

#[test]
fn no_format_prints_secret_data() {
    let fixture = std::fs::read_to_string(root().join(INPUTS[0])).unwrap_or_default();
    let encoded = fixture
        .lines()
        .find_map(|l| l.trim().strip_prefix("user-oidc.yaml: "))
        .unwrap_or_else(|| panic!("the fixture holds the encoded Synapse config"))
        .to_string();
    for (format, _) in FORMATS {
        let (out, _) = check(format, &INPUTS, &[]);
        assert!(
            !out.contains(SECRET) && !out.contains(&encoded),
            "{format} prints Secret data"
        );
    }
}

fn schema_validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("tests/schemas/sarif-schema-2.1.0.json"))
        .unwrap_or_default();
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("schema: {e}"));
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

#[test]
fn sarif_is_valid_against_the_official_schema() {
    let validator = schema_validator();
    for extra in [&[][..], &["--fail-on", "warning"][..]] {
        let (out, _) = check("sarif", &INPUTS, extra);
        let log: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("SARIF is not JSON: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&log)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "SARIF fails the schema:\n{}",
            errors.join("\n")
        );

        let run = &log["runs"][0];
        let rules = array(&run["tool"]["driver"]["rules"], "SARIF rules");
        assert_eq!(
            rules.len(),
            ess_guard::rules::RuleId::ALL.len(),
            "every rule is listed"
        );
        for result in array(&run["results"], "SARIF results") {
            let index = result["ruleIndex"].as_u64().unwrap_or(u64::MAX) as usize;
            assert_eq!(
                rules.get(index).map(|r| &r["id"]),
                Some(&result["ruleId"]),
                "ruleIndex points at ruleId"
            );
        }
        let suppressed: Vec<&Value> = array(&run["results"], "SARIF results")
            .iter()
            .filter(|r| r.get("suppressions").is_some())
            .collect();
        assert_eq!(suppressed.len(), 1);
        assert_eq!(suppressed[0]["ruleId"], "unmapped-oidc-provider");
        assert_eq!(suppressed[0]["suppressions"][0]["kind"], "inSource");
    }
    // A result the schema must refuse, so the validator is known to be strict.
    let mut bad: Value = json(&check("sarif", &INPUTS, &[]).0, "SARIF");
    bad["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(
        !validator.is_valid(&bad),
        "the schema refuses an unknown level"
    );
}

/// A JUnit suite as parsed: its attributes and test cases (name, outcome).
#[derive(Debug, Default)]
struct Suite {
    name: String,
    tests: usize,
    failures: usize,
    skipped: usize,
    cases: Vec<(String, &'static str)>,
}

fn parse_junit(xml: &str) -> Vec<Suite> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut suites: Vec<Suite> = Vec::new();
    let attr = |e: &quick_xml::events::BytesStart, name: &str| -> String {
        e.try_get_attribute(name)
            .ok()
            .flatten()
            .and_then(|a| {
                a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                    .ok()
                    .map(|v| v.into_owned())
            })
            .unwrap_or_default()
    };
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("JUnit XML does not parse: {e}"))
        {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "testsuite" => suites.push(Suite {
                    name: attr(&e, "name"),
                    tests: attr(&e, "tests").parse().unwrap_or(usize::MAX),
                    failures: attr(&e, "failures").parse().unwrap_or(usize::MAX),
                    skipped: attr(&e, "skipped").parse().unwrap_or(usize::MAX),
                    cases: Vec::new(),
                }),
                "testcase" => {
                    if let Some(s) = suites.last_mut() {
                        s.cases.push((attr(&e, "name"), "passed"));
                    }
                }
                tag @ ("failure" | "skipped") => {
                    if let Some((_, outcome)) = suites.last_mut().and_then(|s| s.cases.last_mut()) {
                        *outcome = if tag == "failure" {
                            "failure"
                        } else {
                            "skipped"
                        };
                    }
                }
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    suites
}

#[test]
fn junit_parses_and_counts_add_up() {
    let (out, _) = check("junit", &INPUTS, &[]);
    let suites = parse_junit(&out);
    assert_eq!(
        suites.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        INPUTS
    );
    for s in &suites {
        assert!(!s.cases.is_empty());
        assert_eq!(s.tests, s.cases.len(), "{}", s.name);
        assert_eq!(
            s.failures,
            s.cases.iter().filter(|c| c.1 == "failure").count(),
            "{}",
            s.name
        );
        assert_eq!(
            s.skipped,
            s.cases.iter().filter(|c| c.1 == "skipped").count(),
            "{}",
            s.name
        );
    }
    let outcome = |suite: &Suite, name: &str| suite.cases.iter().find(|c| c.0 == name).map(|c| c.1);
    let rejected = &suites[0];
    assert_eq!(
        outcome(
            rejected,
            "missing-bcrypt-scheme ConfigMap ess/ess-matrix-authentication-service"
        ),
        Some("failure")
    );
    assert_eq!(
        outcome(rejected, "duplicate-key StatefulSet ess/ess-synapse-main"),
        Some("passed")
    );
    assert_eq!(
        outcome(rejected, "unmapped-oidc-provider Secret ess/ess-synapse"),
        Some("skipped")
    );
    assert_eq!(outcome(rejected, "verdict"), Some("failure"));
    assert_eq!(outcome(&suites[1], "verdict"), Some("passed"));
}

#[test]
fn fail_on_warning_shows_in_every_format() {
    let allowed = &INPUTS[1..];
    for (format, _) in FORMATS {
        let (_, code) = check(format, allowed, &[]);
        assert_eq!(code, 0, "{format}: warnings alone do not reject by default");
        let (_, code) = check(format, allowed, &["--fail-on", "warning"]);
        assert_eq!(code, 1, "{format}: --fail-on warning rejects on warnings");
    }
    let (sarif, _) = check("sarif", allowed, &["--fail-on", "warning"]);
    let log = json(&sarif, "SARIF");
    let levels: Vec<(String, String)> = array(&log["runs"][0]["results"], "SARIF results")
        .iter()
        .map(|r| {
            (
                r["ruleId"].as_str().unwrap_or("").to_string(),
                r["level"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(
        levels.contains(&("suppression-without-reason".into(), "error".into())),
        "{levels:?}"
    );
    // Rejected now, so nothing is changed and the note about the change is gone.
    assert!(
        !levels
            .iter()
            .any(|(rule, _)| rule == "syn2mas-hook-reordered"),
        "{levels:?}"
    );
    let (sarif, _) = check("sarif", allowed, &[]);
    let log = json(&sarif, "SARIF");
    let levels: Vec<&str> = array(&log["runs"][0]["results"], "SARIF results")
        .iter()
        .filter_map(|r| r["level"].as_str())
        .collect();
    assert_eq!(levels, vec!["warning", "warning", "note"]);

    let (github, _) = check("github", allowed, &["--fail-on", "warning"]);
    assert!(
        github
            .lines()
            .any(|l| l.starts_with("::error ") && l.contains("suppression-without-reason")),
        "{github}"
    );
    let (github, _) = check("github", allowed, &[]);
    assert!(
        github
            .lines()
            .any(|l| l.starts_with("::warning ") && l.contains("suppression-without-reason")),
        "{github}"
    );

    let (gitlab, _) = check("gitlab", allowed, &["--fail-on", "warning"]);
    let issues = json(&gitlab, "GitLab report");
    let severities: Vec<&str> = array(&issues, "GitLab report")
        .iter()
        .filter_map(|i| i["severity"].as_str())
        .collect();
    assert_eq!(severities, vec!["major", "major"]);

    let (junit, _) = check("junit", allowed, &["--fail-on", "warning"]);
    let suite = &parse_junit(&junit)[0];
    assert_eq!(
        suite.failures, 3,
        "two warnings and the verdict fail: {suite:?}"
    );
}

#[test]
fn gitlab_fingerprints_are_stable_and_distinct() {
    let (a, _) = check("gitlab", &INPUTS, &[]);
    let (b, _) = check("gitlab", &INPUTS, &[]);
    assert_eq!(a, b);
    let issues = json(&a, "GitLab report");
    let mut prints: Vec<&str> = array(&issues, "GitLab report")
        .iter()
        .filter_map(|i| i["fingerprint"].as_str())
        .collect();
    let n = prints.len();
    prints.sort_unstable();
    prints.dedup();
    assert_eq!(prints.len(), n, "fingerprints are unique");
}
