//! A route's `methods`: upper-case tokens, each listed once, never `CONNECT`.

use http::Method;

use crate::config::error::Errors;
use crate::config::raw;

/// The methods the route matches; `None` (all methods) when `methods` is left out. An empty
/// list is an error at the route's name.
pub(super) fn route_methods(errors: &mut Errors<'_>, raw: &raw::Route) -> Option<Vec<Method>> {
    let list = raw.methods.as_ref()?;
    if list.is_empty() {
        errors.push(
            raw.name.span().start,
            "`methods` is empty: leave it out to match every method".to_owned(),
        );
    }
    let mut methods: Vec<Method> = Vec::with_capacity(list.len());
    for m in list {
        match parse_method(m.get_ref()) {
            Ok(method) if methods.contains(&method) => {
                errors.push(m.span().start, format!("method `{method}` is listed twice"))
            }
            Ok(method) => methods.push(method),
            Err(msg) => errors.push(m.span().start, msg),
        }
    }
    Some(methods)
}

/// One method: an upper-case token other than `CONNECT`.
fn parse_method(m: &str) -> Result<Method, String> {
    if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("bad method `{m}`: methods are upper-case tokens like `GET`"));
    }
    match m {
        "CONNECT" => Err("method `CONNECT` is never proxied".to_owned()),
        _ => Method::from_bytes(m.as_bytes()).map_err(|e| format!("bad method `{m}`: {e}")),
    }
}
