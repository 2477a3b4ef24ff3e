//! The JSON API of accounts and access (issue 3): account administration, access requests,
//! the second factor, external clients, networks, break-the-glass, refusals, section edits
//! and the export of a personal file. Same error format and policy as the rest of `/api/v1`.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use kamkor_app::accounts::{AccountChange, ClientChange, ClientForm, UserFilter, UserForm};
use kamkor_app::{AppError, totp};
use kamkor_store::{AccessRequestRow, ApiClientRow, UserRow};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::{JsonBody, error_response};
use crate::i18n::Lang;
use crate::{ApiAuth, AppState};

type ApiResult = Result<Response, Response>;

fn err(e: AppError) -> Response {
    error_response(Lang::Ru, &e)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/access-requests", post(submit_request))
        .route(
            "/second-factor",
            get(second_factor_begin).post(second_factor_enrol),
        )
        .route("/second-factor/disable", post(second_factor_disable))
        .route("/break-glass", post(break_glass))
        .route("/persons/{id}/export", get(export_person))
        .route("/persons/{id}/sections/{section}", put(update_section))
        .route("/admin/users", get(list_users).post(register_user))
        .route("/admin/users/{id}", get(user_card))
        .route("/admin/users/{id}/changes", post(change_user))
        .route("/admin/access-requests", get(list_requests))
        .route("/admin/access-requests/{id}", get(request_card))
        .route("/admin/access-requests/{id}/approve", post(approve_request))
        .route("/admin/access-requests/{id}/reject", post(reject_request))
        .route("/admin/clients", get(list_clients).post(register_client))
        .route("/admin/clients/{id}", get(client_card))
        .route("/admin/clients/{id}/changes", post(change_client))
        .route("/admin/networks", get(list_networks).post(add_network))
        .route("/admin/networks/remove", post(remove_network))
        .route("/admin/denials", get(denials))
        .route("/admin/break-glass", get(glass_reviews))
}

/// An account as administrators see it: never the password hash nor the TOTP secret.
pub fn account_json(u: &UserRow) -> Value {
    json!({
        "id": u.id, "version": u.version, "login": u.login, "full_name": u.full_name,
        "roles": u.role.split(',').filter(|r| !r.is_empty()).collect::<Vec<_>>(),
        "organisation": u.organisation, "org_kind": u.org_kind, "org_inn": u.org_inn,
        "org_address": u.org_address, "territorial_unit": u.territorial_unit,
        "national_id": u.national_id, "position": u.position,
        "scope_territory": u.scope_territory, "valid_from": u.valid_from,
        "valid_until": u.valid_until, "status": u.status,
        "state": kamkor_app::accounts::account_state(u, kamkor_store::now_utc().date()),
        "status_reason": u.status_reason, "must_change_password": u.must_change_password,
        "second_factor": u.totp_secret.is_some(), "created_at": u.created_at,
    })
}

fn request_json(r: &AccessRequestRow) -> Value {
    json!({
        "id": r.id, "version": r.version, "status": r.status, "full_name": r.full_name,
        "national_id": r.national_id, "position": r.position, "organisation": r.organisation,
        "org_inn": r.org_inn, "org_address": r.org_address, "territorial_unit": r.territorial_unit,
        "roles": r.roles.split(',').filter(|x| !x.is_empty()).collect::<Vec<_>>(),
        "scope_territory": r.scope_territory, "valid_until": r.valid_until, "contact": r.contact,
        "created_at": r.created_at, "decided_at": r.decided_at, "decided_by": r.decided_by,
        "decision_note": r.decision_note, "user_id": r.user_id,
    })
}

fn client_json(c: &ApiClientRow) -> Value {
    json!({
        "id": c.id, "version": c.version, "name": c.name,
        "services": c.services.split(',').filter(|x| !x.is_empty()).collect::<Vec<_>>(),
        "organisation": c.organisation, "scope_territory": c.scope_territory,
        "valid_from": c.valid_from, "valid_until": c.valid_until, "status": c.status,
        "created_at": c.created_at, "rotated_at": c.rotated_at,
    })
}

// ---- public ----

async fn submit_request(State(s): State<AppState>, JsonBody(f): JsonBody<UserForm>) -> ApiResult {
    let id = s.app.submit_access_request(&f).await.map_err(err)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "status": "pending"})),
    )
        .into_response())
}

// ---- own account ----

async fn second_factor_begin(State(s): State<AppState>, auth: ApiAuth) -> ApiResult {
    if auth.ctx.actor.is_client() {
        return Err(err(AppError::Forbidden(
            kamkor_domain::policy::DenyReason::RoleForbids,
        )));
    }
    let secret = totp::new_secret().map_err(err)?;
    let issuer = format!("Kamkor {}", s.app.profile.meta.name);
    Ok(Json(json!({
        "secret": secret,
        "uri": totp::otpauth_uri(&issuer, &auth.ctx.user.login, &secret),
        "enrolled": auth.ctx.user.totp_secret.is_some(),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct EnrolBody {
    secret: String,
    code: String,
}

async fn second_factor_enrol(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(b): JsonBody<EnrolBody>,
) -> ApiResult {
    if auth.ctx.actor.is_client() {
        return Err(err(AppError::Forbidden(
            kamkor_domain::policy::DenyReason::RoleForbids,
        )));
    }
    s.app
        .enrol_second_factor(&auth.ctx, &b.secret, &b.code)
        .await
        .map_err(err)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct CodeBody {
    code: String,
}

async fn second_factor_disable(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(b): JsonBody<CodeBody>,
) -> ApiResult {
    s.app
        .disable_second_factor(&auth.ctx, &b.code)
        .await
        .map_err(err)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- records ----

#[derive(Deserialize)]
struct GlassBody {
    national_id: String,
    reason: String,
}

async fn break_glass(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(b): JsonBody<GlassBody>,
) -> ApiResult {
    let g = s
        .app
        .break_glass(&auth.ctx, &b.national_id, &b.reason)
        .await
        .map_err(err)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"person_id": g.person_id, "expires_at": g.expires_at, "read_only": true})),
    )
        .into_response())
}

async fn export_person(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult {
    let id = Uuid::parse_str(&id).map_err(|_| err(AppError::NotFound))?;
    let v = s.app.export_person(&auth.ctx, id).await.map_err(err)?;
    Ok((
        [(
            axum::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"person-{id}.json\""),
        )],
        Json(v),
    )
        .into_response())
}

#[derive(Deserialize)]
struct SectionBody {
    version: i64,
    #[serde(default)]
    values: BTreeMap<String, Value>,
    /// The day the changes took effect (seed 000 §20); empty or absent: today.
    #[serde(default)]
    effective_on: String,
}

async fn update_section(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path((id, section)): Path<(String, String)>,
    JsonBody(b): JsonBody<SectionBody>,
) -> ApiResult {
    let id = Uuid::parse_str(&id).map_err(|_| err(AppError::NotFound))?;
    let version = s
        .app
        .update_person_section(
            &auth.ctx,
            id,
            b.version,
            &section,
            &b.values,
            &b.effective_on,
        )
        .await
        .map_err(err)?;
    Ok(Json(json!({"id": id, "version": version})).into_response())
}

// ---- administration ----

async fn list_users(
    State(s): State<AppState>,
    auth: ApiAuth,
    Query(f): Query<UserFilter>,
) -> ApiResult {
    let users = s.app.list_users(&auth.ctx, &f).await.map_err(err)?;
    let (items, more) = f.page_of(&users);
    Ok(Json(json!({
        "items": items.iter().map(account_json).collect::<Vec<_>>(),
        "total": users.len(),
        "page": f.page,
        "per_page": kamkor_app::accounts::USERS_PER_PAGE,
        "more": more,
    }))
    .into_response())
}

async fn register_user(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(f): JsonBody<UserForm>,
) -> ApiResult {
    let (u, password) = s.app.register_user(&auth.ctx, &f).await.map_err(err)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": account_json(&u), "one_time_password": password})),
    )
        .into_response())
}

async fn user_card(State(s): State<AppState>, auth: ApiAuth, Path(id): Path<String>) -> ApiResult {
    let card = s.app.user_card(&auth.ctx, &id).await.map_err(err)?;
    Ok(Json(json!({
        "user": account_json(&card.user),
        "failed_logins": card.failures,
        "locked_until": card.locked_until,
        "history": card.history.iter().map(|c| json!({
            "seq": c.seq, "at": c.at, "actor": c.actor, "action": c.action,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct Versioned<T> {
    version: i64,
    #[serde(flatten)]
    change: T,
}

async fn change_user(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<Versioned<AccountChange>>,
) -> ApiResult {
    let password = s
        .app
        .change_account(&auth.ctx, &id, b.version, &b.change)
        .await
        .map_err(err)?;
    let card = s.app.user_card(&auth.ctx, &id).await.map_err(err)?;
    Ok(
        Json(json!({"user": account_json(&card.user), "one_time_password": password}))
            .into_response(),
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StatusQuery {
    status: String,
}

async fn list_requests(
    State(s): State<AppState>,
    auth: ApiAuth,
    Query(q): Query<StatusQuery>,
) -> ApiResult {
    let rows = s
        .app
        .access_requests(&auth.ctx, &q.status)
        .await
        .map_err(err)?;
    Ok(Json(json!({"items": rows.iter().map(request_json).collect::<Vec<_>>()})).into_response())
}

async fn request_card(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult {
    let r = s.app.access_request(&auth.ctx, &id).await.map_err(err)?;
    Ok(Json(request_json(&r)).into_response())
}

#[derive(Deserialize)]
struct DecisionBody {
    version: i64,
    #[serde(default)]
    note: String,
}

async fn approve_request(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<DecisionBody>,
) -> ApiResult {
    let (u, password) = s
        .app
        .approve_access_request(&auth.ctx, &id, b.version)
        .await
        .map_err(err)?;
    Ok(Json(json!({"user": account_json(&u), "one_time_password": password})).into_response())
}

async fn reject_request(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<DecisionBody>,
) -> ApiResult {
    s.app
        .reject_access_request(&auth.ctx, &id, b.version, &b.note)
        .await
        .map_err(err)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_clients(State(s): State<AppState>, auth: ApiAuth) -> ApiResult {
    let rows = s.app.api_clients(&auth.ctx).await.map_err(err)?;
    Ok(Json(json!({"items": rows.iter().map(client_json).collect::<Vec<_>>()})).into_response())
}

async fn register_client(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(f): JsonBody<ClientForm>,
) -> ApiResult {
    let (c, token) = s.app.register_client(&auth.ctx, &f).await.map_err(err)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"client": client_json(&c), "token": token})),
    )
        .into_response())
}

async fn client_card(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult {
    let (c, history) = s.app.api_client(&auth.ctx, &id).await.map_err(err)?;
    Ok(Json(json!({
        "client": client_json(&c),
        "history": history.iter().map(|h| json!({"seq": h.seq, "at": h.at, "actor": h.actor, "action": h.action})).collect::<Vec<_>>(),
    }))
    .into_response())
}

async fn change_client(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<Versioned<ClientChange>>,
) -> ApiResult {
    let token = s
        .app
        .change_client(&auth.ctx, &id, b.version, &b.change)
        .await
        .map_err(err)?;
    let (c, _) = s.app.api_client(&auth.ctx, &id).await.map_err(err)?;
    Ok(Json(json!({"client": client_json(&c), "token": token})).into_response())
}

async fn list_networks(State(s): State<AppState>, auth: ApiAuth) -> ApiResult {
    let rows = s.app.networks(&auth.ctx).await.map_err(err)?;
    Ok(Json(json!({"items": rows.iter().map(|(o, c)| json!({"organisation": o, "cidr": c})).collect::<Vec<_>>()}))
        .into_response())
}

#[derive(Deserialize)]
struct NetworkBody {
    organisation: String,
    cidr: String,
}

async fn add_network(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(b): JsonBody<NetworkBody>,
) -> ApiResult {
    let cidr = s
        .app
        .add_network(&auth.ctx, &b.organisation, &b.cidr)
        .await
        .map_err(err)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"organisation": b.organisation, "cidr": cidr})),
    )
        .into_response())
}

async fn remove_network(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(b): JsonBody<NetworkBody>,
) -> ApiResult {
    s.app
        .remove_network(&auth.ctx, &b.organisation, &b.cidr)
        .await
        .map_err(err)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LimitQuery {
    limit: Option<i64>,
}

async fn denials(
    State(s): State<AppState>,
    auth: ApiAuth,
    Query(q): Query<LimitQuery>,
) -> ApiResult {
    let rows = s
        .app
        .denials(&auth.ctx, q.limit.unwrap_or(200))
        .await
        .map_err(err)?;
    Ok(Json(json!({"items": rows.iter().map(|c| json!({
        "seq": c.seq, "at": c.at, "actor": c.actor, "request_id": c.request_id,
        "entity": c.entity, "entity_id": c.entity_id,
        "action": c.after.as_ref().and_then(|a| a.get("action")).cloned(),
        "reason": c.after.as_ref().and_then(|a| a.get("reason")).cloned(),
    })).collect::<Vec<_>>()}))
    .into_response())
}

async fn glass_reviews(State(s): State<AppState>, auth: ApiAuth) -> ApiResult {
    let rows = s.app.glass_reviews(&auth.ctx).await.map_err(err)?;
    Ok(Json(json!({"items": rows.iter().map(|r| json!({
        "id": r.grant.id, "user_id": r.grant.user_id, "user": r.user_name,
        "person_id": r.grant.person_id, "person": r.person_name, "reason": r.grant.reason,
        "opened_at": r.grant.opened_at, "expires_at": r.grant.expires_at,
    })).collect::<Vec<_>>()}))
    .into_response())
}
