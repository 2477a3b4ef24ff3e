//! The ledger as stored (issue 4): the `changes` rows with their tree positions and leaf hashes,
//! and the signed checkpoints. Entries are appended only by [`crate::Tx`]; this module reads
//! them in order (for the checkpoint writer, proofs and `kamkor ledger verify`) and stores
//! checkpoints.

use kamkor_ledger::{Checkpoint, EntryFields};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Result, Store, corrupt};

/// One ledger entry exactly as stored (JSON texts unparsed: the hash covers them byte for byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub seq: i64,
    pub pos: i64,
    pub at: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub version: i64,
    pub before: Option<String>,
    pub after: Option<String>,
    /// Hex leaf hash recorded when the entry was written.
    pub leaf_hash: Option<String>,
}

impl LedgerEntry {
    pub fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            pos: self.pos.max(0) as u64,
            at: &self.at,
            actor: &self.actor,
            request_id: self.request_id.as_deref(),
            action: &self.action,
            entity: &self.entity,
            entity_id: &self.entity_id,
            version: self.version,
            before: self.before.as_deref(),
            after: self.after.as_deref(),
        }
    }
}

/// What an auditor looks for in the ledger; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFilter {
    pub actor: Option<String>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub action: Option<String>,
    /// RFC 3339 bounds on the entry's time: from inclusive, until exclusive.
    pub from: Option<String>,
    pub until: Option<String>,
}

/// A stored checkpoint and the tree's right edge at its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    pub checkpoint: Checkpoint,
    /// Hex hashes of the perfect subtrees, largest first.
    pub peaks: Vec<String>,
}

pub(crate) const ENTRY_COLS: &str = "seq, pos, at, actor, request_id, action, entity, entity_id, version, before_json, after_json, leaf_hash";
const CHECKPOINT_COLS: &str = "size, origin, root, at, key_id, signature, peaks";

pub(crate) fn entry_from_row(r: &AnyRow) -> Result<LedgerEntry> {
    Ok(LedgerEntry {
        seq: r.try_get("seq")?,
        pos: r.try_get::<Option<i64>, _>("pos")?.unwrap_or(-1),
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        request_id: r.try_get("request_id")?,
        action: r.try_get("action")?,
        entity: r.try_get("entity")?,
        entity_id: r.try_get("entity_id")?,
        version: r.try_get("version")?,
        before: r.try_get("before_json")?,
        after: r.try_get("after_json")?,
        leaf_hash: r.try_get("leaf_hash")?,
    })
}

fn checkpoint_from_row(r: &AnyRow) -> Result<CheckpointRow> {
    let size: i64 = r.try_get("size")?;
    let peaks: String = r.try_get("peaks")?;
    Ok(CheckpointRow {
        checkpoint: Checkpoint {
            origin: r.try_get("origin")?,
            size: u64::try_from(size).map_err(|_| corrupt("ledger_checkpoints.size"))?,
            root: r.try_get("root")?,
            time: r.try_get("at")?,
            key_id: r.try_get("key_id")?,
            signature: r.try_get("signature")?,
        },
        peaks: peaks
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

impl Store {
    /// Give rows written before the ledger existed their leaf hashes (once, at migration).
    pub(crate) async fn hash_unhashed_entries(&self) -> Result<u64> {
        let mut done = 0;
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ENTRY_COLS} FROM changes WHERE leaf_hash IS NULL ORDER BY pos LIMIT 500"
            )))
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(done);
            }
            let _guard = self.write_lock.lock().await;
            let mut tx = self.pool.begin().await?;
            for r in &rows {
                let e = entry_from_row(r)?;
                let hash = kamkor_ledger::entry_hash(&e.fields());
                sqlx::query("UPDATE changes SET leaf_hash = $1 WHERE seq = $2")
                    .bind(kamkor_ledger::to_hex(&hash))
                    .bind(e.seq)
                    .execute(&mut *tx)
                    .await?;
                done += 1;
            }
            tx.commit().await?;
        }
    }

    /// Entries in the tree (the next position to be written).
    pub async fn ledger_size(&self) -> Result<u64> {
        let row = sqlx::query("SELECT COALESCE(MAX(pos), -1) FROM changes")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get::<i64, _>(0)? + 1).max(0) as u64)
    }

    /// Up to `limit` entries from position `from` on, in tree order.
    ///
    /// The database packs the batch into one JSON array: one row per batch instead of one per
    /// entry, which is what bounds `ledger verify` (the driver's cost is per row). The JSON
    /// carries every text exactly, so the hashes are computed over the stored bytes.
    pub async fn ledger_entries(&self, from: u64, limit: i64) -> Result<Vec<LedgerEntry>> {
        let cols = ENTRY_COLS;
        let sql = match self.engine {
            crate::Engine::Sqlite => format!(
                "SELECT json_group_array(json_array({cols})) FROM \
                 (SELECT {cols} FROM changes WHERE pos >= $1 ORDER BY pos LIMIT $2)"
            ),
            crate::Engine::Postgres => format!(
                "SELECT CAST(COALESCE(json_agg(json_build_array({cols}) ORDER BY pos), '[]') AS TEXT) FROM \
                 (SELECT {cols} FROM changes WHERE pos >= $1 ORDER BY pos LIMIT $2) AS batch"
            ),
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::try_from(from).unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_one(&self.pool)
            .await?;
        let text: Option<String> = row.try_get(0)?;
        type Packed = (
            i64,
            Option<i64>,
            String,
            String,
            Option<String>,
            String,
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let packed: Vec<Packed> = match text {
            Some(t) => serde_json::from_str(&t).map_err(|_| corrupt("changes"))?,
            None => Vec::new(),
        };
        Ok(packed
            .into_iter()
            .map(|p| LedgerEntry {
                seq: p.0,
                pos: p.1.unwrap_or(-1),
                at: p.2,
                actor: p.3,
                request_id: p.4,
                action: p.5,
                entity: p.6,
                entity_id: p.7,
                version: p.8,
                before: p.9,
                after: p.10,
                leaf_hash: p.11,
            })
            .collect())
    }

    /// The entry at one position.
    pub async fn ledger_entry(&self, pos: u64) -> Result<Option<LedgerEntry>> {
        Ok(self
            .ledger_entries(pos, 1)
            .await?
            .into_iter()
            .find(|e| e.pos as u64 == pos))
    }

    /// Entries the tree does not hold: rows without a position (never written by this
    /// version), counted so that `verify` can name them.
    pub async fn unpositioned_entries(&self) -> Result<Vec<i64>> {
        let rows = sqlx::query("SELECT seq FROM changes WHERE pos IS NULL ORDER BY seq LIMIT 10")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<i64, _>(0)?)).collect()
    }

    /// The latest checkpoint, if any.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLS} FROM ledger_checkpoints ORDER BY size DESC LIMIT 1"
        )))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    /// Up to `limit` checkpoints of sizes above `after`, smallest first.
    pub async fn checkpoints_after(&self, after: u64, limit: i64) -> Result<Vec<CheckpointRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLS} FROM ledger_checkpoints WHERE size > $1 ORDER BY size LIMIT $2"
        )))
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    /// The checkpoint of exactly this size.
    pub async fn checkpoint(&self, size: u64) -> Result<Option<CheckpointRow>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHECKPOINT_COLS} FROM ledger_checkpoints WHERE size = $1"
        )))
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    /// Leaf hashes of positions `[start, end)` (at most a few hundred: see `ledger_nodes`).
    pub async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<(u64, String)>> {
        let rows = sqlx::query(
            "SELECT pos, leaf_hash FROM changes WHERE pos >= $1 AND pos < $2 ORDER BY pos",
        )
        .bind(i64::try_from(start).unwrap_or(i64::MAX))
        .bind(i64::try_from(end).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let pos: i64 = r.try_get(0)?;
                let hash: Option<String> = r.try_get(1)?;
                Ok((pos.max(0) as u64, hash.unwrap_or_default()))
            })
            .collect()
    }

    /// The stored hash of a perfect subtree, if kept.
    pub async fn ledger_node(&self, height: u32, idx: u64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT hash FROM ledger_nodes WHERE height = $1 AND idx = $2")
            .bind(i64::from(height))
            .bind(i64::try_from(idx).unwrap_or(i64::MAX))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    /// Keep hashes of perfect subtrees (written with a checkpoint; already known ones are
    /// left as they are).
    pub async fn insert_ledger_nodes(&self, nodes: &[(u32, u64, String)]) -> Result<()> {
        let _guard = match self.engine {
            crate::Engine::Sqlite => Some(self.write_lock.lock().await),
            crate::Engine::Postgres => None,
        };
        for chunk in nodes.chunks(200) {
            let mut sql = String::from("INSERT INTO ledger_nodes (height, idx, hash) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("(${},${},${})", i * 3 + 1, i * 3 + 2, i * 3 + 3));
            }
            sql.push_str(" ON CONFLICT (height, idx) DO NOTHING");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (h, idx, hash) in chunk {
                q = q
                    .bind(i64::from(*h))
                    .bind(i64::try_from(*idx).unwrap_or(i64::MAX))
                    .bind(hash.clone());
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Entries matching the filter, newest first: `limit` of them after skipping `offset`.
    pub async fn search_ledger(
        &self,
        f: &LedgerFilter,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<crate::ChangeRow>> {
        let mut conds: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        for (col, op, v) in [
            ("actor", "=", &f.actor),
            ("entity", "=", &f.entity),
            ("entity_id", "=", &f.entity_id),
            ("action", "=", &f.action),
            ("at", ">=", &f.from),
            ("at", "<", &f.until),
        ] {
            if let Some(v) = v {
                binds.push(v.clone());
                conds.push(format!("{col} {op} ${}", binds.len()));
            }
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT seq, at, actor, request_id, action, entity, entity_id, version, before_json, after_json \
             FROM changes {filter} ORDER BY seq DESC LIMIT {} OFFSET {}",
            limit.clamp(1, 500),
            offset.clamp(0, 1_000_000)
        );
        let q = sqlx::query(sqlx::AssertSqlSafe(sql));
        let rows = binds
            .into_iter()
            .fold(q, |q, b| q.bind(b))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(crate::change_from_row).collect()
    }

    /// Run one SQL statement outside the ledger, bypassing every check. Only for tests that
    /// play an attacker with database access (and for repairs by hand); nothing in the
    /// application calls it.
    #[doc(hidden)]
    pub async fn execute_unchecked(&self, sql: &str) -> Result<u64> {
        let res = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected())
    }

    /// Store a signed checkpoint (one per tree size; a second one of the same size is kept
    /// out).
    pub async fn insert_checkpoint(&self, c: &CheckpointRow) -> Result<bool> {
        let cp = &c.checkpoint;
        if self.checkpoint(cp.size).await?.is_some() {
            return Ok(false);
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO ledger_checkpoints ({CHECKPOINT_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7)"
        )))
        .bind(i64::try_from(cp.size).unwrap_or(i64::MAX))
        .bind(cp.origin.clone())
        .bind(cp.root.clone())
        .bind(cp.time.clone())
        .bind(cp.key_id.clone())
        .bind(cp.signature.clone())
        .bind(c.peaks.join(","))
        .execute(&self.pool)
        .await?;
        Ok(true)
    }
}
