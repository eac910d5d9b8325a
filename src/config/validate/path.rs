//! A route's `path` or `exact`: absolute, normalised paths and `{param}` / `{*rest}`
//! templates, so that what is written is what matches.

use crate::config::error::Errors;
use crate::config::model::PathPattern;
use crate::config::raw;
use crate::path::normalize_path;

/// The route's pattern from `path` (a prefix, or a template when it holds `{`) or `exact`,
/// exactly one of them; and the offset the route's location points at (the path as
/// written, else the route's name).
pub(super) fn route_pattern(errors: &mut Errors<'_>, raw: &raw::Route) -> (Option<PathPattern>, usize) {
    match (&raw.path, &raw.exact) {
        (Some(_), Some(exact)) => {
            errors.push(
                exact.span().start,
                "a route has either `path` or `exact`, not both".to_owned(),
            );
            (None, exact.span().start)
        }
        (None, None) => {
            let name = raw.name.get_ref();
            errors.push(raw.name.span().start, format!("route `{name}` needs `path` or `exact`"));
            (None, raw.name.span().start)
        }
        (Some(path), None) => {
            let p = path.get_ref();
            let pattern = if p.contains(['{', '}']) {
                check_template(p).map(|()| PathPattern::Template(p.clone()))
            } else {
                check_plain_path(p).map(|()| PathPattern::Prefix(p.clone()))
            };
            (
                pattern.map_err(|m| errors.push(path.span().start, m)).ok(),
                path.span().start,
            )
        }
        (None, Some(exact)) => {
            let p = exact.get_ref();
            let pattern = if p.contains(['{', '}']) {
                Err(format!(
                    "`exact` path `{p}` cannot hold a template; use `path` for templates"
                ))
            } else {
                check_plain_path(p).map(|()| PathPattern::Exact(p.clone()))
            };
            (
                pattern.map_err(|m| errors.push(exact.span().start, m)).ok(),
                exact.span().start,
            )
        }
    }
}

/// A route path (prefix or exact) must be absolute and already normalised, so that what
/// is written is what matches.
fn check_plain_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("path `{p}` must start with `/`"));
    }
    if p.contains(['?', '#']) {
        return Err(format!("path `{p}` must not contain a query or fragment"));
    }
    without_params(p)?;
    match normalize_path(p) {
        Ok(n) if n == p => Ok(()),
        Ok(n) => Err(format!("path `{p}` is not normalised; write `{n}`")),
        Err(e) => Err(format!("bad path `{p}`: {e}")),
    }
}

/// A route's path holds no `;`: Tomcat, Jetty and Spring read what follows it in a segment
/// as parameters, and a request whose parameters change its route is refused
/// ([`crate::router::RouteTable::route`]), so such a route could never be reached.
fn without_params(p: &str) -> Result<(), String> {
    if p.contains(';') {
        return Err(format!(
            "path `{p}` must not contain `;`: servlet stacks read `;…` as path parameters, and requests \
             whose parameters change their route are refused, so this route could never match"
        ));
    }
    Ok(())
}

/// A template is a normalised path whose segments may be `{name}` (one segment) or,
/// last, `{*name}` (the rest of the path).
fn check_template(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("template `{p}` must start with `/`"));
    }
    without_params(p)?;
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

#[cfg(test)]
mod tests {
    use crate::config::tests::{GOOD, errors_of};

    #[test]
    fn bad_paths_and_templates() {
        for (path, what) in [
            ("/api//x/", "not normalised"),
            ("/api/./x/", "not normalised"),
            ("/a/%2e%2e/", "not normalised"),
            ("/a%2Fb/", "encoded slash"),
            ("/a;v=1/", "must not contain `;`"),
            ("/a/{id};v/", "must not contain `;`"),
            ("/a/{id", "parameter must be a whole segment"),
            ("/a/x{id}/", "parameter must be a whole segment"),
            ("/a/{*rest}/b", "must be the last segment"),
            ("/a/{id}/{id}/", "appears twice"),
            ("/a/{}/", "parameter name"),
            ("/a?x=1", "query"),
        ] {
            let text = GOOD.replace("path = \"/api/thoughts/\"", &format!("path = \"{path}\""));
            let errors = errors_of(&text);
            assert_eq!(errors.len(), 1, "{path}: {errors:?}");
            assert!(errors[0].contains(what), "{path}: {errors:?}");
        }
    }
}
