//! "Did you mean": the nearest of a set of known names to one a person
//! typed, so a typo in a rule id or a setting names its fix.

/// The candidate nearest to `name` by Damerau-Levenshtein distance, when it
/// is near enough to be the one meant (at most 2 edits, or a fifth of the
/// candidate's length for long names), or the one that `name` is a part of
/// (`node-ip` for `livekit/node-ip`).
pub fn nearest<'s>(candidates: impl Iterator<Item = &'s str>, name: &str) -> Option<&'s str> {
    let candidates: Vec<&str> = candidates.collect();
    candidates
        .iter()
        .map(|k| (strsim::damerau_levenshtein(k, name), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 5) && *d < k.len())
        .min()
        .map(|(_, k)| k)
        .or_else(|| {
            let mut containing = candidates
                .iter()
                .filter(|k| !name.is_empty() && (k.contains(name) || name.contains(**k)));
            match (containing.next(), containing.next()) {
                (Some(only), None) => Some(*only),
                _ => None,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn a_typo_or_a_part_names_the_one_meant() {
        let rules = ["livekit/node-ip", "livekit/rtc-service", "livekit/urls"];
        assert_eq!(
            nearest(rules.into_iter(), "livekit/node_ip"),
            Some("livekit/node-ip")
        );
        assert_eq!(
            nearest(rules.into_iter(), "node-ip"),
            Some("livekit/node-ip")
        );
        assert_eq!(nearest(rules.into_iter(), "dns"), None);
        // Four edits from `livekit/node-ip` is another name, not a typo.
        assert_eq!(nearest(rules.into_iter(), "livekit/nope"), None);
        // Part of two: no guess.
        assert_eq!(nearest(rules.into_iter(), "livekit"), None);
    }
}
