//! The auditor's pages (issue 4 item 5; seed 004 §4.4 "history of data movement", seed 000
//! §§28–31): search the ledger by person, record, action and period; see what changed from
//! what to what and who saw what. Also the JSON form of the same search.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kamkor_app::AppError;
use kamkor_app::ledger::{AUDIT_ENTITIES, AuditPage, AuditQuery};
use kamkor_domain::records::Problems;
use kamkor_store::ChangeRow;
use maud::{Markup, html};
use serde_json::{Value, json};

use crate::html::{Input, display_ts, error_summary, layout, select, text_input};
use crate::i18n::{Lang, t};
use crate::pages::{PageResult, page, pe, problem_status, render};
use crate::{ApiAuth, AppState, PageAuth};

const L: Lang = Lang::Ru;

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(audit_page))
}

pub fn api_routes() -> Router<AppState> {
    Router::new().route("/ledger/entries", get(audit_api))
}

/// An action's name in Russian, or its code when the catalogue has none.
pub(crate) fn action_label(action: &str) -> String {
    let v = t(L, &format!("action_{action}"));
    if v == "?" {
        action.to_string()
    } else {
        v.to_string()
    }
}

fn entity_label(entity: &str) -> String {
    let v = t(L, &format!("entity_{entity}"));
    if v == "?" {
        entity.to_string()
    } else {
        v.to_string()
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A changed field as people call it: the profile's label for a person's fields, the
/// interface's for other records, the code itself for anything unnamed.
fn field_label(pr: &kamkor_domain::profile::Profile, entity: &str, field: &str) -> String {
    if entity == "person" {
        return crate::pages::person_field_label(pr, field);
    }
    let key = field.rsplit('.').next().unwrap_or(field);
    match t(L, &format!("{entity}_{key}")) {
        "?" => field.to_string(),
        label => label.to_string(),
    }
}

/// What an entry says, briefly: the fields that changed, or what the event carried.
fn details(pr: &kamkor_domain::profile::Profile, c: &ChangeRow) -> Markup {
    html! {
        @if let Some(day) = &c.effective_on {
            p.effective { (t(L, "col_effective")) " " (crate::html::display_date_str(day)) }
        }
        @match (&c.before, &c.after) {
            (Some(b), Some(a)) => {
                ul.changes {
                    @for ch in kamkor_domain::records::diff(b, a) {
                        li { strong { (field_label(pr, &c.entity, &ch.field)) } ": " (text_of(&ch.before)) " → " (text_of(&ch.after)) }
                    }
                }
            }
            (None, Some(Value::Object(m))) => {
                ul.changes {
                    @for (k, v) in m.iter().take(12) {
                        @let s = text_of(v);
                        @if !s.is_empty() && s != "—" {
                            li { strong { (k) } ": " (s.chars().take(200).collect::<String>()) }
                        }
                    }
                }
            }
            (None, Some(v)) => { (text_of(v)) }
            (Some(Value::Object(m)), None) => {
                ul.changes { @for (k, v) in m.iter().take(12) { li { strong { (k) } ": " (text_of(v)) " → —" } } }
            }
            _ => {}
        }
    }
}

async fn audit_page(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(q): Query<AuditQuery>,
) -> PageResult {
    let searched = q != AuditQuery::default();
    let (result, problems) = match s.app.audit(&auth.ctx, &q).await {
        Ok(r) => (Some(r), Problems::default()),
        Err(AppError::Invalid(p)) => (None, p),
        Err(e) => return Err(pe(e)),
    };
    let checkpoint = s.app.latest_checkpoint(&auth.ctx).await.ok();
    let pr = &s.app.profile;
    let p = page(&s, t(L, "audit_title"), Some(&auth));
    let entities: Vec<(String, String)> = AUDIT_ENTITIES
        .iter()
        .map(|e| (e.to_string(), entity_label(e)))
        .collect();
    let label = |f: &str| t(L, &format!("audit_field_{f}")).to_string();
    let link = |query: &AuditQuery| {
        format!(
            "/audit?{}",
            serde_urlencoded::to_string(query).unwrap_or_default()
        )
    };
    Ok(render(
        problem_status(&problems),
        layout(
            &p,
            html! {
                h1 { (t(L, "audit_title")) }
                p.hint { (t(L, "audit_intro")) }
                @if let Some(cp) = &checkpoint {
                    p.notice {
                        (t(L, "audit_checkpoint")) " " strong { (cp.size) } " " (t(L, "audit_entries")) ", "
                        (display_ts(pr, &cp.time)) ", " (t(L, "audit_key")) " " span.mono { (cp.key_id) }
                    }
                }
                (error_summary(L, &problems, label))
                form.card method="get" action="/audit" role="search" {
                    div.row {
                        (text_input(L, &problems, Input { name: "actor", label: t(L, "audit_field_actor"), value: &q.actor, kind: "text", required: false, hint: Some(t(L, "audit_actor_hint")), autocomplete: None }))
                        (select(L, &problems, "entity", t(L, "audit_field_entity"), &q.entity, false, &entities))
                        (text_input(L, &problems, Input { name: "id", label: t(L, "audit_field_id"), value: &q.id, kind: "text", required: false, hint: Some(t(L, "audit_id_hint")), autocomplete: None }))
                    }
                    div.row {
                        (text_input(L, &problems, Input { name: "action", label: t(L, "audit_field_action"), value: &q.action, kind: "text", required: false, hint: Some(t(L, "audit_action_hint")), autocomplete: None }))
                        (text_input(L, &problems, Input { name: "from", label: t(L, "audit_field_from"), value: &q.from, kind: "date", required: false, hint: None, autocomplete: None }))
                        (text_input(L, &problems, Input { name: "until", label: t(L, "audit_field_until"), value: &q.until, kind: "date", required: false, hint: None, autocomplete: None }))
                    }
                    p.actions { button.primary type="submit" { (t(L, "search_submit")) } }
                }
                @if let Some(AuditPage { entries, actors, more }) = &result {
                    @if entries.is_empty() {
                        p.empty { (t(L, if searched { "audit_none" } else { "audit_empty" })) }
                    } @else {
                        table.history {
                            thead { tr {
                                th { (t(L, "col_when")) } th { (t(L, "col_who")) } th { (t(L, "audit_col_action")) }
                                th { (t(L, "audit_col_record")) } th { (t(L, "col_what")) }
                            } }
                            tbody {
                                @for c in entries {
                                    tr {
                                        td { (display_ts(pr, &c.at)) br; span.muted.mono { "№ " (c.seq) } }
                                        td {
                                            (actors.get(&c.actor).cloned().unwrap_or_else(|| c.actor.clone()))
                                            @if let Some(r) = &c.request_id { br; span.muted.mono { (r) } }
                                        }
                                        td { (action_label(&c.action)) }
                                        td {
                                            (entity_label(&c.entity))
                                            @if !c.entity_id.is_empty() {
                                                br;
                                                a.mono href=(link(&AuditQuery { entity: c.entity.clone(), id: c.entity_id.clone(), ..AuditQuery::default() })) { (c.entity_id) }
                                            }
                                        }
                                        td { (details(pr, c)) }
                                    }
                                }
                            }
                        }
                        nav.pager {
                            @if q.page > 0 { a href=(link(&AuditQuery { page: q.page - 1, ..q.clone() })) { "← " (t(L, "search_prev")) } }
                            @if *more { a href=(link(&AuditQuery { page: q.page + 1, ..q.clone() })) { (t(L, "search_more")) " →" } }
                        }
                    }
                }
            },
        ),
    ))
}

async fn audit_api(
    State(s): State<AppState>,
    auth: ApiAuth,
    Query(q): Query<AuditQuery>,
) -> Result<Response, Response> {
    let r = s
        .app
        .audit(&auth.ctx, &q)
        .await
        .map_err(|e| crate::api::error_response(L, &e))?;
    let items: Vec<Value> = r
        .entries
        .iter()
        .map(|c| {
            json!({
                "seq": c.seq, "at": c.at, "actor": c.actor,
                "actor_name": r.actors.get(&c.actor), "request_id": c.request_id,
                "action": c.action, "entity": c.entity, "entity_id": c.entity_id,
                "version": c.version, "before": c.before, "after": c.after,
                "effective_on": c.effective_on,
            })
        })
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({"items": items, "page": q.page, "more": r.more})),
    )
        .into_response())
}

/// "Who saw this record" on a card, for those the policy lets see it (supervisors of the
/// record's territory); nothing for everyone else.
pub(crate) async fn views_card(
    s: &AppState,
    auth: &PageAuth,
    entity: &str,
    id: &str,
    territory: Option<&str>,
) -> Result<Markup, Response> {
    if !s.app.may(
        &auth.ctx,
        kamkor_domain::policy::Action::ReadRecordViews,
        territory,
    ) {
        return Ok(html! {});
    }
    let (views, names) = s
        .app
        .record_views(&auth.ctx, entity, id, territory)
        .await
        .map_err(pe)?;
    let pr = &s.app.profile;
    Ok(html! {
        section.card #views {
            h2 { (t(L, "views_title")) }
            p.hint { (t(L, "views_hint")) }
            @if views.is_empty() { p { (t(L, "views_none")) } } @else {
                table.history {
                    thead { tr { th { (t(L, "col_when")) } th { (t(L, "col_who")) } th { (t(L, "audit_col_action")) } } }
                    tbody {
                        @for v in &views {
                            tr {
                                td { (display_ts(pr, &v.at)) }
                                td { (names.get(&v.actor).cloned().unwrap_or_else(|| v.actor.clone())) }
                                td { (action_label(&v.action)) }
                            }
                        }
                    }
                }
            }
        }
    })
}
