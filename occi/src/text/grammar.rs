//! nom parsers for the header-level elements of the OCCI text renderings
//! (GFD.185 / GFD.229), shared by `text/occi` (header values) and
//! `text/plain` (body lines).
//!
//! Every parser works on `&str` and reports failures as [`Fail`]: the rest
//! of the input where it failed and what it expected, which the caller turns
//! into a [`ParseError`](crate::ParseError) with a byte position.

use std::borrow::Cow;

use nom::{
    branch::alt,
    bytes::complete::{take_while, take_while1, take_while_m_n},
    character::complete::{char, digit0, digit1, one_of},
    combinator::{opt, recognize},
    error::{ErrorKind, ParseError as NomParseError},
    IResult, Parser,
};
use serde_json::Number;

use crate::{ActionLink, AttributeDef, Category, CategoryClass, Link, Value, LINK};

/// Where a parser failed and what it wanted there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fail<'a> {
    /// The input left at the failure point.
    pub rest: &'a str,
    /// What was expected there.
    pub expected: &'static str,
}

impl<'a> NomParseError<&'a str> for Fail<'a> {
    fn from_error_kind(rest: &'a str, kind: ErrorKind) -> Self {
        let expected = match kind {
            ErrorKind::Char | ErrorKind::Tag => "a particular character",
            ErrorKind::Digit => "a digit",
            _ => "valid OCCI syntax",
        };
        Fail { rest, expected }
    }
    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, T> = IResult<&'a str, T, Fail<'a>>;

/// A hard failure at `rest`.
fn fail<'a, T>(rest: &'a str, expected: &'static str) -> PResult<'a, T> {
    Err(nom::Err::Failure(Fail { rest, expected }))
}

/// Turns a recoverable error of `r` (started at `at`) into a failure that
/// says what was expected at `at`.
fn expect<'a, T>(at: &'a str, expected: &'static str, r: PResult<'a, T>) -> PResult<'a, T> {
    match r {
        Err(nom::Err::Error(_)) => fail(at, expected),
        other => other,
    }
}

/// A parsed `Link` element: a link to a resource, or an action link.
#[derive(Clone, Debug, PartialEq)]
pub enum LinkValue {
    /// `<target>; rel=...; self=...; category=...; attr=value`.
    Link(Link),
    /// `<uri?action=term>; rel="scheme#term"`.
    Action(ActionLink),
}

// ---------------------------------------------------------------- lexemes

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Optional white space, including obsolete line folding (CRLF followed by
/// a space or tab), which clients still send and `text/plain` bodies use.
pub(crate) fn ows(mut i: &str) -> &str {
    loop {
        let r: PResult<'_, &str> = take_while(is_space).parse(i);
        if let Ok((rest, _)) = r {
            i = rest;
        }
        let after = i
            .strip_prefix("\r\n")
            .or_else(|| i.strip_prefix('\n'))
            .unwrap_or(i);
        if after.len() == i.len() || !after.starts_with(is_space) {
            return i;
        }
        i = after;
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A term, parameter name or attribute name (OCCI 1.2 grammar, which is a
/// superset of 1.1's lower-case-only names).
fn name(i: &str) -> PResult<'_, &str> {
    take_while1(is_name_char).parse(i)
}

fn is_bare_char(c: char) -> bool {
    !matches!(c, ',' | ';' | '"') && !c.is_ascii_whitespace() && !c.is_control()
}

/// An unquoted value (RFC 7230 token, leniently: anything up to a
/// separator).
fn bare(i: &str) -> PResult<'_, &str> {
    take_while1(is_bare_char).parse(i)
}

/// An RFC 7230 quoted-string. `\"` and `\\` unescape as usual; `\n`, `\r`,
/// `\t` and `\uXXXX` unescape to the control characters the renderer must
/// escape (a header value cannot hold them raw); any other `\x` is `x`.
pub(crate) fn quoted(i: &str) -> PResult<'_, Cow<'_, str>> {
    let (i, _) = expect(i, "'\"' opening a quoted string", char('"').parse(i))?;
    let (rest, plain) = until_quote_or_backslash(i);
    if let Some(after) = rest.strip_prefix('"') {
        return Ok((after, Cow::Borrowed(plain)));
    }
    let mut s = String::with_capacity(plain.len() + 16);
    s.push_str(plain);
    let mut i = rest;
    loop {
        let mut chars = i.chars();
        match chars.next() {
            None => return fail(i, "'\"' closing the quoted string"),
            Some('"') => return Ok((&i[1..], Cow::Owned(s))),
            Some('\\') => {
                let esc = &i[1..];
                let Some(c) = esc.chars().next() else {
                    return fail(esc, "a character after '\\'");
                };
                let mut next = &esc[c.len_utf8()..];
                match c {
                    'n' => s.push('\n'),
                    'r' => s.push('\r'),
                    't' => s.push('\t'),
                    'u' => match hex4(next) {
                        Some((ch, after)) => {
                            s.push(ch);
                            next = after;
                        }
                        None => s.push('u'),
                    },
                    c => s.push(c),
                }
                i = next;
            }
            Some(_) => {
                let (rest, chunk) = until_quote_or_backslash(i);
                s.push_str(chunk);
                i = rest;
            }
        }
    }
}

/// Splits before the first `"` or `\\` (ASCII, so any byte index found is
/// a char boundary); scans bytes rather than decoding chars.
fn until_quote_or_backslash(i: &str) -> (&str, &str) {
    let end = i
        .bytes()
        .position(|b| b == b'"' || b == b'\\')
        .unwrap_or(i.len());
    (&i[end..], &i[..end])
}

fn hex4(i: &str) -> Option<(char, &str)> {
    let r: PResult<'_, &str> = take_while_m_n(4, 4, |c: char| c.is_ascii_hexdigit()).parse(i);
    let (rest, digits) = r.ok()?;
    let ch = char::from_u32(u32::from_str_radix(digits, 16).ok()?)?;
    Some((ch, rest))
}

/// A parameter value: quoted string or bare token.
fn text_value(i: &str) -> PResult<'_, Cow<'_, str>> {
    if i.starts_with('"') {
        quoted(i)
    } else {
        let (rest, v) = expect(i, "a quoted string or token", bare(i))?;
        Ok((rest, Cow::Borrowed(v)))
    }
}

fn number_syntax(i: &str) -> PResult<'_, &str> {
    recognize((
        opt(one_of("+-")),
        alt((
            recognize((digit1, opt((char('.'), digit0)))),
            recognize((char('.'), digit1)),
        )),
        opt((one_of("eE"), opt(one_of("+-")), digit1)),
    ))
    .parse(i)
}

/// Parses a whole string as an OCCI number: integers stay integers
/// (`i64`, then `u64`), anything with a fraction or exponent (or too big)
/// is a float. `None` if it is not a number or not finite.
pub(crate) fn number(s: &str) -> Option<Number> {
    match number_syntax(s) {
        Ok(("", _)) => {}
        _ => return None,
    }
    if !s.contains(['.', 'e', 'E']) {
        if let Ok(n) = s.parse::<i64>() {
            return Some(n.into());
        }
        if let Ok(n) = s.trim_start_matches('+').parse::<u64>() {
            return Some(n.into());
        }
    }
    s.parse::<f64>().ok().and_then(Number::from_f64)
}

/// An attribute value: quoted string, or a bare token that is a number,
/// `true`/`false`, or else a string (OCCI enum values are often sent bare).
pub(crate) fn value(i: &str) -> PResult<'_, Value> {
    if i.starts_with('"') {
        let (rest, s) = quoted(i)?;
        return Ok((rest, Value::String(s.into_owned())));
    }
    let (rest, tok) = expect(
        i,
        "a value: a quoted string, a number or true/false",
        bare(i),
    )?;
    let v = match tok {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => match number(tok) {
            Some(n) => Value::Number(n),
            None => Value::String(tok.to_owned()),
        },
    };
    Ok((rest, v))
}

// ------------------------------------------------------- lists and params

/// A comma-separated header value (`#element`): empty elements are
/// skipped (RFC 7230), commas inside quoted strings or `<...>` belong to
/// the element.
pub(crate) fn list<'a, T>(
    input: &'a str,
    mut element: impl FnMut(&'a str) -> PResult<'a, T>,
    mut each: impl FnMut(T),
) -> Result<(), Fail<'a>> {
    let mut i = ows(input);
    loop {
        if i.is_empty() {
            return Ok(());
        }
        if let Some(rest) = i.strip_prefix(',') {
            i = ows(rest);
            continue;
        }
        match element(i) {
            Ok((rest, v)) => {
                each(v);
                i = ows(rest);
            }
            Err(nom::Err::Error(f) | nom::Err::Failure(f)) => return Err(f),
            Err(nom::Err::Incomplete(_)) => {
                return Err(Fail {
                    rest: i,
                    expected: "a complete value",
                })
            }
        }
        if i.is_empty() {
            return Ok(());
        }
        match i.strip_prefix(',') {
            Some(rest) => i = ows(rest),
            None => {
                return Err(Fail {
                    rest: i,
                    expected: "',' before the next value, or the end of the value",
                })
            }
        }
    }
}

/// `*( ";" name "=" value )` with white space and a trailing `;` allowed;
/// `each(name, input)` parses the value and returns the rest.
fn params<'a>(
    mut i: &'a str,
    mut each: impl FnMut(&'a str, &'a str) -> PResult<'a, ()>,
) -> PResult<'a, ()> {
    loop {
        let j = ows(i);
        let Some(mut j) = j.strip_prefix(';') else {
            return Ok((j, ()));
        };
        // Empty parameters (`;;`, a trailing `;`) are skipped.
        loop {
            j = ows(j);
            match j.strip_prefix(';') {
                Some(rest) => j = rest,
                None => break,
            }
        }
        if j.is_empty() || j.starts_with(',') {
            return Ok((j, ()));
        }
        let (j, key) = expect(j, "a parameter name", name(j))?;
        let j = ows(j);
        let (j, _) = expect(j, "'=' after the parameter name", char('=').parse(j))?;
        let j = ows(j);
        let (j, ()) = each(key, j)?;
        i = j;
    }
}

/// Maps a failure inside the (unescaped) value `v` of a parameter that
/// starts at `j` back to a position in the original input.
fn inside<'a, T>(
    j: &'a str,
    v: &str,
    borrowed: bool,
    r: PResult<'_, T>,
) -> Result<T, nom::Err<Fail<'a>>> {
    match r {
        Ok((_, t)) => Ok(t),
        Err(nom::Err::Error(f) | nom::Err::Failure(f)) => {
            let offset = (f.rest.as_ptr() as usize).saturating_sub(v.as_ptr() as usize);
            let base = if borrowed {
                // A borrowed value is a slice of `j` itself.
                (v.as_ptr() as usize).saturating_sub(j.as_ptr() as usize)
            } else {
                // An unescaped copy: positions are approximate (after the quote).
                1
            };
            let rest = j.get(base + offset..).unwrap_or(j);
            Err(nom::Err::Failure(Fail {
                rest,
                expected: f.expected,
            }))
        }
        Err(nom::Err::Incomplete(_)) => Err(nom::Err::Failure(Fail {
            rest: j,
            expected: "a complete value",
        })),
    }
}

fn type_ids(s: &str) -> Vec<String> {
    s.split_ascii_whitespace().map(str::to_owned).collect()
}

// -------------------------------------------------------------- Category

/// One `category-value`: `term; scheme="..."; class="kind"; ...`.
/// `scheme` is required; `class` is optional (MCN clients omit it);
/// unknown parameters are ignored; a repeated parameter overrides.
pub(crate) fn category(i: &str) -> PResult<'_, Category> {
    let start = i;
    let (i, term) = expect(i, "a category term", name(i))?;
    let mut c = Category {
        term: term.to_owned(),
        ..Category::default()
    };
    let mut has_scheme = false;
    let (i, ()) = params(i, |key, j| {
        let (rest, v) = text_value(j)?;
        if key.eq_ignore_ascii_case("scheme") {
            // An empty scheme is accepted: a type identifier without '#'
            // renders that way, and the server's lookup rejects it anyway.
            c.scheme = v.into_owned();
            has_scheme = true;
        } else if key.eq_ignore_ascii_case("class") {
            c.class = Some(match v.trim() {
                s if s.eq_ignore_ascii_case("kind") => CategoryClass::Kind,
                s if s.eq_ignore_ascii_case("mixin") => CategoryClass::Mixin,
                s if s.eq_ignore_ascii_case("action") => CategoryClass::Action,
                _ => return fail(j, "class \"kind\", \"mixin\" or \"action\""),
            });
        } else if key.eq_ignore_ascii_case("title") {
            c.title = Some(v.into_owned());
        } else if key.eq_ignore_ascii_case("rel") {
            c.rel = type_ids(&v);
        } else if key.eq_ignore_ascii_case("location") {
            c.location = Some(v.into_owned());
        } else if key.eq_ignore_ascii_case("attributes") {
            c.attributes = inside(j, &v, matches!(v, Cow::Borrowed(_)), attribute_defs(&v))?;
        } else if key.eq_ignore_ascii_case("actions") {
            c.actions = type_ids(&v);
        }
        Ok((rest, ()))
    })?;
    if !has_scheme {
        return fail(
            &start[term.len()..],
            "a scheme=\"...\" parameter (every category needs one)",
        );
    }
    Ok((i, c))
}

/// `name{prop prop} name ...` inside a category's `attributes` parameter.
/// Known properties: `required`, `immutable` (and 1.2-style `mutable`);
/// others are ignored.
fn attribute_defs(mut i: &str) -> PResult<'_, Vec<AttributeDef>> {
    let mut defs = Vec::new();
    loop {
        i = i.trim_start();
        if i.is_empty() {
            return Ok((i, defs));
        }
        let (rest, n) = expect(i, "an attribute name", name(i))?;
        let mut def = AttributeDef::new(n);
        i = rest;
        if let Some(props) = i.strip_prefix('{') {
            let (rest, body) = take_while(|c| c != '}' && c != '{').parse(props)?;
            let Some(rest) = rest.strip_prefix('}') else {
                return fail(rest, "'}' closing the attribute properties");
            };
            for p in body.split_ascii_whitespace() {
                if p.eq_ignore_ascii_case("required") {
                    def.required = true;
                } else if p.eq_ignore_ascii_case("immutable") {
                    def.mutable = false;
                } else if p.eq_ignore_ascii_case("mutable") {
                    def.mutable = true;
                }
            }
            i = rest;
        }
        if !i.is_empty() && !i.starts_with(char::is_whitespace) {
            return fail(i, "white space between attribute definitions");
        }
        defs.push(def);
    }
}

// ------------------------------------------------------------------ Link

fn uri_in_brackets(i: &str) -> PResult<'_, &str> {
    let (i, _) = expect(i, "'<' opening the link target", char('<').parse(i))?;
    let (i, uri) = expect(
        i,
        "a URI inside <...>",
        take_while(|c: char| c != '>' && c != '<' && !c.is_control() && c != ' ').parse(i),
    )?;
    let (i, _) = expect(i, "'>' closing the link target", char('>').parse(i))?;
    Ok((i, uri))
}

/// Whether a link URI invokes an action (`?action=term` or `&action=term`).
fn is_action_uri(uri: &str) -> bool {
    match uri.split_once('?') {
        Some((_, query)) => query.split('&').any(|kv| kv.starts_with("action=")),
        None => false,
    }
}

/// One `link-value`: a resource link or an action link. Parameters `rel`,
/// `self` and `category` are recognised case-insensitively; every other
/// parameter is a link attribute. A link without `category` has the core
/// `link` kind. An action link needs `rel`; its other parameters are
/// ignored.
pub(crate) fn link(i: &str) -> PResult<'_, LinkValue> {
    let (i, uri) = uri_in_brackets(i)?;
    let action = is_action_uri(uri);
    let mut l = Link {
        kind: String::new(),
        mixins: Vec::new(),
        location: None,
        source: None,
        source_kind: None,
        target: uri.to_owned(),
        rel: Vec::new(),
        attributes: crate::Attributes::new(),
        actions: Vec::new(),
    };
    let after_uri = i;
    let (i, ()) = params(i, |key, j| {
        if key.eq_ignore_ascii_case("rel") {
            let (rest, v) = text_value(j)?;
            l.rel = type_ids(&v);
            Ok((rest, ()))
        } else if key.eq_ignore_ascii_case("self") {
            let (rest, v) = text_value(j)?;
            l.location = Some(v.into_owned());
            Ok((rest, ()))
        } else if key.eq_ignore_ascii_case("category") {
            let (rest, v) = text_value(j)?;
            let mut ids = v.split_ascii_whitespace();
            if let Some(kind) = ids.next() {
                l.kind = kind.to_owned();
            }
            l.mixins = ids.map(str::to_owned).collect();
            Ok((rest, ()))
        } else {
            let (rest, v) = value(j)?;
            l.attributes.insert(key, v);
            Ok((rest, ()))
        }
    })?;
    if action {
        let mut rel = l.rel.into_iter();
        return match (rel.next(), rel.next()) {
            (Some(action), None) => Ok((
                i,
                LinkValue::Action(ActionLink {
                    target: Some(l.target),
                    action,
                }),
            )),
            _ => fail(
                after_uri,
                "rel=\"<action type identifier>\" (exactly one) on an action link",
            ),
        };
    }
    if l.kind.is_empty() {
        l.kind = LINK.to_owned();
    }
    Ok((i, LinkValue::Link(l)))
}

// ------------------------------------------------------------- Attribute

/// One `attribute-repr`: `name=value`.
pub(crate) fn attribute(i: &str) -> PResult<'_, (String, Value)> {
    let (i, n) = expect(i, "an attribute name", name(i))?;
    let i = ows(i);
    let (i, _) = expect(i, "'=' after the attribute name", char('=').parse(i))?;
    let i = ows(i);
    let (i, v) = value(i)?;
    Ok((i, (n.to_owned(), v)))
}

// -------------------------------------------------------------- Location

/// One location: a URI-reference, bare (the standard form), or leniently
/// in `<...>` or quotes.
pub(crate) fn location(i: &str) -> PResult<'_, String> {
    if i.starts_with('<') {
        let (rest, uri) = uri_in_brackets(i)?;
        if uri.is_empty() {
            return fail(i, "a non-empty URI");
        }
        return Ok((rest, uri.to_owned()));
    }
    if i.starts_with('"') {
        let (rest, uri) = quoted(i)?;
        if uri.is_empty() {
            return fail(i, "a non-empty URI");
        }
        return Ok((rest, uri.into_owned()));
    }
    // A bare URI may hold ';' (locations have no parameters).
    let (rest, uri) = expect(
        i,
        "a URI",
        take_while1(|c: char| c != ',' && c != '"' && !c.is_ascii_whitespace() && !c.is_control())
            .parse(i),
    )?;
    Ok((rest, uri.to_owned()))
}

/// A header (or body line) name of the OCCI text renderings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Category,
    Link,
    Attribute,
    OcciLocation,
    Location,
}

impl Field {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::Category => "Category",
            Field::Link => "Link",
            Field::Attribute => "X-OCCI-Attribute",
            Field::OcciLocation => "X-OCCI-Location",
            Field::Location => "Location",
        }
    }
}

/// `name ":"` at the start of a body line (case-insensitive, ASCII).
pub(crate) fn field(i: &str) -> PResult<'_, Field> {
    const EXPECTED: &str = "Category:, Link:, X-OCCI-Attribute: or X-OCCI-Location:";
    let (rest, n) = expect(
        i,
        EXPECTED,
        take_while1(|c: char| c.is_ascii_alphanumeric() || c == '-').parse(i),
    )?;
    let f = if n.eq_ignore_ascii_case("category") {
        Field::Category
    } else if n.eq_ignore_ascii_case("link") {
        Field::Link
    } else if n.eq_ignore_ascii_case("x-occi-attribute") {
        Field::Attribute
    } else if n.eq_ignore_ascii_case("x-occi-location") {
        Field::OcciLocation
    } else if n.eq_ignore_ascii_case("location") {
        Field::Location
    } else {
        return fail(i, EXPECTED);
    };
    let rest = ows(rest);
    let (rest, _) = expect(rest, "':' after the field name", char(':').parse(rest))?;
    Ok((rest, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<'a, T>(r: PResult<'a, T>) -> (&'a str, T) {
        match r {
            Ok(v) => v,
            Err(e) => panic!("parse failed: {e:?}"),
        }
    }

    #[test]
    fn quoted_strings_unescape() {
        assert_eq!(ok(quoted(r#""a\"b\\c" x"#)), (" x", Cow::from("a\"b\\c")));
        assert_eq!(ok(quoted(r#""a,b;c=d""#)).1, "a,b;c=d");
        assert_eq!(ok(quoted(r#""l1\nl2\u0001\q""#)).1, "l1\nl2\u{1}q");
        assert_eq!(
            quoted("\"open"),
            Err(nom::Err::Failure(Fail {
                rest: "",
                expected: "'\"' closing the quoted string"
            }))
        );
    }

    #[test]
    fn numbers_keep_integer_or_float() {
        assert_eq!(number("5"), Some(5.into()));
        assert_eq!(number("-5").unwrap().to_string(), "-5");
        assert_eq!(number("5.0").unwrap().to_string(), "5.0");
        assert_eq!(number("1e3").unwrap().as_f64(), Some(1000.0));
        assert_eq!(number("18446744073709551615"), Some(u64::MAX.into()));
        assert!(number("1.2.3").is_none());
        assert!(number("").is_none());
        assert!(number("-").is_none());
        assert!(number("1e999").is_none());
    }

    #[test]
    fn empty_parameters_are_skipped() {
        let (rest, c) = ok(category("a;; scheme=\"s\" ; ;class=kind;;"));
        assert_eq!(rest, "");
        assert_eq!(c.class, Some(CategoryClass::Kind));
    }

    #[test]
    fn ows_skips_folded_lines() {
        assert_eq!(ows(" \t\r\n  x"), "x");
        assert_eq!(ows(" \r\nx"), "\r\nx");
    }
}
