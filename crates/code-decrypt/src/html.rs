//! Cognito HTML-escapes the temporary password it encrypts for a custom
//! sender's `AdminCreateUser` event (both senders, SMS and email): what the
//! user must type is the unescaped text.

/// Undoes the HTML escaping Cognito applies to a temporary password
/// (`&lt;` `&gt;` `&amp;` `&quot;` `&#39;`/`&apos;` and numeric references),
/// in one pass so that `&amp;lt;` becomes `&lt;`, not `<`. Anything that is
/// not a complete entity is left as it is.
pub fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cognito_escapes_are_undone_once() {
        assert_eq!(
            html_unescape("Tmp&lt;9x&gt;Q&amp;z&quot;&#39;"),
            "Tmp<9x>Q&z\"'"
        );
        assert_eq!(html_unescape("a&amp;lt;b"), "a&lt;b");
        assert_eq!(html_unescape("&#x41;&#66;&apos;"), "AB'");
        assert_eq!(html_unescape("plain"), "plain");
        // Not entities: left as they are.
        assert_eq!(html_unescape("a & b &nope; &"), "a & b &nope; &");
        assert_eq!(html_unescape("&#xD800;&lt"), "&#xD800;&lt");
    }

    #[test]
    fn hostile_input_never_panics() {
        for s in [
            "&",
            "&;",
            "&#;",
            "&#x;",
            "&#99999999999;",
            "&#x110000;",
            "&&&&;;",
            "é&lt;é",
            "&\u{1F600};",
            "&#1\u{301};",
            "&lt;&gt;&amp;&quot;&#39;&apos;",
        ] {
            let _ = html_unescape(s);
        }
        assert_eq!(html_unescape("é&lt;ü"), "é<ü");
    }
}
