-- Foundation schema (issue 2). Times are UTC RFC 3339 text; dates ISO text; ids UUID v7 text.
-- Flags are 0/1 integers on both engines (the Any driver maps no SQLite BOOLEAN).
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    login TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    full_name TEXT NOT NULL,
    role TEXT NOT NULL,
    organisation TEXT NOT NULL,
    org_kind TEXT NOT NULL,
    scope_territory TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT,
    active BIGINT NOT NULL,
    must_change_password BIGINT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    ended_at TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE persons (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    role TEXT NOT NULL,
    surname TEXT NOT NULL,
    given_name TEXT NOT NULL,
    patronymic TEXT,
    sex TEXT NOT NULL,
    birth_date TEXT,
    national_id TEXT,
    citizenship TEXT,
    residence_territory TEXT,
    address TEXT,
    disability TEXT,
    legal_status TEXT,
    social_payments TEXT NOT NULL,
    extra TEXT NOT NULL,
    search_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX persons_national_id ON persons(national_id);
CREATE INDEX persons_birth_date ON persons(birth_date);
CREATE INDEX persons_search_name ON persons(search_name);
CREATE INDEX persons_territory ON persons(residence_territory);

CREATE TABLE relations (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    person_id TEXT NOT NULL REFERENCES persons(id),
    relative_id TEXT NOT NULL REFERENCES persons(id),
    relation_kind TEXT NOT NULL,
    relative_status TEXT NOT NULL,
    note TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (person_id, relative_id)
);
CREATE INDEX relations_relative ON relations(relative_id);

CREATE TABLE families (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    territory TEXT,
    address TEXT,
    extra TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX families_territory ON families(territory);

CREATE TABLE family_members (
    id TEXT PRIMARY KEY,
    family_id TEXT NOT NULL REFERENCES families(id),
    person_id TEXT NOT NULL REFERENCES persons(id),
    member_role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (family_id, person_id)
);
CREATE INDEX family_members_person ON family_members(person_id);

CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    number TEXT NOT NULL UNIQUE,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    status TEXT NOT NULL,
    identified_on TEXT NOT NULL,
    identification_territory TEXT NOT NULL,
    identification_place TEXT,
    identification_place_text TEXT,
    source TEXT,
    categories TEXT NOT NULL,
    responsible_org TEXT NOT NULL,
    responsible_user TEXT,
    extra TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX cases_subject ON cases(subject_id);
CREATE INDEX cases_territory ON cases(identification_territory);
CREATE INDEX cases_responsible_user ON cases(responsible_user, status);
CREATE INDEX cases_status ON cases(status);

-- Every change passes through one place and leaves a row here, in the same transaction
-- (the tamper-evident ledger of the ledger issue is built over these rows).
CREATE TABLE changes (
    seq BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    request_id TEXT,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    before_json TEXT,
    after_json TEXT
);
CREATE INDEX changes_entity ON changes(entity, entity_id, seq);
