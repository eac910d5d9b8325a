//! A route's `shadow` table: the bounds that keep mirroring from costing the client anything.

use super::values::{count_in, duration_or, share_in};
use crate::config::error::Errors;
use crate::config::model::ShadowConfig;
use crate::config::raw;

/// A route's `shadow` table; settings left out take [`ShadowConfig::default`].
pub(super) fn validate_shadow(errors: &mut Errors<'_>, raw: &raw::Shadow) -> Option<ShadowConfig> {
    let before = errors.len();
    let defaults = ShadowConfig::default();
    let sample = share_in(errors, raw.sample.as_ref(), "shadow.sample", defaults.sample);
    let noise_sample = share_in(
        errors,
        raw.noise_sample.as_ref(),
        "shadow.noise_sample",
        defaults.noise_sample,
    );
    let max_inflight = count_in(
        errors,
        raw.max_inflight.as_ref(),
        "shadow.max_inflight",
        1..=100_000,
        defaults.max_inflight as u32,
    ) as usize;
    let max_body = count_in(
        errors,
        raw.max_body.as_ref(),
        "shadow.max_body",
        0..=16 * 1024 * 1024,
        defaults.max_body as u32,
    ) as usize;
    let timeout = duration_or(errors, raw.timeout.as_ref(), defaults.timeout);
    (errors.len() == before).then(|| ShadowConfig {
        sample,
        max_inflight,
        max_body,
        timeout,
        unsafe_methods: raw.unsafe_methods.unwrap_or(false),
        noise_sample,
    })
}
