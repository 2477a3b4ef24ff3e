//! Forward-only migrations, one set per engine (`migrations/sqlite`, `migrations/postgres`),
//! applied in order at start and by `kamkor migrate`. Each runs in its own transaction.

use sqlx::{AnyPool, Row};

use crate::{Engine, Result, ts};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "unique_ids_family_search",
        sqlite: include_str!("../migrations/sqlite/0002_unique_ids_family_search.sql"),
        postgres: include_str!("../migrations/postgres/0002_unique_ids_family_search.sql"),
    },
    Migration {
        version: 3,
        name: "login_failures",
        sqlite: include_str!("../migrations/sqlite/0003_login_failures.sql"),
        postgres: include_str!("../migrations/postgres/0003_login_failures.sql"),
    },
    Migration {
        version: 4,
        name: "accounts_access",
        sqlite: include_str!("../migrations/sqlite/0004_accounts_access.sql"),
        postgres: include_str!("../migrations/postgres/0004_accounts_access.sql"),
    },
    Migration {
        version: 5,
        name: "ledger",
        sqlite: include_str!("../migrations/sqlite/0005_ledger.sql"),
        postgres: include_str!("../migrations/postgres/0005_ledger.sql"),
    },
    Migration {
        version: 6,
        name: "ledger_nodes",
        sqlite: include_str!("../migrations/sqlite/0006_ledger_nodes.sql"),
        postgres: include_str!("../migrations/postgres/0006_ledger_nodes.sql"),
    },
    Migration {
        version: 7,
        name: "ledger_search",
        sqlite: include_str!("../migrations/sqlite/0007_ledger_search.sql"),
        postgres: include_str!("../migrations/postgres/0007_ledger_search.sql"),
    },
    Migration {
        version: 8,
        name: "effective_dates",
        sqlite: include_str!("../migrations/sqlite/0008_effective_dates.sql"),
        postgres: include_str!("../migrations/postgres/0008_effective_dates.sql"),
    },
    Migration {
        version: 9,
        name: "ledger_state_index",
        sqlite: include_str!("../migrations/sqlite/0009_ledger_state_index.sql"),
        postgres: include_str!("../migrations/postgres/0009_ledger_state_index.sql"),
    },
    Migration {
        version: 10,
        name: "ledger_action_index",
        sqlite: include_str!("../migrations/sqlite/0010_ledger_action_index.sql"),
        postgres: include_str!("../migrations/postgres/0010_ledger_action_index.sql"),
    },
    Migration {
        version: 11,
        name: "casework",
        sqlite: include_str!("../migrations/sqlite/0011_casework.sql"),
        postgres: include_str!("../migrations/postgres/0011_casework.sql"),
    },
    Migration {
        version: 12,
        name: "person_matching",
        sqlite: include_str!("../migrations/sqlite/0012_person_matching.sql"),
        postgres: include_str!("../migrations/postgres/0012_person_matching.sql"),
    },
];

/// The schema version this build expects.
pub const SCHEMA_VERSION: i64 = 12;

async fn ensure_table(pool: &AnyPool) -> Result<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn current(pool: &AnyPool) -> Result<i64> {
    ensure_table(pool).await?;
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .fetch_one(pool)
        .await?;
    Ok(row.try_get::<i64, _>(0)?)
}

pub(crate) async fn run(pool: &AnyPool, engine: Engine) -> Result<i64> {
    let mut version = current(pool).await?;
    let start = version;
    for m in MIGRATIONS.iter().filter(|m| m.version > start) {
        let sql = match engine {
            Engine::Sqlite => m.sqlite,
            Engine::Postgres => m.postgres,
        };
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(ts(crate::now_utc()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        version = m.version;
    }
    Ok(version)
}
