//! The printed personal file (seed 000 §21: "personal data of children and families are printed
//! and kept in the child's personal file, with the print date"). A document is a title, a
//! stamp (who printed it, when) and sections of facts and tables; it becomes Typst markup and
//! then a PDF, in-process, with DejaVu Sans embedded (Cyrillic and the Kyrgyz letters ң ө ү).
//!
//! Every text that comes from the records enters the markup as a Typst string literal, escaped,
//! never as markup: a name cannot change the document.

use std::sync::OnceLock;

use typst_as_lib::TypstEngine;

static REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// Texts longer than this are cut (a printed file is not an archive of free text).
const MAX_TEXT: usize = 4000;

#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error("the document could not be typeset: {0}")]
    Typeset(String),
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
}

/// One part of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Label–value pairs, two columns.
    Facts(Vec<(String, String)>),
    /// A table with a header row.
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// A paragraph.
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub heading: String,
    pub blocks: Vec<Block>,
}

/// A printable document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// Over the title, small: the system and the profile.
    pub kicker: String,
    pub title: String,
    /// Under the title: what this is.
    pub subtitle: String,
    /// On every page: printed when, by whom (seed 000 §21).
    pub stamp: String,
    /// "стр." — the word for page, in the document's language.
    pub page_word: String,
    pub sections: Vec<Section>,
}

/// A Typst string literal holding `s` exactly (control characters dropped, length bounded).
fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().take(MAX_TEXT) {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Typst markup of a document.
pub fn typst_source(d: &Document) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "#set document(title: {})\n\
         #set text(font: \"DejaVu Sans\", size: 10pt, lang: \"ru\")\n\
         #set page(paper: \"a4\", margin: (x: 18mm, top: 16mm, bottom: 20mm),\n\
           footer: context [#set text(size: 8pt, fill: luma(90)); #{} #h(1fr) #{} #counter(page).display() / #counter(page).final().first()])\n\
         #set table(stroke: 0.5pt + luma(170), inset: 4pt)\n\
         #show heading: set text(size: 12pt)\n",
        lit(&d.title),
        lit(&d.stamp),
        lit(&d.page_word)
    ));
    s.push_str(&format!(
        "#text(size: 8pt, fill: luma(90))[#{}]\n\n#text(size: 16pt, weight: \"bold\")[#{}]\n\n#{}\n\n#text(size: 9pt)[#{}]\n#line(length: 100%, stroke: 0.5pt)\n",
        lit(&d.kicker),
        lit(&d.title),
        lit(&d.subtitle),
        lit(&d.stamp)
    ));
    for sec in &d.sections {
        s.push_str(&format!("\n#heading(level: 2, {})\n", lit(&sec.heading)));
        for b in &sec.blocks {
            match b {
                Block::Facts(pairs) => {
                    if pairs.is_empty() {
                        continue;
                    }
                    s.push_str(
                        "#table(columns: (38%, 62%), stroke: none, inset: (x: 0pt, y: 3pt),\n",
                    );
                    for (k, v) in pairs {
                        s.push_str(&format!(
                            "  text(fill: luma(80))[#{}], [#{}],\n",
                            lit(k),
                            lit(if v.is_empty() { "—" } else { v })
                        ));
                    }
                    s.push_str(")\n");
                }
                Block::Table { head, rows } => {
                    if head.is_empty() {
                        continue;
                    }
                    s.push_str(&format!("#table(columns: {}, table.header(", head.len()));
                    for h in head {
                        s.push_str(&format!("text(weight: \"bold\")[#{}], ", lit(h)));
                    }
                    s.push_str("),\n");
                    for r in rows {
                        for i in 0..head.len() {
                            let v = r.get(i).map(String::as_str).unwrap_or("");
                            s.push_str(&format!("  [#{}],", lit(v)));
                        }
                        s.push('\n');
                    }
                    s.push_str(")\n");
                }
                Block::Text(t) => s.push_str(&format!("#{}\n\n", lit(t))),
            }
        }
    }
    s
}

fn engine_fonts() -> &'static [&'static [u8]; 2] {
    static FONTS: OnceLock<[&'static [u8]; 2]> = OnceLock::new();
    FONTS.get_or_init(|| [REGULAR, BOLD])
}

/// Typeset the document as PDF.
pub fn to_pdf(d: &Document) -> Result<Vec<u8>, PrintError> {
    let engine = TypstEngine::builder()
        .main_file(typst_source(d))
        .fonts(engine_fonts().iter().copied())
        .build();
    let doc = engine
        .compile()
        .output
        .map_err(|e| PrintError::Typeset(format!("{e:?}")))?;
    typst_pdf::pdf(&doc, &Default::default()).map_err(|e| PrintError::Pdf(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Document {
        Document {
            kicker: "Камкор — АИС ТЖС".into(),
            title: name.into(),
            subtitle: "Личное дело ребёнка".into(),
            stamp: "Распечатано 25.11.2026 14:05 — Асанова Айгуль (asanova.a)".into(),
            page_word: "стр.".into(),
            sections: vec![
                Section {
                    heading: "Основные сведения".into(),
                    blocks: vec![Block::Facts(vec![
                        ("Дата рождения".into(), "09.03.2015".into()),
                        ("Адрес".into(), "с. Теплоключенка, ул. Ленина, 5".into()),
                        ("Примечание".into(), String::new()),
                    ])],
                },
                Section {
                    heading: "Родственники".into(),
                    blocks: vec![Block::Table {
                        head: vec!["Кем приходится".into(), "ФИО".into()],
                        rows: vec![vec!["мать".into(), "Токтогулова Айгерим".into()]],
                    }],
                },
            ],
        }
    }

    #[test]
    fn a_personal_file_becomes_a_pdf_with_kyrgyz_letters() {
        let pdf = to_pdf(&sample("Үмөтбаев Ңурлан Өмүрович")).expect("pdf");
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.len() > 1000);
    }

    #[test]
    fn texts_from_records_cannot_change_the_markup() {
        // Markup, code and a closing quote in a name stay text.
        let evil = "Иван\" ] #read(\"/etc/passwd\") [ *жирный* $x$ \\ #set page(width: 1pt)";
        let src = typst_source(&sample(evil));
        assert!(src.contains(&lit(evil)));
        assert!(!src.contains("#read(\"/etc/passwd\")"));
        to_pdf(&sample(evil)).expect("still a document");
    }
}
