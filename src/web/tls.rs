//! `tls_server_config`: the certificate, the client CA, the versions, suites and groups
//! rustls with ring is allowed to speak, checked with an error that names the key.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::RawTls;
use crate::error::ConfigError;

/// A `min_version`/`max_version` value.
fn tls_version(
    key: &str,
    value: &str,
    err: &dyn Fn(&str, String, &str) -> ConfigError,
) -> Result<&'static rustls::SupportedProtocolVersion, ConfigError> {
    match value {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(err(
            key,
            format!(
                "{value}: rustls speaks TLS 1.2 and 1.3 only, and this exporter will not serve older ones"
            ),
            "use TLS12 or TLS13",
        )),
        other => Err(err(
            key,
            format!("{other:?} is not a TLS version"),
            "use TLS12 or TLS13",
        )),
    }
}

/// The ring provider cut to the configured cipher suites (TLS 1.2's; TLS 1.3's are kept, as
/// exporter-toolkit keeps them) and key-exchange groups, in the configured order.
fn tls_provider(
    tls: &RawTls,
    err: &dyn Fn(&str, String, &str) -> ConfigError,
) -> Result<rustls::crypto::CryptoProvider, ConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(wanted) = &tls.cipher_suites {
        let all = provider.cipher_suites.clone();
        let mut suites: Vec<rustls::SupportedCipherSuite> = Vec::new();
        for (i, name) in wanted.iter().enumerate() {
            // Go names the ChaCha20 suites without their hash.
            let full = if name.ends_with("CHACHA20_POLY1305") {
                format!("{name}_SHA256")
            } else {
                name.clone()
            };
            let suite = all
                .iter()
                .find(|s| s.suite().as_str() == Some(full.as_str()) && s.version() == &rustls::version::TLS12)
                .ok_or_else(|| {
                    err(
                        &format!("tls_server_config.cipher_suites[{i}]"),
                        format!("rustls does not offer {name} (it has no CBC, RSA key exchange or TLS 1.3 names here)"),
                        "use ECDHE suites with AES-GCM or ChaCha20-Poly1305, e.g. TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                    )
                })?;
            suites.push(*suite);
        }
        suites.extend(
            all.iter()
                .filter(|s| s.version() == &rustls::version::TLS13),
        );
        provider.cipher_suites = suites;
    }
    if let Some(wanted) = &tls.curve_preferences {
        let all = provider.kx_groups.clone();
        let mut groups = Vec::new();
        for (i, name) in wanted.iter().enumerate() {
            let group = match name.as_str() {
                "X25519" => Some(rustls::NamedGroup::X25519),
                "CurveP256" => Some(rustls::NamedGroup::secp256r1),
                "CurveP384" => Some(rustls::NamedGroup::secp384r1),
                _ => None,
            }
            .and_then(|g| all.iter().find(|k| k.name() == g))
            .ok_or_else(|| {
                err(
                    &format!("tls_server_config.curve_preferences[{i}]"),
                    format!("rustls with ring does not offer {name}"),
                    "use X25519, CurveP256 or CurveP384",
                )
            })?;
            groups.push(*group);
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

pub(super) fn server_tls(
    tls: &RawTls,
    resolve: impl Fn(&str) -> PathBuf,
    err: &dyn Fn(&str, String, &str) -> ConfigError,
    http2: bool,
) -> Result<rustls::ServerConfig, ConfigError> {
    let pem_fix = "point it at a readable PEM file";
    if tls.client_allowed_sans.is_some() {
        return Err(err(
            "tls_server_config.client_allowed_sans",
            "matching client certificates by subject alternative name cannot be honoured here: rustls verifies the chain, not the names".into(),
            "remove it, and give the clients certificates from a CA of their own in client_ca_file",
        ));
    }
    let min = tls
        .min_version
        .as_deref()
        .map(|v| tls_version("tls_server_config.min_version", v, err))
        .transpose()?
        .unwrap_or(&rustls::version::TLS12);
    let max = tls
        .max_version
        .as_deref()
        .map(|v| tls_version("tls_server_config.max_version", v, err))
        .transpose()?
        .unwrap_or(&rustls::version::TLS13);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| {
                let rank = |v: &rustls::SupportedProtocolVersion| u16::from(v.version);
                rank(v) >= rank(min) && rank(v) <= rank(max)
            })
            .collect();
    if versions.is_empty() {
        return Err(err(
            "tls_server_config.max_version",
            "below min_version: no TLS version is left to serve".into(),
            "set max_version to min_version or later",
        ));
    }
    let cert_path = resolve(&tls.cert_file);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            err(
                "tls_server_config.cert_file",
                format!("cannot read certificates from {}: {e}", cert_path.display()),
                pem_fix,
            )
        })?;
    if certs.is_empty() {
        return Err(err(
            "tls_server_config.cert_file",
            format!("{} holds no certificate", cert_path.display()),
            pem_fix,
        ));
    }
    let key_path = resolve(&tls.key_file);
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        err(
            "tls_server_config.key_file",
            format!("cannot read a private key from {}: {e}", key_path.display()),
            pem_fix,
        )
    })?;
    let provider = Arc::new(tls_provider(tls, err)?);
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| {
            err(
                "tls_server_config.cipher_suites",
                e.to_string(),
                "keep at least one suite of each TLS version served",
            )
        })?;

    let auth_type = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let verify = match auth_type {
        "NoClientCert" => None,
        "VerifyClientCertIfGiven" => Some(true),
        "RequireAndVerifyClientCert" => Some(false),
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(err(
                "tls_server_config.client_auth_type",
                format!(
                    "{auth_type} accepts client certificates without verifying them, which this exporter does not offer"
                ),
                "use VerifyClientCertIfGiven or RequireAndVerifyClientCert with a client_ca_file",
            ));
        }
        other => {
            return Err(err(
                "tls_server_config.client_auth_type",
                format!("{other:?} is not a client auth type"),
                "use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert",
            ));
        }
    };
    let builder = match (verify, &tls.client_ca_file) {
        // exporter-toolkit refuses it too: a CA that no policy uses would look like client
        // certificates are checked while none is asked for.
        (None, Some(_)) => {
            return Err(err(
                "tls_server_config.client_auth_type",
                format!(
                    "client_ca_file is set but client_auth_type is {}: no client certificate would be asked for, let alone verified",
                    tls.client_auth_type
                        .as_deref()
                        .unwrap_or("not set (NoClientCert)")
                ),
                "set client_auth_type: RequireAndVerifyClientCert (or VerifyClientCertIfGiven), or remove client_ca_file",
            ));
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(err(
                "tls_server_config.client_ca_file",
                format!("{auth_type} needs the CA that signs client certificates"),
                "set client_ca_file to a PEM file of that CA",
            ));
        }
        (Some(optional), Some(ca)) => {
            let ca_path = resolve(ca);
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(&ca_path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    err(
                        "tls_server_config.client_ca_file",
                        format!("cannot read certificates from {}: {e}", ca_path.display()),
                        pem_fix,
                    )
                })?;
            for ca in cas {
                roots
                    .add(ca)
                    .map_err(|e| err("tls_server_config.client_ca_file", e.to_string(), pem_fix))?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if optional {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| err("tls_server_config.client_ca_file", e.to_string(), pem_fix))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        err(
            "tls_server_config.key_file",
            format!("the key does not fit the certificate: {e}"),
            "use the key the certificate was issued for",
        )
    })?;
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(false);
    Ok(config)
}
