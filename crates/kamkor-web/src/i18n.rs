//! The one translation layer: every UI string is looked up by key in a per-language catalog
//! (`locales/<lang>.toml`). Adding Kyrgyz or English is adding a file, not editing templates.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ru,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
        }
    }
}

struct Catalog {
    ui: HashMap<String, String>,
    error: HashMap<String, String>,
}

/// The catalog of one language, from its files (the main one and the administration one).
fn parse(texts: &[&str]) -> Catalog {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        ui: HashMap<String, String>,
        #[serde(default)]
        error: HashMap<String, String>,
    }
    let mut c = Catalog {
        ui: HashMap::new(),
        error: HashMap::new(),
    };
    // The catalog ships inside the binary and is checked by a test; a broken one is a build
    // defect, so missing keys (shown as-is) are the safe fallback at run time.
    for text in texts {
        if let Ok(f) = toml::from_str::<File>(text) {
            c.ui.extend(f.ui);
            c.error.extend(f.error);
        }
    }
    c
}

pub(crate) const RU_FILES: [&str; 2] = [
    include_str!("../locales/ru.toml"),
    include_str!("../locales/ru_admin.toml"),
];

fn ru() -> &'static Catalog {
    static RU: OnceLock<Catalog> = OnceLock::new();
    RU.get_or_init(|| parse(&RU_FILES))
}

fn catalog(lang: Lang) -> &'static Catalog {
    match lang {
        Lang::Ru => ru(),
    }
}

/// A UI string.
pub fn t(lang: Lang, key: &str) -> &'static str {
    catalog(lang)
        .ui
        .get(key)
        .or_else(|| ru().ui.get(key))
        .map(String::as_str)
        .unwrap_or("?")
}

/// The message for an error code (validation problems, API errors).
pub fn error_message(lang: Lang, code: &str) -> &'static str {
    catalog(lang)
        .error
        .get(code)
        .or_else(|| ru().error.get(code))
        .map(String::as_str)
        .unwrap_or_else(|| t(lang, "server_error_text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_russian_catalog_parses_and_has_keys() {
        let c: toml::Value =
            toml::from_str(include_str!("../locales/ru.toml")).expect("ru.toml parses");
        assert!(c.get("ui").is_some() && c.get("error").is_some());
        assert_eq!(t(Lang::Ru, "app_name"), "Камкор");
        assert!(error_message(Lang::Ru, "id_sex_mismatch").contains("пол"));
    }

    #[test]
    fn every_code_the_domain_emits_has_a_message() {
        for code in [
            "required",
            "too_long",
            "bad_name",
            "bad_date",
            "future_date",
            "unknown_code",
            "unknown_territory",
            "national_id_taken",
            "id_sex_mismatch",
            "id_birth_date_mismatch",
            "id_bad_length",
            "id_not_digits",
            "id_bad_checksum",
            "id_bad_sex_digit",
            "id_bad_date",
            "id_future_date",
            "id_empty",
            "bad_number",
            "below_min",
            "above_max",
            "bad_bool",
            "classifier_item_expired",
            "unknown_field",
            "too_many",
            "too_old",
            "not_found",
            "national_id_repeated",
            "bad_text",
        ] {
            assert!(ru().error.contains_key(code), "missing message for {code}");
        }
    }
}
