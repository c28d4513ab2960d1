//! The fast path decides exactly like the full parse.
//!
//! By default post-render parses only the documents the guard reads, and of Synapse StatefulSets
//! and most ConfigMaps and Secrets only the skeleton (`apiVersion`, `kind`, `metadata`,
//! `spec.replicas`), with a reader for simple block mappings in front of libyaml
//! (`ParseMode::Relevant`, `manifest::skeleton`, `manifest::simple`). `--full-parse` parses every
//! document in full with libyaml. For every `*.yaml` file under `$ESS_GUARD_SHARED/ess-renders`
//! (renders, post-renderer captures, the extra renders, and the values files, which are bad input
//! for post-render and must fail the same way), under stored markers `absent` and `legacy_auth`,
//! both modes must write the same bytes to stdout and exit with the same code.

mod support;

use std::path::{Path, PathBuf};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            out.push(path);
        }
    }
}

#[test]
fn relevant_and_full_parse_give_the_same_output_on_every_real_render() {
    let Some(shared) = support::shared_dir() else {
        return;
    };
    let mut files = Vec::new();
    yaml_files(&shared.join("ess-renders"), &mut files);
    assert!(files.len() > 20, "too few renders found: {}", files.len());
    let mut allowed = 0;
    for file in &files {
        let input = std::fs::read(file).expect("read render");
        for state in ["absent", "legacy_auth"] {
            let state_flag = format!("--state={state}");
            let fast = support::run(&["post-render", &state_flag, "--no-tty"], &input);
            let full = support::run(
                &["post-render", "--full-parse", &state_flag, "--no-tty"],
                &input,
            );
            let what = format!("{} from {state}", file.display());
            assert_eq!(
                fast.status.code(),
                full.status.code(),
                "exit code differs for {what}\nfast stderr: {}\nfull stderr: {}",
                String::from_utf8_lossy(&fast.stderr),
                String::from_utf8_lossy(&full.stderr)
            );
            assert!(
                fast.stdout == full.stdout,
                "stdout differs for {what} ({} vs {} bytes)",
                fast.stdout.len(),
                full.stdout.len()
            );
            allowed += usize::from(fast.status.code() == Some(0));
        }
    }
    assert!(
        allowed > 10,
        "too few allowed runs to compare output: {allowed}"
    );
}
