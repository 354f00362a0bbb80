//! A 2xx body decoded, off the async threads when it is large; and the readable part of an
//! error body, in any of the shapes the pools use.

use serde::de::DeserializeOwned;

use super::Read;

/// Bodies up to this size decode where they arrived; larger ones (a page of a thousand
/// workers is about 300 KiB, OurPool's whole list of 10,000 about 2 MiB) decode on the
/// blocking pool, so the async threads keep answering scrapes meanwhile.
const DECODE_INLINE_MAX: usize = 64 * 1024;

/// Runs `decode` (of a body `len` bytes long) where it belongs by that size.
pub(super) async fn off_async_threads<T: Send + 'static>(
    len: usize,
    decode: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    if len <= DECODE_INLINE_MAX {
        return decode();
    }
    tokio::task::spawn_blocking(decode)
        .await
        .unwrap_or_else(|_| Err("decoding the body panicked".to_string()))
}

/// What an answer is read as: a typed body (`Json`), or a generic source's `Answer`.
pub(crate) trait FromBody: Send + Sized + 'static {
    fn from_body(read: Read, probe: ErrorProbe) -> Result<Self, String>;
}

/// A 2xx body decoded as `T`; an empty body is not JSON.
pub(crate) struct Json<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromBody for Json<T> {
    fn from_body(read: Read, probe: ErrorProbe) -> Result<Self, String> {
        decode(&read.body, probe).map(Json)
    }
}

/// A generic source's answer: the status it came with, the document (`None` for a 204 or an
/// empty body, which an API sends for "nothing to list"), and the `Link` header's next page.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub document: Option<serde_json::Value>,
    pub next_link: Option<String>,
}

impl FromBody for Answer {
    fn from_body(read: Read, probe: ErrorProbe) -> Result<Self, String> {
        let empty =
            read.status == reqwest::StatusCode::NO_CONTENT || read.body.trim_ascii().is_empty();
        Ok(Answer {
            status: read.status.as_u16(),
            document: if empty {
                None
            } else {
                Some(decode(&read.body, probe)?)
            },
            next_link: read.next_link,
        })
    }
}

/// Where a 2xx answer says that it failed after all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorProbe {
    /// A top-level `error` of an object, as the pools send it (see `error_in`).
    #[default]
    TopLevel,
    /// Nowhere the client looks: the API has no such field, or the source reads its own.
    Off,
}

/// The failure a 2xx answer's error field holds: a non-empty string, or an object. `null`,
/// `false`, `0` and `""` say "no error", as APIs that always send the field do.
pub fn error_in(field: &serde_json::Value) -> Option<String> {
    match field {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        serde_json::Value::Object(fields) => Some(
            fields
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| field.to_string()),
        ),
        _ => None,
    }
}

/// Decodes a 2xx body. A 200 whose object carries an error is a failure, not empty data.
fn decode<T: DeserializeOwned>(body: &[u8], probe: ErrorProbe) -> Result<T, String> {
    #[derive(serde::Deserialize)]
    struct TopLevelError {
        #[serde(default)]
        error: Option<serde_json::Value>,
    }
    // Only an object has named fields: serde would read a one-element list's element as
    // the struct's first field.
    let object = body.trim_ascii_start().first() == Some(&b'{');
    if probe == ErrorProbe::TopLevel && object {
        if let Ok(TopLevelError { error: Some(e) }) = serde_json::from_slice(body) {
            if error_in(&e).is_some() {
                return Err(format!(
                    "the pool answered 200 with an error: {}",
                    error_message(body)
                ));
            }
        }
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}

/// The readable part of an error body, in any of the shapes the pools use:
/// `{"error":"..."}`, `{"error":{"message":"..."}}`, `{"message":"..."}`, or plain text.
pub fn error_message(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => {
            let pick = |v: &serde_json::Value| v.as_str().map(str::to_string);
            json.pointer("/error/message")
                .and_then(pick)
                .or_else(|| json.get("message").and_then(pick))
                .or_else(|| json.get("error").and_then(pick))
                .or_else(|| json.pointer("/error/code").and_then(pick))
                .or_else(|| json.get("code").and_then(pick))
                .unwrap_or_else(|| "(no message)".to_string())
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.trim().is_empty() {
        "(empty body)".to_string()
    } else {
        clean.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::redaction::{MAX_MESSAGE_CHARS, shorten};
    use crate::secret::Secret;

    #[test]
    fn reads_every_error_body_shape() {
        assert_eq!(
            error_message(br#"{"error":"Worker not found"}"#),
            "Worker not found"
        );
        assert_eq!(
            error_message(
                br#"{"error":{"code":"invalid_request","message":"Invalid parameters"}}"#
            ),
            "Invalid parameters"
        );
        assert_eq!(
            error_message(br#"{"statusCode":401,"error":"Unauthorized","message":"Invalid or missing API key"}"#),
            "Invalid or missing API key"
        );
        assert_eq!(
            error_message(br#"{"code":"auth.unexpected_error"}"#),
            "auth.unexpected_error"
        );
        assert_eq!(error_message(b"Bad Gateway\n"), "Bad Gateway");
        assert_eq!(error_message(b""), "(empty body)");
    }

    #[tokio::test]
    async fn large_bodies_decode_on_the_blocking_pool_with_the_same_outcome() {
        let big: Vec<u32> = (0..50_000).collect();
        let body = serde_json::to_vec(&big).unwrap();
        assert!(body.len() > DECODE_INLINE_MAX);
        let read = |body: Vec<u8>| async move {
            off_async_threads(body.len(), move || {
                decode::<Vec<u32>>(&body, ErrorProbe::TopLevel)
            })
            .await
        };
        let decoded = read(body.clone()).await.unwrap();
        assert_eq!(decoded, big);
        let small = read(b"[1,2]".to_vec()).await.unwrap();
        assert_eq!(small, [1, 2]);
        let cut = body[..body.len() - 1].to_vec();
        let broken = read(cut).await.unwrap_err();
        assert!(broken.starts_with("invalid JSON"), "{broken}");
    }

    #[test]
    fn a_204_or_an_empty_body_is_no_document_and_anything_else_is_json() {
        let read = |status: u16, body: &[u8]| Read {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            next_link: None,
            body: body.to_vec(),
        };
        for (status, body) in [(204, &b""[..]), (200, b""), (200, b" \n"), (204, b"{}")] {
            let answer = Answer::from_body(read(status, body), ErrorProbe::TopLevel).unwrap();
            assert_eq!(answer.document, None, "{status}");
        }
        let answer = Answer::from_body(read(200, b"{\"a\":1}"), ErrorProbe::TopLevel).unwrap();
        assert_eq!(answer.document, Some(serde_json::json!({"a": 1})));
        assert!(Answer::from_body(read(200, b"{"), ErrorProbe::TopLevel).is_err());
        assert!(
            Json::<serde_json::Value>::from_body(read(200, b""), ErrorProbe::TopLevel).is_err()
        );
    }

    #[test]
    fn a_200_with_an_error_field_is_not_data() {
        #[derive(serde::Deserialize, Debug)]
        struct Any {}
        assert!(
            decode::<Any>(br#"{"error":"Rate limit exceeded"}"#, ErrorProbe::TopLevel).is_err()
        );
        assert!(decode::<Any>(br#"{"error":null,"x":1}"#, ErrorProbe::TopLevel).is_ok());
        assert!(decode::<Any>(br#"{"x":"#, ErrorProbe::TopLevel).is_err());
        assert!(decode::<Any>(br#"{"error":{"code":"denied"}}"#, ErrorProbe::TopLevel).is_err());
    }

    #[test]
    fn only_a_named_error_in_an_object_fails_a_200() {
        // A one-element list is data, whatever the element is.
        for list in [
            &b"[false]"[..],
            b"[0]",
            b"[\"\"]",
            b"[\"down\"]",
            b"[{\"error\":\"x\"}]",
        ] {
            let read = decode::<serde_json::Value>(list, ErrorProbe::TopLevel);
            assert!(read.is_ok(), "{}: {read:?}", String::from_utf8_lossy(list));
        }
        // A flag or code saying "no error" is not an error.
        for none in [
            &br#"{"error":false,"x":1}"#[..],
            br#"{"error":0}"#,
            br#"{"error":""}"#,
        ] {
            let read = decode::<serde_json::Value>(none, ErrorProbe::TopLevel);
            assert!(read.is_ok(), "{}: {read:?}", String::from_utf8_lossy(none));
        }
    }

    mod properties {
        use super::*;
        use crate::sources::arbitrary::pool_bytes;
        use proptest::prelude::*;

        proptest! {
            /// Any body: decoded or refused, and its readable part scrubbed and cut on a
            /// character boundary, never a panic.
            #[test]
            fn any_body_decodes_or_fails_and_its_message_is_cut_safely(
                body in pool_bytes(),
                token in "\\PC{0,16}",
            ) {
                let _ = decode::<serde_json::Value>(&body, ErrorProbe::TopLevel);
                let secret = Secret::new(token);
                let shown = shorten(&secret.scrub(&error_message(&body)));
                prop_assert!(shown.chars().count() <= MAX_MESSAGE_CHARS + 3);
            }
        }
    }
}
