-- Issue 4 item 5: the auditor searches the ledger by actor, action and period.
CREATE INDEX changes_actor ON changes(actor, seq);
CREATE INDEX changes_action ON changes(action, seq);
CREATE INDEX changes_at ON changes(at);
