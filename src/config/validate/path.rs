//! A route's `path` or `exact`: absolute, normalised paths and `{param}` / `{*rest}`
//! templates, so that what is written is what matches.

use crate::path::normalize_path;

/// A route path (prefix or exact) must be absolute and already normalised, so that what
/// is written is what matches.
pub(super) fn check_plain_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("path `{p}` must start with `/`"));
    }
    if p.contains(['?', '#']) {
        return Err(format!("path `{p}` must not contain a query or fragment"));
    }
    match normalize_path(p) {
        Ok(n) if n == p => Ok(()),
        Ok(n) => Err(format!("path `{p}` is not normalised; write `{n}`")),
        Err(e) => Err(format!("bad path `{p}`: {e}")),
    }
}

/// A template is a normalised path whose segments may be `{name}` (one segment) or,
/// last, `{*name}` (the rest of the path).
pub(super) fn check_template(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("template `{p}` must start with `/`"));
    }
    let segments: Vec<&str> = p[1..].split('/').collect();
    let mut names: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        if !segment.contains(['{', '}']) {
            continue;
        }
        let inner = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .filter(|s| !s.contains(['{', '}']))
            .ok_or_else(|| format!("bad template `{p}`: a parameter must be a whole segment, like `{{id}}`"))?;
        let (catch_all, name) = match inner.strip_prefix('*') {
            Some(name) => (true, name),
            None => (false, inner),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "bad template `{p}`: parameter name `{name}` must be letters, digits or `_`"
            ));
        }
        if catch_all && i + 1 != segments.len() {
            return Err(format!("bad template `{p}`: `{{*{name}}}` must be the last segment"));
        }
        if names.contains(&name) {
            return Err(format!("bad template `{p}`: parameter `{name}` appears twice"));
        }
        names.push(name);
    }
    // The literal parts must be normalised too.
    let literal: String = segments
        .iter()
        .map(|s| if s.starts_with('{') { "x" } else { s })
        .fold(String::new(), |acc, s| acc + "/" + s);
    match normalize_path(&literal) {
        Ok(n) if n == literal => Ok(()),
        Ok(_) => Err(format!(
            "template `{p}` is not normalised (dot-segments, empty segments or percent-encoded unreserved characters)"
        )),
        Err(e) => Err(format!("bad template `{p}`: {e}")),
    }
}
