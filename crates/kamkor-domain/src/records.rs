//! Core records (seed 000 §18): person, relative, family, case — their data, and the rules
//! that turn what a user typed into valid data.
//!
//! Input arrives as text (from an HTML form or JSON); `*Draft` types hold it as typed, and
//! `validate_*` returns either clean data or every problem at once, each naming its field, so
//! the UI can show the error next to the field and keep what the user typed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::Date;
use uuid::Uuid;

use crate::Sex;
use crate::identifiers::{IdError, normalize_national_id};
use crate::profile::{FieldType, FormDef, Profile};

/// Longest free text we accept in a single-line field; bounded input (DEVELOPERS: sizes bounded).
pub const MAX_NAME_LEN: usize = 100;
pub const MAX_TEXT_LEN: usize = 500;
pub const MAX_TEXTAREA_LEN: usize = 5000;
pub const MAX_LIST_LEN: usize = 50;

/// One validation problem: the field and a stable snake_case code the UI translates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code: code.into(),
        }
    }
}

/// All the problems found in one submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<FieldError>);

impl Problems {
    pub fn push(&mut self, field: impl Into<String>, code: impl Into<String>) {
        self.0.push(FieldError::new(field, code));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn for_field(&self, field: &str) -> Option<&FieldError> {
        self.0.iter().find(|e| e.field == field)
    }
    pub fn into_result<T>(self, ok: T) -> Result<T, Problems> {
        if self.0.is_empty() { Ok(ok) } else { Err(self) }
    }
    /// Add the problems of a nested part, prefixing their field names (`relatives[0].surname`).
    pub fn nest(&mut self, prefix: &str, other: Problems) {
        for e in other.0 {
            self.0
                .push(FieldError::new(format!("{prefix}.{}", e.field), e.code));
        }
    }
}

/// Drafts come from JSON clients too: accept `null` and numbers where text is expected, so
/// that a record read from the API can be sent back as it came.
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => String::new(),
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return Err(serde::de::Error::custom("expected text")),
    })
}

fn lenient_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => Vec::new(),
        Value::Array(a) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(serde::de::Error::custom("expected a list of codes")),
            })
            .collect::<Result<_, _>>()?,
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![s],
        _ => return Err(serde::de::Error::custom("expected a list of codes")),
    })
}

fn lenient_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Value>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => BTreeMap::new(),
        Value::Object(m) => m.into_iter().collect(),
        _ => {
            return Err(serde::de::Error::custom(
                "expected an object of extra fields",
            ));
        }
    })
}

/// What kind of person record: a registered subject (a child in tzhs-kg, a released person in
/// reentry-yugra) or a relative known through a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonRole {
    Subject,
    Relative,
}

impl PersonRole {
    pub fn code(self) -> &'static str {
        match self {
            PersonRole::Subject => "subject",
            PersonRole::Relative => "relative",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "subject" => Some(Self::Subject),
            "relative" => Some(Self::Relative),
            _ => None,
        }
    }
}

/// A person as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersonDraft {
    #[serde(deserialize_with = "lenient_string")]
    pub surname: String,
    #[serde(deserialize_with = "lenient_string")]
    pub given_name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub patronymic: String,
    #[serde(deserialize_with = "lenient_string")]
    pub sex: String,
    #[serde(deserialize_with = "lenient_string")]
    pub birth_date: String,
    #[serde(deserialize_with = "lenient_string")]
    pub national_id: String,
    #[serde(deserialize_with = "lenient_string")]
    pub citizenship: String,
    #[serde(deserialize_with = "lenient_string")]
    pub residence_territory: String,
    #[serde(deserialize_with = "lenient_string")]
    pub address: String,
    #[serde(deserialize_with = "lenient_string")]
    pub disability: String,
    #[serde(deserialize_with = "lenient_string")]
    pub legal_status: String,
    #[serde(deserialize_with = "lenient_list")]
    pub social_payments: Vec<String>,
    /// Profile-defined extra fields, as typed, keyed by field code.
    #[serde(deserialize_with = "lenient_map")]
    pub extra: BTreeMap<String, Value>,
    /// For an edit: the day the changed facts took effect, when not today (seed 000 §20);
    /// kept with the change in the ledger, not in the record.
    #[serde(deserialize_with = "lenient_string")]
    pub effective_on: String,
}

/// The day a change took effect, as typed (seed 000 §20: changes of a child's circumstances
/// are entered from the day the information was received, so the day they took effect may
/// be earlier than the day they are recorded, never later). Empty: the day it is recorded.
pub fn validate_effective_on(s: &str, today: Date) -> Result<Option<Date>, &'static str> {
    match s.trim() {
        "" => Ok(None),
        s => match parse_date(s) {
            None => Err("bad_date"),
            Some(d) if d > today => Err("future_date"),
            Some(d) if d.year() < today.year() - 120 => Err("too_old"),
            Some(d) if d == today => Ok(None),
            Some(d) => Ok(Some(d)),
        },
    }
}

/// A person's validated data (seed 000 §18).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonData {
    pub role: PersonRole,
    pub surname: String,
    pub given_name: String,
    pub patronymic: Option<String>,
    pub sex: Sex,
    pub birth_date: Option<Date>,
    pub national_id: Option<String>,
    pub citizenship: Option<String>,
    pub residence_territory: Option<String>,
    pub address: Option<String>,
    pub disability: Option<String>,
    pub legal_status: Option<String>,
    pub social_payments: Vec<String>,
    pub extra: Map<String, Value>,
}

impl PersonData {
    pub fn full_name(&self) -> String {
        let mut s = format!("{} {}", self.surname, self.given_name);
        if let Some(p) = &self.patronymic {
            s.push(' ');
            s.push_str(p);
        }
        s
    }

    /// The text the name search runs over: lower case, ё folded to е, single spaces.
    pub fn search_name(&self) -> String {
        normalize_for_search(&self.full_name())
    }

    /// Age in whole years on `day`, when the birth date is known.
    pub fn age_on(&self, day: Date) -> Option<i32> {
        self.birth_date.map(|b| age_on(b, day))
    }

    pub fn to_draft(&self) -> PersonDraft {
        PersonDraft {
            surname: self.surname.clone(),
            given_name: self.given_name.clone(),
            patronymic: self.patronymic.clone().unwrap_or_default(),
            sex: self.sex.code().to_string(),
            birth_date: self.birth_date.map(format_date).unwrap_or_default(),
            national_id: self.national_id.clone().unwrap_or_default(),
            citizenship: self.citizenship.clone().unwrap_or_default(),
            residence_territory: self.residence_territory.clone().unwrap_or_default(),
            address: self.address.clone().unwrap_or_default(),
            disability: self.disability.clone().unwrap_or_default(),
            legal_status: self.legal_status.clone().unwrap_or_default(),
            social_payments: self.social_payments.clone(),
            extra: self.extra.clone().into_iter().collect(),
            effective_on: String::new(),
        }
    }
}

pub fn age_on(birth: Date, day: Date) -> i32 {
    let mut years = day.year() - birth.year();
    if (day.month() as u8, day.day()) < (birth.month() as u8, birth.day()) {
        years -= 1;
    }
    years
}

/// Lower case, ё→е, collapse whitespace. Used for both stored names and queries so that they
/// meet (SQLite's lower() does not fold Cyrillic, so we do it here, once, for both engines).
pub fn normalize_for_search(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for ch in s.trim().chars() {
        if ch.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        for l in ch.to_lowercase() {
            out.push(match l {
                'ё' => 'е',
                other => other,
            });
        }
    }
    out
}

pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// Parse a date as typed: ISO `YYYY-MM-DD` (HTML date input) or `DD.MM.YYYY` (how people write).
pub fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    let (y, m, d) = if let Some((a, rest)) = s.split_once('-') {
        let (b, c) = rest.split_once('-')?;
        (a, b, c)
    } else if let Some((a, rest)) = s.split_once('.') {
        let (b, c) = rest.split_once('.')?;
        (c, b, a)
    } else {
        return None;
    };
    if y.len() != 4 || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
        return None;
    }
    let y: i32 = y.parse().ok()?;
    let m: u8 = m.parse().ok()?;
    let d: u8 = d.parse().ok()?;
    let month = time::Month::try_from(m).ok()?;
    Date::from_calendar_date(y, month, d).ok()
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() {
        None
    } else {
        Some(t.to_string())
    }
}

fn check_name(p: &mut Problems, field: &str, v: &str, required: bool) -> Option<String> {
    let t = v.trim();
    if t.is_empty() {
        if required {
            p.push(field, "required");
        }
        return None;
    }
    if t.chars().count() > MAX_NAME_LEN {
        p.push(field, "too_long");
        return None;
    }
    // Letters of any script, spaces, hyphens and apostrophes: names like "Абдыкадыр уулу",
    // "Мамыт-Кызы", "O'Brien". Digits or punctuation are almost always a typing slip.
    if !t
        .chars()
        .all(|c| c.is_alphabetic() || c == ' ' || c == '-' || c == '\'' || c == '’' || c == '.')
    {
        p.push(field, "bad_name");
        return None;
    }
    Some(t.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn check_text(p: &mut Problems, field: &str, v: &str, max: usize) -> Option<String> {
    let t = opt(v)?;
    if t.chars().count() > max {
        p.push(field, "too_long");
        return None;
    }
    Some(t)
}

/// Check a classifier code is a known item valid on `today`.
fn check_classifier(
    p: &mut Problems,
    profile: &Profile,
    field: &str,
    classifier: &str,
    v: &str,
    today: Date,
) -> Option<String> {
    let code = opt(v)?;
    match profile.classifier(classifier).and_then(|c| c.find(&code)) {
        Some(item) if item.valid_on(today) => Some(code),
        Some(_) => {
            p.push(field, "classifier_item_expired");
            None
        }
        None => {
            p.push(field, "unknown_code");
            None
        }
    }
}

fn check_territory(p: &mut Problems, profile: &Profile, field: &str, v: &str) -> Option<String> {
    let code = opt(v)?;
    if profile.territory(&code).is_none() {
        p.push(field, "unknown_territory");
        return None;
    }
    Some(code)
}

pub fn id_error_code(e: &IdError) -> &'static str {
    e.code()
}

/// Validate a person (seed 000 §18). Subjects need a birth date and a residence territory;
/// relatives may be known by name only. A national identifier that disagrees with the sex or
/// the birth date is refused, not silently accepted.
pub fn validate_person(
    profile: &Profile,
    form: Option<&FormDef>,
    role: PersonRole,
    d: &PersonDraft,
    today: Date,
) -> Result<PersonData, Problems> {
    let mut p = Problems::default();
    let surname = check_name(&mut p, "surname", &d.surname, true);
    let given_name = check_name(&mut p, "given_name", &d.given_name, true);
    let patronymic = check_name(&mut p, "patronymic", &d.patronymic, false);
    let sex = match d.sex.trim() {
        "" => {
            p.push("sex", "required");
            None
        }
        s => {
            let v = Sex::parse(s);
            if v.is_none() {
                p.push("sex", "unknown_code");
            }
            v
        }
    };
    let birth_date = match d.birth_date.trim() {
        "" => {
            if role == PersonRole::Subject {
                p.push("birth_date", "required");
            }
            None
        }
        s => match parse_date(s) {
            None => {
                p.push("birth_date", "bad_date");
                None
            }
            Some(b) if b > today => {
                p.push("birth_date", "future_date");
                None
            }
            Some(b) if b.year() < today.year() - 120 => {
                p.push("birth_date", "too_old");
                None
            }
            Some(b) => Some(b),
        },
    };
    let national_id = match opt(&d.national_id) {
        None => None,
        Some(raw) => {
            if raw.chars().count() > 32 {
                p.push("national_id", "too_long");
                None
            } else {
                match normalize_national_id(
                    profile.national_id_kind(),
                    &raw,
                    sex,
                    birth_date,
                    today,
                ) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        p.push("national_id", e.code());
                        None
                    }
                }
            }
        }
    };
    let citizenship = check_classifier(
        &mut p,
        profile,
        "citizenship",
        "citizenship",
        &d.citizenship,
        today,
    );
    let residence_territory = check_territory(
        &mut p,
        profile,
        "residence_territory",
        &d.residence_territory,
    );
    if role == PersonRole::Subject
        && residence_territory.is_none()
        && d.residence_territory.trim().is_empty()
    {
        p.push("residence_territory", "required");
    }
    let address = check_text(&mut p, "address", &d.address, MAX_TEXT_LEN);
    let disability = check_classifier(
        &mut p,
        profile,
        "disability",
        "disability",
        &d.disability,
        today,
    );
    let legal_status = if profile.classifier("legal_status").is_some() {
        check_classifier(
            &mut p,
            profile,
            "legal_status",
            "legal_status",
            &d.legal_status,
            today,
        )
    } else {
        None
    };
    let mut social_payments = Vec::new();
    if d.social_payments.len() > MAX_LIST_LEN {
        p.push("social_payments", "too_many");
    } else {
        for (i, sp) in d.social_payments.iter().enumerate() {
            if sp.trim().is_empty() {
                continue;
            }
            if let Some(code) = check_classifier(
                &mut p,
                profile,
                "social_payments",
                "social_payment",
                sp,
                today,
            ) && !social_payments.contains(&code)
            {
                social_payments.push(code);
            }
            let _ = i;
        }
    }
    let extra = match form {
        Some(f) => validate_extra(profile, f, &d.extra, today, &mut p),
        None => Map::new(),
    };
    if !p.is_empty() {
        return Err(p);
    }
    match (surname, given_name, sex) {
        (Some(surname), Some(given_name), Some(sex)) => Ok(PersonData {
            role,
            surname,
            given_name,
            patronymic,
            sex,
            birth_date,
            national_id,
            citizenship,
            residence_territory,
            address,
            disability,
            legal_status,
            social_payments,
            extra,
        }),
        _ => Err(p),
    }
}

/// Validate profile-defined extra fields against the form definition. Unknown keys are refused
/// (they would otherwise be stored unseen); values are normalised to their JSON type.
pub fn validate_extra(
    profile: &Profile,
    form: &FormDef,
    values: &BTreeMap<String, Value>,
    today: Date,
    p: &mut Problems,
) -> Map<String, Value> {
    let mut out = Map::new();
    for key in values.keys() {
        if !form.fields().any(|(_, f)| &f.code == key) {
            p.push(format!("extra.{key}"), "unknown_field");
        }
    }
    for (_, f) in form.fields() {
        let field = format!("extra.{}", f.code);
        let raw = values.get(&f.code).cloned().unwrap_or(Value::Null);
        let empty = match &raw {
            Value::Null => true,
            Value::String(s) => s.trim().is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if empty {
            if f.required {
                p.push(field, "required");
            }
            continue;
        }
        let as_text = match &raw {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => String::new(),
        };
        let value = match f.kind {
            FieldType::Text | FieldType::Textarea => {
                let max = f.max_len.unwrap_or(if f.kind == FieldType::Text {
                    MAX_TEXT_LEN
                } else {
                    MAX_TEXTAREA_LEN
                });
                if !matches!(raw, Value::String(_)) {
                    p.push(field, "bad_text");
                    continue;
                }
                if as_text.chars().count() > max {
                    p.push(field, "too_long");
                    continue;
                }
                Value::String(as_text)
            }
            FieldType::Integer | FieldType::Money => {
                let n: Option<i64> = match &raw {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => parse_number(s, f.kind == FieldType::Money),
                    _ => None,
                };
                let Some(n) = n else {
                    p.push(field, "bad_number");
                    continue;
                };
                if f.min.is_some_and(|m| n < m) {
                    p.push(field, "below_min");
                    continue;
                }
                if f.max.is_some_and(|m| n > m) {
                    p.push(field, "above_max");
                    continue;
                }
                Value::from(n)
            }
            FieldType::Date => match parse_date(&as_text) {
                Some(d) => Value::String(format_date(d)),
                None => {
                    p.push(field, "bad_date");
                    continue;
                }
            },
            FieldType::Bool => match as_text.as_str() {
                "true" | "on" | "1" | "yes" => Value::Bool(true),
                "false" | "off" | "0" | "no" => Value::Bool(false),
                _ => {
                    p.push(field, "bad_bool");
                    continue;
                }
            },
            FieldType::Classifier => {
                let cls = f.classifier.as_deref().unwrap_or_default();
                match check_classifier(p, profile, &field, cls, &as_text, today) {
                    Some(c) => Value::String(c),
                    None => continue,
                }
            }
            FieldType::MultiClassifier => {
                let items: Vec<String> = match &raw {
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                    Value::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
                    _ => Vec::new(),
                };
                if items.len() > MAX_LIST_LEN {
                    p.push(field, "too_many");
                    continue;
                }
                let cls = f.classifier.as_deref().unwrap_or_default();
                let mut codes = Vec::new();
                for it in items.iter().filter(|s| !s.is_empty()) {
                    if let Some(c) = check_classifier(p, profile, &field, cls, it, today)
                        && !codes.contains(&c)
                    {
                        codes.push(c);
                    }
                }
                Value::Array(codes.into_iter().map(Value::String).collect())
            }
            FieldType::Territory => match check_territory(p, profile, &field, &as_text) {
                Some(c) => Value::String(c),
                None => continue,
            },
        };
        out.insert(f.code.clone(), value);
    }
    // Dates in order: a field may not be after the date it names (when both are given).
    for (_, f) in form.fields() {
        if let Some(other) = &f.not_after
            && let (Some(a), Some(b)) = (
                out.get(&f.code)
                    .and_then(Value::as_str)
                    .and_then(parse_date),
                out.get(other).and_then(Value::as_str).and_then(parse_date),
            )
            && a > b
        {
            p.push(format!("extra.{}", f.code), "after_linked_date");
        }
    }
    out
}

/// Integers as typed: spaces as thousands separators; money may carry a decimal part
/// (`1 200,50` → 120050 minor units).
fn parse_number(s: &str, money: bool) -> Option<i64> {
    let t: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{a0}')
        .collect();
    if money {
        let t = t.replace(',', ".");
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w.to_string(), f.to_string()),
            None => (t.clone(), String::new()),
        };
        if frac.len() > 2 || !frac.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let w: i64 = whole.parse().ok()?;
        let f: i64 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<2}").parse().ok()?
        };
        w.checked_mul(100)?.checked_add(if w < 0 { -f } else { f })
    } else {
        t.parse().ok()
    }
}

/// Whether a relative is present in the child's life (seed 000 §18: "наличие или отсутствие
/// родителей, близких родственников").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelativeDraft {
    pub person: PersonDraft,
    /// Use an existing person instead of creating one.
    #[serde(deserialize_with = "lenient_string")]
    pub existing_id: String,
    #[serde(deserialize_with = "lenient_string")]
    pub relation_kind: String,
    #[serde(deserialize_with = "lenient_string")]
    pub relative_status: String,
    #[serde(deserialize_with = "lenient_string")]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationData {
    pub relation_kind: String,
    pub relative_status: String,
    pub note: Option<String>,
}

pub fn validate_relation(
    profile: &Profile,
    d: &RelativeDraft,
    today: Date,
) -> Result<RelationData, Problems> {
    let mut p = Problems::default();
    let kind = check_classifier(
        &mut p,
        profile,
        "relation_kind",
        "relation_kind",
        &d.relation_kind,
        today,
    );
    if d.relation_kind.trim().is_empty() {
        p.push("relation_kind", "required");
    }
    let status = check_classifier(
        &mut p,
        profile,
        "relative_status",
        "relative_status",
        &d.relative_status,
        today,
    );
    if d.relative_status.trim().is_empty() {
        p.push("relative_status", "required");
    }
    let note = check_text(&mut p, "note", &d.note, MAX_TEXT_LEN);
    match (kind, status) {
        (Some(relation_kind), Some(relative_status)) if p.is_empty() => Ok(RelationData {
            relation_kind,
            relative_status,
            note,
        }),
        _ => Err(p),
    }
}

/// A family (household) as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FamilyDraft {
    #[serde(deserialize_with = "lenient_string")]
    pub name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub territory: String,
    #[serde(deserialize_with = "lenient_string")]
    pub address: String,
    #[serde(deserialize_with = "lenient_map")]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyData {
    pub name: String,
    pub territory: Option<String>,
    pub address: Option<String>,
    pub extra: Map<String, Value>,
}

pub fn validate_family(
    profile: &Profile,
    form: Option<&FormDef>,
    d: &FamilyDraft,
    today: Date,
) -> Result<FamilyData, Problems> {
    let mut p = Problems::default();
    let name = check_text(&mut p, "name", &d.name, MAX_NAME_LEN * 2);
    if d.name.trim().is_empty() {
        p.push("name", "required");
    }
    let territory = check_territory(&mut p, profile, "territory", &d.territory);
    if d.territory.trim().is_empty() {
        p.push("territory", "required");
    }
    let address = check_text(&mut p, "address", &d.address, MAX_TEXT_LEN);
    let extra = match form {
        Some(f) => validate_extra(profile, f, &d.extra, today, &mut p),
        None => Map::new(),
    };
    match name {
        Some(name) if p.is_empty() => Ok(FamilyData {
            name,
            territory,
            address,
            extra,
        }),
        _ => Err(p),
    }
}

/// Case status (tzhs-kg lifecycle; DESIGN "Cases, plans and rules"). Transitions are issue 5;
/// the foundation knows the states so that every later rule has somewhere to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Identified,
    InitialAssessment,
    ComprehensiveAssessment,
    PlanActive,
    Monitoring,
    Closed,
    /// Seed 000 §20: work paused by agreement with the territorial body; data kept.
    Suspended,
    Transferred,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 8] = [
        CaseStatus::Identified,
        CaseStatus::InitialAssessment,
        CaseStatus::ComprehensiveAssessment,
        CaseStatus::PlanActive,
        CaseStatus::Monitoring,
        CaseStatus::Closed,
        CaseStatus::Suspended,
        CaseStatus::Transferred,
    ];
    pub fn code(self) -> &'static str {
        match self {
            CaseStatus::Identified => "identified",
            CaseStatus::InitialAssessment => "initial_assessment",
            CaseStatus::ComprehensiveAssessment => "comprehensive_assessment",
            CaseStatus::PlanActive => "plan_active",
            CaseStatus::Monitoring => "monitoring",
            CaseStatus::Closed => "closed",
            CaseStatus::Suspended => "suspended",
            CaseStatus::Transferred => "transferred",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == s)
    }
    pub fn is_open(self) -> bool {
        !matches!(self, CaseStatus::Closed | CaseStatus::Transferred)
    }
}

/// Who or what a case is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Child,
    Family,
    Person,
}

impl SubjectKind {
    pub fn code(self) -> &'static str {
        match self {
            SubjectKind::Child => "child",
            SubjectKind::Family => "family",
            SubjectKind::Person => "person",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "child" => Some(Self::Child),
            "family" => Some(Self::Family),
            "person" => Some(Self::Person),
            _ => None,
        }
    }
}

/// A case as typed (seed 000 §18: date and place of identification).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaseDraft {
    #[serde(deserialize_with = "lenient_string")]
    pub subject_kind: String,
    #[serde(deserialize_with = "lenient_string")]
    pub subject_id: String,
    #[serde(deserialize_with = "lenient_string")]
    pub identified_on: String,
    #[serde(deserialize_with = "lenient_string")]
    pub identification_territory: String,
    #[serde(deserialize_with = "lenient_string")]
    pub identification_place: String,
    #[serde(deserialize_with = "lenient_string")]
    pub identification_place_text: String,
    #[serde(deserialize_with = "lenient_string")]
    pub source: String,
    #[serde(deserialize_with = "lenient_list")]
    pub categories: Vec<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub responsible_org: String,
    #[serde(deserialize_with = "lenient_map")]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseData {
    pub subject_kind: SubjectKind,
    pub subject_id: Uuid,
    pub identified_on: Date,
    pub identification_territory: String,
    pub identification_place: Option<String>,
    pub identification_place_text: Option<String>,
    pub source: Option<String>,
    pub categories: Vec<String>,
    pub responsible_org: String,
    pub extra: Map<String, Value>,
}

pub fn validate_case(
    profile: &Profile,
    form: Option<&FormDef>,
    d: &CaseDraft,
    today: Date,
) -> Result<CaseData, Problems> {
    let mut p = Problems::default();
    let subject_kind = SubjectKind::parse(d.subject_kind.trim());
    if subject_kind.is_none() {
        p.push(
            "subject_kind",
            if d.subject_kind.trim().is_empty() {
                "required"
            } else {
                "unknown_code"
            },
        );
    }
    let subject_id = Uuid::parse_str(d.subject_id.trim()).ok();
    if subject_id.is_none() {
        p.push(
            "subject_id",
            if d.subject_id.trim().is_empty() {
                "required"
            } else {
                "not_found"
            },
        );
    }
    let identified_on = match d.identified_on.trim() {
        "" => {
            p.push("identified_on", "required");
            None
        }
        s => match parse_date(s) {
            None => {
                p.push("identified_on", "bad_date");
                None
            }
            Some(x) if x > today => {
                p.push("identified_on", "future_date");
                None
            }
            Some(x) => Some(x),
        },
    };
    let identification_territory = check_territory(
        &mut p,
        profile,
        "identification_territory",
        &d.identification_territory,
    );
    if d.identification_territory.trim().is_empty() {
        p.push("identification_territory", "required");
    }
    let identification_place = check_classifier(
        &mut p,
        profile,
        "identification_place",
        "identification_place",
        &d.identification_place,
        today,
    );
    let identification_place_text = check_text(
        &mut p,
        "identification_place_text",
        &d.identification_place_text,
        MAX_TEXT_LEN,
    );
    let source = check_classifier(
        &mut p,
        profile,
        "source",
        "identification_source",
        &d.source,
        today,
    );
    let mut categories = Vec::new();
    let cat_cls = if profile.classifier("dls_category").is_some() {
        "dls_category"
    } else {
        "need"
    };
    if d.categories.len() > MAX_LIST_LEN {
        p.push("categories", "too_many");
    } else {
        for c in d.categories.iter().filter(|c| !c.trim().is_empty()) {
            if let Some(code) = check_classifier(&mut p, profile, "categories", cat_cls, c, today)
                && !categories.contains(&code)
            {
                categories.push(code);
            }
        }
    }
    let responsible_org = match opt(&d.responsible_org) {
        None => {
            p.push("responsible_org", "required");
            None
        }
        Some(code) if profile.agency(&code).is_none() => {
            p.push("responsible_org", "unknown_code");
            None
        }
        Some(code) => Some(code),
    };
    let extra = match form {
        Some(f) => validate_extra(profile, f, &d.extra, today, &mut p),
        None => Map::new(),
    };
    match (
        subject_kind,
        subject_id,
        identified_on,
        identification_territory,
        responsible_org,
    ) {
        (
            Some(subject_kind),
            Some(subject_id),
            Some(identified_on),
            Some(identification_territory),
            Some(responsible_org),
        ) if p.is_empty() => Ok(CaseData {
            subject_kind,
            subject_id,
            identified_on,
            identification_territory,
            identification_place,
            identification_place_text,
            source,
            categories,
            responsible_org,
            extra,
        }),
        _ => Err(p),
    }
}

/// Where a case stands beyond its status (issue 5 item 1): what a side state returns to, how
/// the case closed, the agreement behind a suspension (seed 000 §20), a waiting transfer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CaseWork {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_to: Option<CaseStatus>,
    /// Outcome code (the profile's outcome classifier) of a closed case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_on: Option<String>,
    /// Why the last side step was taken (suspension, transfer, declined transfer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Seed 000 §20: with whom at the territorial body the suspension was agreed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreed_with: Option<String>,
    /// The organisation a transfer goes to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_org: Option<String>,
    /// When the plan became active for the first time (monitoring counts from it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_active_since: Option<String>,
}

impl CaseWork {
    pub fn is_empty(&self) -> bool {
        *self == CaseWork::default()
    }
}

/// Default name of a household from a member's surname: "Семья Асановых" for the common
/// -ов/-ев/-ин surnames (and their feminine forms), "Семья Ким" otherwise.
pub fn family_name(surname: &str) -> String {
    let s = surname.trim();
    let base = s
        .strip_suffix("ова")
        .map(|b| format!("{b}ов"))
        .or_else(|| s.strip_suffix("ева").map(|b| format!("{b}ев")))
        .or_else(|| s.strip_suffix("ина").map(|b| format!("{b}ин")))
        .unwrap_or_else(|| s.to_string());
    if base.ends_with("ов") || base.ends_with("ев") || base.ends_with("ин") {
        format!("Семья {base}ых")
    } else {
        format!("Семья {base}")
    }
}

/// Human-readable case number: prefix, year, and a per-year sequence (`ТЖС-2026-000123`).
/// Separate from the record id (DESIGN "Identifiers").
pub fn case_number(prefix: &str, year: i32, seq: i64) -> String {
    format!("{prefix}-{year}-{seq:06}")
}

/// One changed field: its name, the value before and after (JSON, so any type).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// Fields that differ between two JSON objects (nested `extra` flattened as `extra.code`).
/// The history view and the conflict report both show this.
/// What a ledger entry keeps of a change (issue 4 item 1: "before / after of the fields that
/// changed"): when both states are objects, only the top-level fields whose values differ —
/// a field dropped from the record appears in `before` alone, a new one in `after` alone.
/// Otherwise (creations, events, whole values) the states as given. [`fold_change`] undoes it.
pub fn changed_fields(
    before: Option<&Value>,
    after: Option<&Value>,
) -> (Option<Value>, Option<Value>) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let was: Map<String, Value> = b
                .iter()
                .filter(|(k, v)| a.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let now: Map<String, Value> = a
                .iter()
                .filter(|(k, v)| b.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (Some(Value::Object(was)), Some(Value::Object(now)))
        }
        _ => (before.cloned(), after.cloned()),
    }
}

/// Fold one recorded change into a record's state; `false` when the change does not continue
/// from it.
///
/// A change without `before` (a creation, a value set whole) gives the state outright. One
/// with a `before` object holds the fields that changed ([`changed_fields`]; entries of
/// earlier versions hold whole states, which fold the same way): each field in `before` must
/// be what the state holds, then `after`'s fields are set and the fields only in `before`
/// dropped.
pub fn fold_change(state: &mut Value, before: Option<Value>, after: Option<Value>) -> bool {
    let after = after.unwrap_or(Value::Null);
    let Some(before) = before else {
        *state = after;
        return true;
    };
    match (before, after, &mut *state) {
        (Value::Object(b), Value::Object(a), Value::Object(s)) => {
            if b.iter().any(|(k, v)| s.get(k) != Some(v)) {
                return false;
            }
            for k in b.keys() {
                if !a.contains_key(k) {
                    s.remove(k);
                }
            }
            for (k, v) in a {
                s.insert(k, v);
            }
            true
        }
        (b, a, s) => {
            if b != *s {
                return false;
            }
            *s = a;
            true
        }
    }
}

pub fn diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_into("", before, after, &mut out);
    out
}

fn diff_into(prefix: &str, before: &Value, after: &Value, out: &mut Vec<FieldChange>) {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let bv = b.get(k).unwrap_or(&Value::Null);
        let av = a.get(k).unwrap_or(&Value::Null);
        if bv == av {
            continue;
        }
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if bv.is_object() && av.is_object() {
            diff_into(&name, bv, av, out);
        } else {
            out.push(FieldChange {
                field: name,
                before: bv.clone(),
                after: av.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn changed_fields_fold_back_into_the_next_state() {
        use serde_json::json;
        let was = json!({"a": 1, "b": "x", "gone": true, "same": [1]});
        let now = json!({"a": 2, "b": "x", "new": null, "same": [1]});
        let (before, after) = super::changed_fields(Some(&was), Some(&now));
        assert_eq!(before, Some(json!({"a": 1, "gone": true})));
        assert_eq!(after, Some(json!({"a": 2, "new": null})));
        let mut state = was.clone();
        assert!(super::fold_change(
            &mut state,
            before.clone(),
            after.clone()
        ));
        assert_eq!(state, now);
        // A change that does not start from the state is refused.
        let mut other = json!({"a": 5, "gone": true});
        assert!(!super::fold_change(&mut other, before, after));
        // Whole states (entries of earlier versions) fold alike; creations set the state.
        let mut state = json!(null);
        assert!(super::fold_change(&mut state, None, Some(was.clone())));
        assert!(super::fold_change(&mut state, Some(was), Some(now.clone())));
        assert_eq!(state, now);
    }

    #[test]
    fn effective_dates_are_today_or_before() {
        let today = time::macros::date!(2026 - 11 - 25);
        // Seed 000 §20: entered from the day the information was received.
        assert_eq!(super::validate_effective_on("", today), Ok(None));
        assert_eq!(super::validate_effective_on("25.11.2026", today), Ok(None));
        assert_eq!(
            super::validate_effective_on("01.11.2026", today),
            Ok(Some(time::macros::date!(2026 - 11 - 01)))
        );
        assert_eq!(
            super::validate_effective_on("2026-10-31", today),
            Ok(Some(time::macros::date!(2026 - 10 - 31)))
        );
        assert_eq!(
            super::validate_effective_on("26.11.2026", today),
            Err("future_date")
        );
        assert_eq!(
            super::validate_effective_on("31.02.2026", today),
            Err("bad_date")
        );
        assert_eq!(
            super::validate_effective_on("вчера", today),
            Err("bad_date")
        );
        assert_eq!(
            super::validate_effective_on("01.01.1800", today),
            Err("too_old")
        );
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn normalizes_names_for_search() {
        assert_eq!(normalize_for_search("  Артём   ЁЛКИН "), "артем елкин");
        assert_eq!(normalize_for_search("Үмүт Өмүрбеков"), "үмүт өмүрбеков");
    }

    #[test]
    fn parses_dates_both_ways() {
        assert_eq!(
            parse_date("2015-03-09"),
            Some(time::macros::date!(2015 - 03 - 09))
        );
        assert_eq!(
            parse_date("09.03.2015"),
            Some(time::macros::date!(2015 - 03 - 09))
        );
        assert_eq!(parse_date("31.02.2015"), None);
        assert_eq!(parse_date("2015-3"), None);
        assert_eq!(parse_date(""), None);
        assert_eq!(parse_date("--"), None);
        assert_eq!(parse_date("1.1.99999"), None);
    }

    #[test]
    fn computes_age() {
        let b = time::macros::date!(2010 - 06 - 15);
        assert_eq!(age_on(b, time::macros::date!(2026 - 06 - 14)), 15);
        assert_eq!(age_on(b, time::macros::date!(2026 - 06 - 15)), 16);
    }

    #[test]
    fn money_in_minor_units() {
        assert_eq!(parse_number("1 200,50", true), Some(120050));
        assert_eq!(parse_number("1200", true), Some(120000));
        assert_eq!(parse_number("12.5", true), Some(1250));
        assert_eq!(parse_number("12.505", true), None);
        assert_eq!(parse_number("abc", false), None);
    }

    #[test]
    fn diff_reports_changed_fields_only() {
        let b = json!({"surname": "Асанов", "address": null, "extra": {"school": "№5"}});
        let a = json!({"surname": "Асанова", "address": null, "extra": {"school": "№7"}});
        let d = diff(&b, &a);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].field, "extra.school");
        assert_eq!(d[1].field, "surname");
        assert_eq!(d[1].before, json!("Асанов"));
    }

    proptest::proptest! {
        // Parsers of user input never panic, whatever is typed.
        #[test]
        fn typed_input_never_panics(s in "\\PC{0,40}") {
            let _ = parse_date(&s);
            let _ = parse_number(&s, true);
            let _ = parse_number(&s, false);
            let n = normalize_for_search(&s);
            proptest::prop_assert_eq!(normalize_for_search(&n), n);
        }

        #[test]
        fn iso_dates_round_trip(y in 1900i32..2100, m in 1u8..=12, d in 1u8..=28) {
            let date = Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap();
            proptest::prop_assert_eq!(parse_date(&format_date(date)), Some(date));
            proptest::prop_assert_eq!(parse_date(&format!("{d:02}.{m:02}.{y}")), Some(date));
        }
    }

    #[test]
    fn family_names_in_the_genitive_plural() {
        assert_eq!(family_name("Асанов"), "Семья Асановых");
        assert_eq!(family_name("Асанова"), "Семья Асановых");
        assert_eq!(family_name("Мамытова "), "Семья Мамытовых");
        assert_eq!(family_name("Ким"), "Семья Ким");
    }

    #[test]
    fn case_numbers_are_readable() {
        assert_eq!(case_number("ТЖС", 2026, 42), "ТЖС-2026-000042");
    }
}
