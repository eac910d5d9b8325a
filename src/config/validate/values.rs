//! Checks of single values that every section shares: counts and shares within a range,
//! durations, socket addresses, names, paths relative to the config file, and the message for
//! an unknown upstream. Each pushes its error at the value's own position.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::error::Errors;

/// A count setting `name` within `range` (an error at its position otherwise), or `default` when absent.
pub(super) fn count_in(
    errors: &mut Errors<'_>,
    value: Option<&toml::Spanned<i64>>,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
    default: u32,
) -> u32 {
    match value {
        None => default,
        Some(v) if range.contains(v.get_ref()) => *v.get_ref() as u32,
        Some(v) => {
            errors.push(
                v.span().start,
                format!(
                    "`{name}` must be between {} and {}, got {}",
                    range.start(),
                    range.end(),
                    v.get_ref()
                ),
            );
            default
        }
    }
}

/// A share setting `name` within 0.0..=1.0 (an error at its position otherwise), or
/// `default` when absent.
pub(super) fn share_in(errors: &mut Errors<'_>, value: Option<&toml::Spanned<f64>>, name: &str, default: f64) -> f64 {
    match value {
        None => default,
        Some(v) if (0.0..=1.0).contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            errors.push(
                v.span().start,
                format!("`{name}` must be between 0.0 and 1.0, got {}", v.get_ref()),
            );
            default
        }
    }
}

/// A path written in the config file: relative paths are relative to the file's directory.
pub(super) fn relative_to(config_file: &str, written: &str) -> PathBuf {
    let written = PathBuf::from(written);
    match Path::new(config_file).parent() {
        Some(dir) if written.is_relative() && !dir.as_os_str().is_empty() => dir.join(written),
        _ => written,
    }
}

/// A socket address written as `IP:PORT`.
pub(super) fn parse_addr(errors: &mut Errors<'_>, value: &toml::Spanned<String>) -> Option<SocketAddr> {
    match value.get_ref().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errors.push(
                value.span().start,
                format!(
                    "bad address `{}`: expected IP:PORT, like `127.0.0.1:8000`",
                    value.get_ref()
                ),
            );
            None
        }
    }
}

/// A duration setting ([`parse_duration`]) at its position, or `default` when absent or wrong.
pub(super) fn duration_or(
    errors: &mut Errors<'_>,
    value: Option<&toml::Spanned<String>>,
    default: Duration,
) -> Duration {
    let Some(value) = value else { return default };
    match parse_duration(value.get_ref()) {
        Ok(d) => d,
        Err(msg) => {
            errors.push(value.span().start, msg);
            default
        }
    }
}

/// The longest duration any setting takes: every duration here is a timeout or an
/// interval, and a deadline `now + duration` must stay a time the clock can hold (a
/// duration of centuries made every request panic where it was added to `Instant::now()`).
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Parses durations written as `250ms`, `2s`, `1m`, `1h` (also `1m30s`). Zero is refused:
/// every duration here is a timeout; so is more than [`MAX_DURATION`] (a week).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err(format!("bad duration `{text}`: must be more than zero")),
        Ok(d) if d > MAX_DURATION => Err(format!("bad duration `{text}`: at most a week (`7d`)")),
        Ok(d) => Ok(d),
        Err(humantime::DurationError::NumberOverflow) => Err(format!("bad duration `{text}`: at most a week (`7d`)")),
        Err(_) => Err(format!(
            "bad duration `{text}`: expected a number and a unit, like `250ms`, `2s` or `1m`"
        )),
    }
}

/// Upstream and route names: letters, digits, `-` and `_`, as they appear in metric labels.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The message for a reference to an upstream the file does not define, listing those it does.
pub(super) fn unknown_upstream(name: &str, known: &[&str]) -> String {
    format!("unknown upstream `{name}`; defined upstreams: {}", known.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_duration("7d"), Ok(MAX_DURATION));
        // Newcomer pass: a duration of centuries passed `check`, then every request panicked
        // adding it to the clock.
        for huge in ["8d", "18446744073709551615s", "18446744073709551616s"] {
            let error = parse_duration(huge).unwrap_err();
            assert!(error.contains("at most a week"), "{huge}: {error}");
        }
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("").is_err());
    }
}
