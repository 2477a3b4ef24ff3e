//! The JSON API of case work (issue 5): the case's work view (lifecycle, circumstances,
//! assessments, generated plans with their explanations, activities, monitoring visits), the
//! writes through the use cases of `kamkor_app::casework`, the worker's agenda and the
//! completeness of services. Same error format and policy as the rest of `/api/v1`: a bad or
//! unknown id answers 404 like a record outside the scope, a stale version 409.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use kamkor_app::casework::{
    ActivityDraft, ActivityUpdate, AssessmentDraft, CircumstanceChange, CircumstanceDraft,
    StepDraft, VisitDraft,
};
use kamkor_app::{App, AppError, Ctx};
use kamkor_domain::casework::{CaseStep, steps_from};
use kamkor_domain::policy::Action;
use kamkor_domain::records::{CaseStatus, format_date, parse_date};
use kamkor_domain::rules::Because;
use kamkor_store::CaseRow;
use kamkor_store::casework::{CaseRecordRow, OverdueItem};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::api::{JsonBody, case_json, error_response};
use crate::i18n::Lang;
use crate::{ApiAuth, AppState};

type ApiResult = Result<Response, Response>;

/// Explanations and labels are given in Russian, like the error messages of the API.
const LANG: &str = "ru";

fn err(e: AppError) -> Response {
    error_response(Lang::Ru, &e)
}

/// A path id: anything that is not a UUID is a record that does not exist.
fn id_of(s: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(s).map_err(|_| AppError::NotFound)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases/{id}/work", get(work))
        .route("/cases/{id}/steps", post(step))
        .route("/cases/{id}/circumstances", post(add_circumstance))
        .route("/cases/{id}/circumstances/{cid}", post(change_circumstance))
        .route("/cases/{id}/assessments", post(save_assessment))
        .route("/cases/{id}/plans/regenerate", post(regenerate_plan))
        .route("/cases/{id}/plans/{plan}/approve", post(approve_plan))
        .route("/cases/{id}/activities", post(add_activity))
        .route("/cases/{id}/activities/{aid}", put(update_activity))
        .route("/cases/{id}/visits", post(record_visit))
        .route("/agenda", get(agenda))
        .route("/completeness", get(completeness))
}

// ---- views ----

/// A case with its lifecycle: the case of `GET /cases/{id}` plus the serving territory, the
/// stage's start and due day, a waiting transfer and the lifecycle details.
fn work_case_json(app: &App, c: &CaseRow) -> Value {
    let mut v = case_json(c);
    if let Value::Object(m) = &mut v {
        m.insert("territory".into(), json!(c.territory));
        m.insert(
            "status_since".into(),
            json!(c.status_since.map(format_date)),
        );
        m.insert("stage_due".into(), json!(app.stage_due(c).map(format_date)));
        m.insert("transfer_territory".into(), json!(c.transfer_territory));
        m.insert(
            "work".into(),
            serde_json::to_value(&c.work).unwrap_or(Value::Null),
        );
        m.insert("updated_at".into(), json!(c.updated_at));
    }
    v
}

/// A case record: its data with its id, version and times.
fn record_json(r: &CaseRecordRow) -> Value {
    let mut m = match &r.data {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    m.insert("id".into(), json!(r.id));
    m.insert("version".into(), json!(r.version));
    m.insert("case_id".into(), json!(r.case_id));
    m.insert("created_at".into(), json!(r.created_at));
    m.insert("created_by".into(), json!(r.created_by));
    m.insert("updated_at".into(), json!(r.updated_at));
    m.insert("updated_by".into(), json!(r.updated_by));
    Value::Object(m)
}

/// An activity: the record, why it exists (one text per fact behind it) and the rule that
/// generated it.
fn activity_json(app: &App, r: &CaseRecordRow) -> Value {
    let mut v = record_json(r);
    let because: Vec<Because> = r
        .data
        .get("because")
        .cloned()
        .and_then(|b| serde_json::from_value(b).ok())
        .unwrap_or_default();
    let explanation: Vec<String> = because
        .iter()
        .map(|b| crate::case_pages::explain(&app.profile, b, LANG))
        .collect();
    let rule = match (
        r.text("rule_code"),
        r.data.get("rule_version").and_then(Value::as_u64),
    ) {
        (Some(code), Some(version)) => json!({
            "code": code,
            "version": version,
            // None when the profile's rules no longer hold this version.
            "label": app.rule_label(code, version, LANG),
        }),
        _ => Value::Null,
    };
    if let Value::Object(m) = &mut v {
        m.insert("explanation".into(), json!(explanation));
        m.insert("rule".into(), rule);
    }
    v
}

/// A planned visit past its day in a case being worked on.
fn visit_overdue(c: &CaseRow, v: &CaseRecordRow, today: time::Date) -> bool {
    !matches!(
        c.status,
        CaseStatus::Closed | CaseStatus::Suspended | CaseStatus::Transferred
    ) && v.text("status") == Some("planned")
        && v.text("due_on")
            .and_then(parse_date)
            .is_some_and(|d| d < today)
}

/// The steps offered from the case's stage that the caller may take.
fn steps_allowed(app: &App, ctx: &Ctx, c: &CaseRow) -> Vec<&'static str> {
    steps_from(c.status)
        .into_iter()
        .filter(|s| match s {
            CaseStep::Close => app.may_on_case(ctx, Action::CloseCase, c),
            // Only the receiving side accepts a transfer.
            CaseStep::AcceptTransfer => {
                app.may_on_case(ctx, Action::WorkCase, c)
                    && c.transfer_territory
                        .as_deref()
                        .is_some_and(|t| app.may(ctx, Action::WorkCase, Some(t)))
            }
            _ => app.may_on_case(ctx, Action::WorkCase, c),
        })
        .map(CaseStep::code)
        .collect()
}

async fn work(State(s): State<AppState>, auth: ApiAuth, Path(id): Path<String>) -> ApiResult {
    let id = id_of(&id).map_err(err)?;
    let app = &s.app;
    let ctx = &auth.ctx;
    let card = app.case_card(ctx, id).await.map_err(err)?;
    let c = &card.case;
    let of_kind = |k: &'static str| card.records.iter().filter(move |r| r.kind == k);
    let activities: Vec<Value> = of_kind("activity")
        .map(|a| {
            let mut v = activity_json(app, a);
            let kind = a.text("agency_kind").unwrap_or_default();
            if let Value::Object(m) = &mut v {
                m.insert(
                    "may_record".into(),
                    json!(app.may_record_activity(ctx, c, kind)),
                );
            }
            v
        })
        .collect();
    // Every plan of the profile that the case has activities or versions of, in the
    // profile's order, with its versions by number.
    let plans: Vec<Value> = app
        .profile
        .rules
        .plans
        .iter()
        .filter_map(|p| {
            let mine = |r: &&CaseRecordRow| r.text("plan") == Some(p.code.as_str());
            let mut versions: Vec<&CaseRecordRow> = of_kind("plan_version").filter(mine).collect();
            if versions.is_empty() && !of_kind("activity").any(|a| mine(&a)) {
                return None;
            }
            versions.sort_by_key(|v| v.data.get("number").and_then(Value::as_i64));
            Some(json!({
                "code": p.code,
                "label": p.label.get(LANG),
                "versions": versions.into_iter().map(record_json).collect::<Vec<_>>(),
            }))
        })
        .collect();
    let today = ctx.today();
    let monitoring_overdue = of_kind("visit").any(|v| visit_overdue(c, v, today));
    Ok(Json(json!({
        "case": work_case_json(app, c),
        "circumstances": of_kind("circumstance").map(record_json).collect::<Vec<_>>(),
        "assessments": of_kind("assessment").map(record_json).collect::<Vec<_>>(),
        "activities": activities,
        "plans": plans,
        "visits": of_kind("visit").map(record_json).collect::<Vec<_>>(),
        "monitoring_overdue": monitoring_overdue,
        "steps": steps_allowed(app, ctx, c),
    }))
    .into_response())
}

// ---- writes ----

fn created(id: Uuid) -> Response {
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

async fn step(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(d): JsonBody<StepDraft>,
) -> ApiResult {
    let id = id_of(&id).map_err(err)?;
    let c = s.app.case_step(&auth.ctx, id, &d).await.map_err(err)?;
    Ok(Json(work_case_json(&s.app, &c)).into_response())
}

async fn add_circumstance(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(d): JsonBody<CircumstanceDraft>,
) -> ApiResult {
    let id = id_of(&id).map_err(err)?;
    let cid = s
        .app
        .add_circumstance(&auth.ctx, id, &d)
        .await
        .map_err(err)?;
    Ok(created(cid))
}

async fn change_circumstance(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path((id, cid)): Path<(String, String)>,
    JsonBody(d): JsonBody<CircumstanceChange>,
) -> ApiResult {
    let id = id_of(&id).map_err(err)?;
    let cid = id_of(&cid).map_err(err)?;
    s.app
        .change_circumstance(&auth.ctx, id, cid, &d)
        .await
        .map_err(err)?;
    Ok(Json(json!({"id": cid})).into_response())
}

async fn save_assessment(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(d): JsonBody<AssessmentDraft>,
) -> ApiResult {
    let id = id_of(&id).map_err(err)?;
    let aid = s
        .app
        .save_assessment(&auth.ctx, id, &d)
        .await
        .map_err(|e| err(answers_named(e)))?;
    Ok(created(aid))
}

/// The answers of an assessment are checked like the extra fields of a record (`extra.<code>`);
/// in the request they are `answers.<code>`, and the error names them so.
fn answers_named(e: AppError) -> AppError {
    match e {
        AppError::Invalid(mut p) => {
            for f in &mut p.0 {
                if let Some(code) = f.field.strip_prefix("extra.") {
                    f.field = format!("answers.{code}");
                }
            }
            AppError::Invalid(p)
        }
        e => e,
    }
}

/// The draft a supervisor approves: `{"draft_id", "version"}` as read from `/work` (optional;
/// when given, a plan changed since is a 409 instead of being approved unseen).
#[derive(Deserialize, Default)]
#[serde(default)]
struct DraftSeen {
    draft_id: Option<Uuid>,
    version: Option<i64>,
}

async fn approve_plan(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path((id, plan)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult {
    let id = id_of(&id).map_err(err)?;
    let seen = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<DraftSeen>(&body) {
            Ok(DraftSeen {
                draft_id: Some(id),
                version: Some(v),
            }) => Some((id, v)),
            Ok(DraftSeen {
                draft_id: None,
                version: None,
            }) => None,
            Ok(_) => {
                let mut p = kamkor_domain::records::Problems::default();
                p.push("version", "required");
                return Err(err(AppError::Invalid(p)));
            }
            Err(_) => {
                let mut p = kamkor_domain::records::Problems::default();
                p.push("draft_id", "bad_request");
                return Err(err(AppError::Invalid(p)));
            }
        }
    };
    s.app
        .approve_plan(&auth.ctx, id, &plan, seen)
        .await
        .map_err(err)?;
    Ok(Json(json!({"plan": plan, "status": "approved"})).into_response())
}

async fn regenerate_plan(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult {
    let id = id_of(&id).map_err(err)?;
    s.app.regenerate_plan(&auth.ctx, id).await.map_err(err)?;
    Ok(Json(json!({"id": id})).into_response())
}

async fn add_activity(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(d): JsonBody<ActivityDraft>,
) -> ApiResult {
    let id = id_of(&id).map_err(err)?;
    let aid = s.app.add_activity(&auth.ctx, id, &d).await.map_err(err)?;
    Ok(created(aid))
}

async fn update_activity(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path((id, aid)): Path<(String, String)>,
    JsonBody(d): JsonBody<ActivityUpdate>,
) -> ApiResult {
    let id = id_of(&id).map_err(err)?;
    let aid = id_of(&aid).map_err(err)?;
    s.app
        .update_activity(&auth.ctx, id, aid, &d)
        .await
        .map_err(err)?;
    Ok(Json(json!({"id": aid})).into_response())
}

async fn record_visit(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(d): JsonBody<VisitDraft>,
) -> ApiResult {
    let id = id_of(&id).map_err(err)?;
    let vid = s.app.record_visit(&auth.ctx, id, &d).await.map_err(err)?;
    Ok(created(vid))
}

// ---- agenda and completeness ----

fn overdue_json(app: &App, o: &OverdueItem) -> Value {
    let mut v = if o.record.kind == "activity" {
        activity_json(app, &o.record)
    } else {
        record_json(&o.record)
    };
    if let Value::Object(m) = &mut v {
        m.insert("case_number".into(), json!(o.case_number));
        m.insert(
            "case_responsible_user".into(),
            json!(o.case_responsible_user),
        );
    }
    v
}

async fn agenda(State(s): State<AppState>, auth: ApiAuth) -> ApiResult {
    let a = s.app.agenda(&auth.ctx).await.map_err(err)?;
    Ok(Json(json!({
        "activities": a.activities.iter().map(|o| overdue_json(&s.app, o)).collect::<Vec<_>>(),
        "visits": a.visits.iter().map(|o| overdue_json(&s.app, o)).collect::<Vec<_>>(),
        "transfers": a.transfers.iter().map(|c| work_case_json(&s.app, c)).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompletenessQuery {
    plan: String,
    page: i64,
}

async fn completeness(
    State(s): State<AppState>,
    auth: ApiAuth,
    Query(q): Query<CompletenessQuery>,
) -> ApiResult {
    let (rows, total, more) = s
        .app
        .completeness(&auth.ctx, q.plan.trim(), q.page)
        .await
        .map_err(err)?;
    Ok(Json(json!({
        "plan": q.plan.trim(),
        "page": q.page.max(0),
        "rows": rows.iter().map(|r| json!({
            "case_id": r.case.id,
            "case_number": r.case.number,
            "case_status": r.case.status.code(),
            "subject": r.subject,
            "counts": r.counts,
            "total": r.counts.total(),
        })).collect::<Vec<_>>(),
        "total": total,
        "more": more,
    }))
    .into_response())
}
