-- PostgreSQL only, after demo-data.sql: move the identity sequences past the
-- ids the demo rows carry (SQLite needs nothing: INTEGER PRIMARY KEY does it).
SELECT setval(pg_get_serial_sequence('patients', 'id'), (SELECT max(id) FROM patients));
