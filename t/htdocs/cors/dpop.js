// A browser client of RFC 9449: one non-extractable P-256 key from
// WebCrypto; a proof per request (typ dpop+jwt, ES256, the public jwk; jti,
// htm, htu, iat, ath) signed with it; axios posts both routes with
// Authorization: DPoP and the DPoP header. Outcomes go into
// <pre id="case-NAME"> as JSON; <div id="done"> marks the end (record.js).
(function () {
  'use strict';
  var cfg = JSON.parse(decodeURIComponent(location.hash.slice(1)));
  var enc = new TextEncoder();

  function b64url(bytes) {
    var s = '';
    new Uint8Array(bytes).forEach(function (b) { s += String.fromCharCode(b); });
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function b64json(o) { return b64url(enc.encode(JSON.stringify(o))); }

  // RFC 9449 §4.2; WebCrypto's ECDSA signature is already JWS's r||s.
  function proof(keys, jwk, htm, htu, token) {
    return crypto.subtle.digest('SHA-256', enc.encode(token)).then(function (ath) {
      var input = b64json({ typ: 'dpop+jwt', alg: 'ES256', jwk: jwk }) + '.' +
                  b64json({ jti: crypto.randomUUID(), htm: htm, htu: htu,
                            iat: Math.floor(Date.now() / 1000), ath: b64url(ath) });
      return crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey,
                                enc.encode(input)).then(function (sig) {
        return input + '.' + b64url(sig);
      });
    });
  }

  function outcomeOf(res) {
    return { status: res.status, body: res.data,
             challenge: res.headers['www-authenticate'] || null };
  }

  function send(name, url, body, token, dpop) {
    return axios.post(url, body, { headers: { Authorization: 'DPoP ' + token, DPoP: dpop } })
      .then(function (res) { record(name, outcomeOf(res)); },
            function (err) { record(name, err.response ? outcomeOf(err.response)
                                                       : { blocked: true, message: String(err.message) }); });
  }

  var visitsUrl = cfg.api + '/dpop/visits';
  var linkUrl = cfg.api + '/dpop/patients/add_and_link';
  var patient = {
    appointment_id: cfg.appointment, firstName: 'Jane', lastName: 'Smith', dateOfBirth: '1990-03-20',
    contact: { phone: '+1234567892', email: 'jane@example.org' }
  };
  var keys, jwk, token, linkToken, used;

  crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
    .then(function (k) {
      keys = k;
      record('key', { extractable: k.privateKey.extractable, type: k.privateKey.type });
      return crypto.subtle.exportKey('jwk', k.publicKey);
    })
    .then(function (pub) {
      jwk = { crv: pub.crv, kty: pub.kty, x: pub.x, y: pub.y };
      return axios.post('/token.cgi', { jwk: jwk, claims: { sub: cfg.sub } });
    })
    .then(function (res) {
      token = res.data.access_token;
      return axios.post('/token.cgi', { jwk: jwk, claims: { userId: cfg.uid } });
    })
    .then(function (res) {
      linkToken = res.data.access_token;
      return proof(keys, jwk, 'POST', visitsUrl, token);
    })
    .then(function (p) {
      used = p;
      return send('visit', visitsUrl, { patient: cfg.patient, status: 'started' }, token, p);
    })
    .then(function () {
      return send('visit-replayed', visitsUrl, { patient: cfg.patient, status: 'started' }, token, used);
    })
    .then(function () { return proof(keys, jwk, 'POST', linkUrl, linkToken); })
    .then(function (p) {
      return send('link', linkUrl + '?uid=' + encodeURIComponent(cfg.uid), patient, linkToken, p);
    })
    .catch(function (e) { record('error', { message: String(e && e.message) }); })
    .then(finish);
})();
