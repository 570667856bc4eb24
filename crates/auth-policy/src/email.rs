/// The domain of an email address, lower-cased, without a trailing dot; `None`
/// when the value has no `@` or nothing after it.
pub fn email_domain(email: &str) -> Option<String> {
    let (local, domain) = email.trim().rsplit_once('@')?;
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if local.is_empty() || domain.is_empty() || !is_domain_name(&domain) {
        return None;
    }
    Some(domain)
}

/// One entry of `ALLOWED_EMAIL_DOMAINS` or `BLOCKED_EMAIL_DOMAINS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainPattern {
    /// `example.com`: that domain exactly.
    Exact(String),
    /// `.example.com`: any subdomain of `example.com`, not `example.com` itself.
    Subdomains(String),
}

impl DomainPattern {
    /// Parses one entry; the error is a hint for the operator.
    pub fn parse(entry: &str) -> Result<Self, &'static str> {
        let e = entry.trim().trim_end_matches('.').to_ascii_lowercase();
        if e.starts_with("*.") {
            return Err("write .example.com (a leading dot) to match every subdomain");
        }
        if e.contains('@') {
            return Err("give the domain only, without the part before @");
        }
        let (pattern, name) = match e.strip_prefix('.') {
            Some(rest) => (Self::Subdomains(rest.to_owned()), rest),
            None => (Self::Exact(e.clone()), e.as_str()),
        };
        if !is_domain_name(name) {
            return Err("expected a domain such as example.com or .example.com");
        }
        Ok(pattern)
    }

    /// Whether `domain` (already lower-cased, as [`email_domain`] returns it)
    /// matches this entry.
    pub fn matches(&self, domain: &str) -> bool {
        match self {
            Self::Exact(d) => domain == d,
            Self::Subdomains(d) => domain
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

fn is_domain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_domain_lower_cased() {
        assert_eq!(
            email_domain("Alice@Example.COM").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            email_domain("a@b@corp.example.com.").as_deref(),
            Some("corp.example.com")
        );
        assert_eq!(email_domain("no-at-sign"), None);
        assert_eq!(email_domain("alice@"), None);
        assert_eq!(email_domain("@example.com"), None);
        assert_eq!(email_domain("alice@exa mple.com"), None);
        assert_eq!(email_domain("alice@.com"), None);
    }

    #[test]
    fn exact_entries_match_only_that_domain() {
        let p = DomainPattern::parse("Example.com").unwrap();
        assert!(p.matches("example.com"));
        assert!(!p.matches("mail.example.com"));
        assert!(!p.matches("badexample.com"));
    }

    #[test]
    fn dotted_entries_match_only_subdomains() {
        let p = DomainPattern::parse(".example.com").unwrap();
        assert!(p.matches("mail.example.com"));
        assert!(p.matches("a.b.example.com"));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("badexample.com"));
        assert!(!p.matches(".example.com"));
    }

    #[test]
    fn refuses_entries_that_are_not_domains() {
        for bad in [
            "",
            ".",
            "*.example.com",
            "@example.com",
            "a@example.com",
            "exa mple.com",
            "-x.com",
            "a..b",
        ] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
