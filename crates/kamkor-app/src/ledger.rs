//! The ledger's keys, checkpoints and verification (issue 4; seed 004 §4.4, DESIGN "The
//! ledger").
//!
//! - The installation key is an Ed25519 seed in `<keys>/current.key` (0600), made at first
//!   start. Every key ever used is listed with its public half in `<keys>/public-keys.txt`, so
//!   rotating keeps old checkpoints verifiable. The verifier trusts only that file, never the
//!   database.
//! - [`App::seal_ledger`] signs a checkpoint of everything appended since the last one (the
//!   server does it every few seconds and at shutdown).
//! - [`verify_ledger`] streams every entry in tree order, recomputes its hash and the tree,
//!   checks every checkpoint's signature and root, replays the ledger against the state
//!   tables, and names the first problem.

use std::io::Write;
use std::path::{Path, PathBuf};

use kamkor_ledger::{Checkpoint, Frontier, Hash, PublicKey, SecretKey, decode_hash, to_hex};
use kamkor_store::{CheckpointRow, LedgerOrder, Store};

use crate::{App, AppError, AppResult};

const CURRENT: &str = "current.key";
const PUBLIC: &str = "public-keys.txt";
/// Entries read per query while sealing or verifying: memory stays flat.
const BATCH: i64 = 10_000;

/// The installation's keys: the one that signs now, and every public key ever used.
#[derive(Debug)]
pub struct LedgerKeys {
    pub dir: PathBuf,
    pub current: SecretKey,
    pub trusted: Vec<PublicKey>,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> AppError {
    AppError::Config(format!("{what} {}: {e}", path.display()))
}

/// Read the public keys file (`<id> <base64> <added>` per line, `#` comments).
pub fn read_public_keys(path: &Path) -> AppResult<Vec<PublicKey>> {
    let text = std::fs::read_to_string(path).map_err(|e| io("cannot read", path, e))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(id), Some(b64)) = (parts.next(), parts.next()) else {
            return Err(AppError::Config(format!(
                "{} line {}: expected `<key id> <public key>`",
                path.display(),
                n + 1
            )));
        };
        let key = PublicKey::from_base64(b64)
            .map_err(|e| AppError::Config(format!("{} line {}: {e}", path.display(), n + 1)))?;
        if key.id != id {
            return Err(AppError::Config(format!(
                "{} line {}: the key id {id} does not belong to that key (it is {})",
                path.display(),
                n + 1,
                key.id
            )));
        }
        out.push(key);
    }
    Ok(out)
}

fn write_secret(path: &Path, key: &SecretKey) -> AppResult<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| io("cannot create the key file", path, e))?;
    f.write_all(format!("{}\n", key.to_base64()).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| io("cannot write the key file", path, e))
}

fn append_public(dir: &Path, key: &PublicKey, added: &str) -> AppResult<()> {
    let path = dir.join(PUBLIC);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| io("cannot open", &path, e))?;
    f.write_all(format!("{} {} {added}\n", key.id, key.to_base64()).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| io("cannot write", &path, e))
}

fn new_secret() -> AppResult<SecretKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| AppError::Config(format!("no randomness: {e}")))?;
    Ok(SecretKey::from_seed(seed))
}

impl LedgerKeys {
    /// Open the key folder, creating the installation key on first start.
    pub fn open_or_create(dir: &Path) -> AppResult<LedgerKeys> {
        std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let path = dir.join(CURRENT);
        if !path.exists() {
            let key = new_secret()?;
            write_secret(&path, &key)?;
            append_public(
                dir,
                &key.public(),
                &kamkor_store::ts(kamkor_store::now_utc()),
            )?;
        }
        LedgerKeys::open(dir)
    }

    /// Open an existing key folder.
    pub fn open(dir: &Path) -> AppResult<LedgerKeys> {
        let path = dir.join(CURRENT);
        let text = std::fs::read_to_string(&path).map_err(|e| io("cannot read", &path, e))?;
        let current = SecretKey::from_base64(&text)
            .map_err(|e| AppError::Config(format!("{}: {e}", path.display())))?;
        let trusted = read_public_keys(&dir.join(PUBLIC))?;
        if !trusted.contains(&current.public()) {
            return Err(AppError::Config(format!(
                "{}: the current key {} is not listed in {PUBLIC}",
                path.display(),
                current.public().id
            )));
        }
        Ok(LedgerKeys {
            dir: dir.to_path_buf(),
            current,
            trusted,
        })
    }

    /// Replace the signing key. The old public key stays trusted (old checkpoints keep
    /// verifying); the old secret is destroyed.
    pub fn rotate(&mut self) -> AppResult<PublicKey> {
        let key = new_secret()?;
        let fresh = self.dir.join("next.key");
        let _ = std::fs::remove_file(&fresh);
        write_secret(&fresh, &key)?;
        append_public(
            &self.dir,
            &key.public(),
            &kamkor_store::ts(kamkor_store::now_utc()),
        )?;
        let current = self.dir.join(CURRENT);
        std::fs::rename(&fresh, &current).map_err(|e| io("cannot replace", &current, e))?;
        self.trusted.push(key.public());
        self.current = key;
        Ok(self.current.public())
    }
}

/// Where the installation's keys live by default: `<data dir>/ledger-keys`.
pub fn default_key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger-keys")
}

fn db(e: kamkor_store::StoreError) -> AppError {
    AppError::Store(e)
}

/// Extend a frontier with the stored leaf hashes from its size up to the ledger's end.
async fn extend(
    store: &Store,
    f: &mut Frontier,
    nodes: &mut Vec<(u32, u64, String)>,
) -> AppResult<()> {
    loop {
        let batch = store.ledger_batch(f.size(), BATCH).await.map_err(db)?;
        let entries = batch.entries().map_err(db)?;
        if entries.is_empty() {
            return Ok(());
        }
        for e in &entries {
            if e.pos as u64 != f.size() {
                // A gap: stop here; verification names it.
                return Ok(());
            }
            let h = match e.leaf_hash.and_then(decode_hash) {
                Some(h) => h,
                None => kamkor_ledger::entry_hash(&e.fields()),
            };
            f.push_with(h, |height, idx, hash| {
                if height >= NODE_HEIGHT {
                    nodes.push((height, idx, to_hex(hash)));
                }
            });
        }
    }
}

impl App {
    /// The origin line of this installation's checkpoints.
    pub fn ledger_origin(&self) -> String {
        format!("kamkor {}", self.profile.meta.name)
    }

    /// Sign a checkpoint of the ledger as it stands, if it grew since the last one. Returns the
    /// new checkpoint.
    pub async fn seal_ledger(&self, keys: &LedgerKeys) -> AppResult<Option<Checkpoint>> {
        let last = self.store.latest_checkpoint().await.map_err(db)?;
        let mut f = match &last {
            Some(c) => {
                let peaks: Option<Vec<Hash>> = c.peaks.iter().map(|p| decode_hash(p)).collect();
                peaks
                    .and_then(|p| Frontier::from_peaks(c.checkpoint.size, &p))
                    .unwrap_or_default()
            }
            None => Frontier::default(),
        };
        let mut nodes = Vec::new();
        extend(&self.store, &mut f, &mut nodes).await?;
        if last.as_ref().is_some_and(|c| c.checkpoint.size >= f.size()) || f.size() == 0 {
            return Ok(None);
        }
        let cp = keys.current.sign(
            &self.ledger_origin(),
            f.size(),
            &f.root(),
            &kamkor_store::ts(kamkor_store::now_utc()),
        );
        // Subtree hashes first: a checkpoint is only visible once proofs can be answered.
        self.store.insert_ledger_nodes(&nodes).await.map_err(db)?;
        let row = CheckpointRow {
            checkpoint: cp.clone(),
            peaks: f.peaks().map(to_hex).collect(),
        };
        // Another server of the same installation may have sealed the same size: fine.
        match self.store.insert_checkpoint(&row).await {
            Ok(true) => Ok(Some(cp)),
            Ok(false) => Ok(None),
            Err(e) => {
                if self.store.checkpoint(cp.size).await.map_err(db)?.is_some() {
                    Ok(None)
                } else {
                    Err(db(e))
                }
            }
        }
    }
}

/// What `kamkor ledger verify` found when everything holds.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: u64,
    pub root: String,
    /// Ids of the keys whose signatures were checked.
    pub keys: Vec<String>,
    /// Records of the state tables found equal to what the ledger says.
    pub records: u64,
    /// Time spent on the entries and the tree, and on the replay of the state tables.
    pub tree_seconds: f64,
    pub replay_seconds: f64,
}

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerProblem {
    #[error("ledger entry at position {pos} is missing (entries were deleted or renumbered)")]
    EntryMissing { pos: u64 },
    #[error(
        "ledger entry at position {pos} (row {seq}) does not match its recorded hash: its contents or position were changed"
    )]
    EntryAltered { pos: u64, seq: i64 },
    #[error("ledger entry row {seq} has no position in the tree")]
    EntryUnplaced { seq: i64 },
    #[error(
        "checkpoint of size {size} (signed {time}) does not match the entries: an entry at positions {from}..{last} was changed, removed or reordered"
    )]
    RootMismatch {
        size: u64,
        time: String,
        from: u64,
        last: u64,
    },
    #[error(
        "checkpoint of size {size} is signed by key {key_id}, which is not one of this installation's keys"
    )]
    UnknownKey { size: u64, key_id: String },
    #[error(
        "checkpoint of size {size}: the signature of key {key_id} is not valid (forged or altered)"
    )]
    BadSignature { size: u64, key_id: String },
    #[error(
        "checkpoint of size {size} is from another ledger (origin {origin:?}, expected {expected:?})"
    )]
    WrongOrigin {
        size: u64,
        origin: String,
        expected: String,
    },
    #[error(
        "the ledger holds {entries} entries but a checkpoint covers {size}: entries were removed from the end"
    )]
    Truncated { entries: u64, size: u64 },
    #[error("{0}")]
    State(kamkor_store::StateProblem),
}

/// Verify the whole ledger against the trusted keys, streaming: memory stays flat however long
/// the ledger. `Ok(Err(problem))` names the first problem found.
pub async fn verify_ledger(
    store: &Store,
    trusted: &[PublicKey],
    origin: &str,
) -> AppResult<Result<VerifyReport, LedgerProblem>> {
    let started = std::time::Instant::now();
    if let Some(&seq) = store.unpositioned_entries().await.map_err(db)?.first() {
        return Ok(Err(LedgerProblem::EntryUnplaced { seq }));
    }
    let mut f = Frontier::default();
    let mut keys_used: Vec<String> = Vec::new();
    let mut checkpoints = 0u64;
    // The size of the last checkpoint that matched: a mismatch lies after it.
    let mut verified_size = 0u64;
    let mut pending: std::collections::VecDeque<CheckpointRow> =
        store.checkpoints_after(0, 1000).await.map_err(db)?.into();
    // The next batches are read while this one is hashed (two cores: the reader's and ours).
    let mut stream = store.stream_ledger(0, LedgerOrder::Stored);
    let mut by_position = false;
    'batches: loop {
        let batch = stream.next().await.map_err(db)?;
        let entries = batch.entries().map_err(db)?;
        let done = entries.is_empty();
        for e in &entries {
            if e.pos as u64 != f.size() {
                if !by_position {
                    // Rows out of position order: read on by position, which names the
                    // problem (a missing, moved or smuggled entry) as the tree sees it.
                    by_position = true;
                    stream = store.stream_ledger(f.size(), LedgerOrder::Position);
                    continue 'batches;
                }
                return Ok(Err(LedgerProblem::EntryMissing { pos: f.size() }));
            }
            let h = kamkor_ledger::entry_hash(&e.fields());
            if e.leaf_hash.and_then(decode_hash) != Some(h) {
                return Ok(Err(LedgerProblem::EntryAltered {
                    pos: f.size(),
                    seq: e.seq,
                }));
            }
            f.push(h);
            // Checkpoints at exactly this size.
            while pending
                .front()
                .is_some_and(|c| c.checkpoint.size <= f.size())
            {
                let Some(c) = pending.pop_front() else { break };
                if let Err(p) = check_checkpoint(&c.checkpoint, &f, trusted, origin, verified_size)
                {
                    return Ok(Err(p));
                }
                if !keys_used.contains(&c.checkpoint.key_id) {
                    keys_used.push(c.checkpoint.key_id.clone());
                }
                verified_size = c.checkpoint.size;
                checkpoints += 1;
                if pending.is_empty() {
                    pending = store
                        .checkpoints_after(verified_size, 1000)
                        .await
                        .map_err(db)?
                        .into();
                }
            }
        }
        if done {
            // Rows the stored order did not reach (numbered out of the way) are looked for
            // by position.
            if !by_position && store.ledger_size().await.map_err(db)? != f.size() {
                by_position = true;
                stream = store.stream_ledger(f.size(), LedgerOrder::Position);
                continue;
            }
            break;
        }
    }
    if let Some(c) = pending.front() {
        // A checkpoint of a size the entries never reach. Its signature decides whether the
        // entries were cut off or the checkpoint forged.
        if let Err(p) = check_signature(&c.checkpoint, trusted, origin) {
            return Ok(Err(p));
        }
        return Ok(Err(LedgerProblem::Truncated {
            entries: f.size(),
            size: c.checkpoint.size,
        }));
    }
    let tree_seconds = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    // The ledger holds; now the tables must be what it says.
    let records = match store.replay_check().await.map_err(db)? {
        Ok(r) => r.records,
        Err(p) => return Ok(Err(LedgerProblem::State(p))),
    };
    Ok(Ok(VerifyReport {
        entries: f.size(),
        checkpoints,
        root: to_hex(&f.root()),
        keys: keys_used,
        records,
        tree_seconds,
        replay_seconds: started.elapsed().as_secs_f64(),
    }))
}

fn check_signature(
    c: &Checkpoint,
    trusted: &[PublicKey],
    origin: &str,
) -> Result<(), LedgerProblem> {
    let Some(key) = trusted.iter().find(|k| k.id == c.key_id) else {
        return Err(LedgerProblem::UnknownKey {
            size: c.size,
            key_id: c.key_id.clone(),
        });
    };
    if !c.verify(key) {
        return Err(LedgerProblem::BadSignature {
            size: c.size,
            key_id: c.key_id.clone(),
        });
    }
    if c.origin != origin {
        return Err(LedgerProblem::WrongOrigin {
            size: c.size,
            origin: c.origin.clone(),
            expected: origin.to_string(),
        });
    }
    Ok(())
}

/// A checkpoint met at its size: signed by a trusted key, and its root is the tree's.
fn check_checkpoint(
    c: &Checkpoint,
    f: &Frontier,
    trusted: &[PublicKey],
    origin: &str,
    verified_size: u64,
) -> Result<(), LedgerProblem> {
    check_signature(c, trusted, origin)?;
    if c.size != f.size() || c.root_hash() != Some(f.root()) {
        return Err(LedgerProblem::RootMismatch {
            size: c.size,
            time: c.time.clone(),
            from: verified_size,
            last: c.size.saturating_sub(1),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- proofs (issue 4 item 4)

/// Subtrees of at least 2^NODE_HEIGHT leaves are kept in `ledger_nodes`.
const NODE_HEIGHT: u32 = 8;

/// An entry as exchanged in a proof: every field its leaf hash covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProvenEntry {
    pub pos: u64,
    pub at: String,
    pub actor: String,
    pub request_id: Option<String>,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub version: i64,
    pub before: Option<String>,
    pub after: Option<String>,
    /// Absent in proofs of entries without an effective date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_on: Option<String>,
}

impl ProvenEntry {
    pub fn leaf_hash(&self) -> Hash {
        kamkor_ledger::entry_hash(&kamkor_ledger::EntryFields {
            pos: self.pos,
            at: &self.at,
            actor: &self.actor,
            request_id: self.request_id.as_deref(),
            action: &self.action,
            entity: &self.entity,
            entity_id: &self.entity_id,
            version: self.version,
            before: self.before.as_deref(),
            after: self.after.as_deref(),
            effective_on: self.effective_on.as_deref(),
        })
    }
}

/// That one entry belongs to the ledger a signed checkpoint commits to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InclusionProof {
    pub checkpoint: Checkpoint,
    pub entry: ProvenEntry,
    /// Hex hashes, nearest sibling first (RFC 9162 §2.1.3).
    pub proof: Vec<String>,
}

/// That the ledger of the first checkpoint is a prefix of the second's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsistencyProof {
    pub first: Checkpoint,
    pub second: Checkpoint,
    pub proof: Vec<String>,
}

/// What an offline check of a proof found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofProblem {
    #[error(
        "the checkpoint of size {size} is signed by key {key_id}, which is not among the trusted keys"
    )]
    UnknownKey { size: u64, key_id: String },
    #[error("the signature of the checkpoint of size {size} is not valid")]
    BadSignature { size: u64 },
    #[error("a hash in the proof is not 32 bytes of hex")]
    BadHash,
    #[error("the entry at position {pos} is not in the ledger of size {size} with that root")]
    NotIncluded { pos: u64, size: u64 },
    #[error(
        "the ledger of size {first} is not a prefix of the ledger of size {second}: history was rewritten"
    )]
    Inconsistent { first: u64, second: u64 },
}

fn signed_by(c: &Checkpoint, trusted: &[PublicKey]) -> Result<String, ProofProblem> {
    let Some(key) = trusted.iter().find(|k| k.id == c.key_id) else {
        return Err(ProofProblem::UnknownKey {
            size: c.size,
            key_id: c.key_id.clone(),
        });
    };
    if !c.verify(key) {
        return Err(ProofProblem::BadSignature { size: c.size });
    }
    Ok(key.id.clone())
}

fn hashes(hex: &[String]) -> Result<Vec<Hash>, ProofProblem> {
    hex.iter()
        .map(|h| decode_hash(h).ok_or(ProofProblem::BadHash))
        .collect()
}

impl InclusionProof {
    /// Check offline with only the trusted public keys. Returns the signing key's id.
    pub fn verify(&self, trusted: &[PublicKey]) -> Result<String, ProofProblem> {
        let key = signed_by(&self.checkpoint, trusted)?;
        let proof = hashes(&self.proof)?;
        let root = self.checkpoint.root_hash().ok_or(ProofProblem::BadHash)?;
        if !kamkor_ledger::merkle::verify_inclusion(
            self.entry.pos,
            self.checkpoint.size,
            &self.entry.leaf_hash(),
            &proof,
            &root,
        ) {
            return Err(ProofProblem::NotIncluded {
                pos: self.entry.pos,
                size: self.checkpoint.size,
            });
        }
        Ok(key)
    }
}

impl ConsistencyProof {
    /// Check offline with only the trusted public keys.
    pub fn verify(&self, trusted: &[PublicKey]) -> Result<(), ProofProblem> {
        signed_by(&self.first, trusted)?;
        signed_by(&self.second, trusted)?;
        let proof = hashes(&self.proof)?;
        let (Some(r1), Some(r2)) = (self.first.root_hash(), self.second.root_hash()) else {
            return Err(ProofProblem::BadHash);
        };
        if !kamkor_ledger::merkle::verify_consistency(
            self.first.size,
            self.second.size,
            &r1,
            &r2,
            &proof,
        ) {
            return Err(ProofProblem::Inconsistent {
                first: self.first.size,
                second: self.second.size,
            });
        }
        Ok(())
    }
}

/// Records the ranges a proof needs, answering with placeholders (the first pass).
struct Wanted(Vec<(u64, u64)>);

impl kamkor_ledger::merkle::SubtreeHashes for Wanted {
    type Error = std::convert::Infallible;
    fn subtree(&mut self, start: u64, end: u64) -> Result<Hash, Self::Error> {
        self.0.push((start, end));
        Ok([0; 32])
    }
}

/// Answers with the hashes fetched for those ranges (the second pass).
struct Fetched(std::collections::HashMap<(u64, u64), Hash>);

impl kamkor_ledger::merkle::SubtreeHashes for Fetched {
    type Error = AppError;
    fn subtree(&mut self, start: u64, end: u64) -> Result<Hash, Self::Error> {
        self.0
            .get(&(start, end))
            .copied()
            .ok_or_else(|| AppError::Config(format!("ledger subtree {start}..{end} not fetched")))
    }
}

/// The root of leaves `[start, end)` (a node of the tree: `start` is aligned to the largest
/// power of two in its length), from kept subtree hashes where there are some.
async fn range_hash(store: &Store, start: u64, end: u64) -> AppResult<Hash> {
    let mut peaks: Vec<Hash> = Vec::new();
    let mut pos = start;
    for bit in (0..64u32).rev() {
        let len = 1u64 << bit;
        if (end - start) & len == 0 {
            continue;
        }
        let kept = if bit >= NODE_HEIGHT && pos.is_multiple_of(len) {
            store
                .ledger_node(bit, pos >> bit)
                .await
                .map_err(db)?
                .and_then(|h| decode_hash(&h))
        } else {
            None
        };
        let h = match kept {
            Some(h) => h,
            None => {
                let leaves = store.leaf_hashes(pos, pos + len).await.map_err(db)?;
                if leaves.len() as u64 != len {
                    return Err(AppError::NotFound);
                }
                let hs: Option<Vec<Hash>> = leaves.iter().map(|(_, h)| decode_hash(h)).collect();
                kamkor_ledger::merkle::root_of(&hs.ok_or(AppError::NotFound)?)
            }
        };
        peaks.push(h);
        pos += len;
    }
    let mut it = peaks.into_iter().rev();
    let Some(last) = it.next() else {
        return Ok(kamkor_ledger::merkle::empty_root());
    };
    Ok(it.fold(last, |acc, p| kamkor_ledger::node_hash(&p, &acc)))
}

async fn fetch(store: &Store, wanted: Vec<(u64, u64)>) -> AppResult<Fetched> {
    let mut map = std::collections::HashMap::new();
    for (s, e) in wanted {
        map.insert((s, e), range_hash(store, s, e).await?);
    }
    Ok(Fetched(map))
}

impl App {
    async fn check_ledger_reader(&self, ctx: &crate::Ctx, about: (&str, &str)) -> AppResult<()> {
        self.decide_and_record(
            ctx,
            kamkor_domain::policy::Action::ReadLedger,
            &kamkor_domain::policy::Target::default(),
            about,
        )
        .await
    }

    /// The checkpoint of `size`, or the latest one.
    async fn checkpoint_of(&self, size: Option<u64>) -> AppResult<Checkpoint> {
        let row = match size {
            Some(s) => self.store.checkpoint(s).await.map_err(db)?,
            None => self.store.latest_checkpoint().await.map_err(db)?,
        };
        row.map(|r| r.checkpoint).ok_or(AppError::NotFound)
    }

    /// The latest signed checkpoint (auditors and administrators).
    pub async fn latest_checkpoint(&self, ctx: &crate::Ctx) -> AppResult<Checkpoint> {
        self.check_ledger_reader(ctx, ("ledger", "checkpoint"))
            .await?;
        self.checkpoint_of(None).await
    }

    /// Proof that the entry at `pos` is in the ledger of the checkpoint of `size` (default:
    /// the latest). The entry holds personal data: handing it out is itself recorded.
    pub async fn inclusion_proof(
        &self,
        ctx: &crate::Ctx,
        pos: u64,
        size: Option<u64>,
    ) -> AppResult<InclusionProof> {
        self.check_ledger_reader(ctx, ("ledger", &pos.to_string()))
            .await?;
        let checkpoint = self.checkpoint_of(size).await?;
        if pos >= checkpoint.size {
            // Not yet under a checkpoint (or no such entry).
            return Err(AppError::NotFound);
        }
        let e = self
            .store
            .ledger_entry(pos)
            .await
            .map_err(db)?
            .ok_or(AppError::NotFound)?;
        let mut wanted = Wanted(Vec::new());
        let _ = kamkor_ledger::merkle::inclusion_proof(&mut wanted, pos, checkpoint.size);
        let mut fetched = fetch(&self.store, wanted.0).await?;
        let proof = kamkor_ledger::merkle::inclusion_proof(&mut fetched, pos, checkpoint.size)
            .map_err(|e| match e {
                kamkor_ledger::merkle::ProofError::Source(e) => e,
                _ => AppError::NotFound,
            })?;
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.record_event(
            "ledger_proof",
            &e.entity,
            &e.entity_id,
            Some(serde_json::json!({"pos": pos, "size": checkpoint.size})),
        )
        .await?;
        tx.commit().await?;
        Ok(InclusionProof {
            checkpoint,
            entry: ProvenEntry {
                pos,
                at: e.at,
                actor: e.actor,
                request_id: e.request_id,
                action: e.action,
                entity: e.entity,
                entity_id: e.entity_id,
                version: e.version,
                before: e.before,
                after: e.after,
                effective_on: e.effective_on,
            },
            proof: proof.iter().map(to_hex).collect(),
        })
    }

    /// Proof that the ledger of the checkpoint of size `first` is a prefix of the one of size
    /// `second` (default: the latest).
    pub async fn consistency_proof(
        &self,
        ctx: &crate::Ctx,
        first: u64,
        second: Option<u64>,
    ) -> AppResult<ConsistencyProof> {
        self.check_ledger_reader(ctx, ("ledger", "consistency"))
            .await?;
        let first = self.checkpoint_of(Some(first)).await?;
        let second = self.checkpoint_of(second).await?;
        if first.size > second.size {
            let mut p = kamkor_domain::records::Problems::default();
            p.push("first", "after_second");
            return Err(AppError::Invalid(p));
        }
        let mut wanted = Wanted(Vec::new());
        let _ = kamkor_ledger::merkle::consistency_proof(&mut wanted, first.size, second.size);
        let mut fetched = fetch(&self.store, wanted.0).await?;
        let proof = kamkor_ledger::merkle::consistency_proof(&mut fetched, first.size, second.size)
            .map_err(|e| match e {
                kamkor_ledger::merkle::ProofError::Source(e) => e,
                _ => AppError::NotFound,
            })?;
        Ok(ConsistencyProof {
            first,
            second,
            proof: proof.iter().map(to_hex).collect(),
        })
    }
}

// ---------------------------------------------------------------- the auditor's search (item 5)

/// Entries per page of the auditor's search.
pub const AUDIT_PAGE: i64 = 50;

/// What an auditor types: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct AuditQuery {
    /// A login (the page names people; the ledger stores their ids).
    pub actor: String,
    pub entity: String,
    pub id: String,
    pub action: String,
    /// Dates (ДД.ММ.ГГГГ or ГГГГ-ММ-ДД), both days included.
    pub from: String,
    pub until: String,
    pub page: i64,
}

/// Record kinds an auditor can pick.
pub const AUDIT_ENTITIES: &[&str] = &[
    "person",
    "family",
    "case",
    "relation",
    "family_member",
    "user",
    "access_request",
    "api_client",
    "organisation",
    "meta",
    "ledger",
];

/// A page of the auditor's search.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    pub entries: Vec<kamkor_store::ChangeRow>,
    /// Actor id → "Full name (login)".
    pub actors: std::collections::HashMap<String, String>,
    pub more: bool,
}

impl App {
    /// Search the ledger (auditors and administrators). The search itself is recorded: what
    /// the auditor saw holds personal data too.
    pub async fn audit(&self, ctx: &crate::Ctx, q: &AuditQuery) -> AppResult<AuditPage> {
        self.check_ledger_reader(ctx, ("ledger", "")).await?;
        let mut p = kamkor_domain::records::Problems::default();
        let mut f = kamkor_store::LedgerFilter::default();
        let actor = q.actor.trim().to_lowercase();
        if !actor.is_empty() {
            match self.store.user_by_login(&actor).await.map_err(db)? {
                Some(u) => f.actor = Some(u.id),
                // System actors are stored by name.
                None if actor == "system" || actor == "cli" => f.actor = Some(actor),
                None => p.push("actor", "unknown_login"),
            }
        }
        let entity = q.entity.trim();
        if !entity.is_empty() {
            if AUDIT_ENTITIES.contains(&entity) {
                f.entity = Some(entity.to_string());
            } else {
                p.push("entity", "unknown_code");
            }
        }
        let id = q.id.trim();
        if id.chars().count() > 100 {
            p.push("id", "too_long");
        } else if !id.is_empty() {
            f.entity_id = Some(id.to_string());
        }
        let action = q.action.trim();
        if action.chars().count() > 40 {
            p.push("action", "too_long");
        } else if !action.is_empty() {
            f.action = Some(action.to_string());
        }
        let day = |field: &str, v: &str, p: &mut kamkor_domain::records::Problems| {
            if v.trim().is_empty() {
                return None;
            }
            let d = kamkor_domain::records::parse_date(v.trim());
            if d.is_none() {
                p.push(field, "bad_date");
            }
            d
        };
        let from = day("from", &q.from, &mut p);
        let until = day("until", &q.until, &mut p);
        if let (Some(a), Some(b)) = (from, until)
            && a > b
        {
            p.push("until", "before_valid_from");
        }
        if !p.is_empty() {
            return Err(AppError::Invalid(p));
        }
        let midnight = |d: time::Date| kamkor_store::ts(d.midnight().assume_utc());
        f.from = from.map(midnight);
        f.until = until.and_then(|d| d.next_day()).map(midnight);
        let page = q.page.clamp(0, 10_000);
        let mut entries = self
            .store
            .search_ledger(&f, page * AUDIT_PAGE, AUDIT_PAGE + 1)
            .await
            .map_err(db)?;
        let more = entries.len() as i64 > AUDIT_PAGE;
        entries.truncate(AUDIT_PAGE as usize);
        let mut actors = std::collections::HashMap::new();
        for e in &entries {
            if actors.contains_key(&e.actor) {
                continue;
            }
            if let Some(u) = self.store.user(&e.actor).await.map_err(db)? {
                actors.insert(e.actor.clone(), format!("{} ({})", u.full_name, u.login));
            }
        }
        let mut tx = self
            .store
            .begin(&ctx.user.id, ctx.request_id.as_deref())
            .await?;
        tx.record_event(
            "audit_search",
            "ledger",
            "",
            Some(serde_json::to_value(q).unwrap_or_default()),
        )
        .await?;
        tx.commit().await?;
        Ok(AuditPage {
            entries,
            actors,
            more,
        })
    }
}
