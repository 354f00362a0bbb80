//! Text with `{...}` fields, as a generic source's config writes it: label values that mix
//! fixed text with what the answer holds (`"{root:$.site}/{$.rack}"`, `"{key}"`), and query or
//! body values read from the clock (`"{yesterday}"`, `"{now-1h:%s}"`). `{{` and `}}` are
//! literal braces. Both are parsed once, at load, so a poll only fills them in.

use std::time::{Duration, SystemTime};

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use serde_json_path::JsonPath;

use super::config::Path;

/// Parents a label may reach up: one per level of `items` above the item.
pub const MAX_PARENT: usize = 3;

/// The pieces of a text: fixed runs, and the fields between braces.
fn pieces(text: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '{' => {
                let mut field = String::new();
                // JSONPath filters hold no braces, so the first '}' closes the field.
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => field.push(c),
                        None => return Err("a '{' is not closed (write {{ for a brace)".into()),
                    }
                }
                if !literal.is_empty() {
                    out.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                out.push(Piece::Field(field.trim().to_string()));
            }
            '}' => return Err("a '}' closes nothing (write }} for a brace)".into()),
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        out.push(Piece::Literal(literal));
    }
    Ok(out)
}

enum Piece {
    Literal(String),
    Field(String),
}

/// Where a label field reads: the item, one of the items it sits in, or the whole answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Item,
    /// 1: the item of the `items` level above, 2: the one above that, ...
    Parent(usize),
    Root,
}

/// What a label field reads there.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Path(Path),
    /// The member name (or list index) the item was found under.
    Key,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LabelPiece {
    Literal(String),
    Field(Level, Field),
}

/// A label value as written: fixed text, a JSONPath of the item (`"$.name"`), or a template.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelText {
    pub text: String,
    pub pieces: Vec<LabelPiece>,
}

impl LabelText {
    /// `text` read as a label value; `levels` is how many `items` levels the mapping has.
    pub fn parse(text: &str, levels: usize) -> Result<LabelText, String> {
        let pieces = if text.starts_with('$') && !text.contains('{') {
            vec![LabelPiece::Field(Level::Item, Field::Path(path(text)?))]
        } else {
            pieces(text)?
                .into_iter()
                .map(|piece| match piece {
                    Piece::Literal(text) => Ok(LabelPiece::Literal(text)),
                    Piece::Field(field) => label_field(&field, levels),
                })
                .collect::<Result<_, _>>()?
        };
        if pieces.is_empty() {
            return Err("an empty label value".into());
        }
        Ok(LabelText {
            text: text.to_string(),
            pieces,
        })
    }

    /// The fixed value, when the text has no fields.
    pub fn fixed(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [LabelPiece::Literal(text)] => Some(text),
            _ => None,
        }
    }
}

fn label_field(field: &str, levels: usize) -> Result<LabelPiece, String> {
    let (level, what) = match field.split_once(':') {
        Some((level, what)) if !level.starts_with('$') => (level.trim(), what.trim()),
        _ => ("", field),
    };
    let level = match level {
        "" | "item" => Level::Item,
        "root" => Level::Root,
        parent if parent.starts_with("parent") => {
            let n = match &parent["parent".len()..] {
                "" => 1,
                digits => digits
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PARENT).contains(n))
                    .ok_or_else(|| {
                        format!("{parent:?} is not a parent: write parent, parent2 or parent3")
                    })?,
            };
            if n >= levels.max(1) {
                return Err(format!(
                    "{{{field}}} reads {n} level(s) above the item, and `items` has {levels}: give `items` as a list, one path per level, e.g. items = [\"$.sites.*\", \"$.workers.*\"]"
                ));
            }
            Level::Parent(n)
        }
        other => {
            return Err(format!(
                "{other:?} is not a place to read from: use root:, parent: (parent2:, parent3:) or nothing for the item"
            ));
        }
    };
    let what = match what {
        "key" if level == Level::Root => {
            return Err("the document's root has no key".into());
        }
        "key" => Field::Key,
        path_text if path_text.starts_with('$') => Field::Path(path(path_text)?),
        other => {
            return Err(format!(
                "{{{other}}} is neither a JSONPath (starting with $) nor `key`"
            ));
        }
    };
    Ok(LabelPiece::Field(level, what))
}

fn path(text: &str) -> Result<Path, String> {
    JsonPath::parse(text)
        .map(|path| Path {
            text: text.to_string(),
            path,
        })
        .map_err(|e| format!("{text:?} is not a JSONPath: {e}"))
}

/// A query or body value, with fields read from the clock in UTC: `{now}` (RFC 3339),
/// `{today}` and `{yesterday}` (`%Y-%m-%d`), or `{now±N<s|m|h|d|w>:<strftime>}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockText {
    pieces: Vec<ClockPiece>,
}

#[derive(Debug, Clone, PartialEq)]
enum ClockPiece {
    Literal(String),
    /// Seconds from now (negative: before), and the strftime format.
    Time {
        offset: i64,
        format: String,
    },
}

impl ClockText {
    pub fn parse(text: &str) -> Result<ClockText, String> {
        let pieces = pieces(text)?
            .into_iter()
            .map(|piece| match piece {
                Piece::Literal(text) => Ok(ClockPiece::Literal(text)),
                Piece::Field(field) => clock_field(&field),
            })
            .collect::<Result<_, String>>()?;
        Ok(ClockText { pieces })
    }

    /// Whether the text reads the clock at all.
    pub fn is_fixed(&self) -> bool {
        self.pieces
            .iter()
            .all(|p| matches!(p, ClockPiece::Literal(_)))
    }

    pub fn render(&self, now: SystemTime) -> String {
        let now: DateTime<Utc> = now.into();
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                ClockPiece::Literal(text) => out.push_str(text),
                ClockPiece::Time { offset, format } => {
                    let at = now
                        .checked_add_signed(chrono::TimeDelta::seconds(*offset))
                        .unwrap_or(now);
                    // The format was checked at load: no item of it is an error.
                    out.push_str(&at.format(format).to_string());
                }
            }
        }
        out
    }
}

const RFC3339_SECONDS: &str = "%Y-%m-%dT%H:%M:%SZ";
const DATE: &str = "%Y-%m-%d";
/// Offsets past a year are a typo, not a query window.
const MAX_OFFSET: Duration = Duration::from_secs(400 * 86_400);

fn clock_field(field: &str) -> Result<ClockPiece, String> {
    let (when, format) = match field.split_once(':') {
        Some((when, format)) => (when.trim(), Some(format)),
        None => (field, None),
    };
    let (offset, default_format) = match when {
        "today" => (0, DATE),
        "yesterday" => (-86_400, DATE),
        "now" => (0, RFC3339_SECONDS),
        other => match other.strip_prefix("now") {
            Some(rest) if rest.starts_with(['+', '-']) => {
                let sign = if rest.starts_with('-') { -1 } else { 1 };
                let amount = rest.get(1..).unwrap_or_default();
                let unit_at = amount
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(amount.len());
                let (digits, unit) = amount.split_at(unit_at);
                let n: u64 = digits
                    .parse()
                    .map_err(|_| format!("{{{field}}}: {other:?} is not now±N<s|m|h|d|w>"))?;
                let seconds = match unit {
                    "s" => 1,
                    "m" => 60,
                    "h" => 3_600,
                    "d" => 86_400,
                    "w" => 604_800,
                    _ => return Err(format!("{{{field}}}: {unit:?} is not s, m, h, d or w")),
                };
                let offset = n.saturating_mul(seconds);
                if offset > MAX_OFFSET.as_secs() {
                    return Err(format!("{{{field}}}: more than 400 days from now"));
                }
                (sign * offset as i64, RFC3339_SECONDS)
            }
            _ => {
                return Err(format!(
                    "{{{field}}} is not a clock field: use {{now}}, {{today}}, {{yesterday}} or {{now-1d:%Y-%m-%d}} (write {{{{ for a brace)"
                ));
            }
        },
    };
    let format = format.unwrap_or(default_format).to_string();
    if format.is_empty() || StrftimeItems::new(&format).any(|item| matches!(item, Item::Error)) {
        return Err(format!("{{{field}}}: {format:?} is not a strftime format"));
    }
    Ok(ClockPiece::Time { offset, format })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(text).unwrap().into()
    }

    #[test]
    fn clock_fields_are_filled_in_utc() {
        let now = at("2026-03-01T00:30:05+02:00");
        let render = |t: &str| ClockText::parse(t).unwrap().render(now);
        assert_eq!(render("{today}"), "2026-02-28");
        assert_eq!(render("{yesterday}"), "2026-02-27");
        assert_eq!(render("{now}"), "2026-02-28T22:30:05Z");
        assert_eq!(render("{now-1h:%s}"), "1772314205");
        assert_eq!(render("from {now+1d:%d.%m.} {{x}}"), "from 01.03. {x}");
        assert_eq!(render("{now-2w:%Y%m%d}"), "20260214");
        assert!(ClockText::parse("plain").unwrap().is_fixed());
        for bad in [
            "{later}",
            "{now-1y}",
            "{now-:%s}",
            "{now:%Q}",
            "{today",
            "a}",
            "{now-999d}",
        ] {
            assert!(ClockText::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_texts_read_the_item_its_parents_the_root_or_keys() {
        let fields = |t: &str, levels| LabelText::parse(t, levels).map(|l| l.pieces);
        assert_eq!(
            LabelText::parse("beta", 1).unwrap().fixed(),
            Some("beta"),
            "fixed text"
        );
        let plain = fields("$.name", 1).unwrap();
        assert!(
            matches!(plain.as_slice(), [LabelPiece::Field(Level::Item, Field::Path(p))] if p.text == "$.name")
        );
        let mixed = fields("{root:$.site}/{parent:key}-{$.rack}", 2).unwrap();
        assert!(matches!(
            mixed.as_slice(),
            [
                LabelPiece::Field(Level::Root, Field::Path(_)),
                LabelPiece::Literal(slash),
                LabelPiece::Field(Level::Parent(1), Field::Key),
                LabelPiece::Literal(_),
                LabelPiece::Field(Level::Item, Field::Path(_)),
            ] if slash == "/"
        ));
        assert!(fields("{parent:key}", 1).is_err(), "no level above");
        assert!(fields("{parent3:key}", 4).is_ok());
        assert!(fields("{parent4:key}", 5).is_err(), "past MAX_PARENT");
        assert!(fields("{root:key}", 1).is_err());
        assert!(fields("{name}", 1).is_err());
        assert!(fields("{$.a[}", 1).is_err());
        assert!(fields("", 1).is_err());
        assert!(fields("{$.values[?@.state == 'ACTIVE'].id}", 1).is_ok());
    }
}
