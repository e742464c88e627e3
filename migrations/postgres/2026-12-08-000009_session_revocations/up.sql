-- As migrations/sqlite/…000014.
CREATE TABLE session_revocations (
    id BYTEA PRIMARY KEY NOT NULL,
    user_id INT4 NOT NULL,
    at BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
);
CREATE INDEX session_revocations_at ON session_revocations (at);
