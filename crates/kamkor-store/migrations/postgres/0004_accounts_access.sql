-- Accounts and access (issue 3): what seed 000 §26 asks of a user, account status, second
-- factor, access requests, external API clients, per-organisation networks, break-the-glass.
ALTER TABLE users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE users ADD COLUMN org_inn TEXT;
ALTER TABLE users ADD COLUMN org_address TEXT;
ALTER TABLE users ADD COLUMN territorial_unit TEXT;
ALTER TABLE users ADD COLUMN national_id TEXT;
ALTER TABLE users ADD COLUMN position TEXT;
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
ALTER TABLE users ADD COLUMN status_reason TEXT;

CREATE TABLE access_requests (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    full_name TEXT NOT NULL,
    national_id TEXT NOT NULL,
    position TEXT NOT NULL,
    organisation TEXT NOT NULL,
    org_inn TEXT NOT NULL,
    org_address TEXT NOT NULL,
    territorial_unit TEXT NOT NULL,
    roles TEXT NOT NULL,
    scope_territory TEXT NOT NULL,
    valid_until TEXT,
    contact TEXT,
    created_at TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT,
    decision_note TEXT,
    user_id TEXT
);
CREATE INDEX access_requests_status ON access_requests(status, created_at);

CREATE TABLE api_clients (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    services TEXT NOT NULL,
    organisation TEXT NOT NULL,
    org_kind TEXT NOT NULL,
    scope_territory TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    rotated_at TEXT
);

CREATE TABLE org_networks (
    organisation TEXT NOT NULL,
    cidr TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (organisation, cidr)
);

CREATE TABLE glass_breaks (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    person_id TEXT NOT NULL REFERENCES persons(id),
    territory TEXT,
    reason TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX glass_breaks_user ON glass_breaks(user_id, person_id, expires_at);
CREATE INDEX glass_breaks_opened ON glass_breaks(opened_at);
