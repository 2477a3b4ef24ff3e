//! Merging two records of one person (issue 6 item 3): the supervisor's comparison page and
//! its JSON twin, and the likely duplicates of a record. The use cases decide who may.

use axum::Json;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use kamkor_app::AppError;
use kamkor_app::merge::{MergeProposal, MergeRequest};
use kamkor_domain::records::{PersonData, Problems};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::{JsonBody, error_response, evidence_json, person_json};
use crate::html::{
    classifier_label, display_date, error_summary, hidden_csrf, layout, territory_name, textarea,
};
use crate::i18n::{Lang, error_message, t};
use crate::pages::{
    FormData, PageResult, csrf_failed, evidence_words, nid_display, nid_label, page, pe,
    person_field_label, problem_status, render,
};
use crate::{ApiAuth, AppState, PageAuth};

const L: Lang = Lang::Ru;

pub fn routes() -> Router<AppState> {
    Router::new().route("/persons/{id}/merge", get(merge_page).post(merge_submit))
}

pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/persons/{id}/duplicates", get(duplicates_api))
        .route("/persons/{id}/merge", axum::routing::post(merge_api))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct With {
    with: String,
}

fn parse_id(s: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(s.trim()).map_err(|_| AppError::NotFound)
}

async fn merge_page(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(w): Query<With>,
) -> PageResult {
    let keep = parse_id(&id).map_err(pe)?;
    let other = parse_id(&w.with).map_err(pe)?;
    let proposal = s
        .app
        .merge_proposal(&auth.ctx, keep, other)
        .await
        .map_err(pe)?;
    Ok(merge_view(
        &s,
        &auth,
        &proposal,
        "",
        &Problems::default(),
        false,
    ))
}

async fn merge_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let keep = parse_id(&id).map_err(pe)?;
    let merged = parse_id(&f.get("merged")).map_err(pe)?;
    let version = |k: &str| f.get(k).trim().parse::<i64>().unwrap_or(-1);
    let req = MergeRequest {
        keep,
        keep_version: version("keep_version"),
        merged,
        merged_version: version("merged_version"),
        reason: f.get("reason"),
    };
    match s.app.merge_persons(&auth.ctx, &req).await {
        Ok(done) => {
            Ok(Redirect::to(&format!("/persons/{}?saved=merged", done.keep)).into_response())
        }
        // Input to fix, or someone changed one of the records meanwhile: compare again, as
        // they are now.
        Err(e @ (AppError::Invalid(_) | AppError::Conflict { .. })) => {
            let proposal = s
                .app
                .merge_proposal(&auth.ctx, keep, merged)
                .await
                .map_err(pe)?;
            let (problems, conflict) = match e {
                AppError::Invalid(p) => (p, false),
                _ => (Problems::default(), true),
            };
            Ok(merge_view(
                &s,
                &auth,
                &proposal,
                &req.reason,
                &problems,
                conflict,
            ))
        }
        Err(e) => Err(pe(e)),
    }
}

fn merge_view(
    s: &AppState,
    auth: &PageAuth,
    m: &MergeProposal,
    reason: &str,
    problems: &Problems,
    conflict: bool,
) -> Response {
    let pr = &s.app.profile;
    let title = t(L, "merge_title");
    let pg = page(s, title, Some(auth));
    let labels = |f: &str| match f {
        "reason" => t(L, "merge_reason").to_string(),
        "keep" | "merged" => t(L, "dup_record").to_string(),
        other => person_field_label(pr, other),
    };
    let status = if conflict {
        StatusCode::CONFLICT
    } else {
        problem_status(problems)
    };
    let row = |label: String, f: &dyn Fn(&PersonData) -> String| -> Markup {
        let (a, b, r) = (f(&m.keep.data), f(&m.merged.data), f(&m.result));
        html! {
            tr {
                th { (label) }
                td { (a) }
                td { (b) }
                td.changed[r != a] { (r) }
            }
        }
    };
    let sex = |d: &PersonData| {
        t(
            L,
            if d.sex == kamkor_domain::Sex::Female {
                "sex_female"
            } else {
                "sex_male"
            },
        )
        .to_string()
    };
    render(
        status,
        layout(
            &pg,
            html! {
                h1 { (title) }
                p { (t(L, "merge_intro")) }
                @if conflict { div.errors role="alert" { p { (error_message(L, "conflict")) } } }
                (error_summary(L, problems, labels))
                div.scroll { table.compare {
                    thead { tr {
                        th { (t(L, "merge_field")) }
                        th { (t(L, "merge_keep")) br; a href={ "/persons/" (m.keep.id) } { (m.keep.data.full_name()) } }
                        th { (t(L, "merge_other")) br; a href={ "/persons/" (m.merged.id) } { (m.merged.data.full_name()) } }
                        th { (t(L, "merge_result")) }
                    } }
                    tbody {
                        (row(t(L, "col_name").to_string(), &|d| d.full_name()))
                        (row(t(L, "person_sex").to_string(), &sex))
                        (row(t(L, "person_birth_date").to_string(), &|d| d.birth_date.map(display_date).unwrap_or_default()))
                        (row(nid_label(pr).to_string(), &|d| nid_display(pr, d.national_id.as_deref())))
                        (row(t(L, "person_citizenship").to_string(), &|d| d.citizenship.as_deref().map(|c| classifier_label(pr, L, "citizenship", c)).unwrap_or_default()))
                        (row(t(L, "person_residence_territory").to_string(), &|d| d.residence_territory.as_deref().map(|c| territory_name(pr, L, c)).unwrap_or_default()))
                        (row(t(L, "person_address").to_string(), &|d| d.address.clone().unwrap_or_default()))
                        (row(t(L, "person_disability").to_string(), &|d| d.disability.as_deref().map(|c| classifier_label(pr, L, "disability", c)).unwrap_or_default()))
                        (row(t(L, "person_social_payments").to_string(), &|d| d.social_payments.iter().map(|c| classifier_label(pr, L, "social_payment", c)).collect::<Vec<_>>().join("; ")))
                        tr { th { (t(L, "col_match")) } td colspan="3" { strong { ((m.evidence.score * 100.0).round()) "%" } " " (evidence_words(&m.evidence).join(", ")) } }
                    }
                } }
                p {
                    @if m.filled.is_empty() { (t(L, "merge_nothing_filled")) } @else {
                        (t(L, "merge_filled")) ": " (m.filled.iter().map(|f| person_field_label(pr, f)).collect::<Vec<_>>().join(", ")) "."
                    }
                    " " a href={ "/persons/" (m.merged.id) "/merge?with=" (m.keep.id) } { (t(L, "merge_swap")) }
                }
                form method="post" action={ "/persons/" (m.keep.id) "/merge" } {
                    (hidden_csrf(&auth.session.csrf_token))
                    input type="hidden" name="keep_version" value=(m.keep.version);
                    input type="hidden" name="merged" value=(m.merged.id);
                    input type="hidden" name="merged_version" value=(m.merged.version);
                    (textarea(L, problems, "reason", t(L, "merge_reason"), reason, true, Some(t(L, "merge_reason_hint"))))
                    p.actions { button.primary type="submit" { (t(L, "merge_submit")) } }
                }
            },
        ),
    )
}

// ---- API ----

type ApiResult = Result<Response, Response>;

fn err(e: AppError) -> Response {
    error_response(Lang::Ru, &e)
}

async fn duplicates_api(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult {
    let id = parse_id(&id).map_err(err)?;
    let found = s.app.duplicates_of(&auth.ctx, id).await.map_err(err)?;
    let items: Vec<Value> = found
        .shown
        .iter()
        .map(|l| {
            let mut v = person_json(&l.row);
            if let Value::Object(m) = &mut v {
                m.insert("match".into(), evidence_json(&l.evidence));
            }
            v
        })
        .collect();
    Ok(Json(json!({"items": items, "elsewhere": found.elsewhere})).into_response())
}

#[derive(Deserialize)]
struct MergeBody {
    /// The version of the record kept (the one in the path) the caller compared.
    version: i64,
    merged: Uuid,
    merged_version: i64,
    reason: String,
}

async fn merge_api(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<MergeBody>,
) -> ApiResult {
    let keep = parse_id(&id).map_err(err)?;
    let done = s
        .app
        .merge_persons(
            &auth.ctx,
            &MergeRequest {
                keep,
                keep_version: b.version,
                merged: b.merged,
                merged_version: b.merged_version,
                reason: b.reason,
            },
        )
        .await
        .map_err(err)?;
    Ok(Json(json!({
        "id": done.keep,
        "version": done.keep_version,
        "merged": done.merged,
        "filled": done.filled,
    }))
    .into_response())
}
