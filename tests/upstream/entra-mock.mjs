// A local stand-in for Entra ID and Azure's managed identity endpoints (issue 23).
//
// It serves three shapes and counts the token requests of each:
//   POST /{tenant}/oauth2/v2.0/token   Entra's v2.0 endpoint, grant_type=client_credentials
//                                      with client_secret, or with client_assertion (the
//                                      federated token: accepted when it equals
//                                      mock.federatedToken, as AKS's file holds it)
//   GET  /metadata/identity/oauth2/token  IMDS (Metadata: true, api-version=2018-02-01, resource=)
//   GET  /msi/token                    App Service (X-IDENTITY-HEADER, api-version=2019-08-01);
//                                      expires_on as a string of epoch seconds, as it sends it
// Tokens are JWT-shaped and signed (HMAC-SHA256 with the mock's own key), live
// `mock.lifetimeS` seconds, and name the audience asked for; mock.verify(token) says what is
// wrong with one (for the Azure stand-in's `verifyBearer` option). `mock.down = true` answers
// every token request with 503 and Entra's transient error, until set back.
// Hostile answers (entra-hostile.test.mjs), `mock.mode`: 'garbage' (200, an HTML page),
// 'huge' (200, a 10-MiB JSON body), 'audience' (good tokens for another audience);
// `mock.expiresIn` (any JSON value) replaces expires_in; `mock.delayMs` delays each answer
// (a client that leaves first is not answered). `mock.arrivals` counts every request.
import http from 'node:http';
import crypto from 'node:crypto';

import { checkClientAssertion, isCertificateAssertion } from './entra-certificate.mjs';

export const AUDIENCE = 'https://cognitiveservices.azure.com';

const base64url = (data) => Buffer.from(data).toString('base64url');

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function entraError(res, status, error, code, description) {
  sendJson(res, status, {
    error,
    error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${crypto.randomUUID()}\r\nCorrelation ID: ${crypto.randomUUID()}\r\nTimestamp: ${new Date().toISOString()}`,
    error_codes: [code], timestamp: new Date().toISOString(),
  });
}

export function createEntraMock({
  tenant = 'test-tenant', clientId = 'test-client', clientSecret = 'test-secret',
  federatedToken = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpwcm94eSJ9.c2lnbmVk',
  identityHeader = 'test-identity-header', lifetimeS = 4,
  certificatePem = null,  // a certificate credential's registered certificate (entra-certificate.mjs)
} = {}) {
  const key = crypto.randomBytes(32);
  const mock = {
    federatedToken, lifetimeS, down: false,
    previousFederatedToken: null, previousValidUntil: 0,  // after a rotation, as Entra: both valid a while
    revokedBefore: 0,  // tokens issued before this time (ms) are refused by verify()
    delayMs: 0,        // each answer waits this long (a slow Entra)
    mode: '', expiresIn: undefined, arrivals: 0,
    counts: { secret: 0, assertion: 0, certificate: 0, imds: 0, appService: 0, refused: 0 },
    requests: [],  // { at, shape, ok, statedLifeMs: the life a token's answer states (App Service's whole seconds) }
    server: null, url: '',
  };
  const total = () => mock.counts.secret + mock.counts.assertion + mock.counts.certificate + mock.counts.imds + mock.counts.appService;
  mock.total = total;

  function issue(audience) {
    // NumericDate may have a fraction (RFC 7519): the token lives exactly lifetimeS.
    const now = Date.now() / 1000;
    const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = base64url(JSON.stringify({ aud: audience, iat: now, nbf: now, exp: now + mock.lifetimeS, appid: clientId, jti: crypto.randomUUID() }));
    const signature = crypto.createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url');
    return { token: `${header}.${payload}.${signature}`, expiresOn: Math.floor(now + mock.lifetimeS) };
  }

  // What is wrong with a token, or '' when it is good for `audience` now.
  mock.verify = (token, audience = AUDIENCE) => {
    const parts = String(token).split('.');
    if (parts.length !== 3) return 'not a JWT';
    const expected = crypto.createHmac('sha256', key).update(`${parts[0]}.${parts[1]}`).digest('base64url');
    if (expected !== parts[2]) return 'bad signature';
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (claims.aud !== audience) return `audience ${claims.aud}`;
    if (claims.exp * 1000 <= Date.now()) return `expired ${Date.now() - claims.exp * 1000} ms ago`;
    if (claims.iat * 1000 < mock.revokedBefore) return 'revoked';
    return '';
  };

  // How long a token (one this mock signed) has left to live, in ms.
  // A rotated federated token (AKS writes a new one before the old expires): the new one
  // is taken at once, the old one for `graceMs` more, so a read just before the swap holds.
  mock.rotateFederatedToken = (token, graceMs) => {
    mock.previousFederatedToken = mock.federatedToken;
    mock.previousValidUntil = Date.now() + graceMs;
    mock.federatedToken = token;
  };
  mock.remainingMs = (token) => JSON.parse(Buffer.from(String(token).split('.')[1], 'base64url').toString('utf8')).exp * 1000 - Date.now();

  function count(shape, ok) {
    if (ok) mock.counts[shape]++;
    else mock.counts.refused++;
    mock.requests.push({ at: Date.now(), shape, ok });
  }

  function serveEntra(req, res, url, raw) {
    const form = new URLSearchParams(raw);
    const pathTenant = decodeURIComponent(url.pathname.split('/')[1]);
    const scope = form.get('scope') || '';
    const shape = form.has('client_assertion') ? 'assertion' : 'secret';
    const refuse = (status, error, code, text) => { count(shape, false); entraError(res, status, error, code, text); };
    if (req.method !== 'POST' || !/^application\/x-www-form-urlencoded/.test(req.headers['content-type'] || ''))
      return refuse(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
    if (pathTenant !== tenant) return refuse(400, 'invalid_request', 90002, `Tenant '${pathTenant}' not found.`);
    if (form.get('grant_type') !== 'client_credentials') return refuse(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    if (form.get('client_id') !== clientId) return refuse(400, 'unauthorized_client', 700016, `Application with identifier '${form.get('client_id')}' was not found in the directory.`);
    if (!scope.endsWith('/.default')) return refuse(400, 'invalid_scope', 1002012, 'The provided value for scope is not valid.');
    if (shape === 'secret' && form.get('client_secret') !== clientSecret)
      return refuse(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
    if (shape === 'assertion') {
      if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
        return refuse(400, 'invalid_request', 50027, 'Invalid client assertion type.');
      const assertion = form.get('client_assertion');
      if (certificatePem && isCertificateAssertion(assertion)) {
        const problem = checkClientAssertion(assertion, { certificatePem, clientId, audience: `${mock.url}/${tenant}/oauth2/v2.0/token` });
        if (problem) return refuse(401, 'invalid_client', problem.code, problem.text);
        count('certificate', true);
        return answerToken(res, scope);
      }
      const stillValid = assertion === mock.previousFederatedToken && Date.now() < mock.previousValidUntil;
      if (assertion !== mock.federatedToken && !stillValid)
        return refuse(401, 'invalid_client', 700211, 'No matching federated identity record found for presented assertion issuer.');
    }
    count(shape, true);
    answerToken(res, scope);
  }

  function answerToken(res, scope) {
    const { token } = issue(mock.mode === 'audience' ? 'https://management.azure.com' : scope.slice(0, -'/.default'.length));
    const expiresIn = mock.expiresIn === undefined ? mock.lifetimeS : mock.expiresIn;
    mock.requests.at(-1).statedLifeMs = Number(expiresIn) * 1000;
    sendJson(res, 200, { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: mock.lifetimeS, access_token: token });
  }

  function serveManagedIdentity(req, res, url, shape) {
    const resource = url.searchParams.get('resource');
    const refuse = (status, body) => { count(shape, false); sendJson(res, status, body); };
    if (req.method !== 'GET') return refuse(405, { error: 'invalid_request', error_description: 'GET only' });
    if (shape === 'imds' && (req.headers.metadata !== 'true' || url.searchParams.get('api-version') !== '2018-02-01'))
      return refuse(400, { error: 'invalid_request', error_description: 'Required metadata header not specified' });
    if (shape === 'appService' && (req.headers['x-identity-header'] !== identityHeader || url.searchParams.get('api-version') !== '2019-08-01'))
      return refuse(401, { statusCode: 401, message: 'Unauthorized request. X-IDENTITY-HEADER is missing or wrong.' });
    if (!resource) return refuse(400, { error: 'invalid_request', error_description: 'Required query variable resource is missing' });
    count(shape, true);
    const { token, expiresOn } = issue(resource);
    const answer = { access_token: token, expires_on: String(expiresOn), resource, token_type: 'Bearer' };
    if (shape === 'imds') Object.assign(answer, { expires_in: String(mock.lifetimeS), ext_expires_in: String(mock.lifetimeS), not_before: String(Math.floor(Date.now() / 1000)) });
    else answer.client_id = url.searchParams.get('client_id') || clientId;
    mock.requests.at(-1).statedLifeMs = shape === 'imds' ? mock.lifetimeS * 1000 : expiresOn * 1000 - Date.now();
    sendJson(res, 200, answer);
  }

  // The hostile modes' answers, or false.
  function hostile(res, shape) {
    if (mock.mode === 'garbage') {
      count(shape, false);
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html><body><h1>Service Unavailable</h1></body></html>');
      return true;
    }
    if (mock.mode === 'huge') {
      count(shape, false);
      const body = Buffer.alloc(10 * 1024 * 1024, 'a');
      Buffer.from('{"access_token":"').copy(body);
      Buffer.from('","expires_in":3600}').copy(body, body.length - 20);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return true;
    }
    return false;
  }

  mock.server = http.createServer((req, res) => {
    const chunks = [];
    mock.arrivals++;
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const timer = setTimeout(() => answer(req, res, chunks), mock.delayMs);
      res.on('close', () => clearTimeout(timer));
    });
  });

  function answer(req, res, chunks) {
    {
      const url = new URL(req.url, 'http://entra.local');
      const raw = Buffer.concat(chunks).toString('utf8');
      const shape = url.pathname === '/metadata/identity/oauth2/token' ? 'imds'
        : url.pathname === '/msi/token' ? 'appService'
          : /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(url.pathname) ? 'entra' : '';
      if (!shape) return sendJson(res, 404, { error: 'not_found' });
      if (mock.down) {
        count(shape === 'entra' ? 'secret' : shape, false);
        return entraError(res, 503, 'temporarily_unavailable', 90033, 'A transient error has occurred. Please try again.');
      }
      if (hostile(res, shape === 'entra' ? 'secret' : shape)) return;
      if (shape === 'entra') serveEntra(req, res, url, raw);
      else serveManagedIdentity(req, res, url, shape);
    }
  }

  mock.listen = (port = 0, host = '127.0.0.1') => new Promise((resolve) => {
    mock.server.listen(port, host, () => {
      mock.url = `http://${host}:${mock.server.address().port}`;
      resolve(mock.url);
    });
  });
  mock.close = () => new Promise((resolve) => {
    mock.server.closeAllConnections();
    mock.server.close(() => resolve());
  });
  return mock;
}
