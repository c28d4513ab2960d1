//! The normalised text of one resource that unified diffs are taken over.
//!
//! YAML-shaped (block style, two-space indent, `- ` items) rather than pretty JSON because:
//! - multi-line strings (the chart's config files in ConfigMaps, scripts in args) are written as
//!   `|` block scalars, so a one-line change in a config file is a one-line diff, where JSON
//!   would show one huge escaped line;
//! - there are no trailing commas, so adding a key does not also "change" its neighbour;
//! - it reads like the renders people already know.
//!
//! Map keys are sorted (byte order; `name` first in sequence items, where it identifies the
//! item), so re-ordered maps render identically. Sequences keep their order: it is significant.
//! Scalars are written so that types stay visible: any string a YAML reader could take for
//! something else (`"1"`, `"true"`, `"0440"`, `"yes"`) or that has special characters is
//! double-quoted in JSON syntax. The text is for reading only; it is never parsed back.

use serde_json::{Map, Value};

use super::path::{self, Seg};

/// No node: the document itself.
const ROOT: usize = usize::MAX;

/// The rendered text and, for every line, the path of the value it shows. Paths are kept as a
/// tree of nodes (one per map entry or sequence item) that lines point into, so rendering
/// allocates one segment per node instead of a whole path per line.
pub struct Rendered {
    pub text: String,
    /// Per line: the node it shows.
    lines: Vec<usize>,
    /// Per node: its parent and the step from the parent.
    nodes: Vec<(usize, Seg)>,
}

impl Rendered {
    pub fn empty() -> Rendered {
        Rendered {
            text: String::new(),
            lines: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// How many lines the text has.
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// The path of line `index`.
    pub fn path_of(&self, index: usize) -> Vec<Seg> {
        let mut segs = Vec::new();
        let mut node = self.lines.get(index).copied().unwrap_or(ROOT);
        while let Some((parent, seg)) = self.nodes.get(node) {
            segs.push(seg.clone());
            node = *parent;
        }
        segs.reverse();
        segs
    }

    /// The dotted path of line `index`, for hunk headers.
    pub fn line_path(&self, index: usize) -> String {
        path::display(&self.path_of(index))
    }
}

/// Renders `value` (normally a resource mapping).
pub fn render(value: &Value) -> Rendered {
    let mut r = Renderer {
        out: Rendered::empty(),
        current: ROOT,
    };
    match value {
        Value::Object(map) if !map.is_empty() => r.map(map, 0, false),
        other => {
            let scalar = inline(other).unwrap_or_default();
            r.line(scalar);
        }
    }
    r.out
}

struct Renderer {
    out: Rendered,
    current: usize,
}

impl Renderer {
    fn line(&mut self, content: String) {
        self.out.text.push_str(&content);
        self.out.text.push('\n');
        self.out.lines.push(self.current);
    }

    fn enter(&mut self, seg: Seg) {
        self.out.nodes.push((self.current, seg));
        self.current = self.out.nodes.len() - 1;
    }

    fn leave(&mut self) {
        self.current = self
            .out
            .nodes
            .get(self.current)
            .map(|(parent, _)| *parent)
            .unwrap_or(ROOT);
    }

    /// Writes a map's entries at `indent`. With `dash` set, the first line starts with the
    /// `- ` of the sequence item the map is (at `indent - 2`).
    fn map(&mut self, map: &Map<String, Value>, indent: usize, dash: bool) {
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by(|a, b| {
            let rank = |k: &str| !(dash && k == "name");
            (rank(a), a.as_str()).cmp(&(rank(b), b.as_str()))
        });
        for (i, key) in keys.into_iter().enumerate() {
            let prefix = if dash && i == 0 {
                format!("{}- ", " ".repeat(indent - 2))
            } else {
                " ".repeat(indent)
            };
            self.enter(Seg::Key(key.clone()));
            let value = &map[key.as_str()];
            self.entry(&format!("{prefix}{}:", scalar_text(key)), value, indent);
            self.leave();
        }
    }

    /// Writes `head` (a `key:` or `-`) followed by `value`, inline when it is a scalar or empty.
    fn entry(&mut self, head: &str, value: &Value, indent: usize) {
        if let Some(inline) = inline(value) {
            self.line(format!("{head} {inline}"));
            return;
        }
        match value {
            Value::String(s) => {
                let body = s.strip_suffix('\n').unwrap_or(s);
                let chomp = if !s.ends_with('\n') {
                    "-"
                } else if body.ends_with('\n') || body.is_empty() {
                    "+"
                } else {
                    ""
                };
                self.line(format!("{head} |{chomp}"));
                for l in body.split('\n') {
                    if l.is_empty() {
                        self.line(String::new());
                    } else {
                        self.line(format!("{}{l}", " ".repeat(indent + 2)));
                    }
                }
            }
            Value::Object(map) => {
                self.line(head.to_string());
                self.map(map, indent + 2, false);
            }
            Value::Array(items) => {
                self.line(head.to_string());
                // Items of a map entry's sequence sit at the key's indent (kubectl style);
                // nested sequences are indented.
                let item_indent = if head.trim_start() == "-" {
                    indent + 2
                } else {
                    indent
                };
                self.items(items, item_indent);
            }
            _ => {}
        }
    }

    /// Writes sequence items with their `- ` at `indent`.
    fn items(&mut self, items: &[Value], indent: usize) {
        for (i, item) in items.iter().enumerate() {
            self.enter(Seg::Index(i));
            match item {
                Value::Object(map) if !map.is_empty() => self.map(map, indent + 2, true),
                other => self.entry(&format!("{}-", " ".repeat(indent)), other, indent),
            }
            self.leave();
        }
    }
}

/// The one-line form of a scalar or empty collection; `None` for what needs lines of its own.
fn inline(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("null".to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if is_block(s) => None,
        Value::String(s) => Some(scalar_text(s)),
        Value::Object(m) if m.is_empty() => Some("{}".to_string()),
        Value::Array(a) if a.is_empty() => Some("[]".to_string()),
        _ => None,
    }
}

/// Multi-line text without characters a block scalar cannot show.
fn is_block(s: &str) -> bool {
    s.contains('\n') && !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// A string as a plain scalar when no reader could mistake it, else double-quoted (JSON escapes).
pub fn scalar_text(s: &str) -> String {
    if is_plain(s) {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.trim() != s || s.chars().any(|c| c.is_control()) {
        return false;
    }
    let second = s.chars().nth(1);
    let starts_badly = match first {
        '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@'
        | '`' | ',' => true,
        '?' | ':' => second.is_none_or(|c| c == ' '),
        c if c.is_ascii_digit() => true,
        // Anything a reader could take for a number: `-1`, `+5`, `.5`, `-.5`.
        '+' | '-' | '.' => {
            let unsigned = s.trim_start_matches(['+', '-']);
            unsigned.starts_with(|c: char| c.is_ascii_digit())
                || unsigned
                    .strip_prefix('.')
                    .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
                || s == "."
                || (first != '.' && second.is_none_or(|c| c == ' '))
        }
        _ => false,
    };
    if starts_badly || s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    // Words YAML 1.1 or 1.2 readers turn into booleans, null or special floats.
    const SPECIAL: &[&str] = &[
        "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n", ".inf", "-.inf", "+.inf",
        ".nan",
    ];
    !SPECIAL.iter().any(|w| w.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_blocky_and_typed() {
        let v = json!({
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "c", "labels": {"b": "2", "a": "x"}},
            "data": {"config.yaml": "a: 1\nb: 2\n", "mode": "0440", "flag": "yes", "n": 5, "e": {}, "t": "-step"},
            "spec": {"containers": [{"image": "i", "name": "main", "args": ["run", "1"]}], "nested": [[1, 2]]}
        });
        let r = render(&v);
        let expected = "\
apiVersion: v1
data:
  config.yaml: |
    a: 1
    b: 2
  e: {}
  flag: \"yes\"
  mode: \"0440\"
  \"n\": 5
  t: -step
kind: ConfigMap
metadata:
  labels:
    a: x
    b: \"2\"
  name: c
spec:
  containers:
  - name: main
    args:
    - run
    - \"1\"
    image: i
  nested:
  -
    - 1
    - 2
";
        assert_eq!(r.text, expected);
        assert_eq!(r.line_count(), r.text.lines().count());
        assert_eq!(r.path_of(0), [Seg::Key("apiVersion".into())]);
        assert_eq!(r.line_path(3), "data[\"config.yaml\"]");
        assert_eq!(r.line_path(21), "spec.containers[0].args[1]");
    }

    #[test]
    fn reordered_maps_render_the_same() {
        let a = json!({"a": 1, "b": {"x": 1, "y": 2}});
        let b = json!({"b": {"y": 2, "x": 1}, "a": 1});
        assert_eq!(render(&a).text, render(&b).text);
    }

    #[test]
    fn chomping_is_visible() {
        assert_eq!(render(&json!({"s": "a\nb"})).text, "s: |-\n  a\n  b\n");
        assert_eq!(render(&json!({"s": "a\n\n"})).text, "s: |+\n  a\n\n");
        assert_eq!(render(&json!({"s": "a\r\nb"})).text, "s: \"a\\r\\nb\"\n");
        for quoted in ["-1", "+5", ".5", "-.5", "-", "1e3", "0x1F", "True", "~", ""] {
            assert_eq!(scalar_text(quoted), format!("{quoted:?}"));
        }
        for plain in [
            "-step",
            "v1",
            "pre-install,pre-upgrade",
            "a.b/c",
            "--flag=1",
        ] {
            assert_eq!(scalar_text(plain), plain);
        }
        for quoted in ["-1", "+5", ".5", "-.5", "-", "1e3", "0x1F", "True", "~", ""] {
            assert_eq!(scalar_text(quoted), format!("{quoted:?}"));
        }
        for plain in [
            "-step",
            "v1",
            "pre-install,pre-upgrade",
            "a.b/c",
            "--flag=1",
        ] {
            assert_eq!(scalar_text(plain), plain);
        }
    }
}
