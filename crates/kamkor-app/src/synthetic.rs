//! A labelled synthetic registry (issue 6 item 4): persons, and known duplicate records of
//! some of them written the way duplicates happen in district offices — a name typed in
//! Latin letters or with ң ө ү as н о у, a typo, surname and given name swapped, day and
//! month swapped, the patronymic, identifier or birth date left out, an identifier with one
//! digit wrong. The labels say which record duplicates which and how it was corrupted, so
//! that search quality and duplicate detection can be measured (`kamkor bench`,
//! `kamkor demo --duplicates`). Deterministic for a seed.

use std::collections::{HashMap, HashSet};

use kamkor_domain::Sex;
use kamkor_domain::identifiers::{KgPin, NationalIdKind, Snils};
use kamkor_domain::profile::Profile;
use kamkor_domain::records::{PersonData, PersonRole};
use serde_json::Map;
use time::{Date, Duration, Month};
use uuid::Uuid;

use crate::demo::{NameLists, Rng};

/// One way a duplicate record differs from the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Corruption {
    /// Written in Latin letters (as in a passport or a foreign document).
    Transliterated,
    /// Kyrgyz ң ө ү typed as н о у (a Russian keyboard).
    KyrgyzLetters,
    /// One letter wrong, missing, added or two letters swapped.
    Typo,
    /// Surname and given name swapped.
    SwappedNames,
    NoPatronymic,
    DayMonthSwapped,
    NoBirthDate,
    NoNationalId,
    /// The identifier with one digit wrong.
    NationalIdTypo,
}

impl Corruption {
    pub fn code(self) -> &'static str {
        match self {
            Corruption::Transliterated => "transliterated",
            Corruption::KyrgyzLetters => "kyrgyz_letters",
            Corruption::Typo => "typo",
            Corruption::SwappedNames => "swapped_names",
            Corruption::NoPatronymic => "no_patronymic",
            Corruption::DayMonthSwapped => "day_month_swapped",
            Corruption::NoBirthDate => "no_birth_date",
            Corruption::NoNationalId => "no_national_id",
            Corruption::NationalIdTypo => "national_id_typo",
        }
    }
}

fn one(rng: &mut Rng, xs: &[&'static str]) -> &'static str {
    xs[rng.below(xs.len())]
}

/// Cyrillic to Latin the ways people do it (passports, phones, foreign documents): where
/// several spellings are common, one is picked.
pub fn transliterate(s: &str, rng: &mut Rng) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        let lower = ch.to_lowercase().next().unwrap_or(ch);
        let t: &str = match lower {
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' => "g",
            'д' => "d",
            'е' => "e",
            'ё' => one(rng, &["e", "yo", "io"]),
            'ж' => one(rng, &["zh", "j", "zh"]),
            'з' => "z",
            'и' => "i",
            'й' => one(rng, &["i", "y", "j"]),
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'ң' => one(rng, &["ng", "n"]),
            'о' => "o",
            'ө' => one(rng, &["o", "u", "oe"]),
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' => "u",
            'ү' => one(rng, &["u", "ue", "iu"]),
            'ф' => "f",
            'х' => one(rng, &["kh", "h", "kh"]),
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ъ' | 'ь' => "",
            'ы' => "y",
            'э' => "e",
            'ю' => one(rng, &["yu", "iu", "ju"]),
            'я' => one(rng, &["ya", "ia", "ja"]),
            _ => {
                out.push(ch);
                continue;
            }
        };
        if ch.is_uppercase() {
            let mut c = t.chars();
            if let Some(first) = c.next() {
                out.extend(first.to_uppercase());
                out.push_str(c.as_str());
            }
        } else {
            out.push_str(t);
        }
    }
    out
}

/// ң ө ү as н о у.
pub fn russian_keyboard(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ң' => 'н',
            'Ң' => 'Н',
            'ө' => 'о',
            'Ө' => 'О',
            'ү' => 'у',
            'Ү' => 'У',
            other => other,
        })
        .collect()
}

fn has_kyrgyz_letters(s: &str) -> bool {
    s.chars().any(|c| "ңөүҢӨҮ".contains(c))
}

/// One typing mistake in a word of four letters or more (a letter replaced, dropped,
/// doubled, or two neighbours swapped), never in the first letter.
pub fn typo(word: &str, rng: &mut Rng) -> String {
    let mut cs: Vec<char> = word.chars().collect();
    if cs.len() < 4 {
        return word.to_string();
    }
    let i = 1 + rng.below(cs.len() - 1);
    match rng.below(4) {
        0 => {
            // A neighbour on the keyboard is too much to model; a vowel for a vowel is common.
            let vowels: &[char] = if cs[i].is_ascii() {
                &['a', 'e', 'i', 'o', 'u', 'y']
            } else {
                &['а', 'е', 'и', 'о', 'у', 'ы']
            };
            let mut v = *rng.pick(vowels);
            if v == cs[i] {
                v = vowels[(vowels.iter().position(|x| *x == v).unwrap_or(0) + 1) % vowels.len()];
            }
            cs[i] = v;
        }
        1 => {
            cs.remove(i);
        }
        2 => {
            let c = cs[i];
            cs.insert(i, c);
        }
        _ => {
            let j = if i + 1 < cs.len() { i + 1 } else { i - 1 };
            if j > 0 {
                cs.swap(i, j);
            } else {
                cs.remove(i);
            }
        }
    }
    cs.into_iter().collect()
}

fn typo_in_name(name: &str, rng: &mut Rng) -> String {
    let words: Vec<&str> = name.split(' ').collect();
    let long: Vec<usize> = (0..words.len())
        .filter(|&i| words[i].chars().count() >= 4)
        .collect();
    if long.is_empty() {
        return name.to_string();
    }
    let k = *rng.pick(&long);
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == k {
                typo(w, rng)
            } else {
                (*w).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A duplicate of `p`: one or two corruptions of the name, maybe of the birth date, and the
/// identifier left out or mistyped (a second record never carries the same identifier: the
/// registry would refuse it). `id_taken` says whether a mistyped identifier is in use.
pub fn duplicate_of(
    p: &PersonData,
    rng: &mut Rng,
    id_taken: &mut dyn FnMut(&str) -> bool,
) -> (PersonData, Vec<Corruption>) {
    let mut d = p.clone();
    let mut how = Vec::new();
    // The name: what happens when a name is typed again.
    let mut name_ways = 1 + usize::from(rng.chance(35));
    while name_ways > 0 {
        name_ways -= 1;
        match rng.below(100) {
            0..=29 if !how.contains(&Corruption::Transliterated) => {
                d.surname = transliterate(&d.surname, rng);
                d.given_name = transliterate(&d.given_name, rng);
                d.patronymic = d.patronymic.as_deref().map(|x| transliterate(x, rng));
                how.push(Corruption::Transliterated);
            }
            30..=44
                if has_kyrgyz_letters(&d.full_name())
                    && !how.contains(&Corruption::KyrgyzLetters) =>
            {
                d.surname = russian_keyboard(&d.surname);
                d.given_name = russian_keyboard(&d.given_name);
                d.patronymic = d.patronymic.as_deref().map(russian_keyboard);
                how.push(Corruption::KyrgyzLetters);
            }
            45..=54 if !how.contains(&Corruption::SwappedNames) => {
                std::mem::swap(&mut d.surname, &mut d.given_name);
                how.push(Corruption::SwappedNames);
            }
            55..=69 if d.patronymic.is_some() && !how.contains(&Corruption::NoPatronymic) => {
                d.patronymic = None;
                how.push(Corruption::NoPatronymic);
            }
            _ => {
                match rng.below(3) {
                    0 => d.surname = typo(&d.surname, rng),
                    1 => d.given_name = typo(&d.given_name, rng),
                    _ => {
                        d.patronymic = d.patronymic.as_deref().map(|x| typo_in_name(x, rng));
                    }
                }
                how.push(Corruption::Typo);
            }
        }
    }
    let mut id_kept = false;
    // The identifier.
    if let Some(id) = &p.national_id {
        // A second record mostly lacks the identifier (the document was not at hand); one
        // in ten carries it mistyped.
        let mistyped = if rng.chance(10) {
            let mut cs: Vec<char> = id.chars().collect();
            let i = cs.len().saturating_sub(1 + rng.below(4));
            let digit = cs.get(i).and_then(|c| c.to_digit(10)).unwrap_or(0);
            let new = (digit + 1 + rng.below(9) as u32) % 10;
            if let (Some(c), Some(n)) = (cs.get_mut(i), char::from_digit(new, 10)) {
                *c = n;
            }
            let s: String = cs.into_iter().collect();
            (!id_taken(&s)).then_some(s)
        } else {
            None
        };
        match mistyped {
            Some(s) => {
                d.national_id = Some(s);
                how.push(Corruption::NationalIdTypo);
            }
            None => {
                d.national_id = None;
                how.push(Corruption::NoNationalId);
            }
        }
        id_kept = d.national_id.is_some();
    }
    // The birth date.
    if let Some(b) = d.birth_date {
        let r = rng.below(100);
        if r < 25 && b.day() <= 12 && b.day() != u8::from(b.month()) {
            if let Ok(m) = Month::try_from(b.day())
                && let Ok(swapped) = Date::from_calendar_date(b.year(), m, u8::from(b.month()))
            {
                d.birth_date = Some(swapped);
                how.push(Corruption::DayMonthSwapped);
            }
        } else if r < 32 && id_kept {
            // A registration needs a birth date or an identifier; one left out is possible,
            // both are not.
            d.birth_date = None;
            how.push(Corruption::NoBirthDate);
        }
    }
    (d, how)
}

/// A name as a worker might type it into the search box when looking for `p`: transliterated,
/// with a typo, with ң ө ү as н о у, without the patronymic, or in another order — one or two
/// of these. Returns the query and what was done to it.
pub fn misspelled_query(p: &PersonData, rng: &mut Rng) -> (String, Vec<Corruption>) {
    let mut words = vec![p.surname.clone(), p.given_name.clone()];
    if let Some(x) = &p.patronymic {
        words.push(x.clone());
    }
    let mut how = Vec::new();
    let ways = 1 + usize::from(rng.chance(30));
    for _ in 0..ways {
        match rng.below(100) {
            0..=29 if !how.contains(&Corruption::Transliterated) => {
                for w in &mut words {
                    *w = transliterate(w, rng);
                }
                how.push(Corruption::Transliterated);
            }
            30..=44 if words.iter().any(|w| has_kyrgyz_letters(w)) => {
                for w in &mut words {
                    *w = russian_keyboard(w);
                }
                how.push(Corruption::KyrgyzLetters);
            }
            45..=54 if words.len() > 2 && !how.contains(&Corruption::NoPatronymic) => {
                words.pop();
                how.push(Corruption::NoPatronymic);
            }
            55..=64 if !how.contains(&Corruption::SwappedNames) => {
                words.swap(0, 1);
                how.push(Corruption::SwappedNames);
            }
            _ => {
                let i = rng.below(words.len());
                words[i] = typo(&words[i], rng);
                how.push(Corruption::Typo);
            }
        }
    }
    (words.join(" "), how)
}

/// A known duplicate: `duplicate` is another record of the person of `original`.
#[derive(Debug, Clone)]
pub struct LabelledPair {
    pub original: Uuid,
    pub duplicate: Uuid,
    pub corruptions: Vec<Corruption>,
}

/// A generated registry with its labels.
#[derive(Debug, Clone, Default)]
pub struct LabelledRegistry {
    /// Originals and duplicates, in insertion order.
    pub persons: Vec<(Uuid, PersonData)>,
    pub pairs: Vec<LabelledPair>,
}

/// `n` persons (duplicates included), about `duplicate_percent` % of them duplicates of
/// another, spread over the profile's territories, with names of the profile's country.
pub fn registry(
    profile: &Profile,
    n: usize,
    duplicate_percent: u32,
    seed: u64,
) -> LabelledRegistry {
    let mut rng = Rng::new(seed);
    let names = NameLists::for_profile(profile);
    let leaves: Vec<String> = profile
        .leaf_territories()
        .iter()
        .map(|t| t.code.clone())
        .collect();
    let kind = profile.national_id_kind();
    let child = profile.meta.subject == "child";
    let citizenship = Some(profile.meta.country.clone());
    let today = kamkor_store::now_utc().date();
    let mut serials: HashMap<(Sex, Date), u32> = HashMap::new();
    let mut snils_seq: u32 = 100_000_000 + (seed % 1000) as u32 * 100_000;
    let mut ids: HashSet<String> = HashSet::with_capacity(n);
    let mut out = LabelledRegistry {
        persons: Vec::with_capacity(n),
        pairs: Vec::new(),
    };
    let base_ms = 1_650_000_000_000u64;
    // Duplicates are made of originals only: a duplicate of a duplicate would make a third
    // pair the labels do not name.
    let mut originals: Vec<usize> = Vec::with_capacity(n);
    while out.persons.len() < n {
        let i = out.persons.len();
        let dup = !originals.is_empty() && rng.below(100) < duplicate_percent as usize;
        if dup {
            // A duplicate of a person already there (originals only).
            let k = originals[rng.below(originals.len())];
            let (orig_id, orig) = (out.persons[k].0, out.persons[k].1.clone());
            let mut taken = |s: &str| ids.contains(s);
            let (d, how) = duplicate_of(&orig, &mut rng, &mut taken);
            if let Some(x) = &d.national_id {
                ids.insert(x.clone());
            }
            let id = rng.uuid(base_ms + i as u64);
            out.persons.push((id, d));
            out.pairs.push(LabelledPair {
                original: orig_id,
                duplicate: id,
                corruptions: how,
            });
            continue;
        }
        let sex = if rng.chance(50) {
            Sex::Female
        } else {
            Sex::Male
        };
        let (surname, given, patronymic) = names.full_name(&mut rng, sex);
        let birth = if child {
            today - Duration::days(30 + rng.below(17 * 365) as i64)
        } else {
            today - Duration::days(18 * 365 + rng.below(50 * 365) as i64)
        };
        // A duplicate's mistyped identifier may be one an original would get later: skip it.
        let national_id = loop {
            let candidate = match kind {
                NationalIdKind::KgPin => {
                    let s = serials.entry((sex, birth)).or_insert(0);
                    *s += 1;
                    KgPin::build(sex, birth, *s).as_str().to_string()
                }
                NationalIdKind::RuSnils => {
                    snils_seq = snils_seq.wrapping_add(1 + rng.below(5) as u32);
                    Snils::build(snils_seq).digits().to_string()
                }
            };
            if !ids.contains(&candidate) {
                break candidate;
            }
        };
        ids.insert(national_id.clone());
        let territory = rng.pick(&leaves).clone();
        let p = PersonData {
            role: PersonRole::Subject,
            surname,
            given_name: given,
            patronymic,
            sex,
            birth_date: Some(birth),
            national_id: Some(national_id),
            citizenship: citizenship.clone(),
            residence_territory: Some(territory),
            address: None,
            disability: None,
            legal_status: None,
            social_payments: Vec::new(),
            extra: Map::new(),
        };
        let id = rng.uuid(base_ms + i as u64);
        originals.push(out.persons.len());
        out.persons.push((id, p));
    }
    out
}

/// Known duplicates added to the registry (`kamkor demo --duplicates`): about
/// `percent` % of its subjects get a second record, written as a worker elsewhere would have
/// typed it, through the ledger like any registration. Returns the labels.
pub async fn add_duplicates(
    app: &crate::App,
    percent: u32,
    seed: u64,
) -> crate::AppResult<Vec<LabelledPair>> {
    let mut rng = Rng::new(seed ^ 0xd0b1e);
    let mut chosen = Vec::new();
    let mut after = None;
    loop {
        let page = app.store.person_index_rows(after, 20_000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        let full = page.len() == 20_000;
        for r in page {
            if r.role == PersonRole::Subject
                && r.merged_into.is_none()
                && rng.below(100) < percent as usize
            {
                chosen.push(r.id);
            }
        }
        if !full {
            break;
        }
    }
    let mut labels = Vec::with_capacity(chosen.len());
    for ids in chosen.chunks(2000) {
        let rows = app.store.persons_by_ids(ids).await?;
        let mut batch = Vec::with_capacity(rows.len());
        for row in rows {
            let mut taken = |_: &str| true;
            // A mistyped identifier would have to be checked against the whole registry;
            // the demo's duplicates leave it out.
            let (d, how) = duplicate_of(&row.data, &mut rng, &mut taken);
            let id = Uuid::now_v7();
            labels.push(LabelledPair {
                original: row.id,
                duplicate: id,
                corruptions: how,
            });
            batch.push((id, d));
        }
        let mut tx = app.store.begin("system", None).await?;
        tx.insert_persons(&batch).await?;
        tx.commit().await?;
    }
    Ok(labels)
}

/// The labels as CSV: `original,duplicate,corruptions` (corruptions separated by `+`).
pub fn labels_csv(pairs: &[LabelledPair]) -> String {
    let mut out = String::from("original,duplicate,corruptions\n");
    for p in pairs {
        out.push_str(&format!(
            "{},{},{}\n",
            p.original,
            p.duplicate,
            p.corruptions
                .iter()
                .map(|c| c.code())
                .collect::<Vec<_>>()
                .join("+")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kamkor_domain::duplicates::{DUPLICATE_SCORE, DupPerson, compare};

    fn profile(name: &str) -> Profile {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../profiles")
            .join(name);
        crate::load_profile(&dir).expect("profile loads")
    }

    fn dp(p: &PersonData) -> DupPerson {
        DupPerson::new(
            &p.full_name(),
            p.birth_date,
            p.national_id.as_deref(),
            Some(p.sex),
        )
    }

    #[test]
    fn transliteration_and_keyboard() {
        let mut rng = Rng::new(1);
        let t = transliterate("Асанов", &mut rng);
        assert_eq!(t, "Asanov");
        assert_eq!(russian_keyboard("Өмүрбек Түңгүч"), "Омурбек Тунгуч");
        for _ in 0..200 {
            let x = typo("Жумабеков", &mut rng);
            assert!(x.starts_with('Ж') && x != "Жумабеков", "{x}");
        }
    }

    #[test]
    fn a_labelled_registry_is_deterministic_and_its_duplicates_are_corrupted() {
        let p = profile("tzhs-kg");
        let a = registry(&p, 3000, 10, 7);
        let b = registry(&p, 3000, 10, 7);
        assert_eq!(a.persons.len(), 3000);
        assert_eq!(
            a.persons.iter().map(|x| x.0).collect::<Vec<_>>(),
            b.persons.iter().map(|x| x.0).collect::<Vec<_>>()
        );
        assert!(
            a.pairs.len() > 200 && a.pairs.len() < 400,
            "{}",
            a.pairs.len()
        );
        let ids: HashSet<&str> = a
            .persons
            .iter()
            .filter_map(|(_, p)| p.national_id.as_deref())
            .collect();
        assert_eq!(
            ids.len(),
            a.persons
                .iter()
                .filter(|(_, p)| p.national_id.is_some())
                .count(),
            "identifiers stay unique"
        );
        let by_id: HashMap<Uuid, &PersonData> = a.persons.iter().map(|(i, p)| (*i, p)).collect();
        let mut found = 0;
        for pair in &a.pairs {
            assert!(!pair.corruptions.is_empty());
            let (o, d) = (by_id[&pair.original], by_id[&pair.duplicate]);
            assert_ne!(o, d);
            if compare(&dp(o), &dp(d)).score >= DUPLICATE_SCORE {
                found += 1;
            }
        }
        // Most duplicates are recognisable pair by pair.
        assert!(
            found * 100 >= a.pairs.len() * 90,
            "{found} of {}",
            a.pairs.len()
        );
    }

    #[test]
    fn misspelled_queries_differ_from_the_name() {
        let p = profile("tzhs-kg");
        let reg = registry(&p, 200, 0, 3);
        let mut rng = Rng::new(9);
        for (_, person) in &reg.persons {
            let (q, how) = misspelled_query(person, &mut rng);
            assert!(!how.is_empty());
            assert!(!q.is_empty());
        }
    }
}
