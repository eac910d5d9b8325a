//! Request arguments the way Flask-RESTPlus's `reqparse` read them: each field from the JSON body, else the
//! query string, else a urlencoded form body (`location=('json', 'values')`).
//!
//! JSON scalars are taken as text (`123` → `"123"`, like `type=str`). A JSON `null` is *given* (reqparse
//! accepts it, so the book goes on to check credentials) but has no value ([`Fields::is_given`] vs
//! [`Fields::optional`]); it hides the same key in the query and form, since the JSON body comes first. When
//! a key appears twice in a query or form, the first value wins (Werkzeug's `MultiDict.get`).
//!
//! Every required argument is an [`Arg`] with the help text the book declared for it ([`args`]): a missing
//! one is reported as `"<help> Missing required parameter …"`, as Flask-RESTPlus does.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

use crate::ApiError;

/// A request argument: its name and the help text the book's parser declared for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg {
    /// The field name (`text`, `username`).
    pub name: &'static str,
    /// Flask-RESTPlus's `help=`, which starts the argument's error message.
    pub help: &'static str,
}

/// The book's required arguments, with their help texts exactly as its parsers declare them.
pub mod args {
    use super::Arg;

    /// `POST /api/me/thoughts/`: `text`, help "Text of the thought".
    pub const THOUGHT_TEXT: Arg = Arg {
        name: "text",
        help: "Text of the thought",
    };
    /// `POST /api/login/`: `username`, help "username".
    pub const LOGIN_USERNAME: Arg = Arg {
        name: "username",
        help: "username",
    };
    /// `POST /api/login/`: `password`, help "password".
    pub const LOGIN_PASSWORD: Arg = Arg {
        name: "password",
        help: "password",
    };
    /// `POST /admin/users/`: `username`, help "Username".
    pub const NEW_USERNAME: Arg = Arg {
        name: "username",
        help: "Username",
    };
    /// `POST /admin/users/`: `password`, help "Password".
    pub const NEW_PASSWORD: Arg = Arg {
        name: "password",
        help: "Password",
    };
}

/// The arguments of one request, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields {
    values: HashMap<String, String>,
    /// Keys the JSON body gave as `null`.
    nulls: HashSet<String>,
}

impl Fields {
    /// The argument's value, or a 400 naming it (a `null` has no value).
    pub fn required(&self, arg: Arg) -> Result<&str, ApiError> {
        self.optional(arg.name).ok_or(ApiError::MissingField(arg))
    }

    /// The field's value, if present and not `null`.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the request gives the field at all, `null` included (what reqparse's `required` checks).
    pub fn is_given(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.nulls.contains(name)
    }

    /// Reads the fields from a query string and a body of the given content type.
    pub fn parse(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let mut fields = HashMap::new();
        let mut nulls = HashSet::new();
        let media_type = content_type.map(|ct| ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let media_type = media_type.as_deref().unwrap_or_default();
        let is_json = media_type == "application/json" || media_type.ends_with("+json");
        if is_json && !body.iter().all(u8::is_ascii_whitespace) {
            let value: Value = serde_json::from_slice(body).map_err(|_| ApiError::BadRequest)?;
            if let Value::Object(map) = value {
                for (key, value) in map {
                    match json_text(value) {
                        Some(text) => {
                            fields.insert(key, text);
                        }
                        None => {
                            nulls.insert(key);
                        }
                    }
                }
            }
        }
        let mut later = urlencoded(query.unwrap_or_default().as_bytes())?;
        if media_type == "application/x-www-form-urlencoded" {
            later.extend(urlencoded(body)?);
        }
        for (key, value) in later {
            if !nulls.contains(&key) {
                fields.entry(key).or_insert(value);
            }
        }
        Ok(Self { values: fields, nulls })
    }
}

fn json_text(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text),
        other => Some(other.to_string()),
    }
}

fn urlencoded(bytes: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes).map_err(|_| ApiError::BadRequest)?;
    // Werkzeug's `MultiDict.get`: the first of duplicate keys wins.
    let mut seen = std::collections::HashSet::new();
    Ok(pairs.into_iter().filter(|(key, _)| seen.insert(key.clone())).collect())
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let query = request.uri().query().map(str::to_owned);
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::BadRequest)?;
        Self::parse(query.as_deref(), content_type.as_deref(), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_then_query_then_form() {
        let f = Fields::parse(
            Some("text=q&x=1"),
            Some("application/json"),
            br#"{"text": "j", "n": 5, "z": null}"#,
        )
        .unwrap();
        assert_eq!(f.optional("text"), Some("j"));
        assert_eq!(f.optional("x"), Some("1"));
        assert_eq!(f.optional("n"), Some("5"));
        assert_eq!(f.optional("z"), None);
        assert!(f.is_given("z"), "null is given, without a value");
        assert!(!f.is_given("w"));
        // The JSON null comes first: the query's value does not replace it.
        let f = Fields::parse(Some("text=q"), Some("application/json"), br#"{"text": null}"#).unwrap();
        assert_eq!((f.optional("text"), f.is_given("text")), (None, true));

        let f = Fields::parse(
            Some("text=q"),
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"text=f&y=2",
        )
        .unwrap();
        assert_eq!(f.optional("text"), Some("q"));
        assert_eq!(f.optional("y"), Some("2"));
    }

    #[test]
    fn form_values_are_decoded_and_first_duplicate_wins() {
        let f = Fields::parse(
            None,
            Some("application/x-www-form-urlencoded"),
            b"text=a+b%26c&text=second",
        )
        .unwrap();
        assert_eq!(f.optional("text"), Some("a b&c"));
    }

    #[test]
    fn missing_and_empty_are_different() {
        let f = Fields::parse(Some("text="), None, b"").unwrap();
        assert_eq!(f.required(args::THOUGHT_TEXT).unwrap(), "");
        assert!(matches!(
            f.required(args::NEW_PASSWORD),
            Err(ApiError::MissingField(args::NEW_PASSWORD))
        ));
    }

    #[test]
    fn bad_json_is_a_bad_request_and_other_bodies_are_ignored() {
        assert!(matches!(
            Fields::parse(None, Some("application/json"), b"{nope"),
            Err(ApiError::BadRequest)
        ));
        assert_eq!(
            Fields::parse(None, Some("application/json"), b"  ").unwrap(),
            Fields::default()
        );
        assert_eq!(
            Fields::parse(None, Some("application/json"), b"[1]").unwrap(),
            Fields::default()
        );
        assert_eq!(
            Fields::parse(None, Some("text/plain"), b"text=x").unwrap(),
            Fields::default()
        );
    }
}
