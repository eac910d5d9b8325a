//! How problems in a config file are reported: [`ConfigError`] (one problem at
//! `file:line:column`), [`ConfigErrors`] (all of a file's, in file order), [`LoadError`], and
//! the collector the validators push byte offsets and messages into while they work.

use std::fmt;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::de::DeValue;

use super::model::Location;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}:{}: {message}", location.line, location.column)]
pub struct ConfigError {
    /// The file as the user named it.
    pub file: String,
    /// Where the offending value starts.
    pub location: Location,
    /// One line: what is wrong.
    pub message: String,
}

/// Every problem found in one config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Why a config file could not be loaded at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid routing table.
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// Collects errors with their byte offsets, turned into line:column at the end.
pub(super) struct Errors<'a> {
    file: &'a str,
    text: &'a str,
    found: Vec<(usize, String)>,
    /// The text's line starts, built on the first lookup: every route asks where its
    /// name is, and counting lines from the start each time made a check of N routes
    /// cost N² (a 10 000-route table took 5 s).
    lines: std::cell::OnceCell<LineIndex<'a>>,
}

impl<'a> Errors<'a> {
    /// An empty collector for `text`, read from `file`.
    pub(super) fn new(file: &'a str, text: &'a str) -> Self {
        Self {
            file,
            text,
            found: Vec::new(),
            lines: std::cell::OnceCell::new(),
        }
    }

    /// Records `message` at byte `offset` of the text.
    pub(super) fn push(&mut self, offset: usize, message: String) {
        self.found.push((offset, message));
    }

    /// Errors so far: a validator compares it before and after to know whether its part failed.
    pub(super) fn len(&self) -> usize {
        self.found.len()
    }

    /// Whether nothing was found.
    pub(super) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Deserialises one section; each error is recorded at the span serde names, or at the
    /// section itself.
    ///
    /// serde stops at a section's first error, so the key at fault (an unknown key, or one
    /// whose value has the wrong type) is taken out of a copy of the section and the rest
    /// deserialised again, until it passes: every schema error of the section is reported,
    /// not only the first. After unknown keys alone the section is returned, so that its
    /// other values are still validated (a bad template or duration beside a misspelt key
    /// is reported too); after a wrong type it is not, since a check of the others could
    /// report the missing value's consequences as errors of their own.
    pub(super) fn deserialize<T: Deserialize<'a>>(&mut self, value: &toml::Spanned<DeValue<'a>>) -> Option<T> {
        /// Keys taken out of one section at most (a bound on the retries).
        const MOST_KEYS_OUT: usize = 32;
        let mut section = value.clone();
        let mut taken_out: Vec<String> = Vec::new();
        let mut wrong_type = false;
        for _ in 0..=MOST_KEYS_OUT {
            let error = match T::deserialize(section.clone().into_deserializer()) {
                Ok(v) => return (!wrong_type).then_some(v),
                Err(error) => error,
            };
            let message = error.message().trim_end().replace('\n', "; ");
            if taken_out.iter().any(|key| message == format!("missing field `{key}`")) {
                return None; // a required key of the wrong type: already reported
            }
            let at = error.span().map_or(section.span().start, |s| s.start);
            wrong_type |= !message.starts_with("unknown field");
            self.push(at, with_type_hint(message));
            taken_out.push(take_out_key_at(section.get_mut(), at)?);
        }
        None
    }

    /// Where byte `offset` of the text is.
    pub(super) fn location(&self, offset: usize) -> Location {
        self.lines.get_or_init(|| LineIndex::new(self.text)).location(offset)
    }

    /// Every error, sorted by position (errors at one position keep the order they were found in).
    pub(super) fn finish(mut self) -> ConfigErrors {
        self.found.sort_by_key(|(at, _)| *at);
        let file = self.file;
        let lines = self.lines.take().unwrap_or_else(|| LineIndex::new(self.text));
        ConfigErrors(
            self.found
                .into_iter()
                .map(|(at, message)| ConfigError {
                    file: file.to_owned(),
                    location: lines.location(at),
                    message,
                })
                .collect(),
        )
    }
}

/// Removes from `value` the innermost key whose name or value holds byte `at` (a key of a
/// nested table, or of a table in an array, before the key that holds it); its name.
fn take_out_key_at(value: &mut DeValue<'_>, at: usize) -> Option<String> {
    match value {
        DeValue::Table(table) => {
            let mut holder = None;
            for (key, item) in table.iter_mut() {
                if key.span().contains(&at) || item.span().contains(&at) {
                    if let Some(inner) = take_out_key_at(item.get_mut(), at) {
                        return Some(inner);
                    }
                    holder = Some(key.clone());
                    break;
                }
            }
            let holder = holder?;
            table.remove(&holder);
            Some(holder.get_ref().to_string())
        }
        DeValue::Array(items) => items
            .iter_mut()
            .filter(|item| item.span().contains(&at))
            .find_map(|item| take_out_key_at(item.get_mut(), at)),
        _ => None,
    }
}

/// The byte offsets where a text's lines start, for many offset → line:column lookups:
/// each a binary search and a count of the characters on one line.
pub struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    /// Indexes `text` (one pass).
    pub fn new(text: &'t str) -> Self {
        let starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1))
            .collect();
        Self { text, starts }
    }

    /// Byte offset → 1-based line and column (in characters), as [`location_of`].
    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&start| start <= offset);
        let line_start = self.starts.get(line.saturating_sub(1)).copied().unwrap_or(0);
        let column = self.text.get(line_start..offset).map_or(0, |s| s.chars().count()) + 1;
        Location { line, column }
    }
}

/// Byte offset → 1-based line and column (in characters).
pub fn location_of(text: &str, offset: usize) -> Location {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    Location { line, column }
}

/// serde names Rust types (`expected i64`, `expected a string`); an operator needs to know
/// how to write the value. The message stays (tests and scripts match on it), with a hint.
fn with_type_hint(message: String) -> String {
    let hint = if !message.starts_with("invalid type") {
        None
    } else if message.ends_with("expected i64") || message.ends_with("expected u64") {
        Some("a whole number, without quotes, like `128`")
    } else if message.ends_with("expected f64") {
        Some("a number, without quotes, like `0.5`")
    } else if message.ends_with("expected a string") {
        Some("a quoted string: durations like \"75s\", addresses like \"127.0.0.1:8000\"")
    } else if message.ends_with("expected a boolean") {
        Some("`true` or `false`, without quotes")
    } else {
        None
    };
    match hint {
        Some(hint) => format!("{message} (write {hint})"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_characters() {
        let text = "ab\ncdé\nf";
        assert_eq!(location_of(text, 0), Location { line: 1, column: 1 });
        assert_eq!(location_of(text, 3), Location { line: 2, column: 1 });
        assert_eq!(location_of(text, 7), Location { line: 2, column: 4 });
        assert_eq!(location_of(text, 100), Location { line: 3, column: 2 });
    }

    #[test]
    fn the_line_index_agrees_with_counting_from_the_start() {
        for text in ["ab\ncdé\nf", "", "\n\n", "x\r\ny\n", "é\nàb\n\nz"] {
            let index = LineIndex::new(text);
            for offset in 0..=text.len() + 2 {
                if text.is_char_boundary(offset.min(text.len())) {
                    assert_eq!(
                        index.location(offset),
                        location_of(text, offset),
                        "{text:?} at {offset}"
                    );
                }
            }
        }
    }
}
