// @generated shape of `diesel print-schema` for the migrations in `migrations/`.

diesel::table! {
    sessions (token_hash) {
        token_hash -> Binary,
        user_id -> Integer,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        public_id -> Text,
        user_agent -> Nullable<Text>,
        address -> Nullable<Text>,
        device_hash -> Nullable<Binary>,
        amr -> Text,
    }
}

diesel::table! {
    session_revocations (id) {
        id -> Binary,
        user_id -> Integer,
        at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Integer,
        email -> Text,
        hashed_password -> Text,
        created_at -> BigInt,
        email_verified_at -> Nullable<BigInt>,
        credential_version -> Integer,
        disabled_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    devices (token_hash) {
        token_hash -> Binary,
        user_id -> Integer,
        created_at -> BigInt,
        last_used_at -> BigInt,
    }
}

diesel::table! {
    account_tokens (token_hash) {
        token_hash -> Binary,
        user_id -> Integer,
        purpose -> Text,
        new_email -> Nullable<Text>,
        expires_at -> BigInt,
        credential_version -> Integer,
    }
}

diesel::table! {
    totp_credentials (user_id, confirmed) {
        user_id -> Integer,
        confirmed -> Bool,
        secret -> Binary,
        key_id -> Text,
        last_step -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    recovery_codes (code_hash) {
        code_hash -> Binary,
        user_id -> Integer,
        created_at -> BigInt,
    }
}

diesel::table! {
    sign_in_steps (token_hash) {
        token_hash -> Binary,
        user_id -> Integer,
        purpose -> Text,
        methods -> Text,
        ceremony -> Nullable<Text>,
        device_hash -> Nullable<Binary>,
        attempts -> Integer,
        expires_at -> BigInt,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        credential_id -> Binary,
        user_id -> Integer,
        name -> Text,
        passkey -> Text,
        sign_count -> BigInt,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    oidc_clients (client_id) {
        client_id -> Text,
        name -> Text,
        secret_hash -> Nullable<Binary>,
        redirect_uris -> Text,
        post_logout_uris -> Text,
        scopes -> Text,
        skip_consent -> Bool,
        pkce_optional -> Bool,
        id_token_alg -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    oidc_keys (kid) {
        kid -> Text,
        alg -> Text,
        public_jwk -> Text,
        private_key -> Binary,
        seal_key_id -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    oidc_subjects (user_id) {
        user_id -> Integer,
        subject -> Text,
    }
}

diesel::table! {
    oidc_grants (user_id, client_id) {
        user_id -> Integer,
        client_id -> Text,
        scopes -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    oidc_codes (code_hash) {
        code_hash -> Binary,
        client_id -> Text,
        user_id -> Integer,
        redirect_uri -> Text,
        scopes -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        session_id -> Text,
        auth_time -> BigInt,
        amr -> Text,
        family -> Text,
        expires_at -> BigInt,
        spent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    oidc_tokens (token_hash) {
        token_hash -> Binary,
        kind -> Text,
        family -> Text,
        client_id -> Text,
        user_id -> Integer,
        scopes -> Text,
        session_id -> Text,
        auth_time -> BigInt,
        amr -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        spent_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(totp_credentials -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(sign_in_steps -> users (user_id));
diesel::joinable!(devices -> users (user_id));
diesel::joinable!(account_tokens -> users (user_id));
diesel::joinable!(oidc_subjects -> users (user_id));
diesel::joinable!(oidc_grants -> users (user_id));
diesel::joinable!(oidc_grants -> oidc_clients (client_id));
diesel::joinable!(oidc_tokens -> oidc_clients (client_id));

diesel::allow_tables_to_appear_in_same_query!(
    sessions,
    session_revocations,
    users,
    devices,
    account_tokens,
    totp_credentials,
    recovery_codes,
    sign_in_steps,
    passkeys,
    oidc_clients,
    oidc_subjects,
    oidc_grants,
    oidc_codes,
    oidc_tokens
);

diesel::table! {
    throttle_events (id) {
        id -> Integer,
        scope -> Text,
        key -> Text,
        at -> BigInt,
    }
}
