//! `check` with many inputs: parallel, report order = input order, exit code = worst outcome,
//! and one bad input does not hide the others' reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ess_guard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ess-guard"))
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ess-guard: {e}"))
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The shared folder, or None (test skipped) when `ESS_GUARD_SHARED` is unset. With
/// `ESS_GUARD_REQUIRE_ALL=1` a missing folder fails instead.
fn shared(test: &str) -> Option<PathBuf> {
    match std::env::var_os("ESS_GUARD_SHARED") {
        Some(dir) => Some(PathBuf::from(dir)),
        None if std::env::var_os("ESS_GUARD_REQUIRE_ALL").is_some_and(|v| v == "1") => {
            panic!("{test}: ESS_GUARD_SHARED is not set and ESS_GUARD_REQUIRE_ALL=1")
        }
        None => {
            println!("skipped: {test}: ESS_GUARD_SHARED is not set");
            None
        }
    }
}

/// The stored marker each real render is checked against.
fn state_for(file: &str) -> &'static str {
    if file.starts_with("step3") {
        "syn2mas_migrated"
    } else if file.starts_with("fresh") || file.starts_with("mas-only") {
        "absent"
    } else {
        "legacy_auth"
    }
}

#[test]
fn all_ess_renders_in_one_call_with_a_state_map() {
    let Some(shared) = shared("all_ess_renders_in_one_call_with_a_state_map") else {
        return;
    };
    let renders = shared.join("ess-renders");
    let mut inputs: Vec<String> = std::fs::read_dir(&renders)
        .unwrap_or_else(|e| panic!("{}: {e}", renders.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 10,
        "expected the ESS renders in {}",
        renders.display()
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let map_path = dir.path().join("state-map.yaml");
    let file_name = |p: &str| {
        Path::new(p)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let map: String = inputs
        .iter()
        .map(|p| format!("{p:?}: {}\n", state_for(&file_name(p))))
        .collect();
    std::fs::write(&map_path, map).unwrap_or_else(|e| panic!("{e}"));

    let map_arg = map_path.display().to_string();
    let mut args = vec!["check", "--format", "json", "--state-map", &map_arg];
    args.extend(inputs.iter().map(String::as_str));
    let out = ess_guard(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "some renders are rejected: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["verdict"], "rejected");
    let reported: Vec<&Value> = report["inputs"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let names: Vec<&str> = reported
        .iter()
        .filter_map(|r| r["input"].as_str())
        .collect();
    assert_eq!(names, inputs, "report order is input order");

    let verdict = |file: &str| {
        reported
            .iter()
            .find(|r| {
                r["input"]
                    .as_str()
                    .is_some_and(|i| i.ends_with(&format!("/{file}")))
            })
            .map(|r| {
                (
                    r["verdict"].as_str().unwrap_or("").to_string(),
                    r["current"].as_str().unwrap_or("").to_string(),
                )
            })
    };
    let allowed = |s: &str| Some(("allowed".to_string(), s.to_string()));
    let rejected = |s: &str| Some(("rejected".to_string(), s.to_string()));
    assert_eq!(verdict("legacy.yaml"), allowed("legacy_auth"));
    assert_eq!(verdict("step1-syn2mas-dryrun.yaml"), allowed("legacy_auth"));
    assert_eq!(
        verdict("step2-syn2mas-migrate.yaml"),
        allowed("legacy_auth")
    );
    assert_eq!(verdict("step3-delegated.yaml"), allowed("syn2mas_migrated"));
    assert_eq!(verdict("fresh-mas.yaml"), allowed("absent"));
    assert_eq!(verdict("step2-oidc.yaml"), rejected("legacy_auth"));
    assert_eq!(
        verdict("syn2mas-external-synapse.yaml"),
        rejected("legacy_auth")
    );

    // Parallel checking gives exactly what checking each input alone gives.
    for (input, parallel) in inputs.iter().zip(&reported) {
        let alone = ess_guard(&[
            "check",
            "--format",
            "json",
            "--state",
            state_for(&file_name(input)),
            input,
        ]);
        assert_eq!(&&json(&alone)["inputs"][0], parallel, "{input}");
    }
}

#[test]
fn a_bad_input_does_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Secret\nmetadata: [ess-synapse, not, a, mapping]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bad = bad.display().to_string();
    let out = ess_guard(&[
        "check",
        "--state",
        "legacy_auth",
        "--format",
        "json",
        "fixtures/formats/step2-allowed.yaml",
        &bad,
        "fixtures/formats/step2-rejected.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2), "bad input wins over rejected");
    let report = json(&out);
    let names: Vec<&str> = report["inputs"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["input"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        [
            "fixtures/formats/step2-allowed.yaml",
            "fixtures/formats/step2-rejected.yaml"
        ]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("metadata"),
        "{stderr}"
    );

    // Only allowed inputs and a bad one: still 2.
    let out = ess_guard(&[
        "check",
        "--state",
        "legacy_auth",
        "fixtures/formats/step2-allowed.yaml",
        &bad,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("allowed: fixtures/formats/step2-allowed.yaml"));

    // A single bad input: the error alone, as before.
    let out = ess_guard(&["check", "--state", "legacy_auth", "--format", "json", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn inputs_missing_from_the_state_map_are_errors_of_their_own() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let map = dir.path().join("map.yaml");
    std::fs::write(&map, "fixtures/formats/step2-allowed.yaml: legacy_auth\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let map = map.display().to_string();
    let out = ess_guard(&[
        "check",
        "--state-map",
        &map,
        "--format",
        "json",
        "fixtures/formats/step2-allowed.yaml",
        "fixtures/formats/step2-rejected.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(json(&out)["inputs"][0]["verdict"], "allowed");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("step2-rejected.yaml: not in --state-map")
    );
}
