ALTER TABLE users ADD COLUMN reset_token BYTEA;
ALTER TABLE users ADD COLUMN reset_token_expires_at BIGINT;
CREATE UNIQUE INDEX users_reset_token_idx ON users (reset_token);
UPDATE users SET reset_token = t.token_hash, reset_token_expires_at = t.expires_at
    FROM account_tokens AS t
    WHERE t.user_id = users.id AND t.purpose = 'reset'
      AND t.credential_version = users.credential_version;
DELETE FROM account_tokens WHERE purpose = 'reset';
