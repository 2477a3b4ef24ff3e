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
    /// The day the change took effect, when given (seed 000 §20).
    pub effective_on: Option<String>,
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
            effective_on: self.effective_on.as_deref(),
        }
    }
}

/// Entries as the database packed them into one text: for each entry, each column of
/// [`ENTRY_COLS`] in turn as `<byte length>:<text>`, or `-` when NULL. Texts are carried
/// byte for byte (no escaping), so hashes are computed over exactly what is stored, and
/// reading an entry borrows from the batch instead of allocating per field.
#[derive(Debug, Default)]
pub struct EntryBatch {
    text: String,
}

/// One entry borrowed from an [`EntryBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub seq: i64,
    /// -1 when the row has no position.
    pub pos: i64,
    pub at: &'a str,
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: &'a str,
    pub version: i64,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
    pub leaf_hash: Option<&'a str>,
    pub effective_on: Option<&'a str>,
}

impl EntryRef<'_> {
    pub fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            pos: self.pos.max(0) as u64,
            at: self.at,
            actor: self.actor,
            request_id: self.request_id,
            action: self.action,
            entity: self.entity,
            entity_id: self.entity_id,
            version: self.version,
            before: self.before,
            after: self.after,
            effective_on: self.effective_on,
        }
    }

    pub fn to_owned(&self) -> LedgerEntry {
        LedgerEntry {
            seq: self.seq,
            pos: self.pos,
            at: self.at.to_string(),
            actor: self.actor.to_string(),
            request_id: self.request_id.map(str::to_string),
            action: self.action.to_string(),
            entity: self.entity.to_string(),
            entity_id: self.entity_id.to_string(),
            version: self.version,
            before: self.before.map(str::to_string),
            after: self.after.map(str::to_string),
            leaf_hash: self.leaf_hash.map(str::to_string),
            effective_on: self.effective_on.map(str::to_string),
        }
    }
}

impl EntryBatch {
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The entries in order; a text that does not parse is reported as corrupt, never a panic.
    pub fn entries(&self) -> Result<Vec<EntryRef<'_>>> {
        let mut out = Vec::new();
        let mut rest = self.text.as_str();
        while !rest.is_empty() {
            let mut next = || -> Result<Option<&str>> {
                let (value, tail) = take_packed(rest).ok_or_else(|| corrupt("changes"))?;
                rest = tail;
                Ok(value)
            };
            let seq = next()?;
            let pos = next()?;
            let at = next()?;
            let actor = next()?;
            let request_id = next()?;
            let action = next()?;
            let entity = next()?;
            let entity_id = next()?;
            let version = next()?;
            let before = next()?;
            let after = next()?;
            let leaf_hash = next()?;
            let effective_on = next()?;
            let int = |v: Option<&str>| -> Result<i64> {
                v.and_then(|t| t.parse().ok())
                    .ok_or_else(|| corrupt("changes"))
            };
            out.push(EntryRef {
                seq: int(seq)?,
                pos: match pos {
                    None => -1,
                    p => int(p)?,
                },
                at: required(at)?,
                actor: required(actor)?,
                request_id,
                action: required(action)?,
                entity: required(entity)?,
                entity_id: required(entity_id)?,
                version: int(version)?,
                before,
                after,
                leaf_hash,
                effective_on,
            });
        }
        Ok(out)
    }
}

fn required(v: Option<&str>) -> Result<&str> {
    v.ok_or_else(|| corrupt("changes"))
}

/// One packed value from the front of `s`: `Some(text)`, or `None` for NULL, and the rest.
fn take_packed(s: &str) -> Option<(Option<&str>, &str)> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some((None, rest));
    }
    let colon = s.find(':')?;
    let len: usize = s.get(..colon)?.parse().ok()?;
    let end = colon.checked_add(1)?.checked_add(len)?;
    Some((Some(s.get(colon + 1..end)?), s.get(end..)?))
}

/// The query that packs a batch of entries (see [`EntryBatch`]), ordered by position.
fn packed_entries_sql(engine: crate::Engine) -> String {
    let packed: Vec<String> = ENTRY_COLS
        .split(", ")
        .map(|c| {
            let t = format!("CAST({c} AS TEXT)");
            // Lengths in UTF-8 bytes, as the client receives the text, whatever the
            // server's own encoding.
            let len = match engine {
                crate::Engine::Sqlite => format!("octet_length({t})"),
                crate::Engine::Postgres => format!("octet_length(convert_to({t}, 'UTF8'))"),
            };
            format!("COALESCE(CAST({len} AS TEXT) || ':' || {t}, '-')")
        })
        .collect();
    let packed = packed.join(" || ");
    match engine {
        crate::Engine::Sqlite => format!(
            "SELECT group_concat({packed}, '' ORDER BY pos) FROM \
             (SELECT {ENTRY_COLS} FROM changes WHERE pos >= $1 ORDER BY pos LIMIT $2)"
        ),
        crate::Engine::Postgres => format!(
            "SELECT string_agg({packed}, '' ORDER BY pos) FROM \
             (SELECT {ENTRY_COLS} FROM changes WHERE pos >= $1 ORDER BY pos LIMIT $2) AS batch"
        ),
    }
}

/// The whole ledger from a position on, in tree order, read ahead on a thread of its own while
/// the caller hashes (`ledger verify`: two cores, the reader's and the hasher's).
pub struct LedgerStream {
    rx: tokio::sync::mpsc::Receiver<Result<EntryBatch>>,
}

impl LedgerStream {
    /// The next batch; an empty one at the end.
    pub async fn next(&mut self) -> Result<EntryBatch> {
        Ok(self.rx.recv().await.transpose()?.unwrap_or_default())
    }
}

/// The order a [`LedgerStream`] reads entries in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerOrder {
    /// By position: the tree's order, whatever the rows say.
    Position,
    /// As the rows were written, which is position order in a ledger this application wrote
    /// (entries are appended under the ledger lock) and cheaper to read. A reader must check
    /// the positions and fall back to [`LedgerOrder::Position`] where they disagree.
    Stored,
}

/// The actions most entries carry, left out of the index by action (migration 10). A query
/// for any other action repeats [`NOT_BULK`] so that the database may use that index.
pub(crate) const BULK_ACTIONS: [&str; 5] = ["view", "search", "list", "update", "create"];

/// The condition of the partial index by action, word for word.
pub(crate) const NOT_BULK: &str = "action NOT IN ('view', 'search', 'list', 'update', 'create')";

/// How far around a searched period entries are looked at (see
/// `Store::first_pos_at_or_after`).
const PERIOD_MARGIN_SECS: i64 = 300;

/// Entries per batch handed over by the reader.
const STREAM_BATCH: usize = 10_000;

/// Read the entries of an SQLite file in position order on a plain read-only connection,
/// packing them as [`EntryBatch`] texts: values are copied once, straight from SQLite's
/// buffers (the pooled driver's cost per row and per value is what bounded verification).
fn read_sqlite_ledger(
    file: &std::path::Path,
    from: u64,
    order: LedgerOrder,
    tx: &tokio::sync::mpsc::Sender<Result<EntryBatch>>,
) -> std::result::Result<(), rusqlite::Error> {
    use rusqlite::types::ValueRef;
    use std::fmt::Write;
    let conn = rusqlite::Connection::open_with_flags(
        file,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let sql = match order {
        // In row order the table is read front to back without a lookup per entry.
        // From the start every row is read, whatever its numbers say.
        LedgerOrder::Stored if from == 0 => {
            format!("SELECT {ENTRY_COLS} FROM changes WHERE ?1 = 0 ORDER BY seq")
        }
        LedgerOrder::Stored => format!(
            "SELECT {ENTRY_COLS} FROM changes WHERE seq >= \
             COALESCE((SELECT seq FROM changes WHERE pos = ?1), 0) ORDER BY seq"
        ),
        LedgerOrder::Position => {
            format!("SELECT {ENTRY_COLS} FROM changes WHERE pos >= ?1 ORDER BY pos")
        }
    };
    let mut stmt = conn.prepare(&sql)?;
    let cols = ENTRY_COLS.split(", ").count();
    let mut rows = stmt.query([i64::try_from(from).unwrap_or(i64::MAX)])?;
    let mut text = String::with_capacity(STREAM_BATCH * 320);
    let mut n = 0;
    let mut int = String::new();
    while let Some(row) = rows.next()? {
        for i in 0..cols {
            match row.get_ref(i)? {
                ValueRef::Null => text.push('-'),
                ValueRef::Integer(v) => {
                    int.clear();
                    let _ = write!(int, "{v}");
                    let _ = write!(text, "{}:{int}", int.len());
                }
                ValueRef::Text(b) => {
                    let t = std::str::from_utf8(b).map_err(|e| rusqlite::Error::Utf8Error(i, e))?;
                    let _ = write!(text, "{}:", t.len());
                    text.push_str(t);
                }
                // A value of another type in the ledger: damaged, reported by the parser.
                _ => text.push('?'),
            }
        }
        n += 1;
        if n == STREAM_BATCH {
            let batch = EntryBatch {
                text: std::mem::replace(&mut text, String::with_capacity(STREAM_BATCH * 320)),
            };
            if tx.blocking_send(Ok(batch)).is_err() {
                return Ok(()); // the caller stopped reading
            }
            n = 0;
        }
    }
    if n > 0 {
        let _ = tx.blocking_send(Ok(EntryBatch { text }));
    }
    Ok(())
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

pub(crate) const ENTRY_COLS: &str = "seq, pos, at, actor, request_id, action, entity, entity_id, version, before_json, after_json, leaf_hash, effective_on";
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
        effective_on: r.try_get("effective_on")?,
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
            let mut tx = self.writer.begin().await?;
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
    pub async fn ledger_entries(&self, from: u64, limit: i64) -> Result<Vec<LedgerEntry>> {
        let batch = self.ledger_batch(from, limit).await?;
        Ok(batch.entries()?.iter().map(EntryRef::to_owned).collect())
    }

    /// Up to `limit` entries from position `from` on, in tree order, packed by the database
    /// into one text (see [`EntryBatch`]): one row per batch instead of one per entry, which is
    /// what bounds `ledger verify` (the driver's cost is per row and per value).
    pub async fn ledger_batch(&self, from: u64, limit: i64) -> Result<EntryBatch> {
        let sql = packed_entries_sql(self.engine);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::try_from(from).unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_one(&self.pool)
            .await?;
        let text: Option<String> = row.try_get(0)?;
        Ok(EntryBatch {
            text: text.unwrap_or_default(),
        })
    }

    /// Stream the ledger from position `from` on (see [`LedgerStream`]).
    pub fn stream_ledger(&self, from: u64, order: LedgerOrder) -> LedgerStream {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        match &self.sqlite_file {
            Some(file) => {
                let file = file.clone();
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = read_sqlite_ledger(&file, from, order, &tx) {
                        let _ = tx.blocking_send(Err(crate::StoreError::Io(format!(
                            "reading the ledger: {e}"
                        ))));
                    }
                });
            }
            None => {
                let store = self.clone();
                tokio::spawn(async move {
                    let mut from = from;
                    loop {
                        let batch = store.ledger_batch(from, STREAM_BATCH as i64).await;
                        let last = match &batch {
                            Ok(b) => b.entries().map(|e| e.last().map(|e| e.pos)),
                            Err(_) => Ok(None),
                        };
                        let stop = !matches!(last, Ok(Some(_)));
                        if let Ok(Some(pos)) = last {
                            from = pos.max(0) as u64 + 1;
                        }
                        if batch.as_ref().is_ok_and(EntryBatch::is_empty)
                            || tx.send(batch).await.is_err()
                            || stop
                        {
                            return;
                        }
                    }
                });
            }
        }
        LedgerStream { rx }
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

    /// The first position whose entry was recorded at or after `t` moved by `shift_secs`,
    /// found by halving over positions: entries are appended under the ledger lock with the
    /// time taken after it, so times rise with positions, but for clocks of two processes on
    /// one SQLite file or a clock set back — hence the margin around a searched period,
    /// inside which the exact times are compared.
    async fn first_pos_at_or_after(&self, t: &str, shift_secs: i64) -> Result<i64> {
        let t = match crate::parse_ts(t)
            .and_then(|x| x.checked_add(time::Duration::seconds(shift_secs)))
        {
            Some(x) => crate::ts(x),
            None => t.to_string(),
        };
        let (mut lo, mut hi) = (0i64, self.ledger_size().await? as i64);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let row = sqlx::query("SELECT at FROM changes WHERE pos = $1")
                .bind(mid)
                .fetch_optional(&self.pool)
                .await?;
            let at: Option<String> = row.map(|r| r.try_get(0)).transpose()?;
            match at {
                Some(at) if at < t => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo)
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
        // Rarer actions are indexed (see `BULK_ACTIONS`).
        if let Some(a) = &f.action
            && !BULK_ACTIONS.contains(&a.as_str())
        {
            conds.push(NOT_BULK.to_string());
        }
        // The period also bounds the positions searched (entries have no index by time).
        if f.from.is_some() || f.until.is_some() {
            let lo = match &f.from {
                Some(t) => self.first_pos_at_or_after(t, -PERIOD_MARGIN_SECS).await?,
                None => 0,
            };
            let hi = match &f.until {
                Some(t) => self.first_pos_at_or_after(t, PERIOD_MARGIN_SECS).await?,
                None => i64::MAX,
            };
            conds.push(format!("pos >= {lo} AND pos < {hi}"));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let cols = "seq, at, actor, request_id, action, entity, entity_id, version, before_json, after_json, effective_on";
        // A record's entries are indexed in two parts, changes of state and events.
        let from = if f.entity.is_some() || f.entity_id.is_some() {
            let and = if filter.is_empty() { "WHERE" } else { "AND" };
            format!(
                "(SELECT {cols} FROM changes {filter} {and} version > 0 \
                 UNION ALL SELECT {cols} FROM changes {filter} {and} version <= 0) AS hits"
            )
        } else {
            format!("changes {filter}")
        };
        let sql = format!(
            "SELECT {cols} FROM {from} ORDER BY seq DESC LIMIT {} OFFSET {}",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(values: &[Option<&str>]) -> String {
        values
            .iter()
            .map(|v| match v {
                None => "-".to_string(),
                Some(t) => format!("{}:{t}", t.len()),
            })
            .collect()
    }

    #[test]
    fn packed_entries_carry_texts_byte_for_byte() {
        let tricky = "a:b-\u{0}\"\\ 9:x Жанар ❤";
        let row = [
            Some("7"),
            Some("6"),
            Some("2026-11-25T10:00:00Z"),
            Some("user:1"),
            None,
            Some("update"),
            Some("person"),
            Some("p-1"),
            Some("2"),
            Some(tricky),
            Some(""),
            None,
            Some("2026-11-01"),
        ];
        let batch = EntryBatch {
            text: pack(&row) + &pack(&row),
        };
        let entries = batch.entries().unwrap();
        assert_eq!(entries.len(), 2);
        let e = entries[1];
        assert_eq!((e.seq, e.pos, e.version), (7, 6, 2));
        assert_eq!(e.before, Some(tricky));
        assert_eq!(e.after, Some(""));
        assert_eq!((e.request_id, e.leaf_hash), (None, None));
        assert_eq!(e.effective_on, Some("2026-11-01"));
        assert_eq!(e.to_owned().fields(), e.fields());
    }

    #[test]
    fn a_garbled_batch_is_corrupt_not_a_panic() {
        for text in [
            "x",
            "3:ab",
            "99999999999999999999999:a",
            "2:Ж",
            "1:",
            "-",
            "1:1-1:",
            ":",
            "18446744073709551615:a",
        ] {
            let batch = EntryBatch {
                text: text.to_string(),
            };
            assert!(batch.entries().is_err(), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_refused(text in ".{0,200}") {
            let batch = EntryBatch { text };
            let _ = batch.entries();
        }
    }
}
