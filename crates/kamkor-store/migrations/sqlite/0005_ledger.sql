-- Issue 4: the ledger. Every row of `changes` gets a gap-free position in the Merkle tree and
-- the leaf hash of its contents (computed by the application in the writing transaction;
-- rows written before this migration are hashed once at start). Signed checkpoints commit to
-- the tree of the first `size` entries.
ALTER TABLE changes ADD COLUMN pos BIGINT;
ALTER TABLE changes ADD COLUMN leaf_hash TEXT;
UPDATE changes SET pos = numbered.rn
  FROM (SELECT seq, ROW_NUMBER() OVER (ORDER BY seq) - 1 AS rn FROM changes) AS numbered
 WHERE numbered.seq = changes.seq;
CREATE UNIQUE INDEX changes_pos ON changes(pos);

CREATE TABLE ledger_checkpoints (
    size BIGINT PRIMARY KEY,
    origin TEXT NOT NULL,
    root TEXT NOT NULL,
    at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    -- The tree's right edge at this size (hex hashes, largest subtree first): lets the writer
    -- resume without re-reading every leaf. Never trusted by the verifier.
    peaks TEXT NOT NULL
);
