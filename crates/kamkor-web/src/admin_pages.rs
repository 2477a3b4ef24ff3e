//! Administration pages (issue 3): accounts, public access requests, external API clients,
//! allowed networks, refusals and break-the-glass grants. Handlers stay thin: parse the form,
//! call one use case of `kamkor-app::accounts` (which checks permissions itself), render.
//! One-time passwords and client tokens are shown once, on the answer to the POST that made
//! them (status 200, never a redirect), and never again.

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kamkor_app::AppError;
use kamkor_app::accounts::{
    AccountChange, ClientChange, ClientForm, UserCard, UserFilter, UserForm, account_state,
    grant_open,
};
use kamkor_domain::policy::{Action, DenyReason, Role, parse_roles, parse_services};
use kamkor_domain::profile::Profile;
use kamkor_domain::records::{Problems, format_date};
use kamkor_store::{AccessRequestRow, ApiClientRow, ChangeRow, UserRow};
use maud::{Markup, html};
use serde::Deserialize;

use crate::html::{
    Input, display_date_str, display_ts, error_summary, field_error, field_id, hidden_csrf, layout,
    territory_name, text_input,
};
use crate::i18n::{Lang, error_message, t};
use crate::pages::{PageResult, csrf_failed, page, pe, problem_status, render};
use crate::{AppState, PageAuth};

const L: Lang = Lang::Ru;

/// The account states the list can be filtered by (`accounts::account_state`).
const STATES: [&str; 5] = ["active", "suspended", "revoked", "expired", "not_yet_valid"];
const REQUEST_STATES: [&str; 3] = ["pending", "approved", "rejected"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview))
        .route("/admin/users", get(users))
        .route("/admin/users/new", get(user_new_form).post(user_new_submit))
        .route("/admin/users/{id}", get(user_card))
        .route("/admin/users/{id}/change", post(user_change))
        .route(
            "/admin/users/{id}/edit",
            get(user_edit_form).post(user_edit_submit),
        )
        .route("/request-access", get(request_form).post(request_submit))
        .route("/admin/requests", get(requests))
        .route("/admin/requests/{id}", get(request_card))
        .route("/admin/requests/{id}/approve", post(request_approve))
        .route("/admin/requests/{id}/reject", post(request_reject))
        .route("/admin/clients", get(clients))
        .route(
            "/admin/clients/new",
            get(client_new_form).post(client_new_submit),
        )
        .route("/admin/clients/{id}", get(client_card))
        .route("/admin/clients/{id}/change", post(client_change))
        .route("/admin/networks", get(networks).post(network_add))
        .route("/admin/networks/remove", post(network_remove))
        .route("/admin/denials", get(denials))
        .route("/admin/break-glass", get(glass))
}

// ---------------------------------------------------------------- small helpers

/// Form fields as sent; repeated names (checkboxes) keep every value.
/// The shared form reader of the pages, with the two readings the administration forms add.
use crate::pages::FormData as Fields;

impl Fields {
    fn version(&self) -> i64 {
        self.get("version").trim().parse().unwrap_or(0)
    }
    fn user_form(&self) -> UserForm {
        UserForm {
            full_name: self.get("full_name"),
            national_id: self.get("national_id"),
            position: self.get("position"),
            organisation: self.get("organisation"),
            org_inn: self.get("org_inn"),
            org_address: self.get("org_address"),
            territorial_unit: self.get("territorial_unit"),
            roles: self.all("roles"),
            scope: self.get("scope"),
            valid_from: self.get("valid_from"),
            valid_until: self.get("valid_until"),
            contact: self.get("contact"),
        }
    }
}

/// `?saved=…` after a redirect: the confirmation shown once on the next page.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Saved {
    saved: String,
}

impl Saved {
    fn message(&self) -> Option<&'static str> {
        const KNOWN: [&str; 15] = [
            "updated",
            "extend",
            "suspend",
            "reactivate",
            "revoke",
            "second_factor_reset",
            "unlock",
            "rejected",
            "client_suspend",
            "client_reactivate",
            "client_revoke",
            "client_extend",
            "client_services",
            "network_added",
            "network_removed",
        ];
        KNOWN
            .contains(&self.saved.as_str())
            .then(|| t(L, &format!("adm_saved_{}", self.saved)))
    }
}

fn today_iso(auth: &PageAuth) -> String {
    format_date(auth.ctx.today())
}

fn in_a_year(d: time::Date) -> String {
    let next = d
        .replace_year(d.year() + 1)
        .unwrap_or(d + time::Duration::days(365));
    format_date(next)
}

fn role_name(code: &str) -> &'static str {
    t(L, &format!("adm_role_{code}"))
}

fn roles_text(stored: &str) -> String {
    parse_roles(stored)
        .iter()
        .map(|r| role_name(r.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn service_name(code: &str) -> &'static str {
    let v = t(L, &format!("adm_perm_{code}"));
    if v == "?" {
        t(L, "adm_unknown_value")
    } else {
        v
    }
}

fn services_text(stored: &str) -> String {
    parse_services(stored)
        .iter()
        .map(|a| service_name(a.code()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn agency_name(pr: &Profile, code: &str) -> String {
    if code.is_empty() {
        return String::new();
    }
    pr.agency(code)
        .map(|a| a.name.get(L.code()).to_string())
        .unwrap_or_else(|| t(L, "adm_unknown_org").to_string())
}

fn territory_text(pr: &Profile, code: &str) -> String {
    if code.is_empty() {
        String::new()
    } else if pr.root_territory().is_some_and(|r| r.code == code) {
        pr.root_territory()
            .map(|r| r.name.get(L.code()).to_string())
            .unwrap_or_default()
    } else {
        territory_name(pr, L, code)
    }
}

/// "ПИН" or "СНИЛС", as the profile's national identifier is known.
fn nid_label(pr: &Profile) -> &'static str {
    t(L, &format!("person_national_id_{}", pr.meta.national_id))
}

fn nid_hint(pr: &Profile) -> &'static str {
    t(L, &format!("adm_national_id_hint_{}", pr.meta.national_id))
}

fn state_badge(state: &str, key_prefix: &str) -> Markup {
    html! { span class={ "badge state-" (state) } { (t(L, &format!("{key_prefix}{state}"))) } }
}

fn dl_row(label: &str, value: String) -> Markup {
    html! { div { dt { (label) } dd { @if value.is_empty() { span.muted { (t(L, "not_specified")) } } @else { (value) } } } }
}

fn dl_mono(label: &str, value: &str) -> Markup {
    html! { div { dt { (label) } dd { @if value.is_empty() { span.muted { (t(L, "not_specified")) } } @else { span.mono { (value) } } } } }
}

fn opt_date(v: Option<&str>) -> String {
    v.map(display_date_str).unwrap_or_default()
}

/// A label for a logged action (history, refusals); never the raw code.
fn action_label(code: &str) -> &'static str {
    let v = t(L, &format!("adm_action_{code}"));
    if v != "?" {
        return v;
    }
    let v = t(L, &format!("action_{code}"));
    if v != "?" {
        v
    } else {
        t(L, "adm_action_other")
    }
}

/// The message for a refusal reason code, when the catalog knows it.
fn reason_text(code: &str) -> String {
    let v = t(L, &format!("adm_reason_{code}"));
    if v != "?" {
        return v.to_string();
    }
    let m = error_message(L, code);
    if m == t(L, "server_error_text") {
        t(L, "adm_unknown_value").to_string()
    } else {
        m.to_string()
    }
}

fn entity_label(code: &str) -> &'static str {
    let v = t(L, &format!("adm_entity_{code}"));
    if v == "?" {
        t(L, "adm_action_other")
    } else {
        v
    }
}

fn actor_name(actors: &std::collections::HashMap<String, String>, actor: &str) -> String {
    if let Some(n) = actors.get(actor) {
        return n.clone();
    }
    match actor {
        "system" | "cli" | "test" => t(L, "system_actor").to_string(),
        "public" => t(L, "adm_actor_public").to_string(),
        a if a.starts_with("client:") => t(L, "adm_actor_client").to_string(),
        _ => t(L, "adm_actor_unknown").to_string(),
    }
}

/// A labelled input with an explicit id, for the several small forms of one card (the same
/// field name, e.g. `reason`, appears in more than one of them).
struct Small<'a> {
    form: &'a str,
    name: &'a str,
    label: &'a str,
    kind: &'a str,
    value: &'a str,
    required: bool,
    hint: Option<&'a str>,
}

fn small_input(problems: &Problems, i: Small) -> Markup {
    let id = format!("{}-{}", i.form, field_id(i.name));
    let err = problems.for_field(i.name);
    html! {
        div.field.has-error[err.is_some()] {
            label for=(id) { (i.label) @if i.required { span.req title=(t(L, "required_mark")) { " *" } } }
            @if let Some(h) = i.hint { p.hint { (h) } }
            @if let Some(e) = err { p.field-error id={ "e-" (id) } { (error_message(L, &e.code)) } }
            @if i.kind == "textarea" {
                textarea id=(id) name=(i.name) rows="2" required[i.required]
                    aria-invalid=(if err.is_some() { "true" } else { "false" }) { (i.value) }
            } @else {
                input id=(id) name=(i.name) type=(i.kind) value=(i.value) required[i.required]
                    autocomplete="off" aria-invalid=(if err.is_some() { "true" } else { "false" });
            }
        }
    }
}

/// Problems that belong to no field of a small form (`status`: own account, not suspended…).
fn general_errors(problems: &Problems, fields: &[&str]) -> Markup {
    let rest: Vec<_> = problems
        .0
        .iter()
        .filter(|p| !fields.contains(&p.field.as_str()))
        .collect();
    html! {
        @if !rest.is_empty() {
            div.errors role="alert" {
                @for p in rest { p { (error_message(L, &p.code)) } }
            }
        }
    }
}

/// The agency choice, grouped by organisation kind and sorted by name inside each group.
fn org_select(
    pr: &Profile,
    problems: &Problems,
    name: &str,
    label: &str,
    value: &str,
    hint: Option<&str>,
) -> Markup {
    let id = field_id(name);
    let err = problems.for_field(name).is_some();
    let mut groups: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for k in &pr.org_kinds {
        let mut items: Vec<(String, String)> = pr
            .agencies
            .iter()
            .filter(|a| a.kind == k.code)
            .map(|a| (a.code.clone(), a.name.get(L.code()).to_string()))
            .collect();
        items.sort_by(|a, b| a.1.cmp(&b.1));
        if !items.is_empty() {
            groups.push((k.name.get(L.code()).to_string(), items));
        }
    }
    let mut orphans: Vec<(String, String)> = pr
        .agencies
        .iter()
        .filter(|a| !pr.org_kinds.iter().any(|k| k.code == a.kind))
        .map(|a| (a.code.clone(), a.name.get(L.code()).to_string()))
        .collect();
    orphans.sort_by(|a, b| a.1.cmp(&b.1));
    html! {
        div.field.has-error[err] #{ "f-" (id) } {
            label for=(id) { (label) span.req title=(t(L, "required_mark")) { " *" } }
            @if let Some(h) = hint { p.hint { (h) } }
            (field_error(L, problems, name))
            select id=(id) name=(name) required aria-invalid=(if err { "true" } else { "false" }) {
                option value="" { (t(L, "choose")) }
                @for (group, items) in &groups {
                    optgroup label=(group) {
                        @for (code, text) in items {
                            option value=(code) selected[code == value] { (text) }
                        }
                    }
                }
                @for (code, text) in &orphans {
                    option value=(code) selected[code == value] { (text) }
                }
            }
        }
    }
}

/// A territory choice for scopes and territorial units: unlike the record forms, the whole
/// country and a whole region (with everything in it) can be chosen too.
fn scope_select(pr: &Profile, problems: &Problems, name: &str, label: &str, value: &str) -> Markup {
    fn under<'a>(
        pr: &'a Profile,
        code: &str,
        depth: usize,
        out: &mut Vec<(usize, &'a kamkor_domain::profile::Territory)>,
    ) {
        for t in pr.territories.iter().filter(|t| t.parent == code) {
            out.push((depth, t));
            under(pr, &t.code, depth + 1, out);
        }
    }
    let id = field_id(name);
    let err = problems.for_field(name).is_some();
    let root = pr.root_territory();
    let root_code = root.map(|r| r.code.clone()).unwrap_or_default();
    let tops: Vec<_> = pr
        .territories
        .iter()
        .filter(|t| t.parent == root_code)
        .map(|top| {
            let mut subs = Vec::new();
            under(pr, &top.code, 0, &mut subs);
            (top, subs)
        })
        .collect();
    html! {
        div.field.has-error[err] #{ "f-" (id) } {
            label for=(id) { (label) span.req title=(t(L, "required_mark")) { " *" } }
            (field_error(L, problems, name))
            select id=(id) name=(name) required aria-invalid=(if err { "true" } else { "false" }) {
                option value="" { (t(L, "choose")) }
                @if let Some(r) = root {
                    option value=(r.code) selected[r.code == value] { (r.name.get(L.code())) " (" (t(L, "adm_whole_country")) ")" }
                }
                @for (top, subs) in tops {
                    @if subs.is_empty() {
                        option value=(top.code) selected[top.code == value] { (top.name.get(L.code())) }
                    } @else {
                        optgroup label=(top.name.get(L.code())) {
                            option value=(top.code) selected[top.code == value] { (top.name.get(L.code())) " (" (t(L, "adm_whole_region")) ")" }
                            @for (depth, t) in subs {
                                option value=(t.code) selected[t.code == value] { @for _ in 0..depth { "— " } (t.name.get(L.code())) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A filter select whose empty choice means "all".
fn filter_select(name: &str, label: &str, value: &str, options: &[(String, String)]) -> Markup {
    let id = field_id(name);
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) {
                option value="" { (t(L, "adm_filter_all")) }
                @for (code, text) in options {
                    option value=(code) selected[code == value] { (text) }
                }
            }
        }
    }
}

/// The one-time secret (password or token), shown once in a large box.
fn secret_box(id: &str, label: &str, value: &str) -> Markup {
    html! {
        div.field {
            p { strong { (label) } }
            p.secret.mono #(id) { (value) }
        }
    }
}

fn conflict_box() -> Markup {
    html! {
        div.errors role="alert" {
            h2 { (t(L, "adm_conflict_title")) }
            p { (t(L, "adm_conflict_text")) }
        }
    }
}

/// Ask the policy (through the cheapest use case that asks for account management, which
/// also records a refusal) before showing an empty form to someone who may not use it.
async fn may_manage(s: &AppState, auth: &PageAuth) -> Result<(), Response> {
    s.app.networks(&auth.ctx).await.map(|_| ()).map_err(pe)
}

// ---------------------------------------------------------------- overview

async fn overview(State(s): State<AppState>, auth: PageAuth) -> PageResult {
    let active = s
        .app
        .list_users(
            &auth.ctx,
            &UserFilter {
                status: "active".into(),
                ..UserFilter::default()
            },
        )
        .await
        .map_err(pe)?
        .len();
    let pending = s
        .app
        .access_requests(&auth.ctx, "pending")
        .await
        .map_err(pe)?
        .len();
    let clients = s.app.api_clients(&auth.ctx).await.map_err(pe)?;
    let active_clients = clients.iter().filter(|c| c.status == "active").count();
    let since = kamkor_store::ts(auth.ctx.now - time::Duration::days(7));
    let refusals = s
        .app
        .denials(&auth.ctx, 1000)
        .await
        .map_err(pe)?
        .iter()
        .filter(|d| d.at >= since)
        .count();
    let p = page(&s, t(L, "adm_title"), Some(&auth));
    let links: [(&str, &str, &str); 7] = [
        ("/admin/users", "adm_users_title", "adm_users_desc"),
        (
            "/admin/users/new",
            "adm_user_new_title",
            "adm_user_new_desc",
        ),
        ("/admin/requests", "adm_requests_title", "adm_requests_desc"),
        ("/admin/clients", "adm_clients_title", "adm_clients_desc"),
        ("/admin/networks", "adm_networks_title", "adm_networks_desc"),
        ("/admin/denials", "adm_denials_title", "adm_denials_desc"),
        ("/admin/break-glass", "adm_glass_title", "adm_glass_desc"),
    ];
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (t(L, "adm_title")) }
                p.lead { (t(L, "adm_intro")) }
                div.grid {
                    section.card {
                        h2 { (t(L, "adm_counts")) }
                        table {
                            thead { tr { th { (t(L, "adm_col_what")) } th.num { (t(L, "col_count")) } } }
                            tbody {
                                tr { td { a href="/admin/users?status=active" { (t(L, "adm_count_active_users")) } } td.num { (active) } }
                                tr { td { a href="/admin/requests" { (t(L, "adm_count_pending")) } } td.num { (pending) } }
                                tr { td { a href="/admin/clients" { (t(L, "adm_count_clients")) } } td.num { (active_clients) " / " (clients.len()) } }
                                tr { td { a href="/admin/denials" { (t(L, "adm_count_refusals")) } } td.num { (refusals) } }
                            }
                        }
                        @if pending > 0 {
                            p.notice { (t(L, "adm_pending_notice")) " " a href="/admin/requests" { (t(L, "adm_open_requests")) } }
                        }
                    }
                    section.card {
                        h2 { (t(L, "adm_sections")) }
                        ul {
                            @for (href, title, desc) in links {
                                li { a href=(href) { (t(L, title)) } " — " (t(L, desc)) }
                            }
                        }
                    }
                }
            },
        ),
    ))
}

// ---------------------------------------------------------------- users: list

async fn users(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(q): Query<UserFilter>,
) -> PageResult {
    let rows = s.app.list_users(&auth.ctx, &q).await.map_err(pe)?;
    let pr = &s.app.profile;
    let today = auth.ctx.today();
    let p = page(&s, t(L, "adm_users_title"), Some(&auth));
    let opts: Vec<(String, String)> = STATES
        .iter()
        .map(|st| (st.to_string(), t(L, &format!("adm_state_{st}")).to_string()))
        .collect();
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                div.title-row {
                    h1 { (t(L, "adm_users_title")) }
                    p.actions { a.button href="/admin/users/new" { (t(L, "adm_user_new_title")) } }
                }
                p.hint { (t(L, "adm_users_intro")) }
                form.card.row method="get" action="/admin/users" role="search" {
                    (text_input(L, &Problems::default(), Input { name: "q", label: t(L, "adm_users_q"), value: &q.q, kind: "search", required: false, hint: Some(t(L, "adm_users_q_hint")), autocomplete: None }))
                    (filter_select("status", t(L, "adm_col_state"), &q.status, &opts))
                    div.field { button.primary type="submit" { (t(L, "search_submit")) } }
                }
                @if rows.is_empty() { p.empty { (t(L, "adm_users_none")) } } @else {
                    p { (t(L, "adm_found")) ": " (rows.len()) }
                    @let (rows, more) = q.page_of(&rows);
                    table {
                        thead { tr {
                            th { (t(L, "col_name")) } th { (t(L, "login_login")) } th { (t(L, "adm_col_roles")) }
                            th { (t(L, "adm_col_organisation")) } th { (t(L, "adm_col_scope")) }
                            th { (t(L, "adm_col_valid_until")) } th { (t(L, "adm_col_state")) } th { (t(L, "adm_col_second_factor")) }
                        } }
                        tbody {
                            @for u in rows {
                                tr {
                                    td { a href={ "/admin/users/" (u.id) } { (u.full_name) } }
                                    td.mono { (u.login) }
                                    td { (roles_text(&u.role)) }
                                    td { (agency_name(pr, &u.organisation)) }
                                    td { (territory_text(pr, &u.scope_territory)) }
                                    td { @if let Some(d) = &u.valid_until { (display_date_str(d)) } @else { span.muted { (t(L, "adm_no_end")) } } }
                                    td { (state_badge(account_state(u, today), "adm_state_")) }
                                    td { (t(L, if u.totp_secret.is_some() { "yes" } else { "no" })) }
                                }
                            }
                        }
                    }
                    nav.pager {
                        @if q.page > 0 { a href=(users_page_link(&q, q.page - 1)) { "← " (t(L, "search_prev")) } }
                        @if more { a href=(users_page_link(&q, q.page + 1)) { (t(L, "search_more")) " →" } }
                    }
                }
            },
        ),
    ))
}

/// The list of accounts at another page, with the same filter.
fn users_page_link(q: &UserFilter, page: usize) -> String {
    let qs = serde_urlencoded::to_string([
        ("q", q.q.as_str()),
        ("status", q.status.as_str()),
        ("page", &page.to_string()),
    ])
    .unwrap_or_default();
    format!("/admin/users?{qs}")
}

// ---------------------------------------------------------------- users: the form

fn user_field_label(pr: &Profile, f: &str) -> String {
    match f {
        "national_id" => nid_label(pr).to_string(),
        other => {
            let v = t(L, &format!("adm_field_{other}"));
            if v == "?" {
                t(L, "adm_field_other").to_string()
            } else {
                v.to_string()
            }
        }
    }
}

/// What the user form is for.
enum FormMode<'a> {
    New,
    Edit { id: &'a str, version: i64 },
    Request,
}

/// The fields of the registration form (seed 000 §26), shared by the administrator's form,
/// the edit form and the public request form.
fn user_fields(pr: &Profile, problems: &Problems, f: &UserForm, public: bool) -> Markup {
    let roles: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| !public || !matches!(r, Role::Administrator | Role::Operator))
        .collect();
    let roles_err = problems.for_field("roles").is_some();
    let input = |name: &'static str,
                 kind: &'static str,
                 value: &str,
                 required: bool,
                 hint: Option<&'static str>| {
        text_input(
            L,
            problems,
            Input {
                name,
                label: t(L, &format!("adm_field_{name}")),
                value,
                kind,
                required,
                hint,
                autocomplete: None,
            },
        )
    };
    html! {
        fieldset.card {
            legend { (t(L, "adm_section_org")) }
            p.hint { (t(L, "adm_section_org_hint")) }
            (org_select(pr, problems, "organisation", t(L, "adm_field_organisation"), &f.organisation, Some(t(L, "adm_organisation_hint"))))
            div.row {
                (input("org_inn", "text", &f.org_inn, true, Some(t(L, "adm_org_inn_hint"))))
                (scope_select(pr, problems, "territorial_unit", t(L, "adm_field_territorial_unit"), &f.territorial_unit))
            }
            (input("org_address", "text", &f.org_address, true, Some(t(L, "adm_org_address_hint"))))
        }
        fieldset.card {
            legend { (t(L, "adm_section_person")) }
            (input("full_name", "text", &f.full_name, true, Some(t(L, "adm_full_name_hint"))))
            div.row {
                (text_input(L, problems, Input { name: "national_id", label: nid_label(pr), value: &f.national_id, kind: "text", required: true, hint: Some(nid_hint(pr)), autocomplete: None }))
                (input("position", "text", &f.position, true, Some(t(L, "adm_position_hint"))))
            }
            @if public {
                (input("contact", "text", &f.contact, false, Some(t(L, "adm_contact_hint"))))
            }
        }
        fieldset.card {
            legend { (t(L, "adm_section_access")) }
            fieldset.field.checks.has-error[roles_err] #f-roles {
                legend { (t(L, "adm_field_roles")) span.req title=(t(L, "required_mark")) { " *" } }
                p.hint { (t(L, if public { "adm_roles_hint_public" } else { "adm_roles_hint" })) }
                (field_error(L, problems, "roles"))
                @for r in roles {
                    label.check {
                        input type="checkbox" name="roles" value=(r.code()) checked[f.roles.iter().any(|x| x == r.code())];
                        span { strong { (role_name(r.code())) } " — " (t(L, &format!("adm_role_hint_{}", r.code()))) }
                    }
                }
            }
            p.hint { (t(L, "adm_scope_hint")) }
            (scope_select(pr, problems, "scope", t(L, "adm_field_scope"), &f.scope))
            div.row {
                @if !public {
                    (input("valid_from", "date", &f.valid_from, false, Some(t(L, "adm_valid_from_hint"))))
                }
                (input("valid_until", "date", &f.valid_until, true, Some(t(L, "adm_valid_until_hint"))))
            }
        }
    }
}

fn user_form_page(
    s: &AppState,
    auth: Option<&PageAuth>,
    mode: FormMode,
    f: &UserForm,
    problems: &Problems,
) -> Response {
    let pr = &s.app.profile;
    let (title, action, submit, intro) = match &mode {
        FormMode::New => (
            t(L, "adm_user_new_title"),
            "/admin/users/new".to_string(),
            t(L, "adm_user_new_submit"),
            t(L, "adm_user_new_intro"),
        ),
        FormMode::Edit { id, .. } => (
            t(L, "adm_user_edit_title"),
            format!("/admin/users/{id}/edit"),
            t(L, "save"),
            t(L, "adm_user_edit_intro"),
        ),
        FormMode::Request => (
            t(L, "adm_request_title"),
            "/request-access".to_string(),
            t(L, "adm_request_submit"),
            t(L, "adm_request_intro"),
        ),
    };
    let public = matches!(mode, FormMode::Request);
    let p = page(s, title, auth);
    let labels = |x: &str| user_field_label(pr, x);
    render(
        problem_status(problems),
        layout(
            &p,
            html! {
                h1 { (title) }
                p.lead { (intro) }
                @if let FormMode::Edit { id, .. } = &mode {
                    p { a href={ "/admin/users/" (id) } { "← " (t(L, "adm_back_to_card")) } }
                }
                (error_summary(L, problems, labels))
                form method="post" action=(action) novalidate {
                    @if let Some(a) = auth { (hidden_csrf(&a.session.csrf_token)) }
                    @if let FormMode::Edit { version, .. } = &mode {
                        input type="hidden" name="version" value=(version);
                    }
                    (user_fields(pr, problems, f, public))
                    p.actions {
                        button.primary type="submit" { (submit) }
                        @match &mode {
                            FormMode::New => { a.button.secondary href="/admin/users" { (t(L, "cancel")) } }
                            FormMode::Edit { id, .. } => { a.button.secondary href={ "/admin/users/" (id) } { (t(L, "cancel")) } }
                            FormMode::Request => { a.button.secondary href="/login" { (t(L, "cancel")) } }
                        }
                    }
                    p.hint { (t(L, "adm_required_note")) }
                }
            },
        ),
    )
}

async fn user_new_form(State(s): State<AppState>, auth: PageAuth) -> PageResult {
    // Ask the use case first, so that a non-administrator gets the refusal, not the form.
    may_manage(&s, &auth).await?;
    let f = UserForm {
        valid_from: today_iso(&auth),
        valid_until: in_a_year(auth.ctx.today()),
        ..UserForm::default()
    };
    Ok(user_form_page(
        &s,
        Some(&auth),
        FormMode::New,
        &f,
        &Problems::default(),
    ))
}

/// The page shown once after an account was made (registration, approval) or its password
/// reset: the login and the one-time password.
/// Where a one-time password came from: what the page offers next.
enum Issued<'a> {
    Registered,
    Reset,
    /// An approved access request, with the contact the requester left.
    Approved {
        contact: Option<&'a str>,
    },
}

fn credentials_page(
    s: &AppState,
    auth: &PageAuth,
    u: &UserRow,
    password: &str,
    issued: Issued,
) -> Response {
    let reset = matches!(issued, Issued::Reset);
    let title = t(
        L,
        if reset {
            "adm_reset_done_title"
        } else {
            "adm_created_title"
        },
    );
    let p = page(s, title, Some(auth));
    let needs_2fa = s.app.second_factor_required(u);
    render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (title) }
                section.card {
                    dl.facts {
                        (dl_row(t(L, "col_name"), u.full_name.clone()))
                        div { dt { (t(L, "login_login")) } dd { strong.mono #new-login { (u.login) } } }
                        @if let Issued::Approved { contact } = issued {
                            (dl_row(t(L, "adm_field_contact"), contact.unwrap_or_default().to_string()))
                        }
                    }
                    (secret_box("one-time-password", t(L, "adm_one_time_password"), password))
                    p.notice { (t(L, "adm_password_once")) }
                    p { (t(L, "adm_password_change_first")) }
                    @if needs_2fa { p { (t(L, "adm_second_factor_first")) } }
                    p.actions {
                        a.button href={ "/admin/users/" (u.id) } { (t(L, "adm_open_card")) }
                        a.button.secondary href="/admin/users" { (t(L, "adm_users_title")) }
                        @match issued {
                            Issued::Registered => { a.button.secondary href="/admin/users/new" { (t(L, "adm_register_another")) } }
                            Issued::Approved { .. } => { a.button.secondary href="/admin/requests" { (t(L, "adm_requests_title")) } }
                            Issued::Reset => {}
                        }
                    }
                }
            },
        ),
    )
}

async fn user_new_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let form = f.user_form();
    match s.app.register_user(&auth.ctx, &form).await {
        Ok((user, password)) => Ok(credentials_page(
            &s,
            &auth,
            &user,
            &password,
            Issued::Registered,
        )),
        Err(AppError::Invalid(p)) => Ok(user_form_page(&s, Some(&auth), FormMode::New, &form, &p)),
        Err(e) => Err(pe(e)),
    }
}

// ---------------------------------------------------------------- users: the card

/// Where a failed change lands on the card: the form of that action, with its problems.
struct Failed<'a> {
    action: &'a str,
    problems: &'a Problems,
    values: &'a Fields,
}

fn user_card_page(
    s: &AppState,
    auth: &PageAuth,
    card: &UserCard,
    flash: Option<&str>,
    failed: Option<Failed>,
    conflict: bool,
) -> Response {
    let pr = &s.app.profile;
    let u = &card.user;
    let today = auth.ctx.today();
    let state = account_state(u, today);
    let mut p = page(s, &u.full_name, Some(auth));
    p.flash = flash;
    let csrf = &auth.session.csrf_token;
    let none = Problems::default();
    let probs = |action: &str| -> &Problems {
        match &failed {
            Some(f) if f.action == action => f.problems,
            _ => &none,
        }
    };
    let kept = |action: &str, name: &str, default: &str| -> String {
        match &failed {
            Some(f) if f.action == action => f.values.get(name),
            _ => default.to_string(),
        }
    };
    let status = match (&failed, conflict) {
        (_, true) => StatusCode::CONFLICT,
        (Some(f), _) => problem_status(f.problems),
        _ => StatusCode::OK,
    };
    let revoked = u.status == "revoked";
    let locked = card.locked_until.is_some() || card.failures > 0;
    let hidden = |action: &str| {
        html! {
            (hidden_csrf(csrf))
            input type="hidden" name="version" value=(u.version);
            input type="hidden" name="action" value=(action);
        }
    };
    let form_action = format!("/admin/users/{}/change", u.id);
    render(
        status,
        layout(
            &p,
            html! {
                div.title-row {
                    h1 { (u.full_name) " " (state_badge(state, "adm_state_")) }
                    p.actions {
                        a.button.secondary href="/admin/users" { "← " (t(L, "adm_users_title")) }
                        @if !revoked { a.button href={ "/admin/users/" (u.id) "/edit" } { (t(L, "edit")) } }
                    }
                }
                @if conflict { (conflict_box()) }
                section.card {
                    h2 { (t(L, "adm_card_registration")) }
                    dl.facts {
                        (dl_row(t(L, "adm_field_organisation"), agency_name(pr, &u.organisation)))
                        (dl_mono(t(L, "adm_field_org_inn"), u.org_inn.as_deref().unwrap_or_default()))
                        (dl_row(t(L, "adm_field_org_address"), u.org_address.clone().unwrap_or_default()))
                        (dl_row(t(L, "adm_field_territorial_unit"), u.territorial_unit.as_deref().map(|c| territory_text(pr, c)).unwrap_or_default()))
                        (dl_row(t(L, "adm_field_full_name"), u.full_name.clone()))
                        (dl_mono(nid_label(pr), u.national_id.as_deref().unwrap_or_default()))
                        (dl_row(t(L, "adm_field_position"), u.position.clone().unwrap_or_default()))
                        (dl_mono(t(L, "login_login"), &u.login))
                        (dl_row(t(L, "adm_registered_at"), display_ts(pr, &u.created_at)))
                    }
                }
                section.card {
                    h2 { (t(L, "adm_card_access")) }
                    dl.facts {
                        (dl_row(t(L, "adm_field_roles"), roles_text(&u.role)))
                        (dl_row(t(L, "adm_field_scope"), territory_text(pr, &u.scope_territory)))
                        (dl_row(t(L, "adm_field_valid_from"), display_date_str(&u.valid_from)))
                        div { dt { (t(L, "adm_field_valid_until")) } dd { @if let Some(d) = &u.valid_until { (display_date_str(d)) } @else { span.muted { (t(L, "adm_no_end")) } } } }
                        div { dt { (t(L, "adm_col_state")) } dd { (state_badge(state, "adm_state_")) } }
                        @if let Some(r) = &u.status_reason { (dl_row(t(L, "adm_status_reason"), r.clone())) }
                        (dl_row(t(L, "adm_col_second_factor"), t(L, if u.totp_secret.is_some() { "adm_second_factor_on" } else if s.app.second_factor_required(u) { "adm_second_factor_pending" } else { "adm_second_factor_off" }).to_string()))
                        (dl_row(t(L, "adm_must_change"), t(L, if u.must_change_password { "adm_must_change_yes" } else { "adm_must_change_no" }).to_string()))
                        (dl_row(t(L, "adm_failures"), card.failures.to_string()))
                        (dl_row(t(L, "adm_locked_until"), card.locked_until.as_deref().map(|x| display_ts(pr, x)).unwrap_or_else(|| t(L, "adm_not_locked").to_string())))
                    }
                }
                section.card #actions {
                    h2 { (t(L, "adm_card_actions")) }
                    @if let Some(f) = &failed { (general_errors(f.problems, &["valid_until", "reason"])) }
                    @if revoked {
                        p.notice { (t(L, "adm_revoked_notice")) }
                    } @else {
                        div.grid {
                            form method="post" action=(form_action) {
                                h3 { (t(L, "adm_extend_title")) }
                                (hidden("extend"))
                                (small_input(probs("extend"), Small { form: "extend", name: "valid_until", label: t(L, "adm_field_valid_until"), kind: "date", value: &kept("extend", "valid_until", u.valid_until.as_deref().unwrap_or_default()), required: true, hint: Some(t(L, "adm_extend_hint")) }))
                                button.primary type="submit" { (t(L, "adm_extend_submit")) }
                            }
                            @if u.status == "suspended" {
                                form method="post" action=(form_action) {
                                    h3 { (t(L, "adm_reactivate_title")) }
                                    p.hint { (t(L, "adm_reactivate_hint")) }
                                    (hidden("reactivate"))
                                    button.primary type="submit" { (t(L, "adm_reactivate_submit")) }
                                }
                            } @else {
                                form method="post" action=(form_action) {
                                    h3 { (t(L, "adm_suspend_title")) }
                                    (hidden("suspend"))
                                    (small_input(probs("suspend"), Small { form: "suspend", name: "reason", label: t(L, "adm_reason"), kind: "textarea", value: &kept("suspend", "reason", ""), required: true, hint: Some(t(L, "adm_suspend_hint")) }))
                                    button.secondary type="submit" { (t(L, "adm_suspend_submit")) }
                                }
                            }
                            form method="post" action=(form_action) {
                                h3 { (t(L, "adm_reset_password_title")) }
                                p.hint { (t(L, "adm_reset_password_hint")) }
                                (hidden("password_reset"))
                                button.secondary type="submit" { (t(L, "adm_reset_password_submit")) }
                            }
                            @if u.totp_secret.is_some() {
                                form method="post" action=(form_action) {
                                    h3 { (t(L, "adm_reset_2fa_title")) }
                                    p.hint { (t(L, "adm_reset_2fa_hint")) }
                                    (hidden("second_factor_reset"))
                                    button.secondary type="submit" { (t(L, "adm_reset_2fa_submit")) }
                                }
                            }
                            @if locked {
                                form method="post" action=(form_action) {
                                    h3 { (t(L, "adm_unlock_title")) }
                                    p.hint { (t(L, "adm_unlock_hint")) }
                                    (hidden("unlock"))
                                    button.secondary type="submit" { (t(L, "adm_unlock_submit")) }
                                }
                            }
                            form method="post" action=(form_action) {
                                h3 { (t(L, "adm_revoke_title")) }
                                p.notice { (t(L, "adm_revoke_warning")) }
                                (hidden("revoke"))
                                (small_input(probs("revoke"), Small { form: "revoke", name: "reason", label: t(L, "adm_reason"), kind: "textarea", value: &kept("revoke", "reason", ""), required: true, hint: None }))
                                button.danger type="submit" { (t(L, "adm_revoke_submit")) }
                            }
                        }
                    }
                }
                section.card {
                    h2 { (t(L, "person_history")) }
                    (history_table(pr, &card.history, &card.actors))
                }
            },
        ),
    )
}

fn history_table(
    pr: &Profile,
    rows: &[ChangeRow],
    actors: &std::collections::HashMap<String, String>,
) -> Markup {
    // Entries hold the fields that changed: the reason a suspension or revocation carried is
    // the record's reason as the entries up to it leave it (a second one with the same
    // reason does not repeat it).
    let mut state = serde_json::Value::Null;
    let reasons: Vec<Option<String>> = rows
        .iter()
        .map(|c| {
            // Changes of state only; events carry no part of the record.
            if c.version > 0 {
                kamkor_domain::records::fold_change(&mut state, c.before.clone(), c.after.clone());
            }
            state
                .get("status_reason")
                .and_then(|v| v.as_str())
                .filter(|_| matches!(c.action.as_str(), "suspend" | "revoke"))
                .map(str::to_string)
        })
        .collect();
    html! {
        @if rows.is_empty() { p { (t(L, "history_none")) } } @else {
            table.history {
                thead { tr { th { (t(L, "col_when")) } th { (t(L, "col_who")) } th { (t(L, "col_what")) } } }
                tbody {
                    @for (c, reason) in rows.iter().zip(&reasons).rev() {
                        tr {
                            td { (display_ts(pr, &c.at)) }
                            td { (actor_name(actors, &c.actor)) }
                            td {
                                (action_label(&c.action))
                                @if let Some(r) = reason { ": " (r) }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn user_card(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(saved): Query<Saved>,
) -> PageResult {
    let card = s.app.user_card(&auth.ctx, &id).await.map_err(pe)?;
    Ok(user_card_page(
        &s,
        &auth,
        &card,
        saved.message(),
        None,
        false,
    ))
}

async fn user_change(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let action = f.get("action");
    let change = match action.as_str() {
        "extend" => AccountChange::Extend {
            valid_until: f.get("valid_until"),
        },
        "suspend" => AccountChange::Suspend {
            reason: f.get("reason"),
        },
        "reactivate" => AccountChange::Reactivate,
        "revoke" => AccountChange::Revoke {
            reason: f.get("reason"),
        },
        "password_reset" => AccountChange::ResetPassword,
        "second_factor_reset" => AccountChange::ResetSecondFactor,
        "unlock" => AccountChange::Unlock,
        _ => return Err(pe(AppError::NotFound)),
    };
    match s
        .app
        .change_account(&auth.ctx, &id, f.version(), &change)
        .await
    {
        Ok(Some(password)) => {
            let card = s.app.user_card(&auth.ctx, &id).await.map_err(pe)?;
            Ok(credentials_page(
                &s,
                &auth,
                &card.user,
                &password,
                Issued::Reset,
            ))
        }
        Ok(None) => Ok(Redirect::to(&format!("/admin/users/{id}?saved={action}")).into_response()),
        Err(AppError::Invalid(p)) => {
            let card = s.app.user_card(&auth.ctx, &id).await.map_err(pe)?;
            let failed = Failed {
                action: &action,
                problems: &p,
                values: &f,
            };
            Ok(user_card_page(&s, &auth, &card, None, Some(failed), false))
        }
        Err(AppError::Conflict { .. }) => {
            let card = s.app.user_card(&auth.ctx, &id).await.map_err(pe)?;
            Ok(user_card_page(&s, &auth, &card, None, None, true))
        }
        Err(e) => Err(pe(e)),
    }
}

fn form_of(u: &UserRow) -> UserForm {
    UserForm {
        full_name: u.full_name.clone(),
        national_id: u.national_id.clone().unwrap_or_default(),
        position: u.position.clone().unwrap_or_default(),
        organisation: u.organisation.clone(),
        org_inn: u.org_inn.clone().unwrap_or_default(),
        org_address: u.org_address.clone().unwrap_or_default(),
        territorial_unit: u.territorial_unit.clone().unwrap_or_default(),
        roles: parse_roles(&u.role)
            .iter()
            .map(|r| r.code().to_string())
            .collect(),
        scope: u.scope_territory.clone(),
        valid_from: u.valid_from.clone(),
        valid_until: u.valid_until.clone().unwrap_or_default(),
        contact: String::new(),
    }
}

async fn user_edit_form(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
) -> PageResult {
    let card = s.app.user_card(&auth.ctx, &id).await.map_err(pe)?;
    let u = &card.user;
    Ok(user_form_page(
        &s,
        Some(&auth),
        FormMode::Edit {
            id: &u.id,
            version: u.version,
        },
        &form_of(u),
        &Problems::default(),
    ))
}

async fn user_edit_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let form = f.user_form();
    let version = f.version();
    let change = AccountChange::Update(Box::new(form.clone()));
    match s.app.change_account(&auth.ctx, &id, version, &change).await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/users/{id}?saved=updated")).into_response()),
        Err(AppError::Invalid(p)) => Ok(user_form_page(
            &s,
            Some(&auth),
            FormMode::Edit { id: &id, version },
            &form,
            &p,
        )),
        Err(AppError::Conflict { .. }) => {
            let card = s.app.user_card(&auth.ctx, &id).await.map_err(pe)?;
            Ok(user_card_page(&s, &auth, &card, None, None, true))
        }
        Err(e) => Err(pe(e)),
    }
}

// ---------------------------------------------------------------- public access requests

async fn request_form(State(s): State<AppState>) -> Response {
    let today = kamkor_store::now_utc().date();
    let f = UserForm {
        valid_until: in_a_year(today),
        ..UserForm::default()
    };
    user_form_page(&s, None, FormMode::Request, &f, &Problems::default())
}

/// The public form: no session, so no CSRF token; SameSite=Strict cookies and the body
/// limit protect it, and nothing is granted until an administrator approves.
async fn request_submit(
    State(s): State<AppState>,
    Form(f): Form<Vec<(String, String)>>,
) -> Response {
    let f = Fields(f);
    let mut form = f.user_form();
    form.valid_from = String::new();
    match s.app.submit_access_request(&form).await {
        Ok(_) => {
            let p = page(&s, t(L, "adm_request_done_title"), None);
            render(
                StatusCode::CREATED,
                layout(
                    &p,
                    html! {
                        div.narrow.card {
                            h1 { (t(L, "adm_request_done_title")) }
                            p.lead { (t(L, "adm_request_done_text")) }
                            p { (t(L, "adm_request_done_next")) }
                            p { a href="/login" { (t(L, "adm_to_login")) } }
                        }
                    },
                ),
            )
        }
        Err(AppError::Invalid(p)) => user_form_page(&s, None, FormMode::Request, &form, &p),
        Err(e) => pe(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RequestQuery {
    status: Option<String>,
}

async fn requests(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(q): Query<RequestQuery>,
) -> PageResult {
    let status = q.status.unwrap_or_else(|| "pending".into());
    let status = if REQUEST_STATES.contains(&status.as_str()) {
        status
    } else {
        String::new()
    };
    let rows = s
        .app
        .access_requests(&auth.ctx, &status)
        .await
        .map_err(pe)?;
    let pr = &s.app.profile;
    let p = page(&s, t(L, "adm_requests_title"), Some(&auth));
    let opts: Vec<(String, String)> = REQUEST_STATES
        .iter()
        .map(|st| {
            (
                st.to_string(),
                t(L, &format!("adm_request_state_{st}")).to_string(),
            )
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (t(L, "adm_requests_title")) }
                p.hint { (t(L, "adm_requests_intro")) " " a href="/request-access" { "/request-access" } }
                form.card.row method="get" action="/admin/requests" {
                    (filter_select("status", t(L, "adm_col_state"), &status, &opts))
                    div.field { button.primary type="submit" { (t(L, "adm_show")) } }
                }
                @if rows.is_empty() { p.empty { (t(L, "adm_requests_none")) } } @else {
                    table {
                        thead { tr {
                            th { (t(L, "adm_col_submitted")) } th { (t(L, "col_name")) } th { (t(L, "adm_col_organisation")) }
                            th { (t(L, "adm_col_roles")) } th { (t(L, "adm_col_scope")) } th { (t(L, "adm_col_state")) }
                        } }
                        tbody {
                            @for r in &rows {
                                tr {
                                    td { (display_ts(pr, &r.created_at)) }
                                    td { a href={ "/admin/requests/" (r.id) } { (r.full_name) } }
                                    td { (agency_name(pr, &r.organisation)) }
                                    td { (roles_text(&r.roles)) }
                                    td { (territory_text(pr, &r.scope_territory)) }
                                    td { (state_badge(&r.status, "adm_request_state_")) }
                                }
                            }
                        }
                    }
                }
            },
        ),
    ))
}

async fn request_card_page(
    s: &AppState,
    auth: &PageAuth,
    r: &AccessRequestRow,
    problems: &Problems,
    conflict: bool,
    flash: Option<&str>,
) -> Response {
    let pr = &s.app.profile;
    let mut p = page(s, &r.full_name, Some(auth));
    p.flash = flash;
    let status = if conflict {
        StatusCode::CONFLICT
    } else {
        problem_status(problems)
    };
    let decided_by = match &r.decided_by {
        Some(id) => match s.app.store.user(id).await {
            Ok(Some(u)) => u.full_name,
            _ => t(L, "adm_actor_unknown").to_string(),
        },
        None => String::new(),
    };
    let csrf = &auth.session.csrf_token;
    let note_problems = if problems.for_field("note").is_some() {
        problems.clone()
    } else {
        Problems::default()
    };
    render(
        status,
        layout(
            &p,
            html! {
                div.title-row {
                    h1 { (t(L, "adm_request_card_title")) ": " (r.full_name) }
                    p.actions { a.button.secondary href="/admin/requests" { "← " (t(L, "adm_requests_title")) } }
                }
                @if conflict { (conflict_box()) }
                @if !problems.is_empty() && problems.for_field("note").is_none() {
                    div.errors role="alert" {
                        h2 { (t(L, "adm_approve_failed")) }
                        ul { @for e in &problems.0 { li { (user_field_label(pr, &e.field)) ": " (error_message(L, &e.code)) } } }
                        p { (t(L, "adm_approve_failed_hint")) }
                    }
                }
                section.card {
                    h2 { (t(L, "adm_card_registration")) }
                    dl.facts {
                        div { dt { (t(L, "adm_col_state")) } dd { (state_badge(&r.status, "adm_request_state_")) } }
                        (dl_row(t(L, "adm_col_submitted"), display_ts(pr, &r.created_at)))
                        (dl_row(t(L, "adm_field_organisation"), agency_name(pr, &r.organisation)))
                        (dl_mono(t(L, "adm_field_org_inn"), &r.org_inn))
                        (dl_row(t(L, "adm_field_org_address"), r.org_address.clone()))
                        (dl_row(t(L, "adm_field_territorial_unit"), territory_text(pr, &r.territorial_unit)))
                        (dl_row(t(L, "adm_field_full_name"), r.full_name.clone()))
                        (dl_mono(nid_label(pr), &r.national_id))
                        (dl_row(t(L, "adm_field_position"), r.position.clone()))
                        (dl_row(t(L, "adm_field_contact"), r.contact.clone().unwrap_or_default()))
                        (dl_row(t(L, "adm_field_roles"), roles_text(&r.roles)))
                        (dl_row(t(L, "adm_field_scope"), territory_text(pr, &r.scope_territory)))
                        (dl_row(t(L, "adm_field_valid_until"), opt_date(r.valid_until.as_deref())))
                        @if r.status != "pending" {
                            (dl_row(t(L, "adm_decided_at"), r.decided_at.as_deref().map(|x| display_ts(pr, x)).unwrap_or_default()))
                            (dl_row(t(L, "adm_decided_by"), decided_by.clone()))
                            @if let Some(n) = &r.decision_note { (dl_row(t(L, "adm_decision_note"), n.clone())) }
                            @if let Some(uid) = &r.user_id {
                                div { dt { (t(L, "adm_created_account")) } dd { a href={ "/admin/users/" (uid) } { (t(L, "adm_open_card")) } } }
                            }
                        }
                    }
                }
                @if r.status == "pending" {
                    div.grid {
                        section.card {
                            h2 { (t(L, "adm_approve_title")) }
                            p { (t(L, "adm_approve_hint")) }
                            form method="post" action={ "/admin/requests/" (r.id) "/approve" } {
                                (hidden_csrf(csrf))
                                input type="hidden" name="version" value=(r.version);
                                button.primary type="submit" { (t(L, "adm_approve_submit")) }
                            }
                        }
                        section.card {
                            h2 { (t(L, "adm_reject_title")) }
                            form method="post" action={ "/admin/requests/" (r.id) "/reject" } {
                                (hidden_csrf(csrf))
                                input type="hidden" name="version" value=(r.version);
                                (small_input(&note_problems, Small { form: "reject", name: "note", label: t(L, "adm_decision_note"), kind: "textarea", value: "", required: true, hint: Some(t(L, "adm_reject_hint")) }))
                                button.secondary type="submit" { (t(L, "adm_reject_submit")) }
                            }
                        }
                    }
                }
            },
        ),
    )
}

async fn request_card(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(saved): Query<Saved>,
) -> PageResult {
    let r = s.app.access_request(&auth.ctx, &id).await.map_err(pe)?;
    Ok(request_card_page(&s, &auth, &r, &Problems::default(), false, saved.message()).await)
}

async fn request_approve(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    match s
        .app
        .approve_access_request(&auth.ctx, &id, f.version())
        .await
    {
        Ok((user, password)) => {
            let request = s.app.access_request(&auth.ctx, &id).await.map_err(pe)?;
            let contact = request.contact.as_deref();
            Ok(credentials_page(
                &s,
                &auth,
                &user,
                &password,
                Issued::Approved { contact },
            ))
        }
        Err(AppError::Invalid(p)) => {
            let r = s.app.access_request(&auth.ctx, &id).await.map_err(pe)?;
            Ok(request_card_page(&s, &auth, &r, &p, false, None).await)
        }
        Err(AppError::Conflict { .. }) => {
            let r = s.app.access_request(&auth.ctx, &id).await.map_err(pe)?;
            Ok(request_card_page(&s, &auth, &r, &Problems::default(), true, None).await)
        }
        Err(e) => Err(pe(e)),
    }
}

async fn request_reject(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    match s
        .app
        .reject_access_request(&auth.ctx, &id, f.version(), &f.get("note"))
        .await
    {
        Ok(()) => Ok(Redirect::to(&format!("/admin/requests/{id}?saved=rejected")).into_response()),
        Err(AppError::Invalid(p)) => {
            let r = s.app.access_request(&auth.ctx, &id).await.map_err(pe)?;
            Ok(request_card_page(&s, &auth, &r, &p, false, None).await)
        }
        Err(AppError::Conflict { .. }) => {
            let r = s.app.access_request(&auth.ctx, &id).await.map_err(pe)?;
            Ok(request_card_page(&s, &auth, &r, &Problems::default(), true, None).await)
        }
        Err(e) => Err(pe(e)),
    }
}

// ---------------------------------------------------------------- external API clients

fn client_state(c: &ApiClientRow, today: time::Date) -> &'static str {
    match c.status.as_str() {
        "suspended" => "suspended",
        "revoked" => "revoked",
        _ if c
            .valid_until
            .as_deref()
            .and_then(kamkor_domain::records::parse_date)
            .is_some_and(|d| today > d) =>
        {
            "expired"
        }
        _ => "active",
    }
}

fn service_options() -> Vec<(String, String)> {
    Action::SERVICES
        .iter()
        .map(|a| (a.code().to_string(), service_name(a.code()).to_string()))
        .collect()
}

fn service_checkboxes(problems: &Problems, form: &str, values: &[String]) -> Markup {
    let err = problems.for_field("services").is_some();
    html! {
        fieldset.field.checks.has-error[err] #{ "f-" (form) "-services" } {
            legend { (t(L, "adm_field_services")) span.req title=(t(L, "required_mark")) { " *" } }
            p.hint { (t(L, "adm_services_hint")) }
            (field_error(L, problems, "services"))
            @for (code, text) in service_options() {
                label.check {
                    input type="checkbox" name="services" value=(code) checked[values.contains(&code)];
                    " " (text)
                }
            }
        }
    }
}

async fn clients(State(s): State<AppState>, auth: PageAuth) -> PageResult {
    let rows = s.app.api_clients(&auth.ctx).await.map_err(pe)?;
    let pr = &s.app.profile;
    let today = auth.ctx.today();
    let p = page(&s, t(L, "adm_clients_title"), Some(&auth));
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                div.title-row {
                    h1 { (t(L, "adm_clients_title")) }
                    p.actions { a.button href="/admin/clients/new" { (t(L, "adm_client_new_title")) } }
                }
                p.hint { (t(L, "adm_clients_intro")) }
                @if rows.is_empty() { p.empty { (t(L, "adm_clients_none")) } } @else {
                    table {
                        thead { tr {
                            th { (t(L, "adm_field_client_name")) } th { (t(L, "adm_col_organisation")) } th { (t(L, "adm_field_services")) }
                            th { (t(L, "adm_col_scope")) } th { (t(L, "adm_col_valid_until")) } th { (t(L, "adm_col_state")) }
                        } }
                        tbody {
                            @for c in &rows {
                                tr {
                                    td { a.mono href={ "/admin/clients/" (c.id) } { (c.name) } }
                                    td { (agency_name(pr, &c.organisation)) }
                                    td { (services_text(&c.services)) }
                                    td { (territory_text(pr, &c.scope_territory)) }
                                    td { @if let Some(d) = &c.valid_until { (display_date_str(d)) } @else { span.muted { (t(L, "adm_no_end")) } } }
                                    td { (state_badge(client_state(c, today), "adm_state_")) }
                                }
                            }
                        }
                    }
                }
            },
        ),
    ))
}

fn client_form_page(
    s: &AppState,
    auth: &PageAuth,
    f: &ClientForm,
    problems: &Problems,
) -> Response {
    let pr = &s.app.profile;
    let p = page(s, t(L, "adm_client_new_title"), Some(auth));
    let labels = |x: &str| match x {
        "name" => t(L, "adm_field_client_name").to_string(),
        other => user_field_label(pr, other),
    };
    render(
        problem_status(problems),
        layout(
            &p,
            html! {
                h1 { (t(L, "adm_client_new_title")) }
                p.lead { (t(L, "adm_client_new_intro")) }
                (error_summary(L, problems, labels))
                form.card method="post" action="/admin/clients/new" novalidate {
                    (hidden_csrf(&auth.session.csrf_token))
                    (text_input(L, problems, Input { name: "name", label: t(L, "adm_field_client_name"), value: &f.name, kind: "text", required: true, hint: Some(t(L, "adm_client_name_hint")), autocomplete: None }))
                    (org_select(pr, problems, "organisation", t(L, "adm_field_organisation"), &f.organisation, Some(t(L, "adm_client_org_hint"))))
                    (service_checkboxes(problems, "services", &f.services))
                    p.hint { (t(L, "adm_client_scope_hint")) }
                    (scope_select(pr, problems, "scope", t(L, "adm_field_scope"), &f.scope))
                    (text_input(L, problems, Input { name: "valid_until", label: t(L, "adm_field_valid_until"), value: &f.valid_until, kind: "date", required: true, hint: Some(t(L, "adm_valid_until_hint")), autocomplete: None }))
                    p.actions {
                        button.primary type="submit" { (t(L, "adm_client_new_submit")) }
                        a.button.secondary href="/admin/clients" { (t(L, "cancel")) }
                    }
                }
            },
        ),
    )
}

async fn client_new_form(State(s): State<AppState>, auth: PageAuth) -> PageResult {
    may_manage(&s, &auth).await?;
    let f = ClientForm {
        valid_until: in_a_year(auth.ctx.today()),
        ..ClientForm::default()
    };
    Ok(client_form_page(&s, &auth, &f, &Problems::default()))
}

/// The token of an external system, shown once with how to use it.
fn token_page(
    s: &AppState,
    auth: &PageAuth,
    c: &ApiClientRow,
    token: &str,
    rotated: bool,
) -> Response {
    let title = t(
        L,
        if rotated {
            "adm_token_rotated_title"
        } else {
            "adm_client_created_title"
        },
    );
    let p = page(s, title, Some(auth));
    render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (title) }
                section.card {
                    dl.facts {
                        (dl_mono(t(L, "adm_field_client_name"), &c.name))
                        (dl_row(t(L, "adm_field_organisation"), agency_name(&s.app.profile, &c.organisation)))
                        (dl_row(t(L, "adm_field_services"), services_text(&c.services)))
                    }
                    (secret_box("client-token", t(L, "adm_token"), token))
                    p.notice { (t(L, "adm_token_once")) }
                    @if rotated { p { (t(L, "adm_token_old_stops")) } }
                    h2 { (t(L, "adm_token_how")) }
                    p { (t(L, "adm_token_how_text")) }
                    pre.mono { "Authorization: Bearer " (token) "\nX-Road-Client: " (t(L, "adm_token_xroad_example")) }
                    p.hint { (t(L, "adm_token_xroad_hint")) }
                    p.actions {
                        a.button href={ "/admin/clients/" (c.id) } { (t(L, "adm_open_card")) }
                        a.button.secondary href="/admin/clients" { (t(L, "adm_clients_title")) }
                    }
                }
            },
        ),
    )
}

async fn client_new_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let form = ClientForm {
        name: f.get("name"),
        organisation: f.get("organisation"),
        services: f.all("services"),
        scope: f.get("scope"),
        valid_until: f.get("valid_until"),
    };
    match s.app.register_client(&auth.ctx, &form).await {
        Ok((row, token)) => Ok(token_page(&s, &auth, &row, &token, false)),
        Err(AppError::Invalid(p)) => Ok(client_form_page(&s, &auth, &form, &p)),
        Err(e) => Err(pe(e)),
    }
}

async fn client_card_page(
    s: &AppState,
    auth: &PageAuth,
    id: &str,
    flash: Option<&str>,
    failed: Option<Failed<'_>>,
    conflict: bool,
) -> PageResult {
    let (c, history) = s.app.api_client(&auth.ctx, id).await.map_err(pe)?;
    let actors = s.app.actor_names(&history).await.map_err(pe)?;
    let pr = &s.app.profile;
    let state = client_state(&c, auth.ctx.today());
    let mut p = page(s, &c.name, Some(auth));
    p.flash = flash;
    let csrf = &auth.session.csrf_token;
    let none = Problems::default();
    let probs = |action: &str| -> &Problems {
        match &failed {
            Some(f) if f.action == action => f.problems,
            _ => &none,
        }
    };
    let status = match (&failed, conflict) {
        (_, true) => StatusCode::CONFLICT,
        (Some(f), _) => problem_status(f.problems),
        _ => StatusCode::OK,
    };
    let hidden = |action: &str| {
        html! {
            (hidden_csrf(csrf))
            input type="hidden" name="version" value=(c.version);
            input type="hidden" name="action" value=(action);
        }
    };
    let current: Vec<String> = parse_services(&c.services)
        .iter()
        .map(|a| a.code().to_string())
        .collect();
    let shown_services = match &failed {
        Some(f) if f.action == "services" => f.values.all("services"),
        _ => current.clone(),
    };
    let valid_until = match &failed {
        Some(f) if f.action == "extend" => f.values.get("valid_until"),
        _ => c.valid_until.clone().unwrap_or_default(),
    };
    let form_action = format!("/admin/clients/{}/change", c.id);
    Ok(render(
        status,
        layout(
            &p,
            html! {
                div.title-row {
                    h1 { span.mono { (c.name) } " " (state_badge(state, "adm_state_")) }
                    p.actions { a.button.secondary href="/admin/clients" { "← " (t(L, "adm_clients_title")) } }
                }
                @if conflict { (conflict_box()) }
                section.card {
                    dl.facts {
                        (dl_row(t(L, "adm_field_organisation"), agency_name(pr, &c.organisation)))
                        (dl_row(t(L, "adm_field_services"), services_text(&c.services)))
                        (dl_row(t(L, "adm_field_scope"), territory_text(pr, &c.scope_territory)))
                        (dl_row(t(L, "adm_field_valid_from"), display_date_str(&c.valid_from)))
                        (dl_row(t(L, "adm_field_valid_until"), opt_date(c.valid_until.as_deref())))
                        div { dt { (t(L, "adm_col_state")) } dd { (state_badge(state, "adm_state_")) } }
                        (dl_row(t(L, "adm_registered_at"), display_ts(pr, &c.created_at)))
                        (dl_row(t(L, "adm_rotated_at"), c.rotated_at.as_deref().map(|x| display_ts(pr, x)).unwrap_or_default()))
                    }
                }
                section.card #actions {
                    h2 { (t(L, "adm_card_actions")) }
                    @if let Some(f) = &failed { (general_errors(f.problems, &["valid_until", "services"])) }
                    @if c.status == "revoked" {
                        p.notice { (t(L, "adm_client_revoked_notice")) }
                    } @else {
                        div.grid {
                            form method="post" action=(form_action) {
                                h3 { (t(L, "adm_rotate_title")) }
                                p.hint { (t(L, "adm_rotate_hint")) }
                                (hidden("rotate"))
                                button.primary type="submit" { (t(L, "adm_rotate_submit")) }
                            }
                            form method="post" action=(form_action) {
                                h3 { (t(L, "adm_extend_title")) }
                                (hidden("extend"))
                                (small_input(probs("extend"), Small { form: "extend", name: "valid_until", label: t(L, "adm_field_valid_until"), kind: "date", value: &valid_until, required: true, hint: None }))
                                button.secondary type="submit" { (t(L, "adm_extend_submit")) }
                            }
                            form method="post" action=(form_action) {
                                h3 { (t(L, "adm_services_title")) }
                                (hidden("services"))
                                (service_checkboxes(probs("services"), "services-form", &shown_services))
                                button.secondary type="submit" { (t(L, "save")) }
                            }
                            @if c.status == "suspended" {
                                form method="post" action=(form_action) {
                                    h3 { (t(L, "adm_reactivate_title")) }
                                    (hidden("reactivate"))
                                    button.primary type="submit" { (t(L, "adm_reactivate_submit")) }
                                }
                            } @else {
                                form method="post" action=(form_action) {
                                    h3 { (t(L, "adm_client_suspend_title")) }
                                    p.hint { (t(L, "adm_client_suspend_hint")) }
                                    (hidden("suspend"))
                                    button.secondary type="submit" { (t(L, "adm_suspend_submit")) }
                                }
                            }
                            form method="post" action=(form_action) {
                                h3 { (t(L, "adm_revoke_title")) }
                                p.notice { (t(L, "adm_client_revoke_warning")) }
                                (hidden("revoke"))
                                button.danger type="submit" { (t(L, "adm_revoke_submit")) }
                            }
                        }
                    }
                }
                section.card {
                    h2 { (t(L, "person_history")) }
                    (history_table(pr, &history, &actors))
                }
            },
        ),
    ))
}

async fn client_card(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(saved): Query<Saved>,
) -> PageResult {
    client_card_page(&s, &auth, &id, saved.message(), None, false).await
}

async fn client_change(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let action = f.get("action");
    let change = match action.as_str() {
        "rotate" => ClientChange::Rotate,
        "suspend" => ClientChange::Suspend,
        "reactivate" => ClientChange::Reactivate,
        "revoke" => ClientChange::Revoke,
        "extend" => ClientChange::Extend {
            valid_until: f.get("valid_until"),
        },
        "services" => ClientChange::Services {
            services: f.all("services"),
        },
        _ => return Err(pe(AppError::NotFound)),
    };
    match s
        .app
        .change_client(&auth.ctx, &id, f.version(), &change)
        .await
    {
        Ok(Some(token)) => {
            let (c, _) = s.app.api_client(&auth.ctx, &id).await.map_err(pe)?;
            Ok(token_page(&s, &auth, &c, &token, true))
        }
        Ok(None) => {
            Ok(Redirect::to(&format!("/admin/clients/{id}?saved=client_{action}")).into_response())
        }
        Err(AppError::Invalid(p)) => {
            let failed = Failed {
                action: &action,
                problems: &p,
                values: &f,
            };
            client_card_page(&s, &auth, &id, None, Some(failed), false).await
        }
        Err(AppError::Conflict { .. }) => client_card_page(&s, &auth, &id, None, None, true).await,
        Err(e) => Err(pe(e)),
    }
}

// ---------------------------------------------------------------- allowed networks

async fn networks_page(
    s: &AppState,
    auth: &PageAuth,
    flash: Option<&str>,
    problems: &Problems,
    org: &str,
    cidr: &str,
) -> PageResult {
    let mut rows = s.app.networks(&auth.ctx).await.map_err(pe)?;
    let pr = &s.app.profile;
    rows.sort_by(|a, b| {
        agency_name(pr, &a.0)
            .cmp(&agency_name(pr, &b.0))
            .then(a.1.cmp(&b.1))
    });
    let mut p = page(s, t(L, "adm_networks_title"), Some(auth));
    p.flash = flash;
    let csrf = &auth.session.csrf_token;
    let labels = |x: &str| match x {
        "cidr" => t(L, "adm_field_cidr").to_string(),
        other => user_field_label(pr, other),
    };
    Ok(render(
        problem_status(problems),
        layout(
            &p,
            html! {
                h1 { (t(L, "adm_networks_title")) }
                p.lead { (t(L, "adm_networks_intro")) }
                p.hint { (t(L, "adm_networks_hint")) }
                section.card {
                    h2 { (t(L, "adm_networks_list")) }
                    @if rows.is_empty() { p.empty { (t(L, "adm_networks_none")) } } @else {
                        table {
                            thead { tr { th { (t(L, "adm_field_organisation")) } th { (t(L, "adm_field_cidr")) } th { (t(L, "adm_col_action")) } } }
                            tbody {
                                @for (o, n) in &rows {
                                    tr {
                                        td { (agency_name(pr, o)) }
                                        td.mono { (n) }
                                        td {
                                            form.inline method="post" action="/admin/networks/remove" {
                                                (hidden_csrf(csrf))
                                                input type="hidden" name="organisation" value=(o);
                                                input type="hidden" name="cidr" value=(n);
                                                button.secondary type="submit" { (t(L, "adm_network_remove")) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                section.card {
                    h2 { (t(L, "adm_network_add_title")) }
                    (error_summary(L, problems, labels))
                    form method="post" action="/admin/networks" novalidate {
                        (hidden_csrf(csrf))
                        div.row {
                            (org_select(pr, problems, "organisation", t(L, "adm_field_organisation"), org, None))
                            (text_input(L, problems, Input { name: "cidr", label: t(L, "adm_field_cidr"), value: cidr, kind: "text", required: true, hint: Some(t(L, "adm_cidr_hint")), autocomplete: None }))
                        }
                        button.primary type="submit" { (t(L, "adm_network_add_submit")) }
                    }
                }
            },
        ),
    ))
}

async fn networks(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(saved): Query<Saved>,
) -> PageResult {
    networks_page(&s, &auth, saved.message(), &Problems::default(), "", "").await
}

async fn network_add(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let (org, cidr) = (f.get("organisation"), f.get("cidr"));
    match s.app.add_network(&auth.ctx, &org, &cidr).await {
        Ok(_) => Ok(Redirect::to("/admin/networks?saved=network_added").into_response()),
        Err(AppError::Invalid(p)) => networks_page(&s, &auth, None, &p, &org, &cidr).await,
        Err(e) => Err(pe(e)),
    }
}

async fn network_remove(
    State(s): State<AppState>,
    auth: PageAuth,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    s.app
        .remove_network(&auth.ctx, &f.get("organisation"), &f.get("cidr"))
        .await
        .map_err(pe)?;
    Ok(Redirect::to("/admin/networks?saved=network_removed").into_response())
}

// ---------------------------------------------------------------- refusals

fn record_link(entity: &str, id: &str) -> Option<String> {
    if id.is_empty() {
        return None;
    }
    match entity {
        "person" => Some(format!("/persons/{id}")),
        "family" => Some(format!("/families/{id}")),
        "case" => Some(format!("/cases/{id}")),
        "user" => Some(format!("/admin/users/{id}")),
        "access_request" => Some(format!("/admin/requests/{id}")),
        "api_client" => Some(format!("/admin/clients/{id}")),
        _ => None,
    }
}

async fn denials(State(s): State<AppState>, auth: PageAuth) -> PageResult {
    let rows = s.app.denials(&auth.ctx, 200).await.map_err(pe)?;
    let actors = s.app.actor_names(&rows).await.map_err(pe)?;
    let pr = &s.app.profile;
    let p = page(&s, t(L, "adm_denials_title"), Some(&auth));
    let field = |c: &ChangeRow, k: &str| -> String {
        c.after
            .as_ref()
            .and_then(|a| a.get(k))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (t(L, "adm_denials_title")) }
                p.hint { (t(L, "adm_denials_intro")) }
                @if rows.is_empty() { p.empty { (t(L, "adm_denials_none")) } } @else {
                    table {
                        thead { tr {
                            th { (t(L, "col_when")) } th { (t(L, "col_who")) } th { (t(L, "adm_col_action")) }
                            th { (t(L, "adm_col_reason")) } th { (t(L, "adm_col_record")) }
                        } }
                        tbody {
                            @for c in &rows {
                                @let action = field(c, "action");
                                @let reason = field(c, "reason");
                                tr {
                                    td { (display_ts(pr, &c.at)) }
                                    td {
                                        @if actors.contains_key(&c.actor) {
                                            a href={ "/admin/users/" (c.actor) } { (actor_name(&actors, &c.actor)) }
                                        } @else { (actor_name(&actors, &c.actor)) }
                                    }
                                    td { @if action.is_empty() { span.muted { (t(L, "not_specified")) } } @else { (service_name(&action)) } }
                                    td { @if reason.is_empty() { span.muted { (t(L, "not_specified")) } } @else { (reason_text(&reason)) } }
                                    td {
                                        (entity_label(&c.entity))
                                        @if !c.entity_id.is_empty() {
                                            " "
                                            @if let Some(href) = record_link(&c.entity, &c.entity_id) {
                                                a.mono href=(href) { (c.entity_id) }
                                            } @else { span.mono { (c.entity_id) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            },
        ),
    ))
}

// ---------------------------------------------------------------- break the glass

async fn glass(State(s): State<AppState>, auth: PageAuth) -> PageResult {
    // Supervisors and administrators review grants; the use case answers others with nothing.
    if !auth
        .ctx
        .actor
        .roles
        .iter()
        .any(|r| matches!(r, Role::Supervisor | Role::Administrator))
    {
        return Err(pe(AppError::Forbidden(DenyReason::RoleForbids)));
    }
    let rows = s.app.glass_reviews(&auth.ctx).await.map_err(pe)?;
    let p = page(&s, t(L, "adm_glass_title"), Some(&auth));
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (t(L, "adm_glass_title")) }
                p.hint { (t(L, "adm_glass_intro")) }
                (glass_table(&s, &auth, &rows))
            },
        ),
    ))
}

/// Break-the-glass grants as a table: on this page and on a supervisor's home page. Names link
/// to what the viewer may open (user cards for administrators, records for supervisors).
pub(crate) fn glass_table(
    s: &AppState,
    auth: &PageAuth,
    rows: &[kamkor_app::accounts::GlassReview],
) -> Markup {
    let pr = &s.app.profile;
    let admin = auth.ctx.actor.roles.contains(&Role::Administrator);
    html! {
                @if rows.is_empty() { p.empty { (t(L, "adm_glass_none")) } } @else {
                    table {
                        thead { tr {
                            th { (t(L, "col_when")) } th { (t(L, "col_who")) } th { (t(L, "adm_col_person")) }
                            th { (t(L, "adm_col_reason")) } th { (t(L, "adm_col_until")) }
                        } }
                        tbody {
                            @for g in rows {
                                tr {
                                    td { (display_ts(pr, &g.grant.opened_at)) }
                                    td {
                                        @let who = if g.user_name.is_empty() { t(L, "adm_actor_unknown").to_string() } else { g.user_name.clone() };
                                        @if admin { a href={ "/admin/users/" (g.grant.user_id) } { (who) } } @else { (who) }
                                    }
                                    td {
                                        @let whom = if g.person_name.is_empty() { t(L, "adm_person_record").to_string() } else { g.person_name.clone() };
                                        @if s.app.may(&auth.ctx, Action::ReadRecord, g.grant.territory.as_deref()) { a href={ "/persons/" (g.grant.person_id) } { (whom) } } @else { (whom) }
                                    }
                                    td { (g.grant.reason) }
                                    td {
                                        (display_ts(pr, &g.grant.expires_at))
                                        " "
                                        @if grant_open(&g.grant, auth.ctx.now) {
                                            span.badge.state-active { (t(L, "adm_glass_open")) }
                                        } @else {
                                            span.badge.state-expired { (t(L, "adm_glass_closed")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
    }
}
