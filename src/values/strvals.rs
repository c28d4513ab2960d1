//! Helm's `--set`, `--set-string`, `--set-json`, `--set-literal` and
//! `--set-file` argument syntax (Helm's `pkg/strvals`), reproduced rule for
//! rule, including its quirks:
//!
//! * `a.b=c` paths, `\.` `\,` `\=` `\[` escapes (any character after `\` is
//!   taken literally; not in `--set-literal`), `a={x,y}` lists, `a[2]=x`
//!   indices that grow a list with nulls, nested `a[0][1]` / `a[0].b[1]`;
//! * `--set` types: `true`/`false`/`null` in any letter case, `0`, and
//!   base-10 int64 not starting with `0` (`+5`, `-07` are ints; `007`,
//!   `0x10`, `1e3`, `1.5` and integers beyond int64 stay strings);
//! * an existing non-map value under `a.b=...` or a non-list under `a[0]=...`
//!   (including `null`) is an error, but `a[0].b=...` replaces a non-map
//!   list element with a map;
//! * `a=` sets "", `--set ''`, `=x` and `.a=x` do nothing, a trailing comma is
//!   allowed, `a` alone is an error, indices above 65536 and more than 30 dots
//!   are errors;
//! * `--set-json` values are one JSON value each, parsed like Go's
//!   `json.Decoder` (numbers become float64; whatever follows the value, after
//!   optional spaces and one comma, starts the next key: `a=1b=2` sets both);
//!   an empty value is `null`;
//! * `--set-literal a.b=x,y` takes everything after the first `=` verbatim.
//!
//! Helm 3 and 4 differ on an index left open at the end (`a[1`, `a[0][1`):
//! Helm 3 reports "error parsing index: EOF", Helm 4 stops parsing that
//! argument without error (keeping what was set so far; `a[0][1` leaves
//! `a: []`). Helm 4 also accepts a whole JSON object as `--set-json`.
//!
//! On error, `values` may have been partly modified (Helm aborts then).

use serde_json::{Map, Value};

use super::merge::{self, HelmVersion, ValuesError};

/// Which `--set` flavour an argument came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetKind {
    /// `--set`: typed values.
    Auto,
    /// `--set-string`: every value is a string.
    String,
    /// `--set-json`: values are JSON.
    Json,
    /// `--set-literal`: the value is the rest of the argument, verbatim.
    Literal,
}

impl SetKind {
    /// The Helm flag name.
    pub fn flag(self) -> &'static str {
        match self {
            SetKind::Auto => "--set",
            SetKind::String => "--set-string",
            SetKind::Json => "--set-json",
            SetKind::Literal => "--set-literal",
        }
    }
}

/// Largest list index Helm accepts.
pub const MAX_INDEX: i64 = 65536;
/// Most dots Helm accepts in one key path.
pub const MAX_NESTED_NAME_LEVEL: usize = 30;
/// Our own limit on key/index nesting (Helm has none) and on JSON nesting
/// (Helm: 10000), so that no input can exhaust the stack; 128 is also the
/// YAML reader's nesting limit.
const MAX_DEPTH: usize = 128;

/// Applies one --set-style argument (which may hold several comma-separated
/// pairs) to `values`, exactly as Helm 3's strvals does; see
/// [`apply_set_for`].
pub fn apply_set(values: &mut Value, expr: &str, kind: SetKind) -> Result<(), ValuesError> {
    apply_set_for(HelmVersion::default(), values, expr, kind)
}

/// [`apply_set`] for a given Helm version. `values` must be a map or null.
pub fn apply_set_for(
    version: HelmVersion,
    values: &mut Value,
    expr: &str,
    kind: SetKind,
) -> Result<(), ValuesError> {
    let flag = kind.flag();
    if kind == SetKind::Json && version == HelmVersion::V4 {
        let trimmed = expr.trim();
        if trimmed.starts_with('{') {
            let chars: Vec<char> = trimmed.chars().collect();
            let mut json = Json::new(&chars, 0);
            let parsed = json.document().map_err(|message| ValuesError::Set {
                flag,
                expr: expr.to_owned(),
                position: json.pos,
                message,
            })?;
            root_map(values, flag, expr)?;
            let base = std::mem::take(values);
            *values = merge::merge_maps(base, parsed);
            return Ok(());
        }
    }
    let mode = match kind {
        SetKind::Auto => Mode::Typed { strings: false },
        SetKind::String => Mode::Typed { strings: true },
        SetKind::Json => Mode::Json,
        SetKind::Literal => Mode::Literal,
    };
    let map = root_map(values, flag, expr)?;
    Parser::new(expr, mode, version)
        .parse(map)
        .map_err(|f| f.into_error(flag, expr))
}

/// --set-file k=path: caller passes a closure that reads the file; value is
/// the file content as string (Helm 3 behaviour; see [`apply_set_file_for`]).
pub fn apply_set_file(
    values: &mut Value,
    expr: &str,
    read: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<(), ValuesError> {
    apply_set_file_for(HelmVersion::default(), values, expr, read)
}

/// [`apply_set_file`] for a given Helm version. `a={p1,p2}` reads both files
/// into a list; paths use the `--set` escapes.
pub fn apply_set_file_for(
    version: HelmVersion,
    values: &mut Value,
    expr: &str,
    read: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<(), ValuesError> {
    let map = root_map(values, "--set-file", expr)?;
    Parser::new(expr, Mode::File(read), version)
        .parse(map)
        .map_err(|f| f.into_error("--set-file", expr))
}

fn root_map<'v>(
    values: &'v mut Value,
    flag: &'static str,
    expr: &str,
) -> Result<&'v mut Map<String, Value>, ValuesError> {
    if values.is_null() {
        *values = Value::Object(Map::new());
    }
    match values {
        Value::Object(map) => Ok(map),
        other => Err(ValuesError::Set {
            flag,
            expr: expr.to_owned(),
            position: 0,
            message: format!("the values to update are {}, not a map", describe(other)),
        }),
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

enum Mode<'r> {
    Typed { strings: bool },
    Json,
    File(&'r mut dyn FnMut(&str) -> Result<String, String>),
    Literal,
}

#[derive(Debug)]
enum FailKind {
    /// Go's bare `io.EOF`: ends the argument successfully.
    Eof,
    /// An error wrapping `io.EOF`: success in Helm 4, an error in Helm 3.
    WrappedEof(String),
    Error(String),
    Read {
        path: String,
        message: String,
    },
}

#[derive(Debug)]
struct Fail {
    kind: FailKind,
    pos: usize,
}

impl Fail {
    fn into_error(self, flag: &'static str, expr: &str) -> ValuesError {
        let message = match self.kind {
            FailKind::Read { path, message } => {
                return ValuesError::SetFileRead {
                    expr: expr.to_owned(),
                    path,
                    message: message.replace('\n', " "),
                }
            }
            FailKind::Eof => "unexpected end of input".to_owned(),
            FailKind::WrappedEof(m) | FailKind::Error(m) => m,
        };
        ValuesError::Set {
            flag,
            expr: expr.to_owned(),
            position: self.pos,
            message,
        }
    }
}

enum ListFail {
    Eof,
    NotList,
    Other(Fail),
}

struct Parser<'r> {
    chars: Vec<char>,
    pos: usize,
    mode: Mode<'r>,
    version: HelmVersion,
    depth: usize,
}

fn set(data: &mut Map<String, Value>, key: &str, val: Value) {
    if !key.is_empty() {
        data.insert(key.to_owned(), val);
    }
}

impl<'r> Parser<'r> {
    fn new(expr: &str, mode: Mode<'r>, version: HelmVersion) -> Self {
        Parser {
            chars: expr.chars().collect(),
            pos: 0,
            mode,
            version,
            depth: 0,
        }
    }

    fn literal(&self) -> bool {
        matches!(self.mode, Mode::Literal)
    }

    fn fail(&self, kind: FailKind) -> Fail {
        Fail {
            kind,
            pos: self.pos,
        }
    }

    fn error(&self, message: String) -> Fail {
        self.fail(FailKind::Error(message))
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    /// Go's `runesUntil`: reads up to (and consuming) a stop character;
    /// `None` means the input ended. Outside `--set-literal`, `\x` is `x`.
    fn until(&mut self, stop: &[char]) -> (String, Option<char>) {
        let escapes = !self.literal();
        let mut v = String::new();
        loop {
            match self.next() {
                None => return (v, None),
                Some(c) if stop.contains(&c) => return (v, Some(c)),
                Some('\\') if escapes => match self.next() {
                    None => return (v, None),
                    Some(c) => v.push(c),
                },
                Some(c) => v.push(c),
            }
        }
    }

    fn enter(&mut self) -> Result<(), Fail> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!(
                "keys and indices nested deeper than {MAX_DEPTH} levels are not supported"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn parse(&mut self, data: &mut Map<String, Value>) -> Result<(), Fail> {
        loop {
            match self.key(data, 0) {
                Ok(()) => {}
                Err(f) => {
                    return match f.kind {
                        FailKind::Eof => Ok(()),
                        FailKind::WrappedEof(_) if self.version == HelmVersion::V4 => Ok(()),
                        _ => Err(f),
                    }
                }
            }
        }
    }

    fn type_error(&self, what: &str, existing: &Value, wanted: &str) -> Fail {
        self.error(format!(
            "unable to parse key: {what} already holds {}, not {wanted}",
            describe(existing)
        ))
    }

    fn key(&mut self, data: &mut Map<String, Value>, level: usize) -> Result<(), Fail> {
        let stop: &[char] = if self.literal() {
            &['=', '[', '.']
        } else {
            &['=', '[', ',', '.']
        };
        let (k, last) = self.until(stop);
        match last {
            None if k.is_empty() => Err(self.fail(FailKind::Eof)),
            None => Err(self.error(format!("key {k:?} has no value"))),
            Some('[') => {
                let i = self.key_index()?;
                self.enter()?;
                let list = match data.get_mut(&k) {
                    None => Vec::new(),
                    // Helm never stores under "", so work on a copy there.
                    Some(Value::Array(a)) if k.is_empty() => a.clone(),
                    Some(Value::Array(a)) => std::mem::take(a),
                    Some(other) => {
                        let e = self.type_error(&format!("{k:?}"), other, "a list");
                        self.leave();
                        return Err(e);
                    }
                };
                let (list, res) = self.list_item(list, i, level);
                self.leave();
                set(data, &k, Value::Array(list));
                res
            }
            Some('=') => self.assign(data, &k),
            Some(',') => {
                set(data, &k, Value::String(String::new()));
                Err(self.error(format!("key {k:?} has no value (cannot end with ,)")))
            }
            Some(_) => {
                // '.': descend into a map.
                let level = level + 1;
                if level > MAX_NESTED_NAME_LEVEL {
                    return Err(self.error(format!(
                        "value name nested level is greater than maximum supported nested level of {MAX_NESTED_NAME_LEVEL}"
                    )));
                }
                self.enter()?;
                let no_value = |p: &Self| p.error(format!("key map {k:?} has no value"));
                let res = match data.get_mut(&k) {
                    Some(Value::Object(inner)) => {
                        let e = self.key(inner, level);
                        if e.is_ok() && inner.is_empty() {
                            Err(no_value(self))
                        } else {
                            e
                        }
                    }
                    Some(other) => Err(self.type_error(&format!("{k:?}"), other, "a map")),
                    None => {
                        let mut inner = Map::new();
                        let e = self.key(&mut inner, level);
                        if e.is_ok() && inner.is_empty() {
                            Err(no_value(self))
                        } else {
                            if !inner.is_empty() {
                                set(data, &k, Value::Object(inner));
                            }
                            e
                        }
                    }
                };
                self.leave();
                res
            }
        }
    }

    /// `key=...`
    fn assign(&mut self, data: &mut Map<String, Value>, k: &str) -> Result<(), Fail> {
        match self.mode {
            Mode::Json => {
                if self.empty_val() {
                    set(data, k, Value::Null);
                    return Ok(());
                }
                let v = self.json_value()?;
                set(data, k, v);
                self.empty_val();
                Ok(())
            }
            Mode::Literal => {
                let v = self.rest();
                set(data, k, Value::String(v));
                Ok(())
            }
            Mode::Typed { .. } | Mode::File(_) => match self.val_list() {
                Ok(list) => {
                    set(data, k, Value::Array(list));
                    Ok(())
                }
                Err(ListFail::Eof) => {
                    set(data, k, Value::String(String::new()));
                    Err(self.fail(FailKind::Eof))
                }
                Err(ListFail::NotList) => {
                    let rs = self.val();
                    let v = self.read(&rs)?;
                    set(data, k, v);
                    Ok(())
                }
                Err(ListFail::Other(f)) => Err(f),
            },
        }
    }

    fn key_index(&mut self) -> Result<i64, Fail> {
        let (v, last) = self.until(&[']']);
        if last.is_none() {
            return Err(self.fail(FailKind::WrappedEof(
                "error parsing index: EOF (missing ']')".to_owned(),
            )));
        }
        v.parse::<i64>().map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            self.error(format!("error parsing index: parsing {v:?}: {why}"))
        })
    }

    fn set_index(
        &self,
        mut list: Vec<Value>,
        index: i64,
        val: Value,
    ) -> (Vec<Value>, Result<(), Fail>) {
        if let Err(e) = self.check_index(index) {
            return (list, Err(e));
        }
        let Ok(idx) = usize::try_from(index) else {
            return (
                list,
                Err(self.error(format!("index {index} is out of range"))),
            );
        };
        if list.len() <= idx {
            list.resize(idx + 1, Value::Null);
        }
        if let Some(slot) = list.get_mut(idx) {
            *slot = val;
        }
        (list, Ok(()))
    }

    fn check_index(&self, index: i64) -> Result<(), Fail> {
        if index < 0 {
            return Err(self.error(format!("negative {index} index not allowed")));
        }
        if index > MAX_INDEX {
            return Err(self.error(format!(
                "index of {index} is greater than maximum supported index of {MAX_INDEX}"
            )));
        }
        Ok(())
    }

    /// Go's `listItem`: what follows `[i]`.
    fn list_item(
        &mut self,
        list: Vec<Value>,
        i: i64,
        level: usize,
    ) -> (Vec<Value>, Result<(), Fail>) {
        if i < 0 {
            let e = self.error(format!("negative {i} index not allowed"));
            return (list, Err(e));
        }
        let (k, last) = self.until(&['[', '.', '=']);
        if !k.is_empty() {
            let e = self.error(format!("unexpected data at end of array index: {k:?}"));
            return (list, Err(e));
        }
        let slot_index = usize::try_from(i).ok();
        match last {
            None => {
                let e = self.fail(FailKind::Eof);
                (list, Err(e))
            }
            Some('=') => self.assign_index(list, i),
            Some('[') => {
                let next_i = match self.key_index() {
                    Ok(n) => n,
                    Err(f) => return (list, Err(f)),
                };
                if let Err(f) = self.enter() {
                    return (list, Err(f));
                }
                let mut list = list;
                let mut had_list = false;
                let current = match slot_index.and_then(|u| list.get_mut(u)) {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => {
                        had_list = true;
                        std::mem::take(a)
                    }
                    Some(other) => {
                        let e = self.type_error(&format!("index {i}"), other, "a list");
                        self.leave();
                        return (list, Err(e));
                    }
                };
                let (inner, res) = self.list_item(current, next_i, level);
                self.leave();
                if let Err(f) = res {
                    // Go shares the inner slice: put it back as it is.
                    if had_list {
                        if let Some(slot) = slot_index.and_then(|u| list.get_mut(u)) {
                            *slot = Value::Array(inner);
                        }
                    }
                    return (list, Err(f));
                }
                self.set_index(list, i, Value::Array(inner))
            }
            Some(_) => {
                // '.': a map inside the list.
                let mut list = list;
                if let Some(slot) = slot_index.and_then(|u| list.get_mut(u)) {
                    if !slot.is_object() {
                        // Helm: "indices out of order", start a fresh map.
                        *slot = Value::Object(Map::new());
                    }
                    let res = match slot {
                        Value::Object(inner) => self.key(inner, level),
                        _ => Ok(()),
                    };
                    if let Err(f) = res {
                        return (list, Err(f));
                    }
                    match self.check_index(i) {
                        Ok(()) => (list, Ok(())),
                        Err(e) => (list, Err(e)),
                    }
                } else {
                    let mut inner = Map::new();
                    if let Err(f) = self.key(&mut inner, level) {
                        return (list, Err(f));
                    }
                    self.set_index(list, i, Value::Object(inner))
                }
            }
        }
    }

    /// `[i]=...`
    fn assign_index(&mut self, list: Vec<Value>, i: i64) -> (Vec<Value>, Result<(), Fail>) {
        match self.mode {
            Mode::Json => {
                if self.empty_val() {
                    return self.set_index(list, i, Value::Null);
                }
                let v = match self.json_value() {
                    Ok(v) => v,
                    Err(f) => return (list, Err(f)),
                };
                let (list, res) = self.set_index(list, i, v);
                if res.is_ok() {
                    self.empty_val();
                }
                (list, res)
            }
            Mode::Literal => {
                let v = self.rest();
                self.set_index(list, i, Value::String(v))
            }
            Mode::Typed { .. } | Mode::File(_) => match self.val_list() {
                Ok(vl) => self.set_index(list, i, Value::Array(vl)),
                Err(ListFail::Eof) => self.set_index(list, i, Value::String(String::new())),
                Err(ListFail::NotList) => {
                    let rs = self.val();
                    match self.read(&rs) {
                        Ok(v) => self.set_index(list, i, v),
                        Err(f) => (list, Err(f)),
                    }
                }
                Err(ListFail::Other(f)) => (list, Err(f)),
            },
        }
    }

    /// Go's `valList`: `{a,b,c}`.
    fn val_list(&mut self) -> Result<Vec<Value>, ListFail> {
        match self.next() {
            None => return Err(ListFail::Eof),
            Some('{') => {}
            Some(_) => {
                self.unread();
                return Err(ListFail::NotList);
            }
        }
        let mut list = Vec::new();
        loop {
            let (rs, last) = self.until(&[',', '}']);
            match last {
                None => {
                    return Err(ListFail::Other(
                        self.error("list must terminate with '}'".to_owned()),
                    ))
                }
                Some('}') => {
                    if let Some(c) = self.next() {
                        if c != ',' {
                            self.unread();
                        }
                    }
                    let v = self.read(&rs).map_err(ListFail::Other)?;
                    list.push(v);
                    return Ok(list);
                }
                Some(_) => {
                    let v = self.read(&rs).map_err(ListFail::Other)?;
                    list.push(v);
                }
            }
        }
    }

    fn val(&mut self) -> String {
        self.until(&[',']).0
    }

    fn rest(&mut self) -> String {
        let s: String = self
            .chars
            .get(self.pos..)
            .unwrap_or_default()
            .iter()
            .collect();
        self.pos = self.chars.len();
        s
    }

    /// Go's `emptyVal`: skips spaces; true at the end or after a comma.
    fn empty_val(&mut self) -> bool {
        loop {
            match self.next() {
                None | Some(',') => return true,
                Some(c) if c.is_whitespace() => {}
                Some(_) => {
                    self.unread();
                    return false;
                }
            }
        }
    }

    fn json_value(&mut self) -> Result<Value, Fail> {
        let mut json = Json::new(&self.chars, self.pos);
        match json.value() {
            Ok(v) => {
                self.pos = json.pos;
                Ok(v)
            }
            Err(message) => Err(Fail {
                kind: FailKind::Error(message),
                pos: json.pos,
            }),
        }
    }

    fn read(&mut self, rs: &str) -> Result<Value, Fail> {
        let pos = self.pos;
        match &mut self.mode {
            Mode::Typed { strings } => Ok(typed_val(rs, *strings)),
            Mode::File(read) => read(rs).map(Value::String).map_err(|message| Fail {
                kind: FailKind::Read {
                    path: rs.to_owned(),
                    message,
                },
                pos,
            }),
            Mode::Json | Mode::Literal => Ok(Value::String(rs.to_owned())),
        }
    }
}

/// Go's `strings.EqualFold` against an ASCII lower-case word.
fn eq_fold(s: &str, word: &str) -> bool {
    let mut a = s.chars();
    let mut b = word.chars();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                let same = x.to_ascii_lowercase() == y
                    || (y == 's' && x == '\u{17F}')
                    || (y == 'k' && x == '\u{212A}');
                if !same {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Helm's `typedVal`.
fn typed_val(s: &str, strings: bool) -> Value {
    if strings {
        return Value::String(s.to_owned());
    }
    if eq_fold(s, "true") {
        return Value::Bool(true);
    }
    if eq_fold(s, "false") {
        return Value::Bool(false);
    }
    if eq_fold(s, "null") {
        return Value::Null;
    }
    if s == "0" {
        return Value::from(0i64);
    }
    if !s.is_empty() && !s.starts_with('0') {
        if let Ok(i) = s.parse::<i64>() {
            return Value::from(i);
        }
    }
    Value::String(s.to_owned())
}

/// A JSON reader with the semantics of Go's `encoding/json` decoding into
/// `interface{}`: numbers are float64, invalid surrogate escapes become
/// U+FFFD, later duplicate keys win, and [`Json::value`] stops right after
/// the first value as `json.Decoder` does.
struct Json<'a> {
    s: &'a [char],
    pos: usize,
    depth: usize,
}

impl<'a> Json<'a> {
    fn new(s: &'a [char], pos: usize) -> Self {
        Json { s, pos, depth: 0 }
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.pos += 1;
        }
    }

    fn unexpected(&self, context: &str) -> String {
        match self.peek() {
            None => "unexpected end of JSON input".to_owned(),
            Some(c) => format!("invalid character {c:?} {context}"),
        }
    }

    /// A whole document: one value and nothing but whitespace after it.
    fn document(&mut self) -> Result<Value, String> {
        self.ws();
        let v = self.value()?;
        self.ws();
        if self.peek().is_some() {
            return Err(self.unexpected("after top-level value"));
        }
        Ok(v)
    }

    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.peek() {
            Some('{') => self.nested(Self::object),
            Some('[') => self.nested(Self::array),
            Some('"') => self.string().map(Value::String),
            Some('t') => self.literal("true", Value::Bool(true)),
            Some('f') => self.literal("false", Value::Bool(false)),
            Some('n') => self.literal("null", Value::Null),
            Some('-' | '0'..='9') => self.number(),
            _ => Err(self.unexpected("looking for beginning of value")),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<Value, String>) -> Result<Value, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("JSON nested deeper than {MAX_DEPTH} levels"));
        }
        self.depth += 1;
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
        for expected in word.chars() {
            if self.peek() != Some(expected) {
                return Err(self.unexpected(&format!("in literal {word} (expecting {expected:?})")));
            }
            self.pos += 1;
        }
        Ok(v)
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some('0'..='9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        match self.peek() {
            Some('0') => self.pos += 1,
            Some('1'..='9') => {
                self.digits();
            }
            _ => return Err(self.unexpected("in numeric literal")),
        }
        if self.peek() == Some('.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.unexpected("after decimal point in numeric literal"));
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.unexpected("in exponent of numeric literal"));
            }
        }
        let text: String = self
            .s
            .get(start..self.pos)
            .unwrap_or_default()
            .iter()
            .collect();
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(merge::number_from_f64(f)),
            _ => Err(format!(
                "cannot unmarshal number {text} into Go value of type float64"
            )),
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let digits = self.s.get(at..at + 4)?;
        let mut n = 0u32;
        for c in digits {
            n = n * 16 + c.to_digit(16)?;
        }
        Some(n)
    }

    fn string(&mut self) -> Result<String, String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err("unexpected end of JSON input".to_owned());
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                '\\' => {
                    self.pos += 1;
                    let Some(e) = self.peek() else {
                        return Err("unexpected end of JSON input".to_owned());
                    };
                    self.pos += 1;
                    match e {
                        '"' | '\\' | '/' => out.push(e),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let Some(code) = self.hex4(self.pos) else {
                                return Err(
                                    "invalid character in \\u hexadecimal character escape"
                                        .to_owned(),
                                );
                            };
                            self.pos += 4;
                            out.push(self.surrogate(code));
                        }
                        other => {
                            self.pos -= 1;
                            return Err(format!(
                                "invalid character {other:?} in string escape code"
                            ));
                        }
                    }
                }
                c if (c as u32) < 0x20 => {
                    return Err(format!("invalid character {c:?} in string literal"));
                }
                c => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
    }

    /// Go: a valid surrogate pair is combined; anything else is U+FFFD.
    fn surrogate(&mut self, code: u32) -> char {
        if (0xD800..0xDC00).contains(&code)
            && self.s.get(self.pos) == Some(&'\\')
            && self.s.get(self.pos + 1) == Some(&'u')
        {
            if let Some(low) = self.hex4(self.pos + 2) {
                if (0xDC00..0xE000).contains(&low) {
                    self.pos += 6;
                    let combined = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    return char::from_u32(combined).unwrap_or('\u{FFFD}');
                }
            }
        }
        char::from_u32(code).unwrap_or('\u{FFFD}')
    }

    fn array(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(']') {
            self.pos += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected("after array element")),
            }
        }
    }

    fn object(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut map = Map::new();
        self.ws();
        if self.peek() == Some('}') {
            self.pos += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.ws();
            if self.peek() != Some('"') {
                return Err(self.unexpected("looking for beginning of object key string"));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(':') {
                return Err(self.unexpected("after object key"));
            }
            self.pos += 1;
            let v = self.value()?;
            map.insert(key, v);
            self.ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some('}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.unexpected("after object key:value pair")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn run(version: HelmVersion, start: Value, args: &[(SetKind, &str)]) -> Result<Value, String> {
        let mut v = start;
        for (kind, expr) in args {
            apply_set_for(version, &mut v, expr, *kind).map_err(|e| e.to_string())?;
        }
        Ok(v)
    }

    fn set3(expr: &str) -> Result<Value, String> {
        run(HelmVersion::V3, json!({}), &[(SetKind::Auto, expr)])
    }

    fn ok(r: Result<Value, String>) -> Value {
        match r {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    #[test]
    fn typed_values() {
        let v = ok(set3(
            "a=0x10,b=1e3,c=007,d=TRUE,e=Null,f=-07,g=+5,h=9223372036854775807,\
             i=9223372036854775808,j=-0,k=falſe,l=0,m=1.5,n=,o=true",
        ));
        assert_eq!(
            v,
            json!({"a": "0x10", "b": "1e3", "c": "007", "d": true, "e": null, "f": -7, "g": 5,
                   "h": 9223372036854775807i64, "i": "9223372036854775808", "j": 0, "k": false,
                   "l": 0, "m": "1.5", "n": "", "o": true})
        );
        let s = ok(run(
            HelmVersion::V3,
            json!({}),
            &[(SetKind::String, "a=true,b=5,c=null")],
        ));
        assert_eq!(s, json!({"a": "true", "b": "5", "c": "null"}));
    }

    #[test]
    fn paths_lists_and_escapes() {
        assert_eq!(
            ok(set3("a.b.c=1,a.b.d=x")),
            json!({"a": {"b": {"c": 1, "d": "x"}}})
        );
        assert_eq!(ok(set3("a[2]=x")), json!({"a": [null, null, "x"]}));
        assert_eq!(ok(set3("a[0].b[1]=c")), json!({"a": [{"b": [null, "c"]}]}));
        assert_eq!(ok(set3("a[1][0]=1")), json!({"a": [null, [1]]}));
        assert_eq!(ok(set3("a={1,x,true}")), json!({"a": [1, "x", true]}));
        assert_eq!(ok(set3("a={},b={,}")), json!({"a": [""], "b": ["", ""]}));
        assert_eq!(ok(set3("a[0]={1,2}")), json!({"a": [[1, 2]]}));
        assert_eq!(
            ok(set3(r"a\.b=1,c\,d=2,e\=f=3,g=x\,y")),
            json!({"a.b": 1, "c,d": 2, "e=f": 3, "g": "x,y"})
        );
        assert_eq!(ok(set3("a=b=c,d=x{y}")), json!({"a": "b=c", "d": "x{y}"}));
        assert_eq!(ok(set3("a[+1]=1")), json!({"a": [null, 1]}));
        assert_eq!(
            ok(set3("a[1].b=1,a[0].c=2")),
            json!({"a": [{"c": 2}, {"b": 1}]})
        );
    }

    #[test]
    fn silent_no_ops_and_edge_results() {
        for expr in ["", "=5", ".a=1", "a.", "a=b,"] {
            let v = ok(set3(expr));
            assert!(v == json!({}) || v == json!({"a": "b"}), "{expr:?} -> {v}");
        }
        assert_eq!(ok(set3("a[0]")), json!({"a": []}));
        assert_eq!(ok(set3("a=b\\")), json!({"a": "b"}));
        let big = ok(set3("a[65536]=1"));
        assert_eq!(big["a"].as_array().map(Vec::len), Some(65537));
    }

    #[test]
    fn errors() {
        for expr in [
            "a",
            "a\\",
            "a.b",
            "a..b=1",
            "a.=1",
            "a=b,,c=d",
            "a[-1]=1",
            "a[65537]=1",
            "a[x]=1",
            "a[ 1]=1",
            "a[0]x=1",
            "a={x",
            "a={a,b}c,d=1",
            "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.aa.ab.ac.ad.ae.af=1",
        ] {
            let err = set3(expr).err();
            let msg = err.unwrap_or_else(|| panic!("{expr:?} should fail"));
            assert!(msg.contains("--set") && !msg.contains('\n'), "{msg}");
        }
        // 30 dots are fine.
        let thirty: Vec<String> = (0..31).map(|i| format!("k{i}")).collect();
        assert!(set3(&format!("{}=1", thirty.join("."))).is_ok());
    }

    #[test]
    fn existing_values_must_have_the_right_shape() {
        let base = json!({"s": "str", "n": null, "m": {"x": 1}, "l": [1, 2]});
        for expr in [
            "s.b=1",
            "n.b=1",
            "s[0]=1",
            "n[0]=1",
            "m[0]=1",
            "l[0][0]=1",
            "l.x=1",
        ] {
            let r = run(HelmVersion::V3, base.clone(), &[(SetKind::Auto, expr)]);
            assert!(r.is_err(), "{expr:?} should fail");
        }
        let v = ok(run(
            HelmVersion::V3,
            base.clone(),
            &[(SetKind::Auto, "l[0].x=1,l[3]=z")],
        ));
        assert_eq!(v["l"], json!([{"x": 1}, 2, null, "z"]));
        let v = ok(run(
            HelmVersion::V3,
            json!({}),
            &[(SetKind::Auto, "x[0]=null"), (SetKind::Auto, "x[0][1]=2")],
        ));
        assert_eq!(v, json!({"x": [[null, 2]]}));
    }

    #[test]
    fn unterminated_index_differs_between_versions() {
        for expr in ["a[1", "a[0][1", "a.b[2"] {
            assert!(set3(expr).is_err(), "{expr:?}");
            let lit = run(HelmVersion::V3, json!({}), &[(SetKind::Literal, expr)]);
            assert!(lit.is_err());
        }
        let v4 = |e: &str| ok(run(HelmVersion::V4, json!({}), &[(SetKind::Auto, e)]));
        assert_eq!(v4("a[1"), json!({}));
        assert_eq!(v4("a[0][1"), json!({"a": []}));
        assert_eq!(v4("x=1,a[1"), json!({"x": 1}));
    }

    #[test]
    fn json_values() {
        let j = |e: &str| run(HelmVersion::V3, json!({}), &[(SetKind::Json, e)]);
        assert_eq!(ok(j(r#"a=[1,{"b":2}]"#)), json!({"a": [1, {"b": 2}]}));
        assert_eq!(ok(j("a=1b=2")), json!({"a": 1, "b": 2}));
        assert_eq!(ok(j(r#"a="x"b=2"#)), json!({"a": "x", "b": 2}));
        assert_eq!(
            ok(j("a=,b= ,c=null")),
            json!({"a": null, "b": null, "c": null})
        );
        assert_eq!(ok(j("a=  [1, 2] , b=3")), json!({"a": [1, 2], " b": 3}));
        assert_eq!(
            ok(j("a=1.0,c=0.1,d=1E+2")),
            json!({"a": 1, "c": 0.1, "d": 100})
        );
        assert_eq!(
            ok(j(r#"a="\ud800x\u00e9\ud83d\ude00""#)),
            json!({"a": "\u{FFFD}xé😀"})
        );
        assert_eq!(ok(j(r#"a={"k":1,"k":2}"#)), json!({"a": {"k": 2}}));
        assert_eq!(
            ok(j(r#"a.b[1]={"c":true}"#)),
            json!({"a": {"b": [null, {"c": true}]}})
        );
        assert_eq!(ok(j("a[0]=,a[2]=3")), json!({"a": [null, null, 3]}));
        let big = ok(j("b=12345678901234567890"));
        assert_eq!(big["b"].as_f64(), Some(12345678901234567890.0));
        for bad in [
            "a=truex",
            "a=1e400",
            "a=[1,",
            "a=01",
            "a=x",
            "a=1 2",
            "a=\"\\q\"",
        ] {
            assert!(j(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_object_form_is_helm4_only() {
        let arg = [(SetKind::Json, r#" {"a": {"b": 1}, "c": null} "#)];
        let start = json!({"a": {"x": 1}});
        assert!(run(HelmVersion::V3, start.clone(), &arg).is_err());
        let v = ok(run(HelmVersion::V4, start.clone(), &arg));
        assert_eq!(v, json!({"a": {"x": 1, "b": 1}, "c": null}));
        assert!(run(HelmVersion::V4, start, &[(SetKind::Json, r#"{"a": 1} x"#)]).is_err());
    }

    #[test]
    fn literal_values() {
        let l = |e: &str| run(HelmVersion::V3, json!({}), &[(SetKind::Literal, e)]);
        assert_eq!(ok(l(r"a=x,y=z\.{}[0]")), json!({"a": r"x,y=z\.{}[0]"}));
        assert_eq!(ok(l("a.b[1]=c,d")), json!({"a": {"b": [null, "c,d"]}}));
        assert_eq!(ok(l(r"a\.b=c")), json!({"a\\": {"b": "c"}}));
        assert_eq!(ok(l("a=null,")), json!({"a": "null,"}));
        assert_eq!(ok(l("a,b=c")), json!({"a,b": "c"}));
        assert_eq!(ok(l("a[0]")), json!({"a": []}));
        assert!(l("a").is_err());
        assert!(l("a[0].b.=1").is_err());
    }

    #[test]
    fn set_file_reads_each_path() {
        let mut seen = Vec::new();
        let mut read = |p: &str| -> Result<String, String> {
            seen.push(p.to_owned());
            if p == "bad" {
                Err("no such file".to_owned())
            } else {
                Ok(format!("<{p}>"))
            }
        };
        let mut v = json!({});
        let r = apply_set_file(&mut v, r"a=x\,y,b={p,q},c[1]=r", &mut read);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(
            v,
            json!({"a": "<x,y>", "b": ["<p>", "<q>"], "c": [null, "<r>"]})
        );
        let err = apply_set_file(&mut v, "a=bad", &mut read).err();
        assert!(matches!(err, Some(ValuesError::SetFileRead { ref path, .. }) if path == "bad"));
        assert_eq!(seen, ["x,y", "p", "q", "r", "bad"]);
    }

    #[test]
    fn error_names_expression_and_position() {
        let mut v = json!({});
        let err = apply_set(&mut v, "a=1,b[x]=2", SetKind::Auto).err();
        match err {
            Some(ValuesError::Set {
                flag,
                expr,
                position,
                ..
            }) => {
                assert_eq!((flag, expr.as_str(), position), ("--set", "a=1,b[x]=2", 8));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn non_map_root_is_an_error_not_a_panic() {
        let mut v = json!([1]);
        assert!(apply_set(&mut v, "a=1", SetKind::Auto).is_err());
        let mut v = Value::Null;
        assert!(apply_set(&mut v, "a=1", SetKind::Auto).is_ok());
        assert_eq!(v, json!({"a": 1}));
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowing() {
        let deep = format!("a{}=1", "[0]".repeat(40_000));
        assert!(set3(&deep).is_err());
        let deep_json = format!("a={}", "[".repeat(40_000));
        assert!(run(HelmVersion::V3, json!({}), &[(SetKind::Json, &deep_json)]).is_err());
        let ok_depth = format!("a{}=1", "[0]".repeat(120));
        assert!(set3(&ok_depth).is_ok());
        let ok_json = format!("a={}{}", "[".repeat(120), "]".repeat(120));
        assert!(run(HelmVersion::V3, json!({}), &[(SetKind::Json, &ok_json)]).is_ok());
        let ok_depth = format!("a{}=1", "[0]".repeat(200));
        assert!(set3(&ok_depth).is_err());
    }

    proptest! {
        #[test]
        fn apply_set_never_panics(expr in "\\PC{0,40}", kind in 0..4u8, v4 in any::<bool>()) {
            let kind = [SetKind::Auto, SetKind::String, SetKind::Json, SetKind::Literal][kind as usize];
            let version = if v4 { HelmVersion::V4 } else { HelmVersion::V3 };
            let mut v = json!({"a": [1, {"b": null}], "s": "x", "m": {"k": [[]]}});
            let _ = apply_set_for(version, &mut v, &expr, kind);
            prop_assert!(v.is_object());
        }

        #[test]
        fn apply_set_never_panics_on_syntax_soup(
            expr in "[a-c0-2=.,\\[\\]{}\\\\\" -]{0,60}", kind in 0..4u8, v4 in any::<bool>()
        ) {
            let kind = [SetKind::Auto, SetKind::String, SetKind::Json, SetKind::Literal][kind as usize];
            let version = if v4 { HelmVersion::V4 } else { HelmVersion::V3 };
            let mut v = json!({"a": [1, {"b": null}], "b": "x", "c": {"a": [[]]}});
            let _ = apply_set_for(version, &mut v, &expr, kind);
            let mut read = |p: &str| -> Result<String, String> {
                if p.len().is_multiple_of(2) { Ok(p.to_owned()) } else { Err("odd".to_owned()) }
            };
            let _ = apply_set_file_for(version, &mut v, &expr, &mut read);
        }

        #[test]
        fn simple_assignments_round_trip(key in "[a-z]{1,8}", val in "[a-zA-Z][a-zA-Z ]{0,10}") {
            let mut v = json!({});
            let expr = format!("{key}={val}");
            prop_assert!(apply_set(&mut v, &expr, SetKind::String).is_ok());
            prop_assert_eq!(&v[&key], &json!(val));
        }
    }
}
