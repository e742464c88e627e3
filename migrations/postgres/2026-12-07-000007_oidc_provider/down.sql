DROP TABLE oidc_tokens;
DROP TABLE oidc_codes;
DROP TABLE oidc_grants;
DROP TABLE oidc_subjects;
DROP TABLE oidc_keys;
DROP TABLE oidc_clients;
