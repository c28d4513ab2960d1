//! Writing a value ess-guard built itself as block YAML that every YAML reader (1.1 or 1.2)
//! reads back identically: every string is JSON-quoted, keys are plain only when unambiguous.

use std::fmt::Write as _;

use serde_json::Value;

use crate::manifest::edit::quote;

fn key(k: &str) -> String {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-' | '_'))
        && !matches!(
            k.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null"
        );
    if plain {
        k.to_string()
    } else {
        quote(k)
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Null => "null".into(),
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Object(m) if !m.is_empty()) || matches!(v, Value::Array(a) if !a.is_empty())
}

fn write(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) => {
            for (k, item) in m {
                let _ = write!(out, "{}{}:", " ".repeat(indent), key(k));
                if is_block(item) {
                    out.push('\n');
                    write(out, item, indent + 2);
                } else {
                    let _ = writeln!(out, " {}", scalar(item));
                }
            }
        }
        Value::Array(a) => {
            for item in a {
                let _ = write!(out, "{}-", " ".repeat(indent));
                if is_block(item) {
                    // Write the item at indent + 2 and splice its first line after the dash.
                    let mut inner = String::new();
                    write(&mut inner, item, indent + 2);
                    out.push(' ');
                    out.push_str(&inner[indent + 2..]);
                } else {
                    let _ = writeln!(out, " {}", scalar(item));
                }
            }
        }
        other => {
            let _ = writeln!(out, "{}{}", " ".repeat(indent), scalar(other));
        }
    }
}

/// The document as block YAML.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    write(&mut out, v, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_a_yaml_reader() {
        let v = json!({"a": "yes", "b": "0440", "c": ["on", {"d": "~", "e": [1, 2]}], "y": "1e3", "f": {}, "g": [], "h": true, "i": null});
        let text = to_yaml(&v);
        let back = crate::manifest::yaml::parse_embedded(&text).expect("reads back");
        assert_eq!(back, v, "{text}");
    }
}
