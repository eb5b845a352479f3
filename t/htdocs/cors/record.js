// Shared by the test pages (page.js, dpop.js): each case's outcome goes into
// <pre id="case-NAME"> as JSON, and <div id="done"> marks the end, for the
// tests to read from chromium's --dump-dom (Clinic::Browser::page_outcomes).
function record(name, outcome) {
  'use strict';
  var pre = document.createElement('pre');
  pre.id = 'case-' + name;
  pre.textContent = JSON.stringify(outcome);
  document.body.appendChild(pre);
}

function finish() {
  'use strict';
  var done = document.createElement('div');
  done.id = 'done';
  done.textContent = 'done';
  document.body.appendChild(done);
}
