//! Locations inside a resource: as JSON Pointers (RFC 6901) for the JSON output, and as short
//! dotted paths for people (hunk headers).

use std::fmt::Write as _;

/// One step into a value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// `/metadata/labels/k8s.element.io~1x`; the whole document is `""`.
pub fn pointer(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        out.push('/');
        match seg {
            Seg::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
            Seg::Index(i) => {
                let _ = write!(out, "{i}");
            }
        }
    }
    out
}

/// `spec.template.spec.containers[0].args[3]`, `metadata.labels["app.kubernetes.io/name"]`.
pub fn display(segs: &[Seg]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k)
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Key(k) => {
                let _ = write!(out, "[{}]", serde_json::Value::String(k.clone()));
            }
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape() {
        let segs = [
            Seg::Key("metadata".into()),
            Seg::Key("a/b~c".into()),
            Seg::Index(2),
        ];
        assert_eq!(pointer(&segs), "/metadata/a~1b~0c/2");
        assert_eq!(pointer(&[]), "");
        assert_eq!(display(&segs), "metadata[\"a/b~c\"][2]");
        assert_eq!(
            display(&[Seg::Key("spec".into()), Seg::Key("replicas".into())]),
            "spec.replicas"
        );
    }
}
