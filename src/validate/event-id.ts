import { createHash, randomFillSync } from 'node:crypto';

/**
 * Event ids Floodgate makes itself, for events sent without `event_id`.
 *
 * Derived ids (`k_…`) come from the request's idempotency key and the event's index, so a
 * retried request produces the same ids and dedupe drops the copies. Generated ids
 * (`g_…`) are for requests without a key: unique and time-ordered, but a retry gets new
 * ids and is stored twice, which the response says.
 */

/** Crockford's base32: digits then letters without I, L, O, U, in ASCII order. */
const base32Alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const derivedPrefix = 'k_';
const generatedPrefix = 'g_';

/**
 * The id of the event at `index` of a request whose idempotency key is `idempotencyKey`:
 * `k_` + the first 128 bits of SHA-256(key) in base64url (22 characters) + `.` + index.
 *
 * Hashing keeps the id short whatever the key's length and does not echo the key into
 * stored data. The index is appended rather than hashed with the key, so a request costs
 * one hash, not one per event: the digest of the last key is remembered, and every event
 * of a request asks with the same key. Distinct (key, index) pairs give distinct ids
 * unless two keys share 128 bits of SHA-256. A client could send an explicit `event_id`
 * that looks like a derived one; that only collides with its own events.
 */
export function deriveEventId(idempotencyKey: string, index: number): string {
  if (idempotencyKey !== lastKey) {
    lastPrefix = derivedPrefix + createHash('sha256').update(idempotencyKey, 'utf8').digest().toString('base64url', 0, 16) + '.';
    lastKey = idempotencyKey;
  }
  return lastPrefix + index;
}

let lastKey: string | null = null;
let lastPrefix = '';

/**
 * A new id, `g_` + 24 Crockford base32 characters: 10 for the millisecond time (50 bits,
 * enough until the year 10889), 4 for a sequence number within that millisecond and 10
 * random (50 bits). Sorting ids as strings sorts them by creation.
 *
 * Within one process ids strictly increase: an id made in the same millisecond as the
 * previous one takes the next sequence number, a clock that steps back is ignored until
 * it catches up, and a sequence that overflows (over a million ids in one millisecond)
 * borrows the next millisecond. The random part keeps ids from separate processes and
 * nodes apart; it comes from a pool refilled 4 KiB at a time, because a call into the
 * CSPRNG per id would cost more than the rest of the id.
 */
export function generateEventId(nowMs: number): string {
  const ms = Math.floor(nowMs);
  if (ms > generatedLastMs) {
    generatedLastMs = ms;
    generatedSequence = 0;
    generatedTimePrefix = generatedPrefix + base32Digits(ms, 10);
  } else if (++generatedSequence >= sequenceLimit) {
    // The clock stood still or stepped back: keep counting in the last millisecond, and
    // borrow the next one when its sequence numbers run out.
    generatedLastMs++;
    generatedSequence = 0;
    generatedTimePrefix = generatedPrefix + base32Digits(generatedLastMs, 10);
  }
  if (randomOffset + randomBytesPerId > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const pool = randomPool;
  const at = randomOffset;
  randomOffset += randomBytesPerId;
  // Two base32 characters (10 bits) per table lookup: five concatenations instead of ten.
  return (
    generatedTimePrefix +
    base32Pairs[generatedSequence >>> 10] + base32Pairs[generatedSequence & 1023] +
    base32Pairs[(((pool[at] as number) << 8) | (pool[at + 1] as number)) & 1023] +
    base32Pairs[(((pool[at + 2] as number) << 8) | (pool[at + 3] as number)) & 1023] +
    base32Pairs[(((pool[at + 4] as number) << 8) | (pool[at + 5] as number)) & 1023] +
    base32Pairs[(((pool[at + 6] as number) << 8) | (pool[at + 7] as number)) & 1023] +
    base32Pairs[(((pool[at + 8] as number) << 8) | (pool[at + 9] as number)) & 1023]
  );
}

const sequenceLimit = 32 ** 4;
/** Ten random characters of 5 bits, read as five 10-bit pairs from two bytes each. */
const randomBytesPerId = 10;
const randomPool = Buffer.alloc(4096);
let randomOffset = randomPool.length;
let generatedLastMs = -1;
let generatedSequence = 0;
/** `g_` and the time digits of generatedLastMs, rebuilt once per millisecond. */
let generatedTimePrefix = '';

/** Every pair of base32 characters, indexed by its 10-bit value. */
const base32Pairs: readonly string[] = Array.from({ length: 1024 }, (_, value) => base32Alphabet.charAt(value >>> 5) + base32Alphabet.charAt(value & 31));

/** `value` as exactly `width` base32 digits, most significant first. */
function base32Digits(value: number, width: number): string {
  let text = '';
  for (let i = width - 1; i >= 0; i--) text += base32Alphabet.charAt(Math.floor(value / 32 ** i) % 32);
  return text;
}
