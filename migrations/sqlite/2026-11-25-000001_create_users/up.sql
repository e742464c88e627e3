-- The original service's `users` table. `reset_token` holds the SHA-256 of the token, never the
-- token itself; both secrets-by-digest columns are indexed so a lookup never scans the table.
CREATE TABLE users (
    id INTEGER PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    hashed_password TEXT NOT NULL,
    reset_token BLOB,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email_idx ON users (email);
CREATE UNIQUE INDEX users_reset_token_idx ON users (reset_token);
