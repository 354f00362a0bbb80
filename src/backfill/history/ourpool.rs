//! OurPool's history: the account's transactions (`/api/v1/accounts/{account}/transactions`,
//! newest first, PROPOSED paging by `page` and `limit`) become `mining_account_paid_total`
//! on the hour. The counter must meet the live one, which is the pool's `totalPaid`, so it
//! is counted back from there: at each hour, `totalPaid` less every payout after it. So the
//! walk reads every page from now back to the span's start, then `totalPaid`. An answer
//! without a page count is read page by page up to a short one; an API that answers every
//! page with the first fails the task, saying so.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{Collector, Discovery, Fetched, History, HistoryFuture, MAX_TASK_PAGES, Span, Task};
use crate::client::{Upstream, escape_path_segment};
use crate::error::PollError;
use crate::metrics::ACCOUNT_PAID_TOTAL;
use crate::sources::fields::{Items, Num, num, text, unix_seconds};
use crate::sources::ourpool::config::OurPoolConfig;
use crate::sources::ourpool::{REWARDS_STATS, RewardsStats};

const TRANSACTIONS: &str = "/api/v1/accounts/{account}/transactions";
/// The transaction type of a payout (OBS: the type third-party code filters on).
const PAYOUT: &str = "TX_TYPE_SCHEDULED_USER_MINING_REWARDS_WITHDRAWAL";
const PAGE_SIZE: &str = "100";
/// `PAGE_SIZE`, counted: a page with fewer is the last.
const PAGE_ITEMS: usize = 100;
const CURRENCY: &str = "BTC";
const HOUR: i64 = 3600;

pub struct OurPoolHistory {
    account: String,
}

impl OurPoolHistory {
    pub fn new(settings: &OurPoolConfig) -> Self {
        OurPoolHistory {
            account: settings.account.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct TransactionsPage {
    #[serde(default)]
    transactions: Items<Transaction>,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Debug, Deserialize)]
struct Pagination {
    #[serde(default)]
    total_pages: Option<Num>,
}

#[derive(Debug, Deserialize)]
struct Transaction {
    #[serde(default, deserialize_with = "text")]
    id: Option<String>,
    #[serde(default, rename = "createdAt", deserialize_with = "text")]
    created_at: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "text")]
    kind: Option<String>,
    #[serde(default)]
    value: Option<Num>,
}

impl OurPoolHistory {
    async fn fetch_task(
        &self,
        api: &Upstream,
        task: &Task,
        span: &Span,
    ) -> Result<Fetched, PollError> {
        let account = escape_path_segment(&self.account);
        let mut collect = Collector::new(task, span.now);
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut payouts: Vec<(f64, f64)> = Vec::new();
        let path = format!("/api/v1/accounts/{account}/transactions");
        // Every transaction id seen, payout or not: a page that brings none new is the same
        // page again (an API that ignores `page`).
        let mut listed: BTreeSet<String> = BTreeSet::new();
        let mut page: u32 = 1;
        loop {
            let number = page.to_string();
            let answer: TransactionsPage = api
                .get_json(
                    TRANSACTIONS,
                    &path,
                    &[("limit", PAGE_SIZE), ("page", &number)],
                )
                .await?;
            for _ in 0..answer.transactions.unreadable {
                collect.unreadable();
            }
            let on_page = answer.transactions.read.len() + answer.transactions.unreadable;
            let mut new_on_page = 0usize;
            let mut oldest = f64::INFINITY;
            for tx in answer.transactions.read {
                if let Some(id) = &tx.id {
                    if listed.insert(id.clone()) {
                        new_on_page += 1;
                    }
                }
                if tx.kind.as_deref() != Some(PAYOUT) {
                    continue;
                }
                let at = unix_seconds(tx.created_at.as_deref());
                let (Some(id), Some(at), Some(amount)) = (tx.id, at, num(tx.value)) else {
                    collect.unreadable();
                    continue;
                };
                if !amount.is_finite() || amount < 0.0 {
                    collect.unreadable();
                    continue;
                }
                oldest = oldest.min(at);
                if seen.insert(id) {
                    payouts.push((at, amount));
                } else {
                    collect.repeated();
                }
            }
            // Newest first: once a page reaches back before the span, the rest is older.
            if oldest < task.from as f64 {
                break;
            }
            match answer.pagination.and_then(|p| num(p.total_pages)) {
                Some(pages) if f64::from(page) >= pages => break,
                Some(_) => {}
                // No page count: a page short of the limit is the last one. A full page
                // that is the one before again means the API does not page, and what lies
                // past its first page cannot be read: counting back from totalPaid without
                // it would draw every hour before it wrong.
                None if on_page < PAGE_ITEMS => break,
                None if new_on_page == 0 && page > 1 => {
                    return Err(PollError::decode(
                        TRANSACTIONS,
                        format!(
                            "page {page} of the transactions is page {} again: the API does not page, and the payouts before its first page cannot be read",
                            page - 1
                        ),
                    ));
                }
                None => {}
            }
            if page >= MAX_TASK_PAGES * 10 {
                return Err(PollError::decode(
                    TRANSACTIONS,
                    format!("the transactions go on past {} pages", MAX_TASK_PAGES * 10),
                ));
            }
            page += 1;
        }
        let stats: RewardsStats = api
            .get_json(
                REWARDS_STATS,
                &format!("/api/v1/accounts/{account}/btc/rewards-stats"),
                &[],
            )
            .await?;
        let Some(total_paid) = num(stats.total_paid) else {
            return Err(PollError::decode(
                REWARDS_STATS,
                "totalPaid is missing: the history has nothing to count back from",
            ));
        };
        payouts.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Walking the hours from the newest down, taking off each payout made after it.
        let mut after = payouts.iter().rev().peekable();
        let mut paid_after = 0.0;
        let first = task.from.div_euclid(HOUR) * HOUR;
        let mut hour = (task.until - 1).div_euclid(HOUR) * HOUR;
        let mut hours = Vec::new();
        while hour >= first {
            while let Some((_, amount)) = after.next_if(|(at, _)| *at > hour as f64) {
                paid_after += amount;
            }
            hours.push((hour, total_paid - paid_after));
            hour -= HOUR;
        }
        let labels = [self.account.as_str(), CURRENCY];
        for (hour, value) in hours.into_iter().rev() {
            // Payouts after an hour that add up to more than all ever paid: the history
            // and totalPaid disagree, and neither can be trusted for that hour.
            if value < -1e-9 {
                collect.inconsistent();
            } else {
                collect.point(&ACCOUNT_PAID_TOTAL, &labels, hour as f64, value.max(0.0));
            }
        }
        Ok(collect.finish())
    }
}

impl History for OurPoolHistory {
    fn discover<'a>(&'a self, _: &'a Upstream, _workers: bool) -> HistoryFuture<'a, Discovery> {
        Box::pin(async { Ok(Discovery::default()) })
    }

    fn tasks(&self, _: &Discovery, span: &Span, _workers: bool) -> Vec<Task> {
        if span.from >= span.until {
            return Vec::new();
        }
        vec![Task {
            id: format!(
                "{TRANSACTIONS}|{}|{}|{}",
                self.account, span.from, span.until
            ),
            endpoint: TRANSACTIONS,
            subject: self.account.clone(),
            detail: String::new(),
            from: span.from,
            until: span.until,
            tick: HOUR,
            // At least one page and totalPaid; a page per 100 transactions back to the start.
            requests: 2,
        }]
    }

    fn fetch<'a>(
        &'a self,
        api: &'a Upstream,
        task: &'a Task,
        span: &'a Span,
    ) -> HistoryFuture<'a, Fetched> {
        Box::pin(self.fetch_task(api, task, span))
    }
}
