//! Structural comparison of two resources: the list of paths whose values differ.
//!
//! Maps are compared key by key (order never matters). Sequences of the same length are compared
//! item by item; when the length changed, items are first aligned (by `name` for the usual
//! Kubernetes lists of containers, env vars, volumes and ports, else by value), so inserting one
//! env var is one added path rather than every later item changed.

use serde_json::Value;
use similar::{capture_diff_slices, Algorithm, DiffOp};

use super::path::Seg;

/// One difference. `segs` locates it in the new document, or in the old one when the node was
/// removed; `old`/`new` are `None` where the node is absent on that side.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    pub segs: Vec<Seg>,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// Every difference between `old` and `new`, in document order.
pub fn deltas(old: &Value, new: &Value) -> Vec<Delta> {
    let mut out = Vec::new();
    walk(old, new, &mut Vec::new(), &mut out);
    out
}

fn walk(old: &Value, new: &Value, segs: &mut Vec<Seg>, out: &mut Vec<Delta>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a
                .keys()
                .chain(b.keys().filter(|k| !a.contains_key(k.as_str())))
                .collect();
            keys.sort();
            for key in keys {
                segs.push(Seg::Key(key.clone()));
                match (a.get(key.as_str()), b.get(key.as_str())) {
                    (Some(x), Some(y)) => walk(x, y, segs, out),
                    (x, y) => out.push(Delta {
                        segs: segs.clone(),
                        old: x.cloned(),
                        new: y.cloned(),
                    }),
                }
                segs.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                segs.push(Seg::Index(i));
                walk(x, y, segs, out);
                segs.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            let ka: Vec<String> = a.iter().map(item_key).collect();
            let kb: Vec<String> = b.iter().map(item_key).collect();
            for op in capture_diff_slices(Algorithm::Myers, &ka, &kb) {
                let (_, old_range, new_range) = op.as_tag_tuple();
                let paired = match op {
                    DiffOp::Equal { .. } | DiffOp::Replace { .. } => {
                        old_range.len().min(new_range.len())
                    }
                    _ => 0,
                };
                for j in 0..paired {
                    segs.push(Seg::Index(new_range.start + j));
                    walk(&a[old_range.start + j], &b[new_range.start + j], segs, out);
                    segs.pop();
                }
                let first_removed = old_range.start + paired;
                for (i, item) in a[first_removed..old_range.end].iter().enumerate() {
                    segs.push(Seg::Index(first_removed + i));
                    out.push(Delta {
                        segs: segs.clone(),
                        old: Some(item.clone()),
                        new: None,
                    });
                    segs.pop();
                }
                let first_added = new_range.start + paired;
                for (i, item) in b[first_added..new_range.end].iter().enumerate() {
                    segs.push(Seg::Index(first_added + i));
                    out.push(Delta {
                        segs: segs.clone(),
                        old: None,
                        new: Some(item.clone()),
                    });
                    segs.pop();
                }
            }
        }
        _ => out.push(Delta {
            segs: segs.clone(),
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
    }
}

/// What identifies a sequence item when aligning: its `name`, else its whole value.
fn item_key(item: &Value) -> String {
    match item.get("name").and_then(Value::as_str) {
        Some(name) => format!("name\u{0}{name}"),
        None => format!("value\u{0}{}", canonical(item)),
    }
}

/// JSON with sorted keys, so equal maps give equal keys whatever their order.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::path::pointer;
    use serde_json::json;

    fn pointers(old: Value, new: Value) -> Vec<String> {
        deltas(&old, &new)
            .iter()
            .map(|d| pointer(&d.segs))
            .collect()
    }

    #[test]
    fn maps_by_key_order_ignored() {
        assert!(pointers(json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1})).is_empty());
        assert_eq!(
            pointers(json!({"a": 1, "b": 2}), json!({"a": 2, "c": 3})),
            ["/a", "/b", "/c"]
        );
        let d = deltas(&json!({"a": 1}), &json!({}));
        assert_eq!(d[0].old, Some(json!(1)));
        assert_eq!(d[0].new, None);
    }

    #[test]
    fn inserted_list_item_is_one_path() {
        let old = json!({"env": [{"name": "A", "value": "1"}, {"name": "C", "value": "3"}]});
        let new = json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "4"}]});
        assert_eq!(pointers(old, new), ["/env/1", "/env/2/value"]);
        assert_eq!(
            pointers(json!({"args": ["a", "b"]}), json!({"args": ["a", "c"]})),
            ["/args/1"]
        );
        assert_eq!(
            pointers(
                json!({"args": ["a", "b", "c"]}),
                json!({"args": ["a", "c"]})
            ),
            ["/args/1"]
        );
        // Re-ordering a list is a change.
        assert_eq!(
            pointers(json!({"l": [1, 2]}), json!({"l": [2, 1]})),
            ["/l/0", "/l/1"]
        );
    }

    #[test]
    fn type_changes_are_changes() {
        assert_eq!(pointers(json!({"a": "1"}), json!({"a": 1})), ["/a"]);
        assert_eq!(pointers(json!({"a": {"x": 1}}), json!({"a": [1]})), ["/a"]);
    }
}
