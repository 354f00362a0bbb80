//! Walking an endpoint's pages: by page number, by cursor (`has_more` + `next_cursor`), or
//! by the next page's address. Each page is one request through the budget. A walk that would
//! pass `max_pages`, repeat a cursor or address, or leave the API's origin (the token would go
//! with it) fails the poll instead of running on.

use std::collections::BTreeSet;

use serde_json::Value;

use super::config::{Endpoint, ErrorField, Pagination};
use super::select;
use crate::client::{ErrorProbe, Upstream, error_in};
use crate::error::PollError;

enum Next {
    First,
    Page(u64),
    Cursor(String),
    Url(reqwest::Url),
    Done,
}

pub(super) struct Pages<'e> {
    endpoint: &'e Endpoint,
    next: Next,
    /// The page number of the page last fetched.
    page: u64,
    fetched: u32,
    seen: BTreeSet<String>,
    origin: reqwest::Url,
    /// The address of the page last fetched: a next link is relative to it (RFC 3986).
    current: reqwest::Url,
}

impl<'e> Pages<'e> {
    pub(super) fn new(endpoint: &'e Endpoint, api: &Upstream) -> Result<Self, PollError> {
        let origin = reqwest::Url::parse(&format!("{}/", api.base_url()))
            .map_err(|e| PollError::decode(endpoint.name, format!("base_url: {e}")))?;
        Ok(Pages {
            endpoint,
            next: Next::First,
            page: 0,
            fetched: 0,
            seen: BTreeSet::new(),
            current: origin.clone(),
            origin,
        })
    }

    fn error(&self, detail: impl Into<String>) -> PollError {
        PollError::decode(self.endpoint.name, detail)
    }

    /// The next page, or `None` when the last one has been read.
    pub(super) async fn next(&mut self, api: &Upstream) -> Result<Option<Value>, PollError> {
        let endpoint = self.endpoint;
        if matches!(self.next, Next::Done) {
            return Ok(None);
        }
        if self.fetched >= endpoint.max_pages {
            return Err(self.error(format!(
                "the API has more than {} pages; one poll reads at most max_pages = {} (raise it, or ask for larger pages)",
                endpoint.max_pages, endpoint.max_pages
            )));
        }
        let mut query: Vec<(String, String)> = endpoint.query.clone();
        let size = match &endpoint.pagination {
            Pagination::Page { size, .. } | Pagination::Cursor { size, .. } => size.as_ref(),
            _ => None,
        };
        if let Some((param, n)) = size {
            query.push((param.clone(), n.to_string()));
        }
        let url = match std::mem::replace(&mut self.next, Next::Done) {
            Next::Done => return Ok(None),
            Next::Url(url) => url,
            next => {
                match (&endpoint.pagination, next) {
                    (Pagination::Page { param, first, .. }, Next::First) => {
                        self.page = *first;
                        query.push((param.clone(), first.to_string()));
                    }
                    (Pagination::Page { param, .. }, Next::Page(n)) => {
                        self.page = n;
                        query.push((param.clone(), n.to_string()));
                    }
                    (Pagination::Cursor { param, .. }, Next::Cursor(cursor)) => {
                        query.push((param.clone(), cursor));
                    }
                    _ => {}
                }
                let pairs: Vec<(&str, &str)> = query
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                api.url(&endpoint.path, &pairs)?
            }
        };
        self.current = url.clone();
        let probe = match endpoint.error {
            ErrorField::TopLevel => ErrorProbe::TopLevel,
            ErrorField::Off | ErrorField::At(_) => ErrorProbe::Off,
        };
        let page: Value = api.get_json_at_with(endpoint.name, url, probe).await?;
        self.fetched += 1;
        if let ErrorField::At(path) = &endpoint.error {
            let failure = select(path, &page)
                .map_err(|e| self.error(e))?
                .and_then(error_in);
            if let Some(message) = failure {
                return Err(self.error(format!(
                    "the API answered 200 with an error at {}: {}",
                    path.text,
                    api.pool_text(&message)
                )));
            }
        }
        Ok(Some(page))
    }

    /// Decides from the page just read (and how many items it held) what comes next.
    pub(super) fn read(&mut self, page: &Value, items: usize) -> Result<(), PollError> {
        let select = |path| select(path, page).map_err(|e| self.error(e));
        self.next = match &self.endpoint.pagination {
            Pagination::None => Next::Done,
            Pagination::Page {
                first, total_pages, ..
            } => {
                let read = self.page.saturating_sub(*first).saturating_add(1);
                let more = match total_pages {
                    Some(path) => match select(path)? {
                        Some(v) => {
                            read < page_count(v).ok_or_else(|| {
                                self.error(format!("{} is not a page count", path.text))
                            })?
                        }
                        None => false,
                    },
                    None => items > 0,
                };
                if more {
                    Next::Page(self.page.saturating_add(1))
                } else {
                    Next::Done
                }
            }
            Pagination::Cursor {
                has_more,
                next_cursor,
                ..
            } => {
                let more = match select(has_more)? {
                    None | Some(Value::Bool(false)) => false,
                    Some(Value::Bool(true)) => true,
                    Some(_) => {
                        return Err(self.error(format!("{} is not true or false", has_more.text)));
                    }
                };
                if !more {
                    Next::Done
                } else {
                    let cursor = match select(next_cursor)? {
                        Some(Value::String(s)) if !s.is_empty() => s.clone(),
                        Some(Value::Number(n)) => n.to_string(),
                        _ => {
                            return Err(self.error(format!(
                                "{} says there is more, and {} gives no cursor",
                                has_more.text, next_cursor.text
                            )));
                        }
                    };
                    if !self.seen.insert(cursor.clone()) {
                        return Err(self.error(
                            "the API gave a cursor it gave before; the walk would not end",
                        ));
                    }
                    Next::Cursor(cursor)
                }
            }
            Pagination::NextUrl { next_url } => match select(next_url)? {
                None => Next::Done,
                Some(Value::String(s)) if s.is_empty() => Next::Done,
                Some(Value::String(s)) => {
                    let url = self
                        .current
                        .join(s)
                        .map_err(|_| self.error(format!("{} is not an address", next_url.text)))?;
                    if url.origin() != self.origin.origin() {
                        return Err(self.error(format!(
                            "{} points away from base_url's origin; not followed, the token would go with it",
                            next_url.text
                        )));
                    }
                    if !self.seen.insert(url.to_string()) {
                        return Err(self.error(
                            "the API gave a next page it gave before; the walk would not end",
                        ));
                    }
                    Next::Url(url)
                }
                Some(_) => return Err(self.error(format!("{} is not an address", next_url.text))),
            },
        };
        Ok(())
    }
}

/// A page count as the API may send it: a whole number, or a numeric string.
fn page_count(v: &Value) -> Option<u64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (n.is_finite() && (0.0..=1e9).contains(&n) && n.fract() == 0.0).then_some(n as u64)
}
