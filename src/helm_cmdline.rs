//! What Helm was asked to do, read from Helm's own command line.
//!
//! Helm 3 runs an executable post-renderer as its direct child and hides the hooks from it, so
//! the step-2 render (syn2mas migrating) and the step-3 render (syn2mas off) look the same. The
//! user's values are on Helm's command line, though: `/proc/<parent>/cmdline` holds the
//! `-f`/`--set*`/`--reuse-values` flags and `/proc/<parent>/cwd` the directory relative paths
//! are resolved against. Parsed as Helm parses them (pflag: `--flag=v`, `--flag v`, `-f v`,
//! `-fv`; `--values` is a comma-separated list, the `--set*` flags are not) and merged with
//! [`crate::values`] (Helm's merge), they tell the step before anything is applied.
//!
//! The same command line says whether an empty render would replace a release
//! (`helm upgrade`) or is harmless (`helm install`, `helm template`).
//!
//! Whenever the command line cannot be trusted to hold the values (not Linux, a parent that is
//! not Helm, `-f -`, a URL, an unknown flag), [`HelmCommand::from_parent`] says why and the
//! caller keeps its old behaviour: this is extra knowledge, never a guess.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::engine::Intent;
use crate::facts::Requested;
use crate::request::{StateRequest, ValueSources};

/// The Helm command that runs the post-renderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subcommand {
    Install,
    /// `helm upgrade`; `install` is true with `--install`/`-i`.
    Upgrade {
        install: bool,
    },
    Template,
}

/// How Helm combines the new values with the release's stored ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReuseMode {
    /// Neither flag: Helm 3 reuses the stored values when no new ones are given.
    Default,
    Reuse,
    Reset,
    ResetThenReuse,
}

/// Helm's command line, parsed.
#[derive(Debug, Clone)]
pub struct HelmCommand {
    pub subcommand: Subcommand,
    /// The first positional after the subcommand (install/upgrade: the release name).
    pub release: Option<String>,
    pub namespace: Option<String>,
    /// Value flags, files made absolute against Helm's working directory.
    pub values: ValueSources,
    pub reuse: ReuseMode,
}

/// Flags of `helm install|upgrade|template` (and Helm's global flags) that take a value in the
/// next argument. Every other flag is a boolean.
const VALUE_FLAGS: &[&str] = &[
    "--burst-limit",
    "--ca-file",
    "--cert-file",
    "--description",
    "--history-max",
    "--key-file",
    "--keyring",
    "--kube-apiserver",
    "--kube-as-group",
    "--kube-as-user",
    "--kube-ca-file",
    "--kube-context",
    "--kube-tls-server-name",
    "--kube-token",
    "--kube-version",
    "--kubeconfig",
    "--name-template",
    "--output-dir",
    "--password",
    "--post-renderer",
    "--post-renderer-args",
    "--qps",
    "--registry-config",
    "--repo",
    "--repository-cache",
    "--repository-config",
    "--timeout",
    "--username",
    "--version",
    "--api-versions",
    "--labels",
    "--output",
    "--show-only",
    "--namespace",
    "--values",
    "--set",
    "--set-file",
    "--set-json",
    "--set-literal",
    "--set-string",
    "--content-cache",
    "--color",
    "--colour",
];

/// Boolean flags Helm also accepts; any other flag makes the command line unreadable (an
/// unknown flag might take a value and shift every argument after it).
const BOOL_FLAGS: &[&str] = &[
    "--atomic",
    "--cleanup-on-fail",
    "--create-namespace",
    "--debug",
    "--dependency-update",
    "--devel",
    "--disable-openapi-validation",
    "--dry-run",
    "--enable-dns",
    "--force",
    "--generate-name",
    "--hide-notes",
    "--hide-secret",
    "--include-crds",
    "--insecure-skip-tls-verify",
    "--install",
    "--is-upgrade",
    "--kube-insecure-skip-tls-verify",
    "--no-hooks",
    "--pass-credentials",
    "--plain-http",
    "--render-subchart-notes",
    "--replace",
    "--reset-then-reuse-values",
    "--reset-values",
    "--reuse-values",
    "--skip-crds",
    "--skip-schema-validation",
    "--skip-tests",
    "--take-ownership",
    "--validate",
    "--verify",
    "--wait",
    "--wait-for-jobs",
    "--force-conflicts",
    "--force-replace",
    "--release-name",
    "--rollback-on-failure",
    "--server-side",
    "--help",
];

/// Flags with an optional value (pflag's `NoOptDefVal`): a value only after `=`.
const OPTIONAL_VALUE_FLAGS: &[&str] = &["--dry-run", "--wait", "--server-side"];

/// Short flags: `-f`, `-n`, `-o`, `-s`, `-a`, `-l` take values; `-i`, `-g`, `-h` do not.
/// (Combined short booleans such as `-ig` are not read: the command line is then declined.)
fn short_long(c: char) -> Option<&'static str> {
    Some(match c {
        'f' => "--values",
        'n' => "--namespace",
        'o' => "--output",
        's' => "--show-only",
        'a' => "--api-versions",
        'l' => "--labels",
        'i' => "--install",
        'g' => "--generate-name",
        'h' => "--help",
        _ => return None,
    })
}

impl HelmCommand {
    /// Reads the parent process's command line (Linux `/proc`), or says why it cannot.
    pub fn from_parent() -> Result<HelmCommand, String> {
        if !cfg!(target_os = "linux") {
            return Err("Helm's command line is only readable on Linux".into());
        }
        let ppid = std::os::unix::process::parent_id();
        let proc_dir = PathBuf::from(format!("/proc/{ppid}"));
        let raw = std::fs::read(proc_dir.join("cmdline"))
            .map_err(|e| format!("cannot read /proc/{ppid}/cmdline: {e}"))?;
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let cwd = std::fs::read_link(proc_dir.join("cwd"))
            .map_err(|e| format!("cannot read /proc/{ppid}/cwd: {e}"))?;
        let cmd = parse(&argv, &cwd)?;
        // `--set-file` paths are read relative to this process's directory: it must be Helm's.
        if !cmd.values.set_file.is_empty()
            && std::env::current_dir().ok().as_deref() != Some(cwd.as_path())
        {
            return Err(
                "--set-file paths are relative to Helm's directory, which is not this process's"
                    .into(),
            );
        }
        Ok(cmd)
    }

    /// True when the command may replace an existing release (its render replaces the stored
    /// manifest: an empty one would delete every resource).
    pub fn may_replace_release(&self) -> bool {
        matches!(self.subcommand, Subcommand::Upgrade { .. })
    }

    /// Whether Helm uses the stored values of the release, as Helm 3's `reuseValues` decides.
    fn uses_stored_values(&self) -> bool {
        if !matches!(self.subcommand, Subcommand::Upgrade { .. }) {
            return false;
        }
        match self.reuse {
            ReuseMode::Reuse | ReuseMode::ResetThenReuse => true,
            ReuseMode::Reset => false,
            ReuseMode::Default => self.values.is_empty(),
        }
    }

    /// The user values Helm will render with: the stored ones (read from the release Secret
    /// when Helm reuses them) merged with the command line's, in Helm's order.
    pub fn user_values(&self, state: &StateRequest) -> Result<Value, String> {
        let previous = if self.uses_stored_values() {
            let release = state
                .release
                .clone()
                .or_else(|| self.release.clone())
                .ok_or("Helm reuses the stored values but the release name is unknown")?;
            let mut state = state.clone();
            if state.namespace.is_none() {
                state.namespace = self.namespace.clone();
            }
            let cluster = crate::live::connect(&crate::live::connect_options(&state))
                .map_err(|e| format!("Helm reuses the stored values, which cannot be read: {e}"))?;
            let record = match cluster.latest_release(&release, true) {
                Ok(Some(r)) => Some(r),
                Ok(None) => cluster.latest_release(&release, false).map_err(|e| {
                    format!("Helm reuses the stored values, which cannot be read: {e}")
                })?,
                Err(e) => {
                    return Err(format!(
                        "Helm reuses the stored values, which cannot be read: {e}"
                    ))
                }
            };
            record.map(|r| r.config)
        } else {
            None
        };
        crate::values::user_values(&self.values, previous).map_err(|e| e.to_string())
    }

    /// The step these values ask for, as an intent the engine checks against the render.
    pub fn intent(&self, state: &StateRequest) -> Result<Intent, String> {
        if self.values.is_empty() && !self.uses_stored_values() {
            // Only the chart's defaults: ess-guard knows them for matrix-stack 26.8.x only,
            // and the render shows them better than a guess.
            return Err("Helm's command line gives no values".into());
        }
        let values = self.user_values(state)?;
        let facts = crate::values::facts_from_values(&values, &crate::values::chart_defaults())
            .map_err(|e| format!("the values on Helm's command line: {e}"))?;
        Ok(Intent {
            step: match facts.requested {
                Requested::Step(s) => Some(s),
                _ => None,
            },
            origin: "Helm's command line",
        })
    }
}

/// Parses Helm's argv (`argv[0]` is the Helm binary); `cwd` resolves relative values files.
pub fn parse(argv: &[String], cwd: &Path) -> Result<HelmCommand, String> {
    let exe = argv.first().ok_or("the parent's command line is empty")?;
    let base = Path::new(exe)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if !base.starts_with("helm") {
        return Err(format!("the parent process ({base}) is not Helm"));
    }
    let mut subcommand = None;
    let mut release = None;
    let mut namespace = None;
    let mut values = ValueSources::default();
    let (mut reuse, mut reset, mut reset_reuse, mut install) = (false, false, false, false);
    let mut i = 1;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if arg == "--" {
            break;
        }
        let (name, inline): (String, Option<String>) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((n, v)) => (format!("--{n}"), Some(v.to_string())),
                None => (arg.clone(), None),
            }
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = short.chars();
            let c = chars.next().unwrap_or('-');
            let long = short_long(c).ok_or_else(|| format!("unknown Helm flag -{c}"))?;
            let rest: String = chars.collect();
            let rest = rest.strip_prefix('=').map(str::to_string).unwrap_or(rest);
            (
                long.to_string(),
                if rest.is_empty() { None } else { Some(rest) },
            )
        } else {
            if subcommand.is_none() {
                subcommand = Some(match arg.as_str() {
                    "install" => Subcommand::Install,
                    "upgrade" => Subcommand::Upgrade { install: false },
                    "template" => Subcommand::Template,
                    other => {
                        return Err(format!("helm {other} is not install, upgrade or template"))
                    }
                });
            } else if release.is_none() {
                release = Some(arg.clone());
            }
            continue;
        };
        if VALUE_FLAGS.contains(&name.as_str()) {
            let value = match inline {
                Some(v) => v,
                None => {
                    let v = argv
                        .get(i)
                        .ok_or_else(|| format!("Helm flag {name} has no value"))?;
                    i += 1;
                    v.clone()
                }
            };
            match name.as_str() {
                "--namespace" => namespace = Some(value),
                "--values" => {
                    for file in value.split(',').filter(|f| !f.is_empty()) {
                        if file == "-" {
                            return Err("the values come from stdin (-f -)".into());
                        }
                        if file.contains("://") {
                            return Err(format!("the values file {file} is a URL"));
                        }
                        let path = cwd.join(file);
                        values.files.push(path.to_string_lossy().into_owned());
                    }
                }
                "--set" => values.set.push(value),
                "--set-string" => values.set_string.push(value),
                "--set-json" => values.set_json.push(value),
                "--set-file" => values.set_file.push(value),
                "--set-literal" => values.set_literal.push(value),
                _ => {}
            }
        } else if BOOL_FLAGS.contains(&name.as_str()) {
            let on = match inline.as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                // e.g. --dry-run=server, --wait=watcher: a string with a default.
                Some(_) if OPTIONAL_VALUE_FLAGS.contains(&name.as_str()) => true,
                Some(v) => return Err(format!("Helm flag {name}={v} is not a boolean")),
            };
            match name.as_str() {
                "--reuse-values" => reuse = on,
                "--reset-values" => reset = on,
                "--reset-then-reuse-values" => reset_reuse = on,
                "--install" => install = on,
                _ => {}
            }
        } else {
            return Err(format!("unknown Helm flag {name}"));
        }
    }
    let mut subcommand = subcommand.ok_or("no Helm subcommand on the command line")?;
    if let Subcommand::Upgrade { install: i } = &mut subcommand {
        *i = install;
    }
    // Helm: --reset-values wins over --reuse-values; --reset-then-reuse-values over both.
    let reuse = if reset_reuse {
        ReuseMode::ResetThenReuse
    } else if reset {
        ReuseMode::Reset
    } else if reuse {
        ReuseMode::Reuse
    } else {
        ReuseMode::Default
    };
    Ok(HelmCommand {
        subcommand,
        release,
        namespace,
        values,
        reuse,
    })
}

/// True when the render holds no Kubernetes object: only blank lines, `---` separators and
/// comments.
pub fn is_empty_render(bytes: &[u8]) -> bool {
    bytes.split(|b| *b == b'\n').all(|line| {
        let line = line.trim_ascii();
        line.is_empty() || line.starts_with(b"#") || line == b"---" || line.starts_with(b"--- #")
    })
}

/// Whether an empty render may be handed back: only when Helm's command line shows it cannot
/// replace an existing release. `Err` says why not.
pub fn empty_render_is_harmless(cmd: &Result<HelmCommand, String>) -> Result<&'static str, String> {
    match cmd {
        Ok(c) if !c.may_replace_release() => Ok(match c.subcommand {
            Subcommand::Template => "helm template",
            _ => "helm install",
        }),
        Ok(_) => Err("Helm's command line is `helm upgrade`".into()),
        Err(why) => Err(why.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_the_value_flags_as_helm_does() {
        let c = parse(
            &argv("/usr/bin/helm upgrade ess chart.tgz -n ess -f a.yaml,b.yaml --values=/abs/c.yaml -fd.yaml --set x=1 --set-string y=2,z=3 --set-json j={} --set-literal l=a,b --reuse-values --post-renderer /bin/ess-guard --post-renderer-args --step=x --timeout 60s"),
            Path::new("/work"),
        )
        .expect("parses");
        assert_eq!(c.subcommand, Subcommand::Upgrade { install: false });
        assert_eq!(c.release.as_deref(), Some("ess"));
        assert_eq!(c.namespace.as_deref(), Some("ess"));
        assert_eq!(
            c.values.files,
            [
                "/work/a.yaml",
                "/work/b.yaml",
                "/abs/c.yaml",
                "/work/d.yaml"
            ]
        );
        assert_eq!(c.values.set, ["x=1"]);
        assert_eq!(c.values.set_string, ["y=2,z=3"]);
        assert_eq!(c.values.set_json, ["j={}"]);
        assert_eq!(c.values.set_literal, ["l=a,b"]);
        assert_eq!(c.reuse, ReuseMode::Reuse);
        assert!(c.may_replace_release());
        assert!(c.uses_stored_values());
    }

    #[test]
    fn reuse_modes_follow_helm() {
        let c = parse(&argv("helm3 upgrade ess c"), Path::new("/")).expect("parses");
        assert!(
            c.uses_stored_values(),
            "no values: Helm 3 reuses the stored ones"
        );
        let c = parse(&argv("helm3 upgrade ess c -f v.yaml"), Path::new("/")).expect("parses");
        assert!(!c.uses_stored_values());
        let c = parse(
            &argv("helm3 upgrade ess c --reuse-values --reset-values"),
            Path::new("/"),
        )
        .expect("parses");
        assert_eq!(c.reuse, ReuseMode::Reset);
        let c = parse(
            &argv("helm upgrade ess c -f v.yaml --reset-then-reuse-values"),
            Path::new("/"),
        )
        .expect("parses");
        assert!(c.uses_stored_values());
        let c = parse(&argv("helm install ess c"), Path::new("/")).expect("parses");
        assert!(!c.uses_stored_values());
        assert!(!c.may_replace_release());
        let c = parse(&argv("helm upgrade -i ess c"), Path::new("/")).expect("parses");
        assert_eq!(c.subcommand, Subcommand::Upgrade { install: true });
    }

    #[test]
    fn declines_what_it_cannot_read() {
        for (line, why) in [
            ("kubectl apply -f x", "is not Helm"),
            ("helm upgrade ess c -f -", "stdin"),
            ("helm upgrade ess c -f https://x/v.yaml", "URL"),
            (
                "helm upgrade ess c --mystery v",
                "unknown Helm flag --mystery",
            ),
            ("helm status ess", "not install, upgrade or template"),
            ("helm upgrade ess c -f", "has no value"),
            ("helm", "no Helm subcommand"),
        ] {
            let err = parse(&argv(line), Path::new("/")).expect_err(line);
            assert!(err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn global_flags_before_the_subcommand_are_skipped() {
        let c = parse(
            &argv("helm --kubeconfig /k --debug -n ns template rel chart -f v.yaml"),
            Path::new("/d"),
        )
        .expect("parses");
        assert_eq!(c.subcommand, Subcommand::Template);
        assert_eq!(c.release.as_deref(), Some("rel"));
        assert_eq!(c.values.files, ["/d/v.yaml"]);
    }

    #[test]
    fn empty_renders() {
        assert!(is_empty_render(b""));
        assert!(is_empty_render(b"---\n# Source: x\n---\n\n"));
        assert!(!is_empty_render(b"---\nkind: ConfigMap\n"));
        let install = parse(&argv("helm install ess c"), Path::new("/"));
        assert_eq!(
            empty_render_is_harmless(&install).ok(),
            Some("helm install")
        );
        let upgrade = parse(&argv("helm upgrade -i ess c"), Path::new("/"));
        assert!(empty_render_is_harmless(&upgrade).is_err());
        assert!(empty_render_is_harmless(&Err("not Linux".into())).is_err());
    }
}
