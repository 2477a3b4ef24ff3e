//! `kamkor`: the command line — serve, migrate, demo, admin.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};

mod bench;
mod bench_search;
use kamkor_app::ledger::LedgerKeys;
use kamkor_app::{App, AppConfig, NewUser, demo};
use kamkor_domain::policy::{Role, parse_roles};
use kamkor_domain::profile::{PROFILE_FILES, Profile};
use kamkor_store::Store;
use kamkor_web::WebConfig;

#[derive(Parser)]
#[command(
    name = "kamkor",
    version,
    about = "Kamkor: case management for people in difficult life situations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DbArgs {
    /// Directory of the embedded SQLite database (one file per profile).
    #[arg(long, default_value = "./kamkor-data", global = true)]
    data_dir: PathBuf,
    /// PostgreSQL URL (postgres://…); overrides --data-dir.
    #[arg(long, env = "KAMKOR_DATABASE_URL", global = true)]
    database: Option<String>,
    /// Profile: tzhs-kg (Kyrgyz Republic, children) or reentry-yugra (Yugra, released persons).
    #[arg(long, env = "KAMKOR_PROFILE", default_value = "tzhs-kg", global = true)]
    profile: String,
    /// Folder holding profile folders; the profiles built into the binary are used when absent.
    #[arg(long, env = "KAMKOR_PROFILES_DIR", global = true)]
    profiles_dir: Option<PathBuf>,
    /// Folder of the ledger's signing key and trusted public keys (default: <data-dir>/ledger-keys).
    #[arg(long, env = "KAMKOR_LEDGER_KEYS", global = true)]
    ledger_keys: Option<PathBuf>,
}

impl DbArgs {
    fn key_dir(&self) -> PathBuf {
        self.ledger_keys
            .clone()
            .unwrap_or_else(|| kamkor_app::ledger::default_key_dir(&self.data_dir))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server.
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Load demo data (on first start) and print demo credentials.
        #[arg(long)]
        demo: bool,
        /// Number of demo person records (children and relatives) on first start.
        #[arg(long, default_value_t = 4200)]
        demo_persons: usize,
        /// Mark cookies Secure (when served over HTTPS behind a proxy).
        #[arg(long, env = "KAMKOR_SECURE_COOKIES")]
        secure_cookies: bool,
        /// Address of a reverse proxy whose X-Forwarded-For is trusted (repeatable). Allowed
        /// networks are checked on the forwarded address only for requests from these.
        #[arg(
            long = "trusted-proxy",
            env = "KAMKOR_TRUSTED_PROXY",
            value_delimiter = ','
        )]
        trusted_proxies: Vec<std::net::IpAddr>,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Generate demo data (deterministic), create demo accounts, print their passwords.
    Demo {
        #[command(flatten)]
        db: DbArgs,
        /// Number of person records to generate (subjects and relatives).
        #[arg(long, default_value_t = 4200)]
        persons: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Add known duplicates: about this per cent of the children (released persons) get a
        /// second record typed differently — transliterated, mistyped, names or day and
        /// month swapped, fields left out — for trying the duplicate checks and merging.
        #[arg(long, default_value_t = 0)]
        duplicates: u32,
        /// Write the labels of the duplicates added (CSV: original,duplicate,corruptions).
        #[arg(long)]
        labels: Option<PathBuf>,
    },
    /// Administration.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Benchmarks that report this machine's figures. Without a subcommand: search and
    /// duplicate detection on a generated registry of --persons N (issue 6), with the pg_trgm
    /// baseline when --baseline-pg is given.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        command: Option<BenchCommand>,
        #[command(flatten)]
        search: SearchBenchArgs,
    },
    /// The tamper-evident ledger: verify it, sign a checkpoint, rotate the signing key.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Likely duplicate persons across the registry, with their score and evidence (a
    /// supervisor resolves them on the person's page).
    Duplicates {
        #[command(flatten)]
        db: DbArgs,
        /// The least score of a pair to list (0 to 1).
        #[arg(long, default_value_t = kamkor_domain::duplicates::DUPLICATE_SCORE)]
        min_score: f64,
        /// Pairs printed at most (all are counted).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Case plans generated from the profile's rules.
    Plans {
        #[command(subcommand)]
        command: PlansCommand,
    },
}

#[derive(Subcommand)]
enum PlansCommand {
    /// Bring every open case's plans in line with today's facts (the server also does this
    /// daily): ages change and deadlines come due without anyone editing the case.
    Regenerate {
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(clap::Args)]
struct SearchBenchArgs {
    /// Persons in the generated registry (known duplicates included).
    #[arg(long, default_value_t = 1_000_000)]
    persons: usize,
    /// Directory of the SQLite database to build (default: a temporary one, removed after).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL of an empty database to build the registry in, instead of SQLite.
    #[arg(long)]
    database: Option<String>,
    /// PostgreSQL URL for the pg_trgm baseline (a table of its own, dropped after).
    #[arg(long)]
    baseline_pg: Option<String>,
    /// Profile of the generated registry.
    #[arg(long, default_value = "tzhs-kg")]
    profile: String,
    /// Folder holding profile folders (built-in profiles when absent).
    #[arg(long)]
    profiles_dir: Option<PathBuf>,
    /// Queries of each kind.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Per cent of the persons that are known duplicates of another.
    #[arg(long, default_value_t = 2)]
    duplicates: u32,
    /// Seed of the generator.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Do not start a server to measure its memory.
    #[arg(long)]
    no_server: bool,
    /// Print this many wrongly proposed and missed duplicate pairs, with their evidence.
    #[arg(long, default_value_t = 0)]
    show_errors: usize,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Ledger verification throughput next to sha256sum, and the ledger's cost on writes, into
    /// a temporary SQLite database (or the PostgreSQL of --database, which it fills).
    Ledger {
        #[command(flatten)]
        db: DbArgs,
        /// Entries to write and verify.
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Person updates per run (with and without the ledger).
        #[arg(long, default_value_t = 5_000)]
        updates: u64,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Recompute every entry's hash and the Merkle tree, check every checkpoint's signature
    /// and root. Exit 0 with a summary when all holds, 1 naming the first problem.
    Verify {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Sign a checkpoint of the ledger now (the server does it every few seconds).
    Seal {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Replace the signing key; old checkpoints stay verifiable with the old public key.
    RotateKey {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Check an inclusion or consistency proof from the API offline, with only the
    /// installation's public keys. Exit 0 when it holds, 1 naming what does not.
    VerifyProof {
        /// The installation's public keys (its ledger-keys/public-keys.txt).
        #[arg(long)]
        public_keys: PathBuf,
        /// The proof as the API returned it (JSON file; `-` for standard input).
        proof: PathBuf,
    },
}

/// How often the server signs a checkpoint while entries arrive.
const SEAL_EVERY: std::time::Duration = std::time::Duration::from_secs(3);
/// How often the server brings open cases' plans in line with today's facts.
const REGENERATE_EVERY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user and print the one-time password (to be changed at first login).
    CreateUser {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        login: String,
        /// Role(s), comma-separated: administrator, operator, supervisor, specialist,
        /// agency_specialist, central_viewer, territorial_viewer, auditor.
        #[arg(long)]
        role: String,
        /// Territory code of the scope (default: the whole profile).
        #[arg(long)]
        scope: Option<String>,
        /// Last day of validity (YYYY-MM-DD).
        #[arg(long)]
        valid_until: Option<String>,
        /// Full name.
        #[arg(long, default_value = "")]
        full_name: String,
        /// Organisation code from the profile (default: the agency of the scope).
        #[arg(long, default_value = "")]
        organisation: String,
    },
    /// Print the current second-factor code of an account (for an administrator at the
    /// server console, e.g. to sign in to a demo; it reads the secret from the database).
    TotpCode {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        login: String,
    },
}

/// Profiles built into the binary, so that it runs from any directory.
fn builtin_profile(name: &str) -> Option<BTreeMap<String, String>> {
    let files: [&str; 6] = match name {
        "tzhs-kg" => [
            include_str!("../../../profiles/tzhs-kg/profile.toml"),
            include_str!("../../../profiles/tzhs-kg/territories.toml"),
            include_str!("../../../profiles/tzhs-kg/organisations.toml"),
            include_str!("../../../profiles/tzhs-kg/classifiers.toml"),
            include_str!("../../../profiles/tzhs-kg/forms.toml"),
            include_str!("../../../profiles/tzhs-kg/plan_rules.toml"),
        ],
        "reentry-yugra" => [
            include_str!("../../../profiles/reentry-yugra/profile.toml"),
            include_str!("../../../profiles/reentry-yugra/territories.toml"),
            include_str!("../../../profiles/reentry-yugra/organisations.toml"),
            include_str!("../../../profiles/reentry-yugra/classifiers.toml"),
            include_str!("../../../profiles/reentry-yugra/forms.toml"),
            include_str!("../../../profiles/reentry-yugra/plan_rules.toml"),
        ],
        _ => return None,
    };
    Some(
        PROFILE_FILES
            .iter()
            .map(|f| f.to_string())
            .zip(files.iter().map(|t| t.to_string()))
            .collect(),
    )
}

fn load_profile(db: &DbArgs) -> Result<Profile> {
    if !db
        .profile
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!(
            "profile name {:?} may hold only letters, digits, '-' and '_'",
            db.profile
        );
    }
    let dir = match &db.profiles_dir {
        Some(d) => Some(d.join(&db.profile)),
        None => {
            let local = Path::new("profiles").join(&db.profile);
            local.is_dir().then_some(local)
        }
    };
    match dir {
        Some(d) => kamkor_app::load_profile(&d).map_err(|e| anyhow!("profile error: {e}")),
        None => {
            let files = builtin_profile(&db.profile).ok_or_else(|| {
                anyhow!(
                    "unknown profile {:?}: no folder profiles/{0} and not built in",
                    db.profile
                )
            })?;
            Profile::from_texts(&format!("profiles/{}", db.profile), &files)
                .map_err(|e| anyhow!("profile error: {e}"))
        }
    }
}

async fn open_store(db: &DbArgs) -> Result<Store> {
    let store = match &db.database {
        Some(url) => Store::open_url(url)
            .await
            .context("cannot open the database")?,
        None => {
            std::fs::create_dir_all(&db.data_dir).with_context(|| {
                format!("cannot create the data directory {}", db.data_dir.display())
            })?;
            let file = db.data_dir.join(format!("{}.db", db.profile));
            Store::open_url(&format!("sqlite://{}?mode=rwc", file.display()))
                .await
                .with_context(|| format!("cannot open {}", file.display()))?
        }
    };
    let v = store.migrate().await.context("migration failed")?;
    tracing::info!(
        engine = store.engine().name(),
        schema_version = v,
        "database ready"
    );
    Ok(store)
}

async fn open_app(db: &DbArgs) -> Result<App> {
    let profile = load_profile(db)?;
    let store = open_store(db).await?;
    let app = App::new(store, profile, AppConfig::default());
    app.bind_profile().await.map_err(|e| anyhow!("{e}"))?;
    Ok(app)
}

async fn generate_demo(app: &App, persons: usize, seed: u64) -> Result<()> {
    let started = Instant::now();
    let existing = app
        .store
        .count(kamkor_store::Table::Persons)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let run: u32 = app
        .store
        .meta("demo_runs")
        .await
        .map_err(|e| anyhow!("{e}"))?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut last_report = Instant::now();
    let summary = demo::generate(
        app,
        persons,
        seed.wrapping_add(existing as u64),
        run,
        |done| {
            if last_report.elapsed().as_secs() >= 10 {
                last_report = Instant::now();
                eprintln!(
                    "  … {done} persons written ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        },
    )
    .await
    .map_err(|e| anyhow!("demo generation failed: {e}"))?;
    let mut tx = app
        .store
        .begin("system", None)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    tx.set_meta("demo_runs", &(run + 1).to_string())
        .await
        .map_err(|e| anyhow!("{e}"))?;
    tx.commit().await.map_err(|e| anyhow!("{e}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "Demo data: {} persons ({} {}), {} families, {} cases in {:.1} s ({:.0} persons/s).",
        summary.persons,
        summary.subjects,
        if app.profile.meta.subject == "child" {
            "children"
        } else {
            "released persons"
        },
        summary.families,
        summary.cases,
        secs,
        summary.persons as f64 / secs.max(0.001)
    );
    Ok(())
}

/// Demo data goes only into an empty database or one that already holds demo data: fake
/// children must never mix with a real registry.
async fn refuse_real_data(app: &App) -> Result<()> {
    let is_demo = app
        .store
        .meta("demo")
        .await
        .map_err(|e| anyhow!("{e}"))?
        .is_some();
    let persons = app
        .store
        .count(kamkor_store::Table::Persons)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    if !is_demo && persons > 0 {
        bail!(
            "this database holds {persons} real person records; demo data is only loaded into an empty database \
             (use another --data-dir or --database)"
        );
    }
    Ok(())
}

fn print_accounts(accounts: &[demo::DemoAccount], url: Option<&str>) {
    println!();
    if let Some(u) = url {
        println!("Kamkor is running at {u}");
    }
    println!("Demo accounts (passwords are new at every start; write them down):");
    for a in accounts {
        println!(
            "  login: {:<11} password: {}   roles: {}  scope: {}",
            a.login, a.password, a.roles, a.scope
        );
        if let Some(secret) = &a.totp_secret {
            println!(
                "               second factor: key {secret} for an authenticator app, or the current code from `kamkor admin totp-code --login {}` (same --data-dir/--database)",
                a.login
            );
        }
    }
    println!();
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            db,
            listen,
            demo: with_demo,
            demo_persons,
            secure_cookies,
            trusted_proxies,
        } => {
            let app = open_app(&db).await?;
            let mut accounts = Vec::new();
            if with_demo {
                refuse_real_data(&app).await?;
                if app
                    .store
                    .meta("demo")
                    .await
                    .map_err(|e| anyhow!("{e}"))?
                    .is_none()
                {
                    accounts = demo::ensure_accounts(&app)
                        .await
                        .map_err(|e| anyhow!("{e}"))?;
                    println!(
                        "Generating demo data for profile {} …",
                        app.profile.meta.name
                    );
                    generate_demo(&app, demo_persons, 2026).await?;
                    let mut tx = app
                        .store
                        .begin("system", None)
                        .await
                        .map_err(|e| anyhow!("{e}"))?;
                    tx.set_meta("demo", "generated")
                        .await
                        .map_err(|e| anyhow!("{e}"))?;
                    tx.commit().await.map_err(|e| anyhow!("{e}"))?;
                } else {
                    accounts = demo::ensure_accounts(&app)
                        .await
                        .map_err(|e| anyhow!("{e}"))?;
                }
            }
            let keys = Arc::new(
                LedgerKeys::open_or_create(&db.key_dir())
                    .map_err(|e| anyhow!("ledger keys: {e}"))?,
            );
            let sealer = {
                let (app, keys) = (app.clone(), keys.clone());
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(SEAL_EVERY);
                    loop {
                        tick.tick().await;
                        if let Err(e) = app.seal_ledger(&keys).await {
                            tracing::warn!(error = %e, "ledger checkpoint failed");
                        }
                    }
                })
            };
            // The person index is filled in the background; searches meanwhile wait for it.
            {
                let app = app.clone();
                tokio::spawn(async move {
                    if let Err(e) = app.refresh_person_index().await {
                        tracing::warn!(error = %e, "person index not filled");
                    }
                });
            }
            // Plans follow time too (ages, deadlines from dates): once a day, first a minute
            // after the start.
            let planner = {
                let app = app.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    let mut tick = tokio::time::interval(REGENERATE_EVERY);
                    loop {
                        tick.tick().await;
                        match app.regenerate_open_cases().await {
                            Ok(n) => tracing::info!(cases = n, "plans brought up to date"),
                            Err(e) => tracing::warn!(error = %e, "plan regeneration failed"),
                        }
                    }
                })
            };
            let sealing_app = app.clone();
            let router = kamkor_web::router(
                app,
                WebConfig {
                    secure_cookies,
                    trusted_proxies,
                },
            );
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let url = format!("http://{}/", listener.local_addr()?);
            if with_demo {
                print_accounts(&accounts, Some(&url));
            } else {
                println!("Kamkor is running at {url}");
            }
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
            // A last checkpoint on the way out, so nothing written is left unsigned.
            planner.abort();
            sealer.abort();
            if let Err(e) = sealing_app.seal_ledger(&keys).await {
                tracing::warn!(error = %e, "final ledger checkpoint failed");
            }
            Ok(())
        }
        Command::Bench {
            command:
                Some(BenchCommand::Ledger {
                    db,
                    entries,
                    updates,
                }),
            ..
        } => {
            let profile = load_profile(&db)?;
            bench::ledger(profile, db.database.as_deref(), entries, updates).await
        }
        Command::Bench {
            command: None,
            search: a,
        } => {
            let profile = load_profile(&DbArgs {
                data_dir: PathBuf::from("."),
                database: None,
                profile: a.profile.clone(),
                profiles_dir: a.profiles_dir.clone(),
                ledger_keys: None,
            })?;
            bench_search::run(bench_search::SearchBench {
                profile,
                profile_name: a.profile,
                persons: a.persons,
                data_dir: a.data_dir,
                database: a.database,
                baseline_pg: a.baseline_pg,
                queries: a.queries,
                duplicate_percent: a.duplicates,
                seed: a.seed,
                server_memory: !a.no_server,
                show_errors: a.show_errors,
            })
            .await
        }
        Command::Duplicates {
            db,
            min_score,
            limit,
            json,
        } => {
            if !(0.0..=1.0).contains(&min_score) {
                return Err(anyhow!("--min-score must be between 0 and 1"));
            }
            let app = open_app(&db).await?;
            let scan = app
                .find_duplicates(min_score)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            for p in scan.pairs.iter().take(limit) {
                if json {
                    println!("{}", duplicate_json(p));
                } else {
                    println!("{}", duplicate_line(p));
                }
            }
            eprintln!(
                "{} persons compared, {} likely duplicate pairs (score >= {min_score}); read {:.1} s, matched {:.1} s",
                scan.persons,
                scan.pairs.len(),
                scan.read.as_secs_f64(),
                scan.find.as_secs_f64()
            );
            Ok(())
        }
        Command::Plans {
            command: PlansCommand::Regenerate { db },
        } => {
            let app = open_app(&db).await?;
            let n = app
                .regenerate_open_cases()
                .await
                .map_err(|e| anyhow!("{e}"))?;
            println!("plans of {n} open cases are in line with today's facts");
            Ok(())
        }
        Command::Ledger {
            command: LedgerCommand::Verify { db },
        } => {
            let app = open_app(&db).await?;
            let dir = db.key_dir();
            let trusted = kamkor_app::ledger::read_public_keys(&dir.join("public-keys.txt"))
                .map_err(|e| anyhow!("ledger keys: {e}"))?;
            let started = Instant::now();
            match kamkor_app::ledger::verify_ledger(&app.store, &trusted, &app.ledger_origin())
                .await
                .map_err(|e| anyhow!("{e}"))?
            {
                Ok(r) => {
                    let secs = started.elapsed().as_secs_f64();
                    println!(
                        "ledger verified: {} entries, {} checkpoints",
                        r.entries, r.checkpoints
                    );
                    println!(
                        "  every entry matches its hash and position; every checkpoint is signed by a trusted key ({}) and matches the tree",
                        if r.keys.is_empty() {
                            "none used".to_string()
                        } else {
                            r.keys.join(", ")
                        }
                    );
                    println!(
                        "  the state tables equal what the ledger says: {} records replayed",
                        r.records
                    );
                    println!("  root {}", r.root);
                    println!(
                        "  {:.1} s, {:.0} entries/s",
                        secs,
                        r.entries as f64 / secs.max(0.001)
                    );
                    Ok(())
                }
                Err(problem) => {
                    eprintln!("ledger verification FAILED: {problem}");
                    std::process::exit(1);
                }
            }
        }
        Command::Ledger {
            command: LedgerCommand::Seal { db },
        } => {
            let app = open_app(&db).await?;
            let keys = LedgerKeys::open_or_create(&db.key_dir())
                .map_err(|e| anyhow!("ledger keys: {e}"))?;
            match app.seal_ledger(&keys).await.map_err(|e| anyhow!("{e}"))? {
                Some(cp) => println!(
                    "checkpoint signed: {} entries, root {}, key {}",
                    cp.size, cp.root, cp.key_id
                ),
                None => println!("nothing new since the last checkpoint"),
            }
            Ok(())
        }
        Command::Ledger {
            command: LedgerCommand::VerifyProof { public_keys, proof },
        } => {
            let trusted = kamkor_app::ledger::read_public_keys(&public_keys)
                .map_err(|e| anyhow!("--public-keys: {e}"))?;
            let text = if proof.as_os_str() == "-" {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                    .context("cannot read the proof from standard input")?;
                t
            } else {
                std::fs::read_to_string(&proof)
                    .with_context(|| format!("cannot read {}", proof.display()))?
            };
            let value: serde_json::Value =
                serde_json::from_str(&text).context("the proof is not JSON")?;
            let outcome = if value.get("entry").is_some() {
                let p: kamkor_app::ledger::InclusionProof = serde_json::from_value(value)
                    .context("not an inclusion proof (checkpoint, entry, proof)")?;
                p.verify(&trusted).map(|key| {
                    format!(
                        "inclusion proof verified: entry {} ({} {} {}, {}) is in the ledger of {} entries, checkpoint signed by key {key} at {}",
                        p.entry.pos, p.entry.action, p.entry.entity, p.entry.entity_id, p.entry.at, p.checkpoint.size, p.checkpoint.time
                    )
                })
            } else {
                let p: kamkor_app::ledger::ConsistencyProof = serde_json::from_value(value)
                    .context("not a consistency proof (first, second, proof)")?;
                p.verify(&trusted).map(|()| {
                    format!(
                        "consistency proof verified: the ledger of {} entries ({}) is a prefix of the ledger of {} entries ({}); nothing was rewritten",
                        p.first.size, p.first.time, p.second.size, p.second.time
                    )
                })
            };
            match outcome {
                Ok(msg) => {
                    println!("{msg}");
                    Ok(())
                }
                Err(problem) => {
                    eprintln!("proof verification FAILED: {problem}");
                    std::process::exit(1);
                }
            }
        }
        Command::Ledger {
            command: LedgerCommand::RotateKey { db },
        } => {
            let app = open_app(&db).await?;
            let mut keys = LedgerKeys::open_or_create(&db.key_dir())
                .map_err(|e| anyhow!("ledger keys: {e}"))?;
            // Seal what the old key has seen, then switch.
            app.seal_ledger(&keys).await.map_err(|e| anyhow!("{e}"))?;
            let old = keys.current.public().id;
            let new = keys.rotate().map_err(|e| anyhow!("{e}"))?;
            println!(
                "signing key rotated: {old} -> {}; public keys in {}",
                new.id,
                keys.dir.join("public-keys.txt").display()
            );
            Ok(())
        }
        Command::Migrate { db } => {
            let store = open_store(&db).await?;
            println!(
                "schema version {}",
                store.schema_version().await.map_err(|e| anyhow!("{e}"))?
            );
            Ok(())
        }
        Command::Demo {
            db,
            persons,
            seed,
            duplicates,
            labels,
        } => {
            if duplicates > 50 {
                bail!("--duplicates is a per cent of the persons, at most 50");
            }
            let app = open_app(&db).await?;
            refuse_real_data(&app).await?;
            let accounts = demo::ensure_accounts(&app)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            println!(
                "Generating {persons} demo persons for profile {} …",
                app.profile.meta.name
            );
            generate_demo(&app, persons, seed).await?;
            if duplicates > 0 || labels.is_some() {
                let pairs = kamkor_app::synthetic::add_duplicates(&app, duplicates, seed)
                    .await
                    .map_err(|e| anyhow!("{e}"))?;
                println!("Added {} known duplicate records.", pairs.len());
                if let Some(path) = &labels {
                    std::fs::write(path, kamkor_app::synthetic::labels_csv(&pairs))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    println!("Their labels: {}", path.display());
                }
            }
            let mut tx = app
                .store
                .begin("system", None)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            tx.set_meta("demo", "generated")
                .await
                .map_err(|e| anyhow!("{e}"))?;
            tx.commit().await.map_err(|e| anyhow!("{e}"))?;
            print_accounts(&accounts, None);
            let db_arg = match &db.database {
                Some(_) => "--database \"$KAMKOR_DATABASE_URL\"".to_string(),
                None => format!("--data-dir {}", db.data_dir.display()),
            };
            println!(
                "Start the server with: kamkor serve --profile {} {db_arg}",
                db.profile
            );
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::CreateUser {
                    db,
                    login,
                    role,
                    scope,
                    valid_until,
                    full_name,
                    organisation,
                },
        } => {
            let roles: Vec<Role> = parse_roles(&role);
            if roles.is_empty() || roles.len() != role.split(',').count() {
                bail!(
                    "--role: unknown role in {role:?}; expected administrator, operator, supervisor, specialist, agency_specialist, central_viewer, territorial_viewer or auditor"
                );
            }
            let valid_until = match valid_until {
                Some(s) => Some(kamkor_domain::records::parse_date(&s).ok_or_else(|| {
                    anyhow!("--valid-until: {s:?} is not a date like 2027-12-31")
                })?),
                None => None,
            };
            let today = kamkor_store::now_utc().date();
            if valid_until.is_some_and(|d| d < today) {
                bail!(
                    "--valid-until: the date is in the past; an account must be valid from today"
                );
            }
            let app = open_app(&db).await?;
            let user = NewUser {
                login: login.clone(),
                full_name: if full_name.is_empty() {
                    login.clone()
                } else {
                    full_name
                },
                roles,
                organisation,
                scope_territory: scope,
                valid_from: today,
                valid_until,
                password: None,
            };
            match app.create_user("cli", &user).await {
                Ok((u, password)) => {
                    println!(
                        "Created user {} (roles {}, scope {}).",
                        u.login, u.role, u.scope_territory
                    );
                    println!("One-time password (change at first login): {password}");
                    Ok(())
                }
                Err(kamkor_app::AppError::Invalid(p)) => {
                    let msg: Vec<String> =
                        p.0.iter()
                            .map(|e| format!("--{}: {}", e.field.replace('_', "-"), e.code))
                            .collect();
                    bail!("cannot create the user: {}", msg.join("; "))
                }
                Err(kamkor_app::AppError::Duplicate(_)) => {
                    bail!("--login: a user named {login} already exists")
                }
                Err(e) => Err(anyhow!("{e}")),
            }
        }
        Command::Admin {
            command: AdminCommand::TotpCode { db, login },
        } => {
            let app = open_app(&db).await?;
            let user = app
                .store
                .user_by_login(&login.trim().to_lowercase())
                .await
                .map_err(|e| anyhow!("{e}"))?
                .ok_or_else(|| anyhow!("--login: no user named {login}"))?;
            let secret = user
                .totp_secret
                .ok_or_else(|| anyhow!("--login: {login} has no second factor enrolled"))?;
            let now = kamkor_store::now_utc();
            let step = kamkor_app::totp::step_of(now);
            let code = kamkor_app::totp::code_at(&secret, step)
                .ok_or_else(|| anyhow!("the stored secret of {login} is damaged"))?;
            let left = kamkor_app::totp::STEP_SECONDS
                - now
                    .unix_timestamp()
                    .rem_euclid(kamkor_app::totp::STEP_SECONDS);
            println!("{code}");
            eprintln!("valid for {left} more seconds (and the next 30)");
            Ok(())
        }
    }
}

fn evidence_codes(e: &kamkor_domain::duplicates::Evidence) -> (&'static str, &'static str) {
    (
        e.birth_date.map_or("missing", |d| d.code()),
        e.national_id.map_or("missing", |m| m.code()),
    )
}

fn duplicate_line(p: &kamkor_app::duplicates::ProposedPair) -> String {
    let (date, id) = evidence_codes(&p.evidence);
    format!(
        "{:.3}\t{}\t{}\tname {:.2}, birth date {date}, id {id}{}\t{} | {}",
        p.evidence.score,
        p.a.id,
        p.b.id,
        p.evidence.name,
        if p.evidence.sex_differs {
            ", sex differs"
        } else {
            ""
        },
        p.a.full_name(),
        p.b.full_name()
    )
}

fn duplicate_json(p: &kamkor_app::duplicates::ProposedPair) -> String {
    let (date, id) = evidence_codes(&p.evidence);
    serde_json::json!({
        "score": p.evidence.score,
        "a": p.a.id,
        "b": p.b.id,
        "evidence": {"name": p.evidence.name, "birth_date": date, "national_id": id, "sex_differs": p.evidence.sex_differs},
    })
    .to_string()
}
