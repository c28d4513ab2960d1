//! The differential test against the chart (issue 17): for every marker ConfigMap state × every
//! step render of both charts, the chart's own verdict and ess-guard's must agree.
//!
//! * **The chart's verdict** is what really happens: `helm install` (Helm 4, no ess-guard, no
//!   `--wait`; `--timeout 120s` only as a bound, the simulator finishes a Job in 0.1 s) of the
//!   real chart (`ess-chart/matrix-stack-26.8.2-dev.tgz` or
//!   `ess-renders/pr1584/chart/…-pr1584.tgz`) with the scenario's values file, against one
//!   kube-apiserver-lite whose Job simulator runs the chart's `deployment-markers` logic. The
//!   outcome is `allowed` (the install succeeded), `pre` (the markers pre-hook Job failed: nothing
//!   was applied) or `post` (the markers post-hook Job failed: the release was applied and then
//!   failed). `install`, not `upgrade`: the markers pre-hook runs on `pre-install` exactly as on
//!   `pre-upgrade` (same Job, same argument), while a prior install would run the post-hook and
//!   overwrite the seeded ConfigMap. A fresh namespace per case keeps the seeded state as it is.
//! * **ess-guard's verdict**: `ess-guard check --live -r ess -n <ns>` on the `helm template`
//!   output of the same chart and values, through the server's kubeconfig, run before the
//!   install (ess-guard only reads). The render is made once per chart+values with namespace
//!   `ess`; `-n` names the case's namespace (the only difference from what `helm install`
//!   renders is that namespace string). Exit 0 is `allowed`; exit 1 (a rule) or exit 3 (the
//!   marker could not be trusted, fail closed) is a refusal before anything is applied.
//! * They must agree, except the cases in [`INTENDED`]: where ess-guard refuses more on purpose,
//!   each with its rule id and reason. A listed case that no longer disagrees fails too (the list
//!   must stay true).
//! * As a check on the harness itself, the chart's observed verdict is also compared with
//!   [`chart_rule`], written from matrix-tools' `marker.GenerateConfigMap`
//!   (`element-hq/ess-helm` `matrix-tools/internal/pkg/marker/marker.go`, read for this test: the
//!   exact string compare of `data[key]` against the allowed list in `pre`, the managed-by label
//!   check, `binaryData` never read, the unconditional write in `post`, and one `Update` per step)
//!   and the Kubernetes ConfigMap validation the `post` update meets (a key in both `data` and
//!   `binaryData` is invalid; `immutable` forbids changing `data`). The simulator
//!   (`tools/kube-apiserver-lite/src/jobsim.go`) does the same.
//!
//! One server for the whole test, one namespace per case, [`PARALLEL`] cases at a time. The
//! result matrix is printed (see it with `--nocapture`). Needs `ESS_GUARD_SHARED`,
//! `ESS_GUARD_HELM4` and `KUBE_APISERVER_LITE_BIN`; without one it prints `skipped: …` and
//! passes, unless `ESS_GUARD_REQUIRE_ALL=1`.

mod support;

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Cases run at a time: each is one `helm install` (mostly waiting on hooks) and one ess-guard run.
const PARALLEL: usize = 4;

const KEY: &str = "MATRIX_STACK_MSC3861";
const MANAGED_BY: &str = "matrix-tools-deployment-markers";

/// How the marker ConfigMap `ess-markers` is seeded before the case runs.
#[derive(Debug, Clone, Copy)]
enum Stored {
    /// No ConfigMap.
    Absent,
    /// A ConfigMap with `data` (and optionally `immutable: true`).
    Data {
        /// `app.kubernetes.io/managed-by`, `None` for no such label.
        managed_by: Option<&'static str>,
        /// `data[MATRIX_STACK_MSC3861]`, `None` for a ConfigMap without the key.
        value: Option<&'static str>,
        immutable: bool,
    },
    /// The value only in `binaryData` (labelled as the chart labels it).
    BinaryOnly(&'static str),
}

struct Seed {
    id: &'static str,
    stored: Stored,
}

const fn labelled(id: &'static str, value: Option<&'static str>) -> Seed {
    Seed {
        id,
        stored: Stored::Data {
            managed_by: Some(MANAGED_BY),
            value,
            immutable: false,
        },
    }
}

/// Every marker ConfigMap state of issue 17, plus `immutable` (the chart's post step cannot
/// write the marker into an immutable ConfigMap, so it fails after the upgrade was applied).
const SEEDS: &[Seed] = &[
    Seed {
        id: "absent",
        stored: Stored::Absent,
    },
    labelled("legacy_auth", Some("legacy_auth")),
    labelled("syn2mas_migrated", Some("syn2mas_migrated")),
    labelled("delegated_auth", Some("delegated_auth")),
    labelled("key-missing", None),
    labelled("empty", Some("")),
    labelled("legacy_auth-newline", Some("legacy_auth\n")),
    labelled("unknown-value", Some("syn2mas_dry_run")),
    Seed {
        id: "unlabelled",
        stored: Stored::Data {
            managed_by: None,
            value: Some("legacy_auth"),
            immutable: false,
        },
    },
    Seed {
        id: "managed-by-helm",
        stored: Stored::Data {
            managed_by: Some("Helm"),
            value: Some("legacy_auth"),
            immutable: false,
        },
    },
    Seed {
        id: "binary-data",
        stored: Stored::BinaryOnly("legacy_auth"),
    },
    Seed {
        id: "immutable",
        stored: Stored::Data {
            managed_by: Some(MANAGED_BY),
            value: Some("legacy_auth"),
            immutable: true,
        },
    },
];

/// One chart + values file, with the `-markers` entry the chart renders for it (`new` and the
/// allowed list), written from `reference/ess-chart.md` §1.3 and `pr1584/README.md` §1.2.
struct Render {
    id: &'static str,
    /// Below `$ESS_GUARD_SHARED`.
    chart: &'static str,
    /// Below `$ESS_GUARD_SHARED/ess-renders`.
    values: &'static str,
    new: &'static str,
    allowed: &'static [&'static str],
    /// Only these seeds (to keep the test fast where the other seeds add nothing), or all.
    only: Option<&'static [&'static str]>,
}

const OLD: &str = "ess-chart/matrix-stack-26.8.2-dev.tgz";
const PR1584: &str = "ess-renders/pr1584/chart/matrix-stack-26.8.2-dev-pr1584.tgz";

const RENDERS: &[Render] = &[
    Render {
        id: "old/legacy",
        chart: OLD,
        values: "values/legacy.yaml",
        new: "legacy_auth",
        allowed: &["legacy_auth"],
        only: None,
    },
    Render {
        id: "old/step1",
        chart: OLD,
        values: "values/step1-syn2mas-dryrun.yaml",
        new: "legacy_auth",
        allowed: &["legacy_auth"],
        only: None,
    },
    Render {
        id: "old/step2",
        chart: OLD,
        values: "values/step2-syn2mas-migrate.yaml",
        new: "syn2mas_migrated",
        allowed: &["legacy_auth"],
        only: None,
    },
    Render {
        id: "old/step3",
        chart: OLD,
        values: "values/step3-delegated.yaml",
        new: "delegated_auth",
        allowed: &["delegated_auth", "syn2mas_migrated"],
        only: None,
    },
    Render {
        id: "pr1584/legacy",
        chart: PR1584,
        values: "values/legacy.yaml",
        new: "legacy_auth",
        allowed: &["legacy_auth"],
        only: None,
    },
    Render {
        id: "pr1584/step1",
        chart: PR1584,
        values: "values/step1-syn2mas-dryrun.yaml",
        new: "legacy_auth",
        allowed: &["legacy_auth"],
        only: None,
    },
    Render {
        id: "pr1584/step2",
        chart: PR1584,
        values: "values/step2-syn2mas-migrate.yaml",
        new: "syn2mas_migrated",
        allowed: &["legacy_auth", "syn2mas_migrated"],
        only: None,
    },
    Render {
        id: "pr1584/step3",
        chart: PR1584,
        values: "values/step3-delegated.yaml",
        new: "delegated_auth",
        allowed: &["delegated_auth", "syn2mas_migrated"],
        only: None,
    },
    // A step 2 whose MAS config lacks the bcrypt v1 scheme: the markers Job passes it, ess-guard
    // refuses it on purpose (see INTENDED). On the pr1584 chart, which has no syn2mas-check init
    // container either, so nothing in the chart looks at the password schemes.
    Render {
        id: "pr1584/step2-no-bcrypt",
        chart: PR1584,
        values: "extra/values/step2-no-password-scheme.yaml",
        new: "syn2mas_migrated",
        allowed: &["legacy_auth", "syn2mas_migrated"],
        only: Some(&[
            "absent",
            "legacy_auth",
            "key-missing",
            "syn2mas_migrated",
            "delegated_auth",
        ]),
    },
];

/// A case where ess-guard refuses and the chart's markers Job allows, on purpose.
struct Intended {
    render: &'static str,
    /// Seed ids; the chart must allow each of them (else it is no disagreement).
    seeds: &'static [&'static str],
    /// The rule ess-guard must refuse with (exit 1, first error).
    rule: &'static str,
    reason: &'static str,
}

const INTENDED: &[Intended] = &[Intended {
    render: "pr1584/step2-no-bcrypt",
    seeds: &["absent", "legacy_auth", "key-missing", "syn2mas_migrated"],
    rule: "missing-bcrypt-scheme",
    reason: "syn2mas imports Synapse's bcrypt hashes as MAS password scheme 1; the markers Job does not look at MAS config (and the pr1584 chart has no syn2mas-check either)",
}];

/// What the chart did (or, in [`chart_rule`], must do).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chart {
    Allowed,
    /// The markers pre-hook Job failed: nothing applied.
    Pre,
    /// The markers post-hook Job failed: applied, then the release failed.
    Post,
    /// Anything else (a harness problem): the first lines of Helm's error.
    Other(String),
}

impl Chart {
    fn short(&self) -> &str {
        match self {
            Chart::Allowed => "ok",
            Chart::Pre => "PRE",
            Chart::Post => "POST",
            Chart::Other(_) => "??",
        }
    }
    fn refuses(&self) -> bool {
        matches!(self, Chart::Pre | Chart::Post)
    }
}

/// What ess-guard said.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Guard {
    Allowed,
    /// Exit 1 and the first error rule.
    Rejected(String),
    /// Exit 3: the marker state could not be trusted (fail closed); the error line.
    StateError(String),
    /// Anything else (exit 2, 4, a crash): code and stderr.
    Other(i32, String),
}

impl Guard {
    fn short(&self) -> String {
        match self {
            Guard::Allowed => "ok".into(),
            Guard::Rejected(rule) => format!("1:{rule}"),
            Guard::StateError(_) => "3".into(),
            Guard::Other(code, _) => format!("?{code}"),
        }
    }
    fn refuses(&self) -> bool {
        matches!(self, Guard::Rejected(_) | Guard::StateError(_))
    }
}

/// The chart's verdict from its own code (matrix-tools `marker.GenerateConfigMap`) plus the API
/// server's ConfigMap validation, for a seeded state and a render's `new:allowed` entry.
fn chart_rule(stored: Stored, render: &Render) -> Chart {
    match stored {
        // pre: the GET fails, so the ConfigMap is created empty; post writes the key.
        Stored::Absent => Chart::Allowed,
        Stored::Data {
            managed_by,
            value,
            immutable,
        } => {
            if managed_by != Some(MANAGED_BY) {
                // "configmap ns/ess-markers is not managed by this matrix-tools-deployment-markers"
                return Chart::Pre;
            }
            if let Some(v) = value {
                // Exact string comparison: no trimming, "" is a value like any other.
                if !render.allowed.contains(&v) {
                    return Chart::Pre;
                }
            }
            // pre's Update only relabels; post's Update changes data[key] unless it already
            // holds the new value, which `immutable: true` forbids.
            if immutable && value != Some(render.new) {
                return Chart::Post;
            }
            Chart::Allowed
        }
        // data never holds the key, so pre passes; post puts the key into data while binaryData
        // has it too: "data[MATRIX_STACK_MSC3861]: … duplicate of key present in binaryData".
        Stored::BinaryOnly(_) => Chart::Post,
    }
}

/// The seeded ConfigMap (or nothing) in `ns`, as YAML.
fn seed_manifest(ns: &str, stored: Stored) -> String {
    let quoted = |s: &str| serde_json::to_string(s).expect("JSON string");
    let head = |managed_by: Option<&str>| {
        let mut text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ess-markers\n  namespace: {ns}\n"
        );
        if let Some(m) = managed_by {
            text.push_str(&format!(
                "  labels:\n    app.kubernetes.io/managed-by: {}\n",
                quoted(m)
            ));
        }
        text
    };
    match stored {
        Stored::Absent => String::new(),
        Stored::Data {
            managed_by,
            value,
            immutable,
        } => {
            let mut text = head(managed_by);
            if immutable {
                text.push_str("immutable: true\n");
            }
            text.push_str("data:\n  other: kept\n");
            if let Some(v) = value {
                text.push_str(&format!("  {KEY}: {}\n", quoted(v)));
            }
            text
        }
        Stored::BinaryOnly(v) => {
            use base64::Engine as _;
            let mut text = head(Some(MANAGED_BY));
            text.push_str(&format!(
                "binaryData:\n  {KEY}: {}\n",
                base64::engine::general_purpose::STANDARD.encode(v)
            ));
            text
        }
    }
}

struct Outcome {
    render: usize,
    seed: usize,
    ns: String,
    chart: Chart,
    guard: Guard,
    helm_time: Duration,
}

#[test]
fn ess_guard_agrees_with_the_chart() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let Some(helm) = support::helm4() else {
        return;
    };
    let Some(server) = cluster::LiteServer::start() else {
        return;
    };
    let started = Instant::now();
    let renders_dir = shared.join("ess-renders");
    let sandbox = support::HelmSandbox::new();

    // 1. Render each chart+values once (namespace ess) for ess-guard, and check that the chart
    //    renders the `-markers` entry this test assumes.
    let render_files: Vec<PathBuf> = std::thread::scope(|scope| {
        let handles: Vec<_> = RENDERS
            .iter()
            .map(|r| {
                let (sandbox, helm, shared, renders_dir, server) =
                    (&sandbox, &helm, &shared, &renders_dir, &server);
                scope.spawn(move || {
            let out = support::output(
                sandbox
                    .helm4(helm)
                    .args(["template", "ess"])
                    .arg(shared.join(r.chart))
                    .args(["--namespace", "ess", "-f"])
                    .arg(renders_dir.join(r.values)),
            );
            assert!(
                out.status.success(),
                "{}: helm template failed: {}",
                r.id,
                support::text(&out.stderr)
            );
            let text = support::text(&out.stdout);
            let entry = format!("ess-markers:{KEY}:{}:{}", r.new, r.allowed.join(";"));
            assert!(
                text.contains(&entry),
                "{}: the render's markers Job does not carry {entry:?}; the test's table is out of date",
                r.id
            );
            let path = server.scratch().join(format!("{}.yaml", r.id.replace('/', "-")));
            std::fs::write(&path, &out.stdout).expect("write render");
            path
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("render thread"))
            .collect()
    });
    let render_time = started.elapsed();

    // 2. One namespace per case, all seeded with one kubectl call.
    let cases: Vec<(usize, usize, String)> = (0..RENDERS.len())
        .flat_map(|r| (0..SEEDS.len()).map(move |s| (r, s)))
        .filter(|(r, s)| {
            RENDERS[*r]
                .only
                .is_none_or(|only| only.contains(&SEEDS[*s].id))
        })
        .enumerate()
        .map(|(i, (r, s))| (r, s, format!("d{i:03}")))
        .collect();
    let mut manifest = String::new();
    for (_, _, ns) in &cases {
        manifest.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"
        ));
    }
    for (_, s, ns) in &cases {
        let cm = seed_manifest(ns, SEEDS[*s].stored);
        if !cm.is_empty() {
            manifest.push_str("---\n");
            manifest.push_str(&cm);
        }
    }
    server.kubectl(&["create", "-f", "-"], Some(&manifest));

    // 3. Each case: ess-guard first (read-only), then the chart's own install.
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Outcome>> = Mutex::new(Vec::new());
    let admin = server.admin_kubeconfig();
    let restricted = server.restricted_kubeconfig();
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((r, s, ns)) = cases.get(i) else {
                    break;
                };
                let guard = guard_verdict(&render_files[*r], ns, &restricted);
                let helm_started = Instant::now();
                let chart = chart_verdict(
                    &sandbox,
                    &helm,
                    &shared.join(RENDERS[*r].chart),
                    &renders_dir.join(RENDERS[*r].values),
                    ns,
                    &admin,
                );
                let outcome = Outcome {
                    render: *r,
                    seed: *s,
                    ns: ns.clone(),
                    chart,
                    guard,
                    helm_time: helm_started.elapsed(),
                };
                outcomes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(outcome);
            });
        }
    });
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    outcomes.sort_by_key(|o| (o.render, o.seed));

    // 4. The markers Jobs' own messages (the chart's reason), for the failure messages.
    let reasons = markers_job_messages(&server);

    let failures = judge(&outcomes, &reasons);
    print_matrix(&outcomes);
    let helm_total: Duration = outcomes.iter().map(|o| o.helm_time).sum();
    println!(
        "differential: {} cases in {:.1} s ({:.1} s rendering, {:.1} s of helm install summed over {PARALLEL} workers)",
        outcomes.len(),
        started.elapsed().as_secs_f64(),
        render_time.as_secs_f64(),
        helm_total.as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        outcomes.len(),
        failures.join("\n")
    );
}

/// `ess-guard check --live` on the render, reading the marker in `ns`.
fn guard_verdict(render: &Path, ns: &str, kubeconfig: &Path) -> Guard {
    let render = render.to_str().expect("UTF-8 path");
    let kubeconfig = kubeconfig.to_str().expect("UTF-8 path");
    let run = cluster::ess_guard(
        &[
            "check",
            "--live",
            "-r",
            "ess",
            "-n",
            ns,
            "--kubeconfig",
            kubeconfig,
            "--format",
            "json",
            render,
        ],
        None,
        &[],
    );
    match run.code {
        0 => Guard::Allowed,
        1 => {
            let report: Value = match serde_json::from_str(&run.stdout) {
                Ok(v) => v,
                Err(e) => {
                    return Guard::Other(1, format!("exit 1 without a JSON report ({e})"));
                }
            };
            let first = report
                .pointer("/inputs/0/findings")
                .and_then(Value::as_array)
                .and_then(|fs| {
                    fs.iter()
                        .find(|f| f.get("severity").and_then(Value::as_str) == Some("error"))
                })
                .and_then(|f| f.get("rule"))
                .and_then(Value::as_str)
                .unwrap_or("<no error finding>");
            Guard::Rejected(first.to_string())
        }
        3 => Guard::StateError(run.stderr.lines().next().unwrap_or("").to_string()),
        code => Guard::Other(code, run.stderr),
    }
}

/// The real `helm install` of the chart in `ns`, without ess-guard.
fn chart_verdict(
    sandbox: &support::HelmSandbox,
    helm: &Path,
    chart: &Path,
    values: &Path,
    ns: &str,
    kubeconfig: &Path,
) -> Chart {
    let mut cmd = sandbox.helm4(helm);
    cmd.args(["install", "ess"])
        .arg(chart)
        .args(["--namespace", ns, "-f"])
        .arg(values)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--timeout", "120s"]);
    // No extra time limit: `--timeout` bounds every wait of Helm's, and a loaded machine can
    // make an install take longer than the ess-guard runs' limit.
    let out = support::output(&mut cmd);
    if out.status.success() {
        return Chart::Allowed;
    }
    let err = support::text(&out.stderr);
    let failed_job = |name: &str| {
        err.contains(&format!("Job/{ns}/{name} ")) || err.contains(&format!("job {name} failed"))
    };
    if err.contains("pre-install") && failed_job("ess-deployment-markers-pre") {
        Chart::Pre
    } else if err.contains("post-install") && failed_job("ess-deployment-markers-post") {
        Chart::Post
    } else {
        Chart::Other(err.lines().take(3).collect::<Vec<_>>().join(" | "))
    }
}

/// `namespace/job` → the `Failed` condition's message, for every failed markers Job.
fn markers_job_messages(server: &cluster::LiteServer) -> BTreeMap<String, String> {
    let text = server.kubectl(&["get", "jobs", "-A", "-o", "json"], None);
    let list: Value = serde_json::from_str(&text).expect("kubectl get jobs -o json");
    let mut out = BTreeMap::new();
    for job in list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = job
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let ns = job
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !name.starts_with("ess-deployment-markers-") {
            continue;
        }
        let failed = job
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| {
                c.get("type").and_then(Value::as_str) == Some("Failed")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            });
        if let Some(c) = failed {
            let msg = c.get("message").and_then(Value::as_str).unwrap_or("");
            out.insert(format!("{ns}/{name}"), msg.to_string());
        }
    }
    out
}

/// Every way a case can fail, one line each: case, expected, got.
fn judge(outcomes: &[Outcome], reasons: &BTreeMap<String, String>) -> Vec<String> {
    let mut failures = Vec::new();
    for o in outcomes {
        let render = &RENDERS[o.render];
        let seed = &SEEDS[o.seed];
        let case = format!("{} × {} (ns {})", render.id, seed.id, o.ns);
        let why_chart = match o.chart {
            Chart::Pre => reasons
                .get(&format!("{}/ess-deployment-markers-pre", o.ns))
                .cloned(),
            Chart::Post => reasons
                .get(&format!("{}/ess-deployment-markers-post", o.ns))
                .cloned(),
            _ => None,
        }
        .map(|m| format!(" [{}]", m.escape_debug()))
        .unwrap_or_default();

        // The harness: the chart did what its code says it does.
        let expected_chart = chart_rule(seed.stored, render);
        if o.chart != expected_chart {
            failures.push(format!(
                "{case}: chart: expected {expected_chart:?} from matrix-tools' marker rules, got {:?}{why_chart}",
                o.chart
            ));
            continue;
        }
        if let Guard::Other(code, stderr) = &o.guard {
            failures.push(format!(
                "{case}: ess-guard: expected exit 0, 1 or 3, got exit {code}: {}",
                stderr.trim()
            ));
            continue;
        }
        let intended = INTENDED
            .iter()
            .find(|d| d.render == render.id && d.seeds.contains(&seed.id));
        match intended {
            Some(d) => {
                if o.chart.refuses() {
                    failures.push(format!(
                        "{case}: INTENDED lists it ({}) but the chart refuses too{why_chart}; remove it from the list",
                        d.rule
                    ));
                } else if o.guard != Guard::Rejected(d.rule.to_string()) {
                    failures.push(format!(
                        "{case}: intended disagreement: expected ess-guard to refuse with {} ({}), got {}",
                        d.rule,
                        d.reason,
                        describe_guard(&o.guard)
                    ));
                }
            }
            None => {
                if o.chart.refuses() != o.guard.refuses() {
                    let expected = if o.chart.refuses() {
                        "a refusal (exit 1 or 3)"
                    } else {
                        "allowed (exit 0)"
                    };
                    failures.push(format!(
                        "{case}: chart {}{why_chart}; expected ess-guard {expected}, got {}",
                        match o.chart {
                            Chart::Pre => "refuses in the markers pre-hook",
                            Chart::Post =>
                                "applies the upgrade, then fails in the markers post-hook",
                            _ => "allows",
                        },
                        describe_guard(&o.guard)
                    ));
                }
            }
        }
    }
    failures
}

fn describe_guard(g: &Guard) -> String {
    match g {
        Guard::Allowed => "allowed (exit 0)".into(),
        Guard::Rejected(rule) => format!("rejected (exit 1) by {rule}"),
        Guard::StateError(line) => format!("exit 3: {line}"),
        Guard::Other(code, err) => format!("exit {code}: {}", err.trim()),
    }
}

/// Rows: seeded states; columns: renders; cell `chart/ess-guard`.
fn print_matrix(outcomes: &[Outcome]) {
    let width = 24;
    println!("differential matrix: cell = chart/ess-guard (ok, PRE = markers pre-hook failed, POST = post-hook failed after apply; 1:<rule> rejected, 3 = marker refused as unreadable); * = disagreement, i = intended");
    let mut header = format!("{:<20}", "state \\ render");
    for r in RENDERS {
        header.push_str(&format!(" {:<width$}", r.id));
    }
    println!("{header}");
    for (s, seed) in SEEDS.iter().enumerate() {
        let mut line = format!("{:<20}", seed.id);
        for (r, render) in RENDERS.iter().enumerate() {
            let cell = outcomes
                .iter()
                .find(|o| o.render == r && o.seed == s)
                .map(|o| {
                    let intended = INTENDED
                        .iter()
                        .any(|d| d.render == render.id && d.seeds.contains(&seed.id));
                    let mark = if intended {
                        "i"
                    } else if o.chart.refuses() != o.guard.refuses() {
                        "*"
                    } else {
                        ""
                    };
                    format!("{}/{}{mark}", o.chart.short(), o.guard.short())
                })
                .unwrap_or_else(|| "-".into());
            line.push_str(&format!(" {cell:<width$}"));
        }
        println!("{line}");
    }
}

#[test]
fn chart_rule_follows_matrix_tools() {
    // The harness's own table, on the cases the chart's code makes subtle.
    let step2 = &RENDERS[2];
    let step2_new = &RENDERS[6];
    let legacy = &RENDERS[0];
    let of = |id: &str| SEEDS.iter().find(|s| s.id == id).expect("seed").stored;
    assert_eq!(chart_rule(of("absent"), step2), Chart::Allowed);
    assert_eq!(chart_rule(of("key-missing"), step2), Chart::Allowed);
    assert_eq!(chart_rule(of("legacy_auth-newline"), step2), Chart::Pre);
    assert_eq!(chart_rule(of("empty"), legacy), Chart::Pre);
    assert_eq!(chart_rule(of("syn2mas_migrated"), step2), Chart::Pre);
    assert_eq!(
        chart_rule(of("syn2mas_migrated"), step2_new),
        Chart::Allowed
    );
    assert_eq!(chart_rule(of("unlabelled"), legacy), Chart::Pre);
    assert_eq!(chart_rule(of("binary-data"), legacy), Chart::Post);
    assert_eq!(chart_rule(of("immutable"), legacy), Chart::Allowed);
    assert_eq!(chart_rule(of("immutable"), step2), Chart::Post);
}
