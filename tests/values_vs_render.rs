//! One engine, two inputs: every values file in `ess-renders/` evaluated by `ess-guard values`
//! gives the same verdict, and the same first rule, as `ess-guard check` on the render Helm made
//! from it, under each stored state.

mod support;

use std::path::{Path, PathBuf};

use support::{code, run, text};

const STATES: [&str; 4] = [
    "absent",
    "legacy_auth",
    "syn2mas_migrated",
    "delegated_auth",
];

/// `(values file, render)` pairs: `values/<n>.yaml` next to `<n>.yaml`, in the main folder and
/// in `extra/`.
fn pairs(renders: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for dir in [renders.to_path_buf(), renders.join("extra")] {
        let Ok(entries) = std::fs::read_dir(dir.join("values")) else {
            continue;
        };
        for entry in entries.flatten() {
            let values = entry.path();
            let Some(name) = values.file_name() else {
                continue;
            };
            let render = dir.join(name);
            if render.is_file() {
                out.push((values, render));
            }
        }
    }
    out.sort();
    out
}

/// The rule id of the first reported error line (`ess-guard: REJECTED: [rule] …`).
fn first_rule(report: &str) -> Option<String> {
    let rest = report.lines().next()?.split_once("REJECTED: [")?.1;
    Some(rest.split(']').next()?.to_string())
}

#[test]
fn values_and_renders_get_the_same_verdict() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let pairs = pairs(&shared.join("ess-renders"));
    assert!(
        pairs.len() >= 25,
        "expected the 20 renders and 7 extra ones, found {}",
        pairs.len()
    );
    for (values, render) in &pairs {
        for state in STATES {
            let v = values.display().to_string();
            let r = render.display().to_string();
            let from_values = run(&["values", "-f", &v, "--state", state], b"");
            let from_render = run(&["check", "--state", state, &r], b"");
            assert_eq!(
                code(&from_values),
                code(&from_render),
                "{v} vs {r} under {state}:\nvalues: {}\ncheck: {}",
                text(&from_values.stderr),
                text(&from_render.stdout)
            );
            assert_eq!(
                first_rule(&text(&from_values.stderr)),
                first_rule(&text(&from_render.stdout)),
                "{v} vs {r} under {state}: the first rule differs"
            );
            if code(&from_values) != 0 {
                assert!(
                    from_values.stdout.is_empty(),
                    "{v} {state}: rejected values must leave stdout empty"
                );
            }
        }
    }
}

/// Values the chart itself refuses to render: the preprocessor stops them first.
#[test]
fn sso_login_worker_with_mas_is_refused_before_rendering() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let v = shared
        .join("ess-renders/values/fail-sso-login-with-mas.yaml")
        .display()
        .to_string();
    let out = run(&["values", "-f", &v, "--state", "absent"], b"");
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("sso-login-worker-with-mas"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}
