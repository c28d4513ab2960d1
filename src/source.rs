//! Where the stored marker comes from: the user (`--state`), a file (`--state-file`, the
//! ConfigMap as kubectl prints it), or the live cluster. Each is a [`StateSource`], so every
//! command takes the state the same way and the live source slots in beside the offline ones.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::error::Error;
use crate::facts::InputNote;
use crate::rules::RuleId;
use crate::state::{MarkerState, MANAGED_BY_LABEL, MANAGED_BY_VALUE, MARKER_KEY};

/// Which marker to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerTarget {
    /// ConfigMap name (`<release>-markers`).
    pub configmap: Option<String>,
    pub namespace: Option<String>,
    pub release: Option<String>,
}

/// The stored state and how it was learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub state: MarkerState,
    /// For reports: `--state`, `file cm.yaml`, `ConfigMap ess/ess-markers at https://…`.
    pub origin: String,
    pub notes: Vec<InputNote>,
}

/// A source of the stored marker.
pub trait StateSource {
    /// Learns the state. Any doubt is an error: callers fail closed.
    fn observe(&self, target: &MarkerTarget) -> Result<Observed, Error>;
    /// Whether this source reads the cluster (then checks that need live objects, such as the
    /// step-2 shared-namespace check, may read it too); offline sources say no.
    fn is_live(&self) -> bool {
        false
    }
}

/// `--state`: the user states it.
pub struct FixedState(pub MarkerState);

impl StateSource for FixedState {
    fn observe(&self, _target: &MarkerTarget) -> Result<Observed, Error> {
        Ok(Observed {
            state: self.0,
            origin: "--state".to_string(),
            notes: Vec::new(),
        })
    }
}

/// `--state-file`: a ConfigMap as `kubectl get cm … -o yaml|json` prints it.
pub struct StateFile(pub PathBuf);

impl StateSource for StateFile {
    fn observe(&self, _target: &MarkerTarget) -> Result<Observed, Error> {
        let name = self.0.display().to_string();
        let text = std::fs::read_to_string(&self.0)
            .map_err(|e| Error::Usage(format!("cannot read --state-file {name}: {e}")))?;
        let value = crate::manifest::yaml::parse_embedded(&text).map_err(|e| {
            Error::Input(format!(
                "{name}: invalid YAML: {}",
                crate::manifest::one_line(&e.to_string())
            ))
        })?;
        let view =
            ConfigMapFacts::from_value(&value).map_err(|e| Error::Input(format!("{name}: {e}")))?;
        view.into_observed(format!("--state-file {name}"))
            .map_err(|e| Error::Input(format!("{name}: {e}")))
    }
}

/// The parts of a marker ConfigMap the guard reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigMapFacts {
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub data: BTreeMap<String, String>,
    pub binary_data_keys: Vec<String>,
}

impl ConfigMapFacts {
    pub fn from_value(value: &Value) -> Result<ConfigMapFacts, String> {
        match value.get("kind").and_then(Value::as_str) {
            Some("ConfigMap") => {}
            Some(other) => return Err(format!("expected a ConfigMap, found kind {other}")),
            None => return Err("expected a ConfigMap (field `kind` is missing)".to_string()),
        }
        let strings = |v: Option<&Value>, what: &str| -> Result<BTreeMap<String, String>, String> {
            match v {
                None | Some(Value::Null) => Ok(BTreeMap::new()),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        other => Err(format!(
                            "`{what}.{k}` must be a string, found {}",
                            crate::manifest::type_name(other)
                        )),
                    })
                    .collect(),
                Some(other) => Err(format!(
                    "`{what}` must be a mapping, found {}",
                    crate::manifest::type_name(other)
                )),
            }
        };
        Ok(ConfigMapFacts {
            name: value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            namespace: value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            labels: strings(value.pointer("/metadata/labels"), "metadata.labels")?,
            data: strings(value.get("data"), "data")?,
            binary_data_keys: value
                .get("binaryData")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        })
    }

    /// Reads the marker out of the ConfigMap, the way the chart's tool does.
    pub fn into_observed(self, origin: String) -> Result<Observed, String> {
        let mut notes = Vec::new();
        if self.labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY_VALUE) {
            notes.push(InputNote {
                rule: RuleId::UnmanagedMarker,
                message: format!(
                    "ConfigMap {} has {MANAGED_BY_LABEL}={}; the chart's marker Job will refuse it",
                    self.name,
                    self.labels
                        .get(MANAGED_BY_LABEL)
                        .map(String::as_str)
                        .unwrap_or("<unset>")
                ),
                resource: Some(format!("ConfigMap {}", self.name)),
                source: None,
            });
        }
        let state = match self.data.get(MARKER_KEY) {
            Some(value) => MarkerState::from_stored(value.trim()).map_err(|e| e.to_string())?,
            None if self.binary_data_keys.iter().any(|k| k == MARKER_KEY) => {
                return Err(format!("{MARKER_KEY} is stored in binaryData, which the chart never writes; refusing to guess"))
            }
            None => MarkerState::Absent,
        };
        Ok(Observed {
            state,
            origin,
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_kubectl_output() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "ess-markers", "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
            "data": {MARKER_KEY: "syn2mas_migrated"}});
        let observed = ConfigMapFacts::from_value(&cm)
            .and_then(|c| c.into_observed("t".into()))
            .expect("reads");
        assert_eq!(observed.state, MarkerState::Syn2masMigrated);
        assert!(observed.notes.is_empty());
    }

    #[test]
    fn missing_key_is_absent_and_missing_label_warns() {
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "ess-markers"}});
        let observed = ConfigMapFacts::from_value(&cm)
            .and_then(|c| c.into_observed("t".into()))
            .expect("reads");
        assert_eq!(observed.state, MarkerState::Absent);
        assert_eq!(observed.notes[0].rule, RuleId::UnmanagedMarker);
    }

    #[test]
    fn unknown_value_and_binary_data_fail() {
        let cm =
            json!({"kind": "ConfigMap", "metadata": {"name": "m"}, "data": {MARKER_KEY: "stage9"}});
        assert!(ConfigMapFacts::from_value(&cm)
            .and_then(|c| c.into_observed("t".into()))
            .is_err());
        let cm = json!({"kind": "ConfigMap", "metadata": {"name": "m"}, "binaryData": {MARKER_KEY: "bGVnYWN5X2F1dGg="}});
        assert!(ConfigMapFacts::from_value(&cm)
            .and_then(|c| c.into_observed("t".into()))
            .is_err());
        assert!(ConfigMapFacts::from_value(&json!({"kind": "Secret"})).is_err());
    }
}
