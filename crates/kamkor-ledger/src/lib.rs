//! The ledger's cryptography (seed 004 §4.4: integrity and authenticity of data, authorship,
//! history of data movement; DESIGN "The ledger"). Pure: no I/O, no clock, no randomness.
//!
//! - [`entry_bytes`]: the one unambiguous encoding of an entry that its leaf hash covers;
//! - [`merkle`]: RFC 6962 / RFC 9162 tree hashing, a compact [`merkle::Frontier`], inclusion and
//!   consistency proofs and their verification;
//! - [`checkpoint`]: Ed25519-signed checkpoints (size, root, time, key id).

pub mod checkpoint;
pub mod merkle;

pub use checkpoint::{Checkpoint, KeyError, PublicKey, SecretKey, decode_hash};
pub use merkle::{Frontier, Hash, leaf_hash, node_hash};

/// One ledger entry as hashed: its position in the tree and every field the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntryFields<'a> {
    /// 0-based position in the tree (gap-free).
    pub pos: u64,
    pub at: &'a str,
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: &'a str,
    pub version: i64,
    /// The stored JSON texts, byte for byte.
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
    /// The date the change took effect when it is not the day it was recorded (seed 000
    /// §20). Encoded only when present, so entries without it hash as they always did.
    pub effective_on: Option<&'a str>,
}

/// Version tag of the encoding, hashed in front of every entry.
const ENTRY_TAG: &[u8] = b"kamkor-entry-v1";

/// The bytes an entry's leaf hash covers: a tag, the position, then each field length-prefixed
/// (absent optional fields marked as such), so no two different entries encode alike.
pub fn entry_bytes(e: &EntryFields) -> Vec<u8> {
    let mut out = Vec::new();
    encode(e, |b| out.extend_from_slice(b));
    out
}

/// Feed the encoding of an entry, piece by piece, to `sink` (the hash takes it without a copy).
fn encode(e: &EntryFields, mut sink: impl FnMut(&[u8])) {
    sink(ENTRY_TAG);
    sink(&e.pos.to_be_bytes());
    sink(&e.version.to_be_bytes());
    for field in [
        Some(e.at),
        Some(e.actor),
        e.request_id,
        Some(e.action),
        Some(e.entity),
        Some(e.entity_id),
        e.before,
        e.after,
    ] {
        match field {
            None => sink(&[0]),
            Some(s) => encode_text(&mut sink, s),
        }
    }
    // A trailing field: the encoding without it is a complete entry, with it a longer one,
    // so the two never coincide.
    if let Some(s) = e.effective_on {
        encode_text(&mut sink, s);
    }
}

/// A present text: marked present, then length-prefixed.
fn encode_text(sink: &mut impl FnMut(&[u8]), s: &str) {
    sink(&[1]);
    sink(&(s.len() as u64).to_be_bytes());
    sink(s.as_bytes());
}

#[cfg(test)]
fn entry_bytes_reference(e: &EntryFields) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + e.at.len()
            + e.actor.len()
            + e.action.len()
            + e.entity.len()
            + e.entity_id.len()
            + e.before.map_or(0, str::len)
            + e.after.map_or(0, str::len),
    );
    out.extend_from_slice(ENTRY_TAG);
    out.extend_from_slice(&e.pos.to_be_bytes());
    out.extend_from_slice(&e.version.to_be_bytes());
    for field in [
        Some(e.at),
        Some(e.actor),
        e.request_id,
        Some(e.action),
        Some(e.entity),
        Some(e.entity_id),
        e.before,
        e.after,
    ] {
        match field {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&(s.len() as u64).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    if let Some(s) = e.effective_on {
        out.push(1);
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

/// The leaf hash of an entry.
pub fn entry_hash(e: &EntryFields) -> Hash {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update([0u8]);
    encode(e, |b| h.update(b));
    h.finalize().into()
}

/// Hex of a hash, as stored.
pub fn to_hex(h: &Hash) -> String {
    data_encoding::HEXLOWER.encode(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EntryFields<'static> {
        EntryFields {
            pos: 3,
            at: "2026-11-25T10:00:00.000Z",
            actor: "user:1",
            request_id: Some("r1"),
            action: "update",
            entity: "person",
            entity_id: "p1",
            version: 2,
            before: Some(r#"{"a":1}"#),
            after: Some(r#"{"a":2}"#),
            effective_on: None,
        }
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let base = entry_hash(&sample());
        let changes: Vec<EntryFields> = vec![
            EntryFields { pos: 4, ..sample() },
            EntryFields {
                at: "2026-11-25T10:00:00.001Z",
                ..sample()
            },
            EntryFields {
                actor: "user:2",
                ..sample()
            },
            EntryFields {
                request_id: None,
                ..sample()
            },
            EntryFields {
                action: "view",
                ..sample()
            },
            EntryFields {
                entity: "family",
                ..sample()
            },
            EntryFields {
                entity_id: "p2",
                ..sample()
            },
            EntryFields {
                version: 3,
                ..sample()
            },
            EntryFields {
                before: None,
                ..sample()
            },
            EntryFields {
                after: Some(r#"{"a":3}"#),
                ..sample()
            },
            EntryFields {
                effective_on: Some("2026-11-01"),
                ..sample()
            },
        ];
        for c in changes {
            assert_ne!(entry_hash(&c), base, "{c:?}");
        }
    }

    #[test]
    fn the_streamed_hash_is_the_hash_of_the_encoding() {
        let e = sample();
        assert_eq!(entry_bytes(&e), entry_bytes_reference(&e));
        assert_eq!(entry_hash(&e), leaf_hash(&entry_bytes_reference(&e)));
        let none = EntryFields {
            request_id: None,
            before: None,
            ..sample()
        };
        assert_eq!(entry_hash(&none), leaf_hash(&entry_bytes_reference(&none)));
    }

    #[test]
    fn moving_text_between_fields_changes_the_encoding() {
        let a = EntryFields {
            actor: "ab",
            action: "c",
            ..sample()
        };
        let b = EntryFields {
            actor: "a",
            action: "bc",
            ..sample()
        };
        assert_ne!(entry_bytes(&a), entry_bytes(&b));
        let c = EntryFields {
            request_id: Some(""),
            ..sample()
        };
        let d = EntryFields {
            request_id: None,
            ..sample()
        };
        assert_ne!(entry_bytes(&c), entry_bytes(&d));
    }

    #[test]
    fn an_effective_date_extends_the_encoding_and_its_absence_keeps_it() {
        let plain = entry_bytes(&sample());
        let dated = entry_bytes(&EntryFields {
            effective_on: Some("2026-11-01"),
            ..sample()
        });
        let mut want = plain.clone();
        want.push(1);
        want.extend_from_slice(&10u64.to_be_bytes());
        want.extend_from_slice(b"2026-11-01");
        assert_eq!(dated, want);
        // Entries written before effective dates existed keep their hashes: the encoding of
        // an entry without one ends with its `after` field.
        assert!(plain.ends_with(br#"{"a":2}"#));
    }
}
