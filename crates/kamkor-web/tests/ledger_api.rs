//! The ledger's proofs over the HTTP API (issue 4 item 4, "How it will be checked": an
//! inclusion proof exported by the API verifies offline). SQLite, and PostgreSQL when
//! `KAMKOR_TEST_PG` is set.

mod common;

use axum::http::StatusCode;
use kamkor_app::ledger::{ConsistencyProof, InclusionProof, LedgerKeys, ProofProblem};
use kamkor_domain::policy::Role;

#[tokio::test]
async fn proofs_from_the_api_verify_offline_and_tampering_does_not() {
    for e in common::envs("tzhs-kg").await {
        let key_dir = tempfile::tempdir().expect("key dir");
        let keys = LedgerKeys::open_or_create(key_dir.path()).expect("keys");
        e.user("auditor", &[Role::Auditor], None).await;
        e.user("worker", &[Role::Specialist], None).await;
        let auditor = e.api_login("auditor").await;
        let worker = e.api_login("worker").await;

        // No checkpoint yet: nothing to prove.
        let r = e.get("/api/v1/ledger/checkpoint", Some(&auditor)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}: {}", e.engine, r.body);

        // Enough entries for kept subtrees (256 leaves and more), sealed twice.
        kamkor_app::demo::generate(&e.app, 40, 5, 0, |_| {})
            .await
            .expect("demo");
        let first = e.app.seal_ledger(&keys).await.expect("seal").expect("cp");
        kamkor_app::demo::generate(&e.app, 200, 6, 1, |_| {})
            .await
            .expect("demo");
        let second = e.app.seal_ledger(&keys).await.expect("seal").expect("cp");
        // The checkpoint writer kept the subtrees of 256 leaves the proofs read.
        assert!(e.app.store.ledger_node(8, 0).await.expect("read").is_some());
        assert!(
            second.size > first.size + 256,
            "{}: {}",
            e.engine,
            second.size
        );

        let r = e.get("/api/v1/ledger/checkpoint", Some(&auditor)).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        assert_eq!(r.json()["size"], second.size);

        // Inclusion proofs for entries all over the tree verify with the public key alone.
        for pos in [0, 1, 255, 256, first.size - 1, first.size, second.size - 1] {
            let r = e
                .get(
                    &format!("/api/v1/ledger/entries/{pos}/proof"),
                    Some(&auditor),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}: {pos}: {}", e.engine, r.body);
            let p: InclusionProof = serde_json::from_str(&r.body).expect("proof JSON");
            assert_eq!(p.entry.pos, pos);
            p.verify(&keys.trusted)
                .unwrap_or_else(|x| panic!("{}: {pos}: {x}", e.engine));
            // Against the earlier checkpoint too, where the entry is under it.
            if pos < first.size {
                let r = e
                    .get(
                        &format!("/api/v1/ledger/entries/{pos}/proof?size={}", first.size),
                        Some(&auditor),
                    )
                    .await;
                let p: InclusionProof = serde_json::from_str(&r.body).expect("proof JSON");
                assert_eq!(p.checkpoint.size, first.size);
                p.verify(&keys.trusted).expect("verifies");
            }
            // A changed entry, or a key the verifier does not trust, is refused.
            let mut bad = p.clone();
            bad.entry.actor.push('x');
            assert_eq!(
                bad.verify(&keys.trusted),
                Err(ProofProblem::NotIncluded {
                    pos,
                    size: second.size
                })
            );
            let stranger = kamkor_ledger::SecretKey::from_seed([4; 32]).public();
            assert!(matches!(
                p.verify(&[stranger]),
                Err(ProofProblem::UnknownKey { .. })
            ));
        }

        // Consistency between the two checkpoints.
        let r = e
            .get(
                &format!("/api/v1/ledger/consistency?first={}", first.size),
                Some(&auditor),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let c: ConsistencyProof = serde_json::from_str(&r.body).expect("proof JSON");
        c.verify(&keys.trusted).expect("consistent");
        let mut bad = c.clone();
        bad.proof.reverse();
        assert!(bad.verify(&keys.trusted).is_err());

        // Bad input names the field; entries not yet sealed and unknown sizes answer 404.
        let r = e
            .get("/api/v1/ledger/entries/abc/proof", Some(&auditor))
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}: {}",
            e.engine,
            r.body
        );
        assert!(r.body.contains("pos"), "{}", r.body);
        let r = e
            .get(
                &format!("/api/v1/ledger/entries/{}/proof", second.size + 5),
                Some(&auditor),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = e
            .get("/api/v1/ledger/consistency?first=7", Some(&auditor))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);

        // Only auditors and administrators read the ledger; a refusal is recorded.
        for path in [
            "/api/v1/ledger/checkpoint".to_string(),
            "/api/v1/ledger/entries/0/proof".to_string(),
            format!("/api/v1/ledger/consistency?first={}", first.size),
        ] {
            let r = e.get(&path, Some(&worker)).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}: {path}", e.engine);
        }
        // Handing out an entry is itself in the ledger.
        let proofs = e
            .app
            .store
            .changes_by_action("ledger_proof", 100)
            .await
            .expect("read");
        assert!(!proofs.is_empty(), "{}", e.engine);
        kamkor_app::ledger::verify_ledger(&e.app.store, &keys.trusted, &e.app.ledger_origin())
            .await
            .expect("verify runs")
            .unwrap_or_else(|p| panic!("{}: {p}", e.engine));
    }
}

#[tokio::test]
async fn every_view_search_and_export_of_personal_data_is_in_the_ledger() {
    for e in common::envs("tzhs-kg").await {
        e.user("worker", &[Role::Specialist], None).await;
        let t = e.api_login("worker").await;
        let worker = e.app.store.user_by_login("worker").await.unwrap().unwrap();
        kamkor_app::demo::generate(&e.app, 20, 3, 0, |_| {})
            .await
            .expect("demo");
        let r = e.get("/api/v1/persons?q=", Some(&t)).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let id = r.json()["items"][0]["id"]
            .as_str()
            .expect("a person")
            .to_string();
        assert_eq!(
            e.get(&format!("/api/v1/persons/{id}"), Some(&t))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            e.get(&format!("/api/v1/persons/{id}/export"), Some(&t))
                .await
                .status,
            StatusCode::OK
        );
        let views = e
            .app
            .store
            .views_of("person", &id, 50)
            .await
            .expect("views");
        for action in ["search", "view", "export"] {
            assert!(
                views
                    .iter()
                    .any(|v| v.action == action && v.actor == worker.id),
                "{}: no {action} by the worker in {views:?}",
                e.engine
            );
        }
        // Views are not changes: the card's history shows only what changed the record.
        let history = e
            .app
            .store
            .changes_for("person", uuid::Uuid::parse_str(&id).unwrap())
            .await
            .unwrap();
        assert!(
            history
                .iter()
                .all(|c| !kamkor_store::VIEW_ACTIONS.contains(&c.action.as_str()))
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn the_auditor_searches_the_ledger_and_supervisors_see_who_viewed_a_record() {
    for e in common::envs("tzhs-kg").await {
        e.user("auditor", &[Role::Auditor], None).await;
        e.user("boss", &[Role::Supervisor], None).await;
        e.user("worker", &[Role::Specialist], None).await;
        kamkor_app::demo::generate(&e.app, 20, 3, 0, |_| {})
            .await
            .expect("demo");
        let t = e.api_login("worker").await;
        let r = e.get("/api/v1/persons?q=", Some(&t)).await;
        let id = r.json()["items"][0]["id"]
            .as_str()
            .expect("a person")
            .to_string();
        assert_eq!(
            e.get(&format!("/api/v1/persons/{id}"), Some(&t))
                .await
                .status,
            StatusCode::OK
        );

        // The auditor's page: the record's creation and the worker's view.
        let (cookie, _) = e.page_login("auditor").await;
        let home = e.page("/", &cookie).await;
        assert!(
            home.body.contains("href=\"/audit\""),
            "{}: the menu leads to the journal",
            e.engine
        );
        let page = e
            .page(&format!("/audit?entity=person&id={id}"), &cookie)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}: {}", e.engine, page.body);
        for text in [
            "Создание",
            "Просмотр карточки",
            "Показан в результатах поиска",
            "Тест worker",
        ] {
            assert!(page.body.contains(text), "{}: no {text:?}", e.engine);
        }
        // By worker and period; a bad date is named in Russian and nothing breaks.
        let page = e.page("/audit?actor=worker&from=2020-01-01", &cookie).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains(&id), "{}", e.engine);
        let page = e
            .page("/audit?from=31.02.2026&actor=nobody.here", &cookie)
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            e.engine
        );
        assert!(
            page.body.contains("Пользователя с таким логином нет."),
            "{}",
            e.engine
        );
        assert!(page.body.contains("Неверная дата"), "{}", e.engine);
        // The same over the API; the auditor's searches are themselves recorded.
        let a = e.api_login("auditor").await;
        let r = e
            .get(
                &format!("/api/v1/ledger/entries?entity=person&id={id}"),
                Some(&a),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        assert!(r.json()["items"].as_array().expect("items").len() >= 3);
        assert!(
            !e.app
                .store
                .changes_by_action("audit_search", 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Workers may not read the journal.
        let (wc, _) = e.page_login("worker").await;
        assert_eq!(e.page("/audit", &wc).await.status, StatusCode::FORBIDDEN);
        assert_eq!(
            e.get("/api/v1/ledger/entries", Some(&t)).await.status,
            StatusCode::FORBIDDEN
        );
        // The supervisor sees on the card who viewed it; the worker does not.
        let (bc, _) = e.page_login("boss").await;
        let card = e.page(&format!("/persons/{id}"), &bc).await;
        assert!(card.body.contains("Кто видел эту запись"), "{}", e.engine);
        assert!(card.body.contains("Тест worker"), "{}", e.engine);
        let card = e.page(&format!("/persons/{id}"), &wc).await;
        assert!(!card.body.contains("Кто видел эту запись"), "{}", e.engine);
        e.assert_ledger_holds().await;
    }
}
