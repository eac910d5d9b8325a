//! `[tracing]`: the OTLP/HTTP collector spans are exported to.

use http::Uri;
use http::uri::PathAndQuery;

use crate::config::error::Errors;
use crate::config::model::TracingConfig;
use crate::config::raw;

/// The OTLP/HTTP path of trace exports, appended to the endpoint's path.
const TRACES_PATH: &str = "/v1/traces";

/// The `[tracing]` section; its errors are pushed and leave the export off.
pub(crate) fn validate_tracing(errors: &mut Errors<'_>, raw: &raw::Tracing) -> TracingConfig {
    let Some(endpoint) = &raw.otlp_endpoint else {
        return TracingConfig::default();
    };
    match otlp_urls(endpoint.get_ref()) {
        Ok((endpoint, traces)) => TracingConfig {
            otlp_endpoint: Some(endpoint),
            otlp_traces_url: Some(traces),
        },
        Err(why) => {
            errors.push(
                endpoint.span().start,
                format!("`tracing.otlp_endpoint` {why} (e.g. \"http://127.0.0.1:4318\")"),
            );
            TracingConfig::default()
        }
    }
}

/// The endpoint and the URL spans are POSTed to, or why the endpoint is unusable.
fn otlp_urls(text: &str) -> Result<(Uri, Uri), String> {
    let endpoint: Uri = text.parse().map_err(|e| format!("is not a URL: `{text}` ({e})"))?;
    match endpoint.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "is `{text}`: https is not supported yet; send to a collector (or agent) over plain http"
            ));
        }
        _ => return Err(format!("must be an http:// URL, got `{text}`")),
    }
    let Some(authority) = endpoint.authority() else {
        return Err(format!("has no host: `{text}`"));
    };
    if authority.as_str().contains('@') {
        return Err(format!("must not carry user info: `{text}`"));
    }
    if endpoint.query().is_some() {
        return Err(format!("must not have a query: `{text}`"));
    }
    let base = endpoint.path().trim_end_matches('/');
    let path = if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    };
    let path = PathAndQuery::try_from(path).map_err(|e| format!("has a bad path: `{text}` ({e})"))?;
    let traces = Uri::builder()
        .scheme("http")
        .authority(authority.clone())
        .path_and_query(path)
        .build()
        .map_err(|e| format!("is not usable: `{text}` ({e})"))?;
    Ok((endpoint, traces))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_appended_once() {
        for (written, posted) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            ("http://collector/otlp", "http://collector/otlp/v1/traces"),
            ("http://collector:4318/v1/traces", "http://collector:4318/v1/traces"),
        ] {
            assert_eq!(otlp_urls(written).unwrap().1, posted, "{written}");
        }
    }

    #[test]
    fn unusable_endpoints_say_why() {
        for (written, why) in [
            ("127.0.0.1:4318", "must be an http:// URL"),
            ("https://collector:4318", "https is not supported"),
            ("ftp://collector", "must be an http:// URL"),
            ("http://user:pw@collector:4318", "user info"),
            ("http://collector:4318/?a=1", "query"),
            ("not a url", "is not a URL"),
        ] {
            let error = otlp_urls(written).unwrap_err();
            assert!(error.contains(why), "{written}: {error}");
        }
    }
}
