//! HTML pages. Every handler: check the session (extractor), parse the form, call one use
//! case, render. Forms work without JavaScript; on a validation error the page is shown again
//! with every problem next to its field and everything the user typed kept.

use std::collections::BTreeMap;

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use kamkor_app::{
    AppError, ChildRegistration, FamilyMemberDraft, FamilyRegistration, LoginError, PersonSearch,
};
use kamkor_domain::policy::Action;
use kamkor_domain::profile::{FieldType, FormDef, Profile};
use kamkor_domain::records::{
    CaseDraft, CaseStatus, FamilyDraft, PersonDraft, PersonRole, Problems, RelativeDraft,
    SubjectKind,
};
use kamkor_store::{ChangeRow, PersonRow};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::html::{
    Input, Page, checkboxes, classifier_label, classifier_options, display_date, display_ts,
    error_summary, extra_display, extra_input, hidden_csrf, layout, select, territory_name,
    territory_select, text_input,
};
use crate::i18n::{Lang, error_message, t};
use crate::{AppState, PageAuth, clear_cookie, session_cookie};

const L: Lang = Lang::Ru;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login_submit))
        .route("/logout", axum::routing::post(logout))
        .route("/logout-all", axum::routing::post(logout_all))
        .route("/password", get(password_form).post(password_submit))
        .route("/persons", get(persons))
        .route("/persons/{id}", get(person_card))
        .route(
            "/persons/{id}/edit",
            get(person_edit_form).post(person_edit_submit),
        )
        .route(
            "/persons/{id}/sections/{section}",
            get(section_edit_form).post(section_edit_submit),
        )
        .route("/register", get(register_form).post(register_submit))
        .route("/families", get(families))
        .route("/families/new", get(family_form).post(family_submit))
        .route("/families/{id}", get(family_card))
        .route("/cases", get(cases))
        .route("/cases/new", get(case_form).post(case_submit))
        .route("/cases/{id}", get(case_card))
        .fallback(not_found_page)
}

pub(crate) type PageResult = Result<Response, Response>;

/// `?saved=…` after a redirect from a form: the confirmation shown on the next page.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Saved {
    saved: String,
}

impl Saved {
    fn message(&self) -> Option<&'static str> {
        match self.saved.as_str() {
            "registered" => Some(t(L, "registered")),
            "updated" => Some(t(L, "saved")),
            "opened" => Some(t(L, "case_opened_flash")),
            "merged" => Some(t(L, "merge_done")),
            _ => None,
        }
    }
}

/// Form fields as sent: repeated names (checkboxes) keep every value.
#[derive(Debug, Default)]
pub(crate) struct FormData(pub(crate) Vec<(String, String)>);

impl FormData {
    pub(crate) fn get(&self, k: &str) -> String {
        self.0
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
    pub(crate) fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .collect()
    }
    pub(crate) fn has(&self, k: &str) -> bool {
        self.0.iter().any(|(n, _)| n == k)
    }
    pub(crate) fn csrf_ok(&self, auth: &PageAuth) -> bool {
        let sent = self.get("_csrf");
        !sent.is_empty() && sent == auth.session.csrf_token
    }
    /// Extra fields of a form under `prefix` (`child.extra.school_name`).
    fn extra(&self, prefix: &str, form: Option<&FormDef>) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let Some(form) = form else { return out };
        for (_, f) in form.fields() {
            let name = format!("{prefix}extra.{}", f.code);
            if f.kind == FieldType::MultiClassifier {
                let vs = self.all(&name);
                if !vs.is_empty() {
                    out.insert(
                        f.code.clone(),
                        Value::Array(vs.into_iter().map(Value::String).collect()),
                    );
                }
            } else {
                let v = self.get(&name);
                if !v.trim().is_empty() {
                    out.insert(f.code.clone(), Value::String(v));
                }
            }
        }
        out
    }
    fn person(&self, prefix: &str, form: Option<&FormDef>) -> PersonDraft {
        let g = |k: &str| self.get(&format!("{prefix}{k}"));
        PersonDraft {
            surname: g("surname"),
            given_name: g("given_name"),
            patronymic: g("patronymic"),
            sex: g("sex"),
            birth_date: g("birth_date"),
            national_id: g("national_id"),
            citizenship: g("citizenship"),
            residence_territory: g("residence_territory"),
            address: g("address"),
            disability: g("disability"),
            legal_status: g("legal_status"),
            social_payments: self.all(&format!("{prefix}social_payments")),
            extra: self.extra(prefix, form),
            effective_on: g("effective_on"),
        }
    }
}

pub(crate) fn page<'a>(s: &'a AppState, title: &'a str, auth: Option<&'a PageAuth>) -> Page<'a> {
    Page {
        lang: L,
        title,
        user: auth.map(|a| &a.ctx.user),
        csrf: auth.map(|a| a.session.csrf_token.as_str()),
        profile: &s.app.profile,
        flash: None,
    }
}

/// 200 for a fresh form, 422 for input to fix, 403 when the input reaches outside the
/// user's territory (every denial is a 403; the field still says what to fix).
pub(crate) fn problem_status(problems: &Problems) -> StatusCode {
    if problems.is_empty() {
        StatusCode::OK
    } else if problems.0.iter().any(|f| f.code == "out_of_scope") {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    }
}

pub(crate) fn render(status: StatusCode, m: Markup) -> Response {
    (status, Html(m.into_string())).into_response()
}

pub fn error_page(l: Lang, e: &AppError) -> Response {
    let (status, title, text) = match e {
        AppError::NotFound => (
            StatusCode::NOT_FOUND,
            t(l, "not_found_title"),
            t(l, "not_found_text"),
        ),
        AppError::Forbidden(r) => (
            StatusCode::FORBIDDEN,
            t(l, "forbidden_title"),
            error_message(l, r.code()),
        ),
        AppError::Unauthenticated => return Redirect::to("/login").into_response(),
        other => {
            tracing::error!(error = %other, "page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                t(l, "error_title"),
                t(l, "server_error_text"),
            )
        }
    };
    let m = html! {
        (maud::DOCTYPE)
        html lang=(l.code()) {
            head { meta charset="utf-8"; title { (title) } link rel="stylesheet" href="/static/app.css"; }
            body { main #main.narrow { h1 { (title) } p { (text) } p { a href="/" { (t(l, "back_home")) } } } }
        }
    };
    render(status, m)
}

pub(crate) fn csrf_failed() -> Response {
    let m = html! {
        (maud::DOCTYPE)
        html lang="ru" { head { meta charset="utf-8"; link rel="stylesheet" href="/static/app.css"; }
            body { main.narrow { h1 { (t(L, "error_title")) } p { (t(L, "csrf_error_text")) } p { a href="/" { (t(L, "back_home")) } } } } }
    };
    render(StatusCode::FORBIDDEN, m)
}

/// A page form sent from another site (see `cross_site_form`): the same answer as a form
/// without its CSRF token.
pub(crate) fn cross_site_refused() -> Response {
    csrf_failed()
}

async fn not_found_page() -> Response {
    error_page(L, &AppError::NotFound)
}

pub(crate) fn pe(e: AppError) -> Response {
    error_page(L, &e)
}

// ---------------------------------------------------------------- login, logout, password

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginQuery {
    ended: Option<String>,
}

fn login_page(s: &AppState, login: &str, message: Option<&str>, status: StatusCode) -> Response {
    let p = page(s, t(L, "login_title"), None);
    render(
        status,
        layout(
            &p,
            html! {
                div.narrow.card {
                    h1 { (t(L, "login_title")) }
                    @if let Some(m) = message { div.errors role="alert" { p { (m) } } }
                    form method="post" action="/login" {
                        (text_input(L, &Problems::default(), Input { name: "login", label: t(L, "login_login"), value: login, kind: "text", required: true, hint: None, autocomplete: Some("username") }))
                        (text_input(L, &Problems::default(), Input { name: "password", label: t(L, "login_password"), value: "", kind: "password", required: true, hint: None, autocomplete: Some("current-password") }))
                        (text_input(L, &Problems::default(), Input { name: "code", label: t(L, "login_code"), value: "", kind: "text", required: false, hint: Some(t(L, "login_code_hint")), autocomplete: Some("one-time-code") }))
                        button.primary type="submit" { (t(L, "login_submit")) }
                    }
                    p.hint { (t(L, "login_hint")) }
                    p { a href="/request-access" { (t(L, "request_access_link")) } }
                }
            },
        ),
    )
}

async fn login_form(State(s): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let msg = q.ended.map(|_| t(L, "session_ended"));
    login_page(&s, "", msg, StatusCode::OK)
}

async fn login_submit(
    State(s): State<AppState>,
    crate::ClientIp(ip): crate::ClientIp,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let f = FormData(f);
    let login = f.get("login");
    let code = f.get("code");
    match s
        .app
        .login(&login, &f.get("password"), Some(code.as_str()), ip)
        .await
    {
        Ok(l) => {
            let to = if l.user.must_change_password {
                "/password"
            } else {
                "/"
            };
            (
                [(
                    header::SET_COOKIE,
                    session_cookie(&l.token, s.config.secure_cookies),
                )],
                Redirect::to(to),
            )
                .into_response()
        }
        Err(LoginError::BadCredentials) => login_page(
            &s,
            &login,
            Some(t(L, "login_failed")),
            StatusCode::UNAUTHORIZED,
        ),
        Err(LoginError::Inactive) => login_page(
            &s,
            &login,
            Some(t(L, "login_inactive")),
            StatusCode::FORBIDDEN,
        ),
        Err(LoginError::SecondFactorRequired) => login_page(
            &s,
            &login,
            Some(error_message(L, "second_factor_required")),
            StatusCode::UNAUTHORIZED,
        ),
        Err(LoginError::SecondFactorWrong) => login_page(
            &s,
            &login,
            Some(error_message(L, "second_factor_wrong")),
            StatusCode::UNAUTHORIZED,
        ),
        Err(LoginError::NetworkNotAllowed) => login_page(
            &s,
            &login,
            Some(error_message(L, "network_not_allowed")),
            StatusCode::FORBIDDEN,
        ),
        Err(LoginError::App(e)) => pe(e),
    }
}

async fn logout(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    if !FormData(f).csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    s.app.logout(&auth.ctx, &auth.token).await.map_err(pe)?;
    Ok((
        [(header::SET_COOKIE, clear_cookie(s.config.secure_cookies))],
        Redirect::to("/login"),
    )
        .into_response())
}

async fn logout_all(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    if !FormData(f).csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    s.app.logout_everywhere(&auth.ctx).await.map_err(pe)?;
    Ok((
        [(header::SET_COOKIE, clear_cookie(s.config.secure_cookies))],
        Redirect::to("/login?ended=1"),
    )
        .into_response())
}

fn password_page(s: &AppState, auth: &PageAuth, problems: &Problems, done: bool) -> Response {
    let mut p = page(s, t(L, "password_title"), Some(auth));
    let flash = t(L, "password_changed");
    if done {
        p.flash = Some(flash);
    }
    let label = |f: &str| match f {
        "current" => t(L, "password_current").to_string(),
        "new" => t(L, "password_new").to_string(),
        _ => t(L, "password_repeat").to_string(),
    };
    render(
        problem_status(problems),
        layout(
            &p,
            html! {
                div.narrow.card {
                    h1 { (t(L, "password_title")) }
                    @if auth.ctx.user.must_change_password { p.notice { (t(L, "password_must_change")) } }
                    (error_summary(L, problems, label))
                    form method="post" action="/password" {
                        (hidden_csrf(&auth.session.csrf_token))
                        (text_input(L, problems, Input { name: "current", label: t(L, "password_current"), value: "", kind: "password", required: true, hint: None, autocomplete: Some("current-password") }))
                        (text_input(L, problems, Input { name: "new", label: t(L, "password_new"), value: "", kind: "password", required: true, hint: Some(t(L, "password_hint")), autocomplete: Some("new-password") }))
                        (text_input(L, problems, Input { name: "repeat", label: t(L, "password_repeat"), value: "", kind: "password", required: true, hint: None, autocomplete: Some("new-password") }))
                        button.primary type="submit" { (t(L, "password_submit")) }
                    }
                }
                @if !auth.ctx.user.must_change_password {
                    div.narrow.card {
                        h2 { (t(L, "logout_all_title")) }
                        p { (t(L, "logout_all_text")) }
                        form method="post" action="/logout-all" {
                            (hidden_csrf(&auth.session.csrf_token))
                            button.secondary type="submit" { (t(L, "logout_all_submit")) }
                        }
                    }
                }
            },
        ),
    )
}

async fn password_form(State(s): State<AppState>, auth: PageAuth) -> Response {
    password_page(&s, &auth, &Problems::default(), false)
}

async fn password_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    match s
        .app
        .change_password(
            &auth.ctx,
            &f.get("current"),
            &f.get("new"),
            &f.get("repeat"),
        )
        .await
    {
        Ok(()) => {
            if auth.ctx.user.must_change_password {
                return Ok(Redirect::to("/").into_response());
            }
            Ok(password_page(&s, &auth, &Problems::default(), true))
        }
        Err(AppError::Invalid(p)) => Ok(password_page(&s, &auth, &p, false)),
        Err(e) => Err(pe(e)),
    }
}

// ---------------------------------------------------------------- home

pub(crate) fn status_label(st: CaseStatus) -> &'static str {
    t(L, &format!("status_{}", st.code()))
}

/// Break-the-glass grants listed on a supervisor's home page (the rest on /admin/break-glass).
const HOME_GLASS_ROWS: usize = 10;

async fn home(State(s): State<AppState>, auth: PageAuth) -> PageResult {
    let h = s.app.home(&auth.ctx).await.map_err(pe)?;
    // Overdue activities and visits, transfers waiting (issue 5 items 5–6).
    let agenda = if h.reads_records {
        Some(s.app.agenda(&auth.ctx).await.map_err(pe)?)
    } else {
        None
    };
    let p = page(&s, t(L, "home_title"), Some(&auth));
    let child = s.app.profile.meta.subject == "child";
    let total: i64 = h.counts.iter().map(|(_, n)| n).sum();
    // A supervisor sees who broke the glass on records in their territory (issue 3 item 7).
    let glass = if auth
        .ctx
        .actor
        .roles
        .contains(&kamkor_domain::policy::Role::Supervisor)
    {
        let mut g = s.app.glass_reviews(&auth.ctx).await.map_err(pe)?;
        g.truncate(HOME_GLASS_ROWS);
        Some(g)
    } else {
        None
    };
    let creates = s.app.may(
        &auth.ctx,
        Action::CreateRecord,
        Some(&auth.ctx.user.scope_territory),
    );
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (t(L, "home_title")) }
                @if let Some(a) = &agenda { (crate::case_pages::agenda_cards(&s, a, auth.ctx.today())) }
                div.grid {
                    @if h.reads_records {
                        section.card {
                            h2 { (t(L, "home_quick_search")) }
                            form method="get" action="/persons" role="search" {
                                (text_input(L, &Problems::default(), Input { name: "q", label: t(L, "search_q"), value: "", kind: "search", required: false, hint: Some(t(L, "search_q_hint")), autocomplete: None }))
                                button.primary type="submit" { (t(L, "search_submit")) }
                            }
                            h2 { (t(L, "home_actions")) }
                            p.actions {
                                @if creates {
                                    a.button href="/register" { (t(L, if child { "nav_register_child" } else { "nav_register_person" })) }
                                    a.button.secondary href="/families/new" { (t(L, "nav_register_family")) }
                                }
                                a.button.secondary href="/families" { (t(L, "family_search")) }
                            }
                        }
                    } @else if auth.ctx.actor.roles.contains(&kamkor_domain::policy::Role::Administrator) {
                        section.card {
                            h2 { (t(L, "nav_admin")) }
                            p { (t(L, "home_admin_hint")) }
                            p.actions { a.button href="/admin" { (t(L, "nav_admin")) } }
                        }
                    } @else {
                        section.card { p { (t(L, "home_no_record_access")) } }
                    }
                    @if h.reads_records {
                        section.card {
                            h2 { (t(L, "home_counts")) }
                            @if !h.reads_records { p { (t(L, "home_no_record_access")) } } @else {
                                table {
                                    thead { tr { th { (t(L, "col_status")) } th.num { (t(L, "col_count")) } } }
                                    tbody {
                                        @for st in CaseStatus::ALL {
                                            @let n = h.counts.iter().find(|(c, _)| c == st.code()).map(|(_, n)| *n).unwrap_or(0);
                                            tr { td { a href={ "/cases?status=" (st.code()) } { (status_label(st)) } } td.num { (n) } }
                                        }
                                        tr.total { td { "Всего" } td.num { (total) } }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(g) = &glass {
                    section.card {
                        h2 { (t(L, "home_glass")) }
                        p.hint { (t(L, "home_glass_hint")) }
                        (crate::admin_pages::glass_table(&s, &auth, g))
                        p { a href="/admin/break-glass" { (t(L, "home_glass_all")) " →" } }
                    }
                }
                @if h.reads_records {
                    section.card {
                        h2 { (t(L, "home_my_cases")) }
                        @if h.my_cases.is_empty() { p { (t(L, "home_no_cases")) } } @else {
                            (case_table(&s, &h.my_cases, &h.subjects))
                            p { a href="/cases?mine=true" { (t(L, "home_all_my_cases")) " →" } }
                        }
                    }
                }
            },
        ),
    ))
}

fn case_table(
    s: &AppState,
    rows: &[kamkor_store::CaseRow],
    subjects: &std::collections::HashMap<Uuid, String>,
) -> Markup {
    html! {
        table {
            thead { tr {
                th { (t(L, "col_case")) } th { (t(L, "col_subject")) } th { (t(L, "col_status")) }
                th { (t(L, "col_identified_on")) } th { (t(L, "col_territory")) } th { (t(L, "cw_stage_due")) }
            } }
            tbody {
                @for c in rows {
                    tr {
                        td { a href={ "/cases/" (c.id) } { (c.number) } }
                        td { @match subjects.get(&c.data.subject_id) { Some(n) => { (n) }, None => { span.muted { (t(L, "subject_hidden")) } } } }
                        td { span.badge { (status_label(c.status)) } }
                        td { (display_date(c.data.identified_on)) }
                        td { (territory_name(&s.app.profile, L, &c.territory)) }
                        // The stage's deadline from the profile (issue 5 item 1), late ones marked.
                        td {
                            @if let Some(d) = s.app.stage_due(c).filter(|_| c.status.is_open()) {
                                @if d < kamkor_store::now_utc().date() { strong.overdue { (display_date(d)) } } @else { (display_date(d)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- persons

async fn persons(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(q): Query<PersonSearch>,
) -> PageResult {
    let p = page(&s, t(L, "search_title"), Some(&auth));
    let (found, problems) = match s.app.search_persons(&auth.ctx, &q).await {
        Ok(r) => (r, Problems::default()),
        Err(AppError::Invalid(pr)) => (Default::default(), pr),
        Err(e) => return Err(pe(e)),
    };
    // An exact identifier found nobody here but someone elsewhere: offer to break the glass.
    let exact_id = if !q.q.trim().is_empty() {
        q.q.trim()
    } else {
        q.national_id.trim()
    };
    let glass = if found.hits.is_empty() && problems.is_empty() && !exact_id.is_empty() {
        s.app
            .glass_candidate(&auth.ctx, exact_id)
            .await
            .map_err(pe)?
            .map(|_| exact_id.to_string())
    } else {
        None
    };
    let searched = q.has_terms() || q.has_filters();
    let page_link = |n: i64| {
        let mut qs = vec![
            ("q", q.q.clone()),
            ("name", q.name.clone()),
            ("national_id", q.national_id.clone()),
            ("birth_date", q.birth_date.clone()),
            ("territory", q.territory.clone()),
            ("sex", q.sex.clone()),
            ("age_from", q.age_from.clone()),
            ("age_to", q.age_to.clone()),
            ("status", q.status.clone()),
            ("page", n.to_string()),
        ];
        qs.retain(|(k, v)| !v.is_empty() || *k == "page");
        if q.include_relatives {
            qs.push(("include_relatives", "true".into()));
        }
        format!(
            "/persons?{}",
            serde_urlencoded::to_string(qs).unwrap_or_default()
        )
    };
    let sexes = vec![
        ("female".to_string(), t(L, "sex_female").to_string()),
        ("male".to_string(), t(L, "sex_male").to_string()),
    ];
    let mut statuses = vec![
        ("open".to_string(), t(L, "search_status_open").to_string()),
        (
            "closed".to_string(),
            t(L, "search_status_closed").to_string(),
        ),
        ("none".to_string(), t(L, "search_status_none").to_string()),
    ];
    statuses.extend(CaseStatus::ALL.iter().map(|c| {
        (
            c.code().to_string(),
            t(L, &format!("status_{}", c.code())).to_string(),
        )
    }));
    let territories = scope_territory_options(&s, &auth.ctx.user.scope_territory);
    let filters_open = q.has_filters()
        || problems.0.iter().any(|e| {
            ["territory", "sex", "age_from", "age_to", "status"].contains(&e.field.as_str())
        });
    let hits = &found.hits;
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (t(L, "search_title")) }
                form.card.search method="get" action="/persons" role="search" {
                    (text_input(L, &problems, Input { name: "q", label: t(L, "search_q"), value: &q.q, kind: "search", required: false, hint: Some(t(L, "search_q_hint")), autocomplete: None }))
                    details open[!q.name.is_empty() || !q.national_id.is_empty() || !q.birth_date.is_empty()] {
                        summary { (t(L, "search_fields")) }
                        div.row {
                            (text_input(L, &problems, Input { name: "name", label: t(L, "search_name"), value: &q.name, kind: "text", required: false, hint: None, autocomplete: None }))
                            (text_input(L, &problems, Input { name: "national_id", label: t(L, "search_national_id"), value: &q.national_id, kind: "text", required: false, hint: None, autocomplete: None }))
                            (text_input(L, &problems, Input { name: "birth_date", label: t(L, "search_birth_date"), value: &q.birth_date, kind: "text", required: false, hint: Some(t(L, "search_birth_date_hint")), autocomplete: None }))
                        }
                    }
                    details open[filters_open] {
                        summary { (t(L, "search_filters")) }
                        div.row {
                            (filter_select(&problems, "territory", t(L, "col_territory"), &q.territory, &territories))
                            (filter_select(&problems, "sex", t(L, "col_sex"), &q.sex, &sexes))
                            (text_input(L, &problems, Input { name: "age_from", label: t(L, "search_age_from"), value: &q.age_from, kind: "number", required: false, hint: None, autocomplete: None }))
                            (text_input(L, &problems, Input { name: "age_to", label: t(L, "search_age_to"), value: &q.age_to, kind: "number", required: false, hint: None, autocomplete: None }))
                            (filter_select(&problems, "status", t(L, "search_status"), &q.status, &statuses))
                        }
                    }
                    label.check { input type="checkbox" name="include_relatives" value="true" checked[q.include_relatives]; " " (t(L, "search_include_relatives")) }
                    button.primary type="submit" { (t(L, "search_submit")) }
                }
                @if !problems.is_empty() { }
                @else if hits.is_empty() {
                    p.empty { (t(L, "search_nothing")) }
                    @if let Some(nid) = &glass {
                        (crate::account_pages::glass_form(&auth.session.csrf_token, nid, "", &Problems::default()))
                    }
                }
                @else {
                    h2 { @if found.ranked { (t(L, "search_ranked")) } @else if searched { (t(L, "search_results")) } @else { (t(L, "search_recent")) } }
                    (person_hits_table(&s, hits))
                    nav.pager {
                        @if q.page > 0 { a href=(page_link(q.page - 1)) { "← " (t(L, "search_prev")) } }
                        @if found.more { a href=(page_link(q.page + 1)) { (t(L, "search_more")) " →" } }
                    }
                }
            },
        ),
    ))
}

/// A search filter's choice: empty means "any".
fn filter_select(
    problems: &Problems,
    name: &str,
    label: &str,
    value: &str,
    options: &[(String, String)],
) -> Markup {
    crate::html::select_with(
        L,
        problems,
        name,
        label,
        value,
        false,
        options,
        t(L, "search_any"),
    )
}

/// Territories a user may narrow a search to: their scope node and everything within it,
/// each named with its parent so that two districts of one name are told apart.
fn scope_territory_options(s: &AppState, scope: &str) -> Vec<(String, String)> {
    let pr = &s.app.profile;
    pr.territories
        .iter()
        .filter(|t| pr.territory_within(&t.code, scope) && !t.parent.is_empty())
        .map(|t| {
            let name = t.name.get(L.code()).to_string();
            let label = match pr.territory(&t.parent).filter(|p| !p.parent.is_empty()) {
                Some(parent) => format!("{} — {}", parent.name.get(L.code()), name),
                None => name,
            };
            (t.code.clone(), label)
        })
        .collect()
}

/// What made a person answer a search, in words.
fn match_words(m: &kamkor_app::Matched) -> Vec<String> {
    use kamkor_domain::matching::DateMatch;
    let mut out = Vec::new();
    if let Some(n) = m.name {
        out.push(if n >= 0.999 {
            t(L, "match_name_exact").to_string()
        } else {
            format!("{} {}%", t(L, "match_name_like"), (n * 100.0).round())
        });
    }
    match m.date {
        Some(DateMatch::Exact) => out.push(t(L, "match_date_exact").into()),
        Some(DateMatch::Swapped) => out.push(t(L, "match_date_swapped").into()),
        Some(DateMatch::SameYear) => out.push(t(L, "match_date_year").into()),
        Some(DateMatch::None) => out.push(t(L, "match_date_other").into()),
        None => {}
    }
    match m.id_exact {
        Some(true) => out.push(t(L, "match_id_exact").into()),
        Some(false) => out.push(t(L, "match_id_near").into()),
        None => {}
    }
    out
}

fn person_hits_table(s: &AppState, hits: &[kamkor_app::PersonHit]) -> Markup {
    let ranked = hits.iter().any(|h| h.matched.is_some());
    html! {
        table {
            thead { tr {
                th { (t(L, "col_name")) } th { (t(L, "col_birth_date")) } th { (t(L, "col_national_id")) }
                th { (t(L, "col_territory")) } th { (t(L, "col_role")) }
                @if ranked { th { (t(L, "col_match")) } }
            } }
            tbody {
                @for h in hits {
                    @let r = &h.row;
                    tr {
                        td { a href={ "/persons/" (r.id) } { (r.data.full_name()) } }
                        td { (r.data.birth_date.map(display_date).unwrap_or_default()) }
                        td.mono { (nid_display(&s.app.profile, r.data.national_id.as_deref())) }
                        td { (r.data.residence_territory.as_deref().map(|c| territory_name(&s.app.profile, L, c)).unwrap_or_default()) }
                        td { (t(L, if r.data.role == PersonRole::Subject { "role_subject" } else { "role_relative" })) }
                        @if ranked {
                            td.match {
                                @if let Some(m) = &h.matched {
                                    strong { ((m.score * 100.0).round()) "%" }
                                    " " span.why { (match_words(m).join(", ")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A note that some linked records lie outside the user's territory (not shown).
fn hidden_note(n: usize) -> Markup {
    html! {
        @if n > 0 { p.notice { (t(L, "hidden_linked")) " " (n) "." } }
    }
}

/// "ПИН" or "СНИЛС": the profile's national identifier, named as people know it.
pub(crate) fn nid_label(pr: &Profile) -> &'static str {
    t(L, &format!("person_national_id_{}", pr.meta.national_id))
}

/// A stored identifier as people write it (SNILS as `112-233-445 95`).
pub(crate) fn nid_display(pr: &Profile, v: Option<&str>) -> String {
    match (v, pr.national_id_kind()) {
        (None, _) => String::new(),
        (Some(x), kamkor_domain::identifiers::NationalIdKind::RuSnils) => {
            kamkor_domain::identifiers::Snils::parse(x)
                .map(|s| s.to_string())
                .unwrap_or_else(|_| x.to_string())
        }
        (Some(x), _) => x.to_string(),
    }
}

fn dl_row(label: &str, value: String) -> Markup {
    html! { div { dt { (label) } dd { @if value.is_empty() { span.muted { (t(L, "not_specified")) } } @else { (value) } } } }
}

fn history(
    pr: &Profile,
    rows: &[ChangeRow],
    actors: &std::collections::HashMap<String, String>,
    labels: &dyn Fn(&str) -> String,
) -> Markup {
    history_of(pr, rows, actors, labels, &std::collections::HashMap::new())
}

/// A history table; `records` names the case-work records by id (issue 5).
fn history_of(
    pr: &Profile,
    rows: &[ChangeRow],
    actors: &std::collections::HashMap<String, String>,
    labels: &dyn Fn(&str) -> String,
    records: &std::collections::HashMap<String, String>,
) -> Markup {
    html! {
        @if rows.is_empty() { p { (t(L, "history_none")) } } @else {
            table.history {
                thead { tr { th { (t(L, "col_recorded")) } th { (t(L, "col_effective")) } th { (t(L, "col_who")) } th { (t(L, "audit_col_action")) } th { (t(L, "col_what")) } } }
                tbody {
                    @for c in rows.iter().rev() {
                        tr {
                            td { (display_ts(pr, &c.at)) }
                            // Seed 000 §20: when the change took effect, next to when it was recorded.
                            td {
                                @match &c.effective_on {
                                    Some(day) => strong.effective { (crate::html::display_date_str(day)) },
                                    None => span.muted { (t(L, "history_effective_same")) },
                                }
                            }
                            td { (actors.get(&c.actor).map(String::as_str).unwrap_or(if c.actor == "system" || c.actor == "cli" { t(L, "system_actor") } else { &c.actor })) }
                            td { (crate::audit_pages::action_label(&c.action)) }
                            td {
                                // Records of case work say which record they are (issue 5).
                                @let record = crate::case_pages::record_kind_label(&c.entity);
                                @if let Some(kind) = record {
                                    strong.record { (kind) }
                                    @if let Some(name) = records.get(&c.entity_id).cloned().or_else(|| crate::case_pages::record_name(pr, c)) { " «" (name) "»" }
                                }
                                @match (&c.before, &c.after) {
                                    (Some(b), Some(a)) => {
                                        ul.changes {
                                            @for ch in kamkor_domain::records::diff(b, a) {
                                                @if record.is_some() {
                                                    li { strong { (crate::case_pages::record_field_label(&ch.field)) } ": " (crate::case_pages::record_value(&c.entity, &ch.field, &ch.before, actors)) " → " (crate::case_pages::record_value(&c.entity, &ch.field, &ch.after, actors)) }
                                                } @else if c.entity == "case" && crate::case_pages::is_case_work_field(&ch.field) {
                                                    li { strong { (crate::case_pages::record_field_label(&ch.field)) } ": " (crate::case_pages::case_value(pr, &ch.field, &ch.before, actors)) " → " (crate::case_pages::case_value(pr, &ch.field, &ch.after, actors)) }
                                                } @else {
                                                    li { strong { (labels(&ch.field)) } ": " (json_text(&ch.before)) " → " (json_text(&ch.after)) }
                                                }
                                            }
                                        }
                                    }
                                    _ if c.action == "create" => { @if record.is_some() { ": " } (t(L, "history_created")) }
                                    _ => {}
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn json_text(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(json_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

pub(crate) fn person_field_label(p: &Profile, f: &str) -> String {
    let key = f.rsplit('.').next().unwrap_or(f);
    if key == "national_id" {
        return nid_label(p).to_string();
    }
    if let Some(code) = f
        .strip_prefix("extra.")
        .or_else(|| f.split_once(".extra.").map(|(_, c)| c))
    {
        for form in &p.forms {
            if let Some((_, fd)) = form.fields().find(|(_, fd)| fd.code == code) {
                return fd.label.get(L.code()).to_string();
            }
        }
    }
    let k = format!("person_{key}");
    let v = t(L, &k);
    if v == "?" {
        key.to_string()
    } else {
        v.to_string()
    }
}

async fn person_card(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(saved): Query<Saved>,
) -> PageResult {
    let id = Uuid::parse_str(&id).map_err(|_| pe(AppError::NotFound))?;
    let card = s.app.person_card(&auth.ctx, id).await.map_err(pe)?;
    let views = crate::audit_pages::views_card(
        &s,
        &auth,
        "person",
        &id.to_string(),
        card.person.data.residence_territory.as_deref(),
    )
    .await?;
    let pr = &s.app.profile;
    let d = &card.person.data;
    let title = d.full_name();
    let mut p = page(&s, &title, Some(&auth));
    p.flash = saved.message();
    let today = auth.ctx.today();
    let subject_form = pr.forms.iter().find(|f| f.applies_to == "person");
    let kind = if pr.meta.subject == "child" {
        "child"
    } else {
        "person"
    };
    let labels = |f: &str| person_field_label(pr, f);
    // A merged record is read-only: the work carries on in the record it was merged into.
    let writable = card.glass.is_none() && card.merged_into.is_none();
    let duplicates = if writable {
        match s.app.duplicates_of(&auth.ctx, id).await {
            Ok(d) => d,
            Err(AppError::Forbidden(_) | AppError::NotFound) => Default::default(),
            Err(e) => return Err(pe(e)),
        }
    } else {
        Default::default()
    };
    let may_merge = s.app.may(
        &auth.ctx,
        Action::MergeRecords,
        d.residence_territory.as_deref(),
    );
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                @if let Some(g) = &card.glass {
                    p.flash.glass role="status" { (t(L, "glass_banner")) " " (display_ts(pr, &g.expires_at)) }
                }
                @if let Some(into) = card.merged_into {
                    p.flash.glass.merged role="status" { (t(L, "merged_banner")) " " a href={ "/persons/" (into) } { (t(L, "open_record")) } }
                }
                div.title-row {
                    h1 { (title) }
                    p.actions {
                        @if writable && s.app.may(&auth.ctx, Action::UpdateRecord, d.residence_territory.as_deref()) {
                            a.button.secondary href={ "/persons/" (id) "/edit" } { (t(L, "edit")) }
                        }
                        @if card.glass.is_none() && s.app.may(&auth.ctx, Action::ExportRecord, d.residence_territory.as_deref()) {
                            a.button.secondary href={ "/persons/" (id) "/print" } { (t(L, "person_print")) }
                            a.button.secondary href={ "/api/v1/persons/" (id) "/export" } { (t(L, "person_export")) }
                        }
                        @if writable && d.role == PersonRole::Subject && s.app.may(&auth.ctx, Action::OpenCase, d.residence_territory.as_deref()) {
                            a.button href={ "/cases/new?subject_kind=" (kind) "&subject_id=" (id) } { (t(L, "person_open_case")) }
                        }
                    }
                }
                @if !duplicates.shown.is_empty() {
                    section.card.duplicates {
                        h2 { (t(L, "dup_on_card")) }
                        p.hint { (t(L, "dup_on_card_hint")) }
                        table {
                            thead { tr { th { (t(L, "col_name")) } th { (t(L, "col_birth_date")) } th { (nid_label(pr)) } th { (t(L, "col_territory")) } th { (t(L, "col_match")) } th {} } }
                            tbody { @for l in &duplicates.shown { tr {
                                td { a href={ "/persons/" (l.row.id) } { (l.row.data.full_name()) } }
                                td { (l.row.data.birth_date.map(display_date).unwrap_or_default()) }
                                td.mono { (nid_display(pr, l.row.data.national_id.as_deref())) }
                                td { (l.row.data.residence_territory.as_deref().map(|x| territory_name(pr, L, x)).unwrap_or_default()) }
                                td.match { strong { ((l.evidence.score * 100.0).round()) "%" } " " span.why { (evidence_words(&l.evidence).join(", ")) } }
                                td { @if may_merge { a.button.secondary.small href={ "/persons/" (id) "/merge?with=" (l.row.id) } { (t(L, "dup_compare")) } } }
                            } } }
                        }
                    }
                }
                section.card {
                    h2 { (t(L, "person_main")) }
                    dl.facts {
                        (dl_row(t(L, "person_sex"), t(L, if d.sex == kamkor_domain::Sex::Female { "sex_female" } else { "sex_male" }).to_string()))
                        (dl_row(t(L, "person_birth_date"), d.birth_date.map(|b| format!("{} ({} {})", display_date(b), kamkor_domain::records::age_on(b, today), t(L, "person_years"))).unwrap_or_default()))
                        (dl_row(nid_label(pr), nid_display(pr, d.national_id.as_deref())))
                        (dl_row(t(L, "person_citizenship"), d.citizenship.as_deref().map(|c| classifier_label(pr, L, "citizenship", c)).unwrap_or_default()))
                        (dl_row(t(L, "person_residence_territory"), d.residence_territory.as_deref().map(|c| territory_name(pr, L, c)).unwrap_or_default()))
                        (dl_row(t(L, "person_address"), d.address.clone().unwrap_or_default()))
                        (dl_row(t(L, "person_disability"), d.disability.as_deref().map(|c| classifier_label(pr, L, "disability", c)).unwrap_or_default()))
                        @if pr.classifier("legal_status").is_some() {
                            (dl_row(t(L, "person_legal_status"), d.legal_status.as_deref().map(|c| classifier_label(pr, L, "legal_status", c)).unwrap_or_default()))
                        }
                        (dl_row(t(L, "person_social_payments"), d.social_payments.iter().map(|c| classifier_label(pr, L, "social_payment", c)).collect::<Vec<_>>().join("; ")))
                    }
                }
                @if let (Some(form), PersonRole::Subject) = (subject_form, d.role) {
                    @for sec in &form.section {
                        section.card {
                            div.title-row {
                                h2 { (sec.label.get(L.code())) }
                                @if writable && s.app.may_edit_section(&auth.ctx, d.residence_territory.as_deref(), sec) {
                                    a.button.secondary.small href={ "/persons/" (id) "/sections/" (sec.code) } { (t(L, "section_edit")) }
                                }
                            }
                            dl.facts {
                                @for f in &sec.field {
                                    (dl_row(f.label.get(L.code()), d.extra.get(&f.code).map(|v| extra_display(pr, L, f, v)).unwrap_or_default()))
                                }
                            }
                        }
                    }
                }
                section.card {
                    h2 { (t(L, "person_relatives")) }
                    @if card.relatives.is_empty() { p { (t(L, "person_no_relatives")) } } @else {
                        table {
                            thead { tr { th { (t(L, "col_relation")) } th { (t(L, "col_name")) } th { (t(L, "col_relative_status")) } th { (t(L, "col_birth_date")) } th { (t(L, "col_national_id")) } } }
                            tbody {
                                @for (r, rp) in &card.relatives {
                                    tr {
                                        td { (classifier_label(pr, L, "relation_kind", &r.data.relation_kind)) }
                                        td { a href={ "/persons/" (rp.id) } { (rp.data.full_name()) } }
                                        td { (classifier_label(pr, L, "relative_status", &r.data.relative_status)) }
                                        td { (rp.data.birth_date.map(display_date).unwrap_or_default()) }
                                        td.mono { (nid_display(pr, rp.data.national_id.as_deref())) }
                                    }
                                }
                            }
                        }
                    }
                    @if !card.relative_of.is_empty() {
                        h3 { (t(L, "person_relative_of")) }
                        ul {
                            @for (r, sp) in &card.relative_of {
                                li { (classifier_label(pr, L, "relation_kind", &r.data.relation_kind)) " — " a href={ "/persons/" (sp.id) } { (sp.data.full_name()) } }
                            }
                        }
                    }
                }
                section.card {
                    h2 { (t(L, "person_families")) }
                    @if card.families.is_empty() { p { (t(L, "person_no_families")) } } @else {
                        ul { @for f in &card.families { li { a href={ "/families/" (f.id) } { (f.data.name) } } } }
                    }
                }
                section.card {
                    h2 { (t(L, "person_cases")) }
                    @if card.cases.is_empty() { p { (t(L, "person_no_cases")) } } @else {
                        table {
                            thead { tr { th { (t(L, "col_case")) } th { (t(L, "col_status")) } th { (t(L, "col_identified_on")) } } }
                            tbody { @for c in &card.cases { tr {
                                td { a href={ "/cases/" (c.id) } { (c.number) } }
                                td { span.badge { (status_label(c.status)) } }
                                td { (display_date(c.data.identified_on)) }
                            } } }
                        }
                    }
                }
                @if !card.merged.is_empty() {
                    section.card {
                        h2 { (t(L, "merged_records")) }
                        p.hint { (t(L, "merged_records_hint")) }
                        ul { @for m in &card.merged {
                            li { a href={ "/persons/" (m.id) } { (m.data.full_name()) } ", " (m.data.birth_date.map(display_date).unwrap_or_default()) " " span.mono { (nid_display(pr, m.data.national_id.as_deref())) } }
                        } }
                    }
                }
                (hidden_note(card.hidden))
                (views)
                section.card {
                    h2 { (t(L, "person_history")) }
                    (history(pr, &card.history, &card.actors, &labels))
                }
            },
        ),
    ))
}

/// What others changed meanwhile, shown over a form whose save came too late.
fn conflict_box(
    pr: &Profile,
    changes: &[kamkor_app::ConflictChange],
    labels: &dyn Fn(&str) -> String,
) -> Markup {
    html! {
        div.errors role="alert" {
            h2 { (t(L, "conflict_title")) }
            p { (t(L, "conflict_intro")) }
            ul {
                @for c in changes {
                    @for f in &c.fields {
                        li { (display_ts(pr, &c.at)) ": " strong { (labels(&f.field)) } " — " (json_text(&f.before)) " → " (json_text(&f.after)) }
                    }
                }
            }
        }
    }
}

/// The person fields of a form, under `prefix` (`child.`, `relatives[0].person.`, or none).
fn person_fields(
    s: &AppState,
    problems: &Problems,
    prefix: &str,
    d: &PersonDraft,
    subject: bool,
    form: Option<&FormDef>,
    sections: SectionMode,
) -> Markup {
    let pr = &s.app.profile;
    let n = |k: &str| format!("{prefix}{k}");
    let child = pr.meta.subject == "child";
    let nid_hint = if pr.national_id_kind() == kamkor_domain::identifiers::NationalIdKind::KgPin {
        "ПИН — 14 цифр: первая — пол (1 — женский, 2 — мужской), затем дата рождения ДДММГГГГ."
    } else {
        "СНИЛС — 11 цифр, например 112-233-445 95."
    };
    html! {
        div.row {
            (text_input(L, problems, Input { name: &n("surname"), label: t(L, "person_surname"), value: &d.surname, kind: "text", required: subject, hint: None, autocomplete: None }))
            (text_input(L, problems, Input { name: &n("given_name"), label: t(L, "person_given_name"), value: &d.given_name, kind: "text", required: subject, hint: None, autocomplete: None }))
            (text_input(L, problems, Input { name: &n("patronymic"), label: t(L, "person_patronymic"), value: &d.patronymic, kind: "text", required: false, hint: Some(t(L, "person_patronymic_hint")), autocomplete: None }))
        }
        div.row {
            (select(L, problems, &n("sex"), t(L, "person_sex"), &d.sex, subject, &[("female".into(), t(L, "sex_female").into()), ("male".into(), t(L, "sex_male").into())]))
            (text_input(L, problems, Input { name: &n("birth_date"), label: t(L, "person_birth_date"), value: &d.birth_date, kind: "date", required: subject, hint: None, autocomplete: None }))
            (text_input(L, problems, Input { name: &n("national_id"), label: nid_label(pr), value: &d.national_id, kind: "text", required: false, hint: Some(nid_hint), autocomplete: None }))
        }
        @if subject {
            div.row {
                (select(L, problems, &n("citizenship"), t(L, "person_citizenship"), &d.citizenship, false, &classifier_options(pr, L, "citizenship", std::slice::from_ref(&d.citizenship))))
                (territory_select(L, problems, pr, &n("residence_territory"), t(L, "person_residence_territory"), &d.residence_territory, true))
            }
            (text_input(L, problems, Input { name: &n("address"), label: t(L, "person_address"), value: &d.address, kind: "text", required: false, hint: None, autocomplete: None }))
            div.row {
                (select(L, problems, &n("disability"), t(L, "person_disability"), &d.disability, false, &classifier_options(pr, L, "disability", std::slice::from_ref(&d.disability))))
                @if child {
                    (select(L, problems, &n("legal_status"), t(L, "person_legal_status"), &d.legal_status, false, &classifier_options(pr, L, "legal_status", std::slice::from_ref(&d.legal_status))))
                }
            }
            (checkboxes(L, problems, &n("social_payments"), t(L, "person_social_payments"), &d.social_payments, &classifier_options(pr, L, "social_payment", &d.social_payments)))
            @if let Some(form) = form {
                @for sec in &form.section {
                    @if sections.editable(s, sec) {
                        fieldset.section {
                            legend { (sec.label.get(L.code())) }
                            @for f in &sec.field {
                                (extra_input(pr, L, problems, prefix, f, d.extra.get(&f.code)))
                            }
                        }
                    } @else {
                        // Another agency's section (seed 004 §11): shown, not editable; the
                        // use case keeps its stored values when the form leaves them out.
                        fieldset.section.readonly {
                            legend { (sec.label.get(L.code())) }
                            p.hint { (t(L, "section_filled_by")) " " (section_owner_names(pr, sec)) }
                            @if let SectionMode::Edit { stored, .. } = sections {
                                dl.facts {
                                    @for f in &sec.field {
                                        (dl_row(f.label.get(L.code()), stored.get(&f.code).map(|v| extra_display(pr, L, f, v)).unwrap_or_default()))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Which sections of the subject form a page lets the user type into.
#[derive(Clone, Copy)]
enum SectionMode<'a> {
    /// A new record: the sections the user's agency kind owns.
    Register(&'a kamkor_app::Ctx),
    /// An existing record in `territory`: the sections the user may edit there.
    Edit {
        ctx: &'a kamkor_app::Ctx,
        territory: Option<&'a str>,
        /// The stored values, shown for the sections the user may not edit.
        stored: &'a serde_json::Map<String, Value>,
    },
}

impl SectionMode<'_> {
    fn editable(&self, s: &AppState, sec: &kamkor_domain::profile::SectionDef) -> bool {
        match *self {
            SectionMode::Register(ctx) => s.app.owns_section(ctx, sec),
            SectionMode::Edit { ctx, territory, .. } => s.app.may_edit_section(ctx, territory, sec),
        }
    }
}

/// The agency kinds that fill a section, by name.
fn section_owner_names(pr: &Profile, sec: &kamkor_domain::profile::SectionDef) -> String {
    sec.owners
        .iter()
        .map(|o| {
            pr.org_kinds
                .iter()
                .find(|k| &k.code == o)
                .map(|k| k.name.get(L.code()).to_string())
                .unwrap_or_else(|| o.clone())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn person_edit_form(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
) -> PageResult {
    let id = Uuid::parse_str(&id).map_err(|_| pe(AppError::NotFound))?;
    let card = s.app.person_card(&auth.ctx, id).await.map_err(pe)?;
    // A record opened by breaking the glass is outside the scope: refused here too.
    s.app
        .authorise_person_edit(&auth.ctx, &card.person)
        .await
        .map_err(pe)?;
    Ok(person_edit_page(
        &s,
        &auth,
        &card.person,
        &card.person.data.to_draft(),
        card.person.version,
        &Problems::default(),
        None,
    ))
}

fn person_edit_page(
    s: &AppState,
    auth: &PageAuth,
    current: &PersonRow,
    d: &PersonDraft,
    version: i64,
    problems: &Problems,
    conflict: Option<&[kamkor_app::ConflictChange]>,
) -> Response {
    let pr = &s.app.profile;
    let title = format!(
        "{}: {}",
        t(L, "person_edit_title"),
        current.data.full_name()
    );
    let p = page(s, &title, Some(auth));
    let subject = current.data.role == PersonRole::Subject;
    let form = if subject {
        pr.forms.iter().find(|f| f.applies_to == "person")
    } else {
        None
    };
    let labels = |f: &str| person_field_label(pr, f);
    let status = if conflict.is_some() {
        StatusCode::CONFLICT
    } else {
        problem_status(problems)
    };
    render(
        status,
        layout(
            &p,
            html! {
                h1 { (title) }
                @if let Some(changes) = conflict { (conflict_box(pr, changes, &labels)) }
                (error_summary(L, problems, labels))
                form.card method="post" action={ "/persons/" (current.id) "/edit" } novalidate {
                    (hidden_csrf(&auth.session.csrf_token))
                    input type="hidden" name="version" value=(version);
                    (person_fields(s, problems, "", d, subject, form, SectionMode::Edit { ctx: &auth.ctx, territory: current.data.residence_territory.as_deref(), stored: &current.data.extra }))
                    (effective_input(problems, &d.effective_on))
                    p.actions {
                        button.primary type="submit" { (t(L, "save")) }
                        a.button.secondary href={ "/persons/" (current.id) } { (t(L, "cancel")) }
                    }
                }
            },
        ),
    )
}

async fn person_edit_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let id = Uuid::parse_str(&id).map_err(|_| pe(AppError::NotFound))?;
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let card = s.app.person_card(&auth.ctx, id).await.map_err(pe)?;
    let form = if card.person.data.role == PersonRole::Subject {
        s.app
            .profile
            .forms
            .iter()
            .find(|x| x.applies_to == "person")
    } else {
        None
    };
    let mut d = f.person("", form);
    if card.person.data.role == PersonRole::Relative {
        // Fields not shown for relatives keep their stored values.
        let cur = card.person.data.to_draft();
        d.citizenship = cur.citizenship;
        d.residence_territory = cur.residence_territory;
        d.address = cur.address;
        d.disability = cur.disability;
        d.legal_status = cur.legal_status;
        d.social_payments = cur.social_payments;
    }
    let version: i64 = f.get("version").parse().unwrap_or(0);
    match s.app.update_person(&auth.ctx, id, version, &d).await {
        Ok(_) => Ok(Redirect::to(&format!("/persons/{id}?saved=updated")).into_response()),
        Err(AppError::Invalid(p)) => Ok(person_edit_page(
            &s,
            &auth,
            &card.person,
            &d,
            version,
            &p,
            None,
        )),
        Err(AppError::Conflict { current, changes }) => Ok(person_edit_page(
            &s,
            &auth,
            &card.person,
            &d,
            current,
            &Problems::default(),
            Some(&changes),
        )),
        Err(e) => Err(pe(e)),
    }
}

// ---------------------------------------------------------------- one section of a card

/// The card's section `code`, for a page that edits it alone (an agency specialist fills the
/// section its agency owns, seed 004 §11).
fn subject_section<'a>(
    pr: &'a Profile,
    person: &PersonRow,
    code: &str,
) -> Option<(&'a FormDef, &'a kamkor_domain::profile::SectionDef)> {
    let form = pr.forms.iter().find(|f| f.applies_to == "person")?;
    if person.data.role != PersonRole::Subject {
        return None;
    }
    form.section
        .iter()
        .find(|x| x.code == code)
        .map(|x| (form, x))
}

async fn section_edit_form(
    State(s): State<AppState>,
    auth: PageAuth,
    Path((id, code)): Path<(String, String)>,
) -> PageResult {
    let id = Uuid::parse_str(&id).map_err(|_| pe(AppError::NotFound))?;
    let card = s.app.person_card(&auth.ctx, id).await.map_err(pe)?;
    let Some((_, sec)) = subject_section(&s.app.profile, &card.person, &code) else {
        return Err(pe(AppError::NotFound));
    };
    s.app
        .authorise_section_edit(&auth.ctx, &card.person, sec)
        .await
        .map_err(pe)?;
    let values: BTreeMap<String, Value> = card
        .person
        .data
        .extra
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(section_edit_page(
        &s,
        &auth,
        &card.person,
        sec,
        SectionTyped {
            values: &values,
            effective_on: "",
            version: card.person.version,
        },
        &Problems::default(),
        None,
    ))
}

#[allow(clippy::too_many_arguments)]
/// What the section form holds: the values, the day they took effect, the version edited.
struct SectionTyped<'a> {
    values: &'a BTreeMap<String, Value>,
    effective_on: &'a str,
    version: i64,
}

/// The day the changes took effect, on edit forms (seed 000 §20: a change is entered from
/// the day the information was received, which may be before today).
fn effective_input(problems: &Problems, value: &str) -> Markup {
    html! {
        fieldset.section {
            legend { (t(L, "effective_legend")) }
            (text_input(L, problems, Input { name: "effective_on", label: t(L, "person_effective_on"), value, kind: "date", required: false, hint: Some(t(L, "effective_on_hint")), autocomplete: None }))
        }
    }
}

fn section_edit_page(
    s: &AppState,
    auth: &PageAuth,
    current: &PersonRow,
    sec: &kamkor_domain::profile::SectionDef,
    typed: SectionTyped,
    problems: &Problems,
    conflict: Option<&[kamkor_app::ConflictChange]>,
) -> Response {
    let SectionTyped {
        values,
        effective_on,
        version,
    } = typed;
    let pr = &s.app.profile;
    let title = format!("{}: {}", sec.label.get(L.code()), current.data.full_name());
    let p = page(s, &title, Some(auth));
    let labels = |f: &str| person_field_label(pr, f);
    let status = if conflict.is_some() {
        StatusCode::CONFLICT
    } else {
        problem_status(problems)
    };
    render(
        status,
        layout(
            &p,
            html! {
                h1 { (title) }
                p.lead { (t(L, "section_edit_intro")) }
                @if let Some(changes) = conflict { (conflict_box(pr, changes, &labels)) }
                (error_summary(L, problems, labels))
                form.card method="post" action={ "/persons/" (current.id) "/sections/" (sec.code) } novalidate {
                    (hidden_csrf(&auth.session.csrf_token))
                    input type="hidden" name="version" value=(version);
                    fieldset.section {
                        legend { (sec.label.get(L.code())) }
                        @for f in &sec.field {
                            (extra_input(pr, L, problems, "", f, values.get(&f.code)))
                        }
                    }
                    (effective_input(problems, effective_on))
                    p.actions {
                        button.primary type="submit" { (t(L, "save")) }
                        a.button.secondary href={ "/persons/" (current.id) } { (t(L, "cancel")) }
                    }
                }
            },
        ),
    )
}

async fn section_edit_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Path((id, code)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let id = Uuid::parse_str(&id).map_err(|_| pe(AppError::NotFound))?;
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let card = s.app.person_card(&auth.ctx, id).await.map_err(pe)?;
    let Some((form, sec)) = subject_section(&s.app.profile, &card.person, &code) else {
        return Err(pe(AppError::NotFound));
    };
    // Only this section's fields: the others are not on the page.
    let values: BTreeMap<String, Value> = f
        .extra("", Some(form))
        .into_iter()
        .filter(|(k, _)| sec.field.iter().any(|x| &x.code == k))
        .collect();
    let version: i64 = f.get("version").parse().unwrap_or(0);
    match s
        .app
        .update_person_section(
            &auth.ctx,
            id,
            version,
            &code,
            &values,
            &f.get("effective_on"),
        )
        .await
    {
        Ok(_) => Ok(Redirect::to(&format!("/persons/{id}?saved=updated")).into_response()),
        Err(AppError::Invalid(p)) => Ok(section_edit_page(
            &s,
            &auth,
            &card.person,
            sec,
            SectionTyped {
                values: &values,
                effective_on: &f.get("effective_on"),
                version,
            },
            &p,
            None,
        )),
        Err(AppError::Conflict { current, changes }) => Ok(section_edit_page(
            &s,
            &auth,
            &card.person,
            sec,
            SectionTyped {
                values: &values,
                effective_on: &f.get("effective_on"),
                version: current,
            },
            &Problems::default(),
            Some(&changes),
        )),
        Err(e) => Err(pe(e)),
    }
}

// ---------------------------------------------------------------- registration of a child

const MIN_RELATIVE_BLOCKS: usize = 2;
const MAX_RELATIVE_BLOCKS: usize = 20;

#[derive(Deserialize, Default)]
#[serde(default)]
struct RegisterQuery {
    /// Register a child into this existing family (the "add a child" button of a family card).
    family_id: String,
}

async fn register_form(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(q): Query<RegisterQuery>,
) -> Response {
    if let Ok(fid) = Uuid::parse_str(q.family_id.trim())
        && let Ok(card) = s.app.family_card(&auth.ctx, fid).await
    {
        let first = card.members.first().map(|(_, p)| p.data.clone());
        let r = ChildRegistration {
            child: PersonDraft {
                surname: first
                    .as_ref()
                    .map(|p| p.surname.clone())
                    .unwrap_or_default(),
                residence_territory: card.family.data.territory.clone().unwrap_or_default(),
                address: card.family.data.address.clone().unwrap_or_default(),
                ..Default::default()
            },
            family_id: fid.to_string(),
            family: Some(FamilyDraft::default()),
            relatives: vec![RelativeDraft::default()],
            ..Default::default()
        };
        return register_page(&s, &auth, &r, "existing", &Problems::default(), 1);
    }
    let r = ChildRegistration {
        family: Some(FamilyDraft::default()),
        relatives: vec![
            RelativeDraft {
                relation_kind: "mother".into(),
                ..Default::default()
            },
            RelativeDraft {
                relation_kind: "father".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    register_page(
        &s,
        &auth,
        &r,
        "new",
        &Problems::default(),
        r.relatives.len(),
    )
}

fn register_label(p: &Profile, f: &str) -> String {
    let mut parts = Vec::new();
    if let Some(rest) = f.strip_prefix("relatives[") {
        let idx: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let n: usize = idx.parse().unwrap_or(0);
        parts.push(format!("{} {}", t(L, "register_relative"), n + 1));
        let field = f.rsplit('.').next().unwrap_or(f);
        parts.push(match field {
            "relation_kind" => t(L, "register_relative_kind").to_string(),
            "relative_status" => t(L, "register_relative_status").to_string(),
            "note" => t(L, "register_relative_note").to_string(),
            other => person_field_label(p, other),
        });
    } else if let Some(rest) = f.strip_prefix("family.") {
        parts.push(t(L, "register_family_section").to_string());
        parts.push(match rest {
            "name" => t(L, "family_name").to_string(),
            "territory" => t(L, "family_territory").to_string(),
            "address" => t(L, "family_address").to_string(),
            other => person_field_label(p, other),
        });
    } else if f == "family_id" {
        parts.push(t(L, "register_family_existing").to_string());
    } else {
        parts.push(person_field_label(p, f.strip_prefix("child.").unwrap_or(f)));
    }
    parts.join(" — ")
}

fn register_page(
    s: &AppState,
    auth: &PageAuth,
    r: &ChildRegistration,
    family_mode: &str,
    problems: &Problems,
    blocks: usize,
) -> Response {
    register_page_with(s, auth, r, family_mode, problems, blocks, None)
}

/// The likely matches of the person being registered, beside what was typed (issue 6 item 2):
/// open one of them, or say why this is someone else and save.
fn duplicate_warning(
    s: &AppState,
    r: &ChildRegistration,
    found: &kamkor_app::duplicates::LikelyDuplicates,
    problems: &Problems,
) -> Markup {
    let pr = &s.app.profile;
    let c = &r.child;
    let typed_name = [c.surname.trim(), c.given_name.trim(), c.patronymic.trim()]
        .iter()
        .filter(|x| !x.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let typed_date = kamkor_domain::records::parse_date(&c.birth_date)
        .map(display_date)
        .unwrap_or_else(|| c.birth_date.clone());
    let sex_name = |code: &str| match code {
        "female" => t(L, "sex_female").to_string(),
        "male" => t(L, "sex_male").to_string(),
        other => other.to_string(),
    };
    html! {
        section.card.duplicates #duplicates role="alert" {
            h2 { (t(L, "dup_title")) }
            p { (t(L, "dup_intro")) }
            @if !found.shown.is_empty() {
                div.scroll { table.compare {
                    thead { tr {
                        th { (t(L, "col_field")) }
                        th { (t(L, "dup_typed")) }
                        @for (i, _) in found.shown.iter().enumerate() { th { (t(L, "dup_record")) " " (i + 1) } }
                    } }
                    tbody {
                        tr { th { (t(L, "col_name")) } td { (typed_name) }
                            @for l in &found.shown { td { (l.row.data.full_name()) } } }
                        tr { th { (t(L, "col_birth_date")) } td { (typed_date) }
                            @for l in &found.shown { td { (l.row.data.birth_date.map(display_date).unwrap_or_default()) } } }
                        tr { th { (nid_label(pr)) } td.mono { (c.national_id) }
                            @for l in &found.shown { td.mono { (nid_display(pr, l.row.data.national_id.as_deref())) } } }
                        tr { th { (t(L, "col_sex")) } td { (sex_name(&c.sex)) }
                            @for l in &found.shown { td { (sex_name(l.row.data.sex.code())) } } }
                        tr { th { (t(L, "col_territory")) } td { (territory_name(pr, L, &c.residence_territory)) }
                            @for l in &found.shown { td { (l.row.data.residence_territory.as_deref().map(|x| territory_name(pr, L, x)).unwrap_or_default()) } } }
                        tr { th { (t(L, "col_match")) } td {}
                            @for l in &found.shown { td.match { strong { ((l.evidence.score * 100.0).round()) "%" } " " span.why { (evidence_words(&l.evidence).join(", ")) } } } }
                        tr { th {} td {}
                            @for l in &found.shown { td { a.button href={ "/persons/" (l.row.id) } { (t(L, "dup_same")) } } } }
                    }
                } }
            }
            @if found.elsewhere > 0 {
                p.notice { (t(L, "dup_elsewhere")) " " (found.elsewhere) "." }
            }
            @for l in &found.shown { input type="hidden" name="distinct_from" value=(l.row.id); }
            (crate::html::textarea(L, problems, "distinct_reason", t(L, "dup_reason"), &r.distinct.distinct_reason, true, Some(t(L, "dup_reason_hint"))))
            p.actions { button.primary type="submit" name="confirm_distinct" value="1" { (t(L, "dup_different")) } }
        }
    }
}

/// The evidence that two records are one person, in words.
pub(crate) fn evidence_words(e: &kamkor_domain::duplicates::Evidence) -> Vec<String> {
    use kamkor_domain::duplicates::IdMatch;
    let mut out = match_words(&kamkor_app::Matched {
        score: e.score,
        name: Some(e.name),
        date: e.birth_date,
        id_exact: match e.national_id {
            Some(IdMatch::Same) => Some(true),
            Some(IdMatch::Near) => Some(false),
            _ => None,
        },
    });
    if e.national_id == Some(IdMatch::Different) {
        out.push(t(L, "match_id_other").into());
    }
    if e.sex_differs {
        out.push(t(L, "match_sex_other").into());
    }
    out
}

fn register_page_with(
    s: &AppState,
    auth: &PageAuth,
    r: &ChildRegistration,
    family_mode: &str,
    problems: &Problems,
    blocks: usize,
    warning: Option<&kamkor_app::duplicates::LikelyDuplicates>,
) -> Response {
    let pr = &s.app.profile;
    let child = pr.meta.subject == "child";
    let title = t(
        L,
        if child {
            "register_child_title"
        } else {
            "register_person_title"
        },
    );
    let p = page(s, title, Some(auth));
    let subject_form = pr.forms.iter().find(|f| f.applies_to == "person");
    let family_form = pr.forms.iter().find(|f| f.applies_to == "family");
    let fam = r.family.clone().unwrap_or_default();
    let blocks = blocks.clamp(1, MAX_RELATIVE_BLOCKS);
    let labels = |f: &str| register_label(pr, f);
    render(
        problem_status(problems),
        layout(
            &p,
            html! {
                h1 { (title) }
                @if child { p.lead { (t(L, "register_child_intro")) } }
                (error_summary(L, problems, labels))
                form method="post" action="/register" novalidate {
                    (hidden_csrf(&auth.session.csrf_token))
                    input type="hidden" name="relatives_count" value=(blocks);
                    @if let Some(found) = warning { (duplicate_warning(s, r, found, problems)) }
                    fieldset.card {
                        legend { (t(L, if child { "register_child_section" } else { "register_person_section" })) }
                        (person_fields(s, problems, "child.", &r.child, true, subject_form, SectionMode::Register(&auth.ctx)))
                    }
                    fieldset.card {
                        legend { (t(L, "register_family_section")) }
                        p.hint { (t(L, "register_family_hint")) }
                        div.radios {
                            label.check { input type="radio" name="family_mode" value="new" checked[family_mode == "new"]; " " (t(L, "family_new_title")) }
                            label.check { input type="radio" name="family_mode" value="existing" checked[family_mode == "existing"]; " " (t(L, "register_family_existing")) }
                            label.check { input type="radio" name="family_mode" value="none" checked[family_mode == "none"]; " " (t(L, "register_family_none")) }
                        }
                        (text_input(L, problems, Input { name: "family_id", label: t(L, "register_family_existing"), value: &r.family_id, kind: "text", required: false, hint: None, autocomplete: None }))
                        div.row {
                            (text_input(L, problems, Input { name: "family.name", label: t(L, "family_name"), value: &fam.name, kind: "text", required: false, hint: Some(t(L, "family_name_hint")), autocomplete: None }))
                            (text_input(L, problems, Input { name: "family.address", label: t(L, "family_address"), value: &fam.address, kind: "text", required: false, hint: None, autocomplete: None }))
                        }
                        @if let Some(ff) = family_form {
                            @for sec in &ff.section {
                                @for f in &sec.field {
                                    (extra_input(pr, L, problems, "family.", f, fam.extra.get(&f.code)))
                                }
                            }
                        }
                    }
                    fieldset.card {
                        legend { (t(L, "register_relatives_section")) }
                        @for i in 0..blocks {
                            @let rd = r.relatives.get(i).cloned().unwrap_or_default();
                            @let pre = format!("relatives[{i}].");
                            fieldset.relative {
                                legend { (t(L, "register_relative")) " " (i + 1) }
                                div.row {
                                    (select(L, problems, &format!("{pre}relation_kind"), t(L, "register_relative_kind"), &rd.relation_kind, false, &classifier_options(pr, L, "relation_kind", std::slice::from_ref(&rd.relation_kind))))
                                    (select(L, problems, &format!("{pre}relative_status"), t(L, "register_relative_status"), &rd.relative_status, false, &classifier_options(pr, L, "relative_status", std::slice::from_ref(&rd.relative_status))))
                                }
                                (person_fields(s, problems, &format!("{pre}person."), &rd.person, false, None, SectionMode::Register(&auth.ctx)))
                                (text_input(L, problems, Input { name: &format!("{pre}note"), label: t(L, "register_relative_note"), value: &rd.note, kind: "text", required: false, hint: None, autocomplete: None }))
                            }
                        }
                        @if blocks < MAX_RELATIVE_BLOCKS {
                            button.secondary type="submit" name="add_relative" value="1" formnovalidate { "+ " (t(L, "register_relative")) }
                        }
                    }
                    p.actions { button.primary type="submit" { (t(L, "register_submit")) } }
                }
            },
        ),
    )
}

fn relation_sex(kind: &str) -> Option<&'static str> {
    match kind {
        "mother" | "stepmother" | "grandmother" | "sister" | "aunt" | "daughter" => Some("female"),
        "father" | "stepfather" | "grandfather" | "brother" | "uncle" | "son" => Some("male"),
        _ => None,
    }
}

async fn register_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let pr = &s.app.profile;
    let subject_form = pr.forms.iter().find(|x| x.applies_to == "person");
    let family_form = pr.forms.iter().find(|x| x.applies_to == "family");
    let blocks: usize = f
        .get("relatives_count")
        .parse()
        .unwrap_or(MIN_RELATIVE_BLOCKS)
        .clamp(1, MAX_RELATIVE_BLOCKS);
    let family_mode = match f.get("family_mode").as_str() {
        "existing" => "existing",
        "none" => "none",
        _ => "new",
    };
    let mut shown = Vec::new();
    for i in 0..blocks {
        let pre = format!("relatives[{i}].");
        let mut person = f.person(&format!("{pre}person."), None);
        let relation_kind = f.get(&format!("{pre}relation_kind"));
        if person.sex.is_empty()
            && let Some(sx) = relation_sex(&relation_kind)
        {
            person.sex = sx.to_string();
        }
        shown.push(RelativeDraft {
            person,
            existing_id: String::new(),
            relation_kind,
            relative_status: f.get(&format!("{pre}relative_status")),
            note: f.get(&format!("{pre}note")),
        });
    }
    let family = FamilyDraft {
        name: f.get("family.name"),
        territory: String::new(),
        address: f.get("family.address"),
        extra: f.extra("family.", family_form),
    };
    let mut r = ChildRegistration {
        child: f.person("child.", subject_form),
        family_id: if family_mode == "existing" {
            f.get("family_id")
        } else {
            String::new()
        },
        family: Some(family),
        relatives: shown.clone(),
        distinct: kamkor_app::duplicates::DistinctAnswer {
            distinct_from: if f.has("confirm_distinct") {
                f.all("distinct_from")
            } else {
                Vec::new()
            },
            distinct_reason: f.get("distinct_reason"),
        },
    };
    if f.has("add_relative") {
        return Ok(register_page(
            &s,
            &auth,
            &r,
            family_mode,
            &Problems::default(),
            blocks + 1,
        ));
    }
    // Empty relative blocks are not relatives; remember where each kept one came from so that
    // errors land next to the right block.
    let is_empty = |rd: &RelativeDraft| {
        rd.person.surname.trim().is_empty()
            && rd.person.given_name.trim().is_empty()
            && rd.person.national_id.trim().is_empty()
            && rd.person.birth_date.trim().is_empty()
            && rd.relative_status.trim().is_empty()
    };
    let kept: Vec<(usize, RelativeDraft)> = shown
        .iter()
        .cloned()
        .enumerate()
        .filter(|(_, rd)| !is_empty(rd))
        .collect();
    let mut submit = r.clone();
    submit.relatives = kept.iter().map(|(_, rd)| rd.clone()).collect();
    if family_mode == "none" {
        submit.family = None;
    }
    if family_mode == "existing" && submit.family_id.trim().is_empty() {
        let mut p = Problems::default();
        p.push("family_id", "required");
        return Ok(register_page(&s, &auth, &r, family_mode, &p, blocks));
    }
    match s.app.register_child(&auth.ctx, &submit).await {
        Ok(reg) => Ok(
            Redirect::to(&format!("/persons/{}?saved=registered", reg.person_id)).into_response(),
        ),
        Err(AppError::Invalid(mut p)) => {
            for e in &mut p.0 {
                if let Some(rest) = e.field.strip_prefix("relatives[") {
                    let idx: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                    if let Ok(k) = idx.parse::<usize>()
                        && let Some((orig, _)) = kept.get(k)
                    {
                        e.field = format!(
                            "relatives[{orig}]{}",
                            rest.get(idx.len() + 1..).unwrap_or_default()
                        );
                    }
                }
            }
            r.relatives = shown;
            Ok(register_page(&s, &auth, &r, family_mode, &p, blocks))
        }
        Err(AppError::LikelyDuplicates(found)) => {
            r.relatives = shown;
            Ok(register_page_with(
                &s,
                &auth,
                &r,
                family_mode,
                &found.problems,
                blocks,
                Some(&found),
            ))
        }
        Err(e) => Err(pe(e)),
    }
}

// ---------------------------------------------------------------- families

#[derive(Deserialize, Default)]
#[serde(default)]
struct FamilyQuery {
    name: String,
}

async fn families(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(q): Query<FamilyQuery>,
) -> PageResult {
    let rows = s
        .app
        .search_families(&auth.ctx, &q.name)
        .await
        .map_err(pe)?;
    let p = page(&s, t(L, "family_search"), Some(&auth));
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (t(L, "family_search")) }
                form.card method="get" action="/families" role="search" {
                    (text_input(L, &Problems::default(), Input { name: "name", label: t(L, "family_name"), value: &q.name, kind: "search", required: false, hint: None, autocomplete: None }))
                    button.primary type="submit" { (t(L, "search_submit")) }
                }
                @if rows.is_empty() { p.empty { (t(L, "search_nothing")) } } @else {
                    table {
                        thead { tr { th { (t(L, "family_name")) } th { (t(L, "col_territory")) } th { (t(L, "family_address")) } } }
                        tbody { @for f in &rows { tr {
                            td { a href={ "/families/" (f.id) } { (f.data.name) } }
                            td { (f.data.territory.as_deref().map(|c| territory_name(&s.app.profile, L, c)).unwrap_or_default()) }
                            td { (f.data.address.clone().unwrap_or_default()) }
                        } } }
                    }
                }
            },
        ),
    ))
}

fn family_page(
    s: &AppState,
    auth: &PageAuth,
    d: &FamilyDraft,
    members: &[(String, String)],
    problems: &Problems,
) -> Response {
    let pr = &s.app.profile;
    let p = page(s, t(L, "family_new_title"), Some(auth));
    let form = pr.forms.iter().find(|f| f.applies_to == "family");
    let labels = |f: &str| match f {
        "name" => t(L, "family_name").to_string(),
        "territory" => t(L, "family_territory").to_string(),
        "address" => t(L, "family_address").to_string(),
        other => person_field_label(pr, other),
    };
    render(
        problem_status(problems),
        layout(
            &p,
            html! {
                h1 { (t(L, "family_new_title")) }
                (error_summary(L, problems, labels))
                form.card method="post" action="/families/new" novalidate {
                    (hidden_csrf(&auth.session.csrf_token))
                    (text_input(L, problems, Input { name: "name", label: t(L, "family_name"), value: &d.name, kind: "text", required: true, hint: Some(t(L, "family_name_hint")), autocomplete: None }))
                    div.row {
                        (territory_select(L, problems, pr, "territory", t(L, "family_territory"), &d.territory, true))
                        (text_input(L, problems, Input { name: "address", label: t(L, "family_address"), value: &d.address, kind: "text", required: false, hint: None, autocomplete: None }))
                    }
                    @if let Some(ff) = form {
                        @for sec in &ff.section {
                            fieldset.section {
                                legend { (sec.label.get(L.code())) }
                                @for f in &sec.field { (extra_input(pr, L, problems, "", f, d.extra.get(&f.code))) }
                            }
                        }
                    }
                    @for (pid, role) in members {
                        input type="hidden" name="member_id" value=(pid);
                        input type="hidden" name="member_role" value=(role);
                    }
                    p.actions { button.primary type="submit" { (t(L, "register_submit")) } }
                }
            },
        ),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewFamilyQuery {
    member: String,
}

async fn family_form(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(q): Query<NewFamilyQuery>,
) -> Response {
    let members = if q.member.is_empty() {
        Vec::new()
    } else {
        vec![(q.member, "child".to_string())]
    };
    family_page(
        &s,
        &auth,
        &FamilyDraft::default(),
        &members,
        &Problems::default(),
    )
}

async fn family_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let form = s
        .app
        .profile
        .forms
        .iter()
        .find(|x| x.applies_to == "family");
    let d = FamilyDraft {
        name: f.get("name"),
        territory: f.get("territory"),
        address: f.get("address"),
        extra: f.extra("", form),
    };
    let members: Vec<(String, String)> = f
        .all("member_id")
        .into_iter()
        .zip(f.all("member_role"))
        .collect();
    let r = FamilyRegistration {
        family: d.clone(),
        members: members
            .iter()
            .map(|(p, r)| FamilyMemberDraft {
                person_id: p.clone(),
                role: r.clone(),
            })
            .collect(),
    };
    match s.app.register_family(&auth.ctx, &r).await {
        Ok(id) => Ok(Redirect::to(&format!("/families/{id}?saved=registered")).into_response()),
        Err(AppError::Invalid(p)) => Ok(family_page(&s, &auth, &d, &members, &p)),
        Err(e) => Err(pe(e)),
    }
}

async fn family_card(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(saved): Query<Saved>,
) -> PageResult {
    let id = Uuid::parse_str(&id).map_err(|_| pe(AppError::NotFound))?;
    let card = s.app.family_card(&auth.ctx, id).await.map_err(pe)?;
    let views = crate::audit_pages::views_card(
        &s,
        &auth,
        "family",
        &id.to_string(),
        card.family.data.territory.as_deref(),
    )
    .await?;
    let pr = &s.app.profile;
    let mut p = page(&s, &card.family.data.name, Some(&auth));
    p.flash = saved.message();
    let form = pr.forms.iter().find(|f| f.applies_to == "family");
    let labels = |f: &str| person_field_label(pr, f);
    let member_role = |r: &str| match r {
        "child" => t(L, "family_member_child").to_string(),
        "member" => t(L, "family_member_member").to_string(),
        other => classifier_label(pr, L, "relation_kind", other),
    };
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                div.title-row {
                    h1 { (card.family.data.name) }
                    p.actions {
                        a.button.secondary href={ "/register?family_id=" (id) } { (t(L, "family_add_child")) }
                        a.button href={ "/cases/new?subject_kind=family&subject_id=" (id) } { (t(L, "family_open_case")) }
                    }
                }
                section.card {
                    dl.facts {
                        (dl_row(t(L, "family_territory"), card.family.data.territory.as_deref().map(|c| territory_name(pr, L, c)).unwrap_or_default()))
                        (dl_row(t(L, "family_address"), card.family.data.address.clone().unwrap_or_default()))
                        @if let Some(ff) = form {
                            @for (_, f) in ff.fields() {
                                (dl_row(f.label.get(L.code()), card.family.data.extra.get(&f.code).map(|v| extra_display(pr, L, f, v)).unwrap_or_default()))
                            }
                        }
                    }
                }
                section.card {
                    h2 { (t(L, "family_members")) }
                    table {
                        thead { tr { th { (t(L, "col_name")) } th { (t(L, "family_member_role")) } th { (t(L, "col_birth_date")) } th { (t(L, "col_national_id")) } } }
                        tbody { @for (role, m) in &card.members { tr {
                            td { a href={ "/persons/" (m.id) } { (m.data.full_name()) } }
                            td { (member_role(role)) }
                            td { (m.data.birth_date.map(display_date).unwrap_or_default()) }
                            td.mono { (nid_display(pr, m.data.national_id.as_deref())) }
                        } } }
                    }
                }
                section.card {
                    h2 { (t(L, "family_cases")) }
                    @if card.cases.is_empty() { p { (t(L, "person_no_cases")) } } @else {
                        ul { @for c in &card.cases { li { a href={ "/cases/" (c.id) } { (c.number) } " — " (status_label(c.status)) } } }
                    }
                }
                (hidden_note(card.hidden))
                (views)
                section.card { h2 { (t(L, "person_history")) } (history(pr, &card.history, &card.actors, &labels)) }
            },
        ),
    ))
}

// ---------------------------------------------------------------- cases

#[derive(Deserialize, Default)]
#[serde(default)]
struct CaseListQuery {
    status: String,
    mine: bool,
    page: i64,
}

async fn cases(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(q): Query<CaseListQuery>,
) -> PageResult {
    let status = CaseStatus::parse(&q.status);
    let rows = s
        .app
        .list_cases(&auth.ctx, status, q.mine, q.page)
        .await
        .map_err(pe)?;
    let more = rows.len() as i64 > kamkor_app::PAGE_SIZE;
    let rows: Vec<_> = rows
        .into_iter()
        .take(kamkor_app::PAGE_SIZE as usize)
        .collect();
    let subjects = s.app.subject_names(&auth.ctx, &rows).await.map_err(pe)?;
    let p = page(&s, t(L, "case_list_title"), Some(&auth));
    let link = |n: i64| {
        let mut qs = vec![("status", q.status.clone()), ("page", n.to_string())];
        if q.mine {
            qs.push(("mine", "true".into()));
        }
        format!(
            "/cases?{}",
            serde_urlencoded::to_string(qs).unwrap_or_default()
        )
    };
    let opts: Vec<(String, String)> = CaseStatus::ALL
        .iter()
        .map(|s| (s.code().to_string(), status_label(*s).to_string()))
        .collect();
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (t(L, "case_list_title")) }
                form.card.row method="get" action="/cases" {
                    (select(L, &Problems::default(), "status", t(L, "case_filter_status"), &q.status, false, &opts))
                    label.check { input type="checkbox" name="mine" value="true" checked[q.mine]; " " (t(L, "case_filter_mine")) }
                    button.primary type="submit" { (t(L, "search_submit")) }
                }
                @if rows.is_empty() { p.empty { (t(L, "case_none")) } } @else {
                    (case_table(&s, &rows, &subjects))
                    nav.pager {
                        @if q.page > 0 { a href=(link(q.page - 1)) { "← " (t(L, "search_prev")) } }
                        @if more { a href=(link(q.page + 1)) { (t(L, "search_more")) " →" } }
                    }
                }
            },
        ),
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NewCaseQuery {
    subject_kind: String,
    subject_id: String,
}

async fn case_form(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(q): Query<NewCaseQuery>,
) -> PageResult {
    let sid = Uuid::parse_str(&q.subject_id).map_err(|_| pe(AppError::NotFound))?;
    let kind = SubjectKind::parse(&q.subject_kind).ok_or_else(|| pe(AppError::NotFound))?;
    let territory = match kind {
        SubjectKind::Family => {
            s.app
                .family_card(&auth.ctx, sid)
                .await
                .map_err(pe)?
                .family
                .data
                .territory
        }
        _ => {
            s.app
                .person_card(&auth.ctx, sid)
                .await
                .map_err(pe)?
                .person
                .data
                .residence_territory
        }
    };
    let territory = territory.unwrap_or_default();
    let d = CaseDraft {
        subject_kind: kind.code().into(),
        subject_id: sid.to_string(),
        identified_on: kamkor_domain::records::format_date(auth.ctx.today()),
        identification_territory: territory.clone(),
        responsible_org: default_org(&s.app.profile, &territory, &auth.ctx.user.organisation),
        ..Default::default()
    };
    case_page(&s, &auth, &d, &Problems::default()).await
}

/// The agency responsible by default: the user's own, when it serves the territory; else the
/// nearest agency up the territory tree.
fn default_org(p: &Profile, territory: &str, own: &str) -> String {
    if let Some(a) = p.agency(own)
        && p.territory_within(territory, &a.territory)
        && p.root_territory().is_none_or(|r| r.code != a.territory)
    {
        return own.to_string();
    }
    for t in p.territory_path(territory).iter().rev() {
        if let Some(a) = p.agencies.iter().find(|a| a.territory == t.code) {
            return a.code.clone();
        }
    }
    own.to_string()
}

async fn case_page(
    s: &AppState,
    auth: &PageAuth,
    d: &CaseDraft,
    problems: &Problems,
) -> PageResult {
    let pr = &s.app.profile;
    let child = pr.meta.subject == "child";
    let p = page(s, t(L, "case_new_title"), Some(auth));
    let sid = Uuid::parse_str(&d.subject_id).map_err(|_| pe(AppError::NotFound))?;
    let subject_name = match SubjectKind::parse(&d.subject_kind) {
        Some(SubjectKind::Family) => {
            s.app
                .family_card(&auth.ctx, sid)
                .await
                .map_err(pe)?
                .family
                .data
                .name
        }
        _ => s
            .app
            .person_card(&auth.ctx, sid)
            .await
            .map_err(pe)?
            .person
            .data
            .full_name(),
    };
    let form = pr.forms.iter().find(|f| f.applies_to == "case");
    let cat_cls = if child { "dls_category" } else { "need" };
    let agencies: Vec<(String, String)> = pr
        .agencies
        .iter()
        .filter(|a| {
            a.code == d.responsible_org
                || pr.territory_within(&d.identification_territory, &a.territory)
                    && (pr.root_territory().is_none_or(|r| r.code != a.territory)
                        || a.kind == "ministry")
        })
        .map(|a| (a.code.clone(), a.name.get(L.code()).to_string()))
        .collect();
    let labels = |f: &str| {
        let k = format!("case_{}", f.rsplit('.').next().unwrap_or(f));
        let v = t(L, &k);
        if v == "?" {
            person_field_label(pr, f)
        } else {
            v.to_string()
        }
    };
    Ok(render(
        problem_status(problems),
        layout(
            &p,
            html! {
                h1 { (t(L, "case_new_title")) }
                p.lead { (t(L, "case_subject")) ": " strong { (subject_name) } }
                (error_summary(L, problems, labels))
                form.card method="post" action="/cases/new" novalidate {
                    (hidden_csrf(&auth.session.csrf_token))
                    input type="hidden" name="subject_kind" value=(d.subject_kind);
                    input type="hidden" name="subject_id" value=(d.subject_id);
                    div.row {
                        (text_input(L, problems, Input { name: "identified_on", label: t(L, "case_identified_on"), value: &d.identified_on, kind: "date", required: true, hint: None, autocomplete: None }))
                        (territory_select(L, problems, pr, "identification_territory", t(L, "case_identification_territory"), &d.identification_territory, true))
                    }
                    div.row {
                        (select(L, problems, "identification_place", t(L, "case_identification_place"), &d.identification_place, false, &classifier_options(pr, L, "identification_place", std::slice::from_ref(&d.identification_place))))
                        (select(L, problems, "source", t(L, "case_source"), &d.source, false, &classifier_options(pr, L, "identification_source", std::slice::from_ref(&d.source))))
                    }
                    (text_input(L, problems, Input { name: "identification_place_text", label: t(L, "case_identification_place_text"), value: &d.identification_place_text, kind: "text", required: false, hint: None, autocomplete: None }))
                    (checkboxes(L, problems, "categories", t(L, if child { "case_categories" } else { "case_needs" }), &d.categories, &classifier_options(pr, L, cat_cls, &d.categories)))
                    (select(L, problems, "responsible_org", t(L, "case_responsible_org"), &d.responsible_org, true, &agencies))
                    @if let Some(ff) = form {
                        @for sec in &ff.section {
                            fieldset.section {
                                legend { (sec.label.get(L.code())) }
                                @for f in &sec.field { (extra_input(pr, L, problems, "", f, d.extra.get(&f.code))) }
                            }
                        }
                    }
                    p.actions { button.primary type="submit" { (t(L, "person_open_case")) } }
                }
            },
        ),
    ))
}

async fn case_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let form = s.app.profile.forms.iter().find(|x| x.applies_to == "case");
    let d = CaseDraft {
        subject_kind: f.get("subject_kind"),
        subject_id: f.get("subject_id"),
        identified_on: f.get("identified_on"),
        identification_territory: f.get("identification_territory"),
        identification_place: f.get("identification_place"),
        identification_place_text: f.get("identification_place_text"),
        source: f.get("source"),
        categories: f.all("categories"),
        responsible_org: f.get("responsible_org"),
        extra: f.extra("", form),
    };
    match s.app.open_case(&auth.ctx, &d).await {
        Ok(c) => Ok(Redirect::to(&format!("/cases/{}?saved=opened", c.id)).into_response()),
        Err(AppError::Invalid(p)) => case_page(&s, &auth, &d, &p).await,
        Err(e) => Err(pe(e)),
    }
}

async fn case_card(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(saved): Query<Saved>,
) -> PageResult {
    let id = Uuid::parse_str(&id).map_err(|_| pe(AppError::NotFound))?;
    let card = s.app.case_card(&auth.ctx, id).await.map_err(pe)?;
    let views = crate::audit_pages::views_card(
        &s,
        &auth,
        "case",
        &id.to_string(),
        Some(card.case.territory.as_str()),
    )
    .await?;
    let pr = &s.app.profile;
    let c = &card.case;
    let title = format!("{} {}", t(L, "case_title"), c.number);
    let mut p = page(&s, &title, Some(&auth));
    p.flash = saved.message();
    let child = pr.meta.subject == "child";
    let cat_cls = if child { "dls_category" } else { "need" };
    let form = pr.forms.iter().find(|f| f.applies_to == "case");
    let labels = |f: &str| {
        let k = format!("case_{}", f.rsplit('.').next().unwrap_or(f));
        let v = t(L, &k);
        if v == "?" {
            person_field_label(pr, f)
        } else {
            v.to_string()
        }
    };
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                div.title-row { h1 { (title) } span.badge.big { (status_label(c.status)) } }
                section.card {
                    dl.facts {
                        div { dt { (t(L, "case_subject")) } dd {
                            @if let Some(sp) = &card.subject_person { a href={ "/persons/" (sp.id) } { (sp.data.full_name()) } " (" (sp.data.birth_date.map(display_date).unwrap_or_default()) ")" }
                            @if let Some(sf) = &card.subject_family { a href={ "/families/" (sf.id) } { (sf.data.name) } }
                        } }
                        (dl_row(t(L, "case_subject_kind"), t(L, &format!("subject_{}", c.data.subject_kind.code())).to_string()))
                        (dl_row(t(L, "case_identified_on"), display_date(c.data.identified_on)))
                        (dl_row(t(L, "case_identification_territory"), territory_name(pr, L, &c.data.identification_territory)))
                        (dl_row(t(L, "case_identification_place"), c.data.identification_place.as_deref().map(|x| classifier_label(pr, L, "identification_place", x)).unwrap_or_default()))
                        (dl_row(t(L, "case_identification_place_text"), c.data.identification_place_text.clone().unwrap_or_default()))
                        (dl_row(t(L, "case_source"), c.data.source.as_deref().map(|x| classifier_label(pr, L, "identification_source", x)).unwrap_or_default()))
                        (dl_row(t(L, if child { "case_categories" } else { "case_needs" }), c.data.categories.iter().map(|x| classifier_label(pr, L, cat_cls, x)).collect::<Vec<_>>().join("; ")))
                        (dl_row(t(L, "case_responsible_org"), pr.agency(&c.data.responsible_org).map(|a| a.name.get(L.code()).to_string()).unwrap_or_else(|| c.data.responsible_org.clone())))
                        (dl_row(t(L, "case_responsible_user"), card.responsible_user.as_ref().map(|u| u.full_name.clone()).unwrap_or_default()))
                        (dl_row(t(L, "case_opened"), display_ts(pr, &c.created_at)))
                        @if let Some(ff) = form {
                            @for (_, f) in ff.fields() {
                                (dl_row(f.label.get(L.code()), c.data.extra.get(&f.code).map(|v| extra_display(pr, L, f, v)).unwrap_or_default()))
                            }
                        }
                    }
                }
                (hidden_note(card.hidden))
                (crate::case_pages::work_sections(&s, &auth, &card))
                (views)
                section.card #history { h2 { (t(L, "person_history")) } (history_of(pr, &card.history, &card.actors, &labels, &crate::case_pages::record_names(&s, &card))) }
            },
        ),
    ))
}
