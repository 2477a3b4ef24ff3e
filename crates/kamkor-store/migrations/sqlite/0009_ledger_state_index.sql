-- Issue 4 item 3: replaying the ledger reads each record's changes of state (version > 0);
-- views and other events (version 0) are most of the ledger and are looked up apart (who saw
-- a record). Each entry is in exactly one of the two indexes, so a write costs no more.
DROP INDEX changes_entity;
CREATE INDEX changes_state ON changes(entity, entity_id, seq) WHERE version > 0;
CREATE INDEX changes_events ON changes(entity, entity_id, seq) WHERE version <= 0;
-- A searched period is found by position (entry times rise with positions), so the index
-- by time no longer costs every write.
DROP INDEX changes_at;
