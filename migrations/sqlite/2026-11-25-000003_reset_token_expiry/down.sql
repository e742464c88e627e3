ALTER TABLE users DROP COLUMN reset_token_expires_at;
