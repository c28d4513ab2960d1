//! Argo CD Config Management Plugin (v2 sidecar): what the `generate` command is asked to do,
//! read from Argo's build environment — never from a shell string.
//!
//! Argo CD runs `helm template` itself and has no post-renderer, so ess-guard takes over the
//! rendering: [`Request::from_env`] reads `ARGOCD_APP_NAME`, `ARGOCD_APP_NAMESPACE`,
//! `KUBE_VERSION` and the plugin parameters (`ARGOCD_APP_PARAMETERS` as JSON, else
//! `PARAM_<NAME>` / `PARAM_<NAME>_<i>`), and [`Request::helm_args`] builds the `helm template`
//! argument vector. The command (`commands::argocd`) runs Helm with it, guards the result and
//! prints manifests only when allowed.
//!
//! Parameters (all optional):
//!
//! | name | type | meaning |
//! |---|---|---|
//! | `chart` | string | chart reference (`oci://…`, a repo chart with `repo`, or a folder); default: the app folder when it has a `Chart.yaml` |
//! | `version` | string | chart version |
//! | `repo` | string | chart repository URL (`--repo`) |
//! | `values-files` | array | values files, relative to the app folder, in order; default `values.yaml` when it exists |
//! | `release` | string | Helm release name; default `ARGOCD_APP_NAME` |
//! | `namespace` | string | release namespace; default `ARGOCD_APP_NAMESPACE` |

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::error::Error;
use crate::names::is_release_name;

/// One parameter's value, as Argo CD types it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Param {
    String(String),
    Array(Vec<String>),
}

/// Everything `generate` needs, resolved and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub release: String,
    pub namespace: String,
    /// The chart argument for `helm template`.
    pub chart: String,
    pub version: Option<String>,
    pub repo: Option<String>,
    /// Absolute paths, inside the app folder.
    pub values_files: Vec<PathBuf>,
    /// `KUBE_VERSION` from Argo, for `--kube-version`.
    pub kube_version: Option<String>,
}

/// Names the parameters ess-guard knows, so a typo is an error rather than silently ignored.
const KNOWN: [&str; 6] = [
    "chart",
    "version",
    "repo",
    "values-files",
    "release",
    "namespace",
];

impl Request {
    /// Reads the request from `env` (a lookup, so tests need not touch the process
    /// environment) for the app folder `dir`. Flags (`release`, `namespace`) override.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        env_keys: &[String],
        dir: &Path,
        release_flag: Option<&str>,
        namespace_flag: Option<&str>,
    ) -> Result<Request, Error> {
        let params = params(env, env_keys)?;
        let string = |name: &str| -> Result<Option<String>, Error> {
            match params.iter().find(|(n, _)| n == name) {
                None => Ok(None),
                Some((_, Param::String(s))) if s.is_empty() => Ok(None),
                Some((_, Param::String(s))) => Ok(Some(s.clone())),
                Some((_, Param::Array(_))) => Err(Error::Usage(format!(
                    "Argo CD plugin parameter {name:?} must be a string, not an array"
                ))),
            }
        };
        let release = match release_flag {
            Some(r) => r.to_string(),
            None => match string("release")? {
                Some(r) => r,
                None => env("ARGOCD_APP_NAME").filter(|s| !s.is_empty()).ok_or_else(|| {
                    Error::Usage(
                        "ARGOCD_APP_NAME is not set: run this as an Argo CD plugin's generate command, or pass --release".into(),
                    )
                })?,
            },
        };
        if !is_release_name(&release) {
            return Err(Error::Usage(format!(
                "release name {release:?} (ARGOCD_APP_NAME or the `release` parameter) is not a valid Helm release name: set the plugin parameter `release`"
            )));
        }
        let namespace = match namespace_flag {
            Some(n) => n.to_string(),
            None => match string("namespace")? {
                Some(n) => n,
                None => env("ARGOCD_APP_NAMESPACE")
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        Error::Usage(
                            "ARGOCD_APP_NAMESPACE is not set (the Application has no destination namespace): set the plugin parameter `namespace`, or pass --namespace".into(),
                        )
                    })?,
            },
        };
        let chart = match string("chart")? {
            Some(c) => c,
            None if dir.join("Chart.yaml").is_file() => dir.display().to_string(),
            None => {
                return Err(Error::Usage(format!(
                    "no chart: the app folder {} has no Chart.yaml; set the plugin parameter `chart` (e.g. oci://ghcr.io/element-hq/ess-helm/matrix-stack)",
                    dir.display()
                )))
            }
        };
        let values_files = match params.iter().find(|(n, _)| n == "values-files") {
            Some((_, Param::Array(files))) => files
                .iter()
                .map(|f| inside(dir, f))
                .collect::<Result<Vec<_>, _>>()?,
            Some((_, Param::String(f))) => vec![inside(dir, f)?],
            None => {
                let default = dir.join("values.yaml");
                // A chart in the app folder reads its own values.yaml already.
                if default.is_file() && chart != dir.display().to_string() {
                    vec![default]
                } else {
                    Vec::new()
                }
            }
        };
        for f in &values_files {
            if !f.is_file() {
                return Err(Error::Usage(format!(
                    "values file {} (plugin parameter `values-files`) does not exist in the app folder",
                    f.display()
                )));
            }
        }
        Ok(Request {
            release,
            namespace,
            chart,
            version: string("version")?,
            repo: string("repo")?,
            values_files,
            kube_version: env("KUBE_VERSION").filter(|s| !s.is_empty()),
        })
    }

    /// `helm template` arguments, one element each (no shell).
    pub fn helm_args(&self) -> Vec<String> {
        let mut args = vec![
            "template".to_string(),
            self.release.clone(),
            self.chart.clone(),
            "--namespace".to_string(),
            self.namespace.clone(),
        ];
        if let Some(v) = &self.version {
            args.extend(["--version".to_string(), v.clone()]);
        }
        if let Some(r) = &self.repo {
            args.extend(["--repo".to_string(), r.clone()]);
        }
        if let Some(k) = &self.kube_version {
            args.extend(["--kube-version".to_string(), k.clone()]);
        }
        for f in &self.values_files {
            args.extend(["--values".to_string(), f.display().to_string()]);
        }
        args
    }
}

/// The plugin parameters: `ARGOCD_APP_PARAMETERS` (JSON) when set, else `PARAM_*`.
fn params(
    env: &dyn Fn(&str) -> Option<String>,
    env_keys: &[String],
) -> Result<Vec<(String, Param)>, Error> {
    let mut out: Vec<(String, Param)> = Vec::new();
    if let Some(json) = env("ARGOCD_APP_PARAMETERS").filter(|s| !s.trim().is_empty()) {
        let value: Value = serde_json::from_str(&json)
            .map_err(|e| Error::Usage(format!("ARGOCD_APP_PARAMETERS is not valid JSON: {e}")))?;
        let items = value.as_array().ok_or_else(|| {
            Error::Usage("ARGOCD_APP_PARAMETERS must be a JSON list of parameters".into())
        })?;
        for (i, item) in items.iter().enumerate() {
            let name = item.get("name").and_then(Value::as_str).ok_or_else(|| {
                Error::Usage(format!("ARGOCD_APP_PARAMETERS[{i}] has no string `name`"))
            })?;
            let param = if let Some(s) = item.get("string").and_then(Value::as_str) {
                Param::String(s.to_string())
            } else if let Some(a) = item.get("array").and_then(Value::as_array) {
                Param::Array(
                    a.iter()
                        .map(|v| {
                            v.as_str().map(str::to_string).ok_or_else(|| {
                                Error::Usage(format!(
                                    "ARGOCD_APP_PARAMETERS: parameter {name:?} has a non-string array item"
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                )
            } else if item.get("map").is_some() {
                return Err(Error::Usage(format!(
                    "Argo CD plugin parameter {name:?} is a map; ess-guard takes strings and arrays only"
                )));
            } else {
                Param::String(String::new())
            };
            out.push((name.to_string(), param));
        }
    } else {
        for name in KNOWN {
            let key = format!("PARAM_{}", env_name(name));
            if let Some(v) = env(&key) {
                out.push((name.to_string(), Param::String(v)));
                continue;
            }
            let mut items = Vec::new();
            while let Some(v) = env(&format!("{key}_{}", items.len())) {
                items.push(v);
            }
            if !items.is_empty() {
                out.push((name.to_string(), Param::Array(items)));
            }
        }
        // A PARAM_ variable ess-guard does not know is most likely a typo in the Application.
        let known: Vec<String> = KNOWN.iter().map(|n| env_name(n)).collect();
        for key in env_keys {
            if let Some(rest) = key.strip_prefix("PARAM_") {
                if !known
                    .iter()
                    .any(|k| rest == k || rest.strip_prefix(k.as_str()).is_some_and(is_index))
                {
                    return Err(Error::Usage(format!(
                        "unknown Argo CD plugin parameter {key}: ess-guard knows {}",
                        KNOWN.join(", ")
                    )));
                }
            }
        }
    }
    if let Some((name, _)) = out.iter().find(|(n, _)| !KNOWN.contains(&n.as_str())) {
        return Err(Error::Usage(format!(
            "unknown Argo CD plugin parameter {name:?}: ess-guard knows {}",
            KNOWN.join(", ")
        )));
    }
    Ok(out)
}

/// `_<digits>`.
fn is_index(s: &str) -> bool {
    s.strip_prefix('_')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Argo CD's environment name of a parameter: upper case, anything else than letters and
/// digits as `_`.
fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// `file` as a path inside `dir`: relative, no `..` — the plugin must not read outside the
/// app's folder (Argo's own Helm source has the same rule).
fn inside(dir: &Path, file: &str) -> Result<PathBuf, Error> {
    let p = Path::new(file);
    if file.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::Usage(format!(
            "values file {file:?} (plugin parameter `values-files`) must be a relative path inside the app folder"
        )));
    }
    Ok(dir.join(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn request(vars: &[(&str, &str)], dir: &Path) -> Result<Request, Error> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let keys: Vec<String> = map.keys().cloned().collect();
        Request::from_env(&|k| map.get(k).cloned(), &keys, dir, None, None)
    }

    fn app_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("values.yaml"), "a: 1\n").expect("values");
        std::fs::write(d.path().join("step2.yaml"), "b: 2\n").expect("values");
        d
    }

    #[test]
    fn json_parameters_build_the_helm_command() {
        let d = app_dir();
        let r = request(
            &[
                ("ARGOCD_APP_NAME", "ess"),
                ("ARGOCD_APP_NAMESPACE", "matrix"),
                ("KUBE_VERSION", "1.33"),
                (
                    "ARGOCD_APP_PARAMETERS",
                    r#"[{"name":"chart","string":"oci://ghcr.io/element-hq/ess-helm/matrix-stack"},
                        {"name":"version","string":"26.8.2"},
                        {"name":"values-files","array":["values.yaml","step2.yaml"]}]"#,
                ),
            ],
            d.path(),
        )
        .expect("request");
        let dir = d.path().display().to_string();
        assert_eq!(
            r.helm_args(),
            [
                "template",
                "ess",
                "oci://ghcr.io/element-hq/ess-helm/matrix-stack",
                "--namespace",
                "matrix",
                "--version",
                "26.8.2",
                "--kube-version",
                "1.33",
                "--values",
                &format!("{dir}/values.yaml"),
                "--values",
                &format!("{dir}/step2.yaml"),
            ]
        );
    }

    #[test]
    fn param_variables_work_without_the_json() {
        let d = app_dir();
        let r = request(
            &[
                ("ARGOCD_APP_NAME", "ess"),
                ("ARGOCD_APP_NAMESPACE", "ess"),
                ("PARAM_CHART", "/charts/matrix-stack"),
                ("PARAM_VALUES_FILES_0", "step2.yaml"),
                ("PARAM_RELEASE", "other"),
            ],
            d.path(),
        )
        .expect("request");
        assert_eq!(r.release, "other");
        assert_eq!(r.values_files, vec![d.path().join("step2.yaml")]);
        // Default values file when none is named.
        let r = request(
            &[
                ("ARGOCD_APP_NAME", "ess"),
                ("ARGOCD_APP_NAMESPACE", "ess"),
                ("PARAM_CHART", "/charts/matrix-stack"),
            ],
            d.path(),
        )
        .expect("request");
        assert_eq!(r.values_files, vec![d.path().join("values.yaml")]);
    }

    #[test]
    fn bad_requests_are_usage_errors() {
        let d = app_dir();
        let base = [
            ("ARGOCD_APP_NAME", "ess"),
            ("ARGOCD_APP_NAMESPACE", "ess"),
            ("PARAM_CHART", "/c"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut v = base.to_vec();
            v.push(extra);
            request(&v, d.path())
        };
        for (extra, needle) in [
            (
                ("PARAM_VALUES_FILES_0", "../secrets.yaml"),
                "inside the app folder",
            ),
            (
                ("PARAM_VALUES_FILES_0", "/etc/passwd"),
                "inside the app folder",
            ),
            (("PARAM_VALUES_FILES_0", "missing.yaml"), "does not exist"),
            (
                ("PARAM_VALEUS_FILES_0", "values.yaml"),
                "unknown Argo CD plugin parameter",
            ),
            (
                ("PARAM_RELEASE", "Not_Valid"),
                "not a valid Helm release name",
            ),
            (("ARGOCD_APP_PARAMETERS", "{"), "not valid JSON"),
            (
                (
                    "ARGOCD_APP_PARAMETERS",
                    r#"[{"name":"helm-parameters","map":{"a":"b"}}]"#,
                ),
                "map",
            ),
        ] {
            let err = with(extra).expect_err(needle);
            assert_eq!(err.exit_code(), 2, "{extra:?}");
            assert!(err.to_string().contains(needle), "{extra:?}: {err}");
        }
        let err = request(&[("ARGOCD_APP_NAMESPACE", "ess")], d.path()).expect_err("no app");
        assert!(err.to_string().contains("ARGOCD_APP_NAME"), "{err}");
        let err = request(
            &[("ARGOCD_APP_NAME", "ess"), ("ARGOCD_APP_NAMESPACE", "ess")],
            d.path(),
        )
        .expect_err("no chart");
        assert!(err.to_string().contains("parameter `chart`"), "{err}");
    }
}
