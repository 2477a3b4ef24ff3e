//! Case work pages (issue 5): the lifecycle, circumstances, assessments, plans with their
//! activities, monitoring visits on the case card, a page per form, the home page's overdue
//! work and the completeness of services (seed 004 §3.1). Server-rendered, no script needed.

use std::collections::BTreeMap;

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use kamkor_app::casework::{
    ActivityDraft, ActivityUpdate, Agenda, AssessmentDraft, CircumstanceChange, CircumstanceDraft,
    Completeness, StepDraft, VisitDraft,
};
use kamkor_app::{AppError, CaseCard};
use kamkor_domain::casework::{CaseStep, steps_from};
use kamkor_domain::policy::Action;
use kamkor_domain::profile::{FieldType, FormDef};
use kamkor_domain::records::{CaseStatus, Problems, parse_date};
use kamkor_domain::rules::{ActivityStatus, Because};
use kamkor_store::CaseRow;
use kamkor_store::casework::CaseRecordRow;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::html::{
    Input, classifier_label, classifier_options, display_date, display_date_str, display_ts,
    error_summary, extra_display, extra_input, hidden_csrf, layout, select, territory_name,
    territory_select, text_input,
};
use crate::i18n::{Lang, t};
use crate::pages::{
    FormData, PageResult, csrf_failed, page, pe, problem_status, render, status_label,
};
use crate::{AppState, PageAuth};

const L: Lang = Lang::Ru;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases/{id}/steps", axum::routing::post(step_submit))
        .route("/cases/{id}/steps/{step}", get(step_form))
        .route(
            "/cases/{id}/circumstances",
            axum::routing::post(circumstance_add),
        )
        .route(
            "/cases/{id}/circumstances/{cid}",
            get(circumstance_page).post(circumstance_change),
        )
        .route("/cases/{id}/assessments/new", get(assessment_new))
        .route(
            "/cases/{id}/assessments",
            axum::routing::post(assessment_submit),
        )
        .route("/cases/{id}/assessments/{aid}", get(assessment_page))
        .route(
            "/cases/{id}/plans/{plan}/approve",
            axum::routing::post(plan_approve),
        )
        .route("/cases/{id}/plan-versions/{vid}", get(plan_version_page))
        .route(
            "/cases/{id}/activities/new",
            get(activity_new).post(activity_add),
        )
        .route(
            "/cases/{id}/activities/{aid}",
            get(activity_page).post(activity_submit),
        )
        .route("/cases/{id}/visits", axum::routing::post(visit_submit))
        .route("/completeness", get(completeness_page))
}

/// An id from the path; a malformed one is answered like a missing record. (The page handlers
/// answer `Result<Response, Response>`; the error is the page itself.)
#[allow(clippy::result_large_err)]
fn ids(id: &str) -> Result<Uuid, Response> {
    Uuid::parse_str(id).map_err(|_| pe(AppError::NotFound))
}

/// The case card and the position of one of its records of `kind` (both from the path); a
/// malformed id, another case's record or a missing one are answered alike.
#[allow(clippy::result_large_err)]
async fn card_with_record(
    s: &AppState,
    auth: &PageAuth,
    id: &str,
    rid: &str,
    kind: &str,
) -> Result<(CaseCard, usize), Response> {
    let (id, rid) = (ids(id)?, ids(rid)?);
    let card = s.app.case_card(&auth.ctx, id).await.map_err(pe)?;
    match card
        .records
        .iter()
        .position(|r| r.id == rid && r.kind == kind)
    {
        Some(i) => Ok((card, i)),
        None => Err(pe(AppError::NotFound)),
    }
}

fn field_label(f: &str) -> String {
    let k = format!("cw_field_{}", f.rsplit('.').next().unwrap_or(f));
    let v = t(L, &k);
    if v == "?" {
        f.to_string()
    } else {
        v.to_string()
    }
}

fn of_kind<'a>(card: &'a CaseCard, kind: &'a str) -> impl Iterator<Item = &'a CaseRecordRow> + 'a {
    card.records.iter().filter(move |r| r.kind == kind)
}

fn date_text(r: &CaseRecordRow, key: &str) -> String {
    r.text(key).map(display_date_str).unwrap_or_default()
}

fn org_name(s: &AppState, code: Option<&str>) -> String {
    match code {
        Some(c) => s
            .app
            .profile
            .agency(c)
            .map(|a| a.name.get(L.code()).to_string())
            .unwrap_or_else(|| c.to_string()),
        None => t(L, "cw_org_unassigned").to_string(),
    }
}

fn kind_name(s: &AppState, code: &str) -> String {
    s.app
        .profile
        .org_kinds
        .iter()
        .find(|k| k.code == code)
        .map(|k| k.name.get(L.code()).to_string())
        .unwrap_or_else(|| code.to_string())
}

fn activity_status_label(code: &str) -> &'static str {
    t(L, &format!("cw_activity_{code}"))
}

fn step_label(step: CaseStep) -> &'static str {
    t(L, &format!("cw_step_{}", step.code()))
}

/// Steps that ask for more than a click.
fn step_needs_form(step: CaseStep) -> bool {
    matches!(
        step,
        CaseStep::Suspend
            | CaseStep::Transfer
            | CaseStep::Close
            | CaseStep::DeclineTransfer
            | CaseStep::Resume
    )
}

/// The activity's title in the page's language: the rule's text while that version of the
/// rule exists, otherwise what was stored.
fn activity_title(s: &AppState, a: &CaseRecordRow) -> String {
    if let (Some(code), Some(v)) = (
        a.text("rule_code"),
        a.data.get("rule_version").and_then(Value::as_u64),
    ) && let Some(label) = s.app.rule_label(code, v, L.code())
    {
        return label;
    }
    a.text("title").unwrap_or_default().to_string()
}

fn explanation(s: &AppState, a: &CaseRecordRow) -> Vec<String> {
    a.data
        .get("because")
        .and_then(|b| serde_json::from_value::<Vec<Because>>(b.clone()).ok())
        .unwrap_or_default()
        .iter()
        .map(|b| explain(&s.app.profile, b, L.code()))
        .collect()
}

/// Explain why an activity exists, in the user's language: the facts behind it.
pub(crate) fn explain(
    p: &kamkor_domain::profile::Profile,
    because: &Because,
    lang: &str,
) -> String {
    let item = |cls: &str, code: &str| {
        p.classifier(cls)
            .and_then(|c| c.find(code))
            .map(|i| i.label.get(lang).to_string())
            .unwrap_or_else(|| code.to_string())
    };
    let value_text = |v: &Value, cls: Option<&str>| match v {
        Value::String(s) => cls.map_or_else(|| s.clone(), |c| item(c, s)),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| cls.map_or_else(|| s.to_string(), |c| item(c, s)))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Bool(true) => "да".into(),
        Value::Bool(false) => "нет".into(),
        Value::Null => (if lang == "en" {
            "not given"
        } else {
            "не указано"
        })
        .into(),
        other => other.to_string(),
    };
    let text = match because.fact.as_str() {
        "category" => format!(
            "{}: {}",
            p.classifier("dls_category")
                .map_or("Категория", |c| c.name.get(lang)),
            item("dls_category", &because.key)
        ),
        "circumstance" => {
            let cls = &p.casework.circumstance_classifier;
            let name = item(cls, &because.key);
            match &because.value {
                Value::String(since) if !because.negated => format!(
                    "{name} ({} {})",
                    if lang == "en" { "since" } else { "с" },
                    parse_date(since)
                        .map(|d| format!("{:02}.{:02}.{}", d.day(), u8::from(d.month()), d.year()))
                        .unwrap_or_else(|| since.clone())
                ),
                _ => name,
            }
        }
        "answer" => {
            let (form, field) = because.key.split_once('.').unwrap_or(("", &because.key));
            let f = p.form(form);
            let fd = f.and_then(|f| f.fields().find(|(_, x)| x.code == field).map(|(_, x)| x));
            format!(
                "{} — {}: {}",
                f.map_or(form, |f| f.label.get(lang)),
                fd.map_or(field, |x| x.label.get(lang)),
                value_text(&because.value, fd.and_then(|x| x.classifier.as_deref()))
            )
        }
        _ => {
            let (label, cls): (String, Option<&str>) = match because.key.as_str() {
                "age" => ("Возраст".into(), None),
                "sex" => ("Пол".into(), None),
                "disability" => ("Инвалидность".into(), Some("disability")),
                "legal_status" => ("Правовой статус".into(), Some("legal_status")),
                "citizenship" => ("Гражданство".into(), Some("citizenship")),
                "social_payments" => ("Социальные выплаты".into(), Some("social_payment")),
                "national_id" => ("Идентификационный номер".into(), None),
                k => {
                    let f = k.strip_prefix("extra.").unwrap_or(k);
                    let fd = p
                        .forms
                        .iter()
                        .filter(|x| x.applies_to == "person")
                        .flat_map(|x| x.fields())
                        .find(|(_, x)| x.code == f)
                        .map(|(_, x)| x);
                    (
                        fd.map_or(f.to_string(), |x| x.label.get(lang).to_string()),
                        fd.and_then(|x| x.classifier.as_deref()),
                    )
                }
            };
            let v = if because.key == "national_id" && !because.negated {
                "указан".to_string()
            } else {
                value_text(&because.value, cls)
            };
            if because.negated {
                // A yes/no the rule wanted not to find reads as its opposite.
                if let Value::Bool(b) = because.value {
                    return format!("{label}: {}", value_text(&Value::Bool(!b), None));
                }
                // What the rule wanted not to find: "Социальные выплаты: не ЕСП".
                let not = if lang == "en" { "not" } else { "не" };
                return format!("{label}: {not} {}", v.replace(", ", " / "));
            }
            format!("{label}: {v}")
        }
    };
    if because.negated {
        format!("{} {text}", if lang == "en" { "not:" } else { "нет:" })
    } else {
        text
    }
}

fn is_overdue(a: &CaseRecordRow, today: time::Date) -> bool {
    let open = a
        .text("status")
        .and_then(ActivityStatus::parse)
        .is_some_and(ActivityStatus::is_open)
        || a.text("status") == Some("planned");
    open && a
        .text("due_on")
        .and_then(parse_date)
        .is_some_and(|d| d < today)
}

/// The case-work sections of the case card.
pub(crate) fn work_sections(s: &AppState, auth: &PageAuth, card: &CaseCard) -> Markup {
    let c = &card.case;
    let ctx = &auth.ctx;
    let app = &s.app;
    let pr = &app.profile;
    let csrf = auth.session.csrf_token.as_str();
    let today = ctx.today();
    let open = c.status.is_open();
    let works = open && app.may_on_case(ctx, Action::WorkCase, c);
    let due = app.stage_due(c);
    let since = c.status_since.unwrap_or(c.data.identified_on);
    let steps: Vec<CaseStep> = steps_from(c.status)
        .into_iter()
        .filter(|st| match st {
            CaseStep::Close => app.may_on_case(ctx, Action::CloseCase, c),
            CaseStep::AcceptTransfer => {
                works
                    && c.transfer_territory
                        .as_deref()
                        .is_some_and(|t| pr.territory_within(t, &ctx.user.scope_territory))
            }
            _ => works,
        })
        .collect();
    let visits: Vec<&CaseRecordRow> = of_kind(card, "visit").collect();
    let visit_overdue = visits
        .iter()
        .any(|v| v.text("status") == Some("planned") && is_overdue(v, today));
    let cls = &pr.casework.circumstance_classifier;
    let circumstances: Vec<&CaseRecordRow> = of_kind(card, "circumstance").collect();
    let assessments: Vec<&CaseRecordRow> = of_kind(card, "assessment").collect();
    html! {
        section.card #lifecycle {
            h2 { (t(L, "cw_lifecycle")) }
            dl.facts {
                div { dt { (t(L, "cw_stage")) } dd { strong { (status_label(c.status)) } " " span.muted { (t(L, "cw_since")) " " (display_date(since)) } } }
                @if let Some(d) = due {
                    @if open {
                        div { dt { (t(L, "cw_stage_due")) } dd {
                            @if d < today { strong.overdue { (display_date(d)) " — " (t(L, "cw_overdue")) } } @else { (display_date(d)) }
                        } }
                    }
                }
                (dl_row(t(L, "cw_serving_territory"), territory_name(pr, L, &c.territory)))
                @if let Some(t2) = &c.transfer_territory {
                    (dl_row(t(L, "cw_transfer_to"), format!("{} — {}", territory_name(pr, L, t2), org_name(s, c.work.transfer_org.as_deref()))))
                }
                @if let Some(r) = &c.work.reason { (dl_row(t(L, "cw_reason"), r.clone())) }
                @if let Some(a) = &c.work.agreed_with { (dl_row(t(L, "cw_agreed_with"), a.clone())) }
                @if let Some(o) = &c.work.outcome {
                    (dl_row(t(L, "cw_outcome"), classifier_label(pr, L, &pr.casework.outcome_classifier, o)))
                }
                @if let Some(d) = &c.work.closed_on { (dl_row(t(L, "cw_closed_on"), display_date_str(d))) }
            }
            @if !steps.is_empty() {
                div.actions.steps {
                    @for st in &steps {
                        @if step_needs_form(*st) {
                            a.button.secondary href={ "/cases/" (c.id) "/steps/" (st.code()) } { (step_label(*st)) "…" }
                        } @else {
                            form method="post" action={ "/cases/" (c.id) "/steps" } class="inline" {
                                (hidden_csrf(csrf))
                                input type="hidden" name="step" value=(st.code());
                                input type="hidden" name="version" value=(c.version);
                                button.primary type="submit" { (step_label(*st)) }
                            }
                        }
                    }
                }
                p.hint { (t(L, "cw_steps_hint")) }
            }
        }

        section.card #circumstances {
            h2 { (t(L, "cw_circumstances")) }
            p.hint { (t(L, "cw_circumstances_hint")) }
            @if circumstances.is_empty() { p { (t(L, "cw_none")) } } @else {
                table {
                    thead { tr { th { (t(L, "cw_circumstance")) } th { (t(L, "cw_effective_from")) } th { (t(L, "cw_ended")) } th { (t(L, "cw_note")) } th { (t(L, "cw_recorded")) } th {} } }
                    tbody {
                        @for r in &circumstances {
                            @let ended = r.text("status") == Some("ended");
                            tr.ended[ended] {
                                td { (classifier_label(pr, L, cls, r.text("kind").unwrap_or_default())) }
                                td { (date_text(r, "effective_from")) }
                                td { @if ended { (date_text(r, "effective_to")) } @else { span.badge { (t(L, "cw_current")) } } }
                                td { (r.text("note").unwrap_or_default()) }
                                td { (display_ts(pr, &r.created_at)) }
                                td { @if works { a href={ "/cases/" (c.id) "/circumstances/" (r.id) } { (t(L, "cw_change")) } } }
                            }
                        }
                    }
                }
            }
            @if works {
                details.add open[circumstances.is_empty()] {
                    summary { (t(L, "cw_add_circumstance")) }
                    (circumstance_form(s, csrf, c, &Problems::default(), &CircumstanceDraft::default()))
                }
            }
        }

        section.card #assessments {
            h2 { (t(L, "cw_assessments")) }
            @if assessments.is_empty() { p { (t(L, "cw_none")) } } @else {
                table {
                    thead { tr { th { (t(L, "cw_form")) } th { (t(L, "cw_status")) } th { (t(L, "cw_completed_on")) } th { (t(L, "cw_form_version")) } th {} } }
                    tbody {
                        @for a in &assessments {
                            tr {
                                td { (pr.form(a.text("form").unwrap_or_default()).map(|f| f.label.get(L.code()).to_string()).unwrap_or_default()) }
                                td { (t(L, &format!("cw_assessment_{}", a.text("status").unwrap_or_default()))) }
                                td { (date_text(a, "completed_on")) }
                                td { (a.data.get("form_version").map(Value::to_string).unwrap_or_default()) }
                                td { a href={ "/cases/" (c.id) "/assessments/" (a.id) } { (t(L, if a.text("status") == Some("draft") && works { "cw_continue" } else { "cw_open" })) } }
                            }
                        }
                    }
                }
            }
            @if works {
                p.actions {
                    @for f in pr.forms.iter().filter(|f| f.applies_to == "assessment") {
                        a.button.secondary href={ "/cases/" (c.id) "/assessments/new?form=" (f.code) } { (t(L, "cw_fill")) ": " (f.label.get(L.code())) }
                    }
                }
            }
        }

        @for plan in &pr.rules.plans {
            (plan_section(s, auth, card, &plan.code, plan.label.get(L.code()), works))
        }
        @if works && !pr.rules.plans.is_empty() {
            p.actions { a.button.secondary href={ "/cases/" (c.id) "/activities/new" } { (t(L, "cw_add_activity")) } }
        }

        section.card #monitoring {
            h2 { (t(L, "cw_monitoring")) }
            @if visit_overdue { p.overdue role="alert" { strong { (t(L, "cw_no_monitoring")) } } }
            @if visits.is_empty() { p { (t(L, "cw_visits_none")) } } @else {
                table {
                    thead { tr { th { (t(L, "cw_visit_due")) } th { (t(L, "cw_visited_on")) } th { (t(L, "cw_findings")) } } }
                    tbody {
                        @for v in visits.iter().rev() {
                            tr {
                                td { @if v.text("status") == Some("planned") && is_overdue(v, today) { strong.overdue { (date_text(v, "due_on")) } } @else { (date_text(v, "due_on")) } }
                                td { @if v.text("status") == Some("done") { (date_text(v, "visited_on")) } @else { span.muted { (t(L, "cw_visit_planned")) } } }
                                td { (v.text("findings").unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            @if works && matches!(c.status, CaseStatus::PlanActive | CaseStatus::Monitoring) {
                details.add {
                    summary { (t(L, "cw_record_visit")) }
                    @let next = visits.iter().filter(|v| v.text("status") == Some("planned")).min_by_key(|v| v.text("due_on").map(str::to_string));
                    (visit_form(csrf, c, &Problems::default(), &VisitDraft { planned: next.map(|v| v.id), planned_version: next.map_or(0, |v| v.version), ..VisitDraft::default() }))
                }
            }
        }
    }
}

fn dl_row(label: &str, value: String) -> Markup {
    html! { div { dt { (label) } dd { (value) } } }
}

fn plan_section(
    s: &AppState,
    auth: &PageAuth,
    card: &CaseCard,
    plan: &str,
    label: &str,
    works: bool,
) -> Markup {
    let c = &card.case;
    let today = auth.ctx.today();
    let csrf = auth.session.csrf_token.as_str();
    let mut versions: Vec<&CaseRecordRow> = of_kind(card, "plan_version")
        .filter(|v| v.text("plan") == Some(plan))
        .collect();
    versions.sort_by_key(|v| v.data.get("number").and_then(Value::as_i64).unwrap_or(0));
    let acts: Vec<&CaseRecordRow> = of_kind(card, "activity")
        .filter(|a| a.text("plan") == Some(plan))
        .collect();
    let (live, gone): (Vec<&CaseRecordRow>, Vec<&CaseRecordRow>) = acts
        .iter()
        .partition(|a| a.text("status") != Some("no_longer_needed"));
    let draft = versions
        .iter()
        .rev()
        .find(|v| v.text("status") == Some("draft"));
    let approved = versions
        .iter()
        .rev()
        .find(|v| v.text("status") == Some("approved"));
    let may_approve = c.status.is_open() && s.app.may_on_case(&auth.ctx, Action::ApprovePlan, c);
    html! {
        section.card.plan #{ "plan-" (plan) } {
            h2 { (label) }
            @if acts.is_empty() && versions.is_empty() {
                p { (t(L, "cw_plan_empty")) }
            } @else {
                p.plan-state {
                    @if let Some(a) = approved {
                        span.badge.ok { (t(L, "cw_version")) " " (a.data.get("number").map(Value::to_string).unwrap_or_default()) ": " (t(L, "cw_approved")) " " (date_text(a, "approved_on")) }
                        " "
                    }
                    @if let Some(d) = draft {
                        span.badge.warn { (t(L, "cw_version")) " " (d.data.get("number").map(Value::to_string).unwrap_or_default()) ": " (t(L, "cw_draft_waits")) }
                    }
                }
                @if draft.is_some() && may_approve {
                    form method="post" action={ "/cases/" (c.id) "/plans/" (plan) "/approve" } class="inline" {
                        (hidden_csrf(csrf))
                        @if let Some(d) = draft {
                            input type="hidden" name="draft" value=(d.id);
                            input type="hidden" name="version" value=(d.version);
                        }
                        button.primary type="submit" { (t(L, "cw_approve")) }
                    }
                } @else if draft.is_some() {
                    p.hint { (t(L, "cw_approve_hint")) }
                }
                @if versions.iter().any(|v| v.text("status") != Some("draft")) {
                    p.versions { (t(L, "cw_versions")) ": "
                        @for v in versions.iter().filter(|v| v.text("status") != Some("draft")) {
                            a href={ "/cases/" (c.id) "/plan-versions/" (v.id) } { (t(L, "cw_version")) " " (v.data.get("number").map(Value::to_string).unwrap_or_default()) " (" (t(L, &format!("cw_version_{}", v.text("status").unwrap_or_default()))) ")" }
                            " "
                        }
                    }
                }
                (activities_table(s, c, &live, today, &|a: &CaseRecordRow| works || (c.status.is_open() && s.app.may_record_activity(&auth.ctx, c, a.text("agency_kind").unwrap_or_default()))))
                @if !gone.is_empty() {
                    details {
                        summary { (t(L, "cw_no_longer_needed")) " (" (gone.len()) ")" }
                        (activities_table(s, c, &gone, today, &|_: &CaseRecordRow| false))
                    }
                }
            }
        }
    }
}

fn activities_table(
    s: &AppState,
    c: &CaseRow,
    acts: &[&CaseRecordRow],
    today: time::Date,
    links: &dyn Fn(&CaseRecordRow) -> bool,
) -> Markup {
    html! {
        table.activities {
            thead { tr { th { (t(L, "cw_activity")) } th { (t(L, "cw_responsible")) } th { (t(L, "cw_due")) } th { (t(L, "cw_status")) } th { (t(L, "cw_why")) } } }
            tbody {
                @for a in acts {
                    @let over = is_overdue(a, today);
                    tr.overdue-row[over] {
                        td {
                            @if links(a) { a href={ "/cases/" (c.id) "/activities/" (a.id) } { (activity_title(s, a)) } } @else { (activity_title(s, a)) }
                            @if let Some(g) = a.text("goal") { br; span.muted { (t(L, "cw_goal")) ": " (g) } }
                        }
                        td { (org_name(s, a.text("responsible_org"))) @if let Some(k) = a.text("agency_kind") { br; span.muted { (kind_name(s, k)) } } }
                        td { @if over { strong.overdue { (date_text(a, "due_on")) } } @else { (date_text(a, "due_on")) } }
                        td { (activity_status_label(a.text("status").unwrap_or("planned")))
                            @if let Some(d) = a.text("completed_on") { br; span.muted { (display_date_str(d)) } }
                            @if a.text("reason") == Some("cause_vanished") { br; span.muted { (t(L, "cw_cause_vanished")) } }
                        }
                        td.why {
                            @if a.text("origin") == Some("rule") {
                                span.rule { (t(L, "cw_rule")) " " code { (a.text("rule_code").unwrap_or_default()) } " v" (a.data.get("rule_version").map(Value::to_string).unwrap_or_default()) }
                                ul.because { @for e in explanation(s, a) { li { (e) } } }
                            } @else {
                                span.muted { (t(L, "cw_manual")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn circumstance_form(
    s: &AppState,
    csrf: &str,
    c: &CaseRow,
    problems: &Problems,
    d: &CircumstanceDraft,
) -> Markup {
    let pr = &s.app.profile;
    let opts = classifier_options(pr, L, &pr.casework.circumstance_classifier, &[]);
    html! {
        form method="post" action={ "/cases/" (c.id) "/circumstances" } {
            (hidden_csrf(csrf))
            (error_summary(L, problems, field_label))
            (select(L, problems, "kind", t(L, "cw_circumstance"), &d.kind, true, &opts))
            (text_input(L, problems, Input { name: "effective_from", label: t(L, "cw_effective_from"), value: &d.effective_from, kind: "date", required: false, hint: Some(t(L, "cw_effective_from_hint")), autocomplete: None }))
            (text_input(L, problems, Input { name: "note", label: t(L, "cw_note"), value: &d.note, kind: "text", required: false, hint: None, autocomplete: None }))
            button.primary type="submit" { (t(L, "cw_add_circumstance")) }
        }
    }
}

fn visit_form(csrf: &str, c: &CaseRow, problems: &Problems, d: &VisitDraft) -> Markup {
    html! {
        form method="post" action={ "/cases/" (c.id) "/visits" } {
            (hidden_csrf(csrf))
            @if let Some(pid) = d.planned {
                input type="hidden" name="planned" value=(pid);
                input type="hidden" name="planned_version" value=(d.planned_version);
            }
            (error_summary(L, problems, field_label))
            (text_input(L, problems, Input { name: "visited_on", label: t(L, "cw_visited_on"), value: &d.visited_on, kind: "date", required: false, hint: Some(t(L, "cw_today_if_empty")), autocomplete: None }))
            (textarea(problems, "findings", t(L, "cw_findings"), &d.findings, true))
            (text_input(L, problems, Input { name: "next_visit_on", label: t(L, "cw_next_visit"), value: &d.next_visit_on, kind: "date", required: false, hint: Some(t(L, "cw_next_visit_hint")), autocomplete: None }))
            button.primary type="submit" { (t(L, "cw_record_visit")) }
        }
    }
}

fn textarea(problems: &Problems, name: &str, label: &str, value: &str, required: bool) -> Markup {
    crate::html::textarea(L, problems, name, label, value, required, None)
}

/// A page holding one form of case work.
fn form_page(
    s: &AppState,
    auth: &PageAuth,
    c: &CaseRow,
    title: &str,
    problems: &Problems,
    body: Markup,
) -> Response {
    let p = page(s, title, Some(auth));
    render(
        problem_status(problems),
        layout(
            &p,
            html! {
                p.back { a href={ "/cases/" (c.id) } { "← " (t(L, "case_title")) " " (c.number) } }
                h1 { (title) }
                (body)
            },
        ),
    )
}

fn back_to_case(id: Uuid, anchor: &str) -> Response {
    Redirect::to(&format!("/cases/{id}?saved=updated#{anchor}")).into_response()
}

/// The case as the caller may read it, for a form shown again (a failed read is the page).
#[allow(clippy::result_large_err)]
async fn case_of(s: &AppState, auth: &PageAuth, id: Uuid) -> Result<CaseRow, Response> {
    Ok(s.app.case_card(&auth.ctx, id).await.map_err(pe)?.case)
}

/// Someone changed the case or record while the user was on the form: say so, store nothing.
async fn conflict_page(s: &AppState, auth: &PageAuth, id: Uuid) -> PageResult {
    let c = case_of(s, auth, id).await?;
    let mut p = Problems::default();
    p.push("version", "conflict");
    Ok(form_page(
        s,
        auth,
        &c,
        t(L, "cw_conflict_title"),
        &p,
        html! { p { (t(L, "cw_conflict_text")) } },
    ))
}

// ---- steps ----

async fn step_form(
    State(s): State<AppState>,
    auth: PageAuth,
    Path((id, step)): Path<(String, String)>,
) -> PageResult {
    let id = ids(&id)?;
    let card = s.app.case_card(&auth.ctx, id).await.map_err(pe)?;
    let d = StepDraft {
        step,
        version: card.case.version,
        ..StepDraft::default()
    };
    Ok(step_page(&s, &auth, &card.case, &d, &Problems::default()))
}

fn step_page(
    s: &AppState,
    auth: &PageAuth,
    c: &CaseRow,
    d: &StepDraft,
    problems: &Problems,
) -> Response {
    let pr = &s.app.profile;
    let Some(step) = CaseStep::parse(&d.step) else {
        return pe(AppError::NotFound);
    };
    let csrf = auth.session.csrf_token.as_str();
    let agencies: Vec<(String, String)> = pr
        .agencies
        .iter()
        .filter(|a| {
            a.kind
                == pr
                    .agency(&c.data.responsible_org)
                    .map(|x| x.kind.clone())
                    .unwrap_or_default()
        })
        .map(|a| (a.code.clone(), a.name.get(L.code()).to_string()))
        .collect();
    let outcomes = classifier_options(pr, L, &pr.casework.outcome_classifier, &[]);
    let body = html! {
        form method="post" action={ "/cases/" (c.id) "/steps" } {
            (hidden_csrf(csrf))
            (error_summary(L, problems, field_label))
            input type="hidden" name="step" value=(step.code());
            input type="hidden" name="version" value=(d.version);
            @let hint = t(L, &format!("cw_step_{}_hint", step.code()));
            @if !hint.is_empty() && hint != "?" { p.hint { (hint) } }
            @match step {
                CaseStep::Suspend => {
                    (textarea(problems, "reason", t(L, "cw_reason"), &d.reason, true))
                    (text_input(L, problems, Input { name: "agreed_with", label: t(L, "cw_agreed_with"), value: &d.agreed_with, kind: "text", required: true, hint: Some(t(L, "cw_agreed_with_hint")), autocomplete: None }))
                }
                CaseStep::Transfer => {
                    (territory_select(L, problems, pr, "transfer_territory", t(L, "cw_transfer_territory"), &d.transfer_territory, true))
                    (select(L, problems, "transfer_org", t(L, "cw_transfer_org"), &d.transfer_org, false, &agencies))
                    p.hint { (t(L, "cw_transfer_org_hint")) }
                    (textarea(problems, "reason", t(L, "cw_reason"), &d.reason, true))
                }
                CaseStep::Close => {
                    (select(L, problems, "outcome", t(L, "cw_outcome"), &d.outcome, true, &outcomes))
                    (textarea(problems, "reason", t(L, "cw_close_note"), &d.reason, false))
                }
                _ => {
                    (textarea(problems, "reason", t(L, "cw_reason"), &d.reason, step == CaseStep::DeclineTransfer))
                }
            }
            button.primary type="submit" { (step_label(step)) }
        }
    };
    form_page(
        s,
        auth,
        c,
        &format!("{}: {}", step_label(step), c.number),
        problems,
        body,
    )
}

async fn step_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let id = ids(&id)?;
    let d = StepDraft {
        step: f.get("step"),
        version: f.get("version").parse().unwrap_or(-1),
        outcome: f.get("outcome"),
        reason: f.get("reason"),
        agreed_with: f.get("agreed_with"),
        transfer_territory: f.get("transfer_territory"),
        transfer_org: f.get("transfer_org"),
    };
    match s.app.case_step(&auth.ctx, id, &d).await {
        Ok(_) => Ok(back_to_case(id, "lifecycle")),
        Err(AppError::Invalid(p)) => {
            let c = case_of(&s, &auth, id).await?;
            let d = StepDraft {
                version: c.version,
                ..d
            };
            if CaseStep::parse(&d.step).is_some_and(step_needs_form) {
                Ok(step_page(&s, &auth, &c, &d, &p))
            } else {
                Ok(form_page(
                    &s,
                    &auth,
                    &c,
                    step_label(CaseStep::parse(&d.step).unwrap_or(CaseStep::Resume)),
                    &p,
                    html! {
                        (error_summary(L, &p, field_label))
                        p { a.button href={ "/cases/" (c.id) } { (t(L, "cw_back_to_case")) } }
                    },
                ))
            }
        }
        Err(AppError::Conflict { .. }) => conflict_page(&s, &auth, id).await,
        Err(e) => Err(pe(e)),
    }
}

// ---- circumstances ----

async fn circumstance_add(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let id = ids(&id)?;
    let d = CircumstanceDraft {
        kind: f.get("kind"),
        note: f.get("note"),
        effective_from: f.get("effective_from"),
    };
    match s.app.add_circumstance(&auth.ctx, id, &d).await {
        Ok(_) => Ok(back_to_case(id, "circumstances")),
        Err(AppError::Invalid(p)) => {
            let c = case_of(&s, &auth, id).await?;
            let csrf = auth.session.csrf_token.clone();
            let body = circumstance_form(&s, &csrf, &c, &p, &d);
            Ok(form_page(
                &s,
                &auth,
                &c,
                t(L, "cw_add_circumstance"),
                &p,
                body,
            ))
        }
        Err(e) => Err(pe(e)),
    }
}

async fn circumstance_page(
    State(s): State<AppState>,
    auth: PageAuth,
    Path((id, cid)): Path<(String, String)>,
) -> PageResult {
    let (card, i) = card_with_record(&s, &auth, &id, &cid, "circumstance").await?;
    let r = &card.records[i];
    Ok(circumstance_change_page(
        &s,
        &auth,
        &card.case,
        r,
        &Problems::default(),
        &CircumstanceChange::default(),
    ))
}

fn circumstance_change_page(
    s: &AppState,
    auth: &PageAuth,
    c: &CaseRow,
    r: &CaseRecordRow,
    problems: &Problems,
    d: &CircumstanceChange,
) -> Response {
    let pr = &s.app.profile;
    let cls = &pr.casework.circumstance_classifier;
    let csrf = auth.session.csrf_token.as_str();
    let kind = r.text("kind").unwrap_or_default();
    let opts = classifier_options(pr, L, cls, &[kind.to_string()]);
    let current = r.text("status") == Some("current");
    let corr = |k: &str, v: &str| -> String {
        if d.change == "correct" {
            v.to_string()
        } else {
            r.text(k).unwrap_or_default().to_string()
        }
    };
    let body = html! {
        (error_summary(L, problems, field_label))
        dl.facts {
            (dl_row(t(L, "cw_circumstance"), classifier_label(pr, L, cls, kind)))
            (dl_row(t(L, "cw_effective_from"), date_text(r, "effective_from")))
            @if !current { (dl_row(t(L, "cw_ended"), date_text(r, "effective_to"))) }
            (dl_row(t(L, "cw_note"), r.text("note").unwrap_or_default().to_string()))
            @if let Some(x) = r.text("correction_reason") { (dl_row(t(L, "cw_correction_reason"), x.to_string())) }
        }
        @if current {
            section.card {
                h2 { (t(L, "cw_end_circumstance")) }
                p.hint { (t(L, "cw_end_hint")) }
                form method="post" action={ "/cases/" (c.id) "/circumstances/" (r.id) } {
                    (hidden_csrf(csrf))
                    input type="hidden" name="change" value="end";
                    input type="hidden" name="version" value=(r.version);
                    (text_input(L, problems, Input { name: "ended_on", label: t(L, "cw_ended_on"), value: if d.change == "end" { &d.ended_on } else { "" }, kind: "date", required: false, hint: Some(t(L, "cw_today_if_empty")), autocomplete: None }))
                    (text_input(L, problems, Input { name: "reason", label: t(L, "cw_reason"), value: if d.change == "end" { &d.reason } else { "" }, kind: "text", required: false, hint: None, autocomplete: None }))
                    button.primary type="submit" { (t(L, "cw_end_circumstance")) }
                }
            }
        }
        section.card {
            h2 { (t(L, "cw_correct")) }
            p.hint { (t(L, "cw_correct_hint")) }
            form method="post" action={ "/cases/" (c.id) "/circumstances/" (r.id) } {
                (hidden_csrf(csrf))
                input type="hidden" name="change" value="correct";
                input type="hidden" name="version" value=(r.version);
                (select(L, problems, "kind", t(L, "cw_circumstance"), &corr("kind", &d.kind), true, &opts))
                (text_input(L, problems, Input { name: "effective_from", label: t(L, "cw_effective_from"), value: &corr("effective_from", &d.effective_from), kind: "date", required: true, hint: None, autocomplete: None }))
                (text_input(L, problems, Input { name: "note", label: t(L, "cw_note"), value: &corr("note", &d.note), kind: "text", required: false, hint: None, autocomplete: None }))
                (text_input(L, problems, Input { name: "reason", label: t(L, "cw_correction_reason"), value: if d.change == "correct" { &d.reason } else { "" }, kind: "text", required: true, hint: None, autocomplete: None }))
                button.secondary type="submit" { (t(L, "cw_save_correction")) }
            }
        }
    };
    form_page(
        s,
        auth,
        c,
        &format!(
            "{}: {}",
            t(L, "cw_circumstance"),
            classifier_label(pr, L, cls, kind)
        ),
        problems,
        body,
    )
}

async fn circumstance_change(
    State(s): State<AppState>,
    auth: PageAuth,
    Path((id, cid)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let (id, cid) = (ids(&id)?, ids(&cid)?);
    let d = CircumstanceChange {
        version: f.get("version").parse().unwrap_or(-1),
        change: f.get("change"),
        ended_on: f.get("ended_on"),
        kind: f.get("kind"),
        note: f.get("note"),
        effective_from: f.get("effective_from"),
        reason: f.get("reason"),
    };
    match s.app.change_circumstance(&auth.ctx, id, cid, &d).await {
        Ok(()) => Ok(back_to_case(id, "circumstances")),
        Err(AppError::Invalid(p)) => {
            let card = s.app.case_card(&auth.ctx, id).await.map_err(pe)?;
            let Some(r) = card.records.iter().find(|r| r.id == cid) else {
                return Err(pe(AppError::NotFound));
            };
            Ok(circumstance_change_page(&s, &auth, &card.case, r, &p, &d))
        }
        Err(AppError::Conflict { .. }) => conflict_page(&s, &auth, id).await,
        Err(e) => Err(pe(e)),
    }
}

// ---- assessments ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct FormQuery {
    form: String,
}

async fn assessment_new(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(q): Query<FormQuery>,
) -> PageResult {
    let id = ids(&id)?;
    let card = s.app.case_card(&auth.ctx, id).await.map_err(pe)?;
    let Some(form) = s
        .app
        .profile
        .forms
        .iter()
        .find(|f| f.applies_to == "assessment" && f.code == q.form)
    else {
        return Err(pe(AppError::NotFound));
    };
    Ok(assessment_form_page(
        &s,
        &auth,
        &card.case,
        form,
        None,
        &BTreeMap::new(),
        &Problems::default(),
    ))
}

fn assessment_form_page(
    s: &AppState,
    auth: &PageAuth,
    c: &CaseRow,
    form: &FormDef,
    draft: Option<(Uuid, i64)>,
    values: &BTreeMap<String, Value>,
    problems: &Problems,
) -> Response {
    let pr = &s.app.profile;
    let csrf = auth.session.csrf_token.as_str();
    let labels = |f: &str| {
        let code = f.strip_prefix("extra.").unwrap_or(f);
        form.fields()
            .find(|(_, x)| x.code == code)
            .map(|(_, x)| x.label.get(L.code()).to_string())
            .unwrap_or_else(|| field_label(f))
    };
    let body = html! {
        p.hint { (t(L, "cw_assessment_hint")) }
        form method="post" action={ "/cases/" (c.id) "/assessments" } {
            (hidden_csrf(csrf))
            (error_summary(L, problems, labels))
            input type="hidden" name="form" value=(form.code);
            @if let Some((aid, v)) = draft {
                input type="hidden" name="id" value=(aid);
                input type="hidden" name="version" value=(v);
            }
            @for sec in &form.section {
                fieldset.section {
                    legend { (sec.label.get(L.code())) }
                    @for f in &sec.field {
                        (extra_input(pr, L, problems, "", f, values.get(&f.code)))
                    }
                }
            }
            p.actions {
                button.secondary type="submit" name="action" value="draft" { (t(L, "cw_save_draft")) }
                button.primary type="submit" name="action" value="complete" { (t(L, "cw_complete_assessment")) }
            }
        }
    };
    form_page(s, auth, c, form.label.get(L.code()), problems, body)
}

fn answers_of(f: &FormData, form: &FormDef) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (_, fd) in form.fields() {
        let name = format!("extra.{}", fd.code);
        if fd.kind == FieldType::MultiClassifier {
            let vs = f.all(&name);
            if !vs.is_empty() {
                out.insert(
                    fd.code.clone(),
                    Value::Array(vs.into_iter().map(Value::String).collect()),
                );
            }
        } else {
            let v = f.get(&name);
            if !v.trim().is_empty() {
                out.insert(fd.code.clone(), Value::String(v));
            }
        }
    }
    out
}

async fn assessment_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let id = ids(&id)?;
    let Some(form) = s
        .app
        .profile
        .forms
        .iter()
        .find(|x| x.applies_to == "assessment" && x.code == f.get("form"))
    else {
        return Err(pe(AppError::NotFound));
    };
    let draft = Uuid::parse_str(&f.get("id")).ok();
    let d = AssessmentDraft {
        form: form.code.clone(),
        answers: answers_of(&f, form),
        complete: f.get("action") == "complete",
        id: draft,
        version: f.get("version").parse().unwrap_or(0),
    };
    match s.app.save_assessment(&auth.ctx, id, &d).await {
        Ok(aid) if !d.complete => Ok(Redirect::to(&format!(
            "/cases/{id}/assessments/{aid}?saved=updated"
        ))
        .into_response()),
        Ok(_) => Ok(back_to_case(id, "assessments")),
        Err(AppError::Invalid(p)) => {
            let c = case_of(&s, &auth, id).await?;
            let v = match draft {
                Some(aid) => s
                    .app
                    .store
                    .case_record(aid)
                    .await
                    .map_err(|e| pe(e.into()))?
                    .map(|r| (aid, r.version)),
                None => None,
            };
            Ok(assessment_form_page(&s, &auth, &c, form, v, &d.answers, &p))
        }
        Err(AppError::Conflict { .. }) => conflict_page(&s, &auth, id).await,
        Err(e) => Err(pe(e)),
    }
}

async fn assessment_page(
    State(s): State<AppState>,
    auth: PageAuth,
    Path((id, aid)): Path<(String, String)>,
) -> PageResult {
    let (card, i) = card_with_record(&s, &auth, &id, &aid, "assessment").await?;
    let r = &card.records[i];
    let pr = &s.app.profile;
    let Some(form) = pr.form(r.text("form").unwrap_or_default()) else {
        return Err(pe(AppError::NotFound));
    };
    let values: BTreeMap<String, Value> = match r.data.get("answers") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    };
    let works =
        card.case.status.is_open() && s.app.may_on_case(&auth.ctx, Action::WorkCase, &card.case);
    if r.text("status") == Some("draft") && works {
        return Ok(assessment_form_page(
            &s,
            &auth,
            &card.case,
            form,
            Some((r.id, r.version)),
            &values,
            &Problems::default(),
        ));
    }
    let body = html! {
        p { (t(L, &format!("cw_assessment_{}", r.text("status").unwrap_or_default()))) " " (date_text(r, "completed_on")) " · " (t(L, "cw_form_version")) " " (r.data.get("form_version").map(Value::to_string).unwrap_or_default()) }
        @for sec in &form.section {
            section.card {
                h2 { (sec.label.get(L.code())) }
                dl.facts {
                    @for f in &sec.field {
                        (dl_row(f.label.get(L.code()), values.get(&f.code).map(|v| extra_display(pr, L, f, v)).unwrap_or_default()))
                    }
                }
            }
        }
    };
    Ok(form_page(
        &s,
        &auth,
        &card.case,
        form.label.get(L.code()),
        &Problems::default(),
        body,
    ))
}

// ---- plans and activities ----

async fn plan_approve(
    State(s): State<AppState>,
    auth: PageAuth,
    Path((id, plan)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let id = ids(&id)?;
    // The draft the supervisor saw: a plan changed since is shown again, not approved unseen.
    let seen = Uuid::parse_str(&f.get("draft"))
        .ok()
        .map(|d| (d, f.get("version").parse().unwrap_or(-1)));
    match s.app.approve_plan(&auth.ctx, id, &plan, seen).await {
        Ok(()) => Ok(back_to_case(id, &format!("plan-{plan}"))),
        Err(AppError::Invalid(p)) => {
            let c = case_of(&s, &auth, id).await?;
            Ok(form_page(
                &s,
                &auth,
                &c,
                t(L, "cw_approve"),
                &p,
                html! {
                    (error_summary(L, &p, field_label))
                    p { a.button href={ "/cases/" (c.id) } { (t(L, "cw_back_to_case")) } }
                },
            ))
        }
        Err(AppError::Conflict { .. }) => conflict_page(&s, &auth, id).await,
        Err(e) => Err(pe(e)),
    }
}

async fn plan_version_page(
    State(s): State<AppState>,
    auth: PageAuth,
    Path((id, vid)): Path<(String, String)>,
) -> PageResult {
    let (card, i) = card_with_record(&s, &auth, &id, &vid, "plan_version").await?;
    let v = &card.records[i];
    let plan = v.text("plan").unwrap_or_default();
    let label = s
        .app
        .profile
        .rules
        .plan(plan)
        .map(|p| p.label.get(L.code()).to_string())
        .unwrap_or_default();
    // The activities as they were approved.
    let acts: Vec<CaseRecordRow> = v
        .data
        .get("activities")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| CaseRecordRow {
                    id: x
                        .get("id")
                        .and_then(Value::as_str)
                        .and_then(|i| Uuid::parse_str(i).ok())
                        .unwrap_or_default(),
                    kind: "activity".into(),
                    case_id: card.case.id,
                    version: 0,
                    data: x.clone(),
                    created_at: String::new(),
                    created_by: String::new(),
                    updated_at: String::new(),
                    updated_by: String::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    let refs: Vec<&CaseRecordRow> = acts.iter().collect();
    let approver = match v.text("approved_by") {
        Some(u) => s
            .app
            .store
            .user(u)
            .await
            .map_err(|e| pe(e.into()))?
            .map(|u| u.full_name),
        None => None,
    };
    let title = format!(
        "{label} — {} {}",
        t(L, "cw_version"),
        v.data
            .get("number")
            .map(Value::to_string)
            .unwrap_or_default()
    );
    let body = html! {
        p { (t(L, &format!("cw_version_{}", v.text("status").unwrap_or_default()))) " " (date_text(v, "approved_on")) @if let Some(a) = approver { " — " (a) } }
        p.hint { (t(L, "cw_version_hint")) }
        (activities_table(&s, &card.case, &refs, auth.ctx.today(), &|_: &CaseRecordRow| false))
    };
    Ok(form_page(
        &s,
        &auth,
        &card.case,
        &title,
        &Problems::default(),
        body,
    ))
}

async fn activity_new(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
) -> PageResult {
    let id = ids(&id)?;
    let card = s.app.case_card(&auth.ctx, id).await.map_err(pe)?;
    Ok(activity_new_page(
        &s,
        &auth,
        &card.case,
        &ActivityDraft::default(),
        &Problems::default(),
    ))
}

fn activity_new_page(
    s: &AppState,
    auth: &PageAuth,
    c: &CaseRow,
    d: &ActivityDraft,
    problems: &Problems,
) -> Response {
    let pr = &s.app.profile;
    let plans: Vec<(String, String)> = pr
        .rules
        .plans
        .iter()
        .map(|p| (p.code.clone(), p.label.get(L.code()).to_string()))
        .collect();
    let orgs: Vec<(String, String)> = pr
        .agencies
        .iter()
        .filter(|a| pr.territory_within(&c.territory, &a.territory))
        .map(|a| (a.code.clone(), a.name.get(L.code()).to_string()))
        .collect();
    let body = html! {
        form method="post" action={ "/cases/" (c.id) "/activities/new" } {
            (hidden_csrf(&auth.session.csrf_token))
            (error_summary(L, problems, field_label))
            (select(L, problems, "plan", t(L, "cw_plan"), &d.plan, true, &plans))
            (text_input(L, problems, Input { name: "title", label: t(L, "cw_activity"), value: &d.title, kind: "text", required: true, hint: None, autocomplete: None }))
            (text_input(L, problems, Input { name: "goal", label: t(L, "cw_goal"), value: &d.goal, kind: "text", required: false, hint: None, autocomplete: None }))
            (select(L, problems, "responsible_org", t(L, "cw_responsible"), &d.responsible_org, true, &orgs))
            (text_input(L, problems, Input { name: "due_on", label: t(L, "cw_due"), value: &d.due_on, kind: "date", required: true, hint: None, autocomplete: None }))
            button.primary type="submit" { (t(L, "cw_add_activity")) }
        }
    };
    form_page(s, auth, c, t(L, "cw_add_activity"), problems, body)
}

async fn activity_add(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let id = ids(&id)?;
    let d = ActivityDraft {
        plan: f.get("plan"),
        title: f.get("title"),
        goal: f.get("goal"),
        responsible_org: f.get("responsible_org"),
        due_on: f.get("due_on"),
    };
    match s.app.add_activity(&auth.ctx, id, &d).await {
        Ok(_) => Ok(back_to_case(id, &format!("plan-{}", d.plan))),
        Err(AppError::Invalid(p)) => {
            let c = case_of(&s, &auth, id).await?;
            Ok(activity_new_page(&s, &auth, &c, &d, &p))
        }
        Err(e) => Err(pe(e)),
    }
}

async fn activity_page(
    State(s): State<AppState>,
    auth: PageAuth,
    Path((id, aid)): Path<(String, String)>,
) -> PageResult {
    let (card, i) = card_with_record(&s, &auth, &id, &aid, "activity").await?;
    let a = &card.records[i];
    let worker = activity_worker(&s, a).await;
    Ok(activity_edit_page(
        &s,
        &auth,
        &card.case,
        a,
        &ActivityUpdate::default(),
        &Problems::default(),
        worker,
    ))
}

/// The name of the worker answering for an activity, if one is named.
async fn activity_worker(s: &AppState, a: &CaseRecordRow) -> Option<String> {
    match a.text("responsible_user") {
        Some(u) => s
            .app
            .store
            .user(u)
            .await
            .ok()
            .flatten()
            .map(|u| u.full_name),
        None => None,
    }
}

fn activity_edit_page(
    s: &AppState,
    auth: &PageAuth,
    c: &CaseRow,
    a: &CaseRecordRow,
    d: &ActivityUpdate,
    problems: &Problems,
    worker: Option<String>,
) -> Response {
    let pr = &s.app.profile;
    let kind = a.text("agency_kind").unwrap_or_default();
    let may = c.status.is_open() && s.app.may_record_activity(&auth.ctx, c, kind);
    let statuses: Vec<(String, String)> = ActivityStatus::ALL
        .iter()
        .map(|st| {
            (
                st.code().to_string(),
                activity_status_label(st.code()).to_string(),
            )
        })
        .collect();
    let orgs: Vec<(String, String)> = pr
        .agencies
        .iter()
        .filter(|x| kind.is_empty() || x.kind == kind)
        .map(|x| (x.code.clone(), x.name.get(L.code()).to_string()))
        .collect();
    let pick = |typed: &str, key: &str| -> String {
        if typed.is_empty() {
            a.text(key).unwrap_or_default().to_string()
        } else {
            typed.to_string()
        }
    };
    let status_now = pick(&d.status, "status");
    let body = html! {
        (error_summary(L, problems, field_label))
        dl.facts {
            @if let Some(g) = a.text("goal") { (dl_row(t(L, "cw_goal"), g.to_string())) }
            (dl_row(t(L, "cw_responsible"), format!("{} ({})", org_name(s, a.text("responsible_org")), kind_name(s, kind))))
            (dl_row(t(L, "cw_worker"), worker.clone().unwrap_or_else(|| t(L, "cw_worker_none").to_string())))
            (dl_row(t(L, "cw_due"), date_text(a, "due_on")))
            (dl_row(t(L, "cw_status"), activity_status_label(a.text("status").unwrap_or("planned")).to_string()))
            @if let Some(r) = a.text("result") { (dl_row(t(L, "cw_result"), r.to_string())) }
            @if let Some(r) = a.text("reason").filter(|r| *r != "cause_vanished") { (dl_row(t(L, "cw_reason"), r.to_string())) }
        }
        @if a.text("origin") == Some("rule") {
            section.card {
                h2 { (t(L, "cw_why")) }
                p { (t(L, "cw_rule")) " " code { (a.text("rule_code").unwrap_or_default()) } " v" (a.data.get("rule_version").map(Value::to_string).unwrap_or_default())
                    @if let Some(src) = a.text("rule_code").and_then(|c| pr.rules.rule(c)).and_then(|r| r.source.clone()) { " — " span.muted { (src) } } }
                ul.because { @for e in explanation(s, a) { li { (e) } } }
            }
        }
        @if may {
            form method="post" action={ "/cases/" (c.id) "/activities/" (a.id) } {
                (hidden_csrf(&auth.session.csrf_token))
                input type="hidden" name="version" value=(a.version);
                (select(L, problems, "status", t(L, "cw_status"), &status_now, true, &statuses))
                (text_input(L, problems, Input { name: "completed_on", label: t(L, "cw_completed_on"), value: &pick(&d.completed_on, "completed_on"), kind: "date", required: false, hint: Some(t(L, "cw_completed_hint")), autocomplete: None }))
                (textarea(problems, "result", t(L, "cw_result"), &pick(&d.result, "result"), false))
                (text_input(L, problems, Input { name: "reason", label: t(L, "cw_reason"), value: &d.reason, kind: "text", required: false, hint: Some(t(L, "cw_reason_hint")), autocomplete: None }))
                (select(L, problems, "responsible_org", t(L, "cw_responsible"), &pick(&d.responsible_org, "responsible_org"), false, &orgs))
                (text_input(L, problems, Input { name: "due_on", label: t(L, "cw_due"), value: &pick(&d.due_on, "due_on"), kind: "date", required: false, hint: None, autocomplete: None }))
                @if a.text("responsible_user") != Some(auth.ctx.user.id.as_str()) {
                    label.check { input type="checkbox" name="take" value="1"; " " (t(L, "cw_take")) }
                }
                button.primary type="submit" { (t(L, "cw_save")) }
            }
        }
    };
    form_page(s, auth, c, &activity_title(s, a), problems, body)
}

async fn activity_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Path((id, aid)): Path<(String, String)>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let (id, aid) = (ids(&id)?, ids(&aid)?);
    let d = ActivityUpdate {
        version: f.get("version").parse().unwrap_or(-1),
        status: f.get("status"),
        responsible_org: f.get("responsible_org"),
        // "I answer for it": the worker takes the activity.
        responsible_user: if f.get("take") == "1" {
            auth.ctx.user.id.clone()
        } else {
            String::new()
        },
        due_on: f.get("due_on"),
        completed_on: f.get("completed_on"),
        result: f.get("result"),
        reason: f.get("reason"),
    };
    match s.app.update_activity(&auth.ctx, id, aid, &d).await {
        Ok(()) => {
            let plan = s
                .app
                .store
                .case_record(aid)
                .await
                .map_err(|e| pe(e.into()))?
                .and_then(|r| r.text("plan").map(str::to_string))
                .unwrap_or_default();
            Ok(back_to_case(id, &format!("plan-{plan}")))
        }
        Err(AppError::Invalid(p)) => {
            let card = s.app.case_card(&auth.ctx, id).await.map_err(pe)?;
            let Some(a) = card.records.iter().find(|r| r.id == aid) else {
                return Err(pe(AppError::NotFound));
            };
            let worker = activity_worker(&s, a).await;
            Ok(activity_edit_page(&s, &auth, &card.case, a, &d, &p, worker))
        }
        Err(AppError::Conflict { .. }) => conflict_page(&s, &auth, id).await,
        Err(e) => Err(pe(e)),
    }
}

// ---- visits ----

async fn visit_submit(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<Vec<(String, String)>>,
) -> PageResult {
    let f = FormData(f);
    if !f.csrf_ok(&auth) {
        return Err(csrf_failed());
    }
    let id = ids(&id)?;
    let d = VisitDraft {
        visited_on: f.get("visited_on"),
        findings: f.get("findings"),
        next_visit_on: f.get("next_visit_on"),
        planned: Uuid::parse_str(&f.get("planned")).ok(),
        planned_version: f.get("planned_version").parse().unwrap_or(0),
    };
    match s.app.record_visit(&auth.ctx, id, &d).await {
        Ok(_) => Ok(back_to_case(id, "monitoring")),
        Err(AppError::Invalid(p)) => {
            let c = case_of(&s, &auth, id).await?;
            let body = visit_form(&auth.session.csrf_token, &c, &p, &d);
            Ok(form_page(&s, &auth, &c, t(L, "cw_record_visit"), &p, body))
        }
        Err(AppError::Conflict { .. }) => conflict_page(&s, &auth, id).await,
        Err(e) => Err(pe(e)),
    }
}

// ---- home and completeness ----

/// Overdue work and waiting transfers, for the home page.
pub(crate) fn agenda_cards(s: &AppState, a: &Agenda, today: time::Date) -> Markup {
    html! {
        section.card #agenda {
            h2 { (t(L, "cw_agenda")) }
            @if a.activities.is_empty() && a.visits.is_empty() && a.transfers.is_empty() {
                p { (t(L, "cw_agenda_empty")) }
            }
            @if !a.activities.is_empty() {
                h3 { (t(L, "cw_overdue_activities")) " (" (a.activities.len()) ")" }
                table {
                    thead { tr { th { (t(L, "col_case")) } th { (t(L, "cw_activity")) } th { (t(L, "cw_responsible")) } th { (t(L, "cw_due")) } } }
                    tbody {
                        @for o in &a.activities {
                            tr {
                                td { a href={ "/cases/" (o.record.case_id) } { (o.case_number) } }
                                td { a href={ "/cases/" (o.record.case_id) "/activities/" (o.record.id) } { (activity_title(s, &o.record)) } }
                                td { (org_name(s, o.record.text("responsible_org"))) }
                                td { strong.overdue { (date_text(&o.record, "due_on")) } br; span.muted { (t(L, "cw_late_by")) " " ((today - o.record.text("due_on").and_then(parse_date).unwrap_or(today)).whole_days()) " " (t(L, "cw_days")) } }
                            }
                        }
                    }
                }
            }
            @if !a.visits.is_empty() {
                h3 { (t(L, "cw_overdue_visits")) " (" (a.visits.len()) ")" }
                table {
                    thead { tr { th { (t(L, "col_case")) } th { (t(L, "cw_visit_due")) } } }
                    tbody {
                        @for o in &a.visits {
                            tr {
                                td { a href={ "/cases/" (o.record.case_id) "#monitoring" } { (o.case_number) } }
                                td { strong.overdue { (date_text(&o.record, "due_on")) } }
                            }
                        }
                    }
                }
            }
            @if !a.transfers.is_empty() {
                h3 { (t(L, "cw_incoming")) " (" (a.transfers.len()) ")" }
                ul {
                    @for c in &a.transfers {
                        li { a href={ "/cases/" (c.id) } { (c.number) } " — " (territory_name(&s.app.profile, L, &c.territory)) " → " (c.transfer_territory.as_deref().map(|x| territory_name(&s.app.profile, L, x)).unwrap_or_default()) }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompletenessQuery {
    plan: String,
    page: i64,
}

async fn completeness_page(
    State(s): State<AppState>,
    auth: PageAuth,
    Query(q): Query<CompletenessQuery>,
) -> PageResult {
    let pr = &s.app.profile;
    let plan = if q.plan.is_empty() {
        pr.rules
            .plans
            .last()
            .map(|p| p.code.clone())
            .unwrap_or_default()
    } else {
        q.plan.clone()
    };
    let (rows, total, more) = s
        .app
        .completeness(&auth.ctx, &plan, q.page)
        .await
        .map_err(pe)?;
    let title = t(L, "cw_completeness");
    let p = page(&s, title, Some(&auth));
    let cells = |c: &Completeness| {
        html! {
            td.num { (c.provided) } td.num { (c.provided_late) } td.num.warn[c.overdue > 0] { (c.overdue) } td.num { (c.pending) } td.num.warn[c.not_provided > 0] { (c.not_provided) } td.num { (c.total()) }
        }
    };
    Ok(render(
        StatusCode::OK,
        layout(
            &p,
            html! {
                h1 { (title) }
                p.hint { (t(L, "cw_completeness_hint")) }
                @if pr.rules.plans.len() > 1 {
                    form method="get" action="/completeness" class="inline" {
                        (select(L, &Problems::default(), "plan", t(L, "cw_plan"), &plan, true, &pr.rules.plans.iter().map(|p| (p.code.clone(), p.label.get(L.code()).to_string())).collect::<Vec<_>>()))
                        button.secondary type="submit" { (t(L, "cw_show")) }
                    }
                }
                table.completeness {
                    thead { tr { th { (t(L, "col_case")) } th { (t(L, "cw_subject")) } th { (t(L, "cw_stage")) } th.num { (t(L, "cw_provided")) } th.num { (t(L, "cw_provided_late")) } th.num { (t(L, "cw_overdue_n")) } th.num { (t(L, "cw_pending")) } th.num { (t(L, "cw_not_provided")) } th.num { (t(L, "cw_total")) } } }
                    tbody {
                        @for r in &rows {
                            tr {
                                td { a href={ "/cases/" (r.case.id) } { (r.case.number) } }
                                td { (r.subject.clone().unwrap_or_else(|| "—".into())) }
                                td { (status_label(r.case.status)) }
                                (cells(&r.counts))
                            }
                        }
                        tr.total { td colspan="3" { (t(L, "cw_total_page")) } (cells(&total)) }
                    }
                }
                p.pager {
                    @if q.page > 0 { a href={ "/completeness?plan=" (plan) "&page=" (q.page - 1) } { "← " (t(L, "cw_prev")) } " " }
                    @if more { a href={ "/completeness?plan=" (plan) "&page=" (q.page + 1) } { (t(L, "cw_next")) " →" } }
                }
            },
        ),
    ))
}

// ---- history of case work ----

/// The name of a kind of case-work record in the history, None for other entities.
pub(crate) fn record_kind_label(entity: &str) -> Option<&'static str> {
    kamkor_store::casework::RECORD_KINDS
        .contains(&entity)
        .then(|| t(L, &format!("cw_kind_{entity}")))
}

/// What the record is, from its entry (its kind, form, plan or title, when the entry holds it).
pub(crate) fn record_name(
    p: &kamkor_domain::profile::Profile,
    c: &kamkor_store::ChangeRow,
) -> Option<String> {
    let v = c.after.as_ref()?;
    let text = |k: &str| v.get(k).and_then(Value::as_str);
    match c.entity.as_str() {
        "circumstance" => {
            text("kind").map(|k| classifier_label(p, L, &p.casework.circumstance_classifier, k))
        }
        "assessment" => text("form")
            .and_then(|f| p.form(f))
            .map(|f| f.label.get(L.code()).to_string()),
        "activity" => text("title").map(str::to_string),
        "plan_version" => text("plan")
            .and_then(|x| p.rules.plan(x))
            .map(|x| x.label.get(L.code()).to_string()),
        _ => None,
    }
}

pub(crate) fn record_field_label(field: &str) -> String {
    let v = t(L, &format!("cw_field_{field}"));
    if v == "?" {
        field.to_string()
    } else {
        v.to_string()
    }
}

/// Names of a case's records by id, for its history.
pub(crate) fn record_names(
    s: &AppState,
    card: &CaseCard,
) -> std::collections::HashMap<String, String> {
    let p = &s.app.profile;
    card.records
        .iter()
        .filter_map(|r| {
            let name = match r.kind.as_str() {
                "circumstance" => r
                    .text("kind")
                    .map(|k| classifier_label(p, L, &p.casework.circumstance_classifier, k)),
                "assessment" => r
                    .text("form")
                    .and_then(|f| p.form(f))
                    .map(|f| f.label.get(L.code()).to_string()),
                "activity" => Some(activity_title(s, r)),
                "plan_version" => r.text("plan").and_then(|x| p.rules.plan(x)).map(|x| {
                    format!(
                        "{}, {} {}",
                        x.label.get(L.code()),
                        t(L, "cw_version"),
                        r.data
                            .get("number")
                            .map(Value::to_string)
                            .unwrap_or_default()
                    )
                }),
                "visit" => r
                    .text("due_on")
                    .map(|d| format!("{} {}", t(L, "cw_visit_due"), display_date_str(d))),
                _ => None,
            }?;
            Some((r.id.to_string(), name))
        })
        .collect()
}

/// Fields of a case's lifecycle (issue 5), shown in words in its history.
pub(crate) fn is_case_work_field(field: &str) -> bool {
    matches!(
        field,
        "status"
            | "status_since"
            | "territory"
            | "transfer_territory"
            | "work"
            | "responsible_user"
            | "responsible_org"
    )
}

/// A lifecycle field's value in words.
pub(crate) fn case_value(
    p: &kamkor_domain::profile::Profile,
    field: &str,
    v: &Value,
    users: &std::collections::HashMap<String, String>,
) -> String {
    match (field, v) {
        (_, Value::Null) => "—".into(),
        ("status", Value::String(s)) => CaseStatus::parse(s)
            .map(status_label)
            .unwrap_or(s)
            .to_string(),
        ("territory" | "transfer_territory", Value::String(s)) => territory_name(p, L, s),
        ("responsible_org", Value::String(s)) => p
            .agency(s)
            .map(|a| a.name.get(L.code()).to_string())
            .unwrap_or_else(|| s.clone()),
        ("responsible_user", Value::String(s)) => {
            users.get(s).cloned().unwrap_or_else(|| s.clone())
        }
        ("work", Value::Object(m)) => {
            let mut parts = Vec::new();
            for (k, x) in m {
                let text = match (k.as_str(), x) {
                    ("resume_to", Value::String(s)) => CaseStatus::parse(s)
                        .map(status_label)
                        .unwrap_or(s)
                        .to_string(),
                    ("outcome", Value::String(s)) => {
                        classifier_label(p, L, &p.casework.outcome_classifier, s)
                    }
                    ("transfer_org", Value::String(s)) => p
                        .agency(s)
                        .map(|a| a.name.get(L.code()).to_string())
                        .unwrap_or_else(|| s.clone()),
                    (_, Value::String(s)) if parse_date(s).is_some() => display_date_str(s),
                    (_, Value::String(s)) => s.clone(),
                    (_, other) => other.to_string(),
                };
                parts.push(format!("{}: {text}", record_field_label(k)));
            }
            parts.join("; ")
        }
        (_, Value::String(s)) if parse_date(s).is_some() => display_date_str(s),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// A field's value in the history, in words where it is a code.
pub(crate) fn record_value(
    entity: &str,
    field: &str,
    v: &Value,
    users: &std::collections::HashMap<String, String>,
) -> String {
    match (entity, field, v) {
        (_, _, Value::Null) => "—".into(),
        (
            _,
            "visited_by" | "approved_by" | "completed_by" | "responsible_user",
            Value::String(s),
        ) => users.get(s).cloned().unwrap_or_else(|| {
            if s == "system" {
                t(L, "system_actor").to_string()
            } else {
                s.clone()
            }
        }),
        ("activity", "status", Value::String(s)) => activity_status_label(s).to_string(),
        (_, "status", Value::String(s)) => {
            let k = t(L, &format!("cw_record_status_{s}"));
            if k == "?" { s.clone() } else { k.to_string() }
        }
        (_, _, Value::String(s)) if parse_date(s).is_some() => display_date_str(s),
        (_, _, Value::String(s)) => s.clone(),
        (_, _, Value::Bool(b)) => t(L, if *b { "yes" } else { "no" }).to_string(),
        (_, "because" | "answers" | "activities", _) => t(L, "cw_details_changed").to_string(),
        (_, _, other) => other.to_string(),
    }
}
