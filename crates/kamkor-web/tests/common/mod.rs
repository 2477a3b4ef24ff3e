//! Test harness: the real router over a real database (SQLite always; PostgreSQL too when
//! `KAMKOR_TEST_PG` is set), driven request by request.
#![allow(dead_code)]

use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use kamkor_app::{App, AppConfig, NewUser};
use kamkor_domain::policy::Role;
use kamkor_store::Store;
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

pub struct Env {
    pub engine: &'static str,
    pub app: App,
    pub router: Router,
    _dir: Option<tempfile::TempDir>,
}

pub fn profile(name: &str) -> kamkor_domain::profile::Profile {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles")
        .join(name);
    kamkor_app::load_profile(&dir).expect("profile loads")
}

pub async fn envs(profile_name: &str) -> Vec<Env> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_sqlite_dir(dir.path()).await.expect("sqlite");
    out.push(make("sqlite", store, profile_name, Some(dir)).await);
    if let Ok(url) = std::env::var("KAMKOR_TEST_PG")
        && !url.is_empty()
    {
        let schema = format!("t_{}", Uuid::now_v7().simple());
        let store = Store::open_postgres_schema(&url, &schema)
            .await
            .expect("postgres");
        out.push(make("postgres", store, profile_name, None).await);
    }
    out
}

async fn make(
    engine: &'static str,
    store: Store,
    profile_name: &str,
    dir: Option<tempfile::TempDir>,
) -> Env {
    store.migrate().await.expect("migrate");
    // No real waiting after failed logins in tests; the count and the lock still apply.
    let config = AppConfig {
        login_delay_unit: std::time::Duration::ZERO,
        ..AppConfig::default()
    };
    let app = App::new(store, profile(profile_name), config);
    app.bind_profile().await.expect("bind profile");
    let router = kamkor_web::router(app.clone(), kamkor_web::WebConfig::default());
    Env {
        engine,
        app,
        router,
        _dir: dir,
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    /// The redirect target without its query (`?saved=…` confirmations).
    pub fn location(&self) -> String {
        self.location_full()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    pub fn location_full(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

impl Env {
    /// A specialist created the way an administrator does it: with a one-time password,
    /// which is returned.
    pub async fn user_with_one_time_password(&self, login: &str) -> String {
        let today = kamkor_store::now_utc().date();
        let (_, otp) = self
            .app
            .create_user(
                "test",
                &NewUser {
                    login: login.into(),
                    full_name: format!("Новый {login}"),
                    roles: vec![Role::Specialist],
                    organisation: String::new(),
                    scope_territory: None,
                    valid_from: today,
                    valid_until: None,
                    password: None,
                },
            )
            .await
            .expect("create user");
        otp
    }

    pub async fn user(&self, login: &str, roles: &[Role], scope: Option<&str>) -> String {
        let today = kamkor_store::now_utc().date();
        let (_, pw) = self
            .app
            .create_user(
                "test",
                &NewUser {
                    login: login.into(),
                    full_name: format!("Тест {login}"),
                    roles: roles.to_vec(),
                    organisation: String::new(),
                    scope_territory: scope.map(str::to_string),
                    valid_from: today,
                    valid_until: Some(today + time::Duration::days(30)),
                    password: Some("correct horse battery staple".into()),
                },
            )
            .await
            .expect("create user");
        pw
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router answers");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut b = Request::get(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.send(b.body(Body::empty()).expect("request")).await
    }

    pub async fn json(&self, method: &str, path: &str, token: Option<&str>, body: Value) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        self.send(b.body(Body::from(body.to_string())).expect("request"))
            .await
    }

    /// Log in over the API; returns the bearer token.
    pub async fn api_login(&self, login: &str) -> String {
        let r = self
            .json(
                "POST",
                "/api/v1/login",
                None,
                serde_json::json!({"login": login, "password": "correct horse battery staple"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}: login failed: {}",
            self.engine,
            r.body
        );
        r.json()["token"].as_str().expect("token").to_string()
    }

    /// Log in through the HTML form; returns the session cookie and the CSRF token.
    pub async fn page_login(&self, login: &str) -> (String, String) {
        let r = self
            .form(
                "/login",
                None,
                &[
                    ("login", login),
                    ("password", "correct horse battery staple"),
                ],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "{}: {}",
            self.engine,
            r.body
        );
        let cookie = r
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_string();
        let home = self.page("/", &cookie).await;
        let csrf = home
            .body
            .split("name=\"_csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("csrf token on the page")
            .to_string();
        (cookie, csrf)
    }

    pub async fn page(&self, path: &str, cookie: &str) -> Resp {
        self.send(
            Request::get(path)
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    pub async fn form(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Resp {
        let body = serde_urlencoded::to_string(fields).expect("encode form");
        let mut b =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::from(body)).expect("request")).await
    }
}

impl Env {
    /// Replay the ledger against the state tables: whatever the test did through the HTTP
    /// application must leave them equal (issue 4 item 3).
    pub async fn assert_ledger_holds(&self) {
        let r = kamkor_app::ledger::verify_ledger(&self.app.store, &[], &self.app.ledger_origin())
            .await
            .expect("verify runs");
        if let Err(p) = r {
            panic!("{}: the ledger does not hold: {p}", self.engine);
        }
    }
}
