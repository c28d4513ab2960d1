//! Helm's values-file semantics: reading values files the way Helm does,
//! merging successive `-f` files (`mergeMaps`), coalescing user values over
//! chart defaults (`chartutil.CoalesceValues`) and the whole
//! `values.Options.MergeValues` pipeline ([`helm_user_values`]).
//!
//! Checked against `helm template` of Helm v3.19.0 and v4.1.4. Where the two
//! differ, the `*_for` functions take a [`HelmVersion`]; the un-suffixed
//! functions follow [`HelmVersion::default()`], which is Helm 3.
//!
//! Helm 3 and Helm 4 differ in these points (all handled here):
//! * a values file with several YAML documents: Helm 3 reads only the first
//!   document, Helm 4 merges all of them (and refuses a `---` line followed by
//!   anything but a comment);
//! * a user `null` inside a map whose chart default is also `null`: Helm 3
//!   drops the key, Helm 4 keeps `key: null`;
//! * an unterminated index such as `--set a[1`: Helm 3 fails, Helm 4 silently
//!   stops parsing that argument (see `strvals`);
//! * `--set-json '{"a":1}'` (a whole JSON object): Helm 4 merges it like a
//!   values file, Helm 3 rejects it.
//!
//! Numbers follow Helm's Go representation: everything read from a values
//! file or from `--set-json` is a float64 inside Helm, so integral numbers
//! with magnitude up to 2^53 become integers here and all other numbers
//! become `f64` (e.g. `12345678901234567890` is `1.2345678901234567e19`,
//! `2.0` is `2`). `--set` integers are exact `i64` as in Helm.
//!
//! Known deviations from Helm (all exotic): custom-tagged numbers such as
//! `!foo 12` stay numbers (Helm: the string "12"); `!!binary` is not base64
//! decoded; integer literals beyond 64 bits written in hex/octal/binary
//! become floats (Helm: strings); `--set-json` nesting and `--set` index/key
//! nesting deeper than 128 levels are refused (Helm: 10000 / unlimited).
//! Keys that only collide once stringified (`1:` and `1.0:`) are resolved at
//! random by Helm (Go map order); here the later one wins.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

use super::strvals::{self, SetKind};

/// Which Helm major version's behaviour to reproduce where they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HelmVersion {
    /// Helm 3 (checked against v3.19.0).
    #[default]
    V3,
    /// Helm 4 (checked against v4.1.4).
    V4,
}

/// Errors from reading values files and `--set`-style arguments. Every
/// message is a single line naming the file or the expression.
#[derive(Debug, thiserror::Error)]
pub enum ValuesError {
    /// The file is not valid YAML.
    #[error("failed to parse {file}: {}invalid YAML: {message}", location(*.line, *.column))]
    Yaml {
        /// File name as given by the caller.
        file: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },
    /// The file is valid YAML but Helm would not accept it as values
    /// (top-level list or scalar, `NaN`, a `null` or list map key, ...).
    #[error("failed to parse {file}: {message}")]
    Content {
        /// File name as given by the caller.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A `--set`-style argument could not be parsed. The argument itself is not shown: `--set`
    /// carries passwords and client secrets, and this message ends up in CI logs. Only the
    /// first key, and names in the message that occur in it, are shown.
    #[error(
        "failed parsing {flag} data for {}: {} (at character {position}; values are not shown)",
        first_key(expr),
        redact(message, expr)
    )]
    Set {
        /// `--set`, `--set-string`, `--set-json`, `--set-literal` or `--set-file`.
        flag: &'static str,
        /// The whole argument.
        expr: String,
        /// Number of characters of `expr` consumed when the error was found.
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// `--set-file`: a file named in the argument could not be read.
    #[error("failed parsing --set-file data {expr:?}: cannot read {path:?}: {message}")]
    SetFileRead {
        /// The whole argument.
        expr: String,
        /// The path that could not be read.
        path: String,
        /// The reader's message.
        message: String,
    },
}

/// The key path before the first `=` of a `--set` argument, quoted, or `an argument`.
fn first_key(expr: &str) -> String {
    match expr.split_once('=') {
        Some((key, _)) if !key.is_empty() => format!("{key:?}"),
        _ if !expr.contains('=') && expr.len() <= 64 && !expr.contains(',') => format!("{expr:?}"),
        _ => "an argument".to_string(),
    }
}

/// `message` with every quoted part that is not within the first key replaced by `"…"`: the
/// parser quotes keys, and after a comma inside a value (`--set password=ab,cd`) a "key" is
/// a piece of the secret.
fn redact(message: &str, expr: &str) -> String {
    let key = expr.split_once('=').map_or(expr, |(k, _)| k);
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let quoted = &after[..end];
        if !quoted.is_empty() && key.contains(quoted) {
            out.push('"');
            out.push_str(quoted);
            out.push('"');
        } else {
            out.push_str("\"…\"");
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

/// Which flag a `--set`-family argument came from, for [`helm_user_values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetFlag {
    /// `--set`
    Auto,
    /// `--set-string`
    String,
    /// `--set-json`
    Json,
    /// `--set-literal`
    Literal,
    /// `--set-file`
    File,
}

impl From<SetKind> for SetFlag {
    fn from(kind: SetKind) -> Self {
        match kind {
            SetKind::Auto => SetFlag::Auto,
            SetKind::String => SetFlag::String,
            SetKind::Json => SetFlag::Json,
            SetKind::Literal => SetFlag::Literal,
        }
    }
}

/// Reads one values file (YAML or JSON, "-"/stdin handled by caller) into a
/// Value; an empty file is {}. Error names the file and line when YAML is
/// invalid; a top-level non-mapping is an error. Follows Helm 3; see
/// [`parse_values_file_for`].
pub fn parse_values_file(name: &str, text: &str) -> Result<Value, ValuesError> {
    parse_values_file_for(HelmVersion::default(), name, text)
}

/// [`parse_values_file`] for a given Helm version. Helm 3 reads only the
/// first YAML document; Helm 4 splits the text on `---` lines and merges all
/// documents with [`merge_maps`]. YAML is read as Helm's YAML 1.1 reader does
/// (`yes`/`on`/`y` are booleans, `010` is octal 8, `1_000` is 1000, `<<`
/// merge keys, non-string keys turned into strings).
pub fn parse_values_file_for(
    version: HelmVersion,
    name: &str,
    text: &str,
) -> Result<Value, ValuesError> {
    match version {
        HelmVersion::V3 => parse_first_document(name, text, 0).map(Value::Object),
        HelmVersion::V4 => {
            let mut out = Value::Object(Map::new());
            for (first_line, chunk) in split_documents(name, text)? {
                let doc = parse_first_document(name, &chunk, first_line)?;
                out = merge_maps(out, Value::Object(doc));
            }
            Ok(out)
        }
    }
}

/// Splits like Kubernetes' `YAMLReader` (used by Helm 4's `LoadValues`): a
/// line starting with `---` ends a document; only whitespace or a comment may
/// follow the dashes; empty documents are skipped; CRLF becomes LF.
/// Returns (0-based line where the chunk starts, chunk text).
fn split_documents(name: &str, text: &str) -> Result<Vec<(usize, String)>, ValuesError> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut buf_start = 0;
    for (n, line) in text.lines().enumerate() {
        if let Some(after) = line.strip_prefix("---") {
            let trimmed = after.trim();
            if !trimmed.is_empty() && !trimmed.starts_with('#') {
                return Err(ValuesError::Content {
                    file: one_line(name),
                    message: format!(
                        "line {}: invalid YAML document separator: {}",
                        n + 1,
                        one_line(trimmed)
                    ),
                });
            }
            if !buf.is_empty() {
                out.push((buf_start, std::mem::take(&mut buf)));
            }
            continue;
        }
        if buf.is_empty() {
            buf_start = n;
        }
        buf.push_str(line);
        buf.push('\n');
    }
    if !buf.is_empty() {
        out.push((buf_start, buf));
    }
    Ok(out)
}

/// Removes the parser's own " at line N column M" (relative to the
/// document, not the file) from a message; the error carries the file
/// position instead.
fn strip_locations(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(i) = rest.find(" at line ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + " at line ".len()..];
        let after_line = tail.trim_start_matches(|c: char| c.is_ascii_digit());
        match after_line.strip_prefix(" column ") {
            Some(col) if after_line.len() < tail.len() => {
                rest = col.trim_start_matches(|c: char| c.is_ascii_digit());
            }
            _ => {
                out.push_str(" at line ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

fn one_line(s: &str) -> String {
    s.replace('\r', "\\r").replace('\n', "\\n")
}

/// Parses the first YAML document of `text` (what Go's `yaml.Unmarshal`
/// does) into a map. `line_offset` is added to reported line numbers.
fn parse_first_document(
    name: &str,
    text: &str,
    line_offset: usize,
) -> Result<Map<String, Value>, ValuesError> {
    let yaml_error = |e: serde_yaml::Error| {
        let loc = e.location();
        ValuesError::Yaml {
            file: one_line(name),
            line: loc.as_ref().map(|l| l.line() + line_offset),
            column: loc.as_ref().map(|l| l.column()),
            message: strip_locations(&one_line(&e.to_string())),
        }
    };
    let content = |message: String| ValuesError::Content {
        file: one_line(name),
        message,
    };
    if let Some(line) = crate::manifest::yaml::excessive_flow_nesting(text) {
        return Err(ValuesError::Yaml {
            file: one_line(name),
            line: Some(line + line_offset),
            column: None,
            message: format!(
                "collections nested more than {} levels deep",
                crate::manifest::yaml::MAX_FLOW_DEPTH
            ),
        });
    }
    let node = match serde_yaml::Deserializer::from_str(text).next() {
        None => YNode::Null,
        Some(doc) => NodeSeed { src: text }
            .deserialize(doc)
            .map_err(yaml_error)?,
    };
    match node {
        YNode::Null => Ok(Map::new()),
        YNode::Map(entries) => build_map(entries).map_err(content),
        other => Err(content(format!(
            "the top-level value is {}, not a mapping",
            other.describe()
        ))),
    }
}

/// A YAML node after Helm's (YAML 1.1) scalar resolution, before the
/// conversion to JSON that Helm's YAML reader performs.
#[derive(Debug, Clone)]
enum YNode {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    /// An unquoted `<<` (a merge key when used as a key).
    Merge,
    Seq(Vec<YNode>),
    Map(Vec<(YNode, YNode)>),
}

impl YNode {
    fn describe(&self) -> &'static str {
        match self {
            YNode::Null => "null",
            YNode::Bool(_) => "a boolean",
            YNode::Int(_) | YNode::Uint(_) | YNode::Float(_) => "a number",
            YNode::Str(_) | YNode::Merge => "a string",
            YNode::Seq(_) => "a list",
            YNode::Map(_) => "a mapping",
        }
    }
}

/// Converts a float64 (what Helm holds for every number from a values file
/// or JSON) into a JSON number: integral values up to 2^53 become integers.
pub(crate) fn number_from_f64(f: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if f.is_finite() && f.fract() == 0.0 && f.abs() <= EXACT {
        // In range and integral, so the cast is exact.
        Value::from(f as i64)
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

fn non_finite(f: f64) -> String {
    let v = if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    };
    format!("unsupported value: {v} (JSON has no such number)")
}

fn to_value(node: YNode) -> Result<Value, String> {
    Ok(match node {
        YNode::Null => Value::Null,
        YNode::Bool(b) => Value::Bool(b),
        YNode::Int(i) => number_from_f64(i as f64),
        YNode::Uint(u) => number_from_f64(u as f64),
        YNode::Float(f) if f.is_finite() => number_from_f64(f),
        YNode::Float(f) => return Err(non_finite(f)),
        YNode::Str(s) => Value::String(s),
        YNode::Merge => Value::String("<<".to_owned()),
        YNode::Seq(items) => {
            Value::Array(items.into_iter().map(to_value).collect::<Result<_, _>>()?)
        }
        YNode::Map(entries) => Value::Object(build_map(entries)?),
    })
}

/// Builds a map the way Go's yaml.v2 does (merge keys applied in document
/// order, later keys overwrite earlier ones) and then converts keys as
/// sigs.k8s.io/yaml does.
fn build_map(entries: Vec<(YNode, YNode)>) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (key, value) in entries {
        if let YNode::Merge = key {
            match value {
                YNode::Map(inner) => merge_into(&mut out, inner)?,
                YNode::Seq(items) => {
                    // Earlier maps in the list take precedence.
                    for item in items.into_iter().rev() {
                        match item {
                            YNode::Map(inner) => merge_into(&mut out, inner)?,
                            other => return Err(bad_merge(&other)),
                        }
                    }
                }
                other => return Err(bad_merge(&other)),
            }
            continue;
        }
        let key = key_string(key)?;
        out.insert(key, to_value(value)?);
    }
    Ok(out)
}

fn bad_merge(node: &YNode) -> String {
    format!(
        "map merge requires map or sequence of maps as the value, found {}",
        node.describe()
    )
}

fn merge_into(out: &mut Map<String, Value>, entries: Vec<(YNode, YNode)>) -> Result<(), String> {
    for (k, v) in build_map(entries)? {
        out.insert(k, v);
    }
    Ok(())
}

/// sigs.k8s.io/yaml's conversion of a YAML map key to a JSON key.
fn key_string(key: YNode) -> Result<String, String> {
    match key {
        YNode::Str(s) => Ok(s),
        YNode::Merge => Ok("<<".to_owned()),
        YNode::Bool(b) => Ok(b.to_string()),
        YNode::Int(i) => Ok(i.to_string()),
        YNode::Float(f) => Ok(match go_format_g32(f).as_str() {
            "+Inf" => ".inf".to_owned(),
            "-Inf" => "-.inf".to_owned(),
            "NaN" => ".nan".to_owned(),
            s => s.to_owned(),
        }),
        YNode::Null => Err("unsupported map key: null".to_owned()),
        YNode::Uint(u) => Err(format!(
            "unsupported map key of type uint64: {u} (larger than int64)"
        )),
        YNode::Seq(_) | YNode::Map(_) => Err(format!("invalid map key: {}", key.describe())),
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`.
fn go_format_g32(f: f64) -> String {
    let x = f as f32;
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust prints the shortest digits that round-trip as f32, e.g. "-1.25e-7".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        let (first, more) = digits.split_at(digits.len().min(1));
        out.push_str(if first.is_empty() { "0" } else { first });
        if !more.is_empty() {
            out.push('.');
            out.push_str(more);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    } else if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.push_str(&"0".repeat(int_len - digits.len()));
        } else {
            let (int_part, frac) = digits.split_at(int_len);
            out.push_str(int_part);
            out.push('.');
            out.push_str(frac);
        }
    } else {
        out.push_str("0.");
        out.push_str(&"0".repeat((-exp - 1) as usize));
        out.push_str(&digits);
    }
    out
}

/// Go yaml.v2's resolution of an untagged plain scalar.
fn resolve_plain(s: &str) -> YNode {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return YNode::Bool(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return YNode::Bool(false)
        }
        "" | "~" | "null" | "Null" | "NULL" => return YNode::Null,
        ".nan" | ".NaN" | ".NAN" => return YNode::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return YNode::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return YNode::Float(f64::NEG_INFINITY),
        "<<" => return YNode::Merge,
        _ => {}
    }
    match s.as_bytes().first() {
        Some(b'.') => match s.parse::<f64>() {
            Ok(f) if f.is_finite() => YNode::Float(f),
            _ => YNode::Str(s.to_owned()),
        },
        Some(b'0'..=b'9' | b'+' | b'-') => {
            let plain = s.replace('_', "");
            if let Some(i) = go_parse_int_base0(&plain) {
                return YNode::Int(i);
            }
            if let Some(u) = go_parse_uint_base0(&plain) {
                return YNode::Uint(u);
            }
            if yaml_style_float(&plain) {
                if let Ok(f) = plain.parse::<f64>() {
                    if f.is_finite() {
                        return YNode::Float(f);
                    }
                }
            }
            YNode::Str(s.to_owned())
        }
        _ => YNode::Str(s.to_owned()),
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)` for strings without underscores.
fn go_parse_uint_base0(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let (radix, digits) = if b.first() == Some(&b'0') {
        match b.get(1).map(u8::to_ascii_lowercase) {
            Some(b'b') if b.len() >= 3 => (2, &s[2..]),
            Some(b'o') if b.len() >= 3 => (8, &s[2..]),
            Some(b'x') if b.len() >= 3 => (16, &s[2..]),
            _ => (8, &s[1..]),
        }
    } else {
        (10, s)
    };
    if s.is_empty() || !digits.bytes().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)` for strings without underscores.
fn go_parse_int_base0(s: &str) -> Option<i64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = go_parse_uint_base0(rest)?;
    if neg {
        if u <= 1u64 << 63 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Deserializes one YAML node, keeping enough of the source to tell plain
/// scalars (which Helm resolves with YAML 1.1 rules) from quoted or tagged
/// ones (which stay strings).
struct NodeSeed<'s> {
    src: &'s str,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = YNode;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<YNode, D::Error> {
        d.deserialize_any(NodeVisitor { src: self.src })
    }
}

struct NodeVisitor<'s> {
    src: &'s str,
}

impl NodeVisitor<'_> {
    /// Whether `s` (borrowed from the source) is an untagged plain scalar.
    fn is_plain_untagged(&self, s: &str) -> bool {
        let base = self.src.as_ptr() as usize;
        let at = s.as_ptr() as usize;
        if at < base || at + s.len() > base + self.src.len() {
            return false;
        }
        let Some(before) = self.src.get(..at - base) else {
            return false;
        };
        if before.ends_with(['\'', '"']) {
            return false;
        }
        !preceded_by_tag(before)
    }
}

/// Looks back from a scalar's start for a tag (`!x`), skipping anchors and
/// comments.
fn preceded_by_tag(before: &str) -> bool {
    let mut rest = before;
    for _ in 0..4 {
        rest = trim_ws_and_comments(rest);
        let start = rest
            .rfind(|c: char| c.is_whitespace() || matches!(c, '[' | '{' | ','))
            .map_or(0, |i| {
                i + rest[i..].chars().next().map_or(1, char::len_utf8)
            });
        let token = &rest[start..];
        if token.starts_with('!') {
            return true;
        }
        if token.starts_with('&') && !token.is_empty() {
            rest = &rest[..start];
            continue;
        }
        return false;
    }
    false
}

fn trim_ws_and_comments(mut s: &str) -> &str {
    loop {
        s = s.trim_end();
        let line_start = s.rfind('\n').map_or(0, |i| i + 1);
        let line = &s[line_start..];
        let comment = line
            .char_indices()
            .find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with([' ', '\t'])));
        match comment {
            Some((i, _)) => s = &s[..line_start + i],
            None => return s,
        }
    }
}

impl<'de> Visitor<'de> for NodeVisitor<'_> {
    type Value = YNode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<YNode, E> {
        Ok(YNode::Null)
    }
    fn visit_none<E>(self) -> Result<YNode, E> {
        Ok(YNode::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<YNode, D::Error> {
        NodeSeed { src: self.src }.deserialize(d)
    }
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<YNode, D::Error> {
        NodeSeed { src: self.src }.deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<YNode, E> {
        Ok(YNode::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<YNode, E> {
        Ok(YNode::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<YNode, E> {
        Ok(i64::try_from(v).map_or(YNode::Uint(v), YNode::Int))
    }
    fn visit_i128<E>(self, v: i128) -> Result<YNode, E> {
        Ok(YNode::Float(v as f64))
    }
    fn visit_u128<E>(self, v: u128) -> Result<YNode, E> {
        Ok(YNode::Float(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<YNode, E> {
        Ok(YNode::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<YNode, E> {
        if self.is_plain_untagged(v) {
            Ok(resolve_plain(v))
        } else {
            Ok(YNode::Str(v.to_owned()))
        }
    }
    fn visit_str<E>(self, v: &str) -> Result<YNode, E> {
        // Only quoted scalars with escapes and folded multi-line scalars
        // arrive here; YAML 1.1 resolves neither to a non-string.
        Ok(YNode::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<YNode, E> {
        Ok(YNode::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<YNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(NodeSeed { src: self.src })? {
            items.push(item);
        }
        Ok(YNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(NodeSeed { src: self.src })? {
            let value = map.next_value_seed(NodeSeed { src: self.src })?;
            entries.push((key, value));
        }
        Ok(YNode::Map(entries))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<YNode, A::Error> {
        // A custom tag (`!foo value`): Helm ignores it.
        use de::VariantAccess;
        let (_tag, variant): (de::IgnoredAny, _) = data.variant()?;
        variant.newtype_variant_seed(NodeSeed { src: self.src })
    }
}

/// Helm's mergeMaps for successive -f files: maps merge deeply, later
/// scalars/lists replace. If either side is not a map, `overlay` wins.
pub fn merge_maps(base: Value, overlay: Value) -> Value {
    match (base, overlay) {
        (Value::Object(mut out), Value::Object(b)) => {
            for (k, v) in b {
                let merged = match (out.remove(&k), v) {
                    (Some(old @ Value::Object(_)), v @ Value::Object(_)) => merge_maps(old, v),
                    (_, v) => v,
                };
                out.insert(k, merged);
            }
            Value::Object(out)
        }
        (_, overlay) => overlay,
    }
}

/// Helm's coalescing of user values over chart defaults
/// (chartutil.CoalesceValues semantics), including `null` in user values
/// deleting the key that the defaults define. Follows Helm 3; see
/// [`coalesce_for`].
pub fn coalesce(user: Value, defaults: &Value) -> Value {
    coalesce_for(HelmVersion::default(), user, defaults)
}

/// [`coalesce`] for a given Helm version (charts without subcharts):
/// * top level: a user `null` removes the key whenever the defaults have it
///   (both versions); a user map is coalesced with a default map; any other
///   user value wins; keys only in the defaults are copied;
/// * inside maps: a user `null` removes a key the defaults have; Helm 4 only
///   does so when the default is not `null` itself. A user `null` for a key
///   the defaults lack stays `null` (both versions).
pub fn coalesce_for(version: HelmVersion, user: Value, defaults: &Value) -> Value {
    let mut v = match user {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => return other,
    };
    let Value::Object(vc) = defaults else {
        return Value::Object(v);
    };
    for (key, val) in vc {
        match v.get_mut(key) {
            Some(Value::Null) => {
                v.shift_remove(key);
            }
            Some(Value::Object(dest)) => {
                if let Value::Object(src) = val {
                    coalesce_tables(version, dest, src);
                }
            }
            Some(_) => {}
            None => {
                v.insert(key.clone(), val.clone());
            }
        }
    }
    Value::Object(v)
}

fn coalesce_tables(version: HelmVersion, dst: &mut Map<String, Value>, src: &Map<String, Value>) {
    for (key, val) in src {
        match dst.get_mut(key) {
            Some(Value::Null) => {
                if version == HelmVersion::V3 || !val.is_null() {
                    dst.shift_remove(key);
                }
            }
            None => {
                dst.insert(key.clone(), val.clone());
            }
            Some(Value::Object(dv)) => {
                if let Value::Object(sv) = val {
                    coalesce_tables(version, dv, sv);
                }
            }
            Some(_) => {}
        }
    }
}

/// Helm's `values.Options.MergeValues` (Helm 3 behaviour, `--set-file`
/// paths read from the local file system; see [`helm_user_values_for`]).
pub fn helm_user_values(
    files: &[(String, String)],
    sets: &[(SetFlag, String)],
) -> Result<Value, ValuesError> {
    let mut read = |path: &str| -> Result<String, String> {
        std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.to_string())
    };
    helm_user_values_for(HelmVersion::default(), files, sets, &mut read)
}

/// The user-supplied values, as Helm's `values.Options.MergeValues` builds
/// them before coalescing with the chart defaults.
///
/// `files` are `(name, content)` of the `-f` files in command-line order;
/// `sets` are the `--set*` arguments in command-line order. Helm does NOT
/// apply them in command-line order but by flag, in this fixed group order,
/// each group in command-line order (Helm 4: `MergeValues` in
/// `pkg/cli/values/options.go`; Helm 3.19.0 and 4.1.4 binaries both confirmed
/// by the `helm_compat` test):
/// 1. `-f/--values` files, merged with [`merge_maps`] (Helm 4: preceded by
///    `--values-directory` files, not modelled here);
/// 2. `--set-json`;
/// 3. `--set`;
/// 4. `--set-string`;
/// 5. `--set-file` (`read` is given each path and returns the content);
/// 6. `--set-literal`.
///
/// So `--set-literal a=1 --set a=2` gives `a: "1"`, and `--set a=1
/// --set-json a=2` gives `a: 1`.
pub fn helm_user_values_for(
    version: HelmVersion,
    files: &[(String, String)],
    sets: &[(SetFlag, String)],
    read: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<Value, ValuesError> {
    let mut base = Value::Object(Map::new());
    for (name, text) in files {
        let current = parse_values_file_for(version, name, text)?;
        base = merge_maps(base, current);
    }
    const ORDER: [SetFlag; 5] = [
        SetFlag::Json,
        SetFlag::Auto,
        SetFlag::String,
        SetFlag::File,
        SetFlag::Literal,
    ];
    for group in ORDER {
        for (_, expr) in sets.iter().filter(|(f, _)| *f == group) {
            let kind = match group {
                SetFlag::Auto => SetKind::Auto,
                SetFlag::String => SetKind::String,
                SetFlag::Json => SetKind::Json,
                SetFlag::Literal => SetKind::Literal,
                SetFlag::File => {
                    strvals::apply_set_file_for(version, &mut base, expr, read)?;
                    continue;
                }
            };
            strvals::apply_set_for(version, &mut base, expr, kind)?;
        }
    }
    Ok(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Value {
        match parse_values_file("t.yaml", text) {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    #[test]
    fn empty_and_null_documents_are_empty_maps() {
        for text in ["", "# only a comment\n", "---\n", "null\n", "~", "{}"] {
            assert_eq!(parse(text), json!({}), "{text:?}");
        }
    }

    #[test]
    fn set_errors_do_not_show_values() {
        for (expr, kind) in [
            ("auth.password=CANARY,xyz", SetKind::Auto),
            ("auth.password=ab,CANARY", SetKind::Auto),
            ("auth.password=ab,CANARY,c=d", SetKind::String),
            ("auth={\"secret\":\"CANARY\"", SetKind::Json),
            ("auth[70000]=CANARY", SetKind::Auto),
        ] {
            let mut v = Value::Null;
            let msg = crate::values::strvals::apply_set(&mut v, expr, kind)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| panic!("{expr:?} should fail"));
            assert!(!msg.contains("CANARY"), "{msg}");
            assert!(msg.contains("\"auth"), "the first key is named: {msg}");
        }
    }

    #[test]
    fn top_level_non_mapping_is_an_error() {
        for text in ["- 1\n- 2\n", "hello\n", "42", "[]"] {
            let err = parse_values_file("vals.yaml", text).err();
            let msg = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(
                msg.contains("vals.yaml") && msg.contains("not a mapping"),
                "{msg}"
            );
        }
    }

    #[test]
    fn invalid_yaml_names_file_and_line() {
        let err = parse_values_file("my.yaml", "a: 1\nb: [1\n").err();
        match err {
            Some(ValuesError::Yaml { file, line, .. }) => {
                assert_eq!(file, "my.yaml");
                assert!(line.is_some());
            }
            other => panic!("{other:?}"),
        }
        let msg = parse_values_file("my.yaml", "a: 1\n  b: 2\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.starts_with("failed to parse my.yaml: line 2"), "{msg}");
        assert!(!msg.contains("column 5"), "location repeated: {msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn yaml_1_1_scalars() {
        let v = parse(
            "a: yes\nb: Off\nc: y\nd: 010\ne: 08\nf: 1_000\ng: 0b101\nh: 0x1F\ni: 0X1F\n\
             j: '010'\nk: \"yes\"\nl: !!str 5\nm: 1e3\nnn: +12\no: -0x10\np: 2001-12-14\nq: 1:20\n\
             r: .5\ns: 0o17\nt: 012345678901234567890\nu: &x on\nv: *x\nw: !!str yes\n",
        );
        assert_eq!(
            v,
            json!({"a": true, "b": false, "c": true, "d": 8, "e": 8, "f": 1000, "g": 5,
                   "h": 31, "i": 31, "j": "010", "k": "yes", "l": "5", "m": 1000, "nn": 12,
                   "o": -16, "p": "2001-12-14", "q": "1:20", "r": 0.5, "s": 15,
                   "t": 12345678901234567000.0, "u": true, "v": true, "w": "yes"})
        );
    }

    #[test]
    fn numbers_are_float64() {
        let v = parse("a: 2.0\nb: 12345678901234567890\nc: 9007199254740995\nd: 1.5\n");
        assert_eq!(v["a"], json!(2));
        assert_eq!(v["b"].as_f64(), Some(12345678901234567890.0));
        assert!(v["b"].is_f64());
        assert!(v["c"].is_f64());
        assert_eq!(v["d"], json!(1.5));
    }

    #[test]
    fn keys_are_stringified_like_helm() {
        let v =
            parse("yes: 1\n1: a\n1.5: b\n1e6: c\n0.1: d\n1.23456789: e\n-1: f\n1e-7: g\n.inf: h\n");
        assert_eq!(
            v,
            json!({"true": 1, "1": "a", "1.5": "b", "1e+06": "c", "0.1": "d",
                   "1.2345679": "e", "-1": "f", "1e-07": "g", ".inf": "h"})
        );
        for bad in [
            "~: 1\n",
            "12345678901234567890: 1\n",
            "[1]: 2\n",
            "a: .nan\n",
            "a: -.inf\n",
        ] {
            assert!(parse_values_file("f", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn excessive_aliasing_is_refused() {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names: Vec<char> = ('a'..='i').collect();
        for pair in names.windows(2) {
            let refs = vec![format!("*{}", pair[0]); 9].join(",");
            text.push_str(&format!("{0}: &{0} [{refs}]\n", pair[1]));
        }
        let started = std::time::Instant::now();
        assert!(parse_values_file("laughs.yaml", &text).is_err());
        assert!(started.elapsed().as_secs() < 10);
    }

    #[test]
    fn merge_keys_follow_yaml_v2() {
        let v = parse(
            "x: &x {a: 1, b: 2}\nm:\n  a: 0\n  <<: *x\n  c: 3\nz:\n  <<: *x\n  a: 5\n\
             w:\n  <<: [*x, {b: 9, e: 1}]\nq:\n  \"<<\": *x\n",
        );
        assert_eq!(v["m"], json!({"a": 1, "b": 2, "c": 3}));
        assert_eq!(v["z"], json!({"a": 5, "b": 2}));
        assert_eq!(v["w"], json!({"a": 1, "b": 2, "e": 1}));
        assert_eq!(v["q"], json!({"<<": {"a": 1, "b": 2}}));
        assert!(parse_values_file("f", "a:\n  <<: 5\n").is_err());
    }

    #[test]
    fn multi_document_files_differ_between_versions() {
        let text = "a: 1\nb: {c: 1}\n---\nb: {d: 2}\n--- # note\ne: 3\n";
        let v3 = parse_values_file_for(HelmVersion::V3, "f", text).ok();
        let v4 = parse_values_file_for(HelmVersion::V4, "f", text).ok();
        assert_eq!(v3, Some(json!({"a": 1, "b": {"c": 1}})));
        assert_eq!(v4, Some(json!({"a": 1, "b": {"c": 1, "d": 2}, "e": 3})));
        // Helm 3 never looks at the later documents.
        assert!(parse_values_file_for(HelmVersion::V3, "f", "a: 1\n---\nb: [\n").is_ok());
        assert!(parse_values_file_for(HelmVersion::V4, "f", "a: 1\n---\nb: [\n").is_err());
        assert!(parse_values_file_for(HelmVersion::V4, "f", "--- a\n").is_err());
        assert!(parse_values_file_for(HelmVersion::V4, "f", "a: 1\n---\n- 1\n").is_err());
        let err = parse_values_file_for(HelmVersion::V4, "f", "a: 1\n---\nb: 1\n  c: 2\n");
        match err {
            Err(ValuesError::Yaml { line: Some(4), .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn merge_maps_is_deep_and_replaces_lists() {
        let a = json!({"a": [1, 2], "b": {"c": 1, "d": {"e": 1}}, "x": 1});
        let b = json!({"a": [3], "b": {"d": {"f": 2}, "g": null}, "x": {"y": 1}});
        assert_eq!(
            merge_maps(a, b),
            json!({"a": [3], "b": {"c": 1, "d": {"e": 1, "f": 2}, "g": null}, "x": {"y": 1}})
        );
    }

    #[test]
    fn coalesce_nulls() {
        let defaults = json!({
            "top": 1, "topnull": null, "m": {"a": 1, "dn": null, "keep": 2, "deep": {"x": 1}},
            "t": {"x": 1}, "s": 5
        });
        let user = json!({
            "top": null, "topnull": null, "new": null,
            "m": {"a": null, "dn": null, "zz": null, "deep": {"x": null, "y": null}},
            "t": 7, "s": {"q": 1}
        });
        let v3 = coalesce_for(HelmVersion::V3, user.clone(), &defaults);
        assert_eq!(
            v3,
            json!({"new": null, "m": {"zz": null, "keep": 2, "deep": {"y": null}},
                   "t": 7, "s": {"q": 1}})
        );
        let v4 = coalesce_for(HelmVersion::V4, user, &defaults);
        assert_eq!(
            v4,
            json!({"new": null, "m": {"dn": null, "zz": null, "keep": 2, "deep": {"y": null}},
                   "t": 7, "s": {"q": 1}})
        );
    }

    #[test]
    fn helm_user_values_group_order() {
        let sets = vec![
            (SetFlag::Literal, "a=1".to_owned()),
            (SetFlag::String, "a=2".to_owned()),
            (SetFlag::Auto, "a=3,b=3".to_owned()),
            (SetFlag::Json, "a=4,b=4,c=4".to_owned()),
        ];
        let files = vec![("f.yaml".to_owned(), "a: 0\nd: 0\n".to_owned())];
        let v = helm_user_values(&files, &sets).ok();
        assert_eq!(v, Some(json!({"a": "1", "b": 3, "c": 4, "d": 0})));
    }

    #[test]
    fn set_file_uses_reader() {
        let sets = vec![(SetFlag::File, "a=one,b={one,two}".to_owned())];
        let mut read = |p: &str| -> Result<String, String> {
            match p {
                "one" => Ok("1\n".to_owned()),
                "two" => Ok("x".to_owned()),
                _ => Err("no such file".to_owned()),
            }
        };
        let v = helm_user_values_for(HelmVersion::V3, &[], &sets, &mut read).ok();
        assert_eq!(v, Some(json!({"a": "1\n", "b": ["1\n", "x"]})));
        let bad = vec![(SetFlag::File, "a=missing".to_owned())];
        let err = helm_user_values_for(HelmVersion::V3, &[], &bad, &mut read).err();
        assert!(
            matches!(err, Some(ValuesError::SetFileRead { .. })),
            "{err:?}"
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_values_file_never_panics(
            text in "([a-c0-9 :#!&*<>|\\-\\[\\]{}'\",._~\n]|yes|---\n){0,80}",
            v4 in proptest::bool::ANY,
        ) {
            let version = if v4 { HelmVersion::V4 } else { HelmVersion::V3 };
            if let Ok(v) = parse_values_file_for(version, "p.yaml", &text) {
                proptest::prop_assert!(v.is_object());
                let merged = merge_maps(v.clone(), v.clone());
                let _ = coalesce_for(version, merged, &v);
            }
        }
    }

    #[test]
    fn go_float_formatting() {
        for (f, s) in [
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e20, "1e+20"),
            (100.0, "100"),
        ] {
            assert_eq!(go_format_g32(f), s);
        }
    }
}
