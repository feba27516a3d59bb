// The Entra stand-in's check of a certificate credential's client assertion (issue 23),
// as Entra does it: a compact JWT, RS256, its x5t the SHA-1 thumbprint of the registered
// certificate (x5t#S256 its SHA-256 when sent), the signature verified with the
// certificate's public key, aud the token endpoint, iss = sub = the client id, and a
// current nbf/exp. Answers null when good, else { code, text } for entraError.
import crypto from 'node:crypto';

const decode = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

// A JWT whose header names a certificate thumbprint (not a federated token).
export function isCertificateAssertion(assertion) {
  try {
    const header = decode(String(assertion).split('.')[0]);
    return typeof header.x5t === 'string';
  } catch {
    return false;
  }
}

export function checkClientAssertion(assertion, { certificatePem, clientId, audience }) {
  const parts = String(assertion).split('.');
  if (parts.length !== 3) return { code: 50027, text: 'Invalid JWT token. The token is not in a valid format.' };
  let header, claims;
  try {
    header = decode(parts[0]);
    claims = decode(parts[1]);
  } catch {
    return { code: 50027, text: 'Invalid JWT token. The token is malformed.' };
  }
  const certificate = new crypto.X509Certificate(certificatePem);
  const x5t = crypto.createHash('sha1').update(certificate.raw).digest('base64url');
  const x5tS256 = crypto.createHash('sha256').update(certificate.raw).digest('base64url');
  if (header.alg !== 'RS256') return { code: 5002738, text: `Invalid JWT token. '${header.alg}' is not a supported signature algorithm.` };
  if (header.x5t !== x5t || (header['x5t#S256'] !== undefined && header['x5t#S256'] !== x5tS256))
    return { code: 700027, text: `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${header.x5t}']` };
  const signed = crypto.createVerify('RSA-SHA256').update(`${parts[0]}.${parts[1]}`).verify(certificate.publicKey, Buffer.from(parts[2], 'base64url'));
  if (!signed) return { code: 700027, text: 'Client assertion failed signature validation.' };
  if (claims.aud !== audience) return { code: 700212, text: `No matching federated identity record found for presented assertion audience '${claims.aud}'.` };
  if (claims.iss !== clientId || claims.sub !== clientId) return { code: 700021, text: 'Client assertion application identifier doesn\'t match \'client_id\' parameter.' };
  const now = Date.now() / 1000;
  if (!(claims.exp > now) || claims.exp - now > 3600) return { code: 700024, text: 'Client assertion is not within its valid time range.' };
  if (typeof claims.nbf === 'number' && claims.nbf > now + 300) return { code: 700024, text: 'Client assertion is not within its valid time range.' };
  if (typeof claims.jti !== 'string' || !claims.jti) return { code: 50027, text: 'Invalid JWT token. No jti.' };
  return null;
}
