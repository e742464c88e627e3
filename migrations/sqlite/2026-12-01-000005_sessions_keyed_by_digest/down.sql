CREATE TABLE sessions_by_id (
    id INTEGER PRIMARY KEY NOT NULL,
    token_hash BLOB NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
INSERT INTO sessions_by_id (token_hash, user_id, created_at, last_seen_at)
    SELECT token_hash, user_id, created_at, last_seen_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_by_id RENAME TO sessions;
CREATE UNIQUE INDEX sessions_token_hash_idx ON sessions (token_hash);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
