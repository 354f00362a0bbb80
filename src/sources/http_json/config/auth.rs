//! How a generic source authenticates: where the token travels, the headers it adds, and
//! the HMAC signing of a signed API.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Keys;
use crate::config::KindContext;
use crate::config::auth::{Auth, DEFAULT_MAX_CLOCK_SKEW, Signing, SigningScheme, TokenPlacement};
use crate::error::ConfigError;

/// Header names that carry credentials: those go in token_env/token_file or `signing`.
const CREDENTIAL_HEADER_WORDS: &[&str] = &[
    "authorization",
    "cookie",
    "token",
    "secret",
    "key",
    "password",
    "signature",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSigning {
    scheme: Option<String>,
    timestamp_param: Option<String>,
    signature_param: Option<String>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    max_clock_skew: Option<String>,
}

pub(super) fn auth(cx: &mut KindContext<'_, '_>, keys: &Keys) -> Result<Auth, ConfigError> {
    let style = keys.auth.as_deref().unwrap_or("header");
    let token = match style {
        "header" => {
            let name = keys.auth_header.as_deref().unwrap_or("X-API-Key");
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(cx.err(
                    "auth_header",
                    format!("{name:?} is not a header name"),
                    "write the header the API reads the key from, e.g. \"X-API-Key\"",
                ));
            }
            TokenPlacement::Header(name.to_string())
        }
        "bearer" => TokenPlacement::Bearer,
        "query" => {
            let param = keys.auth_param.as_deref().unwrap_or("api_key");
            if param.is_empty()
                || !param
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err(cx.err(
                    "auth_param",
                    format!("{param:?} is not a query parameter name"),
                    "write the parameter the API reads the key from, e.g. \"api_key\"",
                ));
            }
            TokenPlacement::Query(param.to_string())
        }
        other => {
            return Err(cx.err(
                "auth",
                format!("{other:?} is not a way to send the token"),
                "use \"header\" (auth_header names it, X-API-Key by default), \"bearer\" or \"query\" (auth_param names it)",
            ));
        }
    };
    for (key, applies) in [
        ("auth_header", style == "header"),
        ("auth_param", style == "query"),
    ] {
        if cx.has(key) && !applies {
            return Err(cx.err(
                key,
                format!("`{key}` does not apply to auth = {style:?}"),
                "remove it, or set the `auth` it belongs to",
            ));
        }
    }
    let headers = plain_headers(cx, "headers", keys.headers.as_ref())?;
    let signing = match &keys.signing {
        None => None,
        Some(raw) => {
            let (secret, secret_origin) = cx.secret(
                "signing.secret",
                raw.secret_env.as_deref(),
                raw.secret_file.as_ref(),
            )?;
            let max_clock_skew = match &raw.max_clock_skew {
                Some(text) => {
                    cx.duration("signing.max_clock_skew", text, Duration::from_secs(1))?
                }
                None => DEFAULT_MAX_CLOCK_SKEW,
            };
            let scheme = match raw.scheme.as_deref() {
                None | Some("headers") => {
                    for (k, set) in [
                        ("timestamp_param", raw.timestamp_param.is_some()),
                        ("signature_param", raw.signature_param.is_some()),
                    ] {
                        if set {
                            return Err(cx.err(
                                &format!("signing.{k}"),
                                format!("`{k}` belongs to scheme = \"query\""),
                                "remove it, or set scheme = \"query\"",
                            ));
                        }
                    }
                    SigningScheme::Headers
                }
                Some("query") => {
                    let param = |k: &str, value: &Option<String>, default: &str| {
                        let name = value.clone().unwrap_or_else(|| default.to_string());
                        if name.is_empty()
                            || !name
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                        {
                            return Err(cx.err(
                                &format!("signing.{k}"),
                                format!("{name:?} is not a query parameter name"),
                                "write the parameter's name, e.g. \"timestamp\"",
                            ));
                        }
                        Ok(name)
                    };
                    SigningScheme::Query {
                        timestamp_param: param(
                            "timestamp_param",
                            &raw.timestamp_param,
                            "timestamp",
                        )?,
                        signature_param: param(
                            "signature_param",
                            &raw.signature_param,
                            "signature",
                        )?,
                    }
                }
                Some(other) => {
                    return Err(cx.err(
                        "signing.scheme",
                        format!("{other:?} is not a signing scheme"),
                        "use \"headers\" (X-Timestamp, X-Nonce, X-Signature; the default) or \"query\" (timestamp and signature parameters, as Binance signs)",
                    ));
                }
            };
            Some(Signing {
                scheme,
                secret,
                secret_origin,
                max_clock_skew,
            })
        }
    };
    Ok(Auth {
        token,
        headers,
        signing,
    })
}

/// Headers written in the config (the source's, or one endpoint's under `at`): never a
/// credential, always a name and value HTTP can carry.
pub(super) fn plain_headers(
    cx: &KindContext<'_, '_>,
    at: &str,
    headers: Option<&BTreeMap<String, String>>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in headers.into_iter().flatten() {
        let lower = name.to_ascii_lowercase();
        if CREDENTIAL_HEADER_WORDS.iter().any(|w| lower.contains(w)) {
            return Err(cx.err(
                &format!("{at}.{name}"),
                "a header that carries a credential is never written in the config file",
                "send the key with token_env/token_file and auth = \"header\" (auth_header names the header), or sign with [sources.signing]",
            ));
        }
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(value).is_err()
        {
            return Err(cx.err(
                &format!("{at}.{name}"),
                "not a header name and value",
                "write headers = { \"X-Merchant-Id\" = \"123\" }",
            ));
        }
        out.push((name.clone(), value.clone()));
    }
    Ok(out)
}
