-- The OpenID Connect provider. `oidc_clients`: the applications the operator registered
-- (a confidential client's secret as its SHA-256: it is 256 random bits; redirect and
-- post-logout URIs one per line, compared as exact strings). `oidc_keys`: the ID-token signing
-- keys, the private part sealed under `mfa_key`; a retired key signs nothing new but stays
-- published until what it signed has expired. `oidc_subjects`: each account's `sub`, random,
-- so that no id is ever handed to a second account. `oidc_grants`: the scopes an account let
-- an application have. `oidc_codes`: authorization codes by digest, kept spent until expiry so
-- a second use is recognised (and revokes what the first issued: the `family`).
-- `oidc_tokens`: access and refresh tokens by digest; a refresh token is spent on use, and a
-- spent one presented again revokes its family.
CREATE TABLE oidc_clients (
    client_id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    secret_hash BLOB,
    redirect_uris TEXT NOT NULL,
    post_logout_uris TEXT NOT NULL,
    scopes TEXT NOT NULL,
    skip_consent BOOLEAN NOT NULL,
    pkce_optional BOOLEAN NOT NULL,
    id_token_alg TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE oidc_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key BLOB NOT NULL,
    seal_key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
CREATE TABLE oidc_subjects (
    user_id INTEGER PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    subject TEXT NOT NULL UNIQUE
);
CREATE TABLE oidc_grants (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX oidc_grants_client_idx ON oidc_grants (client_id);
CREATE TABLE oidc_codes (
    code_hash BLOB PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    nonce TEXT,
    code_challenge TEXT,
    session_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    family TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at BIGINT
);
CREATE INDEX oidc_codes_user_idx ON oidc_codes (user_id);
CREATE INDEX oidc_codes_client_idx ON oidc_codes (client_id);
CREATE TABLE oidc_tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    family TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    session_id TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    spent_at BIGINT
);
CREATE INDEX oidc_tokens_family_idx ON oidc_tokens (family);
CREATE INDEX oidc_tokens_user_client_idx ON oidc_tokens (user_id, client_id);
CREATE INDEX oidc_tokens_client_idx ON oidc_tokens (client_id);
