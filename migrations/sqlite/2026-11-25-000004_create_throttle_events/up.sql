-- Brute-force accounting: one row per counted attempt (a failed login, a signup, a reset
-- request, a wrong reset token), keyed by what is limited (an email, a client address).
-- Stored in the database so limits survive a restart and hold across app instances.
CREATE TABLE throttle_events (
    id INTEGER PRIMARY KEY NOT NULL,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX throttle_events_scope_key_at_idx ON throttle_events (scope, key, at);
CREATE INDEX throttle_events_at_idx ON throttle_events (at);
