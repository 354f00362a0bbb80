//! Walking an endpoint's pages: by page number, by offset, by cursor (`has_more` +
//! `next_cursor`), or by the next page's address (in the answer, or in its `Link` header).
//! Each page is one request through the budget. A walk that would pass `max_pages`, repeat a
//! cursor or address, or leave the API's origin (the token would go with it) fails the poll
//! instead of running on. An answer with no document (a 204, an empty body) has no items and
//! ends the walk.

use std::collections::BTreeSet;

use serde_json::Value;

use super::config::{Endpoint, ErrorField, Pagination};
use super::select;
use crate::client::{Answer, Call, ErrorProbe, Upstream, error_in};
use crate::error::PollError;
use crate::sources::optional::OptionalEndpoints;

enum Next {
    First,
    Page(u64),
    Offset(u64),
    Cursor(String),
    Url(reqwest::Url),
    Done,
}

pub(super) struct Pages<'e> {
    endpoint: &'e Endpoint,
    next: Next,
    /// The page number (or offset) of the page last fetched.
    page: u64,
    /// Items read on the pages so far, against a `total_items`.
    items_read: u64,
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
            items_read: 0,
            fetched: 0,
            seen: BTreeSet::new(),
            current: origin.clone(),
            origin,
        })
    }

    fn error(&self, detail: impl Into<String>) -> PollError {
        PollError::decode(self.endpoint.name, detail)
    }

    /// The next page, or `None` when the last one has been read (or the optional endpoint
    /// is switched off).
    pub(super) async fn next(
        &mut self,
        api: &Upstream,
        optional: &OptionalEndpoints,
    ) -> Result<Option<Answer>, PollError> {
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
        let now = api.now();
        let mut query: Vec<(String, String)> = endpoint
            .query
            .iter()
            .map(|(k, v)| (k.clone(), v.render(now)))
            .collect();
        let size = match &endpoint.pagination {
            Pagination::Page { size, .. } | Pagination::Cursor { size, .. } => size.as_ref(),
            Pagination::Offset { size, .. } => Some(size),
            _ => None,
        };
        if let Some((param, n)) = size {
            query.push((param.clone(), n.to_string()));
        }
        let first = matches!(self.next, Next::First);
        let url = match std::mem::replace(&mut self.next, Next::Done) {
            Next::Done => return Ok(None),
            Next::Url(url) => url,
            next => {
                match (&endpoint.pagination, next) {
                    (Pagination::Page { param, first, .. }, Next::First)
                    | (Pagination::Offset { param, first, .. }, Next::First) => {
                        self.page = *first;
                        query.push((param.clone(), first.to_string()));
                    }
                    (Pagination::Page { param, .. }, Next::Page(n))
                    | (Pagination::Offset { param, .. }, Next::Offset(n)) => {
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
            ErrorField::Off | ErrorField::At(_) | ErrorField::Code { .. } => ErrorProbe::Off,
        };
        let body = endpoint
            .body
            .as_ref()
            .map(|b| serde_json::to_vec(&b.render(now)))
            .transpose()
            .map_err(|e| self.error(format!("the body: {e}")))?;
        let call = Call {
            method: &endpoint.method,
            body: body.as_deref(),
            headers: &endpoint.headers,
            statuses: &endpoint.statuses,
            probe,
        };
        let request = api.call(endpoint.name, url, &call);
        let answer = if endpoint.optional && first {
            match optional.ask(api, endpoint.name, request).await? {
                Some(answer) => answer,
                None => return Ok(None),
            }
        } else {
            request.await?
        };
        self.fetched += 1;
        if let Some(page) = &answer.document {
            self.check_error(api, answer.status, page)?;
        }
        Ok(Some(answer))
    }

    /// Fails the poll where the page says, inside a 200, that the request failed.
    fn check_error(&self, api: &Upstream, status: u16, page: &Value) -> Result<(), PollError> {
        let failure = match &self.endpoint.error {
            ErrorField::TopLevel | ErrorField::Off => None,
            ErrorField::At(path) => select(path, page)
                .map_err(|e| self.error(e))?
                .and_then(error_in)
                .map(|message| (path, message)),
            ErrorField::Code { path, ok, message } => {
                match select(path, page).map_err(|e| self.error(e))? {
                    Some(code) if !ok.iter().any(|good| same_code(good, code)) => {
                        let text = message
                            .as_ref()
                            .and_then(|m| select(m, page).ok().flatten())
                            .map(|m| match m {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .unwrap_or_else(|| "(no message)".to_string());
                        Some((path, format!("{code}: {text}")))
                    }
                    _ => None,
                }
            }
        };
        match failure {
            Some((path, message)) => Err(self.error(format!(
                "the API answered {status} with an error at {}: {}",
                path.text,
                api.pool_text(&message)
            ))),
            None => Ok(()),
        }
    }

    /// Decides from the answer just read (and how many items it held) what comes next.
    pub(super) fn read(&mut self, answer: &Answer, items: usize) -> Result<(), PollError> {
        let Some(page) = &answer.document else {
            self.next = Next::Done;
            return Ok(());
        };
        let items = u64::try_from(items).unwrap_or(u64::MAX);
        self.items_read = self.items_read.saturating_add(items);
        let select = |path: &super::config::Path| select(path, page).map_err(|e| self.error(e));
        // Whether a `total_items` the page gives says more are to come.
        let below_total = |path: &Option<super::config::Path>| -> Result<Option<bool>, PollError> {
            let Some(path) = path else {
                return Ok(None);
            };
            match select(path)? {
                Some(v) => Ok(Some(
                    self.items_read
                        < page_count(v).ok_or_else(|| {
                            self.error(format!("{} is not an item count", path.text))
                        })?,
                )),
                None => Ok(Some(false)),
            }
        };
        self.next = match &self.endpoint.pagination {
            Pagination::None => Next::Done,
            Pagination::Page {
                first,
                total_pages,
                total_items,
                ..
            } => {
                let read = self.page.saturating_sub(*first).saturating_add(1);
                let more = match (total_pages, below_total(total_items)?) {
                    (_, Some(more)) => more && items > 0,
                    (Some(path), None) => match select(path)? {
                        Some(v) => {
                            read < page_count(v).ok_or_else(|| {
                                self.error(format!("{} is not a page count", path.text))
                            })?
                        }
                        None => false,
                    },
                    (None, None) => items > 0,
                };
                if more {
                    Next::Page(self.page.saturating_add(1))
                } else {
                    Next::Done
                }
            }
            Pagination::Offset {
                size: (_, size),
                total_items,
                ..
            } => {
                let full = items >= u64::from(*size);
                let more = match below_total(total_items)? {
                    Some(more) => more && items > 0,
                    None => full,
                };
                if more {
                    Next::Offset(self.page.saturating_add(items))
                } else {
                    Next::Done
                }
            }
            Pagination::LinkHeader => match &answer.next_link {
                None => Next::Done,
                Some(link) => Next::Url(self.followed(link, "the Link header's next page")?),
            },
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
                Some(Value::String(s)) => Next::Url(self.followed(s, &next_url.text)?),
                Some(_) => return Err(self.error(format!("{} is not an address", next_url.text))),
            },
        };
        Ok(())
    }

    /// A next page's address, resolved against the page just fetched: only on the API's
    /// origin, and never one given before.
    fn followed(&mut self, link: &str, what: &str) -> Result<reqwest::Url, PollError> {
        let url = self
            .current
            .join(link)
            .map_err(|_| self.error(format!("{what} is not an address")))?;
        if url.origin() != self.origin.origin() {
            return Err(self.error(format!(
                "{what} points away from base_url's origin; not followed, the token would go with it"
            )));
        }
        if !self.seen.insert(url.to_string()) {
            return Err(
                self.error("the API gave a next page it gave before; the walk would not end")
            );
        }
        Ok(url)
    }
}

/// Whether a code the API sent is one the config lists as fine: numbers by value (0 is 0.0),
/// anything else as JSON.
fn same_code(good: &Value, code: &Value) -> bool {
    match (good, code) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Number(a), Value::String(b)) | (Value::String(b), Value::Number(a)) => {
            b.trim().parse::<f64>().ok() == a.as_f64()
        }
        _ => good == code,
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
