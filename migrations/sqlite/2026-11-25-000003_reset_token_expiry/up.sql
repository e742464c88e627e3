-- Reset tokens expire: the lookup and the consuming update both require a future expiry.
ALTER TABLE users ADD COLUMN reset_token_expires_at BIGINT;
