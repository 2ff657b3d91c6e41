//! `text/uri-list` (RFC 2483): one URI per line, `#` comment lines.

use crate::{Origin, ParseError};

/// Parses a `text/uri-list` body: CRLF or LF line ends; blank lines and
/// lines starting with `#` are skipped; surrounding white space is trimmed.
/// A URI may not contain white space, control characters, `<`, `>` or `"`.
pub fn parse(body: &str) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    for (n, raw) in body.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let start = line.len() - line.trim_start().len();
        let uri = line.trim();
        if uri.is_empty() || uri.starts_with('#') {
            continue;
        }
        if let Some(bad) =
            uri.find(|c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
        {
            return Err(ParseError::at(
                Origin::BodyLine { line: n + 1 },
                line,
                start + bad,
                "one URI per line (no spaces, quotes or angle brackets)",
            ));
        }
        out.push(uri.to_owned());
    }
    Ok(out)
}

/// Appends `locations` as a uri-list, each made absolute with `base`,
/// CRLF-terminated as RFC 2483 asks.
pub fn render_into<'a>(out: &mut String, base: &str, locations: impl IntoIterator<Item = &'a str>) {
    for l in locations {
        crate::text::render::write_url(out, base, l, false);
        out.push_str("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_crlf() {
        let l =
            parse("# uri:/orchestrator/\r\nhttp://h/orchestrator/a\r\n\r\n  /orchestrator/b  \n")
                .unwrap();
        assert_eq!(l, ["http://h/orchestrator/a", "/orchestrator/b"]);
    }

    #[test]
    fn bad_uri_names_line_and_byte() {
        let e = parse("http://h/a\nhttp://h/b c\n").unwrap_err();
        assert_eq!(e.origin, Origin::BodyLine { line: 2 });
        assert_eq!(e.position, 10);
    }

    #[test]
    fn render_is_absolute_and_crlf() {
        let mut s = String::new();
        render_into(&mut s, "http://h:1", ["/a/1", "http://x/y"]);
        assert_eq!(s, "http://h:1/a/1\r\nhttp://x/y\r\n");
    }
}
