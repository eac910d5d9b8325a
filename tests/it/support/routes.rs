//! routes.toml texts for tests, and where in such a text an error points.

/// A routes.toml with `legacy` as default upstream and the given extra upstreams and routes.
pub fn routes_toml(upstreams: &[(&str, &str)], routes: &str) -> String {
    let upstreams: Vec<(&str, &str, &str)> = upstreams.iter().map(|(name, url)| (*name, *url, "")).collect();
    routes_toml_with("", &upstreams, routes)
}

/// A routes.toml like [`routes_toml`], with extra lines in `[proxy]` and in each upstream
/// (`(name, url, extra_lines)`).
pub fn routes_toml_with(proxy_extra: &str, upstreams: &[(&str, &str, &str)], routes: &str) -> String {
    let mut text = String::from(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndefault_upstream = \"legacy\"\n",
    );
    text.push_str(proxy_extra);
    text.push_str("\n\n");
    for (name, url, extra) in upstreams {
        text.push_str(&format!("[upstreams.{name}]\nurl = \"{url}\"\n{extra}\n"));
    }
    text.push('\n');
    text.push_str(routes);
    text
}

/// `text` (a routes.toml) with the `stage = ...` line of each named route replaced.
/// Comments and everything else are kept; each route must have exactly one uncommented
/// `stage` line after its `name` line.
pub fn with_stages(text: &str, stages: &[(&str, &str)]) -> String {
    let mut current: Option<String> = None;
    let mut replaced = vec![0usize; stages.len()];
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            current = None;
        }
        if let Some(rest) = trimmed.strip_prefix("name") {
            let value = rest
                .trim_start()
                .strip_prefix('=')
                .map(|v| v.trim().trim_matches('"').to_owned());
            current = value.or(current);
        }
        let target = current
            .as_deref()
            .and_then(|name| stages.iter().position(|(route, _)| *route == name));
        match target {
            Some(index) if trimmed.starts_with("stage") => {
                out.push_str(&format!("stage = \"{}\"\n", stages[index].1));
                replaced[index] += 1;
            }
            _ => out.push_str(line),
        }
    }
    for ((route, _), count) in stages.iter().zip(replaced) {
        assert_eq!(count, 1, "route `{route}` has {count} `stage` lines in the routes file");
    }
    out
}

/// `(line, column)` of the `FILE:LINE:COL: message` error that follows `file_suffix`
/// (e.g. `routes.toml`), if the error has that shape.
pub fn error_location(error: &str, file_suffix: &str) -> Option<(usize, usize)> {
    let (_, rest) = error.split_once(&format!("{file_suffix}:"))?;
    let mut parts = rest.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let column = parts.next()?.parse().ok()?;
    parts.next()?.strip_prefix(' ')?;
    Some((line, column))
}

/// 1-based line and column where `needle` first occurs in `text`.
pub fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the text"));
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
    (line, column)
}
