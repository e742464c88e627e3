-- Reset tokens back onto `users`: each account's live one (issued under its current credential
-- version) carries over; the rows go.
ALTER TABLE users ADD COLUMN reset_token BLOB;
ALTER TABLE users ADD COLUMN reset_token_expires_at BIGINT;
UPDATE users SET
    reset_token = (SELECT token_hash FROM account_tokens AS t
        WHERE t.user_id = users.id AND t.purpose = 'reset'
          AND t.credential_version = users.credential_version),
    reset_token_expires_at = (SELECT expires_at FROM account_tokens AS t
        WHERE t.user_id = users.id AND t.purpose = 'reset'
          AND t.credential_version = users.credential_version);
DELETE FROM account_tokens WHERE purpose = 'reset';
CREATE UNIQUE INDEX users_reset_token_idx ON users (reset_token);
