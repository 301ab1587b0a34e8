/**
 * What an API key looks like, how one is made and how it is stored.
 *
 *   fgk_ + base64url(32 random bytes)      e.g. fgk_q3Xv…  (47 characters)
 *
 * The prefix makes a leaked key recognisable (secret scanners, log greps). Only the
 * SHA-256 of the whole key is stored: the key is 256 random bits, so the hash cannot be
 * searched backwards and needs no salt or slow KDF, and the engine can find a presented
 * key by its hash with one map lookup instead of a password-hash computation per request.
 */
import { createHash, hash, randomBytes } from 'node:crypto';

export const keyPrefix = 'fgk_';
/** Random bytes in a generated key. */
export const keyRandomBytes = 32;
/**
 * Characters after the prefix a presented key may have. Generated keys have 43; an
 * operator's own FLOODGATE_ADMIN_KEY may be longer, never shorter than 32 (192 bits).
 */
export const keyBodyCharsMin = 32;
export const keyBodyCharsMax = 128;

const keyPattern = new RegExp(`^${keyPrefix}[A-Za-z0-9_-]{${keyBodyCharsMin},${keyBodyCharsMax}}$`);

export const scopes = ['ingest', 'read', 'admin'] as const;
export type Scope = (typeof scopes)[number];

export function generateKey(): string {
  return `${keyPrefix}${randomBytes(keyRandomBytes).toString('base64url')}`;
}

export function isWellFormedKey(text: string): boolean {
  return keyPattern.test(text);
}

/** The stored form of a key: 32 bytes. */
export function hashKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/**
 * hashKey's bytes as base64 text, the key cache's map key: one-shot `crypto.hash` (Node
 * 20.12+) costs ~0.3 µs where a Hash object and a Buffer cost ~1.6 µs, on every request
 * that carries a key (bench/micro/auth-check.ts).
 */
export function keyHashText(key: string): string {
  return hash('sha256', key, 'base64');
}

export function isScope(text: string): text is Scope {
  return (scopes as readonly string[]).includes(text);
}

/**
 * `ingest,read` → ['ingest', 'read'] in the catalogue's order, or a message naming the
 * problem. Duplicates and unknown scopes are refused rather than ignored.
 */
export function parseScopes(input: string | readonly unknown[]): { ok: true; scopes: Scope[] } | { ok: false; message: string } {
  const parts = typeof input === 'string' ? input.split(',').map((part) => part.trim()) : input;
  if (parts.length === 0 || (parts.length === 1 && parts[0] === '')) return { ok: false, message: `scopes must name at least one of ${scopes.join(', ')}` };
  const seen = new Set<Scope>();
  for (const part of parts) {
    if (typeof part !== 'string' || !isScope(part)) return { ok: false, message: `unknown scope ${JSON.stringify(String(part).slice(0, 32))}; known: ${scopes.join(', ')}` };
    if (seen.has(part)) return { ok: false, message: `scope ${part} is given more than once` };
    seen.add(part);
  }
  return { ok: true, scopes: scopes.filter((scope) => seen.has(scope)) };
}

/** Key names are for people: 1..100 printable characters, no control characters. */
export const keyNameCharsMax = 100;

export function keyNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || name.trim() === '') return 'name must be a non-empty string';
  if (name.length > keyNameCharsMax) return `name must be at most ${keyNameCharsMax} characters`;
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'name must not contain control characters';
  return null;
}
