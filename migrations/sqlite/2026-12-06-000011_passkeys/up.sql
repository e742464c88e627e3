-- Passkeys (WebAuthn credentials): `passkey` holds the credential as webauthn-rs keeps it (its
-- public key, algorithm and sign counter; no secret), `credential_id` is unique across every
-- account, and `id` is the random public id the owner names it by.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY NOT NULL,
    credential_id BLOB NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    sign_count BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user_id_idx ON passkeys (user_id);
