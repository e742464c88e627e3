-- Trust derived from a credential ends with it. `credential_version` counts the account's
-- password changes (a rehash of the same password is none); a mailed link records the version
-- it was issued under and works only while it is still the account's. A session records the
-- device it was opened on, so ending the session can end that device's trust. One live token
-- per account and purpose, held by a unique index (issuing is an upsert).
ALTER TABLE users ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE account_tokens ADD COLUMN credential_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN device_hash BLOB;
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
