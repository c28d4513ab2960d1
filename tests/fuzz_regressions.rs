//! Replays every input under `fuzz/regressions/<target>/` through the same harness the fuzz
//! targets run (`fuzz/harness.rs`), so a crash found once stays fixed without cargo-fuzz.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    // An empty folder would make this test pass without replaying anything.
    assert!(
        !files.is_empty(),
        "{} holds no regression input: a replay test must replay something",
        dir.display()
    );
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if let Err(panic) = std::panic::catch_unwind(|| run(&bytes)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{} fails again: {message}", file.display());
        }
    }
    println!("{target}: replayed {} regression input(s)", files.len());
}

#[test]
fn stream_regressions() {
    replay("stream", harness::stream);
}

#[test]
fn subset_regressions() {
    replay("subset", harness::subset);
}

#[test]
fn set_regressions() {
    replay("set", harness::set);
}

/// The harness itself accepts the real example renders (a smoke test of its invariants).
#[test]
fn stream_harness_accepts_examples() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/renders");
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        harness::stream(
            &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        );
    }
}

/// The fast readers agree with libyaml on every document of the example renders (the shapes
/// they exist for), so the `subset` harness is exercised on real input, not only on fuzz input.
#[test]
fn subset_harness_accepts_example_documents() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/renders");
    let mut documents = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for document in text.split("\n---\n") {
            harness::subset(document.as_bytes());
            documents += 1;
        }
    }
    assert!(
        documents > 50,
        "only {documents} documents in examples/renders"
    );
}
