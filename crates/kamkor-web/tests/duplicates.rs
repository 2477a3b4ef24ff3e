//! Issue 6 items 1–2 through the real router: the duplicate warning at registration (API and
//! page) — the likely match beside what was typed, "different" needing a reason and going to
//! the ledger, matches outside the scope only counted — and the search filters and evidence.

mod common;

use axum::http::StatusCode;
use kamkor_domain::policy::Role;
use kamkor_store::Table;
use serde_json::{Value, json};

const AK_SUU: &str = "41702205000000";
const ALAMUDUN: &str = "41708203000000";

fn child(surname: &str, given: &str, birth: &str, pin: &str, territory: &str) -> Value {
    json!({
        "child": {
            "surname": surname, "given_name": given, "patronymic": "",
            "sex": "male", "birth_date": birth, "national_id": pin, "citizenship": "KG",
            "residence_territory": territory, "address": "с. Теплоключенка, ул. Ленина, 5",
        },
        "family": {"name": "", "address": ""},
        "relatives": [],
    })
}

#[tokio::test]
async fn registering_the_same_child_again_warns_and_different_needs_a_reason() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], Some(AK_SUU)).await;
        e.user("chui", &[Role::Specialist], Some(ALAMUDUN)).await;
        let t = e.api_login("spec").await;
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                child(
                    "Токтогулов",
                    "Бекзат",
                    "2015-03-09",
                    "20903201500011",
                    AK_SUU,
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        let first = r.json()["person_id"].as_str().unwrap().to_string();
        let before = e.app.store.count(Table::Persons).await.unwrap();

        // The same boy in Latin letters, day and month swapped, no PIN: a warning, nothing
        // stored, the match with its evidence.
        let again = child("Toktogulov", "Bekzat", "2015-09-03", "", AK_SUU);
        let r = e
            .json("POST", "/api/v1/persons", Some(&t), again.clone())
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}: {}", e.engine, r.body);
        let err = &r.json()["error"];
        assert_eq!(err["code"], "likely_duplicates");
        assert_eq!(err["candidates"][0]["id"], first.as_str());
        assert_eq!(
            err["candidates"][0]["match"]["birth_date"],
            "day_month_swapped"
        );
        assert!(err["candidates"][0]["match"]["score"].as_f64().unwrap() >= 0.6);
        assert_eq!(e.app.store.count(Table::Persons).await.unwrap(), before);

        // "Different" without a reason: the field is named, nothing stored.
        let mut answer = again.clone();
        answer["distinct_from"] = json!([first]);
        let r = e
            .json("POST", "/api/v1/persons", Some(&t), answer.clone())
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.json()["error"]["field"], "distinct_reason");
        assert_eq!(e.app.store.count(Table::Persons).await.unwrap(), before);

        // With a reason: saved, the decision in the ledger, the pair remembered.
        answer["distinct_reason"] = json!("Брат-близнец, другое свидетельство о рождении");
        let r = e.json("POST", "/api/v1/persons", Some(&t), answer).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        let second = r.json()["person_id"].as_str().unwrap().to_string();
        let history = e
            .app
            .store
            .changes_for("person", second.parse().unwrap())
            .await
            .unwrap();
        let distinct = history
            .iter()
            .find(|c| c.action == "distinct")
            .expect("the decision is in the ledger");
        let detail = distinct.after.clone().unwrap_or_default().to_string();
        assert!(
            detail.contains(&first) && detail.contains("Брат-близнец"),
            "{detail}"
        );
        let pairs = e.app.store.distinct_pairs().await.unwrap();
        assert_eq!(pairs.len(), 1);

        // A worker of another district sees no personal data of the match, only that one
        // exists elsewhere.
        let chui = e.api_login("chui").await;
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&chui),
                child("Токтогулов", "Бекзат", "2015-03-09", "", ALAMUDUN),
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}: {}", e.engine, r.body);
        let err = &r.json()["error"];
        assert_eq!(err["candidates"].as_array().unwrap().len(), 0);
        assert!(err["elsewhere"].as_u64().unwrap() >= 1);
        assert!(!r.body.contains("Теплоключенка") && !r.body.contains(&first));
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn the_registration_page_shows_matches_side_by_side() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], Some(AK_SUU)).await;
        let t = e.api_login("spec").await;
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                child("Асанов", "Айбек", "2015-03-09", "20903201500011", AK_SUU),
            )
            .await;
        let first = r.json()["person_id"].as_str().unwrap().to_string();
        let (cookie, csrf) = e.page_login("spec").await;
        let mut fields = vec![
            ("_csrf", csrf.as_str()),
            ("relatives_count", "1"),
            ("child.surname", "Asanov"),
            ("child.given_name", "Aybek"),
            ("child.sex", "male"),
            ("child.birth_date", "2015-03-09"),
            ("child.citizenship", "KG"),
            ("child.residence_territory", AK_SUU),
            ("child.address", "с. Ак-Суу"),
            ("family_mode", "none"),
        ];
        let r = e.form("/register", Some(&cookie), &fields).await;
        assert_eq!(r.status, StatusCode::OK, "{}", e.engine);
        assert!(r.body.contains("Возможно, этот человек уже есть в реестре"));
        assert!(r.body.contains("Асанов Айбек"), "the match is shown");
        assert!(
            r.body.contains("value=\"Asanov\""),
            "what was typed is kept"
        );
        assert!(r.body.contains(&format!("href=\"/persons/{first}\"")));
        assert!(r.body.contains("дата рождения совпадает"));
        // Different, without a reason: the reason field is named.
        fields.push(("distinct_from", first.as_str()));
        fields.push(("confirm_distinct", "1"));
        let r = e.form("/register", Some(&cookie), &fields).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("id=\"f-distinct-reason\""));
        fields.push((
            "distinct_reason",
            "Другой ребёнок: сверено по свидетельству",
        ));
        let r = e.form("/register", Some(&cookie), &fields).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn search_filters_and_evidence_through_page_and_api() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], Some(AK_SUU)).await;
        let t = e.api_login("spec").await;
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                child(
                    "Жумабеков",
                    "Өмүрбек",
                    "2012-11-02",
                    "20211201200033",
                    AK_SUU,
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        let id = r.json()["person_id"].as_str().unwrap().to_string();
        let r = e
            .get("/api/v1/persons?q=Jumabekov%20Omurbek&sex=male", Some(&t))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let j = r.json();
        assert_eq!(j["ranked"], true);
        assert_eq!(j["items"][0]["id"], id.as_str());
        assert!(j["items"][0]["match"]["name"].as_f64().unwrap() > 0.9);
        let r = e
            .get("/api/v1/persons?q=Jumabekov%20Omurbek&sex=female", Some(&t))
            .await;
        assert!(r.json()["items"].as_array().unwrap().is_empty());
        let r = e.get("/api/v1/persons?age_from=x", Some(&t)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["error"]["field"], "age_from");
        let r = e
            .get(&format!("/api/v1/persons?territory={ALAMUDUN}"), Some(&t))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "out of scope is refused");
        // The page: the filters, the ranked list and why each person matched.
        let (cookie, _) = e.page_login("spec").await;
        let r = e
            .page("/persons?q=%D0%96%D1%83%D0%BC%D0%B0%D0%B1%D0%B5%D0%BA%D0%BE%D0%B2+20211201200034&status=none", &cookie)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("Жумабеков Өмүрбек"), "{}", e.engine);
        assert!(r.body.contains("идентификатор отличается на одну цифру"));
        assert!(r.body.contains("name=\"age_from\""));
        let r = e.page("/persons?age_from=9&age_to=3", &cookie).await;
        assert!(r.body.contains("Возраст «до» меньше возраста «от»."));
    }
}
