//! The `kamkor` command line, run as a real process.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kamkor() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kamkor"));
    // Use the profiles of this repository whatever the working directory.
    c.env(
        "KAMKOR_PROFILES_DIR",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles"),
    );
    c.env_remove("KAMKOR_DATABASE_URL");
    c.env("RUST_LOG", "warn");
    c
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = kamkor().args(args).output().expect("kamkor runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn migrate_reports_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, out, err) = run(&["migrate", "--data-dir", d]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("schema version {}", kamkor_store::SCHEMA_VERSION)),
        "{out}"
    );
    // Running it again changes nothing.
    assert!(run(&["migrate", "--data-dir", d]).0);
}

#[test]
fn create_user_prints_a_one_time_password_and_refuses_past_validity() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, _, err) = run(&[
        "admin",
        "create-user",
        "--data-dir",
        d,
        "--login",
        "old",
        "--role",
        "administrator",
        "--valid-until",
        "2001-01-01",
    ]);
    assert!(!ok);
    assert!(err.contains("--valid-until"), "{err}");
    let (ok, _, err) = run(&[
        "admin",
        "create-user",
        "--data-dir",
        d,
        "--login",
        "x1",
        "--role",
        "wizard",
    ]);
    assert!(!ok);
    assert!(err.contains("--role"), "{err}");
    let (ok, out, err) = run(&[
        "admin",
        "create-user",
        "--data-dir",
        d,
        "--login",
        "first.admin",
        "--role",
        "administrator",
        "--valid-until",
        "2099-12-31",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("One-time password"), "{out}");
    let (ok, _, err) = run(&[
        "admin",
        "create-user",
        "--data-dir",
        d,
        "--login",
        "first.admin",
        "--role",
        "administrator",
    ]);
    assert!(!ok);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn demo_for_both_profiles_and_refuses_real_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (ok, out, err) = run(&["demo", "--persons", "300", "--data-dir", d]);
    assert!(ok, "{err}");
    assert!(
        out.contains("login: admin") && out.contains("login: specialist"),
        "{out}"
    );
    let (ok, out, err) = run(&[
        "demo",
        "--profile",
        "reentry-yugra",
        "--persons",
        "200",
        "--data-dir",
        d,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("released persons"), "{out}");
    // A second run adds to the demo registry without clashing ids or case numbers.
    let (ok, _, err) = run(&["demo", "--persons", "300", "--data-dir", d]);
    assert!(ok, "{err}");
    // Plans are brought in line with today's facts on demand (the server does it daily); the
    // demo's plans already are, and the ledger still verifies.
    let (ok, out, err) = run(&["plans", "regenerate", "--data-dir", d]);
    assert!(ok, "{err}");
    assert!(out.contains("open cases are in line"), "{out}");
    assert!(run(&["ledger", "seal", "--data-dir", d]).0);
    let (ok, out, err) = run(&["ledger", "verify", "--data-dir", d]);
    assert!(ok, "{out} {err}");
    // A database with real records does not take demo data.
    let real = tempfile::tempdir().unwrap();
    let r = real.path().to_str().unwrap();
    assert!(run(&["migrate", "--data-dir", r]).0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = kamkor_store::Store::open_url(&format!("sqlite://{r}/tzhs-kg.db?mode=rwc"))
            .await
            .unwrap();
        let mut tx = store.begin("test", None).await.unwrap();
        tx.insert_persons(&[(
            uuid::Uuid::now_v7(),
            kamkor_domain::records::PersonData {
                role: kamkor_domain::records::PersonRole::Subject,
                surname: "Асанов".into(),
                given_name: "Эмир".into(),
                patronymic: None,
                sex: kamkor_domain::Sex::Male,
                birth_date: None,
                national_id: None,
                citizenship: None,
                residence_territory: None,
                address: None,
                disability: None,
                legal_status: None,
                social_payments: vec![],
                extra: Default::default(),
            },
        )])
        .await
        .unwrap();
        tx.commit().await.unwrap();
    });
    let (ok, _, err) = run(&["demo", "--persons", "100", "--data-dir", r]);
    assert!(!ok);
    assert!(err.contains("real person records"), "{err}");
}

#[test]
fn serve_demo_prints_url_and_credentials_and_answers_health() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut child = kamkor()
        .args([
            "serve",
            "--demo",
            "--demo-persons",
            "200",
            "--data-dir",
            d,
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let started = Instant::now();
    let mut url = None;
    let mut admin = false;
    while started.elapsed() < Duration::from_secs(60) {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(u) = line.strip_prefix("Kamkor is running at ") {
            url = Some(u.trim().to_string());
        }
        if line.contains("login: admin") {
            admin = true;
            break;
        }
    }
    let url = url.expect("the URL is printed");
    assert!(admin, "the admin credentials are printed");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(
        &mut s,
        format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let _ = child.kill();
    let _ = child.wait();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"engine\":\"sqlite\""), "{resp}");
}

#[test]
fn ledger_verify_passes_on_an_untouched_ledger_and_names_a_tampered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(run(&["demo", "--data-dir", d, "--persons", "40"]).0);
    let (ok, out, err) = run(&["ledger", "seal", "--data-dir", d]);
    assert!(ok && out.contains("checkpoint signed"), "{out}{err}");
    let (ok, out, err) = run(&["ledger", "verify", "--data-dir", d]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("ledger verified") && out.contains("1 checkpoints"),
        "{out}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ledger-keys/current.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(out.contains("records replayed"), "{out}");
    // An attacker with the database file changes a record behind the ledger's back...
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}/tzhs-kg.db", d);
        let store = kamkor_store::Store::open_url(&url).await.unwrap();
        store
            .execute_unchecked(
                "UPDATE persons SET surname = surname || 'x' WHERE id = (SELECT MIN(id) FROM persons)",
            )
            .await
            .unwrap();
        store.close().await;
    });
    let (ok, out, err) = run(&["ledger", "verify", "--data-dir", d]);
    assert!(!ok, "{out}");
    assert!(err.contains("surname"), "{err}");
    // ... and then one entry.
    rt.block_on(async {
        let url = format!("sqlite://{}/tzhs-kg.db", d);
        let store = kamkor_store::Store::open_url(&url).await.unwrap();
        store
            .execute_unchecked("UPDATE changes SET actor = actor || 'x' WHERE pos = 7")
            .await
            .unwrap();
        store.close().await;
    });
    let (ok, out, err) = run(&["ledger", "verify", "--data-dir", d]);
    assert!(!ok, "{out}");
    assert!(err.contains("position 7"), "{err}");
    // Without the public keys there is nothing to verify against: a clear error.
    let (ok, _, err) = run(&[
        "ledger",
        "verify",
        "--data-dir",
        d,
        "--ledger-keys",
        "/nonexistent",
    ]);
    assert!(!ok);
    assert!(err.contains("public-keys.txt"), "{err}");
}

#[test]
fn an_inclusion_proof_from_the_application_verifies_offline_with_the_public_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(run(&["demo", "--data-dir", d, "--persons", "40"]).0);
    assert!(run(&["ledger", "seal", "--data-dir", d]).0);
    // An auditor asks the application for a proof of entry 5 (as the API does).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let proof = rt.block_on(async {
        let url = format!("sqlite://{}/tzhs-kg.db", d);
        let store = kamkor_store::Store::open_url(&url).await.unwrap();
        let profile = kamkor_app::load_profile(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../profiles/tzhs-kg"
        )))
        .unwrap();
        let app = kamkor_app::App::new(store, profile, kamkor_app::AppConfig::default());
        let today = kamkor_store::now_utc().date();
        app.create_user(
            "test",
            &kamkor_app::NewUser {
                login: "checker".into(),
                full_name: "Аудитор".into(),
                roles: vec![kamkor_domain::policy::Role::Auditor],
                organisation: String::new(),
                scope_territory: None,
                valid_from: today,
                valid_until: None,
                password: Some("correct horse battery staple".into()),
            },
        )
        .await
        .unwrap();
        let login = app
            .login("checker", "correct horse battery staple", None, None)
            .await
            .unwrap();
        let (ctx, _) = app.session_ctx(&login.token, None, None).await.unwrap();
        let p = app.inclusion_proof(&ctx, 5, None).await.unwrap();
        app.store.close().await;
        serde_json::to_string_pretty(&p).unwrap()
    });
    let file = dir.path().join("proof.json");
    std::fs::write(&file, &proof).unwrap();
    let keys = dir.path().join("ledger-keys/public-keys.txt");
    let (ok, out, err) = run(&[
        "ledger",
        "verify-proof",
        "--public-keys",
        keys.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("inclusion proof verified: entry 5"), "{out}");
    // The same proof with the entry altered is refused.
    let mut v: serde_json::Value = serde_json::from_str(&proof).unwrap();
    v["entry"]["actor"] = serde_json::json!("someone else");
    std::fs::write(&file, v.to_string()).unwrap();
    let (ok, _, err) = run(&[
        "ledger",
        "verify-proof",
        "--public-keys",
        keys.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("not in the ledger"), "{err}");
}

/// Issue 6 item 3: `kamkor duplicates` lists the likely pairs with score and evidence, and
/// leaves a different person alone.
#[test]
fn duplicates_lists_likely_pairs_with_their_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    assert!(run(&["migrate", "--data-dir", d]).0);
    let person = |surname: &str, given: &str, birth: &str, id: Option<&str>| {
        kamkor_domain::records::PersonData {
            role: kamkor_domain::records::PersonRole::Subject,
            surname: surname.into(),
            given_name: given.into(),
            patronymic: None,
            sex: kamkor_domain::Sex::Male,
            birth_date: kamkor_domain::records::parse_date(birth),
            national_id: id.map(str::to_string),
            citizenship: None,
            residence_territory: None,
            address: None,
            disability: None,
            legal_status: None,
            social_payments: vec![],
            extra: Default::default(),
        }
    };
    let (a, b, c) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = kamkor_store::Store::open_url(&format!("sqlite://{d}/tzhs-kg.db?mode=rwc"))
            .await
            .unwrap();
        let mut tx = store.begin("test", None).await.unwrap();
        tx.insert_persons(&[
            (
                a,
                person("Асанов", "Эмир", "2015-03-09", Some("20903201500011")),
            ),
            (b, person("Asanov", "Emir", "2015-09-03", None)),
            (
                c,
                person("Асанов", "Бакыт", "2015-03-09", Some("20903201500022")),
            ),
        ])
        .await
        .unwrap();
        tx.commit().await.unwrap();
    });
    let (ok, out, err) = run(&["duplicates", "--json", "--data-dir", d]);
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    let ids = [
        lines[0]["a"].as_str().unwrap(),
        lines[0]["b"].as_str().unwrap(),
    ];
    assert!(ids.contains(&a.to_string().as_str()) && ids.contains(&b.to_string().as_str()));
    assert_eq!(lines[0]["evidence"]["birth_date"], "day_month_swapped");
    assert!(
        err.contains("3 persons compared, 1 likely duplicate pairs"),
        "{err}"
    );
    let (ok, out, _) = run(&["duplicates", "--data-dir", d]);
    assert!(ok && out.contains("Asanov Emir"), "{out}");
    assert!(!run(&["duplicates", "--min-score", "2", "--data-dir", d]).0);
    assert!(run(&["ledger", "seal", "--data-dir", d]).0);
    let (ok, out, err) = run(&["ledger", "verify", "--data-dir", d]);
    assert!(ok, "{out} {err}");
}

/// Issue 6 item 4: `kamkor bench --persons N` builds a labelled registry, measures search and
/// duplicate detection, the server's memory, and prints one table with the rows scripts
/// rely on; the pg_trgm row says what it needs when no baseline URL is given (and runs when
/// the test PostgreSQL is there).
#[test]
fn bench_prints_one_table_with_quality_and_the_baseline_row() {
    let (ok, out, err) = run(&["bench", "--persons", "600", "--queries", "30"]);
    assert!(ok, "{out}\n{err}");
    for row in [
        "name search p95",
        "identifier search p95",
        "birth date search p95",
        "recall@10",
        "MRR",
        "F1",
        "dedup run",
        "server resident memory",
    ] {
        assert!(out.contains(row), "{row} missing:\n{out}");
    }
    assert!(
        out.contains("pg_trgm baseline") && out.contains("--baseline-pg"),
        "{out}"
    );
    assert!(
        out.contains(" MiB"),
        "the server's memory was measured:\n{out}"
    );
    let f1: f64 = out
        .lines()
        .find(|l| l.starts_with("| F1 "))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .expect("an F1 figure");
    assert!(f1 > 0.8, "{out}");
    if let Ok(pg) = std::env::var("KAMKOR_TEST_PG") {
        let (ok, out, err) = run(&[
            "bench",
            "--persons",
            "400",
            "--queries",
            "20",
            "--no-server",
            "--baseline-pg",
            &pg,
        ]);
        assert!(ok, "{out}\n{err}");
        assert!(
            out.contains("pg_trgm recall@10") && out.contains("ratio p95 pg_trgm / ours"),
            "{out}"
        );
    }
    let (ok, _, err) = run(&["bench", "--persons", "5"]);
    assert!(!ok && err.contains("--persons"), "{err}");
}

/// Issue 6 item 4: the demo adds known duplicates on request and writes their labels; the
/// batch finder proposes most of them, and the ledger still verifies.
#[test]
fn demo_adds_labelled_duplicates_that_the_batch_finds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let labels = dir.path().join("labels.csv");
    let (ok, out, err) = run(&[
        "demo",
        "--persons",
        "400",
        "--duplicates",
        "10",
        "--labels",
        labels.to_str().unwrap(),
        "--data-dir",
        d,
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("known duplicate records"), "{out}");
    let csv = std::fs::read_to_string(&labels).unwrap();
    let pairs: Vec<(String, String)> = csv
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect();
    assert!(pairs.len() >= 5, "{csv}");
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .split(',')
            .nth(2)
            .unwrap()
            .contains("no_national_id")
    );
    let (ok, out, err) = run(&["duplicates", "--json", "--limit", "100000", "--data-dir", d]);
    assert!(ok, "{err}");
    let found = pairs
        .iter()
        .filter(|(a, b)| {
            out.lines()
                .any(|l| l.contains(a.as_str()) && l.contains(b.as_str()))
        })
        .count();
    assert!(
        found * 10 >= pairs.len() * 8,
        "{found} of {} found:\n{out}",
        pairs.len()
    );
    assert!(run(&["ledger", "seal", "--data-dir", d]).0);
    let (ok, out, err) = run(&["ledger", "verify", "--data-dir", d]);
    assert!(ok, "{out} {err}");
}
