//! HTTP: server-rendered HTML pages and the JSON API under `/api/v1`. Handlers are thin:
//! parse, call one use case of `kamkor-app`, render.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use kamkor_app::{App, AppError, Ctx};
use kamkor_store::SessionRow;

mod account_pages;
mod admin_pages;
pub mod api;
mod api_access;
mod api_casework;
mod api_ledger;
mod audit_pages;
mod case_pages;
mod html;
pub mod i18n;
mod merge_pages;
mod pages;
mod print_pages;

use i18n::Lang;

/// Largest request body we accept (forms and JSON): far above any real form, far below harm.
pub const BODY_LIMIT: usize = 256 * 1024;

pub const SESSION_COOKIE: &str = "kamkor_session";

#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// Mark cookies `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    /// The reverse proxies whose `X-Forwarded-For` is believed (seed 004 §9: the allowed
    /// networks are checked on the real client address). Nobody else's is.
    pub trusted_proxies: Vec<IpAddr>,
}

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub config: Arc<WebConfig>,
}

/// The whole HTTP surface.
pub fn router(app: App, config: WebConfig) -> Router {
    let state = AppState {
        app,
        config: Arc::new(config),
    };
    Router::new()
        .route("/health", get(health))
        .route("/static/app.css", get(css))
        .merge(account_pages::routes())
        .merge(pages::routes())
        .merge(case_pages::routes())
        .merge(admin_pages::routes())
        .merge(audit_pages::routes())
        .merge(print_pages::routes())
        .merge(merge_pages::routes())
        .nest("/api/v1", api::routes())
        .with_state(state)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::from_fn(security_headers))
}

async fn health(State(s): State<AppState>) -> Response {
    match s.app.store.schema_version().await {
        Ok(v) => axum::Json(serde_json::json!({
            "status": "ok",
            "engine": s.app.store.engine().name(),
            "schema_version": v,
            "profile": s.app.profile.meta.name,
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "unavailable", "engine": s.app.store.engine().name()})),
            )
                .into_response()
        }
    }
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/app.css"),
    )
        .into_response()
}

/// Security headers on every answer: no inline script, no framing, no referrer, no sniffing.
/// A form posted to a page from another site. The forms a session protects carry a CSRF
/// token; the login and request-access forms come before any session, so every page form is
/// also refused when the browser says it was sent cross-site (`Sec-Fetch-Site`) or its
/// `Origin` is not this server (login CSRF, security review of issue 3).
fn cross_site_form(req: &Request) -> bool {
    if req.method() != axum::http::Method::POST || req.uri().path().starts_with("/api/") {
        return false;
    }
    let h = req.headers();
    // Browsers that say where a request comes from (all current ones) are believed: only a
    // form of this very site (or one typed by the user) passes, not a sibling subdomain's.
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !(site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"));
    }
    // Older browsers: the Origin must name the host the request was sent to (as the browser
    // or a proxy in front says); no Origin at all is a client that is not a browser.
    let Some(origin) = h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    let named = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !origin_host.is_empty() && v.eq_ignore_ascii_case(origin_host))
    };
    !(named("host") || named("x-forwarded-host"))
}

async fn security_headers(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    if cross_site_form(&req) {
        return security_headers_on(pages::cross_site_refused());
    }
    let res = next.run(req).await;
    let res = if api {
        // Errors raised by layers (the body limit) keep the API's JSON error format.
        api::json_body_limit(res)
    } else {
        res
    };
    security_headers_on(res)
}

fn security_headers_on(mut res: Response) -> Response {
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-frame-options", "DENY");
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages hold personal data: never keep them in shared or browser caches.
        set(h, "cache-control", "no-store");
    }
    res
}

fn cookie_token(parts: &Parts) -> Option<String> {
    let cookies = parts.headers.get_all(header::COOKIE);
    for v in cookies {
        let Ok(s) = v.to_str() else { continue };
        for c in s.split(';') {
            if let Some((k, val)) = c.trim().split_once('=')
                && k == SESSION_COOKIE
                && !val.is_empty()
                && val.len() <= 128
            {
                return Some(val.to_string());
            }
        }
    }
    None
}

fn bearer_token(parts: &Parts) -> Option<String> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v.strip_prefix("Bearer ")?.trim();
    (!t.is_empty() && t.len() <= 128).then(|| t.to_string())
}

/// The client's address: the TCP peer, or — only when the peer is a configured trusted proxy —
/// the last address that proxy appended to `X-Forwarded-For`.
pub fn client_ip(parts: &Parts, config: &WebConfig) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if !config.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty());
    match forwarded {
        // A proxy that forwards garbage gets no address at all: networks then refuse.
        Some(v) => v.parse().ok(),
        None => Some(peer),
    }
}

fn request_id(parts: &Parts) -> String {
    parts
        .headers
        .get("x-road-id")
        .or_else(|| parts.headers.get("x-request-id"))
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A logged-in user of the HTML pages. Without a valid session, the page answers with a
/// redirect to the login form.
pub struct PageAuth {
    pub ctx: Ctx,
    pub session: SessionRow,
    pub token: String,
}

impl FromRequestParts<AppState> for PageAuth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie_token(parts) else {
            return Err(Redirect::to("/login").into_response());
        };
        let ip = client_ip(parts, &state.config);
        match state
            .app
            .session_ctx(&token, Some(request_id(parts)), ip)
            .await
        {
            Ok((ctx, session)) => {
                // After a one-time password, nothing but the password page until it is changed.
                let path = parts.uri.path();
                if ctx.user.must_change_password && path != "/password" && path != "/logout" {
                    return Err(Redirect::to("/password").into_response());
                }
                // Administrators and operators enrol a second factor before anything else.
                if !ctx.user.must_change_password
                    && state.app.second_factor_required(&ctx.user)
                    && path != "/account/second-factor"
                    && path != "/logout"
                {
                    return Err(Redirect::to("/account/second-factor").into_response());
                }
                Ok(PageAuth {
                    ctx,
                    session,
                    token,
                })
            }
            Err(AppError::Unauthenticated) => Err((
                [(
                    header::SET_COOKIE,
                    clear_cookie(state.config.secure_cookies),
                )],
                Redirect::to("/login?ended=1"),
            )
                .into_response()),
            Err(e) => Err(pages::error_page(Lang::Ru, &e)),
        }
    }
}

/// A caller of the JSON API: a bearer token, or the session cookie with the CSRF header on
/// state-changing requests. Without one, 401 with the JSON error.
pub struct ApiAuth {
    pub ctx: Ctx,
    pub token: String,
}

impl FromRequestParts<AppState> for ApiAuth {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = client_ip(parts, &state.config);
        let (token, via_cookie) = match (bearer_token(parts), cookie_token(parts)) {
            (Some(t), _) => (t, false),
            (None, Some(t)) => (t, true),
            (None, None) => return Err(api::error_response(Lang::Ru, &AppError::Unauthenticated)),
        };
        // External systems (seed 000 §13.8, seed 004 §14) carry a client token; the
        // X-Road-Client header, when present, names the calling subsystem in the log.
        if !via_cookie && token.starts_with("kkc_") {
            let rid = match parts
                .headers
                .get("x-road-client")
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 200 && v.chars().all(|c| c.is_ascii_graphic()))
            {
                Some(client) => format!("{client} {}", request_id(parts)),
                None => request_id(parts),
            };
            let ctx = state
                .app
                .client_ctx(&token, Some(rid), ip)
                .await
                .map_err(|e| api::error_response(Lang::Ru, &e))?;
            return Ok(ApiAuth { ctx, token });
        }
        let (ctx, session) = state
            .app
            .session_ctx(&token, Some(request_id(parts)), ip)
            .await
            .map_err(|e| api::error_response(Lang::Ru, &e))?;
        // A one-time password opens nothing but the password change (and /me, /logout). Inside
        // the nested API router the path has lost its /api/v1 prefix.
        let path = parts.uri.path();
        if ctx.user.must_change_password
            && !matches!(
                path,
                "/password"
                    | "/me"
                    | "/logout"
                    | "/api/v1/password"
                    | "/api/v1/me"
                    | "/api/v1/logout"
            )
        {
            return Err(api::error_json(
                StatusCode::FORBIDDEN,
                "password_change_required",
                Lang::Ru,
                None,
            ));
        }
        if !ctx.user.must_change_password
            && state.app.second_factor_required(&ctx.user)
            && !matches!(
                path,
                "/me"
                    | "/logout"
                    | "/second-factor"
                    | "/api/v1/me"
                    | "/api/v1/logout"
                    | "/api/v1/second-factor"
            )
        {
            return Err(api::error_json(
                StatusCode::FORBIDDEN,
                "second_factor_enrolment_required",
                Lang::Ru,
                None,
            ));
        }
        if via_cookie && !matches!(parts.method, Method::GET | Method::HEAD) {
            let header = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            if header != Some(session.csrf_token.as_str()) {
                return Err(api::error_json(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    Lang::Ru,
                    None,
                ));
            }
        }
        Ok(ApiAuth { ctx, token })
    }
}

/// The client's address (see [`client_ip`]), for handlers without a session (login).
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, &state.config)))
    }
}
