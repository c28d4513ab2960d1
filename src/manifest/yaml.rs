//! Reading one YAML document into a `serde_json::Value`, the way the Kubernetes API will see it.
//!
//! The model is read-only: ess-guard never re-emits a document it parsed (edits are made to the
//! original text, see [`super::edit`]), so YAML 1.1 vs 1.2 differences in scalars cannot leak
//! into the output. Reading into JSON also matches what Helm does (`sigs.k8s.io/yaml` converts to
//! JSON), including its two forgiving habits that a strict reader would turn into crashes:
//! duplicate mapping keys (the real chart renders one, see `syn2mas.annotations`) keep the last
//! value and are reported, and scalar mapping keys are turned into strings.

use std::cell::RefCell;
use std::fmt;
use std::fmt::Write as _;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A parsed document plus the facts a strict reader would have refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub value: Value,
    /// Dotted paths of mapping keys that occurred more than once (the last value wins).
    pub duplicate_keys: Vec<String>,
}

/// Deepest `[`/`{` nesting handed to the YAML parser. The parser refuses nesting deeper than 128
/// anyway, but only after serde_yaml has scanned the whole document, and libyaml's scanner
/// revisits every open flow level on every token: 40 000 `[` took 25 s, a 3 MiB document of
/// them would not finish. Counting first keeps that bounded.
pub const MAX_FLOW_DEPTH: usize = 128;

/// Deepest block nesting (mappings and sequences) the fast readers (`simple`, `validate`) take.
/// The parser gives up at 128 levels ("recursion limit exceeded"); a fast reader must never
/// accept what it refuses, so they stop well short of it and leave deeper documents to it. Real
/// manifests nest about 15 levels.
pub const MAX_FAST_DEPTH: usize = 64;

/// How deep a fast reader is, bounded by [`MAX_FAST_DEPTH`]: the one place both readers check it.
#[derive(Debug, Default)]
pub(super) struct FastDepth(usize);

impl FastDepth {
    /// One level deeper, or `None` (decline the document) past [`MAX_FAST_DEPTH`].
    pub(super) fn enter(&mut self) -> Option<()> {
        (self.0 < MAX_FAST_DEPTH).then(|| self.0 += 1)
    }

    /// Back out of the level [`enter`](FastDepth::enter) opened.
    pub(super) fn leave(&mut self) {
        self.0 -= 1;
    }
}

/// The 1-based line where `text`'s flow nesting first exceeds [`MAX_FLOW_DEPTH`], counted
/// naively: brackets in strings and comments count too, and closers never go below zero. A
/// real document cannot be nested that deep (the parser would refuse it), and a false positive
/// needs more than 128 unclosed brackets inside strings.
pub fn excessive_flow_nesting(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1;
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(line);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'\n' => line += 1,
            _ => {}
        }
    }
    None
}

/// Why a document could not be read.
#[derive(Debug)]
pub enum YamlError {
    Syntax(serde_yaml::Error),
    /// Flow collections nested deeper than [`MAX_FLOW_DEPTH`], at this line.
    TooDeep(usize),
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            YamlError::Syntax(e) => e.fmt(f),
            YamlError::TooDeep(line) => {
                write!(
                    f,
                    "collections nested more than {MAX_FLOW_DEPTH} levels deep at line {line} (counted before parsing: `[` and `{{` inside strings count too)"
                )
            }
        }
    }
}

impl std::error::Error for YamlError {}

impl From<serde_yaml::Error> for YamlError {
    fn from(e: serde_yaml::Error) -> Self {
        YamlError::Syntax(e)
    }
}

/// Parses `text`, which must hold at most one YAML document. Comment-only or empty text gives
/// `Value::Null`.
pub fn parse_document(text: &str) -> Result<Parsed, YamlError> {
    if let Some(line) = excessive_flow_nesting(text) {
        return Err(YamlError::TooDeep(line));
    }
    let ctx = Ctx {
        path: RefCell::new(String::new()),
        dups: RefCell::new(Vec::new()),
    };
    let mut value = Value::Null;
    let mut seen = 0usize;
    for document in serde_yaml::Deserializer::from_str(text) {
        seen += 1;
        ctx.path.borrow_mut().clear();
        let parsed = ValueSeed { ctx: &ctx }.deserialize(document)?;
        // A chunk holds one document by construction; a second one can only come from an
        // explicit end marker (`...`) followed by more text, which Helm never produces. Keep the
        // first non-null one so nothing is silently dropped from the model.
        if seen == 1 || value.is_null() {
            value = parsed;
        }
    }
    Ok(Parsed {
        value,
        duplicate_keys: ctx.dups.into_inner(),
    })
}

/// Parses YAML text that is expected to be a single document, ignoring duplicate keys; for
/// configuration embedded in ConfigMaps and Secrets.
pub fn parse_embedded(text: &str) -> Result<Value, YamlError> {
    parse_document(text).map(|parsed| parsed.value)
}

/// The dotted path of the value being read, kept as one growing string (a segment is pushed
/// before a child is read and popped after), and the duplicate keys found so far.
///
/// Measured effect: the path used to be a new `String` per mapping key and sequence item, built
/// with `format!` whether or not a duplicate was ever found; one shared buffer removed those
/// allocations from the parse of every relevant document (a few percent of post-render CPU on the
/// 10 MB benchmark stream, see BENCHMARKS.md).
struct Ctx {
    path: RefCell<String>,
    dups: RefCell<Vec<String>>,
}

struct ValueSeed<'a> {
    ctx: &'a Ctx,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    // Integers beyond 64 bits are legal YAML; the model keeps them approximately (they are
    // never written back, the original text is).
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Number::from_f64(v as f64)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(Number::from_f64(v as f64)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity; keep them as the strings YAML spells them with.
        Ok(Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(v.to_string())))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        let len = self.ctx.path.borrow().len();
        loop {
            {
                let mut path = self.ctx.path.borrow_mut();
                path.truncate(len);
                let _ = write!(path, "[{}]", items.len());
            }
            match seq.next_element_seed(ValueSeed { ctx: self.ctx })? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        self.ctx.path.borrow_mut().truncate(len);
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        let len = self.ctx.path.borrow().len();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            {
                let mut path = self.ctx.path.borrow_mut();
                path.truncate(len);
                if len > 0 {
                    path.push('.');
                }
                path.push_str(&key);
            }
            let value = map.next_value_seed(ValueSeed { ctx: self.ctx })?;
            if out.insert(key, value).is_some() {
                let path = self.ctx.path.borrow().clone();
                self.ctx.dups.borrow_mut().push(path);
            }
        }
        self.ctx.path.borrow_mut().truncate(len);
        Ok(Value::Object(out))
    }
}

/// Mapping keys become strings, as `sigs.k8s.io/yaml` does for scalar keys.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i128<E>(self, v: i128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u128<E>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
    fn visit_none<E>(self) -> Result<String, E> {
        Ok("null".to_string())
    }
    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        self.deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_keys_keep_last_and_are_reported() {
        let parsed =
            parse_document("metadata:\n  annotations:\n    a: 1\n  annotations:\n    b: 2\n")
                .expect("parses");
        assert_eq!(parsed.value, json!({"metadata": {"annotations": {"b": 2}}}));
        assert_eq!(
            parsed.duplicate_keys,
            vec!["metadata.annotations".to_string()]
        );
        let parsed =
            parse_document("a:\n- b: 1\n- c: {d: 1, d: 2}\n  c: 3\ne: 1\ne: 2\n").expect("parses");
        assert_eq!(parsed.duplicate_keys, vec!["a[1].c.d", "a[1].c", "e"]);
    }

    #[test]
    fn comment_only_is_null() {
        assert_eq!(
            parse_document("# just a comment\n").expect("parses").value,
            Value::Null
        );
        assert_eq!(parse_document("").expect("parses").value, Value::Null);
    }

    #[test]
    fn odd_scalars_do_not_fail() {
        let parsed = parse_document("a: 123456789012345678901234567890\n1: x\ntrue: y\nb: .nan\n")
            .expect("parses");
        assert!(parsed.value["a"].is_number());
        assert_eq!(parsed.value["1"], json!("x"));
        assert_eq!(parsed.value["true"], json!("y"));
        assert_eq!(parsed.value["b"], json!("NaN"));
    }

    #[test]
    fn invalid_yaml_is_an_error() {
        assert!(parse_document("a: [\n").is_err());
        assert!(parse_document("a: 'unterminated\n").is_err());
        assert!(parse_document("a:\n\tb: 1\n").is_err());
    }

    #[test]
    fn deep_flow_nesting_is_refused_before_parsing() {
        let ok = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert!(excessive_flow_nesting(&ok).is_none());
        // Closed brackets do not add up.
        assert!(excessive_flow_nesting(&"[]{}".repeat(10_000)).is_none());
        let deep = format!("a: 1\nb: {}\n", "{a: ".repeat(100_000));
        let err = parse_document(&deep).expect_err("too deep");
        assert_eq!(
            err.to_string(),
            "collections nested more than 128 levels deep at line 2 (counted before parsing: `[` and `{` inside strings count too)"
        );
        // The known false positive, shared by every reader (see `simple::readable`).
        let quoted = format!("a: \"{}\"\n", "[".repeat(129));
        assert_eq!(excessive_flow_nesting(&quoted), Some(1));
    }
}
