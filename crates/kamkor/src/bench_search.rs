//! `kamkor bench --persons N`: search and duplicate detection at national scale (issue 6
//! item 4), on this machine, into a temporary SQLite database (or `--data-dir`, or the
//! PostgreSQL of `--database`), and the same name queries against the baseline a peer would
//! use — PostgreSQL `pg_trgm` similarity over a GIN index (`--baseline-pg`) — in the same run.
//!
//! The registry is the labelled synthetic one ([`kamkor_app::synthetic`]): known duplicates
//! with realistic corruptions, and misspelled or transliterated name queries of known persons.
//! A name query is answered when a record of a person with the name sought — or a known
//! duplicate of the person sought — comes back (several persons share a name in a country;
//! a name alone cannot tell them apart, for us or for the baseline).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use kamkor_app::demo::Rng;
use kamkor_app::synthetic::{self, LabelledRegistry};
use kamkor_app::{App, AppConfig};
use kamkor_domain::duplicates::DUPLICATE_SCORE;
use kamkor_domain::person_index::IndexQuery;
use kamkor_domain::profile::Profile;
use kamkor_domain::records::normalize_for_search;
use kamkor_store::Store;
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

/// What to measure.
pub struct SearchBench {
    pub profile: Profile,
    pub profile_name: String,
    pub persons: usize,
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub baseline_pg: Option<String>,
    pub queries: usize,
    pub duplicate_percent: u32,
    pub seed: u64,
    /// Measure the server's memory with the registry (starts `kamkor serve` on it).
    pub server_memory: bool,
    /// Print this many wrongly proposed and missed pairs (to study the matching).
    pub show_errors: usize,
}

/// Persons written per transaction.
const INSERT_BATCH: usize = 10_000;
/// The baseline's time budget for the name queries.
const BASELINE_BUDGET: Duration = Duration::from_secs(240);
/// Results looked at per query.
const TOP: usize = 10;

/// Latency figures of one kind of query, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
struct Latency {
    p50: f64,
    p95: f64,
    p99: f64,
    n: usize,
}

fn latency(mut ms: Vec<f64>) -> Latency {
    if ms.is_empty() {
        return Latency::default();
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    Latency {
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        n: ms.len(),
    }
}

/// Recall@10 and MRR of ranked answers.
#[derive(Debug, Clone, Copy, Default)]
struct Quality {
    recall: f64,
    mrr: f64,
}

fn quality(ranks: &[Option<usize>]) -> Quality {
    if ranks.is_empty() {
        return Quality::default();
    }
    let n = ranks.len() as f64;
    Quality {
        recall: ranks.iter().filter(|r| r.is_some()).count() as f64 / n,
        mrr: ranks
            .iter()
            .map(|r| r.map_or(0.0, |k| 1.0 / (k + 1) as f64))
            .sum::<f64>()
            / n,
    }
}

/// A name query and who answers it.
struct NameQuery {
    text: String,
    relevant: HashSet<Uuid>,
}

fn name_queries(reg: &LabelledRegistry, n: usize, seed: u64) -> Vec<NameQuery> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let duplicates: HashSet<Uuid> = reg.pairs.iter().map(|p| p.duplicate).collect();
    let originals: Vec<usize> = (0..reg.persons.len())
        .filter(|&i| !duplicates.contains(&reg.persons[i].0))
        .collect();
    if originals.is_empty() {
        return Vec::new();
    }
    let targets: Vec<usize> = (0..n)
        .map(|_| originals[rng.below(originals.len())])
        .collect();
    // Everyone with the name sought, and the known duplicates of the person sought.
    let wanted: HashSet<String> = targets
        .iter()
        .map(|&i| reg.persons[i].1.search_name())
        .collect();
    let mut by_name: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (id, p) in &reg.persons {
        let key = p.search_name();
        if wanted.contains(&key) {
            by_name.entry(key).or_default().push(*id);
        }
    }
    let mut dups_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for p in &reg.pairs {
        dups_of.entry(p.original).or_default().push(p.duplicate);
    }
    targets
        .into_iter()
        .map(|i| {
            let (id, p) = &reg.persons[i];
            let (text, _) = synthetic::misspelled_query(p, &mut rng);
            let mut relevant: HashSet<Uuid> = by_name
                .get(&p.search_name())
                .map(|v| v.iter().copied().collect())
                .unwrap_or_default();
            relevant.insert(*id);
            relevant.extend(dups_of.get(id).into_iter().flatten().copied());
            NameQuery { text, relevant }
        })
        .collect()
}

fn first_relevant(ids: &[Uuid], relevant: &HashSet<Uuid>) -> Option<usize> {
    ids.iter().take(TOP).position(|id| relevant.contains(id))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One answer of our search as a user gets it: ranked by the index, the rows read from the
/// store.
async fn our_search(app: &App, q: IndexQuery) -> Result<Vec<Uuid>> {
    let hits = app.rank_persons(&q).await.map_err(|e| anyhow!("{e}"))?;
    let ids: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
    let rows = app.store.persons_by_ids(&ids).await?;
    if rows.len() != ids.len() {
        bail!("the index named persons the store does not have");
    }
    Ok(ids)
}

struct Baseline {
    latency: Latency,
    quality: Quality,
    load: Duration,
    index: Duration,
}

/// The peer's way: the names in a PostgreSQL table with a trigram GIN index, queried by
/// `similarity` through the `%` operator, best first. The table is dropped afterwards.
async fn pg_trgm(url: &str, reg: &LabelledRegistry, queries: &[NameQuery]) -> Result<Baseline> {
    use sqlx::ConnectOptions;
    use sqlx::Row;
    // Slow queries are what is measured here, not something to warn about.
    let options: sqlx::postgres::PgConnectOptions = url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .context("the --baseline-pg URL")?
        .disable_statement_logging();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .context("connect to the baseline PostgreSQL")?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        .execute(&pool)
        .await
        .context("the pg_trgm extension")?;
    sqlx::query("DROP TABLE IF EXISTS kamkor_bench_trgm")
        .execute(&pool)
        .await?;
    sqlx::query("CREATE TABLE kamkor_bench_trgm (id TEXT PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    let started = Instant::now();
    for chunk in reg.persons.chunks(5000) {
        let ids: Vec<String> = chunk.iter().map(|(id, _)| id.to_string()).collect();
        let names: Vec<String> = chunk.iter().map(|(_, p)| p.search_name()).collect();
        sqlx::query(
            "INSERT INTO kamkor_bench_trgm (id, name) SELECT * FROM UNNEST($1::text[], $2::text[])",
        )
        .bind(&ids)
        .bind(&names)
        .execute(&pool)
        .await?;
    }
    let load = started.elapsed();
    let started = Instant::now();
    sqlx::query(
        "CREATE INDEX kamkor_bench_trgm_name ON kamkor_bench_trgm USING gin (name gin_trgm_ops)",
    )
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE kamkor_bench_trgm")
        .execute(&pool)
        .await?;
    let index = started.elapsed();
    let budget = Instant::now();
    let mut times = Vec::new();
    let mut ranks = Vec::new();
    for q in queries {
        if budget.elapsed() > BASELINE_BUDGET {
            break;
        }
        let text = normalize_for_search(&q.text);
        let started = Instant::now();
        let rows = sqlx::query(
            "SELECT id FROM kamkor_bench_trgm WHERE name % $1 ORDER BY similarity(name, $1) DESC, id LIMIT 10",
        )
        .bind(&text)
        .fetch_all(&pool)
        .await?;
        times.push(ms(started.elapsed()));
        let ids: Vec<Uuid> = rows
            .iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok())
            .filter_map(|s| Uuid::parse_str(&s).ok())
            .collect();
        ranks.push(first_relevant(&ids, &q.relevant));
    }
    sqlx::query("DROP TABLE kamkor_bench_trgm")
        .execute(&pool)
        .await?;
    Ok(Baseline {
        latency: latency(times),
        quality: quality(&ranks),
        load,
        index,
    })
}

/// The resident memory of `kamkor serve` once it has filled its person index on this
/// registry, in MiB (from /proc/PID/status), and how long the fill took.
async fn server_memory(
    b: &SearchBench,
    data_dir: &Path,
    key_dir: &Path,
) -> Result<(f64, f64, Duration)> {
    let exe = std::env::current_exe().context("the kamkor binary")?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--profile")
        .arg(&b.profile_name)
        .arg("--ledger-keys")
        .arg(key_dir)
        .arg("--data-dir")
        .arg(data_dir);
    if let Some(url) = &b.database {
        cmd.arg("--database").arg(url);
    }
    cmd.env("RUST_LOG", "info,sqlx=warn")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd.spawn().context("start kamkor serve")?;
    let pid = child.id().ok_or_else(|| anyhow!("the server has no pid"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow!("no server output"))?;
    let mut lines = BufReader::new(stderr).lines();
    let filled = tokio::time::timeout(Duration::from_secs(600), async {
        while let Some(line) = lines.next_line().await? {
            let line = strip_ansi(&line);
            if line.contains("person index filled") {
                // The server must have found this very registry.
                let wanted = format!("persons={}", b.persons);
                return Ok::<bool, std::io::Error>(line.contains(&wanted));
            }
        }
        Ok(false)
    })
    .await;
    let fill = started.elapsed();
    // Let the start-up work settle before reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let read = |key: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
    };
    let (rss, hwm) = (read("VmRSS:"), read("VmHWM:"));
    let _ = child.kill().await;
    match filled {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => {
            bail!("the server stopped before filling its index, or filled it from another registry")
        }
        Ok(Err(e)) => bail!("reading the server's output: {e}"),
        Err(_) => bail!("the server did not fill its index within 10 minutes"),
    }
    match (rss, hwm) {
        (Some(r), Some(h)) => Ok((r, h, fill)),
        _ => bail!("no memory figures for the server (is /proc mounted?)"),
    }
}

/// A log line without its colour codes.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_code = false;
    for c in s.chars() {
        match (in_code, c) {
            (false, '\u{1b}') => in_code = true,
            (true, 'm') => in_code = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

fn row(name: &str, value: String, note: &str) {
    println!("| {name:<34} | {value:>14} | {note}");
}

pub async fn run(b: SearchBench) -> Result<()> {
    if b.persons < 100 {
        bail!("--persons must be at least 100");
    }
    if b.duplicate_percent > 50 {
        bail!("--duplicates must be a per cent between 0 and 50");
    }
    let tmp = tempfile::tempdir().context("temporary directory")?;
    let data_dir = b
        .data_dir
        .clone()
        .unwrap_or_else(|| tmp.path().join("data"));
    let store = match &b.database {
        Some(url) => Store::open_url(url).await.context("open the database")?,
        None => {
            // Where `kamkor serve --data-dir` looks for the profile's database.
            std::fs::create_dir_all(&data_dir).context("the data directory")?;
            let file = data_dir.join(format!("{}.db", b.profile_name));
            Store::open_url(&format!("sqlite://{}?mode=rwc", file.display()))
                .await
                .context("open the SQLite database")?
        }
    };
    store.migrate().await.context("migrate")?;
    let engine = store.engine().name();
    if store.count(kamkor_store::Table::Persons).await? > 0 {
        bail!(
            "the database already holds persons; the benchmark builds its own registry in an empty one"
        );
    }
    let app = App::new(store, b.profile.clone(), AppConfig::default());
    app.bind_profile().await.map_err(|e| anyhow!("{e}"))?;
    println!(
        "kamkor bench — search and duplicates: {} persons, engine {engine}, profile {}",
        b.persons, b.profile_name
    );

    // 1. The labelled registry, written through the application's own path (ledgered).
    let started = Instant::now();
    let reg = synthetic::registry(&b.profile, b.persons, b.duplicate_percent, b.seed);
    let generate = started.elapsed();
    let started = Instant::now();
    let mut last = Instant::now();
    for (i, chunk) in reg.persons.chunks(INSERT_BATCH).enumerate() {
        let mut tx = app.store.begin("bench", Some("bench")).await?;
        tx.insert_persons(chunk).await?;
        tx.commit().await?;
        if last.elapsed() > Duration::from_secs(15) {
            eprintln!("  … {} persons written", (i + 1) * INSERT_BATCH);
            last = Instant::now();
        }
    }
    let write = started.elapsed();
    println!(
        "  registry: {} persons ({} known duplicates) generated in {:.1} s, written with their ledger entries in {:.1} s",
        reg.persons.len(),
        reg.pairs.len(),
        generate.as_secs_f64(),
        write.as_secs_f64()
    );
    let started = Instant::now();
    app.refresh_person_index()
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let fill = started.elapsed();

    // 2. Our search: names (misspelled, transliterated), identifiers, birth dates.
    let queries = name_queries(&reg, b.queries, b.seed);
    let mut times = Vec::new();
    let mut ranks = Vec::new();
    for q in &queries {
        let started = Instant::now();
        let ids = our_search(
            &app,
            IndexQuery {
                name: Some(q.text.clone()),
                limit: TOP,
                ..Default::default()
            },
        )
        .await?;
        times.push(ms(started.elapsed()));
        ranks.push(first_relevant(&ids, &q.relevant));
    }
    let name_latency = latency(times);
    let ours = quality(&ranks);

    let mut rng = Rng::new(b.seed ^ 0x1d);
    let with_id: Vec<&(Uuid, kamkor_domain::records::PersonData)> = reg
        .persons
        .iter()
        .filter(|(_, p)| p.national_id.is_some())
        .collect();
    let mut times = Vec::new();
    let mut id_found = 0usize;
    for k in 0..b.queries.min(with_id.len()) {
        let (id, p) = with_id[rng.below(with_id.len())];
        let mut nid = p.national_id.clone().unwrap_or_default();
        if k % 2 == 1 {
            // One digit wrong.
            let mut cs: Vec<char> = nid.chars().collect();
            let i = rng.below(cs.len());
            let d = cs[i].to_digit(10).unwrap_or(0);
            cs[i] = char::from_digit((d + 1 + rng.below(9) as u32) % 10, 10).unwrap_or('0');
            nid = cs.into_iter().collect();
        }
        let started = Instant::now();
        let ids = our_search(
            &app,
            IndexQuery {
                national_id: Some(nid),
                limit: TOP,
                ..Default::default()
            },
        )
        .await?;
        times.push(ms(started.elapsed()));
        if ids.contains(id) {
            id_found += 1;
        }
    }
    let id_latency = latency(times);
    let id_share = id_found as f64 / id_latency.n.max(1) as f64;
    let mut times = Vec::new();
    for _ in 0..b.queries {
        let (_, p) = &reg.persons[rng.below(reg.persons.len())];
        let Some(birth) = p.birth_date else { continue };
        let started = Instant::now();
        our_search(
            &app,
            IndexQuery {
                birth_date: Some(birth),
                limit: TOP,
                ..Default::default()
            },
        )
        .await?;
        times.push(ms(started.elapsed()));
    }
    let date_latency = latency(times);

    // 3. Duplicate detection over the whole registry, against the labels.
    let started = Instant::now();
    let scan = app
        .find_duplicates(DUPLICATE_SCORE)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let dedup = started.elapsed();
    // Every two records of one person: an original and its duplicates, and two duplicates
    // of the same original.
    let mut records_of: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for p in &reg.pairs {
        records_of
            .entry(p.original)
            .or_insert_with(|| vec![p.original])
            .push(p.duplicate);
    }
    let mut truth: HashSet<(Uuid, Uuid)> = HashSet::new();
    for ids in records_of.values() {
        for (k, x) in ids.iter().enumerate() {
            for y in &ids[k + 1..] {
                truth.insert(kamkor_store::ordered_pair(*x, *y));
            }
        }
    }
    let found: HashSet<(Uuid, Uuid)> = scan
        .pairs
        .iter()
        .map(|p| kamkor_store::ordered_pair(p.a.id, p.b.id))
        .collect();
    let right = found.intersection(&truth).count() as f64;
    if b.show_errors > 0 {
        let by_id: HashMap<Uuid, &kamkor_domain::records::PersonData> =
            reg.persons.iter().map(|(id, p)| (*id, p)).collect();
        let show = |p: &kamkor_domain::records::PersonData| {
            format!(
                "{} {:?} {:?} {:?}",
                p.full_name(),
                p.birth_date.map(kamkor_domain::records::format_date),
                p.national_id,
                p.sex
            )
        };
        // A sample spread over all the wrong ones, best scored first.
        let wrong: Vec<_> = scan
            .pairs
            .iter()
            .filter(|p| !truth.contains(&kamkor_store::ordered_pair(p.a.id, p.b.id)))
            .collect();
        println!("  wrongly proposed ({} in all):", wrong.len());
        let step = wrong.len().checked_div(b.show_errors).unwrap_or(1).max(1);
        for p in wrong.iter().step_by(step).take(b.show_errors) {
            println!(
                "    {:.3} name {:.3} {:?} {:?} | {} | {}",
                p.evidence.score,
                p.evidence.name,
                p.evidence.birth_date,
                p.evidence.national_id,
                show(by_id[&p.a.id]),
                show(by_id[&p.b.id])
            );
        }
        println!("  missed:");
        for l in reg
            .pairs
            .iter()
            .filter(|l| !found.contains(&kamkor_store::ordered_pair(l.original, l.duplicate)))
            .take(b.show_errors)
        {
            let (o, d) = (by_id[&l.original], by_id[&l.duplicate]);
            let e = kamkor_domain::duplicates::compare(
                &kamkor_domain::duplicates::DupPerson::new(
                    &o.full_name(),
                    o.birth_date,
                    o.national_id.as_deref(),
                    Some(o.sex),
                ),
                &kamkor_domain::duplicates::DupPerson::new(
                    &d.full_name(),
                    d.birth_date,
                    d.national_id.as_deref(),
                    Some(d.sex),
                ),
            );
            println!(
                "    {:.3} name {:.3} {:?} | {} | {} | {:?}",
                e.score,
                e.name,
                l.corruptions.iter().map(|c| c.code()).collect::<Vec<_>>(),
                show(o),
                show(d),
                e.national_id
            );
        }
    }
    let precision = if found.is_empty() {
        1.0
    } else {
        right / found.len() as f64
    };
    let recall = if truth.is_empty() {
        1.0
    } else {
        right / truth.len() as f64
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };

    // 4. The baseline, on the same name queries.
    let baseline = match &b.baseline_pg {
        Some(url) => Some(pg_trgm(url, &reg, &queries).await?),
        None => None,
    };

    // 5. The server's memory with this registry.
    let memory = if b.server_memory {
        let key_dir = tmp.path().join("ledger-keys");
        let keys =
            kamkor_app::ledger::LedgerKeys::open_or_create(&key_dir).map_err(|e| anyhow!("{e}"))?;
        // Sealed now, so that the server starts with nothing to catch up on.
        app.seal_ledger(&keys).await.map_err(|e| anyhow!("{e}"))?;
        app.store.close().await;
        Some(server_memory(&b, &data_dir, &key_dir).await)
    } else {
        None
    };

    println!();
    println!("| {:<34} | {:>14} | note", "measure", "value");
    println!("|{:-<36}|{:-<16}|------", "", "");
    row(
        "persons",
        reg.persons.len().to_string(),
        &format!("{} known duplicate pairs; engine {engine}", reg.pairs.len()),
    );
    row(
        "index fill",
        format!("{:.1} s", fill.as_secs_f64()),
        "from the store into memory",
    );
    row(
        "name search p50",
        format!("{:.2} ms", name_latency.p50),
        &format!(
            "{} misspelled or transliterated names; ranked by the index, rows read from the store",
            name_latency.n
        ),
    );
    row(
        "name search p95",
        format!("{:.2} ms", name_latency.p95),
        "goal: under 20 ms at 1 M",
    );
    row("name search p99", format!("{:.2} ms", name_latency.p99), "");
    row(
        "identifier search p50",
        format!("{:.2} ms", id_latency.p50),
        &format!("{} queries, half with one digit wrong", id_latency.n),
    );
    row(
        "identifier search p95",
        format!("{:.2} ms", id_latency.p95),
        "",
    );
    row(
        "identifier search p99",
        format!("{:.2} ms", id_latency.p99),
        "",
    );
    row(
        "identifier found in top 10",
        format!("{:.3}", id_share),
        "exact and one digit wrong",
    );
    row(
        "birth date search p50",
        format!("{:.2} ms", date_latency.p50),
        &format!("{} queries", date_latency.n),
    );
    row(
        "birth date search p95",
        format!("{:.2} ms", date_latency.p95),
        "",
    );
    row(
        "birth date search p99",
        format!("{:.2} ms", date_latency.p99),
        "",
    );
    row(
        "recall@10",
        format!("{:.3}", ours.recall),
        "misspelled names: the person (or one of that name) in the top 10",
    );
    row(
        "MRR",
        format!("{:.3}", ours.mrr),
        "mean reciprocal rank of the first right answer",
    );
    row(
        "dedup precision",
        format!("{precision:.3}"),
        &format!("{} pairs proposed, {} right", found.len(), right as u64),
    );
    row(
        "dedup recall",
        format!("{recall:.3}"),
        &format!("of {} known pairs (two records of one person)", truth.len()),
    );
    row("F1", format!("{f1:.3}"), "goal: at least 0.97");
    row(
        "dedup run",
        format!("{:.1} s", dedup.as_secs_f64()),
        &format!(
            "whole registry (read {:.1} s, match {:.1} s); goal: under 2 min at 1 M",
            scan.read.as_secs_f64(),
            scan.find.as_secs_f64()
        ),
    );
    match &baseline {
        Some(base) => {
            row(
                "pg_trgm name search p50",
                format!("{:.2} ms", base.latency.p50),
                &format!(
                    "{} of the same queries; similarity over a GIN gin_trgm_ops index (load {:.0} s, index {:.0} s)",
                    base.latency.n,
                    base.load.as_secs_f64(),
                    base.index.as_secs_f64()
                ),
            );
            row(
                "pg_trgm name search p95",
                format!("{:.2} ms", base.latency.p95),
                "",
            );
            row(
                "pg_trgm name search p99",
                format!("{:.2} ms", base.latency.p99),
                "",
            );
            row(
                "pg_trgm recall@10",
                format!("{:.3}", base.quality.recall),
                "",
            );
            row("pg_trgm MRR", format!("{:.3}", base.quality.mrr), "");
            row(
                "ratio p95 pg_trgm / ours",
                format!("{:.1}×", base.latency.p95 / name_latency.p95.max(1e-6)),
                "goal: at least 5×",
            );
            row(
                "ratio p50 pg_trgm / ours",
                format!("{:.1}×", base.latency.p50 / name_latency.p50.max(1e-6)),
                "",
            );
            row(
                "ratio recall@10 ours / pg_trgm",
                format!("{:.2}×", ours.recall / base.quality.recall.max(1e-6)),
                "goal: above 1",
            );
        }
        None => row(
            "pg_trgm baseline",
            "not run".into(),
            "needs a PostgreSQL URL: --baseline-pg URL",
        ),
    }
    match memory {
        Some(Ok((rss, hwm, took))) => {
            row(
                "server resident memory",
                format!("{rss:.0} MiB"),
                &format!(
                    "kamkor serve with this registry, index filled ({:.1} s from start); peak {hwm:.0} MiB; goal: under 1.5 GiB at 1 M",
                    took.as_secs_f64()
                ),
            );
        }
        Some(Err(e)) => row(
            "server resident memory",
            "not measured".into(),
            &e.to_string(),
        ),
        None => row(
            "server resident memory",
            "not measured".into(),
            "--no-server",
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_quality() {
        let l = latency((1..=100).map(f64::from).collect());
        assert_eq!((l.p50, l.p95, l.p99, l.n), (50.0, 95.0, 99.0, 100));
        assert_eq!(
            strip_ansi("\u{1b}[3mpersons\u{1b}[0m\u{1b}[2m=\u{1b}[0m42"),
            "persons=42"
        );
        let q = quality(&[Some(0), Some(1), None, Some(3)]);
        assert!((q.recall - 0.75).abs() < 1e-9);
        assert!((q.mrr - (1.0 + 0.5 + 0.25) / 4.0).abs() < 1e-9);
    }
}
