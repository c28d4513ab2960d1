//! `ess-guard diff`, run as the real binary.
//!
//! The tests on real chart renders read `$ESS_GUARD_SHARED/ess-renders`. Without that variable
//! they print `skipped: …` and pass, unless `ESS_GUARD_REQUIRE_ALL=1` (CI), where they fail.
//! Expected resources come from the per-scenario lists in `ess-renders/README.md`, parsed here,
//! not from the tool's own output.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_ess-guard");

fn renders(test: &str) -> Option<PathBuf> {
    match std::env::var_os("ESS_GUARD_SHARED") {
        Some(shared) => {
            let dir = PathBuf::from(shared).join("ess-renders");
            assert!(
                dir.join("README.md").is_file(),
                "{} has no README.md",
                dir.display()
            );
            Some(dir)
        }
        None if std::env::var("ESS_GUARD_REQUIRE_ALL").as_deref() == Ok("1") => {
            panic!("{test}: ESS_GUARD_SHARED is not set and ESS_GUARD_REQUIRE_ALL=1")
        }
        None => {
            println!("skipped: {test}: ESS_GUARD_SHARED is not set");
            None
        }
    }
}

fn run_with(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("diff")
        .args(args)
        .env_remove("NO_COLOR")
        .env_remove("HELM_NAMESPACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("ess-guard starts");
    if let Some(bytes) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(bytes)
            .expect("stdin written");
    }
    child.wait_with_output().expect("ess-guard runs")
}

fn run(args: &[&str]) -> Output {
    run_with(args, None, &[])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_of(out: &Output) -> Vec<Value> {
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON array ({e}); stderr: {}",
            text(&out.stderr)
        )
    })
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

// ---------------------------------------------------------------------------------------------
// The renders README: per scenario, every resource and, for hooks, the phase and weight.

type Expected = BTreeMap<(String, String), Option<(Vec<String>, i64)>>;

struct Scenario {
    resources: Expected,
    markers_argument: String,
}

fn scenario(readme: &str, name: &str) -> Scenario {
    let start = readme
        .find(&format!("\n### {name}\n"))
        .unwrap_or_else(|| panic!("README has no scenario {name}"));
    let section = &readme[start + 1..];
    let end = section[4..]
        .find("\n##")
        .map(|e| e + 4)
        .unwrap_or(section.len());
    let section = &section[..end];
    let mut resources = Expected::new();
    let mut markers_argument = String::new();
    for line in section.lines() {
        if let Some(arg) = line.strip_prefix("- Deployment-markers argument: `") {
            markers_argument = arg.trim_end_matches('`').to_string();
        } else if let Some(item) = line.strip_prefix("  - ") {
            let (kind, names) = item
                .split_once(": ")
                .unwrap_or_else(|| panic!("odd README line {line:?}"));
            for name in names.split(", ") {
                resources.insert((kind.to_string(), name.trim_matches('`').to_string()), None);
            }
        } else if let Some(row) = line.strip_prefix("  | ") {
            let cells: Vec<&str> = row.split(" | ").map(str::trim).collect();
            if cells[0].starts_with("phase") || cells[0].starts_with("---") {
                continue;
            }
            let phases = cells[0].split(',').map(str::to_string).collect();
            let weight = cells[1]
                .parse()
                .unwrap_or_else(|_| panic!("odd weight in {line:?}"));
            resources.insert(
                (cells[2].to_string(), cells[3].trim_matches('`').to_string()),
                Some((phases, weight)),
            );
        }
    }
    assert!(!resources.is_empty(), "no resources parsed for {name}");
    Scenario {
        resources,
        markers_argument,
    }
}

fn key_of(item: &Value) -> (String, String) {
    let r = &item["resource"];
    (
        r["kind"].as_str().unwrap_or_default().to_string(),
        r["name"].as_str().unwrap_or_default().to_string(),
    )
}

fn hook_of(v: &Value) -> Option<(Vec<String>, i64)> {
    if v.is_null() {
        return None;
    }
    let phases = v["phases"]
        .as_array()?
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    Some((phases, v["weight"].as_i64()?))
}

fn find<'a>(items: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    items
        .iter()
        .find(|i| key_of(i) == (kind.to_string(), name.to_string()))
}

fn changes(items: &[Value], change: &str) -> BTreeSet<(String, String)> {
    items
        .iter()
        .filter(|i| i["change"] == change)
        .map(key_of)
        .collect()
}

#[test]
fn migration_steps_match_the_readme() {
    let Some(dir) = renders("migration_steps_match_the_readme") else {
        return;
    };
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
    let steps = [
        "legacy",
        "step1-syn2mas-dryrun",
        "step2-syn2mas-migrate",
        "step3-delegated",
    ];
    for pair in steps.windows(2) {
        let (old_name, new_name) = (pair[0], pair[1]);
        let old = scenario(&readme, old_name);
        let new = scenario(&readme, new_name);
        let old_file = dir.join(format!("{old_name}.yaml"));
        let new_file = dir.join(format!("{new_name}.yaml"));
        let out = run(&[
            "--output",
            "json",
            "--exit-code",
            path_str(&old_file),
            path_str(&new_file),
        ]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{old_name} → {new_name}: {}",
            text(&out.stderr)
        );
        let items = json_of(&out);

        // Added and removed are exactly the README's set differences, hooks with their phase/weight.
        let old_keys: BTreeSet<_> = old.resources.keys().cloned().collect();
        let new_keys: BTreeSet<_> = new.resources.keys().cloned().collect();
        let added: BTreeSet<_> = new_keys.difference(&old_keys).cloned().collect();
        let removed: BTreeSet<_> = old_keys.difference(&new_keys).cloned().collect();
        assert_eq!(
            changes(&items, "added"),
            added,
            "{old_name} → {new_name}: added"
        );
        assert_eq!(
            changes(&items, "removed"),
            removed,
            "{old_name} → {new_name}: removed"
        );
        for item in &items {
            let key = key_of(item);
            let expected_hook = new
                .resources
                .get(&key)
                .or_else(|| old.resources.get(&key))
                .cloned()
                .flatten();
            assert_eq!(
                hook_of(&item["hook"]),
                expected_hook,
                "{old_name} → {new_name}: hook of {key:?}"
            );
        }
        // A resource whose hook phase or weight moved is changed, with both hooks given.
        for (key, new_hook) in &new.resources {
            let Some(old_hook) = old.resources.get(key) else {
                continue;
            };
            if old_hook != new_hook {
                let item = find(&items, &key.0, &key.1)
                    .unwrap_or_else(|| panic!("{key:?} moved but is not reported"));
                assert_eq!(item["change"], "changed");
                assert_eq!(hook_of(&item["previousHook"]), old_hook.clone(), "{key:?}");
            }
        }
        // The markers Jobs change exactly when the README's `-markers` argument does.
        for job in ["ess-deployment-markers-pre", "ess-deployment-markers-post"] {
            let item = find(&items, "Job", job);
            let carries_argument = item.is_some_and(|i| {
                i["old"]
                    .as_object()
                    .is_some_and(|o| o.values().any(|v| v == &json!(old.markers_argument)))
                    && i["new"]
                        .as_object()
                        .is_some_and(|n| n.values().any(|v| v == &json!(new.markers_argument)))
            });
            assert_eq!(
                carries_argument,
                old.markers_argument != new.markers_argument,
                "{old_name} → {new_name}: {job} argument {} → {}",
                old.markers_argument,
                new.markers_argument
            );
        }

        // The steps the issue names.
        match new_name {
            "step1-syn2mas-dryrun" => {
                let mas = find(&items, "Deployment", "ess-matrix-authentication-service")
                    .expect("MAS Deployment");
                assert_eq!(mas["change"], "added");
                assert!(
                    mas.get("hook").is_none(),
                    "the MAS Deployment is not a hook"
                );
                let job = find(&items, "Job", "ess-syn2mas").expect("syn2mas Job");
                assert_eq!(
                    hook_of(&job["hook"]),
                    Some((vec!["post-install".into(), "post-upgrade".into()], 0))
                );
            }
            "step2-syn2mas-migrate" => {
                let job = find(&items, "Job", "ess-syn2mas").expect("syn2mas Job");
                assert_eq!(job["change"], "changed");
                assert_eq!(
                    job["previousHook"]["phases"],
                    json!(["post-install", "post-upgrade"])
                );
                assert_eq!(job["hook"]["phases"], json!(["pre-install", "pre-upgrade"]));
                assert_eq!(
                    job["old"]["/metadata/annotations/helm.sh~1hook"],
                    json!("post-install,post-upgrade")
                );
                assert_eq!(
                    job["new"]["/metadata/annotations/helm.sh~1hook"],
                    json!("pre-install,pre-upgrade")
                );
                let markers =
                    find(&items, "Job", "ess-deployment-markers-pre").expect("markers Job");
                let paths: Vec<&str> = markers["paths"]
                    .as_array()
                    .expect("paths")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert!(
                    paths
                        .iter()
                        .any(|p| p.starts_with("/spec/template/spec/containers/")),
                    "{paths:?}"
                );
            }
            "step3-delegated" => {
                let job = find(&items, "Job", "ess-syn2mas").expect("syn2mas Job");
                assert_eq!(job["change"], "removed");
            }
            _ => {}
        }

        // Summary: one line per reported resource, hooks tagged.
        let summary = run(&["-o", "summary", path_str(&old_file), path_str(&new_file)]);
        assert_eq!(summary.status.code(), Some(0), "no --exit-code: 0");
        let lines = text(&summary.stdout);
        assert_eq!(lines.lines().count(), items.len());
        if new_name == "step2-syn2mas-migrate" {
            assert!(
                lines
                    .lines()
                    .any(|l| l.starts_with("~ Job ess/ess-syn2mas (")
                        && l.ends_with(
                            "[hook post-install,post-upgrade w=0 → pre-install,pre-upgrade w=0]"
                        )),
                "{lines}"
            );
            assert!(
                lines.contains("+ Role ess/ess-syn2mas [hook pre-install,pre-upgrade w=-1]\n"),
                "{lines}"
            );
        }
    }
}

/// Splits a `helm template` render into its `---` documents.
fn documents(render: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in render.split_inclusive('\n') {
        if line.trim_end() == "---" && !current.trim().is_empty() {
            docs.push(std::mem::take(&mut current));
        }
        current.push_str(line);
    }
    if !current.trim().is_empty() {
        docs.push(current);
    }
    docs
}

#[test]
fn shuffled_documents_are_not_a_change() {
    let Some(dir) = renders("shuffled_documents_are_not_a_change") else {
        return;
    };
    let original = dir.join("step2-workers.yaml");
    let render = std::fs::read_to_string(&original).expect("render");
    let mut docs = documents(&render);
    assert!(docs.len() > 90, "{} documents", docs.len());
    // A fixed permutation: stride through the documents (the stride is coprime with the count).
    let n = docs.len();
    let stride = (37..).find(|s| gcd(*s, n) == 1).unwrap_or(1);
    let shuffled: Vec<String> = (0..n)
        .map(|i| std::mem::take(&mut docs[(i * stride) % n]))
        .collect();
    let shuffled = shuffled.concat();
    assert_ne!(shuffled, render, "the shuffle must move documents");
    let tmp = tempfile::tempdir().expect("tempdir");
    let copy = tmp.path().join("shuffled.yaml");
    std::fs::write(&copy, &shuffled).expect("write");

    let out = run(&["--exit-code", path_str(&original), path_str(&copy)]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    // The same through stdin, and with a directory of one file per document on the other side.
    let out = run_with(
        &["--exit-code", "-", path_str(&copy)],
        Some(render.as_bytes()),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "stdin: {}", text(&out.stderr));
    let split = tmp.path().join("split/nested");
    std::fs::create_dir_all(&split).expect("mkdir");
    for (i, doc) in documents(&shuffled).iter().enumerate() {
        std::fs::write(split.join(format!("{i:03}.yaml")), doc).expect("write");
    }
    let out = run(&[
        "--exit-code",
        "-o",
        "json",
        path_str(&original),
        path_str(&tmp.path().join("split")),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "directory: {}",
        text(&out.stderr)
    );
    assert_eq!(json_of(&out), Vec::<Value>::new());
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[test]
fn helm3_and_helm4_captures_differ_only_by_hooks() {
    let Some(dir) = renders("helm3_and_helm4_captures_differ_only_by_hooks") else {
        return;
    };
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
    let expected_hooks: BTreeSet<(String, String)> = scenario(&readme, "step2-syn2mas-migrate")
        .resources
        .into_iter()
        .filter_map(|(k, hook)| hook.map(|_| k))
        .collect();
    assert_eq!(expected_hooks.len(), 22);
    let helm3 = dir.join("postrender-input/helm3/step2-syn2mas-migrate.yaml");
    let helm4 = dir.join("postrender-input/helm4/step2-syn2mas-migrate.yaml");
    let out = run(&["-o", "json", path_str(&helm3), path_str(&helm4)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let items = json_of(&out);
    assert_eq!(
        changes(&items, "added"),
        expected_hooks,
        "Helm 4 shows the hooks Helm 3 hides"
    );
    assert!(items
        .iter()
        .filter(|i| i["change"] == "added")
        .all(|i| i["hook"].is_object()));
    assert!(changes(&items, "removed").is_empty());
    // Helm 4 re-serialises each template before the post-renderer sees it, and the last block
    // scalar of two templates loses its final newline (`|` in the Helm 3 capture, `|-` in the
    // Helm 4 one: ConfigMaps ess-postgres and ess-synapse-haproxy). Those are real value changes;
    // anything else (the filename annotation, indentation, document order) must not be.
    for item in items.iter().filter(|i| i["change"] == "changed") {
        let paths = item["paths"].as_array().expect("paths");
        assert!(!paths.is_empty());
        for path in paths.iter().filter_map(Value::as_str) {
            let old = item["old"][path]
                .as_str()
                .unwrap_or_else(|| panic!("{path} in {item}"));
            let new = item["new"][path]
                .as_str()
                .unwrap_or_else(|| panic!("{path} in {item}"));
            assert_eq!(
                old.trim_end_matches('\n'),
                new.trim_end_matches('\n'),
                "{path} in {:?}",
                key_of(item)
            );
        }
    }
    assert!(
        changes(&items, "changed").len() <= 2,
        "{:?}",
        changes(&items, "changed")
    );

    // The annotation is there: asking to see it makes every shared document change.
    let out = run(&[
        "-o",
        "json",
        "--no-ignore-helm4-annotation",
        path_str(&helm3),
        path_str(&helm4),
    ]);
    let items = json_of(&out);
    let annotated = items
        .iter()
        .filter(|i| i["change"] == "changed")
        .filter(|i| {
            i["paths"].as_array().is_some_and(|p| {
                p.contains(&json!("/metadata/annotations"))
                    || p.contains(&json!(
                        "/metadata/annotations/postrenderer.helm.sh~1postrender-filename"
                    ))
            })
        })
        .count();
    assert_eq!(annotated, 24, "every Helm 3 document gains the annotation");
}

#[test]
fn ignore_hashes_and_paths() {
    let Some(dir) = renders("ignore_hashes_and_paths") else {
        return;
    };
    let old = dir.join("step1-syn2mas-dryrun.yaml");
    let new = dir.join("step2-syn2mas-migrate.yaml");
    let all_paths = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["-o", "json"];
        args.extend_from_slice(extra);
        args.extend([path_str(&old), path_str(&new)]);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        json_of(&out)
            .iter()
            .flat_map(|i| i["paths"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect()
    };
    let plain = all_paths(&[]);
    assert!(
        plain
            .iter()
            .any(|p| p.contains("k8s.element.io~1synapse-config-hash")),
        "the hash labels change"
    );
    assert!(plain
        .iter()
        .any(|p| p.starts_with("/spec/template/metadata/labels/k8s.element.io~1")));
    let hashes = all_paths(&["--ignore-hashes"]);
    assert!(!hashes.iter().any(|p| p.ends_with("-hash")), "{hashes:?}");
    let glob = all_paths(&["--ignore-path", "labels:k8s.element.io/*-hash"]);
    assert_eq!(glob, hashes, "--ignore-hashes is the glob");
    let jsonpath = all_paths(&[
        "--ignore-path",
        "$.metadata.labels['k8s.element.io/synapse-config-hash']",
    ]);
    assert!(!jsonpath.contains(&"/metadata/labels/k8s.element.io~1synapse-config-hash".to_string()));
    assert!(jsonpath
        .iter()
        .any(|p| p == "/spec/template/metadata/labels/k8s.element.io~1synapse-config-hash"));
}

#[test]
fn guard_mode_diffs_the_post_render_output() {
    let Some(dir) = renders("guard_mode_diffs_the_post_render_output") else {
        return;
    };
    let render = dir.join("step2-syn2mas-migrate.yaml");
    let out = run(&[
        "--guard",
        "--state",
        "legacy_auth",
        "-o",
        "json",
        "--exit-code",
        path_str(&render),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let items = json_of(&out);
    let job = find(&items, "Job", "ess-syn2mas").expect("hardened syn2mas Job");
    assert_eq!(
        job["old"]["/metadata/annotations/helm.sh~1hook-weight"],
        json!("0")
    );
    assert_eq!(
        job["new"]["/metadata/annotations/helm.sh~1hook-weight"],
        json!("10"),
        "after check-config, within the chart's weights -10/0/10"
    );
    let sts = find(&items, "StatefulSet", "ess-synapse-main").expect("annotated Synapse");
    assert_eq!(sts["change"], "changed");
    assert!(
        items.iter().all(|i| i["change"] == "changed"),
        "post-render adds and removes nothing here"
    );

    // A rejected render: no diff, the report on stderr, exit 1.
    let out = run(&["--guard", "--state", "delegated_auth", path_str(&render)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("REJECTED"),
        "{}",
        text(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// Tests that need no shared files.

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    path.to_str().expect("utf-8").to_string()
}

const CANARIES: [&str; 8] = [
    "CANARY-password-Zq81x",
    "CANARY-removed-Lk29v",
    "CANARY-user-config-Pw73",
    "CANARY-stringdata-Rt55",
    "CANARY-last-applied-Mn04",
    "CANARY-added-Yu66q",
    "CANARY-user-config-Qa18",
    "CANARY-hook-Hj40",
];

fn secret_files(dir: &Path) -> (String, String) {
    let [pw, removed, user_old, string_old, applied, added, user_new, hook] = CANARIES;
    let old = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: ess\n  annotations:\n    \
         kubectl.kubernetes.io/last-applied-configuration: '{{\"data\":{{\"p\":\"{applied}\"}}}}'\n\
         data:\n  password: {}\n  same-size: {}\n  removed-key: {}\n  user-01-config.yaml: {}\n\
         stringData:\n  token: {string_old}\n\
         ---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {{name: in-list}}\n  stringData: {{k: {hook}-old}}\n\
         ---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: hook\n  annotations: {{helm.sh/hook: pre-upgrade}}\ndata: {{h: {}}}\n",
        b64(pw),
        b64("aaaa"),
        b64(removed),
        b64(&format!("config:\n  key: {user_old}\n")),
        b64(hook),
    );
    let new = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: ess\n  annotations:\n    \
         kubectl.kubernetes.io/last-applied-configuration: '{{\"data\":{{\"p\":\"{applied}-2\"}}}}'\n\
         data:\n  password: {}\n  same-size: {}\n  added-key: {}\n  user-01-config.yaml: {}\n\
         stringData:\n  token: {string_old}-2\n\
         ---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {{name: in-list}}\n  stringData: {{k: {hook}-new}}\n\
         ---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: hook\n  annotations: {{helm.sh/hook: pre-upgrade}}\ndata: {{h: {}}}\n",
        b64(&format!("{pw}-changed")),
        b64("bbbb"),
        b64(added),
        b64(&format!("config:\n  key: {user_new}\n")),
        b64(&format!("{hook}!")),
    );
    (write(dir, "old.yaml", &old), write(dir, "new.yaml", &new))
}

/// Every secret value as it appears in the files (base64) and decoded, plus the canaries.
fn forbidden(old: &str, new: &str) -> Vec<String> {
    let mut out: Vec<String> = CANARIES.iter().map(|c| c.to_string()).collect();
    out.extend(CANARIES.iter().map(|c| b64(c)));
    for file in [old, new] {
        let content = std::fs::read_to_string(file).expect("read");
        for line in content.lines() {
            for key in [
                "password: ",
                "same-size: ",
                "removed-key: ",
                "added-key: ",
                "user-01-config.yaml: ",
            ] {
                if let Some(v) = line.trim().strip_prefix(key) {
                    out.push(v.to_string());
                }
            }
        }
    }
    out.push(b64("aaaa"));
    out.push(b64("bbbb"));
    out
}

#[test]
fn secrets_show_keys_and_sizes_never_values() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (old, new) = secret_files(tmp.path());
    let forbidden = forbidden(&old, &new);
    for output in ["unified", "summary", "json"] {
        for color in ["never", "always"] {
            let out = run(&[
                "--output",
                output,
                "--color",
                color,
                "--exit-code",
                &old,
                &new,
            ]);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{output}: {}",
                text(&out.stderr)
            );
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            for secret in &forbidden {
                assert!(
                    !all.contains(secret.as_str()),
                    "{output}/{color} leaks {secret:?}:\n{all}"
                );
            }
        }
    }
    let unified = text(&run(&["--color", "never", &old, &new]).stdout);
    for shown in [
        "-  password: (redacted, 21 bytes)\n",
        "+  password: (redacted, 29 bytes, changed)\n",
        "-  same-size: (redacted, 4 bytes)\n",
        "+  same-size: (redacted, 4 bytes, changed)\n",
        "-  removed-key: (redacted, 20 bytes)\n",
        "+  added-key: (redacted, 18 bytes)\n",
        "user-01-config.yaml: (redacted, ",
        "-  token: (redacted, 22 bytes)\n",
        "+  token: (redacted, 24 bytes, changed)\n",
        "kubectl.kubernetes.io/last-applied-configuration: (redacted, ",
        "~ Secret in-list (1 path)\n",
        "~ Secret hook (1 path) [hook pre-upgrade w=0]\n",
    ] {
        assert!(unified.contains(shown), "missing {shown:?} in\n{unified}");
    }
    let out = run(&["-o", "json", &old, &new]);
    let items = json_of(&out);
    let s = find(&items, "Secret", "s").expect("Secret s");
    assert_eq!(
        s["old"]["/data/password"],
        json!({"redacted": true, "bytes": 21})
    );
    assert_eq!(
        s["new"]["/data/password"],
        json!({"redacted": true, "bytes": 29})
    );
    assert_eq!(
        s["new"]["/data/added-key"],
        json!({"redacted": true, "bytes": 18})
    );
    assert!(s["new"].get("/data/removed-key").is_none());
    assert_eq!(
        s["old"]["/data/removed-key"],
        json!({"redacted": true, "bytes": 20})
    );
    assert!(
        s["paths"]
            .as_array()
            .expect("paths")
            .contains(&json!("/data/same-size")),
        "a same-size change counts"
    );

    // The check can see a leak: --show-secrets shows the values.
    let shown = text(&run(&["--show-secrets", &old, &new]).stdout);
    assert!(
        shown.contains(&b64(CANARIES[0])),
        "--show-secrets shows data as written"
    );
    assert!(
        shown.contains(CANARIES[3]),
        "--show-secrets shows stringData"
    );

    // Nor in errors: a Secret that is not valid YAML right after a secret value.
    let broken = write(
        tmp.path(),
        "broken.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: b}}\nstringData:\n  k: {}\n  : [\n",
            CANARIES[0]
        ),
    );
    let out = run(&["-o", "json", &old, &broken]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        !text(&out.stderr).contains(CANARIES[0]),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_input_is_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = write(
        tmp.path(),
        "good.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
    );
    let bad_yaml = write(
        tmp.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n",
    );
    let no_kind = write(
        tmp.path(),
        "nokind.yaml",
        "apiVersion: v1\nmetadata: {name: a}\n",
    );
    let binary = tmp.path().join("binary.yaml");
    std::fs::write(&binary, [0xff_u8, 0xfe, 0x00, 0x01]).expect("write");
    let dup = write(tmp.path(), "dup.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
    let empty_dir = tmp.path().join("empty");
    std::fs::create_dir(&empty_dir).expect("mkdir");
    let missing = tmp.path().join("missing.yaml");
    let cases: Vec<Vec<&str>> = vec![
        vec![&good, path_str(&missing)],
        vec![&good, &bad_yaml],
        vec![&no_kind, &good],
        vec![&good, path_str(&binary)],
        vec![&good, &dup],
        vec![&good, path_str(&empty_dir)],
        vec!["-", "-"],
        vec![&good],
        vec![&good, &good, "--ignore-path", "$.data[?(@.x=="],
        vec![&good, &good, "--ignore-path", "metadata.labels.x"],
        vec![&good, &good, "--state", "legacy_auth"],
        vec!["--guard", &good, &good],
    ];
    for args in cases {
        let out = run_with(&args, Some(b""), &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{args:?}: stdout {}",
            text(&out.stdout)
        );
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("ess-guard: error: "),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn exit_codes_follow_git_diff() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = write(tmp.path(), "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {k8s.element.io/x-hash: '1'}\ndata: {k: v}\n");
    let b = write(tmp.path(), "b.yaml", "kind: ConfigMap\napiVersion: v1\ndata: {k: v}\nmetadata:\n    labels: {k8s.element.io/x-hash: '2'}\n    name: a\n");
    let c = write(
        tmp.path(),
        "c.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: w}\n",
    );
    let code = |args: &[&str]| run(args).status.code();
    assert_eq!(code(&["--exit-code", &a, &a]), Some(0));
    assert_eq!(code(&["--exit-code", &a, &c]), Some(1));
    assert_eq!(code(&["--detailed-exitcode", &a, &c]), Some(1));
    assert_eq!(
        code(&[&a, &c]),
        Some(0),
        "without --exit-code changes are not an error"
    );
    assert_eq!(
        code(&["--exit-code", &a, &b]),
        Some(1),
        "the hash label changed"
    );
    let out = run(&["--exit-code", "--ignore-hashes", &a, &b]);
    assert_eq!(out.status.code(), Some(0), "ignored changes do not count");
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("1 resource differs only in ignored paths"),
        "{}",
        text(&out.stderr)
    );
    // Colour only when asked (or on a terminal without NO_COLOR; the test's stdout is a pipe).
    assert!(text(&run(&["--color", "always", &a, &c]).stdout).contains("\x1b["));
    assert!(!text(&run(&[&a, &c]).stdout).contains("\x1b["));
    assert!(
        !text(&run_with(&["--color", "auto", &a, &c], None, &[("NO_COLOR", "1")]).stdout)
            .contains("\x1b[")
    );
    // --context: 0 lines around the change.
    let zero = text(&run(&["-U", "0", &a, &c]).stdout);
    assert!(
        zero.contains("@@ -3 +3 @@ data.k\n-  k: v\n+  k: w\n"),
        "{zero}"
    );
}
