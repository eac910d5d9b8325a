//! The JSON shapes shared by the monolith and the microservices.
//!
//! Field order is the wire order (serde serialises struct fields in declaration order), and it matches the
//! book's Flask-RESTPlus models: a Thought is `{"id", "username", "text", "timestamp"}`, a User
//! `{"id", "username", "creation"}`. Timestamps are naive UTC in ISO-8601 without a zone, like Python's
//! `datetime.isoformat()`: whole seconds print as `2019-05-07T13:47:34`, anything finer as six digits of
//! microseconds, `2019-05-07T13:47:34.123456`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Longest thought text, in characters (the book's `String(250)` column).
pub const MAX_THOUGHT_CHARS: usize = 250;

/// Longest username, in characters (the book's `String(50)` column).
pub const MAX_USERNAME_CHARS: usize = 50;

/// A naive UTC instant with microsecond precision, printed the way Python's `isoformat()` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(PrimitiveDateTime);

/// A string that is not `YYYY-MM-DDTHH:MM:SS[.fraction]`.
#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp {input:?}: expected YYYY-MM-DDTHH:MM:SS[.ffffff]")]
pub struct TimestampError {
    /// The rejected text.
    pub input: String,
}

impl Timestamp {
    /// Wraps a date-time, dropping anything finer than a microsecond.
    pub fn new(datetime: PrimitiveDateTime) -> Self {
        let micros = datetime.microsecond();
        // Truncating nanoseconds to whole microseconds always yields a valid time.
        Self(datetime.replace_microsecond(micros).unwrap_or(datetime))
    }

    /// Wraps a date-time known at compile time (seed data); it must not carry sub-microsecond digits.
    pub const fn from_const(datetime: PrimitiveDateTime) -> Self {
        Self(datetime)
    }

    /// The current UTC time, truncated to microseconds.
    pub fn now_utc() -> Self {
        let now = OffsetDateTime::now_utc();
        Self::new(PrimitiveDateTime::new(now.date(), now.time()))
    }

    /// The wrapped date-time.
    pub fn datetime(self) -> PrimitiveDateTime {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )?;
        match d.microsecond() {
            0 => Ok(()),
            micros => write!(f, ".{micros:06}"),
        }
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");
        PrimitiveDateTime::parse(s, format)
            .map(Self::new)
            .map_err(|_| TimestampError { input: s.to_owned() })
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One thought, as every API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thought {
    /// Database id; ids 1–5 are the seed rows.
    pub id: i64,
    /// Author. Not a foreign key: the Thoughts and Users backends own separate databases.
    pub username: String,
    /// At most [`MAX_THOUGHT_CHARS`] characters; may be empty (the book accepts an empty text).
    pub text: String,
    /// When it was posted (UTC).
    pub timestamp: Timestamp,
}

/// One user, as `POST /admin/users/` returns it. The password (hash) is deliberately absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Database id.
    pub id: i64,
    /// Unique login name, at most [`MAX_USERNAME_CHARS`] characters.
    pub username: String,
    /// When the account was created (UTC).
    pub creation: Timestamp,
}

/// Whether `text` contains `needle`, ignoring case (Unicode lower-casing, like PostgreSQL's `ILIKE`).
///
/// The one definition of "search" that every service uses, so their results agree.
pub fn matches_search(text: &str, needle: &str) -> bool {
    needle.is_empty() || text.to_lowercase().contains(&needle.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn whole_seconds_print_without_fraction() {
        let ts = Timestamp::from_const(datetime!(2019-05-07 13:47:34));
        assert_eq!(ts.to_string(), "2019-05-07T13:47:34");
    }

    #[test]
    fn fractions_print_as_six_digits_of_microseconds() {
        let ts = Timestamp::new(datetime!(2026-11-27 03:20:01.000_123_999));
        assert_eq!(ts.to_string(), "2026-11-27T03:20:01.000123");
        let ts = Timestamp::new(datetime!(2026-11-27 03:20:01.5));
        assert_eq!(ts.to_string(), "2026-11-27T03:20:01.500000");
    }

    #[test]
    fn parse_round_trips_both_forms() {
        for text in ["2019-05-07T13:47:34", "2026-11-27T03:20:01.123456"] {
            let ts: Timestamp = text.parse().unwrap();
            assert_eq!(ts.to_string(), text);
        }
        assert!("2019-05-07 13:47:34".parse::<Timestamp>().is_err());
        assert!("yesterday".parse::<Timestamp>().is_err());
    }

    #[test]
    fn now_has_microsecond_precision_at_most() {
        let ts = Timestamp::now_utc();
        assert_eq!(ts.datetime().nanosecond() % 1000, 0);
    }

    #[test]
    fn thought_serialises_with_the_books_key_order() {
        let thought = Thought {
            id: 1,
            username: "bruce".into(),
            text: "hi".into(),
            timestamp: "2019-05-07T13:47:34".parse().unwrap(),
        };
        let json = serde_json::to_string(&thought).unwrap();
        assert_eq!(
            json,
            r#"{"id":1,"username":"bruce","text":"hi","timestamp":"2019-05-07T13:47:34"}"#
        );
        let back: Thought = serde_json::from_str(&json).unwrap();
        assert_eq!(back, thought);
    }

    #[test]
    fn user_serialises_without_password() {
        let user = User {
            id: 3,
            username: "tony".into(),
            creation: "2019-05-07T13:47:34.5".parse().unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&user).unwrap(),
            r#"{"id":3,"username":"tony","creation":"2019-05-07T13:47:34.500000"}"#
        );
    }

    #[test]
    fn search_ignores_case_including_non_ascii() {
        assert!(matches_search("Feeling GREEN today", "green"));
        assert!(matches_search("ÉCLAIR", "éclair"));
        assert!(matches_search("anything", ""));
        assert!(!matches_search("gamma", "delta"));
        // No wildcard semantics: `%` and `_` are plain characters.
        assert!(!matches_search("gamma", "g%a"));
    }
}
