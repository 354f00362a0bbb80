//! The `Link` header's `rel="next"` target (RFC 8288), as GitHub-style APIs page: the
//! address only, resolved and checked by the caller like any next page the API names.

use reqwest::header::{HeaderMap, LINK};

/// The first link whose relation types include `next`, in every `Link` header sent.
pub(super) fn next(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(next_in)
}

fn next_in(value: &str) -> Option<String> {
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let after_open = rest.strip_prefix('<')?;
        let close = after_open.find('>')?;
        let target = after_open.get(..close)?;
        rest = after_open.get(close + 1..)?;
        // The parameters run to the next comma outside a quoted string.
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == ',' && !quoted
            })
            .map_or(rest.len(), |(i, _)| i);
        let params = rest.get(..end)?;
        rest = rest.get(end..)?;
        let is_next = params.split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.trim().to_string());
        }
        if rest.is_empty() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link_among_others_in_any_layout() {
        let github = r#"<https://api.example.com/w?page=1>; rel="prev", <https://api.example.com/w?page=3>; rel="next", <https://api.example.com/w?page=9>; rel="last""#;
        assert_eq!(
            next_in(github).as_deref(),
            Some("https://api.example.com/w?page=3")
        );
        assert_eq!(next_in("</w?a=1,2>; rel=next").as_deref(), Some("/w?a=1,2"));
        assert_eq!(
            next_in(r#"</w?p=2>; title="a, b"; rel="next last""#).as_deref(),
            Some("/w?p=2")
        );
        assert_eq!(next_in(r#"</w?p=1>; rel="prev""#), None);
        assert_eq!(next_in("garbage"), None);
        assert_eq!(next_in("<unclosed; rel=next"), None);
        assert_eq!(next_in(""), None);
    }
}
