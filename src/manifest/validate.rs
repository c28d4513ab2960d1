//! Checking that a whole document is valid YAML, and finding its repeated mapping keys, without
//! building its value — for the documents whose model is only a skeleton.
//!
//! **Why.** A Synapse StatefulSet read as a skeleton (see [`super::skeleton`]) is still a
//! document the guard answers for: invalid YAML anywhere in it must fail the run (exit 2), and a
//! repeated key anywhere in it must be reported, exactly as when the whole document is parsed.
//! libyaml needs ~80–120 ns per byte for that on this machine; this check reads Helm's block
//! style line by line at a small fraction of that, and leaves everything it is not sure about to
//! libyaml.
//!
//! **Why it is exact.** It accepts only text that libyaml accepts: ASCII without control
//! characters; block mappings (keys as in [`super::simple`]) and block sequences at consistent
//! indentation, including mapping values written as a sequence at the key's own column and
//! mappings that start on a `- ` line; one-line scalars (plain scalars not starting with an
//! indicator and holding no `: `, quoted scalars without escapes); the empty flow collections
//! `[]` and `{}`; literal and folded block scalars after a mapping key; comments and blank
//! lines. Anything else — other flow collections, anchors, aliases, tags, escapes, multi-line
//! plain or quoted scalars, block scalars in sequences, tabs — returns `None`, and the caller
//! parses the whole document with libyaml as before. Repeated keys are found with the same key
//! conversion and reported with the same paths, in the same order, as `yaml::parse_document`
//! (a repeat is reported after its value has been read, `a.b`, `a[0].b`). Tests compare both on
//! generated documents and on every real render.

use std::borrow::Cow;

use super::simple::{inline_value, key};

/// A raw line: byte offsets of its start and end (without `\n`), and its indentation.
#[derive(Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
    indent: usize,
}

struct Checker<'a> {
    text: &'a str,
    /// Offset of the next unread line.
    pos: usize,
    /// The next content line from `pos`, once looked up.
    next: Option<Option<Line>>,
    path: String,
    dups: Vec<String>,
    /// Mappings and sequences open around the current line (see [`nest`](Checker::nest)).
    depth: super::yaml::FastDepth,
}

/// What follows `key:` or `- ` on a line, once classified.
enum Value {
    /// Nothing (or a comment): a nested node or null follows on the next lines.
    Block,
    /// A complete one-line value.
    Scalar,
    /// A block scalar header; its content follows.
    BlockScalar { explicit: Option<usize> },
}

fn classify(after: &str) -> Option<Value> {
    let v = after.trim_start_matches(' ');
    match v.as_bytes().first() {
        None | Some(b'#') => return Some(Value::Block),
        Some(b'[') | Some(b'{') => {
            let rest = v.strip_prefix("[]").or_else(|| v.strip_prefix("{}"))?;
            let trimmed = rest.trim_start_matches(' ');
            let ok = trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len());
            return ok.then_some(Value::Scalar);
        }
        Some(b'|') | Some(b'>') => {
            let header = &v[1..];
            let mut explicit = None;
            let mut chomp = false;
            let mut rest = header;
            for _ in 0..2 {
                match rest.as_bytes().first() {
                    Some(d @ b'1'..=b'9') if explicit.is_none() => {
                        explicit = Some(usize::from(d - b'0'));
                        rest = &rest[1..];
                    }
                    Some(b'+' | b'-') if !chomp => {
                        chomp = true;
                        rest = &rest[1..];
                    }
                    _ => break,
                }
            }
            let trimmed = rest.trim_start_matches(' ');
            let ok = trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len());
            return ok.then_some(Value::BlockScalar { explicit });
        }
        _ => {}
    }
    inline_value(after).map(|_| Value::Scalar)
}

impl<'a> Checker<'a> {
    /// The line starting at `pos`.
    fn line_at(&self, pos: usize) -> Option<Line> {
        let bytes = self.text.as_bytes();
        if pos >= bytes.len() {
            return None;
        }
        let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i);
        let indent = bytes[pos..end].iter().take_while(|b| **b == b' ').count();
        Some(Line {
            start: pos,
            end,
            indent,
        })
    }

    fn is_content(&self, l: Line) -> bool {
        let rest = &self.text.as_bytes()[l.start + l.indent..l.end];
        !(rest.is_empty() || rest[0] == b'#')
    }

    /// The next content line (blank and comment lines skipped), without consuming it.
    fn peek(&mut self) -> Option<Line> {
        if let Some(next) = self.next {
            return next;
        }
        let mut pos = self.pos;
        let mut found = None;
        while let Some(l) = self.line_at(pos) {
            if self.is_content(l) {
                found = Some(l);
                break;
            }
            pos = l.end + 1;
        }
        self.next = Some(found);
        found
    }

    fn consume(&mut self, l: Line) {
        self.pos = l.end + 1;
        self.next = None;
    }

    fn rest(&self, l: Line) -> &'a str {
        &self.text[l.start + l.indent..l.end]
    }

    fn push_key(&mut self, k: &str) -> usize {
        let len = self.path.len();
        if len > 0 {
            self.path.push('.');
        }
        self.path.push_str(k);
        len
    }

    /// A block mapping whose keys sit at `indent`. `first` is the text of a first entry already
    /// taken off a `- ` line (a mapping that starts a sequence item).
    fn mapping(&mut self, indent: usize, first: Option<&'a str>) -> Option<()> {
        self.nest(|c| c.mapping_entries(indent, first))
    }

    /// Runs `f` one nesting level deeper, or declines past [`yaml::MAX_FAST_DEPTH`] (the parser
    /// refuses deep nesting; this checker must not accept what it refuses).
    ///
    /// [`yaml::MAX_FAST_DEPTH`]: super::yaml::MAX_FAST_DEPTH
    fn nest(&mut self, f: impl FnOnce(&mut Self) -> Option<()>) -> Option<()> {
        self.depth.enter()?;
        let result = f(self);
        self.depth.leave();
        result
    }

    fn mapping_entries(&mut self, indent: usize, first: Option<&'a str>) -> Option<()> {
        let mut seen: Vec<Cow<'a, str>> = Vec::new();
        let mut pending = first;
        loop {
            let text = match pending.take() {
                Some(text) => text,
                None => {
                    let Some(l) = self.peek() else { break };
                    if l.indent < indent {
                        break;
                    }
                    if l.indent > indent {
                        return None;
                    }
                    self.consume(l);
                    self.rest(l)
                }
            };
            let (k, after) = key(text)?;
            let len = self.push_key(&k);
            self.value(indent, after, true)?;
            if seen.contains(&k) {
                self.dups.push(self.path.clone());
            } else {
                seen.push(k);
            }
            self.path.truncate(len);
        }
        Some(())
    }

    /// A block sequence whose dashes sit at `indent`.
    fn sequence(&mut self, indent: usize) -> Option<()> {
        self.nest(|c| c.sequence_items(indent))
    }

    fn sequence_items(&mut self, indent: usize) -> Option<()> {
        let mut index = 0usize;
        while let Some(l) = self.peek() {
            if l.indent < indent {
                break;
            }
            if l.indent > indent {
                return None;
            }
            let rest = self.rest(l);
            let after = match rest.as_bytes() {
                [b'-'] => "",
                [b'-', b' ', ..] => &rest[2..],
                _ => break,
            };
            self.consume(l);
            let len = self.path.len();
            use std::fmt::Write as _;
            let _ = write!(self.path, "[{index}]");
            if after.starts_with(' ') {
                // `-  x`: unusual spacing; let libyaml judge.
                return None;
            }
            let item = after;
            if key(item).is_some() {
                // `- key: value`: a mapping whose keys sit two columns right of the dash.
                self.mapping(indent + 2, Some(item))?;
            } else {
                match classify(item)? {
                    Value::Block => self.block(indent, false)?,
                    Value::Scalar => {
                        if self.peek().is_some_and(|n| n.indent > indent) {
                            return None;
                        }
                    }
                    Value::BlockScalar { .. } => return None,
                }
            }
            self.path.truncate(len);
            index += 1;
        }
        Some(())
    }

    /// What follows `key:` (at `indent`) on its line.
    fn value(&mut self, indent: usize, after: &'a str, in_mapping: bool) -> Option<()> {
        match classify(after)? {
            Value::Block => self.block(indent, in_mapping),
            Value::Scalar => {
                // A deeper line would continue the scalar: outside the subset.
                if self.peek().is_some_and(|n| n.indent > indent) {
                    return None;
                }
                Some(())
            }
            Value::BlockScalar { explicit } => self.block_scalar(indent, explicit),
        }
    }

    /// The node on the lines after a `key:` or `-` with nothing after it, whose own line is at
    /// `indent`: a deeper mapping or sequence, a sequence at the key's column (mapping values
    /// only), or null.
    fn block(&mut self, indent: usize, in_mapping: bool) -> Option<()> {
        let Some(next) = self.peek() else {
            return Some(());
        };
        let dash = matches!(self.rest(next).as_bytes(), [b'-'] | [b'-', b' ', ..]);
        if next.indent > indent {
            if dash {
                self.sequence(next.indent)
            } else {
                self.mapping(next.indent, None)
            }
        } else if next.indent == indent && dash && in_mapping {
            self.sequence(indent)
        } else {
            Some(())
        }
    }

    /// A literal or folded scalar's content, for a header after a key at `indent`.
    fn block_scalar(&mut self, indent: usize, explicit: Option<usize>) -> Option<()> {
        let mut content_indent = explicit.map(|m| indent + m);
        while let Some(l) = self.line_at(self.pos) {
            let whitespace_only = self.text.as_bytes()[l.start..l.end]
                .iter()
                .all(|b| *b == b' ');
            if whitespace_only {
                if content_indent.is_none() && l.end > l.start {
                    // A leading line of spaces before the indentation is known: libyaml has
                    // rules for it; let it judge.
                    return None;
                }
                self.consume(l);
                continue;
            }
            let ci = *content_indent.get_or_insert(l.indent);
            if ci <= indent {
                // An empty block scalar, or content not deeper than its key: let libyaml judge.
                return None;
            }
            if l.indent < ci {
                break;
            }
            self.consume(l);
        }
        Some(())
    }
}

/// Checks `body` (one document) and returns its repeated keys as `yaml::parse_document` would
/// report them, or `None` when the text is outside the subset this check is sure about.
pub fn document(body: &str) -> Option<Vec<String>> {
    if !super::simple::readable(&[body]) {
        return None;
    }
    let mut c = Checker {
        text: body,
        pos: 0,
        next: None,
        path: String::new(),
        dups: Vec::new(),
        depth: Default::default(),
    };
    let root = c.peek()?;
    if root.indent != 0 {
        return None;
    }
    c.mapping(0, None)?;
    if c.peek().is_some() {
        return None;
    }
    Some(c.dups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whatever the check accepts, libyaml accepts, with the same repeated keys.
    fn agrees(text: &str) {
        if let Some(dups) = document(text) {
            let parsed = super::super::yaml::parse_document(text).unwrap_or_else(|e| {
                panic!("the check accepted what libyaml refuses ({e}):\n{text}")
            });
            assert_eq!(dups, parsed.duplicate_keys, "{text}");
        }
    }

    const STS: &str = "# Source: x\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: s\n  labels:\n    a: b\nspec:\n  replicas: 2\n  # comment\n  template:\n    spec:\n      securityContext:\n        supplementalGroups: []\n      containers:\n      - name: synapse\n        image: \"x:1\"\n        args:\n        - render-config\n        - \"-c\"\n        env:\n        - name: A\n          value: '{{ hostname }}'\n        securityContext:\n          capabilities:\n            drop:\n            - ALL\n      volumes:\n      - configMap:\n          defaultMode: 0440\n          name: c\n        name: plain\n      -\n        name: empty\n";

    #[test]
    fn takes_helm_block_style() {
        assert_eq!(document(STS), Some(vec![]));
        agrees(STS);
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  01-a.yaml: |2\n\n\n    report_stats: false\n    x:\n      - a\n  log_config.yaml: |\n    version: 1\n\n    root:\n      level: \"INFO\"\n  429.http: >-\n    HTTP/1.0 429\n  k: v\n";
        assert_eq!(document(cm), Some(vec![]));
        agrees(cm);
    }

    #[test]
    fn finds_repeated_keys_like_the_parser() {
        let text = "a:\n  b: 1\n  b: 2\nc:\n- d: 1\n  d: 2\n- e: 1\nf: x\nf: y\n";
        assert_eq!(
            document(text),
            Some(vec!["a.b".into(), "c[0].d".into(), "f".into()])
        );
        agrees(text);
    }

    #[test]
    fn leaves_documents_over_the_bracket_budget_to_the_full_parse() {
        // Valid YAML, but the full parse's nesting guard refuses it: the checker must not
        // accept it, or post-render and check would disagree.
        let text = format!("a:\n  b: \"{}\"\n", "[".repeat(129));
        assert_eq!(document(&text), None);
        assert!(crate::manifest::yaml::parse_document(&text).is_err());
        let text = format!("a:\n  b: \"{}\"\n", "[".repeat(128));
        assert_eq!(document(&text), Some(Vec::new()));
    }

    #[test]
    fn leaves_deep_nesting_to_the_full_parse() {
        use crate::manifest::simple::tests::nested;
        let max = crate::manifest::yaml::MAX_FAST_DEPTH;
        assert_eq!(document(&nested(max)), Some(Vec::new()));
        assert_eq!(document(&nested(max + 1)), None);
        // Sequences count too: `a:` / `- b:` alternating.
        let mixed: String = (0..max)
            .map(|k| format!("{}- b:\n", "  ".repeat(k)))
            .collect();
        assert_eq!(document(&format!("a:\n{mixed}")), None);
        assert!(crate::manifest::yaml::parse_document(&nested(200)).is_err());
        assert_eq!(document(&nested(200)), None);
    }

    #[test]
    fn leaves_what_it_is_unsure_of_to_libyaml() {
        for text in [
            "spec:\n  selector: {matchLabels: {a: b}\n",
            "a: [x, y]\n",
            "a: &x 1\nb: *x\n",
            "a: \"x\\ny\"\n",
            "a: b\n  c\n",
            "a:\n- |\n  x\n",
            "a:\n\tb: 1\n",
            "a: |\n  \n   x\n",
            "  a: 1\n",
            "a:\n  - b\n c: 1\n",
            "- a\n",
        ] {
            assert_eq!(document(text), None, "{text:?}");
            agrees(text);
        }
    }

    #[test]
    fn every_real_render_document() {
        let Some(bodies) = crate::manifest::real_render_bodies() else {
            return;
        };
        let (mut taken, total) = (0, bodies.len());
        for body in &bodies {
            agrees(body);
            taken += usize::from(document(body).is_some());
        }
        assert!(
            taken * 2 > total,
            "the check took only {taken} of {total} documents"
        );
    }

    fn line() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("\"a\"".to_string()),
            Just("1".to_string()),
            Just("01".to_string()),
            Just("true".to_string()),
            Just("True".to_string()),
            proptest::string::string_regex("[a-z0-9]{1,3}").expect("regex"),
        ];
        let value = prop_oneof![
            Just(String::new()),
            Just(" x".to_string()),
            Just(" 'q'".to_string()),
            Just(" []".to_string()),
            Just(" {}".to_string()),
            Just(" |".to_string()),
            Just(" |2".to_string()),
            Just(" >-".to_string()),
            Just(" # c".to_string()),
            Just(" a: b".to_string()),
            Just(" [x".to_string()),
            Just(" \"v\" x".to_string()),
        ];
        let shape = prop_oneof![
            (key.clone(), value.clone()).prop_map(|(k, v)| format!("{k}:{v}")),
            (key, value).prop_map(|(k, v)| format!("- {k}:{v}")),
            Just("- x".to_string()),
            Just("-".to_string()),
            Just("  text".to_string()),
            Just("# c".to_string()),
            Just(String::new()),
        ];
        (0usize..4, shape).prop_map(|(depth, s)| format!("{}{s}", " ".repeat(depth * 2)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        /// Whatever the check accepts, libyaml accepts, with the same repeated keys.
        #[test]
        fn agrees_with_libyaml(lines in proptest::collection::vec(line(), 1..14)) {
            let text = lines.join("\n") + "\n";
            agrees(&text);
        }
    }
}
