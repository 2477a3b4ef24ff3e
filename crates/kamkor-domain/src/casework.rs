//! The case lifecycle (issue 5 item 1; REFERENCE A.3 stages S1–S7): which step may follow
//! which, what each step needs first, and when each stage is due. Pure: the application asks
//! [`transition`] and the policy, and refuses with the code returned.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Weekday};

use crate::records::CaseStatus;

/// The profile's case-work settings (`[casework]` in profile.toml).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Casework {
    /// The classifier whose items are circumstances (seed 000 §20) or needs (seed 004 §3.1).
    pub circumstance_classifier: String,
    /// The classifier of outcomes given when a case closes (REFERENCE A.3 S7).
    pub outcome_classifier: String,
    /// A case with an active plan must be visited at least this often.
    pub monitoring_every_days: u32,
    #[serde(default)]
    pub stage: Vec<StageDeadline>,
}

/// How long a case may stay in a stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageDeadline {
    pub status: String,
    pub days: u32,
    #[serde(default)]
    pub working_days: bool,
    #[serde(default)]
    pub source: Option<String>,
}

impl Casework {
    /// The day a case that entered `status` on `since` is due to leave it, if the profile
    /// sets a deadline for that stage.
    pub fn stage_due(&self, status: CaseStatus, since: Date) -> Option<Date> {
        let d = self.stage.iter().find(|s| s.status == status.code())?;
        Some(if d.working_days {
            add_working_days(since, d.days)
        } else {
            since
                .checked_add(Duration::days(i64::from(d.days)))
                .unwrap_or(since)
        })
    }
}

/// `days` working days after `from` (Saturdays and Sundays skipped; public holidays are not
/// known to the profile yet).
pub fn add_working_days(from: Date, days: u32) -> Date {
    let mut d = from;
    let mut left = days;
    while left > 0 {
        let Some(next) = d.next_day() else {
            return d;
        };
        d = next;
        if !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
            left -= 1;
        }
    }
    d
}

/// A step of case work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStep {
    /// S2: start the initial (express) assessment.
    StartInitialAssessment,
    /// S3: the initial assessment showed the need for a comprehensive one.
    StartComprehensiveAssessment,
    /// S4→S5: the plan is approved and carried out.
    ActivatePlan,
    /// S6: monitoring of the plan.
    StartMonitoring,
    /// Back from monitoring to carrying out a revised plan.
    RevisePlan,
    /// S7: the case closes with an outcome.
    Close,
    /// Seed 000 §20: work paused by agreement with the territorial body, data kept.
    Suspend,
    Resume,
    /// Hand the case to another territory; it waits there for the receiving body.
    Transfer,
    AcceptTransfer,
    /// The receiving body declines, or the sender takes the case back.
    DeclineTransfer,
}

impl CaseStep {
    pub const ALL: [CaseStep; 11] = [
        CaseStep::StartInitialAssessment,
        CaseStep::StartComprehensiveAssessment,
        CaseStep::ActivatePlan,
        CaseStep::StartMonitoring,
        CaseStep::RevisePlan,
        CaseStep::Close,
        CaseStep::Suspend,
        CaseStep::Resume,
        CaseStep::Transfer,
        CaseStep::AcceptTransfer,
        CaseStep::DeclineTransfer,
    ];
    pub fn code(self) -> &'static str {
        match self {
            CaseStep::StartInitialAssessment => "start_initial_assessment",
            CaseStep::StartComprehensiveAssessment => "start_comprehensive_assessment",
            CaseStep::ActivatePlan => "activate_plan",
            CaseStep::StartMonitoring => "start_monitoring",
            CaseStep::RevisePlan => "revise_plan",
            CaseStep::Close => "close",
            CaseStep::Suspend => "suspend",
            CaseStep::Resume => "resume",
            CaseStep::Transfer => "transfer",
            CaseStep::AcceptTransfer => "accept_transfer",
            CaseStep::DeclineTransfer => "decline_transfer",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.code() == s)
    }
}

/// What the steps' preconditions look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaseProgress {
    pub initial_assessment_completed: bool,
    pub comprehensive_assessment_completed: bool,
    /// Every plan of the case has an approved version and no draft waits for approval.
    pub plan_approved: bool,
    /// An outcome was given (for closing).
    pub outcome_given: bool,
}

/// Why a step is refused; each code has a message in the locales (`step_<code>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepRefusal {
    /// The case is closed: nothing follows.
    Closed,
    /// The step does not follow from the current stage.
    NotFromHere,
    InitialAssessmentMissing,
    ComprehensiveAssessmentMissing,
    PlanNotApproved,
    OutcomeMissing,
}

impl StepRefusal {
    pub fn code(self) -> &'static str {
        match self {
            StepRefusal::Closed => "case_closed",
            StepRefusal::NotFromHere => "step_not_from_here",
            StepRefusal::InitialAssessmentMissing => "initial_assessment_missing",
            StepRefusal::ComprehensiveAssessmentMissing => "comprehensive_assessment_missing",
            StepRefusal::PlanNotApproved => "plan_not_approved",
            StepRefusal::OutcomeMissing => "outcome_missing",
        }
    }
}

/// The main line of stages, in order; the side states hold one of these to return to.
fn on_main_line(s: CaseStatus) -> bool {
    matches!(
        s,
        CaseStatus::Identified
            | CaseStatus::InitialAssessment
            | CaseStatus::ComprehensiveAssessment
            | CaseStatus::PlanActive
            | CaseStatus::Monitoring
    )
}

/// The stage a step leads to from `current` (`resume_to`: the stage a suspended or transferred
/// case returns to), or why it is refused.
pub fn transition(
    current: CaseStatus,
    resume_to: Option<CaseStatus>,
    step: CaseStep,
    progress: &CaseProgress,
) -> Result<CaseStatus, StepRefusal> {
    use CaseStatus as S;
    use CaseStep as T;
    if current == S::Closed {
        return Err(StepRefusal::Closed);
    }
    let back = resume_to
        .filter(|s| on_main_line(*s))
        .unwrap_or(S::Identified);
    match (step, current) {
        (T::StartInitialAssessment, S::Identified) => Ok(S::InitialAssessment),
        (T::StartComprehensiveAssessment, S::InitialAssessment) => {
            if progress.initial_assessment_completed {
                Ok(S::ComprehensiveAssessment)
            } else {
                Err(StepRefusal::InitialAssessmentMissing)
            }
        }
        (T::ActivatePlan, S::ComprehensiveAssessment) => {
            if !progress.comprehensive_assessment_completed {
                Err(StepRefusal::ComprehensiveAssessmentMissing)
            } else if !progress.plan_approved {
                Err(StepRefusal::PlanNotApproved)
            } else {
                Ok(S::PlanActive)
            }
        }
        (T::RevisePlan, S::Monitoring) => {
            if progress.plan_approved {
                Ok(S::PlanActive)
            } else {
                Err(StepRefusal::PlanNotApproved)
            }
        }
        (T::StartMonitoring, S::PlanActive) => {
            if progress.plan_approved {
                Ok(S::Monitoring)
            } else {
                Err(StepRefusal::PlanNotApproved)
            }
        }
        (T::Close, s) if on_main_line(s) || s == S::Suspended => {
            if progress.outcome_given {
                Ok(S::Closed)
            } else {
                Err(StepRefusal::OutcomeMissing)
            }
        }
        (T::Suspend, s) if on_main_line(s) => Ok(S::Suspended),
        (T::Resume, S::Suspended) => Ok(back),
        (T::Transfer, s) if on_main_line(s) => Ok(S::Transferred),
        (T::AcceptTransfer | T::DeclineTransfer, S::Transferred) => Ok(back),
        _ => Err(StepRefusal::NotFromHere),
    }
}

/// The steps worth offering from a stage (the page shows these; the others are refused anyway).
pub fn steps_from(current: CaseStatus) -> Vec<CaseStep> {
    use CaseStatus as S;
    use CaseStep as T;
    match current {
        S::Identified => vec![T::StartInitialAssessment, T::Suspend, T::Transfer, T::Close],
        S::InitialAssessment => vec![
            T::StartComprehensiveAssessment,
            T::Suspend,
            T::Transfer,
            T::Close,
        ],
        S::ComprehensiveAssessment => vec![T::ActivatePlan, T::Suspend, T::Transfer, T::Close],
        S::PlanActive => vec![T::StartMonitoring, T::Suspend, T::Transfer, T::Close],
        S::Monitoring => vec![T::RevisePlan, T::Suspend, T::Transfer, T::Close],
        S::Suspended => vec![T::Resume, T::Close],
        S::Transferred => vec![T::AcceptTransfer, T::DeclineTransfer],
        S::Closed => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn all_done() -> CaseProgress {
        CaseProgress {
            initial_assessment_completed: true,
            comprehensive_assessment_completed: true,
            plan_approved: true,
            outcome_given: true,
        }
    }

    #[test]
    fn the_main_line_in_order() {
        use CaseStatus as S;
        use CaseStep as T;
        let p = all_done();
        let mut s = S::Identified;
        for (step, want) in [
            (T::StartInitialAssessment, S::InitialAssessment),
            (T::StartComprehensiveAssessment, S::ComprehensiveAssessment),
            (T::ActivatePlan, S::PlanActive),
            (T::StartMonitoring, S::Monitoring),
            (T::RevisePlan, S::PlanActive),
            (T::StartMonitoring, S::Monitoring),
            (T::Close, S::Closed),
        ] {
            s = transition(s, None, step, &p).expect("allowed");
            assert_eq!(s, want);
        }
        assert_eq!(
            transition(s, None, T::StartInitialAssessment, &p),
            Err(StepRefusal::Closed)
        );
    }

    #[test]
    fn preconditions_are_named() {
        use CaseStatus as S;
        use CaseStep as T;
        let none = CaseProgress::default();
        assert_eq!(
            transition(
                S::InitialAssessment,
                None,
                T::StartComprehensiveAssessment,
                &none
            ),
            Err(StepRefusal::InitialAssessmentMissing)
        );
        assert_eq!(
            transition(S::ComprehensiveAssessment, None, T::ActivatePlan, &none),
            Err(StepRefusal::ComprehensiveAssessmentMissing)
        );
        let assessed = CaseProgress {
            comprehensive_assessment_completed: true,
            ..none
        };
        assert_eq!(
            transition(S::ComprehensiveAssessment, None, T::ActivatePlan, &assessed),
            Err(StepRefusal::PlanNotApproved)
        );
        assert_eq!(
            transition(S::Monitoring, None, T::Close, &none),
            Err(StepRefusal::OutcomeMissing)
        );
        assert_eq!(
            transition(S::Identified, None, T::ActivatePlan, &all_done()),
            Err(StepRefusal::NotFromHere)
        );
    }

    #[test]
    fn side_states_return_where_they_left() {
        use CaseStatus as S;
        use CaseStep as T;
        let p = all_done();
        assert_eq!(
            transition(S::PlanActive, None, T::Suspend, &p),
            Ok(S::Suspended)
        );
        assert_eq!(
            transition(S::Suspended, Some(S::PlanActive), T::Resume, &p),
            Ok(S::PlanActive)
        );
        assert_eq!(
            transition(S::Monitoring, None, T::Transfer, &p),
            Ok(S::Transferred)
        );
        assert_eq!(
            transition(S::Transferred, Some(S::Monitoring), T::AcceptTransfer, &p),
            Ok(S::Monitoring)
        );
        // A suspended case is not transferred or suspended again; a transferred one not closed.
        assert!(transition(S::Suspended, Some(S::PlanActive), T::Transfer, &p).is_err());
        assert!(transition(S::Suspended, None, T::Suspend, &p).is_err());
        assert!(transition(S::Transferred, None, T::Close, &p).is_err());
        // A side state never returns to a side state.
        assert_eq!(
            transition(S::Suspended, Some(S::Transferred), T::Resume, &p),
            Ok(S::Identified)
        );
    }

    #[test]
    fn every_offered_step_is_allowed_with_everything_done() {
        for s in CaseStatus::ALL {
            for step in steps_from(s) {
                assert!(
                    transition(s, Some(CaseStatus::PlanActive), step, &all_done()).is_ok(),
                    "{s:?} {step:?}"
                );
            }
        }
    }

    #[test]
    fn working_days_skip_weekends() {
        // 2026-11-27 is a Friday.
        assert_eq!(
            add_working_days(date!(2026 - 11 - 27), 1),
            date!(2026 - 11 - 30)
        );
        assert_eq!(
            add_working_days(date!(2026 - 11 - 27), 3),
            date!(2026 - 12 - 02)
        );
        assert_eq!(
            add_working_days(date!(2026 - 11 - 25), 0),
            date!(2026 - 11 - 25)
        );
        let cw = Casework {
            stage: vec![StageDeadline {
                status: "initial_assessment".into(),
                days: 3,
                working_days: true,
                source: None,
            }],
            ..Casework::default()
        };
        assert_eq!(
            cw.stage_due(CaseStatus::InitialAssessment, date!(2026 - 11 - 27)),
            Some(date!(2026 - 12 - 02))
        );
        assert_eq!(
            cw.stage_due(CaseStatus::Monitoring, date!(2026 - 11 - 27)),
            None
        );
    }
}
