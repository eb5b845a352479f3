-- mod_clinic schema, version 1 -> 2 (PostgreSQL): the Idempotency-Key table
-- and clinic_schema. Apply once, to a version-1 database, while Apache runs
-- if you like (the module's sessions prepare their statements again):
--   psql -v ON_ERROR_STOP=1 -d clinic -f sql/upgrade/pgsql-2.sql
-- One transaction: it applies whole or not at all.
BEGIN;

-- Version 1 has no clinic_schema: a database that has one is past this step.
CREATE TABLE clinic_schema (
    version    integer NOT NULL,
    applied_at timestamp with time zone NOT NULL DEFAULT now()
);

-- Tables made by hand from the contract may lack the JSON domain and the
-- indexes of sql/upgrade/pgsql-1.sql.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'clinic_json_text'
                   AND typnamespace = 'public'::regnamespace) THEN
        CREATE DOMAIN clinic_json_text AS jsonb;
    END IF;
END
$$;
CREATE INDEX IF NOT EXISTS visits_patient_id_idx ON visits (patient_id);
CREATE INDEX IF NOT EXISTS practice_patients_doctor_id_idx ON practice_patients (doctor_id);
CREATE INDEX IF NOT EXISTS appointments_doctor_id_idx ON appointments (doctor_id);

-- Idempotency-Key answers (CONTRACT section 9), shared by every node of a farm.
CREATE TABLE idempotency_keys (
    caller      text         NOT NULL,   -- sub:<token sub> | uid:<doctor> | ip:<address>
    route       varchar(32)  NOT NULL,
    key         varchar(255) NOT NULL,
    fingerprint char(64)     NOT NULL,   -- SHA-256 of route, query string and body
    status      integer      NULL,       -- NULL while the first request runs
    body        text         NULL,
    created_at  timestamp with time zone NOT NULL,
    expires_at  timestamp with time zone NOT NULL,
    PRIMARY KEY (caller, route, key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

INSERT INTO clinic_schema (version) VALUES (2);
COMMIT;
