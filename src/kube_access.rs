//! Kubernetes access layer: a small, synchronous facade over `kube` for the few reads and the
//! one write ess-guard needs.
//!
//! * Every call is one HTTP request, bounded by [`ConnectOptions::timeout`] (connect, send and
//!   reading the whole body). There are no retries: a 429 is reported with its `Retry-After`.
//! * Internally each [`Cluster`] owns a tokio current-thread runtime, created once in
//!   [`Cluster::connect`]. The methods must therefore not be called from inside an async
//!   context; they return [`KubeError::Other`] instead of panicking if they are.
//! * Responses are read and classified here (not through `kube::Api`), so the HTTP status,
//!   `Retry-After` and truncated or non-JSON bodies are all reported precisely.
//! * Secret contents (Helm release payloads) never appear in errors or logs.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::client::Body;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::core::params::{GetParams, ListParams, Patch, PatchParams};
use kube::core::Request;
use kube::Resource as _;
use serde_json::Value;

use crate::names::{is_dns_label, is_dns_subdomain, is_release_name};

/// Field manager name sent with writes.
const FIELD_MANAGER: &str = "ess-guard";
/// How [`Cluster::context`] names the pod's service account, which has no kubeconfig context.
const IN_CLUSTER: &str = "in-cluster";
/// Longest server-provided message kept in an error (characters).
const MAX_MESSAGE: usize = 300;

/// How to find and talk to the cluster. Resolution follows kubectl/Helm:
/// * kubeconfig: `kubeconfig`, else `$KUBECONFIG` (a path list, missing files ignored, the
///   rest merged), else `~/.kube/config`, else the in-cluster service account;
/// * context: `context`, else `$HELM_KUBECONTEXT`, else the kubeconfig's current-context;
/// * namespace: `namespace`, else `$HELM_NAMESPACE`, else the context's namespace (in-cluster:
///   the service account's), else `default`.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub namespace: Option<String>,
    /// Upper bound for each API call, from connecting to the last byte of the response.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            kubeconfig: None,
            context: None,
            namespace: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A ConfigMap as ess-guard needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapView {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub data: BTreeMap<String, String>,
    /// Keys of `binaryData` (values are not kept).
    pub binary_data_keys: Vec<String>,
    /// `immutable: true`: the API server refuses any change of `data`.
    pub immutable: bool,
    pub resource_version: Option<String>,
}

/// The parts of a ConfigMap ess-guard keeps (binaryData values are dropped, only keys kept),
/// for the GET of one marker and the LIST of all of them alike.
fn configmap_view(cm: ConfigMap, name: String, default_namespace: &str) -> ConfigMapView {
    let meta = cm.metadata;
    let mut binary_data_keys: Vec<String> =
        cm.binary_data.unwrap_or_default().into_keys().collect();
    binary_data_keys.sort();
    ConfigMapView {
        name,
        namespace: meta
            .namespace
            .unwrap_or_else(|| default_namespace.to_string()),
        labels: meta.labels.unwrap_or_default(),
        data: cm.data.unwrap_or_default(),
        binary_data_keys,
        immutable: cm.immutable.unwrap_or(false),
        resource_version: meta.resource_version,
    }
}

impl From<&ConfigMapView> for crate::source::ConfigMapFacts {
    /// What the one marker reader ([`crate::source::ConfigMapFacts`]) needs of a ConfigMap read
    /// from the cluster, so `live`, `markers get` and `audit` hand it the same fields.
    fn from(cm: &ConfigMapView) -> Self {
        crate::source::ConfigMapFacts {
            name: cm.name.clone(),
            namespace: Some(cm.namespace.clone()),
            labels: cm.labels.clone(),
            data: cm.data.clone(),
            binary_data_keys: cm.binary_data_keys.clone(),
            immutable: cm.immutable,
        }
    }
}

/// A StatefulSet as ess-guard needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatefulSetView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `spec.replicas` as stored (the API server defaults it to 1).
    pub replicas: Option<i32>,
    pub resource_version: Option<String>,
}

/// The parts of a Helm release (storage driver "secret") that ess-guard needs.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmRelease {
    pub name: String,
    /// Revision number.
    pub version: u32,
    /// `info.status`, e.g. `deployed`, `superseded`, `failed`, `pending-upgrade`.
    pub status: String,
    /// User-supplied values (`config`); `{}` when Helm stored none.
    pub config: Value,
    pub chart_name: String,
    pub chart_version: String,
}

/// One deployed Helm release record found by [`Cluster::list_deployed_releases`].
#[derive(Debug)]
pub struct ListedRelease {
    pub namespace: String,
    /// From the Secret's `name` label.
    pub release: String,
    /// The decoded record, or why it could not be read.
    pub decoded: Result<HelmRelease, KubeError>,
}

/// The context names of the kubeconfig ess-guard would use (`--kubeconfig`, else
/// `$KUBECONFIG`, else `~/.kube/config`), in the file's order; empty in a pod without one.
pub fn context_names(kubeconfig: Option<&Path>) -> Result<Vec<String>, KubeError> {
    let opts = ConnectOptions {
        kubeconfig: kubeconfig.map(Path::to_path_buf),
        ..ConnectOptions::default()
    };
    let env = |key: &str| std::env::var_os(key);
    Ok(match load_kubeconfig(&opts, &env)? {
        Some((k, _)) => k.contexts.into_iter().map(|c| c.name).collect(),
        None => Vec::new(),
    })
}

/// Errors of the access layer. Each `Display` is one line: the cause, then what to do.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "cannot set up the Kubernetes client: {0}; check --kubeconfig/KUBECONFIG and --kube-context/HELM_KUBECONTEXT"
    )]
    Config(String),

    #[error(
        "cannot reach the Kubernetes API server {server}: {detail}; check that the cluster is up and the kubeconfig's server address is right"
    )]
    Connect { server: String, detail: String },

    #[error(
        "TLS connection to the Kubernetes API server {server} failed: {detail}; check the kubeconfig's certificate-authority(-data) and server address"
    )]
    Tls { server: String, detail: String },

    #[error(
        "the Kubernetes API server {server} did not answer within {}; check connectivity (VPN, firewall) or raise the timeout", fmt_duration(*.after)
    )]
    Timeout { server: String, after: Duration },

    #[error(
        "the Kubernetes API server {server} rejected the credentials (401 Unauthorized); the token or certificate in the kubeconfig is expired or wrong, log in to the cluster again"
    )]
    Unauthorized { server: String },

    #[error(
        "not allowed to {verb} {resource}{} in namespace {namespace:?} (403 Forbidden: {user_message}); ask a cluster admin to grant the {verb:?} verb on {resource:?} in that namespace",
        fmt_name(name)
    )]
    Forbidden {
        verb: String,
        resource: String,
        name: Option<String>,
        namespace: String,
        /// The API server's message (it names the user), shortened to one line.
        user_message: String,
    },

    #[error(
        "{kind} {name:?} not found in namespace {namespace:?}; check the release name and --namespace"
    )]
    NotFound {
        kind: String,
        name: String,
        namespace: String,
    },

    #[error(
        "StatefulSet {name:?} was changed by someone else since it was read (409 Conflict); read it again and retry"
    )]
    Conflict { name: String },

    #[error("the Kubernetes API server is rate-limiting requests (429 Too Many Requests); {}", fmt_retry(*.retry_after))]
    TooManyRequests { retry_after: Option<u64> },

    #[error(
        "the Kubernetes API server failed with HTTP {code}: {message}; retry later or check the API server's health"
    )]
    Server { code: u16, message: String },

    #[error(
        "malformed response for {what}: {detail}; the API server or a proxy in front of it answered incorrectly, retry or check the proxy"
    )]
    Malformed { what: String, detail: String },

    #[error("{0}")]
    Other(String),
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn fmt_name(name: &Option<String>) -> String {
    match name {
        Some(n) => format!(" {n:?}"),
        None => String::new(),
    }
}

fn fmt_retry(retry_after: Option<u64>) -> String {
    match retry_after {
        Some(s) => format!("wait {s} s (Retry-After) and run again"),
        None => "wait a little and run again".to_string(),
    }
}

/// A connected (configured) cluster client. Creating it does not contact the server.
pub struct Cluster {
    // Field order matters for drop: the client (and its background tasks' handles) go
    // before the runtime.
    client: kube::Client,
    runtime: tokio::runtime::Runtime,
    namespace: String,
    server: String,
    /// The kubeconfig context used (`None` for the pod's service account), so that reports can
    /// say which cluster was read.
    context: Option<String>,
    timeout: Duration,
    /// HTTP requests sent so far (for `audit`'s report and benchmark).
    calls: std::cell::Cell<u64>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What a request is about, for error messages.
struct Target<'a> {
    verb: &'a str,
    resource: &'a str,
    kind: &'a str,
    name: Option<&'a str>,
    /// The namespace the request is in; `None` across all namespaces. Errors (a 403, a 404)
    /// name this one, so each request states its own scope instead of patching the error.
    namespace: Option<&'a str>,
}

/// A fully read HTTP response.
struct RawResponse {
    status: u16,
    retry_after: Option<u64>,
    body: Vec<u8>,
}

impl Cluster {
    /// Resolves kubeconfig, context and namespace (see [`ConnectOptions`]) and builds the client.
    pub fn connect(opts: &ConnectOptions) -> Result<Cluster, KubeError> {
        Self::connect_with_env(opts, &|key| std::env::var_os(key))
    }

    fn connect_with_env(
        opts: &ConnectOptions,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Cluster, KubeError> {
        if opts.timeout.is_zero() {
            return Err(KubeError::Config("the timeout must be above zero".into()));
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(KubeError::Other(
                "internal error: kube_access::Cluster used inside an async runtime".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| KubeError::Other(format!("cannot start the I/O runtime: {e}")))?;

        let (mut config, context) = runtime.block_on(resolve_config(opts, env))?;
        let namespace = resolve_namespace(opts, env, &config.default_namespace);
        if !is_dns_label(&namespace) {
            return Err(KubeError::Config(format!(
                "{namespace:?} is not a valid namespace name"
            )));
        }
        config.default_namespace = namespace.clone();
        config.connect_timeout = Some(opts.timeout);
        config.read_timeout = Some(opts.timeout);
        config.write_timeout = Some(opts.timeout);
        // Fail fast: kube would otherwise retry 429/503/504 with backoff.
        config.default_retry = false;
        let server = config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_string();

        // rustls needs a process-wide crypto provider; install ring's unless one is set
        // (another dependency enabling aws-lc-rs would otherwise make rustls panic).
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }

        // The client spawns its request-buffer task, so it must be built inside the runtime.
        let client = {
            let _guard = runtime.enter();
            kube::Client::try_from(config).map_err(|e| client_build_error(&e))?
        };
        Ok(Cluster {
            client,
            runtime,
            namespace,
            server,
            context,
            timeout: opts.timeout,
            calls: std::cell::Cell::new(0),
        })
    }

    /// The kubeconfig context that was used (`in-cluster` without a kubeconfig), for text.
    pub fn context(&self) -> &str {
        self.context.as_deref().unwrap_or(IN_CLUSTER)
    }

    /// The kubeconfig context that was used; `None` in-cluster (the pod's service account).
    pub fn kubeconfig_context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// What reading ConfigMap `configmap` here reads, as data for reports: context, API
    /// server URL, namespace and name. Only names and the URL: no credential of the kubeconfig
    /// ever goes into it.
    pub fn read_from(&self, configmap: &str) -> crate::source::ReadFrom {
        crate::source::ReadFrom {
            context: self.context.clone(),
            server: self.server_url(),
            namespace: self.namespace.clone(),
            configmap: configmap.to_string(),
        }
    }

    /// How many HTTP requests this client has sent.
    pub fn api_calls(&self) -> u64 {
        self.calls.get()
    }

    /// The namespace every call works in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The API server URL from the kubeconfig (no trailing slash).
    pub fn server_url(&self) -> String {
        self.server.clone()
    }

    /// One GET of the ConfigMap; `Ok(None)` on 404.
    pub fn get_configmap(&self, name: &str) -> Result<Option<ConfigMapView>, KubeError> {
        let what = format!("ConfigMap {name:?}");
        let Some(cm) = self.get_named::<ConfigMap>(&self.namespace, name, &what)? else {
            return Ok(None);
        };
        // The marker read: an answer without a name is not the object asked for.
        let Some(got_name) = cm.metadata.name.clone() else {
            return Err(malformed(&what, "the object has no metadata.name"));
        };
        Ok(Some(configmap_view(cm, got_name, &self.namespace)))
    }

    /// `true`/`false` if the StatefulSet exists (200/404); an error for anything else. A 200
    /// must still carry a StatefulSet (not, say, a proxy's HTML page).
    pub fn statefulset_exists(&self, name: &str) -> Result<bool, KubeError> {
        let sts: Option<StatefulSet> =
            self.get_named(&self.namespace, name, &format!("StatefulSet {name:?}"))?;
        Ok(sts.is_some_and(|s| s.metadata.name.is_some()))
    }

    /// The newest Helm release record `sh.helm.release.v1.<release>.v<N>` (Secret storage
    /// driver), found by listing Secrets with `owner=helm,name=<release>` (plus
    /// `status=deployed` when `deployed_only`). `Ok(None)` when there is none.
    pub fn latest_release(
        &self,
        release: &str,
        deployed_only: bool,
    ) -> Result<Option<HelmRelease>, KubeError> {
        let items = self.release_secrets(release, deployed_only)?;
        let prefix = format!("sh.helm.release.v1.{release}.v");
        let mut candidates: Vec<(u32, &Value)> = Vec::new();
        for item in &items {
            let Some((_, rev)) = release_record(item, &prefix) else {
                continue; // not a release record of this release
            };
            if deployed_only {
                let label = item
                    .get("metadata")
                    .and_then(|m| m.get("labels"))
                    .and_then(|l| l.get("status"))
                    .and_then(Value::as_str);
                if label.is_some_and(|s| s != "deployed") {
                    continue;
                }
            }
            candidates.push((rev, item));
        }
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));

        for (rev, item) in candidates {
            let secret_name = format!("{prefix}{rev}");
            let decoded = decode_release_secret(item, &secret_name)?;
            if decoded.name != release {
                return Err(malformed(
                    &format!("Secret {secret_name:?}"),
                    "the release record names another release",
                ));
            }
            if deployed_only && decoded.status != "deployed" {
                continue;
            }
            return Ok(Some(decoded));
        }
        Ok(None)
    }

    /// Whether the namespace holds any Helm release record of `release` (Secrets labelled
    /// `owner=helm,name=<release>`, any status). Only names and labels are looked at: nothing
    /// is decoded, so a release Secret's payload never leaves the response buffer.
    pub fn has_release_history(&self, release: &str) -> Result<bool, KubeError> {
        let prefix = format!("sh.helm.release.v1.{release}.v");
        Ok(self.release_secrets(release, false)?.iter().any(|item| {
            item.pointer("/metadata/name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with(&prefix))
        }))
    }

    /// The Secrets labelled `owner=helm,name=<release>` (plus `status=deployed` when
    /// `deployed_only`) in the namespace: one LIST. Callers look at names and labels, or decode
    /// one record.
    fn release_secrets(&self, release: &str, deployed_only: bool) -> Result<Vec<Value>, KubeError> {
        if !is_release_name(release) {
            return Err(KubeError::Other(format!(
                "{release:?} is not a valid Helm release name"
            )));
        }
        let mut selector = format!("owner=helm,name={release}");
        if deployed_only {
            selector.push_str(",status=deployed");
        }
        self.list_secrets(&selector, false)
    }

    /// One LIST of Secrets matching `selector`, in the client's namespace or (`all`) in every
    /// namespace. Parsed untyped on purpose: typed deserialisation errors can quote values, and
    /// these are Secrets (Helm release records). The release reads and audit's LIST of deployed
    /// releases share it.
    fn list_secrets(&self, selector: &str, all: bool) -> Result<Vec<Value>, KubeError> {
        let body = self.list_body::<Secret>("secrets", "Secret", selector, all)?;
        let mut list: Value = serde_json::from_slice(&body)
            .map_err(|e| malformed("Secret list", &json_error_position(&e)))?;
        match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => Ok(items),
            Some(Value::Null) | None => Ok(Vec::new()),
            Some(_) => Err(malformed("Secret list", "\"items\" is not a list")),
        }
    }

    /// Every revision of `release` (Secret storage driver), newest first. One list of Secrets
    /// labelled `owner=helm,name=<release>`.
    pub fn release_history(&self, release: &str) -> Result<Vec<ReleaseRevision>, KubeError> {
        let items = self.release_secrets(release, false)?;
        let prefix = format!("sh.helm.release.v1.{release}.v");
        let mut out = Vec::new();
        for item in &items {
            if let Some((name, _)) = release_record(item, &prefix) {
                out.push(decode_release_revision(item, name)?);
            }
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.version));
        Ok(out)
    }

    /// StatefulSets in the namespace matching the label selector (empty = all).
    pub fn list_statefulsets(&self, selector: &str) -> Result<Vec<StatefulSetView>, KubeError> {
        Ok(self
            .list_statefulsets_scoped(selector, false)?
            .into_iter()
            .map(|(_, sts)| sts)
            .collect())
    }

    /// One LIST of `K` matching `selector`, in the client's namespace or (`all`) in every
    /// namespace, parsed as `K`.
    fn list_scoped<K>(
        &self,
        resource: &str,
        kind: &str,
        selector: &str,
        all: bool,
    ) -> Result<Vec<K>, KubeError>
    where
        K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned,
    {
        let body = self.list_body::<K>(resource, kind, selector, all)?;
        let list: ObjectListItems<K> = parse_json(&body, &format!("{kind} list"))?;
        Ok(list.items.unwrap_or_default())
    }

    /// Every LIST ess-guard makes: the request (an empty `selector` selects everything), the
    /// status check (a 403 across all namespaces names none) and the body, left to the caller
    /// to parse typed ([`Cluster::list_scoped`]) or untyped ([`Cluster::list_secrets`]).
    fn list_body<K>(
        &self,
        resource: &str,
        kind: &str,
        selector: &str,
        all: bool,
    ) -> Result<Vec<u8>, KubeError>
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let target = Target {
            verb: "list",
            resource,
            kind,
            name: None,
            namespace: self.scope(all),
        };
        let url = K::url_path(&(), self.scope(all));
        let mut params = ListParams::default();
        if !selector.is_empty() {
            params = params.labels(selector);
        }
        let req = Request::new(url).list(&params);
        let resp = self.execute(req, &target)?;
        self.check_status(&resp, &target)?;
        Ok(resp.body)
    }

    /// One LIST of ConfigMaps matching `selector`, in the client's namespace or (`all`) in
    /// every namespace.
    pub fn list_configmaps(
        &self,
        selector: &str,
        all: bool,
    ) -> Result<Vec<ConfigMapView>, KubeError> {
        self.list_scoped::<ConfigMap>("configmaps", "ConfigMap", selector, all)?
            .into_iter()
            .map(|cm| {
                let name = cm.metadata.name.clone().ok_or_else(|| {
                    malformed("ConfigMap list", "a ConfigMap has no metadata.name")
                })?;
                Ok(configmap_view(cm, name, &self.namespace))
            })
            .collect()
    }

    /// One LIST of StatefulSets matching `selector`, with their namespaces, in the client's
    /// namespace or (`all`) in every namespace.
    pub fn list_statefulsets_scoped(
        &self,
        selector: &str,
        all: bool,
    ) -> Result<Vec<(String, StatefulSetView)>, KubeError> {
        self.list_scoped::<StatefulSet>("statefulsets", "StatefulSet", selector, all)?
            .into_iter()
            .map(|s| {
                let ns = s
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| self.namespace.clone());
                sts_view(s, "StatefulSet list").map(|v| (ns, v))
            })
            .collect()
    }

    /// One LIST of the deployed Helm release records (`owner=helm,status=deployed`), in the
    /// client's namespace or (`all`) in every namespace. Helm marks only the newest deployed
    /// revision of a release `deployed`; if several are (an interrupted upgrade), the highest
    /// revision wins. Each record is decoded on its own: one that cannot be read is returned
    /// as an error beside the others. Secret data never appears in errors.
    pub fn list_deployed_releases(&self, all: bool) -> Result<Vec<ListedRelease>, KubeError> {
        let items = self.list_secrets("owner=helm,status=deployed", all)?;
        // (namespace, release) -> (revision, item)
        let mut newest: BTreeMap<(String, String), (u32, &Value)> = BTreeMap::new();
        for item in &items {
            if item.get("type").and_then(Value::as_str) != Some("helm.sh/release.v1") {
                continue;
            }
            let meta = item.get("metadata");
            let get = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
            let label = |k: &str| {
                meta.and_then(|m| m.get("labels"))
                    .and_then(|l| l.get(k))
                    .and_then(Value::as_str)
            };
            let (Some(ns), Some(release), Some(rev)) = (
                get("namespace"),
                label("name"),
                label("version").and_then(|v| v.parse::<u32>().ok()),
            ) else {
                continue;
            };
            let key = (ns.to_string(), release.to_string());
            if newest.get(&key).is_none_or(|(r, _)| rev > *r) {
                newest.insert(key, (rev, item));
            }
        }
        Ok(newest
            .into_iter()
            .map(|((namespace, release), (rev, item))| {
                let secret = format!("sh.helm.release.v1.{release}.v{rev}");
                let decoded = decode_release_secret(item, &secret);
                ListedRelease {
                    namespace,
                    release,
                    decoded,
                }
            })
            .collect())
    }

    /// One GET of a ConfigMap in `namespace` (not necessarily the client's); `Ok(None)` on
    /// the API server's own 404. `audit` uses it only for a release that runs Synapse but has
    /// no labelled marker, to tell "no marker" from "a marker without the label".
    pub fn get_configmap_in(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ConfigMapView>, KubeError> {
        let what = format!("ConfigMap {namespace}/{name}");
        let Some(cm) = self.get_named::<ConfigMap>(namespace, name, &what)? else {
            return Ok(None);
        };
        let name = cm.metadata.name.clone().unwrap_or_else(|| name.to_string());
        Ok(Some(configmap_view(cm, name, namespace)))
    }

    /// Every GET ess-guard makes, of one object `name` of kind `K` in `namespace` (`what` names
    /// it in a malformed-answer error): the name checks, the request, the API server's own 404
    /// as `Ok(None)`, the status check and the typed parse. The marker read, audit's ConfigMap
    /// read and the StatefulSet existence check all go through here.
    fn get_named<K>(&self, namespace: &str, name: &str, what: &str) -> Result<Option<K>, KubeError>
    where
        K: kube::Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + serde::de::DeserializeOwned,
    {
        let (resource, kind) = (K::plural(&()), K::kind(&()));
        let target = Target {
            verb: "get",
            resource: &resource,
            kind: &kind,
            name: Some(name),
            namespace: Some(namespace),
        };
        check_name(name, &kind)?;
        if !is_dns_label(namespace) {
            return Err(KubeError::Other(format!(
                "{namespace:?} is not a valid namespace name"
            )));
        }
        let url = K::url_path(&(), Some(namespace));
        let req = Request::new(url).get(name, &GetParams::default());
        let resp = self.execute(req, &target)?;
        if resp.status == 404 && is_object_not_found(&resp.body, target.resource, name) {
            return Ok(None);
        }
        self.check_status(&resp, &target)?;
        parse_json(&resp.body, what).map(Some)
    }

    fn scope(&self, all: bool) -> Option<&str> {
        if all {
            None
        } else {
            Some(&self.namespace)
        }
    }

    /// JSON merge patch of `spec.replicas`, with `metadata.resourceVersion` as precondition
    /// (a stale one gives [`KubeError::Conflict`]). `dry_run` asks the server for `dryRun=All`.
    pub fn patch_statefulset_replicas(
        &self,
        name: &str,
        replicas: i32,
        resource_version: &str,
        dry_run: bool,
    ) -> Result<StatefulSetView, KubeError> {
        let target = Target {
            verb: "patch",
            resource: "statefulsets",
            kind: "StatefulSet",
            name: Some(name),
            namespace: Some(&self.namespace),
        };
        check_name(name, "StatefulSet")?;
        if replicas < 0 {
            return Err(KubeError::Other(format!(
                "refusing to set StatefulSet {name:?} to {replicas} replicas"
            )));
        }
        if resource_version.is_empty() {
            // An empty resourceVersion would silently drop the precondition.
            return Err(KubeError::Other(format!(
                "refusing to patch StatefulSet {name:?} without a resourceVersion precondition"
            )));
        }
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": resource_version },
            "spec": { "replicas": replicas },
        });
        let mut params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        if dry_run {
            params = params.dry_run();
        }
        let url = StatefulSet::url_path(&(), Some(&self.namespace));
        let req = Request::new(url).patch(name, &params, &Patch::Merge(&patch));
        let resp = self.execute(req, &target)?;
        match resp.status {
            404 => {
                return Err(KubeError::NotFound {
                    kind: "StatefulSet".into(),
                    name: name.into(),
                    namespace: self.namespace.clone(),
                });
            }
            409 => return Err(KubeError::Conflict { name: name.into() }),
            _ => self.check_status(&resp, &target)?,
        }
        let what = format!("StatefulSet {name:?}");
        let sts: StatefulSet = parse_json(&resp.body, &what)?;
        sts_view(sts, &what)
    }

    /// Sends one request and reads the whole response, all within the timeout.
    fn execute(
        &self,
        req: Result<http::Request<Vec<u8>>, kube::core::request::Error>,
        target: &Target<'_>,
    ) -> Result<RawResponse, KubeError> {
        let req = req.map_err(|e| KubeError::Other(format!("cannot build the request: {e}")))?;
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(KubeError::Other(
                "internal error: kube_access::Cluster used inside an async runtime".into(),
            ));
        }
        let req = req.map(Body::from);
        self.calls.set(self.calls.get() + 1);
        let client = self.client.clone();
        let fut = async move {
            let resp = client.send(req).await.map_err(Phase::Send)?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body = resp
                .into_body()
                .collect_bytes()
                .await
                .map_err(Phase::Body)?;
            Ok::<_, Phase>(RawResponse {
                status,
                retry_after,
                body: body.to_vec(),
            })
        };
        match self
            .runtime
            .block_on(async { tokio::time::timeout(self.timeout, fut).await })
        {
            Err(_elapsed) => Err(KubeError::Timeout {
                server: self.server.clone(),
                after: self.timeout,
            }),
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(phase)) => Err(self.transport_error(phase, target)),
        }
    }

    /// Maps a non-2xx status to an error (404 included: callers that expect it check first).
    fn check_status(&self, resp: &RawResponse, target: &Target<'_>) -> Result<(), KubeError> {
        let code = resp.status;
        if (200..300).contains(&code) {
            return Ok(());
        }
        let message = status_message(&resp.body);
        Err(match code {
            401 => KubeError::Unauthorized {
                server: self.server.clone(),
            },
            403 => KubeError::Forbidden {
                verb: target.verb.into(),
                resource: target.resource.into(),
                name: target.name.map(str::to_string),
                namespace: target.namespace.unwrap_or("(all namespaces)").into(),
                user_message: message,
            },
            404 => match target.name {
                Some(name) if is_object_not_found(&resp.body, target.resource, name) => {
                    KubeError::NotFound {
                        kind: target.kind.into(),
                        name: name.into(),
                        namespace: target.namespace.unwrap_or("(all namespaces)").into(),
                    }
                }
                Some(name) => KubeError::Other(format!(
                    "the API server answered 404 to {} {} {name:?} without Kubernetes' NotFound status for that object ({message}); check that the kubeconfig's server address {} is the Kubernetes API server itself",
                    target.verb, target.resource, self.server
                )),
                None => KubeError::Other(format!(
                    "the API server does not serve {} (404: {message}); is {} a Kubernetes API server?",
                    target.resource, self.server
                )),
            },
            // Only a write can conflict; a 409 to a read is an unexpected answer (below).
            409 if target.verb == "patch" => KubeError::Conflict {
                name: target.name.unwrap_or_default().into(),
            },
            429 => KubeError::TooManyRequests {
                retry_after: resp.retry_after.or_else(|| status_retry_after(&resp.body)),
            },
            500..=599 => KubeError::Server { code, message },
            _ => KubeError::Other(format!(
                "the API server refused to {} {}{} (HTTP {code}: {message})",
                target.verb,
                target.resource,
                fmt_name(&target.name.map(str::to_string))
            )),
        })
    }

    fn transport_error(&self, phase: Phase, target: &Target<'_>) -> KubeError {
        let server = self.server.clone();
        let (err, in_body) = match phase {
            Phase::Send(e) => (e, false),
            Phase::Body(e) => (e, true),
        };
        if let kube::Error::Auth(e) = &err {
            return KubeError::Config(format!(
                "cannot obtain credentials for {server}: {}",
                one_line(&e.to_string())
            ));
        }
        let chain = ErrorChain::of(&err);
        if let Some(tls) = chain.tls {
            return KubeError::Tls {
                server,
                detail: one_line(&tls),
            };
        }
        if chain.timed_out {
            return KubeError::Timeout {
                server,
                after: self.timeout,
            };
        }
        let what = match target.name {
            Some(n) => format!("{} {n:?}", target.kind),
            None => format!("{} list", target.kind),
        };
        if in_body {
            return KubeError::Malformed {
                what,
                detail: format!("reading the body failed: {}", chain.detail),
            };
        }
        if chain.parse_error {
            return KubeError::Malformed {
                what,
                detail: format!("not an HTTP response: {}", chain.detail),
            };
        }
        KubeError::Connect {
            server,
            detail: chain.detail,
        }
    }
}

enum Phase {
    Send(kube::Error),
    Body(kube::Error),
}

/// What the error chain of a transport failure says.
struct ErrorChain {
    detail: String,
    tls: Option<String>,
    timed_out: bool,
    parse_error: bool,
}

impl ErrorChain {
    fn of(err: &kube::Error) -> ErrorChain {
        // Skip kube's own wrapper text ("ServiceError: ..."), keep the causes.
        let mut chain = Vec::new();
        match err.source() {
            Some(source) => flatten_errors(source, &mut chain),
            None => flatten_errors(err, &mut chain),
        }
        let mut parts: Vec<String> = Vec::new();
        let mut tls = None;
        let mut timed_out = false;
        let mut parse_error = false;
        for e in chain {
            if let Some(h) = e.downcast_ref::<hyper::Error>() {
                if h.is_parse() || h.is_parse_status() {
                    parse_error = true;
                }
                if h.is_timeout() {
                    timed_out = true;
                }
            }
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            {
                timed_out = true;
            }
            if let Some(r) = e.downcast_ref::<rustls::Error>() {
                tls.get_or_insert_with(|| r.to_string());
            }
            let text = e.to_string();
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
        }
        ErrorChain {
            detail: one_line(&parts.join(": ")),
            tls,
            timed_out,
            parse_error,
        }
    }
}

/// The error and its causes, in order. Unlike `source()`, this also descends into the error
/// wrapped by an `io::Error` (hyper-rustls wraps rustls errors in two `io::Error`s, and
/// `io::Error::source()` skips the wrapped error itself).
fn flatten_errors<'a>(
    e: &'a (dyn StdError + 'static),
    out: &mut Vec<&'a (dyn StdError + 'static)>,
) {
    if out.len() >= 32 {
        return;
    }
    out.push(e);
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        // io.source() is inner.source(), so the recursion covers it.
        flatten_errors(inner, out);
        return;
    }
    if let Some(source) = e.source() {
        flatten_errors(source, out);
    }
}

fn client_build_error(err: &kube::Error) -> KubeError {
    match err {
        kube::Error::ProxyProtocolDisabled { proxy_url, .. }
        | kube::Error::ProxyProtocolUnsupported { proxy_url } => KubeError::Config(format!(
            "a proxy ({proxy_url}) is configured (kubeconfig proxy-url or HTTPS_PROXY) but ess-guard cannot use proxies; unset HTTPS_PROXY for this command"
        )),
        other => KubeError::Config(one_line(&other.to_string())),
    }
}

/// Finds the kubeconfig (or in-cluster config) and applies the context; returns the
/// configuration and the name of the context used (`None` in-cluster).
async fn resolve_config(
    opts: &ConnectOptions,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<(kube::Config, Option<String>), KubeError> {
    let context = opts
        .context
        .clone()
        .filter(|c| !c.is_empty())
        .or_else(|| env_string(env, "HELM_KUBECONTEXT"));
    let kubeconfig = match load_kubeconfig(opts, env)? {
        Some(k) => k,
        None => return in_cluster_config(env).map(|c| (c, None)),
    };
    let (kubeconfig, source) = kubeconfig;
    let context_name = context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    let options = KubeConfigOptions {
        context: context.clone(),
        ..KubeConfigOptions::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map(|c| (c, Some(context_name)))
        .map_err(|e| match e {
            KubeconfigError::CurrentContextNotSet => {
                KubeError::Config(format!("{source} has no current-context; pass a context"))
            }
            KubeconfigError::LoadContext(name) => {
                KubeError::Config(format!("context {name:?} not found in {source}"))
            }
            KubeconfigError::LoadClusterOfContext(name) => KubeError::Config(format!(
                "cluster {name:?} of the selected context not found in {source}"
            )),
            other => KubeError::Config(format!("{source}: {}", one_line(&other.to_string()))),
        })
}

/// `Ok(None)` means: no kubeconfig file, use the in-cluster configuration.
fn load_kubeconfig(
    opts: &ConnectOptions,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Option<(Kubeconfig, String)>, KubeError> {
    if let Some(path) = &opts.kubeconfig {
        return read_kubeconfig(path).map(|k| Some((k, format!("kubeconfig {}", path.display()))));
    }
    if let Some(list) = env("KUBECONFIG").filter(|v| !v.is_empty()) {
        // Like client-go: files that do not exist are ignored, the others merged in order.
        let paths: Vec<PathBuf> = std::env::split_paths(&list)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect();
        if paths.is_empty() {
            if in_cluster_available(env) {
                return Ok(None);
            }
            return Err(KubeError::Config(format!(
                "KUBECONFIG={} names no existing file and this is not a pod in a cluster",
                list.to_string_lossy()
            )));
        }
        let mut merged = Kubeconfig::default();
        for p in &paths {
            let k = read_kubeconfig(p)?;
            merged = merged
                .merge(k)
                .map_err(|e| KubeError::Config(format!("cannot merge {}: {e}", p.display())))?;
        }
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Ok(Some((merged, format!("kubeconfig {}", names.join(":")))));
    }
    let home = env("HOME").filter(|h| !h.is_empty());
    if let Some(home) = home {
        let path = Path::new(&home).join(".kube").join("config");
        if path.exists() {
            return read_kubeconfig(&path)
                .map(|k| Some((k, format!("kubeconfig {}", path.display()))));
        }
    }
    if in_cluster_available(env) {
        return Ok(None);
    }
    Err(KubeError::Config(
        "no kubeconfig found (no --kubeconfig, KUBECONFIG unset, no ~/.kube/config) and this is not a pod in a cluster"
            .into(),
    ))
}

fn read_kubeconfig(path: &Path) -> Result<Kubeconfig, KubeError> {
    Kubeconfig::read_from(path).map_err(|e| match e {
        KubeconfigError::ReadConfig(io, _) => {
            KubeError::Config(format!("cannot read kubeconfig {}: {io}", path.display()))
        }
        other => KubeError::Config(format!(
            "invalid kubeconfig {}: {}",
            path.display(),
            one_line(&other.to_string())
        )),
    })
}

fn in_cluster_available(env: &dyn Fn(&str) -> Option<OsString>) -> bool {
    env("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty())
        && env("KUBERNETES_SERVICE_PORT").is_some_and(|v| !v.is_empty())
}

fn in_cluster_config(env: &dyn Fn(&str) -> Option<OsString>) -> Result<kube::Config, KubeError> {
    if !in_cluster_available(env) {
        return Err(KubeError::Config(
            "no kubeconfig found and this is not a pod in a cluster".into(),
        ));
    }
    kube::Config::incluster_env().map_err(|e| {
        KubeError::Config(format!(
            "in-cluster configuration failed: {}",
            one_line(&e.to_string())
        ))
    })
}

fn resolve_namespace(
    opts: &ConnectOptions,
    env: &dyn Fn(&str) -> Option<OsString>,
    context_namespace: &str,
) -> String {
    opts.namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| env_string(env, "HELM_NAMESPACE"))
        .or_else(|| Some(context_namespace.to_string()).filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "default".to_string())
}

fn env_string(env: &dyn Fn(&str) -> Option<OsString>, key: &str) -> Option<String> {
    env(key)
        .and_then(|v| v.into_string().ok())
        .filter(|v| !v.is_empty())
}

/// A Secret listed by `owner=helm,name=<release>` that is really one of the release's records:
/// named `<prefix><revision>` (`prefix` = `sh.helm.release.v1.<release>.v`) and of Helm's type.
/// Its name and revision; `None` for anything else the label selector matched.
fn release_record<'a>(item: &'a Value, prefix: &str) -> Option<(&'a str, u32)> {
    let name = item.pointer("/metadata/name").and_then(Value::as_str)?;
    let rev = name.strip_prefix(prefix)?.parse::<u32>().ok()?;
    (item.get("type").and_then(Value::as_str) == Some("helm.sh/release.v1")).then_some((name, rev))
}

fn check_name(name: &str, kind: &str) -> Result<(), KubeError> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(KubeError::Other(format!(
            "{name:?} is not a valid {kind} name"
        )))
    }
}

#[derive(serde::Deserialize)]
struct ObjectListItems<T> {
    items: Option<Vec<T>>,
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, KubeError> {
    serde_json::from_slice(body).map_err(|e| {
        let detail = if e.is_eof() {
            json_error_position(&e)
        } else {
            one_line(&e.to_string())
        };
        malformed(what, &detail)
    })
}

/// A serde_json error without the value it may quote.
fn json_error_position(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Eof => "the body is truncated",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "unexpected JSON content",
        serde_json::error::Category::Io => "read error",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

fn malformed(what: &str, detail: &str) -> KubeError {
    KubeError::Malformed {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

fn sts_view(sts: StatefulSet, what: &str) -> Result<StatefulSetView, KubeError> {
    let meta = sts.metadata;
    let Some(name) = meta.name else {
        return Err(malformed(what, "a StatefulSet has no metadata.name"));
    };
    Ok(StatefulSetView {
        name,
        labels: meta.labels.unwrap_or_default(),
        annotations: meta.annotations.unwrap_or_default(),
        replicas: sts.spec.and_then(|s| s.replicas),
        resource_version: meta.resource_version,
    })
}

/// The message of a `Status` body, or a shortened text body.
fn status_message(body: &[u8]) -> String {
    if let Some(msg) = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
    {
        return one_line(&msg);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "no message".to_string()
    } else {
        one_line(text)
    }
}

/// Whether a 404 body is the API server's `NotFound` Status for exactly this object
/// (`details.name`, and `details.kind` = the resource when given). Any other 404 (a proxy's
/// page, or "the server could not find the requested resource" for a wrong server URL or an
/// API that is not served) is not evidence that the object is missing: reading it as "absent"
/// would fail open.
fn is_object_not_found(body: &[u8], resource: &str, name: &str) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let text = |pointer: &str| v.pointer(pointer).and_then(Value::as_str);
    text("/kind") == Some("Status")
        && text("/reason") == Some("NotFound")
        && text("/details/name") == Some(name)
        && text("/details/kind").is_none_or(|k| k == resource)
}

fn status_retry_after(body: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("details")?.get("retryAfterSeconds")?.as_u64()
}

/// Collapses whitespace and control characters and shortens to [`MAX_MESSAGE`] characters.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_MESSAGE + 3));
    let mut last_space = false;
    let mut count = 0;
    for c in s.chars() {
        let c = if c.is_whitespace() || c.is_control() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if count == MAX_MESSAGE {
            out.push('…');
            break;
        }
        out.push(c);
        count += 1;
    }
    out.trim().to_string()
}

/// Decodes one Helm release Secret. Helm's secret driver stores
/// `data.release = base64(gzip(json))` (gzip only when the payload starts with the gzip
/// magic, as Helm's decoder accepts both); Kubernetes base64-encodes `data` once more.
/// One revision of a Helm release as `recover` needs it: its status and its rendered manifest
/// (post-rendered: ess-guard's annotations are in it). The manifest holds the release's Secrets
/// too; it is only ever searched for StatefulSets, never printed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseRevision {
    pub version: u32,
    pub status: String,
    pub manifest: String,
}

fn decode_release_revision(item: &Value, secret_name: &str) -> Result<ReleaseRevision, KubeError> {
    let what = format!("Helm release Secret {secret_name:?}");
    let rel = decode_release_json(item, &what)?;
    let version = rel
        .get("version")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| malformed(&what, "the release has no valid version"))?;
    let status = rel
        .get("info")
        .and_then(|i| i.get("status"))
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(&what, "the release has no info.status"))?
        .to_string();
    let manifest = match rel.get("manifest") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err(malformed(&what, "the release's manifest is not a string")),
    };
    Ok(ReleaseRevision {
        version,
        status,
        manifest,
    })
}

/// The release JSON inside a Helm release Secret: `data.release` is base64 (the API's), of
/// base64 (Helm's), of gzip (Helm's, optional) of JSON.
fn decode_release_json(item: &Value, what: &str) -> Result<Value, KubeError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let outer = item
        .get("data")
        .and_then(|d| d.get("release"))
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(what, "data.release is missing"))?;
    let helm_payload = b64
        .decode(outer)
        .map_err(|_| malformed(what, "data.release is not valid base64"))?;
    let maybe_gzip = b64
        .decode(helm_payload.trim_ascii())
        .map_err(|_| malformed(what, "the release payload is not valid base64"))?;
    let json = if maybe_gzip.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(maybe_gzip.as_slice())
            .read_to_end(&mut out)
            .map_err(|_| malformed(what, "the release payload is not valid gzip"))?;
        out
    } else {
        maybe_gzip
    };
    serde_json::from_slice(&json)
        .map_err(|e| malformed(what, &format!("release JSON: {}", json_error_position(&e))))
}

fn decode_release_secret(item: &Value, secret_name: &str) -> Result<HelmRelease, KubeError> {
    let what = format!("Helm release Secret {secret_name:?}");
    let rel = decode_release_json(item, &what)?;
    let str_at = |path: &[&str]| -> Option<String> {
        let mut v = &rel;
        for key in path {
            v = v.get(key)?;
        }
        v.as_str().map(str::to_string)
    };
    let name = str_at(&["name"]).ok_or_else(|| malformed(&what, "the release has no name"))?;
    let version = rel
        .get("version")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| malformed(&what, "the release has no valid version"))?;
    let status = str_at(&["info", "status"])
        .ok_or_else(|| malformed(&what, "the release has no info.status"))?;
    let config = match rel.get("config") {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => return Err(malformed(&what, "the release's config is not an object")),
    };
    let chart_name = str_at(&["chart", "metadata", "name"])
        .ok_or_else(|| malformed(&what, "the release has no chart.metadata.name"))?;
    let chart_version = str_at(&["chart", "metadata", "version"])
        .ok_or_else(|| malformed(&what, "the release has no chart.metadata.version"))?;
    Ok(HelmRelease {
        name,
        version,
        status,
        config,
        chart_name,
        chart_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn namespace_precedence() {
        let mut opts = ConnectOptions::default();
        let env = env_of(&[("HELM_NAMESPACE", "from-env")]);
        assert_eq!(resolve_namespace(&opts, &env, "ctx"), "from-env");
        opts.namespace = Some("flag".into());
        assert_eq!(resolve_namespace(&opts, &env, "ctx"), "flag");
        let empty = env_of(&[("HELM_NAMESPACE", "")]);
        opts.namespace = None;
        assert_eq!(resolve_namespace(&opts, &empty, "ctx"), "ctx");
        assert_eq!(resolve_namespace(&opts, &empty, ""), "default");
    }

    #[test]
    fn only_the_objects_own_not_found_status_means_missing() {
        let not_found = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"ess-markers\" not found","reason":"NotFound","details":{"name":"ess-markers","kind":"configmaps"},"code":404}"#;
        assert!(is_object_not_found(not_found, "configmaps", "ess-markers"));
        assert!(!is_object_not_found(not_found, "configmaps", "other"));
        assert!(!is_object_not_found(
            not_found,
            "statefulsets",
            "ess-markers"
        ));
        // Unknown path on a real API server, a proxy's page, an empty or non-Status body.
        let unknown_path = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#;
        assert!(!is_object_not_found(
            unknown_path,
            "configmaps",
            "ess-markers"
        ));
        assert!(!is_object_not_found(
            b"<html>404 Not Found</html>",
            "configmaps",
            "ess-markers"
        ));
        assert!(!is_object_not_found(b"", "configmaps", "ess-markers"));
        assert!(!is_object_not_found(b"{}", "configmaps", "ess-markers"));
    }

    #[test]
    fn one_line_collapses_and_truncates() {
        assert_eq!(one_line(" a\n\tb  c "), "a b c");
        let long = "x".repeat(1000);
        assert_eq!(one_line(&long).chars().count(), MAX_MESSAGE + 1);
    }

    #[test]
    fn no_kubeconfig_anywhere_is_a_config_error() {
        let env = env_of(&[("HOME", "/nonexistent-home-for-test")]);
        let err = Cluster::connect_with_env(&ConnectOptions::default(), &env).unwrap_err();
        assert!(matches!(err, KubeError::Config(_)), "{err}");
    }

    #[test]
    fn kubeconfig_env_with_only_missing_files() {
        let env = env_of(&[("KUBECONFIG", "/nonexistent/a:/nonexistent/b")]);
        let err = Cluster::connect_with_env(&ConnectOptions::default(), &env).unwrap_err();
        assert!(err.to_string().contains("KUBECONFIG="), "{err}");
    }
}
