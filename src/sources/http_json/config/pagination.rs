//! How an endpoint pages (the `pagination` key), checked against the mappings it feeds;
//! `../pagination.rs` follows it at poll time.

use serde::Deserialize;

use super::{Mapping, Path, json_path};
use crate::config::KindContext;
use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq)]
pub enum Pagination {
    None,
    /// `param` = first, first + 1, ...; ends at `total_pages`, once `total_items` are read,
    /// or at a page with no items.
    Page {
        param: String,
        first: u64,
        size: Option<(String, u32)>,
        total_pages: Option<Path>,
        total_items: Option<Path>,
    },
    /// `param` = first, first + items read so far, ...; `size` items a page. Ends at a page
    /// short of `size`, or once `total_items` are read.
    Offset {
        param: String,
        first: u64,
        size: (String, u32),
        total_items: Option<Path>,
    },
    /// `param` = the last page's `next_cursor` while its `has_more` is true.
    Cursor {
        param: String,
        size: Option<(String, u32)>,
        has_more: Path,
        next_cursor: Path,
    },
    /// The address the last page's `next_url` gives, on the API's own origin.
    NextUrl {
        next_url: Path,
    },
    /// The address of the `Link: <...>; rel="next"` header, on the API's own origin.
    LinkHeader,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPagination {
    #[serde(rename = "type")]
    kind: String,
    param: Option<String>,
    first_page: Option<u64>,
    first_offset: Option<u64>,
    size_param: Option<String>,
    size: Option<u32>,
    total_pages: Option<String>,
    total_items: Option<String>,
    has_more: Option<String>,
    next_cursor: Option<String>,
    next_url: Option<String>,
}

pub(super) fn pagination(
    cx: &KindContext<'_, '_>,
    at: &str,
    raw: RawPagination,
    metrics: &[Mapping],
) -> Result<Pagination, ConfigError> {
    let key = |k: &str| format!("{at}.{k}");
    let path =
        |k: &str, text: &Option<String>, default: Option<&str>| -> Result<Path, ConfigError> {
            match text.as_deref().or(default) {
                Some(text) => json_path(cx, &key(k), text),
                None => Err(cx.err(
                    &key(k),
                    format!("{} pagination needs `{k}`", raw.kind),
                    "give the JSONPath of it in each page, e.g. \"$.next\"",
                )),
            }
        };
    let size = match (&raw.size_param, raw.size) {
        (Some(param), Some(size)) if size > 0 => Some((param.clone(), size)),
        (None, None) => None,
        _ => {
            return Err(cx.err(
                &key("size"),
                "size_param and size go together, and size is above 0",
                "write both, e.g. size_param = \"limit\" and size = 100, or neither",
            ));
        }
    };
    let allowed: &[&str] = match raw.kind.as_str() {
        "none" => &[],
        "page" => &[
            "param",
            "first_page",
            "size_param",
            "size",
            "total_pages",
            "total_items",
        ],
        "offset" => &["param", "first_offset", "size_param", "size", "total_items"],
        "cursor" => &["param", "size_param", "size", "has_more", "next_cursor"],
        "next_url" => &["next_url"],
        "link_header" => &[],
        other => {
            return Err(cx.err(
                &key("type"),
                format!("{other:?} is not a kind of pagination"),
                "use \"none\", \"page\" (page numbers), \"offset\" (offset and limit), \"cursor\" (has_more + next_cursor), \"next_url\" or \"link_header\" (Link: <...>; rel=\"next\")",
            ));
        }
    };
    let set = [
        ("param", raw.param.is_some()),
        ("first_page", raw.first_page.is_some()),
        ("first_offset", raw.first_offset.is_some()),
        ("size_param", raw.size_param.is_some()),
        ("size", raw.size.is_some()),
        ("total_pages", raw.total_pages.is_some()),
        ("total_items", raw.total_items.is_some()),
        ("has_more", raw.has_more.is_some()),
        ("next_cursor", raw.next_cursor.is_some()),
        ("next_url", raw.next_url.is_some()),
    ];
    if let Some((k, _)) = set.iter().find(|(k, on)| *on && !allowed.contains(k)) {
        return Err(cx.err(
            &key(k),
            format!("`{k}` does not apply to {:?} pagination", raw.kind),
            &format!(
                "remove it; {:?} pagination takes: {}",
                raw.kind,
                if allowed.is_empty() {
                    "nothing".to_string()
                } else {
                    allowed.join(", ")
                }
            ),
        ));
    }
    let param = |default: &str| raw.param.clone().unwrap_or_else(|| default.to_string());
    let total_items = raw
        .total_items
        .as_deref()
        .map(|t| json_path(cx, &key("total_items"), t))
        .transpose()?;
    let no_items = metrics.iter().all(|m| m.items.is_empty());
    Ok(match raw.kind.as_str() {
        "none" => Pagination::None,
        "page" => {
            let total_pages = raw
                .total_pages
                .as_deref()
                .map(|t| json_path(cx, &key("total_pages"), t))
                .transpose()?;
            if total_pages.is_none() && no_items {
                return Err(cx.err(
                    &key("total_pages"),
                    "page pagination ends at total_pages or at a page with no items, and this endpoint has neither",
                    "give total_pages = \"$.<where the page count is>\", or `items` to a metric",
                ));
            }
            Pagination::Page {
                param: param("page"),
                first: raw.first_page.unwrap_or(1),
                size,
                total_pages,
                total_items,
            }
        }
        "offset" => {
            let Some(size) = size else {
                return Err(cx.err(
                    &key("size"),
                    "offset pagination asks for pages of a set size",
                    "give size_param = \"limit\" and size = 100 (or what the API allows)",
                ));
            };
            if no_items {
                return Err(cx.err(
                    &key("type"),
                    "offset pagination counts the items of each page, and no metric of this endpoint has `items`",
                    "give `items` to the metrics that read the list",
                ));
            }
            Pagination::Offset {
                param: param("offset"),
                first: raw.first_offset.unwrap_or(0),
                size,
                total_items,
            }
        }
        "link_header" => Pagination::LinkHeader,
        "cursor" => Pagination::Cursor {
            param: param("cursor"),
            size,
            has_more: path("has_more", &raw.has_more, Some("$.has_more"))?,
            next_cursor: path("next_cursor", &raw.next_cursor, Some("$.next_cursor"))?,
        },
        _ => Pagination::NextUrl {
            next_url: path("next_url", &raw.next_url, None)?,
        },
    })
}
