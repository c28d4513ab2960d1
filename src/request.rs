//! What a command asks the library to do, as plain data.
//!
//! `cli.rs` turns flags into these types (`From` impls there), so the library (`guard`, `live`,
//! `values`, `helm_cmdline`, `shared_namespace`, `formats`, `diff`) never sees clap: a test, another
//! front end (the Argo CD plugin reads its environment, not flags) or a future API builds the
//! same requests without a command line.

use std::path::PathBuf;

use crate::state::{ChartProfile, MarkerState, Step};

/// Where the stored marker comes from, and how to reach the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRequest {
    /// The stored marker, stated (skips the cluster).
    pub state: Option<MarkerState>,
    /// The marker ConfigMap as `kubectl get cm -o yaml` prints it.
    pub state_file: Option<PathBuf>,
    /// Read the marker from the cluster even where the command's default is offline.
    pub live: bool,
    pub release: Option<String>,
    /// `-n`; `None` leaves it to the render, then `$HELM_NAMESPACE`, then the context.
    pub namespace: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    pub kube_context: Option<String>,
    /// Bound on every API request, in seconds.
    pub timeout: u64,
    /// No release history on the cluster read is an error, not a warning.
    pub expect_release: bool,
    pub chart: ChartRequest,
}

impl Default for StateRequest {
    fn default() -> Self {
        StateRequest {
            state: None,
            state_file: None,
            live: false,
            release: None,
            namespace: None,
            kubeconfig: None,
            kube_context: None,
            // The flag's default: one slow API server must not hold a `helm upgrade` for long.
            timeout: 5,
            expect_release: false,
            chart: ChartRequest::default(),
        }
    }
}

/// Which chart's rules decide when the input hides them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartRequest {
    pub chart_profile: Option<ChartProfile>,
    pub chart_version: Option<String>,
}

/// Helm's value sources, with Helm's meaning and order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValueSources {
    pub files: Vec<String>,
    pub set: Vec<String>,
    pub set_string: Vec<String>,
    pub set_json: Vec<String>,
    pub set_file: Vec<String>,
    pub set_literal: Vec<String>,
}

impl ValueSources {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.set.is_empty()
            && self.set_string.is_empty()
            && self.set_json.is_empty()
            && self.set_file.is_empty()
            && self.set_literal.is_empty()
    }
}

/// The user's intent, to settle what a render alone cannot show (Helm 3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntentRequest {
    pub step: Option<Step>,
    pub values: ValueSources,
}

/// How to read the input and what post-render may change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardRequest {
    /// Treat the input as Helm 3 or Helm 4 post-renderer input (`None`: detect).
    pub helm_version: Option<u8>,
    pub scale_down_retries: Option<u32>,
    pub no_harden: bool,
    pub full_parse: bool,
}

impl From<&GuardRequest> for crate::inject::Options {
    fn from(g: &GuardRequest) -> Self {
        crate::inject::Options {
            no_harden: g.no_harden,
            scale_down_retries: g.scale_down_retries,
        }
    }
}
