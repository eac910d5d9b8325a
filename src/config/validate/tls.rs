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
