//! Administering access (seed 000 §§24–27, seed 004 §§7, 9, 14): registering users with what
//! the regulation asks of them, extending, suspending and revoking accounts, public access
//! requests, the second factor, external API clients, allowed networks, break-the-glass and
//! the list of refusals. Every use case asks the one policy function first.

use std::net::IpAddr;
use std::sync::Arc;

use kamkor_domain::identifiers::{normalize_national_id, normalize_org_inn};
use kamkor_domain::policy::{
    Action, Role, Target, decide, format_roles, format_services, parse_services,
};
use kamkor_domain::records::{self, Problems};
use kamkor_store::{
    AccessRequestRow, ApiClientRow, ChangeRow, GlassBreakRow, PersonRow, StoreError, UserRow,
    now_utc, parse_ts, ts,
};
use serde::{Deserialize, Serialize};
use time::{Date, Duration};
use uuid::Uuid;

use crate::auth::{hash_password, one_time_password, random_token, token_hash};
use crate::{App, AppError, AppResult, Ctx, actor_of};

/// What an administrator (or a requester) types about a user: seed 000 §26 — the body's name
/// and INN, its address and territorial unit, the specialist's full name, PIN and position —
/// plus roles, territorial scope and validity (§24: "на определенный срок").
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct UserForm {
    pub full_name: String,
    pub national_id: String,
    pub position: String,
    /// An agency code of the profile.
    pub organisation: String,
    pub org_inn: String,
    pub org_address: String,
    /// The territorial unit the organisation belongs to (a territory code).
    pub territorial_unit: String,
    pub roles: Vec<String>,
    /// Territorial scope (a territory code; covers its subtree).
    pub scope: String,
    pub valid_from: String,
    pub valid_until: String,
    /// Access requests only: how to reach the requester (phone or e-mail).
    pub contact: String,
}

/// A validated [`UserForm`].
#[derive(Debug, Clone)]
pub struct ValidUser {
    pub full_name: String,
    pub national_id: String,
    pub position: String,
    pub organisation: String,
    pub org_kind: String,
    pub org_inn: String,
    pub org_address: String,
    pub territorial_unit: String,
    pub roles: Vec<Role>,
    pub scope: String,
    pub valid_from: Date,
    pub valid_until: Option<Date>,
    pub contact: Option<String>,
}

/// What an administrator does to an existing account.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum AccountChange {
    /// Move the end of validity (seed 000 §24).
    Extend {
        valid_until: String,
    },
    Suspend {
        reason: String,
    },
    Reactivate,
    /// Final: a revoked account never works again.
    Revoke {
        reason: String,
    },
    /// A new one-time password (no e-mail in these deployments: the administrator hands it over).
    ResetPassword,
    /// The user lost the authenticator: they enrol again at the next login.
    ResetSecondFactor,
    /// Unlock after repeated failed logins.
    Unlock,
    /// Change the registration data, roles or scope.
    Update(Box<UserForm>),
}

impl AccountChange {
    fn code(&self) -> &'static str {
        match self {
            AccountChange::Extend { .. } => "extend",
            AccountChange::Suspend { .. } => "suspend",
            AccountChange::Reactivate => "reactivate",
            AccountChange::Revoke { .. } => "revoke",
            AccountChange::ResetPassword => "password_reset",
            AccountChange::ResetSecondFactor => "second_factor_reset",
            AccountChange::Unlock => "unlock",
            AccountChange::Update(_) => "update",
        }
    }
}

/// An account with its history, for the administrator.
#[derive(Debug, Clone)]
pub struct UserCard {
    pub user: UserRow,
    pub history: Vec<ChangeRow>,
    pub actors: std::collections::HashMap<String, String>,
    pub locked_until: Option<String>,
    pub failures: i64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct UserFilter {
    pub q: String,
    pub status: String,
    /// Page of the list, from 0 ([`USERS_PER_PAGE`] accounts each).
    pub page: usize,
}

/// Accounts shown per page of the list.
pub const USERS_PER_PAGE: usize = 50;

impl UserFilter {
    /// This filter's page of the accounts found, and whether more follow.
    pub fn page_of<'a>(&self, rows: &'a [UserRow]) -> (&'a [UserRow], bool) {
        let start = self.page.saturating_mul(USERS_PER_PAGE).min(rows.len());
        let end = start.saturating_add(USERS_PER_PAGE).min(rows.len());
        (&rows[start..end], end < rows.len())
    }
}

/// An external system as an administrator registers it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ClientForm {
    pub name: String,
    pub organisation: String,
    pub services: Vec<String>,
    pub scope: String,
    pub valid_until: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ClientChange {
    /// A new secret; the old one stops working at once.
    Rotate,
    Suspend,
    Reactivate,
    Revoke,
    Extend {
        valid_until: String,
    },
    Services {
        services: Vec<String>,
    },
}

/// A break-the-glass grant as a supervisor reviews it.
#[derive(Debug, Clone)]
pub struct GlassReview {
    pub grant: GlassBreakRow,
    pub user_name: String,
    pub person_name: String,
}

/// Prefix of API client tokens: `kkc_<client id>_<secret>`.
const CLIENT_PREFIX: &str = "kkc_";
/// Pending public requests accepted per day: the form is open to anyone.
const MAX_REQUESTS_PER_DAY: i64 = 200;
const MAX_NETWORKS: usize = 64;

fn bounded(p: &mut Problems, field: &str, value: &str, max: usize, required: bool) -> String {
    let v = value.trim();
    if required && v.is_empty() {
        p.push(field, "required");
    } else if v.chars().count() > max {
        p.push(field, "too_long");
    } else if v.chars().any(char::is_control) {
        p.push(field, "bad_text");
    }
    v.to_string()
}

/// Latin login from a Cyrillic full name: "Асанова Айгуль Бакытовна" → "asanova.a".
pub fn login_base(full_name: &str) -> String {
    let mut words = full_name.split_whitespace();
    let surname = words.next().map(transliterate).unwrap_or_default();
    let initial: String = words
        .next()
        .map(transliterate)
        .and_then(|w| w.chars().next())
        .map(String::from)
        .unwrap_or_default();
    let mut login: String = surname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(24)
        .collect();
    if !initial.is_empty() {
        login.push('.');
        login.push_str(&initial);
    }
    if login.chars().filter(|c| c.is_ascii_alphabetic()).count() < 2 {
        "user".to_string()
    } else {
        login
    }
}

fn transliterate(word: &str) -> String {
    let mut out = String::new();
    for c in word.to_lowercase().chars() {
        let t = match c {
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' => "g",
            'д' => "d",
            'е' | 'э' => "e",
            'ё' => "yo",
            'ж' => "zh",
            'з' => "z",
            'и' => "i",
            'й' => "y",
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'ң' => "ng",
            'о' => "o",
            'ө' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' => "u",
            'ү' => "u",
            'ф' => "f",
            'х' => "kh",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ы' => "y",
            'ю' => "yu",
            'я' => "ya",
            'ъ' | 'ь' => "",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => "",
        };
        out.push_str(t);
    }
    out
}

impl App {
    // ---- the policy for administration ----

    /// ManageUsers over an account whose scope is `scope`: administrators manage accounts
    /// within their own territory only.
    async fn check_manage(
        &self,
        ctx: &Ctx,
        scope: Option<&str>,
        about: (&str, &str),
    ) -> AppResult<()> {
        let target = match scope {
            Some(s) => {
                Target::in_scope(self.profile.territory_within(s, &ctx.user.scope_territory))
            }
            None => Target::default(),
        };
        self.decide_and_record(ctx, Action::ManageUsers, &target, about)
            .await
    }

    /// A new account or client must lie within the administrator's territory: a refusal
    /// (403) naming the field, recorded.
    async fn scope_for_new(&self, ctx: &Ctx, scope: &str, entity: &str) -> AppResult<()> {
        if self
            .profile
            .territory_within(scope, &ctx.user.scope_territory)
        {
            return Ok(());
        }
        self.record_denial(ctx, Action::ManageUsers, "out_of_scope", (entity, ""))
            .await;
        let mut p = Problems::default();
        p.push("scope", "out_of_scope");
        Err(AppError::Invalid(p))
    }

    // ---- validation ----

    /// Validate a user form. `for_request`: the public form (no administrator roles, and no
    /// check of the caller's scope).
    pub fn validate_user_form(
        &self,
        f: &UserForm,
        today: Date,
        for_request: bool,
    ) -> Result<ValidUser, Problems> {
        let mut p = Problems::default();
        let full_name = bounded(&mut p, "full_name", &f.full_name, 200, true);
        if !full_name.is_empty() && full_name.split_whitespace().count() < 2 {
            p.push("full_name", "full_name_incomplete");
        }
        let position = bounded(&mut p, "position", &f.position, 200, true);
        let org_address = bounded(&mut p, "org_address", &f.org_address, 300, true);
        let contact = bounded(&mut p, "contact", &f.contact, 200, false);
        let national_id = if f.national_id.trim().is_empty() {
            p.push("national_id", "required");
            String::new()
        } else {
            match normalize_national_id(
                self.profile.national_id_kind(),
                &f.national_id,
                None,
                None,
                today,
            ) {
                Ok(v) => v,
                Err(e) => {
                    p.push("national_id", e.code());
                    String::new()
                }
            }
        };
        let organisation = f.organisation.trim().to_string();
        let mut org_kind = String::new();
        let mut agency_inn = None;
        if organisation.is_empty() {
            p.push("organisation", "required");
        } else {
            match self.profile.agency(&organisation) {
                Some(a) => {
                    org_kind = a.kind.clone();
                    agency_inn = a.inn.clone();
                }
                None => p.push("organisation", "unknown_code"),
            }
        }
        let org_inn = if f.org_inn.trim().is_empty() {
            p.push("org_inn", "required");
            String::new()
        } else {
            match normalize_org_inn(self.profile.org_inn_kind(), &f.org_inn) {
                Ok(v) => {
                    // The profile knows some agencies' INN: a mismatch is a typo or a wrong body.
                    if agency_inn.as_deref().is_some_and(|known| known != v) {
                        p.push("org_inn", "inn_mismatch");
                    }
                    v
                }
                Err(e) => {
                    // The identifier errors speak of a person's PIN; an INN has its own texts.
                    p.push("org_inn", e.code().replacen("id_", "inn_", 1));
                    String::new()
                }
            }
        };
        let territorial_unit = f.territorial_unit.trim().to_string();
        if territorial_unit.is_empty() {
            p.push("territorial_unit", "required");
        } else if self.profile.territory(&territorial_unit).is_none() {
            p.push("territorial_unit", "unknown_territory");
        }
        let mut roles = Vec::new();
        for r in &f.roles {
            match Role::parse(r.trim()) {
                Some(role) if !roles.contains(&role) => roles.push(role),
                Some(_) => {}
                None => p.push("roles", "unknown_code"),
            }
        }
        if roles.is_empty() {
            p.push("roles", "required");
        }
        if for_request
            && roles
                .iter()
                .any(|r| matches!(r, Role::Administrator | Role::Operator))
        {
            p.push("roles", "role_not_requestable");
        }
        if roles.contains(&Role::AgencySpecialist)
            && org_kind.is_empty()
            && !organisation.is_empty()
        {
            p.push("roles", "unknown_code");
        }
        let scope = f.scope.trim().to_string();
        if scope.is_empty() {
            p.push("scope", "required");
        } else if self.profile.territory(&scope).is_none() {
            p.push("scope", "unknown_territory");
        }
        let valid_from = if f.valid_from.trim().is_empty() {
            today
        } else {
            match records::parse_date(&f.valid_from) {
                Some(d) => d,
                None => {
                    p.push("valid_from", "bad_date");
                    today
                }
            }
        };
        // Seed 000 §24: logins are issued for a definite term.
        let valid_until = if f.valid_until.trim().is_empty() {
            p.push("valid_until", "required");
            None
        } else {
            match records::parse_date(&f.valid_until) {
                Some(d) if d < today => {
                    p.push("valid_until", "date_in_past");
                    None
                }
                Some(d) if d < valid_from => {
                    p.push("valid_until", "before_valid_from");
                    None
                }
                Some(d) if d > today + Duration::days(5 * 366) => {
                    p.push("valid_until", "validity_too_long");
                    None
                }
                Some(d) => Some(d),
                None => {
                    p.push("valid_until", "bad_date");
                    None
                }
            }
        };
        if !p.is_empty() {
            return Err(p);
        }
        Ok(ValidUser {
            full_name,
            national_id,
            position,
            organisation,
            org_kind,
            org_inn,
            org_address,
            territorial_unit,
            roles,
            scope,
            valid_from,
            valid_until,
            contact: (!contact.is_empty()).then_some(contact),
        })
    }

    async fn free_login(&self, full_name: &str) -> AppResult<String> {
        let base = login_base(full_name);
        for n in 1..1000 {
            let candidate = if n == 1 {
                base.clone()
            } else {
                format!("{base}{n}")
            };
            if self.store.user_by_login(&candidate).await?.is_none() {
                return Ok(candidate);
            }
        }
        Ok(format!(
            "{base}.{}",
            &Uuid::now_v7().simple().to_string()[24..]
        ))
    }

    fn user_row(&self, v: &ValidUser, login: String, password: &str) -> AppResult<UserRow> {
        Ok(UserRow {
            id: Uuid::now_v7().to_string(),
            version: 1,
            login,
            password_hash: hash_password(password)?,
            full_name: v.full_name.clone(),
            role: format_roles(&v.roles),
            organisation: v.organisation.clone(),
            org_kind: v.org_kind.clone(),
            scope_territory: v.scope.clone(),
            valid_from: records::format_date(v.valid_from),
            valid_until: v.valid_until.map(records::format_date),
            active: true,
            must_change_password: true,
            created_at: ts(now_utc()),
            status: "active".into(),
            status_reason: None,
            org_inn: Some(v.org_inn.clone()),
            org_address: Some(v.org_address.clone()),
            territorial_unit: Some(v.territorial_unit.clone()),
            national_id: Some(v.national_id.clone()),
            position: Some(v.position.clone()),
            totp_secret: None,
            totp_last_step: None,
        })
    }

    // ---- users ----

    /// Register a user (seed 000 §§24, 26–27): the login is generated, the one-time password
    /// is returned to be shown once; access works at once.
    pub async fn register_user(&self, ctx: &Ctx, f: &UserForm) -> AppResult<(UserRow, String)> {
        self.check_manage(ctx, None, ("user", "")).await?;
        let v = self.validate_user_form(f, ctx.today(), false)?;
        self.scope_for_new(ctx, &v.scope, "user").await?;
        let password = one_time_password()?;
        let login = self.free_login(&v.full_name).await?;
        let row = self.user_row(&v, login, &password)?;
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.insert_user(&row).await?;
        tx.commit().await?;
        Ok((row, password))
    }

    /// Accounts within the administrator's territory.
    pub async fn list_users(&self, ctx: &Ctx, filter: &UserFilter) -> AppResult<Vec<UserRow>> {
        self.check_manage(ctx, None, ("user", "")).await?;
        let q = records::normalize_for_search(&filter.q);
        let today = ctx.today();
        Ok(self
            .store
            .users()
            .await?
            .into_iter()
            .filter(|u| {
                self.profile
                    .territory_within(&u.scope_territory, &ctx.user.scope_territory)
            })
            .filter(|u| {
                q.is_empty()
                    || records::normalize_for_search(&u.full_name).contains(&q)
                    || u.login.contains(&q)
            })
            .filter(|u| filter.status.is_empty() || account_state(u, today) == filter.status)
            .collect())
    }

    pub async fn user_card(&self, ctx: &Ctx, id: &str) -> AppResult<UserCard> {
        self.check_manage(ctx, None, ("user", id)).await?;
        let Some(user) = self.store.user(id).await? else {
            return Err(self.missing(ctx, Action::ManageUsers, ("user", id)).await);
        };
        self.check_manage(ctx, Some(&user.scope_territory), ("user", id))
            .await?;
        let history = match Uuid::parse_str(id) {
            Ok(uid) => self.store.changes_for("user", uid).await?,
            Err(_) => Vec::new(),
        };
        let actors = self.actor_names(&history).await?;
        let (failures, locked_until) = self.store.login_failures(id).await?;
        Ok(UserCard {
            user,
            history,
            actors,
            locked_until,
            failures,
        })
    }

    /// Change an account. Returns a new one-time password for [`AccountChange::ResetPassword`].
    /// Suspending, revoking, resetting credentials or narrowing access ends the user's
    /// sessions at once.
    pub async fn change_account(
        &self,
        ctx: &Ctx,
        id: &str,
        version: i64,
        change: &AccountChange,
    ) -> AppResult<Option<String>> {
        self.check_manage(ctx, None, ("user", id)).await?;
        let Some(before) = self.store.user(id).await? else {
            return Err(self.missing(ctx, Action::ManageUsers, ("user", id)).await);
        };
        self.check_manage(ctx, Some(&before.scope_territory), ("user", id))
            .await?;
        if before.version != version {
            return Err(AppError::Conflict {
                current: before.version,
                changes: Vec::new(),
            });
        }
        let mut p = Problems::default();
        let own = before.id == ctx.user.id;
        if before.status == "revoked" && !matches!(change, AccountChange::Unlock) {
            p.push("status", "account_revoked");
            return Err(AppError::Invalid(p));
        }
        let mut after = before.clone();
        let mut password = None;
        let mut end_sessions = false;
        match change {
            AccountChange::Extend { valid_until } => match records::parse_date(valid_until) {
                Some(d) if d < ctx.today() => p.push("valid_until", "date_in_past"),
                Some(d) if records::parse_date(&before.valid_from).is_some_and(|f| d < f) => {
                    p.push("valid_until", "before_valid_from")
                }
                Some(d) if d > ctx.today() + Duration::days(5 * 366) => {
                    p.push("valid_until", "validity_too_long")
                }
                Some(d) => after.valid_until = Some(records::format_date(d)),
                None if valid_until.trim().is_empty() => p.push("valid_until", "required"),
                None => p.push("valid_until", "bad_date"),
            },
            AccountChange::Suspend { reason } | AccountChange::Revoke { reason } => {
                let reason = bounded(&mut p, "reason", reason, 500, true);
                if own {
                    p.push("status", "own_account");
                }
                after.status = if matches!(change, AccountChange::Suspend { .. }) {
                    "suspended".into()
                } else {
                    "revoked".into()
                };
                after.status_reason = Some(reason);
                end_sessions = true;
            }
            AccountChange::Reactivate => {
                if before.status != "suspended" {
                    p.push("status", "not_suspended");
                }
                after.status = "active".into();
                after.status_reason = None;
            }
            AccountChange::ResetPassword => {
                let pw = one_time_password()?;
                after.password_hash = hash_password(&pw)?;
                after.must_change_password = true;
                password = Some(pw);
                end_sessions = true;
            }
            AccountChange::ResetSecondFactor => {
                after.totp_secret = None;
                after.totp_last_step = None;
                end_sessions = true;
            }
            AccountChange::Unlock => {}
            AccountChange::Update(f) => match self.validate_user_form(f, ctx.today(), false) {
                Ok(v) => {
                    if own && format_roles(&v.roles) != before.role {
                        p.push("roles", "own_account");
                    }
                    if !self
                        .profile
                        .territory_within(&v.scope, &ctx.user.scope_territory)
                    {
                        self.record_denial(ctx, Action::ManageUsers, "out_of_scope", ("user", id))
                            .await;
                        p.push("scope", "out_of_scope");
                    }
                    end_sessions = v.scope != before.scope_territory
                        || format_roles(&v.roles) != before.role
                        || v.organisation != before.organisation;
                    after.full_name = v.full_name;
                    after.national_id = Some(v.national_id);
                    after.position = Some(v.position);
                    after.organisation = v.organisation;
                    after.org_kind = v.org_kind;
                    after.org_inn = Some(v.org_inn);
                    after.org_address = Some(v.org_address);
                    after.territorial_unit = Some(v.territorial_unit);
                    after.role = format_roles(&v.roles);
                    after.scope_territory = v.scope;
                    after.valid_from = records::format_date(v.valid_from);
                    after.valid_until = v.valid_until.map(records::format_date);
                }
                Err(problems) => p = problems,
            },
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        if matches!(change, AccountChange::Unlock) {
            self.store.clear_login_failures(id).await?;
            let mut tx = self
                .store
                .begin(&ctx.user.id, ctx.request_id.as_deref())
                .await?;
            tx.record_event("unlock", "user", id, None).await?;
            tx.commit().await?;
            return Ok(None);
        }
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        match tx.update_user(&before, &after, change.code()).await {
            Ok(_) => tx.commit().await?,
            Err(StoreError::Conflict { .. }) => {
                return Err(AppError::Conflict {
                    current: before.version + 1,
                    changes: Vec::new(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        if end_sessions {
            self.store
                .end_user_sessions(id, None, &ts(now_utc()))
                .await?;
        }
        Ok(password)
    }

    // ---- access requests ----

    /// The public "request access" form (seed 000 §26): the same data, for an administrator
    /// to approve or reject. Nothing is granted until then.
    pub async fn submit_access_request(&self, f: &UserForm) -> AppResult<String> {
        let today = now_utc().date();
        let v = self.validate_user_form(f, today, true)?;
        let since = ts(now_utc() - Duration::days(1));
        if self.store.count_pending_requests(&since).await? >= MAX_REQUESTS_PER_DAY {
            let mut p = Problems::default();
            p.push("full_name", "too_many_requests");
            return Err(AppError::Invalid(p));
        }
        let row = AccessRequestRow {
            id: Uuid::now_v7().to_string(),
            version: 1,
            status: "pending".into(),
            full_name: v.full_name,
            national_id: v.national_id,
            position: v.position,
            organisation: v.organisation,
            org_inn: v.org_inn,
            org_address: v.org_address,
            territorial_unit: v.territorial_unit,
            roles: format_roles(&v.roles),
            scope_territory: v.scope,
            valid_until: v.valid_until.map(records::format_date),
            contact: v.contact,
            created_at: ts(now_utc()),
            ..AccessRequestRow::default()
        };
        let mut tx = self.store.begin("public", None).await?;
        tx.insert_access_request(&row).await?;
        tx.commit().await?;
        Ok(row.id)
    }

    /// Requests the administrator may decide (within their territory), newest first.
    pub async fn access_requests(
        &self,
        ctx: &Ctx,
        status: &str,
    ) -> AppResult<Vec<AccessRequestRow>> {
        self.check_manage(ctx, None, ("access_request", "")).await?;
        let status = (!status.is_empty()).then_some(status);
        Ok(self
            .store
            .access_requests(status, 500)
            .await?
            .into_iter()
            .filter(|r| {
                self.profile
                    .territory_within(&r.scope_territory, &ctx.user.scope_territory)
            })
            .collect())
    }

    pub async fn access_request(&self, ctx: &Ctx, id: &str) -> AppResult<AccessRequestRow> {
        self.check_manage(ctx, None, ("access_request", id)).await?;
        let Some(r) = self.store.access_request(id).await? else {
            return Err(self
                .missing(ctx, Action::ManageUsers, ("access_request", id))
                .await);
        };
        self.check_manage(ctx, Some(&r.scope_territory), ("access_request", id))
            .await?;
        Ok(r)
    }

    /// Approve: the account is created from the request (validated again) and the one-time
    /// password returned to be handed over.
    pub async fn approve_access_request(
        &self,
        ctx: &Ctx,
        id: &str,
        version: i64,
    ) -> AppResult<(UserRow, String)> {
        let r = self.access_request(ctx, id).await?;
        if r.status != "pending" || r.version != version {
            return Err(AppError::Conflict {
                current: r.version,
                changes: Vec::new(),
            });
        }
        let form = UserForm {
            full_name: r.full_name.clone(),
            national_id: r.national_id.clone(),
            position: r.position.clone(),
            organisation: r.organisation.clone(),
            org_inn: r.org_inn.clone(),
            org_address: r.org_address.clone(),
            territorial_unit: r.territorial_unit.clone(),
            roles: kamkor_domain::policy::parse_roles(&r.roles)
                .into_iter()
                .map(|x| x.code().to_string())
                .collect(),
            scope: r.scope_territory.clone(),
            valid_from: String::new(),
            valid_until: r.valid_until.clone().unwrap_or_default(),
            contact: String::new(),
        };
        let v = self.validate_user_form(&form, ctx.today(), false)?;
        let password = one_time_password()?;
        let login = self.free_login(&v.full_name).await?;
        let user = self.user_row(&v, login, &password)?;
        let decided = AccessRequestRow {
            status: "approved".into(),
            decided_at: Some(ts(now_utc())),
            decided_by: Some(ctx.user.id.clone()),
            user_id: Some(user.id.clone()),
            ..r.clone()
        };
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.insert_user(&user).await?;
        tx.decide_access_request(&r, &decided).await?;
        tx.commit().await?;
        Ok((user, password))
    }

    pub async fn reject_access_request(
        &self,
        ctx: &Ctx,
        id: &str,
        version: i64,
        note: &str,
    ) -> AppResult<()> {
        let r = self.access_request(ctx, id).await?;
        if r.status != "pending" || r.version != version {
            return Err(AppError::Conflict {
                current: r.version,
                changes: Vec::new(),
            });
        }
        let mut p = Problems::default();
        let note = bounded(&mut p, "note", note, 500, true);
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        let decided = AccessRequestRow {
            status: "rejected".into(),
            decided_at: Some(ts(now_utc())),
            decided_by: Some(ctx.user.id.clone()),
            decision_note: Some(note),
            ..r.clone()
        };
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.decide_access_request(&r, &decided).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- second factor ----

    /// Administrators and operators must have a second factor (the accounts issue, item 3).
    pub fn second_factor_required(&self, user: &UserRow) -> bool {
        user.totp_secret.is_none()
            && kamkor_domain::policy::parse_roles(&user.role)
                .iter()
                .any(|r| matches!(r, Role::Administrator | Role::Operator))
    }

    /// Enrol a second factor: the secret shown at enrolment and a code from the app made with
    /// it. The secret is kept only once a code proves the app has it.
    pub async fn enrol_second_factor(&self, ctx: &Ctx, secret: &str, code: &str) -> AppResult<()> {
        let mut p = Problems::default();
        let secret = secret.trim();
        if secret.len() != 32
            || data_encoding::BASE32_NOPAD
                .decode(secret.as_bytes())
                .is_err()
        {
            p.push("secret", "bad_secret");
            return Err(AppError::Invalid(p));
        }
        let Some(step) = crate::totp::matching_step(secret, code, ctx.now) else {
            p.push("code", "second_factor_wrong");
            return Err(AppError::Invalid(p));
        };
        let before = self
            .store
            .user(&ctx.user.id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let after = UserRow {
            totp_secret: Some(secret.to_string()),
            totp_last_step: Some(step),
            ..before.clone()
        };
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.update_user(&before, &after, "second_factor_enrol")
            .await?;
        tx.commit().await?;
        // Sessions opened with the password alone end; this one stays.
        self.store
            .end_user_sessions(&ctx.user.id, ctx.session_hash.as_deref(), &ts(now_utc()))
            .await?;
        Ok(())
    }

    /// Turn one's own optional second factor off (not for roles that require it).
    pub async fn disable_second_factor(&self, ctx: &Ctx, code: &str) -> AppResult<()> {
        let before = self
            .store
            .user(&ctx.user.id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let mut p = Problems::default();
        let Some(secret) = before.totp_secret.clone() else {
            return Ok(());
        };
        let probe = UserRow {
            totp_secret: None,
            ..before.clone()
        };
        if self.second_factor_required(&probe) {
            p.push("code", "second_factor_mandatory");
            return Err(AppError::Invalid(p));
        }
        if crate::totp::matching_step(&secret, code, ctx.now).is_none() {
            p.push("code", "second_factor_wrong");
            return Err(AppError::Invalid(p));
        }
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.update_user(&before, &probe, "second_factor_disable")
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- external API clients ----

    fn validate_services(&self, p: &mut Problems, services: &[String]) -> Vec<Action> {
        let mut out = Vec::new();
        for s in services {
            match Action::parse_service(s.trim()) {
                Some(a) if !out.contains(&a) => out.push(a),
                Some(_) => {}
                None => p.push("services", "unknown_code"),
            }
        }
        if out.is_empty() {
            p.push("services", "required");
        }
        out
    }

    /// Register an external system (seed 000 §13.8, seed 004 §14). The token is returned
    /// once; only its hash is kept.
    pub async fn register_client(
        &self,
        ctx: &Ctx,
        f: &ClientForm,
    ) -> AppResult<(ApiClientRow, String)> {
        self.check_manage(ctx, None, ("api_client", "")).await?;
        let mut p = Problems::default();
        let name = bounded(&mut p, "name", &f.name, 100, true);
        if !name.is_empty()
            && !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            p.push("name", "bad_client_name");
        }
        let org_kind = match self.profile.agency(f.organisation.trim()) {
            Some(a) => a.kind.clone(),
            None if f.organisation.trim().is_empty() => {
                p.push("organisation", "required");
                String::new()
            }
            None => {
                p.push("organisation", "unknown_code");
                String::new()
            }
        };
        let services = self.validate_services(&mut p, &f.services);
        let scope = f.scope.trim().to_string();
        if self.profile.territory(&scope).is_none() {
            p.push(
                "scope",
                if scope.is_empty() {
                    "required"
                } else {
                    "unknown_territory"
                },
            );
        }
        let valid_until = match records::parse_date(&f.valid_until) {
            Some(d) if d < ctx.today() => {
                p.push("valid_until", "date_in_past");
                None
            }
            Some(d) => Some(d),
            None if f.valid_until.trim().is_empty() => {
                p.push("valid_until", "required");
                None
            }
            None => {
                p.push("valid_until", "bad_date");
                None
            }
        };
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        self.check_manage(ctx, Some(&scope), ("api_client", ""))
            .await?;
        let id = Uuid::now_v7();
        let secret = random_token()?;
        let token = format!("{CLIENT_PREFIX}{}_{secret}", id.simple());
        let row = ApiClientRow {
            id: id.to_string(),
            version: 1,
            name,
            secret_hash: token_hash(&secret),
            services: format_services(&services),
            organisation: f.organisation.trim().to_string(),
            org_kind,
            scope_territory: scope,
            valid_from: records::format_date(ctx.today()),
            valid_until: valid_until.map(records::format_date),
            status: "active".into(),
            created_at: ts(now_utc()),
            rotated_at: None,
        };
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.insert_api_client(&row).await.map_err(|e| match e {
            StoreError::Duplicate(_) => {
                let mut p = Problems::default();
                p.push("name", "name_taken");
                AppError::Invalid(p)
            }
            e => e.into(),
        })?;
        tx.commit().await?;
        Ok((row, token))
    }

    pub async fn api_clients(&self, ctx: &Ctx) -> AppResult<Vec<ApiClientRow>> {
        self.check_manage(ctx, None, ("api_client", "")).await?;
        Ok(self
            .store
            .api_clients()
            .await?
            .into_iter()
            .filter(|c| {
                self.profile
                    .territory_within(&c.scope_territory, &ctx.user.scope_territory)
            })
            .collect())
    }

    pub async fn api_client(
        &self,
        ctx: &Ctx,
        id: &str,
    ) -> AppResult<(ApiClientRow, Vec<ChangeRow>)> {
        // Roles asked before the lookup: existing and missing ids answer alike.
        self.check_manage(ctx, None, ("api_client", id)).await?;
        let Some(c) = self.store.api_client(id).await? else {
            return Err(self
                .missing(ctx, Action::ManageUsers, ("api_client", id))
                .await);
        };
        self.check_manage(ctx, Some(&c.scope_territory), ("api_client", id))
            .await?;
        let history = match Uuid::parse_str(id) {
            Ok(u) => self.store.changes_for("api_client", u).await?,
            Err(_) => Vec::new(),
        };
        Ok((c, history))
    }

    /// Change a client; returns the new token after [`ClientChange::Rotate`].
    pub async fn change_client(
        &self,
        ctx: &Ctx,
        id: &str,
        version: i64,
        change: &ClientChange,
    ) -> AppResult<Option<String>> {
        let (before, _) = self.api_client(ctx, id).await?;
        if before.version != version {
            return Err(AppError::Conflict {
                current: before.version,
                changes: Vec::new(),
            });
        }
        let mut p = Problems::default();
        if before.status == "revoked" {
            p.push("status", "account_revoked");
            return Err(AppError::Invalid(p));
        }
        let mut after = before.clone();
        let mut token = None;
        let action = match change {
            ClientChange::Rotate => {
                let secret = random_token()?;
                let id = Uuid::parse_str(&before.id).map_err(|_| AppError::NotFound)?;
                token = Some(format!("{CLIENT_PREFIX}{}_{secret}", id.simple()));
                after.secret_hash = token_hash(&secret);
                after.rotated_at = Some(ts(now_utc()));
                "rotate"
            }
            ClientChange::Suspend => {
                after.status = "suspended".into();
                "suspend"
            }
            ClientChange::Reactivate => {
                if before.status != "suspended" {
                    p.push("status", "not_suspended");
                }
                after.status = "active".into();
                "reactivate"
            }
            ClientChange::Revoke => {
                after.status = "revoked".into();
                "revoke"
            }
            ClientChange::Extend { valid_until } => {
                match records::parse_date(valid_until) {
                    Some(d) if d < ctx.today() => p.push("valid_until", "date_in_past"),
                    Some(d) => after.valid_until = Some(records::format_date(d)),
                    None => p.push("valid_until", "bad_date"),
                }
                "extend"
            }
            ClientChange::Services { services } => {
                after.services = format_services(&self.validate_services(&mut p, services));
                "services"
            }
        };
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.update_api_client(&before, &after, action).await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The context of an external system's call, from its bearer token. Unknown, wrong,
    /// suspended, revoked and expired all answer "not logged in".
    pub async fn client_ctx(
        &self,
        token: &str,
        request_id: Option<String>,
        ip: Option<IpAddr>,
    ) -> AppResult<Ctx> {
        let rest = token
            .strip_prefix(CLIENT_PREFIX)
            .ok_or(AppError::Unauthenticated)?;
        let (id, secret) = rest.split_once('_').ok_or(AppError::Unauthenticated)?;
        let id = Uuid::parse_str(id).map_err(|_| AppError::Unauthenticated)?;
        let c = self
            .store
            .api_client(&id.to_string())
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if !crate::auth::constant_time_eq(&token_hash(secret), &c.secret_hash) {
            return Err(AppError::Unauthenticated);
        }
        let user = UserRow {
            id: format!("client:{}", c.id),
            version: c.version,
            login: c.name.clone(),
            full_name: c.name.clone(),
            organisation: c.organisation.clone(),
            org_kind: c.org_kind.clone(),
            scope_territory: c.scope_territory.clone(),
            valid_from: c.valid_from.clone(),
            valid_until: c.valid_until.clone(),
            active: c.status == "active",
            status: c.status.clone(),
            created_at: c.created_at.clone(),
            ..UserRow::default()
        };
        let mut actor = actor_of(&user);
        actor.services = Some(parse_services(&c.services));
        actor.network_allowed = self.network_allowed(&c.organisation, ip).await?;
        if crate::account_lapsed(&actor, now_utc().date()) {
            return Err(AppError::Unauthenticated);
        }
        Ok(Ctx {
            user,
            actor,
            request_id,
            now: now_utc(),
            session_hash: None,
            client_ip: ip,
        })
    }

    // ---- networks ----

    async fn network_list(&self) -> AppResult<Arc<Vec<(String, ipnet::IpNet)>>> {
        if let Ok(guard) = self.networks.read()
            && let Some(list) = guard.as_ref()
        {
            return Ok(list.clone());
        }
        let list: Vec<(String, ipnet::IpNet)> = self
            .store
            .org_networks()
            .await?
            .into_iter()
            .filter_map(|(org, cidr)| cidr.parse().ok().map(|n| (org, n)))
            .collect();
        let list = Arc::new(list);
        if let Ok(mut guard) = self.networks.write() {
            *guard = Some(list.clone());
        }
        Ok(list)
    }

    /// Whether a request from `ip` is allowed for the organisation (seed 004 §9). An
    /// organisation without networks is reachable from anywhere; with some, an unknown
    /// address is refused.
    pub async fn network_allowed(&self, organisation: &str, ip: Option<IpAddr>) -> AppResult<bool> {
        let list = self.network_list().await?;
        let mut nets = list.iter().filter(|(o, _)| o == organisation).peekable();
        if nets.peek().is_none() {
            return Ok(true);
        }
        let Some(ip) = ip else { return Ok(false) };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        Ok(nets.any(|(_, n)| n.contains(&ip)))
    }

    pub async fn networks(&self, ctx: &Ctx) -> AppResult<Vec<(String, String)>> {
        self.check_manage(ctx, None, ("organisation", "")).await?;
        Ok(self.store.org_networks().await?)
    }

    pub async fn add_network(
        &self,
        ctx: &Ctx,
        organisation: &str,
        cidr: &str,
    ) -> AppResult<String> {
        let mut p = Problems::default();
        let agency = self.profile.agency(organisation.trim());
        if agency.is_none() {
            p.push(
                "organisation",
                if organisation.trim().is_empty() {
                    "required"
                } else {
                    "unknown_code"
                },
            );
        }
        let net: Option<ipnet::IpNet> = match cidr.trim().parse::<ipnet::IpNet>() {
            Ok(n) => Some(n.trunc()),
            Err(_) => match cidr.trim().parse::<IpAddr>() {
                Ok(ip) => Some(ipnet::IpNet::from(ip)),
                Err(_) => {
                    p.push("cidr", "bad_cidr");
                    None
                }
            },
        };
        if !p.is_empty() {
            self.check_manage(ctx, None, ("organisation", organisation))
                .await?;
            return Err(AppError::Invalid(p));
        }
        let (Some(agency), Some(net)) = (agency, net) else {
            return Err(AppError::Invalid(p));
        };
        self.check_manage(ctx, Some(&agency.territory), ("organisation", &agency.code))
            .await?;
        let existing = self.store.org_networks().await?;
        if existing.iter().filter(|(o, _)| o == &agency.code).count() >= MAX_NETWORKS {
            p.push("cidr", "too_many");
            return Err(AppError::Invalid(p));
        }
        // An administrator does not lock their own organisation out from where they sit.
        if agency.code == ctx.user.organisation
            && !ctx.client_ip.is_some_and(|ip| {
                net.contains(&ip)
                    || existing
                        .iter()
                        .filter(|(o, _)| o == &agency.code)
                        .filter_map(|(_, c)| c.parse::<ipnet::IpNet>().ok())
                        .any(|n| n.contains(&ip))
            })
        {
            p.push("cidr", "cidr_excludes_you");
            return Err(AppError::Invalid(p));
        }
        let text = net.to_string();
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.add_org_network(&agency.code, &text)
            .await
            .map_err(|e| match e {
                StoreError::Duplicate(_) => {
                    let mut p = Problems::default();
                    p.push("cidr", "cidr_exists");
                    AppError::Invalid(p)
                }
                e => e.into(),
            })?;
        tx.commit().await?;
        self.forget_networks();
        Ok(text)
    }

    pub async fn remove_network(&self, ctx: &Ctx, organisation: &str, cidr: &str) -> AppResult<()> {
        let Some(agency) = self.profile.agency(organisation) else {
            return Err(self
                .missing(ctx, Action::ManageUsers, ("organisation", organisation))
                .await);
        };
        self.check_manage(ctx, Some(&agency.territory), ("organisation", &agency.code))
            .await?;
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.remove_org_network(&agency.code, cidr).await?;
        tx.commit().await?;
        self.forget_networks();
        Ok(())
    }

    fn forget_networks(&self) {
        if let Ok(mut guard) = self.networks.write() {
            *guard = None;
        }
    }

    // ---- break the glass ----

    /// The user's open grant for this person, if any.
    pub(crate) async fn glass_for(
        &self,
        ctx: &Ctx,
        person: &PersonRow,
    ) -> AppResult<Option<GlassBreakRow>> {
        if ctx.actor.is_client() {
            return Ok(None);
        }
        Ok(self
            .store
            .open_glass(&ctx.user.id, &person.id.to_string(), &ts(ctx.now))
            .await?)
    }

    /// A person outside the user's scope with exactly this national identifier, when the user
    /// may break the glass (so the search page can offer it). None otherwise.
    pub async fn glass_candidate(
        &self,
        ctx: &Ctx,
        national_id: &str,
    ) -> AppResult<Option<uuid::Uuid>> {
        if decide(
            &ctx.actor,
            Action::BreakGlass,
            &Target::in_scope(false),
            ctx.now,
        ) != kamkor_domain::policy::Decision::Allow
        {
            return Ok(None);
        }
        let Ok(nid) = normalize_national_id(
            self.profile.national_id_kind(),
            national_id,
            None,
            None,
            ctx.today(),
        ) else {
            return Ok(None);
        };
        let found = self.nid_matches(ctx, &nid, "search").await?;
        Ok(found
            .into_iter()
            .find(|p| !self.within_scope(ctx, p.data.residence_territory.as_deref()))
            .map(|p| p.id))
    }

    /// Break the glass: by exact national identifier and with a reason, open one record
    /// outside the scope, read-only, for the profile's number of hours. The ledger holds it;
    /// the supervisors of the record's territory see it.
    pub async fn break_glass(
        &self,
        ctx: &Ctx,
        national_id: &str,
        reason: &str,
    ) -> AppResult<GlassBreakRow> {
        let mut p = Problems::default();
        let reason = bounded(&mut p, "reason", reason, 500, true);
        if !reason.is_empty() && reason.chars().count() < 10 {
            p.push("reason", "reason_too_short");
        }
        let nid = match normalize_national_id(
            self.profile.national_id_kind(),
            national_id,
            None,
            None,
            ctx.today(),
        ) {
            Ok(n) => Some(n),
            Err(e) => {
                p.push("national_id", e.code());
                None
            }
        };
        self.decide_and_record(
            ctx,
            Action::BreakGlass,
            &Target::in_scope(false),
            ("person", ""),
        )
        .await?;
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        let nid = nid.unwrap_or_default();
        let person = self
            .store
            .persons_by_national_id(&nid)
            .await?
            .into_iter()
            .next();
        let Some(person) = person else {
            return Err(self.missing(ctx, Action::BreakGlass, ("person", "")).await);
        };
        let now = ctx.now;
        let grant = GlassBreakRow {
            id: Uuid::now_v7().to_string(),
            user_id: ctx.user.id.clone(),
            person_id: person.id.to_string(),
            territory: person.data.residence_territory.clone(),
            reason,
            opened_at: ts(now),
            expires_at: ts(now + Duration::hours(i64::from(self.profile.meta.break_glass_hours))),
        };
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.insert_glass_break(&grant).await?;
        tx.commit().await?;
        Ok(grant)
    }

    /// Grants of the last 30 days on records in the caller's territory (supervisors) or over
    /// all accounts they administer (administrators).
    pub async fn glass_reviews(&self, ctx: &Ctx) -> AppResult<Vec<GlassReview>> {
        let roles = &ctx.actor.roles;
        if !roles
            .iter()
            .any(|r| matches!(r, Role::Supervisor | Role::Administrator))
        {
            self.record_denial(ctx, Action::ReadLedger, "role_forbids", ("break_glass", ""))
                .await;
            return Err(AppError::Forbidden(
                kamkor_domain::policy::DenyReason::RoleForbids,
            ));
        }
        let since = ts(ctx.now - Duration::days(30));
        let grants: Vec<GlassBreakRow> = self
            .store
            .glass_breaks_since(&since, 200)
            .await?
            .into_iter()
            .filter(|g| match &g.territory {
                Some(t) => self.profile.territory_within(t, &ctx.user.scope_territory),
                None => self.scope_territories(&ctx.user.scope_territory).is_none(),
            })
            .collect();
        let ids: Vec<String> = grants.iter().map(|g| g.user_id.clone()).collect();
        let users = self.store.users_by_ids(&ids).await?;
        let mut out = Vec::new();
        for g in grants {
            let user_name = users
                .iter()
                .find(|u| u.id == g.user_id)
                .map(|u| u.full_name.clone())
                .unwrap_or_default();
            let person_name = match Uuid::parse_str(&g.person_id) {
                Ok(id) => self
                    .store
                    .person(id)
                    .await?
                    .map(|p| p.data.full_name())
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            out.push(GlassReview {
                grant: g,
                user_name,
                person_name,
            });
        }
        Ok(out)
    }

    // ---- refusals ----

    /// The newest refusals (every 403 and every out-of-scope or missing record asked for).
    pub async fn denials(&self, ctx: &Ctx, limit: i64) -> AppResult<Vec<ChangeRow>> {
        let t = Target::default();
        let admin = decide(&ctx.actor, Action::ManageUsers, &t, ctx.now)
            == kamkor_domain::policy::Decision::Allow;
        if !admin {
            self.decide_and_record(ctx, Action::ReadLedger, &t, ("denial", ""))
                .await?;
        }
        Ok(self
            .store
            .changes_by_action("denied", limit.clamp(1, 1000))
            .await?)
    }
}

/// What an account's state is today: active, suspended, revoked, expired or not yet valid.
pub fn account_state(u: &UserRow, today: Date) -> &'static str {
    match u.status.as_str() {
        "suspended" => "suspended",
        "revoked" => "revoked",
        _ => {
            if records::parse_date(&u.valid_from).is_some_and(|f| today < f) {
                "not_yet_valid"
            } else if u
                .valid_until
                .as_deref()
                .and_then(records::parse_date)
                .is_some_and(|d| today > d)
            {
                "expired"
            } else {
                "active"
            }
        }
    }
}

/// When a grant ends, for display.
pub fn grant_open(g: &GlassBreakRow, now: time::OffsetDateTime) -> bool {
    parse_ts(&g.expires_at).is_some_and(|e| e > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_from_cyrillic_names() {
        assert_eq!(login_base("Асанова Айгуль Бакытовна"), "asanova.a");
        assert_eq!(login_base("Үсөнов Ңурлан"), "usonov.n");
        assert_eq!(login_base("Щукина Юлия"), "shchukina.y");
        assert_eq!(login_base("  "), "user");
        assert_eq!(login_base("Ли"), "li");
        assert_eq!(login_base("<script> x"), "script.x");
    }
}
