//! Person matching (issue 6): names however they were spelled — Kyrgyz or Russian Cyrillic,
//! a Latin transliteration, ң ө ү written as н о у, typos, a missing patronymic — birth dates with
//! day and month swapped, national identifiers with one digit wrong. Pure functions; the search
//! index and the duplicate finder are built on them.
//!
//! Names are compared in one canonical Latin form ([`fold`]): Cyrillic is transliterated with
//! our own Kyrgyz/Russian table (no crate handles ң ө ү), and the spellings that differ between
//! transliteration schemes (kh/h/x, zh/j/dzh, ts/c, ya/ia, yu/iu, y/i, doubled letters)
//! are collapsed to one.

use time::Date;

/// Cyrillic letter → Latin, Russian and Kyrgyz (ң ө ү and their Russian-keyboard stand-ins
/// н о у meet after folding).
fn translit(c: char) -> Option<&'static str> {
    Some(match c {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'д' => "d",
        'е' | 'э' | 'є' => "e",
        'ё' => "yo",
        'ж' => "zh",
        'з' => "z",
        'и' | 'і' => "i",
        'й' => "y",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' | 'ң' => "n",
        'о' | 'ө' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' | 'ү' | 'ў' => "u",
        'ф' => "f",
        'х' | 'һ' => "kh",
        'ц' => "ts",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "shch",
        'ъ' | 'ь' => "",
        'ы' => "y",
        'ю' => "yu",
        'я' => "ya",
        _ => return None,
    })
}

/// Latin letters with marks that transliterations use, to their plain letter.
fn plain_latin(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ā' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'ē' | 'ė' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'ī' | 'ı' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ø' | 'ō' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'ū' => 'u',
        'ç' | 'č' => 'c',
        'ñ' | 'ń' | 'ŋ' => 'n',
        'š' | 'ş' => 's',
        'ž' => 'z',
        'ğ' => 'g',
        'ý' | 'ÿ' => 'y',
        other => other,
    }
}

/// Multi-letter spellings that mean one sound, longest first, and the one letter they fold to
/// (`w` stands for ш/щ and `q` for ч: letters no folded input keeps).
const DIGRAPHS: [(&str, &str); 14] = [
    ("shch", "w"),
    ("sch", "w"),
    ("dzh", "j"),
    ("tsh", "q"),
    ("zh", "j"),
    ("dj", "j"),
    ("kh", "h"),
    ("ch", "q"),
    ("ts", "c"),
    ("tz", "c"),
    ("sh", "w"),
    ("ph", "f"),
    // ө and ү written the German way (Oemuer, Tuenguech).
    ("oe", "o"),
    ("ue", "u"),
];

/// The canonical form of a name for matching: lower case, Latin, one spelling per sound, no
/// doubled letters, words separated by single spaces. `fold("Жылдыз") == fold("Jyldyz")`,
/// `fold("Өмүрбек") == fold("Омурбек") == fold("Omurbek")`.
pub fn fold(s: &str) -> String {
    let mut latin = String::with_capacity(s.len() + 8);
    for ch in s.chars() {
        for l in ch.to_lowercase() {
            if let Some(t) = translit(l) {
                latin.push_str(t);
            } else {
                let p = plain_latin(l);
                if p.is_ascii_alphabetic() {
                    latin.push(p);
                } else if p.is_whitespace() || p == '-' {
                    latin.push(' ');
                }
                // Apostrophes, digits and other marks carry no sound of a name.
            }
        }
    }
    let mut out = String::with_capacity(latin.len());
    for word in latin.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&fold_word(word));
    }
    out
}

fn fold_word(w: &str) -> String {
    let b = w.as_bytes();
    let mut s = String::with_capacity(w.len());
    let mut i = 0;
    'outer: while i < b.len() {
        for (from, to) in DIGRAPHS {
            if w[i..].starts_with(from) {
                s.push_str(to);
                i += from.len();
                continue 'outer;
            }
        }
        s.push(match b[i] {
            // й, ы and the y of ya/yu/yo are all i (Айпери/Aypery, Юлия/Iuliia).
            b'y' => 'i',
            b'x' => 'h',
            b'q' => 'k',
            b'w' => 'v',
            other => other as char,
        });
        i += 1;
    }
    // A word-initial е is written e, ye or ie (Елена / Yelena).
    if s.starts_with("ie") {
        s.remove(0);
    }
    // Doubled letters are spelled both ways (Алла / Ala, Юлия / Iuliia).
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// How alike two folded words are, 0 to 1 (Jaro–Winkler: typos and endings cost little,
/// the first letters much).
pub fn word_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    strsim::jaro_winkler(a, b)
}

/// How well a person's name answers a query, 0 to 1. Each word of the query is matched to its
/// best word of the name (so the order of surname, given name and patronymic does not matter);
/// words of the name the query leaves out (a patronymic) cost nothing. Both sides folded.
pub fn name_score(query: &str, name: &str) -> f64 {
    let q: Vec<&str> = query.split_whitespace().collect();
    let n: Vec<&str> = name.split_whitespace().collect();
    if q.is_empty() || n.is_empty() {
        return 0.0;
    }
    let mut used = vec![false; n.len()];
    let mut total = 0.0;
    for qw in &q {
        let mut best = (0.0, None);
        for (i, nw) in n.iter().enumerate() {
            if used[i] {
                continue;
            }
            let s = word_similarity(qw, nw);
            if s > best.0 {
                best = (s, Some(i));
            }
        }
        if let Some(i) = best.1 {
            used[i] = true;
        }
        total += best.0;
    }
    total / q.len() as f64
}

/// How a birth date answers a queried one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DateMatch {
    None,
    /// Only the year is the same.
    SameYear,
    /// Day and month swapped (03.04 for 04.03).
    Swapped,
    Exact,
}

impl DateMatch {
    /// The stable code the API and the CLI print.
    pub fn code(self) -> &'static str {
        match self {
            DateMatch::Exact => "exact",
            DateMatch::Swapped => "day_month_swapped",
            DateMatch::SameYear => "same_year",
            DateMatch::None => "different",
        }
    }
}

pub fn date_match(query: Date, birth: Date) -> DateMatch {
    if query == birth {
        return DateMatch::Exact;
    }
    if query.year() == birth.year()
        && query.day() == u8::from(birth.month())
        && u8::from(query.month()) == birth.day()
    {
        return DateMatch::Swapped;
    }
    if query.year() == birth.year() {
        return DateMatch::SameYear;
    }
    DateMatch::None
}

/// The dates a query date may have been meant as: itself and, when it exists, the one with
/// day and month swapped.
pub fn date_variants(d: Date) -> Vec<Date> {
    let mut out = vec![d];
    if let Ok(m) = time::Month::try_from(d.day())
        && let Ok(s) = Date::from_calendar_date(d.year(), m, u8::from(d.month()))
        && s != d
    {
        out.push(s);
    }
    out
}

/// Whether two identifiers differ by one digit or by two neighbouring digits swapped (the
/// usual typing mistakes); equal ones are not "near".
pub fn id_near(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() || a == b {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    match diff.as_slice() {
        [_] => true,
        [i, j] if *j == i + 1 => a[*i] == b[*j] && a[*j] == b[*i],
        _ => false,
    }
}

/// Identifiers one digit away from `id` (for an exact-lookup index: 9 × length candidates).
pub fn id_neighbours(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = id.as_bytes();
    if !bytes.iter().all(u8::is_ascii_digit) || bytes.len() > 20 {
        return out;
    }
    for i in 0..bytes.len() {
        for d in b'0'..=b'9' {
            if d != bytes[i] {
                let mut v = bytes.to_vec();
                v[i] = d;
                out.push(String::from_utf8_lossy(&v).into_owned());
            }
        }
        if i + 1 < bytes.len() && bytes[i] != bytes[i + 1] {
            let mut v = bytes.to_vec();
            v.swap(i, i + 1);
            out.push(String::from_utf8_lossy(&v).into_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn spellings_of_one_name_fold_together() {
        for group in [
            &["Жылдыз", "Jyldyz", "Zhyldyz", "Dzhyldyz", "Жылдыз"][..],
            &["Өмүрбек", "Омурбек", "Omurbek", "Ömürbek"][..],
            &["Айпери", "Aiperi", "Aypery"][..],
            &["Хасанов", "Hasanov", "Khasanov", "Xasanov"][..],
            &["Юлия", "Yuliya", "Iuliia", "Yulia"][..],
            &["Мария", "Maria", "Mariya", "Mariia"][..],
            &["Жакып", "Jakyp", "Zhakyp"][..],
            &["Елена", "Yelena", "Elena"][..],
            &["Щербаков", "Shcherbakov", "Sherbakov"][..],
            &["Алла", "Ala", "Alla"][..],
            &["Мамматов", "Mamatov"][..],
            &["Ңурлан", "Нурлан", "Nurlan"][..],
            &["Цой", "Tsoi", "Tsoy", "Tzoi"][..],
            &["Асель", "Asel", "Asel'"][..],
            &["Өмүр", "Omur", "Oemuer", "Ömür"][..],
        ] {
            let f = fold(group[0]);
            for other in group {
                assert_eq!(fold(other), f, "{other} vs {}", group[0]);
            }
        }
        assert_eq!(
            fold("  Асанова-Токтогулова  Айгуль "),
            "asanova toktogulova aigul"
        );
        assert_ne!(fold("Асанов"), fold("Усенов"));
        assert_ne!(fold("Шамиль"), fold("Самиль"), "ш and с stay apart");
    }

    #[test]
    fn name_scores_rank_typos_and_order_but_not_strangers() {
        let n = fold("Асанов Айбек Нурланович");
        assert!(name_score(&fold("Асанов Айбек"), &n) > 0.99);
        assert!(name_score(&fold("Айбек Асанов"), &n) > 0.99, "order");
        assert!(name_score(&fold("Asanov Aibek"), &n) > 0.99, "Latin");
        assert!(name_score(&fold("Асанв Айбек"), &n) > 0.9, "typo");
        let stranger = name_score(&fold("Петров Сергей"), &n);
        assert!(stranger < 0.75, "{stranger}");
        assert_eq!(name_score("", &n), 0.0);
    }

    #[test]
    fn dates_and_identifiers_with_the_usual_mistakes() {
        assert_eq!(
            date_match(date!(2015 - 03 - 09), date!(2015 - 03 - 09)),
            DateMatch::Exact
        );
        assert_eq!(
            date_match(date!(2015 - 09 - 03), date!(2015 - 03 - 09)),
            DateMatch::Swapped
        );
        assert_eq!(
            date_match(date!(2015 - 01 - 01), date!(2015 - 03 - 09)),
            DateMatch::SameYear
        );
        assert_eq!(
            date_match(date!(2014 - 03 - 09), date!(2015 - 03 - 09)),
            DateMatch::None
        );
        assert_eq!(
            date_variants(date!(2015 - 03 - 09)),
            vec![date!(2015 - 03 - 09), date!(2015 - 09 - 03)]
        );
        assert_eq!(
            date_variants(date!(2015 - 03 - 25)),
            vec![date!(2015 - 03 - 25)]
        );
        assert!(id_near("20903201500011", "20903201500012"));
        assert!(
            id_near("20903201500011", "29003201500011"),
            "swapped neighbours"
        );
        assert!(!id_near("20903201500011", "20903201500011"));
        assert!(!id_near("20903201500011", "20903201500022"));
        let n = id_neighbours("123");
        assert!(n.contains(&"124".to_string()) && n.contains(&"213".to_string()));
        assert!(n.iter().all(|x| id_near("123", x)));
        assert!(id_neighbours("12a").is_empty());
    }
}

/// The same day `years` years earlier (29 February becomes the 28th in a common year).
fn years_before(day: Date, years: i32) -> Date {
    let y = day.year() - years;
    Date::from_calendar_date(y, day.month(), day.day())
        .or_else(|_| Date::from_calendar_date(y, day.month(), 28))
        .unwrap_or(Date::MIN)
}

/// The birth days of everyone aged `from` to `to` whole years (both included) on `today`.
pub fn birth_range_for_ages(today: Date, from: Option<u32>, to: Option<u32>) -> (Date, Date) {
    let clamp = |a: u32| a.min(200) as i32;
    let latest = from.map_or(today, |a| years_before(today, clamp(a)));
    let earliest = to.map_or(Date::MIN, |a| {
        years_before(today, clamp(a) + 1)
            .next_day()
            .unwrap_or(Date::MIN)
    });
    (earliest, latest)
}

#[cfg(test)]
mod age_tests {
    use super::*;
    use crate::records::age_on;
    use time::macros::date;

    #[test]
    fn age_ranges_hold_exactly_the_ages_asked() {
        let today = date!(2026 - 11 - 25);
        let (from, to) = birth_range_for_ages(today, Some(5), Some(7));
        assert_eq!(age_on(to, today), 5);
        assert_eq!(age_on(to.next_day().unwrap(), today), 4);
        assert_eq!(age_on(from, today), 7);
        assert_eq!(age_on(from.previous_day().unwrap(), today), 8);
        let (_, to) = birth_range_for_ages(date!(2024 - 02 - 29), Some(1), None);
        assert_eq!(to, date!(2023 - 02 - 28));
        let (from, to) = birth_range_for_ages(today, None, None);
        assert_eq!((from, to), (Date::MIN, today));
    }
}
