//! TOTP second factor (RFC 6238 over RFC 4226: HMAC-SHA1, 30-second steps, 6 digits — what
//! every authenticator app understands). Mandatory for administrators and operators.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use time::OffsetDateTime;

use crate::AppError;

pub const STEP_SECONDS: i64 = 30;
/// Steps either side of now that are still accepted (phone clocks drift).
const WINDOW: i64 = 1;

/// A new random secret, base32 without padding (160 bits, RFC 4226 §4).
pub fn new_secret() -> Result<String, AppError> {
    let mut buf = [0u8; 20];
    getrandom::fill(&mut buf).map_err(|e| AppError::Config(format!("no randomness: {e}")))?;
    Ok(data_encoding::BASE32_NOPAD.encode(&buf))
}

pub fn step_of(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(STEP_SECONDS)
}

/// The 6-digit code of a time step (None if the stored secret is not base32).
pub fn code_at(secret: &str, step: i64) -> Option<String> {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret.trim_end_matches('=').as_bytes())
        .ok()?;
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&key).ok()?;
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    Some(format!("{:06}", bin % 1_000_000))
}

/// The step a typed code belongs to, if it is valid now (spaces ignored).
pub fn matching_step(secret: &str, typed: &str, now: OffsetDateTime) -> Option<i64> {
    let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let now_step = step_of(now);
    (-WINDOW..=WINDOW)
        .map(|d| now_step + d)
        .find(|&s| code_at(secret, s).is_some_and(|c| constant_eq(&c, &code)))
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The enrolment address an authenticator app reads from the QR code.
pub fn otpauth_uri(issuer: &str, login: &str, secret: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(login),
        secret,
        enc(issuer)
    )
}

/// The enrolment address as an SVG QR code (rendered inline, no script, no network).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_test_vectors_sha1() {
        // RFC 6238 appendix B: secret "12345678901234567890", 8 digits; we keep the last 6.
        let secret = data_encoding::BASE32_NOPAD.encode(b"12345678901234567890");
        assert_eq!(code_at(&secret, 59 / 30).unwrap(), "287082");
        assert_eq!(code_at(&secret, 1111111109 / 30).unwrap(), "081804");
        assert_eq!(code_at(&secret, 1234567890 / 30).unwrap(), "005924");
        assert_eq!(code_at(&secret, 20000000000 / 30).unwrap(), "353130");
    }

    #[test]
    fn codes_match_within_one_step_only() {
        let secret = new_secret().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let step = step_of(now);
        let code = code_at(&secret, step).unwrap();
        assert_eq!(matching_step(&secret, &code, now), Some(step));
        let prev = code_at(&secret, step - 1).unwrap();
        assert_eq!(matching_step(&secret, &prev, now), Some(step - 1));
        let old = code_at(&secret, step - 3).unwrap();
        if old != code && old != prev && Some(old.clone()) != code_at(&secret, step + 1) {
            assert_eq!(matching_step(&secret, &old, now), None);
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
        assert_eq!(matching_step("not base32!", "123456", now), None);
    }

    #[test]
    fn enrolment_uri_and_qr() {
        let uri = otpauth_uri("Kamkor tzhs-kg", "a.asanova", "JBSWY3DPEHPK3PXP");
        assert!(
            uri.starts_with("otpauth://totp/Kamkor%20tzhs-kg:a.asanova?secret=JBSWY3DPEHPK3PXP")
        );
        assert!(qr_svg(&uri).unwrap().contains("<svg"));
    }
}
