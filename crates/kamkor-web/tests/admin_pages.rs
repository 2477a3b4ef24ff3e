//! The administrator's HTML pages (issue 3): registering users through the form, errors next
//! to fields, refusals, CSRF, suspension ending sessions, and public access requests.

#[path = "common/admin.rs"]
mod admin;
mod common;

use admin::{PASSWORD, admin_session, element_text};
use axum::http::{StatusCode, header};
use kamkor_domain::policy::Role;

const ROOT: &str = "41700000000000";
const BISHKEK: &str = "41711000000000";

fn in_a_year() -> String {
    let d = kamkor_store::now_utc().date() + time::Duration::days(365);
    kamkor_domain::records::format_date(d)
}

/// A complete registration form for a specialist of the Bishkek department.
fn user_fields<'a>(full_name: &'a str, pin: &'a str, until: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("full_name", full_name),
        ("national_id", pin),
        ("position", "Главный специалист"),
        ("organisation", "opsd-41711000000000"),
        ("org_inn", "01503201210123"),
        ("org_address", "г. Бишкек, ул. Токтогула, 1"),
        ("territorial_unit", BISHKEK),
        ("roles", "specialist"),
        ("scope", BISHKEK),
        ("valid_until", until),
    ]
}

fn with_csrf<'a>(mut f: Vec<(&'a str, &'a str)>, csrf: &'a str) -> Vec<(&'a str, &'a str)> {
    f.push(("_csrf", csrf));
    f
}

fn cookie_of(r: &common::Resp) -> String {
    r.headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string()
}

#[tokio::test]
async fn an_administrator_registers_a_user_who_must_change_the_password() {
    for e in common::envs("tzhs-kg").await {
        let (admin, csrf) = admin_session(&e, "admin1", Some(ROOT)).await;
        let form = e.page("/admin/users/new", &admin).await;
        assert_eq!(form.status, StatusCode::OK, "{}: {}", e.engine, form.body);
        assert!(form.body.contains("name=\"territorial_unit\""));
        assert!(form.body.contains("Специалист ведомства"));

        let until = in_a_year();
        let fields = with_csrf(
            user_fields("Асанова Айгуль Бакытовна", "11204198800123", &until),
            &csrf,
        );
        let r = e.form("/admin/users/new", Some(&admin), &fields).await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let login = element_text(&r.body, "new-login").expect("login shown");
        let password = element_text(&r.body, "one-time-password").expect("password shown");
        assert_eq!(login, "asanova.a", "{}", e.engine);
        assert!(password.len() >= 10, "{}: {password}", e.engine);
        assert!(r.body.contains("больше не будет показан"));

        // The card shows the registration data and never the password.
        let u = e.app.store.user_by_login(&login).await.unwrap().unwrap();
        let card = e.page(&format!("/admin/users/{}", u.id), &admin).await;
        assert_eq!(card.status, StatusCode::OK, "{}: {}", e.engine, card.body);
        assert!(card.body.contains("01503201210123"));
        assert!(card.body.contains("Главный специалист"));
        assert!(!card.body.contains(&password));
        let list = e.page("/admin/users?q=асанова", &admin).await;
        assert!(list.body.contains("asanova.a"), "{}", e.engine);

        // The new user logs in with the one-time password and is sent to change it.
        let r = e
            .form(
                "/login",
                None,
                &[("login", &login), ("password", &password)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        assert_eq!(r.location(), "/password");
        let cookie = cookie_of(&r);
        let home = e.page("/", &cookie).await;
        assert_eq!(home.status, StatusCode::SEE_OTHER, "{}", e.engine);
        assert_eq!(home.location(), "/password");
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn form_errors_are_shown_next_to_their_fields_with_the_input_kept() {
    for e in common::envs("tzhs-kg").await {
        let (admin, csrf) = admin_session(&e, "admin1", Some(ROOT)).await;
        let until = in_a_year();
        let mut fields = user_fields("Асанова", "123", &until);
        fields.retain(|(k, _)| *k != "roles");
        let fields = with_csrf(fields, &csrf);
        let r = e.form("/admin/users/new", Some(&admin), &fields).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}: {}",
            e.engine,
            r.body
        );
        for field in ["full_name", "national_id", "roles"] {
            assert!(
                r.body.contains(&format!("id=\"e-{field}\"")) || r.body.contains("id=\"f-roles\""),
                "{}: no error next to {field}",
                e.engine
            );
        }
        assert!(r.body.contains("Укажите фамилию и имя"));
        assert!(
            r.body.contains("value=\"Главный специалист\""),
            "input kept"
        );
        assert!(r.body.contains("value=\"01503201210123\""), "input kept");
        assert!(
            e.app
                .store
                .user_by_login("asanova")
                .await
                .unwrap()
                .is_none()
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn a_specialist_is_refused_the_administration_pages() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], Some(BISHKEK)).await;
        let (cookie, _) = e.page_login("spec").await;
        for path in [
            "/admin",
            "/admin/users",
            "/admin/users/new",
            "/admin/clients",
        ] {
            let r = e.page(path, &cookie).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}: {path}", e.engine);
        }
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused() {
    for e in common::envs("tzhs-kg").await {
        let (admin, _) = admin_session(&e, "admin1", Some(ROOT)).await;
        let until = in_a_year();
        let fields = user_fields("Асанова Айгуль", "11204198800123", &until);
        let r = e.form("/admin/users/new", Some(&admin), &fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}: {}", e.engine, r.body);
        let wrong = with_csrf(fields, "not-the-token");
        let r = e.form("/admin/users/new", Some(&admin), &wrong).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", e.engine);
        assert!(
            e.app
                .store
                .user_by_login("asanova.a")
                .await
                .unwrap()
                .is_none()
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn suspending_a_user_ends_their_session() {
    for e in common::envs("tzhs-kg").await {
        let (admin, csrf) = admin_session(&e, "admin1", Some(ROOT)).await;
        e.user("worker", &[Role::Specialist], Some(BISHKEK)).await;
        let (worker, _) = e.page_login("worker").await;
        assert_eq!(e.page("/", &worker).await.status, StatusCode::OK);

        let u = e.app.store.user_by_login("worker").await.unwrap().unwrap();
        let path = format!("/admin/users/{}/change", u.id);
        let version = u.version.to_string();
        // A reason is required: the error lands next to the field of the suspend form.
        let r = e
            .form(
                &path,
                Some(&admin),
                &[
                    ("_csrf", &csrf),
                    ("version", &version),
                    ("action", "suspend"),
                    ("reason", ""),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.engine);
        assert!(r.body.contains("id=\"e-suspend-reason\""), "{}", e.engine);

        let r = e
            .form(
                &path,
                Some(&admin),
                &[
                    ("_csrf", &csrf),
                    ("version", &version),
                    ("action", "suspend"),
                    ("reason", "Отпуск по уходу за ребёнком"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        let card = e.page(&r.location_full(), &admin).await;
        assert!(card.body.contains("Доступ приостановлен"), "{}", e.engine);
        assert!(card.body.contains("Отпуск по уходу за ребёнком"));

        let next = e.page("/", &worker).await;
        assert_eq!(next.status, StatusCode::SEE_OTHER, "{}", e.engine);
        assert_eq!(next.location(), "/login", "{}", e.engine);

        // The same version again is a conflict: the card is shown with a message.
        let r = e
            .form(
                &path,
                Some(&admin),
                &[
                    ("_csrf", &csrf),
                    ("version", &version),
                    ("action", "reactivate"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", e.engine);
        assert!(r.body.contains("изменил другой администратор"));
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn a_public_access_request_becomes_an_account_when_approved() {
    for e in common::envs("tzhs-kg").await {
        let form = e.get("/request-access", None).await;
        assert_eq!(form.status, StatusCode::OK, "{}: {}", e.engine, form.body);
        assert!(
            !form.body.contains("value=\"administrator\""),
            "{}",
            e.engine
        );

        let until = in_a_year();
        // Administrator roles cannot be requested.
        let mut bad = user_fields("Бакиев Нурлан Маратович", "21505199000017", &until);
        bad.push(("roles", "administrator"));
        let r = e.form("/request-access", None, &bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.engine);
        assert!(r.body.contains("назначаются только администратором"));

        let mut fields = user_fields("Бакиев Нурлан Маратович", "21505199000017", &until);
        fields.push(("contact", "+996 555 123 456"));
        let r = e.form("/request-access", None, &fields).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        assert!(r.body.contains("администратор рассмотрит её"));

        let (admin, csrf) = admin_session(&e, "admin1", Some(ROOT)).await;
        let overview = e.page("/admin", &admin).await;
        assert!(overview.body.contains("Заявки на доступ"), "{}", e.engine);
        let list = e.page("/admin/requests", &admin).await;
        assert_eq!(list.status, StatusCode::OK, "{}", e.engine);
        let id = list
            .body
            .split("href=\"/admin/requests/")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a request in the list")
            .to_string();
        let card = e.page(&format!("/admin/requests/{id}"), &admin).await;
        assert_eq!(card.status, StatusCode::OK, "{}", e.engine);
        assert!(card.body.contains("+996 555 123 456"));

        let r = e
            .form(
                &format!("/admin/requests/{id}/approve"),
                Some(&admin),
                &[("_csrf", &csrf), ("version", "1")],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let login = element_text(&r.body, "new-login").expect("login shown");
        let password = element_text(&r.body, "one-time-password").expect("password shown");
        assert_eq!(login, "bakiev.n");
        let u = e.app.store.user_by_login(&login).await.unwrap().unwrap();
        assert!(u.must_change_password);
        assert_eq!(u.scope_territory, BISHKEK);

        // Approving twice is a conflict, not a second account.
        let again = e
            .form(
                &format!("/admin/requests/{id}/approve"),
                Some(&admin),
                &[("_csrf", &csrf), ("version", "1")],
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{}", e.engine);

        let r = e
            .form(
                "/login",
                None,
                &[("login", &login), ("password", &password)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        assert_eq!(r.location(), "/password");
        let _ = PASSWORD;
        e.assert_ledger_holds().await;
    }
}

/// No page shows a missing translation ("?") or a raw code where a label belongs.
fn assert_labelled(engine: &str, path: &str, body: &str) {
    for bad in [">?<", "> ?<", "\"?\"", "adm_"] {
        assert!(
            !body.contains(bad),
            "{engine}: {path} shows {bad:?}: {body}"
        );
    }
}

#[tokio::test]
async fn every_administration_page_opens_with_labels_clients_and_networks_work() {
    for e in common::envs("tzhs-kg").await {
        let (admin, csrf) = admin_session(&e, "admin1", Some(ROOT)).await;
        e.user("worker", &[Role::Specialist], Some(BISHKEK)).await;
        let worker = e.app.store.user_by_login("worker").await.unwrap().unwrap();
        // A refusal to list.
        e.user("spec", &[Role::Specialist], Some(BISHKEK)).await;
        let (spec, _) = e.page_login("spec").await;
        e.page("/admin/users", &spec).await;

        // An external client: the token is shown once, with how to call.
        let until = in_a_year();
        let r = e
            .form(
                "/admin/clients/new",
                Some(&admin),
                &[
                    ("_csrf", &csrf),
                    ("name", "sf-kg.payments"),
                    ("organisation", "socfund-kg"),
                    ("services", "read_record"),
                    ("services", "search"),
                    ("scope", BISHKEK),
                    ("valid_until", &until),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let token = element_text(&r.body, "client-token").expect("token shown");
        assert!(token.starts_with("kkc_"));
        assert!(r.body.contains("Authorization: Bearer"));
        assert!(r.body.contains("X-Road-Client"));
        let clients = e.page("/admin/clients", &admin).await;
        let cid = clients
            .body
            .split("href=\"/admin/clients/")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .find(|s| *s != "new")
            .expect("client in the list")
            .to_string();
        let rotated = e
            .form(
                &format!("/admin/clients/{cid}/change"),
                Some(&admin),
                &[("_csrf", &csrf), ("version", "1"), ("action", "rotate")],
            )
            .await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", e.engine);
        let new_token = element_text(&rotated.body, "client-token").expect("new token");
        assert_ne!(new_token, token);
        let bad = e
            .form(
                &format!("/admin/clients/{cid}/change"),
                Some(&admin),
                &[("_csrf", &csrf), ("version", "2"), ("action", "services")],
            )
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.engine);

        // Networks: an error next to the field, then added and removed.
        let r = e
            .form(
                "/admin/networks",
                Some(&admin),
                &[
                    ("_csrf", &csrf),
                    ("organisation", "socfund-kg"),
                    ("cidr", "nonsense"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.engine);
        assert!(r.body.contains("id=\"e-cidr\""));
        assert!(r.body.contains("value=\"nonsense\""));
        let r = e
            .form(
                "/admin/networks",
                Some(&admin),
                &[
                    ("_csrf", &csrf),
                    ("organisation", "socfund-kg"),
                    ("cidr", "10.8.0.0/16"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        let list = e.page("/admin/networks", &admin).await;
        assert!(list.body.contains("10.8.0.0/16"));
        let r = e
            .form(
                "/admin/networks/remove",
                Some(&admin),
                &[
                    ("_csrf", &csrf),
                    ("organisation", "socfund-kg"),
                    ("cidr", "10.8.0.0/16"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", e.engine);

        // Password reset shows a new one-time password once.
        let r = e
            .form(
                &format!("/admin/users/{}/change", worker.id),
                Some(&admin),
                &[
                    ("_csrf", &csrf),
                    ("version", "1"),
                    ("action", "password_reset"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        assert!(element_text(&r.body, "one-time-password").is_some());

        for path in [
            "/admin".to_string(),
            "/admin/users".to_string(),
            "/admin/users?status=suspended".to_string(),
            "/admin/users/new".to_string(),
            format!("/admin/users/{}", worker.id),
            format!("/admin/users/{}/edit", worker.id),
            "/admin/requests".to_string(),
            "/admin/requests?status=".to_string(),
            "/admin/clients".to_string(),
            "/admin/clients/new".to_string(),
            format!("/admin/clients/{cid}"),
            "/admin/networks".to_string(),
            "/admin/denials".to_string(),
            "/admin/break-glass".to_string(),
        ] {
            let r = e.page(&path, &admin).await;
            assert_eq!(r.status, StatusCode::OK, "{}: {path}: {}", e.engine, r.body);
            assert_labelled(e.engine, &path, &r.body);
            if std::env::var("KAMKOR_DUMP_PAGES").is_ok() {
                let name = path.replace(['/', '?', '='], "_");
                std::fs::write(format!("/tmp/adm{name}.html"), &r.body).ok();
            }
        }
        let denials = e.page("/admin/denials", &admin).await;
        assert!(denials.body.contains("Тест spec"), "{}", e.engine);
        assert!(denials.body.contains("Управление доступом"));
        let r = e.get("/request-access", None).await;
        assert_labelled(e.engine, "/request-access", &r.body);
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn the_list_of_users_is_paged() {
    for e in common::envs("tzhs-kg").await {
        let (admin, _) = admin_session(&e, "admin1", Some(ROOT)).await;
        let worker = e.app.store.user_by_login("admin1").await.unwrap().unwrap();
        // 60 more accounts, written straight to the store (no password hashing needed).
        let mut tx = e.app.store.begin("test", None).await.unwrap();
        for i in 0..60 {
            tx.insert_user(&kamkor_store::UserRow {
                id: uuid::Uuid::now_v7().to_string(),
                version: 1,
                login: format!("w{i:03}"),
                full_name: format!("Работник {i:03}"),
                role: "specialist".into(),
                scope_territory: BISHKEK.into(),
                totp_secret: None,
                ..worker.clone()
            })
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let first = e.page("/admin/users", &admin).await;
        assert_eq!(first.status, StatusCode::OK, "{}", e.engine);
        assert!(
            first.body.contains("w000") && !first.body.contains("w055"),
            "{}",
            e.engine
        );
        assert!(
            first.body.contains("page=1"),
            "a link to the next page: {}",
            e.engine
        );
        let second = e.page("/admin/users?page=1", &admin).await;
        assert!(
            second.body.contains("w055") && !second.body.contains("w000"),
            "{}",
            e.engine
        );
        assert!(second.body.contains("page=0"), "a link back: {}", e.engine);
        e.assert_ledger_holds().await;
    }
}

/// Entries hold the fields that changed; a revocation with the same reason as the suspension
/// before it still shows its reason in the account's history.
#[tokio::test]
async fn each_suspension_and_revocation_shows_its_reason() {
    for e in common::envs("tzhs-kg").await {
        let (admin, csrf) = admin_session(&e, "admin1", Some(ROOT)).await;
        e.user("worker", &[Role::Specialist], Some(BISHKEK)).await;
        let mut card_path = String::new();
        for action in ["suspend", "revoke"] {
            let u = e.app.store.user_by_login("worker").await.unwrap().unwrap();
            let path = format!("/admin/users/{}/change", u.id);
            let version = u.version.to_string();
            let r = e
                .form(
                    &path,
                    Some(&admin),
                    &[
                        ("_csrf", &csrf),
                        ("version", &version),
                        ("action", action),
                        ("reason", "Служебная проверка"),
                    ],
                )
                .await;
            assert_eq!(
                r.status,
                StatusCode::SEE_OTHER,
                "{}: {action}: {}",
                e.engine,
                r.body
            );
            card_path = r.location();
        }
        let card = e.page(&card_path, &admin).await;
        let history = card
            .body
            .split("<table class=\"history\"")
            .nth(1)
            .unwrap_or_default();
        assert_eq!(
            history.matches(": Служебная проверка").count(),
            2,
            "{}: both entries name the reason",
            e.engine
        );
        e.assert_ledger_holds().await;
    }
}
