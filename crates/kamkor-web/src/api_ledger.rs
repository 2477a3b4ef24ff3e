//! The ledger's proofs over the API (issue 4 item 4): the latest signed checkpoint, an
//! inclusion proof for one entry, a consistency proof between two checkpoints. Auditors and
//! administrators only; another agency checks what it is given offline with
//! `kamkor ledger verify-proof` and the installation's public keys.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kamkor_app::AppError;
use kamkor_domain::records::Problems;
use serde::Deserialize;

use crate::api::error_response;
use crate::i18n::Lang;
use crate::{ApiAuth, AppState};

type ApiResult = Result<Response, Response>;

fn err(e: AppError) -> Response {
    error_response(Lang::Ru, &e)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ledger/checkpoint", get(checkpoint))
        .route("/ledger/entries/{pos}/proof", get(inclusion))
        .route("/ledger/consistency", get(consistency))
}

/// A whole number from a query or path, or a 400 naming the field.
fn number(field: &str, v: &str) -> Result<u64, AppError> {
    v.trim().parse::<u64>().map_err(|_| {
        let mut p = Problems::default();
        p.push(field, "not_a_number");
        AppError::Invalid(p)
    })
}

fn optional(field: &str, v: &str) -> Result<Option<u64>, AppError> {
    if v.trim().is_empty() {
        Ok(None)
    } else {
        number(field, v).map(Some)
    }
}

async fn checkpoint(State(s): State<AppState>, auth: ApiAuth) -> ApiResult {
    let cp = s.app.latest_checkpoint(&auth.ctx).await.map_err(err)?;
    Ok(Json(cp).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SizeQuery {
    size: String,
}

async fn inclusion(
    State(s): State<AppState>,
    auth: ApiAuth,
    Path(pos): Path<String>,
    Query(q): Query<SizeQuery>,
) -> ApiResult {
    let pos = number("pos", &pos).map_err(err)?;
    let size = optional("size", &q.size).map_err(err)?;
    let proof = s
        .app
        .inclusion_proof(&auth.ctx, pos, size)
        .await
        .map_err(err)?;
    Ok(Json(proof).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConsistencyQuery {
    first: String,
    second: String,
}

async fn consistency(
    State(s): State<AppState>,
    auth: ApiAuth,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult {
    let first = number("first", &q.first).map_err(err)?;
    let second = optional("second", &q.second).map_err(err)?;
    let proof = s
        .app
        .consistency_proof(&auth.ctx, first, second)
        .await
        .map_err(err)?;
    Ok(Json(proof).into_response())
}
