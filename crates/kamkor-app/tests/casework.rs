//! Case work end to end through the use cases (issue 5 "How it will be checked"): open a case,
//! assess, add circumstances, see the plan generated with the rule named on each activity,
//! change a circumstance and see the plan follow, approve, record an activity and a visit,
//! suspend and resume, transfer, close — and the ledger replays it all. SQLite always,
//! PostgreSQL when `KAMKOR_TEST_PG` is set.

use std::collections::BTreeMap;

use kamkor_app::casework::{
    ActivityUpdate, AssessmentDraft, CircumstanceChange, CircumstanceDraft, StepDraft, VisitDraft,
};
use kamkor_app::{App, AppConfig, AppError, Ctx, NewUser};
use kamkor_domain::policy::Role;
use kamkor_domain::records::{CaseDraft, CaseStatus};
use kamkor_store::casework::CaseRecordRow;
use kamkor_store::{CaseQuery, CaseRow, Store};
use serde_json::Value;
use time::Duration;
use uuid::Uuid;

struct Env {
    name: &'static str,
    app: App,
    _dir: Option<tempfile::TempDir>,
}

fn profile(name: &str) -> kamkor_domain::profile::Profile {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles")
        .join(name);
    kamkor_app::load_profile(&dir).expect("profile")
}

async fn envs() -> Vec<Env> {
    envs_of("tzhs-kg").await
}

async fn envs_of(profile_name: &str) -> Vec<Env> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_sqlite_dir(dir.path()).await.expect("sqlite");
    out.push(("sqlite", store, Some(dir)));
    if let Ok(url) = std::env::var("KAMKOR_TEST_PG")
        && !url.is_empty()
    {
        let schema = format!("t_{}", Uuid::now_v7().simple());
        let store = Store::open_postgres_schema(&url, &schema)
            .await
            .expect("postgres");
        out.push(("postgres", store, None));
    }
    let mut envs = Vec::new();
    for (name, store, dir) in out {
        store.migrate().await.expect("migrate");
        let app = App::new(store, profile(profile_name), AppConfig::default());
        app.bind_profile().await.expect("bind");
        kamkor_app::demo::generate(&app, 12, 5, 0, |_| {})
            .await
            .expect("demo");
        envs.push(Env {
            name,
            app,
            _dir: dir,
        });
    }
    envs
}

async fn user(app: &App, login: &str, role: Role, scope: &str, org: &str) -> Ctx {
    let today = time::OffsetDateTime::now_utc().date();
    app.create_user(
        "system",
        &NewUser {
            login: login.into(),
            full_name: format!("{login} (test)"),
            roles: vec![role],
            organisation: org.into(),
            scope_territory: Some(scope.into()),
            valid_from: today - Duration::days(1),
            valid_until: Some(today + Duration::days(30)),
            password: Some("a long enough password 1".into()),
        },
    )
    .await
    .expect("user");
    let u = app
        .store
        .user_by_login(login)
        .await
        .expect("read")
        .expect("exists");
    app.system_ctx(u)
}

fn agency_for(app: &App, territory: &str) -> String {
    let p = &app.profile;
    p.agencies
        .iter()
        .filter(|a| a.kind == "territorial_unit" && p.territory_within(territory, &a.territory))
        .max_by_key(|a| p.territory_path(&a.territory).len())
        .map(|a| a.code.clone())
        .expect("a territorial unit")
}

/// Answers for every required field of an assessment form (first item of each classifier).
fn answers(app: &App, form: &str, set: &[(&str, &str)]) -> BTreeMap<String, Value> {
    let f = app.profile.form(form).expect("form");
    let mut out = BTreeMap::new();
    for (_, fd) in f.fields().filter(|(_, fd)| fd.required) {
        let v = match fd.classifier.as_deref() {
            Some(c) => app.profile.classifier(c).expect("cls").item[0].code.clone(),
            None => "false".into(),
        };
        out.insert(fd.code.clone(), Value::String(v));
    }
    for (k, v) in set {
        out.insert(k.to_string(), Value::String(v.to_string()));
    }
    out
}

/// A case opened today by `worker` on a child of the demo registry, with these categories:
/// the child, their district and the case.
async fn case_on_a_demo_child(
    app: &App,
    worker: &Ctx,
    categories: Vec<String>,
) -> (kamkor_store::PersonRow, String, CaseRow) {
    let any = app
        .store
        .list_cases(&CaseQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("cases")
        .remove(0);
    let child = app
        .store
        .person(any.data.subject_id)
        .await
        .expect("p")
        .expect("child");
    let territory = child.data.residence_territory.clone().expect("territory");
    let case = app
        .open_case(
            worker,
            &CaseDraft {
                subject_kind: "child".into(),
                subject_id: child.id.to_string(),
                identified_on: kamkor_domain::records::format_date(worker.today()),
                identification_territory: territory.clone(),
                categories,
                responsible_org: agency_for(app, &territory),
                ..CaseDraft::default()
            },
        )
        .await
        .expect("open");
    (child, territory, case)
}

async fn step(app: &App, ctx: &Ctx, case: &CaseRow, step: &str) -> Result<CaseRow, AppError> {
    let c = app.store.case(case.id).await.expect("read").expect("case");
    app.case_step(
        ctx,
        case.id,
        &StepDraft {
            step: step.into(),
            version: c.version,
            ..StepDraft::default()
        },
    )
    .await
}

fn code_of(e: AppError) -> String {
    match e {
        AppError::Invalid(p) => {
            p.0.iter()
                .map(|f| format!("{}:{}", f.field, f.code))
                .collect::<Vec<_>>()
                .join(",")
        }
        AppError::Forbidden(r) => format!("forbidden:{}", r.code()),
        other => format!("{other:?}"),
    }
}

async fn records(app: &App, case: &CaseRow, kind: &str) -> Vec<CaseRecordRow> {
    app.store
        .case_records(case.id, Some(kind))
        .await
        .expect("records")
}

#[tokio::test]
async fn a_case_goes_through_its_whole_life_and_the_plan_follows_the_facts() {
    for e in envs().await {
        let app = &e.app;
        let n = e.name;
        let root = app.profile.root_territory().expect("root").code.clone();
        let worker = user(app, "worker", Role::Specialist, &root, "").await;
        let boss = user(app, "boss", Role::Supervisor, &root, "").await;
        // A child of the demo registry, and a case opened on them today.
        let any = app
            .store
            .list_cases(&CaseQuery {
                limit: 1,
                ..Default::default()
            })
            .await
            .expect("cases")
            .remove(0);
        let child = app
            .store
            .person(any.data.subject_id)
            .await
            .expect("p")
            .expect("child");
        let territory = child.data.residence_territory.clone().expect("territory");
        let today = worker.today();
        let case = app
            .open_case(
                &worker,
                &CaseDraft {
                    subject_kind: "child".into(),
                    subject_id: child.id.to_string(),
                    identified_on: kamkor_domain::records::format_date(today),
                    identification_territory: territory.clone(),
                    // No category yet: the circumstance alone causes its activities.
                    categories: vec![],
                    responsible_org: agency_for(app, &territory),
                    ..CaseDraft::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{n}: open {e:?}"));
        assert_eq!(case.status, CaseStatus::Identified);
        assert_eq!(
            app.stage_due(&case).map(|d| d > today),
            Some(true),
            "{n}: the stage has a deadline"
        );

        // Steps out of order are refused with the reason.
        let e1 = step(app, &worker, &case, "activate_plan")
            .await
            .expect_err("not from here");
        assert_eq!(code_of(e1), "step:step_not_from_here", "{n}");
        let c = step(app, &worker, &case, "start_initial_assessment")
            .await
            .expect("start");
        assert_eq!(c.status, CaseStatus::InitialAssessment);
        let e2 = step(app, &worker, &case, "start_comprehensive_assessment")
            .await
            .expect_err("no assessment");
        assert_eq!(code_of(e2), "step:initial_assessment_missing", "{n}");

        // The initial assessment: a draft may be partial, completing it needs every answer.
        let draft = app
            .save_assessment(
                &worker,
                case.id,
                &AssessmentDraft {
                    form: "initial".into(),
                    answers: BTreeMap::from([("child_seen".into(), Value::String("true".into()))]),
                    ..AssessmentDraft::default()
                },
            )
            .await
            .expect("draft");
        let incomplete = app
            .save_assessment(
                &worker,
                case.id,
                &AssessmentDraft {
                    form: "initial".into(),
                    answers: BTreeMap::new(),
                    complete: true,
                    id: Some(draft),
                    version: 1,
                },
            )
            .await
            .expect_err("incomplete");
        assert!(
            code_of(incomplete).contains("extra.immediate_danger:required"),
            "{n}"
        );
        app.save_assessment(
            &worker,
            case.id,
            &AssessmentDraft {
                form: "initial".into(),
                answers: answers(app, "initial", &[("needs_comprehensive", "true")]),
                complete: true,
                id: Some(draft),
                version: 1,
            },
        )
        .await
        .expect("complete");
        // A completed assessment is kept as it was.
        let again = app
            .save_assessment(
                &worker,
                case.id,
                &AssessmentDraft {
                    form: "initial".into(),
                    answers: answers(app, "initial", &[]),
                    id: Some(draft),
                    version: 2,
                    ..AssessmentDraft::default()
                },
            )
            .await
            .expect_err("completed");
        assert_eq!(code_of(again), "form:assessment_completed", "{n}");

        // Circumstances, with the day they arose (seed 000 §20).
        let from = kamkor_domain::records::format_date(today - Duration::days(10));
        let abroad = app
            .add_circumstance(
                &worker,
                case.id,
                &CircumstanceDraft {
                    kind: "C01".into(),
                    note: "оба родителя в России".into(),
                    effective_from: from.clone(),
                },
            )
            .await
            .expect("circumstance");
        let bad = app
            .add_circumstance(
                &worker,
                case.id,
                &CircumstanceDraft {
                    kind: "C99".into(),
                    effective_from: "2099-01-01".into(),
                    ..CircumstanceDraft::default()
                },
            )
            .await
            .expect_err("bad circumstance");
        assert_eq!(
            code_of(bad),
            "kind:unknown_code,effective_from:future_date",
            "{n}"
        );
        let entry = app
            .store
            .changes_for("circumstance", abroad)
            .await
            .expect("history");
        assert_eq!(
            entry[0].effective_on.as_deref(),
            Some(from.as_str()),
            "{n}: effective day in the ledger"
        );

        // The plan is generated: every activity names its rule and the facts behind it.
        let acts = records(app, &case, "activity").await;
        assert!(!acts.is_empty(), "{n}: a plan was generated");
        for a in &acts {
            assert_eq!(a.text("origin"), Some("rule"));
            let code = a.text("rule_code").expect("rule named");
            assert!(app.profile.rules.rule(code).is_some());
            assert!(
                a.data["because"].as_array().is_some_and(|b| !b.is_empty()),
                "{n}: {code} explains"
            );
            assert!(a.text("due_on").is_some());
            assert!(
                a.text("responsible_org").is_some(),
                "{n}: {code} has an organisation"
            );
        }
        let caused_by_c01: Vec<Uuid> = acts
            .iter()
            .filter(|a| {
                a.data["because"]
                    .as_array()
                    .is_some_and(|b| b.iter().any(|x| x["key"] == "C01"))
            })
            .map(|a| a.id)
            .collect();
        assert!(
            !caused_by_c01.is_empty(),
            "{n}: some activity comes from the circumstance"
        );
        // Twice: nothing changes.
        let count = app
            .store
            .case_records(case.id, None)
            .await
            .expect("all")
            .len();
        app.regenerate_plan(&worker, case.id)
            .await
            .expect("regenerate");
        assert_eq!(
            app.store
                .case_records(case.id, None)
                .await
                .expect("all")
                .len(),
            count,
            "{n}: idempotent"
        );

        // The comprehensive assessment adds activities from its answers.
        step(app, &worker, &case, "start_comprehensive_assessment")
            .await
            .expect("comprehensive");
        app.save_assessment(
            &worker,
            case.id,
            &AssessmentDraft {
                form: "comprehensive".into(),
                answers: answers(
                    app,
                    "comprehensive",
                    &[("safety_risk", "high"), ("safety_need", "high")],
                ),
                complete: true,
                ..AssessmentDraft::default()
            },
        )
        .await
        .expect("comprehensive done");
        let acts = records(app, &case, "activity").await;
        assert!(
            acts.iter().any(|a| a.data["because"]
                .as_array()
                .is_some_and(|b| b.iter().any(|x| x["fact"] == "answer"))),
            "{n}: answers drive the plan"
        );

        // Only a supervisor approves; approving both plans starts the plan.
        let plans: Vec<String> = acts
            .iter()
            .filter_map(|a| a.text("plan").map(str::to_string))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let denied = app
            .approve_plan(&worker, case.id, &plans[0], None)
            .await
            .expect_err("worker");
        assert!(matches!(denied, AppError::Forbidden(_)), "{n}");
        for p in &plans {
            app.approve_plan(&boss, case.id, p, None)
                .await
                .expect("approve");
        }
        let c = app.store.case(case.id).await.expect("r").expect("case");
        assert_eq!(c.status, CaseStatus::PlanActive, "{n}");
        let visits = records(app, &case, "visit").await;
        assert_eq!(visits.len(), 1, "{n}: a visit is scheduled");
        assert_eq!(visits[0].text("status"), Some("planned"));

        // The circumstance ends: its activities are no longer needed, a new plan version opens,
        // and the approved one stays as approved.
        let circ = app.store.case_record(abroad).await.expect("r").expect("c");
        app.change_circumstance(
            &worker,
            case.id,
            abroad,
            &CircumstanceChange {
                version: circ.version,
                change: "end".into(),
                reason: "родители вернулись".into(),
                ..CircumstanceChange::default()
            },
        )
        .await
        .expect("end");
        for id in &caused_by_c01 {
            let a = app.store.case_record(*id).await.expect("r").expect("a");
            // Activities with another cause besides the circumstance stay.
            let still = a.data["because"].as_array().is_some_and(|b| {
                b.iter()
                    .any(|x| x["key"] != "C01" && !x["negated"].as_bool().unwrap_or(false))
            });
            if !still {
                assert_eq!(
                    a.text("status"),
                    Some("no_longer_needed"),
                    "{n}: {:?}",
                    a.text("rule_code")
                );
                assert_eq!(a.text("reason"), Some("cause_vanished"));
            }
        }
        let versions = records(app, &case, "plan_version").await;
        let first_plan = plans
            .iter()
            .find(|p| {
                versions
                    .iter()
                    .filter(|v| v.text("plan") == Some(p.as_str()))
                    .count()
                    == 2
            })
            .expect("a revised plan")
            .clone();
        let of_plan: Vec<&CaseRecordRow> = versions
            .iter()
            .filter(|v| v.text("plan") == Some(first_plan.as_str()))
            .collect();
        assert_eq!(of_plan[0].text("status"), Some("approved"), "{n}");
        assert!(
            of_plan[0].data["activities"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
        );
        assert_eq!(of_plan[1].text("status"), Some("draft"), "{n}");
        for p in &plans {
            let drafts = versions
                .iter()
                .any(|v| v.text("plan") == Some(p.as_str()) && v.text("status") == Some("draft"));
            if drafts {
                app.approve_plan(&boss, case.id, p, None)
                    .await
                    .expect("approve the revision");
            }
        }
        let nothing = app
            .approve_plan(&boss, case.id, &first_plan, None)
            .await
            .expect_err("approved already");
        assert_eq!(code_of(nothing), "plan:nothing_to_approve", "{n}");
        let versions = records(app, &case, "plan_version").await;
        let of_plan: Vec<&CaseRecordRow> = versions
            .iter()
            .filter(|v| v.text("plan") == Some(first_plan.as_str()))
            .collect();
        assert_eq!(
            of_plan[0].text("status"),
            Some("superseded"),
            "{n}: the old version stays readable"
        );
        assert_eq!(of_plan[1].text("status"), Some("approved"), "{n}");

        // Activities: done with a result; not done needs a reason.
        let open: Vec<CaseRecordRow> = records(app, &case, "activity")
            .await
            .into_iter()
            .filter(|a| a.text("status") == Some("planned"))
            .collect();
        let a = &open[0];
        let nd = app
            .update_activity(
                &worker,
                case.id,
                a.id,
                &ActivityUpdate {
                    version: a.version,
                    status: "not_done".into(),
                    ..ActivityUpdate::default()
                },
            )
            .await
            .expect_err("reason");
        assert_eq!(code_of(nd), "reason:required", "{n}");
        app.update_activity(
            &worker,
            case.id,
            a.id,
            &ActivityUpdate {
                version: a.version,
                status: "done".into(),
                result: "выполнено".into(),
                ..ActivityUpdate::default()
            },
        )
        .await
        .expect("done");
        let a2 = app.store.case_record(a.id).await.expect("r").expect("a");
        assert_eq!(
            a2.text("completed_on"),
            Some(kamkor_domain::records::format_date(today).as_str())
        );

        // A monitoring visit and the next one planned.
        app.record_visit(
            &worker,
            case.id,
            &VisitDraft {
                findings: "ребёнок посещает школу".into(),
                ..VisitDraft::default()
            },
        )
        .await
        .expect("visit");
        let visits = records(app, &case, "visit").await;
        assert_eq!(
            visits
                .iter()
                .filter(|v| v.text("status") == Some("done"))
                .count(),
            1,
            "{n}"
        );
        assert_eq!(
            visits
                .iter()
                .filter(|v| v.text("status") == Some("planned"))
                .count(),
            1,
            "{n}"
        );
        step(app, &worker, &case, "start_monitoring")
            .await
            .expect("monitoring");

        // Suspend (seed 000 §20: by agreement) and resume where it was.
        let c = app.store.case(case.id).await.expect("r").expect("case");
        let no_agreement = app
            .case_step(
                &worker,
                case.id,
                &StepDraft {
                    step: "suspend".into(),
                    version: c.version,
                    ..StepDraft::default()
                },
            )
            .await
            .expect_err("agreement");
        assert_eq!(
            code_of(no_agreement),
            "reason:required,agreed_with:required",
            "{n}"
        );
        let c = app
            .case_step(
                &worker,
                case.id,
                &StepDraft {
                    step: "suspend".into(),
                    version: c.version,
                    reason: "оценка не требуется".into(),
                    agreed_with: "ОПСД, Иванова А.".into(),
                    ..StepDraft::default()
                },
            )
            .await
            .expect("suspend");
        assert_eq!(c.status, CaseStatus::Suspended);
        let c = step(app, &worker, &case, "resume").await.expect("resume");
        assert_eq!(c.status, CaseStatus::Monitoring, "{n}: back where it was");

        // Transfer to another district; only the receiving side accepts.
        let other = app
            .profile
            .leaf_territories()
            .into_iter()
            .find(|t| {
                !app.profile.territory_within(&t.code, &territory)
                    && !app.profile.territory_within(&territory, &t.code)
            })
            .expect("another district")
            .code
            .clone();
        let c = app
            .case_step(
                &worker,
                case.id,
                &StepDraft {
                    step: "transfer".into(),
                    version: c.version,
                    reason: "семья переехала".into(),
                    transfer_territory: other.clone(),
                    // None named: the unit serving the receiving territory.
                    transfer_org: String::new(),
                    ..StepDraft::default()
                },
            )
            .await
            .expect("transfer");
        assert_eq!(c.status, CaseStatus::Transferred);
        assert_eq!(c.work.transfer_org, Some(agency_for(app, &other)), "{n}");
        let sender = user(app, "sender", Role::Specialist, &territory, "").await;
        let wrong = step(app, &sender, &case, "accept_transfer")
            .await
            .expect_err("not theirs");
        assert_eq!(code_of(wrong), "step:transfer_not_yours", "{n}");
        let receiver = user(app, "receiver", Role::Specialist, &other, "").await;
        let incoming = app.agenda(&receiver).await.expect("agenda").transfers;
        assert!(
            incoming.iter().any(|x| x.id == case.id),
            "{n}: the receiver sees it waiting"
        );
        let c = step(app, &receiver, &case, "accept_transfer")
            .await
            .expect("accept");
        assert_eq!(c.status, CaseStatus::Monitoring);
        assert_eq!(c.territory, other);
        assert_eq!(
            c.responsible_user.as_deref(),
            Some(receiver.user.id.as_str())
        );
        // The sender's territory no longer serves the case.
        assert!(
            matches!(
                app.case_card(&sender, case.id).await,
                Err(AppError::NotFound)
            ),
            "{n}"
        );
        app.case_card(&receiver, case.id)
            .await
            .expect("receiver reads it");

        // Closing: the supervisor, with an outcome.
        let e3 = step(app, &receiver, &case, "close")
            .await
            .expect_err("worker closes");
        assert!(matches!(e3, AppError::Forbidden(_)), "{n}");
        let e4 = step(app, &boss, &case, "close")
            .await
            .expect_err("no outcome");
        assert_eq!(code_of(e4), "step:outcome_missing", "{n}");
        let c = app.store.case(case.id).await.expect("r").expect("case");
        let c = app
            .case_step(
                &boss,
                case.id,
                &StepDraft {
                    step: "close".into(),
                    version: c.version,
                    outcome: "out_of_dls".into(),
                    ..StepDraft::default()
                },
            )
            .await
            .expect("close");
        assert_eq!(c.status, CaseStatus::Closed);
        assert_eq!(c.work.outcome.as_deref(), Some("out_of_dls"));
        let e5 = step(app, &boss, &case, "resume").await.expect_err("closed");
        assert_eq!(code_of(e5), "step:case_closed", "{n}");

        // Every step is in the case's history, and the ledger replays it.
        let card = app.case_card(&boss, case.id).await.expect("card");
        for entity in [
            "case",
            "circumstance",
            "assessment",
            "activity",
            "plan_version",
            "visit",
        ] {
            assert!(
                card.history.iter().any(|h| h.entity == entity),
                "{n}: {entity} in history"
            );
        }
        let replay = app.store.replay_check().await.expect("replay runs");
        assert!(replay.is_ok(), "{n}: {replay:?}");
    }
}

#[tokio::test]
async fn a_plan_follows_a_change_of_the_childs_attributes() {
    for e in envs().await {
        let app = &e.app;
        let n = e.name;
        let root = app.profile.root_territory().expect("root").code.clone();
        let worker = user(app, "worker2", Role::Specialist, &root, "").await;
        let (child, _, case) = case_on_a_demo_child(app, &worker, vec![]).await;
        step(app, &worker, &case, "start_initial_assessment")
            .await
            .expect("start");
        let disability_rule = |acts: &[CaseRecordRow]| {
            acts.iter()
                .find(|a| a.text("rule_code") == Some("disability_esp"))
                .and_then(|a| a.text("status").map(str::to_string))
        };
        // Seed 000 §20: a disability is established — the plan gains the allowance.
        let mut d = child.data.to_draft();
        d.disability = "D2".into();
        d.social_payments.retain(|p| p != "SP03");
        app.update_person(&worker, child.id, child.version, &d)
            .await
            .unwrap_or_else(|e| panic!("{n}: {e:?}"));
        let acts = records(app, &case, "activity").await;
        assert_eq!(disability_rule(&acts).as_deref(), Some("planned"), "{n}");
        // The allowance is assigned: the activity is no longer needed.
        let now = app.store.person(child.id).await.expect("p").expect("child");
        let mut d = now.data.to_draft();
        d.social_payments.push("SP03".into());
        app.update_person(&worker, child.id, now.version, &d)
            .await
            .expect("update");
        let acts = records(app, &case, "activity").await;
        assert_eq!(
            disability_rule(&acts).as_deref(),
            Some("no_longer_needed"),
            "{n}"
        );
        let replay = app.store.replay_check().await.expect("replay runs");
        assert!(replay.is_ok(), "{n}: {replay:?}");
    }
}

#[tokio::test]
async fn plan_approval_and_visits_refuse_what_the_user_did_not_see() {
    for e in envs().await {
        let app = &e.app;
        let n = e.name;
        let root = app.profile.root_territory().expect("root").code.clone();
        let worker = user(app, "worker3", Role::Specialist, &root, "").await;
        let boss = user(app, "boss3", Role::Supervisor, &root, "").await;
        let (_, territory, case) = case_on_a_demo_child(app, &worker, vec![]).await;
        step(app, &worker, &case, "start_initial_assessment")
            .await
            .expect("start");
        app.save_assessment(
            &worker,
            case.id,
            &AssessmentDraft {
                form: "initial".into(),
                answers: answers(app, "initial", &[("needs_comprehensive", "true")]),
                complete: true,
                ..AssessmentDraft::default()
            },
        )
        .await
        .expect("initial");
        app.add_circumstance(
            &worker,
            case.id,
            &CircumstanceDraft {
                kind: "C01".into(),
                ..CircumstanceDraft::default()
            },
        )
        .await
        .expect("circumstance");
        step(app, &worker, &case, "start_comprehensive_assessment")
            .await
            .expect("comprehensive");
        let draft = records(app, &case, "plan_version")
            .await
            .into_iter()
            .find(|v| v.text("status") == Some("draft"))
            .expect("a draft");
        let plan = draft.text("plan").expect("plan").to_string();
        // The worker changes the plan after the supervisor opened it: approval is a conflict.
        app.add_activity(
            &worker,
            case.id,
            &kamkor_app::casework::ActivityDraft {
                plan: plan.clone(),
                title: "Посетить семью вместе с педагогом".into(),
                responsible_org: agency_for(app, &territory),
                due_on: kamkor_domain::records::format_date(worker.today() + Duration::days(10)),
                ..Default::default()
            },
        )
        .await
        .expect("manual activity");
        let stale = app
            .approve_plan(&boss, case.id, &plan, Some((draft.id, draft.version)))
            .await
            .expect_err("stale draft");
        assert!(matches!(stale, AppError::Conflict { .. }), "{n}: {stale:?}");
        let fresh = app
            .store
            .case_record(draft.id)
            .await
            .expect("r")
            .expect("draft");
        app.approve_plan(&boss, case.id, &plan, Some((fresh.id, fresh.version)))
            .await
            .expect("approve what was seen");

        // A correction with empty fields keeps them; a correction needs its reason.
        let circ = records(app, &case, "circumstance").await.remove(0);
        let no_reason = app
            .change_circumstance(
                &worker,
                case.id,
                circ.id,
                &CircumstanceChange {
                    version: circ.version,
                    change: "correct".into(),
                    note: "уточнено".into(),
                    ..CircumstanceChange::default()
                },
            )
            .await
            .expect_err("reason");
        assert_eq!(code_of(no_reason), "reason:required", "{n}");
        app.change_circumstance(
            &worker,
            case.id,
            circ.id,
            &CircumstanceChange {
                version: circ.version,
                change: "correct".into(),
                note: "уточнено".into(),
                reason: "опечатка в примечании".into(),
                ..CircumstanceChange::default()
            },
        )
        .await
        .expect("correct");
        let corrected = app.store.case_record(circ.id).await.expect("r").expect("c");
        assert_eq!(corrected.text("kind"), Some("C01"), "{n}: the kind is kept");
        assert_eq!(
            corrected.text("effective_from"),
            circ.text("effective_from"),
            "{n}"
        );
        assert_eq!(corrected.text("note"), Some("уточнено"));

        // Visits: the next one within the monitoring period, and a second submission of the
        // same form is a conflict rather than a second visit.
        app.save_assessment(
            &worker,
            case.id,
            &AssessmentDraft {
                form: "comprehensive".into(),
                answers: answers(app, "comprehensive", &[]),
                complete: true,
                ..AssessmentDraft::default()
            },
        )
        .await
        .expect("comprehensive done");
        let mut all_approved = true;
        for p in app.profile.rules.plans.iter() {
            if records(app, &case, "plan_version").await.iter().any(|v| {
                v.text("plan") == Some(p.code.as_str()) && v.text("status") == Some("draft")
            }) {
                all_approved &= app
                    .approve_plan(&boss, case.id, &p.code, None)
                    .await
                    .is_ok();
            }
        }
        assert!(all_approved, "{n}");
        let c = app.store.case(case.id).await.expect("r").expect("case");
        assert_eq!(c.status, CaseStatus::PlanActive, "{n}");
        let planned = records(app, &case, "visit").await.remove(0);
        let far = app
            .record_visit(
                &worker,
                case.id,
                &VisitDraft {
                    findings: "всё в порядке".into(),
                    next_visit_on: kamkor_domain::records::format_date(
                        worker.today() + Duration::days(400),
                    ),
                    ..VisitDraft::default()
                },
            )
            .await
            .expect_err("too far");
        assert_eq!(
            code_of(far),
            "next_visit_on:beyond_monitoring_period",
            "{n}"
        );
        let form = VisitDraft {
            findings: "всё в порядке".into(),
            planned: Some(planned.id),
            planned_version: planned.version,
            ..VisitDraft::default()
        };
        app.record_visit(&worker, case.id, &form)
            .await
            .expect("visit");
        let again = app
            .record_visit(&worker, case.id, &form)
            .await
            .expect_err("twice");
        assert!(matches!(again, AppError::Conflict { .. }), "{n}: {again:?}");
        assert_eq!(
            records(app, &case, "visit").await.len(),
            2,
            "{n}: one done, one planned"
        );
        let replay = app.store.replay_check().await.expect("replay runs");
        assert!(replay.is_ok(), "{n}: {replay:?}");
    }
}

#[tokio::test]
async fn a_resocialisation_plan_comes_from_the_needs_chosen_when_the_case_opens() {
    // Seed 004 §3.1: needs recorded at or before release generate the plan of services.
    for e in envs_of("reentry-yugra").await {
        let app = &e.app;
        let n = e.name;
        let root = app.profile.root_territory().expect("root").code.clone();
        let worker = user(app, "worker4", Role::Specialist, &root, "").await;
        let any = app
            .store
            .list_cases(&CaseQuery {
                limit: 1,
                ..Default::default()
            })
            .await
            .expect("cases")
            .remove(0);
        let person = app
            .store
            .person(any.data.subject_id)
            .await
            .expect("p")
            .expect("person");
        let territory = person.data.residence_territory.clone().expect("territory");
        let org = app
            .profile
            .agencies
            .iter()
            .find(|a| app.profile.territory_within(&territory, &a.territory))
            .expect("an agency")
            .code
            .clone();
        let case = app
            .open_case(
                &worker,
                &CaseDraft {
                    subject_kind: "person".into(),
                    subject_id: person.id.to_string(),
                    identified_on: kamkor_domain::records::format_date(worker.today()),
                    identification_territory: territory.clone(),
                    categories: vec!["N01".into(), "N05".into()],
                    responsible_org: org,
                    ..CaseDraft::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{n}: open {e:?}"));
        step(app, &worker, &case, "start_initial_assessment")
            .await
            .expect("start");
        let acts = records(app, &case, "activity").await;
        for need in ["N01", "N05"] {
            assert!(
                acts.iter()
                    .any(|a| a.text("plan") == Some("resocialisation")
                        && a.data["because"]
                            .as_array()
                            .is_some_and(|b| b.iter().any(|x| x["key"] == need))),
                "{n}: no service for {need}"
            );
        }
        // The prison service corrects the release date: deadlines counted from it move.
        let ufsin = user(app, "ufsin1", Role::AgencySpecialist, &root, "ufsin-yugra").await;
        let before: Vec<(String, Option<String>)> = records(app, &case, "activity")
            .await
            .iter()
            .map(|a| (a.id.to_string(), a.text("due_on").map(str::to_string)))
            .collect();
        let now = app
            .store
            .person(person.id)
            .await
            .expect("p")
            .expect("person");
        let release = now
            .data
            .extra
            .get("release_date")
            .and_then(|v| v.as_str())
            .and_then(kamkor_domain::records::parse_date)
            .unwrap_or(worker.today());
        let later = kamkor_domain::records::format_date(release + Duration::days(7));
        let section = app
            .profile
            .form("released_person")
            .and_then(|f| f.section.iter().find(|s| s.code == "prison_service"))
            .expect("section");
        let mut values = std::collections::BTreeMap::new();
        for f in &section.field {
            if let Some(v) = now.data.extra.get(&f.code) {
                values.insert(f.code.clone(), v.clone());
            }
        }
        values.insert("release_date".into(), serde_json::Value::String(later));
        app.update_person_section(
            &ufsin,
            person.id,
            now.version,
            "prison_service",
            &values,
            "",
        )
        .await
        .unwrap_or_else(|e| panic!("{n}: section {e:?}"));
        let after = records(app, &case, "activity").await;
        let moved = after.iter().filter(|a| {
            a.data.get("due_by_rule") == Some(&serde_json::Value::Bool(true))
                && before
                    .iter()
                    .any(|(id, due)| *id == a.id.to_string() && due.as_deref() != a.text("due_on"))
        });
        assert!(
            moved.count() > 0,
            "{n}: deadlines counted from the release date moved"
        );
        let (rows, total, _) = app
            .completeness(&worker, "resocialisation", 0)
            .await
            .expect("completeness");
        let mine = rows
            .iter()
            .find(|r| r.case.id == case.id)
            .expect("the case is listed");
        assert!(mine.counts.total() >= 2, "{n}");
        assert!(
            total.total() >= mine.counts.total(),
            "{n}: the total covers the territory"
        );
    }
}

#[tokio::test]
async fn completing_an_assessment_starts_its_stage_and_the_plan_starts_at_identification() {
    for e in envs().await {
        let app = &e.app;
        let n = e.name;
        let root = app.profile.root_territory().expect("root").code.clone();
        let worker = user(app, "worker5", Role::Specialist, &root, "").await;
        let (_, _, case) = case_on_a_demo_child(app, &worker, vec![]).await;
        // Seed 000 §22: the plan is formed from the circumstances as they are entered.
        app.add_circumstance(
            &worker,
            case.id,
            &CircumstanceDraft {
                kind: "C01".into(),
                ..CircumstanceDraft::default()
            },
        )
        .await
        .expect("circumstance");
        assert!(
            !records(app, &case, "activity").await.is_empty(),
            "{n}: a draft plan at once"
        );
        // A draft of the comprehensive assessment waits for its stage; the initial one,
        // completed at identification, starts the initial stage.
        let early = app
            .save_assessment(
                &worker,
                case.id,
                &AssessmentDraft {
                    form: "comprehensive".into(),
                    ..AssessmentDraft::default()
                },
            )
            .await
            .expect_err("too early");
        assert_eq!(code_of(early), "form:stage_not_reached", "{n}");
        app.save_assessment(
            &worker,
            case.id,
            &AssessmentDraft {
                form: "initial".into(),
                answers: answers(app, "initial", &[]),
                complete: true,
                ..AssessmentDraft::default()
            },
        )
        .await
        .expect("initial at identification");
        let c = app.store.case(case.id).await.expect("r").expect("case");
        assert_eq!(c.status, CaseStatus::InitialAssessment, "{n}");
        // Completing the comprehensive one moves on to its stage too.
        app.save_assessment(
            &worker,
            case.id,
            &AssessmentDraft {
                form: "comprehensive".into(),
                answers: answers(app, "comprehensive", &[]),
                complete: true,
                ..AssessmentDraft::default()
            },
        )
        .await
        .expect("comprehensive");
        let c = app.store.case(case.id).await.expect("r").expect("case");
        assert_eq!(c.status, CaseStatus::ComprehensiveAssessment, "{n}");
        let replay = app.store.replay_check().await.expect("replay runs");
        assert!(replay.is_ok(), "{n}: {replay:?}");
    }
}
