//! How the two sides of a [`super::Diff`] are shown: a difference late in a long value
//! must be visible, so when the first differing character lies beyond what a prefix of
//! [`MAX_VALUE_CHARS`] characters shows, both sides are shown from [`CONTEXT_CHARS`]
//! characters before it, after a marker with its offset: `[offset 1432] …text…`.
//!
//! Both sides are rendered in full first, up to [`MAX_RENDER_BYTES`] each (so a huge body
//! costs a bounded amount); the offset counts characters of the rendered text (for a JSON
//! string, its opening quote is character 0). When the two renderings agree up to where
//! one was cut, the difference lies further on: the offset is then followed by `+`.
//! Every consumer (the terminal, JUnit, JSON, `/admin/parity`) shows the same strings.

/// Longest window of a value shown in a [`super::Diff`], in characters (a marker and
/// ellipses may surround it).
pub const MAX_VALUE_CHARS: usize = 200;
/// Characters shown before the first difference when the window does not start at 0.
pub const CONTEXT_CHARS: usize = 40;
/// Most bytes of a value rendered to look for the first difference.
pub const MAX_RENDER_BYTES: usize = 256 << 10;

/// One side of a difference rendered in full, or up to [`MAX_RENDER_BYTES`].
#[derive(Debug)]
pub(super) struct Rendered {
    /// The text.
    pub text: String,
    /// The value went on past `text`.
    pub cut: bool,
    /// Whether it may be windowed: not a placeholder such as `(absent)`.
    pub comparable: bool,
}

impl Rendered {
    /// A placeholder (`(absent)`, `(empty)`): shown as is, never windowed.
    pub fn placeholder(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            cut: false,
            comparable: false,
        }
    }
}

/// The two sides as shown: from the start when the first difference is near enough to it,
/// else a window around it on both sides, at the same offset.
pub(super) fn show_pair(legacy: Rendered, new: Rendered) -> (String, String) {
    if !legacy.comparable || !new.comparable {
        return (head(&legacy), head(&new));
    }
    let first = legacy
        .text
        .chars()
        .zip(new.text.chars())
        .take_while(|(a, b)| a == b)
        .count();
    if first + CONTEXT_CHARS <= MAX_VALUE_CHARS {
        return (head(&legacy), head(&new));
    }
    // Equal as far as both go and one was cut: the difference is further on.
    let beyond = [&legacy, &new]
        .iter()
        .any(|side| side.cut && side.text.chars().nth(first).is_none());
    let marker = if beyond {
        format!("[offset {first}+] ")
    } else {
        format!("[offset {first}] ")
    };
    let start = first - CONTEXT_CHARS;
    (window(&legacy, start, &marker), window(&new, start, &marker))
}

/// The first [`MAX_VALUE_CHARS`] characters, then `…` if anything was cut.
pub(super) fn head(side: &Rendered) -> String {
    visible(&match side.text.char_indices().nth(MAX_VALUE_CHARS) {
        Some((end, _)) => format!("{}…", side.text.get(..end).unwrap_or(&side.text)),
        None if side.cut => format!("{}…", side.text),
        None => side.text.clone(),
    })
}

/// `text` with control characters written as escapes (`\n`, `\r`, `\t`, `\x1b`): a
/// value or a name from a corpus or an answer is shown on one line, and cannot move the
/// cursor or forge a line of the report (a fake `parity: … ok`).
pub fn visible(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// `marker…` and [`MAX_VALUE_CHARS`] characters from character `start`, then `…` if more.
fn window(side: &Rendered, start: usize, marker: &str) -> String {
    let mut chars = side.text.char_indices().skip(start);
    let Some((from, _)) = chars.next() else {
        // This side ends before the window: the difference is that it stops.
        return format!("{marker}…(ends at {})", side.text.chars().count());
    };
    let to = chars
        .nth(MAX_VALUE_CHARS.saturating_sub(1))
        .map_or(side.text.len(), |(i, _)| i);
    let shown = side.text.get(from..to).unwrap_or_default();
    let more = to < side.text.len() || side.cut;
    visible(&format!("{marker}…{shown}{}", if more { "…" } else { "" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(text: &str) -> Rendered {
        Rendered {
            text: text.to_owned(),
            cut: false,
            comparable: true,
        }
    }

    #[test]
    fn an_early_difference_is_shown_from_the_start() {
        let (a, b) = show_pair(full("\"hello world\""), full("\"hello there\""));
        assert_eq!((a.as_str(), b.as_str()), ("\"hello world\"", "\"hello there\""));
        // Long values are cut after MAX_VALUE_CHARS characters.
        let long = "x".repeat(500);
        let (a, b) = show_pair(full(&format!("a{long}")), full(&format!("b{long}")));
        assert_eq!(a.chars().count(), MAX_VALUE_CHARS + 1);
        assert!(a.starts_with("axx") && a.ends_with('…') && b.starts_with("bxx"));
    }

    #[test]
    fn a_late_difference_gets_a_window_and_its_offset() {
        let common = "a".repeat(1432);
        let legacy = format!("{common}LEGACY{}", "z".repeat(1000));
        let new = format!("{common}NEW{}", "z".repeat(1000));
        let (a, b) = show_pair(full(&legacy), full(&new));
        let before = "a".repeat(CONTEXT_CHARS);
        assert!(a.starts_with(&format!("[offset 1432] …{before}LEGACYzzz")), "{a}");
        assert!(b.starts_with(&format!("[offset 1432] …{before}NEWzzz")), "{b}");
        assert!(a.ends_with("z…"), "{a}");
        let window = a.trim_start_matches("[offset 1432] …").trim_end_matches('…');
        assert_eq!(window.chars().count(), MAX_VALUE_CHARS);
        // A window that reaches the end has no closing ellipsis.
        let (a, _) = show_pair(full(&format!("{common}1")), full(&format!("{common}2")));
        assert_eq!(a, format!("[offset 1432] …{before}1"));
    }

    #[test]
    fn the_window_counts_characters_not_bytes() {
        let common = "é".repeat(300);
        let (a, b) = show_pair(full(&format!("{common}1é")), full(&format!("{common}2é")));
        assert_eq!(a, format!("[offset 300] …{}1é", "é".repeat(CONTEXT_CHARS)));
        assert_eq!(b, format!("[offset 300] …{}2é", "é".repeat(CONTEXT_CHARS)));
    }

    #[test]
    fn one_side_a_prefix_of_the_other() {
        let common = "x".repeat(400);
        let (a, b) = show_pair(full(&common), full(&format!("{common}tail")));
        assert_eq!(a, format!("[offset 400] …{}", "x".repeat(CONTEXT_CHARS)));
        assert_eq!(b, format!("[offset 400] …{}tail", "x".repeat(CONTEXT_CHARS)));
    }

    #[test]
    fn equal_up_to_the_cut_says_beyond() {
        let common = "x".repeat(400);
        let cut = Rendered {
            text: common.clone(),
            cut: true,
            comparable: true,
        };
        let (a, b) = show_pair(cut, full(&format!("{common}y")));
        assert!(a.starts_with("[offset 400+] …x") && a.ends_with('…'), "{a}");
        assert!(b.starts_with("[offset 400+] …x") && b.ends_with("xy"), "{b}");
    }

    #[test]
    fn placeholders_are_never_windowed() {
        let long = "x".repeat(500);
        let (a, b) = show_pair(full(&long), Rendered::placeholder("(absent)"));
        assert_eq!(b, "(absent)");
        assert_eq!(a.chars().count(), MAX_VALUE_CHARS + 1);
    }

    #[test]
    fn control_characters_are_shown_as_escapes() {
        assert_eq!(
            visible("a\nparity: ok\r\u{1b}[2K\tz"),
            "a\\nparity: ok\\r\\x{1b}[2K\\tz"
        );
        assert_eq!(visible("plain é"), "plain é");
    }
}
