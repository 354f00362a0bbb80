//! Several configs checked together, the exporters of many sites or of one group of tokens
//! each: two exporters reading one token keep a budget each, so together they spend the
//! pool's limit twice. No message built here holds a secret's value.

use super::Config;

/// A warning for each pair of sources in different configs that read the same token.
pub fn shared_secrets(configs: &[Config]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (i, first) in configs.iter().enumerate() {
        for second in configs.iter().skip(i + 1) {
            for a in &first.sources {
                for b in second.sources.iter().filter(|b| a.reads_same_token(b)) {
                    warnings.push(format!(
                        "{} source {:?} ({}) and {} source {:?} ({}) read the same token: two \
                         exporters on one token each keep their own budget and together exceed \
                         the pool's limit; give each token to one exporter only (docs/many-farms.md)",
                        first.file, a.name, a.token_origin, second.file, b.name, b.token_origin
                    ));
                }
            }
        }
    }
    warnings
}
