//! The Merkle tree of RFC 6962 §2.1 / RFC 9162 §2.1 over the ledger's entries: SHA-256, leaf
//! hashes prefixed with 0x00, interior nodes with 0x01, the tree split at the largest power of two
//! smaller than its size. Proof generation reads subtree hashes through [`SubtreeHashes`], so the
//! same code serves a tree held in memory and one read from the database.

use sha2::{Digest, Sha256};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// The hash of an empty tree: SHA-256 of nothing (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of one leaf: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The root of a tree over these leaf hashes (MTH of RFC 6962 §2.1).
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut f = Frontier::default();
    for l in leaves {
        f.push(*l);
    }
    f.root()
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first (at most
/// 64 hashes whatever the size). Appending is O(1) amortised and the root is O(log n): what the
/// checkpoint writer and the verifier keep in memory instead of the leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (height, hash): a perfect subtree of 2^height leaves.
    peaks: Vec<(u32, Hash)>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.push_with(leaf, |_, _, _| {});
    }

    /// Append one leaf hash, telling `completed` of every perfect subtree it completes, as
    /// (height, index among the subtrees of that height, hash): what a store keeps to answer
    /// proofs without reading every leaf.
    pub fn push_with(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let mut node = (0u32, leaf);
        while let Some(&(h, left)) = self.peaks.last() {
            if h != node.0 {
                break;
            }
            self.peaks.pop();
            node = (h + 1, node_hash(&left, &node.1));
            completed(node.0, self.size >> node.0, &node.1);
        }
        self.peaks.push(node);
        self.size += 1;
    }

    /// The tree's root hash.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(&(_, last)) = it.next() else {
            return empty_root();
        };
        it.fold(last, |acc, (_, peak)| node_hash(peak, &acc))
    }

    /// The peaks, for storing the frontier beside a checkpoint (resuming without re-reading
    /// every leaf).
    pub fn peaks(&self) -> impl Iterator<Item = &Hash> {
        self.peaks.iter().map(|(_, h)| h)
    }

    /// Rebuild a frontier of `size` leaves from its stored peaks; `None` when their number does
    /// not fit the size.
    pub fn from_peaks(size: u64, peaks: &[Hash]) -> Option<Frontier> {
        let heights: Vec<u32> = (0..64u32).rev().filter(|b| size >> b & 1 == 1).collect();
        if heights.len() != peaks.len() {
            return None;
        }
        Some(Frontier {
            size,
            peaks: heights.into_iter().zip(peaks.iter().copied()).collect(),
        })
    }
}

/// Where proof generation reads the hash of the subtree over leaves `[start, end)`.
pub trait SubtreeHashes {
    type Error;
    fn subtree(&mut self, start: u64, end: u64) -> Result<Hash, Self::Error>;
}

/// Leaves held in memory (tests, small trees).
impl SubtreeHashes for &[Hash] {
    type Error = std::convert::Infallible;
    fn subtree(&mut self, start: u64, end: u64) -> Result<Hash, Self::Error> {
        Ok(root_of(&self[start as usize..end as usize]))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError<E> {
    #[error("entry {index} is not in a tree of {size} entries")]
    OutOfRange { index: u64, size: u64 },
    #[error("tree size {first} is larger than {second}")]
    Shrinking { first: u64, second: u64 },
    #[error(transparent)]
    Source(E),
}

/// The audit path of leaf `index` in the tree of the first `size` leaves (PATH of RFC 6962
/// §2.1.1), nearest sibling first.
pub fn inclusion_proof<S: SubtreeHashes>(
    src: &mut S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let mut out = Vec::new();
    path(src, index, 0, size, &mut out).map_err(ProofError::Source)?;
    Ok(out)
}

fn path<S: SubtreeHashes>(
    src: &mut S,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(src, m, start, start + k, out)?;
        out.push(src.subtree(start + k, end)?);
    } else {
        path(src, m - k, start + k, end, out)?;
        out.push(src.subtree(start, start + k)?);
    }
    Ok(())
}

/// The proof that the tree of `first` leaves is a prefix of the tree of `second` leaves (PROOF
/// of RFC 6962 §2.1.2).
pub fn consistency_proof<S: SubtreeHashes>(
    src: &mut S,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, ProofError<S::Error>> {
    if first > second {
        return Err(ProofError::Shrinking { first, second });
    }
    let mut out = Vec::new();
    if first == 0 || first == second {
        return Ok(out);
    }
    subproof(src, first, 0, second, true, &mut out).map_err(ProofError::Source)?;
    Ok(out)
}

fn subproof<S: SubtreeHashes>(
    src: &mut S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(src.subtree(start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(src, m, start, start + k, whole, out)?;
        out.push(src.subtree(start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, out)?;
        out.push(src.subtree(start, start + k)?);
    }
    Ok(())
}

/// Check an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Check a consistency proof between two tree sizes and their roots (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> bool {
    if first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        // The empty tree is a prefix of every tree.
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((&head, rest)) = path.split_first() else {
        return false;
    };
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (head, head);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *first_root && sr == *second_root && s == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(h: &Hash) -> String {
        data_encoding::HEXLOWER.encode(h)
    }

    /// The reference definition, recursion and all (RFC 6962 §2.1).
    fn mth(d: &[&[u8]]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => leaf_hash(d[0]),
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }

    /// The eight leaves of the certificate-transparency reference tests (RFC 6962's examples).
    fn ct_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| data_encoding::HEXLOWER.decode(h.as_bytes()).expect("hex"))
        .collect()
    }

    #[test]
    fn roots_match_the_certificate_transparency_reference_values() {
        // Roots of the first 1..8 leaves, from the certificate-transparency test suite.
        let want = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves = ct_leaves();
        let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
        for (n, w) in want.iter().enumerate() {
            assert_eq!(hex(&root_of(&hashes[..=n])), *w, "size {}", n + 1);
        }
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn inclusion_paths_match_the_reference_values() {
        // PATH(m, D[n]) of the certificate-transparency tests (leaf index, tree size, path).
        let leaves = ct_leaves();
        let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
        let cases: [(u64, u64, &[&str]); 4] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
        ];
        for (m, n, want) in cases {
            let got = inclusion_proof(&mut &hashes[..], m, n).expect("proof");
            let got: Vec<String> = got.iter().map(hex).collect();
            assert_eq!(got, want, "PATH({m}, D[{n}])");
            let proof: Vec<Hash> = want
                .iter()
                .map(|h| {
                    data_encoding::HEXLOWER
                        .decode(h.as_bytes())
                        .expect("hex")
                        .try_into()
                        .expect("32")
                })
                .collect();
            assert!(verify_inclusion(
                m,
                n,
                &hashes[m as usize],
                &proof,
                &root_of(&hashes[..n as usize])
            ));
        }
    }

    #[test]
    fn consistency_proofs_match_the_reference_values() {
        let leaves = ct_leaves();
        let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
        let cases: [(u64, u64, &[&str]); 3] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (m, n, want) in cases {
            let got = consistency_proof(&mut &hashes[..], m, n).expect("proof");
            let got: Vec<String> = got.iter().map(hex).collect();
            assert_eq!(got, want, "PROOF({m}, D[{n}])");
        }
    }

    #[test]
    fn frontier_resumes_from_its_peaks() {
        let hashes: Vec<Hash> = (0u32..37).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut f = Frontier::default();
        for h in &hashes[..21] {
            f.push(*h);
        }
        let peaks: Vec<Hash> = f.peaks().copied().collect();
        let mut g = Frontier::from_peaks(21, &peaks).expect("fits");
        for h in &hashes[21..] {
            g.push(*h);
        }
        assert_eq!(g.root(), root_of(&hashes));
        assert!(Frontier::from_peaks(20, &peaks).is_none());
    }

    #[test]
    fn completed_subtrees_are_reported_with_their_place() {
        let hashes: Vec<Hash> = (0u32..19).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut f = Frontier::default();
        let mut seen = Vec::new();
        for h in &hashes {
            f.push_with(*h, |height, index, hash| seen.push((height, index, *hash)));
        }
        // 19 leaves complete 9 + 4 + 2 + 1 subtrees of heights 1..4.
        assert_eq!(seen.len(), 16);
        for (height, index, hash) in seen {
            let start = (index << height) as usize;
            let end = start + (1usize << height);
            assert_eq!(
                hash,
                root_of(&hashes[start..end]),
                "height {height} index {index}"
            );
        }
    }

    proptest! {
        #[test]
        fn frontier_root_is_the_reference_root(n in 0usize..300) {
            let data: Vec<Vec<u8>> = (0..n).map(|i| (i as u32).to_le_bytes().to_vec()).collect();
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let hashes: Vec<Hash> = data.iter().map(|d| leaf_hash(d)).collect();
            prop_assert_eq!(root_of(&hashes), mth(&refs));
        }

        #[test]
        fn every_inclusion_proof_verifies_and_a_changed_one_does_not(n in 1u64..200, pick in 0u64..1000) {
            let hashes: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let m = pick % n;
            let root = root_of(&hashes);
            let proof = inclusion_proof(&mut &hashes[..], m, n).expect("proof");
            prop_assert!(verify_inclusion(m, n, &hashes[m as usize], &proof, &root));
            // Another leaf, another index or a flipped bit in the proof: refused.
            let other = leaf_hash(b"other");
            prop_assert!(!verify_inclusion(m, n, &other, &proof, &root));
            if n > 1 {
                prop_assert!(!verify_inclusion((m + 1) % n, n, &hashes[m as usize], &proof, &root));
            }
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                let mut h = *first;
                h[0] ^= 1;
                bad[0] = h;
                prop_assert!(!verify_inclusion(m, n, &hashes[m as usize], &bad, &root));
            }
        }

        #[test]
        fn every_consistency_proof_verifies_and_a_rewritten_history_does_not(a in 0u64..150, b in 0u64..150) {
            let (m, n) = if a <= b { (a, b) } else { (b, a) };
            let hashes: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let (r1, r2) = (root_of(&hashes[..m as usize]), root_of(&hashes));
            let proof = consistency_proof(&mut &hashes[..], m, n).expect("proof");
            prop_assert!(verify_consistency(m, n, &r1, &r2, &proof));
            if m > 0 && m < n {
                // The older tree had a different entry: no proof links it to the newer root.
                let mut old = hashes[..m as usize].to_vec();
                old[0] = leaf_hash(b"rewritten");
                prop_assert!(!verify_consistency(m, n, &root_of(&old), &r2, &proof));
            }
        }
    }
}
