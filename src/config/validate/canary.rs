//! A route's `canary` table: the `sticky` key that keeps one user on one side.

use crate::config::model::StickyKey;

/// `cookie:NAME`, `header:NAME` or `client_ip`.
pub(super) fn parse_sticky(text: &str) -> Result<StickyKey, String> {
    let bad = || format!("bad `canary.sticky` `{text}`: expected `cookie:NAME`, `header:NAME` or `client_ip`");
    match text.split_once(':') {
        None if text == "client_ip" => Ok(StickyKey::ClientIp),
        Some(("cookie", name))
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b'=' && b != b';') =>
        {
            Ok(StickyKey::Cookie(name.to_owned()))
        }
        Some(("header", name)) => http::HeaderName::from_bytes(name.as_bytes())
            .map(StickyKey::Header)
            .map_err(|_| bad()),
        _ => Err(bad()),
    }
}
