-- Issue 6 (search, duplicates). A person merged into another (a duplicate found and resolved
-- by a supervisor) keeps its row and its history; `merged_into` points at the record that
-- carries on, and searches and the duplicate finder skip it.
ALTER TABLE persons ADD COLUMN merged_into TEXT;
CREATE INDEX persons_merged_into ON persons(merged_into);

-- Pairs of persons a user has said are two different people (at registration, or when the
-- duplicate finder proposed them), so that they are not proposed again. The decision itself,
-- with its reason, is in the ledger; `a` sorts before `b`.
CREATE TABLE person_distinct (
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    reason TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    PRIMARY KEY (a, b)
);
