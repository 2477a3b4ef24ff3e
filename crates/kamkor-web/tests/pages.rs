//! The HTML pages through the real router and a real database: login, CSRF, registering a
//! child with errors shown next to the fields, search, cards, cases.

mod common;

use axum::http::{StatusCode, header};
use kamkor_domain::policy::Role;
use kamkor_store::Table;

const TERRITORY: &str = "41702205000000";

fn child_form<'a>(csrf: &'a str, pin: &'a str, surname: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("_csrf", csrf),
        ("relatives_count", "2"),
        ("child.surname", surname),
        ("child.given_name", "Айпери"),
        ("child.patronymic", "Нурлановна"),
        ("child.sex", "female"),
        ("child.birth_date", "2014-05-21"),
        ("child.national_id", pin),
        ("child.citizenship", "KG"),
        ("child.residence_territory", TERRITORY),
        ("child.address", "с. Ак-Суу, ул. Токтогула, 12"),
        ("child.social_payments", "SP01"),
        ("child.social_payments", "SP05"),
        ("family_mode", "new"),
        ("family.name", ""),
        ("relatives[0].relation_kind", "mother"),
        ("relatives[0].relative_status", "labour_migrant"),
        ("relatives[0].person.surname", "Мамытова"),
        ("relatives[0].person.given_name", "Жылдыз"),
        ("relatives[0].person.sex", ""),
        ("relatives[1].relation_kind", "father"),
        ("relatives[1].relative_status", ""),
        ("relatives[1].person.surname", ""),
        ("relatives[1].person.given_name", ""),
    ]
}

#[tokio::test]
async fn pages_need_login_and_login_works() {
    for e in common::envs("tzhs-kg").await {
        for path in ["/", "/persons", "/register", "/cases", "/families/new"] {
            let r = e.page(path, "kamkor_session=bogus").await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{} {path}", e.engine);
            assert!(r.location().starts_with("/login"));
        }
        let r = e
            .send(
                axum::http::Request::get("/login")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("Вход в систему"));
        e.user("spec", &[Role::Specialist], None).await;
        let r = e
            .form(
                "/login",
                None,
                &[("login", "spec"), ("password", "wrong wrong wrong")],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("Неверный логин или пароль"));
        assert!(r.body.contains("value=\"spec\""), "the login typed is kept");
        let (cookie, _) = e.page_login("spec").await;
        let home = e.page("/", &cookie).await;
        assert_eq!(home.status, StatusCode::OK);
        assert!(home.body.contains("Моя работа"));
        // Security headers on every page.
        let csp = home
            .headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
        assert_eq!(
            home.headers.get("x-content-type-options").unwrap(),
            "nosniff"
        );
        assert_eq!(home.headers.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(home.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn session_cookie_is_httponly_and_samesite() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let r = e
            .form(
                "/login",
                None,
                &[
                    ("login", "spec"),
                    ("password", "correct horse battery staple"),
                ],
            )
            .await;
        let c = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn forms_without_the_csrf_token_are_refused() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let (cookie, _) = e.page_login("spec").await;
        let mut fields = child_form("forged", "10905201400012", "Мамытова");
        let r = e.form("/register", Some(&cookie), &fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", e.engine);
        fields.retain(|(k, _)| *k != "_csrf");
        assert_eq!(
            e.form("/register", Some(&cookie), &fields).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(e.app.store.count(Table::Persons).await.unwrap(), 0);
        // The logout form needs it too.
        assert_eq!(
            e.form("/logout", Some(&cookie), &[]).await.status,
            StatusCode::FORBIDDEN
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn register_child_shows_errors_next_to_fields_and_keeps_input() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let (cookie, csrf) = e.page_login("spec").await;
        let form = e.page("/register", &cookie).await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(form.body.contains("Регистрация ребёнка"));
        // 21405… : birth date 14.05.2014 in the PIN, but the child was born 21.05.2014; and
        // sex digit 2 (male) for a girl.
        let r = e
            .form(
                "/register",
                Some(&cookie),
                &child_form(&csrf, "21405201400012", "Мамытова"),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.engine);
        assert!(r.body.contains("Исправьте ошибки в форме"));
        assert!(r.body.contains("ПИН не соответствует полу"), "{}", e.engine);
        assert!(r.body.contains("id=\"f-child-national-id\""));
        assert!(r.body.contains("value=\"Мамытова\""), "typed surname kept");
        assert!(
            r.body.contains("value=\"21405201400012\""),
            "typed PIN kept"
        );
        assert!(r.body.contains("value=\"Жылдыз\""), "relative kept");
        assert_eq!(
            e.app.store.count(Table::Persons).await.unwrap(),
            0,
            "nothing stored"
        );
        // Birth date mismatch only.
        let r = e
            .form(
                "/register",
                Some(&cookie),
                &child_form(&csrf, "11405201400012", "Мамытова"),
            )
            .await;
        assert!(r.body.contains("ПИН не соответствует дате рождения"));
        // A correct one is stored with family and the relative, and found by search at once.
        let r = e
            .form(
                "/register",
                Some(&cookie),
                &child_form(&csrf, "12105201400012", "Мамытова"),
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        let card_path = r.location();
        assert!(card_path.starts_with("/persons/"));
        assert!(r.location_full().ends_with("?saved=registered"));
        let card = e.page(&r.location_full(), &cookie).await;
        assert!(
            card.body.contains("Запись зарегистрирована"),
            "a confirmation is shown"
        );
        assert!(card.body.contains("Мамытова Айпери Нурлановна"));
        assert!(
            card.body.contains("Мамытова Жылдыз"),
            "the mother is listed"
        );
        assert!(
            card.body.contains("Трудовой мигрант") || card.body.contains("мигрант"),
            "relative status shown"
        );
        assert!(
            card.body.contains("Семья Мамытовых"),
            "a family was created"
        );
        assert_eq!(
            e.app.store.count(Table::Persons).await.unwrap(),
            2,
            "the empty father block is not a person"
        );
        for q in ["мамыт", "12105201400012", "21.05.2014"] {
            let s = e
                .page(&format!("/persons?q={}", urlencode(q)), &cookie)
                .await;
            assert!(s.body.contains(&card_path), "{}: search {q}", e.engine);
        }
        e.assert_ledger_holds().await;
    }
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)])
        .unwrap()
        .trim_start_matches("x=")
        .to_string()
}

#[tokio::test]
async fn add_relative_button_adds_a_block_without_saving() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let (cookie, csrf) = e.page_login("spec").await;
        let mut f = child_form(&csrf, "12105201400012", "Мамытова");
        f.push(("add_relative", "1"));
        let r = e.form("/register", Some(&cookie), &f).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("name=\"relatives[2].relation_kind\""));
        assert!(r.body.contains("value=\"Мамытова\""));
        assert_eq!(e.app.store.count(Table::Persons).await.unwrap(), 0);
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn open_case_from_the_card_and_see_it_at_home() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let (cookie, csrf) = e.page_login("spec").await;
        let card_path = e
            .form(
                "/register",
                Some(&cookie),
                &child_form(&csrf, "12105201400012", "Мамытова"),
            )
            .await
            .location();
        let id = card_path.trim_start_matches("/persons/").to_string();
        let form = e
            .page(
                &format!("/cases/new?subject_kind=child&subject_id={id}"),
                &cookie,
            )
            .await;
        assert_eq!(form.status, StatusCode::OK, "{}", e.engine);
        assert!(form.body.contains("Открытие случая"));
        // Missing date: an error next to the field, nothing stored.
        let base = vec![
            ("_csrf", csrf.as_str()),
            ("subject_kind", "child"),
            ("subject_id", id.as_str()),
            ("identification_territory", TERRITORY),
            ("identification_place", "school"),
            ("source", "school"),
            ("categories", "CAT04"),
            ("responsible_org", "opsd-41702205000000"),
        ];
        let r = e.form("/cases/new", Some(&cookie), &base).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("id=\"f-identified-on\""));
        assert_eq!(e.app.store.count(Table::Cases).await.unwrap(), 0);
        let mut ok = base.clone();
        ok.push(("identified_on", "2026-11-02"));
        let r = e.form("/cases/new", Some(&cookie), &ok).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        let case = e.page(&r.location(), &cookie).await;
        assert!(case.body.contains("ТЖС-"), "case number shown");
        assert!(case.body.contains("Выявлен"));
        assert!(case.body.contains("Дети трудовых мигрантов") || case.body.contains("мигрант"));
        let home = e.page("/", &cookie).await;
        assert!(
            home.body.contains("Мамытова Айпери"),
            "{}: my case on the home page",
            e.engine
        );
        let list = e.page("/cases?status=identified", &cookie).await;
        assert!(list.body.contains("ТЖС-"));
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn edit_person_conflict_is_shown_and_nothing_overwritten() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let (cookie, csrf) = e.page_login("spec").await;
        let card_path = e
            .form(
                "/register",
                Some(&cookie),
                &child_form(&csrf, "12105201400012", "Мамытова"),
            )
            .await
            .location();
        let edit = format!("{card_path}/edit");
        assert!(
            e.page(&edit, &cookie)
                .await
                .body
                .contains("name=\"version\" value=\"1\"")
        );
        let fields = |addr: &'static str, version: &'static str| {
            vec![
                ("_csrf", csrf.clone()),
                ("version", version.to_string()),
                ("surname", "Мамытова".to_string()),
                ("given_name", "Айпери".to_string()),
                ("sex", "female".to_string()),
                ("birth_date", "21.05.2014".to_string()),
                ("national_id", "12105201400012".to_string()),
                ("residence_territory", TERRITORY.to_string()),
                ("address", addr.to_string()),
            ]
        };
        let as_refs = |v: &Vec<(&'static str, String)>| {
            v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>()
        };
        let f1 = as_refs(&fields("с. Ак-Суу, ул. Ленина, 1", "1"));
        let f1: Vec<(&str, &str)> = f1.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = e.form(&edit, Some(&cookie), &f1).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        let f2 = as_refs(&fields("с. Ак-Суу, ул. Манаса, 9", "1"));
        let f2: Vec<(&str, &str)> = f2.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = e.form(&edit, Some(&cookie), &f2).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", e.engine);
        assert!(r.body.contains("Запись изменил другой пользователь"));
        assert!(
            r.body.contains("ул. Ленина, 1"),
            "what changed meanwhile is shown"
        );
        assert!(
            r.body.contains("value=\"с. Ак-Суу, ул. Манаса, 9\""),
            "the user's input is kept"
        );
        let card = e.page(&card_path, &cookie).await;
        assert!(card.body.contains("ул. Ленина, 1") && !card.body.contains("ул. Манаса, 9"));
        assert!(card.body.contains("История изменений"));
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn out_of_scope_card_looks_missing_and_viewer_cannot_register() {
    for e in common::envs("tzhs-kg").await {
        e.user("issyk", &[Role::Specialist], Some("41702000000000"))
            .await;
        e.user("chui", &[Role::Specialist], Some("41708000000000"))
            .await;
        e.user("viewer", &[Role::CentralViewer], None).await;
        let (ck, csrf) = e.page_login("issyk").await;
        let card_path = e
            .form(
                "/register",
                Some(&ck),
                &child_form(&csrf, "12105201400012", "Мамытова"),
            )
            .await
            .location();
        let (cc, _) = e.page_login("chui").await;
        let r = e.page(&card_path, &cc).await;
        let missing = e
            .page("/persons/0191f1d0-0000-7000-8000-000000000000", &cc)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", e.engine);
        assert_eq!(r.body, missing.body);
        let (cv, vcsrf) = e.page_login("viewer").await;
        assert_eq!(e.page(&card_path, &cv).await.status, StatusCode::OK);
        let r = e
            .form(
                "/register",
                Some(&cv),
                &child_form(&vcsrf, "12105201400099", "Мамытова"),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("Нет доступа"));
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn logout_ends_the_session() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let (cookie, csrf) = e.page_login("spec").await;
        let r = e.form("/logout", Some(&cookie), &[("_csrf", &csrf)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = e.page("/", &cookie).await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "{}: the old cookie no longer works",
            e.engine
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn one_time_password_must_be_changed_first() {
    for e in common::envs("tzhs-kg").await {
        let otp = e.user_with_one_time_password("newbie").await;
        let r = e
            .form("/login", None, &[("login", "newbie"), ("password", &otp)])
            .await;
        assert_eq!(r.location(), "/password", "{}", e.engine);
        let cookie = r
            .headers
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let r = e.page("/persons", &cookie).await;
        assert_eq!(
            r.location(),
            "/password",
            "nothing else until the password is changed"
        );
        let page = e.page("/password", &cookie).await;
        let csrf = page
            .body
            .split("name=\"_csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let r = e
            .form(
                "/password",
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("current", &otp),
                    ("new", "short"),
                    ("repeat", "short"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.body.contains("Пароль короче 10 символов"));
        let r = e
            .form(
                "/password",
                Some(&cookie),
                &[
                    ("_csrf", &csrf),
                    ("current", &otp),
                    ("new", "зелёная лампа над столом"),
                    ("repeat", "зелёная лампа над столом"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(e.page("/persons", &cookie).await.status, StatusCode::OK);
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn a_relative_error_is_shown_at_the_relative_field() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let (cookie, csrf) = e.page_login("spec").await;
        let mut f = child_form(&csrf, "12105201400012", "Мамытова");
        // The mother's PIN says "male".
        f.push(("relatives[0].person.national_id", "21010198500001"));
        f.push(("relatives[0].person.birth_date", "1985-10-10"));
        let r = e.form("/register", Some(&cookie), &f).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.engine);
        assert!(
            r.body
                .contains("href=\"#f-relatives-0--person-national-id\""),
            "the summary links to the field"
        );
        let field = r
            .body
            .split("id=\"f-relatives-0--person-national-id\"")
            .nth(1)
            .expect("the field");
        let field = &field[..field.find("</div>").unwrap_or(field.len())];
        assert!(
            field.contains("aria-invalid=\"true\"") && field.contains("ПИН не соответствует полу"),
            "{field}"
        );
        assert_eq!(e.app.store.count(Table::Persons).await.unwrap(), 0);
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn add_a_child_to_an_existing_family_from_its_card() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let (cookie, csrf) = e.page_login("spec").await;
        let card_path = e
            .form(
                "/register",
                Some(&cookie),
                &child_form(&csrf, "12105201400012", "Мамытова"),
            )
            .await
            .location();
        let card = e.page(&card_path, &cookie).await;
        let family = card
            .body
            .split("href=\"/families/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap_or_default())
            .find(|id| id.len() == 36)
            .expect("a family link on the card")
            .to_string();
        let fcard = e.page(&format!("/families/{family}"), &cookie).await;
        assert!(
            fcard
                .body
                .contains(&format!("/register?family_id={family}")),
            "{}",
            e.engine
        );
        let form = e
            .page(&format!("/register?family_id={family}"), &cookie)
            .await;
        assert!(
            form.body.contains(&format!("value=\"{family}\"")),
            "the family is filled in"
        );
        let fields = vec![
            ("_csrf", csrf.as_str()),
            ("relatives_count", "1"),
            ("child.surname", "Мамытов"),
            ("child.given_name", "Эмир"),
            ("child.sex", "male"),
            ("child.birth_date", "2018-02-01"),
            ("child.residence_territory", TERRITORY),
            ("family_mode", "existing"),
            ("family_id", family.as_str()),
        ];
        let r = e.form("/register", Some(&cookie), &fields).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        let fcard = e.page(&format!("/families/{family}"), &cookie).await;
        assert!(
            fcard.body.contains("Мамытов Эмир") && fcard.body.contains("Мамытова Айпери"),
            "{}",
            e.engine
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn log_out_everywhere_ends_every_session() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let (c1, csrf1) = e.page_login("spec").await;
        let (c2, _) = e.page_login("spec").await;
        let token = e.api_login("spec").await;
        let page = e.page("/password", &c1).await;
        assert!(page.body.contains("action=\"/logout-all\""));
        assert_eq!(
            e.form("/logout-all", Some(&c1), &[]).await.status,
            StatusCode::FORBIDDEN,
            "needs the CSRF token"
        );
        let r = e.form("/logout-all", Some(&c1), &[("_csrf", &csrf1)]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        for c in [&c1, &c2] {
            assert_eq!(
                e.page("/", c).await.status,
                StatusCode::SEE_OTHER,
                "{}",
                e.engine
            );
        }
        assert_eq!(
            e.get("/api/v1/me", Some(&token)).await.status,
            StatusCode::UNAUTHORIZED
        );
        e.assert_ledger_holds().await;
    }
}

/// Issue 4 item 5, seed 000 §20: an edit carries the day the change took effect; the card's
/// history shows it next to the day it was recorded; a future day is refused by name.
#[tokio::test]
async fn an_edit_takes_effect_on_the_day_given_and_history_shows_both_dates() {
    for e in common::envs("tzhs-kg").await {
        e.user("spec", &[Role::Specialist], None).await;
        let (cookie, csrf) = e.page_login("spec").await;
        let card_path = e
            .form(
                "/register",
                Some(&cookie),
                &child_form(&csrf, "12105201400012", "Мамытова"),
            )
            .await
            .location();
        let edit = format!("{card_path}/edit");
        let form = e.page(&edit, &cookie).await;
        assert!(form.body.contains("Изменения действуют с"), "{}", e.engine);
        let today = time::OffsetDateTime::now_utc().date();
        let earlier = today - time::Duration::days(12);
        let later = today + time::Duration::days(3);
        let iso = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day());
        let shown =
            |d: time::Date| format!("{:02}.{:02}.{:04}", d.day(), d.month() as u8, d.year());
        let fields = |effective: String| {
            vec![
                ("_csrf", csrf.clone()),
                ("version", "1".to_string()),
                ("surname", "Мамытова".to_string()),
                ("given_name", "Айпери".to_string()),
                ("sex", "female".to_string()),
                ("birth_date", "21.05.2014".to_string()),
                ("national_id", "12105201400012".to_string()),
                ("residence_territory", TERRITORY.to_string()),
                ("address", "с. Ак-Суу, ул. Ленина, 1".to_string()),
                ("effective_on", effective),
            ]
        };
        // A day in the future: refused, naming the field, and nothing stored.
        let f = fields(iso(later));
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = e.form(&edit, Some(&cookie), &f).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", e.engine);
        assert!(
            r.body
                .contains("Изменения действуют с: Дата не может быть в будущем.")
        );
        assert!(r.body.contains("name=\"version\" value=\"1\""));
        // Twelve days ago: accepted.
        let f = fields(iso(earlier));
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = e.form(&edit, Some(&cookie), &f).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
        let card = e.page(&card_path, &cookie).await;
        assert!(card.body.contains("Действует с") && card.body.contains("Внесено"));
        assert!(
            card.body.contains(&format!(
                "<strong class=\"effective\">{}</strong>",
                shown(earlier)
            )),
            "{}: the effective day is shown",
            e.engine
        );
        assert!(
            card.body.contains("в день внесения"),
            "the creation took effect when recorded"
        );
        // The auditor's journal names the field and the effective day too.
        e.user("auditor", &[Role::Auditor], None).await;
        let (auditor, _) = e.page_login("auditor").await;
        let id = card_path.rsplit('/').next().unwrap_or_default();
        let journal = e
            .page(
                &format!("/audit?entity=person&id={id}&action=update"),
                &auditor,
            )
            .await;
        assert_eq!(journal.status, StatusCode::OK, "{}", e.engine);
        assert!(
            journal.body.contains("<strong>Адрес</strong>"),
            "{}: the field's name, not its code",
            e.engine
        );
        assert!(
            journal
                .body
                .contains(&format!("Действует с {}", shown(earlier)))
        );
        e.assert_ledger_holds().await;
    }
}
