-- One row per logged-in device. `token_hash` is the SHA-256 of the cookie value.
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY NOT NULL,
    token_hash BLOB NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX sessions_token_hash_idx ON sessions (token_hash);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
