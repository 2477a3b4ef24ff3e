//! Authentication: argon2id passwords, random session tokens stored only as hashes, users
//! created with a validity period (seed 000 §24: "логин и пароль на определенный срок").

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use kamkor_domain::policy::Role;
use kamkor_domain::records::{self, Problems};
use kamkor_store::{SessionRow, StoreError, UserRow, now_utc, ts};
use sha2::{Digest, Sha256};
use time::Date;
use uuid::Uuid;

use crate::{App, AppError, AppResult, Ctx};

fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// 32 random bytes, hex.
pub fn random_token() -> Result<String, AppError> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| AppError::Config(format!("no randomness: {e}")))?;
    Ok(hex(&buf))
}

/// Sessions are stored by the SHA-256 of their token: a leaked sessions table opens nothing.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn hash_password(password: &str) -> Result<String, AppError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::Config(format!("password hashing failed: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A one-time password people can type: 4 groups of 4 from an unambiguous alphabet.
pub fn one_time_password() -> Result<String, AppError> {
    const A: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut buf = [0u8; 16];
    getrandom::fill(&mut buf).map_err(|e| AppError::Config(format!("no randomness: {e}")))?;
    let mut s = String::new();
    for (i, b) in buf.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push('-');
        }
        s.push(A[(*b as usize) % A.len()] as char);
    }
    Ok(s)
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong login or password")]
    BadCredentials,
    #[error("the account is not active")]
    Inactive,
    #[error(transparent)]
    App(#[from] AppError),
}

impl From<StoreError> for LoginError {
    fn from(e: StoreError) -> Self {
        LoginError::App(e.into())
    }
}

/// A user to create (CLI, demo; the admin UI is the accounts issue).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub login: String,
    pub full_name: String,
    pub roles: Vec<Role>,
    pub organisation: String,
    pub scope_territory: Option<String>,
    pub valid_from: Date,
    pub valid_until: Option<Date>,
    /// None: generate a one-time password that must be changed at first login.
    pub password: Option<String>,
}

pub struct Login {
    pub token: String,
    pub csrf: String,
    pub user: UserRow,
}

impl App {
    /// Create a user; returns the user and the password to hand over (shown once).
    pub async fn create_user(&self, actor: &str, u: &NewUser) -> AppResult<(UserRow, String)> {
        let mut p = Problems::default();
        let login = u.login.trim().to_lowercase();
        if login.len() < 3
            || login.len() > 64
            || !login
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            p.push("login", "bad_login");
        }
        let today = now_utc().date();
        if u.valid_until.is_some_and(|d| d < today) {
            p.push("valid_until", "date_in_past");
        }
        if u.valid_until.is_some_and(|d| d < u.valid_from) {
            p.push("valid_until", "before_valid_from");
        }
        let root = self
            .profile
            .root_territory()
            .map(|t| t.code.clone())
            .unwrap_or_default();
        let scope = u.scope_territory.clone().unwrap_or(root);
        if self.profile.territory(&scope).is_none() {
            p.push("scope", "unknown_territory");
        }
        let org = if u.organisation.is_empty() {
            self.profile
                .agencies
                .iter()
                .find(|a| a.territory == scope)
                .or_else(|| self.profile.agencies.first())
                .map(|a| a.code.clone())
                .unwrap_or_default()
        } else {
            u.organisation.clone()
        };
        let org_kind = match self.profile.agency(&org) {
            Some(a) => a.kind.clone(),
            None => {
                p.push("organisation", "unknown_code");
                String::new()
            }
        };
        if u.roles.is_empty() {
            p.push("role", "required");
        }
        if let Some(pw) = &u.password
            && pw.chars().count() < 10
        {
            p.push("password", "password_too_short");
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        let (password, must_change) = match &u.password {
            Some(pw) => (pw.clone(), false),
            None => (one_time_password()?, true),
        };
        let row = UserRow {
            id: Uuid::now_v7().to_string(),
            version: 1,
            login,
            password_hash: hash_password(&password)?,
            full_name: u.full_name.trim().to_string(),
            role: kamkor_domain::policy::format_roles(&u.roles),
            organisation: org,
            org_kind,
            scope_territory: scope,
            valid_from: records::format_date(u.valid_from),
            valid_until: u.valid_until.map(records::format_date),
            active: true,
            must_change_password: must_change,
            created_at: ts(now_utc()),
        };
        let mut tx = self.store.begin(actor, None).await?;
        tx.insert_user(&row).await?;
        tx.commit().await?;
        Ok((row, password))
    }

    /// Check credentials and open a session. The same answer for an unknown login and a wrong
    /// password, and a hash computed either way, so that logins cannot be probed.
    pub async fn login(&self, login: &str, password: &str) -> Result<Login, LoginError> {
        let login = login.trim().to_lowercase();
        if login.len() > 64 || password.len() > 1024 {
            return Err(LoginError::BadCredentials);
        }
        let user = self.store.user_by_login(&login).await?;
        let Some(user) = user else {
            check_password(password, DUMMY_HASH).await;
            return Err(LoginError::BadCredentials);
        };
        let now = now_utc();
        // A temporarily locked account is refused without looking at the password, with the
        // same answer as a wrong one.
        let (_, locked_until) = self.store.login_failures(&user.id).await?;
        if locked_until
            .as_deref()
            .and_then(kamkor_store::parse_ts)
            .is_some_and(|until| until > now)
        {
            check_password(password, DUMMY_HASH).await;
            let mut tx = self.store.begin(&user.id, None).await?;
            tx.record_event("login_refused_locked", "user", &user.id, None)
                .await?;
            tx.commit().await?;
            return Err(LoginError::BadCredentials);
        }
        if !check_password(password, &user.password_hash).await {
            let failures = self.store.record_login_failure(&user.id, &ts(now)).await?;
            let throttle = kamkor_domain::policy::login_throttle(failures);
            let mut tx = self.store.begin(&user.id, None).await?;
            tx.record_event(
                "login_failed",
                "user",
                &user.id,
                Some(serde_json::json!({"failures": failures})),
            )
            .await?;
            tx.commit().await?;
            if let Some(minutes) = throttle.lock_minutes {
                let until = now + time::Duration::minutes(i64::from(minutes));
                self.store.lock_login(&user.id, &ts(until)).await?;
            }
            tokio::time::sleep(self.config.login_delay_unit * throttle.delay_units).await;
            return Err(LoginError::BadCredentials);
        }
        self.store.clear_login_failures(&user.id).await?;
        let actor = crate::actor_of(&user);
        if crate::account_lapsed(&actor, now.date()) {
            return Err(LoginError::Inactive);
        }
        let token = random_token()?;
        let csrf = random_token()?;
        let s = SessionRow {
            token_hash: token_hash(&token),
            user_id: user.id.clone(),
            csrf_token: csrf.clone(),
            created_at: ts(now),
            last_seen_at: ts(now),
            expires_at: ts(now + self.config.session_max),
            ended_at: None,
        };
        self.store.create_session(&s).await?;
        let mut tx = self.store.begin(&user.id, None).await?;
        tx.record_event("login", "user", &user.id, None).await?;
        tx.commit().await?;
        Ok(Login { token, csrf, user })
    }

    pub async fn logout(&self, ctx: &Ctx, token: &str) -> AppResult<()> {
        self.store
            .end_session(&token_hash(token), &ts(now_utc()))
            .await?;
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.record_event("logout", "user", &ctx.user.id, None)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// End every session of the user, this one included ("log out everywhere": a phone left
    /// in a district office, a shared computer).
    pub async fn logout_everywhere(&self, ctx: &Ctx) -> AppResult<u64> {
        let ended = self
            .store
            .end_user_sessions(&ctx.user.id, None, &ts(now_utc()))
            .await?;
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.record_event(
            "logout_everywhere",
            "user",
            &ctx.user.id,
            Some(serde_json::json!({"sessions": ended})),
        )
        .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Change one's own password (required after a one-time password).
    pub async fn change_password(
        &self,
        ctx: &Ctx,
        current: &str,
        new: &str,
        repeat: &str,
    ) -> AppResult<()> {
        let mut p = Problems::default();
        if !verify_password(current, &ctx.user.password_hash) {
            p.push("current", "wrong_password");
        }
        if new.chars().count() < 10 {
            p.push("new", "password_too_short");
        } else if new.chars().count() > 256 {
            p.push("new", "too_long");
        } else if new.to_lowercase().contains(&ctx.user.login) {
            p.push("new", "password_contains_login");
        } else if COMMON_PASSWORDS.contains(&new.to_lowercase().as_str()) {
            p.push("new", "password_too_common");
        } else if new == current {
            p.push("new", "password_unchanged");
        }
        if new != repeat {
            p.push("repeat", "passwords_differ");
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        let hash = hash_password(new)?;
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.set_password(&ctx.user.id, &hash, false).await?;
        tx.commit().await?;
        // Whoever knew the old password loses their sessions; this one stays.
        self.store
            .end_user_sessions(&ctx.user.id, ctx.session_hash.as_deref(), &ts(now_utc()))
            .await?;
        Ok(())
    }
}

/// Verify off the async threads (argon2 takes tens of milliseconds by design).
async fn check_password(password: &str, hash: &str) -> bool {
    let (pw, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
        .await
        .unwrap_or(false)
}

/// A valid argon2id hash of a random string, verified against when the login is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2pW0mJpL3p2m4T5rbXh0bH0m6ZbVQm8o2b0O3Yx0c1Q";

/// A few of the most common passwords (the accounts issue brings a longer list).
const COMMON_PASSWORDS: &[&str] = &[
    "1234567890",
    "12345678910",
    "qwertyuiop",
    "password123",
    "password1234",
    "1q2w3e4r5t",
    "qwerty12345",
    "0987654321",
    "1111111111",
    "administrator",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash() {
        // An unknown login must cost as much as a known one.
        assert!(argon2::password_hash::phc::PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn one_time_passwords_are_readable() {
        let p = one_time_password().unwrap();
        assert_eq!(p.len(), 19);
        assert!(!p.contains('l') && !p.contains('0') && !p.contains('1'));
    }
}
