//! Media types: which rendering a response uses (`Accept`) and how a
//! request body is to be read (`Content-Type`).

use std::fmt;

use http::HeaderValue;

use crate::NotAcceptable;

/// The OCCI renderings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `text/plain` (also read: `text/occi+plain`): elements as body lines.
    /// The default.
    TextPlain,
    /// `text/occi`: elements in HTTP headers, body `OK`.
    TextOcci,
    /// `text/uri-list`: locations only (collections).
    UriList,
    /// `application/occi+json` (also read: `application/json`).
    OcciJson,
}

impl MediaType {
    /// All renderings, in the server's order of preference for wildcards.
    pub const ALL: [MediaType; 4] = [
        MediaType::TextPlain,
        MediaType::TextOcci,
        MediaType::OcciJson,
        MediaType::UriList,
    ];

    /// The canonical media type name, as sent in `Content-Type`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::TextPlain => "text/plain",
            MediaType::TextOcci => "text/occi",
            MediaType::UriList => "text/uri-list",
            MediaType::OcciJson => "application/occi+json",
        }
    }

    /// The `Content-Type` header value (no allocation).
    pub fn header_value(self) -> HeaderValue {
        HeaderValue::from_static(self.as_str())
    }

    /// Recognises a media type, ignoring case, parameters (`; charset=utf-8`)
    /// and white space. Aliases: `text/occi+plain` → `TextPlain`,
    /// `application/json` → `OcciJson`.
    pub fn parse(s: &str) -> Option<MediaType> {
        let essence = s.split(';').next().unwrap_or("").trim();
        let is = |name: &str| essence.eq_ignore_ascii_case(name);
        if is("text/plain") || is("text/occi+plain") {
            Some(MediaType::TextPlain)
        } else if is("text/occi") {
            Some(MediaType::TextOcci)
        } else if is("text/uri-list") {
            Some(MediaType::UriList)
        } else if is("application/occi+json") || is("application/json") {
            Some(MediaType::OcciJson)
        } else {
            None
        }
    }

    /// Chooses the response rendering from an `Accept` header value.
    ///
    /// Missing, empty or `*/*` → `text/plain` (OCCI 1.1 says so). Otherwise
    /// the offered type with the highest q-value wins; on a tie, an exact
    /// match beats `type/*` beats `*/*`, then the earlier entry in the
    /// header wins, then the server's order (plain, occi, json).
    /// `text/uri-list` is chosen only when named explicitly, never through a
    /// wildcard. Ranges with `q=0` exclude a type. Nothing acceptable →
    /// [`NotAcceptable`] (406).
    pub fn negotiate(accept: Option<&HeaderValue>) -> Result<MediaType, NotAcceptable> {
        let Some(accept) = accept else {
            return Ok(MediaType::TextPlain);
        };
        let text = String::from_utf8_lossy(accept.as_bytes());
        Self::negotiate_str(&text)
    }

    /// [`MediaType::negotiate`] on a string.
    pub fn negotiate_str(accept: &str) -> Result<MediaType, NotAcceptable> {
        if accept.trim().is_empty() {
            return Ok(MediaType::TextPlain);
        }
        // Per offered type: (q in thousandths, specificity, -position) of
        // the most specific range that matches it.
        let mut best: [Option<(u16, u8, usize)>; 4] = [None; 4];
        for (pos, range) in split_ranges(accept).enumerate() {
            let mut parts = range.split(';');
            let essence = parts.next().unwrap_or("").trim();
            let Some((ty, sub)) = essence.split_once('/') else {
                continue;
            };
            let (ty, sub) = (ty.trim(), sub.trim());
            let mut q = 1000u16;
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = parse_q(v.trim()).unwrap_or(1000);
                    }
                }
            }
            for (slot, offered) in best.iter_mut().zip(MediaType::ALL) {
                let (oty, osub) = offered.as_str().split_once('/').unwrap_or(("", ""));
                let mut specificity = if ty == "*" && sub == "*" {
                    1
                } else if ty.eq_ignore_ascii_case(oty) && sub == "*" {
                    2
                } else if ty.eq_ignore_ascii_case(oty) && sub.eq_ignore_ascii_case(osub) {
                    3
                } else {
                    0
                };
                // Aliases count as exact matches.
                if specificity == 0 && MediaType::parse(essence) == Some(offered) {
                    specificity = 3;
                }
                if specificity == 0 || (offered == MediaType::UriList && specificity < 3) {
                    continue;
                }
                let better = match slot {
                    None => true,
                    Some((_, s, _)) => specificity > *s,
                };
                if better {
                    *slot = Some((q, specificity, pos));
                }
            }
        }
        let mut chosen: Option<(MediaType, (u16, u8, usize))> = None;
        for (slot, offered) in best.iter().zip(MediaType::ALL) {
            let Some(score) = *slot else { continue };
            if score.0 == 0 {
                continue;
            }
            let wins = match chosen {
                None => true,
                Some((_, c)) => {
                    (score.0, score.1, std::cmp::Reverse(score.2))
                        > (c.0, c.1, std::cmp::Reverse(c.2))
                }
            };
            if wins {
                chosen = Some((offered, score));
            }
        }
        chosen
            .map(|(m, _)| m)
            .ok_or_else(|| NotAcceptable(accept.chars().take(200).collect()))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Splits an `Accept` value at commas outside quoted strings.
fn split_ranges(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut in_quotes = false;
        let mut escaped = false;
        for (i, c) in s.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if in_quotes => escaped = true,
                '"' => in_quotes = !in_quotes,
                ',' if !in_quotes => {
                    rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(s)
    })
}

/// `q` as thousandths (`0.5` → 500); `None` when malformed (then the
/// parameter is ignored: q = 1).
fn parse_q(v: &str) -> Option<u16> {
    let f: f32 = v.parse().ok()?;
    if !(0.0..=1.0).contains(&f) {
        return None;
    }
    Some((f * 1000.0).round() as u16)
}

/// How a request's content is to be read, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFormat {
    /// A `text/plain` body (its headers when the body is empty).
    TextPlain,
    /// `text/occi`: the OCCI headers (the body is ignored).
    TextOcci,
    /// A `text/uri-list` body (its headers when the body is empty).
    UriList,
    /// An `application/occi+json` body (its headers when the body is
    /// empty).
    OcciJson,
    /// No body to read: only the OCCI headers count (`curl -H 'Category:
    /// ...'` without a body, whatever Content-Type it sent).
    Headers,
}

impl RequestFormat {
    /// Classifies a request by `Content-Type` and whether its body is empty
    /// (white space counts as empty).
    ///
    /// - empty body: always readable; `text/occi`, or anything else →
    ///   the headers are read (`Headers`, or the named type, which falls
    ///   back to headers);
    /// - non-empty body without `Content-Type` → `text/plain` (the OCCI
    ///   default; the spec says clients must send one, curl users forget);
    /// - non-empty body with an unknown type → `Err` with that type
    ///   (415 Unsupported Media Type).
    pub fn classify(
        content_type: Option<&HeaderValue>,
        body_is_empty: bool,
    ) -> Result<RequestFormat, crate::RequestError> {
        let Some(ct) = content_type else {
            return Ok(if body_is_empty {
                RequestFormat::Headers
            } else {
                RequestFormat::TextPlain
            });
        };
        let text = String::from_utf8_lossy(ct.as_bytes());
        match MediaType::parse(&text) {
            Some(MediaType::TextPlain) => Ok(RequestFormat::TextPlain),
            Some(MediaType::TextOcci) => Ok(RequestFormat::TextOcci),
            Some(MediaType::UriList) => Ok(RequestFormat::UriList),
            Some(MediaType::OcciJson) => Ok(RequestFormat::OcciJson),
            None if body_is_empty => Ok(RequestFormat::Headers),
            None => Err(crate::RequestError::UnsupportedMediaType(
                text.chars().take(100).collect(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(s: &str) -> Result<MediaType, NotAcceptable> {
        MediaType::negotiate_str(s)
    }

    #[test]
    fn parse_ignores_case_and_parameters() {
        assert_eq!(
            MediaType::parse("Text/Plain; charset=utf-8"),
            Some(MediaType::TextPlain)
        );
        assert_eq!(
            MediaType::parse("text/occi+plain"),
            Some(MediaType::TextPlain)
        );
        assert_eq!(MediaType::parse(" text/occi "), Some(MediaType::TextOcci));
        assert_eq!(
            MediaType::parse("application/json"),
            Some(MediaType::OcciJson)
        );
        assert_eq!(MediaType::parse("text/html"), None);
    }

    #[test]
    fn negotiation_defaults_and_wildcards() {
        assert_eq!(MediaType::negotiate(None), Ok(MediaType::TextPlain));
        assert_eq!(neg(""), Ok(MediaType::TextPlain));
        assert_eq!(neg("*/*"), Ok(MediaType::TextPlain));
        assert_eq!(neg("text/*"), Ok(MediaType::TextPlain));
        assert_eq!(neg("application/*"), Ok(MediaType::OcciJson));
        assert_eq!(neg("text/occi"), Ok(MediaType::TextOcci));
        assert_eq!(neg("text/uri-list"), Ok(MediaType::UriList));
        assert_eq!(
            neg("text/html,application/xhtml+xml,*/*;q=0.8"),
            Ok(MediaType::TextPlain)
        );
    }

    #[test]
    fn negotiation_honours_q_specificity_and_order() {
        assert_eq!(
            neg("text/plain;q=0.5, application/occi+json"),
            Ok(MediaType::OcciJson)
        );
        assert_eq!(neg("application/occi+json, */*"), Ok(MediaType::OcciJson));
        assert_eq!(neg("text/occi, text/plain"), Ok(MediaType::TextOcci));
        assert_eq!(neg("text/plain, text/occi"), Ok(MediaType::TextPlain));
        assert_eq!(neg("*/*, text/plain;q=0"), Ok(MediaType::TextOcci));
        // A malformed q is ignored (q = 1), not a reason for 406.
        assert_eq!(neg("text/occi;q=high"), Ok(MediaType::TextOcci));
        assert_eq!(
            neg("text/occi;q=0.9; charset=\"a,b\", text/plain;q=0.1"),
            Ok(MediaType::TextOcci)
        );
    }

    #[test]
    fn nothing_acceptable_is_406() {
        for accept in ["text/html", "image/png, text/*;q=0", "garbage"] {
            let e = neg(accept).unwrap_err();
            assert_eq!(e, NotAcceptable(accept.to_string()), "the header is named");
            assert!(e.to_string().contains("is offered: text/plain"), "{e}");
        }
    }

    #[test]
    fn classify_request_content_types() {
        let ct = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(
            RequestFormat::classify(None, true),
            Ok(RequestFormat::Headers)
        );
        assert_eq!(
            RequestFormat::classify(None, false),
            Ok(RequestFormat::TextPlain)
        );
        assert_eq!(
            RequestFormat::classify(Some(&ct("text/occi; charset=utf-8")), false),
            Ok(RequestFormat::TextOcci)
        );
        assert_eq!(
            RequestFormat::classify(Some(&ct("application/x-www-form-urlencoded")), true),
            Ok(RequestFormat::Headers)
        );
        assert!(matches!(
            RequestFormat::classify(Some(&ct("application/xml")), false),
            Err(crate::RequestError::UnsupportedMediaType(t)) if t == "application/xml"
        ));
    }
}
