-- Issue 5 (case work). A case now has a territory that serves it — the place of
-- identification at first, the receiving territory after a transfer — and the state of its
-- lifecycle: since when it is in its stage, where a transfer is waiting, and the rest of the
-- step's details as JSON (the stage a side state returns to, the outcome, the agreement).
ALTER TABLE cases ADD COLUMN territory TEXT;
UPDATE cases SET territory = identification_territory;
ALTER TABLE cases ADD COLUMN status_since TEXT;
ALTER TABLE cases ADD COLUMN transfer_territory TEXT;
ALTER TABLE cases ADD COLUMN progress TEXT;
CREATE INDEX cases_serving_territory ON cases(territory, status);
CREATE INDEX cases_transfer_territory ON cases(transfer_territory);

-- The records of case work: circumstances (seed 000 §20), assessments, plan activities and
-- plan versions (seed 000 §22), monitoring visits. `data` is the record as the ledger holds
-- it; status, due_on and rule_key repeat three of its fields for the indexes (the overdue
-- lists, and one generated activity per case, rule and rule version).
CREATE TABLE case_records (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    case_id TEXT NOT NULL REFERENCES cases(id),
    version BIGINT NOT NULL,
    status TEXT,
    due_on TEXT,
    rule_key TEXT,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    UNIQUE (case_id, rule_key)
);
CREATE INDEX case_records_case ON case_records(case_id, kind);
CREATE INDEX case_records_due ON case_records(kind, status, due_on);
