//! Writers for the header-level elements of the OCCI text renderings.
//!
//! Each writer appends one element to a `String` (no intermediate
//! allocations) and never emits anything that could break a header value:
//! quotes, backslashes and control characters inside quoted strings are
//! escaped, names are restricted to the OCCI name characters, and URIs are
//! percent-encoded where they would end the element.

use std::fmt::Write;

use crate::{Category, CategoryClass, Link, Value};

/// Appends `s` as a quoted string (`\"`, `\\`, `\n`, `\r`, `\t`, `\u00XX`).
/// Scans bytes: everything escaped is ASCII, so every index where an escape
/// starts is a char boundary.
pub(crate) fn write_quoted(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut plain_from = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f | 0x7f => "",
            _ => continue,
        };
        out.push_str(&s[plain_from..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        plain_from = i + 1;
    }
    out.push_str(&s[plain_from..]);
    out.push('"');
}

/// Appends a term or attribute name; characters outside `[A-Za-z0-9._-]`
/// become `_` (an empty name becomes `_`).
pub(crate) fn write_name(out: &mut String, s: &str) {
    if s.is_empty() {
        out.push('_');
        return;
    }
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        out.push(
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            },
        );
    }
}

fn needs_encoding(c: char, comma: bool) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(c, '"' | '<' | '>' | '\\')
        || (comma && c == ',')
}

/// Appends a URI, percent-encoding what would end it: controls, white
/// space, `"<>\`, and `,` when `comma` (a bare list element).
fn write_encoded(out: &mut String, s: &str, comma: bool) {
    let plain_ascii = s.bytes().all(|b| {
        b > b' ' && b < 0x7f && !matches!(b, b'"' | b'<' | b'>' | b'\\') && !(comma && b == b',')
    });
    if plain_ascii || !s.chars().any(|c| needs_encoding(c, comma)) {
        out.push_str(s);
        return;
    }
    let mut buf = [0u8; 4];
    for c in s.chars() {
        if needs_encoding(c, comma) {
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
}

/// Appends a location as an absolute URL: `base` + `path` for paths
/// starting with `/`, anything else (already absolute) as it is.
pub(crate) fn write_url(out: &mut String, base: &str, path: &str, comma: bool) {
    if path.starts_with('/') {
        write_encoded(out, base, comma);
    }
    write_encoded(out, path, comma);
}

/// Appends space-separated type identifiers (white space inside one is
/// percent-encoded so the list splits back the same).
fn write_type_ids<'a>(out: &mut String, ids: impl IntoIterator<Item = &'a str>) {
    let mut tmp = String::new();
    for (n, id) in ids.into_iter().enumerate() {
        if n > 0 {
            tmp.push(' ');
        }
        write_encoded(&mut tmp, id, false);
    }
    write_quoted(out, &tmp);
}

/// Appends a value: strings quoted, numbers and booleans bare, lists and
/// objects as quoted JSON text.
pub(crate) fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => write_quoted(out, s),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::List(_) | Value::Object(_) => write_quoted(out, &v.to_string()),
    }
}

/// Appends `name=value`.
pub(crate) fn write_attribute(out: &mut String, name: &str, v: &Value) {
    write_name(out, name);
    out.push('=');
    write_value(out, v);
}

/// Appends a category: the reference form (term, scheme, class) or, with
/// `full`, the definition form with every parameter that is set. The
/// location stays as given (relative, `/orchestrator/`).
pub(crate) fn write_category(out: &mut String, c: &Category, full: bool) {
    write_name(out, &c.term);
    out.push_str("; scheme=");
    write_quoted(out, &c.scheme);
    if let Some(class) = c.class {
        out.push_str("; class=\"");
        out.push_str(class.as_str());
        out.push('"');
    }
    if !full {
        return;
    }
    if let Some(t) = &c.title {
        out.push_str("; title=");
        write_quoted(out, t);
    }
    if !c.rel.is_empty() {
        out.push_str("; rel=");
        write_type_ids(out, c.rel.iter().map(String::as_str));
    }
    if let Some(l) = &c.location {
        out.push_str("; location=");
        write_quoted(out, l);
    }
    if !c.attributes.is_empty() {
        let mut defs = String::new();
        for (n, a) in c.attributes.iter().enumerate() {
            if n > 0 {
                defs.push(' ');
            }
            write_name(&mut defs, &a.name);
            match (a.required, a.mutable) {
                (false, true) => {}
                (true, true) => defs.push_str("{required}"),
                (false, false) => defs.push_str("{immutable}"),
                (true, false) => defs.push_str("{required immutable}"),
            }
        }
        out.push_str("; attributes=");
        write_quoted(out, &defs);
    }
    if !c.actions.is_empty() {
        out.push_str("; actions=");
        write_type_ids(out, c.actions.iter().map(String::as_str));
    }
}

/// Appends a category reference `term; scheme="..."; class="..."` straight
/// from a type identifier (no intermediate `Category`).
pub(crate) fn write_category_ref(out: &mut String, type_id: &str, class: CategoryClass) {
    let (scheme, term) = crate::category::split_type_id(type_id);
    write_name(out, term);
    out.push_str("; scheme=");
    write_quoted(out, scheme);
    out.push_str("; class=\"");
    out.push_str(class.as_str());
    out.push('"');
}

/// Appends a resource link: `<target>; rel="..."; self="..."; category="kind mixins"; attr=value...`.
pub(crate) fn write_link(out: &mut String, base: &str, l: &Link) {
    out.push('<');
    write_url(out, base, &l.target, false);
    out.push('>');
    if !l.rel.is_empty() {
        out.push_str("; rel=");
        write_type_ids(out, l.rel.iter().map(String::as_str));
    }
    if let Some(s) = &l.location {
        out.push_str("; self=\"");
        write_url(out, base, s, false);
        out.push('"');
    }
    out.push_str("; category=");
    write_type_ids(
        out,
        std::iter::once(l.kind.as_str()).chain(l.mixins.iter().map(String::as_str)),
    );
    for (name, v) in l.attributes.iter() {
        out.push_str("; ");
        write_attribute(out, name, v);
    }
}

/// Appends an action link `<location?action=term>; rel="scheme#term"`.
pub(crate) fn write_action_link(out: &mut String, base: &str, location: &str, action: &str) {
    let (_, term) = crate::category::split_type_id(action);
    out.push('<');
    write_url(out, base, location, false);
    out.push(if location.contains('?') { '&' } else { '?' });
    out.push_str("action=");
    write_name(out, term);
    out.push_str(">; rel=");
    write_type_ids(out, std::iter::once(action));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_everything_that_breaks_a_header() {
        let mut s = String::new();
        write_quoted(&mut s, "a\"b\\c\r\nd\u{7f}é");
        assert_eq!(s, r#""a\"b\\c\r\nd\u007fé""#);
    }

    #[test]
    fn urls_are_absolute_and_safe() {
        let mut s = String::new();
        write_url(&mut s, "http://h:1", "/a b,c", true);
        assert_eq!(s, "http://h:1/a%20b%2Cc");
        s.clear();
        write_url(&mut s, "http://h:1", "http://other/x", false);
        assert_eq!(s, "http://other/x");
    }

    #[test]
    fn names_are_sanitised() {
        let mut s = String::new();
        write_name(&mut s, "a b=\"c");
        assert_eq!(s, "a_b__c");
    }
}
