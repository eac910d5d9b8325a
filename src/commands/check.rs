//! `strangler check FILE`: validates a routing table completely (every error, each with
//! file:line:column) and reads the certificate, key and CA files it names.
//!
//! `strangler check FILE --against TARGET` also prints what FILE would change, route by
//! route, like `terraform plan`: against another routes.toml (every property of every
//! route, and its upstreams' URLs), or against the table in force at a running proxy's
//! admin API (what `GET /admin/routes` and `/admin/upstreams` list: the admin API shows
//! neither compare rules nor shadow settings, so those are not compared; a running table
//! whose version equals FILE's is FILE itself). Without a value, TARGET is the admin API of
//! the proxy that runs FILE (its `proxy.admin_listen`, asked with its `admin_token_file`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::admin::api::{ListedRoute, RouteListing, UpstreamListing};
use crate::admin::documents::listed_route;
use crate::commands::admin_client::{TIMEOUT, admin_base, admin_url_of, http_get, use_token_of};
use crate::config::{Config, LoadError, RouteDiff, RouteFacts, settings_diff};
use crate::server::tls::pairs_of;
use crate::table::Table;
use crate::tls::{TlsError, load_pair};
use crate::upstream::tls::ClientTls;

/// Checks `file`; the report goes to `out`, the closing count to `err`. Returns whether the
/// table is usable.
pub fn run(file: &Path, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<bool> {
    Ok(validate(file, out, err)?.is_some())
}

/// Validates `file` as [`run`] does; the table when it is usable.
fn validate(file: &Path, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<Option<Table>> {
    match Table::load(file) {
        Ok(mut table) => {
            // The error pages are read as the proxy reads them; their problems come first.
            let pages = table.config.read_error_pages().err().map(|e| e.0).unwrap_or_default();
            let c = &table.config;
            let problems: Vec<String> = (pages.iter().map(ToString::to_string))
                .chain(check_files(c).iter().map(ToString::to_string))
                .collect();
            if !problems.is_empty() {
                for problem in &problems {
                    writeln!(out, "{problem}")?;
                }
                writeln!(err, "{}: {} error(s)", file.display(), problems.len())?;
                return Ok(None);
            }
            writeln!(
                out,
                "{}: ok: {} upstreams, {} routes, default upstream `{}`, version {}",
                file.display(),
                c.upstreams.len(),
                c.routes.len(),
                c.proxy.default_upstream,
                c.version
            )?;
            if !c.proxy.defaulted.is_empty() {
                writeln!(out, "{}: {}", file.display(), defaults_line(c))?;
            }
            Ok(Some(table))
        }
        Err(LoadError::Invalid(errors)) => {
            for error in &errors.0 {
                writeln!(out, "{error}")?;
            }
            writeln!(err, "{}: {} error(s)", file.display(), errors.0.len())?;
            Ok(None)
        }
        Err(e) => {
            writeln!(out, "{e}")?;
            Ok(None)
        }
    }
}

/// The defaults a table relies on, one line: `defaults: listen 0.0.0.0:8000, …`.
fn defaults_line(config: &Config) -> String {
    let proxy = &config.proxy;
    let said: Vec<String> = proxy
        .defaulted
        .iter()
        .map(|setting| match *setting {
            "listen" => format!("listen {}", proxy.listen),
            "admin_listen" => format!("admin_listen {}", proxy.admin_listen),
            "default_upstream" => format!("default_upstream `{}`", proxy.default_upstream),
            other => other.to_owned(),
        })
        .collect();
    format!("defaults: {} (not set in the file)", said.join(", "))
}

/// What `check --against` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// FILE is valid (whatever the diff says).
    Valid,
    /// FILE is invalid.
    Invalid,
    /// The `--against` target could not be reached or read.
    TargetUnavailable,
}

impl Verdict {
    /// The process exit code: 0 valid, 1 invalid, 2 target unavailable.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::TargetUnavailable => 2,
        }
    }
}

/// What `--against` names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A running proxy's admin base URL.
    Admin(String),
    /// Another routes.toml.
    File(PathBuf),
}

impl Target {
    /// `http(s)://…` or `host:port` is an admin API, unless a file of that name exists;
    /// anything else a file. Empty: the admin API of the proxy that runs `config`.
    fn of(arg: &str, config: &Config) -> Self {
        let arg = arg.trim();
        if arg.is_empty() {
            return Target::Admin(admin_url_of(config));
        }
        if arg.starts_with("http://") || arg.starts_with("https://") {
            return Target::Admin(admin_base(arg));
        }
        let looks_like_address = !arg.contains('/')
            && arg
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if looks_like_address && !Path::new(arg).exists() {
            Target::Admin(admin_base(arg))
        } else {
            Target::File(PathBuf::from(arg))
        }
    }
}

/// Checks `file`, then prints what it changes against `against` (see the module doc).
pub fn run_against(file: &Path, against: &str, out: &mut dyn Write, err: &mut dyn Write) -> std::io::Result<Verdict> {
    let Some(table) = validate(file, out, err)? else {
        return Ok(Verdict::Invalid);
    };
    let target = Target::of(against, &table.config);
    if against.trim().is_empty() {
        use_token_of(&table.config);
    }
    let compared = match &target {
        Target::File(path) => against_file(path, &table.config),
        Target::Admin(base) => against_admin(base, &table.config),
    };
    match compared {
        Ok((what, diff)) => {
            writeln!(out, "{what}")?;
            write_plan(&diff, out)?;
            Ok(Verdict::Valid)
        }
        Err(why) => {
            writeln!(err, "strangler: cannot compare against {against}: {why}")?;
            Ok(Verdict::TargetUnavailable)
        }
    }
}

/// The diff from another routes.toml to `config`, on every property.
fn against_file(path: &Path, config: &Config) -> Result<(String, RouteDiff), String> {
    let other = Table::load(path).map_err(|e| match e {
        LoadError::Invalid(errors) => format!("{} is not a valid table:\n{errors}", path.display()),
        e @ LoadError::Read { .. } => e.to_string(),
    })?;
    Ok((
        format!(
            "against {} (version {}): every route property and every other setting compared",
            path.display(),
            other.config.version
        ),
        RouteDiff::of_tables(&other.config, config),
    ))
}

/// The diff from the table in force at the admin API `base` to `config`, on what the admin
/// API lists.
fn against_admin(base: &str, config: &Config) -> Result<(String, RouteDiff), String> {
    let listing: RouteListing = admin_document(base, "/admin/routes")?;
    let upstreams: UpstreamListing = admin_document(base, "/admin/upstreams")?;
    let running_urls: BTreeMap<String, String> = upstreams.upstreams.into_iter().map(|u| (u.name, u.url)).collect();
    let file_urls: BTreeMap<String, String> = config
        .upstreams
        .iter()
        .map(|(name, u)| (name.clone(), u.url.to_string()))
        .collect();
    let running = listing
        .routes
        .iter()
        .map(|r| (r.name.clone(), listed_facts(r, &running_urls)))
        .collect();
    let file = config
        .routes
        .iter()
        .map(|r| (r.name.clone(), listed_facts(&listed_route(r), &file_urls)))
        .collect();
    let mut running_settings =
        BTreeMap::from([("proxy.default_upstream".to_owned(), listing.default_upstream.clone())]);
    running_settings.extend(
        running_urls
            .iter()
            .map(|(name, url)| (format!("upstreams.{name}.url"), url.clone())),
    );
    let mut file_settings = BTreeMap::from([(
        "proxy.default_upstream".to_owned(),
        config.proxy.default_upstream.clone(),
    )]);
    file_settings.extend(
        file_urls
            .iter()
            .map(|(name, url)| (format!("upstreams.{name}.url"), url.clone())),
    );
    let same = if listing.version == config.version {
        " (this very file)"
    } else {
        ""
    };
    Ok((
        format!(
            "against the table in force at {base} (version {}{same}): path, methods, stage, upstreams and \
             their URLs, canary, fallback, max_body, upgrades, case_insensitive, rewrite, host and header edits compared, and the default upstream and upstream URLs \
             (the admin API lists no compare rules or shadow settings, nor other [proxy] and upstream settings)",
            listing.version
        ),
        RouteDiff {
            settings: settings_diff(&running_settings, &file_settings),
            ..RouteDiff::between(&running, &file)
        },
    ))
}

/// `GET base+path`, read as `T`.
fn admin_document<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> Result<T, String> {
    match http_get(&format!("{base}{path}"), TIMEOUT)? {
        (200, body) => serde_json::from_str(&body).map_err(|e| format!("GET {base}{path}: unexpected answer: {e}")),
        (401, _) => Err(format!(
            "GET {base}{path} answered 401: the admin API needs a token (give --admin-token-file)"
        )),
        (status, _) => Err(format!("GET {base}{path} answered {status}")),
    }
}

/// The facts of a route as the admin API lists it, with its upstreams' URLs from `urls`:
/// the same text as [`RouteFacts::of`] for the properties the listing has.
fn listed_facts(route: &ListedRoute, urls: &BTreeMap<String, String>) -> RouteFacts {
    let url = |name: &str| urls.get(name).cloned().unwrap_or_else(|| RouteFacts::NONE.to_owned());
    RouteFacts::new()
        .with("path", format!("{} {}", route.kind, route.path))
        .with(
            "methods",
            RouteFacts::methods_text(route.methods.as_ref().map(|m| m.iter().map(String::as_str))),
        )
        .with("stage", route.stage.as_str())
        .with("legacy", route.legacy.as_str())
        .with("legacy_url", url(&route.legacy))
        .with("new", route.new.as_deref().unwrap_or(RouteFacts::NONE))
        .with(
            "new_url",
            route.new.as_deref().map_or_else(|| RouteFacts::NONE.to_owned(), url),
        )
        .with(
            "canary",
            RouteFacts::canary_text(route.canary.as_ref().map(|c| (c.percent, c.sticky.clone()))),
        )
        .with(
            "fallback",
            RouteFacts::fallback_text(route.fallback.as_ref().map(|f| f.max_body)),
        )
        .with("max_body", RouteFacts::optional_text(route.max_body))
        .with("upgrades", RouteFacts::upgrades_text(route.upgrades.as_deref()))
        .with("case_insensitive", route.case_insensitive.to_string())
        .with(
            "rewrite",
            RouteFacts::rewrite_text(route.forwarding.strip_prefix, route.forwarding.rewrite.as_deref()),
        )
        .with("host", RouteFacts::host_text(route.forwarding.host.as_deref()))
        .with(
            "request_headers",
            listed_edits_text(route.forwarding.request_headers.as_ref()),
        )
        .with(
            "response_headers",
            listed_edits_text(route.forwarding.response_headers.as_ref()),
        )
}

/// Listed header edits as [`RouteFacts::header_edits_text`] reads them.
fn listed_edits_text(edits: Option<&crate::admin::api::ListedHeaderEdits>) -> String {
    let Some(edits) = edits else {
        return RouteFacts::header_edits_text(&[], &[]);
    };
    let set: Vec<(String, String)> = edits.set.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    RouteFacts::header_edits_text(&set, &edits.remove)
}

/// One line per route (`+ name`, `- name`, `~ name (stage shadow -> canary, …)`), in name
/// order, one per other setting (`setting ~ proxy.default_upstream legacy -> other`), then
/// the summary.
fn write_plan(diff: &RouteDiff, out: &mut dyn Write) -> std::io::Result<()> {
    let mut lines: Vec<(&str, String)> = Vec::new();
    lines.extend(diff.added.iter().map(|name| (name.as_str(), format!("+ {name}"))));
    lines.extend(diff.removed.iter().map(|name| (name.as_str(), format!("- {name}"))));
    lines.extend(diff.changed.iter().map(|(name, changes)| {
        let what: Vec<String> = changes
            .iter()
            .map(|c| format!("{} {} -> {}", c.property, c.before, c.after))
            .collect();
        (name.as_str(), format!("~ {name} ({})", what.join(", ")))
    }));
    lines.sort();
    for (_, line) in &lines {
        writeln!(out, "{line}")?;
    }
    for setting in &diff.settings {
        writeln!(out, "setting ~ {setting}")?;
    }
    writeln!(out, "routes: {}", diff.changes().summary())
}

/// Reads every certificate, key and CA file a config names and reports what would keep it
/// from loading (`strangler check`): the files themselves are not part of the config's
/// validation, which does no IO. Blocking.
pub fn check_files(config: &Config) -> Vec<TlsError> {
    let mut problems = Vec::new();
    if let Some(settings) = &config.proxy.tls {
        let mut seen = Vec::new();
        for pair in pairs_of(settings) {
            if seen.contains(&pair) {
                continue;
            }
            seen.push(pair);
            if let Err(e) = load_pair(pair) {
                problems.push(e);
            }
        }
    }
    for upstream in config.upstreams.values() {
        if let Err(e) = ClientTls::for_upstream(upstream) {
            problems.push(e);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"0.0.0.0:9100\"\nadmin_token_file = \"t\"\n\
        default_upstream = \"legacy\"\n[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n\
        [upstreams.next]\nurl = \"https://next.internal:8443\"\n\
        [[routes]]\nname = \"api\"\npath = \"/api/\"\nstage = \"canary\"\nnew = \"next\"\n\
        canary = { percent = 12.5, sticky = \"cookie:sid\" }\nmax_body = 1000\nstrip_prefix = true\nhost = \"upstream\"\n\
        request_headers = { set = { X-B = \"2\", Authorization = \"Basic eA==\", x-a = \"1\" }, remove = [\"cookie\"] }\n\
        response_headers = { remove = [\"server\", \"X-Powered-By\"] }\n\
        [[routes]]\nname = \"login\"\nexact = \"/login\"\nmethods = [\"POST\", \"PUT\"]\nfallback = true\n\
        fallback_max_body = 4096\nnew = \"next\"\nstage = \"new\"\n\
        [[routes]]\nname = \"home\"\npath = \"/\"\n\
        [[routes]]\nname = \"legacy-app\"\npath = \"/App/\"\ncase_insensitive = true\nupgrades = []\n";

    fn config() -> Config {
        crate::config::parse_str("routes.toml", TABLE).unwrap()
    }

    #[test]
    fn a_target_is_an_admin_api_or_a_file() {
        let c = config();
        assert_eq!(Target::of("", &c), Target::Admin("http://127.0.0.1:9100".to_owned()));
        assert_eq!(
            Target::of("http://10.0.0.5:9100/", &c),
            Target::Admin("http://10.0.0.5:9100".to_owned())
        );
        assert_eq!(
            Target::of("strangler-0.strangler:9100", &c),
            Target::Admin("http://strangler-0.strangler:9100".to_owned())
        );
        assert_eq!(
            Target::of("old/routes.toml", &c),
            Target::File("old/routes.toml".into())
        );
        assert_eq!(Target::of("routes.toml", &c), Target::File("routes.toml".into()));
        assert_eq!(Target::of("C:routes", &c), Target::File("C:routes".into()));
    }

    /// The listing's facts are those of the table for every property the listing has: a
    /// table compared with a proxy running it shows no change.
    #[test]
    fn listed_facts_read_like_the_tables_own() {
        let c = config();
        let urls: BTreeMap<String, String> = c
            .upstreams
            .iter()
            .map(|(name, u)| (name.clone(), u.url.to_string()))
            .collect();
        for route in &c.routes {
            let full = RouteFacts::of(&c, route);
            let listed = listed_facts(&listed_route(route), &urls);
            for property in [
                "path",
                "methods",
                "stage",
                "legacy",
                "legacy_url",
                "new",
                "new_url",
                "canary",
                "fallback",
                "max_body",
                "upgrades",
                "case_insensitive",
                "rewrite",
                "host",
                "request_headers",
                "response_headers",
            ] {
                assert_eq!(listed.get(property), full.get(property), "{} {property}", route.name);
            }
        }
        let api = listed_facts(&listed_route(&c.routes[0]), &urls);
        assert_eq!(api.get("canary"), Some("12.5% sticky cookie:sid"));
        assert_eq!(api.get("rewrite"), Some("strip_prefix"));
        assert_eq!(api.get("host"), Some("upstream"));
        assert_eq!(
            api.get("request_headers"),
            Some("set authorization: [redacted], x-a: 1, x-b: 2; remove cookie")
        );
        assert_eq!(api.get("response_headers"), Some("remove server, x-powered-by"));
        assert_eq!(api.get("new_url"), Some("https://next.internal:8443/"));
        let login = listed_facts(&listed_route(&c.routes[1]), &urls);
        assert_eq!(login.get("methods"), Some("POST, PUT"));
        assert_eq!(login.get("fallback"), Some("max_body 4096"));
        assert_eq!(login.get("upgrades"), Some("[websocket]"));
        let app = listed_facts(&listed_route(&c.routes[3]), &urls);
        assert_eq!(app.get("upgrades"), Some("[]"));
        assert_eq!(app.get("case_insensitive"), Some("true"));
    }

    #[test]
    fn the_plan_is_one_line_per_route_in_name_order_then_the_summary() {
        let before = config();
        let after = crate::config::parse_str(
            "routes.toml",
            &TABLE
                .replace("name = \"home\"", "name = \"about\"")
                .replace("stage = \"canary\"", "stage = \"new\"")
                .replace("percent = 12.5", "percent = 50"),
        )
        .unwrap();
        let mut out = Vec::new();
        write_plan(&RouteDiff::of_tables(&before, &after), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+ about\n\
             ~ api (stage canary -> new, canary 12.5% sticky cookie:sid -> 50% sticky cookie:sid)\n\
             - home\n\
             routes: +1 -1 ~1\n"
        );
    }
}
