-- One person per national identifier (a double click or two workers at once must not create
-- two records of one child); families searchable by a normalised name like persons.
DROP INDEX persons_national_id;
CREATE UNIQUE INDEX persons_national_id ON persons(national_id) WHERE national_id IS NOT NULL;
ALTER TABLE families ADD COLUMN search_name TEXT NOT NULL DEFAULT '';
CREATE INDEX families_search_name ON families(search_name);
-- A worker's home page lists their newest cases first.
CREATE INDEX cases_responsible_recent ON cases(responsible_user, identified_on, number);
