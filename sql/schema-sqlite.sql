-- mod_clinic schema for SQLite (3.35+: RETURNING). Load with:
--   sqlite3 clinic.db < sql/schema-sqlite.sql
-- Same tables and columns as schema-pgsql.sql. Timestamps are UTC text
-- written YYYY-MM-DDTHH:MM:SS[.ffffff]Z (SQLite's own YYYY-MM-DD HH:MM:SS
-- is read too); JSON columns hold JSON text.
PRAGMA journal_mode = WAL;   -- readers do not wait for the writer

CREATE TABLE patients (
    id                    INTEGER PRIMARY KEY,
    village_prefix        varchar(5)   NOT NULL,
    name                  varchar(255) NOT NULL,
    identification_number varchar(255) NULL,
    contact_no            varchar(255) NULL,
    gender                varchar(11)  NOT NULL,
    date_of_birth         TEXT         NOT NULL,
    poor                  varchar(3)   NOT NULL DEFAULT 'No',
    bs2                   varchar(3)   NOT NULL DEFAULT 'No',
    sabai                 varchar(3)   NOT NULL DEFAULT 'No',
    drug_allergy          TEXT         NOT NULL DEFAULT 'None',
    face_encodings        varchar(3000) NULL,
    picture               varchar(255) NULL
);

CREATE TABLE visits (
    id         INTEGER PRIMARY KEY,
    patient_id INTEGER NULL REFERENCES patients(id) ON DELETE SET NULL,
    date       TEXT NOT NULL,
    status     varchar(100) NOT NULL
);
CREATE INDEX visits_patient_id_idx ON visits (patient_id);

CREATE TABLE practice_patients (
    id                  char(24) PRIMARY KEY,
    doctor_id           varchar(128) NOT NULL,
    first_name          varchar(255) NOT NULL,
    last_name           varchar(255) NOT NULL,
    date_of_birth       TEXT NULL,
    address             TEXT NULL,
    insurance           TEXT NULL,
    contact             TEXT NULL,
    medical_history     TEXT NULL,
    current_medications TEXT NULL,
    created_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX practice_patients_doctor_id_idx ON practice_patients (doctor_id);

CREATE TABLE appointments (
    id         char(24) PRIMARY KEY,          -- lowercase hex ObjectId
    doctor_id  varchar(128) NOT NULL,
    patient_id char(24) NULL REFERENCES practice_patients(id),
    starts_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    status     varchar(32) NOT NULL DEFAULT 'scheduled'
);
CREATE INDEX appointments_doctor_id_idx ON appointments (doctor_id);

-- Idempotency-Key answers (CONTRACT section 9), shared by every node of a farm.
-- Expired rows are ignored, and deleted by the module in small batches (src/purge.c).
CREATE TABLE idempotency_keys (
    caller      TEXT         NOT NULL,   -- sub:<token sub> | uid:<doctor> | ip:<address>
    route       varchar(32)  NOT NULL,
    key         varchar(255) NOT NULL,
    fingerprint char(64)     NOT NULL,   -- SHA-256 of route, query string and body
    status      integer      NULL,       -- NULL while the first request runs
    body        TEXT         NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (caller, route, key)
);
CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- DPoP proofs seen (RFC 9449 jti), shared by every node of a farm: a row
-- lives while its proof could still be accepted. Expired rows are deleted
-- by the module in small batches (src/dpop.c).
CREATE TABLE dpop_jtis (
    replay_key char(64) PRIMARY KEY,          -- hex SHA-256 of the proof key's thumbprint and jti
    expires_at TEXT NOT NULL
);
CREATE INDEX dpop_jtis_expires_at_idx ON dpop_jtis (expires_at);

-- The schema's version, one row: mod_clinic refuses a database older than
-- it needs and names the sql/upgrade/ script to apply (README: Upgrading the
-- schema). A new version raises this number and adds sql/upgrade/sqlite-N.sql.
CREATE TABLE clinic_schema (
    version    integer NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
INSERT INTO clinic_schema (version) VALUES (3);
