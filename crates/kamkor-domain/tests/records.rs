//! Record validation against the real tzhs-kg profile (seed 000 §18).

mod common;

use kamkor_domain::profile::Profile;
use kamkor_domain::records::{
    CaseDraft, FamilyDraft, PersonDraft, PersonRole, RelativeDraft, validate_case, validate_family,
    validate_person, validate_relation,
};
use serde_json::json;
use time::macros::date;

fn kg() -> Profile {
    Profile::from_texts("profiles/tzhs-kg", &common::files(&common::KG)).expect("profile")
}

const TODAY: time::Date = date!(2026 - 11 - 25);

fn girl() -> PersonDraft {
    PersonDraft {
        surname: "  Асанова ".into(),
        given_name: "Айпери".into(),
        sex: "female".into(),
        birth_date: "21.05.2014".into(),
        national_id: "12105201400012".into(),
        residence_territory: "41702205000000".into(),
        citizenship: "KG".into(),
        social_payments: vec!["SP05".into(), "SP05".into(), "".into()],
        ..Default::default()
    }
}

fn codes(e: kamkor_domain::records::Problems) -> Vec<(String, String)> {
    e.0.into_iter().map(|f| (f.field, f.code)).collect()
}

#[test]
fn a_valid_child_is_normalised() {
    let p = kg();
    let d = validate_person(&p, p.form("child"), PersonRole::Subject, &girl(), TODAY).unwrap();
    assert_eq!(d.surname, "Асанова");
    assert_eq!(d.birth_date, Some(date!(2014 - 05 - 21)));
    assert_eq!(
        d.social_payments,
        vec!["SP05".to_string()],
        "deduplicated, blanks dropped"
    );
}

/// seed 000 §18: the PIN must agree with sex and birth date.
#[test]
fn pin_disagreeing_with_sex_or_birth_date_is_refused() {
    let p = kg();
    let mut d = girl();
    d.national_id = "22105201400012".into();
    let e = validate_person(&p, None, PersonRole::Subject, &d, TODAY).unwrap_err();
    assert_eq!(
        codes(e),
        vec![("national_id".into(), "id_sex_mismatch".into())]
    );
    d.national_id = "12205201400012".into();
    let e = validate_person(&p, None, PersonRole::Subject, &d, TODAY).unwrap_err();
    assert_eq!(
        codes(e),
        vec![("national_id".into(), "id_birth_date_mismatch".into())]
    );
    d.national_id = "1210520140001".into();
    let e = validate_person(&p, None, PersonRole::Subject, &d, TODAY).unwrap_err();
    assert_eq!(
        codes(e),
        vec![("national_id".into(), "id_bad_length".into())]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = kg();
    let d = PersonDraft {
        surname: "Асанова1".into(),
        sex: "x".into(),
        birth_date: "2030-01-01".into(),
        residence_territory: "999".into(),
        disability: "D9".into(),
        ..Default::default()
    };
    let got = codes(validate_person(&p, None, PersonRole::Subject, &d, TODAY).unwrap_err());
    for want in [
        ("surname", "bad_name"),
        ("given_name", "required"),
        ("sex", "unknown_code"),
        ("birth_date", "future_date"),
        ("residence_territory", "unknown_territory"),
        ("disability", "unknown_code"),
    ] {
        assert!(
            got.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} in {got:?}"
        );
    }
}

#[test]
fn relatives_may_be_known_by_name_only() {
    let p = kg();
    let d = PersonDraft {
        surname: "Асанов".into(),
        given_name: "Нурлан".into(),
        sex: "male".into(),
        ..Default::default()
    };
    assert!(validate_person(&p, None, PersonRole::Relative, &d, TODAY).is_ok());
    assert!(validate_person(&p, None, PersonRole::Subject, &d, TODAY).is_err());
    let r = RelativeDraft {
        relation_kind: "father".into(),
        relative_status: "labour_migrant".into(),
        ..Default::default()
    };
    assert_eq!(
        validate_relation(&p, &r, TODAY).unwrap().relative_status,
        "labour_migrant"
    );
    let bad = RelativeDraft {
        relation_kind: "uncle-in-law".into(),
        ..Default::default()
    };
    let got = codes(validate_relation(&p, &bad, TODAY).unwrap_err());
    assert!(got.contains(&("relation_kind".into(), "unknown_code".into())));
    assert!(got.contains(&("relative_status".into(), "required".into())));
}

#[test]
fn extra_fields_follow_the_form() {
    let p = kg();
    let mut d = girl();
    d.extra.insert("living_area_m2".into(), json!("42"));
    d.extra.insert("has_assigned_housing".into(), json!("true"));
    d.extra.insert("housing_type".into(), json!("rented"));
    let v = validate_person(&p, p.form("child"), PersonRole::Subject, &d, TODAY).unwrap();
    assert_eq!(v.extra["living_area_m2"], json!(42));
    assert_eq!(v.extra["has_assigned_housing"], json!(true));
    assert_eq!(v.extra["housing_type"], json!("rented"));
    let mut d = girl();
    d.extra.insert("no_such_field".into(), json!("x"));
    d.extra.insert("living_area_m2".into(), json!("сорок"));
    let got =
        codes(validate_person(&p, p.form("child"), PersonRole::Subject, &d, TODAY).unwrap_err());
    assert!(got.contains(&("extra.no_such_field".into(), "unknown_field".into())));
    assert!(got.contains(&("extra.living_area_m2".into(), "bad_number".into())));
}

#[test]
fn families_and_cases_validate() {
    let p = kg();
    let f = FamilyDraft {
        name: "Семья Асановых".into(),
        territory: "41702205000000".into(),
        ..Default::default()
    };
    assert!(validate_family(&p, p.form("family"), &f, TODAY).is_ok());
    let got = codes(validate_family(&p, None, &FamilyDraft::default(), TODAY).unwrap_err());
    assert!(got.contains(&("name".into(), "required".into())));
    assert!(got.contains(&("territory".into(), "required".into())));
    let c = CaseDraft {
        subject_kind: "child".into(),
        subject_id: "0191f1d0-0000-7000-8000-000000000000".into(),
        identified_on: "2026-11-20".into(),
        identification_territory: "41702205000000".into(),
        categories: vec!["CAT04".into(), "CAT03".into()],
        responsible_org: "opsd-41702205000000".into(),
        ..Default::default()
    };
    assert_eq!(
        validate_case(&p, None, &c, TODAY).unwrap().categories.len(),
        2
    );
    let mut bad = c.clone();
    bad.categories = vec!["CAT99".into()];
    bad.responsible_org = "nowhere".into();
    let got = codes(validate_case(&p, None, &bad, TODAY).unwrap_err());
    assert!(got.contains(&("categories".into(), "unknown_code".into())));
    assert!(got.contains(&("responsible_org".into(), "unknown_code".into())));
}

#[test]
fn a_release_notice_after_the_release_is_refused() {
    // Seed 004 / УИК РФ ст. 180: the notice of release is given before the release.
    let p = Profile::from_texts("profiles/reentry-yugra", &common::files(&common::YUGRA))
        .expect("profile");
    let form = p.form("released_person").expect("form");
    let values = |notice: &str| {
        std::collections::BTreeMap::from([
            ("release_date".to_string(), json!("2026-10-01")),
            ("notice_sent_date".to_string(), json!(notice)),
        ])
    };
    let mut problems = kamkor_domain::records::Problems::default();
    kamkor_domain::records::validate_extra(&p, form, &values("2026-04-01"), TODAY, &mut problems);
    assert!(problems.for_field("extra.notice_sent_date").is_none());
    let mut problems = kamkor_domain::records::Problems::default();
    kamkor_domain::records::validate_extra(&p, form, &values("2026-10-02"), TODAY, &mut problems);
    assert_eq!(
        problems
            .for_field("extra.notice_sent_date")
            .map(|e| e.code.as_str()),
        Some("after_linked_date")
    );
}
