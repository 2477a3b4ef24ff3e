//! Regression tests for the findings of the black-box attack run (issue 3, "an attack script
//! held back from the project"): each would fail if its hole reopened.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::Env;
use kamkor_domain::policy::Role;
use serde_json::{Value, json};

/// Иссык-Кульская область: Ак-Суйский район; Чуйская область: Аламудунский район.
const ISSYK_KUL: &str = "41702000000000";
const AK_SUU: &str = "41702205000000";
const ALAMUDUN: &str = "41708203000000";

fn child(pin: &str, relative_pin: &str) -> Value {
    json!({
        "child": {
            "surname": "Шаршенов", "given_name": "Азамат", "sex": "male",
            "birth_date": "2015-03-09", "national_id": pin, "citizenship": "KG",
            "residence_territory": AK_SUU, "address": "с. Теплоключенка",
        },
        "family": {"name": "", "address": ""},
        "relatives": [
            {"relation_kind": "mother", "relative_status": "labour_migrant",
             "person": {"surname": "Шаршенова", "given_name": "Айгерим", "sex": "female",
                        "birth_date": "1988-04-12", "national_id": relative_pin}},
        ],
    })
}

async fn register(e: &Env, token: &str, body: Value) -> Value {
    let r = e.json("POST", "/api/v1/persons", Some(token), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
    r.json()
}

#[tokio::test]
async fn case_lists_do_not_name_a_child_who_moved_out_of_the_scope() {
    for e in common::envs("tzhs-kg").await {
        e.user("boss", &[Role::Supervisor], None).await;
        e.user("worker", &[Role::Specialist], Some(ISSYK_KUL)).await;
        let boss = e.api_login("boss").await;
        let worker = e.api_login("worker").await;
        let id =
            register(&e, &worker, child("20903201500011", "11204198800123")).await["person_id"]
                .as_str()
                .expect("id")
                .to_string();
        let case = json!({
            "subject_kind": "child", "subject_id": id, "identified_on": "2026-11-20",
            "identification_territory": AK_SUU, "identification_place": "school",
            "identification_place_text": "школа", "source": "school", "categories": ["CAT04"],
            "responsible_org": "opsd-41702205000000",
        });
        let r = e.json("POST", "/api/v1/cases", Some(&worker), case).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        // The family moves to another oblast.
        let p = e
            .get(&format!("/api/v1/persons/{id}"), Some(&boss))
            .await
            .json();
        let mut person = p["person"].clone();
        person["residence_territory"] = json!(ALAMUDUN);
        let r = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{id}"),
                Some(&boss),
                json!({"version": p["person"]["version"], "person": person}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let (cookie, _) = e.page_login("worker").await;
        for path in ["/", "/cases", "/cases?mine=true"] {
            let page = e.page(path, &cookie).await;
            assert_eq!(page.status, StatusCode::OK, "{}: {path}", e.engine);
            assert!(
                !page.body.contains("Шаршенов"),
                "{}: {path} names the child",
                e.engine
            );
        }
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn probing_a_national_id_registered_elsewhere_leaves_a_trace() {
    for e in common::envs("tzhs-kg").await {
        e.user("boss", &[Role::Supervisor], None).await;
        e.user("worker", &[Role::Specialist], Some(ISSYK_KUL)).await;
        let boss = e.api_login("boss").await;
        let worker = e.api_login("worker").await;
        // A child registered in another oblast.
        let mut elsewhere = child("20903201500011", "11204198800123");
        elsewhere["child"]["residence_territory"] = json!(ALAMUDUN);
        let reg = register(&e, &boss, elsewhere).await;
        let far_id = reg["person_id"].as_str().expect("id").to_string();
        // The worker tries that identifier on an invalid registration (nothing is stored).
        let mut probe = child("", "");
        probe["child"]["surname"] = json!("1");
        probe["relatives"][0]["person"] = json!({"surname": "Шаршенов", "given_name": "Азамат",
            "sex": "male", "birth_date": "2015-03-09", "national_id": "20903201500011"});
        let r = e
            .json("POST", "/api/v1/persons", Some(&worker), probe)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}: {}",
            e.engine,
            r.body
        );
        let seen = e
            .app
            .store
            .views_of("person", &far_id, 20)
            .await
            .expect("views");
        let worker_id = e
            .app
            .store
            .user_by_login("worker")
            .await
            .unwrap()
            .unwrap()
            .id;
        assert!(
            seen.iter()
                .any(|v| v.action == "identifier_match" && v.actor == worker_id),
            "{}: {seen:?}",
            e.engine
        );
        e.assert_ledger_holds().await;
    }
}

async fn post_login(e: &Env, headers: &[(&str, &str)]) -> StatusCode {
    let body = "login=worker&password=correct+horse+battery+staple";
    let mut b = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "kamkor.example");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    e.send(b.body(Body::from(body)).expect("request"))
        .await
        .status
}

#[tokio::test]
async fn forms_posted_from_another_site_are_refused_even_the_login() {
    for e in common::envs("tzhs-kg").await {
        e.user("worker", &[Role::Specialist], Some(ISSYK_KUL)).await;
        assert_eq!(
            post_login(&e, &[("sec-fetch-site", "cross-site")]).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            post_login(&e, &[("sec-fetch-site", "same-site")]).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            post_login(&e, &[("origin", "https://evil.example")]).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            post_login(&e, &[("origin", "null")]).await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            post_login(&e, &[("sec-fetch-site", "same-origin")]).await,
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            post_login(&e, &[("origin", "https://kamkor.example")]).await,
            StatusCode::SEE_OTHER
        );
        // Behind a proxy that rewrites Host, the forwarded host counts.
        assert_eq!(
            post_login(
                &e,
                &[
                    ("origin", "https://kamkor.gov.kg"),
                    ("x-forwarded-host", "kamkor.gov.kg")
                ]
            )
            .await,
            StatusCode::SEE_OTHER
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn bad_json_errors_do_not_echo_what_was_sent() {
    for e in common::envs("tzhs-kg").await {
        e.user("worker", &[Role::Specialist], Some(ISSYK_KUL)).await;
        let t = e.api_login("worker").await;
        let r = e
            .json(
                "PUT",
                "/api/v1/persons/00000000-0000-0000-0000-000000000000",
                Some(&t),
                json!({"version": "Сидоров 10806202500001", "person": {}}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{}: {}",
            e.engine,
            r.body
        );
        assert!(
            !r.body.contains("Сидоров") && !r.body.contains("10806202500001"),
            "{}",
            r.body
        );
        assert_eq!(r.json()["error"]["field"], "version");
    }
}

#[tokio::test]
async fn administration_answers_refuse_others_before_looking_anything_up() {
    for e in common::envs("tzhs-kg").await {
        e.user("worker", &[Role::Specialist], Some(ISSYK_KUL)).await;
        let t = e.api_login("worker").await;
        // Break-the-glass reviews are for supervisors and administrators.
        let r = e.get("/api/v1/admin/break-glass", Some(&t)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}: {}", e.engine, r.body);
        // An existing client id and a missing one answer alike.
        let mut tx = e.app.store.begin("test", None).await.unwrap();
        let client = kamkor_store::ApiClientRow {
            id: uuid::Uuid::now_v7().to_string(),
            version: 1,
            name: "Тест".into(),
            status: "active".into(),
            scope_territory: ISSYK_KUL.into(),
            ..Default::default()
        };
        tx.insert_api_client(&client).await.unwrap();
        tx.commit().await.unwrap();
        let a = e
            .get(&format!("/api/v1/admin/clients/{}", client.id), Some(&t))
            .await;
        let b = e
            .get(
                &format!("/api/v1/admin/clients/{}", uuid::Uuid::now_v7()),
                Some(&t),
            )
            .await;
        assert_eq!(
            (a.status, a.body.clone()),
            (b.status, b.body),
            "{}",
            e.engine
        );
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        e.assert_ledger_holds().await;
    }
}
