//! Where the stored marker comes from: the user (`--state`), a file (`--state-file`, the
//! ConfigMap as kubectl prints it), or the live cluster. Each is a [`StateSource`], so every
//! command takes the state the same way and the live source slots in beside the offline ones.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::facts::InputNote;
use crate::state::{
    Current, ManagedBy, MarkerReading, MarkerState, StoredValue, MANAGED_BY_LABEL,
    MANAGED_BY_VALUE, MARKER_KEY,
};

/// Which marker to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerTarget {
    /// ConfigMap name (`<release>-markers`).
    pub configmap: Option<String>,
    pub namespace: Option<String>,
    pub release: Option<String>,
}

/// What a live read of the marker read, as data: the kubeconfig context, the API server URL,
/// the namespace and the ConfigMap. Reports carry it beside the prose [`Observed::origin`]
/// (JSON `read_from`), so a pipeline can check that ess-guard read the release's own cluster
/// without parsing text. Only names and the URL: never a token, a certificate or Secret data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadFrom {
    /// The kubeconfig context used; `None` for a pod's service account (in-cluster).
    pub context: Option<String>,
    /// The API server URL, without a trailing slash.
    pub server: String,
    pub namespace: String,
    /// The marker ConfigMap's name (`<release>-markers`).
    pub configmap: String,
}

/// `ConfigMap <ns>/<name> at <server> (context <ctx>)`: the origin every live report names.
impl std::fmt::Display for ReadFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ConfigMap {}/{} at {} (context {})",
            self.namespace,
            self.configmap,
            self.server,
            self.context.as_deref().unwrap_or("in-cluster")
        )
    }
}

/// The stored state and how it was learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The stored marker the decision uses: the reading's, or `legacy_auth` inferred when no
    /// marker is stored but Synapse already runs (see `live`).
    pub current: Current,
    /// The ConfigMap as read (`None` when the state was stated with `--state`/`--state-map`):
    /// its label and exact value, which the engine judges the way the chart's Job will.
    pub reading: Option<MarkerReading>,
    /// For reports: `--state`, `file cm.yaml`, `ConfigMap ess/ess-markers at https://…`.
    pub origin: String,
    /// The cluster read, as data (`None` when the state did not come from a cluster).
    pub read_from: Option<ReadFrom>,
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
            current: Current::Known(self.0),
            reading: None,
            origin: "--state".to_string(),
            read_from: None,
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
        Ok(view.into_observed(format!("--state-file {name}")))
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
    /// `immutable: true`.
    pub immutable: bool,
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
            immutable: match value.get("immutable") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    return Err(format!(
                        "`immutable` must be a boolean, found {}",
                        crate::manifest::type_name(other)
                    ))
                }
            },
        })
    }

    /// The marker as the chart's tool will find it: the label, and the exact string under the
    /// key (nothing trimmed), or that the key is missing or only in `binaryData`. This is the one
    /// reader of the marker ConfigMap; every command goes through it.
    pub fn into_reading(self) -> MarkerReading {
        let managed_by = match self.labels.get(MANAGED_BY_LABEL) {
            Some(v) if v == MANAGED_BY_VALUE => ManagedBy::Chart,
            Some(v) => ManagedBy::Other(v.clone()),
            None => ManagedBy::Missing,
        };
        let value = match self.data.get(MARKER_KEY) {
            Some(v) => StoredValue::Data(v.clone()),
            None if self.binary_data_keys.iter().any(|k| k == MARKER_KEY) => {
                StoredValue::BinaryOnly
            }
            None => StoredValue::Missing,
        };
        MarkerReading::ConfigMap {
            name: self.name,
            managed_by,
            value,
            immutable: self.immutable,
        }
    }

    /// The reading as an [`Observed`] state.
    pub fn into_observed(self, origin: String) -> Observed {
        Observed::read(self.into_reading(), origin)
    }
}

impl Observed {
    /// What a read of the marker ConfigMap gave (`reading`), learnt from `origin`.
    pub fn read(reading: MarkerReading, origin: impl Into<String>) -> Observed {
        Observed {
            current: reading.current(),
            reading: Some(reading),
            origin: origin.into(),
            read_from: None,
            notes: Vec::new(),
        }
    }

    /// What a read of the marker ConfigMap on a cluster gave: the origin is the prose form of
    /// `read_from`, so text and JSON reports cannot name different things.
    pub fn read_live(reading: MarkerReading, read_from: ReadFrom) -> Observed {
        Observed {
            read_from: Some(read_from.clone()),
            ..Observed::read(reading, read_from.to_string())
        }
    }

    /// A state stated rather than read (tests, `--state-map`).
    pub fn stated(state: MarkerState, origin: impl Into<String>) -> Observed {
        Observed {
            current: Current::Known(state),
            reading: None,
            origin: origin.into(),
            read_from: None,
            notes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(cm: Value) -> Observed {
        ConfigMapFacts::from_value(&cm)
            .expect("a ConfigMap")
            .into_observed("t".into())
    }

    #[test]
    fn reads_kubectl_output() {
        let observed = read(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "ess-markers", "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE}},
            "data": {MARKER_KEY: "syn2mas_migrated"}}));
        assert_eq!(
            observed.current,
            Current::Known(MarkerState::Syn2masMigrated)
        );
        assert_eq!(
            observed
                .reading
                .as_ref()
                .and_then(MarkerReading::managed_by),
            Some(&ManagedBy::Chart)
        );
    }

    #[test]
    fn missing_key_is_absent_and_the_label_is_kept() {
        let observed = read(json!({"kind": "ConfigMap", "metadata": {"name": "ess-markers"}}));
        assert_eq!(observed.current, Current::Known(MarkerState::Absent));
        assert_eq!(
            observed
                .reading
                .as_ref()
                .and_then(MarkerReading::managed_by),
            Some(&ManagedBy::Missing)
        );
        let observed = read(json!({"kind": "ConfigMap",
            "metadata": {"name": "m", "labels": {MANAGED_BY_LABEL: "Helm"}}}));
        assert_eq!(
            observed
                .reading
                .as_ref()
                .and_then(MarkerReading::managed_by),
            Some(&ManagedBy::Other("Helm".into()))
        );
    }

    /// Nothing is trimmed: the chart compares exactly, so must the reader.
    #[test]
    fn unknown_values_and_binary_data_are_kept_as_they_are() {
        for stored in ["stage9", "legacy_auth\n", "", " legacy_auth"] {
            let observed = read(json!({"kind": "ConfigMap", "metadata": {"name": "m"},
                "data": {MARKER_KEY: stored}}));
            assert_eq!(observed.current, Current::Unknown(stored.to_string()));
        }
        let observed = read(json!({"kind": "ConfigMap", "metadata": {"name": "m"},
            "binaryData": {MARKER_KEY: "bGVnYWN5X2F1dGg="}}));
        assert_eq!(observed.current, Current::BinaryOnly);
        assert!(ConfigMapFacts::from_value(&json!({"kind": "Secret"})).is_err());
    }

    /// A live read carries what it read as data, and its prose origin is made from the same
    /// record; the JSON has exactly the four names (nothing from the kubeconfig's credentials).
    #[test]
    fn a_live_read_names_what_it_read_as_data_and_as_text() {
        let read_from = ReadFrom {
            context: Some("prod".into()),
            server: "https://10.0.0.1:6443".into(),
            namespace: "ess".into(),
            configmap: "ess-markers".into(),
        };
        let observed = Observed::read_live(MarkerReading::NoConfigMap, read_from.clone());
        assert_eq!(
            observed.origin,
            "ConfigMap ess/ess-markers at https://10.0.0.1:6443 (context prod)"
        );
        assert_eq!(observed.read_from.as_ref(), Some(&read_from));
        assert_eq!(observed.current, Current::Known(MarkerState::Absent));
        assert_eq!(
            serde_json::to_value(&read_from).expect("JSON"),
            json!({"context": "prod", "server": "https://10.0.0.1:6443",
                   "namespace": "ess", "configmap": "ess-markers"})
        );
        let in_cluster = ReadFrom {
            context: None,
            ..read_from
        };
        assert!(in_cluster.to_string().ends_with("(context in-cluster)"));
        assert_eq!(
            serde_json::to_value(&in_cluster).expect("JSON")["context"],
            Value::Null
        );
        // Stated and file states name no cluster.
        assert_eq!(
            FixedState(MarkerState::LegacyAuth)
                .observe(&MarkerTarget {
                    configmap: None,
                    namespace: None,
                    release: None,
                })
                .expect("stated")
                .read_from,
            None
        );
        assert_eq!(
            read(json!({"kind": "ConfigMap", "metadata": {"name": "m"}})).read_from,
            None
        );
    }
}
