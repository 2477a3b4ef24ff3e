//! Authentication: argon2id passwords, random session tokens stored only as hashes, users
//! created with a validity period (seed 000 §24: "логин и пароль на определенный срок").

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use kamkor_domain::policy::Role;
use kamkor_domain::records::{self, Problems};
use kamkor_store::{SessionRow, StoreError, UserRow, now_utc, ts};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

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
    /// The password was right; the account has a second factor and no code was given.
    #[error("a code from the authenticator app is needed")]
    SecondFactorRequired,
    #[error("wrong or already used code")]
    SecondFactorWrong,
    #[error("not from an allowed network")]
    NetworkNotAllowed,
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
            status: "active".into(),
            ..UserRow::default()
        };
        let mut tx = self.store.begin(actor, None).await?;
        tx.insert_user(&row).await?;
        tx.commit().await?;
        Ok((row, password))
    }

    /// Check credentials (and the second factor when the account has one) and open a session.
    /// The same answer for an unknown login and a wrong password, and a hash computed either
    /// way, so that logins cannot be probed; nothing about the account is said before the
    /// password is right.
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        second_factor: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<Login, LoginError> {
        let login = login.trim().to_lowercase();
        if login.len() > 64 || password.len() > 1024 {
            return Err(LoginError::BadCredentials);
        }
        let user = self.store.user_by_login(&login).await?;
        let Some(user) = user else {
            check_password(password, DUMMY_HASH).await;
            // The same growing wait as for a real account, so timing does not tell.
            let failures = {
                let mut m = self
                    .unknown_failures
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if m.len() >= UNKNOWN_LOGINS_KEPT && !m.contains_key(&login) {
                    m.clear();
                }
                let n = m.entry(login.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let throttle = kamkor_domain::policy::login_throttle(failures);
            tokio::time::sleep(self.config.login_delay_unit * throttle.delay_units).await;
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
            self.login_event(&user.id, "login_refused_locked", None)
                .await?;
            return Err(LoginError::BadCredentials);
        }
        if !check_password(password, &user.password_hash).await {
            self.login_failed(&user.id, "login_failed", now).await?;
            return Err(LoginError::BadCredentials);
        }
        let actor = crate::actor_of(&user);
        if crate::account_lapsed(&actor, now.date()) {
            self.login_event(
                &user.id,
                "login_refused_inactive",
                Some(serde_json::json!({"status": user.status})),
            )
            .await?;
            return Err(LoginError::Inactive);
        }
        if !self.network_allowed(&user.organisation, ip).await? {
            self.login_event(&user.id, "login_refused_network", None)
                .await?;
            return Err(LoginError::NetworkNotAllowed);
        }
        if let Some(secret) = &user.totp_secret {
            let typed = second_factor.unwrap_or("").trim();
            if typed.is_empty() {
                return Err(LoginError::SecondFactorRequired);
            }
            let step = crate::totp::matching_step(secret, typed, now);
            let fresh = match step {
                Some(step) => self.store.use_totp_step(&user.id, step).await?,
                None => false,
            };
            if !fresh {
                self.login_failed(&user.id, "login_failed_second_factor", now)
                    .await?;
                return Err(LoginError::SecondFactorWrong);
            }
        }
        self.store.clear_login_failures(&user.id).await?;
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
        self.login_event(&user.id, "login", None).await?;
        Ok(Login { token, csrf, user })
    }

    async fn login_event(
        &self,
        user_id: &str,
        action: &str,
        detail: Option<serde_json::Value>,
    ) -> Result<(), LoginError> {
        let mut tx = self.store.begin(user_id, None).await?;
        tx.record_event(action, "user", user_id, detail).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Count a failed login, record it, lock the account after too many, and make the
    /// caller wait the growing delay (seed 000 §17; FSTEC guidance, REFERENCE B.7).
    async fn login_failed(
        &self,
        user_id: &str,
        action: &str,
        now: time::OffsetDateTime,
    ) -> Result<(), LoginError> {
        let failures = self.store.record_login_failure(user_id, &ts(now)).await?;
        let throttle = kamkor_domain::policy::login_throttle(failures);
        self.login_event(
            user_id,
            action,
            Some(serde_json::json!({"failures": failures})),
        )
        .await?;
        if let Some(minutes) = throttle.lock_minutes {
            let until = now + time::Duration::minutes(i64::from(minutes));
            self.store.lock_login(user_id, &ts(until)).await?;
        }
        tokio::time::sleep(self.config.login_delay_unit * throttle.delay_units).await;
        Ok(())
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
        if let Some(problem) = password_problem(new, &ctx.user.login) {
            p.push("new", problem);
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

/// Compare two hex digests without an early exit.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Verify off the async threads (argon2 takes tens of milliseconds by design).
async fn check_password(password: &str, hash: &str) -> bool {
    let (pw, hash) = (password.to_string(), hash.to_string());
    tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
        .await
        .unwrap_or(false)
}

/// Unknown login names remembered for the delay (then forgotten all at once).
const UNKNOWN_LOGINS_KEPT: usize = 10_000;

/// A valid argon2id hash of a random string, verified against when the login is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2pW0mJpL3p2m4T5rbXh0bH0m6ZbVQm8o2b0O3Yx0c1Q";

/// Common passwords of ten characters or more (leaked-password lists, plus Russian and
/// Kyrgyz keyboard runs): rejected whatever their length.
const COMMON_PASSWORDS: &[&str] = &[
    "1234567890",
    "12345678910",
    "123456789a",
    "a123456789",
    "0123456789",
    "1234567890q",
    "qwertyuiop",
    "qwertyuiop[]",
    "asdfghjkl;",
    "zxcvbnm,./",
    "qwerty1234",
    "qwerty12345",
    "qwerty123456",
    "1q2w3e4r5t",
    "1q2w3e4r5t6y",
    "q1w2e3r4t5",
    "zaq12wsxcde3",
    "1qaz2wsx3edc",
    "password12",
    "password123",
    "password1234",
    "passw0rd123",
    "p@ssw0rd123",
    "0987654321",
    "1111111111",
    "2222222222",
    "0000000000",
    "9999999999",
    "1122334455",
    "1234512345",
    "administrator",
    "admin12345",
    "admin123456",
    "welcome123",
    "iloveyou12",
    "letmein123",
    "football123",
    "princess123",
    "sunshine123",
    "monkey12345",
    "dragon12345",
    "master12345",
    "йцукенгшщз",
    "йцукенгшщзхъ",
    "фывапролдж",
    "ячсмитьбю",
    "пароль1234",
    "пароль12345",
    "парольпароль",
    "1234567890й",
    "qwertyqwerty",
    "abcdefghij",
    "abcd123456",
    "aaaaaaaaaa",
    "changeme123",
    "kyrgyzstan1",
    "kyrgyzstan123",
    "bishkek123",
    "bishkek2024",
    "bishkek2025",
    "bishkek2026",
    "russia12345",
    "moscow12345",
    "surgut12345",
    "yugra12345",
    "kamkor12345",
    "password2024",
    "password2025",
    "password2026",
    "qwerty2025",
    "qwerty2026",
];

/// What is wrong with a new password, if anything: length over complexity (NIST SP 800-63B),
/// not the login, not a common one.
pub fn password_problem(new: &str, login: &str) -> Option<&'static str> {
    let lower = new.to_lowercase();
    if new.chars().count() < 10 {
        Some("password_too_short")
    } else if new.chars().count() > 256 {
        Some("too_long")
    } else if !login.is_empty() && lower.contains(&login.to_lowercase()) {
        Some("password_contains_login")
    } else if COMMON_PASSWORDS.contains(&lower.as_str())
        || lower.chars().all(|c| lower.starts_with(c))
    {
        Some("password_too_common")
    } else {
        None
    }
}

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
    fn password_policy_prefers_length_and_refuses_the_obvious() {
        assert_eq!(
            password_problem("short", "anna"),
            Some("password_too_short")
        );
        assert_eq!(
            password_problem("my-anna-password", "anna"),
            Some("password_contains_login")
        );
        assert_eq!(
            password_problem("Qwertyuiop", "x"),
            Some("password_too_common")
        );
        assert_eq!(
            password_problem("йцукенгшщз", "x"),
            Some("password_too_common")
        );
        assert_eq!(
            password_problem("zzzzzzzzzzzz", "x"),
            Some("password_too_common")
        );
        // A long phrase of plain words is fine: no digit, capital or symbol rules.
        assert_eq!(password_problem("весна в таласе", "anna"), None);
    }

    #[test]
    fn one_time_passwords_are_readable() {
        let p = one_time_password().unwrap();
        assert_eq!(p.len(), 19);
        assert!(!p.contains('l') && !p.contains('0') && !p.contains('1'));
    }
}
