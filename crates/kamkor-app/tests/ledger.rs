//! The ledger against an attacker with database access (issue 4 "How it will be checked"):
//! every tampering is named by `verify_ledger`; an untouched ledger verifies clean. SQLite
//! always, PostgreSQL when `KAMKOR_TEST_PG` is set.

use kamkor_app::ledger::{LedgerKeys, LedgerProblem, verify_ledger};
use kamkor_app::{App, AppConfig};
use kamkor_ledger::SecretKey;
use kamkor_store::{CheckpointRow, Store};
use uuid::Uuid;

struct Env {
    name: &'static str,
    app: App,
    keys: LedgerKeys,
    _dirs: Vec<tempfile::TempDir>,
}

fn profile() -> kamkor_domain::profile::Profile {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/tzhs-kg");
    kamkor_app::load_profile(&dir).expect("profile")
}

async fn envs() -> Vec<Env> {
    let mut stores: Vec<(&'static str, Store, Option<tempfile::TempDir>)> = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    stores.push((
        "sqlite",
        Store::open_sqlite_dir(dir.path()).await.expect("sqlite"),
        Some(dir),
    ));
    if let Ok(url) = std::env::var("KAMKOR_TEST_PG")
        && !url.is_empty()
    {
        let schema = format!("t_{}", Uuid::now_v7().simple());
        stores.push((
            "postgres",
            Store::open_postgres_schema(&url, &schema)
                .await
                .expect("postgres"),
            None,
        ));
    }
    let mut out = Vec::new();
    for (name, store, dir) in stores {
        store.migrate().await.expect("migrate");
        let app = App::new(store, profile(), AppConfig::default());
        app.bind_profile().await.expect("bind");
        let key_dir = tempfile::tempdir().expect("key dir");
        let keys = LedgerKeys::open_or_create(key_dir.path()).expect("keys");
        let mut dirs = vec![key_dir];
        dirs.extend(dir);
        out.push(Env {
            name,
            app,
            keys,
            _dirs: dirs,
        });
    }
    out
}

/// Some history: demo records (many entries), sealed once in the middle and once at the end.
async fn history(e: &Env) {
    kamkor_app::demo::generate(&e.app, 30, 7, 0, |_| {})
        .await
        .expect("demo");
    e.app.seal_ledger(&e.keys).await.expect("seal");
    let mut tx = e
        .app
        .store
        .begin("tester", Some("req-1"))
        .await
        .expect("begin");
    tx.set_meta("note", "more").await.expect("meta");
    tx.commit().await.expect("commit");
    e.app.seal_ledger(&e.keys).await.expect("seal");
}

async fn verify(e: &Env) -> Result<kamkor_app::ledger::VerifyReport, LedgerProblem> {
    verify_ledger(&e.app.store, &e.keys.trusted, &e.app.ledger_origin())
        .await
        .expect("verify runs")
}

#[tokio::test]
async fn an_untouched_ledger_verifies_clean() {
    for e in envs().await {
        history(&e).await;
        let r = verify(&e)
            .await
            .unwrap_or_else(|p| panic!("{}: {p}", e.name));
        assert!(r.entries > 30, "{}: {r:?}", e.name);
        assert_eq!(r.checkpoints, 2, "{}", e.name);
        assert_eq!(r.entries, e.app.store.ledger_size().await.expect("size"));
        // Nothing new: no new checkpoint.
        assert!(e.app.seal_ledger(&e.keys).await.expect("seal").is_none());
    }
}

#[tokio::test]
async fn a_changed_byte_in_an_entry_is_named() {
    for e in envs().await {
        history(&e).await;
        e.app
            .store
            .execute_unchecked("UPDATE changes SET actor = 'someone' || actor WHERE pos = 3")
            .await
            .expect("tamper");
        assert_eq!(
            verify(&e).await,
            Err(LedgerProblem::EntryAltered {
                pos: 3,
                seq: seq_at(&e, 3).await
            }),
            "{}",
            e.name
        );
    }
}

async fn seq_at(e: &Env, pos: u64) -> i64 {
    e.app
        .store
        .ledger_entry(pos)
        .await
        .expect("read")
        .expect("entry")
        .seq
}

#[tokio::test]
async fn a_deleted_entry_is_named() {
    for e in envs().await {
        history(&e).await;
        e.app
            .store
            .execute_unchecked("DELETE FROM changes WHERE pos = 5")
            .await
            .expect("tamper");
        assert_eq!(
            verify(&e).await,
            Err(LedgerProblem::EntryMissing { pos: 5 }),
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn reordered_entries_are_named_even_with_their_hashes_recomputed() {
    for e in envs().await {
        history(&e).await;
        // Swap the positions of two entries: the position is part of what the hash covers.
        let s = &e.app.store;
        s.execute_unchecked("UPDATE changes SET pos = -7 WHERE pos = 1")
            .await
            .expect("a");
        s.execute_unchecked("UPDATE changes SET pos = 1 WHERE pos = 2")
            .await
            .expect("b");
        s.execute_unchecked("UPDATE changes SET pos = 2 WHERE pos = -7")
            .await
            .expect("c");
        assert!(
            matches!(
                verify(&e).await,
                Err(LedgerProblem::EntryAltered { pos: 1, .. })
            ),
            "{}",
            e.name
        );
        // A careful attacker recomputes the two hashes: the signed checkpoint still tells.
        for pos in [1, 2] {
            let entry = s.ledger_entry(pos).await.expect("read").expect("entry");
            let h = kamkor_ledger::to_hex(&kamkor_ledger::entry_hash(&entry.fields()));
            s.execute_unchecked(&format!(
                "UPDATE changes SET leaf_hash = '{h}' WHERE seq = {}",
                entry.seq
            ))
            .await
            .expect("rehash");
        }
        match verify(&e).await {
            Err(LedgerProblem::RootMismatch { from: 0, .. }) => {}
            other => panic!("{}: {other:?}", e.name),
        }
    }
}

#[tokio::test]
async fn a_checkpoint_forged_with_another_key_is_named() {
    for e in envs().await {
        history(&e).await;
        let size = e.app.store.ledger_size().await.expect("size");
        // Add entries, and sign them with a key that is not the installation's.
        let mut tx = e.app.store.begin("intruder", None).await.expect("begin");
        tx.set_meta("note", "forged").await.expect("meta");
        tx.commit().await.expect("commit");
        let impostor = LedgerKeys {
            dir: e.keys.dir.clone(),
            current: SecretKey::from_seed([9; 32]),
            trusted: vec![],
        };
        e.app
            .seal_ledger(&impostor)
            .await
            .expect("seal")
            .expect("a checkpoint");
        match verify(&e).await {
            Err(LedgerProblem::UnknownKey { size: s, .. }) => assert_eq!(s, size + 1),
            other => panic!("{}: {other:?}", e.name),
        }
        // A signature that does not match its checkpoint is forged, whatever key it names.
        e.app
            .store
            .execute_unchecked(&format!(
                "DELETE FROM ledger_checkpoints WHERE size = {}",
                size + 1
            ))
            .await
            .expect("drop");
        let cp = e
            .app
            .store
            .latest_checkpoint()
            .await
            .expect("read")
            .expect("one");
        let mut forged = cp.checkpoint.clone();
        forged.size += 1;
        forged.root = kamkor_ledger::to_hex(&kamkor_ledger::leaf_hash(b"x"));
        e.app
            .store
            .insert_checkpoint(&CheckpointRow {
                checkpoint: forged,
                peaks: cp.peaks,
            })
            .await
            .expect("insert");
        assert!(
            matches!(verify(&e).await, Err(LedgerProblem::BadSignature { .. })),
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn a_truncated_tail_is_named_and_resigning_with_the_wrong_key_too() {
    for e in envs().await {
        history(&e).await;
        let size = e.app.store.ledger_size().await.expect("size");
        e.app
            .store
            .execute_unchecked(&format!("DELETE FROM changes WHERE pos >= {}", size - 3))
            .await
            .expect("truncate");
        match verify(&e).await {
            Err(LedgerProblem::Truncated {
                entries,
                size: covered,
            }) => {
                assert_eq!(entries, size - 3, "{}", e.name);
                assert!(covered > entries, "{}", e.name);
            }
            other => panic!("{}: {other:?}", e.name),
        }
        // Hide it: drop the checkpoints past the cut and sign the shorter ledger with another
        // key.
        e.app
            .store
            .execute_unchecked(&format!(
                "DELETE FROM ledger_checkpoints WHERE size > {}",
                size - 3
            ))
            .await
            .expect("drop");
        let impostor = LedgerKeys {
            dir: e.keys.dir.clone(),
            current: SecretKey::from_seed([3; 32]),
            trusted: vec![],
        };
        e.app.seal_ledger(&impostor).await.expect("seal");
        assert!(
            matches!(verify(&e).await, Err(LedgerProblem::UnknownKey { .. })),
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn rotating_the_key_keeps_old_checkpoints_verifiable() {
    for mut e in envs().await {
        history(&e).await;
        let old = e.keys.current.public().id;
        let new = e.keys.rotate().expect("rotate").id;
        assert_ne!(old, new);
        let mut tx = e.app.store.begin("tester", None).await.expect("begin");
        tx.set_meta("note", "after rotation").await.expect("meta");
        tx.commit().await.expect("commit");
        e.app
            .seal_ledger(&e.keys)
            .await
            .expect("seal")
            .expect("checkpoint");
        // Reopened from disk: both keys are trusted, the new one signs.
        let reopened = LedgerKeys::open(&e.keys.dir).expect("reopen");
        assert_eq!(reopened.current.public().id, new);
        let r = verify_ledger(&e.app.store, &reopened.trusted, &e.app.ledger_origin())
            .await
            .expect("verify")
            .unwrap_or_else(|p| panic!("{}: {p}", e.name));
        assert!(
            r.keys.contains(&old) && r.keys.contains(&new),
            "{}: {r:?}",
            e.name
        );
    }
}

#[cfg(unix)]
#[test]
fn the_key_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let keys = LedgerKeys::open_or_create(dir.path()).expect("keys");
    let mode = std::fs::metadata(dir.path().join("current.key"))
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Opening again keeps the same key.
    let again = LedgerKeys::open_or_create(dir.path()).expect("again");
    assert_eq!(again.current.public(), keys.current.public());
}

#[tokio::test]
async fn concurrent_writers_get_gap_free_positions() {
    for e in envs().await {
        let before = e.app.store.ledger_size().await.expect("size");
        let mut tasks = Vec::new();
        for w in 0..6 {
            let store = e.app.store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let mut tx = store
                        .begin(&format!("writer{w}"), None)
                        .await
                        .expect("begin");
                    tx.set_meta(&format!("w{w}"), &i.to_string())
                        .await
                        .expect("meta");
                    tx.commit().await.expect("commit");
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer");
        }
        assert_eq!(
            e.app.store.ledger_size().await.expect("size"),
            before + 60,
            "{}",
            e.name
        );
        e.app.seal_ledger(&e.keys).await.expect("seal");
        let r = verify(&e)
            .await
            .unwrap_or_else(|p| panic!("{}: {p}", e.name));
        assert_eq!(r.entries, before + 60, "{}", e.name);
    }
}

/// Accounts too: created, password changed (state entries on `user`).
async fn accounts(e: &Env) {
    let today = kamkor_store::now_utc().date();
    let (u, _) = e
        .app
        .create_user(
            "tester",
            &kamkor_app::NewUser {
                login: "worker".into(),
                full_name: "Асанова Айгуль".into(),
                roles: vec![kamkor_domain::policy::Role::Specialist],
                organisation: String::new(),
                scope_territory: None,
                valid_from: today,
                valid_until: None,
                password: None,
            },
        )
        .await
        .expect("user");
    let mut tx = e.app.store.begin("tester", None).await.expect("begin");
    tx.set_password(&u.id, "$argon2id$v=19$test", false)
        .await
        .expect("password");
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn the_state_tables_equal_what_the_ledger_says() {
    for e in envs().await {
        history(&e).await;
        accounts(&e).await;
        let r = verify(&e)
            .await
            .unwrap_or_else(|p| panic!("{}: {p}", e.name));
        assert!(r.records > 30, "{}: {r:?}", e.name);
    }
}

async fn some_person(e: &Env) -> String {
    e.app
        .store
        .ledger_entries(0, 10_000)
        .await
        .expect("entries")
        .into_iter()
        .find(|x| x.entity == "person" && x.action == "create")
        .expect("a person")
        .entity_id
}

#[tokio::test]
async fn a_changed_byte_in_a_state_row_is_named() {
    for e in envs().await {
        history(&e).await;
        let id = some_person(&e).await;
        e.app
            .store
            .execute_unchecked(&format!(
                "UPDATE persons SET surname = surname || 'x' WHERE id = '{id}'"
            ))
            .await
            .expect("tamper");
        match verify(&e).await {
            Err(LedgerProblem::State(kamkor_store::StateProblem::Differs {
                entity,
                id: got,
                field,
                ..
            })) => {
                assert_eq!(
                    (entity.as_str(), got.as_str(), field.as_str()),
                    ("person", id.as_str(), "surname"),
                    "{}",
                    e.name
                );
            }
            other => panic!("{}: {other:?}", e.name),
        }
    }
}

#[tokio::test]
async fn columns_the_ledger_implies_are_checked_too() {
    for e in envs().await {
        history(&e).await;
        accounts(&e).await;
        let id = some_person(&e).await;
        let s = &e.app.store;
        s.execute_unchecked(&format!(
            "UPDATE persons SET created_by = 'intruder' WHERE id = '{id}'"
        ))
        .await
        .expect("tamper");
        assert!(
            matches!(verify(&e).await, Err(LedgerProblem::State(kamkor_store::StateProblem::Differs { ref field, .. })) if field == "created_by"),
            "{}",
            e.name
        );
        s.execute_unchecked(&format!("UPDATE persons SET created_by = (SELECT actor FROM changes WHERE entity = 'person' AND entity_id = '{id}' ORDER BY seq LIMIT 1) WHERE id = '{id}'"))
            .await
            .expect("restore");
        verify(&e)
            .await
            .unwrap_or_else(|p| panic!("{}: restored: {p}", e.name));
        // An account switched back on behind the ledger's back.
        s.execute_unchecked("UPDATE users SET role = 'administrator' WHERE login = 'worker'")
            .await
            .expect("tamper");
        assert!(
            matches!(verify(&e).await, Err(LedgerProblem::State(kamkor_store::StateProblem::Differs { ref entity, ref field, .. })) if entity == "user" && field == "role"),
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn deleted_and_smuggled_rows_are_named() {
    for e in envs().await {
        history(&e).await;
        let id = some_person(&e).await;
        let s = &e.app.store;
        // A row smuggled in without the ledger.
        s.execute_unchecked("INSERT INTO meta (key, value) VALUES ('zzzz-smuggled', 'x')")
            .await
            .expect("smuggle");
        assert_eq!(
            verify(&e).await,
            Err(LedgerProblem::State(
                kamkor_store::StateProblem::Unrecorded {
                    entity: "meta".into(),
                    id: "zzzz-smuggled".into()
                }
            )),
            "{}",
            e.name
        );
        s.execute_unchecked("DELETE FROM meta WHERE key = 'zzzz-smuggled'")
            .await
            .expect("undo");
        // A person removed from the table: its relations and memberships first, as an
        // attacker would.
        for sql in [
            format!("DELETE FROM relations WHERE person_id = '{id}' OR relative_id = '{id}'"),
            format!("DELETE FROM family_members WHERE person_id = '{id}'"),
            format!("DELETE FROM cases WHERE subject_id = '{id}'"),
            format!("DELETE FROM persons WHERE id = '{id}'"),
        ] {
            s.execute_unchecked(&sql).await.expect("delete");
        }
        assert!(
            matches!(
                verify(&e).await,
                Err(LedgerProblem::State(
                    kamkor_store::StateProblem::Missing { .. }
                ))
            ),
            "{}",
            e.name
        );
    }
}

#[tokio::test]
async fn entries_with_any_text_read_back_byte_for_byte() {
    for e in envs().await {
        let mut tx = e
            .app
            .store
            .begin("tester \"q\" \\ ң", Some("req\n\t1"))
            .await
            .expect("begin");
        tx.record_event(
            "view",
            "person",
            "id-\u{1F600}-ө",
            Some(serde_json::json!({"q": "Асанов \"Айбек\" \\ \u{0001} \u{2028} 𝔘 \n end", "n": 1.5e300})),
        )
        .await
        .expect("event");
        tx.commit().await.expect("commit");
        e.app.seal_ledger(&e.keys).await.expect("seal");
        verify(&e)
            .await
            .unwrap_or_else(|p| panic!("{}: {p}", e.name));
    }
}

/// A row planted with a number that sorts before every real one (so a reader in stored order
/// would pass over it) is still found, by position.
#[tokio::test]
async fn an_entry_planted_out_of_the_stored_order_is_named() {
    for e in envs().await {
        history(&e).await;
        let size = e.app.store.ledger_size().await.expect("size");
        e.app
            .store
            .execute_unchecked(&format!(
                "INSERT INTO changes (seq, at, actor, action, entity, entity_id, version, pos, leaf_hash) \
                 VALUES (-5, '2026-01-01T00:00:00.000Z', 'intruder', 'view', 'person', 'x', 0, {}, '00')",
                size + 5
            ))
            .await
            .expect("plant");
        match verify(&e).await {
            Err(LedgerProblem::EntryMissing { pos }) => assert_eq!(pos, size, "{}", e.name),
            other => panic!("{}: {other:?}", e.name),
        }
    }
}
