// What the seeds' front ends send, from the browser, with axios:
//  - the registration page's submitNewVisit: POST /visits with
//    {patient: patient.pk, status: 'started', visit_date: moment().format(...)};
//  - the practice app: POST /patients/add_and_link?uid=... with its bearer token.
// Each case's outcome (status, body, the response headers the page can read,
// or that the browser blocked it) goes into <pre id="case-NAME"> as JSON;
// <div id="done"> marks the end (record.js).
(function () {
  'use strict';
  var cfg = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  var readable = ['content-type', 'cache-control', 'retry-after', 'www-authenticate',
                  'x-request-id', 'idempotent-replayed', 'x-content-type-options'];

  function outcomeOf(res) {
    var headers = {};
    readable.forEach(function (h) {
      if (res.headers[h] !== undefined) headers[h] = res.headers[h];
    });
    return { status: res.status, body: res.data, headers: headers };
  }

  function run(name, request) {
    return request().then(function (res) {
      record(name, outcomeOf(res));
    }, function (err) {
      record(name, err.response ? outcomeOf(err.response)
                                : { blocked: true, message: String(err.message) });
    });
  }

  var patient = { pk: cfg.patient };
  var bearer = function (t) { return { headers: { Authorization: 'Bearer ' + t } }; };

  function submitNewVisit(status, token) {
    var visit = {
      patient: patient.pk,
      status: status,
      visit_date: moment().format('DD MMMM YYYY HH:mm')
    };
    return axios.post(cfg.api + '/visits', visit, token ? bearer(token) : {});
  }

  function addAndLink() {
    return axios.post(cfg.api + '/patients/add_and_link?uid=' + encodeURIComponent(cfg.uid), {
      appointment_id: cfg.appointment,
      firstName: 'Jane',
      lastName: 'Smith',
      dateOfBirth: '1990-03-20',
      address: { street: '456 Oak St', city: 'Boston', state: 'MA', zipCode: '02101' },
      insurance: { provider: 'Aetna', policyNumber: 'AET789012' },
      medicalHistory: 'No significant medical history',
      currentMedications: 'Multivitamin daily',
      contact: { phone: '+1234567892', email: 'jane@example.org' }
    }, bearer(cfg.linkToken));
  }

  run('visit', function () { return submitNewVisit('started', cfg.visitsToken); })
    .then(function () { return run('visit-invalid', function () { return submitNewVisit('', cfg.visitsToken); }); })
    .then(function () { return run('visit-no-token', function () { return submitNewVisit('started', null); }); })
    .then(function () { return run('link', addAndLink); })
    .then(finish);
})();
