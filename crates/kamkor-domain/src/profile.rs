//! Profiles as data (DESIGN "One engine, two profiles"): everything that differs between
//! deployments — territories, agencies, classifiers, forms — is read from a profile folder.
//!
//! This module parses and validates the profile files from their text. Reading the folder is
//! the caller's job (the domain crate does no I/O). Every error names the file, the key and the
//! problem, so an operator editing a classifier sees exactly what to fix (seed 004 §6.6–6.7).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use time::Date;

use crate::casework::Casework;
use crate::identifiers::{NationalIdKind, OrgInnKind};
use crate::records::CaseStatus;
use crate::rules::{RuleSet, parse_rules};

/// The files a profile folder holds, in load order.
pub const PROFILE_FILES: [&str; 6] = [
    "profile.toml",
    "territories.toml",
    "organisations.toml",
    "classifiers.toml",
    "forms.toml",
    "plan_rules.toml",
];

/// A label in several languages. Russian is required; Kyrgyz and English where known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub ru: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ky: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

impl Label {
    /// The label in `lang`, falling back to Russian.
    pub fn get(&self, lang: &str) -> &str {
        match lang {
            "ky" => self.ky.as_deref().unwrap_or(&self.ru),
            "en" => self.en.as_deref().unwrap_or(&self.ru),
            _ => &self.ru,
        }
    }
}

fn default_break_glass_hours() -> u8 {
    3
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileMeta {
    pub name: String,
    pub title: Label,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Which national identifier persons carry: `kg_pin` or `ru_snils`.
    pub national_id: String,
    /// Which organisation tax number: `kg_inn` or `ru_inn`.
    pub org_inn: String,
    /// Prefix of human-readable case numbers, e.g. `ТЖС`.
    pub case_number_prefix: String,
    /// Who the main subject of a case is: `child` (tzhs-kg) or `person` (reentry-yugra).
    pub subject: String,
    #[serde(default)]
    pub languages: Vec<String>,
    /// Offset of local time from UTC in hours (times are stored in UTC and shown in local time).
    #[serde(default)]
    pub utc_offset_hours: i8,
    /// How long a break-the-glass grant lasts, in hours (DESIGN "Access"; default 3).
    #[serde(default = "default_break_glass_hours")]
    pub break_glass_hours: u8,
    /// Where the reference facts come from.
    #[serde(default)]
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Territory {
    /// Official code (СОАТЕ for KG, OKTMO for RU).
    pub code: String,
    /// Code of the parent; empty for the root (the country or the okrug).
    #[serde(default)]
    pub parent: String,
    pub level: u8,
    pub kind: String,
    pub name: Label,
    /// Centroid as `[lat, lon]`, for maps.
    pub centroid: [f64; 2],
    /// Verification status of the fact: V, P, M or U (see shared/domain/README.md).
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TerritoriesFile {
    #[serde(default)]
    territory: Vec<Territory>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgKind {
    pub code: String,
    pub name: Label,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    pub code: String,
    pub kind: String,
    pub name: Label,
    /// Territory the agency serves (its scope); a code from territories.toml.
    pub territory: String,
    #[serde(default)]
    pub inn: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganisationsFile {
    #[serde(default)]
    org_kind: Vec<OrgKind>,
    #[serde(default)]
    agency: Vec<Agency>,
}

/// A versioned classifier item: never deleted, only closed by `valid_to`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierItem {
    pub code: String,
    pub label: Label,
    #[serde(deserialize_with = "de_date")]
    pub valid_from: Date,
    #[serde(default, deserialize_with = "de_opt_date")]
    pub valid_to: Option<Date>,
    #[serde(default)]
    pub status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct D {
        #[serde(deserialize_with = "de_date")]
        d: Date,
    }

    #[test]
    fn dates_as_toml_dates_or_strings() {
        let a: D = toml::from_str("d = 2023-04-07").unwrap();
        let b: D = toml::from_str("d = \"2023-04-07\"").unwrap();
        assert_eq!(a.d, b.d);
        assert!(toml::from_str::<D>("d = 2023-04-07T10:00:00").is_err());
        assert!(toml::from_str::<D>("d = \"2023-02-30\"").is_err());
    }
}

impl ClassifierItem {
    pub fn valid_on(&self, day: Date) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|to| day <= to)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classifier {
    pub code: String,
    pub name: Label,
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub source: Option<String>,
    pub item: Vec<ClassifierItem>,
}

impl Classifier {
    pub fn find(&self, code: &str) -> Option<&ClassifierItem> {
        self.item.iter().find(|i| i.code == code)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifiersFile {
    #[serde(default)]
    classifier: Vec<Classifier>,
}

/// Type of a profile-defined field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Textarea,
    Integer,
    /// Money in integer minor units (tyiyn, kopecks).
    Money,
    Date,
    Bool,
    Classifier,
    MultiClassifier,
    Territory,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub code: String,
    pub label: Label,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub classifier: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub max_len: Option<usize>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    #[serde(default)]
    pub help: Option<Label>,
    /// For a date: the code of another date field of the same form this one may not be after
    /// (a notice of release is given before the release, seed 004; УИК РФ ст. 180).
    #[serde(default)]
    pub not_after: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionDef {
    pub code: String,
    pub label: Label,
    /// Organisation kinds that may edit this section (seed 004 §11); everyone else with read
    /// access sees it read-only. Empty: whoever may edit the record.
    #[serde(default)]
    pub owners: Vec<String>,
    #[serde(default)]
    pub field: Vec<FieldDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormDef {
    pub code: String,
    pub label: Label,
    /// What the form describes: `person`, `family`, `case` or `assessment`.
    pub applies_to: String,
    /// For an assessment: the stage it belongs to (`initial_assessment` or
    /// `comprehensive_assessment`).
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub version: u32,
    pub section: Vec<SectionDef>,
}

impl FormDef {
    pub fn fields(&self) -> impl Iterator<Item = (&SectionDef, &FieldDef)> {
        self.section
            .iter()
            .flat_map(|s| s.field.iter().map(move |f| (s, f)))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormsFile {
    #[serde(default)]
    form: Vec<FormDef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    profile: ProfileMeta,
    casework: Casework,
}

/// A loaded, validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub meta: ProfileMeta,
    pub territories: Vec<Territory>,
    pub org_kinds: Vec<OrgKind>,
    pub agencies: Vec<Agency>,
    pub classifiers: Vec<Classifier>,
    pub forms: Vec<FormDef>,
    /// Case-work settings: circumstances, outcomes, stage deadlines (issue 5).
    pub casework: Casework,
    /// Plan rules (`plan_rules.toml`; seed 000 §22, seed 004 §3.1).
    pub rules: RuleSet,
    territory_index: HashMap<String, usize>,
}

/// A profile error: the file, the key (a path like `territory[3].parent`) and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {problem}")]
pub struct ProfileError {
    pub file: String,
    pub key: String,
    pub problem: String,
}

fn err(file: &str, key: impl Into<String>, problem: impl Into<String>) -> ProfileError {
    ProfileError {
        file: file.to_string(),
        key: key.into(),
        problem: problem.into(),
    }
}

fn parse_toml<T: for<'de> Deserialize<'de>>(file: &str, text: &str) -> Result<T, ProfileError> {
    toml::from_str(text).map_err(|e| {
        // toml's message names the key and line; keep its first line, and the span's line.
        let line = e
            .span()
            .map(|s| text.get(..s.start).unwrap_or(text).matches('\n').count() + 1);
        let msg = e.message().to_string();
        let key = match line {
            Some(l) => format!("line {l}"),
            None => "(document)".to_string(),
        };
        err(file, key, msg)
    })
}

/// Classifiers every profile defines, because core record fields use them.
pub const REQUIRED_CLASSIFIERS: [&str; 7] = [
    "citizenship",
    "disability",
    "relation_kind",
    "relative_status",
    "identification_place",
    "identification_source",
    "social_payment",
];
/// Also required when the case subject is a child (seed 000 §18).
pub const REQUIRED_CLASSIFIERS_CHILD: [&str; 2] = ["dls_category", "legal_status"];
/// Also required when the case subject is an adult released person (seed 004 §3.1).
pub const REQUIRED_CLASSIFIERS_PERSON: [&str; 3] = ["penal_institution_type", "need", "service"];

const KNOWN_LANGS: [&str; 3] = ["ru", "ky", "en"];

impl Profile {
    /// Parse and validate a profile from the texts of its files, keyed by file name
    /// (see [`PROFILE_FILES`]). `dir` is only used to name files in errors.
    pub fn from_texts(
        dir: &str,
        files: &BTreeMap<String, String>,
    ) -> Result<Profile, ProfileError> {
        let path = |f: &str| format!("{dir}/{f}");
        let get = |f: &str| -> Result<&String, ProfileError> {
            files
                .get(f)
                .ok_or_else(|| err(&path(f), "(file)", "the file is missing"))
        };
        let pf: ProfileFile = parse_toml(&path("profile.toml"), get("profile.toml")?)?;
        let tf: TerritoriesFile = parse_toml(&path("territories.toml"), get("territories.toml")?)?;
        let of: OrganisationsFile =
            parse_toml(&path("organisations.toml"), get("organisations.toml")?)?;
        let cf: ClassifiersFile = parse_toml(&path("classifiers.toml"), get("classifiers.toml")?)?;
        let ff: FormsFile = parse_toml(&path("forms.toml"), get("forms.toml")?)?;
        let mut profile = Profile {
            meta: pf.profile,
            territories: tf.territory,
            org_kinds: of.org_kind,
            agencies: of.agency,
            classifiers: cf.classifier,
            forms: ff.form,
            casework: pf.casework,
            rules: RuleSet::default(),
            territory_index: HashMap::new(),
        };
        profile.validate(dir)?;
        profile.validate_casework(dir)?;
        let rules_file = path("plan_rules.toml");
        profile.rules = parse_rules(
            get("plan_rules.toml")?,
            &profile,
            &profile.casework.circumstance_classifier,
        )
        .map_err(|e| err(&rules_file, e.key, e.problem))?;
        profile.territory_index = profile
            .territories
            .iter()
            .enumerate()
            .map(|(i, t)| (t.code.clone(), i))
            .collect();
        Ok(profile)
    }

    fn validate(&self, dir: &str) -> Result<(), ProfileError> {
        let f = format!("{dir}/profile.toml");
        let m = &self.meta;
        if m.name.trim().is_empty() {
            return Err(err(&f, "profile.name", "must not be empty"));
        }
        if NationalIdKind::from_code(&m.national_id).is_none() {
            return Err(err(
                &f,
                "profile.national_id",
                format!(
                    "unknown identifier kind {:?}; expected kg_pin or ru_snils",
                    m.national_id
                ),
            ));
        }
        if OrgInnKind::from_code(&m.org_inn).is_none() {
            return Err(err(
                &f,
                "profile.org_inn",
                format!(
                    "unknown INN kind {:?}; expected kg_inn or ru_inn",
                    m.org_inn
                ),
            ));
        }
        if !(-12..=14).contains(&m.utc_offset_hours) {
            return Err(err(
                &f,
                "profile.utc_offset_hours",
                "must be between -12 and 14",
            ));
        }
        if !(1..=24).contains(&m.break_glass_hours) {
            return Err(err(
                &f,
                "profile.break_glass_hours",
                "must be between 1 and 24",
            ));
        }
        if !matches!(m.subject.as_str(), "child" | "person") {
            return Err(err(&f, "profile.subject", "must be child or person"));
        }
        for (i, l) in m.languages.iter().enumerate() {
            if !KNOWN_LANGS.contains(&l.as_str()) {
                return Err(err(
                    &f,
                    format!("profile.languages[{i}]"),
                    format!("unknown language {l:?}"),
                ));
            }
        }
        check_label(&f, "profile.title", &m.title)?;

        // Territories: unique codes, a single root, parents defined earlier or later, levels
        // one deeper than the parent, centroids on the globe.
        let f = format!("{dir}/territories.toml");
        if self.territories.is_empty() {
            return Err(err(&f, "territory", "at least one territory is required"));
        }
        let mut codes: HashMap<&str, &Territory> = HashMap::new();
        for (i, t) in self.territories.iter().enumerate() {
            let key = format!("territory[{i}]");
            if t.code.is_empty() || !t.code.chars().all(|c| c.is_ascii_digit()) {
                return Err(err(
                    &f,
                    format!("{key}.code"),
                    format!("{:?} is not a numeric official code", t.code),
                ));
            }
            if codes.insert(&t.code, t).is_some() {
                return Err(err(
                    &f,
                    format!("{key}.code"),
                    format!("duplicate code {}", t.code),
                ));
            }
            check_label(&f, &format!("{key}.name"), &t.name)?;
            let [lat, lon] = t.centroid;
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(err(
                    &f,
                    format!("{key}.centroid"),
                    "latitude must be within ±90 and longitude within ±180",
                ));
            }
            check_status(&f, &format!("{key}.status"), t.status.as_deref())?;
        }
        let roots: Vec<_> = self
            .territories
            .iter()
            .filter(|t| t.parent.is_empty())
            .collect();
        if roots.len() != 1 {
            return Err(err(
                &f,
                "territory.parent",
                format!(
                    "exactly one root territory (empty parent) is required, found {}",
                    roots.len()
                ),
            ));
        }
        for (i, t) in self.territories.iter().enumerate() {
            if t.parent.is_empty() {
                continue;
            }
            let key = format!("territory[{i}].parent");
            let Some(p) = codes.get(t.parent.as_str()) else {
                return Err(err(
                    &f,
                    key,
                    format!("parent {} of {} is not defined", t.parent, t.code),
                ));
            };
            if t.level != p.level + 1 {
                return Err(err(
                    &f,
                    format!("territory[{i}].level"),
                    format!(
                        "level {} of {} must be one more than its parent's level {}",
                        t.level, t.code, p.level
                    ),
                ));
            }
        }

        // Organisations.
        let f = format!("{dir}/organisations.toml");
        let mut kinds = HashSet::new();
        for (i, k) in self.org_kinds.iter().enumerate() {
            if !kinds.insert(k.code.as_str()) {
                return Err(err(
                    &f,
                    format!("org_kind[{i}].code"),
                    format!("duplicate code {}", k.code),
                ));
            }
            check_label(&f, &format!("org_kind[{i}].name"), &k.name)?;
        }
        if kinds.is_empty() {
            return Err(err(
                &f,
                "org_kind",
                "at least one organisation kind is required",
            ));
        }
        let mut agencies = HashSet::new();
        for (i, a) in self.agencies.iter().enumerate() {
            let key = format!("agency[{i}]");
            if !agencies.insert(a.code.as_str()) {
                return Err(err(
                    &f,
                    format!("{key}.code"),
                    format!("duplicate code {}", a.code),
                ));
            }
            if !kinds.contains(a.kind.as_str()) {
                return Err(err(
                    &f,
                    format!("{key}.kind"),
                    format!("unknown organisation kind {}", a.kind),
                ));
            }
            if !codes.contains_key(a.territory.as_str()) {
                return Err(err(
                    &f,
                    format!("{key}.territory"),
                    format!("unknown territory {}", a.territory),
                ));
            }
            check_label(&f, &format!("{key}.name"), &a.name)?;
            if let (Some(inn), Some(kind)) = (&a.inn, OrgInnKind::from_code(&self.meta.org_inn)) {
                crate::identifiers::normalize_org_inn(kind, inn)
                    .map_err(|e| err(&f, format!("{key}.inn"), e.to_string()))?;
            }
        }

        // Classifiers: unique codes, unique item codes, sane validity periods.
        let f = format!("{dir}/classifiers.toml");
        let mut cls = HashSet::new();
        for (i, c) in self.classifiers.iter().enumerate() {
            let key = format!("classifier[{i}]");
            if !cls.insert(c.code.as_str()) {
                return Err(err(
                    &f,
                    format!("{key}.code"),
                    format!("duplicate classifier {}", c.code),
                ));
            }
            check_label(&f, &format!("{key}.name"), &c.name)?;
            if c.item.is_empty() {
                return Err(err(
                    &f,
                    format!("{key}.item"),
                    format!("classifier {} has no items", c.code),
                ));
            }
            let mut items = HashSet::new();
            for (j, it) in c.item.iter().enumerate() {
                let ikey = format!("{key}.item[{j}]");
                if it.code.trim().is_empty() {
                    return Err(err(&f, format!("{ikey}.code"), "must not be empty"));
                }
                if !items.insert(it.code.as_str()) {
                    return Err(err(
                        &f,
                        format!("{ikey}.code"),
                        format!("duplicate item {} in classifier {}", it.code, c.code),
                    ));
                }
                check_label(&f, &format!("{ikey}.label"), &it.label)?;
                if let Some(to) = it.valid_to
                    && to < it.valid_from
                {
                    return Err(err(
                        &f,
                        format!("{ikey}.valid_to"),
                        "ends before valid_from",
                    ));
                }
                check_status(&f, &format!("{ikey}.status"), it.status.as_deref())?;
            }
        }

        // Core record fields refer to these classifiers by code (seed 000 §18, seed 004 §3.1).
        let required: &[&str] = if self.meta.subject == "child" {
            &REQUIRED_CLASSIFIERS_CHILD
        } else {
            &REQUIRED_CLASSIFIERS_PERSON
        };
        for c in REQUIRED_CLASSIFIERS.iter().chain(required) {
            if !cls.contains(c) {
                return Err(err(
                    &f,
                    "classifier",
                    format!(
                        "the classifier {c} is required by the core records but is not defined"
                    ),
                ));
            }
        }

        // Forms: unique codes; fields typed; classifier fields name a defined classifier;
        // owners name defined organisation kinds.
        let f = format!("{dir}/forms.toml");
        let mut forms = HashSet::new();
        for (i, form) in self.forms.iter().enumerate() {
            let key = format!("form[{i}]");
            if !forms.insert(form.code.as_str()) {
                return Err(err(
                    &f,
                    format!("{key}.code"),
                    format!("duplicate form {}", form.code),
                ));
            }
            if !matches!(
                form.applies_to.as_str(),
                "person" | "family" | "case" | "assessment"
            ) {
                return Err(err(
                    &f,
                    format!("{key}.applies_to"),
                    "must be person, family, case or assessment",
                ));
            }
            let mut fields = HashSet::new();
            for (j, s) in form.section.iter().enumerate() {
                let skey = format!("{key}.section[{j}]");
                check_label(&f, &format!("{skey}.label"), &s.label)?;
                // Record sections name their owners (seed 004 §11); an assessment is filled by
                // whoever works the case.
                if s.owners.is_empty() && form.applies_to != "assessment" {
                    return Err(err(
                        &f,
                        format!("{skey}.owners"),
                        "at least one owning organisation kind is required",
                    ));
                }
                for (o, owner) in s.owners.iter().enumerate() {
                    if !kinds.contains(owner.as_str()) {
                        return Err(err(
                            &f,
                            format!("{skey}.owners[{o}]"),
                            format!("unknown organisation kind {owner}"),
                        ));
                    }
                }
                for (k, fd) in s.field.iter().enumerate() {
                    let fkey = format!("{skey}.field[{k}]");
                    if fd.code.is_empty()
                        || !fd
                            .code
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    {
                        return Err(err(&f, format!("{fkey}.code"), "must be snake_case ASCII"));
                    }
                    if !fields.insert(fd.code.as_str()) {
                        return Err(err(
                            &f,
                            format!("{fkey}.code"),
                            format!("duplicate field {} in form {}", fd.code, form.code),
                        ));
                    }
                    check_label(&f, &format!("{fkey}.label"), &fd.label)?;
                    let needs_cls =
                        matches!(fd.kind, FieldType::Classifier | FieldType::MultiClassifier);
                    match (&fd.classifier, needs_cls) {
                        (None, true) => {
                            return Err(err(
                                &f,
                                format!("{fkey}.classifier"),
                                "a classifier field must name its classifier",
                            ));
                        }
                        (Some(c), true) if !cls.contains(c.as_str()) => {
                            return Err(err(
                                &f,
                                format!("{fkey}.classifier"),
                                format!("unknown classifier {c}"),
                            ));
                        }
                        (Some(_), false) => {
                            return Err(err(
                                &f,
                                format!("{fkey}.classifier"),
                                "only classifier fields name a classifier",
                            ));
                        }
                        _ => {}
                    }
                    if let (Some(min), Some(max)) = (fd.min, fd.max)
                        && min > max
                    {
                        return Err(err(&f, format!("{fkey}.min"), "min is greater than max"));
                    }
                    if let Some(other) = &fd.not_after {
                        let ok = fd.kind == FieldType::Date
                            && form
                                .fields()
                                .any(|(_, x)| &x.code == other && x.kind == FieldType::Date);
                        if !ok {
                            return Err(err(
                                &f,
                                format!("{fkey}.not_after"),
                                format!(
                                    "{other:?} must be another date field of this form, and this field a date"
                                ),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_casework(&self, dir: &str) -> Result<(), ProfileError> {
        let f = format!("{dir}/profile.toml");
        let cw = &self.casework;
        for (key, cls) in [
            (
                "casework.circumstance_classifier",
                &cw.circumstance_classifier,
            ),
            ("casework.outcome_classifier", &cw.outcome_classifier),
        ] {
            if self.classifier(cls).is_none() {
                return Err(err(&f, key, format!("unknown classifier {cls:?}")));
            }
        }
        if !(1..=366).contains(&cw.monitoring_every_days) {
            return Err(err(
                &f,
                "casework.monitoring_every_days",
                "must be between 1 and 366",
            ));
        }
        let mut seen = HashSet::new();
        for (i, s) in cw.stage.iter().enumerate() {
            let key = format!("casework.stage[{i}]");
            match CaseStatus::parse(&s.status) {
                None | Some(CaseStatus::Closed) => {
                    return Err(err(
                        &f,
                        format!("{key}.status"),
                        format!("{:?} is not a stage with a deadline", s.status),
                    ));
                }
                Some(_) if !seen.insert(s.status.clone()) => {
                    return Err(err(
                        &f,
                        format!("{key}.status"),
                        "this stage is listed twice",
                    ));
                }
                Some(_) => {}
            }
            if s.days > 3650 {
                return Err(err(&f, format!("{key}.days"), "must be between 0 and 3650"));
            }
        }
        let ff = format!("{dir}/forms.toml");
        for form in self.forms.iter().filter(|x| x.applies_to == "assessment") {
            if !matches!(
                form.stage.as_deref(),
                Some("initial_assessment" | "comprehensive_assessment")
            ) {
                return Err(err(
                    &ff,
                    format!("form[{}].stage", form.code),
                    "an assessment form names its stage: initial_assessment or comprehensive_assessment",
                ));
            }
        }
        Ok(())
    }

    /// Assessment forms of a stage.
    pub fn assessment_forms(&self, stage: &str) -> impl Iterator<Item = &FormDef> {
        self.forms
            .iter()
            .filter(move |f| f.applies_to == "assessment" && f.stage.as_deref() == Some(stage))
    }

    pub fn national_id_kind(&self) -> NationalIdKind {
        NationalIdKind::from_code(&self.meta.national_id).unwrap_or(NationalIdKind::KgPin)
    }

    pub fn org_inn_kind(&self) -> OrgInnKind {
        OrgInnKind::from_code(&self.meta.org_inn).unwrap_or(OrgInnKind::Kg)
    }

    pub fn territory(&self, code: &str) -> Option<&Territory> {
        self.territory_index
            .get(code)
            .map(|&i| &self.territories[i])
    }

    pub fn root_territory(&self) -> Option<&Territory> {
        self.territories.iter().find(|t| t.parent.is_empty())
    }

    /// Territory path from the root down to `code` (inclusive), e.g. for "Oblast / District".
    pub fn territory_path(&self, code: &str) -> Vec<&Territory> {
        let mut out = Vec::new();
        let mut cur = self.territory(code);
        while let Some(t) = cur {
            out.push(t);
            if out.len() > 16 {
                break;
            }
            cur = if t.parent.is_empty() {
                None
            } else {
                self.territory(&t.parent)
            };
        }
        out.reverse();
        out
    }

    /// Whether `code` lies in the subtree of `ancestor` (inclusive).
    pub fn territory_within(&self, code: &str, ancestor: &str) -> bool {
        self.territory_path(code).iter().any(|t| t.code == ancestor)
    }

    /// Territories with no children: the places a person lives in or a case is identified in.
    pub fn leaf_territories(&self) -> Vec<&Territory> {
        let parents: HashSet<&str> = self.territories.iter().map(|t| t.parent.as_str()).collect();
        self.territories
            .iter()
            .filter(|t| !parents.contains(t.code.as_str()))
            .collect()
    }

    pub fn classifier(&self, code: &str) -> Option<&Classifier> {
        self.classifiers.iter().find(|c| c.code == code)
    }

    pub fn form(&self, code: &str) -> Option<&FormDef> {
        self.forms.iter().find(|f| f.code == code)
    }

    pub fn agency(&self, code: &str) -> Option<&Agency> {
        self.agencies.iter().find(|a| a.code == code)
    }
}

/// A date written either as a TOML date (`2023-04-07`) or as a string (`"2023-04-07"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum DateRepr {
    Text(String),
    Toml(toml::value::Datetime),
}

fn date_from_repr<E: serde::de::Error>(r: DateRepr) -> Result<Date, E> {
    let text = match r {
        DateRepr::Text(s) => s,
        DateRepr::Toml(d) => match (d.date, d.time) {
            (Some(day), None) => format!("{:04}-{:02}-{:02}", day.year, day.month, day.day),
            _ => return Err(E::custom("expected a date without a time, like 2023-04-07")),
        },
    };
    crate::records::parse_date(&text)
        .ok_or_else(|| E::custom(format!("{text:?} is not a date like 2023-04-07")))
}

fn de_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
    date_from_repr(DateRepr::deserialize(d)?)
}

fn de_opt_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
    match Option::<DateRepr>::deserialize(d)? {
        None => Ok(None),
        Some(r) => date_from_repr(r).map(Some),
    }
}

fn check_label(file: &str, key: &str, l: &Label) -> Result<(), ProfileError> {
    if l.ru.trim().is_empty() {
        return Err(err(
            file,
            format!("{key}.ru"),
            "the Russian label must not be empty",
        ));
    }
    Ok(())
}

fn check_status(file: &str, key: &str, s: Option<&str>) -> Result<(), ProfileError> {
    match s {
        None | Some("V" | "P" | "M" | "U") => Ok(()),
        Some(other) => Err(err(
            file,
            key,
            format!("status {other:?} must be one of V, P, M, U"),
        )),
    }
}
