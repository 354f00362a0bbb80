//! A source's own TLS: the CA its API's certificate must chain to, and the client
//! certificate it shows. There is no way to turn verification off.

use std::time::Duration;

use crate::secret::Secret;

/// The PEM text a source's `[sources.tls]` names, read at load so a reload sees a change.
#[derive(Clone, PartialEq)]
pub struct SourceTls {
    /// Trusted instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate chain and its key, PEM.
    pub identity: Option<(Vec<u8>, Secret)>,
}

impl std::fmt::Debug for SourceTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceTls")
            .field("ca", &self.ca_pem.as_ref().map(Vec::len))
            .field("client_certificate", &self.identity.is_some())
            .finish()
    }
}

/// A client like `http_client()`, trusting and showing what `tls` says.
pub fn http_client_with(tls: &SourceTls) -> Result<reqwest::Client, String> {
    super::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10));
    if let Some(pem) = &tls.ca_pem {
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("the CA file holds no usable certificate: {e}"))?;
        builder = builder.tls_certs_only(roots);
    }
    if let Some((chain, key)) = &tls.identity {
        let mut pem = chain.clone();
        pem.push(b'\n');
        pem.extend_from_slice(key.expose().as_bytes());
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|_| "the client certificate and key do not make an identity".to_string())?;
        builder = builder.identity(identity);
    }
    builder.build().map_err(|e| e.to_string())
}
