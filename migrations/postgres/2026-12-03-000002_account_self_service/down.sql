DROP TABLE account_tokens;
ALTER TABLE users DROP COLUMN email_verified_at;
DROP INDEX sessions_public_id_idx;
ALTER TABLE sessions DROP COLUMN address;
ALTER TABLE sessions DROP COLUMN user_agent;
ALTER TABLE sessions DROP COLUMN public_id;
