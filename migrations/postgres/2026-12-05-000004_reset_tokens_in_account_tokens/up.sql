-- As migrations/sqlite/…000009: reset tokens become rows of `account_tokens` (purpose
-- `reset`), carried over with their digest and expiry under the account's current credential
-- version; the columns on `users` go (their unique index with them).
INSERT INTO account_tokens (token_hash, user_id, purpose, new_email, expires_at, credential_version)
    SELECT reset_token, id, 'reset', NULL, reset_token_expires_at, credential_version FROM users
    WHERE reset_token IS NOT NULL AND reset_token_expires_at IS NOT NULL;
ALTER TABLE users DROP COLUMN reset_token;
ALTER TABLE users DROP COLUMN reset_token_expires_at;
