//! How an endpoint is asked beyond its path and query: a POST's JSON body, its own headers,
//! the statuses that are answers; and the source's TLS files.

use std::path::PathBuf;
use std::time::SystemTime;

use serde::Deserialize;

use super::super::templates::ClockText;
use crate::client::SourceTls;
use crate::config::KindContext;
use crate::error::ConfigError;

pub type Tls = SourceTls;

/// A POST body: the config's table as JSON, each string a clock template.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Text(ClockText),
    Plain(serde_json::Value),
    List(Vec<Body>),
    Map(Vec<(String, Body)>),
}

impl Body {
    pub fn render(&self, now: SystemTime) -> serde_json::Value {
        match self {
            Body::Text(text) => serde_json::Value::String(text.render(now)),
            Body::Plain(value) => value.clone(),
            Body::List(items) => items.iter().map(|b| b.render(now)).collect(),
            Body::Map(members) => members
                .iter()
                .map(|(k, b)| (k.clone(), b.render(now)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

/// Nesting a body may have: a query document, not a data structure.
const MAX_BODY_DEPTH: usize = 8;

pub(super) fn body(
    cx: &KindContext<'_, '_>,
    at: &str,
    value: toml::Value,
) -> Result<Body, ConfigError> {
    if !value.is_table() {
        return Err(cx.err(
            at,
            "a body is a table",
            "write body = { currency = \"bitcoin\", user_name = \"farm\" }",
        ));
    }
    body_value(cx, at, value, 0)
}

fn body_value(
    cx: &KindContext<'_, '_>,
    at: &str,
    value: toml::Value,
    depth: usize,
) -> Result<Body, ConfigError> {
    if depth > MAX_BODY_DEPTH {
        return Err(cx.err(
            at,
            format!("nested more than {MAX_BODY_DEPTH} deep"),
            "flatten the body",
        ));
    }
    Ok(match value {
        toml::Value::String(text) => Body::Text(ClockText::parse(&text).map_err(|problem| {
            cx.err(
                at,
                problem,
                "write the value, or a clock field such as \"{yesterday}\" or \"{now-1h:%s}\"",
            )
        })?),
        toml::Value::Integer(n) => Body::Plain(n.into()),
        toml::Value::Float(f) => Body::Plain(
            serde_json::Number::from_f64(f)
                .ok_or_else(|| {
                    cx.err(
                        at,
                        format!("{f} is not a JSON number"),
                        "write a finite number",
                    )
                })?
                .into(),
        ),
        toml::Value::Boolean(b) => Body::Plain(b.into()),
        toml::Value::Datetime(d) => Body::Plain(d.to_string().into()),
        toml::Value::Array(items) => Body::List(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| body_value(cx, &format!("{at}[{i}]"), v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => Body::Map(
            table
                .into_iter()
                .map(|(k, v)| {
                    let inner = body_value(cx, &format!("{at}.{k}"), v, depth + 1)?;
                    Ok((k, inner))
                })
                .collect::<Result<_, ConfigError>>()?,
        ),
    })
}

/// `valid_status_codes`: statuses the API answers with data. 429 stays a "slow down" and
/// 401/403 a refused token, whatever the list says, so budgets and auth errors keep working.
pub(super) fn statuses(
    cx: &KindContext<'_, '_>,
    at: &str,
    codes: Option<&[u16]>,
) -> Result<Vec<u16>, ConfigError> {
    let Some(codes) = codes else {
        return Ok(Vec::new());
    };
    if codes.is_empty() {
        return Err(cx.err(
            at,
            "no status is an answer",
            "list them, e.g. valid_status_codes = [200, 404], or remove the key (any 2xx)",
        ));
    }
    if let Some(code) = codes.iter().find(|c| {
        !(200..=599).contains(*c) || (300..400).contains(*c) || matches!(c, 401 | 403 | 429)
    }) {
        return Err(cx.err(
            at,
            format!("{code} cannot be an answer with data"),
            "list 2xx, 4xx or 5xx statuses other than 401, 403 and 429 (those keep their meaning: a refused token, a rate limit); redirects are never followed",
        ));
    }
    Ok(codes.to_vec())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    ca_file: Option<PathBuf>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    /// Read only to refuse it by name: verification cannot be turned off.
    insecure_skip_verify: Option<toml::Value>,
}

pub(super) fn tls(cx: &mut KindContext<'_, '_>, raw: &RawTls) -> Result<Tls, ConfigError> {
    if raw.insecure_skip_verify.is_some() {
        return Err(cx.err(
            "tls.insecure_skip_verify",
            "certificate verification cannot be turned off: a token sent to an unverified server can be read by whoever answers",
            "give the CA that signed the API's certificate: tls.ca_file = \"/etc/mining-exporter/api-ca.pem\"",
        ));
    }
    let ca_pem = match &raw.ca_file {
        None => None,
        Some(path) => {
            let pem = cx.read_file("tls.ca_file", path)?;
            if reqwest::Certificate::from_pem_bundle(&pem).map_or(true, |certs| certs.is_empty()) {
                return Err(cx.err(
                    "tls.ca_file",
                    format!("{} holds no PEM certificate", path.display()),
                    "give the CA certificate(s) in PEM (-----BEGIN CERTIFICATE-----)",
                ));
            }
            Some(pem)
        }
    };
    let identity = match (&raw.cert_file, &raw.key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let chain = cx.read_file("tls.cert_file", cert)?;
            let (key, _) = cx.secret("tls.key", None, Some(key))?;
            match key {
                Some(key) => {
                    let mut pem = chain.clone();
                    pem.push(b'\n');
                    pem.extend_from_slice(key.expose().as_bytes());
                    if reqwest::Identity::from_pem(&pem).is_err() {
                        return Err(cx.err(
                            "tls.cert_file",
                            "the certificate and key files do not make a client identity",
                            "give the client certificate (PEM) in cert_file and its private key (PEM, PKCS#8, RSA or SEC1) in key_file",
                        ));
                    }
                    Some((chain, key))
                }
                // `check` could not read the key; the run will say so.
                None => None,
            }
        }
        _ => {
            return Err(cx.err(
                "tls.cert_file",
                "a client certificate needs both cert_file and key_file",
                "give both, or neither",
            ));
        }
    };
    if ca_pem.is_none() && identity.is_none() && raw.key_file.is_none() {
        return Err(cx.err(
            "tls",
            "an empty [sources.tls]",
            "give ca_file, or cert_file and key_file, or remove the table",
        ));
    }
    Ok(SourceTls { ca_pem, identity })
}
