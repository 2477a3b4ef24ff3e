//! Use cases: one function per thing a user does. Each asks the one policy function
//! ([`kamkor_domain::policy::decide`]) first, validates with the domain, and writes through the
//! store's single write path.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use kamkor_domain::Sex;
use kamkor_domain::policy::{Action, Actor, Decision, DenyReason, Role, Target, decide};
use kamkor_domain::profile::{PROFILE_FILES, Profile, ProfileError};
use kamkor_domain::records::{
    self, CaseData, CaseDraft, CaseStatus, FamilyData, FamilyDraft, FieldChange, PersonData,
    PersonDraft, PersonRole, Problems, RelationData, RelativeDraft, SubjectKind,
};
use kamkor_store::{
    CaseQuery, CaseRow, ChangeRow, FamilyRow, NewCase, PersonRow, RelationRow, SessionRow, Store,
    StoreError, UserRow, now_utc, parse_ts, ts,
};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

pub mod accounts;
pub mod auth;
pub mod casework;
pub mod demo;
pub mod duplicates;
pub mod ledger;
pub mod merge;
pub mod search;
pub mod synthetic;
pub mod totp;

pub use auth::{LoginError, NewUser};
pub use search::{Matched, PersonHit, PersonResults, PersonSearch};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid input")]
    Invalid(Problems),
    #[error("not found")]
    NotFound,
    #[error("forbidden: {}", .0.code())]
    Forbidden(DenyReason),
    #[error("not logged in")]
    Unauthenticated,
    #[error("conflict: the record is now at version {current}")]
    Conflict {
        current: i64,
        changes: Vec<ConflictChange>,
    },
    #[error("duplicate: {0}")]
    Duplicate(&'static str),
    /// The person being registered may already be in the registry (issue 6 item 2).
    #[error("likely the same person as a registered one")]
    LikelyDuplicates(Box<duplicates::LikelyDuplicates>),
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Config(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Duplicate(w) => AppError::Duplicate(w),
            StoreError::Conflict { current } => AppError::Conflict {
                current,
                changes: Vec::new(),
            },
            other => AppError::Store(other),
        }
    }
}

impl From<Problems> for AppError {
    fn from(p: Problems) -> Self {
        AppError::Invalid(p)
    }
}

/// What someone else changed while the user was editing (shown with a conflict).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConflictChange {
    pub version: i64,
    pub at: String,
    pub actor: String,
    pub fields: Vec<FieldChange>,
}

pub type AppResult<T> = Result<T, AppError>;

/// Load a profile folder from disk: the only I/O around profiles.
pub fn load_profile(dir: &Path) -> Result<Profile, ProfileError> {
    let mut files = BTreeMap::new();
    for f in PROFILE_FILES {
        let path = dir.join(f);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                files.insert(f.to_string(), text);
            }
            Err(e) => {
                return Err(ProfileError {
                    file: path.display().to_string(),
                    key: "(file)".into(),
                    problem: format!("cannot read: {e}"),
                });
            }
        }
    }
    Profile::from_texts(&dir.display().to_string(), &files)
}

/// Settings of the running application.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Idle session time-out.
    pub session_idle: Duration,
    /// Absolute session lifetime.
    pub session_max: Duration,
    /// Unit of the delay after repeated failed logins (see `policy::login_throttle`).
    pub login_delay_unit: std::time::Duration,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            session_idle: Duration::minutes(30),
            session_max: Duration::hours(12),
            login_delay_unit: std::time::Duration::from_secs(1),
        }
    }
}

/// Allowed client networks: (organisation code, network).
type Networks = Vec<(String, ipnet::IpNet)>;

/// The application: a store, a profile, settings.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub profile: Arc<Profile>,
    pub config: AppConfig,
    scope_cache: Arc<RwLock<HashMap<String, Arc<Vec<String>>>>>,
    /// Allowed client networks per organisation (None: not loaded since the last change).
    networks: Arc<RwLock<Option<Arc<Networks>>>>,
    /// Failed logins per unknown login name, so that they wait as long as failures on real
    /// accounts do (the delay must not tell which logins exist). Bounded; kept in memory.
    pub(crate) unknown_failures: Arc<std::sync::Mutex<HashMap<String, i64>>>,
    /// Persons for search and duplicate finding, kept in memory (issue 6).
    pub(crate) person_index: search::SharedIndex,
}

/// The caller of a use case: who, in which role and scope, for which request.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub user: UserRow,
    pub actor: Actor,
    pub request_id: Option<String>,
    pub now: OffsetDateTime,
    /// Hash of the session token the request came with (None for CLI and demo).
    pub session_hash: Option<String>,
    /// The client's address as established by the web layer (peer, or the trusted proxy's
    /// forwarded address).
    pub client_ip: Option<std::net::IpAddr>,
}

impl Ctx {
    pub fn today(&self) -> Date {
        self.now.date()
    }
}

/// A person's card: the person, relatives, families, cases, history.
#[derive(Debug, Clone)]
pub struct PersonCard {
    pub person: PersonRow,
    pub relatives: Vec<(RelationRow, PersonRow)>,
    pub relative_of: Vec<(RelationRow, PersonRow)>,
    pub families: Vec<FamilyRow>,
    pub cases: Vec<CaseRow>,
    pub history: Vec<ChangeRow>,
    /// Names of the people in the history (user id → full name).
    pub actors: HashMap<String, String>,
    /// Linked records outside the user's territory: counted, not shown.
    pub hidden: usize,
    /// Open only through a break-the-glass grant (read-only until it ends).
    pub glass: Option<kamkor_store::GlassBreakRow>,
    /// The record this one was merged into (issue 6 item 3): it is read-only now.
    pub merged_into: Option<Uuid>,
    /// Records merged into this one, within the scope; their cases, relatives and families
    /// are listed with this record's own.
    pub merged: Vec<PersonRow>,
}

#[derive(Debug, Clone)]
pub struct FamilyCard {
    pub family: FamilyRow,
    pub members: Vec<(String, PersonRow)>,
    pub cases: Vec<CaseRow>,
    pub history: Vec<ChangeRow>,
    /// Names of the people in the history (user id → full name).
    pub actors: HashMap<String, String>,
    /// Linked records outside the user's territory: counted, not shown.
    pub hidden: usize,
}

#[derive(Debug, Clone)]
pub struct CaseCard {
    pub case: CaseRow,
    /// Circumstances, assessments, activities, plan versions and visits (issue 5).
    pub records: Vec<kamkor_store::casework::CaseRecordRow>,
    pub subject_person: Option<PersonRow>,
    pub subject_family: Option<FamilyRow>,
    pub responsible_user: Option<UserRow>,
    pub history: Vec<ChangeRow>,
    /// Names of the people in the history (user id → full name).
    pub actors: HashMap<String, String>,
    /// Linked records outside the user's territory: counted, not shown.
    pub hidden: usize,
}

/// Registering a child with a family and relatives in one flow (seed 000 §18).
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct ChildRegistration {
    /// The subject: a child (tzhs-kg) or a released person (reentry-yugra, also as `person`).
    #[serde(alias = "person")]
    pub child: PersonDraft,
    /// Join an existing family…
    pub family_id: String,
    /// …or create one (ignored when `family_id` is given; optional).
    pub family: Option<FamilyDraft>,
    pub relatives: Vec<RelativeDraft>,
    /// The answer to a duplicate warning, when one was shown.
    #[serde(flatten)]
    pub distinct: duplicates::DistinctAnswer,
}

/// The result of a registration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Registered {
    pub person_id: Uuid,
    pub family_id: Option<Uuid>,
    pub relative_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct FamilyRegistration {
    pub family: FamilyDraft,
    /// Existing persons to add as members, with their role in the family.
    pub members: Vec<FamilyMemberDraft>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct FamilyMemberDraft {
    pub person_id: String,
    pub role: String,
}

pub const PAGE_SIZE: i64 = 25;

/// The home page's content: the user's own work.
#[derive(Debug, Clone)]
pub struct Home {
    /// Whether the user's roles give access to personal data at all.
    pub reads_records: bool,
    pub my_cases: Vec<CaseRow>,
    pub subjects: HashMap<Uuid, String>,
    pub counts: Vec<(String, i64)>,
}

const MAX_RELATIVES: usize = 20;

impl App {
    pub fn new(store: Store, profile: Profile, config: AppConfig) -> App {
        App {
            store,
            profile: Arc::new(profile),
            config,
            scope_cache: Arc::new(RwLock::new(HashMap::new())),
            networks: Arc::new(RwLock::new(None)),
            unknown_failures: Arc::new(std::sync::Mutex::new(HashMap::new())),
            person_index: search::SharedIndex::default(),
        }
    }

    /// Check the stored profile name matches; record it on first start.
    pub async fn bind_profile(&self) -> AppResult<()> {
        let name = &self.profile.meta.name;
        match self.store.meta("profile").await? {
            Some(stored) if &stored != name => Err(AppError::Config(format!(
                "this database belongs to profile {stored}, not {name}"
            ))),
            Some(_) => Ok(()),
            None => {
                let mut tx = self.store.begin("system", None).await?;
                tx.set_meta("profile", name).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    }

    // ---- policy helpers ----

    /// Territory codes within a scope node (None: the whole tree, no filter needed).
    pub fn scope_territories(&self, scope: &str) -> Option<Arc<Vec<String>>> {
        if self
            .profile
            .root_territory()
            .is_some_and(|r| r.code == scope)
        {
            return None;
        }
        if let Ok(cache) = self.scope_cache.read()
            && let Some(v) = cache.get(scope)
        {
            return Some(v.clone());
        }
        let codes: Vec<String> = self
            .profile
            .territories
            .iter()
            .filter(|t| self.profile.territory_within(&t.code, scope))
            .map(|t| t.code.clone())
            .collect();
        let v = Arc::new(codes);
        if let Ok(mut cache) = self.scope_cache.write() {
            cache.insert(scope.to_string(), v.clone());
        }
        Some(v)
    }

    fn scope_filter(&self, ctx: &Ctx) -> Option<Vec<String>> {
        if ctx.actor.roles.contains(&Role::CentralViewer) {
            return None;
        }
        self.scope_territories(&ctx.user.scope_territory)
            .map(|v| v.as_ref().clone())
    }

    fn within_scope(&self, ctx: &Ctx, territory: Option<&str>) -> bool {
        match territory {
            Some(t) => self.profile.territory_within(t, &ctx.user.scope_territory),
            // A record with no territory is visible only to whole-tree scopes.
            None => self.scope_territories(&ctx.user.scope_territory).is_none(),
        }
    }

    /// Ask the policy; a denial is recorded (actor, time, action, record) and answered — a
    /// record outside the scope exactly like a missing one.
    async fn check(
        &self,
        ctx: &Ctx,
        action: Action,
        territory: Option<Option<&str>>,
        about: (&str, &str),
    ) -> AppResult<()> {
        let target = match territory {
            Some(t) => Target::in_scope(self.within_scope(ctx, t)),
            None => Target::default(),
        };
        self.decide_and_record(ctx, action, &target, about).await
    }

    /// The policy's answer for a prepared target, with the denial recorded.
    async fn decide_and_record(
        &self,
        ctx: &Ctx,
        action: Action,
        target: &Target,
        about: (&str, &str),
    ) -> AppResult<()> {
        match decide(&ctx.actor, action, target, ctx.now) {
            Decision::Allow => Ok(()),
            Decision::Deny(r) => {
                self.record_denial(ctx, action, r.code(), about).await;
                Err(match r {
                    DenyReason::OutOfScope => AppError::NotFound,
                    r => AppError::Forbidden(r),
                })
            }
        }
    }

    /// Record a refusal in the change log (seed 000 §29; the accounts issue item 8). A missing
    /// record asked for by id is recorded the same way, so that the answer for a record outside
    /// the scope and for a missing one cost the same.
    pub async fn record_denial(
        &self,
        ctx: &Ctx,
        action: Action,
        reason: &str,
        about: (&str, &str),
    ) {
        let detail = serde_json::json!({"action": action.code(), "reason": reason});
        let res = async {
            let mut tx = self
                .store
                .begin(&ctx.user.id, ctx.request_id.as_deref())
                .await?;
            tx.record_event("denied", about.0, about.1, Some(detail))
                .await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = res {
            tracing::error!(error = %e, "could not record a denial");
        }
    }

    /// Whether the caller's roles allow this action at all (on a record in their scope),
    /// asked before a record is looked up: a role that may never do it is refused alike for
    /// existing and missing records, so the refusal says nothing about which ids exist.
    async fn precheck(&self, ctx: &Ctx, action: Action, about: (&str, &str)) -> AppResult<()> {
        self.decide_and_record(ctx, action, &Target::in_scope(true), about)
            .await
    }

    /// A record asked for by id does not exist: recorded like a denial, answered as missing.
    async fn missing(&self, ctx: &Ctx, action: Action, about: (&str, &str)) -> AppError {
        self.record_denial(ctx, action, "not_found", about).await;
        AppError::NotFound
    }

    fn ctx_for(&self, user: UserRow, request_id: Option<String>) -> Ctx {
        let actor = actor_of(&user);
        Ctx {
            user,
            actor,
            request_id,
            now: now_utc(),
            session_hash: None,
            client_ip: None,
        }
    }

    /// A context for a trusted internal caller (CLI, demo) acting as `user`.
    pub fn system_ctx(&self, user: UserRow) -> Ctx {
        self.ctx_for(user, None)
    }

    // ---- persons ----

    /// The personal file to print (seed 000 §21): the card, for those who may hand a file
    /// over (the policy's export right, in their territory; not through broken glass). The
    /// print is recorded with its format; returns the card and the print time.
    pub async fn print_person(
        &self,
        ctx: &Ctx,
        id: Uuid,
        format: &str,
    ) -> AppResult<(PersonCard, String)> {
        let sid = id.to_string();
        self.precheck(ctx, Action::ExportRecord, ("person", &sid))
            .await?;
        let card = self.person_card(ctx, id).await?;
        self.check(
            ctx,
            Action::ExportRecord,
            Some(card.person.data.residence_territory.as_deref()),
            ("person", &sid),
        )
        .await?;
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.record_event(
            "print",
            "person",
            &sid,
            Some(serde_json::json!({"format": format})),
        )
        .await?;
        let printed_at = tx.now().to_string();
        tx.commit().await?;
        Ok((card, printed_at))
    }

    /// Who viewed, found, listed, exported or printed one record, newest first, with their
    /// names (supervisors of the record's territory; the policy decides). `territory` is the
    /// record's, as the card already read it.
    pub async fn record_views(
        &self,
        ctx: &Ctx,
        entity: &str,
        id: &str,
        territory: Option<&str>,
    ) -> AppResult<(Vec<ChangeRow>, HashMap<String, String>)> {
        self.check(ctx, Action::ReadRecordViews, Some(territory), (entity, id))
            .await?;
        let views = self.store.views_of(entity, id, 100).await?;
        let names = self.actor_names(&views).await?;
        Ok((views, names))
    }

    /// Persons holding this national identifier. A match outside the caller's territory is
    /// recorded: learning that an identifier is registered elsewhere is a look at that record
    /// (supervisors and auditors see who probed; security review of issue 3).
    pub(crate) async fn nid_matches(
        &self,
        ctx: &Ctx,
        nid: &str,
        during: &str,
    ) -> AppResult<Vec<PersonRow>> {
        let found = self.store.persons_by_national_id(nid).await?;
        let outside: Vec<String> = found
            .iter()
            .filter(|p| !self.within_scope(ctx, p.data.residence_territory.as_deref()))
            .map(|p| p.id.to_string())
            .collect();
        self.record_seen(
            ctx,
            "identifier_match",
            "person",
            &outside,
            serde_json::json!({"during": during}),
        )
        .await?;
        Ok(found)
    }

    /// Record that the caller saw these records (a view, a search, a list): one ledger entry
    /// per record, written before the data is answered.
    pub(crate) async fn record_seen(
        &self,
        ctx: &Ctx,
        action: &str,
        entity: &str,
        ids: &[String],
        detail: serde_json::Value,
    ) -> AppResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.record_events(action, entity, ids, Some(detail)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn person_card(&self, ctx: &Ctx, id: Uuid) -> AppResult<PersonCard> {
        let sid = id.to_string();
        self.precheck(ctx, Action::ReadRecord, ("person", &sid))
            .await?;
        let Some(person) = self.store.person(id).await? else {
            return Err(self
                .missing(ctx, Action::ReadRecord, ("person", &sid))
                .await);
        };
        let glass = self.glass_for(ctx, &person).await?;
        let target = Target {
            within_scope: Some(self.within_scope(ctx, person.data.residence_territory.as_deref())),
            glass_open: glass.is_some(),
            ..Target::default()
        };
        self.decide_and_record(ctx, Action::ReadRecord, &target, ("person", &sid))
            .await?;
        // A read through broken glass is itself recorded (DESIGN "Access").
        let glass = match (glass, target.within_scope) {
            (Some(g), Some(false)) => {
                let mut tx = self
                    .store
                    .begin(&ctx.user.id, ctx.request_id.as_deref())
                    .await?;
                tx.record_event(
                    "view_under_glass",
                    "person",
                    &sid,
                    Some(serde_json::json!({"grant": g.id})),
                )
                .await?;
                tx.commit().await?;
                Some(g)
            }
            _ => {
                self.record_seen(
                    ctx,
                    "view",
                    "person",
                    std::slice::from_ref(&sid),
                    serde_json::json!({}),
                )
                .await?;
                None
            }
        };
        // Linked records are shown only when they too lie within the user's territory: a
        // relative or a family elsewhere must not open a way around the scope.
        let mut hidden = 0;
        // A merged record's links carry on in the record it was merged into (both histories
        // stay whole: the merged record keeps its own and is listed here).
        let merged_into = self.store.merged_into(id).await?;
        let (merged, h) = self.keep_in_scope(
            ctx,
            self.store
                .persons_by_ids(&self.store.merged_from(id).await?)
                .await?,
            |p| p.data.residence_territory.clone(),
        );
        hidden += h;
        let mut relatives = Vec::new();
        let mut relative_of = Vec::new();
        let mut families = Vec::new();
        let mut cases = Vec::new();
        for one in std::iter::once(id).chain(merged.iter().map(|m| m.id)) {
            relatives.extend(self.store.relatives(one).await?);
            relative_of.extend(self.store.relative_of(one).await?);
            families.extend(self.store.families_of(one).await?);
            cases.extend(self.store.cases_of_subject(one).await?);
        }
        let mut seen = std::collections::HashSet::new();
        families.retain(|f| seen.insert(f.id));
        let (relatives, h) =
            self.keep_in_scope(ctx, relatives, |(_, p)| p.data.residence_territory.clone());
        hidden += h;
        let (relative_of, h) = self.keep_in_scope(ctx, relative_of, |(_, p)| {
            p.data.residence_territory.clone()
        });
        hidden += h;
        let (families, h) = self.keep_in_scope(ctx, families, |f| f.data.territory.clone());
        hidden += h;
        let (cases, h) = self.keep_in_scope(ctx, cases, |c| Some(c.territory.clone()));
        hidden += h;
        let history = self.store.changes_for("person", id).await?;
        let actors = self.actor_names(&history).await?;
        Ok(PersonCard {
            person,
            relatives,
            relative_of,
            families,
            cases,
            history,
            actors,
            hidden,
            glass,
            merged_into,
            merged,
        })
    }

    /// The personal file as data, to hand over to a competent body (seed 000 §30) or to the
    /// data subject. Recorded in the change log; linked records outside the scope stay out.
    pub async fn export_person(&self, ctx: &Ctx, id: Uuid) -> AppResult<serde_json::Value> {
        let sid = id.to_string();
        self.precheck(ctx, Action::ExportRecord, ("person", &sid))
            .await?;
        let Some(person) = self.store.person(id).await? else {
            return Err(self
                .missing(ctx, Action::ExportRecord, ("person", &sid))
                .await);
        };
        self.check(
            ctx,
            Action::ExportRecord,
            Some(person.data.residence_territory.as_deref()),
            ("person", &sid),
        )
        .await?;
        let (relatives, _) = self.keep_in_scope(ctx, self.store.relatives(id).await?, |(_, p)| {
            p.data.residence_territory.clone()
        });
        let (families, _) = self.keep_in_scope(ctx, self.store.families_of(id).await?, |f| {
            f.data.territory.clone()
        });
        let (cases, _) = self.keep_in_scope(ctx, self.store.cases_of_subject(id).await?, |c| {
            Some(c.territory.clone())
        });
        let out = serde_json::json!({
            "exported_at": ts(ctx.now),
            "exported_by": ctx.user.full_name,
            "profile": self.profile.meta.name,
            "person": {"id": person.id, "version": person.version, "data": person.data},
            "relatives": relatives.iter().map(|(r, p)| serde_json::json!({
                "relation": r.data, "person": {"id": p.id, "data": p.data},
            })).collect::<Vec<_>>(),
            "families": families.iter().map(|f| serde_json::json!({"id": f.id, "data": f.data})).collect::<Vec<_>>(),
            "cases": cases.iter().map(|c| serde_json::json!({
                "id": c.id, "number": c.number, "status": c.status.code(), "data": c.data,
            })).collect::<Vec<_>>(),
        });
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.record_event(
            "export",
            "person",
            &sid,
            Some(serde_json::json!({"relatives": relatives.len(), "cases": cases.len()})),
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Split linked records into those within the user's scope and a count of the rest.
    fn keep_in_scope<T>(
        &self,
        ctx: &Ctx,
        rows: Vec<T>,
        territory: impl Fn(&T) -> Option<String>,
    ) -> (Vec<T>, usize) {
        let total = rows.len();
        let reads_all = ctx.actor.roles.contains(&Role::CentralViewer);
        let kept: Vec<T> = rows
            .into_iter()
            .filter(|r| reads_all || self.within_scope(ctx, territory(r).as_deref()))
            .collect();
        let hidden = total - kept.len();
        (kept, hidden)
    }

    fn subject_form(&self) -> Option<&kamkor_domain::profile::FormDef> {
        self.profile.forms.iter().find(|f| f.applies_to == "person")
    }

    /// The subject form as the caller fills it: a section another agency fills (seed 004
    /// §11) cannot be required of someone who may not type into it. `territory` is the
    /// record's (`None` for a new record: the sections the caller's agency kind owns).
    fn subject_form_for(
        &self,
        ctx: &Ctx,
        territory: Option<Option<&str>>,
    ) -> Option<kamkor_domain::profile::FormDef> {
        let mut form = self.subject_form()?.clone();
        for sec in &mut form.section {
            let editable = match territory {
                Some(t) => self.may_edit_section(ctx, t, sec),
                None => self.owns_section(ctx, sec),
            };
            if !editable {
                for f in &mut sec.field {
                    f.required = false;
                }
            }
        }
        Some(form)
    }

    fn family_form(&self) -> Option<&kamkor_domain::profile::FormDef> {
        self.profile.forms.iter().find(|f| f.applies_to == "family")
    }

    fn case_form(&self) -> Option<&kamkor_domain::profile::FormDef> {
        self.profile.forms.iter().find(|f| f.applies_to == "case")
    }

    /// Register a child (or, in reentry-yugra, a released person) with a family and relatives,
    /// all or nothing: any problem anywhere stores nothing.
    pub async fn register_child(&self, ctx: &Ctx, r: &ChildRegistration) -> AppResult<Registered> {
        let res = self.register_child_inner(ctx, r).await;
        self.note_scope_denial(ctx, Action::CreateRecord, "person", res)
            .await
    }

    async fn register_child_inner(
        &self,
        ctx: &Ctx,
        r: &ChildRegistration,
    ) -> AppResult<Registered> {
        let today = ctx.today();
        let mut problems = Problems::default();
        let subject_form = self.subject_form_for(ctx, None);
        let child = match records::validate_person(
            &self.profile,
            subject_form.as_ref(),
            PersonRole::Subject,
            &r.child,
            today,
        ) {
            Ok(c) => Some(c),
            Err(p) => {
                problems.nest("child", p);
                None
            }
        };
        self.check(ctx, Action::CreateRecord, None, ("person", ""))
            .await?;
        if let Some(c) = &child {
            // Territories are public reference data: saying "outside your territory" next to
            // the field leaks nothing and tells the worker what to fix.
            if !self.within_scope(ctx, c.residence_territory.as_deref()) {
                problems.push("child.residence_territory", "out_of_scope");
            }
            if let Some(nid) = &c.national_id
                && !self.nid_matches(ctx, nid, "register").await?.is_empty()
            {
                problems.push("child.national_id", "national_id_taken");
            }
            // Another agency's section is filled by that agency, also on a new record (seed
            // 004 §11).
            if self.within_scope(ctx, c.residence_territory.as_deref())
                && self
                    .foreign_sections_changed(
                        ctx,
                        c.residence_territory.as_deref(),
                        &serde_json::Map::new(),
                        &c.extra,
                    )
                    .is_some()
            {
                self.record_denial(
                    ctx,
                    Action::EditSection,
                    "section_not_owned",
                    ("person", ""),
                )
                .await;
                return Err(AppError::Forbidden(DenyReason::SectionNotOwned));
            }
        }
        // Family: an existing one, or a new one.
        let mut existing_family = None;
        let mut new_family = None;
        if !r.family_id.trim().is_empty() {
            match Uuid::parse_str(r.family_id.trim()) {
                Ok(fid) => match self.store.family(fid).await? {
                    Some(f) if self.within_scope(ctx, f.data.territory.as_deref()) => {
                        existing_family = Some(f)
                    }
                    _ => problems.push("family_id", "not_found"),
                },
                Err(_) => problems.push("family_id", "not_found"),
            }
        } else if let Some(fd) = &r.family {
            let mut fd = fd.clone();
            if fd.territory.trim().is_empty() {
                fd.territory = r.child.residence_territory.clone();
            }
            if fd.address.trim().is_empty() {
                fd.address = r.child.address.clone();
            }
            if fd.name.trim().is_empty() && !r.child.surname.trim().is_empty() {
                fd.name = records::family_name(&r.child.surname);
            }
            match records::validate_family(&self.profile, self.family_form(), &fd, today) {
                Ok(f) => {
                    if !self.within_scope(ctx, f.territory.as_deref()) {
                        problems.push("family.territory", "out_of_scope");
                    }
                    new_family = Some(f)
                }
                Err(p) => problems.nest("family", p),
            }
        }
        if r.relatives.len() > MAX_RELATIVES {
            problems.push("relatives", "too_many");
        }
        // (index in the submission, existing person, new person, relation)
        let mut relatives: Vec<(usize, Option<Uuid>, Option<PersonData>, RelationData)> =
            Vec::new();
        for (i, rd) in r.relatives.iter().enumerate().take(MAX_RELATIVES) {
            let prefix = format!("relatives[{i}]");
            let rel = match records::validate_relation(&self.profile, rd, today) {
                Ok(x) => Some(x),
                Err(p) => {
                    problems.nest(&prefix, p);
                    None
                }
            };
            let (existing, person) = if !rd.existing_id.trim().is_empty() {
                match Uuid::parse_str(rd.existing_id.trim()).ok() {
                    Some(id) => match self.store.person(id).await? {
                        Some(p)
                            if self.within_scope(ctx, p.data.residence_territory.as_deref()) =>
                        {
                            (Some(p.id), None)
                        }
                        _ => {
                            problems.push(format!("{prefix}.existing_id"), "not_found");
                            (None, None)
                        }
                    },
                    None => {
                        problems.push(format!("{prefix}.existing_id"), "not_found");
                        (None, None)
                    }
                }
            } else {
                let mut pd = rd.person.clone();
                // A relative lives with the child unless told otherwise: scope follows.
                if pd.residence_territory.trim().is_empty() {
                    pd.residence_territory = r.child.residence_territory.clone();
                }
                match records::validate_person(
                    &self.profile,
                    None,
                    PersonRole::Relative,
                    &pd,
                    today,
                ) {
                    Ok(p) => {
                        if !self.within_scope(ctx, p.residence_territory.as_deref()) {
                            problems.push(
                                format!("{prefix}.person.residence_territory"),
                                "out_of_scope",
                            );
                        }
                        if let Some(nid) = &p.national_id {
                            let same = self.nid_matches(ctx, nid, "register").await?;
                            if !same.is_empty() {
                                problems.push(
                                    format!("{prefix}.person.national_id"),
                                    "national_id_taken",
                                );
                            }
                        }
                        (None, Some(p))
                    }
                    Err(p) => {
                        problems.nest(&format!("{prefix}.person"), p);
                        (None, None)
                    }
                }
            };
            if let Some(rel) = rel {
                relatives.push((i, existing, person, rel));
            }
        }
        // Two entries with the same identifier in one submission.
        let mut seen = HashMap::new();
        if let Some(nid) = child.as_ref().and_then(|c| c.national_id.clone()) {
            seen.insert(nid, "child".to_string());
        }
        for (i, _, p, _) in &relatives {
            if let Some(nid) = p.as_ref().and_then(|p| p.national_id.clone())
                && seen.insert(nid, format!("relatives[{i}]")).is_some()
            {
                problems.push(
                    format!("relatives[{i}].person.national_id"),
                    "national_id_repeated",
                );
            }
        }
        let Some(child) = child else {
            return Err(AppError::Invalid(problems));
        };
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
        // The same child written differently may be registered already (issue 6 item 2).
        let told_apart = self.check_duplicates(ctx, &child, &r.distinct).await?;

        let child_id = Uuid::now_v7();
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        // The unique index settles a race between two registrations of one identifier.
        if let Err(e) = tx.insert_persons(&[(child_id, child)]).await {
            return Err(taken_or(e, "child.national_id"));
        }
        if let Some(d) = &told_apart {
            self.record_distinct(&mut tx, child_id, d).await?;
        }
        let mut relative_ids = Vec::new();
        let mut new_persons = Vec::new();
        let mut rels = Vec::new();
        for (_, existing, person, rel) in relatives {
            let rid = match (existing, person) {
                (Some(id), _) => id,
                (None, Some(p)) => {
                    let id = Uuid::now_v7();
                    new_persons.push((id, p));
                    id
                }
                (None, None) => continue,
            };
            relative_ids.push(rid);
            rels.push((Uuid::now_v7(), child_id, rid, rel));
        }
        if let Err(e) = tx.insert_persons(&new_persons).await {
            return Err(taken_or(e, "relatives"));
        }
        tx.insert_relations(&rels).await?;
        let family_id = match (existing_family, new_family) {
            (Some(f), _) => Some(f.id),
            (None, Some(fd)) => {
                let id = Uuid::now_v7();
                tx.insert_families(&[(id, fd)]).await?;
                Some(id)
            }
            _ => None,
        };
        if let Some(fid) = family_id {
            let mut members = vec![(Uuid::now_v7(), fid, child_id, "child".to_string())];
            for (_, _, rid, rel) in &rels {
                members.push((Uuid::now_v7(), fid, *rid, rel.relation_kind.clone()));
            }
            // A relative already in the family is not added twice.
            let existing: Vec<Uuid> = self
                .store
                .family_members(fid)
                .await?
                .iter()
                .map(|(_, p)| p.id)
                .collect();
            members.retain(|(_, _, pid, _)| !existing.contains(pid));
            tx.insert_family_members(&members).await?;
        }
        tx.commit().await?;
        Ok(Registered {
            person_id: child_id,
            family_id,
            relative_ids,
        })
    }

    /// Correct a person's data. `base_version` is the version the user saw; if someone else
    /// changed the record meanwhile, nothing is written and the conflict lists their changes.
    pub async fn update_person(
        &self,
        ctx: &Ctx,
        id: Uuid,
        base_version: i64,
        d: &PersonDraft,
    ) -> AppResult<i64> {
        let res = self
            .update_person_inner(ctx, id, base_version, d, None)
            .await;
        let v = self
            .note_scope_denial(ctx, Action::UpdateRecord, "person", res)
            .await?;
        self.after_subject_change(ctx, id).await;
        Ok(v)
    }

    /// Edit one form section of a person (seed 004 §11): only that section's fields change,
    /// and only an organisation kind owning the section may do it.
    pub async fn update_person_section(
        &self,
        ctx: &Ctx,
        id: Uuid,
        base_version: i64,
        section: &str,
        values: &BTreeMap<String, serde_json::Value>,
        effective_on: &str,
    ) -> AppResult<i64> {
        let sid = id.to_string();
        self.precheck(ctx, Action::EditSection, ("person", &sid))
            .await?;
        let Some(current) = self.store.person(id).await? else {
            return Err(self
                .missing(ctx, Action::EditSection, ("person", &sid))
                .await);
        };
        let Some(sec) = self
            .subject_form()
            .filter(|_| current.data.role == PersonRole::Subject)
            .and_then(|f| f.section.iter().find(|s| s.code == section))
        else {
            self.check(
                ctx,
                Action::EditSection,
                Some(current.data.residence_territory.as_deref()),
                ("person", &sid),
            )
            .await?;
            let mut p = Problems::default();
            p.push("section", "unknown_code");
            return Err(AppError::Invalid(p));
        };
        let target = self.section_target(ctx, current.data.residence_territory.as_deref(), sec);
        self.decide_and_record(ctx, Action::EditSection, &target, ("person", &sid))
            .await?;
        let mut p = Problems::default();
        for k in values.keys() {
            if !sec.field.iter().any(|f| &f.code == k) {
                p.push(format!("extra.{k}"), "unknown_field");
            }
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        let mut draft = current.data.to_draft();
        draft.effective_on = effective_on.to_string();
        for f in &sec.field {
            match values.get(&f.code) {
                Some(v) => draft.extra.insert(f.code.clone(), v.clone()),
                None => draft.extra.remove(&f.code),
            };
        }
        let v = self
            .update_person_inner(ctx, id, base_version, &draft, Some(section))
            .await?;
        self.after_subject_change(ctx, id).await;
        Ok(v)
    }

    /// Whether the caller may do this to a record in `territory` (the pages offer only what
    /// is allowed; the use cases decide again).
    pub fn may(&self, ctx: &Ctx, action: Action, territory: Option<&str>) -> bool {
        decide(
            &ctx.actor,
            action,
            &Target::in_scope(self.within_scope(ctx, territory)),
            ctx.now,
        ) == Decision::Allow
    }

    /// Whether the caller may edit this section of a record in `territory` (the pages show
    /// other sections read-only).
    pub fn may_edit_section(
        &self,
        ctx: &Ctx,
        territory: Option<&str>,
        sec: &kamkor_domain::profile::SectionDef,
    ) -> bool {
        decide(
            &ctx.actor,
            Action::EditSection,
            &self.section_target(ctx, territory, sec),
            ctx.now,
        ) == Decision::Allow
    }

    /// May the caller open the page that edits this section of a person they have read?
    /// A refusal is recorded like any other. A record opened by breaking the glass is read-only.
    pub async fn authorise_section_edit(
        &self,
        ctx: &Ctx,
        person: &PersonRow,
        sec: &kamkor_domain::profile::SectionDef,
    ) -> AppResult<()> {
        let sid = person.id.to_string();
        let target = self.section_target(ctx, person.data.residence_territory.as_deref(), sec);
        self.decide_and_record(ctx, Action::EditSection, &target, ("person", &sid))
            .await
    }

    /// May the caller open the form that edits this whole person record? Recorded when not.
    pub async fn authorise_person_edit(&self, ctx: &Ctx, person: &PersonRow) -> AppResult<()> {
        let sid = person.id.to_string();
        self.check(
            ctx,
            Action::UpdateRecord,
            Some(person.data.residence_territory.as_deref()),
            ("person", &sid),
        )
        .await
    }

    /// Whether the caller's agency kind fills this section (seed 004 §11), wherever the
    /// record is: what a registration form lets the user type into.
    pub fn owns_section(&self, ctx: &Ctx, sec: &kamkor_domain::profile::SectionDef) -> bool {
        decide(
            &ctx.actor,
            Action::EditSection,
            &Target {
                within_scope: None,
                section_owners: sec.owners.clone(),
                glass_open: false,
            },
            ctx.now,
        ) == Decision::Allow
    }

    fn section_target(
        &self,
        ctx: &Ctx,
        territory: Option<&str>,
        sec: &kamkor_domain::profile::SectionDef,
    ) -> Target {
        Target {
            within_scope: Some(self.within_scope(ctx, territory)),
            section_owners: sec.owners.clone(),
            glass_open: false,
        }
    }

    /// Sections of the subject form whose values differ between two versions of a person and
    /// that the caller may not edit.
    fn foreign_sections_changed(
        &self,
        ctx: &Ctx,
        territory: Option<&str>,
        before: &serde_json::Map<String, serde_json::Value>,
        after: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<String> {
        let form = self.subject_form()?;
        form.section
            .iter()
            .filter(|sec| !self.may_edit_section(ctx, territory, sec))
            .find(|sec| {
                sec.field.iter().any(|f| {
                    let empty = |v: Option<&serde_json::Value>| {
                        v.is_none_or(|v| v.is_null() || v.as_str() == Some(""))
                    };
                    let (b, a) = (before.get(&f.code), after.get(&f.code));
                    !(b == a || empty(b) && empty(a))
                })
            })
            .map(|sec| sec.code.clone())
    }

    async fn note_scope_denial<T>(
        &self,
        ctx: &Ctx,
        action: Action,
        entity: &str,
        res: AppResult<T>,
    ) -> AppResult<T> {
        if let Err(AppError::Invalid(p)) = &res
            && p.0.iter().any(|f| f.code == "out_of_scope")
        {
            self.record_denial(ctx, action, "out_of_scope", (entity, ""))
                .await;
        }
        res
    }

    async fn update_person_inner(
        &self,
        ctx: &Ctx,
        id: Uuid,
        base_version: i64,
        d: &PersonDraft,
        section: Option<&str>,
    ) -> AppResult<i64> {
        let sid = id.to_string();
        if section.is_none() {
            self.precheck(ctx, Action::UpdateRecord, ("person", &sid))
                .await?;
        }
        let Some(current) = self.store.person(id).await? else {
            return Err(self
                .missing(ctx, Action::UpdateRecord, ("person", &sid))
                .await);
        };
        let territory = current.data.residence_territory.clone();
        // A section edit was authorised by its owner check; a whole-record edit needs the
        // right to update records.
        if section.is_none() {
            self.check(
                ctx,
                Action::UpdateRecord,
                Some(territory.as_deref()),
                ("person", &sid),
            )
            .await?;
        }
        // After the right is checked, so that a refusal says nothing about the record.
        if self.store.merged_into(id).await?.is_some() {
            let mut p = Problems::default();
            p.push("id", "already_merged");
            return Err(AppError::Invalid(p));
        }
        let form = if current.data.role == PersonRole::Subject {
            self.subject_form_for(ctx, Some(territory.as_deref()))
        } else {
            None
        };
        let form = form.as_ref();
        // A stale edit is a conflict before anything else: it shows what changed meanwhile
        // and answers no question about other records.
        if current.version != base_version {
            return Err(self
                .conflict("person", id, base_version, current.version)
                .await);
        }
        // Sections the caller may not edit keep their values when the form left them out
        // (the pages show them read-only).
        let mut d = d.clone();
        if let Some(form) = form {
            let stored = current.data.to_draft();
            for sec in &form.section {
                if self.may_edit_section(ctx, territory.as_deref(), sec) {
                    continue;
                }
                for f in &sec.field {
                    if !d.extra.contains_key(&f.code)
                        && let Some(v) = stored.extra.get(&f.code)
                    {
                        d.extra.insert(f.code.clone(), v.clone());
                    }
                }
            }
        }
        // Problems with the effective date are reported with the record's own.
        let effective = records::validate_effective_on(&d.effective_on, ctx.today());
        let data =
            match records::validate_person(&self.profile, form, current.data.role, &d, ctx.today())
            {
                Ok(data) => match effective {
                    Ok(_) => data,
                    Err(code) => {
                        let mut p = Problems::default();
                        p.push("effective_on", code);
                        return Err(AppError::Invalid(p));
                    }
                },
                Err(mut p) => {
                    if let Err(code) = effective {
                        p.push("effective_on", code);
                    }
                    return Err(AppError::Invalid(p));
                }
            };
        let effective = effective.ok().flatten();
        if let Some(code) = self.foreign_sections_changed(
            ctx,
            territory.as_deref(),
            &current.data.extra,
            &data.extra,
        ) {
            let _ = code;
            self.record_denial(
                ctx,
                Action::EditSection,
                "section_not_owned",
                ("person", &sid),
            )
            .await;
            return Err(AppError::Forbidden(DenyReason::SectionNotOwned));
        }
        if section.is_some() && !same_core(&current.data, &data) {
            let mut p = Problems::default();
            p.push("section", "section_only");
            return Err(AppError::Invalid(p));
        }
        if !self.within_scope(ctx, data.residence_territory.as_deref()) {
            let mut p = Problems::default();
            p.push("residence_territory", "out_of_scope");
            return Err(AppError::Invalid(p));
        }
        if let Some(nid) = &data.national_id
            && self
                .nid_matches(ctx, nid, "update")
                .await?
                .iter()
                .any(|p| p.id != id)
        {
            let mut p = Problems::default();
            p.push("national_id", "national_id_taken");
            return Err(AppError::Invalid(p));
        }
        if current.version != base_version {
            return Err(self
                .conflict("person", id, base_version, current.version)
                .await);
        }
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.set_effective_on(effective);
        match tx
            .update_person(id, base_version, &current.data, &data)
            .await
        {
            Ok(v) => {
                tx.commit().await?;
                Ok(v)
            }
            Err(StoreError::Conflict { current }) => {
                drop(tx);
                Err(self.conflict("person", id, base_version, current).await)
            }
            Err(e) => Err(taken_or(e, "national_id")),
        }
    }

    async fn conflict(&self, entity: &str, id: Uuid, base: i64, current: i64) -> AppError {
        let changes = match self.store.changes_for(entity, id).await {
            Ok(rows) => rows
                .into_iter()
                .filter(|c| c.version > base && c.before.is_some())
                .map(|c| ConflictChange {
                    version: c.version,
                    at: c.at,
                    actor: c.actor,
                    fields: records::diff(
                        c.before.as_ref().unwrap_or(&serde_json::Value::Null),
                        c.after.as_ref().unwrap_or(&serde_json::Value::Null),
                    ),
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        AppError::Conflict { current, changes }
    }

    // ---- families ----

    pub async fn register_family(&self, ctx: &Ctx, r: &FamilyRegistration) -> AppResult<Uuid> {
        let res = self.register_family_inner(ctx, r).await;
        self.note_scope_denial(ctx, Action::CreateRecord, "family", res)
            .await
    }

    async fn register_family_inner(&self, ctx: &Ctx, r: &FamilyRegistration) -> AppResult<Uuid> {
        let data = match records::validate_family(
            &self.profile,
            self.family_form(),
            &r.family,
            ctx.today(),
        ) {
            Ok(d) => d,
            Err(p) => {
                self.check(ctx, Action::CreateRecord, None, ("family", ""))
                    .await?;
                return Err(AppError::Invalid(p));
            }
        };
        self.check(ctx, Action::CreateRecord, None, ("family", ""))
            .await?;
        let mut problems = Problems::default();
        if !self.within_scope(ctx, data.territory.as_deref()) {
            problems.push("territory", "out_of_scope");
        }
        let mut members = Vec::new();
        let id = Uuid::now_v7();
        if r.members.len() > MAX_RELATIVES {
            problems.push("members", "too_many");
        }
        for (i, m) in r.members.iter().enumerate().take(MAX_RELATIVES) {
            let Some(pid) = Uuid::parse_str(m.person_id.trim()).ok() else {
                problems.push(format!("members[{i}].person_id"), "not_found");
                continue;
            };
            match self.store.person(pid).await? {
                Some(p) if self.within_scope(ctx, p.data.residence_territory.as_deref()) => {}
                _ => {
                    problems.push(format!("members[{i}].person_id"), "not_found");
                    continue;
                }
            }
            let role = if m.role.trim().is_empty() {
                "member".to_string()
            } else {
                m.role.trim().to_string()
            };
            if role != "child"
                && role != "member"
                && self
                    .profile
                    .classifier("relation_kind")
                    .and_then(|c| c.find(&role))
                    .is_none()
            {
                problems.push(format!("members[{i}].role"), "unknown_code");
                continue;
            }
            if members.iter().any(|(_, _, p, _)| *p == pid) {
                continue;
            }
            members.push((Uuid::now_v7(), id, pid, role));
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.insert_families(&[(id, data)]).await?;
        tx.insert_family_members(&members).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn family_card(&self, ctx: &Ctx, id: Uuid) -> AppResult<FamilyCard> {
        let sid = id.to_string();
        self.precheck(ctx, Action::ReadRecord, ("family", &sid))
            .await?;
        let Some(family) = self.store.family(id).await? else {
            return Err(self
                .missing(ctx, Action::ReadRecord, ("family", &sid))
                .await);
        };
        self.check(
            ctx,
            Action::ReadRecord,
            Some(family.data.territory.as_deref()),
            ("family", &sid),
        )
        .await?;
        let mut hidden = 0;
        let (members, h) =
            self.keep_in_scope(ctx, self.store.family_members(id).await?, |(_, p)| {
                p.data.residence_territory.clone()
            });
        hidden += h;
        let (cases, h) = self.keep_in_scope(ctx, self.store.cases_of_subject(id).await?, |c| {
            Some(c.territory.clone())
        });
        hidden += h;
        self.record_seen(
            ctx,
            "view",
            "family",
            std::slice::from_ref(&sid),
            serde_json::json!({}),
        )
        .await?;
        let history = self.store.changes_for("family", id).await?;
        let actors = self.actor_names(&history).await?;
        Ok(FamilyCard {
            family,
            members,
            cases,
            history,
            actors,
            hidden,
        })
    }

    pub async fn search_families(&self, ctx: &Ctx, name: &str) -> AppResult<Vec<FamilyRow>> {
        self.check(ctx, Action::Search, None, ("family", ""))
            .await?;
        let scope = self.scope_filter(ctx);
        if name.chars().count() > 200 {
            let mut p = Problems::default();
            p.push("name", "too_long");
            return Err(AppError::Invalid(p));
        }
        let n = records::normalize_for_search(name);
        let rows = self
            .store
            .search_families(Some(&n), scope.as_deref(), 50)
            .await?;
        let shown: Vec<String> = rows.iter().map(|f| f.id.to_string()).collect();
        self.record_seen(
            ctx,
            "search",
            "family",
            &shown,
            serde_json::json!({"name": name}),
        )
        .await?;
        Ok(rows)
    }

    // ---- cases ----

    /// Open a case on a child, a family or a person (seed 000 §18: date and place of
    /// identification; responsible organisation and worker).
    pub async fn open_case(&self, ctx: &Ctx, d: &CaseDraft) -> AppResult<CaseRow> {
        let res = self.open_case_inner(ctx, d).await;
        self.note_scope_denial(ctx, Action::OpenCase, "case", res)
            .await
    }

    async fn open_case_inner(&self, ctx: &Ctx, d: &CaseDraft) -> AppResult<CaseRow> {
        let data = match records::validate_case(&self.profile, self.case_form(), d, ctx.today()) {
            Ok(x) => x,
            Err(p) => {
                self.check(ctx, Action::OpenCase, None, ("case", ""))
                    .await?;
                return Err(AppError::Invalid(p));
            }
        };
        self.check(ctx, Action::OpenCase, None, ("case", ""))
            .await?;
        if !self.within_scope(ctx, Some(&data.identification_territory)) {
            let mut p = Problems::default();
            p.push("identification_territory", "out_of_scope");
            return Err(AppError::Invalid(p));
        }
        // The subject must exist and be visible to the user.
        // The subject must exist, be visible to the user and be of the kind named: a case is
        // opened on a registered child (or released person) or a family, never on a relative.
        let mut problems = Problems::default();
        match data.subject_kind {
            SubjectKind::Family => match self.store.family(data.subject_id).await? {
                Some(f) if self.within_scope(ctx, f.data.territory.as_deref()) => {}
                _ => problems.push("subject_id", "not_found"),
            },
            kind => match self.store.person(data.subject_id).await? {
                Some(p) if self.within_scope(ctx, p.data.residence_territory.as_deref()) => {
                    let expected = if self.profile.meta.subject == "child" {
                        SubjectKind::Child
                    } else {
                        SubjectKind::Person
                    };
                    if p.data.role != PersonRole::Subject || kind != expected {
                        problems.push("subject_kind", "not_a_subject");
                    }
                    if p.data.birth_date.is_some_and(|b| data.identified_on < b) {
                        problems.push("identified_on", "before_birth");
                    }
                    // A merged record carries on in the one it was merged into.
                    if self.store.merged_into(p.id).await?.is_some() {
                        problems.push("subject_id", "already_merged");
                    }
                }
                _ => problems.push("subject_id", "not_found"),
            },
        }
        if data.identified_on.year() < 2000 {
            problems.push("identified_on", "too_old");
        }
        // The responsible organisation serves the place of identification (or the whole country).
        if let Some(a) = self.profile.agency(&data.responsible_org)
            && !self
                .profile
                .territory_within(&data.identification_territory, &a.territory)
        {
            problems.push("responsible_org", "org_not_serving_territory");
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems));
        }
        let year = ctx.today().year();
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        let seq = tx.next_counter(&format!("case_number_{year}")).await?;
        let number = records::case_number(&self.profile.meta.case_number_prefix, year, seq);
        let id = Uuid::now_v7();
        let new = NewCase {
            id,
            number,
            status: CaseStatus::Identified,
            data,
            responsible_user: Some(ctx.user.id.clone()),
        };
        tx.insert_cases(std::slice::from_ref(&new)).await?;
        tx.commit().await?;
        self.store.case(id).await?.ok_or(AppError::NotFound)
    }

    pub async fn case_card(&self, ctx: &Ctx, id: Uuid) -> AppResult<CaseCard> {
        let sid = id.to_string();
        self.precheck(ctx, Action::ReadRecord, ("case", &sid))
            .await?;
        let Some(case) = self.store.case(id).await? else {
            return Err(self.missing(ctx, Action::ReadRecord, ("case", &sid)).await);
        };
        self.check_case(ctx, Action::ReadRecord, &case).await?;
        let (subject_person, subject_family) = match case.data.subject_kind {
            SubjectKind::Family => (None, self.store.family(case.data.subject_id).await?),
            _ => (self.store.person(case.data.subject_id).await?, None),
        };
        let (subject_person, h1) =
            self.keep_in_scope(ctx, subject_person.into_iter().collect(), |p| {
                p.data.residence_territory.clone()
            });
        let (subject_family, h2) =
            self.keep_in_scope(ctx, subject_family.into_iter().collect(), |f| {
                f.data.territory.clone()
            });
        let hidden = h1 + h2;
        let subject_person = subject_person.into_iter().next();
        let subject_family = subject_family.into_iter().next();
        let responsible_user = match &case.responsible_user {
            Some(u) => self.store.user(u).await?,
            None => None,
        };
        self.record_seen(
            ctx,
            "view",
            "case",
            std::slice::from_ref(&sid),
            serde_json::json!({}),
        )
        .await?;
        let history = self.store.changes_for_case(id).await?;
        let actors = self.actor_names(&history).await?;
        let records = self.store.case_records(id, None).await?;
        Ok(CaseCard {
            records,
            case,
            subject_person,
            subject_family,
            responsible_user,
            history,
            actors,
            hidden,
        })
    }

    pub async fn list_cases(
        &self,
        ctx: &Ctx,
        status: Option<CaseStatus>,
        mine: bool,
        page: i64,
    ) -> AppResult<Vec<CaseRow>> {
        self.check(ctx, Action::Search, None, ("case", "")).await?;
        let q = CaseQuery {
            responsible_user: mine.then(|| ctx.user.id.clone()),
            status,
            open_only: false,
            territories: self.scope_filter(ctx),
            limit: PAGE_SIZE + 1,
            offset: page.clamp(0, 10_000) * PAGE_SIZE,
        };
        let rows = self.store.list_cases(&q).await?;
        let shown: Vec<String> = rows
            .iter()
            .take(PAGE_SIZE as usize)
            .map(|c| c.id.to_string())
            .collect();
        self.record_seen(
            ctx,
            "search",
            "case",
            &shown,
            serde_json::json!({"status": status.map(|s| s.code()), "mine": mine, "page": page}),
        )
        .await?;
        Ok(rows)
    }

    /// Full names of the users who made the changes in `rows` (`system` for the installer).
    pub async fn actor_names(&self, rows: &[ChangeRow]) -> AppResult<HashMap<String, String>> {
        let mut out = HashMap::new();
        for r in rows {
            if out.contains_key(&r.actor) {
                continue;
            }
            // Unknown actors (the installer's `system`, `cli`) are named by the page.
            if let Some(u) = self.store.user(&r.actor).await? {
                out.insert(r.actor.clone(), u.full_name);
            }
        }
        Ok(out)
    }

    /// Names of case subjects, for lists.
    /// Names of case subjects, for lists — only of subjects the caller may read: a child who
    /// moved to another territory is not named by the case left behind (the card hides them
    /// the same way).
    pub async fn subject_names(
        &self,
        ctx: &Ctx,
        cases: &[CaseRow],
    ) -> AppResult<HashMap<Uuid, String>> {
        let reads_all = ctx.actor.roles.contains(&Role::CentralViewer);
        let mut out = HashMap::new();
        for c in cases {
            if out.contains_key(&c.data.subject_id) {
                continue;
            }
            let found = match c.data.subject_kind {
                SubjectKind::Family => self
                    .store
                    .family(c.data.subject_id)
                    .await?
                    .map(|f| (f.data.name, f.data.territory)),
                _ => self
                    .store
                    .person(c.data.subject_id)
                    .await?
                    .map(|p| (p.data.full_name(), p.data.residence_territory)),
            };
            if let Some((name, territory)) = found
                && (reads_all || self.within_scope(ctx, territory.as_deref()))
            {
                out.insert(c.data.subject_id, name);
            }
        }
        Ok(out)
    }

    pub async fn home(&self, ctx: &Ctx) -> AppResult<Home> {
        let scope = self.scope_filter(ctx);
        let reads = matches!(
            decide(&ctx.actor, Action::Search, &Target::default(), ctx.now),
            Decision::Allow
        );
        if !reads {
            return Ok(Home {
                reads_records: false,
                my_cases: Vec::new(),
                subjects: HashMap::new(),
                counts: Vec::new(),
            });
        }
        let my_cases = self
            .store
            .list_cases(&CaseQuery {
                responsible_user: Some(ctx.user.id.clone()),
                open_only: true,
                // A worker moved to another territory no longer sees the cases left behind.
                territories: scope.clone(),
                limit: 20,
                ..Default::default()
            })
            .await?;
        let subjects = self.subject_names(ctx, &my_cases).await?;
        let shown: Vec<String> = my_cases.iter().map(|c| c.id.to_string()).collect();
        self.record_seen(
            ctx,
            "list",
            "case",
            &shown,
            serde_json::json!({"page": "home"}),
        )
        .await?;
        let counts = self.store.case_counts(scope.as_deref()).await?;
        Ok(Home {
            reads_records: true,
            my_cases,
            subjects,
            counts,
        })
    }

    // ---- sessions ----

    /// Resolve a session token to a context; ends idle or expired sessions.
    pub async fn session_ctx(
        &self,
        token: &str,
        request_id: Option<String>,
        ip: Option<std::net::IpAddr>,
    ) -> AppResult<(Ctx, SessionRow)> {
        let hash = auth::token_hash(token);
        let s = self
            .store
            .session(&hash)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let now = now_utc();
        if s.ended_at.is_some() {
            return Err(AppError::Unauthenticated);
        }
        let last = parse_ts(&s.last_seen_at).ok_or(AppError::Unauthenticated)?;
        let expires = parse_ts(&s.expires_at).ok_or(AppError::Unauthenticated)?;
        if now > expires || now - last > self.config.session_idle {
            self.store.end_session(&hash, &ts(now)).await?;
            return Err(AppError::Unauthenticated);
        }
        let user = self
            .store
            .user(&s.user_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let mut ctx = self.ctx_for(user, request_id);
        ctx.session_hash = Some(hash.clone());
        ctx.client_ip = ip;
        // A session opened inside the office network does not travel outside it.
        if !self.network_allowed(&ctx.user.organisation, ip).await? {
            ctx.actor.network_allowed = false;
            self.record_denial(
                &ctx,
                Action::ReadRecord,
                "network_not_allowed",
                ("user", &ctx.user.id.clone()),
            )
            .await;
            return Err(AppError::Forbidden(DenyReason::NetworkNotAllowed));
        }
        // An account that has expired or was suspended loses its sessions at once.
        if let Decision::Deny(_) = decide(&ctx.actor, Action::Search, &Target::default(), now)
            && !ctx.actor.active
        {
            self.store.end_session(&hash, &ts(now)).await?;
            return Err(AppError::Unauthenticated);
        }
        if account_lapsed(&ctx.actor, now.date()) {
            self.store.end_session(&hash, &ts(now)).await?;
            return Err(AppError::Unauthenticated);
        }
        // Refresh the idle timer at most once a minute to spare the database.
        if now - last > Duration::minutes(1) {
            self.store.touch_session(&hash, &ts(now)).await?;
        }
        Ok((ctx, s))
    }
}

/// Whether two versions of a person agree on everything outside the profile's sections.
fn same_core(a: &PersonData, b: &PersonData) -> bool {
    let strip = |p: &PersonData| PersonData {
        extra: serde_json::Map::new(),
        ..p.clone()
    };
    strip(a) == strip(b)
}

/// A unique-identifier violation as the validation error the user can act on.
fn taken_or(e: StoreError, field: &str) -> AppError {
    match e {
        StoreError::Duplicate("national_id") => {
            let mut p = Problems::default();
            p.push(field, "national_id_taken");
            AppError::Invalid(p)
        }
        other => other.into(),
    }
}

pub(crate) fn account_lapsed(a: &Actor, today: Date) -> bool {
    !a.active || today < a.valid_from || a.valid_until.is_some_and(|u| today > u)
}

/// The policy's view of a user.
pub fn actor_of(u: &UserRow) -> Actor {
    Actor {
        user_id: u.id.clone(),
        roles: kamkor_domain::policy::parse_roles(&u.role),
        org_kind: u.org_kind.clone(),
        valid_from: records::parse_date(&u.valid_from).unwrap_or(Date::MAX),
        valid_until: u.valid_until.as_deref().and_then(records::parse_date),
        active: u.active && u.status == "active",
        services: None,
        network_allowed: true,
    }
}

/// Sex from a form value, for callers that need it outside validation.
pub fn sex_of(s: &str) -> Option<Sex> {
    Sex::parse(s)
}

/// The family data type re-exported for callers.
pub type Family = FamilyData;
/// The case data type re-exported for callers.
pub type Case = CaseData;
