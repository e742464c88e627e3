-- Account self-service, as migrations/sqlite/…000007: what the owner sees of each session (an
-- opaque public id, the user agent's summary, the client address), when the email was
-- verified (existing accounts: at creation), and single-use mailed tokens.
ALTER TABLE sessions ADD COLUMN public_id TEXT;
UPDATE sessions SET public_id = md5(random()::text || token_hash::text);
ALTER TABLE sessions ALTER COLUMN public_id SET NOT NULL;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN address TEXT;
CREATE UNIQUE INDEX sessions_public_id_idx ON sessions (public_id);

ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
UPDATE users SET email_verified_at = created_at;

CREATE TABLE account_tokens (
    token_hash BYTEA PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    new_email TEXT,
    expires_at BIGINT NOT NULL
);
CREATE INDEX account_tokens_user_id_idx ON account_tokens (user_id);
