//! The module map of `src/lib.rs`, checked: imports run one way (down the map), and no two
//! files of src/ import each other, directly or round a loop.
//!
//! Reads the source, not the compiled crate: every `crate::a::b` path outside comments and
//! `#[cfg(test)]` modules is an import of the longest module prefix it names. A file may
//! import its own folder's files (they are one layer), never a layer above its own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers of `src/lib.rs`'s map, from the bottom up: a module may import its own
/// layer's modules and the layers below.
const LAYERS: &[&[&str]] = &[
    &[
        "error_line",
        "path",
        "headers",
        "worker",
        "window",
        "parity",
        "history",
        "trace",
    ],
    &["config"],
    &["router", "table", "metrics", "tls"],
    &["upstream", "telemetry"],
    &["migration"],
    &["state", "reload"],
    &["server"],
    &["proxy"],
    &["admin"],
    &["commands"],
    &["cli", "lib", "main"],
];

/// A module's path under src/ (`proxy/plan`, `lib`), for each file.
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let mut module = prefix.to_vec();
        if path.is_dir() {
            module.push(name);
            modules(&path, &module, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            if !matches!(name.as_str(), "mod") || prefix.is_empty() {
                module.push(name);
            }
            out.insert(module, path);
        }
    }
}

/// The source that is compiled outside tests, comment lines removed.
fn code_outside_tests(text: &str) -> String {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules a file's code names: `crate::…` paths, `super::…` paths and paths through
/// its own child modules (`use plan::Plan;` in a `mod.rs`), each as the longest module
/// prefix it names.
fn imports(module: &[String], code: &str, known: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let parent = &module[..module.len().saturating_sub(1)];
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("::") {
        let before = &code[..at];
        let word_start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        if code[..word_start].ends_with("::") {
            continue; // the middle of a path: its start was seen already
        }
        let base: Vec<String> = match &before[word_start..] {
            "crate" => Vec::new(),
            "super" => parent.to_vec(),
            "self" => module.to_vec(),
            child => [module, &[child.to_owned()][..]].concat(),
        };
        let relative = !matches!(&before[word_start..], "crate" | "super" | "self");
        let rest = if relative { &code[word_start..] } else { &code[at + 2..] };
        let segments: Vec<String> = rest
            .split("::")
            .map(|s| {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|s| !s.is_empty())
            .collect();
        let base = if relative { module.to_vec() } else { base };
        if let Some(named) = (0..=segments.len())
            .rev()
            .map(|n| [&base[..], &segments[..n]].concat())
            .find(|m| known.contains(m))
        {
            found.insert(named);
        }
    }
    found
}

fn layer(module: &[String]) -> usize {
    let top = module.first().map_or("lib", String::as_str);
    LAYERS
        .iter()
        .position(|layer| layer.contains(&top))
        .unwrap_or_else(|| panic!("`{top}` is not in the map: add it to src/lib.rs's map and to LAYERS here"))
}

/// Every module's imports, outside tests.
fn import_graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = BTreeMap::new();
    modules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &[], &mut files);
    let known: BTreeSet<Vec<String>> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(module, path)| {
            let code = code_outside_tests(&std::fs::read_to_string(path).unwrap());
            let mut named = imports(module, &code, &known);
            named.remove(module);
            (module.clone(), named)
        })
        .collect()
}

#[test]
fn imports_run_down_the_module_map() {
    let mut upward = Vec::new();
    for (module, named) in import_graph() {
        for target in named {
            if module.first() != target.first() && layer(&target) > layer(&module) {
                upward.push(format!("{} imports {}", module.join("/"), target.join("/")));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports up the map of src/lib.rs:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_two_files_import_each_other_round_a_loop() {
    let graph = import_graph();
    // Depth-first search for a back edge; the path to it is the loop.
    fn visit(
        module: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        done: &mut BTreeSet<Vec<String>>,
        path: &mut Vec<Vec<String>>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            return Some(path[start..].iter().chain([module]).map(|m| m.join("/")).collect());
        }
        if !done.insert(module.clone()) {
            return None;
        }
        path.push(module.clone());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(found) = visit(next, graph, done, path) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let found = visit(module, &graph, &mut done, &mut Vec::new());
        assert!(found.is_none(), "an import loop: {}", found.unwrap().join(" -> "));
    }
}

#[test]
fn the_checker_sees_imports_and_loops() {
    let known: BTreeSet<Vec<String>> = [vec!["proxy".to_owned()], vec!["proxy".to_owned(), "plan".to_owned()]]
        .into_iter()
        .collect();
    let code = code_outside_tests(
        "use crate::proxy::plan::Plan;\n// crate::ignored::in_comments\nfn f() { crate::proxy::Proxy::new(); }\n\
         #[cfg(test)]\nmod tests { use crate::admin; }",
    );
    let found = imports(&["lib".to_owned()], &code, &known);
    assert_eq!(
        found,
        [vec!["proxy".to_owned()], vec!["proxy".to_owned(), "plan".to_owned()]]
            .into_iter()
            .collect()
    );
    // A mod.rs naming its child, and the child naming its parent: a loop.
    let proxy = vec!["proxy".to_owned()];
    let plan = vec!["proxy".to_owned(), "plan".to_owned()];
    assert!(imports(&proxy, "use plan::Plan;", &known).contains(&plan));
    assert!(imports(&plan, "use super::Proxy;", &known).contains(&proxy));
    assert!(layer(&["proxy".to_owned()]) > layer(&["state".to_owned()]));
}
