//! Person search (issue 6 item 1): by national identifier (exact, one digit wrong), by name
//! however spelled, by birth date (exact, swapped day and month, year), with filters on
//! territory, sex, age and case status, always within the caller's scope, ranked and paged.
//!
//! Searches with something to match run on the in-memory [`PersonIndex`]; it is filled from
//! the store once and then follows the ledger: every person created, corrected or merged —
//! by this process or another — is in the ledger, so before each search the index reads the
//! entries written since it last looked. A search with only filters lists from the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kamkor_domain::matching::{DateMatch, birth_range_for_ages};
use kamkor_domain::person_index::{IndexHit, IndexQuery, IndexedPerson, PersonIndex};
use kamkor_domain::policy::Action;
use kamkor_domain::records::{self, PersonRole, Problems};
use kamkor_store::{CaseFilter, IndexRow, PersonQuery, PersonRow};
use time::Date;
use uuid::Uuid;

use crate::{App, AppError, AppResult, Ctx, PAGE_SIZE, sex_of};

/// Ranked answers kept per search at most (40 pages: past that, a worker refines the query).
pub const MAX_RANKED: usize = 1000;
/// Answers scoring below this are not shown (a different person with one like word).
pub const MIN_SCORE: f64 = 0.5;
/// Persons read from the store per page when the index is filled.
const LOAD_PAGE: i64 = 20_000;
/// Ledger entries read per step when the index catches up.
const CATCH_UP_STEP: i64 = 5_000;

/// The index and how far into the ledger it has followed.
#[derive(Default)]
pub(crate) struct IndexState {
    index: PersonIndex,
    next_pos: u64,
    loaded: bool,
}

#[derive(Default, Clone)]
pub(crate) struct SharedIndex {
    state: Arc<tokio::sync::RwLock<IndexState>>,
    /// One catch-up at a time (the others wait for it and then find nothing new).
    refresh: Arc<tokio::sync::Mutex<()>>,
}

fn indexed(r: &IndexRow) -> IndexedPerson {
    IndexedPerson {
        id: r.id,
        name: r.full_name(),
        birth_date: r.birth_date,
        national_id: r.national_id.clone(),
        territory: r.residence_territory.clone(),
        subject: r.role == PersonRole::Subject,
        sex: Some(r.sex),
    }
}

/// A search as typed: one box that recognises a national identifier or a date, separate
/// fields, and filters.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct PersonSearch {
    pub q: String,
    pub name: String,
    pub national_id: String,
    pub birth_date: String,
    pub include_relatives: bool,
    /// A territory code: that territory and everything within it.
    pub territory: String,
    /// `female` or `male`.
    pub sex: String,
    /// Whole years, both included.
    pub age_from: String,
    pub age_to: String,
    /// `open`, `closed`, `none` or a case stage code.
    pub status: String,
    pub page: i64,
}

impl PersonSearch {
    /// Whether anything is asked beyond the filters.
    pub fn has_terms(&self) -> bool {
        !(self.q.trim().is_empty()
            && self.name.trim().is_empty()
            && self.national_id.trim().is_empty()
            && self.birth_date.trim().is_empty())
    }

    pub fn has_filters(&self) -> bool {
        !(self.territory.trim().is_empty()
            && self.sex.trim().is_empty()
            && self.age_from.trim().is_empty()
            && self.age_to.trim().is_empty()
            && self.status.trim().is_empty())
    }
}

/// One answer: the person and, for a ranked search, how well and why they matched.
#[derive(Debug, Clone)]
pub struct PersonHit {
    pub row: PersonRow,
    pub matched: Option<Matched>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// 0 to 1.
    pub score: f64,
    /// How alike the name is, when a name was asked.
    pub name: Option<f64>,
    pub date: Option<DateMatch>,
    /// Some(true): the identifier asked; Some(false): one digit or swap away.
    pub id_exact: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct PersonResults {
    pub hits: Vec<PersonHit>,
    /// Another page follows.
    pub more: bool,
    /// Ranked by likeness (something was asked), or listed by name (filters only).
    pub ranked: bool,
}

/// The search with its text parsed and checked.
#[derive(Debug, Default)]
struct Parsed {
    name: Option<String>,
    national_id: Option<String>,
    birth_date: Option<Date>,
    territories: Option<Vec<String>>,
    sex: Option<kamkor_domain::Sex>,
    born_between: Option<(Date, Date)>,
    cases: Option<CaseFilter>,
}

fn parse_age(s: &str, field: &str, problems: &mut Problems) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    match s.parse::<u32>() {
        Ok(a) if a <= 150 => Some(a),
        _ => {
            problems.push(field, "bad_age");
            None
        }
    }
}

impl App {
    /// Fill the person index from the store, if not yet done, and bring it up to the
    /// ledger's end. Called before each search; the server also calls it at start.
    pub async fn refresh_person_index(&self) -> AppResult<()> {
        let _one = self.person_index.refresh.lock().await;
        let (loaded, mut next) = {
            let s = self.person_index.state.read().await;
            (s.loaded, s.next_pos)
        };
        if !loaded {
            // The ledger's end first: what is written while we read is caught up below
            // (replaying a change the load already saw is harmless).
            next = self.store.ledger_size().await?;
            let mut index = PersonIndex::new();
            let mut after = None;
            loop {
                let rows = self.store.person_index_rows(after, LOAD_PAGE).await?;
                let Some(last) = rows.last() else { break };
                after = Some(last.id);
                for r in rows.iter().filter(|r| r.merged_into.is_none()) {
                    index.upsert(indexed(r));
                }
                if (rows.len() as i64) < LOAD_PAGE {
                    break;
                }
            }
            let mut s = self.person_index.state.write().await;
            *s = IndexState {
                index,
                next_pos: next,
                loaded: true,
            };
            tracing::info!(persons = s.index.len(), "person index filled");
        }
        loop {
            let changes = self.store.person_changes_since(next, CATCH_UP_STEP).await?;
            if !changes.persons.is_empty() {
                let rows = self.store.person_index_rows_of(&changes.persons).await?;
                let present: HashSet<Uuid> = rows.iter().map(|r| r.id).collect();
                let mut s = self.person_index.state.write().await;
                for r in &rows {
                    if r.merged_into.is_some() {
                        s.index.remove(r.id);
                    } else {
                        s.index.upsert(indexed(r));
                    }
                }
                for id in changes.persons.iter().filter(|id| !present.contains(id)) {
                    s.index.remove(*id);
                }
            }
            next = changes.next;
            if changes.complete {
                break;
            }
        }
        self.person_index.state.write().await.next_pos = next;
        Ok(())
    }

    /// Rank persons in the index (after catching up with the ledger).
    pub async fn rank_persons(&self, q: &IndexQuery) -> AppResult<Vec<IndexHit>> {
        self.refresh_person_index().await?;
        let s = self.person_index.state.read().await;
        Ok(s.index.search(q))
    }

    /// Persons in the index now.
    pub async fn indexed_persons(&self) -> usize {
        self.person_index.state.read().await.index.len()
    }

    fn parse_search(&self, ctx: &Ctx, s: &PersonSearch) -> AppResult<Parsed> {
        let mut out = Parsed::default();
        let mut problems = Problems::default();
        // The single box: digits → identifier; a date → birth date; otherwise name words.
        let mut name_words: Vec<String> = Vec::new();
        for token in s.q.split_whitespace().take(8) {
            let digits: String = token.chars().filter(|c| c.is_ascii_digit()).collect();
            if let Some(d) = records::parse_date(token) {
                out.birth_date = Some(d);
            } else if digits.len() >= 6
                && digits.len() == token.chars().filter(|c| !"- ".contains(*c)).count()
            {
                out.national_id = Some(digits);
            } else {
                name_words.push(token.to_string());
            }
        }
        if !s.name.trim().is_empty() {
            name_words.push(s.name.clone());
        }
        if !name_words.is_empty() {
            let n = records::normalize_for_search(&name_words.join(" "));
            if n.chars().count() > 200 {
                problems.push("name", "too_long");
            }
            out.name = Some(n);
        }
        if !s.national_id.trim().is_empty() {
            let digits: String = s
                .national_id
                .chars()
                .filter(|c| c.is_ascii_digit())
                .collect();
            if digits.is_empty() || digits.len() > 32 {
                problems.push("national_id", "id_not_digits");
            }
            out.national_id = Some(digits);
        }
        if !s.birth_date.trim().is_empty() {
            match records::parse_date(&s.birth_date) {
                Some(d) => out.birth_date = Some(d),
                None => problems.push("birth_date", "bad_date"),
            }
        }
        // The scope, narrowed to the territory asked for.
        out.territories = self.scope_filter(ctx);
        let territory = s.territory.trim();
        if !territory.is_empty() {
            if self.profile.territory(territory).is_none() {
                problems.push("territory", "unknown_code");
            } else if !self.within_scope(ctx, Some(territory))
                && !ctx
                    .actor
                    .roles
                    .contains(&kamkor_domain::policy::Role::CentralViewer)
            {
                problems.push("territory", "out_of_scope");
            } else if let Some(within) = self.scope_territories(territory) {
                out.territories = Some(match out.territories.take() {
                    None => within.as_ref().clone(),
                    Some(scope) => {
                        let scope: HashSet<String> = scope.into_iter().collect();
                        within
                            .iter()
                            .filter(|t| scope.contains(*t))
                            .cloned()
                            .collect()
                    }
                });
            }
        }
        if !s.sex.trim().is_empty() {
            match sex_of(s.sex.trim()) {
                Some(x) => out.sex = Some(x),
                None => problems.push("sex", "unknown_code"),
            }
        }
        let from = parse_age(&s.age_from, "age_from", &mut problems);
        let to = parse_age(&s.age_to, "age_to", &mut problems);
        if let (Some(a), Some(b)) = (from, to)
            && a > b
        {
            problems.push("age_to", "age_range_reversed");
        }
        if from.is_some() || to.is_some() {
            out.born_between = Some(birth_range_for_ages(ctx.today(), from, to));
        }
        if !s.status.trim().is_empty() {
            match CaseFilter::parse(s.status.trim()) {
                Some(f) => out.cases = Some(f),
                None => problems.push("status", "unknown_code"),
            }
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
        Ok(out)
    }

    pub async fn search_persons(&self, ctx: &Ctx, s: &PersonSearch) -> AppResult<PersonResults> {
        self.check(ctx, Action::Search, None, ("person", ""))
            .await?;
        let p = self.parse_search(ctx, s)?;
        let page = s.page.clamp(0, 10_000);
        let page_size = PAGE_SIZE as usize;
        let ranked = p.name.is_some() || p.national_id.is_some() || p.birth_date.is_some();
        let mut results = PersonResults {
            ranked,
            ..Default::default()
        };
        if ranked {
            let mut hits = self
                .rank_persons(&IndexQuery {
                    name: p.name.clone(),
                    national_id: p.national_id.clone(),
                    birth_date: p.birth_date,
                    territories: p.territories.map(|v| v.into_iter().collect()),
                    subjects_only: !s.include_relatives,
                    sex: p.sex,
                    born_between: p.born_between,
                    min_score: MIN_SCORE,
                    limit: MAX_RANKED,
                })
                .await?;
            if let Some(f) = p.cases {
                let ids: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
                let statuses = self.store.case_statuses_of(&ids).await?;
                hits.retain(|h| f.admits(statuses.get(&h.id).map_or(&[], |v| v.as_slice())));
            }
            let start = (page as usize).saturating_mul(page_size);
            results.more = hits.len() > start + page_size;
            let shown: Vec<&IndexHit> = hits.iter().skip(start).take(page_size).collect();
            let ids: Vec<Uuid> = shown.iter().map(|h| h.id).collect();
            let mut rows: HashMap<Uuid, PersonRow> = self
                .store
                .persons_by_ids(&ids)
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect();
            for h in shown {
                // A record changed since the index looked is shown as it is now.
                if let Some(row) = rows.remove(&h.id) {
                    results.hits.push(PersonHit {
                        row,
                        matched: Some(Matched {
                            score: h.score,
                            name: p.name.as_ref().map(|_| h.name_score),
                            date: p.birth_date.map(|_| h.date),
                            id_exact: h.id_exact,
                        }),
                    });
                }
            }
        } else {
            let rows = self
                .store
                .search_persons(&PersonQuery {
                    role: (!s.include_relatives).then_some(PersonRole::Subject),
                    territories: p.territories,
                    sex: p.sex,
                    born_between: p.born_between,
                    cases: p.cases,
                    limit: PAGE_SIZE + 1,
                    offset: page * PAGE_SIZE,
                    ..Default::default()
                })
                .await?;
            results.more = rows.len() > page_size;
            results.hits = rows
                .into_iter()
                .take(page_size)
                .map(|row| PersonHit { row, matched: None })
                .collect();
        }
        // Everyone a search showed is in the ledger, with what was asked (issue 4 item 1).
        let shown: Vec<String> = results.hits.iter().map(|h| h.row.id.to_string()).collect();
        self.record_seen(
            ctx,
            "search",
            "person",
            &shown,
            serde_json::to_value(s).unwrap_or_default(),
        )
        .await?;
        Ok(results)
    }
}
