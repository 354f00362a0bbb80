//! HMAC-SHA256 request signing, LuxCore's API v2 scheme (docs.lux-core.io/authentication): every
//! request carries `X-Timestamp` (Unix seconds), `X-Nonce` (fresh, 32 characters),
//! `X-Signature-Version: v1` and `X-Signature: hmac_sha256=<hex>`, the HMAC of the canonical
//! string under the signing secret.
//!
//! The vendor page lists the canonical string's parts but our copy lost their layout; the one
//! here is PROPOSED: the timestamp, the nonce, the upper-case method, the path with its query
//! exactly as sent, and the hex SHA-256 of the body, one per line.

use ring::{digest, hmac};

pub const TIMESTAMP: &str = "x-timestamp";
pub const NONCE: &str = "x-nonce";
pub const VERSION: &str = "x-signature-version";
pub const SIGNATURE: &str = "x-signature";
pub const VERSION_V1: &str = "v1";
const SIGNATURE_PREFIX: &str = "hmac_sha256=";

/// The string both sides sign.
pub fn canonical(
    timestamp: u64,
    nonce: &str,
    method: &str,
    path_with_query: &str,
    body: &[u8],
) -> String {
    format!(
        "{timestamp}\n{nonce}\n{}\n{path_with_query}\n{}",
        method.to_ascii_uppercase(),
        hex(digest::digest(&digest::SHA256, body).as_ref())
    )
}

/// The `X-Signature` value for `canonical` under `secret`.
pub fn signature(secret: &[u8], canonical: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    format!(
        "{SIGNATURE_PREFIX}{}",
        hex(hmac::sign(&key, canonical.as_bytes()).as_ref())
    )
}

/// The lower-case hex HMAC-SHA256 of `message` under `secret` (the query scheme's
/// signature parameter).
pub fn hex_hmac(secret: &[u8], message: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hex(hmac::sign(&key, message).as_ref())
}

/// Whether `header` is the signature of `canonical` under `secret`, compared in constant
/// time (the simulator's side).
pub fn verify(secret: &[u8], canonical: &str, header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix(SIGNATURE_PREFIX) else {
        return false;
    };
    let Some(tag) = unhex(hex_sig) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, canonical.as_bytes(), &tag).is_ok()
}

/// A fresh nonce: 32 letters and digits (the API takes 8 to 128).
pub fn nonce() -> String {
    std::iter::repeat_with(fastrand::alphanumeric)
        .take(32)
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_string_and_signature_match_an_independent_computation() {
        let c = canonical(
            1_700_000_000,
            "n0nce",
            "get",
            "/api/v2/balance?currency=ARS",
            b"",
        );
        assert_eq!(
            c,
            "1700000000\nn0nce\nGET\n/api/v2/balance?currency=ARS\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", "what do ya want for nothing?"),
            "hmac_sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let sig = signature(b"s3cret", &c);
        assert!(verify(b"s3cret", &c, &sig));
        assert!(!verify(b"other", &c, &sig));
        assert!(!verify(b"s3cret", &c.replace("ARS", "MXN"), &sig));
        assert!(!verify(b"s3cret", &c, "hmac_sha256=zz"));
    }

    #[test]
    fn nonces_are_fresh_and_within_the_allowed_length() {
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        assert!((8..=128).contains(&a.len()));
    }
}
