//! Helm values: merging them as Helm does ([`merge`], [`strvals`]) and reading [`Facts`] from
//! them, so the values preprocessor and the post-renderer's `-f/--set` reach the same engine as a
//! render does.

pub mod merge;
pub mod strvals;

use serde_json::{json, Value};

use crate::error::Error;
use crate::facts::{merge_config_layer, Facts, MasAuth, Origin, Requested, SynapseAuth};
use crate::request::ValueSources;
use crate::state::Step;

/// The chart version whose defaults [`chart_defaults`] holds: the version `values` and `plan`
/// decide for when nothing else names one.
pub const CHART_DEFAULTS_VERSION: &str = "26.8.2-dev";

/// The matrix-stack defaults of the keys the guard reads (chart 26.8.x `values.yaml`). A user's
/// own `values.yaml` can replace them (`--chart-defaults`).
pub fn chart_defaults() -> Value {
    json!({
        "synapse": {
            "enabled": true,
            "checkConfigHook": {"enabled": true},
            "additional": {},
            "workers": {},
        },
        "matrixAuthenticationService": {
            "enabled": true,
            "additional": {},
            "syn2mas": {"enabled": false, "dryRun": true},
        },
        "deploymentMarkers": {"enabled": true},
    })
}

/// Merges the value flags in Helm's order (files, then the `--set*` groups).
pub fn user_values(flags: &ValueSources, previous: Option<Value>) -> Result<Value, Error> {
    let mut files = Vec::new();
    for name in &flags.files {
        let text = if name == "-" {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                .map_err(|e| Error::Usage(format!("cannot read values from stdin: {e}")))?;
            s
        } else {
            std::fs::read_to_string(name)
                .map_err(|e| Error::Usage(format!("cannot read values file {name}: {e}")))?
        };
        files.push((name.clone(), text));
    }
    let mut sets: Vec<(merge::SetFlag, String)> = Vec::new();
    sets.extend(
        flags
            .set_json
            .iter()
            .map(|s| (merge::SetFlag::Json, s.clone())),
    );
    sets.extend(flags.set.iter().map(|s| (merge::SetFlag::Auto, s.clone())));
    sets.extend(
        flags
            .set_string
            .iter()
            .map(|s| (merge::SetFlag::String, s.clone())),
    );
    sets.extend(
        flags
            .set_file
            .iter()
            .map(|s| (merge::SetFlag::File, s.clone())),
    );
    sets.extend(
        flags
            .set_literal
            .iter()
            .map(|s| (merge::SetFlag::Literal, s.clone())),
    );
    let merged = merge::helm_user_values(&files, &sets).map_err(|e| Error::Input(e.to_string()))?;
    Ok(match previous {
        Some(prev) => merge::merge_maps(prev, merged),
        None => merged,
    })
}

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(*key))
}

fn flag(v: &Value, path: &[&str]) -> Result<bool, Error> {
    match get(v, path) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Null) | None => Err(Error::Input(format!(
            "values: `{}` is not set and has no default",
            path.join(".")
        ))),
        Some(other) => Err(Error::Input(format!(
            "values: `{}` must be a boolean, found {}",
            path.join("."),
            crate::manifest::type_name(other)
        ))),
    }
}

/// Reads the layered `additional` configs (`name → {config: yaml}`), sorted by name as the chart
/// does. Entries from external Secrets cannot be seen: they make the result partial.
fn additional(values: &Value, path: &[&str]) -> Result<(Value, bool), Error> {
    let mut merged = json!({});
    let mut partial = false;
    let Some(entries) = get(values, path).and_then(Value::as_object) else {
        return Ok((merged, partial));
    };
    let mut names: Vec<&String> = entries.keys().collect();
    names.sort();
    for name in names {
        let entry = &entries[name];
        match entry.get("config") {
            Some(Value::String(text)) => {
                let layer = crate::manifest::yaml::parse_embedded(text).map_err(|e| {
                    Error::Input(format!(
                        "values: `{}.{name}.config` is not valid YAML: {}",
                        path.join("."),
                        crate::manifest::one_line(&e.to_string())
                    ))
                })?;
                if layer.is_object() {
                    merge_config_layer(&mut merged, layer);
                }
            }
            _ if entry.get("configSecret").is_some() => partial = true,
            _ => {}
        }
    }
    Ok((merged, partial))
}

/// Reads the facts from merged user values (`defaults` fill what the user did not set).
pub fn facts_from_values(user: &Value, defaults: &Value) -> Result<Facts, Error> {
    let values = merge::coalesce(user.clone(), defaults);
    let mut facts = Facts::new(Origin::Values);
    facts.synapse_enabled = flag(&values, &["synapse", "enabled"])?;
    facts.mas_enabled = flag(&values, &["matrixAuthenticationService", "enabled"])?;
    let syn2mas = flag(
        &values,
        &["matrixAuthenticationService", "syn2mas", "enabled"],
    )?;
    let dry_run = flag(
        &values,
        &["matrixAuthenticationService", "syn2mas", "dryRun"],
    )?;
    facts.check_config_hook = Some(flag(&values, &["synapse", "checkConfigHook", "enabled"])?);
    facts.markers_enabled = Some(flag(&values, &["deploymentMarkers", "enabled"])?);
    facts.syn2mas = (syn2mas && facts.mas_enabled && facts.synapse_enabled).then_some(dry_run);
    facts.syn2mas_ignored_without_mas = syn2mas && !facts.mas_enabled && facts.synapse_enabled;
    facts.syn2mas_without_synapse = syn2mas && facts.mas_enabled && !facts.synapse_enabled;
    facts.sso_login_worker = get(&values, &["synapse", "workers", "sso-login", "enabled"])
        .and_then(Value::as_bool)
        == Some(true);
    facts.requested =
        match Step::from_switches(facts.synapse_enabled, facts.mas_enabled, syn2mas, dry_run) {
            Some(step) => Requested::Step(step),
            None => Requested::NoMarker,
        };
    if !facts.synapse_enabled {
        facts.markers_enabled = Some(false);
    }
    let (synapse_config, synapse_partial) = additional(&values, &["synapse", "additional"])?;
    facts.synapse_auth = SynapseAuth::from_config(&synapse_config);
    facts.synapse_auth.partial = synapse_partial;
    if facts.mas_enabled {
        let (mas_config, mas_partial) =
            additional(&values, &["matrixAuthenticationService", "additional"])?;
        let mut mas = MasAuth::from_config(&mas_config);
        mas.partial = mas_partial;
        facts.mas_auth = Some(mas);
    }
    Ok(facts)
}

/// The password-scheme entry the migration guide asks for, added by `values --fix`.
pub const PASSWORD_SCHEME_ENTRY: &str = "password-scheme.yml";
pub const PASSWORD_SCHEME_CONFIG: &str =
    "passwords:\n  schemes:\n    - version: 1\n      algorithm: bcrypt\n    - version: 2\n      algorithm: argon2id\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_from_values() {
        let d = chart_defaults();
        let f = |v: Value| facts_from_values(&v, &d).expect("facts").requested;
        assert_eq!(f(json!({})), Requested::Step(Step::Finalize));
        assert_eq!(
            f(json!({"matrixAuthenticationService": {"enabled": false}})),
            Requested::Step(Step::Legacy)
        );
        assert_eq!(
            f(json!({"matrixAuthenticationService": {"syn2mas": {"enabled": true}}})),
            Requested::Step(Step::DryRun)
        );
        assert_eq!(
            f(
                json!({"matrixAuthenticationService": {"syn2mas": {"enabled": true, "dryRun": false}}})
            ),
            Requested::Step(Step::Migrate)
        );
        assert_eq!(
            f(json!({"synapse": {"enabled": false}})),
            Requested::NoMarker
        );
    }

    #[test]
    fn auth_from_additional() {
        let v = json!({
            "synapse": {"additional": {"oidc.yaml": {"config": "oidc_providers:\n  - idp_id: kc\n"}}},
            "matrixAuthenticationService": {"additional": {"p": {"config": PASSWORD_SCHEME_CONFIG}}},
        });
        let facts = facts_from_values(&v, &chart_defaults()).expect("facts");
        assert_eq!(facts.synapse_auth.oidc_idps, vec!["oidc-kc"]);
        assert!(facts.mas_auth.expect("mas").bcrypt_v1);
        let bad = json!({"synapse": {"enabled": "yes"}});
        assert!(facts_from_values(&bad, &chart_defaults()).is_err());
    }
}
