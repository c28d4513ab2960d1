//! Secret redaction. Values of a Secret's `data` and `stringData` (ESS `user-*` keys included:
//! they hold whole config files) and its `kubectl.kubernetes.io/last-applied-configuration`
//! annotation (a copy of the data) are never shown: only the key and the size in bytes, decoded
//! for `data`. Comparison happens on the real values before redaction, so a change that keeps
//! the size is still reported, and marked as changed in the text.

use base64::Engine as _;
use serde_json::{json, Value};

use super::path::Seg;
use crate::manifest::ResourceId;

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// True for core-group Secrets.
pub fn is_secret(id: &ResourceId) -> bool {
    id.kind == "Secret" && id.group().is_empty()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Base64,
    Text,
}

/// Whether the node at `segs` of a Secret holds secret material.
fn sensitive(segs: &[Seg]) -> Option<Encoding> {
    match segs {
        [Seg::Key(field), Seg::Key(_)] if field == "data" => Some(Encoding::Base64),
        [Seg::Key(field), Seg::Key(_)] if field == "stringData" => Some(Encoding::Text),
        [Seg::Key(m), Seg::Key(a), Seg::Key(k)]
            if m == "metadata" && a == "annotations" && k == LAST_APPLIED =>
        {
            Some(Encoding::Text)
        }
        _ => None,
    }
}

/// The size of a secret value: decoded bytes for base64 `data`, and whether it decoded.
fn size(value: &Value, encoding: Encoding) -> (usize, bool) {
    match (value, encoding) {
        (Value::Null, _) => (0, true),
        (Value::String(s), Encoding::Base64) => {
            let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
                Ok(bytes) => (bytes.len(), true),
                Err(_) => (s.len(), false),
            }
        }
        (Value::String(s), Encoding::Text) => (s.len(), true),
        (other, _) => (other.to_string().len(), true),
    }
}

/// Rebuilds `value` (found at `segs`), replacing every secret node by `leaf(segs, node, enc)`.
fn walk(
    value: &Value,
    segs: &mut Vec<Seg>,
    leaf: &mut dyn FnMut(&[Seg], &Value, Encoding) -> Value,
) -> Value {
    if let Some(encoding) = sensitive(segs) {
        return leaf(segs, value, encoding);
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    segs.push(Seg::Key(k.clone()));
                    let out = walk(v, segs, leaf);
                    segs.pop();
                    (k.clone(), out)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    segs.push(Seg::Index(i));
                    let out = walk(v, segs, leaf);
                    segs.pop();
                    out
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The JSON-output form of the node at `segs` of a Secret: secret nodes become
/// `{"redacted": true, "bytes": N}`.
pub fn redact_json(segs: &[Seg], value: &Value) -> Value {
    let mut segs = segs.to_vec();
    walk(
        value,
        &mut segs,
        &mut |_, v, enc| json!({"redacted": true, "bytes": size(v, enc).0}),
    )
}

/// The text-output form of a whole Secret: secret nodes become `(redacted, N bytes)`. With
/// `other` (the old side, when rendering the new one), a node whose value differs from the
/// other side's gets `, changed`, so that a same-size change still shows as a changed line.
pub fn redact_text(value: &Value, other: Option<&Value>) -> Value {
    walk(value, &mut Vec::new(), &mut |segs, v, enc| {
        let (bytes, valid) = size(v, enc);
        let unit = if bytes == 1 { "byte" } else { "bytes" };
        let mut text = format!("(redacted, {bytes} {unit}");
        if !valid {
            text.push_str(", not valid base64");
        }
        let before = other.and_then(|o| lookup(o, segs));
        if before.is_some_and(|b| b != v) {
            text.push_str(", changed");
        }
        text.push(')');
        Value::String(text)
    })
}

fn lookup<'a>(value: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    segs.iter().try_fold(value, |v, seg| match (v, seg) {
        (Value::Object(m), Seg::Key(k)) => m.get(k),
        (Value::Array(a), Seg::Index(i)) => a.get(*i),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "s3cr3t-canary";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn text_hides_values_and_marks_changes() {
        let old = json!({"kind": "Secret", "data": {"a": b64(CANARY), "b": b64("same")}, "stringData": {"user-x": CANARY}});
        let new = json!({"kind": "Secret", "data": {"a": b64("s3cr3t-canarY"), "b": b64("same"), "c": "!!"}});
        let shown = redact_text(&new, Some(&old)).to_string();
        assert!(
            !shown.contains(CANARY) && !shown.contains(&b64(CANARY)),
            "{shown}"
        );
        assert!(
            shown.contains("\"a\":\"(redacted, 13 bytes, changed)\""),
            "{shown}"
        );
        assert!(shown.contains("\"b\":\"(redacted, 4 bytes)\""), "{shown}");
        assert!(
            shown.contains("\"c\":\"(redacted, 2 bytes, not valid base64)\""),
            "{shown}"
        );
        let old_shown = redact_text(&old, None).to_string();
        assert!(
            old_shown.contains("\"user-x\":\"(redacted, 13 bytes)\""),
            "{old_shown}"
        );
    }

    #[test]
    fn json_redacts_whole_subtrees() {
        let data = json!({"a": b64(CANARY)});
        assert_eq!(
            redact_json(&[Seg::Key("data".into())], &data),
            json!({"a": {"redacted": true, "bytes": 13}})
        );
        let leaf = redact_json(
            &[Seg::Key("stringData".into()), Seg::Key("k".into())],
            &json!(CANARY),
        );
        assert_eq!(leaf, json!({"redacted": true, "bytes": 13}));
        let meta =
            json!({"annotations": {LAST_APPLIED: format!("{{\"data\":\"{CANARY}\"}}"), "x": "y"}});
        let shown = redact_json(&[Seg::Key("metadata".into())], &meta);
        assert!(!shown.to_string().contains(CANARY));
        assert_eq!(shown["annotations"]["x"], json!("y"));
        assert_eq!(
            redact_json(&[Seg::Key("type".into())], &json!("Opaque")),
            json!("Opaque")
        );
    }
}
