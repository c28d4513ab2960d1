//! What a deployment asks for, independent of where ess-guard learnt it.
//!
//! Both inputs the guard understands — a rendered manifest stream ([`crate::render`]) and Helm
//! values ([`crate::values`]) — are reduced to [`Facts`]; the rules and the state machine only
//! ever see `Facts`, so one engine gives one verdict whatever the entry point.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::state::{ChartProfile, ChartRule, Step};

/// The readings of a Helm 3 render whose step 2 and step 3 look the same, in the order they are
/// judged and reported: migration order, step 2 first (from `absent` the deciding step-3 reading
/// is reported first). The order decides which rule a report names first; the verdict never
/// depends on it (see `engine::combine_readings`).
pub const HELM3_READINGS: [Step; 2] = [Step::Migrate, Step::Finalize];

/// The step the input asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// The input settles the step.
    Step(Step),
    /// The input fits several steps. Helm 3 hides hooks from a post-renderer, and its step 2 and
    /// step 3 renders are byte-identical without them.
    Ambiguous(Vec<Step>),
    /// No marker applies: Synapse is disabled, so the chart renders no deployment markers.
    NoMarker,
}

/// Where a fact came from, for reports ("values", "render", "--step").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Render,
    Values,
    StepFlag,
}

/// A fact that an input may not show (for example the check-config hook in Helm 3 input).
pub type Seen<T> = Option<T>;

/// Authentication configuration found in Synapse's config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynapseAuth {
    /// `idp_id`s of enabled OIDC providers, as Synapse stores them (`oidc-<idp_id>`).
    pub oidc_idps: Vec<String>,
    pub saml: bool,
    pub cas: bool,
    pub jwt: bool,
    /// Password auth providers (`password_providers`, or LDAP/password modules).
    pub password_providers: Vec<String>,
    /// True when some configuration could not be seen (for example in an external Secret).
    pub partial: bool,
}

impl SynapseAuth {
    /// Every login mechanism that MAS-delegated Synapse refuses to start with.
    pub fn sso_mechanisms(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.oidc_idps.is_empty() {
            out.push(format!("OIDC ({})", self.oidc_idps.join(", ")));
        }
        out.extend(self.unmigratable_mechanisms());
        out
    }

    /// The mechanisms syn2mas cannot migrate (all but OIDC): SAML, CAS, JWT, password providers.
    pub fn unmigratable_mechanisms(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.saml {
            out.push("SAML".to_string());
        }
        if self.cas {
            out.push("CAS".to_string());
        }
        if self.jwt {
            out.push("JWT".to_string());
        }
        if !self.password_providers.is_empty() {
            out.push(format!(
                "password providers ({})",
                self.password_providers.join(", ")
            ));
        }
        out
    }

    /// Reads the merged Synapse config (homeserver.yaml as a JSON value).
    pub fn from_config(config: &Value) -> SynapseAuth {
        let mut auth = SynapseAuth::default();
        let enabled_default =
            |v: &Value, default: bool| v.get("enabled").and_then(Value::as_bool).unwrap_or(default);
        if let Some(providers) = config.get("oidc_providers").and_then(Value::as_array) {
            for p in providers {
                if !enabled_default(p, true) {
                    continue;
                }
                let id = p.get("idp_id").and_then(Value::as_str).unwrap_or("oidc");
                auth.oidc_idps.push(synapse_oidc_idp_id(id));
            }
        }
        if let Some(legacy) = config.get("oidc_config") {
            if legacy.is_object() && enabled_default(legacy, false) {
                auth.oidc_idps.push("oidc".to_string());
            }
        }
        let block_on = |key: &str, default: bool| {
            config.get(key).is_some_and(|v| {
                v.as_object().is_some_and(|m| !m.is_empty()) && enabled_default(v, default)
            })
        };
        auth.saml = block_on("saml2_config", true);
        auth.cas = block_on("cas_config", false);
        auth.jwt = block_on("jwt_config", false);
        if let Some(providers) = config.get("password_providers").and_then(Value::as_array) {
            for p in providers {
                let module = p.get("module").and_then(Value::as_str).unwrap_or("unnamed");
                auth.password_providers.push(module.to_string());
            }
        }
        if let Some(modules) = config.get("modules").and_then(Value::as_array) {
            for m in modules {
                let module = m.get("module").and_then(Value::as_str).unwrap_or("");
                let lower = module.to_ascii_lowercase();
                if lower.contains("ldap")
                    || lower.contains("password")
                    || lower.contains("auth_provider")
                {
                    auth.password_providers.push(module.to_string());
                }
            }
        }
        auth
    }
}

/// Synapse's stored IdP id for an OIDC provider: it prefixes `oidc-` to every `idp_id` except the
/// legacy `oidc` (synapse/config/oidc.py). MAS's `synapse_idp_id` must name this stored id.
pub fn synapse_oidc_idp_id(idp_id: &str) -> String {
    if idp_id == "oidc" {
        idp_id.to_string()
    } else {
        format!("oidc-{idp_id}")
    }
}

/// Facts from MAS's config that the migration needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MasAuth {
    /// A `passwords.schemes` entry `{version: 1, algorithm: bcrypt}` exists.
    pub bcrypt_v1: bool,
    /// `upstream_oauth2.providers[].synapse_idp_id` values.
    pub synapse_idp_ids: BTreeSet<String>,
    /// `matrix.kind`, as the chart sets it (`synapse_read_only` in the dry run).
    pub matrix_kind: Option<String>,
    pub partial: bool,
}

impl MasAuth {
    pub fn from_config(config: &Value) -> MasAuth {
        let bcrypt_v1 = config
            .pointer("/passwords/schemes")
            .and_then(Value::as_array)
            .is_some_and(|schemes| {
                schemes.iter().any(|s| {
                    s.get("version").and_then(Value::as_i64) == Some(1)
                        && s.get("algorithm").and_then(Value::as_str) == Some("bcrypt")
                })
            });
        let synapse_idp_ids = config
            .pointer("/upstream_oauth2/providers")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        p.get("synapse_idp_id")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let matrix_kind = config
            .pointer("/matrix/kind")
            .and_then(Value::as_str)
            .map(str::to_string);
        MasAuth {
            bcrypt_v1,
            synapse_idp_ids,
            matrix_kind,
            partial: false,
        }
    }
}

/// A problem the input reader noticed that is not about the migration itself (for example a
/// duplicate mapping key); carried to the report as a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputNote {
    pub rule: crate::rules::RuleId,
    pub message: String,
    pub resource: Option<String>,
    pub source: Option<String>,
}

/// Everything the rules need to know about one deployment request.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub origin: Origin,
    pub requested: Requested,
    /// Release name and namespace, when the input shows them.
    pub release: Option<String>,
    pub namespace: Option<String>,
    /// The marker ConfigMap named by the markers Job argument.
    pub markers_configmap: Option<String>,
    /// The chart's own rule for the marker, from the markers pre-hook Job's `-markers` entry for
    /// `MATRIX_STACK_MSC3861`, when the input shows it (Helm 4, `helm template`).
    pub chart_rule: Option<ChartRule>,
    /// The chart version (`helm.sh/chart: matrix-stack-<version>`, the release, or
    /// `--chart-version`): chooses the profile when the chart's rule is hidden.
    pub chart_version: Option<String>,
    /// `--chart-profile`: the operator's choice, over the version's.
    pub chart_profile: Option<ChartProfile>,
    pub synapse_enabled: bool,
    pub mas_enabled: bool,
    /// `Some(dry_run)` when syn2mas is enabled (and would run).
    pub syn2mas: Option<bool>,
    /// syn2mas is switched on in values but ignored by the chart (MAS disabled).
    pub syn2mas_ignored_without_mas: bool,
    /// syn2mas resources are rendered but Synapse is not (external Synapse).
    pub syn2mas_without_synapse: bool,
    pub check_config_hook: Seen<bool>,
    pub markers_enabled: Seen<bool>,
    /// `synapse.workers.sso-login.enabled` (values only).
    pub sso_login_worker: bool,
    pub synapse_auth: SynapseAuth,
    pub mas_auth: Option<MasAuth>,
    /// Synapse StatefulSets of this release and their rendered replicas.
    pub synapse_statefulsets: Vec<(String, i64)>,
    pub notes: Vec<InputNote>,
}

impl Facts {
    /// Facts with chart defaults and nothing known yet.
    pub fn new(origin: Origin) -> Facts {
        Facts {
            origin,
            requested: Requested::NoMarker,
            release: None,
            namespace: None,
            markers_configmap: None,
            chart_rule: None,
            chart_version: None,
            chart_profile: None,
            synapse_enabled: true,
            mas_enabled: true,
            syn2mas: None,
            syn2mas_ignored_without_mas: false,
            syn2mas_without_synapse: false,
            check_config_hook: None,
            markers_enabled: None,
            sso_login_worker: false,
            synapse_auth: SynapseAuth::default(),
            mas_auth: None,
            synapse_statefulsets: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The marker ConfigMap name: from the markers Job, else `<release>-markers`.
    pub fn markers_name(&self) -> Option<String> {
        self.markers_configmap
            .clone()
            .or_else(|| self.release.as_ref().map(|r| format!("{r}-markers")))
    }
}

/// Deep-merges YAML config layers the way matrix-tools `render-config` does: maps merge, later
/// scalars win, and later sequences are appended (the chart passes no array-overwrite keys).
pub fn merge_config_layer(base: &mut Value, layer: Value) {
    match (base, layer) {
        (Value::Object(base), Value::Object(layer)) => {
            for (key, value) in layer {
                match base.get_mut(&key) {
                    Some(existing) => merge_config_layer(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(layer)) => base.extend(layer),
        (base, layer) => {
            if !layer.is_null() {
                *base = layer;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn synapse_auth_detection() {
        let config = json!({
            "oidc_providers": [{"idp_id": "keycloak"}, {"idp_id": "off", "enabled": false}, {"idp_id": "oidc"}],
            "saml2_config": {"sp_config": {}},
            "cas_config": {"enabled": false, "server_url": "x"},
            "jwt_config": {"enabled": true, "secret": "s"},
            "modules": [{"module": "ldap_auth_provider.LdapAuthProviderModule"}, {"module": "my.SpamChecker"}],
        });
        let auth = SynapseAuth::from_config(&config);
        assert_eq!(auth.oidc_idps, vec!["oidc-keycloak", "oidc"]);
        assert!(auth.saml && !auth.cas && auth.jwt);
        assert_eq!(
            auth.password_providers,
            vec!["ldap_auth_provider.LdapAuthProviderModule"]
        );
        assert!(SynapseAuth::from_config(
            &json!({"saml2_config": {"enabled": false, "sp_config": {}}})
        )
        .sso_mechanisms()
        .is_empty());
    }

    #[test]
    fn mas_auth_detection() {
        let mas = MasAuth::from_config(&json!({
            "passwords": {"schemes": [{"version": 1, "algorithm": "bcrypt"}, {"version": 2, "algorithm": "argon2id"}]},
            "upstream_oauth2": {"providers": [{"synapse_idp_id": "oidc-keycloak"}]},
            "matrix": {"kind": "synapse_modern"}
        }));
        assert!(mas.bcrypt_v1);
        assert!(mas.synapse_idp_ids.contains("oidc-keycloak"));
        assert!(
            !MasAuth::from_config(
                &json!({"passwords": {"schemes": [{"version": 1, "algorithm": "argon2id"}]}})
            )
            .bcrypt_v1
        );
    }

    #[test]
    fn config_layers_append_lists() {
        let mut base = json!({"a": {"b": 1}, "l": [1]});
        merge_config_layer(&mut base, json!({"a": {"c": 2}, "l": [2]}));
        assert_eq!(base, json!({"a": {"b": 1, "c": 2}, "l": [1, 2]}));
    }
}
