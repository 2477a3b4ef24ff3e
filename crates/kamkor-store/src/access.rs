//! Accounts and access (issue 3): account changes, access requests, external API clients,
//! per-organisation networks and break-the-glass grants. Same rule as everywhere: every change
//! goes through [`Tx`] and leaves a change row; secrets never do.

use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{ChangeRow, Result, Store, StoreError, Tx, USER_COLS, UserRow, change_from_row, dup};

/// What of an account goes to the change log: everything but the password hash and the TOTP
/// secret (only whether one is set).
pub(crate) fn user_json(u: &UserRow) -> Value {
    json!({
        "login": u.login, "full_name": u.full_name, "role": u.role,
        "organisation": u.organisation, "org_kind": u.org_kind,
        "org_inn": u.org_inn, "org_address": u.org_address,
        "territorial_unit": u.territorial_unit, "national_id": u.national_id,
        "position": u.position, "scope_territory": u.scope_territory,
        "valid_from": u.valid_from, "valid_until": u.valid_until,
        "status": u.status, "status_reason": u.status_reason,
        "must_change_password": u.must_change_password,
        "second_factor": u.totp_secret.is_some(),
    })
}

/// A request for access sent through the public form (seed 000 §26), for an administrator.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessRequestRow {
    pub id: String,
    pub version: i64,
    /// pending | approved | rejected.
    pub status: String,
    pub full_name: String,
    pub national_id: String,
    pub position: String,
    pub organisation: String,
    pub org_inn: String,
    pub org_address: String,
    pub territorial_unit: String,
    pub roles: String,
    pub scope_territory: String,
    pub valid_until: Option<String>,
    pub contact: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
    pub user_id: Option<String>,
}

pub(crate) const REQUEST_COLS: &str = "id, version, status, full_name, national_id, position, organisation, org_inn, org_address, territorial_unit, roles, scope_territory, valid_until, contact, created_at, decided_at, decided_by, decision_note, user_id";

pub(crate) fn request_from_row(r: &AnyRow) -> Result<AccessRequestRow> {
    Ok(AccessRequestRow {
        id: r.try_get("id")?,
        version: r.try_get("version")?,
        status: r.try_get("status")?,
        full_name: r.try_get("full_name")?,
        national_id: r.try_get("national_id")?,
        position: r.try_get("position")?,
        organisation: r.try_get("organisation")?,
        org_inn: r.try_get("org_inn")?,
        org_address: r.try_get("org_address")?,
        territorial_unit: r.try_get("territorial_unit")?,
        roles: r.try_get("roles")?,
        scope_territory: r.try_get("scope_territory")?,
        valid_until: r.try_get("valid_until")?,
        contact: r.try_get("contact")?,
        created_at: r.try_get("created_at")?,
        decided_at: r.try_get("decided_at")?,
        decided_by: r.try_get("decided_by")?,
        decision_note: r.try_get("decision_note")?,
        user_id: r.try_get("user_id")?,
    })
}

pub(crate) fn request_json(r: &AccessRequestRow) -> Value {
    json!({
        "status": r.status, "full_name": r.full_name, "national_id": r.national_id,
        "position": r.position, "organisation": r.organisation, "org_inn": r.org_inn,
        "org_address": r.org_address, "territorial_unit": r.territorial_unit,
        "roles": r.roles, "scope_territory": r.scope_territory, "valid_until": r.valid_until,
        "contact": r.contact, "decided_by": r.decided_by, "decision_note": r.decision_note,
        "user_id": r.user_id,
    })
}

/// An external system allowed to call the API (seed 000 §3, §13.8; seed 004 §14).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiClientRow {
    pub id: String,
    pub version: i64,
    pub name: String,
    /// SHA-256 of the secret (the secret is 32 random bytes: no slow hash needed).
    pub secret_hash: String,
    /// Comma-separated service codes (`policy::Action::code`).
    pub services: String,
    pub organisation: String,
    pub org_kind: String,
    pub scope_territory: String,
    pub valid_from: String,
    pub valid_until: Option<String>,
    /// active | suspended | revoked.
    pub status: String,
    pub created_at: String,
    pub rotated_at: Option<String>,
}

pub(crate) const CLIENT_COLS: &str = "id, version, name, secret_hash, services, organisation, org_kind, scope_territory, valid_from, valid_until, status, created_at, rotated_at";

pub(crate) fn client_from_row(r: &AnyRow) -> Result<ApiClientRow> {
    Ok(ApiClientRow {
        id: r.try_get("id")?,
        version: r.try_get("version")?,
        name: r.try_get("name")?,
        secret_hash: r.try_get("secret_hash")?,
        services: r.try_get("services")?,
        organisation: r.try_get("organisation")?,
        org_kind: r.try_get("org_kind")?,
        scope_territory: r.try_get("scope_territory")?,
        valid_from: r.try_get("valid_from")?,
        valid_until: r.try_get("valid_until")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        rotated_at: r.try_get("rotated_at")?,
    })
}

pub(crate) fn client_json(c: &ApiClientRow) -> Value {
    json!({
        "name": c.name, "services": c.services, "organisation": c.organisation,
        "org_kind": c.org_kind, "scope_territory": c.scope_territory,
        "valid_from": c.valid_from, "valid_until": c.valid_until, "status": c.status,
        "rotated_at": c.rotated_at,
    })
}

/// A break-the-glass grant: a user reads one record outside their scope until `expires_at`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GlassBreakRow {
    pub id: String,
    pub user_id: String,
    pub person_id: String,
    /// The record's territory when the glass was broken (whose supervisors see it).
    pub territory: Option<String>,
    pub reason: String,
    pub opened_at: String,
    pub expires_at: String,
}

pub(crate) const GLASS_COLS: &str =
    "id, user_id, person_id, territory, reason, opened_at, expires_at";

pub(crate) fn glass_from_row(r: &AnyRow) -> Result<GlassBreakRow> {
    Ok(GlassBreakRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        person_id: r.try_get("person_id")?,
        territory: r.try_get("territory")?,
        reason: r.try_get("reason")?,
        opened_at: r.try_get("opened_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

impl Store {
    /// Accept a TOTP time step once: false when this step (or a later one) was already used,
    /// so a code seen over a shoulder cannot be replayed.
    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE users SET totp_last_step = $1 WHERE id = $2 \
             AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    pub async fn access_requests(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AccessRequestRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLS} FROM access_requests \
             WHERE ($1 = '' OR status = $1) ORDER BY created_at DESC LIMIT $2"
        )))
        .bind(status.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(request_from_row).collect()
    }

    pub async fn access_request(&self, id: &str) -> Result<Option<AccessRequestRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {REQUEST_COLS} FROM access_requests WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| request_from_row(&r)).transpose()
    }

    pub async fn count_pending_requests(&self, since: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM access_requests WHERE status = 'pending' AND created_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    pub async fn api_clients(&self) -> Result<Vec<ApiClientRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CLIENT_COLS} FROM api_clients ORDER BY name"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client_from_row).collect()
    }

    pub async fn api_client(&self, id: &str) -> Result<Option<ApiClientRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CLIENT_COLS} FROM api_clients WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| client_from_row(&r)).transpose()
    }

    /// All (organisation, CIDR) pairs: small, read at every request through a cache.
    pub async fn org_networks(&self) -> Result<Vec<(String, String)>> {
        let rows =
            sqlx::query("SELECT organisation, cidr FROM org_networks ORDER BY organisation, cidr")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The user's grant for this person that is still open at `now`, if any.
    pub async fn open_glass(
        &self,
        user_id: &str,
        person_id: &str,
        now: &str,
    ) -> Result<Option<GlassBreakRow>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {GLASS_COLS} FROM glass_breaks WHERE user_id = $1 AND person_id = $2 \
             AND expires_at > $3 ORDER BY expires_at DESC LIMIT 1"
        )))
        .bind(user_id)
        .bind(person_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| glass_from_row(&r)).transpose()
    }

    /// Grants opened since `since`, newest first (supervisors and administrators review them).
    pub async fn glass_breaks_since(&self, since: &str, limit: i64) -> Result<Vec<GlassBreakRow>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {GLASS_COLS} FROM glass_breaks WHERE opened_at >= $1 \
             ORDER BY opened_at DESC LIMIT $2"
        )))
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(glass_from_row).collect()
    }

    /// The newest change rows with this action (e.g. `denied`), newest first.
    pub async fn changes_by_action(&self, action: &str, limit: i64) -> Result<Vec<ChangeRow>> {
        // Rarer actions are read by their index, the bulk ones from the newest entry back.
        let indexed = if crate::ledger::BULK_ACTIONS.contains(&action) {
            String::new()
        } else {
            format!("AND {}", crate::ledger::NOT_BULK)
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT seq, at, actor, request_id, action, entity, entity_id, version, before_json, after_json, effective_on \
             FROM changes WHERE action = $1 {indexed} ORDER BY seq DESC LIMIT $2",
        )))
        .bind(action)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(change_from_row).collect()
    }

    /// Users by id, for lists that show who did what.
    pub async fn users_by_ids(&self, ids: &[String]) -> Result<Vec<UserRow>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(200) {
            let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT {USER_COLS} FROM users WHERE id IN ({})",
                params.join(",")
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.clone());
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push(crate::user_from_row(&r)?);
            }
        }
        Ok(out)
    }
}

impl Tx {
    /// Write an account's new state over `before` (optimistic: refused if the account changed
    /// meanwhile). `action` names the change in the log: update, extend, suspend, revoke,
    /// reactivate, password_reset, second_factor.
    pub async fn update_user(
        &mut self,
        before: &UserRow,
        after: &UserRow,
        action: &str,
    ) -> Result<i64> {
        let version = before.version + 1;
        let res = sqlx::query(
            "UPDATE users SET version = $1, password_hash = $2, full_name = $3, role = $4, \
             organisation = $5, org_kind = $6, scope_territory = $7, valid_from = $8, \
             valid_until = $9, active = $10, must_change_password = $11, status = $12, \
             status_reason = $13, org_inn = $14, org_address = $15, territorial_unit = $16, \
             national_id = $17, position = $18, totp_secret = $19, totp_last_step = $20 \
             WHERE id = $21 AND version = $22",
        )
        .bind(version)
        .bind(after.password_hash.clone())
        .bind(after.full_name.clone())
        .bind(after.role.clone())
        .bind(after.organisation.clone())
        .bind(after.org_kind.clone())
        .bind(after.scope_territory.clone())
        .bind(after.valid_from.clone())
        .bind(after.valid_until.clone())
        .bind(i64::from(after.status == "active"))
        .bind(i64::from(after.must_change_password))
        .bind(after.status.clone())
        .bind(after.status_reason.clone())
        .bind(after.org_inn.clone())
        .bind(after.org_address.clone())
        .bind(after.territorial_unit.clone())
        .bind(after.national_id.clone())
        .bind(after.position.clone())
        .bind(after.totp_secret.clone())
        .bind(after.totp_last_step)
        .bind(before.id.clone())
        .bind(before.version)
        .execute(&mut *self.tx)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::Conflict {
                current: before.version,
            });
        }
        self.record_changes(&[(
            action,
            "user",
            before.id.clone(),
            version,
            Some(user_json(before)),
            Some(user_json(after)),
        )])
        .await?;
        Ok(version)
    }

    pub async fn insert_access_request(&mut self, r: &AccessRequestRow) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO access_requests ({REQUEST_COLS}) VALUES \
             ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)"
        )))
        .bind(r.id.clone())
        .bind(r.version)
        .bind(r.status.clone())
        .bind(r.full_name.clone())
        .bind(r.national_id.clone())
        .bind(r.position.clone())
        .bind(r.organisation.clone())
        .bind(r.org_inn.clone())
        .bind(r.org_address.clone())
        .bind(r.territorial_unit.clone())
        .bind(r.roles.clone())
        .bind(r.scope_territory.clone())
        .bind(r.valid_until.clone())
        .bind(r.contact.clone())
        .bind(r.created_at.clone())
        .bind(r.decided_at.clone())
        .bind(r.decided_by.clone())
        .bind(r.decision_note.clone())
        .bind(r.user_id.clone())
        .execute(&mut *self.tx)
        .await?;
        self.record_changes(&[(
            "create",
            "access_request",
            r.id.clone(),
            r.version,
            None,
            Some(request_json(r)),
        )])
        .await
    }

    /// Record an administrator's decision on a pending request.
    pub async fn decide_access_request(
        &mut self,
        before: &AccessRequestRow,
        after: &AccessRequestRow,
    ) -> Result<()> {
        let res = sqlx::query(
            "UPDATE access_requests SET version = version + 1, status = $1, decided_at = $2, \
             decided_by = $3, decision_note = $4, user_id = $5 \
             WHERE id = $6 AND version = $7 AND status = 'pending'",
        )
        .bind(after.status.clone())
        .bind(after.decided_at.clone())
        .bind(after.decided_by.clone())
        .bind(after.decision_note.clone())
        .bind(after.user_id.clone())
        .bind(before.id.clone())
        .bind(before.version)
        .execute(&mut *self.tx)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::Conflict {
                current: before.version,
            });
        }
        let action = if after.status == "approved" {
            "approve"
        } else {
            "reject"
        };
        self.record_changes(&[(
            action,
            "access_request",
            before.id.clone(),
            before.version + 1,
            Some(request_json(before)),
            Some(request_json(after)),
        )])
        .await
    }

    pub async fn insert_api_client(&mut self, c: &ApiClientRow) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO api_clients ({CLIENT_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
        )))
        .bind(c.id.clone())
        .bind(c.version)
        .bind(c.name.clone())
        .bind(c.secret_hash.clone())
        .bind(c.services.clone())
        .bind(c.organisation.clone())
        .bind(c.org_kind.clone())
        .bind(c.scope_territory.clone())
        .bind(c.valid_from.clone())
        .bind(c.valid_until.clone())
        .bind(c.status.clone())
        .bind(c.created_at.clone())
        .bind(c.rotated_at.clone())
        .execute(&mut *self.tx)
        .await
        .map_err(|e| dup(e, "name"))?;
        self.record_changes(&[(
            "create",
            "api_client",
            c.id.clone(),
            c.version,
            None,
            Some(client_json(c)),
        )])
        .await
    }

    /// Write a client's new state (services, validity, status, rotated secret).
    pub async fn update_api_client(
        &mut self,
        before: &ApiClientRow,
        after: &ApiClientRow,
        action: &str,
    ) -> Result<i64> {
        let version = before.version + 1;
        let res = sqlx::query(
            "UPDATE api_clients SET version = $1, secret_hash = $2, services = $3, \
             scope_territory = $4, valid_until = $5, status = $6, rotated_at = $7 \
             WHERE id = $8 AND version = $9",
        )
        .bind(version)
        .bind(after.secret_hash.clone())
        .bind(after.services.clone())
        .bind(after.scope_territory.clone())
        .bind(after.valid_until.clone())
        .bind(after.status.clone())
        .bind(after.rotated_at.clone())
        .bind(before.id.clone())
        .bind(before.version)
        .execute(&mut *self.tx)
        .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::Conflict {
                current: before.version,
            });
        }
        self.record_changes(&[(
            action,
            "api_client",
            before.id.clone(),
            version,
            Some(client_json(before)),
            Some(client_json(after)),
        )])
        .await?;
        Ok(version)
    }

    pub async fn add_org_network(&mut self, organisation: &str, cidr: &str) -> Result<()> {
        let now = self.now.clone();
        sqlx::query(
            "INSERT INTO org_networks (organisation, cidr, created_at) VALUES ($1, $2, $3)",
        )
        .bind(organisation)
        .bind(cidr)
        .bind(now)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| dup(e, "cidr"))?;
        self.record_changes(&[(
            "network_add",
            "organisation",
            organisation.to_string(),
            0,
            None,
            Some(json!({"cidr": cidr})),
        )])
        .await
    }

    pub async fn remove_org_network(&mut self, organisation: &str, cidr: &str) -> Result<()> {
        let res = sqlx::query("DELETE FROM org_networks WHERE organisation = $1 AND cidr = $2")
            .bind(organisation)
            .bind(cidr)
            .execute(&mut *self.tx)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.record_changes(&[(
            "network_remove",
            "organisation",
            organisation.to_string(),
            0,
            Some(json!({"cidr": cidr})),
            None,
        )])
        .await
    }

    pub async fn insert_glass_break(&mut self, g: &GlassBreakRow) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO glass_breaks ({GLASS_COLS}) VALUES ($1,$2,$3,$4,$5,$6,$7)"
        )))
        .bind(g.id.clone())
        .bind(g.user_id.clone())
        .bind(g.person_id.clone())
        .bind(g.territory.clone())
        .bind(g.reason.clone())
        .bind(g.opened_at.clone())
        .bind(g.expires_at.clone())
        .execute(&mut *self.tx)
        .await?;
        // The ledger holds who opened which record, why and until when (DESIGN "Access").
        self.record_changes(&[(
            "break_glass",
            "person",
            g.person_id.clone(),
            0,
            None,
            Some(json!({
                "grant": g.id, "user": g.user_id, "reason": g.reason,
                "territory": g.territory, "expires_at": g.expires_at,
            })),
        )])
        .await
    }
}
