//! Case work through the HTML pages (issue 5): steps, circumstances, assessments, the generated
//! plan with its rule named, approval, activities, visits, overdue work on the home page, and
//! errors shown next to the fields. SQLite always, PostgreSQL when `KAMKOR_TEST_PG` is set.

mod common;

use axum::http::StatusCode;
use kamkor_domain::policy::Role;
use kamkor_domain::records::{CaseDraft, format_date};
use uuid::Uuid;

/// A case opened today on a demo child by `login`'s account.
async fn open_case(e: &common::Env, login: &str) -> Uuid {
    kamkor_app::demo::generate(&e.app, 8, 11, 0, |_| {})
        .await
        .expect("demo");
    let u = e
        .app
        .store
        .user_by_login(login)
        .await
        .expect("r")
        .expect("user");
    let ctx = e.app.system_ctx(u);
    let child = e
        .app
        .store
        .list_cases(&kamkor_store::CaseQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("cases")[0]
        .data
        .subject_id;
    let person = e.app.store.person(child).await.expect("r").expect("child");
    let territory = person.data.residence_territory.expect("territory");
    let p = &e.app.profile;
    let org = p
        .agencies
        .iter()
        .filter(|a| a.kind == "territorial_unit" && p.territory_within(&territory, &a.territory))
        .max_by_key(|a| p.territory_path(&a.territory).len())
        .expect("unit")
        .code
        .clone();
    e.app
        .open_case(
            &ctx,
            &CaseDraft {
                subject_kind: "child".into(),
                subject_id: child.to_string(),
                identified_on: format_date(ctx.today()),
                identification_territory: territory,
                responsible_org: org,
                ..CaseDraft::default()
            },
        )
        .await
        .expect("open")
        .id
}

async fn version(e: &common::Env, id: Uuid) -> String {
    e.app
        .store
        .case(id)
        .await
        .expect("r")
        .expect("case")
        .version
        .to_string()
}

#[tokio::test]
async fn case_pages_carry_a_case_from_assessment_to_an_approved_plan() {
    for e in common::envs("tzhs-kg").await {
        let n = e.engine;
        e.user("worker", &[Role::Specialist], None).await;
        e.user("boss", &[Role::Supervisor], None).await;
        let id = open_case(&e, "worker").await;
        let (cookie, csrf) = e.page_login("worker").await;
        let card = e.page(&format!("/cases/{id}"), &cookie).await;
        assert_eq!(card.status, StatusCode::OK, "{n}");
        assert!(card.body.contains("Ход работы по случаю"), "{n}");
        assert!(
            card.body.contains("Срок этапа"),
            "{n}: the stage deadline is shown"
        );
        assert!(card.body.contains("Начать первичную оценку"), "{n}");

        // A form without its CSRF token changes nothing.
        let v = version(&e, id).await;
        let r = e
            .form(
                &format!("/cases/{id}/steps"),
                Some(&cookie),
                &[("step", "start_initial_assessment"), ("version", &v)],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{n}");
        let r = e
            .form(
                &format!("/cases/{id}/steps"),
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("step", "start_initial_assessment"),
                    ("version", &v),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{n}: {}", r.body);

        // A step out of order is refused in words.
        let v = version(&e, id).await;
        let r = e
            .form(
                &format!("/cases/{id}/steps"),
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("step", "start_comprehensive_assessment"),
                    ("version", &v),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{n}");
        assert!(r.body.contains("Сначала завершите первичную оценку"), "{n}");

        // The initial assessment: incomplete answers are named next to their fields.
        let form = e
            .page(
                &format!("/cases/{id}/assessments/new?form=initial"),
                &cookie,
            )
            .await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("Завершить оценку"));
        let r = e
            .form(
                &format!("/cases/{id}/assessments"),
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("form", "initial"),
                    ("action", "complete"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{n}");
        assert!(r.body.contains("Обязательное поле"), "{n}");
        let r = e
            .form(
                &format!("/cases/{id}/assessments"),
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("form", "initial"),
                    ("extra.immediate_danger", "true"),
                    ("extra.risk_level", "high"),
                    ("extra.needs_comprehensive", "true"),
                    ("action", "complete"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{n}: {}", r.body);

        // A circumstance with a future date is refused; a real one regenerates the plan.
        let r = e
            .form(
                &format!("/cases/{id}/circumstances"),
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("kind", "C01"),
                    ("effective_from", "2099-01-01"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{n}");
        assert!(r.body.contains("Дата не может быть в будущем"), "{n}");
        let r = e
            .form(
                &format!("/cases/{id}/circumstances"),
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("kind", "C01"),
                    ("note", "мать и отец в России"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{n}: {}", r.body);
        let card = e.page(&format!("/cases/{id}"), &cookie).await;
        assert!(
            card.body.contains("Индивидуальный план защиты ребёнка"),
            "{n}"
        );
        assert!(
            card.body.contains("Правило"),
            "{n}: each activity names its rule"
        );
        assert!(
            card.body.contains("initial_danger_safety"),
            "{n}: the rule code is shown"
        );
        assert!(
            card.body.contains("ожидает утверждения руководителем"),
            "{n}"
        );
        assert!(
            !card.body.contains("Утвердить план"),
            "{n}: a specialist is not offered approval"
        );

        // The circumstance ends: the activities it alone caused are no longer needed.
        let circ = e
            .app
            .store
            .case_records(id, Some("circumstance"))
            .await
            .expect("r")
            .remove(0);
        let page = e
            .page(&format!("/cases/{id}/circumstances/{}", circ.id), &cookie)
            .await;
        assert!(page.body.contains("Прекратить обстоятельство"), "{n}");
        let r = e
            .form(
                &format!("/cases/{id}/circumstances/{}", circ.id),
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("change", "end"),
                    ("version", "1"),
                    ("reason", "родители вернулись"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{n}: {}", r.body);
        let card = e.page(&format!("/cases/{id}"), &cookie).await;
        assert!(card.body.contains("Больше не нужны"), "{n}");
        assert!(card.body.contains("причина отпала"), "{n}");

        // Only the supervisor approves.
        let plan = e
            .app
            .store
            .case_records(id, Some("plan_version"))
            .await
            .expect("r")[0]
            .text("plan")
            .expect("plan")
            .to_string();
        let r = e
            .form(
                &format!("/cases/{id}/plans/{plan}/approve"),
                Some(&cookie),
                &[("_csrf", &csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{n}");
        let (boss, boss_csrf) = e.page_login("boss").await;
        let card = e.page(&format!("/cases/{id}"), &boss).await;
        assert!(card.body.contains("Утвердить план"), "{n}");
        let r = e
            .form(
                &format!("/cases/{id}/plans/{plan}/approve"),
                Some(&boss),
                &[("_csrf", &boss_csrf)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{n}: {}", r.body);
        let card = e.page(&format!("/cases/{id}"), &boss).await;
        assert!(card.body.contains("утверждена"), "{n}");

        // An activity marked done from its page; "not done" without a reason is refused.
        let act = e
            .app
            .store
            .case_records(id, Some("activity"))
            .await
            .expect("r")
            .into_iter()
            .find(|a| a.text("status") == Some("planned"))
            .expect("a planned activity");
        let page = e
            .page(&format!("/cases/{id}/activities/{}", act.id), &cookie)
            .await;
        assert!(
            page.body.contains("Основание"),
            "{n}: the activity explains itself"
        );
        let v = act.version.to_string();
        let r = e
            .form(
                &format!("/cases/{id}/activities/{}", act.id),
                Some(&cookie),
                &[("_csrf", &csrf), ("version", &v), ("status", "not_done")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{n}");
        assert!(
            r.body
                .contains("Обязательна, если мероприятие не выполнено"),
            "{n}: the hint stays"
        );
        // The worker takes the activity and starts it.
        let r = e
            .form(
                &format!("/cases/{id}/activities/{}", act.id),
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("version", &v),
                    ("status", "in_progress"),
                    ("take", "1"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{n}: {}", r.body);
        let taken = e
            .app
            .store
            .case_record(act.id)
            .await
            .expect("r")
            .expect("a");
        let worker_id = e
            .app
            .store
            .user_by_login("worker")
            .await
            .expect("r")
            .expect("u")
            .id;
        assert_eq!(
            taken.text("responsible_user"),
            Some(worker_id.as_str()),
            "{n}"
        );
        let page = e
            .page(&format!("/cases/{id}/activities/{}", act.id), &cookie)
            .await;
        assert!(
            page.body.contains("Тест worker"),
            "{n}: the worker is named"
        );
        let v = taken.version.to_string();
        let r = e
            .form(
                &format!("/cases/{id}/activities/{}", act.id),
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("version", &v),
                    ("status", "done"),
                    ("result", "справка получена"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{n}: {}", r.body);

        // Suspending needs the agreement, named next to the field.
        let page = e.page(&format!("/cases/{id}/steps/suspend"), &cookie).await;
        assert!(page.body.contains("С кем согласовано"), "{n}");
        let v = version(&e, id).await;
        let r = e
            .form(
                &format!("/cases/{id}/steps"),
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("step", "suspend"),
                    ("version", &v),
                    ("reason", "нет оснований"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{n}");
        assert!(r.body.contains("id=\"f-agreed-with\""), "{n}");

        // The history names the records of case work.
        let card = e.page(&format!("/cases/{id}"), &cookie).await;
        for word in ["Обстоятельство", "Оценка", "Мероприятие", "Версия плана"]
        {
            assert!(
                card.body
                    .contains(&format!("<strong class=\"record\">{word}")),
                "{n}: {word} in history"
            );
        }
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn case_pages_home_shows_overdue_work_and_completeness_renders() {
    for e in common::envs("reentry-yugra").await {
        let n = e.engine;
        e.user("boss", &[Role::Supervisor], None).await;
        // The demo leaves some activities late and some visits missed.
        kamkor_app::demo::generate(&e.app, 60, 3, 0, |_| {})
            .await
            .expect("demo");
        let (cookie, _) = e.page_login("boss").await;
        let home = e.page("/", &cookie).await;
        assert_eq!(home.status, StatusCode::OK);
        assert!(home.body.contains("Требует внимания"), "{n}");
        assert!(
            home.body.contains("Просроченные мероприятия"),
            "{n}: {}",
            home.body
        );
        let page = e.page("/completeness", &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{n}");
        assert!(page.body.contains("Полнота предоставления услуг"), "{n}");
        assert!(page.body.contains("Итого по вашей территории"), "{n}");
        // A viewer without record access gets no agenda.
        e.user("aud", &[Role::Auditor], None).await;
        let (aud, _) = e.page_login("aud").await;
        let home = e.page("/", &aud).await;
        assert!(!home.body.contains("Требует внимания"), "{n}");
        let r = e.page("/completeness", &aud).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{n}");
    }
}
