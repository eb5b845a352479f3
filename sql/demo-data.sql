-- Demo data for `make run` (SQLite and PostgreSQL alike): patients of three
-- villages, free appointments of two doctors. Timestamps are UTC.
INSERT INTO patients (id, village_prefix, name, identification_number, contact_no, gender,
                      date_of_birth, poor, bs2, sabai, drug_allergy, face_encodings, picture) VALUES
 (1, 'SV', 'Sokha Chan',   '', '',           'Female', '1990-03-19T17:00:00Z', 'No',  'No', 'No',  'None',       '4f993c46-d194-40d2-90f4-79e21c556fee', 'patients/1.jpg'),
 (2, 'SV', 'Dara Pich',    '', '012345678',  'Male',   '1984-07-01T17:00:00Z', 'Yes', 'No', 'No',  'Penicillin', NULL, NULL),
 (3, 'KP', 'Srey Mom',     NULL, NULL,       'Female', '2001-12-24T17:00:00Z', 'No',  'Yes','No',  'None',       NULL, 'https://img.example.org/3.jpg'),
 (4, 'KP', 'Vuthy Keo',    '', '098765432',  'Male',   '1975-01-30T17:00:00Z', 'No',  'No', 'Yes', 'None',       NULL, NULL),
 (5, 'TK', 'Bopha Lim',    '', '',           'Female', '1968-05-05T17:00:00Z', 'Yes', 'Yes','No',  'Sulfa',      NULL, NULL),
 (1750, 'SV', 'patient_name', '', '',        'Female', '1990-03-19T17:00:00Z', 'No',  'No', 'No',  'None',       '4f993c46-d194-40d2-90f4-79e21c556fee', 'patients/1750.jpg');

INSERT INTO appointments (id, doctor_id, status) VALUES
 ('65f8a1b2c3d4e5f6789012ef', 'doctor_uid_123', 'scheduled'),
 ('65f8a1b2c3d4e5f6789012f0', 'doctor_uid_123', 'scheduled'),
 ('65f8a1b2c3d4e5f6789012f1', 'doctor_uid_123', 'scheduled'),
 ('65f8a1b2c3d4e5f6789012f2', 'doctor_uid_456', 'scheduled'),
 ('65f8a1b2c3d4e5f6789012f3', 'doctor_uid_456', 'scheduled');
