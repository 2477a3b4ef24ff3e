//! Kamkor's domain: pure types and rules. No I/O, no async.

use serde::{Deserialize, Serialize};

pub mod casework;
pub mod duplicates;
pub mod identifiers;
pub mod matching;
pub mod person_index;
pub mod policy;
pub mod profile;
pub mod records;
pub mod rules;

/// Sex as recorded in civil registration (seed 000 §18: "пол").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Female,
    Male,
}

impl Sex {
    pub fn code(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
        }
    }
    pub fn parse(s: &str) -> Option<Sex> {
        match s {
            "female" | "f" | "F" => Some(Sex::Female),
            "male" | "m" | "M" => Some(Sex::Male),
            _ => None,
        }
    }
}
