//! Whether two person records are one person (issue 6 items 2–3): the evidence of a pair —
//! name, birth date, national identifier, sex — weighed into one score, and the batch finder
//! that proposes pairs across a whole registry without comparing every record with every
//! other (blocking on keys a duplicate keeps despite the usual corruptions).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use time::Date;

use crate::Sex;
use crate::matching::{DateMatch, date_match, fold, id_near, word_similarity};

/// A record as the comparison sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DupPerson {
    /// The full name, folded ([`fold`]).
    pub folded: String,
    pub birth_date: Option<Date>,
    pub national_id: Option<String>,
    pub sex: Option<Sex>,
    /// The letter pairs of the folded name, hashed into 128 bits: a quick way to tell that
    /// two names have nothing in common before comparing them word by word.
    pub letter_pairs: u128,
}

/// Letter pairs of a folded name as a bit set.
fn letter_pairs(folded: &str) -> u128 {
    let mut bits = 0u128;
    for w in folded.split_whitespace() {
        let b = w.as_bytes();
        for pair in b.windows(2) {
            let h = (u32::from(pair[0]) * 31 + u32::from(pair[1])) % 128;
            bits |= 1u128 << h;
        }
    }
    bits
}

/// Whether two names share enough letter pairs to be worth comparing: most of the shorter
/// name's pairs are in the longer one (true of typos, transliterations folded alike, a
/// missing patronymic, swapped names).
fn may_be_alike(a: u128, b: u128) -> bool {
    let common = (a & b).count_ones();
    let least = a.count_ones().min(b.count_ones()).max(1);
    common * 2 >= least
}

impl DupPerson {
    pub fn new(
        name: &str,
        birth_date: Option<Date>,
        national_id: Option<&str>,
        sex: Option<Sex>,
    ) -> Self {
        let folded = fold(name);
        DupPerson {
            letter_pairs: letter_pairs(&folded),
            folded,
            birth_date,
            national_id: national_id.filter(|s| !s.is_empty()).map(str::to_string),
            sex,
        }
    }
}

/// How two identifiers compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdMatch {
    Same,
    /// One digit, or two neighbouring digits swapped.
    Near,
    Different,
}

impl IdMatch {
    /// The stable code the API and the CLI print.
    pub fn code(self) -> &'static str {
        match self {
            IdMatch::Same => "exact",
            IdMatch::Near => "one_digit_off",
            IdMatch::Different => "different",
        }
    }
}

/// The evidence about a pair, and what it adds up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// 0 to 1.
    pub score: f64,
    /// How alike the names are, 0 to 1, word order free, a missing word free.
    pub name: f64,
    /// None when either date is missing.
    pub birth_date: Option<DateMatch>,
    /// None when either identifier is missing.
    pub national_id: Option<IdMatch>,
    /// Both sexes known and different.
    pub sex_differs: bool,
}

/// A pair scoring this or more is proposed as one person by the batch finder.
pub const DUPLICATE_SCORE: f64 = 0.75;
/// A pair scoring this or more is shown as a warning at registration (a worker decides, so
/// the warning may ask more often than the batch proposes).
pub const WARNING_SCORE: f64 = 0.6;

/// Names compared for duplicates: every word of the shorter name must have its like in the
/// longer one (a missing patronymic is free, the order is not counted), and the weakest
/// word weighs in, so that two siblings sharing surname and patronymic differ.
pub fn name_likeness(a: &str, b: &str) -> f64 {
    let (short, long): (Vec<&str>, Vec<&str>) = {
        let x: Vec<&str> = a.split_whitespace().collect();
        let y: Vec<&str> = b.split_whitespace().collect();
        if x.len() <= y.len() { (x, y) } else { (y, x) }
    };
    if short.is_empty() {
        return 0.0;
    }
    let mut used = vec![false; long.len()];
    let mut total = 0.0;
    let mut worst: f64 = 1.0;
    for w in &short {
        let mut best = (0.0, None);
        for (i, v) in long.iter().enumerate() {
            if !used[i] {
                let s = word_similarity(w, v);
                if s > best.0 {
                    best = (s, Some(i));
                }
            }
        }
        if let Some(i) = best.1 {
            used[i] = true;
        }
        total += best.0;
        worst = worst.min(best.0);
    }
    let mean = total / short.len() as f64;
    // The word a shorter name leaves out is the patronymic, written last; a surname or given
    // name left out (Элдиярова Назира for Сулайманова Назира Элдияровна) is another person.
    let leaves_out_a_name = long.len() >= 3 && used[..long.len() - 1].iter().any(|u| !u);
    let penalty = if leaves_out_a_name { 0.2 } else { 0.0 };
    // One wrong word (another given name) costs much more than spread-out typos.
    (mean - 2.5 * (0.9 - worst).max(0.0) - penalty).clamp(0.0, 1.0)
}

/// Weigh the evidence of a pair.
pub fn compare(a: &DupPerson, b: &DupPerson) -> Evidence {
    let name = name_likeness(&a.folded, &b.folded);
    let same_words = a.folded.split_whitespace().count() == b.folded.split_whitespace().count();
    let birth_date = match (a.birth_date, b.birth_date) {
        (Some(x), Some(y)) => Some(date_match(x, y)),
        _ => None,
    };
    let national_id = match (&a.national_id, &b.national_id) {
        (Some(x), Some(y)) if x == y => Some(IdMatch::Same),
        (Some(x), Some(y)) if id_near(x, y) => Some(IdMatch::Near),
        (Some(_), Some(_)) => Some(IdMatch::Different),
        _ => None,
    };
    let sex_differs = matches!((a.sex, b.sex), (Some(x), Some(y)) if x != y);
    // A name only somewhat alike is weak evidence, however well the date agrees: in a
    // registry-sized population many children born on one day have similar names.
    let mut score = 0.55 * name - (0.9 - name).max(0.0);
    score += match birth_date {
        Some(DateMatch::Exact) => 0.3,
        Some(DateMatch::Swapped) => 0.25,
        Some(DateMatch::SameYear) => 0.0,
        Some(DateMatch::None) => -0.3,
        // A missing date neither confirms nor refutes.
        None => 0.15,
    };
    score += match national_id {
        Some(IdMatch::Same) => 0.35,
        // A digit mistyped — or two children born the same day, whose Kyrgyz PINs differ
        // only in the serial: it supports a name that agrees, and counts against one that
        // does not (twins, siblings).
        Some(IdMatch::Near) if name >= 0.9 && same_words => 0.1,
        // Namesakes born the same day, one without a patronymic: the identifiers tell them
        // apart more surely than a typo would join them.
        Some(IdMatch::Near) if name >= 0.9 => -0.15,
        Some(IdMatch::Near) => -0.1,
        // Two different identifiers are two people, however alike the rest.
        Some(IdMatch::Different) => -0.6,
        None => 0.1,
    };
    if sex_differs {
        score -= 0.25;
    }
    Evidence {
        score: score.clamp(0.0, 1.0),
        name,
        birth_date,
        national_id,
        sex_differs,
    }
}

/// Blocks larger than this are not paired out (a key that common proves little; the other
/// keys still meet).
const MAX_BLOCK: usize = 60;

fn key_hash(parts: &[&str], salt: u8) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    salt.hash(&mut h);
    parts.hash(&mut h);
    h.finish()
}

/// The first letters of a folded word.
fn prefix(w: &str, n: usize) -> &str {
    let end = w.char_indices().nth(n).map_or(w.len(), |(i, _)| i);
    &w[..end]
}

/// The blocking keys of a record: a duplicate shares at least one with its original despite
/// a transliteration, a typo, swapped names, swapped day and month, or a missing field.
pub fn block_keys(p: &DupPerson) -> Vec<u64> {
    let mut keys = Vec::with_capacity(20);
    if let Some(id) = &p.national_id {
        keys.push(key_hash(&[id], 0));
        // Two neighbouring positions masked: one digit wrong or two swapped meet here.
        let b = id.as_bytes();
        for i in 0..b.len().saturating_sub(1) {
            let masked = format!(
                "{}..{}",
                id.get(..i).unwrap_or(""),
                id.get(i + 2..).unwrap_or("")
            );
            keys.push(key_hash(&[&masked], 1 + (i as u8 % 200)));
        }
    }
    let words: Vec<&str> = p.folded.split_whitespace().take(3).collect();
    if let Some(d) = p.birth_date {
        // Day and month unordered, so a swap keeps the key.
        let (x, y) = (d.day(), u8::from(d.month()));
        let day = format!("{}-{}-{}", d.year(), x.min(y), x.max(y));
        for w in &words {
            keys.push(key_hash(&[&day, prefix(w, 2)], 210));
        }
    }
    // Name words pairwise (surname with given name, in either order), for records missing
    // the date or the identifier: their beginnings (a typo further on), and whole (a
    // registry-sized block of beginnings is too common to pair out).
    for (i, w) in words.iter().enumerate().take(2) {
        for v in words.iter().skip(i + 1).take(1) {
            let (a, b) = if w <= v { (w, v) } else { (v, w) };
            keys.push(key_hash(&[prefix(a, 3), prefix(b, 3)], 220));
            keys.push(key_hash(&[a, b], 221));
        }
    }
    keys
}

/// Pairs among `persons` scoring at least `min_score`, each once (smaller index first), with
/// their evidence, best first. `skip` holds pairs already decided to be different people.
/// The blocks are shared out among the machine's cores.
pub fn find_pairs(
    persons: &[DupPerson],
    min_score: f64,
    skip: &HashSet<(u32, u32)>,
) -> Vec<(u32, u32, Evidence)> {
    let mut keyed: Vec<(u64, u32)> = Vec::with_capacity(persons.len() * 8);
    for (i, p) in persons.iter().enumerate() {
        for k in block_keys(p) {
            keyed.push((k, i as u32));
        }
    }
    keyed.sort_unstable();
    keyed.dedup();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 16);
    // Cut the keys into one run per thread, at block boundaries.
    let mut cuts = vec![0];
    for t in 1..threads {
        let mut at = keyed.len() * t / threads;
        while at > 0 && at < keyed.len() && keyed[at].0 == keyed[at - 1].0 {
            at += 1;
        }
        cuts.push(at.max(*cuts.last().unwrap_or(&0)));
    }
    cuts.push(keyed.len());
    let mut out: Vec<(u32, u32, Evidence)> = std::thread::scope(|scope| {
        let workers: Vec<_> = cuts
            .windows(2)
            .map(|w| {
                let run = &keyed[w[0]..w[1]];
                scope.spawn(move || pairs_in_run(persons, run, min_score, skip))
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    // A pair met in the runs of two threads is found twice.
    out.sort_unstable_by_key(|x| (x.0, x.1));
    out.dedup_by_key(|x| (x.0, x.1));
    out.sort_by(|a, b| {
        b.2.score
            .total_cmp(&a.2.score)
            .then((a.0, a.1).cmp(&(b.0, b.1)))
    });
    out
}

/// The pairs of one run of sorted keys.
fn pairs_in_run(
    persons: &[DupPerson],
    keyed: &[(u64, u32)],
    min_score: f64,
    skip: &HashSet<(u32, u32)>,
) -> Vec<(u32, u32, Evidence)> {
    let mut candidates: Vec<(u32, u32)> = Vec::new();
    let mut start = 0;
    while start < keyed.len() {
        let key = keyed[start].0;
        let mut end = start;
        while end < keyed.len() && keyed[end].0 == key {
            end += 1;
        }
        let block = &keyed[start..end];
        if block.len() > 1 && block.len() <= MAX_BLOCK {
            for (n, &(_, i)) in block.iter().enumerate() {
                for &(_, j) in &block[n + 1..] {
                    candidates.push((i.min(j), i.max(j)));
                }
            }
        }
        start = end;
    }
    candidates.sort_unstable();
    candidates.dedup();
    candidates
        .into_iter()
        .filter(|pair| !skip.contains(pair))
        .filter_map(|(i, j)| {
            let (a, b) = (&persons[i as usize], &persons[j as usize]);
            if !may_be_alike(a.letter_pairs, b.letter_pairs) {
                return None;
            }
            let e = compare(a, b);
            (e.score >= min_score).then_some((i, j, e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn p(name: &str, d: Option<Date>, id: Option<&str>, sex: Sex) -> DupPerson {
        DupPerson::new(name, d, id, Some(sex))
    }

    #[test]
    fn one_person_written_differently_is_one_person() {
        let a = p(
            "Асанов Айбек Нурланович",
            Some(date!(2015 - 03 - 09)),
            Some("20903201500011"),
            Sex::Male,
        );
        for b in [
            p("Asanov Aibek", Some(date!(2015 - 03 - 09)), None, Sex::Male),
            p(
                "Айбек Асанов Нурланович",
                Some(date!(2015 - 09 - 03)),
                Some("20903201500011"),
                Sex::Male,
            ),
            p(
                "Асанв Айбек Нурланович",
                None,
                Some("20903201500017"),
                Sex::Male,
            ),
        ] {
            let e = compare(&a, &b);
            assert!(e.score >= DUPLICATE_SCORE, "{b:?}: {e:?}");
        }
    }

    #[test]
    fn siblings_twins_and_namesakes_are_different_people() {
        let a = p(
            "Асанов Айбек Нурланович",
            Some(date!(2015 - 03 - 09)),
            None,
            Sex::Male,
        );
        // A twin brother: same surname, patronymic, birth day; another given name.
        let twin = p(
            "Асанов Бакыт Нурланович",
            Some(date!(2015 - 03 - 09)),
            None,
            Sex::Male,
        );
        assert!(
            compare(&a, &twin).score < WARNING_SCORE,
            "{:?}",
            compare(&a, &twin)
        );
        // A namesake born another day.
        let namesake = p(
            "Асанов Айбек Нурланович",
            Some(date!(2011 - 07 - 21)),
            None,
            Sex::Male,
        );
        assert!(compare(&a, &namesake).score < DUPLICATE_SCORE);
        // Different identifiers.
        let x = p("Асанов Айбек", None, Some("20903201500011"), Sex::Male);
        let y = p("Асанов Айбек", None, Some("21111201100022"), Sex::Male);
        assert!(compare(&x, &y).score < WARNING_SCORE);
    }

    #[test]
    fn the_batch_finds_pairs_through_their_keys() {
        let people = vec![
            p(
                "Асанов Айбек Нурланович",
                Some(date!(2015 - 03 - 09)),
                Some("20903201500011"),
                Sex::Male,
            ),
            p(
                "Petrova Anna",
                Some(date!(2012 - 01 - 15)),
                None,
                Sex::Female,
            ),
            p("Айбек Асанов", Some(date!(2015 - 09 - 03)), None, Sex::Male),
            p(
                "Петрова Анна Ивановна",
                None,
                Some("11501201200022"),
                Sex::Female,
            ),
            p(
                "Жумабеков Омурбек",
                Some(date!(2012 - 11 - 02)),
                Some("20211201200033"),
                Sex::Male,
            ),
        ];
        let pairs = find_pairs(&people, DUPLICATE_SCORE, &HashSet::new());
        let found: Vec<(u32, u32)> = pairs.iter().map(|(a, b, _)| (*a, *b)).collect();
        assert!(found.contains(&(0, 2)), "{pairs:?}");
        assert!(found.contains(&(1, 3)), "{pairs:?}");
        assert_eq!(found.len(), 2, "{pairs:?}");
        let skip: HashSet<(u32, u32)> = [(0, 2)].into();
        assert_eq!(find_pairs(&people, DUPLICATE_SCORE, &skip).len(), 1);
    }
}
