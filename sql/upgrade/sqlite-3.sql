-- mod_clinic schema, version 2 -> 3 (SQLite): the DPoP replay store. Apply
-- once, to a version-2 database, while Apache runs if you like (the module's
-- sessions prepare their statements again):
--   sqlite3 -bail clinic.db < sql/upgrade/sqlite-3.sql
-- One transaction: with -bail it applies whole or not at all.
BEGIN;

-- Refuses (and -bail stops) unless the database is version 2.
CREATE TEMP TABLE clinic_upgrade_guard (from_version_2 INTEGER CHECK (from_version_2 = 1));
INSERT INTO clinic_upgrade_guard SELECT max(version) = 2 FROM clinic_schema;
DROP TABLE clinic_upgrade_guard;

-- DPoP proofs seen (RFC 9449 jti), shared by every node of a farm: a row
-- lives while its proof could still be accepted. Expired rows are deleted
-- by the module in small batches (src/dpop.c).
CREATE TABLE dpop_jtis (
    replay_key char(64) PRIMARY KEY,          -- hex SHA-256 of the proof key's thumbprint and jti
    expires_at TEXT NOT NULL
);
CREATE INDEX dpop_jtis_expires_at_idx ON dpop_jtis (expires_at);

UPDATE clinic_schema SET version = 3, applied_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now');
COMMIT;
