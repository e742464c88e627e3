CREATE INDEX devices_user_id_idx ON devices (user_id);
DROP INDEX devices_user_last_used_idx;
DROP INDEX account_tokens_user_purpose_idx;
CREATE INDEX account_tokens_user_id_idx ON account_tokens (user_id);
ALTER TABLE sessions DROP COLUMN device_hash;
ALTER TABLE account_tokens DROP COLUMN credential_version;
ALTER TABLE users DROP COLUMN credential_version;
