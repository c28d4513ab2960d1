//! Secrets canary: Secrets with known values (raw, base64, inside ESS `user-*` config layers and
//! a Synapse `oidc_providers[].client_secret`) go through every command and format. The canary
//! must never reach stderr, a report file, or any stdout that is not the manifest itself
//! (post-render's stdout is what Helm applies, so it carries the Secret as it came in; so does
//! `values`' stdout, which is the values file Helm reads).

#[path = "support/run.rs"]
mod run;

use std::path::{Path, PathBuf};

use base64::Engine;
use run::{post_render_offline, run, Run};

const CANARY: &str = "CANARY-7f3a9c-s3cr3t-e1d2";
const CLIENT_SECRET: &str = "CANARY-oidc-client-5b8e";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Every form in which a canary could leak.
fn needles() -> Vec<String> {
    let mut out = Vec::new();
    for c in [CANARY, CLIENT_SECRET] {
        out.push(c.to_string());
        out.push(b64(c));
        // Any part long enough to identify it.
        out.push(c[..14].to_string());
    }
    for blob in [user_config(), oidc_config()] {
        out.push(b64(&blob));
    }
    out
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for needle in needles() {
        assert!(!text.contains(&needle), "{what} leaks {needle:?}:\n{text}");
    }
}

fn user_config() -> String {
    format!("macaroon_secret_key: {CANARY}\nform_secret: \"{CANARY}\"\n")
}

fn oidc_config() -> String {
    format!(
        "oidc_providers:\n- idp_id: canaryidp\n  idp_name: Canary\n  issuer: https://idp.example.org/\n  client_id: synapse\n  client_secret: {CLIENT_SECRET}\n  scopes: [openid]\n"
    )
}

/// A Synapse config Secret, as the chart renders user-supplied config, with the canary raw (in
/// stringData), base64 (in data) and inside `user-*` config layers.
fn synapse_secret(with_oidc: bool) -> String {
    let mut data = format!(
        "  user-00-canary.yaml: {}\n  password: {}\n",
        b64(&user_config()),
        b64(CANARY)
    );
    if with_oidc {
        data.push_str(&format!("  user-01-oidc.yaml: {}\n", b64(&oidc_config())));
    }
    format!(
        "---\n# Source: mini-stack/templates/synapse/synapse_secret_canary.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: ess-synapse-canary\n  namespace: ess\n  labels:\n    app.kubernetes.io/component: matrix-server\n    app.kubernetes.io/name: synapse\ntype: Opaque\ndata:\n{data}stringData:\n  token: {CANARY}\n  user-02-raw.yaml: |\n    registration_shared_secret: {CANARY}\n"
    )
}

/// A Secret the guard does not read, and a MAS one it does.
fn other_secrets() -> String {
    format!(
        "---\n# Source: other/templates/secret.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: unrelated\nstringData:\n  key: {CANARY}\n---\n# Source: mini-stack/templates/matrix-authentication-service/secret_canary.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: ess-matrix-authentication-service-canary\n  labels:\n    app.kubernetes.io/name: matrix-authentication-service\ndata:\n  user-00-canary.yaml: {}\n",
        b64(&format!("secrets:\n  encryption: {CANARY}\n"))
    )
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn render(base: &str, with_oidc: bool) -> String {
    let path = root().join("examples/renders").join(base);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{text}{}{}", synapse_secret(with_oidc), other_secrets())
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path.display().to_string()
}

fn no_panic(what: &str, r: &Run) {
    assert!(
        !r.stderr_text().contains("panicked"),
        "{what}: {}",
        r.stderr_text()
    );
    assert!(r.code.is_some(), "{what}: killed by signal {:?}", r.signal);
}

/// The canary renders: step 2 (allowed from legacy_auth, edited by post-render), step 2 with an
/// OIDC provider (findings that name it), and step 3.
fn renders(dir: &Path) -> Vec<(String, String)> {
    vec![
        (
            write(dir, "step2.yaml", &render("step2.yaml", false)),
            "legacy_auth".into(),
        ),
        (
            write(dir, "step2-oidc.yaml", &render("step2.yaml", true)),
            "legacy_auth".into(),
        ),
        (
            write(dir, "step3-oidc.yaml", &render("step3.yaml", true)),
            "syn2mas_migrated".into(),
        ),
        // Rejected: a rollback.
        (
            write(dir, "legacy-oidc.yaml", &render("legacy.yaml", true)),
            "delegated_auth".into(),
        ),
    ]
}

#[test]
fn the_canary_is_really_in_the_inputs() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (file, _) in renders(dir.path()) {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            text.contains(CANARY)
                && text.contains(&b64(CANARY))
                && text.contains(&b64(&oidc_config()))
                || !file.contains("oidc")
        );
    }
}

#[test]
fn check_in_every_format() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (file, state) in renders(dir.path()) {
        for format in ["text", "json", "sarif", "junit", "github", "gitlab"] {
            for extra in [
                &[][..],
                &["--show-changes"][..],
                &["--fail-on", "warning"][..],
                &["--full-parse"][..],
            ] {
                let mut args = vec!["check", "--state", &state, "--format", format];
                args.extend_from_slice(extra);
                args.push(&file);
                let what = format!("check {format} {extra:?} {file}");
                let r = run(&args, None);
                no_panic(&what, &r);
                assert!(
                    matches!(r.code, Some(0 | 1)),
                    "{what}: exit {:?}: {}",
                    r.code,
                    r.stderr_text()
                );
                assert!(!r.stdout.is_empty(), "{what}: no report");
                assert_clean(&format!("{what}: stdout"), &r.stdout);
                assert_clean(&format!("{what}: stderr"), &r.stderr);
                if format == "text" && file.contains("step2-oidc") {
                    // The Secret's user-* layer was decoded and read: its provider is reported.
                    assert!(
                        r.stdout_text().contains("canaryidp"),
                        "{what}: {}",
                        r.stdout_text()
                    );
                }
            }
        }
    }
}

#[test]
fn post_render_reports_and_explain() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (file, state) in renders(dir.path()) {
        let input = std::fs::read(&file).unwrap_or_else(|e| panic!("{e}"));
        for extra in [
            &[][..],
            &["--explain"][..],
            &["--fail-on", "warning"][..],
            &["--helm-version", "3"][..],
        ] {
            let report = dir.path().join("report.txt");
            let _ = std::fs::remove_file(&report);
            let report_arg = report.display().to_string();
            let mut args = vec![
                "post-render",
                "--state",
                &state,
                "--no-tty",
                "--report",
                &report_arg,
            ];
            args.extend_from_slice(extra);
            let what = format!("post-render {extra:?} {file}");
            let r = run(&args, Some(input.clone()));
            no_panic(&what, &r);
            assert!(
                matches!(r.code, Some(0 | 1)),
                "{what}: exit {:?}: {}",
                r.code,
                r.stderr_text()
            );
            assert_clean(&format!("{what}: stderr"), &r.stderr);
            let written =
                std::fs::read(&report).unwrap_or_else(|e| panic!("{what}: no report file: {e}"));
            assert_clean(&format!("{what}: report file"), &written);
            if r.code == Some(0) {
                // stdout is the manifest: the Secrets pass through untouched.
                let out = r.stdout_text();
                assert!(
                    out.contains(&synapse_secret(file.contains("oidc"))),
                    "{what}: the Secret was changed"
                );
            } else {
                assert!(r.stdout.is_empty(), "{what}: rejected but wrote stdout");
            }
        }
    }
}

#[test]
fn error_paths() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = render("step2.yaml", true);
    let secret = synapse_secret(true);
    let broken: Vec<(&str, String)> = vec![
        // Invalid YAML inside the Secret, next to the canary.
        (
            "unterminated flow",
            good.replace(&secret, &secret.replace("  password: ", "  password: {x: ")),
        ),
        (
            "tab",
            good.replace(&secret, &secret.replace("  token: ", "\ttoken: ")),
        ),
        (
            "unterminated quote",
            good.replace(
                &secret,
                &secret.replace(
                    &format!("  token: {CANARY}"),
                    &format!("  token: \"{CANARY}"),
                ),
            ),
        ),
        (
            "data is a list",
            good.replace(
                &secret,
                &secret.replace(
                    "type: Opaque\ndata:\n",
                    "type: Opaque\nmetadata: [a]\ndata:\n",
                ),
            ),
        ),
        (
            "bad utf-8 after the canary",
            good.replace(
                &format!("  token: {CANARY}"),
                &format!("  token: {CANARY}\u{0}"),
            ),
        ),
        (
            "duplicate key",
            good.replace(
                &secret,
                &secret.replace(
                    "stringData:\n",
                    &format!("stringData:\n  token: {CANARY}\n"),
                ),
            ),
        ),
    ];
    for (what, text) in broken {
        let file = write(dir.path(), "broken.yaml", &text);
        let r = run(
            &["check", "--state", "legacy_auth", "--format", "json", &file],
            None,
        );
        no_panic(what, &r);
        assert_clean(&format!("{what}: check stderr"), &r.stderr);
        for output in ["unified", "json"] {
            let r = run(&["diff", "-o", output, &file, &file], None);
            no_panic(what, &r);
            assert_clean(&format!("{what}: diff -o {output} stderr"), &r.stderr);
            assert_clean(&format!("{what}: diff -o {output} stdout"), &r.stdout);
        }
        assert_clean(&format!("{what}: check stdout"), &r.stdout);
        let (r, report) = post_render_offline(&[], text.into_bytes());
        no_panic(what, &r);
        assert_clean(&format!("{what}: post-render stderr"), &r.stderr);
        assert_clean(&format!("{what}: report file"), &report);
        if r.code != Some(0) {
            assert!(r.stdout.is_empty());
        }
    }
}

#[test]
fn values_keep_secrets_off_stderr() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let indent = |s: String| {
        s.lines()
            .map(|l| format!("          {l}\n"))
            .collect::<String>()
    };
    let values = format!(
        "synapse:\n  enabled: true\n  macaroon:\n    value: {CANARY}\n  additional:\n    00-canary:\n      config: |\n{}    01-oidc:\n      config: |\n{}matrixAuthenticationService:\n  enabled: true\n  syn2mas:\n    enabled: true\n    dryRun: false\n",
        indent(user_config()),
        indent(oidc_config()),
    );
    let file = write(dir.path(), "values.yaml", &values);
    for state in ["legacy_auth", "delegated_auth"] {
        for extra in [&[][..], &["--fix"][..], &["--format", "json"][..]] {
            let mut args = vec!["values", "-f", &file, "--state", state];
            args.extend_from_slice(extra);
            let what = format!("values {state} {extra:?}");
            let r = run(&args, None);
            no_panic(&what, &r);
            assert!(matches!(r.code, Some(0 | 1)), "{what}: {}", r.stderr_text());
            assert_clean(&format!("{what}: stderr"), &r.stderr);
        }
    }
    // --set with the canary: its report, and its parse errors, show no value.
    let set = format!("synapse.macaroon.value={CANARY}");
    let bad_sets = [
        format!("synapse.macaroon.value={CANARY},x"),
        format!("synapse.macaroon.value=ab,{CANARY}"),
        format!("synapse.macaroon.value[70000]={CANARY}"),
    ];
    let r = run(&["values", "--set", &set, "--state", "legacy_auth"], None);
    no_panic("values --set", &r);
    assert_clean("values --set: stderr", &r.stderr);
    for bad in &bad_sets {
        for flag in ["--set", "--set-string"] {
            let r = run(&["values", flag, bad, "--state", "legacy_auth"], None);
            no_panic(bad, &r);
            assert_eq!(r.code, Some(2), "{flag} {bad}: {}", r.stderr_text());
            assert_clean(&format!("values {flag} error"), &r.stderr);
        }
        // The same flags on check and post-render (intent from values).
        let r = run(
            &[
                "post-render",
                "--state",
                "legacy_auth",
                "--no-tty",
                "--set",
                bad,
            ],
            Some(render("step2.yaml", false).into_bytes()),
        );
        no_panic(bad, &r);
        assert_eq!(r.code, Some(2));
        assert_clean("post-render --set error", &r.stderr);
        assert!(r.stdout.is_empty());
    }
    let r = run(
        &[
            "values",
            "--set-json",
            &format!("synapse.macaroon={{\"value\":\"{CANARY}\""),
            "--state",
            "legacy_auth",
        ],
        None,
    );
    assert_eq!(r.code, Some(2));
    assert_clean("values --set-json error", &r.stderr);
}

/// `diff` in every output format: old and new renders whose Secrets hold different canaries,
/// and `diff --guard` (a render against what post-render makes of it). Secrets are redacted
/// unless `--show-secrets` is given.
#[test]
fn diff_in_every_format() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let old = write(dir.path(), "old.yaml", &render("step2.yaml", false));
    let new_text = render("step2.yaml", true).replace(CANARY, &CANARY.replace("7f3a9c", "0d0d0d"));
    let new = write(dir.path(), "new.yaml", &new_text);
    let leaks = |what: &str, r: &Run| {
        no_panic(what, r);
        assert_clean(&format!("{what}: stdout"), &r.stdout);
        assert_clean(&format!("{what}: stderr"), &r.stderr);
        let changed = CANARY.replace("7f3a9c", "0d0d0d");
        for needle in [changed.clone(), b64(&changed)] {
            assert!(
                !r.stdout_text().contains(&needle) && !r.stderr_text().contains(&needle),
                "{what} leaks {needle}"
            );
        }
    };
    for output in ["unified", "summary", "json"] {
        for color in ["never", "always"] {
            let what = format!("diff -o {output} --color {color}");
            let r = run(&["diff", "-o", output, "--color", color, &old, &new], None);
            assert_eq!(r.code, Some(0), "{what}: {}", r.stderr_text());
            assert!(!r.stdout.is_empty(), "{what}: no output");
            leaks(&what, &r);
            let from_files = r.stdout_text();
            let old_bytes = std::fs::read(&old).unwrap_or_else(|e| panic!("{old}: {e}"));
            let r = run(
                &["diff", "-o", output, "--color", color, "-", &new],
                Some(old_bytes),
            );
            // The same report as from the file: a missing or empty report must fail here,
            // not pass the leak check for want of anything to leak.
            assert_eq!(r.code, Some(0), "{what} (stdin): {}", r.stderr_text());
            assert!(!r.stdout.is_empty(), "{what} (stdin): no output");
            assert_eq!(
                r.stdout_text(),
                from_files.replace(old.as_str(), "-"),
                "{what} (stdin): another report than from the file (stdin is named `-`)"
            );
            leaks(&format!("{what} (stdin)"), &r);
        }
        for (file, state) in renders(dir.path()) {
            let what = format!("diff --guard -o {output} {file}");
            let r = run(
                &["diff", "--guard", "--state", &state, "-o", output, &file],
                None,
            );
            assert!(
                matches!(r.code, Some(0 | 1)),
                "{what}: {:?} {}",
                r.code,
                r.stderr_text()
            );
            leaks(&what, &r);
        }
    }
}
