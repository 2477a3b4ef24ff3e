//! The two shipped profiles (`profiles/tzhs-kg`, `profiles/reentry-yugra`) load and validate,
//! hold the reference facts (shared/domain/REFERENCE.md A.10, B.4), and a broken copy gives an
//! error naming the file and the key to fix.

use std::collections::BTreeMap;

use kamkor_domain::profile::{PROFILE_FILES, Profile, ProfileError};
use time::macros::date;

mod common;

use common::{KG, YUGRA, files};

fn load(name: &str, files: &BTreeMap<String, String>) -> Result<Profile, ProfileError> {
    Profile::from_texts(&format!("profiles/{name}"), files)
}

fn kg() -> Profile {
    load("tzhs-kg", &files(&KG)).unwrap_or_else(|e| panic!("tzhs-kg must load: {e}"))
}

fn yugra() -> Profile {
    load("reentry-yugra", &files(&YUGRA)).unwrap_or_else(|e| panic!("reentry-yugra must load: {e}"))
}

/// REFERENCE A.10, level 1.
const KG_LEVEL1: [&str; 9] = [
    "41702000000000", // Иссык-Кульская область
    "41703000000000", // Джалал-Абадская область
    "41704000000000", // Нарынская область
    "41705000000000", // Баткенская область
    "41706000000000", // Ошская область
    "41707000000000", // Таласская область
    "41708000000000", // Чуйская область
    "41711000000000", // г. Бишкек
    "41721000000000", // г. Ош
];

/// REFERENCE A.10, level 2: (code, parent, kind) — every row of the table.
const KG_LEVEL2: [(&str, &str, &str); 56] = [
    ("41711201000000", "41711000000000", "city_district"),
    ("41711202000000", "41711000000000", "city_district"),
    ("41711203000000", "41711000000000", "city_district"),
    ("41711204000000", "41711000000000", "city_district"),
    ("41702205000000", "41702000000000", "district"),
    ("41702210000000", "41702000000000", "district"),
    ("41702215000000", "41702000000000", "district"),
    ("41702220000000", "41702000000000", "district"),
    ("41702225000000", "41702000000000", "district"),
    ("41702410000010", "41702000000000", "city_oblast"),
    ("41702420000010", "41702000000000", "city_oblast"),
    ("41703204000000", "41703000000000", "district"),
    ("41703207000000", "41703000000000", "district"),
    ("41703211000000", "41703000000000", "district"),
    ("41703215000000", "41703000000000", "district"),
    ("41703220000000", "41703000000000", "district"),
    ("41703223000000", "41703000000000", "district"),
    ("41703225000000", "41703000000000", "district"),
    ("41703230000000", "41703000000000", "district"),
    ("41703410000010", "41703000000000", "city_oblast"),
    ("41703420000010", "41703000000000", "city_oblast"),
    ("41703430000010", "41703000000000", "city_oblast"),
    ("41703440000010", "41703000000000", "city_oblast"),
    ("41704210000000", "41704000000000", "district"),
    ("41704220000000", "41704000000000", "district"),
    ("41704230000000", "41704000000000", "district"),
    ("41704235000000", "41704000000000", "district"),
    ("41704245000000", "41704000000000", "district"),
    ("41704400000010", "41704000000000", "city_oblast"),
    ("41705214000000", "41705000000000", "district"),
    ("41705236000000", "41705000000000", "district"),
    ("41705258000000", "41705000000000", "district"),
    ("41705410000010", "41705000000000", "city_oblast"),
    ("41705420000010", "41705000000000", "city_oblast"),
    ("41705430000010", "41705000000000", "city_oblast"),
    ("41706207000000", "41706000000000", "district"),
    ("41706211000000", "41706000000000", "district"),
    ("41706226000000", "41706000000000", "district"),
    ("41706242000000", "41706000000000", "district"),
    ("41706246000000", "41706000000000", "district"),
    ("41706255000000", "41706000000000", "district"),
    ("41706259000000", "41706000000000", "district"),
    ("41707215000000", "41707000000000", "district"),
    ("41707220000000", "41707000000000", "district"),
    ("41707225000000", "41707000000000", "district"),
    ("41707232000000", "41707000000000", "district"),
    ("41707400000010", "41707000000000", "city_oblast"),
    ("41708203000000", "41708000000000", "district"),
    ("41708206000000", "41708000000000", "district"),
    ("41708209000000", "41708000000000", "district"),
    ("41708213000000", "41708000000000", "district"),
    ("41708217000000", "41708000000000", "district"),
    ("41708219000000", "41708000000000", "district"),
    ("41708222000000", "41708000000000", "district"),
    ("41708223000000", "41708000000000", "district"),
    ("41708400000010", "41708000000000", "city_oblast"),
];

/// REFERENCE B.4: municipal districts.
const YUGRA_DISTRICTS: [&str; 9] = [
    "71811000", "71812000", "71816000", "71818000", "71819000", "71821000", "71824000", "71826000",
    "71829000",
];

/// REFERENCE B.4: urban okrugs.
const YUGRA_OKRUGS: [&str; 13] = [
    "71871000", "71872000", "71873000", "71874000", "71875000", "71876000", "71877000", "71878000",
    "71879000", "71883000", "71884000", "71885000", "71887000",
];

fn in_box(p: &Profile, lat: (f64, f64), lon: (f64, f64)) {
    for t in &p.territories {
        let [la, lo] = t.centroid;
        assert!(
            (lat.0..=lat.1).contains(&la) && (lon.0..=lon.1).contains(&lo),
            "centroid {:?} of {} ({}) is outside the box",
            t.centroid,
            t.code,
            t.name.ru
        );
    }
}

fn parents_first(p: &Profile) {
    for (i, t) in p.territories.iter().enumerate() {
        if t.parent.is_empty() {
            continue;
        }
        let pi = p
            .territories
            .iter()
            .position(|x| x.code == t.parent)
            .unwrap();
        assert!(pi < i, "parent {} of {} must come first", t.parent, t.code);
    }
}

fn statuses_set(p: &Profile) {
    for t in &p.territories {
        assert!(t.status.is_some(), "territory {} has no status", t.code);
    }
    for a in &p.agencies {
        assert!(a.status.is_some(), "agency {} has no status", a.code);
    }
    for c in &p.classifiers {
        assert_eq!(c.version, 1, "classifier {}", c.code);
        for it in &c.item {
            assert!(
                it.status.is_some(),
                "item {}.{} has no status",
                c.code,
                it.code
            );
        }
    }
}

// ------------------------------------------------------------------------------------- tzhs-kg

#[test]
fn kg_loads_with_its_meta() {
    let p = kg();
    assert_eq!(p.meta.name, "tzhs-kg");
    assert_eq!(p.meta.country, "KG");
    assert_eq!(p.meta.national_id, "kg_pin");
    assert_eq!(p.meta.org_inn, "kg_inn");
    assert_eq!(p.meta.case_number_prefix, "ТЖС");
    assert_eq!(p.meta.subject, "child");
    assert_eq!(p.meta.languages, ["ru", "ky", "en"]);
    assert!(!p.meta.sources.is_empty());
    statuses_set(&p);
}

#[test]
fn kg_territories_hold_every_soate_row_of_the_reference() {
    let p = kg();
    let root = p.root_territory().expect("a root");
    assert_eq!(root.code, "41700000000000");
    assert_eq!((root.level, root.kind.as_str()), (0, "country"));

    let level1: Vec<_> = p.territories.iter().filter(|t| t.level == 1).collect();
    assert_eq!(level1.len(), 9);
    for code in KG_LEVEL1 {
        let t = p
            .territory(code)
            .unwrap_or_else(|| panic!("{code} missing"));
        assert_eq!(t.level, 1);
        assert_eq!(t.parent, root.code);
        let kind = if code == "41711000000000" || code == "41721000000000" {
            "city_republican"
        } else {
            "oblast"
        };
        assert_eq!(t.kind, kind, "{code}");
        assert!(
            t.name.ky.is_some() && t.name.en.is_some(),
            "{code}: level-1 names in 3 languages"
        );
    }

    for (code, parent, kind) in KG_LEVEL2 {
        let t = p
            .territory(code)
            .unwrap_or_else(|| panic!("{code} missing"));
        assert_eq!(t.level, 2, "{code}");
        assert_eq!(t.parent, parent, "{code}");
        assert_eq!(t.kind, kind, "{code}");
    }
    let districts = p
        .territories
        .iter()
        .filter(|t| t.kind == "district")
        .count();
    assert!(districts >= 40, "only {districts} districts");
    assert_eq!(p.territories.len(), 1 + 9 + KG_LEVEL2.len());

    // Osh city has no sub-units in the reference: a leaf.
    assert!(
        p.leaf_territories()
            .iter()
            .any(|t| t.code == "41721000000000")
    );
    let path: Vec<_> = p
        .territory_path("41711201000000")
        .iter()
        .map(|t| t.code.as_str())
        .collect();
    assert_eq!(path, ["41700000000000", "41711000000000", "41711201000000"]);

    parents_first(&p);
    in_box(&p, (39.1, 43.3), (69.2, 80.3));
}

#[test]
fn kg_has_a_territorial_unit_for_every_district_and_city() {
    let p = kg();
    let m = p.agency("mtsom").expect("the ministry");
    assert_eq!(
        (m.kind.as_str(), m.territory.as_str()),
        ("ministry", "41700000000000")
    );
    let mut needed: Vec<&str> = KG_LEVEL2.iter().map(|(c, _, _)| *c).collect();
    needed.extend(["41711000000000", "41721000000000"]);
    for code in needed {
        let a = p
            .agency(&format!("opsd-{code}"))
            .unwrap_or_else(|| panic!("no territorial unit for {code}"));
        assert_eq!(a.kind, "territorial_unit");
        assert_eq!(a.territory, code);
        assert!(
            a.name.ru.starts_with("Отдел поддержки семьи и детей "),
            "{}",
            a.name.ru
        );
    }
    assert_eq!(
        p.agency("opsd-41702205000000").unwrap().name.ru,
        "Отдел поддержки семьи и детей Ак-Суйского района"
    );
    for kind in [
        "ministry",
        "territorial_unit",
        "kdd",
        "ayil_okmotu",
        "police",
        "health",
        "education",
        "social_fund",
        "ngo",
        "system_admin",
    ] {
        assert!(
            p.org_kinds.iter().any(|k| k.code == kind),
            "org kind {kind}"
        );
    }
}

#[test]
fn kg_classifiers_hold_the_reference_lists() {
    let p = kg();
    let count = |c: &str| p.classifier(c).unwrap_or_else(|| panic!("{c}")).item.len();
    assert_eq!(count("dls_category"), 16);
    assert_eq!(count("legal_status"), 12);
    assert_eq!(count("disability"), 6);
    assert_eq!(count("social_payment"), 10);
    assert_eq!(count("relation_kind"), 12);
    for c in [
        "citizenship",
        "relative_status",
        "identification_place",
        "identification_source",
        "housing_type",
        "property_kind",
        "family_type",
    ] {
        assert!(count(c) > 0, "{c}");
    }
    let cit = p.classifier("citizenship").unwrap();
    for code in ["KG", "RU", "KZ", "UZ", "TJ", "other", "stateless"] {
        assert!(cit.find(code).is_some(), "citizenship {code}");
    }
    // Resolution 156 in force ten days after publication on 28.03.2023.
    let cat01 = p.classifier("dls_category").unwrap().find("CAT01").unwrap();
    assert_eq!(cat01.valid_from, date!(2023 - 04 - 07));
    // «Бала ырысы» from 01.07.2026 (REFERENCE A.6 SP09).
    let sp09 = p
        .classifier("social_payment")
        .unwrap()
        .find("SP09")
        .unwrap();
    assert_eq!(sp09.valid_from, date!(2026 - 07 - 01));
    assert!(!sp09.valid_on(date!(2026 - 06 - 30)));
    assert!(sp09.valid_on(date!(2026 - 07 - 01)));
}

#[test]
fn kg_forms_define_the_extra_fields() {
    let p = kg();
    let child = p.form("child").expect("child form");
    assert_eq!(child.applies_to, "person");
    let codes: Vec<_> = child.section.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(codes, ["housing", "education_health", "documents"]);
    let field = |form: &str, code: &str| {
        p.form(form)
            .unwrap()
            .fields()
            .find(|(_, f)| f.code == code)
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| panic!("{form}.{code}"))
    };
    assert_eq!(
        field("child", "property_kinds").classifier.as_deref(),
        Some("property_kind")
    );
    assert_eq!(
        field("child", "housing_type").classifier.as_deref(),
        Some("housing_type")
    );
    assert_eq!(field("child", "birth_certificate_number").max_len, Some(20));
    assert_eq!(p.form("family").unwrap().applies_to, "family");
    assert_eq!(
        field("family", "family_type").classifier.as_deref(),
        Some("family_type")
    );
    assert_eq!(p.form("case").unwrap().applies_to, "case");
    field("case", "identification_circumstances");
    for form in p.forms.iter().filter(|f| f.applies_to != "assessment") {
        for s in &form.section {
            for owner in ["territorial_unit", "ayil_okmotu"] {
                assert!(
                    s.owners.iter().any(|o| o == owner),
                    "{}.{} owners",
                    form.code,
                    s.code
                );
            }
        }
    }
    // Core columns are not repeated in the forms.
    for core in [
        "surname",
        "given_name",
        "birth_date",
        "pin",
        "sex",
        "citizenship",
    ] {
        assert!(
            p.forms
                .iter()
                .all(|f| f.fields().all(|(_, fd)| fd.code != core)),
            "{core}"
        );
    }
}

// ------------------------------------------------------------------------------- reentry-yugra

#[test]
fn yugra_loads_with_its_meta() {
    let p = yugra();
    assert_eq!(p.meta.name, "reentry-yugra");
    assert_eq!(p.meta.country, "RU");
    assert_eq!(p.meta.national_id, "ru_snils");
    assert_eq!(p.meta.org_inn, "ru_inn");
    assert_eq!(p.meta.case_number_prefix, "РС");
    assert_eq!(p.meta.subject, "person");
    statuses_set(&p);
}

#[test]
fn yugra_territories_hold_all_municipalities() {
    let p = yugra();
    let root = p.root_territory().expect("a root");
    assert_eq!(
        (root.code.as_str(), root.level, root.kind.as_str()),
        ("71800000", 0, "okrug")
    );
    for (codes, kind) in [
        (&YUGRA_DISTRICTS[..], "municipal_district"),
        (&YUGRA_OKRUGS[..], "urban_okrug"),
    ] {
        for code in codes {
            let t = p
                .territory(code)
                .unwrap_or_else(|| panic!("{code} missing"));
            assert_eq!(
                (t.level, t.kind.as_str(), t.parent.as_str()),
                (1, kind, "71800000"),
                "{code}"
            );
        }
    }
    assert_eq!(
        p.territories
            .iter()
            .filter(|t| t.kind == "municipal_district")
            .count(),
        9
    );
    assert_eq!(
        p.territories
            .iter()
            .filter(|t| t.kind == "urban_okrug")
            .count(),
        13
    );
    assert_eq!(p.territories.len(), 1 + 9 + 13);
    assert_eq!(
        p.territory("71876000").unwrap().status.as_deref(),
        Some("V")
    );
    parents_first(&p);
    in_box(&p, (58.5, 66.0), (59.0, 86.0));
}

#[test]
fn yugra_agencies_cover_the_okrug_and_every_municipality() {
    let p = yugra();
    for kind in ["ufsin", "mvd", "dsr", "dtz", "dz", "operator"] {
        assert!(
            p.agencies
                .iter()
                .any(|a| a.kind == kind && a.territory == "71800000"),
            "no regional agency of kind {kind}"
        );
    }
    let op = p.agencies.iter().find(|a| a.kind == "operator").unwrap();
    assert!(op.name.ru.starts_with("Департамент внутренней политики"));
    for code in YUGRA_DISTRICTS.iter().chain(YUGRA_OKRUGS.iter()) {
        for (prefix, kind) in [("czn", "dtz"), ("kcson", "dsr")] {
            let a = p
                .agency(&format!("{prefix}-{code}"))
                .unwrap_or_else(|| panic!("no {prefix} in {code}"));
            assert_eq!((a.kind.as_str(), a.territory.as_str()), (kind, *code));
        }
    }
}

#[test]
fn yugra_classifiers_and_forms() {
    let p = yugra();
    let cls = |c: &str| p.classifier(c).unwrap_or_else(|| panic!("{c}"));
    assert_eq!(cls("need").item.len(), 16);
    assert_eq!(cls("service").item.len(), 16);
    assert_eq!(cls("penal_institution_type").item.len(), 9);
    assert_eq!(cls("supervision_restriction").item.len(), 5);
    for c in [
        "release_ground",
        "disability",
        "social_payment",
        "relation_kind",
        "relative_status",
    ] {
        assert!(!cls(c).item.is_empty(), "{c}");
    }
    assert!(
        cls("need")
            .item
            .iter()
            .all(|i| i.valid_from == date!(2020 - 09 - 11))
    );

    let form = p.form("released_person").expect("released_person form");
    assert_eq!(form.applies_to, "person");
    let owners: Vec<(&str, Vec<&str>)> = form
        .section
        .iter()
        .map(|s| {
            (
                s.code.as_str(),
                s.owners.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        owners,
        [
            ("prison_service", vec!["ufsin"]),
            ("police", vec!["mvd"]),
            ("social", vec!["dsr"]),
            ("employment", vec!["dtz"]),
            ("health", vec!["dz"]),
        ]
    );
    let field = |code: &str| {
        form.fields()
            .find(|(_, f)| f.code == code)
            .map(|(_, f)| f)
            .unwrap()
    };
    assert!(field("release_date").required);
    let r = field("reporting_per_month");
    assert_eq!((r.min, r.max), (Some(1), Some(4)));
    assert_eq!(
        field("restrictions").classifier.as_deref(),
        Some("supervision_restriction")
    );
    assert_eq!(
        field("institution_type").classifier.as_deref(),
        Some("penal_institution_type")
    );
    let case = p.form("case").expect("case form");
    assert_eq!(case.applies_to, "case");
    assert_eq!(case.section[0].code, "needs");
    for kind in ["ufsin", "mvd", "dsr", "dtz", "dz"] {
        assert!(
            case.section[0].owners.iter().any(|o| o == kind),
            "needs owner {kind}"
        );
    }
}

#[test]
fn every_profile_file_is_listed() {
    for (name, _) in KG.iter().chain(YUGRA.iter()) {
        assert!(PROFILE_FILES.contains(name));
    }
}

// -------------------------------------------------------------------------- broken copies

/// A copy of the tzhs-kg texts with `from` replaced (once) by `to` in `file`.
fn broken(file: &str, from: &str, to: &str) -> BTreeMap<String, String> {
    let mut f = files(&KG);
    let text = f.get_mut(file).unwrap();
    assert!(text.contains(from), "{file} does not contain {from:?}");
    *text = text.replacen(from, to, 1);
    f
}

fn expect_err(f: &BTreeMap<String, String>, file: &str, key: &str) -> ProfileError {
    let e = load("tzhs-kg", f).expect_err("the broken profile must be refused");
    assert!(e.file.ends_with(&format!("/{file}")), "file: {e}");
    assert!(e.file.starts_with("profiles/tzhs-kg/"), "file: {e}");
    assert_eq!(e.key, key, "{e}");
    e
}

#[test]
fn unknown_parent_territory_is_refused() {
    let good = kg();
    let i = good
        .territories
        .iter()
        .position(|t| t.code == "41702205000000")
        .unwrap();
    let f = broken(
        "territories.toml",
        "code = \"41702205000000\"\nparent = \"41702000000000\"",
        "code = \"41702205000000\"\nparent = \"41799999000000\"",
    );
    let e = expect_err(&f, "territories.toml", &format!("territory[{i}].parent"));
    assert!(e.problem.contains("41799999000000"), "{e}");
}

#[test]
fn form_field_with_unknown_classifier_is_refused() {
    let good = kg();
    let (fi, si, ki) = good
        .forms
        .iter()
        .enumerate()
        .flat_map(|(fi, f)| {
            f.section.iter().enumerate().flat_map(move |(si, s)| {
                s.field
                    .iter()
                    .enumerate()
                    .map(move |(ki, fd)| (fi, si, ki, fd))
            })
        })
        .find(|(_, _, _, fd)| fd.classifier.as_deref() == Some("family_type"))
        .map(|(fi, si, ki, _)| (fi, si, ki))
        .unwrap();
    let f = broken(
        "forms.toml",
        "classifier = \"family_type\"",
        "classifier = \"family_kind\"",
    );
    let e = expect_err(
        &f,
        "forms.toml",
        &format!("form[{fi}].section[{si}].field[{ki}].classifier"),
    );
    assert!(e.problem.contains("family_kind"), "{e}");
}

#[test]
fn duplicate_classifier_item_is_refused() {
    let good = kg();
    let ci = good
        .classifiers
        .iter()
        .position(|c| c.code == "dls_category")
        .unwrap();
    let ii = good.classifiers[ci]
        .item
        .iter()
        .position(|i| i.code == "CAT02")
        .unwrap();
    let f = broken("classifiers.toml", "code = \"CAT02\"", "code = \"CAT01\"");
    let e = expect_err(
        &f,
        "classifiers.toml",
        &format!("classifier[{ci}].item[{ii}].code"),
    );
    assert!(e.problem.contains("CAT01"), "{e}");
}

#[test]
fn syntax_error_names_the_file_and_line() {
    let text = KG[1].1;
    let line = text.lines().position(|l| l == "level = 0").unwrap() + 1;
    let f = broken("territories.toml", "level = 0", "level = = 0");
    expect_err(&f, "territories.toml", &format!("line {line}"));
}

#[test]
fn unknown_field_is_refused() {
    // deny_unknown_fields: a misspelt key is an error, not silently ignored.
    let f = broken(
        "profile.toml",
        "subject = \"child\"",
        "subject = \"child\"\nsubjekt = \"child\"",
    );
    let e = load("tzhs-kg", &f).expect_err("unknown key");
    assert!(e.file.ends_with("/profile.toml"), "{e}");
    assert!(e.key.starts_with("line "), "{e}");
}
