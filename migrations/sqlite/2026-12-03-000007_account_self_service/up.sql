-- Account self-service. Sessions get what the account's owner sees of them: an opaque public
-- id (the digest stays private), a summary of the user agent and the client address. The
-- table is rebuilt, as in migration 5, to give existing sessions a random public id.
CREATE TABLE sessions_v2 (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    public_id TEXT NOT NULL,
    user_agent TEXT,
    address TEXT
) WITHOUT ROWID;
INSERT INTO sessions_v2 (token_hash, user_id, created_at, last_seen_at, public_id)
    SELECT token_hash, user_id, created_at, last_seen_at, lower(hex(randomblob(16))) FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v2 RENAME TO sessions;
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE UNIQUE INDEX sessions_public_id_idx ON sessions (public_id);

-- When the account's email was shown to be its owner's. Accounts made before verification
-- existed count as verified from their creation.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
UPDATE users SET email_verified_at = created_at;

-- Single-use tokens mailed to the owner: `verify` proves the account's email, `email` proves a
-- new address (`new_email`) before the account moves to it. Stored as their SHA-256.
CREATE TABLE account_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    new_email TEXT,
    expires_at BIGINT NOT NULL
) WITHOUT ROWID;
CREATE INDEX account_tokens_user_id_idx ON account_tokens (user_id);
