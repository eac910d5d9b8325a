//! `[[routes]]`: one route's name, path, methods, stage, upstreams, canary, fallback, body
//! limit, comparison rules and shadow settings, checked together because they depend on each
//! other (a stage needs a `new` upstream, a fallback needs two different sides).

use std::sync::Arc;

use http::Method;

use super::canary::parse_sticky;
use super::path::{check_plain_path, check_template};
use super::shadow::validate_shadow;
use super::values::{unknown_upstream, valid_name};
use crate::config::error::Errors;
use crate::config::model::{CanaryConfig, PathPattern, RouteConfig, ShadowConfig, Stage};
use crate::config::raw;
use crate::parity::CompareRules;

pub(crate) fn validate_route(
    errors: &mut Errors<'_>,
    raw: &raw::Route,
    upstreams: &[&str],
    default_upstream: Option<&str>,
) -> Option<RouteConfig> {
    let before = errors.len();
    let name = raw.name.get_ref();
    if !valid_name(name) {
        errors.push(
            raw.name.span().start,
            format!("route name `{name}` must be letters, digits, `-` or `_`"),
        );
    }
    if name == "default" {
        errors.push(
            raw.name.span().start,
            "route name `default` is reserved for requests that no route matches".to_owned(),
        );
    }

    let (pattern, at) = match (&raw.path, &raw.exact) {
        (Some(_), Some(exact)) => {
            errors.push(
                exact.span().start,
                "a route has either `path` or `exact`, not both".to_owned(),
            );
            (None, exact.span().start)
        }
        (None, None) => {
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
    };

    let methods = match &raw.methods {
        None => None,
        Some(list) => {
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
    };

    let stage_at = raw.stage.as_ref().map_or(raw.name.span().start, |s| s.span().start);
    let stage = match raw.stage.as_ref().map(|s| s.get_ref().as_str()) {
        None | Some("legacy") => Some(Stage::Legacy),
        Some("shadow") => Some(Stage::Shadow),
        Some("canary") => Some(Stage::Canary),
        Some("new") => Some(Stage::New),
        Some(other) => {
            errors.push(
                stage_at,
                format!("unknown stage `{other}`, expected `legacy`, `shadow`, `canary` or `new`"),
            );
            None
        }
    };
    let canary = raw.canary.as_ref().and_then(|canary| {
        let table = canary.get_ref();
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
    });
    if stage == Some(Stage::Canary) && raw.canary.is_none() {
        errors.push(
            stage_at,
            format!("route `{name}` is at stage `canary` but has no `canary = {{ percent = … }}`"),
        );
    }

    let legacy = match &raw.legacy {
        Some(l) => {
            if !upstreams.contains(&l.get_ref().as_str()) {
                errors.push(l.span().start, unknown_upstream(l.get_ref(), upstreams));
            }
            Some(l.get_ref().clone())
        }
        None => default_upstream.map(str::to_owned),
    };
    let new = raw.new.as_ref().map(|n| {
        if !upstreams.contains(&n.get_ref().as_str()) {
            errors.push(n.span().start, unknown_upstream(n.get_ref(), upstreams));
        }
        n.get_ref().clone()
    });
    let fallback_max_body = match (&raw.fallback, &raw.fallback_max_body) {
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
    };
    let max_body = match &raw.max_body {
        None => None,
        Some(v) if *v.get_ref() >= 0 => Some(*v.get_ref() as u64),
        Some(v) => {
            errors.push(
                v.span().start,
                format!("`max_body` must be a number of bytes, 0 or more, got {}", v.get_ref()),
            );
            None
        }
    };
    let compare = match &raw.compare {
        None => Some(Arc::new(CompareRules::default())),
        Some(spec) => match CompareRules::from_spec(spec.get_ref()) {
            Ok(rules) => Some(Arc::new(rules)),
            Err(e) => {
                errors.push(spec.span().start, format!("bad `compare`: {e}"));
                None
            }
        },
    };
    let shadow = match &raw.shadow {
        None => Some(ShadowConfig::default()),
        Some(table) => validate_shadow(errors, table.get_ref()),
    };
    if matches!(stage, Some(Stage::New | Stage::Canary | Stage::Shadow)) && new.is_none() {
        errors.push(
            stage_at,
            format!(
                "route `{name}` is at stage `{}` but names no `new` upstream",
                raw.stage.as_ref().map_or("new", |s| s.get_ref().as_str())
            ),
        );
    }

    if errors.len() != before {
        return None;
    }
    Some(RouteConfig {
        name: name.clone(),
        pattern: pattern?,
        methods,
        stage: stage?,
        legacy: legacy?,
        new,
        canary,
        compare: compare?,
        shadow: shadow?,
        fallback_max_body,
        max_body,
        location: errors.location(at),
    })
}

fn parse_method(m: &str) -> Result<Method, String> {
    if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("bad method `{m}`: methods are upper-case tokens like `GET`"));
    }
    match m {
        "CONNECT" => Err("method `CONNECT` is never proxied".to_owned()),
        _ => Method::from_bytes(m.as_bytes()).map_err(|e| format!("bad method `{m}`: {e}")),
    }
}
