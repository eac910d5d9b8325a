//! Route lookup cost at 10, 1 000 and 100 000 routes: it must not grow with the table.
//!
//! `cargo bench --bench route_lookup`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::Method;
use strangler::config::{Location, PathPattern, RouteConfig, Stage};
use strangler::path::normalize_path;
use strangler::router::RouteTable;

/// A mix like a real migration: a third prefixes, a third templates, a third exact paths.
fn table(n: usize) -> (Vec<RouteConfig>, RouteTable) {
    let routes: Vec<RouteConfig> = (0..n)
        .map(|i| {
            let pattern = match i % 3 {
                0 => PathPattern::Prefix(format!("/svc{i}/api/")),
                1 => PathPattern::Template(format!("/svc{i}/items/{{id}}/")),
                _ => PathPattern::Exact(format!("/svc{i}/login/")),
            };
            RouteConfig {
                name: format!("r{i}"),
                pattern,
                methods: (i % 2 == 0).then(|| vec![Method::GET, Method::HEAD]),
                stage: Stage::New,
                legacy: "legacy".into(),
                new: Some("new".into()),
                canary: None,
                fallback_max_body: None,
                max_body: None,
                compare: Default::default(),
                shadow: Default::default(),
                location: Location::default(),
                upgrades: Vec::new(),
                case_insensitive: false,
                forwarding: Default::default(),
            }
        })
        .collect();
    let table = RouteTable::build(&routes).unwrap();
    (routes, table)
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_lookup");
    for n in [10usize, 1_000, 100_000] {
        let (_, table) = table(n);
        let last_prefix = (0..n).rev().find(|i| i % 3 == 0).unwrap_or(0);
        let last_template = (0..n).rev().find(|i| i % 3 == 1).unwrap_or(1);
        let cases = [
            ("prefix_hit", format!("/svc{last_prefix}/api/thoughts/42")),
            ("template_hit", format!("/svc{last_template}/items/42/")),
            ("miss_default", "/thoughts/new/page".to_owned()),
        ];
        for (name, path) in &cases {
            assert!(
                table.lookup(&Method::GET, path).is_some() || *name == "miss_default",
                "{name} must hit at n={n}"
            );
            group.bench_with_input(BenchmarkId::new(*name, n), path, |b, path| {
                b.iter(|| table.lookup(black_box(&Method::GET), black_box(path)))
            });
        }
    }
    group.finish();
}

fn normalise(c: &mut Criterion) {
    let mut group = c.benchmark_group("normalize_path");
    for (name, path) in [
        ("clean", "/api/thoughts/42/comments"),
        ("dirty", "//api/./thoughts/%7euser/../42//comments"),
    ] {
        group.bench_function(name, |b| b.iter(|| normalize_path(black_box(path)).map(|p| p.len())));
    }
    group.finish();
}

criterion_group!(benches, lookup, normalise);
criterion_main!(benches);
