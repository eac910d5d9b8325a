//! Request arguments the way Flask-RESTPlus's `reqparse` read them: each field from the JSON body, else the
//! query string, else a urlencoded form body (`location=('json', 'values')`).
//!
//! JSON scalars are taken as text (`123` → `"123"`, like `type=str`); `null` counts as absent. When a key
//! appears twice in a query or form, the first value wins (Werkzeug's `MultiDict.get`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde_json::Value;

use crate::ApiError;

/// The arguments of one request, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields(HashMap<String, String>);

impl Fields {
    /// The field, or a 400 naming it.
    pub fn required(&self, name: &'static str) -> Result<&str, ApiError> {
        self.optional(name).ok_or(ApiError::MissingField(name))
    }

    /// The field, if present.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Reads the fields from a query string and a body of the given content type.
    pub fn parse(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let mut fields = HashMap::new();
        let media_type = content_type.map(|ct| ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        let media_type = media_type.as_deref().unwrap_or_default();
        let is_json = media_type == "application/json" || media_type.ends_with("+json");
        if is_json && !body.iter().all(u8::is_ascii_whitespace) {
            let value: Value = serde_json::from_slice(body).map_err(|_| ApiError::BadRequest)?;
            if let Value::Object(map) = value {
                fields.extend(
                    map.into_iter()
                        .filter_map(|(key, value)| Some((key, json_text(value)?))),
                );
            }
        }
        for (key, value) in urlencoded(query.unwrap_or_default().as_bytes())? {
            fields.entry(key).or_insert(value);
        }
        if media_type == "application/x-www-form-urlencoded" {
            for (key, value) in urlencoded(body)? {
                fields.entry(key).or_insert(value);
            }
        }
        Ok(Self(fields))
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
        assert_eq!(f.required("text").unwrap(), "");
        assert!(matches!(
            f.required("password"),
            Err(ApiError::MissingField("password"))
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
