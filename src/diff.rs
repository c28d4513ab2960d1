//! Diffs: a plain unified diff of two texts (for `--explain`), and `ess-guard diff`.

use similar::TextDiff;

/// A unified diff of `old` and `new` with `context` lines around each change.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str, context: usize) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(context)
        .header(old_name, new_name)
        .to_string()
}
