//! Duplicates (issue 6 item 2): before a new person is saved, the registry is searched for
//! the same person written differently; the worker sees the likely matches beside what they
//! typed and either opens the existing record or says, with a reason, that this is someone
//! else — which goes to the ledger, and the pair is not proposed again.

use std::collections::HashSet;

use kamkor_domain::duplicates::{DupPerson, Evidence, WARNING_SCORE, compare};
use kamkor_domain::person_index::IndexQuery;
use kamkor_domain::policy::Action;
use kamkor_domain::records::{PersonData, Problems};
use kamkor_store::PersonRow;
use uuid::Uuid;

use crate::{App, AppError, AppResult, Ctx};

/// Likely matches shown at most.
const MAX_SHOWN: usize = 5;
/// Candidates taken from the index per check.
const CANDIDATES: usize = 50;

/// An existing record that may be the person being registered.
#[derive(Debug, Clone)]
pub struct LikelySame {
    pub row: PersonRow,
    pub evidence: Evidence,
}

/// What the duplicate check found.
#[derive(Debug, Clone, Default)]
pub struct LikelyDuplicates {
    /// In the caller's scope, best first.
    pub shown: Vec<LikelySame>,
    /// Likely matches outside the caller's scope: only counted (their data is not the
    /// caller's to see; a worker who must know asks for access).
    pub elsewhere: usize,
    /// What is wrong with the worker's answer, if they gave one (a missing reason).
    pub problems: Problems,
}

impl LikelyDuplicates {
    pub fn is_empty(&self) -> bool {
        self.shown.is_empty() && self.elsewhere == 0
    }
}

/// The worker's answer to a warning: these are all different people, because…
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct DistinctAnswer {
    /// The records shown, said to be someone else.
    pub distinct_from: Vec<String>,
    pub distinct_reason: String,
}

pub(crate) fn dup_person(p: &PersonData) -> DupPerson {
    DupPerson::new(
        &p.full_name(),
        p.birth_date,
        p.national_id.as_deref(),
        Some(p.sex),
    )
}

impl App {
    /// Records that may be this person, leaving out `except` (the person's own record and
    /// those told apart from it).
    pub async fn likely_duplicates(
        &self,
        ctx: &Ctx,
        p: &PersonData,
        except: &HashSet<Uuid>,
    ) -> AppResult<LikelyDuplicates> {
        let hits = self
            .rank_persons(&IndexQuery {
                name: Some(p.full_name()),
                national_id: p.national_id.clone(),
                birth_date: p.birth_date,
                limit: CANDIDATES,
                ..Default::default()
            })
            .await?;
        let ids: Vec<Uuid> = hits
            .iter()
            .map(|h| h.id)
            .filter(|id| !except.contains(id))
            .collect();
        let new = dup_person(p);
        let mut found: Vec<LikelySame> = self
            .store
            .persons_by_ids(&ids)
            .await?
            .into_iter()
            .map(|row| {
                let evidence = compare(&new, &dup_person(&row.data));
                LikelySame { row, evidence }
            })
            .filter(|l| l.evidence.score >= WARNING_SCORE)
            .collect();
        found.sort_by(|a, b| {
            b.evidence
                .score
                .total_cmp(&a.evidence.score)
                .then(a.row.id.cmp(&b.row.id))
        });
        let mut out = LikelyDuplicates::default();
        for l in found {
            if self.within_scope(ctx, l.row.data.residence_territory.as_deref()) {
                if out.shown.len() < MAX_SHOWN {
                    out.shown.push(l);
                }
            } else {
                out.elsewhere += 1;
            }
        }
        // Who was shown to whom as a possible duplicate is in the ledger, like a search.
        let shown: Vec<String> = out.shown.iter().map(|l| l.row.id.to_string()).collect();
        self.record_seen(
            ctx,
            "duplicate_check",
            "person",
            &shown,
            serde_json::json!({}),
        )
        .await?;
        Ok(out)
    }

    /// Records in the caller's scope that may be the same person as this one (shown on the
    /// person's card, where a supervisor may merge them).
    pub async fn duplicates_of(&self, ctx: &Ctx, id: Uuid) -> AppResult<LikelyDuplicates> {
        let sid = id.to_string();
        self.precheck(ctx, Action::Search, ("person", &sid)).await?;
        let Some(person) = self.store.person(id).await? else {
            return Err(self.missing(ctx, Action::Search, ("person", &sid)).await);
        };
        self.check(
            ctx,
            Action::Search,
            Some(person.data.residence_territory.as_deref()),
            ("person", &sid),
        )
        .await?;
        if self.store.merged_into(id).await?.is_some() {
            return Ok(LikelyDuplicates::default());
        }
        // Records a worker already said are someone else are not proposed again.
        let mut except: HashSet<Uuid> = self.store.distinct_from(id).await?.into_iter().collect();
        except.insert(id);
        self.likely_duplicates(ctx, &person.data, &except).await
    }

    /// Before a registration is saved: stop with the likely matches unless the worker has
    /// said, with a reason, that the person is none of them. Returns the records they were
    /// told apart from (to be recorded with the new person).
    pub(crate) async fn check_duplicates(
        &self,
        ctx: &Ctx,
        p: &PersonData,
        answer: &DistinctAnswer,
    ) -> AppResult<Option<(Vec<Uuid>, usize, String)>> {
        let found = self.likely_duplicates(ctx, p, &HashSet::new()).await?;
        if found.is_empty() {
            return Ok(None);
        }
        let said: HashSet<&str> = answer.distinct_from.iter().map(|s| s.trim()).collect();
        let unanswered = found
            .shown
            .iter()
            .any(|l| !said.contains(l.row.id.to_string().as_str()));
        let reason = answer.distinct_reason.trim();
        let answered = !said.is_empty() || !reason.is_empty();
        if unanswered || !answered {
            return Err(AppError::LikelyDuplicates(Box::new(found)));
        }
        let mut found = found;
        if reason.is_empty() {
            found.problems.push("distinct_reason", "required");
        } else if reason.chars().count() > 1000 {
            found.problems.push("distinct_reason", "too_long");
        }
        if !found.problems.is_empty() {
            return Err(AppError::LikelyDuplicates(Box::new(found)));
        }
        Ok(Some((
            found.shown.iter().map(|l| l.row.id).collect(),
            found.elsewhere,
            reason.to_string(),
        )))
    }

    /// Record, in the registration's transaction, that the new person is someone else than
    /// the records shown (seed 000 §18: one child, one record).
    pub(crate) async fn record_distinct(
        &self,
        tx: &mut kamkor_store::Tx,
        new_id: Uuid,
        decided: &(Vec<Uuid>, usize, String),
    ) -> AppResult<()> {
        let (others, elsewhere, reason) = decided;
        for o in others {
            tx.insert_distinct_pair(new_id, *o, reason).await?;
        }
        tx.record_events(
            "distinct",
            "person",
            &[new_id.to_string()],
            Some(serde_json::json!({
                "from": others,
                "elsewhere": elsewhere,
                "reason": reason,
            })),
        )
        .await?;
        Ok(())
    }
}

/// A pair the batch finder proposes (issue 6 item 3).
#[derive(Debug, Clone)]
pub struct ProposedPair {
    pub a: kamkor_store::IndexRow,
    pub b: kamkor_store::IndexRow,
    pub evidence: Evidence,
}

/// What a batch run found.
#[derive(Debug, Clone, Default)]
pub struct DuplicateScan {
    /// Records compared (merged ones left out).
    pub persons: usize,
    pub pairs: Vec<ProposedPair>,
    /// Time to read the registry, and to find the pairs.
    pub read: std::time::Duration,
    pub find: std::time::Duration,
}

/// Persons read per page by the batch.
const SCAN_PAGE: i64 = 50_000;

impl App {
    /// Find likely duplicate pairs across the whole registry, best first; pairs a worker
    /// said are different people are not proposed again. The run is recorded in the ledger.
    pub async fn find_duplicates(&self, min_score: f64) -> AppResult<DuplicateScan> {
        let started = std::time::Instant::now();
        let mut rows = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.person_index_rows(after, SCAN_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            let full = page.len() as i64 == SCAN_PAGE;
            rows.extend(page.into_iter().filter(|r| r.merged_into.is_none()));
            if !full {
                break;
            }
        }
        let read = started.elapsed();
        let started = std::time::Instant::now();
        let people: Vec<DupPerson> = rows
            .iter()
            .map(|r| {
                DupPerson::new(
                    &r.full_name(),
                    r.birth_date,
                    r.national_id.as_deref(),
                    Some(r.sex),
                )
            })
            .collect();
        let slot: std::collections::HashMap<Uuid, u32> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id, i as u32))
            .collect();
        let skip: HashSet<(u32, u32)> = self
            .store
            .distinct_pairs()
            .await?
            .into_iter()
            .filter_map(|(a, b)| {
                let (x, y) = (*slot.get(&a)?, *slot.get(&b)?);
                Some((x.min(y), x.max(y)))
            })
            .collect();
        let found = kamkor_domain::duplicates::find_pairs(&people, min_score, &skip);
        let find = started.elapsed();
        let pairs: Vec<ProposedPair> = found
            .into_iter()
            .map(|(a, b, evidence)| ProposedPair {
                a: rows[a as usize].clone(),
                b: rows[b as usize].clone(),
                evidence,
            })
            .collect();
        let mut tx = self.store.begin("system", None).await?;
        tx.record_event(
            "duplicates_scan",
            "registry",
            "persons",
            Some(serde_json::json!({"persons": rows.len(), "pairs": pairs.len(), "min_score": min_score})),
        )
        .await?;
        tx.commit().await?;
        Ok(DuplicateScan {
            persons: rows.len(),
            pairs,
            read,
            find,
        })
    }
}
