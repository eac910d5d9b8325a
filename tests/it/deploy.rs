//! deploy/: what the static checks of `deploy/check.sh` cannot see. The cluster's routing
//! table must route exactly like the repository's; the alert rules and the dashboard
//! must only name metrics a running proxy exports; and a ConfigMap update, done on disk
//! exactly as the kubelet does it, must be live in the real binary within 2 s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use promql_parser::parser::{Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};
use strangler::config::version_of;

use crate::support::binary::{BinaryProxy, ServeOptions, Stderr};
use crate::support::files::ConfigMapVolume;
use crate::support::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The repository's table (the demo's) and the one the cluster runs.
const REPOSITORY_ROUTES: &str = "routes.toml";
const CLUSTER_ROUTES: &str = "deploy/k8s/base/routes/routes.toml";

fn toml_file(path: &str) -> toml::Table {
    let text = std::fs::read_to_string(repo(path)).unwrap();
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("{path} is not TOML: {e}"))
}

/// The cluster's table may differ from the repository's only in `[proxy]` (listeners,
/// admin token) and in where the upstreams are: every route, every upstream name and the
/// default upstream are the same, key for key, so a flip merged into one and not the
/// other fails here.
#[test]
fn cluster_routes_are_the_repository_routes() {
    let repository = toml_file(REPOSITORY_ROUTES);
    let cluster = toml_file(CLUSTER_ROUTES);

    let routes = |table: &toml::Table| table.get("routes").cloned().unwrap_or(toml::Value::Array(Vec::new()));
    let (ours, theirs) = (routes(&repository), routes(&cluster));
    let names = |routes: &toml::Value| -> Vec<String> {
        routes
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.get("name")?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(!names(&ours).is_empty(), "{REPOSITORY_ROUTES} has no routes to compare");
    if ours != theirs {
        let by_name = |routes: &toml::Value| -> BTreeMap<String, toml::Value> {
            routes
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| (r.get("name").map(|n| n.to_string()).unwrap_or_default(), r.clone()))
                .collect()
        };
        let (a, b) = (by_name(&ours), by_name(&theirs));
        let differing: Vec<String> = a
            .keys()
            .chain(b.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|name| a.get(*name) != b.get(*name))
            .map(|name| {
                format!(
                    "{name}: {REPOSITORY_ROUTES} {:?} vs {CLUSTER_ROUTES} {:?}",
                    a.get(name),
                    b.get(name)
                )
            })
            .collect();
        panic!(
            "the cluster's routes drifted from the repository's (run the same `strangler flip` on both files):\n{}",
            differing.join("\n")
        );
    }

    let default_upstream = |table: &toml::Table| table["proxy"]["default_upstream"].clone();
    assert_eq!(default_upstream(&repository), default_upstream(&cluster));

    // Same upstreams, each on the port of the repository's, at the Service of its name.
    let upstreams = |table: &toml::Table| -> BTreeMap<String, String> {
        table["upstreams"]
            .as_table()
            .unwrap()
            .iter()
            .map(|(name, u)| (name.clone(), u["url"].as_str().unwrap().to_owned()))
            .collect()
    };
    let (our_upstreams, their_upstreams) = (upstreams(&repository), upstreams(&cluster));
    assert_eq!(
        our_upstreams.keys().collect::<Vec<_>>(),
        their_upstreams.keys().collect::<Vec<_>>(),
        "upstream names differ"
    );
    for (name, url) in &our_upstreams {
        let port = url.rsplit(':').next().unwrap();
        assert_eq!(
            their_upstreams[name],
            format!("http://{name}:{port}"),
            "upstream `{name}`"
        );
    }

    // The repository's table is valid, so its routes (identical above) are too: names,
    // paths, stages and methods as the proxy reads them.
    let table = strangler::table::Table::parse(
        REPOSITORY_ROUTES,
        &std::fs::read_to_string(repo(REPOSITORY_ROUTES)).unwrap(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let parsed: Vec<&str> = table.config.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(parsed, names(&theirs));
}

/// `strangler check` accepts both tables, as CI and a pre-merge hook run it.
#[tokio::test]
async fn both_tables_pass_strangler_check() {
    for file in [REPOSITORY_ROUTES, CLUSTER_ROUTES] {
        let output = output(strangler_command(&["check", file]).current_dir(env!("CARGO_MANIFEST_DIR"))).await;
        assert!(
            output.status.success(),
            "strangler check {file}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------
// The kubelet's ConfigMap update, on disk, against the real binary.
// ---------------------------------------------------------------------------------------

/// The real `strangler` binary, started as the Kubernetes Deployment starts it.
#[cfg(unix)]
async fn serve_as_deployed(config: &Path) -> BinaryProxy {
    BinaryProxy::serve(
        config.to_path_buf(),
        ServeOptions {
            global_args: &["--log-format", "json"],
            rust_log: "info",
            stderr: Stderr::Lines,
        },
    )
    .await
}

#[cfg(unix)]
fn stage_table(legacy: &Upstream, thoughts: &Upstream, stage: &str) -> String {
    routes_toml(
        &[("legacy", &legacy.url()), ("thoughts", &thoughts.url())],
        &format!(
            "[[routes]]\nname = \"my-thoughts-api\"\npath = \"/api/me/thoughts/\"\nstage = \"{stage}\"\nnew = \"thoughts\"\n"
        ),
    )
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn kubelet_configmap_update_is_live_within_two_seconds() {
    const LIVE_WITHIN: Duration = Duration::from_secs(2);
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let dir = tempfile::tempdir().unwrap();
    let first = stage_table(&legacy, &thoughts, "legacy");
    let mut volume = ConfigMapVolume::create(dir.path(), "..2026_11_27_10_00_00.123", &[("routes.toml", &first)]);
    let mut served = serve_as_deployed(&dir.path().join("routes.toml")).await;
    assert_eq!(
        admin_json(&served, "/admin/routes").await["version"],
        version_of(&first)
    );
    assert_eq!(served_by(&served, "/api/me/thoughts/").await, "legacy");

    // A merged flip reaches the node: the kubelet swaps the volume. Twice, so that the
    // watch is shown to survive the deletion of the directory it first read from.
    for (timestamp, stage, upstream) in [
        ("..2026_11_27_10_01_00.456", "new", "thoughts"),
        ("..2026_11_27_10_02_00.789", "legacy", "legacy"),
    ] {
        let table = stage_table(&legacy, &thoughts, stage);
        let version = version_of(&table);
        volume.update(timestamp, &[("routes.toml", &table)]);
        let (took, routes) = served.wait_for_version(&version, LIVE_WITHIN).await;
        assert!(took < LIVE_WITHIN, "{took:?}");
        assert_eq!(routes["last_error"], serde_json::Value::Null, "{routes}");
        assert_eq!(routes["routes"][0]["stage"], stage, "{routes}");
        assert_eq!(served_by(&served, "/api/me/thoughts/").await, upstream);
        let entries: BTreeSet<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            entries,
            BTreeSet::from([timestamp.to_owned(), "..data".to_owned(), "routes.toml".to_owned()]),
            "the volume is not laid out as the kubelet leaves it"
        );
    }
    served.signal("TERM");
    let exit = served.exit_within(Duration::from_secs(10)).await;
    assert!(exit.success(), "{exit:?}");
}

// ---------------------------------------------------------------------------------------
// Metric names in deploy/prometheus/rules.yaml and deploy/grafana/strangler.json.
// ---------------------------------------------------------------------------------------

/// Collects the metric name of every selector in a PromQL expression.
#[derive(Default)]
struct MetricNames(BTreeSet<String>);

impl ExprVisitor for MetricNames {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        let selector: Option<&VectorSelector> = match expr {
            Expr::VectorSelector(selector) => Some(selector),
            Expr::MatrixSelector(matrix) => Some(&matrix.vs),
            _ => None,
        };
        if let Some(name) = selector.and_then(|s| s.name.as_ref()) {
            self.0.insert(name.clone());
        }
        Ok(true)
    }
}

/// The metric names `query` selects; Grafana's interval variables are replaced by a
/// duration first (the other variables only occur inside label matchers' strings).
fn metric_names(query: &str, origin: &str) -> BTreeSet<String> {
    let query = query
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h");
    let expr = promql_parser::parser::parse(&query).unwrap_or_else(|e| panic!("{origin}: bad PromQL: {e}\n{query}"));
    let mut names = MetricNames::default();
    walk_expr(&mut names, &expr).unwrap();
    names.0
}

/// Every PromQL query of the dashboard, with where it is: panel targets, annotations, and
/// query variables (`label_values(SELECTOR, label)`).
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(value: &serde_json::Value, place: &str, out: &mut Vec<(String, String)>) {
        match value {
            serde_json::Value::Object(map) => {
                let here = map
                    .get("title")
                    .or_else(|| map.get("name"))
                    .and_then(|t| t.as_str())
                    .map_or(place.to_owned(), |t| format!("{place} > {t}"));
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("expr", serde_json::Value::String(expr)) => out.push((here.clone(), expr.clone())),
                        _ => walk(child, &here, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| walk(item, place, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], "panels", &mut out);
    walk(&dashboard["annotations"], "annotations", &mut out);
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .or(variable["query"].as_str())
            .unwrap();
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _)| selector.trim().to_owned())
            .unwrap_or_else(|| query.to_owned());
        out.push((format!("variable {}", variable["name"]), selector));
    }
    out
}

/// A proxy with a route at every stage that produces series (new, shadow, canary, a new
/// side that fails and falls back), traffic recording on, a health-checked upstream, and
/// some traffic, so that the label-vec metrics have series to show.
async fn busy_proxy() -> (TestProxy, Vec<Upstream>) {
    let legacy = echo_upstream("legacy").await;
    let thoughts = echo_upstream("thoughts").await;
    let gone = dead_url();
    let routes = routes_toml(
        &[
            ("legacy", &legacy.url()),
            ("thoughts", &thoughts.url()),
            ("gone", &gone),
        ],
        "[[routes]]\nname = \"migrated\"\npath = \"/migrated/\"\nstage = \"new\"\nnew = \"thoughts\"\n\n\
             [[routes]]\nname = \"shadowed\"\npath = \"/shadowed/\"\nstage = \"shadow\"\nnew = \"thoughts\"\n\n\
             [[routes]]\nname = \"canaried\"\npath = \"/canaried/\"\nstage = \"canary\"\nnew = \"thoughts\"\ncanary = { percent = 50 }\n\n\
             [[routes]]\nname = \"falling-back\"\npath = \"/falling-back/\"\nstage = \"new\"\nnew = \"gone\"\nfallback = true\n",
    );
    // `strangler_upstream_healthy` has series only for upstreams with a health check.
    let health = "[upstreams.thoughts.health]\npath = \"/\"\ninterval = \"1s\"\n";
    let table = format!("{routes}\n{health}\n[record]\npath = \"traffic.jsonl\"\nsample = 1.0\n");
    let proxy = TestProxy::start(&table).await;
    for path in [
        "/migrated/1",
        "/shadowed/1",
        "/canaried/1",
        "/falling-back/1",
        "/elsewhere",
    ] {
        for _ in 0..4 {
            assert_eq!(get(&proxy.url(path)).await.status, 200, "GET {path}");
        }
    }
    let refused = raw_response(
        proxy.addr,
        b"GET /a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(refused.status, 400);
    // Shadow comparisons and fallbacks are counted a moment after the client's answer.
    let snapshot = proxy.state.snapshot();
    let shadowed = snapshot.routes.iter().find(|r| &*r.name == "shadowed").unwrap();
    let period = &shadowed.period.id;
    for series in [
        format!("strangler_shadow_comparisons_total{{period=\"{period}\",result=\"mismatch\",route=\"shadowed\"}}"),
        "strangler_fallbacks_total{reason=\"connect\",route=\"falling-back\"}".to_owned(),
    ] {
        let value = wait_metric(&proxy, &series, |v| v.is_some_and(|v| v > 0.0)).await;
        assert!(value.is_some_and(|v| v > 0.0), "{series}: {value:?}");
    }
    (proxy, vec![legacy, thoughts])
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_and_dashboard_name_only_metrics_the_proxy_exports() {
    // What the rules and the dashboard select, and where.
    let rules: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(repo("deploy/prometheus/rules.yaml")).unwrap()).unwrap();
    let mut recorded = BTreeSet::new();
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["record"].as_str().or(rule["alert"].as_str()).unwrap();
            if let Some(record) = rule["record"].as_str() {
                recorded.insert(record.to_owned());
            }
            let origin = format!("rules.yaml {name}");
            for metric in metric_names(rule["expr"].as_str().unwrap(), &origin) {
                used.entry(metric).or_default().insert(origin.clone());
            }
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo("deploy/grafana/strangler.json")).unwrap()).unwrap();
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() > 10, "only {} dashboard queries found", queries.len());
    for (place, query) in &queries {
        let origin = format!("strangler.json {place}");
        for metric in metric_names(query, &origin) {
            used.entry(metric).or_default().insert(origin.clone());
        }
    }
    assert!(
        used.contains_key("strangler_requests_total") && used.contains_key("strangler_request_duration_seconds_bucket"),
        "the extraction missed the obvious metrics: {:?}",
        used.keys()
    );

    // What a running proxy exports: the families of its /metrics.
    let (proxy, _upstreams) = busy_proxy().await;
    let text = metrics_text(proxy.admin).await;
    let exported: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert!(exported.contains("strangler_shadow_comparisons_total"), "{text}");

    let is_exported = |name: &str| {
        exported.contains(name)
            || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|family| exported.contains(family))
            })
    };
    let missing: Vec<String> = used
        .iter()
        .filter(|(name, _)| !recorded.contains(*name) && !is_exported(name))
        .map(|(name, origins)| {
            format!(
                "{name} (used by {})",
                origins.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} metric name(s) in deploy/ that the proxy does not export:\n  {}\nexported: {:?}",
        missing.len(),
        missing.join("\n  "),
        exported
    );
    proxy.stop().await;
}

/// deploy/systemd/strangler.service, as the repository ships it.
fn systemd_unit() -> String {
    std::fs::read_to_string(repo("deploy/systemd/strangler.service")).unwrap()
}

/// The values of `key=` in a unit file, in order (a key may be repeated).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_owned)
        .collect()
}

/// The unit's commands are ones the binary accepts, it reloads with SIGHUP and stops with
/// SIGTERM within a timeout longer than strangler's default drain, and it is sandboxed.
#[test]
fn the_systemd_unit_runs_the_real_cli_and_is_sandboxed() {
    let unit = systemd_unit();
    let exec_start = unit_values(&unit, "ExecStart");
    assert_eq!(exec_start.len(), 1, "{exec_start:?}");
    let argv: Vec<&str> = exec_start[0].split_whitespace().collect();
    assert_eq!(argv[0], "/usr/local/bin/strangler");
    let cli =
        <strangler::cli::Cli as clap::Parser>::try_parse_from(argv.iter().map(|a| a.replace("/usr/local/bin/", "")))
            .unwrap_or_else(|e| panic!("ExecStart={}: {e}", exec_start[0]));
    assert!(
        matches!(&cli.command, strangler::cli::Command::Serve { config } if config.as_path() == Path::new("/etc/strangler/routes.toml")),
        "{cli:?}"
    );
    assert_eq!(unit_values(&unit, "ExecReload"), ["/bin/kill -HUP $MAINPID"]);
    assert_eq!(unit_values(&unit, "KillSignal"), ["SIGTERM"]);
    assert_eq!(unit_values(&unit, "Restart"), ["on-failure"]);

    // TimeoutStopSec outlasts the default drain_timeout, so systemd never SIGKILLs a drain.
    let drain = strangler::config::parse_str("t.toml", "[upstreams.legacy]\nurl = \"http://127.0.0.1:1\"\n")
        .unwrap()
        .proxy
        .drain_timeout;
    let stop = unit_values(&unit, "TimeoutStopSec");
    let stop = strangler::config::parse_duration(&stop[0]).unwrap();
    assert!(stop > drain, "TimeoutStopSec {stop:?} <= drain_timeout {drain:?}");
    assert!(
        unit.contains("drain_timeout") && unit.contains(&format!("({}s", drain.as_secs())),
        "the unit's comment names the drain timeout it matches"
    );

    for (key, value) in [
        ("User", "strangler"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CapabilityBoundingSet", ""),
        ("ReadOnlyPaths", "/etc/strangler"),
        ("StateDirectory", "strangler"),
    ] {
        assert!(
            unit_values(&unit, key).iter().any(|v| v == value),
            "{key}={value} missing from the unit"
        );
    }
    let nofile: u64 = unit_values(&unit, "LimitNOFILE")[0].parse().unwrap();
    assert!(
        nofile >= 10_000,
        "LimitNOFILE {nofile} below the default max_connections"
    );
    // The user the unit names is the one its sysusers.d file creates.
    let sysusers = std::fs::read_to_string(repo("deploy/systemd/strangler.sysusers")).unwrap();
    assert!(sysusers.lines().any(|l| l.starts_with("u strangler ")), "{sysusers}");
}

/// `systemd-analyze verify` accepts the unit: every key known, its binary executable (the
/// built one stands in for /usr/local/bin/strangler), its man pages (`Documentation=`)
/// found among those `strangler man --dir` writes. Skipped without systemd-analyze unless
/// `STRANGLER_REQUIRE_TOOLS=1`.
#[tokio::test]
async fn the_systemd_unit_passes_systemd_analyze_verify() {
    let found = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            !required("STRANGLER_REQUIRE_TOOLS"),
            "`systemd-analyze` is not installed and STRANGLER_REQUIRE_TOOLS=1 (apt-get install systemd)"
        );
        eprintln!("skipped: `systemd-analyze` is not installed (apt-get install systemd)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("strangler.service");
    std::fs::write(&unit, systemd_unit().replace("/usr/local/bin/strangler", STRANGLER)).unwrap();
    let man1 = dir.path().join("man/man1");
    let written_pages = strangler(&["man", "--dir", man1.to_str().unwrap()]).await;
    assert!(written_pages.status.success(), "{}", both(&written_pages));

    let verify = |unit: &Path| {
        let mut command = tokio::process::Command::new("systemd-analyze");
        command
            .args(["verify", "--man=yes"])
            .arg(unit)
            .env("MANPATH", dir.path().join("man"))
            .env("SYSTEMD_LOG_COLOR", "0");
        command
    };
    let verified = output(&mut verify(&unit)).await;
    assert!(
        verified.status.success() && verified.stderr.is_empty(),
        "systemd-analyze verify: {}",
        both(&verified)
    );

    // The check bites: a misspelt key is reported.
    let misspelt = dir.path().join("misspelt.service");
    std::fs::write(&misspelt, systemd_unit().replace("ProtectHome=", "ProtectHom=")).unwrap();
    let refused = output(&mut verify(&misspelt)).await;
    assert!(stderr(&refused).contains("ProtectHom"), "{}", both(&refused));
}
