//! Failed logins wait the same growing delay whether the login exists or not: the answer's
//! timing must not tell which accounts exist (security review of issue 3).

use std::time::Duration;

use kamkor_app::{App, AppConfig, LoginError, NewUser};
use kamkor_domain::policy::Role;
use kamkor_store::Store;

#[tokio::test]
async fn unknown_and_existing_logins_wait_alike() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open_sqlite_dir(dir.path()).await.expect("sqlite");
    store.migrate().await.expect("migrate");
    let profile = kamkor_app::load_profile(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/tzhs-kg"),
    )
    .expect("profile");
    let unit = Duration::from_millis(150);
    let app = App::new(
        store,
        profile,
        AppConfig {
            login_delay_unit: unit,
            ..AppConfig::default()
        },
    );
    app.bind_profile().await.expect("bind");
    app.create_user(
        "test",
        &NewUser {
            login: "asanova.a".into(),
            full_name: "Асанова Айгуль".into(),
            roles: vec![Role::Specialist],
            organisation: String::new(),
            scope_territory: None,
            valid_from: kamkor_store::now_utc().date(),
            valid_until: None,
            password: Some("correct horse battery staple".into()),
        },
    )
    .await
    .expect("user");
    for login in ["asanova.a", "nosuch.user"] {
        let mut waits = Vec::new();
        for n in 0..4 {
            let started = std::time::Instant::now();
            let r = app.login(login, &format!("wrong-{n}"), None, None).await;
            assert!(matches!(r, Err(LoginError::BadCredentials)));
            waits.push(started.elapsed());
        }
        // The 3rd and 4th failures wait at least 1 and 2 units, whether the login exists or
        // not (only lower bounds: a slow machine adds time, never removes it).
        assert!(waits[2] >= unit, "{login}: {waits:?}");
        assert!(waits[3] >= unit * 2, "{login}: {waits:?}");
    }
}
