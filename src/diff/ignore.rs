//! `--ignore-path` rules: paths removed from both sides before they are compared.
//!
//! Two forms, told apart by their first character:
//!
//! - `$…` is an RFC 9535 JSONPath (jsonpath-rust), parsed once when the flag is read and run on
//!   every resource. Each node it selects is deleted.
//! - `labels:GLOB` / `annotations:GLOB` removes the label or annotation keys matching `GLOB` from
//!   every `metadata.labels` / `metadata.annotations` map of a resource: the object's own and those
//!   of its pod, job and volume-claim templates. `*` matches any run of characters (`/` included),
//!   `?` one character; everything else matches itself.
//!
//! A map that a removal leaves empty is removed too (`labels: {}` and no labels mean the same to
//! Kubernetes), so a document whose only annotation was ignored compares equal to one without
//! annotations.

use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

use super::path::Seg;

/// The label glob of `--ignore-hashes`: the chart's config/secret hash labels, which change
/// whenever any input of a component changes and only restart pods.
pub const HASH_LABELS: &str = "labels:k8s.element.io/*-hash";

/// The annotation Helm 4 adds to every document it hands a post-renderer (and strips after).
pub const HELM4_ANNOTATION: &str = "annotations:postrenderer.helm.sh/postrender-filename";

/// One parsed `--ignore-path` rule.
#[derive(Debug, Clone)]
pub enum IgnoreRule {
    /// A JSONPath, pre-parsed.
    JsonPath { text: String, query: JpQuery },
    /// Label or annotation keys matching a glob, in every `metadata` map.
    MetaKeys { field: &'static str, glob: String },
}

impl IgnoreRule {
    /// Parses one rule; the error is one line naming the rule and the expected syntax.
    pub fn parse(text: &str) -> Result<IgnoreRule, String> {
        let rule = text.trim();
        if rule.starts_with('$') {
            let query = parse_json_path(rule).map_err(|e| {
                format!(
                    "--ignore-path `{rule}`: invalid JSONPath: {}",
                    crate::manifest::one_line(&e.to_string())
                )
            })?;
            return Ok(IgnoreRule::JsonPath {
                text: rule.to_string(),
                query,
            });
        }
        for field in ["labels", "annotations"] {
            if let Some(glob) = rule.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
                if glob.is_empty() {
                    return Err(format!(
                        "--ignore-path `{rule}`: empty key pattern after `{field}:`"
                    ));
                }
                return Ok(IgnoreRule::MetaKeys {
                    field,
                    glob: glob.to_string(),
                });
            }
        }
        Err(format!(
            "--ignore-path `{rule}`: expected a JSONPath starting with `$` (e.g. $.spec.replicas) \
             or labels:GLOB / annotations:GLOB (e.g. labels:k8s.element.io/*-hash)"
        ))
    }

    /// The rule as the user wrote it (normalised for the glob form).
    pub fn text(&self) -> String {
        match self {
            IgnoreRule::JsonPath { text, .. } => text.clone(),
            IgnoreRule::MetaKeys { field, glob } => format!("{field}:{glob}"),
        }
    }

    /// Removes what the rule selects from `value`; returns how many nodes were removed.
    pub fn apply(&self, value: &mut Value) -> usize {
        match self {
            IgnoreRule::JsonPath { query, .. } => {
                let mut paths: Vec<Vec<Seg>> = match js_path_process(query, &*value) {
                    Ok(found) => found
                        .into_iter()
                        .filter_map(|r| parse_normalized_path(&r.path))
                        .collect(),
                    // A query that computes a value instead of selecting nodes selects nothing.
                    Err(_) => Vec::new(),
                };
                // Deepest and highest index first, so earlier removals do not move later ones.
                paths.sort();
                paths.dedup();
                let mut removed = 0;
                for path in paths.iter().rev() {
                    if remove_path(value, path) {
                        removed += 1;
                    }
                }
                removed
            }
            IgnoreRule::MetaKeys { field, glob } => remove_meta_keys(value, field, glob),
        }
    }
}

/// Parses a normalized path as jsonpath-rust prints it: `$`, then `['name']` or `[index]`
/// segments (names escaped as RFC 9535 §2.7 says).
fn parse_normalized_path(path: &str) -> Option<Vec<Seg>> {
    let mut rest = path.strip_prefix('$')?;
    let mut segs = Vec::new();
    while !rest.is_empty() {
        rest = rest.strip_prefix('[')?;
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\'' => break i,
                    '\\' => {
                        let (_, e) = chars.next()?;
                        match e {
                            'b' => name.push('\u{8}'),
                            'f' => name.push('\u{c}'),
                            'n' => name.push('\n'),
                            'r' => name.push('\r'),
                            't' => name.push('\t'),
                            'u' => {
                                let hex: String = (0..4)
                                    .filter_map(|_| chars.next().map(|(_, h)| h))
                                    .collect();
                                name.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                            }
                            other => name.push(other),
                        }
                    }
                    c => name.push(c),
                }
            };
            rest = quoted[end + 1..].strip_prefix(']')?;
            segs.push(Seg::Key(name));
        } else {
            let close = rest.find(']')?;
            segs.push(Seg::Index(rest[..close].parse().ok()?));
            rest = &rest[close + 1..];
        }
    }
    Some(segs)
}

fn child_mut<'a>(value: &'a mut Value, seg: &Seg) -> Option<&'a mut Value> {
    match (value, seg) {
        (Value::Object(map), Seg::Key(k)) => map.get_mut(k),
        (Value::Array(items), Seg::Index(i)) => items.get_mut(*i),
        _ => None,
    }
}

fn at_mut<'a>(value: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, seg| child_mut(v, seg))
}

/// Removes the node at `path`, then the maps this left empty. The root is never removed: a
/// rule that selects it (`$`) empties it instead.
fn remove_path(value: &mut Value, path: &[Seg]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        let was_empty = value.as_object().is_some_and(|m| m.is_empty());
        *value = Value::Object(Default::default());
        return !was_empty;
    };
    let removed = match (at_mut(value, parent_path), last) {
        (Some(Value::Object(map)), Seg::Key(k)) => map.shift_remove(k).is_some(),
        (Some(Value::Array(items)), Seg::Index(i)) if *i < items.len() => {
            items.remove(*i);
            true
        }
        _ => false,
    };
    if removed {
        prune_empty_maps(value, parent_path);
    }
    removed
}

/// Removes the map at `path` if it is empty, and so on upwards (never arrays, never the root).
fn prune_empty_maps(value: &mut Value, path: &[Seg]) {
    let mut depth = path.len();
    while depth > 0 {
        let empty = matches!(at_mut(value, &path[..depth]), Some(Value::Object(m)) if m.is_empty());
        if !empty {
            return;
        }
        match (at_mut(value, &path[..depth - 1]), &path[depth - 1]) {
            (Some(Value::Object(parent)), Seg::Key(k)) => {
                parent.shift_remove(k);
            }
            _ => return,
        }
        depth -= 1;
    }
}

/// Applies a `labels:`/`annotations:` glob to every `metadata` map in `value`.
fn remove_meta_keys(value: &mut Value, field: &str, glob: &str) -> usize {
    let mut removed = 0;
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(metadata)) = map.get_mut("metadata") {
                if let Some(Value::Object(keys)) = metadata.get_mut(field) {
                    let before = keys.len();
                    keys.retain(|k, _| !glob_match(glob, k));
                    removed += before - keys.len();
                    if removed > 0 && keys.is_empty() {
                        metadata.shift_remove(field);
                    }
                }
                if removed > 0 && metadata.is_empty() {
                    map.shift_remove("metadata");
                }
            }
            for child in map.values_mut() {
                removed += remove_meta_keys(child, field, glob);
            }
        }
        Value::Array(items) => {
            for item in items {
                removed += remove_meta_keys(item, field, glob);
            }
        }
        _ => {}
    }
    removed
}

/// `*` matches any run of characters, `?` exactly one; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                backtrack = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    pi = star + 1;
                    ti = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(rule: &str, mut value: Value) -> Value {
        IgnoreRule::parse(rule)
            .expect("rule parses")
            .apply(&mut value);
        value
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "k8s.element.io/*-hash",
            "k8s.element.io/synapse-config-hash"
        ));
        assert!(glob_match(
            "k8s.element.io/*-hash",
            "k8s.element.io/postgres-password-synapse-hash"
        ));
        assert!(!glob_match(
            "k8s.element.io/*-hash",
            "k8s.element.io/hash-x"
        ));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*", ""));
        assert!(glob_match("**x*", "abxcd"));
        assert!(!glob_match("abc", "abcd"));
    }

    #[test]
    fn normalized_paths() {
        use Seg::{Index, Key};
        assert_eq!(parse_normalized_path("$"), Some(vec![]));
        assert_eq!(
            parse_normalized_path("$['metadata']['labels']['a/b']"),
            Some(vec![
                Key("metadata".into()),
                Key("labels".into()),
                Key("a/b".into())
            ])
        );
        assert_eq!(
            parse_normalized_path("$['a'][3]"),
            Some(vec![Key("a".into()), Index(3)])
        );
        assert_eq!(
            parse_normalized_path(r"$['it\'s']['x\\y']"),
            Some(vec![Key("it's".into()), Key(r"x\y".into())])
        );
        assert_eq!(
            parse_normalized_path("$['a\\u0001']"),
            Some(vec![Key("a\u{1}".into())])
        );
        assert_eq!(parse_normalized_path("$['a'"), None);
    }

    #[test]
    fn jsonpath_removes_and_prunes() {
        let v = json!({"metadata": {"name": "x", "labels": {"k8s.element.io/synapse-config-hash": "1"}}});
        assert_eq!(
            apply("$.metadata.labels['k8s.element.io/synapse-config-hash']", v),
            json!({"metadata": {"name": "x"}})
        );
        let v = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}});
        assert_eq!(
            apply("$.spec.containers[*].image", v),
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}})
        );
        let v = json!({"l": [1, 2, 3, 4]});
        assert_eq!(apply("$.l[?@ > 1]", v), json!({"l": [1]}));
        let v = json!({"a": 1});
        assert_eq!(apply("$", v), json!({}));
        assert_eq!(apply("$.nothing.here", json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn meta_globs_reach_templates() {
        let v = json!({
            "metadata": {"name": "d", "labels": {"app": "x", "k8s.element.io/a-hash": "1"}},
            "spec": {"selector": {"matchLabels": {"k8s.element.io/a-hash": "kept"}},
                     "template": {"metadata": {"labels": {"k8s.element.io/b-hash": "2"}}}}
        });
        assert_eq!(
            apply(HASH_LABELS, v),
            json!({"metadata": {"name": "d", "labels": {"app": "x"}},
                   "spec": {"selector": {"matchLabels": {"k8s.element.io/a-hash": "kept"}}, "template": {}}})
        );
        let v = json!({"metadata": {"name": "x", "annotations": {"postrenderer.helm.sh/postrender-filename": "t.yaml"}}});
        assert_eq!(
            apply(HELM4_ANNOTATION, v),
            json!({"metadata": {"name": "x"}})
        );
    }

    #[test]
    fn bad_rules_are_one_line_errors() {
        for bad in ["$.data[?(@.x==", "metadata.labels", "labels:", "$$"] {
            let err = IgnoreRule::parse(bad).expect_err(bad);
            assert!(!err.contains('\n'), "{err}");
            assert!(err.starts_with("--ignore-path"), "{err}");
        }
    }
}
