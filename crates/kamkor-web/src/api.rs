//! The JSON API under `/api/v1`: the same use cases as the pages. Errors are
//! `{"error": {"code", "message", "field"}}` (plus `details` with every problem of a
//! validation failure) with the matching status code.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kamkor_app::{AppError, ChildRegistration, FamilyRegistration, LoginError, PersonSearch};
use kamkor_domain::records::{CaseDraft, CaseStatus, PersonDraft};
use kamkor_store::{CaseRow, ChangeRow, FamilyRow, PersonRow};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::i18n::{Lang, error_message};
use crate::{ApiAuth, AppState, ClientIp, session_cookie};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/logout-all", post(logout_all))
        .route("/me", get(me))
        .route("/password", post(change_password))
        .route("/profile", get(profile))
        .route("/persons", get(search_persons).post(register_person))
        .route("/persons/{id}", get(person).put(update_person))
        .route("/families", get(search_families).post(register_family))
        .route("/families/{id}", get(family))
        .route("/cases", get(list_cases).post(open_case))
        .route("/cases/{id}", get(case))
        .merge(crate::api_access::routes())
        .merge(crate::api_casework::routes())
        .merge(crate::api_ledger::routes())
        .merge(crate::audit_pages::api_routes())
        .merge(crate::merge_pages::api_routes())
        .fallback(not_found)
}

/// The body-size limit answers in plain text; on the API it answers in the JSON error format.
pub(crate) fn json_body_limit(res: Response) -> Response {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return error_json(StatusCode::PAYLOAD_TOO_LARGE, "too_long", Lang::Ru, None);
    }
    res
}

async fn not_found() -> Response {
    error_json(StatusCode::NOT_FOUND, "not_found", Lang::Ru, None)
}

pub fn error_json(status: StatusCode, code: &str, lang: Lang, field: Option<&str>) -> Response {
    (
        status,
        Json(
            json!({"error": {"code": code, "message": error_message(lang, code), "field": field}}),
        ),
    )
        .into_response()
}

/// Map an application error to its status and JSON body. Internal errors are logged with the
/// request's context but answered with a generic message: no personal data leaves in errors.
pub fn error_response(lang: Lang, e: &AppError) -> Response {
    match e {
        AppError::Invalid(p) => {
            let first = p.0.first();
            let details: Vec<Value> = p
                .0
                .iter()
                .map(|f| json!({"field": f.field, "code": f.code, "message": error_message(lang, &f.code)}))
                .collect();
            let code = first.map(|f| f.code.as_str()).unwrap_or("invalid");
            // Input reaching outside the user's territory is a denial: 403, with the field.
            let status = if p.0.iter().any(|f| f.code == "out_of_scope") {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            (
                status,
                Json(json!({"error": {
                    "code": code,
                    "message": error_message(lang, code),
                    "field": first.map(|f| f.field.clone()),
                    "details": details,
                }})),
            )
                .into_response()
        }
        AppError::NotFound => error_json(StatusCode::NOT_FOUND, "not_found", lang, None),
        AppError::Forbidden(r) => error_json(StatusCode::FORBIDDEN, r.code(), lang, None),
        AppError::Unauthenticated => {
            error_json(StatusCode::UNAUTHORIZED, "unauthenticated", lang, None)
        }
        AppError::Conflict { current, changes } => (
            StatusCode::CONFLICT,
            Json(json!({"error": {
                "code": "conflict",
                "message": error_message(lang, "conflict"),
                "field": null,
                "current_version": current,
                "changes": changes,
            }})),
        )
            .into_response(),
        AppError::Duplicate(_) => error_json(StatusCode::CONFLICT, "duplicate", lang, None),
        AppError::LikelyDuplicates(found) => (
            StatusCode::CONFLICT,
            Json(json!({"error": {
                "code": found.problems.0.first().map_or("likely_duplicates", |f| f.code.as_str()),
                "message": error_message(lang, found.problems.0.first().map_or("likely_duplicates", |f| f.code.as_str())),
                "field": found.problems.0.first().map(|f| f.field.clone()),
                "candidates": found.shown.iter().map(|l| {
                    let mut v = person_json(&l.row);
                    if let Value::Object(m) = &mut v {
                        m.insert("match".into(), evidence_json(&l.evidence));
                    }
                    v
                }).collect::<Vec<_>>(),
                "elsewhere": found.elsewhere,
                "resolve": "resubmit with distinct_from (the ids of the candidates) and distinct_reason, or use an existing record",
            }})),
        )
            .into_response(),
        AppError::Store(_) | AppError::Config(_) => {
            tracing::error!(error = %e, "request failed");
            error_json(StatusCode::INTERNAL_SERVER_ERROR, "internal", lang, None)
        }
    }
}

type ApiResult = Result<Response, Response>;

fn err(e: AppError) -> Response {
    error_response(Lang::Ru, &e)
}

/// JSON body, with a JSON error (not axum's plain text) when it does not parse.
pub struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rej) => {
                let status = rej.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "too_long"
                } else {
                    "bad_request"
                };
                let (field, detail) = rejection_detail(&rej.body_text());
                Err((
                    if status == StatusCode::PAYLOAD_TOO_LARGE { status } else { StatusCode::BAD_REQUEST },
                    Json(json!({"error": {"code": code, "message": error_message(Lang::Ru, code), "field": field, "detail": detail}})),
                )
                    .into_response())
            }
        }
    }
}

/// What was wrong with a JSON body, without echoing any of its values (they may be personal
/// data): the field's path and the kind of problem, or where the syntax broke.
fn rejection_detail(text: &str) -> (Option<String>, String) {
    let position = text
        .rfind(" at line ")
        .map(|i| text[i + 4..].to_string())
        .unwrap_or_default();
    if let Some(rest) = text.split("target type: ").nth(1) {
        let field = rest
            .split(": ")
            .next()
            .filter(|f| {
                !f.is_empty()
                    && f.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._[]".contains(c))
            })
            .map(str::to_string);
        let kind = if rest.contains("missing field") {
            "a required field is missing"
        } else if rest.contains("unknown field") {
            "unknown field"
        } else {
            "wrong type or value"
        };
        let detail = match &field {
            Some(f) => format!("{f}: {kind}"),
            None => kind.to_string(),
        };
        return (field, detail);
    }
    if text.contains("Content-Type") {
        return (None, "expected Content-Type: application/json".into());
    }
    let detail = if position.is_empty() {
        "not valid JSON".to_string()
    } else {
        format!("not valid JSON ({position})")
    };
    (None, detail)
}

#[derive(Deserialize)]
struct LoginBody {
    login: String,
    password: String,
    /// The 6-digit code of the authenticator app, when the account has a second factor.
    #[serde(default)]
    code: Option<String>,
}

async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(b): JsonBody<LoginBody>,
) -> ApiResult {
    match s
        .app
        .login(&b.login, &b.password, b.code.as_deref(), ip)
        .await
    {
        Ok(l) => Ok((
            [(
                header::SET_COOKIE,
                session_cookie(&l.token, s.config.secure_cookies),
            )],
            Json(json!({
                "token": l.token,
                "csrf_token": l.csrf,
                "user": user_json(&l.user),
            })),
        )
            .into_response()),
        Err(LoginError::BadCredentials) => Err(error_json(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            Lang::Ru,
            None,
        )),
        Err(LoginError::Inactive) => Err(error_json(
            StatusCode::FORBIDDEN,
            "account_inactive",
            Lang::Ru,
            None,
        )),
        Err(LoginError::SecondFactorRequired) => Err(error_json(
            StatusCode::UNAUTHORIZED,
            "second_factor_required",
            Lang::Ru,
            Some("code"),
        )),
        Err(LoginError::SecondFactorWrong) => Err(error_json(
            StatusCode::UNAUTHORIZED,
            "second_factor_wrong",
            Lang::Ru,
            Some("code"),
        )),
        Err(LoginError::NetworkNotAllowed) => Err(error_json(
            StatusCode::FORBIDDEN,
            "network_not_allowed",
            Lang::Ru,
            None,
        )),
        Err(LoginError::App(e)) => Err(err(e)),
    }
}

async fn logout(State(s): State<AppState>, auth: ApiAuth) -> ApiResult {
    s.app.logout(&auth.ctx, &auth.token).await.map_err(err)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn logout_all(State(s): State<AppState>, auth: ApiAuth) -> ApiResult {
    let ended = s.app.logout_everywhere(&auth.ctx).await.map_err(err)?;
    Ok(Json(json!({"sessions_ended": ended})).into_response())
}

fn user_json(u: &kamkor_store::UserRow) -> Value {
    json!({
        "id": u.id, "login": u.login, "full_name": u.full_name,
        "roles": u.role.split(',').collect::<Vec<_>>(), "organisation": u.organisation,
        "scope_territory": u.scope_territory, "valid_from": u.valid_from, "valid_until": u.valid_until,
        "must_change_password": u.must_change_password,
    })
}

#[derive(Deserialize)]
struct PasswordBody {
    current: String,
    new: String,
    repeat: Option<String>,
}

async fn change_password(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(b): JsonBody<PasswordBody>,
) -> ApiResult {
    let repeat = b.repeat.clone().unwrap_or_else(|| b.new.clone());
    s.app
        .change_password(&auth.ctx, &b.current, &b.new, &repeat)
        .await
        .map_err(err)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn me(auth: ApiAuth) -> ApiResult {
    Ok(Json(user_json(&auth.ctx.user)).into_response())
}

/// The profile's reference data, so that clients can offer the same choices as the UI.
async fn profile(State(s): State<AppState>, _auth: ApiAuth) -> ApiResult {
    let p = &s.app.profile;
    Ok(Json(json!({
        "profile": p.meta,
        "territories": p.territories,
        "org_kinds": p.org_kinds,
        "agencies": p.agencies,
        "classifiers": p.classifiers,
        "forms": p.forms,
    }))
    .into_response())
}

pub fn person_json(p: &PersonRow) -> Value {
    let mut v = serde_json::to_value(&p.data).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(p.id));
        m.insert("version".into(), json!(p.version));
        m.insert("full_name".into(), json!(p.data.full_name()));
        m.insert("created_at".into(), json!(p.created_at));
        m.insert("updated_at".into(), json!(p.updated_at));
    }
    v
}

fn family_json(f: &FamilyRow) -> Value {
    let mut v = serde_json::to_value(&f.data).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(f.id));
        m.insert("version".into(), json!(f.version));
        m.insert("created_at".into(), json!(f.created_at));
    }
    v
}

pub fn case_json(c: &CaseRow) -> Value {
    let mut v = serde_json::to_value(&c.data).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(c.id));
        m.insert("version".into(), json!(c.version));
        m.insert("number".into(), json!(c.number));
        m.insert("status".into(), json!(c.status.code()));
        m.insert("responsible_user".into(), json!(c.responsible_user));
        m.insert("created_at".into(), json!(c.created_at));
    }
    v
}

fn history_json(h: &[ChangeRow]) -> Value {
    Value::Array(
        h.iter()
            .map(|c| {
                json!({
                    "seq": c.seq, "at": c.at, "actor": c.actor, "action": c.action, "version": c.version,
                    // Seed 000 §20: the day the change took effect (`at` is when it was recorded).
                    "effective_on": c.effective_on.clone().unwrap_or_else(|| c.at.get(..10).unwrap_or_default().to_string()),
                    "changes": match (&c.before, &c.after) {
                        (Some(b), Some(a)) => serde_json::to_value(kamkor_domain::records::diff(b, a)).unwrap_or(Value::Null),
                        _ => Value::Null,
                    },
                })
            })
            .collect(),
    )
}

async fn search_persons(
    State(s): State<AppState>,
    auth: ApiAuth,
    Query(q): Query<PersonSearch>,
) -> ApiResult {
    let found = s.app.search_persons(&auth.ctx, &q).await.map_err(err)?;
    // Nothing in the scope for an exact national identifier: say whether the user may break
    // the glass for a record elsewhere (POST /break-glass with the identifier and a reason).
    let break_glass = if found.hits.is_empty() && !q.q.trim().is_empty() {
        s.app
            .glass_candidate(&auth.ctx, q.q.trim())
            .await
            .map_err(err)?
            .is_some()
    } else {
        false
    };
    let items: Vec<Value> = found
        .hits
        .iter()
        .map(|h| {
            let mut v = person_json(&h.row);
            if let (Value::Object(m), Some(x)) = (&mut v, &h.matched) {
                m.insert("match".into(), match_json(x));
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "items": items,
        "page": q.page.max(0),
        "more": found.more,
        "ranked": found.ranked,
        "break_glass_possible": break_glass,
    }))
    .into_response())
}

/// The evidence that two records are one person.
pub fn evidence_json(e: &kamkor_domain::duplicates::Evidence) -> Value {
    json!({
        "score": (e.score * 1000.0).round() / 1000.0,
        "name": (e.name * 1000.0).round() / 1000.0,
        "birth_date": e.birth_date.map(|d| d.code()),
        "national_id": e.national_id.map(|m| m.code()),
        "sex_differs": e.sex_differs,
    })
}

/// Why a person answered a search: the score and each field's evidence.
pub fn match_json(m: &kamkor_app::Matched) -> Value {
    json!({
        "score": (m.score * 1000.0).round() / 1000.0,
        "name": m.name.map(|x| (x * 1000.0).round() / 1000.0),
        "birth_date": m.date.map(|d| d.code()),
        "national_id": m.id_exact.map(|e| if e { "exact" } else { "one_digit_off" }),
    })
}

async fn register_person(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(r): JsonBody<ChildRegistration>,
) -> ApiResult {
    let reg = s.app.register_child(&auth.ctx, &r).await.map_err(err)?;
    Ok((StatusCode::CREATED, Json(json!(reg))).into_response())
}

async fn person(State(s): State<AppState>, auth: ApiAuth, Path(id): Path<String>) -> ApiResult {
    let id = Uuid::parse_str(&id).map_err(|_| err(AppError::NotFound))?;
    let card = s.app.person_card(&auth.ctx, id).await.map_err(err)?;
    Ok(Json(json!({
        "person": person_json(&card.person),
        // Open through break-the-glass: read-only until then.
        "glass": card.glass.as_ref().map(|g| json!({"expires_at": g.expires_at, "read_only": true})),
        "relatives": card.relatives.iter().map(|(r, p)| json!({
            "relation_id": r.id, "relation_kind": r.data.relation_kind, "relative_status": r.data.relative_status,
            "note": r.data.note, "person": person_json(p),
        })).collect::<Vec<_>>(),
        "relative_of": card.relative_of.iter().map(|(r, p)| json!({
            "relation_kind": r.data.relation_kind, "relative_status": r.data.relative_status, "person": person_json(p),
        })).collect::<Vec<_>>(),
        "families": card.families.iter().map(family_json).collect::<Vec<_>>(),
        "cases": card.cases.iter().map(case_json).collect::<Vec<_>>(),
        "history": history_json(&card.history),
        // Merged into another record (read-only), and the records merged into this one.
        "merged_into": card.merged_into,
        "merged": card.merged.iter().map(person_json).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct UpdatePerson {
    version: i64,
    person: PersonDraft,
    /// The day the changes took effect (seed 000 §20); empty or absent: today.
    #[serde(default)]
    effective_on: Option<String>,
}

async fn update_person(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<UpdatePerson>,
) -> ApiResult {
    let id = Uuid::parse_str(&id).map_err(|_| err(AppError::NotFound))?;
    let mut person = b.person;
    if let Some(day) = b.effective_on {
        person.effective_on = day;
    }
    let v = s
        .app
        .update_person(&auth.ctx, id, b.version, &person)
        .await
        .map_err(err)?;
    Ok(Json(json!({"id": id, "version": v})).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FamilySearch {
    name: String,
}

async fn search_families(
    State(s): State<AppState>,
    auth: ApiAuth,
    Query(q): Query<FamilySearch>,
) -> ApiResult {
    let rows = s
        .app
        .search_families(&auth.ctx, &q.name)
        .await
        .map_err(err)?;
    Ok(Json(json!({"items": rows.iter().map(family_json).collect::<Vec<_>>()})).into_response())
}

async fn register_family(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(r): JsonBody<FamilyRegistration>,
) -> ApiResult {
    let id = s.app.register_family(&auth.ctx, &r).await.map_err(err)?;
    Ok((StatusCode::CREATED, Json(json!({"family_id": id}))).into_response())
}

async fn family(State(s): State<AppState>, auth: ApiAuth, Path(id): Path<String>) -> ApiResult {
    let id = Uuid::parse_str(&id).map_err(|_| err(AppError::NotFound))?;
    let card = s.app.family_card(&auth.ctx, id).await.map_err(err)?;
    Ok(Json(json!({
        "family": family_json(&card.family),
        "members": card.members.iter().map(|(role, p)| json!({"role": role, "person": person_json(p)})).collect::<Vec<_>>(),
        "cases": card.cases.iter().map(case_json).collect::<Vec<_>>(),
        "history": history_json(&card.history),
    }))
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CaseList {
    status: String,
    mine: bool,
    page: i64,
}

async fn list_cases(
    State(s): State<AppState>,
    auth: ApiAuth,
    Query(q): Query<CaseList>,
) -> ApiResult {
    let status = if q.status.is_empty() {
        None
    } else {
        Some(CaseStatus::parse(&q.status).ok_or_else(|| {
            error_json(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_code",
                Lang::Ru,
                Some("status"),
            )
        })?)
    };
    let rows = s
        .app
        .list_cases(&auth.ctx, status, q.mine, q.page)
        .await
        .map_err(err)?;
    let more = rows.len() as i64 > kamkor_app::PAGE_SIZE;
    let items: Vec<Value> = rows
        .iter()
        .take(kamkor_app::PAGE_SIZE as usize)
        .map(case_json)
        .collect();
    Ok(Json(json!({"items": items, "page": q.page.max(0), "more": more})).into_response())
}

async fn open_case(
    State(s): State<AppState>,
    auth: ApiAuth,
    JsonBody(d): JsonBody<CaseDraft>,
) -> ApiResult {
    let c = s.app.open_case(&auth.ctx, &d).await.map_err(err)?;
    Ok((StatusCode::CREATED, Json(case_json(&c))).into_response())
}

async fn case(State(s): State<AppState>, auth: ApiAuth, Path(id): Path<String>) -> ApiResult {
    let id = Uuid::parse_str(&id).map_err(|_| err(AppError::NotFound))?;
    let card = s.app.case_card(&auth.ctx, id).await.map_err(err)?;
    Ok(Json(json!({
        "case": case_json(&card.case),
        "subject_person": card.subject_person.as_ref().map(person_json),
        "subject_family": card.subject_family.as_ref().map(family_json),
        "history": history_json(&card.history),
    }))
    .into_response())
}

#[cfg(test)]
mod rejection_tests {
    use super::rejection_detail;

    #[test]
    fn rejection_details_never_echo_values() {
        let (f, d) = rejection_detail(
            "Failed to deserialize the JSON body into the target type: version: invalid type: string \"Сидоров 10806202500001\", expected i64 at line 1 column 40",
        );
        assert_eq!(f.as_deref(), Some("version"));
        assert!(!d.contains("Сидоров") && !d.contains("1080620"), "{d}");
        let (f, d) = rejection_detail(
            "Failed to parse the request body as JSON: expected value at line 1 column 7",
        );
        assert_eq!(f, None);
        assert_eq!(d, "not valid JSON (line 1 column 7)");
    }
}
