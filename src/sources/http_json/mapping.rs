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

/// Sets `mapping`'s series from one page; returns how many items it selected (0 without
/// `items`), so pagination can tell an empty or short page.
pub(super) fn apply(mapping: &Mapping, page: &Value, snap: &mut Snapshot) -> Result<usize, String> {
    let name = mapping.family.name;
    let chains = chains(mapping, page);
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
/// chains than the page has values.
fn chains<'v>(mapping: &Mapping, page: &'v Value) -> Vec<Chain<'v>> {
    let mut chains: Vec<Chain<'v>> = vec![Vec::new()];
    for level in &mapping.items {
        let mut next = Vec::new();
        for chain in chains {
            let base = chain.last().map_or(page, |l| l.node);
            for found in level.path.query_located(base) {
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
    if mapping.items.is_empty() {
        vec![Vec::new()]
    } else {
        chains
    }
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
