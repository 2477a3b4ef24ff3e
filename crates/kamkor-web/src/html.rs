//! Page layout and form pieces. Every visible string goes through `t` (the translation layer)
//! or comes from the profile's labels.

use kamkor_domain::policy::Role;
use kamkor_domain::profile::{FieldDef, FieldType, Profile};
use kamkor_domain::records::Problems;
use kamkor_store::UserRow;
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use crate::i18n::{Lang, error_message, t};

pub struct Page<'a> {
    pub lang: Lang,
    pub title: &'a str,
    pub user: Option<&'a UserRow>,
    pub csrf: Option<&'a str>,
    pub profile: &'a Profile,
    pub flash: Option<&'a str>,
}

pub fn layout(p: &Page, body: Markup) -> Markup {
    let l = p.lang;
    let child = p.profile.meta.subject == "child";
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (p.title) " — " (t(l, "app_name")) }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                a.skip href="#main" { (t(l, "skip_to_content")) }
                header.top {
                    div.brand {
                        a href="/" { strong { (t(l, "app_name")) } }
                        span.tagline { (p.profile.meta.title.get(l.code())) }
                    }
                    @if let Some(u) = p.user {
                        @let roles = kamkor_domain::policy::parse_roles(&u.role);
                        @let reads = roles.iter().any(|r| matches!(r, Role::Supervisor | Role::Specialist | Role::AgencySpecialist | Role::CentralViewer | Role::TerritorialViewer));
                        @let writes = roles.iter().any(|r| matches!(r, Role::Supervisor | Role::Specialist));
                        // Until the one-time password is changed, nothing else opens (seed
                        // 000 §27): no menu to lead elsewhere.
                        @if !u.must_change_password {
                        nav aria-label=(t(l, "nav_home")) {
                            a href="/" { (t(l, "nav_home")) }
                            @if reads {
                                a href="/persons" { (t(l, "nav_persons")) }
                                a href="/cases" { (t(l, "nav_cases")) }
                                a href="/completeness" { (t(l, "nav_completeness")) }
                            }
                            @if writes {
                                a href="/register" { (t(l, if child { "nav_register_child" } else { "nav_register_person" })) }
                                a href="/families/new" { (t(l, "nav_register_family")) }
                            }
                            @if roles.contains(&Role::Administrator) {
                                a href="/admin" { (t(l, "nav_admin")) }
                            }
                            @if roles.iter().any(|r| matches!(r, Role::Auditor | Role::Administrator)) {
                                a href="/audit" { (t(l, "nav_audit")) }
                            }
                        }
                        }
                        div.user {
                            span { (t(l, "logged_in_as")) " " strong { (u.full_name) } " (" (u.login) ")" }
                            a href="/account" { (t(l, "nav_account")) }
                            form method="post" action="/logout" class="inline" {
                                input type="hidden" name="_csrf" value=(p.csrf.unwrap_or_default());
                                button type="submit" class="link" { (t(l, "nav_logout")) }
                            }
                        }
                    }
                }
                main #main {
                    @if let Some(f) = p.flash { p.flash role="status" { (f) } }
                    (body)
                }
            }
        }
    }
}

/// The summary of errors at the top of a form (linked to the fields).
pub fn error_summary(l: Lang, problems: &Problems, label: impl Fn(&str) -> String) -> Markup {
    if problems.is_empty() {
        return html! {};
    }
    html! {
        div.errors role="alert" tabindex="-1" {
            h2 { (t(l, "errors_title")) }
            p { (t(l, "errors_intro")) }
            ul {
                @for e in &problems.0 {
                    li { a href={ "#f-" (field_id(&e.field)) } { (label(&e.field)) ": " (error_message(l, &e.code)) } }
                }
            }
        }
    }
}

pub fn field_id(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

pub fn field_error(l: Lang, problems: &Problems, name: &str) -> Markup {
    match problems.for_field(name) {
        Some(e) => {
            html! { p.field-error id={ "e-" (field_id(name)) } { (error_message(l, &e.code)) } }
        }
        None => html! {},
    }
}

pub struct Input<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub value: &'a str,
    pub kind: &'a str,
    pub required: bool,
    pub hint: Option<&'a str>,
    pub autocomplete: Option<&'a str>,
}

pub fn text_input(l: Lang, problems: &Problems, i: Input) -> Markup {
    let id = field_id(i.name);
    let err = problems.for_field(i.name).is_some();
    html! {
        div.field.has-error[err] #{ "f-" (id) } {
            label for=(id) { (i.label) @if i.required { span.req title=(t(l, "required_mark")) { " *" } } }
            @if let Some(h) = i.hint { p.hint { (h) } }
            (field_error(l, problems, i.name))
            input id=(id) name=(i.name) type=(i.kind) value=(i.value) required[i.required]
                autocomplete=(i.autocomplete.unwrap_or("off"))
                aria-invalid=(if err { "true" } else { "false" })
                aria-describedby=[err.then(|| format!("e-{id}"))];
        }
    }
}

pub fn select(
    l: Lang,
    problems: &Problems,
    name: &str,
    label: &str,
    value: &str,
    required: bool,
    options: &[(String, String)],
) -> Markup {
    select_with(
        l,
        problems,
        name,
        label,
        value,
        required,
        options,
        t(l, "choose"),
    )
}

/// A choice whose empty option reads `empty` ("any" for a search filter).
#[allow(clippy::too_many_arguments)]
pub fn select_with(
    l: Lang,
    problems: &Problems,
    name: &str,
    label: &str,
    value: &str,
    required: bool,
    options: &[(String, String)],
    empty: &str,
) -> Markup {
    let id = field_id(name);
    let err = problems.for_field(name).is_some();
    html! {
        div.field.has-error[err] #{ "f-" (id) } {
            label for=(id) { (label) @if required { span.req { " *" } } }
            (field_error(l, problems, name))
            select id=(id) name=(name) required[required] aria-invalid=(if err { "true" } else { "false" }) {
                option value="" { (empty) }
                @for (code, text) in options {
                    option value=(code) selected[code == value] { (text) }
                }
            }
        }
    }
}

/// A free-text answer of a few lines, with its error and an optional hint.
pub fn textarea(
    l: Lang,
    problems: &Problems,
    name: &str,
    label: &str,
    value: &str,
    required: bool,
    hint: Option<&str>,
) -> Markup {
    let id = field_id(name);
    let err = problems.for_field(name).is_some();
    html! {
        div.field.has-error[err] #{ "f-" (id) } {
            label for=(id) { (label) @if required { span.req { " *" } } }
            @if let Some(h) = hint { p.hint { (h) } }
            (field_error(l, problems, name))
            textarea id=(id) name=(name) rows="4" required[required] aria-invalid=(if err { "true" } else { "false" }) { (value) }
        }
    }
}

pub fn checkboxes(
    l: Lang,
    problems: &Problems,
    name: &str,
    label: &str,
    values: &[String],
    options: &[(String, String)],
) -> Markup {
    let id = field_id(name);
    let err = problems.for_field(name).is_some();
    html! {
        fieldset.field.checks.has-error[err] #{ "f-" (id) } {
            legend { (label) }
            (field_error(l, problems, name))
            @for (code, text) in options {
                label.check {
                    input type="checkbox" name=(name) value=(code) checked[values.contains(code)];
                    " " (text)
                }
            }
        }
    }
}

pub fn classifier_options(
    p: &Profile,
    l: Lang,
    classifier: &str,
    keep: &[String],
) -> Vec<(String, String)> {
    let today = time::OffsetDateTime::now_utc().date();
    p.classifier(classifier)
        .map(|c| {
            c.item
                .iter()
                // Expired items stay readable on old records but are not offered for new ones.
                .filter(|i| i.valid_on(today) || keep.contains(&i.code))
                .map(|i| (i.code.clone(), i.label.get(l.code()).to_string()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn classifier_label(p: &Profile, l: Lang, classifier: &str, code: &str) -> String {
    p.classifier(classifier)
        .and_then(|c| c.find(code))
        .map(|i| i.label.get(l.code()).to_string())
        .unwrap_or_else(|| code.to_string())
}

/// A territory choice grouped by region: each first-level unit with subdivisions is an
/// `<optgroup>` of its subdivisions; a first-level unit without any (a city of republican
/// significance, an urban okrug) is an option itself. The root (the country) is not offered.
pub fn territory_select(
    l: Lang,
    problems: &Problems,
    p: &Profile,
    name: &str,
    label: &str,
    value: &str,
    required: bool,
) -> Markup {
    let id = field_id(name);
    let err = problems.for_field(name).is_some();
    let root = p
        .root_territory()
        .map(|t| t.code.clone())
        .unwrap_or_default();
    let tops: Vec<_> = p.territories.iter().filter(|t| t.parent == root).collect();
    html! {
        div.field.has-error[err] #{ "f-" (id) } {
            label for=(id) { (label) @if required { span.req { " *" } } }
            (field_error(l, problems, name))
            select id=(id) name=(name) required[required] aria-invalid=(if err { "true" } else { "false" }) {
                option value="" { (t(l, "choose")) }
                @for top in tops {
                    @let subs = descendants(p, &top.code);
                    @if subs.is_empty() {
                        option value=(top.code) selected[top.code == value] { (top.name.get(l.code())) }
                    } @else {
                        optgroup label=(top.name.get(l.code())) {
                            @for t in subs {
                                option value=(t.code) selected[t.code == value] { (t.name.get(l.code())) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn descendants<'a>(p: &'a Profile, code: &str) -> Vec<&'a kamkor_domain::profile::Territory> {
    let mut out = Vec::new();
    for t in p.territories.iter().filter(|t| t.parent == code) {
        out.push(t);
        out.extend(descendants(p, &t.code));
    }
    out
}

pub fn territory_name(p: &Profile, l: Lang, code: &str) -> String {
    let path = p.territory_path(code);
    if path.is_empty() {
        return code.to_string();
    }
    // The country is left out of every longer path; alone, it is the name.
    let skip = usize::from(path.len() > 1);
    path.iter()
        .skip(skip)
        .map(|t| t.name.get(l.code()).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An input for a profile-defined field, by type.
pub fn extra_input(
    p: &Profile,
    l: Lang,
    problems: &Problems,
    prefix: &str,
    f: &FieldDef,
    value: Option<&Value>,
) -> Markup {
    let name = format!("{prefix}extra.{}", f.code);
    let err_key = format!("{prefix}extra.{}", f.code);
    let label = f.label.get(l.code());
    let text = match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    };
    match f.kind {
        FieldType::Text | FieldType::Integer | FieldType::Money | FieldType::Date => text_input(
            l,
            problems,
            Input {
                name: &err_key,
                label,
                value: &if f.kind == FieldType::Money {
                    money_text(value)
                } else {
                    text
                },
                kind: match f.kind {
                    FieldType::Date => "date",
                    FieldType::Integer => "number",
                    _ => "text",
                },
                required: f.required,
                hint: f.help.as_ref().map(|h| h.get(l.code())),
                autocomplete: None,
            },
        ),
        FieldType::Textarea => {
            let id = field_id(&name);
            let err = problems.for_field(&name).is_some();
            html! {
                div.field.has-error[err] #{ "f-" (id) } {
                    label for=(id) { (label) @if f.required { span.req { " *" } } }
                    (field_error(l, problems, &name))
                    textarea id=(id) name=(name) rows="3" required[f.required] { (text) }
                }
            }
        }
        FieldType::Bool => select(
            l,
            problems,
            &name,
            label,
            &text,
            f.required,
            &[
                ("true".into(), t(l, "yes").into()),
                ("false".into(), t(l, "no").into()),
            ],
        ),
        FieldType::Classifier => {
            let opts = classifier_options(
                p,
                l,
                f.classifier.as_deref().unwrap_or_default(),
                std::slice::from_ref(&text),
            );
            select(l, problems, &name, label, &text, f.required, &opts)
        }
        FieldType::MultiClassifier => {
            let values: Vec<String> = match value {
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).collect(),
                _ => Vec::new(),
            };
            let opts =
                classifier_options(p, l, f.classifier.as_deref().unwrap_or_default(), &values);
            checkboxes(l, problems, &name, label, &values, &opts)
        }
        FieldType::Territory => territory_select(l, problems, p, &name, label, &text, f.required),
    }
}

fn money_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.as_i64().map(format_money).unwrap_or_default(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

pub fn format_money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{},{:02}", m / 100, m % 100)
}

/// Display value of a profile-defined field.
pub fn extra_display(p: &Profile, l: Lang, f: &FieldDef, v: &Value) -> String {
    match (f.kind, v) {
        (FieldType::Bool, Value::Bool(b)) => t(l, if *b { "yes" } else { "no" }).to_string(),
        (FieldType::Classifier, Value::String(s)) => {
            classifier_label(p, l, f.classifier.as_deref().unwrap_or_default(), s)
        }
        (FieldType::MultiClassifier, Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str())
            .map(|s| classifier_label(p, l, f.classifier.as_deref().unwrap_or_default(), s))
            .collect::<Vec<_>>()
            .join("; "),
        (FieldType::Money, Value::Number(n)) => n.as_i64().map(format_money).unwrap_or_default(),
        (FieldType::Date, Value::String(s)) => display_date_str(s),
        (FieldType::Territory, Value::String(s)) => territory_name(p, l, s),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Null) => String::new(),
        (_, other) => other.to_string(),
    }
}

/// ISO date → DD.MM.YYYY, as people read it.
pub fn display_date_str(s: &str) -> String {
    match kamkor_domain::records::parse_date(s) {
        Some(d) => display_date(d),
        None => s.to_string(),
    }
}

pub fn display_date(d: time::Date) -> String {
    format!("{:02}.{:02}.{:04}", d.day(), d.month() as u8, d.year())
}

/// RFC 3339 UTC timestamp → local "DD.MM.YYYY HH:MM" (the profile's UTC offset).
pub fn display_ts(p: &Profile, s: &str) -> String {
    match kamkor_store::parse_ts(s) {
        Some(t) => {
            let off = time::UtcOffset::from_hms(p.meta.utc_offset_hours, 0, 0)
                .unwrap_or(time::UtcOffset::UTC);
            let t = t.to_offset(off);
            format!(
                "{:02}.{:02}.{:04} {:02}:{:02}",
                t.day(),
                t.month() as u8,
                t.year(),
                t.hour(),
                t.minute()
            )
        }
        None => s.to_string(),
    }
}

pub fn hidden_csrf(csrf: &str) -> Markup {
    html! { input type="hidden" name="_csrf" value=(csrf); }
}
