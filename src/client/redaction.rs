//! What a URL or a pool's text may show in errors and logs: credential-like query parameters
//! hidden, and text cut to a readable length (after the secrets are scrubbed out of it).

use crate::secret::REDACTED;

/// Query parameters whose values are hidden whenever a URL is logged.
const SENSITIVE_QUERY_KEYS: &[&str] = &[
    "token",
    "api_key",
    "apikey",
    "key",
    "access_token",
    "secret",
    "password",
];
/// Longest upstream error message kept in our errors and logs.
pub(super) const MAX_MESSAGE_CHARS: usize = 200;

/// At most `MAX_MESSAGE_CHARS` of `text`. Cut only after scrubbing: a token echoed across the
/// cut would otherwise leave its first characters behind.
pub(super) fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// The URL with the values of credential-like query parameters replaced.
pub fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let hide = SENSITIVE_QUERY_KEYS
                    .iter()
                    .any(|s| k.eq_ignore_ascii_case(s));
                (
                    k.into_owned(),
                    if hide {
                        REDACTED.to_string()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        shown.query_pairs_mut().clear().extend_pairs(pairs);
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_the_query() {
        let url = reqwest::Url::parse("https://ourpool.io/api/v1/x?limit=5&token=abc123").unwrap();
        let shown = redact_url(&url);
        assert!(!shown.contains("abc123"), "{shown}");
        assert!(shown.contains("limit=5"));
    }
}
