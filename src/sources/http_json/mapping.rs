//! One mapping applied to one page: its items found level by level, each item's labels
//! filled in from the item, its parents or the page, its value read, and the series set. A
//! label set already set this poll keeps its first value and is counted as a duplicate.

use serde_json::Value;

use super::config::{Case, LabelRule, Mapping, ValueSource};
use super::select;
use super::templates::{Field, LabelPiece, LabelText, Level};
use super::values::number;
use crate::metrics;
use crate::snapshot::{SKIP_DUPLICATE, Snapshot};

/// One level of an item: the node, and the member name or index it was found under.
struct Located<'v> {
    node: &'v Value,
    key: Option<String>,
}

/// An item with the items it sits in: outermost first, the item last.
type Chain<'v> = Vec<Located<'v>>;

/// Items one mapping may read from one page. A page of 100,000 workers is a large farm's
/// whole list; more is an API gone wrong, or levels of `items` that multiply.
pub(super) const MAX_ITEMS_PER_PAGE: usize = 200_000;

/// Sets `mapping`'s series from one page; returns how many items it selected (0 without
/// `items`), so pagination can tell an empty or short page.
pub(super) fn apply(mapping: &Mapping, page: &Value, snap: &mut Snapshot) -> Result<usize, String> {
    let name = mapping.family.name;
    let chains = chains(mapping, page, MAX_ITEMS_PER_PAGE).map_err(|n| {
        format!("{name}: more than {n} items on one page; not read (ask for smaller pages)")
    })?;
    let contract = metrics::pool_family(name).is_some();
    let mut labels = Vec::with_capacity(mapping.labels.len());
    for (n, chain) in chains.iter().enumerate() {
        let at = || {
            if mapping.items.is_empty() {
                name.to_string()
            } else {
                let levels: Vec<&str> = mapping.items.iter().map(|p| p.text.as_str()).collect();
                format!("{name}: item {n} of {}", levels.join(" then "))
            }
        };
        let item = chain.last().map_or(page, |l| l.node);
        let value = match &mapping.value {
            ValueSource::Fixed(n) => *n,
            ValueSource::Path(path) => {
                let Some(raw) = select(path, item).map_err(|e| format!("{}: {e}", at()))? else {
                    if mapping.optional {
                        continue;
                    }
                    return Err(format!(
                        "{}: {} selects no value (set optional = true where an item may lack it)",
                        at(),
                        path.text
                    ));
                };
                let unit = match &mapping.reading.unit_from {
                    Some(text) => Some(
                        render(text, chain, page)
                            .map_err(|e| format!("{}: unit_from: {e}", at()))?,
                    ),
                    None => None,
                };
                number(&mapping.reading, raw, unit.as_deref())
                    .map_err(|e| format!("{}: {}: {e}", at(), path.text))?
            }
        };
        labels.clear();
        for (label, rule) in mapping.family.labels.iter().zip(&mapping.labels) {
            let mut text = render(&rule.text, chain, page)
                .map_err(|e| format!("{}: label {label}: {e}", at()))?;
            text = transformed(rule, text);
            // The contract's dashboards and rules compare algorithms in lower case.
            if contract && *label == "algorithm" {
                text = text.to_lowercase();
            }
            labels.push(text);
        }
        let values: Vec<&str> = labels.iter().map(String::as_str).collect();
        if !snap.set_first(mapping.family, &values, value) {
            snap.note_skipped(SKIP_DUPLICATE, 1);
        }
    }
    Ok(if mapping.items.is_empty() {
        0
    } else {
        chains.len()
    })
}

/// Every item of `mapping` in `page`, with its parents: each level of `items` is read in
/// each item of the level before. Each chain ends at a distinct node, so there are no more
/// chains than the page has values; past `limit` at any level, `Err(limit)`.
fn chains<'v>(mapping: &Mapping, page: &'v Value, limit: usize) -> Result<Vec<Chain<'v>>, usize> {
    let mut chains: Vec<Chain<'v>> = vec![Vec::new()];
    for level in &mapping.items {
        let mut next = Vec::new();
        for chain in chains {
            let base = chain.last().map_or(page, |l| l.node);
            for found in level.path.query_located(base) {
                if next.len() >= limit {
                    return Err(limit);
                }
                let key = found.location().last().map(|element| match element {
                    serde_json_path::PathElement::Name(name) => name.to_string(),
                    serde_json_path::PathElement::Index(i) => i.to_string(),
                });
                let mut longer = Vec::with_capacity(chain.len() + 1);
                longer.extend(chain.iter().map(|l| Located {
                    node: l.node,
                    key: l.key.clone(),
                }));
                longer.push(Located {
                    node: found.node(),
                    key,
                });
                next.push(longer);
            }
        }
        chains = next;
    }
    Ok(chains)
}

/// A label text filled in for one item.
fn render(text: &LabelText, chain: &[Located<'_>], page: &Value) -> Result<String, String> {
    let mut out = String::new();
    for piece in &text.pieces {
        let (level, field) = match piece {
            LabelPiece::Literal(literal) => {
                out.push_str(literal);
                continue;
            }
            LabelPiece::Field(level, field) => (level, field),
        };
        let located = match level {
            Level::Root => None,
            Level::Item => chain.last(),
            Level::Parent(n) => chain.len().checked_sub(n + 1).and_then(|i| chain.get(i)),
        };
        let node = match (level, located) {
            (Level::Root, _) => page,
            (_, Some(l)) => l.node,
            // Only a mapping without `items` reads "the item" as the page.
            (Level::Item, None) => page,
            (Level::Parent(_), None) => return Err("the item has no parent there".into()),
        };
        match field {
            Field::Key => match located.and_then(|l| l.key.as_deref()) {
                Some(key) => out.push_str(key),
                None => return Err("{key} needs `items`: the page itself has no key".into()),
            },
            Field::Path(path) => match select(path, node)? {
                Some(Value::String(s)) => out.push_str(s),
                Some(Value::Number(n)) => out.push_str(&n.to_string()),
                Some(Value::Bool(b)) => out.push_str(&b.to_string()),
                Some(_) => {
                    return Err(format!("{} is not a string, number or boolean", path.text));
                }
                None => return Err(format!("{} selects nothing", path.text)),
            },
        }
    }
    Ok(out)
}

/// The rule's transforms, in order: trim, each replace, then the case.
fn transformed(rule: &LabelRule, mut text: String) -> String {
    if rule.trim {
        text = text.trim().to_string();
    }
    for replace in &rule.replace {
        text = replace
            .regex
            .replace_all(&text, replace.with.as_str())
            .into_owned();
    }
    match rule.case {
        Some(Case::Lower) => text.to_lowercase(),
        Some(Case::Upper) => text.to_uppercase(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::example_config;
    use crate::sources::http_json::HttpJsonConfig;
    use serde_json::json;

    /// A mapping of a generic block written here, parsed as the config would.
    fn mapping(keys: &str) -> Mapping {
        let text = format!(
            "[[sources]]\nkind = \"http_json\"\nname = \"t\"\nbase_url = \"http://127.0.0.1:1\"\ntoken_env = \"T_UNSET_FOR_TEST\"\nlimits = [\"10/1m\"]\n[[sources.endpoints]]\npath = \"/x\"\n[[sources.endpoints.metrics]]\n{keys}"
        );
        let config = crate::config::Config::parse(
            &text,
            "t.toml",
            std::path::Path::new("."),
            crate::config::SecretMode::WarnIfMissing,
            &crate::sources::KINDS,
        )
        .unwrap();
        let settings = config.sources[0]
            .settings
            .as_any()
            .downcast_ref::<HttpJsonConfig>()
            .unwrap();
        settings.endpoints[0].metrics[0].clone()
    }

    #[test]
    fn levels_of_items_carry_their_keys_and_parents_and_stop_at_the_cap() {
        let m = mapping(
            "name = \"mining_worker_up\"\nitems = [\"$.sites.*\", \"$.rigs[*]\"]\nvalue = 1\nlabels = { account = \"{parent:key}\", worker = \"{key}:{$.id}\" }\n",
        );
        let page = json!({"sites": {"eu": {"rigs": [{"id": "a"}, {"id": "b"}]}, "us": {"rigs": [{"id": "c"}]}}});
        let found = chains(&m, &page, 10).unwrap();
        let keys: Vec<(Option<&str>, Option<&str>)> = found
            .iter()
            .map(|c| (c[0].key.as_deref(), c[1].key.as_deref()))
            .collect();
        assert_eq!(
            keys,
            [
                (Some("eu"), Some("0")),
                (Some("eu"), Some("1")),
                (Some("us"), Some("0"))
            ]
        );
        assert_eq!(chains(&m, &page, 2).map(|c| c.len()), Err(2));
        let mut snap = Snapshot::new();
        assert_eq!(apply(&m, &page, &mut snap), Ok(3));
        assert_eq!(snap.get(m.family, &["eu", "1:b"]), Some(1.0));
        assert_eq!(snap.get(m.family, &["us", "0:c"]), Some(1.0));
    }

    #[test]
    fn a_label_that_selects_nothing_or_a_list_fails_the_page_with_its_path() {
        let m = mapping(
            "name = \"mining_worker_up\"\nitems = \"$.w[*]\"\nvalue = \"$.up\"\nlabels = { account = \"a\", worker = \"rig-{$.name}\" }\n",
        );
        let mut snap = Snapshot::new();
        let missing = apply(&m, &json!({"w": [{"up": 1}]}), &mut snap).unwrap_err();
        assert!(
            missing.contains("label worker: $.name selects nothing"),
            "{missing}"
        );
        let list = apply(&m, &json!({"w": [{"up": 1, "name": [1]}]}), &mut snap).unwrap_err();
        assert!(
            list.contains("$.name is not a string, number or boolean"),
            "{list}"
        );
    }

    #[test]
    fn the_contract_s_algorithm_is_lower_case_whatever_the_api_sends() {
        let m = mapping(
            "name = \"mining_account_hashrate_hashes_per_second\"\nitems = \"$[*]\"\nvalue = \"$.h\"\nlabels = { account = \"a\", algorithm = \"$.algo\" }\n",
        );
        let mut snap = Snapshot::new();
        apply(
            &m,
            &json!([{"h": 5, "algo": "SHA-256"}, {"h": 7, "algo": "Scrypt"}]),
            &mut snap,
        )
        .unwrap();
        assert_eq!(snap.get(m.family, &["a", "sha-256"]), Some(5.0));
        assert_eq!(snap.get(m.family, &["a", "scrypt"]), Some(7.0));
    }

    #[test]
    fn a_repeated_label_set_keeps_the_first_value_and_is_counted() {
        let m = mapping(
            "name = \"mining_worker_up\"\nitems = \"$[*]\"\nvalue = \"$.up\"\nlabels = { account = \"a\", worker = \"$.n\" }\n",
        );
        let mut snap = Snapshot::new();
        apply(
            &m,
            &json!([{"n": "x", "up": 1}, {"n": "x", "up": 0}, {"n": "y", "up": 0}]),
            &mut snap,
        )
        .unwrap();
        assert_eq!(snap.get(m.family, &["a", "x"]), Some(1.0));
        assert_eq!(snap.skipped().collect::<Vec<_>>(), [(SKIP_DUPLICATE, 1)]);
    }

    /// The example config's blocks and examples/pools/ must all parse: the proptest of
    /// `super::super` runs them on hostile pages.
    #[test]
    fn the_shipped_blocks_parse() {
        assert!(example_config().is_ok());
        // CloverPool's three endpoints, Binance's two and Braiins' two.
        assert_eq!(super::super::tests::pool_blocks().len(), 7);
    }
}
