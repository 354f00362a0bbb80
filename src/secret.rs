//! A token that cannot be printed by accident: `Debug` and `Display` show a placeholder.

use std::fmt;

pub const REDACTED: &str = "[REDACTED]";

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The only way to read the value: call sites are easy to audit with grep.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret in `text`, for messages that echo input back:
    /// as it is, and percent-encoded the way a URL carries it (a pool that echoes the request
    /// URL echoes `?token=` encoded), with upper- or lower-case hex.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_string();
        }
        let mut out = text.replace(&self.0, REDACTED);
        for form in self.encoded_forms() {
            if form != self.0 {
                out = out.replace(&form, REDACTED);
            }
        }
        out
    }

    /// The secret as a query string carries it (form encoding leaves `*` alone), as a strict
    /// percent-encoder writes it (every byte but `A-Za-z0-9-._~`), and both in lower-case hex.
    fn encoded_forms(&self) -> Vec<String> {
        let encode = |keep: &dyn Fn(u8) -> bool| -> String {
            self.0
                .bytes()
                .map(|b| {
                    if keep(b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        let unreserved =
            |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        let form = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*');
        let upper = [encode(&unreserved), encode(&form)];
        let lower = upper.iter().map(|s| lower_hex(s));
        upper.clone().into_iter().chain(lower).collect()
    }
}

/// `s` with the hex digits of its `%XX` escapes in lower case.
fn lower_hex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escape = 0;
    for c in s.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_raw_and_percent_encoded_echoes() {
        let secret = Secret::new("ab+c/d=*~x");
        for echo in [
            "ab+c/d=*~x",
            "ab%2Bc%2Fd%3D%2A~x",
            "ab%2bc%2fd%3d%2a~x",
            "ab%2Bc%2Fd%3D*%7Ex",
            "ab%2bc%2fd%3d*%7ex",
        ] {
            let text = format!("denied for ?token={echo}&page=1");
            assert_eq!(
                secret.scrub(&text),
                "denied for ?token=[REDACTED]&page=1",
                "{echo}"
            );
        }
        assert_eq!(Secret::new("").scrub("as is"), "as is");
    }
}
