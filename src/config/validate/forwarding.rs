//! A route's forwarding settings (`strip_prefix`, `rewrite`, `host`, `request_headers`,
//! `response_headers`) and an upstream URL's base path, checked and compiled into
//! [`Forwarding`]: every problem at the value that has it.

use http::{HeaderName, HeaderValue};
use toml::Spanned;

use crate::config::error::Errors;
use crate::config::forwarding::{
    Forwarding, HeaderEdits, HostPolicy, PathRewrite, TemplateSegment, protected_header, template_segments,
};
use crate::config::model::PathPattern;
use crate::config::raw;
use crate::path::normalize_path;

/// The route's forwarding settings; `None` when one has errors (all of them pushed).
/// `pattern` is the route's validated path (`None` when it has errors of its own: the
/// checks that need it are skipped).
pub(super) fn route_forwarding(
    errors: &mut Errors<'_>,
    raw: &raw::Route,
    pattern: Option<&PathPattern>,
) -> Option<Forwarding> {
    let before = errors.len();
    let rewrite = path_rewrite(errors, raw, pattern);
    let host = match &raw.host {
        None => HostPolicy::Preserve,
        Some(host) => {
            match host.get_ref().as_str() {
                "preserve" => HostPolicy::Preserve,
                "upstream" => HostPolicy::Upstream,
                other => {
                    errors.push(
                    host.span().start,
                    format!("`host` is \"preserve\" (the client's Host) or \"upstream\" (the upstream URL's), got {other:?}"),
                );
                    HostPolicy::Preserve
                }
            }
        }
    };
    let request_headers = header_edits(errors, raw.request_headers.as_ref(), "request_headers");
    let response_headers = header_edits(errors, raw.response_headers.as_ref(), "response_headers");
    if errors.len() != before {
        return None;
    }
    Some(Forwarding {
        rewrite: rewrite?,
        host,
        request_headers: request_headers?,
        response_headers: response_headers?,
    })
}

/// `strip_prefix` (prefix routes) or `rewrite` (prefix and template routes), not both.
fn path_rewrite(errors: &mut Errors<'_>, raw: &raw::Route, pattern: Option<&PathPattern>) -> Option<PathRewrite> {
    let strip = raw.strip_prefix.as_ref().filter(|strip| *strip.get_ref());
    if let (Some(_), Some(rewrite)) = (strip, &raw.rewrite) {
        errors.push(
            rewrite.span().start,
            "a route has either `strip_prefix = true` or `rewrite`, not both".to_owned(),
        );
        return None;
    }
    if let Some(strip) = strip {
        return match pattern? {
            PathPattern::Prefix(prefix) => Some(PathRewrite::Prefix {
                from: prefix.trim_end_matches('/').to_owned(),
                to: String::new(),
                written: "/".to_owned(),
                strip: true,
            }),
            other => {
                errors.push(
                    strip.span().start,
                    format!(
                        "`strip_prefix` applies to prefix routes (`path = \"/api/\"`), not to a {} route; use `rewrite` for a template",
                        other.kind()
                    ),
                );
                None
            }
        };
    }
    let Some(rewrite) = &raw.rewrite else {
        return Some(PathRewrite::Keep);
    };
    let at = rewrite.span().start;
    let written = rewrite.get_ref();
    let compiled = match pattern? {
        PathPattern::Prefix(prefix) => prefix_rewrite(prefix, written),
        PathPattern::Template(template) => template_rewrite(template, written),
        PathPattern::Exact(_) => Err(
            "`rewrite` applies to prefix routes (`path = \"/api/\"`) and template routes (`path = \"/v2/items/{id}\"`), not to an `exact` route"
                .to_owned(),
        ),
    };
    compiled.map_err(|message| errors.push(at, message)).ok()
}

/// A prefix route's `rewrite`: a normalised absolute path without a template or query,
/// which replaces the matched prefix.
fn prefix_rewrite(prefix: &str, written: &str) -> Result<PathRewrite, String> {
    if written.contains(['{', '}']) {
        return Err(format!(
            "`rewrite = {written:?}` on a prefix route is a path that replaces the prefix, like \"/new/\"; templates need a template `path`"
        ));
    }
    plain_path(written, "rewrite")?;
    Ok(PathRewrite::Prefix {
        from: prefix.trim_end_matches('/').to_owned(),
        to: written.trim_end_matches('/').to_owned(),
        written: written.to_owned(),
        strip: false,
    })
}

/// A template route's `rewrite`: a template whose every placeholder the route's path
/// captures.
fn template_rewrite(template: &str, written: &str) -> Result<PathRewrite, String> {
    let bad = || {
        format!(
            "bad `rewrite` template `{written}`: it starts with `/` and a parameter is a whole segment, like `{{id}}`"
        )
    };
    let to = template_segments(written).ok_or_else(bad)?;
    let from = template_segments(template).ok_or_else(bad)?;
    let literals = to.iter().filter_map(|segment| match segment {
        TemplateSegment::Literal(text) => Some(text.as_str()),
        _ => None,
    });
    plain_path(&format!("/{}", literals.collect::<Vec<_>>().join("/")), "rewrite")?;
    for name in to.iter().filter_map(TemplateSegment::name) {
        if !from.iter().any(|segment| segment.name() == Some(name)) {
            return Err(format!(
                "`rewrite` uses `{{{name}}}`, which the route's path `{template}` does not capture"
            ));
        }
    }
    Ok(PathRewrite::Template {
        from,
        to,
        written: written.to_owned(),
    })
}

/// `text` is an absolute, normalised path without query, fragment or `;`.
fn plain_path(text: &str, what: &str) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!("`{what}` path `{text}` must start with `/`"));
    }
    if text.contains(['?', '#', ';']) {
        return Err(format!("`{what}` path `{text}` must not contain `?`, `#` or `;`"));
    }
    match normalize_path(text) {
        Ok(normal) if normal == text => Ok(()),
        Ok(normal) => Err(format!("`{what}` path `{text}` is not normalised; write `{normal}`")),
        Err(e) => Err(format!("bad `{what}` path `{text}`: {e}")),
    }
}

/// An upstream URL's path, which requests go under: normalised, with no query (a
/// trailing `/` is allowed and ignored).
pub fn base_path_problem(path: &str) -> Option<String> {
    if matches!(path, "" | "/") {
        return None;
    }
    plain_path(path, "url").err()
}

/// `request_headers` / `response_headers`; `None` when an entry has errors.
fn header_edits(errors: &mut Errors<'_>, raw: Option<&Spanned<raw::HeaderEdits>>, what: &str) -> Option<HeaderEdits> {
    let Some(raw) = raw else {
        return Some(HeaderEdits::default());
    };
    let before = errors.len();
    let mut edits = HeaderEdits::default();
    for (name, value) in raw.get_ref().set.iter().flatten() {
        let name_ok = header_name(errors, name, what, "set");
        match HeaderValue::from_str(value.get_ref()) {
            Ok(value) => edits.set.extend(name_ok.map(|name| (name, value))),
            Err(_) => errors.push(
                value.span().start,
                format!(
                    "`{what}.set` value {:?} is not a valid header value (visible ASCII, spaces and tabs)",
                    value.get_ref()
                ),
            ),
        }
    }
    for name in raw.get_ref().remove.iter().flatten() {
        if let Some(name) = header_name(errors, name, what, "remove") {
            edits.remove.push(name);
        }
    }
    (errors.len() == before).then_some(edits)
}

/// A header name a route may set or remove; an error at it otherwise.
fn header_name(errors: &mut Errors<'_>, name: &Spanned<String>, what: &str, key: &str) -> Option<HeaderName> {
    let at = name.span().start;
    let Ok(parsed) = HeaderName::from_bytes(name.get_ref().as_bytes()) else {
        errors.push(
            at,
            format!(
                "`{what}.{key}` names {:?}, which is not a header name (an HTTP token)",
                name.get_ref()
            ),
        );
        return None;
    };
    if let Some(why) = protected_header(parsed.as_str()) {
        errors.push(at, format!("`{what}.{key}` cannot touch `{}`: {why}", parsed.as_str()));
        return None;
    }
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use crate::config::forwarding::{HostPolicy, PathRewrite};
    use crate::config::parse::parse_str;
    use crate::config::tests::{GOOD, errors_of};

    /// GOOD with `extra` lines added to route `name` (`thoughts-api`: a prefix route;
    /// `one-thought`: a template; `login`: exact).
    fn with(route: &str, extra: &str) -> String {
        GOOD.replace(&format!("name = \"{route}\""), &format!("name = \"{route}\"\n{extra}"))
    }

    /// The one error of `text`, which must be at `line:column` of the line starting
    /// with `starts` (the column is 1-based) and contain `what`.
    fn one_error_at(text: &str, starts: &str, column: usize, what: &str) {
        let errors = errors_of(text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let line = text.lines().position(|l| l.starts_with(starts)).unwrap() + 1;
        assert!(
            errors[0].starts_with(&format!("routes.toml:{line}:{column}: ")),
            "want {line}:{column}: {errors:?}"
        );
        assert!(errors[0].contains(what), "want {what:?}: {errors:?}");
    }

    #[test]
    fn forwarding_settings_compile() {
        let text = with(
            "thoughts-api",
            "strip_prefix = true\nhost = \"upstream\"\n\
             request_headers = { set = { \"X-Api-Version\" = \"2\" }, remove = [\"Cookie\"] }\n\
             response_headers = { remove = [\"server\"] }",
        );
        let text = text.replace(
            "path = \"/api/thoughts/{id}/\"",
            "path = \"/api/thoughts/{id}/\"\nrewrite = \"/thoughts/{id}\"",
        );
        let c = parse_str("routes.toml", &text).unwrap();
        let api = &c.routes[0].forwarding;
        assert!(api.rewrite.is_strip(), "{api:?}");
        assert_eq!(api.host, HostPolicy::Upstream);
        assert_eq!(api.request_headers.set[0].0, HeaderName::from_static("x-api-version"));
        assert_eq!(api.request_headers.remove, [HeaderName::from_static("cookie")]);
        assert_eq!(api.response_headers.remove, [HeaderName::from_static("server")]);
        assert!(matches!(
            &c.routes[1].forwarding.rewrite,
            PathRewrite::Template { written, .. } if written == "/thoughts/{id}"
        ));
        assert!(c.routes[2].forwarding.is_default(), "nothing set, nothing changed");
        // `strip_prefix = false` is the default.
        let c = parse_str("routes.toml", &with("login", "strip_prefix = false")).unwrap();
        assert!(c.routes[2].forwarding.is_default());
    }

    #[test]
    fn rewrite_errors_point_at_the_value() {
        // strip_prefix on a template or exact route: at the value.
        one_error_at(
            &with("one-thought", "strip_prefix = true"),
            "strip_prefix",
            16,
            "prefix routes",
        );
        one_error_at(
            &with("login", "strip_prefix = true"),
            "strip_prefix",
            16,
            "not to a exact route",
        );
        // Both: at the rewrite.
        let both = with("thoughts-api", "strip_prefix = true\nrewrite = \"/new/\"");
        one_error_at(&both, "rewrite", 11, "either `strip_prefix = true` or `rewrite`");
        // A placeholder the path does not capture.
        one_error_at(
            &with("one-thought", "rewrite = \"/t/{id}/{slug}\""),
            "rewrite",
            11,
            "`{slug}`, which the route's path `/api/thoughts/{id}/` does not capture",
        );
        // Templates on a prefix route; a bad path; exact routes.
        one_error_at(
            &with("thoughts-api", "rewrite = \"/t/{id}\""),
            "rewrite",
            11,
            "replaces the prefix",
        );
        one_error_at(
            &with("thoughts-api", "rewrite = \"new/\""),
            "rewrite",
            11,
            "must start with `/`",
        );
        one_error_at(
            &with("thoughts-api", "rewrite = \"/a/../b/\""),
            "rewrite",
            11,
            "not normalised",
        );
        one_error_at(&with("thoughts-api", "rewrite = \"/a?b\""), "rewrite", 11, "`?`");
        one_error_at(
            &with("one-thought", "rewrite = \"/t/{id\""),
            "rewrite",
            11,
            "bad `rewrite` template",
        );
        one_error_at(
            &with("login", "rewrite = \"/signin\""),
            "rewrite",
            11,
            "not to an `exact` route",
        );
        one_error_at(&with("login", "host = \"client\""), "host", 8, "\"preserve\"");
    }

    #[test]
    fn header_edit_errors_point_at_the_name_or_value() {
        for (edits, column, what) in [
            (
                "request_headers = { set = { Host = \"x\" } }",
                29,
                "cannot touch `host`",
            ),
            (
                "request_headers = { remove = [\"Content-Length\"] }",
                31,
                "cannot touch `content-length`",
            ),
            (
                "request_headers = { remove = [\"x-forwarded-for\"] }",
                31,
                "the proxy itself sets it",
            ),
            (
                "response_headers = { set = { \"X-Request-Id\" = \"1\" } }",
                30,
                "cannot touch `x-request-id`",
            ),
            (
                "response_headers = { remove = [\"Transfer-Encoding\"] }",
                32,
                "transfer-encoding",
            ),
            (
                "request_headers = { set = { \"bad name\" = \"1\" } }",
                29,
                "not a header name",
            ),
            (
                "request_headers = { set = { x-a = \"line\\nbreak\" } }",
                35,
                "not a valid header value",
            ),
            ("request_headers = { add = { x-a = \"1\" } }", 21, "add"),
        ] {
            let text = with("thoughts-api", edits);
            let starts = edits.split(' ').next().unwrap();
            one_error_at(&text, starts, column, what);
        }
    }

    #[test]
    fn an_upstream_url_may_have_a_base_path_but_no_query() {
        let text = GOOD.replace(
            "url = \"http://127.0.0.1:8001\"",
            "url = \"http://127.0.0.1:8001/app/\"",
        );
        let c = parse_str("routes.toml", &text).unwrap();
        assert_eq!(crate::config::base_path_of(&c.upstreams["legacy"].url), "/app");
        for (url, what) in [
            ("http://127.0.0.1:8001/app?x=1", "must not have a query"),
            ("http://127.0.0.1:8001/a/../b", "not normalised"),
            ("http://127.0.0.1:8001/a;b", "`;`"),
            (
                "http://admin:hunter2@127.0.0.1:8001/app",
                "`http://…@127.0.0.1:8001/app` must not carry a user name",
            ),
            (
                "http://admin@127.0.0.1:8001",
                "`http://…@127.0.0.1:8001` must not carry a user name",
            ),
        ] {
            let text = GOOD.replace("url = \"http://127.0.0.1:8001\"", &format!("url = \"{url}\""));
            one_error_at(&text, &format!("url = \"{url}"), 7, what);
            assert!(!errors_of(&text)[0].contains("hunter2"));
        }
    }
}
