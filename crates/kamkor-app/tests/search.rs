//! Person search through the use case (issue 6 item 1): a name in Latin letters, an identifier
//! with one digit wrong, a birth date with day and month swapped, the filters, the scope, and
//! the index following every write — of this process and of another one on the same database.
//! SQLite always, PostgreSQL when `KAMKOR_TEST_PG` is set.

use kamkor_app::{App, AppConfig, AppError, Ctx, NewUser, PersonSearch};
use kamkor_domain::matching::{DateMatch, fold};
use kamkor_domain::policy::Role;
use kamkor_domain::records::{CaseDraft, PersonRole};
use kamkor_store::{PersonQuery, PersonRow, Store};
use time::Duration;
use uuid::Uuid;

struct Env {
    name: &'static str,
    app: App,
    /// The same database opened a second time, as another process would.
    other: App,
    _dir: Option<tempfile::TempDir>,
}

fn profile() -> kamkor_domain::profile::Profile {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/tzhs-kg");
    kamkor_app::load_profile(&dir).expect("profile")
}

async fn envs() -> Vec<Env> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let a = Store::open_sqlite_dir(dir.path()).await.expect("sqlite");
    let b = Store::open_sqlite_dir(dir.path()).await.expect("sqlite");
    out.push(("sqlite", a, b, Some(dir)));
    if let Ok(url) = std::env::var("KAMKOR_TEST_PG")
        && !url.is_empty()
    {
        let schema = format!("t_{}", Uuid::now_v7().simple());
        let a = Store::open_postgres_schema(&url, &schema)
            .await
            .expect("postgres");
        let b = Store::open_postgres_schema(&url, &schema)
            .await
            .expect("postgres");
        out.push(("postgres", a, b, None));
    }
    let mut envs = Vec::new();
    for (name, a, b, dir) in out {
        a.migrate().await.expect("migrate");
        let app = App::new(a, profile(), AppConfig::default());
        app.bind_profile().await.expect("bind");
        kamkor_app::demo::generate(&app, 60, 20, 0, |_| {})
            .await
            .expect("demo");
        let other = App::new(b, profile(), AppConfig::default());
        envs.push(Env {
            name,
            app,
            other,
            _dir: dir,
        });
    }
    envs
}

async fn user(app: &App, login: &str, role: Role, scope: &str) -> Ctx {
    let today = time::OffsetDateTime::now_utc().date();
    let org = app
        .profile
        .agencies
        .iter()
        .find(|a| app.profile.territory_within(scope, &a.territory))
        .map(|a| a.code.clone())
        .unwrap_or_default();
    app.create_user(
        "system",
        &NewUser {
            login: login.into(),
            full_name: format!("{login} (test)"),
            roles: vec![role],
            organisation: org,
            scope_territory: Some(scope.into()),
            valid_from: today - Duration::days(1),
            valid_until: Some(today + Duration::days(30)),
            password: Some("a long enough password 1".into()),
        },
    )
    .await
    .expect("user");
    let u = app
        .store
        .user_by_login(login)
        .await
        .expect("read")
        .expect("exists");
    app.system_ctx(u)
}

fn root(app: &App) -> String {
    app.profile.root_territory().expect("root").code.clone()
}

/// Demo children with a birth day of 12 or less (so that a swap is another real date), an
/// identifier and a patronymic.
async fn children(app: &App) -> Vec<PersonRow> {
    app.store
        .search_persons(&PersonQuery {
            role: Some(PersonRole::Subject),
            limit: 500,
            ..Default::default()
        })
        .await
        .expect("persons")
        .into_iter()
        .filter(|p| {
            p.data.national_id.is_some()
                && p.data
                    .birth_date
                    .is_some_and(|d| d.day() <= 12 && d.day() != u8::from(d.month()))
        })
        .collect()
}

async fn search(app: &App, ctx: &Ctx, s: PersonSearch) -> Vec<(Uuid, kamkor_app::PersonHit)> {
    app.search_persons(ctx, &s)
        .await
        .expect("search")
        .hits
        .into_iter()
        .map(|h| (h.row.id, h))
        .collect()
}

fn first_ids(hits: &[(Uuid, kamkor_app::PersonHit)], n: usize) -> Vec<Uuid> {
    hits.iter().take(n).map(|(id, _)| *id).collect()
}

#[tokio::test]
async fn a_person_is_found_however_the_name_id_or_date_was_written() {
    for e in envs().await {
        let app = &e.app;
        let central = user(app, "central", Role::Specialist, &root(app)).await;
        let kids = children(app).await;
        assert!(kids.len() >= 5, "{}: demo children", e.name);
        for p in kids.iter().take(5) {
            // The name in Latin letters, given name first, without the patronymic.
            let latin = fold(&format!("{} {}", p.data.given_name, p.data.surname));
            let hits = search(
                app,
                &central,
                PersonSearch {
                    q: latin.clone(),
                    ..Default::default()
                },
            )
            .await;
            assert!(
                first_ids(&hits, 10).contains(&p.id),
                "{}: {latin} finds {}",
                e.name,
                p.data.full_name()
            );
            // One digit of the identifier wrong.
            let id = p.data.national_id.clone().expect("id");
            let mut wrong: Vec<char> = id.chars().collect();
            let last = wrong.len() - 1;
            wrong[last] = if wrong[last] == '7' { '8' } else { '7' };
            let wrong: String = wrong.into_iter().collect();
            let hits = search(
                app,
                &central,
                PersonSearch {
                    national_id: wrong,
                    ..Default::default()
                },
            )
            .await;
            let hit = hits.iter().find(|(i, _)| *i == p.id).expect("near id");
            assert_eq!(hit.1.matched.as_ref().and_then(|m| m.id_exact), Some(false));
            // The exact identifier comes first.
            let hits = search(
                app,
                &central,
                PersonSearch {
                    q: id.clone(),
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(hits[0].0, p.id, "{}: exact id first", e.name);
            // Day and month swapped, with the surname.
            let d = p.data.birth_date.expect("date");
            let swapped = format!("{:02}.{:02}.{}", u8::from(d.month()), d.day(), d.year());
            let hits = search(
                app,
                &central,
                PersonSearch {
                    name: p.data.surname.clone(),
                    birth_date: swapped,
                    ..Default::default()
                },
            )
            .await;
            let hit = hits.iter().find(|(i, _)| *i == p.id).expect("swapped date");
            assert_eq!(
                hit.1.matched.as_ref().and_then(|m| m.date),
                Some(DateMatch::Swapped)
            );
        }
        // Every search is in the ledger.
        let searches = app
            .store
            .last_changes(50)
            .await
            .expect("changes")
            .into_iter()
            .filter(|c| c.action == "search")
            .count();
        assert!(searches > 0, "{}", e.name);
    }
}

#[tokio::test]
async fn filters_and_scope_narrow_the_search_and_bad_filters_name_the_field() {
    for e in envs().await {
        let app = &e.app;
        let central = user(app, "central", Role::Specialist, &root(app)).await;
        let kids = children(app).await;
        let p = &kids[0];
        let territory = p.data.residence_territory.clone().expect("territory");
        let by_name = |extra: PersonSearch| PersonSearch {
            name: p.data.full_name(),
            ..extra
        };
        let found = |hits: &[(Uuid, kamkor_app::PersonHit)]| hits.iter().any(|(i, _)| *i == p.id);
        // Sex.
        let other_sex = if p.data.sex.code() == "female" {
            "male"
        } else {
            "female"
        };
        let h = search(
            app,
            &central,
            by_name(PersonSearch {
                sex: other_sex.into(),
                ..Default::default()
            }),
        )
        .await;
        assert!(!found(&h), "{}: sex filter", e.name);
        assert!(h.iter().all(|(_, x)| x.row.data.sex.code() == other_sex));
        let h = search(
            app,
            &central,
            by_name(PersonSearch {
                sex: p.data.sex.code().into(),
                ..Default::default()
            }),
        )
        .await;
        assert!(found(&h));
        // Age.
        let age = p.data.age_on(central.today()).expect("age");
        let h = search(
            app,
            &central,
            by_name(PersonSearch {
                age_from: age.to_string(),
                age_to: age.to_string(),
                ..Default::default()
            }),
        )
        .await;
        assert!(found(&h), "{}: age {age}", e.name);
        let h = search(
            app,
            &central,
            by_name(PersonSearch {
                age_from: (age + 1).to_string(),
                ..Default::default()
            }),
        )
        .await;
        assert!(!found(&h));
        // Territory: theirs, and another one.
        let h = search(
            app,
            &central,
            by_name(PersonSearch {
                territory: territory.clone(),
                ..Default::default()
            }),
        )
        .await;
        assert!(found(&h));
        let elsewhere = app
            .profile
            .territories
            .iter()
            .find(|t| {
                !t.parent.is_empty()
                    && !app.profile.territory_within(&territory, &t.code)
                    && t.code != territory
            })
            .expect("another territory")
            .code
            .clone();
        let h = search(
            app,
            &central,
            by_name(PersonSearch {
                territory: elsewhere.clone(),
                ..Default::default()
            }),
        )
        .await;
        assert!(!found(&h), "{}: territory filter", e.name);
        // Filters alone list (by name) what passes them.
        let listed = app
            .search_persons(
                &central,
                &PersonSearch {
                    territory: territory.clone(),
                    sex: p.data.sex.code().into(),
                    ..Default::default()
                },
            )
            .await
            .expect("list");
        assert!(!listed.ranked);
        assert!(listed.hits.iter().all(|h| {
            h.row.data.sex == p.data.sex
                && h.row
                    .data
                    .residence_territory
                    .as_deref()
                    .is_some_and(|t| app.profile.territory_within(t, &territory))
        }));
        // Case status: open a case, then "open" finds and "none" does not.
        let worker = user(app, "worker", Role::Specialist, &territory).await;
        let has_open = app
            .store
            .cases_of_subject(p.id)
            .await
            .expect("cases")
            .iter()
            .any(|c| c.status.is_open());
        if !has_open {
            let org = app
                .profile
                .agencies
                .iter()
                .filter(|a| {
                    a.kind == "territorial_unit"
                        && app.profile.territory_within(&territory, &a.territory)
                })
                .max_by_key(|a| app.profile.territory_path(&a.territory).len())
                .map(|a| a.code.clone())
                .expect("unit");
            app.open_case(
                &worker,
                &CaseDraft {
                    subject_kind: "child".into(),
                    subject_id: p.id.to_string(),
                    identified_on: kamkor_domain::records::format_date(worker.today()),
                    identification_territory: territory.clone(),
                    responsible_org: org,
                    ..CaseDraft::default()
                },
            )
            .await
            .expect("case");
        }
        let h = search(
            app,
            &central,
            by_name(PersonSearch {
                status: "open".into(),
                ..Default::default()
            }),
        )
        .await;
        assert!(found(&h), "{}: open case", e.name);
        let h = search(
            app,
            &central,
            by_name(PersonSearch {
                status: "none".into(),
                ..Default::default()
            }),
        )
        .await;
        assert!(!found(&h));
        // Scope: a worker elsewhere does not find them, even by the exact identifier.
        let stranger = user(app, "stranger", Role::Specialist, &elsewhere).await;
        let h = search(
            app,
            &stranger,
            PersonSearch {
                q: p.data.national_id.clone().expect("id"),
                ..Default::default()
            },
        )
        .await;
        assert!(!found(&h), "{}: scope", e.name);
        let h = search(app, &stranger, by_name(PersonSearch::default())).await;
        assert!(!found(&h));
        // Bad filters are named.
        for (s, field) in [
            (
                PersonSearch {
                    age_from: "abc".into(),
                    ..Default::default()
                },
                "age_from",
            ),
            (
                PersonSearch {
                    age_from: "9".into(),
                    age_to: "3".into(),
                    ..Default::default()
                },
                "age_to",
            ),
            (
                PersonSearch {
                    sex: "x".into(),
                    ..Default::default()
                },
                "sex",
            ),
            (
                PersonSearch {
                    status: "x".into(),
                    ..Default::default()
                },
                "status",
            ),
            (
                PersonSearch {
                    territory: "nowhere".into(),
                    ..Default::default()
                },
                "territory",
            ),
            (
                PersonSearch {
                    territory: territory.clone(),
                    ..Default::default()
                },
                "territory",
            ),
        ] {
            let who = if field == "territory" && s.territory == territory {
                &stranger
            } else {
                &central
            };
            match app.search_persons(who, &s).await {
                Err(AppError::Invalid(p)) => {
                    assert_eq!(p.0[0].field, field, "{}: {s:?}", e.name)
                }
                other => panic!("{}: {s:?} gave {other:?}", e.name),
            }
        }
    }
}

#[tokio::test]
async fn the_index_follows_corrections_here_and_registrations_elsewhere() {
    for e in envs().await {
        let app = &e.app;
        let central = user(app, "central", Role::Specialist, &root(app)).await;
        let kids = children(app).await;
        let p = &kids[1];
        // Warm the index, then correct the name.
        let _ = search(
            app,
            &central,
            PersonSearch {
                name: p.data.full_name(),
                ..Default::default()
            },
        )
        .await;
        let mut d = p.data.to_draft();
        d.surname = "Жээнбекова".into();
        d.given_name = "Үмүтай".into();
        app.update_person(&central, p.id, p.version, &d)
            .await
            .expect("update");
        let h = search(
            app,
            &central,
            PersonSearch {
                q: "Jeenbekova Umutai".into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(h.first().map(|x| x.0), Some(p.id), "{}: new name", e.name);
        // Another process corrects another child: this one sees it too.
        let q = &kids[2];
        let other_ctx = e.other.system_ctx(central.user.clone());
        let mut d = q.data.to_draft();
        d.given_name = "Чолпонай".into();
        e.other
            .update_person(&other_ctx, q.id, q.version, &d)
            .await
            .expect("update elsewhere");
        let h = search(
            app,
            &central,
            PersonSearch {
                name: format!("{} Cholponai", q.data.surname),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            h.first().map(|x| x.0),
            Some(q.id),
            "{}: change elsewhere",
            e.name
        );
        assert!(app.indexed_persons().await > 0);
    }
}
