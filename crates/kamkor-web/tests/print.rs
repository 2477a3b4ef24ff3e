//! Printing the personal file (issue 4 item 6; seed 000 §21): a print-ready page and a PDF,
//! stamped with who printed it and when, each print in the ledger; refused like an export.

mod common;

use axum::http::{StatusCode, header};
use kamkor_domain::policy::Role;

#[tokio::test]
async fn the_personal_file_prints_as_a_page_and_a_pdf_with_the_print_stamp() {
    for e in common::envs("tzhs-kg").await {
        e.user("worker", &[Role::Specialist], None).await;
        e.user("far", &[Role::Specialist], Some("41703000000000"))
            .await;
        e.user("auditor", &[Role::Auditor], None).await;
        kamkor_app::demo::generate(&e.app, 20, 3, 0, |_| {})
            .await
            .expect("demo");
        let t = e.api_login("worker").await;
        let r = e.get("/api/v1/persons?q=", Some(&t)).await;
        let item = r.json()["items"][0].clone();
        let id = item["id"].as_str().expect("id").to_string();
        let surname = item["surname"].as_str().expect("surname").to_string();
        let (cookie, _) = e.page_login("worker").await;
        let card = e.page(&format!("/persons/{id}"), &cookie).await;
        assert!(
            card.body.contains(&format!("/persons/{id}/print")),
            "{}",
            e.engine
        );

        let page = e.page(&format!("/persons/{id}/print"), &cookie).await;
        assert_eq!(page.status, StatusCode::OK, "{}: {}", e.engine, page.body);
        for text in [
            surname.as_str(),
            "Распечатано",
            "(worker)",
            "Родители и родственники",
        ] {
            assert!(page.body.contains(text), "{}: no {text:?}", e.engine);
        }
        let pdf = e.page(&format!("/persons/{id}/print.pdf"), &cookie).await;
        assert_eq!(pdf.status, StatusCode::OK, "{}", e.engine);
        assert_eq!(
            pdf.headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/pdf")
        );
        assert!(pdf.body.starts_with("%PDF-"), "{}", e.engine);
        let prints: Vec<_> = e
            .app
            .store
            .views_of("person", &id, 50)
            .await
            .expect("views")
            .into_iter()
            .filter(|v| v.action == "print")
            .collect();
        assert_eq!(prints.len(), 2, "{}: {prints:?}", e.engine);

        // Outside the territory: like a missing record. Auditors do not print files.
        let (far, _) = e.page_login("far").await;
        let r = e.page(&format!("/persons/{id}/print.pdf"), &far).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", e.engine);
        let (aud, _) = e.page_login("auditor").await;
        let r = e.page(&format!("/persons/{id}/print"), &aud).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", e.engine);
        e.assert_ledger_holds().await;
    }
}
