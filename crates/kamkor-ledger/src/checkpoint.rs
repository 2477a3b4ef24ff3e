//! Signed checkpoints: the installation's Ed25519 key signs (tree size, root, time) so that
//! anyone holding the public key can tell the ledger was not rewritten after the fact. Keys are
//! named by an id derived from the public key; rotating keys keeps the old public keys, so old
//! checkpoints stay verifiable.

use data_encoding::{BASE64, HEXLOWER};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// What every signed checkpoint text starts with (so a signature over anything else never
/// passes for a checkpoint).
const HEADER: &str = "kamkor ledger checkpoint v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not {0} bytes of base64")]
    BadLength(usize),
    #[error("the key is not base64")]
    NotBase64,
    #[error("the public key is not a valid Ed25519 point")]
    BadPoint,
}

/// A checkpoint as stored and exchanged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Who keeps the ledger (the installation's name), bound into the signature.
    pub origin: String,
    pub size: u64,
    /// Hex of the tree's root hash.
    pub root: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub key_id: String,
    /// Base64 Ed25519 signature of [`Checkpoint::signed_text`].
    pub signature: String,
}

impl Checkpoint {
    /// The exact bytes the key signs.
    pub fn signed_text(origin: &str, size: u64, root: &Hash, time: &str) -> String {
        format!(
            "{HEADER}\n{origin}\n{size}\n{}\n{time}\n",
            HEXLOWER.encode(root)
        )
    }

    /// The root as bytes; `None` when the stored hex is not 32 bytes.
    pub fn root_hash(&self) -> Option<Hash> {
        decode_hash(&self.root)
    }

    /// Whether `key` signed this checkpoint (its id must match too).
    pub fn verify(&self, key: &PublicKey) -> bool {
        if key.id != self.key_id {
            return false;
        }
        let Some(root) = self.root_hash() else {
            return false;
        };
        let Ok(sig) = BASE64.decode(self.signature.as_bytes()) else {
            return false;
        };
        let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
            return false;
        };
        let text = Checkpoint::signed_text(&self.origin, self.size, &root, &self.time);
        key.key
            .verify_strict(text.as_bytes(), &Signature::from_bytes(&sig))
            .is_ok()
    }
}

/// Decode a hex SHA-256 value.
pub fn decode_hash(hex: &str) -> Option<Hash> {
    HEXLOWER
        .decode(hex.as_bytes())
        .ok()
        .and_then(|v| <Hash>::try_from(v.as_slice()).ok())
}

/// A verifying key and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub id: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// From the base64 of the 32 key bytes.
    pub fn from_base64(b64: &str) -> Result<PublicKey, KeyError> {
        let bytes = BASE64
            .decode(b64.trim().as_bytes())
            .map_err(|_| KeyError::NotBase64)?;
        let bytes = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::BadLength(32))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::BadPoint)?;
        Ok(PublicKey {
            id: key_id(&key),
            key,
        })
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(self.key.as_bytes())
    }
}

/// The installation's signing key.
pub struct SecretKey {
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret itself.
        write!(f, "SecretKey({})", key_id(&self.key.verifying_key()))
    }
}

impl SecretKey {
    /// From 32 random bytes (the caller draws them from the operating system).
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        SecretKey {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// From the base64 of the 32 seed bytes, as kept in the key file.
    pub fn from_base64(b64: &str) -> Result<SecretKey, KeyError> {
        let bytes = BASE64
            .decode(b64.trim().as_bytes())
            .map_err(|_| KeyError::NotBase64)?;
        let seed = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::BadLength(32))?;
        Ok(SecretKey::from_seed(seed))
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.key.to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        let key = self.key.verifying_key();
        PublicKey {
            id: key_id(&key),
            key,
        }
    }

    /// Sign a checkpoint of the tree of `size` entries with this root, at `time`.
    pub fn sign(&self, origin: &str, size: u64, root: &Hash, time: &str) -> Checkpoint {
        let text = Checkpoint::signed_text(origin, size, root, time);
        let sig = self.key.sign(text.as_bytes());
        Checkpoint {
            origin: origin.to_string(),
            size,
            root: HEXLOWER.encode(root),
            time: time.to_string(),
            key_id: self.public().id,
            signature: BASE64.encode(&sig.to_bytes()),
        }
    }
}

/// A key's id: the first 8 bytes of SHA-256 of the public key, in hex.
fn key_id(key: &VerifyingKey) -> String {
    let d = Sha256::digest(key.as_bytes());
    HEXLOWER.encode(&d[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }

    #[test]
    fn a_checkpoint_verifies_with_its_key_only() {
        let root = crate::merkle::leaf_hash(b"x");
        let cp = key(1).sign("kamkor-test", 5, &root, "2026-11-25T10:00:00Z");
        assert!(cp.verify(&key(1).public()));
        // Another key, even one claiming the same id, does not verify it.
        assert!(!cp.verify(&key(2).public()));
        let mut forged = key(2).sign("kamkor-test", 5, &root, "2026-11-25T10:00:00Z");
        forged.key_id = cp.key_id.clone();
        assert!(!forged.verify(&key(1).public()));
        // Any changed field breaks the signature.
        for change in [
            |c: &mut Checkpoint| c.size += 1,
            |c: &mut Checkpoint| c.time.push('1'),
            |c: &mut Checkpoint| c.origin.push('x'),
            |c: &mut Checkpoint| c.root = HEXLOWER.encode(&crate::merkle::leaf_hash(b"y")),
        ] {
            let mut c = cp.clone();
            change(&mut c);
            assert!(!c.verify(&key(1).public()));
        }
    }

    #[test]
    fn keys_round_trip_through_base64_and_bad_keys_are_named() {
        let k = key(7);
        let again = SecretKey::from_base64(&k.to_base64()).expect("round trip");
        assert_eq!(again.public(), k.public());
        let p = PublicKey::from_base64(&k.public().to_base64()).expect("round trip");
        assert_eq!(p, k.public());
        assert_eq!(p.id.len(), 16);
        assert_eq!(PublicKey::from_base64("!!"), Err(KeyError::NotBase64));
        assert_eq!(PublicKey::from_base64("AAAA"), Err(KeyError::BadLength(32)));
        assert!(format!("{k:?}").starts_with("SecretKey("));
        assert!(!format!("{k:?}").contains(&k.to_base64()));
    }
}
