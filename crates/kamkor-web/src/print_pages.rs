//! Printing the personal file (seed 000 §21: printed "with the print date"): a print-ready
//! page and the same document as PDF. Both come from one [`kamkor_print::Document`], stamped
//! with who printed it and when; every print is in the ledger.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kamkor_app::{AppError, PersonCard};
use kamkor_domain::records::PersonRole;
use kamkor_print::{Block, Document, Section};
use maud::{DOCTYPE, Markup, html};
use uuid::Uuid;

use crate::html::{classifier_label, display_date, display_ts, extra_display, territory_name};
use crate::i18n::{Lang, t};
use crate::pages::{PageResult, nid_display, nid_label, pe, render, status_label};
use crate::{AppState, PageAuth};

const L: Lang = Lang::Ru;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/persons/{id}/print", get(print_page))
        .route("/persons/{id}/print.pdf", get(print_pdf))
}

/// The personal file of one person as a printable document.
fn person_document(s: &AppState, auth: &PageAuth, card: &PersonCard, printed_at: &str) -> Document {
    let pr = &s.app.profile;
    let d = &card.person.data;
    let today = auth.ctx.today();
    let child = pr.meta.subject == "child";
    let u = &auth.ctx.user;
    let org = pr
        .agency(&u.organisation)
        .map(|a| a.name.get(L.code()).to_string())
        .unwrap_or_default();
    let stamp = format!(
        "{} {} — {} ({}){}",
        t(L, "print_printed"),
        display_ts(pr, printed_at),
        u.full_name,
        u.login,
        if org.is_empty() {
            String::new()
        } else {
            format!(", {org}")
        }
    );
    let mut main = vec![
        (
            t(L, "person_sex").to_string(),
            t(
                L,
                if d.sex == kamkor_domain::Sex::Female {
                    "sex_female"
                } else {
                    "sex_male"
                },
            )
            .to_string(),
        ),
        (
            t(L, "person_birth_date").to_string(),
            d.birth_date
                .map(|b| {
                    format!(
                        "{} ({} {})",
                        display_date(b),
                        kamkor_domain::records::age_on(b, today),
                        t(L, "person_years")
                    )
                })
                .unwrap_or_default(),
        ),
        (
            nid_label(pr).to_string(),
            nid_display(pr, d.national_id.as_deref()),
        ),
        (
            t(L, "person_citizenship").to_string(),
            d.citizenship
                .as_deref()
                .map(|c| classifier_label(pr, L, "citizenship", c))
                .unwrap_or_default(),
        ),
        (
            t(L, "person_residence_territory").to_string(),
            d.residence_territory
                .as_deref()
                .map(|c| territory_name(pr, L, c))
                .unwrap_or_default(),
        ),
        (
            t(L, "person_address").to_string(),
            d.address.clone().unwrap_or_default(),
        ),
        (
            t(L, "person_disability").to_string(),
            d.disability
                .as_deref()
                .map(|c| classifier_label(pr, L, "disability", c))
                .unwrap_or_default(),
        ),
    ];
    if pr.classifier("legal_status").is_some() {
        main.push((
            t(L, "person_legal_status").to_string(),
            d.legal_status
                .as_deref()
                .map(|c| classifier_label(pr, L, "legal_status", c))
                .unwrap_or_default(),
        ));
    }
    main.push((
        t(L, "person_social_payments").to_string(),
        d.social_payments
            .iter()
            .map(|c| classifier_label(pr, L, "social_payment", c))
            .collect::<Vec<_>>()
            .join("; "),
    ));
    let mut sections = vec![Section {
        heading: t(L, "person_main").to_string(),
        blocks: vec![Block::Facts(main)],
    }];
    if d.role == PersonRole::Subject
        && let Some(form) = pr.forms.iter().find(|f| f.applies_to == "person")
    {
        for sec in &form.section {
            let facts = sec
                .field
                .iter()
                .map(|f| {
                    (
                        f.label.get(L.code()).to_string(),
                        d.extra
                            .get(&f.code)
                            .map(|v| extra_display(pr, L, f, v))
                            .unwrap_or_default(),
                    )
                })
                .collect();
            sections.push(Section {
                heading: sec.label.get(L.code()).to_string(),
                blocks: vec![Block::Facts(facts)],
            });
        }
    }
    sections.push(Section {
        heading: t(L, "person_relatives").to_string(),
        blocks: vec![if card.relatives.is_empty() {
            Block::Text(t(L, "person_no_relatives").to_string())
        } else {
            Block::Table {
                head: vec![
                    t(L, "col_relation").into(),
                    t(L, "col_name").into(),
                    t(L, "col_relative_status").into(),
                    t(L, "col_birth_date").into(),
                    t(L, "col_national_id").into(),
                ],
                rows: card
                    .relatives
                    .iter()
                    .map(|(r, p)| {
                        vec![
                            classifier_label(pr, L, "relation_kind", &r.data.relation_kind),
                            p.data.full_name(),
                            classifier_label(pr, L, "relative_status", &r.data.relative_status),
                            p.data.birth_date.map(display_date).unwrap_or_default(),
                            nid_display(pr, p.data.national_id.as_deref()),
                        ]
                    })
                    .collect(),
            }
        }],
    });
    sections.push(Section {
        heading: t(L, "person_families").to_string(),
        blocks: vec![if card.families.is_empty() {
            Block::Text(t(L, "person_no_families").to_string())
        } else {
            Block::Table {
                head: vec![t(L, "family_name").into(), t(L, "family_address").into()],
                rows: card
                    .families
                    .iter()
                    .map(|f| {
                        vec![
                            f.data.name.clone(),
                            f.data.address.clone().unwrap_or_default(),
                        ]
                    })
                    .collect(),
            }
        }],
    });
    sections.push(Section {
        heading: t(L, "person_cases").to_string(),
        blocks: vec![if card.cases.is_empty() {
            Block::Text(t(L, "person_no_cases").to_string())
        } else {
            Block::Table {
                head: vec![
                    t(L, "col_case").into(),
                    t(L, "col_status").into(),
                    t(L, "col_identified_on").into(),
                ],
                rows: card
                    .cases
                    .iter()
                    .map(|c| {
                        vec![
                            c.number.clone(),
                            status_label(c.status).to_string(),
                            display_date(c.data.identified_on),
                        ]
                    })
                    .collect(),
            }
        }],
    });
    if card.hidden > 0 {
        sections.push(Section {
            heading: t(L, "print_hidden_title").to_string(),
            blocks: vec![Block::Text(format!(
                "{} {}",
                t(L, "print_hidden"),
                card.hidden
            ))],
        });
    }
    Document {
        kicker: format!("{} — {}", t(L, "app_name"), pr.meta.title.get(L.code())),
        title: d.full_name(),
        subtitle: t(
            L,
            if child {
                "print_subtitle_child"
            } else {
                "print_subtitle_person"
            },
        )
        .to_string(),
        stamp,
        page_word: t(L, "print_page").to_string(),
        sections,
    }
}

/// The same document as a page made for paper (no menu; the browser's print prints it).
fn document_html(doc: &Document, pdf_href: &str, back_href: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="ru" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (doc.title) " — " (doc.subtitle) }
                link rel="stylesheet" href="/static/app.css";
            }
            body.print {
                main.printable {
                    p.noprint.actions {
                        a.button href=(pdf_href) { (t(L, "print_pdf")) }
                        a.button.secondary href=(back_href) { (t(L, "print_back")) }
                        span.hint { (t(L, "print_hint")) }
                    }
                    p.kicker { (doc.kicker) }
                    h1 { (doc.title) }
                    p { (doc.subtitle) }
                    p.stamp { (doc.stamp) }
                    @for sec in &doc.sections {
                        section {
                            h2 { (sec.heading) }
                            @for b in &sec.blocks {
                                @match b {
                                    Block::Facts(pairs) => {
                                        table.facts { tbody { @for (k, v) in pairs { tr { th { (k) } td { @if v.is_empty() { "—" } @else { (v) } } } } } }
                                    }
                                    Block::Table { head, rows } => {
                                        table {
                                            thead { tr { @for h in head { th { (h) } } } }
                                            tbody { @for r in rows { tr { @for c in r { td { (c) } } } } }
                                        }
                                    }
                                    Block::Text(text) => { p { (text) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn load(s: &AppState, auth: &PageAuth, id: &str, format: &str) -> Result<Document, Response> {
    let id = Uuid::parse_str(id).map_err(|_| pe(AppError::NotFound))?;
    let (card, printed_at) = s
        .app
        .print_person(&auth.ctx, id, format)
        .await
        .map_err(pe)?;
    Ok(person_document(s, auth, &card, &printed_at))
}

async fn print_page(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
) -> PageResult {
    let doc = load(&s, &auth, &id, "html").await?;
    Ok(render(
        StatusCode::OK,
        document_html(
            &doc,
            &format!("/persons/{id}/print.pdf"),
            &format!("/persons/{id}"),
        ),
    ))
}

async fn print_pdf(
    State(s): State<AppState>,
    auth: PageAuth,
    Path(id): Path<String>,
) -> PageResult {
    let doc = load(&s, &auth, &id, "pdf").await?;
    // Typesetting takes CPU for a moment: off the request threads.
    let pdf = tokio::task::spawn_blocking(move || kamkor_print::to_pdf(&doc))
        .await
        .map_err(|_| pe(AppError::Config("the PDF task stopped".into())))?
        .map_err(|e| {
            tracing::error!(error = %e, "personal file PDF failed");
            pe(AppError::Config("PDF".into()))
        })?;
    let name = format!("personal-file-{id}.pdf");
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        pdf,
    )
        .into_response())
}
