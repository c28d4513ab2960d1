//! Surgical edits of a document's text.
//!
//! Re-serialising a document with any Rust YAML library changes what Kubernetes reads
//! (`defaultMode: 0440` becomes `'0440'`, `"yes"` loses its quotes; see `deps.md`). So ess-guard
//! edits the original text instead: it locates the block-style entry to change by indentation,
//! replaces or inserts only the lines concerned, and writes new scalars as JSON-quoted strings
//! (read identically by YAML 1.1 and 1.2). Every edit is then verified: the edited text is parsed
//! again and must equal the original model with the same change applied in JSON. A mismatch is
//! an error, never output.

use std::ops::Range;

use serde_json::{Map, Value};

use super::yaml;

/// One change to a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Edit {
    /// Sets `metadata.annotations[key]` (creating the map if needed).
    Annotation { key: String, value: String },
    /// Sets a scalar at a path of mapping keys, creating missing mappings.
    Field { path: Vec<String>, value: Value },
    /// Sets an environment variable of one container of a pod template
    /// (`spec.template.spec.containers[name=container].env[name=name].value`).
    ContainerEnv {
        container: String,
        name: String,
        value: String,
    },
}

/// Why an edit could not be made; the document is then left alone and the caller fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("cannot edit `{path}`: {reason}")]
    Unsupported { path: String, reason: String },
    #[error("edit verification failed: {0}")]
    Verification(String),
}

/// Applies `edits` to `text` (one document, no separator) whose parsed model is `model`.
pub fn apply(text: &str, model: &Value, edits: &[Edit]) -> Result<String, EditError> {
    let mut out = text.to_string();
    let mut expected = model.clone();
    for edit in edits {
        out = apply_text(&out, edit)?;
        apply_json(&mut expected, edit)?;
    }
    let reparsed = yaml::parse_embedded(&out)
        .map_err(|e| EditError::Verification(super::one_line(&e.to_string())))?;
    if reparsed != expected {
        return Err(EditError::Verification(
            "the edited text does not read back as the intended change".to_string(),
        ));
    }
    Ok(out)
}

/// [`apply`] for a document whose `model` is only its skeleton (see [`super::skeleton`]);
/// `metadata` is where the skeleton's `metadata` entry is in `text`.
///
/// Only `metadata.annotations` edits take this path. They change nothing outside the `metadata`
/// entry, so they are made on that entry's text alone, which gives the same bytes as editing the
/// whole document (the entry is the only column-0 `metadata:` key, and every insertion point lies
/// inside it or at its end) without indexing the lines of the whole document twice per edit.
/// Verification proves what [`apply`] proves by parsing the whole edited document: the edited
/// entry still holds no column-0 line but its key, no anchor, alias or tag, and it reads back as
/// the model's `metadata` with the edits applied. Top-level entries of a document a skeleton was
/// cut from cannot affect each other, so the whole document then reads as intended. Any other
/// edit, or a failed structural check, takes the full path: the whole document is parsed and
/// [`apply`] runs.
///
/// Measured effect (10 MB generated step-2 stream): the second parse of every Synapse
/// StatefulSet (7 KB) became a parse of its ~1 KB metadata; see BENCHMARKS.md.
///
/// Returns only the new `metadata` entry and where it goes ([`Edited`]), so that holding every
/// edited StatefulSet until the output is written costs ~1 KB each instead of a copy of the
/// whole document (~54 MB less peak RSS on the 100 MB benchmark stream).
pub fn apply_skeleton(
    text: &str,
    metadata: Range<usize>,
    model: &Value,
    edits: &[Edit],
) -> Result<Edited, EditError> {
    let whole = |text: &str| -> Result<Edited, EditError> {
        let full = yaml::parse_embedded(text)
            .map_err(|e| EditError::Verification(super::one_line(&e.to_string())))?;
        Ok(Edited {
            range: 0..text.len(),
            text: apply(text, &full, edits)?,
        })
    };
    let only_annotations = edits.iter().all(|e| matches!(e, Edit::Annotation { .. }));
    let entry = text
        .get(metadata.clone())
        .filter(|e| e.starts_with("metadata:"));
    let (Some(entry), true) = (entry, only_annotations) else {
        return whole(text);
    };
    let mut edited = entry.to_string();
    // `apply_json` on the model's metadata can only fail one way, for every edit alike: an
    // `annotations` that is neither a mapping nor null. Checked after the first text edit, as
    // `apply` would meet it.
    let annotations_ok = model
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .is_none_or(|a| a.is_null() || a.is_object());
    for edit in edits {
        edited = apply_text(&edited, edit)?;
        if !annotations_ok {
            return Err(EditError::Unsupported {
                path: "metadata.annotations".into(),
                reason: "not a mapping".into(),
            });
        }
    }
    let structure_kept = edited.starts_with("metadata:")
        && memchr::memchr_iter(b'\n', edited.as_bytes())
            .filter_map(|nl| edited.as_bytes().get(nl + 1))
            .all(|b| matches!(b, b' ' | b'#' | b'\n' | b'\r'))
        && !edited.bytes().any(|b| matches!(b, b'&' | b'*' | b'!'));
    if !structure_kept {
        return whole(text);
    }
    // Compare the edited entry with the model's metadata plus the new annotations while reading
    // it, without building a value: the structure check above puts every content line after
    // `metadata:` at column 1 or more, so they are `metadata`'s value. `None` (outside the
    // simple subset, a repeated key) reads and compares it the ordinary way below.
    let fast = (|| {
        let nl = edited.find('\n')?;
        if edited[..nl].trim_end_matches(' ') != "metadata:" {
            return None;
        }
        let meta = model.get("metadata")?.as_object()?;
        let mut annotations = match meta.get("annotations") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return None,
        };
        for edit in edits {
            if let Edit::Annotation { key, value } = edit {
                annotations.insert(key.clone(), Value::String(value.clone()));
            }
        }
        let annotations = Value::Object(annotations);
        let len = meta.len() + usize::from(!meta.contains_key("annotations"));
        let lookup = |k: &str| {
            if k == "annotations" {
                Some(&annotations)
            } else {
                meta.get(k)
            }
        };
        super::simple::mapping_equals(&edited[nl + 1..], &lookup, len)
    })();
    match fast {
        Some(true) => {
            return Ok(Edited {
                range: metadata,
                text: edited,
            })
        }
        Some(false) => {
            return Err(EditError::Verification(
                "the edited text does not read back as the intended change".to_string(),
            ))
        }
        None => {}
    }
    let mut expected = model
        .get("metadata")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Map::new()));
    for edit in edits {
        if let Edit::Annotation { key, value } = edit {
            if let Some(annotations) = ensure_map(&mut expected, &["annotations"]) {
                annotations.insert(key.clone(), Value::String(value.clone()));
            }
        }
    }
    let reparsed = super::simple::parse_document(&edited)
        .map(|p| p.value)
        .map_err(|e| EditError::Verification(super::one_line(&e.to_string())))?;
    let ok = reparsed
        .as_object()
        .is_some_and(|m| m.len() == 1 && m.get("metadata") == Some(&expected));
    if !ok {
        return Err(EditError::Verification(
            "the edited text does not read back as the intended change".to_string(),
        ));
    }
    Ok(Edited {
        range: metadata,
        text: edited,
    })
}

/// An edited document: `text` replaces the bytes `range` of the original document text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    pub range: Range<usize>,
    pub text: String,
}

impl Edited {
    /// The whole edited document, given the original text.
    pub fn apply_to(&self, original: &str) -> String {
        let mut out = String::with_capacity(
            original.len() + self.text.len() - self.range.len().min(self.text.len()),
        );
        self.write_to(original, &mut out);
        out
    }

    /// Appends the whole edited document to `out`.
    pub fn write_to(&self, original: &str, out: &mut String) {
        out.push_str(&original[..self.range.start]);
        out.push_str(&self.text);
        out.push_str(&original[self.range.end..]);
    }
}

fn apply_json(value: &mut Value, edit: &Edit) -> Result<(), EditError> {
    let unsupported = |path: &str| EditError::Unsupported {
        path: path.to_string(),
        reason: "not a mapping".into(),
    };
    match edit {
        Edit::Annotation { key, value: v } => {
            let annotations = ensure_map(value, &["metadata", "annotations"])
                .ok_or_else(|| unsupported("metadata.annotations"))?;
            annotations.insert(key.clone(), Value::String(v.clone()));
        }
        Edit::Field { path, value: v } => {
            let (last, parents) = path.split_last().ok_or_else(|| unsupported(""))?;
            let parents: Vec<&str> = parents.iter().map(String::as_str).collect();
            let map = ensure_map(value, &parents).ok_or_else(|| unsupported(&path.join(".")))?;
            map.insert(last.clone(), v.clone());
        }
        Edit::ContainerEnv {
            container,
            name,
            value: v,
        } => {
            let containers = value
                .pointer_mut("/spec/template/spec/containers")
                .and_then(Value::as_array_mut)
                .ok_or_else(|| unsupported("spec.template.spec.containers"))?;
            let c = containers
                .iter_mut()
                .rfind(|c| c.get("name").and_then(Value::as_str) == Some(container))
                .ok_or_else(|| unsupported(&format!("container {container}")))?;
            let obj = c.as_object_mut().ok_or_else(|| unsupported("container"))?;
            let env = obj.entry("env").or_insert_with(|| Value::Array(Vec::new()));
            if env.is_null() {
                *env = Value::Array(Vec::new());
            }
            let env = env.as_array_mut().ok_or_else(|| unsupported("env"))?;
            match env
                .iter_mut()
                .rfind(|e| e.get("name").and_then(Value::as_str) == Some(name))
            {
                Some(item) => {
                    let item = item
                        .as_object_mut()
                        .ok_or_else(|| unsupported("env item"))?;
                    item.remove("valueFrom");
                    item.insert("value".into(), Value::String(v.clone()));
                }
                None => env.push(serde_json::json!({"name": name, "value": v})),
            }
        }
    }
    Ok(())
}

fn ensure_map<'a>(value: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut cur = value;
    for key in path {
        let map = cur.as_object_mut()?;
        let next = map
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if next.is_null() {
            *next = Value::Object(Map::new());
        }
        cur = next;
    }
    cur.as_object_mut()
}

// ---- the text side ----

/// A line of the document with its indentation.
struct Line {
    start: usize,
    end: usize, // excluding the newline
    indent: usize,
    /// Blank or comment-only lines never start, end or belong to a structure.
    content: bool,
}

fn lines_of(text: &str) -> Vec<Line> {
    // memchr for the line ends instead of `split_inclusive('\n')` (a char searcher): this runs
    // on every edited document, twice per Synapse StatefulSet on step 2.
    let mut lines = Vec::with_capacity(text.len() / 32 + 1);
    let mut start = 0;
    while start < text.len() {
        let end =
            memchr::memchr(b'\n', &text.as_bytes()[start..]).map_or(text.len(), |i| start + i + 1);
        let raw = &text[start..end];
        let body = raw.trim_end_matches('\n').trim_end_matches('\r');
        let indent = body.len() - body.trim_start_matches(' ').len();
        let rest = &body[indent..];
        lines.push(Line {
            start,
            end: start + body.len(),
            indent,
            content: !(rest.is_empty() || rest.starts_with('#')),
        });
        start = end;
    }
    lines
}

/// A mapping entry found in the text: `key:` at (line, col), its value running to `end` (a line
/// index, exclusive).
#[derive(Debug, Clone, Copy)]
struct Entry {
    line: usize,
    /// Byte offset in the text where the inline value starts (right after `:`).
    value_at: usize,
    end: usize,
}

/// Reads the key of a `key: value` at byte `at` of `text`. Returns the key and the offset just
/// after the colon.
fn key_at(text: &str, at: usize, line_end: usize) -> Option<(String, usize)> {
    let s = &text[at..line_end];
    let (key, after) = if let Some(rest) = s.strip_prefix('"') {
        let close = rest.find('"')?;
        (rest[..close].to_string(), 1 + close + 1)
    } else if let Some(rest) = s.strip_prefix('\'') {
        let close = rest.find('\'')?;
        (rest[..close].to_string(), 1 + close + 1)
    } else {
        let colon = s
            .find(": ")
            .or_else(|| s.strip_suffix(':').map(|k| k.len()))?;
        (s[..colon].trim_end().to_string(), colon)
    };
    let rest = &s[after..];
    let rest_trim = rest.trim_start_matches(' ');
    let colon_at = after + (rest.len() - rest_trim.len());
    if !rest_trim.starts_with(':') {
        return None;
    }
    let next = rest_trim[1..].chars().next();
    if !matches!(next, None | Some(' ' | '\t' | '\r')) {
        return None;
    }
    Some((key, at + colon_at + 1))
}

struct Doc<'a> {
    text: &'a str,
    lines: Vec<Line>,
}

impl<'a> Doc<'a> {
    fn new(text: &'a str) -> Self {
        Doc {
            text,
            lines: lines_of(text),
        }
    }

    fn char_at(&self, line: usize, col: usize) -> Option<u8> {
        let l = &self.lines[line];
        self.text
            .as_bytes()
            .get(l.start + col)
            .copied()
            .filter(|_| l.start + col < l.end)
    }

    fn dash_at(&self, line: usize, col: usize) -> bool {
        self.char_at(line, col) == Some(b'-')
            && matches!(self.char_at(line, col + 1), None | Some(b' '))
    }

    fn end_of(&self, line: usize, col: usize, limit: usize) -> usize {
        let mut i = line + 1;
        while i < limit {
            let l = &self.lines[i];
            if l.content && (l.indent < col || (l.indent == col && !self.dash_at(i, col))) {
                break;
            }
            i += 1;
        }
        i
    }

    /// The entries of a block mapping whose keys sit at column `col` in lines `from..to`; the
    /// first line may start with `- ` (a sequence item), its key then at `col` too.
    fn entries(&self, from: usize, to: usize, col: usize) -> Vec<(String, Entry)> {
        let mut out = Vec::new();
        for i in from..to {
            let l = &self.lines[i];
            if !l.content {
                continue;
            }
            let at = if l.indent == col {
                l.start + col
            } else if i == from && l.indent < col && self.dash_at(i, l.indent) {
                // `- key: v` item start: the key column is after the dash.
                let after_dash = l.start + l.indent + 1;
                let spaces = self.text[after_dash..l.end].len()
                    - self.text[after_dash..l.end].trim_start_matches(' ').len();
                if l.indent + 1 + spaces != col {
                    continue;
                }
                after_dash + spaces
            } else {
                continue;
            };
            if let Some((key, value_at)) = key_at(self.text, at, l.end) {
                out.push((
                    key,
                    Entry {
                        line: i,
                        value_at,
                        end: self.end_of(i, col, to),
                    },
                ));
            }
        }
        out
    }

    /// The column of the first content line inside `entry`'s value, if the value is a block.
    fn child_col(&self, entry: &Entry) -> Option<usize> {
        (entry.line + 1..entry.end)
            .find(|&i| self.lines[i].content)
            .map(|i| self.lines[i].indent)
    }

    /// The inline text after `key:` on the entry's line, comments stripped.
    fn inline_value(&self, entry: &Entry) -> &str {
        let l = &self.lines[entry.line];
        let v = &self.text[entry.value_at..l.end];
        let v = match v.find(" #") {
            Some(p) => &v[..p],
            None => v,
        };
        v.trim()
    }

    /// The items of a block sequence held by `entry`: (first line, key column of its mapping, end).
    fn items(&self, entry: &Entry) -> Option<Vec<(usize, usize, usize)>> {
        let first = (entry.line + 1..entry.end).find(|&i| self.lines[i].content)?;
        let dash_col = self.lines[first].indent;
        if !self.dash_at(first, dash_col) {
            return None;
        }
        let starts: Vec<usize> = (first..entry.end)
            .filter(|&i| {
                self.lines[i].content
                    && self.lines[i].indent == dash_col
                    && self.dash_at(i, dash_col)
            })
            .collect();
        let mut items = Vec::new();
        for (n, &start) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(entry.end);
            let l = &self.lines[start];
            let after = l.start + dash_col + 1;
            let spaces = self.text[after..l.end].len()
                - self.text[after..l.end].trim_start_matches(' ').len();
            items.push((start, dash_col + 1 + spaces, end));
        }
        Some(items)
    }

    fn line_start(&self, line: usize) -> usize {
        self.lines
            .get(line)
            .map(|l| l.start)
            .unwrap_or(self.text.len())
    }

    /// Byte offset where new lines go after the entry's last content line.
    fn insert_after_content(&self, entry: &Entry) -> usize {
        let last = (entry.line..entry.end)
            .rev()
            .find(|&i| self.lines[i].content)
            .unwrap_or(entry.line);
        self.line_start(last + 1)
    }
}

fn unsupported(path: &str, reason: &str) -> EditError {
    EditError::Unsupported {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// A mapping key as YAML text: plain when it is unambiguous, JSON-quoted otherwise.
fn key_text(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '-' | '_'))
        && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if plain {
        key.to_string()
    } else {
        quote(key)
    }
}

/// A JSON string literal, which YAML 1.1 and 1.2 both read as exactly this string.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// A scalar as YAML text. Strings are always quoted so no YAML version can read them as
/// anything else.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => quote(s),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// Finds the last entry named `key` among `entries` (last wins, as in the parsed model).
fn last<'e>(entries: &'e [(String, Entry)], key: &str) -> Option<&'e Entry> {
    entries.iter().rev().find(|(k, _)| k == key).map(|(_, e)| e)
}

/// Sets `path` = `value` in the text, creating missing mappings.
fn set_path(text: &str, path: &[&str], value: &Value) -> Result<String, EditError> {
    let doc = Doc::new(text);
    let mut from = 0;
    let mut to = doc.lines.len();
    let mut col = 0;
    for (depth, key) in path.iter().enumerate() {
        let entries = doc.entries(from, to, col);
        let is_last = depth + 1 == path.len();
        match last(&entries, key) {
            Some(entry) if is_last => {
                // Replace the whole value (inline and block lines) with one scalar.
                let start = entry.value_at;
                let last_line = (entry.line..entry.end)
                    .rev()
                    .find(|&i| doc.lines[i].content)
                    .unwrap_or(entry.line);
                let stop = doc.lines[last_line].end;
                let mut out = String::with_capacity(text.len() + 32);
                out.push_str(&text[..start]);
                out.push(' ');
                out.push_str(&scalar_text(value));
                out.push_str(&text[stop..]);
                return Ok(out);
            }
            Some(entry) => {
                let inline = doc.inline_value(entry);
                match inline {
                    "" | "~" | "null" => {}
                    "{}" => {
                        // Turn `key: {}` into `key:` followed by the new block.
                        let open = text[entry.value_at..]
                            .find("{}")
                            .map(|p| entry.value_at + p)
                            .ok_or_else(|| unsupported(key, "flow mapping"))?;
                        let mut t = String::with_capacity(text.len() + 64);
                        t.push_str(&text[..open]);
                        t.push_str(&text[open + 2..]);
                        let trimmed = trim_trailing_space_before(&t, open);
                        return set_path(&trimmed, path, value);
                    }
                    _ => {
                        return Err(unsupported(
                            &path[..=depth].join("."),
                            "the value is written in flow style or is not a mapping",
                        ))
                    }
                }
                match doc.child_col(entry) {
                    Some(child)
                        if child > col
                            && !doc.dash_at(
                                (entry.line + 1..entry.end)
                                    .find(|&i| doc.lines[i].content)
                                    .unwrap_or(entry.line),
                                child,
                            ) =>
                    {
                        from = entry.line + 1;
                        to = entry.end;
                        col = child;
                    }
                    Some(_) => {
                        return Err(unsupported(
                            &path[..=depth].join("."),
                            "not a block mapping",
                        ))
                    }
                    None => {
                        // A null value: insert the rest of the path below it.
                        let at = doc.line_start(entry.line + 1);
                        return Ok(insert_block(text, at, col + 2, &path[depth + 1..], value));
                    }
                }
            }
            None => {
                // Missing: append at the end of the current mapping.
                let at = if depth == 0 {
                    let last_content = (0..doc.lines.len()).rev().find(|&i| doc.lines[i].content);
                    match last_content {
                        Some(i) => doc.line_start(i + 1),
                        None => text.len(),
                    }
                } else {
                    let last_content = (from..to)
                        .rev()
                        .find(|&i| doc.lines[i].content)
                        .unwrap_or(from.saturating_sub(1));
                    doc.line_start(last_content + 1)
                };
                return Ok(insert_block(text, at, col, &path[depth..], value));
            }
        }
    }
    Err(unsupported(&path.join("."), "empty path"))
}

fn trim_trailing_space_before(text: &str, at: usize) -> String {
    let head = text[..at].trim_end_matches(' ');
    format!("{head}{}", &text[at..])
}

/// Inserts `path: value` as a nested block at byte `at`, keys starting at column `col`.
fn insert_block(text: &str, at: usize, col: usize, path: &[&str], value: &Value) -> String {
    let mut block = String::new();
    if at > 0 && !text[..at].ends_with('\n') {
        block.push('\n');
    }
    for (depth, key) in path.iter().enumerate() {
        block.push_str(&" ".repeat(col + 2 * depth));
        block.push_str(&key_text(key));
        block.push(':');
        if depth + 1 == path.len() {
            block.push(' ');
            block.push_str(&scalar_text(value));
        }
        block.push('\n');
    }
    let mut out = String::with_capacity(text.len() + block.len());
    out.push_str(&text[..at]);
    out.push_str(&block);
    out.push_str(&text[at..]);
    out
}

fn apply_text(text: &str, edit: &Edit) -> Result<String, EditError> {
    match edit {
        Edit::Annotation { key, value } => set_path(
            text,
            &["metadata", "annotations", key],
            &Value::String(value.clone()),
        ),
        Edit::Field { path, value } => {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            set_path(text, &path, value)
        }
        Edit::ContainerEnv {
            container,
            name,
            value,
        } => set_env(text, container, name, value),
    }
}

/// Finds the block mapping entry at `path` (keys only) and returns it.
fn find(doc: &Doc, path: &[&str]) -> Result<(Entry, usize), EditError> {
    let (mut from, mut to, mut col) = (0, doc.lines.len(), 0);
    let mut found = None;
    for key in path {
        let entries = doc.entries(from, to, col);
        let entry = *last(&entries, key)
            .ok_or_else(|| unsupported(&path.join("."), "not found as a block mapping entry"))?;
        let child = doc.child_col(&entry).unwrap_or(col + 2);
        found = Some((entry, col));
        from = entry.line + 1;
        to = entry.end;
        col = child;
    }
    found.ok_or_else(|| unsupported("", "empty path"))
}

fn set_env(text: &str, container: &str, name: &str, value: &str) -> Result<String, EditError> {
    let doc = Doc::new(text);
    let (containers, _) = find(&doc, &["spec", "template", "spec", "containers"])?;
    let items = doc
        .items(&containers)
        .ok_or_else(|| unsupported("spec.template.spec.containers", "not a block sequence"))?;
    let (c_start, c_col, c_end) = items
        .iter()
        .rev()
        .copied()
        .find(|&(start, col, end)| {
            let entries = doc.entries(start, end, col);
            last(&entries, "name").is_some_and(|e| unquote(doc.inline_value(e)) == container)
        })
        .ok_or_else(|| {
            unsupported(
                "containers",
                &format!("container {container:?} not found in the text"),
            )
        })?;
    let entries = doc.entries(c_start, c_end, c_col);
    let item_text = format!("name: {}\n", quote(name));
    match last(&entries, "env") {
        Some(env) if matches!(doc.inline_value(env), "" | "~" | "null" | "[]") => {
            let env_items = doc.items(env);
            match env_items {
                Some(env_items) => {
                    let existing = env_items.iter().rev().copied().find(|&(s, col, e)| {
                        let es = doc.entries(s, e, col);
                        last(&es, "name").is_some_and(|n| unquote(doc.inline_value(n)) == name)
                    });
                    if let Some((s, col, e)) = existing {
                        // Replace the item with a fresh one at the same place.
                        let dash_col = doc.lines[s].indent;
                        let replacement = format!(
                            "{}- name: {}\n{}value: {}\n",
                            " ".repeat(dash_col),
                            quote(name),
                            " ".repeat(col),
                            quote(value)
                        );
                        let last_line = (s..e).rev().find(|&i| doc.lines[i].content).unwrap_or(s);
                        let stop = doc.line_start(last_line + 1);
                        return Ok(format!(
                            "{}{}{}",
                            &text[..doc.line_start(s)],
                            replacement,
                            &text[stop..]
                        ));
                    }
                    let (s, col, _) = env_items[0];
                    let dash_col = doc.lines[s].indent;
                    let at = doc.insert_after_content(env);
                    let new = format!(
                        "{}- {}{}value: {}\n",
                        " ".repeat(dash_col),
                        item_text,
                        " ".repeat(col),
                        quote(value)
                    );
                    Ok(insert_at(text, at, &new))
                }
                None => {
                    // `env:` with no items (null or `[]`).
                    let line = &doc.lines[env.line];
                    let head = text[..env.value_at].to_string();
                    let dash_col = c_col;
                    let new = format!(
                        "\n{}- {}{}value: {}",
                        " ".repeat(dash_col),
                        item_text,
                        " ".repeat(dash_col + 2),
                        quote(value)
                    );
                    Ok(format!("{head}{new}{}", &text[line.end..]))
                }
            }
        }
        Some(_) => Err(unsupported("env", "written in flow style")),
        None => {
            let at = doc.insert_after_content(&Entry {
                line: c_start,
                value_at: 0,
                end: c_end,
            });
            let new = format!(
                "{}env:\n{}- {}{}value: {}\n",
                " ".repeat(c_col),
                " ".repeat(c_col),
                item_text,
                " ".repeat(c_col + 2),
                quote(value)
            );
            Ok(insert_at(text, at, &new))
        }
    }
}

fn newline_if_needed(text: &str, at: usize) -> &'static str {
    if at > 0 && !text[..at].ends_with('\n') {
        "\n"
    } else {
        ""
    }
}

fn insert_at(text: &str, at: usize, new: &str) -> String {
    format!(
        "{}{}{}{}",
        &text[..at],
        newline_if_needed(text, at),
        new,
        &text[at..]
    )
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, edits: &[Edit]) -> Result<String, EditError> {
        let model = yaml::parse_embedded(text).expect("test input parses");
        apply(text, &model, edits)
    }

    fn ann(key: &str, value: &str) -> Edit {
        Edit::Annotation {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn adds_to_existing_annotations_and_keeps_other_bytes() {
        let text = "apiVersion: v1\nkind: X\nmetadata:\n  name: a\n  annotations:\n    \"helm.sh/hook\": pre-upgrade\n  labels:\n    a: b\nspec:\n  mode: 0440\n  s: \"yes\"\n";
        let out = run(text, &[ann("ess-guard.element.io/x", "1")]).expect("edits");
        assert_eq!(
            out,
            "apiVersion: v1\nkind: X\nmetadata:\n  name: a\n  annotations:\n    \"helm.sh/hook\": pre-upgrade\n    ess-guard.element.io/x: \"1\"\n  labels:\n    a: b\nspec:\n  mode: 0440\n  s: \"yes\"\n"
        );
    }

    #[test]
    fn creates_annotations_and_handles_null_and_empty() {
        let out = run(
            "kind: X\nmetadata:\n  name: a\nspec: {}\n",
            &[ann("k", "v")],
        )
        .expect("edits");
        assert_eq!(
            out,
            "kind: X\nmetadata:\n  name: a\n  annotations:\n    k: \"v\"\nspec: {}\n"
        );
        let out = run(
            "kind: X\nmetadata:\n  annotations:\n  name: a\n",
            &[ann("k", "v")],
        )
        .expect("edits");
        assert_eq!(
            out,
            "kind: X\nmetadata:\n  annotations:\n    k: \"v\"\n  name: a\n"
        );
        let out = run(
            "kind: X\nmetadata:\n  annotations: {}\n  name: a\n",
            &[ann("k", "v")],
        )
        .expect("edits");
        assert_eq!(
            out,
            "kind: X\nmetadata:\n  annotations:\n    k: \"v\"\n  name: a\n"
        );
    }

    #[test]
    fn replaces_an_existing_value() {
        let text = "metadata:\n  annotations:\n    \"helm.sh/hook-weight\": \"0\"\n    other: x\n";
        let out = run(text, &[ann("helm.sh/hook-weight", "5")]).expect("edits");
        assert_eq!(
            out,
            "metadata:\n  annotations:\n    \"helm.sh/hook-weight\": \"5\"\n    other: x\n"
        );
    }

    #[test]
    fn duplicate_annotations_edit_the_last_block() {
        let text =
            "metadata:\n  annotations:\n    a: \"1\"\n  annotations:\n    b: \"2\"\n  name: j\n";
        let out = run(text, &[ann("c", "3")]).expect("edits");
        assert_eq!(out, "metadata:\n  annotations:\n    a: \"1\"\n  annotations:\n    b: \"2\"\n    c: \"3\"\n  name: j\n");
    }

    #[test]
    fn sets_fields() {
        let text = "spec:\n  backoffLimit: 6\n  template:\n    spec: {}\n";
        let out = run(
            text,
            &[Edit::Field {
                path: vec!["spec".into(), "backoffLimit".into()],
                value: 0.into(),
            }],
        )
        .expect("edits");
        assert_eq!(out, "spec:\n  backoffLimit: 0\n  template:\n    spec: {}\n");
    }

    #[test]
    fn env_in_helm3_and_helm4_indentation() {
        for (containers, item) in [
            (
                "      containers:\n        - name: main\n          image: x\n",
                "        ",
            ),
            (
                "      containers:\n      - name: main\n        image: x\n",
                "      ",
            ),
        ] {
            let text = format!("spec:\n  template:\n    spec:\n{containers}");
            let edit = Edit::ContainerEnv {
                container: "main".into(),
                name: "N".into(),
                value: "60".into(),
            };
            let out = run(&text, std::slice::from_ref(&edit)).expect("adds env");
            assert!(out.contains(&format!("{item}  env:\n")), "{out}");
            let again = run(&out, &[edit]).expect("replaces env");
            assert_eq!(again.matches("\"N\"").count(), 1, "{again}");
        }
    }

    #[test]
    fn env_appends_to_existing_list() {
        let text = "spec:\n  template:\n    spec:\n      containers:\n      - name: main\n        env:\n        - name: NAMESPACE\n          value: ess\n        args: [a]\n";
        let edit = Edit::ContainerEnv {
            container: "main".into(),
            name: "N".into(),
            value: "60".into(),
        };
        let out = run(text, &[edit]).expect("edits");
        assert!(out.contains("        - name: NAMESPACE\n          value: ess\n        - name: \"N\"\n          value: \"60\"\n        args: [a]\n"), "{out}");
    }

    #[test]
    fn skeleton_edits_match_full_edits() {
        let text = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\n  labels:\n    a: b\nspec:\n  replicas: 2\n  template:\n    spec:\n      volumes:\n      - configMap:\n          defaultMode: 0440\n";
        let edits = [
            ann("ess-guard.element.io/restore-replicas", "2"),
            ann("ess-guard.element.io/scaled-down-by", "syn2mas"),
        ];
        let full = run(text, &edits).expect("full");
        let cut = crate::manifest::skeleton::skeleton(text).expect("skeleton");
        let model = yaml::parse_embedded(&cut.text(text)).expect("parses");
        assert_eq!(
            apply_skeleton(text, cut.metadata.clone(), &model, &edits)
                .expect("skeleton")
                .apply_to(text),
            full
        );
        // A wrong model is caught by the skeleton verification.
        let mut wrong = model.clone();
        wrong["metadata"]["name"] = Value::String("other".into());
        assert!(matches!(
            apply_skeleton(text, cut.metadata.clone(), &wrong, &edits),
            Err(EditError::Verification(_))
        ));
        // An edit outside metadata takes the full path.
        let field = [Edit::Field {
            path: vec!["spec".into(), "replicas".into()],
            value: 0.into(),
        }];
        assert_eq!(
            apply_skeleton(text, cut.metadata.clone(), &model, &field)
                .expect("field")
                .apply_to(text),
            run(text, &field).expect("full field")
        );
        // Metadata without annotations, last in the document, without a final newline. The
        // skeleton cutter leaves such a document to the full path; the editor still handles it.
        let text = "kind: StatefulSet\nspec:\n  replicas: 1\nmetadata:\n  name: s";
        assert_eq!(crate::manifest::skeleton::skeleton(text), None);
        let model = yaml::parse_embedded(text).expect("parses");
        let metadata = text.find("metadata:").expect("metadata")..text.len();
        assert_eq!(
            apply_skeleton(text, metadata, &model, &edits)
                .expect("skeleton")
                .apply_to(text),
            run(text, &edits).expect("full")
        );
    }

    #[test]
    fn flow_metadata_is_refused_not_mangled() {
        let err = run("kind: X\nmetadata: {name: a}\n", &[ann("k", "v")]).expect_err("flow");
        assert!(matches!(err, EditError::Unsupported { .. }));
    }
}
