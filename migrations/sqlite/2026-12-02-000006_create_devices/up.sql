-- Devices trusted for an account (OWASP's device cookies): a client that logged in to the
-- account carries a random token in a private cookie, stored here as its SHA-256. A trusted
-- device has a failed-login budget of its own, so failures from other clients cannot lock the
-- owner out. Keyed by the digest, as sessions are.
CREATE TABLE devices (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL
) WITHOUT ROWID;
CREATE INDEX devices_user_id_idx ON devices (user_id);
