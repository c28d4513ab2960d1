//! Kubernetes and Helm name rules, in one place: the live reader checks names before they go
//! into a request path, `argocd` before it hands a release name to `helm template`, and `policy`
//! before a name goes into a selector or CEL. One definition, so the three cannot disagree about
//! what a valid name is.

/// One DNS label's characters: lowercase alphanumerics and `-`, not at either end. No length
/// limit here: a label (63) and a subdomain (253 in all) bound it differently.
fn is_label_text(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 label (namespaces).
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_label_text(s)
}

/// RFC 1123 subdomain (object names); also keeps names from altering a request path.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label_text)
}

/// Helm's release name rule (a DNS-1123 subdomain of at most 53 characters).
pub fn is_release_name(s: &str) -> bool {
    s.len() <= 53 && is_dns_subdomain(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns_subdomain("sh.helm.release.v1.ess.v12"));
        assert!(!is_dns_subdomain("a/b"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(!is_dns_subdomain("A"));
        assert!(!is_dns_subdomain(""));
        assert!(!is_dns_subdomain(&"a".repeat(254)));
        assert!(is_dns_label("ess"));
        assert!(is_dns_label(&"a".repeat(63)));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(!is_dns_label("e.ss"));
        assert!(!is_dns_label("-ess"));
        assert!(!is_dns_label("ess-"));
        assert!(!is_dns_label(""));
        assert!(is_release_name("ess"));
        assert!(is_release_name("ess.prod"));
        assert!(!is_release_name(&"a".repeat(54)));
        assert!(!is_release_name("Ess"));
        assert!(!is_release_name(""));
    }
}
