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
}

impl<'a> Errors<'a> {
    /// An empty collector for `text`, read from `file`.
    pub(super) fn new(file: &'a str, text: &'a str) -> Self {
        Self {
            file,
            text,
            found: Vec::new(),
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

    /// Deserialises one section; on failure records the error at the span serde names,
    /// or at the section itself.
    pub(super) fn deserialize<T: Deserialize<'a>>(&mut self, value: &toml::Spanned<DeValue<'a>>) -> Option<T> {
        let span = value.span();
        match T::deserialize(value.clone().into_deserializer()) {
            Ok(v) => Some(v),
            Err(e) => {
                let at = e.span().map_or(span.start, |s| s.start);
                self.push(at, e.message().trim_end().replace('\n', "; "));
                None
            }
        }
    }

    /// Where byte `offset` of the text is.
    pub(super) fn location(&self, offset: usize) -> Location {
        location_of(self.text, offset)
    }

    /// Every error, sorted by position (errors at one position keep the order they were found in).
    pub(super) fn finish(mut self) -> ConfigErrors {
        self.found.sort_by_key(|(at, _)| *at);
        let file = self.file;
        let text = self.text;
        ConfigErrors(
            self.found
                .into_iter()
                .map(|(at, message)| ConfigError {
                    file: file.to_owned(),
                    location: location_of(text, at),
                    message,
                })
                .collect(),
        )
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
}
