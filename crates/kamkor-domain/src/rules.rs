//! Plan rules (seed 000 item 7.5 and §22; seed 004 §3.1; DESIGN "Cases, plans and rules"):
//! declarative rules of a profile turn a case's facts — categories, circumstances, assessment
//! answers, the subject's attributes — into plan activities. The file format is described in
//! `docs/plan-rules.md`.
//!
//! Everything here is pure: parsing and checking the rules against the profile, evaluating a
//! condition with the facts that made it true (so each activity can say why it exists), and
//! the incremental diff between the activities a case has and the ones the rules call for.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Date, Duration};

use crate::profile::{FieldType, Label, Profile};

/// Deepest nesting of `all`/`any`/`not` accepted.
const MAX_DEPTH: usize = 8;
/// Longest deadline accepted, in days (ten years).
const MAX_DEADLINE_DAYS: u32 = 3650;

/// A plan kind of the profile (the child protection plan, the family work plan, the
/// resocialisation plan).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanKind {
    pub code: String,
    pub label: Label,
}

/// One rule, checked.
#[derive(Debug, Clone)]
pub struct Rule {
    pub code: String,
    pub version: u32,
    pub plan: String,
    pub activity: Label,
    pub goal: Label,
    pub agency_kind: String,
    pub deadline_days: u32,
    /// A date field of the person form the deadline counts from, when filled in.
    pub deadline_from: Option<String>,
    pub source: Option<String>,
    pub when: Condition,
}

/// A comparison of one answer or attribute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compare {
    pub is: Option<Value>,
    pub any_of: Option<Vec<String>>,
    pub at_least: Option<i64>,
    pub below: Option<i64>,
    pub present: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Category(String),
    Circumstance(String),
    /// The last completed assessment on `form` answered `field` so.
    Answer {
        form: String,
        field: String,
        cmp: Compare,
    },
    /// An attribute of the case's subject: `age`, `sex`, … or `extra.<field>`.
    Person {
        attribute: String,
        cmp: Compare,
    },
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// The rules of a profile.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub plans: Vec<PlanKind>,
    pub rules: Vec<Rule>,
}

impl RuleSet {
    pub fn plan(&self, code: &str) -> Option<&PlanKind> {
        self.plans.iter().find(|p| p.code == code)
    }
    pub fn rule(&self, code: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.code == code)
    }
}

// ---- the file as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    plan: Vec<PlanKind>,
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    code: String,
    version: u32,
    plan: String,
    activity: Label,
    goal: Label,
    agency_kind: String,
    deadline_days: u32,
    #[serde(default)]
    deadline_from: Option<String>,
    #[serde(default)]
    source: Option<String>,
    when: toml::Value,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    category: Option<String>,
    circumstance: Option<String>,
    answer: Option<String>,
    person: Option<String>,
    all: Option<Vec<toml::Value>>,
    any: Option<Vec<toml::Value>>,
    not: Option<toml::Value>,
    is: Option<toml::Value>,
    #[serde(rename = "in")]
    in_list: Option<Vec<String>>,
    at_least: Option<i64>,
    below: Option<i64>,
    present: Option<bool>,
}

/// A rule problem: where (`rule[code].when.all[1]`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub key: String,
    pub problem: String,
}

fn rerr(key: impl Into<String>, problem: impl Into<String>) -> RuleError {
    RuleError {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Person attributes a rule may name besides `extra.<field>`, with the classifier whose codes
/// they hold (None: a number or a presence).
const PERSON_ATTRIBUTES: [(&str, Option<&str>); 7] = [
    ("age", None),
    ("sex", None),
    ("disability", Some("disability")),
    ("legal_status", Some("legal_status")),
    ("citizenship", Some("citizenship")),
    ("social_payments", Some("social_payment")),
    ("national_id", None),
];

/// What kind of value a condition compares, for checking its comparison keys.
enum Shape<'a> {
    Number,
    Bool,
    Text,
    Date,
    Codes(&'a str),
    Sex,
}

/// Parse and check the rules file against the loaded profile. `circumstances` is the
/// profile's circumstance classifier.
pub fn parse_rules(
    text: &str,
    profile: &Profile,
    circumstances: &str,
) -> Result<RuleSet, RuleError> {
    let file: RulesFile = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text.get(..s.start).unwrap_or(text).matches('\n').count() + 1);
        rerr(
            line.map_or("(document)".to_string(), |l| format!("line {l}")),
            e.message().to_string(),
        )
    })?;
    let mut plans = HashSet::new();
    for (i, p) in file.plan.iter().enumerate() {
        let key = format!("plan[{}]", p.code);
        if !good_code(&p.code) {
            return Err(rerr(
                format!("plan[{i}].code"),
                "a code is 1–64 characters of a-z, 0-9, _ and -",
            ));
        }
        if !plans.insert(p.code.clone()) {
            return Err(rerr(key, "this plan code is used twice"));
        }
        if p.label.ru.trim().is_empty() {
            return Err(rerr(
                format!("{key}.label.ru"),
                "the Russian label must not be empty",
            ));
        }
    }
    let org_kinds: HashSet<&str> = profile.org_kinds.iter().map(|k| k.code.as_str()).collect();
    let mut seen = HashSet::new();
    let mut rules = Vec::new();
    for (i, r) in file.rule.into_iter().enumerate() {
        if !good_code(&r.code) {
            return Err(rerr(
                format!("rule[{i}].code"),
                format!(
                    "{:?}: a code is 1–64 characters of a-z, 0-9, _ and -",
                    r.code
                ),
            ));
        }
        let key = format!("rule[{}]", r.code);
        if !seen.insert(r.code.clone()) {
            return Err(rerr(key, "this rule code is used twice"));
        }
        if r.version == 0 {
            return Err(rerr(format!("{key}.version"), "versions start at 1"));
        }
        if !plans.contains(&r.plan) {
            return Err(rerr(
                format!("{key}.plan"),
                format!("unknown plan {:?}", r.plan),
            ));
        }
        for (what, l) in [("activity", &r.activity), ("goal", &r.goal)] {
            if l.ru.trim().is_empty() {
                return Err(rerr(
                    format!("{key}.{what}.ru"),
                    "the Russian text must not be empty",
                ));
            }
        }
        if !org_kinds.contains(r.agency_kind.as_str()) {
            return Err(rerr(
                format!("{key}.agency_kind"),
                format!("unknown organisation kind {:?}", r.agency_kind),
            ));
        }
        if r.deadline_days > MAX_DEADLINE_DAYS {
            return Err(rerr(
                format!("{key}.deadline_days"),
                "must be between 0 and 3650",
            ));
        }
        if let Some(f) = &r.deadline_from
            && !matches!(person_field(profile, f), Some(FieldType::Date))
        {
            return Err(rerr(
                format!("{key}.deadline_from"),
                format!("{f:?} is not a date field of the person form"),
            ));
        }
        let when = condition(&r.when, profile, circumstances, &format!("{key}.when"), 0)?;
        rules.push(Rule {
            code: r.code,
            version: r.version,
            plan: r.plan,
            activity: r.activity,
            goal: r.goal,
            agency_kind: r.agency_kind,
            deadline_days: r.deadline_days,
            deadline_from: r.deadline_from,
            source: r.source,
            when,
        });
    }
    Ok(RuleSet {
        plans: file.plan,
        rules,
    })
}

fn good_code(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= 64
        && c.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-')
}

fn person_field(profile: &Profile, code: &str) -> Option<FieldType> {
    profile
        .forms
        .iter()
        .filter(|f| f.applies_to == "person")
        .flat_map(|f| f.fields())
        .find(|(_, fd)| fd.code == code)
        .map(|(_, fd)| fd.kind)
}

fn condition(
    v: &toml::Value,
    profile: &Profile,
    circumstances: &str,
    key: &str,
    depth: usize,
) -> Result<Condition, RuleError> {
    if depth > MAX_DEPTH {
        return Err(rerr(key, "conditions are nested deeper than 8"));
    }
    let raw: RawCondition = v
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| rerr(key, e.message().to_string()))?;
    let heads = [
        raw.category.is_some(),
        raw.circumstance.is_some(),
        raw.answer.is_some(),
        raw.person.is_some(),
        raw.all.is_some(),
        raw.any.is_some(),
        raw.not.is_some(),
    ];
    let n = heads.iter().filter(|h| **h).count();
    if n != 1 {
        return Err(rerr(
            key,
            "a condition has exactly one of category, circumstance, answer, person, all, any, not",
        ));
    }
    let has_cmp = raw.is.is_some()
        || raw.in_list.is_some()
        || raw.at_least.is_some()
        || raw.below.is_some()
        || raw.present.is_some();
    let no_cmp = |c: Condition| {
        if has_cmp {
            Err(rerr(
                key,
                "only answer and person conditions take is, in, at_least, below or present",
            ))
        } else {
            Ok(c)
        }
    };
    if let Some(code) = raw.category {
        // A case's categories come from the same classifier `records::validate_case` uses.
        let cat_cls = if profile.classifier("dls_category").is_some() {
            "dls_category"
        } else {
            "need"
        };
        if !classifier_has(profile, cat_cls, &code) {
            return Err(rerr(
                format!("{key}.category"),
                format!("unknown category {code:?}"),
            ));
        }
        return no_cmp(Condition::Category(code));
    }
    if let Some(code) = raw.circumstance {
        if !classifier_has(profile, circumstances, &code) {
            return Err(rerr(
                format!("{key}.circumstance"),
                format!("{code:?} is not an item of the classifier {circumstances:?}"),
            ));
        }
        return no_cmp(Condition::Circumstance(code));
    }
    for (name, list) in [("all", &raw.all), ("any", &raw.any)] {
        if let Some(items) = list {
            if has_cmp {
                return no_cmp(Condition::All(Vec::new()));
            }
            if items.is_empty() {
                return Err(rerr(format!("{key}.{name}"), "the list is empty"));
            }
            let mut out = Vec::new();
            for (i, it) in items.iter().enumerate() {
                out.push(condition(
                    it,
                    profile,
                    circumstances,
                    &format!("{key}.{name}[{i}]"),
                    depth + 1,
                )?);
            }
            return Ok(if name == "all" {
                Condition::All(out)
            } else {
                Condition::Any(out)
            });
        }
    }
    if let Some(inner) = raw.not {
        if has_cmp {
            return no_cmp(Condition::All(Vec::new()));
        }
        let c = condition(
            &inner,
            profile,
            circumstances,
            &format!("{key}.not"),
            depth + 1,
        )?;
        return Ok(Condition::Not(Box::new(c)));
    }
    let cmp = Compare {
        is: raw.is.map(toml_to_json),
        any_of: raw.in_list,
        at_least: raw.at_least,
        below: raw.below,
        present: raw.present,
    };
    if !has_cmp {
        return Err(rerr(
            key,
            "say what to compare: is, in, at_least, below or present",
        ));
    }
    if let Some(path) = raw.answer {
        let Some((form, field)) = path.split_once('.') else {
            return Err(rerr(
                format!("{key}.answer"),
                "write the answer as form.field",
            ));
        };
        let Some(fd) = profile
            .forms
            .iter()
            .find(|f| f.code == form && f.applies_to == "assessment")
        else {
            return Err(rerr(
                format!("{key}.answer"),
                format!("unknown assessment form {form:?}"),
            ));
        };
        let Some((_, fdef)) = fd.fields().find(|(_, f)| f.code == field) else {
            return Err(rerr(
                format!("{key}.answer"),
                format!("the form {form:?} has no field {field:?}"),
            ));
        };
        check_compare(
            &cmp,
            &field_shape(fdef.kind, fdef.classifier.as_deref()),
            profile,
            key,
        )?;
        return Ok(Condition::Answer {
            form: form.to_string(),
            field: field.to_string(),
            cmp,
        });
    }
    let attribute = raw.person.unwrap_or_default();
    let shape = if let Some(f) = attribute.strip_prefix("extra.") {
        let Some((_, fdef)) = profile
            .forms
            .iter()
            .filter(|x| x.applies_to == "person")
            .flat_map(|x| x.fields())
            .find(|(_, x)| x.code == f)
        else {
            return Err(rerr(
                format!("{key}.person"),
                format!("the person form has no field {f:?}"),
            ));
        };
        field_shape(fdef.kind, fdef.classifier.as_deref())
    } else {
        match PERSON_ATTRIBUTES.iter().find(|(a, _)| *a == attribute) {
            Some(("age", _)) => Shape::Number,
            Some(("sex", _)) => Shape::Sex,
            Some(("national_id", _)) => Shape::Text,
            Some((_, Some(cls))) => Shape::Codes(cls),
            _ => {
                return Err(rerr(
                    format!("{key}.person"),
                    format!(
                        "unknown attribute {attribute:?}; expected age, sex, disability, legal_status, citizenship, social_payments, national_id or extra.<field>"
                    ),
                ));
            }
        }
    };
    check_compare(&cmp, &shape, profile, key)?;
    Ok(Condition::Person { attribute, cmp })
}

fn field_shape(kind: FieldType, classifier: Option<&str>) -> Shape<'_> {
    match kind {
        FieldType::Integer | FieldType::Money => Shape::Number,
        FieldType::Bool => Shape::Bool,
        FieldType::Date => Shape::Date,
        FieldType::Classifier | FieldType::MultiClassifier => {
            Shape::Codes(classifier.unwrap_or(""))
        }
        FieldType::Text | FieldType::Textarea | FieldType::Territory => Shape::Text,
    }
}

fn classifier_has(profile: &Profile, cls: &str, code: &str) -> bool {
    profile
        .classifier(cls)
        .is_some_and(|c| c.find(code).is_some())
}

fn check_compare(
    cmp: &Compare,
    shape: &Shape<'_>,
    profile: &Profile,
    key: &str,
) -> Result<(), RuleError> {
    let numeric = matches!(shape, Shape::Number);
    if (cmp.at_least.is_some() || cmp.below.is_some()) && !numeric {
        return Err(rerr(key, "at_least and below compare numbers only"));
    }
    let check_code = |c: &str, what: &str| -> Result<(), RuleError> {
        match shape {
            Shape::Codes(cls) if !classifier_has(profile, cls, c) => Err(rerr(
                format!("{key}.{what}"),
                format!("{c:?} is not an item of the classifier {cls:?}"),
            )),
            Shape::Sex if !matches!(c, "male" | "female") => {
                Err(rerr(format!("{key}.{what}"), "sex is male or female"))
            }
            Shape::Bool => Err(rerr(
                format!("{key}.{what}"),
                "a yes/no answer is compared with is = true or false",
            )),
            Shape::Number => Err(rerr(
                format!("{key}.{what}"),
                "a number is compared with a number, at_least or below",
            )),
            Shape::Date if crate::records::parse_date(c).is_none() => Err(rerr(
                format!("{key}.{what}"),
                "a date is compared with a date like 2026-01-31",
            )),
            _ => Ok(()),
        }
    };
    if let Some(is) = &cmp.is {
        match (is, shape) {
            (Value::Bool(_), Shape::Bool) => {}
            (Value::Bool(_), _) => {
                return Err(rerr(
                    format!("{key}.is"),
                    "only yes/no fields compare with true or false",
                ));
            }
            (Value::Number(_), Shape::Number) => {}
            (Value::Number(_), _) => {
                return Err(rerr(
                    format!("{key}.is"),
                    "only numbers compare with a number",
                ));
            }
            (Value::String(s), _) => check_code(s, "is")?,
            _ => {
                return Err(rerr(
                    format!("{key}.is"),
                    "compare with a code, a number, true or false",
                ));
            }
        }
    }
    if let Some(list) = &cmp.any_of {
        if list.is_empty() {
            return Err(rerr(format!("{key}.in"), "the list is empty"));
        }
        for c in list {
            check_code(c, "in")?;
        }
    }
    Ok(())
}

fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        other => Value::String(other.to_string()),
    }
}

// ---- facts and evaluation ----

/// What the rules see of a case.
#[derive(Debug, Clone, Default)]
pub struct CaseFacts {
    pub categories: Vec<String>,
    /// Current circumstances: (code, effective from).
    pub circumstances: Vec<(String, Date)>,
    /// The last completed assessment of each form: form code → answers.
    pub answers: BTreeMap<String, Map<String, Value>>,
    /// The subject's attributes: `age`, `sex`, `disability`, … and `extra` (an object).
    pub person: Map<String, Value>,
}

/// One fact that made a rule hold, kept with the activity to explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Because {
    /// `category`, `circumstance`, `answer` or `person`.
    pub fact: String,
    /// The code, `form.field` or attribute.
    pub key: String,
    /// The value found (a code, a number, a date, true/false), or for a negated fact what the
    /// rule wanted not to find.
    pub value: Value,
    /// The rule holds because this was NOT so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negated: bool,
}

impl CaseFacts {
    fn attribute(&self, name: &str) -> Option<&Value> {
        let v = match name.strip_prefix("extra.") {
            Some(f) => self.person.get("extra").and_then(|e| e.get(f)),
            None => self.person.get(name),
        };
        v.filter(|v| !is_empty_value(v))
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn compare(cmp: &Compare, v: Option<&Value>) -> bool {
    let Some(v) = v else {
        return cmp.present == Some(false)
            && cmp.is.is_none()
            && cmp.any_of.is_none()
            && cmp.at_least.is_none()
            && cmp.below.is_none();
    };
    if cmp.present == Some(false) {
        return false;
    }
    let codes: Vec<&str> = match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if let Some(is) = &cmp.is {
        let ok = match (is, v) {
            (Value::String(want), _) => codes.contains(&want.as_str()),
            (want, got) => want == got || want.as_i64().is_some_and(|w| got.as_i64() == Some(w)),
        };
        if !ok {
            return false;
        }
    }
    if let Some(list) = &cmp.any_of
        && !list.iter().any(|c| codes.contains(&c.as_str()))
    {
        return false;
    }
    let num = v.as_i64();
    if let Some(min) = cmp.at_least
        && num.is_none_or(|n| n < min)
    {
        return false;
    }
    if let Some(max) = cmp.below
        && num.is_none_or(|n| n >= max)
    {
        return false;
    }
    true
}

/// Whether the condition holds, and the facts that made it hold.
pub fn evaluate(c: &Condition, facts: &CaseFacts) -> Option<Vec<Because>> {
    match c {
        Condition::Category(code) => facts.categories.contains(code).then(|| {
            vec![Because {
                fact: "category".into(),
                key: code.clone(),
                value: Value::Bool(true),
                negated: false,
            }]
        }),
        Condition::Circumstance(code) => {
            facts
                .circumstances
                .iter()
                .find(|(c, _)| c == code)
                .map(|(_, since)| {
                    vec![Because {
                        fact: "circumstance".into(),
                        key: code.clone(),
                        value: Value::String(crate::records::format_date(*since)),
                        negated: false,
                    }]
                })
        }
        Condition::Answer { form, field, cmp } => {
            let v = facts
                .answers
                .get(form)
                .and_then(|a| a.get(field))
                .filter(|v| !is_empty_value(v));
            compare(cmp, v).then(|| {
                vec![Because {
                    fact: "answer".into(),
                    key: format!("{form}.{field}"),
                    value: v.cloned().unwrap_or(Value::Null),
                    negated: false,
                }]
            })
        }
        Condition::Person { attribute, cmp } => {
            let v = facts.attribute(attribute);
            compare(cmp, v).then(|| {
                vec![Because {
                    fact: "person".into(),
                    key: attribute.clone(),
                    value: v.cloned().unwrap_or(Value::Null),
                    negated: false,
                }]
            })
        }
        Condition::All(items) => {
            let mut out = Vec::new();
            for it in items {
                out.extend(evaluate(it, facts)?);
            }
            Some(out)
        }
        // Every alternative that holds is named: the activity stays while any of them does.
        Condition::Any(items) => {
            let mut out: Option<Vec<Because>> = None;
            for it in items {
                if let Some(b) = evaluate(it, facts) {
                    out.get_or_insert_with(Vec::new).extend(b);
                }
            }
            out
        }
        Condition::Not(inner) => match evaluate(inner, facts) {
            Some(_) => None,
            None => Some(negated_facts(inner, facts)),
        },
    }
}

/// Why a condition does not hold, as negated facts ("no circumstance C05"): for `all`, only
/// the parts that fail; for `any`, every part (they all fail).
fn negated_facts(c: &Condition, facts: &CaseFacts) -> Vec<Because> {
    let one = |fact: &str, key: String, value: Value| Because {
        fact: fact.into(),
        key,
        value,
        negated: true,
    };
    let wanted = |cmp: &Compare| -> Value {
        if let Some(v) = &cmp.is {
            return v.clone();
        }
        if let Some(l) = &cmp.any_of {
            return Value::Array(l.iter().cloned().map(Value::String).collect());
        }
        if cmp.present.is_some() {
            return Value::Bool(true);
        }
        Value::Null
    };
    match c {
        Condition::Category(code) => vec![one("category", code.clone(), Value::Bool(true))],
        Condition::Circumstance(code) => vec![one("circumstance", code.clone(), Value::Null)],
        Condition::Answer { form, field, cmp } => {
            vec![one("answer", format!("{form}.{field}"), wanted(cmp))]
        }
        Condition::Person { attribute, cmp } => vec![one("person", attribute.clone(), wanted(cmp))],
        Condition::All(items) => items
            .iter()
            .filter(|i| evaluate(i, facts).is_none())
            .flat_map(|i| negated_facts(i, facts))
            .collect(),
        Condition::Any(items) => items.iter().flat_map(|i| negated_facts(i, facts)).collect(),
        // Not holding "not X" means X holds: its own facts say why.
        Condition::Not(inner) => evaluate(inner, facts).unwrap_or_default(),
    }
}

// ---- generation ----

/// Status of a plan activity (issue 5 item 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityStatus {
    Planned,
    InProgress,
    Done,
    NotDone,
    NoLongerNeeded,
}

impl ActivityStatus {
    pub const ALL: [ActivityStatus; 5] = [
        ActivityStatus::Planned,
        ActivityStatus::InProgress,
        ActivityStatus::Done,
        ActivityStatus::NotDone,
        ActivityStatus::NoLongerNeeded,
    ];
    pub fn code(self) -> &'static str {
        match self {
            ActivityStatus::Planned => "planned",
            ActivityStatus::InProgress => "in_progress",
            ActivityStatus::Done => "done",
            ActivityStatus::NotDone => "not_done",
            ActivityStatus::NoLongerNeeded => "no_longer_needed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.code() == s)
    }
    /// Work still to do: it can be overdue.
    pub fn is_open(self) -> bool {
        matches!(self, ActivityStatus::Planned | ActivityStatus::InProgress)
    }
}

/// What generation needs to know of an activity a case already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingActivity {
    pub id: String,
    /// (rule code, rule version) for a generated activity; None for a manual one.
    pub rule: Option<(String, u32)>,
    pub status: ActivityStatus,
    /// Made "no longer needed" by generation (not by a person), so it may come back.
    pub retired_by_rules: bool,
    /// The due day, when it is still the one the rule set (nobody changed it by hand).
    pub rule_due_on: Option<Date>,
}

/// One change generation makes to a case's activities.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanChange {
    /// A new activity from rule `rule` (an index into the rule set).
    Add {
        rule: usize,
        because: Vec<Because>,
        due_on: Date,
    },
    /// The cause of a generated activity is gone: it is no longer needed.
    Retire { id: String },
    /// The date a rule's deadline counts from changed (a release date corrected): the open
    /// activity is due on the new day.
    Reschedule { id: String, due_on: Date },
    /// The cause of an activity retired by generation came back.
    Revive {
        id: String,
        rule: usize,
        because: Vec<Because>,
        due_on: Date,
    },
}

/// When an activity of `rule` is due if generated today.
pub fn due_on(rule: &Rule, facts: &CaseFacts, today: Date) -> Date {
    let from = rule
        .deadline_from
        .as_deref()
        .and_then(|f| facts.attribute(&format!("extra.{f}")))
        .and_then(Value::as_str)
        .and_then(crate::records::parse_date)
        .unwrap_or(today);
    from.checked_add(Duration::days(i64::from(rule.deadline_days)))
        .unwrap_or(from)
}

/// The changes that bring a case's generated activities in line with its facts (seed 000
/// §22): new needs add activities, activities whose cause vanished become no longer needed,
/// manual activities and finished work are never touched. Applying the result and calling
/// again returns nothing.
pub fn plan_changes(
    rules: &RuleSet,
    facts: &CaseFacts,
    existing: &[ExistingActivity],
    today: Date,
) -> Vec<PlanChange> {
    let mut out = Vec::new();
    let mut holding: HashSet<(&str, u32)> = HashSet::new();
    for (i, rule) in rules.rules.iter().enumerate() {
        let Some(mut because) = evaluate(&rule.when, facts) else {
            continue;
        };
        // One fact may satisfy several parts of a condition (age ≥ 3 and age < 18): name it once.
        let mut seen = Vec::new();
        because.retain(|b| {
            let fresh = !seen.contains(b);
            if fresh {
                seen.push(b.clone());
            }
            fresh
        });
        holding.insert((rule.code.as_str(), rule.version));
        let have = existing.iter().find(|a| {
            a.rule
                .as_ref()
                .is_some_and(|(c, v)| *c == rule.code && *v == rule.version)
        });
        match have {
            None => out.push(PlanChange::Add {
                rule: i,
                because,
                due_on: due_on(rule, facts, today),
            }),
            Some(a) if a.status == ActivityStatus::NoLongerNeeded && a.retired_by_rules => out
                .push(PlanChange::Revive {
                    id: a.id.clone(),
                    rule: i,
                    because,
                    due_on: due_on(rule, facts, today),
                }),
            Some(a) if a.status.is_open() => {
                // Only deadlines counted from a date of the record move with it; one counted
                // from the day of generation stays.
                let from_date = rule
                    .deadline_from
                    .as_deref()
                    .and_then(|f| facts.attribute(&format!("extra.{f}")))
                    .is_some();
                let due = due_on(rule, facts, today);
                if from_date && a.rule_due_on.is_some_and(|d| d != due) {
                    out.push(PlanChange::Reschedule {
                        id: a.id.clone(),
                        due_on: due,
                    });
                }
            }
            Some(_) => {}
        }
    }
    for a in existing {
        let Some((code, version)) = &a.rule else {
            continue;
        };
        if a.status.is_open() && !holding.contains(&(code.as_str(), *version)) {
            out.push(PlanChange::Retire { id: a.id.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_on_codes_numbers_and_presence() {
        let is = |v: Value| Compare {
            is: Some(v),
            ..Compare::default()
        };
        assert!(compare(
            &is(Value::from("LS04")),
            Some(&Value::from("LS04"))
        ));
        assert!(!compare(
            &is(Value::from("LS04")),
            Some(&Value::from("LS03"))
        ));
        assert!(compare(
            &is(Value::from("SP03")),
            Some(&serde_json::json!(["SP01", "SP03"]))
        ));
        assert!(compare(&is(Value::Bool(false)), Some(&Value::Bool(false))));
        let below = Compare {
            below: Some(18),
            ..Compare::default()
        };
        assert!(compare(&below, Some(&Value::from(17))));
        assert!(!compare(&below, Some(&Value::from(18))));
        assert!(!compare(&below, None));
        let absent = Compare {
            present: Some(false),
            ..Compare::default()
        };
        assert!(compare(&absent, None));
        assert!(!compare(&absent, Some(&Value::from("x"))));
    }

    #[test]
    fn not_explains_what_was_missing() {
        let c = Condition::Not(Box::new(Condition::Circumstance("C05".into())));
        let b = evaluate(&c, &CaseFacts::default()).expect("holds");
        let both = Condition::Not(Box::new(Condition::All(vec![
            Condition::Category("CAT01".into()),
            Condition::Circumstance("C05".into()),
        ])));
        let facts = CaseFacts {
            categories: vec!["CAT01".into()],
            ..CaseFacts::default()
        };
        // Only the part that fails is named.
        let why = evaluate(&both, &facts).expect("holds");
        assert_eq!(why.len(), 1);
        assert_eq!(why[0].key, "C05");
        assert_eq!(b.len(), 1);
        assert!(b[0].negated);
        assert_eq!(b[0].key, "C05");
    }
}
