-- Fixtures for bench/bench.pl, after sql/schema-pgsql.sql:
--   psql -v wrk_runs=R -v wrk_threads=T -v wrk_cap=N -v pg_clients=C -v pg_cap=M -v cg_cap=K -f bench/fixtures.sql
-- * 1,000 patients (ids 1..1000), shaped like the demo rows;
-- * free appointments of doctor doc-bench, ids printf("%012x%012x", slot, n):
--     wrk (bench/link.lua): slots 16 + 16*run + thread, run 0..wrk_runs-1
--       (the warm-up, then each link case of bench/cases.pl),
--       thread 0..wrk_threads-1, n = 1..wrk_cap;
--     pgbench (bench/link.pgbench): ids ((256 + client) * 10000000 + n) as decimal
--       text (pgbench only makes numbers), client 0..pg_clients-1, n = 1..pg_cap;
--     callgrind (bench/bench.pl, curl): slots 512..519, n = 1..cg_cap.
\set ON_ERROR_STOP on
INSERT INTO patients (id, village_prefix, name, identification_number, contact_no, gender,
                      date_of_birth, poor, bs2, sabai, drug_allergy, face_encodings, picture)
SELECT i, (ARRAY['SV', 'KP', 'TK'])[1 + i % 3], 'Patient ' || i, '', CASE WHEN i % 2 = 0 THEN '0123' || lpad(i::text, 5, '0') END,
       CASE WHEN i % 2 = 0 THEN 'Male' ELSE 'Female' END,
       timestamptz '1960-01-01 17:00:00Z' + (i % 20000) * interval '1 day', 'No', 'No', 'No', 'None',
       md5(i::text)::uuid::text, 'patients/' || i || '.jpg'
FROM generate_series(1, 1000) i;
SELECT setval(pg_get_serial_sequence('patients', 'id'), 1000);

INSERT INTO appointments (id, doctor_id)
SELECT lpad(to_hex(s), 12, '0') || lpad(to_hex(n), 12, '0'), 'doc-bench'
FROM (SELECT 16 + 16 * r + t FROM generate_series(0, :wrk_runs - 1) r, generate_series(0, :wrk_threads - 1) t) AS w(s),
     generate_series(1, :wrk_cap) n
UNION ALL
SELECT ((256 + c) * 10000000::bigint + n)::text, 'doc-bench'
FROM generate_series(0, :pg_clients - 1) c, generate_series(1, :pg_cap) n
UNION ALL
SELECT lpad(to_hex(s), 12, '0') || lpad(to_hex(n), 12, '0'), 'doc-bench'
FROM generate_series(512, 519) s, generate_series(1, :cg_cap) n;
VACUUM ANALYZE;
