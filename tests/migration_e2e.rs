//! The whole Synapse → MAS migration, end to end, on the REAL chart (26.8.2-dev and the pr1584
//! build from `$ESS_GUARD_SHARED`), with real Helm 3 and Helm 4, the real API server
//! (kube-apiserver-lite, whose Job simulator runs the chart's markers and syn2mas hooks) and
//! ess-guard as the post-renderer reading the live marker as the restricted user.
//!
//! One server, one namespace per scenario, scenarios in parallel threads:
//! * `flow` (each chart × each Helm major): install legacy → step 1 → step 2 → step 3, the
//!   marker after each, the Synapse StatefulSets' annotations after step 2, `plan` at each
//!   state printing the command the next step then runs verbatim; at every state every upgrade
//!   the chart forbids, refused by ess-guard with NOTHING applied (the namespace's objects and
//!   their resourceVersions, Helm's revisions, the marker: all unchanged; under Helm 3 the
//!   values only on Helm's own command line), then the same upgrade without ess-guard, stopped
//!   late by the chart (its markers Job fails, a failed revision is recorded) as the contrast.
//! * `recover` (each Helm major): step 2 with a failing syn2mas Job (the simulator scales
//!   Synapse to 0 and does not restore it), then `recover` (dry run, `--apply`, again: no-op).
//!
//! Needs KUBE_APISERVER_LITE_BIN, ESS_GUARD_HELM3 and ESS_GUARD_HELM4 (scripts/e2e-migration.sh
//! sets them); without them it prints `skipped: …` (a failure with ESS_GUARD_REQUIRE_ALL=1).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/scenarios.rs"]
mod scenarios;
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use cluster::{run_with_limit, LiteServer, Run};
use scenarios::RESTORE;
use support::HelmSandbox;

const MARKERS_PRE: &str = "ess-deployment-markers-pre";

/// `$ESS_GUARD_SHARED` (the folder holding tools/, ess-chart/, ess-renders/). Called once a
/// server runs, which needed the same setting, so here it is always set.
fn shared() -> PathBuf {
    support::shared_dir().expect("ESS_GUARD_SHARED is set: the API server started from it")
}

fn values(name: &str) -> String {
    let p = shared().join("ess-renders/values").join(name);
    assert!(p.is_file(), "{} not found", p.display());
    p.to_str().expect("UTF-8 path").to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chart {
    /// matrix-stack 26.8.2-dev (ess-helm 83c7981): stage 2 happens once.
    Base,
    /// The same chart with ess-helm #1584: stage 2 may be repeated.
    Pr1584,
}

impl Chart {
    fn tgz(self) -> String {
        let p = match self {
            Chart::Base => shared().join("ess-chart/matrix-stack-26.8.2-dev.tgz"),
            Chart::Pr1584 => {
                shared().join("ess-renders/pr1584/chart/matrix-stack-26.8.2-dev-pr1584.tgz")
            }
        };
        assert!(p.is_file(), "{} not found", p.display());
        p.to_str().expect("UTF-8 path").to_string()
    }

    /// Whether the chart's markers Job lets step 2 run again from `syn2mas_migrated`.
    fn repeats_stage2(self) -> bool {
        self == Chart::Pr1584
    }
}

/// The server and the Helm binaries; each scenario runs Helm in its own [`HelmSandbox`].
struct Env {
    server: LiteServer,
    helm3: PathBuf,
    helm4: PathBuf,
}

impl Env {
    fn new() -> Option<Env> {
        let helm3 = support::helm3()?;
        let helm4 = support::helm4()?;
        let server = simulator_server()?;
        Some(Env {
            server,
            helm3,
            helm4,
        })
    }
}

/// A server whose Job simulator reads `STATEDIR/fail-jobs`. start.sh probes the binary with
/// `"$BIN" -h 2>&1 | grep -q -- -fail-jobs-file` under `pipefail`: when grep exits on the match
/// before the binary has written all its help, the binary dies of SIGPIPE, the probe "fails",
/// and the server starts WITHOUT `--fail-jobs-file` (seen on a loaded machine: the injected
/// syn2mas failure silently did not happen). Check the running server's command line and
/// start again when the flag is missing.
fn simulator_server() -> Option<LiteServer> {
    for _ in 0..5 {
        let server = LiteServer::start()?;
        let pid = std::fs::read_to_string(server.state_dir().join("pid")).expect("pid file");
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("--fail-jobs-file") {
            return Some(server);
        }
        eprintln!("kube-apiserver-lite started without --fail-jobs-file (start.sh probe race); restarting");
    }
    panic!("kube-apiserver-lite never started with --fail-jobs-file");
}

/// One scenario: a namespace, a Helm major, a chart; release `ess`.
struct Ns<'a> {
    env: &'a Env,
    ns: String,
    major: u8,
    chart: Chart,
    /// Helm's folders, `ess-guard` on PATH (Helm 3 finds its `--post-renderer ess-guard`
    /// there, Helm 4's plugin runs it from there), the shipped Helm 4 plugin, the reports.
    sandbox: HelmSandbox,
    runs: std::cell::Cell<u32>,
}

/// The namespace's objects: `kind/name` → resourceVersion.
type Snapshot = BTreeMap<String, String>;

const KINDS: &str = "configmaps,secrets,services,serviceaccounts,persistentvolumeclaims,pods,deployments,statefulsets,jobs,roles,rolebindings,ingresses,events";

impl<'a> Ns<'a> {
    fn new(env: &'a Env, ns: &str, major: u8, chart: Chart) -> Ns<'a> {
        let sandbox = HelmSandbox::new();
        sandbox.link_example_plugin();
        Ns {
            env,
            ns: ns.to_string(),
            major,
            chart,
            sandbox,
            runs: std::cell::Cell::new(0),
        }
    }

    fn what(&self) -> String {
        format!("[{} helm{} {:?}]", self.ns, self.major, self.chart)
    }

    /// Runs Helm (`args` after the binary) as admin. With `guard`, ess-guard is the
    /// post-renderer (added unless `args` name it already, as plan's command does) and gets
    /// the restricted kubeconfig and a report file; returns the run and the report's text.
    fn helm(&self, args: &[String], guard: bool) -> (Run, String) {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let report = self.sandbox.path(&format!("report-{n}.txt"));
        let helm = if self.major == 3 {
            &self.env.helm3
        } else {
            &self.env.helm4
        };
        let mut cmd = self.sandbox.helm(helm, self.major);
        cmd.args(args).args(["--timeout", "60s"]);
        if guard {
            if !args.iter().any(|a| a == "--post-renderer") {
                cmd.args(["--post-renderer", "ess-guard"]);
            }
            cmd.arg(format!(
                "--post-renderer-args=--kubeconfig={}",
                self.env.server.restricted_kubeconfig().display()
            ))
            .arg("--post-renderer-args=--no-tty")
            .arg(format!(
                "--post-renderer-args=--report={}",
                report.display()
            ));
        }
        cmd.env("KUBECONFIG", self.env.server.admin_kubeconfig());
        let run = run_with_limit(cmd, b"");
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        (run, text)
    }

    fn upgrade_args(&self, values_file: &str) -> Vec<String> {
        [
            "upgrade",
            "ess",
            &self.chart.tgz(),
            "-n",
            &self.ns,
            "-f",
            &values(values_file),
        ]
        .map(str::to_string)
        .to_vec()
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.ns.as_str()];
        full.extend_from_slice(args);
        self.env.server.kubectl(&full, None)
    }

    fn marker(&self) -> String {
        self.env.server.jsonpath(
            &self.ns,
            "cm",
            "ess-markers",
            &format!("{{.data.{}}}", cluster::MARKER_KEY),
        )
    }

    fn snapshot(&self) -> Snapshot {
        let out = self.kubectl(&[
            "get",
            KINDS,
            "-o",
            "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion}{\"\\n\"}{end}",
        ]);
        out.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Helm's revisions of release `ess`: (version, status) from the release Secrets' labels.
    fn revisions(&self) -> Vec<(u32, String)> {
        let out = self.kubectl(&[
            "get",
            "secrets",
            "-l",
            "owner=helm,name=ess",
            "-o",
            "jsonpath={range .items[*]}{.metadata.labels.version} {.metadata.labels.status}{\"\\n\"}{end}",
        ]);
        let mut revs: Vec<(u32, String)> = out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(v, s)| (v.parse().expect("revision number"), s.to_string()))
            .collect();
        revs.sort();
        revs
    }

    fn jobs(&self) -> Vec<String> {
        self.kubectl(&["get", "jobs", "-o", "jsonpath={.items[*].metadata.name}"])
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Synapse StatefulSets: name → (spec.replicas, restore-replicas annotation).
    fn synapse(&self) -> BTreeMap<String, (String, String)> {
        let out = self.kubectl(&[
            "get",
            "sts",
            "-l",
            "app.kubernetes.io/component=matrix-server",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.spec.replicas} {.metadata.annotations.ess-guard\\.element\\.io/restore-replicas}{\"\\n\"}{end}",
        ]);
        out.lines()
            .map(|l| {
                let mut f = l.split(' ');
                let name = f.next().unwrap_or_default().to_string();
                let replicas = f.next().unwrap_or_default().to_string();
                let annotation = f.next().unwrap_or_default().to_string();
                (name, (replicas, annotation))
            })
            .collect()
    }

    fn job_annotation(&self, job: &str) -> String {
        self.env.server.jsonpath(
            &self.ns,
            "job",
            job,
            "{.metadata.annotations.kube-apiserver-lite/simulated}",
        )
    }

    fn job_failure(&self, job: &str) -> String {
        self.env.server.jsonpath(
            &self.ns,
            "job",
            job,
            "{.status.conditions[?(@.type==\"Failed\")].message}",
        )
    }

    /// Runs ess-guard (not through Helm) as the restricted user.
    fn ess_guard(&self, args: &[&str]) -> Run {
        let mut full: Vec<&str> = args.to_vec();
        full.extend_from_slice(&["-r", "ess", "-n", &self.ns]);
        cluster::guard_with(self.env.server.restricted_kubeconfig(), &full, None, &[])
    }

    /// `ess-guard plan`: its whole output, and the `helm upgrade` command it prints as argv.
    fn plan(&self) -> (String, Option<Vec<String>>) {
        let chart = self.chart.tgz();
        let run = self.ess_guard(&["plan", "--chart", &chart]);
        assert_eq!(run.code, 0, "{} plan: {}", self.what(), run.stderr);
        let start = run.stdout.find("helm upgrade ");
        let cmd = start.map(|i| {
            let text: String = run.stdout[i..]
                .split("\n\n")
                .next()
                .unwrap_or_default()
                .replace("\\\n", " ");
            text.split_whitespace().map(str::to_string).collect()
        });
        (run.stdout, cmd)
    }

    /// `plan`'s output and the command it prints, which must be the `step` (`dry-run`,
    /// `migrate`, `finalize`) through ess-guard.
    fn plan_next(&self, step: &str) -> (String, Vec<String>) {
        let w = self.what();
        let (text, cmd) = self.plan();
        let cmd = cmd.unwrap_or_else(|| panic!("{w} plan printed no command: {text}"));
        assert!(
            cmd.contains(&format!("--post-renderer-args=--step={step}")),
            "{w} {cmd:?}\n{text}"
        );
        (text, cmd)
    }

    /// Runs the command `plan` printed (its first word, `helm`, is this scenario's Helm),
    /// plus `extra` arguments; asserts success.
    fn run_planned(&self, cmd: &[String], extra: &[String]) {
        assert_eq!(cmd[0], "helm", "{cmd:?}");
        let mut args: Vec<String> = cmd[1..].to_vec();
        args.extend_from_slice(extra);
        let (run, report) = self.helm(&args, true);
        assert_eq!(
            run.code,
            0,
            "{} {args:?} failed: {}\n{report}",
            self.what(),
            run.stderr
        );
    }

    /// An upgrade the chart forbids from the current state: refused by ess-guard with nothing
    /// applied, then, without ess-guard, stopped by the chart's markers Job after Helm has
    /// started the upgrade (with `contrast`). Returns ess-guard's message (Helm 3: Helm's stderr; Helm 4: the
    /// report, since Helm 4 drops a plugin's stderr).
    fn forbidden(&self, values_file: &str, rule: &str, contrast: bool) -> String {
        self.forbidden_args(&self.upgrade_args(values_file), rule, contrast)
    }

    /// [`Ns::forbidden`] with Helm's arguments as given.
    fn forbidden_args(&self, args: &[String], rule: &str, contrast: bool) -> String {
        let values_file = args
            .iter()
            .filter(|a| a.ends_with(".yaml") || a.starts_with("--set") || a.starts_with("--re"))
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .collect::<Vec<_>>()
            .join(" ");
        let what = format!("{} {values_file} from {}", self.what(), self.marker());
        let marker = self.marker();
        let before = self.snapshot();
        let revisions = self.revisions();
        // Under Helm 3 the values are only on Helm's command line: no --step, no --values for
        // ess-guard; it reads them from its parent.
        let (run, report) = self.helm(args, true);
        assert_ne!(run.code, 0, "{what}: Helm succeeded\n{}", run.stdout);
        let seen = if self.major == 3 {
            &run.stderr
        } else {
            &report
        };
        assert!(
            seen.contains(&format!("ess-guard: REJECTED: [{rule}]")),
            "{what}: expected [{rule}]:\nstderr: {}\nreport: {report}",
            run.stderr
        );
        if self.major == 4 {
            assert!(
                run.stderr
                    .contains("plugin \"ess-guard\" exited with error"),
                "{what}: {}",
                run.stderr
            );
        }
        let after = self.snapshot();
        assert_eq!(before, after, "{what}: objects changed although refused");
        assert_eq!(
            self.revisions(),
            revisions,
            "{what}: a Helm revision was recorded"
        );
        assert_eq!(self.marker(), marker, "{what}: marker changed");
        let message = if self.major == 3 {
            run.stderr.clone()
        } else {
            format!("{}\n(report / terminal:)\n{report}", run.stderr.trim_end())
        };
        if !contrast {
            return message;
        }

        // The contrast: the same upgrade without ess-guard. Helm starts it; the chart's
        // markers pre-upgrade Job refuses; a failed revision is recorded; the marker stays.
        let jobs_before = self.jobs().len();
        let (run, _) = self.helm(args, false);
        assert_ne!(run.code, 0, "{what} without ess-guard: Helm succeeded");
        assert!(
            run.stderr.contains("pre-upgrade hooks failed") && run.stderr.contains(MARKERS_PRE),
            "{what} without ess-guard: {}",
            run.stderr
        );
        let failure = self.job_failure(MARKERS_PRE);
        assert!(
            failure.contains("MATRIX_STACK_MSC3861 marker prevented transitioning to value")
                && failure.contains(&format!("from value {marker}")),
            "{what}: markers Job: {failure}"
        );
        assert_eq!(self.marker(), marker, "{what}: the chart kept the marker");
        // (Helm prunes old revisions past --history-max 10: compare the newest number.)
        let revs = self.revisions();
        let newest = |r: &[(u32, String)]| r.last().map(|x| x.0).unwrap_or(0);
        assert_eq!(newest(&revs), newest(&revisions) + 1, "{what}: {revs:?}");
        assert_eq!(revs.last().map(|r| r.1.as_str()), Some("failed"));
        assert!(self.jobs().len() >= jobs_before, "{what}: hook Jobs ran");
        assert_ne!(
            self.snapshot(),
            after,
            "{what}: the chart's way changed objects"
        );
        message
    }
}

/// The migration on one chart with one Helm major. Returns one refused upgrade's message.
fn flow(env: &Env, ns: &str, major: u8, chart: Chart) -> String {
    let s = Ns::new(env, ns, major, chart);
    let w = s.what();
    // The chart's late refusal is the same under both Helm majors: shown for every case under
    // Helm 3 (where ess-guard needs the command line to be first), once under Helm 4.
    let contrast = major == 3;
    // Fresh install of Synapse only, through ess-guard.
    let mut install = vec![
        "install".to_string(),
        "ess".into(),
        chart.tgz(),
        "-n".into(),
        ns.into(),
        "--create-namespace".into(),
        "-f".into(),
        values("legacy.yaml"),
    ];
    let (run, report) = s.helm(&install, true);
    assert_eq!(run.code, 0, "{w} install: {}\n{report}", run.stderr);
    install.clear();
    assert_eq!(s.marker(), "legacy_auth", "{w}");

    // legacy_auth: step 3 is forbidden (MAS without syn2mas).
    s.forbidden("step3-delegated.yaml", "mas-requires-syn2mas", true);

    // plan at legacy_auth (before step 1): step 1; the test runs that command, adding the
    // step-1 values plan's preconditions ask for (ingress host, bcrypt scheme).
    let (text, cmd) = s.plan_next("dry-run");
    assert!(text.contains("marker:   legacy_auth"), "{w} {text}");
    s.run_planned(&cmd, &["-f".into(), values("step1-syn2mas-dryrun.yaml")]);
    assert_eq!(s.marker(), "legacy_auth", "{w} after step 1");
    assert_eq!(s.job_annotation("ess-syn2mas"), "complete", "{w} dry run");

    // plan at legacy_auth after step 1: the migration, run verbatim (--reuse-values + --set).
    let (_, cmd) = s.plan_next("migrate");
    s.run_planned(&cmd, &[]);
    assert_eq!(s.marker(), "syn2mas_migrated", "{w} after step 2");
    assert_eq!(s.job_annotation("ess-syn2mas"), "syn2mas-migrate", "{w}");
    let synapse = s.synapse();
    assert!(!synapse.is_empty(), "{w}: no Synapse StatefulSet");
    for (name, (replicas, annotation)) in &synapse {
        assert_eq!(annotation, replicas, "{w}: {name} {RESTORE} after step 2");
    }

    // syn2mas_migrated: no way back; step 2 again only where the chart repeats stage 2.
    s.forbidden("legacy.yaml", "no-rollback", contrast);
    s.forbidden("step1-syn2mas-dryrun.yaml", "no-rollback", contrast);
    if !chart.repeats_stage2() {
        s.forbidden(
            "step2-syn2mas-migrate.yaml",
            "syn2mas-still-enabled",
            contrast,
        );
    }

    // plan at syn2mas_migrated: step 3, run verbatim.
    let (_, cmd) = s.plan_next("finalize");
    s.run_planned(&cmd, &[]);
    assert_eq!(s.marker(), "delegated_auth", "{w} after step 3");

    // delegated_auth: nothing goes back, syn2mas never runs again (Helm 3: the step-2 render
    // looks like step 3; the values on Helm's command line settle it).
    let refused = s.forbidden("step2-syn2mas-migrate.yaml", "syn2mas-rerun", contrast);
    s.forbidden("legacy.yaml", "no-rollback", contrast);
    s.forbidden("step1-syn2mas-dryrun.yaml", "no-rollback", contrast);
    // Step 2 again the way plan's command spells it: --reuse-values and --set only. Under Helm
    // 3 ess-guard reads the stored values from the deployed release Secret to learn the step.
    let reuse: Vec<String> = [
        "upgrade",
        "ess",
        &chart.tgz(),
        "-n",
        ns,
        "--reuse-values",
        "--set",
        "matrixAuthenticationService.syn2mas.enabled=true",
        "--set",
        "matrixAuthenticationService.syn2mas.dryRun=false",
    ]
    .map(str::to_string)
    .to_vec();
    s.forbidden_args(&reuse, "syn2mas-rerun", false);
    let (text, cmd) = s.plan();
    assert!(cmd.is_none(), "{w} {text}");
    assert!(text.contains("the migration is complete"), "{w} {text}");
    refused
}

/// Step 2 with the syn2mas Job failing after scaling Synapse down; then recover.
fn recover(env: &Env, ns: &str, major: u8) {
    let s = Ns::new(env, ns, major, Chart::Base);
    let w = s.what();
    let mut install = s.upgrade_args("legacy.yaml");
    install[0] = "install".into();
    install.push("--create-namespace".into());
    let (run, report) = s.helm(&install, true);
    assert_eq!(run.code, 0, "{w} install: {}\n{report}", run.stderr);
    let before: BTreeMap<String, String> =
        s.synapse().into_iter().map(|(n, (r, _))| (n, r)).collect();
    assert!(!before.is_empty(), "{w}: no Synapse StatefulSet");

    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(env.server.state_dir().join("fail-jobs"))
            .expect("open fail-jobs");
        writeln!(f, "{ns}/ess-syn2mas").expect("append to fail-jobs");
    }
    let (run, report) = s.helm(&s.upgrade_args("step2-syn2mas-migrate.yaml"), true);
    assert_ne!(run.code, 0, "{w} step 2 succeeded: {report}");
    assert!(
        run.stderr.contains("pre-upgrade hooks failed") && run.stderr.contains("ess-syn2mas"),
        "{w}: {}",
        run.stderr
    );
    assert_eq!(s.marker(), "legacy_auth", "{w}");
    for (name, (replicas, annotation)) in s.synapse() {
        assert_eq!(replicas, "0", "{w}: {name} left scaled down");
        assert_eq!(
            annotation, "",
            "{w}: {name}: the annotation never reached the cluster"
        );
    }

    // Dry run: says what it would do and where each number comes from; changes nothing.
    let snap = s.snapshot();
    let run = s.ess_guard(&["recover"]);
    assert_eq!(run.code, 0, "{w} recover: {}", run.stderr);
    for (name, replicas) in &before {
        assert!(
            run.stdout.contains(&format!(
                "would    scale {name} from 0 to {replicas} replica(s) (from {RESTORE} in Helm revision 2 (failed))"
            )),
            "{w}: {}",
            run.stdout
        );
    }
    assert_eq!(s.snapshot(), snap, "{w}: the dry run changed something");

    let run = s.ess_guard(&["recover", "--apply"]);
    assert_eq!(run.code, 0, "{w} recover --apply: {}", run.stderr);
    let after: BTreeMap<String, String> =
        s.synapse().into_iter().map(|(n, (r, _))| (n, r)).collect();
    assert_eq!(
        after, before,
        "{w}: every Synapse StatefulSet restored\n{}",
        run.stdout
    );
    assert!(run.stdout.contains("scaled   "), "{w}: {}", run.stdout);

    // Again: nothing to do, nothing changed.
    let snap = s.snapshot();
    let run = s.ess_guard(&["recover", "--apply"]);
    assert_eq!(run.code, 0, "{w}: {}", run.stderr);
    assert!(
        run.stdout.contains("nothing to do") && !run.stdout.contains("scaled"),
        "{w}: {}",
        run.stdout
    );
    assert_eq!(
        s.snapshot(),
        snap,
        "{w}: the second recover changed something"
    );
    // No Secret data in what recover printed (the release manifest holds Secrets).
    assert!(!run.stdout.contains("kind: Secret"), "{}", run.stdout);
}

#[test]
fn migration_end_to_end_on_the_real_chart() {
    let Some(env) = Env::new() else {
        return;
    };
    let started = Instant::now();
    let (mut h3, mut h4) = (String::new(), String::new());
    std::thread::scope(|scope| {
        let env = &env;
        let timed = |name: &'static str, f: fn(&Env) -> String| {
            scope.spawn(move || {
                let t = Instant::now();
                let out = f(env);
                eprintln!("{name}: {:.1} s", t.elapsed().as_secs_f64());
                out
            })
        };
        let handles = [
            timed("flow base helm3", |e| flow(e, "base-h3", 3, Chart::Base)),
            timed("flow base helm4", |e| flow(e, "base-h4", 4, Chart::Base)),
            timed("flow pr1584 helm3", |e| flow(e, "pr-h3", 3, Chart::Pr1584)),
            timed("flow pr1584 helm4", |e| flow(e, "pr-h4", 4, Chart::Pr1584)),
            timed("recover helm3", |e| {
                recover(e, "rec-h3", 3);
                String::new()
            }),
            timed("recover helm4", |e| {
                recover(e, "rec-h4", 4);
                String::new()
            }),
        ];
        let mut failed = 0;
        for (i, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(out) if i == 0 => h3 = out,
                Ok(out) if i == 1 => h4 = out,
                Ok(_) => {}
                Err(_) => failed += 1,
            }
        }
        assert_eq!(failed, 0, "scenarios failed (their panics are above)");
    });
    eprintln!(
        "--- refused under Helm 3 (Helm's stderr) ---\n{h3}\n--- refused under Helm 4 (report) ---\n{h4}\nmigration_e2e: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The pr1584 chart lets stage 2 run again from `syn2mas_migrated` (its markers Job allows
/// `legacy_auth;syn2mas_migrated`), so ess-guard must allow it there too (chart-aware rules,
/// issue 13), under Helm 4 (the render shows the markers Job) and Helm 3 (the chart version).
#[test]
fn pr1584_stage2_may_be_repeated() {
    let Some(env) = Env::new() else {
        return;
    };
    for major in [3, 4] {
        let ns = format!("repeat-h{major}");
        let s = Ns::new(&env, &ns, major, Chart::Pr1584);
        let mut install = s.upgrade_args("legacy.yaml");
        install[0] = "install".into();
        install.push("--create-namespace".into());
        let (run, report) = s.helm(&install, true);
        assert_eq!(run.code, 0, "install: {}\n{report}", run.stderr);
        for round in 1..=2 {
            let (run, report) = s.helm(&s.upgrade_args("step2-syn2mas-migrate.yaml"), true);
            assert_eq!(
                run.code, 0,
                "step 2 #{round} helm{major}: {}\n{report}",
                run.stderr
            );
            assert_eq!(s.marker(), "syn2mas_migrated");
        }
    }
}

/// Values that render nothing (every component off): `helm template` and `helm install` hand
/// the empty render through; `helm upgrade` (Helm 3 would delete every resource of the release)
/// is refused with nothing applied. ess-guard tells them apart from Helm's command line.
#[test]
fn empty_render_refused_only_where_it_replaces_a_release() {
    let Some(env) = Env::new() else {
        return;
    };
    let off = "--set=synapse.enabled=false,matrixAuthenticationService.enabled=false,elementWeb.enabled=false,elementAdmin.enabled=false,matrixRTC.enabled=false,wellKnownDelegation.enabled=false,postgres.enabled=false,deploymentMarkers.enabled=false,initSecrets.enabled=false";
    for major in [3, 4] {
        let ns = format!("empty-h{major}");
        let s = Ns::new(&env, &ns, major, Chart::Base);
        let w = s.what();
        let base = |verb: &str| -> Vec<String> {
            vec![
                verb.into(),
                "ess".into(),
                Chart::Base.tgz(),
                "-n".into(),
                ns.clone(),
                off.into(),
            ]
        };
        let (run, report) = s.helm(&base("template"), true);
        assert_eq!(run.code, 0, "{w} template: {}\n{report}", run.stderr);
        assert!(
            report.contains("empty render under helm template"),
            "{w} {report}"
        );

        let mut install = base("install");
        install.push("--create-namespace".into());
        let (run, report) = s.helm(&install, true);
        assert_eq!(run.code, 0, "{w} install: {}\n{report}", run.stderr);
        assert!(
            report.contains("empty render under helm install"),
            "{w} {report}"
        );
        assert_eq!(s.revisions(), [(1, "deployed".to_string())], "{w}");

        let before = s.snapshot();
        let (run, report) = s.helm(&base("upgrade"), true);
        assert_ne!(run.code, 0, "{w} upgrade of an empty render succeeded");
        let seen = if major == 3 { &run.stderr } else { &report };
        assert!(
            seen.contains("refusing to hand Helm an empty release"),
            "{w} {seen}"
        );
        assert_eq!(
            s.snapshot(),
            before,
            "{w}: the refused upgrade changed objects"
        );
    }
}
