//! The live state source: one GET of the marker ConfigMap, read-only, bounded by `--timeout`.
//!
//! Any failure to learn the state is an error (exit 3): ess-guard fails closed. A 404 means
//! `absent`, but an absent marker on a release that already runs Synapse without MAS is
//! treated as `legacy_auth` (the chart would otherwise allow a jump straight to MAS).

use std::time::Duration;

use crate::error::Error;
use crate::facts::{InputNote, Requested};
use crate::kube_access::{Cluster, ConnectOptions, KubeError};
use crate::request::StateRequest;
use crate::rules::RuleId;
use crate::source::{ConfigMapFacts, MarkerTarget, Observed, ReadFrom, StateSource};
use crate::state::{Current, MarkerReading, MarkerState, Step};

/// The escape hatch every cluster error names.
const ESCAPE: &str = "to decide without the cluster, pass --state <absent|legacy_auth|syn2mas_migrated|delegated_auth> explicitly";

/// Connection settings from the flags, following kubectl/Helm conventions.
pub fn connect_options(args: &StateRequest) -> ConnectOptions {
    ConnectOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.kube_context.clone(),
        namespace: args.namespace.clone(),
        timeout: Duration::from_secs(args.timeout.max(1)),
    }
}

/// Connects, or explains why not (exit 3).
pub fn connect(opts: &ConnectOptions) -> Result<Cluster, Error> {
    Cluster::connect(opts).map_err(|e| state_error(&e))
}

/// A cluster error as a one-line, fail-closed state error.
pub fn state_error(e: &KubeError) -> Error {
    Error::State(format!("cannot read the marker state: {e}; {ESCAPE}"))
}

/// Reads the marker from the cluster.
pub struct LiveState {
    opts: ConnectOptions,
    /// `--expect-release`: an absent marker with no release history is an error.
    expect_release: bool,
}

impl LiveState {
    pub fn from_args(args: &StateRequest) -> LiveState {
        LiveState {
            opts: connect_options(args),
            expect_release: args.expect_release,
        }
    }
}

impl LiveState {
    /// The connection for one target. Namespace: `-n`, else the one the target names (from the
    /// render: Helm does not pass its `-n` to a post-renderer, but the chart writes it into
    /// every document), else `$HELM_NAMESPACE`, else the kubeconfig context's (the last two are
    /// resolved by [`Cluster::connect`]).
    fn options_for(&self, target: &MarkerTarget) -> ConnectOptions {
        let mut opts = self.opts.clone();
        if opts.namespace.is_none() {
            opts.namespace = target.namespace.clone();
        }
        opts
    }
}

impl StateSource for LiveState {
    fn is_live(&self) -> bool {
        true
    }

    fn observe(&self, target: &MarkerTarget) -> Result<Observed, Error> {
        let configmap = target.configmap.clone().ok_or_else(|| {
            Error::Usage(format!(
                "cannot tell which marker ConfigMap to read: pass --release NAME (through --post-renderer-args=--release=NAME under Helm), or {ESCAPE}"
            ))
        })?;
        let cluster = connect(&self.options_for(target))?;
        let read_from = cluster.read_from(&configmap);
        match cluster.get_configmap(&configmap) {
            Ok(Some(cm)) => Ok(Observed::read_live(
                ConfigMapFacts::from(&cm).into_reading(),
                read_from,
            )),
            Ok(None) => {
                absent_or_legacy(&cluster, target, read_from, &configmap, self.expect_release)
            }
            Err(e) => Err(state_error(&e)),
        }
    }
}

/// No marker: look for evidence that the release already runs Synapse without MAS, and for
/// its Helm history at all (none may mean the wrong cluster, see [`crate::wrong_cluster`]).
/// The extra reads are optional; without permission for them ess-guard warns and keeps
/// `absent`, unless `--expect-release` asked for the history to be found.
fn absent_or_legacy(
    cluster: &Cluster,
    target: &MarkerTarget,
    read_from: ReadFrom,
    configmap: &str,
    expect_release: bool,
) -> Result<Observed, Error> {
    let mut observed = Observed::read_live(MarkerReading::NoConfigMap, read_from);
    let Some(release) = &target.release else {
        if expect_release {
            return Err(crate::wrong_cluster::release_required(configmap));
        }
        return Ok(observed);
    };
    let note = |message: String| InputNote {
        rule: RuleId::LegacyInferred,
        message,
        resource: None,
        source: None,
    };
    use crate::wrong_cluster::ReleaseHistory;
    let history;
    let legacy_from_release = match cluster.latest_release(release, true) {
        Ok(Some(rel)) => {
            history = ReleaseHistory::Present;
            let facts =
                crate::values::facts_from_values(&rel.config, &crate::values::chart_defaults());
            match facts.map(|f| f.requested) {
                Ok(Requested::Step(Step::Legacy)) => Some(format!(
                    "Helm release {release} v{} runs Synapse without MAS",
                    rel.version
                )),
                Ok(_) => return Ok(observed),
                Err(_) => None,
            }
        }
        Ok(None) => {
            // No deployed revision: is there any history of the release on this cluster?
            history = ReleaseHistory::look_up(cluster, release);
            if let ReleaseHistory::Unknown(e) = &history {
                observed.notes.push(InputNote {
                    rule: RuleId::MarkerEvidenceUnchecked,
                    message: format!("no marker stored, and the release history could not be listed ({e}); kept absent"),
                    resource: None,
                    source: None,
                });
            }
            None
        }
        Err(e) => {
            history = ReleaseHistory::Unknown(e.to_string());
            observed.notes.push(InputNote {
                rule: RuleId::MarkerEvidenceUnchecked,
                message: format!("no marker stored, and the release history could not be read ({e}); kept absent"),
                resource: None,
                source: None,
            });
            None
        }
    };
    let evidence = match legacy_from_release {
        Some(e) => Some(e),
        None => match cluster.statefulset_exists(&format!("{release}-synapse-main")) {
            Ok(true) => Some(format!("StatefulSet {release}-synapse-main exists")),
            Ok(false) => None,
            Err(e) => {
                observed.notes.push(InputNote {
                    rule: RuleId::MarkerEvidenceUnchecked,
                    message: format!("no marker stored, and whether Synapse already runs could not be checked ({e}); kept absent"),
                    resource: None,
                    source: None,
                });
                None
            }
        },
    };
    if let Some(evidence) = evidence {
        // The release's Synapse runs here: this is its cluster, whatever the history says.
        observed.current = Current::Known(MarkerState::LegacyAuth);
        observed.notes.push(note(format!(
            "no marker stored, but {evidence}: treated as legacy_auth"
        )));
        return Ok(observed);
    }
    crate::wrong_cluster::judge(
        cluster,
        release,
        configmap,
        &history,
        expect_release,
        &mut observed.notes,
    )?;
    Ok(observed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(namespace: Option<&str>) -> MarkerTarget {
        MarkerTarget {
            configmap: Some("ess-markers".into()),
            namespace: namespace.map(str::to_string),
            release: Some("ess".into()),
        }
    }

    #[test]
    fn explicit_namespace_beats_the_render_which_beats_the_environment() {
        let flag = LiveState::from_args(&StateRequest {
            namespace: Some("flag".into()),
            ..StateRequest::default()
        });
        assert_eq!(
            flag.options_for(&target(Some("render")))
                .namespace
                .as_deref(),
            Some("flag")
        );
        let none = LiveState::from_args(&StateRequest::default());
        assert_eq!(
            none.options_for(&target(Some("render")))
                .namespace
                .as_deref(),
            Some("render")
        );
        // Neither: left to kube_access ($HELM_NAMESPACE, then the context's namespace).
        assert_eq!(none.options_for(&target(None)).namespace, None);
    }

    #[test]
    fn helm_namespace_is_not_folded_into_the_flag() {
        // If clap read $HELM_NAMESPACE into -n, a value left in the shell would beat the
        // render's namespace (see options_for).
        use clap::CommandFactory;
        let cli = crate::cli::Cli::command();
        for sub in ["post-render", "check", "plan", "values", "recover"] {
            let cmd = cli.find_subcommand(sub).expect("subcommand");
            let ns = cmd
                .get_arguments()
                .find(|a| a.get_id() == "namespace")
                .expect("-n");
            assert_eq!(ns.get_env(), None, "{sub}");
        }
    }

    #[test]
    fn timeout_is_at_least_one_second() {
        let opts = connect_options(&StateRequest {
            timeout: 0,
            ..StateRequest::default()
        });
        assert_eq!(opts.timeout, Duration::from_secs(1));
    }
}
