//! README's "Your monolith in five minutes", followed literally: every `$ …` line of its
//! console blocks is run in order in an empty directory, and every line README shows under
//! a command must appear in what the command printed (`…` stands for anything). The edit
//! README asks for ("uncomment the example route") is done to the file `init` wrote, and
//! the result must be README's own TOML block. So README cannot drift from the binary.
//!
//! Two substitutions, because a test never uses fixed ports: the monolith and the new
//! service README puts on 127.0.0.1:3000 and :3001 are test upstreams on ephemeral ports,
//! and before `strangler serve` the table gets `[proxy]` listeners on port 0 (README's
//! `0.0.0.0:8000` / `127.0.0.1:9100` are then the proxy's real addresses in what follows).

use std::path::Path;
use std::time::Duration;

use crate::support::binary::{BinaryProxy, ServeOptions};
use crate::support::*;

const README: &str = include_str!("../../README.md");
const SECTION: &str = "## Your monolith in five minutes";

/// One `$ command` of a console block and the lines README shows it printing.
#[derive(Debug)]
struct Step {
    command: String,
    shown: Vec<String>,
}

/// The section of README that starts at `heading`, up to the next `## ` heading.
fn section(heading: &str) -> &'static str {
    let start = README
        .find(heading)
        .unwrap_or_else(|| panic!("README has no `{heading}`"));
    let rest = &README[start + heading.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The fenced blocks of `text` whose info string is `lang`, in order.
fn blocks<'a>(text: &'a str, lang: &str) -> Vec<&'a str> {
    let fence = format!("```{lang}\n");
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(&fence) {
        let body = &rest[at + fence.len()..];
        let end = body.find("```").expect("an unclosed code block in README");
        found.push(&body[..end]);
        rest = &body[end + 3..];
    }
    found
}

/// The `$ …` commands of the console blocks, each with the lines shown under it.
fn steps(text: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for block in blocks(text, "console") {
        for line in block.lines() {
            match line.strip_prefix("$ ") {
                Some(command) => steps.push(Step {
                    command: command.split("  #").next().unwrap_or(command).trim().to_owned(),
                    shown: Vec::new(),
                }),
                None => steps
                    .last_mut()
                    .expect("console output before any `$`")
                    .shown
                    .push(line.to_owned()),
            }
        }
    }
    steps
}

/// Whether `printed` has a line matching `shown`, where `…` in `shown` matches anything.
fn shows(printed: &str, shown: &str) -> bool {
    let parts: Vec<&str> = shown.trim().split('…').collect();
    printed.lines().any(|line| {
        let line = line.trim();
        let mut at = 0;
        for (i, part) in parts.iter().enumerate() {
            match line[at..].find(part) {
                Some(found) if i > 0 || found == 0 => at += found + part.len(),
                _ => return false,
            }
        }
        parts.last().is_some_and(|last| last.is_empty()) || at == line.len()
    })
}

/// README's TOML with its comments and blank lines dropped: what a table says.
fn meaning(toml: &str) -> Vec<String> {
    toml.lines()
        .map(|line| line.split(" #").next().unwrap_or(line).trim().to_owned())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// The edit README asks for: the example route `init` left commented out, uncommented.
fn uncomment_first_route(table: &str) -> String {
    let at = table.find("# A first route").expect("init wrote no example route");
    let (head, example) = table.split_at(at);
    let example: Vec<&str> = example
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(code) if code.starts_with('[') || code.contains(" = ") => code,
            _ => line,
        })
        .collect();
    format!("{head}{}\n", example.join("\n"))
}

/// Runs `command` (a README line starting with `strangler `) in `dir`.
async fn run(dir: &Path, command: &str, swap: &dyn Fn(&str) -> String) -> std::process::Output {
    let args: Vec<String> = swap(command).split_whitespace().skip(1).map(str::to_owned).collect();
    output(strangler_command(&args).current_dir(dir)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn your_monolith_in_five_minutes_as_readme_says() {
    let text = section(SECTION);
    let steps = steps(text);
    let tomls = blocks(text, "toml");
    let route_block = tomls
        .iter()
        .find(|t| t.contains("[[routes]]"))
        .expect("README shows no route");
    // Both answer alike (a new service that already matches), told apart by what they saw.
    let legacy = echo_upstream("app").await;
    let users = echo_upstream("app").await;
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("routes.toml");
    let upstreams = |s: &str| {
        s.replace("http://127.0.0.1:3000", &legacy.url())
            .replace("http://127.0.0.1:3001", &users.url())
    };
    let mut proxy: Option<BinaryProxy> = None;
    let mut curls = 0;
    for step in &steps {
        let addrs = proxy.as_ref().map(|p| (p.addr.to_string(), p.admin.to_string()));
        let swap = |s: &str| match &addrs {
            Some((addr, admin)) => upstreams(s)
                .replace("0.0.0.0:8000", addr)
                .replace("127.0.0.1:8000", addr)
                .replace("127.0.0.1:9100", admin),
            None => upstreams(s),
        };
        let printed = if step.command == "strangler serve" {
            let text = std::fs::read_to_string(&table).unwrap();
            let listeners = "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n";
            std::fs::write(&table, format!("{listeners}{text}")).unwrap();
            let served = BinaryProxy::serve(table.clone(), ServeOptions::default()).await;
            let printed = served.ready_line.clone();
            proxy = Some(served);
            printed
        } else if let Some(url) = step.command.strip_prefix("curl -s ") {
            let answer = get(&swap(url.trim())).await;
            assert_eq!(answer.status, 200, "{}: {}", step.command, answer.body);
            curls += 1;
            assert_eq!(legacy.seen().len(), curls, "README says the monolith answers");
            if curls == 2 {
                let mirrored = poll(Duration::from_secs(10), async || users.seen().len(), |n| *n > 0).await;
                assert!(
                    mirrored > 0,
                    "in shadow, a copy goes to the new service: `users` saw nothing"
                );
                assert_eq!(users.seen()[0].uri.path(), "/api/users/17");
                let admin = proxy.as_ref().expect("curl after serve").admin;
                let parity = format!("http://{admin}/admin/parity");
                let matched = poll(
                    Duration::from_secs(10),
                    async || get(&parity).await.json()["routes"]["users-api"]["match"].clone(),
                    |m| m == 1,
                )
                .await;
                assert_eq!(matched, 1, "the copy's answer was compared and matched");
            }
            answer.body.clone()
        } else {
            let mut command = step.command.clone();
            if command.starts_with("strangler status") {
                // The table's admin listener is port 0 here: name the real one.
                command.push_str(" --admin http://127.0.0.1:9100");
            }
            let out = run(dir.path(), &command, &swap).await;
            assert_eq!(out.status.code(), Some(0), "`{}`:\n{}", step.command, both(&out));
            if step.command.starts_with("strangler init") {
                let written = std::fs::read_to_string(&table).unwrap();
                let edited = upstreams(&uncomment_first_route(&written));
                let (got, want) = (meaning(&edited), meaning(&upstreams(route_block)));
                assert!(
                    got.ends_with(&want),
                    "README's route block is not what uncommenting init's example gives:\n{edited}"
                );
                std::fs::write(&table, edited).unwrap();
            }
            if step.command.starts_with("strangler flip") {
                let admin = proxy.as_ref().expect("flip after serve").admin;
                let url = format!("http://{admin}/admin/routes");
                let stage = poll(
                    Duration::from_secs(10),
                    async || get(&url).await.json()["routes"][0]["stage"].clone(),
                    |s| s == "shadow",
                )
                .await;
                assert_eq!(stage, "shadow", "the running proxy reloaded the flipped table");
            }
            both(&out)
        };
        let addrs = proxy.as_ref().map(|p| (p.addr.to_string(), p.admin.to_string()));
        for line in &step.shown {
            let line = match &addrs {
                Some((addr, admin)) => upstreams(line)
                    .replace("0.0.0.0:8000", addr)
                    .replace("127.0.0.1:9100", admin),
                None => upstreams(line),
            };
            assert!(
                shows(&printed, &line),
                "`{}` should print\n  {line}\nbut printed:\n{printed}",
                step.command
            );
        }
    }
    let commands: Vec<&str> = steps.iter().map(|s| s.command.as_str()).collect();
    for needed in [
        "strangler init",
        "strangler check",
        "strangler explain",
        "strangler serve",
        "strangler flip",
    ] {
        assert!(
            commands.iter().any(|c| c.starts_with(needed)),
            "README's section lost `{needed}`: {commands:?}"
        );
    }
    assert_eq!(curls, 2, "a request before and after the flip: {commands:?}");
    assert!(legacy.seen().len() >= 2, "both requests reached the monolith");
}

#[test]
fn shown_lines_match_with_ellipses() {
    assert!(shows(
        "a: ok: 2 upstreams, version 12ab\n",
        "a: ok: 2 upstreams, version …"
    ));
    assert!(shows("  why: it is\n", "why: it is"));
    assert!(!shows("a: ok: 3 upstreams\n", "a: ok: 2 upstreams…"));
    assert!(!shows("xa: ok\n", "a: ok"));
    assert!(shows("GET / -> `users` (x)\n", "GET / -> … (x)"));
}
