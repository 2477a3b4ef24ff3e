-- Issue 4 item 4: hashes of the ledger tree's perfect subtrees of 256 leaves and more, kept by
-- the checkpoint writer, so that an inclusion or consistency proof reads a few hundred leaf
-- hashes instead of the whole ledger. Derived data: the verifier never trusts it.
CREATE TABLE ledger_nodes (
    height INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (height, idx)
);
