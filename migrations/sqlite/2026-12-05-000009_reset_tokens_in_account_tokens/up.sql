-- Reset tokens become rows of `account_tokens` (purpose `reset`), as verification and
-- email-change tokens are: one table, one way to issue, spend and void a mailed link. Every
-- token on `users` carries over with its digest and expiry, under the account's current
-- credential version (an expired one is as good as absent, and the cleanup removes it).
INSERT INTO account_tokens (token_hash, user_id, purpose, new_email, expires_at, credential_version)
    SELECT reset_token, id, 'reset', NULL, reset_token_expires_at, credential_version FROM users
    WHERE reset_token IS NOT NULL AND reset_token_expires_at IS NOT NULL;
DROP INDEX users_reset_token_idx;
ALTER TABLE users DROP COLUMN reset_token;
ALTER TABLE users DROP COLUMN reset_token_expires_at;
