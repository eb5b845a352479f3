-- mod_clinic schema, version 2 -> 3 (PostgreSQL): the DPoP replay store.
-- Apply once, to a version-2 database, while Apache runs if you like (the
-- module's sessions prepare their statements again):
--   psql -v ON_ERROR_STOP=1 -d clinic -f sql/upgrade/pgsql-3.sql
-- One transaction: it applies whole or not at all.
BEGIN;

DO $$
BEGIN
    IF (SELECT max(version) FROM clinic_schema) IS DISTINCT FROM 2 THEN
        RAISE EXCEPTION 'sql/upgrade/pgsql-3.sql takes a version-2 database; this one is version %',
            (SELECT max(version) FROM clinic_schema);
    END IF;
END
$$;

-- DPoP proofs seen (RFC 9449 jti), shared by every node of a farm: a row
-- lives while its proof could still be accepted. Expired rows are deleted
-- by the module in small batches (src/dpop.c).
CREATE TABLE dpop_jtis (
    replay_key char(64) PRIMARY KEY,          -- hex SHA-256 of the proof key's thumbprint and jti
    expires_at timestamp with time zone NOT NULL
);
CREATE INDEX dpop_jtis_expires_at_idx ON dpop_jtis (expires_at);

UPDATE clinic_schema SET version = 3, applied_at = now();
COMMIT;
