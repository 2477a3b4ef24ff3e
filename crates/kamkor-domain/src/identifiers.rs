//! National identifiers: Kyrgyz PIN (ПИН), Russian SNILS (СНИЛС), Russian
//! and Kyrgyz INN (ИНН).
//!
//! Everything here is pure: no I/O, no clock (callers pass `today` where a
//! rule depends on it) and no panics on any input — every parser accepts an
//! arbitrary `&str` and answers with an [`IdError`] when it is not valid.
//!
//! Canonical forms (what the store keeps and what serde writes) are the bare
//! digit strings; input may carry whitespace (and, for SNILS, hyphens).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

use crate::Sex;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why an identifier was refused. Messages are developer-facing English; the
/// UI translates [`IdError::code`] instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("identifier is empty")]
    Empty,
    #[error("identifier has the wrong length: expected {expected} digits, got {got}")]
    BadLength { expected: &'static str, got: usize },
    #[error("identifier must consist of digits only")]
    NotDigits,
    /// The leading marker digit is not allowed: a PIN starts with 1 (female)
    /// or 2 (male); a Kyrgyz INN starts with 0 (organisation), 1 or 2.
    #[error("identifier has an invalid first (sex / entity-type) digit")]
    BadSexDigit,
    #[error("identifier contains a date that does not exist")]
    BadDate,
    #[error("identifier contains a birth date in the future")]
    FutureDate,
    #[error("identifier does not match the person's sex")]
    SexMismatch,
    #[error("identifier does not match the person's birth date")]
    BirthDateMismatch,
    #[error("identifier control number is wrong")]
    BadChecksum,
}

impl IdError {
    /// Stable snake_case code, translated by the UI.
    pub fn code(&self) -> &'static str {
        match self {
            IdError::Empty => "id_empty",
            IdError::BadLength { .. } => "id_bad_length",
            IdError::NotDigits => "id_not_digits",
            IdError::BadSexDigit => "id_bad_sex_digit",
            IdError::BadDate => "id_bad_date",
            IdError::FutureDate => "id_future_date",
            IdError::SexMismatch => "id_sex_mismatch",
            IdError::BirthDateMismatch => "id_birth_date_mismatch",
            IdError::BadChecksum => "id_bad_checksum",
        }
    }
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// Removes whitespace (anywhere, so also trims) and, when `hyphens` is set,
/// ASCII hyphens; then requires a non-empty run of ASCII digits.
fn compact_digits(s: &str, hyphens: bool) -> Result<String, IdError> {
    let out: String = s
        .chars()
        .filter(|&c| !(c.is_whitespace() || (hyphens && c == '-')))
        .collect();
    if out.is_empty() {
        return Err(IdError::Empty);
    }
    if !out.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::NotDigits);
    }
    Ok(out)
}

fn require_len(s: &str, len: usize, expected: &'static str) -> Result<(), IdError> {
    if s.len() == len {
        Ok(())
    } else {
        Err(IdError::BadLength {
            expected,
            got: s.len(),
        })
    }
}

/// Value of an ASCII digit byte (callers only pass validated digits; the
/// wrapping subtraction keeps this panic-free regardless).
fn digit(b: u8) -> u32 {
    u32::from(b.wrapping_sub(b'0'))
}

/// Decimal value of a run of ASCII digits (at most 9, so no overflow).
fn number(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0, |acc, &b| acc * 10 + digit(b))
}

/// Σ d_i·w_i over the leading digits (as many as there are weights).
fn weighted_sum(bytes: &[u8], weights: &[u32]) -> u32 {
    bytes.iter().zip(weights).map(|(&b, &w)| digit(b) * w).sum()
}

/// `DDMMYYYY` → a real calendar date, if it is one.
fn parse_ddmmyyyy(bytes: &[u8]) -> Option<Date> {
    if bytes.len() != 8 {
        return None;
    }
    let day = u8::try_from(number(bytes.get(0..2)?)).ok()?;
    let month = Month::try_from(u8::try_from(number(bytes.get(2..4)?)).ok()?).ok()?;
    let year = i32::try_from(number(bytes.get(4..8)?)).ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

fn format_ddmmyyyy(d: Date) -> String {
    format!("{:02}{:02}{:04}", d.day(), u8::from(d.month()), d.year())
}

/// Identifier types serialise as their canonical string and deserialise
/// through the parser.
macro_rules! string_conversions {
    ($ty:ident, $canonical:ident) => {
        impl FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $ty::parse(&s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                $ty::parse(s)
            }
        }

        impl From<$ty> for String {
            fn from(id: $ty) -> String {
                id.$canonical().to_owned()
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Kyrgyz PIN
// ---------------------------------------------------------------------------

/// Kyrgyz personal identification number (ПИН), REFERENCE A.8:
/// 14 digits = sex (1 female, 2 male) · birth date DDMMYYYY · 5-digit serial.
/// No check digit is published, so none is verified.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KgPin {
    text: String,
    sex: Sex,
    birth: Date,
    serial: u32,
}

/// Earliest/latest dates a 4-digit year field can hold.
const PIN_MIN_DATE: Date = time::macros::date!(0000 - 01 - 01);
const PIN_MAX_DATE: Date = time::macros::date!(9999 - 12 - 31);

impl KgPin {
    /// Parses a PIN: whitespace is ignored; then exactly 14 ASCII digits,
    /// first digit 1 or 2, digits 2–9 a real date (REFERENCE A.8).
    /// Does not know today's date; see [`KgPin::parse_at`].
    pub fn parse(s: &str) -> Result<KgPin, IdError> {
        let text = compact_digits(s, false)?;
        require_len(&text, 14, "14")?;
        let bytes = text.as_bytes();
        let sex = match bytes.first() {
            Some(b'1') => Sex::Female,
            Some(b'2') => Sex::Male,
            _ => return Err(IdError::BadSexDigit),
        };
        let birth = bytes
            .get(1..9)
            .and_then(parse_ddmmyyyy)
            .ok_or(IdError::BadDate)?;
        let serial = number(bytes.get(9..14).unwrap_or_default());
        Ok(KgPin {
            text,
            sex,
            birth,
            serial,
        })
    }

    /// Like [`KgPin::parse`], but also refuses a birth date after `today`.
    pub fn parse_at(s: &str, today: Date) -> Result<KgPin, IdError> {
        let pin = KgPin::parse(s)?;
        if pin.birth > today {
            return Err(IdError::FutureDate);
        }
        Ok(pin)
    }

    /// Builds a PIN (for the demo generator). `serial` is taken modulo
    /// 100 000; a birth date outside years 0000–9999 is clamped into it.
    pub fn build(sex: Sex, birth: Date, serial: u32) -> KgPin {
        let birth = birth.clamp(PIN_MIN_DATE, PIN_MAX_DATE);
        let serial = serial % 100_000;
        let sex_digit = match sex {
            Sex::Female => '1',
            Sex::Male => '2',
        };
        let text = format!("{sex_digit}{}{serial:05}", format_ddmmyyyy(birth));
        KgPin {
            text,
            sex,
            birth,
            serial,
        }
    }

    /// The canonical 14-digit form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn sex(&self) -> Sex {
        self.sex
    }

    pub fn birth_date(&self) -> Date {
        self.birth
    }

    /// The trailing 5-digit serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Checks the PIN against a person's recorded sex and birth date — a
    /// mismatch is a clear validation error, not a silent accept (seed 000
    /// §18, e.g. a PIN on a child's record). Sex is checked first.
    pub fn check_person(&self, sex: Sex, birth_date: Date) -> Result<(), IdError> {
        if self.sex != sex {
            return Err(IdError::SexMismatch);
        }
        if self.birth != birth_date {
            return Err(IdError::BirthDateMismatch);
        }
        Ok(())
    }
}

impl fmt::Display for KgPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

string_conversions!(KgPin, as_str);

// ---------------------------------------------------------------------------
// Russian SNILS
// ---------------------------------------------------------------------------

/// Russian SNILS (СНИЛС): 9-digit number + 2-digit control number, written
/// `XXX-XXX-XXX YY`. The control number is verified only for numbers greater
/// than 001-001-998 (Pension Fund rule; smaller numbers predate it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Snils {
    digits: String,
}

/// Numbers up to and including 001-001-998 carry no verifiable control number.
const SNILS_UNCHECKED_MAX: u32 = 1_001_998;

/// SNILS control number of the 9-digit body: S = Σ d_i·(10−i); S < 100 → S;
/// otherwise S mod 101, with 100 (also reached by S = 100) written as 00.
fn snils_control(body: &[u8]) -> u32 {
    let s = weighted_sum(body, &[9, 8, 7, 6, 5, 4, 3, 2, 1]);
    let r = if s < 100 { s } else { s % 101 };
    if r == 100 { 0 } else { r }
}

impl Snils {
    /// Parses `112-233-445 95` or `11223344595` (whitespace and hyphens are
    /// ignored anywhere).
    pub fn parse(s: &str) -> Result<Snils, IdError> {
        let digits = compact_digits(s, true)?;
        require_len(&digits, 11, "11")?;
        let bytes = digits.as_bytes();
        let body = bytes.get(..9).unwrap_or_default();
        if number(body) > SNILS_UNCHECKED_MAX {
            let given = number(bytes.get(9..).unwrap_or_default());
            if snils_control(body) != given {
                return Err(IdError::BadChecksum);
            }
        }
        Ok(Snils { digits })
    }

    /// Builds a SNILS from its 9-digit number (taken modulo 10⁹), computing
    /// the control number (for the demo generator). Numbers ≤ 001-001-998 are
    /// not checked on parse, but still get the computed control number.
    pub fn build(nine_digits: u32) -> Snils {
        let body = format!("{:09}", nine_digits % 1_000_000_000);
        let control = snils_control(body.as_bytes());
        Snils {
            digits: format!("{body}{control:02}"),
        }
    }

    /// The canonical 11-digit form (what is stored).
    pub fn digits(&self) -> &str {
        &self.digits
    }
}

/// `XXX-XXX-XXX YY`.
impl fmt::Display for Snils {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.digits;
        match (d.get(0..3), d.get(3..6), d.get(6..9), d.get(9..11)) {
            (Some(a), Some(b), Some(c), Some(k)) => write!(f, "{a}-{b}-{c} {k}"),
            // Unreachable for a parsed value; fall back to the raw digits.
            _ => f.write_str(d),
        }
    }
}

string_conversions!(Snils, digits);

// ---------------------------------------------------------------------------
// Russian INN
// ---------------------------------------------------------------------------

/// Russian taxpayer number (ИНН): 10 digits for an organisation, 12 for an
/// individual, with the FNS `mod 11 mod 10` control digit(s).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InnRu {
    digits: String,
}

const INN_RU_W10: [u32; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];
const INN_RU_W11: [u32; 10] = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8];
const INN_RU_W12: [u32; 11] = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8];

fn inn_ru_control(bytes: &[u8], weights: &[u32]) -> u32 {
    weighted_sum(bytes, weights) % 11 % 10
}

/// The check digit at `pos` matches the weighted sum of the digits before it.
fn inn_ru_digit_ok(bytes: &[u8], weights: &[u32], pos: usize) -> bool {
    bytes
        .get(pos)
        .is_some_and(|&b| digit(b) == inn_ru_control(bytes, weights))
}

impl InnRu {
    /// Parses a 10- or 12-digit INN (whitespace ignored) and verifies its
    /// control digit(s).
    pub fn parse(s: &str) -> Result<InnRu, IdError> {
        let digits = compact_digits(s, false)?;
        let bytes = digits.as_bytes();
        let ok = match bytes.len() {
            10 => inn_ru_digit_ok(bytes, &INN_RU_W10, 9),
            12 => {
                inn_ru_digit_ok(bytes, &INN_RU_W11, 10) && inn_ru_digit_ok(bytes, &INN_RU_W12, 11)
            }
            got => {
                return Err(IdError::BadLength {
                    expected: "10 or 12",
                    got,
                });
            }
        };
        if ok {
            Ok(InnRu { digits })
        } else {
            Err(IdError::BadChecksum)
        }
    }

    /// Builds an organisation INN from its first 9 digits (taken modulo 10⁹).
    pub fn build_org(nine_digits: u32) -> InnRu {
        let body = format!("{:09}", nine_digits % 1_000_000_000);
        let c10 = inn_ru_control(body.as_bytes(), &INN_RU_W10);
        InnRu {
            digits: format!("{body}{c10}"),
        }
    }

    /// Builds an individual's INN from its first 10 digits (taken modulo 10¹⁰).
    pub fn build_person(ten_digits: u64) -> InnRu {
        let mut digits = format!("{:010}", ten_digits % 10_000_000_000);
        let c11 = inn_ru_control(digits.as_bytes(), &INN_RU_W11);
        digits.push_str(&c11.to_string());
        let c12 = inn_ru_control(digits.as_bytes(), &INN_RU_W12);
        digits.push_str(&c12.to_string());
        InnRu { digits }
    }

    /// The canonical 10- or 12-digit form.
    pub fn as_str(&self) -> &str {
        &self.digits
    }

    /// 10 digits = organisation; 12 = individual.
    pub fn is_organisation(&self) -> bool {
        self.digits.len() == 10
    }
}

impl fmt::Display for InnRu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits)
    }
}

string_conversions!(InnRu, as_str);

// ---------------------------------------------------------------------------
// Kyrgyz INN
// ---------------------------------------------------------------------------

/// Kyrgyz taxpayer number (ИНН), 14 digits. Organisations: `0` · registration
/// date DDMMYYYY · 5-digit serial. Individuals and individual entrepreneurs
/// use their PIN (first digit 1 or 2). No check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InnKg {
    digits: String,
}

impl InnKg {
    /// Parses `^[0-2]\d{13}$` (whitespace ignored); an organisation number
    /// must carry a real registration date, a personal one must be a PIN.
    pub fn parse(s: &str) -> Result<InnKg, IdError> {
        let digits = compact_digits(s, false)?;
        require_len(&digits, 14, "14")?;
        let bytes = digits.as_bytes();
        match bytes.first() {
            Some(b'0') => {
                bytes
                    .get(1..9)
                    .and_then(parse_ddmmyyyy)
                    .ok_or(IdError::BadDate)?;
            }
            Some(b'1' | b'2') => {
                KgPin::parse(&digits)?;
            }
            _ => return Err(IdError::BadSexDigit),
        }
        Ok(InnKg { digits })
    }

    /// The canonical 14-digit form.
    pub fn as_str(&self) -> &str {
        &self.digits
    }

    /// Leading 0 = organisation; 1/2 = individual (the PIN).
    pub fn is_organisation(&self) -> bool {
        self.digits.starts_with('0')
    }
}

impl fmt::Display for InnKg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits)
    }
}

string_conversions!(InnKg, as_str);

// ---------------------------------------------------------------------------
// Kinds and normalisation (what forms and the store use)
// ---------------------------------------------------------------------------

/// Which national personal identifier a person record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NationalIdKind {
    KgPin,
    RuSnils,
}

impl NationalIdKind {
    pub const ALL: [NationalIdKind; 2] = [NationalIdKind::KgPin, NationalIdKind::RuSnils];

    pub fn from_code(code: &str) -> Option<NationalIdKind> {
        match code {
            "kg_pin" => Some(NationalIdKind::KgPin),
            "ru_snils" => Some(NationalIdKind::RuSnils),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            NationalIdKind::KgPin => "kg_pin",
            NationalIdKind::RuSnils => "ru_snils",
        }
    }
}

/// Validates a national identifier and returns its canonical stored form
/// (PIN: 14 digits; SNILS: 11 digits). For a PIN, a future birth date is
/// refused and the recorded sex / birth date, when given, must match — a
/// mismatch is a clear validation error, not a silent accept (seed 000 §18).
/// SNILS encodes neither, so `sex` and `birth_date` are ignored for it.
pub fn normalize_national_id(
    kind: NationalIdKind,
    s: &str,
    sex: Option<Sex>,
    birth_date: Option<Date>,
    today: Date,
) -> Result<String, IdError> {
    match kind {
        NationalIdKind::KgPin => {
            let pin = KgPin::parse_at(s, today)?;
            if let Some(sex) = sex
                && sex != pin.sex()
            {
                return Err(IdError::SexMismatch);
            }
            if let Some(birth) = birth_date
                && birth != pin.birth_date()
            {
                return Err(IdError::BirthDateMismatch);
            }
            Ok(pin.into())
        }
        NationalIdKind::RuSnils => Snils::parse(s).map(String::from),
    }
}

/// Which taxpayer number an organisation record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrgInnKind {
    #[serde(rename = "kg_inn")]
    Kg,
    #[serde(rename = "ru_inn")]
    Ru,
}

impl OrgInnKind {
    pub const ALL: [OrgInnKind; 2] = [OrgInnKind::Kg, OrgInnKind::Ru];

    pub fn from_code(code: &str) -> Option<OrgInnKind> {
        match code {
            "kg_inn" => Some(OrgInnKind::Kg),
            "ru_inn" => Some(OrgInnKind::Ru),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            OrgInnKind::Kg => "kg_inn",
            OrgInnKind::Ru => "ru_inn",
        }
    }
}

/// Validates an INN and returns its canonical digit string.
pub fn normalize_org_inn(kind: OrgInnKind, s: &str) -> Result<String, IdError> {
    match kind {
        OrgInnKind::Kg => InnKg::parse(s).map(String::from),
        OrgInnKind::Ru => InnRu::parse(s).map(String::from),
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2025 - 06 - 15);

    fn bad_len(expected: &'static str, got: usize) -> IdError {
        IdError::BadLength { expected, got }
    }

    /// Replaces the digit at `pos` of an all-digit string.
    fn with_digit(s: &str, pos: usize, d: u8) -> String {
        let mut b = s.as_bytes().to_vec();
        b[pos] = b'0' + d;
        String::from_utf8(b).unwrap()
    }

    fn digit_at(s: &str, pos: usize) -> u8 {
        s.as_bytes()[pos] - b'0'
    }

    // ----- IdError -----

    #[test]
    fn error_codes_are_stable() {
        let all = [
            (IdError::Empty, "id_empty"),
            (bad_len("14", 3), "id_bad_length"),
            (IdError::NotDigits, "id_not_digits"),
            (IdError::BadSexDigit, "id_bad_sex_digit"),
            (IdError::BadDate, "id_bad_date"),
            (IdError::FutureDate, "id_future_date"),
            (IdError::SexMismatch, "id_sex_mismatch"),
            (IdError::BirthDateMismatch, "id_birth_date_mismatch"),
            (IdError::BadChecksum, "id_bad_checksum"),
        ];
        for (e, code) in all {
            assert_eq!(e.code(), code);
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(
            bad_len("10 or 12", 7).to_string(),
            "identifier has the wrong length: expected 10 or 12 digits, got 7"
        );
    }

    // ----- KgPin -----

    #[test]
    fn pin_parses_layout() {
        let pin = KgPin::parse(" 21503199012345 ").unwrap();
        assert_eq!(pin.as_str(), "21503199012345");
        assert_eq!(pin.sex(), Sex::Male);
        assert_eq!(pin.birth_date(), date!(1990 - 03 - 15));
        assert_eq!(pin.serial(), 12345);
        assert_eq!(pin.to_string(), "21503199012345");

        let pin = KgPin::parse("1 2902 2000 00001").unwrap();
        assert_eq!(pin.as_str(), "12902200000001");
        assert_eq!(pin.sex(), Sex::Female);
        assert_eq!(pin.birth_date(), date!(2000 - 02 - 29));
    }

    #[test]
    fn pin_errors() {
        assert_eq!(KgPin::parse(""), Err(IdError::Empty));
        assert_eq!(KgPin::parse("   "), Err(IdError::Empty));
        assert_eq!(KgPin::parse("2150319901234x"), Err(IdError::NotDigits));
        assert_eq!(KgPin::parse("2150-3199-01234"), Err(IdError::NotDigits));
        assert_eq!(KgPin::parse("２1503199012345"), Err(IdError::NotDigits));
        assert_eq!(KgPin::parse("2150319901234"), Err(bad_len("14", 13)));
        assert_eq!(KgPin::parse("215031990123456"), Err(bad_len("14", 15)));
        assert_eq!(KgPin::parse("31503199012345"), Err(IdError::BadSexDigit));
        assert_eq!(KgPin::parse("01503199012345"), Err(IdError::BadSexDigit));
        // 29 Feb of a non-leap year; month 13; day 00; day 32.
        assert_eq!(KgPin::parse("22902200100001"), Err(IdError::BadDate));
        assert_eq!(KgPin::parse("21513199012345"), Err(IdError::BadDate));
        assert_eq!(KgPin::parse("20003199012345"), Err(IdError::BadDate));
        assert_eq!(KgPin::parse("23201199012345"), Err(IdError::BadDate));
    }

    #[test]
    fn pin_parse_at_refuses_future_birth() {
        assert_eq!(
            KgPin::parse_at("11606202500001", TODAY),
            Err(IdError::FutureDate)
        );
        assert!(KgPin::parse_at("11506202500001", TODAY).is_ok());
        // Plain parse does not know today.
        assert!(KgPin::parse("11606202500001").is_ok());
        // Structural errors still come first.
        assert_eq!(KgPin::parse_at("1", TODAY), Err(bad_len("14", 1)));
    }

    #[test]
    fn pin_check_person() {
        let pin = KgPin::parse("21503199012345").unwrap();
        assert_eq!(pin.check_person(Sex::Male, date!(1990 - 03 - 15)), Ok(()));
        assert_eq!(
            pin.check_person(Sex::Female, date!(1990 - 03 - 15)),
            Err(IdError::SexMismatch)
        );
        assert_eq!(
            pin.check_person(Sex::Male, date!(1990 - 03 - 16)),
            Err(IdError::BirthDateMismatch)
        );
        // Sex is checked first.
        assert_eq!(
            pin.check_person(Sex::Female, date!(2001 - 01 - 01)),
            Err(IdError::SexMismatch)
        );
    }

    #[test]
    fn pin_build_normalises_out_of_range_input() {
        let pin = KgPin::build(Sex::Female, date!(2010 - 07 - 04), 123_456);
        assert_eq!(pin.as_str(), "10407201023456");
        assert_eq!(pin.serial(), 23456);
        let pin = KgPin::build(Sex::Male, date!(-0004 - 02 - 29), 0);
        assert_eq!(pin.as_str(), "20101000000000");
        assert_eq!(KgPin::parse(pin.as_str()), Ok(pin));
    }

    #[test]
    fn pin_serde_is_the_canonical_string() {
        let pin = KgPin::parse("21503199012345").unwrap();
        let json = serde_json::to_string(&pin).unwrap();
        assert_eq!(json, "\"21503199012345\"");
        assert_eq!(serde_json::from_str::<KgPin>(&json).unwrap(), pin);
        assert!(serde_json::from_str::<KgPin>("\"31503199012345\"").is_err());
        assert_eq!("21503199012345".parse::<KgPin>(), Ok(pin));
    }

    // ----- Snils -----

    #[test]
    fn snils_test_vectors() {
        let s = Snils::parse("112-233-445 95").unwrap();
        assert_eq!(s.digits(), "11223344595");
        assert_eq!(s.to_string(), "112-233-445 95");
        assert_eq!(Snils::parse("11223344595"), Ok(s));

        let s = Snils::parse("087-654-303 00").unwrap();
        assert_eq!(s.digits(), "08765430300");
        assert_eq!(Snils::build(87_654_303), s);
        assert_eq!(Snils::build(112_233_445).digits(), "11223344595");
    }

    #[test]
    fn snils_control_branches() {
        assert_eq!(snils_control(b"112233445"), 95); // S = 95 < 100 → S
        assert_eq!(snils_control(b"001019899"), 99); // S = 99 → 99
        assert_eq!(snils_control(b"001019989"), 0); // S = 100 → 00
        assert_eq!(snils_control(b"001019998"), 0); // S = 101 → 00
        assert_eq!(snils_control(b"001019999"), 1); // S = 102 → 102 mod 101
        assert_eq!(snils_control(b"087654303"), 0); // S = 202 → 0
        assert_eq!(snils_control(b"087654302"), 0); // S = 201 → 100 → 00
        assert_eq!(snils_control(b"999999999"), 1); // S = 405 → 405 mod 101
    }

    #[test]
    fn snils_errors() {
        assert_eq!(Snils::parse(""), Err(IdError::Empty));
        assert_eq!(Snils::parse(" - - "), Err(IdError::Empty));
        assert_eq!(Snils::parse("112-233-445 9O"), Err(IdError::NotDigits));
        assert_eq!(Snils::parse("112_233_445_95"), Err(IdError::NotDigits));
        assert_eq!(Snils::parse("112-233-445 9"), Err(bad_len("11", 10)));
        assert_eq!(Snils::parse("112-233-445 955"), Err(bad_len("11", 12)));
        assert_eq!(Snils::parse("112-233-445 96"), Err(IdError::BadChecksum));
        assert_eq!(Snils::parse("087-654-303 01"), Err(IdError::BadChecksum));
    }

    #[test]
    fn snils_small_numbers_are_not_checked() {
        assert!(Snils::parse("001-001-998 00").is_ok());
        assert!(Snils::parse("001-001-998 77").is_ok());
        assert!(Snils::parse("000-000-000 00").is_ok());
        assert_eq!(Snils::parse("001-001-999 77"), Err(IdError::BadChecksum));
        // Control of 001001999 = 1·7 + 1·4 + 9·3 + 9·2 + 9·1 = 65.
        assert!(Snils::parse("001-001-999 65").is_ok());
    }

    #[test]
    fn snils_single_digit_change_can_be_undetected() {
        // The 100 → 00 collapse: S = 201 and S = 202 both give 00, so
        // lowering the last body digit of the official vector by one passes.
        assert!(Snils::parse("087-654-302 00").is_ok());
    }

    #[test]
    fn snils_serde() {
        let s = Snils::parse("112-233-445 95").unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"11223344595\"");
        assert_eq!(
            serde_json::from_str::<Snils>("\"112-233-445 95\"").unwrap(),
            s
        );
    }

    // ----- InnRu -----

    #[test]
    fn inn_ru_test_vectors() {
        let org = InnRu::parse("7707083893").unwrap();
        assert!(org.is_organisation());
        assert_eq!(org.as_str(), "7707083893");
        assert_eq!(InnRu::build_org(770_708_389), org);

        let person = InnRu::parse(" 500100732259 ").unwrap();
        assert!(!person.is_organisation());
        assert_eq!(person.as_str(), "500100732259");
        assert_eq!(InnRu::build_person(5_001_007_322), person);
    }

    #[test]
    fn inn_ru_errors() {
        assert_eq!(InnRu::parse(""), Err(IdError::Empty));
        assert_eq!(InnRu::parse("77070838-93"), Err(IdError::NotDigits));
        assert_eq!(InnRu::parse("770708389"), Err(bad_len("10 or 12", 9)));
        assert_eq!(InnRu::parse("77070838931"), Err(bad_len("10 or 12", 11)));
        assert_eq!(InnRu::parse("7707083894"), Err(IdError::BadChecksum));
        assert_eq!(InnRu::parse("500100732269"), Err(IdError::BadChecksum));
        assert_eq!(InnRu::parse("500100732159"), Err(IdError::BadChecksum));
    }

    #[test]
    fn inn_ru_10_digit_single_change_can_be_undetected() {
        // mod 11 = 0 and mod 11 = 10 both give check digit 0: these two
        // differ in one body digit and are both valid.
        assert!(InnRu::parse("0707083890").is_ok());
        assert!(InnRu::parse("5707083890").is_ok());
    }

    #[test]
    fn inn_ru_12_digit_weights_make_single_changes_detectable() {
        // Basis of prop_inn_ru_person_single_digit_change: at no body position
        // are the two weights equal or opposite mod 11.
        for i in 0..10 {
            let (a, b) = (INN_RU_W11[i] % 11, INN_RU_W12[i] % 11);
            assert!(a != b && (a + b) % 11 != 0, "position {i}");
        }
    }

    #[test]
    fn inn_ru_serde() {
        let inn = InnRu::parse("7707083893").unwrap();
        assert_eq!(serde_json::to_string(&inn).unwrap(), "\"7707083893\"");
        assert!(serde_json::from_str::<InnRu>("\"7707083894\"").is_err());
    }

    // ----- InnKg -----

    #[test]
    fn inn_kg_accepts_org_and_pin() {
        let org = InnKg::parse("0 1501 2010 00123").unwrap();
        assert!(org.is_organisation());
        assert_eq!(org.as_str(), "01501201000123");

        let person = InnKg::parse("21503199012345").unwrap();
        assert!(!person.is_organisation());
        assert_eq!(person.to_string(), "21503199012345");
    }

    #[test]
    fn inn_kg_errors() {
        assert_eq!(InnKg::parse("\t"), Err(IdError::Empty));
        assert_eq!(InnKg::parse("0150120100012a"), Err(IdError::NotDigits));
        assert_eq!(InnKg::parse("0150120100012"), Err(bad_len("14", 13)));
        assert_eq!(InnKg::parse("31503199012345"), Err(IdError::BadSexDigit));
        assert_eq!(InnKg::parse("91503199012345"), Err(IdError::BadSexDigit));
        assert_eq!(InnKg::parse("03102201000123"), Err(IdError::BadDate));
        assert_eq!(InnKg::parse("13102201000123"), Err(IdError::BadDate));
    }

    #[test]
    fn inn_kg_serde() {
        let inn = InnKg::parse("01501201000123").unwrap();
        assert_eq!(serde_json::to_string(&inn).unwrap(), "\"01501201000123\"");
        assert_eq!(
            serde_json::from_str::<InnKg>("\"01501201000123\"").unwrap(),
            inn
        );
    }

    // ----- kinds and normalisation -----

    #[test]
    fn kind_codes_round_trip() {
        for k in NationalIdKind::ALL {
            assert_eq!(NationalIdKind::from_code(k.code()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.code())
            );
        }
        for k in OrgInnKind::ALL {
            assert_eq!(OrgInnKind::from_code(k.code()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.code())
            );
        }
        assert_eq!(NationalIdKind::from_code("KG_PIN"), None);
        assert_eq!(OrgInnKind::from_code("inn"), None);
    }

    #[test]
    fn normalize_national_id_pin() {
        let k = NationalIdKind::KgPin;
        let born = date!(1990 - 03 - 15);
        let pin = "2 1503 1990 12345";
        assert_eq!(
            normalize_national_id(k, pin, None, None, TODAY).as_deref(),
            Ok("21503199012345")
        );
        assert_eq!(
            normalize_national_id(k, pin, Some(Sex::Male), Some(born), TODAY).as_deref(),
            Ok("21503199012345")
        );
        // seed 000 §18: a mismatch is an error, not a silent accept.
        assert_eq!(
            normalize_national_id(k, pin, Some(Sex::Female), None, TODAY),
            Err(IdError::SexMismatch)
        );
        assert_eq!(
            normalize_national_id(k, pin, None, Some(date!(1990 - 03 - 16)), TODAY),
            Err(IdError::BirthDateMismatch)
        );
        assert_eq!(
            normalize_national_id(
                k,
                pin,
                Some(Sex::Female),
                Some(date!(1990 - 03 - 16)),
                TODAY
            ),
            Err(IdError::SexMismatch)
        );
        assert_eq!(
            normalize_national_id(k, "21606202500001", None, None, TODAY),
            Err(IdError::FutureDate)
        );
    }

    #[test]
    fn normalize_national_id_snils_ignores_person_data() {
        assert_eq!(
            normalize_national_id(
                NationalIdKind::RuSnils,
                "112-233-445 95",
                Some(Sex::Female),
                Some(date!(2000 - 01 - 01)),
                TODAY
            )
            .as_deref(),
            Ok("11223344595")
        );
        assert_eq!(
            normalize_national_id(NationalIdKind::RuSnils, "112-233-445 96", None, None, TODAY),
            Err(IdError::BadChecksum)
        );
    }

    #[test]
    fn normalize_org_inn_kinds() {
        assert_eq!(
            normalize_org_inn(OrgInnKind::Ru, " 7707083893").as_deref(),
            Ok("7707083893")
        );
        assert_eq!(
            normalize_org_inn(OrgInnKind::Kg, "01501201000123").as_deref(),
            Ok("01501201000123")
        );
        assert_eq!(
            normalize_org_inn(OrgInnKind::Ru, "01501201000123"),
            Err(bad_len("10 or 12", 14))
        );
        assert_eq!(
            normalize_org_inn(OrgInnKind::Kg, "7707083893"),
            Err(bad_len("14", 10))
        );
    }

    // ----- properties -----

    fn any_sex() -> impl Strategy<Value = Sex> {
        prop_oneof![Just(Sex::Female), Just(Sex::Male)]
    }

    fn date_1900_2099() -> impl Strategy<Value = Date> {
        let lo = date!(1900 - 01 - 01).to_julian_day();
        let hi = date!(2099 - 12 - 31).to_julian_day();
        (lo..=hi).prop_map(|j| Date::from_julian_day(j).unwrap())
    }

    fn other_sex(s: Sex) -> Sex {
        match s {
            Sex::Female => Sex::Male,
            Sex::Male => Sex::Female,
        }
    }

    /// Raw `Σ mod 11` residue behind a Russian INN check digit.
    fn inn_residue(s: &str, weights: &[u32]) -> u32 {
        weighted_sum(s.as_bytes(), weights) % 11
    }

    proptest! {
        // (a) PIN build/parse round trip and person checks.
        #[test]
        fn prop_pin_round_trip(
            sex in any_sex(),
            birth in date_1900_2099(),
            serial in 0u32..=99_999,
            other in date_1900_2099(),
        ) {
            let pin = KgPin::build(sex, birth, serial);
            let parsed = KgPin::parse(pin.as_str()).unwrap();
            prop_assert_eq!(&parsed, &pin);
            prop_assert_eq!(parsed.sex(), sex);
            prop_assert_eq!(parsed.birth_date(), birth);
            prop_assert_eq!(parsed.serial(), serial);
            prop_assert_eq!(pin.check_person(sex, birth), Ok(()));
            prop_assert_eq!(
                pin.check_person(other_sex(sex), birth),
                Err(IdError::SexMismatch)
            );
            prop_assert_eq!(
                pin.check_person(other_sex(sex), other),
                Err(IdError::SexMismatch)
            );
            let expected = if other == birth { Ok(()) } else { Err(IdError::BirthDateMismatch) };
            prop_assert_eq!(pin.check_person(sex, other), expected);
            prop_assert_eq!(InnKg::parse(pin.as_str()).map(|i| i.is_organisation()), Ok(false));
        }

        // (b) Any built SNILS parses and formats back.
        #[test]
        fn prop_snils_build_parses(nine in any::<u32>()) {
            let s = Snils::build(nine);
            prop_assert_eq!(s.digits().len(), 11);
            prop_assert_eq!(Snils::parse(s.digits()), Ok(s.clone()));
            prop_assert_eq!(Snils::parse(&s.to_string()), Ok(s.clone()));
        }

        // (b) Single-digit changes of a checked SNILS. A change of a control
        // digit is always detected. A change of a body digit is detected
        // except (i) when the new number falls to ≤ 001-001-998 (unchecked),
        // or (ii) through the "100 → 00" collapse: the sums giving 00 are
        // {0, 100, 101, 201, 202, 302, 303, 403, 404}, and a single change
        // moves S by w·δ ≤ 81, so the only collision is ±1 on the last body
        // digit (weight 1) between 100↔101, 201↔202, 302↔303 or 403↔404.
        #[test]
        fn prop_snils_single_digit_change(
            nine in (SNILS_UNCHECKED_MAX + 1)..=999_999_999,
            pos in 0usize..11,
            bump in 1u8..10,
        ) {
            let s = Snils::build(nine);
            let old = digit_at(s.digits(), pos);
            let new = (old + bump) % 10;
            let changed = with_digit(s.digits(), pos, new);
            let result = Snils::parse(&changed);
            if pos >= 9 {
                prop_assert_eq!(result, Err(IdError::BadChecksum));
            } else if let Ok(ok) = result {
                let changed_num = number(&changed.as_bytes()[..9]);
                let collapse = pos == 8
                    && old.abs_diff(new) == 1
                    && snils_control(&changed.as_bytes()[..9]) == 0
                    && snils_control(&s.digits().as_bytes()[..9]) == 0;
                prop_assert!(changed_num <= SNILS_UNCHECKED_MAX || collapse, "{}", ok);
            } else {
                prop_assert_eq!(result, Err(IdError::BadChecksum));
            }
        }

        // (c) Russian organisation INN. The claim "any single-digit change is
        // detected" is FALSE for 10 digits: residues 0 and 10 both collapse
        // to check digit 0 (e.g. 0707083890 / 5707083890). What holds: a
        // change of the check digit is always detected, and an undetected
        // body change always goes between residues 0 and 10.
        #[test]
        fn prop_inn_ru_org_single_digit_change(
            nine in 0u32..=999_999_999,
            pos in 0usize..10,
            bump in 1u8..10,
        ) {
            let inn = InnRu::build_org(nine);
            prop_assert!(inn.is_organisation());
            prop_assert_eq!(InnRu::parse(inn.as_str()), Ok(inn.clone()));
            let old = digit_at(inn.as_str(), pos);
            let new = (old + bump) % 10;
            let changed = with_digit(inn.as_str(), pos, new);
            match InnRu::parse(&changed) {
                Err(e) => prop_assert_eq!(e, IdError::BadChecksum),
                Ok(_) => {
                    prop_assert!(pos < 9, "check-digit change went undetected");
                    let mut pair = [
                        inn_residue(inn.as_str(), &INN_RU_W10),
                        inn_residue(&changed, &INN_RU_W10),
                    ];
                    pair.sort_unstable();
                    prop_assert_eq!(pair, [0, 10]);
                }
            }
        }

        // (c) Russian personal INN: here every single-digit change IS
        // detected. A body change shifts both residues by w11·δ and w12·δ
        // (mod 11); escaping both checks needs both to move between 0 and 10,
        // i.e. w11 ≡ ±w12 (mod 11) at that position, which holds for none of
        // the ten positions; a change of d11 or d12 breaks its own check.
        #[test]
        fn prop_inn_ru_person_single_digit_change(
            ten in 0u64..=9_999_999_999,
            pos in 0usize..12,
            bump in 1u8..10,
        ) {
            let inn = InnRu::build_person(ten);
            prop_assert!(!inn.is_organisation());
            prop_assert_eq!(InnRu::parse(inn.as_str()), Ok(inn.clone()));
            let old = digit_at(inn.as_str(), pos);
            let new = (old + bump) % 10;
            let changed = with_digit(inn.as_str(), pos, new);
            prop_assert_eq!(InnRu::parse(&changed), Err(IdError::BadChecksum));
        }

        // (c) Kyrgyz INN has no check digit, so there is nothing to detect;
        // instead: organisation numbers with a real date and any serial parse,
        // a leading 3–9 is refused, and an impossible month is refused.
        #[test]
        fn prop_inn_kg_org(
            reg in date_1900_2099(),
            serial in 0u32..=99_999,
            lead in 3u8..10,
            bad_month in 13u8..=99,
        ) {
            let s = format!("0{}{serial:05}", format_ddmmyyyy(reg));
            let inn = InnKg::parse(&s).unwrap();
            prop_assert!(inn.is_organisation());
            prop_assert_eq!(inn.as_str(), s.as_str());
            prop_assert_eq!(InnKg::parse(&with_digit(&s, 0, lead)), Err(IdError::BadSexDigit));
            let bad = format!("0{:02}{bad_month}{:04}{serial:05}", reg.day(), reg.year());
            prop_assert_eq!(InnKg::parse(&bad), Err(IdError::BadDate));
        }

        // (d) No parser panics on arbitrary printable or arbitrary unicode input,
        // nor on digit-heavy input that reaches the deeper checks.
        #[test]
        fn prop_no_panic_printable(s in "\\PC*") {
            exercise_all(&s);
        }

        #[test]
        fn prop_no_panic_any_unicode(s in any::<String>()) {
            exercise_all(&s);
        }

        #[test]
        fn prop_no_panic_digitish(s in "[0-9 \\-]{0,20}") {
            exercise_all(&s);
        }
    }

    fn exercise_all(s: &str) {
        let _ = KgPin::parse(s);
        let _ = KgPin::parse_at(s, TODAY);
        let _ = Snils::parse(s).map(|x| x.to_string());
        let _ = InnRu::parse(s);
        let _ = InnKg::parse(s);
        for k in NationalIdKind::ALL {
            let _ = normalize_national_id(k, s, Some(Sex::Female), Some(TODAY), TODAY);
        }
        for k in OrgInnKind::ALL {
            let _ = normalize_org_inn(k, s);
        }
        let _ = NationalIdKind::from_code(s);
        let _ = OrgInnKind::from_code(s);
        let _ = serde_json::from_value::<KgPin>(serde_json::Value::String(s.to_owned()));
    }
}
