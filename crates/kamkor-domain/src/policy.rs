//! The one access policy (DESIGN "Access"): every use case asks [`decide`] before it reads or
//! writes, so the whole permission model can be read, and tested, as one table.
//!
//! A decision is a pure function of (actor, action, target, time). Territorial scope: the
//! actor's scope is a node of the territory tree and covers its subtree (seed 000 §25); the
//! caller resolves "is the record's territory within the scope" with the profile's tree and
//! passes the answer in [`Target::within_scope`].

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

/// Roles (seed 000 §§24–25, seed 004 §§7, 11; the issue "Accounts and access").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Administrator,
    Operator,
    Supervisor,
    Specialist,
    AgencySpecialist,
    /// Seed 000 §25.1: the whole country, read-only.
    CentralViewer,
    /// Seed 000 §25.2: own territory, read-only.
    TerritorialViewer,
    Auditor,
}

/// Parse a comma-separated role list as stored (`administrator,supervisor`).
pub fn parse_roles(s: &str) -> Vec<Role> {
    s.split(',').filter_map(|r| Role::parse(r.trim())).collect()
}

pub fn format_roles(roles: &[Role]) -> String {
    roles.iter().map(|r| r.code()).collect::<Vec<_>>().join(",")
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Administrator,
        Role::Operator,
        Role::Supervisor,
        Role::Specialist,
        Role::AgencySpecialist,
        Role::CentralViewer,
        Role::TerritorialViewer,
        Role::Auditor,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
            Role::Specialist => "specialist",
            Role::AgencySpecialist => "agency_specialist",
            Role::CentralViewer => "central_viewer",
            Role::TerritorialViewer => "territorial_viewer",
            Role::Auditor => "auditor",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s)
    }
}

/// Who is acting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub user_id: String,
    /// A user holds one or more roles (DESIGN "Access"); an action is allowed when any allows it.
    pub roles: Vec<Role>,
    /// The organisation kind of the actor's organisation (section ownership, seed 004 §11).
    pub org_kind: String,
    pub valid_from: Date,
    pub valid_until: Option<Date>,
    pub active: bool,
    /// An external system (seed 000 §3, §13.8; seed 004 §14) acts only through the services it
    /// was granted; a person acts through roles and has `None` here.
    #[serde(default)]
    pub services: Option<Vec<Action>>,
    /// Whether the request comes from a network the actor's organisation allows (seed 004 §9:
    /// users work through a VPN). True when the organisation lists no networks.
    #[serde(default = "yes")]
    pub network_allowed: bool,
}

fn yes() -> bool {
    true
}

impl Actor {
    pub fn is_client(&self) -> bool {
        self.services.is_some()
    }
}

/// What the actor wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// See a person, family or case (personal data).
    ReadRecord,
    /// Search or list records (returns personal data).
    Search,
    CreateRecord,
    UpdateRecord,
    /// Edit one form section, owned by some organisation kinds (seed 004 §11).
    EditSection,
    OpenCase,
    /// Hand a personal file over, e.g. to a competent body (seed 000 §30).
    ExportRecord,
    /// Open, for a limited time and read-only, a record outside the scope found by its exact
    /// national identifier (DESIGN "Access": break the glass).
    BreakGlass,
    /// Register, extend, suspend, revoke accounts and API clients.
    ManageUsers,
    ManageClassifiers,
    ReadLedger,
    /// See who viewed, found or exported one record of one's territory (supervisors; for
    /// checking the workers and for the data subject's right of access, seed 000 §28).
    ReadRecordViews,
    /// Carry a case through its lifecycle and record its work: stage steps, circumstances,
    /// assessments, activities, visits, transfers (issue 5).
    WorkCase,
    /// Approve a version of a case's plan (issue 5 item 4).
    ApprovePlan,
    /// Close a case with its outcome (REFERENCE A.3 S7).
    CloseCase,
    /// Record the progress of a plan activity; an agency specialist may, for activities their
    /// agency kind answers for (seed 004 §3.1, §11).
    RecordActivity,
    /// Merge two records of one person into one, keeping both histories (issue 6 item 3):
    /// the supervisor decides, as for other decisions that change what a record says.
    MergeRecords,
}

impl Action {
    /// The services an external client may be granted: the record operations only.
    pub const SERVICES: [Action; 7] = [
        Action::ReadRecord,
        Action::Search,
        Action::CreateRecord,
        Action::UpdateRecord,
        Action::EditSection,
        Action::OpenCase,
        Action::ExportRecord,
    ];
    pub fn code(self) -> &'static str {
        match self {
            Action::ReadRecord => "read_record",
            Action::Search => "search",
            Action::CreateRecord => "create_record",
            Action::UpdateRecord => "update_record",
            Action::EditSection => "edit_section",
            Action::OpenCase => "open_case",
            Action::ExportRecord => "export_record",
            Action::BreakGlass => "break_glass",
            Action::ManageUsers => "manage_users",
            Action::ManageClassifiers => "manage_classifiers",
            Action::ReadLedger => "read_ledger",
            Action::ReadRecordViews => "read_record_views",
            Action::WorkCase => "work_case",
            Action::ApprovePlan => "approve_plan",
            Action::CloseCase => "close_case",
            Action::RecordActivity => "record_activity",
            Action::MergeRecords => "merge_records",
        }
    }
    pub fn parse_service(s: &str) -> Option<Action> {
        Action::SERVICES.into_iter().find(|a| a.code() == s)
    }
}

/// Parse a comma-separated service list as stored.
pub fn parse_services(s: &str) -> Vec<Action> {
    s.split(',')
        .filter_map(|x| Action::parse_service(x.trim()))
        .collect()
}

pub fn format_services(services: &[Action]) -> String {
    services
        .iter()
        .map(|a| a.code())
        .collect::<Vec<_>>()
        .join(",")
}

/// What the action is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Whether the record's territory (or, for [`Action::ManageUsers`], the managed account's
    /// scope) lies within the actor's scope (None: no territory).
    pub within_scope: Option<bool>,
    /// For [`Action::EditSection`]: the organisation kinds owning the section (empty: anyone
    /// who may edit the record may edit it).
    pub section_owners: Vec<String>,
    /// The actor holds an unexpired break-the-glass grant for this very record.
    pub glass_open: bool,
}

impl Target {
    pub fn in_scope(within: bool) -> Target {
        Target {
            within_scope: Some(within),
            ..Target::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(DenyReason),
}

/// Why an action was refused. `OutOfScope` is answered to the user exactly like a missing
/// record, so a denial leaks nothing about records outside the scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    AccountInactive,
    AccountNotYetValid,
    AccountExpired,
    RoleForbids,
    /// An external client without this service.
    ServiceNotGranted,
    /// The request comes from outside the organisation's allowed networks.
    NetworkNotAllowed,
    OutOfScope,
    SectionNotOwned,
}

impl DenyReason {
    pub fn code(self) -> &'static str {
        match self {
            DenyReason::AccountInactive => "account_inactive",
            DenyReason::AccountNotYetValid => "account_not_yet_valid",
            DenyReason::AccountExpired => "account_expired",
            DenyReason::RoleForbids => "forbidden",
            DenyReason::ServiceNotGranted => "service_not_granted",
            DenyReason::NetworkNotAllowed => "network_not_allowed",
            DenyReason::OutOfScope => "not_found",
            DenyReason::SectionNotOwned => "section_not_owned",
        }
    }
}

fn reads_records(role: Role) -> bool {
    // Administrators and operators run the system; they read no child's file unless they also
    // hold a case-work role (least privilege, seed 000 §29).
    matches!(
        role,
        Role::Supervisor
            | Role::Specialist
            | Role::AgencySpecialist
            | Role::CentralViewer
            | Role::TerritorialViewer
    )
}

fn writes_records(role: Role) -> bool {
    matches!(role, Role::Supervisor | Role::Specialist)
}

/// The one policy function.
pub fn decide(actor: &Actor, action: Action, target: &Target, now: OffsetDateTime) -> Decision {
    use Decision::{Allow, Deny};
    // Accounts are valid for a fixed period and expire by themselves (seed 000 §24).
    if !actor.active {
        return Deny(DenyReason::AccountInactive);
    }
    let today = now.date();
    if today < actor.valid_from {
        return Deny(DenyReason::AccountNotYetValid);
    }
    if actor.valid_until.is_some_and(|u| today > u) {
        return Deny(DenyReason::AccountExpired);
    }
    if !actor.network_allowed {
        return Deny(DenyReason::NetworkNotAllowed);
    }
    if let Some(services) = &actor.services {
        return decide_client(actor, services, action, target);
    }
    let mut last = DenyReason::RoleForbids;
    for &role in &actor.roles {
        match decide_role(actor, role, action, target) {
            Allow => return Allow,
            Deny(r) => {
                if r != DenyReason::RoleForbids {
                    last = r;
                }
            }
        }
    }
    Deny(last)
}

/// External systems: only granted record services, always within their scope, no glass.
fn decide_client(actor: &Actor, services: &[Action], action: Action, target: &Target) -> Decision {
    use Decision::{Allow, Deny};
    if !Action::SERVICES.contains(&action) {
        return Deny(DenyReason::RoleForbids);
    }
    if !services.contains(&action) {
        return Deny(DenyReason::ServiceNotGranted);
    }
    if target.within_scope == Some(false) {
        return Deny(DenyReason::OutOfScope);
    }
    if action == Action::EditSection
        && !target.section_owners.is_empty()
        && !target.section_owners.iter().any(|o| o == &actor.org_kind)
    {
        return Deny(DenyReason::SectionNotOwned);
    }
    Allow
}

fn decide_role(actor: &Actor, role: Role, action: Action, target: &Target) -> Decision {
    use Decision::{Allow, Deny};
    let role_ok = match action {
        Action::ReadRecord | Action::Search => reads_records(role),
        Action::CreateRecord | Action::UpdateRecord | Action::OpenCase => writes_records(role),
        // Agency specialists edit the sections their agency kind owns (seed 004 §11).
        Action::EditSection => writes_records(role) || role == Role::AgencySpecialist,
        // Viewers of seed 000 §25 receive data "для принятия и исполнения решений": they may
        // hand a file over; agency specialists work inside their own section only.
        Action::ExportRecord => matches!(
            role,
            Role::Supervisor | Role::Specialist | Role::CentralViewer | Role::TerritorialViewer
        ),
        // Viewers only read what is theirs; breaking the glass is for those who act on a case.
        Action::BreakGlass => matches!(
            role,
            Role::Supervisor | Role::Specialist | Role::AgencySpecialist
        ),
        Action::ManageUsers => role == Role::Administrator,
        Action::ManageClassifiers => matches!(role, Role::Administrator | Role::Operator),
        Action::ReadLedger => matches!(role, Role::Auditor | Role::Administrator),
        Action::ReadRecordViews => role == Role::Supervisor,
        Action::WorkCase => writes_records(role),
        // The supervisor approves plans and closes cases (the four-eyes rule of case
        // management: the worker proposes, the supervisor decides).
        Action::ApprovePlan | Action::CloseCase => role == Role::Supervisor,
        Action::RecordActivity => writes_records(role) || role == Role::AgencySpecialist,
        Action::MergeRecords => role == Role::Supervisor,
    };
    if !role_ok {
        return Deny(DenyReason::RoleForbids);
    }
    // The glass is opened precisely for a record outside the scope, and opens reading only.
    if action == Action::BreakGlass {
        return Allow;
    }
    let glass_read = action == Action::ReadRecord && target.glass_open;
    // Central viewers see the whole country (seed 000 §25.1); everyone else only their subtree.
    let reading = matches!(
        action,
        Action::ReadRecord | Action::Search | Action::ExportRecord
    );
    let reads_everywhere = role == Role::CentralViewer && reading;
    if !reads_everywhere && !glass_read && target.within_scope == Some(false) {
        return Deny(DenyReason::OutOfScope);
    }
    // A section names the agency kinds that may edit it; everyone else reads it (DESIGN
    // "Access", seed 004 §11).
    if action == Action::EditSection
        && !target.section_owners.is_empty()
        && !target.section_owners.iter().any(|o| o == &actor.org_kind)
    {
        return Deny(DenyReason::SectionNotOwned);
    }
    // An agency specialist records only the activities their agency kind answers for.
    if action == Action::RecordActivity
        && role == Role::AgencySpecialist
        && !target.section_owners.iter().any(|o| o == &actor.org_kind)
    {
        return Deny(DenyReason::SectionNotOwned);
    }
    Allow
}

/// What repeated failed logins cost: a growing delay before the answer and, from the fifth
/// failure on, a temporary lock of the account (FSTEC guidance for state systems: lock after
/// 3–10 failures for 3–60 minutes; REFERENCE B.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Delay before answering, in units (the application sets the unit, one second by default).
    pub delay_units: u32,
    /// Lock the account for this many minutes.
    pub lock_minutes: Option<u32>,
}

/// The throttle after `failures` consecutive failed logins.
pub fn login_throttle(failures: i64) -> LoginThrottle {
    let delay_units = match failures {
        i64::MIN..=2 => 0,
        3 => 1,
        4 => 2,
        _ => 4,
    };
    let lock_minutes = match failures {
        i64::MIN..=4 => None,
        5..=9 => Some(15),
        _ => Some(60),
    };
    LoginThrottle {
        delay_units,
        lock_minutes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn actor(role: Role) -> Actor {
        Actor {
            user_id: "u".into(),
            roles: vec![role],
            org_kind: "opsd".into(),
            valid_from: date!(2026 - 01 - 01),
            valid_until: Some(date!(2026 - 12 - 31)),
            active: true,
            services: None,
            network_allowed: true,
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    #[test]
    fn access_matrix_roles_by_action() {
        use Action::*;
        use Role::*;
        // (role, action, expected allow) for an in-scope target.
        let table = [
            (Specialist, ReadRecord, true),
            (Specialist, CreateRecord, true),
            (Specialist, OpenCase, true),
            (Specialist, ManageUsers, false),
            (Supervisor, UpdateRecord, true),
            (CentralViewer, ReadRecord, true),
            (CentralViewer, CreateRecord, false),
            (TerritorialViewer, Search, true),
            (TerritorialViewer, UpdateRecord, false),
            (Auditor, ReadRecord, false),
            (Auditor, ReadLedger, true),
            (Administrator, ManageUsers, true),
            (Administrator, CreateRecord, false),
            (Specialist, WorkCase, true),
            (Specialist, ApprovePlan, false),
            (Specialist, CloseCase, false),
            (Supervisor, ApprovePlan, true),
            (Supervisor, CloseCase, true),
            (Specialist, RecordActivity, true),
            (TerritorialViewer, WorkCase, false),
            (CentralViewer, RecordActivity, false),
            (AgencySpecialist, WorkCase, false),
            (Auditor, WorkCase, false),
            (Administrator, ReadRecord, false),
            (Specialist, ExportRecord, true),
            (Supervisor, MergeRecords, true),
            (Specialist, MergeRecords, false),
            (CentralViewer, MergeRecords, false),
            (Administrator, MergeRecords, false),
            (AgencySpecialist, MergeRecords, false),
            (TerritorialViewer, ExportRecord, true),
            (AgencySpecialist, ExportRecord, false),
            (Specialist, BreakGlass, true),
            (CentralViewer, BreakGlass, false),
            (TerritorialViewer, BreakGlass, false),
            (Auditor, BreakGlass, false),
            (Operator, ManageClassifiers, true),
            (Operator, ReadRecord, false),
            (AgencySpecialist, ReadRecord, true),
            (AgencySpecialist, CreateRecord, false),
            (Supervisor, ReadRecordViews, true),
            (Specialist, ReadRecordViews, false),
            (CentralViewer, ReadRecordViews, false),
            (Auditor, ReadRecordViews, false),
        ];
        for (role, action, allow) in table {
            let d = decide(&actor(role), action, &Target::in_scope(true), NOW);
            assert_eq!(
                d == Decision::Allow,
                allow,
                "{role:?} {action:?} gave {d:?}"
            );
        }
    }

    #[test]
    fn access_matrix_several_roles_any_allows() {
        let mut a = actor(Role::Administrator);
        a.roles.push(Role::Supervisor);
        assert_eq!(
            decide(&a, Action::CreateRecord, &Target::in_scope(true), NOW),
            Decision::Allow
        );
        assert_eq!(
            decide(&a, Action::ManageUsers, &Target::default(), NOW),
            Decision::Allow
        );
        assert_eq!(
            decide(&a, Action::CreateRecord, &Target::in_scope(false), NOW),
            Decision::Deny(DenyReason::OutOfScope)
        );
    }

    #[test]
    fn access_matrix_agency_records_only_its_own_activities() {
        let mut a = actor(Role::AgencySpecialist);
        a.org_kind = "dtz".into();
        let mine = Target {
            within_scope: Some(true),
            section_owners: vec!["dtz".into()],
            ..Target::default()
        };
        let theirs = Target {
            within_scope: Some(true),
            section_owners: vec!["mvd".into()],
            ..Target::default()
        };
        assert_eq!(
            decide(&a, Action::RecordActivity, &mine, NOW),
            Decision::Allow
        );
        assert_eq!(
            decide(&a, Action::RecordActivity, &theirs, NOW),
            Decision::Deny(DenyReason::SectionNotOwned)
        );
        // The case's own workers record any activity of their cases.
        assert_eq!(
            decide(
                &actor(Role::Specialist),
                Action::RecordActivity,
                &theirs,
                NOW
            ),
            Decision::Allow
        );
        let outside = Target {
            within_scope: Some(false),
            ..mine
        };
        assert_eq!(
            decide(&a, Action::RecordActivity, &outside, NOW),
            Decision::Deny(DenyReason::OutOfScope)
        );
    }

    #[test]
    fn access_matrix_scope() {
        let out = Target::in_scope(false);
        assert_eq!(
            decide(&actor(Role::Specialist), Action::ReadRecord, &out, NOW),
            Decision::Deny(DenyReason::OutOfScope)
        );
        assert_eq!(
            decide(&actor(Role::CentralViewer), Action::ReadRecord, &out, NOW),
            Decision::Allow
        );
    }

    #[test]
    fn access_matrix_expired_and_inactive_accounts() {
        let mut a = actor(Role::Specialist);
        a.valid_until = Some(date!(2026 - 11 - 24));
        assert_eq!(
            decide(&a, Action::ReadRecord, &Target::in_scope(true), NOW),
            Decision::Deny(DenyReason::AccountExpired)
        );
        let mut a = actor(Role::Specialist);
        a.valid_from = date!(2026 - 11 - 26);
        assert_eq!(
            decide(&a, Action::ReadRecord, &Target::in_scope(true), NOW),
            Decision::Deny(DenyReason::AccountNotYetValid)
        );
        let mut a = actor(Role::Specialist);
        a.network_allowed = false;
        assert_eq!(
            decide(&a, Action::ReadRecord, &Target::in_scope(true), NOW),
            Decision::Deny(DenyReason::NetworkNotAllowed)
        );
        let mut a = actor(Role::Specialist);
        a.active = false;
        assert_eq!(
            decide(&a, Action::ReadRecord, &Target::in_scope(true), NOW),
            Decision::Deny(DenyReason::AccountInactive)
        );
    }

    #[test]
    fn failed_logins_slow_down_then_lock() {
        assert_eq!(
            login_throttle(1),
            LoginThrottle {
                delay_units: 0,
                lock_minutes: None
            }
        );
        assert_eq!(login_throttle(3).delay_units, 1);
        assert_eq!(login_throttle(4).lock_minutes, None);
        assert_eq!(login_throttle(5).lock_minutes, Some(15));
        assert_eq!(login_throttle(12).lock_minutes, Some(60));
        assert!(
            (0..50).map(login_throttle).all(|t| t.delay_units <= 4),
            "the delay is bounded"
        );
    }

    #[test]
    fn access_matrix_agency_sections() {
        let mut a = actor(Role::AgencySpecialist);
        a.org_kind = "police".into();
        let t = Target {
            within_scope: Some(true),
            section_owners: vec!["prison_service".into()],
            glass_open: false,
        };
        assert_eq!(
            decide(&a, Action::EditSection, &t, NOW),
            Decision::Deny(DenyReason::SectionNotOwned)
        );
        let t = Target {
            within_scope: Some(true),
            section_owners: vec!["police".into()],
            glass_open: false,
        };
        assert_eq!(decide(&a, Action::EditSection, &t, NOW), Decision::Allow);
        // A specialist of another agency kind reads the police section but cannot edit it.
        let mut s = actor(Role::Specialist);
        s.org_kind = "omsu".into();
        assert_eq!(
            decide(&s, Action::EditSection, &t, NOW),
            Decision::Deny(DenyReason::SectionNotOwned)
        );
        // A section without owners is edited by whoever edits the record.
        let open = Target::in_scope(true);
        assert_eq!(decide(&s, Action::EditSection, &open, NOW), Decision::Allow);
        assert_eq!(decide(&a, Action::EditSection, &open, NOW), Decision::Allow);
    }

    #[test]
    fn access_matrix_break_the_glass_reads_only() {
        let s = actor(Role::Specialist);
        let out = Target::in_scope(false);
        assert_eq!(decide(&s, Action::BreakGlass, &out, NOW), Decision::Allow);
        let glass = Target {
            within_scope: Some(false),
            glass_open: true,
            ..Target::default()
        };
        assert_eq!(decide(&s, Action::ReadRecord, &glass, NOW), Decision::Allow);
        for action in [
            Action::UpdateRecord,
            Action::EditSection,
            Action::ExportRecord,
            Action::OpenCase,
        ] {
            assert_eq!(
                decide(&s, action, &glass, NOW),
                Decision::Deny(DenyReason::OutOfScope),
                "{action:?}"
            );
        }
    }

    #[test]
    fn access_matrix_external_clients_only_granted_services() {
        let mut c = actor(Role::Specialist);
        c.roles.clear();
        c.services = Some(vec![Action::ReadRecord, Action::Search]);
        let inside = Target::in_scope(true);
        assert_eq!(
            decide(&c, Action::ReadRecord, &inside, NOW),
            Decision::Allow
        );
        assert_eq!(
            decide(&c, Action::UpdateRecord, &inside, NOW),
            Decision::Deny(DenyReason::ServiceNotGranted)
        );
        assert_eq!(
            decide(&c, Action::ReadRecord, &Target::in_scope(false), NOW),
            Decision::Deny(DenyReason::OutOfScope)
        );
        assert_eq!(
            decide(&c, Action::BreakGlass, &Target::in_scope(false), NOW),
            Decision::Deny(DenyReason::RoleForbids)
        );
        assert_eq!(
            decide(&c, Action::ManageUsers, &inside, NOW),
            Decision::Deny(DenyReason::RoleForbids)
        );
        let glass = Target {
            within_scope: Some(false),
            glass_open: true,
            ..Target::default()
        };
        assert_eq!(
            decide(&c, Action::ReadRecord, &glass, NOW),
            Decision::Deny(DenyReason::OutOfScope)
        );
        let mut expired = c.clone();
        expired.valid_until = Some(date!(2026 - 01 - 31));
        assert_eq!(
            decide(&expired, Action::ReadRecord, &inside, NOW),
            Decision::Deny(DenyReason::AccountExpired)
        );
    }
}
