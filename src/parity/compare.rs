//! The comparison: two captured responses in, a [`Comparison`] out. Pure and synchronous;
//! never panics, whatever the bytes.
//!
//! Order of work, cheapest first: status, the configured headers, then the body. Bodies
//! that are byte-for-byte equal are equal under every rule (each rule only makes more
//! things equal), so they are never parsed. Otherwise both are parsed as JSON, lazily and
//! at most once each (the legacy body serves both the noise pass and the real one); when
//! either is not JSON the bodies are compared as (normalised) bytes at pointer `""`.
//!
//! Noise: the legacy answer is first compared with a second legacy answer to the same
//! request; the pointers where they differ are noisy for this request. The legacy answer
//! is then compared with the new one, and a difference at or below a noisy pointer counts
//! as noise instead of a mismatch.
//!
//! Work is bounded: at most [`MAX_DIFFS`] differences are kept (the walk stops after
//! that), at most [`MAX_NOISY`] noisy pointers are recorded (beyond that, differences
//! count as real: noise never hides a regression), values are rendered to at most
//! [`super::window::MAX_RENDER_BYTES`] without serialising whole subtrees, then shown as
//! windows of [`MAX_VALUE_CHARS`] characters around their first difference (`window.rs`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write as _};

use http::{HeaderMap, HeaderName};
use serde_json::{Map, Number, Value};

use super::divergence::{Divergence, Stated};
use super::rules::CompareRules;
use super::window::{MAX_RENDER_BYTES, Rendered, head, show_pair};
use super::wire::{LazyWire, Wire, push_escaped};
use super::{ABSENT, Captured, Comparison, Diff, Judged, Outcome};

pub use super::window::MAX_VALUE_CHARS;
/// Most differences kept in a [`Comparison`]; [`Comparison::truncated`] says there were more.
pub const MAX_DIFFS: usize = 100;
/// Most noisy pointers recorded for one request.
pub const MAX_NOISY: usize = 10_000;
/// Most pairwise element comparisons spent matching the leftovers of one unordered array.
const MAX_PAIRINGS: usize = 10_000;
/// Most bytes (of canonical form) walked while pairing those leftovers.
const MAX_PAIRING_BYTES: usize = 32 << 20;

/// Compares the legacy and new answers to one request. `legacy_again`, a second legacy
/// answer to the same request, turns differences that legacy has with itself into noise.
pub fn compare(rules: &CompareRules, legacy: &Captured, new: &Captured, legacy_again: Option<&Captured>) -> Comparison {
    compare_expecting(rules, legacy, new, legacy_again, None).comparison
}

/// [`compare()`], and with a divergence, the judgement against it (see
/// [`super::divergence`]): [`Outcome::Expected`], [`Outcome::Resolved`] or
/// [`Outcome::Mismatch`]. Differences at listed fields are kept in the diffs but are never
/// noise and never count as "something else differs".
pub fn compare_expecting(
    rules: &CompareRules,
    legacy: &Captured,
    new: &Captured,
    legacy_again: Option<&Captured>,
    divergence: Option<&Divergence>,
) -> Judged {
    let mut legacy = Side::new(legacy);
    let noisy = match legacy_again {
        None => Noisy::default(),
        Some(again) => {
            let mut collector = NoiseCollector::default();
            diff_responses(rules, &mut legacy, &mut Side::new(again), &mut collector);
            collector.finish()
        }
    };
    let bodies = [&legacy.captured.body[..], &new.body[..]];
    let mut new = Side::new(new);
    let mut report = Report::new(&noisy, divergence, bodies);
    diff_responses(rules, &mut legacy, &mut new, &mut report);
    let (outcome, unmet) = match divergence {
        Some(divergence) => judge(rules, divergence, &mut legacy, &mut new, &report),
        None if report.real > 0 => (Outcome::Mismatch, Vec::new()),
        None if report.noise > 0 => (Outcome::Noise, Vec::new()),
        None => (Outcome::Match, Vec::new()),
    };
    Judged {
        comparison: Comparison {
            outcome,
            diffs: report.diffs,
            truncated: report.truncated,
            noisy: noisy.pointers,
        },
        unmet,
    }
}

/// The verdict on a request with a divergence, and a line per listed field not as stated.
fn judge(
    rules: &CompareRules,
    divergence: &Divergence,
    legacy: &mut Side<'_>,
    new: &mut Side<'_>,
    report: &Report<'_>,
) -> (Outcome, Vec<String>) {
    let mut unmet = Vec::new();
    // Whether a listed difference still differs at all.
    let mut differs = false;
    let (a, b) = (legacy.captured.status, new.captured.status);
    if let Some([l, n]) = divergence.status {
        // Statuses that differ are a difference, even where the stated pair is a condition.
        differs |= a != b;
        if [a, b] != [l, n] {
            unmet.push(format!("status: stated legacy {l} new {n}, got legacy {a} new {b}"));
        }
    }
    legacy.parse();
    new.parse();
    for (i, (pointer, l, n)) in divergence.pointers.iter().enumerate() {
        let now = report.listed_differs.get(i).copied().unwrap_or(false);
        differs |= now;
        if !(now && side_is(rules, legacy, pointer, l) && side_is(rules, new, pointer, n)) {
            let shown = if pointer.is_empty() { "(whole body)" } else { pointer };
            unmet.push(format!(
                "{shown}: stated legacy {} new {}, got legacy {} new {}",
                l.shown(false),
                n.shown(false),
                actual(legacy, pointer),
                actual(new, pointer)
            ));
        }
    }
    for (name, l, n) in &divergence.headers {
        let (x, y) = (
            joined(&legacy.captured.headers, name),
            joined(&new.captured.headers, name),
        );
        let (x, y) = (x.as_deref(), y.as_deref());
        let now = !rules.header_equal(name, x, y);
        differs |= now;
        if !(now && header_is(rules, name, l, x) && header_is(rules, name, n, y)) {
            let got = |v: Option<&str>| match v {
                Some(_) if super::is_secret(name, &[]) => super::REDACTED.to_owned(),
                Some(v) => head(&Shown::Plain(v.into()).render()),
                None => ABSENT.to_owned(),
            };
            unmet.push(format!(
                "header:{name}: stated legacy {} new {}, got legacy {} new {}",
                l.shown(true),
                n.shown(true),
                got(x),
                got(y)
            ));
        }
    }
    let outcome = if report.real == 0 && unmet.is_empty() {
        Outcome::Expected
    } else if report.real == 0 && !differs {
        Outcome::Resolved
    } else {
        Outcome::Mismatch
    };
    (outcome, unmet)
}

/// Whether one side has the stated value at `pointer`, under the rules (a JSON value, or
/// for `""` of a non-JSON body, a string equal to the body).
fn side_is(rules: &CompareRules, side: &Side<'_>, pointer: &str, stated: &Stated) -> bool {
    let Stated::Is(value) = stated else {
        return true;
    };
    match side.parsed() {
        Some(json) => json.pointer(pointer).is_some_and(|found| {
            let mut probe = Probe::default();
            let mut walker = Walker {
                rules,
                sink: &mut probe,
                pointer: pointer.to_owned(),
            };
            walker.value(value, found, &rules.patterns.states_at(pointer));
            !probe.differs
        }),
        None => {
            pointer.is_empty()
                && value.as_str().is_some_and(|text| {
                    rules.normalize_bytes(text.as_bytes()) == rules.normalize_bytes(&side.captured.body)
                })
        }
    }
}

/// A side's value at `pointer`, rendered as in a [`Diff`].
fn actual(side: &Side<'_>, pointer: &str) -> String {
    match side.parsed() {
        Some(json) => head(&json.pointer(pointer).map_or(Shown::Absent, Shown::Json).render()),
        None if pointer.is_empty() => head(&Shown::Bytes(&side.captured.body).render()),
        None => ABSENT.to_owned(),
    }
}

/// Whether a header value (`None`: absent) is the stated one.
fn header_is(rules: &CompareRules, name: &HeaderName, stated: &Stated, value: Option<&str>) -> bool {
    match stated {
        Stated::Any => true,
        Stated::Is(Value::Null) => value.is_none(),
        Stated::Is(Value::String(s)) => value.is_some() && rules.header_equal(name, Some(s), value),
        Stated::Is(_) => false,
    }
}

/// One response and its body parsed as JSON, once, when first needed.
struct Side<'c> {
    captured: &'c Captured,
    /// `None`: not parsed yet; `Some(None)`: not JSON.
    json: Option<Option<Value>>,
}

impl<'c> Side<'c> {
    fn new(captured: &'c Captured) -> Self {
        Self { captured, json: None }
    }

    fn parse(&mut self) {
        if self.json.is_none() {
            self.json = Some(serde_json::from_slice(&self.captured.body).ok());
        }
    }

    fn parsed(&self) -> Option<&Value> {
        self.json.as_ref().and_then(Option::as_ref)
    }
}

fn diff_responses<S: Sink>(rules: &CompareRules, legacy: &mut Side<'_>, new: &mut Side<'_>, sink: &mut S) {
    let (a, b) = (legacy.captured, new.captured);
    if a.status != b.status {
        sink.record(
            "status",
            Shown::Plain(a.status.to_string().into()),
            Shown::Plain(b.status.to_string().into()),
        );
    }
    for name in &rules.headers {
        if sink.done() {
            return;
        }
        let (x, y) = (joined(&a.headers, name), joined(&b.headers, name));
        if !rules.header_equal(name, x.as_deref(), y.as_deref()) {
            let shown = |v| Option::map_or(v, Shown::Absent, Shown::Plain);
            sink.record(&format!("header:{name}"), shown(x), shown(y));
        }
    }
    if sink.done() || a.body == b.body {
        return;
    }
    let root = rules.patterns.root();
    if rules.patterns.ignored(&root) {
        return;
    }
    legacy.parse();
    if legacy.parsed().is_some() {
        new.parse();
    }
    match (legacy.parsed(), new.parsed()) {
        (Some(x), Some(y)) => {
            let mut walker = Walker {
                rules,
                sink,
                pointer: String::new(),
            };
            walker.value(x, y, &root);
            if rules.key_order && !sink.done() {
                record_key_orders(rules, &a.body, &b.body, sink);
            }
        }
        _ => {
            let x = rules.normalize_bytes(&a.body);
            let y = rules.normalize_bytes(&b.body);
            if x != y {
                sink.record("", Shown::Bytes(&x), Shown::Bytes(&y));
            }
        }
    }
}

/// `key_order = true`: a difference `keys:POINTER` (`keys` for the whole body) for every
/// object whose shared keys come in another order (both bodies are JSON: the walk above
/// parsed them).
fn record_key_orders<S: Sink>(rules: &CompareRules, legacy: &[u8], new: &[u8], sink: &mut S) {
    let (Ok(x), Ok(y)) = (
        serde_json::from_slice::<Wire>(legacy),
        serde_json::from_slice::<Wire>(new),
    ) else {
        return;
    };
    for order in super::key_order::differences(rules, &x, &y) {
        if sink.done() {
            return;
        }
        let at = if order.pointer.is_empty() {
            "keys".to_owned()
        } else {
            format!("keys:{}", order.pointer)
        };
        sink.record(&at, Shown::Plain(order.legacy.into()), Shown::Plain(order.new.into()));
    }
}

/// All values of a header, joined with `", "`, lossily decoded; `None` when absent.
fn joined<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<Cow<'h, str>> {
    let mut values = headers.get_all(name).iter();
    let first = String::from_utf8_lossy(values.next()?.as_bytes());
    let mut rest = values.peekable();
    if rest.peek().is_none() {
        return Some(first);
    }
    let mut all = first.into_owned();
    for value in rest {
        all.push_str(", ");
        all.push_str(&String::from_utf8_lossy(value.as_bytes()));
    }
    Some(Cow::Owned(all))
}

/// Where differences go. The walk asks [`Sink::done`] before each child and stops early.
trait Sink {
    fn record(&mut self, pointer: &str, legacy: Shown<'_>, new: Shown<'_>);
    fn done(&self) -> bool;
}

/// Collects the pointers where legacy differs from itself.
#[derive(Default)]
struct NoiseCollector {
    pointers: Vec<String>,
}

impl Sink for NoiseCollector {
    fn record(&mut self, pointer: &str, _: Shown<'_>, _: Shown<'_>) {
        if self.pointers.len() < MAX_NOISY {
            self.pointers.push(pointer.to_owned());
        }
    }

    fn done(&self) -> bool {
        self.pointers.len() >= MAX_NOISY
    }
}

impl NoiseCollector {
    fn finish(mut self) -> Noisy {
        self.pointers.sort_unstable();
        self.pointers.dedup();
        Noisy {
            pointers: self.pointers,
        }
    }
}

/// The noisy pointers of one request, sorted.
#[derive(Default)]
struct Noisy {
    pointers: Vec<String>,
}

impl Noisy {
    /// Whether `pointer` is a noisy pointer or below one. `status` and `header:NAME` only
    /// match themselves; body pointers (`""`, `/...`) match any ancestor at a segment boundary.
    fn covers(&self, pointer: &str) -> bool {
        if self.pointers.is_empty() {
            return false;
        }
        let has = |p: &str| self.pointers.binary_search_by(|q| q.as_str().cmp(p)).is_ok();
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return has(pointer);
        }
        has("")
            || pointer
                .match_indices('/')
                .skip(1)
                .any(|(i, _)| pointer.get(..i).is_some_and(has))
            || has(pointer)
    }
}

/// Keeps real differences and those at the fields a divergence lists, counts noisy ones.
struct Report<'n> {
    noisy: &'n Noisy,
    /// The divergence whose listed fields are not "something else".
    listed: Option<&'n Divergence>,
    /// Per listed pointer: a difference was found at or below it.
    listed_differs: Vec<bool>,
    diffs: Vec<Diff>,
    /// Differences outside the noise and the listed fields.
    real: usize,
    noise: usize,
    truncated: bool,
    /// The legacy and new bodies, and their JSON with keys in wire order (for showing).
    bodies: [&'n [u8]; 2],
    wire: [LazyWire; 2],
}

impl<'n> Report<'n> {
    fn new(noisy: &'n Noisy, listed: Option<&'n Divergence>, bodies: [&'n [u8]; 2]) -> Self {
        Self {
            noisy,
            listed,
            listed_differs: vec![false; listed.map_or(0, |d| d.pointers.len())],
            diffs: Vec::new(),
            real: 0,
            noise: 0,
            truncated: false,
            bodies,
            wire: [LazyWire::default(), LazyWire::default()],
        }
    }

    /// One side of a difference at `pointer`: JSON objects and arrays as the side sent
    /// them (keys in wire order), the rest as [`Shown::render`] has it.
    fn render(&mut self, side: usize, pointer: &str, shown: &Shown<'_>) -> Rendered {
        let structured = match shown {
            Shown::Json(value) => value.is_object() || value.is_array(),
            Shown::Elements(_) => true,
            _ => false,
        };
        let body = self.bodies.get(side).copied().unwrap_or_default();
        let found = match self.wire.get_mut(side) {
            Some(wire) if structured => wire.get(body).and_then(|tree| tree.at(pointer)),
            _ => None,
        };
        match (shown, found) {
            (Shown::Json(_), Some(found)) => render_json(|w| serde_json::to_writer(w, found)),
            (Shown::Elements(elements), Some(Wire::Array(items))) => render_json(|w| {
                w.write_all(b"[").map_err(serde_json::Error::io)?;
                for (n, (i, value)) in elements.iter().enumerate() {
                    if n > 0 {
                        w.write_all(b",").map_err(serde_json::Error::io)?;
                    }
                    match items.get(*i) {
                        Some(item) => serde_json::to_writer(&mut *w, item)?,
                        None => serde_json::to_writer(&mut *w, value)?,
                    }
                }
                w.write_all(b"]").map_err(serde_json::Error::io)
            }),
            _ => shown.render(),
        }
    }

    /// Whether `pointer` is a field the divergence lists (or below a listed pointer);
    /// marks the listed pointers it is at or below.
    fn listed(&mut self, pointer: &str) -> bool {
        let Some(divergence) = self.listed else {
            return false;
        };
        if pointer == "status" {
            return divergence.status.is_some();
        }
        if let Some(name) = pointer.strip_prefix("header:") {
            return divergence.headers.iter().any(|(h, _, _)| h.as_str() == name);
        }
        let mut hit = false;
        for (i, (listed, _, _)) in divergence.pointers.iter().enumerate() {
            let below = pointer
                .strip_prefix(listed.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            if below && let Some(flag) = self.listed_differs.get_mut(i) {
                *flag = true;
                hit = true;
            }
        }
        hit
    }

    fn keep(&mut self, pointer: &str, legacy: Shown<'_>, new: Shown<'_>) {
        if self.diffs.len() < MAX_DIFFS {
            let (legacy, new) = show_pair(self.render(0, pointer, &legacy), self.render(1, pointer, &new));
            self.diffs.push(Diff {
                pointer: pointer.to_owned(),
                legacy,
                new,
            });
        } else {
            self.truncated = true;
        }
    }
}

impl Sink for Report<'_> {
    fn record(&mut self, pointer: &str, legacy: Shown<'_>, new: Shown<'_>) {
        if self.listed(pointer) {
            self.keep(pointer, legacy, new);
            return;
        }
        if self.noisy.covers(pointer) {
            self.noise += 1;
            return;
        }
        self.real += 1;
        self.keep(pointer, legacy, new);
    }

    /// Full, and (with a divergence) known to differ elsewhere: a listed field filling
    /// the list must not hide a difference after it.
    fn done(&self) -> bool {
        self.truncated && (self.listed.is_none() || self.real > 0)
    }
}

/// Stops at the first difference: "are these equal?".
#[derive(Default)]
struct Probe {
    differs: bool,
}

impl Sink for Probe {
    fn record(&mut self, _: &str, _: Shown<'_>, _: Shown<'_>) {
        self.differs = true;
    }

    fn done(&self) -> bool {
        self.differs
    }
}

/// One side of a difference, rendered only if the difference is kept.
enum Shown<'a> {
    Absent,
    /// Shown as is (status, header values).
    Plain(Cow<'a, str>),
    /// Shown as compact JSON.
    Json(&'a Value),
    /// A (normalised) JSON string, shown JSON-encoded.
    Str(&'a str),
    /// Elements of an unordered array that found no partner (with their indices), shown
    /// as a JSON array.
    Elements(Vec<(usize, &'a Value)>),
    /// A non-JSON body, shown as lossy UTF-8.
    Bytes(&'a [u8]),
}

impl<'a> Shown<'a> {
    /// The elements at `indices`, or absent when there are none.
    fn elements(values: &'a [Value], indices: &[usize]) -> Self {
        if indices.is_empty() {
            Shown::Absent
        } else {
            Shown::Elements(indices.iter().filter_map(|&i| Some((i, values.get(i)?))).collect())
        }
    }

    /// The whole value as text, up to [`MAX_RENDER_BYTES`]: [`show_pair`] picks what to show.
    fn render(&self) -> Rendered {
        match self {
            Shown::Absent => Rendered::placeholder(ABSENT),
            Shown::Plain(text) => render_json(|w| w.write_all(text.as_bytes()).map_err(serde_json::Error::io)),
            Shown::Json(value) => render_json(|w| serde_json::to_writer(w, value)),
            Shown::Str(text) => render_json(|w| serde_json::to_writer(w, text)),
            Shown::Elements(values) => render_json(|w| {
                w.write_all(b"[").map_err(serde_json::Error::io)?;
                for (n, (_, value)) in values.iter().enumerate() {
                    if n > 0 {
                        w.write_all(b",").map_err(serde_json::Error::io)?;
                    }
                    serde_json::to_writer(&mut *w, value)?;
                }
                w.write_all(b"]").map_err(serde_json::Error::io)
            }),
            Shown::Bytes([]) => Rendered::placeholder("(empty)"),
            Shown::Bytes(body) => render_json(|w| w.write_all(body).map_err(serde_json::Error::io)),
        }
    }
}

/// Writes into a buffer that refuses to grow past [`MAX_RENDER_BYTES`], so a large subtree
/// costs no more than that; invalid UTF-8 (a non-JSON body) is shown lossily.
fn render_json(write: impl FnOnce(&mut Limited) -> Result<(), serde_json::Error>) -> Rendered {
    let mut out = Limited {
        buf: Vec::new(),
        full: false,
    };
    let _ = write(&mut out);
    let text = match String::from_utf8(out.buf) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Rendered {
        text,
        cut: out.full,
        comparable: true,
    }
}

struct Limited {
    buf: Vec<u8>,
    full: bool,
}

impl io::Write for Limited {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = MAX_RENDER_BYTES.saturating_sub(self.buf.len());
        if data.len() > room {
            self.buf.extend_from_slice(data.get(..room).unwrap_or_default());
            self.full = true;
            return Err(io::Error::other("preview full"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Walks two JSON trees side by side, keeping the JSON Pointer of the current node.
struct Walker<'r, 's, S> {
    rules: &'r CompareRules,
    sink: &'s mut S,
    /// Escaped (RFC 6901) pointer of the node being compared.
    pointer: String,
}

impl<S: Sink> Walker<'_, '_, S> {
    /// Compares two present values at the current pointer; `states` are the pattern states there.
    fn value(&mut self, a: &Value, b: &Value, states: &[usize]) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => self.object(x, y, states),
            (Value::Array(x), Value::Array(y)) => {
                if self.rules.unordered_at(states) {
                    self.unordered(x, y, states);
                } else {
                    self.ordered(x, y, states);
                }
            }
            (Value::String(x), Value::String(y)) => {
                if x != y {
                    let (x, y) = (self.rules.normalize_str(x, states), self.rules.normalize_str(y, states));
                    if x != y {
                        self.sink.record(&self.pointer, Shown::Str(&x), Shown::Str(&y));
                    }
                }
            }
            (Value::Number(x), Value::Number(y)) => {
                if !numbers_equal(x, y, self.rules.tolerance) {
                    self.sink.record(&self.pointer, Shown::Json(a), Shown::Json(b));
                }
            }
            _ => {
                if a != b {
                    self.sink.record(&self.pointer, Shown::Json(a), Shown::Json(b));
                }
            }
        }
    }

    fn object(&mut self, x: &Map<String, Value>, y: &Map<String, Value>, states: &[usize]) {
        for (key, a) in x {
            if self.sink.done() {
                return;
            }
            let len = self.push_key(key);
            let child = self.child_states(states, len);
            if !self.rules.patterns.ignored(&child) {
                match y.get(key) {
                    Some(b) => self.value(a, b, &child),
                    None => self.sink.record(&self.pointer, Shown::Json(a), Shown::Absent),
                }
            }
            self.pointer.truncate(len);
        }
        for (key, b) in y {
            if self.sink.done() {
                return;
            }
            if x.contains_key(key) {
                continue;
            }
            let len = self.push_key(key);
            let child = self.child_states(states, len);
            if !self.rules.patterns.ignored(&child) {
                self.sink.record(&self.pointer, Shown::Absent, Shown::Json(b));
            }
            self.pointer.truncate(len);
        }
    }

    fn ordered(&mut self, x: &[Value], y: &[Value], states: &[usize]) {
        for i in 0..x.len().max(y.len()) {
            if self.sink.done() {
                return;
            }
            let len = self.push_index(i);
            let child = self.child_states(states, len);
            if !self.rules.patterns.ignored(&child) {
                match (x.get(i), y.get(i)) {
                    (Some(a), Some(b)) => self.value(a, b, &child),
                    (Some(a), None) => self.sink.record(&self.pointer, Shown::Json(a), Shown::Absent),
                    (None, Some(b)) => self.sink.record(&self.pointer, Shown::Absent, Shown::Json(b)),
                    (None, None) => {}
                }
            }
            self.pointer.truncate(len);
        }
    }

    /// Multiset comparison: elements are paired by canonical form (sorted keys, normalised
    /// strings, ignored fields left out), then the leftovers by the full rules (which
    /// includes the numeric tolerance), greedily and within [`MAX_PAIRINGS`] and
    /// [`MAX_PAIRING_BYTES`]: past those bounds the leftovers stay unpaired (a mismatch,
    /// never a hidden difference). What finds no
    /// partner is one difference at the array's pointer.
    fn unordered(&mut self, x: &[Value], y: &[Value], states: &[usize]) {
        let canon = Canon { rules: self.rules };
        let keyed = |values: &[Value]| {
            let mut keyed: Vec<(Vec<u8>, usize)> = Vec::with_capacity(values.len());
            for (i, value) in values.iter().enumerate() {
                let child = canon.index_states(states, i);
                if !self.rules.patterns.ignored(&child) {
                    let mut key = Vec::new();
                    canon.write(value, &child, &mut key);
                    keyed.push((key, i));
                }
            }
            keyed.sort_unstable();
            keyed
        };
        let (kx, ky) = (keyed(x), keyed(y));
        let (mut left, mut right) = (Vec::new(), Vec::new());
        let mut leftover_bytes = 0usize;
        let (mut i, mut j) = (0, 0);
        while i < kx.len() || j < ky.len() {
            match (kx.get(i), ky.get(j)) {
                (Some(p), Some(q)) if p.0 == q.0 => {
                    i += 1;
                    j += 1;
                }
                (Some(p), Some(q)) if p.0 < q.0 => {
                    left.push(p.1);
                    leftover_bytes += p.0.len();
                    i += 1;
                }
                (Some(p), None) => {
                    left.push(p.1);
                    leftover_bytes += p.0.len();
                    i += 1;
                }
                (_, Some(q)) => {
                    right.push(q.1);
                    leftover_bytes += q.0.len();
                    j += 1;
                }
                (None, None) => break,
            }
        }
        // Each leftover may be walked against every leftover of the other side.
        let work = left.len().max(right.len()).saturating_mul(leftover_bytes);
        if !left.is_empty()
            && !right.is_empty()
            && left.len().saturating_mul(right.len()) <= MAX_PAIRINGS
            && work <= MAX_PAIRING_BYTES
        {
            left.retain(|&li| {
                let partner = right.iter().position(|&ri| match (x.get(li), y.get(ri)) {
                    (Some(a), Some(b)) => self.elements_equal(a, b, li, states),
                    _ => false,
                });
                match partner {
                    Some(p) => {
                        right.remove(p);
                        false
                    }
                    None => true,
                }
            });
        }
        if left.is_empty() && right.is_empty() {
            return;
        }
        left.sort_unstable();
        right.sort_unstable();
        self.sink
            .record(&self.pointer, Shown::elements(x, &left), Shown::elements(y, &right));
    }

    /// Whether two elements of an unordered array are equal under the rules (the patterns
    /// see the legacy element's index).
    fn elements_equal(&self, a: &Value, b: &Value, index: usize, states: &[usize]) -> bool {
        let mut probe = Probe::default();
        let mut walker = Walker {
            rules: self.rules,
            sink: &mut probe,
            pointer: self.pointer.clone(),
        };
        let len = walker.push_index(index);
        let child = walker.child_states(states, len);
        walker.value(a, b, &child);
        !probe.differs
    }

    /// Appends `/key`, escaped; returns the length to truncate back to.
    fn push_key(&mut self, key: &str) -> usize {
        let len = self.pointer.len();
        self.pointer.push('/');
        push_escaped(&mut self.pointer, key);
        len
    }

    fn push_index(&mut self, index: usize) -> usize {
        let len = self.pointer.len();
        let _ = write!(self.pointer, "/{index}");
        len
    }

    /// The pattern states of the segment pushed after `len`.
    fn child_states(&self, states: &[usize], len: usize) -> Vec<usize> {
        if states.is_empty() {
            return Vec::new();
        }
        let segment = self.pointer.get(len + 1..).unwrap_or_default();
        self.rules.patterns.child(states, segment)
    }
}

/// Canonical bytes of a value under the rules: equal canonical bytes imply the walk finds
/// no difference (the converse need not hold: the tolerance and index-specific patterns are
/// left to the walk).
struct Canon<'r> {
    rules: &'r CompareRules,
}

impl Canon<'_> {
    fn write(&self, value: &Value, states: &[usize], out: &mut Vec<u8>) {
        match value {
            Value::String(s) => {
                let _ = serde_json::to_writer(&mut *out, &*self.rules.normalize_str(s, states));
            }
            Value::Array(items) => {
                let unordered = self.rules.unordered_at(states);
                let mut parts: Vec<Vec<u8>> = Vec::new();
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    let child = self.index_states(states, i);
                    let ignored = self.rules.patterns.ignored(&child);
                    if unordered {
                        if !ignored {
                            let mut part = Vec::new();
                            self.write(item, &child, &mut part);
                            parts.push(part);
                        }
                        continue;
                    }
                    if i > 0 {
                        out.push(b',');
                    }
                    if ignored {
                        // Keeps positions: an ignored element is not a missing one.
                        out.push(b'?');
                    } else {
                        self.write(item, &child, out);
                    }
                }
                if unordered {
                    parts.sort_unstable();
                    for (i, part) in parts.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(part);
                    }
                }
                out.push(b']');
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|p, q| p.0.cmp(q.0));
                out.push(b'{');
                let mut first = true;
                for (key, item) in entries {
                    let child = if states.is_empty() {
                        Vec::new()
                    } else {
                        let mut segment = String::new();
                        push_escaped(&mut segment, key);
                        self.rules.patterns.child(states, &segment)
                    };
                    if self.rules.patterns.ignored(&child) {
                        continue;
                    }
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    let _ = serde_json::to_writer(&mut *out, key);
                    out.push(b':');
                    self.write(item, &child, out);
                }
                out.push(b'}');
            }
            scalar => {
                let _ = serde_json::to_writer(&mut *out, scalar);
            }
        }
    }

    fn index_states(&self, states: &[usize], index: usize) -> Vec<usize> {
        if states.is_empty() {
            Vec::new()
        } else {
            self.rules.patterns.child(states, &index.to_string())
        }
    }
}

/// Without a tolerance, numbers are equal when serde_json says so: same kind (integer or
/// float) and value. With one, integers are compared exactly in `i128` and anything
/// involving a float as `f64`.
fn numbers_equal(a: &Number, b: &Number, tolerance: Option<f64>) -> bool {
    let Some(tolerance) = tolerance else {
        return a == b;
    };
    let int = |n: &Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    if let (Some(x), Some(y)) = (int(a), int(b)) {
        return (x - y).unsigned_abs() as f64 <= tolerance;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= tolerance,
        _ => false,
    }
}
