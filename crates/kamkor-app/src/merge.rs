//! Merging two records of one person (issue 6 item 3). A supervisor, having compared them,
//! keeps one record; the other stays as it was — its history, cases, relatives and families
//! untouched and still readable — marked as merged into the one that carries on, which then
//! shows them as its own. Fields the kept record lacks are filled from the other (a
//! correction of the kept record, in the ledger like any other); the national identifier, if
//! it moves, leaves the merged record first so that one identifier stays one person. Seed 000
//! §18: one child, one record.

use kamkor_domain::duplicates::{Evidence, compare};
use kamkor_domain::policy::{Action, Target};
use kamkor_domain::records::{PersonData, Problems};
use kamkor_store::PersonRow;
use serde_json::json;
use uuid::Uuid;

use crate::duplicates::dup_person;
use crate::{App, AppError, AppResult, Ctx};

/// A supervisor's decision: `merged` is the same person as `keep`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct MergeRequest {
    pub keep: Uuid,
    /// The versions the supervisor compared: a record changed meanwhile is a conflict.
    pub keep_version: i64,
    pub merged: Uuid,
    pub merged_version: i64,
    pub reason: String,
}

/// Two records side by side, as the supervisor compares them before merging.
#[derive(Debug, Clone)]
pub struct MergeProposal {
    pub keep: PersonRow,
    pub merged: PersonRow,
    pub evidence: Evidence,
    /// The kept record as it will read after the merge.
    pub result: PersonData,
    /// Fields the kept record takes from the merged one.
    pub filled: Vec<&'static str>,
}

/// What a merge did.
#[derive(Debug, Clone)]
pub struct Merged {
    pub keep: Uuid,
    /// The kept record's version after the merge.
    pub keep_version: i64,
    pub merged: Uuid,
    pub filled: Vec<&'static str>,
}

/// The kept record's data after taking, from the merged one, what it lacks; with the names
/// of the fields taken.
pub fn merged_data(keep: &PersonData, other: &PersonData) -> (PersonData, Vec<&'static str>) {
    let mut out = keep.clone();
    let mut filled = Vec::new();
    fn fill<T: Clone>(
        into: &mut Option<T>,
        from: &Option<T>,
        name: &'static str,
        filled: &mut Vec<&'static str>,
    ) {
        if into.is_none() && from.is_some() {
            *into = from.clone();
            filled.push(name);
        }
    }
    fill(
        &mut out.patronymic,
        &other.patronymic,
        "patronymic",
        &mut filled,
    );
    fill(
        &mut out.birth_date,
        &other.birth_date,
        "birth_date",
        &mut filled,
    );
    fill(
        &mut out.national_id,
        &other.national_id,
        "national_id",
        &mut filled,
    );
    fill(
        &mut out.citizenship,
        &other.citizenship,
        "citizenship",
        &mut filled,
    );
    fill(
        &mut out.residence_territory,
        &other.residence_territory,
        "residence_territory",
        &mut filled,
    );
    fill(&mut out.address, &other.address, "address", &mut filled);
    fill(
        &mut out.disability,
        &other.disability,
        "disability",
        &mut filled,
    );
    fill(
        &mut out.legal_status,
        &other.legal_status,
        "legal_status",
        &mut filled,
    );
    let before = out.social_payments.len();
    for p in &other.social_payments {
        if !out.social_payments.contains(p) {
            out.social_payments.push(p.clone());
        }
    }
    if out.social_payments.len() != before {
        filled.push("social_payments");
    }
    let before = out.extra.len();
    for (k, v) in &other.extra {
        if !out.extra.contains_key(k) && !v.is_null() {
            out.extra.insert(k.clone(), v.clone());
        }
    }
    if out.extra.len() != before {
        filled.push("extra");
    }
    (out, filled)
}

impl App {
    /// Read both records for a merge, each checked against the policy (a supervisor, both
    /// records within the scope, neither already merged).
    pub async fn merge_proposal(
        &self,
        ctx: &Ctx,
        keep: Uuid,
        merged: Uuid,
    ) -> AppResult<MergeProposal> {
        let (keep_row, merged_row) = self.merge_pair(ctx, keep, merged).await?;
        // Both records are shown in full: two views in the ledger.
        self.record_seen(
            ctx,
            "view",
            "person",
            &[keep.to_string(), merged.to_string()],
            json!({"for": "merge"}),
        )
        .await?;
        let (result, filled) = merged_data(&keep_row.data, &merged_row.data);
        let evidence = compare(&dup_person(&keep_row.data), &dup_person(&merged_row.data));
        Ok(MergeProposal {
            keep: keep_row,
            merged: merged_row,
            evidence,
            result,
            filled,
        })
    }

    async fn merge_pair(
        &self,
        ctx: &Ctx,
        keep: Uuid,
        merged: Uuid,
    ) -> AppResult<(PersonRow, PersonRow)> {
        let mut rows = Vec::with_capacity(2);
        for id in [keep, merged] {
            let sid = id.to_string();
            self.precheck(ctx, Action::MergeRecords, ("person", &sid))
                .await?;
            let Some(row) = self.store.person(id).await? else {
                return Err(self
                    .missing(ctx, Action::MergeRecords, ("person", &sid))
                    .await);
            };
            let target =
                Target::in_scope(self.within_scope(ctx, row.data.residence_territory.as_deref()));
            self.decide_and_record(ctx, Action::MergeRecords, &target, ("person", &sid))
                .await?;
            rows.push(row);
        }
        let mut p = Problems::default();
        if keep == merged {
            p.push("merged", "merge_same_record");
        }
        if self.store.merged_into(keep).await?.is_some() {
            p.push("keep", "already_merged");
        }
        if self.store.merged_into(merged).await?.is_some() {
            p.push("merged", "already_merged");
        }
        if rows[0].data.role != rows[1].data.role {
            p.push("merged", "merge_role_differs");
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        let merged_row = rows.pop().ok_or(AppError::NotFound)?;
        let keep_row = rows.pop().ok_or(AppError::NotFound)?;
        Ok((keep_row, merged_row))
    }

    /// Merge `merged` into `keep`, in one transaction: fill the kept record's gaps, move the
    /// identifier if it moves, mark the merged record, and record the decision with its reason
    /// on both records in the ledger.
    pub async fn merge_persons(&self, ctx: &Ctx, r: &MergeRequest) -> AppResult<Merged> {
        let (keep, merged) = self.merge_pair(ctx, r.keep, r.merged).await?;
        let reason = r.reason.trim();
        let mut p = Problems::default();
        if reason.is_empty() {
            p.push("reason", "required");
        } else if reason.chars().count() > 1000 {
            p.push("reason", "too_long");
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        if keep.version != r.keep_version {
            return Err(self
                .conflict("person", keep.id, r.keep_version, keep.version)
                .await);
        }
        if merged.version != r.merged_version {
            return Err(self
                .conflict("person", merged.id, r.merged_version, merged.version)
                .await);
        }
        let (result, filled) = merged_data(&keep.data, &merged.data);
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        if filled.contains(&"national_id") {
            let mut without = merged.data.clone();
            without.national_id = None;
            tx.update_person(merged.id, merged.version, &merged.data, &without)
                .await?;
        }
        let keep_version = if filled.is_empty() {
            keep.version
        } else {
            tx.update_person(keep.id, keep.version, &keep.data, &result)
                .await?
        };
        if !tx.mark_merged(merged.id, keep.id).await? {
            let mut p = Problems::default();
            p.push("merged", "already_merged");
            return Err(AppError::Invalid(p));
        }
        tx.record_event(
            "merge",
            "person",
            &merged.id.to_string(),
            Some(json!({"into": keep.id, "reason": reason, "filled": filled})),
        )
        .await?;
        tx.record_event(
            "merge",
            "person",
            &keep.id.to_string(),
            Some(json!({"merged": merged.id, "reason": reason, "filled": filled})),
        )
        .await?;
        tx.commit().await?;
        // The index drops the merged record and takes the kept one's new data.
        if let Err(e) = self.refresh_person_index().await {
            tracing::warn!(error = %e, "person index not refreshed after a merge");
        }
        self.after_subject_change(ctx, keep.id).await;
        Ok(Merged {
            keep: keep.id,
            keep_version,
            merged: merged.id,
            filled,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kamkor_domain::Sex;
    use kamkor_domain::records::PersonRole;

    fn person(nid: Option<&str>, address: Option<&str>) -> PersonData {
        PersonData {
            role: PersonRole::Subject,
            surname: "Осмонова".into(),
            given_name: "Айгүл".into(),
            patronymic: None,
            sex: Sex::Female,
            birth_date: None,
            national_id: nid.map(str::to_string),
            citizenship: None,
            residence_territory: Some("41702205000000".into()),
            address: address.map(str::to_string),
            disability: None,
            legal_status: None,
            social_payments: vec!["a".into()],
            extra: Default::default(),
        }
    }

    #[test]
    fn the_kept_record_takes_only_what_it_lacks() {
        let keep = person(None, Some("ул. Ленина 1"));
        let mut other = person(Some("12345678901234"), Some("другой адрес"));
        other.patronymic = Some("Бакытовна".into());
        other.social_payments = vec!["a".into(), "b".into()];
        let (out, filled) = merged_data(&keep, &other);
        assert_eq!(out.national_id.as_deref(), Some("12345678901234"));
        assert_eq!(out.address.as_deref(), Some("ул. Ленина 1"));
        assert_eq!(out.patronymic.as_deref(), Some("Бакытовна"));
        assert_eq!(out.social_payments, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(filled, vec!["patronymic", "national_id", "social_payments"]);
        let (same, none) = merged_data(&keep, &keep);
        assert_eq!(same, keep);
        assert!(none.is_empty());
    }
}
