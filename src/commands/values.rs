//! `ess-guard values`: the values preprocessor. Merges `-f`/`--set*` exactly as Helm does,
//! decides with the same engine as `check`, and prints the merged values for
//! `helm upgrade … -f <(ess-guard values …)`. When rejected, stdout stays empty and the verdict
//! and the `--set` to fix it go to stderr, before Helm renders anything.

use std::fmt::Write as _;

use serde_json::Value;

use crate::cli::{ValuesArgs, ValuesFormat};
use crate::engine::{self, Verdict};
use crate::error::{Error, EXIT_REJECTED};
use crate::guard;
use crate::report::{self, InputReport};
use crate::source::MarkerTarget;
use crate::state::Step;
use crate::values::{self, PASSWORD_SCHEME_CONFIG, PASSWORD_SCHEME_ENTRY};

/// The switches that decide the step, for the "where did it come from" lines.
const DECIDING: &[&[&str]] = &[
    &["synapse", "enabled"],
    &["matrixAuthenticationService", "enabled"],
    &["matrixAuthenticationService", "syn2mas", "enabled"],
    &["matrixAuthenticationService", "syn2mas", "dryRun"],
    &["synapse", "checkConfigHook", "enabled"],
];

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(*k))
}

pub fn run(args: ValuesArgs) -> Result<u8, Error> {
    let defaults = match &args.chart_defaults {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Usage(format!(
                    "cannot read --chart-defaults {}: {e}",
                    path.display()
                ))
            })?;
            values::merge::parse_values_file(&path.display().to_string(), &text)
                .map_err(|e| Error::Input(e.to_string()))?
        }
        None => values::chart_defaults(),
    };
    let (previous, previous_origin, release_chart) = previous_values(&args)?;
    let flags_only = values::user_values(&(&args.values).into(), None)?;
    let mut merged = values::user_values(&(&args.values).into(), previous.clone())?;
    // The chart version decides the profile: --chart-version, else the release's chart, else the
    // built-in defaults' version (only when they are the defaults used).
    let chart_version = release_chart.or_else(|| {
        args.chart_defaults
            .is_none()
            .then(|| values::CHART_DEFAULTS_VERSION.to_string())
    });
    let with_chart = |mut f: crate::facts::Facts| {
        f.chart_version = chart_version.clone();
        guard::apply_chart_args(&(&args.state.chart).into(), &mut f);
        f
    };
    let mut facts = with_chart(values::facts_from_values(&merged, &defaults)?);
    let mut fixes = Vec::new();
    if args.fix {
        let step = match facts.requested {
            crate::facts::Requested::Step(s) => Some(s),
            _ => None,
        };
        if matches!(step, Some(Step::DryRun | Step::Migrate))
            && facts.mas_auth.as_ref().is_some_and(|m| !m.bcrypt_v1)
        {
            let entry = serde_json::json!({ "config": PASSWORD_SCHEME_CONFIG });
            let additional = merged
                .as_object_mut()
                .map(|m| {
                    m.entry("matrixAuthenticationService")
                        .or_insert_with(|| serde_json::json!({}))
                })
                .and_then(Value::as_object_mut)
                .map(|m| {
                    m.entry("additional")
                        .or_insert_with(|| serde_json::json!({}))
                })
                .and_then(Value::as_object_mut)
                .ok_or_else(|| {
                    Error::Input(
                        "values: matrixAuthenticationService.additional is not a mapping".into(),
                    )
                })?;
            if additional.contains_key(PASSWORD_SCHEME_ENTRY) {
                return Err(Error::Input(format!(
                    "--fix: matrixAuthenticationService.additional.{PASSWORD_SCHEME_ENTRY} exists but has no bcrypt version 1 scheme; fix it by hand"
                )));
            }
            additional.insert(PASSWORD_SCHEME_ENTRY.to_string(), entry);
            fixes.push(format!(
                "added matrixAuthenticationService.additional.{PASSWORD_SCHEME_ENTRY} (bcrypt version 1, argon2id version 2) as the migration guide requires"
            ));
            facts = with_chart(values::facts_from_values(&merged, &defaults)?);
        }
    }
    let source = guard::state_source(&(&args.state).into(), false)?;
    let target = MarkerTarget {
        configmap: args
            .state
            .cluster
            .release
            .as_ref()
            .map(|r| format!("{r}-markers")),
        namespace: args.state.cluster.namespace.clone(),
        release: args.state.cluster.release.clone(),
    };
    let observed = source.observe(&target)?;
    let evaluation =
        engine::evaluate(&observed, &facts, None, args.fail_on.into()).map_err(Error::Input)?;
    let rejected = evaluation.verdict == Verdict::Rejected;
    let mut text = report::text(&[InputReport::new("values", "values", evaluation)]);
    for path in DECIDING {
        let origin = if get(&flags_only, path).is_some() {
            "the flags"
        } else if previous.as_ref().and_then(|p| get(p, path)).is_some() {
            previous_origin.as_str()
        } else {
            "the chart default"
        };
        let value = get(&merged, path)
            .or_else(|| get(&defaults, path))
            .map(Value::to_string)
            .unwrap_or_else(|| "unset".into());
        let _ = writeln!(
            text,
            "  value:     {} = {value} (from {origin})",
            path.join(".")
        );
    }
    for fix in &fixes {
        let _ = writeln!(text, "  fixed:     {fix}");
    }
    crate::output::report(&text, false, None)?;
    if rejected {
        return Ok(EXIT_REJECTED);
    }
    let out = match args.output.format {
        ValuesFormat::Json => {
            serde_json::to_string_pretty(&merged).map_err(|e| Error::Output(e.to_string()))? + "\n"
        }
        // Written with every string quoted: Helm reads values as YAML 1.1, where a bare `yes` or
        // `0440` would change type.
        ValuesFormat::Yaml => crate::emit::to_yaml(&merged),
    };
    crate::output::write_stdout(out.as_bytes())?;
    Ok(0)
}

/// The values of the last deployed release: from the cluster (`--reuse-values`) or a file, and
/// the release's chart version when it names matrix-stack.
fn previous_values(args: &ValuesArgs) -> Result<(Option<Value>, String, Option<String>), Error> {
    if let Some(path) = &args.previous_values {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Usage(format!(
                "cannot read --previous-values {}: {e}",
                path.display()
            ))
        })?;
        let v = values::merge::parse_values_file(&path.display().to_string(), &text)
            .map_err(|e| Error::Input(e.to_string()))?;
        return Ok((
            Some(v),
            format!("--previous-values {}", path.display()),
            None,
        ));
    }
    if !args.reuse_values {
        return Ok((None, String::new(), None));
    }
    let release = args
        .state
        .cluster
        .release
        .clone()
        .ok_or_else(|| Error::Usage("--reuse-values needs --release NAME".into()))?;
    let cluster = crate::live::connect(&crate::live::connect_options(&(&args.state).into()))?;
    match cluster.latest_release(&release, true) {
        Ok(Some(rel)) => {
            let chart = (rel.chart_name == "matrix-stack").then_some(rel.chart_version);
            Ok((
                Some(rel.config),
                format!("release {release} v{}", rel.version),
                chart,
            ))
        }
        Ok(None) => Err(Error::State(format!(
            "--reuse-values: no deployed release {release} in namespace {}; drop --reuse-values for a first install",
            cluster.namespace()
        ))),
        Err(e) => Err(Error::State(format!("--reuse-values: cannot read release {release}: {e}"))),
    }
}
