//! The live-state scenarios shared by the fake-server tests (`tests/live_fake.rs`) and the
//! real-server tests (`tests/live_e2e.rs`): every stored marker state against every example
//! render, and the verdict the chart's transition table gives (ess-chart.md §1.4). One table, so
//! the two tiers cannot drift apart.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The annotation post-render puts on a scaled-down Synapse StatefulSet.
pub const RESTORE: &str = "ess-guard.element.io/restore-replicas";

/// Every value the marker can hold, `absent` meaning no marker at all.
pub const STATES: [&str; 4] = [
    "absent",
    "legacy_auth",
    "syn2mas_migrated",
    "delegated_auth",
];

/// `ess-guard values --reuse-values` for release `ess` in namespace `ess`; callers add the
/// kubeconfig, the state and the value flags.
pub const REUSE_VALUES: [&str; 6] = ["values", "--reuse-values", "-r", "ess", "-n", "ess"];

/// The example renders under `examples/renders/`: before the migration and its three steps.
pub const RENDERS: [&str; 4] = ["legacy", "step1", "step2", "step3"];

/// The rule that rejects `render` when the stored state is `state`; `None` when it is allowed.
pub fn expected(state: &str, render: &str) -> Option<&'static str> {
    match (state, render) {
        ("absent" | "legacy_auth", "legacy" | "step1" | "step2") => None,
        ("absent", "step3") => None,
        ("legacy_auth", "step3") => Some("mas-requires-syn2mas"),
        ("syn2mas_migrated" | "delegated_auth", "step3") => None,
        ("syn2mas_migrated" | "delegated_auth", "legacy" | "step1") => Some("no-rollback"),
        ("syn2mas_migrated", "step2") => Some("syn2mas-still-enabled"),
        ("delegated_auth", "step2") => Some("syn2mas-rerun"),
        _ => unreachable!("{state} {render}"),
    }
}

/// The path of an example render.
pub fn render_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/renders")
        .join(format!("{name}.yaml"))
}

/// The bytes of an example render.
pub fn render(name: &str) -> Vec<u8> {
    std::fs::read(render_path(name)).expect("read example render")
}

/// A path as a command-line argument.
pub fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_string()
}
