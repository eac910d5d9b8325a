//! A route's `fallback` and `fallback_max_body`: replaying to legacy a request the new
//! upstream failed needs two different sides and a bound on the body buffered for it.

use crate::config::error::Errors;
use crate::config::raw;

/// With `fallback = true`: the largest request body buffered for a replay (64 KiB unless
/// `fallback_max_body` says otherwise, at most 16 MiB). `None`: no fallback, or an error.
pub(super) fn validate_fallback(
    errors: &mut Errors<'_>,
    raw: &raw::Route,
    new: Option<&str>,
    legacy: Option<&str>,
) -> Option<usize> {
    match (&raw.fallback, &raw.fallback_max_body) {
        (Some(on), limit) if *on.get_ref() => {
            if new.is_none() {
                errors.push(
                    on.span().start,
                    "`fallback = true` needs a `new` upstream to fall back from".to_owned(),
                );
            }
            if new.is_some() && new == legacy {
                errors.push(
                    on.span().start,
                    "`fallback = true` needs `new` and `legacy` to differ".to_owned(),
                );
            }
            match limit {
                None => Some(65_536),
                Some(v) if (0..=16 * 1024 * 1024).contains(v.get_ref()) => Some(*v.get_ref() as usize),
                Some(v) => {
                    errors.push(
                        v.span().start,
                        format!(
                            "`fallback_max_body` must be between 0 and 16777216 bytes, got {}",
                            v.get_ref()
                        ),
                    );
                    None
                }
            }
        }
        (_, Some(v)) => {
            errors.push(
                v.span().start,
                "`fallback_max_body` is only used with `fallback = true`".to_owned(),
            );
            None
        }
        _ => None,
    }
}
