//! Case work (issue 5): the lifecycle, circumstances, assessments, generated plans, activities
//! and monitoring visits of a case. Each use case asks the policy, checks the input, and
//! writes the records, the regenerated plan and the ledger entries in one transaction.

use std::collections::{BTreeMap, HashSet};

use kamkor_domain::casework::{CaseProgress, CaseStep, transition};
use kamkor_domain::policy::{Action, Role, Target, decide};
use kamkor_domain::records::{self, CaseStatus, Problems, SubjectKind, format_date, parse_date};
use kamkor_domain::rules::{ActivityStatus, CaseFacts, ExistingActivity, PlanChange, plan_changes};
use kamkor_store::casework::{CaseRecordRow, OverdueItem};
use kamkor_store::{CaseRow, Tx};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::{Date, Duration};
use uuid::Uuid;

use crate::{App, AppError, AppResult, Ctx};

/// Longest free text of case work (findings, results, reasons).
const MAX_NOTE: usize = 4000;

fn lenient<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => String::new(),
        Value::String(s) => s,
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    })
}

/// A lifecycle step as asked for (issue 5 item 1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StepDraft {
    #[serde(deserialize_with = "lenient")]
    pub step: String,
    /// The case version the user saw.
    pub version: i64,
    #[serde(deserialize_with = "lenient")]
    pub outcome: String,
    #[serde(deserialize_with = "lenient")]
    pub reason: String,
    #[serde(deserialize_with = "lenient")]
    pub agreed_with: String,
    #[serde(deserialize_with = "lenient")]
    pub transfer_territory: String,
    #[serde(deserialize_with = "lenient")]
    pub transfer_org: String,
}

/// A circumstance as typed (seed 000 §20).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CircumstanceDraft {
    #[serde(deserialize_with = "lenient")]
    pub kind: String,
    #[serde(deserialize_with = "lenient")]
    pub note: String,
    /// The day the circumstance arose or became known (empty: today).
    #[serde(deserialize_with = "lenient")]
    pub effective_from: String,
}

/// Ending or correcting a circumstance.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CircumstanceChange {
    pub version: i64,
    /// `end` or `correct`.
    #[serde(deserialize_with = "lenient")]
    pub change: String,
    /// For `end`: the day it ended (empty: today).
    #[serde(deserialize_with = "lenient")]
    pub ended_on: String,
    /// For `correct`: the corrected values.
    #[serde(deserialize_with = "lenient")]
    pub kind: String,
    #[serde(deserialize_with = "lenient")]
    pub note: String,
    #[serde(deserialize_with = "lenient")]
    pub effective_from: String,
    #[serde(deserialize_with = "lenient")]
    pub reason: String,
}

/// An assessment as saved (issue 5 item 3).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AssessmentDraft {
    #[serde(deserialize_with = "lenient")]
    pub form: String,
    pub answers: BTreeMap<String, Value>,
    /// Complete it (all required answers given) rather than keep a draft.
    pub complete: bool,
    /// The draft being continued, with its version.
    pub id: Option<Uuid>,
    pub version: i64,
}

/// A manual activity (issue 5 item 5).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActivityDraft {
    #[serde(deserialize_with = "lenient")]
    pub plan: String,
    #[serde(deserialize_with = "lenient")]
    pub title: String,
    #[serde(deserialize_with = "lenient")]
    pub goal: String,
    #[serde(deserialize_with = "lenient")]
    pub responsible_org: String,
    #[serde(deserialize_with = "lenient")]
    pub due_on: String,
}

/// Progress of an activity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActivityUpdate {
    pub version: i64,
    #[serde(deserialize_with = "lenient")]
    pub status: String,
    #[serde(deserialize_with = "lenient")]
    pub responsible_org: String,
    #[serde(deserialize_with = "lenient")]
    pub responsible_user: String,
    #[serde(deserialize_with = "lenient")]
    pub due_on: String,
    #[serde(deserialize_with = "lenient")]
    pub completed_on: String,
    #[serde(deserialize_with = "lenient")]
    pub result: String,
    #[serde(deserialize_with = "lenient")]
    pub reason: String,
}

/// A monitoring visit (issue 5 item 6).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct VisitDraft {
    #[serde(deserialize_with = "lenient")]
    pub visited_on: String,
    #[serde(deserialize_with = "lenient")]
    pub findings: String,
    /// The next visit (empty: after the profile's monitoring period; never later).
    #[serde(deserialize_with = "lenient")]
    pub next_visit_on: String,
    /// The planned visit this one carries out, with its version, as the user saw it (a second
    /// submission of the same form is then a conflict, not a second visit).
    pub planned: Option<Uuid>,
    pub planned_version: i64,
}

/// Overdue work and waiting transfers for the home pages.
#[derive(Debug, Clone, Default)]
pub struct Agenda {
    pub activities: Vec<OverdueItem>,
    pub visits: Vec<OverdueItem>,
    pub transfers: Vec<CaseRow>,
}

/// Services of a plan, counted for the completeness view (seed 004 §3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Completeness {
    /// Done by the due day.
    pub provided: u32,
    /// Done after the due day.
    pub provided_late: u32,
    /// Still open and past the due day.
    pub overdue: u32,
    /// Still open, not yet due.
    pub pending: u32,
    /// Recorded as not done.
    pub not_provided: u32,
}

impl Completeness {
    pub fn add(&mut self, o: &Completeness) {
        self.provided += o.provided;
        self.provided_late += o.provided_late;
        self.overdue += o.overdue;
        self.pending += o.pending;
        self.not_provided += o.not_provided;
    }
    pub fn total(&self) -> u32 {
        self.provided + self.provided_late + self.overdue + self.pending + self.not_provided
    }
}

/// Count one plan's activities by how they were provided, as of `today`.
pub fn completeness_of<'a>(
    activities: impl Iterator<Item = &'a CaseRecordRow>,
    today: Date,
) -> Completeness {
    let mut c = Completeness::default();
    for a in activities {
        let due = a.text("due_on").and_then(parse_date);
        match a.text("status").and_then(ActivityStatus::parse) {
            Some(ActivityStatus::Done) => {
                let done = a.text("completed_on").and_then(parse_date);
                match (done, due) {
                    (Some(d), Some(u)) if d > u => c.provided_late += 1,
                    _ => c.provided += 1,
                }
            }
            Some(ActivityStatus::NotDone) => c.not_provided += 1,
            Some(ActivityStatus::Planned | ActivityStatus::InProgress) => {
                if due.is_some_and(|u| u < today) {
                    c.overdue += 1
                } else {
                    c.pending += 1
                }
            }
            _ => {}
        }
    }
    c
}

/// One case in the completeness view.
#[derive(Debug, Clone)]
pub struct CompletenessRow {
    pub case: CaseRow,
    pub subject: Option<String>,
    pub counts: Completeness,
}

/// A case being worked on inside one transaction: the case and all its records as they will
/// be after the writes so far, so that the plan is regenerated from the new facts.
struct Work {
    tx: Tx,
    case: CaseRow,
    records: Vec<CaseRecordRow>,
    /// Plans whose activities changed (a new version opens after an approved one).
    revised: HashSet<String>,
}

fn problem(field: &str, code: &str) -> AppError {
    let mut p = Problems::default();
    p.push(field, code);
    AppError::Invalid(p)
}

fn text_or_none(s: &str, field: &str, p: &mut Problems) -> Option<String> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if t.chars().count() > MAX_NOTE {
        p.push(field, "too_long");
        return None;
    }
    Some(t.to_string())
}

/// A day not after today (empty: today).
fn past_day(s: &str, field: &str, today: Date, p: &mut Problems) -> Option<Date> {
    match records::validate_effective_on(s, today) {
        Ok(d) => Some(d.unwrap_or(today)),
        Err(code) => {
            p.push(field, code);
            None
        }
    }
}

impl Work {
    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a CaseRecordRow> + 'a {
        self.records.iter().filter(move |r| r.kind == kind)
    }

    async fn insert(&mut self, kind: &'static str, mut data: Value) -> AppResult<Uuid> {
        let id = Uuid::now_v7();
        if let Value::Object(m) = &mut data {
            m.insert("case_id".into(), Value::String(self.case.id.to_string()));
        }
        self.tx
            .insert_case_record(kind, id, self.case.id, &data)
            .await?;
        let now = self.tx.now().to_string();
        self.records.push(CaseRecordRow {
            id,
            kind: kind.to_string(),
            case_id: self.case.id,
            version: 1,
            data,
            created_at: now.clone(),
            created_by: String::new(),
            updated_at: now,
            updated_by: String::new(),
        });
        Ok(id)
    }

    /// Write a record's new data; a conflict when it changed since `base_version`.
    async fn update(&mut self, id: Uuid, base_version: i64, data: Value) -> AppResult<()> {
        let Some(i) = self.records.iter().position(|r| r.id == id) else {
            return Err(AppError::NotFound);
        };
        let kind: &'static str = match self.records[i].kind.as_str() {
            "circumstance" => "circumstance",
            "assessment" => "assessment",
            "activity" => "activity",
            "plan_version" => "plan_version",
            _ => "visit",
        };
        let current = self.records[i].version;
        if current != base_version {
            return Err(AppError::Conflict {
                current,
                changes: Vec::new(),
            });
        }
        let before = self.records[i].data.clone();
        if before == data {
            return Ok(());
        }
        if !self
            .tx
            .update_case_record(kind, id, base_version, &before, &data)
            .await?
        {
            return Err(AppError::Conflict {
                current: current + 1,
                changes: Vec::new(),
            });
        }
        self.records[i].data = data;
        self.records[i].version += 1;
        Ok(())
    }

    fn set(&mut self, id: Uuid, key: &str, v: Value) -> Option<(i64, Value)> {
        let r = self.records.iter().find(|r| r.id == id)?;
        let mut d = r.data.clone();
        if let Value::Object(m) = &mut d {
            if v.is_null() {
                m.remove(key);
            } else {
                m.insert(key.to_string(), v);
            }
        }
        Some((r.version, d))
    }
}

impl App {
    fn case_in_scope(&self, ctx: &Ctx, case: &CaseRow) -> bool {
        self.within_scope(ctx, Some(&case.territory))
            || case
                .transfer_territory
                .as_deref()
                .is_some_and(|t| self.within_scope(ctx, Some(t)))
    }

    /// Ask the policy about an action on a case (scope: the serving territory, or the one a
    /// waiting transfer goes to).
    pub(crate) async fn check_case(
        &self,
        ctx: &Ctx,
        action: Action,
        case: &CaseRow,
    ) -> AppResult<()> {
        let target = Target::in_scope(self.case_in_scope(ctx, case));
        self.decide_and_record(ctx, action, &target, ("case", &case.id.to_string()))
            .await
    }

    /// Whether the caller may do this to the case (pages offer only what is allowed).
    pub fn may_on_case(&self, ctx: &Ctx, action: Action, case: &CaseRow) -> bool {
        matches!(
            decide(
                &ctx.actor,
                action,
                &Target::in_scope(self.case_in_scope(ctx, case)),
                ctx.now
            ),
            kamkor_domain::policy::Decision::Allow
        )
    }

    /// Whether the caller may record progress of an activity of the given agency kind.
    pub fn may_record_activity(&self, ctx: &Ctx, case: &CaseRow, agency_kind: &str) -> bool {
        matches!(
            decide(
                &ctx.actor,
                Action::RecordActivity,
                &self.activity_target(ctx, case, agency_kind),
                ctx.now
            ),
            kamkor_domain::policy::Decision::Allow
        )
    }

    fn activity_target(&self, ctx: &Ctx, case: &CaseRow, agency_kind: &str) -> Target {
        Target {
            within_scope: Some(self.case_in_scope(ctx, case)),
            section_owners: vec![agency_kind.to_string()],
            ..Target::default()
        }
    }

    /// Load a case for `action`: refused alike when missing or out of scope.
    async fn case_for(&self, ctx: &Ctx, id: Uuid, action: Action) -> AppResult<CaseRow> {
        let sid = id.to_string();
        if action == Action::RecordActivity {
            // An agency specialist may record their own agency's activities; which activity
            // is asked is checked once it is read.
            let target = Target {
                within_scope: Some(true),
                section_owners: vec![ctx.actor.org_kind.clone()],
                ..Target::default()
            };
            self.decide_and_record(ctx, action, &target, ("case", &sid))
                .await?;
        } else {
            self.precheck(ctx, action, ("case", &sid)).await?;
        }
        let Some(case) = self.store.case(id).await? else {
            return Err(self.missing(ctx, action, ("case", &sid)).await);
        };
        if action != Action::RecordActivity {
            self.check_case(ctx, action, &case).await?;
        } else if !self.case_in_scope(ctx, &case) {
            return Err(self.missing(ctx, action, ("case", &sid)).await);
        }
        Ok(case)
    }

    /// Open the transaction of a use case and read the case and its records in it, under the
    /// writer lock (on the transaction's own connection). What was checked before the lock is
    /// checked again: the case is still in the caller's scope, and still open when required.
    async fn begin_work(&self, ctx: &Ctx, case: CaseRow, require_open: bool) -> AppResult<Work> {
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        let Some(case) = tx.read_case(case.id).await? else {
            return Err(AppError::NotFound);
        };
        if !self.case_in_scope(ctx, &case) {
            return Err(AppError::NotFound);
        }
        if require_open && !case.status.is_open() {
            return Err(problem("case", "case_closed"));
        }
        let records = tx.read_case_records(case.id).await?;
        Ok(Work {
            tx,
            case,
            records,
            revised: HashSet::new(),
        })
    }

    /// Regenerate the plans, open new plan versions where needed, and commit.
    async fn finish_work(&self, ctx: &Ctx, mut w: Work) -> AppResult<()> {
        self.regenerate(ctx, &mut w).await?;
        self.open_plan_versions(&mut w).await?;
        w.tx.commit().await?;
        Ok(())
    }

    // ---- facts and generation ----

    /// The facts of a case (its records as written so far in the transaction).
    fn facts(
        &self,
        ctx: &Ctx,
        case: &CaseRow,
        records: &[CaseRecordRow],
        subject: Option<&kamkor_store::PersonRow>,
    ) -> CaseFacts {
        let of_kind = |k: &'static str| records.iter().filter(move |r| r.kind == k);
        let mut facts = CaseFacts {
            categories: case.data.categories.clone(),
            ..CaseFacts::default()
        };
        for c in of_kind("circumstance") {
            if c.text("status") == Some("current")
                && let (Some(k), Some(d)) = (
                    c.text("kind"),
                    c.text("effective_from").and_then(parse_date),
                )
            {
                facts.circumstances.push((k.to_string(), d));
            }
        }
        // Where a case's categories are items of the circumstance classifier (reentry-yugra:
        // the needs chosen when the case is opened, seed 004 §3.1), they are needs recorded on
        // the day of identification.
        let category_classifier = if self.profile.classifier("dls_category").is_some() {
            "dls_category"
        } else {
            "need"
        };
        if category_classifier == self.profile.casework.circumstance_classifier {
            for c in &case.data.categories {
                if !facts.circumstances.iter().any(|(k, _)| k == c) {
                    facts
                        .circumstances
                        .push((c.clone(), case.data.identified_on));
                }
            }
        }
        // The last completed assessment of each form (by the day it was completed, then by
        // its last change).
        let mut completed: Vec<&CaseRecordRow> = of_kind("assessment").collect();
        completed.sort_by(|a, b| {
            (a.text("completed_on"), a.updated_at.as_str())
                .cmp(&(b.text("completed_on"), b.updated_at.as_str()))
        });
        for a in completed {
            if a.text("status") == Some("completed")
                && let (Some(form), Some(Value::Object(ans))) =
                    (a.text("form"), a.data.get("answers"))
            {
                facts.answers.insert(form.to_string(), ans.clone());
            }
        }
        if case.data.subject_kind != SubjectKind::Family
            && let Some(p) = subject
        {
            let d = &p.data;
            let mut m = Map::new();
            if let Some(age) = d.age_on(ctx.today()) {
                m.insert("age".into(), Value::from(age));
            }
            m.insert("sex".into(), Value::String(d.sex.code().into()));
            for (k, v) in [
                ("disability", &d.disability),
                ("legal_status", &d.legal_status),
                ("citizenship", &d.citizenship),
                ("national_id", &d.national_id),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), Value::String(v.clone()));
                }
            }
            m.insert(
                "social_payments".into(),
                Value::Array(
                    d.social_payments
                        .iter()
                        .cloned()
                        .map(Value::String)
                        .collect(),
                ),
            );
            m.insert("extra".into(), Value::Object(d.extra.clone()));
            facts.person = m;
        }
        facts
    }

    /// The organisation of `kind` that serves the case's territory most closely.
    fn serving_agency(&self, territory: &str, kind: &str) -> Option<String> {
        self.profile
            .agencies
            .iter()
            .filter(|a| a.kind == kind && self.profile.territory_within(territory, &a.territory))
            .max_by_key(|a| self.profile.territory_path(&a.territory).len())
            .map(|a| a.code.clone())
    }

    /// Bring the generated activities in line with the case's facts (seed 000 §22).
    async fn regenerate(&self, ctx: &Ctx, w: &mut Work) -> AppResult<()> {
        if !w.case.status.is_open() {
            // A closed case keeps its plan as it was.
            return Ok(());
        }
        let subject = match w.case.data.subject_kind {
            SubjectKind::Family => None,
            _ => w.tx.read_person(w.case.data.subject_id).await?,
        };
        let facts = self.facts(ctx, &w.case, &w.records, subject.as_ref());
        let existing: Vec<ExistingActivity> = w
            .of_kind("activity")
            .map(|a| ExistingActivity {
                id: a.id.to_string(),
                rule: match (
                    a.text("rule_code"),
                    a.data.get("rule_version").and_then(Value::as_u64),
                ) {
                    (Some(c), Some(v)) => Some((c.to_string(), v as u32)),
                    _ => None,
                },
                status: a
                    .text("status")
                    .and_then(ActivityStatus::parse)
                    .unwrap_or(ActivityStatus::Planned),
                retired_by_rules: a.data.get("retired_by_rules") == Some(&Value::Bool(true)),
                // The due day is the rule's until someone changes it by hand.
                rule_due_on: (a.data.get("due_by_rule") == Some(&Value::Bool(true)))
                    .then(|| a.text("due_on").and_then(parse_date))
                    .flatten(),
            })
            .collect();
        let today = ctx.today();
        let rules = &self.profile.rules;
        for change in plan_changes(rules, &facts, &existing, today) {
            match change {
                PlanChange::Add {
                    rule,
                    because,
                    due_on,
                } => {
                    let r = &rules.rules[rule];
                    let data = json!({
                        "plan": r.plan,
                        "origin": "rule",
                        "rule_code": r.code,
                        "rule_version": r.version,
                        "rule_key": format!("{}@{}", r.code, r.version),
                        "title": r.activity.ru,
                        "goal": r.goal.ru,
                        "agency_kind": r.agency_kind,
                        "responsible_org": self.serving_agency(&w.case.territory, &r.agency_kind),
                        "status": "planned",
                        "due_on": format_date(due_on),
                        "due_by_rule": true,
                        "because": because,
                    });
                    w.revised.insert(r.plan.clone());
                    w.insert("activity", strip_nulls(data)).await?;
                }
                PlanChange::Retire { id } => {
                    let Ok(id) = Uuid::parse_str(&id) else {
                        continue;
                    };
                    let Some((v, mut d)) = w.set(id, "status", Value::from("no_longer_needed"))
                    else {
                        continue;
                    };
                    if let Value::Object(m) = &mut d {
                        m.insert("retired_by_rules".into(), Value::Bool(true));
                        m.insert("reason".into(), Value::from("cause_vanished"));
                        if let Some(p) = m.get("plan").and_then(Value::as_str) {
                            w.revised.insert(p.to_string());
                        }
                    }
                    w.update(id, v, d).await?;
                }
                PlanChange::Reschedule { id, due_on } => {
                    let Ok(id) = Uuid::parse_str(&id) else {
                        continue;
                    };
                    let Some((v, d)) = w.set(id, "due_on", Value::String(format_date(due_on)))
                    else {
                        continue;
                    };
                    if let Some(p) = d.get("plan").and_then(Value::as_str) {
                        w.revised.insert(p.to_string());
                    }
                    w.update(id, v, d).await?;
                }
                PlanChange::Revive {
                    id,
                    because,
                    due_on,
                    ..
                } => {
                    let Ok(id) = Uuid::parse_str(&id) else {
                        continue;
                    };
                    let Some((v, mut d)) = w.set(id, "status", Value::from("planned")) else {
                        continue;
                    };
                    if let Value::Object(m) = &mut d {
                        m.remove("retired_by_rules");
                        m.remove("reason");
                        m.insert("due_on".into(), Value::String(format_date(due_on)));
                        m.insert("due_by_rule".into(), Value::Bool(true));
                        m.insert(
                            "because".into(),
                            serde_json::to_value(&because).unwrap_or(Value::Null),
                        );
                        if let Some(p) = m.get("plan").and_then(Value::as_str) {
                            w.revised.insert(p.to_string());
                        }
                    }
                    w.update(id, v, d).await?;
                }
            }
        }
        Ok(())
    }

    /// A plan changed after its approval opens a new draft version; the approved one stays
    /// as it was (issue 5 item 4).
    async fn open_plan_versions(&self, w: &mut Work) -> AppResult<()> {
        let mut plans: Vec<String> = w.revised.drain().collect();
        plans.sort();
        for plan in plans {
            let latest = w
                .of_kind("plan_version")
                .filter(|v| v.text("plan") == Some(plan.as_str()))
                .max_by_key(|v| v.data.get("number").and_then(Value::as_i64).unwrap_or(0));
            let (number, draft) = match latest {
                Some(v) => (
                    v.data.get("number").and_then(Value::as_i64).unwrap_or(0),
                    (v.text("status") == Some("draft")).then(|| (v.id, v.version, v.data.clone())),
                ),
                None => (0, None),
            };
            if let Some((id, version, mut data)) = draft {
                // The draft changed: count the revision, so that an approval of what the
                // supervisor saw before it is refused as out of date.
                if let Value::Object(m) = &mut data {
                    let n = m.get("revision").and_then(Value::as_i64).unwrap_or(0);
                    m.insert("revision".into(), Value::from(n + 1));
                }
                w.update(id, version, data).await?;
            } else {
                w.insert(
                    "plan_version",
                    json!({"plan": plan, "number": number + 1, "status": "draft"}),
                )
                .await?;
            }
        }
        Ok(())
    }

    fn progress(&self, w: &Work, outcome_given: bool) -> CaseProgress {
        // A stage whose profile has no assessment form asks for none (reentry-yugra assesses
        // needs once, before release).
        let completed = |stage: &str| {
            self.profile.assessment_forms(stage).next().is_none()
                || w.of_kind("assessment").any(|a| {
                    a.text("status") == Some("completed") && a.text("stage") == Some(stage)
                })
        };
        // Every plan with activities has an approved version and no draft waiting; a plan
        // whose every activity was retired before it was ever approved is not waited for.
        let plans: HashSet<&str> = w
            .of_kind("activity")
            .filter_map(|a| a.text("plan"))
            .filter(|p| {
                let live = w.of_kind("activity").any(|a| {
                    a.text("plan") == Some(*p) && a.text("status") != Some("no_longer_needed")
                });
                let approved_once = w.of_kind("plan_version").any(|v| {
                    v.text("plan") == Some(*p)
                        && matches!(v.text("status"), Some("approved" | "superseded"))
                });
                live || approved_once
            })
            .collect();
        let plan_approved = !plans.is_empty()
            && plans.iter().all(|p| {
                let versions: Vec<&CaseRecordRow> = w
                    .of_kind("plan_version")
                    .filter(|v| v.text("plan") == Some(p))
                    .collect();
                versions
                    .iter()
                    .any(|v| v.text("status") == Some("approved"))
                    && !versions.iter().any(|v| v.text("status") == Some("draft"))
            });
        CaseProgress {
            initial_assessment_completed: completed("initial_assessment"),
            comprehensive_assessment_completed: completed("comprehensive_assessment"),
            plan_approved,
            outcome_given,
        }
    }

    // ---- lifecycle ----

    /// Take a lifecycle step (issue 5 item 1): allowed or refused by the policy and the
    /// current stage, with a clear reason.
    pub async fn case_step(&self, ctx: &Ctx, id: Uuid, d: &StepDraft) -> AppResult<CaseRow> {
        let Some(step) = CaseStep::parse(d.step.trim()) else {
            self.case_for(ctx, id, Action::WorkCase).await?;
            return Err(problem("step", "unknown_code"));
        };
        let action = match step {
            CaseStep::Close => Action::CloseCase,
            _ => Action::WorkCase,
        };
        let case = self.case_for(ctx, id, action).await?;
        // Only the receiving side accepts a transfer.
        if step == CaseStep::AcceptTransfer
            && !case
                .transfer_territory
                .as_deref()
                .is_some_and(|t| self.within_scope(ctx, Some(t)))
        {
            return Err(problem("step", "transfer_not_yours"));
        }
        let mut p = Problems::default();
        let today = ctx.today();
        let outcome = if step == CaseStep::Close {
            let cls = &self.profile.casework.outcome_classifier;
            match d.outcome.trim() {
                "" => None,
                o if self
                    .profile
                    .classifier(cls)
                    .and_then(|c| c.find(o))
                    .is_some_and(|i| i.valid_on(today)) =>
                {
                    Some(o.to_string())
                }
                _ => {
                    p.push("outcome", "unknown_code");
                    None
                }
            }
        } else {
            None
        };
        let reason = text_or_none(&d.reason, "reason", &mut p);
        let agreed_with = text_or_none(&d.agreed_with, "agreed_with", &mut p);
        if step == CaseStep::Suspend {
            // Seed 000 §20: suspended by agreement with the territorial unit.
            if reason.is_none() {
                p.push("reason", "required");
            }
            if agreed_with.is_none() {
                p.push("agreed_with", "required");
            }
        }
        if step == CaseStep::DeclineTransfer && reason.is_none() {
            p.push("reason", "required");
        }
        let mut transfer = None;
        if step == CaseStep::Transfer {
            let t = d.transfer_territory.trim();
            let o = d.transfer_org.trim();
            if reason.is_none() {
                p.push("reason", "required");
            }
            match self.profile.territory(t) {
                None if t.is_empty() => p.push("transfer_territory", "required"),
                None => p.push("transfer_territory", "unknown_territory"),
                Some(_)
                    if self.profile.territory_within(t, &case.territory)
                        || self.profile.territory_within(&case.territory, t) =>
                {
                    p.push("transfer_territory", "same_territory")
                }
                Some(_) => match self.profile.agency(o) {
                    // None named: the organisation of the same kind serving that territory.
                    None if o.is_empty() => {
                        let kind = self
                            .profile
                            .agency(&case.data.responsible_org)
                            .map(|a| a.kind.clone())
                            .unwrap_or_default();
                        match self.serving_agency(t, &kind) {
                            Some(a) => transfer = Some((t.to_string(), a)),
                            None => p.push("transfer_org", "required"),
                        }
                    }
                    None => p.push("transfer_org", "unknown_code"),
                    Some(a) if !self.profile.territory_within(t, &a.territory) => {
                        p.push("transfer_org", "org_not_serving_territory")
                    }
                    Some(_) => transfer = Some((t.to_string(), o.to_string())),
                },
            }
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        if case.version != d.version {
            return Err(self.conflict("case", id, d.version, case.version).await);
        }
        let mut w = self.begin_work(ctx, case, false).await?;
        if w.case.version != d.version {
            return Err(AppError::Conflict {
                current: w.case.version,
                changes: Vec::new(),
            });
        }
        let progress = self.progress(&w, outcome.is_some());
        let next = transition(w.case.status, w.case.work.resume_to, step, &progress)
            .map_err(|r| problem("step", r.code()))?;
        let before = w.case.clone();
        let mut after = before.clone();
        after.status = next;
        after.status_since = Some(today);
        match step {
            CaseStep::Suspend => {
                after.work.resume_to = Some(before.status);
                after.work.reason = reason;
                after.work.agreed_with = agreed_with;
            }
            CaseStep::Transfer => {
                after.work.resume_to = Some(before.status);
                after.work.reason = reason;
                if let Some((t, o)) = transfer {
                    after.transfer_territory = Some(t);
                    after.work.transfer_org = Some(o);
                }
            }
            CaseStep::Resume => {
                after.work.resume_to = None;
                after.work.agreed_with = None;
                after.work.reason = reason;
            }
            CaseStep::AcceptTransfer => {
                after.work.resume_to = None;
                if let Some(t) = after.transfer_territory.take() {
                    after.territory = t;
                }
                if let Some(o) = after.work.transfer_org.take() {
                    after.data.responsible_org = o;
                }
                after.responsible_user = Some(ctx.user.id.clone());
                after.work.reason = reason;
            }
            CaseStep::DeclineTransfer => {
                after.work.resume_to = None;
                after.transfer_territory = None;
                after.work.transfer_org = None;
                after.work.reason = reason;
            }
            CaseStep::Close => {
                after.work.outcome = outcome;
                after.work.closed_on = Some(format_date(today));
                after.work.reason = reason;
            }
            CaseStep::ActivatePlan if after.work.plan_active_since.is_none() => {
                after.work.plan_active_since = Some(format_date(today));
            }
            _ => {}
        }
        if !w.tx.update_case(&before, &after).await? {
            return Err(AppError::Conflict {
                current: before.version + 1,
                changes: Vec::new(),
            });
        }
        w.case = after.clone();
        w.case.version += 1;
        if step == CaseStep::AcceptTransfer {
            self.move_subject(ctx, &mut w).await?;
            self.hand_over_activities(&mut w).await?;
        }
        if matches!(step, CaseStep::ActivatePlan | CaseStep::RevisePlan) {
            self.schedule_visit(&mut w, None, today).await?;
        }
        self.finish_work(ctx, w).await?;
        self.store.case(id).await?.ok_or(AppError::NotFound)
    }

    /// A transferred child moves with the case: the subject's place of residence becomes the
    /// receiving territory when it lies outside it, so the receiving body can read the file.
    async fn move_subject(&self, _ctx: &Ctx, w: &mut Work) -> AppResult<()> {
        let territory = w.case.territory.clone();
        match w.case.data.subject_kind {
            SubjectKind::Family => {}
            _ => {
                if let Some(p) = w.tx.read_person(w.case.data.subject_id).await?
                    && !p
                        .data
                        .residence_territory
                        .as_deref()
                        .is_some_and(|t| self.profile.territory_within(t, &territory))
                    && self
                        .profile
                        .leaf_territories()
                        .iter()
                        .any(|t| t.code == territory)
                {
                    let mut d = p.data.clone();
                    d.residence_territory = Some(territory);
                    w.tx.update_person(p.id, p.version, &p.data, &d).await?;
                }
            }
        }
        Ok(())
    }

    /// After a transfer, the open activities go to the receiving territory's organisations of
    /// the same kind (a revision of the plans).
    async fn hand_over_activities(&self, w: &mut Work) -> AppResult<()> {
        let territory = w.case.territory.clone();
        let moves: Vec<(Uuid, i64, Value, String)> = w
            .of_kind("activity")
            .filter(|a| {
                a.text("status")
                    .and_then(ActivityStatus::parse)
                    .is_some_and(ActivityStatus::is_open)
            })
            .filter_map(|a| {
                let kind = a.text("agency_kind")?;
                let org = self.serving_agency(&territory, kind)?;
                if a.text("responsible_org") == Some(org.as_str()) {
                    return None;
                }
                let mut d = a.data.clone();
                if let Value::Object(m) = &mut d {
                    m.insert("responsible_org".into(), Value::String(org));
                    m.remove("responsible_user");
                }
                Some((
                    a.id,
                    a.version,
                    d,
                    a.text("plan").unwrap_or_default().to_string(),
                ))
            })
            .collect();
        for (id, version, data, plan) in moves {
            w.update(id, version, data).await?;
            w.revised.insert(plan);
        }
        Ok(())
    }

    /// Plan the next monitoring visit if none is planned (issue 5 item 6).
    async fn schedule_visit(&self, w: &mut Work, on: Option<Date>, today: Date) -> AppResult<()> {
        if w.of_kind("visit")
            .any(|v| v.text("status") == Some("planned"))
        {
            return Ok(());
        }
        let due = on.unwrap_or_else(|| {
            today + Duration::days(i64::from(self.profile.casework.monitoring_every_days))
        });
        w.insert(
            "visit",
            json!({"status": "planned", "due_on": format_date(due)}),
        )
        .await?;
        Ok(())
    }

    // ---- circumstances ----

    /// Add a circumstance (seed 000 §20: entered from the day the information was received).
    pub async fn add_circumstance(
        &self,
        ctx: &Ctx,
        case_id: Uuid,
        d: &CircumstanceDraft,
    ) -> AppResult<Uuid> {
        let case = self.case_for(ctx, case_id, Action::WorkCase).await?;
        let mut p = Problems::default();
        let kind = self.check_circumstance_kind(&d.kind, ctx.today(), &mut p);
        let from = past_day(&d.effective_from, "effective_from", ctx.today(), &mut p);
        let note = text_or_none(&d.note, "note", &mut p);
        if from.is_some_and(|f| f < case.data.identified_on - Duration::days(366 * 18)) {
            p.push("effective_from", "too_old");
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        if !case.status.is_open() {
            return Err(problem("case", "case_closed"));
        }
        let mut w = self.begin_work(ctx, case, true).await?;
        w.tx.set_effective_on(from);
        let id = w
            .insert(
                "circumstance",
                strip_nulls(json!({
                    "kind": kind,
                    "note": note,
                    "effective_from": from.map(format_date),
                    "status": "current",
                })),
            )
            .await?;
        w.tx.set_effective_on(None);
        self.finish_work(ctx, w).await?;
        Ok(id)
    }

    fn check_circumstance_kind(&self, kind: &str, today: Date, p: &mut Problems) -> Option<String> {
        let cls = &self.profile.casework.circumstance_classifier;
        match kind.trim() {
            "" => {
                p.push("kind", "required");
                None
            }
            k => match self.profile.classifier(cls).and_then(|c| c.find(k)) {
                Some(i) if i.valid_on(today) => Some(k.to_string()),
                Some(_) => {
                    p.push("kind", "classifier_item_expired");
                    None
                }
                None => {
                    p.push("kind", "unknown_code");
                    None
                }
            },
        }
    }

    /// End or correct a circumstance; the plan follows.
    pub async fn change_circumstance(
        &self,
        ctx: &Ctx,
        case_id: Uuid,
        id: Uuid,
        d: &CircumstanceChange,
    ) -> AppResult<()> {
        let case = self.case_for(ctx, case_id, Action::WorkCase).await?;
        let Some(rec) = self.store.case_record(id).await? else {
            return Err(self
                .missing(ctx, Action::WorkCase, ("circumstance", &id.to_string()))
                .await);
        };
        if rec.case_id != case_id || rec.kind != "circumstance" {
            return Err(self
                .missing(ctx, Action::WorkCase, ("circumstance", &id.to_string()))
                .await);
        }
        if !case.status.is_open() {
            return Err(problem("case", "case_closed"));
        }
        let today = ctx.today();
        let mut p = Problems::default();
        let mut data = rec.data.clone();
        let effective = match d.change.trim() {
            "end" => {
                if rec.text("status") != Some("current") {
                    return Err(problem("change", "already_ended"));
                }
                let ended = past_day(&d.ended_on, "ended_on", today, &mut p);
                let from = rec.text("effective_from").and_then(parse_date);
                if let (Some(e), Some(f)) = (ended, from)
                    && e < f
                {
                    p.push("ended_on", "before_start");
                }
                let reason = text_or_none(&d.reason, "reason", &mut p);
                if let Value::Object(m) = &mut data {
                    m.insert("status".into(), Value::from("ended"));
                    if let Some(e) = ended {
                        m.insert("effective_to".into(), Value::String(format_date(e)));
                    }
                    if let Some(r) = reason {
                        m.insert("end_reason".into(), Value::String(r));
                    }
                }
                ended
            }
            "correct" => {
                // What is left empty keeps its value.
                let kind = if d.kind.trim().is_empty() {
                    None
                } else {
                    self.check_circumstance_kind(&d.kind, today, &mut p)
                };
                let from = if d.effective_from.trim().is_empty() {
                    None
                } else {
                    past_day(&d.effective_from, "effective_from", today, &mut p)
                };
                if let (Some(f), Some(to)) = (from, rec.text("effective_to").and_then(parse_date))
                    && f > to
                {
                    p.push("effective_from", "after_end");
                }
                let note = text_or_none(&d.note, "note", &mut p);
                let reason = text_or_none(&d.reason, "reason", &mut p);
                if reason.is_none() {
                    // A correction says why the record was wrong.
                    p.push("reason", "required");
                }
                if let Value::Object(m) = &mut data {
                    if let Some(k) = kind {
                        m.insert("kind".into(), Value::String(k));
                    }
                    if let Some(f) = from {
                        m.insert("effective_from".into(), Value::String(format_date(f)));
                    }
                    match note {
                        Some(n) => m.insert("note".into(), Value::String(n)),
                        None => m.remove("note"),
                    };
                    if let Some(r) = reason {
                        m.insert("correction_reason".into(), Value::String(r));
                    }
                }
                from.or_else(|| rec.text("effective_from").and_then(parse_date))
            }
            "" => {
                p.push("change", "required");
                None
            }
            _ => {
                p.push("change", "unknown_code");
                None
            }
        };
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        let mut w = self.begin_work(ctx, case, true).await?;
        w.tx.set_effective_on(effective);
        w.update(id, d.version, data).await?;
        w.tx.set_effective_on(None);
        self.finish_work(ctx, w).await
    }

    // ---- assessments ----

    /// Save an assessment as a draft or complete it (issue 5 item 3). A completed assessment
    /// is kept as it was; a new one is a new record.
    pub async fn save_assessment(
        &self,
        ctx: &Ctx,
        case_id: Uuid,
        d: &AssessmentDraft,
    ) -> AppResult<Uuid> {
        let case = self.case_for(ctx, case_id, Action::WorkCase).await?;
        let Some(form) = self
            .profile
            .forms
            .iter()
            .find(|f| f.applies_to == "assessment" && f.code == d.form.trim())
        else {
            return Err(problem(
                "form",
                if d.form.trim().is_empty() {
                    "required"
                } else {
                    "unknown_code"
                },
            ));
        };
        if !case.status.is_open() {
            return Err(problem("case", "case_closed"));
        }
        let mut p = Problems::default();
        let answers = records::validate_extra(&self.profile, form, &d.answers, ctx.today(), &mut p);
        let mut p = if d.complete {
            p
        } else {
            // A draft may be incomplete.
            Problems(p.0.into_iter().filter(|f| f.code != "required").collect())
        };
        let stage = form.stage.clone().unwrap_or_default();
        // The comprehensive assessment follows the initial one (REFERENCE A.3 S2→S3).
        if stage == "comprehensive_assessment" && case.status == CaseStatus::Identified {
            p.push("form", "stage_not_reached");
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        let mut w = self.begin_work(ctx, case, true).await?;
        // Completing a stage's assessment starts that stage if the case was not in it yet: the
        // initial one from identification, the comprehensive one once the initial is done.
        // Drafts never move the case.
        let step = match (stage.as_str(), w.case.status) {
            _ if !d.complete => None,
            ("initial_assessment", CaseStatus::Identified) => {
                Some(CaseStep::StartInitialAssessment)
            }
            ("comprehensive_assessment", CaseStatus::InitialAssessment) => {
                Some(CaseStep::StartComprehensiveAssessment)
            }
            _ => None,
        };
        if let Some(step) = step {
            let progress = self.progress(&w, false);
            let next = transition(w.case.status, w.case.work.resume_to, step, &progress)
                .map_err(|r| problem("form", r.code()))?;
            let before = w.case.clone();
            let mut after = before.clone();
            after.status = next;
            after.status_since = Some(ctx.today());
            if !w.tx.update_case(&before, &after).await? {
                return Err(AppError::Conflict {
                    current: before.version + 1,
                    changes: Vec::new(),
                });
            }
            w.case = after;
            w.case.version += 1;
        }
        let mut data = json!({
            "form": form.code,
            "form_version": form.version,
            "stage": stage,
            "status": if d.complete { "completed" } else { "draft" },
            "answers": Value::Object(answers),
        });
        if d.complete
            && let Value::Object(m) = &mut data
        {
            m.insert(
                "completed_on".into(),
                Value::String(format_date(ctx.today())),
            );
            m.insert("completed_by".into(), Value::String(ctx.user.id.clone()));
        }
        let id = match d.id {
            Some(id) => {
                let Some(r) = w
                    .records
                    .iter()
                    .find(|r| r.id == id && r.kind == "assessment")
                else {
                    return Err(AppError::NotFound);
                };
                if r.text("status") != Some("draft") {
                    return Err(problem("form", "assessment_completed"));
                }
                if r.text("form") != Some(form.code.as_str()) {
                    return Err(problem("form", "unknown_code"));
                }
                if let (Value::Object(m), Some(case_ref)) = (&mut data, r.data.get("case_id")) {
                    m.insert("case_id".into(), case_ref.clone());
                }
                w.update(id, d.version, data).await?;
                id
            }
            None => w.insert("assessment", data).await?,
        };
        self.finish_work(ctx, w).await?;
        Ok(id)
    }

    // ---- plans ----

    /// Approve the draft version of a plan (issue 5 item 4): its activities are kept with the
    /// version as approved; a case assessed in full moves on to carrying out the plan.
    /// `draft`: the draft version (id, version) the supervisor looked at; when given, approval
    /// is refused as a conflict if the plan changed since.
    pub async fn approve_plan(
        &self,
        ctx: &Ctx,
        case_id: Uuid,
        plan: &str,
        draft: Option<(Uuid, i64)>,
    ) -> AppResult<()> {
        let case = self.case_for(ctx, case_id, Action::ApprovePlan).await?;
        if self.profile.rules.plan(plan).is_none() {
            return Err(problem("plan", "unknown_code"));
        }
        if !case.status.is_open() {
            return Err(problem("plan", "case_closed"));
        }
        let mut w = self.begin_work(ctx, case, true).await?;
        let Some(draft_row) = w
            .of_kind("plan_version")
            .find(|v| v.text("plan") == Some(plan) && v.text("status") == Some("draft"))
            .cloned()
        else {
            return Err(problem("plan", "nothing_to_approve"));
        };
        if let Some((id, version)) = draft
            && (id != draft_row.id || version != draft_row.version)
        {
            return Err(AppError::Conflict {
                current: draft_row.version,
                changes: Vec::new(),
            });
        }
        let draft = draft_row;
        let snapshot: Vec<Value> = w
            .of_kind("activity")
            .filter(|a| a.text("plan") == Some(plan))
            .map(|a| {
                let mut v = a.data.clone();
                if let Value::Object(m) = &mut v {
                    m.insert("id".into(), Value::String(a.id.to_string()));
                    m.remove("case_id");
                }
                v
            })
            .collect();
        // A first version needs something to do; a revision may end every activity (the
        // supervisor confirms the plan is no longer needed).
        let live = snapshot.iter().any(|a| {
            a.get("status")
                .and_then(Value::as_str)
                .and_then(ActivityStatus::parse)
                .is_some_and(|s| s != ActivityStatus::NoLongerNeeded)
        });
        let first = draft.data.get("number").and_then(Value::as_i64) == Some(1);
        if snapshot.is_empty() || (first && !live) {
            return Err(problem("plan", "plan_empty"));
        }
        let approved: Vec<(Uuid, i64, Value)> = w
            .of_kind("plan_version")
            .filter(|v| v.text("plan") == Some(plan) && v.text("status") == Some("approved"))
            .map(|v| (v.id, v.version, v.data.clone()))
            .collect();
        for (id, version, mut data) in approved {
            if let Value::Object(m) = &mut data {
                m.insert("status".into(), Value::from("superseded"));
            }
            w.update(id, version, data).await?;
        }
        let mut data = draft.data.clone();
        if let Value::Object(m) = &mut data {
            m.insert("status".into(), Value::from("approved"));
            m.insert("approved_by".into(), Value::String(ctx.user.id.clone()));
            m.insert(
                "approved_on".into(),
                Value::String(format_date(ctx.today())),
            );
            m.insert("activities".into(), Value::Array(snapshot));
        }
        w.update(draft.id, draft.version, data).await?;
        // A case assessed in full starts carrying out its plan once every plan is approved.
        let progress = self.progress(&w, false);
        if w.case.status == CaseStatus::ComprehensiveAssessment
            && let Ok(next) = transition(w.case.status, None, CaseStep::ActivatePlan, &progress)
        {
            let before = w.case.clone();
            let mut after = before.clone();
            after.status = next;
            after.status_since = Some(ctx.today());
            if after.work.plan_active_since.is_none() {
                after.work.plan_active_since = Some(format_date(ctx.today()));
            }
            if w.tx.update_case(&before, &after).await? {
                w.case = after;
                w.case.version += 1;
                self.schedule_visit(&mut w, None, ctx.today()).await?;
            }
        }
        w.tx.commit().await?;
        Ok(())
    }

    /// Run generation now (after the rules file changed, say); nothing changes when the plan
    /// already follows the facts.
    pub async fn regenerate_plan(&self, ctx: &Ctx, case_id: Uuid) -> AppResult<()> {
        let case = self.case_for(ctx, case_id, Action::WorkCase).await?;
        let w = self.begin_work(ctx, case, true).await?;
        self.finish_work(ctx, w).await
    }

    /// A subject's attributes changed (disability established, legal status, a section filled
    /// by an agency): the plans of their open cases follow (seed 000 §20, §22). Done for the
    /// user who made the change, as its consequence.
    pub(crate) async fn follow_subject_change(&self, ctx: &Ctx, subject_id: Uuid) -> AppResult<()> {
        for case in self.store.cases_of_subject(subject_id).await? {
            if case.status.is_open() && case.status != CaseStatus::Identified {
                let w = self.begin_work(ctx, case, true).await?;
                self.finish_work(ctx, w).await?;
            }
        }
        Ok(())
    }

    /// [`Self::follow_subject_change`] after an edit that is already saved: a failure here must
    /// not turn the saved edit into an error; the plan then follows at the case's next change.
    pub(crate) async fn after_subject_change(&self, ctx: &Ctx, subject_id: Uuid) {
        if let Err(e) = self.follow_subject_change(ctx, subject_id).await {
            tracing::warn!(error = %e, "plans not regenerated after a change of their subject");
        }
    }

    /// The account the system acts as when it keeps plans up to date on its own (and for the
    /// demo): case work in the whole country, recorded as `system`.
    pub fn system_worker_ctx(&self) -> Ctx {
        let root = self
            .profile
            .root_territory()
            .map(|t| t.code.clone())
            .unwrap_or_default();
        self.system_ctx(kamkor_store::UserRow {
            id: "system".into(),
            login: "system".into(),
            full_name: "Система".into(),
            role: "supervisor,specialist".into(),
            scope_territory: root,
            valid_from: "2000-01-01".into(),
            active: true,
            status: "active".into(),
            ..kamkor_store::UserRow::default()
        })
    }

    /// Bring every open case's plans in line with today's facts: ages change with time, and
    /// deadlines counted from a date come due (run daily by the server and by `kamkor plans
    /// regenerate`). A case already in line is not written. Returns the cases looked at.
    pub async fn regenerate_open_cases(&self) -> AppResult<usize> {
        let ctx = self.system_worker_ctx();
        let mut seen = 0;
        for status in [
            CaseStatus::InitialAssessment,
            CaseStatus::ComprehensiveAssessment,
            CaseStatus::PlanActive,
            CaseStatus::Monitoring,
        ] {
            let mut page = 0;
            loop {
                let cases = self
                    .store
                    .list_cases(&kamkor_store::CaseQuery {
                        status: Some(status),
                        limit: 500,
                        offset: page * 500,
                        ..Default::default()
                    })
                    .await?;
                if cases.is_empty() {
                    break;
                }
                for c in cases {
                    seen += 1;
                    let w = self.begin_work(&ctx, c, true).await?;
                    self.finish_work(&ctx, w).await?;
                }
                page += 1;
            }
        }
        Ok(seen)
    }

    // ---- activities ----

    pub async fn add_activity(
        &self,
        ctx: &Ctx,
        case_id: Uuid,
        d: &ActivityDraft,
    ) -> AppResult<Uuid> {
        let case = self.case_for(ctx, case_id, Action::WorkCase).await?;
        let mut p = Problems::default();
        let plan = d.plan.trim();
        if self.profile.rules.plan(plan).is_none() {
            p.push(
                "plan",
                if plan.is_empty() {
                    "required"
                } else {
                    "unknown_code"
                },
            );
        }
        let title = text_or_none(&d.title, "title", &mut p);
        if title.is_none() && d.title.trim().is_empty() {
            p.push("title", "required");
        }
        let goal = text_or_none(&d.goal, "goal", &mut p);
        let org = d.responsible_org.trim();
        let agency = match self.profile.agency(org) {
            None if org.is_empty() => {
                p.push("responsible_org", "required");
                None
            }
            None => {
                p.push("responsible_org", "unknown_code");
                None
            }
            Some(a) => Some(a),
        };
        let due = match d.due_on.trim() {
            "" => {
                p.push("due_on", "required");
                None
            }
            s => match parse_date(s) {
                None => {
                    p.push("due_on", "bad_date");
                    None
                }
                Some(x) => Some(x),
            },
        };
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        if !case.status.is_open() {
            return Err(problem("case", "case_closed"));
        }
        let mut w = self.begin_work(ctx, case, true).await?;
        let id = w
            .insert(
                "activity",
                strip_nulls(json!({
                    "plan": plan,
                    "origin": "manual",
                    "title": title,
                    "goal": goal,
                    "agency_kind": agency.map(|a| a.kind.clone()),
                    "responsible_org": agency.map(|a| a.code.clone()),
                    "status": "planned",
                    "due_on": due.map(format_date),
                })),
            )
            .await?;
        w.revised.insert(plan.to_string());
        self.finish_work(ctx, w).await?;
        Ok(id)
    }

    /// Record an activity's progress or change who answers for it and when (issue 5 item 5).
    /// Changing the responsible, the due day or ending it as no longer needed revises the plan.
    pub async fn update_activity(
        &self,
        ctx: &Ctx,
        case_id: Uuid,
        id: Uuid,
        d: &ActivityUpdate,
    ) -> AppResult<()> {
        let case = self.case_for(ctx, case_id, Action::RecordActivity).await?;
        let Some(rec) = self.store.case_record(id).await? else {
            return Err(self
                .missing(ctx, Action::RecordActivity, ("activity", &id.to_string()))
                .await);
        };
        if rec.case_id != case_id || rec.kind != "activity" {
            return Err(self
                .missing(ctx, Action::RecordActivity, ("activity", &id.to_string()))
                .await);
        }
        let agency_kind = rec.text("agency_kind").unwrap_or_default().to_string();
        let target = self.activity_target(ctx, &case, &agency_kind);
        self.decide_and_record(
            ctx,
            Action::RecordActivity,
            &target,
            ("case", &case_id.to_string()),
        )
        .await?;
        let today = ctx.today();
        let mut p = Problems::default();
        let status = match ActivityStatus::parse(d.status.trim()) {
            Some(s) => Some(s),
            None if d.status.trim().is_empty() => {
                rec.text("status").and_then(ActivityStatus::parse)
            }
            None => {
                p.push("status", "unknown_code");
                None
            }
        };
        let old_status = rec.text("status").and_then(ActivityStatus::parse);
        let mut data = rec.data.clone();
        let mut revised = false;
        let m = match &mut data {
            Value::Object(m) => m,
            _ => return Err(AppError::NotFound),
        };
        let org = d.responsible_org.trim();
        if !org.is_empty() && Some(org) != rec.text("responsible_org") {
            match self.profile.agency(org) {
                None => p.push("responsible_org", "unknown_code"),
                Some(a) if !agency_kind.is_empty() && a.kind != agency_kind => {
                    p.push("responsible_org", "org_wrong_kind")
                }
                Some(a) => {
                    m.insert("responsible_org".into(), Value::String(a.code.clone()));
                    revised = true;
                }
            }
        }
        let user = d.responsible_user.trim();
        if !user.is_empty() && Some(user) != rec.text("responsible_user") {
            match self.store.user(user).await? {
                Some(u) if u.active => {
                    m.insert("responsible_user".into(), Value::String(u.id));
                }
                _ => p.push("responsible_user", "not_found"),
            }
        }
        let due = d.due_on.trim();
        if !due.is_empty() {
            match parse_date(due) {
                None => p.push("due_on", "bad_date"),
                Some(x) if Some(format_date(x).as_str()) != rec.text("due_on") => {
                    m.insert("due_on".into(), Value::String(format_date(x)));
                    // Set by hand: the rule no longer moves it.
                    m.remove("due_by_rule");
                    revised = true;
                }
                Some(_) => {}
            }
        }
        let result = text_or_none(&d.result, "result", &mut p);
        let reason = text_or_none(&d.reason, "reason", &mut p);
        if let Some(s) = status
            && Some(s) != old_status
        {
            m.insert("status".into(), Value::from(s.code()));
            m.remove("retired_by_rules");
            // Taking an activity out of the plan or back into it revises the plan.
            if old_status == Some(ActivityStatus::NoLongerNeeded)
                || s == ActivityStatus::NoLongerNeeded
            {
                revised = true;
            }
            match s {
                ActivityStatus::Done => {
                    let done = past_day(&d.completed_on, "completed_on", today, &mut p);
                    if let Some(x) = done {
                        m.insert("completed_on".into(), Value::String(format_date(x)));
                    }
                }
                ActivityStatus::NotDone | ActivityStatus::NoLongerNeeded => {
                    if reason.is_none() {
                        p.push("reason", "required");
                    }
                    m.remove("completed_on");
                }
                _ => {
                    m.remove("completed_on");
                }
            }
        }
        if let Some(r) = result {
            m.insert("result".into(), Value::String(r));
        }
        if let Some(r) = reason {
            m.insert("reason".into(), Value::String(r));
        }
        // Finished work is kept as recorded (seed 000 §22: generation never touches it).
        if old_status.is_some_and(|s| !s.is_open()) && status == old_status && revised {
            p.push("status", "activity_finished");
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        if !case.status.is_open() {
            return Err(problem("case", "case_closed"));
        }
        let plan = rec.text("plan").unwrap_or_default().to_string();
        let mut w = self.begin_work(ctx, case, true).await?;
        w.update(id, d.version, data).await?;
        if revised {
            w.revised.insert(plan);
        }
        self.open_plan_versions(&mut w).await?;
        w.tx.commit().await?;
        Ok(())
    }

    // ---- monitoring ----

    /// Record a monitoring visit with its findings, and plan the next one (issue 5 item 6).
    pub async fn record_visit(&self, ctx: &Ctx, case_id: Uuid, d: &VisitDraft) -> AppResult<Uuid> {
        let case = self.case_for(ctx, case_id, Action::WorkCase).await?;
        let today = ctx.today();
        let mut p = Problems::default();
        let visited = past_day(&d.visited_on, "visited_on", today, &mut p);
        let findings = text_or_none(&d.findings, "findings", &mut p);
        if findings.is_none() && d.findings.trim().is_empty() {
            p.push("findings", "required");
        }
        let next = match d.next_visit_on.trim() {
            "" => None,
            s => match parse_date(s) {
                None => {
                    p.push("next_visit_on", "bad_date");
                    None
                }
                Some(x) if visited.is_some_and(|v| x <= v) => {
                    p.push("next_visit_on", "not_after_visit");
                    None
                }
                // The profile's period is the longest gap between visits.
                Some(x)
                    if x > visited.unwrap_or(today)
                        + Duration::days(i64::from(
                            self.profile.casework.monitoring_every_days,
                        )) =>
                {
                    p.push("next_visit_on", "beyond_monitoring_period");
                    None
                }
                Some(x) => Some(x),
            },
        };
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        if !matches!(case.status, CaseStatus::PlanActive | CaseStatus::Monitoring) {
            return Err(problem("visited_on", "no_plan_to_monitor"));
        }
        let visited = visited.unwrap_or(today);
        let mut w = self.begin_work(ctx, case, true).await?;
        if !matches!(
            w.case.status,
            CaseStatus::PlanActive | CaseStatus::Monitoring
        ) {
            return Err(problem("visited_on", "no_plan_to_monitor"));
        }
        w.tx.set_effective_on(Some(visited));
        let planned = w
            .of_kind("visit")
            .filter(|v| v.text("status") == Some("planned"))
            .min_by_key(|v| v.text("due_on").map(str::to_string))
            .map(|v| (v.id, v.version, v.data.clone()));
        if let Some(seen) = d.planned
            && planned
                .as_ref()
                .is_none_or(|(id, v, _)| *id != seen || *v != d.planned_version)
        {
            return Err(AppError::Conflict {
                current: planned.as_ref().map_or(0, |(_, v, _)| *v),
                changes: Vec::new(),
            });
        }
        let id = match planned {
            Some((id, version, mut data)) => {
                if let Value::Object(m) = &mut data {
                    m.insert("status".into(), Value::from("done"));
                    m.insert("visited_on".into(), Value::String(format_date(visited)));
                    m.insert(
                        "findings".into(),
                        Value::String(findings.unwrap_or_default()),
                    );
                    m.insert("visited_by".into(), Value::String(ctx.user.id.clone()));
                }
                w.update(id, version, data).await?;
                id
            }
            None => {
                w.insert(
                    "visit",
                    json!({
                        "status": "done",
                        "due_on": format_date(visited),
                        "visited_on": format_date(visited),
                        "findings": findings.unwrap_or_default(),
                        "visited_by": ctx.user.id,
                    }),
                )
                .await?
            }
        };
        w.tx.set_effective_on(None);
        let period = Duration::days(i64::from(self.profile.casework.monitoring_every_days));
        self.schedule_visit(&mut w, Some(next.unwrap_or(visited + period)), today)
            .await?;
        w.tx.commit().await?;
        Ok(id)
    }

    // ---- home pages and views ----

    /// Overdue activities and visits and waiting transfers: the worker's own, or for a
    /// supervisor the whole territory's (issue 5 items 5–6).
    pub async fn agenda(&self, ctx: &Ctx) -> AppResult<Agenda> {
        let own_scope = Some(ctx.user.scope_territory.as_str());
        if !self.may(ctx, Action::ReadRecord, own_scope) {
            return Ok(Agenda::default());
        }
        let scope = self.scope_filter(ctx);
        let whole_team = ctx.actor.roles.contains(&Role::Supervisor)
            || ctx.actor.roles.contains(&Role::TerritorialViewer)
            || ctx.actor.roles.contains(&Role::CentralViewer);
        let user = (!whole_team).then_some(ctx.user.id.as_str());
        let today = ctx.today();
        // An agency specialist sees what their agency answers for; others their own or their
        // team's work.
        let activities = if ctx.actor.roles == [Role::AgencySpecialist] {
            self.store
                .overdue("activity", today, scope.as_deref(), None, 200)
                .await?
                .into_iter()
                .filter(|a| a.record.text("agency_kind") == Some(ctx.actor.org_kind.as_str()))
                .take(50)
                .collect()
        } else {
            self.store
                .overdue("activity", today, scope.as_deref(), user, 50)
                .await?
        };
        let visits = self
            .store
            .overdue("visit", today, scope.as_deref(), user, 50)
            .await?;
        let transfers = if self.may(ctx, Action::WorkCase, own_scope) {
            self.store.incoming_transfers(scope.as_deref()).await?
        } else {
            Vec::new()
        };
        let mut ids: Vec<String> = activities
            .iter()
            .chain(visits.iter())
            .map(|a| a.record.case_id.to_string())
            .chain(transfers.iter().map(|c| c.id.to_string()))
            .collect();
        ids.sort();
        ids.dedup();
        self.record_seen(ctx, "list", "case", &ids, json!({"page": "agenda"}))
            .await?;
        Ok(Agenda {
            activities,
            visits,
            transfers,
        })
    }

    /// Completeness of services (seed 004 §3.1): for each case in scope with a plan, which
    /// services were provided, late or missing, and the totals.
    pub async fn completeness(
        &self,
        ctx: &Ctx,
        plan: &str,
        page: i64,
    ) -> AppResult<(Vec<CompletenessRow>, Completeness, bool)> {
        self.check(ctx, Action::Search, None, ("case", "")).await?;
        if self.profile.rules.plan(plan).is_none() {
            return Err(problem("plan", "unknown_code"));
        }
        let q = kamkor_store::CaseQuery {
            territories: self.scope_filter(ctx),
            limit: crate::PAGE_SIZE + 1,
            offset: page.clamp(0, 10_000) * crate::PAGE_SIZE,
            ..Default::default()
        };
        let cases = self.store.list_cases(&q).await?;
        let more = cases.len() as i64 > crate::PAGE_SIZE;
        let cases: Vec<CaseRow> = cases.into_iter().take(crate::PAGE_SIZE as usize).collect();
        let names = self.subject_names(ctx, &cases).await?;
        let today = ctx.today();
        // The totals cover every case in the user's territory, read in pages.
        let scope = self.scope_filter(ctx);
        let mut total = Completeness::default();
        let mut after = None;
        loop {
            let batch = self
                .store
                .plan_activities(plan, scope.as_deref(), after, 2000)
                .await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            total.add(&completeness_of(batch.iter(), today));
        }
        let mut rows = Vec::new();
        for c in cases {
            let acts = self.store.case_records(c.id, Some("activity")).await?;
            let counts =
                completeness_of(acts.iter().filter(|a| a.text("plan") == Some(plan)), today);
            rows.push(CompletenessRow {
                subject: names.get(&c.data.subject_id).cloned(),
                case: c,
                counts,
            });
        }
        let ids: Vec<String> = rows.iter().map(|r| r.case.id.to_string()).collect();
        self.record_seen(
            ctx,
            "list",
            "case",
            &ids,
            json!({"page": "completeness", "plan": plan}),
        )
        .await?;
        Ok((rows, total, more))
    }

    /// Whether the profile's rules know this (code, version) still.
    pub fn rule_label(&self, code: &str, version: u64, lang: &str) -> Option<String> {
        self.profile
            .rules
            .rule(code)
            .filter(|r| u64::from(r.version) == version)
            .map(|r| r.activity.get(lang).to_string())
    }

    /// Pending work for a case page: the stage's due day.
    pub fn stage_due(&self, case: &CaseRow) -> Option<Date> {
        self.profile.casework.stage_due(
            case.status,
            case.status_since.unwrap_or(case.data.identified_on),
        )
    }
}

fn strip_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    v
}

/// The web layer runs these on a multi-threaded runtime: their futures must be `Send`.
#[cfg(test)]
mod send_check {
    use super::*;
    fn is_send<T: Send>(_: T) {}
    #[allow(dead_code, unused_must_use)]
    fn futures_are_send(app: &App, ctx: &Ctx) {
        let id = Uuid::nil();
        is_send(app.case_step(ctx, id, &StepDraft::default()));
        is_send(app.add_circumstance(ctx, id, &CircumstanceDraft::default()));
        is_send(app.change_circumstance(ctx, id, id, &CircumstanceChange::default()));
        is_send(app.save_assessment(ctx, id, &AssessmentDraft::default()));
        is_send(app.regenerate_plan(ctx, id));
        is_send(app.add_activity(ctx, id, &ActivityDraft::default()));
        is_send(app.update_activity(ctx, id, id, &ActivityUpdate::default()));
        is_send(app.approve_plan(ctx, id, "", None));
        is_send(app.record_visit(ctx, id, &VisitDraft::default()));
        is_send(app.agenda(ctx));
        is_send(app.completeness(ctx, "", 0));
    }
}
