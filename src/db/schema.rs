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

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(devices -> users (user_id));
diesel::joinable!(account_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(sessions, users, devices, account_tokens);

diesel::table! {
    throttle_events (id) {
        id -> Integer,
        scope -> Text,
        key -> Text,
        at -> BigInt,
    }
}
