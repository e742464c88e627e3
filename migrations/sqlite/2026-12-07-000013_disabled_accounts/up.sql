-- An account the operator disabled (`auth_service user disable`): it cannot sign in until
-- enabled again. NULL: enabled.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
