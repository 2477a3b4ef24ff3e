//! Issue 6 item 3 through the real router, on both engines: a supervisor merges two records
//! of one person (API and page). Both histories are kept: the merged record stays, read-only,
//! with its own history, and the kept one shows its cases; the identifier moves; the decision
//! and its reason are in the ledger; the index forgets the merged record. Denials: a
//! specialist, a supervisor of another district, a missing reason, a stale version, a record
//! merged already.

mod common;

use axum::http::StatusCode;
use kamkor_domain::policy::Role;
use serde_json::{Value, json};

const AK_SUU: &str = "41702205000000";
const ALAMUDUN: &str = "41708203000000";

fn child(surname: &str, given: &str, birth: &str, pin: &str) -> Value {
    json!({
        "child": {
            "surname": surname, "given_name": given, "patronymic": "",
            "sex": "female", "birth_date": birth, "national_id": pin, "citizenship": "KG",
            "residence_territory": AK_SUU, "address": "с. Теплоключенка, ул. Ленина, 7",
        },
        "family": {"name": "", "address": ""},
        "relatives": [],
    })
}

fn serving_unit(e: &common::Env) -> String {
    let p = &e.app.profile;
    p.agencies
        .iter()
        .filter(|a| a.kind == "territorial_unit" && p.territory_within(AK_SUU, &a.territory))
        .max_by_key(|a| p.territory_path(&a.territory).len())
        .map(|a| a.code.clone())
        .expect("a territorial unit serves the place")
}

/// Two records of one girl: the first without an identifier, the second (typed in Latin,
/// said to be someone else at registration) with one and with a case.
async fn two_records(e: &common::Env, t: &str) -> (String, String, String) {
    let r = e
        .json(
            "POST",
            "/api/v1/persons",
            Some(t),
            child("Осмонова", "Айгүл", "2014-05-06", ""),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
    let a = r.json()["person_id"].as_str().unwrap().to_string();
    // Registered under a mistyped surname (no warning), corrected later: now a likely
    // duplicate nobody has ruled on.
    let r = e
        .json(
            "POST",
            "/api/v1/persons",
            Some(t),
            child("Bekmuratova", "Aigul", "2014-06-05", "10506201400021"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
    let b = r.json()["person_id"].as_str().unwrap().to_string();
    let r = e
        .json(
            "PUT",
            &format!("/api/v1/persons/{b}"),
            Some(t),
            json!({"version": 1, "person": child("Osmonova", "Aigul", "2014-06-05", "10506201400021")["child"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
    let today = kamkor_store::now_utc().date();
    let r = e
        .json(
            "POST",
            "/api/v1/cases",
            Some(t),
            json!({
                "subject_kind": "child", "subject_id": b,
                "identified_on": kamkor_domain::records::format_date(today),
                "identification_territory": AK_SUU, "responsible_org": serving_unit(e),
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
    let case = r.json()["id"].as_str().unwrap().to_string();
    (a, b, case)
}

fn version(e: &common::Env, v: &Value) -> i64 {
    v["person"]["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("{}: no version in {v}", e.engine))
}

#[tokio::test]
async fn a_supervisor_merges_two_records_keeping_both_histories() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], Some(AK_SUU)).await;
        e.user("boss", &[Role::Supervisor], Some(AK_SUU)).await;
        e.user("other_boss", &[Role::Supervisor], Some(ALAMUDUN))
            .await;
        let spec = e.api_login("spec").await;
        let (a, b, case) = two_records(&e, &spec).await;

        // The card offers the other record as a likely duplicate, with its evidence.
        let r = e
            .get(&format!("/api/v1/persons/{a}/duplicates"), Some(&spec))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let d = r.json();
        assert_eq!(d["items"][0]["id"], b.as_str(), "{}: {d}", e.engine);
        assert_eq!(d["items"][0]["match"]["birth_date"], "day_month_swapped");

        let boss = e.api_login("boss").await;
        let va = version(
            &e,
            &e.get(&format!("/api/v1/persons/{a}"), Some(&boss))
                .await
                .json(),
        );
        let vb = version(
            &e,
            &e.get(&format!("/api/v1/persons/{b}"), Some(&boss))
                .await
                .json(),
        );
        let body = |reason: &str, va: i64| json!({"version": va, "merged": b, "merged_version": vb, "reason": reason});
        let merge = format!("/api/v1/persons/{a}/merge");

        // Who may not: a specialist (forbidden), a supervisor elsewhere (as if missing).
        let r = e
            .json("POST", &merge, Some(&spec), body("тот же", va))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}: {}", e.engine, r.body);
        let other = e.api_login("other_boss").await;
        let r = e
            .json("POST", &merge, Some(&other), body("тот же", va))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}: {}", e.engine, r.body);
        // No reason; a stale version; merging a record with itself.
        let r = e.json("POST", &merge, Some(&boss), body("  ", va)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.json()["error"]["field"], "reason");
        let r = e
            .json("POST", &merge, Some(&boss), body("тот же", va - 1))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        let r = e
            .json(
                "POST",
                &merge,
                Some(&boss),
                json!({"version": va, "merged": a, "merged_version": va, "reason": "x"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "merge_same_record");
        // Nothing of that changed anything.
        assert!(
            e.app
                .store
                .merged_into(b.parse().unwrap())
                .await
                .unwrap()
                .is_none()
        );

        let reason = "Одна и та же девочка: совпадает свидетельство о рождении";
        let r = e.json("POST", &merge, Some(&boss), body(reason, va)).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let done = r.json();
        assert_eq!(done["id"], a.as_str());
        assert!(
            done["filled"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "national_id"),
            "{done}"
        );

        // The kept record: the identifier, the merged record, its case.
        let card = e
            .get(&format!("/api/v1/persons/{a}"), Some(&spec))
            .await
            .json();
        assert_eq!(card["person"]["national_id"], "10506201400021", "{card}");
        assert_eq!(card["merged"][0]["id"], b.as_str());
        assert!(
            card["cases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == case.as_str()),
            "{card}"
        );
        // The merged record: kept whole, read-only, pointing at the kept one.
        let merged = e
            .get(&format!("/api/v1/persons/{b}"), Some(&spec))
            .await
            .json();
        assert_eq!(merged["merged_into"], a.as_str());
        assert!(merged["person"]["national_id"].is_null());
        let history = merged["history"].as_array().unwrap();
        assert!(history.iter().any(|h| h["action"] == "create"), "{merged}");
        assert!(history.iter().any(|h| h["action"] == "merge"), "{merged}");
        let r = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{b}"),
                Some(&spec),
                json!({"version": version(&e, &merged), "person": child("Osmonova", "Aigul", "2014-06-05", "")["child"]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "already_merged");
        // Merged once: not again.
        let r = e
            .json("POST", &merge, Some(&boss), body(reason, va + 1))
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "already_merged");

        // The search finds the girl once, by either spelling.
        let r = e
            .get("/api/v1/persons?q=Osmonova%20Aigul", Some(&spec))
            .await;
        let items = r.json()["items"].as_array().unwrap().clone();
        assert!(items.iter().any(|i| i["id"] == a.as_str()), "{}", r.body);
        assert!(!items.iter().any(|i| i["id"] == b.as_str()), "{}", r.body);
        // The decision and its reason are on both records in the ledger.
        for id in [&a, &b] {
            let h = e
                .app
                .store
                .changes_for("person", id.parse().unwrap())
                .await
                .unwrap();
            let m = h
                .iter()
                .find(|c| c.action == "merge")
                .expect("merge recorded");
            assert!(
                m.after
                    .clone()
                    .unwrap_or_default()
                    .to_string()
                    .contains("свидетельство")
            );
        }
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn the_merge_page_compares_side_by_side_and_needs_a_reason() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], Some(AK_SUU)).await;
        e.user("boss", &[Role::Supervisor], Some(AK_SUU)).await;
        let spec = e.api_login("spec").await;
        let (a, b, _) = two_records(&e, &spec).await;

        // A specialist sees the likely duplicate on the card but no merge button, and the
        // merge page is refused.
        let (sc, _) = e.page_login("spec").await;
        let r = e.page(&format!("/persons/{a}"), &sc).await;
        assert!(
            r.body.contains("Возможные повторные записи"),
            "{}",
            e.engine
        );
        assert!(!r.body.contains("/merge?with="));
        let r = e.page(&format!("/persons/{a}/merge?with={b}"), &sc).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        let (cookie, csrf) = e.page_login("boss").await;
        let r = e.page(&format!("/persons/{a}"), &cookie).await;
        assert!(
            r.body.contains(&format!("/persons/{a}/merge?with={b}")),
            "{}",
            e.engine
        );
        let r = e
            .page(&format!("/persons/{a}/merge?with={b}"), &cookie)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        assert!(r.body.contains("Осмонова Айгүл") && r.body.contains("Osmonova Aigul"));
        assert!(
            r.body.contains("10506201400021"),
            "the identifier to take over is shown"
        );
        // Showing both records is two views in the ledger.
        for id in [&a, &b] {
            let views = e.app.store.views_of("person", id, 50).await.unwrap();
            assert!(
                views.iter().any(|v| v.action == "view"
                    && v.after
                        .as_ref()
                        .is_some_and(|x| x.to_string().contains("merge"))),
                "{}: {views:?}",
                e.engine
            );
        }
        let version_of = |body: &str, name: &str| {
            body.split(&format!("name=\"{name}\" value=\""))
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap_or_default()
                .to_string()
        };
        let kv = version_of(&r.body, "keep_version");
        let mv = version_of(&r.body, "merged_version");
        let path = format!("/persons/{a}/merge");
        let mut fields = vec![
            ("_csrf", csrf.as_str()),
            ("keep_version", kv.as_str()),
            ("merged", b.as_str()),
            ("merged_version", mv.as_str()),
        ];
        let r = e.form(&path, Some(&cookie), &fields).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert!(r.body.contains("id=\"f-reason\""));
        // Without the CSRF token nothing happens.
        let r = e
            .form(
                &path,
                Some(&cookie),
                &[("merged", b.as_str()), ("reason", "x")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        fields.push(("reason", "Тот же ребёнок, сверено по свидетельству"));
        let r = e.form(&path, Some(&cookie), &fields).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        assert_eq!(r.location_full(), format!("/persons/{a}?saved=merged"));
        let r = e.page(&format!("/persons/{a}?saved=merged"), &cookie).await;
        assert!(r.body.contains("Записи объединены"));
        assert!(r.body.contains("Объединённые с этой записи"));
        let r = e.page(&format!("/persons/{b}"), &cookie).await;
        assert!(r.body.contains("Эта запись объединена"));
        assert!(!r.body.contains(&format!("/persons/{b}/edit")));
        assert!(
            !r.body.contains(&format!("/persons/{b}/sections/")),
            "no section edits either"
        );
        e.assert_ledger_holds().await;
    }
}
