//! A route's `canary` table: the share of traffic sent to the new upstream, and the
//! `sticky` key that keeps one user on one side.

use crate::config::error::Errors;
use crate::config::model::{CanaryConfig, StickyKey};
use crate::config::raw;

/// `canary = { percent = …, sticky = … }`: `percent` within 0–100 (kept in basis points),
/// `sticky` a known key.
pub(super) fn validate_canary(errors: &mut Errors<'_>, table: &raw::Canary) -> Option<CanaryConfig> {
    let percent = *table.percent.get_ref();
    let basis_points = if (0.0..=100.0).contains(&percent) {
        Some((percent * 100.0).round() as u32)
    } else {
        errors.push(
            table.percent.span().start,
            format!("`canary.percent` must be between 0 and 100, got {percent}"),
        );
        None
    };
    let sticky = match &table.sticky {
        None => Some(None),
        Some(sticky) => match parse_sticky(sticky.get_ref()) {
            Ok(key) => Some(Some(key)),
            Err(message) => {
                errors.push(sticky.span().start, message);
                None
            }
        },
    };
    Some(CanaryConfig {
        basis_points: basis_points?,
        sticky: sticky?,
    })
}

/// `cookie:NAME`, `header:NAME` or `client_ip`.
fn parse_sticky(text: &str) -> Result<StickyKey, String> {
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
