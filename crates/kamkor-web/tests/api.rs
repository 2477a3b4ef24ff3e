//! The JSON API through the real router and a real database, on every engine configured.

mod common;

use axum::http::StatusCode;
use kamkor_domain::policy::Role;
use kamkor_store::Table;
use serde_json::{Value, json};

const ISSYK_KUL_AK_SUU: &str = "41702205000000";
const CHUI_ALAMUDUN: &str = "41708203000000";

fn child_json(pin: &str, sex: &str, birth: &str) -> Value {
    json!({
        "child": {
            "surname": "Токтогулов", "given_name": "Бекзат", "patronymic": "Нурланович",
            "sex": sex, "birth_date": birth, "national_id": pin, "citizenship": "KG",
            "residence_territory": ISSYK_KUL_AK_SUU, "address": "с. Теплоключенка, ул. Ленина, 5",
            "legal_status": "LS02", "social_payments": ["SP05"],
        },
        "family": {"name": "", "address": ""},
        "relatives": [
            {"relation_kind": "mother", "relative_status": "labour_migrant",
             "person": {"surname": "Токтогулова", "given_name": "Айгерим", "sex": "female",
                        "birth_date": "1988-04-12", "national_id": "11204198800123"}},
        ],
    })
}

#[tokio::test]
async fn health_answers_without_login() {
    for e in common::envs("tzhs-kg").await {
        let r = e.get("/health", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", e.engine);
        let j = r.json();
        assert_eq!(j["engine"], e.engine);
        assert_eq!(j["schema_version"], kamkor_store::SCHEMA_VERSION);
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn api_without_login_is_401_with_json_error() {
    for e in common::envs("tzhs-kg").await {
        for path in [
            "/api/v1/persons",
            "/api/v1/me",
            "/api/v1/cases",
            "/api/v1/persons/00000000-0000-0000-0000-000000000000",
        ] {
            let r = e.get(path, None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{} {path}", e.engine);
            assert_eq!(r.json()["error"]["code"], "unauthenticated");
            assert!(r.json()["error"]["message"].is_string());
        }
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                None,
                child_json("", "male", "2015-03-09"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let r = e.get("/api/v1/persons", Some("not-a-real-token")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn wrong_login_is_refused_the_same_way_for_unknown_users() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let a = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": "spec", "password": "wrong password!"}),
            )
            .await;
        let b = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": "nobody", "password": "wrong password!"}),
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            a.body, b.body,
            "{}: unknown and known logins must look alike",
            e.engine
        );
        e.assert_ledger_holds().await;
    }
}

/// seed 000 §18: a PIN whose sex digit or birth date disagrees with the record is refused,
/// with the field named, and nothing is stored.
#[tokio::test]
async fn register_child_with_mismatched_pin_stores_nothing() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let t = e.api_login("spec").await;
        let before = e.app.store.count(Table::Persons).await.unwrap();
        // Sex digit 1 (female) for a boy.
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                child_json("10903201500011", "male", "2015-03-09"),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}: {}",
            e.engine,
            r.body
        );
        assert_eq!(r.json()["error"]["code"], "id_sex_mismatch");
        assert_eq!(r.json()["error"]["field"], "child.national_id");
        // Birth date 09.03.2015 in the PIN, 10.03.2015 on the record.
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                child_json("20903201500011", "male", "2015-03-10"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["error"]["code"], "id_birth_date_mismatch");
        // A bad relative PIN also refuses the whole registration.
        let mut body = child_json("20903201500011", "male", "2015-03-09");
        body["relatives"][0]["person"]["national_id"] = json!("21204198800123");
        let r = e.json("POST", "/api/v1/persons", Some(&t), body).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            r.json()["error"]["field"],
            "relatives[0].person.national_id"
        );
        assert_eq!(
            e.app.store.count(Table::Persons).await.unwrap(),
            before,
            "{}: nothing stored",
            e.engine
        );
        assert_eq!(e.app.store.count(Table::Families).await.unwrap(), 0);
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn register_find_open_case_and_read_back() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let t = e.api_login("spec").await;
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                child_json("20903201500011", "male", "2015-03-09"),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        let reg = r.json();
        let id = reg["person_id"].as_str().unwrap().to_string();
        assert!(
            reg["family_id"].is_string(),
            "a family is created with the child"
        );
        assert_eq!(reg["relative_ids"].as_array().unwrap().len(), 1);

        // Found by part of the surname, by PIN, by birth date (both ways of writing it).
        for q in [
            "?q=токтогул",
            "?q=%D0%A2%D0%9E%D0%9A%D0%A2%D0%9E%D0%93",
            "?q=20903201500011",
            "?q=09.03.2015",
            "?birth_date=2015-03-09",
            "?national_id=20903201500011",
            "?name=бекзат%20токтогулов",
        ] {
            let r = e.get(&format!("/api/v1/persons{q}"), Some(&t)).await;
            assert_eq!(r.status, StatusCode::OK, "{} {q}", e.engine);
            let items = r.json()["items"].as_array().unwrap().clone();
            assert!(
                items.iter().any(|p| p["id"] == id.as_str()),
                "{}: {q} should find the child",
                e.engine
            );
        }
        // The relative is not a subject: not in default search, but with include_relatives.
        let r = e.get("/api/v1/persons?q=айгерим", Some(&t)).await;
        assert!(r.json()["items"].as_array().unwrap().is_empty());
        let r = e
            .get("/api/v1/persons?q=айгерим&include_relatives=true", Some(&t))
            .await;
        assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);

        // The card shows relatives with their status, the family and the history.
        let card = e
            .get(&format!("/api/v1/persons/{id}"), Some(&t))
            .await
            .json();
        assert_eq!(card["person"]["national_id"], "20903201500011");
        assert_eq!(card["relatives"][0]["relative_status"], "labour_migrant");
        assert_eq!(card["families"].as_array().unwrap().len(), 1);
        assert_eq!(card["history"][0]["action"], "create");

        // Registering the same PIN again is refused.
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                child_json("20903201500011", "male", "2015-03-09"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["error"]["code"], "national_id_taken");

        // Open a case on the child.
        let case = json!({
            "subject_kind": "child", "subject_id": id, "identified_on": "2026-11-20",
            "identification_territory": ISSYK_KUL_AK_SUU, "identification_place": "school",
            "identification_place_text": "школа № 3", "source": "school", "categories": ["CAT04"],
            "responsible_org": "opsd-41702205000000",
        });
        let r = e
            .json("POST", "/api/v1/cases", Some(&t), case.clone())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        let c = r.json();
        assert_eq!(c["status"], "identified");
        let number = c["number"].as_str().unwrap().to_string();
        assert!(number.starts_with("ТЖС-"), "{number}");
        let r2 = e.json("POST", "/api/v1/cases", Some(&t), case).await.json();
        assert_ne!(r2["number"], number.as_str(), "case numbers are unique");
        let got = e
            .get(
                &format!("/api/v1/cases/{}", c["id"].as_str().unwrap()),
                Some(&t),
            )
            .await;
        assert_eq!(got.json()["case"]["number"], number.as_str());
        assert_eq!(got.json()["subject_person"]["id"], id.as_str());
        let mine = e.get("/api/v1/cases?mine=true", Some(&t)).await.json();
        assert_eq!(mine["items"].as_array().unwrap().len(), 2);

        // A case with bad input names the field.
        let r = e.json("POST", "/api/v1/cases", Some(&t), json!({"subject_kind": "child", "subject_id": id, "identified_on": "2099-01-01", "identification_territory": ISSYK_KUL_AK_SUU, "responsible_org": "opsd-41702205000000"})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["error"]["field"], "identified_on");
        e.assert_ledger_holds().await;
    }
}

/// No silent last-write-wins: a stale update is refused with what changed meanwhile.
#[tokio::test]
async fn stale_update_is_a_conflict_showing_what_changed() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let t = e.api_login("spec").await;
        let id = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                child_json("20903201500011", "male", "2015-03-09"),
            )
            .await
            .json()["person_id"]
            .as_str()
            .unwrap()
            .to_string();
        let card = e
            .get(&format!("/api/v1/persons/{id}"), Some(&t))
            .await
            .json();
        let mut draft = card["person"].clone();
        draft["address"] = json!("с. Тюп, ул. Манаса, 1");
        let r = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{id}"),
                Some(&t),
                json!({"version": 1, "person": draft}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        assert_eq!(r.json()["version"], 2);
        let mut other = card["person"].clone();
        other["given_name"] = json!("Бекзатбек");
        let r = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{id}"),
                Some(&t),
                json!({"version": 1, "person": other}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}: {}", e.engine, r.body);
        let j = r.json();
        assert_eq!(j["error"]["code"], "conflict");
        assert_eq!(j["error"]["current_version"], 2);
        assert_eq!(j["error"]["changes"][0]["fields"][0]["field"], "address");
        let now = e
            .get(&format!("/api/v1/persons/{id}"), Some(&t))
            .await
            .json();
        assert_eq!(
            now["person"]["given_name"], "Бекзат",
            "the stale write changed nothing"
        );
        // History keeps both versions: nothing is overwritten without a trace.
        assert_eq!(now["history"].as_array().unwrap().len(), 2);
        assert_eq!(
            now["history"][1]["changes"][0]["before"],
            "с. Теплоключенка, ул. Ленина, 5"
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn scope_and_role_denials() {
    for e in common::envs("tzhs-kg").await {
        e.user("issyk", &[Role::Specialist], Some("41702000000000"))
            .await; // Issyk-Kul oblast
        e.user("chui", &[Role::Specialist], Some("41708000000000"))
            .await; // Chui oblast
        e.user("viewer", &[Role::CentralViewer], None).await;
        e.user("auditor", &[Role::Auditor], None).await;
        let ik = e.api_login("issyk").await;
        let chui = e.api_login("chui").await;
        let viewer = e.api_login("viewer").await;
        let auditor = e.api_login("auditor").await;
        let id = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&ik),
                child_json("20903201500011", "male", "2015-03-09"),
            )
            .await
            .json()["person_id"]
            .as_str()
            .unwrap()
            .to_string();
        // Outside the scope answers exactly like a missing record.
        let out = e.get(&format!("/api/v1/persons/{id}"), Some(&chui)).await;
        let missing = e
            .get(
                "/api/v1/persons/0191f1d0-0000-7000-8000-000000000000",
                Some(&chui),
            )
            .await;
        assert_eq!(out.status, StatusCode::NOT_FOUND, "{}", e.engine);
        assert_eq!(out.body, missing.body);
        assert!(
            e.get("/api/v1/persons?q=токтогул", Some(&chui))
                .await
                .json()["items"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        // Registering into a territory outside the scope is refused.
        let mut body = child_json("20903201500022", "male", "2015-03-09");
        body["child"]["residence_territory"] = json!(CHUI_ALAMUDUN);
        body["relatives"][0]["person"]["national_id"] = json!("11204198800999");
        let r = e
            .json("POST", "/api/v1/persons", Some(&ik), body.clone())
            .await;
        // A denial is a 403, and the field says what to fix.
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json()["error"]["field"], "child.residence_territory");
        assert_eq!(r.json()["error"]["code"], "out_of_scope");
        assert_eq!(
            e.json("POST", "/api/v1/persons", Some(&chui), body)
                .await
                .status,
            StatusCode::CREATED
        );
        // The central viewer reads everything and edits nothing (seed 000 §25.1).
        assert_eq!(
            e.get(&format!("/api/v1/persons/{id}"), Some(&viewer))
                .await
                .status,
            StatusCode::OK
        );
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&viewer),
                child_json("20903201500033", "male", "2015-03-09"),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json()["error"]["code"], "forbidden");
        // An auditor sees no personal data.
        assert_eq!(
            e.get("/api/v1/persons", Some(&auditor)).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            e.get(&format!("/api/v1/persons/{id}"), Some(&auditor))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn malformed_json_gets_a_json_error() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let t = e.api_login("spec").await;
        let r = e
            .send(
                axum::http::Request::post("/api/v1/persons")
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {t}"))
                    .body(axum::body::Body::from("{not json"))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.json()["error"]["code"], "bad_request");
        let big = "x".repeat(kamkor_web::BODY_LIMIT + 10);
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                json!({"child": {"surname": big}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", e.engine);
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn reentry_yugra_registers_a_released_person_with_snils() {
    for e in common::envs("reentry-yugra").await {
        e.user("spec", &[Role::Specialist], None).await;
        let t = e.api_login("spec").await;
        let body = json!({
            "person": {
                "surname": "Иванов", "given_name": "Сергей", "patronymic": "Петрович", "sex": "male",
                "birth_date": "1985-06-01", "national_id": "112-233-445 95", "citizenship": "RU",
                "residence_territory": "71876000",
                "extra": {"release_date": "2026-10-01"},
            },
            "relatives": [],
        });
        let r = e
            .json("POST", "/api/v1/persons", Some(&t), body.clone())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        let id = r.json()["person_id"].as_str().unwrap().to_string();
        let p = e
            .get(&format!("/api/v1/persons/{id}"), Some(&t))
            .await
            .json();
        assert_eq!(p["person"]["national_id"], "11223344595");
        let mut bad = body;
        bad["person"]["national_id"] = json!("112-233-445 96");
        let r = e.json("POST", "/api/v1/persons", Some(&t), bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["error"]["code"], "id_bad_checksum");
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn one_time_password_must_be_changed_before_the_api_opens() {
    for e in common::envs("tzhs-kg").await {
        let otp = e.user_with_one_time_password("newbie").await;
        let r = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": "newbie", "password": otp}),
            )
            .await;
        let t = r.json()["token"].as_str().unwrap().to_string();
        assert_eq!(r.json()["user"]["must_change_password"], true);
        let r = e.get("/api/v1/persons", Some(&t)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", e.engine);
        assert_eq!(r.json()["error"]["code"], "password_change_required");
        let r = e
            .json(
                "POST",
                "/api/v1/password",
                Some(&t),
                json!({"current": otp, "new": "newbie-pass-long"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "the login in the password is refused"
        );
        assert_eq!(r.json()["error"]["code"], "password_contains_login");
        let r = e
            .json(
                "POST",
                "/api/v1/password",
                Some(&t),
                json!({"current": otp, "new": "синее небо над Нарыном"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}: {}", e.engine, r.body);
        assert_eq!(
            e.get("/api/v1/persons", Some(&t)).await.status,
            StatusCode::OK
        );
        e.assert_ledger_holds().await;
    }
}

/// Linked records (a relative's children, family members, a case's subject) outside the
/// user's territory are not shown through an in-scope record.
#[tokio::test]
async fn linked_records_outside_the_scope_stay_hidden() {
    for e in common::envs("tzhs-kg").await {
        e.user("boss", &[Role::Supervisor], None).await;
        e.user("issyk", &[Role::Specialist], Some("41702000000000"))
            .await;
        let boss = e.api_login("boss").await;
        let ik = e.api_login("issyk").await;
        // A child in Bishkek whose mother lives in Issyk-Kul.
        let mut body = child_json("20903201500011", "male", "2015-03-09");
        body["child"]["residence_territory"] = json!("41711201000000");
        body["relatives"][0]["person"]["residence_territory"] = json!(ISSYK_KUL_AK_SUU);
        body["family"]["territory"] = json!(ISSYK_KUL_AK_SUU);
        let r = e.json("POST", "/api/v1/persons", Some(&boss), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        let reg = r.json();
        let child = reg["person_id"].as_str().unwrap();
        let mother = reg["relative_ids"][0].as_str().unwrap();
        let family = reg["family_id"].as_str().unwrap();
        assert_eq!(
            e.get(&format!("/api/v1/persons/{child}"), Some(&ik))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let m = e.get(&format!("/api/v1/persons/{mother}"), Some(&ik)).await;
        assert_eq!(m.status, StatusCode::OK, "{}", e.engine);
        assert!(
            m.json()["relative_of"].as_array().unwrap().is_empty(),
            "{}: {}",
            e.engine,
            m.body
        );
        assert!(
            !m.body.contains("20903201500011"),
            "the child's PIN must not leak"
        );
        let f = e
            .get(&format!("/api/v1/families/{family}"), Some(&ik))
            .await;
        assert_eq!(f.status, StatusCode::OK);
        assert!(
            !f.body.contains("20903201500011"),
            "{}: {}",
            e.engine,
            f.body
        );
        assert_eq!(
            f.json()["members"].as_array().unwrap().len(),
            1,
            "only the mother"
        );
        // A case identified in Issyk-Kul on the Bishkek child: the case is readable, its
        // subject is not.
        let case = json!({
            "subject_kind": "child", "subject_id": child, "identified_on": "2026-11-20",
            "identification_territory": ISSYK_KUL_AK_SUU, "responsible_org": "opsd-41702205000000",
        });
        let c = e.json("POST", "/api/v1/cases", Some(&boss), case).await;
        assert_eq!(c.status, StatusCode::CREATED, "{}: {}", e.engine, c.body);
        let got = e
            .get(
                &format!("/api/v1/cases/{}", c.json()["id"].as_str().unwrap()),
                Some(&ik),
            )
            .await;
        assert_eq!(got.status, StatusCode::OK);
        assert!(
            got.json()["subject_person"].is_null(),
            "{}: {}",
            e.engine,
            got.body
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn registration_and_cases_stay_inside_the_scope_and_the_rules() {
    for e in common::envs("tzhs-kg").await {
        e.user("issyk", &[Role::Specialist], Some("41702000000000"))
            .await;
        let ik = e.api_login("issyk").await;
        // A relative or family placed outside the scope is refused, field by field.
        let mut body = child_json("20903201500011", "male", "2015-03-09");
        body["relatives"][0]["person"]["residence_territory"] = json!(CHUI_ALAMUDUN);
        body["family"]["territory"] = json!(CHUI_ALAMUDUN);
        let r = e.json("POST", "/api/v1/persons", Some(&ik), body).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}: {}", e.engine, r.body);
        let fields: Vec<String> = r.json()["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap().to_string())
            .collect();
        assert!(
            fields.contains(&"relatives[0].person.residence_territory".to_string()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"family.territory".to_string()),
            "{fields:?}"
        );
        assert_eq!(e.app.store.count(Table::Persons).await.unwrap(), 0);
        // A correct registration; then cases that break the rules.
        let reg = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&ik),
                child_json("20903201500011", "male", "2015-03-09"),
            )
            .await
            .json();
        let child = reg["person_id"].as_str().unwrap().to_string();
        let mother = reg["relative_ids"][0].as_str().unwrap().to_string();
        let case = |subject: &str, date: &str, org: &str| {
            json!({"subject_kind": "child", "subject_id": subject, "identified_on": date,
                   "identification_territory": ISSYK_KUL_AK_SUU, "responsible_org": org})
        };
        let r = e
            .json(
                "POST",
                "/api/v1/cases",
                Some(&ik),
                case(&mother, "2026-11-20", "opsd-41702205000000"),
            )
            .await;
        assert_eq!(r.json()["error"]["code"], "not_a_subject", "{}", e.engine);
        let r = e
            .json(
                "POST",
                "/api/v1/cases",
                Some(&ik),
                case(&child, "2014-01-01", "opsd-41702205000000"),
            )
            .await;
        assert_eq!(r.json()["error"]["code"], "before_birth");
        let r = e
            .json(
                "POST",
                "/api/v1/cases",
                Some(&ik),
                case(&child, "2026-11-20", "opsd-41711201000000"),
            )
            .await;
        assert_eq!(r.json()["error"]["code"], "org_not_serving_territory");
        assert_eq!(e.app.store.count(Table::Cases).await.unwrap(), 0);
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let a = e.api_login("spec").await;
        let b = e.api_login("spec").await;
        let r = e
            .json(
                "POST",
                "/api/v1/password",
                Some(&a),
                json!({"current": "correct horse battery staple", "new": "жёлтый автобус в Оше"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}: {}", e.engine, r.body);
        assert_eq!(
            e.get("/api/v1/me", Some(&a)).await.status,
            StatusCode::OK,
            "this session stays"
        );
        assert_eq!(
            e.get("/api/v1/me", Some(&b)).await.status,
            StatusCode::UNAUTHORIZED,
            "{}: the other one ends",
            e.engine
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn families_are_found_by_name_in_any_case() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let t = e.api_login("spec").await;
        e.json(
            "POST",
            "/api/v1/persons",
            Some(&t),
            child_json("20903201500011", "male", "2015-03-09"),
        )
        .await;
        for q in ["Токтогуловых", "токтогул", "ТОКТОГУЛ", "семья токтогуловых"]
        {
            let r = e
                .get(
                    &format!(
                        "/api/v1/families?name={}",
                        serde_urlencoded::to_string([("x", q)])
                            .unwrap()
                            .trim_start_matches("x=")
                    ),
                    Some(&t),
                )
                .await;
            assert_eq!(
                r.json()["items"].as_array().unwrap().len(),
                1,
                "{}: {q}",
                e.engine
            );
        }
        let r = e.get("/api/v1/families?name=%25_%25", Some(&t)).await;
        assert!(
            r.json()["items"].as_array().unwrap().is_empty(),
            "wildcards are literal"
        );
        let long = "я".repeat(300);
        assert_eq!(
            e.get(&format!("/api/v1/families?name={long}"), Some(&t))
                .await
                .status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        e.assert_ledger_holds().await;
    }
}

/// Repeated failed logins lock the account for a while; the answer stays the same as for a
/// wrong password, so the lock reveals nothing.
#[tokio::test]
async fn repeated_failed_logins_lock_the_account_for_a_while() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let wrong = || json!({"login": "spec", "password": "not the password"});
        let mut first = None;
        for _ in 0..5 {
            let r = e.json("POST", "/api/v1/login", None, wrong()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            first.get_or_insert(r.body);
        }
        let r = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": "spec", "password": "correct horse battery staple"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{}: locked even with the right password",
            e.engine
        );
        assert_eq!(Some(r.body), first, "the same answer as a wrong password");
        let user = e.app.store.user_by_login("spec").await.unwrap().unwrap();
        let (failures, until) = e.app.store.login_failures(&user.id).await.unwrap();
        assert_eq!(failures, 5);
        assert!(until.is_some());
        // When the lock has run out, the right password works and the count starts again.
        e.app
            .store
            .lock_login(&user.id, "2000-01-01T00:00:00.000Z")
            .await
            .unwrap();
        let r = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": "spec", "password": "correct horse battery staple"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", e.engine);
        assert_eq!(e.app.store.login_failures(&user.id).await.unwrap().0, 0);
        // Failed logins and the refusal are in the change history of the account.
        let log = e
            .app
            .store
            .changes_for("user", uuid::Uuid::parse_str(&user.id).unwrap())
            .await
            .unwrap();
        assert_eq!(log.iter().filter(|c| c.action == "login_failed").count(), 5);
        assert_eq!(
            log.iter()
                .filter(|c| c.action == "login_refused_locked")
                .count(),
            1
        );
        e.assert_ledger_holds().await;
    }
}

/// Issue 4 items 1 and 5: an update's entry holds the fields that changed, before and after,
/// and the day the change took effect (seed 000 §20); bad days are refused by field.
#[tokio::test]
async fn history_holds_changed_fields_with_effective_and_recorded_dates() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        e.user("auditor", &[Role::Auditor], None).await;
        let t = e.api_login("spec").await;
        let auditor = e.api_login("auditor").await;
        let id = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                child_json("20903201500011", "male", "2015-03-09"),
            )
            .await
            .json()["person_id"]
            .as_str()
            .unwrap()
            .to_string();
        let card = e
            .get(&format!("/api/v1/persons/{id}"), Some(&t))
            .await
            .json();
        let mut draft = card["person"].clone();
        draft["address"] = json!("с. Тюп, ул. Манаса, 1");
        let today = time::OffsetDateTime::now_utc().date();
        let iso = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day());
        let earlier = iso(today - time::Duration::days(30));
        for (day, code) in [
            (iso(today + time::Duration::days(2)), "future_date"),
            ("30.02.2026".to_string(), "bad_date"),
        ] {
            let r = e
                .json(
                    "PUT",
                    &format!("/api/v1/persons/{id}"),
                    Some(&t),
                    json!({"version": 1, "person": draft, "effective_on": day}),
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{}: {}",
                e.engine,
                r.body
            );
            let j = r.json();
            assert_eq!(j["error"]["field"], "effective_on", "{}", r.body);
            assert_eq!(j["error"]["code"], code, "{}", r.body);
        }
        let r = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{id}"),
                Some(&t),
                json!({"version": 1, "person": draft, "effective_on": earlier}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        assert_eq!(r.json()["version"], 2, "the refused edits changed nothing");
        let now = e
            .get(&format!("/api/v1/persons/{id}"), Some(&t))
            .await
            .json();
        let history = now["history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[1]["effective_on"], earlier.as_str());
        assert_eq!(
            history[0]["effective_on"],
            history[0]["at"].as_str().unwrap()[..10],
            "a creation takes effect the day it is recorded"
        );
        assert_eq!(history[1]["changes"][0]["field"], "address");
        // The ledger entry itself holds only what changed.
        let r = e
            .get(
                &format!("/api/v1/ledger/entries?entity=person&id={id}&action=update"),
                Some(&auditor),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let entry = &r.json()["items"][0];
        assert_eq!(
            entry["before"],
            json!({"address": "с. Теплоключенка, ул. Ленина, 5"})
        );
        assert_eq!(entry["after"], json!({"address": "с. Тюп, ул. Манаса, 1"}));
        assert_eq!(entry["effective_on"], earlier.as_str());
        e.assert_ledger_holds().await;
    }
}
