//! Sections of the person's card owned by agencies (seed 004 §11; issue 3 item 2) through the
//! pages: an agency specialist edits its own section on a page of its own and nothing else; a
//! specialist sees other agencies' sections read-only, keeps them on save and is not asked to
//! fill them; a new record cannot carry another agency's section. Profile `reentry-yugra`, on
//! SQLite and (with `KAMKOR_TEST_PG`) PostgreSQL.

#[path = "common/admin.rs"]
mod admin;
mod common;

use admin::csrf_of;
use axum::http::StatusCode;
use common::Env;
use kamkor_app::NewUser;
use kamkor_domain::policy::Role;
use serde_json::{Value, json};
use uuid::Uuid;

/// The okrug and one of its districts; the district's municipality and the prison service.
const OKRUG: &str = "71800000";
const DISTRICT: &str = "71811000";
const MUNICIPALITY: &str = "omsu-71811000";
const PRISON: &str = "ufsin-yugra";
/// A valid SNILS (check digits 95).
const SNILS: &str = "11223344595";

async fn account(e: &Env, login: &str, roles: &[Role], scope: &str, org: &str) {
    let today = kamkor_store::now_utc().date();
    e.app
        .create_user(
            "test",
            &NewUser {
                login: login.into(),
                full_name: format!("Тест {login}"),
                roles: roles.to_vec(),
                organisation: org.into(),
                scope_territory: Some(scope.into()),
                valid_from: today,
                valid_until: Some(today + time::Duration::days(30)),
                password: Some("correct horse battery staple".into()),
            },
        )
        .await
        .expect("create user");
}

fn person(extra: Value) -> Value {
    json!({
        "person": {
            "surname": "Петров", "given_name": "Иван", "sex": "male", "birth_date": "1980-02-03",
            "national_id": SNILS, "citizenship": "RU", "residence_territory": DISTRICT,
            "address": "ул. Мира, 1", "extra": extra,
        },
        "relatives": [],
    })
}

async fn stored(e: &Env, id: &str) -> kamkor_store::PersonRow {
    e.app
        .store
        .person(Uuid::parse_str(id).expect("uuid"))
        .await
        .expect("read")
        .expect("person exists")
}

#[tokio::test]
async fn agency_sections_are_edited_by_their_agency_only_through_the_pages() {
    for e in common::envs("reentry-yugra").await {
        account(&e, "spec", &[Role::Specialist], DISTRICT, MUNICIPALITY).await;
        account(&e, "prison", &[Role::AgencySpecialist], OKRUG, PRISON).await;
        let spec = e.api_login("spec").await;

        // The municipality registers a person without the prison service's section, whose
        // release date is required of the prison service only.
        let r = e
            .json("POST", "/api/v1/persons", Some(&spec), person(json!({})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        let id = r.json()["person_id"].as_str().expect("id").to_string();

        // ... and may not fill that section itself, not even on a new record.
        let mut other = person(json!({"release_date": "2026-10-01"}));
        other["person"]["national_id"] = json!("");
        let r = e.json("POST", "/api/v1/persons", Some(&spec), other).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}: {}", e.engine, r.body);
        assert_eq!(
            r.json()["error"]["code"],
            "section_not_owned",
            "{}",
            e.engine
        );

        // The registration page offers the municipality no input for the prison section.
        let (spec_cookie, _) = e.page_login("spec").await;
        let reg = e.page("/register", &spec_cookie).await;
        assert_eq!(reg.status, StatusCode::OK, "{}", e.engine);
        assert!(
            !reg.body.contains("name=\"child.extra.release_date\""),
            "{}",
            e.engine
        );
        assert!(reg.body.contains("Раздел заполняет:"), "{}", e.engine);

        // The prison service's specialist: the card offers its own section only.
        let (cookie, _) = e.page_login("prison").await;
        let card = e.page(&format!("/persons/{id}"), &cookie).await;
        assert_eq!(card.status, StatusCode::OK, "{}: {}", e.engine, card.body);
        assert!(
            card.body
                .contains(&format!("/persons/{id}/sections/prison_service")),
            "{}",
            e.engine
        );
        assert!(
            !card
                .body
                .contains(&format!("/persons/{id}/sections/police")),
            "{}",
            e.engine
        );
        assert!(
            !card.body.contains(&format!("/persons/{id}/edit")),
            "{}",
            e.engine
        );

        // Its section page: the section's inputs and nothing else.
        let path = format!("/persons/{id}/sections/prison_service");
        let page = e.page(&path, &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{}: {}", e.engine, page.body);
        assert!(
            page.body.contains("name=\"extra.release_date\""),
            "{}",
            e.engine
        );
        assert!(!page.body.contains("name=\"surname\""), "{}", e.engine);
        let csrf = csrf_of(&page.body);
        let version = stored(&e, &id).await.version.to_string();

        let week_ago = {
            let d = time::OffsetDateTime::now_utc().date() - time::Duration::days(7);
            format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
        };
        // A bad date is named next to its field, in Russian, and nothing is stored.
        let bad = e
            .form(
                &path,
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("version", &version),
                    ("extra.release_date", "31.02.2026"),
                    ("extra.institution", "ИК-11"),
                ],
            )
            .await;
        assert_eq!(
            bad.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}: {}",
            e.engine,
            bad.body
        );
        assert!(
            bad.body.contains("ИК-11"),
            "what was typed is kept: {}",
            e.engine
        );
        assert!(
            stored(&e, &id)
                .await
                .data
                .extra
                .get("institution")
                .is_none(),
            "{}",
            e.engine
        );

        let ok = e
            .form(
                &path,
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("version", &version),
                    ("extra.release_date", "2026-10-01"),
                    ("extra.institution", "ИК-11"),
                    // Seed 000 §20: the agency learnt of it earlier than today.
                    ("effective_on", &week_ago),
                ],
            )
            .await;
        assert_eq!(
            ok.status,
            StatusCode::SEE_OTHER,
            "{}: {}",
            e.engine,
            ok.body
        );
        let after = stored(&e, &id).await;
        let history = e
            .app
            .store
            .changes_for("person", after.id)
            .await
            .expect("history");
        assert_eq!(
            history.last().and_then(|c| c.effective_on.clone()),
            Some(week_ago.clone()),
            "{}: the section edit took effect on the day given",
            e.engine
        );
        assert_eq!(
            after.data.extra["release_date"], "2026-10-01",
            "{}",
            e.engine
        );
        assert_eq!(after.data.extra["institution"], "ИК-11", "{}", e.engine);

        // The same form again with the old version: a conflict, shown with what changed.
        let stale = e
            .form(
                &path,
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("version", &version),
                    ("extra.release_date", "2026-10-05"),
                ],
            )
            .await;
        assert_eq!(
            stale.status,
            StatusCode::CONFLICT,
            "{}: {}",
            e.engine,
            stale.body
        );

        // Another agency's section and the whole record are refused, page and form alike,
        // and each refusal is recorded.
        let denied_before = e
            .app
            .store
            .changes_by_action("denied", 1000)
            .await
            .expect("denials")
            .len();
        let police = format!("/persons/{id}/sections/police");
        assert_eq!(
            e.page(&police, &cookie).await.status,
            StatusCode::FORBIDDEN,
            "{}",
            e.engine
        );
        let r = e
            .form(
                &police,
                Some(&cookie),
                &[("_csrf", &csrf), ("version", "1")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}: {}", e.engine, r.body);
        assert_eq!(
            e.page(&format!("/persons/{id}/edit"), &cookie).await.status,
            StatusCode::FORBIDDEN,
            "{}",
            e.engine
        );
        let denied_after = e
            .app
            .store
            .changes_by_action("denied", 1000)
            .await
            .expect("denials")
            .len();
        assert!(
            denied_after >= denied_before + 2,
            "{}: {denied_before} -> {denied_after}",
            e.engine
        );
        assert_eq!(
            e.page(&format!("/persons/{id}/sections/nonexistent"), &cookie)
                .await
                .status,
            StatusCode::NOT_FOUND,
            "{}",
            e.engine
        );

        // The municipality's edit form shows the prison section read-only, with its values,
        // and saving the form keeps them.
        let edit = e.page(&format!("/persons/{id}/edit"), &spec_cookie).await;
        assert_eq!(edit.status, StatusCode::OK, "{}: {}", e.engine, edit.body);
        assert!(
            !edit.body.contains("name=\"extra.release_date\""),
            "{}",
            e.engine
        );
        assert!(edit.body.contains("ИК-11"), "{}", e.engine);
        let csrf = csrf_of(&edit.body);
        let version = stored(&e, &id).await.version.to_string();
        let saved = e
            .form(
                &format!("/persons/{id}/edit"),
                Some(&spec_cookie),
                &[
                    ("_csrf", &csrf),
                    ("version", &version),
                    ("surname", "Петров"),
                    ("given_name", "Иван"),
                    ("sex", "male"),
                    ("birth_date", "1980-02-03"),
                    ("national_id", SNILS),
                    ("citizenship", "RU"),
                    ("residence_territory", DISTRICT),
                    ("address", "ул. Ленина, 5"),
                ],
            )
            .await;
        assert_eq!(
            saved.status,
            StatusCode::SEE_OTHER,
            "{}: {}",
            e.engine,
            saved.body
        );
        let after = stored(&e, &id).await;
        assert_eq!(
            after.data.address.as_deref(),
            Some("ул. Ленина, 5"),
            "{}",
            e.engine
        );
        assert_eq!(after.data.extra["institution"], "ИК-11", "{}", e.engine);
        assert_eq!(
            after.data.extra["release_date"], "2026-10-01",
            "{}",
            e.engine
        );
        e.assert_ledger_holds().await;
    }
}
