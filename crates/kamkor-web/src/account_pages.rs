//! The user's own account: validity, roles, the second factor (enrolment with a QR code,
//! mandatory for administrators and operators), password, log out everywhere; and the
//! break-the-glass form reached from the person search.

use axum::Router;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kamkor_app::{AppError, totp};
use kamkor_domain::records::Problems;
use maud::{PreEscaped, html};

use crate::html::{Input, display_date_str, hidden_csrf, layout, territory_name, text_input};
use crate::i18n::{Lang, error_message, t};
use crate::pages::{FormData, PageResult, csrf_failed, page, pe, problem_status, render};
use crate::{AppState, PageAuth};

const L: Lang = Lang::Ru;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(account))
        .route(
            "/account/second-factor",
            get(second_factor_form).post(second_factor_submit),
        )
        .route(
            "/account/second-factor/disable",
            post(second_factor_disable),
        )
        .route("/persons/break-glass", post(break_glass))
}

fn role_names(roles: &str) -> String {
    roles
        .split(',')
        .filter(|r| !r.is_empty())
        .map(|r| t(L, &format!("user_role_{r}")).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn account(State(s): State<AppState>, auth: PageAuth) -> Response {
    let u = &auth.ctx.user;
    let pr = &s.app.profile;
    let p = page(&s, t(L, "account_title"), Some(&auth));
    let org = pr
        .agency(&u.organisation)
        .map(|a| a.name.get(L.code()).to_string())
        .unwrap_or_else(|| u.organisation.clone());
    render(
        axum::http::StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (t(L, "account_title")) }
                section.card {
                    dl.facts {
                        div { dt { (t(L, "account_name")) } dd { (u.full_name) " (" (u.login) ")" } }
                        div { dt { (t(L, "account_roles")) } dd { (role_names(&u.role)) } }
                        div { dt { (t(L, "account_organisation")) } dd { (org) } }
                        div { dt { (t(L, "account_scope")) } dd { (territory_name(pr, L, &u.scope_territory)) } }
                        div { dt { (t(L, "account_valid")) } dd {
                            (display_date_str(&u.valid_from)) " — "
                            (u.valid_until.as_deref().map(display_date_str).unwrap_or_else(|| t(L, "account_no_end").to_string()))
                        } }
                    }
                }
                section.card {
                    h2 { (t(L, "second_factor_title")) }
                    @if u.totp_secret.is_some() {
                        p { (t(L, "second_factor_on")) }
                        @if !s.app.second_factor_required(&kamkor_store::UserRow { totp_secret: None, ..u.clone() }) {
                            form method="post" action="/account/second-factor/disable" {
                                (hidden_csrf(&auth.session.csrf_token))
                                (text_input(L, &Problems::default(), Input { name: "code", label: t(L, "login_code"), value: "", kind: "text", required: true, hint: None, autocomplete: Some("one-time-code") }))
                                button type="submit" { (t(L, "second_factor_disable")) }
                            }
                        }
                    } @else {
                        p { (t(L, "second_factor_off")) }
                        p { a.button href="/account/second-factor" { (t(L, "second_factor_enrol")) } }
                    }
                }
                section.card {
                    h2 { (t(L, "account_security")) }
                    p { a href="/password" { (t(L, "nav_change_password")) } }
                    form method="post" action="/logout-all" {
                        (hidden_csrf(&auth.session.csrf_token))
                        p.hint { (t(L, "logout_all_text")) }
                        button type="submit" { (t(L, "logout_all_submit")) }
                    }
                }
            },
        ),
    )
}

fn enrol_page(s: &AppState, auth: &PageAuth, secret: &str, problems: &Problems) -> Response {
    let issuer = format!("Kamkor {}", s.app.profile.meta.name);
    let uri = totp::otpauth_uri(&issuer, &auth.ctx.user.login, secret);
    let svg = totp::qr_svg(&uri).unwrap_or_default();
    let required = s.app.second_factor_required(&auth.ctx.user);
    let p = page(s, t(L, "second_factor_title"), Some(auth));
    // The key in groups of four, as authenticator apps show it.
    let grouped: String = secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    render(
        problem_status(problems),
        layout(
            &p,
            html! {
                div.narrow {
                    h1 { (t(L, "second_factor_title")) }
                    @if required { p.flash role="status" { (error_message(L, "second_factor_enrolment_required")) } }
                    @if !problems.is_empty() {
                        div.errors role="alert" { @for f in &problems.0 { p { (error_message(L, &f.code)) } } }
                    }
                    section.card {
                        ol {
                            li { (t(L, "second_factor_step1")) }
                            li { (t(L, "second_factor_step2")) }
                            li { (t(L, "second_factor_step3")) }
                        }
                        div.qr { (PreEscaped(svg)) }
                        p { (t(L, "second_factor_key")) " " code { (grouped) } }
                        form method="post" action="/account/second-factor" {
                            (hidden_csrf(&auth.session.csrf_token))
                            input type="hidden" name="secret" value=(secret);
                            (text_input(L, problems, Input { name: "code", label: t(L, "login_code"), value: "", kind: "text", required: true, hint: Some(t(L, "second_factor_code_hint")), autocomplete: Some("one-time-code") }))
                            button.primary type="submit" { (t(L, "second_factor_confirm")) }
                        }
                    }
                }
            },
        ),
    )
}

async fn second_factor_form(State(s): State<AppState>, auth: PageAuth) -> PageResult {
    let secret = totp::new_secret().map_err(pe)?;
    Ok(enrol_page(&s, &auth, &secret, &Problems::default()))
}

async fn second_factor_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let secret = f.get("secret");
    match s
        .app
        .enrol_second_factor(&auth.ctx, &secret, &f.get("code"))
        .await
    {
        Ok(()) => Ok(Redirect::to("/account").into_response()),
        Err(AppError::Invalid(p)) if p.0.iter().any(|x| x.field == "secret") => {
            let fresh = totp::new_secret().map_err(pe)?;
            Ok(enrol_page(&s, &auth, &fresh, &p))
        }
        Err(AppError::Invalid(p)) => Ok(enrol_page(&s, &auth, &secret, &p)),
        Err(e) => Err(pe(e)),
    }
}

async fn second_factor_disable(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    match s.app.disable_second_factor(&auth.ctx, &f.get("code")).await {
        Ok(()) | Err(AppError::Invalid(_)) => Ok(Redirect::to("/account").into_response()),
        Err(e) => Err(pe(e)),
    }
}

/// Break the glass from the search page: the exact identifier and a reason; on success the
/// person's card opens read-only.
async fn break_glass(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let nid = f.get("national_id");
    match s.app.break_glass(&auth.ctx, &nid, &f.get("reason")).await {
        Ok(g) => Ok(Redirect::to(&format!("/persons/{}", g.person_id)).into_response()),
        Err(AppError::Invalid(p)) => {
            let pg = page(&s, t(L, "glass_title"), Some(&auth));
            Ok(render(
                problem_status(&p),
                layout(
                    &pg,
                    html! {
                        div.narrow {
                            h1 { (t(L, "glass_title")) }
                            div.errors role="alert" { @for x in &p.0 { p { (error_message(L, &x.code)) } } }
                            (glass_form(&auth.session.csrf_token, &nid, &f.get("reason"), &p))
                        }
                    },
                ),
            ))
        }
        Err(e) => Err(pe(e)),
    }
}

/// The form offered when an exact identifier matched nobody in the user's territory but
/// someone elsewhere.
pub fn glass_form(
    csrf: &str,
    national_id: &str,
    reason: &str,
    problems: &Problems,
) -> maud::Markup {
    html! {
        section.card.glass {
            h2 { (t(L, "glass_title")) }
            p { (t(L, "glass_explain")) }
            form method="post" action="/persons/break-glass" {
                (hidden_csrf(csrf))
                input type="hidden" name="national_id" value=(national_id);
                (text_input(L, problems, Input { name: "reason", label: t(L, "glass_reason"), value: reason, kind: "text", required: true, hint: Some(t(L, "glass_reason_hint")), autocomplete: None }))
                button type="submit" { (t(L, "glass_submit")) }
            }
        }
    }
}
