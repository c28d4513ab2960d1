//! The bad-input corpus (`fixtures/bad/`, plus big inputs generated here) through the real
//! binary: every command that reads the input must fail with exit 2, one line on stderr naming
//! the input (and the document and its template when there is one), nothing at all on stdout
//! (Helm applies whatever a post-renderer prints), no panic, and bounded time and memory.
//!
//! The bounds are safety limits for a debug build on a shared 2-core machine, not speed tests.

#[path = "support/run.rs"]
mod run;

use std::path::{Path, PathBuf};
use std::time::Duration;

use run::{run, Run};

const MAX_WALL: Duration = Duration::from_secs(20);
const MAX_RSS_KIB: u64 = 1024 * 1024;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("fixtures/bad").join(name)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The checks every failing run must pass. `input` is how the error must name the input.
fn assert_bad(what: &str, r: &Run, input: &str, expect: &[&str]) {
    let err = r.stderr_text();
    assert!(!err.contains("panicked"), "{what}: panicked:\n{err}");
    assert_eq!(
        r.code,
        Some(2),
        "{what}: exit {:?} (signal {:?}), stderr:\n{err}",
        r.code,
        r.signal
    );
    assert!(
        r.stdout.is_empty(),
        "{what}: {} bytes on stdout:\n{}",
        r.stdout.len(),
        r.stdout_text()
    );
    assert_eq!(
        err.matches('\n').count(),
        1,
        "{what}: not exactly one line on stderr:\n{err}"
    );
    assert!(
        err.ends_with('\n'),
        "{what}: stderr line not terminated: {err:?}"
    );
    assert!(err.starts_with("ess-guard: error: "), "{what}: {err}");
    assert!(
        err.contains(input),
        "{what}: error does not name the input {input:?}: {err}"
    );
    for e in expect {
        assert!(
            err.contains(e),
            "{what}: error does not mention {e:?}: {err}"
        );
    }
    assert_bounded(what, r);
}

fn assert_bounded(what: &str, r: &Run) {
    assert!(r.wall < MAX_WALL, "{what}: took {:?}", r.wall);
    assert!(
        r.max_rss_kib < MAX_RSS_KIB,
        "{what}: peak RSS {} KiB",
        r.max_rss_kib
    );
}

/// `check --state absent FILE` and `post-render --state absent --no-tty` (stdin) on one render.
fn render_case(name: &str, path: &Path, expect: &[&str]) {
    guard_case(name, path, expect);
    diff_case(name, path, expect);
}

/// `diff` reads both sides as plain renders: OLD or NEW bad, in every output format, from a
/// file and from stdin.
fn diff_case(name: &str, path: &Path, expect: &[&str]) {
    let file = path.display().to_string();
    let valid = fixture("valid-legacy.yaml").display().to_string();
    for output in ["unified", "summary", "json"] {
        let r = run(&["diff", "-o", output, &file, &valid], None);
        assert_bad(
            &format!("{name}: diff -o {output} BAD VALID"),
            &r,
            &file,
            expect,
        );
        let r = run(&["diff", "-o", output, &valid, &file], None);
        assert_bad(
            &format!("{name}: diff -o {output} VALID BAD"),
            &r,
            &file,
            expect,
        );
    }
    let r = run(&["diff", "-", &valid], Some(read(path)));
    assert_bad(&format!("{name}: diff - VALID"), &r, "-: ", expect);
}

/// The commands that guard: check, post-render and `diff --guard`. For inputs that only the
/// guard refuses (a bad markers argument, an empty release), not a plain `diff`.
fn guard_case(name: &str, path: &Path, expect: &[&str]) {
    let file = path.display().to_string();
    let r = run(&["diff", "--guard", "--state", "absent", &file], None);
    assert_bad(&format!("{name}: diff --guard"), &r, &file, expect);
    let r = run(&["check", "--state", "absent", &file], None);
    assert_bad(&format!("{name}: check"), &r, &file, expect);
    for format in ["json", "sarif"] {
        let r = run(
            &["check", "--state", "absent", "--format", format, &file],
            None,
        );
        assert_bad(
            &format!("{name}: check --format {format}"),
            &r,
            &file,
            expect,
        );
    }
    let r = run(
        &["post-render", "--state", "absent", "--no-tty"],
        Some(read(path)),
    );
    assert_bad(&format!("{name}: post-render"), &r, "stdin", expect);
    // Helm 3 calls the post-renderer with flags only.
    let r = run(&["--state", "absent", "--no-tty"], Some(read(path)));
    assert_bad(
        &format!("{name}: post-render (flags only)"),
        &r,
        "stdin",
        expect,
    );
}

/// `values -f FILE --state absent`.
fn values_case(name: &str, path: &Path, expect: &[&str]) {
    let file = path.display().to_string();
    let r = run(&["values", "-f", &file, "--state", "absent"], None);
    assert_bad(&format!("{name}: values"), &r, &file, expect);
}

const SYNAPSE_CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ess-synapse\n  labels:\n    app.kubernetes.io/component: matrix-server\n    app.kubernetes.io/name: synapse\n";
/// The head of a Synapse StatefulSet, up to its labels: a document post-render reads by its
/// skeleton on the fast path.
const SYNAPSE_STS: &str = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: ess-synapse-main\n  labels:\n    app.kubernetes.io/component: matrix-server\n    app.kubernetes.io/name: synapse-main\n";

/// A render whose second document is `doc`, behind a valid one, with a `# Source:` comment.
fn generated(dir: &Path, name: &str, doc: &[u8]) -> PathBuf {
    let valid = read(&fixture("valid-legacy.yaml"));
    let mut bytes = valid;
    bytes.extend_from_slice(b"---\n# Source: mini-stack/templates/generated.yaml\n");
    bytes.extend_from_slice(doc);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

const STS_SOURCE: &str = "document 3 (mini-stack/templates/synapse/synapse_statefulset.yaml)";
const CM_SOURCE: &str = "document 1 (mini-stack/templates/synapse/synapse_configmap.yaml)";
const JOB_SOURCE: &str = "document 4 (mini-stack/templates/deployment-markers/job.yaml)";
const GENERATED_SOURCE: &str = "document 5 (mini-stack/templates/generated.yaml)";

#[test]
fn the_valid_base_is_allowed() {
    let path = fixture("valid-legacy.yaml");
    let r = run(
        &[
            "check",
            "--state",
            "legacy_auth",
            &path.display().to_string(),
        ],
        None,
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr_text());
    let r = run(
        &["post-render", "--state", "legacy_auth", "--no-tty"],
        Some(read(&path)),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr_text());
    assert_eq!(
        r.stdout,
        read(&path),
        "post-render changed an allowed legacy render"
    );
}

#[test]
fn invalid_yaml_in_the_first_document() {
    render_case(
        "invalid-yaml-first",
        &fixture("invalid-yaml-first.yaml"),
        &[CM_SOURCE, "invalid YAML"],
    );
}

#[test]
fn invalid_yaml_in_a_middle_document() {
    render_case(
        "invalid-yaml-middle",
        &fixture("invalid-yaml-middle.yaml"),
        &[STS_SOURCE, "invalid YAML"],
    );
}

#[test]
fn invalid_yaml_in_the_last_document() {
    render_case(
        "invalid-yaml-last",
        &fixture("invalid-yaml-last.yaml"),
        &[JOB_SOURCE, "invalid YAML"],
    );
}

#[test]
fn tabs_for_indentation() {
    render_case("tabs", &fixture("tabs.yaml"), &[STS_SOURCE, "invalid YAML"]);
}

#[test]
fn unterminated_quote() {
    render_case(
        "unterminated-quote",
        &fixture("unterminated-quote.yaml"),
        &[CM_SOURCE, "quoted scalar"],
    );
}

#[test]
fn a_document_that_is_not_a_mapping() {
    render_case(
        "not-a-mapping",
        &fixture("not-a-mapping.yaml"),
        &["document 2 (mini-stack/templates/list.yaml)", "mapping"],
    );
}

#[test]
fn a_document_without_kind() {
    render_case(
        "missing-kind",
        &fixture("missing-kind.yaml"),
        &[STS_SOURCE, "`kind` is missing"],
    );
}

#[test]
fn metadata_that_is_a_list() {
    render_case(
        "metadata-list",
        &fixture("metadata-list.yaml"),
        &[CM_SOURCE, "`metadata` must be a mapping"],
    );
}

#[test]
fn replicas_that_are_a_string() {
    render_case(
        "replicas-string",
        &fixture("replicas-string.yaml"),
        &[STS_SOURCE, "spec.replicas", "\"two\""],
    );
}

#[test]
fn a_nul_byte() {
    render_case(
        "nul-byte",
        &fixture("nul-byte.yaml"),
        &[
            "document 2 (mini-stack/templates/synapse/synapse_service.yaml), line 23",
            "NUL",
        ],
    );
}

#[test]
fn invalid_utf8() {
    render_case(
        "invalid-utf8",
        &fixture("invalid-utf8.yaml"),
        &[
            "document 3 (mini-stack/templates/synapse/synapse_statefulset.yaml), line 41",
            "UTF-8",
        ],
    );
}

#[test]
fn markers_argument_with_too_few_fields() {
    guard_case(
        "markers-arg-too-few-fields",
        &fixture("markers-arg-too-few-fields.yaml"),
        &[
            JOB_SOURCE,
            "-markers ess-markers:MATRIX_STACK_MSC3861:legacy_auth",
            "3 fields",
        ],
    );
}

#[test]
fn a_50_mb_scalar() {
    let dir = tempdir();
    let mut doc = format!("{SYNAPSE_CM}data:\n  big: ").into_bytes();
    doc.extend(std::iter::repeat_n(b'a', 50 * 1024 * 1024));
    doc.push(b'\n');
    let path = generated(dir.path(), "scalar-50mb.yaml", &doc);
    render_case("scalar-50mb", &path, &[GENERATED_SOURCE, "bytes"]);
    // Also where no document separator helps: the whole input is one document.
    let path = dir.path().join("scalar-50mb-alone.yaml");
    std::fs::write(&path, &doc).unwrap_or_else(|e| panic!("{e}"));
    render_case(
        "scalar-50mb-alone",
        &path,
        &["document 1 (line 1)", "bytes"],
    );
}

#[test]
fn one_hundred_thousand_empty_documents() {
    let dir = tempdir();
    let path = dir.path().join("empty-100k.yaml");
    std::fs::write(&path, "---\n".repeat(100_000)).unwrap_or_else(|e| panic!("{e}"));
    guard_case(
        "empty-100k",
        &path,
        &[
            "100000 document(s)",
            "no Kubernetes object",
            "empty release",
        ],
    );
    let path = dir.path().join("comments-100k.yaml");
    std::fs::write(
        &path,
        "---\n# Source: c/templates/x.yaml\n\n".repeat(100_000),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    guard_case("comments-100k", &path, &["no Kubernetes object"]);
}

#[test]
fn ten_thousand_levels_of_nesting() {
    let dir = tempdir();
    let flow = format!(
        "{SYNAPSE_CM}nested: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let path = generated(dir.path(), "deep-flow.yaml", flow.as_bytes());
    render_case(
        "deep-flow",
        &path,
        &[GENERATED_SOURCE, "nested more than 128 levels"],
    );
    let map = format!(
        "{SYNAPSE_CM}nested: {}1{}\n",
        "{a: ".repeat(10_000),
        "}".repeat(10_000)
    );
    let path = generated(dir.path(), "deep-map.yaml", map.as_bytes());
    render_case(
        "deep-map",
        &path,
        &[GENERATED_SOURCE, "nested more than 128 levels"],
    );
    // Block nesting: 10 000 levels of indentation would be 100 MB, so 2 000 (4 MB): refused by
    // the size limit; 1 000 (1 MB) reaches the parser's recursion limit.
    let block: String = (0..1_000)
        .map(|i| format!("{}a:\n", " ".repeat(i)))
        .collect();
    let path = generated(
        dir.path(),
        "deep-block.yaml",
        format!("{SYNAPSE_CM}{block}").as_bytes(),
    );
    render_case("deep-block", &path, &[GENERATED_SOURCE, "recursion limit"]);
    values_case(
        "deep-flow values",
        &write(
            dir.path(),
            "deep-values.yaml",
            &format!("a: {}\n", "[".repeat(10_000)),
        ),
        &["nested more than 128 levels"],
    );
}

/// 129 `[` inside a quoted label of a Synapse StatefulSet: valid YAML, but over the count the
/// full parse makes before parsing (brackets in strings count too). Every command refuses it
/// alike; before the fix the fast path read the StatefulSet and post-render accepted what
/// check refused (found by the `subset` fuzz target).
#[test]
fn quoted_brackets_over_the_nesting_guard_are_refused_by_every_command() {
    let dir = tempdir();
    let sts = format!(
        "{SYNAPSE_STS}    example.com/note: \"{}\"\nspec:\n  replicas: 1\n",
        "[".repeat(129)
    );
    let path = generated(dir.path(), "quoted-brackets.yaml", sts.as_bytes());
    render_case(
        "quoted-brackets",
        &path,
        &[
            GENERATED_SOURCE,
            "nested more than 128 levels",
            "inside strings count too",
        ],
    );
}

/// A Synapse StatefulSet nested 200 levels deep in block style: the parser's recursion limit
/// refuses it, so the fast path (which reads such documents by their skeleton and checks the
/// rest line by line) must not accept it either. Before the fix post-render exited 0 where
/// check exited 2.
#[test]
fn deep_block_nesting_in_a_statefulset_is_refused_by_every_command() {
    let dir = tempdir();
    let deep: String = (0..200)
        .map(|k| format!("{}a{k}:\n", "  ".repeat(k + 1)))
        .collect();
    let sts = format!("{SYNAPSE_STS}spec:\n  replicas: 1\nextra:\n{deep}");
    let path = generated(dir.path(), "deep-sts.yaml", sts.as_bytes());
    render_case("deep-sts", &path, &[GENERATED_SOURCE, "recursion limit"]);
}

fn billion_laughs() -> String {
    let mut text = String::from("bomb:\n  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    let mut prev = 'a';
    for c in 'b'..='j' {
        let refs = vec![format!("*{prev}"); 9].join(",");
        text.push_str(&format!("  {c}: &{c} [{refs}]\n"));
        prev = c;
    }
    text
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

#[test]
fn billion_laughs_alias_bomb() {
    let dir = tempdir();
    let path = generated(
        dir.path(),
        "bomb.yaml",
        format!("{SYNAPSE_CM}{}", billion_laughs()).as_bytes(),
    );
    render_case(
        "billion-laughs",
        &path,
        &[GENERATED_SOURCE, "repetition limit"],
    );
    values_case(
        "billion-laughs values",
        &write(dir.path(), "bomb-values.yaml", &billion_laughs()),
        &["repetition limit"],
    );
}

#[test]
fn irrelevant_documents_are_validated_with_full_parse() {
    // In the default mode a document the guard does not read (a Service) passes through
    // unparsed; Helm parses it before applying anything. --full-parse validates it here too.
    let dir = tempdir();
    let broken = "apiVersion: v1\nkind: Service\nmetadata: {name: s\nspec: {}\n";
    let path = generated(dir.path(), "broken-service.yaml", broken.as_bytes());
    let file = path.display().to_string();
    let r = run(&["check", "--state", "absent", "--full-parse", &file], None);
    assert_bad(
        "broken service: check --full-parse",
        &r,
        &file,
        &[GENERATED_SOURCE, "invalid YAML"],
    );
    let r = run(
        &[
            "post-render",
            "--state",
            "absent",
            "--no-tty",
            "--full-parse",
        ],
        Some(read(&path)),
    );
    assert_bad(
        "broken service: post-render --full-parse",
        &r,
        "stdin",
        &[GENERATED_SOURCE, "invalid YAML"],
    );
    let bomb = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\n{}",
        billion_laughs()
    );
    let path = generated(dir.path(), "bomb-service.yaml", bomb.as_bytes());
    let r = run(
        &[
            "check",
            "--state",
            "absent",
            "--full-parse",
            &path.display().to_string(),
        ],
        None,
    );
    assert_bad(
        "bomb service: check --full-parse",
        &r,
        &path.display().to_string(),
        &["repetition limit"],
    );
}

#[test]
fn duplicate_keys_are_a_warning() {
    let path = fixture("duplicate-keys.yaml");
    let file = path.display().to_string();
    // A duplicate key is a warning: it must not reject a render that is otherwise allowed.
    let r = run(&["check", "--state", "legacy_auth", &file], None);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout_text(), r.stderr_text());
    assert!(
        r.stdout_text().contains("duplicate-key"),
        "{}",
        r.stdout_text()
    );
    assert!(
        r.stdout_text().contains("spec.replicas"),
        "{}",
        r.stdout_text()
    );
    assert!(!r.stderr_text().contains("panicked"));
    assert_bounded("duplicate keys: check", &r);
    let r = run(
        &["post-render", "--state", "legacy_auth", "--no-tty"],
        Some(read(&path)),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr_text());
    assert!(
        r.stderr_text().contains("duplicate-key"),
        "{}",
        r.stderr_text()
    );
    // Allowed and nothing to inject for a legacy render: handed back byte for byte.
    assert_eq!(r.stdout, read(&path));
    // With --fail-on warning the warning rejects: exit 1 and nothing on stdout.
    let r = run(
        &[
            "post-render",
            "--state",
            "legacy_auth",
            "--no-tty",
            "--fail-on",
            "warning",
        ],
        Some(read(&path)),
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr_text());
    assert!(r.stdout.is_empty());
}

/// A marker value the chart never writes is not bad input but a refusal (issue 17): the chart's
/// markers Job compares the stored string exactly with its allowed list and fails the upgrade,
/// so every command rejects it (exit 1) with `unknown-marker-value`, nothing on stdout where
/// stdout would reach Helm. Nothing is trimmed: `"legacy_auth\n"` and `""` are refused too.
#[test]
fn markers_configmap_with_an_unknown_value() {
    let dir = tempdir();
    let with_value = |file: &str, yaml_value: &str| {
        let text = std::fs::read_to_string(fixture("markers-configmap-unknown-value.yaml"))
            .unwrap_or_else(|e| panic!("{e}"))
            .replace(
                "MATRIX_STACK_MSC3861: stage9",
                &format!("MATRIX_STACK_MSC3861: {yaml_value}"),
            );
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        path.display().to_string()
    };
    let render = fixture("valid-legacy.yaml");
    let values = fixture("values-legacy.yaml");
    for (state_file, shown) in [
        (
            fixture("markers-configmap-unknown-value.yaml")
                .display()
                .to_string(),
            "\"stage9\"",
        ),
        (
            with_value("newline.yaml", "\"legacy_auth\\n\""),
            "\"legacy_auth\\n\"",
        ),
        (with_value("empty.yaml", "\"\""), "\"\""),
    ] {
        let refused = |what: &str, r: &Run, report: &str, stdout_empty: bool| {
            assert_eq!(r.code, Some(1), "{what} {shown}: {}", r.stderr_text());
            assert!(
                report.contains("ess-guard: REJECTED: [unknown-marker-value]"),
                "{what} {shown}: {report}"
            );
            assert!(report.contains(shown), "{what} {shown}: {report}");
            if stdout_empty {
                assert!(r.stdout.is_empty(), "{what} {shown}: {}", r.stdout_text());
            }
        };
        let r = run(
            &[
                "check",
                "--state-file",
                &state_file,
                &render.display().to_string(),
            ],
            None,
        );
        refused("check", &r, &r.stdout_text(), false);
        let r = run(
            &["post-render", "--state-file", &state_file, "--no-tty"],
            Some(read(&render)),
        );
        refused("post-render", &r, &r.stderr_text(), true);
        let r = run(
            &[
                "values",
                "-f",
                &values.display().to_string(),
                "--state-file",
                &state_file,
            ],
            None,
        );
        refused("values", &r, &r.stderr_text(), true);
    }
}

#[test]
fn bad_values_files() {
    let dir = root().join("fixtures/bad/values");
    let cases: &[(&str, &[&str])] = &[
        ("invalid-yaml.yaml", &["line 3", "invalid YAML"]),
        ("tabs.yaml", &["invalid YAML"]),
        ("unterminated-quote.yaml", &["invalid YAML"]),
        ("not-a-mapping.yaml", &["not a mapping"]),
        ("nul-byte.yaml", &["invalid YAML"]),
        ("invalid-utf8.yaml", &["UTF-8"]),
    ];
    let mut seen = 0;
    for (name, expect) in cases {
        values_case(name, &dir.join(name), expect);
        seen += 1;
    }
    let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(seen, files, "every file in {} has a case", dir.display());
}

/// Every committed corpus file is used by a test above (so none rots unnoticed).
#[test]
fn every_corpus_file_has_a_case() {
    let source = std::fs::read_to_string(root().join("tests/bad_input.rs"))
        .unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(root().join("fixtures/bad")).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_file() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            assert!(
                source.contains(&format!("\"{name}\"")),
                "fixtures/bad/{name} is not used by tests/bad_input.rs"
            );
        }
    }
}
