//! `[record]`: where sampled traffic is written as a parity corpus, how much, and which
//! headers are redacted.

use super::values::{relative_to, share_in};
use crate::config::error::Errors;
use crate::config::model::RecordConfig;
use crate::config::raw;

/// The `[record]` section; `None` when it has errors (all of them pushed).
pub(crate) fn validate_record(errors: &mut Errors<'_>, raw: &raw::Record, file: &str) -> Option<RecordConfig> {
    let before = errors.len();
    let sample = share_in(errors, raw.sample.as_ref(), "record.sample", 1.0);
    let max_bytes = match &raw.max_bytes {
        None => 100 * 1024 * 1024,
        Some(v) if *v.get_ref() >= 4096 => *v.get_ref() as u64,
        Some(v) => {
            errors.push(
                v.span().start,
                format!("`record.max_bytes` must be at least 4096, got {}", v.get_ref()),
            );
            0
        }
    };
    let mut redact = Vec::new();
    for name in raw.redact_headers.iter().flatten() {
        match http::HeaderName::from_bytes(name.get_ref().as_bytes()) {
            Ok(header) => redact.push(header),
            Err(_) => errors.push(name.span().start, format!("bad header name `{}`", name.get_ref())),
        }
    }
    if raw.path.get_ref().is_empty() {
        errors.push(raw.path.span().start, "`record.path` is empty".to_owned());
    }
    let path = relative_to(file, raw.path.get_ref());
    (errors.len() == before).then_some(RecordConfig {
        path,
        sample,
        max_bytes,
        redact,
        responses: raw.responses.unwrap_or(false),
    })
}
