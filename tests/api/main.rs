//! HTTP tests of the JSON API through Rocket's local client, each on its own temporary database.

mod helpers;

mod journey;
mod profile;
mod reset_password;
mod root;
mod sessions;
mod users;
