/**
 * Reading the credential a request presents, from its headers only:
 *
 *   Authorization: Bearer <key>
 *   Authorization: Basic base64(<key>:)      the key as user name, empty password (Segment's clients)
 *   X-API-Key: <key>
 *
 * Exactly one credential may be presented. Two (Authorization and X-API-Key, or a
 * repeated header) are refused rather than one of them chosen: a proxy that adds its own
 * header must not decide which identity a request gets. The key's text is never put in a
 * message, as messages reach clients and logs.
 */
import { isWellFormedKey } from './key-format';

export type Credential =
  | { readonly kind: 'none' }
  | { readonly kind: 'key'; readonly key: string }
  | { readonly kind: 'invalid'; readonly message: string };

/** The request headers the credential is read from, each value as often as it was sent. */
export interface CredentialHeaders {
  readonly authorization: readonly string[];
  readonly apiKey: readonly string[];
}

/**
 * The token of a lone `Authorization: Bearer <token>`, whatever its form, or null: the
 * metrics token (FLOODGATE_METRICS_TOKEN) is compared with it.
 */
export function bearerTokenOf(headers: CredentialHeaders): string | null {
  if (headers.authorization.length !== 1 || headers.apiKey.length !== 0) return null;
  const match = /^bearer +(\S+) *$/i.exec(headers.authorization[0] as string);
  return match === null ? null : (match[1] as string);
}

const none: Credential = Object.freeze({ kind: 'none' });

export function readCredential(headers: CredentialHeaders): Credential {
  const count = headers.authorization.length + headers.apiKey.length;
  if (count === 0) return none;
  if (headers.authorization.length > 1) return invalid('the Authorization header is given more than once');
  if (headers.apiKey.length > 1) return invalid('the X-API-Key header is given more than once');
  if (count > 1) return invalid('the request presents two credentials (Authorization and X-API-Key); send one');
  const apiKey = headers.apiKey[0];
  if (apiKey !== undefined) return keyOf(apiKey.trim(), 'X-API-Key');
  return fromAuthorization((headers.authorization[0] as string).trim());
}

function fromAuthorization(value: string): Credential {
  const space = value.indexOf(' ');
  const scheme = (space === -1 ? value : value.slice(0, space)).toLowerCase();
  const parameter = space === -1 ? '' : value.slice(space + 1).trim();
  if (scheme === 'bearer') return keyOf(parameter, 'the Bearer token');
  if (scheme === 'basic') return fromBasic(parameter);
  return invalid('the Authorization scheme must be Bearer or Basic');
}

/** Basic: the key is the user name and the password is empty (`fgk_…:`). */
function fromBasic(parameter: string): Credential {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(parameter)) return invalid('the Basic credentials are not base64');
  const decoded = Buffer.from(parameter, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return invalid('the Basic credentials have no ":" between user name and password');
  if (colon !== decoded.length - 1) return invalid('with Basic, the key is the user name and the password must be empty');
  return keyOf(decoded.slice(0, colon), 'the Basic user name');
}

function keyOf(text: string, where: string): Credential {
  if (!isWellFormedKey(text)) return invalid(`${where} is not a well-formed Floodgate API key (fgk_…)`);
  return { kind: 'key', key: text };
}

function invalid(message: string): Credential {
  return { kind: 'invalid', message };
}
