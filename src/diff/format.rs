//! The three output formats of `ess-guard diff`. Every one goes through [`super::secret`] for
//! Secrets unless `--show-secrets` was given.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};
use similar::udiff::UnifiedHunkHeader;
use similar::{Algorithm, ChangeTag, DiffTag, TextDiff};

use super::path::pointer;
use super::render::{render, Rendered};
use super::{secret, ChangeKind, Comparison, ResourceDiff};
use crate::manifest::Hook;

const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn paint(out: &mut String, color: bool, style: &str, text: &str) {
    if color {
        let _ = write!(out, "{style}{text}{RESET}");
    } else {
        out.push_str(text);
    }
}

fn hook_text(hook: Option<&Hook>) -> Option<String> {
    hook.map(|h| format!("hook {} w={}", h.phase_list(), h.weight))
}

/// ` [hook pre-install,pre-upgrade w=0]`, or the move for a changed resource:
/// ` [hook post-install,post-upgrade w=0 → pre-install,pre-upgrade w=0]`.
fn hook_tag(diff: &ResourceDiff) -> String {
    let new = hook_text(diff.new.as_ref().and_then(|l| l.resource.hook.as_ref()));
    let old = hook_text(diff.old_hook());
    match diff.change {
        ChangeKind::Changed if old != new => {
            let old = old.unwrap_or_else(|| "not a hook".to_string());
            let new = new.unwrap_or_else(|| "not a hook".to_string());
            format!(
                " [{old} → {}]",
                new.strip_prefix("hook ")
                    .filter(|_| old.starts_with("hook"))
                    .unwrap_or(&new)
            )
        }
        _ => hook_text(diff.hook())
            .map(|h| format!(" [{h}]"))
            .unwrap_or_default(),
    }
}

/// `~ Deployment ess/name (3 paths) [hook …]`.
fn headline(diff: &ResourceDiff) -> String {
    let mut line = format!("{} {}", diff.change.sign(), diff.id());
    if diff.change == ChangeKind::Changed {
        let n = diff.deltas.len();
        let _ = write!(line, " ({n} path{})", if n == 1 { "" } else { "s" });
    }
    line.push_str(&hook_tag(diff));
    line
}

fn headline_style(change: ChangeKind) -> &'static str {
    match change {
        ChangeKind::Added => GREEN,
        ChangeKind::Removed => RED,
        ChangeKind::Changed => YELLOW,
    }
}

/// One line per added, removed or changed resource.
pub fn summary(comparison: &Comparison, color: bool) -> String {
    let mut out = String::new();
    for diff in &comparison.diffs {
        paint(
            &mut out,
            color,
            headline_style(diff.change),
            &headline(diff),
        );
        out.push('\n');
    }
    out
}

/// The normalised text of one side, Secrets redacted unless `show_secrets`.
fn side_text(diff: &ResourceDiff, new_side: bool, show_secrets: bool) -> Rendered {
    let (this, other) = if new_side {
        (&diff.new, &diff.old)
    } else {
        (&diff.old, &diff.new)
    };
    let Some(this) = this else {
        return Rendered::empty();
    };
    let value = &this.resource.value;
    if show_secrets || !secret::is_secret(&this.resource.id) {
        return render(value);
    }
    // Only the new side is marked `changed`, so a same-size change is one -/+ line pair.
    let other = if new_side {
        other.as_ref().map(|l| &l.resource.value)
    } else {
        None
    };
    render(&secret::redact_text(value, other))
}

/// Per resource: the headline, `---`/`+++` naming the file and document of each side, and the
/// hunks of a unified diff of the normalised text, each hunk header naming the first changed path.
pub fn unified(comparison: &Comparison, context: usize, show_secrets: bool, color: bool) -> String {
    let mut out = String::new();
    for diff in &comparison.diffs {
        paint(
            &mut out,
            color,
            &format!("{BOLD}{}", headline_style(diff.change)),
            &headline(diff),
        );
        out.push('\n');
        let origin = |side: &Option<super::Located>| {
            side.as_ref()
                .map(|l| l.origin())
                .unwrap_or_else(|| "/dev/null".into())
        };
        paint(&mut out, color, BOLD, &format!("--- {}", origin(&diff.old)));
        out.push('\n');
        paint(&mut out, color, BOLD, &format!("+++ {}", origin(&diff.new)));
        out.push('\n');
        let old = side_text(diff, false, show_secrets);
        let new = side_text(diff, true, show_secrets);
        let text_diff = TextDiff::configure()
            .algorithm(Algorithm::Patience)
            .diff_lines(&old.text, &new.text);
        let groups = text_diff.grouped_ops(context);
        if groups.is_empty() {
            // Cannot happen with the renderer (it shows every difference), but never hide one.
            for delta in &diff.deltas {
                let _ = writeln!(out, "# changed: {}", pointer(&delta.segs));
            }
        }
        for group in groups {
            let location = group
                .iter()
                .find(|op| op.tag() != DiffTag::Equal)
                .map(|op| match op.tag() {
                    DiffTag::Insert => new.line_path(op.new_range().start),
                    _ => old.line_path(op.old_range().start),
                });
            let mut header = UnifiedHunkHeader::new(&group).to_string();
            // A whole added or removed document needs no location.
            let whole = old.text.is_empty() || new.text.is_empty();
            if let Some(location) = location.filter(|l| !l.is_empty() && !whole) {
                header.push(' ');
                header.push_str(&location);
            }
            paint(&mut out, color, CYAN, &header);
            out.push('\n');
            for op in &group {
                for change in text_diff.iter_changes(op) {
                    let (sign, style) = match change.tag() {
                        ChangeTag::Equal => (' ', ""),
                        ChangeTag::Delete => ('-', RED),
                        ChangeTag::Insert => ('+', GREEN),
                    };
                    let line = format!("{sign}{}", change.value().trim_end_matches('\n'));
                    if style.is_empty() {
                        out.push_str(&line);
                    } else {
                        paint(&mut out, color, style, &line);
                    }
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// The JSON array (see `ess-guard diff --help`).
pub fn json(comparison: &Comparison, show_secrets: bool) -> String {
    let items: Vec<Value> = comparison
        .diffs
        .iter()
        .map(|diff| json_item(diff, show_secrets))
        .collect();
    serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string()) + "\n"
}

fn hook_json(hook: Option<&Hook>) -> Value {
    hook.map(|h| json!({"phases": h.phases, "weight": h.weight}))
        .unwrap_or(Value::Null)
}

fn json_item(diff: &ResourceDiff, show_secrets: bool) -> Value {
    let id = diff.id();
    let mut item = Map::new();
    item.insert(
        "resource".into(),
        json!({"apiVersion": id.api_version, "kind": id.kind, "namespace": id.namespace, "name": id.name}),
    );
    item.insert("change".into(), json!(diff.change.as_str()));
    if let Some(hook) = diff.hook() {
        item.insert("hook".into(), hook_json(Some(hook)));
    }
    if diff.change == ChangeKind::Changed
        && hook_text(diff.old_hook())
            != hook_text(diff.new.as_ref().and_then(|l| l.resource.hook.as_ref()))
    {
        item.insert("previousHook".into(), hook_json(diff.old_hook()));
    }
    let redact = !show_secrets && diff.is_secret();
    let shown = |segs: &[super::path::Seg], v: &Value| {
        if redact {
            secret::redact_json(segs, v)
        } else {
            v.clone()
        }
    };
    let paths: Vec<Value> = diff
        .deltas
        .iter()
        .map(|d| json!(pointer(&d.segs)))
        .collect();
    item.insert("paths".into(), Value::Array(paths));
    if diff.change == ChangeKind::Changed {
        let mut old = Map::new();
        let mut new = Map::new();
        for delta in &diff.deltas {
            let at = pointer(&delta.segs);
            if let Some(v) = &delta.old {
                old.insert(at.clone(), shown(&delta.segs, v));
            }
            if let Some(v) = &delta.new {
                new.insert(at, shown(&delta.segs, v));
            }
        }
        item.insert("old".into(), Value::Object(old));
        item.insert("new".into(), Value::Object(new));
    }
    Value::Object(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::load::Side;
    use crate::diff::{compare, ignore::IgnoreRule};

    fn comparison(a: &str, b: &str) -> Comparison {
        let side = |t: &str| Side::from_text("t.yaml", t.to_string()).expect("parses");
        compare(
            side(a),
            side(b),
            &[IgnoreRule::parse("annotations:x/*").expect("rule")],
        )
    }

    const JOB_OLD: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n  namespace: ess\n  annotations:\n    helm.sh/hook: post-install,post-upgrade\n    helm.sh/hook-weight: \"0\"\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        args: [a, b, c, d, e, f, g, h]\n";

    #[test]
    fn summary_tags_hooks_and_counts_paths() {
        let new = JOB_OLD
            .replace("post-install,post-upgrade", "pre-install,pre-upgrade")
            .replace("[a, b,", "[a, B,");
        let c = comparison(JOB_OLD, &new);
        assert_eq!(
            summary(&c, false),
            "~ Job ess/j (2 paths) [hook post-install,post-upgrade w=0 → pre-install,pre-upgrade w=0]\n"
        );
        let c = comparison("", JOB_OLD);
        assert_eq!(
            summary(&c, false),
            "+ Job ess/j [hook post-install,post-upgrade w=0]\n"
        );
        assert!(summary(&c, true).starts_with(GREEN));
    }

    #[test]
    fn unified_hunks_name_paths_and_respect_context() {
        let new = JOB_OLD.replace(" h]", " H]");
        let c = comparison(JOB_OLD, &new);
        let text = unified(&c, 1, false, false);
        let expected = "\
~ Job ess/j (1 path) [hook post-install,post-upgrade w=0]
--- t.yaml (document 1)
+++ t.yaml (document 1)
@@ -21,2 +21,2 @@ spec.template.spec.containers[0].args[7]
         - g
-        - h
+        - H
";
        assert_eq!(text, expected);
        assert!(!text.contains('\x1b'));
        assert!(unified(&c, 1, false, true).contains(RED));
    }

    #[test]
    fn json_lists_pointers_and_values() {
        let new = JOB_OLD.replace("post-install,post-upgrade", "pre-install,pre-upgrade");
        let c = comparison(JOB_OLD, &new);
        let v: Value = serde_json::from_str(&json(&c, false)).expect("json");
        assert_eq!(
            v[0]["paths"],
            json!(["/metadata/annotations/helm.sh~1hook"])
        );
        assert_eq!(
            v[0]["old"]["/metadata/annotations/helm.sh~1hook"],
            json!("post-install,post-upgrade")
        );
        assert_eq!(
            v[0]["hook"]["phases"],
            json!(["pre-install", "pre-upgrade"])
        );
        assert_eq!(v[0]["previousHook"]["weight"], json!(0));
        assert_eq!(
            v[0]["resource"],
            json!({"apiVersion": "batch/v1", "kind": "Job", "namespace": "ess", "name": "j"})
        );
    }
}
