//! Name folding and matching never panic on any input and stay within their ranges (issue 6).

use kamkor_domain::matching::{fold, id_near, id_neighbours, name_score};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn folding_any_text_gives_plain_latin_words(s in "\\PC{0,60}") {
        let f = fold(&s);
        prop_assert!(f.chars().all(|c| c.is_ascii_lowercase() || c == ' '));
        prop_assert!(!f.starts_with(' ') && !f.ends_with(' ') && !f.contains("  "));
    }

    #[test]
    fn scores_stay_between_zero_and_one(a in "\\PC{0,30}", b in "\\PC{0,30}") {
        let s = name_score(&fold(&a), &fold(&b));
        prop_assert!((0.0..=1.0).contains(&s), "{s}");
        let f = fold(&a);
        if !f.is_empty() {
            prop_assert!(name_score(&f, &f) > 0.999);
        }
    }

    #[test]
    fn every_neighbour_of_an_identifier_is_near_it(id in "[0-9]{1,14}") {
        for n in id_neighbours(&id) {
            prop_assert!(id_near(&id, &n), "{id} {n}");
        }
    }
}
