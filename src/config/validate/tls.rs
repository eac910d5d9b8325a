//! TLS settings: `[proxy.tls]` (a default certificate and SNI entries) and the
//! `ca_file`/`client_cert`/`client_key` of `https://` upstreams. Only paths are checked here;
//! the PEM files are read when the table is loaded.

use std::collections::BTreeMap;

use super::values::relative_to;
use crate::config::error::Errors;
use crate::config::model::{CertKeyPair, FileRef, SniCertificate, TlsSettings, UpstreamTls};
use crate::config::raw;

/// `ca_file`, `client_cert` and `client_key` of an upstream: only for `https://` URLs, and
/// the client certificate and key come together.
pub(super) fn validate_upstream_tls(
    errors: &mut Errors<'_>,
    file: &str,
    raw: &raw::Upstream,
    https: bool,
) -> Option<UpstreamTls> {
    if !https {
        for (key, value) in [
            ("ca_file", &raw.ca_file),
            ("client_cert", &raw.client_cert),
            ("client_key", &raw.client_key),
        ] {
            if let Some(value) = value {
                errors.push(
                    value.span().start,
                    format!("`{key}` only applies to https:// upstreams"),
                );
            }
        }
        return None;
    }
    let ca_file = raw.ca_file.as_ref().and_then(|v| file_ref(errors, file, v, "ca_file"));
    let client = match (&raw.client_cert, &raw.client_key) {
        (Some(cert), Some(key)) => pair(errors, file, (cert, key), ("client_cert", "client_key")),
        (Some(cert), None) => {
            errors.push(
                cert.span().start,
                "`client_cert` needs `client_key`: the private key of the client certificate".to_owned(),
            );
            None
        }
        (None, Some(key)) => {
            errors.push(
                key.span().start,
                "`client_key` needs `client_cert`: the certificate it belongs to".to_owned(),
            );
            None
        }
        (None, None) => None,
    };
    Some(UpstreamTls { ca_file, client })
}

/// `[proxy.tls]`: a default pair, and SNI entries whose hosts are valid DNS names (or
/// `*.` wildcards) listed once across all entries.
pub(super) fn validate_tls(errors: &mut Errors<'_>, file: &str, raw: &raw::ProxyTls) -> Option<TlsSettings> {
    let before = errors.len();
    let default = pair(errors, file, (&raw.cert, &raw.key), ("cert", "key"));
    let mut sni = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in raw.certs.iter().flatten() {
        if entry.hosts.get_ref().is_empty() {
            errors.push(
                entry.hosts.span().start,
                "`hosts` is empty: list the host names this certificate is served for".to_owned(),
            );
        }
        let mut hosts = Vec::new();
        for host in entry.hosts.get_ref() {
            match check_sni_host(host.get_ref()) {
                Ok(name) => {
                    if let Some(first) = seen.get(&name) {
                        let line = errors.location(*first).line;
                        errors.push(
                            host.span().start,
                            format!("host `{name}` is already listed for another certificate (line {line})"),
                        );
                    } else {
                        seen.insert(name.clone(), host.span().start);
                        hosts.push(name);
                    }
                }
                Err(message) => errors.push(host.span().start, message),
            }
        }
        if let Some(pair) = pair(errors, file, (&entry.cert, &entry.key), ("cert", "key")) {
            sni.push(SniCertificate { hosts, pair });
        }
    }
    (errors.len() == before).then_some(TlsSettings { default: default?, sni })
}

/// A host name a certificate is chosen for: a DNS name, or `*.` and a DNS name; never an IP
/// address (SNI carries names only). Returned in lower case.
fn check_sni_host(host: &str) -> Result<String, String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "`{host}` is an IP address; clients send no SNI for addresses, so they get the default certificate"
        ));
    }
    let lower = host.to_ascii_lowercase();
    let name = lower.strip_prefix("*.").unwrap_or(&lower);
    match rustls::pki_types::DnsName::try_from(name) {
        Ok(_) if !name.contains('*') => Ok(lower),
        _ => Err(format!(
            "bad host `{host}`: expected a DNS name like `app.example.com` or a wildcard like `*.example.com`"
        )),
    }
}

/// A certificate chain and its private key, each a file named by the settings `cert_name`
/// and `key_name`.
fn pair(
    errors: &mut Errors<'_>,
    file: &str,
    (cert, key): (&toml::Spanned<String>, &toml::Spanned<String>),
    (cert_name, key_name): (&str, &str),
) -> Option<CertKeyPair> {
    let cert = file_ref(errors, file, cert, cert_name);
    let key = file_ref(errors, file, key, key_name);
    Some(CertKeyPair { cert: cert?, key: key? })
}

/// A file path written in routes.toml, resolved against the config file's directory.
fn file_ref(errors: &mut Errors<'_>, file: &str, value: &toml::Spanned<String>, what: &str) -> Option<FileRef> {
    let at = errors.location(value.span().start);
    if value.get_ref().is_empty() {
        errors.push(value.span().start, format!("`{what}` is empty: name a PEM file"));
        return None;
    }
    Some(FileRef {
        path: relative_to(file, value.get_ref()),
        written_at: format!("{file}:{}:{}", at.line, at.column),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::config::model::UpstreamTls;
    use crate::config::parse::parse_str;
    use crate::config::tests::{GOOD, errors_of};

    const TLS: &str = r#"
[proxy]
listen = "127.0.0.1:8443"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[proxy.tls]
cert = "certs/default.pem"
key = "/etc/strangler/default.key"

[[proxy.tls.certs]]
hosts = ["App.Example", "*.api.example"]
cert = "certs/app.pem"
key = "certs/app.key"

[upstreams.legacy]
url = "https://legacy.internal:8443"
http2 = true
ca_file = "ca.pem"
client_cert = "client.pem"
client_key = "client.key"
[upstreams.thoughts]
url = "http://127.0.0.1:8002"
http2 = true
[upstreams.public]
url = "https://api.example"
"#;

    #[test]
    fn tls_settings_parse_with_paths_next_to_the_config() {
        let c = parse_str("conf/routes.toml", TLS).unwrap();
        let tls = c.proxy.tls.as_ref().unwrap();
        assert_eq!(tls.default.cert.path, PathBuf::from("conf/certs/default.pem"));
        assert_eq!(tls.default.key.path, PathBuf::from("/etc/strangler/default.key"));
        assert_eq!(tls.default.cert.written_at, "conf/routes.toml:8:8");
        assert_eq!(tls.sni.len(), 1);
        assert_eq!(tls.sni[0].hosts, ["app.example", "*.api.example"]);
        assert_eq!(tls.sni[0].pair.key.path, PathBuf::from("conf/certs/app.key"));

        let legacy = &c.upstreams["legacy"];
        assert!(legacy.http2);
        let upstream_tls = legacy.tls.as_ref().unwrap();
        assert_eq!(
            upstream_tls.ca_file.as_ref().unwrap().path,
            PathBuf::from("conf/ca.pem")
        );
        assert_eq!(
            upstream_tls.client.as_ref().unwrap().cert.path,
            PathBuf::from("conf/client.pem")
        );
        let thoughts = &c.upstreams["thoughts"];
        assert!(thoughts.http2, "h2c prior knowledge on a plain upstream");
        assert_eq!(thoughts.tls, None);
        let public = &c.upstreams["public"];
        assert!(!public.http2);
        assert_eq!(
            public.tls,
            Some(UpstreamTls::default()),
            "web PKI roots, no client certificate"
        );
        assert!(parse_str("routes.toml", GOOD).unwrap().proxy.tls.is_none());
    }

    #[test]
    fn moving_a_tls_line_is_not_a_change_of_settings() {
        let a = parse_str("routes.toml", TLS).unwrap();
        let b = parse_str("routes.toml", &format!("# a comment\n{TLS}")).unwrap();
        assert_ne!(
            a.proxy.tls.as_ref().unwrap().default.cert.written_at,
            b.proxy.tls.as_ref().unwrap().default.cert.written_at
        );
        assert_eq!(a.proxy.tls, b.proxy.tls);
        assert_eq!(a.upstreams["legacy"], b.upstreams["legacy"]);
    }

    #[test]
    fn tls_errors_point_at_the_value() {
        let text = r#"
[proxy]
listen = "127.0.0.1:8443"
admin_listen = "127.0.0.1:9100"
default_upstream = "legacy"

[proxy.tls]
cert = ""
key = "k.pem"

[[proxy.tls.certs]]
hosts = ["a.example", "10.0.0.1", "bad host", "*.*.example"]
cert = "a.pem"
key = "a.key"

[[proxy.tls.certs]]
hosts = ["A.example"]
cert = "b.pem"
key = "b.key"

[[proxy.tls.certs]]
hosts = []
cert = "c.pem"
key = "c.key"

[upstreams.legacy]
url = "http://127.0.0.1:8001"
ca_file = "ca.pem"
[upstreams.secure]
url = "https://secure.example"
client_cert = "client.pem"
"#;
        let errors = errors_of(text);
        let expected = [
            ("8:8", "`cert` is empty"),
            ("12:23", "`10.0.0.1` is an IP address"),
            ("12:35", "bad host `bad host`"),
            ("12:47", "bad host `*.*.example`"),
            (
                "17:10",
                "host `a.example` is already listed for another certificate (line 12)",
            ),
            ("22:9", "`hosts` is empty"),
            ("28:11", "`ca_file` only applies to https:// upstreams"),
            ("31:15", "`client_cert` needs `client_key`"),
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, (at, what)) in errors.iter().zip(expected) {
            assert!(
                error.starts_with(&format!("routes.toml:{at}: ")),
                "{error} should be at {at}"
            );
            assert!(error.contains(what), "{error} should say {what}");
        }
    }

    #[test]
    fn tls_section_needs_a_default_pair_and_known_keys() {
        let errors = errors_of(&GOOD.replace(
            "client_header_timeout = \"5s\"",
            "client_header_timeout = \"5s\"\n[proxy.tls]\ncert = \"c.pem\"",
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("missing field `key`"), "{}", errors[0]);
        let errors = errors_of(&GOOD.replace(
            "client_header_timeout = \"5s\"",
            "client_header_timeout = \"5s\"\n[proxy.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nciphers = \"all\"",
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("ciphers"), "{}", errors[0]);
    }
}
