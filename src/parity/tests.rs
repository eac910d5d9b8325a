use http::{HeaderValue, StatusCode, header};
use proptest::prelude::*;
use serde_json::{Number, Value};

use super::*;

/// A 200 response with a JSON content type.
fn json(body: &str) -> Captured {
    let mut captured = Captured::new(StatusCode::OK, body.to_owned());
    captured
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    captured
}

/// A 200 response with a plain-text content type.
fn text(body: &[u8]) -> Captured {
    let mut captured = Captured::new(StatusCode::OK, body.to_vec());
    captured
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    captured
}

fn rules(spec: &str) -> CompareRules {
    let spec: CompareSpec = toml::from_str(spec).unwrap();
    CompareRules::from_spec(&spec).unwrap()
}

fn diffs(comparison: &Comparison) -> Vec<(&str, &str, &str)> {
    comparison
        .diffs
        .iter()
        .map(|d| (d.pointer.as_str(), d.legacy.as_str(), d.new.as_str()))
        .collect()
}

struct Case {
    name: &'static str,
    spec: &'static str,
    legacy: &'static str,
    new: &'static str,
    again: Option<&'static str>,
    outcome: Outcome,
    diffs: &'static [(&'static str, &'static str, &'static str)],
}

const fn case(name: &'static str, spec: &'static str, legacy: &'static str, new: &'static str) -> Case {
    Case {
        name,
        spec,
        legacy,
        new,
        again: None,
        outcome: Outcome::Match,
        diffs: &[],
    }
}

impl Case {
    const fn mismatch(mut self, diffs: &'static [(&'static str, &'static str, &'static str)]) -> Self {
        self.outcome = Outcome::Mismatch;
        self.diffs = diffs;
        self
    }

    const fn again(mut self, again: &'static str, outcome: Outcome) -> Self {
        self.again = Some(again);
        self.outcome = outcome;
        self
    }
}

fn run(cases: &[Case]) {
    for c in cases {
        let rules = rules(c.spec);
        let again = c.again.map(json);
        let got = compare(&rules, &json(c.legacy), &json(c.new), again.as_ref());
        assert_eq!(got.outcome, c.outcome, "{}: {got:?}", c.name);
        assert_eq!(diffs(&got), c.diffs, "{}", c.name);
        assert!(!got.truncated, "{}", c.name);
    }
}

#[test]
fn json_structure() {
    run(&[
        case(
            "key order is irrelevant",
            "",
            r#"{"a":1,"b":{"c":[1,2],"d":"x"}}"#,
            r#"{ "b": {"d":"x","c":[1,2]}, "a": 1 }"#,
        ),
        case(
            "changed nested value",
            "",
            r#"[{"id":1,"text":"hello"}]"#,
            r#"[{"id":1,"text":"hullo"}]"#,
        )
        .mismatch(&[("/0/text", r#""hello""#, r#""hullo""#)]),
        case("missing key in new", "", r#"{"a":1,"b":2}"#, r#"{"a":1}"#).mismatch(&[("/b", "2", ABSENT)]),
        case("extra key in new", "", r#"{"a":1}"#, r#"{"a":1,"b":[1,{"c":null}]}"#).mismatch(&[(
            "/b",
            ABSENT,
            r#"[1,{"c":null}]"#,
        )]),
        case("null is not absent", "", r#"{"a":null}"#, "{}").mismatch(&[("/a", "null", ABSENT)]),
        case("extra array element", "", "[1,2]", "[1,2,3]").mismatch(&[("/2", ABSENT, "3")]),
        case("missing array element", "", r#"{"l":[1,2]}"#, r#"{"l":[1]}"#).mismatch(&[("/l/1", "2", ABSENT)]),
        case("array order matters by default", "", "[1,2]", "[2,1]").mismatch(&[("/0", "1", "2"), ("/1", "2", "1")]),
        case("type change", "", r#"{"a":"1"}"#, r#"{"a":1}"#).mismatch(&[("/a", r#""1""#, "1")]),
        case("object to array", "", r#"{"a":{}}"#, r#"{"a":[]}"#).mismatch(&[("/a", "{}", "[]")]),
        case("bool", "", "[true]", "[false]").mismatch(&[("/0", "true", "false")]),
        case("whole scalar body", "", "1", "2").mismatch(&[("", "1", "2")]),
        case(
            "several diffs in walk order",
            "",
            r#"{"a":1,"b":2,"c":3}"#,
            r#"{"a":0,"c":3,"d":4}"#,
        )
        .mismatch(&[("/a", "1", "0"), ("/b", "2", ABSENT), ("/d", ABSENT, "4")]),
    ]);
}

#[test]
fn rfc6901_escaping() {
    run(&[
        case("slash and tilde", "", r#"{"a/b":1,"m~n":1}"#, r#"{"a/b":2,"m~n":2}"#)
            .mismatch(&[("/a~1b", "1", "2"), ("/m~0n", "1", "2")]),
        case("tilde one literally", "", r#"{"~1":1}"#, r#"{"~1":2}"#).mismatch(&[("/~01", "1", "2")]),
        case("empty key", "", r#"{"":1}"#, r#"{"":2}"#).mismatch(&[("/", "1", "2")]),
        case(
            "escaped ignore pattern",
            r#"ignore = ["/a~1b"]"#,
            r#"{"a/b":1,"m~n":1}"#,
            r#"{"a/b":2,"m~n":2}"#,
        )
        .mismatch(&[("/m~0n", "1", "2")]),
        case("ignore ~0", r#"ignore = ["/m~0n"]"#, r#"{"m~n":1}"#, r#"{"m~n":2}"#),
    ]);
}

#[test]
fn ignore_patterns() {
    run(&[
        case(
            "exact pointer",
            r#"ignore = ["/timestamp"]"#,
            r#"{"timestamp":1,"a":1}"#,
            r#"{"timestamp":2,"a":1}"#,
        ),
        case(
            "only present on one side",
            r#"ignore = ["/debug"]"#,
            r#"{"a":1}"#,
            r#"{"a":1,"debug":{"x":1}}"#,
        ),
        case(
            "everything below, not siblings sharing a prefix",
            r#"ignore = ["/meta"]"#,
            r#"{"meta":{"x":1},"metadata":1}"#,
            r#"{"meta":{"x":2,"y":3},"metadata":2}"#,
        )
        .mismatch(&[("/metadata", "1", "2")]),
        case(
            "wildcard key",
            r#"ignore = ["/*/id"]"#,
            r#"{"a":{"id":1,"n":1},"b":{"id":2}}"#,
            r#"{"a":{"id":9,"n":1},"b":{"id":8}}"#,
        ),
        case(
            "wildcard matches exactly one segment",
            r#"ignore = ["/*/id"]"#,
            r#"{"a":{"b":{"id":1}},"id":1}"#,
            r#"{"a":{"b":{"id":2}},"id":2}"#,
        )
        .mismatch(&[("/a/b/id", "1", "2"), ("/id", "1", "2")]),
        case(
            "wildcard index",
            r#"ignore = ["/items/*/created"]"#,
            r#"{"items":[{"id":1,"created":"x"},{"id":2,"created":"y"}]}"#,
            r#"{"items":[{"id":1,"created":"z"},{"id":2}]}"#,
        ),
        case(
            "wildcard index does not hide other fields",
            r#"ignore = ["/items/*/created"]"#,
            r#"{"items":[{"id":1,"created":"x"},{"id":2,"created":"y"}]}"#,
            r#"{"items":[{"id":1,"created":"z"},{"id":3}]}"#,
        )
        .mismatch(&[("/items/1/id", "2", "3")]),
        case("literal index", r#"ignore = ["/1"]"#, "[1,2,3]", "[1,9]").mismatch(&[("/2", "3", ABSENT)]),
        case("whole body", r#"ignore = [""]"#, r#"{"a":1}"#, r#"{"a":2}"#),
        case(
            "several patterns",
            r#"ignore = ["/a", "/b/*"]"#,
            r#"{"a":1,"b":{"x":1,"y":2},"c":1}"#,
            r#"{"a":2,"b":{"x":5},"c":1}"#,
        ),
    ]);
}

#[test]
fn unordered_arrays() {
    run(&[
        case("everywhere", "unordered_arrays = true", "[3,1,2]", "[1,2,3]"),
        case(
            "nested objects with their own key order",
            "unordered_arrays = true",
            r#"{"tags":["a","b"],"n":[{"x":1,"y":2},{"x":3}]}"#,
            r#"{"n":[{"x":3},{"y":2,"x":1}],"tags":["b","a"]}"#,
        ),
        case(
            "nested unordered arrays",
            "unordered_arrays = true",
            "[[1,2],[3,4]]",
            "[[4,3],[2,1]]",
        ),
        case("multiset counts", "unordered_arrays = true", "[1,1,2]", "[1,2,2]").mismatch(&[("", "[1]", "[2]")]),
        case(
            "missing element",
            "unordered_arrays = true",
            r#"{"t":["a","b","c"]}"#,
            r#"{"t":["c","a"]}"#,
        )
        .mismatch(&[("/t", r#"["b"]"#, ABSENT)]),
        case(
            "only at the listed pointers",
            r#"unordered_arrays = ["/tags"]"#,
            r#"{"tags":["a","b"],"order":[1,2]}"#,
            r#"{"tags":["b","a"],"order":[2,1]}"#,
        )
        .mismatch(&[("/order/0", "1", "2"), ("/order/1", "2", "1")]),
        case(
            "wildcard pointer",
            r#"unordered_arrays = ["/items/*/tags"]"#,
            r#"{"items":[{"tags":["x","y"]},{"tags":[1,2]}]}"#,
            r#"{"items":[{"tags":["y","x"]},{"tags":[2,1]}]}"#,
        ),
        case(
            "ignored fields inside elements",
            r#"
            unordered_arrays = ["/items"]
            ignore = ["/items/*/created"]
            "#,
            r#"{"items":[{"id":1,"created":"x"},{"id":2,"created":"y"}]}"#,
            r#"{"items":[{"id":2,"created":"q"},{"id":1}]}"#,
        ),
        case(
            "normalised strings inside elements",
            r#"
            unordered_arrays = true
            normalize = [{ pattern = "[0-9]+", replace = "N" }]
            "#,
            r#"["a1","b2"]"#,
            r#"["b7","a9"]"#,
        ),
        case(
            "tolerance pairs leftovers",
            "unordered_arrays = true\nnumeric_tolerance = 0.01",
            "[1.0, 2.0, 3]",
            "[3, 2.001, 0.999]",
        ),
        case(
            "leftovers beyond the tolerance",
            "unordered_arrays = true\nnumeric_tolerance = 0.01",
            "[1.0, 2.0]",
            "[2.001, 0.9]",
        )
        .mismatch(&[("", "[1.0]", "[0.9]")]),
    ]);
}

#[test]
fn numeric_tolerance() {
    run(&[
        case("within", "numeric_tolerance = 0.1", r#"{"p":1.0}"#, r#"{"p":1.05}"#),
        case("at the bound", "numeric_tolerance = 1", "[10]", "[11]"),
        case("beyond", "numeric_tolerance = 0.1", r#"{"p":1.0}"#, r#"{"p":1.2}"#).mismatch(&[("/p", "1.0", "1.2")]),
        case("integer and float differ by default", "", r#"{"p":1}"#, r#"{"p":1.0}"#).mismatch(&[("/p", "1", "1.0")]),
        case(
            "zero tolerance compares values",
            "numeric_tolerance = 0",
            r#"{"p":1}"#,
            r#"{"p":1.0}"#,
        ),
        case(
            "large integers compared exactly",
            "numeric_tolerance = 0.5",
            "[18446744073709551615]",
            "[18446744073709551614]",
        )
        .mismatch(&[("/0", "18446744073709551615", "18446744073709551614")]),
        case("negative and unsigned", "numeric_tolerance = 2", "[-1]", "[1]"),
        case("not for strings", "numeric_tolerance = 1", r#"["1"]"#, r#"["2"]"#)
            .mismatch(&[("/0", r#""1""#, r#""2""#)]),
    ]);
}

#[test]
fn normalisers() {
    const UUIDS: &str = r#"
    normalize = [
      { pattern = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", replace = "<uuid>" },
      { pattern = "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z", replace = "<date>" },
    ]
    "#;
    run(&[
        case(
            "uuids and timestamps",
            UUIDS,
            r#"{"id":"3f1c2a7e-8b1d-4c2e-9f00-1a2b3c4d5e6f","at":"2024-01-02T03:04:05Z","n":1}"#,
            r#"{"id":"00000000-1111-2222-3333-444444444444","at":"2025-06-07T08:09:10.123Z","n":1}"#,
        ),
        case(
            "inside longer strings",
            UUIDS,
            r#"["/users/3f1c2a7e-8b1d-4c2e-9f00-1a2b3c4d5e6f/x"]"#,
            r#"["/users/00000000-1111-2222-3333-444444444444/y"]"#,
        )
        .mismatch(&[("/0", r#""/users/<uuid>/x""#, r#""/users/<uuid>/y""#)]),
        case(
            "applied in order, with groups",
            r#"
            normalize = [
              { pattern = "v(\\d+)", replace = "version-$1" },
              { pattern = "version-\\d+", replace = "V" },
            ]
            "#,
            r#"["v1 v22"]"#,
            r#"["v3 v4"]"#,
        ),
        case(
            "not applied to keys",
            UUIDS,
            r#"{"2024-01-02T03:04:05Z":1}"#,
            r#"{"2025-01-02T03:04:05Z":1}"#,
        )
        .mismatch(&[
            ("/2024-01-02T03:04:05Z", "1", ABSENT),
            ("/2025-01-02T03:04:05Z", ABSENT, "1"),
        ]),
    ]);

    let rules = rules(UUIDS);
    let legacy = text(b"order 3f1c2a7e-8b1d-4c2e-9f00-1a2b3c4d5e6f placed at 2024-01-02T03:04:05Z\n");
    let new = text(b"order 00000000-1111-2222-3333-444444444444 placed at 2025-06-07T08:09:10Z\n");
    assert_eq!(
        compare(&rules, &legacy, &new, None).outcome,
        Outcome::Match,
        "text bodies"
    );
    let new = text(b"order 00000000-1111-2222-3333-444444444444 shipped at 2025-06-07T08:09:10Z\n");
    let got = compare(&rules, &legacy, &new, None);
    assert_eq!(
        diffs(&got),
        [(
            "",
            "order <uuid> placed at <date>\\n",
            "order <uuid> shipped at <date>\\n"
        )]
    );
}

#[test]
fn status_is_compared() {
    let mut new = json("{}");
    new.status = 500;
    let got = compare(&CompareRules::default(), &json("{}"), &new, None);
    assert_eq!(got.outcome, Outcome::Mismatch);
    assert_eq!(diffs(&got), [("status", "200", "500")]);
}

#[test]
fn headers() {
    let with = |pairs: &[(&'static str, &'static str)]| {
        let mut c = Captured::new(StatusCode::OK, "x");
        for (name, value) in pairs {
            c.headers.append(*name, HeaderValue::from_static(value));
        }
        c
    };
    let html = with(&[("content-type", "text/html"), ("date", "Mon")]);
    let plain = with(&[("content-type", "text/plain"), ("date", "Tue")]);

    let got = compare(&CompareRules::default(), &html, &plain, None);
    assert_eq!(
        diffs(&got),
        [("header:content-type", "text/html", "text/plain")],
        "only content-type by default"
    );

    let ignoring = rules(r#"ignore_headers = ["Content-Type"]"#);
    assert_eq!(compare(&ignoring, &html, &plain, None).outcome, Outcome::Match);
    assert!(ignoring.headers().is_empty());

    let custom = rules(r#"headers = ["Content-Type", "X-Version", "Cache-Control", "x-version"]"#);
    assert_eq!(custom.headers(), ["content-type", "x-version", "cache-control"]);
    let legacy = with(&[
        ("content-type", "text/plain"),
        ("x-version", "1"),
        ("cache-control", "no-cache"),
        ("cache-control", "no-store"),
    ]);
    let new = with(&[("content-type", "text/plain"), ("cache-control", "no-cache")]);
    let got = compare(&custom, &legacy, &new, None);
    assert_eq!(
        diffs(&got),
        [
            ("header:x-version", "1", ABSENT),
            ("header:cache-control", "no-cache, no-store", "no-cache"),
        ]
    );

    let none = rules("headers = []");
    assert_eq!(compare(&none, &html, &plain, None).outcome, Outcome::Match);
}

#[test]
fn non_json_bodies_compare_bytes() {
    let rules = CompareRules::default();
    let got = compare(&rules, &text(b"hello world"), &text(b"hello there"), None);
    assert_eq!(got.outcome, Outcome::Mismatch);
    assert_eq!(diffs(&got), [("", "hello world", "hello there")]);

    // One side JSON, the other not: bytes.
    let got = compare(&rules, &text(br#"{"a":1}"#), &text(b"<html>"), None);
    assert_eq!(diffs(&got), [("", r#"{"a":1}"#, "<html>")]);

    let got = compare(&rules, &text(b""), &text(b"x"), None);
    assert_eq!(diffs(&got), [("", "(empty)", "x")]);

    let got = compare(&rules, &text(b""), &text(b""), None);
    assert_eq!(got.outcome, Outcome::Match);

    // A window around the first difference, cut on both sides, with its offset.
    let mut a = vec![b'a'; 1000];
    a.extend_from_slice(b"LEGACY");
    a.extend(vec![b'z'; 1000]);
    let mut b = vec![b'a'; 1000];
    b.extend_from_slice(b"NEW");
    b.extend(vec![b'z'; 1000]);
    let got = compare(&rules, &text(&a), &text(&b), None);
    let diff = &got.diffs[0];
    assert_eq!(diff.pointer, "");
    let before = "a".repeat(40);
    assert!(
        diff.legacy.starts_with(&format!("[offset 1000] …{before}LEGACY")),
        "{}",
        diff.legacy
    );
    assert!(
        diff.new.starts_with(&format!("[offset 1000] …{before}NEW")),
        "{}",
        diff.new
    );
    assert!(diff.legacy.ends_with("z…"));
    assert_eq!(
        diff.legacy.chars().count(),
        "[offset 1000] …".chars().count() + MAX_VALUE_CHARS + 1
    );

    // Invalid UTF-8 is shown lossily, never a panic.
    let got = compare(&rules, &text(&[0xff, 0xfe, b'a']), &text(&[0xff, 0xfe, b'b']), None);
    assert_eq!(diffs(&got), [("", "\u{fffd}\u{fffd}a", "\u{fffd}\u{fffd}b")]);

    // The window starts on a character, not inside one.
    let mut a = "é".repeat(100).into_bytes();
    let mut b = a.clone();
    a.push(b'1');
    b.push(b'2');
    let got = compare(&rules, &text(&a), &text(&b), None);
    assert!(!got.diffs[0].legacy.contains('\u{fffd}'), "{}", got.diffs[0].legacy);
    assert!(got.diffs[0].legacy.ends_with("éé1"));
}

#[test]
fn a_late_difference_in_a_long_string_is_shown_with_its_offset() {
    // The first 200 characters are the same on both sides: a prefix would hide it.
    let common = "lorem ipsum ".repeat(150);
    let got = compare(
        &CompareRules::default(),
        &json(&format!(r#"{{"text":"{common}legacy end"}}"#)),
        &json(&format!(r#"{{"text":"{common}new end"}}"#)),
        None,
    );
    let (pointer, legacy, new) = diffs(&got)[0];
    assert_eq!(pointer, "/text");
    // Offset 1801: the opening quote is character 0.
    assert!(legacy.starts_with("[offset 1801] …"), "{legacy}");
    assert!(legacy.ends_with("lorem ipsum legacy end\""), "{legacy}");
    assert!(new.ends_with("lorem ipsum new end\""), "{new}");

    // Headers too: a long value differing near its end.
    let long = "a".repeat(300);
    let mut x = json("{}");
    let mut y = json("{}");
    x.headers
        .insert("x-trace", http::HeaderValue::from_str(&format!("{long}1")).unwrap());
    y.headers
        .insert("x-trace", http::HeaderValue::from_str(&format!("{long}2")).unwrap());
    let got = compare(&rules(r#"headers = ["x-trace"]"#), &x, &y, None);
    let (pointer, legacy, new) = diffs(&got)[0];
    assert_eq!(pointer, "header:x-trace");
    assert!(
        legacy.starts_with("[offset 300] …a") && legacy.ends_with("a1"),
        "{legacy}"
    );
    assert!(new.ends_with("a2"), "{new}");
}

#[test]
fn values_are_truncated() {
    let long = "x".repeat(500);
    let got = compare(
        &CompareRules::default(),
        &json(&format!(r#"{{"s":"{long}"}}"#)),
        &json(r#"{"s":"y"}"#),
        None,
    );
    let legacy = &got.diffs[0].legacy;
    assert_eq!(legacy.chars().count(), MAX_VALUE_CHARS + 1);
    assert!(legacy.starts_with("\"xxx") && legacy.ends_with('…'));
    assert_eq!(got.diffs[0].new, r#""y""#);

    // A large missing subtree is rendered from its first bytes only.
    let big: Vec<u32> = (0..100_000).collect();
    let legacy = json(&serde_json::json!({ "big": big }).to_string());
    let got = compare(&CompareRules::default(), &legacy, &json("{}"), None);
    assert_eq!(got.diffs[0].legacy.chars().count(), MAX_VALUE_CHARS + 1);
    assert_eq!(got.diffs[0].new, ABSENT);

    // Multi-byte characters are cut on a boundary.
    let got = compare(
        &CompareRules::default(),
        &json(&format!(r#"["{}"]"#, "é".repeat(300))),
        &json("[1]"),
        None,
    );
    assert_eq!(got.diffs[0].legacy.chars().count(), MAX_VALUE_CHARS + 1);
}

#[test]
fn diffs_are_capped() {
    let a: Vec<u32> = (0..500).collect();
    let b: Vec<u32> = (1..501).collect();
    let got = compare(
        &CompareRules::default(),
        &json(&serde_json::to_string(&a).unwrap()),
        &json(&serde_json::to_string(&b).unwrap()),
        None,
    );
    assert_eq!(got.outcome, Outcome::Mismatch);
    assert_eq!(got.diffs.len(), MAX_DIFFS);
    assert!(got.truncated);
}

#[test]
fn noise() {
    run(&[
        case(
            "a timestamp that legacy changes too",
            "",
            r#"{"timestamp":1,"text":"a"}"#,
            r#"{"timestamp":3,"text":"a"}"#,
        )
        .again(r#"{"timestamp":2,"text":"a"}"#, Outcome::Noise),
        case(
            "a noisy field does not hide a real difference",
            "",
            r#"{"timestamp":1,"text":"a"}"#,
            r#"{"timestamp":3,"text":"b"}"#,
        )
        .again(r#"{"timestamp":2,"text":"a"}"#, Outcome::Mismatch)
        .mismatch(&[("/text", r#""a""#, r#""b""#)]),
        case(
            "new equal to legacy is a match even when legacy is noisy",
            "",
            r#"{"timestamp":1}"#,
            r#"{"timestamp":1}"#,
        )
        .again(r#"{"timestamp":2}"#, Outcome::Match),
        case(
            "a noisy parent covers its children",
            "",
            r#"{"meta":{"a":1,"b":1}}"#,
            r#"{"meta":{"a":2}}"#,
        )
        .again(r#"{"meta":"x"}"#, Outcome::Noise),
        case(
            "a noisy child does not cover its parent",
            "",
            r#"{"meta":{"a":1}}"#,
            r#"{"meta":5}"#,
        )
        .again(r#"{"meta":{"a":2}}"#, Outcome::Mismatch)
        .mismatch(&[("/meta", r#"{"a":1}"#, "5")]),
        case(
            "noise stops at segment boundaries",
            "",
            r#"{"a":1,"ab":1}"#,
            r#"{"a":2,"ab":2}"#,
        )
        .again(r#"{"a":3,"ab":1}"#, Outcome::Mismatch)
        .mismatch(&[("/ab", "1", "2")]),
        case(
            "a field legacy drops sometimes",
            "",
            r#"{"warning":"x","n":1}"#,
            r#"{"n":1}"#,
        )
        .again(r#"{"n":1}"#, Outcome::Noise),
        case(
            "the rules apply to the noise pass too",
            r#"ignore = ["/ts"]"#,
            r#"{"ts":1,"n":1}"#,
            r#"{"ts":3,"n":1}"#,
        )
        .again(r#"{"ts":2,"n":1}"#, Outcome::Match),
        case(
            "noisy unordered array",
            r#"unordered_arrays = ["/ids"]"#,
            r#"{"ids":[1,2]}"#,
            r#"{"ids":[3,1]}"#,
        )
        .again(r#"{"ids":[2,4]}"#, Outcome::Noise),
    ]);

    let rules = CompareRules::default();
    let legacy = json(r#"{"timestamp":1,"text":"a"}"#);
    let again = json(r#"{"timestamp":2,"text":"a"}"#);
    let got = compare(&rules, &legacy, &json(r#"{"timestamp":3,"text":"a"}"#), Some(&again));
    assert_eq!(got.noisy, ["/timestamp"]);
    assert!(got.diffs.is_empty());
}

#[test]
fn status_and_header_noise() {
    let rules = rules(r#"headers = ["content-type", "x-served-by"]"#);
    let mut legacy = json("{}");
    legacy.headers.insert("x-served-by", HeaderValue::from_static("a"));
    let mut again = legacy.clone();
    again.status = 503;
    again.headers.insert("x-served-by", HeaderValue::from_static("b"));
    let mut new = legacy.clone();
    new.status = 503;
    new.headers.insert("x-served-by", HeaderValue::from_static("c"));

    let got = compare(&rules, &legacy, &new, Some(&again));
    assert_eq!(got.outcome, Outcome::Noise, "{got:?}");
    assert_eq!(got.noisy, ["header:x-served-by", "status"]);

    // Status noise hides nothing in the body.
    new.body = "[]".into();
    let got = compare(&rules, &legacy, &new, Some(&again));
    assert_eq!(got.outcome, Outcome::Mismatch);
    assert_eq!(diffs(&got), [("", "{}", "[]")]);

    // Body noise hides no status or header difference.
    let mut again = legacy.clone();
    again.body = "[1]".into();
    let mut new = legacy.clone();
    new.body = "[2]".into();
    new.status = 404;
    let got = compare(&rules, &legacy, &new, Some(&again));
    assert_eq!(got.noisy, [""]);
    assert_eq!(diffs(&got), [("status", "200", "404")]);
    new.status = 200;
    assert_eq!(compare(&rules, &legacy, &new, Some(&again)).outcome, Outcome::Noise);
}

#[test]
fn non_json_noise() {
    let rules = CompareRules::default();
    let got = compare(&rules, &text(b"t=1"), &text(b"t=3"), Some(&text(b"t=2")));
    assert_eq!(got.outcome, Outcome::Noise);
    assert_eq!(got.noisy, [""]);
}

#[test]
fn spec_errors_name_the_entry() {
    let cases = [
        (
            r#"ignore = ["/ok", "timestamp"]"#,
            "ignore[1]: `timestamp` is not a JSON Pointer: it must be empty or start with `/`",
        ),
        (
            r#"ignore = ["/a~2b"]"#,
            "ignore[0]: `/a~2b` is not a JSON Pointer: `~` must be followed by `0` (for `~`) or `1` (for `/`)",
        ),
        (
            r#"unordered_arrays = ["items"]"#,
            "unordered_arrays[0]: `items` is not a JSON Pointer: it must be empty or start with `/`",
        ),
        (
            r#"headers = ["content-type", "bad header"]"#,
            "headers[1]: `bad header` is not a valid header name",
        ),
        (
            r#"ignore_headers = ["bad:header"]"#,
            "ignore_headers[0]: `bad:header` is not a valid header name",
        ),
        (
            r#"normalize = [{ pattern = "ok", replace = "" }, { pattern = "(unclosed", replace = "" }]"#,
            "normalize[1]: `pattern` `(unclosed` is not a valid regex: unclosed group",
        ),
        (
            "numeric_tolerance = -1.0",
            "numeric_tolerance: must be a finite number >= 0, got -1",
        ),
        (
            "numeric_tolerance = nan",
            "numeric_tolerance: must be a finite number >= 0, got NaN",
        ),
    ];
    for (spec, expected) in cases {
        let spec: CompareSpec = toml::from_str(spec).unwrap();
        let error = CompareRules::from_spec(&spec).unwrap_err();
        assert_eq!(error.to_string(), expected);
    }

    let spec: CompareSpec = toml::from_str(r#"ignore = ["/a", "b"]"#).unwrap();
    let error = CompareRules::from_spec(&spec).unwrap_err();
    assert_eq!((error.field, error.index), ("ignore", Some(1)));
}

#[test]
fn spec_deserialises() {
    let spec: CompareSpec = toml::from_str(
        r#"
        ignore = ["/timestamp", "/items/*/created"]
        ignore_headers = ["date"]
        headers = ["content-type", "etag"]
        normalize = [{ pattern = "\\d+", replace = "N" }]
        unordered_arrays = ["/tags"]
        numeric_tolerance = 0.001
        "#,
    )
    .unwrap();
    assert_eq!(spec.ignore, ["/timestamp", "/items/*/created"]);
    assert_eq!(
        spec.headers.as_deref(),
        Some(&["content-type".to_owned(), "etag".to_owned()][..])
    );
    assert_eq!(
        spec.normalize,
        [NormalizeSpec {
            pattern: "\\d+".into(),
            replace: "N".into(),
            pointer: None,
            header: None,
        }]
    );
    assert_eq!(spec.unordered_arrays, UnorderedArrays::At(vec!["/tags".into()]));
    assert_eq!(spec.numeric_tolerance, Some(0.001));
    assert!(CompareRules::from_spec(&spec).is_ok());

    let parse = |t: &str| toml::from_str::<CompareSpec>(t).map(|s| s.unordered_arrays);
    assert_eq!(parse("unordered_arrays = true").unwrap(), UnorderedArrays::Everywhere);
    assert_eq!(parse("unordered_arrays = false").unwrap(), UnorderedArrays::Nowhere);
    assert_eq!(parse("").unwrap(), UnorderedArrays::Nowhere);
    assert!(parse("unordered_arrays = 3").is_err());

    let error = toml::from_str::<CompareSpec>("ignored = []").unwrap_err().to_string();
    assert!(error.contains("unknown field `ignored`"), "{error}");
    let error = toml::from_str::<CompareSpec>(r#"normalize = [{ pattern = "a", with = "b" }]"#)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown field `with`"), "{error}");
    assert!(toml::from_str::<CompareSpec>(r#"normalize = [{ pattern = "a" }]"#).is_err());

    // Also through serde_json (the admin API and the CLI may carry it as JSON).
    let spec: CompareSpec = serde_json::from_str(r#"{"unordered_arrays": true}"#).unwrap();
    assert_eq!(spec.unordered_arrays, UnorderedArrays::Everywhere);
}

#[test]
fn default_rules_are_the_empty_spec() {
    let from_spec = CompareRules::from_spec(&CompareSpec::default()).unwrap();
    let default = CompareRules::default();
    assert_eq!(from_spec.headers(), default.headers());
    assert_eq!(default.headers(), [header::CONTENT_TYPE]);
}

#[test]
fn outcome_names_and_error() {
    let names: Vec<&str> = [Outcome::Match, Outcome::Mismatch, Outcome::Noise, Outcome::Error]
        .iter()
        .map(|o| o.as_str())
        .collect();
    assert_eq!(names, ["match", "mismatch", "noise", "error"]);
    assert_eq!(Outcome::Noise.to_string(), "noise");
    let error = Comparison::error();
    assert_eq!(error.outcome, Outcome::Error);
    assert!(error.diffs.is_empty() && error.noisy.is_empty() && !error.truncated);
}

#[test]
fn redaction() {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer secret"));
    headers.insert(header::PROXY_AUTHORIZATION, HeaderValue::from_static("Basic x"));
    headers.append(header::COOKIE, HeaderValue::from_static("session=1"));
    headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
    headers.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
    headers.insert("x-api-key", HeaderValue::from_static("k"));
    let mut marked = HeaderValue::from_static("t");
    marked.set_sensitive(true);
    headers.insert("x-token", marked);
    headers.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
    headers.insert("x-binary", HeaderValue::from_bytes(&[0xff, b'a']).unwrap());

    let shown = redact_headers(&headers, &[HeaderName::from_static("x-api-key")]);
    let get = |name: &str| -> Vec<&str> {
        shown
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    for name in ["authorization", "proxy-authorization", "cookie", "x-api-key", "x-token"] {
        assert_eq!(get(name), [REDACTED], "{name}");
    }
    assert_eq!(get("set-cookie"), [REDACTED, REDACTED]);
    assert_eq!(get("accept"), ["text/html"]);
    assert_eq!(get("x-binary"), ["\u{fffd}a"]);
    assert_eq!(shown.len(), 9);
    assert!(!format!("{shown:?}").contains("secret"));
}

/// Arbitrary JSON values, keys included (`/`, `~`, unicode).
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::hash_map("[a-z/~*]{0,4}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Rules that exercise every feature at once.
fn busy_rules() -> CompareRules {
    rules(
        r#"
        ignore = ["/*/a", "/~1", "/0/*/~0"]
        headers = ["content-type", "etag"]
        normalize = [{ pattern = "[0-9]+", replace = "N" }, { pattern = "(?i)^A", replace = "" }]
        unordered_arrays = true
        numeric_tolerance = 0.5
        "#,
    )
}

fn with_body(status: u16, body: Vec<u8>) -> Captured {
    let mut captured = json("");
    captured.status = status;
    captured.body = body.into();
    captured
}

proptest! {
    #[test]
    fn a_value_matches_itself(value in arb_json()) {
        let compact = serde_json::to_vec(&value).unwrap();
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        for rules in [CompareRules::default(), busy_rules()] {
            let got = compare(&rules, &with_body(200, compact.clone()), &with_body(200, pretty.clone()), None);
            prop_assert_eq!(got.outcome, Outcome::Match, "{:?}", got.diffs);
            let again = with_body(200, compact.clone());
            let got = compare(&rules, &with_body(200, pretty.clone()), &with_body(200, compact.clone()), Some(&again));
            prop_assert_eq!(got.outcome, Outcome::Match);
            prop_assert!(got.noisy.is_empty());
        }
    }

    #[test]
    fn default_comparison_is_symmetric(a in arb_json(), b in arb_json()) {
        let rules = CompareRules::default();
        let (a, b) = (with_body(200, serde_json::to_vec(&a).unwrap()), with_body(200, serde_json::to_vec(&b).unwrap()));
        let ab = compare(&rules, &a, &b, None);
        let ba = compare(&rules, &b, &a, None);
        prop_assert_eq!(ab.outcome, ba.outcome);
        let mut pab: Vec<_> = ab.diffs.iter().map(|d| (&d.pointer, &d.legacy, &d.new)).collect();
        let mut pba: Vec<_> = ba.diffs.iter().map(|d| (&d.pointer, &d.new, &d.legacy)).collect();
        pab.sort();
        pba.sort();
        prop_assert_eq!(pab, pba);
        prop_assert_eq!(ab.outcome == Outcome::Match, ab.diffs.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        a in prop::collection::vec(any::<u8>(), 0..300),
        b in prop::collection::vec(any::<u8>(), 0..300),
        c in prop::collection::vec(any::<u8>(), 0..300),
        statuses in (100u16..600, 100u16..600, 100u16..600),
    ) {
        for rules in [CompareRules::default(), busy_rules()] {
            let (x, y, z) = (with_body(statuses.0, a.clone()), with_body(statuses.1, b.clone()), with_body(statuses.2, c.clone()));
            let got = compare(&rules, &x, &y, Some(&z));
            prop_assert_eq!(got.outcome == Outcome::Mismatch, !got.diffs.is_empty());
            for diff in &got.diffs {
                // A window: `[offset N] …`, the characters, `…`.
                prop_assert!(diff.legacy.chars().count() <= MAX_VALUE_CHARS + 32);
                prop_assert!(diff.new.chars().count() <= MAX_VALUE_CHARS + 32);
            }
            prop_assert_eq!(compare(&rules, &x, &x, None).outcome, Outcome::Match);
        }
    }

    #[test]
    fn damaged_json_never_panics(value in arb_json(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let good = serde_json::to_vec(&value).unwrap();
        let mut bad = good.clone();
        if !bad.is_empty() {
            let i = at.index(bad.len());
            bad[i] = byte;
        }
        for rules in [CompareRules::default(), busy_rules()] {
            let got = compare(&rules, &with_body(200, good.clone()), &with_body(200, bad.clone()), Some(&with_body(200, bad.clone())));
            prop_assert!(got.outcome != Outcome::Error);
        }
    }

    #[test]
    fn an_identical_second_answer_adds_no_noise(a in arb_json(), b in arb_json()) {
        let rules = busy_rules();
        let (a, b) = (with_body(200, serde_json::to_vec(&a).unwrap()), with_body(200, serde_json::to_vec(&b).unwrap()));
        let with = compare(&rules, &a, &b, Some(&a));
        let without = compare(&rules, &a, &b, None);
        prop_assert_eq!(with, without);
    }
}

#[test]
fn json_values_are_shown_in_wire_order() {
    // A subtree one side lacks, and a type change: keys as each side sent them.
    let got = compare(
        &CompareRules::default(),
        &json(r#"{"user":{"zeta":1,"alpha":[{"y":1,"b":2}],"mid":null},"kind":{"z":1,"a":2}}"#),
        &json(r#"{"kind":["z","a"]}"#),
        None,
    );
    assert_eq!(
        diffs(&got),
        [
            ("/kind", r#"{"z":1,"a":2}"#, r#"["z","a"]"#),
            ("/user", r#"{"zeta":1,"alpha":[{"y":1,"b":2}],"mid":null}"#, ABSENT),
        ]
    );
    // Unmatched elements of an unordered array, in their own order.
    let got = compare(
        &rules("unordered_arrays = true"),
        &json(r#"[{"id":1,"name":"a"},{"z":0,"id":2}]"#),
        &json(r#"[{"name":"a","id":1},{"id":3,"a":0}]"#),
        None,
    );
    assert_eq!(diffs(&got), [("", r#"[{"z":0,"id":2}]"#, r#"[{"id":3,"a":0}]"#)]);
}
