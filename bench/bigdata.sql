-- The large data set for bench/bench.pl's cases with data => '2m' (issue 13:
-- cost must not grow with the data), loaded after every other throughput case:
--   * 2,000,000 visits of the 1,000 fixture patients, over ten years;
--   * 1,000,000 practice patients of 1,000 other doctors, each linked to one
--     of 2,000,000 appointments; the other 1,000,000 appointments are free.
-- Ids start with 'b', unlike every fixture id (bench/fixtures.sql).
\set ON_ERROR_STOP on
INSERT INTO visits (patient_id, date, status)
SELECT 1 + i % 1000, timestamptz '2016-01-01 08:00:00Z' + (i % 3650) * interval '1 day' + (i % 600) * interval '1 minute',
       (ARRAY['started', 'waiting', 'done'])[1 + i % 3]
FROM generate_series(1, 2000000) i;

INSERT INTO practice_patients (id, doctor_id, first_name, last_name, date_of_birth, created_at)
SELECT 'b' || lpad(to_hex(i), 23, '0'), 'doc-big-' || (i % 1000), 'First' || i, 'Last' || i,
       date '1950-01-01' + (i % 25000), timestamptz '2020-01-01 00:00:00Z' + i * interval '1 minute'
FROM generate_series(1, 1000000) i;

INSERT INTO appointments (id, doctor_id, patient_id, starts_at)
SELECT 'b' || lpad(to_hex(i), 23, '0'), 'doc-big-' || (i % 1000),
       CASE WHEN i <= 1000000 THEN 'b' || lpad(to_hex(i), 23, '0') END,
       timestamptz '2020-01-01 08:00:00Z' + i * interval '10 minutes'
FROM generate_series(1, 2000000) i;
VACUUM ANALYZE;
CHECKPOINT;
