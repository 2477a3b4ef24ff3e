//! What person search and duplicate finding need from the database (issue 6): the few fields
//! the in-memory person index keeps, read in pages at start; which persons the ledger says
//! changed since a position, so the index follows every write (of this process or another);
//! case statuses for the status filter; merges; pairs said to be different people.

use std::collections::{HashMap, HashSet};

use kamkor_domain::Sex;
use kamkor_domain::records::{CaseStatus, PersonRole};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use time::Date;
use uuid::Uuid;

use crate::{
    PERSON_COLS, PersonRow, Result, Store, Tx, bind_list, corrupt, date_col, person_from_row,
    uuid_col,
};

/// The fields of a person the index keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    pub id: Uuid,
    pub role: PersonRole,
    pub surname: String,
    pub given_name: String,
    pub patronymic: Option<String>,
    pub sex: Sex,
    pub birth_date: Option<Date>,
    pub national_id: Option<String>,
    pub residence_territory: Option<String>,
    /// Set once the person was merged into another record (then not searchable).
    pub merged_into: Option<Uuid>,
}

impl IndexRow {
    pub fn full_name(&self) -> String {
        let mut s = format!("{} {}", self.surname, self.given_name);
        if let Some(p) = &self.patronymic {
            s.push(' ');
            s.push_str(p);
        }
        s
    }
}

const INDEX_COLS: &str = "id, role, surname, given_name, patronymic, sex, birth_date, national_id, residence_territory, merged_into";

/// Lists of ids are bound in chunks of this many.
const ID_CHUNK: usize = 500;

fn index_row(r: &AnyRow) -> Result<IndexRow> {
    let sex: String = r.try_get("sex")?;
    let role: String = r.try_get("role")?;
    let merged: Option<String> = r.try_get("merged_into")?;
    Ok(IndexRow {
        id: uuid_col(r, "id")?,
        role: PersonRole::parse(&role).ok_or_else(|| corrupt("persons.role"))?,
        surname: r.try_get("surname")?,
        given_name: r.try_get("given_name")?,
        patronymic: r.try_get("patronymic")?,
        sex: Sex::parse(&sex).ok_or_else(|| corrupt("persons.sex"))?,
        birth_date: date_col(r, "birth_date")?,
        national_id: r.try_get("national_id")?,
        residence_territory: r.try_get("residence_territory")?,
        merged_into: match merged {
            None => None,
            Some(s) => Some(Uuid::parse_str(&s).map_err(|_| corrupt("persons.merged_into"))?),
        },
    })
}

fn id_strings(ids: &[Uuid]) -> Vec<String> {
    ids.iter().map(Uuid::to_string).collect()
}

/// Persons whose record changed in a stretch of the ledger, and where the stretch ends.
#[derive(Debug, Clone, Default)]
pub struct PersonChanges {
    pub persons: Vec<Uuid>,
    /// The position after the last entry read.
    pub next: u64,
    /// Whether the stretch reached the ledger's end.
    pub complete: bool,
}

impl Store {
    /// Rows of `select … WHERE <column> IN (the ids)`, the ids bound in chunks; `sql` ends
    /// with `IN (` and the list and its closing parenthesis are added here.
    async fn rows_for_ids(&self, sql: &str, ids: &[Uuid]) -> Result<Vec<AnyRow>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(ID_CHUNK) {
            let mut binds = Vec::new();
            let list = bind_list(&mut binds, &id_strings(chunk));
            let mut q = sqlx::query(AssertSqlSafe(format!("{sql}{list})")));
            for b in &binds {
                q = q.bind(b.as_str());
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Up to `limit` persons after `after` in id order (keyset pages, the same on both
    /// engines), merged ones included.
    pub async fn person_index_rows(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<IndexRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INDEX_COLS} FROM persons WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after.map(|u| u.to_string()).unwrap_or_default())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(index_row).collect()
    }

    /// The index fields of these persons (those that exist).
    pub async fn person_index_rows_of(&self, ids: &[Uuid]) -> Result<Vec<IndexRow>> {
        let sql = format!("SELECT {INDEX_COLS} FROM persons WHERE id IN (");
        self.rows_for_ids(&sql, ids)
            .await?
            .iter()
            .map(index_row)
            .collect()
    }

    /// Persons created, changed or merged (the `merge` event) in the ledger from position `from` on (at most
    /// `limit` entries read; views and other entities are skipped but counted).
    pub async fn person_changes_since(&self, from: u64, limit: i64) -> Result<PersonChanges> {
        let rows = sqlx::query(
            "SELECT pos, action, entity, entity_id, version FROM changes WHERE pos >= $1 ORDER BY pos LIMIT $2",
        )
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = PersonChanges {
            next: from,
            complete: (rows.len() as i64) < limit,
            ..Default::default()
        };
        let mut seen = HashSet::new();
        for r in &rows {
            let pos: i64 = r.try_get("pos")?;
            out.next = out.next.max(pos as u64 + 1);
            let entity: String = r.try_get("entity")?;
            let version: i64 = r.try_get("version")?;
            let action: String = r.try_get("action")?;
            if entity == "person" && (version > 0 || action == "merge") {
                let id = uuid_col(r, "entity_id")?;
                if seen.insert(id) {
                    out.persons.push(id);
                }
            }
        }
        Ok(out)
    }

    /// Full records of these persons, in no particular order.
    pub async fn persons_by_ids(&self, ids: &[Uuid]) -> Result<Vec<PersonRow>> {
        let sql = format!("SELECT {PERSON_COLS} FROM persons WHERE id IN (");
        self.rows_for_ids(&sql, ids)
            .await?
            .iter()
            .map(person_from_row)
            .collect()
    }

    /// The statuses of the cases of which each of these persons is the subject.
    pub async fn case_statuses_of(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, Vec<CaseStatus>>> {
        let mut out: HashMap<Uuid, Vec<CaseStatus>> = HashMap::new();
        let sql = "SELECT subject_id, status FROM cases WHERE subject_kind <> 'family' AND subject_id IN (";
        for r in self.rows_for_ids(sql, ids).await? {
            let status: String = r.try_get("status")?;
            out.entry(uuid_col(&r, "subject_id")?)
                .or_default()
                .push(CaseStatus::parse(&status).ok_or_else(|| corrupt("cases.status"))?);
        }
        Ok(out)
    }

    /// The record a person was merged into, if they were.
    pub async fn merged_into(&self, id: Uuid) -> Result<Option<Uuid>> {
        let row = sqlx::query("SELECT merged_into FROM persons WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(None),
            Some(r) => {
                let s: Option<String> = r.try_get(0)?;
                Ok(s.and_then(|s| Uuid::parse_str(&s).ok()))
            }
        }
    }

    /// Records merged into this one.
    pub async fn merged_from(&self, id: Uuid) -> Result<Vec<Uuid>> {
        let rows = sqlx::query("SELECT id FROM persons WHERE merged_into = $1 ORDER BY id")
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| uuid_col(r, "id")).collect()
    }

    /// The persons said to be someone else than this one.
    pub async fn distinct_from(&self, id: Uuid) -> Result<Vec<Uuid>> {
        let rows = sqlx::query(
            "SELECT b AS other FROM person_distinct WHERE a = $1 UNION SELECT a AS other FROM person_distinct WHERE b = $1",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| uuid_col(r, "other")).collect()
    }

    /// Every pair said to be two different people, smaller id first.
    pub async fn distinct_pairs(&self) -> Result<HashSet<(Uuid, Uuid)>> {
        let rows = sqlx::query("SELECT a, b FROM person_distinct")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((uuid_col(r, "a")?, uuid_col(r, "b")?)))
            .collect()
    }
}

/// A pair in the order the table keeps it.
pub fn ordered_pair(x: Uuid, y: Uuid) -> (Uuid, Uuid) {
    if x <= y { (x, y) } else { (y, x) }
}

impl Tx {
    /// Mark `merged` as merged into `keep` (issue 6 item 3), with the records merged into it
    /// before; `false` when it is already merged (someone else was quicker). The ledger
    /// entries are the caller's.
    pub async fn mark_merged(&mut self, merged: Uuid, keep: Uuid) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE persons SET merged_into = $1 WHERE id = $2 AND merged_into IS NULL",
        )
        .bind(keep.to_string())
        .bind(merged.to_string())
        .execute(&mut *self.tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        // Records merged into the one going away now point at the one that carries on.
        sqlx::query("UPDATE persons SET merged_into = $1 WHERE merged_into = $2")
            .bind(keep.to_string())
            .bind(merged.to_string())
            .execute(&mut *self.tx)
            .await?;
        Ok(true)
    }

    /// Remember that two persons are different people (the ledger entry is the caller's).
    pub async fn insert_distinct_pair(&mut self, x: Uuid, y: Uuid, reason: &str) -> Result<()> {
        let (a, b) = ordered_pair(x, y);
        let sql = match self.engine {
            crate::Engine::Sqlite => {
                "INSERT OR REPLACE INTO person_distinct (a, b, reason, decided_by, decided_at) VALUES ($1, $2, $3, $4, $5)"
            }
            crate::Engine::Postgres => {
                "INSERT INTO person_distinct (a, b, reason, decided_by, decided_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (a, b) DO UPDATE SET reason = EXCLUDED.reason, decided_by = EXCLUDED.decided_by, decided_at = EXCLUDED.decided_at"
            }
        };
        sqlx::query(sql)
            .bind(a.to_string())
            .bind(b.to_string())
            .bind(reason)
            .bind(self.actor.clone())
            .bind(self.now.clone())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}

/// A person search's filter on the cases the person is the subject of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseFilter {
    /// At least one case still being worked on.
    Open,
    /// Cases, all of them closed or transferred away.
    Closed,
    /// No case at all.
    NoCase,
    /// A case in this stage.
    Status(CaseStatus),
}

impl CaseFilter {
    pub fn parse(s: &str) -> Option<CaseFilter> {
        match s {
            "open" => Some(CaseFilter::Open),
            "closed" => Some(CaseFilter::Closed),
            "none" => Some(CaseFilter::NoCase),
            other => CaseStatus::parse(other).map(CaseFilter::Status),
        }
    }

    /// Whether a person with cases in these statuses passes.
    pub fn admits(self, statuses: &[CaseStatus]) -> bool {
        match self {
            CaseFilter::Open => statuses.iter().any(|s| s.is_open()),
            CaseFilter::Closed => !statuses.is_empty() && statuses.iter().all(|s| !s.is_open()),
            CaseFilter::NoCase => statuses.is_empty(),
            CaseFilter::Status(x) => statuses.contains(&x),
        }
    }

    /// The same test in SQL over `persons` (no parameters: codes are our own constants).
    pub(crate) fn sql(self) -> String {
        let any =
            "SELECT 1 FROM cases c WHERE c.subject_kind <> 'family' AND c.subject_id = persons.id";
        let open = format!("{any} AND c.status NOT IN ('closed', 'transferred')");
        match self {
            CaseFilter::Open => format!("EXISTS ({open})"),
            CaseFilter::Closed => format!("EXISTS ({any}) AND NOT EXISTS ({open})"),
            CaseFilter::NoCase => format!("NOT EXISTS ({any})"),
            CaseFilter::Status(s) => format!("EXISTS ({any} AND c.status = '{}')", s.code()),
        }
    }
}
