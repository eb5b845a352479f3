-- Version 1 of the mod_clinic schema for SQLite: the contract's section 6 tables
-- as mod_clinic first created them (before Idempotency-Key and clinic_schema).
-- For the upgrade test and for reference; a new database is made with
-- sql/schema-sqlite.sql, an existing one is brought up to date with the later
-- steps in this folder (README: Upgrading the schema).

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
