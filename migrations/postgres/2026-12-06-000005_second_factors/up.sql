-- As migrations/sqlite/…000010.
-- Second factors. An authenticator app's secret (RFC 6238), sealed with AES-256-GCM under the
-- key `key_id` names (`mfa_key`), the account id as associated data; a pending one (not yet
-- confirmed with a code) beside the confirmed one, so a new phone is set up before the old one
-- goes. `last_step` is the last time step accepted: a code is good once.
CREATE TABLE totp_credentials (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    confirmed BOOLEAN NOT NULL,
    secret BYTEA NOT NULL,
    key_id TEXT NOT NULL,
    last_step BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, confirmed)
);

-- One-time recovery codes, as SHA-256 digests (each carries 80 random bits): spent by deleting.
CREATE TABLE recovery_codes (
    code_hash BYTEA PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);
CREATE INDEX recovery_codes_user_id_idx ON recovery_codes (user_id);

-- A sign-in half done: the password was right and a second factor is asked for. Keyed by the
-- digest of the token handed to the client in place of a session; `methods` lists what may
-- complete it, `ceremony` holds a passkey challenge's server-side state, `device_hash` the
-- trusted device the session will be opened on. Single use, short-lived, five wrong codes end it.
CREATE TABLE sign_in_steps (
    token_hash BYTEA PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    methods TEXT NOT NULL,
    ceremony TEXT,
    device_hash BYTEA,
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sign_in_steps_user_id_idx ON sign_in_steps (user_id);

-- How each session was made (OpenID's `amr` values, space-separated): `pwd`, `otp`, `rc`, `passkey`.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
