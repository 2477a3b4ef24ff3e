-- Failed logins per account: progressive delay and temporary lock (seed 000 §17: users answer
-- for their passwords; the system must not let them be guessed).
CREATE TABLE login_failures (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    failures BIGINT NOT NULL,
    last_failure_at TEXT NOT NULL,
    locked_until TEXT
);
