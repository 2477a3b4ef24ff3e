//! The store conformance suite: the same checks on embedded SQLite always, and on PostgreSQL
//! when `KAMKOR_TEST_PG` holds a URL (each test in a schema of its own).

use kamkor_domain::Sex;
use kamkor_domain::records::{
    CaseData, CaseStatus, FamilyData, PersonData, PersonRole, RelationData, SubjectKind,
};
use kamkor_store::{
    AccessRequestRow, ApiClientRow, CaseQuery, GlassBreakRow, NewCase, PersonQuery, Store,
    StoreError, Table, UserRow,
};
use serde_json::Map;
use time::macros::date;
use uuid::Uuid;

struct Engine {
    name: &'static str,
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn engines() -> Vec<Engine> {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Store::open_sqlite_dir(dir.path())
        .await
        .expect("open sqlite");
    sqlite.migrate().await.expect("migrate sqlite");
    let mut out = vec![Engine {
        name: "sqlite",
        store: sqlite,
        _dir: Some(dir),
    }];
    if let Ok(url) = std::env::var("KAMKOR_TEST_PG")
        && !url.is_empty()
    {
        let schema = format!("t_{}", Uuid::now_v7().simple());
        let pg = Store::open_postgres_schema(&url, &schema)
            .await
            .expect("open postgres");
        pg.migrate().await.expect("migrate postgres");
        out.push(Engine {
            name: "postgres",
            store: pg,
            _dir: None,
        });
    }
    out
}

fn child(surname: &str, given: &str, nid: &str) -> PersonData {
    PersonData {
        role: PersonRole::Subject,
        surname: surname.into(),
        given_name: given.into(),
        patronymic: Some("Айбекович".into()),
        sex: Sex::Male,
        birth_date: Some(date!(2015 - 03 - 09)),
        national_id: Some(nid.into()),
        citizenship: Some("KG".into()),
        residence_territory: Some("41702205000000".into()),
        address: Some("ул. Ленина, д. 1".into()),
        disability: None,
        legal_status: Some("LS02".into()),
        social_payments: vec!["SP05".into()],
        extra: Map::new(),
    }
}

#[tokio::test]
async fn conformance_migrations_are_idempotent() {
    for e in engines().await {
        assert_eq!(
            e.store.migrate().await.unwrap(),
            kamkor_store::SCHEMA_VERSION,
            "{}",
            e.name
        );
        assert_eq!(
            e.store.schema_version().await.unwrap(),
            kamkor_store::SCHEMA_VERSION,
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn conformance_person_round_trip_and_change_log() {
    for e in engines().await {
        let s = &e.store;
        let id = Uuid::now_v7();
        let p = child("Асанов", "Эмир", "20903201500001");
        let mut tx = s.begin("user-1", Some("req-1")).await.unwrap();
        tx.insert_persons(&[(id, p.clone())]).await.unwrap();
        tx.commit().await.unwrap();
        let got = s.person(id).await.unwrap().expect("stored");
        assert_eq!(got.data, p, "{}", e.name);
        assert_eq!(got.version, 1);
        let log = s.changes_for("person", id).await.unwrap();
        assert_eq!(log.len(), 1, "{}", e.name);
        assert_eq!(log[0].action, "create");
        assert_eq!(log[0].actor, "user-1");
        assert_eq!(log[0].request_id.as_deref(), Some("req-1"));
        assert!(log[0].before.is_none() && log[0].after.is_some());
    }
}

#[tokio::test]
async fn conformance_stale_update_is_a_conflict_and_writes_nothing() {
    for e in engines().await {
        let s = &e.store;
        let id = Uuid::now_v7();
        let p = child("Усенов", "Марат", "20903201500002");
        let mut tx = s.begin("u", None).await.unwrap();
        tx.insert_persons(&[(id, p.clone())]).await.unwrap();
        tx.commit().await.unwrap();
        let mut p2 = p.clone();
        p2.address = Some("ул. Манаса, д. 7".into());
        let mut tx = s.begin("u", None).await.unwrap();
        assert_eq!(tx.update_person(id, 1, &p, &p2).await.unwrap(), 2);
        tx.commit().await.unwrap();
        // Someone still holding version 1 tries to write.
        let mut p3 = p.clone();
        p3.surname = "Усенова".into();
        let mut tx = s.begin("u2", None).await.unwrap();
        match tx.update_person(id, 1, &p, &p3).await {
            Err(StoreError::Conflict { current }) => assert_eq!(current, 2, "{}", e.name),
            other => panic!("{}: expected a conflict, got {other:?}", e.name),
        }
        drop(tx);
        let now = s.person(id).await.unwrap().unwrap();
        assert_eq!(now.version, 2);
        assert_eq!(now.data.surname, "Усенов");
        assert_eq!(now.data.address.as_deref(), Some("ул. Манаса, д. 7"));
        let log = s.changes_for("person", id).await.unwrap();
        assert_eq!(log.len(), 2, "{}", e.name);
        assert_eq!(log[1].version, 2);
        assert!(log[1].before.is_some());
        // Updating a missing record is "not found", not a conflict.
        let mut tx = s.begin("u", None).await.unwrap();
        assert!(matches!(
            tx.update_person(Uuid::now_v7(), 1, &p, &p2).await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn conformance_search_by_name_id_date_and_scope() {
    for e in engines().await {
        let s = &e.store;
        let a = child("Асанов", "Эмир", "20903201500003");
        let mut b = child("Асанова", "Айпери", "10101201200004");
        b.sex = Sex::Female;
        b.birth_date = Some(date!(2012 - 01 - 01));
        b.residence_territory = Some("41708203000000".into());
        let mut rel = child("Асанов", "Айбек", "20101198000005");
        rel.role = PersonRole::Relative;
        let mut tx = s.begin("u", None).await.unwrap();
        tx.insert_persons(&[
            (Uuid::now_v7(), a),
            (Uuid::now_v7(), b),
            (Uuid::now_v7(), rel),
        ])
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let q = |name: Option<&str>| PersonQuery {
            role: Some(PersonRole::Subject),
            name: name.map(str::to_string),
            limit: 10,
            ..Default::default()
        };
        assert_eq!(
            s.search_persons(&q(Some("асан"))).await.unwrap().len(),
            2,
            "{}",
            e.name
        );
        assert_eq!(
            s.search_persons(&q(Some("айпери асан")))
                .await
                .unwrap()
                .len(),
            1,
            "{}",
            e.name
        );
        assert_eq!(
            s.search_persons(&q(Some("100%"))).await.unwrap().len(),
            0,
            "{}",
            e.name
        );
        let mut by_id = q(None);
        by_id.national_id = Some("20903201500003".into());
        assert_eq!(
            s.search_persons(&by_id).await.unwrap()[0].data.given_name,
            "Эмир"
        );
        let mut by_date = q(None);
        by_date.birth_date = Some(date!(2012 - 01 - 01));
        assert_eq!(
            s.search_persons(&by_date).await.unwrap()[0].data.given_name,
            "Айпери"
        );
        let mut scoped = q(Some("асан"));
        scoped.territories = Some(vec!["41708203000000".into()]);
        assert_eq!(
            s.search_persons(&scoped).await.unwrap().len(),
            1,
            "{}",
            e.name
        );
        scoped.territories = Some(vec![]);
        assert!(s.search_persons(&scoped).await.unwrap().is_empty());
        let mut all = q(Some("асанов"));
        all.role = None;
        assert_eq!(s.search_persons(&all).await.unwrap().len(), 3, "{}", e.name);
    }
}

#[tokio::test]
async fn conformance_families_relations_cases_and_counters() {
    for e in engines().await {
        let s = &e.store;
        let (c, m, f) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut mother = child("Асанова", "Гүлнара", "10101198500006");
        mother.role = PersonRole::Relative;
        let mut tx = s.begin("u", None).await.unwrap();
        tx.insert_persons(&[(c, child("Асанов", "Эмир", "20903201500007")), (m, mother)])
            .await
            .unwrap();
        tx.insert_relations(&[(
            Uuid::now_v7(),
            c,
            m,
            RelationData {
                relation_kind: "mother".into(),
                relative_status: "labour_migrant".into(),
                note: None,
            },
        )])
        .await
        .unwrap();
        tx.insert_families(&[(
            f,
            FamilyData {
                name: "Семья Асановых".into(),
                territory: Some("41702205000000".into()),
                address: None,
                extra: Map::new(),
            },
        )])
        .await
        .unwrap();
        tx.insert_family_members(&[
            (Uuid::now_v7(), f, c, "child".into()),
            (Uuid::now_v7(), f, m, "mother".into()),
        ])
        .await
        .unwrap();
        assert_eq!(tx.next_counter("case_number_2026").await.unwrap(), 1);
        assert_eq!(tx.next_counter("case_number_2026").await.unwrap(), 2);
        tx.raise_counter("case_number_2026", 40).await.unwrap();
        tx.raise_counter("case_number_2026", 10).await.unwrap();
        assert_eq!(tx.next_counter("case_number_2026").await.unwrap(), 41);
        tx.raise_counter("case_number_2025", 7).await.unwrap();
        assert_eq!(tx.next_counter("case_number_2025").await.unwrap(), 8);
        let case_id = Uuid::now_v7();
        tx.insert_cases(&[NewCase {
            id: case_id,
            number: "ТЖС-2026-000041".into(),
            status: CaseStatus::Identified,
            data: CaseData {
                subject_kind: SubjectKind::Child,
                subject_id: c,
                identified_on: date!(2026 - 11 - 20),
                identification_territory: "41702205000000".into(),
                identification_place: Some("school".into()),
                identification_place_text: None,
                source: Some("school".into()),
                categories: vec!["CAT04".into()],
                responsible_org: "opsd-41702205000000".into(),
                extra: Map::new(),
            },
            responsible_user: Some("u".into()),
        }])
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let rels = s.relatives(c).await.unwrap();
        assert_eq!(rels.len(), 1, "{}", e.name);
        assert_eq!(rels[0].0.data.relative_status, "labour_migrant");
        assert_eq!(rels[0].1.id, m);
        assert_eq!(s.relative_of(m).await.unwrap()[0].1.id, c);
        assert_eq!(s.families_of(c).await.unwrap()[0].id, f);
        assert_eq!(s.family_members(f).await.unwrap().len(), 2);
        let case = s.case(case_id).await.unwrap().unwrap();
        assert_eq!(case.number, "ТЖС-2026-000041");
        assert_eq!(case.data.categories, vec!["CAT04".to_string()]);
        assert_eq!(s.cases_of_subject(c).await.unwrap().len(), 1);
        let mine = s
            .list_cases(&CaseQuery {
                responsible_user: Some("u".into()),
                open_only: true,
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(mine.len(), 1, "{}", e.name);
        assert_eq!(
            s.case_counts(None).await.unwrap(),
            vec![("identified".to_string(), 1)]
        );
        // A second case with the same number is refused as a duplicate, and the transaction
        // leaves nothing behind.
        let mut tx = s.begin("u", None).await.unwrap();
        let dup = NewCase {
            id: Uuid::now_v7(),
            ..s.case(case_id)
                .await
                .unwrap()
                .map(|c| NewCase {
                    id: c.id,
                    number: c.number,
                    status: c.status,
                    data: c.data,
                    responsible_user: None,
                })
                .unwrap()
        };
        assert!(
            matches!(tx.insert_cases(&[dup]).await, Err(StoreError::Duplicate(_))),
            "{}",
            e.name
        );
        drop(tx);
        assert_eq!(s.count(Table::Cases).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn conformance_users_and_sessions() {
    for e in engines().await {
        let s = &e.store;
        let u = UserRow {
            id: Uuid::now_v7().to_string(),
            version: 1,
            login: "spec".into(),
            password_hash: "$argon2id$…".into(),
            full_name: "Специалист".into(),
            role: "specialist".into(),
            organisation: "opsd-41702205000000".into(),
            org_kind: "territorial_unit".into(),
            scope_territory: "41702000000000".into(),
            valid_from: "2026-01-01".into(),
            valid_until: Some("2026-12-31".into()),
            active: true,
            must_change_password: true,
            created_at: "2026-11-25T10:00:00.000Z".into(),
            status: "active".into(),
            national_id: Some("20101199000123".into()),
            position: Some("специалист".into()),
            ..Default::default()
        };
        let mut tx = s.begin("cli", None).await.unwrap();
        tx.insert_user(&u).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            s.user_by_login("spec").await.unwrap().unwrap(),
            u,
            "{}",
            e.name
        );
        let mut tx = s.begin("cli", None).await.unwrap();
        assert!(matches!(
            tx.insert_user(&UserRow {
                id: "other".into(),
                ..u.clone()
            })
            .await,
            Err(StoreError::Duplicate(_))
        ));
        drop(tx);
        // The password hash never reaches the change log.
        let log = s
            .changes_for("user", Uuid::parse_str(&u.id).unwrap())
            .await
            .unwrap();
        assert!(
            !log[0]
                .after
                .as_ref()
                .unwrap()
                .to_string()
                .contains("argon2"),
            "{}",
            e.name
        );
        let sess = kamkor_store::SessionRow {
            token_hash: "h".into(),
            user_id: u.id.clone(),
            csrf_token: "c".into(),
            created_at: "2026-11-25T10:00:00.000Z".into(),
            last_seen_at: "2026-11-25T10:00:00.000Z".into(),
            expires_at: "2026-11-25T22:00:00.000Z".into(),
            ended_at: None,
        };
        s.create_session(&sess).await.unwrap();
        assert_eq!(s.session("h").await.unwrap().unwrap(), sess);
        s.end_session("h", "2026-11-25T11:00:00.000Z")
            .await
            .unwrap();
        assert!(s.session("h").await.unwrap().unwrap().ended_at.is_some());
    }
}

#[tokio::test]
async fn conformance_one_person_per_national_identifier() {
    for e in engines().await {
        let s = &e.store;
        let mut tx = s.begin("u", None).await.unwrap();
        tx.insert_persons(&[(Uuid::now_v7(), child("Асанов", "Эмир", "20903201500099"))])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = s.begin("u", None).await.unwrap();
        let r = tx
            .insert_persons(&[(Uuid::now_v7(), child("Асанов", "Эмир", "20903201500099"))])
            .await;
        assert!(
            matches!(r, Err(StoreError::Duplicate("national_id"))),
            "{}: {r:?}",
            e.name
        );
        drop(tx);
        // Persons without an identifier are many.
        let mut a = child("Асанов", "Эмир", "x");
        a.national_id = None;
        let mut tx = s.begin("u", None).await.unwrap();
        tx.insert_persons(&[(Uuid::now_v7(), a.clone()), (Uuid::now_v7(), a)])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(s.count(Table::Persons).await.unwrap(), 3, "{}", e.name);
    }
}

#[tokio::test]
async fn conformance_account_changes_requests_clients_networks_glass() {
    for e in engines().await {
        let s = &e.store;
        let u = UserRow {
            id: Uuid::now_v7().to_string(),
            version: 1,
            login: "acc".into(),
            password_hash: "$argon2id$…".into(),
            full_name: "Специалист".into(),
            role: "specialist".into(),
            organisation: "opsd".into(),
            org_kind: "territorial_unit".into(),
            scope_territory: "41702000000000".into(),
            valid_from: "2026-01-01".into(),
            active: true,
            created_at: "2026-11-25T10:00:00.000Z".into(),
            status: "active".into(),
            ..Default::default()
        };
        let mut tx = s.begin("admin", None).await.unwrap();
        tx.insert_user(&u).await.unwrap();
        tx.commit().await.unwrap();
        // Suspend: the flag follows the status; a stale write is a conflict.
        let after = UserRow {
            status: "suspended".into(),
            status_reason: Some("отпуск".into()),
            totp_secret: Some("JBSWY3DPEHPK3PXP".into()),
            ..u.clone()
        };
        let mut tx = s.begin("admin", None).await.unwrap();
        assert_eq!(tx.update_user(&u, &after, "suspend").await.unwrap(), 2);
        tx.commit().await.unwrap();
        let got = s.user(&u.id).await.unwrap().unwrap();
        assert!(!got.active && got.status == "suspended", "{}", e.name);
        let mut tx = s.begin("admin", None).await.unwrap();
        assert!(matches!(
            tx.update_user(&u, &after, "suspend").await,
            Err(StoreError::Conflict { .. })
        ));
        drop(tx);
        let log = s
            .changes_for("user", Uuid::parse_str(&u.id).unwrap())
            .await
            .unwrap();
        let text = format!("{log:?}");
        assert!(
            !text.contains("JBSWY3DP"),
            "the secret stays out of the log"
        );
        assert!(log.iter().any(|c| c.action == "suspend"), "{}", e.name);
        // A TOTP step is accepted once.
        assert!(s.use_totp_step(&u.id, 100).await.unwrap());
        assert!(!s.use_totp_step(&u.id, 100).await.unwrap());
        assert!(!s.use_totp_step(&u.id, 99).await.unwrap());
        assert!(s.use_totp_step(&u.id, 101).await.unwrap());

        // Access requests: pending → approved once.
        let r = AccessRequestRow {
            id: Uuid::now_v7().to_string(),
            version: 1,
            status: "pending".into(),
            full_name: "Заявитель".into(),
            national_id: "1".into(),
            position: "p".into(),
            organisation: "opsd".into(),
            org_inn: "0".into(),
            org_address: "a".into(),
            territorial_unit: "t".into(),
            roles: "specialist".into(),
            scope_territory: "41702000000000".into(),
            created_at: "2026-11-25T10:00:00.000Z".into(),
            ..Default::default()
        };
        let mut tx = s.begin("", None).await.unwrap();
        tx.insert_access_request(&r).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            s.access_requests(Some("pending"), 10).await.unwrap().len(),
            1
        );
        let decided = AccessRequestRow {
            status: "approved".into(),
            decided_by: Some("admin".into()),
            ..r.clone()
        };
        let mut tx = s.begin("admin", None).await.unwrap();
        tx.decide_access_request(&r, &decided).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = s.begin("admin", None).await.unwrap();
        assert!(tx.decide_access_request(&r, &decided).await.is_err());
        drop(tx);
        assert_eq!(
            s.access_request(&r.id).await.unwrap().unwrap().status,
            "approved"
        );

        // API clients: names unique, rotation rewrites the hash.
        let c = ApiClientRow {
            id: Uuid::now_v7().to_string(),
            version: 1,
            name: "tis-yugra".into(),
            secret_hash: "h1".into(),
            services: "read_record,search".into(),
            organisation: "o".into(),
            org_kind: "k".into(),
            scope_territory: "41702000000000".into(),
            valid_from: "2026-01-01".into(),
            status: "active".into(),
            created_at: "2026-11-25T10:00:00.000Z".into(),
            ..Default::default()
        };
        let mut tx = s.begin("admin", None).await.unwrap();
        tx.insert_api_client(&c).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = s.begin("admin", None).await.unwrap();
        assert!(matches!(
            tx.insert_api_client(&ApiClientRow {
                id: "x".into(),
                ..c.clone()
            })
            .await,
            Err(StoreError::Duplicate("name"))
        ));
        drop(tx);
        let rotated = ApiClientRow {
            secret_hash: "h2".into(),
            ..c.clone()
        };
        let mut tx = s.begin("admin", None).await.unwrap();
        tx.update_api_client(&c, &rotated, "rotate").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            s.api_client(&c.id).await.unwrap().unwrap().secret_hash,
            "h2"
        );

        // Networks.
        let mut tx = s.begin("admin", None).await.unwrap();
        tx.add_org_network("opsd", "10.8.0.0/16").await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(
            s.org_networks().await.unwrap(),
            vec![("opsd".to_string(), "10.8.0.0/16".to_string())]
        );
        let mut tx = s.begin("admin", None).await.unwrap();
        tx.remove_org_network("opsd", "10.8.0.0/16").await.unwrap();
        tx.commit().await.unwrap();
        assert!(s.org_networks().await.unwrap().is_empty());

        // Break-the-glass grants are found while open, and recorded.
        let pid = Uuid::now_v7();
        let mut tx = s.begin("admin", None).await.unwrap();
        tx.insert_persons(&[(pid, child("Глассова", "Айдай", "20101201500111"))])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let g = GlassBreakRow {
            id: Uuid::now_v7().to_string(),
            user_id: u.id.clone(),
            person_id: pid.to_string(),
            territory: None,
            reason: "ребёнок доставлен в больницу".into(),
            opened_at: "2026-11-25T10:00:00.000Z".into(),
            expires_at: "2026-11-25T13:00:00.000Z".into(),
        };
        let mut tx = s.begin(&u.id, None).await.unwrap();
        tx.insert_glass_break(&g).await.unwrap();
        tx.commit().await.unwrap();
        let at = |t: &str| t.to_string();
        assert!(
            s.open_glass(&u.id, &pid.to_string(), &at("2026-11-25T12:59:00.000Z"))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            s.open_glass(&u.id, &pid.to_string(), &at("2026-11-25T13:00:01.000Z"))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            s.changes_by_action("break_glass", 10).await.unwrap().len(),
            1,
            "{}",
            e.name
        );
    }
}

/// Two processes writing one database (a server and the command line): each presumes the
/// ledger's end from its own last commit; when the other appended meanwhile, the entry still
/// lands at the end, positions stay gap-free and every hash and record holds (issue 4 item 1).
#[tokio::test]
async fn conformance_two_writers_keep_one_gap_free_ledger() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut pairs: Vec<(&str, Store, Store)> = Vec::new();
    let a = Store::open_sqlite_dir(dir.path()).await.unwrap();
    a.migrate().await.unwrap();
    let b = Store::open_sqlite_dir(dir.path()).await.unwrap();
    pairs.push(("sqlite", a, b));
    if let Ok(url) = std::env::var("KAMKOR_TEST_PG")
        && !url.is_empty()
    {
        let schema = format!("t_{}", Uuid::now_v7().simple());
        let a = Store::open_postgres_schema(&url, &schema).await.unwrap();
        a.migrate().await.unwrap();
        let b = Store::open_postgres_schema(&url, &schema).await.unwrap();
        pairs.push(("postgres", a, b));
    }
    for (name, a, b) in pairs {
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let mut people: Vec<PersonData> = (0..3)
            .map(|i| child("Усенов", "Марат", &format!("2090320150000{i}")))
            .collect();
        let mut versions = [1i64; 3];
        let mut tx = a.begin("a", None).await.unwrap();
        tx.insert_persons(&[(ids[0], people[0].clone())])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // The second writer appends behind the first one's back, twice.
        for i in 1..3 {
            let mut tx = b.begin("b", None).await.unwrap();
            tx.insert_persons(&[(ids[i], people[i].clone())])
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        // The first writer's presumed end is stale for the update and for the event.
        for (store, k) in [(&a, 0usize), (&b, 1), (&a, 2), (&a, 0)] {
            let mut after = people[k].clone();
            after.address = Some(format!("ул. Манаса, {}", versions[k]));
            let mut tx = store.begin("w", None).await.unwrap();
            versions[k] = tx
                .update_person(ids[k], versions[k], &people[k], &after)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            people[k] = after;
        }
        let mut tx = b.begin("b", None).await.unwrap();
        tx.record_event("view", "person", &ids[0].to_string(), None)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = a.begin("a", None).await.unwrap();
        tx.record_event("view", "person", &ids[1].to_string(), None)
            .await
            .unwrap();
        tx.commit().await.unwrap();

        let entries = a.ledger_entries(0, 1000).await.unwrap();
        assert_eq!(entries.len(), 9, "{name}");
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.pos, i as i64, "{name}: positions are gap-free");
            assert_eq!(
                e.leaf_hash.as_deref(),
                Some(kamkor_ledger::to_hex(&kamkor_ledger::entry_hash(&e.fields())).as_str()),
                "{name}: entry {i} hashes"
            );
        }
        assert!(a.replay_check().await.unwrap().is_ok(), "{name}");
        assert_eq!(
            a.person(ids[0]).await.unwrap().unwrap().version,
            3,
            "{name}"
        );
    }
}

/// The auditor's period search (issue 4 item 5) finds entries by position around the
/// period and compares the exact times inside it: right at the edges, and right for an entry
/// whose clock was a minute behind its neighbours'.
#[tokio::test]
async fn conformance_ledger_search_by_period() {
    for e in engines().await {
        let s = &e.store;
        for _ in 0..30 {
            let mut tx = s.begin("u", None).await.unwrap();
            tx.record_event("view", "person", "p", None).await.unwrap();
            tx.commit().await.unwrap();
        }
        for (lo, day) in [(0, "01"), (10, "02"), (20, "03")] {
            s.execute_unchecked(&format!(
                "UPDATE changes SET at = '2026-01-{day}T00:00:00.000Z' WHERE pos >= {lo} AND pos < {}",
                lo + 10
            ))
            .await
            .unwrap();
        }
        s.execute_unchecked("UPDATE changes SET at = '2026-01-01T23:59:00.000Z' WHERE pos = 15")
            .await
            .unwrap();
        let find = |from: Option<&str>, until: Option<&str>| kamkor_store::LedgerFilter {
            from: from.map(str::to_string),
            until: until.map(str::to_string),
            ..Default::default()
        };
        let positions = |rows: Vec<kamkor_store::ChangeRow>| {
            let mut seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
            seqs.sort();
            seqs
        };
        let all = positions(s.search_ledger(&find(None, None), 0, 500).await.unwrap());
        assert_eq!(all.len(), 30, "{}", e.name);
        let day2 = positions(
            s.search_ledger(
                &find(
                    Some("2026-01-02T00:00:00.000Z"),
                    Some("2026-01-03T00:00:00.000Z"),
                ),
                0,
                500,
            )
            .await
            .unwrap(),
        );
        let want: Vec<i64> = all[10..20]
            .iter()
            .copied()
            .filter(|&q| q != all[15])
            .collect();
        assert_eq!(day2, want, "{}", e.name);
        let day1 = positions(
            s.search_ledger(&find(None, Some("2026-01-02T00:00:00.000Z")), 0, 500)
                .await
                .unwrap(),
        );
        let mut want: Vec<i64> = all[..10].to_vec();
        want.push(all[15]);
        assert_eq!(day1, want, "{}", e.name);
        let later = s
            .search_ledger(&find(Some("2026-01-04T00:00:00.000Z"), None), 0, 500)
            .await
            .unwrap();
        assert!(later.is_empty(), "{}", e.name);
    }
}
