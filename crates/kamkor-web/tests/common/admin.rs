//! An administrator's page session for tests: administrators must have a second factor
//! before any page opens, so the helper enrols a TOTP secret directly through the store and
//! logs in through the form with a current code. Include it with
//! `#[path = "common/admin.rs"] mod admin;` next to `mod common;`.
#![allow(dead_code)]

use axum::http::{StatusCode, header};
use kamkor_app::totp;
use kamkor_domain::policy::Role;
use kamkor_store::UserRow;

use crate::common::Env;

pub const PASSWORD: &str = "correct horse battery staple";

/// Create an administrator with a second factor and log them in through the HTML form.
/// Returns the session cookie and the CSRF token.
pub async fn admin_session(e: &Env, login: &str, scope: Option<&str>) -> (String, String) {
    e.user(login, &[Role::Administrator], scope).await;
    let secret = totp::new_secret().expect("secret");
    let before = e
        .app
        .store
        .user_by_login(login)
        .await
        .expect("store")
        .expect("user exists");
    let after = UserRow {
        totp_secret: Some(secret.clone()),
        totp_last_step: None,
        ..before.clone()
    };
    let mut tx = e.app.store.begin("test", None).await.expect("begin");
    tx.update_user(&before, &after, "second_factor_enrol")
        .await
        .expect("enrol");
    tx.commit().await.expect("commit");
    let code = totp::code_at(&secret, totp::step_of(kamkor_store::now_utc())).expect("code");
    let r = e
        .form(
            "/login",
            None,
            &[("login", login), ("password", PASSWORD), ("code", &code)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}: {}", e.engine, r.body);
    let cookie = r
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    let page = e.page("/admin", &cookie).await;
    assert_eq!(page.status, StatusCode::OK, "{}: {}", e.engine, page.body);
    let csrf = csrf_of(&page.body);
    (cookie, csrf)
}

/// The CSRF token of a page (every logged-in page carries one in the logout form).
pub fn csrf_of(body: &str) -> String {
    body.split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf token on the page")
        .to_string()
}

/// The text of the element with this id (`<p id="x" …>text</p>`).
pub fn element_text(body: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let rest = body.split(&marker).nth(1)?;
    let rest = rest.split_once('>')?.1;
    Some(rest.split('<').next()?.trim().to_string())
}
