//! OCCI versions: the `Server` header we send and the version a client
//! asks for in its `User-Agent`.

use http::HeaderValue;

/// The OCCI version this crate implements.
///
/// We claim 1.2: the JSON rendering is GFD.225's, the text grammar
/// accepted is 1.2's (a superset of 1.1's: upper-case and digit-led terms
/// and names, `text/occi+plain`), and every 1.1 interaction MCN and
/// compliance clients perform works unchanged (they ignore the version).
pub const OCCI_VERSION: (u8, u8) = (1, 2);

/// The `Server` header value: `occi-so/<crate version> OCCI/1.2`.
pub const SERVER: &str = concat!("occi-so/", env!("CARGO_PKG_VERSION"), " OCCI/1.2");

/// [`SERVER`] as a header value (no allocation).
pub fn server_header() -> HeaderValue {
    HeaderValue::from_static(SERVER)
}

/// The OCCI version a `User-Agent` claims (`... OCCI/1.1 ...`), if any.
pub fn client_version(user_agent: &HeaderValue) -> Option<(u8, u8)> {
    let s = std::str::from_utf8(user_agent.as_bytes()).ok()?;
    let v = s
        .split(|c: char| c.is_whitespace())
        .find_map(|token| token.strip_prefix("OCCI/"))?;
    let (major, minor) = v.split_once('.')?;
    let minor: String = minor.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Whether a client asking for `v` asks for more than we implement
/// (OCCI says: 501 Not Implemented).
pub fn is_unsupported(v: (u8, u8)) -> bool {
    v > OCCI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_header_names_the_occi_version() {
        assert!(SERVER.starts_with("occi-so/"));
        assert!(SERVER.ends_with(" OCCI/1.2"));
        assert_eq!(server_header().to_str().unwrap(), SERVER);
    }

    #[test]
    fn client_versions() {
        let ua = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(client_version(&ua("pOCCI/1.0 OCCI/1.1")), Some((1, 1)));
        assert_eq!(client_version(&ua("curl/8.0")), None);
        assert!(is_unsupported(client_version(&ua("x OCCI/2.0")).unwrap()));
        assert!(!is_unsupported((1, 1)));
    }
}
