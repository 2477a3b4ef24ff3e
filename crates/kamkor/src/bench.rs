//! `kamkor bench ledger`: the ledger's figures (issue 4), measured on this machine into a
//! temporary SQLite database (or the PostgreSQL at `--database`, which it fills and leaves):
//!
//! - `ledger verify` throughput on N entries, next to `sha256sum` over as many bytes (the
//!   hashing limit);
//! - what the ledger costs a write: person updates per second with and without their ledger
//!   entry, in one run;
//! - the peak memory of the process (verification streams: it must not grow with N).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use kamkor_app::ledger::{LedgerKeys, verify_ledger};
use kamkor_app::{App, AppConfig};
use kamkor_domain::Sex;
use kamkor_domain::records::{PersonData, PersonRole};
use kamkor_store::Store;
use uuid::Uuid;

/// Entries per write transaction while filling.
const FILL_BATCH: usize = 5000;

/// A memory figure of this process from /proc/self/status (`VmHWM`: peak, `VmRSS`: now).
fn status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn person(i: usize, territory: &str) -> PersonData {
    PersonData {
        role: PersonRole::Subject,
        surname: format!("Асанов{}", i % 1000),
        given_name: "Айбек".into(),
        patronymic: Some("Нурланович".into()),
        sex: Sex::Male,
        birth_date: time::Date::from_calendar_date(2015, time::Month::March, 9).ok(),
        national_id: None,
        citizenship: Some("KG".into()),
        residence_territory: Some(territory.into()),
        address: Some(format!("с. Теплоключенка, ул. Ленина, {i}")),
        disability: None,
        legal_status: None,
        social_payments: vec![],
        extra: serde_json::Map::new(),
    }
}

/// Hash `bytes` bytes with the system's `sha256sum` (written to a file first); seconds.
fn sha256sum_seconds(dir: &Path, bytes: u64) -> Result<(f64, &'static str)> {
    use std::io::Write;
    let file = dir.join("sha256-baseline.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        let block: Vec<u8> = (0..1 << 20)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            f.write_all(&block[..n])?;
            left -= n as u64;
        }
        f.flush()?;
    }
    let started = Instant::now();
    let ok = std::process::Command::new("sha256sum")
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    if ok {
        Ok((secs, "sha256sum"))
    } else {
        Err(anyhow!("sha256sum is not available on this machine"))
    }
}

pub async fn ledger(
    profile: kamkor_domain::profile::Profile,
    database: Option<&str>,
    entries: u64,
    updates: u64,
) -> Result<()> {
    let dir = tempfile::tempdir().context("temporary directory")?;
    let store = match database {
        Some(url) => Store::open_url(url).await.context("open the database")?,
        None => Store::open_sqlite_dir(dir.path())
            .await
            .context("open a temporary SQLite database")?,
    };
    store.migrate().await.context("migrate")?;
    let engine = store.engine().name();
    let app = App::new(store, profile, AppConfig::default());
    app.bind_profile().await.map_err(|e| anyhow!("{e}"))?;
    let keys = LedgerKeys::open_or_create(&dir.path().join("keys")).map_err(|e| anyhow!("{e}"))?;
    println!("kamkor bench ledger — engine {engine}, {entries} entries, {updates} updates");

    // 1. Fill: views, each one entry, written through the same path as the application's.
    let started = Instant::now();
    let detail = serde_json::json!({"q": "Асанов Айбек 09.03.2015", "page": 0});
    let mut written = 0u64;
    while written < entries {
        let n = (entries - written).min(FILL_BATCH as u64) as usize;
        let ids: Vec<String> = (0..n).map(|_| Uuid::now_v7().to_string()).collect();
        let mut tx = app.store.begin("bench", Some("bench")).await?;
        tx.record_events("search", "person", &ids, Some(detail.clone()))
            .await?;
        tx.commit().await?;
        written += n as u64;
    }
    let fill = started.elapsed().as_secs_f64();
    println!(
        "  filled {written} entries in {fill:.1} s ({:.0} entries/s)",
        written as f64 / fill.max(1e-9)
    );
    let started = Instant::now();
    app.seal_ledger(&keys).await.map_err(|e| anyhow!("{e}"))?;
    println!(
        "  first checkpoint over all of them: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // How much of it is reading: the same entries fetched without hashing.
    let started = Instant::now();
    let mut from = 0u64;
    loop {
        let batch = app.store.ledger_batch(from, 10_000).await?;
        let entries = batch.entries()?;
        let Some(last) = entries.last() else { break };
        from = last.pos as u64 + 1;
    }
    println!(
        "  reading the entries alone: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 2. Verify, and the hashing limit on as many bytes.
    let bytes = entry_bytes_total(&app.store, entries).await?;
    // The peak resident memory of verification alone (Linux: "5" resets the peak).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_mib("VmRSS:");
    let started = Instant::now();
    let report = verify_ledger(&app.store, &keys.trusted, &app.ledger_origin())
        .await
        .map_err(|e| anyhow!("{e}"))?
        .map_err(|p| anyhow!("the fresh ledger does not verify: {p}"))?;
    let verify = started.elapsed().as_secs_f64();
    let (sha, tool) = sha256sum_seconds(dir.path(), bytes)?;
    let vps = report.entries as f64 / verify.max(1e-9);
    let sps = report.entries as f64 / sha.max(1e-9);
    println!(
        "  ledger verify: {} entries ({:.0} MB of entries) in {verify:.1} s = {vps:.0} entries/s, {:.1} MB/s",
        report.entries,
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / verify.max(1e-9)
    );
    println!(
        "    of which entries and tree {:.1} s, replay of the state tables {:.1} s",
        report.tree_seconds, report.replay_seconds
    );
    if let (Some(before), Some(peak)) = (rss_before, status_mib("VmHWM:")) {
        println!(
            "    resident memory: {before:.0} MiB before, at most {peak:.0} MiB while verifying ({:+.0} MiB)",
            peak - before
        );
    }
    println!(
        "  {tool} over the same {:.0} MB: {sha:.2} s = {sps:.0} entries/s equivalent, {:.1} MB/s",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / sha.max(1e-9)
    );
    println!(
        "  verify takes {:.1}x the time of {tool} (goal: within 2x)",
        verify / sha.max(1e-9)
    );

    // 3. What the ledger costs a write: the same updates with and without their entry.
    if updates > 0 {
        let territory = app
            .profile
            .leaf_territories()
            .first()
            .map(|t| t.code.clone())
            .unwrap_or_default();
        let persons: Vec<(Uuid, PersonData)> = (0..200)
            .map(|i| (Uuid::now_v7(), person(i, &territory)))
            .collect();
        let mut tx = app.store.begin("bench", None).await?;
        tx.insert_persons(&persons).await?;
        tx.commit().await?;
        let mut versions = vec![1i64; persons.len()];
        // Ten rounds, alternating which goes first, so that drift (the write-ahead log
        // growing and being checkpointed, caches warming) falls on both alike.
        let rounds = 10u64;
        let per_round = (updates / rounds).max(1);
        let (mut t_without, mut t_with) = (0.0f64, 0.0f64);
        for round in 0..rounds {
            for with_ledger in [round % 2 == 0, round % 2 != 0] {
                let secs =
                    update_seconds(&app, &persons, &mut versions, per_round, with_ledger).await?;
                if with_ledger {
                    t_with += secs;
                } else {
                    t_without += secs;
                }
            }
        }
        let done = (per_round * rounds) as f64;
        let without = done / t_without.max(1e-9);
        let with = done / t_with.max(1e-9);
        println!(
            "  person updates: {without:.0}/s without the ledger, {with:.0}/s with it: {:.0} % slower (goal: under 25 %)",
            (1.0 - with / without.max(1e-9)) * 100.0
        );
    }
    if let Some(mib) = status_mib("VmHWM:") {
        println!("  peak memory of the whole run (filling included): {mib:.0} MiB");
    }
    if database.is_some() {
        println!("  (the database at --database now holds the benchmark's rows)");
    }
    Ok(())
}

/// Update persons in turn, one transaction each, with or without the ledger entry; the
/// seconds it took.
async fn update_seconds(
    app: &App,
    persons: &[(Uuid, PersonData)],
    versions: &mut [i64],
    updates: u64,
    with_ledger: bool,
) -> Result<f64> {
    let started = Instant::now();
    for i in 0..updates as usize {
        let k = i % persons.len();
        let (id, before) = &persons[k];
        let mut after = before.clone();
        after.address = Some(format!("ул. Ленина, {}", versions[k]));
        let mut tx = app.store.begin("bench", None).await?;
        versions[k] = if with_ledger {
            tx.update_person(*id, versions[k], before, &after).await?
        } else {
            tx.bench_update_person_without_ledger(*id, versions[k], &after)
                .await?
        };
        tx.commit().await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Bytes the leaf hashes covered: the encoded entries.
async fn entry_bytes_total(store: &Store, entries: u64) -> Result<u64> {
    // Every filled entry has the same shape; measure one and count.
    let e = store
        .ledger_entry(entries.saturating_sub(1))
        .await?
        .ok_or_else(|| anyhow!("no entries"))?;
    Ok(kamkor_ledger::entry_bytes(&e.fields()).len() as u64 * entries)
}
