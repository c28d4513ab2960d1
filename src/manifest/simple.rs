//! A reader for the simplest YAML there is — nested block mappings of one-line scalars — that
//! gives exactly what [`super::yaml::parse_document`] gives, or `None` so the caller uses it.
//!
//! **Why.** The skeletons the guard reads on the fast path (see [`super::skeleton`]) are a
//! document's `metadata`: labels and annotations, short keys and short values. libyaml, driven
//! through serde into a `serde_json::Value`, reads such text at only ~8–12 MB/s on the benchmark
//! machine (its cost is per token, and metadata is nothing but small tokens), which made the
//! skeleton parses (model, and edit verification) the largest cost left in post-render. This
//! reader handles that shape at several hundred MB/s.
//!
//! **Why it is exact.** It accepts only: ASCII text without control characters and with no more
//! `[`/`{` than the full parse's nesting guard allows (see `readable`); content lines
//! that are `key: value` or `key:` (a nested mapping on the more indented lines that follow, or
//! null), at consistent indentation; keys that are plain (a letter or digit, then letters,
//! digits, `_`, `.`, `/`, `-`; resolved like any plain scalar, as `KeySeed` does) or quoted
//! without escapes; values that are one-line plain scalars not starting with an indicator and
//! holding no `: `, or one-line quoted scalars without escapes; comments and
//! blank lines. Anything else (sequences, flow collections, block scalars, anchors, aliases, tags,
//! multi-line scalars, escapes, tabs, non-ASCII, mappings nested deeper than
//! [`super::yaml::MAX_FAST_DEPTH`]) returns `None`. Plain scalars are resolved with
//! the same rules as yaml_serde 0.10's `visit_untagged_scalar` (null, bool, int in base
//! 10/16/8/2 with sign rules, "leading zero means string", finite floats, `.inf`/`.nan`), keys
//! are turned into strings as [`super::yaml`]'s `KeySeed` does, values into JSON as its
//! `ValueSeed` does, duplicate keys keep the last value and are reported with the same paths in
//! the same order. Tests compare both readers on generated documents and on every real render.

use std::borrow::Cow;
use std::num::ParseIntError;

use serde_json::{Map, Number, Value};

use super::yaml::Parsed;

/// A plain scalar, resolved as yaml_serde resolves untagged plain scalars.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scalar {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    U128(u128),
    I128(i128),
    F64(f64),
    Str,
}

fn parse_null(v: &str) -> bool {
    matches!(v, "null" | "Null" | "NULL" | "~")
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn digits_but_not_number(scalar: &str) -> bool {
    let scalar = scalar.strip_prefix(['-', '+']).unwrap_or(scalar);
    scalar.len() > 1 && scalar.starts_with('0') && scalar[1..].bytes().all(|b| b.is_ascii_digit())
}

fn parse_unsigned_int<T>(
    scalar: &str,
    from_str_radix: fn(&str, u32) -> Result<T, ParseIntError>,
) -> Option<T> {
    let unpositive = scalar.strip_prefix('+').unwrap_or(scalar);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(int) = from_str_radix(rest, radix) {
                return Some(int);
            }
        }
    }
    if unpositive.starts_with(['+', '-']) {
        return None;
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

fn parse_negative_int<T>(
    scalar: &str,
    from_str_radix: fn(&str, u32) -> Result<T, ParseIntError>,
) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = scalar.strip_prefix(prefix) {
            if let Ok(int) = from_str_radix(&format!("-{rest}"), radix) {
                return Some(int);
            }
        }
    }
    if digits_but_not_number(scalar) {
        return None;
    }
    from_str_radix(scalar, 10).ok()
}

fn parse_f64(scalar: &str) -> Option<f64> {
    let unpositive = if let Some(unpositive) = scalar.strip_prefix('+') {
        if unpositive.starts_with(['+', '-']) {
            return None;
        }
        unpositive
    } else {
        scalar
    };
    if let ".inf" | ".Inf" | ".INF" = unpositive {
        return Some(f64::INFINITY);
    }
    if let "-.inf" | "-.Inf" | "-.INF" = scalar {
        return Some(f64::NEG_INFINITY);
    }
    if let ".nan" | ".NaN" | ".NAN" = scalar {
        return Some(f64::NAN.copysign(1.0));
    }
    unpositive.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn resolve(v: &str) -> Scalar {
    if v.is_empty() || parse_null(v) {
        return Scalar::Null;
    }
    if let Some(b) = parse_bool(v) {
        return Scalar::Bool(b);
    }
    // Fast exit for the common case: a scalar starting with a letter that is not a keyword is a
    // string (no integer or finite float starts with a letter; `inf`/`nan` are not finite).
    if v.as_bytes()[0].is_ascii_alphabetic() {
        return Scalar::Str;
    }
    if let Some(i) = parse_unsigned_int(v, u64::from_str_radix) {
        return Scalar::U64(i);
    }
    if let Some(i) = parse_negative_int(v, i64::from_str_radix) {
        return Scalar::I64(i);
    }
    if let Some(i) = parse_unsigned_int(v, u128::from_str_radix) {
        return Scalar::U128(i);
    }
    if let Some(i) = parse_negative_int(v, i128::from_str_radix) {
        return Scalar::I128(i);
    }
    if !digits_but_not_number(v) {
        if let Some(f) = parse_f64(v) {
            return Scalar::F64(f);
        }
    }
    Scalar::Str
}

/// As `ValueSeed` turns the scalar into JSON.
fn to_value(v: &str, s: Scalar) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::U64(i) => Value::Number(i.into()),
        Scalar::I64(i) => Value::Number(i.into()),
        Scalar::U128(i) => Number::from_f64(i as f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Scalar::I128(i) => Number::from_f64(i as f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Scalar::F64(f) => Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        Scalar::Str => Value::String(v.to_string()),
    }
}

/// As `KeySeed` turns the scalar into a key.
fn to_key(v: &str, s: Scalar) -> String {
    match s {
        Scalar::Null => "null".to_string(),
        Scalar::Bool(b) => b.to_string(),
        Scalar::U64(i) => i.to_string(),
        Scalar::I64(i) => i.to_string(),
        Scalar::U128(i) => i.to_string(),
        Scalar::I128(i) => i.to_string(),
        Scalar::F64(f) => f.to_string(),
        Scalar::Str => v.to_string(),
    }
}

/// A quoted scalar at the start of `s` (which starts with the quote): its content and the rest
/// of the line after the closing quote. `None` for escapes, `''` or a missing closing quote.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let q = s.as_bytes()[0];
    let close = memchr::memchr(q, &s.as_bytes()[1..])? + 1;
    let content = &s[1..close];
    if q == b'"' && content.contains('\\') {
        return None;
    }
    let rest = &s[close + 1..];
    if q == b'\'' && rest.starts_with('\'') {
        return None;
    }
    Some((content, rest))
}

/// Whether what follows a scalar on its line is nothing, or blanks and a comment.
fn only_comment(rest: &str) -> bool {
    let trimmed = rest.trim_start_matches(' ');
    trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())
}

/// A key at the start of a content line, and the text after its `:`.
pub(super) fn key(line: &str) -> Option<(Cow<'_, str>, &str)> {
    let b = line.as_bytes();
    let (text, after) = match *b.first()? {
        b'"' | b'\'' => {
            let (content, rest) = quoted(line)?;
            (Cow::Borrowed(content), rest)
        }
        c if c.is_ascii_alphanumeric() => {
            let end = b
                .iter()
                .position(|c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'-'))
                })
                .unwrap_or(b.len());
            let k = &line[..end];
            let key = match resolve(k) {
                Scalar::Str => Cow::Borrowed(k),
                other => Cow::Owned(to_key(k, other)),
            };
            (key, &line[end..])
        }
        _ => return None,
    };
    let after = after.strip_prefix(':')?;
    if !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    Some((text, after))
}

/// A value written after `key:` on the same line.
pub(super) enum Inline<'a> {
    /// None: a nested mapping or null follows.
    Nothing,
    Str(&'a str),
    Other(Value),
}

impl Inline<'_> {
    fn into_value(self) -> Option<Value> {
        match self {
            Inline::Nothing => None,
            Inline::Str(s) => Some(Value::String(s.to_string())),
            Inline::Other(v) => Some(v),
        }
    }

    /// Compares with a model value without building one.
    fn equals(&self, v: &Value) -> bool {
        match self {
            Inline::Nothing => v.is_null(),
            Inline::Str(s) => v.as_str() == Some(s),
            Inline::Other(o) => o == v,
        }
    }
}

/// The value after `key:`; `None` when it is outside the subset.
pub(super) fn inline_value(after: &str) -> Option<Inline<'_>> {
    let v = after.trim_start_matches(' ');
    let Some(&first) = v.as_bytes().first() else {
        return Some(Inline::Nothing);
    };
    match first {
        b'#' => Some(Inline::Nothing),
        b'"' | b'\'' => {
            let (content, rest) = quoted(v)?;
            only_comment(rest).then_some(Inline::Str(content))
        }
        // `-` followed by anything but a space starts a plain scalar (`-output`, `--no-x`,
        // `-1`); a lone `-` or `- ` would be a sequence entry, outside the subset.
        b'-' if v.as_bytes().get(1).is_some_and(|b| *b != b' ') => plain_value(v),
        b'-' | b'?' | b':' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|'
        | b'>' | b'%' | b'@' | b'`' => None,
        _ => plain_value(v),
    }
}

/// A one-line plain scalar (starting at `v`), resolved.
fn plain_value(v: &str) -> Option<Inline<'_>> {
    // One pass for both the comment start (` #`) and a mapping indicator (`: `); short values
    // do not pay for setting up two substring searches.
    let b = v.as_bytes();
    let mut end = b.len();
    for i in 0..b.len().saturating_sub(1) {
        match (b[i], b[i + 1]) {
            (b' ', b'#') => {
                end = i;
                break;
            }
            (b':', b' ') => return None,
            _ => {}
        }
    }
    let v = v[..end].trim_end_matches(' ');
    if v.ends_with(':') {
        return None;
    }
    Some(match resolve(v) {
        Scalar::Str => Inline::Str(v),
        other => Inline::Other(to_value(v, other)),
    })
}

/// The content lines of a text given as slices (a slice that does not end with a line break
/// ends a line all the same): indentation and the text after it. Blank and comment lines are
/// skipped. One line of look-ahead, no buffer.
struct Lines<'a> {
    parts: &'a [&'a str],
    part: usize,
    pos: usize,
    peeked: Option<(usize, &'a str)>,
}

impl<'a> Lines<'a> {
    fn read(&mut self) -> Option<(usize, &'a str)> {
        while let Some(part) = self.parts.get(self.part) {
            let bytes = part.as_bytes();
            if self.pos >= bytes.len() {
                self.part += 1;
                self.pos = 0;
                continue;
            }
            let end =
                memchr::memchr(b'\n', &bytes[self.pos..]).map_or(bytes.len(), |i| self.pos + i);
            let line = &part[self.pos..end];
            self.pos = end + 1;
            let indent = line.bytes().take_while(|b| *b == b' ').count();
            let rest = &line[indent..];
            if !(rest.is_empty() || rest.starts_with('#')) {
                return Some((indent, rest));
            }
        }
        None
    }

    fn peek(&mut self) -> Option<(usize, &'a str)> {
        if self.peeked.is_none() {
            self.peeked = self.read();
        }
        self.peeked
    }

    fn next(&mut self) -> Option<(usize, &'a str)> {
        self.peek();
        self.peeked.take()
    }
}

struct Reader<'a> {
    lines: Lines<'a>,
    path: String,
    dups: Vec<String>,
    /// Mappings open around the current line.
    depth: super::yaml::FastDepth,
}

impl Reader<'_> {
    /// A mapping one level deeper; declines past [`super::yaml::MAX_FAST_DEPTH`], which the
    /// parser's own recursion limit is well above.
    fn mapping(&mut self, indent: usize) -> Option<Map<String, Value>> {
        self.depth.enter()?;
        let map = self.mapping_entries(indent);
        self.depth.leave();
        map
    }

    fn mapping_entries(&mut self, indent: usize) -> Option<Map<String, Value>> {
        let mut map = Map::new();
        while let Some((ind, line)) = self.lines.peek() {
            if ind < indent {
                break;
            }
            if ind > indent {
                return None;
            }
            self.lines.next();
            let (k, after) = key(line)?;
            let k = k.into_owned();
            let len = self.path.len();
            if len > 0 {
                self.path.push('.');
            }
            self.path.push_str(&k);
            let next_deeper = self.lines.peek().map(|(i, _)| i).filter(|i| *i > indent);
            let value = match (inline_value(after)?.into_value(), next_deeper) {
                (Some(_), Some(_)) => return None,
                (Some(v), None) => v,
                (None, Some(child)) => Value::Object(self.mapping(child)?),
                (None, None) => Value::Null,
            };
            if map.insert(k, value).is_some() {
                self.dups.push(self.path.clone());
            }
            self.path.truncate(len);
        }
        Some(map)
    }
}

impl<'a> Lines<'a> {
    /// Whether the mapping at `indent` equals the mapping with `len` keys that `lookup`
    /// describes, read without building values. `None` when the text is outside the subset or
    /// a key repeats (the caller then reads it the ordinary way).
    fn mapping_equals<'v>(
        &mut self,
        indent: usize,
        lookup: &dyn Fn(&str) -> Option<&'v Value>,
        len: usize,
    ) -> Option<bool> {
        let mut seen: Vec<Cow<'a, str>> = Vec::new();
        while let Some((ind, line)) = self.peek() {
            if ind < indent {
                break;
            }
            if ind > indent {
                return None;
            }
            self.next();
            let (k, after) = key(line)?;
            if seen.contains(&k) {
                return None;
            }
            let expected = lookup(&k);
            let inline = inline_value(after)?;
            let next_deeper = self.peek().map(|(i, _)| i).filter(|i| *i > indent);
            let equal = match (inline, next_deeper) {
                (Inline::Nothing, Some(child)) => match expected {
                    Some(Value::Object(m)) => self.mapping_equals(child, &|k| m.get(k), m.len())?,
                    _ => false,
                },
                (_, Some(_)) => return None,
                (inline, None) => expected.is_some_and(|v| inline.equals(v)),
            };
            if !equal {
                return Some(false);
            }
            seen.push(k);
        }
        Some(seen.len() == len)
    }
}

/// Whether `text`, a block mapping in the subset, reads as the mapping with `len` keys whose
/// values `lookup` gives (as [`parse`] would read it, compared with `==`), without building its
/// values. `None` when the text is outside the subset or repeats a key. Used to verify edits.
pub fn mapping_equals<'v>(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<&'v Value>,
    len: usize,
) -> Option<bool> {
    let parts = [text];
    if !readable(&parts) {
        return None;
    }
    let mut lines = Lines {
        parts: &parts,
        part: 0,
        pos: 0,
        peeked: None,
    };
    let root = lines.peek()?.0;
    let equal = lines.mapping_equals(root, lookup, len)?;
    if lines.next().is_some() {
        return None;
    }
    Some(equal)
}

/// Whether the fast readers may read `parts` (one text, given as consecutive slices) at all:
/// ASCII without control characters other than `\n`, and no more `[`/`{` in total than
/// [`super::yaml::MAX_FLOW_DEPTH`].
///
/// The bracket budget is not about YAML: the full parse refuses a document whose brackets,
/// counted naively (in strings too), nest deeper than that limit, a guard against libyaml's
/// quadratic scanner with a known false positive (`yaml::excessive_flow_nesting`). A fast reader
/// must not accept what the full parse refuses, or `post-render` and `check` would judge the
/// same document differently (the `subset` fuzz target found a quoted label holding 129 `[`).
/// Below the budget the guard cannot fire; above it the document goes to the full parse.
///
/// Checked in blocks without an early exit per byte, which the compiler vectorises (it was the
/// largest single cost of checking documents before).
pub(super) fn readable(parts: &[&str]) -> bool {
    let mut openers = 0usize;
    for part in parts {
        for block in part.as_bytes().chunks(64) {
            // Two simple folds over the same 64 bytes; with the checker that calls this they
            // are ~1 % of post-render's CPU on the 100 MB benchmark stream (perf).
            let odd = block.iter().fold(false, |odd, &b| {
                odd | ((b < 0x20) & (b != b'\n')) | (b >= 0x7f)
            });
            if odd {
                return false;
            }
            openers += block
                .iter()
                .fold(0u8, |n, &b| n + u8::from((b == b'[') | (b == b'{')))
                as usize;
        }
    }
    openers <= super::yaml::MAX_FLOW_DEPTH
}

/// Reads `text` when it is in the subset described in the module docs.
pub fn parse(text: &str) -> Option<Parsed> {
    parse_parts(&[text])
}

/// [`parse`] for a text given as consecutive slices, each ending a line (a document's skeleton,
/// see [`super::skeleton::Skeleton::parts`]), without joining them.
pub fn parse_parts(parts: &[&str]) -> Option<Parsed> {
    if !readable(parts) {
        return None;
    }
    let mut lines = Lines {
        parts,
        part: 0,
        pos: 0,
        peeked: None,
    };
    let root = lines.peek()?.0;
    let mut reader = Reader {
        lines,
        path: String::new(),
        dups: Vec::new(),
        depth: Default::default(),
    };
    let map = reader.mapping(root)?;
    if reader.lines.next().is_some() {
        return None;
    }
    Some(Parsed {
        value: Value::Object(map),
        duplicate_keys: reader.dups,
    })
}

/// [`super::yaml::parse_document`], through [`parse`] when the text is in its subset.
pub fn parse_document(text: &str) -> Result<Parsed, super::yaml::YamlError> {
    match parse(text) {
        Some(parsed) => Ok(parsed),
        None => super::yaml::parse_document(text),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(text: &str) {
        let lib = super::super::yaml::parse_document(text);
        if let Some(fast) = parse(text) {
            let lib = lib.unwrap_or_else(|e| {
                panic!("libyaml rejects what the simple reader took: {e}\n{text}")
            });
            assert_eq!(fast.value, lib.value, "value of\n{text}");
            assert_eq!(
                fast.duplicate_keys, lib.duplicate_keys,
                "duplicates of\n{text}"
            );
        }
    }

    #[test]
    fn metadata_shapes() {
        let text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  labels:\n    helm.sh/chart: \"matrix-stack-26.8.2-dev\"\n    app.kubernetes.io/version: \"v1.159.0\"\n    k8s.element.io/postgres-password-synapse-hash: dbd8665cfb39383754f02ce18502f9979ad8a74d\n  name: ess-synapse-pusher\n  annotations:\n    \"helm.sh/hook-weight\": \"-10\"\n    postrenderer.helm.sh/postrender-filename: 'matrix-stack/templates/synapse/synapse_statefulset.yaml'\n# comment\n\nspec:\n  replicas: 2 # two\n";
        let parsed = parse(text).expect("in the subset");
        assert_eq!(parsed.value["spec"]["replicas"], 2);
        assert_eq!(
            parsed.value["metadata"]["annotations"]["helm.sh/hook-weight"],
            "-10"
        );
        same(text);
    }

    #[test]
    fn scalars_resolve_like_yaml_serde() {
        for v in [
            "0440",
            "440",
            "-1",
            "+1",
            "0x1F",
            "-0x1F",
            "0o17",
            "0b101",
            "1e5",
            "1.5",
            ".5",
            "1.",
            "-.inf",
            ".NaN",
            ".inf",
            "+.inf",
            "inf",
            "nan",
            "NaN",
            "Infinity",
            "true",
            "True",
            "TRUE",
            "tRUE",
            "yes",
            "no",
            "on",
            "off",
            "y",
            "n",
            "~",
            "null",
            "Null",
            "NULL",
            "nULL",
            "123456789012345678901234567890",
            "-123456789012345678901234567890",
            "0f710c6d",
            "4b5363bd58",
            "1e",
            "1_000",
            "+-1",
            "--1",
            "0x",
            "-0",
            "+0",
            "00",
            "0",
            "1:2",
            "a#b",
            "http://x:80/y",
            "a, b",
            "[x",
            "x]",
        ] {
            same(&format!("k: {v}\n"));
            same(&format!("{v}: k\n"));
            same(&format!("k: {v} # c\n"));
        }
    }

    #[test]
    fn refuses_outside_the_subset() {
        for text in [
            "a:\n- b\n",
            "a: [b]\n",
            "a: {b: c}\n",
            "a: |\n  b\n",
            "a: &x b\n",
            "a: *x\n",
            "a: !t b\n",
            "a: \"b\\\"c\"\n",
            "a: 'it''s'\n",
            "a: b\n  c\n",
            "a:\tb\n",
            "a: é\n",
            "a: b: c\n",
            "a: b:\n",
            "a:\n  b\n",
            "--- a\n",
            "? a\n: b\n",
            "a :b\n",
            "\"a\" : b\n",
            "a: \"b\n",
            "  a: 1\nb: 2\n",
            "a:\n    b: 1\n  c: 2\n",
            "a: b\r\n",
        ] {
            assert!(parse(text).is_none(), "took {text:?}");
            same(text);
        }
    }

    #[test]
    fn leaves_documents_over_the_bracket_budget_to_the_full_parse() {
        // 128 `[` in a quoted value are read; 129 are declined, because the full parse's
        // nesting guard refuses them (found by the `subset` fuzz target).
        let quoted = |key: &str, c: &str, n: usize| format!("{key}: \"{}\"\n", c.repeat(n));
        assert!(parse(&quoted("a", "[", 128)).is_some());
        assert!(parse(&quoted("a", "[", 129)).is_none());
        assert!(crate::manifest::yaml::parse_document(&quoted("a", "[", 129)).is_err());
        // Counted over every part of a skeleton, `{` as well as `[`.
        let (a, b) = (quoted("a", "[", 64), quoted("b", "{", 65));
        assert!(parse_parts(&[&a, &b]).is_none());
        assert!(parse_parts(&[&a, &quoted("b", "{", 64)]).is_some());
    }

    /// `n` mappings nested in one another, the innermost holding `x: 1`.
    pub(crate) fn nested(n: usize) -> String {
        (0..n)
            .map(|k| {
                let key = if k + 1 == n { "x: 1" } else { "a:" };
                format!("{}{key}\n", "  ".repeat(k))
            })
            .collect()
    }

    #[test]
    fn leaves_deep_nesting_to_the_full_parse() {
        let max = crate::manifest::yaml::MAX_FAST_DEPTH;
        assert!(parse(&nested(max)).is_some());
        assert!(parse(&nested(max + 1)).is_none());
        // The parser refuses nesting well past the limit: the reason for it.
        assert!(crate::manifest::yaml::parse_document(&nested(200)).is_err());
        assert!(parse(&nested(200)).is_none());
    }

    #[test]
    fn duplicates_and_nulls() {
        same("a:\n  b: 1\n  b: 2\na:\nc: ~\nd: # nothing\n  e: f\n");
        let p = parse("a:\n  b: 1\n  b:\n    c: 1\n    c: 2\n").expect("subset");
        assert_eq!(p.duplicate_keys, vec!["a.b.c", "a.b"]);
    }

    #[test]
    fn every_real_render_document_that_it_takes_reads_the_same() {
        let Some(bodies) = crate::manifest::real_render_bodies() else {
            return;
        };
        let mut taken = 0;
        for body in &bodies {
            same(body);
            if let Some(cut) = super::super::skeleton::skeleton(body) {
                let text = cut.text(body);
                same(&text);
                assert_eq!(parse_parts(&cut.parts(body)), parse(&text), "{text}");
                taken += usize::from(parse(&text).is_some());
            }
        }
        assert!(taken > 0);
    }

    /// `mapping_equals` agrees with reading the text and comparing.
    fn equals_like_parse(text: &str, expected: &Value) {
        let Some(map) = expected.as_object() else {
            return;
        };
        if let Some(equal) = mapping_equals(text, &|k| map.get(k), map.len()) {
            let parsed = parse(text).expect("mapping_equals took it, so parse must");
            assert_eq!(equal, &parsed.value == expected, "{text}");
            assert!(parsed.duplicate_keys.is_empty(), "{text}");
        }
    }

    #[test]
    fn compares_without_building() {
        let text = "labels:\n  a: b\n  n: 1\n  q: \"x\"\nname: s\nannotations:\n";
        let value = parse(text).expect("subset").value;
        equals_like_parse(text, &value);
        let mut other = value.clone();
        other["labels"]["n"] = Value::String("1".into());
        equals_like_parse(text, &other);
        let mut more = value.clone();
        more["extra"] = Value::Null;
        equals_like_parse(text, &more);
        let map = value.as_object().expect("object");
        assert_eq!(mapping_equals(text, &|k| map.get(k), map.len()), Some(true));
        assert_eq!(
            mapping_equals("a: 1\na: 1\n", &|k| map.get(k), 1),
            None,
            "duplicate"
        );
    }

    fn plain_scalar() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-zA-Z0-9.+_/:#~ -]{1,8}").expect("regex")
    }

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            plain_scalar(),
            plain_scalar().prop_map(|s| format!("\"{}\"", s.replace('"', ""))),
            plain_scalar().prop_map(|s| format!("'{}'", s.replace('\'', ""))),
            Just(String::new()),
            Just("# c".to_string()),
        ]
    }

    fn doc() -> impl Strategy<Value = String> {
        let line = (
            0usize..4,
            prop_oneof![plain_scalar(), Just("a".to_string()), Just("b".to_string())],
            scalar(),
            prop::bool::ANY,
        );
        proptest::collection::vec(line, 1..12).prop_map(|lines| {
            let mut out = String::new();
            for (depth, k, v, comment) in lines {
                out.push_str(&"  ".repeat(depth));
                out.push_str(&k);
                out.push(':');
                if !v.is_empty() {
                    out.push(' ');
                    out.push_str(&v);
                }
                out.push('\n');
                if comment {
                    out.push_str("# x\n\n");
                }
            }
            out
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Whatever the simple reader takes, libyaml reads identically.
        #[test]
        fn agrees_with_libyaml(text in doc()) {
            same(&text);
        }

        /// Comparing while reading agrees with reading then comparing, for equal and for
        /// different expectations.
        #[test]
        fn compares_like_parse(text in doc(), other in doc()) {
            if let Some(p) = parse(&text) {
                equals_like_parse(&text, &p.value);
            }
            if let Some(q) = parse(&other) {
                equals_like_parse(&text, &q.value);
            }
        }
    }
}
