-- As migrations/sqlite/…000008: `credential_version` counts the account's password changes;
-- a mailed link records the version it was issued under; a session records its device; one
-- live token per account and purpose.
ALTER TABLE users ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE account_tokens ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN device_hash BYTEA;
DELETE FROM account_tokens WHERE EXISTS (
    SELECT 1 FROM account_tokens AS later
    WHERE later.user_id = account_tokens.user_id AND later.purpose = account_tokens.purpose
      AND (later.expires_at > account_tokens.expires_at
           OR (later.expires_at = account_tokens.expires_at
               AND later.token_hash > account_tokens.token_hash))
);
DROP INDEX account_tokens_user_id_idx;
CREATE UNIQUE INDEX account_tokens_user_purpose_idx ON account_tokens (user_id, purpose);
CREATE INDEX devices_user_last_used_idx ON devices (user_id, last_used_at);
DROP INDEX devices_user_id_idx;
