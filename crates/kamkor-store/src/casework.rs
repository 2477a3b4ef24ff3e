//! Case work records (issue 5): circumstances, assessments, plan activities, plan versions and
//! monitoring visits live in one table, `case_records`, each as the JSON the ledger holds,
//! with status, due day and rule key repeated in columns for the indexes. Every write goes to
//! the ledger in the same transaction; the case's lifecycle is written here too.

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use crate::{
    CASE_COLS, CaseRow, ChangeRow, PERSON_COLS, PersonRow, Result, Store, StoreError, Tx,
    bind_list, case_from_row, case_json, change_from_row, corrupt, dup, format_date,
    person_from_row, uuid_col, view_actions_sql,
};

/// The kinds of case records; each is also the ledger entity of its entries.
pub const RECORD_KINDS: [&str; 5] = [
    "circumstance",
    "assessment",
    "activity",
    "plan_version",
    "visit",
];

/// One case record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRecordRow {
    pub id: Uuid,
    pub kind: String,
    pub case_id: Uuid,
    pub version: i64,
    /// The record as the ledger holds it (case_id, status, due_on and rule_key included).
    pub data: Value,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
}

impl CaseRecordRow {
    pub fn text(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

pub(crate) const RECORD_COLS: &str = "id, kind, case_id, version, status, due_on, rule_key, data, created_at, created_by, updated_at, updated_by";

pub(crate) fn record_from_row(r: &AnyRow) -> Result<CaseRecordRow> {
    let data: String = r.try_get("data")?;
    Ok(CaseRecordRow {
        id: uuid_col(r, "id")?,
        kind: r.try_get("kind")?,
        case_id: uuid_col(r, "case_id")?,
        version: r.try_get("version")?,
        data: serde_json::from_str(&data).map_err(|_| corrupt("case_records.data"))?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
        updated_by: r.try_get("updated_by")?,
    })
}

/// The indexed columns a record's data implies: (status, due_on, rule_key).
pub(crate) fn indexed(data: &Value) -> (Option<String>, Option<String>, Option<String>) {
    let t = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_string);
    (t("status"), t("due_on"), t("rule_key"))
}

/// An open item past its day, for the home pages: an activity or a planned visit.
#[derive(Debug, Clone, PartialEq)]
pub struct OverdueItem {
    pub record: CaseRecordRow,
    pub case_number: String,
    pub case_responsible_user: Option<String>,
}

impl Store {
    /// A case's records of one kind (all kinds when None), oldest first.
    pub async fn case_records(
        &self,
        case_id: Uuid,
        kind: Option<&str>,
    ) -> Result<Vec<CaseRecordRow>> {
        let rows = match kind {
            Some(k) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {RECORD_COLS} FROM case_records WHERE case_id = $1 AND kind = $2 ORDER BY created_at, id"
                )))
                .bind(case_id.to_string())
                .bind(k.to_string())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {RECORD_COLS} FROM case_records WHERE case_id = $1 ORDER BY created_at, id"
                )))
                .bind(case_id.to_string())
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(record_from_row).collect()
    }

    pub async fn case_record(&self, id: Uuid) -> Result<Option<CaseRecordRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORD_COLS} FROM case_records WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| record_from_row(&r)).transpose()
    }

    /// Open activities or planned visits (`kind`) due before `today`, in open cases served by
    /// the territories given (all when None); only those of `user` (as the case's worker or
    /// the activity's) when given. Oldest due first.
    pub async fn overdue(
        &self,
        kind: &str,
        today: time::Date,
        territories: Option<&[String]>,
        user: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OverdueItem>> {
        let statuses = if kind == "visit" {
            "'planned'"
        } else {
            "'planned', 'in_progress'"
        };
        let mut sql = format!(
            "SELECT r.id, r.kind, r.case_id, r.version, r.status, r.due_on, r.rule_key, r.data, r.created_at, r.created_by, r.updated_at, r.updated_by, \
             c.number AS case_number, c.responsible_user AS case_user \
             FROM case_records r JOIN cases c ON c.id = r.case_id \
             WHERE r.kind = $1 AND r.status IN ({statuses}) AND r.due_on < $2 \
             AND c.status NOT IN ('closed', 'suspended', 'transferred')"
        );
        let mut binds: Vec<String> = vec![kind.to_string(), format_date(today)];
        if let Some(ts) = territories {
            if ts.is_empty() {
                return Ok(Vec::new());
            }
            let list = bind_list(&mut binds, ts);
            sql.push_str(&format!(" AND c.territory IN ({list})"));
        }
        if let Some(u) = user {
            binds.push(u.to_string());
            let n = binds.len();
            binds.push(format!(
                "%\"responsible_user\":{}%",
                Value::String(u.to_string())
            ));
            sql.push_str(&format!(
                " AND (c.responsible_user = ${n} OR r.data LIKE ${})",
                n + 1
            ));
        }
        sql.push_str(&format!(
            " ORDER BY r.due_on, r.id LIMIT {}",
            limit.clamp(1, 500)
        ));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(OverdueItem {
                    record: record_from_row(r)?,
                    case_number: r.try_get("case_number")?,
                    case_responsible_user: r.try_get("case_user")?,
                })
            })
            .collect()
    }

    /// Activities of one plan in cases served by the given territories (all when None), in
    /// pages by id after `after`: for totals over a whole territory.
    pub async fn plan_activities(
        &self,
        plan: &str,
        territories: Option<&[String]>,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<CaseRecordRow>> {
        let mut sql = String::from(
            "SELECT r.id, r.kind, r.case_id, r.version, r.status, r.due_on, r.rule_key, r.data, r.created_at, r.created_by, r.updated_at, r.updated_by \
             FROM case_records r JOIN cases c ON c.id = r.case_id \
             WHERE r.kind = 'activity' AND r.id > $1 AND r.data LIKE $2",
        );
        let mut binds: Vec<String> = vec![
            after.map(|a| a.to_string()).unwrap_or_default(),
            format!("%\"plan\":{}%", Value::String(plan.to_string())),
        ];
        if let Some(ts) = territories {
            if ts.is_empty() {
                return Ok(Vec::new());
            }
            let list = bind_list(&mut binds, ts);
            sql.push_str(&format!(" AND c.territory IN ({list})"));
        }
        sql.push_str(&format!(" ORDER BY r.id LIMIT {}", limit.clamp(1, 5000)));
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(record_from_row)
            .filter(|r| r.as_ref().map_or(true, |r| r.text("plan") == Some(plan)))
            .collect()
    }

    /// Cases waiting to be accepted by the given territories.
    pub async fn incoming_transfers(&self, territories: Option<&[String]>) -> Result<Vec<CaseRow>> {
        let mut sql = format!(
            "SELECT {CASE_COLS} FROM cases WHERE status = 'transferred' AND transfer_territory IS NOT NULL"
        );
        let mut binds = Vec::new();
        if let Some(ts) = territories {
            if ts.is_empty() {
                return Ok(Vec::new());
            }
            let list = bind_list(&mut binds, ts);
            sql.push_str(&format!(" AND transfer_territory IN ({list})"));
        }
        sql.push_str(" ORDER BY number LIMIT 200");
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b.clone());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(case_from_row).collect()
    }

    /// The history of a case: its own changes and events, and the changes of its records,
    /// oldest first.
    pub async fn changes_for_case(&self, case_id: Uuid) -> Result<Vec<ChangeRow>> {
        let kinds = RECORD_KINDS
            .iter()
            .map(|k| format!("'{k}'"))
            .collect::<Vec<_>>()
            .join(",");
        let cols = "seq, at, actor, request_id, action, entity, entity_id, version, before_json, after_json, effective_on";
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {cols} FROM changes WHERE entity = 'case' AND entity_id = $1 AND version > 0 \
             UNION ALL \
             SELECT {cols} FROM changes WHERE entity = 'case' AND entity_id = $1 AND version <= 0 AND action NOT IN ({views}) \
             UNION ALL \
             SELECT {cols} FROM changes WHERE entity IN ({kinds}) AND version > 0 \
             AND entity_id IN (SELECT id FROM case_records WHERE case_id = $1) \
             ORDER BY seq",
            views = view_actions_sql()
        )))
        .bind(case_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(change_from_row).collect()
    }
}

impl Tx {
    /// A case as this transaction sees it (on its own connection, so a transaction never waits
    /// for a second connection from the pool). On PostgreSQL the row is locked until commit.
    pub async fn read_case(&mut self, id: Uuid) -> Result<Option<CaseRow>> {
        let lock = if self.engine == crate::Engine::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CASE_COLS} FROM cases WHERE id = $1{lock}"
        )))
        .bind(id.to_string())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| case_from_row(&r)).transpose()
    }

    /// A case's records, oldest first, as this transaction sees them.
    pub async fn read_case_records(&mut self, case_id: Uuid) -> Result<Vec<CaseRecordRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {RECORD_COLS} FROM case_records WHERE case_id = $1 ORDER BY created_at, id"
        )))
        .bind(case_id.to_string())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// A person as this transaction sees it.
    pub async fn read_person(&mut self, id: Uuid) -> Result<Option<PersonRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PERSON_COLS} FROM persons WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| person_from_row(&r)).transpose()
    }

    /// Add a record of case work (its data must hold `case_id`).
    pub async fn insert_case_record(
        &mut self,
        kind: &'static str,
        id: Uuid,
        case_id: Uuid,
        data: &Value,
    ) -> Result<()> {
        let (status, due_on, rule_key) = indexed(data);
        let now = self.now.clone();
        let actor = self.actor.clone();
        let sid = id.to_string();
        sqlx::query(
            "INSERT INTO case_records (id, kind, case_id, version, status, due_on, rule_key, data, created_at, created_by, updated_at, updated_by) \
             VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $8, $9)",
        )
        .bind(sid.clone())
        .bind(kind)
        .bind(case_id.to_string())
        .bind(status)
        .bind(due_on)
        .bind(rule_key)
        .bind(data.to_string())
        .bind(now)
        .bind(actor)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| dup(e, "rule_key"))?;
        self.record_changes(&[("create", kind, sid, 1, None, Some(data.clone()))])
            .await
    }

    /// Change a record of case work from `before` (at `base_version`) to `after`; false when
    /// someone changed it meanwhile (nothing is written then).
    pub async fn update_case_record(
        &mut self,
        kind: &'static str,
        id: Uuid,
        base_version: i64,
        before: &Value,
        after: &Value,
    ) -> Result<bool> {
        let (status, due_on, rule_key) = indexed(after);
        let now = self.now.clone();
        let actor = self.actor.clone();
        let res = sqlx::query(
            "UPDATE case_records SET version = version + 1, status = $1, due_on = $2, rule_key = $3, data = $4, updated_at = $5, updated_by = $6 \
             WHERE id = $7 AND kind = $8 AND version = $9",
        )
        .bind(status)
        .bind(due_on)
        .bind(rule_key)
        .bind(after.to_string())
        .bind(now)
        .bind(actor)
        .bind(id.to_string())
        .bind(kind)
        .bind(base_version)
        .execute(&mut *self.tx)
        .await?;
        if res.rows_affected() == 0 {
            return Ok(false);
        }
        self.record_changes(&[(
            "update",
            kind,
            id.to_string(),
            base_version + 1,
            Some(before.clone()),
            Some(after.clone()),
        )])
        .await?;
        Ok(true)
    }

    /// Write a case's new state (status, lifecycle, categories, responsible organisation and
    /// worker) over `before`; false when the case changed meanwhile.
    pub async fn update_case(&mut self, before: &CaseRow, after: &CaseRow) -> Result<bool> {
        let now = self.now.clone();
        let actor = self.actor.clone();
        let work = if after.work.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&after.work)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )
        };
        let res = sqlx::query(
            "UPDATE cases SET version = version + 1, status = $1, categories = $2, responsible_org = $3, responsible_user = $4, \
             territory = $5, status_since = $6, transfer_territory = $7, progress = $8, updated_at = $9, updated_by = $10 \
             WHERE id = $11 AND version = $12",
        )
        .bind(after.status.code())
        .bind(serde_json::to_string(&after.data.categories).unwrap_or_else(|_| "[]".into()))
        .bind(after.data.responsible_org.clone())
        .bind(after.responsible_user.clone())
        .bind(after.territory.clone())
        .bind(after.status_since.map(format_date))
        .bind(after.transfer_territory.clone())
        .bind(work)
        .bind(now)
        .bind(actor)
        .bind(before.id.to_string())
        .bind(before.version)
        .execute(&mut *self.tx)
        .await?;
        if res.rows_affected() == 0 {
            return Ok(false);
        }
        self.record_changes(&[(
            "update",
            "case",
            before.id.to_string(),
            before.version + 1,
            Some(case_json(before)),
            Some(case_json(after)),
        )])
        .await?;
        Ok(true)
    }
}
