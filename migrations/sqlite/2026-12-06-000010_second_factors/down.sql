ALTER TABLE sessions DROP COLUMN amr;
DROP TABLE sign_in_steps;
DROP TABLE recovery_codes;
DROP TABLE totp_credentials;
