//! The skeleton of a document: its `apiVersion`, `kind` and `metadata` entries and
//! `spec.replicas`, cut out of the text without parsing the rest.
//!
//! **Why.** On a large step-2 render most bytes are Synapse StatefulSets, which the guard must
//! read (to recognise them) and edit (to annotate them), and ConfigMaps that mention Synapse. A
//! YAML parse into a model runs at ~20–30 MB/s (libyaml + `serde_json::Value`), so parsing those
//! documents in full capped post-render at ~8 MB/s of CPU on the 10 MB benchmark stream, and the
//! edit verification parsed every StatefulSet a second time. The guard only ever reads a
//! StatefulSet's metadata and `spec.replicas`, and a ConfigMap's or Secret's metadata unless its
//! labels make it a config source (see [`super::needs_body`]). The skeleton is ~15 % of a Synapse
//! StatefulSet's bytes; reading it instead of the whole document (with the rest checked by
//! [`super::validate`]) is most of why post-render needs ~7× less CPU than `--full-parse` on the
//! 10 MB benchmark stream (BENCHMARKS.md).
//!
//! **Why it is exact.** A skeleton is only cut when the document's top level is a plain block
//! mapping: every content line at column 0 is `key:` with a simple key, no key occurs twice, and
//! the copied text has no anchor, alias or tag (`&`, `*`, `!`), so no entry can change the meaning
//! of another. An entry is copied whole, from its key line to the next column-0 key line
//! (comments and blank lines included), so it reads exactly as it does inside the document.
//! `spec.replicas` is taken only when `spec:` is a block mapping whose keys sit at one column and
//! `replicas:` is a one-line scalar there. Anything else returns `None`, and the caller parses the
//! whole document as before. The cut looks at column 0 only, so a multi-line flow or quoted
//! scalar that continues at column 0 could fool it; that is why the caller uses a skeleton only
//! for a document that [`super::validate::document`] accepts (no multi-line scalars, no flow
//! collections), and the `subset` fuzz target checks the skeleton against libyaml on exactly
//! those documents.

use std::ops::Range;

/// A document's skeleton, as ranges of the document text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skeleton {
    /// The `apiVersion`, `kind` and `metadata` entries as written (key line up to the next
    /// top-level key), in document order.
    pub entries: Vec<Range<usize>>,
    /// The `replicas:` line of `spec`, when the document has one.
    pub replicas: Option<Range<usize>>,
    /// Where the `metadata` entry is (one of `entries`).
    pub metadata: Range<usize>,
}

impl Skeleton {
    /// The skeleton's lines, in order, as slices of `body` (plus `spec:` before `replicas:`).
    /// A slice that does not end with a line break ends a line all the same. The reader of
    /// simple YAML takes these directly, so the skeleton is never copied on the fast path.
    pub fn parts<'a>(&self, body: &'a str) -> Vec<&'a str> {
        let mut parts: Vec<&'a str> = self.entries.iter().map(|r| &body[r.clone()]).collect();
        if let Some(r) = &self.replicas {
            parts.push("spec:\n");
            parts.push(&body[r.clone()]);
        }
        parts
    }

    /// The skeleton as one YAML text (for libyaml, when the simple reader declines it).
    pub fn text(&self, body: &str) -> String {
        let mut text = String::new();
        for part in self.parts(body) {
            text.push_str(part);
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        text
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Entry {
    /// Copied whole.
    Keep,
    /// `spec`: only its `replicas` child is looked for.
    Spec,
    Skip,
}

/// The key of a column-0 line `key:` / `key: value`, when it is a plain simple key.
fn top_key(line: &[u8]) -> Option<&[u8]> {
    let colon = memchr::memchr(b':', line)?;
    let key = &line[..colon];
    let plain = key.first().is_some_and(u8::is_ascii_alphabetic)
        && key
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'));
    let after_ok = matches!(line.get(colon + 1), None | Some(b' ' | b'\n' | b'\r'));
    (plain && after_ok).then_some(key)
}

/// Whether the text after `key:` on a line holds a value (anything but blanks and a comment).
fn has_inline_value(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii();
    !rest.is_empty() && rest[0] != b'#'
}

/// Cuts the skeleton of `body` (one document without its separator), or `None` when the
/// document is not a plain block mapping the skeleton can be cut from exactly.
pub fn skeleton(body: &str) -> Option<Skeleton> {
    let bytes = body.as_bytes();
    let mut entries: Vec<Range<usize>> = Vec::with_capacity(3);
    let mut metadata: Option<usize> = None;
    let mut seen: [bool; 4] = [false; 4];
    let mut other_keys: Vec<&[u8]> = Vec::new();
    let mut entry = Entry::Skip;
    let mut spec_col: Option<usize> = None;
    let mut replicas: Option<Range<usize>> = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i + 1);
        let line = &bytes[pos..end];
        match line[0] {
            b' ' | b'\n' | b'\r' | b'#' => {
                if entry == Entry::Spec && line[0] == b' ' {
                    let indent = line.iter().take_while(|b| **b == b' ').count();
                    let rest = &line[indent..];
                    let content = !matches!(rest.first(), None | Some(b'\n' | b'\r' | b'#'));
                    if content {
                        let col = *spec_col.get_or_insert(indent);
                        if indent < col {
                            return None;
                        }
                        if indent == col {
                            let key = top_key(rest)?;
                            if key == b"replicas" {
                                if replicas.is_some() || !has_inline_value(&rest[key.len() + 1..]) {
                                    return None;
                                }
                                replicas = Some(pos..end);
                            }
                        }
                    }
                }
            }
            _ => {
                let key = top_key(line)?;
                if entry == Entry::Keep {
                    if let Some(open) = entries.last_mut() {
                        open.end = pos;
                    }
                }
                let slot = match key {
                    b"apiVersion" => Some(0),
                    b"kind" => Some(1),
                    b"metadata" => Some(2),
                    b"spec" => Some(3),
                    _ => None,
                };
                match slot {
                    Some(i) => {
                        if seen[i] {
                            return None;
                        }
                        seen[i] = true;
                    }
                    None => {
                        if other_keys.contains(&key) {
                            return None;
                        }
                        other_keys.push(key);
                    }
                }
                entry = match slot {
                    Some(0..=2) => Entry::Keep,
                    Some(_) => Entry::Spec,
                    None => Entry::Skip,
                };
                match entry {
                    Entry::Keep => {
                        if slot == Some(2) {
                            metadata = Some(entries.len());
                        }
                        entries.push(pos..end);
                    }
                    // `spec: {…}` or `spec: *x`: replicas could hide in it.
                    Entry::Spec if has_inline_value(&line[key.len() + 1..]) => return None,
                    _ => {}
                }
            }
        }
        pos = end;
    }
    if entry == Entry::Keep {
        if let Some(open) = entries.last_mut() {
            open.end = bytes.len();
        }
    }
    let copied = entries.iter().chain(replicas.iter());
    // A copied entry that ends the document without a line break would gain one in the
    // skeleton text, and a block scalar's value depends on it (`a: |` then `  x` at the very
    // end reads "x" there but "x\n" once a line break follows). Rare (only the last document
    // of a stream can lack the break), so such a document is simply parsed whole.
    if !bytes.ends_with(b"\n") && copied.clone().any(|r| r.end == bytes.len()) {
        return None;
    }
    if copied.clone().any(|r| {
        bytes[r.clone()]
            .iter()
            .any(|b| matches!(b, b'&' | b'*' | b'!'))
    }) {
        return None;
    }
    let metadata = entries.get(metadata?)?.clone();
    Some(Skeleton {
        entries,
        replicas,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STS: &str = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  labels:\n    a: b\n  name: s\n# a comment\n\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      a: b\n  template:\n    spec:\n      containers:\n      - name: c\n        args:\n        - |\n          replicas: 9\n";

    #[test]
    fn cuts_metadata_and_replicas() {
        let s = skeleton(STS).expect("skeleton");
        assert_eq!(s.text(STS), "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  labels:\n    a: b\n  name: s\n# a comment\n\nspec:\n  replicas: 2\n");
        assert_eq!(
            &STS[s.metadata.clone()],
            "metadata:\n  labels:\n    a: b\n  name: s\n# a comment\n\n"
        );
    }

    #[test]
    fn the_skeleton_reads_like_the_document() {
        let s = skeleton(STS).expect("skeleton");
        let full = crate::manifest::yaml::parse_embedded(STS).expect("parses");
        let part = crate::manifest::yaml::parse_embedded(&s.text(STS)).expect("parses");
        assert_eq!(part["metadata"], full["metadata"]);
        assert_eq!(part["spec"]["replicas"], full["spec"]["replicas"]);
        assert_eq!(part["kind"], full["kind"]);
    }

    #[test]
    fn refuses_what_it_cannot_cut_exactly() {
        // flow spec, duplicate top-level keys, anchors, non-mapping top level, odd indentation
        assert_eq!(
            skeleton("kind: A\nmetadata:\n  name: a\nspec: {replicas: 2}\n"),
            None
        );
        assert_eq!(
            skeleton("kind: A\nmetadata:\n  name: a\nmetadata:\n  name: b\n"),
            None
        );
        assert_eq!(
            skeleton("kind: A\nmetadata: &m\n  name: a\nspec:\n  x: *m\n"),
            None
        );
        assert_eq!(skeleton("- kind: A\n"), None);
        assert_eq!(skeleton("{kind: A}\n"), None);
        assert_eq!(
            skeleton("kind: A\nmetadata:\n  name: a\nspec:\n    a: 1\n  replicas: 3\n"),
            None
        );
        assert_eq!(
            skeleton("kind: A\nmetadata:\n  name: a\nspec:\n  replicas:\n    3\n"),
            None
        );
        assert_eq!(
            skeleton("kind: A\nmetadata:\n  name: a\nspec:\n  replicas: 1\n  replicas: 2\n"),
            None
        );
        assert_eq!(skeleton("kind: A\n\"metadata\":\n  name: a\n"), None);
        assert_eq!(skeleton("kind: A\n"), None, "no metadata");
    }

    #[test]
    fn no_replicas_and_no_trailing_newline() {
        let body = "kind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: |\n    kind: B\n";
        let s = skeleton(body).expect("skeleton");
        assert_eq!(s.text(body), "kind: ConfigMap\nmetadata:\n  name: a\n");
        // The document's end is not copied: the skeleton is exact.
        let body = "kind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: y";
        let s = skeleton(body).expect("skeleton");
        assert_eq!(
            s.parts(body),
            vec!["kind: ConfigMap\n", "metadata:\n  name: a\n"]
        );
        assert_eq!(s.metadata, 16..36);
        // A copied entry runs to the end without a line break: the text would add one.
        assert_eq!(skeleton("kind: ConfigMap\nmetadata:\n  name: a"), None);
    }

    /// Found by the `subset` fuzz target: a block scalar ending the document without a line
    /// break reads differently once the skeleton text ends the line. As a label, that made a
    /// Synapse StatefulSet last in a stream unrecognisable on the fast path.
    #[test]
    fn a_block_scalar_at_the_unterminated_end_is_not_cut() {
        let body = "kind: StatefulSet\nspec:\n  replicas: 1\nmetadata:\n  name: s\n  labels:\n    app.kubernetes.io/component: |\n      matrix-server";
        assert_eq!(skeleton(body), None);
        let full = crate::manifest::yaml::parse_embedded(body).expect("parses");
        assert_eq!(
            full["metadata"]["labels"]["app.kubernetes.io/component"],
            "matrix-server"
        );
    }
}
