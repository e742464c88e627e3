-- Accounts whose sessions or account row changed, so that every instance drops what it cached
-- of them (db/session_cache.rs): instances poll the rows of the last seconds. `id` is random
-- (16 bytes) so that polls can tell a row already applied; `at` is the database's clock in
-- milliseconds, one clock for every instance. Rows older than an hour are purged.
CREATE TABLE session_revocations (
    id BLOB PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL,
    at BIGINT NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER))
);
CREATE INDEX session_revocations_at ON session_revocations (at);
