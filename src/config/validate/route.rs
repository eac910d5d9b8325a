//! `[[routes]]`: one route's checks in file order, each concern in its own function (name,
//! stage, upstreams, body limit, comparison rules here; path, methods, canary, fallback and
//! shadow in their own files), and the checks that tie them together (a stage needs a `new`
//! upstream; stage `canary` needs a `canary` table).

use std::sync::Arc;

use toml::Spanned;

use super::canary::validate_canary;
use super::fallback::validate_fallback;
use super::forwarding::route_forwarding;
use super::methods::route_methods;
use super::path::route_pattern;
use super::shadow::validate_shadow;
use super::values::{unknown_upstream, valid_name};
use crate::config::error::Errors;
use crate::config::model::{DEFAULT_UPGRADES, RouteConfig, ShadowConfig, Stage};
use crate::config::raw;
use crate::parity::CompareRules;

/// One `[[routes]]` entry; `None` when it has errors (all of them pushed). `upstreams` are
/// the names the file defines; `default_upstream` is `proxy.default_upstream` when valid.
pub(crate) fn validate_route(
    errors: &mut Errors<'_>,
    raw: &raw::Route,
    upstreams: &[&str],
    default_upstream: Option<&str>,
) -> Option<RouteConfig> {
    let before = errors.len();
    check_route_name(errors, &raw.name);
    let (pattern, at) = route_pattern(errors, raw);
    let methods = route_methods(errors, raw);
    let stage_at = raw.stage.as_ref().map_or(raw.name.span().start, |s| s.span().start);
    let stage = route_stage(errors, raw, stage_at);
    let canary = raw
        .canary
        .as_ref()
        .and_then(|canary| validate_canary(errors, canary.get_ref()));
    if stage == Some(Stage::Canary) && raw.canary.is_none() {
        errors.push(
            stage_at,
            format!(
                "route `{}` is at stage `canary` but has no `canary = {{ percent = … }}`",
                raw.name.get_ref()
            ),
        );
    }
    let legacy = legacy_upstream(errors, raw, upstreams, default_upstream);
    let new = raw.new.as_ref().map(|n| known_upstream(errors, n, upstreams));
    let fallback_max_body = validate_fallback(errors, raw, new.as_deref(), legacy.as_deref());
    let max_body = route_max_body(errors, raw);
    let upgrades = route_upgrades(errors, raw);
    let compare = route_compare(errors, raw);
    let case_insensitive = raw.case_insensitive.as_ref().is_some_and(|value| *value.get_ref());
    let shadow = match &raw.shadow {
        None => Some(ShadowConfig::default()),
        Some(table) => validate_shadow(errors, table.get_ref()),
    };
    let forwarding = route_forwarding(errors, raw, pattern.as_ref());
    if matches!(stage, Some(Stage::New | Stage::Canary | Stage::Shadow)) && new.is_none() {
        errors.push(
            stage_at,
            format!(
                "route `{}` is at stage `{}` but names no `new` upstream",
                raw.name.get_ref(),
                raw.stage.as_ref().map_or("new", |s| s.get_ref().as_str())
            ),
        );
    }

    if errors.len() != before {
        return None;
    }
    Some(RouteConfig {
        name: raw.name.get_ref().clone(),
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
        upgrades,
        case_insensitive,
        forwarding: forwarding?,
    })
}

/// A route name is letters, digits, `-` or `_`, and not `default` (the name of the
/// requests no route matches, in metrics and logs).
fn check_route_name(errors: &mut Errors<'_>, name: &Spanned<String>) {
    if !valid_name(name.get_ref()) {
        errors.push(
            name.span().start,
            format!("route name `{}` must be letters, digits, `-` or `_`", name.get_ref()),
        );
    }
    if name.get_ref() == "default" {
        errors.push(
            name.span().start,
            "route name `default` is reserved for requests that no route matches".to_owned(),
        );
    }
}

/// `stage`, `legacy` when left out; an unknown stage is an error at `stage_at`.
fn route_stage(errors: &mut Errors<'_>, raw: &raw::Route, stage_at: usize) -> Option<Stage> {
    let Some(name) = &raw.stage else {
        return Some(Stage::Legacy);
    };
    match name.get_ref().parse() {
        Ok(stage) => Some(stage),
        Err(unknown) => {
            errors.push(stage_at, unknown.to_string());
            None
        }
    }
}

/// `legacy`, or `proxy.default_upstream` when left out (`None` when that is invalid itself:
/// its error is reported with `[proxy]`).
fn legacy_upstream(
    errors: &mut Errors<'_>,
    raw: &raw::Route,
    upstreams: &[&str],
    default_upstream: Option<&str>,
) -> Option<String> {
    match &raw.legacy {
        Some(legacy) => Some(known_upstream(errors, legacy, upstreams)),
        None => default_upstream.map(str::to_owned),
    }
}

/// The upstream `name` refers to; an error at it unless the file defines it (the name is
/// kept so that the route's other checks still run).
fn known_upstream(errors: &mut Errors<'_>, name: &Spanned<String>, upstreams: &[&str]) -> String {
    if !upstreams.contains(&name.get_ref().as_str()) {
        errors.push(name.span().start, unknown_upstream(name.get_ref(), upstreams));
    }
    name.get_ref().clone()
}

/// `max_body`: a number of bytes, 0 or more; `None` when left out (no limit) or wrong.
fn route_max_body(errors: &mut Errors<'_>, raw: &raw::Route) -> Option<u64> {
    match &raw.max_body {
        None => None,
        Some(v) if *v.get_ref() >= 0 => Some(*v.get_ref() as u64),
        Some(v) => {
            errors.push(
                v.span().start,
                format!("`max_body` must be a number of bytes, 0 or more, got {}", v.get_ref()),
            );
            None
        }
    }
}

/// `upgrades`: protocol names (tokens, any case; stored lower-case), never `h2c`: an
/// upgrade to cleartext HTTP/2 would hand the connection to the upstream's HTTP/2 server,
/// past routing and every check (h2c smuggling). [`DEFAULT_UPGRADES`] when left out.
fn route_upgrades(errors: &mut Errors<'_>, raw: &raw::Route) -> Vec<String> {
    let Some(listed) = &raw.upgrades else {
        return DEFAULT_UPGRADES.iter().map(|p| (*p).to_owned()).collect();
    };
    let mut upgrades: Vec<String> = Vec::with_capacity(listed.len());
    for protocol in listed {
        let name = protocol.get_ref();
        let at = protocol.span().start;
        if let Some((protocol_name, _version)) = name.split_once('/') {
            errors.push(
                at,
                format!(
                    "`upgrades` lists protocol names without a version: write {protocol_name:?} (it allows every version a client asks for, e.g. `Upgrade: {name}`)"
                ),
            );
        } else if name.is_empty() || !name.bytes().all(crate::headers::is_token_byte) {
            errors.push(
                at,
                format!("`upgrades` lists protocol names like \"websocket\" (HTTP tokens), got {name:?}"),
            );
        } else if name.eq_ignore_ascii_case("h2c") {
            errors.push(
                at,
                "`upgrades` cannot allow `h2c`: an upgrade to cleartext HTTP/2 would reach the upstream past routing and every check (h2c smuggling); it is never forwarded".to_owned(),
            );
        } else if upgrades.iter().any(|seen| seen.eq_ignore_ascii_case(name)) {
            errors.push(
                at,
                format!("`upgrades` lists {name:?} twice (names are compared without case)"),
            );
        } else {
            upgrades.push(name.to_ascii_lowercase());
        }
    }
    upgrades
}

/// `compare`, compiled once per load; the default rules when left out.
fn route_compare(errors: &mut Errors<'_>, raw: &raw::Route) -> Option<Arc<CompareRules>> {
    match &raw.compare {
        None => Some(Arc::new(CompareRules::default())),
        Some(spec) => match CompareRules::from_spec(spec.get_ref()) {
            Ok(rules) => Some(Arc::new(rules)),
            Err(e) => {
                errors.push(spec.span().start, format!("bad `compare`: {e}"));
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::model::{CanaryConfig, ShadowConfig, Stage, StickyKey};
    use crate::config::parse::parse_str;
    use crate::config::tests::{GOOD, errors_of};

    #[test]
    fn stage_new_needs_new_upstream() {
        let errors = errors_of(&GOOD.replace(
            "new = \"thoughts\"\n\n[[routes]]\nname = \"one-thought\"",
            "\n[[routes]]\nname = \"one-thought\"",
        ));
        assert!(
            errors.iter().any(|e| e.contains("names no `new` upstream")),
            "{errors:?}"
        );
    }

    #[test]
    fn canary_stage_and_settings() {
        let text = GOOD.replace(
            "stage = \"new\"\nnew = \"thoughts\"",
            "stage = \"canary\"\nnew = \"thoughts\"\ncanary = { percent = 12.5, sticky = \"cookie:session\" }",
        );
        let c = parse_str("routes.toml", &text).unwrap();
        assert_eq!(c.routes[0].stage, Stage::Canary);
        assert_eq!(
            c.routes[0].canary,
            Some(CanaryConfig {
                basis_points: 1250,
                sticky: Some(StickyKey::Cookie("session".into()))
            })
        );
        for (canary, what) in [
            ("canary = { percent = 120.0 }", "between 0 and 100"),
            ("canary = { percent = 10.0, sticky = \"ip\" }", "bad `canary.sticky`"),
            (
                "canary = { percent = 10.0, sticky = \"header:bad header\" }",
                "bad `canary.sticky`",
            ),
            ("canary = { percent = 10.0, share = 1 }", "share"),
        ] {
            let text = GOOD.replace(
                "stage = \"new\"\nnew = \"thoughts\"",
                &format!("stage = \"canary\"\nnew = \"thoughts\"\n{canary}"),
            );
            let errors = errors_of(&text);
            assert_eq!(errors.len(), 1, "{canary}: {errors:?}");
            assert!(errors[0].contains(what), "{canary}: {errors:?}");
        }
        let errors = errors_of(&GOOD.replace("stage = \"new\"", "stage = \"canary\""));
        assert!(errors.iter().any(|e| e.contains("has no `canary")), "{errors:?}");
    }

    #[test]
    fn compare_and_shadow_settings() {
        let extra = "compare = { ignore = [\"/timestamp\"], normalize = [{ pattern = \"[0-9a-f-]{36}\", replace = \"<uuid>\" }] }\n\
                     shadow = { sample = 0.25, max_inflight = 8, timeout = \"500ms\", noise_sample = 0.1 }";
        let text = GOOD.replace("name = \"login\"", &format!("name = \"login\"\n{extra}"));
        let c = parse_str("routes.toml", &text).unwrap();
        let login = &c.routes[2];
        assert_eq!(login.shadow.sample, 0.25);
        assert_eq!(login.shadow.max_inflight, 8);
        assert_eq!(login.shadow.timeout, Duration::from_millis(500));
        assert_eq!(login.shadow.noise_sample, 0.1);
        assert_eq!(login.shadow.max_body, ShadowConfig::default().max_body);
        assert_eq!(c.routes[0].shadow, ShadowConfig::default());

        for (extra, what) in [
            (
                "compare = { normalize = [{ pattern = \"(\", replace = \"x\" }] }",
                "bad `compare`",
            ),
            ("compare = { ignore = [\"no-slash\"] }", "bad `compare`"),
            ("compare = { colour = 1 }", "colour"),
            (
                "compare = { divergences = [{ path = \"x\", reason = \"r\", status = { legacy = 500, new = 401 } }] }",
                "bad `compare`: divergences[0]: `path` `x` must start with `/`",
            ),
            (
                "compare = { normalize = [{ pattern = \"a\", replace = \"\", header = \"allow\" }] }",
                "bad `compare`: normalize[0]: `header` `allow` is not compared",
            ),
            ("compare = { location = \"host\" }", "unknown variant `host`"),
            (
                "shadow = { sample = 2.0 }",
                "`shadow.sample` must be between 0.0 and 1.0",
            ),
            ("shadow = { max_inflight = 0 }", "`shadow.max_inflight` must be between"),
            ("shadow = { timeout = \"soon\" }", "bad duration"),
        ] {
            let text = GOOD.replace("name = \"login\"", &format!("name = \"login\"\n{extra}"));
            let errors = errors_of(&text);
            assert_eq!(errors.len(), 1, "{extra}: {errors:?}");
            assert!(errors[0].contains(what), "{extra}: {errors:?}");
            let line = text
                .lines()
                .position(|l| l.starts_with(extra.split(' ').next().unwrap()))
                .unwrap()
                + 1;
            assert!(
                errors[0].starts_with(&format!("routes.toml:{line}:")),
                "{extra}: {errors:?}"
            );
        }
    }

    #[test]
    fn route_max_body() {
        let text = GOOD.replace("name = \"login\"", "name = \"login\"\nmax_body = 1048576");
        let c = parse_str("routes.toml", &text).unwrap();
        assert_eq!(c.routes[2].max_body, Some(1_048_576));
        assert_eq!(c.routes[0].max_body, None, "no limit unless set");
        let zero = GOOD.replace("name = \"login\"", "name = \"login\"\nmax_body = 0");
        assert_eq!(parse_str("routes.toml", &zero).unwrap().routes[2].max_body, Some(0));

        let text = GOOD.replace("name = \"login\"", "name = \"login\"\nmax_body = -1");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("`max_body` must be a number of bytes"), "{errors:?}");
        let line = text.lines().position(|l| l.starts_with("max_body")).unwrap() + 1;
        assert!(errors[0].starts_with(&format!("routes.toml:{line}:12: ")), "{errors:?}");
        let errors = errors_of(&GOOD.replace("name = \"login\"", "name = \"login\"\nmax_body = \"1MB\""));
        assert!(errors[0].contains("invalid type"), "{errors:?}");
    }
    #[test]
    fn route_upgrades() {
        let c = parse_str("routes.toml", GOOD).unwrap();
        assert_eq!(c.routes[2].upgrades, ["websocket"], "websocket unless set");
        let with = |list: &str| GOOD.replace("name = \"login\"", &format!("name = \"login\"\nupgrades = {list}"));
        let c = parse_str("routes.toml", &with("[\"WebSocket\", \"my-proto\"]")).unwrap();
        assert_eq!(c.routes[2].upgrades, ["websocket", "my-proto"]);
        let c = parse_str("routes.toml", &with("[]")).unwrap();
        assert!(c.routes[2].upgrades.is_empty());
        for (list, what) in [
            ("[\"h2c\"]", "cannot allow `h2c`"),
            ("[\"H2c\"]", "cannot allow `h2c`"),
            ("[\"web socket\"]", "protocol names"),
            ("[\"\"]", "protocol names"),
            ("[\"websocket/13\"]", "without a version: write \"websocket\""),
            ("[\"websocket\", \"WebSocket\"]", "lists \"WebSocket\" twice"),
        ] {
            let errors = errors_of(&with(list));
            assert_eq!(errors.len(), 1, "{list}: {errors:?}");
            assert!(errors[0].contains(what), "{list}: {errors:?}");
        }
    }
}
