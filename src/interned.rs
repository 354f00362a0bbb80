//! Names that come from the config but must live as long as the process: the `pool` and
//! `endpoint` labels and the metric families of generic sources, which the rest of the
//! exporter holds as `&'static str` like the built-in ones. Each distinct name is kept once,
//! so reloading the same config does not grow the process.

use std::collections::BTreeSet;
use std::sync::Mutex;

static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// `name`, kept for the life of the process.
pub fn intern(name: &str) -> &'static str {
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(kept) = names.get(name) {
        return kept;
    }
    let kept: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(kept);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_kept_once() {
        let a = intern("interned-test-name");
        let b = intern(&String::from("interned-test-name"));
        assert!(std::ptr::eq(a, b));
    }
}
