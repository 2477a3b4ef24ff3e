//! An in-memory index of persons for fuzzy search and duplicate finding (issue 6): a dictionary
//! of the distinct folded name words ([`crate::matching::fold`]) searched by trigram, each word
//! with the persons bearing it, plus exact maps from national identifier and birth date. A name
//! query finds the dictionary words like each of its words (the dictionary is small: names
//! repeat), adds up per person how well their words answer, and scores the best in full. No
//! I/O: the application fills it from the store and keeps it current on every write.

use std::collections::{HashMap, HashSet};

use time::Date;
use uuid::Uuid;

use crate::Sex;
use crate::matching::{
    DateMatch, date_match, date_variants, fold, id_near, id_neighbours, name_score,
};

/// A person as given to the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedPerson {
    pub id: Uuid,
    /// Surname, given name and patronymic as recorded (folded inside).
    pub name: String,
    pub birth_date: Option<Date>,
    pub national_id: Option<String>,
    /// The residence territory, for the caller's scope.
    pub territory: Option<String>,
    /// A case subject (a child, a released person) rather than a relative.
    pub subject: bool,
    pub sex: Option<Sex>,
}

/// What the index keeps of a person: compact, since a country's registry lives here (the
/// name only folded, the territory as a number; the store has the rest).
#[derive(Debug, Clone)]
struct Entry {
    id: Uuid,
    folded: Box<str>,
    birth_date: Option<Date>,
    national_id: Option<Box<str>>,
    territory: Option<u32>,
    subject: bool,
    sex: Option<Sex>,
    live: bool,
}

/// A search of the index.
#[derive(Debug, Clone, Default)]
pub struct IndexQuery {
    pub name: Option<String>,
    pub national_id: Option<String>,
    pub birth_date: Option<Date>,
    /// Only persons living in these territories (None: anywhere).
    pub territories: Option<HashSet<String>>,
    pub subjects_only: bool,
    pub sex: Option<Sex>,
    /// Only persons born between these days, both included (an age range).
    pub born_between: Option<(Date, Date)>,
    /// Hits scoring below this are left out.
    pub min_score: f64,
    pub limit: usize,
}

/// One ranked answer, with what matched.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexHit {
    pub id: Uuid,
    /// 0 to 1: how well the person answers everything asked.
    pub score: f64,
    pub name_score: f64,
    pub date: DateMatch,
    /// The identifier is the one asked (Some(true)), one digit or swap away (Some(false)).
    pub id_exact: Option<bool>,
}

/// Candidates scored in full per name query at most (the best by their words).
const MAX_CANDIDATES: usize = 2000;

thread_local! {
    /// Per-person accumulators of the name search, reused by the queries of one thread.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}
/// Dictionary words considered per query word at most, and how alike they must be.
const MAX_WORDS: usize = 64;
const MIN_WORD_SIMILARITY: f64 = 0.78;

#[derive(Debug, Default)]
pub struct PersonIndex {
    entries: Vec<Entry>,
    slot_of: HashMap<Uuid, u32>,
    /// Folded word → word number.
    words: HashMap<String, u32>,
    word_text: Vec<String>,
    /// Trigram → words holding it.
    word_grams: HashMap<u32, Vec<u32>>,
    /// Word → person slots bearing it.
    postings: Vec<Vec<u32>>,
    by_id: HashMap<String, Vec<u32>>,
    by_birth: HashMap<i32, Vec<u32>>,
    /// Territory codes, numbered.
    territory_codes: HashMap<String, u32>,
}

/// Trigrams of a folded word, padded so that the first and last letters weigh in.
fn trigrams(word: &str) -> Vec<u32> {
    let padded: Vec<u8> = std::iter::once(b'^')
        .chain(word.bytes())
        .chain(std::iter::once(b'$'))
        .collect();
    if padded.len() < 3 {
        return Vec::new();
    }
    let mut out: Vec<u32> = padded
        .windows(3)
        .map(|w| (u32::from(w[0]) << 16) | (u32::from(w[1]) << 8) | u32::from(w[2]))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

impl PersonIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Persons in the index (removed ones not counted).
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Add a person, or replace what the index held of them.
    pub fn upsert(&mut self, p: IndexedPerson) {
        self.remove(p.id);
        let territory = p.territory.map(|t| {
            let next = self.territory_codes.len() as u32;
            *self.territory_codes.entry(t).or_insert(next)
        });
        self.insert_entry(Entry {
            id: p.id,
            folded: fold(&p.name).into_boxed_str(),
            birth_date: p.birth_date,
            national_id: p
                .national_id
                .filter(|s| !s.is_empty())
                .map(String::into_boxed_str),
            territory,
            subject: p.subject,
            sex: p.sex,
            live: true,
        });
        self.compact_if_worthwhile();
    }

    fn insert_entry(&mut self, e: Entry) {
        let slot = self.entries.len() as u32;
        let mut seen = HashSet::new();
        for w in e.folded.split_whitespace() {
            let wid = self.word_id(w);
            if seen.insert(wid) {
                self.postings[wid as usize].push(slot);
            }
        }
        if let Some(id) = &e.national_id {
            self.by_id.entry(id.to_string()).or_default().push(slot);
        }
        if let Some(d) = e.birth_date {
            self.by_birth
                .entry(d.to_julian_day())
                .or_default()
                .push(slot);
        }
        self.slot_of.insert(e.id, slot);
        self.entries.push(e);
    }

    /// Corrections leave dead entries behind (their postings are not searched out one by
    /// one); once they are as many as the live ones, the index is rebuilt from the live ones,
    /// so its memory stays bounded by the registry, not by its history of corrections.
    fn compact_if_worthwhile(&mut self) {
        let dead = self.entries.len() - self.slot_of.len();
        if dead < 1024 || dead < self.slot_of.len() {
            return;
        }
        self.compact();
    }

    /// Rebuild from the live entries.
    pub fn compact(&mut self) {
        let entries = std::mem::take(&mut self.entries);
        let territory_codes = std::mem::take(&mut self.territory_codes);
        *self = PersonIndex {
            territory_codes,
            ..PersonIndex::default()
        };
        for e in entries.into_iter().filter(|e| e.live) {
            self.insert_entry(e);
        }
    }

    /// Slots held, dead ones included (for tests and the benchmark's memory figures).
    pub fn slots(&self) -> usize {
        self.entries.len()
    }

    fn word_id(&mut self, w: &str) -> u32 {
        if let Some(&id) = self.words.get(w) {
            return id;
        }
        let id = self.word_text.len() as u32;
        self.words.insert(w.to_string(), id);
        self.word_text.push(w.to_string());
        self.postings.push(Vec::new());
        for g in trigrams(w) {
            self.word_grams.entry(g).or_default().push(id);
        }
        id
    }

    /// Dictionary words like `w`, with how alike they are, best first.
    fn similar_words(&self, w: &str) -> Vec<(u32, f64)> {
        let grams = trigrams(w);
        let need = (grams.len() / 3).max(1) as u16;
        let mut counts: HashMap<u32, u16> = HashMap::new();
        for g in &grams {
            if let Some(ws) = self.word_grams.get(g) {
                for &id in ws {
                    *counts.entry(id).or_default() += 1;
                }
            }
        }
        let mut out: Vec<(u32, f64)> = counts
            .into_iter()
            .filter(|(_, c)| *c >= need)
            .map(|(id, _)| {
                (
                    id,
                    crate::matching::word_similarity(w, &self.word_text[id as usize]),
                )
            })
            .filter(|(_, s)| *s >= MIN_WORD_SIMILARITY)
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(MAX_WORDS);
        out
    }

    /// Forget a person (their postings stay until the index is rebuilt; the entry is dead).
    pub fn remove(&mut self, id: Uuid) {
        if let Some(slot) = self.slot_of.remove(&id)
            && let Some(e) = self.entries.get_mut(slot as usize)
        {
            e.live = false;
        }
    }

    /// The scope as territory numbers (a territory nobody lives in matches nobody).
    fn territory_filter(&self, q: &IndexQuery) -> Option<HashSet<u32>> {
        q.territories.as_ref().map(|ts| {
            ts.iter()
                .filter_map(|t| self.territory_codes.get(t).copied())
                .collect()
        })
    }

    /// Whether a slot is live and passes the query's filters (checked before ranking, so that
    /// a common name elsewhere in the country does not crowd out the caller's district).
    fn admits(&self, slot: u32, q: &IndexQuery, territories: Option<&HashSet<u32>>) -> bool {
        let Some(e) = self.entries.get(slot as usize).filter(|e| e.live) else {
            return false;
        };
        !((q.subjects_only && !e.subject)
            || q.sex.is_some_and(|s| e.sex != Some(s))
            || territories.is_some_and(|ts| !e.territory.is_some_and(|t| ts.contains(&t)))
            || q.born_between
                .is_some_and(|(from, to)| !e.birth_date.is_some_and(|b| from <= b && b <= to)))
    }

    fn candidates(&self, q: &IndexQuery, territories: Option<&HashSet<u32>>) -> Vec<u32> {
        let mut out: HashSet<u32> = HashSet::new();
        if let Some(id) = q.national_id.as_ref().filter(|s| !s.is_empty()) {
            for key in std::iter::once(id.clone()).chain(id_neighbours(id)) {
                if let Some(v) = self.by_id.get(&key) {
                    out.extend(v);
                }
            }
        }
        let name = q.name.as_deref().map(fold).unwrap_or_default();
        if !name.is_empty() {
            // Per person, the sum over query words of their best word's likeness (dense
            // arrays: a hash map per query costs more than clearing them).
            let n = self.entries.len();
            SCRATCH.with_borrow_mut(|(acc, best)| {
                // Kept per thread between queries, and left all zero: a fresh pair of arrays
                // the size of the registry costs more than the search.
                if acc.len() < n {
                    acc.resize(n, 0.0);
                    best.resize(n, 0.0);
                }
                let mut touched: Vec<u32> = Vec::new();
                for qw in name.split_whitespace().take(6) {
                    let mut this: Vec<u32> = Vec::new();
                    for (wid, sim) in self.similar_words(qw) {
                        let sim = sim as f32;
                        for &slot in &self.postings[wid as usize] {
                            if !self.admits(slot, q, territories) {
                                continue;
                            }
                            let b = &mut best[slot as usize];
                            if *b == 0.0 {
                                this.push(slot);
                            }
                            if sim > *b {
                                *b = sim;
                            }
                        }
                    }
                    for &slot in &this {
                        let a = &mut acc[slot as usize];
                        if *a == 0.0 {
                            touched.push(slot);
                        }
                        *a += best[slot as usize];
                        best[slot as usize] = 0.0;
                    }
                }
                let mut ranked: Vec<(u32, f32)> = touched
                    .iter()
                    .map(|&s| {
                        let a = std::mem::take(&mut acc[s as usize]);
                        (s, a)
                    })
                    .collect();
                let order =
                    |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
                // Only the best few are ranked further: select them, do not sort them all.
                if ranked.len() > MAX_CANDIDATES {
                    ranked.select_nth_unstable_by(MAX_CANDIDATES - 1, order);
                    ranked.truncate(MAX_CANDIDATES);
                }
                out.extend(ranked.into_iter().map(|(s, _)| s));
            });
        } else if let Some(d) = q.birth_date
            && q.national_id.as_ref().is_none_or(|s| s.is_empty())
        {
            // A date alone: that day and the day with day and month swapped.
            for v in date_variants(d) {
                if let Some(slots) = self.by_birth.get(&v.to_julian_day()) {
                    out.extend(slots);
                }
            }
        }
        let mut v: Vec<u32> = out.into_iter().collect();
        v.sort_unstable();
        v
    }

    /// Persons answering the query, best first.
    pub fn search(&self, q: &IndexQuery) -> Vec<IndexHit> {
        let name = q.name.as_deref().map(fold).unwrap_or_default();
        let asked_id = q.national_id.as_deref().filter(|s| !s.is_empty());
        let territories = self.territory_filter(q);
        let mut hits = Vec::new();
        for slot in self.candidates(q, territories.as_ref()) {
            if !self.admits(slot, q, territories.as_ref()) {
                continue;
            }
            let e = &self.entries[slot as usize];
            let ns = if name.is_empty() {
                0.0
            } else {
                name_score(&name, &e.folded)
            };
            let date = match (q.birth_date, e.birth_date) {
                (Some(a), Some(b)) => date_match(a, b),
                _ => DateMatch::None,
            };
            let id_exact = match (asked_id, e.national_id.as_deref()) {
                (Some(a), Some(b)) if a == b => Some(true),
                (Some(a), Some(b)) if id_near(a, b) => Some(false),
                _ => None,
            };
            // Each thing asked weighs in; what was not asked does not.
            let mut score = 0.0;
            let mut weight = 0.0;
            if !name.is_empty() {
                score += 0.6 * ns;
                weight += 0.6;
            }
            if q.birth_date.is_some() {
                score += 0.25
                    * match date {
                        DateMatch::Exact => 1.0,
                        DateMatch::Swapped => 0.8,
                        DateMatch::SameYear => 0.3,
                        DateMatch::None => 0.0,
                    };
                weight += 0.25;
            }
            if asked_id.is_some() {
                score += 0.4
                    * match id_exact {
                        Some(true) => 1.0,
                        Some(false) => 0.7,
                        None => 0.0,
                    };
                weight += 0.4;
            }
            let score = if weight > 0.0 { score / weight } else { 0.0 };
            if score < q.min_score {
                continue;
            }
            hits.push(IndexHit {
                id: e.id,
                score,
                name_score: ns,
                date,
                id_exact,
            });
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        hits.truncate(q.limit.max(1));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn person(n: u128, name: &str, birth: Date, id: &str, territory: &str) -> IndexedPerson {
        IndexedPerson {
            id: Uuid::from_u128(n),
            name: name.into(),
            birth_date: Some(birth),
            national_id: Some(id.into()),
            territory: Some(territory.into()),
            subject: true,
            sex: None,
        }
    }

    fn index() -> PersonIndex {
        let mut ix = PersonIndex::new();
        ix.upsert(person(
            1,
            "Асанов Айбек Нурланович",
            date!(2015 - 03 - 09),
            "20903201500011",
            "A",
        ));
        ix.upsert(person(
            2,
            "Асанова Айпери",
            date!(2014 - 05 - 21),
            "12105201400012",
            "A",
        ));
        ix.upsert(person(
            3,
            "Жумабеков Өмүрбек",
            date!(2012 - 11 - 02),
            "20211201200033",
            "B",
        ));
        ix.upsert(person(
            4,
            "Петров Сергей Иванович",
            date!(2010 - 01 - 15),
            "21501201000044",
            "A",
        ));
        ix
    }

    fn first(ix: &PersonIndex, q: IndexQuery) -> Option<u128> {
        ix.search(&IndexQuery { limit: 5, ..q })
            .first()
            .map(|h| h.id.as_u128())
    }

    #[test]
    fn names_are_found_however_spelled() {
        let ix = index();
        for q in [
            "Асанов Айбек",
            "Asanov Aibek",
            "Айбек Асанов",
            "Асанв Айбек",
            "asanov aybek",
        ] {
            assert_eq!(
                first(
                    &ix,
                    IndexQuery {
                        name: Some(q.into()),
                        ..Default::default()
                    }
                ),
                Some(1),
                "{q}"
            );
        }
        for q in [
            "Жумабеков Омурбек",
            "Zhumabekov Omurbek",
            "Jumabekov Ömürbek",
        ] {
            assert_eq!(
                first(
                    &ix,
                    IndexQuery {
                        name: Some(q.into()),
                        ..Default::default()
                    }
                ),
                Some(3),
                "{q}"
            );
        }
    }

    #[test]
    fn corrections_do_not_grow_the_index_without_bound() {
        let mut ix = index();
        for round in 0..3000u32 {
            ix.upsert(person(
                4,
                &format!("Петров{} Сергей", round % 7),
                date!(2010 - 01 - 15),
                "21501201000044",
                "A",
            ));
        }
        assert_eq!(ix.len(), 4);
        assert!(ix.slots() < 2100, "{}", ix.slots());
        // Still found after compaction, with the latest name and scope intact.
        let only_a: HashSet<String> = ["A".to_string()].into();
        let hits = ix.search(&IndexQuery {
            name: Some("Петров6 Сергей".into()),
            territories: Some(only_a),
            limit: 5,
            ..Default::default()
        });
        assert_eq!(hits[0].id.as_u128(), 4);
        assert!(hits[0].name_score > 0.99);
        ix.compact();
        assert_eq!(ix.slots(), 4);
        assert_eq!(
            first(
                &ix,
                IndexQuery {
                    name: Some("Асанов Айбек".into()),
                    ..Default::default()
                }
            ),
            Some(1)
        );
    }

    #[test]
    fn identifiers_dates_scope_and_removal() {
        let mut ix = index();
        // One digit wrong still finds the person, below an exact one.
        let h = ix.search(&IndexQuery {
            national_id: Some("20903201500012".into()),
            limit: 5,
            ..Default::default()
        });
        assert_eq!(h[0].id.as_u128(), 1);
        assert_eq!(h[0].id_exact, Some(false));
        // Day and month swapped.
        let h = ix.search(&IndexQuery {
            birth_date: Some(date!(2015 - 09 - 03)),
            limit: 5,
            ..Default::default()
        });
        assert_eq!(h[0].id.as_u128(), 1);
        assert_eq!(h[0].date, DateMatch::Swapped);
        // The scope is respected.
        let only_b: HashSet<String> = ["B".to_string()].into();
        assert_eq!(
            first(
                &ix,
                IndexQuery {
                    name: Some("Асанов".into()),
                    territories: Some(only_b),
                    ..Default::default()
                }
            ),
            None
        );
        // A name and a date together rank the one matching both first.
        assert_eq!(
            first(
                &ix,
                IndexQuery {
                    name: Some("Асанова".into()),
                    birth_date: Some(date!(2014 - 05 - 21)),
                    ..Default::default()
                }
            ),
            Some(2)
        );
        ix.remove(Uuid::from_u128(1));
        assert_eq!(ix.len(), 3);
        assert_ne!(
            first(
                &ix,
                IndexQuery {
                    name: Some("Асанов Айбек".into()),
                    ..Default::default()
                }
            ),
            Some(1)
        );
        // Replacing a record forgets the old name.
        let before = ix.search(&IndexQuery {
            name: Some("Петров Сергей".into()),
            limit: 5,
            ..Default::default()
        });
        assert!(before[0].name_score > 0.99);
        ix.upsert(person(
            4,
            "Петрова Анна",
            date!(2010 - 01 - 15),
            "21501201000044",
            "A",
        ));
        let after = ix.search(&IndexQuery {
            name: Some("Петров Сергей".into()),
            limit: 5,
            ..Default::default()
        });
        assert!(after.iter().all(|h| h.name_score < 0.9), "{after:?}");
        assert_eq!(ix.len(), 3);
        assert_eq!(
            first(
                &ix,
                IndexQuery {
                    name: Some("Петрова Анна".into()),
                    ..Default::default()
                }
            ),
            Some(4)
        );
    }
}
