//! Test support: arbitrary JSON shaped enough like a pool's answers to reach the parsers'
//! corners. Objects use the pools' real field names as well as random ones, and leaves are
//! every JSON kind, numbers as strings included, so the property tests exercise the lenient
//! decoding and the mapping code, not only serde's first type error.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Field names the three pools' parsers read, and their envelopes.
const KEYS: &[&str] = &[
    // Ultimate Proxy
    "hashrate",
    "current",
    "avg_1h",
    "avg_24h",
    "by_algorithm",
    "algorithm",
    "data",
    "pagination",
    "total_pages",
    "total",
    "_id",
    "name",
    "status",
    "hashrate_1h",
    "hashrate_24h",
    "accepted_shares",
    "rejected_shares",
    "last_share_at",
    "stats",
    "avg_hashrate",
    "peak_hashrate",
    "error",
    // OurPool
    "totalPaid",
    "balance",
    "rewards24h",
    "rewards7d",
    "rewards30d",
    "workers",
    "hashrate10m",
    "hashrate1h",
    "hashrate24h",
    "lastShareAt",
    "workersOnline",
    "workersOffline",
    // Luxor
    "groups",
    "subaccounts",
    "next_page_url",
    "hashrate_5m",
    "efficiency_5m",
    "uptime_24h",
    "active_miners",
    "revenue_24h",
    "revenue_all_time",
    "hashprice",
    "currency_type",
    "revenue_type",
    "revenue",
    "value",
    "id",
    "subaccount_name",
    "efficiency",
    "stale_shares",
    "last_share_time",
    // The shipped http_json examples
    "balances",
    "balance_amount",
    "available_amount",
    "frozen_amount",
    "balance_type",
    "hashrate_ths",
    "has_more",
    "next_cursor",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        // Numbers as pools send them in strings, and words where numbers belong.
        prop_oneof![
            any::<f64>().prop_map(|f| f.to_string()),
            Just("1e400".to_string()),
            Just("-0".to_string()),
            Just("NaN".to_string()),
            Just("2025-01-20T12:00:00Z".to_string()),
            Just("online".to_string()),
            Just("ACTIVE".to_string()),
            Just("/v2/pool/workers/BTC?page_number=0".to_string()),
            "\\PC{0,12}",
        ]
        .prop_map(Value::String),
    ]
}

/// Any JSON value, a few levels deep, whose objects mostly use the pools' field names.
pub fn pool_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        let key = prop_oneof![4 => proptest::sample::select(KEYS).prop_map(str::to_string), 1 => "[a-z_]{1,8}"];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key, inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Bytes a broken or hostile pool might send: arbitrary ones, and JSON cut short.
pub fn pool_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        (pool_json(), any::<prop::sample::Index>()).prop_map(|(value, cut)| {
            let text = value.to_string().into_bytes();
            let at = cut.index(text.len() + 1);
            text[..at].to_vec()
        }),
    ]
}

/// An object with the pools' field names: a worker, a summary, stats.
pub fn pool_object() -> impl Strategy<Value = Value> {
    // Mostly leaves: one field of the wrong shape fails a whole page, which is right but
    // would leave the mapping code rarely reached.
    let value = prop_oneof![6 => leaf(), 1 => pool_json()];
    proptest::collection::vec((proptest::sample::select(KEYS), value), 0..6).prop_map(|fields| {
        Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

/// Mostly `{"<list>": [objects...], "pagination": any}` (a page of a paginated list), now
/// and then any JSON at all.
pub fn pool_page(list: &'static str) -> impl Strategy<Value = Value> {
    let pagination = prop_oneof![Just(Value::Null), pool_object(), pool_json()];
    let page = (proptest::collection::vec(pool_object(), 0..6), pagination).prop_map(
        move |(items, pagination)| serde_json::json!({ list: items, "pagination": pagination }),
    );
    prop_oneof![4 => page, 1 => pool_json()]
}
