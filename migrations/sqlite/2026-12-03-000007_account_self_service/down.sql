DROP TABLE account_tokens;
ALTER TABLE users DROP COLUMN email_verified_at;
CREATE TABLE sessions_v1 (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO sessions_v1 SELECT token_hash, user_id, created_at, last_seen_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v1 RENAME TO sessions;
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
