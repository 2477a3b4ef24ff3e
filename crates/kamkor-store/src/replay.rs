//! Replaying the ledger against the state tables (issue 4 item 3): every record's last
//! state-changing entry must equal the record as stored, each entry must continue from the one
//! before it, and no record may exist that the ledger never recorded.
//!
//! An entry changes state when its version is above 0 (events such as views, logins and
//! refusals carry version 0), and then its `after` holds the record's whole ledgered state.
//! Columns the ledger does not carry are derived from it and checked too: who created and
//! last changed a record and when (the entries' actor and time), the search key. Secrets
//! (password hashes, second-factor keys) are never written to the ledger and so not replayed.
//!
//! Memory stays flat: entries are read per record in batches, and records in batches of ids.

use std::collections::HashMap;

use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::ledger::LedgerEntry;
use crate::{
    CASE_COLS, FAMILY_COLS, PERSON_COLS, Result, Store, USER_COLS, access, case_from_row,
    family_from_row, person_from_row, user_from_row,
};

/// Records checked per query.
const IDS: usize = 400;

/// The first record found to differ from what the ledger says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProblem {
    #[error(
        "{entity} {id}: {field} in the table is {table} but the ledger says {ledger} (the table was changed outside the application)"
    )]
    Differs {
        entity: String,
        id: String,
        field: String,
        table: String,
        ledger: String,
    },
    #[error(
        "{entity} {id} is recorded in the ledger but missing from the table (deleted outside the application)"
    )]
    Missing { entity: String, id: String },
    #[error(
        "{entity} {id} is in the table but the ledger never recorded it (written outside the application)"
    )]
    Unrecorded { entity: String, id: String },
    #[error(
        "{entity} {id}: the ledger entry at position {pos} does not continue from the previous state of the record"
    )]
    BrokenChain {
        entity: String,
        id: String,
        pos: i64,
    },
}

/// What the replay covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records compared, over all tables.
    pub records: u64,
}

/// A record's state as the ledger tells it.
struct Told {
    first: LedgerEntry,
    last: LedgerEntry,
    /// The state folded from every entry so far.
    state: Value,
}

/// Fold one entry into a record's state ([`kamkor_domain::records::fold_change`]); `false`
/// when the entry does not continue from it.
fn apply(state: &mut Value, e: &LedgerEntry) -> bool {
    kamkor_domain::records::fold_change(state, parse(&e.before), parse(&e.after))
}

/// A record as stored, in the ledger's shape, with the columns derived from the entries.
struct Stored {
    version: i64,
    state: Value,
    /// (column, value, what the ledger implies), checked after the state.
    derived: Vec<(&'static str, String, Derived)>,
}

#[derive(Clone, Copy)]
enum Derived {
    CreatedAt,
    CreatedBy,
    UpdatedAt,
    UpdatedBy,
    /// A value computed from the state itself, given as the expected text.
    Exact,
}

/// The tables replayed: ledger entity, table, id column.
const KINDS: &[(&str, &str, &str)] = &[
    ("person", "persons", "id"),
    ("family", "families", "id"),
    ("family_member", "family_members", "id"),
    ("relation", "relations", "id"),
    ("case", "cases", "id"),
    (
        "circumstance",
        "(SELECT * FROM case_records WHERE kind = 'circumstance') AS r",
        "id",
    ),
    (
        "assessment",
        "(SELECT * FROM case_records WHERE kind = 'assessment') AS r",
        "id",
    ),
    (
        "activity",
        "(SELECT * FROM case_records WHERE kind = 'activity') AS r",
        "id",
    ),
    (
        "plan_version",
        "(SELECT * FROM case_records WHERE kind = 'plan_version') AS r",
        "id",
    ),
    (
        "visit",
        "(SELECT * FROM case_records WHERE kind = 'visit') AS r",
        "id",
    ),
    ("user", "users", "id"),
    ("access_request", "access_requests", "id"),
    ("api_client", "api_clients", "id"),
    ("meta", "meta", "key"),
];

fn text(v: Option<&Value>) -> String {
    match v {
        None => "nothing".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
    }
}

/// The first top-level field where two states differ (or the whole value).
fn first_difference(table: &Value, ledger: &Value) -> Option<(String, String, String)> {
    if table == ledger {
        return None;
    }
    if let (Value::Object(t), Value::Object(l)) = (table, ledger) {
        let mut keys: Vec<&String> = t.keys().chain(l.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if t.get(k) != l.get(k) {
                return Some((k.clone(), text(t.get(k)), text(l.get(k))));
            }
        }
    }
    Some(("value".into(), text(Some(table)), text(Some(ledger))))
}

fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Store {
    /// Replay the ledger against every ledgered table; `Ok(Err(problem))` names the first
    /// record that differs.
    pub async fn replay_check(&self) -> Result<std::result::Result<ReplayReport, StateProblem>> {
        let mut report = ReplayReport::default();
        for &(entity, table, id_col) in KINDS {
            match self.replay_kind(entity, table, id_col).await? {
                Ok(n) => report.records += n,
                Err(p) => return Ok(Err(p)),
            }
        }
        if let Err(p) = self.replay_networks().await? {
            return Ok(Err(p));
        }
        if let Err(p) = self.replay_glass().await? {
            return Ok(Err(p));
        }
        Ok(Ok(report))
    }

    async fn replay_kind(
        &self,
        entity: &str,
        table: &str,
        id_col: &str,
    ) -> Result<std::result::Result<u64, StateProblem>> {
        let mut checked = 0u64;
        let mut after: Option<(String, i64)> = None;
        let mut batch: Vec<(String, Told)> = Vec::new();
        let mut current: Option<(String, Told)> = None;
        loop {
            let rows = self.state_entries(entity, after.as_ref()).await?;
            let done = rows.is_empty();
            for e in rows {
                after = Some((e.entity_id.clone(), e.seq));
                match &mut current {
                    Some((id, told)) if *id == e.entity_id => {
                        // Each change starts from the state the previous ones left.
                        if !apply(&mut told.state, &e) {
                            return Ok(Err(StateProblem::BrokenChain {
                                entity: entity.into(),
                                id: id.clone(),
                                pos: e.pos,
                            }));
                        }
                        told.last = e;
                    }
                    _ => {
                        if let Some(c) = current.take() {
                            batch.push(c);
                        }
                        let mut state = Value::Null;
                        if !apply(&mut state, &e) {
                            return Ok(Err(StateProblem::BrokenChain {
                                entity: entity.into(),
                                id: e.entity_id.clone(),
                                pos: e.pos,
                            }));
                        }
                        current = Some((
                            e.entity_id.clone(),
                            Told {
                                first: e.clone(),
                                last: e,
                                state,
                            },
                        ));
                    }
                }
            }
            if done && let Some(c) = current.take() {
                batch.push(c);
            }
            if batch.len() >= IDS || (done && !batch.is_empty()) {
                if let Err(p) = self.compare(entity, table, id_col, &batch).await? {
                    return Ok(Err(p));
                }
                checked += batch.len() as u64;
                batch.clear();
            }
            if done {
                break;
            }
        }
        // Every stored record must have been met in the ledger.
        let row = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await?;
        let stored: i64 = row.try_get(0)?;
        if stored as u64 != checked
            && let Some(id) = self.unrecorded(entity, table, id_col).await?
        {
            return Ok(Err(StateProblem::Unrecorded {
                entity: entity.into(),
                id,
            }));
        }
        Ok(Ok(checked))
    }

    /// State-changing entries of one entity, per record in order, after a (record, seq) key.
    async fn state_entries(
        &self,
        entity: &str,
        after: Option<&(String, i64)>,
    ) -> Result<Vec<LedgerEntry>> {
        let cols = crate::ledger::ENTRY_COLS;
        let (id, seq) = after.cloned().unwrap_or_default();
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {cols} FROM changes WHERE entity = $1 AND version > 0 \
             AND (entity_id, seq) > ($2, $3) \
             ORDER BY entity_id, seq LIMIT 2000"
        )))
        .bind(entity)
        .bind(id)
        .bind(seq)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(crate::ledger::entry_from_row).collect()
    }

    async fn compare(
        &self,
        entity: &str,
        table: &str,
        id_col: &str,
        told: &[(String, Told)],
    ) -> Result<std::result::Result<(), StateProblem>> {
        let ids: Vec<String> = told.iter().map(|(id, _)| id.clone()).collect();
        let stored = self.project(entity, table, id_col, &ids).await?;
        for (id, t) in told {
            let Some(s) = stored.get(id) else {
                return Ok(Err(StateProblem::Missing {
                    entity: entity.into(),
                    id: id.clone(),
                }));
            };
            if let Some((field, table_v, ledger_v)) = first_difference(&s.state, &t.state) {
                return Ok(Err(StateProblem::Differs {
                    entity: entity.into(),
                    id: id.clone(),
                    field,
                    table: table_v,
                    ledger: ledger_v,
                }));
            }
            // Meta values are set whole, without versions.
            if entity != "meta" && s.version != t.last.version {
                return Ok(Err(StateProblem::Differs {
                    entity: entity.into(),
                    id: id.clone(),
                    field: "version".into(),
                    table: s.version.to_string(),
                    ledger: t.last.version.to_string(),
                }));
            }
            for (col, value, how) in &s.derived {
                let want = match how {
                    Derived::CreatedAt => t.first.at.clone(),
                    Derived::CreatedBy => t.first.actor.clone(),
                    Derived::UpdatedAt => t.last.at.clone(),
                    Derived::UpdatedBy => t.last.actor.clone(),
                    Derived::Exact => continue,
                };
                if *value != want {
                    return Ok(Err(StateProblem::Differs {
                        entity: entity.into(),
                        id: id.clone(),
                        field: (*col).into(),
                        table: format!("{value:?}"),
                        ledger: format!("{want:?}"),
                    }));
                }
            }
            if let Some((col, value, _)) = s.derived.iter().find(|(col, v, how)| {
                matches!(how, Derived::Exact) && exact_wrong(col, v, &s.state)
            }) {
                return Ok(Err(StateProblem::Differs {
                    entity: entity.into(),
                    id: id.clone(),
                    field: (*col).into(),
                    table: format!("{value:?}"),
                    ledger: "a value derived from the record".into(),
                }));
            }
        }
        Ok(Ok(()))
    }

    /// The stored records with these ids, in the ledger's shape.
    async fn project(
        &self,
        entity: &str,
        table: &str,
        id_col: &str,
        ids: &[String],
    ) -> Result<HashMap<String, Stored>> {
        let cols = match entity {
            "person" => format!("{PERSON_COLS}, search_name"),
            "family" => FAMILY_COLS.to_string(),
            "family_member" => "id, family_id, person_id, member_role, created_at".to_string(),
            "relation" => "id AS r_id, version AS r_version, person_id AS r_person_id, relative_id, relation_kind, relative_status, note, created_at".to_string(),
            "case" => CASE_COLS.to_string(),
            "user" => USER_COLS.to_string(),
            "access_request" => access::REQUEST_COLS.to_string(),
            k if crate::casework::RECORD_KINDS.contains(&k) => {
                crate::casework::RECORD_COLS.to_string()
            }
            "api_client" => access::CLIENT_COLS.to_string(),
            _ => "key, value".to_string(),
        };
        let key = if entity == "relation" { "r_id" } else { id_col };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {cols} FROM {table} WHERE {id_col} IN ({})",
            placeholders(ids.len())
        )));
        let rows = ids
            .iter()
            .fold(rows, |q, id| q.bind(id.clone()))
            .fetch_all(&self.pool)
            .await?;
        let mut out = HashMap::new();
        for r in &rows {
            let id: String = r.try_get(key)?;
            out.insert(id, project_row(entity, r)?);
        }
        Ok(out)
    }

    /// A stored record of this kind that no entry recorded, if any.
    async fn unrecorded(&self, entity: &str, table: &str, id_col: &str) -> Result<Option<String>> {
        let mut last = String::new();
        loop {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {id_col} FROM {table} WHERE {id_col} > $1 ORDER BY {id_col} LIMIT {IDS}"
            )))
            .bind(last.clone())
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                return Ok(None);
            }
            let ids: Vec<String> = rows
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<std::result::Result<_, _>>()?;
            let q = sqlx::query(AssertSqlSafe(format!(
                "SELECT DISTINCT entity_id FROM changes WHERE entity = $1 AND version > 0 AND entity_id IN ({})",
                (2..ids.len() + 2)
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )))
            .bind(entity.to_string());
            let seen: Vec<String> = ids
                .iter()
                .fold(q, |q, id| q.bind(id.clone()))
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<std::result::Result<_, _>>()?;
            if let Some(id) = ids.iter().find(|id| !seen.contains(id)) {
                return Ok(Some(id.clone()));
            }
            last = ids.last().cloned().unwrap_or_default();
        }
    }

    /// Allowed networks: the adds and removes, in order, give the table's rows.
    async fn replay_networks(&self) -> Result<std::result::Result<(), StateProblem>> {
        let mut told: std::collections::BTreeSet<(String, String)> = Default::default();
        let mut from = 0u64;
        loop {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {} FROM changes WHERE action IN ('network_add', 'network_remove') AND {} AND pos >= $1 ORDER BY pos LIMIT 2000",
                crate::ledger::ENTRY_COLS,
                crate::ledger::NOT_BULK
            )))
            .bind(from as i64)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let e = crate::ledger::entry_from_row(r)?;
                from = e.pos as u64 + 1;
                let cidr = |v: &Option<String>| {
                    parse(v)
                        .and_then(|v| v.get("cidr").and_then(Value::as_str).map(str::to_string))
                        .unwrap_or_default()
                };
                if e.action == "network_add" {
                    told.insert((e.entity_id.clone(), cidr(&e.after)));
                } else {
                    told.remove(&(e.entity_id.clone(), cidr(&e.before)));
                }
            }
        }
        let rows = sqlx::query("SELECT organisation, cidr FROM org_networks")
            .fetch_all(&self.pool)
            .await?;
        let mut stored: std::collections::BTreeSet<(String, String)> = Default::default();
        for r in &rows {
            stored.insert((r.try_get(0)?, r.try_get(1)?));
        }
        if let Some((org, cidr)) = stored.difference(&told).next() {
            return Ok(Err(StateProblem::Unrecorded {
                entity: "network".into(),
                id: format!("{org} {cidr}"),
            }));
        }
        if let Some((org, cidr)) = told.difference(&stored).next() {
            return Ok(Err(StateProblem::Missing {
                entity: "network".into(),
                id: format!("{org} {cidr}"),
            }));
        }
        Ok(Ok(()))
    }

    /// Break-the-glass grants: each stored grant is the one its entry recorded.
    async fn replay_glass(&self) -> Result<std::result::Result<(), StateProblem>> {
        let mut from = 0u64;
        let mut recorded = 0i64;
        loop {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {} FROM changes WHERE action = 'break_glass' AND {} AND pos >= $1 ORDER BY pos LIMIT 400",
                crate::ledger::ENTRY_COLS,
                crate::ledger::NOT_BULK
            )))
            .bind(from as i64)
            .fetch_all(&self.pool)
            .await?;
            if rows.is_empty() {
                break;
            }
            let entries: Vec<LedgerEntry> = rows
                .iter()
                .map(crate::ledger::entry_from_row)
                .collect::<Result<_>>()?;
            from = entries.last().map_or(from, |e| e.pos as u64 + 1);
            let grants: Vec<(String, Value)> = entries
                .iter()
                .filter_map(|e| {
                    let v = parse(&e.after)?;
                    let id = v.get("grant")?.as_str()?.to_string();
                    Some((id, v))
                })
                .collect();
            recorded += grants.len() as i64;
            let ids: Vec<String> = grants.iter().map(|(id, _)| id.clone()).collect();
            let q = sqlx::query(AssertSqlSafe(format!(
                "SELECT {} FROM glass_breaks WHERE id IN ({})",
                access::GLASS_COLS,
                placeholders(ids.len())
            )));
            let stored = ids
                .iter()
                .fold(q, |q, id| q.bind(id.clone()))
                .fetch_all(&self.pool)
                .await?;
            let mut by_id = HashMap::new();
            for r in &stored {
                let g = access::glass_from_row(r)?;
                by_id.insert(g.id.clone(), g);
            }
            for (id, v) in &grants {
                let Some(g) = by_id.get(id) else {
                    return Ok(Err(StateProblem::Missing {
                        entity: "break_glass".into(),
                        id: id.clone(),
                    }));
                };
                let table = json!({
                    "grant": g.id, "user": g.user_id, "reason": g.reason,
                    "territory": g.territory, "expires_at": g.expires_at,
                });
                if let Some((field, t, l)) = first_difference(&table, v) {
                    return Ok(Err(StateProblem::Differs {
                        entity: "break_glass".into(),
                        id: id.clone(),
                        field,
                        table: t,
                        ledger: l,
                    }));
                }
            }
        }
        let row = sqlx::query("SELECT COUNT(*) FROM glass_breaks")
            .fetch_one(&self.pool)
            .await?;
        let stored: i64 = row.try_get(0)?;
        if stored != recorded {
            return Ok(Err(StateProblem::Unrecorded {
                entity: "break_glass".into(),
                id: format!("({stored} stored, {recorded} recorded)"),
            }));
        }
        Ok(Ok(()))
    }
}

fn parse(v: &Option<String>) -> Option<Value> {
    v.as_deref().and_then(|s| serde_json::from_str(s).ok())
}

/// Whether a column computed from the record holds something else.
fn exact_wrong(col: &str, value: &str, state: &Value) -> bool {
    match col {
        "search_name" => {
            serde_json::from_value::<kamkor_domain::records::PersonData>(state.clone())
                .map(|p| p.search_name() != value)
                .unwrap_or(true)
        }
        // Case records repeat fields of their data in indexed columns.
        "status" | "due_on" | "rule_key" | "case_id" => {
            state.get(col).and_then(Value::as_str).unwrap_or_default() != value
        }
        "active" => {
            let active = state.get("status").and_then(Value::as_str) == Some("active");
            value != if active { "1" } else { "0" }
        }
        _ => false,
    }
}

fn project_row(entity: &str, r: &AnyRow) -> Result<Stored> {
    use Derived::*;
    Ok(match entity {
        "person" => {
            let p = person_from_row(r)?;
            let search: String = r.try_get("search_name")?;
            Stored {
                version: p.version,
                state: crate::person_json(&p.data),
                derived: vec![
                    ("created_at", p.created_at, CreatedAt),
                    ("created_by", p.created_by, CreatedBy),
                    ("updated_at", p.updated_at, UpdatedAt),
                    ("updated_by", p.updated_by, UpdatedBy),
                    ("search_name", search, Exact),
                ],
            }
        }
        "family" => {
            let f = family_from_row(r)?;
            Stored {
                version: f.version,
                state: serde_json::to_value(&f.data).unwrap_or(Value::Null),
                derived: vec![
                    ("created_at", f.created_at, CreatedAt),
                    ("updated_at", f.updated_at, UpdatedAt),
                ],
            }
        }
        "family_member" => Stored {
            version: 1,
            state: json!({
                "family_id": r.try_get::<String, _>("family_id")?,
                "person_id": r.try_get::<String, _>("person_id")?,
                "member_role": r.try_get::<String, _>("member_role")?,
            }),
            derived: vec![("created_at", r.try_get("created_at")?, CreatedAt)],
        },
        "relation" => {
            let rel = crate::relation_from_row(r)?;
            let mut v = serde_json::to_value(&rel.data).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("person_id".into(), Value::String(rel.person_id.to_string()));
                m.insert(
                    "relative_id".into(),
                    Value::String(r.try_get::<String, _>("relative_id")?),
                );
            }
            Stored {
                version: rel.version,
                state: v,
                derived: vec![("created_at", r.try_get("created_at")?, CreatedAt)],
            }
        }
        "case" => {
            let c = case_from_row(r)?;
            Stored {
                version: c.version,
                state: crate::case_json(&c),
                derived: vec![
                    ("created_at", c.created_at, CreatedAt),
                    ("created_by", c.created_by, CreatedBy),
                    ("updated_at", c.updated_at, UpdatedAt),
                ],
            }
        }
        k if crate::casework::RECORD_KINDS.contains(&k) => {
            let rec = crate::casework::record_from_row(r)?;
            let col = |c: &str| -> Result<String> {
                Ok(r.try_get::<Option<String>, _>(c)?.unwrap_or_default())
            };
            Stored {
                version: rec.version,
                derived: vec![
                    ("created_at", rec.created_at, CreatedAt),
                    ("created_by", rec.created_by, CreatedBy),
                    ("updated_at", rec.updated_at, UpdatedAt),
                    ("updated_by", rec.updated_by, UpdatedBy),
                    ("status", col("status")?, Exact),
                    ("due_on", col("due_on")?, Exact),
                    ("rule_key", col("rule_key")?, Exact),
                    ("case_id", rec.case_id.to_string(), Exact),
                ],
                state: rec.data,
            }
        }
        "user" => {
            let u = user_from_row(r)?;
            Stored {
                version: u.version,
                state: access::user_json(&u),
                derived: vec![("active", if u.active { "1" } else { "0" }.into(), Exact)],
            }
        }
        "access_request" => {
            let q = access::request_from_row(r)?;
            Stored {
                version: q.version,
                state: access::request_json(&q),
                derived: vec![],
            }
        }
        "api_client" => {
            let c = access::client_from_row(r)?;
            Stored {
                version: c.version,
                state: access::client_json(&c),
                derived: vec![],
            }
        }
        _ => Stored {
            version: 1,
            state: Value::String(r.try_get("value")?),
            derived: vec![],
        },
    })
}
