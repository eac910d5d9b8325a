//! What a route's forwarding settings mean, and the pure functions that apply them: the path
//! an upstream receives (`strip_prefix`, `rewrite`, then the upstream URL's base path), the
//! `Host` it receives (`host`), and the headers set or removed on the way in and out
//! (`request_headers`, `response_headers`).
//!
//! Everything here is validated when the file is read ([`super::validate`]) and compiled
//! once per load; applying it does no IO. A route without any of these settings costs
//! nothing per request: [`PathRewrite::apply`] returns `None`, and empty [`HeaderEdits`]
//! touch no map. Captured values are substituted exactly as the router matched them
//! (already normalised, never decoded: `%2F` stays `%2F`).

use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue};

/// `host`: which `Host` an upstream receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostPolicy {
    /// The client's `Host` (the default).
    #[default]
    Preserve,
    /// The authority of the upstream's URL, for a monolith behind a virtual host.
    Upstream,
}

impl HostPolicy {
    /// The name used in routes.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            HostPolicy::Preserve => "preserve",
            HostPolicy::Upstream => "upstream",
        }
    }
}

/// One segment of a path template: literal text, `{name}` (one segment) or `{*name}` (the
/// rest of the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSegment {
    /// Literal text, matched as written (or case-folded on a `case_insensitive` route).
    Literal(String),
    /// `{name}`: one segment.
    Param(String),
    /// `{*name}`: the rest of the path (zero or more segments).
    Rest(String),
}

impl TemplateSegment {
    /// The parameter's name; `None` for a literal.
    pub fn name(&self) -> Option<&str> {
        match self {
            TemplateSegment::Literal(_) => None,
            TemplateSegment::Param(name) | TemplateSegment::Rest(name) => Some(name),
        }
    }
}

/// The segments of `template` (which starts with `/`); `None` when a segment holds a brace
/// without being a whole `{name}` or `{*name}` with a name of letters, digits or `_`.
pub fn template_segments(template: &str) -> Option<Vec<TemplateSegment>> {
    let body = template.strip_prefix('/')?;
    body.split('/')
        .map(|segment| {
            if !segment.contains(['{', '}']) {
                return Some(TemplateSegment::Literal(segment.to_owned()));
            }
            let inner = segment.strip_prefix('{')?.strip_suffix('}')?;
            let (rest, name) = match inner.strip_prefix('*') {
                Some(name) => (true, name),
                None => (false, inner),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            Some(if rest {
                TemplateSegment::Rest(name.to_owned())
            } else {
                TemplateSegment::Param(name.to_owned())
            })
        })
        .collect()
}

/// `strip_prefix` / `rewrite`: how a route's path is changed before it goes upstream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PathRewrite {
    /// The path goes as routed (the default).
    #[default]
    Keep,
    /// A prefix route's matched prefix is replaced: `strip_prefix = true` is `to = "/"`,
    /// `rewrite = "/new/"` is `to = "/new/"`.
    Prefix {
        /// The route's prefix, without its trailing `/` (`""` for the root prefix).
        from: String,
        /// What replaces it, without its trailing `/` (`""` for a strip).
        to: String,
        /// The replacement as written, for `explain` and the admin API.
        written: String,
        /// Whether it came from `strip_prefix = true`.
        strip: bool,
    },
    /// A template route's path is rebuilt from another template with the captured values.
    Template {
        /// The route's template.
        from: Vec<TemplateSegment>,
        /// The rewrite template.
        to: Vec<TemplateSegment>,
        /// The rewrite as written.
        written: String,
    },
}

impl PathRewrite {
    /// The path and query an upstream receives (before its base path) for a request routed
    /// to this route at `routed`; `None` when the path goes unchanged (no allocation).
    pub fn apply(&self, routed: &PathAndQuery) -> Option<PathAndQuery> {
        let path = match self {
            PathRewrite::Keep => return None,
            PathRewrite::Prefix { from, to, .. } => replace_prefix(routed.path(), from, to),
            PathRewrite::Template { from, to, .. } => rebuild(routed.path(), from, to)?,
        };
        let target = match routed.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        // Built from a valid path's own characters: it parses; if not, the path goes as is.
        PathAndQuery::try_from(target).ok()
    }

    /// The replacement as written (`strip_prefix` shows as `/`); `None` for [`PathRewrite::Keep`].
    pub fn written(&self) -> Option<&str> {
        match self {
            PathRewrite::Keep => None,
            PathRewrite::Prefix { written, .. } | PathRewrite::Template { written, .. } => Some(written),
        }
    }

    /// Whether this is `strip_prefix = true`.
    pub fn is_strip(&self) -> bool {
        matches!(self, PathRewrite::Prefix { strip: true, .. })
    }
}

/// `path` with its first `from.len()` bytes (the matched prefix, without trailing `/`)
/// replaced by `to`; never empty (`/` then).
pub fn replace_prefix(path: &str, from: &str, to: &str) -> String {
    let rest = path.get(from.len()..).unwrap_or("");
    let mut out = String::with_capacity(to.len() + rest.len() + 1);
    out.push_str(to);
    out.push_str(rest);
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    out
}

/// `path`, matched by the template `from`, rebuilt as the template `to` with the values
/// `from` captured; `None` if `from` does not match `path` (the router said it does).
pub fn rebuild(path: &str, from: &[TemplateSegment], to: &[TemplateSegment]) -> Option<String> {
    let mut captured: Vec<(&str, &str)> = Vec::with_capacity(from.len());
    let mut rest = path.strip_prefix('/')?;
    for (index, segment) in from.iter().enumerate() {
        if let TemplateSegment::Rest(name) = segment {
            captured.push((name, rest));
            rest = "";
            break;
        }
        let (here, after) = match rest.split_once('/') {
            Some((here, after)) => (here, Some(after)),
            None => (rest, None),
        };
        if let TemplateSegment::Param(name) = segment {
            captured.push((name, here));
        }
        match after {
            Some(after) => rest = after,
            None if index + 1 == from.len() => rest = "",
            // A trailing `{*rest}` may capture nothing.
            None => {
                rest = "";
                if let Some(TemplateSegment::Rest(name)) = from.get(index + 1) {
                    captured.push((name, ""));
                    break;
                }
                return None;
            }
        }
    }
    if !rest.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(path.len() + 16);
    for segment in to {
        out.push('/');
        match segment {
            TemplateSegment::Literal(text) => out.push_str(text),
            TemplateSegment::Param(name) | TemplateSegment::Rest(name) => {
                let value = captured.iter().find(|(n, _)| n == name)?.1;
                out.push_str(value);
            }
        }
    }
    Some(out)
}

/// An upstream URL's base path as requests are put under it: without its trailing `/`,
/// `""` when it has none.
pub fn base_path_of(url: &http::Uri) -> &str {
    url.path().trim_end_matches('/')
}

/// `target` under the base path `base` (as [`base_path_of`] gives it): `/users/1?x=1`
/// under `/app` is `/app/users/1?x=1`.
pub fn under_base(base: &str, target: &str) -> String {
    let mut out = String::with_capacity(base.len() + target.len());
    out.push_str(base);
    out.push_str(target);
    out
}

/// `request_headers` / `response_headers`: headers removed, then headers set (replacing
/// every value of the same name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderEdits {
    /// `set`: name and value, in file order.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// `remove`: names.
    pub remove: Vec<HeaderName>,
}

impl HeaderEdits {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// The headers set, as shown to people (`explain`, the admin API): name and value,
    /// the value of a credential (`Authorization`, `Cookie`, …) as `[redacted]`.
    pub fn shown_set(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.set.iter().map(|(name, value)| {
            let secret = matches!(
                name.as_str(),
                "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
            );
            let shown = if secret {
                "[redacted]".to_owned()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_owned(), shown)
        })
    }

    /// Removes, then sets.
    #[inline]
    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// The headers a route may not set or remove: framing and hop-by-hop ones, and those the
/// proxy itself asserts (`Host` has its own setting, `host`).
pub const PROTECTED_HEADERS: [&str; 13] = [
    "host",
    "expect",
    "http2-settings",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "via",
    "x-request-id",
    "forwarded",
    "keep-alive",
    "te",
    "trailer",
];

/// Why a route may not touch header `name` (lower case); `None` when it may.
pub fn protected_header(name: &str) -> Option<&'static str> {
    if name == "host" {
        return Some("`Host` is chosen by the route's `host = \"preserve\" | \"upstream\"`");
    }
    if name.starts_with("x-forwarded-") || name.starts_with("x-strangler-") || name == "proxy-connection" {
        return Some("the proxy itself sets it");
    }
    PROTECTED_HEADERS
        .contains(&name)
        .then_some("framing, hop-by-hop and the proxy's own headers are the proxy's to set")
}

/// A route's forwarding settings, compiled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Forwarding {
    /// `strip_prefix` / `rewrite`.
    pub rewrite: PathRewrite,
    /// `host`.
    pub host: HostPolicy,
    /// `request_headers`.
    pub request_headers: HeaderEdits,
    /// `response_headers`.
    pub response_headers: HeaderEdits,
}

/// The forwarding of a request no route matched: as routed, no header edited.
pub static AS_ROUTED: Forwarding = Forwarding {
    rewrite: PathRewrite::Keep,
    host: HostPolicy::Preserve,
    request_headers: HeaderEdits {
        set: Vec::new(),
        remove: Vec::new(),
    },
    response_headers: HeaderEdits {
        set: Vec::new(),
        remove: Vec::new(),
    },
};

impl Forwarding {
    /// Whether every setting is the default (the route forwards as strangler always did).
    pub fn is_default(&self) -> bool {
        *self == Forwarding::default()
    }

    /// A 12-hex-digit digest of what the settings send upstream, equal on every replica:
    /// part of a route's evidence identity, since answers to rewritten requests say
    /// nothing about requests rewritten otherwise. Credential values count as redacted (a
    /// rotated token is the same forwarding; no digest of a secret is published).
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let edits = |edits: &HeaderEdits| {
            let set: Vec<String> = edits
                .shown_set()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let remove: Vec<&str> = edits.remove.iter().map(|name| name.as_str()).collect();
            format!("set[{}] remove[{}]", set.join("\u{1f}"), remove.join("\u{1f}"))
        };
        let canonical = [
            format!("strip {}", self.rewrite.is_strip()),
            format!("rewrite {}", self.rewrite.written().unwrap_or("")),
            format!("host {}", self.host.as_str()),
            format!("request {}", edits(&self.request_headers)),
            format!("response {}", edits(&self.response_headers)),
        ]
        .join("\n");
        let digest = sha2::Sha256::digest(canonical.as_bytes());
        digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pq(text: &str) -> PathAndQuery {
        PathAndQuery::try_from(text).unwrap()
    }

    fn prefix(route: &str, to: &str) -> PathRewrite {
        PathRewrite::Prefix {
            from: route.trim_end_matches('/').to_owned(),
            to: to.trim_end_matches('/').to_owned(),
            written: to.to_owned(),
            strip: to == "/",
        }
    }

    fn template(from: &str, to: &str) -> PathRewrite {
        PathRewrite::Template {
            from: template_segments(from).unwrap(),
            to: template_segments(to).unwrap(),
            written: to.to_owned(),
        }
    }

    fn applied(rewrite: &PathRewrite, target: &str) -> String {
        rewrite
            .apply(&pq(target))
            .map_or_else(|| format!("unchanged {target}"), |t| t.as_str().to_owned())
    }

    #[test]
    fn strip_prefix_keeps_the_rest_and_the_query() {
        let strip = prefix("/api/users/", "/");
        assert_eq!(applied(&strip, "/api/users/7"), "/7");
        assert_eq!(applied(&strip, "/api/users/7?a=1&b"), "/7?a=1&b");
        assert_eq!(applied(&strip, "/api/users/"), "/");
        assert_eq!(applied(&strip, "/api/users"), "/");
        assert_eq!(applied(&strip, "/api/users?q=1"), "/?q=1");
        assert_eq!(applied(&strip, "/api/users/a%2Fb/c"), "/a%2Fb/c", "never decoded");
        // A prefix written without its trailing slash strips the same.
        assert_eq!(applied(&prefix("/api/users", "/"), "/api/users/7"), "/7");
        // The root prefix strips nothing.
        assert_eq!(applied(&prefix("/", "/"), "/x/y?z"), "/x/y?z");
        // A case-insensitive route's prefix is cut by its length.
        assert_eq!(applied(&strip, "/API/Users/7"), "/7");
    }

    #[test]
    fn a_prefix_rewrite_replaces_the_matched_prefix() {
        let rewrite = prefix("/api/users/", "/new/");
        assert_eq!(applied(&rewrite, "/api/users/7?x=%2F"), "/new/7?x=%2F");
        assert_eq!(applied(&rewrite, "/api/users/"), "/new/");
        assert_eq!(applied(&rewrite, "/api/users"), "/new");
        assert_eq!(applied(&prefix("/", "/v1/"), "/x"), "/v1/x");
        assert_eq!(applied(&PathRewrite::Keep, "/x"), "unchanged /x");
    }

    #[test]
    fn a_template_rewrite_substitutes_what_was_captured() {
        let rewrite = template("/v2/items/{id}", "/items/{id}");
        assert_eq!(applied(&rewrite, "/v2/items/42?full=1"), "/items/42?full=1");
        assert_eq!(applied(&rewrite, "/v2/items/a%2Fb"), "/items/a%2Fb");
        let swapped = template("/u/{user}/p/{post}", "/posts/{post}/by/{user}");
        assert_eq!(applied(&swapped, "/u/ann/p/9"), "/posts/9/by/ann");
        let rest = template("/files/{*path}", "/static/{path}");
        assert_eq!(applied(&rest, "/files/a/b/c.txt"), "/static/a/b/c.txt");
        assert_eq!(applied(&rest, "/files/"), "/static/");
        // Not a match (the router would not have sent it here): unchanged.
        assert_eq!(applied(&rewrite, "/v2/items/1/2"), "unchanged /v2/items/1/2");
    }

    #[test]
    fn templates_are_whole_segments_with_plain_names() {
        assert_eq!(
            template_segments("/a/{id}/{*rest}"),
            Some(vec![
                TemplateSegment::Literal("a".into()),
                TemplateSegment::Param("id".into()),
                TemplateSegment::Rest("rest".into()),
            ])
        );
        for bad in ["/a{id}", "/{}", "/{a-b}", "/{id", "no-slash", "/{*}"] {
            assert_eq!(template_segments(bad), None, "{bad}");
        }
    }

    #[test]
    fn base_paths_ignore_a_trailing_slash() {
        for (url, base) in [
            ("http://legacy:9001/app", "/app"),
            ("http://legacy:9001/app/", "/app"),
            ("http://legacy:9001/", ""),
            ("http://legacy:9001", ""),
            ("http://legacy:9001/a/b/", "/a/b"),
        ] {
            assert_eq!(base_path_of(&url.parse().unwrap()), base, "{url}");
        }
        assert_eq!(under_base("/app", "/users/1?x=%2F"), "/app/users/1?x=%2F");
        assert_eq!(under_base("/app", "/"), "/app/");
        assert_eq!(under_base("", "/users"), "/users");
    }

    #[test]
    fn the_default_forwards_as_routed() {
        assert_eq!(AS_ROUTED, Forwarding::default());
        assert!(AS_ROUTED.is_default());
    }

    #[test]
    fn header_edits_remove_then_set() {
        let edits = HeaderEdits {
            set: vec![(HeaderName::from_static("x-a"), HeaderValue::from_static("1"))],
            remove: vec![HeaderName::from_static("x-a"), HeaderName::from_static("x-b")],
        };
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("0"));
        headers.append("x-a", HeaderValue::from_static("00"));
        headers.insert("x-b", HeaderValue::from_static("2"));
        headers.insert("x-c", HeaderValue::from_static("3"));
        edits.apply(&mut headers);
        assert_eq!(headers.get_all("x-a").iter().collect::<Vec<_>>(), ["1"]);
        assert!(!headers.contains_key("x-b"));
        assert_eq!(headers["x-c"], "3");
        assert!(HeaderEdits::default().is_empty() && !edits.is_empty());
    }

    #[test]
    fn protected_headers_are_named() {
        for name in [
            "host",
            "content-length",
            "transfer-encoding",
            "connection",
            "upgrade",
            "via",
        ] {
            assert!(protected_header(name).is_some(), "{name}");
        }
        for name in [
            "x-forwarded-for",
            "x-forwarded-host",
            "x-request-id",
            "forwarded",
            "x-strangler-shadow",
        ] {
            assert!(protected_header(name).is_some(), "{name}");
        }
        for name in ["x-api-version", "server", "cache-control", "authorization"] {
            assert_eq!(protected_header(name), None, "{name}");
        }
    }
}
