//! Persistence for Kamkor on two engines behind one interface (DESIGN "Storage"): embedded
//! SQLite (WAL, the default) and PostgreSQL. Every query is written once, with `$n` parameters
//! that both engines understand, through sqlx's `Any` driver; the two engines differ only in
//! their migration folders and in how a connection is set up.
//!
//! Writes go through [`Tx`]: its methods are the only way to change a state table, and each
//! records a row in `changes` in the same transaction — the one place every change passes.

use std::path::Path;
use std::sync::Arc;

use kamkor_domain::Sex;
use kamkor_domain::records::{
    CaseData, CaseStatus, CaseWork, FamilyData, PersonData, PersonRole, RelationData, SubjectKind,
    format_date, parse_date,
};
use serde_json::{Map, Value};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};
use time::{Date, OffsetDateTime};
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

mod access;
pub mod casework;
mod ledger;
mod migrations;
mod registry;
mod replay;
pub use access::{AccessRequestRow, ApiClientRow, GlassBreakRow};
pub use ledger::{
    CheckpointRow, EntryBatch, EntryRef, LedgerEntry, LedgerFilter, LedgerOrder, LedgerStream,
};
pub use migrations::SCHEMA_VERSION;
pub use registry::{CaseFilter, IndexRow, PersonChanges, ordered_pair};
pub use replay::{ReplayReport, StateProblem};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the record was changed by someone else (now at version {current})")]
    Conflict { current: i64 },
    #[error("record not found")]
    NotFound,
    #[error("a record with the same {0} already exists")]
    Duplicate(&'static str),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("cannot open the data directory: {0}")]
    Io(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// The store: a connection pool and the engine it talks to.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where transactions run: on SQLite one connection (see `open_url`), on PostgreSQL the
    /// pool itself.
    writer: AnyPool,
    engine: Engine,
    /// SQLite allows one writer; taking this before `BEGIN` avoids lock-upgrade failures
    /// between two deferred transactions. PostgreSQL does not need it.
    write_lock: Arc<Mutex<()>>,
    /// The SQLite file, when the database is one (the ledger reader opens it directly).
    sqlite_file: Option<std::path::PathBuf>,
    /// The next ledger position, as the last commit left it (see `Tx::record_changes`).
    ledger_next: Arc<std::sync::Mutex<Option<i64>>>,
}

pub fn now_utc() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// RFC 3339 UTC with milliseconds: sorts as text on both engines.
pub fn ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub fn parse_ts(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// A pool of SQLite connections, each set up alike.
async fn sqlite_pool(opts: AnyConnectOptions, max: u32) -> Result<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql(
                    // A 32 MiB page cache per connection keeps the name and identifier
                    // indexes of a national registry in memory.
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                     PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000; \
                     PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY;",
                )
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .connect_with(opts)
        .await?)
}

impl Store {
    /// Open (creating if needed) the embedded SQLite database in `dir`.
    pub async fn open_sqlite_dir(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))?;
        let file = dir.join("kamkor.db");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        Store::open_url(&url).await
    }

    /// Open a database by URL: `postgres://…` or `sqlite://…`.
    pub async fn open_url(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else {
            return Err(StoreError::Io(
                "the database URL must start with postgres:// or sqlite://".into(),
            ));
        };
        let opts: AnyConnectOptions = url.parse()?;
        let (pool, writer) = match engine {
            Engine::Sqlite => {
                let pool = sqlite_pool(opts.clone(), 8).await?;
                // SQLite has one writer at a time; a connection of its own keeps its page
                // cache warm from one transaction to the next instead of each one starting on
                // whichever pooled connection another commit left stale.
                let writer = sqlite_pool(opts, 1).await?;
                (pool, writer)
            }
            Engine::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .connect_with(opts)
                    .await?;
                (pool.clone(), pool)
            }
        };
        // In-memory databases have no file (and take the general path).
        let sqlite_file = match engine {
            Engine::Sqlite => url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()
                .ok()
                .map(|o| o.get_filename().to_path_buf())
                .filter(|f| f.is_file()),
            Engine::Postgres => None,
        };
        Ok(Store {
            pool,
            writer,
            engine,
            write_lock: Arc::new(Mutex::new(())),
            sqlite_file,
            ledger_next: Default::default(),
        })
    }

    /// Open a PostgreSQL database with every table in `schema` (created if missing): lets the
    /// test suite give each test a database of its own on one server.
    pub async fn open_postgres_schema(url: &str, schema: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        if !schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(StoreError::Io("bad schema name".into()));
        }
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
        let opts: AnyConnectOptions = url.parse()?;
        let set = format!("SET search_path TO {schema}");
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(move |conn, _| {
                let set = set.clone();
                Box::pin(async move {
                    sqlx::raw_sql(AssertSqlSafe(set)).execute(conn).await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        Ok(Store {
            writer: pool.clone(),
            pool,
            engine: Engine::Postgres,
            write_lock: Arc::new(Mutex::new(())),
            sqlite_file: None,
            ledger_next: Default::default(),
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Apply pending migrations; returns the schema version.
    pub async fn migrate(&self) -> Result<i64> {
        let version = {
            let _guard = self.write_lock.lock().await;
            migrations::run(&self.pool, self.engine).await?
        };
        // Rows written before the ledger had hashes get theirs once (issue 4).
        self.hash_unhashed_entries().await?;
        Ok(version)
    }

    pub async fn schema_version(&self) -> Result<i64> {
        migrations::current(&self.pool).await
    }

    /// Start a write. `actor` is the user id (or `system`) recorded with every change.
    pub async fn begin(&self, actor: &str, request_id: Option<&str>) -> Result<Tx> {
        let guard = match self.engine {
            Engine::Sqlite => Some(self.write_lock.clone().lock_owned().await),
            Engine::Postgres => None,
        };
        let mut tx = self.writer.begin().await?;
        // One writer at a time appends to the ledger, so that positions are gap-free and in
        // commit order (SQLite: the write lock above and the database's own; PostgreSQL: a
        // transaction-scoped advisory lock, taken first so it never waits behind row locks).
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(LEDGER_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        Ok(Tx {
            tx,
            engine: self.engine,
            actor: actor.to_string(),
            request_id: request_id.map(str::to_string),
            now: ts(now_utc()),
            next_pos: None,
            effective_on: None,
            ledger_next: self.ledger_next.clone(),
            _guard: guard,
        })
    }

    // ---- meta ----

    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get::<String, _>(0)?),
            None => None,
        })
    }

    /// Current value of a named counter (0 when never used).
    pub async fn counter(&self, name: &str) -> Result<i64> {
        let row = sqlx::query("SELECT value FROM counters WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>(0)?,
            None => 0,
        })
    }

    pub async fn count(&self, table: Table) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name());
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    // ---- persons ----

    pub async fn person(&self, id: Uuid) -> Result<Option<PersonRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PERSON_COLS} FROM persons WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| person_from_row(&r)).transpose()
    }

    pub async fn persons_by_national_id(&self, national_id: &str) -> Result<Vec<PersonRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PERSON_COLS} FROM persons WHERE national_id = $1 ORDER BY created_at"
        )))
        .bind(national_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(person_from_row).collect()
    }

    /// Search persons. Every filter is optional; `territories` limits the result to the
    /// caller's scope (None: no limit). Results are ordered by name.
    pub async fn search_persons(&self, q: &PersonQuery) -> Result<Vec<PersonRow>> {
        // A record merged into another is found through the one that carries on.
        let mut sql = format!("SELECT {PERSON_COLS} FROM persons WHERE merged_into IS NULL");
        let mut binds: Vec<String> = Vec::new();
        let mut n = 0;
        let mut next = |binds: &mut Vec<String>, v: String| {
            n += 1;
            binds.push(v);
            format!("${n}")
        };
        if let Some(role) = q.role {
            let p = next(&mut binds, role.code().to_string());
            sql.push_str(&format!(" AND role = {p}"));
        }
        if let Some(name) = q.name.as_deref().filter(|s| !s.is_empty()) {
            // Every word of the query must occur in the name, in any order ("Асанов Айбек",
            // "айбек асан").
            for word in name.split_whitespace().take(4) {
                let p = next(&mut binds, format!("%{}%", like_escape(word)));
                sql.push_str(&format!(" AND search_name LIKE {p} ESCAPE '\\'"));
            }
        }
        if let Some(id) = q.national_id.as_deref().filter(|s| !s.is_empty()) {
            let p = next(&mut binds, id.to_string());
            sql.push_str(&format!(" AND national_id = {p}"));
        }
        if let Some(d) = q.birth_date {
            let p = next(&mut binds, format_date(d));
            sql.push_str(&format!(" AND birth_date = {p}"));
        }
        if let Some(sex) = q.sex {
            let p = next(&mut binds, sex.code().to_string());
            sql.push_str(&format!(" AND sex = {p}"));
        }
        if let Some((from, to)) = q.born_between {
            let a = next(&mut binds, format_date(from.max(min_stored_date())));
            let b = next(&mut binds, format_date(to));
            sql.push_str(&format!(" AND birth_date >= {a} AND birth_date <= {b}"));
        }
        if let Some(f) = q.cases {
            sql.push_str(&format!(" AND {}", f.sql()));
        }
        if let Some(ts) = &q.territories {
            if ts.is_empty() {
                return Ok(Vec::new());
            }
            let ps: Vec<String> = ts.iter().map(|t| next(&mut binds, t.clone())).collect();
            sql.push_str(&format!(" AND residence_territory IN ({})", ps.join(",")));
        }
        sql.push_str(&format!(
            " ORDER BY search_name, id LIMIT {} OFFSET {}",
            q.limit.clamp(1, 500),
            q.offset.min(1_000_000)
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            query = query.bind(b.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(person_from_row).collect()
    }

    /// Relatives of a person, with the relation.
    pub async fn relatives(&self, person_id: Uuid) -> Result<Vec<(RelationRow, PersonRow)>> {
        let cols = PERSON_COLS
            .split(", ")
            .map(|c| format!("p.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {cols}, r.id AS r_id, r.version AS r_version, r.person_id AS r_person_id, \
             r.relation_kind, r.relative_status, r.note \
             FROM relations r JOIN persons p ON p.id = r.relative_id \
             WHERE r.person_id = $1 ORDER BY r.created_at, r.id"
        )))
        .bind(person_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((relation_from_row(r)?, person_from_row(r)?)))
            .collect()
    }

    /// Subjects a person is a relative of (e.g. the children of a parent).
    pub async fn relative_of(&self, relative_id: Uuid) -> Result<Vec<(RelationRow, PersonRow)>> {
        let cols = PERSON_COLS
            .split(", ")
            .map(|c| format!("p.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {cols}, r.id AS r_id, r.version AS r_version, r.person_id AS r_person_id, \
             r.relation_kind, r.relative_status, r.note \
             FROM relations r JOIN persons p ON p.id = r.person_id \
             WHERE r.relative_id = $1 ORDER BY r.created_at, r.id"
        )))
        .bind(relative_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((relation_from_row(r)?, person_from_row(r)?)))
            .collect()
    }

    // ---- families ----

    pub async fn family(&self, id: Uuid) -> Result<Option<FamilyRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {FAMILY_COLS} FROM families WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| family_from_row(&r)).transpose()
    }

    pub async fn families_of(&self, person_id: Uuid) -> Result<Vec<FamilyRow>> {
        let cols = FAMILY_COLS
            .split(", ")
            .map(|c| format!("f.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {cols} FROM families f JOIN family_members m ON m.family_id = f.id \
             WHERE m.person_id = $1 ORDER BY f.created_at"
        )))
        .bind(person_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(family_from_row).collect()
    }

    pub async fn family_members(&self, family_id: Uuid) -> Result<Vec<(String, PersonRow)>> {
        let cols = PERSON_COLS
            .split(", ")
            .map(|c| format!("p.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {cols}, m.member_role FROM family_members m JOIN persons p ON p.id = m.person_id \
             WHERE m.family_id = $1 ORDER BY m.created_at, p.birth_date"
        )))
        .bind(family_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("member_role")?, person_from_row(r)?)))
            .collect()
    }

    /// Families by name words (normalised like person names) within territories.
    pub async fn search_families(
        &self,
        name: Option<&str>,
        territories: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<FamilyRow>> {
        let mut sql = format!("SELECT {FAMILY_COLS} FROM families WHERE 1=1");
        let mut binds = Vec::new();
        if let Some(n) = name.filter(|s| !s.is_empty()) {
            for word in n.split_whitespace().take(4) {
                binds.push(format!("%{}%", like_escape(word)));
                sql.push_str(&format!(
                    " AND search_name LIKE ${} ESCAPE '\\'",
                    binds.len()
                ));
            }
        }
        if let Some(ts) = territories {
            if ts.is_empty() {
                return Ok(Vec::new());
            }
            let mut ps = Vec::new();
            for t in ts {
                binds.push(t.clone());
                ps.push(format!("${}", binds.len()));
            }
            sql.push_str(&format!(" AND territory IN ({})", ps.join(",")));
        }
        sql.push_str(&format!(
            " ORDER BY search_name, id LIMIT {}",
            limit.clamp(1, 500)
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(family_from_row).collect()
    }

    // ---- cases ----

    pub async fn case(&self, id: Uuid) -> Result<Option<CaseRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CASE_COLS} FROM cases WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| case_from_row(&r)).transpose()
    }

    pub async fn cases_of_subject(&self, subject_id: Uuid) -> Result<Vec<CaseRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CASE_COLS} FROM cases WHERE subject_id = $1 ORDER BY identified_on DESC, number"
        )))
        .bind(subject_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(case_from_row).collect()
    }

    /// Cases, newest first, filtered by responsible user, status and territories.
    pub async fn list_cases(&self, q: &CaseQuery) -> Result<Vec<CaseRow>> {
        let mut sql = format!("SELECT {CASE_COLS} FROM cases WHERE 1=1");
        let mut binds = Vec::new();
        if let Some(u) = &q.responsible_user {
            binds.push(u.clone());
            sql.push_str(&format!(" AND responsible_user = ${}", binds.len()));
        }
        if let Some(s) = q.status {
            binds.push(s.code().to_string());
            sql.push_str(&format!(" AND status = ${}", binds.len()));
        }
        if q.open_only {
            sql.push_str(" AND status NOT IN ('closed', 'transferred')");
        }
        if let Some(ts) = &q.territories {
            if ts.is_empty() {
                return Ok(Vec::new());
            }
            // The serving territory; a case waiting for transfer is also listed where it goes.
            let list = bind_list(&mut binds, ts);
            sql.push_str(&format!(
                " AND (territory IN ({list}) OR transfer_territory IN ({list}))"
            ));
        }
        sql.push_str(&format!(
            " ORDER BY identified_on DESC, number DESC LIMIT {} OFFSET {}",
            q.limit.clamp(1, 500),
            q.offset.max(0)
        ));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            query = query.bind(b.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(case_from_row).collect()
    }

    /// Case counts by status (within territories, when given).
    pub async fn case_counts(&self, territories: Option<&[String]>) -> Result<Vec<(String, i64)>> {
        let mut sql = "SELECT status, COUNT(*) FROM cases".to_string();
        let mut binds = Vec::new();
        if let Some(ts) = territories {
            if ts.is_empty() {
                return Ok(Vec::new());
            }
            let list = bind_list(&mut binds, ts);
            sql.push_str(&format!(" WHERE territory IN ({list})"));
        }
        sql.push_str(" GROUP BY status");
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    // ---- history ----

    /// The changes recorded for one record, oldest first.
    pub async fn changes_for(&self, entity: &str, id: Uuid) -> Result<Vec<ChangeRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            // Changes of state, then other events (each read by its own index).
            "SELECT seq, at, actor, request_id, action, entity, entity_id, version, before_json, after_json, effective_on \
             FROM changes WHERE entity = $1 AND entity_id = $2 AND version > 0 \
             UNION ALL \
             SELECT seq, at, actor, request_id, action, entity, entity_id, version, before_json, after_json, effective_on \
             FROM changes WHERE entity = $1 AND entity_id = $2 AND version <= 0 AND action NOT IN ({}) ORDER BY seq",
            view_actions_sql()
        )))
        .bind(entity)
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(change_from_row).collect()
    }

    /// Who saw one record — opened, found, listed, exported or printed it — newest first (the
    /// data subject's right of access; seed 000 §28).
    pub async fn views_of(&self, entity: &str, id: &str, limit: i64) -> Result<Vec<ChangeRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT seq, at, actor, request_id, action, entity, entity_id, version, before_json, after_json, effective_on \
             FROM changes WHERE entity = $1 AND entity_id = $2 AND version <= 0 AND action IN ({}) ORDER BY seq DESC LIMIT $3",
            view_actions_sql()
        )))
        .bind(entity)
        .bind(id.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(change_from_row).collect()
    }

    pub async fn last_changes(&self, limit: i64) -> Result<Vec<ChangeRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT seq, at, actor, request_id, action, entity, entity_id, version, before_json, after_json, effective_on \
             FROM changes ORDER BY seq DESC LIMIT {}",
            limit.clamp(1, 1000)
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(change_from_row).collect()
    }

    // ---- users and sessions ----

    pub async fn user_by_login(&self, login: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE login = $1"
        )))
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users ORDER BY login"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, ended_at \
             FROM sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<SessionRow> {
            Ok(SessionRow {
                token_hash: r.try_get("token_hash")?,
                user_id: r.try_get("user_id")?,
                csrf_token: r.try_get("csrf_token")?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
                expires_at: r.try_get("expires_at")?,
                ended_at: r.try_get("ended_at")?,
            })
        })
        .transpose()
    }

    /// Sessions are not personal data about a case; they change outside the change log.
    pub async fn create_session(&self, s: &SessionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.token_hash)
        .bind(&s.user_id)
        .bind(&s.csrf_token)
        .bind(&s.created_at)
        .bind(&s.last_seen_at)
        .bind(&s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn touch_session(&self, token_hash: &str, at: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(at)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Consecutive failed logins of an account and the end of its temporary lock, if any.
    pub async fn login_failures(&self, user_id: &str) -> Result<(i64, Option<String>)> {
        let row =
            sqlx::query("SELECT failures, locked_until FROM login_failures WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(r) => (r.try_get::<i64, _>(0)?, r.try_get::<Option<String>, _>(1)?),
            None => (0, None),
        })
    }

    /// Count one more failed login; returns the number of consecutive failures.
    pub async fn record_login_failure(&self, user_id: &str, at: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO login_failures (user_id, failures, last_failure_at) VALUES ($1, 1, $2) \
             ON CONFLICT (user_id) DO UPDATE SET failures = login_failures.failures + 1, \
             last_failure_at = excluded.last_failure_at RETURNING failures",
        )
        .bind(user_id)
        .bind(at)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    pub async fn lock_login(&self, user_id: &str, until: &str) -> Result<()> {
        sqlx::query("UPDATE login_failures SET locked_until = $1 WHERE user_id = $2")
            .bind(until)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forget failed logins (after a successful one, or when an administrator unlocks).
    pub async fn clear_login_failures(&self, user_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// End every open session of a user but one (after a password change).
    pub async fn end_user_sessions(
        &self,
        user_id: &str,
        except_hash: Option<&str>,
        at: &str,
    ) -> Result<u64> {
        let res = sqlx::query(
            "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL AND token_hash <> $3",
        )
        .bind(at)
        .bind(user_id)
        .bind(except_hash.unwrap_or(""))
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected())
    }

    pub async fn end_session(&self, token_hash: &str, at: &str) -> Result<()> {
        sqlx::query("UPDATE sessions SET ended_at = $1 WHERE token_hash = $2 AND ended_at IS NULL")
            .bind(at)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Table {
    Persons,
    Families,
    Cases,
    Relations,
    Users,
    Changes,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Persons => "persons",
            Table::Families => "families",
            Table::Cases => "cases",
            Table::Relations => "relations",
            Table::Users => "users",
            Table::Changes => "changes",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PersonQuery {
    pub role: Option<PersonRole>,
    /// Normalised name words (see `normalize_for_search`).
    pub name: Option<String>,
    pub national_id: Option<String>,
    pub birth_date: Option<Date>,
    pub territories: Option<Vec<String>>,
    pub sex: Option<Sex>,
    /// Born between these days, both included.
    pub born_between: Option<(Date, Date)>,
    pub cases: Option<CaseFilter>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    pub responsible_user: Option<String>,
    pub status: Option<CaseStatus>,
    pub open_only: bool,
    pub territories: Option<Vec<String>>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PersonRow {
    pub id: Uuid,
    pub version: i64,
    pub data: PersonData,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RelationRow {
    pub id: Uuid,
    pub version: i64,
    pub person_id: Uuid,
    pub data: RelationData,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FamilyRow {
    pub id: Uuid,
    pub version: i64,
    pub data: FamilyData,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseRow {
    pub id: Uuid,
    pub version: i64,
    pub number: String,
    pub status: CaseStatus,
    pub data: CaseData,
    pub responsible_user: Option<String>,
    /// The territory serving the case: the place of identification until a transfer.
    pub territory: String,
    /// The day the case entered its status.
    pub status_since: Option<Date>,
    /// The territory a waiting transfer goes to.
    pub transfer_territory: Option<String>,
    pub work: CaseWork,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub version: i64,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The day the change took effect, when it is not the day it was recorded (seed 000 §20).
    pub effective_on: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserRow {
    pub id: String,
    pub version: i64,
    pub login: String,
    pub password_hash: String,
    pub full_name: String,
    pub role: String,
    pub organisation: String,
    pub org_kind: String,
    pub scope_territory: String,
    pub valid_from: String,
    pub valid_until: Option<String>,
    /// `status == "active"`, kept as its own column for the policy's fast path.
    pub active: bool,
    pub must_change_password: bool,
    pub created_at: String,
    /// active | suspended | revoked.
    pub status: String,
    pub status_reason: Option<String>,
    /// Seed 000 §26: the organisation's INN, address and territorial unit; the specialist's
    /// national identifier and position.
    pub org_inn: Option<String>,
    pub org_address: Option<String>,
    pub territorial_unit: Option<String>,
    pub national_id: Option<String>,
    pub position: Option<String>,
    /// Base32 TOTP secret once the second factor is enrolled.
    pub totp_secret: Option<String>,
    /// The last accepted TOTP time step (a code is accepted once).
    pub totp_last_step: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub ended_at: Option<String>,
}

const PERSON_COLS: &str = "id, version, role, surname, given_name, patronymic, sex, birth_date, national_id, citizenship, residence_territory, address, disability, legal_status, social_payments, extra, created_at, created_by, updated_at, updated_by";
const FAMILY_COLS: &str = "id, version, name, territory, address, extra, created_at, updated_at";
const CASE_COLS: &str = "id, version, number, subject_kind, subject_id, status, identified_on, identification_territory, identification_place, identification_place_text, source, categories, responsible_org, responsible_user, extra, created_at, created_by, updated_at, territory, status_since, transfer_territory, progress";
pub(crate) const USER_COLS: &str = "id, version, login, password_hash, full_name, role, organisation, org_kind, scope_territory, valid_from, valid_until, active, must_change_password, created_at, status, status_reason, org_inn, org_address, territorial_unit, national_id, position, totp_secret, totp_last_step";

/// The earliest day a stored date is compared with (dates are ISO text: year 1 sorts fine,
/// `Date::MIN`'s negative years do not).
fn min_stored_date() -> Date {
    Date::from_calendar_date(1, time::Month::January, 1).unwrap_or(Date::MIN)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn uuid_col(r: &AnyRow, col: &str) -> Result<Uuid> {
    let s: String = r.try_get(col)?;
    Uuid::parse_str(&s).map_err(|_| corrupt(col))
}

fn date_col(r: &AnyRow, col: &str) -> Result<Option<Date>> {
    let s: Option<String> = r.try_get(col)?;
    match s {
        None => Ok(None),
        Some(s) => parse_date(&s).map(Some).ok_or_else(|| corrupt(col)),
    }
}

fn json_list(r: &AnyRow, col: &str) -> Result<Vec<String>> {
    let s: String = r.try_get(col)?;
    serde_json::from_str(&s).map_err(|_| corrupt(col))
}

fn json_obj(r: &AnyRow, col: &str) -> Result<Map<String, Value>> {
    let s: String = r.try_get(col)?;
    serde_json::from_str(&s).map_err(|_| corrupt(col))
}

fn person_from_row(r: &AnyRow) -> Result<PersonRow> {
    let sex: String = r.try_get("sex")?;
    let role: String = r.try_get("role")?;
    Ok(PersonRow {
        id: uuid_col(r, "id")?,
        version: r.try_get("version")?,
        data: PersonData {
            role: PersonRole::parse(&role).ok_or_else(|| corrupt("persons.role"))?,
            surname: r.try_get("surname")?,
            given_name: r.try_get("given_name")?,
            patronymic: r.try_get("patronymic")?,
            sex: Sex::parse(&sex).ok_or_else(|| corrupt("persons.sex"))?,
            birth_date: date_col(r, "birth_date")?,
            national_id: r.try_get("national_id")?,
            citizenship: r.try_get("citizenship")?,
            residence_territory: r.try_get("residence_territory")?,
            address: r.try_get("address")?,
            disability: r.try_get("disability")?,
            legal_status: r.try_get("legal_status")?,
            social_payments: json_list(r, "social_payments")?,
            extra: json_obj(r, "extra")?,
        },
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
    })
}

fn relation_from_row(r: &AnyRow) -> Result<RelationRow> {
    Ok(RelationRow {
        id: uuid_col(r, "r_id")?,
        version: r.try_get("r_version")?,
        person_id: uuid_col(r, "r_person_id")?,
        data: RelationData {
            relation_kind: r.try_get("relation_kind")?,
            relative_status: r.try_get("relative_status")?,
            note: r.try_get("note")?,
        },
    })
}

fn family_from_row(r: &AnyRow) -> Result<FamilyRow> {
    Ok(FamilyRow {
        id: uuid_col(r, "id")?,
        version: r.try_get("version")?,
        data: FamilyData {
            name: r.try_get("name")?,
            territory: r.try_get("territory")?,
            address: r.try_get("address")?,
            extra: json_obj(r, "extra")?,
        },
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn case_from_row(r: &AnyRow) -> Result<CaseRow> {
    let status: String = r.try_get("status")?;
    let kind: String = r.try_get("subject_kind")?;
    Ok(CaseRow {
        id: uuid_col(r, "id")?,
        version: r.try_get("version")?,
        number: r.try_get("number")?,
        status: CaseStatus::parse(&status).ok_or_else(|| corrupt("cases.status"))?,
        data: CaseData {
            subject_kind: SubjectKind::parse(&kind).ok_or_else(|| corrupt("cases.subject_kind"))?,
            subject_id: uuid_col(r, "subject_id")?,
            identified_on: date_col(r, "identified_on")?
                .ok_or_else(|| corrupt("cases.identified_on"))?,
            identification_territory: r.try_get("identification_territory")?,
            identification_place: r.try_get("identification_place")?,
            identification_place_text: r.try_get("identification_place_text")?,
            source: r.try_get("source")?,
            categories: json_list(r, "categories")?,
            responsible_org: r.try_get("responsible_org")?,
            extra: json_obj(r, "extra")?,
        },
        responsible_user: r.try_get("responsible_user")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
        territory: match r.try_get::<Option<String>, _>("territory")? {
            Some(t) => t,
            None => r.try_get("identification_territory")?,
        },
        status_since: date_col(r, "status_since")?,
        transfer_territory: r.try_get("transfer_territory")?,
        work: match r.try_get::<Option<String>, _>("progress")? {
            Some(s) => serde_json::from_str(&s).map_err(|_| corrupt("cases.progress"))?,
            None => CaseWork::default(),
        },
    })
}

pub(crate) fn change_from_row(r: &AnyRow) -> Result<ChangeRow> {
    let parse = |col: &str| -> Result<Option<Value>> {
        let s: Option<String> = r.try_get(col)?;
        s.map(|s| serde_json::from_str(&s).map_err(|_| corrupt(col)))
            .transpose()
    };
    Ok(ChangeRow {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        request_id: r.try_get("request_id")?,
        action: r.try_get("action")?,
        entity: r.try_get("entity")?,
        entity_id: r.try_get("entity_id")?,
        version: r.try_get("version")?,
        before: parse("before_json")?,
        after: parse("after_json")?,
        effective_on: r.try_get("effective_on")?,
    })
}

pub(crate) fn user_from_row(r: &AnyRow) -> Result<UserRow> {
    Ok(UserRow {
        id: r.try_get("id")?,
        version: r.try_get("version")?,
        login: r.try_get("login")?,
        password_hash: r.try_get("password_hash")?,
        full_name: r.try_get("full_name")?,
        role: r.try_get("role")?,
        organisation: r.try_get("organisation")?,
        org_kind: r.try_get("org_kind")?,
        scope_territory: r.try_get("scope_territory")?,
        valid_from: r.try_get("valid_from")?,
        valid_until: r.try_get("valid_until")?,
        active: r.try_get::<i64, _>("active")? != 0,
        must_change_password: r.try_get::<i64, _>("must_change_password")? != 0,
        created_at: r.try_get("created_at")?,
        status: r.try_get("status")?,
        status_reason: r.try_get("status_reason")?,
        org_inn: r.try_get("org_inn")?,
        org_address: r.try_get("org_address")?,
        territorial_unit: r.try_get("territorial_unit")?,
        national_id: r.try_get("national_id")?,
        position: r.try_get("position")?,
        totp_secret: r.try_get("totp_secret")?,
        totp_last_step: r.try_get("totp_last_step")?,
    })
}

/// A write in progress. Every state-changing method records a change row; nothing else in the
/// code base writes to the state tables.
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    engine: Engine,
    actor: String,
    request_id: Option<String>,
    now: String,
    /// The ledger position of the next entry this transaction writes (read once, under the
    /// writer lock).
    next_pos: Option<i64>,
    /// The day the changes of this transaction took effect, when the user gave one.
    effective_on: Option<String>,
    /// The store's note of the next ledger position, updated when this transaction commits.
    ledger_next: Arc<std::sync::Mutex<Option<i64>>>,
    _guard: Option<OwnedMutexGuard<()>>,
}

/// The PostgreSQL advisory lock key that serialises ledger appends ("kamkor" in ASCII).
const LEDGER_LOCK: i64 = 0x6b61_6d6b_6f72;

/// (action, entity, entity id, version, before, after) of one change row.
type ChangeToRecord<'a> = (&'a str, &'a str, String, i64, Option<Value>, Option<Value>);

/// A query being built against any engine.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// The row write of a person update ($1..$19), shared by the ledgered path and the bench's.
const PERSON_UPDATE: &str = "UPDATE persons SET version = version + 1, role = $1, surname = $2, given_name = $3, patronymic = $4, \
     sex = $5, birth_date = $6, national_id = $7, citizenship = $8, residence_territory = $9, address = $10, \
     disability = $11, legal_status = $12, social_payments = $13, extra = $14, search_name = $15, \
     updated_at = $16, updated_by = $17 WHERE id = $18 AND version = $19";

fn bind_person_update<'q>(
    q: AnyQuery<'q>,
    p: &PersonData,
    now: &str,
    actor: &str,
    id: Uuid,
    base_version: i64,
) -> AnyQuery<'q> {
    bind_person_fields(q, p)
        .bind(p.search_name())
        .bind(now.to_string())
        .bind(actor.to_string())
        .bind(id.to_string())
        .bind(base_version)
}

/// Columns of an entry as inserted, in the order `Tx::bind_entries` binds them.
const ENTRY_INSERT_COLS: usize = 12;

/// The INSERT of `n` entries with parameters from `$first` on. `guarded`: only if the first
/// entry's position follows the ledger's end (one more parameter, the expected last position).
/// `after_row_write`: only if the statement before it changed exactly one row.
fn entries_insert_sql(n: usize, first: usize, guarded: bool, after_row_write: bool) -> String {
    let mut sql = String::from(
        "INSERT INTO changes (at, actor, request_id, action, entity, entity_id, version, before_json, after_json, pos, leaf_hash, effective_on) ",
    );
    let conditional = guarded || after_row_write;
    sql.push_str(if conditional {
        "SELECT * FROM (VALUES "
    } else {
        "VALUES "
    });
    for i in 0..n {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..ENTRY_INSERT_COLS {
            if c > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", first + i * ENTRY_INSERT_COLS + c));
        }
        sql.push(')');
    }
    if conditional {
        let mut conds = Vec::new();
        if after_row_write {
            conds.push("changes() = 1".to_string());
        }
        if guarded {
            conds.push(format!(
                "(SELECT COALESCE(MAX(pos), -1) FROM changes) = ${}",
                first + n * ENTRY_INSERT_COLS
            ));
        }
        sql.push_str(&format!(") AS entries WHERE {}", conds.join(" AND ")));
    }
    sql
}

/// A person's data columns, role to extra, in the order both the INSERT and the UPDATE of
/// persons list them.
fn bind_person_fields<'q>(q: AnyQuery<'q>, p: &PersonData) -> AnyQuery<'q> {
    q.bind(p.role.code())
        .bind(p.surname.clone())
        .bind(p.given_name.clone())
        .bind(p.patronymic.clone())
        .bind(p.sex.code())
        .bind(p.birth_date.map(format_date))
        .bind(p.national_id.clone())
        .bind(p.citizenship.clone())
        .bind(p.residence_territory.clone())
        .bind(p.address.clone())
        .bind(p.disability.clone())
        .bind(p.legal_status.clone())
        .bind(serde_json::to_string(&p.social_payments).unwrap_or_else(|_| "[]".into()))
        .bind(Value::Object(p.extra.clone()).to_string())
}

/// A unique violation of the index on `what` as its duplicate; other errors as they are
/// (the statement also wrote a ledger entry, whose own violations must not pass for it).
fn dup_store(e: StoreError, what: &'static str) -> StoreError {
    match e {
        StoreError::Db(sqlx::Error::Database(db))
            if db.is_unique_violation()
                && (db.constraint().is_some_and(|c| c.contains(what))
                    || db.message().contains(what)) =>
        {
            StoreError::Duplicate(what)
        }
        e => e,
    }
}

/// An entry ready to be written: the change reduced to what changed.
struct PreparedEntry<'a> {
    action: &'a str,
    entity: &'a str,
    id: &'a str,
    version: i64,
    before: Option<String>,
    after: Option<String>,
    effective_on: Option<String>,
}

/// Rows per multi-row INSERT: well under both engines' parameter limits.
const CHUNK: usize = 200;

/// The texts an entry stores of a change: the fields that changed
/// ([`kamkor_domain::records::changed_fields`]; replay folds them back).
fn changed_fields(
    before: Option<&Value>,
    after: Option<&Value>,
) -> (Option<String>, Option<String>) {
    let (before, after) = kamkor_domain::records::changed_fields(before, after);
    (
        before.as_ref().map(Value::to_string),
        after.as_ref().map(Value::to_string),
    )
}

fn person_json(p: &PersonData) -> Value {
    serde_json::to_value(p).unwrap_or(Value::Null)
}

/// A case as the ledger holds it: its data with number, status, responsible worker and
/// lifecycle. The lifecycle fields added by issue 5 appear only when set (the serving territory
/// only when it differs from the place of identification), so that cases recorded before them
/// replay unchanged.
pub(crate) fn case_json(c: &CaseRow) -> Value {
    let mut v = serde_json::to_value(&c.data).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("number".into(), Value::String(c.number.clone()));
        m.insert("status".into(), Value::String(c.status.code().into()));
        m.insert(
            "responsible_user".into(),
            c.responsible_user
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        if c.territory != c.data.identification_territory {
            m.insert("territory".into(), Value::String(c.territory.clone()));
        }
        if let Some(d) = c.status_since {
            m.insert("status_since".into(), Value::String(format_date(d)));
        }
        if let Some(t) = &c.transfer_territory {
            m.insert("transfer_territory".into(), Value::String(t.clone()));
        }
        if !c.work.is_empty() {
            m.insert(
                "work".into(),
                serde_json::to_value(&c.work).unwrap_or(Value::Null),
            );
        }
    }
    v
}

impl Tx {
    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn now(&self) -> &str {
        &self.now
    }

    pub async fn commit(self) -> Result<()> {
        let written = self.next_pos;
        let cache = self.ledger_next.clone();
        match self.tx.commit().await {
            Ok(()) => {
                if let Some(next) = written
                    && let Ok(mut c) = cache.lock()
                {
                    *c = Some(next);
                }
                Ok(())
            }
            Err(e) => {
                if let Ok(mut c) = cache.lock() {
                    *c = None;
                }
                Err(e.into())
            }
        }
    }

    /// Append ledger entries: each gets the next position and the hash of its contents, in
    /// this transaction (issue 4 item 1).
    ///
    /// The first position comes from the last commit of this process without a query; the
    /// first INSERT is guarded so that it writes nothing unless that position still follows
    /// the ledger's end (another process may have appended since), and then the end is read
    /// and the entries written again. Appends are serialised (see `Store::begin`), so the
    /// guard cannot pass wrongly.
    async fn record_changes(&mut self, rows: &[ChangeToRecord<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let prepared = self.prepare_entries(rows);
        let (pos, guarded) = self.start_pos().await?;
        self.insert_prepared(pos, guarded, &prepared).await
    }

    fn prepare_entries<'a>(&self, rows: &'a [ChangeToRecord<'a>]) -> Vec<PreparedEntry<'a>> {
        rows.iter()
            .map(|(action, entity, id, version, before, after)| {
                let (before, after) = changed_fields(before.as_ref(), after.as_ref());
                PreparedEntry {
                    action,
                    entity,
                    id,
                    version: *version,
                    before,
                    after,
                    // Only changes of state take effect; events happen when recorded.
                    effective_on: self.effective_on.clone().filter(|_| *version > 0),
                }
            })
            .collect()
    }

    /// Where this transaction's next entry goes, and whether that is only presumed (from the
    /// last commit of this process) and must be guarded.
    async fn start_pos(&mut self) -> Result<(i64, bool)> {
        Ok(match self.next_pos {
            Some(p) => (p, false),
            None => match self.ledger_next.lock().ok().and_then(|c| *c) {
                Some(p) => (p, true),
                None => (self.ledger_end().await?, false),
            },
        })
    }

    async fn insert_prepared(
        &mut self,
        mut pos: i64,
        mut guarded: bool,
        prepared: &[PreparedEntry<'_>],
    ) -> Result<()> {
        let mut chunks = prepared.chunks(CHUNK).peekable();
        while let Some(chunk) = chunks.peek() {
            let sql = entries_insert_sql(chunk.len(), 1, guarded, false);
            let q = self.bind_entries(sqlx::query(AssertSqlSafe(sql)), pos, chunk);
            let q = if guarded { q.bind(pos - 1) } else { q };
            let written = q.execute(&mut *self.tx).await?.rows_affected();
            if written < chunk.len() as u64 {
                // Another process appended since this one last did: start from the end.
                pos = self.ledger_end().await?;
                guarded = false;
                continue;
            }
            guarded = false;
            pos += chunk.len() as i64;
            chunks.next();
        }
        self.next_pos = Some(pos);
        Ok(())
    }

    /// Write one record's row and the entries of that change; `false` when the row write
    /// changed no row (a stale version or a missing record), and then nothing is recorded.
    ///
    /// On SQLite both go in one round trip — the row statement, then the INSERT of the
    /// entries guarded by `changes() = 1` — since each statement costs a hand-over to the
    /// driver's thread, and that, not the database, is most of what an entry would cost.
    /// PostgreSQL takes them one after the other.
    async fn write_row_and_record<'q>(
        &mut self,
        row_sql: &'static str,
        bind_row: impl FnOnce(AnyQuery<'q>, &str, &str) -> AnyQuery<'q>,
        rows: &[ChangeToRecord<'_>],
    ) -> Result<bool> {
        let now = self.now.clone();
        let actor = self.actor.clone();
        if self.engine == Engine::Postgres || rows.len() > CHUNK {
            let res = bind_row(sqlx::query(row_sql), &now, &actor)
                .execute(&mut *self.tx)
                .await?;
            if res.rows_affected() == 0 {
                return Ok(false);
            }
            self.record_changes(rows).await?;
            return Ok(true);
        }
        let prepared = self.prepare_entries(rows);
        let (pos, guarded) = self.start_pos().await?;
        let row_params = row_sql.matches('$').count();
        let sql = format!(
            "{row_sql}; {}",
            entries_insert_sql(prepared.len(), row_params + 1, guarded, true)
        );
        let q = bind_row(sqlx::query(AssertSqlSafe(sql)), &now, &actor);
        let q = self.bind_entries(q, pos, &prepared);
        let q = if guarded { q.bind(pos - 1) } else { q };
        let written = q.execute(&mut *self.tx).await?.rows_affected();
        let n = prepared.len() as u64;
        if written == 0 {
            return Ok(false);
        }
        if written == 1 + n {
            self.next_pos = Some(pos + n as i64);
            return Ok(true);
        }
        // The row was written but the presumed position was stale: append at the end.
        let end = self.ledger_end().await?;
        self.insert_prepared(end, false, &prepared).await?;
        Ok(true)
    }

    /// Bind the values of entries from position `pos` on, in the order of
    /// [`entries_insert_sql`].
    fn bind_entries<'q>(
        &self,
        mut q: AnyQuery<'q>,
        mut pos: i64,
        chunk: &[PreparedEntry<'_>],
    ) -> AnyQuery<'q> {
        for e in chunk {
            let hash = kamkor_ledger::entry_hash(&kamkor_ledger::EntryFields {
                pos: pos as u64,
                at: &self.now,
                actor: &self.actor,
                request_id: self.request_id.as_deref(),
                action: e.action,
                entity: e.entity,
                entity_id: e.id,
                version: e.version,
                before: e.before.as_deref(),
                after: e.after.as_deref(),
                effective_on: e.effective_on.as_deref(),
            });
            q = q
                .bind(self.now.clone())
                .bind(self.actor.clone())
                .bind(self.request_id.clone())
                .bind(e.action.to_string())
                .bind(e.entity.to_string())
                .bind(e.id.to_string())
                .bind(e.version)
                .bind(e.before.clone())
                .bind(e.after.clone())
                .bind(pos)
                .bind(kamkor_ledger::to_hex(&hash))
                .bind(e.effective_on.clone());
            pos += 1;
        }
        q
    }

    /// The position after the ledger's last entry, read in this transaction.
    async fn ledger_end(&mut self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(pos), -1) FROM changes")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get::<i64, _>(0)? + 1)
    }

    /// The day the changes written from now on took effect (seed 000 §20: circumstances are
    /// entered from the day the information was received, which may be before today).
    pub fn set_effective_on(&mut self, day: Option<time::Date>) {
        self.effective_on = day.map(format_date);
    }

    /// Next value of a named counter (case numbers), inside this transaction.
    pub async fn next_counter(&mut self, name: &str) -> Result<i64> {
        let row =
            sqlx::query("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value")
                .bind(name)
                .fetch_optional(&mut *self.tx)
                .await?;
        if let Some(r) = row {
            return Ok(r.try_get::<i64, _>(0)?);
        }
        sqlx::query("INSERT INTO counters (name, value) VALUES ($1, 1)")
            .bind(name)
            .execute(&mut *self.tx)
            .await?;
        Ok(1)
    }

    /// Raise a counter to at least `value` (after a bulk load that assigned numbers itself).
    pub async fn raise_counter(&mut self, name: &str, value: i64) -> Result<()> {
        let res = sqlx::query("UPDATE counters SET value = $2 WHERE name = $1 AND value < $2")
            .bind(name)
            .bind(value)
            .execute(&mut *self.tx)
            .await?;
        if res.rows_affected() == 0 {
            let exists = sqlx::query("SELECT value FROM counters WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *self.tx)
                .await?;
            if exists.is_none() {
                sqlx::query("INSERT INTO counters (name, value) VALUES ($1, $2)")
                    .bind(name)
                    .bind(value)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        sqlx::query("DELETE FROM meta WHERE key = $1")
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2)")
            .bind(key)
            .bind(value)
            .execute(&mut *self.tx)
            .await?;
        self.record_changes(&[(
            "set",
            "meta",
            key.to_string(),
            1,
            None,
            Some(Value::String(value.to_string())),
        )])
        .await
    }

    /// Insert persons (one or many: the demo loads a million through here).
    pub async fn insert_persons(&mut self, persons: &[(Uuid, PersonData)]) -> Result<()> {
        for chunk in persons.chunks(CHUNK) {
            let mut sql = format!("INSERT INTO persons ({PERSON_COLS}, search_name) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for c in 0..21 {
                    if c > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("${}", i * 21 + c + 1));
                }
                sql.push(')');
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, p) in chunk {
                q = bind_person_fields(q.bind(id.to_string()).bind(1i64), p)
                    .bind(self.now.clone())
                    .bind(self.actor.clone())
                    .bind(self.now.clone())
                    .bind(self.actor.clone())
                    .bind(p.search_name());
            }
            q.execute(&mut *self.tx)
                .await
                .map_err(|e| dup(e, "national_id"))?;
            let changes: Vec<_> = chunk
                .iter()
                .map(|(id, p)| {
                    (
                        "create",
                        "person",
                        id.to_string(),
                        1,
                        None,
                        Some(person_json(p)),
                    )
                })
                .collect();
            self.record_changes(&changes).await?;
        }
        Ok(())
    }

    /// Update a person if it is still at `base_version`; otherwise a conflict (never
    /// last-write-wins). Returns the new version.
    pub async fn update_person(
        &mut self,
        id: Uuid,
        base_version: i64,
        before: &PersonData,
        p: &PersonData,
    ) -> Result<i64> {
        let v = base_version + 1;
        let entry = [(
            "update",
            "person",
            id.to_string(),
            v,
            Some(person_json(before)),
            Some(person_json(p)),
        )];
        let written = self
            .write_row_and_record(
                PERSON_UPDATE,
                |q, now, actor| bind_person_update(q, p, now, actor, id, base_version),
                &entry,
            )
            .await
            .map_err(|e| dup_store(e, "national_id"))?;
        if !written {
            return Err(self.conflict_or_missing("persons", id).await);
        }
        Ok(v)
    }

    /// The same row write as [`Tx::update_person`] without its ledger entry — only for
    /// `kamkor bench`, which measures what the ledger costs. A database changed this way no
    /// longer verifies, as it should not.
    #[doc(hidden)]
    pub async fn bench_update_person_without_ledger(
        &mut self,
        id: Uuid,
        base_version: i64,
        p: &PersonData,
    ) -> Result<i64> {
        self.write_person_row(id, base_version, p).await
    }

    async fn write_person_row(
        &mut self,
        id: Uuid,
        base_version: i64,
        p: &PersonData,
    ) -> Result<i64> {
        let q = bind_person_update(
            sqlx::query(PERSON_UPDATE),
            p,
            &self.now,
            &self.actor,
            id,
            base_version,
        );
        let res = q
            .execute(&mut *self.tx)
            .await
            .map_err(|e| dup(e, "national_id"))?;
        if res.rows_affected() == 0 {
            return Err(self.conflict_or_missing("persons", id).await);
        }
        Ok(base_version + 1)
    }

    async fn conflict_or_missing(&mut self, table: &str, id: Uuid) -> StoreError {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT version FROM {table} WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&mut *self.tx)
        .await;
        match row {
            Ok(Some(r)) => match r.try_get::<i64, _>(0) {
                Ok(current) => StoreError::Conflict { current },
                Err(e) => e.into(),
            },
            Ok(None) => StoreError::NotFound,
            Err(e) => e.into(),
        }
    }

    pub async fn insert_relations(
        &mut self,
        rels: &[(Uuid, Uuid, Uuid, RelationData)],
    ) -> Result<()> {
        for chunk in rels.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO relations (id, version, person_id, relative_id, relation_kind, relative_status, note, created_at, updated_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 9;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${},${},${},${},${},${},${},${},${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9
                ));
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, person, relative, d) in chunk {
                q = q
                    .bind(id.to_string())
                    .bind(1i64)
                    .bind(person.to_string())
                    .bind(relative.to_string())
                    .bind(d.relation_kind.clone())
                    .bind(d.relative_status.clone())
                    .bind(d.note.clone())
                    .bind(self.now.clone())
                    .bind(self.now.clone());
            }
            q.execute(&mut *self.tx)
                .await
                .map_err(|e| dup(e, "relation"))?;
            let changes: Vec<_> = chunk
                .iter()
                .map(|(id, person, relative, d)| {
                    let mut v = serde_json::to_value(d).unwrap_or(Value::Null);
                    if let Value::Object(m) = &mut v {
                        m.insert("person_id".into(), Value::String(person.to_string()));
                        m.insert("relative_id".into(), Value::String(relative.to_string()));
                    }
                    ("create", "relation", id.to_string(), 1, None, Some(v))
                })
                .collect();
            self.record_changes(&changes).await?;
        }
        Ok(())
    }

    pub async fn insert_families(&mut self, families: &[(Uuid, FamilyData)]) -> Result<()> {
        for chunk in families.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO families (id, version, name, territory, address, extra, created_at, created_by, updated_at, updated_by, search_name) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 11;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${},${},${},${},${},${},${},${},${},${},${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 10,
                    b + 11
                ));
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, f) in chunk {
                q = q
                    .bind(id.to_string())
                    .bind(1i64)
                    .bind(f.name.clone())
                    .bind(f.territory.clone())
                    .bind(f.address.clone())
                    .bind(Value::Object(f.extra.clone()).to_string())
                    .bind(self.now.clone())
                    .bind(self.actor.clone())
                    .bind(self.now.clone())
                    .bind(self.actor.clone())
                    .bind(kamkor_domain::records::normalize_for_search(&f.name));
            }
            q.execute(&mut *self.tx).await?;
            let changes: Vec<_> = chunk
                .iter()
                .map(|(id, f)| {
                    (
                        "create",
                        "family",
                        id.to_string(),
                        1,
                        None,
                        serde_json::to_value(f).ok(),
                    )
                })
                .collect();
            self.record_changes(&changes).await?;
        }
        Ok(())
    }

    /// Add members to families: (member id, family id, person id, role).
    pub async fn insert_family_members(
        &mut self,
        members: &[(Uuid, Uuid, Uuid, String)],
    ) -> Result<()> {
        for chunk in members.chunks(CHUNK) {
            let mut sql = String::from(
                "INSERT INTO family_members (id, family_id, person_id, member_role, created_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 5;
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "(${},${},${},${},${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                ));
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for (id, family, person, role) in chunk {
                q = q
                    .bind(id.to_string())
                    .bind(family.to_string())
                    .bind(person.to_string())
                    .bind(role.clone())
                    .bind(self.now.clone());
            }
            q.execute(&mut *self.tx)
                .await
                .map_err(|e| dup(e, "family member"))?;
            let changes: Vec<_> = chunk
                .iter()
                .map(|(id, family, person, role)| {
                    (
                        "create",
                        "family_member",
                        id.to_string(),
                        1,
                        None,
                        Some(serde_json::json!({"family_id": family.to_string(), "person_id": person.to_string(), "member_role": role})),
                    )
                })
                .collect();
            self.record_changes(&changes).await?;
        }
        Ok(())
    }

    pub async fn insert_cases(&mut self, cases: &[NewCase]) -> Result<()> {
        for chunk in cases.chunks(CHUNK) {
            let mut sql = "INSERT INTO cases (id, version, number, subject_kind, subject_id, status, identified_on, identification_territory, identification_place, identification_place_text, source, categories, responsible_org, responsible_user, extra, created_at, created_by, updated_at, updated_by, territory, status_since) VALUES ".to_string();
            for i in 0..chunk.len() {
                let b = i * 21;
                if i > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for c in 0..21 {
                    if c > 0 {
                        sql.push(',');
                    }
                    sql.push_str(&format!("${}", b + c + 1));
                }
                sql.push(')');
            }
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for c in chunk {
                let d = &c.data;
                q = q
                    .bind(c.id.to_string())
                    .bind(1i64)
                    .bind(c.number.clone())
                    .bind(d.subject_kind.code())
                    .bind(d.subject_id.to_string())
                    .bind(c.status.code())
                    .bind(format_date(d.identified_on))
                    .bind(d.identification_territory.clone())
                    .bind(d.identification_place.clone())
                    .bind(d.identification_place_text.clone())
                    .bind(d.source.clone())
                    .bind(serde_json::to_string(&d.categories).unwrap_or_else(|_| "[]".into()))
                    .bind(d.responsible_org.clone())
                    .bind(c.responsible_user.clone())
                    .bind(Value::Object(d.extra.clone()).to_string())
                    .bind(self.now.clone())
                    .bind(self.actor.clone())
                    .bind(self.now.clone())
                    .bind(self.actor.clone())
                    .bind(d.identification_territory.clone())
                    .bind(format_date(d.identified_on));
            }
            q.execute(&mut *self.tx)
                .await
                .map_err(|e| dup(e, "case number"))?;
            let changes: Vec<_> = chunk
                .iter()
                .map(|c| {
                    let v = case_json(&c.as_row(&self.now, &self.actor));
                    ("create", "case", c.id.to_string(), 1, None, Some(v))
                })
                .collect();
            self.record_changes(&changes).await?;
        }
        Ok(())
    }

    pub async fn insert_user(&mut self, u: &UserRow) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO users ({USER_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23)"
        )))
        .bind(u.id.clone())
        .bind(u.version)
        .bind(u.login.clone())
        .bind(u.password_hash.clone())
        .bind(u.full_name.clone())
        .bind(u.role.clone())
        .bind(u.organisation.clone())
        .bind(u.org_kind.clone())
        .bind(u.scope_territory.clone())
        .bind(u.valid_from.clone())
        .bind(u.valid_until.clone())
        .bind(i64::from(u.active))
        .bind(i64::from(u.must_change_password))
        .bind(u.created_at.clone())
        .bind(u.status.clone())
        .bind(u.status_reason.clone())
        .bind(u.org_inn.clone())
        .bind(u.org_address.clone())
        .bind(u.territorial_unit.clone())
        .bind(u.national_id.clone())
        .bind(u.position.clone())
        .bind(u.totp_secret.clone())
        .bind(u.totp_last_step)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| dup(e, "login"))?;
        self.record_changes(&[(
            "create",
            "user",
            u.id.clone(),
            u.version,
            None,
            Some(access::user_json(u)),
        )])
        .await
    }

    pub async fn set_password(
        &mut self,
        user_id: &str,
        hash: &str,
        must_change: bool,
    ) -> Result<()> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM users WHERE id = $1"
        )))
        .bind(user_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        let Some(before) = row.as_ref().map(user_from_row).transpose()? else {
            return Err(StoreError::NotFound);
        };
        let res = sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = $2, version = version + 1 WHERE id = $3",
        )
        .bind(hash)
        .bind(i64::from(must_change))
        .bind(user_id)
        .execute(&mut *self.tx)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // The whole account as before and after (never the hash itself).
        let after = UserRow {
            must_change_password: must_change,
            version: before.version + 1,
            ..before.clone()
        };
        self.record_changes(&[(
            "password_change",
            "user",
            user_id.to_string(),
            after.version,
            Some(access::user_json(&before)),
            Some(access::user_json(&after)),
        )])
        .await
    }

    /// Record one event about each of several records (the persons a search showed): one
    /// ledger entry per record, so "who saw this record" is a query on the record.
    pub async fn record_events(
        &mut self,
        action: &str,
        entity: &str,
        ids: &[String],
        detail: Option<Value>,
    ) -> Result<()> {
        let rows: Vec<ChangeToRecord<'_>> = ids
            .iter()
            .map(|id| (action, entity, id.clone(), 0i64, None, detail.clone()))
            .collect();
        self.record_changes(&rows).await
    }

    /// Record an event that changes no state table but belongs in the history (login, logout).
    pub async fn record_event(
        &mut self,
        action: &str,
        entity: &str,
        id: &str,
        detail: Option<Value>,
    ) -> Result<()> {
        let action = action.to_string();
        let entity = entity.to_string();
        let rows = [(
            action.as_str(),
            entity.as_str(),
            id.to_string(),
            0i64,
            None,
            detail,
        )];
        self.record_changes(&rows).await
    }
}

/// Ledger actions that record someone seeing a record rather than changing it.
pub const VIEW_ACTIONS: &[&str] = &[
    "view",
    "search",
    "list",
    "export",
    "print",
    "view_under_glass",
    "ledger_proof",
    "identifier_match",
    "duplicate_check",
];

/// Placeholders for a list of values bound after those already in `binds` (`$3,$4,…`).
pub(crate) fn bind_list(binds: &mut Vec<String>, values: &[String]) -> String {
    values
        .iter()
        .map(|v| {
            binds.push(v.clone());
            format!("${}", binds.len())
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn view_actions_sql() -> String {
    VIEW_ACTIONS
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A case to insert.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub id: Uuid,
    pub number: String,
    pub status: CaseStatus,
    pub data: CaseData,
    pub responsible_user: Option<String>,
}

impl NewCase {
    /// The row as inserted: serving its place of identification, in its status since the day
    /// of identification.
    fn as_row(&self, now: &str, actor: &str) -> CaseRow {
        CaseRow {
            id: self.id,
            version: 1,
            number: self.number.clone(),
            status: self.status,
            data: self.data.clone(),
            responsible_user: self.responsible_user.clone(),
            territory: self.data.identification_territory.clone(),
            status_since: Some(self.data.identified_on),
            transfer_territory: None,
            work: CaseWork::default(),
            created_at: now.to_string(),
            created_by: actor.to_string(),
            updated_at: now.to_string(),
        }
    }
}

/// Escape LIKE wildcards in a user's word (the queries use `ESCAPE '\'`).
fn like_escape(word: &str) -> String {
    word.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(crate) fn dup(e: sqlx::Error, what: &'static str) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        return StoreError::Duplicate(what);
    }
    e.into()
}
