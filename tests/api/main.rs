//! HTTP tests of the JSON API through Rocket's local client, each on its own temporary database.

mod authenticator;
mod helpers;

mod account;
mod audit;
mod database;
mod expiry;
mod journey;
mod mail;
mod mfa;
mod oidc;
mod oidc_rules;
mod openapi;
mod ops;
mod pages_account;
mod pages_finish;
mod pages_mfa;
mod pages_passkeys;
mod pages_password;
mod pages_security;
mod pages_settings;
mod passkeys;
mod profile;
mod release;
mod reset_password;
mod revocation;
mod root;
mod sessions;
mod sweep;
mod throttle;
mod users;
