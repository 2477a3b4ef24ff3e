//! Plan rules (seed 000 item 7.5 and §22; seed 004 §3.1): the shipped rule sets load and cover
//! every category and need, a bad rule is refused naming it, and generation is explainable,
//! incremental and idempotent.

use std::collections::BTreeMap;

use kamkor_domain::profile::Profile;
use kamkor_domain::rules::{
    ActivityStatus, CaseFacts, Condition, ExistingActivity, PlanChange, plan_changes,
};
use serde_json::{Map, Value, json};
use time::macros::date;

mod common;

use common::{KG, YUGRA, files};

fn kg() -> Profile {
    Profile::from_texts("profiles/tzhs-kg", &files(&KG)).expect("tzhs-kg loads")
}

fn yugra() -> Profile {
    Profile::from_texts("profiles/reentry-yugra", &files(&YUGRA)).expect("reentry-yugra loads")
}

fn causes(c: &Condition, key: &str, out: &mut Vec<String>) {
    match c {
        Condition::Category(x) if key == "category" => out.push(x.clone()),
        Condition::Circumstance(x) if key == "circumstance" => out.push(x.clone()),
        Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| causes(c, key, out)),
        _ => {}
    }
}

#[test]
fn plan_rules_cover_every_category_of_the_difficult_life_situation() {
    let p = kg();
    assert!(p.rules.plan("child_protection").is_some());
    assert!(p.rules.plan("family_work").is_some());
    let mut cats = Vec::new();
    for r in &p.rules.rules {
        causes(&r.when, "category", &mut cats);
    }
    for item in &p.classifier("dls_category").expect("categories").item {
        assert!(
            cats.contains(&item.code),
            "no rule is caused by category {}",
            item.code
        );
    }
    // Rules serve both plans.
    for plan in ["child_protection", "family_work"] {
        assert!(p.rules.rules.iter().any(|r| r.plan == plan), "{plan}");
    }
}

#[test]
fn plan_rules_of_yugra_cover_every_need() {
    let p = yugra();
    let mut needs = Vec::new();
    for r in &p.rules.rules {
        causes(&r.when, "circumstance", &mut needs);
        assert_eq!(r.plan, "resocialisation");
    }
    for item in &p.classifier("need").expect("needs").item {
        assert!(
            needs.contains(&item.code),
            "no rule answers need {}",
            item.code
        );
    }
}

fn broken(rule: &str) -> String {
    let base = files(&KG);
    let mut f = base.clone();
    let text = format!(
        "{}\n[[rule]]\ncode = \"broken_one\"\nversion = 1\nplan = \"child_protection\"\nactivity = {{ ru = \"x\" }}\ngoal = {{ ru = \"y\" }}\nagency_kind = \"territorial_unit\"\ndeadline_days = 5\n{rule}\n",
        base["plan_rules.toml"]
    );
    f.insert("plan_rules.toml".into(), text);
    let files: BTreeMap<String, String> = f;
    match Profile::from_texts("profiles/tzhs-kg", &files) {
        Ok(_) => panic!("the broken rule loaded: {rule}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn plan_rule_errors_name_the_rule_and_the_problem() {
    let e = broken("when = { category = \"CAT99\" }");
    assert!(e.contains("plan_rules.toml"), "{e}");
    assert!(e.contains("rule[broken_one].when.category"), "{e}");
    assert!(e.contains("CAT99"), "{e}");
    let e =
        broken("when = { all = [ { category = \"CAT01\" }, { person = \"age\", is = \"old\" } ] }");
    assert!(e.contains("rule[broken_one].when.all[1]"), "{e}");
    let e = broken("when = { answer = \"comprehensive.no_such_field\", is = \"high\" }");
    assert!(e.contains("no_such_field"), "{e}");
    let e = broken("when = { category = \"CAT01\", circumstance = \"C01\" }");
    assert!(e.contains("exactly one"), "{e}");
    let e = broken("when = { person = \"age\", at_least = 14, colour = \"red\" }");
    assert!(e.contains("colour"), "{e}");
    let e = broken("when = { any = [] }");
    assert!(e.contains("empty"), "{e}");
    let e = broken("when = { person = \"disability\", at_least = 2 }");
    assert!(e.contains("numbers"), "{e}");
    // A code used twice.
    let e = broken(
        "when = { category = \"CAT01\" }\n[[rule]]\ncode = \"broken_one\"\nversion = 1\nplan = \"child_protection\"\nactivity = { ru = \"x\" }\ngoal = { ru = \"y\" }\nagency_kind = \"territorial_unit\"\ndeadline_days = 5\nwhen = { category = \"CAT02\" }",
    );
    assert!(e.contains("twice"), "{e}");
    let e = broken("when = { category = \"CAT01\" }\nsurprise = 1");
    assert!(e.contains("surprise"), "{e}");
}

fn facts(categories: &[&str], circumstances: &[&str], age: i64) -> CaseFacts {
    let mut person = Map::new();
    person.insert("age".into(), Value::from(age));
    person.insert("sex".into(), Value::from("female"));
    person.insert("national_id".into(), Value::from("21234567890123"));
    person.insert("social_payments".into(), json!([]));
    person.insert("extra".into(), json!({}));
    CaseFacts {
        categories: categories.iter().map(|c| c.to_string()).collect(),
        circumstances: circumstances
            .iter()
            .map(|c| (c.to_string(), date!(2026 - 10 - 01)))
            .collect(),
        answers: BTreeMap::new(),
        person,
    }
}

/// Apply changes to an in-memory list the way the application does.
fn apply(p: &Profile, existing: &mut Vec<ExistingActivity>, changes: &[PlanChange]) {
    for c in changes {
        match c {
            PlanChange::Add { rule, .. } => {
                let r = &p.rules.rules[*rule];
                existing.push(ExistingActivity {
                    id: format!("a{}", existing.len()),
                    rule: Some((r.code.clone(), r.version)),
                    status: ActivityStatus::Planned,
                    retired_by_rules: false,
                    rule_due_on: None,
                });
            }
            PlanChange::Retire { id } => {
                let a = existing.iter_mut().find(|a| &a.id == id).expect("known");
                a.status = ActivityStatus::NoLongerNeeded;
                a.retired_by_rules = true;
            }
            PlanChange::Revive { id, .. } => {
                let a = existing.iter_mut().find(|a| &a.id == id).expect("known");
                a.status = ActivityStatus::Planned;
                a.retired_by_rules = false;
            }
            PlanChange::Reschedule { id, due_on } => {
                let a = existing.iter_mut().find(|a| &a.id == id).expect("known");
                a.rule_due_on = Some(*due_on);
            }
        }
    }
}

#[test]
fn plan_generation_is_explainable_idempotent_and_incremental() {
    let p = kg();
    let today = date!(2026 - 11 - 25);
    let f = facts(&["CAT04"], &["C01"], 10);
    let mut acts = Vec::new();
    let first = plan_changes(&p.rules, &f, &acts, today);
    assert!(!first.is_empty(), "a child of labour migrants gets a plan");
    for c in &first {
        let PlanChange::Add {
            rule,
            because,
            due_on,
        } = c
        else {
            panic!("only additions at first: {c:?}");
        };
        // Each activity names the facts that caused it.
        assert!(!because.is_empty(), "{}", p.rules.rules[*rule].code);
        assert!(*due_on >= today);
    }
    assert!(first.iter().any(|c| matches!(c, PlanChange::Add { because, .. } if because.iter().any(|b| b.fact == "category" && b.key == "CAT04"))));
    apply(&p, &mut acts, &first);
    // Twice: nothing more.
    assert!(plan_changes(&p.rules, &f, &acts, today).is_empty());

    // A manual activity and a finished one are never touched.
    acts.push(ExistingActivity {
        id: "manual".into(),
        rule: None,
        status: ActivityStatus::Planned,
        retired_by_rules: false,
        rule_due_on: None,
    });
    let done_id = acts[0].id.clone();
    acts[0].status = ActivityStatus::Done;

    // The circumstance ends and the category goes: their activities are no longer needed.
    let gone = facts(&[], &[], 10);
    let second = plan_changes(&p.rules, &gone, &acts, today);
    assert!(!second.is_empty());
    for c in &second {
        match c {
            PlanChange::Retire { id } => {
                assert_ne!(id, "manual");
                assert_ne!(*id, done_id, "finished work is kept");
            }
            PlanChange::Add { rule, .. } => {
                // Rules caused by the absence of something may start to hold.
                let r = &p.rules.rules[*rule];
                assert!(format!("{:?}", r.when).contains("Not"), "{}", r.code);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    apply(&p, &mut acts, &second);
    assert!(plan_changes(&p.rules, &gone, &acts, today).is_empty());

    // The cause comes back: the retired activities are planned again, not duplicated.
    let third = plan_changes(&p.rules, &f, &acts, today);
    assert!(third.iter().any(|c| matches!(c, PlanChange::Revive { .. })));
    let before = acts.len();
    apply(&p, &mut acts, &third);
    assert!(
        acts.len()
            <= before
                + third
                    .iter()
                    .filter(|c| matches!(c, PlanChange::Add { .. }))
                    .count()
    );
    assert!(plan_changes(&p.rules, &f, &acts, today).is_empty());
}

#[test]
fn plan_generation_retires_activities_of_an_older_rule_version() {
    let p = kg();
    let today = date!(2026 - 11 - 25);
    let f = facts(&["CAT04"], &[], 10);
    let mut acts = Vec::new();
    let first = plan_changes(&p.rules, &f, &acts, today);
    apply(&p, &mut acts, &first);
    let code = acts[0].rule.clone().expect("generated").0;
    // The same rule at a version the file no longer holds.
    acts[0].rule = Some((code.clone(), 0));
    let changes = plan_changes(&p.rules, &f, &acts, today);
    assert!(changes.contains(&PlanChange::Retire {
        id: acts[0].id.clone()
    }));
    assert!(
        changes.iter().any(
            |c| matches!(c, PlanChange::Add { rule, .. } if p.rules.rules[*rule].code == code)
        )
    );
}

#[test]
fn plan_deadline_counts_from_the_release_date_in_yugra() {
    let p = yugra();
    let today = date!(2026 - 11 - 25);
    let mut f = facts(&[], &["N01"], 40);
    f.person
        .insert("extra".into(), json!({"release_date": "2026-12-20"}));
    let changes = plan_changes(&p.rules, &f, &[], today);
    let due = changes
        .iter()
        .find_map(|c| match c {
            PlanChange::Add { rule, due_on, .. }
                if p.rules.rules[*rule].deadline_from.is_some() =>
            {
                Some((*rule, *due_on))
            }
            _ => None,
        })
        .expect("a rule counting from the release date");
    let r = &p.rules.rules[due.0];
    assert_eq!(
        due.1,
        date!(2026 - 12 - 20) + time::Duration::days(i64::from(r.deadline_days))
    );
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever is written in the rules file, loading answers with a result, never a panic.
        #[test]
        fn plan_rules_parser_never_panics_on_any_text(text in "\\PC{0,400}") {
            let mut f = files(&KG);
            f.insert("plan_rules.toml".into(), text);
            let _ = Profile::from_texts("profiles/tzhs-kg", &f);
        }

        /// Conditions built from any keys and values are checked, not trusted.
        #[test]
        fn plan_rule_conditions_never_panic(
            key in prop::sample::select(vec!["category", "circumstance", "answer", "person", "all", "any", "not", "is", "in", "at_least", "below", "present", "x"]),
            value in prop::sample::select(vec!["\"CAT01\"", "\"C01\"", "\"comprehensive.safety_risk\"", "\"age\"", "[]", "[{ category = \"CAT01\" }]", "{ category = \"CAT02\" }", "14", "true", "\"\"", "\"extra.x\"", "[1, 2]"]),
            extra in prop::sample::select(vec!["", ", is = \"high\"", ", at_least = 3", ", in = [\"LS01\"]", ", present = false", ", below = \"x\""]),
        ) {
            let mut f = files(&KG);
            let rule = format!(
                "{}\n[[rule]]\ncode = \"fuzz\"\nversion = 1\nplan = \"child_protection\"\nactivity = {{ ru = \"x\" }}\ngoal = {{ ru = \"y\" }}\nagency_kind = \"territorial_unit\"\ndeadline_days = 1\nwhen = {{ {key} = {value}{extra} }}\n",
                f["plan_rules.toml"]
            );
            f.insert("plan_rules.toml".into(), rule);
            let _ = Profile::from_texts("profiles/tzhs-kg", &f);
        }
    }
}

#[test]
fn plan_deadlines_move_when_the_release_date_is_corrected() {
    let p = yugra();
    let today = date!(2026 - 11 - 25);
    let mut f = facts(&[], &["N01"], 40);
    f.person
        .insert("extra".into(), json!({"release_date": "2026-12-20"}));
    let first = plan_changes(&p.rules, &f, &[], today);
    let mut acts: Vec<ExistingActivity> = first
        .iter()
        .filter_map(|c| match c {
            PlanChange::Add { rule, due_on, .. } => {
                let r = &p.rules.rules[*rule];
                Some(ExistingActivity {
                    id: r.code.clone(),
                    rule: Some((r.code.clone(), r.version)),
                    status: ActivityStatus::Planned,
                    retired_by_rules: false,
                    rule_due_on: Some(*due_on),
                })
            }
            _ => None,
        })
        .collect();
    assert!(plan_changes(&p.rules, &f, &acts, today).is_empty());
    // The release was a week later than first recorded.
    f.person
        .insert("extra".into(), json!({"release_date": "2026-12-27"}));
    let moved = plan_changes(&p.rules, &f, &acts, today);
    assert!(!moved.is_empty());
    for c in &moved {
        let PlanChange::Reschedule { id, due_on } = c else {
            panic!("only deadlines move: {c:?}");
        };
        let r = p.rules.rule(id).expect("rule");
        assert_eq!(
            *due_on,
            date!(2026 - 12 - 27) + time::Duration::days(i64::from(r.deadline_days))
        );
    }
    apply(&p, &mut acts, &moved);
    assert!(plan_changes(&p.rules, &f, &acts, today).is_empty());
    // A deadline changed by hand is left alone.
    for a in &mut acts {
        a.rule_due_on = None;
    }
    f.person
        .insert("extra".into(), json!({"release_date": "2027-01-10"}));
    assert!(plan_changes(&p.rules, &f, &acts, today).is_empty());
}
