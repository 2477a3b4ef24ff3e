//! The access matrix (issue 3, "How it will be checked"): every role × (record in the own
//! territory, in a sibling territory, in the parent territory) × (read, search, create,
//! update, update a section owned by another agency, export, administer), generated from one
//! table and run through the real HTTP API against a real database (SQLite, and PostgreSQL
//! when `KAMKOR_TEST_PG` is set). Plus the refusals around it: expired and suspended accounts,
//! wrong second-factor codes, CSRF-less posts, guessed ids, external clients, networks and
//! break-the-glass.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::Env;
use kamkor_app::NewUser;
use kamkor_domain::policy::Role;
use serde_json::{Value, json};

const PW: &str = "correct horse battery staple";
/// reentry-yugra: the okrug, and two of its municipal districts.
const PARENT: &str = "71800000";
const OWN: &str = "71811000";
const SIBLING: &str = "71812000";
/// The municipality of the own district, and agencies at okrug level.
const OWN_OMSU: &str = "omsu-71811000";
const POLICE: &str = "umvd-yugra";
const PRISON: &str = "ufsin-yugra";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Own,
    Sibling,
    Parent,
}

impl Place {
    fn territory(self) -> &'static str {
        match self {
            Place::Own => OWN,
            Place::Sibling => SIBLING,
            Place::Parent => PARENT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Read,
    Search,
    Create,
    Update,
    /// Edit the prison service's section (owned by another agency for every role below).
    ForeignSection,
    Export,
    Administer,
}

/// What the API must answer. `Hits(n)`: 200 with n search results.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    Ok,
    Created,
    Hits(usize),
    /// 404 `not_found`: the same answer as for a record that does not exist.
    Missing,
    /// 403 with this error code.
    Denied(&'static str),
}

use Op::*;
use Want::*;

const FORBIDDEN: Want = Denied("forbidden");

/// The one table: for each role, the answer for each operation in (own, sibling, parent).
fn expected(role: Role, op: Op) -> [Want; 3] {
    let scoped_read = [Ok, Missing, Missing];
    let scoped_hits = [Hits(1), Hits(0), Hits(0)];
    let create_own = [Created, Denied("out_of_scope"), Denied("out_of_scope")];
    let all = |w: Want| [w, w, w];
    match (role, op) {
        (Role::Specialist | Role::Supervisor, Read | Update | Export) => scoped_read,
        (Role::Specialist | Role::Supervisor, Search) => scoped_hits,
        (Role::Specialist | Role::Supervisor, Create) => create_own,
        // The prison service's section is read by all and edited by the prison service only.
        (Role::Specialist | Role::Supervisor | Role::AgencySpecialist, ForeignSection) => {
            [Denied("section_not_owned"), Missing, Missing]
        }
        (Role::AgencySpecialist, Read) => scoped_read,
        (Role::AgencySpecialist, Search) => scoped_hits,
        (Role::CentralViewer, Read | Export) => all(Ok),
        (Role::CentralViewer, Search) => all(Hits(1)),
        (Role::TerritorialViewer, Read | Export) => scoped_read,
        (Role::TerritorialViewer, Search) => scoped_hits,
        (Role::Administrator, Administer) => create_own,
        _ => all(FORBIDDEN),
    }
}

fn snils(n: u32) -> String {
    let digits: Vec<u32> = format!("{:09}", 100_000_000 + n)
        .chars()
        .map(|c| c.to_digit(10).unwrap())
        .collect();
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| d * (9 - i as u32))
        .sum();
    let check = match sum {
        s if s < 100 => s,
        100 | 101 => 0,
        s => {
            let r = s % 101;
            if r == 100 { 0 } else { r }
        }
    };
    format!(
        "{}{:02}",
        digits.iter().map(|d| d.to_string()).collect::<String>(),
        check
    )
}

fn person_body(nid: &str, territory: &str) -> Value {
    json!({
        "person": {
            "surname": "Петров", "given_name": "Иван", "patronymic": "Сергеевич", "sex": "male",
            "birth_date": "1980-02-03", "national_id": nid, "citizenship": "RU",
            "residence_territory": territory, "address": "ул. Мира, 1",
            "extra": {"release_date": "2026-10-01", "institution": "ИК-11"},
        },
        "relatives": [],
    })
}

/// Create an account (with a second factor when the role requires one) and log in over the
/// API; returns the bearer token.
async fn login_as(e: &Env, login: &str, roles: &[Role], scope: &str, org: &str) -> String {
    let today = kamkor_store::now_utc().date();
    e.app
        .create_user(
            "test",
            &NewUser {
                login: login.into(),
                full_name: format!("Тест {login}"),
                roles: roles.to_vec(),
                organisation: org.into(),
                scope_territory: Some(scope.into()),
                valid_from: today,
                valid_until: Some(today + time::Duration::days(30)),
                password: Some(PW.into()),
            },
        )
        .await
        .expect("create user");
    let code = if roles
        .iter()
        .any(|r| matches!(r, Role::Administrator | Role::Operator))
    {
        Some(enrol_second_factor(e, login).await)
    } else {
        None
    };
    let r = e
        .json(
            "POST",
            "/api/v1/login",
            None,
            json!({"login": login, "password": PW, "code": code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
    r.json()["token"].as_str().unwrap().to_string()
}

/// Give the account a TOTP secret; returns the current code.
async fn enrol_second_factor(e: &Env, login: &str) -> String {
    let secret = kamkor_app::totp::new_secret().unwrap();
    let before = e.app.store.user_by_login(login).await.unwrap().unwrap();
    let after = kamkor_store::UserRow {
        totp_secret: Some(secret.clone()),
        totp_last_step: None,
        ..before.clone()
    };
    let mut tx = e.app.store.begin("test", None).await.unwrap();
    tx.update_user(&before, &after, "second_factor_enrol")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    current_code(&secret)
}

fn current_code(secret: &str) -> String {
    kamkor_app::totp::code_at(secret, kamkor_app::totp::step_of(kamkor_store::now_utc())).unwrap()
}

/// One subject per place, registered by a supervisor of the whole okrug from the prison
/// service (who owns the release section). Returns (id, national id) per place.
async fn records(e: &Env) -> Vec<(Place, String, String)> {
    let t = login_as(e, "root", &[Role::Supervisor], PARENT, PRISON).await;
    let mut out = Vec::new();
    for (i, place) in [Place::Own, Place::Sibling, Place::Parent]
        .into_iter()
        .enumerate()
    {
        let nid = snils(1000 + i as u32);
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&t),
                person_body(&nid, place.territory()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", e.engine, r.body);
        out.push((
            place,
            r.json()["person_id"].as_str().unwrap().to_string(),
            nid,
        ));
    }
    out
}

fn classify(status: StatusCode, body: &str, op: Op) -> Want {
    let code = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
    match status {
        StatusCode::OK if op == Search => Hits(
            serde_json::from_str::<Value>(body).unwrap()["items"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(99),
        ),
        StatusCode::OK => Ok,
        StatusCode::CREATED => Created,
        StatusCode::NOT_FOUND if code.as_deref() == Some("not_found") => Missing,
        StatusCode::FORBIDDEN => match code.as_deref() {
            Some("forbidden") => FORBIDDEN,
            Some("section_not_owned") => Denied("section_not_owned"),
            Some("out_of_scope") => Denied("out_of_scope"),
            other => panic!("unexpected 403 code {other:?}: {body}"),
        },
        other => panic!("unexpected status {other}: {body}"),
    }
}

async fn run(e: &Env, token: &str, op: Op, place: Place, id: &str, nid: &str, n: &mut u32) -> Want {
    *n += 1;
    let r = match op {
        Read => e.get(&format!("/api/v1/persons/{id}"), Some(token)).await,
        Search => {
            e.get(&format!("/api/v1/persons?q={nid}"), Some(token))
                .await
        }
        Create => {
            // Without the prison service's section, which only that service fills (seed 004
            // §11; a new record carrying it is refused with `section_not_owned`).
            let mut body = person_body(&snils(5000 + *n), place.territory());
            body["person"]["extra"] = json!({});
            e.json("POST", "/api/v1/persons", Some(token), body).await
        }
        Update => {
            let mut p = person_body(nid, place.territory())["person"].clone();
            p["address"] = json!(format!("ул. Мира, {n}"));
            // The version is read by the test's own supervisor-of-everything, not the caller.
            let version = e
                .app
                .store
                .person(uuid::Uuid::parse_str(id).unwrap())
                .await
                .unwrap()
                .unwrap()
                .version;
            e.json(
                "PUT",
                &format!("/api/v1/persons/{id}"),
                Some(token),
                json!({"version": version, "person": p}),
            )
            .await
        }
        ForeignSection => {
            let version = e
                .app
                .store
                .person(uuid::Uuid::parse_str(id).unwrap())
                .await
                .unwrap()
                .unwrap()
                .version;
            e.json(
                "PUT",
                &format!("/api/v1/persons/{id}/sections/prison_service"),
                Some(token),
                json!({"version": version, "values": {"release_date": "2026-10-02", "institution": "ИК-2"}}),
            )
            .await
        }
        Export => {
            e.get(&format!("/api/v1/persons/{id}/export"), Some(token))
                .await
        }
        Administer => {
            e.json(
                "POST",
                "/api/v1/admin/users",
                Some(token),
                json!({
                    "full_name": format!("Сидорова Анна {n}"), "national_id": snils(8000 + *n),
                    "position": "специалист", "organisation": OWN_OMSU, "org_inn": "8601010390",
                    "org_address": "г. Белоярский", "territorial_unit": OWN,
                    "roles": ["specialist"], "scope": place.territory(),
                    "valid_until": "2027-06-30",
                }),
            )
            .await
        }
    };
    classify(r.status, &r.body, op)
}

#[tokio::test]
async fn access_matrix_roles_by_territory_by_operation_over_http() {
    let roles: [(Role, &str, &str); 8] = [
        (Role::Specialist, "m_spec", OWN_OMSU),
        (Role::Supervisor, "m_sup", OWN_OMSU),
        (Role::AgencySpecialist, "m_police", POLICE),
        (Role::CentralViewer, "m_central", OWN_OMSU),
        (Role::TerritorialViewer, "m_terr", OWN_OMSU),
        (Role::Auditor, "m_audit", OWN_OMSU),
        (Role::Administrator, "m_admin", OWN_OMSU),
        (Role::Operator, "m_oper", OWN_OMSU),
    ];
    for e in common::envs("reentry-yugra").await {
        let recs = records(&e).await;
        let mut n = 0;
        let mut failures = Vec::new();
        for (role, login, org) in roles {
            let scope = if role == Role::CentralViewer {
                PARENT
            } else {
                OWN
            };
            let token = login_as(&e, login, &[role], scope, org).await;
            for op in [
                Read,
                Search,
                Create,
                Update,
                ForeignSection,
                Export,
                Administer,
            ] {
                let want = expected(role, op);
                for (i, (place, id, nid)) in recs.iter().enumerate() {
                    let got = run(&e, &token, op, *place, id, nid, &mut n).await;
                    if got != want[i] {
                        failures.push(format!(
                            "{role:?} {op:?} {place:?}: want {:?}, got {got:?}",
                            want[i]
                        ));
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{}: {} cells differ:\n{}",
            e.engine,
            failures.len(),
            failures.join("\n")
        );
        // Every refusal above is in the change log with its actor.
        let denials = e.app.store.changes_by_action("denied", 1000).await.unwrap();
        assert!(denials.len() > 50, "{}: {}", e.engine, denials.len());
        assert!(denials.iter().all(|d| !d.actor.is_empty()));
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn access_matrix_guessed_ids_answer_like_missing_ones() {
    for e in common::envs("reentry-yugra").await {
        let recs = records(&e).await;
        let spec = login_as(&e, "g_spec", &[Role::Specialist], OWN, OWN_OMSU).await;
        let police = login_as(&e, "g_police", &[Role::AgencySpecialist], OWN, POLICE).await;
        let missing = uuid::Uuid::now_v7().to_string();
        let sibling = &recs[1].1;
        for path in ["", "/export"] {
            let a = e
                .get(&format!("/api/v1/persons/{sibling}{path}"), Some(&spec))
                .await;
            let b = e
                .get(&format!("/api/v1/persons/{missing}{path}"), Some(&spec))
                .await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", e.engine);
            assert_eq!((a.status, a.body.clone()), (b.status, b.body), "{path}");
        }
        // A role that may never update is refused alike for existing and missing records.
        let body = json!({"version": 1, "person": person_body(&snils(1), OWN)["person"]});
        let a = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{sibling}"),
                Some(&police),
                body.clone(),
            )
            .await;
        let b = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{missing}"),
                Some(&police),
                body,
            )
            .await;
        assert_eq!((a.status, a.body), (b.status, b.body));
        // Families and cases of other territories too.
        for kind in ["families", "cases"] {
            let r = e
                .get(&format!("/api/v1/{kind}/{missing}"), Some(&spec))
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
        }
        // The agency edits its own section.
        let own = &recs[0].1;
        let version = e
            .get(&format!("/api/v1/persons/{own}"), Some(&police))
            .await
            .json()["person"]["version"]
            .as_i64()
            .unwrap();
        let r = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{own}/sections/police"),
                Some(&police),
                json!({"version": version, "values": {"registration_address": "г. Белоярский, ул. Школьная, 3", "administrative_supervision": true}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", e.engine, r.body);
        let p = e
            .get(&format!("/api/v1/persons/{own}"), Some(&spec))
            .await
            .json();
        assert_eq!(
            p["person"]["extra"]["registration_address"],
            "г. Белоярский, ул. Школьная, 3"
        );
        assert_eq!(p["person"]["extra"]["release_date"], "2026-10-01");
        // A specialist's whole-record edit may not change the prison service's section…
        let mut person = p["person"].clone();
        person["extra"]["institution"] = json!("ИК-99");
        let r = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{own}"),
                Some(&spec),
                json!({"version": person["version"], "person": person}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "section_not_owned");
        // …but changes the rest, the foreign section kept as it was.
        let mut person = p["person"].clone();
        person["address"] = json!("ул. Новая, 7");
        person["extra"]
            .as_object_mut()
            .unwrap()
            .remove("institution");
        let r = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{own}"),
                Some(&spec),
                json!({"version": person["version"], "person": person}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let p = e
            .get(&format!("/api/v1/persons/{own}"), Some(&spec))
            .await
            .json();
        assert_eq!(p["person"]["extra"]["institution"], "ИК-11");
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn access_matrix_expired_suspended_wrong_code_and_csrf_are_refused() {
    for e in common::envs("reentry-yugra").await {
        let admin = login_as(&e, "x_admin", &[Role::Administrator], PARENT, OWN_OMSU).await;
        // A second factor: no code, a wrong one, a replayed one.
        let code = enrol_second_factor(&e, "x_admin").await;
        let r = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": "x_admin", "password": PW}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.json()["error"]["code"], "second_factor_required");
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let r = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": "x_admin", "password": PW, "code": wrong}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(r.json()["error"]["code"], "second_factor_wrong");
        let r = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": "x_admin", "password": PW, "code": code}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": "x_admin", "password": PW, "code": code}),
            )
            .await;
        assert_eq!(
            r.json()["error"]["code"],
            "second_factor_wrong",
            "a code works once"
        );
        // An administrator without a second factor can do nothing but enrol.
        e.app
            .create_user(
                "test",
                &NewUser {
                    login: "x_admin2".into(),
                    full_name: "Админ Второй".into(),
                    roles: vec![Role::Administrator],
                    organisation: OWN_OMSU.into(),
                    scope_territory: Some(PARENT.into()),
                    valid_from: kamkor_store::now_utc().date(),
                    valid_until: None,
                    password: Some(PW.into()),
                },
            )
            .await
            .unwrap();
        let t2 = e.api_login("x_admin2").await;
        let r = e.get("/api/v1/admin/users", Some(&t2)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(
            r.json()["error"]["code"],
            "second_factor_enrolment_required"
        );
        let begin = e.get("/api/v1/second-factor", Some(&t2)).await.json();
        let secret = begin["secret"].as_str().unwrap().to_string();
        let r = e
            .json(
                "POST",
                "/api/v1/second-factor",
                Some(&t2),
                json!({"secret": secret, "code": "12"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = e
            .json(
                "POST",
                "/api/v1/second-factor",
                Some(&t2),
                json!({"secret": secret, "code": current_code(&secret)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert_eq!(
            e.get("/api/v1/admin/users", Some(&t2)).await.status,
            StatusCode::OK
        );

        // Register a specialist; suspend: their session ends at once and login is refused.
        let r = e
            .json(
                "POST",
                "/api/v1/admin/users",
                Some(&admin),
                json!({
                    "full_name": "Сидорова Анна Петровна", "national_id": snils(4242),
                    "position": "специалист по социальной работе", "organisation": OWN_OMSU,
                    "org_inn": "8601010390", "org_address": "г. Белоярский",
                    "territorial_unit": OWN, "roles": ["specialist"], "scope": OWN,
                    "valid_until": "2027-06-30",
                }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let user = r.json()["user"].clone();
        let login = user["login"].as_str().unwrap().to_string();
        assert_eq!(login, "sidorova.a");
        let otp = r.json()["one_time_password"].as_str().unwrap().to_string();
        let r = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": login, "password": otp}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let t = r.json()["token"].as_str().unwrap().to_string();
        let new_pw = "весенний ветер над таласом";
        let r = e
            .json(
                "POST",
                "/api/v1/password",
                Some(&t),
                json!({"current": otp, "new": new_pw}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert_eq!(
            e.get("/api/v1/persons", Some(&t)).await.status,
            StatusCode::OK
        );
        let id = user["id"].as_str().unwrap();
        let r = e
            .json(
                "POST",
                &format!("/api/v1/admin/users/{id}/changes"),
                Some(&admin),
                json!({"version": 2, "action": "suspend", "reason": "отпуск по уходу за ребёнком"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.json()["user"]["state"], "suspended");
        assert_eq!(
            e.get("/api/v1/persons", Some(&t)).await.status,
            StatusCode::UNAUTHORIZED
        );
        let r = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": login, "password": new_pw}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json()["error"]["code"], "account_inactive");
        // An administrator may not suspend themself, nor register outside their territory.
        let me = e.get("/api/v1/me", Some(&admin)).await.json();
        let own_card = e
            .get(
                &format!("/api/v1/admin/users/{}", me["id"].as_str().unwrap()),
                Some(&admin),
            )
            .await
            .json();
        let r = e
            .json(
                "POST",
                &format!("/api/v1/admin/users/{}/changes", me["id"].as_str().unwrap()),
                Some(&admin),
                json!({"version": own_card["user"]["version"], "action": "suspend", "reason": "проверка запрета"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["error"]["code"], "own_account");

        // An expired account: refused at login, and its open sessions end.
        let spec = login_as(&e, "x_spec", &[Role::Specialist], OWN, OWN_OMSU).await;
        let before = e.app.store.user_by_login("x_spec").await.unwrap().unwrap();
        let yesterday = kamkor_store::now_utc().date() - time::Duration::days(1);
        let after = kamkor_store::UserRow {
            valid_from: kamkor_domain::records::format_date(yesterday - time::Duration::days(5)),
            valid_until: Some(kamkor_domain::records::format_date(yesterday)),
            ..before.clone()
        };
        let mut tx = e.app.store.begin("test", None).await.unwrap();
        tx.update_user(&before, &after, "update").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            e.get("/api/v1/persons", Some(&spec)).await.status,
            StatusCode::UNAUTHORIZED
        );
        let r = e
            .json(
                "POST",
                "/api/v1/login",
                None,
                json!({"login": "x_spec", "password": PW}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

        // A state-changing call with the session cookie but without the CSRF header.
        let live = login_as(&e, "x_live", &[Role::Specialist], OWN, OWN_OMSU).await;
        let req = Request::post("/api/v1/persons")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::COOKIE, format!("kamkor_session={live}"))
            .body(Body::from(person_body(&snils(777), OWN).to_string()))
            .unwrap();
        let r = e.send(req).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json()["error"]["code"], "csrf");
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn access_matrix_external_clients_act_only_through_granted_services() {
    for e in common::envs("reentry-yugra").await {
        let recs = records(&e).await;
        let admin = login_as(&e, "c_admin", &[Role::Administrator], PARENT, OWN_OMSU).await;
        let r = e
            .json(
                "POST",
                "/api/v1/admin/clients",
                Some(&admin),
                json!({"name": "tis-yugra", "organisation": OWN_OMSU, "services": ["read_record", "search"],
                       "scope": OWN, "valid_until": "2027-12-31"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let token = r.json()["token"].as_str().unwrap().to_string();
        let client_id = r.json()["client"]["id"].as_str().unwrap().to_string();
        let stored = e.app.store.api_client(&client_id).await.unwrap().unwrap();
        assert!(
            !stored
                .secret_hash
                .contains(token.rsplit('_').next().unwrap()),
            "only the hash is kept"
        );
        let own = &recs[0].1;
        let req = Request::get(format!("/api/v1/persons/{own}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("X-Road-Client", "RU/GOV/8601010390/tis")
            .header("X-Road-Id", "req-42")
            .body(Body::empty())
            .unwrap();
        assert_eq!(e.send(req).await.status, StatusCode::OK);
        assert_eq!(
            e.get(&format!("/api/v1/persons/{}", recs[1].1), Some(&token))
                .await
                .status,
            StatusCode::NOT_FOUND,
            "outside the client's scope"
        );
        let r = e
            .json(
                "POST",
                "/api/v1/persons",
                Some(&token),
                person_body(&snils(3131), OWN),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json()["error"]["code"], "service_not_granted");
        // The refusal is recorded against the client, with the X-Road subsystem and request id.
        let req = Request::get(format!("/api/v1/persons/{own}/export"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("X-Road-Client", "RU/GOV/8601010390/tis")
            .header("X-Road-Id", "req-42")
            .body(Body::empty())
            .unwrap();
        assert_eq!(e.send(req).await.status, StatusCode::FORBIDDEN);
        let denials = e.app.store.changes_by_action("denied", 10).await.unwrap();
        assert_eq!(denials[0].actor, format!("client:{client_id}"));
        assert_eq!(
            denials[0].request_id.as_deref(),
            Some("RU/GOV/8601010390/tis req-42")
        );
        let r = e
            .json(
                "POST",
                "/api/v1/break-glass",
                Some(&token),
                json!({"national_id": recs[1].2, "reason": "проверка чужой записи"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(
            e.get("/api/v1/admin/users", Some(&token)).await.status,
            StatusCode::FORBIDDEN
        );
        // Rotation: the old secret stops at once.
        let r = e
            .json(
                "POST",
                &format!("/api/v1/admin/clients/{client_id}/changes"),
                Some(&admin),
                json!({"version": 1, "action": "rotate"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let new_token = r.json()["token"].as_str().unwrap().to_string();
        assert_eq!(
            e.get(&format!("/api/v1/persons/{own}"), Some(&token))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            e.get(&format!("/api/v1/persons/{own}"), Some(&new_token))
                .await
                .status,
            StatusCode::OK
        );
        // Suspended: refused.
        let r = e
            .json(
                "POST",
                &format!("/api/v1/admin/clients/{client_id}/changes"),
                Some(&admin),
                json!({"version": 2, "action": "suspend"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            e.get(&format!("/api/v1/persons/{own}"), Some(&new_token))
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        e.assert_ledger_holds().await;
    }
}

#[tokio::test]
async fn access_matrix_networks_and_break_the_glass() {
    for e in common::envs("reentry-yugra").await {
        let recs = records(&e).await;
        let admin = login_as(&e, "n_admin", &[Role::Administrator], PARENT, PRISON).await;
        let spec = login_as(&e, "n_spec", &[Role::Specialist], OWN, OWN_OMSU).await;
        // Networks: a bad CIDR is named; then the organisation's users need the VPN.
        let r = e
            .json(
                "POST",
                "/api/v1/admin/networks",
                Some(&admin),
                json!({"organisation": OWN_OMSU, "cidr": "10.8.0.0/33"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["error"]["field"], "cidr");
        let r = e
            .json(
                "POST",
                "/api/v1/admin/networks",
                Some(&admin),
                json!({"organisation": OWN_OMSU, "cidr": "10.8.0.0/16"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let from = |ip: &str, token: &str, forwarded: Option<&str>| {
            let mut req = Request::get("/api/v1/persons")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            if let Some(f) = forwarded {
                req.headers_mut()
                    .insert("x-forwarded-for", f.parse().unwrap());
            }
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
                    ip.parse().unwrap(),
                    40000,
                )));
            req
        };
        let r = e.send(from("10.8.3.4", &spec, None)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let r = e.send(from("192.0.2.7", &spec, None)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json()["error"]["code"], "network_not_allowed");
        // A forwarded address is believed only from a configured trusted proxy.
        let r = e.send(from("192.0.2.7", &spec, Some("10.8.3.4"))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "spoofed X-Forwarded-For");
        // Other organisations are not restricted.
        let police = login_as(&e, "n_police", &[Role::AgencySpecialist], OWN, POLICE).await;
        assert_eq!(
            e.send(from("192.0.2.7", &police, None)).await.status,
            StatusCode::OK
        );
        let r = e
            .json(
                "POST",
                "/api/v1/admin/networks/remove",
                Some(&admin),
                json!({"organisation": OWN_OMSU, "cidr": "10.8.0.0/16"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);

        // Break the glass: the exact identifier of a person elsewhere; a reason; read-only.
        let (_, sibling_id, sibling_nid) = &recs[1];
        let r = e
            .get(&format!("/api/v1/persons?q={sibling_nid}"), Some(&spec))
            .await;
        assert_eq!(r.json()["items"].as_array().unwrap().len(), 0);
        assert_eq!(r.json()["break_glass_possible"], true);
        let r = e
            .json(
                "POST",
                "/api/v1/break-glass",
                Some(&spec),
                json!({"national_id": sibling_nid, "reason": "коротко"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json()["error"]["field"], "reason");
        let r = e
            .json(
                "POST",
                "/api/v1/break-glass",
                Some(&spec),
                json!({"national_id": sibling_nid, "reason": "доставлен в больницу без сопровождения"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let r = e
            .get(&format!("/api/v1/persons/{sibling_id}"), Some(&spec))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json()["glass"]["read_only"], true);
        let version = r.json()["person"]["version"].clone();
        let mut p = r.json()["person"].clone();
        p["address"] = json!("другой адрес");
        let r = e
            .json(
                "PUT",
                &format!("/api/v1/persons/{sibling_id}"),
                Some(&spec),
                json!({"version": version, "person": p}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "the glass opens reading only"
        );
        assert_eq!(
            e.get(&format!("/api/v1/persons/{sibling_id}/export"), Some(&spec))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        // Viewers may not break the glass; the sibling territory's supervisor sees the grant.
        let viewer = login_as(&e, "n_view", &[Role::TerritorialViewer], OWN, OWN_OMSU).await;
        let r = e
            .json(
                "POST",
                "/api/v1/break-glass",
                Some(&viewer),
                json!({"national_id": sibling_nid, "reason": "просто посмотреть запись"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let sup = login_as(&e, "n_sup", &[Role::Supervisor], SIBLING, "omsu-71812000").await;
        let r = e.get("/api/v1/admin/break-glass", Some(&sup)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let items = r.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["reason"], "доставлен в больницу без сопровождения");
        // ... on their home page too, with the record linked.
        let (cookie, _) = e.page_login("n_sup").await;
        let home = e.page("/", &cookie).await;
        assert!(
            home.body.contains("доставлен в больницу без сопровождения")
                && home.body.contains(&format!("/persons/{sibling_id}")),
            "{}",
            home.body
        );
        let own_sup = login_as(&e, "n_sup2", &[Role::Supervisor], OWN, OWN_OMSU).await;
        let r = e.get("/api/v1/admin/break-glass", Some(&own_sup)).await;
        assert_eq!(r.json()["items"].as_array().unwrap().len(), 0);
        let (cookie, _) = e.page_login("n_sup2").await;
        let home = e.page("/", &cookie).await;
        assert!(!home.body.contains("доставлен в больницу без сопровождения"));
        let log = e
            .app
            .store
            .changes_for("person", uuid::Uuid::parse_str(sibling_id).unwrap())
            .await
            .unwrap();
        assert!(log.iter().any(|c| c.action == "break_glass"));
        let views = e
            .app
            .store
            .views_of("person", sibling_id, 100)
            .await
            .unwrap();
        assert!(views.iter().any(|c| c.action == "view_under_glass"));
        // The refusals page of the administrator lists the refusals with their reasons.
        let r = e.get("/api/v1/admin/denials", Some(&admin)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["reason"] == "network_not_allowed")
        );
        e.assert_ledger_holds().await;
    }
}
