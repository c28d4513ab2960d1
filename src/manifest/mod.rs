//! The manifest stream model: a Helm render as a list of documents, each with its raw text, where
//! it came from, what it is, and whether it is a hook.
//!
//! Reading keeps every byte of the input so that output can pass untouched documents through
//! unchanged ([`Stream::write`]). Both post-renderer input formats are understood:
//! Helm 3 (`---` + `# Source:` comments, hooks absent) and Helm 4 (no outer separators, no
//! comments, a `postrenderer.helm.sh/postrender-filename` annotation on every document, hooks
//! included), as well as plain `helm template` output.

pub mod edit;
pub mod simple;
pub mod skeleton;
pub mod split;
pub mod validate;
pub mod yaml;

use std::fmt;

use serde_json::Value;

pub use split::Chunk;

/// The annotation Helm 4 puts on every document it hands to a post-renderer.
pub const HELM4_FILENAME_ANNOTATION: &str = "postrenderer.helm.sh/postrender-filename";
const HOOK_ANNOTATION: &str = "helm.sh/hook";
const HOOK_WEIGHT_ANNOTATION: &str = "helm.sh/hook-weight";
const HOOK_DELETE_ANNOTATION: &str = "helm.sh/hook-delete-policy";

/// Which producer wrote the stream; it decides whether hooks are visible and how added
/// documents must be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Helm 3 post-renderer input: hooks were split off before ess-guard was called.
    Helm3,
    /// Helm 4 post-renderer input: every document, hooks included, with the filename annotation.
    Helm4,
    /// `helm template` output or hand-written YAML: hooks are visible when the chart has any.
    Template,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Helm3 => "helm3",
            Format::Helm4 => "helm4",
            Format::Template => "template",
        }
    }
}

/// `apiVersion`, `kind`, namespace and name: what a resource is, independent of its position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ResourceId {
    /// The API group (`""` for the core group), which with kind/namespace/name identifies a
    /// resource across apiVersion bumps.
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(group, _)| group)
            .unwrap_or("")
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Hook facts from the `helm.sh/hook*` annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The phases, e.g. `pre-install`, `pre-upgrade`.
    pub phases: Vec<String>,
    /// `helm.sh/hook-weight`, 0 when absent (Helm's default).
    pub weight: i64,
    pub delete_policies: Vec<String>,
}

impl Hook {
    /// True when the hook runs before the release's resources are applied on upgrade.
    pub fn is_pre_upgrade(&self) -> bool {
        self.phases.iter().any(|p| p == "pre-upgrade")
    }
    pub fn is_post_upgrade(&self) -> bool {
        self.phases.iter().any(|p| p == "post-upgrade")
    }
    pub fn phase_list(&self) -> String {
        self.phases.join(",")
    }
}

/// One Kubernetes object from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: ResourceId,
    pub value: Value,
    pub hook: Option<Hook>,
}

impl Resource {
    /// Reads a JSON value as a resource; `what` names it in errors.
    fn from_value(value: Value) -> Result<Resource, String> {
        let Value::Object(map) = &value else {
            return Err(format!("expected a mapping, found {}", type_name(&value)));
        };
        let kind = match map.get("kind") {
            Some(Value::String(kind)) if !kind.is_empty() => kind.clone(),
            Some(other) => {
                return Err(format!(
                    "field `kind` must be a non-empty string, found {}",
                    type_name(other)
                ))
            }
            None => return Err("field `kind` is missing".to_string()),
        };
        let api_version = match map.get("apiVersion") {
            Some(Value::String(v)) if !v.is_empty() => v.clone(),
            Some(other) => {
                return Err(format!(
                    "field `apiVersion` must be a non-empty string, found {}",
                    type_name(other)
                ))
            }
            None => return Err(format!("{kind}: field `apiVersion` is missing")),
        };
        let metadata = match map.get("metadata") {
            Some(Value::Object(m)) => Some(m),
            Some(Value::Null) | None => None,
            Some(other) => {
                return Err(format!(
                    "{kind}: field `metadata` must be a mapping, found {}",
                    type_name(other)
                ))
            }
        };
        let field = |name: &str| -> Result<Option<String>, String> {
            match metadata.and_then(|m| m.get(name)) {
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Null) | None => Ok(None),
                Some(other) => Err(format!(
                    "{kind}: field `metadata.{name}` must be a string, found {}",
                    type_name(other)
                )),
            }
        };
        let name = match (field("name")?, field("generateName")?) {
            (Some(name), _) => name,
            (None, Some(prefix)) => format!("{prefix}*"),
            (None, None) if kind == "List" => String::new(),
            (None, None) => return Err(format!("{kind}: field `metadata.name` is missing")),
        };
        let namespace = field("namespace")?;
        if let Some(annotations) = metadata.and_then(|m| m.get("annotations")) {
            if !annotations.is_null() && !annotations.is_object() {
                return Err(format!(
                    "{kind} {name}: `metadata.annotations` must be a mapping, found {}",
                    type_name(annotations)
                ));
            }
        }
        if let Some(labels) = metadata.and_then(|m| m.get("labels")) {
            if !labels.is_null() && !labels.is_object() {
                return Err(format!(
                    "{kind} {name}: `metadata.labels` must be a mapping, found {}",
                    type_name(labels)
                ));
            }
        }
        if matches!(kind.as_str(), "StatefulSet" | "Deployment" | "ReplicaSet") {
            // `get` twice: cheaper than `pointer`, which allocates per segment.
            match value.get("spec").and_then(|s| s.get("replicas")) {
                None | Some(Value::Null) => {}
                Some(Value::Number(n))
                    if n.as_i64()
                        .is_some_and(|r| (0..=i32::MAX as i64).contains(&r)) => {}
                Some(other) => {
                    return Err(format!(
                        "{kind} {name}: `spec.replicas` must be a non-negative integer, found {}",
                        describe_scalar(other)
                    ))
                }
            }
        }
        let hook = hook_from(&value).map_err(|e| format!("{kind} {name}: {e}"))?;
        Ok(Resource {
            id: ResourceId {
                api_version,
                kind,
                namespace,
                name,
            },
            value,
            hook,
        })
    }

    pub fn kind(&self) -> &str {
        &self.id.kind
    }
    pub fn name(&self) -> &str {
        &self.id.name
    }

    /// A label value, if set to a string.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.value
            .get("metadata")?
            .get("labels")?
            .get(key)?
            .as_str()
    }

    /// An annotation value, if set to a string.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.value
            .get("metadata")?
            .get("annotations")?
            .get(key)?
            .as_str()
    }

    /// The string entries of a ConfigMap's or Secret's `data` (Secret values still base64).
    pub fn data(&self) -> impl Iterator<Item = (&str, &str)> {
        self.value
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
            })
    }
}

fn hook_from(value: &Value) -> Result<Option<Hook>, String> {
    // `get` twice rather than `pointer("/metadata/annotations")`: serde_json's `pointer`
    // allocates an unescaped copy of every path segment, and this runs for every resource read.
    let annotations = value
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object);
    let Some(annotations) = annotations else {
        return Ok(None);
    };
    let Some(phases) = annotations.get(HOOK_ANNOTATION) else {
        return Ok(None);
    };
    let phases = phases
        .as_str()
        .ok_or_else(|| format!("annotation {HOOK_ANNOTATION} must be a string"))?;
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    let weight = match annotations.get(HOOK_WEIGHT_ANNOTATION) {
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) if s.trim().is_empty() => 0,
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| {
            format!("annotation {HOOK_WEIGHT_ANNOTATION} must be an integer string, found {s:?}")
        })?,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(_) => {
            return Err(format!(
                "annotation {HOOK_WEIGHT_ANNOTATION} must be a string"
            ))
        }
    };
    let delete_policies = annotations
        .get(HOOK_DELETE_ANNOTATION)
        .and_then(Value::as_str)
        .map(split)
        .unwrap_or_default();
    Ok(Some(Hook {
        phases: split(phases),
        weight,
        delete_policies,
    }))
}

/// What one document holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Empty or comment-only: kept as-is.
    Empty,
    /// One object.
    Resource(Resource),
    /// A `kind: List` and its items.
    List(Vec<Resource>),
    /// A document whose kind does not matter to ess-guard and that was not parsed (fast path).
    Opaque { kind: String },
}

/// One document of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Position in the stream, from 0.
    pub index: usize,
    /// Where the bytes are in the input.
    pub chunk: Chunk,
    /// The template path from the `# Source:` comment or the Helm 4 filename annotation.
    pub source: Option<String>,
    pub body: Body,
    /// Mapping keys that occurred twice in this document (last wins).
    pub duplicate_keys: Vec<String>,
    /// Set when the model holds only the document's skeleton (`apiVersion`, `kind`, `metadata`,
    /// `spec.replicas`; see [`skeleton`]), which is all the guard reads of it: where the
    /// `metadata` entry is in the body text. Only in [`ParseMode::Relevant`].
    pub skeleton: Option<std::ops::Range<usize>>,
}

impl Document {
    /// The objects in this document (a List's items, a single resource, or nothing).
    pub fn resources(&self) -> &[Resource] {
        match &self.body {
            Body::Resource(r) => std::slice::from_ref(r),
            Body::List(items) => items,
            Body::Empty | Body::Opaque { .. } => &[],
        }
    }

    /// A short label for messages: `document 3 (chart/templates/x.yaml)`.
    pub fn label(&self) -> String {
        match &self.source {
            Some(source) => format!("document {} ({source})", self.index + 1),
            None => format!("document {}", self.index + 1),
        }
    }
}

/// Bad input: names the input, the document and its source path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input}: {location}: {message}")]
pub struct InputError {
    pub input: String,
    pub location: String,
    pub message: String,
}

/// The largest document ess-guard reads: the Kubernetes API server refuses any request body over
/// 3 MiB (`--max-resource-write-bytes`), so a bigger document can never be applied. Refusing it
/// up front also bounds what the YAML parser is given.
pub const MAX_DOCUMENT_BYTES: usize = 3 * 1024 * 1024;

/// How much of the stream to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseMode {
    /// Parse and validate every document.
    Full,
    /// Parse only documents whose kind can matter to ess-guard (read from the column-0 `kind:`
    /// line); pass the rest through unparsed. Documents without such a line are parsed fully.
    Relevant,
}

/// What the guard reads, per kind: a document of one of these kinds is parsed in
/// [`ParseMode::Relevant`] only when its text contains one of the needles (the chart's names and
/// labels for Synapse, MAS, syn2mas and the markers). Everything else passes through unparsed,
/// which is what keeps post-render at memchr speed on large renders. The needles are a superset
/// of what `render::classify` and `syn2mas_job` look for, so both modes decide the same.
pub const RELEVANT: &[(&str, &[&str])] = &[
    ("StatefulSet", &["matrix-server"]),
    ("Deployment", &["matrix-authentication-service"]),
    (
        "Job",
        &[
            "deployment-markers",
            "syn2mas",
            "check-config",
            "init-secrets",
            "matrix-tools",
        ],
    ),
    ("ConfigMap", &["synapse", "matrix-authentication-service"]),
    ("Secret", &["synapse", "matrix-authentication-service"]),
    ("Role", &["syn2mas"]),
    ("RoleBinding", &["syn2mas"]),
    ("ServiceAccount", &["syn2mas"]),
];

/// True when a document of `kind` with this text may matter to the guard, or when its text
/// cannot be trusted to show that it does not: the one place that decides whether
/// [`ParseMode::Relevant`] may pass a document through unread.
///
/// A document that may be a hook (its text names `helm.sh/hook`) always matters: whether the
/// render shows hooks at all decides the format and whether the markers and check-config hooks
/// are known to be missing. Otherwise the kind's needles decide, searched in the text while the
/// guard reads parsed values. The two differ only through escapes (`"matrix-se\x72ver"` is
/// `matrix-server` to the parser) and through line breaks the `\n`-based prescan does not see (a
/// lone `\r` can hide a second, winning `kind:`; the `stream` fuzz target found a Synapse
/// StatefulSet passed through that way), so a document with either is always parsed. Helm's
/// templates write neither in the objects the guard reads.
fn relevant(kind: &str, text: &str) -> bool {
    let bytes = text.as_bytes();
    kind == "List"
        || memchr::memmem::find(bytes, HOOK_ANNOTATION.as_bytes()).is_some()
        || RELEVANT
            .iter()
            .find(|(k, _)| *k == kind)
            .is_some_and(|(_, needles)| {
                needles
                    .iter()
                    .any(|n| memchr::memmem::find(bytes, n.as_bytes()).is_some())
            })
        || memchr::memchr(b'\\', bytes).is_some()
        || other_line_breaks(text)
}

/// A whole render: the input bytes and the documents over them.
#[derive(Debug, Clone)]
pub struct Stream {
    /// A name for the input in messages (`-` for stdin, or the file path).
    pub name: String,
    pub input: String,
    pub docs: Vec<Document>,
    pub format: Format,
}

impl Stream {
    /// Reads a stream. `name` is used in error messages. Bytes that are not UTF-8 are bad input
    /// (Kubernetes manifests are UTF-8; a stray byte usually means a binary file was piped in).
    pub fn parse(name: &str, bytes: Vec<u8>, mode: ParseMode) -> Result<Stream, InputError> {
        // Where a bad byte is, by document: the split works on bytes, so it is known before the
        // text is.
        let locate = |bytes: &[u8], offset: usize| -> String {
            let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
            let chunks = split::split(bytes);
            let Some((index, chunk)) = chunks
                .iter()
                .enumerate()
                .find(|(_, c)| c.span().contains(&offset))
            else {
                return format!("line {line}");
            };
            let body =
                String::from_utf8_lossy(&bytes[chunk.body.start..offset.max(chunk.body.start)]);
            match source_comment(&body).or_else(|| filename_annotation(&body)) {
                Some(source) => format!("document {} ({source}), line {line}", index + 1),
                None => format!("document {} (line {line})", index + 1),
            }
        };
        // Whichever bad byte comes first is reported. The UTF-8 check runs once (it used to run
        // twice, `str::from_utf8` then `String::from_utf8`: ~2 × 20 ms on 100 MB).
        let nul = |bytes: &[u8], before: usize| {
            memchr::memchr(0, &bytes[..before]).map(|pos| InputError {
                input: name.to_string(),
                location: locate(bytes, pos),
                message: "input contains a NUL byte (binary data?)".to_string(),
            })
        };
        let input = match String::from_utf8(bytes) {
            Ok(input) => {
                if let Some(e) = nul(input.as_bytes(), input.len()) {
                    return Err(e);
                }
                input
            }
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                return Err(nul(&bytes, offset).unwrap_or_else(|| InputError {
                    input: name.to_string(),
                    location: locate(&bytes, offset),
                    message: "input is not UTF-8 text (binary data?)".to_string(),
                }));
            }
        };
        let chunks = split::split(input.as_bytes());
        // Without the Helm 4 annotation anywhere, no document can carry it: skip looking for it
        // in every document (a full scan of each one that lacks it).
        let helm4 =
            memchr::memmem::find(input.as_bytes(), HELM4_FILENAME_ANNOTATION.as_bytes()).is_some();
        let docs = par_map(
            chunks,
            |chunk| chunk.span().len(),
            |index, chunk| read_document(name, &input, index, chunk, mode, helm4),
        )?;
        let format = detect_format(helm4, &input, &docs);
        Ok(Stream {
            name: name.to_string(),
            input,
            docs,
            format,
        })
    }

    /// Every object in the stream, with the document it came from.
    pub fn resources(&self) -> impl Iterator<Item = (&Document, &Resource)> {
        self.docs
            .iter()
            .flat_map(|d| d.resources().iter().map(move |r| (d, r)))
    }

    /// The raw text of one document, separator included.
    pub fn raw(&self, doc: &Document) -> &str {
        &self.input[doc.chunk.span()]
    }

    /// The body text of one document, without its separator.
    pub fn body_text(&self, doc: &Document) -> &str {
        &self.input[doc.chunk.body.clone()]
    }

    /// True when hooks can be seen in this stream: Helm 4 input and `helm template` output show
    /// them, Helm 3 post-renderer input never does.
    pub fn hooks_visible(&self) -> bool {
        match self.format {
            Format::Helm3 => false,
            Format::Helm4 => true,
            Format::Template => self.resources().any(|(_, r)| r.hook.is_some()),
        }
    }
}

fn detect_format(helm4: bool, input: &str, docs: &[Document]) -> Format {
    if helm4 {
        return Format::Helm4;
    }
    let any_hook = docs
        .iter()
        .any(|d| d.resources().iter().any(|r| r.hook.is_some()));
    let helm_comments = docs.iter().any(|d| d.source.is_some());
    if helm_comments && !any_hook && input.starts_with("---") {
        // Helm 3 hands a post-renderer `---\n# Source: …` documents without hooks. `helm template`
        // output of a chart that has no hooks looks the same; treating it as Helm 3 only makes
        // ess-guard more careful (hooks are then considered invisible).
        Format::Helm3
    } else {
        Format::Template
    }
}

/// Inputs smaller than this are handled on one thread: a typical render (~300 KB) takes a few
/// milliseconds, less than starting threads is worth.
pub const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// How many runs per CPU [`par_map`] cuts the items into. Documents differ in cost by kind
/// (a Service passes through, a Synapse StatefulSet is cut, checked and read), and Helm groups
/// documents by kind, so runs of equal bytes are not runs of equal work: with one run per CPU,
/// one of the two threads on the 100 MB benchmark stream worked 0.61 s and the other 0.36 s.
/// Many small runs taken from a shared queue keep both busy to the end.
const RUNS_PER_THREAD: usize = 16;

/// Applies `f` to every item (with its index) and collects the results in order, as a
/// sequential loop that stops at the first error would: the error returned is the one of the
/// first failing item. When the items weigh (`weight`, in bytes of input) at least
/// [`PARALLEL_MIN_BYTES`] together, they are cut into contiguous runs of similar weight
/// ([`RUNS_PER_THREAD`] per available CPU) that worker threads take in order from a shared
/// queue; each run stops at its own first error, and the earliest run's error wins, which is the
/// same error.
///
/// Measured effect: documents are independent, and reading them (skeletons, parses) and editing
/// them are most of post-render's work; on the 2-CPU benchmark machine this takes about a third
/// off the 100 MB stream's wall time (BENCHMARKS.md). CPU time is unchanged.
pub(crate) fn par_map<I: Send, T: Send, E: Send>(
    items: Vec<I>,
    weight: impl Fn(&I) -> usize,
    f: impl Fn(usize, I) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    let threads = crate::parallel::workers(8);
    let total: usize = items.iter().map(&weight).sum();
    if threads < 2 || total < PARALLEL_MIN_BYTES || items.len() < 2 * threads {
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            out.push(f(index, item)?);
        }
        return Ok(out);
    }
    let run_count = threads * RUNS_PER_THREAD;
    let mut runs: Vec<Vec<(usize, I)>> = (0..run_count).map(|_| Vec::new()).collect();
    let mut before = 0;
    for (index, item) in items.into_iter().enumerate() {
        let run = (before * run_count / total).min(run_count - 1);
        before += weight(&item);
        runs[run].push((index, item));
    }
    let f = &f;
    let results = crate::parallel::ordered_map(runs, threads, |_| {
        |run: Vec<(usize, I)>| -> Result<Vec<T>, E> {
            let mut out = Vec::with_capacity(run.len());
            for (index, item) in run {
                out.push(f(index, item)?);
            }
            Ok(out)
        }
    });
    let mut out = Vec::new();
    for run in results {
        out.extend(run?);
    }
    Ok(out)
}

/// The `# Source:` path of a Helm 3 / `helm template` document.
fn source_comment(body: &str) -> Option<String> {
    body.lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .find_map(|l| l.strip_prefix("# Source: "))
        .map(|s| s.trim().to_string())
}

/// The value of the Helm 4 filename annotation, read from the text so unparsed documents have it.
fn filename_annotation(body: &str) -> Option<String> {
    let pos = memchr::memmem::find(body.as_bytes(), HELM4_FILENAME_ANNOTATION.as_bytes())?;
    let rest = &body[pos + HELM4_FILENAME_ANNOTATION.len()..];
    let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
    let rest = rest.trim_start_matches([':', ' ']);
    let line = rest.lines().next()?.trim();
    Some(line.trim_matches(['\'', '"']).to_string())
}

/// True when `body` holds only blank lines and full-line comments (an empty YAML document).
/// Leading tabs are left to the parser, which may refuse them, and so is any line break other
/// than `\n` and `\r\n`: YAML also breaks lines at a lone `\r` (and YAML 1.1 at NEL, LS, PS),
/// so `# c\rkind: StatefulSet` is a comment followed by a resource, not a comment.
fn is_blank(body: &str) -> bool {
    // The line test first: it stops at the first content line, near the top of every real
    // document, while the line-break test reads the whole document (it was ~15 % of
    // post-render's CPU time on the 100 MB benchmark stream when it ran first).
    let blank_lines = body.lines().all(|l| {
        let l = l.trim_start_matches(' ');
        l.is_empty() || l == "\r" || l.starts_with('#')
    });
    if !blank_lines {
        return false;
    }
    !other_line_breaks(body)
}

/// Whether `text` breaks lines anywhere but at `\n` (or `\r\n`): at a lone `\r`, or at NEL, LS
/// or PS, which libyaml (YAML 1.1) also treats as line breaks. The line-based shortcuts (the
/// blank test above, the kind prescan that [`relevant`] vouches for) are only sound without them: `a: 1\rkind: X` is two
/// keys to the parser. One memchr pass for the candidate bytes, so it costs little on the
/// documents it runs on.
fn other_line_breaks(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr::memchr3_iter(b'\r', 0xC2, 0xE2, bytes).any(|i| match bytes.get(i) {
        Some(b'\r') => bytes.get(i + 1) != Some(&b'\n'),
        Some(0xC2) => bytes.get(i + 1) == Some(&0x85),
        _ => bytes.get(i + 1) == Some(&0x80) && matches!(bytes.get(i + 2), Some(0xA8 | 0xA9)),
    })
}

/// The kind from a column-0 `kind:` line, without parsing.
fn prescan_kind(body: &str) -> Option<&str> {
    let mut rest = body;
    loop {
        if let Some(value) = rest.strip_prefix("kind:") {
            let line = value.split('\n').next().unwrap_or("");
            let kind = line.trim().trim_matches(['"', '\'']);
            // A second column-0 `kind:` is a duplicate key and the last one wins (as in
            // Kubernetes): only a full parse can tell, so do not skip the document.
            let duplicate = memchr::memmem::find(value.as_bytes(), b"\nkind:").is_some();
            // A Kubernetes kind is alphanumeric; anything else (a comment, a flow value, a
            // lone `\r` joining the next key to it) is left to the parser.
            let alphanumeric = !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric());
            return (!duplicate && alphanumeric).then_some(kind);
        }
        let next = memchr::memmem::find(rest.as_bytes(), b"\nkind:")?;
        rest = &rest[next + 1..];
    }
}

fn read_document(
    name: &str,
    input: &str,
    index: usize,
    chunk: Chunk,
    mode: ParseMode,
    helm4: bool,
) -> Result<Document, InputError> {
    let body_text = &input[chunk.body.clone()];
    let source = source_comment(body_text).or_else(|| {
        if helm4 {
            filename_annotation(body_text)
        } else {
            None
        }
    });
    let error = |message: String| {
        let location = match &source {
            Some(s) => format!("document {} ({s})", index + 1),
            None => {
                let line = input[..chunk.body.start].matches('\n').count() + 1;
                format!("document {} (line {line})", index + 1)
            }
        };
        InputError {
            input: name.to_string(),
            location,
            message,
        }
    };
    if chunk.span().len() > MAX_DOCUMENT_BYTES {
        return Err(error(format!(
            "document is {} bytes, more than the {MAX_DOCUMENT_BYTES} bytes the Kubernetes API server accepts for one object",
            chunk.span().len()
        )));
    }
    if is_blank(body_text) {
        // Nothing but comments and blank lines: no need to start the YAML parser (a stream of
        // many empty documents would otherwise cost one parser per separator).
        return Ok(Document {
            index,
            chunk,
            source,
            body: Body::Empty,
            duplicate_keys: Vec::new(),
            skeleton: None,
        });
    }
    if mode == ParseMode::Relevant {
        if let Some(kind) = prescan_kind(body_text) {
            if !relevant(kind, body_text) {
                return Ok(Document {
                    index,
                    chunk,
                    source,
                    body: Body::Opaque {
                        kind: kind.to_string(),
                    },
                    duplicate_keys: Vec::new(),
                    skeleton: None,
                });
            }
            if SKELETON_KINDS.contains(&kind) {
                if let Some(doc) = read_skeleton(index, &chunk, &source, body_text) {
                    return Ok(doc);
                }
            }
        }
    }
    let parsed = yaml::parse_document(body_text)
        .map_err(|e| error(format!("invalid YAML: {}", one_line(&e.to_string()))))?;
    let body = match parsed.value {
        Value::Null => Body::Empty,
        value => {
            let is_list = value.get("kind").and_then(Value::as_str) == Some("List");
            if is_list {
                let items = match value.get("items") {
                    Some(Value::Array(items)) => items.clone(),
                    Some(Value::Null) | None => Vec::new(),
                    Some(other) => {
                        return Err(error(format!(
                            "List: `items` must be a sequence, found {}",
                            type_name(other)
                        )))
                    }
                };
                let mut resources = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    resources.push(
                        Resource::from_value(item)
                            .map_err(|e| error(format!("List item {}: {e}", i + 1)))?,
                    );
                }
                Body::List(resources)
            } else {
                Body::Resource(Resource::from_value(value).map_err(error)?)
            }
        }
    };
    Ok(Document {
        index,
        chunk,
        source,
        body,
        duplicate_keys: parsed.duplicate_keys,
        skeleton: None,
    })
}

/// Kinds whose documents are read as a skeleton in [`ParseMode::Relevant`] unless
/// [`needs_body`] says the guard reads more of them.
const SKELETON_KINDS: &[&str] = &["StatefulSet", "ConfigMap", "Secret"];

/// Whether the guard reads more of a resource than its skeleton: the `data` of the Synapse and
/// MAS config ConfigMaps and Secrets (a superset of what `render::classify` takes as config).
/// StatefulSets are read only through metadata and `spec.replicas`.
fn needs_body(resource: &Resource) -> bool {
    match resource.kind() {
        "ConfigMap" | "Secret" => matches!(
            resource.label("app.kubernetes.io/name"),
            Some("synapse" | "matrix-authentication-service")
        ),
        "StatefulSet" => false,
        _ => true,
    }
}

/// Reads a document from its skeleton (see [`skeleton`]). `None` when the skeleton cannot be
/// cut, does not read as a resource, or the guard needs the body: the caller then parses the
/// whole document, so every error message is the one a full parse gives.
///
/// Measured effect (10 MB generated step-2 stream, `post-render --state legacy_auth`, CPU
/// time): full parses of the Synapse StatefulSets and ConfigMaps took ~90 % of the profile at
/// ~8 MB/s; with skeletons the same run needs a sixth of the CPU (BENCHMARKS.md).
fn read_skeleton(
    index: usize,
    chunk: &Chunk,
    source: &Option<String>,
    body_text: &str,
) -> Option<Document> {
    let cut = skeleton::skeleton(body_text)?;
    let parsed = match simple::parse_parts(&cut.parts(body_text)) {
        Some(parsed) => parsed,
        None => yaml::parse_document(&cut.text(body_text)).ok()?,
    };
    let resource = Resource::from_value(parsed.value).ok()?;
    if needs_body(&resource) {
        return None;
    }
    // The rest of the document is not read into the model, but it must still be valid YAML, and
    // its repeated keys are reported as a full parse reports them (see `validate`).
    let duplicate_keys = validate::document(body_text)?;
    Some(Document {
        index,
        chunk: chunk.clone(),
        source: source.clone(),
        body: Body::Resource(resource),
        duplicate_keys,
        skeleton: Some(cut.metadata),
    })
}

/// Collapses a multi-line library message into one line.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

fn describe_scalar(value: &Value) -> String {
    match value {
        Value::String(s) if s.len() <= 40 => format!("the string {s:?}"),
        other => type_name(other).to_string(),
    }
}

/// Every document body of every `.yaml` file under `$ESS_GUARD_SHARED/ess-renders`, for the
/// tests that compare the fast readers with libyaml on real renders; `None` without the
/// variable (a plain clone). Under `ESS_GUARD_REQUIRE_ALL=1` a missing variable is a failure.
#[cfg(test)]
pub(crate) fn real_render_bodies() -> Option<Vec<String>> {
    let Ok(shared) = std::env::var("ESS_GUARD_SHARED") else {
        assert!(
            std::env::var("ESS_GUARD_REQUIRE_ALL").as_deref() != Ok("1"),
            "ESS_GUARD_SHARED is not set and ESS_GUARD_REQUIRE_ALL=1 forbids skipping"
        );
        return None;
    };
    let mut files = vec![std::path::PathBuf::from(shared).join("ess-renders")];
    let mut bodies = Vec::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(
                std::fs::read_dir(&p)
                    .expect("dir")
                    .map(|e| e.expect("entry").path()),
            );
        } else if p.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let text = std::fs::read_to_string(&p).expect("read");
            bodies.extend(
                split::split(text.as_bytes())
                    .into_iter()
                    .map(|chunk| text[chunk.body].to_string()),
            );
        }
    }
    assert!(
        !bodies.is_empty(),
        "no documents under ESS_GUARD_SHARED/ess-renders"
    );
    Some(bodies)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel path gives what the sequential loop gives: results in order, and the error
    /// of the first failing item even when a later run fails first.
    #[test]
    fn par_map_is_the_sequential_loop() {
        let items: Vec<usize> = (0..3000).collect();
        let heavy = |_: &usize| PARALLEL_MIN_BYTES / 1000; // 3× the threshold in total
        let doubled =
            par_map(items.clone(), heavy, |i, x| Ok::<_, String>((i, x * 2))).expect("no error");
        assert_eq!(doubled, (0..3000).map(|x| (x, x * 2)).collect::<Vec<_>>());
        // Items 2999 and 100 fail; the last run may well finish first, but 100 is reported.
        let failed = par_map(items.clone(), heavy, |_, x| {
            if x == 100 || x == 2999 {
                Err(format!("item {x}"))
            } else {
                Ok(x)
            }
        });
        assert_eq!(failed, Err("item 100".to_string()));
        // Below the threshold: the same answers, sequentially.
        let light = par_map(items, |_| 1, |_, x| Ok::<_, String>(x + 1)).expect("no error");
        assert_eq!(light.len(), 3000);
        assert_eq!(light[2999], 3000);
    }

    fn parse(text: &str) -> Result<Stream, InputError> {
        Stream::parse("test", text.as_bytes().to_vec(), ParseMode::Full)
    }

    #[test]
    fn helm3_stream() {
        let s = parse("---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n").expect("parses");
        assert_eq!(s.format, Format::Helm3);
        assert_eq!(s.docs[0].source.as_deref(), Some("c/templates/a.yaml"));
        assert!(!s.hooks_visible());
    }

    #[test]
    fn helm4_stream_with_hook() {
        let text = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n  annotations:\n    \"helm.sh/hook\": pre-install,pre-upgrade\n    \"helm.sh/hook-weight\": \"-5\"\n    postrenderer.helm.sh/postrender-filename: 'c/templates/j.yaml'\n";
        let s = parse(text).expect("parses");
        assert_eq!(s.format, Format::Helm4);
        assert_eq!(s.docs[0].source.as_deref(), Some("c/templates/j.yaml"));
        let hook = s.docs[0].resources()[0].hook.clone().expect("hook");
        assert_eq!(hook.weight, -5);
        assert!(hook.is_pre_upgrade());
    }

    #[test]
    fn list_items_are_resources() {
        let s = parse("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: in-list}\n").expect("parses");
        assert_eq!(s.resources().count(), 1);
        assert_eq!(s.resources().next().map(|(_, r)| r.name()), Some("in-list"));
    }

    #[test]
    fn bad_documents_name_document_and_source() {
        let err = parse("---\n# Source: c/templates/x.yaml\nmetadata:\n  name: x\n")
            .expect_err("no kind");
        assert_eq!(err.location, "document 1 (c/templates/x.yaml)");
        assert!(err.message.contains("kind"), "{err}");
        let err = parse("- a\n- b\n").expect_err("not a mapping");
        assert!(err.message.contains("mapping"), "{err}");
        let err = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: []\n").expect_err("metadata");
        assert!(err.message.contains("metadata"), "{err}");
        let err = parse(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec: {replicas: two}\n",
        )
        .expect_err("replicas");
        assert!(err.message.contains("spec.replicas"), "{err}");
        assert!(Stream::parse("bin", vec![0xff, 0xfe, b'a'], ParseMode::Full).is_err());
        let err = Stream::parse(
            "bin",
            b"---\n# Source: c/a.yaml\nkind: A\n---\n# Source: c/b.yaml\nx: \xff\n".to_vec(),
            ParseMode::Full,
        )
        .expect_err("not UTF-8");
        assert_eq!(err.location, "document 2 (c/b.yaml), line 6");
        let err =
            Stream::parse("bin", b"a: 1\n---\nb: \0\n".to_vec(), ParseMode::Full).expect_err("NUL");
        assert_eq!(err.location, "document 2 (line 3)");
    }

    #[test]
    fn relevant_mode_skips_irrelevant_kinds() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ess-synapse}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n";
        let s = Stream::parse("t", text.as_bytes().to_vec(), ParseMode::Relevant).expect("parses");
        assert_eq!(
            s.docs[0].body,
            Body::Opaque {
                kind: "Service".into()
            }
        );
        assert!(matches!(s.docs[1].body, Body::Resource(_)));
        assert_eq!(
            s.docs[2].body,
            Body::Opaque {
                kind: "ConfigMap".into()
            }
        );
    }

    #[test]
    fn lone_carriage_returns_never_hide_a_kind_from_relevant_mode() {
        // Found by the `stream` fuzz target: `kind: StatefulSet\rmetadata:` prescanned as the
        // kind "StatefulSet\rmetadata:", irrelevant, so a Synapse StatefulSet passed through
        // unread. And a lone `\r` can hide a second (winning) `kind:` behind an irrelevant one.
        let sts = "apiVersion: apps/v1\nkind: StatefulSet\rmetadata:\n  name: ess-synapse-main\n  labels:\n    app.kubernetes.io/component: matrix-server\n    app.kubernetes.io/name: synapse-main\n";
        let hidden = "apiVersion: apps/v1\nkind: Service\nmetadata:\n  name: ess-synapse-main\n  labels:\n    app.kubernetes.io/component: matrix-server\n    app.kubernetes.io/name: synapse-main\nx: 1\rkind: StatefulSet\n";
        for text in [sts, hidden] {
            for mode in [ParseMode::Full, ParseMode::Relevant] {
                let s = Stream::parse("t", text.as_bytes().to_vec(), mode).expect("parses");
                let Body::Resource(r) = &s.docs[0].body else {
                    panic!("{mode:?} did not read {text:?}: {:?}", s.docs[0].body);
                };
                assert_eq!(r.kind(), "StatefulSet", "{mode:?} {text:?}");
            }
        }
        assert!(other_line_breaks("a: 1\rb: 2\n"));
        assert!(other_line_breaks("a: 1\u{85}b: 2\n"));
        assert!(other_line_breaks("a: 1\u{2028}b: 2\n"));
        assert!(!other_line_breaks("a: 1\r\nb: \u{e9}\u{20ac}\n"));
        assert_eq!(prescan_kind("kind: Service\r\nx: 1\n"), Some("Service"));
        assert_eq!(prescan_kind("kind: Service # c\n"), None);
        // Other spellings of a kind that only the parser resolves: an escape in a quoted kind,
        // a block scalar. Each was taken as an unknown kind before the alphanumeric rule.
        for text in [
            "apiVersion: apps/v1\nkind: \"State\\x66ulSet\"\nmetadata: {name: s}\n",
            "apiVersion: apps/v1\nkind: >-\n  StatefulSet\nmetadata: {name: s}\n",
            "apiVersion: apps/v1\nkind: |-\n  StatefulSet\nmetadata: {name: s}\n",
        ] {
            assert_eq!(prescan_kind(text), None, "{text:?}");
            let s = Stream::parse("t", text.as_bytes().to_vec(), ParseMode::Relevant).expect(text);
            let Body::Resource(r) = &s.docs[0].body else {
                panic!("not read: {text:?}");
            };
            assert_eq!(r.kind(), "StatefulSet", "{text:?}");
        }
    }

    #[test]
    fn escaped_needles_do_not_pass_a_document_through() {
        // The parser resolves escapes; the needle search does not.
        let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: ess-synapse-main\n  labels:\n    app.kubernetes.io/component: \"matrix-se\\x72ver\"\n    app.kubernetes.io/name: synapse-main\n";
        let hook = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\n  annotations:\n    \"helm.sh/h\\x6fok\": pre-upgrade\n";
        for text in [sts, hook] {
            let s = Stream::parse("t", text.as_bytes().to_vec(), ParseMode::Relevant).expect(text);
            assert!(matches!(s.docs[0].body, Body::Resource(_)), "{text:?}");
        }
        let s = Stream::parse("t", sts.as_bytes().to_vec(), ParseMode::Relevant).expect("sts");
        let Body::Resource(r) = &s.docs[0].body else {
            panic!("not read")
        };
        assert_eq!(
            r.label("app.kubernetes.io/component"),
            Some("matrix-server")
        );
    }

    #[test]
    fn both_modes_see_hooks_on_kinds_the_guard_does_not_read() {
        // Found by the `stream` fuzz target: with the only hook on a ServiceAccount, Relevant
        // mode saw no hook (Helm 3 format, hooks invisible) and Full did (template, visible).
        let text = "---\n# Source: c/templates/sa.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: ess-x\n  annotations:\n    helm.sh/hook: pre-upgrade\n---\n# Source: c/templates/svc.yaml\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n";
        let full = Stream::parse("t", text.as_bytes().to_vec(), ParseMode::Full).expect("parses");
        let relevant =
            Stream::parse("t", text.as_bytes().to_vec(), ParseMode::Relevant).expect("parses");
        assert_eq!(full.format, Format::Template);
        assert_eq!(relevant.format, full.format);
        assert_eq!(relevant.hooks_visible(), full.hooks_visible());
        assert!(matches!(relevant.docs[1].body, Body::Opaque { .. }));
    }

    #[test]
    fn a_lone_carriage_return_ends_a_comment() {
        let text = "---\n# c\rapiVersion: v1\rkind: ConfigMap\rmetadata: {name: ess-synapse}\r";
        let s = Stream::parse("t", text.as_bytes().to_vec(), ParseMode::Full).expect("parses");
        assert_eq!(
            s.resources().count(),
            1,
            "the resource after `# c\\r` was dropped"
        );
    }

    #[test]
    fn oversized_documents_are_refused() {
        let big = format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\n# {}\n",
            "x".repeat(MAX_DOCUMENT_BYTES)
        );
        let err = Stream::parse("t", big.into_bytes(), ParseMode::Relevant).expect_err("too big");
        assert_eq!(err.location, "document 1 (line 1)");
        assert!(err.message.contains("bytes"), "{err}");
    }

    proptest::proptest! {
        /// The blank-document shortcut agrees with the YAML parser.
        #[test]
        fn blank_shortcut_agrees_with_parser(lines in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::prelude::Just(String::new()), proptest::prelude::Just("  ".to_string()),
                proptest::prelude::Just("# c".to_string()), proptest::prelude::Just("  #x: [".to_string()),
                proptest::prelude::Just("\r".to_string()), proptest::prelude::Just("\t# t".to_string()),
                proptest::prelude::Just("a: 1".to_string()), "[ #a-z:\t\r]{0,6}",
                proptest::prelude::Just("# c\rkind: X".to_string()), proptest::prelude::Just("# c\u{2028}a: 1".to_string()),
            ], 0..6)) {
            let body = lines.join("\n");
            if is_blank(&body) {
                let parsed = yaml::parse_document(&body);
                proptest::prop_assert!(matches!(parsed, Ok(ref p) if p.value.is_null()), "{:?}: {:?}", body, parsed);
            }
        }
    }

    #[test]
    fn prescan_finds_column_zero_kind_only() {
        assert_eq!(prescan_kind("a: 1\nkind: Service\n"), Some("Service"));
        assert_eq!(prescan_kind("spec:\n  kind: Service\n"), None);
        assert_eq!(prescan_kind("kind: \"Job\"\n"), Some("Job"));
        assert_eq!(
            prescan_kind("kind: Service\nspec: {}\nkind: StatefulSet\n"),
            None
        );
    }
}
