//! The shipped profiles' texts, shared by the domain's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

pub type Texts = [(&'static str, &'static str); 6];

pub const KG: Texts = [
    (
        "profile.toml",
        include_str!("../../../../profiles/tzhs-kg/profile.toml"),
    ),
    (
        "territories.toml",
        include_str!("../../../../profiles/tzhs-kg/territories.toml"),
    ),
    (
        "organisations.toml",
        include_str!("../../../../profiles/tzhs-kg/organisations.toml"),
    ),
    (
        "classifiers.toml",
        include_str!("../../../../profiles/tzhs-kg/classifiers.toml"),
    ),
    (
        "forms.toml",
        include_str!("../../../../profiles/tzhs-kg/forms.toml"),
    ),
    (
        "plan_rules.toml",
        include_str!("../../../../profiles/tzhs-kg/plan_rules.toml"),
    ),
];

pub const YUGRA: Texts = [
    (
        "profile.toml",
        include_str!("../../../../profiles/reentry-yugra/profile.toml"),
    ),
    (
        "territories.toml",
        include_str!("../../../../profiles/reentry-yugra/territories.toml"),
    ),
    (
        "organisations.toml",
        include_str!("../../../../profiles/reentry-yugra/organisations.toml"),
    ),
    (
        "classifiers.toml",
        include_str!("../../../../profiles/reentry-yugra/classifiers.toml"),
    ),
    (
        "forms.toml",
        include_str!("../../../../profiles/reentry-yugra/forms.toml"),
    ),
    (
        "plan_rules.toml",
        include_str!("../../../../profiles/reentry-yugra/plan_rules.toml"),
    ),
];

pub fn files(texts: &Texts) -> BTreeMap<String, String> {
    texts
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect()
}
