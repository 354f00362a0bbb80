//! How a source proves who it is: where its token goes, and for APIs that want it, an
//! HMAC-SHA256 signature of every request. The client carries these out; the kinds choose.

use std::time::Duration;

use crate::secret::Secret;

/// Where the token travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenPlacement {
    /// As the whole value of this header (`X-API-Key`, or Luxor's raw `authorization`).
    Header(String),
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// In this query parameter (OurPool's `?token=`); redacted wherever a URL is logged.
    Query(String),
}

/// Everything the client adds to a request to authenticate it.
#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    pub token: TokenPlacement,
    /// Headers sent with every request, not secret (a merchant id, an API version).
    pub headers: Vec<(String, String)>,
    pub signing: Option<Signing>,
}

impl Auth {
    pub fn token_in(token: TokenPlacement) -> Auth {
        Auth {
            token,
            headers: Vec::new(),
            signing: None,
        }
    }
}

/// The longest clock skew a signed API accepts when the config says nothing (LuxCore's replay
/// window, docs.lux-core.io/authentication).
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// HMAC-SHA256 request signing, in one of two schemes.
#[derive(Debug, Clone, PartialEq)]
pub struct Signing {
    pub scheme: SigningScheme,
    /// `None` only where `check` could not read it.
    pub secret: Option<Secret>,
    /// Where the secret comes from, safe to print.
    pub secret_origin: String,
    /// A response whose `Date` is further than this from our clock fails the poll as
    /// `clock_skew`: the API would refuse the signatures, and only the clock can be fixed.
    pub max_clock_skew: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningScheme {
    /// `X-Timestamp`, `X-Nonce`, `X-Signature-Version: v1` and `X-Signature:
    /// hmac_sha256=<hex>` over the canonical string (LuxCore's; see `crate::signing`).
    Headers,
    /// The query gains `timestamp_param` (Unix milliseconds), then `signature_param`: the
    /// hex HMAC of the query string as sent, and of the body after it (Binance's).
    Query {
        timestamp_param: String,
        signature_param: String,
    },
}
